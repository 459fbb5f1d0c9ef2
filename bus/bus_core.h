/*  bus_core.h: what the daemon's modules share while the bus runs.

    One thread owns all of it (see bus_server.h), so nothing here is locked.
    The modules that act on it each have one job and their own header:

        bus_router    the socket: CURVE, ZAP from the policy, frames in and out
        bus_session   an agent's connection state: HELLO, cursor, the pump
        bus_outbox    what the batch will send once it is committed
        bus_record    log records and the DELIVER built from them
        bus_intake    a SEND becomes an envelope (checks and look-ups)
        bus_decide    the one decision path: chain -> record -> carry out
        bus_approval  the approval queue's control: votes, digests, expiry
        bus_grants    standing grants: made, used, ended
        bus_taint     the taint ledger
        bus_control   operator and approver commands, as a table
        bus_monitor   alerts logged and told, quarantines, the detectors' state

    The core functions below fail the bus closed: once a log write failed,
    `failed` is set and every later frame is answered with the failure.
*/
#ifndef BUS_CORE_H
#define BUS_CORE_H

#include "bus_error.h"
#include "bus_holds.h"
#include "bus_outbox.h"
#include "bus_router.h"
#include "bus_policy.h"
#include "bus_server.h"
#include "bus_session.h"
#include "bus_store.h"
#include "med_chain.h"
#include "record.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

typedef Bulkhead__V1__Record record_t;
typedef Bulkhead__V1__Frame frame_t;

//  Agents quarantined at once, at most (MED_MON_QUARANTINE).
#define BUS_QUARANTINED_MAX 256

typedef struct bus_core {
    bus_server_options_t options;
    void *router;
    char next_local [256];              //  where the next bus key listens ("": no
                                        //  rotation), as bus_router_local names it
    bus_policy_t *policy;
    med_chain_t *chain;
    bus_store_t *store;
    bus_holds_t *holds;                 //  the approval queue
    bus_sessions_t *sessions;
    bus_outbox_t *outbox;
    struct bus_refusals *refusals;      //  refusals counted, not stored one by one
    bool failed;                        //  the log failed: refuse everything
    bus_error_t failure;
    struct bus_seen *seen;              //  committed outcomes for the observers
    size_t seen_count;
    size_t seen_alloc;
    struct med_monitor *monitor;        //  the detectors, for the life of the bus
    struct bus_metrics *metrics;        //  counters for `serve --metrics`, or NULL
    char quarantine_why [400];          //  env->quarantine points here while a chain runs
    const char *quarantined [BUS_QUARANTINED_MAX];  //  bus_intake_quarantined fills it
} bus_core_t;

//  A connection a frame came from: its key, the agent of that key in the
//  live policy, and where it spoke from. Valid while its frame is handled.
typedef struct bus_peer {
    const bus_agent_t *agent;
    const char *key;                    //  Z85 public key, NULL if none
    const char *key_fp;                 //  its fingerprint (which of the agent's keys)
    bus_session_t *session;
    int fd;                             //  the connection (ZMQ_SRCFD), -1 if unknown
    uint8_t rid [BUS_RID_MAX];
    size_t rid_len;
    const void *data;                   //  the frame (for a refusal's digest and length)
    size_t size;
} bus_peer_t;

//  Microseconds since the epoch.
uint64_t
    bus_now_us (void);

//  One line on stderr: a stable id, then key=value fields. Never a payload.
void
    bus_core_say (bus_core_t *self, const char *id, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Fails the bus closed with err (logged once).
void
    bus_core_fail (bus_core_t *self, const bus_error_t *err);

//  Appends rec to the batch; 0, or -1 when the bus is (now) failed.
int
    bus_core_append (bus_core_t *self, record_t *rec);

//  Appends an event record (session, policy, bus) of kind for agent.
void
    bus_core_event (bus_core_t *self, Bulkhead__V1__RecordKind kind, const char *agent,
                    const char *key_z85, bus_code_t code, const char *event);

//  Queues rec's outcome for the observers, called after the commit (only
//  when some stage observes).
void
    bus_core_observe (bus_core_t *self, const record_t *rec, med_verdict_t verdict,
                      bool hold_closed, const char *stage);

//  After a commit: hands the queued outcomes to the observers.
void
    bus_core_observe_flush (bus_core_t *self);

//  Answers a refused frame with ERROR and counts it in the refusal ledger
//  (bus_refusals: the first of a kind is logged at once, the rest merged).
void
    bus_core_refuse (bus_core_t *self, const bus_peer_t *peer, bus_code_t code,
                     const char *reason, const char *message_id);

#endif
