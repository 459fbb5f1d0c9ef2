/*  bus_outbox.c: frames waiting for the commit, see bus_outbox.h. */
#include "bus_outbox.h"
#include "bus_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_outbox {
    bus_out_t *items;
    size_t count;
    size_t alloc;
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
        snprintf (out->message_id, sizeof out->message_id, "%s", message_id);
    }
    self->count++;
    return out;
}

void
bus_outbox_error (bus_outbox_t *self, const uint8_t *rid, size_t rid_len,
                  bus_code_t code, const char *reason, const char *message_id)
{
    Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
    error.code = (char *) bus_errword (code);
    error.reason = (char *) reason;
    error.message_id = (char *) message_id;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
    frame.error = &error;
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
