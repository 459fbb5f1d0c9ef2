/*  med_chain.h: runs the mediator stages in order over one envelope.

    The order is the table in med_chain.c: reach -> classify -> taint ->
    limits -> hold. The first stage that does not PASS decides. The bus core
    knows nothing of any stage's rules; it only runs the chain.
*/
#ifndef MED_CHAIN_H
#define MED_CHAIN_H

#include "med_stage.h"

typedef struct med_chain med_chain_t;

//  Builds the chain for a policy: allocates and inits every stage's state.
int
    med_chain_open (med_chain_t **out, const bus_policy_t *policy, bus_error_t *err);

void
    med_chain_destroy (med_chain_t **self_p);

//  Runs the stages. On HOLD or REJECT, err has the reason and *stage (if not
//  NULL) names the stage that decided. Then every stage observes the verdict.
med_verdict_t
    med_chain_run (med_chain_t *self, bus_envelope_t *env,
                   const char **stage, bus_error_t *err);

//  The stages, in order, for listings (`bulkhead check`). NULL-terminated.
const med_stage_t *const *
    med_chain_stages (void);

#endif
