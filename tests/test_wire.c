/*  test_wire.c: bounded, canonical decoding of frames (bus_wire).

    Every body type round-trips. Everything the decoder must refuse is built
    here byte by byte: garbage, an empty frame, unknown fields, a string with
    a NUL, duplicated fields, non-minimal varints, and a frame that decodes
    to more than the arena. Random garbage uses a seed printed at the start
    (set TEST_SEED to replay).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_wire.h"

#define ARENA   (64 * 1024)

//  Decodes with a fresh decoder; the decoder goes to *wire (caller
//  destroys: the frame borrows its arena).
static int
s_decode (bus_wire_t **wire, const void *data, size_t size, Bulkhead__V1__Frame **frame,
          bus_error_t *err)
{
    *wire = bus_wire_new (ARENA);
    assert_non_null (*wire);
    return bus_wire_decode (*wire, data, size, frame, err);
}

//  Packs frame, decodes the bytes, checks the body, returns the decoded
//  frame (valid until *wire is destroyed).
static Bulkhead__V1__Frame *
s_round_trip (bus_wire_t **wire, const Bulkhead__V1__Frame *frame, const char *body_name)
{
    size_t size;
    uint8_t *data = bus_wire_pack (frame, &size);
    assert_non_null (data);
    Bulkhead__V1__Frame *decoded = NULL;
    bus_error_t err = { 0 };
    int rc = s_decode (wire, data, size, &decoded, &err);
    free (data);
    if (rc != 0) {
        fail_msg ("%s: %s: %s", body_name, bus_errname (err.code), err.text);
    }
    assert_int_equal (decoded->body_case, frame->body_case);
    assert_string_equal (bus_wire_body_name (decoded), body_name);
    return decoded;
}

//  Expects bytes to be refused with EMALFORMED and a reason containing want.
static void
s_expect_malformed (const void *data, size_t size, const char *want)
{
    bus_wire_t *wire;
    Bulkhead__V1__Frame *frame = NULL;
    bus_error_t err = { 0 };
    int rc = s_decode (&wire, data, size, &frame, &err);
    if (rc != -1) {
        fail_msg ("accepted %zu bytes that should be refused (%s)", size, want);
    }
    assert_int_equal (err.code, BUS_EMALFORMED);
    if (!strstr (err.text, want)) {
        fail_msg ("reason '%s' does not mention '%s'", err.text, want);
    }
    bus_wire_destroy (&wire);
    assert_null (wire);
}

static void
test_hello (void **state)
{
    (void) state;
    Bulkhead__V1__Hello hello = BULKHEAD__V1__HELLO__INIT;
    hello.version = 1;
    hello.has_last_seq = true;
    hello.last_seq = UINT64_MAX;
    hello.software = "test/1";
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HELLO;
    frame.hello = &hello;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "hello");
    assert_int_equal (got->hello->version, 1);
    assert_true (got->hello->has_last_seq);
    assert_true (got->hello->last_seq == UINT64_MAX);
    assert_string_equal (got->hello->software, "test/1");
    bus_wire_destroy (&wire);
}

static void
test_welcome (void **state)
{
    (void) state;
    char *intents [] = { "message", "query" };
    Bulkhead__V1__Reach reach = BULKHEAD__V1__REACH__INIT;
    reach.recipient = "writer";
    reach.n_intents = 2;
    reach.intents = intents;
    Bulkhead__V1__Reach *reaches [] = { &reach };
    Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
    welcome.agent = "planner";
    welcome.version = 1;
    welcome.policy_hash = "00ff";
    welcome.n_reach = 1;
    welcome.reach = reaches;
    welcome.has_resume_from = true;
    welcome.resume_from = 42;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
    frame.welcome = &welcome;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "welcome");
    assert_string_equal (got->welcome->agent, "planner");
    assert_int_equal (got->welcome->n_reach, 1);
    assert_string_equal (got->welcome->reach [0]->recipient, "writer");
    assert_int_equal (got->welcome->reach [0]->n_intents, 2);
    assert_string_equal (got->welcome->reach [0]->intents [1], "query");
    assert_int_equal (got->welcome->resume_from, 42);
    bus_wire_destroy (&wire);
}

static void
test_send (void **state)
{
    (void) state;
    uint64_t causes [] = { 1, 300, UINT64_MAX };
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "m-1";
    send.recipient = "payments";
    send.intent = "finance";
    send.action = "transfer.create";
    send.resource = "account:1234";
    send.content_type = "application/json";
    send.has_payload = true;
    send.payload.data = (uint8_t *) "{\"amount\":\0 5}";    //  bytes may hold NUL
    send.payload.len = 14;
    send.has_provenance = true;
    send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
    send.source = "https://example.com/";
    send.n_causes = 3;
    send.causes = causes;
    send.justification = "pay the invoice the user approved";
    send.sender = "planner";
    send.tool = "http";
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &send;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "send");
    const Bulkhead__V1__Send *s = got->send;
    assert_string_equal (s->message_id, "m-1");
    assert_string_equal (s->recipient, "payments");
    assert_string_equal (s->intent, "finance");
    assert_string_equal (s->action, "transfer.create");
    assert_int_equal (s->payload.len, 14);
    assert_memory_equal (s->payload.data, "{\"amount\":\0 5}", 14);
    assert_int_equal (s->provenance, BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED);
    assert_int_equal (s->n_causes, 3);
    assert_true (s->causes [2] == UINT64_MAX);
    assert_string_equal (s->sender, "planner");
    bus_wire_destroy (&wire);
}

static void
test_ack_and_error (void **state)
{
    (void) state;
    Bulkhead__V1__Ack ack = BULKHEAD__V1__ACK__INIT;
    ack.message_id = "m-1";
    ack.verdict = BULKHEAD__V1__VERDICT__VERDICT_HELD;
    ack.code = "OK";
    ack.reason = "held: finance needs 1 approval";
    ack.has_seq = true;
    ack.seq = 7;
    ack.approval_id = "a-1";
    ack.intent_class = "finance";
    ack.has_restricted = true;
    ack.restricted = true;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ACK;
    frame.ack = &ack;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "ack");
    assert_int_equal (got->ack->verdict, BULKHEAD__V1__VERDICT__VERDICT_HELD);
    assert_string_equal (got->ack->approval_id, "a-1");
    assert_true (got->ack->restricted);
    bus_wire_destroy (&wire);

    Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
    error.code = "MALFORMED";
    error.reason = "bad";
    error.message_id = "m-2";
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
    frame.error = &error;
    got = s_round_trip (&wire, &frame, "error");
    assert_string_equal (got->error->code, "MALFORMED");
    assert_string_equal (got->error->message_id, "m-2");
    bus_wire_destroy (&wire);
}

static void
test_deliver_and_delivery_ack (void **state)
{
    (void) state;
    Bulkhead__V1__Approval alice = BULKHEAD__V1__APPROVAL__INIT;
    alice.approver = "alice";
    alice.time_us = 1700000000000000ULL;
    Bulkhead__V1__Approval *approvals [] = { &alice };
    uint64_t causes [] = { 3 };
    Bulkhead__V1__Deliver deliver = BULKHEAD__V1__DELIVER__INIT;
    deliver.seq = 9;
    deliver.sender = "planner";
    deliver.message_id = "m-1";
    deliver.intent = "finance";
    deliver.intent_class = "finance";
    deliver.has_payload = true;
    deliver.payload.data = (uint8_t *) "pay";
    deliver.payload.len = 3;
    deliver.has_restricted = true;
    deliver.restricted = false;
    deliver.n_causes = 1;
    deliver.causes = causes;
    deliver.n_approvals = 1;
    deliver.approvals = approvals;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVER;
    frame.deliver = &deliver;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "deliver");
    assert_int_equal (got->deliver->seq, 9);
    assert_int_equal (got->deliver->n_approvals, 1);
    assert_string_equal (got->deliver->approvals [0]->approver, "alice");
    bus_wire_destroy (&wire);

    Bulkhead__V1__DeliveryAck dack = BULKHEAD__V1__DELIVERY_ACK__INIT;
    dack.up_to = 9;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK;
    frame.delivery_ack = &dack;
    got = s_round_trip (&wire, &frame, "delivery_ack");
    assert_int_equal (got->delivery_ack->up_to, 9);
    bus_wire_destroy (&wire);
}

static void
test_ping_pong (void **state)
{
    (void) state;
    Bulkhead__V1__Ping ping = BULKHEAD__V1__PING__INIT;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PING;
    frame.ping = &ping;
    //  A body with every field absent is a body: "42 00".
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "ping");
    assert_false (got->ping->has_nonce);
    bus_wire_destroy (&wire);
    ping.has_nonce = true;
    ping.nonce = 77;
    got = s_round_trip (&wire, &frame, "ping");
    assert_int_equal (got->ping->nonce, 77);
    bus_wire_destroy (&wire);

    Bulkhead__V1__Pong pong = BULKHEAD__V1__PONG__INIT;
    pong.has_nonce = true;
    pong.nonce = 77;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PONG;
    frame.pong = &pong;
    got = s_round_trip (&wire, &frame, "pong");
    assert_int_equal (got->pong->nonce, 77);
    bus_wire_destroy (&wire);
}

static void
test_control (void **state)
{
    (void) state;
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    control.id = "a-1";
    control.has_digest = true;
    control.digest.data = (uint8_t *) "0123456789abcdef0123456789abcdef";
    control.digest.len = 32;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL;
    frame.control = &control;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "control");
    assert_int_equal (got->control->op, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE);
    assert_int_equal (got->control->digest.len, 32);
    bus_wire_destroy (&wire);

    char *lines [] = { "one", "two" };
    Bulkhead__V1__ControlReply reply = BULKHEAD__V1__CONTROL_REPLY__INIT;
    reply.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT;
    reply.code = "OK";
    reply.reason = "2 tainted";
    reply.n_lines = 2;
    reply.lines = lines;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY;
    frame.control_reply = &reply;
    got = s_round_trip (&wire, &frame, "control_reply");
    assert_int_equal (got->control_reply->n_lines, 2);
    assert_string_equal (got->control_reply->lines [1], "two");
    bus_wire_destroy (&wire);
}

static void
test_pending (void **state)
{
    (void) state;
    char *votes [] = { "alice" };
    Bulkhead__V1__Pending pending = BULKHEAD__V1__PENDING__INIT;
    pending.approval_id = "a-1";
    pending.sender = "planner";
    pending.recipient = "payments";
    pending.intent_class = "finance";
    pending.digest.data = (uint8_t *) "0123456789abcdef0123456789abcdef";
    pending.digest.len = 32;
    pending.has_quorum = true;
    pending.quorum = 2;
    pending.n_votes = 1;
    pending.votes = votes;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PENDING;
    frame.pending = &pending;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "pending");
    assert_string_equal (got->pending->approval_id, "a-1");
    assert_int_equal (got->pending->n_votes, 1);
    bus_wire_destroy (&wire);
}

static void
test_hold_update (void **state)
{
    (void) state;
    char *votes [] = { "alice", "bob" };
    Bulkhead__V1__HoldUpdate update = BULKHEAD__V1__HOLD_UPDATE__INIT;
    update.approval_id = "h-1";
    update.state = "pending";
    update.actor = "bob";
    update.n_votes = 2;
    update.votes = votes;
    update.has_quorum = true;
    update.quorum = 3;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE;
    frame.hold_update = &update;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "hold_update");
    assert_string_equal (got->hold_update->approval_id, "h-1");
    assert_string_equal (got->hold_update->actor, "bob");
    assert_int_equal (got->hold_update->n_votes, 2);
    assert_int_equal (got->hold_update->quorum, 3);
    bus_wire_destroy (&wire);
}

static void
test_alert (void **state)
{
    (void) state;
    uint64_t evidence [] = { 7, 9 };
    Bulkhead__V1__Alert alert = BULKHEAD__V1__ALERT__INIT;
    alert.id = "a-0123456789abcdef";
    alert.kind = "loop";
    alert.subject = "planner>worker";
    alert.text = "a cycle of causes";
    alert.n_evidence = 2;
    alert.evidence = evidence;
    alert.opened_us = 1700000000000000;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ALERT;
    frame.alert = &alert;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "alert");
    assert_string_equal (got->alert->subject, "planner>worker");
    assert_int_equal (got->alert->n_evidence, 2);
    assert_int_equal (got->alert->evidence [1], 9);
    assert_false (got->alert->has_closed_us);
    bus_wire_destroy (&wire);
}

//  A Bundle decodes like any body (the bus's dispatch is what refuses it
//  from agents): its members are bytes, opened by the client.
static void
test_bundle_body (void **state)
{
    (void) state;
    uint8_t one [] = { 0x42, 0x00 };            //  a Frame: empty DeliveryAck
    uint8_t two [] = { 0x22, 0x00 };            //  a Frame: empty Send
    ProtobufCBinaryData members [] = { { sizeof one, one }, { sizeof two, two } };
    Bulkhead__V1__Bundle bundle = BULKHEAD__V1__BUNDLE__INIT;
    bundle.n_frames = 2;
    bundle.frames = members;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_BUNDLE;
    frame.bundle = &bundle;
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got = s_round_trip (&wire, &frame, "bundle");
    assert_int_equal (got->bundle->n_frames, 2);
    assert_memory_equal (got->bundle->frames [1].data, two, sizeof two);
    bus_wire_destroy (&wire);
}

//  What bus_bundle_open takes from an agent: exactly what protobuf-c packs
//  for a Frame holding a Bundle of one or more frames, nothing else.
static void
test_bundle_read (void **state)
{
    (void) state;
    static const struct {
        const char *what;
        uint8_t bytes [16];
        size_t size;
        size_t count;                   //  0: refused
    } cases [] = {
        { "one frame", { 0x7a, 0x04, 0x0a, 0x02, 0x42, 0x00 }, 6, 1 },
        { "two frames", { 0x7a, 0x08, 0x0a, 0x02, 0x42, 0x00, 0x0a, 0x02, 0x22, 0x00 }, 10, 2 },
        { "an empty frame (refused when decoded)", { 0x7a, 0x02, 0x0a, 0x00 }, 4, 1 },
        { "no frames", { 0x7a, 0x00 }, 2, 0 },
        { "nothing", { 0 }, 0, 0 },
        { "not a bundle", { 0x22, 0x00 }, 2, 0 },
        { "its length not minimal", { 0x7a, 0x84, 0x00, 0x0a, 0x02, 0x42, 0x00 }, 7, 0 },
        { "a frame's length not minimal", { 0x7a, 0x05, 0x0a, 0x82, 0x00, 0x42, 0x00 }, 7, 0 },
        { "its length past the end", { 0x7a, 0x05, 0x0a, 0x02, 0x42, 0x00 }, 6, 0 },
        { "bytes after it", { 0x7a, 0x04, 0x0a, 0x02, 0x42, 0x00, 0x00 }, 7, 0 },
        { "another field", { 0x7a, 0x04, 0x12, 0x02, 0x42, 0x00 }, 6, 0 },
        { "a frame past the end", { 0x7a, 0x04, 0x0a, 0x05, 0x42, 0x00 }, 6, 0 },
        { "a length of eleven bytes", { 0x7a, 0x0c, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x80,
                                        0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, 14, 0 },
        { "a length over 64 bits", { 0x7a, 0x0b, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0x7f }, 13, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        bus_bundle_reader_t reader;
        size_t count = 0;
        bus_error_t err;
        memset (&err, 0, sizeof err);
        int rc = bus_bundle_open (&reader, cases [i].bytes, cases [i].size, &count, &err);
        if (cases [i].count && (rc != 0 || count != cases [i].count)) {
            fail_msg ("%s: refused (%s) or %zu frames", cases [i].what, err.text, count);
        }
        if (!cases [i].count && rc == 0) {
            fail_msg ("%s: taken as %zu frames", cases [i].what, count);
        }
        if (rc != 0) {
            assert_int_equal (err.code, BUS_EMALFORMED);
            assert_true (err.text [0] != 0);
        }
        //  protobuf-c agrees wherever it decodes the bytes at all.
        Bulkhead__V1__Frame *frame = bulkhead__v1__frame__unpack (NULL, cases [i].size,
                                                                  cases [i].bytes);
        if (rc == 0) {
            assert_non_null (frame);
            assert_int_equal (frame->body_case, BULKHEAD__V1__FRAME__BODY_BUNDLE);
            assert_int_equal (frame->bundle->n_frames, count);
        }
        bulkhead__v1__frame__free_unpacked (frame, NULL);
    }
    //  Nothing to write for no frames (bus_bundle_size says 0).
    bus_bundle_t empty = { 0 };
    uint8_t canary [4] = { 0xa5, 0xa5, 0xa5, 0xa5 };
    assert_int_equal (bus_bundle_size (&empty), 0);
    bus_bundle_write (&empty, canary);
    assert_int_equal (canary [0], 0xa5);
    assert_int_equal (canary [1], 0xa5);
}

//  The tests above cover these bodies; a body added to the schema must get
//  a case here (and a name in bus_wire_body_name).
static void
test_every_body_covered (void **state)
{
    (void) state;
    static const char *covered [] = {
        "hello", "welcome", "send", "ack", "deliver", "delivery_ack", "error", "ping",
        "pong", "control", "control_reply", "pending", "hold_update", "alert",
        "bundle"
    };
    const ProtobufCMessageDescriptor *d = &bulkhead__v1__frame__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        bool found = false;
        for (size_t j = 0; j < sizeof covered / sizeof covered [0]; j++) {
            found |= strcmp (d->fields [i].name, covered [j]) == 0;
        }
        if (!found) {
            fail_msg ("Frame body '%s' has no test in test_wire.c", d->fields [i].name);
        }
        //  Its name, as bus_wire_body_name gives it for logs and errors.
        Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
        frame.body_case = (Bulkhead__V1__Frame__BodyCase) d->fields [i].id;
        assert_string_equal (bus_wire_body_name (&frame), d->fields [i].name);
    }
    Bulkhead__V1__Frame empty = BULKHEAD__V1__FRAME__INIT;
    assert_string_equal (bus_wire_body_name (&empty), "empty");
}

static void
test_encode (void **state)
{
    (void) state;
    bus_wire_t *wire = bus_wire_new (ARENA);
    assert_non_null (wire);
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "m";
    send.recipient = "r";
    send.intent = "message";
    //  Bigger than the first output buffer (4096), so it must grow.
    static uint8_t big [10000];
    memset (big, 'x', sizeof big);
    send.has_payload = true;
    send.payload.data = big;
    send.payload.len = sizeof big;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &send;
    const uint8_t *data;
    size_t size;
    bus_error_t err;
    assert_int_equal (bus_wire_encode (wire, &frame, &data, &size, &err), 0);
    assert_int_equal (size, bulkhead__v1__frame__get_packed_size (&frame));
    //  What encode gives, decode takes back.
    Bulkhead__V1__Frame *got;
    uint8_t *copy = malloc (size);
    memcpy (copy, data, size);
    assert_int_equal (bus_wire_decode (wire, copy, size, &got, &err), 0);
    assert_int_equal (got->send->payload.len, sizeof big);
    free (copy);
    bus_wire_destroy (&wire);
    bus_wire_destroy (&wire);                   //  idempotent
    bus_wire_destroy (NULL);
}

static void
test_garbage (void **state)
{
    (void) state;
    //  Truncated length, bad wire type, a varint that never ends.
    s_expect_malformed ("\x1a\x05" "ab", 4, "is not a bulkhead.v1.Frame");
    s_expect_malformed ("\x0f", 1, "is not a bulkhead.v1.Frame");
    s_expect_malformed ("\x0a\x02\x08\xff", 4, "is not a bulkhead.v1.Frame");
    s_expect_malformed ("GET / HTTP/1.1\r\n\r\n", 18, "");
    //  A Hello without its required version.
    s_expect_malformed ("\x0a\x00", 2, "is not a bulkhead.v1.Frame");

    //  Random bytes: never accepted unless they happen to be canonical, and
    //  never a crash. The seed is printed so a failure can be replayed.
    unsigned seed = getenv ("TEST_SEED")? (unsigned) atoi (getenv ("TEST_SEED"))
                                         : (unsigned) time (NULL);
    printf ("test_garbage: seed %u (TEST_SEED=%u to replay)\n", seed, seed);
    srand (seed);
    bus_wire_t *wire = bus_wire_new (4096);
    assert_non_null (wire);
    uint8_t buffer [256];
    for (int round = 0; round < 20000; round++) {
        size_t size = (size_t) (rand () % (int) sizeof buffer);
        for (size_t i = 0; i < size; i++) {
            buffer [i] = (uint8_t) rand ();
        }
        Bulkhead__V1__Frame *frame = NULL;
        bus_error_t err = { 0 };
        if (bus_wire_decode (wire, buffer, size, &frame, &err) == 0) {
            //  If it was accepted, it is exactly its own encoding.
            size_t again;
            uint8_t *packed = bus_wire_pack (frame, &again);
            assert_int_equal (again, size);
            assert_memory_equal (packed, buffer, size);
            free (packed);
        }
        else {
            assert_int_equal (err.code, BUS_EMALFORMED);
        }
    }
    bus_wire_destroy (&wire);
}

static void
test_empty (void **state)
{
    (void) state;
    //  Zero bytes decode to a Frame with no body.
    s_expect_malformed ("", 0, "frame has no body");
}

//  "\x1a" LEN SEND-BYTES: a Frame whose body is the Send bytes given.
static size_t
s_wrap_send (uint8_t *out, const uint8_t *send, size_t len)
{
    assert_true (len < 128);
    out [0] = 0x1a;
    out [1] = (uint8_t) len;
    memcpy (out + 2, send, len);
    return len + 2;
}

//  A minimal valid Send's bytes: message_id "m", recipient "b", intent "message".
static const uint8_t s_send_min [] = {
    0x0a, 1, 'm', 0x12, 1, 'b', 0x1a, 7, 'm', 'e', 's', 's', 'a', 'g', 'e'
};

static void
test_minimal_send_accepted (void **state)
{
    (void) state;
    uint8_t frame [128];
    size_t size = s_wrap_send (frame, s_send_min, sizeof s_send_min);
    bus_wire_t *wire;
    Bulkhead__V1__Frame *got;
    bus_error_t err;
    assert_int_equal (s_decode (&wire, frame, size, &got, &err), 0);
    assert_string_equal (got->send->recipient, "b");
    bus_wire_destroy (&wire);
}

static void
test_unknown_field (void **state)
{
    (void) state;
    uint8_t send [64], frame [128];
    //  In the body: field 50, varint 1 (tag 50 << 3 = 400 = 0x90 0x03).
    memcpy (send, s_send_min, sizeof s_send_min);
    size_t len = sizeof s_send_min;
    send [len++] = 0x90;
    send [len++] = 0x03;
    send [len++] = 0x01;
    size_t size = s_wrap_send (frame, send, len);
    s_expect_malformed (frame, size, "send frame has fields this protocol does not know");

    //  In the frame itself: field 99, varint 1 (99 << 3 = 792 = 0x98 0x06).
    size = s_wrap_send (frame, s_send_min, sizeof s_send_min);
    frame [size++] = 0x98;
    frame [size++] = 0x06;
    frame [size++] = 0x01;
    s_expect_malformed (frame, size, "fields this protocol does not know");

    //  A known field number with the wrong wire type: recipient (2) as a varint.
    memcpy (send, s_send_min, sizeof s_send_min);
    len = sizeof s_send_min;
    send [len++] = 0x10;
    send [len++] = 0x05;
    size = s_wrap_send (frame, send, len);
    s_expect_malformed (frame, size, "");
}

static void
test_nul_in_string (void **state)
{
    (void) state;
    //  recipient "agentB\0evil": C would read "agentB".
    uint8_t send [64] = { 0x0a, 1, 'm', 0x12, 11, 'a', 'g', 'e', 'n', 't', 'B', 0, 'e', 'v', 'i', 'l',
                          0x1a, 7, 'm', 'e', 's', 's', 'a', 'g', 'e' };
    uint8_t frame [128];
    size_t size = s_wrap_send (frame, send, 25);
    s_expect_malformed (frame, size, "not canonical");
    //  The same in message_id, and in an optional string (action, field 4).
    uint8_t send2 [64] = { 0x0a, 3, 'm', 0, 'x', 0x12, 1, 'b', 0x1a, 7, 'm', 'e', 's', 's', 'a', 'g', 'e' };
    size = s_wrap_send (frame, send2, 17);
    s_expect_malformed (frame, size, "not canonical");
    uint8_t send3 [64];
    memcpy (send3, s_send_min, sizeof s_send_min);
    memcpy (send3 + sizeof s_send_min, "\x22\x03" "a\0b", 5);
    size = s_wrap_send (frame, send3, sizeof s_send_min + 5);
    s_expect_malformed (frame, size, "not canonical");
}

static void
test_duplicate_field (void **state)
{
    (void) state;
    //  recipient twice ("b" then "c"): protobuf keeps the last; the bytes
    //  then re-encode shorter, so the frame is refused.
    uint8_t send [64], frame [128];
    memcpy (send, s_send_min, sizeof s_send_min);
    memcpy (send + sizeof s_send_min, "\x12\x01" "c", 3);
    size_t size = s_wrap_send (frame, send, sizeof s_send_min + 3);
    s_expect_malformed (frame, size, "send frame is not canonical");

    //  Two bodies in one frame: a hello, then a ping. The oneof keeps one.
    uint8_t two [] = { 0x0a, 0x02, 0x08, 0x01, 0x42, 0x00 };
    s_expect_malformed (two, sizeof two, "not canonical");

    //  A varint written in more bytes than needed: version 1 as 0x81 0x00.
    uint8_t padded [] = { 0x0a, 0x03, 0x08, 0x81, 0x00 };
    s_expect_malformed (padded, sizeof padded, "hello frame is not canonical");
}

static void
test_arena_exhausted (void **state)
{
    (void) state;
    //  1000 causes of two bytes each decode to 8000 bytes of uint64: more
    //  than a 4 KiB arena, from a frame of about 2 KiB.
    enum { CAUSES = 1000 };
    uint8_t *frame = malloc (4 * CAUSES + 64);
    size_t size = 0;
    uint8_t body [4 * CAUSES + 32];
    size_t len = 0;
    memcpy (body, s_send_min, sizeof s_send_min);
    len = sizeof s_send_min;
    //  Unpacked, as proto2 writes them: tag 0x50, value 0x01.
    for (int i = 0; i < CAUSES; i++) {
        body [len++] = 0x50;
        body [len++] = 0x01;
    }
    //  Frame: 0x1a, varint length, body.
    frame [size++] = 0x1a;
    frame [size++] = (uint8_t) (0x80 | (len & 0x7f));
    frame [size++] = (uint8_t) (len >> 7);
    memcpy (frame + size, body, len);
    size += len;

    bus_wire_t *wire = bus_wire_new (4096);
    assert_non_null (wire);
    Bulkhead__V1__Frame *got = NULL;
    bus_error_t err = { 0 };
    assert_int_equal (bus_wire_decode (wire, frame, size, &got, &err), -1);
    assert_int_equal (err.code, BUS_EMALFORMED);
    assert_non_null (strstr (err.text, "decodes to more than 4096 bytes"));

    //  The same decoder takes a normal frame next: the arena was reset.
    uint8_t small [64];
    size_t small_size = s_wrap_send (small, s_send_min, sizeof s_send_min);
    assert_int_equal (bus_wire_decode (wire, small, small_size, &got, &err), 0);
    assert_string_equal (got->send->message_id, "m");

    //  And with a big enough arena the big one is fine (it is canonical).
    bus_wire_t *roomy = bus_wire_new (64 * 1024);
    assert_int_equal (bus_wire_decode (roomy, frame, size, &got, &err), 0);
    assert_int_equal (got->send->n_causes, CAUSES);
    bus_wire_destroy (&roomy);
    bus_wire_destroy (&wire);
    free (frame);
}

static void
test_text_valid (void **state)
{
    (void) state;
    assert_true (bus_text_valid ("", 10));
    assert_true (bus_text_valid ("plain ascii text", 100));
    assert_true (bus_text_valid ("tab\tand\nnewline", 100));
    assert_true (bus_text_valid ("caf\xc3\xa9", 100));                 //  é, 2 bytes
    assert_true (bus_text_valid ("\xe6\x97\xa5\xe6\x9c\xac", 100));     //  日本, 3 bytes each
    assert_true (bus_text_valid ("\xf0\x9f\x98\x80", 100));             //  U+1F600, 4 bytes
    assert_true (bus_text_valid ("\xf4\x8f\xbf\xbf", 100));             //  U+10FFFF, the last
    assert_true (bus_text_valid ("\xed\x9f\xbf", 100));                 //  U+D7FF, before surrogates
    assert_true (bus_text_valid ("\xee\x80\x80", 100));                 //  U+E000, after them

    //  Overlong encodings of '/' (U+002F) and of U+07FF, U+FFFF.
    assert_false (bus_text_valid ("\xc0\xaf", 100));
    assert_false (bus_text_valid ("\xc1\xbf", 100));
    assert_false (bus_text_valid ("\xe0\x80\xaf", 100));
    assert_false (bus_text_valid ("\xe0\x9f\xbf", 100));
    assert_false (bus_text_valid ("\xf0\x80\x80\xaf", 100));
    assert_false (bus_text_valid ("\xf0\x8f\xbf\xbf", 100));
    //  Surrogates, and past U+10FFFF.
    assert_false (bus_text_valid ("\xed\xa0\x80", 100));                //  U+D800
    assert_false (bus_text_valid ("\xed\xbf\xbf", 100));                //  U+DFFF
    assert_false (bus_text_valid ("\xf4\x90\x80\x80", 100));            //  U+110000
    assert_false (bus_text_valid ("\xf5\x80\x80\x80", 100));
    assert_false (bus_text_valid ("\xff", 100));
    //  Truncated sequences, a lone continuation, a bad continuation.
    assert_false (bus_text_valid ("\xe6\x97", 100));
    assert_false (bus_text_valid ("ok\xc3", 100));
    assert_false (bus_text_valid ("\x80", 100));
    assert_false (bus_text_valid ("\xc3\x28", 100));
    assert_false (bus_text_valid ("\xf0\x9f\x98" "a", 100));
    //  Control bytes other than tab and newline, and DEL.
    assert_false (bus_text_valid ("a\x01" "b", 100));
    assert_false (bus_text_valid ("line\r\n", 100));
    assert_false (bus_text_valid ("\x1b[31mred", 100));
    assert_false (bus_text_valid ("\x7f", 100));
    //  The limit is in bytes, inclusive.
    assert_true (bus_text_valid ("abcde", 5));
    assert_false (bus_text_valid ("abcdef", 5));
    assert_true (bus_text_valid ("\xe6\x97\xa5", 3));
    assert_false (bus_text_valid ("\xe6\x97\xa5", 2));
    assert_true (bus_text_valid ("", 0));
    assert_false (bus_text_valid ("a", 0));
}

static void
test_id_valid (void **state)
{
    (void) state;
    assert_true (bus_id_valid ("m1", 128));
    assert_true (bus_id_valid ("0b9f-42_x.y:z/~!", 128));
    assert_false (bus_id_valid ("", 128));
    assert_false (bus_id_valid ("a b", 128));
    assert_false (bus_id_valid ("tab\there", 128));
    assert_false (bus_id_valid ("new\nline", 128));
    assert_false (bus_id_valid ("\x7f", 128));
    assert_false (bus_id_valid ("caf\xc3\xa9", 128));
    assert_true (bus_id_valid ("abcd", 4));
    assert_false (bus_id_valid ("abcde", 4));
    char long_id [200];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    assert_false (bus_id_valid (long_id, 128));
    long_id [128] = 0;
    assert_true (bus_id_valid (long_id, 128));
}


//  A bundle writes the bytes protobuf-c packs for a Bundle of the same
//  frames, whose sizes cross the varint boundaries (127/128 bytes a
//  member, 16,383/16,384 the body); bus_bundle_with predicts each sealed
//  size; one frame seals to itself; reset keeps or frees the list.
static void
test_bundle (void **state)
{
    (void) state;
    static const size_t sizes [] = { 1, 127, 128, 300, 16000, 383, 1, 16384 };
    enum { N = sizeof sizes / sizeof sizes [0] };
    uint8_t *frames [N];
    for (size_t i = 0; i < N; i++) {
        frames [i] = malloc (sizes [i]);
        assert_non_null (frames [i]);
        for (size_t j = 0; j < sizes [i]; j++) {
            frames [i] [j] = (uint8_t) (i * 31 + j);
        }
    }
    bus_bundle_t bundle = { 0 };
    for (size_t n = 1; n <= N; n++) {
        size_t predicted = bus_bundle_with (&bundle, sizes [n - 1]);
        assert_int_equal (bus_bundle_add (&bundle, frames [n - 1], sizes [n - 1]), 0);
        assert_int_equal (bundle.count, n);
        size_t size = bus_bundle_size (&bundle);
        assert_int_equal (size, predicted);
        uint8_t *data = malloc (size);
        assert_non_null (data);
        bus_bundle_write (&bundle, data);
        if (n == 1) {
            assert_int_equal (size, sizes [0]);
            assert_memory_equal (data, frames [0], size);
            free (data);
            continue;
        }
        //  The bus reads it in place: the same frames, in order.
        bus_bundle_reader_t reader;
        size_t count;
        bus_error_t err;
        assert_int_equal (bus_bundle_open (&reader, data, size, &count, &err), 0);
        assert_int_equal (count, n);
        const uint8_t *member;
        size_t member_size;
        for (size_t i = 0; i < n; i++) {
            assert_true (bus_bundle_next (&reader, &member, &member_size));
            assert_int_equal (member_size, sizes [i]);
            assert_memory_equal (member, frames [i], sizes [i]);
        }
        assert_false (bus_bundle_next (&reader, &member, &member_size));
        ProtobufCBinaryData members [N];
        for (size_t i = 0; i < n; i++) {
            members [i] = (ProtobufCBinaryData) { sizes [i], frames [i] };
        }
        Bulkhead__V1__Bundle body = BULKHEAD__V1__BUNDLE__INIT;
        body.n_frames = n;
        body.frames = members;
        Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
        frame.body_case = BULKHEAD__V1__FRAME__BODY_BUNDLE;
        frame.bundle = &body;
        size_t want = bulkhead__v1__frame__get_packed_size (&frame);
        uint8_t *packed = malloc (want);
        assert_non_null (packed);
        bulkhead__v1__frame__pack (&frame, packed);
        assert_int_equal (size, want);
        assert_memory_equal (data, packed, size);
        free (packed);
        //  And it decodes back to the same frames.
        Bulkhead__V1__Frame *decoded = bulkhead__v1__frame__unpack (NULL, size, data);
        assert_non_null (decoded);
        assert_int_equal (decoded->body_case, BULKHEAD__V1__FRAME__BODY_BUNDLE);
        assert_int_equal (decoded->bundle->n_frames, n);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal (decoded->bundle->frames [i].len, sizes [i]);
            assert_memory_equal (decoded->bundle->frames [i].data, frames [i], sizes [i]);
        }
        bulkhead__v1__frame__free_unpacked (decoded, NULL);
        free (data);
    }
    bus_bundle_reset (&bundle, 1000);
    assert_non_null (bundle.parts);         //  kept: under the limit
    assert_int_equal (bundle.count, 0);
    assert_int_equal (bus_bundle_size (&bundle), 0);
    assert_int_equal (bus_bundle_with (&bundle, 10), 10);
    bus_bundle_reset (&bundle, 0);
    assert_null (bundle.parts);
    for (size_t i = 0; i < N; i++) {
        free (frames [i]);
    }
}

//  Agents may not send a Bundle: the bus's dispatch refuses the body, but
//  the decoder must take it apart like any other (bounded, canonical).
static void
test_bundle_decodes_bounded (void **state)
{
    (void) state;
    bus_bundle_t bundle = { 0 };
    uint8_t member [64] = { 0x22, 0x00 };       //  a Frame: empty Send
    for (int i = 0; i < 2000; i++) {
        assert_int_equal (bus_bundle_add (&bundle, member, 2), 0);
    }
    size_t size = bus_bundle_size (&bundle);
    uint8_t *data = malloc (size);
    assert_non_null (data);
    bus_bundle_write (&bundle, data);
    bus_wire_t *wire = bus_wire_new (4096);
    assert_non_null (wire);
    Bulkhead__V1__Frame *frame;
    bus_error_t err;
    //  2,000 members of 2 bytes decode to more than a 4 KiB arena.
    assert_int_equal (bus_wire_decode (wire, data, size, &frame, &err), -1);
    assert_int_equal (err.code, BUS_EMALFORMED);
    bus_wire_destroy (&wire);
    bus_bundle_reset (&bundle, 0);
    free (data);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_hello),
        cmocka_unit_test (test_welcome),
        cmocka_unit_test (test_send),
        cmocka_unit_test (test_ack_and_error),
        cmocka_unit_test (test_deliver_and_delivery_ack),
        cmocka_unit_test (test_ping_pong),
        cmocka_unit_test (test_control),
        cmocka_unit_test (test_pending),
        cmocka_unit_test (test_hold_update),
        cmocka_unit_test (test_alert),
        cmocka_unit_test (test_every_body_covered),
        cmocka_unit_test (test_encode),
        cmocka_unit_test (test_garbage),
        cmocka_unit_test (test_empty),
        cmocka_unit_test (test_minimal_send_accepted),
        cmocka_unit_test (test_unknown_field),
        cmocka_unit_test (test_nul_in_string),
        cmocka_unit_test (test_duplicate_field),
        cmocka_unit_test (test_arena_exhausted),
        cmocka_unit_test (test_text_valid),
        cmocka_unit_test (test_id_valid),
        cmocka_unit_test (test_bundle),
        cmocka_unit_test (test_bundle_body),
        cmocka_unit_test (test_bundle_read),
        cmocka_unit_test (test_bundle_decodes_bounded),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
