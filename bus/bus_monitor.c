/*  bus_monitor.c: the detectors' side of the core, see bus_monitor.h. */
#include "bus_monitor.h"
#include "bus_approval.h"
#include "bus_record.h"
#include "bus_wire.h"
#include "med_monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_STATE_KEY     "state"
#define S_QUARANTINE_KEY "quarantine"   //  the quarantines again, as text lines: they
                                        //  outlive a state of another layout

//  "agent\tby\tsince_us\treason\n" per quarantine, into the monitor's table
//  (those not there yet: a state that loaded has them already).
static void
s_quarantine_load (bus_core_t *core, const char *text, size_t size)
{
    char line [BUS_NAME_MAX * 2 + 64 + 256 + 8];
    const char *p = text, *end = text + size;
    while (p < end) {
        const char *nl = memchr (p, '\n', (size_t) (end - p));
        size_t len = (size_t) ((nl? nl: end) - p);
        snprintf (line, sizeof line, "%.*s", (int) len, p);
        p += len + 1;
        char *by = strchr (line, '\t');
        char *since = by? strchr (by + 1, '\t'): NULL;
        char *reason = since? strchr (since + 1, '\t'): NULL;
        if (!reason) {
            continue;
        }
        *by++ = *since++ = *reason++ = 0;
        if (med_monitor_quarantine (core->monitor, line, by, reason, strtoull (since, NULL, 10))
            == 0) {
            bus_core_say (core, "BUS-MONITOR", "reason=\"quarantine of %s kept from its own "
                          "record\"", line);
        }
    }
}

int
bus_monitor_open (bus_core_t *core, bus_error_t *err)
{
    core->monitor = med_monitor_new (core->options.map_max);
    if (!core->monitor) {
        return bus_fail (err, BUS_ENOMEM, "out of memory for the monitor");
    }
    med_monitor_configure (core->monitor, core->policy);
    void *data = NULL;
    size_t size = 0;
    int rc = bus_store_get (core->store, BUS_DB_MONITOR, S_STATE_KEY, strlen (S_STATE_KEY), &data,
                            &size, err);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        if (med_monitor_load (core->monitor, data, size) != 0) {
            //  Not an error: a build of another layout. Alerts and
            //  quarantines are in the log; baselines learn again.
            bus_core_say (core, "BUS-MONITOR", "reason=\"saved detector state of another "
                          "format (%zu bytes) set aside: baselines learn again\"", size);
        }
        med_monitor_configure (core->monitor, core->policy);
    }
    free (data);
    data = NULL;
    rc = bus_store_get (core->store, BUS_DB_MONITOR, S_QUARANTINE_KEY, strlen (S_QUARANTINE_KEY),
                        &data, &size, err);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        s_quarantine_load (core, data, size);
    }
    free (data);
    return 0;
}

void
bus_monitor_close (bus_core_t *core)
{
    med_monitor_destroy (&core->monitor);
}

void
bus_monitor_configure (bus_core_t *core)
{
    if (core->monitor) {
        med_monitor_configure (core->monitor, core->policy);
    }
}

void
bus_monitor_tick (bus_core_t *core, uint64_t now_us)
{
    if (core->monitor) {
        med_monitor_tick (core->monitor, now_us);
    }
}

void
bus_monitor_save (bus_core_t *core)
{
    uint8_t *data;
    size_t size;
    if (!core->monitor || core->failed || med_monitor_save (core->monitor, &data, &size) != 0) {
        return;
    }
    bus_error_t err;
    if (bus_store_put (core->store, BUS_DB_MONITOR, S_STATE_KEY, strlen (S_STATE_KEY), data, size,
                       &err) != 0) {
        bus_core_fail (core, &err);
    }
    free (data);
    const med_quarantine_t *list;
    size_t n = med_monitor_quarantines (core->monitor, &list);
    char *text = malloc (n * (sizeof list [0] + 32) + 1);
    size_t len = 0;
    for (size_t i = 0; text && i < n; i++) {
        char *line = text + len;
        len += (size_t) sprintf (line, "%s\t%s\t%llu\t%s\n", list [i].agent, list [i].by,
                                 (unsigned long long) list [i].since_us, list [i].reason);
        //  A reason is an operator's text: a tab or newline in it must not
        //  make a line of its own (a quarantine no one asked for).
        for (char *c = line + strlen (line) - strlen (list [i].reason) - 1; c < text + len - 1; c++) {
            *c = *c == '\t' || *c == '\n'? ' ': *c;
        }
    }
    if (text && !core->failed
    &&  bus_store_put (core->store, BUS_DB_MONITOR, S_QUARANTINE_KEY, strlen (S_QUARANTINE_KEY),
                       text, len, &err) != 0) {
        bus_core_fail (core, &err);
    }
    free (text);
}

//  ---------------------------------------------------------------------
//  Alerts: logged, then told

static const char *
s_change_word (med_alert_change_t change)
{
    return change == MED_ALERT_OPENED? "opened": change == MED_ALERT_CLOSED? "closed"
                                                                            : "acknowledged";
}

static void
s_alert_frame (const med_alert_t *alert, Bulkhead__V1__Alert *out)
{
    bulkhead__v1__alert__init (out);
    out->id = (char *) alert->id;
    out->kind = (char *) bus_alert_kinds [alert->kind];
    out->subject = (char *) alert->subject;
    out->text = (char *) alert->text;
    out->n_evidence = alert->n_evidence;
    out->evidence = (uint64_t *) alert->evidence;
    out->opened_us = alert->opened_us;
    out->has_closed_us = alert->closed_us != 0;
    out->closed_us = alert->closed_us;
    out->has_seq = alert->seq != 0;
    out->seq = alert->seq;
}

static void
s_log_alert (bus_core_t *core, med_alert_t *alert, med_alert_change_t change)
{
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_ALERT);
    char recipient [BUS_NAME_MAX + 1] = "";
    const char *edge = strchr (alert->subject, '>');
    if (edge) {
        snprintf (recipient, sizeof recipient, "%s", edge + 1);
        rec.recipient = recipient;
    }
    rec.sender = alert->agent;
    rec.code = (char *) bus_errword (BUS_OK);
    rec.event = (char *) s_change_word (change);
    rec.reason = alert->text;
    rec.alert_id = alert->id;
    rec.alert_kind = (char *) bus_alert_kinds [alert->kind];
    rec.alert_subject = alert->subject;
    rec.n_evidence = alert->n_evidence;
    rec.evidence = alert->evidence;
    rec.has_opened_us = true;
    rec.opened_us = alert->opened_us;
    rec.has_closed_us = alert->closed_us != 0;
    rec.closed_us = alert->closed_us;
    rec.has_acked_us = alert->acked_us != 0;
    rec.acked_us = alert->acked_us;
    rec.actor = change == MED_ALERT_ACKED? alert->acked_by: NULL;
    if (bus_core_append (core, &rec) != 0) {
        return;
    }
    if (change == MED_ALERT_OPENED) {
        alert->seq = rec.seq;
    }
    bus_core_say (core, "BUS-ALERT", "id=%s %s kind=%s subject=%s seq=%llu reason=\"%s\"",
                  alert->id, s_change_word (change), bus_alert_kinds [alert->kind],
                  alert->subject, (unsigned long long) rec.seq, alert->text);
    //  Told to every online agent with the monitor role, after the commit
    //  like everything else in the outbox. Not durable: a monitor away
    //  lists what is open when it comes back.
    Bulkhead__V1__Alert body;
    s_alert_frame (alert, &body);
    body.has_seq = true;
    body.seq = rec.seq;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ALERT;
    frame.alert = &body;
    for (size_t i = 0; i < core->policy->agent_count; i++) {
        const bus_agent_t *agent = &core->policy->agents [i];
        //  A quarantined monitor reads nothing more (its `alerts` is
        //  refused as every control command of it is).
        if (!(agent->roles & BUS_ROLE_MONITOR) || med_monitor_quarantined (core->monitor, agent->name)) {
            continue;
        }
        bus_session_t *session = bus_session_get (core, agent->name);
        if (session && session->online && session->rid_len
        &&  bus_outbox_reserve (core->outbox, 1) == 0) {
            bus_outbox_frame (core->outbox, session->rid, session->rid_len, &frame, NULL);
        }
    }
}

//  The policy lets this alert's kind quarantine its agent: done by the
//  bus, audited as an operator's would be.
static void
s_auto_quarantine (bus_core_t *core, const char *agent, const med_alert_t *alert)
{
    if (!bus_policy_agent (core->policy, agent)) {
        return;
    }
    char reason [256];
    snprintf (reason, sizeof reason, "alert %s (%s on %s)", alert->id,
              bus_alert_kinds [alert->kind], alert->subject);
    if (med_monitor_quarantine (core->monitor, agent, "bus", reason, bus_now_us ()) != 0) {
        return;                         //  already quarantined, or the table is full
    }
    char text [400];
    snprintf (text, sizeof text, "%s quarantined by the bus on alert %s: %s (policy: monitor "
              "quarantine_on = %s)", agent, alert->id, alert->text, bus_alert_kinds [alert->kind]);
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_CONTROL);
    rec.sender = "bus";
    rec.actor = "bus";
    rec.recipient = (char *) agent;
    rec.code = (char *) bus_errword (BUS_OK);
    rec.event = "quarantine";
    rec.reason = text;
    rec.alert_id = (char *) alert->id;
    bus_core_append (core, &rec);
    bus_core_say (core, "BUS-QUARANTINE", "agent=%s by=bus alert=%s", agent, alert->id);
}

bool
bus_monitor_drain (bus_core_t *core)
{
    if (!core->monitor || core->failed) {
        return false;
    }
    bool wrote = false;
    med_alert_change_t change;
    med_alert_t *alert;
    while ((alert = med_monitor_next (core->monitor, &change))) {
        s_log_alert (core, alert, change);
        wrote = true;
    }
    const med_alert_t *cause;
    const char *agent;
    while ((agent = med_monitor_next_quarantine (core->monitor, &cause))) {
        s_auto_quarantine (core, agent, cause);
        wrote = true;
    }
    if (med_monitor_dirty (core->monitor)) {
        bus_monitor_save (core);
        wrote = true;
    }
    return wrote && !core->failed;
}

//  ---------------------------------------------------------------------
//  Controls

static void
s_when (uint64_t us, char *out, size_t size)
{
    time_t secs = (time_t) (us / 1000000);
    struct tm tm;
    strftime (out, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&secs, &tm));
}

static bus_code_t
s_list_alerts (bus_core_t *core, Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    static const med_alert_t *alerts [MED_MON_ALERTS];
    static Bulkhead__V1__Alert bodies [MED_MON_ALERTS];
    static Bulkhead__V1__Alert *body_ptrs [MED_MON_ALERTS];
    static char lines [MED_MON_ALERTS][900];
    static char *line_ptrs [MED_MON_ALERTS];
    size_t n = med_monitor_alerts (core->monitor, alerts, MED_MON_ALERTS);
    size_t open = 0;
    for (size_t i = 0; i < n; i++) {
        const med_alert_t *alert = alerts [i];
        char opened [32], closed [48] = "", acked [96] = "", evidence [200] = "";
        s_when (alert->opened_us, opened, sizeof opened);
        if (alert->closed_us) {
            char when [32];
            s_when (alert->closed_us, when, sizeof when);
            snprintf (closed, sizeof closed, " closed %s", when);
        }
        else {
            open++;
        }
        if (alert->acked_us) {
            snprintf (acked, sizeof acked, " acked by %s", alert->acked_by);
        }
        for (uint32_t e = 0; e < alert->n_evidence; e++) {
            size_t len = strlen (evidence);
            snprintf (evidence + len, sizeof evidence - len, "%s%llu", e? ",": "",
                      (unsigned long long) alert->evidence [e]);
        }
        snprintf (lines [i], sizeof lines [i], "%s %s %s %s opened %s%s%s evidence %s: %s",
                  alert->id, alert->closed_us? "closed": "open", bus_alert_kinds [alert->kind],
                  alert->subject, opened, closed, acked, evidence [0]? evidence: "-", alert->text);
        line_ptrs [i] = lines [i];
        s_alert_frame (alert, &bodies [i]);
        body_ptrs [i] = &bodies [i];
    }
    reply->n_lines = n;
    reply->lines = line_ptrs;
    reply->n_alerts = n;
    reply->alerts = body_ptrs;
    snprintf (reason, size, "%zu alert%s open, %zu kept closed", open, open == 1? "": "s",
              n - open);
    return BUS_OK;
}

static bus_code_t
s_list_quarantine (bus_core_t *core, Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    static char lines [MED_MON_QUARANTINE][480];
    static char *line_ptrs [MED_MON_QUARANTINE];
    const med_quarantine_t *list;
    size_t n = med_monitor_quarantines (core->monitor, &list);
    for (size_t i = 0; i < n; i++) {
        char since [32];
        s_when (list [i].since_us, since, sizeof since);
        snprintf (lines [i], sizeof lines [i], "%s quarantined since %s by %s: %s", list [i].agent,
                  since, list [i].by, list [i].reason);
        line_ptrs [i] = lines [i];
    }
    reply->n_lines = n;
    reply->lines = line_ptrs;
    snprintf (reason, size, "%zu agent%s quarantined", n, n == 1? "": "s");
    return BUS_OK;
}

//  One `key value...` line each: the bus, then agents and edges busiest
//  first, then the open alerts. What `bulkhead top` shows.
#define S_SNAPSHOT_LINES    512
static bus_code_t
s_snapshot (bus_core_t *core, Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    static char lines [S_SNAPSHOT_LINES][560];
    static char *line_ptrs [S_SNAPSHOT_LINES];
    static med_rate_view_t rates [S_SNAPSHOT_LINES];
    static const med_alert_t *alerts [MED_MON_ALERTS];
    uint64_t now = bus_now_us ();
    size_t n_alerts = med_monitor_alerts (core->monitor, alerts, MED_MON_ALERTS);
    size_t open = 0;
    for (size_t i = 0; i < n_alerts; i++) {
        open += alerts [i]->closed_us == 0;
    }
    const med_quarantine_t *list;
    size_t quarantined = med_monitor_quarantines (core->monitor, &list);
    size_t online = bus_sessions_online (core), sessions = bus_sessions_count (core);
    size_t n = 0;
    snprintf (lines [n++], sizeof lines [0], "bus seq=%llu holds=%u alerts_open=%zu "
              "quarantined=%zu online=%zu agents=%zu policy=%.16s",
              (unsigned long long) bus_store_last_seq (core->store),
              (unsigned) bus_holds_size (core->holds), open, quarantined, online,
              core->policy->agent_count, core->policy->hash);
    size_t n_rates = med_monitor_rates (core->monitor, now, rates, S_SNAPSHOT_LINES / 2);
    for (size_t i = 0; i < n_rates && n < S_SNAPSHOT_LINES - 64; i++) {
        const med_rate_view_t *r = &rates [i];
        if (r->recipient [0]) {
            snprintf (lines [n++], sizeof lines [0], "edge %s>%s minute=%u baseline=%.1f",
                      r->sender, r->recipient, r->minute, r->baseline);
            continue;
        }
        bus_session_t *session = bus_session_get (core, r->sender);
        snprintf (lines [n++], sizeof lines [0], "agent %s %s minute=%u baseline=%.1f hour=%llu%s",
                  r->sender, session && session->online? "online": "offline", r->minute,
                  r->baseline, (unsigned long long) r->hour,
                  med_monitor_quarantined (core->monitor, r->sender)? " QUARANTINED": "");
    }
    for (size_t i = 0; i < n_alerts && n < S_SNAPSHOT_LINES; i++) {
        if (!alerts [i]->closed_us) {
            snprintf (lines [n++], sizeof lines [0], "alert %s %s %s %.300s", alerts [i]->id,
                      bus_alert_kinds [alerts [i]->kind], alerts [i]->subject, alerts [i]->text);
        }
    }
    for (size_t i = 0; i < n; i++) {
        line_ptrs [i] = lines [i];
    }
    reply->n_lines = n;
    reply->lines = line_ptrs;
    snprintf (reason, size, "snapshot of %zu lines (%zu sessions known)", n, sessions);
    return BUS_OK;
}

bus_code_t
bus_monitor_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                     Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    if (!core->monitor) {
        snprintf (reason, size, "the monitor is not running");
        return BUS_EINVAL;
    }
    const char *who = peer->agent->name;
    const char *agent = control->agent? control->agent: "";
    uint64_t now = bus_now_us ();
    switch (control->op) {
        case BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_ALERTS:
            return s_list_alerts (core, reply, reason, size);
        case BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_QUARANTINE:
            return s_list_quarantine (core, reply, reason, size);
        case BULKHEAD__V1__CONTROL_OP__CONTROL_SNAPSHOT:
            return s_snapshot (core, reply, reason, size);
        case BULKHEAD__V1__CONTROL_OP__CONTROL_ACK_ALERT:
            if (!control->id || med_monitor_ack (core->monitor, control->id, who, now) != 0) {
                snprintf (reason, size, "no alert '%.32s' (see: bulkhead alerts)",
                          control->id? control->id: "");
                return BUS_ENOTFOUND;
            }
            snprintf (reason, size, "alert %.32s acknowledged by %s", control->id, who);
            return BUS_OK;
        case BULKHEAD__V1__CONTROL_OP__CONTROL_QUARANTINE:
            if (!bus_policy_agent (core->policy, agent)) {
                snprintf (reason, size, "no agent '%.64s' in the policy", agent);
                return BUS_ENOTFOUND;
            }
            if (!control->reason || !control->reason [0]) {
                snprintf (reason, size, "a quarantine needs a reason (--reason TEXT): it is "
                          "what the log and the held messages say");
                return BUS_EINVAL;
            }
            if (med_monitor_quarantine (core->monitor, agent, who, control->reason, now) != 0) {
                const med_quarantine_t *q = med_monitor_quarantined (core->monitor, agent);
                snprintf (reason, size, q? "%s is already quarantined (by %s)"
                                         : "%s: too many agents quarantined (%s)", agent,
                          q? q->by: "limit 256");
                return BUS_EINVAL;
            }
            bus_monitor_save (core);
            bus_core_say (core, "BUS-QUARANTINE", "agent=%s by=%s", agent, who);
            snprintf (reason, size, "%s quarantined by %s: %.400s; its sends are held until "
                      "`bulkhead release %s`", agent, who, control->reason, agent);
            return BUS_OK;
        case BULKHEAD__V1__CONTROL_OP__CONTROL_RELEASE:
            if (strcmp (agent, who) == 0) {
                //  As with taint: a steered agent must not launder itself.
                snprintf (reason, size, "%s may not end its own quarantine; another operator "
                          "must", who);
                return BUS_EPERM;
            }
            if (med_monitor_release (core->monitor, agent) != 0) {
                snprintf (reason, size, "%.64s is not quarantined", agent);
                return BUS_ENOTFOUND;
            }
            bus_monitor_save (core);
            bus_core_say (core, "BUS-RELEASE-QUARANTINE", "agent=%s by=%s", agent, who);
            //  Every hold is decided again: what was held only for the
            //  quarantine goes on; a held class still waits for its approvers.
            bus_approval_resume_all (core, false);
            snprintf (reason, size, "%s released from quarantine by %s; its held messages are "
                      "decided again", agent, who);
            return BUS_OK;
        default:
            snprintf (reason, size, "control operation %d is not the monitor's", (int) control->op);
            return BUS_EINVAL;
    }
}
