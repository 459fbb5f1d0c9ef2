/*  bus_envelope.h: one message on its way through the mediator chain.

    The core fills the inputs (who sent it, by key; the decoded Send; the
    recipient; what the log says about its causes and its sender) and the
    stages fill the decisions. All pointers are borrowed and valid only while
    the chain runs on this message.
*/
#ifndef BUS_ENVELOPE_H
#define BUS_ENVELOPE_H

#include "bulkhead.pb-c.h"
#include "bus_policy.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    //  Inputs, set by the core.
    const bus_policy_t *policy;
    const bus_agent_t *sender;          //  authenticated by its CURVE key
    const bus_agent_t *recipient;       //  NULL when the name is not in the policy
    const Bulkhead__V1__Send *send;
    bool cause_restricted;              //  some cause in the log is restricted
    uint64_t cause_seq;                 //  the first such cause
    bool sender_tainted;                //  sticky taint on the sender
    uint64_t taint_seq;                 //  the delivery that tainted it
    uint64_t now_us;

    //  Decisions, set by stages.
    int class_index;                    //  decided intent class, -1 = undecided
    char class_rule [192];              //  which rule decided it, for the log
    bool restricted;
    char restricted_why [160];          //  which rule, which cause
} bus_envelope_t;

#endif
