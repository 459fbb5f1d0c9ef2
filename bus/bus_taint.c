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
    if (!(rec->has_restricted && rec->restricted) || session->taint_seq != 0) {
        return;
    }
    char text [64];
    int len = snprintf (text, sizeof text, "%llu %llu", (unsigned long long) rec->seq,
                        (unsigned long long) rec->time_us);
    bus_error_t err;
    if (bus_store_put (core->store, BUS_DB_TAINT, session->agent, strlen (session->agent),
                       text, (size_t) len, &err) != 0) {
        bus_core_fail (core, &err);
        return;
    }
    session->taint_seq = rec->seq;
    session->taint_us = rec->time_us;
    bus_core_say (core, "BUS-TAINT", "agent=%s seq=%llu via=%s", session->agent,
                  (unsigned long long) rec->seq, rec->sender? rec->sender: "-");
}

int
bus_taint_clear (bus_core_t *core, bus_session_t *session, bus_error_t *err)
{
    if (bus_store_del (core->store, BUS_DB_TAINT, session->agent, strlen (session->agent), err) != 0) {
        return -1;
    }
    session->taint_seq = 0;
    session->taint_us = 0;
    return 0;
}
