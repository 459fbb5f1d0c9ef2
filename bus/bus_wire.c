/*  bus_wire.c: bounded, canonical protobuf decoding. */
#include "bus_wire.h"
#include "bus_pb.h"

#include <stdlib.h>
#include <string.h>

struct bus_wire {
    uint8_t *arena;
    size_t arena_size;
    size_t used;
    bool exhausted;
    ProtobufCAllocator allocator;
    uint8_t *out;                   //  encode buffer, grows as needed
    size_t out_size;
    Bulkhead__V1__Frame *frame;     //  last decoded, freed lazily
};

//  Bump allocation from the arena; free is a no-op, the arena is reset
//  before each decode. Fast, and bounded by construction.
static void *
s_arena_alloc (void *data, size_t size)
{
    bus_wire_t *self = data;
    size_t aligned = (size + 15) & ~(size_t) 15;
    if (aligned < size || aligned > self->arena_size - self->used) {
        self->exhausted = true;
        return NULL;
    }
    void *p = self->arena + self->used;
    self->used += aligned;
    return p;
}

//  The encode buffer holds at least need bytes afterward.
static int
s_out_reserve (bus_wire_t *self, size_t need)
{
    if (need <= self->out_size) {
        return 0;
    }
    size_t grow = need < 4096? 4096: need;
    uint8_t *out = realloc (self->out, grow);
    if (!out) {
        return -1;
    }
    self->out = out;
    self->out_size = grow;
    return 0;
}

static void
s_arena_free (void *data, void *pointer)
{
    (void) data;
    (void) pointer;
}

bus_wire_t *
bus_wire_new (size_t arena_size)
{
    bus_wire_t *self = calloc (1, sizeof *self);
    if (!self) {
        return NULL;
    }
    self->arena = malloc (arena_size);
    if (!self->arena) {
        free (self);
        return NULL;
    }
    self->arena_size = arena_size;
    self->allocator.alloc = s_arena_alloc;
    self->allocator.free = s_arena_free;
    self->allocator.allocator_data = self;
    return self;
}

void
bus_wire_destroy (bus_wire_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_wire_t *self = *self_p;
    free (self->arena);
    free (self->out);
    free (self);
    *self_p = NULL;
}

const char *
bus_wire_body_name (const Bulkhead__V1__Frame *frame)
{
    switch (frame->body_case) {
        case BULKHEAD__V1__FRAME__BODY_HELLO: return "hello";
        case BULKHEAD__V1__FRAME__BODY_WELCOME: return "welcome";
        case BULKHEAD__V1__FRAME__BODY_SEND: return "send";
        case BULKHEAD__V1__FRAME__BODY_ACK: return "ack";
        case BULKHEAD__V1__FRAME__BODY_DELIVER: return "deliver";
        case BULKHEAD__V1__FRAME__BODY_DELIVERY_ACK: return "delivery_ack";
        case BULKHEAD__V1__FRAME__BODY_ERROR: return "error";
        case BULKHEAD__V1__FRAME__BODY_PING: return "ping";
        case BULKHEAD__V1__FRAME__BODY_PONG: return "pong";
        case BULKHEAD__V1__FRAME__BODY_CONTROL: return "control";
        case BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY: return "control_reply";
        case BULKHEAD__V1__FRAME__BODY_PENDING: return "pending";
        case BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE: return "hold_update";
        case BULKHEAD__V1__FRAME__BODY_ALERT: return "alert";
        case BULKHEAD__V1__FRAME__BODY_BUNDLE: return "bundle";
        default: return "empty";
    }
}

int
bus_wire_decode (bus_wire_t *self, const void *data, size_t size,
                 Bulkhead__V1__Frame **frame, bus_error_t *err)
{
    self->used = 0;
    self->exhausted = false;
    Bulkhead__V1__Frame *decoded =
        bulkhead__v1__frame__unpack (&self->allocator, size, data);
    if (!decoded) {
        if (self->exhausted) {
            return bus_fail (err, BUS_EMALFORMED,
                             "frame of %zu bytes decodes to more than %zu bytes", size,
                             self->arena_size);
        }
        return bus_fail (err, BUS_EMALFORMED,
                         "frame of %zu bytes is not a bulkhead.v1.Frame", size);
    }
    if (decoded->body_case == BULKHEAD__V1__FRAME__BODY__NOT_SET) {
        return bus_fail (err, BUS_EMALFORMED, "frame has no body");
    }
    //  Unknown fields anywhere: protobuf-c would keep them and re-emit them;
    //  we want nothing in the log that the schema does not name. The frame
    //  and its body are the only levels agents send (the schema is flat).
    //  Every member of the body union is a message pointer, so any of them
    //  reads the body's common header.
    const ProtobufCMessage *body = (const ProtobufCMessage *) decoded->hello;
    if (decoded->base.n_unknown_fields > 0 || (body && body->n_unknown_fields > 0)) {
        return bus_fail (err, BUS_EMALFORMED, "%s frame has fields this protocol does not know",
                         bus_wire_body_name (decoded));
    }
    //  Canonical means the same bytes, not the same length: packed causes
    //  re-encode shorter and could pay for a NUL in a string or a field
    //  given twice. The encoding a frame must have is the one protoc-c and
    //  Python's protobuf emit (fields in number order, proto2 repeated
    //  scalars unpacked); see schemas/bulkhead.proto.
    //  One backward pass into the encode buffer, compared byte for byte;
    //  the length the frame should have had is worked out only for the
    //  error text.
    if (s_out_reserve (self, size) != 0
    ||  bus_pb_encode (&decoded->base, self->out, size) != size
    ||  memcmp (self->out, data, size) != 0) {
        size_t canonical = bulkhead__v1__frame__get_packed_size (decoded);
        return bus_fail (err, BUS_EMALFORMED,
                         "%s frame is not canonical (%zu bytes re-encode to %zu other bytes): "
                         "a string with a NUL byte, a field given twice, packed repeated "
                         "fields, or padding", bus_wire_body_name (decoded), size, canonical);
    }
    *frame = decoded;
    return 0;
}

int
bus_wire_encode (bus_wire_t *self, const Bulkhead__V1__Frame *frame,
                 const uint8_t **data, size_t *size, bus_error_t *err)
{
    //  Most frames fit the buffer as it is; one that does not is sized
    //  once and the buffer grown to it.
    size_t n = bus_pb_encode (&frame->base, self->out, self->out_size);
    if (n == SIZE_MAX) {
        size_t need = bulkhead__v1__frame__get_packed_size (frame);
        if (s_out_reserve (self, need) != 0) {
            return bus_fail (err, BUS_ENOMEM, "encode: out of memory for %zu bytes", need);
        }
        n = bus_pb_encode (&frame->base, self->out, self->out_size);
    }
    *size = n;
    *data = self->out + self->out_size - n;
    return 0;
}

uint8_t *
bus_wire_pack (const Bulkhead__V1__Frame *frame, size_t *size)
{
    //  A frame for a queue must own its bytes: encode on the stack, copy
    //  out exactly; only a frame bigger than the stack buffer is sized.
    uint8_t stack [8192];
    size_t n = bus_pb_encode (&frame->base, stack, sizeof stack);
    uint8_t *out;
    if (n != SIZE_MAX) {
        out = malloc (n? n: 1);
        if (out) {
            memcpy (out, stack + sizeof stack - n, n);
        }
    }
    else {
        n = bulkhead__v1__frame__get_packed_size (frame);
        out = malloc (n? n: 1);
        if (out) {
            bulkhead__v1__frame__pack (frame, out);
        }
    }
    *size = n;
    return out;
}

bool
bus_id_valid (const char *id, size_t max)
{
    size_t len = 0;
    for (; id [len]; len++) {
        if (len >= max || id [len] < 0x21 || id [len] > 0x7e) {
            return false;
        }
    }
    return len > 0;
}

bool
bus_text_valid (const char *text, size_t max)
{
    const uint8_t *p = (const uint8_t *) text;
    size_t len = strlen (text);
    if (len > max) {
        return false;
    }
    const uint8_t *end = p + len;
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n') {
                return false;
            }
            if (c == 0x7f) {
                return false;
            }
            p++;
            continue;
        }
        //  Strict UTF-8: no overlongs, no surrogates, nothing past U+10FFFF.
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        }
        else
        if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        }
        else
        if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        }
        else {
            return false;
        }
        if ((size_t) (end - p) <= n) {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p [i] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p [i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
        ||  (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        //  C1 controls (U+0080..U+009F) are terminal commands, never text.
        if (cp >= 0x80 && cp <= 0x9f) {
            return false;
        }
        p += n + 1;
    }
    return true;
}

//  ---------------------------------------------------------------------
//  Bundles

#define BUNDLE_TAG  ((15 << 3) | 2)     //  Frame.bundle, length-delimited
#define MEMBER_TAG  ((1 << 3) | 2)      //  Bundle.frames, length-delimited

static size_t
s_varint_len (size_t value)
{
    size_t len = 1;
    while (value >= 0x80) {
        value >>= 7;
        len++;
    }
    return len;
}

static size_t
s_varint_put (uint8_t *out, size_t value)
{
    size_t len = 0;
    while (value >= 0x80) {
        out [len++] = (uint8_t) (value | 0x80);
        value >>= 7;
    }
    out [len++] = (uint8_t) value;
    return len;
}

static size_t
s_member_len (size_t size)
{
    return 1 + s_varint_len (size) + size;
}

size_t
bus_bundle_with (const bus_bundle_t *self, size_t size)
{
    if (self->count == 0) {
        return size;
    }
    size_t body = self->body + s_member_len (size);
    return 1 + s_varint_len (body) + body;
}

int
bus_bundle_add (bus_bundle_t *self, const void *frame, size_t size)
{
    if (self->count == self->alloc) {
        size_t alloc = self->alloc? self->alloc * 2: 64;
        bus_bundle_part_t *parts = realloc (self->parts, alloc * sizeof *parts);
        if (!parts) {
            return -1;
        }
        self->parts = parts;
        self->alloc = alloc;
    }
    self->parts [self->count++] = (bus_bundle_part_t) { frame, size };
    self->body += s_member_len (size);
    return 0;
}

size_t
bus_bundle_size (const bus_bundle_t *self)
{
    if (self->count <= 1) {
        return self->count? self->parts [0].size: 0;
    }
    return 1 + s_varint_len (self->body) + self->body;
}

void
bus_bundle_write (const bus_bundle_t *self, uint8_t *out)
{
    if (self->count == 0) {
        return;                         //  bus_bundle_size said 0 bytes
    }
    if (self->count == 1) {
        memcpy (out, self->parts [0].data, self->parts [0].size);
        return;
    }
    *out++ = BUNDLE_TAG;
    out += s_varint_put (out, self->body);
    for (size_t i = 0; i < self->count; i++) {
        *out++ = MEMBER_TAG;
        out += s_varint_put (out, self->parts [i].size);
        memcpy (out, self->parts [i].data, self->parts [i].size);
        out += self->parts [i].size;
    }
}

void
bus_bundle_reset (bus_bundle_t *self, size_t keep)
{
    if (self->alloc > keep) {
        free (self->parts);
        self->parts = NULL;
        self->alloc = 0;
    }
    self->count = 0;
    self->body = 0;
}

//  A minimal varint at *pos, before end: 0, or -1 (truncated, longer than
//  ten bytes, or not the length protobuf-c would have written).
static int
s_varint_get (const uint8_t *data, size_t end, size_t *pos, size_t *value)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10 && *pos < end; i++) {
        uint8_t b = data [(*pos)++];
        v |= (uint64_t) (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            //  A tenth byte holds one bit: more would be lost in the shift.
            if ((i == 9 && b > 1)
            ||  (uint64_t) (size_t) v != v || s_varint_len ((size_t) v) != i + 1) {
                return -1;
            }
            *value = (size_t) v;
            return 0;
        }
    }
    return -1;
}

bool
bus_wire_is_bundle (const void *data, size_t size)
{
    return size > 0 && *(const uint8_t *) data == BUNDLE_TAG;
}

int
bus_bundle_open (bus_bundle_reader_t *reader, const void *data, size_t size,
                 size_t *count, bus_error_t *err)
{
    const uint8_t *bytes = data;
    size_t pos = 1, body;
    if (!bus_wire_is_bundle (data, size) || s_varint_get (bytes, size, &pos, &body) != 0
    ||  body != size - pos) {
        return bus_fail (err, BUS_EMALFORMED, "bundle frame of %zu bytes is not one canonical "
                         "bulkhead.v1.Bundle (its length is not minimal or not what follows)",
                         size);
    }
    *reader = (bus_bundle_reader_t) { bytes, pos, size };
    size_t n = 0;
    while (pos < size) {
        size_t len;
        if (bytes [pos++] != MEMBER_TAG || s_varint_get (bytes, size, &pos, &len) != 0
        ||  len > size - pos) {
            return bus_fail (err, BUS_EMALFORMED, "bundle frame of %zu bytes is not canonical "
                             "at byte %zu (frame %zu): a field other than frames, a length "
                             "not minimal, or one past the end", size, pos - 1, n + 1);
        }
        pos += len;
        n++;
    }
    if (n == 0) {
        return bus_fail (err, BUS_EMALFORMED, "bundle frame holds no frames");
    }
    *count = n;
    return 0;
}

bool
bus_bundle_next (bus_bundle_reader_t *reader, const uint8_t **frame, size_t *size)
{
    size_t len;
    if (reader->pos >= reader->end || reader->data [reader->pos] != MEMBER_TAG) {
        return false;
    }
    size_t pos = reader->pos + 1;
    if (s_varint_get (reader->data, reader->end, &pos, &len) != 0 || len > reader->end - pos) {
        return false;                   //  bus_bundle_open checked: not reached
    }
    *frame = reader->data + pos;
    *size = len;
    reader->pos = pos + len;
    return true;
}
