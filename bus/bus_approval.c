/*  bus_approval.c: votes, digests, expiry, see bus_approval.h. */
#include "bus_approval.h"
#include "bus_decide.h"
#include "bus_intake.h"
#include "bus_record.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The class of hold under the live policy, or NULL if it is gone.
static const bus_class_t *
s_class (bus_core_t *core, const bus_hold_t *hold)
{
    int index = bus_policy_class (core->policy, hold->intent_class);
    return index < 0? NULL: &core->policy->classes [index];
}

//  The votes that count under the live policy (approvers it still names
//  for the class, none quarantined now) into votes, and how many; the live
//  quorum into quorum. What approvers are shown is what the bus counts: a
//  vote a reload no longer counts would make a hold look approved.
static uint32_t
s_counted_votes (bus_core_t *core, const bus_hold_t *hold, const char **votes, uint32_t *quorum)
{
    const bus_class_t *cls = s_class (core, hold);
    *quorum = cls? med_hold_quorum (cls): hold->quorum;
    uint32_t n_quarantined = bus_intake_quarantined (core);
    return cls? med_hold_votes (core->policy, cls, hold, core->quarantined, n_quarantined, votes): 0;
}

static uint32_t
s_counted (bus_core_t *core, const bus_hold_t *hold, uint32_t *quorum)
{
    const char *votes [BUS_HOLD_VOTES_MAX];
    return s_counted_votes (core, hold, votes, quorum);
}

//  Whether agent is told of holds of cls as they come and change: an
//  approver of the class, not quarantined (a suspect approver learns
//  nothing more of what waits; core->quarantined is filled).
static bool
s_told (bus_core_t *core, const bus_agent_t *agent, const bus_class_t *cls, uint32_t n_quarantined)
{
    return med_hold_may_approve (agent, cls)
        && !med_hold_quarantined (core->quarantined, n_quarantined, agent->name);
}

//  How many records the walk for an approver's own part in a held message
//  reads, where the ancestry filter cannot say "no".
#define BUS_CAUSE_VISITS    256

//  The seq of a message sent by agent among causes (the n seqs a message
//  names) and theirs, transitively; 0 if none; BUS_CAUSED_MAYBE if the
//  walk had to stop before it could tell. An approver that caused what it
//  approves would be approving its own request: a steered approver could
//  launder through it.
//
//  Each cause's ancestry filter (bus_store.h) says whether agent may have
//  sent anything it descends from: where it says no, that branch is not
//  walked at all, however deep it goes; where it says maybe, the records
//  are read to find the message or rule it out (a filter's false maybe).
//  So the walk follows only the branches that may lead to agent, as many
//  generations back as they go, and stops at BUS_CAUSE_VISITS records: a
//  maybe left unsettled then answers BUS_CAUSED_MAYBE, and the approver is
//  treated as having caused it (fail closed; before, a walk cut at 16
//  generations answered "no").
static bool
s_queued (const uint64_t *queue, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++) {
        if (queue [i] == seq) {
            return true;
        }
    }
    return false;
}

uint64_t
bus_approval_caused_by (bus_core_t *core, const uint64_t *causes, size_t n, const char *agent)
{
    uint64_t queue [BUS_CAUSE_VISITS];
    size_t head = 0, tail = 0;
    bool stopped = false;
    for (size_t i = 0; i < n && !stopped; i++) {
        stopped = tail == BUS_CAUSE_VISITS;
        if (!stopped) {
            queue [tail++] = causes [i];
        }
    }
    while (head < tail) {
        uint64_t at = queue [head++];
        bus_cause_t entry;
        bus_error_t err;
        if (bus_store_cause (core->store, at, &entry, &err) != 0) {
            stopped = true;             //  cannot tell: no entry, or unreadable
            continue;
        }
        if (strcmp (entry.sender, agent) == 0) {
            return at;
        }
        if (!bus_ancestry_may_hold (entry.ancestry, agent)) {
            continue;                   //  nothing before it is agent's
        }
        record_t *rec = NULL;
        if (bus_store_record (core->store, at, &rec, &err) != 0) {
            stopped = true;
            continue;
        }
        for (size_t i = 0; i < rec->n_causes; i++) {
            if (rec->causes [i] >= at || s_queued (queue, tail, rec->causes [i])) {
                continue;               //  causes come before: no cycles; each once
            }
            if (tail == BUS_CAUSE_VISITS) {
                stopped = true;
                break;
            }
            queue [tail++] = rec->causes [i];
        }
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    return stopped? BUS_CAUSED_MAYBE: 0;
}

//  The same for the causes of record seq (a held message): its own
//  ancestry first, which mostly answers alone.
static uint64_t
s_caused_by (bus_core_t *core, uint64_t seq, const char *agent)
{
    bus_cause_t entry;
    bus_error_t err;
    if (bus_store_cause (core->store, seq, &entry, &err) == 0
    &&  !bus_ancestry_may_hold (entry.ancestry, agent)) {
        return 0;
    }
    record_t *rec = NULL;
    if (bus_store_record (core->store, seq, &rec, &err) != 0) {
        return BUS_CAUSED_MAYBE;
    }
    uint64_t found = bus_approval_caused_by (core, rec->causes, rec->n_causes, agent);
    bulkhead__v1__record__free_unpacked (rec, NULL);
    return found;
}

//  "its own message (seq N) is among the causes", or that it may be.
static void
s_own_part (uint64_t own, char *out, size_t size)
{
    if (own == BUS_CAUSED_MAYBE) {
        snprintf (out, size, "its own message may be among the causes of what it would release "
                  "(the bus read %d of them and could not rule it out)", BUS_CAUSE_VISITS);
    }
    else {
        snprintf (out, size, "its own message (seq %llu) is among the causes of what it would "
                  "release", (unsigned long long) own);
    }
}

//  Why approver me may not decide on hold (into why), or NULL if it may:
//  its own message, or one of its own messages among the causes. Said in
//  listings and notices so that a console shows the reason, not a button
//  that would fail.
static const char *
s_blocked (bus_core_t *core, const bus_hold_t *hold, const char *me, char *why, size_t size)
{
    if (strcmp (hold->sender, me) == 0) {
        snprintf (why, size, "its own message: another approver must decide");
        return why;
    }
    uint64_t own = s_caused_by (core, hold->seq, me);
    if (own) {
        char part [160];
        s_own_part (own, part, sizeof part);
        snprintf (why, size, "%s: another approver must decide", part);
        return why;
    }
    return NULL;
}

//  What Pending notices and LIST-PENDING carry of the held record: its
//  first bytes; GET_HOLD gives them all.
#define BUS_PENDING_RECORD_MAX  4096

//  The held record's stored bytes (malloc'd, caller frees), or NULL.
static uint8_t *
s_held_bytes (bus_core_t *core, const bus_hold_t *hold, size_t *size)
{
    void *data = NULL;
    bus_error_t err;
    if (bus_store_record_raw (core->store, hold->seq, &data, size, &err) != 0) {
        bus_core_say (core, "BUS-HOLD", "id=%s reason=\"cannot read held record: %s\"", hold->id,
                      err.text);
        return NULL;
    }
    return data;
}

//  Fills pending for hold; *bytes gets the record's bytes it borrows
//  (caller frees after packing).
static void
s_pending_fill (bus_core_t *core, Bulkhead__V1__Pending *pending, const bus_hold_t *hold,
                char **votes, uint8_t **bytes, const char *blocked)
{
    bulkhead__v1__pending__init (pending);
    pending->approval_id = (char *) hold->id;
    pending->sender = (char *) hold->sender;
    pending->recipient = (char *) hold->recipient;
    pending->intent_class = (char *) hold->intent_class;
    pending->action = hold->action [0]? (char *) hold->action: NULL;
    pending->resource = hold->resource [0]? (char *) hold->resource: NULL;
    pending->justification = hold->justification;
    pending->has_restricted = true;
    pending->restricted = hold->restricted;
    pending->digest.data = (uint8_t *) hold->digest;
    pending->digest.len = sizeof hold->digest;
    pending->has_expires_us = true;
    pending->expires_us = hold->expires_us;
    pending->has_seq = true;
    pending->seq = hold->seq;
    //  The live quorum and the votes that count: a reload may have raised
    //  or lowered the one and struck some of the other.
    uint32_t quorum;
    pending->n_votes = s_counted_votes (core, hold, (const char **) votes, &quorum);
    pending->has_quorum = true;
    pending->quorum = quorum;
    pending->votes = votes;
    pending->blocked = (char *) blocked;
    size_t size = 0;
    *bytes = s_held_bytes (core, hold, &size);
    if (*bytes) {
        pending->has_record = true;
        pending->record.data = *bytes;
        pending->record.len = size < BUS_PENDING_RECORD_MAX? size: BUS_PENDING_RECORD_MAX;
        pending->has_record_size = true;
        pending->record_size = size;
    }
}

//  Tells every connected approver of the hold's class that it waits, each
//  with its own `blocked`: an approver whose message is among the causes,
//  or that sent it, hears of it too, and why it may not decide.
static void
s_notify (bus_core_t *core, const bus_hold_t *hold)
{
    const bus_class_t *cls = s_class (core, hold);
    if (!cls) {
        return;
    }
    Bulkhead__V1__Pending pending;
    char *votes [BUS_HOLD_VOTES_MAX];
    uint8_t *bytes;
    s_pending_fill (core, &pending, hold, votes, &bytes, NULL);
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PENDING;
    frame.pending = &pending;
    uint32_t n_quarantined = bus_intake_quarantined (core);
    for (size_t i = 0; i < core->policy->agent_count; i++) {
        const bus_agent_t *agent = &core->policy->agents [i];
        bus_session_t *session = bus_session_find (core, agent->name);
        if (session && session->online && s_told (core, agent, cls, n_quarantined)) {
            char why [200];
            pending.blocked = (char *) s_blocked (core, hold, agent->name, why, sizeof why);
            bus_outbox_frame (core->outbox, session->rid, session->rid_len, &frame, NULL);
        }
    }
    free (bytes);
}

//  Tells every connected approver of the hold's class that the hold
//  changed (state: pending, released, denied, expired), so that what each
//  one sees is live, whoever acted. Its sender too when it approves the
//  class: a listing with include_own shows it its own holds' votes anyway.
static void
s_update (bus_core_t *core, const bus_hold_t *hold, const char *state, const char *actor,
          const char *reason)
{
    const bus_class_t *cls = s_class (core, hold);
    if (!cls) {
        return;
    }
    Bulkhead__V1__HoldUpdate update = BULKHEAD__V1__HOLD_UPDATE__INIT;
    char *votes [BUS_HOLD_VOTES_MAX];
    update.approval_id = (char *) hold->id;
    update.state = (char *) state;
    update.actor = (char *) actor;
    uint32_t quorum;
    update.n_votes = s_counted_votes (core, hold, (const char **) votes, &quorum);
    update.votes = votes;
    update.has_quorum = true;
    update.quorum = quorum;
    update.reason = (char *) reason;
    update.has_time_us = true;
    update.time_us = bus_now_us ();
    update.has_seq = true;
    update.seq = hold->seq;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE;
    frame.hold_update = &update;
    uint32_t n_quarantined = bus_intake_quarantined (core);
    for (size_t i = 0; i < core->policy->agent_count; i++) {
        const bus_agent_t *agent = &core->policy->agents [i];
        bus_session_t *session = bus_session_find (core, agent->name);
        if (session && session->online && s_told (core, agent, cls, n_quarantined)) {
            bus_outbox_frame (core->outbox, session->rid, session->rid_len, &frame, NULL);
        }
    }
}

int
bus_approval_record (bus_core_t *core, const bus_hold_t *hold, const char *actor,
                     bus_code_t code, const char *event)
{
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_HOLD);
    rec.sender = (char *) hold->sender;
    rec.recipient = (char *) hold->recipient;
    rec.actor = (char *) actor;
    rec.intent_class = (char *) hold->intent_class;
    rec.message_id = (char *) hold->message_id;
    rec.approval_id = (char *) hold->id;
    rec.has_ref_seq = true;
    rec.ref_seq = hold->seq;
    uint32_t quorum;
    rec.votes = s_counted (core, hold, &quorum);
    rec.has_votes = true;
    rec.quorum = quorum;
    rec.has_quorum = true;
    rec.hold_state = hold->state;
    rec.has_hold_state = true;
    rec.code = (char *) bus_errword (code);
    rec.event = (char *) event;
    return bus_core_append (core, &rec);
}

int
bus_approval_enqueue (bus_core_t *core, const record_t *rec, const bus_envelope_t *env)
{
    const bus_class_t *cls = &env->policy->classes [env->class_index];
    bus_hold_t hold;
    memset (&hold, 0, sizeof hold);
    snprintf (hold.id, sizeof hold.id, "%s", rec->approval_id);
    hold.seq = rec->seq;
    //  What approvers approve is exactly this record: its stored bytes.
    size_t size = bulkhead__v1__record__get_packed_size (rec);
    uint8_t *packed = malloc (size);
    if (!packed) {
        //  The record already says held: without its hold the batch must
        //  not commit.
        bus_error_t err;
        bus_fail (&err, BUS_ENOMEM, "out of memory for a hold");
        bus_core_fail (core, &err);
        return -1;
    }
    bulkhead__v1__record__pack (rec, packed);
    bus_hash (hold.digest, packed, size);
    free (packed);
    snprintf (hold.message_id, sizeof hold.message_id, "%s", rec->message_id);
    snprintf (hold.sender, sizeof hold.sender, "%s", rec->sender);
    snprintf (hold.recipient, sizeof hold.recipient, "%s", rec->recipient);
    snprintf (hold.intent_class, sizeof hold.intent_class, "%s", rec->intent_class);
    snprintf (hold.action, sizeof hold.action, "%s", rec->action? rec->action: "");
    snprintf (hold.resource, sizeof hold.resource, "%s", rec->resource? rec->resource: "");
    hold.justification = rec->justification;
    hold.restricted = rec->has_restricted && rec->restricted;
    hold.created_us = rec->time_us;
    hold.expires_us = rec->time_us + (uint64_t) cls->ttl_s * 1000000u;
    hold.quorum = med_hold_quorum (cls);
    hold.state = BULKHEAD__V1__HOLD_STATE__HOLD_PENDING;
    bus_error_t err;
    if (bus_holds_add (core->holds, &hold, &err) != 0) {
        bus_core_fail (core, &err);
        return -1;
    }
    s_notify (core, &hold);
    return 0;
}

//  Tells the sender how its held message ended, if it is connected. The
//  log has it in any case.
static void
s_tell_sender (bus_core_t *core, const bus_hold_t *hold, Bulkhead__V1__Verdict verdict,
               bus_code_t code, const char *reason, uint64_t seq)
{
    bus_session_t *session = bus_session_find (core, hold->sender);
    if (!session || !session->online) {
        return;
    }
    bus_intake_ack (core, session, session->rid, session->rid_len, hold->message_id, verdict, code, reason,
                    seq, hold->intent_class, hold->restricted, hold->id);
}

static void
s_save (bus_core_t *core, bus_hold_t *hold)
{
    bus_error_t err;
    if (bus_holds_save (core->holds, hold, &err) != 0) {
        bus_core_fail (core, &err);
    }
}

void
bus_approval_released (bus_core_t *core, bus_hold_t *hold, const record_t *rec)
{
    hold->state = BULKHEAD__V1__HOLD_STATE__HOLD_RELEASED;
    hold->release_seq = rec->seq;
    s_tell_sender (core, hold, rec->verdict, BUS_OK, rec->reason, rec->seq);
    s_update (core, hold, "released", NULL, rec->reason);
    s_save (core, hold);
}

void
bus_approval_close (bus_core_t *core, bus_hold_t *hold, int state, const char *actor,
                    bus_code_t code, const char *reason)
{
    hold->state = state;
    snprintf (hold->reason, sizeof hold->reason, "%s", reason);
    bus_approval_record (core, hold, actor, code, reason);
    s_tell_sender (core, hold, BULKHEAD__V1__VERDICT__VERDICT_DENIED, code, reason, hold->seq);
    s_update (core, hold, state == BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED? "expired": "denied",
              actor, reason);
    bus_core_say (core, "BUS-HOLD", "id=%s state=%s by=%s reason=\"%s\"", hold->id,
                  state == BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED? "expired": "denied",
                  actor? actor: "-", reason);
    //  Observers see the hold close, once, as a denial.
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_HOLD);
    rec.seq = bus_store_last_seq (core->store);
    rec.sender = hold->sender;
    rec.recipient = hold->recipient;
    rec.intent_class = hold->intent_class;
    rec.action = hold->action;
    rec.code = (char *) bus_errword (code);
    rec.has_restricted = true;
    rec.restricted = hold->restricted;
    bus_core_observe (core, &rec, MED_REJECT, true, "hold");
    s_save (core, hold);
}

void
bus_approval_expire (bus_core_t *core, uint64_t now_us)
{
    //  Backwards: closing a hold moves the last one into its place.
    for (uint32_t i = bus_holds_size (core->holds); i-- > 0 && !core->failed; ) {
        bus_hold_t *hold = bus_holds_at (core->holds, i);
        if (hold && hold->expires_us <= now_us) {
            bus_approval_close (core, hold, BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED, NULL,
                                BUS_EEXPIRED, "expired: no decision within the hold's time to live");
        }
    }
}

void
bus_approval_resume_all (bus_core_t *core, bool retries_only)
{
    //  Backwards: a hold that closes leaves the list.
    for (uint32_t i = bus_holds_size (core->holds); i-- > 0 && !core->failed; ) {
        bus_hold_t *hold = bus_holds_at (core->holds, i);
        if (!hold || (retries_only && !hold->retry)) {
            continue;
        }
        bus_error_t result;
        if (bus_decide_resume (core, hold, &result) == MED_HOLD && !retries_only) {
            s_save (core, hold);
        }
    }
}

//  The checks an approver's APPROVE or DENY must pass, in the order a
//  person would want them explained. Returns the pending hold, or NULL
//  with code and reason set.
static bus_hold_t *
s_hold_for (bus_core_t *core, const bus_agent_t *approver, const char *id,
            bus_code_t *code, char *reason, size_t size)
{
    bus_error_t err;
    int state;
    char why [256];
    bus_hold_t *hold = bus_holds_find (core->holds, id);
    if (!hold) {
        static const char *states [] = { "?", "pending", "already approved and released",
                                         "already denied", "already expired" };
        if (bus_holds_state (core->holds, id, &state, why, &err) != 0) {
            *code = BUS_ENOTFOUND;
            snprintf (reason, size, "no held message '%.32s' (see: bulkhead pending)", id);
        }
        else {
            *code = state == BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED? BUS_EEXPIRED: BUS_EPERM;
            snprintf (reason, size, "%s is %s%s%.200s", id, states [(unsigned) state < 5? state: 0],
                      why [0]? ": ": "", why);
        }
        return NULL;
    }
    const bus_class_t *cls = s_class (core, hold);
    if (!cls || !med_hold_may_approve (approver, cls)) {
        *code = BUS_EPERM;
        snprintf (reason, size, "%s may not approve %s messages", approver->name, hold->intent_class);
        return NULL;
    }
    if (strcmp (approver->name, hold->sender) == 0) {
        *code = BUS_EPERM;
        snprintf (reason, size, "%s may not decide on its own message", approver->name);
        return NULL;
    }
    if (hold->expires_us <= bus_now_us ()) {
        *code = BUS_EEXPIRED;
        snprintf (reason, size, "%s expired before this decision", id);
        bus_approval_close (core, hold, BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED, NULL, BUS_EEXPIRED,
                            "expired: no decision within the hold's time to live");
        return NULL;
    }
    return hold;
}

static bus_code_t
s_list (bus_core_t *core, const bus_agent_t *me, bool include_own,
        Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    //  What waits for this approver: static storage, the reply is packed
    //  before the next control frame is handled.
    static Bulkhead__V1__Pending items [1024];
    static Bulkhead__V1__Pending *item_ptrs [1024];
    static char *votes [1024][BUS_HOLD_VOTES_MAX];
    static uint8_t *bytes [1024];
    static char blocked [1024][200];
    static size_t n_bytes;
    for (size_t i = 0; i < n_bytes; i++) {
        free (bytes [i]);
        bytes [i] = NULL;
    }
    n_bytes = 0;
    size_t n = 0;
    for (uint32_t i = 0; i < bus_holds_size (core->holds) && n < 1024; i++) {
        bus_hold_t *hold = bus_holds_at (core->holds, i);
        const bus_class_t *cls = s_class (core, hold);
        if (cls && med_hold_may_approve (me, cls)
        &&  (include_own || strcmp (hold->sender, me->name) != 0)) {
            s_pending_fill (core, &items [n], hold, votes [n], &bytes [n],
                            s_blocked (core, hold, me->name, blocked [n], sizeof blocked [n]));
            n_bytes = n + 1;
            item_ptrs [n] = &items [n];
            n++;
        }
    }
    reply->n_pending = n;
    reply->pending = item_ptrs;
    snprintf (reason, size, "%zu message%s wait%s for %s", n, n == 1? "": "s",
              n == 1? "s": "", me->name);
    return BUS_OK;
}

static bus_code_t
s_approve (bus_core_t *core, const bus_agent_t *me, bus_hold_t *hold,
           const Bulkhead__V1__Control *control, char *reason, size_t size)
{
    //  APPROVE names the exact message: an approval cannot release
    //  anything but what the approver read.
    if (!control->has_digest || control->digest.len != sizeof hold->digest
    ||  sodium_memcmp (control->digest.data, hold->digest, sizeof hold->digest) != 0) {
        snprintf (reason, size, "approval names a different message than %s; read it again "
                  "(bulkhead pending) and approve what you read", hold->id);
        bus_approval_record (core, hold, me->name, BUS_EINVAL, "approval refused: digest does not match");
        return BUS_EINVAL;
    }
    for (uint32_t i = 0; i < hold->n_votes; i++) {
        if (strcmp (hold->votes [i], me->name) == 0) {
            snprintf (reason, size, "%s already approved %s; one approver counts once", me->name,
                      hold->id);
            bus_approval_record (core, hold, me->name, BUS_EDUPLICATE,
                                 "second vote by the same approver ignored");
            return BUS_EDUPLICATE;
        }
    }
    if (hold->n_votes >= BUS_HOLD_VOTES_MAX) {
        snprintf (reason, size, "%s has the most votes a hold can take", hold->id);
        return BUS_EINVAL;
    }
    snprintf (hold->votes [hold->n_votes++], sizeof hold->votes [0], "%s", me->name);
    uint32_t quorum;
    uint32_t counted = s_counted (core, hold, &quorum);
    char event [160];
    //  Counted as the hold stage counts: votes the live policy accepts.
    snprintf (event, sizeof event, "approval %u of %u by %s", counted, quorum, me->name);
    bus_approval_record (core, hold, me->name, BUS_OK, event);
    //  The vote may complete the hold: the whole chain decides again.
    char id [BUS_HOLD_ID_MAX + 1];
    snprintf (id, sizeof id, "%s", hold->id);
    bus_error_t result;
    med_verdict_t verdict = bus_decide_resume (core, hold, &result);
    if (verdict == MED_HOLD) {
        s_save (core, hold);            //  still pending: keep the vote
        s_update (core, hold, "pending", me->name, event);
        if (result.code != BUS_OK) {
            //  Approved, but the chain refused it for now (a full mailbox):
            //  the log says why it waits.
            bus_approval_record (core, hold, me->name, result.code, result.text);
        }
    }
    snprintf (reason, size, "%s: %s; %s", id, event, result.text);
    return result.code;
}

//  What GET_CAUSES returns at most: generations, records, bytes. The
//  causal chain of one hold, never more of the log, so a console can show
//  what led to the request without the approver reading the log.
#define BUS_CAUSES_DEPTH_MAX     16
#define BUS_CAUSES_DEPTH_DEFAULT 8
#define BUS_CAUSES_RECORDS_MAX   64
#define BUS_CAUSES_BYTES_MAX     (1024 * 1024)

//  GET_CAUSES: the stored bytes of the records the held message's causes
//  lead to, breadth first, each once. Causes were checked at intake to be
//  messages the sender sent or was delivered (med_causes), and come before
//  the record naming them, so the walk cannot loop.
static bus_code_t
s_causes (bus_core_t *core, const bus_hold_t *hold, const Bulkhead__V1__Control *control,
          Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    //  Static: the reply is packed before the next control frame is handled.
    static ProtobufCBinaryData found [BUS_CAUSES_RECORDS_MAX];
    static size_t n_found;
    for (size_t i = 0; i < n_found; i++) {
        free (found [i].data);
        found [i].data = NULL;
    }
    n_found = 0;
    uint32_t want = control->has_depth && control->depth? control->depth: BUS_CAUSES_DEPTH_DEFAULT;
    if (want > BUS_CAUSES_DEPTH_MAX) {
        snprintf (reason, size, "depth %u is past the most GET_CAUSES follows (%d)", want,
                  BUS_CAUSES_DEPTH_MAX);
        return BUS_EINVAL;
    }
    //  The walk: seqs to read (the held record first, at depth 0).
    uint64_t queue [BUS_CAUSES_RECORDS_MAX + 1];
    uint32_t depth [BUS_CAUSES_RECORDS_MAX + 1];
    size_t head = 0, tail = 0, bytes = 0;
    bool cut = false;
    queue [tail] = hold->seq;
    depth [tail++] = 0;
    while (head < tail) {
        uint64_t at = queue [head];
        uint32_t level = depth [head++];
        void *data = NULL;
        size_t data_size = 0;
        bus_error_t err;
        if (bus_store_record_raw (core->store, at, &data, &data_size, &err) != 0) {
            continue;
        }
        if (level > 0 && bytes + data_size > BUS_CAUSES_BYTES_MAX) {
            free (data);
            cut = true;
            continue;
        }
        Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, data_size, data);
        if (rec && level > 0 && rec->has_payload) {
            //  What led to it, not what it said: a cause's payload went to
            //  its recipient only (and may be untrusted content).
            rec->has_payload = false;
            size_t packed = bulkhead__v1__record__get_packed_size (rec);
            uint8_t *stripped = malloc (packed? packed: 1);
            if (stripped) {
                bulkhead__v1__record__pack (rec, stripped);
                free (data);
                data = stripped;
                data_size = packed;
            }
            rec->has_payload = true;        //  so that free_unpacked frees it
            if (!stripped) {
                bulkhead__v1__record__free_unpacked (rec, NULL);
                free (data);
                continue;
            }
        }
        for (size_t i = 0; rec && i < rec->n_causes; i++) {
            uint64_t cause = rec->causes [i];
            bool seen = cause >= at;        //  causes come before: no cycles
            for (size_t j = 0; !seen && j < tail; j++) {
                seen = queue [j] == cause;
            }
            if (seen) {
                continue;
            }
            if (level + 1 > want || tail > BUS_CAUSES_RECORDS_MAX) {
                cut = true;
                continue;
            }
            queue [tail] = cause;
            depth [tail++] = level + 1;
        }
        if (rec) {
            bulkhead__v1__record__free_unpacked (rec, NULL);
        }
        if (level == 0) {
            free (data);                //  the held record itself: GET_HOLD has it
            continue;
        }
        found [n_found].data = data;
        found [n_found++].len = data_size;
        bytes += data_size;
    }
    reply->n_causes = n_found;
    reply->causes = found;
    reply->has_causes_cut = true;
    reply->causes_cut = cut;
    snprintf (reason, size, "%s: %zu record%s of its causes, %u generation%s deep%s", hold->id,
              n_found, n_found == 1? "": "s", want, want == 1? "": "s",
              cut? "; more lie further back or past the limit": "");
    return BUS_OK;
}

bus_code_t
bus_approval_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                      Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    const bus_agent_t *me = peer->agent;
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING) {
        return s_list (core, me, control->has_include_own && control->include_own, reply,
                       reason, size);
    }
    bus_code_t code = BUS_OK;
    const char *id = control->id? control->id: "";
    bus_hold_t *hold = s_hold_for (core, me, id, &code, reason, size);
    if (!hold) {
        return code;
    }
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD) {
        //  The whole stored record; the reply is packed before the next
        //  control frame is handled.
        static uint8_t *record;
        free (record);
        size_t record_size = 0;
        record = s_held_bytes (core, hold, &record_size);
        if (!record) {
            snprintf (reason, size, "%s: its record cannot be read; see the bus's log", id);
            return BUS_EIO;
        }
        reply->has_record = true;
        reply->record.data = record;
        reply->record.len = record_size;
        snprintf (reason, size, "%s: %zu bytes of record seq %llu", id, record_size,
                  (unsigned long long) hold->seq);
        return BUS_OK;
    }
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES) {
        return s_causes (core, hold, control, reply, reason, size);
    }
    //  An approver whose own message is among the causes decides neither
    //  way: a deny would close the hold before the approver who may decide
    //  saw it (reading it, above, stays allowed).
    uint64_t own = s_caused_by (core, hold->seq, me->name);
    if (own) {
        bool deny = control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
        char part [160];
        s_own_part (own, part, sizeof part);
        snprintf (reason, size, "%s may not %s %s: %s; another approver must decide",
                  me->name, deny? "deny": "approve", hold->id, part);
        bool maybe = own == BUS_CAUSED_MAYBE;
        bus_approval_record (core, hold, me->name, BUS_EPERM, deny
                             ? maybe? "denial refused: the approver's own message may be a cause"
                                    : "denial refused: the approver's own message is a cause"
                             : maybe? "approval refused: the approver's own message may be a cause"
                                    : "approval refused: the approver's own message is a cause");
        return BUS_EPERM;
    }
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_DENY) {
        char why [256];
        snprintf (why, sizeof why, "denied by %s: %.120s", me->name,
                  control->reason && control->reason [0]? control->reason: "no reason given");
        snprintf (reason, size, "%s %s", id, why);
        bus_approval_close (core, hold, BULKHEAD__V1__HOLD_STATE__HOLD_DENIED, me->name, BUS_EDENIED,
                            why);
        return BUS_OK;
    }
    return s_approve (core, me, hold, control, reason, size);
}
