/*  e2e_bus.c: the bus over real sockets (ipc and tcp on loopback), real
    CURVE, real LMDB, the real `bulkhead serve` binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_keys.h"
#include "bus_server.h"
#include "bus_store.h"
#include "bus_wire.h"
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const char *s_policy =
    "bus\n"
    "    max_frame = 4096\n"
    "agents\n"
    "    planner\n"
    "        key = @planner@\n"
    "    writer\n"
    "        key = @writer@\n"
    "    payments\n"
    "        key = @payments@\n"
    "    ops\n"
    "        key = @ops@\n"
    "        role = operator\n"
    "    chatty\n"
    "        key = @chatty@\n"
    "        rate = 2\n"
    "edges\n"
    "    chatty\n"
    "        writer = message\n"
    "    planner\n"
    "        writer = message, query\n"
    "        payments = finance\n"
    "    writer\n"
    "        planner = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  Sends and checks the reply's verdict word (or ERROR code) and ACK code.
static uint64_t
s_expect (bus_client_t *client, const char *to, const char *intent, const char *payload,
          const char *id, const char *verdict, const char *code)
{
    Bulkhead__V1__Frame *reply = harness_send (client, to, intent, payload, id);
    assert_non_null (reply);
    assert_string_equal (harness_code (reply), verdict);
    uint64_t seq = 0;
    if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        assert_string_equal (reply->ack->code, code);
        assert_true (reply->ack->reason [0] != 0);
        seq = reply->ack->seq;
    }
    bus_client_free (&reply);
    return seq;
}

static void
test_delivered_along_allowed_edge (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    assert_string_equal (bus_client_agent (planner), "planner");
    //  WELCOME lists what planner may reach.
    const Bulkhead__V1__Welcome *welcome = bus_client_welcome (planner);
    assert_int_equal (welcome->n_reach, 2);

    uint64_t seq = s_expect (planner, "writer", "message", "hello writer", "m1", "delivered", "OK");
    assert_true (seq > 0);
    Bulkhead__V1__Frame *frame = harness_deliver (writer, 5000);
    assert_non_null (frame);
    const Bulkhead__V1__Deliver *d = frame->deliver;
    assert_int_equal (d->seq, seq);
    assert_string_equal (d->sender, "planner");     //  authenticated, not claimed
    assert_string_equal (d->message_id, "m1");
    assert_int_equal (d->payload.len, strlen ("hello writer"));
    assert_memory_equal (d->payload.data, "hello writer", d->payload.len);
    assert_false (d->restricted);
    bus_client_free (&frame);

    //  And back along writer -> planner.
    s_expect (writer, "planner", "message", "hi", "w1", "delivered", "OK");
    frame = harness_deliver (planner, 5000);
    assert_non_null (frame);
    assert_string_equal (frame->deliver->sender, "writer");
    bus_client_free (&frame);
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
}

static void
test_denied_edges_and_intents (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    //  No edge writer -> payments.
    s_expect (writer, "payments", "finance", "pay", "d1", "denied", "DENIED");
    //  The edge planner -> writer does not allow finance.
    s_expect (planner, "writer", "finance", "pay", "d2", "denied", "INTENT");
    //  Nobody of that name.
    s_expect (planner, "nobody", "message", "x", "d3", "denied", "DENIED");
    //  Unknown intent name.
    s_expect (planner, "writer", "gossip", "x", "d4", "denied", "INTENT");
    //  Denied messages are never delivered.
    bus_client_t *payments = harness_agent (h, "payments");
    assert_null (harness_deliver (payments, 300));
    assert_null (harness_deliver (writer, 300));
    bus_client_destroy (&payments);

    //  Every one of them is in the log, with the policy that decided it.
    char *out = NULL;
    assert_int_equal (harness_run (h, &out, "log", "--data", h->data, "--kind", "send", "--json", NULL), 0);
    assert_non_null (strstr (out, "\"message_id\":\"d1\""));
    assert_non_null (strstr (out, "\"message_id\":\"d4\""));
    assert_non_null (strstr (out, "\"code\":\"INTENT\""));
    assert_non_null (strstr (out, "\"policy_hash\":\""));
    assert_non_null (strstr (out, "\"verdict\":\"denied\""));
    free (out);
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
}

static void
test_unknown_key_refused_at_handshake (void **state)
{
    harness_t *h = *state;
    bus_keypair_t stranger;
    bus_error_t err;
    char secret [512], public [512];
    snprintf (secret, sizeof secret, "%s/stranger.key", h->dir);
    snprintf (public, sizeof public, "%s/stranger.pub", h->dir);
    assert_int_equal (bus_keys_generate (&stranger, "stranger", &err), 0);
    assert_int_equal (bus_keys_save (&stranger, secret, public, &err), 0);
    bus_client_t *client = harness_connect (h, "stranger", &err);
    assert_null (client);
    assert_int_equal (err.code, BUS_EUNKNOWN);

    //  Logged, and everyone else keeps working.
    char *out = NULL;
    //  (Refused handshakes are counted per peer address: the first at once.)
    harness_run (h, &out, "log", "--data", h->data, "--kind", "error", NULL);
    assert_non_null (strstr (out, "handshake refused"));
    free (out);
    bus_client_t *planner = harness_agent (h, "planner");
    s_expect (planner, "writer", "message", "still here", NULL, "queued", "OK");
    bus_client_destroy (&planner);
}

static void
test_spoofed_sender_denied (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = "writer";
    send.intent = "message";
    send.message_id = "spoof1";
    send.sender = "writer";                     //  a lie
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_send (planner, &send, &reply, 5000, &err), 0);
    assert_string_equal (harness_code (reply), "denied");
    assert_string_equal (reply->ack->code, "SPOOF");
    bus_client_free (&reply);
    //  Claiming one's own name is fine.
    send.sender = "planner";
    send.message_id = "honest1";
    assert_int_equal (bus_client_send (planner, &send, &reply, 5000, &err), 0);
    assert_string_equal (reply->ack->code, "OK");
    bus_client_free (&reply);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--json", NULL);
    assert_non_null (strstr (out, "\"code\":\"SPOOF\""));
    free (out);
    bus_client_destroy (&planner);
}

static void
test_key_revoked_by_reload_stops_live_connection (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *ops = harness_agent (h, "ops");
    s_expect (planner, "writer", "message", "before", "r1", "queued", "OK");

    //  The same policy without planner (and its edges).
    const char *revoked =
        "agents\n"
        "    writer\n        key = @writer@\n"
        "    payments\n        key = @payments@\n"
        "    ops\n        key = @ops@\n        role = operator\n"
        "edges\n"
        "    writer\n        payments = message\n";
    assert_int_equal (harness_policy (h, revoked), 0);
    Bulkhead__V1__Frame *reply = harness_reload (ops);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);

    //  planner's connection is still open, but its key no longer works:
    //  nothing it sends is accepted, and nothing of any kind comes back.
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = "writer";
    send.intent = "message";
    send.message_id = "r2";
    bus_error_t err;
    assert_int_equal (bus_client_post (planner, &send, &err), 0);
    Bulkhead__V1__Frame *frame = NULL;
    assert_int_not_equal (bus_client_recv (planner, &frame, 500, &err), 0);
    assert_null (frame);
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "error", NULL);
    assert_non_null (strstr (out, "not in the live policy"));
    free (out);
    //  A non-operator cannot reload.
    bus_client_t *writer = harness_agent (h, "writer");
    reply = harness_reload (writer);
    assert_string_equal (reply->control_reply->code, "PERM");
    bus_client_free (&reply);
    bus_client_destroy (&writer);
    bus_client_destroy (&planner);
    bus_client_destroy (&ops);
}

static void
test_invalid_reload_keeps_old_policy (void **state)
{
    harness_t *h = *state;
    bus_client_t *ops = harness_agent (h, "ops");
    bus_client_t *planner = harness_agent (h, "planner");
    //  Keep the keys, break line 5 (an edge to an agent that is not there).
    assert_int_equal (harness_policy (h,
        "agents\n    planner\n        key = @planner@\n"
        "edges\n    planner\n        ghost = message\n"), 0);
    Bulkhead__V1__Frame *reply = harness_reload (ops);
    assert_string_equal (reply->control_reply->code, "POLICY");
    assert_non_null (strstr (reply->control_reply->reason, "policy.cfg:6:"));
    assert_non_null (strstr (reply->control_reply->reason, "ghost"));
    bus_client_free (&reply);
    //  The old policy is still in force.
    s_expect (planner, "writer", "message", "old policy", NULL, "queued", "OK");
    //  SIGHUP with the same bad file: refused too, bus still serving.
    kill (h->pid, SIGHUP);
    s_expect (planner, "writer", "message", "still old", NULL, "queued", "OK");
    bus_client_destroy (&planner);
    bus_client_destroy (&ops);
}

static void
test_offline_recipient_gets_mailbox_in_order (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    uint64_t seqs [5];
    for (int i = 0; i < 5; i++) {
        char payload [32];
        snprintf (payload, sizeof payload, "queued %d", i);
        seqs [i] = s_expect (planner, "writer", "message", payload, NULL, "queued", "OK");
    }
    bus_client_t *writer = harness_agent (h, "writer");
    for (int i = 0; i < 5; i++) {
        Bulkhead__V1__Frame *frame = harness_deliver (writer, 5000);
        assert_non_null (frame);
        assert_int_equal (frame->deliver->seq, seqs [i]);
        char payload [32];
        snprintf (payload, sizeof payload, "queued %d", i);
        assert_memory_equal (frame->deliver->payload.data, payload, strlen (payload));
        //  Acknowledge the first three only.
        if (i == 2) {
            bus_error_t err;
            assert_int_equal (bus_client_ack (writer, seqs [2], &err), 0);
        }
        bus_client_free (&frame);
    }
    //  A ping round-trip makes sure the bus has processed the ack.
    Bulkhead__V1__Frame *reply = harness_send (writer, "planner", "message", "sync", NULL);
    bus_client_free (&reply);
    bus_client_destroy (&writer);

    //  Reconnecting, it gets the two it did not acknowledge, in order.
    writer = harness_agent (h, "writer");
    for (int i = 3; i < 5; i++) {
        Bulkhead__V1__Frame *frame = harness_deliver (writer, 5000);
        assert_non_null (frame);
        assert_int_equal (frame->deliver->seq, seqs [i]);
        bus_client_free (&frame);
    }
    assert_null (harness_deliver (writer, 300));
    bus_client_destroy (&writer);
    bus_client_destroy (&planner);
}

//  A recipient that said HELLO and went away: the bus finds out at the next
//  push, logs the disconnect, and keeps the message for its next HELLO.
static void
test_disconnect_logged_and_nothing_lost (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    bus_client_destroy (&writer);
    //  The bus may not know yet: delivered (to a dead connection) or queued.
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", "while away", "away-1");
    assert_non_null (reply);
    assert_true (strcmp (harness_code (reply), "delivered") == 0
              || strcmp (harness_code (reply), "queued") == 0);
    uint64_t seq = reply->ack->seq;
    bus_client_free (&reply);
    //  One more round trip commits the disconnect record.
    s_expect (planner, "writer", "message", "second", "away-2", "queued", "OK");
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "session", NULL);
    assert_non_null (strstr (out, "writer disconnected"));
    free (out);
    writer = harness_agent (h, "writer");
    Bulkhead__V1__Frame *frame = harness_deliver (writer, 5000);
    assert_non_null (frame);
    assert_int_equal (frame->deliver->seq, seq);
    bus_client_free (&frame);
    bus_client_destroy (&writer);
    bus_client_destroy (&planner);
}

//  rate = 2: a burst of two, then the limit. The third of three messages
//  sent back to back (well under half a second) is denied, and logged.
static void
test_rate_limit (void **state)
{
    harness_t *h = *state;
    bus_client_t *chatty = harness_agent (h, "chatty");
    s_expect (chatty, "writer", "message", "one", NULL, "queued", "OK");
    s_expect (chatty, "writer", "message", "two", NULL, "queued", "OK");
    s_expect (chatty, "writer", "message", "three", NULL, "denied", "RATE");
    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--agent", "chatty", NULL);
    assert_non_null (strstr (out, "over its limit of 2 messages per second"));
    free (out);
    bus_client_destroy (&chatty);
}

static void
test_duplicate_message_id_delivered_once (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");
    uint64_t first = s_expect (planner, "writer", "message", "once", "dup-1", "delivered", "OK");
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", "once", "dup-1");
    assert_non_null (reply);
    assert_string_equal (harness_code (reply), "delivered");    //  the first verdict
    assert_string_equal (reply->ack->code, "DUPLICATE");
    assert_int_equal (reply->ack->seq, first);
    bus_client_free (&reply);
    Bulkhead__V1__Frame *frame = harness_deliver (writer, 5000);
    assert_non_null (frame);
    assert_int_equal (frame->deliver->seq, first);
    bus_client_free (&frame);
    assert_null (harness_deliver (writer, 500));
    //  Another sender may use the same id: ids are per sender.
    s_expect (writer, "planner", "message", "mine", "dup-1", "delivered", "OK");
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
}

//  Sends raw bytes and expects an ERROR with this code.
static void
s_expect_error (bus_client_t *client, const void *data, size_t size, bool multipart, const char *code)
{
    bus_error_t err;
    if (multipart) {
        assert_int_equal (bus_client_send_raw (client, data, size, 1, &err), 0);
    }
    assert_int_equal (bus_client_send_raw (client, data, size, 0, &err), 0);
    Bulkhead__V1__Frame *frame = NULL;
    while (true) {
        assert_int_equal (bus_client_recv (client, &frame, 5000, &err), 0);
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
            break;
        }
        bus_client_free (&frame);
    }
    assert_string_equal (frame->error->code, code);
    bus_client_free (&frame);
}

static void
test_malformed_multipart_oversize_answered (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *writer = harness_agent (h, "writer");

    s_expect_error (planner, "\xff\xff\xff garbage", 11, false, "MALFORMED");

    //  A valid SEND frame, sent as two parts.
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = "writerXevil";
    send.intent = "message";
    send.message_id = "raw-1";
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &send;
    size_t size;
    uint8_t *packed = bus_wire_pack (&frame, &size);
    s_expect_error (planner, packed, size, true, "MULTIPART");

    //  "writer\0evil": C would read "writer".
    uint8_t *x = memchr (packed, 'X', size);
    assert_non_null (x);
    *x = 0;
    s_expect_error (planner, packed, size, false, "MALFORMED");
    free (packed);

    //  A field the schema does not know (field 99, varint).
    send.recipient = "writer";
    packed = bus_wire_pack (&frame, &size);
    uint8_t *bigger = malloc (size + 8);
    memcpy (bigger, packed, size);
    //  Frame.send is field 3, length-delimited: grow its length and append
    //  the unknown field inside the Send.
    assert_int_equal (bigger [0], (3 << 3) | 2);
    assert_true (bigger [1] < 120);
    bigger [1] += 3;
    bigger [size] = (uint8_t) ((99 << 3) & 0x7f) | 0x80;
    bigger [size + 1] = (uint8_t) (99 >> 4);
    bigger [size + 2] = 1;
    s_expect_error (planner, bigger, size + 3, false, "MALFORMED");
    free (bigger);
    free (packed);

    //  Over the policy's max_frame of 4096.
    char *big = malloc (5000);
    memset (big, 'a', 4999);
    big [4999] = 0;
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", big, "big-1");
    assert_string_equal (harness_code (reply), "TOOBIG");
    bus_client_free (&reply);
    free (big);

    //  A frame type agents do not send.
    Bulkhead__V1__Pong pong = BULKHEAD__V1__PONG__INIT;
    Bulkhead__V1__Frame pong_frame = BULKHEAD__V1__FRAME__INIT;
    pong_frame.body_case = BULKHEAD__V1__FRAME__BODY_PONG;
    pong_frame.pong = &pong;
    packed = bus_wire_pack (&pong_frame, &size);
    s_expect_error (planner, packed, size, false, "MALFORMED");
    free (packed);

    //  Everyone, the offender included, keeps being served.
    uint64_t seq = s_expect (planner, "writer", "message", "fine", "ok-1", "delivered", "OK");
    Bulkhead__V1__Frame *got = harness_deliver (writer, 5000);
    assert_non_null (got);
    assert_int_equal (got->deliver->seq, seq);
    bus_client_free (&got);

    char *out = NULL;
    harness_run (h, &out, "log", "--data", h->data, "--kind", "error", NULL);
    assert_non_null (strstr (out, "MULTIPART"));
    assert_non_null (strstr (out, "TOOBIG"));
    assert_non_null (strstr (out, "MALFORMED"));
    free (out);
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
}

//  The bus of s_setup, signing checkpoints (every 100 records) into
//  DIR/ckpt with DIR/bus.sign.key.
static int
s_setup_signed (void **state)
{
    harness_t *h = calloc (1, sizeof *h);
    static char ckpt [300], key [300];
    harness_init (h);
    snprintf (ckpt, sizeof ckpt, "%s/ckpt", h->dir);
    snprintf (key, sizeof key, "%s/bus.sign.key", h->dir);
    const char *extra [] = { "--checkpoints", ckpt, "--sign-key", key, "--checkpoint-every",
                             "100", NULL };
    memcpy (h->extra, extra, sizeof extra);
    *state = h;
    if (harness_policy (h, s_policy) != 0
    ||  harness_run (h, NULL, "keygen", "bus", "--sign", "--dir", h->dir, NULL) != 0) {
        return -1;
    }
    return harness_start (h);
}

//  kill -9 during a stream of sends, restart: every ACKed message is in the
//  log and reaches its recipient, the sequence has no gap, and the log
//  matches every checkpoint signed before and after the crash.
static void
test_kill9_loses_nothing_acknowledged (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    enum { TOTAL = 3000, KILL_AFTER = 400 };
    bus_error_t err;
    for (int i = 0; i < TOTAL; i++) {
        char id [32], payload [64];
        snprintf (id, sizeof id, "k-%d", i);
        snprintf (payload, sizeof payload, "stream message %d", i);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.recipient = "writer";
        send.intent = "message";
        send.message_id = id;
        send.has_payload = true;
        send.payload.data = (uint8_t *) payload;
        send.payload.len = strlen (payload);
        assert_int_equal (bus_client_post (planner, &send, &err), 0);
    }
    static bool acked [TOTAL];
    memset (acked, 0, sizeof acked);
    int acks = 0;
    while (acks < KILL_AFTER) {
        Bulkhead__V1__Frame *frame;
        assert_int_equal (bus_client_recv (planner, &frame, 10000, &err), 0);
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
            assert_string_equal (frame->ack->code, "OK");
            int i = atoi (frame->ack->message_id + 2);
            acked [i] = true;
            acks++;
        }
        bus_client_free (&frame);
    }
    harness_stop (h, SIGKILL);
    bus_client_destroy (&planner);

    assert_int_equal (harness_start (h), 0);
    harness_verify (h);
    char ckpt [300], pub [300];
    snprintf (ckpt, sizeof ckpt, "%s/ckpt", h->dir);
    snprintf (pub, sizeof pub, "%s/bus.sign.pub", h->dir);
    char *out = NULL;
    int rc = harness_run (h, &out, "verify", "--data", h->data, "--checkpoints", ckpt, "--pub",
                          pub, NULL);
    if (rc != 0 || !strstr (out, "matches")) {
        fail_msg ("verify against the checkpoints after kill -9: exit %d: %s", rc, out);
    }
    free (out);

    //  The recipient gets every acknowledged message, in sequence order.
    bus_client_t *writer = harness_agent (h, "writer");
    static bool got [TOTAL];
    memset (got, 0, sizeof got);
    uint64_t last = 0;
    int received = 0;
    Bulkhead__V1__Frame *frame;
    while ((frame = harness_deliver (writer, 1500))) {
        assert_true (frame->deliver->seq > last);
        last = frame->deliver->seq;
        got [atoi (frame->deliver->message_id + 2)] = true;
        received++;
        bus_client_free (&frame);
    }
    for (int i = 0; i < TOTAL; i++) {
        if (acked [i] && !got [i]) {
            fail_msg ("acknowledged message k-%d was not delivered after restart", i);
        }
    }
    assert_true (received >= KILL_AFTER);
    bus_client_destroy (&writer);
}

static void
test_tcp_loopback (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    snprintf (h.listen, sizeof h.listen, "tcp://127.0.0.1:*");
    assert_int_equal (harness_policy (&h, s_policy), 0);
    assert_int_equal (harness_start (&h), 0);
    assert_non_null (strstr (h.endpoint, "tcp://127.0.0.1:"));
    bus_client_t *planner = harness_agent (&h, "planner");
    bus_client_t *writer = harness_agent (&h, "writer");
    s_expect (planner, "writer", "query", "over tcp", NULL, "delivered", "OK");
    Bulkhead__V1__Frame *frame = harness_deliver (writer, 5000);
    assert_non_null (frame);
    bus_client_free (&frame);
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
    assert_int_equal (harness_cleanup (&h), 0);
}

//  PITFALLS: CURVE fails open without ZAP. Our socket set-up enforces the
//  ZAP domain, so with no handler at all nothing gets through.
static void
test_curve_closed_without_zap_handler (void **state)
{
    (void) state;
    char server_pub [41], server_sec [41], client_pub [41], client_sec [41];
    zmq_curve_keypair (server_pub, server_sec);
    zmq_curve_keypair (client_pub, client_sec);
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    bus_error_t err;
    assert_int_equal (bus_router_secure (router, server_sec, 1000, &err), 0);
    assert_int_equal (zmq_bind (router, "tcp://127.0.0.1:*"), 0);
    char endpoint [128];
    size_t len = sizeof endpoint;
    zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &len);

    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    zmq_setsockopt (dealer, ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt (dealer, ZMQ_CURVE_PUBLICKEY, client_pub, 40);
    zmq_setsockopt (dealer, ZMQ_CURVE_SECRETKEY, client_sec, 40);
    int linger = 0;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal (zmq_connect (dealer, endpoint), 0);
    zmq_send (dealer, "let me in", 9, ZMQ_DONTWAIT);
    zmq_pollitem_t item = { router, 0, ZMQ_POLLIN, 0 };
    assert_int_equal (zmq_poll (&item, 1, 1000), 0);      //  nothing arrives
    zmq_close (dealer);
    zmq_close (router);
    zmq_ctx_term (ctx);
}

//  Fail closed: when the log cannot grow, nothing is delivered or ACKed,
//  every sender is told why, and what was acknowledged before survives.
static void
test_log_full_fails_closed (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    h.extra [0] = "--map-max";
    h.extra [1] = "1048576";
    assert_int_equal (harness_policy (&h,
        "bus\n    max_frame = 65536\n    log_budget = 1048576\n"
        "agents\n    planner\n        key = @planner@\n    writer\n        key = @writer@\n"
        "edges\n    planner\n        writer = message\n"), 0);
    assert_int_equal (harness_start (&h), 0);
    bus_client_t *planner = harness_agent (&h, "planner");
    char *payload = malloc (60001);
    memset (payload, 'p', 60000);
    payload [60000] = 0;
    int accepted = 0;
    const char *code = NULL;
    Bulkhead__V1__Frame *reply = NULL;
    for (int i = 0; i < 100; i++) {
        reply = harness_send (planner, "writer", "message", payload, NULL);
        assert_non_null (reply);
        if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
            code = reply->error->code;
            break;
        }
        assert_string_equal (reply->ack->code, "OK");
        accepted++;
        bus_client_free (&reply);
    }
    assert_non_null (code);
    assert_string_equal (code, "LOGFULL");
    bus_client_free (&reply);
    //  Still refusing, still answering.
    reply = harness_send (planner, "writer", "message", "small", NULL);
    assert_string_equal (harness_code (reply), "LOGFULL");
    bus_client_free (&reply);
    //  Nothing is delivered while failed.
    bus_client_t *writer = NULL;
    bus_error_t err;
    writer = harness_connect (&h, "writer", &err);
    assert_null (writer);
    harness_stop (&h, SIGTERM);

    //  With room again, everything acknowledged is there and reaches writer.
    h.extra [1] = "67108864";
    assert_int_equal (harness_start (&h), 0);
    writer = harness_agent (&h, "writer");
    int received = 0;
    Bulkhead__V1__Frame *frame;
    while ((frame = harness_deliver (writer, 1500))) {
        received++;
        bus_client_free (&frame);
    }
    assert_int_equal (received, accepted);
    harness_verify (&h);
    free (payload);
    bus_client_destroy (&writer);
    bus_client_destroy (&planner);
    assert_int_equal (harness_cleanup (&h), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_delivered_along_allowed_edge, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_denied_edges_and_intents, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_unknown_key_refused_at_handshake, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_spoofed_sender_denied, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_key_revoked_by_reload_stops_live_connection, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_invalid_reload_keeps_old_policy, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_offline_recipient_gets_mailbox_in_order, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_disconnect_logged_and_nothing_lost, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_rate_limit, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_duplicate_message_id_delivered_once, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_malformed_multipart_oversize_answered, s_setup, harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_kill9_loses_nothing_acknowledged, s_setup_signed, harness_fixture_end),
        cmocka_unit_test (test_tcp_loopback),
        cmocka_unit_test (test_curve_closed_without_zap_handler),
        cmocka_unit_test (test_log_full_fails_closed),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
