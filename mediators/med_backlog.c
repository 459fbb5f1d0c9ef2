/*  med_backlog.c: a recipient's mailbox is bounded.

    A recipient holds at most max_backlog unacknowledged messages (policy,
    per agent; default bus.max_backlog). One more is denied (EBACKLOG) and
    stays with its sender, who may retry it later (the message id is not
    used up). It runs before the hold stage, so no approver is asked about a
    message that could not be delivered, and again when a hold is decided
    after an approval, so a release meets the cap as a message sent now
    would: an approved hold refused for room keeps its votes and is decided
    again on the bus's timer until there is room or its time ends.
*/
#include "med_stage.h"

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    uint32_t cap = env->recipient->max_backlog;
    if (env->recipient_pending >= cap) {
        bus_fail (err, BUS_EBACKLOG, "%s has %u unacknowledged messages (limit %u)",
                  env->recipient->name, env->recipient_pending, cap);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_backlog_stage = {
    .name = "backlog",
    .decide = s_decide,
};
