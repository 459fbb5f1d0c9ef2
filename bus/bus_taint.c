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
            if (rec->has_restricted && rec->restricted) {
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
