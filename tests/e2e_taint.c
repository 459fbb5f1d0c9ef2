/*  e2e_taint.c: intent classes and restricted tagging over real sockets. */
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

//  finance is not held here, so these tests see the classify and taint
//  stages alone; the approval queue has its own tests.
static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        hold = false\n"
    "    comms\n"
    "        hold = false\n"
    "        actions = email.*\n"
    "agents\n"
    "    web-reader\n        key = @web-reader@\n        trust = untrusted\n"
    "    planner\n        key = @planner@\n"
    "    relay\n        key = @relay@\n"
    "    helper\n        key = @helper@\n        taint = causal\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    mailer\n        key = @mailer@\n        accepts_restricted = false\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "    ops2\n        key = @ops2@\n        role = operator\n"
    "edges\n"
    "    web-reader\n"
    "        planner = message\n"
    "        helper = message\n"
    "    planner\n"
    "        payments = finance, message\n"
    "        mailer = message, comms\n"
    "        relay = message\n"
    "        helper = message\n"
    "    relay\n"
    "        payments = finance\n"
    "    helper\n"
    "        payments = finance\n"
    "        planner = message\n"
    "    ops\n"
    "        payments = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

typedef struct {
    const char *action;
    const char *untrusted;          //  source, or NULL
    uint64_t cause;                 //  0 = none
} extra_t;

//  Sends and checks verdict and code; returns the ACK frame (caller frees).
static Bulkhead__V1__Frame *
s_send (bus_client_t *client, const char *to, const char *intent, const extra_t *extra,
        const char *verdict, const char *code)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.has_payload = true;
    send.payload.data = (uint8_t *) "content";
    send.payload.len = 7;
    uint64_t cause = extra? extra->cause: 0;
    if (extra) {
        send.action = (char *) extra->action;
        if (extra->untrusted) {
            send.has_provenance = true;
            send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
            send.source = (char *) extra->untrusted;
        }
        if (cause) {
            send.n_causes = 1;
            send.causes = &cause;
        }
    }
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    assert_int_equal (bus_client_send (client, &send, &reply, 5000, &err), 0);
    assert_string_equal (harness_code (reply), verdict);
    assert_string_equal (reply->ack->code, code);
    return reply;
}

static bool
s_restricted (Bulkhead__V1__Frame *reply)
{
    bool restricted = reply->ack->restricted;
    bus_client_free (&reply);
    return restricted;
}

static void
test_untrusted_sender_is_restricted (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *planner = harness_agent (h, "planner");
    Bulkhead__V1__Frame *ack = s_send (web, "planner", "message", NULL, "delivered", "OK");
    uint64_t seq = ack->ack->seq;
    assert_true (s_restricted (ack));
    Bulkhead__V1__Frame *d = harness_deliver (planner, 5000);
    assert_non_null (d);
    assert_int_equal (d->deliver->seq, seq);
    assert_true (d->deliver->restricted);       //  the recipient sees the mark
    bus_client_free (&d);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--restricted", "--json", NULL);
    assert_non_null (strstr (out, "\"restricted_why\":\"sender web-reader is untrusted\""));
    free (out);
    bus_client_destroy (&web);
    bus_client_destroy (&planner);
}

static void
test_untrusted_provenance_is_restricted (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    extra_t inbox = { .untrusted = "inbound email" };
    assert_true (s_restricted (s_send (planner, "helper", "message", &inbox, "queued", "OK")));
    //  mailer does not take restricted content.
    s_restricted (s_send (planner, "mailer", "message", &inbox, "denied", "REFUSED"));
    //  Without the declaration, planner is trusted... but it is not tainted
    //  by what it sent, only by what it receives.
    assert_false (s_restricted (s_send (planner, "mailer", "message", NULL, "queued", "OK")));
    bus_client_destroy (&planner);
}

static void
test_restricted_cause_restricts (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *helper = harness_agent (h, "helper");       //  causal mode
    Bulkhead__V1__Frame *ack = s_send (web, "helper", "message", NULL, "delivered", "OK");
    uint64_t tainted_seq = ack->ack->seq;
    bus_client_free (&ack);
    //  Causal mode: helper's own messages are clean unless a cause is not.
    assert_false (s_restricted (s_send (helper, "planner", "message", NULL, "queued", "OK")));
    extra_t caused = { .cause = tainted_seq };
    assert_true (s_restricted (s_send (helper, "planner", "message", &caused, "queued", "OK")));
    //  And a restricted cause may not trigger finance.
    s_restricted (s_send (helper, "payments", "finance", &caused, "denied", "RESTRICTED"));
    assert_false (s_restricted (s_send (helper, "payments", "finance", NULL, "queued", "OK")));
    bus_client_destroy (&web);
    bus_client_destroy (&helper);
}

//  web-reader -> planner -> relay -> payments: sticky taint follows the
//  content through trusted relays, and the payment is denied.
static void
test_relay_chain_does_not_launder (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *relay = harness_agent (h, "relay");
    s_restricted (s_send (web, "planner", "message", NULL, "delivered", "OK"));
    //  planner is trusted, but tainted now: its payment is restricted.
    s_restricted (s_send (planner, "payments", "finance", NULL, "denied", "RESTRICTED"));
    assert_true (s_restricted (s_send (planner, "relay", "message", NULL, "delivered", "OK")));
    s_restricted (s_send (relay, "payments", "finance", NULL, "denied", "RESTRICTED"));
    //  The taint listing names both, with the message that did it.
    char *out = NULL;
    assert_int_equal (harness_run (h, &out, "taint", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                   "--key", NULL), 2);
    free (out);
    char key [512];
    snprintf (key, sizeof key, "%s/ops.key", h->dir);
    assert_int_equal (harness_run (h, &out, "taint", "--bus", h->endpoint, "--bus-key", h->bus_pub,
                                   "--key", key, NULL), 0);
    assert_non_null (strstr (out, "planner tainted since"));
    assert_non_null (strstr (out, "relay tainted since"));
    free (out);
    bus_client_destroy (&web);
    bus_client_destroy (&planner);
    bus_client_destroy (&relay);
}

static void
test_sender_label_cannot_lower_the_class (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *ops = harness_agent (h, "ops");
    //  payments is declared finance: a "message" to it is finance.
    Bulkhead__V1__Frame *ack = s_send (planner, "payments", "message", NULL, "queued", "OK");
    assert_string_equal (ack->ack->intent_class, "finance");
    bus_client_free (&ack);
    //  ops's edge carries only message: the payment is denied, and the
    //  reason names the class and the rule that decided it.
    ack = s_send (ops, "payments", "message", NULL, "denied", "CLASS");
    assert_non_null (strstr (ack->ack->reason, "recipient payments is finance"));
    bus_client_free (&ack);
    //  Action rules: email.* is comms.
    extra_t email = { .action = "email.send" };
    ack = s_send (planner, "mailer", "message", &email, "queued", "OK");
    assert_string_equal (ack->ack->intent_class, "comms");
    bus_client_free (&ack);
    ack = s_send (planner, "helper", "message", &email, "denied", "CLASS");
    assert_non_null (strstr (ack->ack->reason, "action email.send matches comms"));
    bus_client_free (&ack);
    //  The label can raise: "finance" to helper (message only) is denied.
    s_restricted (s_send (planner, "helper", "finance", NULL, "denied", "INTENT"));
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--class", "comms", NULL);
    assert_non_null (strstr (out, "message/comms"));
    free (out);
    bus_client_destroy (&planner);
    bus_client_destroy (&ops);
}

static void
test_operator_clears_taint_agent_cannot (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *ops = harness_agent (h, "ops");
    bus_client_t *ops2 = harness_agent (h, "ops2");
    s_restricted (s_send (web, "planner", "message", NULL, "delivered", "OK"));
    s_restricted (s_send (web, "planner", "message", NULL, "delivered", "OK"));

    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_CLEAR_TAINT;
    control.agent = "planner";
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    //  planner cannot clear itself (not an operator, and not its own).
    assert_int_equal (bus_client_control (planner, &control, &reply, 5000, &err), 0);
    assert_string_equal (reply->control_reply->code, "PERM");
    bus_client_free (&reply);
    s_restricted (s_send (planner, "payments", "finance", NULL, "denied", "RESTRICTED"));

    //  An operator cannot clear its own taint either.
    s_restricted (s_send (ops, "payments", "message", NULL, "denied", "CLASS"));
    control.agent = "ops";
    assert_int_equal (bus_client_control (ops, &control, &reply, 5000, &err), 0);
    assert_true (strcmp (reply->control_reply->code, "PERM") == 0
              || strcmp (reply->control_reply->code, "NOTFOUND") == 0);
    bus_client_free (&reply);

    //  While planner has not acknowledged the restricted messages, a clear
    //  is refused with their count: clearing must not launder unread
    //  content (identity issue, finding 5).
    control.agent = "planner";
    assert_int_equal (bus_client_control (ops2, &control, &reply, 5000, &err), 0);
    assert_string_equal (reply->control_reply->code, "PERM");
    assert_non_null (strstr (reply->control_reply->reason, "2 restricted messages"));
    bus_client_free (&reply);
    //  planner reads and acknowledges them; another operator clears it, and
    //  it can pay again.
    uint64_t last = 0;
    for (int i = 0; i < 2; i++) {
        Bulkhead__V1__Frame *d = harness_deliver (planner, 2000);
        assert_non_null (d);
        assert_true (d->deliver->restricted);
        last = d->deliver->seq;
        bus_client_free (&d);
    }
    assert_int_equal (bus_client_ack (planner, last, &err), 0);
    Bulkhead__V1__Control list = BULKHEAD__V1__CONTROL__INIT;
    list.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT;
    assert_int_equal (bus_client_control (planner, &list, &reply, 5000, &err), 0);
    bus_client_free (&reply);           //  a round trip: the ack was handled
    assert_int_equal (bus_client_control (ops2, &control, &reply, 5000, &err), 0);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    assert_false (s_restricted (s_send (planner, "payments", "finance", NULL, "queued", "OK")));

    //  Both attempts are in the log.
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "control", NULL);
    assert_non_null (strstr (out, "planner PERM"));
    assert_non_null (strstr (out, "ops2"));
    assert_non_null (strstr (out, "cleared by ops2"));
    free (out);
    bus_client_destroy (&web);
    bus_client_destroy (&planner);
    bus_client_destroy (&ops);
    bus_client_destroy (&ops2);
}

static void
test_taint_survives_restart (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    s_restricted (s_send (web, "planner", "message", NULL, "queued", "OK"));
    bus_client_destroy (&web);
    assert_int_equal (harness_stop (h, SIGTERM), 0);
    assert_int_equal (harness_start (h), 0);
    bus_client_t *planner = harness_agent (h, "planner");
    s_restricted (s_send (planner, "payments", "finance", NULL, "denied", "RESTRICTED"));
    bus_client_destroy (&planner);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_untrusted_sender_is_restricted, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_untrusted_provenance_is_restricted, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_restricted_cause_restricts, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_relay_chain_does_not_launder, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_sender_label_cannot_lower_the_class, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_operator_clears_taint_agent_cannot, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_taint_survives_restart, s_setup, harness_fixture_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
