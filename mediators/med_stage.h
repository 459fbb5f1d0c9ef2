/*  med_stage.h: the contract every mediator stage keeps.

    A stage sees one message (the envelope) and answers PASS, HOLD or REJECT,
    with a reason in err. It may set the envelope's decided fields (intent
    class, restricted, hold_required, grant). A stage does no I/O and never
    talks to another stage: whatever it needs from the log or the live state
    the core looked up before the chain ran and put in the envelope. So every
    stage is unit-testable without sockets or LMDB.

    HOLD is a deferred verdict: the message waits in the approval queue, and
    when an approval (or a reload) may complete its hold the core runs the
    whole chain again on it, with env->resume set, against the live policy.
    A stage that wants a person to look (restricted = hold) sets
    env->hold_required and passes; only the hold stage holds, and the
    quarantine stage (med_quarantine.c: the kill switch, a hold no
    approval ends, only an operator's release).

    Observers (observe) see each message's final verdict once, after its
    record is committed, with its sequence; a held message is seen when it
    is held and again when its hold closes. They never decide.

    The core allocates state_size bytes (zeroed) per stage and calls init with
    the live policy; on a policy reload the chain is rebuilt, fini then init.
    Whatever init leaves, fini can clean. Adding a stage is one file and one
    line in med_chain.c's table.
*/
#ifndef MED_STAGE_H
#define MED_STAGE_H

#include "bus_envelope.h"
#include "bus_error.h"
#include "bus_policy.h"

#include <stddef.h>

typedef enum {
    MED_PASS,       //  go on to the next stage
    MED_HOLD,       //  keep it for approval; err says why (deferred verdict)
    MED_REJECT      //  deny; err says why
} med_verdict_t;

//  What an observer sees: one committed outcome. Strings are copies, valid
//  during the observe call.
typedef struct {
    uint64_t seq;                       //  the record that tells of it
    uint64_t time_us;
    med_verdict_t verdict;              //  final: PASS = delivered or queued
    bool hold_closed;                   //  a hold ended (released, denied, expired)
    bus_code_t code;
    const char *stage;                  //  which stage decided ("" if all passed)
    const char *sender;
    const char *recipient;
    const char *intent_class;           //  "" if undecided
    const char *action;                 //  "" if none
    bool restricted;
    const uint64_t *causes;
    size_t n_causes;
    const char *intent;                 //  as the sender labelled it, "" if none
    uint8_t digest [32];                //  of the payload (zeros if unknown)
    uint64_t payload_size;
    uint64_t record_size;               //  bytes the record cost the log (0 if not logged)
    uint64_t ref_seq;                   //  a hold that closed: the held SEND record
} med_event_t;

typedef struct med_stage_s {
    const char *name;       //  policy key and log field
    size_t state_size;
    int  (*init)    (void *state, const bus_policy_t *policy, bus_error_t *err);
    void (*fini)    (void *state);
    med_verdict_t (*decide) (void *state, bus_envelope_t *env, bus_error_t *err);
    void (*observe) (void *state, const med_event_t *event);
} med_stage_t;

#endif
