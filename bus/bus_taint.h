/*  bus_taint.h: the taint ledger.

    An agent is tainted from the moment restricted content is accepted for
    it (delivered or queued: queued counts as received), and again whenever
    restricted content is pushed to it (delivered or replayed), so a clear
    never outlives what the agent reads afterwards. Its own messages
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

//  Restricted content (seq, of time_us) was pushed to session: taint it if
//  it is clean.
void
    bus_taint_mark (bus_core_t *core, bus_session_t *session, uint64_t seq, uint64_t time_us);

//  Restricted messages in session's mailbox it has not acknowledged (read
//  from the log; bounded by its mailbox cap), and the first of them.
uint32_t
    bus_taint_unread (bus_core_t *core, bus_session_t *session, uint64_t *first);

//  Declassification: an operator lowers the restricted mark of one message.
//  The record stays as it was (the log is never rewritten); from now on
//  the message no longer restricts what names it as a cause, its later
//  deliveries (replays) are not marked restricted, and an agent whose taint
//  it caused, and that has no other restricted message waiting, is clean.
//  Written in the batch; 0, or -1 with err.
int
    bus_taint_declassify (bus_core_t *core, uint64_t seq, bus_error_t *err);

//  True if seq was declassified.
bool
    bus_taint_declassified (bus_core_t *core, uint64_t seq);

//  Clears the session's taint in the batch. A clear covers only what the
//  agent acknowledged: refused (EPERM, with the count) while restricted
//  messages wait for it. 0, or -1 with err.
int
    bus_taint_clear (bus_core_t *core, bus_session_t *session, bus_error_t *err);

#endif
