/*  med_hold.h: the approval rules, shared by the hold stage and the bus's
    approval and grant controls, so a vote, a grant and a release are judged
    by the same words against the live policy.
*/
#ifndef MED_HOLD_H
#define MED_HOLD_H

#include "bus_envelope.h"
#include "bus_error.h"
#include "bus_policy.h"

#include <stdbool.h>
#include <stddef.h>

//  True if agent may decide on messages of class cls: it has the approver
//  role, and the class names it (or names no approvers at all).
bool
    med_hold_may_approve (const bus_agent_t *agent, const bus_class_t *cls);

//  True if agent is one of the n names in quarantined.
bool
    med_hold_quarantined (const char *const *quarantined, uint32_t n, const char *agent);

//  The votes of hold that count under the live policy: approvers it still
//  names for cls, never the sender, none of the n quarantined now (the
//  kill switch takes a suspect approver's votes away; they count again
//  once it is released). Fills out (borrowing hold's strings) and returns
//  how many.
uint32_t
    med_hold_votes (const bus_policy_t *policy, const bus_class_t *cls, const bus_hold_t *hold,
                    const char *const *quarantined, uint32_t n,
                    const char *out [BUS_HOLD_VOTES_MAX]);

//  The quorum of cls, at least 1.
uint32_t
    med_hold_quorum (const bus_class_t *cls);

//  Whether approver may let sender -> recipient messages of class_name
//  through with a standing grant. Checked when a grant is made and at every
//  use against the live policy, so a reload can only narrow what stands.
//  BUS_OK, or a code with the sentence in reason.
bus_code_t
    med_hold_grant_allowed (const bus_policy_t *policy, const bus_agent_t *approver,
                            const char *sender, const char *recipient,
                            const char *class_name, char *reason, size_t size);

#endif
