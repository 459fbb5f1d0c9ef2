/*  med_scope.c: least privilege per edge.

    An edge may list which actions, tools and resources it carries (glob
    allowlists; "none" admits a message with no value there). A message
    outside any list of its edge is denied (ESCOPE), naming the rule and its
    line; or, where the edge says `outside = hold`, sent on to the hold
    stage with hold_required set, so an approver of its class decides, the
    message marked "outside scope" (no standing grant stands in for that).
    The lists are those of the message's class on the edge (a block named
    by the class replaces the edge's own lists it gives: bus_policy_scope).
    An edge with no lists is not scoped. Runs after classify (the edge is
    known to carry the class) and before taint.
*/
#include "med_stage.h"

#include <stdio.h>
#include <string.h>

//  True if value is in the list (or the list is absent).
static bool
s_in (const bus_patterns_t *list, const char *value, bool bytes)
{
    if (list->count == 0) {
        return true;
    }
    bool empty = !value || !*value;
    for (size_t i = 0; i < list->count; i++) {
        const char *pattern = list->patterns [i];
        //  "none" is the absence of a value, not a value: a message that
        //  names the action "none" (or "NONE") is not one with no action.
        if (strcmp (pattern, "none") == 0) {
            if (empty) {
                return true;
            }
            continue;
        }
        if (empty) {
            continue;
        }
        if (bytes? bus_glob_match_bytes (pattern, value): bus_glob_match (pattern, value)) {
            return true;
        }
    }
    return false;
}

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    const bus_edge_t *edge = bus_policy_edge (env->policy, env->sender, env->recipient);
    bus_scope_t scope;
    bus_policy_scope (edge, env->class_index, &scope);
    const Bulkhead__V1__Send *send = env->send;
    const char *what = NULL;
    const char *value = NULL;
    const bus_patterns_t *list = NULL;
    if (!s_in (&scope.actions, send->action, false)) {
        what = "action", value = send->action, list = &scope.actions;
    }
    else
    if (!s_in (&scope.tools, send->tool, false)) {
        what = "tool", value = send->tool, list = &scope.tools;
    }
    else
    if (!s_in (&scope.resources, send->resource, true)) {
        what = "resource", value = send->resource, list = &scope.resources;
    }
    if (!what) {
        return MED_PASS;
    }
    char allowed [200];
    bus_policy_join (list->patterns, list->count, "", allowed, sizeof allowed);
    char rule [512];
    snprintf (rule, sizeof rule, "%s %.64s is outside edge %s -> %s for %s (line %d: %ss = "
              "%.100s)", what, value && *value? value: "(none)", env->sender->name,
              env->recipient->name,
              env->class_index >= 0? env->policy->classes [env->class_index].name: "?", list->line,
              what, allowed);
    if (scope.outside == BUS_OUTSIDE_HOLD) {
        env->hold_required = true;
        snprintf (env->hold_why, sizeof env->hold_why, "outside scope: %.240s", rule);
        return MED_PASS;
    }
    bus_fail (err, BUS_ESCOPE, "%s", rule);
    return MED_REJECT;
}

const med_stage_t med_scope_stage = {
    .name = "scope",
    .decide = s_decide,
};
