/*  e2e_bundle.c: several ACKs and DELIVERs in one frame, over real sockets.

    A connection whose HELLO offers `bundle` gets what one flush has for it
    as Bundle frames of at most that many bytes, in the order they would
    have come one by one; a connection that does not offer it (an old
    client, the Python agent) never sees one. The other way, an agent may
    send Bundles of up to what the WELCOME says (the bus's max_frame), and
    the bus takes each frame in one as if it had come alone. Checked with
    raw DEALERs, which see the frames as they come, and through the C
    client library, which hands the frames of a bundle out one by one and
    gathers posts between bus_client_cork and bus_client_uncork. */
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

//  One policy for every test: planner and writer, ops (an operator), and
//  slow, whose budget is 10 frames a second.
static const char *s_policy =
    "bus\n"
    "    frames = 100000\n"
    "agents\n"
    "    planner\n"
    "        key = @planner@\n"
    "    writer\n"
    "        key = @writer@\n"
    "    ops\n"
    "        key = @ops@\n"
    "        role = operator\n"
    "    slow\n"
    "        key = @slow@\n"
    "        frames = 10\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n"
    "    ops\n"
    "        writer = message\n"
    "    slow\n"
    "        writer = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  HELLO on a raw dealer, offering bundles of offer bytes (0: no offer),
//  and its WELCOME read: the most bytes of a bundle the bus takes (0 if
//  it did not say).
static uint32_t
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
    uint32_t takes = welcome->welcome->has_bundle? welcome->welcome->bundle: 0;
    bulkhead__v1__frame__free_unpacked (welcome, NULL);
    return takes;
}

//  Sends what a gathers as one ZeroMQ frame, and forgets it.
static void
s_send_bundle (void *dealer, bus_bundle_t *bundle)
{
    size_t size = bus_bundle_size (bundle);
    uint8_t *data = malloc (size);
    assert_non_null (data);
    bus_bundle_write (bundle, data);
    assert_int_equal (zmq_send (dealer, data, size, 0), (int) size);
    free (data);
    for (size_t i = 0; i < bundle->count; i++) {
        free ((void *) bundle->parts [i].data);
    }
    bus_bundle_reset (bundle, 0);
}

//  A frame packed, owned by the caller.
static uint8_t *
s_packed_send (const char *id, size_t payload, size_t *size)
{
    uint8_t *bytes = calloc (1, payload + 1);
    assert_non_null (bytes);
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = (char *) id;
    send.recipient = "writer";
    send.intent = "message";
    send.has_payload = true;
    send.payload = (ProtobufCBinaryData) { payload, bytes };
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &send;
    uint8_t *data = bus_wire_pack (&frame, size);
    assert_non_null (data);
    free (bytes);
    return data;
}

//  count Sends of payload bytes from planner to writer, in one burst: one
//  frame each, or in Bundles of at most bundled bytes.
static void
s_burst (void *dealer, const char *prefix, int count, size_t payload, size_t bundled)
{
    bus_bundle_t bundle = { 0 };
    for (int i = 0; i < count; i++) {
        char id [64];
        snprintf (id, sizeof id, "%s-%04d", prefix, i);
        size_t size;
        uint8_t *data = s_packed_send (id, payload, &size);
        if (bundled && bundle.count && bus_bundle_with (&bundle, size) > bundled) {
            s_send_bundle (dealer, &bundle);
        }
        assert_int_equal (bus_bundle_add (&bundle, data, size), 0);
        if (!bundled) {
            s_send_bundle (dealer, &bundle);
        }
    }
    if (bundle.count) {
        s_send_bundle (dealer, &bundle);
    }
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
//  Every ACK and DELIVER must come once, in order. bundled: planner sends
//  the burst in Bundles of what the bus's WELCOME says it takes.
static void
s_burst_sent (harness_t *h, uint32_t planner_offer, uint32_t writer_offer, bool bundled,
              const char *prefix, int count, size_t payload, seen_t *acks, seen_t *delivers)
{
    void *ctx = zmq_ctx_new ();
    void *planner = harness_raw (h, ctx, "planner", NULL);
    void *writer = harness_raw (h, ctx, "writer", NULL);
    uint32_t takes = s_hello (planner, planner_offer);
    assert_int_equal (takes, 65536);            //  the policy's max_frame
    s_hello (writer, writer_offer);
    s_burst (planner, prefix, count, payload, bundled? takes: 0);
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

static void
s_burst_seen (harness_t *h, uint32_t planner_offer, uint32_t writer_offer, const char *prefix,
              int count, size_t payload, seen_t *acks, seen_t *delivers)
{
    s_burst_sent (h, planner_offer, writer_offer, false, prefix, count, payload, acks, delivers);
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

//  An agent's Bundles: each Send in one is taken as if it had come alone,
//  in order, ACKed and delivered once. Both ways bundled, and to a client
//  that takes none (one frame per ACK, as a Send alone would get).
static void
test_agent_bundles (void **state)
{
    seen_t acks, delivers;
    s_burst_sent (*state, 64 << 10, 64 << 10, true, "mine", 1200, 200, &acks, &delivers);
    assert_true (acks.bundles > 0 && delivers.bundles > 0);
    s_burst_sent (*state, 0, 0, true, "plain", 300, 200, &acks, &delivers);
    assert_int_equal (acks.frames, 300);
    assert_int_equal (delivers.frames, 300);
}

//  The next frame on a raw dealer: its body, and for an ACK or ERROR its
//  message id and code, as "ack mine-0000 OK" / "error - MALFORMED".
static void
s_answer (void *dealer, char *out, size_t size)
{
    Bulkhead__V1__Frame *frame = harness_raw_recv (dealer, 5000);
    assert_non_null (frame);
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        snprintf (out, size, "ack %s %s", frame->ack->message_id, frame->ack->code);
    }
    else
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
        snprintf (out, size, "error %s %s", frame->error->message_id? frame->error->message_id: "-",
                  frame->error->code);
    }
    else {
        snprintf (out, size, "%s", bus_wire_body_name (frame));
    }
    bulkhead__v1__frame__free_unpacked (frame, NULL);
}

static void
s_add (bus_bundle_t *bundle, const void *data, size_t size)
{
    uint8_t *copy = malloc (size? size: 1);
    assert_non_null (copy);
    memcpy (copy, data, size);
    assert_int_equal (bus_bundle_add (bundle, copy, size), 0);
}

//  What is wrong in a bundle is refused frame by frame, each answered in
//  its place; what is wrong with the bundle itself refuses all of it,
//  before any of its frames is looked at.
static void
test_agent_bundle_refusals (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    void *planner = harness_raw (h, ctx, "planner", NULL);
    void *writer = harness_raw (h, ctx, "writer", NULL);
    s_hello (writer, 0);
    char got [160];
    size_t size;
    bus_bundle_t bundle = { 0 };

    //  Before HELLO: refused whole.
    uint8_t *send = s_packed_send ("early", 10, &size);
    s_add (&bundle, send, size);
    s_add (&bundle, send, size);
    free (send);
    s_send_bundle (planner, &bundle);
    s_answer (planner, got, sizeof got);
    assert_string_equal (got, "error - NOHELLO");
    s_hello (planner, 0);

    //  A Send, a bundle in the bundle, a HELLO, bytes that are no frame, a
    //  Send: two ACKs and three refusals, in that order.
    uint8_t inner [] = { 0x7a, 0x04, 0x0a, 0x02, 0x42, 0x00 };
    uint8_t hello [] = { 0x0a, 0x02, 0x08, 0x01 };
    uint8_t junk [] = { 0xff, 0xff, 0xff };
    send = s_packed_send ("mixed-0000", 10, &size);
    s_add (&bundle, send, size);
    free (send);
    s_add (&bundle, inner, sizeof inner);
    s_add (&bundle, hello, sizeof hello);
    s_add (&bundle, junk, sizeof junk);
    send = s_packed_send ("mixed-0001", 10, &size);
    s_add (&bundle, send, size);
    free (send);
    s_send_bundle (planner, &bundle);
    static const char *want [] = { "ack mixed-0000 OK", "error - MALFORMED", "error - MALFORMED",
                                   "error - MALFORMED", "ack mixed-0001 OK" };
    for (size_t i = 0; i < sizeof want / sizeof want [0]; i++) {
        s_answer (planner, got, sizeof got);
        assert_string_equal (got, want [i]);
    }

    //  A bundle whose second frame's length is not minimal: nothing of it
    //  is taken, not even its first Send.
    uint8_t *frame = s_packed_send ("bent-0000", 10, &size);
    size_t body = 2 + size + 5;         //  [0x0a len frame] [0x0a 0x82 0x00 0x42 0x00]
    assert_true (size < 128 && body < 128);
    uint8_t bent [256] = { 0x7a, (uint8_t) body, 0x0a, (uint8_t) size };
    memcpy (bent + 4, frame, size);
    memcpy (bent + 4 + size, (uint8_t []) { 0x0a, 0x82, 0x00, 0x42, 0x00 }, 5);
    free (frame);
    assert_int_equal (zmq_send (planner, bent, 2 + body, 0), (int) (2 + body));
    s_answer (planner, got, sizeof got);
    assert_string_equal (got, "error - MALFORMED");
    //  The same id alone is then new: the bundle left no trace of it.
    send = s_packed_send ("bent-0000", 10, &size);
    assert_int_equal (zmq_send (planner, send, size, 0), (int) size);
    free (send);
    s_answer (planner, got, sizeof got);
    assert_string_equal (got, "ack bent-0000 OK");
    zmq_close (planner);
    zmq_close (writer);
    zmq_ctx_term (ctx);
}

//  A bundle holds at most BUS_BUNDLE_FRAMES frames: one more and it is
//  refused whole, none of its frames looked at; that many are all taken.
static void
test_agent_bundle_count (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    void *planner = harness_raw (h, ctx, "planner", NULL);
    s_hello (planner, 0);
    static const uint8_t ping [] = { 0x42, 0x00 };
    bus_bundle_t bundle = { 0 };
    for (int i = 0; i < BUS_BUNDLE_FRAMES + 1; i++) {
        s_add (&bundle, ping, sizeof ping);
    }
    s_send_bundle (planner, &bundle);
    char got [160];
    s_answer (planner, got, sizeof got);
    assert_string_equal (got, "error - MALFORMED");
    for (int i = 0; i < BUS_BUNDLE_FRAMES; i++) {
        s_add (&bundle, ping, sizeof ping);
    }
    s_send_bundle (planner, &bundle);
    for (int i = 0; i < BUS_BUNDLE_FRAMES; i++) {
        s_answer (planner, got, sizeof got);
        if (strcmp (got, "pong") != 0) {
            fail_msg ("answer %d of %d pings in a bundle: %s", i + 1, BUS_BUNDLE_FRAMES, got);
        }
    }
    zmq_close (planner);
    zmq_ctx_term (ctx);
}

//  The next two frames on a raw dealer are CONTROL_REPLYs with these codes.
static void
s_replies (void *dealer, const char *first, const char *second)
{
    const char *want [] = { first, second };
    for (int i = 0; i < 2; i++) {
        Bulkhead__V1__Frame *reply = harness_raw_recv (dealer, 5000);
        assert_non_null (reply);
        assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
        assert_string_equal (reply->control_reply->code, want [i]);
        bulkhead__v1__frame__free_unpacked (reply, NULL);
    }
}

//  An operator's RELOAD in a bundle: the frames after it meet the new
//  policy, as frames sent after it would. The old one is freed by the
//  reload; before, the next frame read its sender from it (heap use after
//  free, under ASan), and acted with the roles the old policy gave.
static void
test_agent_bundle_reload (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    void *ops = harness_raw (h, ctx, "ops", NULL);
    s_hello (ops, 0);
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL;
    frame.control = &control;
    uint8_t reload [16], list [16];
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD;
    size_t reload_size = bulkhead__v1__frame__pack (&frame, reload);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT;
    size_t list_size = bulkhead__v1__frame__pack (&frame, list);
    //  The same policy: both answered.
    bus_bundle_t bundle = { 0 };
    s_add (&bundle, reload, reload_size);
    s_add (&bundle, list, list_size);
    s_send_bundle (ops, &bundle);
    s_replies (ops, "OK", "OK");
    //  A policy in which ops is no operator: its RELOAD passes (it was one
    //  when it came), the LIST_TAINT after it is refused.
    char *demoted = strdup (s_policy);
    assert_non_null (demoted);
    char *role = strstr (demoted, "        role = operator\n");
    assert_non_null (role);
    memmove (role, role + strlen ("        role = operator\n"),
             strlen (role + strlen ("        role = operator\n")) + 1);
    harness_policy (h, demoted);
    free (demoted);
    s_add (&bundle, reload, reload_size);
    s_add (&bundle, list, list_size);
    s_send_bundle (ops, &bundle);
    s_replies (ops, "OK", "PERM");
    zmq_close (ops);
    zmq_ctx_term (ctx);
}

//  Bundling buys no more than the budget: each frame of a bundle pays a
//  frame. slow may send 10 a second, and its HELLO paid one; a bundle
//  of 30 gets 9 ACKs (10 if the budget refilled one meanwhile), then one
//  RATE for the rest of the bundle: a refusal for load costs the bus one
//  answer, not one per frame.
static void
test_agent_bundle_budget (void **state)
{
    harness_t *h = *state;
    void *ctx = zmq_ctx_new ();
    void *slow = harness_raw (h, ctx, "slow", NULL);
    s_hello (slow, 0);
    bus_bundle_t bundle = { 0 };
    for (int i = 0; i < 30; i++) {
        char id [32];
        snprintf (id, sizeof id, "b-%04d", i);
        size_t size;
        uint8_t *send = s_packed_send (id, 10, &size);
        assert_int_equal (bus_bundle_add (&bundle, send, size), 0);
    }
    s_send_bundle (slow, &bundle);
    int acks = 0, rate = 0;
    for (int answers = 0; rate == 0 && answers < 30; answers++) {
        char got [160];
        s_answer (slow, got, sizeof got);
        acks += strncmp (got, "ack ", 4) == 0;
        rate += strcmp (got, "error - RATE") == 0;
    }
    zmq_pollitem_t item = { slow, 0, ZMQ_POLLIN, 0 };
    if (acks < 9 || acks > 10 || rate != 1 || zmq_poll (&item, 1, 300) != 0) {
        fail_msg ("a bundle of 30 on a budget of 10 frames: %d ACKs, %d RATE, %s after",
                  acks, rate, item.revents? "more": "nothing");
    }
    zmq_close (slow);
    zmq_ctx_term (ctx);
}

//  The C client offers bundles and hands their frames out one by one:
//  posted in a burst, every ACK and DELIVER arrives once, in order.
static void
s_client_burst (harness_t *h, bool corked)
{
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    enum { N = 2000 };
    bus_error_t err;
    if (corked) {
        bus_client_cork (planner);
    }
    for (int i = 0; i < N; i++) {
        char id [32];
        snprintf (id, sizeof id, "lib-%04d", i);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.message_id = id;
        send.recipient = "writer";
        send.intent = "message";
        assert_int_equal (bus_client_post (planner, &send, &err), 0);
    }
    assert_int_equal (bus_client_uncork (planner, &err), 0);
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

static void
test_client_library_unbundles (void **state)
{
    s_client_burst (*state, false);
}

//  The same burst posted between cork and uncork: the bus takes it in
//  bundles, and every ACK and DELIVER still arrives once, in order.
static void
test_client_library_corked (void **state)
{
    s_client_burst (*state, true);
}


//  A fake bus: a CURVE ROUTER on an ipc endpoint in the test's directory,
//  served by `serve` in a thread of its own, and the C client connected to
//  it as planner (run->rc and run->err: bus_client_connect's answer).
typedef struct {
    void *ctx;
    void *router;
    pthread_t thread;
    bus_client_t *client;
    int rc;
    bus_error_t err;
} fake_run_t;

static void
s_fake_start (harness_t *h, void **router, void *(*serve) (void *), void *arg, fake_run_t *run)
{
    char public_key [41], secret_key [41];
    assert_int_equal (zmq_curve_keypair (public_key, secret_key), 0);
    memset (run, 0, sizeof *run);
    run->ctx = zmq_ctx_new ();
    *router = run->router = zmq_socket (run->ctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt (run->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt (run->router, ZMQ_CURVE_SECRETKEY, secret_key, 40);
    char endpoint [300];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/fake-bus.sock", h->dir);
    assert_int_equal (zmq_bind (run->router, endpoint), 0);
    assert_int_equal (pthread_create (&run->thread, NULL, serve, arg), 0);
    char key_file [300];
    snprintf (key_file, sizeof key_file, "%s/planner.key", h->dir);
    bus_client_options_t options = { .endpoint = endpoint, .bus_key = public_key,
                                     .key_file = key_file, .timeout_ms = 10000 };
    run->rc = bus_client_connect (&run->client, &options, &run->err);
}

static void
s_fake_end (fake_run_t *run)
{
    pthread_join (run->thread, NULL);
    bus_client_destroy (&run->client);
    zmq_close (run->router);
    zmq_ctx_term (run->ctx);
}

//  The next message on a fake bus's ROUTER within timeout_ms: its routing
//  id and body (both the caller's to close). False if none came.
static bool
s_fake_recv (void *router, int timeout_ms, zmq_msg_t *rid, zmq_msg_t *body)
{
    zmq_pollitem_t item = { router, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, timeout_ms) != 1) {
        return false;
    }
    zmq_msg_init (rid);
    zmq_msg_init (body);
    zmq_msg_recv (rid, router, 0);
    zmq_msg_recv (body, router, 0);
    return true;
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
        zmq_msg_t rid, body;
        if (!s_fake_recv (self->router, 10000, &rid, &body)) {
            return NULL;
        }
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
    old_bus_t old = { 0 };
    fake_run_t run;
    s_fake_start (*state, &old.router, s_old_bus, &old, &run);
    if (run.rc != 0) {
        fail_msg ("connect to a bus from before bundles: %s: %s", bus_errname (run.err.code),
                  run.err.text);
    }
    assert_string_equal (bus_client_agent (run.client), "planner");
    s_fake_end (&run);
    assert_int_equal (old.hellos, 2);
    assert_int_equal (old.offers, 1);
}

//  A bus that welcomes with `takes` (0: a bus from before agents'
//  bundles, whose WELCOME does not say) and then counts what comes: ZeroMQ
//  frames, Bundles, the biggest, and the Sends in them, which must come in
//  order ("cork-0000", ...).
typedef struct {
    void *router;
    uint32_t takes;
    int want;
    int frames;
    int bundles;
    size_t biggest;
    int sends;
    char bad [160];
    const uint8_t *push;                //  sent after the WELCOME, if set
    size_t push_size;
} fake_bus_t;

static void
s_fake_send (fake_bus_t *self, const uint8_t *data, size_t size)
{
    Bulkhead__V1__Frame *frame = bulkhead__v1__frame__unpack (NULL, size, data);
    char want [32];
    snprintf (want, sizeof want, "cork-%04d", self->sends);
    if (!frame || frame->body_case != BULKHEAD__V1__FRAME__BODY_SEND
    ||  strcmp (frame->send->message_id, want) != 0) {
        if (!self->bad [0]) {
            snprintf (self->bad, sizeof self->bad, "%s where Send %s was next",
                      frame? bus_wire_body_name (frame): "no frame", want);
        }
    }
    self->sends++;
    bulkhead__v1__frame__free_unpacked (frame, NULL);
}

static void *
s_fake_bus (void *arg)
{
    fake_bus_t *self = arg;
    bool welcomed = false;
    while (!welcomed || self->sends < self->want) {
        zmq_msg_t rid, body;
        if (!s_fake_recv (self->router, 5000, &rid, &body)) {
            return NULL;
        }
        const uint8_t *data = zmq_msg_data (&body);
        size_t size = zmq_msg_size (&body);
        if (welcomed) {
            self->frames++;
            self->biggest = size > self->biggest? size: self->biggest;
            bus_bundle_reader_t reader;
            size_t count;
            bus_error_t err;
            if (bus_wire_is_bundle (data, size)) {
                self->bundles++;
                assert_int_equal (bus_bundle_open (&reader, data, size, &count, &err), 0);
                const uint8_t *member;
                size_t member_size;
                while (bus_bundle_next (&reader, &member, &member_size)) {
                    s_fake_send (self, member, member_size);
                }
            }
            else {
                s_fake_send (self, data, size);
            }
        }
        else {
            Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
            welcome.agent = "planner";
            welcome.version = 1;
            welcome.policy_hash = "fake";
            welcome.has_bundle = self->takes > 0;
            welcome.bundle = self->takes;
            Bulkhead__V1__Frame reply = BULKHEAD__V1__FRAME__INIT;
            reply.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
            reply.welcome = &welcome;
            size_t reply_size;
            uint8_t *packed = bus_wire_pack (&reply, &reply_size);
            zmq_msg_t again;
            zmq_msg_init (&again);
            zmq_msg_copy (&again, &rid);
            zmq_msg_send (&rid, self->router, ZMQ_SNDMORE);
            zmq_send (self->router, packed, reply_size, 0);
            free (packed);
            if (self->push) {
                zmq_msg_send (&again, self->router, ZMQ_SNDMORE);
                zmq_send (self->router, self->push, self->push_size, 0);
            }
            zmq_msg_close (&again);
            welcomed = true;
        }
        zmq_msg_close (&rid);
        zmq_msg_close (&body);
    }
    return NULL;
}

//  To a fake bus that takes bundles of `takes` bytes, 60 Sends of 100
//  bytes posted between cork and uncork.
static void
s_corked (harness_t *h, fake_bus_t *bus)
{
    bus->want = 60;
    fake_run_t run;
    s_fake_start (h, &bus->router, s_fake_bus, bus, &run);
    assert_int_equal (run.rc, 0);
    bus_client_t *client = run.client;
    bus_error_t err;
    uint8_t payload [100] = { 0 };
    bus_client_cork (client);
    for (int i = 0; i < bus->want; i++) {
        char id [32];
        snprintf (id, sizeof id, "cork-%04d", i);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.message_id = id;
        send.recipient = "writer";
        send.intent = "message";
        send.has_payload = true;
        send.payload = (ProtobufCBinaryData) { sizeof payload, payload };
        assert_int_equal (bus_client_post (client, &send, &err), 0);
    }
    assert_int_equal (bus_client_uncork (client, &err), 0);
    s_fake_end (&run);
    assert_string_equal (bus->bad, "");
    assert_int_equal (bus->sends, bus->want);
}

//  Corked, the client sends bundles of at most what the WELCOME said; to a
//  bus whose WELCOME did not say, one frame per Send, as before.
static void
test_client_cork (void **state)
{
    fake_bus_t takes = { .takes = 2000 };
    s_corked (*state, &takes);
    //  ~130 bytes a Send: 60 of them in about four bundles, none too big.
    if (takes.frames > 6 || takes.bundles == 0 || takes.biggest > 2000) {
        fail_msg ("60 Sends corked, bundles of 2000 bytes taken: %d frames, %d bundles, the "
                  "biggest %zu bytes", takes.frames, takes.bundles, takes.biggest);
    }
    fake_bus_t old = { .takes = 0 };
    s_corked (*state, &old);
    assert_int_equal (old.frames, 60);
    assert_int_equal (old.bundles, 0);
}

//  A bundle from a broken or hostile bus with a frame that does not
//  decode between two DELIVERs: that frame is refused alone, and the
//  DELIVER after it still comes.
static void
test_client_bad_member (void **state)
{
    uint8_t frames [2][64];
    size_t sizes [2];
    for (int i = 0; i < 2; i++) {
        Bulkhead__V1__Deliver deliver = BULKHEAD__V1__DELIVER__INIT;
        deliver.seq = (uint64_t) i + 1;
        deliver.sender = "planner";
        deliver.message_id = i? "d-2": "d-1";
        deliver.intent = "message";
        Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
        frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVER;
        frame.deliver = &deliver;
        assert_true (bulkhead__v1__frame__get_packed_size (&frame) <= sizeof frames [i]);
        sizes [i] = bulkhead__v1__frame__pack (&frame, frames [i]);
    }
    static const uint8_t junk [] = { 0xff, 0xff };
    bus_bundle_t bundle = { 0 };
    assert_int_equal (bus_bundle_add (&bundle, frames [0], sizes [0]), 0);
    assert_int_equal (bus_bundle_add (&bundle, junk, sizeof junk), 0);
    assert_int_equal (bus_bundle_add (&bundle, frames [1], sizes [1]), 0);
    uint8_t push [256];
    assert_true (bus_bundle_size (&bundle) <= sizeof push);
    bus_bundle_write (&bundle, push);
    fake_bus_t bus = { .push = push, .push_size = bus_bundle_size (&bundle) };
    bus_bundle_reset (&bundle, 0);
    fake_run_t run;
    s_fake_start (*state, &bus.router, s_fake_bus, &bus, &run);
    assert_int_equal (run.rc, 0);
    Bulkhead__V1__Frame *frame;
    bus_error_t err;
    assert_int_equal (bus_client_recv (run.client, &frame, 5000, &err), 0);
    assert_string_equal (frame->deliver->message_id, "d-1");
    bus_client_free (&frame);
    assert_int_equal (bus_client_recv (run.client, &frame, 5000, &err), -1);
    assert_int_equal (err.code, BUS_EMALFORMED);
    assert_int_equal (bus_client_recv (run.client, &frame, 5000, &err), 0);
    assert_string_equal (frame->deliver->message_id, "d-2");
    bus_client_free (&frame);
    s_fake_end (&run);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_no_offer_no_bundles, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_offer_bundles_in_order, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_offer_bounds, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_agent_bundles, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_agent_bundle_refusals, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_agent_bundle_count, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_agent_bundle_reload, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_agent_bundle_budget, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_library_unbundles, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_library_corked, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_falls_back_on_old_bus, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_cork, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_client_bad_member, s_setup, harness_fixture_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
