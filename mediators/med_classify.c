/*  med_classify.c: the bus decides what a message is.

    A message's class comes from the policy, not from its sender: the
    recipient's declared class (everything sent to `payments` is finance),
    then the classes whose action patterns match Send.action (`email.*` is
    comms). The sender's own label can raise the class, never lower it: a
    payment labelled "message" is still finance.

    Ranking: a privileged class outranks an ordinary one. Between equals the
    first found wins, in this order: recipient, action rule, sender label.
    So the sender's label decides only when the policy says nothing, or when
    it asks for more than the policy would give.

    Then the edge must carry the decided class. The reason names the class
    and the rule, so whoever reads the denial can fix the call or the policy.
*/
#include "med_stage.h"

#include <stdio.h>
#include <string.h>

static int
s_rank (const bus_policy_t *policy, int class_index)
{
    return class_index < 0? -1: policy->classes [class_index].privileged? 1: 0;
}

//  The highest-ranked class whose action patterns match action, or -1.
static int
s_action_class (const bus_policy_t *policy, const char *action, const char **pattern)
{
    int best = -1;
    for (size_t c = 0; c < policy->class_count; c++) {
        const bus_class_t *cls = &policy->classes [c];
        for (size_t i = 0; i < cls->action_count; i++) {
            if (bus_glob_match (cls->actions [i], action)
            &&  s_rank (policy, (int) c) > s_rank (policy, best)) {
                best = (int) c;
                *pattern = cls->actions [i];
            }
        }
    }
    return best;
}

static void
s_allowed (const bus_policy_t *policy, uint64_t classes, char *out, size_t size)
{
    size_t used = 0;
    out [0] = 0;
    for (size_t i = 0; i < policy->class_count && used < size; i++) {
        if (classes & (UINT64_C (1) << i)) {
            int n = snprintf (out + used, size - used, "%s%s", used? ", ": "",
                              policy->classes [i].name);
            if (n < 0) {
                break;
            }
            used += (size_t) n;
        }
    }
}

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    const bus_policy_t *policy = env->policy;
    const Bulkhead__V1__Send *send = env->send;
    int label = bus_policy_class (policy, send->intent);
    if (label < 0) {
        char known [512];
        s_allowed (policy, ~UINT64_C (0), known, sizeof known);
        bus_fail (err, BUS_EINTENT, "unknown intent '%s' (known: %s)", send->intent, known);
        return MED_REJECT;
    }
    int decided = -1;
    if (env->recipient->class_index >= 0) {
        decided = env->recipient->class_index;
        snprintf (env->class_rule, sizeof env->class_rule, "recipient %.64s is %.64s",
                  env->recipient->name, policy->classes [decided].name);
    }
    const char *pattern = NULL;
    int by_action = send->action? s_action_class (policy, send->action, &pattern): -1;
    if (by_action >= 0 && s_rank (policy, by_action) > s_rank (policy, decided)) {
        decided = by_action;
        snprintf (env->class_rule, sizeof env->class_rule, "action %.48s matches %.64s (%.32s)",
                  send->action, policy->classes [decided].name, pattern);
    }
    if (s_rank (policy, label) > s_rank (policy, decided)) {
        decided = label;
        //  The commonest rule, per message: a copy, not snprintf.
        static const char prefix [] = "sender's intent ";
        const char *name = policy->classes [decided].name;
        size_t len = strnlen (name, 64);
        _Static_assert (sizeof env->class_rule >= sizeof prefix + 64, "class_rule too small");
        memcpy (env->class_rule, prefix, sizeof prefix - 1);
        memcpy (env->class_rule + sizeof prefix - 1, name, len);
        env->class_rule [sizeof prefix - 1 + len] = 0;
    }
    env->class_index = decided;

    const bus_edge_t *edge = bus_policy_edge (policy, env->sender, env->recipient);
    if (!(edge->classes & (UINT64_C (1) << decided))) {
        char allowed [256];
        s_allowed (policy, edge->classes, allowed, sizeof allowed);
        //  EINTENT when the sender asked for it, ECLASS when the bus decided
        //  it against the sender's label.
        bus_fail (err, decided == label? BUS_EINTENT: BUS_ECLASS,
                  "edge %s -> %s does not allow %s (decided by %s; allowed: %s)",
                  env->sender->name, env->recipient->name, policy->classes [decided].name,
                  env->class_rule, allowed);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_classify_stage = {
    .name = "classify",
    .decide = s_decide,
};
