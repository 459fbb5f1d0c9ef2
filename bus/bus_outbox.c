/*  bus_outbox.c: frames waiting for the commit, see bus_outbox.h. */
#include "bus_outbox.h"
#include "bus_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A DELIVER the window held back, by seq (see bus_outbox_keep).
typedef struct {
    uint64_t seq;                       //  0: empty
    uint8_t *data;                      //  owned
    size_t size;
    bool restricted;
    uint64_t time_us;
} s_kept_t;

struct bus_outbox {
    bus_out_t *items;
    size_t count;
    size_t alloc;
    s_kept_t kept [BUS_OUTBOX_KEEP];
    size_t kept_bytes;
};

bus_outbox_t *
bus_outbox_new (void)
{
    return calloc (1, sizeof (bus_outbox_t));
}

void
bus_outbox_destroy (bus_outbox_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_outbox_t *self = *self_p;
    bus_outbox_clear (self);
    for (size_t i = 0; i < BUS_OUTBOX_KEEP; i++) {
        free (self->kept [i].data);
    }
    free (self->items);
    free (self);
    *self_p = NULL;
}

int
bus_outbox_reserve (bus_outbox_t *self, size_t room)
{
    if (self->alloc - self->count >= room) {
        return 0;
    }
    size_t alloc = self->alloc? self->alloc * 2: 256;
    while (alloc - self->count < room) {
        alloc *= 2;
    }
    bus_out_t *items = realloc (self->items, alloc * sizeof *items);
    if (!items) {
        return -1;
    }
    self->items = items;
    self->alloc = alloc;
    return 0;
}

static bus_out_t *
s_slot (bus_outbox_t *self)
{
    if (bus_outbox_reserve (self, 1) != 0) {
        return NULL;
    }
    bus_out_t *out = &self->items [self->count];
    memset (out, 0, offsetof (bus_out_t, message_id) + 1);
    return out;
}

bus_out_t *
bus_outbox_frame (bus_outbox_t *self, const uint8_t *rid, size_t rid_len,
                  const Bulkhead__V1__Frame *frame, const char *message_id)
{
    bus_out_t *out = s_slot (self);
    if (!out || !(out->data = bus_wire_pack (frame, &out->size))) {
        return NULL;
    }
    memcpy (out->rid, rid, rid_len);
    out->rid_len = rid_len;
    if (message_id) {
        //  Bounded copy without snprintf's formatting: this is per message.
        size_t len = strnlen (message_id, sizeof out->message_id - 1);
        memcpy (out->message_id, message_id, len);
        out->message_id [len] = 0;
    }
    self->count++;
    return out;
}

//  frame is an ERROR of error, which it points to.
static void
s_error_frame (Bulkhead__V1__Frame *frame, Bulkhead__V1__Error *error, bus_code_t code,
               const char *reason, const char *message_id)
{
    *error = (Bulkhead__V1__Error) BULKHEAD__V1__ERROR__INIT;
    error->code = (char *) bus_errword (code);
    error->reason = (char *) reason;
    error->message_id = (char *) message_id;
    *frame = (Bulkhead__V1__Frame) BULKHEAD__V1__FRAME__INIT;
    frame->body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
    frame->error = error;
}

void
bus_outbox_error (bus_outbox_t *self, const uint8_t *rid, size_t rid_len,
                  bus_code_t code, const char *reason, const char *message_id)
{
    Bulkhead__V1__Error error;
    Bulkhead__V1__Frame frame;
    s_error_frame (&frame, &error, code, reason, message_id);
    bus_outbox_frame (self, rid, rid_len, &frame, message_id);
}

int
bus_outbox_deliver (bus_outbox_t *self, struct bus_session *session, uint64_t seq,
                    bool restricted, uint64_t time_us, uint8_t *data, size_t size)
{
    bus_out_t *out = s_slot (self);
    if (!out) {
        free (data);
        return -1;
    }
    out->session = session;
    out->data = data;
    out->size = size;
    out->deliver_seq = seq;
    out->restricted = restricted;
    out->time_us = time_us;
    self->count++;
    return 0;
}

size_t
bus_outbox_count (bus_outbox_t *self)
{
    return self->count;
}

bus_out_t *
bus_outbox_at (bus_outbox_t *self, size_t index)
{
    return index < self->count? &self->items [index]: NULL;
}

void
bus_outbox_clear (bus_outbox_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        free (self->items [i].data);
    }
    self->count = 0;
}

static void
s_kept_free (bus_outbox_t *self, s_kept_t *slot)
{
    self->kept_bytes -= slot->size;
    free (slot->data);
    *slot = (s_kept_t) { 0 };
}

void
bus_outbox_keep (bus_outbox_t *self, bus_out_t *out)
{
    if (!out->deliver_seq || !out->data || out->size > BUS_OUTBOX_KEEP_FRAME) {
        return;
    }
    s_kept_t *slot = &self->kept [out->deliver_seq % BUS_OUTBOX_KEEP];
    if (slot->data) {
        s_kept_free (self, slot);       //  older by BUS_OUTBOX_KEEP seqs at least
    }
    if (self->kept_bytes + out->size > BUS_OUTBOX_KEEP_BYTES) {
        return;
    }
    *slot = (s_kept_t) {
        .seq = out->deliver_seq, .data = out->data, .size = out->size,
        .restricted = out->restricted, .time_us = out->time_us
    };
    self->kept_bytes += out->size;
    out->data = NULL;
}

uint8_t *
bus_outbox_take (bus_outbox_t *self, uint64_t seq, size_t *size, bool *restricted,
                 uint64_t *time_us)
{
    s_kept_t *slot = &self->kept [seq % BUS_OUTBOX_KEEP];
    if (!slot->data || slot->seq != seq) {
        return NULL;
    }
    uint8_t *data = slot->data;
    *size = slot->size;
    *restricted = slot->restricted;
    *time_us = slot->time_us;
    self->kept_bytes -= slot->size;
    *slot = (s_kept_t) { 0 };
    return data;
}

void
bus_outbox_fail (bus_outbox_t *self, void *router, bus_code_t code, const char *reason)
{
    for (size_t i = 0; i < bus_outbox_count (self); i++) {
        bus_out_t *out = bus_outbox_at (self, i);
        if (out->deliver_seq) {
            continue;
        }
        Bulkhead__V1__Error error;
        Bulkhead__V1__Frame frame;
        s_error_frame (&frame, &error, code, reason, out->message_id [0]? out->message_id: NULL);
        size_t size;
        uint8_t *data = bus_wire_pack (&frame, &size);
        if (data) {
            bus_router_send (router, out->rid, out->rid_len, data, size);
            free (data);
        }
    }
    bus_outbox_clear (self);
}
