/*  bus_control.h: operator and approver commands, as a table.

    One row per operation: the role it needs and its handler. The table
    checks the role before the handler runs; every command, done or
    refused, is one CONTROL record and one CONTROL_REPLY.

        op              role                  handler
        RELOAD          operator              the core's reload
        LIST_PENDING    approver              bus_approval
        APPROVE         approver              bus_approval
        DENY            approver              bus_approval
        GET_HOLD        approver              bus_approval (one hold's whole record)
        GRANT           approver or operator  bus_grants (operators revoke)
        LIST_TAINT      operator              here
        CLEAR_TAINT     operator              here
        DECLASSIFY      operator              here (bus_taint keeps the mark)
        PURGE           operator              here (retention: old payloads)
        LIST_ALERTS     operator or monitor   bus_monitor
        ACK_ALERT       operator or monitor   bus_monitor
        QUARANTINE      operator              bus_monitor (audited: this record)
        RELEASE         operator              bus_monitor (holds decided again)
        LIST_QUARANTINE operator              bus_monitor
        SNAPSHOT        operator or monitor   bus_monitor (what `bulkhead top` shows)
*/
#ifndef BUS_CONTROL_H
#define BUS_CONTROL_H

#include "bus_core.h"

//  The core's reload, called for RELOAD: 0, or -1 with err (old policy kept).
typedef int (bus_reload_fn) (bus_core_t *core, const char *who, bus_error_t *err);

//  Handles one CONTROL frame from peer.
void
    bus_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                 bus_reload_fn *reload);

#endif
