/*  bus_envelope.h: one message on its way through the mediator chain.

    The core fills the inputs (who sent it, by key; the decoded Send; the
    recipient; what the log and the live state say about its causes, its
    sender, the recipient's mailbox, the approval queue and the standing
    grants) and the stages fill the decisions. Stages read the inputs only;
    no stage does I/O, so every stage is unit-testable with an envelope built
    by hand. All pointers are borrowed and valid only while the chain runs on
    this message.

    A held message is decided again, by the whole chain, whenever an approval
    or a policy reload may complete its hold: the core then sets `resume` to
    the pending hold (its votes and the restricted mark it was held with).
*/
#ifndef BUS_ENVELOPE_H
#define BUS_ENVELOPE_H

#include "bulkhead.pb-c.h"
#include "bus_holds.h"
#include "bus_policy.h"

#include <stdbool.h>
#include <stdint.h>

#define BUS_ENVELOPE_STEERED_MAX    8

typedef struct {
    //  Inputs, set by the core.
    const bus_policy_t *policy;
    const bus_agent_t *sender;          //  authenticated by its CURVE key; NULL on a
                                        //  resume whose sender left the policy
    const char *sender_name;            //  the authenticated name, also when sender is NULL
    const char *key_fp;                 //  fingerprint of the key it came with (of two,
                                        //  during a rotation); NULL: the agent's key
    const bus_agent_t *recipient;       //  NULL when the name is not in the policy
    const Bulkhead__V1__Send *send;
    uint64_t foreign_cause;             //  first cause this sender never sent nor
                                        //  was delivered (0: none)
    bool cause_restricted;              //  some cause in the log is restricted
    uint64_t cause_seq;                 //  the first such cause
    bool sender_tainted;                //  sticky taint on the sender
    uint64_t taint_seq;                 //  the delivery that tainted it
    uint32_t recipient_pending;         //  unacknowledged messages in its mailbox
    uint32_t recipient_pending_sender;  //  ... of them from this sender
    uint32_t holds_total;               //  pending holds, all senders
    uint32_t holds_sender;              //  pending holds of this sender
    const bus_grant_t *grants;          //  the live standing grants
    uint32_t n_grants;
    //  Approvers of grants for this sender and recipient whose own message
    //  is among this one's causes: their grants do not stand in for them
    //  (BUS_ENVELOPE_STEERED_MAX names; more than that: no grant counts).
    const char *steered [BUS_ENVELOPE_STEERED_MAX];
    uint32_t n_steered;
    bool steered_over;
    bool log_checked;                   //  log_left is set (the core always sets it)
    double log_left;                    //  bytes of log the sender may still cause
    const bus_hold_t *resume;           //  set when a held message is decided again
    uint64_t now_us;
    const char *quarantine;             //  the sender is quarantined: by whom and why
                                        //  (NULL: it is not)
    const char *const *quarantined;     //  every agent quarantined now, by name: their
    uint32_t n_quarantined;             //  votes and grants do not count meanwhile

    //  Decisions, set by stages.
    int class_index;                    //  decided intent class, -1 = undecided
    char class_rule [192];              //  which rule decided it, for the log
    bool restricted;
    char restricted_why [160];          //  which rule, which cause
    bool hold_required;                 //  a stage asks for a person (restricted = hold)
    char hold_why [256];
    const bus_grant_t *grant;           //  the grant that stands in for the hold
    const char *approvers [BUS_HOLD_VOTES_MAX];     //  votes that count, on a release
    uint32_t n_approvers;
} bus_envelope_t;

#endif
