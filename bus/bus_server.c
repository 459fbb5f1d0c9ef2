/*  bus_server.c: the bus daemon's loop.

    The order of work for every batch is the guarantee this file exists for:

        read frames -> decide each (chain) -> append records -> COMMIT
        -> only now: send ACKs, WELCOMEs, DELIVERs queued in the outbox

    Nothing leaves the bus about a message before its record is durable. If
    the commit fails, the outbox is turned into ERRORs (ELOGFULL/ELOGFAIL) and
    the bus stays up refusing every message: fail closed, and say why.

    Identity is the CURVE key that passed our ZAP handler, read from each
    frame's User-Id and looked up in the live policy on every message. The
    routing id is only where the key last spoke from: it is never trusted,
    logged as identity, or shown to agents.
*/
#include "bus_server.h"
#include "bus_holds.h"
#include "bus_keys.h"
#include "bus_policy.h"
#include "bus_store.h"
#include "bus_wire.h"
#include "med_chain.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#   define ZMQ_ZAP_ENFORCE_DOMAIN 93   //  draft in 4.3.4's header, honoured by the library
#endif

#define BUS_PROTOCOL_VERSION    1
#define BUS_ZAP_DOMAIN          "bulkhead"
#define BUS_HARD_FRAME_MAX      (16 * 1024 * 1024 + 4096)
#define BUS_MESSAGE_ID_MAX      128
#define BUS_FIELD_MAX           256
#define BUS_JUSTIFICATION_MAX   4096
#define BUS_RID_MAX             256

typedef Bulkhead__V1__Frame frame_t;
typedef Bulkhead__V1__Record record_t;

//  What the bus knows of one agent's connection. Created on first use,
//  kept while the agent is in the policy.
typedef struct {
    char agent [BUS_NAME_MAX + 1];
    uint8_t rid [BUS_RID_MAX];      //  where its key last spoke from
    size_t rid_len;
    bool hello;                     //  said HELLO at least once
    bool online;                    //  we believe its connection is up
    bool backlog;                   //  mailbox has entries past `sent` to push
    uint64_t acked;                 //  its delivery cursor
    uint64_t sent;                  //  highest seq pushed on this connection
    uint32_t inflight;              //  pushed, not yet acknowledged
    uint32_t pending;               //  in the mailbox, not yet acknowledged
    uint64_t taint_seq;             //  restricted delivery that tainted it, 0 if clean
    uint64_t taint_us;              //  when
} session_t;

//  One frame to send once the batch is committed.
typedef struct {
    session_t *session;             //  DELIVERs: the recipient; else the peer
    uint8_t rid [BUS_RID_MAX];
    size_t rid_len;
    uint8_t *data;
    size_t size;
    uint64_t deliver_seq;           //  non-zero for a DELIVER
    char message_id [BUS_MESSAGE_ID_MAX + 1];   //  for ERROR if the commit fails
} out_t;

typedef struct {
    bus_server_options_t options;
    char endpoint [256];
    void *ctx;
    void *router;
    void *zap;
    int sigfd;
    bool stop;
    bus_keypair_t bus_key;
    bus_policy_t *policy;
    med_chain_t *chain;
    bus_store_t *store;
    bus_holds_t *holds;             //  the approval queue
    uint64_t next_expiry_us;        //  when to look for expired holds next
    bus_wire_t *wire;               //  decodes agents' frames
    bus_wire_t *enc;                //  encodes our replies
    zhashx_t *sessions;             //  agent name -> session_t
    out_t *outbox;
    size_t out_count;
    size_t out_alloc;
    bool failed;                    //  the log failed: refuse everything
    bus_error_t failure;
    uint64_t frames;
} server_t;

//  ---------------------------------------------------------------------
//  Small helpers

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

//  One line per event on stderr: a stable id, then key=value fields. Never a
//  payload.
static void
s_say (server_t *self, const char *id, const char *fmt, ...)
{
    if (self && self->options.quiet) {
        return;
    }
    char when [32];
    time_t now = time (NULL);
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
    char line [1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "%s %s %s\n", when, id, line);
}

static void
s_session_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

//  Taint state lives in the taint database as "SEQ TIME_US", one entry per
//  tainted agent; the session keeps a copy (all changes go through here).
static void
s_taint_load (server_t *self, session_t *session)
{
    void *value = NULL;
    size_t size = 0;
    bus_error_t err;
    session->taint_seq = 0;
    session->taint_us = 0;
    if (bus_store_get (self->store, BUS_DB_TAINT, session->agent, strlen (session->agent),
                       &value, &size, &err) == 0) {
        char text [64];
        snprintf (text, sizeof text, "%.*s", (int) (size < 63? size: 63), (char *) value);
        unsigned long long seq = 0, when = 0;
        if (sscanf (text, "%llu %llu", &seq, &when) == 2) {
            session->taint_seq = seq;
            session->taint_us = when;
        }
        free (value);
    }
}

static int
s_taint_set (server_t *self, session_t *session, uint64_t seq, uint64_t when)
{
    char text [64];
    int len = snprintf (text, sizeof text, "%llu %llu", (unsigned long long) seq,
                        (unsigned long long) when);
    bus_error_t err;
    if (bus_store_put (self->store, BUS_DB_TAINT, session->agent, strlen (session->agent),
                       text, (size_t) len, &err) != 0) {
        return -1;
    }
    session->taint_seq = seq;
    session->taint_us = when;
    return 0;
}

static session_t *
s_session (server_t *self, const char *agent)
{
    session_t *session = zhashx_lookup (self->sessions, agent);
    if (session) {
        return session;
    }
    session = calloc (1, sizeof *session);
    if (!session) {
        return NULL;
    }
    snprintf (session->agent, sizeof session->agent, "%s", agent);
    bus_error_t err;
    if (bus_store_cursor_get (self->store, agent, &session->acked, &err) != 0) {
        session->acked = 0;
    }
    session->sent = session->acked;
    //  Count what waits in its mailbox once; from then on it is kept current.
    uint64_t seq = session->acked;
    while (bus_store_mailbox_next (self->store, agent, seq, &seq, &err) == 0) {
        session->pending++;
        session->backlog = true;
    }
    s_taint_load (self, session);
    zhashx_insert (self->sessions, agent, session);
    return session;
}

//  Entries in agent's mailbox with after < seq <= up_to.
static uint32_t
s_mailbox_count (server_t *self, const char *agent, uint64_t after, uint64_t up_to)
{
    uint32_t count = 0;
    uint64_t seq = after;
    bus_error_t err;
    while (bus_store_mailbox_next (self->store, agent, seq, &seq, &err) == 0 && seq <= up_to) {
        count++;
    }
    return count;
}

//  ---------------------------------------------------------------------
//  Outbox: everything the batch decided to send, released after commit

//  A fresh outbox entry, or NULL when memory is out (the frame is then not
//  sent; a DELIVER stays in the mailbox and the pump retries it).
static out_t *
s_out_slot (server_t *self)
{
    if (self->out_count == self->out_alloc) {
        size_t alloc = self->out_alloc? self->out_alloc * 2: 256;
        out_t *outbox = realloc (self->outbox, alloc * sizeof *outbox);
        if (!outbox) {
            return NULL;
        }
        self->outbox = outbox;
        self->out_alloc = alloc;
    }
    out_t *out = &self->outbox [self->out_count];
    memset (out, 0, offsetof (out_t, message_id) + 1);
    return out;
}

static out_t *
s_out_add (server_t *self, const uint8_t *rid, size_t rid_len, const frame_t *frame)
{
    out_t *out = s_out_slot (self);
    if (!out) {
        return NULL;
    }
    out->data = bus_wire_pack (frame, &out->size);
    if (!out->data) {
        return NULL;
    }
    memcpy (out->rid, rid, rid_len);
    out->rid_len = rid_len;
    self->out_count++;
    return out;
}

//  Sends one frame to a routing id, never blocking. Returns 0, or the errno:
//  EHOSTUNREACH (peer gone) or EAGAIN (peer at its high-water mark).
static int
s_send_raw (server_t *self, const uint8_t *rid, size_t rid_len,
            const void *data, size_t size)
{
    if (zmq_send (self->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        return zmq_errno ();
    }
    //  The body cannot fail after the routing frame was accepted: ROUTER
    //  checks the peer on the first part.
    if (zmq_send (self->router, data, size, ZMQ_DONTWAIT) < 0) {
        return zmq_errno ();
    }
    return 0;
}

static void
s_reply_error (server_t *self, const uint8_t *rid, size_t rid_len,
               bus_code_t code, const char *reason, const char *message_id)
{
    Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
    error.code = (char *) bus_errword (code);
    error.reason = (char *) reason;
    error.message_id = (char *) message_id;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
    frame.error = &error;
    out_t *out = s_out_add (self, rid, rid_len, &frame);
    if (out && message_id) {
        snprintf (out->message_id, sizeof out->message_id, "%s", message_id);
    }
}

//  ---------------------------------------------------------------------
//  Log records

static void
s_record_init (server_t *self, record_t *rec, Bulkhead__V1__RecordKind kind)
{
    bulkhead__v1__record__init (rec);
    rec->kind = kind;
    rec->time_us = s_now_us ();
    rec->policy_hash = self->policy? self->policy->hash: NULL;
}

//  Appends a record; a failure here fails the bus closed.
static int
s_append (server_t *self, record_t *rec)
{
    if (self->failed) {
        return -1;
    }
    bus_error_t err;
    if (bus_store_append (self->store, rec, &err) != 0) {
        self->failed = true;
        self->failure = err;
        s_say (self, "BUS-FAILCLOSED", "code=%s reason=\"%s\"", bus_errname (err.code), err.text);
        return -1;
    }
    return 0;
}

static void
s_log_event (server_t *self, Bulkhead__V1__RecordKind kind, const char *agent,
             const char *key_z85, bus_code_t code, const char *event)
{
    record_t rec;
    s_record_init (self, &rec, kind);
    char fp [17];
    if (key_z85) {
        bus_keys_fingerprint (fp, key_z85);
        rec.key_fp = fp;
    }
    rec.sender = (char *) agent;
    rec.code = (char *) bus_errword (code);
    rec.event = (char *) event;
    s_append (self, &rec);
}

//  ---------------------------------------------------------------------
//  DELIVER frames are built from log records only: what the recipient sees
//  is exactly what the log says it was sent.

static uint8_t *
s_deliver_pack (const record_t *rec, size_t *size)
{
    Bulkhead__V1__Deliver deliver = BULKHEAD__V1__DELIVER__INIT;
    deliver.seq = rec->seq;
    deliver.sender = rec->sender;
    deliver.message_id = rec->message_id;
    deliver.intent = rec->intent;
    deliver.intent_class = rec->intent_class;
    deliver.action = rec->action;
    deliver.resource = rec->resource;
    deliver.content_type = rec->content_type;
    deliver.has_payload = rec->has_payload;
    deliver.payload = rec->payload;
    deliver.has_restricted = true;
    deliver.restricted = rec->has_restricted && rec->restricted;
    deliver.n_causes = rec->n_causes;
    deliver.causes = rec->causes;
    deliver.justification = rec->justification;
    deliver.has_time_us = true;
    deliver.time_us = rec->time_us;
    deliver.tool = rec->tool;
    //  A released message names who said yes, so the recipient can see it.
    Bulkhead__V1__Approval approvals [BUS_HOLD_VOTES_MAX];
    Bulkhead__V1__Approval *approval_ptrs [BUS_HOLD_VOTES_MAX];
    for (size_t i = 0; i < rec->n_approvers && i < BUS_HOLD_VOTES_MAX; i++) {
        bulkhead__v1__approval__init (&approvals [i]);
        approvals [i].approver = rec->approvers [i];
        approvals [i].time_us = rec->time_us;
        approval_ptrs [i] = &approvals [i];
        deliver.n_approvals = i + 1;
    }
    deliver.approvals = approval_ptrs;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVER;
    frame.deliver = &deliver;
    return bus_wire_pack (&frame, size);
}

//  ROUTER_MANDATORY told us the connection is gone (EHOSTUNREACH): what
//  was not acknowledged stays in the mailbox for its next HELLO. Logged
//  as a session event; the record commits with the next batch.
static void
s_offline (server_t *self, session_t *session)
{
    session->online = false;
    session->backlog = true;
    s_say (self, "BUS-OFFLINE", "agent=%s acked=%llu", session->agent,
           (unsigned long long) session->acked);
    s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, session->agent, NULL, BUS_OK,
                 "disconnected (found at delivery); unacknowledged messages stay queued");
}

//  Pushes mailbox entries past session->sent while its window has room.
static void
s_pump (server_t *self, session_t *session)
{
    uint32_t window = self->options.window;
    bus_error_t err;
    while (session->online && session->backlog && session->inflight < window
           && !self->failed) {
        uint64_t seq;
        int rc = bus_store_mailbox_next (self->store, session->agent, session->sent, &seq, &err);
        if (rc == 1) {
            session->backlog = false;
            break;
        }
        record_t *rec = NULL;
        if (rc != 0 || bus_store_record (self->store, seq, &rec, &err) != 0) {
            s_say (self, "BUS-MAILBOX", "agent=%s code=%s reason=\"%s\"",
                   session->agent, bus_errname (err.code), err.text);
            break;
        }
        size_t size;
        uint8_t *data = s_deliver_pack (rec, &size);
        bulkhead__v1__record__free_unpacked (rec, NULL);
        if (!data) {
            break;
        }
        int sent = s_send_raw (self, session->rid, session->rid_len, data, size);
        free (data);
        if (sent == EHOSTUNREACH) {
            s_offline (self, session);
            break;
        }
        if (sent != 0) {
            break;                  //  EAGAIN: its queue is full; try later
        }
        session->sent = seq;
        session->inflight++;
    }
}

//  After a successful commit: send the outbox in order, then pump.
static void
s_flush (server_t *self)
{
    for (size_t i = 0; i < self->out_count; i++) {
        out_t *out = &self->outbox [i];
        session_t *session = out->session;
        if (out->deliver_seq) {
            //  Direct delivery only while the session is in step with its
            //  mailbox; otherwise the pump sends it, in order, from the log.
            if (!session->online || session->backlog || out->deliver_seq <= session->sent
            ||  session->inflight >= self->options.window) {
                if (out->deliver_seq > session->sent) {
                    session->backlog = true;
                }
            }
            else {
                int rc = s_send_raw (self, session->rid, session->rid_len, out->data, out->size);
                if (rc == 0) {
                    session->sent = out->deliver_seq;
                    session->inflight++;
                }
                else
                if (rc == EHOSTUNREACH) {
                    s_offline (self, session);
                }
                else {
                    session->backlog = true;
                }
            }
        }
        else {
            s_send_raw (self, out->rid, out->rid_len, out->data, out->size);
        }
        free (out->data);
    }
    self->out_count = 0;
    for (session_t *session = zhashx_first (self->sessions); session;
         session = zhashx_next (self->sessions)) {
        if (session->backlog && session->online) {
            s_pump (self, session);
        }
    }
}

//  The commit failed: nothing of this batch may be acknowledged. Tell each
//  peer why instead, and drop the DELIVERs.
static void
s_flush_failed (server_t *self)
{
    const char *word = bus_errword (self->failure.code);
    for (size_t i = 0; i < self->out_count; i++) {
        out_t *out = &self->outbox [i];
        if (!out->deliver_seq) {
            Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
            error.code = (char *) word;
            error.reason = self->failure.text;
            error.message_id = out->message_id [0]? out->message_id: NULL;
            frame_t frame = BULKHEAD__V1__FRAME__INIT;
            frame.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
            frame.error = &error;
            size_t size;
            uint8_t *data = bus_wire_pack (&frame, &size);
            if (data) {
                s_send_raw (self, out->rid, out->rid_len, data, size);
                free (data);
            }
        }
        free (out->data);
    }
    self->out_count = 0;
}

static void
s_commit (server_t *self)
{
    if (!self->failed && bus_store_dirty (self->store)) {
        bus_error_t err;
        if (bus_store_commit (self->store, &err) != 0) {
            self->failed = true;
            self->failure = err;
            s_say (self, "BUS-FAILCLOSED", "code=%s reason=\"%s\"",
                   bus_errname (err.code), err.text);
        }
    }
    if (self->failed) {
        s_flush_failed (self);
    }
    else {
        s_flush (self);
    }
}

//  ---------------------------------------------------------------------
//  Policy

static int
s_policy_load (server_t *self, bus_error_t *err)
{
    bus_policy_t *policy;
    if (bus_policy_load (&policy, self->options.policy_path, err) != 0) {
        return -1;
    }
    med_chain_t *chain;
    if (med_chain_open (&chain, policy, err) != 0) {
        bus_policy_destroy (&policy);
        return -1;
    }
    med_chain_destroy (&self->chain);
    bus_policy_destroy (&self->policy);
    self->policy = policy;
    self->chain = chain;
    //  Agents no longer in the policy get nothing more pushed; their keys
    //  are refused on their next frame. Sessions are never freed while the
    //  bus runs (the outbox may point at them); there is one per agent.
    for (session_t *session = self->sessions? zhashx_first (self->sessions): NULL; session;
         session = zhashx_next (self->sessions)) {
        if (!bus_policy_agent (policy, session->agent)) {
            session->online = false;
        }
    }
    return 0;
}

//  Reload on SIGHUP or an operator's command. Atomic: an invalid file is
//  refused, logged, and the old policy stays.
static int
s_policy_reload (server_t *self, const char *who, bus_error_t *err)
{
    char old [BUS_HASH_HEX_LEN + 1];
    snprintf (old, sizeof old, "%s", self->policy->hash);
    if (s_policy_load (self, err) != 0) {
        char event [700];
        snprintf (event, sizeof event, "reload refused: %s", err->text);
        s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_POLICY, who, NULL, err->code, event);
        s_say (self, "BUS-POLICY", "reload=refused by=%s reason=\"%s\"", who, err->text);
        return -1;
    }
    char event [200];
    snprintf (event, sizeof event, "policy reloaded, was %.16s", old);
    s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_POLICY, who, NULL, BUS_OK, event);
    s_say (self, "BUS-POLICY", "reload=ok by=%s hash=%.16s agents=%zu edges=%zu", who,
           self->policy->hash, self->policy->agent_count, self->policy->edge_count);
    return 0;
}

//  ---------------------------------------------------------------------
//  ZAP: our own handler, answering from the loaded policy. It is bound
//  before the ROUTER, and the ROUTER enforces the ZAP domain, so no key
//  passes while it is not answering.

static void
s_zap_handle (server_t *self)
{
    zmq_msg_t parts [8];
    int count = 0;
    int more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, self->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            break;
        }
        more = zmq_msg_more (&part);
        if (count < 8) {
            parts [count++] = part;
        }
        else {
            zmq_msg_close (&part);
        }
    }
    if (count < 6) {
        for (int i = 0; i < count; i++) {
            zmq_msg_close (&parts [i]);
        }
        return;
    }
    //  version, request id, domain, address, routing id, mechanism, credentials
    const char *status = "400";
    const char *text = "unknown key";
    char key [BUS_KEY_Z85_LEN + 1] = "";
    char address [64] = "";
    size_t addr_len = zmq_msg_size (&parts [3]);
    if (addr_len >= sizeof address) {
        addr_len = sizeof address - 1;
    }
    memcpy (address, zmq_msg_data (&parts [3]), addr_len);
    address [addr_len] = 0;
    bool curve = zmq_msg_size (&parts [5]) == 5
              && memcmp (zmq_msg_data (&parts [5]), "CURVE", 5) == 0;
    bool domain = zmq_msg_size (&parts [2]) == strlen (BUS_ZAP_DOMAIN)
               && memcmp (zmq_msg_data (&parts [2]), BUS_ZAP_DOMAIN, strlen (BUS_ZAP_DOMAIN)) == 0;
    const bus_agent_t *agent = NULL;
    if (!curve || !domain || count < 7 || zmq_msg_size (&parts [6]) != 32) {
        text = "CURVE required";
    }
    else {
        zmq_z85_encode (key, zmq_msg_data (&parts [6]), 32);
        agent = bus_policy_agent_by_key (self->policy, key);
        if (agent) {
            status = "200";
            text = "OK";
        }
    }
    //  Reply: version, request id, status code, status text, user id, metadata
    zmq_send (self->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send (self->zap, zmq_msg_data (&parts [1]), zmq_msg_size (&parts [1]), ZMQ_SNDMORE);
    zmq_send (self->zap, status, 3, ZMQ_SNDMORE);
    zmq_send (self->zap, text, strlen (text), ZMQ_SNDMORE);
    zmq_send (self->zap, agent? key: "", agent? BUS_KEY_Z85_LEN: 0, ZMQ_SNDMORE);
    zmq_send (self->zap, "", 0, 0);
    for (int i = 0; i < count; i++) {
        zmq_msg_close (&parts [i]);
    }
    char event [160];
    snprintf (event, sizeof event, "%s from %s", agent? "handshake": "handshake refused: unknown key",
              address);
    s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, agent? agent->name: NULL,
                 key [0]? key: NULL, agent? BUS_OK: BUS_EUNKNOWN, event);
    if (!agent) {
        char fp [17] = "none";
        if (key [0]) {
            bus_keys_fingerprint (fp, key);
        }
        s_say (self, "BUS-REFUSED", "address=%s key_fp=%s reason=\"%s\"", address, fp, text);
    }
}

//  ---------------------------------------------------------------------
//  Handling one agent frame

typedef struct {
    const bus_agent_t *agent;       //  from the key, in the live policy
    const char *key;                //  its Z85 public key
    session_t *session;
    uint8_t rid [BUS_RID_MAX];
    size_t rid_len;
} peer_t;

static void
    s_advance_cursor (server_t *self, session_t *session, uint64_t up_to, const char *event);

static void
s_reply (server_t *self, peer_t *peer, const frame_t *frame, const char *message_id)
{
    out_t *out = s_out_add (self, peer->rid, peer->rid_len, frame);
    if (out && message_id) {
        snprintf (out->message_id, sizeof out->message_id, "%s", message_id);
    }
}

//  Logs a refused frame and answers ERROR.
static void
s_refuse (server_t *self, peer_t *peer, bus_code_t code, const char *reason,
          const char *message_id)
{
    record_t rec;
    s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_ERROR);
    char fp [17];
    if (peer->key) {
        bus_keys_fingerprint (fp, peer->key);
        rec.key_fp = fp;
    }
    rec.sender = peer->agent? (char *) peer->agent->name: NULL;
    rec.code = (char *) bus_errword (code);
    rec.reason = (char *) reason;
    rec.message_id = (char *) message_id;
    s_append (self, &rec);
    s_reply_error (self, peer->rid, peer->rid_len, code, reason, message_id);
    s_say (self, "BUS-ERROR", "agent=%s key_fp=%s code=%s reason=\"%s\"",
           peer->agent? peer->agent->name: "-", peer->key? fp: "-", bus_errname (code), reason);
}

static void
s_ack (server_t *self, peer_t *peer, const char *message_id, Bulkhead__V1__Verdict verdict,
       bus_code_t code, const char *reason, uint64_t seq, const char *intent_class,
       bool restricted, const char *approval_id)
{
    Bulkhead__V1__Ack ack = BULKHEAD__V1__ACK__INIT;
    ack.message_id = (char *) message_id;
    ack.verdict = verdict;
    ack.code = (char *) bus_errword (code);
    ack.reason = (char *) reason;
    ack.has_seq = seq > 0;
    ack.seq = seq;
    ack.intent_class = (char *) intent_class;
    ack.has_restricted = true;
    ack.restricted = restricted;
    ack.approval_id = (char *) approval_id;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ACK;
    frame.ack = &ack;
    s_reply (self, peer, &frame, message_id);
}

static void
s_on_hello (server_t *self, peer_t *peer, const Bulkhead__V1__Hello *hello)
{
    if (hello->version != BUS_PROTOCOL_VERSION) {
        char reason [128];
        snprintf (reason, sizeof reason, "protocol version %u is not supported (this bus speaks %d)",
                  hello->version, BUS_PROTOCOL_VERSION);
        s_refuse (self, peer, BUS_EVERSION, reason, NULL);
        return;
    }
    session_t *session = peer->session;
    session->hello = true;
    session->online = true;
    //  Resume after what it says it has processed, never before what it
    //  acknowledged: an agent that lost its state gets no replay of acked
    //  messages, one that kept it gets nothing twice.
    if (hello->has_last_seq && hello->last_seq <= bus_store_last_seq (self->store)) {
        s_advance_cursor (self, session, hello->last_seq, "hello: processed up to ref_seq");
    }
    uint64_t resume = session->acked;
    session->sent = resume;
    session->inflight = 0;
    session->backlog = true;

    //  WELCOME lists what it may reach, so an agent can plan within policy.
    const bus_policy_t *policy = self->policy;
    uint32_t me = bus_policy_agent_index (policy, peer->agent);
    Bulkhead__V1__Reach *reach = calloc (policy->edge_count + 1, sizeof *reach);
    Bulkhead__V1__Reach **reach_ptrs = calloc (policy->edge_count + 1, sizeof *reach_ptrs);
    char **names = calloc (policy->class_count + 1, sizeof *names);
    char **intents = calloc (policy->edge_count * policy->class_count + 1, sizeof *intents);
    size_t n_reach = 0;
    size_t n_intents = 0;
    if (reach && reach_ptrs && names && intents) {
        for (size_t i = 0; i < policy->edge_count; i++) {
            const bus_edge_t *edge = &policy->edges [i];
            if (edge->from != me) {
                continue;
            }
            bulkhead__v1__reach__init (&reach [n_reach]);
            reach [n_reach].recipient = (char *) policy->agents [edge->to].name;
            reach [n_reach].intents = intents + n_intents;
            for (size_t c = 0; c < policy->class_count; c++) {
                if (edge->classes & (UINT64_C (1) << c)) {
                    intents [n_intents++] = (char *) policy->classes [c].name;
                    reach [n_reach].n_intents++;
                }
            }
            reach_ptrs [n_reach] = &reach [n_reach];
            n_reach++;
        }
    }
    Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
    welcome.agent = (char *) peer->agent->name;
    welcome.version = BUS_PROTOCOL_VERSION;
    welcome.policy_hash = self->policy->hash;
    welcome.n_reach = n_reach;
    welcome.reach = reach_ptrs;
    welcome.has_resume_from = true;
    welcome.resume_from = resume;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
    frame.welcome = &welcome;
    s_reply (self, peer, &frame, NULL);
    free (reach);
    free (reach_ptrs);
    free (names);
    free (intents);

    char event [160];
    snprintf (event, sizeof event, "hello, resume after %llu", (unsigned long long) resume);
    s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, peer->agent->name, peer->key,
                 BUS_OK, event);
    s_say (self, "BUS-HELLO", "agent=%s resume=%llu", peer->agent->name, (unsigned long long) resume);
}

//  A message accepted for recipient (just logged as delivered or queued):
//  count it against the mailbox cap, taint the recipient if it is
//  restricted, and deliver it after the commit if the recipient is in step
//  with its mailbox (else the pump sends it, in order, from the log).
static void
s_accept (server_t *self, session_t *recipient, const record_t *rec, const char *via)
{
    recipient->pending++;
    //  Restricted content taints whoever it is accepted for, from now: the
    //  recipient's own messages are then restricted too (sticky mode), so a
    //  relay cannot launder it. Queued counts as received.
    if (rec->has_restricted && rec->restricted && recipient->taint_seq == 0
    &&  s_taint_set (self, recipient, rec->seq, rec->time_us) == 0) {
        s_say (self, "BUS-TAINT", "agent=%s seq=%llu via=%s", recipient->agent,
               (unsigned long long) rec->seq, via);
    }
    out_t *out = recipient->online? s_out_slot (self): NULL;
    uint8_t *data = NULL;
    size_t size = 0;
    if (out && (data = s_deliver_pack (rec, &size))) {
        out->session = recipient;
        out->data = data;
        out->size = size;
        out->deliver_seq = rec->seq;
        self->out_count++;
    }
    else {
        recipient->backlog = true;
    }
}

//  ---------------------------------------------------------------------
//  The approval queue

static bool
s_may_approve (const bus_agent_t *agent, const bus_class_t *cls)
{
    if (!(agent->roles & BUS_ROLE_APPROVER)) {
        return false;
    }
    if (cls->approver_count == 0) {
        return true;                    //  the class names none: any approver
    }
    for (size_t i = 0; i < cls->approver_count; i++) {
        if (strcmp (cls->approvers [i], agent->name) == 0) {
            return true;
        }
    }
    return false;
}

static void
s_pending_fill (Bulkhead__V1__Pending *pending, const bus_hold_t *hold, char **votes)
{
    bulkhead__v1__pending__init (pending);
    pending->approval_id = (char *) hold->id;
    pending->sender = (char *) hold->sender;
    pending->recipient = (char *) hold->recipient;
    pending->intent_class = (char *) hold->intent_class;
    pending->action = hold->action [0]? (char *) hold->action: NULL;
    pending->resource = hold->resource [0]? (char *) hold->resource: NULL;
    pending->justification = hold->justification;
    pending->has_restricted = true;
    pending->restricted = hold->restricted;
    pending->digest.data = (uint8_t *) hold->digest;
    pending->digest.len = sizeof hold->digest;
    pending->has_expires_us = true;
    pending->expires_us = hold->expires_us;
    pending->has_seq = true;
    pending->seq = hold->seq;
    pending->has_quorum = true;
    pending->quorum = hold->quorum;
    for (uint32_t i = 0; i < hold->n_votes; i++) {
        votes [i] = (char *) hold->votes [i];
    }
    pending->n_votes = hold->n_votes;
    pending->votes = votes;
}

//  Tells every connected approver of the hold's class that it waits.
static void
s_notify_approvers (server_t *self, const bus_hold_t *hold)
{
    int index = bus_policy_class (self->policy, hold->intent_class);
    if (index < 0) {
        return;
    }
    const bus_class_t *cls = &self->policy->classes [index];
    Bulkhead__V1__Pending pending;
    char *votes [BUS_HOLD_VOTES_MAX];
    s_pending_fill (&pending, hold, votes);
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_PENDING;
    frame.pending = &pending;
    for (size_t i = 0; i < self->policy->agent_count; i++) {
        const bus_agent_t *agent = &self->policy->agents [i];
        session_t *session = zhashx_lookup (self->sessions, agent->name);
        if (session && session->online && strcmp (agent->name, hold->sender) != 0
        &&  s_may_approve (agent, cls)) {
            s_out_add (self, session->rid, session->rid_len, &frame);
        }
    }
}

//  Records a hold transition in the log. Returns 0 or -1 (failed closed).
static int
s_hold_record (server_t *self, const bus_hold_t *hold, const char *actor, bus_code_t code,
               const char *event)
{
    record_t rec;
    s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_HOLD);
    rec.sender = (char *) actor;
    rec.recipient = (char *) hold->sender;
    rec.intent_class = (char *) hold->intent_class;
    rec.message_id = (char *) hold->message_id;
    rec.approval_id = (char *) hold->id;
    rec.has_ref_seq = true;
    rec.ref_seq = hold->seq;
    rec.code = (char *) bus_errword (code);
    rec.event = (char *) event;
    return s_append (self, &rec);
}

//  The message `rec` (just logged as held) goes into the queue.
static int
s_hold (server_t *self, const record_t *rec, uint32_t quorum, uint32_t ttl_s)
{
    bus_hold_t hold;
    memset (&hold, 0, sizeof hold);
    snprintf (hold.id, sizeof hold.id, "%s", rec->approval_id);
    hold.seq = rec->seq;
    //  What approvers approve is exactly this record: its stored bytes.
    size_t size = bulkhead__v1__record__get_packed_size (rec);
    uint8_t *packed = malloc (size);
    if (!packed) {
        //  The record already says held: without its hold the batch must
        //  not commit.
        self->failed = true;
        bus_fail (&self->failure, BUS_ENOMEM, "out of memory for a hold");
        return -1;
    }
    bulkhead__v1__record__pack (rec, packed);
    bus_hash (hold.digest, packed, size);
    free (packed);
    snprintf (hold.message_id, sizeof hold.message_id, "%s", rec->message_id);
    snprintf (hold.sender, sizeof hold.sender, "%s", rec->sender);
    snprintf (hold.recipient, sizeof hold.recipient, "%s", rec->recipient);
    snprintf (hold.intent_class, sizeof hold.intent_class, "%s", rec->intent_class);
    snprintf (hold.action, sizeof hold.action, "%s", rec->action? rec->action: "");
    snprintf (hold.resource, sizeof hold.resource, "%s", rec->resource? rec->resource: "");
    hold.justification = rec->justification;
    hold.restricted = rec->has_restricted && rec->restricted;
    hold.created_us = rec->time_us;
    hold.expires_us = rec->time_us + (uint64_t) ttl_s * 1000000u;
    hold.quorum = quorum? quorum: 1;
    hold.state = BULKHEAD__V1__HOLD_STATE__HOLD_PENDING;
    bus_error_t err;
    if (bus_holds_add (self->holds, &hold, &err) != 0) {
        self->failed = true;
        self->failure = err;
        return -1;
    }
    s_notify_approvers (self, &hold);
    return 0;
}

//  Tells the sender how its held message ended, if it is connected. The
//  log has it in any case.
static void
s_tell_sender (server_t *self, const bus_hold_t *hold, Bulkhead__V1__Verdict verdict,
               bus_code_t code, const char *reason, uint64_t seq)
{
    session_t *session = zhashx_lookup (self->sessions, hold->sender);
    if (!session || !session->online) {
        return;
    }
    peer_t peer;
    memset (&peer, 0, sizeof peer);
    memcpy (peer.rid, session->rid, session->rid_len);
    peer.rid_len = session->rid_len;
    s_ack (self, &peer, hold->message_id, verdict, code, reason, seq, hold->intent_class,
           hold->restricted, hold->id);
}

//  Quorum reached: log the message again as delivered or queued (a new
//  record, so the recipient's mailbox stays in log order), naming its
//  approvers, and mark the hold released, all in this batch.
static void
s_release (server_t *self, bus_hold_t *hold)
{
    record_t *held = NULL;
    bus_error_t err;
    if (bus_store_record (self->store, hold->seq, &held, &err) != 0) {
        s_say (self, "BUS-HOLD", "id=%s reason=\"cannot read held record: %s\"", hold->id, err.text);
        return;
    }
    session_t *recipient = s_session (self, hold->recipient);
    if (!recipient) {
        bulkhead__v1__record__free_unpacked (held, NULL);
        return;
    }
    char reason [300];
    snprintf (reason, sizeof reason, "released: approved by %u of %u", hold->n_votes, hold->quorum);
    char *approvers [BUS_HOLD_VOTES_MAX];
    for (uint32_t i = 0; i < hold->n_votes; i++) {
        approvers [i] = hold->votes [i];
    }
    record_t rec = *held;
    rec.seq = 0;
    rec.time_us = s_now_us ();
    rec.policy_hash = self->policy->hash;
    rec.has_verdict = true;
    rec.verdict = recipient->online? BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
                                   : BULKHEAD__V1__VERDICT__VERDICT_QUEUED;
    rec.code = (char *) bus_errword (BUS_OK);
    rec.reason = reason;
    rec.event = "release";
    rec.has_ref_seq = true;
    rec.ref_seq = hold->seq;
    rec.n_approvers = hold->n_votes;
    rec.approvers = approvers;
    rec.prev_hash.data = NULL;
    rec.prev_hash.len = 0;
    if (s_append (self, &rec) == 0) {
        s_accept (self, recipient, &rec, hold->sender);
        hold->state = BULKHEAD__V1__HOLD_STATE__HOLD_RELEASED;
        hold->release_seq = rec.seq;
        s_tell_sender (self, hold, rec.verdict, BUS_OK, reason, rec.seq);
        s_say (self, "BUS-RELEASE", "id=%s seq=%llu held=%llu", hold->id,
               (unsigned long long) rec.seq, (unsigned long long) hold->seq);
        if (bus_holds_save (self->holds, hold, &err) != 0) {
            self->failed = true;
            self->failure = err;
        }
    }
    //  rec only borrowed held's fields (the store packed its own copy), so
    //  freeing held frees each of them once.
    bulkhead__v1__record__free_unpacked (held, NULL);
}

//  Ends a pending hold without delivery: denied or expired.
static void
s_close_hold (server_t *self, bus_hold_t *hold, int state, const char *actor,
              bus_code_t code, const char *reason)
{
    hold->state = state;
    snprintf (hold->reason, sizeof hold->reason, "%s", reason);
    s_hold_record (self, hold, actor, code, reason);
    s_tell_sender (self, hold, BULKHEAD__V1__VERDICT__VERDICT_DENIED, code, reason, hold->seq);
    s_say (self, "BUS-HOLD", "id=%s state=%s by=%s reason=\"%s\"", hold->id,
           state == BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED? "expired": "denied",
           actor? actor: "-", reason);
    bus_error_t err;
    if (bus_holds_save (self->holds, hold, &err) != 0) {
        self->failed = true;
        self->failure = err;
    }
}

//  ---------------------------------------------------------------------
//  Standing grants: one approver lets the next N messages, or those of the
//  next T minutes, of exactly one (sender, recipient, class, action)
//  through without a hold. Never wider than named, never wider than the
//  policy, never for a quorum above one, never for restricted messages.

#define BUS_GRANT_COUNT_MAX     1000
#define BUS_GRANT_MINUTES_MAX   1440    //  also the life of a grant by count only
#define BUS_GRANT_SECONDS_MAX   (BUS_GRANT_MINUTES_MAX * 60)

//  Whether approver may let sender -> recipient messages of class_name
//  through. Checked when a grant is made and again at every use, against
//  the live policy, so a reload can only narrow what stands.
static bus_code_t
s_grant_allowed (server_t *self, const bus_agent_t *approver, const char *sender,
                 const char *recipient, const char *class_name, char *reason, size_t size)
{
    const bus_policy_t *policy = self->policy;
    if (!(approver->roles & BUS_ROLE_APPROVER)) {
        snprintf (reason, size, "%s is not an approver (policy: role = approver)", approver->name);
        return BUS_EPERM;
    }
    int index = bus_policy_class (policy, class_name);
    if (index < 0) {
        snprintf (reason, size, "no class '%.64s' in the policy", class_name);
        return BUS_ENOTFOUND;
    }
    const bus_class_t *cls = &policy->classes [index];
    if (!s_may_approve (approver, cls)) {
        snprintf (reason, size, "%s may not approve %s messages", approver->name, cls->name);
        return BUS_EPERM;
    }
    if (strcmp (approver->name, sender) == 0) {
        snprintf (reason, size, "%s may not grant its own messages", approver->name);
        return BUS_EPERM;
    }
    if (!cls->hold) {
        snprintf (reason, size, "%s messages are not held; there is nothing to grant", cls->name);
        return BUS_EINVAL;
    }
    if (cls->quorum > 1) {
        snprintf (reason, size, "%s needs %u approvals per message; a grant is one approver's "
                  "and cannot stand in for a quorum", cls->name, cls->quorum);
        return BUS_EPERM;
    }
    const bus_agent_t *from = bus_policy_agent (policy, sender);
    const bus_agent_t *to = bus_policy_agent (policy, recipient);
    if (!from || !to) {
        snprintf (reason, size, "no agent '%.64s' in the policy", from? recipient: sender);
        return BUS_ENOTFOUND;
    }
    if (from->untrusted) {
        snprintf (reason, size, "%s is untrusted: its messages are restricted, and restricted "
                  "messages always go to a person", sender);
        return BUS_EPERM;
    }
    const bus_edge_t *edge = bus_policy_edge (policy, from, to);
    if (!edge || !(edge->classes & (UINT64_C (1) << index))) {
        snprintf (reason, size, "the policy has no edge %s -> %s carrying %s; a grant is never "
                  "wider than the policy", sender, recipient, cls->name);
        return BUS_EDENIED;
    }
    return BUS_OK;
}

//  Records a grant's transition in the log. Returns 0 or -1 (failed closed).
static int
s_grant_record (server_t *self, const bus_grant_t *grant, const char *actor, bus_code_t code,
                const char *event, uint64_t ref_seq)
{
    record_t rec;
    s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_HOLD);
    rec.sender = (char *) actor;
    rec.recipient = (char *) grant->recipient;
    rec.intent_class = (char *) grant->intent_class;
    rec.action = grant->action [0]? (char *) grant->action: NULL;
    rec.approval_id = (char *) grant->id;
    rec.has_ref_seq = ref_seq > 0;
    rec.ref_seq = ref_seq;
    rec.code = (char *) bus_errword (code);
    rec.event = (char *) event;
    return s_append (self, &rec);
}

//  Ends a grant (used up, expired, revoked, no longer allowed): logged
//  once, then gone from memory and the pending database.
static void
s_grant_end (server_t *self, bus_grant_t *grant, const char *actor, bus_code_t code,
             const char *event)
{
    s_grant_record (self, grant, actor, code, event, 0);
    s_say (self, "BUS-GRANT", "id=%s state=ended by=%s event=\"%s\"", grant->id,
           actor? actor: "-", event);
    bus_error_t err;
    if (bus_holds_grant_save (self->holds, grant, true, &err) != 0) {
        self->failed = true;
        self->failure = err;
    }
}

static void
s_expire_grants (server_t *self, uint64_t now)
{
    //  Backwards: ending a grant moves the last one into its place.
    for (uint32_t i = bus_holds_grant_count (self->holds); i-- > 0 && !self->failed; ) {
        bus_grant_t *grant = bus_holds_grant_at (self->holds, i);
        if (grant->expires_us <= now) {
            char event [80];
            snprintf (event, sizeof event, "grant %s expired", grant->id);
            s_grant_end (self, grant, NULL, BUS_EEXPIRED, event);
        }
    }
}

//  The live grant that lets this held message through, or NULL. Expiry is
//  also checked here, so a grant never outlives its time between sweeps;
//  a grant the live policy no longer allows ends here.
static bus_grant_t *
s_grant_for (server_t *self, const bus_envelope_t *env)
{
    if (bus_holds_grant_count (self->holds) == 0 || env->restricted) {
        return NULL;
    }
    s_expire_grants (self, env->now_us);
    const char *class_name = self->policy->classes [env->class_index].name;
    bus_grant_t *grant;
    while (!self->failed
       &&  (grant = bus_holds_grant_match (self->holds, env->sender->name, env->recipient->name,
                                           class_name, env->send->action))) {
        const bus_agent_t *approver = bus_policy_agent (self->policy, grant->approver);
        char why [300];
        if (!approver) {
            snprintf (why, sizeof why, "no agent '%s' in the policy", grant->approver);
        }
        else
        if (s_grant_allowed (self, approver, grant->sender, grant->recipient, grant->intent_class,
                             why, sizeof why) == BUS_OK) {
            return grant;
        }
        char event [400];
        snprintf (event, sizeof event, "grant %s ended: the policy no longer allows it (%s)",
                  grant->id, why);
        s_grant_end (self, grant, NULL, BUS_EPERM, event);
    }
    return NULL;
}

//  A message went through under grant (logged at seq): count it, in the
//  same batch, and end the grant when that was its last message.
static void
s_grant_use (server_t *self, bus_grant_t *grant, uint64_t seq)
{
    char event [120];
    if (grant->counted) {
        grant->remaining--;
        snprintf (event, sizeof event, "grant %s used (%u left)", grant->id, grant->remaining);
    }
    else {
        snprintf (event, sizeof event, "grant %s used (until its time ends)", grant->id);
    }
    if (s_grant_record (self, grant, grant->approver, BUS_OK, event, seq) != 0) {
        return;
    }
    s_say (self, "BUS-GRANT", "id=%s seq=%llu event=\"%s\"", grant->id, (unsigned long long) seq, event);
    if (grant->counted && grant->remaining == 0) {
        snprintf (event, sizeof event, "grant %s used up", grant->id);
        s_grant_end (self, grant, NULL, BUS_OK, event);
        return;
    }
    bus_error_t err;
    if (bus_holds_grant_save (self->holds, grant, false, &err) != 0) {
        self->failed = true;
        self->failure = err;
    }
}

//  CONTROL_GRANT: make a grant, or revoke one (id and no count, minutes or
//  seconds). The reply's one line is the grant id.
static bus_code_t
s_on_grant_control (server_t *self, peer_t *peer, const Bulkhead__V1__Control *control,
                    Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    //  The reply is packed before the next control frame is handled.
    static char line [BUS_HOLD_ID_MAX + 1];
    static char *lines [1] = { line };
    const bus_agent_t *me = peer->agent;
    uint32_t count = control->has_count? control->count: 0;
    uint32_t minutes = control->has_minutes? control->minutes: 0;
    uint32_t seconds = control->has_seconds? control->seconds: 0;
    if (control->id && !count && !minutes && !seconds) {
        bus_grant_t *grant = bus_holds_grant_find (self->holds, control->id);
        if (!grant) {
            snprintf (reason, size, "no live grant '%.32s' (ended grants are in the log: "
                      "bulkhead log --kind hold)", control->id);
            return BUS_ENOTFOUND;
        }
        if (strcmp (grant->approver, me->name) != 0 && !(me->roles & BUS_ROLE_OPERATOR)) {
            snprintf (reason, size, "%s may not revoke %s: only its approver %s or an operator may",
                      me->name, grant->id, grant->approver);
            return BUS_EPERM;
        }
        snprintf (line, sizeof line, "%s", grant->id);
        snprintf (reason, size, "grant %s revoked by %s", grant->id, me->name);
        s_grant_end (self, grant, me->name, BUS_OK, reason);
        reply->n_lines = 1;
        reply->lines = lines;
        return BUS_OK;
    }
    if (control->id) {
        snprintf (reason, size, "a new grant takes no id; to revoke a grant give its id alone");
        return BUS_EINVAL;
    }
    if ((!count && !minutes && !seconds) || count > BUS_GRANT_COUNT_MAX
    ||  minutes > BUS_GRANT_MINUTES_MAX || seconds > BUS_GRANT_SECONDS_MAX) {
        snprintf (reason, size, "a grant needs count 1..%d and/or minutes 1..%d (or seconds 1..%d)",
                  BUS_GRANT_COUNT_MAX, BUS_GRANT_MINUTES_MAX, BUS_GRANT_SECONDS_MAX);
        return BUS_EINVAL;
    }
    const char *sender = control->agent? control->agent: "";
    const char *recipient = control->recipient? control->recipient: "";
    const char *class_name = control->intent_class? control->intent_class: "";
    if (!bus_name_valid (sender, strlen (sender)) || !bus_name_valid (recipient, strlen (recipient))
    ||  !bus_name_valid (class_name, strlen (class_name))) {
        snprintf (reason, size, "a grant names its sender (agent), recipient and intent class "
                  "(a-z 0-9 . _ -)");
        return BUS_EINVAL;
    }
    if (control->action && !bus_text_valid (control->action, BUS_FIELD_MAX)) {
        snprintf (reason, size, "action must be UTF-8 text of at most %d bytes", BUS_FIELD_MAX);
        return BUS_EINVAL;
    }
    bus_code_t code = s_grant_allowed (self, me, sender, recipient, class_name, reason, size);
    if (code != BUS_OK) {
        return code;
    }
    bus_grant_t grant;
    memset (&grant, 0, sizeof grant);
    uint8_t raw [6];
    randombytes_buf (raw, sizeof raw);
    char hex [13];
    sodium_bin2hex (hex, sizeof hex, raw, sizeof raw);
    snprintf (grant.id, sizeof grant.id, "g-%s", hex);
    snprintf (grant.approver, sizeof grant.approver, "%s", me->name);
    snprintf (grant.sender, sizeof grant.sender, "%s", sender);
    snprintf (grant.recipient, sizeof grant.recipient, "%s", recipient);
    snprintf (grant.intent_class, sizeof grant.intent_class, "%s", class_name);
    snprintf (grant.action, sizeof grant.action, "%s", control->action? control->action: "");
    grant.counted = count > 0;
    grant.remaining = count;
    //  Nothing standing is forever: a grant by count ends after a day too.
    uint64_t life_s = minutes? minutes * UINT64_C (60): seconds? seconds: BUS_GRANT_SECONDS_MAX;
    grant.created_us = s_now_us ();
    grant.expires_us = grant.created_us + life_s * 1000000u;
    bus_error_t err;
    if (bus_holds_grant_add (self->holds, &grant, &err) != 0) {
        if (err.code != BUS_EINVAL) {
            self->failed = true;
            self->failure = err;
        }
        snprintf (reason, size, "%s", err.text);
        return err.code;
    }
    char limit [48] = "";
    if (count) {
        snprintf (limit, sizeof limit, "next %u message%s, ", count, count == 1? "": "s");
    }
    snprintf (reason, size, "grant %s by %s: %s -> %s %s action=%.64s, %sfor %llu s", grant.id,
              me->name, sender, recipient, class_name, grant.action [0]? grant.action: "(none)",
              limit, (unsigned long long) life_s);
    s_grant_record (self, &grant, me->name, BUS_OK, reason, 0);
    s_say (self, "BUS-GRANT", "id=%s state=made event=\"%s\"", grant.id, reason);
    snprintf (line, sizeof line, "%s", grant.id);
    reply->n_lines = 1;
    reply->lines = lines;
    return BUS_OK;
}

static void
s_expire_holds (server_t *self)
{
    uint64_t now = s_now_us ();
    if (now < self->next_expiry_us || self->failed) {
        return;
    }
    self->next_expiry_us = now + 200000;
    //  Backwards: closing a hold moves the last one into its place.
    for (uint32_t i = bus_holds_size (self->holds); i-- > 0; ) {
        bus_hold_t *hold = bus_holds_at (self->holds, i);
        if (hold && hold->expires_us <= now) {
            s_close_hold (self, hold, BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED, NULL, BUS_EEXPIRED,
                          "expired: no decision within the hold's time to live");
        }
    }
    s_expire_grants (self, now);
}

//  The checks an approver's APPROVE or DENY must pass, in the order a
//  person would want them explained. Returns the pending hold, or NULL
//  with code and reason set.
static bus_hold_t *
s_hold_for (server_t *self, const bus_agent_t *approver, const char *id,
            bus_code_t *code, char *reason, size_t size)
{
    bus_error_t err;
    int state;
    char why [256];
    if (!(approver->roles & BUS_ROLE_APPROVER)) {
        *code = BUS_EPERM;
        snprintf (reason, size, "%s is not an approver (policy: role = approver)", approver->name);
        return NULL;
    }
    bus_hold_t *hold = bus_holds_find (self->holds, id);
    if (!hold) {
        static const char *states [] = { "?", "pending", "already approved and released",
                                         "already denied", "already expired" };
        if (bus_holds_state (self->holds, id, &state, why, &err) != 0) {
            *code = BUS_ENOTFOUND;
            snprintf (reason, size, "no held message '%.32s' (see: bulkhead pending)", id);
        }
        else {
            *code = state == BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED? BUS_EEXPIRED: BUS_EPERM;
            snprintf (reason, size, "%s is %s%s%.200s", id, states [(unsigned) state < 5? state: 0],
                      why [0]? ": ": "", why);
        }
        return NULL;
    }
    int index = bus_policy_class (self->policy, hold->intent_class);
    if (index < 0 || !s_may_approve (approver, &self->policy->classes [index])) {
        *code = BUS_EPERM;
        snprintf (reason, size, "%s may not approve %s messages", approver->name, hold->intent_class);
        return NULL;
    }
    if (strcmp (approver->name, hold->sender) == 0) {
        *code = BUS_EPERM;
        snprintf (reason, size, "%s may not decide on its own message", approver->name);
        return NULL;
    }
    if (hold->expires_us <= s_now_us ()) {
        *code = BUS_EEXPIRED;
        snprintf (reason, size, "%s expired before this decision", id);
        s_close_hold (self, hold, BULKHEAD__V1__HOLD_STATE__HOLD_EXPIRED, NULL, BUS_EEXPIRED,
                      "expired: no decision within the hold's time to live");
        return NULL;
    }
    //  The policy may have changed since the message was held: an approval
    //  never releases what the live policy would not carry.
    const bus_agent_t *sender = bus_policy_agent (self->policy, hold->sender);
    const bus_agent_t *recipient = bus_policy_agent (self->policy, hold->recipient);
    const bus_edge_t *edge = sender && recipient? bus_policy_edge (self->policy, sender, recipient): NULL;
    if (!edge || !(edge->classes & (UINT64_C (1) << index))) {
        *code = BUS_EDENIED;
        snprintf (reason, size, "%s: the policy no longer carries %s -> %s %s; denied", id,
                  hold->sender, hold->recipient, hold->intent_class);
        s_close_hold (self, hold, BULKHEAD__V1__HOLD_STATE__HOLD_DENIED, NULL, BUS_EDENIED,
                      "denied: the policy no longer allows this edge and class");
        return NULL;
    }
    return hold;
}

static bus_code_t
s_on_approval_control (server_t *self, peer_t *peer, const Bulkhead__V1__Control *control,
                       Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    bus_code_t code = BUS_OK;
    const bus_agent_t *me = peer->agent;
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING) {
        if (!(me->roles & BUS_ROLE_APPROVER)) {
            snprintf (reason, size, "%s is not an approver (policy: role = approver)", me->name);
            return BUS_EPERM;
        }
        //  What waits for this approver: static storage, the reply is
        //  packed before the next control frame is handled.
        static Bulkhead__V1__Pending items [1024];
        static Bulkhead__V1__Pending *item_ptrs [1024];
        static char *votes [1024][BUS_HOLD_VOTES_MAX];
        size_t n = 0;
        for (uint32_t i = 0; i < bus_holds_size (self->holds) && n < 1024; i++) {
            bus_hold_t *hold = bus_holds_at (self->holds, i);
            int index = bus_policy_class (self->policy, hold->intent_class);
            if (index >= 0 && s_may_approve (me, &self->policy->classes [index])
            &&  strcmp (hold->sender, me->name) != 0) {
                s_pending_fill (&items [n], hold, votes [n]);
                item_ptrs [n] = &items [n];
                n++;
            }
        }
        reply->n_pending = n;
        reply->pending = item_ptrs;
        snprintf (reason, size, "%zu message%s wait%s for %s", n, n == 1? "": "s",
                  n == 1? "s": "", me->name);
        return BUS_OK;
    }
    const char *id = control->id? control->id: "";
    bus_hold_t *hold = s_hold_for (self, me, id, &code, reason, size);
    if (!hold) {
        return code;
    }
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_DENY) {
        char why [256];
        snprintf (why, sizeof why, "denied by %s: %.120s", me->name,
                  control->reason && control->reason [0]? control->reason: "no reason given");
        snprintf (reason, size, "%s %s", id, why);
        s_close_hold (self, hold, BULKHEAD__V1__HOLD_STATE__HOLD_DENIED, me->name, BUS_EDENIED, why);
        return BUS_OK;
    }
    //  APPROVE names the exact message: an approval cannot release
    //  anything but what the approver read.
    if (!control->has_digest || control->digest.len != sizeof hold->digest
    ||  sodium_memcmp (control->digest.data, hold->digest, sizeof hold->digest) != 0) {
        snprintf (reason, size, "approval names a different message than %s; read it again "
                  "(bulkhead pending) and approve what you read", id);
        s_hold_record (self, hold, me->name, BUS_EINVAL, "approval refused: digest does not match");
        return BUS_EINVAL;
    }
    for (uint32_t i = 0; i < hold->n_votes; i++) {
        if (strcmp (hold->votes [i], me->name) == 0) {
            snprintf (reason, size, "%s already approved %s; one approver counts once", me->name, id);
            s_hold_record (self, hold, me->name, BUS_EDUPLICATE, "second vote by the same approver ignored");
            return BUS_EDUPLICATE;
        }
    }
    if (hold->n_votes >= BUS_HOLD_VOTES_MAX) {
        snprintf (reason, size, "%s has the most votes a hold can take", id);
        return BUS_EINVAL;
    }
    snprintf (hold->votes [hold->n_votes++], sizeof hold->votes [0], "%s", me->name);
    char event [128];
    snprintf (event, sizeof event, "approval %u of %u by %s", hold->n_votes, hold->quorum, me->name);
    s_hold_record (self, hold, me->name, BUS_OK, event);
    snprintf (reason, size, "%s: %s", id, event);
    if (hold->n_votes >= hold->quorum) {
        snprintf (reason, size, "%s: %s; released to %s", id, event, hold->recipient);
        s_release (self, hold);
    }
    else {
        bus_error_t err;
        if (bus_holds_save (self->holds, hold, &err) != 0) {
            self->failed = true;
            self->failure = err;
        }
    }
    return BUS_OK;
}

//  Checks what an agent put in a SEND before any of it is trusted, logged
//  or compared. Returns NULL if fine, else the sentence.
static const char *
s_send_invalid (const Bulkhead__V1__Send *send)
{
    if (!bus_id_valid (send->message_id, BUS_MESSAGE_ID_MAX)) {
        return "message_id must be 1-128 printable ASCII characters";
    }
    if (!bus_name_valid (send->recipient, strlen (send->recipient))) {
        return "recipient is not a valid agent name (a-z 0-9 . _ -)";
    }
    if (!bus_name_valid (send->intent, strlen (send->intent))) {
        return "intent is not a valid class name (a-z 0-9 . _ -)";
    }
    const char *fields [] = { send->action, send->resource, send->content_type,
                              send->source, send->tool, send->sender };
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
        if (fields [i] && !bus_text_valid (fields [i], BUS_FIELD_MAX)) {
            return "action, resource, content_type, source, tool and sender must be "
                   "UTF-8 text of at most 256 bytes";
        }
    }
    if (send->justification && !bus_text_valid (send->justification, BUS_JUSTIFICATION_MAX)) {
        return "justification must be UTF-8 text of at most 4096 bytes";
    }
    if (send->n_causes > 64) {
        return "at most 64 causes";
    }
    return NULL;
}

static void
s_on_send (server_t *self, peer_t *peer, const Bulkhead__V1__Send *send)
{
    const char *invalid = s_send_invalid (send);
    if (invalid) {
        const char *id = bus_id_valid (send->message_id, BUS_MESSAGE_ID_MAX)? send->message_id: NULL;
        s_refuse (self, peer, BUS_EMALFORMED, invalid, id);
        return;
    }
    //  Idempotency: a message id this sender used before is answered with
    //  the first verdict and never delivered again.
    uint64_t first_seq;
    bus_error_t err;
    if (bus_store_find_msgid (self->store, peer->agent->name, send->message_id, &first_seq, &err) == 0) {
        record_t *first = NULL;
        if (bus_store_record (self->store, first_seq, &first, &err) == 0) {
            record_t rec;
            s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_ERROR);
            rec.sender = (char *) peer->agent->name;
            rec.message_id = send->message_id;
            rec.code = (char *) bus_errword (BUS_EDUPLICATE);
            rec.event = "resent message id answered with its first verdict";
            rec.has_ref_seq = true;
            rec.ref_seq = first_seq;
            s_append (self, &rec);
            char reason [200];
            snprintf (reason, sizeof reason, "message id already used: first verdict %s at seq %llu; "
                      "not delivered again", first->code? first->code: "?",
                      (unsigned long long) first_seq);
            s_ack (self, peer, send->message_id, first->verdict, BUS_EDUPLICATE, reason, first_seq,
                   first->intent_class, first->has_restricted && first->restricted,
                   first->approval_id);
            bulkhead__v1__record__free_unpacked (first, NULL);
            return;
        }
    }

    bus_envelope_t env;
    memset (&env, 0, sizeof env);
    env.policy = self->policy;
    env.sender = peer->agent;
    env.recipient = bus_policy_agent (self->policy, send->recipient);
    env.send = send;
    env.now_us = s_now_us ();
    env.class_index = bus_policy_class (self->policy, send->intent);
    env.sender_tainted = peer->session->taint_seq > 0;
    env.taint_seq = peer->session->taint_seq;
    //  Restricted follows causes: one restricted cause is enough.
    for (size_t i = 0; i < send->n_causes && !env.cause_restricted; i++) {
        record_t *cause = NULL;
        if (bus_store_record (self->store, send->causes [i], &cause, &err) == 0) {
            if (cause->has_restricted && cause->restricted) {
                env.cause_restricted = true;
                env.cause_seq = send->causes [i];
            }
            bulkhead__v1__record__free_unpacked (cause, NULL);
        }
    }

    Bulkhead__V1__Verdict verdict;
    bus_code_t code = BUS_OK;
    char reason [512] = "accepted";
    const char *stage = "core";
    session_t *recipient = NULL;
    bus_grant_t *grant = NULL;
    char granted_by [BUS_NAME_MAX + 1] = "";

    if (send->sender && strcmp (send->sender, peer->agent->name) != 0) {
        //  Identity comes from the key, never from the message.
        verdict = BULKHEAD__V1__VERDICT__VERDICT_DENIED;
        code = BUS_ESPOOF;
        snprintf (reason, sizeof reason, "message claims sender '%.64s' but the key is '%s''s",
                  send->sender, peer->agent->name);
    }
    else {
        err.code = BUS_OK;
        med_verdict_t decided = med_chain_run (self->chain, &env, &stage, &err);
        //  A standing grant stands in for the one approval this message
        //  would wait for; restricted messages always go to a person.
        if (decided == MED_HOLD && (grant = s_grant_for (self, &env))) {
            decided = MED_PASS;
            stage = "grant";
            snprintf (granted_by, sizeof granted_by, "%s", grant->approver);
        }
        if (decided == MED_PASS) {
            recipient = s_session (self, env.recipient->name);
            if (!recipient) {
                decided = MED_REJECT;
                bus_fail (&err, BUS_ENOMEM, "out of memory for a session");
            }
            else
            if (recipient->pending >= env.recipient->max_backlog) {
                decided = MED_REJECT;
                stage = "core";
                bus_fail (&err, BUS_EBACKLOG, "%s has %u unacknowledged messages (limit %u)",
                          env.recipient->name, recipient->pending, env.recipient->max_backlog);
            }
        }
        if (decided == MED_PASS) {
            verdict = recipient->online? BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
                                       : BULKHEAD__V1__VERDICT__VERDICT_QUEUED;
            snprintf (reason, sizeof reason, "%s%s%s%s", recipient->online? "delivered": "queued for offline recipient",
                      grant? " under grant ": "", grant? grant->id: "", grant? ", approved in advance": "");
        }
        else
        if (decided == MED_HOLD) {
            //  Bounded: an agent cannot flood its approvers.
            uint32_t total = bus_holds_count (self->holds, NULL);
            uint32_t mine = bus_holds_count (self->holds, peer->agent->name);
            if (total >= self->policy->hold_cap_total || mine >= self->policy->hold_cap_sender) {
                verdict = BULKHEAD__V1__VERDICT__VERDICT_DENIED;
                code = BUS_EHOLDFULL;
                snprintf (reason, sizeof reason, "%u messages wait for approval (%u of them %s's); "
                          "limits are %u in all and %u per sender", total, mine, peer->agent->name,
                          self->policy->hold_cap_total, self->policy->hold_cap_sender);
            }
            else {
                verdict = BULKHEAD__V1__VERDICT__VERDICT_HELD;
                code = err.code;
                snprintf (reason, sizeof reason, "%s", err.text);
            }
        }
        else {
            verdict = BULKHEAD__V1__VERDICT__VERDICT_DENIED;
            code = err.code;
            snprintf (reason, sizeof reason, "%s", err.text);
        }
    }
    const char *intent_class = env.class_index >= 0
                             ? self->policy->classes [env.class_index].name: NULL;

    record_t rec;
    s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_SEND);
    uint8_t digest [32];
    bus_hash (digest, send->payload.data, send->payload.len);
    rec.sender = (char *) peer->agent->name;
    rec.key_fp = (char *) peer->agent->key_fp;
    rec.recipient = send->recipient;
    rec.intent = send->intent;
    rec.intent_class = (char *) intent_class;
    rec.action = send->action;
    rec.resource = send->resource;
    rec.tool = send->tool;
    rec.content_type = send->content_type;
    rec.message_id = send->message_id;
    rec.n_causes = send->n_causes;
    rec.causes = send->causes;
    rec.justification = send->justification;
    rec.has_payload_digest = true;
    rec.payload_digest.data = digest;
    rec.payload_digest.len = sizeof digest;
    rec.has_payload = send->has_payload;
    rec.payload = send->payload;
    rec.has_verdict = true;
    rec.verdict = verdict;
    rec.code = (char *) bus_errword (code);
    rec.reason = reason;
    rec.has_restricted = true;
    rec.restricted = env.restricted;
    rec.restricted_why = env.restricted_why [0]? env.restricted_why: NULL;
    rec.event = (char *) stage;
    //  Under a grant the recipient sees who approved it, as for a release.
    char *approvers [1] = { granted_by };
    if (grant && (verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
              ||  verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED)) {
        rec.n_approvers = 1;
        rec.approvers = approvers;
    }
    char approval_id [BUS_HOLD_ID_MAX + 1];
    if (verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD) {
        //  Random, so ids cannot be guessed or enumerated.
        uint8_t raw [6];
        randombytes_buf (raw, sizeof raw);
        char hex [13];
        sodium_bin2hex (hex, sizeof hex, raw, sizeof raw);
        snprintf (approval_id, sizeof approval_id, "h-%s", hex);
        rec.approval_id = approval_id;
    }
    if (s_append (self, &rec) != 0) {
        s_reply_error (self, peer->rid, peer->rid_len, self->failure.code, self->failure.text,
                       send->message_id);
        return;
    }
    if (verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD
    &&  s_hold (self, &rec, env.policy->classes [env.class_index].quorum,
                env.policy->classes [env.class_index].ttl_s) != 0) {
        s_reply_error (self, peer->rid, peer->rid_len, self->failure.code, self->failure.text,
                       send->message_id);
        return;
    }
    if (verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
    ||  verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED) {
        s_accept (self, recipient, &rec, peer->agent->name);
        if (rec.n_approvers) {
            s_grant_use (self, grant, rec.seq);
        }
    }
    else {
        s_say (self, verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD? "BUS-HOLD": "BUS-DENY",
               "seq=%llu sender=%s recipient=%.64s intent=%s stage=%s code=%s reason=\"%s\"",
               (unsigned long long) rec.seq, peer->agent->name, send->recipient, send->intent,
               stage, bus_errname (code), reason);
    }
    s_ack (self, peer, send->message_id, verdict, code, reason, rec.seq, intent_class,
           env.restricted, rec.approval_id);
}

//  Moves an agent's delivery cursor to up_to (it processed everything
//  before), durably and on the log.
static void
s_advance_cursor (server_t *self, session_t *session, uint64_t up_to, const char *event)
{
    if (up_to <= session->acked) {
        return;
    }
    uint32_t count = s_mailbox_count (self, session->agent, session->acked, up_to);
    bus_error_t err;
    if (bus_store_cursor_set (self->store, session->agent, up_to, &err) != 0) {
        self->failed = true;
        self->failure = err;
        return;
    }
    record_t rec;
    s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_DELIVERY_ACK);
    rec.sender = session->agent;
    rec.has_ref_seq = true;
    rec.ref_seq = up_to;
    rec.event = (char *) event;
    s_append (self, &rec);
    session->acked = up_to;
    session->inflight = session->inflight > count? session->inflight - count: 0;
    session->pending = session->pending > count? session->pending - count: 0;
}

static void
s_on_delivery_ack (server_t *self, peer_t *peer, const Bulkhead__V1__DeliveryAck *ack)
{
    session_t *session = peer->session;
    //  An agent cannot acknowledge what it was not sent: that would skip
    //  messages in its own mailbox. Room freed in its window is used by the
    //  pump after the commit.
    uint64_t up_to = ack->up_to < session->sent? ack->up_to: session->sent;
    s_advance_cursor (self, session, up_to, "processed up to ref_seq");
}

//  Operators list and clear taint. Clearing is audited, and nobody clears
//  their own: an agent steered by injected content must not be able to
//  launder itself, whatever its roles.
static bus_code_t
s_on_taint_control (server_t *self, peer_t *peer, const Bulkhead__V1__Control *control,
                    Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    if (!(peer->agent->roles & BUS_ROLE_OPERATOR)) {
        snprintf (reason, size, "%s is not an operator (policy: role = operator)", peer->agent->name);
        return BUS_EPERM;
    }
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT) {
        //  Every agent of the policy, so untouched sessions are read too.
        static char lines [256][160];
        static char *line_ptrs [256];
        size_t n = 0;
        for (size_t i = 0; i < self->policy->agent_count && n < 256; i++) {
            session_t *session = s_session (self, self->policy->agents [i].name);
            if (session && session->taint_seq) {
                time_t secs = (time_t) (session->taint_us / 1000000);
                struct tm tm;
                char when [32];
                strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&secs, &tm));
                snprintf (lines [n], sizeof lines [n], "%s tainted since %s through seq %llu%s",
                          session->agent, when, (unsigned long long) session->taint_seq,
                          self->policy->agents [i].causal? " (causal mode: not applied)": "");
                line_ptrs [n] = lines [n];
                n++;
            }
        }
        reply->n_lines = n;
        reply->lines = line_ptrs;
        snprintf (reason, size, "%zu tainted agent%s", n, n == 1? "": "s");
        return BUS_OK;
    }
    const char *agent = control->agent? control->agent: "";
    if (!bus_policy_agent (self->policy, agent)) {
        snprintf (reason, size, "no agent '%.64s' in the policy", agent);
        return BUS_ENOTFOUND;
    }
    if (strcmp (agent, peer->agent->name) == 0) {
        snprintf (reason, size, "%s may not clear its own taint; another operator must", agent);
        return BUS_EPERM;
    }
    session_t *session = s_session (self, agent);
    if (!session || session->taint_seq == 0) {
        snprintf (reason, size, "%s is not tainted", agent);
        return BUS_ENOTFOUND;
    }
    bus_error_t err;
    if (bus_store_del (self->store, BUS_DB_TAINT, agent, strlen (agent), &err) != 0) {
        snprintf (reason, size, "%s", err.text);
        return err.code;
    }
    snprintf (reason, size, "taint of %s (since seq %llu) cleared by %s", agent,
              (unsigned long long) session->taint_seq, peer->agent->name);
    session->taint_seq = 0;
    session->taint_us = 0;
    s_say (self, "BUS-CLEAR", "agent=%s by=%s", agent, peer->agent->name);
    return BUS_OK;
}

static void
s_on_control (server_t *self, peer_t *peer, const Bulkhead__V1__Control *control)
{
    Bulkhead__V1__ControlReply reply = BULKHEAD__V1__CONTROL_REPLY__INIT;
    reply.op = control->op;
    bus_code_t code = BUS_OK;
    char reason [600] = "done";
    bus_error_t err;
    //  A reload frees the policy peer->agent points into: keep a copy.
    char who [BUS_NAME_MAX + 1];
    snprintf (who, sizeof who, "%s", peer->agent->name);

    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD) {
        if (!(peer->agent->roles & BUS_ROLE_OPERATOR)) {
            code = BUS_EPERM;
            snprintf (reason, sizeof reason, "%s is not an operator (policy: role = operator)", who);
        }
        else
        if (s_policy_reload (self, who, &err) != 0) {
            code = err.code;
            snprintf (reason, sizeof reason, "reload refused, old policy kept: %s", err.text);
        }
        else {
            snprintf (reason, sizeof reason, "policy %.16s loaded", self->policy->hash);
        }
    }
    else
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING
    ||  control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE
    ||  control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_DENY) {
        code = s_on_approval_control (self, peer, control, &reply, reason, sizeof reason);
    }
    else
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT) {
        code = s_on_grant_control (self, peer, control, &reply, reason, sizeof reason);
    }
    else
    if (control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_CLEAR_TAINT
    ||  control->op == BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT) {
        code = s_on_taint_control (self, peer, control, &reply, reason, sizeof reason);
    }
    else {
        code = BUS_EINVAL;
        snprintf (reason, sizeof reason, "control operation %d is not supported by this bus",
                  (int) control->op);
    }
    record_t rec;
    s_record_init (self, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_CONTROL);
    rec.sender = who;
    rec.recipient = control->agent;
    rec.approval_id = control->id;
    rec.code = (char *) bus_errword (code);
    rec.reason = reason;
    char event [32];
    snprintf (event, sizeof event, "control op %d", (int) control->op);
    rec.event = event;
    s_append (self, &rec);

    reply.code = (char *) bus_errword (code);
    reply.reason = reason;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY;
    frame.control_reply = &reply;
    s_reply (self, peer, &frame, NULL);
}

//  Reads one message from the ROUTER (routing id + body) and handles it.
//  Returns 0 if one was handled, -1 if none was waiting.
static int
s_on_router (server_t *self)
{
    zmq_msg_t rid_msg, body;
    zmq_msg_init (&rid_msg);
    if (zmq_msg_recv (&rid_msg, self->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&rid_msg);
        return -1;
    }
    self->frames++;
    peer_t peer;
    memset (&peer, 0, sizeof peer);
    peer.rid_len = zmq_msg_size (&rid_msg) < BUS_RID_MAX? zmq_msg_size (&rid_msg): BUS_RID_MAX;
    memcpy (peer.rid, zmq_msg_data (&rid_msg), peer.rid_len);
    zmq_msg_close (&rid_msg);

    zmq_msg_init (&body);
    if (zmq_msg_recv (&body, self->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&body);
        return 0;
    }
    //  The authenticated key is metadata of the body frame; copy it before
    //  the frame is closed (see PITFALLS: metadata is lost on some paths).
    char key [BUS_KEY_Z85_LEN + 1] = "";
    const char *user_id = zmq_msg_gets (&body, "User-Id");
    if (user_id && strlen (user_id) == BUS_KEY_Z85_LEN) {
        memcpy (key, user_id, sizeof key);
    }
    bool multipart = zmq_msg_more (&body);
    if (multipart) {
        //  Drain the rest: libzmq delivers a message whole, so it is here.
        zmq_msg_t rest;
        zmq_msg_init (&rest);
        while (zmq_msg_more (&body) || zmq_msg_more (&rest)) {
            if (zmq_msg_recv (&rest, self->router, ZMQ_DONTWAIT) < 0) {
                break;
            }
            if (!zmq_msg_more (&rest)) {
                break;
            }
        }
        zmq_msg_close (&rest);
    }
    if (key [0]) {
        peer.key = key;
        peer.agent = bus_policy_agent_by_key (self->policy, key);
    }
    if (!peer.agent) {
        //  A key the policy no longer names (revoked by a reload) or no key
        //  at all: refuse every frame on this connection.
        s_refuse (self, &peer, BUS_EUNKNOWN, key [0]
                  ? "this key is not in the policy (revoked?); nothing from it is accepted"
                  : "connection is not authenticated", NULL);
        zmq_msg_close (&body);
        return 0;
    }
    peer.session = s_session (self, peer.agent->name);
    if (!peer.session) {
        zmq_msg_close (&body);
        return 0;
    }
    session_t *session = peer.session;
    if (session->rid_len != peer.rid_len || memcmp (session->rid, peer.rid, peer.rid_len) != 0) {
        //  Its key now speaks from another connection: route there, and
        //  resend what the old connection may have lost (the client drops
        //  repeats by seq).
        memcpy (session->rid, peer.rid, peer.rid_len);
        session->rid_len = peer.rid_len;
        session->sent = session->acked;
        session->inflight = 0;
        session->backlog = true;
        session->online = session->hello;
    }
    size_t size = zmq_msg_size (&body);
    if (multipart) {
        s_refuse (self, &peer, BUS_EMULTIPART, "multipart message refused: one frame per message", NULL);
    }
    else
    if (size > self->policy->max_frame) {
        char reason [128];
        snprintf (reason, sizeof reason, "frame of %zu bytes is over the limit of %u bytes",
                  size, self->policy->max_frame);
        s_refuse (self, &peer, BUS_ETOOBIG, reason, NULL);
    }
    else {
        frame_t *frame;
        bus_error_t err;
        if (bus_wire_decode (self->wire, zmq_msg_data (&body), size, &frame, &err) != 0) {
            s_refuse (self, &peer, err.code, err.text, NULL);
        }
        else
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_HELLO) {
            s_on_hello (self, &peer, frame->hello);
        }
        else
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_PING) {
            Bulkhead__V1__Pong pong = BULKHEAD__V1__PONG__INIT;
            pong.has_nonce = frame->ping->has_nonce;
            pong.nonce = frame->ping->nonce;
            frame_t reply = BULKHEAD__V1__FRAME__INIT;
            reply.body_case = BULKHEAD__V1__FRAME__BODY_PONG;
            reply.pong = &pong;
            s_reply (self, &peer, &reply, NULL);
        }
        else
        if (!session->hello) {
            s_refuse (self, &peer, BUS_ENOHELLO, "say HELLO first", NULL);
        }
        else
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_SEND) {
            s_on_send (self, &peer, frame->send);
        }
        else
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK) {
            s_on_delivery_ack (self, &peer, frame->delivery_ack);
        }
        else
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_CONTROL) {
            s_on_control (self, &peer, frame->control);
        }
        else {
            char reason [96];
            snprintf (reason, sizeof reason, "agents do not send %s frames", bus_wire_body_name (frame));
            s_refuse (self, &peer, BUS_EMALFORMED, reason, NULL);
        }
    }
    zmq_msg_close (&body);
    return 0;
}

//  After the log failed: answer everything with the failure, log nothing.
static void
s_drain_failed (server_t *self)
{
    zmq_msg_t part;
    zmq_msg_init (&part);
    uint8_t rid [BUS_RID_MAX];
    size_t rid_len = 0;
    bool first = true;
    while (zmq_msg_recv (&part, self->router, ZMQ_DONTWAIT) >= 0) {
        if (first) {
            rid_len = zmq_msg_size (&part) < BUS_RID_MAX? zmq_msg_size (&part): BUS_RID_MAX;
            memcpy (rid, zmq_msg_data (&part), rid_len);
        }
        first = !zmq_msg_more (&part);
        if (first) {
            s_reply_error (self, rid, rid_len, self->failure.code, self->failure.text, NULL);
        }
    }
    zmq_msg_close (&part);
    s_flush_failed (self);
}

//  ---------------------------------------------------------------------
//  Start, loop, stop

int
bus_router_secure (void *socket, const char *secret_z85, int heartbeat_ms, bus_error_t *err)
{
    int one = 1;
    int zero = 0;
    int64_t max = BUS_HARD_FRAME_MAX;
    int handshake = 5000;
    int timeout = heartbeat_ms * 3;
    int hwm = 10000;
    int linger = 500;
    if (zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, secret_z85, BUS_KEY_Z85_LEN)
    ||  zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, BUS_ZAP_DOMAIN, strlen (BUS_ZAP_DOMAIN))
    ||  zmq_setsockopt (socket, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_ROUTER_MANDATORY, &one, sizeof one)
    ||  zmq_setsockopt (socket, ZMQ_ROUTER_HANDOVER, &zero, sizeof zero)
    ||  zmq_setsockopt (socket, ZMQ_MAXMSGSIZE, &max, sizeof max)
    ||  zmq_setsockopt (socket, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake)
    ||  zmq_setsockopt (socket, ZMQ_HEARTBEAT_IVL, &heartbeat_ms, sizeof heartbeat_ms)
    ||  zmq_setsockopt (socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout)
    ||  zmq_setsockopt (socket, ZMQ_HEARTBEAT_TTL, &timeout, sizeof timeout)
    ||  zmq_setsockopt (socket, ZMQ_SNDHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof hwm)
    ||  zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger)) {
        return bus_fail (err, BUS_EINVAL, "cannot secure the bus socket: %s",
                         zmq_strerror (zmq_errno ()));
    }
    return 0;
}

static int
s_bus_key (server_t *self, bus_error_t *err)
{
    char path [4096];
    const char *key_path = self->options.key_path;
    if (!key_path) {
        snprintf (path, sizeof path, "%s/bus.key", self->options.data_dir);
        key_path = path;
        if (access (path, F_OK) != 0) {
            //  First start: make the bus's own key, and its public half
            //  for agents to pin.
            char pub [4096];
            snprintf (pub, sizeof pub, "%s/bus.pub", self->options.data_dir);
            unlink (pub);
            if (bus_keys_generate (&self->bus_key, "bus", err) != 0
            ||  bus_keys_save (&self->bus_key, path, pub, err) != 0) {
                return -1;
            }
            return 0;
        }
    }
    if (bus_keys_load (&self->bus_key, key_path, err) != 0) {
        return -1;
    }
    if (!self->bus_key.secret_z85 [0]) {
        return bus_fail (err, BUS_EKEY, "%s holds no secret-key: the bus needs its secret key",
                         key_path);
    }
    return 0;
}

static int
s_start (server_t *self, bus_error_t *err)
{
    const bus_server_options_t *o = &self->options;
    if (mkdir (o->data_dir, 0700) != 0 && errno != EEXIST) {
        return bus_fail (err, BUS_EIO, "data directory %s: %s", o->data_dir, strerror (errno));
    }
    bus_store_options_t store_options = { .map_max = o->map_max };
    if (o->map_max && o->map_max < ((size_t) 64 << 20)) {
        store_options.map_initial = o->map_max;     //  a small limit starts small
    }
    if (bus_store_open (&self->store, o->data_dir, &store_options, err) != 0
    ||  bus_holds_open (&self->holds, self->store, err) != 0) {
        return -1;
    }
    if (s_policy_load (self, err) != 0 || s_bus_key (self, err) != 0) {
        return -1;
    }
    self->wire = bus_wire_new (4 * (size_t) BUS_HARD_FRAME_MAX / 16 + 65536);
    self->sessions = zhashx_new ();
    if (!self->wire || !self->sessions) {
        return bus_fail (err, BUS_ENOMEM, "out of memory at start");
    }
    zhashx_set_destructor (self->sessions, s_session_destroy);

    //  Signals arrive on a descriptor in the loop; block them before libzmq
    //  starts its threads so those inherit the mask.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGHUP);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    signal (SIGPIPE, SIG_IGN);
    self->sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    self->ctx = zmq_ctx_new ();
    self->zap = zmq_socket (self->ctx, ZMQ_REP);
    if (!self->zap || zmq_bind (self->zap, "inproc://zeromq.zap.01") != 0) {
        return bus_fail (err, BUS_EIO, "cannot start the ZAP handler: %s", zmq_strerror (zmq_errno ()));
    }
    self->router = zmq_socket (self->ctx, ZMQ_ROUTER);
    if (!self->router
    ||  bus_router_secure (self->router, self->bus_key.secret_z85, o->heartbeat_ms, err) != 0) {
        return -1;
    }
    if (zmq_bind (self->router, o->endpoint) != 0) {
        return bus_fail (err, BUS_EIO, "cannot bind %s: %s", o->endpoint, zmq_strerror (zmq_errno ()));
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt (self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &len);

    char event [400];
    snprintf (event, sizeof event, "bus started on %s, key %s", self->endpoint, self->bus_key.public_z85);
    s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_BUS, NULL, self->bus_key.public_z85,
                 BUS_OK, event);
    snprintf (event, sizeof event, "policy loaded from %s", o->policy_path);
    s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_POLICY, NULL, NULL, BUS_OK, event);
    if (bus_store_commit (self->store, err) != 0) {
        return -1;
    }
    s_say (self, "BUS-READY", "endpoint=%s bus_key=%s policy=%.16s agents=%zu edges=%zu last_seq=%llu",
           self->endpoint, self->bus_key.public_z85, self->policy->hash, self->policy->agent_count,
           self->policy->edge_count, (unsigned long long) bus_store_last_seq (self->store));
    if (o->ready_fd >= 0) {
        dprintf (o->ready_fd, "ready %s\n", self->endpoint);
        close (o->ready_fd);
    }
    return 0;
}

static void
s_on_signal (server_t *self)
{
    struct signalfd_siginfo info;
    while (read (self->sigfd, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            bus_error_t err;
            s_policy_reload (self, "SIGHUP", &err);
        }
        else {
            s_say (self, "BUS-STOP", "signal=%u", info.ssi_signo);
            self->stop = true;
        }
    }
}

static void
s_stop (server_t *self)
{
    if (self->store && !self->failed && self->policy) {
        s_log_event (self, BULKHEAD__V1__RECORD_KIND__RECORD_BUS, NULL, NULL, BUS_OK, "bus stopped");
        s_commit (self);
    }
    for (size_t i = 0; i < self->out_count; i++) {
        free (self->outbox [i].data);
    }
    free (self->outbox);
    if (self->router) {
        zmq_close (self->router);
    }
    if (self->zap) {
        zmq_close (self->zap);
    }
    if (self->ctx) {
        zmq_ctx_term (self->ctx);
    }
    if (self->sigfd > 0) {
        close (self->sigfd);
    }
    if (self->sessions) {
        //  zhashx frees values with the destructor set at start.
        zhashx_destroy (&self->sessions);
    }
    bus_wire_destroy (&self->wire);
    bus_holds_destroy (&self->holds);
    med_chain_destroy (&self->chain);
    bus_policy_destroy (&self->policy);
    bus_store_destroy (&self->store);
}

int
bus_server_run (const bus_server_options_t *options, bus_error_t *err)
{
    server_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "out of memory");
    }
    self->options = *options;
    bus_server_options_t *o = &self->options;
    if (!o->endpoint) {
        o->endpoint = "tcp://127.0.0.1:7750";
    }
    if (!o->batch_max) {
        o->batch_max = 1024;
    }
    if (!o->window) {
        o->window = 1000;
    }
    if (!o->heartbeat_ms) {
        o->heartbeat_ms = 2000;
    }
    self->sigfd = -1;
    zsys_handler_set (NULL);            //  we own signals, not CZMQ
    int rc = s_start (self, err);
    //  The outbox must hold a whole batch's replies and deliveries.
    self->out_alloc = 0;

    while (rc == 0 && !self->stop) {
        zmq_pollitem_t items [] = {
            { self->router, 0, ZMQ_POLLIN, 0 },
            { self->zap, 0, ZMQ_POLLIN, 0 },
            { NULL, self->sigfd, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 3, 1000) < 0) {
            if (zmq_errno () == EINTR) {
                continue;
            }
            break;
        }
        if (items [2].revents & ZMQ_POLLIN) {
            s_on_signal (self);
        }
        if (items [1].revents & ZMQ_POLLIN) {
            s_zap_handle (self);
        }
        if (self->failed) {
            s_drain_failed (self);
            continue;
        }
        s_expire_holds (self);
        //  Read what is ready, up to a batch, then commit once. Keep two
        //  outbox slots per frame free: a SEND may add an ACK and a DELIVER.
        for (uint32_t n = 0; n < o->batch_max; n++) {
            if (self->out_alloc - self->out_count < 4) {
                size_t alloc = self->out_alloc? self->out_alloc * 2: 2 * o->batch_max + 64;
                out_t *outbox = realloc (self->outbox, alloc * sizeof *outbox);
                if (!outbox) {
                    break;
                }
                self->outbox = outbox;
                self->out_alloc = alloc;
            }
            if (s_on_router (self) != 0) {
                break;
            }
        }
        s_commit (self);
    }
    s_stop (self);
    free (self);
    return rc;
}
