/*  med_chain.c: the stage table and the loop that runs it. */
#include "med_chain.h"

#include <stdlib.h>
#include <string.h>

extern const med_stage_t med_identity_stage;
extern const med_stage_t med_causes_stage;
extern const med_stage_t med_reach_stage;
extern const med_stage_t med_classify_stage;
extern const med_stage_t med_scope_stage;
extern const med_stage_t med_taint_stage;
extern const med_stage_t med_limits_stage;
extern const med_stage_t med_backlog_stage;
extern const med_stage_t med_quarantine_stage;
extern const med_stage_t med_hold_stage;

//  The pipeline. Adding a stage is adding its file and one line here.
static const med_stage_t *const s_stages [] = {
    &med_identity_stage,
    &med_causes_stage,
    &med_reach_stage,
    &med_classify_stage,
    &med_scope_stage,
    &med_taint_stage,
    &med_limits_stage,
    &med_backlog_stage,
    &med_quarantine_stage,
    &med_hold_stage,
    NULL
};

struct med_chain {
    const med_stage_t *const *stages;
    size_t count;
    void *state [MED_CHAIN_MAX];
    size_t ready;                       //  stages whose init succeeded
    bool observed;
};

const med_stage_t *const *
med_chain_stages (void)
{
    return s_stages;
}

int
med_chain_open (med_chain_t **out, const bus_policy_t *policy, bus_error_t *err)
{
    return med_chain_open_with (out, s_stages, policy, err);
}

int
med_chain_open_with (med_chain_t **out, const med_stage_t *const *stages,
                     const bus_policy_t *policy, bus_error_t *err)
{
    med_chain_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "mediator chain: out of memory");
    }
    self->stages = stages;
    while (stages [self->count]) {
        if (self->count == MED_CHAIN_MAX) {
            free (self);
            return bus_fail (err, BUS_EINVAL, "mediator chain: more than %d stages", MED_CHAIN_MAX);
        }
        self->count++;
    }
    for (size_t i = 0; i < self->count; i++) {
        const med_stage_t *stage = stages [i];
        //  calloc (1, 0) may return NULL; give every stage at least a byte.
        self->state [i] = calloc (1, stage->state_size? stage->state_size: 1);
        if (!self->state [i]) {
            med_chain_destroy (&self);
            return bus_fail (err, BUS_ENOMEM, "mediator %s: out of memory", stage->name);
        }
        //  fini runs for every stage whose init was called, whatever init
        //  left: a half-initialised stage cleans up in its own fini.
        self->ready = i + 1;
        if (stage->init && stage->init (self->state [i], policy, err) != 0) {
            med_chain_destroy (&self);
            return -1;
        }
        self->observed |= stage->observe != NULL;
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
    for (size_t i = 0; i < self->count; i++) {
        if (i < self->ready && self->stages [i]->fini) {
            self->stages [i]->fini (self->state [i]);
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
    for (size_t i = 0; i < self->count; i++) {
        med_verdict_t verdict = self->stages [i]->decide (self->state [i], env, err);
        if (verdict != MED_PASS) {
            if (stage_name) {
                *stage_name = self->stages [i]->name;
            }
            return verdict;
        }
    }
    return MED_PASS;
}

bool
med_chain_observed (const med_chain_t *self)
{
    return self->observed;
}

void
med_chain_observe (med_chain_t *self, const med_event_t *event)
{
    for (size_t i = 0; i < self->count; i++) {
        if (self->stages [i]->observe) {
            self->stages [i]->observe (self->state [i], event);
        }
    }
}
