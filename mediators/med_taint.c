/*  med_taint.c: restricted is sticky, and restricted never triggers a
    privileged action.

    A message is restricted when its sender is an untrusted ingester, when it
    declares untrusted provenance, when any message it names as a cause is
    restricted, or when its sender is tainted (it was delivered restricted
    content) and the sender's taint mode is sticky, the default. In causal
    mode, for agents trusted to report their causes honestly, only the cause
    chain counts. The core looked the causes and the taint up in the log
    before the chain ran; this stage only decides.

    A held message decided again keeps the mark it was held with: a taint
    cleared in the meantime does not launder it.

    Effects, in this order: a restricted message to an agent with
    accepts_restricted = false is denied (EREFUSED), whatever its class; a
    restricted message of a privileged class is denied (ERESTRICTED), or,
    when the class says `restricted = hold`, sent on to the hold stage with
    hold_required set, so a person sees it marked restricted (and no
    standing grant stands in). Only the bus sets the mark; nothing an agent
    sends can clear it.
*/
#include "med_stage.h"

#include <stdio.h>
#include <string.h>

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    const Bulkhead__V1__Send *send = env->send;
    const bus_agent_t *sender = env->sender;
    char *why = env->restricted_why;
    size_t size = sizeof env->restricted_why;

    if (env->resume && env->resume->restricted) {
        env->restricted = true;
        snprintf (why, size, "restricted when held at seq %llu",
                  (unsigned long long) env->resume->seq);
    }
    else
    if (sender->untrusted) {
        env->restricted = true;
        snprintf (why, size, "sender %s is untrusted", sender->name);
    }
    else
    if (send->has_provenance && send->provenance == BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED) {
        env->restricted = true;
        snprintf (why, size, "untrusted provenance: %.100s", send->source? send->source: "unnamed source");
    }
    else
    if (env->cause_restricted) {
        env->restricted = true;
        snprintf (why, size, "cause seq %llu is restricted", (unsigned long long) env->cause_seq);
    }
    else
    if (env->sender_tainted && !sender->causal) {
        env->restricted = true;
        snprintf (why, size, "sender %s tainted since seq %llu (sticky)", sender->name,
                  (unsigned long long) env->taint_seq);
    }
    else
    if (env->sender_tainted) {
        //  Not restricted, but the log says why not.
        snprintf (why, size, "not restricted: %s tainted since seq %llu, causal mode",
                  sender->name, (unsigned long long) env->taint_seq);
    }
    if (!env->restricted) {
        return MED_PASS;
    }
    if (!env->recipient->accepts_restricted) {
        bus_fail (err, BUS_EREFUSED, "%s does not accept restricted content (%s)",
                  env->recipient->name, why);
        return MED_REJECT;
    }
    const bus_class_t *cls = &env->policy->classes [env->class_index];
    if (cls->privileged) {
        if (!cls->restricted_hold) {
            bus_fail (err, BUS_ERESTRICTED, "restricted content may not trigger %s (%s)",
                      cls->name, why);
            return MED_REJECT;
        }
        env->hold_required = true;
        snprintf (env->hold_why, sizeof env->hold_why, "restricted %.64s message (%.160s)",
                  cls->name, why);
    }
    return MED_PASS;
}

const med_stage_t med_taint_stage = {
    .name = "taint",
    .decide = s_decide,
};
