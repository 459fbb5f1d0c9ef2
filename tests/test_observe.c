/*  test_observe.c: observers see each committed outcome once, after the
    commit, with its sequence (issue "One decision path", finding 5: the
    observers were called before the core overrode the verdict).

    The bus runs in-process with the shipped stages plus a recording
    observer at the end of the chain (bus_server_options_t.stages), over
    real CURVE sockets and a real LMDB log. A delivered, a denied and a
    held message are each seen once, with the sequence their ACK names; the
    held one is seen again when its approval releases it.
*/
#include "check.h"
#include "harness.h"
#include "bus_server.h"
#include "med_chain.h"

#include <pthread.h>
#include <stdlib.h>

#define SEEN_MAX 64

typedef struct {
    uint64_t seq;
    med_verdict_t verdict;
    bool hold_closed;
    char sender [65];
    char recipient [65];
    char stage [32];
    bus_code_t code;
} seen_t;

//  Written by the bus thread, read by the test after the loop stopped.
static seen_t s_seen [SEEN_MAX];
static size_t s_seen_count;
static size_t s_decided;                //  messages the recorder's decide saw

static med_verdict_t
s_record_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    (void) env;
    (void) err;
    s_decided++;
    return MED_PASS;
}

static void
s_record_observe (void *state, const med_event_t *event)
{
    (void) state;
    if (s_seen_count < SEEN_MAX) {
        seen_t *seen = &s_seen [s_seen_count++];
        seen->seq = event->seq;
        seen->verdict = event->verdict;
        seen->hold_closed = event->hold_closed;
        seen->code = event->code;
        snprintf (seen->sender, sizeof seen->sender, "%s", event->sender);
        snprintf (seen->recipient, sizeof seen->recipient, "%s", event->recipient);
        snprintf (seen->stage, sizeof seen->stage, "%s", event->stage);
    }
}

static const med_stage_t s_recorder = {
    .name = "recorder",
    .decide = s_record_decide,
    .observe = s_record_observe,
};

static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        approvers = alice\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    writer\n        key = @writer@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n"
    "        payments = finance\n";

static uint64_t
s_send (bus_client_t *client, const char *to, const char *intent, const char *id,
        const char *verdict, char *approval)
{
    Bulkhead__V1__Frame *reply = harness_send (client, to, intent, "x", id);
    assert_non_null (reply);
    assert_string_equal (harness_code (reply), verdict);
    uint64_t seq = reply->ack->seq;
    if (approval) {
        snprintf (approval, 32, "%s", reply->ack->approval_id);
    }
    bus_client_free (&reply);
    return seq;
}

static void *
s_loop (void *arg)
{
    bus_server_loop (arg);
    return NULL;
}

static void
test_observers_see_committed_outcomes_once (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    assert_int_equal (harness_policy (&h, s_policy), 0);
    //  The shipped stages, then the recorder.
    const med_stage_t *stages [MED_CHAIN_MAX];
    size_t n = 0;
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        stages [n++] = *stage;
    }
    stages [n++] = &s_recorder;
    stages [n] = NULL;
    bus_server_options_t options = {
        .policy_path = h.policy, .data_dir = h.data, .endpoint = h.endpoint,
        .ready_fd = -1, .quiet = 1, .stages = stages,
    };
    bus_server_t *server;
    bus_error_t err;
    CHECK_PASS (bus_server_open (&server, &options, &err), err);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_loop, server), 0);

    bus_client_t *planner = harness_agent (&h, "planner");
    bus_client_t *alice = harness_agent (&h, "alice");
    uint64_t delivered = s_send (planner, "writer", "message", "m-1", "queued", NULL);
    uint64_t denied = s_send (planner, "alice", "message", "m-2", "denied", NULL);
    char approval [32];
    uint64_t held = s_send (planner, "payments", "finance", "m-3", "held", approval);

    //  Approve what alice reads.
    Bulkhead__V1__Control list = BULKHEAD__V1__CONTROL__INIT;
    list.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    Bulkhead__V1__Frame *reply;
    CHECK_PASS (bus_client_control (alice, &list, &reply, 5000, &err), err);
    assert_int_equal (reply->control_reply->n_pending, 1);
    uint8_t digest [32];
    memcpy (digest, reply->control_reply->pending [0]->digest.data, 32);
    bus_client_free (&reply);
    Bulkhead__V1__Control approve = BULKHEAD__V1__CONTROL__INIT;
    approve.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    approve.id = approval;
    approve.has_digest = true;
    approve.digest.data = digest;
    approve.digest.len = 32;
    CHECK_PASS (bus_client_control (alice, &approve, &reply, 5000, &err), err);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);

    bus_client_destroy (&planner);
    bus_client_destroy (&alice);
    bus_server_stop (server);
    pthread_join (thread, NULL);
    bus_server_destroy (&server);

    //  The recorder, last in the chain, decided only what passed every stage
    //  before it: the delivered message and the release (the denied one
    //  stopped at reach, the held one at hold). It observed four outcomes,
    //  in order.
    assert_int_equal (s_decided, 2);
    assert_int_equal (s_seen_count, 4);
    assert_int_equal (s_seen [0].seq, delivered);
    CHECK_VERDICT (s_seen [0].verdict, MED_PASS);
    assert_false (s_seen [0].hold_closed);
    assert_string_equal (s_seen [0].recipient, "writer");
    assert_int_equal (s_seen [1].seq, denied);
    CHECK_VERDICT (s_seen [1].verdict, MED_REJECT);
    assert_string_equal (s_seen [1].stage, "reach");
    assert_int_equal (s_seen [1].code, BUS_EDENIED);
    assert_int_equal (s_seen [2].seq, held);
    CHECK_VERDICT (s_seen [2].verdict, MED_HOLD);
    assert_false (s_seen [2].hold_closed);
    assert_string_equal (s_seen [2].stage, "hold");
    //  The release: a record of its own, after the held one.
    assert_true (s_seen [3].seq > held);
    CHECK_VERDICT (s_seen [3].verdict, MED_PASS);
    assert_true (s_seen [3].hold_closed);
    assert_string_equal (s_seen [3].sender, "planner");
    assert_string_equal (s_seen [3].recipient, "payments");
    harness_verify (&h);
    assert_int_equal (harness_cleanup (&h), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_observers_see_committed_outcomes_once),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
