/*  med_identity.c: identity comes from the key, never from the message.

    First stage of the chain. The sender is the agent whose CURVE key
    authenticated the connection, looked up in the live policy by the core.
    A Send that names another sender is a spoof (ESPOOF). A held message
    decided again after its sender left the policy has no sender: it goes
    nowhere (EUNKNOWN).
*/
#include "med_stage.h"

#include <string.h>

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    if (!env->sender) {
        bus_fail (err, BUS_EUNKNOWN, "sender %.64s is no longer in the policy",
                  env->sender_name? env->sender_name: "(unknown)");
        return MED_REJECT;
    }
    const char *claimed = env->send->sender;
    if (claimed && strcmp (claimed, env->sender->name) != 0) {
        bus_fail (err, BUS_ESPOOF, "message claims sender '%.64s' but the key is '%s''s",
                  claimed, env->sender->name);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_identity_stage = {
    .name = "identity",
    .decide = s_decide,
};
