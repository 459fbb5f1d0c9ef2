/*  bus_client.h: the C library an agent links to talk to the bus.

    One DEALER socket, CURVE client with the agent's own key, pinned to the
    bus's public key. bus_client_connect says HELLO and waits for WELCOME, so
    a connected client knows the name the bus authenticated it as.

    Frames from the bus (ACKs, DELIVERs, ...) arrive in any order on the one
    socket. bus_client_send waits for the ACK of its own message and keeps
    whatever else arrives meanwhile, in order, for bus_client_recv (bounded:
    past 100,000 kept frames, bus_client_send fails with EBACKLOG rather than
    grow). DELIVERs the bus resends after a reconnect (seq already seen) are
    dropped here, so an agent sees each message once per session.

    The client offers bundles at HELLO: the bus may send several ACKs and
    DELIVERs in one frame, and bus_client_recv hands them out one by one.
    Frames kept or left of a bundle wait here, not on the socket: before
    polling bus_client_socket, read with bus_client_recv (timeout 0) until
    it times out.

    Frames returned to the caller are owned by it: bus_client_free.
*/
#ifndef BUS_CLIENT_H
#define BUS_CLIENT_H

#include "bulkhead.pb-c.h"
#include "bus_error.h"

#include <stdint.h>

typedef struct bus_client bus_client_t;

typedef struct {
    const char *endpoint;       //  e.g. tcp://127.0.0.1:7750
    const char *bus_key;        //  the bus's public key: 40 Z85 chars or a key file
    const char *key_file;       //  this agent's secret key file
    uint64_t last_seq;          //  last DELIVER seq this agent processed (0: use the bus's cursor)
    int timeout_ms;             //  for the handshake and WELCOME; 0 = 5000
} bus_client_options_t;

int
    bus_client_connect (bus_client_t **out, const bus_client_options_t *options,
                        bus_error_t *err);
void
    bus_client_destroy (bus_client_t **self_p);

//  The name the bus authenticated this key as (from WELCOME).
const char *
    bus_client_agent (bus_client_t *self);

//  The WELCOME frame (borrowed, valid until destroy).
const Bulkhead__V1__Welcome *
    bus_client_welcome (bus_client_t *self);

//  Sends a message without waiting. If send->message_id is NULL or empty a
//  fresh random id is used.
int
    bus_client_post (bus_client_t *self, const Bulkhead__V1__Send *send, bus_error_t *err);

//  Several frames in one: after bus_client_cork, bus_client_post and
//  bus_client_ack gather their frames, and bus_client_uncork sends them
//  as Bundles of at most the bytes the bus's WELCOME said it takes (one
//  encrypted frame, one system call, instead of one per message). The bus
//  answers each as if it had come alone, in order. Nothing gathered leaves
//  before uncork, except that bus_client_send and bus_client_control send
//  it first (they wait for a reply), and a bundle that is full goes when
//  the next frame would not fit. A bus that did not say `bundle` gets
//  frame by frame. Destroy drops what is still gathered. On error from
//  uncork (or a post that had to send), none of the frames of that
//  bundle was sent.
void
    bus_client_cork (bus_client_t *self);
int
    bus_client_uncork (bus_client_t *self, bus_error_t *err);

//  Sends and waits for its ACK (or an ERROR naming its message id). *ack is
//  the whole frame (ACK or ERROR). -1 with ETIMEOUT if none came in time.
int
    bus_client_send (bus_client_t *self, const Bulkhead__V1__Send *send,
                     Bulkhead__V1__Frame **reply, int timeout_ms, bus_error_t *err);

//  The next frame from the bus: 0 and *frame, or -1 with ETIMEOUT.
int
    bus_client_recv (bus_client_t *self, Bulkhead__V1__Frame **frame,
                     int timeout_ms, bus_error_t *err);

//  Tells the bus every DELIVER up to seq is processed.
int
    bus_client_ack (bus_client_t *self, uint64_t up_to, bus_error_t *err);

//  Sends an operator or approver command and waits for its reply.
int
    bus_client_control (bus_client_t *self, const Bulkhead__V1__Control *control,
                        Bulkhead__V1__Frame **reply, int timeout_ms, bus_error_t *err);

//  Sends raw bytes as one frame (tests and tools: malformed input).
int
    bus_client_send_raw (bus_client_t *self, const void *data, size_t size,
                         int more, bus_error_t *err);

void
    bus_client_free (Bulkhead__V1__Frame **frame_p);

//  The DEALER socket, to poll on.
void *
    bus_client_socket (bus_client_t *self);

//  Highest DELIVER seq handed to the caller.
uint64_t
    bus_client_last_seq (bus_client_t *self);

//  How many times the connection to the bus was made again since connect
//  (the bus restarted, or the connection dropped): ZeroMQ reconnects by
//  itself, but the bus then knows no HELLO of it, and a caller that must
//  keep its session (notices) connects anew. Never blocks.
unsigned
    bus_client_reconnects (bus_client_t *self);

#endif
