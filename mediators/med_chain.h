/*  med_chain.h: runs the mediator stages in order over one envelope.

    The order is the table in med_chain.c: identity -> causes -> reach ->
    classify -> scope -> taint -> limits -> backlog -> quarantine -> hold. The first stage that does not PASS
    decides. The bus core knows nothing of any stage's rules; it fills the
    envelope, runs the chain, logs, and carries out the verdict.
*/
#ifndef MED_CHAIN_H
#define MED_CHAIN_H

#include "med_stage.h"

typedef struct med_chain med_chain_t;

//  Builds the chain for a policy: allocates and inits every stage's state.
int
    med_chain_open (med_chain_t **out, const bus_policy_t *policy, bus_error_t *err);

//  The same with a stage table of the caller's (NULL-terminated, at most
//  MED_CHAIN_MAX stages; it must outlive the chain): for tests.
#define MED_CHAIN_MAX 32
int
    med_chain_open_with (med_chain_t **out, const med_stage_t *const *stages,
                         const bus_policy_t *policy, bus_error_t *err);

void
    med_chain_destroy (med_chain_t **self_p);

//  Runs the stages' decide in order. On HOLD or REJECT, err has the reason
//  and *stage (if not NULL) names the stage that decided. Observers are not
//  called here: the verdict is final only once its record is committed.
med_verdict_t
    med_chain_run (med_chain_t *self, bus_envelope_t *env,
                   const char **stage, bus_error_t *err);

//  True if some stage observes: the core collects events only then.
bool
    med_chain_observed (const med_chain_t *self);

//  Hands one committed outcome to every observer.
void
    med_chain_observe (med_chain_t *self, const med_event_t *event);

//  The shipped stages, in order, for listings (`bulkhead check`). NULL-terminated.
const med_stage_t *const *
    med_chain_stages (void);

#endif
