/*  med_reach.c: the reachability allowlist, first stage of the chain.

    An edge sender -> recipient exists only if the policy names it, and it
    carries only the intents it lists (default deny). The sender's own intent
    label must be one the edge allows; the class the bus decides later must
    be allowed too (that is the classify stage's check).
*/
#include "med_stage.h"

#include <stdio.h>
#include <string.h>

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    const Bulkhead__V1__Send *send = env->send;
    const bus_policy_t *policy = env->policy;
    if (!env->recipient) {
        bus_fail (err, BUS_EDENIED, "no agent '%s' in the policy", send->recipient);
        return MED_REJECT;
    }
    const bus_edge_t *edge = bus_policy_edge (policy, env->sender, env->recipient);
    if (!edge) {
        bus_fail (err, BUS_EDENIED, "no edge %s -> %s in the policy",
                  env->sender->name, env->recipient->name);
        return MED_REJECT;
    }
    int intent = bus_policy_class (policy, send->intent);
    if (intent < 0 || !(edge->classes & (UINT64_C (1) << intent))) {
        //  Name what the edge does allow: the sender can fix its call, the
        //  operator can fix the policy.
        char allowed [256] = "";
        size_t used = 0;
        for (size_t i = 0; i < policy->class_count; i++) {
            if (edge->classes & (UINT64_C (1) << i)) {
                int n = snprintf (allowed + used, sizeof allowed - used, "%s%s",
                                  used? ", ": "", policy->classes [i].name);
                if (n < 0 || (size_t) n >= sizeof allowed - used) {
                    break;
                }
                used += (size_t) n;
            }
        }
        bus_fail (err, BUS_EINTENT, "edge %s -> %s does not allow intent '%s' (allowed: %s)",
                  env->sender->name, env->recipient->name, send->intent, allowed);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_reach_stage = {
    .name = "reach",
    .state_size = 0,
    .decide = s_decide,
};
