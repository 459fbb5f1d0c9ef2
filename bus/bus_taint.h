/*  bus_taint.h: the taint ledger.

    An agent is tainted from the moment restricted content is accepted for
    it (delivered or queued: queued counts as received). Its own messages
    are then restricted too (sticky mode, the default), so a relay cannot
    launder what it read. The ledger lives in the store's taint database as
    "SEQ TIME_US" per agent, written in the same batch as the record that
    caused it; the session keeps a copy, and every change goes through here.
    Only an operator clears it, never the agent itself (bus_control).
*/
#ifndef BUS_TAINT_H
#define BUS_TAINT_H

#include "bus_session.h"
#include "record.pb-c.h"

//  Reads the session's taint from the store.
void
    bus_taint_load (bus_core_t *core, bus_session_t *session);

//  rec was accepted for session: taint it if rec is restricted and it is clean.
void
    bus_taint_accept (bus_core_t *core, bus_session_t *session,
                      const Bulkhead__V1__Record *rec);

//  Clears the session's taint in the batch. 0, or -1 with err.
int
    bus_taint_clear (bus_core_t *core, bus_session_t *session, bus_error_t *err);

#endif
