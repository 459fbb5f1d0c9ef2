/*  med_chain.c: the stage table and the loop that runs it. */
#include "med_chain.h"

#include <stdlib.h>
#include <string.h>

extern const med_stage_t med_reach_stage;
extern const med_stage_t med_classify_stage;
extern const med_stage_t med_taint_stage;
extern const med_stage_t med_limits_stage;
extern const med_stage_t med_hold_stage;

//  The pipeline. Adding a stage is adding its file and one line here.
static const med_stage_t *const s_stages [] = {
    &med_reach_stage,
    &med_classify_stage,
    &med_taint_stage,
    &med_limits_stage,
    &med_hold_stage,
    NULL
};

#define STAGE_COUNT (sizeof s_stages / sizeof s_stages [0] - 1)

struct med_chain {
    void *state [STAGE_COUNT];
    size_t ready;                       //  stages whose init succeeded
};

const med_stage_t *const *
med_chain_stages (void)
{
    return s_stages;
}

int
med_chain_open (med_chain_t **out, const bus_policy_t *policy, bus_error_t *err)
{
    med_chain_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "mediator chain: out of memory");
    }
    for (size_t i = 0; i < STAGE_COUNT; i++) {
        const med_stage_t *stage = s_stages [i];
        //  calloc (1, 0) may return NULL; give every stage at least a byte.
        self->state [i] = calloc (1, stage->state_size? stage->state_size: 1);
        if (!self->state [i]) {
            med_chain_destroy (&self);
            return bus_fail (err, BUS_ENOMEM, "mediator %s: out of memory", stage->name);
        }
        if (stage->init && stage->init (self->state [i], policy, err) != 0) {
            free (self->state [i]);
            self->state [i] = NULL;
            med_chain_destroy (&self);
            return -1;
        }
        self->ready = i + 1;
    }
    *out = self;
    return 0;
}

void
med_chain_destroy (med_chain_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    med_chain_t *self = *self_p;
    for (size_t i = 0; i < STAGE_COUNT; i++) {
        if (i < self->ready && s_stages [i]->fini) {
            s_stages [i]->fini (self->state [i]);
        }
        free (self->state [i]);
    }
    free (self);
    *self_p = NULL;
}

med_verdict_t
med_chain_run (med_chain_t *self, bus_envelope_t *env,
               const char **stage_name, bus_error_t *err)
{
    med_verdict_t verdict = MED_PASS;
    size_t i;
    for (i = 0; i < STAGE_COUNT && verdict == MED_PASS; i++) {
        verdict = s_stages [i]->decide (self->state [i], env, err);
        if (verdict != MED_PASS && stage_name) {
            *stage_name = s_stages [i]->name;
        }
    }
    for (i = 0; i < STAGE_COUNT; i++) {
        if (s_stages [i]->observe) {
            s_stages [i]->observe (self->state [i], env, verdict);
        }
    }
    return verdict;
}
