/*  bus_router.h: the bus's one socket, a ZeroMQ ROUTER with CURVE.

    Security is set before bind (bus_router_secure): CURVE server, a ZAP
    domain set and enforced (so no key passes while no ZAP handler answers),
    ROUTER_MANDATORY (a send to a gone peer says so instead of vanishing),
    no handover, a frame size cap, a handshake timeout, and dead peers found
    by the kernel, not by ZMQ heartbeats (see bus_router_secure).

    The ZAP handler is ours: it answers from the live policy, so a key the
    policy does not name never completes a handshake. The authenticated key
    then rides on every frame (User-Id), and the core looks it up in the live
    policy again on every frame: a reload that removes a key refuses its
    next frame. A routing id is only where a key last spoke from; it is
    never trusted, logged as identity, or shown to agents.
*/
#ifndef BUS_ROUTER_H
#define BUS_ROUTER_H

#include "bus_error.h"
#include "bus_wire.h"
#include "bus_policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define BUS_ZAP_DOMAIN          "bulkhead"
#define BUS_ZAP_ENDPOINT        "inproc://zeromq.zap.01"
#define BUS_HARD_FRAME_MAX      (16 * 1024 * 1024 + 4096)
#define BUS_RID_MAX             256

//  Dead peers: libzmq 4.3.4 cancels a timer with a walk of every timer of
//  its I/O thread, and ZMQ heartbeats re-arm one per connection per beat,
//  so they made the bus quadratic in connections (5,000 idle agents cost
//  it a third to half a core, 10,000 far more; bench/fleet.sh). So the bus
//  sends none, and heartbeat_ms is not used (kept for callers). Instead
//  TCP keepalive and TCP_USER_TIMEOUT, kept by the kernel at no CPU cost
//  to the bus: a half-open tcp peer (its host gone, the network cut) is
//  dropped about 60 s after its last packet (idle 30 s, then 3 probes 10 s
//  apart), or 60 s after the oldest byte it left unacknowledged; the bus
//  sees it as a disconnect. An ipc peer's close is seen at once. A peer
//  that is alive but stuck (its process stopped) keeps its connection:
//  what is queued for it is bounded by the delivery window and the HWM.
//  Agents' own heartbeats (bus_client's) are answered, and cost the bus
//  only the PONG: they carry no TTL, so the bus arms no timer for them.
int
    bus_router_secure (void *socket, const char *secret_z85, int heartbeat_ms,
                       bus_error_t *err);

//  Makes libzmq drop a connection whose frame is far over max_frame: frames
//  up to twice max_frame (plus 4 KiB) still reach the bus and are refused
//  TOOBIG with a reason; bigger ones close the connection inside libzmq
//  (seen by the bus as a disconnect, logged as one). For connections made
//  from now on.
//  Which of the bus's endpoints a connection came in on: the local address
//  of its descriptor as a key, "tcp:PORT" or "ipc:PATH" (ports only: a bind
//  to tcp://*:P is reached at whichever address). 0, or -1 if none.
int
    bus_router_local (int fd, char *out, size_t size);

//  Binds endpoint with its own CURVE secret key (a rotation's overlap:
//  each key on an endpoint of its own), then sets restore_z85 back as the
//  socket's key. bound gets what was bound (ZMQ_LAST_ENDPOINT). 0 or -1.
int
    bus_router_bind_keyed (void *socket, const char *endpoint, const char *secret_z85,
                           const char *restore_z85, char *bound, size_t size, bus_error_t *err);

//  The same key for an endpoint the bus bound (ZMQ_LAST_ENDPOINT).
int
    bus_router_endpoint_key (const char *endpoint, char *out, size_t size);

int
    bus_router_limit (void *socket, uint32_t max_frame, bus_error_t *err);

//  One answered ZAP request.
typedef struct {
    bool handled;                       //  false: nothing (complete) was waiting
    const bus_agent_t *agent;           //  NULL: refused
    char key [BUS_KEY_Z85_LEN + 1];     //  "" if the client gave no CURVE key
    char address [64];                  //  the peer's address as libzmq gives it
    const char *why;                    //  why refused
} bus_zap_t;

//  Answers one request waiting on the ZAP socket from policy.
void
    bus_router_zap (void *zap, const bus_policy_t *policy, bus_zap_t *out);

//  One message read from the ROUTER. body is open until bus_router_done.
typedef struct {
    uint8_t rid [BUS_RID_MAX];
    size_t rid_len;
    zmq_msg_t body;
    char key [BUS_KEY_Z85_LEN + 1];     //  the authenticated key, "" if none
    int fd;                             //  the connection it came on (ZMQ_SRCFD), -1 if unknown
    bool multipart;                     //  more than one body frame (drained)
} bus_inframe_t;

//  Reads one message without waiting: 0, or -1 if none was waiting.
int
    bus_router_recv (void *router, bus_inframe_t *in);
void
    bus_router_done (bus_inframe_t *in);

//  Connections as the bus sees them come and go. A ROUTER does not tell
//  its application when a peer leaves (ZMQ_ROUTER_NOTIFY is a draft option
//  that Debian's libzmq 4.3.4 refuses), so the bus watches the socket's
//  monitor: DISCONNECTED names the connection's file descriptor, and every
//  frame names its own (ZMQ_SRCFD). A connection is then (fd, routing id,
//  key): seen authenticated on a frame, gone at its DISCONNECTED. Returns
//  the monitor socket (a PAIR the caller polls and closes), or NULL.
void *
    bus_router_monitor (void *ctx, void *router, bus_error_t *err);

//  Reads every event waiting on the monitor and calls gone (arg, fd) for
//  each connection that closed.
void
    bus_router_events (void *monitor, void (*gone) (void *arg, int fd), void *arg);

//  Sends one frame to a routing id, never blocking. 0, or the errno:
//  EHOSTUNREACH (peer gone) or EAGAIN (peer at its high-water mark).
int
    bus_router_send (void *router, const uint8_t *rid, size_t rid_len,
                     const void *data, size_t size);

//  Sends a bundle's sealed frame the same way, written straight into the
//  message libzmq sends (no copy of the whole).
int
    bus_router_send_bundle (void *router, const uint8_t *rid, size_t rid_len,
                            const bus_bundle_t *bundle);

#endif
