/*  bus_record.h: log records, and the DELIVER frame built from one.

    What a recipient sees is exactly what the log says it was sent: a
    DELIVER is built from the stored record only, never from the Send.
*/
#ifndef BUS_RECORD_H
#define BUS_RECORD_H

#include "bus_core.h"

//  A fresh record of kind, stamped now and with the live policy's hash.
void
    bus_record_init (bus_core_t *core, record_t *rec, Bulkhead__V1__RecordKind kind);

//  The DELIVER frame for a SEND record (packed, malloc'd), or NULL.
uint8_t *
    bus_record_deliver (const record_t *rec, size_t *size);

#endif
