/*  med_hold.c: finance, deploy and comms wait for a person.

    Last stage of the chain: a message of a class the policy marks `hold`
    is held for approval (a deferred verdict). The queue itself, its caps,
    votes, expiry and release, is the bus core's (bus_holds.c); this stage
    only says that the class is held and for whom.
*/
#include "med_stage.h"

#include <stdio.h>
#include <string.h>

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    const bus_class_t *cls = &env->policy->classes [env->class_index];
    if (!cls->hold) {
        return MED_PASS;
    }
    char approvers [256] = "any approver";
    size_t used = 0;
    for (size_t i = 0; i < cls->approver_count && used < sizeof approvers; i++) {
        int n = snprintf (approvers + used, sizeof approvers - used, "%s%s", i? ", ": "",
                          cls->approvers [i]);
        if (n < 0) {
            break;
        }
        used += (size_t) n;
    }
    bus_fail (err, BUS_OK, "held: %s needs %u approval%s (%s)", cls->name, cls->quorum,
              cls->quorum == 1? "": "s", approvers);
    return MED_HOLD;
}

const med_stage_t med_hold_stage = {
    .name = "hold",
    .decide = s_decide,
};
