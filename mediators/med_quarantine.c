/*  med_quarantine.c: the kill switch. A quarantined agent's sends wait.

    An operator (`bulkhead quarantine AGENT --reason ...`) or, where the
    policy says so for an alert kind (monitor quarantine_on), the bus itself
    quarantines an agent; the core puts who and why in env->quarantine.
    Every Send of it that the earlier stages let through is then held
    (EQUARANTINE) in the approval queue: nothing is lost, nothing moves,
    and a person sees it. No approval releases it while the quarantine
    lasts: this stage holds it again each time it is decided. When an
    operator releases the agent, every hold is decided again: a message of
    a class that is not held goes on, one of a held class still needs its
    class's approvers (the hold stage after this one counts their votes,
    including those given while the agent was quarantined).

    It runs after the stages that deny (a quarantined agent gains nothing:
    what it may not send is still denied, and logged so) and before hold.
    Bounded like the hold stage: a quarantined agent flooding its queue
    gets EHOLDFULL past the policy's hold caps.
*/
#include "med_stage.h"

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    if (!env->quarantine) {
        return MED_PASS;
    }
    const bus_policy_t *policy = env->policy;
    if (!env->resume
    &&  (env->holds_total >= policy->hold_cap_total || env->holds_sender >= policy->hold_cap_sender)) {
        bus_fail (err, BUS_EHOLDFULL, "%s is quarantined (%s) and %u of its messages wait "
                  "already (limits %u in all, %u per sender)", env->sender_name, env->quarantine,
                  env->holds_sender, policy->hold_cap_total, policy->hold_cap_sender);
        return MED_REJECT;
    }
    bus_fail (err, BUS_EQUARANTINE, "%s is quarantined (%s): held until an operator releases "
              "it (bulkhead release %s)", env->sender_name, env->quarantine, env->sender_name);
    return MED_HOLD;
}

const med_stage_t med_quarantine_stage = {
    .name = "quarantine",
    .decide = s_decide,
};
