/*  bus_notify.h: the notification hook of `console --notify CMD` and
    `pending --follow --notify CMD`, for approvers away from the page.

    Each new Pending notice becomes one JSON object (one line, jansson) in
    a queue. At most one run of CMD (by /bin/sh -c) at a time, at most one
    start per interval: a run gets, on its standard input, every object
    queued since the last one, one per line (a batch). So a flood of holds
    makes one message per interval, not one per hold. The queue keeps at
    most BUS_NOTIFY_QUEUE_MAX objects; past that, holds are counted and the
    next batch ends with {"event":"dropped","count":N}. A run that lasts
    past BUS_NOTIFY_RUN_MAX_S seconds is killed. CMD inherits no descriptor
    but its standard input, output and error.

    Text an agent wrote (justification, action, resource, names) is
    escaped as bus_print's text mode does before it goes into JSON: what
    reaches a chat or a mail is printable UTF-8.
*/
#ifndef BUS_NOTIFY_H
#define BUS_NOTIFY_H

#include "bulkhead.pb-c.h"

#include <jansson.h>
#include <stdint.h>

#define BUS_NOTIFY_QUEUE_MAX    1000
#define BUS_NOTIFY_RUN_MAX_S    60

typedef struct bus_notify bus_notify_t;

//  NULL if out of memory.
bus_notify_t *
    bus_notify_new (const char *command, unsigned interval_s);
//  Runs what is still queued, waiting for a run going (at most a second
//  each, then it is killed).
void
    bus_notify_destroy (bus_notify_t **self_p);

//  Queues one object for the Pending notice p.
void
    bus_notify_pending (bus_notify_t *self, const Bulkhead__V1__Pending *p);

//  Reaps a finished run and starts the next batch if one is due. Call it
//  at least every bus_notify_wait_ms.
void
    bus_notify_tick (bus_notify_t *self);

//  Milliseconds until a tick has something to do, or -1 if nothing waits.
int
    bus_notify_wait_ms (bus_notify_t *self);

//  Text (size bytes) escaped by bus_print (flags BUS_PRINT_*, at most max
//  bytes of it, 0: all) as a JSON string; *not_shown (if not NULL) gets
//  the bytes left out. Never NULL unless out of memory.
json_t *
    bus_json_text (const void *data, size_t size, int flags, size_t max, size_t *not_shown);

//  The same for a NUL-terminated text; NULL text gives JSON null.
json_t *
    bus_json_str (const char *text);

#endif
