/*  bus_decide.h: the one decision path.

    Every verdict on a message comes from the mediator chain, here:

        envelope (bus_intake) -> chain -> record -> after the append:
        deliver or queue / hold / deny, and the ACK

    A first pass decides a Send as it arrives. A resume decides a held
    message again, with the whole chain against the live policy and state,
    whenever an approval or a reload may complete its hold: PASS releases
    it (a new record, so the mailbox stays in log order), HOLD keeps it
    waiting, REJECT closes the hold denied with the stage's reason. So a
    released message meets exactly the rules a message sent now would, and
    never with a lower restricted mark than it was held with.
*/
#ifndef BUS_DECIDE_H
#define BUS_DECIDE_H

#include "bus_core.h"

//  Decides one Send from peer (fields already checked, not a duplicate).
void
    bus_decide_send (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Send *send);

//  Decides pending hold again. Returns the verdict: MED_PASS (released),
//  MED_HOLD (still waiting) or MED_REJECT (closed denied); result gets the
//  code (OK, or why it was denied) and a sentence for the approver. A hold
//  that was released or closed is gone afterwards (hold is invalid).
med_verdict_t
    bus_decide_resume (bus_core_t *core, bus_hold_t *hold, bus_error_t *result);

#endif
