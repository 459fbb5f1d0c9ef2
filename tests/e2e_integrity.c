/*  e2e_integrity.c: what an attacker holding one agent's key tried against
    the bus (issue "Identity and approval integrity", findings 5-10), over
    real sockets against the real bus. Each test failed on the code before.
*/
#include "check.h"
#include "harness.h"
#include "bus_wire.h"

#include <stdlib.h>

static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        approvers = alice, bob\n"
    "    comms\n"
    "        actions = email.*\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    writer\n        key = @writer@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    alice\n        key = @alice@\n        role = agent, approver\n"
    "    bob\n        key = @bob@\n        role = approver\n"
    "    mallory\n        key = @mallory@\n"
    "    web-reader\n        key = @web-reader@\n        trust = untrusted\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "edges\n"
    "    web-reader\n"
    "        planner = message\n"
    "    planner\n"
    "        writer = message\n"
    "        payments = finance\n"
    "    alice\n"
    "        planner = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

static int
s_teardown (void **state)
{
    return harness_fixture_end (state);
}

//  The first reply to a raw frame: ACK or ERROR (caller frees).
static Bulkhead__V1__Frame *
s_raw_reply (bus_client_t *client, const uint8_t *data, size_t size)
{
    bus_error_t err;
    CHECK_PASS (bus_client_send_raw (client, data, size, 0, &err), err);
    for (int i = 0; i < 20; i++) {
        Bulkhead__V1__Frame *frame = NULL;
        if (bus_client_recv (client, &frame, 250, &err) == 0) {
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK
            ||  frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
                return frame;
            }
            bus_client_free (&frame);
        }
    }
    return NULL;
}

//  Finding 8: the canonical check compared sizes. "writer\0evil" re-encodes
//  5 bytes shorter, seven packed causes re-encode 5 bytes longer: the sizes
//  match, the bytes do not.
static void
test_canonical_means_same_bytes (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    static const uint8_t frame [] = {
        0x1a, 34,                                       //  Frame.send, 34 bytes
        0x0a, 1, 'm',                                   //  message_id "m"
        0x12, 11, 'w', 'r', 'i', 't', 'e', 'r', 0, 'e', 'v', 'i', 'l',
        0x1a, 7, 'm', 'e', 's', 's', 'a', 'g', 'e',      //  intent
        0x52, 7, 1, 2, 3, 4, 5, 6, 7,                   //  causes, packed
    };
    Bulkhead__V1__Frame *reply = s_raw_reply (planner, frame, sizeof frame);
    assert_non_null (reply);
    if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        fail_msg ("a Send to 'writer\\0evil' was taken as one to '%s': %s %s",
                  reply->ack->message_id, harness_code (reply), reply->ack->reason);
    }
    assert_string_equal (reply->error->code, "MALFORMED");
    CHECK_CONTAINS (reply->error->reason, "not canonical");
    bus_client_free (&reply);
    bus_client_t *writer = harness_agent (h, "writer");
    assert_null (harness_deliver (writer, 300));
    bus_client_destroy (&writer);
    bus_client_destroy (&planner);
}

//  Finding 7: 'Email.send' was class message and went straight out while
//  'email.send' is comms.
static void
test_action_case_cannot_lower_the_class (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    const char *spellings [] = { "email.send", "Email.send", "EMAIL.SEND", NULL };
    for (int i = 0; spellings [i]; i++) {
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        char id [16];
        snprintf (id, sizeof id, "e-%d", i);
        send.message_id = id;
        send.recipient = "writer";
        send.intent = "message";
        send.action = (char *) spellings [i];
        Bulkhead__V1__Frame *reply;
        bus_error_t err;
        CHECK_PASS (bus_client_send (planner, &send, &reply, 5000, &err), err);
        if (strcmp (harness_code (reply), "denied") != 0) {
            fail_msg ("action %s went out as %s (%s)", spellings [i], harness_code (reply),
                      reply->ack->reason);
        }
        assert_string_equal (reply->ack->code, "CLASS");
        assert_string_equal (reply->ack->intent_class, "comms");
        bus_client_free (&reply);
    }
    //  And an action outside the one alphabet is refused outright.
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "e-u";
    send.recipient = "writer";
    send.intent = "message";
    send.action = "\xd0\xb5mail.send";                //  a Cyrillic e
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_send (planner, &send, &reply, 5000, &err), err);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_ERROR);
    assert_string_equal (reply->error->code, "MALFORMED");
    bus_client_free (&reply);
    bus_client_destroy (&planner);
}

//  Finding 9: reasons cut at a byte count split UTF-8 sequences.
static void
test_reasons_stay_valid_utf8 (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    char claimed [80];
    memset (claimed, 'a', 63);
    strcpy (claimed + 63, "\xc3\xa9");              //  byte 64 starts an e-acute
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "u-1";
    send.recipient = "writer";
    send.intent = "message";
    send.sender = claimed;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_send (planner, &send, &reply, 5000, &err), err);
    assert_string_equal (reply->ack->code, "SPOOF");
    if (!bus_text_valid (reply->ack->reason, 4096)) {
        fail_msg ("Ack.reason is not valid UTF-8: %s", reply->ack->reason);
    }
    bus_client_free (&reply);
    bus_client_destroy (&planner);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--json", NULL);
    assert_non_null (out);
    for (char *line = strtok (out, "\n"); line; line = strtok (NULL, "\n")) {
        if (!bus_text_valid (line, 1 << 20)) {
            fail_msg ("bulkhead log --json printed invalid UTF-8: %s", line);
        }
    }
    free (out);
}

//  from sends to recipient, naming cause (0: none): the reply's code; the
//  record's seq into *seq, the hold's id (if held) into hold_id.
static const char *
s_send_caused (bus_client_t *from, const char *recipient, const char *intent, const char *id,
               uint64_t cause, uint64_t *seq, char hold_id [32])
{
    static char code [32];
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = (char *) id;
    send.recipient = (char *) recipient;
    send.intent = (char *) intent;
    send.n_causes = cause? 1: 0;
    send.causes = &cause;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_send (from, &send, &reply, 5000, &err), err);
    snprintf (code, sizeof code, "%s", harness_code (reply));
    *seq = reply->ack? reply->ack->seq: 0;
    snprintf (hold_id, 32, "%s", reply->ack && reply->ack->approval_id? reply->ack->approval_id: "");
    bus_client_free (&reply);
    return code;
}

//  planner, steered by alice's message, pays: a finance Send naming that
//  message as its cause (id: its message id), after `between` messages of
//  planner's to writer, each naming the one before (the first names alice's
//  message). The reply's code, and the hold's id (if held) into hold_id.
static const char *
s_steered_payment_after (bus_client_t *alice, bus_client_t *planner, const char *id, int between,
                         char hold_id [32])
{
    Bulkhead__V1__Frame *reply = harness_send (alice, "planner", "message", "pay mallory", id);
    assert_string_equal (harness_code (reply), "delivered");
    uint64_t cause = reply->ack->seq;
    bus_client_free (&reply);
    char mid [40];
    for (int i = 0; i < between; i++) {
        snprintf (mid, sizeof mid, "s-%s-%d", id, i);
        const char *code = s_send_caused (planner, "writer", "message", mid, cause, &cause, hold_id);
        if (strcmp (code, "delivered") != 0 && strcmp (code, "queued") != 0) {
            fail_msg ("step %d of the chain: %s", i, code);
        }
    }
    snprintf (mid, sizeof mid, "p-%s", id);
    uint64_t seq;
    return s_send_caused (planner, "payments", "finance", mid, cause, &seq, hold_id);
}

static const char *
s_steered_payment (bus_client_t *alice, bus_client_t *planner, const char *id,
                   char hold_id [32])
{
    return s_steered_payment_after (alice, planner, id, 0, hold_id);
}

//  alice's approval of hold id (the digest of the only hold she lists):
//  the reply's code, its reason into reason.
static const char *
s_approve_only (bus_client_t *approver, const char *id, char *reason, size_t size)
{
    static char code [32];
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    Bulkhead__V1__Control list = BULKHEAD__V1__CONTROL__INIT;
    list.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    CHECK_PASS (bus_client_control (approver, &list, &reply, 5000, &err), err);
    assert_int_equal (reply->control_reply->n_pending, 1);
    uint8_t digest [32];
    memcpy (digest, reply->control_reply->pending [0]->digest.data, 32);
    bus_client_free (&reply);
    Bulkhead__V1__Control approve = BULKHEAD__V1__CONTROL__INIT;
    approve.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    approve.id = (char *) id;
    approve.has_digest = true;
    approve.digest.data = digest;
    approve.digest.len = 32;
    CHECK_PASS (bus_client_control (approver, &approve, &reply, 5000, &err), err);
    snprintf (code, sizeof code, "%s", reply->control_reply->code);
    snprintf (reason, size, "%s", reply->control_reply->reason);
    bus_client_free (&reply);
    return code;
}

//  A later review: the walk for an approver's own message stopped at 16
//  generations, so 20 of planner's messages between alice's and the
//  payment hid it. An honest chain as long, without her, stays hers to
//  approve.
static void
test_own_message_far_back_in_the_causes (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    char id [32], reason [600];
    assert_string_equal (s_steered_payment_after (alice, planner, "far-1", 20, id), "held");
    const char *code = s_approve_only (alice, id, reason, sizeof reason);
    if (strcmp (code, "PERM") != 0) {
        fail_msg ("alice approved a payment her message caused 21 generations back: %s %s", code,
                  reason);
    }
    CHECK_CONTAINS (reason, "its own message (seq ");
    CHECK_CONTAINS (reason, "is among the causes");
    Bulkhead__V1__Control deny = BULKHEAD__V1__CONTROL__INIT;
    deny.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
    deny.id = id;
    deny.reason = "test";
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    bus_client_t *bob = harness_agent (h, "bob");
    CHECK_PASS (bus_client_control (bob, &deny, &reply, 5000, &err), err);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    //  The same length of chain, not started by alice: hers to approve.
    uint64_t cause = 0;
    char mid [40];
    for (int i = 0; i < 20; i++) {
        snprintf (mid, sizeof mid, "honest-%d", i);
        code = s_send_caused (planner, "writer", "message", mid, cause, &cause, id);
        assert_true (strcmp (code, "delivered") == 0 || strcmp (code, "queued") == 0);
    }
    assert_string_equal (s_send_caused (planner, "payments", "finance", "p-honest", cause, &cause, id),
                         "held");
    code = s_approve_only (alice, id, reason, sizeof reason);
    if (strcmp (code, "OK") != 0) {
        fail_msg ("alice may not approve a payment she had no part in: %s %s", code, reason);
    }
    //  Further back than the bus reads records: it cannot rule her out, so
    //  she may not decide (before, anything past 16 generations was "no").
    assert_string_equal (s_steered_payment_after (alice, planner, "far-2", 300, id), "held");
    code = s_approve_only (alice, id, reason, sizeof reason);
    if (strcmp (code, "PERM") != 0) {
        fail_msg ("alice approved a payment her message caused 301 generations back: %s %s", code,
                  reason);
    }
    CHECK_CONTAINS (reason, "may be among the causes");
    bus_client_destroy (&bob);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
}

//  Finding 10: an approver whose own message is among a hold's causes may
//  not approve it; another approver may.
static void
test_approver_cannot_approve_what_it_caused (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *bob = harness_agent (h, "bob");
    bus_client_t *planner = harness_agent (h, "planner");
    //  planner, steered, pays and names alice's message as its cause.
    char id [32];
    assert_string_equal (s_steered_payment (alice, planner, "a-1", id), "held");
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    //  Both see it; alice's approval is refused and says why.
    for (int who = 0; who < 2; who++) {
        bus_client_t *approver = who? bob: alice;
        Bulkhead__V1__Control list = BULKHEAD__V1__CONTROL__INIT;
        list.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
        CHECK_PASS (bus_client_control (approver, &list, &reply, 5000, &err), err);
        assert_int_equal (reply->control_reply->n_pending, 1);
        uint8_t digest [32];
        memcpy (digest, reply->control_reply->pending [0]->digest.data, 32);
        bus_client_free (&reply);
        Bulkhead__V1__Control approve = BULKHEAD__V1__CONTROL__INIT;
        approve.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
        approve.id = id;
        approve.has_digest = true;
        approve.digest.data = digest;
        approve.digest.len = 32;
        CHECK_PASS (bus_client_control (approver, &approve, &reply, 5000, &err), err);
        if (who == 0) {
            if (strcmp (reply->control_reply->code, "PERM") != 0) {
                fail_msg ("alice approved a payment her own message caused: %s %s",
                          reply->control_reply->code, reply->control_reply->reason);
            }
            CHECK_CONTAINS (reply->control_reply->reason, "its own message");
        }
        else {
            assert_string_equal (reply->control_reply->code, "OK");
            CHECK_CONTAINS (reply->control_reply->reason, "released");
        }
        bus_client_free (&reply);
    }
    bus_client_destroy (&alice);
    bus_client_destroy (&bob);
    bus_client_destroy (&planner);
}

//  A later review: an approver barred from deciding on a hold its own
//  message caused could still deny it, closing it before the approver who
//  may decide saw it. Denying is deciding too.
static void
test_approver_cannot_deny_what_it_caused (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *bob = harness_agent (h, "bob");
    bus_client_t *planner = harness_agent (h, "planner");
    char id [32];
    assert_string_equal (s_steered_payment (alice, planner, "d-1", id), "held");
    Bulkhead__V1__Control deny = BULKHEAD__V1__CONTROL__INIT;
    deny.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
    deny.id = id;
    deny.reason = "no";
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_control (alice, &deny, &reply, 5000, &err), err);
    if (strcmp (reply->control_reply->code, "PERM") != 0) {
        fail_msg ("alice denied a payment her own message caused: %s %s",
                  reply->control_reply->code, reply->control_reply->reason);
    }
    CHECK_CONTAINS (reply->control_reply->reason, "may not deny");
    CHECK_CONTAINS (reply->control_reply->reason, "among the causes");
    bus_client_free (&reply);
    //  Still pending: bob, who may decide, denies it.
    CHECK_PASS (bus_client_control (bob, &deny, &reply, 5000, &err), err);
    assert_string_equal (reply->control_reply->code, "OK");
    CHECK_CONTAINS (reply->control_reply->reason, "denied by bob");
    bus_client_free (&reply);
    bus_client_destroy (&alice);
    bus_client_destroy (&bob);
    bus_client_destroy (&planner);
}

//  The same review: a standing grant is an approval given in advance. alice
//  could not approve a payment her own message caused, but a grant she gave
//  first let it through. Her grant still covers planner's other payments.
static void
test_grant_does_not_cover_what_its_approver_caused (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    Bulkhead__V1__Control grant = BULKHEAD__V1__CONTROL__INIT;
    grant.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT;
    grant.agent = "planner";
    grant.recipient = "payments";
    grant.intent_class = "finance";
    grant.has_count = true;
    grant.count = 5;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_control (alice, &grant, &reply, 5000, &err), err);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    char id [32];
    const char *code = s_steered_payment (alice, planner, "g-1", id);
    if (strcmp (code, "held") != 0) {
        fail_msg ("alice's grant released a payment her own message caused: %s", code);
    }
    //  Without her message among the causes, her grant stands in for her.
    reply = harness_send (planner, "payments", "finance", "invoice 7", "p-plain");
    code = harness_code (reply);
    if (strcmp (code, "held") == 0) {
        fail_msg ("alice's grant no longer covers planner's own payments");
    }
    bus_client_free (&reply);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
}

//  Finding 10: the policy accepted an untrusted agent as approver or operator.
static void
test_untrusted_approver_refused_by_check (void **state)
{
    harness_t *h = *state;
    char path [400];
    snprintf (path, sizeof path, "%s/untrusted.cfg", h->dir);
    for (int role = 0; role < 2; role++) {
        FILE *file = fopen (path, "w");
        assert_non_null (file);
        fprintf (file, "agents\n    web-reader\n        key = \"%s\"\n        trust = untrusted\n"
                 "        role = %s\n", "KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^",
                 role? "operator": "approver");
        fclose (file);
        char *out = NULL;
        int rc = harness_run (h, &out, "check", path, NULL);
        if (rc == 0) {
            fail_msg ("bulkhead check accepted an untrusted %s: %s", role? "operator": "approver",
                      out? out: "");
        }
        CHECK_CONTAINS (out, "untrusted agents may not approve or operate");
        free (out);
    }
}

//  Findings 6 and 10: control fields are validated like a Send's, and no
//  error echoes an agent's raw bytes (the GRANT revoke error did, before
//  any role check).
static void
test_control_fields_validated (void **state)
{
    harness_t *h = *state;
    bus_client_t *mallory = harness_agent (h, "mallory");
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT;
    control.id = "\x1b]0;owned\x07\x1b[2J";
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    CHECK_PASS (bus_client_control (mallory, &control, &reply, 5000, &err), err);
    const char *reason = reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR
                       ? reply->error->reason: reply->control_reply->reason;
    if (strchr (reason, 0x1b)) {
        fail_msg ("the bus echoed raw escape bytes to mallory: %s", reason);
    }
    bus_client_free (&reply);
    bus_client_destroy (&mallory);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, NULL);
    assert_non_null (out);
    if (strchr (out, 0x1b)) {
        fail_msg ("an escape byte reached the log's text");
    }
    free (out);
}

static const char *
s_declassify (bus_client_t *client, uint64_t seq, const char *reason)
{
    static char code [32];
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DECLASSIFY;
    control.has_seq = true;
    control.seq = seq;
    control.reason = (char *) reason;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_control (client, &control, &reply, 5000, &err), err);
    snprintf (code, sizeof code, "%s", reply->control_reply->code);
    bus_client_free (&reply);
    return code;
}

//  Declassification is explicit: an operator lowers one message's mark,
//  with a reason, as a record of its own; what it caused follows.
static void
test_declassify_one_message (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *ops = harness_agent (h, "ops");
    Bulkhead__V1__Frame *reply = harness_send (web, "planner", "message", "a reviewed page", "w-1");
    assert_string_equal (harness_code (reply), "delivered");
    assert_true (reply->ack->restricted);
    uint64_t seq = reply->ack->seq;
    bus_client_free (&reply);
    Bulkhead__V1__Frame *d = harness_deliver (planner, 2000);
    assert_non_null (d);
    bus_error_t err;
    CHECK_PASS (bus_client_ack (planner, d->deliver->seq, &err), err);
    bus_client_free (&d);
    //  Only an operator, with a reason.
    assert_string_equal (s_declassify (planner, seq, "mine"), "PERM");
    assert_string_equal (s_declassify (ops, seq, NULL), "INVAL");
    assert_string_equal (s_declassify (ops, seq, "reviewed by ops: a price list"), "OK");
    assert_string_equal (s_declassify (ops, seq, "again"), "DUPLICATE");
    //  planner's taint came from it alone: planner is clean, and a message
    //  naming it as a cause is not restricted.
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "p-after";
    send.recipient = "writer";
    send.intent = "message";
    send.n_causes = 1;
    send.causes = &seq;
    CHECK_PASS (bus_client_send (planner, &send, &reply, 5000, &err), err);
    assert_string_equal (harness_code (reply), "queued");
    assert_false (reply->ack->restricted);
    bus_client_free (&reply);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "control", NULL);
    CHECK_CONTAINS (out, "declassified by ops: reviewed by ops");
    free (out);
    bus_client_destroy (&web);
    bus_client_destroy (&planner);
    bus_client_destroy (&ops);
}

//  What the delivery window holds back goes out, once the recipient acks,
//  from the DELIVERs kept in memory (bus_outbox_keep): the same bytes, in
//  order, and a message declassified while it waited goes out unmarked.
static void
test_window_backlog_keeps_order_and_marks (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *ops = harness_agent (h, "ops");
    enum { WINDOW = 1000, MORE = 6 };
    uint64_t seqs [WINDOW + MORE];
    uint64_t restricted_seq = 0;
    uint64_t declassified_seq = 0;
    for (int i = 0; i < WINDOW + MORE; i++) {
        char id [16], payload [32];
        snprintf (id, sizeof id, "m-%d", i);
        snprintf (payload, sizeof payload, "payload %d", i);
        //  Two restricted ones past the window: one declassified while it
        //  waits, one not.
        bool from_web = i == WINDOW + 1 || i == WINDOW + 3;
        Bulkhead__V1__Frame *reply = harness_send (from_web? web: alice, "planner", "message",
                                                   payload, id);
        assert_non_null (reply);
        assert_string_equal (harness_code (reply), "delivered");
        seqs [i] = reply->ack->seq;
        if (i == WINDOW + 1) {
            declassified_seq = seqs [i];
        }
        if (i == WINDOW + 3) {
            restricted_seq = seqs [i];
        }
        bus_client_free (&reply);
    }
    //  The window: WINDOW arrive, then nothing until an ack.
    bus_error_t err;
    uint64_t last = 0;
    for (int i = 0; i < WINDOW; i++) {
        Bulkhead__V1__Frame *d = harness_deliver (planner, 5000);
        assert_non_null (d);
        assert_int_equal (d->deliver->seq, seqs [i]);
        last = d->deliver->seq;
        bus_client_free (&d);
    }
    Bulkhead__V1__Frame *none = harness_deliver (planner, 300);
    if (none) {
        fail_msg ("a DELIVER (seq %llu) past a full window of %d",
                  (unsigned long long) none->deliver->seq, WINDOW);
    }
    assert_string_equal (s_declassify (ops, declassified_seq, "reviewed while it waited"), "OK");
    CHECK_PASS (bus_client_ack (planner, last, &err), err);
    for (int i = WINDOW; i < WINDOW + MORE; i++) {
        Bulkhead__V1__Frame *d = harness_deliver (planner, 5000);
        assert_non_null (d);
        assert_int_equal (d->deliver->seq, seqs [i]);
        char payload [32];
        int len = snprintf (payload, sizeof payload, "payload %d", i);
        assert_int_equal (d->deliver->payload.len, len);
        assert_memory_equal (d->deliver->payload.data, payload, len);
        if (d->deliver->seq == declassified_seq && d->deliver->restricted) {
            fail_msg ("seq %llu was declassified while the window held it back, "
                      "and went out marked", (unsigned long long) declassified_seq);
        }
        if (d->deliver->seq == restricted_seq) {
            assert_true (d->deliver->restricted);
        }
        bus_client_free (&d);
    }
    bus_client_destroy (&web);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
    bus_client_destroy (&ops);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_canonical_means_same_bytes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_action_case_cannot_lower_the_class, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reasons_stay_valid_utf8, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_approver_cannot_approve_what_it_caused, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_approver_cannot_deny_what_it_caused, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_grant_does_not_cover_what_its_approver_caused,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_own_message_far_back_in_the_causes, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_untrusted_approver_refused_by_check, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_control_fields_validated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_window_backlog_keeps_order_and_marks, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_declassify_one_message, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
