/*  bus_intake.h: a SEND becomes an envelope.

    Before anything an agent sent is trusted, logged or compared, its fields
    are checked (bus_intake_invalid). A resent message id is answered with
    its first verdict and never decided again: idempotency is a look-up
    before the chain, not a rule of it. Then the envelope is filled with
    what the stages need from the log and the live state: the sender's
    taint, whether a cause is restricted, the recipient's mailbox, the
    approval queue's size, the live grants.
*/
#ifndef BUS_INTAKE_H
#define BUS_INTAKE_H

#include "bus_core.h"
#include "bus_envelope.h"

//  NULL if send's fields are fine, else the sentence.
const char *
    bus_intake_invalid (const Bulkhead__V1__Send *send);

//  True if peer's agent used send's message id before; the first verdict
//  is then answered (ACK with code DUPLICATE) and logged.
bool
    bus_intake_duplicate (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Send *send);

//  The agents quarantined now, into core->quarantined; returns how many.
//  The kill switch holds what they send (the quarantine stage) and takes
//  away what they decide: their votes and grants count for nothing while
//  it lasts (med_hold).
uint32_t
    bus_intake_quarantined (bus_core_t *core);

//  Fills env's inputs for send from sender (the authenticated name); resume
//  is the pending hold when a held message is decided again, else NULL.
void
    bus_intake_envelope (bus_core_t *core, bus_envelope_t *env, const char *sender,
                         const Bulkhead__V1__Send *send, const bus_hold_t *resume);

//  Queues an ACK for one Send, to rid; session is its sender's (the ACK
//  waits in its cork when rid is its delivering connection).
void
    bus_intake_ack (bus_core_t *core, bus_session_t *session, const uint8_t *rid,
                    size_t rid_len, const char *message_id,
                    Bulkhead__V1__Verdict verdict, bus_code_t code, const char *reason,
                    uint64_t seq, const char *intent_class, bool restricted,
                    const char *approval_id);

#endif
