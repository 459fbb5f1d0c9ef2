/*  med_limits.c: an agent sends at most `rate` messages per second, and
    causes at most its log budget of log bytes per hour (ELOGBUDGET).

    A token bucket per sender, one second deep: a burst of `rate` at once,
    then `rate` per second. Denied messages are logged like any other
    (ERATE), so a runaway agent shows in the log and costs its recipients
    nothing. The buckets belong to the chain: a policy reload starts them
    full again.
*/
#include "med_stage.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    double tokens;
    uint64_t last_us;
} bucket_t;

typedef struct {
    const bus_policy_t *policy;
    bucket_t *buckets;                  //  one per agent, by policy index
} limits_t;

static int
s_init (void *state, const bus_policy_t *policy, bus_error_t *err)
{
    limits_t *self = state;
    self->policy = policy;
    self->buckets = calloc (policy->agent_count + 1, sizeof *self->buckets);
    if (!self->buckets) {
        return bus_fail (err, BUS_ENOMEM, "limits: out of memory");
    }
    for (size_t i = 0; i < policy->agent_count; i++) {
        self->buckets [i].tokens = policy->agents [i].rate;
    }
    return 0;
}

static void
s_fini (void *state)
{
    limits_t *self = state;
    free (self->buckets);
}

//  What a record costs beyond its payload, to judge a Send before it is
//  written (the exact cost is charged after the append).
#define S_RECORD_OVERHEAD   512

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    limits_t *self = state;
    //  Nobody can fill the log: each agent may cause so many bytes of it
    //  per hour. A held message already paid when it was held.
    if (env->log_checked && !env->resume
    &&  (double) (env->send->payload.len + S_RECORD_OVERHEAD) > env->log_left) {
        bus_fail (err, BUS_ELOGBUDGET, "%s is over its share of the log (%.0f bytes left this "
                  "hour; policy: log_budget)", env->sender->name,
                  env->log_left > 0? env->log_left: 0);
        return MED_REJECT;
    }
    uint32_t rate = env->sender->rate;
    //  A held message paid for its send when it was held: deciding it
    //  again after an approval must not charge its sender twice.
    if (rate == 0 || env->resume) {
        return MED_PASS;
    }
    //  The buckets are indexed by the policy the chain was built with; a
    //  reload always rebuilds the chain, so the two are the same.
    if (env->policy != self->policy) {
        bus_fail (err, BUS_EINVAL, "limits: envelope of another policy than the chain's");
        return MED_REJECT;
    }
    bucket_t *bucket = &self->buckets [bus_policy_agent_index (self->policy, env->sender)];
    if (bucket->last_us && env->now_us > bucket->last_us) {
        bucket->tokens += (double) (env->now_us - bucket->last_us) * rate / 1e6;
        if (bucket->tokens > rate) {
            bucket->tokens = rate;
        }
    }
    bucket->last_us = env->now_us;
    if (bucket->tokens < 1.0) {
        bus_fail (err, BUS_ERATE, "%s is over its limit of %u messages per second", env->sender->name,
                  rate);
        return MED_REJECT;
    }
    bucket->tokens -= 1.0;
    return MED_PASS;
}

const med_stage_t med_limits_stage = {
    .name = "limits",
    .state_size = sizeof (limits_t),
    .init = s_init,
    .fini = s_fini,
    .decide = s_decide,
};
