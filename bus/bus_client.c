/*  bus_client.c: the agent side of the protocol. */
#include "bus_client.h"
#include "bus_keys.h"
#include "bus_wire.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define CLIENT_QUEUE_MAX 100000

struct bus_client {
    void *ctx;
    void *dealer;
    char agent [BUS_NAME_MAX + 1];
    Bulkhead__V1__Frame *welcome;
    Bulkhead__V1__Frame **queue;    //  frames kept while waiting for an ACK
    size_t head;
    size_t count;
    size_t alloc;
    uint64_t last_seq;
    void *watch;                    //  monitor of the handshakes after the first
    unsigned reconnects;
    Bulkhead__V1__Frame *bundle;    //  a Bundle being handed out, frame by frame
    size_t bundle_next;
    bool corked;                    //  between bus_client_cork and _uncork
    bus_bundle_t out;               //  frames gathered meanwhile (owned)
};

//  What this client offers at HELLO: the bus may send it several ACKs and
//  DELIVERs in one frame of up to this many bytes.
#define CLIENT_BUNDLE_BYTES (256 << 10)

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
bus_client_free (Bulkhead__V1__Frame **frame_p)
{
    if (frame_p && *frame_p) {
        bulkhead__v1__frame__free_unpacked (*frame_p, NULL);
        *frame_p = NULL;
    }
}

//  A DEALER blocks only at its high-water mark; a second's wait there
//  (ZMQ_SNDTIMEO, set at connect) means the bus is not reading, which the
//  caller must hear about.
static int
s_send_failed (bus_error_t *err)
{
    return bus_fail (err, zmq_errno () == EAGAIN? BUS_ETIMEOUT: BUS_ECONNECT,
                     "cannot send to the bus: %s", zmq_strerror (zmq_errno ()));
}

//  The most bytes of one Bundle the bus takes (its WELCOME says), 0 if it
//  takes none (a bus from before agents' bundles).
static size_t
s_bundle_limit (const bus_client_t *self)
{
    const Bulkhead__V1__Welcome *welcome = self->welcome? self->welcome->welcome: NULL;
    return welcome && welcome->has_bundle? welcome->bundle: 0;
}

//  Sends what was gathered, in one frame, and forgets it either way.
static int
s_send_gathered (bus_client_t *self, bus_error_t *err)
{
    if (self->out.count == 0) {
        return 0;
    }
    int rc = 0;
    zmq_msg_t msg;
    if (zmq_msg_init_size (&msg, bus_bundle_size (&self->out)) != 0) {
        rc = bus_fail (err, BUS_ENOMEM, "out of memory for a bundle of %zu frames",
                       self->out.count);
    }
    else {
        bus_bundle_write (&self->out, zmq_msg_data (&msg));
        if (zmq_msg_send (&msg, self->dealer, 0) < 0) {
            rc = s_send_failed (err);
            zmq_msg_close (&msg);
        }
    }
    for (size_t i = 0; i < self->out.count; i++) {
        free ((void *) self->out.parts [i].data);
    }
    bus_bundle_reset (&self->out, 4096);
    return rc;
}

static int
s_send_frame (bus_client_t *self, const Bulkhead__V1__Frame *frame, bus_error_t *err)
{
    size_t size;
    uint8_t *data = bus_wire_pack (frame, &size);
    if (!data) {
        return bus_fail (err, BUS_ENOMEM, "out of memory");
    }
    size_t limit = self->corked? s_bundle_limit (self): 0;
    if (limit) {
        //  A frame that would take the bundle past the bus's limit (its
        //  bytes, or BUS_BUNDLE_FRAMES) starts the next one; a frame over it
        //  alone goes alone (the bus answers TOOBIG, as it would anyway).
        if (self->out.count
        &&  (bus_bundle_with (&self->out, size) > limit || self->out.count == BUS_BUNDLE_FRAMES)
        &&  s_send_gathered (self, err) != 0) {
            free (data);
            return -1;
        }
        if (bus_bundle_add (&self->out, data, size) != 0) {
            free (data);
            return bus_fail (err, BUS_ENOMEM, "out of memory");
        }
        return 0;
    }
    int rc = bus_client_send_raw (self, data, size, 0, err);
    free (data);
    return rc;
}

int
bus_client_send_raw (bus_client_t *self, const void *data, size_t size, int more, bus_error_t *err)
{
    if (zmq_send (self->dealer, data, size, more? ZMQ_SNDMORE: 0) < 0) {
        return s_send_failed (err);
    }
    return 0;
}

void
bus_client_cork (bus_client_t *self)
{
    self->corked = true;
}

int
bus_client_uncork (bus_client_t *self, bus_error_t *err)
{
    self->corked = false;
    return s_send_gathered (self, err);
}

//  A DELIVER already handed out (resent after a reconnect): dropped.
static bool
s_stale (const bus_client_t *self, const Bulkhead__V1__Frame *frame)
{
    return frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER
        && frame->deliver->seq <= self->last_seq;
}

//  Reads one frame within timeout_ms (-1: wait forever): the next of a
//  bundle being handed out, else from the socket.
static int
s_read (bus_client_t *self, Bulkhead__V1__Frame **frame, int timeout_ms, bus_error_t *err)
{
    zmq_pollitem_t item = { self->dealer, 0, ZMQ_POLLIN, 0 };
    int64_t deadline = s_now_ms () + timeout_ms;
    while (true) {
        int wait = timeout_ms < 0? -1: (int) (deadline - s_now_ms ());
        if (timeout_ms >= 0 && wait < 0) {
            wait = 0;
        }
        //  Try the socket first: under load a frame is usually waiting, and
        //  a zmq_poll per frame costs a poll(2) system call.
        if (self->bundle) {
            Bulkhead__V1__Bundle *bundle = self->bundle->bundle;
            if (self->bundle_next == bundle->n_frames) {
                bus_client_free (&self->bundle);
                continue;
            }
            ProtobufCBinaryData *member = &bundle->frames [self->bundle_next++];
            Bulkhead__V1__Frame *decoded = bulkhead__v1__frame__unpack (NULL, member->len,
                                                                         member->data);
            //  Refused alone: the frames after it are still handed out.
            if (!decoded || decoded->body_case == BULKHEAD__V1__FRAME__BODY_BUNDLE) {
                bus_client_free (&decoded);
                return bus_fail (err, BUS_EMALFORMED, "the bus sent a bundle whose frame %zu "
                                 "does not decode", self->bundle_next);
            }
            if (s_stale (self, decoded)) {
                bus_client_free (&decoded);
                continue;
            }
            *frame = decoded;
            return 0;
        }
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            if (wait == 0 && timeout_ms >= 0) {
                return bus_fail (err, BUS_ETIMEOUT, "no answer from the bus within %d ms", timeout_ms);
            }
            int rc = zmq_poll (&item, 1, wait);
            if (rc < 0 && zmq_errno () != EINTR) {
                return bus_fail (err, BUS_ECONNECT, "poll: %s", zmq_strerror (zmq_errno ()));
            }
            if (rc <= 0 && timeout_ms >= 0 && s_now_ms () >= deadline) {
                return bus_fail (err, BUS_ETIMEOUT, "no answer from the bus within %d ms", timeout_ms);
            }
            continue;
        }
        Bulkhead__V1__Frame *decoded = bulkhead__v1__frame__unpack (NULL, zmq_msg_size (&msg),
                                                                     zmq_msg_data (&msg));
        zmq_msg_close (&msg);
        if (!decoded) {
            return bus_fail (err, BUS_EMALFORMED, "the bus sent a frame that does not decode");
        }
        if (decoded->body_case == BULKHEAD__V1__FRAME__BODY_BUNDLE) {
            self->bundle = decoded;     //  its frames, one by one, from the top
            self->bundle_next = 0;
            continue;
        }
        if (s_stale (self, decoded)) {
            bus_client_free (&decoded);
            continue;
        }
        *frame = decoded;
        return 0;
    }
}

static int
s_keep (bus_client_t *self, Bulkhead__V1__Frame *frame, bus_error_t *err)
{
    if (self->count == CLIENT_QUEUE_MAX) {
        return bus_fail (err, BUS_EBACKLOG, "%d frames from the bus wait to be read: "
                         "call bus_client_recv", CLIENT_QUEUE_MAX);
    }
    if (self->count == self->alloc) {
        size_t alloc = self->alloc? self->alloc * 2: 64;
        Bulkhead__V1__Frame **queue = malloc (alloc * sizeof *queue);
        if (!queue) {
            return bus_fail (err, BUS_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < self->count; i++) {
            queue [i] = self->queue [(self->head + i) % self->alloc];
        }
        free (self->queue);
        self->queue = queue;
        self->alloc = alloc;
        self->head = 0;
    }
    self->queue [(self->head + self->count) % self->alloc] = frame;
    self->count++;
    return 0;
}

static void
s_note_deliver (bus_client_t *self, const Bulkhead__V1__Frame *frame)
{
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER
    &&  frame->deliver->seq > self->last_seq) {
        self->last_seq = frame->deliver->seq;
    }
}

int
bus_client_recv (bus_client_t *self, Bulkhead__V1__Frame **frame, int timeout_ms, bus_error_t *err)
{
    while (self->count > 0) {
        Bulkhead__V1__Frame *kept = self->queue [self->head];
        self->head = (self->head + 1) % self->alloc;
        self->count--;
        if (s_stale (self, kept)) {
            bus_client_free (&kept);
            continue;
        }
        s_note_deliver (self, kept);
        *frame = kept;
        return 0;
    }
    if (s_read (self, frame, timeout_ms, err) != 0) {
        return -1;
    }
    s_note_deliver (self, *frame);
    return 0;
}

//  Waits for a frame that `match` accepts; keeps the others for recv.
static int
s_wait (bus_client_t *self, bool (*match) (const Bulkhead__V1__Frame *, const void *),
        const void *arg, Bulkhead__V1__Frame **reply, int timeout_ms, bus_error_t *err)
{
    //  What waits for a reply sends what was gathered first, its own
    //  request with it: a reply to a frame never sent would never come.
    if (s_send_gathered (self, err) != 0) {
        return -1;
    }
    int64_t deadline = s_now_ms () + timeout_ms;
    while (true) {
        int left = (int) (deadline - s_now_ms ());
        Bulkhead__V1__Frame *frame;
        if (s_read (self, &frame, left < 0? 0: left, err) != 0) {
            return -1;
        }
        if (match (frame, arg)) {
            *reply = frame;
            return 0;
        }
        if (s_keep (self, frame, err) != 0) {
            bus_client_free (&frame);
            return -1;
        }
    }
}

static bool
s_is_ack_for (const Bulkhead__V1__Frame *frame, const void *arg)
{
    const char *id = arg;
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        return strcmp (frame->ack->message_id, id) == 0;
    }
    //  An ERROR with no message id answers whatever we sent last.
    if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
        return !frame->error->message_id || strcmp (frame->error->message_id, id) == 0;
    }
    return false;
}

static bool
s_is_case (const Bulkhead__V1__Frame *frame, const void *arg)
{
    Bulkhead__V1__Frame__BodyCase want = *(const Bulkhead__V1__Frame__BodyCase *) arg;
    return frame->body_case == want || frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR;
}

//  A copy of send with a message id: the caller's, or 32 random hex digits
//  written into id.
static Bulkhead__V1__Send
s_with_id (const Bulkhead__V1__Send *send, char id [33])
{
    Bulkhead__V1__Send copy = *send;
    if (!copy.message_id || !copy.message_id [0]) {
        uint8_t raw [16];
        randombytes_buf (raw, sizeof raw);
        sodium_bin2hex (id, 33, raw, sizeof raw);
        copy.message_id = id;
    }
    return copy;
}

int
bus_client_post (bus_client_t *self, const Bulkhead__V1__Send *send, bus_error_t *err)
{
    char id [33];
    Bulkhead__V1__Send copy = s_with_id (send, id);
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &copy;
    return s_send_frame (self, &frame, err);
}

int
bus_client_send (bus_client_t *self, const Bulkhead__V1__Send *send,
                 Bulkhead__V1__Frame **reply, int timeout_ms, bus_error_t *err)
{
    char id [33];
    Bulkhead__V1__Send copy = s_with_id (send, id);
    if (bus_client_post (self, &copy, err) != 0) {
        return -1;
    }
    return s_wait (self, s_is_ack_for, copy.message_id, reply, timeout_ms, err);
}

int
bus_client_ack (bus_client_t *self, uint64_t up_to, bus_error_t *err)
{
    Bulkhead__V1__DeliveryAck ack = BULKHEAD__V1__DELIVERY_ACK__INIT;
    ack.up_to = up_to;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK;
    frame.delivery_ack = &ack;
    return s_send_frame (self, &frame, err);
}

int
bus_client_control (bus_client_t *self, const Bulkhead__V1__Control *control,
                    Bulkhead__V1__Frame **reply, int timeout_ms, bus_error_t *err)
{
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_CONTROL;
    frame.control = (Bulkhead__V1__Control *) control;
    if (s_send_frame (self, &frame, err) != 0) {
        return -1;
    }
    Bulkhead__V1__Frame__BodyCase want = BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY;
    return s_wait (self, s_is_case, &want, reply, timeout_ms, err);
}

//  Says HELLO and waits for WELCOME, watching the handshake so that a key
//  the bus refuses is reported as such, not as a timeout.
static int
s_hello (bus_client_t *self, uint64_t last_seq, int timeout_ms, bus_error_t *err)
{
    char monitor_ep [64];
    snprintf (monitor_ep, sizeof monitor_ep, "inproc://bus-client-monitor-%p", (void *) self);
    zmq_socket_monitor (self->dealer, monitor_ep,
                        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                        | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    void *monitor = zmq_socket (self->ctx, ZMQ_PAIR);
    zmq_connect (monitor, monitor_ep);

    Bulkhead__V1__Hello hello = BULKHEAD__V1__HELLO__INIT;
    hello.version = 1;
    hello.has_last_seq = last_seq > 0;
    hello.last_seq = last_seq;
    hello.software = "bulkhead-c/1";
    hello.has_bundle = true;
    hello.bundle = CLIENT_BUNDLE_BYTES;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HELLO;
    frame.hello = &hello;
    int rc = s_send_frame (self, &frame, err);

    int64_t deadline = s_now_ms () + timeout_ms;
    while (rc == 0) {
        zmq_pollitem_t items [] = {
            { self->dealer, 0, ZMQ_POLLIN, 0 },
            { monitor, 0, ZMQ_POLLIN, 0 },
        };
        int left = (int) (deadline - s_now_ms ());
        if (left <= 0) {
            rc = bus_fail (err, BUS_ETIMEOUT, "no WELCOME from the bus within %d ms "
                           "(is it running, and is the bus key right?)", timeout_ms);
            break;
        }
        zmq_poll (items, 2, left);
        if (items [1].revents & ZMQ_POLLIN) {
            zmq_msg_t event;
            zmq_msg_init (&event);
            zmq_msg_recv (&event, monitor, 0);
            uint32_t status = 0;
            if (zmq_msg_size (&event) >= 6) {
                memcpy (&status, (uint8_t *) zmq_msg_data (&event) + 2, 4);
            }
            uint16_t id = 0;
            memcpy (&id, zmq_msg_data (&event), 2);
            int more = zmq_msg_more (&event);
            zmq_msg_close (&event);
            if (more) {
                //  The second part names the endpoint; not needed here.
                zmq_msg_init (&event);
                zmq_msg_recv (&event, monitor, 0);
                zmq_msg_close (&event);
            }
            rc = bus_fail (err, id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH? BUS_EUNKNOWN: BUS_ECONNECT,
                           id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                           ? "the bus refused this key at the handshake (ZAP status %u): "
                             "is the agent's public key in the policy?"
                           : "CURVE handshake with the bus failed (event %u): is the bus key right?",
                           id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH? status: id);
            break;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            Bulkhead__V1__Frame *reply;
            if (s_read (self, &reply, 0, err) != 0) {
                continue;
            }
            if (reply->body_case == BULKHEAD__V1__FRAME__BODY_WELCOME) {
                self->welcome = reply;
                snprintf (self->agent, sizeof self->agent, "%s", reply->welcome->agent);
                break;
            }
            if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR && hello.has_bundle
            &&  bus_code_from_word (reply->error->code) == BUS_EMALFORMED) {
                //  A bus from before bundles refuses the unknown field:
                //  say HELLO again without it, and take frames one by one.
                bus_client_free (&reply);
                hello.has_bundle = false;
                rc = s_send_frame (self, &frame, err);
                continue;
            }
            if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
                rc = bus_fail (err, bus_code_from_word (reply->error->code), "bus refused HELLO: %s: %s",
                               reply->error->code, reply->error->reason);
                bus_client_free (&reply);
                break;
            }
            bus_client_free (&reply);
        }
    }
    zmq_socket_monitor (self->dealer, NULL, 0);
    zmq_close (monitor);
    return rc;
}

int
bus_client_connect (bus_client_t **out, const bus_client_options_t *options, bus_error_t *err)
{
    if (sodium_init () < 0) {
        return bus_fail (err, BUS_EKEY, "libsodium failed to start");
    }
    char bus_key [BUS_KEY_Z85_LEN + 1];
    bus_keypair_t me;
    if (!options->endpoint || !options->bus_key || !options->key_file) {
        return bus_fail (err, BUS_EINVAL, "connecting needs an endpoint, the bus key and a key file");
    }
    if (bus_keys_public (bus_key, options->bus_key, err) != 0
    ||  bus_keys_load (&me, options->key_file, err) != 0) {
        return -1;
    }
    if (!me.secret_z85 [0]) {
        return bus_fail (err, BUS_EKEY, "%s has no secret-key: an agent needs its secret key file "
                         "(NAME.key, not NAME.pub)", options->key_file);
    }
    bus_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "out of memory");
    }
    self->last_seq = options->last_seq;
    self->ctx = zmq_ctx_new ();
    self->dealer = self->ctx? zmq_socket (self->ctx, ZMQ_DEALER): NULL;
    int heartbeat = 2000;
    int heartbeat_timeout = 6000;
    int linger = 2000;
    int handshake = 5000;
    int send_timeout = 1000;
    //  No receive high-water mark. libzmq 4.3.4 marks a connection failed
    //  without unplugging it when input is stopped at the HWM; the next
    //  heartbeat then trips an assertion (stream_engine_base.cpp:331) and
    //  aborts the agent. Unbounded here is still bounded: the bus sends a
    //  client one ACK per message it sent, DELIVERs within a window of
    //  1000 per recipient, and notices for capped holds.
    int rcvhwm = 0;
    if (!self->dealer
    ||  zmq_setsockopt (self->dealer, ZMQ_SNDTIMEO, &send_timeout, sizeof send_timeout)
    ||  zmq_setsockopt (self->dealer, ZMQ_CURVE_SERVERKEY, bus_key, BUS_KEY_Z85_LEN)
    ||  zmq_setsockopt (self->dealer, ZMQ_CURVE_PUBLICKEY, me.public_z85, BUS_KEY_Z85_LEN)
    ||  zmq_setsockopt (self->dealer, ZMQ_CURVE_SECRETKEY, me.secret_z85, BUS_KEY_Z85_LEN)
    ||  zmq_setsockopt (self->dealer, ZMQ_HEARTBEAT_IVL, &heartbeat, sizeof heartbeat)
    ||  zmq_setsockopt (self->dealer, ZMQ_HEARTBEAT_TIMEOUT, &heartbeat_timeout, sizeof heartbeat_timeout)
    ||  zmq_setsockopt (self->dealer, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake)
    ||  zmq_setsockopt (self->dealer, ZMQ_LINGER, &linger, sizeof linger)
    ||  zmq_setsockopt (self->dealer, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm)) {
        bus_fail (err, BUS_ECONNECT, "cannot set up the socket: %s", zmq_strerror (zmq_errno ()));
        bus_client_destroy (&self);
        return -1;
    }
    sodium_memzero (&me, sizeof me);
    if (zmq_connect (self->dealer, options->endpoint) != 0) {
        bus_fail (err, BUS_ECONNECT, "cannot connect to %s: %s", options->endpoint,
                  zmq_strerror (zmq_errno ()));
        bus_client_destroy (&self);
        return -1;
    }
    if (s_hello (self, options->last_seq, options->timeout_ms > 0? options->timeout_ms: 5000, err) != 0) {
        bus_client_destroy (&self);
        return -1;
    }
    //  From now on every handshake is a new connection (bus_client_reconnects).
    char watch_ep [64];
    snprintf (watch_ep, sizeof watch_ep, "inproc://bus-client-watch-%p", (void *) self);
    if (zmq_socket_monitor (self->dealer, watch_ep, ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        self->watch = zmq_socket (self->ctx, ZMQ_PAIR);
        if (self->watch && zmq_connect (self->watch, watch_ep) != 0) {
            zmq_close (self->watch);
            self->watch = NULL;
        }
    }
    *out = self;
    return 0;
}

unsigned
bus_client_reconnects (bus_client_t *self)
{
    while (self->watch) {
        zmq_msg_t event;
        zmq_msg_init (&event);
        if (zmq_msg_recv (&event, self->watch, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&event);
            break;
        }
        uint16_t id = 0;
        if (zmq_msg_size (&event) >= 2) {
            memcpy (&id, zmq_msg_data (&event), 2);
        }
        int more = zmq_msg_more (&event);
        zmq_msg_close (&event);
        if (more) {
            zmq_msg_init (&event);          //  the endpoint: not needed
            zmq_msg_recv (&event, self->watch, 0);
            zmq_msg_close (&event);
        }
        self->reconnects += id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    }
    return self->reconnects;
}

void
bus_client_destroy (bus_client_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_client_t *self = *self_p;
    while (self->count > 0) {
        bus_client_free (&self->queue [self->head]);
        self->head = (self->head + 1) % self->alloc;
        self->count--;
    }
    free (self->queue);
    bus_client_free (&self->welcome);
    bus_client_free (&self->bundle);
    for (size_t i = 0; i < self->out.count; i++) {
        free ((void *) self->out.parts [i].data);
    }
    free (self->out.parts);
    if (self->watch) {
        zmq_socket_monitor (self->dealer, NULL, 0);
        zmq_close (self->watch);
    }
    if (self->dealer) {
        zmq_close (self->dealer);
    }
    if (self->ctx) {
        zmq_ctx_term (self->ctx);
    }
    free (self);
    *self_p = NULL;
}

const char *
bus_client_agent (bus_client_t *self)
{
    return self->agent;
}

const Bulkhead__V1__Welcome *
bus_client_welcome (bus_client_t *self)
{
    return self->welcome? self->welcome->welcome: NULL;
}

void *
bus_client_socket (bus_client_t *self)
{
    return self->dealer;
}

uint64_t
bus_client_last_seq (bus_client_t *self)
{
    return self->last_seq;
}
