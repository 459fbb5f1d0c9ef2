/*  stage.c: one shipped stage alone, for its unit test; see stage.h. */
#include "stage.h"

#include "med_chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const med_stage_t *
stage_find (const char *name)
{
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        if (strcmp ((*stage)->name, name) == 0) {
            return *stage;
        }
    }
    return NULL;
}

int
stage_setup (void **state, const char *policy_text, const char *name)
{
    stage_fixture_t *f = calloc (1, sizeof *f);
    if (!f) {
        return -1;
    }
    bus_error_t err;
    if (bus_policy_parse (&f->policy, policy_text, strlen (policy_text), "t.cfg", &err)) {
        fprintf (stderr, "policy: %s: %s\n", bus_errname (err.code), err.text);
        free (f);
        return -1;
    }
    f->stage = stage_find (name);
    if (!f->stage) {
        fprintf (stderr, "no stage named %s in the chain\n", name);
    }
    //  As the chain does it: zeroed state, then init.
    f->state = f->stage? calloc (1, f->stage->state_size? f->stage->state_size: 1): NULL;
    if (!f->state || (f->stage->init && f->stage->init (f->state, f->policy, &err))) {
        if (f->state) {
            fprintf (stderr, "%s init: %s: %s\n", name, bus_errname (err.code), err.text);
        }
        free (f->state);
        bus_policy_destroy (&f->policy);
        free (f);
        return -1;
    }
    *state = f;
    return 0;
}

int
stage_teardown (void **state)
{
    stage_fixture_t *f = *state;
    if (f->stage->fini) {
        f->stage->fini (f->state);
    }
    free (f->state);
    bus_policy_destroy (&f->policy);
    free (f);
    return 0;
}

bus_envelope_t *
stage_envelope (stage_fixture_t *f, const char *from, const char *to, const char *intent)
{
    Bulkhead__V1__Send *send = &f->send;
    bulkhead__v1__send__init (send);
    send->message_id = "m1";
    send->recipient = (char *) to;
    send->intent = (char *) intent;
    bus_envelope_t *env = &f->env;
    memset (env, 0, sizeof *env);
    env->policy = f->policy;
    env->sender = bus_policy_agent (f->policy, from);
    env->sender_name = from;
    env->recipient = bus_policy_agent (f->policy, to);
    env->send = send;
    env->now_us = STAGE_NOW_US;
    env->class_index = bus_policy_class (f->policy, intent);
    memset (&f->err, 0, sizeof f->err);
    return env;
}

med_verdict_t
stage_decide (stage_fixture_t *f)
{
    return f->stage->decide (f->state, &f->env, &f->err);
}
