/*  bus_monitor.h: the detectors' side of the core.

    The core owns one med_monitor (mediators/med_monitor.h) for the life of
    the bus. This module loads its state from the `monitor` database at
    start, reconfigures it on a reload, feeds it time, and after each
    commit turns what it raised into log records (RECORD_ALERT) and Alert
    frames for the online agents with the `monitor` role; it quarantines an
    agent where the policy lets an alert kind do so (an audited CONTROL
    record by actor "bus"); and it answers the alert and quarantine
    controls. The state is written in the batch of whatever changed it.
*/
#ifndef BUS_MONITOR_H
#define BUS_MONITOR_H

#include "bus_core.h"

//  Makes the monitor, from the saved state if there is one (a state of
//  another format is set aside with a log line: baselines learn again).
int
    bus_monitor_open (bus_core_t *core, bus_error_t *err);

void
    bus_monitor_close (bus_core_t *core);

//  The live policy changed: settings and expectations from it, state kept.
void
    bus_monitor_configure (bus_core_t *core);

//  Time passes (the bus's timer).
void
    bus_monitor_tick (bus_core_t *core, uint64_t now_us);

//  After a commit: logs and tells what the monitor raised, quarantines,
//  saves the state when it changed. True if it wrote anything (the caller
//  commits again).
bool
    bus_monitor_drain (bus_core_t *core);

//  Writes the state in the current batch.
void
    bus_monitor_save (bus_core_t *core);

//  Control handlers (bus_control's table): LIST_ALERTS, ACK_ALERT
//  (operators and monitors), QUARANTINE, RELEASE, LIST_QUARANTINE
//  (operators).
bus_code_t
    bus_monitor_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                         Bulkhead__V1__ControlReply *reply, char *reason, size_t size);

#endif
