/*  bus_record.c: records and DELIVERs, see bus_record.h. */
#include "bus_record.h"
#include "bus_wire.h"

void
bus_record_init (bus_core_t *core, record_t *rec, Bulkhead__V1__RecordKind kind)
{
    bulkhead__v1__record__init (rec);
    rec->kind = kind;
    rec->time_us = bus_now_us ();
    rec->policy_hash = core->policy? core->policy->hash: NULL;
}

uint8_t *
bus_record_deliver (const record_t *rec, size_t *size)
{
    Bulkhead__V1__Deliver deliver = BULKHEAD__V1__DELIVER__INIT;
    deliver.seq = rec->seq;
    deliver.sender = rec->sender;
    deliver.message_id = rec->message_id;
    deliver.intent = rec->intent;
    deliver.intent_class = rec->intent_class;
    deliver.action = rec->action;
    deliver.resource = rec->resource;
    deliver.content_type = rec->content_type;
    deliver.has_payload = rec->has_payload;
    deliver.payload = rec->payload;
    deliver.has_restricted = true;
    deliver.restricted = rec->has_restricted && rec->restricted;
    deliver.n_causes = rec->n_causes;
    deliver.causes = rec->causes;
    deliver.justification = rec->justification;
    deliver.has_time_us = true;
    deliver.time_us = rec->time_us;
    deliver.tool = rec->tool;
    //  A released message names who said yes, so the recipient can see it.
    Bulkhead__V1__Approval approvals [BUS_HOLD_VOTES_MAX];
    Bulkhead__V1__Approval *approval_ptrs [BUS_HOLD_VOTES_MAX];
    for (size_t i = 0; i < rec->n_approvers && i < BUS_HOLD_VOTES_MAX; i++) {
        bulkhead__v1__approval__init (&approvals [i]);
        approvals [i].approver = rec->approvers [i];
        approvals [i].time_us = rec->time_us;
        approval_ptrs [i] = &approvals [i];
        deliver.n_approvals = i + 1;
    }
    deliver.approvals = approval_ptrs;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_DELIVER;
    frame.deliver = &deliver;
    return bus_wire_pack (&frame, size);
}
