/*  e2e_approve.c: the approval queue over real sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_policy =
    "bus\n"
    "    hold_cap_sender = 3\n"
    "classes\n"
    "    finance\n"
    "        approvers = alice, bob, selfish\n"
    "    deploy\n"
    "        approvers = alice, bob, carol\n"
    "        quorum = 2\n"
    "    comms\n"
    "        approvers = carol\n"
    "        restricted = hold\n"
    "    alert\n"
    "        privileged = true\n"
    "        hold = true\n"
    "        approvers = alice\n"
    "        ttl = 1\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    web-reader\n        key = @web-reader@\n        trust = untrusted\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    deployer\n        key = @deployer@\n        class = deploy\n"
    "    mailer\n        key = @mailer@\n        class = comms\n"
    "    pager\n        key = @pager@\n        class = alert\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "    bob\n        key = @bob@\n        role = approver\n"
    "    carol\n        key = @carol@\n        role = approver\n"
    "    selfish\n        key = @selfish@\n        role = agent, approver\n"
    "    mallory\n        key = @mallory@\n"
    "    treasury\n        key = @treasury@\n        class = finance\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "edges\n"
    "    planner\n"
    "        payments = finance\n"
    "        deployer = deploy\n"
    "        mailer = comms\n"
    "        pager = alert\n"
    "        treasury = finance\n"
    "    selfish\n"
    "        payments = finance\n"
    "    web-reader\n"
    "        mailer = comms\n"
    "        planner = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  Sends a message that must be held; returns its approval id (static).
static const char *
s_hold (bus_client_t *client, const char *to, const char *intent, const char *id)
{
    static char approval [32];
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.message_id = (char *) id;
    send.justification = "paying invoice 42 as the user asked";
    send.has_payload = true;
    send.payload.data = (uint8_t *) "amount=10";
    send.payload.len = 9;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_send (client, &send, &reply, 5000, &err), 0);
    assert_string_equal (harness_code (reply), "held");
    assert_non_null (reply->ack->approval_id);
    snprintf (approval, sizeof approval, "%s", reply->ack->approval_id);
    bus_client_free (&reply);
    return approval;
}

//  The pending entry of `id` as `approver` sees it (frame owned by caller),
//  or NULL when it is not listed.
static Bulkhead__V1__Frame *
s_pending (bus_client_t *approver, const char *id, const Bulkhead__V1__Pending **entry)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (approver, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    *entry = NULL;
    for (size_t i = 0; i < reply->control_reply->n_pending; i++) {
        if (strcmp (reply->control_reply->pending [i]->approval_id, id) == 0) {
            *entry = reply->control_reply->pending [i];
        }
    }
    return reply;
}

//  Decides on a hold; returns the reply code (static copy).
static const char *
s_decide (bus_client_t *approver, Bulkhead__V1__ControlOp op, const char *id,
          const uint8_t *digest, const char *reason)
{
    static char code [32];
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = op;
    control.id = (char *) id;
    control.reason = (char *) reason;
    if (digest) {
        control.has_digest = true;
        control.digest.data = (uint8_t *) digest;
        control.digest.len = 32;
    }
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (approver, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    snprintf (code, sizeof code, "%s", reply->control_reply->code);
    bus_client_free (&reply);
    return code;
}

//  Reads the digest of a pending hold as `approver` sees it.
static void
s_digest (bus_client_t *approver, const char *id, uint8_t digest [32])
{
    const Bulkhead__V1__Pending *entry;
    Bulkhead__V1__Frame *reply = s_pending (approver, id, &entry);
    assert_non_null (entry);
    assert_int_equal (entry->digest.len, 32);
    memcpy (digest, entry->digest.data, 32);
    bus_client_free (&reply);
}

static const char *
s_approve (bus_client_t *approver, const char *id)
{
    uint8_t digest [32];
    s_digest (approver, id, digest);
    return s_decide (approver, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL);
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

static void
test_held_then_approved_then_delivered (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *payments = harness_agent (h, "payments");
    bus_client_t *planner = harness_agent (h, "planner");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "payments", "finance", "pay-1"));

    //  alice is told, with the justification first.
    Bulkhead__V1__Frame *notice = s_wait_for (alice, BULKHEAD__V1__FRAME__BODY_PENDING, 5000);
    assert_non_null (notice);
    assert_string_equal (notice->pending->approval_id, id);
    assert_string_equal (notice->pending->justification, "paying invoice 42 as the user asked");
    assert_false (notice->pending->restricted);
    bus_client_free (&notice);
    //  Nothing reaches payments before approval.
    assert_null (harness_deliver (payments, 300));

    assert_string_equal (s_approve (alice, id), "OK");
    Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
    assert_non_null (d);
    assert_string_equal (d->deliver->message_id, "pay-1");
    assert_string_equal (d->deliver->intent_class, "finance");
    assert_int_equal (d->deliver->n_approvals, 1);
    assert_string_equal (d->deliver->approvals [0]->approver, "alice");
    bus_client_free (&d);
    //  The sender hears the outcome.
    Bulkhead__V1__Frame *ack = s_wait_for (planner, BULKHEAD__V1__FRAME__BODY_ACK, 5000);
    assert_non_null (ack);
    assert_string_equal (harness_code (ack), "delivered");
    assert_string_equal (ack->ack->message_id, "pay-1");
    bus_client_free (&ack);
    //  Once released, nothing more: bob's approval is refused.
    uint8_t zero [32] = { 0 };
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, zero, NULL), "PERM");
    assert_null (harness_deliver (payments, 300));

    //  The log tells the whole story.
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "hold", NULL);
    assert_non_null (strstr (out, "approval 1 of 1 by alice"));
    free (out);
    bus_client_destroy (&alice);
    bus_client_destroy (&payments);
    bus_client_destroy (&planner);
}

static void
test_denied_with_reason_reaches_sender (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *bob = harness_agent (h, "bob");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "payments", "finance", "pay-2"));
    assert_string_equal (s_decide (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_DENY, id, NULL,
                                   "not in this month's budget"), "OK");
    Bulkhead__V1__Frame *ack = s_wait_for (planner, BULKHEAD__V1__FRAME__BODY_ACK, 5000);
    assert_non_null (ack);
    assert_string_equal (harness_code (ack), "denied");
    assert_non_null (strstr (ack->ack->reason, "not in this month's budget"));
    assert_non_null (strstr (ack->ack->reason, "bob"));
    bus_client_free (&ack);
    //  Approving what was denied is refused.
    uint8_t zero [32] = { 0 };
    assert_string_equal (s_decide (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, zero, NULL), "PERM");
    bus_client_t *payments = harness_agent (h, "payments");
    assert_null (harness_deliver (payments, 300));
    bus_client_destroy (&payments);
    bus_client_destroy (&planner);
    bus_client_destroy (&bob);
}

static void
test_expired_hold_never_delivers (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *alice = harness_agent (h, "alice");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "pager", "alert", "page-1"));
    uint8_t digest [32];
    s_digest (alice, id, digest);
    //  ttl = 1 s: the sender is told when it expires.
    Bulkhead__V1__Frame *ack = s_wait_for (planner, BULKHEAD__V1__FRAME__BODY_ACK, 5000);
    assert_non_null (ack);
    assert_string_equal (harness_code (ack), "denied");
    assert_string_equal (ack->ack->code, "EXPIRED");
    bus_client_free (&ack);
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL),
                         "EXPIRED");
    bus_client_t *pager = harness_agent (h, "pager");
    assert_null (harness_deliver (pager, 300));
    bus_client_destroy (&pager);
    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
}

static void
test_quorum_two_of_three_counts_each_approver_once (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *bob = harness_agent (h, "bob");
    bus_client_t *deployer = harness_agent (h, "deployer");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "deployer", "deploy", "deploy-1"));
    assert_string_equal (s_approve (alice, id), "OK");
    assert_null (harness_deliver (deployer, 300));            //  1 of 2
    assert_string_equal (s_approve (alice, id), "DUPLICATE");   //  still 1 of 2
    assert_null (harness_deliver (deployer, 300));
    assert_string_equal (s_approve (bob, id), "OK");            //  2 of 2
    Bulkhead__V1__Frame *d = harness_deliver (deployer, 5000);
    assert_non_null (d);
    assert_int_equal (d->deliver->n_approvals, 2);
    assert_string_equal (d->deliver->approvals [0]->approver, "alice");
    assert_string_equal (d->deliver->approvals [1]->approver, "bob");
    bus_client_free (&d);
    assert_null (harness_deliver (deployer, 300));
    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
    bus_client_destroy (&bob);
    bus_client_destroy (&deployer);
}

static void
test_self_and_non_approvers_refused (void **state)
{
    harness_t *h = *state;
    bus_client_t *selfish = harness_agent (h, "selfish");
    bus_client_t *mallory = harness_agent (h, "mallory");
    bus_client_t *carol = harness_agent (h, "carol");
    bus_client_t *alice = harness_agent (h, "alice");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (selfish, "payments", "finance", "self-1"));
    uint8_t digest [32];
    s_digest (alice, id, digest);
    //  selfish is a finance approver, but not of its own message.
    assert_string_equal (s_decide (selfish, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL),
                         "PERM");
    //  mallory is no approver at all; carol approves comms, not finance.
    assert_string_equal (s_decide (mallory, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL),
                         "PERM");
    assert_string_equal (s_decide (carol, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL),
                         "PERM");
    assert_string_equal (s_decide (carol, BULKHEAD__V1__CONTROL_OP__CONTROL_DENY, id, NULL, "no"),
                         "PERM");
    //  And an unknown id says so.
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, "h-nope", digest, NULL),
                         "NOTFOUND");
    //  Still pending for alice.
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL), "OK");
    bus_client_destroy (&selfish);
    bus_client_destroy (&mallory);
    bus_client_destroy (&carol);
    bus_client_destroy (&alice);
}

static void
test_approval_of_a_different_message_refused (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *alice = harness_agent (h, "alice");
    char first [32], second [32];
    snprintf (first, sizeof first, "%s", s_hold (planner, "payments", "finance", "pay-a"));
    snprintf (second, sizeof second, "%s", s_hold (planner, "payments", "finance", "pay-b"));
    uint8_t digest_a [32], digest_b [32];
    s_digest (alice, first, digest_a);
    s_digest (alice, second, digest_b);
    assert_memory_not_equal (digest_a, digest_b, 32);
    //  alice read pay-b, but names pay-a's id: refused.
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, first, digest_b, NULL),
                         "INVAL");
    digest_a [0] ^= 1;
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, first, digest_a, NULL),
                         "INVAL");
    digest_a [0] ^= 1;
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, first, digest_a, NULL),
                         "OK");
    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
}

static void
test_replayed_approval_refused_also_after_restart (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *alice = harness_agent (h, "alice");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "payments", "finance", "pay-r"));
    uint8_t digest [32];
    s_digest (alice, id, digest);
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL), "OK");
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL), "PERM");
    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
    assert_int_equal (harness_stop (h, SIGTERM), 0);
    assert_int_equal (harness_start (h), 0);
    bus_client_t *bob = harness_agent (h, "bob");
    assert_string_equal (s_decide (bob, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL), "PERM");
    bus_client_destroy (&bob);
    //  Delivered exactly once.
    bus_client_t *payments = harness_agent (h, "payments");
    Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
    assert_non_null (d);
    bus_client_free (&d);
    assert_null (harness_deliver (payments, 500));
    bus_client_destroy (&payments);
}

static void
test_restart_with_pending_holds_then_approve (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "payments", "finance", "pay-p"));
    bus_client_destroy (&planner);
    assert_int_equal (harness_stop (h, SIGTERM), 0);
    assert_int_equal (harness_start (h), 0);
    bus_client_t *payments = harness_agent (h, "payments");
    bus_client_t *bob = harness_agent (h, "bob");
    const Bulkhead__V1__Pending *entry;
    Bulkhead__V1__Frame *reply = s_pending (bob, id, &entry);
    assert_non_null (entry);
    assert_string_equal (entry->justification, "paying invoice 42 as the user asked");
    bus_client_free (&reply);
    assert_string_equal (s_approve (bob, id), "OK");
    Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
    assert_non_null (d);
    assert_string_equal (d->deliver->message_id, "pay-p");
    bus_client_free (&d);
    bus_client_destroy (&payments);
    bus_client_destroy (&bob);
}

//  kill -9 right after the approval is acknowledged and before the
//  (offline) recipient has it: after restart it arrives, once.
static void
test_kill9_between_approve_and_deliver (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *alice = harness_agent (h, "alice");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "payments", "finance", "pay-k"));
    assert_string_equal (s_approve (alice, id), "OK");
    harness_stop (h, SIGKILL);
    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
    assert_int_equal (harness_start (h), 0);
    bus_client_t *payments = harness_agent (h, "payments");
    Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
    assert_non_null (d);
    assert_string_equal (d->deliver->message_id, "pay-k");
    bus_error_t err;
    bus_client_ack (payments, d->deliver->seq, &err);
    bus_client_free (&d);
    assert_null (harness_deliver (payments, 500));
    bus_client_destroy (&payments);
    harness_verify (h);
}

static void
test_policy_change_before_approval_denies (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *ops = harness_agent (h, "ops");
    char id [32];
    snprintf (id, sizeof id, "%s", s_hold (planner, "payments", "finance", "pay-gone"));
    uint8_t digest [32];
    s_digest (alice, id, digest);
    //  The operator removes the edge planner -> payments.
    char *policy = strdup (s_policy);
    char *edge = strstr (policy, "        payments = finance\n");
    assert_non_null (edge);
    memmove (edge, edge + strlen ("        payments = finance\n"),
             strlen (edge + strlen ("        payments = finance\n")) + 1);
    assert_int_equal (harness_policy (h, policy), 0);
    free (policy);
    Bulkhead__V1__Frame *reply = harness_reload (ops);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    //  The reload decided the hold again and the chain refused it (reach):
    //  it is closed, so the approval finds nothing to release.
    assert_string_equal (s_decide (alice, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, id, digest, NULL),
                         "PERM");
    Bulkhead__V1__Frame *ack = s_wait_for (planner, BULKHEAD__V1__FRAME__BODY_ACK, 5000);
    assert_non_null (ack);
    assert_string_equal (harness_code (ack), "denied");
    assert_string_equal (ack->ack->code, "DENIED");
    bus_client_free (&ack);
    bus_client_t *payments = harness_agent (h, "payments");
    assert_null (harness_deliver (payments, 300));
    bus_client_destroy (&payments);
    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
    bus_client_destroy (&ops);
}

static void
test_hold_cap_per_sender (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    for (int i = 0; i < 3; i++) {
        char id [16];
        snprintf (id, sizeof id, "cap-%d", i);
        s_hold (planner, "payments", "finance", id);
    }
    Bulkhead__V1__Frame *reply = harness_send (planner, "payments", "finance", "one more", "cap-3");
    assert_non_null (reply);
    assert_string_equal (harness_code (reply), "denied");
    assert_string_equal (reply->ack->code, "HOLDFULL");
    bus_client_free (&reply);
    //  A resend of a held message is the same hold, not a new one.
    reply = harness_send (planner, "payments", "finance", "amount=10", "cap-0");
    assert_string_equal (harness_code (reply), "held");
    assert_string_equal (reply->ack->code, "DUPLICATE");
    bus_client_free (&reply);
    bus_client_destroy (&planner);
}

static void
test_restricted_privileged_goes_to_queue_marked (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *carol = harness_agent (h, "carol");
    Bulkhead__V1__Frame *reply = harness_send (web, "mailer", "comms", "forward this", "web-1");
    assert_non_null (reply);
    assert_string_equal (harness_code (reply), "held");
    assert_string_equal (reply->ack->code, "RESTRICTED");
    assert_true (reply->ack->restricted);
    char id [32];
    snprintf (id, sizeof id, "%s", reply->ack->approval_id);
    bus_client_free (&reply);
    const Bulkhead__V1__Pending *entry;
    reply = s_pending (carol, id, &entry);
    assert_non_null (entry);
    assert_true (entry->restricted);
    bus_client_free (&reply);
    //  The CLI shows it too.
    char key [512], *out = NULL;
    snprintf (key, sizeof key, "%s/carol.key", h->dir);
    assert_int_equal (harness_run (h, &out, "pending", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                   "--key", key, NULL), 0);
    assert_non_null (strstr (out, "RESTRICTED"));
    assert_non_null (strstr (out, id));
    free (out);
    bus_client_destroy (&web);
    bus_client_destroy (&carol);
}

//  ---------------------------------------------------------------------
//  Standing grants

//  Sends one message (action and cause optional); returns the ACK frame.
static Bulkhead__V1__Frame *
s_send (bus_client_t *client, const char *to, const char *intent, const char *action,
        const char *id, uint64_t cause)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.message_id = (char *) id;
    send.action = (char *) action;
    send.has_payload = true;
    send.payload.data = (uint8_t *) "amount=10";
    send.payload.len = 9;
    send.n_causes = cause? 1: 0;
    send.causes = &cause;
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    assert_int_equal (bus_client_send (client, &send, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_ACK);
    return reply;
}

//  Sends and checks the verdict word; "accepted" is delivered or queued.
static void
s_expect (bus_client_t *client, const char *to, const char *intent, const char *action,
          const char *id, const char *verdict)
{
    Bulkhead__V1__Frame *reply = s_send (client, to, intent, action, id, 0);
    const char *got = harness_code (reply);
    bool accepted = strcmp (got, "delivered") == 0 || strcmp (got, "queued") == 0;
    if (strcmp (verdict, "accepted") == 0? !accepted: strcmp (got, verdict) != 0) {
        fail_msg ("%s: expected %s, got %s (%s: %s)", id, verdict, harness_code (reply),
                  reply->ack->code, reply->ack->reason);
    }
    bus_client_free (&reply);
}

//  A grant by `approver`; returns the reply code (static copy), and in id
//  (if not NULL) the grant id, or the reason when refused.
static const char *
s_grant (bus_client_t *approver, const char *sender, const char *to, const char *cls,
         const char *action, uint32_t count, uint32_t minutes, uint32_t seconds, char id [128])
{
    static char code [32];
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT;
    control.agent = (char *) sender;
    control.recipient = (char *) to;
    control.intent_class = (char *) cls;
    control.action = (char *) action;
    control.has_count = count > 0;
    control.count = count;
    control.has_minutes = minutes > 0;
    control.minutes = minutes;
    control.has_seconds = seconds > 0;
    control.seconds = seconds;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (approver, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    snprintf (code, sizeof code, "%s", reply->control_reply->code);
    if (id) {
        snprintf (id, 128, "%s", reply->control_reply->n_lines? reply->control_reply->lines [0]
                                                              : reply->control_reply->reason);
    }
    bus_client_free (&reply);
    return code;
}

static const char *
s_revoke (bus_client_t *who, const char *id)
{
    static char code [32];
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT;
    control.id = (char *) id;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (who, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    snprintf (code, sizeof code, "%s", reply->control_reply->code);
    bus_client_free (&reply);
    return code;
}

//  How many times `text` occurs in the log's hold records.
static int
s_log_count (harness_t *h, const char *text)
{
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "hold", NULL);
    int count = 0;
    for (const char *at = out? strstr (out, text): NULL; at; at = strstr (at + 1, text)) {
        count++;
    }
    free (out);
    return count;
}

static void
test_grant_used_up (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *payments = harness_agent (h, "payments");
    char grant [128];
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 2, 0, 0, grant), "OK");
    assert_memory_equal (grant, "g-", 2);
    for (int i = 0; i < 2; i++) {
        char id [32];
        snprintf (id, sizeof id, "granted-%d", i);
        Bulkhead__V1__Frame *reply = s_send (planner, "payments", "finance", NULL, id, 0);
        assert_string_equal (harness_code (reply), "delivered");
        assert_null (reply->ack->approval_id);
        assert_non_null (strstr (reply->ack->reason, grant));
        bus_client_free (&reply);
        //  The recipient sees who approved it in advance.
        Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
        assert_non_null (d);
        assert_string_equal (d->deliver->message_id, id);
        assert_int_equal (d->deliver->n_approvals, 1);
        assert_string_equal (d->deliver->approvals [0]->approver, "alice");
        bus_client_free (&d);
    }
    //  Used up: the third waits for a person.
    s_hold (planner, "payments", "finance", "granted-2");
    assert_null (harness_deliver (payments, 300));
    assert_string_equal (s_revoke (alice, grant), "NOTFOUND");
    char text [256];
    snprintf (text, sizeof text, "grant %s used (1 left)", grant);
    assert_int_equal (s_log_count (h, text), 1);
    snprintf (text, sizeof text, "grant %s used (0 left)", grant);
    assert_int_equal (s_log_count (h, text), 1);
    snprintf (text, sizeof text, "grant %s used up", grant);
    assert_int_equal (s_log_count (h, text), 1);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
    bus_client_destroy (&payments);
}

static void
test_grant_expired (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *payments = harness_agent (h, "payments");
    char grant [128];
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 0, 0, 1, grant), "OK");
    s_expect (planner, "payments", "finance", NULL, "timed-0", "accepted");
    Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
    assert_non_null (d);
    bus_client_free (&d);
    //  A second later it lets nothing through. Bounded: at most 20 rounds,
    //  each taking the delivery and then polling 250 ms for one that must
    //  not come.
    bool held = false;
    for (int i = 1; i <= 20 && !held; i++) {
        char id [32];
        snprintf (id, sizeof id, "timed-%d", i);
        Bulkhead__V1__Frame *reply = s_send (planner, "payments", "finance", NULL, id, 0);
        held = strcmp (harness_code (reply), "held") == 0;
        if (!held) {
            assert_string_equal (harness_code (reply), "delivered");
            d = harness_deliver (payments, 5000);
            assert_non_null (d);
            assert_string_equal (d->deliver->message_id, id);
            bus_client_free (&d);
        }
        bus_client_free (&reply);
        assert_null (harness_deliver (payments, 250));
    }
    assert_true (held);
    char text [256];
    snprintf (text, sizeof text, "grant %s expired", grant);
    assert_int_equal (s_log_count (h, text), 1);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
    bus_client_destroy (&payments);
}

static void
test_grant_refused_when_wider_than_allowed (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *carol = harness_agent (h, "carol");
    bus_client_t *mallory = harness_agent (h, "mallory");
    bus_client_t *selfish = harness_agent (h, "selfish");
    bus_client_t *planner = harness_agent (h, "planner");
    char why [128];
    //  One approver cannot stand in for a quorum of two.
    assert_string_equal (s_grant (alice, "planner", "deployer", "deploy", NULL, 1, 0, 0, why), "PERM");
    assert_non_null (strstr (why, "quorum"));
    //  Not an approver; not an approver of this class; not for itself.
    assert_string_equal (s_grant (mallory, "planner", "payments", "finance", NULL, 1, 0, 0, NULL), "PERM");
    assert_string_equal (s_grant (carol, "planner", "payments", "finance", NULL, 1, 0, 0, NULL), "PERM");
    assert_string_equal (s_grant (selfish, "selfish", "payments", "finance", NULL, 1, 0, 0, NULL), "PERM");
    //  No wider than the policy: no such edge.
    assert_string_equal (s_grant (alice, "mallory", "payments", "finance", NULL, 1, 0, 0, why), "DENIED");
    assert_non_null (strstr (why, "no edge"));
    //  An untrusted sender's messages are restricted: always a person.
    assert_string_equal (s_grant (carol, "web-reader", "mailer", "comms", NULL, 1, 0, 0, NULL), "PERM");
    //  Bounded: count 1..1000, minutes 1..1440, at least one of them.
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 0, 0, 0, NULL), "INVAL");
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 1001, 0, 0, NULL), "INVAL");
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 0, 1441, 0, NULL), "INVAL");
    //  None of that lets anything through.
    s_hold (planner, "payments", "finance", "after-refusals");
    bus_client_destroy (&alice);
    bus_client_destroy (&carol);
    bus_client_destroy (&mallory);
    bus_client_destroy (&selfish);
    bus_client_destroy (&planner);
}

static void
test_grant_never_wider_than_named (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    char grant [128];
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", "transfer.create", 10, 5, 0,
                                  grant), "OK");
    s_expect (planner, "payments", "finance", "transfer.create", "named-1", "accepted");
    //  Another action, no action, another recipient of the same class.
    s_expect (planner, "payments", "finance", "transfer.delete", "named-2", "held");
    s_expect (planner, "payments", "finance", NULL, "named-3", "held");
    s_expect (planner, "treasury", "finance", "transfer.create", "named-4", "held");
    char text [256];
    snprintf (text, sizeof text, "grant %s used (9 left)", grant);
    assert_int_equal (s_log_count (h, text), 1);
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
}

static void
test_grant_not_for_restricted (void **state)
{
    harness_t *h = *state;
    bus_client_t *carol = harness_agent (h, "carol");
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *planner = harness_agent (h, "planner");
    char grant [128];
    assert_string_equal (s_grant (carol, "planner", "mailer", "comms", NULL, 5, 0, 0, grant), "OK");
    s_expect (planner, "mailer", "comms", NULL, "plain-1", "accepted");
    //  planner acts on something restricted it was delivered (a cause must
    //  be a message its sender saw): that message goes to carol.
    Bulkhead__V1__Frame *reply = harness_send (web, "planner", "message", "forward this", "web-g");
    assert_true (reply->ack->restricted);
    uint64_t restricted_seq = reply->ack->seq;
    bus_client_free (&reply);
    reply = s_send (planner, "mailer", "comms", NULL, "caused-1", restricted_seq);
    assert_string_equal (harness_code (reply), "held");
    assert_string_equal (reply->ack->code, "RESTRICTED");
    assert_true (reply->ack->restricted);
    bus_client_free (&reply);
    char text [256];
    snprintf (text, sizeof text, "grant %s used (4 left)", grant);
    assert_int_equal (s_log_count (h, text), 1);
    snprintf (text, sizeof text, "grant %s used (3 left)", grant);
    assert_int_equal (s_log_count (h, text), 0);
    bus_client_destroy (&carol);
    bus_client_destroy (&web);
    bus_client_destroy (&planner);
}

static void
test_grant_survives_restart (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *planner = harness_agent (h, "planner");
    char grant [128];
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 3, 0, 0, grant), "OK");
    s_expect (planner, "payments", "finance", NULL, "before-restart", "accepted");
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
    assert_int_equal (harness_stop (h, SIGTERM), 0);
    assert_int_equal (harness_start (h), 0);
    //  Two left, not three: each use is durable with its message, also
    //  across kill -9.
    planner = harness_agent (h, "planner");
    s_expect (planner, "payments", "finance", NULL, "after-restart-1", "accepted");
    harness_stop (h, SIGKILL);
    bus_client_destroy (&planner);
    assert_int_equal (harness_start (h), 0);
    planner = harness_agent (h, "planner");
    s_expect (planner, "payments", "finance", NULL, "after-restart-2", "accepted");
    s_expect (planner, "payments", "finance", NULL, "after-restart-3", "held");
    bus_client_destroy (&planner);
    harness_verify (h);
}

static void
test_grant_revoked (void **state)
{
    harness_t *h = *state;
    bus_client_t *alice = harness_agent (h, "alice");
    bus_client_t *bob = harness_agent (h, "bob");
    bus_client_t *ops = harness_agent (h, "ops");
    bus_client_t *planner = harness_agent (h, "planner");
    char first [128], second [128];
    assert_string_equal (s_grant (alice, "planner", "payments", "finance", NULL, 0, 10, 0, first), "OK");
    assert_string_equal (s_grant (alice, "planner", "treasury", "finance", NULL, 0, 10, 0, second), "OK");
    s_expect (planner, "payments", "finance", NULL, "rev-1", "accepted");
    //  Another approver may not revoke alice's grant; she and an operator may.
    assert_string_equal (s_revoke (bob, first), "PERM");
    assert_string_equal (s_revoke (alice, first), "OK");
    assert_string_equal (s_revoke (alice, first), "NOTFOUND");
    assert_string_equal (s_revoke (ops, second), "OK");
    s_expect (planner, "payments", "finance", NULL, "rev-2", "held");
    s_expect (planner, "treasury", "finance", NULL, "rev-3", "held");
    char text [256];
    snprintf (text, sizeof text, "grant %s revoked by alice", first);
    assert_int_equal (s_log_count (h, text), 1);
    snprintf (text, sizeof text, "grant %s revoked by ops", second);
    assert_int_equal (s_log_count (h, text), 1);
    bus_client_destroy (&alice);
    bus_client_destroy (&bob);
    bus_client_destroy (&ops);
    bus_client_destroy (&planner);
}

static void
test_grant_command_line (void **state)
{
    harness_t *h = *state;
    char key [512], *out = NULL;
    snprintf (key, sizeof key, "%s/alice.key", h->dir);
    assert_int_equal (harness_run (h, &out, "grant", "--help", NULL), 0);
    assert_non_null (strstr (out, "--revoke ID"));
    free (out);
    assert_int_equal (harness_run (h, &out, "grant", "--sender", "planner", "--to", "payments", NULL), 2);
    free (out);
    assert_int_equal (harness_run (h, &out, "grant", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                   "--key", key, "--sender", "planner", "--to", "payments",
                                   "--class", "finance", "--count", "1", NULL), 0);
    assert_memory_equal (out, "g-", 2);
    char grant [32];
    snprintf (grant, sizeof grant, "%.*s", (int) strcspn (out, "\n"), out);
    free (out);
    assert_int_equal (harness_run (h, &out, "grant", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                   "--key", key, "--sender", "planner", "--to", "deployer",
                                   "--class", "deploy", "--minutes", "5", NULL), 1);
    assert_non_null (strstr (out, "quorum"));
    free (out);
    assert_int_equal (harness_run (h, &out, "grant", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                   "--key", key, "--revoke", grant, NULL), 0);
    assert_non_null (strstr (out, "revoked by alice"));
    free (out);
    bus_client_t *planner = harness_agent (h, "planner");
    s_expect (planner, "payments", "finance", NULL, "cli-1", "held");
    bus_client_destroy (&planner);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_held_then_approved_then_delivered, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_denied_with_reason_reaches_sender, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_expired_hold_never_delivers, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_quorum_two_of_three_counts_each_approver_once, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_self_and_non_approvers_refused, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_approval_of_a_different_message_refused, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_replayed_approval_refused_also_after_restart, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_restart_with_pending_holds_then_approve, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_kill9_between_approve_and_deliver, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_policy_change_before_approval_denies, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_hold_cap_per_sender, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_restricted_privileged_goes_to_queue_marked, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_used_up, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_expired, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_refused_when_wider_than_allowed, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_never_wider_than_named, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_not_for_restricted, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_survives_restart, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_revoked, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_grant_command_line, s_setup, harness_fixture_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
