/*  med_backlog.c: a recipient's mailbox is bounded, and shared fairly.

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
    //  Fair: one sender may fill only its share of a mailbox, so the others
    //  still get through (at least one message each).
    uint64_t share = (uint64_t) cap * env->policy->backlog_share / 100;
    share = share? share: 1;
    if (env->recipient_pending_sender >= share) {
        bus_fail (err, BUS_EBACKLOG, "%s has %u unacknowledged messages from %s, its share "
                  "(%u%% of %u; policy: bus.backlog_share)", env->recipient->name,
                  env->recipient_pending_sender, env->sender->name, env->policy->backlog_share,
                  cap);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_backlog_stage = {
    .name = "backlog",
    .decide = s_decide,
};
