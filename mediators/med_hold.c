/*  med_hold.c: finance, deploy and comms wait for a person.

    Last deciding stage of the chain. A message of a class the policy marks
    `hold`, or one an earlier stage wants a person to see (hold_required:
    restricted content under `restricted = hold`), is held for approval: a
    deferred verdict. Three ways on:

    - First pass: a live standing grant for exactly this (sender, recipient,
      class, action) stands in for the one approval the message would wait
      for, unless the message is restricted or the grant is no longer
      allowed by the live policy (med_hold_grant_allowed), or its approver
      is quarantined now, or its approver's own message is among the
      message's causes (env->steered, found by the core: an approval given
      in advance counts no more than a vote would). Else it is held, within
      the queue's caps (EHOLDFULL beyond them).
    - Decided again (env->resume): it passes when the votes of approvers the
      live policy still names for its class, none of them quarantined now,
      meet the live quorum; else it stays held.

    The queue itself (storage, expiry, votes as they come in) is the bus's
    (bus_holds.c, bus_approval.c); the rules of who counts are here.
*/
#include "med_hold.h"
#include "med_stage.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool
med_hold_may_approve (const bus_agent_t *agent, const bus_class_t *cls)
{
    if (!(agent->roles & BUS_ROLE_APPROVER)) {
        return false;
    }
    if (cls->approver_count == 0) {
        return true;                    //  the class names none: any approver
    }
    for (size_t i = 0; i < cls->approver_count; i++) {
        if (strcmp (cls->approvers [i], agent->name) == 0) {
            return true;
        }
    }
    return false;
}

uint32_t
med_hold_quorum (const bus_class_t *cls)
{
    return cls->quorum? cls->quorum: 1;
}

bool
med_hold_quarantined (const char *const *quarantined, uint32_t n, const char *agent)
{
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp (quarantined [i], agent) == 0) {
            return true;
        }
    }
    return false;
}

uint32_t
med_hold_votes (const bus_policy_t *policy, const bus_class_t *cls, const bus_hold_t *hold,
                const char *const *quarantined, uint32_t n_quarantined,
                const char *out [BUS_HOLD_VOTES_MAX])
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < hold->n_votes && i < BUS_HOLD_VOTES_MAX; i++) {
        const bus_agent_t *voter = bus_policy_agent (policy, hold->votes [i]);
        if (!voter || strcmp (voter->name, hold->sender) == 0 || !med_hold_may_approve (voter, cls)
        ||  med_hold_quarantined (quarantined, n_quarantined, voter->name)) {
            continue;
        }
        //  A quorum is of distinct approvers, whatever the stored hold says.
        bool again = false;
        for (uint32_t j = 0; j < n && !again; j++) {
            again = strcmp (out [j], voter->name) == 0;
        }
        if (!again) {
            out [n++] = hold->votes [i];
        }
    }
    return n;
}

bus_code_t
med_hold_grant_allowed (const bus_policy_t *policy, const bus_agent_t *approver,
                        const char *sender, const char *recipient,
                        const char *class_name, char *reason, size_t size)
{
    if (!(approver->roles & BUS_ROLE_APPROVER)) {
        snprintf (reason, size, "%s is not an approver (policy: role = approver)", approver->name);
        return BUS_EPERM;
    }
    int index = bus_policy_class (policy, class_name);
    if (index < 0) {
        snprintf (reason, size, "no class '%.64s' in the policy", class_name);
        return BUS_ENOTFOUND;
    }
    const bus_class_t *cls = &policy->classes [index];
    if (!med_hold_may_approve (approver, cls)) {
        snprintf (reason, size, "%s may not approve %s messages", approver->name, cls->name);
        return BUS_EPERM;
    }
    if (strcmp (approver->name, sender) == 0) {
        snprintf (reason, size, "%s may not grant its own messages", approver->name);
        return BUS_EPERM;
    }
    if (!cls->hold) {
        snprintf (reason, size, "%s messages are not held; there is nothing to grant", cls->name);
        return BUS_EINVAL;
    }
    if (cls->quorum > 1) {
        snprintf (reason, size, "%s needs %u approvals per message; a grant is one approver's "
                  "and cannot stand in for a quorum", cls->name, cls->quorum);
        return BUS_EPERM;
    }
    const bus_agent_t *from = bus_policy_agent (policy, sender);
    const bus_agent_t *to = bus_policy_agent (policy, recipient);
    if (!from || !to) {
        snprintf (reason, size, "no agent '%.64s' in the policy", from? recipient: sender);
        return BUS_ENOTFOUND;
    }
    if (from->untrusted) {
        snprintf (reason, size, "%s is untrusted: its messages are restricted, and restricted "
                  "messages always go to a person", sender);
        return BUS_EPERM;
    }
    const bus_edge_t *edge = bus_policy_edge (policy, from, to);
    if (!edge || !(edge->classes & (UINT64_C (1) << index))) {
        snprintf (reason, size, "the policy has no edge %s -> %s carrying %s; a grant is never "
                  "wider than the policy", sender, recipient, cls->name);
        return BUS_EDENIED;
    }
    return BUS_OK;
}

//  The live grant that lets this message through, or NULL.
static const bus_grant_t *
s_grant (const bus_envelope_t *env, const bus_class_t *cls)
{
    const char *action = env->send->action? env->send->action: "";
    for (uint32_t i = 0; i < env->n_grants; i++) {
        const bus_grant_t *grant = &env->grants [i];
        if (strcmp (grant->sender, env->sender->name) != 0
        ||  strcmp (grant->recipient, env->recipient->name) != 0
        ||  strcmp (grant->intent_class, cls->name) != 0
        ||  strcasecmp (grant->action, action) != 0
        ||  grant->expires_us <= env->now_us
        ||  (grant->counted && grant->remaining == 0)) {
            continue;
        }
        if (env->steered_over
        ||  med_hold_quarantined (env->steered, env->n_steered, grant->approver)) {
            continue;               //  its approver's own message is among the causes
        }
        const bus_agent_t *approver = bus_policy_agent (env->policy, grant->approver);
        char why [300];
        if (approver && !med_hold_quarantined (env->quarantined, env->n_quarantined, approver->name)
        &&  med_hold_grant_allowed (env->policy, approver, grant->sender, grant->recipient,
                                    grant->intent_class, why, sizeof why) == BUS_OK) {
            return grant;
        }
    }
    return NULL;
}

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    const bus_policy_t *policy = env->policy;
    const bus_class_t *cls = &policy->classes [env->class_index];
    if (!cls->hold && !env->hold_required) {
        return MED_PASS;
    }
    uint32_t quorum = med_hold_quorum (cls);
    char approvers [256];
    bus_policy_join (cls->approvers, cls->approver_count, "any approver", approvers,
                     sizeof approvers);
    if (env->resume) {
        env->n_approvers = med_hold_votes (policy, cls, env->resume, env->quarantined,
                                           env->n_quarantined, env->approvers);
        if (env->n_approvers >= quorum) {
            return MED_PASS;
        }
        bus_fail (err, !env->hold_required? BUS_OK: env->restricted? BUS_ERESTRICTED: BUS_ESCOPE,
                  "held: %u of %u approval%s that count (%s)", env->n_approvers, quorum,
                  quorum == 1? "": "s", approvers);
        return MED_HOLD;
    }
    //  A standing grant stands in for one approval; restricted messages
    //  always go to a person.
    if (!env->restricted && !env->hold_required) {
        const bus_grant_t *grant = s_grant (env, cls);
        if (grant) {
            env->grant = grant;
            env->approvers [0] = grant->approver;
            env->n_approvers = 1;
            return MED_PASS;
        }
    }
    //  Bounded: an agent cannot flood its approvers.
    if (env->holds_total >= policy->hold_cap_total || env->holds_sender >= policy->hold_cap_sender) {
        bus_fail (err, BUS_EHOLDFULL, "%u messages wait for approval (%u of them %s's); "
                  "limits are %u in all and %u per sender", env->holds_total, env->holds_sender,
                  env->sender->name, policy->hold_cap_total, policy->hold_cap_sender);
        return MED_REJECT;
    }
    if (env->hold_required) {
        bus_fail (err, env->restricted? BUS_ERESTRICTED: BUS_ESCOPE,
                  "%s held for approval: needs %u approval%s (%s)",
                  env->hold_why, quorum, quorum == 1? "": "s", approvers);
    }
    else {
        bus_fail (err, BUS_OK, "held: %s needs %u approval%s (%s)", cls->name, quorum,
                  quorum == 1? "": "s", approvers);
    }
    return MED_HOLD;
}

const med_stage_t med_hold_stage = {
    .name = "hold",
    .decide = s_decide,
};
