/*  med_mon_detect.c: the detectors, see med_monitor.h for what each
    watches and the settings it reads.

    Each detector is a function of one committed outcome (and, for absence,
    of time); they share the monitor's tables but never each other's state.
    Cost per message: a few hash look-ups, and a walk up the causes of a
    caused message bounded by loop_depth.
*/
#include "med_mon_int.h"

#include <stdio.h>
#include <string.h>

static void
s_edge_name (const med_monitor_t *self, uint32_t from, uint32_t to, char *out, size_t size)
{
    snprintf (out, size, "%s>%s", self->agents [from].name, self->agents [to].name);
}

//  ---------------------------------------------------------------------
//  Loops: causes, digests, pairs

static void
s_loops (med_monitor_t *self, const med_event_t *event, uint32_t from, uint32_t to)
{
    const bus_monitor_policy_t *s = &self->settings;
    mon_msg_t *msg = &self->ring [event->seq % MON_RING];
    uint64_t parent = 0;
    uint32_t depth = 0;
    for (size_t i = 0; i < event->n_causes; i++) {
        const mon_msg_t *cause = &self->ring [event->causes [i] % MON_RING];
        if (cause->seq == event->causes [i] && cause->depth + 1 > depth) {
            depth = cause->depth + 1;
            parent = cause->seq;
        }
    }
    *msg = (mon_msg_t) { .seq = event->seq, .parent = parent, .from = from, .to = to,
                         .depth = depth };
    if (!parent) {
        return;
    }
    //  Up the chain: how often this edge came before, and who took part
    //  since the first time (the cycle's members).
    uint64_t evidence [MED_MON_EVIDENCE] = { event->seq };
    size_t n_evidence = 1;
    uint32_t turns = 1;
    uint32_t members [4] = { from, to };
    size_t n_members = 2;
    uint64_t walk = parent;
    for (uint32_t steps = 0; walk && steps < s->loop_depth + 1; steps++) {
        const mon_msg_t *up = &self->ring [walk % MON_RING];
        if (up->seq != walk) {
            break;
        }
        if (up->from == from && up->to == to) {
            turns++;
            if (n_evidence < MED_MON_EVIDENCE) {
                evidence [n_evidence++] = up->seq;
            }
        }
        else
        if (turns == 1 && n_members < 4) {
            bool have = false;
            for (size_t m = 0; m < n_members && !have; m++) {
                have = members [m] == up->from;
            }
            if (!have) {
                members [n_members++] = up->from;
            }
        }
        walk = up->parent;
    }
    char subject [2 * BUS_NAME_MAX + 2];
    if (turns >= s->loop_turns) {
        //  The members sorted, so every message of one loop names it alike.
        for (size_t a = 0; a < n_members; a++) {
            for (size_t b = a + 1; b < n_members; b++) {
                if (strcmp (self->agents [members [b]].name, self->agents [members [a]].name) < 0) {
                    uint32_t t = members [a];
                    members [a] = members [b];
                    members [b] = t;
                }
            }
        }
        subject [0] = 0;
        for (size_t m = 0; m < n_members && m < 2; m++) {
            size_t len = strlen (subject);
            snprintf (subject + len, sizeof subject - len, "%s%s", m? ">": "",
                      self->agents [members [m]].name);
        }
        mon_fire (self, BUS_ALERT_LOOP, self->agents [from].name, subject, evidence, n_evidence,
                  event->time_us, "a cycle of causes: %s -> %s %u times along one chain "
                  "(policy: monitor loop_turns = %u)", self->agents [from].name,
                  self->agents [to].name, turns, s->loop_turns);
    }
    if (depth > s->loop_depth) {
        mon_fire (self, BUS_ALERT_DEPTH, self->agents [from].name, self->agents [from].name,
                  evidence, 1, event->time_us, "a chain of %u causes ends at seq %llu (policy: "
                  "monitor loop_depth = %u)", depth, (unsigned long long) event->seq,
                  s->loop_depth);
    }
}

//  The same payload passed on by the agent it was delivered to, again and
//  again: content bouncing between agents (small payloads are not told
//  apart: "ok" is not a bounce).
static void
s_bounce (med_monitor_t *self, const med_event_t *event, uint32_t from, uint32_t to)
{
    static const uint8_t zeros [8];
    if (event->payload_size < 16 || memcmp (event->digest, zeros, 8) == 0) {
        return;
    }
    uint64_t key;
    memcpy (&key, event->digest, 8);
    mon_digest_t *d = &self->digests [key % MON_DIGESTS];
    uint64_t window = 10 * MON_MINUTE_US;
    if (memcmp (d->digest, event->digest, 8) == 0 && event->time_us < d->first_us + window) {
        if (d->holder == from) {
            d->forwards++;
            if (d->forwards >= self->settings.bounce) {
                uint64_t seq = event->seq;
                mon_fire (self, BUS_ALERT_BOUNCE, self->agents [from].name,
                          self->agents [from].name, &seq, 1, event->time_us,
                          "one payload (%zu bytes) passed on %u times in 10 minutes, last by "
                          "%s to %s (policy: monitor bounce = %u)", (size_t) event->payload_size,
                          d->forwards, self->agents [from].name, self->agents [to].name,
                          self->settings.bounce);
            }
        }
        d->holder = to;
        return;
    }
    memcpy (d->digest, event->digest, 8);
    d->holder = to;
    d->forwards = 0;
    d->first_us = event->time_us;
}

//  ---------------------------------------------------------------------
//  Volume and cost

static void
s_volume (med_monitor_t *self, const med_event_t *event, uint32_t from, uint32_t to)
{
    const bus_monitor_policy_t *s = &self->settings;
    uint64_t seq = event->seq;
    mon_agent_t *agent = &self->agents [from];
    uint32_t count;
    double base;
    if (mon_rate_count (self, &agent->rate, event->time_us, &count, &base)) {
        mon_fire (self, BUS_ALERT_VOLUME, agent->name, agent->name, &seq, 1, event->time_us,
                  "%s sent %u messages this minute, %.1f a minute usual (policy: monitor "
                  "factor = %u, min_volume = %u)", agent->name, count, base, s->factor,
                  s->min_volume);
    }
    if (to == MON_NONE) {
        return;
    }
    uint32_t e = mon_edge (self, from, to);
    if (e == MON_NONE) {
        return;
    }
    mon_edge_t *edge = &self->edges [e];
    bool edge_high = mon_rate_count (self, &edge->rate, event->time_us, &count, &base);
    //  A pair: both ways together, against both baselines.
    uint32_t r = mon_edge_find (self, to, from);
    char subject [2 * BUS_NAME_MAX + 2];
    if (r != MON_NONE) {
        const mon_edge_t *back = &self->edges [r];
        uint32_t back_count = back->rate.minute == edge->rate.minute? back->rate.count: 0;
        uint32_t pair = count + back_count;
        double pair_base = edge->rate.ewma + back->rate.ewma;
        if (back_count && edge->rate.minutes >= 60 && pair >= s->min_volume
        &&  (double) pair > (double) s->factor * pair_base) {
            uint32_t a = strcmp (self->agents [from].name, self->agents [to].name) < 0? from: to;
            uint32_t b = a == from? to: from;
            s_edge_name (self, a, b, subject, sizeof subject);
            mon_fire (self, BUS_ALERT_PINGPONG, agent->name, subject, &seq, 1, event->time_us,
                      "%s and %s exchanged %u messages this minute, %.1f a minute usual "
                      "(policy: monitor factor = %u, min_volume = %u)", self->agents [a].name,
                      self->agents [b].name, pair, pair_base, s->factor, s->min_volume);
            return;
        }
    }
    if (edge_high) {
        s_edge_name (self, from, to, subject, sizeof subject);
        mon_fire (self, BUS_ALERT_VOLUME, agent->name, subject, &seq, 1, event->time_us,
                  "%s sent %u messages to %s this minute, %.1f a minute usual (policy: monitor "
                  "factor = %u, min_volume = %u)", agent->name, count, self->agents [to].name,
                  base, s->factor, s->min_volume);
    }
}

static void
s_cost (med_monitor_t *self, const med_event_t *event, uint32_t from)
{
    const bus_monitor_policy_t *s = &self->settings;
    mon_agent_t *agent = &self->agents [from];
    uint64_t minute = event->time_us / MON_MINUTE_US;
    if (agent->hour_minute == 0) {
        agent->hour_minute = minute;
    }
    if (minute > agent->hour_minute) {
        //  Minutes that left the hour leave the sums.
        uint64_t gone = minute - agent->hour_minute;
        for (uint64_t m = 1; m <= gone && m <= 60; m++) {
            size_t i = (size_t) ((agent->hour_minute + m) % 60);
            agent->sum_msgs -= agent->hour_msgs [i];
            agent->sum_bytes -= agent->hour_bytes [i];
            agent->sum_log -= agent->hour_log [i];
            agent->hour_msgs [i] = 0;
            agent->hour_bytes [i] = 0;
            agent->hour_log [i] = 0;
        }
        agent->hour_minute = minute;
    }
    size_t i = (size_t) (minute % 60);
    agent->hour_msgs [i]++;
    agent->hour_bytes [i] += event->payload_size;
    agent->hour_log [i] += event->record_size;
    agent->sum_msgs++;
    agent->sum_bytes += event->payload_size;
    agent->sum_log += event->record_size;
    uint64_t seq = event->seq;
    if (s->budget_messages && agent->sum_msgs > s->budget_messages) {
        mon_fire (self, BUS_ALERT_COST, agent->name, agent->name, &seq, 1, event->time_us,
                  "%s sent %llu messages in the last hour, over its budget of %u (policy: "
                  "monitor budget_messages)", agent->name, (unsigned long long) agent->sum_msgs,
                  s->budget_messages);
    }
    if (s->budget_bytes && agent->sum_bytes > s->budget_bytes) {
        mon_fire (self, BUS_ALERT_COST, agent->name, agent->name, &seq, 1, event->time_us,
                  "%s sent %llu payload bytes in the last hour, over its budget of %u (policy: "
                  "monitor budget_bytes)", agent->name, (unsigned long long) agent->sum_bytes,
                  s->budget_bytes);
    }
    //  The log budget is the hostile-agent one (bus_session_log_left): one
    //  setting, so this alert comes before the denials do.
    const bus_agent_t *policy_agent = bus_policy_agent (self->policy, agent->name);
    if (policy_agent) {
        double budget = policy_agent->log_budget? (double) policy_agent->log_budget * 1024.0
                                                : (double) self->map_max * 0.05;
        if ((double) agent->sum_log >= budget * s->cost_percent / 100.0) {
            mon_fire (self, BUS_ALERT_COST, agent->name, agent->name, &seq, 1, event->time_us,
                      "%s caused %llu bytes of log in the last hour, %u%% or more of its log "
                      "budget of %.0f (policy: log_budget, monitor cost_percent)", agent->name,
                      (unsigned long long) agent->sum_log, s->cost_percent, budget);
        }
    }
}

//  ---------------------------------------------------------------------
//  Destinations and timing

static void
s_new_edge (med_monitor_t *self, const med_event_t *event, uint32_t from, uint32_t to)
{
    uint32_t e = mon_edge (self, from, to);
    if (e == MON_NONE) {
        return;
    }
    mon_edge_t *edge = &self->edges [e];
    uint64_t window = (uint64_t) self->settings.new_edge_days * MON_DAY_US;
    uint64_t learn = (uint64_t) self->settings.learn_hours * MON_HOUR_US;
    if ((edge->last_used_us == 0 || event->time_us > edge->last_used_us + window)
    &&  event->time_us >= self->head.started_us + learn) {
        char subject [2 * BUS_NAME_MAX + 2];
        s_edge_name (self, from, to, subject, sizeof subject);
        uint64_t seq = event->seq;
        mon_fire (self, BUS_ALERT_NEW_EDGE, self->agents [from].name, subject, &seq, 1,
                  event->time_us, "%s -> %s used for the first time in %u days (allowed by the "
                  "policy, never seen used; policy: monitor new_edge_days)",
                  self->agents [from].name, self->agents [to].name, self->settings.new_edge_days);
    }
    if (event->time_us > edge->last_used_us) {
        edge->last_used_us = event->time_us;
    }
}

static void
s_probe (med_monitor_t *self, const med_event_t *event, uint32_t from)
{
    mon_agent_t *agent = &self->agents [from];
    uint64_t minute = event->time_us / MON_MINUTE_US;
    if (agent->denied_minute != minute) {
        agent->denied_minute = minute;
        agent->denied = 0;
    }
    agent->denied++;
    if (agent->denied >= self->settings.probe) {
        uint64_t seq = event->seq;
        mon_fire (self, BUS_ALERT_PROBE, agent->name, agent->name, &seq, 1, event->time_us,
                  "%s had %u attempts denied this minute, the last to %s (%s) (policy: "
                  "monitor probe = %u)", agent->name, agent->denied,
                  event->recipient [0]? event->recipient: "?", bus_errword (event->code),
                  self->settings.probe);
    }
}

static void
s_timing (med_monitor_t *self, const med_event_t *event, uint32_t from)
{
    mon_agent_t *agent = &self->agents [from];
    unsigned hour = (unsigned) ((event->time_us / MON_HOUR_US) % 24);
    if (agent->first_us == 0) {
        agent->first_us = event->time_us;
    }
    uint32_t permille = self->settings.timing_permille;
    if (permille && event->time_us >= agent->first_us + 3 * MON_DAY_US
    &&  agent->hours_total >= 500) {
        double near = agent->hours [hour] + agent->hours [(hour + 23) % 24]
                    + agent->hours [(hour + 1) % 24];
        if (near * 1000.0 < (double) permille * agent->hours_total) {
            uint64_t seq = event->seq;
            mon_fire (self, BUS_ALERT_TIMING, agent->name, agent->name, &seq, 1, event->time_us,
                      "%s active at %02u:00 UTC, an hour that with its neighbours held %.2f%% "
                      "of its traffic (policy: monitor timing_permille = %u)", agent->name,
                      hour, near * 100.0 / agent->hours_total, permille);
        }
    }
    agent->hours [hour] += 1.0;
    agent->hours_total += 1.0;
    if (agent->hours_total > 100000.0) {
        //  Old habits fade: halve, so the hours follow a change of routine.
        for (int h = 0; h < 24; h++) {
            agent->hours [h] /= 2.0;
        }
        agent->hours_total /= 2.0;
    }
}

//  ---------------------------------------------------------------------
//  Absence: heartbeats and expected results

static mon_expect_state_t *
s_expect_state (med_monitor_t *self, const char *name)
{
    for (uint32_t i = 0; i < self->head.n_expects; i++) {
        if (strcmp (self->expects [i].name, name) == 0) {
            return &self->expects [i];
        }
    }
    return NULL;
}

static void
s_absence (med_monitor_t *self, const med_event_t *event)
{
    const bus_monitor_policy_t *s = &self->settings;
    const bus_policy_t *policy = self->policy;
    //  A reply from R that names a message waiting for one (or for more:
    //  one message, two expectations).
    for (size_t c = 0; c < event->n_causes; c++) {
        uint32_t i;
        while ((i = mon_pending_find (self, event->causes [c], event->sender)) != MON_NONE) {
            const mon_pending_t *p = &self->pending [i];
            if (event->verdict == MED_REJECT) {
                uint64_t evidence [2] = { p->seq, event->seq };
                char subject [2 * BUS_NAME_MAX + 2];
                snprintf (subject, sizeof subject, "%s>%s", p->to, p->from);
                mon_fire (self, BUS_ALERT_RESULT_DENIED, p->to, subject, evidence, 2,
                          event->time_us, "the result %s owed %s for seq %llu came back denied "
                          "(%s) at seq %llu (policy: monitor expect %s)", p->to, p->from,
                          (unsigned long long) p->seq, bus_errword (event->code),
                          (unsigned long long) event->seq, p->expect);
            }
            mon_pending_remove (self, i);
        }
    }
    if (event->verdict == MED_REJECT) {
        return;
    }
    for (size_t i = 0; i < s->expect_count; i++) {
        const bus_expect_t *expect = &s->expects [i];
        const bus_agent_t *agent = &policy->agents [expect->agent];
        if (!expect->reply) {
            if (strcmp (agent->name, event->sender) != 0 || event->verdict != MED_PASS
            ||  (expect->intent [0] && strcmp (expect->intent, event->intent) != 0)) {
                continue;
            }
            mon_expect_state_t *state = s_expect_state (self, expect->name);
            if (state) {
                state->last_us = event->time_us;
                state->last_seq = event->seq;
                if (state->missed) {
                    char subject [2 * BUS_NAME_MAX + 2];
                    snprintf (subject, sizeof subject, "%s:%s", agent->name, expect->name);
                    mon_close (self, BUS_ALERT_HEARTBEAT, subject, event->time_us);
                    state->missed = false;
                }
            }
            continue;
        }
        //  A message that expects a result: delivered or queued (a held one
        //  when its hold releases it), of the class, to R.
        if (event->verdict != MED_PASS || strcmp (agent->name, event->recipient) != 0
        ||  (expect->class_index >= 0
             && strcmp (policy->classes [expect->class_index].name, event->intent_class) != 0)) {
            continue;
        }
        mon_pending_t *p = mon_pending_push (self, event->seq);
        if (!p) {
            continue;
        }
        p->deadline_us = event->time_us + (uint64_t) expect->seconds * 1000000;
        p->seconds = expect->seconds;
        bus_text_copy (p->expect, sizeof p->expect, expect->name);
        bus_text_copy (p->from, sizeof p->from, event->sender);
        bus_text_copy (p->to, sizeof p->to, event->recipient);
    }
}

void
mon_detect_tick (med_monitor_t *self, uint64_t now_us)
{
    const bus_monitor_policy_t *s = &self->settings;
    const bus_policy_t *policy = self->policy;
    for (size_t i = 0; i < s->expect_count; i++) {
        const bus_expect_t *expect = &s->expects [i];
        mon_expect_state_t *state = s_expect_state (self, expect->name);
        if (expect->reply || !state) {
            continue;
        }
        if (state->last_us == 0) {
            state->last_us = now_us;    //  a new expectation waits from now
            self->dirty = true;
            continue;
        }
        uint64_t due = state->last_us + (uint64_t) expect->seconds * 1000000;
        if (!state->missed && now_us > due) {
            const char *name = policy->agents [expect->agent].name;
            char subject [2 * BUS_NAME_MAX + 2];
            snprintf (subject, sizeof subject, "%s:%s", name, expect->name);
            mon_fire (self, BUS_ALERT_HEARTBEAT, name, subject, &state->last_seq,
                      state->last_seq? 1: 0, now_us, "no %s%s from %s for %llu s, expected "
                      "at least every %u s (policy: monitor expect %s)",
                      expect->intent [0]? expect->intent: "message", "", name, (unsigned long long) ((now_us - state->last_us) / 1000000),
                      expect->seconds, expect->name);
            state->missed = true;
        }
    }
    for (uint32_t i = 0; i < self->head.n_pending; ) {
        mon_pending_t *p = &self->pending [i];
        if (now_us < p->deadline_us) {
            i++;
            continue;
        }
        char subject [2 * BUS_NAME_MAX + 2];
        snprintf (subject, sizeof subject, "%s>%s", p->to, p->from);
        mon_fire (self, BUS_ALERT_RESULT, p->to, subject, &p->seq, 1, now_us,
                  "no result from %s for seq %llu (sent by %s) within its %llu s (policy: "
                  "monitor expect %s)", p->to, (unsigned long long) p->seq, p->from,
                  (unsigned long long) p->seconds, p->expect);
        mon_pending_remove (self, i);
    }
}

void
mon_detect_observe (med_monitor_t *self, const med_event_t *event)
{
    //  Refusals for load are not logged one by one (seq 0): counted by the
    //  refusal ledger, not watched here.
    if (event->seq == 0 || !event->sender [0]) {
        return;
    }
    uint32_t from = mon_agent (self, event->sender);
    if (from == MON_NONE) {
        return;
    }
    uint32_t to = event->recipient [0]? mon_agent (self, event->recipient): MON_NONE;
    s_absence (self, event);
    if (event->hold_closed) {
        return;                         //  counted once, when it was sent
    }
    if (event->verdict == MED_REJECT) {
        s_probe (self, event, from);
        return;
    }
    s_cost (self, event, from);
    s_timing (self, event, from);
    if (to == MON_NONE) {
        return;
    }
    s_volume (self, event, from, to);
    s_new_edge (self, event, from, to);
    s_loops (self, event, from, to);
    s_bounce (self, event, from, to);
}
