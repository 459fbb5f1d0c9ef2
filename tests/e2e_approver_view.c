/*  e2e_approver_view.c: an approver sees exactly what will be delivered,
    and nothing an agent wrote reaches a person's terminal raw.

    Over real sockets against the real bus (tests/support/harness.h):
    - the held record's bytes an approver fetches (GET_HOLD) match the
      hold's digest, decode to the message, and are what the recipient is
      delivered after the approval, field for field; `bulkhead pending`
      shows the payload, escaped, with its size, cut at 4 KiB unless --full;
      `bulkhead approve` approves the digest it showed;
    - ESC sequences, C1 controls, bidi overrides and invalid UTF-8 in a
      payload, a justification and a resource never reach the output of
      `bulkhead pending`, `approve`, `recv` or `log` raw, and are shown
      escaped.
    Against a fake bus in a thread (a ROUTER with CURVE that answers as the
    bus would, but with a record that is not what its digest names):
    `bulkhead pending` and `approve` refuse it, exit 1, show nothing of it,
    and approve nothing. */
#include "check.h"

#include "harness.h"
#include "bus_keys.h"
#include "bus_store.h"
#include "bus_wire.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const char *s_policy =
    "classes\n"
    "    comms\n"
    "        approvers = carol\n"
    "        restricted = hold\n"
    "agents\n"
    "    web-reader\n        key = @web-reader@\n        trust = untrusted\n"
    "    planner\n        key = @planner@\n"
    "    mailer\n        key = @mailer@\n"
    "    carol\n        key = @carol@\n        role = approver\n"
    "edges\n"
    "    web-reader\n"
    "        mailer = comms\n"
    "    planner\n"
    "        mailer = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  What a terminal must never get raw: ESC sequences (title, clear), CSI as
//  a C1 character, a bidi override, a byte that is not UTF-8.
static const char s_hostile [] = "\x1b]0;pwned\x07\x1b[2J\xc2\x9b\xe2\x80\xae\xff";
//  How the printer shows it.
static const char s_hostile_shown [] = "\\x1b]0;pwned\\x07\\x1b[2J\\u009b\\u202e\\xff";

//  A payload of size bytes: a line, the hostile bytes, every byte value,
//  filler, and a marker at the very end.
static uint8_t *
s_payload (size_t size)
{
    uint8_t *data = malloc (size);
    assert_non_null (data);
    memset (data, 'A', size);
    size_t at = 0;
    memcpy (data, "amount=1000000\n", 15);
    at += 15;
    memcpy (data + at, s_hostile, sizeof s_hostile - 1);
    at += sizeof s_hostile - 1;
    for (unsigned b = 0; b < 256; b++) {
        data [at++] = (uint8_t) b;
    }
    memcpy (data + size - 9, "TAIL-MARK", 9);
    return data;
}

//  The bytes of the last `bulkhead` run (stdout and stderr), as written.
static char *
s_output (harness_t *h, size_t *size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/run.out", h->dir);
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    char *data = malloc (4 << 20);
    assert_non_null (data);
    *size = fread (data, 1, (4 << 20) - 1, file);
    data [*size] = 0;
    fclose (file);
    return data;
}

//  The output of a run must hold none of the bytes a terminal obeys.
static void
s_no_raw (const char *what, const char *out, size_t size)
{
    static const struct { const char *bytes; const char *name; } raw [] = {
        { "\x1b", "ESC (0x1b)" }, { "\x9b", "0x9b (CSI)" }, { "\xe2\x80\xae", "U+202E (e2 80 ae)" },
        { "\xff", "0xff" }, { "\x07", "BEL (0x07)" },
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw [0]; i++) {
        if (memmem (out, size, raw [i].bytes, strlen (raw [i].bytes))) {
            fail_msg ("%s: the output holds a raw %s", what, raw [i].name);
        }
    }
}

//  `bulkhead CMD ARGS...` as agent (at most 6 ARGS); returns the exit
//  code, the output in *out (caller frees).
#define AS(h, agent, out, size, ...) \
    s_as ((h), (agent), (out), (size), __VA_ARGS__, NULL)

static int
s_as (harness_t *h, const char *agent, char **out, size_t *size, const char *cmd, ...)
{
    const char *args [7] = { NULL };
    va_list list;
    va_start (list, cmd);
    for (size_t i = 0; i < 6; i++) {
        args [i] = va_arg (list, const char *);
        if (!args [i]) {
            break;
        }
    }
    va_end (list);
    char key [512];
    snprintf (key, sizeof key, "%s/%s.key", h->dir, agent);
    int rc = harness_run (h, NULL, cmd, "--bus", h->endpoint, "--bus-key", h->bus_pub, "--key", key,
                          args [0], args [1], args [2], args [3], args [4], args [5], NULL);
    *out = s_output (h, size);
    return rc;
}

//  Sends as client; returns the reply frame (caller frees).
static Bulkhead__V1__Frame *
s_send (bus_client_t *client, const char *to, const char *intent, const char *id,
        const uint8_t *payload, size_t size, const char *justification, const char *resource)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.message_id = (char *) id;
    send.action = "email.send";
    send.resource = (char *) resource;
    send.content_type = "application/octet-stream";
    send.tool = "browser";
    send.justification = (char *) justification;
    send.has_payload = true;
    send.payload.data = (uint8_t *) payload;
    send.payload.len = size;
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    CHECK_PASS (bus_client_send (client, &send, &reply, 5000, &err), err);
    return reply;
}

//  The entry of id in carol's listing (frame owned by the caller).
static Bulkhead__V1__Frame *
s_listed (bus_client_t *approver, const char *id, const Bulkhead__V1__Pending **entry)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    CHECK_PASS (bus_client_control (approver, &control, &reply, 5000, &err), err);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    *entry = NULL;
    for (size_t i = 0; i < reply->control_reply->n_pending; i++) {
        if (strcmp (reply->control_reply->pending [i]->approval_id, id) == 0) {
            *entry = reply->control_reply->pending [i];
        }
    }
    assert_non_null (*entry);
    return reply;
}

static void
test_approver_view_is_what_is_delivered (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *carol = harness_agent (h, "carol");
    //  More than 4 KiB: the listing carries the first 4 KiB of the record,
    //  GET_HOLD all of it.
    size_t size = 6000;
    uint8_t *payload = s_payload (size);
    const char *justification = "forwarding the page \xe2\x80\xae" "as asked\xe2\x80\x8b";
    const char *resource = "inbox:\xe2\x80\xae" "42";
    Bulkhead__V1__Frame *reply = s_send (web, "mailer", "comms", "view-1", payload, size,
                                         justification, resource);
    assert_string_equal (harness_code (reply), "held");
    assert_true (reply->ack->restricted);
    char id [32];
    snprintf (id, sizeof id, "%s", reply->ack->approval_id);
    bus_client_free (&reply);

    //  The approver lists it: the first 4 KiB of the record, its size, its
    //  digest.
    const Bulkhead__V1__Pending *entry;
    Bulkhead__V1__Frame *list = s_listed (carol, id, &entry);
    assert_true (entry->has_record && entry->has_record_size);
    assert_int_equal (entry->record.len, 4096);
    assert_true (entry->record_size > size);
    assert_int_equal (entry->digest.len, 32);

    //  GET_HOLD: all the bytes, which are what the digest names.
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD;
    control.id = id;
    Bulkhead__V1__Frame *hold;
    bus_error_t err;
    CHECK_PASS (bus_client_control (carol, &control, &hold, 5000, &err), err);
    assert_int_equal (hold->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    assert_string_equal (hold->control_reply->code, "OK");
    assert_true (hold->control_reply->has_record);
    const ProtobufCBinaryData *bytes = &hold->control_reply->record;
    assert_int_equal (bytes->len, entry->record_size);
    assert_memory_equal (bytes->data, entry->record.data, entry->record.len);
    uint8_t digest [32];
    bus_hash (digest, bytes->data, bytes->len);
    assert_memory_equal (digest, entry->digest.data, 32);
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, bytes->len, bytes->data);
    assert_non_null (rec);
    assert_int_equal (rec->payload.len, size);
    assert_memory_equal (rec->payload.data, payload, size);
    assert_string_equal (rec->sender, "web-reader");
    assert_string_equal (rec->action, "email.send");
    assert_string_equal (rec->resource, resource);
    assert_string_equal (rec->justification, justification);
    assert_true (rec->has_restricted && rec->restricted);

    //  `bulkhead pending`: the payload, escaped, its size, the first 4 KiB.
    char *out;
    size_t out_size;
    char digest_hex [65];
    sodium_bin2hex (digest_hex, sizeof digest_hex, digest, 32);
    assert_int_equal (AS (h, "carol", &out, &out_size, "pending"), 0);
    CHECK_CONTAINS (out, id);
    CHECK_CONTAINS (out, "RESTRICTED");
    CHECK_CONTAINS (out, "6000 bytes");
    CHECK_CONTAINS (out, "amount=1000000");
    CHECK_CONTAINS (out, s_hostile_shown);
    CHECK_CONTAINS (out, "\\x00\\x01\\x02");
    CHECK_CONTAINS (out, "inbox:\\u202e42");
    CHECK_CONTAINS (out, "forwarding the page \\u202eas asked\\u200b");
    CHECK_CONTAINS (out, "email.send");
    CHECK_CONTAINS (out, "browser");
    CHECK_CONTAINS (out, "application/octet-stream");
    CHECK_CONTAINS (out, "the first 4096 shown");
    CHECK_CONTAINS (out, "more bytes]");
    CHECK_CONTAINS (out, digest_hex);
    assert_null (strstr (out, "TAIL-MARK"));
    s_no_raw ("bulkhead pending", out, out_size);
    free (out);
    //  --full: all of it.
    assert_int_equal (AS (h, "carol", &out, &out_size, "pending", id, "--full"), 0);
    s_no_raw ("bulkhead pending ID --full", out, out_size);
    CHECK_CONTAINS (out, "TAIL-MARK");
    assert_null (strstr (out, "more bytes]"));
    free (out);

    //  `bulkhead approve` shows it again and approves the digest it showed.
    assert_int_equal (AS (h, "carol", &out, &out_size, "approve", id), 0);
    s_no_raw ("bulkhead approve", out, out_size);
    CHECK_CONTAINS (out, digest_hex);
    CHECK_CONTAINS (out, s_hostile_shown);
    CHECK_CONTAINS (out, "OK: ");
    free (out);

    //  The recipient gets exactly what the approver saw.
    bus_client_t *mailer = harness_agent (h, "mailer");
    Bulkhead__V1__Frame *frame = harness_deliver (mailer, 5000);
    assert_non_null (frame);
    const Bulkhead__V1__Deliver *d = frame->deliver;
    assert_true (d->has_payload);
    assert_int_equal (d->payload.len, rec->payload.len);
    assert_memory_equal (d->payload.data, rec->payload.data, rec->payload.len);
    assert_string_equal (d->sender, rec->sender);
    assert_string_equal (d->action, rec->action);
    assert_string_equal (d->resource, rec->resource);
    assert_string_equal (d->content_type, rec->content_type);
    assert_string_equal (d->tool, rec->tool);
    assert_string_equal (d->justification, rec->justification);
    assert_string_equal (d->message_id, rec->message_id);
    assert_string_equal (d->intent, rec->intent);
    assert_string_equal (d->intent_class, rec->intent_class);
    assert_int_equal (d->n_causes, rec->n_causes);
    assert_true (d->restricted == (rec->has_restricted && rec->restricted));
    assert_int_equal (d->n_approvals, 1);
    assert_string_equal (d->approvals [0]->approver, "carol");
    bus_client_free (&frame);

    bulkhead__v1__record__free_unpacked (rec, NULL);
    bus_client_free (&hold);
    bus_client_free (&list);
    free (payload);
    bus_client_destroy (&mailer);
    bus_client_destroy (&web);
    bus_client_destroy (&carol);
}

static void
test_terminal_injection_never_reaches_output_raw (void **state)
{
    harness_t *h = *state;
    bus_client_t *web = harness_agent (h, "web-reader");
    bus_client_t *planner = harness_agent (h, "planner");
    const char *justification = "see \xe2\x80\xae" "txt.exe\xe2\x81\xa6 now";
    const char *resource = "page:\xe2\x80\xae" "1";
    size_t size = 300;
    uint8_t *payload = s_payload (size);
    //  The bus refuses C0 and C1 controls and invalid UTF-8 in text fields
    //  (and anything but printable ASCII in an action): it is refused
    //  there, or shown escaped, never raw.
    char hostile_text [64];
    snprintf (hostile_text, sizeof hostile_text, "x%sy", s_hostile);
    Bulkhead__V1__Frame *reply = s_send (web, "mailer", "comms", "inj-0", payload, size,
                                         hostile_text, hostile_text);
    assert_string_not_equal (harness_code (reply), "held");
    bus_client_free (&reply);
    //  Held (restricted), for pending and approve.
    reply = s_send (web, "mailer", "comms", "inj-1", payload, size, justification, resource);
    assert_string_equal (harness_code (reply), "held");
    char id [32];
    snprintf (id, sizeof id, "%s", reply->ack->approval_id);
    bus_client_free (&reply);
    //  Delivered straight (queued: mailer is offline), for recv.
    reply = s_send (planner, "mailer", "message", "inj-2", payload, size, justification, resource);
    assert_string_equal (harness_code (reply), "queued");
    bus_client_free (&reply);

    char *out;
    size_t out_size;
    assert_int_equal (AS (h, "carol", &out, &out_size, "pending"), 0);
    s_no_raw ("bulkhead pending", out, out_size);
    CHECK_CONTAINS (out, s_hostile_shown);
    CHECK_CONTAINS (out, "see \\u202etxt.exe\\u2066 now");
    CHECK_CONTAINS (out, "page:\\u202e1");
    free (out);
    assert_int_equal (AS (h, "carol", &out, &out_size, "approve", id), 0);
    s_no_raw ("bulkhead approve", out, out_size);
    free (out);

    assert_int_equal (AS (h, "mailer", &out, &out_size, "recv", "--count", "2", "--wait", "5000"), 0);
    s_no_raw ("bulkhead recv", out, out_size);
    CHECK_CONTAINS (out, "id=inj-2");
    CHECK_CONTAINS (out, "id=inj-1");
    CHECK_CONTAINS (out, "resource=page:\\u202e1");
    CHECK_CONTAINS (out, "payload=amount=1000000\\n");
    CHECK_CONTAINS (out, s_hostile_shown);
    //  One line per message, whatever the payload holds.
    size_t lines = 0;
    for (size_t i = 0; i < out_size; i++) {
        lines += out [i] == '\n';
    }
    assert_int_equal (lines, 2);
    free (out);

    assert_int_equal (harness_run (h, NULL, "log", "--data", h->data, NULL), 0);
    out = s_output (h, &out_size);
    s_no_raw ("bulkhead log", out, out_size);
    free (out);
    assert_int_equal (harness_run (h, NULL, "log", "--data", h->data, "--json", NULL), 0);
    out = s_output (h, &out_size);
    s_no_raw ("bulkhead log --json", out, out_size);
    CHECK_CONTAINS (out, "\"justification\":\"see \\u202etxt.exe\\u2066 now\"");
    CHECK_CONTAINS (out, "\"resource\":\"page:\\u202e1\"");
    free (out);

    free (payload);
    bus_client_destroy (&web);
    bus_client_destroy (&planner);
}

//  ---------------------------------------------------------------------
//  A fake bus whose record is not what its digest names

typedef struct {
    char endpoint [400];
    char secret [BUS_KEY_Z85_LEN + 1];
    uint8_t *record;            //  what it sends as the held record
    size_t record_len;
    uint8_t digest [32];        //  what it says the record's digest is
    int approvals;              //  APPROVE frames it got
    int get_holds;              //  GET_HOLD frames it got
    volatile int stop;
    int ready;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} fake_bus_t;

static void
s_fake_reply (void *router, zmq_msg_t *rid, const Bulkhead__V1__Frame *frame)
{
    size_t size;
    uint8_t *data = bus_wire_pack (frame, &size);
    zmq_send (router, zmq_msg_data (rid), zmq_msg_size (rid), ZMQ_SNDMORE);
    zmq_send (router, data, size, 0);
    free (data);
}

static void
s_fake_handle (fake_bus_t *fake, void *router, zmq_msg_t *rid, const Bulkhead__V1__Frame *in)
{
    Bulkhead__V1__Frame out = BULKHEAD__V1__FRAME__INIT;
    if (in->body_case == BULKHEAD__V1__FRAME__BODY_HELLO) {
        Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
        welcome.agent = "carol";
        welcome.version = 1;
        welcome.policy_hash = "fake";
        out.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
        out.welcome = &welcome;
        s_fake_reply (router, rid, &out);
        return;
    }
    if (in->body_case != BULKHEAD__V1__FRAME__BODY_CONTROL) {
        return;
    }
    Bulkhead__V1__ControlReply reply = BULKHEAD__V1__CONTROL_REPLY__INIT;
    reply.op = in->control->op;
    reply.code = "OK";
    reply.reason = "1 message waits for carol";
    Bulkhead__V1__Pending pending = BULKHEAD__V1__PENDING__INIT;
    Bulkhead__V1__Pending *pendings [1] = { &pending };
    pending.approval_id = "h-0123456789ab";
    pending.sender = "planner";
    pending.recipient = "payments";
    pending.intent_class = "finance";
    pending.justification = "paying invoice 42, 10 EUR";
    pending.digest.data = fake->digest;
    pending.digest.len = 32;
    pending.has_seq = true;
    pending.seq = 7;
    pending.has_quorum = true;
    pending.quorum = 1;
    pending.has_record = true;
    pending.record.data = fake->record;
    pending.record.len = fake->record_len < 4096? fake->record_len: 4096;
    pending.has_record_size = true;
    pending.record_size = fake->record_len;
    switch (in->control->op) {
        case BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING:
            reply.n_pending = 1;
            reply.pending = pendings;
            break;
        case BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD:
            fake->get_holds++;
            reply.has_record = true;
            reply.record.data = fake->record;
            reply.record.len = fake->record_len;
            reply.reason = "the record";
            break;
        case BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE:
            fake->approvals++;
            reply.reason = "approved";
            break;
        default:
            reply.code = "INVAL";
            reply.reason = "not here";
    }
    out.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY;
    out.control_reply = &reply;
    s_fake_reply (router, rid, &out);
}

static void *
s_fake_run (void *arg)
{
    fake_bus_t *fake = arg;
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    int on = 1, linger = 0;
    zmq_setsockopt (router, ZMQ_CURVE_SERVER, &on, sizeof on);
    zmq_setsockopt (router, ZMQ_CURVE_SECRETKEY, fake->secret, BUS_KEY_Z85_LEN);
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    int rc = zmq_bind (router, fake->endpoint);
    pthread_mutex_lock (&fake->lock);
    fake->ready = rc == 0? 1: -1;
    pthread_cond_signal (&fake->cond);
    pthread_mutex_unlock (&fake->lock);
    while (rc == 0 && !fake->stop) {
        zmq_pollitem_t item = { router, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) <= 0) {
            continue;
        }
        zmq_msg_t rid, body;
        zmq_msg_init (&rid);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&rid, router, 0) >= 0 && zmq_msg_more (&rid)
        &&  zmq_msg_recv (&body, router, 0) >= 0) {
            Bulkhead__V1__Frame *in = bulkhead__v1__frame__unpack (NULL, zmq_msg_size (&body),
                                                                    zmq_msg_data (&body));
            if (in) {
                s_fake_handle (fake, router, &rid, in);
                bulkhead__v1__frame__free_unpacked (in, NULL);
            }
        }
        zmq_msg_close (&rid);
        zmq_msg_close (&body);
    }
    zmq_close (router);
    zmq_ctx_term (ctx);
    return NULL;
}

//  A held record as the bus would store it, with payload.
static uint8_t *
s_record (const char *payload, size_t size, size_t *len)
{
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    uint8_t prev [32] = { 0 };
    rec.seq = 7;
    rec.time_us = 1;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
    rec.prev_hash.data = prev;
    rec.prev_hash.len = 32;
    rec.sender = "planner";
    rec.recipient = "payments";
    rec.intent = "finance";
    rec.intent_class = "finance";
    rec.message_id = "pay-1";
    rec.action = "transfer.create";
    rec.justification = "paying invoice 42, 10 EUR";
    rec.has_payload = true;
    rec.payload.data = (uint8_t *) payload;
    rec.payload.len = size;
    *len = bulkhead__v1__record__get_packed_size (&rec);
    uint8_t *out = malloc (*len);
    assert_non_null (out);
    bulkhead__v1__record__pack (&rec, out);
    return out;
}

//  Runs pending, pending ID and approve ID against a fake bus that names
//  the digest of `shown` but sends `sent`.
static void
s_mismatch (size_t filler)
{
    harness_t h;
    harness_init (&h);
    assert_int_equal (harness_policy (&h, "agents\n    carol\n        key = @carol@\n"), 0);
    fake_bus_t fake;
    memset (&fake, 0, sizeof fake);
    pthread_mutex_init (&fake.lock, NULL);
    pthread_cond_init (&fake.cond, NULL);
    bus_keypair_t pair;
    bus_error_t err;
    char secret [512], public [512];
    snprintf (secret, sizeof secret, "%s/fake.key", h.dir);
    snprintf (public, sizeof public, "%s/fake.pub", h.dir);
    CHECK_PASS (bus_keys_generate (&pair, "bus", &err), err);
    CHECK_PASS (bus_keys_save (&pair, secret, public, &err), err);
    memcpy (fake.secret, pair.secret_z85, sizeof fake.secret);
    snprintf (fake.endpoint, sizeof fake.endpoint, "ipc://%s/fake.sock", h.dir);
    //  What the approver would approve: 10 EUR. What the bus would send:
    //  a million, the same length, so only the bytes differ.
    char *good = malloc (filler + 32), *bad = malloc (filler + 32);
    assert_non_null (good);
    assert_non_null (bad);
    memset (good, 'x', filler + 32);
    memset (bad, 'x', filler + 32);
    memcpy (good, "amount=0000010 EUR", 18);
    memcpy (bad, "amount=1000000 EUR", 18);
    size_t good_len, bad_len;
    uint8_t *good_rec = s_record (good, filler + 32, &good_len);
    fake.record = s_record (bad, filler + 32, &bad_len);
    fake.record_len = bad_len;
    bus_hash (fake.digest, good_rec, good_len);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_fake_run, &fake), 0);
    pthread_mutex_lock (&fake.lock);
    while (!fake.ready) {
        pthread_cond_wait (&fake.cond, &fake.lock);
    }
    pthread_mutex_unlock (&fake.lock);
    assert_int_equal (fake.ready, 1);

    char key [512];
    snprintf (key, sizeof key, "%s/carol.key", h.dir);
    const char *runs [][3] = { { "pending", NULL, NULL }, { "pending", "h-0123456789ab", "--full" },
                               { "approve", "h-0123456789ab", NULL } };
    for (size_t i = 0; i < 3; i++) {
        int rc = harness_run (&h, NULL, runs [i][0], "--bus", fake.endpoint, "--bus-key", public,
                              "--key", key, "--timeout", "3000", runs [i][1], runs [i][2], NULL);
        size_t size;
        char *out = s_output (&h, &size);
        if (rc != 1 || !strstr (out, "MISMATCH") || strstr (out, "amount=") || strstr (out, "xxxx")) {
            fail_msg ("bulkhead %s against a record that does not match its digest: exit %d "
                      "(want 1), output:\n%s", runs [i][0], rc, out);
        }
        free (out);
    }
    assert_int_equal (fake.approvals, 0);
    if (filler > 4096) {
        assert_true (fake.get_holds > 0);
    }
    fake.stop = 1;
    pthread_join (thread, NULL);
    free (fake.record);
    free (good_rec);
    free (good);
    free (bad);
    assert_int_equal (harness_cleanup (&h), 0);
}

static void
test_record_that_does_not_match_its_digest_is_refused (void **state)
{
    (void) state;
    s_mismatch (100);           //  all of it in the listing
    s_mismatch (6000);          //  fetched with GET_HOLD
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_approver_view_is_what_is_delivered, s_setup,
                                         harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_terminal_injection_never_reaches_output_raw, s_setup,
                                         harness_fixture_end),
        cmocka_unit_test (test_record_that_does_not_match_its_digest_is_refused),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
