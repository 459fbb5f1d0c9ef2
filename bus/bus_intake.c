/*  bus_intake.c: checks and look-ups before the chain, see bus_intake.h. */
#include "bus_intake.h"
#include "bus_approval.h"
#include "bus_record.h"
#include "bus_refusals.h"
#include "bus_taint.h"
#include "bus_wire.h"
#include "med_monitor.h"

#include <stdio.h>
#include <string.h>

#define BUS_FIELD_MAX           256
#define BUS_JUSTIFICATION_MAX   4096
#define BUS_CAUSES_MAX          64

const char *
bus_intake_invalid (const Bulkhead__V1__Send *send)
{
    if (!bus_id_valid (send->message_id, BUS_MESSAGE_ID_MAX)) {
        return "message_id must be 1-128 printable ASCII characters";
    }
    if (!bus_name_valid (send->recipient, strlen (send->recipient))) {
        return "recipient is not a valid agent name (a-z 0-9 . _ -)";
    }
    if (!bus_name_valid (send->intent, strlen (send->intent))) {
        return "intent is not a valid class name (a-z 0-9 . _ -)";
    }
    //  Actions have one alphabet, printable ASCII, so no homoglyph or
    //  invisible character can make one look like another; letters match
    //  without regard to case (bus_glob_match).
    if (send->action && !bus_id_valid (send->action, BUS_FIELD_MAX)) {
        return "action must be 1-256 printable ASCII characters, no spaces (e.g. transfer.create)";
    }
    const char *fields [] = { send->action, send->resource, send->content_type,
                              send->source, send->tool, send->sender };
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
        if (fields [i] && !bus_text_valid (fields [i], BUS_FIELD_MAX)) {
            return "action, resource, content_type, source, tool and sender must be "
                   "UTF-8 text of at most 256 bytes";
        }
    }
    if (send->justification && !bus_text_valid (send->justification, BUS_JUSTIFICATION_MAX)) {
        return "justification must be UTF-8 text of at most 4096 bytes";
    }
    if (send->n_causes > BUS_CAUSES_MAX) {
        return "at most 64 causes";
    }
    return NULL;
}

void
bus_intake_ack (bus_core_t *core, bus_session_t *session, const uint8_t *rid, size_t rid_len,
                const char *message_id,
                Bulkhead__V1__Verdict verdict, bus_code_t code, const char *reason,
                uint64_t seq, const char *intent_class, bool restricted, const char *approval_id)
{
    Bulkhead__V1__Ack ack = BULKHEAD__V1__ACK__INIT;
    ack.message_id = (char *) message_id;
    ack.verdict = verdict;
    ack.code = (char *) bus_errword (code);
    ack.reason = (char *) reason;
    ack.has_seq = seq > 0;
    ack.seq = seq;
    ack.has_leaf = seq > 0;             //  every record is a leaf of the log's tree
    ack.leaf = seq > 0? seq - 1: 0;
    ack.intent_class = (char *) intent_class;
    ack.has_restricted = true;
    ack.restricted = restricted;
    ack.approval_id = (char *) approval_id;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ACK;
    frame.ack = &ack;
    bus_out_t *out = bus_outbox_frame (core->outbox, rid, rid_len, &frame, message_id);
    if (out) {
        out->session = session;         //  its cork, if its connection takes bundles
    }
}

bool
bus_intake_duplicate (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Send *send)
{
    uint64_t first_seq;
    bus_error_t err;
    record_t *first = NULL;
    if (bus_store_find_msgid (core->store, peer->agent->name, send->message_id, &first_seq, &err) != 0
    ||  bus_store_record (core->store, first_seq, &first, &err) != 0) {
        return false;
    }
    char reason [200];
    snprintf (reason, sizeof reason, "message id already used: first verdict %s at seq %llu; "
              "not delivered again", first->code? first->code: "?", (unsigned long long) first_seq);
    //  Counted, not logged one by one: resending an id costs the log nothing.
    bus_refusals_note (core, peer->agent->name, peer->key_fp? peer->key_fp: peer->agent->key_fp,
                       BUS_EDUPLICATE,
                       "resent message ids answered with their first verdict", NULL, 0);
    bus_intake_ack (core, peer->session, peer->rid, peer->rid_len, send->message_id, first->verdict,
                    BUS_EDUPLICATE, reason, first_seq, first->intent_class,
                    first->has_restricted && first->restricted, first->approval_id);
    bulkhead__v1__record__free_unpacked (first, NULL);
    return true;
}

uint32_t
bus_intake_quarantined (bus_core_t *core)
{
    _Static_assert (BUS_QUARANTINED_MAX >= MED_MON_QUARANTINE, "room for every quarantine");
    return core->monitor? (uint32_t) med_monitor_quarantined_names (core->monitor, core->quarantined,
                                                                  BUS_QUARANTINED_MAX)
                        : 0;
}

void
bus_intake_envelope (bus_core_t *core, bus_envelope_t *env, const char *sender,
                     const Bulkhead__V1__Send *send, const bus_hold_t *resume)
{
    memset (env, 0, sizeof *env);
    const bus_policy_t *policy = core->policy;
    env->policy = policy;
    env->sender = bus_policy_agent (policy, sender);
    env->sender_name = sender;
    env->recipient = bus_policy_agent (policy, send->recipient);
    env->send = send;
    env->resume = resume;
    env->now_us = bus_now_us ();
    env->class_index = bus_policy_class (policy, send->intent);
    const med_quarantine_t *quarantine = core->monitor? med_monitor_quarantined (core->monitor, sender)
                                                      : NULL;
    if (quarantine) {
        snprintf (core->quarantine_why, sizeof core->quarantine_why, "by %s: %s", quarantine->by,
                  quarantine->reason);
        env->quarantine = core->quarantine_why;
    }
    env->n_quarantined = bus_intake_quarantined (core);
    env->quarantined = core->quarantined;
    if (env->sender) {
        bus_session_t *session = bus_session_get (core, sender);
        env->sender_tainted = session && session->taint_seq > 0;
        env->taint_seq = session? session->taint_seq: 0;
        env->log_left = session? bus_session_log_left (core, session, env->sender, env->now_us): 0;
        env->log_checked = true;
    }
    if (env->recipient) {
        bus_session_t *session = bus_session_get (core, env->recipient->name);
        //  No session (out of memory): count the mailbox as full.
        env->recipient_pending = session? session->pending: UINT32_MAX;
        env->recipient_pending_sender = session? bus_session_pending_from (session, sender)
                                               : UINT32_MAX;
    }
    //  Causes, from the compact index (no record is decoded): a cause
    //  counts only if this sender sent it or was delivered it, so no agent
    //  learns anything of a record it never saw; and restricted follows
    //  causes: one restricted cause is enough.
    bus_error_t err;
    for (size_t i = 0; i < send->n_causes; i++) {
        bus_cause_t cause;
        uint64_t seq = send->causes [i];
        bool seen = bus_store_cause (core->store, seq, &cause, &err) == 0
                 && (strcmp (cause.sender, sender) == 0
                     || (strcmp (cause.recipient, sender) == 0
                         && (cause.flags & BUS_CAUSE_ACCEPTED)));
        if (!seen) {
            env->foreign_cause = seq;
            break;
        }
        if ((cause.flags & BUS_CAUSE_RESTRICTED) && !env->cause_restricted
        &&  !bus_taint_declassified (core, seq)) {
            env->cause_restricted = true;
            env->cause_seq = seq;
        }
    }
    env->holds_total = bus_holds_size (core->holds);
    env->holds_sender = env->holds_total? bus_holds_count (core->holds, sender): 0;
    env->n_grants = bus_holds_grant_count (core->holds);
    env->grants = env->n_grants? bus_holds_grant_at (core->holds, 0): NULL;
    //  A grant is an approval given in advance: like a vote, it does not
    //  count for a message its approver's own message led to. Looked for
    //  only where a grant could apply (this sender, this recipient).
    env->n_steered = 0;
    env->steered_over = false;
    for (uint32_t i = 0; send->n_causes && !env->foreign_cause && i < env->n_grants; i++) {
        const bus_grant_t *grant = &env->grants [i];
        if (strcmp (grant->sender, sender) != 0 || !send->recipient
        ||  strcmp (grant->recipient, send->recipient) != 0
        ||  med_hold_quarantined (env->steered, env->n_steered, grant->approver)
        ||  !bus_approval_caused_by (core, send->causes, send->n_causes, grant->approver)) {
            continue;
        }
        if (env->n_steered == BUS_ENVELOPE_STEERED_MAX) {
            env->steered_over = true;
            break;
        }
        env->steered [env->n_steered++] = grant->approver;
    }
}
