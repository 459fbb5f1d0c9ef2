/*  e2e_hostile.c: one compromised agent hurts only itself (issue "A
    hostile agent hurts only itself", findings 1-7), over real sockets
    against the real bus. Each test failed on the code before; the last one
    floods with every trick at once while an innocent pair keeps
    round-tripping, and prints the pair's latency with and without it.
*/
#include "check.h"
#include "harness.h"
#include "bus_keys.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char *s_policy =
    "bus\n"
    "    connections = 4\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    writer\n        key = @writer@\n        max_backlog = 10\n"
    "    inbox\n        key = @inbox@\n        max_backlog = 4\n"
    "    mallory\n        key = @mallory@\n        rate = 1\n"
    "edges\n"
    "    planner\n        writer = message\n        inbox = message\n"
    "    mallory\n        writer = message\n        inbox = message\n";

//  A key file for "stranger", a key the policy does not name.
static void
s_stranger (harness_t *h)
{
    char secret [512], public [512];
    snprintf (secret, sizeof secret, "%s/stranger.key", h->dir);
    snprintf (public, sizeof public, "%s/stranger.pub", h->dir);
    bus_keypair_t pair;
    bus_error_t err;
    if (access (secret, F_OK) != 0) {
        CHECK_PASS (bus_keys_generate (&pair, "stranger", &err), err);
        CHECK_PASS (bus_keys_save (&pair, secret, public, &err), err);
    }
}

static int
s_setup (void **state)
{
    int rc = harness_fixture (state, s_policy);
    if (rc == 0) {
        s_stranger (*state);
    }
    return rc;
}

static int
s_teardown (void **state)
{
    return harness_fixture_end (state);
}

static Bulkhead__V1__Frame *
s_send (bus_client_t *client, const char *to, const char *id, size_t size, uint64_t cause)
{
    char *payload = malloc (size + 1);
    memset (payload, 'x', size);
    payload [size] = 0;
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = "message";
    send.message_id = (char *) id;
    send.has_payload = true;
    send.payload.data = (uint8_t *) payload;
    send.payload.len = size;
    if (cause) {
        send.n_causes = 1;
        send.causes = &cause;
    }
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    bus_client_send (client, &send, &reply, 5000, &err);
    free (payload);
    return reply;
}

//  Records of the log whose text contains needle.
static int
s_log_count (harness_t *h, const char *needle)
{
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, NULL);
    int count = 0;
    for (char *at = out? strstr (out, needle): NULL; at; at = strstr (at + 1, needle)) {
        count++;
    }
    free (out);
    return count;
}

//  Finding 1: refused frames were stored with their payload, so one agent
//  with rate = 1 filled the log and the next innocent message got LOGFULL.
static void
test_refusals_cannot_fill_the_log (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    h.extra [0] = "--map-max";
    h.extra [1] = "8388608";
    assert_int_equal (harness_policy (&h, s_policy), 0);
    assert_int_equal (harness_start (&h), 0);
    bus_client_t *mallory = harness_agent (&h, "mallory");
    bus_client_t *planner = harness_agent (&h, "planner");
    int refused = 0;
    for (int i = 0; i < 300; i++) {
        char id [32];
        snprintf (id, sizeof id, "flood-%d", i);
        Bulkhead__V1__Frame *reply = s_send (mallory, "writer", id, 60000, 0);
        if (reply && strcmp (harness_code (reply), "denied") == 0) {
            refused++;
        }
        bus_client_free (&reply);
    }
    assert_true (refused > 250);
    //  The innocent message still goes.
    Bulkhead__V1__Frame *reply = s_send (planner, "writer", "innocent", 256, 0);
    assert_non_null (reply);
    if (reply->body_case != BULKHEAD__V1__FRAME__BODY_ACK) {
        fail_msg ("after mallory's flood, planner got %s: %s", harness_code (reply),
                  reply->error->reason);
    }
    assert_string_equal (reply->ack->code, "OK");
    bus_client_free (&reply);
    bus_client_destroy (&mallory);
    bus_client_destroy (&planner);
    //  Counted, not stored: a handful of records say so.
    int merged = s_log_count (&h, "RATE");
    if (merged > 20) {
        fail_msg ("%d log lines for mallory's RATE refusals (they should be merged)", merged);
    }
    harness_verify (&h);
    assert_int_equal (harness_cleanup (&h), 0);
}

//  Finding 2: any agent could name any sequence as a cause, and learn
//  whether that record is restricted.
static void
test_foreign_cause_denied (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *mallory = harness_agent (h, "mallory");
    Bulkhead__V1__Frame *reply = s_send (planner, "writer", "private", 10, 0);
    uint64_t seq = reply->ack->seq;
    bus_client_free (&reply);
    reply = s_send (mallory, "writer", "probe", 10, seq);
    assert_non_null (reply);
    if (strcmp (harness_code (reply), "denied") != 0) {
        fail_msg ("mallory named planner's message %llu as a cause: %s %s",
                  (unsigned long long) seq, harness_code (reply), reply->ack->reason);
    }
    assert_string_equal (reply->ack->code, "CAUSE");
    bus_client_free (&reply);
    bus_client_destroy (&planner);
    bus_client_destroy (&mallory);
}

//  Finding 3: a HELLO again made the bus queue the whole window again.
static void
test_hello_again_resends_nothing (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    for (int i = 0; i < 5; i++) {
        char id [16];
        snprintf (id, sizeof id, "w-%d", i);
        Bulkhead__V1__Frame *reply = s_send (planner, "writer", id, 100, 0);
        bus_client_free (&reply);
    }
    void *ctx = zmq_ctx_new ();
    void *writer = harness_raw (h, ctx, "writer", NULL);
    int delivers = 0;
    for (int round = 0; round < 4; round++) {
        assert_int_equal (harness_raw_hello (writer), 0);
        Bulkhead__V1__Frame *frame;
        while ((frame = harness_raw_recv (writer, 300))) {
            delivers += frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER;
            bulkhead__v1__frame__free_unpacked (frame, NULL);
        }
    }
    if (delivers != 5) {
        fail_msg ("5 messages, 4 HELLOs on one connection: %d DELIVERs", delivers);
    }
    zmq_close (writer);
    zmq_ctx_term (ctx);
    bus_client_destroy (&planner);
}

//  Finding 4: a frame far over the limit was dropped by libzmq with no
//  Error and no record.
static void
test_giant_frame_is_visible (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    void *mallory = harness_raw (h, ctx, "mallory", NULL);
    assert_int_equal (harness_raw_hello (mallory), 0);
    Bulkhead__V1__Frame *welcome = harness_raw_recv (mallory, 5000);
    assert_non_null (welcome);
    bulkhead__v1__frame__free_unpacked (welcome, NULL);
    //  A little over max_frame: refused with a reason.
    size_t size = 65536 + 1000;
    uint8_t *big = calloc (1, 17u << 20);
    assert_int_equal (zmq_send (mallory, big, size, 0), (int) size);
    Bulkhead__V1__Frame *reply = harness_raw_recv (mallory, 5000);
    assert_non_null (reply);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_ERROR);
    assert_string_equal (reply->error->code, "TOOBIG");
    bulkhead__v1__frame__free_unpacked (reply, NULL);
    //  Far over: libzmq closes the connection; the bus logs it.
    zmq_send (mallory, big, 17u << 20, 0);
    free (big);
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    int found = 0;
    for (int i = 0; i < 30 && !found; i++) {
        nanosleep (&tick, NULL);
        char *out = NULL;
        harness_run (h, &out, "log", "--data", h->data, "--kind", "session", "--agent", "mallory",
                     NULL);
        found = out && strstr (out, "disconnected");
        free (out);
    }
    if (!found) {
        fail_msg ("a 17 MiB frame closed mallory's connection and the log does not say so");
    }
    zmq_close (mallory);
    zmq_ctx_term (ctx);
}

//  Finding 5: one sender filled a recipient's whole mailbox and every other
//  sender got BACKLOG.
static void
test_one_sender_cannot_starve_a_recipient (void **state)
{
    harness_t *h = *state;
    bus_client_t *mallory = harness_agent (h, "mallory");
    bus_client_t *planner = harness_agent (h, "planner");
    //  inbox holds 4; mallory (rate = 1) fills what it may.
    int queued = 0;
    for (int i = 0; i < 4; i++) {
        char id [16];
        snprintf (id, sizeof id, "m-%d", i);
        Bulkhead__V1__Frame *reply = s_send (mallory, "inbox", id, 10, 0);
        queued += reply && strcmp (harness_code (reply), "queued") == 0;
        bus_client_free (&reply);
        struct timespec tick = { 1, 50 * 1000 * 1000 };     //  rate = 1
        nanosleep (&tick, NULL);
    }
    assert_int_equal (queued, 2);       //  its share: 50% of 4
    Bulkhead__V1__Frame *reply = s_send (planner, "inbox", "p-1", 10, 0);
    assert_non_null (reply);
    if (strcmp (harness_code (reply), "queued") != 0) {
        fail_msg ("planner got %s %s after mallory queued %d", harness_code (reply),
                  reply->ack->reason, queued);
    }
    bus_client_free (&reply);
    bus_client_destroy (&mallory);
    bus_client_destroy (&planner);
}

//  Finding 6: every refused handshake was a synced record of its own.
static void
test_refused_handshakes_are_counted (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    for (int i = 0; i < 40; i++) {
        void *stranger = harness_raw (h, ctx, "stranger", NULL);
        harness_raw_hello (stranger);
        Bulkhead__V1__Frame *frame = harness_raw_recv (stranger, 50);
        if (frame) {
            bulkhead__v1__frame__free_unpacked (frame, NULL);
        }
        zmq_close (stranger);
    }
    zmq_ctx_term (ctx);
    int records = s_log_count (h, "handshake refused");
    if (records > 10) {
        fail_msg ("40 refused handshakes left %d records", records);
    }
}

//  Finding 7: one key could open as many connections as it liked.
static void
test_connections_per_key_capped (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    void *conns [6];
    int refused = 0;
    for (int i = 0; i < 6; i++) {
        conns [i] = harness_raw (h, ctx, "mallory", NULL);
        harness_raw_hello (conns [i]);
        Bulkhead__V1__Frame *frame = harness_raw_recv (conns [i], 2000);
        if (frame && frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
            CHECK_CONTAINS (frame->error->reason, "connections");
            refused++;
        }
        if (frame) {
            bulkhead__v1__frame__free_unpacked (frame, NULL);
        }
    }
    for (int i = 0; i < 6; i++) {
        zmq_close (conns [i]);
    }
    zmq_ctx_term (ctx);
    assert_int_equal (refused, 2);      //  bus.connections = 4
}

//  ---------------------------------------------------------------------
//  Everything at once (but the unfinished multipart message, which
//  libzmq cannot bound) while an innocent pair round-trips.

typedef struct {
    harness_t *h;
    volatile int stop;
    uint64_t frames;
} flood_t;

static void *
s_flood (void *arg)
{
    flood_t *flood = arg;
    void *ctx = zmq_ctx_new ();
    void *conns [4];
    for (int i = 0; i < 4; i++) {
        conns [i] = harness_raw (flood->h, ctx, "mallory", NULL);
        harness_raw_hello (conns [i]);
    }
    uint8_t *junk = malloc (100000);
    memset (junk, 0xa5, 100000);
    char *payload = malloc (60001);
    memset (payload, 'f', 60000);
    payload [60000] = 0;
    uint64_t cause = 1;
    for (uint64_t n = 0; !flood->stop; n++) {
        void *conn = conns [n % 4];
        switch (n % 5) {
            case 0:                     //  malformed
                zmq_send (conn, junk, 100, ZMQ_DONTWAIT);
                break;
            case 1:                     //  over max_frame
                zmq_send (conn, junk, 100000, ZMQ_DONTWAIT);
                break;
            case 2: {                   //  a foreign cause, a big payload
                Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
                char id [32];
                snprintf (id, sizeof id, "f-%llu", (unsigned long long) n);
                send.message_id = id;
                send.recipient = "writer";
                send.intent = "message";
                send.has_payload = true;
                send.payload.data = (uint8_t *) payload;
                send.payload.len = 60000;
                send.n_causes = 1;
                send.causes = &cause;
                Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
                frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
                frame.send = &send;
                harness_raw_send (conn, &frame);
                break;
            }
            case 3:                     //  HELLO again
                harness_raw_hello (conn);
                break;
            default:                    //  a resent id
                zmq_send (conn, junk, 10, ZMQ_DONTWAIT);
                break;
        }
        if (n % 200 == 0) {
            //  An unauthenticated peer now and then (handshakes cost CPU).
            void *stranger = harness_raw (flood->h, ctx, "stranger", NULL);
            zmq_close (stranger);
        }
        //  Read and drop what comes back, so nothing stalls on our side.
        for (int i = 0; i < 4; i++) {
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            while (zmq_msg_recv (&msg, conns [i], ZMQ_DONTWAIT) >= 0) {
            }
            zmq_msg_close (&msg);
        }
        flood->frames++;
        //  About 5,000 frames a second: well over mallory's budget (2,000),
        //  and what one process can keep up on a 2-core machine without
        //  starving the machine itself, which would measure the machine,
        //  not the bus.
        struct timespec pace = { 0, 200 * 1000 };
        nanosleep (&pace, NULL);
    }
    for (int i = 0; i < 4; i++) {
        zmq_close (conns [i]);
    }
    free (junk);
    free (payload);
    zmq_ctx_term (ctx);
    return NULL;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int
s_by_value (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

//  N round trips planner -> writer of 256 B at 100 per second; p50, p99.
static void
s_round_trips (bus_client_t *planner, bus_client_t *writer, const char *tag, int n,
               uint64_t *p50, uint64_t *p99)
{
    uint64_t *lat = calloc ((size_t) n, sizeof *lat);
    for (int i = 0; i < n; i++) {
        char id [32];
        snprintf (id, sizeof id, "%s-%d", tag, i);
        uint64_t start = s_now_us ();
        Bulkhead__V1__Frame *reply = s_send (planner, "writer", id, 256, 0);
        assert_non_null (reply);
        assert_string_equal (harness_code (reply), "delivered");
        bus_client_free (&reply);
        Bulkhead__V1__Frame *d = harness_deliver (writer, 5000);
        assert_non_null (d);
        bus_error_t err;
        bus_client_ack (writer, d->deliver->seq, &err);
        bus_client_free (&d);
        lat [i] = s_now_us () - start;
        uint64_t next = start + 10000;
        uint64_t now = s_now_us ();
        if (now < next) {
            struct timespec pause = { 0, (long) (next - now) * 1000 };
            nanosleep (&pause, NULL);
        }
    }
    qsort (lat, (size_t) n, sizeof *lat, s_by_value);
    *p50 = lat [n / 2];
    *p99 = lat [n * 99 / 100];
    free (lat);
}

static void
test_flood_everything_innocent_pair_unhurt (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    uint64_t quiet50, quiet99, flood50, flood99;
    s_round_trips (planner, writer, "quiet", 200, &quiet50, &quiet99);
    flood_t flood = { .h = h };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_flood, &flood), 0);
    s_round_trips (planner, writer, "flood", 200, &flood50, &flood99);
    flood.stop = 1;
    pthread_join (thread, NULL);
    print_message ("innocent pair, 256 B at 100/s: quiet p50 %llu us p99 %llu us; "
                   "under flood (%llu frames) p50 %llu us p99 %llu us\n",
                   (unsigned long long) quiet50, (unsigned long long) quiet99,
                   (unsigned long long) flood.frames, (unsigned long long) flood50,
                   (unsigned long long) flood99);
    //  Quiet p99 is one synced commit, a millisecond or two; on a shared
    //  2-core machine the scheduler alone adds tails of that order under
    //  any load, so the quiet figure is floored at 5 ms: the bound is then
    //  10x the larger of the two (50 ms at least).
    uint64_t bound = 10 * (quiet99 > 5000? quiet99: 5000);
    if (flood99 >= bound) {
        fail_msg ("p99 under flood %llu us is over 10x the quiet p99 (%llu us)",
                  (unsigned long long) flood99, (unsigned long long) quiet99);
    }
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
    harness_verify (h);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_refusals_cannot_fill_the_log),
        cmocka_unit_test_setup_teardown (test_foreign_cause_denied, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hello_again_resends_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_giant_frame_is_visible, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_one_sender_cannot_starve_a_recipient, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_refused_handshakes_are_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_connections_per_key_capped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_flood_everything_innocent_pair_unhurt, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
