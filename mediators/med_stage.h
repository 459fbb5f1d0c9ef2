/*  med_stage.h: the contract every mediator stage keeps.

    A stage sees one message (the envelope) and answers PASS, HOLD or REJECT.
    It may set the envelope's decided fields (intent class, restricted). A
    stage does no I/O and never talks to another stage: whatever it needs from
    the log (is a cause restricted? is the sender tainted?) the core looked up
    before the chain ran and put in the envelope. So every stage is
    unit-testable without sockets or LMDB.

    The core allocates state_size bytes (zeroed) per stage and calls init with
    the live policy; on a policy reload the chain is rebuilt, fini then init.
    Adding a stage is one file and one line in med_chain.c's table.
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

typedef struct {
    const char *name;       //  policy key and log field
    size_t state_size;
    int  (*init)    (void *state, const bus_policy_t *policy, bus_error_t *err);
    void (*fini)    (void *state);
    med_verdict_t (*decide) (void *state, bus_envelope_t *env, bus_error_t *err);
    //  Called for every message after the chain decided, with the final
    //  verdict. Monitoring lives here: it observes, never decides.
    void (*observe) (void *state, const bus_envelope_t *env, med_verdict_t verdict);
} med_stage_t;

#endif
