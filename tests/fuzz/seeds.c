/*  seeds.c: writes the seed corpora of the fuzz targets (make fuzz-seeds).

        seeds WIRE_DIR RECORD_DIR

    Frames of every body agents send, the bodies only the bus sends, and a
    few the bus must refuse (packed causes, a field given twice, an unknown
    field, a string with a NUL); log records of every kind, with the text an
    agent could have put in them (escapes, C1, bidi, tags, bytes that are
    not UTF-8). The output is the same on every run, so the committed files
    change only when this program does. Policy seeds are text files, kept
    as they are in tests/fuzz/policy/.
*/
#include "bulkhead.pb-c.h"
#include "record.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_dir;

static void
s_write (const char *name, const void *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/seed-%s", s_dir, name);
    FILE *file = fopen (path, "wb");
    if (!file || fwrite (data, 1, size, file) != size || fclose (file) != 0) {
        perror (path);
        exit (1);
    }
}

static void
s_frame (const char *name, const Bulkhead__V1__Frame *frame)
{
    size_t size = bulkhead__v1__frame__get_packed_size (frame);
    uint8_t *out = malloc (size + 64);
    bulkhead__v1__frame__pack (frame, out);
    s_write (name, out, size);
    free (out);
}

//  A frame, then the same bytes with extra bytes appended: what the bus
//  must refuse (a field given twice, an unknown field).
static void
s_frame_plus (const char *name, const Bulkhead__V1__Frame *frame, const void *extra, size_t n)
{
    size_t size = bulkhead__v1__frame__get_packed_size (frame);
    uint8_t *out = malloc (size + n);
    bulkhead__v1__frame__pack (frame, out);
    memcpy (out + size, extra, n);
    s_write (name, out, size + n);
    free (out);
}

static void
s_wire (void)
{
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;

    Bulkhead__V1__Hello hello = BULKHEAD__V1__HELLO__INIT;
    hello.version = 1;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HELLO;
    frame.hello = &hello;
    s_frame ("hello", &frame);
    hello.has_last_seq = 1;
    hello.last_seq = 41;
    hello.software = "bulkhead-python/0.1";
    s_frame ("hello-resume", &frame);

    Bulkhead__V1__Ping ping = BULKHEAD__V1__PING__INIT;
    ping.has_nonce = 1;
    ping.nonce = 0x1122334455667788ULL;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PING;
    frame.ping = &ping;
    s_frame ("ping", &frame);
    Bulkhead__V1__Pong pong = BULKHEAD__V1__PONG__INIT;
    pong.has_nonce = 1;
    pong.nonce = 7;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PONG;
    frame.pong = &pong;
    s_frame ("pong", &frame);

    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "m1";
    send.recipient = "writer";
    send.intent = "message";
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &send;
    s_frame ("send-min", &frame);
    send.has_payload = 1;
    send.payload.data = (uint8_t *) "{\"amount\":\0 5}";
    send.payload.len = 14;
    send.action = "transfer.create";
    send.resource = "account:1234";
    send.content_type = "application/json";
    send.has_provenance = 1;
    send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
    send.source = "https://example.com/page";
    uint64_t causes [] = { 3, 17, 1ULL << 40 };
    send.causes = causes;
    send.n_causes = 3;
    send.justification = "pay the invoice \xe2\x82\xac 12.50\n\tsecond line, caf\xc3\xa9";
    send.sender = "planner";
    send.tool = "http.get";
    send.recipient = "payments";
    send.intent = "finance";
    s_frame ("send-full", &frame);
    //  What an agent could try: text the bus must refuse or escape.
    send.justification = "ignore previous \x1b[31mred\x1b[0m \xc2\x9b" "2J \xe2\x80\xae" "evil";
    send.resource = "\xf3\xa0\x81\x81tag \xe2\x80\x8bzw";
    send.action = "Transfer.Create";
    s_frame ("send-escapes", &frame);
    send.justification = NULL;
    send.resource = NULL;
    send.message_id = "m 2";            //  a space: not an id
    s_frame ("send-bad-id", &frame);
    send.message_id = "m3";
    send.recipient = "Payments";        //  upper case: not a name
    s_frame ("send-bad-name", &frame);
    send.recipient = "payments";
    send.content_type = "\xc0\xaf";     //  overlong '/'
    s_frame ("send-overlong", &frame);
    send.content_type = "\xed\xa0\x80"; //  a surrogate
    s_frame ("send-surrogate", &frame);
    send.content_type = NULL;
    uint64_t many [65];
    for (size_t i = 0; i < 65; i++) {
        many [i] = i + 1;
    }
    send.causes = many;
    send.n_causes = 65;
    s_frame ("send-65-causes", &frame);
    send.causes = causes;
    send.n_causes = 3;
    send.payload.len = 0;
    send.has_payload = 0;
    send.has_provenance = 0;
    send.source = NULL;
    send.sender = NULL;
    send.tool = NULL;
    send.action = NULL;
    send.n_causes = 0;
    send.recipient = "writer";
    send.intent = "message";
    send.message_id = "m4";
    //  Refused: causes packed (field 10, wire type 2), a field given twice
    //  (intent again), an unknown field (99), a NUL inside a string.
    {
        size_t size = bulkhead__v1__frame__get_packed_size (&frame);
        uint8_t *out = malloc (size + 32);
        bulkhead__v1__frame__pack (&frame, out);
        //  out = 1a LEN <send bytes>; append to the send body and fix LEN.
        static const uint8_t packed_causes [] = { 0x52, 0x02, 0x03, 0x11 };
        static const uint8_t twice [] = { 0x1a, 0x03, 'm', 's', 'g' };
        static const uint8_t unknown [] = { 0x98, 0x06, 0x01 };
        const struct { const char *name; const uint8_t *bytes; size_t n; } extra [] = {
            { "send-packed-causes", packed_causes, sizeof packed_causes },
            { "send-intent-twice", twice, sizeof twice },
            { "send-unknown-field", unknown, sizeof unknown },
        };
        for (size_t e = 0; e < 3; e++) {
            uint8_t *bad = malloc (size + extra [e].n);
            memcpy (bad, out, size);
            memcpy (bad + size, extra [e].bytes, extra [e].n);
            bad [1] = (uint8_t) (bad [1] + extra [e].n);        //  body < 128 bytes
            s_write (extra [e].name, bad, size + extra [e].n);
            free (bad);
        }
        free (out);
    }
    static const uint8_t unknown_top [] = { 0xf8, 0x07, 0x01 };
    s_frame_plus ("send-unknown-top", &frame, unknown_top, sizeof unknown_top);
    static const uint8_t nul_id [] = {
        0x1a, 0x15, 0x0a, 0x04, 'm', 0, 'x', 'y', 0x12, 0x06, 'w', 'r', 'i', 't', 'e', 'r',
        0x1a, 0x05, 'q', 'u', 'e', 'r', 'y'
    };
    s_write ("send-nul-in-id", nul_id, sizeof nul_id);

    Bulkhead__V1__DeliveryAck dack = BULKHEAD__V1__DELIVERY_ACK__INIT;
    dack.up_to = 12345;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK;
    frame.delivery_ack = &dack;
    s_frame ("delivery-ack", &frame);

    //  An agent's Bundle: a Send and a DeliveryAck, each a packed Frame.
    {
        Bulkhead__V1__Frame member = BULKHEAD__V1__FRAME__INIT;
        member.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
        member.send = &send;
        uint8_t one [256], two [64];
        size_t one_size = bulkhead__v1__frame__pack (&member, one);
        size_t two_size = bulkhead__v1__frame__pack (&frame, two);
        ProtobufCBinaryData members [] = { { one_size, one }, { two_size, two } };
        Bulkhead__V1__Bundle bundle = BULKHEAD__V1__BUNDLE__INIT;
        bundle.n_frames = 2;
        bundle.frames = members;
        Bulkhead__V1__Frame outer = BULKHEAD__V1__FRAME__INIT;
        outer.body_case = BULKHEAD__V1__FRAME__BODY_BUNDLE;
        outer.bundle = &bundle;
        s_frame ("bundle", &outer);
    }

    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL;
    frame.control = &control;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD;
    s_frame ("control-reload", &frame);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    s_frame ("control-list-pending", &frame);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    control.id = "a-1";
    control.has_digest = 1;
    control.digest.data = (uint8_t *) "0123456789abcdef0123456789abcdef";
    control.digest.len = 32;
    control.reason = "looks right";
    s_frame ("control-approve", &frame);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
    control.reason = "no \xe2\x80\xae thanks\x07";
    s_frame ("control-deny", &frame);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT;
    control.id = NULL;
    control.has_digest = 0;
    control.reason = "standing grant";
    control.agent = "planner";
    control.recipient = "payments";
    control.intent_class = "finance";
    control.action = "payment.send";
    control.has_count = 1;
    control.count = 5;
    control.has_minutes = 1;
    control.minutes = 60;
    s_frame ("control-grant", &frame);
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_CLEAR_TAINT;
    control.recipient = control.intent_class = control.action = NULL;
    control.has_count = control.has_minutes = 0;
    control.agent = "web-reader";
    s_frame ("control-clear-taint", &frame);
    control.op = (Bulkhead__V1__ControlOp) 9;       //  DECLASSIFY
    control.agent = NULL;
    control.has_seq = 1;
    control.seq = 42;
    control.reason = "checked by hand";
    s_frame ("control-declassify", &frame);

    //  Bodies only the bus sends: decoded too (the bus refuses them).
    Bulkhead__V1__Reach reach = BULKHEAD__V1__REACH__INIT;
    char *intents [] = { "message", "query" };
    reach.recipient = "writer";
    reach.intents = intents;
    reach.n_intents = 2;
    Bulkhead__V1__Reach *reaches [] = { &reach, &reach };
    Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
    welcome.agent = "planner";
    welcome.version = 1;
    welcome.policy_hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    welcome.reach = reaches;
    welcome.n_reach = 2;
    welcome.has_resume_from = 1;
    welcome.resume_from = 9;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
    frame.welcome = &welcome;
    s_frame ("welcome", &frame);

    Bulkhead__V1__Ack ack = BULKHEAD__V1__ACK__INIT;
    ack.message_id = "m1";
    ack.verdict = BULKHEAD__V1__VERDICT__VERDICT_HELD;
    ack.code = "OK";
    ack.reason = "held: finance needs 1 approval (alice, bob)";
    ack.has_seq = 1;
    ack.seq = 77;
    ack.approval_id = "h-77";
    ack.intent_class = "finance";
    ack.has_restricted = 1;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ACK;
    frame.ack = &ack;
    s_frame ("ack", &frame);

    Bulkhead__V1__Approval approval = BULKHEAD__V1__APPROVAL__INIT;
    approval.approver = "alice";
    approval.time_us = 1700000000000000ULL;
    Bulkhead__V1__Approval *approvals [] = { &approval };
    Bulkhead__V1__Deliver deliver = BULKHEAD__V1__DELIVER__INIT;
    deliver.seq = 78;
    deliver.sender = "planner";
    deliver.message_id = "m1";
    deliver.intent = "finance";
    deliver.intent_class = "finance";
    deliver.action = "transfer.create";
    deliver.has_payload = 1;
    deliver.payload.data = (uint8_t *) "pay";
    deliver.payload.len = 3;
    deliver.causes = causes;
    deliver.n_causes = 2;
    deliver.approvals = approvals;
    deliver.n_approvals = 1;
    deliver.has_time_us = 1;
    deliver.time_us = 1700000000000001ULL;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVER;
    frame.deliver = &deliver;
    s_frame ("deliver", &frame);

    Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
    error.code = "MALFORMED";
    error.reason = "frame of 3 bytes is not a bulkhead.v1.Frame";
    error.message_id = "m9";
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
    frame.error = &error;
    s_frame ("error", &frame);

    Bulkhead__V1__Pending pending = BULKHEAD__V1__PENDING__INIT;
    pending.approval_id = "h-77";
    pending.sender = "planner";
    pending.recipient = "payments";
    pending.intent_class = "finance";
    pending.action = "transfer.create";
    pending.justification = "rent";
    pending.digest.data = (uint8_t *) "0123456789abcdef0123456789abcdef";
    pending.digest.len = 32;
    pending.has_seq = 1;
    pending.seq = 77;
    char *votes [] = { "alice" };
    pending.votes = votes;
    pending.n_votes = 1;
    Bulkhead__V1__Pending *pendings [] = { &pending };
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PENDING;
    frame.pending = &pending;
    s_frame ("pending", &frame);

    Bulkhead__V1__Alert alert = BULKHEAD__V1__ALERT__INIT;
    uint64_t evidence [] = { 21, 17, 13 };
    alert.id = "a-0123456789abcdef";
    alert.kind = "loop";
    alert.subject = "planner>worker";
    alert.text = "a cycle of causes: planner -> worker 4 times along one chain";
    alert.evidence = evidence;
    alert.n_evidence = 3;
    alert.opened_us = 1700000000000000ULL;
    alert.has_seq = 1;
    alert.seq = 22;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ALERT;
    frame.alert = &alert;
    s_frame ("alert", &frame);

    Bulkhead__V1__ControlReply reply = BULKHEAD__V1__CONTROL_REPLY__INIT;
    char *lines [] = { "one", "two" };
    reply.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    reply.code = "OK";
    reply.reason = "1 pending";
    reply.lines = lines;
    reply.n_lines = 2;
    reply.pending = pendings;
    reply.n_pending = 1;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY;
    frame.control_reply = &reply;
    s_frame ("control-reply", &frame);

    static const uint8_t empty_frame [] = { 0 };
    s_write ("empty", empty_frame, 0);
}

static void
s_record (const char *name, const Bulkhead__V1__Record *rec)
{
    size_t size = bulkhead__v1__record__get_packed_size (rec);
    uint8_t *out = malloc (size + 1);
    bulkhead__v1__record__pack (rec, out);
    s_write (name, out, size);
    free (out);
}

static void
s_records (void)
{
    static uint8_t zeros [32], digest [32];
    for (size_t i = 0; i < 32; i++) {
        digest [i] = (uint8_t) (i * 37 + 11);
    }
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.seq = 1;
    rec.time_us = 1700000000000000ULL;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_BUS;
    rec.prev_hash.data = zeros;
    rec.prev_hash.len = 32;
    rec.policy_hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    rec.event = "start";
    s_record ("bus-start", &rec);

    rec.seq = 2;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_POLICY;
    rec.event = "loaded policy.cfg: 4 agents, 3 edges";
    rec.prev_hash.data = digest;
    s_record ("policy", &rec);

    rec.seq = 3;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_SESSION;
    rec.sender = "planner";
    rec.key_fp = "0123456789abcdef";
    rec.event = "hello, resume after 0";
    s_record ("session", &rec);

    rec.seq = 4;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
    rec.event = NULL;
    rec.recipient = "payments";
    rec.intent = "payment";
    rec.intent_class = "finance";
    rec.action = "transfer.create";
    rec.resource = "account:1234";
    rec.tool = "http.post";
    rec.content_type = "application/json";
    rec.message_id = "m1";
    uint64_t causes [] = { 2, 3 };
    rec.causes = causes;
    rec.n_causes = 2;
    rec.justification = "pay the rent\nsecond line\twith a tab, caf\xc3\xa9 \xf0\x9f\x98\x80";
    rec.has_payload_digest = 1;
    rec.payload_digest.data = digest;
    rec.payload_digest.len = 32;
    rec.has_payload = 1;
    rec.payload.data = (uint8_t *) "{\"amount\": 5}\0\xff";
    rec.payload.len = 15;
    rec.has_verdict = 1;
    rec.verdict = 3;
    rec.code = "OK";
    rec.reason = "held: finance needs 1 approval (alice)";
    rec.approval_id = "h-4";
    rec.has_restricted = 1;
    rec.restricted = 0;
    rec.restricted_why = "not restricted: trusted sender";
    s_record ("send-held", &rec);

    rec.seq = 5;
    rec.verdict = 4;
    rec.code = "RESTRICTED";
    rec.restricted = 1;
    rec.reason = "restricted content may not trigger \"finance\" (cause seq 3)";
    rec.restricted_why = "cause seq 3 is restricted";
    rec.justification = "\x1b]0;owned\x07\x1b[2J\xc2\x9b" "31m \xe2\x80\xae" "gnp.exe \xe2\x81\xa6x\xe2\x81\xa9";
    rec.resource = "\xf3\xa0\x81\x81\xf3\xa0\x81\xbf tag chars, \xef\xbb\xbf bom, \xe2\x80\x8b zw";
    rec.action = "\\x1b not an escape \\[3 more bytes]";
    rec.tool = "\xff\xfe\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82";
    rec.message_id = "m\"2\"";
    s_record ("send-denied-escapes", &rec);

    rec.seq = 6;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_HOLD;
    rec.actor = "alice";
    rec.has_votes = rec.has_quorum = 1;
    rec.votes = 1;
    rec.quorum = 2;
    rec.has_hold_state = 1;
    rec.hold_state = 1;
    char *approvers [] = { "alice", "b\xc3\xb6" "b" };
    rec.approvers = approvers;
    rec.n_approvers = 2;
    rec.has_ref_seq = 1;
    rec.ref_seq = 4;
    rec.has_remaining = 1;
    rec.remaining = 3;
    rec.event = "approved";
    s_record ("hold", &rec);

    Bulkhead__V1__Record small = BULKHEAD__V1__RECORD__INIT;
    small.seq = 7;
    small.time_us = 18446744073709551615ULL;        //  the largest time
    small.kind = BULKHEAD__V1__RECORD_KIND__RECORD_DELIVERY_ACK;
    small.prev_hash.data = digest;
    small.prev_hash.len = 32;
    small.sender = "writer";
    small.has_ref_seq = 1;
    small.ref_seq = 4;
    s_record ("delivery-ack", &small);

    small.seq = 8;
    small.time_us = 1700000000123456ULL;
    small.kind = BULKHEAD__V1__RECORD_KIND__RECORD_CONTROL;
    small.sender = "ops";
    small.actor = "ops";
    small.code = "OK";
    small.event = "clear-taint web-reader";
    small.reason = "checked the page by hand";
    s_record ("control", &small);

    small.seq = 9;
    small.kind = BULKHEAD__V1__RECORD_KIND__RECORD_ERROR;
    small.actor = NULL;
    small.sender = NULL;
    small.key_fp = "fedcba9876543210";
    small.code = "MALFORMED";
    small.event = NULL;
    small.reason = "send frame is not canonical (12 bytes re-encode to 10 other bytes)";
    s_record ("error", &small);

    small.seq = 10;
    small.kind = (Bulkhead__V1__RecordKind) 42;     //  a kind of a later version
    small.reason = NULL;
    small.code = NULL;
    small.has_verdict = 1;
    small.verdict = 99;
    s_record ("unknown-kind", &small);

    small.seq = 11;
    small.kind = BULKHEAD__V1__RECORD_KIND__RECORD_ALERT;
    small.has_verdict = 0;
    small.key_fp = NULL;
    small.sender = "planner";
    small.recipient = "worker";
    small.code = "OK";
    small.event = "opened";
    small.reason = "a cycle of causes: planner -> worker 4 times along one chain";
    uint64_t evidence [] = { 21, 17, 13, 9 };
    small.alert_id = "a-0123456789abcdef";
    small.alert_kind = "loop";
    small.alert_subject = "planner>worker";
    small.evidence = evidence;
    small.n_evidence = 4;
    small.has_opened_us = 1;
    small.opened_us = 1700000000000000ULL;
    s_record ("alert", &small);
}

int
main (int argc, char **argv)
{
    if (argc != 3) {
        fprintf (stderr, "usage: seeds WIRE_DIR RECORD_DIR\n");
        return 2;
    }
    s_dir = argv [1];
    s_wire ();
    s_dir = argv [2];
    s_records ();
    return 0;
}
