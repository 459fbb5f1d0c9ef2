/*  bus_session.h: what the bus knows of one agent's connection.

    One session per agent name, made on first use and kept while the bus
    runs (the outbox may point at it). States:

        offline   nothing is pushed; its mailbox keeps what arrives
        connected its key spoke from a routing id, no HELLO yet: only HELLO
                  and PING are answered
        welcomed  said HELLO: the pump pushes its mailbox, in log order,
                  from its cursor, at most `window` unacknowledged at once

    The cursor (what it acknowledged) is durable in the store; `sent` and
    `inflight` are the delivering connection's and start again from the
    cursor when another connection takes over (a HELLO again on the same
    connection resends nothing already in flight).

    Memory is bounded per agent, whatever its connections: at most `window`
    DELIVERs and BUS_INFLIGHT_BYTES (8 MiB) of them wait unacknowledged in libzmq's
    queues; the rest stays in the log until there is room.

    Connections. A key may have several live connections (an approver runs
    the console beside the CLI; an agent restarts while its old connection
    lingers). Deliveries and Pending notices go to one of them, the
    delivering connection: the one that said HELLO last, or, once that one
    is gone, the next one of the same key that speaks. Replies go to the
    connection that asked; acknowledgements are taken from any of them, up
    to what was pushed to any of them. A connection is bound by the file
    descriptor it came on (bus_router_monitor): when libzmq reports that
    descriptor closed, the binding goes, so a routing id is never reused
    for the agent until a frame authenticated with its key arrives on it
    again: a peer squatting an agent's routing id receives nothing. A reload
    that changes or removes an agent's key takes its connection offline at
    once: nothing more is pushed to the old key.

    Bundles. A delivering connection whose HELLO offered `bundle` gets what
    one flush has for it (its ACKs, then the DELIVERs the flush and the pump
    push) as Bundle frames of at most that many bytes, in the order they
    would have gone one by one: the frames wait in the session's cork and
    bus_sessions_uncork sends them. Only frames queued with their session
    wait (ACKs and DELIVERs); the rest go out at once, so a cork can only
    make an ACK or DELIVER arrive after another frame of the same flush,
    and none of those depends on coming later. A DELIVER in a cork counts
    as pushed (window, `sent`); a bundle libzmq will not take gives its
    DELIVERs back to the pump, and a restricted one taints its recipient
    only once its bundle went.
*/
#ifndef BUS_SESSION_H
#define BUS_SESSION_H

#include "bulkhead.pb-c.h"
#include "record.pb-c.h"
#include "bus_policy.h"
#include "bus_outbox.h"
#include "bus_router.h"

#include <stdbool.h>
#include <stdint.h>

#define BUS_INFLIGHT_BYTES      ((uint64_t) 8 << 20)

//  Of one Bundle, at most this many bytes of frames that are not DELIVERs
//  (ACKs, mostly). DELIVERs have their window; ACKs only libzmq's
//  high-water mark, which counts frames, not bytes: for a sender that
//  never reads its ACKs, what the bus holds is that mark (10,000) times
//  this, per connection (10 MiB), instead of times one ACK (~120 B, 1.2
//  MB). Eight or so ACKs a frame already make CURVE's cost per ACK small.
#define BUS_BUNDLE_REPLIES      ((size_t) 1 << 10)

typedef struct bus_core bus_core_t;
typedef struct bus_peer bus_peer_t;
typedef struct bus_sessions bus_sessions_t;

typedef struct bus_session {
    char agent [BUS_NAME_MAX + 1];
    int fd;                         //  the delivering connection, -1 if none
    uint8_t rid [BUS_RID_MAX];      //  its routing id
    size_t rid_len;
    char key [BUS_KEY_Z85_LEN + 1]; //  the key it authenticated with
    bool hello;                     //  said HELLO at least once
    bool online;                    //  we believe its connection is up
    bool backlog;                   //  mailbox has entries past `sent` to push
    bool due;                       //  in the pump's list (bus_sessions_pump)
    uint32_t bundle;                //  bytes of one Bundle its connection takes, 0: none
    struct bus_cork *cork;          //  frames waiting to go as one Bundle, or NULL
    uint64_t acked;                 //  its delivery cursor
    uint64_t sent;                  //  highest seq pushed on this connection
    uint64_t pushed;                //  highest seq pushed on any connection
    uint32_t inflight;              //  pushed, not yet acknowledged
    uint64_t inflight_bytes;        //  their bytes (approximate once some are acked)
    uint32_t pending;               //  in the mailbox, not yet acknowledged
    void *by_sender;                //  zhashx: sender -> its messages in `pending`
    uint64_t taint_seq;             //  restricted delivery that tainted it, 0 if clean
    uint64_t taint_us;              //  when
    //  What its key may make the bus do (bus_session_budget), before any
    //  decode: token buckets one second deep.
    double budget_frames;
    double budget_bytes;
    uint64_t budget_us;
    uint32_t connections;           //  live connections of its key
    double log_left;                //  bytes of log it may still cause this hour
    uint64_t log_us;
} bus_session_t;

bus_sessions_t *
    bus_sessions_new (void);
void
    bus_sessions_destroy (bus_sessions_t **self_p);

//  The session of agent, made (cursor, mailbox count and taint read from
//  the store) on first use. NULL when memory is out.
bus_session_t *
    bus_session_get (bus_core_t *core, const char *agent);

//  Unacknowledged messages from sender in session's mailbox (counted only
//  once the mailbox holds at least its fair share or 64; 0 below that,
//  where the share cannot be reached anyway).
uint32_t
    bus_session_pending_from (bus_session_t *session, const char *sender);

//  The session of agent if one was made, else NULL.
bus_session_t *
    bus_session_find (bus_core_t *core, const char *agent);

//  Pumps every session that is online with a backlog (bus_session_pump),
//  after a commit. Only those are visited: a fleet's idle sessions cost
//  nothing per commit.
void
    bus_sessions_pump (bus_core_t *core);

//  Keeps a frame for session's delivering connection rid in its cork,
//  which then owns *data (set to NULL). False when the connection takes no
//  bundles, is not rid, or the frame is too big for one: the caller then
//  sends it itself.
bool
    bus_session_cork (bus_core_t *core, bus_session_t *session, const uint8_t *rid,
                      size_t rid_len, uint8_t **data, size_t size);

//  Sends every cork: after the flush and the pump.
void
    bus_sessions_uncork (bus_core_t *core);

//  Sessions online now, and sessions made.
size_t
    bus_sessions_online (bus_core_t *core);
size_t
    bus_sessions_count (bus_core_t *core);

//  Iteration over every session made.
bus_session_t *
    bus_session_first (bus_core_t *core);
bus_session_t *
    bus_session_next (bus_core_t *core);

//  A frame of the session's key arrived from peer's connection (fd, rid):
//  a welcomed session with no delivering connection takes it, and resends
//  what the old one may have lost (the client drops repeats by seq).
void
    bus_session_seen (bus_core_t *core, bus_session_t *session, const bus_peer_t *peer);

//  Takes one frame of size bytes from the session's budget (agent's frames
//  and bytes per second). False when over: the frame is refused (RATE)
//  before any decode.
bool
    bus_session_budget (bus_session_t *session, const bus_agent_t *agent, size_t size,
                        uint64_t now_us);

//  A frame came on fd for session: a connection not seen before counts
//  against its key's cap (policy bus.connections). False when over the cap.
bool
    bus_session_connection (bus_core_t *core, bus_session_t *session, int fd);

//  Log bytes the session may still cause (its agent's log budget per hour,
//  refilled continuously), and what a record just cost it.
double
    bus_session_log_left (bus_core_t *core, bus_session_t *session, const bus_agent_t *agent,
                          uint64_t now_us);
void
    bus_session_log_spent (bus_session_t *session, size_t bytes);

//  The connection on fd closed: the session it delivered to goes offline.
void
    bus_session_gone (bus_core_t *core, int fd);

//  After a reload, and every second: every session whose connection's key
//  is no longer a live key of its agent (changed, rotated out, removed or
//  expired) goes offline, and must say HELLO again.
void
    bus_sessions_rekey (bus_core_t *core);

//  HELLO: resume from the cursor and queue the WELCOME.
void
    bus_session_hello (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Hello *hello);

//  DELIVERY-ACK: move the cursor up to what it was sent.
void
    bus_session_ack (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__DeliveryAck *ack);

//  A message accepted for session (just logged delivered or queued): count
//  it in the mailbox, and queue its DELIVER if the session is in step.
void
    bus_session_accept (bus_core_t *core, bus_session_t *session, const Bulkhead__V1__Record *rec);

//  After the commit: sends one queued DELIVER if the session is still in
//  step with its mailbox, else leaves it to the pump.
void
    bus_session_deliver (bus_core_t *core, bus_session_t *session, bus_out_t *out);

//  Pushes mailbox entries past `sent` while its window has room.
void
    bus_session_pump (bus_core_t *core, bus_session_t *session);

#endif
