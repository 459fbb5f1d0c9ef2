/*  med_causes.c: a Send may name as causes only what its sender saw.

    A cause is a log sequence the sender says led to this message. It counts
    only if that record was sent by this sender or delivered to it; any other
    (a record it never saw, or no message at all) denies the Send (ECAUSE,
    naming the first such sequence). So an agent learns nothing about
    records it never saw (not even whether one is restricted), and cannot
    pin an approver's message as the cause of its own to block that
    approver. The core looked the causes up in the compact cause index.
*/
#include "med_stage.h"

static med_verdict_t
s_decide (void *state, bus_envelope_t *env, bus_error_t *err)
{
    (void) state;
    if (env->foreign_cause) {
        bus_fail (err, BUS_ECAUSE, "cause seq %llu is not a message %s sent or was delivered; "
                  "name only what led to this message", (unsigned long long) env->foreign_cause,
                  env->sender->name);
        return MED_REJECT;
    }
    return MED_PASS;
}

const med_stage_t med_causes_stage = {
    .name = "causes",
    .decide = s_decide,
};
