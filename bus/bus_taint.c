/*  bus_taint.c: the taint ledger, see bus_taint.h. */
#include "bus_core.h"
#include "bus_taint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
bus_taint_load (bus_core_t *core, bus_session_t *session)
{
    void *value = NULL;
    size_t size = 0;
    bus_error_t err;
    session->taint_seq = 0;
    session->taint_us = 0;
    if (bus_store_get (core->store, BUS_DB_TAINT, session->agent, strlen (session->agent),
                       &value, &size, &err) == 0) {
        char text [64];
        snprintf (text, sizeof text, "%.*s", (int) (size < 63? size: 63), (char *) value);
        unsigned long long seq = 0, when = 0;
        if (sscanf (text, "%llu %llu", &seq, &when) == 2) {
            session->taint_seq = seq;
            session->taint_us = when;
        }
        free (value);
    }
}

void
bus_taint_accept (bus_core_t *core, bus_session_t *session, const record_t *rec)
{
    if (rec->has_restricted && rec->restricted) {
        bus_taint_mark (core, session, rec->seq, rec->time_us);
    }
}

void
bus_taint_mark (bus_core_t *core, bus_session_t *session, uint64_t seq, uint64_t time_us)
{
    if (session->taint_seq != 0 || core->failed) {
        return;
    }
    char text [64];
    int len = snprintf (text, sizeof text, "%llu %llu", (unsigned long long) seq,
                        (unsigned long long) time_us);
    bus_error_t err;
    if (bus_store_put (core->store, BUS_DB_TAINT, session->agent, strlen (session->agent),
                       text, (size_t) len, &err) != 0) {
        bus_core_fail (core, &err);
        return;
    }
    session->taint_seq = seq;
    session->taint_us = time_us;
    bus_core_say (core, "BUS-TAINT", "agent=%s seq=%llu", session->agent, (unsigned long long) seq);
}

uint32_t
bus_taint_unread (bus_core_t *core, bus_session_t *session, uint64_t *first)
{
    uint32_t count = 0;
    uint64_t seq = session->acked;
    bus_error_t err;
    *first = 0;
    while (bus_store_mailbox_next (core->store, session->agent, seq, &seq, &err) == 0) {
        record_t *rec = NULL;
        if (bus_store_record (core->store, seq, &rec, &err) == 0) {
            if (rec->has_restricted && rec->restricted && !bus_taint_declassified (core, seq)) {
                *first = *first? *first: seq;
                count++;
            }
            bulkhead__v1__record__free_unpacked (rec, NULL);
        }
    }
    return count;
}

int
bus_taint_clear (bus_core_t *core, bus_session_t *session, bus_error_t *err)
{
    uint64_t first;
    uint32_t unread = bus_taint_unread (core, session, &first);
    if (unread) {
        return bus_fail (err, BUS_EPERM, "%s has %u restricted message%s it has not acknowledged "
                         "(the first at seq %llu): a clear covers only what it has read; clear "
                         "again once it acknowledged them", session->agent, unread,
                         unread == 1? "": "s", (unsigned long long) first);
    }
    if (bus_store_del (core->store, BUS_DB_TAINT, session->agent, strlen (session->agent), err) != 0) {
        return -1;
    }
    session->taint_seq = 0;
    session->taint_us = 0;
    return 0;
}

//  Declassified sequences live in the meta database as "declassified:" +
//  the u64 big-endian seq, so a look-up is one read.
static size_t
s_declass_key (uint8_t key [20], uint64_t seq)
{
    memcpy (key, "declassified:", 13);
    for (int i = 0; i < 8; i++) {
        key [13 + i] = (uint8_t) (seq >> (56 - 8 * i));
    }
    return 21;
}

bool
bus_taint_declassified (bus_core_t *core, uint64_t seq)
{
    uint8_t key [21];
    size_t len = s_declass_key (key, seq);
    void *value = NULL;
    size_t size = 0;
    bus_error_t err;
    if (bus_store_get (core->store, BUS_DB_META, key, len, &value, &size, &err) == 0) {
        free (value);
        return true;
    }
    return false;
}

int
bus_taint_declassify (bus_core_t *core, uint64_t seq, bus_error_t *err)
{
    record_t *rec = NULL;
    if (bus_store_record (core->store, seq, &rec, err) != 0) {
        return bus_fail (err, BUS_ENOTFOUND, "no record seq %llu in the log",
                         (unsigned long long) seq);
    }
    bool restricted = rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND
                   && rec->has_restricted && rec->restricted;
    bulkhead__v1__record__free_unpacked (rec, NULL);
    if (!restricted) {
        return bus_fail (err, BUS_EINVAL, "seq %llu is not a restricted message; there is "
                         "nothing to declassify", (unsigned long long) seq);
    }
    if (bus_taint_declassified (core, seq)) {
        return bus_fail (err, BUS_EDUPLICATE, "seq %llu is declassified already",
                         (unsigned long long) seq);
    }
    uint8_t key [21];
    size_t len = s_declass_key (key, seq);
    if (bus_store_put (core->store, BUS_DB_META, key, len, "1", 1, err) != 0) {
        return -1;
    }
    //  The taint this message caused goes with it, unless other restricted
    //  content waits for that agent.
    for (size_t i = 0; i < core->policy->agent_count; i++) {
        bus_session_t *session = bus_session_get (core, core->policy->agents [i].name);
        uint64_t first;
        if (session && session->taint_seq == seq && bus_taint_unread (core, session, &first) == 0
        &&  bus_store_del (core->store, BUS_DB_TAINT, session->agent, strlen (session->agent),
                           err) == 0) {
            session->taint_seq = 0;
            session->taint_us = 0;
            bus_core_say (core, "BUS-CLEAR", "agent=%s declassified=%llu", session->agent,
                          (unsigned long long) seq);
        }
    }
    return 0;
}
