/*  e2e_console.c: what the approval console asks of the bus, over real
    sockets: GET_CAUSES (the records of a held message's causal chain, to a
    bounded depth, only for approvers who may decide on the hold), the
    HoldUpdate notice (votes and decisions by other approvers, live), and
    `blocked` in listings and notices (why an approver may not decide). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"
#include "record.pb-c.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        approvers = alice, bob, selfish\n"
    "    deploy\n"
    "        approvers = alice, bob\n"
    "        quorum = 2\n"
    "    comms\n"
    "        approvers = carol\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    helper\n        key = @helper@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    deployer\n        key = @deployer@\n        class = deploy\n"
    "    alice\n        key = @alice@\n        role = agent, approver\n"
    "    bob\n        key = @bob@\n        role = approver\n"
    "    carol\n        key = @carol@\n        role = approver\n"
    "    selfish\n        key = @selfish@\n        role = agent, approver\n"
    "    mallory\n        key = @mallory@\n"
    "edges\n"
    "    planner\n"
    "        payments = finance\n"
    "        deployer = deploy\n"
    "        helper = message\n"
    "    helper\n"
    "        planner = message\n"
    "    alice\n"
    "        planner = message\n"
    "    selfish\n"
    "        payments = finance\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  Sends and returns the ACK's seq (the message's log record); the verdict
//  must be `verdict`. approval gets the approval id when held.
static uint64_t
s_send (bus_client_t *client, const char *to, const char *intent, const uint64_t *causes,
        size_t n_causes, const char *verdict, char *approval)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.justification = "as the user asked";
    send.has_payload = true;
    send.payload.data = (uint8_t *) "amount=10";
    send.payload.len = 9;
    send.n_causes = n_causes;
    send.causes = (uint64_t *) causes;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_send (client, &send, &reply, 5000, &err), 0);
    if (strcmp (harness_code (reply), verdict) != 0) {
        fail_msg ("sent to %s: %s (%s), expected %s", to, harness_code (reply),
                  reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK? reply->ack->reason: "-", verdict);
    }
    uint64_t seq = reply->ack->seq;
    if (approval) {
        assert_non_null (reply->ack->approval_id);
        snprintf (approval, 32, "%s", reply->ack->approval_id);
    }
    bus_client_free (&reply);
    return seq;
}

static Bulkhead__V1__Frame *
s_control (bus_client_t *client, Bulkhead__V1__ControlOp op, const char *id, uint32_t depth)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = op;
    control.id = (char *) id;
    control.has_depth = depth > 0;
    control.depth = depth;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (client, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    return reply;
}

//  Waits for a frame of the given body type, skipping others.
static Bulkhead__V1__Frame *
s_wait_for (bus_client_t *client, Bulkhead__V1__Frame__BodyCase body, int timeout_ms)
{
    while (true) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (bus_client_recv (client, &frame, timeout_ms, &err) != 0) {
            return NULL;
        }
        if (frame->body_case == body) {
            return frame;
        }
        bus_client_free (&frame);
    }
}

//  Whether the GET_CAUSES reply holds the record of seq, and that it is a
//  whole stored record (decodes, names seq).
static bool
s_has_cause (const Bulkhead__V1__ControlReply *r, uint64_t seq)
{
    bool found = false;
    for (size_t i = 0; i < r->n_causes; i++) {
        Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, r->causes [i].len,
                                                                  r->causes [i].data);
        assert_non_null (rec);
        assert_int_equal (rec->kind, BULKHEAD__V1__RECORD_KIND__RECORD_SEND);
        found = found || rec->seq == seq;
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    return found;
}

//  A chain of three messages, then a held payment caused by the last:
//  helper -> planner (s1), planner -> helper (s2, caused by s1), helper ->
//  planner (s3, caused by s2), planner -> payments (held, caused by s3).
static void
s_chain (harness_t *h, uint64_t seq [3], char *approval)
{
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *helper = harness_agent (h, "helper");
    seq [0] = s_send (helper, "planner", "message", NULL, 0, "delivered", NULL);
    seq [1] = s_send (planner, "helper", "message", &seq [0], 1, "delivered", NULL);
    seq [2] = s_send (helper, "planner", "message", &seq [1], 1, "delivered", NULL);
    s_send (planner, "payments", "finance", &seq [2], 1, "held", approval);
    bus_client_destroy (&planner);
    bus_client_destroy (&helper);
}

static void
test_causes_bounded_by_depth (void **state)
{
    harness_t *h = *state;
    uint64_t seq [3];
    char id [32];
    s_chain (h, seq, id);
    bus_client_t *bob = harness_agent (h, "bob");

    Bulkhead__V1__Frame *reply = s_control (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, id, 0);
    const Bulkhead__V1__ControlReply *r = reply->control_reply;
    assert_string_equal (r->code, "OK");
    assert_int_equal (r->n_causes, 3);
    assert_true (s_has_cause (r, seq [0]) && s_has_cause (r, seq [1]) && s_has_cause (r, seq [2]));
    assert_true (r->has_causes_cut && !r->causes_cut);
    bus_client_free (&reply);

    //  Two generations: s3 and s2, and the reply says more lie further back.
    reply = s_control (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, id, 2);
    r = reply->control_reply;
    assert_string_equal (r->code, "OK");
    assert_int_equal (r->n_causes, 2);
    assert_true (s_has_cause (r, seq [2]) && s_has_cause (r, seq [1]));
    assert_false (s_has_cause (r, seq [0]));
    assert_true (r->causes_cut);
    bus_client_free (&reply);

    reply = s_control (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, id, 1);
    assert_int_equal (reply->control_reply->n_causes, 1);
    assert_true (s_has_cause (reply->control_reply, seq [2]));
    bus_client_free (&reply);

    //  Past the bound: refused, not clamped silently.
    reply = s_control (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, id, 17);
    assert_string_equal (reply->control_reply->code, "INVAL");
    assert_int_equal (reply->control_reply->n_causes, 0);
    bus_client_free (&reply);
    bus_client_destroy (&bob);
}

static void
test_causes_only_for_who_may_decide (void **state)
{
    harness_t *h = *state;
    uint64_t seq [3];
    char id [32];
    s_chain (h, seq, id);
    //  Not an approver; an approver of another class; no such hold.
    const char *who [] = { "mallory", "carol" };
    const char *code [] = { "PERM", "PERM" };
    for (size_t i = 0; i < 2; i++) {
        bus_client_t *c = harness_agent (h, who [i]);
        Bulkhead__V1__Frame *reply = s_control (c, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, id, 0);
        assert_string_equal (reply->control_reply->code, code [i]);
        assert_int_equal (reply->control_reply->n_causes, 0);
        bus_client_free (&reply);
        bus_client_destroy (&c);
    }
    bus_client_t *bob = harness_agent (h, "bob");
    Bulkhead__V1__Frame *reply = s_control (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES,
                                            "h-000000000000", 0);
    assert_string_equal (reply->control_reply->code, "NOTFOUND");
    bus_client_free (&reply);
    //  Its own hold: selfish may not read its causes as an approver.
    bus_client_t *selfish = harness_agent (h, "selfish");
    char own [32];
    s_send (selfish, "payments", "finance", NULL, 0, "held", own);
    reply = s_control (selfish, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, own, 0);
    assert_string_equal (reply->control_reply->code, "PERM");
    bus_client_free (&reply);
    //  A decided hold shows nothing any more.
    Bulkhead__V1__Control deny = BULKHEAD__V1__CONTROL__INIT;
    deny.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
    deny.id = id;
    deny.reason = "no";
    bus_error_t err;
    assert_int_equal (bus_client_control (bob, &deny, &reply, 5000, &err), 0);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    reply = s_control (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES, id, 0);
    assert_string_equal (reply->control_reply->code, "PERM");
    assert_int_equal (reply->control_reply->n_causes, 0);
    bus_client_free (&reply);
    bus_client_destroy (&selfish);
    bus_client_destroy (&bob);
}

static void
test_updates_reach_other_approvers (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *bob = harness_agent (h, "bob");
    bus_client_t *planner = harness_agent (h, "planner");
    char id [32];
    s_send (planner, "deployer", "deploy", NULL, 0, "held", id);
    Bulkhead__V1__Frame *notice = s_wait_for (alice, BULKHEAD__V1__FRAME__BODY_PENDING, 5000);
    assert_non_null (notice);
    assert_null (notice->pending->blocked);
    uint8_t digest [32];
    memcpy (digest, notice->pending->digest.data, 32);
    bus_client_free (&notice);

    //  bob votes (1 of 2): alice sees it, with who and where it stands.
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    control.id = id;
    control.has_digest = true;
    control.digest.data = digest;
    control.digest.len = 32;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (bob, &control, &reply, 5000, &err), 0);
    bus_client_free (&reply);
    Bulkhead__V1__Frame *update = s_wait_for (alice, BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE, 5000);
    assert_non_null (update);
    assert_string_equal (update->hold_update->approval_id, id);
    assert_string_equal (update->hold_update->state, "pending");
    assert_string_equal (update->hold_update->actor, "bob");
    assert_int_equal (update->hold_update->n_votes, 1);
    assert_int_equal (update->hold_update->quorum, 2);
    bus_client_free (&update);

    //  alice denies: bob sees it, with her reason; the sender gets no update.
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
    control.has_digest = false;
    control.reason = "not during the freeze";
    assert_int_equal (bus_client_control (alice, &control, &reply, 5000, &err), 0);
    bus_client_free (&reply);
    //  bob heard of his own vote first (his other sessions must see it too).
    update = s_wait_for (bob, BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE, 5000);
    assert_non_null (update);
    assert_string_equal (update->hold_update->state, "pending");
    assert_string_equal (update->hold_update->actor, "bob");
    bus_client_free (&update);
    update = s_wait_for (bob, BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE, 5000);
    assert_non_null (update);
    assert_string_equal (update->hold_update->state, "denied");
    assert_string_equal (update->hold_update->actor, "alice");
    assert_non_null (strstr (update->hold_update->reason, "not during the freeze"));
    bus_client_free (&update);
    assert_null (s_wait_for (planner, BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE, 300));

    //  A release (quorum 1) is told too.
    s_send (planner, "payments", "finance", NULL, 0, "held", id);
    notice = s_wait_for (bob, BULKHEAD__V1__FRAME__BODY_PENDING, 5000);
    assert_non_null (notice);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    control.id = id;
    control.reason = NULL;
    control.has_digest = true;
    memcpy (digest, notice->pending->digest.data, 32);
    bus_client_free (&notice);
    assert_int_equal (bus_client_control (bob, &control, &reply, 5000, &err), 0);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    //  (alice heard of her own denial before.)
    update = s_wait_for (alice, BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE, 5000);
    assert_non_null (update);
    assert_string_equal (update->hold_update->state, "denied");
    bus_client_free (&update);
    update = s_wait_for (alice, BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE, 5000);
    assert_non_null (update);
    assert_string_equal (update->hold_update->approval_id, id);
    assert_string_equal (update->hold_update->state, "released");
    bus_client_free (&update);
    bus_client_destroy (&alice);
    bus_client_destroy (&bob);
    bus_client_destroy (&planner);
}

//  The hold whose entry is id in a LIST_PENDING (include_own as given);
//  frame owned by the caller.
static Bulkhead__V1__Frame *
s_list (bus_client_t *client, bool include_own, const char *id,
        const Bulkhead__V1__Pending **entry)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    control.has_include_own = include_own;
    control.include_own = include_own;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (client, &control, &reply, 5000, &err), 0);
    *entry = NULL;
    for (size_t i = 0; i < reply->control_reply->n_pending; i++) {
        if (strcmp (reply->control_reply->pending [i]->approval_id, id) == 0) {
            *entry = reply->control_reply->pending [i];
        }
    }
    return reply;
}

static void
test_blocked_says_why (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    //  alice's own message is the cause of the payment.
    uint64_t cause = s_send (alice, "planner", "message", NULL, 0, "delivered", NULL);
    char id [32];
    s_send (planner, "payments", "finance", &cause, 1, "held", id);
    Bulkhead__V1__Frame *notice = s_wait_for (alice, BULKHEAD__V1__FRAME__BODY_PENDING, 5000);
    assert_non_null (notice);
    assert_non_null (notice->pending->blocked);
    assert_non_null (strstr (notice->pending->blocked, "among the causes"));
    bus_client_free (&notice);
    const Bulkhead__V1__Pending *entry;
    Bulkhead__V1__Frame *reply = s_list (alice, false, id, &entry);
    assert_non_null (entry);
    assert_non_null (entry->blocked);
    bus_client_free (&reply);
    bus_client_t *bob = harness_agent (h, "bob");
    reply = s_list (bob, false, id, &entry);
    assert_non_null (entry);
    assert_null (entry->blocked);
    bus_client_free (&reply);
    //  `bulkhead pending` says it too, for alice only.
    const char *who [] = { "alice", "bob" };
    for (size_t i = 0; i < 2; i++) {
        char key [512];
        snprintf (key, sizeof key, "%s/%s.key", h->dir, who [i]);
        char *out = NULL;
        assert_int_equal (harness_run (h, &out, "pending", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                       "--key", key, NULL), 0);
        assert_non_null (out);
        assert_true ((strstr (out, "YOU MAY NOT") && strstr (out, "among the causes")) == (i == 0));
        free (out);
    }

    //  Its own hold: told, blocked; listed only when asked, and blocked.
    bus_client_t *selfish = harness_agent (h, "selfish");
    char own [32];
    s_send (selfish, "payments", "finance", NULL, 0, "held", own);
    notice = s_wait_for (selfish, BULKHEAD__V1__FRAME__BODY_PENDING, 5000);
    assert_non_null (notice);
    assert_string_equal (notice->pending->approval_id, own);
    assert_non_null (notice->pending->blocked);
    assert_non_null (strstr (notice->pending->blocked, "its own message"));
    bus_client_free (&notice);
    reply = s_list (selfish, false, own, &entry);
    assert_null (entry);
    bus_client_free (&reply);
    reply = s_list (selfish, true, own, &entry);
    assert_non_null (entry);
    assert_non_null (entry->blocked);
    assert_non_null (strstr (entry->blocked, "its own message"));
    bus_client_free (&reply);
    bus_client_destroy (&selfish);
    bus_client_destroy (&bob);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
}

//  A console must see that the bus restarted: ZeroMQ connects again by
//  itself, but that connection has said no HELLO.
static void
test_reconnect_is_seen (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    assert_int_equal (bus_client_reconnects (alice), 0);
    harness_stop (h, SIGTERM);
    assert_int_equal (harness_start (h), 0);
    unsigned seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (bus_client_recv (alice, &frame, 100, &err) == 0) {
            bus_client_free (&frame);
        }
        seen = bus_client_reconnects (alice);
    }
    assert_int_equal (seen, 1);
    bus_client_destroy (&alice);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_causes_bounded_by_depth, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_causes_only_for_who_may_decide, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_updates_reach_other_approvers, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_blocked_says_why, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_reconnect_is_seen, s_setup, harness_fixture_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
