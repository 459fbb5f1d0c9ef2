/*  e2e_monitor.c: the detectors in the running bus, over real sockets.

    - A two-agent loop (each answers the other naming what it got) is
      caught: an ALERT record, an Alert frame to the agent with the
      monitor role, and (the policy says quarantine_on = loop) the sender
      quarantined: its next send is held (QUARANTINE), `bulkhead alerts`
      and `quarantine --list` show it all, and after `bulkhead release`
      the held message is delivered.
    - A missing expected result is alerted within its T (2 s here); a
      result that came back denied is alerted at once.
    - Quarantine and alerts survive a restart; only operators quarantine.
    - While quarantined no approval releases a message; after the release a
      message of a held class still waits for its approvers.
*/
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
#include <time.h>

static const char *s_policy =
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    worker\n        key = @worker@\n"
    "    watch\n        key = @watch@\n        role = monitor\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "    ops2\n        key = @ops2@\n        role = operator\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "edges\n"
    "    planner\n"
    "        worker = message\n"
    "        payments = finance\n"
    "    worker\n"
    "        planner = message\n"
    "monitor\n"
    "    quarantine_on = loop\n"
    "    expect\n"
    "        worker-answers\n"
    "            class = message\n"
    "            to = worker\n"
    "            reply_within = 2\n";

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

//  `bulkhead ARGS...` as agent, connected to h's bus.
static char s_key [512];
#define S_CLI(h, out, agent, ...) \
    (snprintf (s_key, sizeof s_key, "%s/%s.key", (h)->dir, (agent)), \
     harness_run ((h), (out), __VA_ARGS__, "--bus", (h)->endpoint, "--bus-key", (h)->bus_pub, \
                  "--key", s_key, NULL))

static uint64_t
s_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

//  Sends with one cause (0: none); returns the ACK frame.
static Bulkhead__V1__Frame *
s_send (bus_client_t *client, const char *to, const char *payload, uint64_t cause)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = "message";
    send.has_payload = true;
    send.payload.data = (uint8_t *) payload;
    send.payload.len = strlen (payload);
    send.n_causes = cause? 1: 0;
    send.causes = &cause;
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    if (bus_client_send (client, &send, &reply, 5000, &err) != 0) {
        fail_msg ("send: %s", err.text);
    }
    return reply;
}

//  A payment to payments: finance, which is held.
static Bulkhead__V1__Send
s_payment (void)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = "payments";
    send.intent = "finance";
    send.has_payload = true;
    send.payload.data = (uint8_t *) "pay 10";
    send.payload.len = 6;
    return send;
}

//  The code word of an ACK or ERROR ("OK", "QUARANTINE", ...).
static const char *
s_code (const Bulkhead__V1__Frame *frame)
{
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        return frame->ack->code? frame->ack->code: "?";
    }
    return frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR? frame->error->code: "?";
}

//  The next Alert frame of kind within timeout_ms (others skipped), or NULL.
static Bulkhead__V1__Frame *
s_alert (bus_client_t *client, const char *kind, int timeout_ms)
{
    uint64_t end = s_ms () + (uint64_t) timeout_ms;
    while (s_ms () < end) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (bus_client_recv (client, &frame, (int) (end - s_ms ()) + 1, &err) != 0) {
            return NULL;
        }
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ALERT
        &&  strcmp (frame->alert->kind, kind) == 0) {
            return frame;
        }
        bus_client_free (&frame);
    }
    return NULL;
}

static void
test_loop_caught_and_quarantined (void **state)
{
    harness_t *h = *state;
    bus_client_t *watch = harness_agent (h, "watch");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *worker = harness_agent (h, "worker");
    //  Each answers the other, naming what it got: a cycle of causes.
    uint64_t cause = 0;
    const char *quarantined = NULL;
    int sent = 0;
    for (; sent < 40 && !quarantined; sent++) {
        bus_client_t *from = sent % 2? worker: planner;
        bus_client_t *to = sent % 2? planner: worker;
        char payload [64];
        snprintf (payload, sizeof payload, "turn %d: and what do you think?", sent);
        Bulkhead__V1__Frame *ack = s_send (from, sent % 2? "planner": "worker", payload, cause);
        const char *code = s_code (ack);
        if (strcmp (code, "QUARANTINE") == 0) {
            quarantined = sent % 2? "worker": "planner";
            assert_int_equal (ack->ack->verdict, BULKHEAD__V1__VERDICT__VERDICT_HELD);
            bus_client_free (&ack);
            break;
        }
        assert_string_equal (code, "OK");
        bus_client_free (&ack);
        Bulkhead__V1__Frame *d = harness_deliver (to, 5000);
        assert_non_null (d);
        cause = d->deliver->seq;
        bus_client_ack (to, cause, &(bus_error_t) { 0 });
        bus_client_free (&d);
    }
    assert_non_null (quarantined);
    print_message ("loop caught and %s quarantined at message %d\n", quarantined, sent + 1);
    //  loop_turns = 4: the 7th message completes the loop; the next send of
    //  its sender is held.
    assert_true (sent <= 8);
    Bulkhead__V1__Frame *alert = s_alert (watch, "loop", 5000);
    assert_non_null (alert);
    assert_string_equal (alert->alert->subject, "planner>worker");
    assert_true (alert->alert->n_evidence >= 4);
    assert_true (alert->alert->has_seq);
    bus_client_free (&alert);

    char *out = NULL;
    assert_int_equal (S_CLI (h, &out, "ops", "alerts"), 0);
    assert_non_null (strstr (out, "open loop planner>worker"));
    free (out);
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "--list"), 0);
    assert_non_null (strstr (out, "quarantined since"));
    assert_non_null (strstr (out, "by bus: alert a-"));
    free (out);
    //  Agents may not quarantine, nor release (the planner's own key: a
    //  CLI connection of the worker's would take over its session); a
    //  quarantined one is refused before its role is looked at.
    assert_int_equal (S_CLI (h, &out, "planner", "release", "planner"), 1);
    assert_non_null (strstr (out, strcmp (quarantined, "planner") == 0? "QUARANTINE": "PERM"));
    free (out);
    //  The log says it all: the alert, and who quarantined whom.
    assert_int_equal (harness_run (h, &out, "log", "--data", h->data, "--kind", "alert", NULL), 0);
    assert_non_null (strstr (out, " loop on planner>worker evidence="));
    free (out);
    assert_int_equal (harness_run (h, &out, "log", "--data", h->data, "--kind", "control", NULL), 0);
    assert_non_null (strstr (out, "quarantine"));
    free (out);

    //  The live view and the snapshot of the log say so too.
    assert_int_equal (S_CLI (h, &out, "ops", "top", "--once"), 0);
    assert_non_null (strstr (out, "bulkhead top "));
    assert_non_null (strstr (out, "quarantined=1"));
    assert_non_null (strstr (out, "QUARANTINED"));
    assert_non_null (strstr (out, "edges (this minute"));
    assert_non_null (strstr (out, "  planner>worker minute="));
    assert_non_null (strstr (out, "open alerts\n  a-"));
    free (out);
    assert_int_equal (S_CLI (h, &out, "planner", "top", "--once"), 1);    //  not for agents
    free (out);
    assert_int_equal (harness_run (h, &out, "stats", "--data", h->data, "--json", NULL), 0);
    assert_non_null (strstr (out, "\"alerts\":1}"));
    free (out);

    //  Released by an operator: the held message goes on (message is not
    //  a held class), and the release is audited.
    bus_client_t *to = strcmp (quarantined, "planner") == 0? worker: planner;
    assert_int_equal (S_CLI (h, &out, "ops", "release", quarantined), 0);
    assert_non_null (strstr (out, "released from quarantine by ops"));
    free (out);
    Bulkhead__V1__Frame *d = harness_deliver (to, 5000);
    if (!d) {
        harness_run (h, &out, "log", "--data", h->data, NULL);
        fprintf (stderr, "%s\n", out);
        free (out);
    }
    assert_non_null (d);
    bus_client_free (&d);
    bus_client_destroy (&planner);
    bus_client_destroy (&worker);
    bus_client_destroy (&watch);
    harness_verify (h);
}

static void
test_missing_and_denied_result (void **state)
{
    harness_t *h = *state;
    bus_client_t *watch = harness_agent (h, "watch");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *worker = harness_agent (h, "worker");
    uint64_t start = s_ms ();
    Bulkhead__V1__Frame *ack = s_send (planner, "worker", "please summarise", 0);
    assert_string_equal (s_code (ack), "OK");
    uint64_t asked = ack->ack->seq;
    bus_client_free (&ack);
    //  No answer: alerted after reply_within = 2 s (the bus looks every
    //  200 ms), naming the request as evidence.
    Bulkhead__V1__Frame *alert = s_alert (watch, "result", 6000);
    assert_non_null (alert);
    uint64_t took = s_ms () - start;
    print_message ("missing result alerted after %llu ms\n", (unsigned long long) took);
    assert_true (took >= 2000 && took < 4000);
    assert_int_equal (alert->alert->evidence [0], asked);
    assert_string_equal (alert->alert->subject, "worker>planner");
    bus_client_free (&alert);

    //  An answer that is denied (the edge does not carry finance) is an
    //  alert at once.
    ack = s_send (planner, "worker", "and this one?", 0);
    uint64_t second = ack->ack->seq;
    bus_client_free (&ack);
    Bulkhead__V1__Frame *d = harness_deliver (worker, 5000);
    assert_non_null (d);
    bus_client_free (&d);
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = "planner";
    send.intent = "finance";
    send.n_causes = 1;
    send.causes = &second;
    bus_error_t err;
    assert_int_equal (bus_client_send (worker, &send, &ack, 5000, &err), 0);
    assert_string_not_equal (s_code (ack), "OK");
    bus_client_free (&ack);
    alert = s_alert (watch, "result_denied", 3000);
    assert_non_null (alert);
    assert_int_equal (alert->alert->evidence [0], second);
    bus_client_free (&alert);

    //  Acknowledged by the monitor agent; the log names who.
    char *out = NULL;
    assert_int_equal (S_CLI (h, &out, "watch", "alerts", "--json"), 0);
    char *id = strstr (out, "\"id\":\"a-");
    assert_non_null (id);
    char alert_id [24] = "";
    sscanf (id + 6, "%19[a-f0-9-]", alert_id);
    free (out);
    assert_int_equal (S_CLI (h, &out, "watch", "alerts", "--ack", alert_id), 0);
    free (out);
    assert_int_equal (S_CLI (h, &out, "watch", "alerts"), 0);
    assert_non_null (strstr (out, "acked by watch"));
    free (out);
    //  Agents without the role may not list them.
    assert_int_equal (S_CLI (h, &out, "worker", "alerts"), 1);
    free (out);
    bus_client_destroy (&planner);
    bus_client_destroy (&worker);
    bus_client_destroy (&watch);
}

static void
test_quarantine_survives_restart (void **state)
{
    harness_t *h = *state;
    char *out = NULL;
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "worker"), 2);
    free (out);                         //  no reason: usage
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "worker", "--reason", "odd tool use"),
                      0);
    free (out);
    assert_int_equal (harness_stop (h, SIGTERM), 0);
    assert_int_equal (harness_start (h), 0);
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "--list"), 0);
    assert_non_null (strstr (out, "worker quarantined since"));
    assert_non_null (strstr (out, "by ops: odd tool use"));
    free (out);
    bus_client_t *worker = harness_agent (h, "worker");
    Bulkhead__V1__Frame *ack = s_send (worker, "planner", "hello", 0);
    assert_string_equal (s_code (ack), "QUARANTINE");
    bus_client_free (&ack);
    bus_client_destroy (&worker);
    harness_verify (h);
}

static void
test_quarantine_then_approvers (void **state)
{
    harness_t *h = *state;
    char *out = NULL;
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "planner", "--reason", "testing"), 0);
    free (out);
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *worker = harness_agent (h, "worker");
    bus_client_t *payments = harness_agent (h, "payments");
    Bulkhead__V1__Frame *ack = s_send (planner, "worker", "a note", 0);
    assert_string_equal (s_code (ack), "QUARANTINE");
    char note [32];
    snprintf (note, sizeof note, "%s", ack->ack->approval_id);
    bus_client_free (&ack);
    Bulkhead__V1__Send send = s_payment ();
    bus_error_t err;
    assert_int_equal (bus_client_send (planner, &send, &ack, 5000, &err), 0);
    assert_string_equal (s_code (ack), "QUARANTINE");
    char pay [32];
    snprintf (pay, sizeof pay, "%s", ack->ack->approval_id);
    bus_client_free (&ack);
    //  An approver's yes does not end a quarantine.
    assert_int_equal (S_CLI (h, &out, "alice", "approve", note), 0);
    assert_non_null (strstr (out, "still planner is quarantined"));
    free (out);
    assert_null (harness_deliver (worker, 500));
    //  Released: the note goes on; the payment still waits for alice.
    assert_int_equal (S_CLI (h, &out, "ops", "release", "planner"), 0);
    free (out);
    Bulkhead__V1__Frame *d = harness_deliver (worker, 5000);
    assert_non_null (d);
    bus_client_free (&d);
    assert_null (harness_deliver (payments, 500));
    assert_int_equal (S_CLI (h, &out, "alice", "pending"), 0);
    assert_non_null (strstr (out, pay));
    free (out);
    assert_int_equal (S_CLI (h, &out, "alice", "approve", pay), 0);
    free (out);
    d = harness_deliver (payments, 5000);
    assert_non_null (d);
    bus_client_free (&d);
    bus_client_destroy (&planner);
    bus_client_destroy (&worker);
    bus_client_destroy (&payments);
    harness_verify (h);
}

//  Whether a Pending notice reaches client within ms.
static bool
s_pending_within (bus_client_t *client, int ms)
{
    uint64_t end = s_ms () + (uint64_t) ms;
    for (uint64_t now = s_ms (); now < end; now = s_ms ()) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (bus_client_recv (client, &frame, (int) (end - now), &err) != 0) {
            return false;
        }
        bool pending = frame->body_case == BULKHEAD__V1__FRAME__BODY_PENDING;
        bus_client_free (&frame);
        if (pending) {
            return true;
        }
    }
    return false;
}

//  The kill switch takes a suspect's control commands away too: a
//  quarantined approver cannot approve (its stolen key must not release
//  payments) nor read what waits, a quarantined operator cannot reload,
//  quarantine the others or release anyone. Each refusal is logged. After
//  the release it approves again.
static void
test_quarantined_approver_and_operator (void **state)
{
    harness_t *h = *state;
    char *out = NULL;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *payments = harness_agent (h, "payments");
    Bulkhead__V1__Send send = s_payment ();
    Bulkhead__V1__Frame *ack = NULL;
    bus_error_t err;
    assert_int_equal (bus_client_send (planner, &send, &ack, 5000, &err), 0);
    assert_non_null (ack->ack);
    assert_non_null (ack->ack->approval_id);
    char pay [32];
    snprintf (pay, sizeof pay, "%s", ack->ack->approval_id);
    bus_client_free (&ack);

    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "alice", "--reason", "key on a paste site"),
                      0);
    free (out);
    //  Each is refused, with who quarantined it and why.
#define S_REFUSED(who, ...) \
    do { \
        assert_int_not_equal (S_CLI (h, &out, who, __VA_ARGS__), 0); \
        assert_non_null (strstr (out, who " is quarantined (by ops: ")); \
        free (out); \
    } while (0)
    S_REFUSED ("alice", "approve", pay);
    S_REFUSED ("alice", "pending");
    S_REFUSED ("alice", "pending", pay, "--full");
    S_REFUSED ("alice", "grant", "--sender", "planner", "--to", "payments", "--class", "finance",
               "--count", "5");
    assert_null (harness_deliver (payments, 500));

    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "ops2", "--reason", "odd reloads"), 0);
    free (out);
    S_REFUSED ("ops2", "release", "alice");
    S_REFUSED ("ops2", "reload");
    S_REFUSED ("ops2", "quarantine", "ops", "--reason", "revenge");
    S_REFUSED ("ops2", "quarantine", "--list");
#undef S_REFUSED
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "--list"), 0);
    assert_non_null (strstr (out, "alice quarantined since"));
    assert_null (strstr (out, "ops quarantined since"));
    free (out);
    //  Every refusal is a control record with its code.
    assert_int_equal (harness_run (h, &out, "log", "--data", h->data, "--code", "QUARANTINE", NULL), 0);
    assert_non_null (strstr (out, "alice is quarantined"));
    assert_non_null (strstr (out, "ops2 is quarantined"));
    free (out);

    assert_int_equal (S_CLI (h, &out, "ops", "release", "alice"), 0);
    free (out);
    assert_int_equal (S_CLI (h, &out, "alice", "approve", pay), 0);
    free (out);
    Bulkhead__V1__Frame *d = harness_deliver (payments, 5000);
    assert_non_null (d);
    bus_client_free (&d);

    //  Nor is a quarantined approver told of new holds (a Pending notice
    //  carries the payload); released, it is again.
    bus_client_t *alice = harness_agent (h, "alice");
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "alice", "--reason", "again"), 0);
    free (out);
    assert_int_equal (bus_client_send (planner, &send, &ack, 5000, &err), 0);
    assert_non_null (ack->ack->approval_id);
    bus_client_free (&ack);
    assert_false (s_pending_within (alice, 700));
    assert_int_equal (S_CLI (h, &out, "ops", "release", "alice"), 0);
    free (out);
    assert_int_equal (bus_client_send (planner, &send, &ack, 5000, &err), 0);
    bus_client_free (&ack);
    assert_true (s_pending_within (alice, 5000));
    bus_client_destroy (&alice);
    bus_client_destroy (&planner);
    bus_client_destroy (&payments);
    harness_verify (h);
}

//  A quarantined monitor is not sent Alert frames either: `alerts` is
//  refused to it (a control command), and the push is the same read. A
//  suspect monitor must not watch live what the detectors find (about
//  itself, say). Released, it is sent them again. (No CLI connection of
//  watch's here: it would take over the session the frames go to.)
static void
test_quarantined_monitor_not_alerted (void **state)
{
    harness_t *h = *state;
    char *out = NULL;
    bus_client_t *watch = harness_agent (h, "watch");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *worker = harness_agent (h, "worker");
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "watch", "--reason", "odd reads"), 0);
    free (out);
    //  No answer within reply_within = 2 s: a result alert, not told to watch.
    Bulkhead__V1__Frame *ack = s_send (planner, "worker", "please summarise", 0);
    assert_string_equal (s_code (ack), "OK");
    bus_client_free (&ack);
    Bulkhead__V1__Frame *alert = s_alert (watch, "result", 4500);
    if (alert) {
        bus_client_free (&alert);
        fail_msg ("a quarantined monitor was sent an Alert frame");
    }
    assert_int_equal (S_CLI (h, &out, "ops", "alerts"), 0);
    assert_non_null (strstr (out, "result"));
    const char *at = strstr (out, "a-");
    assert_non_null (at);
    char id [40];
    snprintf (id, sizeof id, "%.*s", (int) strcspn (at, " \t\n"), at);
    free (out);
    assert_int_equal (S_CLI (h, &out, "ops", "release", "watch"), 0);
    free (out);
    //  Released: the next change of that alert (acknowledged) reaches it.
    assert_int_equal (S_CLI (h, &out, "ops", "alerts", "--ack", id), 0);
    free (out);
    alert = s_alert (watch, "result", 6000);
    assert_non_null (alert);
    bus_client_free (&alert);
    bus_client_destroy (&planner);
    bus_client_destroy (&worker);
    bus_client_destroy (&watch);
    harness_verify (h);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_loop_caught_and_quarantined, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_and_denied_result, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quarantine_survives_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quarantine_then_approvers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_quarantined_approver_and_operator, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_quarantined_monitor_not_alerted, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
