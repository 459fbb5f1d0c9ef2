/*  e2e_bundle.c: several ACKs and DELIVERs in one frame, over real sockets.

    A connection whose HELLO offers `bundle` gets what one flush has for it
    as Bundle frames of at most that many bytes, in the order they would
    have come one by one; a connection that does not offer it (an old
    client, the Python agent) never sees one. Checked with raw DEALERs,
    which see the frames as they come, and through the C client library,
    which hands the frames of a bundle out one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_session.h"
#include "bus_wire.h"
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const char *s_policy =
    "bus\n"
    "    frames = 100000\n"
    "agents\n"
    "    planner\n"
    "        key = @planner@\n"
    "    writer\n"
    "        key = @writer@\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  HELLO on a raw dealer, offering bundles of offer bytes (0: no offer),
//  and its WELCOME read.
static void
s_hello (void *dealer, uint32_t offer)
{
    Bulkhead__V1__Hello hello = BULKHEAD__V1__HELLO__INIT;
    hello.version = 1;
    hello.has_bundle = offer > 0;
    hello.bundle = offer;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HELLO;
    frame.hello = &hello;
    assert_int_equal (harness_raw_send (dealer, &frame), 0);
    Bulkhead__V1__Frame *welcome = harness_raw_recv (dealer, 5000);
    assert_non_null (welcome);
    assert_int_equal (welcome->body_case, BULKHEAD__V1__FRAME__BODY_WELCOME);
    bulkhead__v1__frame__free_unpacked (welcome, NULL);
}

//  count Sends of payload bytes from planner to writer, in one burst.
static void
s_burst (void *dealer, const char *prefix, int count, size_t payload)
{
    uint8_t *bytes = calloc (1, payload);
    assert_non_null (bytes);
    for (int i = 0; i < count; i++) {
        char id [64];
        snprintf (id, sizeof id, "%s-%04d", prefix, i);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.message_id = id;
        send.recipient = "writer";
        send.intent = "message";
        send.has_payload = true;
        send.payload = (ProtobufCBinaryData) { payload, bytes };
        Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
        frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
        frame.send = &send;
        assert_int_equal (harness_raw_send (dealer, &frame), 0);
    }
    free (bytes);
}

//  What came on a raw dealer: frames in order, bundles opened.
typedef struct {
    int frames;                         //  ZeroMQ frames
    int bundles;                        //  of them Bundles
    size_t biggest;                     //  the biggest ZeroMQ frame's bytes
    size_t most;                        //  the most frames in one bundle
    int acks;
    int delivers;
    char bad [160];                     //  the first thing out of order, if any
} seen_t;

static void
s_note (seen_t *seen, const Bulkhead__V1__Frame *frame, const char *prefix, uint64_t *last_seq)
{
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        char want [64];
        snprintf (want, sizeof want, "%s-%04d", prefix, seen->acks);
        if (!seen->bad [0] && strcmp (frame->ack->message_id, want) != 0) {
            snprintf (seen->bad, sizeof seen->bad, "ACK %s where %s was next",
                      frame->ack->message_id, want);
        }
        seen->acks++;
    }
    else
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER) {
        if (!seen->bad [0] && frame->deliver->seq <= *last_seq) {
            snprintf (seen->bad, sizeof seen->bad, "DELIVER %llu after %llu",
                      (unsigned long long) frame->deliver->seq, (unsigned long long) *last_seq);
        }
        *last_seq = frame->deliver->seq;
        seen->delivers++;
    }
}

//  Reads a raw dealer until want ACKs and DELIVERs came, or 10 s. A
//  DeliveryAck now and then keeps the window open.
static seen_t
s_read (void *dealer, const char *prefix, int want)
{
    seen_t seen = { 0 };
    uint64_t last_seq = 0;
    uint64_t acked = 0;
    for (int spins = 0; seen.acks + seen.delivers < want && spins < 100; ) {
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) <= 0) {
            spins++;
            continue;
        }
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        assert_true (zmq_msg_recv (&msg, dealer, 0) >= 0);
        seen.frames++;
        seen.biggest = zmq_msg_size (&msg) > seen.biggest? zmq_msg_size (&msg): seen.biggest;
        Bulkhead__V1__Frame *frame = bulkhead__v1__frame__unpack (NULL, zmq_msg_size (&msg),
                                                                  zmq_msg_data (&msg));
        zmq_msg_close (&msg);
        assert_non_null (frame);
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_BUNDLE) {
            seen.bundles++;
            Bulkhead__V1__Bundle *bundle = frame->bundle;
            assert_true (bundle->n_frames > 1);     //  one frame goes alone
            seen.most = bundle->n_frames > seen.most? bundle->n_frames: seen.most;
            for (size_t i = 0; i < bundle->n_frames; i++) {
                Bulkhead__V1__Frame *member = bulkhead__v1__frame__unpack (
                    NULL, bundle->frames [i].len, bundle->frames [i].data);
                assert_non_null (member);
                assert_int_not_equal (member->body_case, BULKHEAD__V1__FRAME__BODY_BUNDLE);
                s_note (&seen, member, prefix, &last_seq);
                bulkhead__v1__frame__free_unpacked (member, NULL);
            }
        }
        else {
            s_note (&seen, frame, prefix, &last_seq);
        }
        bulkhead__v1__frame__free_unpacked (frame, NULL);
        if (last_seq > acked && (seen.delivers % 100 == 0 || seen.acks + seen.delivers >= want)) {
            Bulkhead__V1__DeliveryAck ack = BULKHEAD__V1__DELIVERY_ACK__INIT;
            ack.up_to = last_seq;
            Bulkhead__V1__Frame out = BULKHEAD__V1__FRAME__INIT;
            out.body_case = BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK;
            out.delivery_ack = &ack;
            assert_int_equal (harness_raw_send (dealer, &out), 0);
            acked = last_seq;
        }
    }
    return seen;
}

//  A burst of count Sends (payload bytes) from planner, whose HELLO offers
//  planner_offer, to writer, offering writer_offer; what each side saw.
//  Every ACK and DELIVER must come once, in order.
static void
s_burst_seen (harness_t *h, uint32_t planner_offer, uint32_t writer_offer, const char *prefix,
              int count, size_t payload, seen_t *acks, seen_t *delivers)
{
    void *ctx = zmq_ctx_new ();
    void *planner = harness_raw (h, ctx, "planner", NULL);
    void *writer = harness_raw (h, ctx, "writer", NULL);
    s_hello (planner, planner_offer);
    s_hello (writer, writer_offer);
    s_burst (planner, prefix, count, payload);
    *acks = s_read (planner, prefix, count);
    *delivers = s_read (writer, prefix, count);
    zmq_close (planner);
    zmq_close (writer);
    zmq_ctx_term (ctx);
    assert_string_equal (acks->bad, "");
    assert_string_equal (delivers->bad, "");
    assert_int_equal (acks->acks, count);
    assert_int_equal (delivers->delivers, count);
}

//  A connection that does not offer bundles gets one frame per ACK and
//  per DELIVER, as before bundles: old clients keep working.
static void
test_no_offer_no_bundles (void **state)
{
    seen_t acks, delivers;
    s_burst_seen (*state, 0, 0, "plain", 300, 100, &acks, &delivers);
    assert_int_equal (acks.bundles + delivers.bundles, 0);
    assert_int_equal (acks.frames, 300);
    assert_int_equal (delivers.frames, 300);
}

//  Offered, a burst's ACKs and DELIVERs come in bundles, each at most the
//  offered bytes (a bundle's ACKs at most BUS_BUNDLE_REPLIES of them).
static void
test_offer_bundles_in_order (void **state)
{
    seen_t acks, delivers;
    s_burst_seen (*state, 64 << 10, 4000, "burst", 600, 300, &acks, &delivers);
    if (acks.bundles == 0 || delivers.bundles == 0 || acks.frames >= 300 || delivers.frames >= 300) {
        fail_msg ("600 messages in a burst: ACKs in %d frames (%d bundles), DELIVERs in %d "
                  "(%d bundles)", acks.frames, acks.bundles, delivers.frames, delivers.bundles);
    }
    //  An ACK is ~120 bytes: a bundle holds at most BUS_BUNDLE_REPLIES of them.
    if (acks.biggest > BUS_BUNDLE_REPLIES + 256) {
        fail_msg ("a bundle of ACKs of %zu bytes (%zu frames at most)", acks.biggest, acks.most);
    }
    assert_true (acks.most >= 2);
    assert_true (delivers.biggest <= 4000);
    assert_true (delivers.most >= 2);
}

//  An offer too small for any two frames gets them one by one; an offer
//  of 4 GiB is held to the policy's max_frame (64 KiB here): no bundle is
//  bigger than a frame an agent may send. libzmq's high-water mark counts
//  frames, so a connection that never reads (and acknowledges blind, which
//  opens the window) holds at most what it could before bundles.
static void
test_offer_bounds (void **state)
{
    seen_t acks, delivers;
    s_burst_seen (*state, 1, UINT32_MAX, "edge", 1500, 3000, &acks, &delivers);
    assert_int_equal (acks.bundles, 0);
    assert_int_equal (acks.frames, 1500);
    assert_true (delivers.bundles > 0);
    if (delivers.biggest > 65536) {
        fail_msg ("a bundle of %zu bytes, over max_frame (65536)", delivers.biggest);
    }
}

//  The C client offers bundles and hands their frames out one by one:
//  posted in a burst, every ACK and DELIVER arrives once, in order.
static void
test_client_library_unbundles (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    enum { N = 2000 };
    bus_error_t err;
    for (int i = 0; i < N; i++) {
        char id [32];
        snprintf (id, sizeof id, "lib-%04d", i);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.message_id = id;
        send.recipient = "writer";
        send.intent = "message";
        assert_int_equal (bus_client_post (planner, &send, &err), 0);
    }
    for (int i = 0; i < N; i++) {
        Bulkhead__V1__Frame *frame;
        assert_int_equal (bus_client_recv (planner, &frame, 10000, &err), 0);
        assert_int_equal (frame->body_case, BULKHEAD__V1__FRAME__BODY_ACK);
        char want [32];
        snprintf (want, sizeof want, "lib-%04d", i);
        assert_string_equal (frame->ack->message_id, want);
        assert_string_equal (frame->ack->code, "OK");
        bus_client_free (&frame);
    }
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        Bulkhead__V1__Frame *frame = harness_deliver (writer, 10000);
        assert_non_null (frame);
        assert_true (frame->deliver->seq > last);
        last = frame->deliver->seq;
        char want [32];
        snprintf (want, sizeof want, "lib-%04d", i);
        assert_string_equal (frame->deliver->message_id, want);
        bus_client_free (&frame);
        if (i % 100 == 99) {
            assert_int_equal (bus_client_ack (writer, last, &err), 0);
        }
    }
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
}


//  A bus from before bundles: a CURVE ROUTER that refuses a HELLO with the
//  unknown field as MALFORMED (as such a bus does) and welcomes one
//  without it. Counts what it saw.
typedef struct {
    void *router;
    int hellos;
    int offers;
} old_bus_t;

static void *
s_old_bus (void *arg)
{
    old_bus_t *self = arg;
    for (int i = 0; i < 2; i++) {
        zmq_pollitem_t item = { self->router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 10000) != 1) {
            return NULL;
        }
        zmq_msg_t rid, body;
        zmq_msg_init (&rid);
        zmq_msg_init (&body);
        zmq_msg_recv (&rid, self->router, 0);
        zmq_msg_recv (&body, self->router, 0);
        Bulkhead__V1__Frame *frame = bulkhead__v1__frame__unpack (NULL, zmq_msg_size (&body),
                                                                  zmq_msg_data (&body));
        zmq_msg_close (&body);
        bool offer = frame && frame->body_case == BULKHEAD__V1__FRAME__BODY_HELLO
                  && frame->hello->has_bundle;
        self->hellos += frame && frame->body_case == BULKHEAD__V1__FRAME__BODY_HELLO;
        self->offers += offer;
        bulkhead__v1__frame__free_unpacked (frame, NULL);
        Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
        error.code = "MALFORMED";
        error.reason = "frame has fields this bus does not know";
        Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
        welcome.agent = "planner";
        welcome.version = 1;
        welcome.policy_hash = "old";
        Bulkhead__V1__Frame reply = BULKHEAD__V1__FRAME__INIT;
        if (offer) {
            reply.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
            reply.error = &error;
        }
        else {
            reply.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
            reply.welcome = &welcome;
        }
        size_t size = bulkhead__v1__frame__get_packed_size (&reply);
        uint8_t *data = malloc (size);
        bulkhead__v1__frame__pack (&reply, data);
        zmq_msg_send (&rid, self->router, ZMQ_SNDMORE);
        zmq_send (self->router, data, size, 0);
        free (data);
        if (!offer) {
            break;
        }
    }
    return NULL;
}

//  The C client against a bus from before bundles: refused as MALFORMED
//  for the offer, it says HELLO again without it and connects.
static void
test_client_falls_back_on_old_bus (void **state)
{
    harness_t *h = *state;
    char public_key [41], secret_key [41];
    assert_int_equal (zmq_curve_keypair (public_key, secret_key), 0);
    void *ctx = zmq_ctx_new ();
    old_bus_t old = { .router = zmq_socket (ctx, ZMQ_ROUTER) };
    int one = 1;
    zmq_setsockopt (old.router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt (old.router, ZMQ_CURVE_SECRETKEY, secret_key, 40);
    char endpoint [300];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/old-bus.sock", h->dir);
    assert_int_equal (zmq_bind (old.router, endpoint), 0);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_old_bus, &old), 0);
    char key_file [300];
    snprintf (key_file, sizeof key_file, "%s/planner.key", h->dir);
    bus_client_options_t options = { .endpoint = endpoint, .bus_key = public_key,
                                     .key_file = key_file, .timeout_ms = 10000 };
    bus_client_t *client = NULL;
    bus_error_t err;
    int rc = bus_client_connect (&client, &options, &err);
    pthread_join (thread, NULL);
    if (rc != 0) {
        fail_msg ("connect to a bus from before bundles: %s: %s", bus_errname (err.code), err.text);
    }
    assert_int_equal (old.hellos, 2);
    assert_int_equal (old.offers, 1);
    assert_string_equal (bus_client_agent (client), "planner");
    bus_client_destroy (&client);
    zmq_close (old.router);
    zmq_ctx_term (ctx);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_no_offer_no_bundles, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_offer_bundles_in_order, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_offer_bounds, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_library_unbundles, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_falls_back_on_old_bus, s_setup, harness_fixture_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
