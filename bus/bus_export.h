/*  bus_export.h: log records as JSON, in our own names (`log --json`) and
    in OCSF 1.3.0 (`log --ocsf`), built with jansson.

    Every string of a record may hold what an agent wrote. Each is made
    valid UTF-8 before jansson sees it (a byte that is not part of valid
    UTF-8, such as a reason cut inside a character, becomes U+FFFD), and the
    line is written with every character outside ASCII as a \uXXXX escape:
    a line is ASCII, so valid UTF-8 whatever the record held, and no control,
    bidi or invisible character reaches a terminal or a shipper raw.

    OCSF classes (https://schema.ocsf.io/1.3.0):
        SEND, CONTROL, HOLD, DELIVERY_ACK, ERROR    API Activity (6003)
        SESSION                                     Authentication (3002)
        BUS, POLICY                                 Application Lifecycle (6002)
        anything else                               Base Event (0)
    The mapping of each field is a table in README.md ("OCSF export").
*/
#ifndef BUS_EXPORT_H
#define BUS_EXPORT_H

#include "record.pb-c.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define BUS_OCSF_VERSION    "1.3.0"

//  The name of each record kind, by RecordKind value, as `log` prints it
//  and `--kind` takes it.
extern const char *const bus_record_kinds [];
extern const size_t bus_record_kind_count;

//  The record in our names, as `log --json` prints it; the payload too
//  (base64, payload_base64) when with_payload. NULL if out of memory.
json_t *
    bus_export_json (const Bulkhead__V1__Record *rec, size_t raw_len, bool with_payload);

//  The record as one OCSF event. NULL if out of memory.
json_t *
    bus_export_ocsf (const Bulkhead__V1__Record *rec, size_t raw_len);

//  Writes obj as one compact line of ASCII and a newline. 0, or -1 if out
//  of memory or the write failed.
int
    bus_export_write (FILE *out, const json_t *obj);

//  text made valid UTF-8: a malloc'd copy, each invalid byte as U+FFFD
//  (caller frees; NULL if out of memory).
char *
    bus_export_utf8 (const char *text);

#endif
