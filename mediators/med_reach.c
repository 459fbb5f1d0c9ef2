/*  med_reach.c: the reachability allowlist, first stage of the chain.

    An edge sender -> recipient exists only if the policy names it (default
    deny). Which classes the edge carries is checked by the classify stage,
    against the class the bus decides, not the label the sender chose.
*/
#include "med_stage.h"

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    if (!env->recipient) {
        bus_fail (err, BUS_EDENIED, "no agent '%s' in the policy", env->send->recipient);
        return MED_REJECT;
    }
    if (!bus_policy_edge (env->policy, env->sender, env->recipient)) {
        bus_fail (err, BUS_EDENIED, "no edge %s -> %s in the policy",
                  env->sender->name, env->recipient->name);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_reach_stage = {
    .name = "reach",
    .decide = s_decide,
};
