/*  bus_grants.h: standing grants, made, used and ended.

    One approver lets the next N messages, or those of the next T minutes,
    of exactly one (sender, recipient, class, action) through without a
    hold. Never wider than named, never wider than the policy, never for a
    quorum above one, never for restricted messages: the rules are the hold
    stage's (med_hold_grant_allowed), checked when a grant is made, at every
    use (by the stage) and after every reload (a grant the live policy no
    longer allows ends then). Every transition is a log record.
*/
#ifndef BUS_GRANTS_H
#define BUS_GRANTS_H

#include "bus_core.h"

//  The message rec went through under grant id: count it, in the same
//  batch, and end the grant when that was its last message.
void
    bus_grants_use (bus_core_t *core, const char *id, const record_t *rec);

//  Ends the grants whose time is up.
void
    bus_grants_expire (bus_core_t *core, uint64_t now_us);

//  Ends the grants the live policy no longer allows (after a reload).
void
    bus_grants_sweep (bus_core_t *core);

//  CONTROL_GRANT: make a grant, or revoke one (id and no count, minutes or
//  seconds). The reply's one line is the grant id.
bus_code_t
    bus_grants_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                        Bulkhead__V1__ControlReply *reply, char *reason, size_t size);

#endif
