/*  med_monitor.c: the monitor's framework: its tables, alerts, quarantines
    and the saved state. The detectors are in med_mon_detect.c. */
#include "med_mon_int.h"
#include "bus_hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAGIC     "BHMON\x02"             //  format 2; another is refused
#define S_MAGIC_LEN 6

//  The seed the monitor's file was written with: its slots depend on it.
static uint64_t
s_hash (const void *data, size_t len)
{
    return bus_fnv1a (BUS_FNV_OLD, data, len);
}

med_monitor_t *
med_monitor_new (size_t map_max)
{
    med_monitor_t *self = calloc (1, sizeof *self);
    if (!self) {
        return NULL;
    }
    self->map_max = map_max? map_max: (size_t) 64 << 30;
    self->agents = calloc (MED_MON_AGENTS, sizeof *self->agents);
    self->edges = calloc (MED_MON_EDGES, sizeof *self->edges);
    self->ring = calloc (MON_RING, sizeof *self->ring);
    self->digests = calloc (MON_DIGESTS, sizeof *self->digests);
    self->pending = calloc (MED_MON_PENDING, sizeof *self->pending);
    self->pending_ix = calloc (MON_PENDING_IX, sizeof *self->pending_ix);
    if (!self->agents || !self->edges || !self->ring || !self->digests || !self->pending
    ||  !self->pending_ix) {
        med_monitor_destroy (&self);
        return NULL;
    }
    for (size_t i = 0; i < MED_MON_EDGES; i++) {
        self->edges [i].from = MON_NONE;
    }
    for (size_t i = 0; i < MON_DIGESTS; i++) {
        self->digests [i].holder = MON_NONE;
    }
    self->settings.on = false;          //  until configured
    return self;
}

void
med_monitor_destroy (med_monitor_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    med_monitor_t *self = *self_p;
    free (self->agents);
    free (self->edges);
    free (self->ring);
    free (self->digests);
    free (self->pending);
    free (self->pending_ix);
    free (self);
    *self_p = NULL;
}

void
med_monitor_configure (med_monitor_t *self, const bus_policy_t *policy)
{
    self->policy = policy;
    self->settings = policy->monitor;
    //  Expectations are matched by name: one kept over a reload keeps its
    //  clock; a new one starts waiting from the next tick; one gone is
    //  forgotten, and its pending replies with it.
    mon_expect_state_t kept [MON_EXPECTS];
    uint32_t n_kept = 0;
    for (size_t i = 0; i < policy->monitor.expect_count && n_kept < MON_EXPECTS; i++) {
        const bus_expect_t *expect = &policy->monitor.expects [i];
        mon_expect_state_t state = { .last_us = 0 };
        snprintf (state.name, sizeof state.name, "%s", expect->name);
        for (uint32_t j = 0; j < self->head.n_expects; j++) {
            if (strcmp (self->expects [j].name, expect->name) == 0) {
                state = self->expects [j];
            }
        }
        kept [n_kept++] = state;
    }
    memcpy (self->expects, kept, n_kept * sizeof kept [0]);
    self->head.n_expects = n_kept;
    uint32_t n = 0;
    for (uint32_t i = 0; i < self->head.n_pending; i++) {
        bool known = false;
        for (uint32_t j = 0; j < n_kept && !known; j++) {
            known = strcmp (self->pending [i].expect, kept [j].name) == 0;
        }
        if (known) {
            self->pending [n++] = self->pending [i];
        }
    }
    self->head.n_pending = n;
    mon_pending_reindex (self);
    self->dirty = true;
}

//  ---------------------------------------------------------------------
//  Tables

uint32_t
mon_agent (med_monitor_t *self, const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > BUS_NAME_MAX) {
        return MON_NONE;
    }
    uint32_t slot = (uint32_t) (s_hash (name, len) % MED_MON_AGENTS);
    //  Probes are bounded: a table nearly full drops new agents (counted)
    //  rather than walk long.
    for (uint32_t probe = 0; probe < MED_MON_AGENTS / 4 * 3; probe++) {
        mon_agent_t *agent = &self->agents [slot];
        if (!agent->name [0]) {
            memcpy (agent->name, name, len + 1);
            return slot;
        }
        if (strcmp (agent->name, name) == 0) {
            return slot;
        }
        slot = (slot + 1) % MED_MON_AGENTS;
    }
    self->head.dropped++;
    return MON_NONE;
}

uint32_t
mon_edge (med_monitor_t *self, uint32_t from, uint32_t to)
{
    uint32_t key [2] = { from, to };
    uint32_t slot = (uint32_t) (s_hash (key, sizeof key) % MED_MON_EDGES);
    for (uint32_t probe = 0; probe < MED_MON_EDGES / 4 * 3; probe++) {
        mon_edge_t *edge = &self->edges [slot];
        if (edge->from == MON_NONE) {
            edge->from = from;
            edge->to = to;
            return slot;
        }
        if (edge->from == from && edge->to == to) {
            return slot;
        }
        slot = (slot + 1) % MED_MON_EDGES;
    }
    self->head.dropped++;
    return MON_NONE;
}

//  Linear probing over a table four times the array's size: runs stay short,
//  and a removal shifts back what follows it (no tombstones to grow).
static uint32_t
s_pending_home (uint64_t seq)
{
    return (uint32_t) ((seq * UINT64_C (0x9E3779B97F4A7C15)) >> 50) % MON_PENDING_IX;
}

static void
s_pending_index (med_monitor_t *self, uint32_t place)
{
    uint32_t slot = s_pending_home (self->pending [place].seq);
    while (self->pending_ix [slot]) {
        slot = (slot + 1) % MON_PENDING_IX;
    }
    self->pending_ix [slot] = place + 1;
}

//  The slot that holds place (which is indexed).
static uint32_t
s_pending_slot (const med_monitor_t *self, uint32_t place)
{
    uint32_t slot = s_pending_home (self->pending [place].seq);
    while (self->pending_ix [slot] != place + 1) {
        slot = (slot + 1) % MON_PENDING_IX;
    }
    return slot;
}

mon_pending_t *
mon_pending_push (med_monitor_t *self, uint64_t seq)
{
    if (self->head.n_pending == MED_MON_PENDING) {
        self->head.dropped++;           //  never silently: counted, and on the metrics
        return NULL;
    }
    uint32_t place = self->head.n_pending++;
    mon_pending_t *p = &self->pending [place];
    memset (p, 0, sizeof *p);
    p->seq = seq;
    s_pending_index (self, place);
    return p;
}

uint32_t
mon_pending_find (const med_monitor_t *self, uint64_t seq, const char *to)
{
    for (uint32_t slot = s_pending_home (seq); self->pending_ix [slot];
         slot = (slot + 1) % MON_PENDING_IX) {
        uint32_t place = self->pending_ix [slot] - 1;
        const mon_pending_t *p = &self->pending [place];
        if (p->seq == seq && strcmp (p->to, to) == 0) {
            return place;
        }
    }
    return MON_NONE;
}

void
mon_pending_remove (med_monitor_t *self, uint32_t place)
{
    //  Out of the index: empty its slot, then move back each entry of the
    //  run after it whose home is not between the hole and itself.
    uint32_t hole = s_pending_slot (self, place);
    self->pending_ix [hole] = 0;
    for (uint32_t slot = (hole + 1) % MON_PENDING_IX; self->pending_ix [slot];
         slot = (slot + 1) % MON_PENDING_IX) {
        uint32_t home = s_pending_home (self->pending [self->pending_ix [slot] - 1].seq);
        uint32_t from_home = (slot + MON_PENDING_IX - home) % MON_PENDING_IX;
        uint32_t from_hole = (slot + MON_PENDING_IX - hole) % MON_PENDING_IX;
        if (from_home >= from_hole) {
            self->pending_ix [hole] = self->pending_ix [slot];
            self->pending_ix [slot] = 0;
            hole = slot;
        }
    }
    //  Out of the array: the last one moves into its place.
    uint32_t last = --self->head.n_pending;
    if (place != last) {
        self->pending_ix [s_pending_slot (self, last)] = place + 1;
        self->pending [place] = self->pending [last];
    }
}

void
mon_pending_reindex (med_monitor_t *self)
{
    memset (self->pending_ix, 0, MON_PENDING_IX * sizeof *self->pending_ix);
    for (uint32_t place = 0; place < self->head.n_pending; place++) {
        s_pending_index (self, place);
    }
}

uint32_t
mon_edge_find (const med_monitor_t *self, uint32_t from, uint32_t to)
{
    uint32_t key [2] = { from, to };
    uint32_t slot = (uint32_t) (s_hash (key, sizeof key) % MED_MON_EDGES);
    for (uint32_t probe = 0; probe < MED_MON_EDGES / 4 * 3; probe++) {
        const mon_edge_t *edge = &self->edges [slot];
        if (edge->from == MON_NONE) {
            return MON_NONE;
        }
        if (edge->from == from && edge->to == to) {
            return slot;
        }
        slot = (slot + 1) % MED_MON_EDGES;
    }
    return MON_NONE;
}

bool
mon_rate_count (med_monitor_t *self, mon_rate_t *rate, uint64_t now_us, uint32_t *count,
                double *baseline)
{
    uint64_t minute = now_us / MON_MINUTE_US;
    const double alpha = 1.0 / 60.0;
    if (rate->minutes == 0 && rate->count == 0) {
        rate->minute = minute;
    }
    if (minute > rate->minute) {
        //  The minute that ended, then the empty ones after it.
        if (rate->minutes == 0) {
            rate->ewma = rate->count;
        }
        else {
            rate->ewma += alpha * ((double) rate->count - rate->ewma);
        }
        uint64_t gap = minute - rate->minute - 1;
        for (uint64_t i = 0; i < gap && i < 1440 && rate->ewma > 1e-6; i++) {
            rate->ewma *= 1.0 - alpha;
        }
        rate->minutes += (uint32_t) (minute - rate->minute > 1440? 1440: minute - rate->minute);
        rate->minute = minute;
        rate->count = 0;
    }
    rate->count++;
    *count = rate->count;
    *baseline = rate->ewma;
    const bus_monitor_policy_t *s = &self->settings;
    return rate->minutes >= 60 && rate->count >= s->min_volume
        && (double) rate->count > (double) s->factor * rate->ewma;
}

//  ---------------------------------------------------------------------
//  Alerts

static med_alert_t *
s_find (med_monitor_t *self, bus_alert_kind_t kind, const char *subject)
{
    for (size_t i = 0; i < MED_MON_ALERTS; i++) {
        med_alert_t *alert = &self->alerts [i];
        if (alert->id [0] && !alert->closed_us && alert->kind == kind
        &&  strcmp (alert->subject, subject) == 0) {
            return alert;
        }
    }
    return NULL;
}

//  A free slot, else the one closed longest ago, else NULL.
static med_alert_t *
s_slot (med_monitor_t *self)
{
    med_alert_t *oldest = NULL;
    for (size_t i = 0; i < MED_MON_ALERTS; i++) {
        med_alert_t *alert = &self->alerts [i];
        if (!alert->id [0]) {
            return alert;
        }
        if (alert->closed_us && !alert->changes
        &&  (!oldest || alert->closed_us < oldest->closed_us)) {
            oldest = alert;
        }
    }
    return oldest;
}

static void
s_evidence (med_alert_t *alert, const uint64_t *evidence, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        for (uint32_t j = 0; j < alert->n_evidence && !have; j++) {
            have = alert->evidence [j] == evidence [i];
        }
        if (!have && evidence [i]) {
            if (alert->n_evidence == MED_MON_EVIDENCE) {
                //  Keep the first signs and the latest: shift the tail.
                memmove (alert->evidence + MED_MON_EVIDENCE / 2,
                         alert->evidence + MED_MON_EVIDENCE / 2 + 1,
                         (MED_MON_EVIDENCE / 2 - 1) * sizeof alert->evidence [0]);
                alert->n_evidence--;
            }
            alert->evidence [alert->n_evidence++] = evidence [i];
        }
    }
}

void
mon_fire (med_monitor_t *self, bus_alert_kind_t kind, const char *agent, const char *subject,
          const uint64_t *evidence, size_t n_evidence, uint64_t now_us, const char *fmt, ...)
{
    med_alert_t *alert = s_find (self, kind, subject);
    if (alert) {
        //  Not dirty: a sign of an open alert is saved with the next
        //  minute's baselines, not by a write of its own per message.
        alert->last_us = now_us;
        alert->signs++;
        s_evidence (alert, evidence, n_evidence);
        return;
    }
    alert = s_slot (self);
    if (!alert) {
        self->head.dropped++;
        return;
    }
    memset (alert, 0, sizeof *alert);
    //  Ids are a counter mixed with the start time: unique in this log,
    //  and stable across a restart (the counter is saved).
    uint64_t n = ++self->head.next_id;
    snprintf (alert->id, sizeof alert->id, "a-%016llx",
              (unsigned long long) (s_hash (&self->head.started_us, 8) ^ (n * UINT64_C (0x9e3779b97f4a7c15))));
    alert->kind = kind;
    snprintf (alert->agent, sizeof alert->agent, "%s", agent);
    snprintf (alert->subject, sizeof alert->subject, "%s", subject);
    va_list args;
    va_start (args, fmt);
    vsnprintf (alert->text, sizeof alert->text, fmt, args);
    va_end (args);
    s_evidence (alert, evidence, n_evidence);
    alert->opened_us = alert->last_us = now_us;
    alert->signs = 1;
    alert->changes = 1u << MED_ALERT_OPENED;
    self->head.opened [kind]++;
    if ((self->settings.quarantine_on & (1u << kind)) && self->n_auto < MED_MON_ALERTS) {
        self->auto_quarantine [self->n_auto++] = (uint32_t) (alert - self->alerts);
    }
    self->dirty = true;
}

void
mon_close (med_monitor_t *self, bus_alert_kind_t kind, const char *subject, uint64_t now_us)
{
    med_alert_t *alert = s_find (self, kind, subject);
    if (alert) {
        alert->closed_us = now_us;
        alert->changes |= 1u << MED_ALERT_CLOSED;
        self->dirty = true;
    }
}

med_alert_t *
med_monitor_next (med_monitor_t *self, med_alert_change_t *change)
{
    for (size_t i = 0; i < MED_MON_ALERTS; i++) {
        med_alert_t *alert = &self->alerts [i];
        for (int c = MED_ALERT_OPENED; alert->changes && c <= MED_ALERT_ACKED; c++) {
            if (alert->changes & (1u << c)) {
                alert->changes &= ~(1u << c);
                *change = (med_alert_change_t) c;
                return alert;
            }
        }
    }
    return NULL;
}

static int
s_by_age (const void *a, const void *b)
{
    const med_alert_t *x = *(const med_alert_t *const *) a;
    const med_alert_t *y = *(const med_alert_t *const *) b;
    if ((x->closed_us == 0) != (y->closed_us == 0)) {
        return x->closed_us == 0? -1: 1;
    }
    return x->opened_us > y->opened_us? -1: x->opened_us < y->opened_us? 1: 0;
}

size_t
med_monitor_alerts (med_monitor_t *self, const med_alert_t **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < MED_MON_ALERTS && n < max; i++) {
        if (self->alerts [i].id [0]) {
            out [n++] = &self->alerts [i];
        }
    }
    qsort (out, n, sizeof *out, s_by_age);
    return n;
}

int
med_monitor_ack (med_monitor_t *self, const char *id, const char *by, uint64_t now_us)
{
    for (size_t i = 0; i < MED_MON_ALERTS; i++) {
        med_alert_t *alert = &self->alerts [i];
        if (alert->id [0] && strcmp (alert->id, id) == 0) {
            alert->acked_us = now_us;
            snprintf (alert->acked_by, sizeof alert->acked_by, "%s", by);
            alert->changes |= 1u << MED_ALERT_ACKED;
            self->dirty = true;
            return 0;
        }
    }
    return -1;
}

static int
s_by_rate (const void *a, const void *b)
{
    const med_rate_view_t *x = a, *y = b;
    if ((x->recipient [0] == 0) != (y->recipient [0] == 0)) {
        return x->recipient [0] == 0? -1: 1;
    }
    if (x->minute != y->minute) {
        return x->minute > y->minute? -1: 1;
    }
    return x->baseline > y->baseline? -1: x->baseline < y->baseline? 1: 0;
}

size_t
med_monitor_rates (med_monitor_t *self, uint64_t now_us, med_rate_view_t *out, size_t max)
{
    uint64_t minute = now_us / MON_MINUTE_US;
    size_t n = 0;
    for (uint32_t i = 0; i < MED_MON_AGENTS && n < max; i++) {
        const mon_agent_t *agent = &self->agents [i];
        if (agent->name [0]) {
            //  Minutes that left the hour since its last message.
            uint64_t hour = agent->sum_msgs;
            for (uint64_t m = agent->hour_minute + 1; m <= minute && m <= agent->hour_minute + 60;
                 m++) {
                hour -= agent->hour_msgs [m % 60];
            }
            out [n++] = (med_rate_view_t) {
                agent->name, "", agent->rate.minute == minute? agent->rate.count: 0,
                agent->rate.ewma, hour
            };
        }
    }
    for (uint32_t i = 0; i < MED_MON_EDGES && n < max; i++) {
        const mon_edge_t *edge = &self->edges [i];
        if (edge->from != MON_NONE && edge->rate.minutes + edge->rate.count > 0) {
            out [n++] = (med_rate_view_t) {
                self->agents [edge->from].name, self->agents [edge->to].name,
                edge->rate.minute == minute? edge->rate.count: 0, edge->rate.ewma, 0
            };
        }
    }
    qsort (out, n, sizeof *out, s_by_rate);
    return n;
}

uint64_t
med_monitor_opened (const med_monitor_t *self, bus_alert_kind_t kind)
{
    return kind < BUS_ALERT_KIND_COUNT? self->head.opened [kind]: 0;
}

uint64_t
med_monitor_dropped (const med_monitor_t *self)
{
    return self->head.dropped;
}

//  ---------------------------------------------------------------------
//  Quarantine

int
med_monitor_quarantine (med_monitor_t *self, const char *agent, const char *by,
                        const char *reason, uint64_t now_us)
{
    if (med_monitor_quarantined (self, agent) || self->head.n_quarantine == MED_MON_QUARANTINE) {
        return -1;
    }
    med_quarantine_t *q = &self->quarantine [self->head.n_quarantine++];
    memset (q, 0, sizeof *q);
    snprintf (q->agent, sizeof q->agent, "%s", agent);
    snprintf (q->by, sizeof q->by, "%s", by);
    snprintf (q->reason, sizeof q->reason, "%s", reason);
    q->since_us = now_us;
    self->dirty = true;
    return 0;
}

int
med_monitor_release (med_monitor_t *self, const char *agent)
{
    for (uint32_t i = 0; i < self->head.n_quarantine; i++) {
        if (strcmp (self->quarantine [i].agent, agent) == 0) {
            self->quarantine [i] = self->quarantine [--self->head.n_quarantine];
            self->dirty = true;
            return 0;
        }
    }
    return -1;
}

const med_quarantine_t *
med_monitor_quarantined (const med_monitor_t *self, const char *agent)
{
    for (uint32_t i = 0; i < self->head.n_quarantine; i++) {
        if (strcmp (self->quarantine [i].agent, agent) == 0) {
            return &self->quarantine [i];
        }
    }
    return NULL;
}

size_t
med_monitor_quarantines (const med_monitor_t *self, const med_quarantine_t **out)
{
    *out = self->quarantine;
    return self->head.n_quarantine;
}

size_t
med_monitor_quarantined_names (const med_monitor_t *self, const char **out, size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; i < self->head.n_quarantine && n < max; i++) {
        out [n++] = self->quarantine [i].agent;
    }
    return n;
}

const char *
med_monitor_next_quarantine (med_monitor_t *self, const med_alert_t **alert)
{
    if (self->n_auto == 0) {
        return NULL;
    }
    const med_alert_t *a = &self->alerts [self->auto_quarantine [--self->n_auto]];
    *alert = a;
    return a->agent;
}

//  ---------------------------------------------------------------------
//  Events and time

bool
med_monitor_on (const med_monitor_t *self)
{
    return self->settings.on && self->policy;
}

void
med_monitor_observe (med_monitor_t *self, const med_event_t *event)
{
    if (!self->settings.on || !self->policy) {
        return;
    }
    if (self->head.started_us == 0) {
        self->head.started_us = event->time_us;
    }
    if (event->time_us > self->head.now_us) {
        self->head.now_us = event->time_us;
    }
    mon_detect_observe (self, event);
}

void
med_monitor_tick (med_monitor_t *self, uint64_t now_us)
{
    if (!self->settings.on || !self->policy) {
        return;
    }
    if (now_us < self->head.now_us) {
        now_us = self->head.now_us;     //  a clock that went back stands still
    }
    self->head.now_us = now_us;
    if (self->head.started_us == 0) {
        self->head.started_us = now_us;
    }
    mon_detect_tick (self, now_us);
    //  Alerts with no new sign for `quiet` seconds close; a missing
    //  heartbeat stays open until the heartbeat comes.
    uint64_t quiet = (uint64_t) self->settings.quiet * 1000000;
    for (size_t i = 0; i < MED_MON_ALERTS; i++) {
        med_alert_t *alert = &self->alerts [i];
        if (alert->id [0] && !alert->closed_us && alert->kind != BUS_ALERT_HEARTBEAT
        &&  now_us >= alert->last_us + quiet) {
            alert->closed_us = now_us;
            alert->changes |= 1u << MED_ALERT_CLOSED;
            self->dirty = true;
        }
    }
}

bool
med_monitor_dirty (const med_monitor_t *self)
{
    return self->dirty || self->head.now_us / MON_MINUTE_US != self->saved_minute;
}

//  ---------------------------------------------------------------------
//  Saved state: a header, then the used slots of each table with their
//  place, then the fixed arrays. Sizes are in the header: a build whose
//  structs differ refuses the bytes rather than misreading them.

typedef struct {
    uint32_t sizes [8];
    uint32_t n_agents;
    uint32_t n_edges;
} s_layout_t;

static void
s_sizes (uint32_t sizes [8])
{
    uint32_t s [8] = {
        sizeof (mon_head_t), sizeof (mon_agent_t), sizeof (mon_edge_t), sizeof (med_alert_t),
        sizeof (med_quarantine_t), sizeof (mon_pending_t), sizeof (mon_expect_state_t), 1
    };
    memcpy (sizes, s, sizeof s);
}

int
med_monitor_save (med_monitor_t *self, uint8_t **data, size_t *size)
{
    s_layout_t layout = { .n_agents = 0 };
    s_sizes (layout.sizes);
    for (uint32_t i = 0; i < MED_MON_AGENTS; i++) {
        layout.n_agents += self->agents [i].name [0] != 0;
    }
    for (uint32_t i = 0; i < MED_MON_EDGES; i++) {
        layout.n_edges += self->edges [i].from != MON_NONE;
    }
    size_t total = S_MAGIC_LEN + sizeof layout + sizeof self->head
                 + layout.n_agents * (4 + sizeof (mon_agent_t))
                 + layout.n_edges * (4 + sizeof (mon_edge_t))
                 + sizeof self->alerts + sizeof self->quarantine
                 + self->head.n_pending * sizeof (mon_pending_t) + sizeof self->expects;
    uint8_t *out = malloc (total);
    if (!out) {
        return -1;
    }
    uint8_t *p = out;
#define S_PUT(src, len) do { memcpy (p, (src), (len)); p += (len); } while (0)
    S_PUT (S_MAGIC, S_MAGIC_LEN);
    S_PUT (&layout, sizeof layout);
    S_PUT (&self->head, sizeof self->head);
    for (uint32_t i = 0; i < MED_MON_AGENTS; i++) {
        if (self->agents [i].name [0]) {
            S_PUT (&i, 4);
            S_PUT (&self->agents [i], sizeof self->agents [i]);
        }
    }
    for (uint32_t i = 0; i < MED_MON_EDGES; i++) {
        if (self->edges [i].from != MON_NONE) {
            S_PUT (&i, 4);
            S_PUT (&self->edges [i], sizeof self->edges [i]);
        }
    }
    S_PUT (self->alerts, sizeof self->alerts);
    S_PUT (self->quarantine, sizeof self->quarantine);
    S_PUT (self->pending, self->head.n_pending * sizeof (mon_pending_t));
    S_PUT (self->expects, sizeof self->expects);
#undef S_PUT
    *data = out;
    *size = (size_t) (p - out);
    self->dirty = false;
    self->saved_minute = self->head.now_us / MON_MINUTE_US;
    return 0;
}

int
med_monitor_load (med_monitor_t *self, const uint8_t *data, size_t size)
{
    s_layout_t layout;
    uint32_t sizes [8];
    s_sizes (sizes);
    mon_head_t head;
    if (size < S_MAGIC_LEN + sizeof layout + sizeof head || memcmp (data, S_MAGIC, S_MAGIC_LEN)) {
        return -1;
    }
    const uint8_t *p = data + S_MAGIC_LEN;
    memcpy (&layout, p, sizeof layout);
    p += sizeof layout;
    memcpy (&head, p, sizeof head);
    p += sizeof head;
    if (memcmp (layout.sizes, sizes, sizeof sizes) != 0
    ||  layout.n_agents > MED_MON_AGENTS || layout.n_edges > MED_MON_EDGES
    ||  head.n_pending > MED_MON_PENDING || head.n_quarantine > MED_MON_QUARANTINE
    ||  head.n_expects > MON_EXPECTS) {
        return -1;
    }
    size_t need = (size_t) (p - data) + layout.n_agents * (4 + sizeof (mon_agent_t))
                + layout.n_edges * (4 + sizeof (mon_edge_t)) + sizeof self->alerts
                + sizeof self->quarantine + head.n_pending * sizeof (mon_pending_t)
                + sizeof self->expects;
    if (need != size) {
        return -1;
    }
    //  Checked whole; now taken.
    memset (self->agents, 0, MED_MON_AGENTS * sizeof *self->agents);
    for (size_t i = 0; i < MED_MON_EDGES; i++) {
        self->edges [i] = (mon_edge_t) { .from = MON_NONE };
    }
    for (uint32_t i = 0; i < layout.n_agents; i++) {
        uint32_t slot;
        memcpy (&slot, p, 4);
        if (slot < MED_MON_AGENTS) {
            memcpy (&self->agents [slot], p + 4, sizeof (mon_agent_t));
            self->agents [slot].name [BUS_NAME_MAX] = 0;
        }
        p += 4 + sizeof (mon_agent_t);
    }
    for (uint32_t i = 0; i < layout.n_edges; i++) {
        uint32_t slot;
        memcpy (&slot, p, 4);
        mon_edge_t edge;
        memcpy (&edge, p + 4, sizeof edge);
        if (slot < MED_MON_EDGES && edge.from < MED_MON_AGENTS && edge.to < MED_MON_AGENTS) {
            self->edges [slot] = edge;
        }
        p += 4 + sizeof (mon_edge_t);
    }
    memcpy (self->alerts, p, sizeof self->alerts);
    p += sizeof self->alerts;
    memcpy (self->quarantine, p, sizeof self->quarantine);
    p += sizeof self->quarantine;
    memcpy (self->pending, p, head.n_pending * sizeof (mon_pending_t));
    p += head.n_pending * sizeof (mon_pending_t);
    //  Expectations are the policy's: states are matched by name on the
    //  next configure.
    memcpy (self->expects, p, sizeof self->expects);
    self->head = head;
    mon_pending_reindex (self);
    for (size_t i = 0; i < MED_MON_ALERTS; i++) {
        med_alert_t *alert = &self->alerts [i];
        alert->id [sizeof alert->id - 1] = 0;
        alert->subject [sizeof alert->subject - 1] = 0;
        alert->agent [sizeof alert->agent - 1] = 0;
        alert->text [sizeof alert->text - 1] = 0;
        alert->acked_by [sizeof alert->acked_by - 1] = 0;
        alert->n_evidence = alert->n_evidence > MED_MON_EVIDENCE? MED_MON_EVIDENCE: alert->n_evidence;
        alert->kind = alert->kind < BUS_ALERT_KIND_COUNT? alert->kind: BUS_ALERT_LOOP;
    }
    self->n_auto = 0;
    self->saved_minute = head.now_us / MON_MINUTE_US;
    self->dirty = false;
    if (self->policy) {
        med_monitor_configure (self, self->policy);
    }
    return 0;
}
