/*  bus_pb.c: protobuf encoding in one pass, backward; see bus_pb.h. */
#include "bus_pb.h"

#include <stdbool.h>
#include <string.h>

//  What is written so far lies at [p, end); start is the buffer's first
//  byte, so p - start is the room left.
typedef struct {
    uint8_t *start;
    uint8_t *p;
} s_out_t;

static inline bool
s_bytes (s_out_t *out, const void *data, size_t len)
{
    if ((size_t) (out->p - out->start) < len) {
        return false;
    }
    out->p -= len;
    if (len) {
        memcpy (out->p, data, len);
    }
    return true;
}

//  Backward, so the last 7-bit group goes first and carries no high bit.
static inline bool
s_varint (s_out_t *out, uint64_t value)
{
    size_t room = (size_t) (out->p - out->start);
    if (value < 0x80 && room > 0) {
        *--out->p = (uint8_t) value;
        return true;
    }
    size_t len = 1;
    for (uint64_t rest = value >> 7; rest; rest >>= 7) {
        len++;
    }
    if (room < len) {
        return false;
    }
    out->p -= len;
    uint8_t *q = out->p;
    for (size_t i = 0; i + 1 < len; i++, value >>= 7) {
        q [i] = (uint8_t) (value | 0x80);
    }
    q [len - 1] = (uint8_t) value;
    return true;
}

static inline bool
s_fixed (s_out_t *out, uint64_t value, size_t len)
{
    if ((size_t) (out->p - out->start) < len) {
        return false;
    }
    out->p -= len;
    for (size_t i = 0; i < len; i++) {
        out->p [i] = (uint8_t) (value >> (8 * i));
    }
    return true;
}

static inline bool
s_tag (s_out_t *out, uint32_t id, unsigned wire_type)
{
    return s_varint (out, ((uint64_t) id << 3) | wire_type);
}

static ProtobufCWireType
s_wire_type (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_FIXED32:
        case PROTOBUF_C_TYPE_FLOAT:
            return PROTOBUF_C_WIRE_TYPE_32BIT;
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE:
            return PROTOBUF_C_WIRE_TYPE_64BIT;
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_BYTES:
        case PROTOBUF_C_TYPE_MESSAGE:
            return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        default:
            return PROTOBUF_C_WIRE_TYPE_VARINT;
    }
}

static size_t
s_element_size (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE:
            return 8;
        case PROTOBUF_C_TYPE_BOOL:
            return sizeof (protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_MESSAGE:
            return sizeof (void *);
        case PROTOBUF_C_TYPE_BYTES:
            return sizeof (ProtobufCBinaryData);
        default:
            return 4;
    }
}

static bool s_message (s_out_t *out, const ProtobufCMessage *msg);

//  One value without its tag. An int32 or enum below zero is ten bytes,
//  sign-extended, as protobuf requires; a NULL string or message in a
//  required field is written empty, as protobuf-c does.
static bool
s_value (s_out_t *out, ProtobufCType type, const void *member)
{
    switch (type) {
        case PROTOBUF_C_TYPE_SINT32: {
            uint32_t v = *(const uint32_t *) member;
            return s_varint (out, (uint32_t) ((v << 1) ^ -(v >> 31)));
        }
        case PROTOBUF_C_TYPE_ENUM:
        case PROTOBUF_C_TYPE_INT32:
            return s_varint (out, (uint64_t) (int64_t) *(const int32_t *) member);
        case PROTOBUF_C_TYPE_UINT32:
            return s_varint (out, *(const uint32_t *) member);
        case PROTOBUF_C_TYPE_SINT64: {
            uint64_t v = *(const uint64_t *) member;
            return s_varint (out, (v << 1) ^ -(v >> 63));
        }
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_UINT64:
            return s_varint (out, *(const uint64_t *) member);
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_FIXED32:
        case PROTOBUF_C_TYPE_FLOAT: {
            uint32_t v;
            memcpy (&v, member, 4);
            return s_fixed (out, v, 4);
        }
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE: {
            uint64_t v;
            memcpy (&v, member, 8);
            return s_fixed (out, v, 8);
        }
        case PROTOBUF_C_TYPE_BOOL:
            return s_varint (out, *(const protobuf_c_boolean *) member? 1: 0);
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = *(const char * const *) member;
            size_t len = text? strlen (text): 0;
            return s_bytes (out, text, len) && s_varint (out, len);
        }
        case PROTOBUF_C_TYPE_BYTES: {
            const ProtobufCBinaryData *data = member;
            return s_bytes (out, data->data, data->len) && s_varint (out, data->len);
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            const ProtobufCMessage *sub = *(const ProtobufCMessage * const *) member;
            uint8_t *end = out->p;
            return (!sub || s_message (out, sub)) && s_varint (out, (size_t) (end - out->p));
        }
    }
    return false;
}

static bool
s_field (s_out_t *out, const ProtobufCFieldDescriptor *field, const void *member)
{
    return s_value (out, field->type, member)
        && s_tag (out, field->id, s_wire_type (field->type));
}

//  Repeated: packed, one length-prefixed run of values; else a tagged
//  field per value. Written last value first.
static bool
s_repeated (s_out_t *out, const ProtobufCFieldDescriptor *field, size_t count,
            const void *member)
{
    if (count == 0) {
        return true;
    }
    const char *array = *(const char * const *) member;
    size_t size = s_element_size (field->type);
    bool packed = field->flags & PROTOBUF_C_FIELD_FLAG_PACKED;
    uint8_t *end = out->p;
    for (size_t i = count; i-- > 0; ) {
        const void *element = array + i * size;
        if (!(packed? s_value (out, field->type, element): s_field (out, field, element))) {
            return false;
        }
    }
    return !packed
        || (s_varint (out, (size_t) (end - out->p))
            && s_tag (out, field->id, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED));
}

//  Whether protobuf-c leaves a proto3 (unlabeled) field out: its zero.
static bool
s_zero (const ProtobufCFieldDescriptor *field, const void *member)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_BOOL:
            return *(const protobuf_c_boolean *) member == 0;
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_FIXED64:
            return *(const uint64_t *) member == 0;
        case PROTOBUF_C_TYPE_FLOAT:
            return *(const float *) member == 0;
        case PROTOBUF_C_TYPE_DOUBLE:
            return *(const double *) member == 0;
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = *(const char * const *) member;
            return !text || !*text;
        }
        case PROTOBUF_C_TYPE_BYTES:
        case PROTOBUF_C_TYPE_MESSAGE:
            return *(const void * const *) member == NULL;
        default:
            return *(const uint32_t *) member == 0;
    }
}

//  Whether a field is written at all, by its label (as protobuf-c decides).
static bool
s_present (const ProtobufCFieldDescriptor *field, const void *member, const void *quantifier)
{
    if (field->label == PROTOBUF_C_LABEL_REQUIRED) {
        return true;
    }
    bool pointer = field->type == PROTOBUF_C_TYPE_MESSAGE
                || field->type == PROTOBUF_C_TYPE_STRING;
    const void *value = pointer? *(const void * const *) member: NULL;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        return *(const uint32_t *) quantifier == field->id
            && (!pointer || (value && value != field->default_value));
    }
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        return pointer? value && value != field->default_value
                      : *(const protobuf_c_boolean *) quantifier;
    }
    return !s_zero (field, member);
}

static bool
s_message (s_out_t *out, const ProtobufCMessage *msg)
{
    for (size_t i = msg->n_unknown_fields; i-- > 0; ) {
        const ProtobufCMessageUnknownField *unknown = &msg->unknown_fields [i];
        if (!s_bytes (out, unknown->data, unknown->len)
        ||  !s_tag (out, unknown->tag, unknown->wire_type)) {
            return false;
        }
    }
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    for (size_t i = desc->n_fields; i-- > 0; ) {
        const ProtobufCFieldDescriptor *field = &desc->fields [i];
        const char *base = (const char *) msg;
        const void *member = base + field->offset;
        const void *quantifier = base + field->quantifier_offset;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!s_repeated (out, field, *(const size_t *) quantifier, member)) {
                return false;
            }
        }
        else
        if (s_present (field, member, quantifier) && !s_field (out, field, member)) {
            return false;
        }
    }
    return true;
}

size_t
bus_pb_encode (const ProtobufCMessage *msg, uint8_t *buf, size_t cap)
{
    s_out_t out = { .start = buf, .p = buf + cap };
    if (!s_message (&out, msg)) {
        return SIZE_MAX;
    }
    return (size_t) (buf + cap - out.p);
}
