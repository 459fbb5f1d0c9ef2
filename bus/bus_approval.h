/*  bus_approval.h: the approval queue as approvers and the clock see it.

    A held message waits here (storage: bus_holds) until approved, denied or
    expired. Approvers list what waits for them, vote with the digest of the
    exact record they read, or deny with a reason; every transition is a log
    record naming the original sender, the actor and where the hold stands.
    A vote never releases by itself: it asks bus_decide to decide the held
    message again, and the chain's hold stage counts the votes that the live
    policy still accepts against the live quorum.
*/
#ifndef BUS_APPROVAL_H
#define BUS_APPROVAL_H

#include "bus_core.h"
#include "bus_envelope.h"
#include "med_hold.h"

//  rec was just logged as held: queue its hold and tell the approvers.
//  0, or -1 (the bus failed closed: the batch must not commit).
//  The seq of a message agent sent among causes (the n seqs a message
//  names) or, transitively, theirs; 0 if none; BUS_CAUSED_MAYBE if the
//  causes go back further than the walk and may hold one. Such an agent
//  may not decide on the message, by vote or by grant.
#define BUS_CAUSED_MAYBE    UINT64_MAX
uint64_t
    bus_approval_caused_by (bus_core_t *core, const uint64_t *causes, size_t n, const char *agent);

int
    bus_approval_enqueue (bus_core_t *core, const record_t *rec, const bus_envelope_t *env);

//  Records a transition of hold by actor (NULL: the bus) in the log.
int
    bus_approval_record (bus_core_t *core, const bus_hold_t *hold, const char *actor,
                         bus_code_t code, const char *event);

//  hold was released by rec: mark it, tell its sender.
void
    bus_approval_released (bus_core_t *core, bus_hold_t *hold, const record_t *rec);

//  Ends a pending hold without delivery: denied or expired.
void
    bus_approval_close (bus_core_t *core, bus_hold_t *hold, int state, const char *actor,
                        bus_code_t code, const char *reason);

//  Closes every hold whose time is up.
void
    bus_approval_expire (bus_core_t *core, uint64_t now_us);

//  Decides every pending hold again (at start and after a reload), or only
//  those approved but refused for room (on the timer).
void
    bus_approval_resume_all (bus_core_t *core, bool retries_only);

//  The control handlers: LIST_PENDING, APPROVE, DENY.
bus_code_t
    bus_approval_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                          Bulkhead__V1__ControlReply *reply, char *reason, size_t size);

#endif
