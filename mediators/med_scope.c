/*  med_scope.c: least privilege per edge.

    An edge may list which actions, tools and resources it carries (glob
    allowlists; "none" admits a message with no value there). A message
    outside any list of its edge is denied (ESCOPE), naming the rule and its
    line; or, where the edge says `outside = hold`, sent on to the hold
    stage with hold_required set, so an approver of its class decides, the
    message marked "outside scope" (no standing grant stands in for that).
    An edge with no lists is not scoped. Runs after classify (the edge is
    known to carry the class) and before taint.
*/
#include "med_stage.h"

#include <stdio.h>
#include <string.h>

//  True if value is in the list (or the list is absent).
static bool
s_in (char **list, size_t count, const char *value, bool bytes)
{
    if (count == 0) {
        return true;
    }
    for (size_t i = 0; i < count; i++) {
        if (!value || !*value) {
            if (strcmp (list [i], "none") == 0) {
                return true;
            }
            continue;
        }
        if (bytes? bus_glob_match_bytes (list [i], value): bus_glob_match (list [i], value)) {
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
    const Bulkhead__V1__Send *send = env->send;
    const char *what = NULL;
    const char *value = NULL;
    char **list = NULL;
    size_t count = 0;
    if (!s_in (edge->actions, edge->action_count, send->action, false)) {
        what = "action", value = send->action, list = edge->actions, count = edge->action_count;
    }
    else
    if (!s_in (edge->tools, edge->tool_count, send->tool, false)) {
        what = "tool", value = send->tool, list = edge->tools, count = edge->tool_count;
    }
    else
    if (!s_in (edge->resources, edge->resource_count, send->resource, true)) {
        what = "resource", value = send->resource, list = edge->resources,
        count = edge->resource_count;
    }
    if (!what) {
        return MED_PASS;
    }
    char allowed [200];
    bus_policy_join (list, count, "", allowed, sizeof allowed);
    char rule [512];
    snprintf (rule, sizeof rule, "%s %.64s is outside edge %s -> %s (line %d: %ss = %.100s)",
              what, value && *value? value: "(none)", env->sender->name, env->recipient->name,
              edge->line, what, allowed);
    if (edge->outside_hold) {
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
