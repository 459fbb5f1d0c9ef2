/*  bus_decide.c: the one decision path, see bus_decide.h. */
#include "bus_approval.h"
#include "bus_decide.h"
#include "bus_grants.h"
#include "bus_intake.h"
#include "bus_record.h"
#include "bus_refusals.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

//  The record of a decided Send: what was asked, who asked, and the
//  chain's answer. Borrows from send and env; valid while both are.
static void
s_send_record (bus_core_t *core, record_t *rec, const bus_envelope_t *env,
               const Bulkhead__V1__Send *send, uint8_t digest [32])
{
    bus_record_init (core, rec, BULKHEAD__V1__RECORD_KIND__RECORD_SEND);
    bus_hash (digest, send->payload.data, send->payload.len);
    rec->sender = (char *) env->sender_name;
    rec->key_fp = env->key_fp? (char *) env->key_fp
                : env->sender? (char *) env->sender->key_fp: NULL;
    rec->recipient = send->recipient;
    rec->intent = send->intent;
    rec->intent_class = env->class_index >= 0
                      ? (char *) core->policy->classes [env->class_index].name: NULL;
    rec->action = send->action;
    rec->resource = send->resource;
    rec->tool = send->tool;
    rec->content_type = send->content_type;
    rec->message_id = send->message_id;
    rec->n_causes = send->n_causes;
    rec->causes = send->causes;
    rec->justification = send->justification;
    rec->has_payload_digest = true;
    rec->payload_digest.data = digest;
    rec->payload_digest.len = 32;
    rec->has_payload_size = true;
    rec->payload_size = send->payload.len;
    rec->has_payload = send->has_payload;
    rec->payload = send->payload;
    rec->has_verdict = true;
    rec->has_restricted = true;
    rec->restricted = env->restricted;
    rec->restricted_why = env->restricted_why [0]? (char *) env->restricted_why: NULL;
    rec->n_approvers = env->n_approvers;
    rec->approvers = (char **) env->approvers;
}

//  A message the chain passed: accepted for its recipient, after the record.
static void
s_accept (bus_core_t *core, const bus_envelope_t *env, const record_t *rec)
{
    bus_session_t *recipient = bus_session_get (core, env->recipient->name);
    if (recipient) {
        bus_session_accept (core, recipient, rec);
    }
    if (env->grant) {
        bus_grants_use (core, env->grant->id, rec);
    }
}

static bool
s_online (bus_core_t *core, const bus_envelope_t *env)
{
    bus_session_t *recipient = bus_session_get (core, env->recipient->name);
    return recipient && recipient->online;
}

void
bus_decide_send (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Send *send)
{
    bus_envelope_t env;
    bus_intake_envelope (core, &env, peer->agent->name, send, NULL);
    env.key_fp = peer->key_fp;
    const char *stage = "";
    bus_error_t err = { .code = BUS_OK };
    med_verdict_t decided = med_chain_run (core->chain, &env, &stage, &err);

    record_t rec;
    uint8_t digest [32];
    s_send_record (core, &rec, &env, send, digest);
    char reason [600];
    char approval_id [BUS_HOLD_ID_MAX + 1];
    if (decided == MED_PASS) {
        bool online = s_online (core, &env);
        rec.verdict = online? BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
                            : BULKHEAD__V1__VERDICT__VERDICT_QUEUED;
        const char *done = online? "delivered": "queued for offline recipient";
        if (env.grant) {
            snprintf (reason, sizeof reason, "%s under grant %s, approved in advance",
                      done, env.grant->id);
        }
        else {
            memcpy (reason, done, strlen (done) + 1);  //  per message: no formatting
        }
        stage = env.grant? "grant": "";
    }
    else {
        rec.verdict = decided == MED_HOLD? BULKHEAD__V1__VERDICT__VERDICT_HELD
                                         : BULKHEAD__V1__VERDICT__VERDICT_DENIED;
        rec.n_approvers = 0;            //  nobody's approval stands behind it
        snprintf (reason, sizeof reason, "%s", err.text);
    }
    if (decided == MED_REJECT) {
        //  A refused message keeps its digest and length, never its payload:
        //  what the bus did not carry costs the log no more than a line.
        rec.has_payload = false;
    }
    if (decided == MED_REJECT && (bus_store_load_refusal (err.code) || err.code == BUS_EHOLDFULL)) {
        //  Refused for load: counted, not logged one by one, and the message
        //  id stays unused so the sender may retry it.
        bus_refusals_note (core, peer->agent->name,
                           peer->key_fp? peer->key_fp: peer->agent->key_fp, err.code, reason,
                           send->payload.data, send->payload.len);
        bus_intake_ack (core, peer->session, peer->rid, peer->rid_len, send->message_id, rec.verdict, err.code,
                        reason, 0, rec.intent_class, env.restricted, NULL);
        rec.seq = 0;
        bus_core_observe (core, &rec, decided, false, stage);
        return;
    }
    if (decided == MED_HOLD) {
        //  Random, so ids cannot be guessed or enumerated.
        uint8_t raw [6];
        randombytes_buf (raw, sizeof raw);
        char hex [13];
        sodium_bin2hex (hex, sizeof hex, raw, sizeof raw);
        snprintf (approval_id, sizeof approval_id, "h-%s", hex);
        rec.approval_id = approval_id;
    }
    rec.code = (char *) bus_errword (decided == MED_PASS? BUS_OK: err.code);
    rec.reason = reason;
    rec.event = (char *) (stage [0]? stage: "chain");
    if (bus_core_append (core, &rec) != 0
    ||  (decided == MED_HOLD && bus_approval_enqueue (core, &rec, &env) != 0)) {
        bus_outbox_error (core->outbox, peer->rid, peer->rid_len, core->failure.code,
                          core->failure.text, send->message_id);
        return;
    }
    bus_session_t *sender = peer->session;
    if (sender) {
        bus_session_log_spent (sender, bus_store_last_size (core->store));
    }
    if (decided == MED_PASS) {
        s_accept (core, &env, &rec);
    }
    else {
        bus_core_say (core, decided == MED_HOLD? "BUS-HOLD": "BUS-DENY",
                      "seq=%llu sender=%s recipient=%.64s intent=%s stage=%s code=%s reason=\"%s\"",
                      (unsigned long long) rec.seq, peer->agent->name, send->recipient, send->intent,
                      stage, bus_errname (err.code), reason);
    }
    bus_intake_ack (core, peer->session, peer->rid, peer->rid_len, send->message_id, rec.verdict,
                    decided == MED_PASS? BUS_OK: err.code, reason, rec.seq, rec.intent_class,
                    env.restricted, rec.approval_id);
    bus_core_observe (core, &rec, decided, false, stage);
}

//  The Send a held record asked for, borrowing the record's fields.
static void
s_send_from (Bulkhead__V1__Send *send, const record_t *held)
{
    bulkhead__v1__send__init (send);
    send->message_id = held->message_id;
    send->recipient = held->recipient;
    send->intent = held->intent;
    send->action = held->action;
    send->resource = held->resource;
    send->content_type = held->content_type;
    send->has_payload = held->has_payload;
    send->payload = held->payload;
    send->n_causes = held->n_causes;
    send->causes = held->causes;
    send->justification = held->justification;
    send->tool = held->tool;
}

//  The chain passed a held message: log it again as delivered or queued,
//  naming the votes that count, and mark the hold released, all in this
//  batch.
static med_verdict_t
s_release (bus_core_t *core, bus_hold_t *hold, const bus_envelope_t *env,
           const Bulkhead__V1__Send *send, bus_error_t *result)
{
    record_t rec;
    uint8_t digest [32];
    s_send_record (core, &rec, env, send, digest);
    bool online = s_online (core, env);
    rec.verdict = online? BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
                        : BULKHEAD__V1__VERDICT__VERDICT_QUEUED;
    uint32_t quorum = med_hold_quorum (&core->policy->classes [env->class_index]);
    char text [300];
    const bus_class_t *cls = &core->policy->classes [env->class_index];
    if (!cls->hold && !env->hold_required) {
        snprintf (text, sizeof text, "released: the live policy no longer holds %s messages "
                  "(%u approval%s given)", cls->name, env->n_approvers,
                  env->n_approvers == 1? "": "s");
    }
    else {
        snprintf (text, sizeof text, "released: approved by %u of %u", env->n_approvers, quorum);
    }
    rec.code = (char *) bus_errword (BUS_OK);
    rec.reason = text;
    rec.event = "release";
    rec.has_ref_seq = true;
    rec.ref_seq = hold->seq;
    rec.approval_id = hold->id;
    rec.actor = NULL;
    if (bus_core_append (core, &rec) != 0) {
        *result = core->failure;
        return MED_REJECT;
    }
    s_accept (core, env, &rec);
    bus_core_observe (core, &rec, MED_PASS, true, "");
    bus_core_say (core, "BUS-RELEASE", "id=%s seq=%llu held=%llu", hold->id,
                  (unsigned long long) rec.seq, (unsigned long long) hold->seq);
    bus_fail (result, BUS_OK, "%s; released to %s", text, hold->recipient);
    bus_approval_released (core, hold, &rec);
    return MED_PASS;
}

med_verdict_t
bus_decide_resume (bus_core_t *core, bus_hold_t *hold, bus_error_t *result)
{
    record_t *held = NULL;
    bus_error_t err;
    if (bus_store_record (core->store, hold->seq, &held, &err) != 0) {
        bus_core_say (core, "BUS-HOLD", "id=%s reason=\"cannot read held record: %s\"", hold->id,
                      err.text);
        bus_fail (result, BUS_OK, "%s stays held: its record cannot be read (%s)", hold->id,
                  err.text);
        return MED_HOLD;
    }
    Bulkhead__V1__Send send;
    s_send_from (&send, held);
    bus_envelope_t env;
    bus_intake_envelope (core, &env, hold->sender, &send, hold);
    env.key_fp = held->key_fp;              //  the key it was sent with
    const char *stage = "";
    err.code = BUS_OK;
    med_verdict_t decided = med_chain_run (core->chain, &env, &stage, &err);
    hold->retry = false;
    if (decided == MED_PASS) {
        decided = s_release (core, hold, &env, &send, result);
    }
    else
    if (decided == MED_HOLD) {
        bus_fail (result, BUS_OK, "still %s", err.text);
    }
    else
    if (err.code == BUS_EBACKLOG) {
        //  A full mailbox is a matter of time, not of rules: the hold keeps
        //  its votes and is decided again on the bus's timer until there is
        //  room, or its time ends.
        hold->retry = true;
        bus_fail (result, BUS_EBACKLOG, "not released yet: %.400s; decided again when there "
                  "is room", err.text);
        decided = MED_HOLD;
    }
    else {
        char why [400];
        snprintf (why, sizeof why, "denied when decided again (%s): %.360s", stage, err.text);
        bus_fail (result, err.code, "%s", why);
        bus_approval_close (core, hold, BULKHEAD__V1__HOLD_STATE__HOLD_DENIED, NULL, err.code, why);
    }
    //  The record's fields were only borrowed: freeing it frees each once.
    bulkhead__v1__record__free_unpacked (held, NULL);
    return decided;
}
