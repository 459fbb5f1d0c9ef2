/*  e2e_identity.c: a connection is a (key, routing id) pair the bus has
    seen authenticate (issue "Identity and approval integrity", findings
    1-3), over real sockets against the real bus.

    1. A reload that rotates a key takes the old key's live connection
       offline at once: no DELIVER, no Pending notice reaches it.
    2. Two live connections of one key: acknowledgements from either count;
       nothing is delivered a third time.
    3. A peer that squats an agent's fixed routing id after the agent left
       receives nothing of the agent's.
*/
#include "check.h"
#include "harness.h"
#include "bus_keys.h"
#include "bus_wire.h"

#include <stdlib.h>
#include <time.h>
#include <zmq.h>

static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        approvers = alice\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    writer\n        key = @writer@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "    mallory\n        key = @mallory@\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n"
    "        payments = finance\n"
    "    writer\n"
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

//  Connects as `agent` with the key file of `key_name`.
static bus_client_t *
s_connect_with (harness_t *h, const char *key_name)
{
    char key [512];
    snprintf (key, sizeof key, "%s/%s.key", h->dir, key_name);
    bus_client_options_t options = {
        .endpoint = h->endpoint, .bus_key = h->bus_pub, .key_file = key, .timeout_ms = 5000,
    };
    bus_client_t *client = NULL;
    bus_error_t err;
    if (bus_client_connect (&client, &options, &err) != 0) {
        fail_msg ("connect with %s: %s: %s", key_name, bus_errname (err.code), err.text);
    }
    return client;
}

//  Nothing at all arrives on client within timeout_ms.
static void
s_nothing (bus_client_t *client, int timeout_ms, const char *why)
{
    Bulkhead__V1__Frame *frame = NULL;
    bus_error_t err;
    if (bus_client_recv (client, &frame, timeout_ms, &err) == 0) {
        fail_msg ("%s, but a %s frame arrived", why, bus_wire_body_name (frame));
    }
}

static void
test_rotated_key_gets_nothing (void **state)
{
    harness_t *h = *state;
    bus_client_t *old_planner = harness_agent (h, "planner");
    bus_client_t *old_alice = harness_agent (h, "alice");
    bus_client_t *writer = harness_agent (h, "writer");
    bus_client_t *ops = harness_agent (h, "ops");
    //  Rotate planner's and alice's keys: new key files, same names.
    char *policy = strdup (s_policy);
    char *at = strstr (policy, "@planner@");
    memcpy (at, "@planne2@", 9);
    at = strstr (policy, "@alice@");
    memcpy (at, "@alic2@", 7);
    assert_int_equal (harness_policy (h, policy), 0);
    free (policy);
    Bulkhead__V1__Frame *reply = harness_reload (ops);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);

    //  A message for planner and a hold for alice: neither reaches the old keys.
    reply = harness_send (writer, "planner", "message", "for planner", "w-1");
    assert_string_equal (harness_code (reply), "queued");
    bus_client_free (&reply);
    bus_client_t *new_planner = s_connect_with (h, "planne2");
    assert_string_equal (bus_client_agent (new_planner), "planner");
    reply = harness_send (new_planner, "payments", "finance", "amount=1", "p-1");
    assert_string_equal (harness_code (reply), "held");
    bus_client_free (&reply);
    s_nothing (old_planner, 500, "planner's key was rotated");
    s_nothing (old_alice, 300, "alice's key was rotated");
    //  The new key gets what waits for planner.
    Bulkhead__V1__Frame *d = harness_deliver (new_planner, 2000);
    assert_non_null (d);
    assert_string_equal (d->deliver->message_id, "w-1");
    bus_client_free (&d);
    bus_client_destroy (&new_planner);
    bus_client_destroy (&old_planner);
    bus_client_destroy (&old_alice);
    bus_client_destroy (&writer);
    bus_client_destroy (&ops);
    harness_verify (h);
}

static void
test_two_connections_of_one_key_lose_no_ack (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *first = harness_agent (h, "writer");
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", "one", "m-1");
    assert_string_equal (harness_code (reply), "delivered");
    uint64_t seq = reply->ack->seq;
    bus_client_free (&reply);
    Bulkhead__V1__Frame *d = harness_deliver (first, 2000);
    assert_non_null (d);
    assert_int_equal (d->deliver->seq, seq);
    bus_client_free (&d);
    //  A second connection of writer's key says HELLO: deliveries go there.
    bus_client_t *second = harness_agent (h, "writer");
    d = harness_deliver (second, 2000);
    assert_non_null (d);                    //  not acknowledged yet: sent again
    bus_client_free (&d);
    //  The first connection acknowledges: that counts.
    bus_error_t err;
    CHECK_PASS (bus_client_ack (first, seq, &err), err);
    //  A ping on the first connection is answered only after the ack was
    //  handled; then a third connection gets nothing more.
    Bulkhead__V1__Frame *frame = NULL;
    bus_client_recv (first, &frame, 300, &err);
    bus_client_free (&frame);
    bus_client_destroy (&first);
    bus_client_destroy (&second);
    bus_client_t *third = harness_agent (h, "writer");
    assert_null (harness_deliver (third, 500));
    bus_client_destroy (&third);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "delivery-ack", NULL);
    char want [64];
    snprintf (want, sizeof want, "ref=%llu", (unsigned long long) seq);
    CHECK_CONTAINS (out, want);
    free (out);
    bus_client_destroy (&planner);
}

static void
test_squatted_routing_id_gets_nothing (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    //  writer with a fixed routing id says HELLO, then goes.
    void *writer = harness_raw (h, ctx, "writer", "FIXED-ID");
    assert_int_equal (harness_raw_hello (writer), 0);
    Bulkhead__V1__Frame *welcome = harness_raw_recv (writer, 5000);
    assert_non_null (welcome);
    assert_int_equal (welcome->body_case, BULKHEAD__V1__FRAME__BODY_WELCOME);
    bulkhead__v1__frame__free_unpacked (welcome, NULL);
    zmq_close (writer);
    //  mallory takes the same routing id and says nothing.
    void *squatter = harness_raw (h, ctx, "mallory", "FIXED-ID");
    //  Give the bus time to see the close and the new connection.
    struct timespec tick = { 0, 300 * 1000 * 1000 };
    nanosleep (&tick, NULL);
    bus_client_t *planner = harness_agent (h, "planner");
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", "secret plan", "s-1");
    assert_non_null (reply);
    //  writer is gone: its message waits in the mailbox.
    assert_string_equal (harness_code (reply), "queued");
    bus_client_free (&reply);
    Bulkhead__V1__Frame *stolen = harness_raw_recv (squatter, 500);
    if (stolen) {
        fail_msg ("the squatter received a %s frame meant for writer",
                  bus_wire_body_name (stolen));
    }
    zmq_close (squatter);
    zmq_ctx_term (ctx);
    //  writer, back with an id of its own (as every shipped client does),
    //  gets it.
    bus_client_t *back = harness_agent (h, "writer");
    Bulkhead__V1__Frame *d = harness_deliver (back, 2000);
    assert_non_null (d);
    assert_string_equal (d->deliver->message_id, "s-1");
    bus_client_free (&d);
    bus_client_destroy (&back);
    bus_client_destroy (&planner);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_rotated_key_gets_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_two_connections_of_one_key_lose_no_ack, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_squatted_routing_id_gets_nothing, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
