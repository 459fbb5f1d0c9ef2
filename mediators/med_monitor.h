/*  med_monitor.h: the detectors, as observers of committed outcomes.

    The monitor sees every committed outcome (med_event_t, after its record
    is durable) and the passing of time (med_monitor_tick), and raises
    alerts. It never decides: the only thing it may cause is a quarantine,
    and only where the policy says so for an alert kind (quarantine_on);
    the quarantine itself is a stage of the chain (med_quarantine.c) that
    reads what the core asks of med_monitor_quarantined.

    Why not a chain stage with `observe`: a stage's state starts again with
    every policy (the chain is rebuilt on reload), and baselines must
    survive a reload and a restart. So the core owns one monitor for the
    life of the bus, hands it the same events it hands the chain's
    observers, reconfigures it on a reload (baselines kept, expectations
    matched by name), and stores its state in the `monitor` database beside
    the log (med_monitor_save / med_monitor_load). Like a stage, it does no
    I/O and reads no clock: time is the events' time_us and tick's now_us,
    so tests drive it with a simulated clock and no sleeps.

    The detectors (med_mon_detect.c), one table row each:
      loops     a cause cycle (one edge `loop_turns` times along a chain of
                causes), a chain deeper than `loop_depth`, one payload
                forwarded `bounce` times within 10 minutes, a pair whose
                exchanges in a minute are `factor` times its baseline;
      volume    an agent's or an edge's messages in a minute over `factor`
                times its baseline (an EWMA of messages a minute, time
                constant one hour) and at least `min_volume`;
      cost      an agent over `budget_messages` or `budget_bytes` in the
                last hour, or over `cost_percent` of its log budget;
      dest      an allowed edge used for the first time in `new_edge_days`
                (after `learn_hours`), `probe` denied attempts in a minute;
      timing    a message in an hour of the day (UTC) that, with its two
                neighbours, held less than `timing_permille` of the agent's
                traffic (after three days of it);
      absence   the policy's `expect` lines: heartbeats and expected results
                (also a result that came back denied).

    Alerts are deduplicated while open (same kind and subject: the evidence
    grows, nothing new is announced) and close after `quiet` seconds with
    no new sign (absence alerts close when what was missing comes).
    Every transition (opened, closed, acknowledged) is handed to the core
    once through med_monitor_next; the core logs it (RECORD_ALERT) and tells
    the agents with the `monitor` role.

    Bounded: at most MED_MON_AGENTS agents, MED_MON_EDGES edges,
    MED_MON_ALERTS alerts kept, MED_MON_PENDING expected results waiting;
    what does not fit is counted in `dropped`, never an error.
*/
#ifndef MED_MONITOR_H
#define MED_MONITOR_H

#include "bus_policy.h"
#include "med_stage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MED_MON_AGENTS      4096
#define MED_MON_EDGES       16384
#define MED_MON_ALERTS      256
#define MED_MON_PENDING     4096
#define MED_MON_EVIDENCE    16
#define MED_MON_QUARANTINE  256

typedef struct med_monitor med_monitor_t;

//  What happened to an alert, for the core to log and announce.
typedef enum {
    MED_ALERT_OPENED,
    MED_ALERT_CLOSED,
    MED_ALERT_ACKED
} med_alert_change_t;

typedef struct {
    char id [24];                           //  "a-" + 16 hex
    bus_alert_kind_t kind;
    char agent [BUS_NAME_MAX + 1];          //  the agent it is about (the sender of an edge)
    char subject [2 * BUS_NAME_MAX + 2];    //  the agent, or "sender>recipient"
    char text [256];                        //  what was seen
    uint64_t evidence [MED_MON_EVIDENCE];   //  log sequences
    uint32_t n_evidence;
    uint32_t signs;                         //  times it fired while open
    uint64_t opened_us;
    uint64_t last_us;                       //  its last sign
    uint64_t closed_us;                     //  0 while open
    uint64_t acked_us;
    char acked_by [BUS_NAME_MAX + 1];
    uint64_t seq;                           //  the record that opened it (set by the core)
    unsigned changes;                       //  bit per med_alert_change_t not yet handed out
} med_alert_t;

//  One quarantined agent.
typedef struct {
    char agent [BUS_NAME_MAX + 1];
    char by [BUS_NAME_MAX + 1];             //  the operator, or "bus" for an alert
    char reason [256];
    uint64_t since_us;
} med_quarantine_t;

//  map_max: the log's map limit (bytes, 0 = 64 GiB), for the default log
//  budget (5% of it) the cost detector measures against.
med_monitor_t *
    med_monitor_new (size_t map_max);

void
    med_monitor_destroy (med_monitor_t **self_p);

//  Takes the settings and expectations of policy (borrowed for as long as
//  it is the live one); baselines, alerts and quarantines stay.
void
    med_monitor_configure (med_monitor_t *self, const bus_policy_t *policy);

//  True if the detectors run (the policy's monitor.on): the core collects
//  events for the monitor only then.
bool
    med_monitor_on (const med_monitor_t *self);

//  One committed outcome. Quiet when the policy says monitor.on = false.
void
    med_monitor_observe (med_monitor_t *self, const med_event_t *event);

//  Time passes: absence, alerts closing. now_us never goes backwards
//  in a test; a clock that does is treated as standing still.
void
    med_monitor_tick (med_monitor_t *self, uint64_t now_us);

//  The next alert transition not yet handed out, or NULL. The pointer is
//  valid until the next call into the monitor.
med_alert_t *
    med_monitor_next (med_monitor_t *self, med_alert_change_t *change);

//  Alerts kept (open first, then recently closed, newest first).
size_t
    med_monitor_alerts (med_monitor_t *self, const med_alert_t **out, size_t max);

//  Acknowledges alert id: 0, or -1 if there is none.
int
    med_monitor_ack (med_monitor_t *self, const char *id, const char *by, uint64_t now_us);

//  A rate as the detectors see it: an agent (recipient "") or an edge.
typedef struct {
    const char *sender;
    const char *recipient;
    uint32_t minute;                        //  messages this minute so far
    double baseline;                        //  its learned messages a minute
    uint64_t hour;                          //  agents: messages in the last hour
} med_rate_view_t;

//  Agents then edges, each busiest first (this minute, then baseline);
//  strings valid until the next call into the monitor.
size_t
    med_monitor_rates (med_monitor_t *self, uint64_t now_us, med_rate_view_t *out, size_t max);

//  Alerts opened, by kind, since the monitor was made (for metrics).
uint64_t
    med_monitor_opened (const med_monitor_t *self, bus_alert_kind_t kind);

//  Things left out because a table was full.
uint64_t
    med_monitor_dropped (const med_monitor_t *self);

//  Quarantines: 0, or -1 if already (or not) quarantined, or the table is full.
int
    med_monitor_quarantine (med_monitor_t *self, const char *agent, const char *by,
                            const char *reason, uint64_t now_us);
int
    med_monitor_release (med_monitor_t *self, const char *agent);
const med_quarantine_t *
    med_monitor_quarantined (const med_monitor_t *self, const char *agent);
size_t
    med_monitor_quarantines (const med_monitor_t *self, const med_quarantine_t **out);
//  The names of the agents quarantined now, at most max, into out
//  (borrowed: valid until the next quarantine or release). Returns how many.
size_t
    med_monitor_quarantined_names (const med_monitor_t *self, const char **out, size_t max);

//  The alerts the policy lets quarantine their agent, opened since the last
//  call: the agent name of each in turn, NULL when none is left.
const char *
    med_monitor_next_quarantine (med_monitor_t *self, const med_alert_t **alert);

//  State changed since the last save (baselines every minute of traffic,
//  at once for alerts and quarantines).
bool
    med_monitor_dirty (const med_monitor_t *self);

//  The whole state as bytes (malloc'd, caller frees), and back. load
//  refuses (-1, state untouched) bytes of another format or version.
int
    med_monitor_save (med_monitor_t *self, uint8_t **data, size_t *size);
int
    med_monitor_load (med_monitor_t *self, const uint8_t *data, size_t size);

#endif
