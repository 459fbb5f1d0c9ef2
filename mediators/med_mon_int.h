/*  med_mon_int.h: what the monitor's framework (med_monitor.c) and its
    detectors (med_mon_detect.c) share. Not for the core.

    The state is plain structs of fixed size, no pointers, so a save is the
    tables as they are (with a header that names the format and the sizes):
    baselines beside the log are one value in the `monitor` database.
*/
#ifndef MED_MON_INT_H
#define MED_MON_INT_H

#include "med_monitor.h"

#define MON_RING        65536           //  recent messages kept for cause walks
#define MON_DIGESTS     8192            //  recent payload digests, for bounces
#define MON_EXPECTS     64              //  expectations carried over a reload
#define MON_PENDING_IX  16384           //  the index of pending by seq: 4x their number
#define MON_MINUTE_US   UINT64_C (60000000)
#define MON_HOUR_US     (60 * MON_MINUTE_US)
#define MON_DAY_US      (24 * MON_HOUR_US)
#define MON_NONE        UINT32_MAX

//  Messages a minute against a learned baseline: an EWMA of the count of
//  each minute (zeros for minutes with none), time constant one hour.
typedef struct {
    uint64_t minute;                    //  the minute being counted (time / 60 s)
    uint32_t count;                     //  messages in it so far
    uint32_t minutes;                   //  minutes learned
    double ewma;
} mon_rate_t;

typedef struct {
    char name [BUS_NAME_MAX + 1];       //  "" = free slot
    mon_rate_t rate;
    uint64_t first_us;                  //  first message seen
    //  The last hour, by minute: messages, payload bytes, log bytes.
    uint64_t hour_minute;               //  the newest bucket's minute
    uint32_t hour_msgs [60];
    uint64_t hour_bytes [60];
    uint64_t hour_log [60];
    uint64_t sum_msgs, sum_bytes, sum_log;
    //  Denied attempts in the current minute.
    uint64_t denied_minute;
    uint32_t denied;
    //  Hours of the day (UTC) it is active in, decayed.
    double hours [24];
    double hours_total;
} mon_agent_t;

typedef struct {
    uint32_t from, to;                  //  agent slots; MON_NONE = free
    mon_rate_t rate;
    uint64_t last_used_us;              //  last message not denied
} mon_edge_t;

//  A recent message, for walking causes without the log.
typedef struct {
    uint64_t seq;
    uint64_t parent;                    //  its first cause still in the ring, 0 if none
    uint32_t from, to;
    uint32_t depth;                     //  longest chain of causes that ends here
} mon_msg_t;

typedef struct {
    uint8_t digest [8];                 //  the payload digest's first bytes
    uint32_t holder;                    //  agent last delivered it
    uint32_t forwards;                  //  times it was passed on in its window
    uint64_t first_us;
} mon_digest_t;

//  An expectation's state, matched by name across reloads.
typedef struct {
    char name [BUS_NAME_MAX + 1];
    uint64_t last_us;                   //  heartbeat: last seen (or since when waited)
    uint64_t last_seq;                  //  heartbeat: the last one's record
    bool missed;                        //  heartbeat: an alert is open
} mon_expect_state_t;

typedef struct {
    uint64_t seq;                       //  the message that expects a reply
    uint64_t deadline_us;
    uint64_t seconds;                   //  T, for the alert's sentence
    char expect [BUS_NAME_MAX + 1];     //  which expectation
    char from [BUS_NAME_MAX + 1];
    char to [BUS_NAME_MAX + 1];
} mon_pending_t;

typedef struct {
    uint64_t started_us;                //  first event ever seen
    uint64_t now_us;                    //  latest time seen
    uint64_t next_id;
    uint64_t opened [BUS_ALERT_KIND_COUNT];
    uint64_t dropped;
    uint32_t n_alerts;
    uint32_t n_quarantine;
    uint32_t n_pending;
    uint32_t n_expects;
} mon_head_t;

struct med_monitor {
    const bus_policy_t *policy;
    bus_monitor_policy_t settings;
    size_t map_max;
    mon_head_t head;
    mon_agent_t *agents;                //  MED_MON_AGENTS, open addressing by name
    mon_edge_t *edges;                  //  MED_MON_EDGES, open addressing by (from, to)
    mon_msg_t *ring;                    //  MON_RING, by seq
    mon_digest_t *digests;              //  MON_DIGESTS, by digest
    med_alert_t alerts [MED_MON_ALERTS];
    med_quarantine_t quarantine [MED_MON_QUARANTINE];
    mon_pending_t *pending;             //  MED_MON_PENDING, in no order
    uint32_t *pending_ix;               //  MON_PENDING_IX: 1 + a pending's place, by seq
    mon_expect_state_t expects [MON_EXPECTS];
    uint32_t auto_quarantine [MED_MON_ALERTS];  //  alert slots not yet handed out
    uint32_t n_auto;
    bool dirty;
    uint64_t saved_minute;
};

//  Framework services for the detectors.
uint32_t
    mon_agent (med_monitor_t *self, const char *name);
uint32_t
    mon_edge (med_monitor_t *self, uint32_t from, uint32_t to);
//  The same without adding it: MON_NONE when unknown.
uint32_t
    mon_edge_find (const med_monitor_t *self, uint32_t from, uint32_t to);
//  Raises (or adds evidence to) the alert of kind on subject.
void
    mon_fire (med_monitor_t *self, bus_alert_kind_t kind, const char *agent,
              const char *subject, const uint64_t *evidence, size_t n_evidence,
              uint64_t now_us, const char *fmt, ...)
    __attribute__ ((format (printf, 8, 9)));
//  Closes the open alert of kind on subject, if any.
void
    mon_close (med_monitor_t *self, bus_alert_kind_t kind, const char *subject, uint64_t now_us);
//  The messages waiting for a result, found by seq in one probe or two
//  (a reply names its causes; a scan of all waiting for every reply would
//  cost thousands of compares a message on a busy bus). Several may share
//  a seq (one message, two expectations).
//  A new waiting message of seq, its other fields for the caller to fill;
//  NULL (and counted in dropped) when MED_MON_PENDING wait already.
mon_pending_t *
    mon_pending_push (med_monitor_t *self, uint64_t seq);
//  The place of a message of seq waiting for a result from `to`, or
//  MON_NONE.
uint32_t
    mon_pending_find (const med_monitor_t *self, uint64_t seq, const char *to);
//  Removes the one at place i; the last one takes its place.
void
    mon_pending_remove (med_monitor_t *self, uint32_t i);
//  Builds the index again after the array was rewritten (load, reload).
void
    mon_pending_reindex (med_monitor_t *self);
//  Counts one message in a rate; true if the minute so far is far above
//  its baseline (factor, min_volume, after an hour learned).
bool
    mon_rate_count (med_monitor_t *self, mon_rate_t *rate, uint64_t now_us, uint32_t *count,
                    double *baseline);

//  The detectors.
void
    mon_detect_observe (med_monitor_t *self, const med_event_t *event);
void
    mon_detect_tick (med_monitor_t *self, uint64_t now_us);

#endif
