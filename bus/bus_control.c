/*  bus_control.c: the control table, see bus_control.h. */
#include "bus_approval.h"
#include "bus_control.h"
#include "bus_grants.h"
#include "bus_monitor.h"
#include "bus_record.h"
#include "bus_taint.h"
#include "bus_wire.h"
#include "med_monitor.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

typedef bus_code_t (handler_fn) (bus_core_t *core, bus_peer_t *peer,
                                 const Bulkhead__V1__Control *control,
                                 Bulkhead__V1__ControlReply *reply, char *reason, size_t size);

//  Operators list taint: every agent of the policy, so sessions not yet
//  made are read too.
static bus_code_t
s_list_taint (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
              Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    (void) peer;
    (void) control;
    static char lines [256][160];
    static char *line_ptrs [256];
    size_t n = 0;
    for (size_t i = 0; i < core->policy->agent_count && n < 256; i++) {
        bus_session_t *session = bus_session_get (core, core->policy->agents [i].name);
        if (session && session->taint_seq) {
            time_t secs = (time_t) (session->taint_us / 1000000);
            struct tm tm;
            char when [32];
            strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&secs, &tm));
            snprintf (lines [n], sizeof lines [n], "%s tainted since %s through seq %llu%s",
                      session->agent, when, (unsigned long long) session->taint_seq,
                      core->policy->agents [i].causal? " (causal mode: not applied)": "");
            line_ptrs [n] = lines [n];
            n++;
        }
    }
    reply->n_lines = n;
    reply->lines = line_ptrs;
    snprintf (reason, size, "%zu tainted agent%s", n, n == 1? "": "s");
    return BUS_OK;
}

//  Clearing is audited, and nobody clears their own: an agent steered by
//  injected content must not be able to launder itself, whatever its roles.
static bus_code_t
s_clear_taint (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
               Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    (void) reply;
    const char *agent = control->agent? control->agent: "";
    if (!bus_policy_agent (core->policy, agent)) {
        snprintf (reason, size, "no agent '%.64s' in the policy", agent);
        return BUS_ENOTFOUND;
    }
    if (strcmp (agent, peer->agent->name) == 0) {
        snprintf (reason, size, "%s may not clear its own taint; another operator must", agent);
        return BUS_EPERM;
    }
    bus_session_t *session = bus_session_get (core, agent);
    if (!session || session->taint_seq == 0) {
        snprintf (reason, size, "%s is not tainted", agent);
        return BUS_ENOTFOUND;
    }
    uint64_t since = session->taint_seq;
    bus_error_t err;
    if (bus_taint_clear (core, session, &err) != 0) {
        snprintf (reason, size, "%s", err.text);
        return err.code;
    }
    snprintf (reason, size, "taint of %s (since seq %llu) cleared by %s", agent,
              (unsigned long long) since, peer->agent->name);
    bus_core_say (core, "BUS-CLEAR", "agent=%s by=%s", agent, peer->agent->name);
    return BUS_OK;
}

//  Operators lower the restricted mark of one message, with a reason; never
//  an agent for itself (the operator may not declassify a message sent to
//  it or by it).
static bus_code_t
s_declassify (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
              Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    (void) reply;
    if (!control->has_seq || !control->reason || !control->reason [0]) {
        snprintf (reason, size, "declassify needs the message's seq and a reason");
        return BUS_EINVAL;
    }
    record_t *rec = NULL;
    bus_error_t err;
    if (bus_store_record (core->store, control->seq, &rec, &err) == 0) {
        bool own = (rec->sender && strcmp (rec->sender, peer->agent->name) == 0)
                || (rec->recipient && strcmp (rec->recipient, peer->agent->name) == 0);
        bulkhead__v1__record__free_unpacked (rec, NULL);
        if (own) {
            snprintf (reason, size, "%s may not declassify a message it sent or received; "
                      "another operator must", peer->agent->name);
            return BUS_EPERM;
        }
    }
    if (bus_taint_declassify (core, control->seq, &err) != 0) {
        snprintf (reason, size, "%s", err.text);
        return err.code;
    }
    snprintf (reason, size, "seq %llu declassified by %s: %.400s; it no longer restricts "
              "what it causes, its later deliveries are unmarked, and the taint it alone "
              "caused is cleared", (unsigned long long) control->seq, peer->agent->name,
              control->reason);
    bus_core_say (core, "BUS-DECLASSIFY", "seq=%llu by=%s", (unsigned long long) control->seq,
                  peer->agent->name);
    return BUS_OK;
}

//  Records a purge call looks at: a slice, so the bus's loop (and every
//  agent's latency) never waits long on one call; the CLI calls again.
#define S_PURGE_SLICE   10000

//  Operators drop old payloads (retention). Never one a recipient has not
//  acknowledged yet (the mailbox replays it from the log) nor one still
//  held (approvers read it, its digest names the stored bytes).
static bus_code_t
s_purge (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
         Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    static Bulkhead__V1__PurgeReply purge;
    bulkhead__v1__purge_reply__init (&purge);
    uint64_t now = bus_now_us ();
    if (!control->has_before_us || control->before_us == 0 || control->before_us > now) {
        snprintf (reason, size, "purge needs before_us, a time in the past");
        return BUS_EINVAL;
    }
    bus_error_t err;
    uint64_t lo, hi;
    if (bus_store_time_range (core->store, 0, control->before_us - 1, &lo, &hi, &err) != 0) {
        snprintf (reason, size, "%s", err.text);
        return err.code;
    }
    uint64_t start = control->has_from_seq && control->from_seq > lo? control->from_seq: lo;
    //  In a data dir upgraded from format 1, the records before chain_from
    //  are chained by their stored bytes, as verify checks them: dropping
    //  a payload there would break that chain. They keep their payloads.
    uint64_t chain_from = bus_store_chain_from (core->store);
    bool old_format = chain_from > 1 && lo < chain_from;
    start = start < chain_from? chain_from: start;
    uint64_t end = hi - start >= S_PURGE_SLICE? start + S_PURGE_SLICE - 1: hi;
    for (uint64_t seq = start; seq <= end && hi >= start; seq++) {
        record_t *rec = NULL;
        if (bus_store_record (core->store, seq, &rec, &err) != 0) {
            continue;                   //  a gap or damage: verify's to report
        }
        bool old = rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND && rec->has_payload
                && rec->time_us < control->before_us;
        bool keep = false;
        if (old && rec->has_verdict && rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD) {
            keep = !rec->approval_id || bus_holds_find (core->holds, rec->approval_id);
        }
        else if (old && rec->recipient && rec->has_verdict
             && (rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
              || rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED)) {
            uint64_t acked = 0;
            keep = bus_store_cursor_get (core->store, rec->recipient, &acked, &err) != 0
                || seq > acked;
        }
        bulkhead__v1__record__free_unpacked (rec, NULL);
        purge.kept += old && keep;
        if (old && !keep) {
            int rc = bus_store_purge_payload (core->store, seq, now, &err);
            if (rc < 0) {
                snprintf (reason, size, "%s", err.text);
                return err.code;
            }
            purge.purged += rc == 0;
        }
    }
    purge.next_seq = hi >= start && end < hi? end + 1: 0;
    purge.has_chain_from = old_format;
    purge.chain_from = old_format? chain_from: 0;
    reply->purge = &purge;
    time_t secs = (time_t) (control->before_us / 1000000);
    struct tm tm;
    char when [32];
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&secs, &tm));
    int n = snprintf (reason, size, "purged %llu payloads of messages before %s (seq %llu..%llu); "
                      "%llu kept (still queued or held)", (unsigned long long) purge.purged,
                      when, (unsigned long long) start,
                      (unsigned long long) (hi >= start? end: start),
                      (unsigned long long) purge.kept);
    if (purge.next_seq && n > 0 && (size_t) n < size) {
        n += snprintf (reason + n, size - (size_t) n, "; more from seq %llu",
                       (unsigned long long) purge.next_seq);
    }
    if (old_format && n > 0 && (size_t) n < size) {
        snprintf (reason + n, size - (size_t) n, "; records 1..%llu were written before the data "
                  "dir's upgrade to format 2 and keep their payloads: verify checks them by "
                  "their stored bytes", (unsigned long long) chain_from - 1);
    }
    bus_core_say (core, "BUS-PURGE", "purged=%llu kept=%llu before_us=%llu by=%s",
                  (unsigned long long) purge.purged, (unsigned long long) purge.kept,
                  (unsigned long long) control->before_us, peer->agent->name);
    return BUS_OK;
}

typedef struct {
    Bulkhead__V1__ControlOp op;
    unsigned roles;                     //  any of these
    const char *role_name;
    handler_fn *handler;                //  NULL: the core's reload
} row_t;

static const row_t s_table [] = {
    { BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD, BUS_ROLE_OPERATOR, "an operator", NULL },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING, BUS_ROLE_APPROVER, "an approver",
      bus_approval_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, BUS_ROLE_APPROVER, "an approver",
      bus_approval_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_DENY, BUS_ROLE_APPROVER, "an approver",
      bus_approval_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD, BUS_ROLE_APPROVER, "an approver",
      bus_approval_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, BUS_ROLE_APPROVER, "an approver",
      bus_approval_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT, BUS_ROLE_APPROVER | BUS_ROLE_OPERATOR,
      "an approver or an operator", bus_grants_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT, BUS_ROLE_OPERATOR, "an operator",
      s_list_taint },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_CLEAR_TAINT, BUS_ROLE_OPERATOR, "an operator",
      s_clear_taint },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_DECLASSIFY, BUS_ROLE_OPERATOR, "an operator",
      s_declassify },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_PURGE, BUS_ROLE_OPERATOR, "an operator", s_purge },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_ALERTS, BUS_ROLE_OPERATOR | BUS_ROLE_MONITOR,
      "an operator or a monitor", bus_monitor_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_ACK_ALERT, BUS_ROLE_OPERATOR | BUS_ROLE_MONITOR,
      "an operator or a monitor", bus_monitor_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_QUARANTINE, BUS_ROLE_OPERATOR, "an operator",
      bus_monitor_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_RELEASE, BUS_ROLE_OPERATOR, "an operator",
      bus_monitor_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_QUARANTINE, BUS_ROLE_OPERATOR, "an operator",
      bus_monitor_control },
    { BULKHEAD__V1__CONTROL_OP__CONTROL_SNAPSHOT, BUS_ROLE_OPERATOR | BUS_ROLE_MONITOR,
      "an operator or a monitor", bus_monitor_control },
};

static const char *
s_role_word (unsigned roles)
{
    if (roles & BUS_ROLE_MONITOR) {
        return "operator or monitor";
    }
    return roles & BUS_ROLE_OPERATOR? (roles & BUS_ROLE_APPROVER? "approver or operator": "operator")
                                    : "approver";
}

//  Control fields are checked like a Send's before anything reads, logs
//  or echoes them. NULL if fine, else the sentence.
static const char *
s_invalid (const Bulkhead__V1__Control *control)
{
    if (control->id && !bus_id_valid (control->id, 64)) {
        return "id must be 1-64 printable ASCII characters";
    }
    const char *names [] = { control->agent, control->recipient, control->intent_class };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        if (names [i] && !bus_name_valid (names [i], strlen (names [i]))) {
            return "agent, recipient and intent_class must be names (a-z 0-9 . _ -, 1-64 bytes)";
        }
    }
    if (control->action && !bus_id_valid (control->action, 256)) {
        return "action must be 1-256 printable ASCII characters";
    }
    if (control->reason && !bus_text_valid (control->reason, 1024)) {
        return "reason must be UTF-8 text of at most 1024 bytes, no control characters";
    }
    return NULL;
}

void
bus_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
             bus_reload_fn *reload)
{
    const char *invalid = s_invalid (control);
    if (invalid) {
        bus_core_refuse (core, peer, BUS_EMALFORMED, invalid, NULL);
        return;
    }
    Bulkhead__V1__ControlReply reply = BULKHEAD__V1__CONTROL_REPLY__INIT;
    reply.op = control->op;
    bus_code_t code = BUS_EINVAL;
    char reason [600];
    snprintf (reason, sizeof reason, "control operation %d is not supported by this bus",
              (int) control->op);
    //  A reload frees the policy peer->agent points into: keep a copy.
    char who [BUS_NAME_MAX + 1];
    snprintf (who, sizeof who, "%s", peer->agent->name);
    //  The kill switch takes every control command away, reads included:
    //  a suspect approver must not vote or read what waits, a suspect
    //  operator must not reload, release an accomplice or quarantine the
    //  others. Another operator releases it; were every operator
    //  quarantined, whoever runs the bus adds one to the policy (SIGHUP).
    const med_quarantine_t *quarantine = core->monitor? med_monitor_quarantined (core->monitor, who)
                                                      : NULL;
    size_t rows = sizeof s_table / sizeof s_table [0];
    if (quarantine) {
        code = BUS_EQUARANTINE;
        snprintf (reason, sizeof reason, "%s is quarantined (by %s: %.300s): its control commands "
                  "are refused until another operator releases it (bulkhead release %s)", who,
                  quarantine->by, quarantine->reason, who);
        rows = 0;
    }
    for (size_t i = 0; i < rows; i++) {
        const row_t *row = &s_table [i];
        if (row->op != control->op) {
            continue;
        }
        if (!(peer->agent->roles & row->roles)) {
            code = BUS_EPERM;
            snprintf (reason, sizeof reason, "%s is not %s (policy: role = %s)", who,
                      row->role_name, s_role_word (row->roles));
        }
        else
        if (row->handler) {
            code = row->handler (core, peer, control, &reply, reason, sizeof reason);
        }
        else {
            bus_error_t err;
            if (reload (core, who, &err) != 0) {
                code = err.code;
                snprintf (reason, sizeof reason, "reload refused, old policy kept: %.500s", err.text);
            }
            else {
                code = BUS_OK;
                snprintf (reason, sizeof reason, "policy %.16s loaded", core->policy->hash);
            }
        }
        break;
    }
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_CONTROL);
    rec.sender = who;
    rec.actor = who;
    rec.recipient = control->agent;
    rec.approval_id = control->id;
    rec.has_ref_seq = control->has_seq;
    rec.ref_seq = control->seq;
    rec.code = (char *) bus_errword (code);
    rec.reason = reason;
    char event [32];
    snprintf (event, sizeof event, "control op %d", (int) control->op);
    rec.event = event;
    if (reply.purge) {
        rec.has_purge_before_us = true;
        rec.purge_before_us = control->before_us;
        rec.has_count = true;
        rec.count = reply.purge->purged;
    }
    bus_core_append (core, &rec);

    reply.code = (char *) bus_errword (code);
    reply.reason = reason;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY;
    frame.control_reply = &reply;
    bus_outbox_frame (core->outbox, peer->rid, peer->rid_len, &frame, NULL);
}
