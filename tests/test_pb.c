/*  test_pb.c: bus_pb_encode writes the bytes protobuf_c_message_pack writes,
    for every message type of both schemas, filled at random through their
    descriptors (so a field added to a schema is covered without a word
    here), and refuses a buffer one byte too small.
*/
#include "check.h"

#include "bus_pb.h"
#include "bulkhead.pb-c.h"
#include "record.pb-c.h"

#include <stdlib.h>

static const ProtobufCMessageDescriptor *s_types [] = {
    &bulkhead__v1__hello__descriptor, &bulkhead__v1__welcome__descriptor,
    &bulkhead__v1__reach__descriptor, &bulkhead__v1__send__descriptor,
    &bulkhead__v1__ack__descriptor, &bulkhead__v1__approval__descriptor,
    &bulkhead__v1__deliver__descriptor, &bulkhead__v1__delivery_ack__descriptor,
    &bulkhead__v1__error__descriptor, &bulkhead__v1__ping__descriptor,
    &bulkhead__v1__pong__descriptor, &bulkhead__v1__control__descriptor,
    &bulkhead__v1__control_reply__descriptor, &bulkhead__v1__purge_reply__descriptor,
    &bulkhead__v1__pending__descriptor, &bulkhead__v1__hold_update__descriptor,
    &bulkhead__v1__alert__descriptor, &bulkhead__v1__frame__descriptor,
    &bulkhead__v1__record__descriptor, &bulkhead__v1__hold__descriptor,
    &bulkhead__v1__grant__descriptor,
};

//  Everything a random message owns, freed at once.
typedef struct {
    void *blocks [4096];
    size_t count;
    uint64_t state;
} s_fill_t;

static uint64_t
s_rand (s_fill_t *fill)
{
    //  xorshift64*: reproducible from the seed.
    fill->state ^= fill->state >> 12;
    fill->state ^= fill->state << 25;
    fill->state ^= fill->state >> 27;
    return fill->state * 2685821657736338717ull;
}

static unsigned
s_below (s_fill_t *fill, unsigned n)
{
    return (unsigned) (s_rand (fill) % n);
}

static void *
s_alloc (s_fill_t *fill, size_t size)
{
    assert_true (fill->count < sizeof fill->blocks / sizeof fill->blocks [0]);
    void *block = calloc (1, size? size: 1);
    assert_non_null (block);
    fill->blocks [fill->count++] = block;
    return block;
}

//  A value whose varint is any length from 1 to 10 bytes.
static uint64_t
s_number (s_fill_t *fill)
{
    unsigned bits = s_below (fill, 65);
    return bits == 64? s_rand (fill): s_rand (fill) & ((1ull << bits) - 1);
}

static char *
s_text (s_fill_t *fill)
{
    //  Lengths on both sides of 127, where the length prefix grows a byte.
    size_t len = s_below (fill, 4) == 0? 120 + s_below (fill, 20): s_below (fill, 24);
    char *text = s_alloc (fill, len + 1);
    for (size_t i = 0; i < len; i++) {
        text [i] = (char) (0x21 + s_below (fill, 94));
    }
    return text;
}

static void *s_message (s_fill_t *fill, const ProtobufCMessageDescriptor *desc, int depth);

//  One value of a field's type at member.
static void
s_value (s_fill_t *fill, const ProtobufCFieldDescriptor *field, void *member, int depth)
{
    uint64_t n = s_number (fill);
    switch (field->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_ENUM:
            *(int32_t *) member = s_below (fill, 3) == 0? -(int32_t) (n & 0x7fffffff)
                                                         : (int32_t) (n & 0x7fffffff);
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            *(uint32_t *) member = (uint32_t) n;
            break;
        case PROTOBUF_C_TYPE_FLOAT:
            *(float *) member = (float) n / 7.0f;
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            *(uint64_t *) member = s_below (fill, 3) == 0? -n: n;
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            *(double *) member = (double) n / 3.0;
            break;
        case PROTOBUF_C_TYPE_BOOL:
            *(protobuf_c_boolean *) member = (protobuf_c_boolean) s_below (fill, 2);
            break;
        case PROTOBUF_C_TYPE_STRING:
            //  Now and then NULL, or the field's default (both left out);
            //  protobuf-c's sizing reads a NULL one in a repeated field.
            *(const char **) member = field->label == PROTOBUF_C_LABEL_OPTIONAL
                                      && s_below (fill, 8) == 0? NULL
                                    : s_below (fill, 8) == 0 && field->default_value?
                                      (const char *) field->default_value
                                    : s_text (fill);
            break;
        case PROTOBUF_C_TYPE_BYTES: {
            ProtobufCBinaryData *data = member;
            data->len = s_below (fill, 4) == 0? 100 + s_below (fill, 200): s_below (fill, 8);
            data->data = s_alloc (fill, data->len);
            for (size_t i = 0; i < data->len; i++) {
                data->data [i] = (uint8_t) s_rand (fill);
            }
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE:
            //  protobuf-c's sizing reads a NULL one in a repeated field.
            *(void **) member = field->label == PROTOBUF_C_LABEL_OPTIONAL
                                && (depth > 3 || s_below (fill, 8) == 0)? NULL
                              : s_message (fill, field->descriptor, depth + 1);
            break;
    }
}

static size_t
s_element_size (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
            return 8;
        case PROTOBUF_C_TYPE_BOOL:
            return sizeof (protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
            return sizeof (void *);
        case PROTOBUF_C_TYPE_BYTES:
            return sizeof (ProtobufCBinaryData);
        default:
            return 4;
    }
}

static void *
s_message (s_fill_t *fill, const ProtobufCMessageDescriptor *desc, int depth)
{
    ProtobufCMessage *msg = s_alloc (fill, desc->sizeof_message);
    desc->message_init (msg);
    //  One member of each oneof (or none, or a case whose pointer is NULL).
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields [i];
        char *member = (char *) msg + field->offset;
        uint32_t *oneof_case = (uint32_t *) ((char *) msg + field->quantifier_offset);
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*oneof_case == 0 && s_below (fill, 3) == 0) {
                *oneof_case = field->id;
                s_value (fill, field, member, depth);
            }
            continue;
        }
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = s_below (fill, 3) == 0? 0: s_below (fill, 5);
            if (field->type == PROTOBUF_C_TYPE_MESSAGE && depth > 3) {
                count = 0;
            }
            size_t size = s_element_size (field->type);
            char *array = s_alloc (fill, count * size);
            for (size_t k = 0; k < count; k++) {
                s_value (fill, field, array + k * size, depth);
            }
            *(size_t *) oneof_case = count;
            *(char **) member = array;
            continue;
        }
        if (field->label == PROTOBUF_C_LABEL_OPTIONAL
        &&  field->type != PROTOBUF_C_TYPE_STRING && field->type != PROTOBUF_C_TYPE_MESSAGE) {
            //  Set but not present, now and then: has_ decides.
            *(protobuf_c_boolean *) oneof_case = s_below (fill, 3) != 0;
        }
        if (s_below (fill, 4) != 0) {
            s_value (fill, field, member, depth);
        }
    }
    if (depth == 0 && s_below (fill, 6) == 0) {
        msg->n_unknown_fields = 1 + s_below (fill, 2);
        msg->unknown_fields = s_alloc (fill, msg->n_unknown_fields * sizeof *msg->unknown_fields);
        for (size_t k = 0; k < msg->n_unknown_fields; k++) {
            ProtobufCMessageUnknownField *unknown = &msg->unknown_fields [k];
            unknown->tag = 1000 + s_below (fill, 1u << 20);
            unknown->wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
            unknown->len = 1 + s_below (fill, 9);
            unknown->data = s_alloc (fill, unknown->len);
            unknown->data [0] = (uint8_t) (unknown->len - 1);
        }
    }
    return msg;
}

static void
s_free (s_fill_t *fill)
{
    for (size_t i = 0; i < fill->count; i++) {
        free (fill->blocks [i]);
    }
    fill->count = 0;
}

//  One message: protobuf-c's bytes, then ours with the exact room, with
//  room to spare, and with a byte too few.
static void
s_compare (const ProtobufCMessage *msg, int round)
{
    size_t size = protobuf_c_message_get_packed_size (msg);
    uint8_t *theirs = malloc (size + 1);
    uint8_t *ours = malloc (size + 64);
    assert_non_null (theirs);
    assert_non_null (ours);
    assert_int_equal (protobuf_c_message_pack (msg, theirs), size);
    size_t n = bus_pb_encode (msg, ours, size);
    if (n != size || memcmp (ours, theirs, size) != 0) {
        fail_msg ("%s, round %d: %zu bytes, protobuf-c %zu", msg->descriptor->name, round, n, size);
    }
    assert_int_equal (bus_pb_encode (msg, ours, size + 64), size);
    assert_memory_equal (ours + 64, theirs, size);
    if (size > 0) {
        memset (ours, 0xee, size + 64);
        assert_true (bus_pb_encode (msg, ours + 1, size - 1) == SIZE_MAX);
        //  Nothing written outside the buffer it was given.
        assert_int_equal (ours [0], 0xee);
        assert_int_equal (ours [size], 0xee);
    }
    free (theirs);
    free (ours);
}

static void
test_every_type_at_random (void **state)
{
    (void) state;
    s_fill_t *fill = calloc (1, sizeof *fill);
    assert_non_null (fill);
    fill->state = 0x9e3779b97f4a7c15ull;
    for (size_t t = 0; t < sizeof s_types / sizeof s_types [0]; t++) {
        for (int round = 0; round < 400; round++) {
            ProtobufCMessage *msg = s_message (fill, s_types [t], 0);
            s_compare (msg, round);
            s_free (fill);
        }
    }
    free (fill);
}

//  The edges by hand: an empty message, a negative int32 (ten bytes), a
//  length of exactly 127 and 128, a frame of 70,000 bytes.
static void
test_edges (void **state)
{
    (void) state;
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    s_compare (&frame.base, 0);
    uint8_t room [16];
    assert_int_equal (bus_pb_encode (&frame.base, room, 0), 0);

    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_SEND;
    frame.send = &send;
    static uint8_t payload [70000];
    memset (payload, 'x', sizeof payload);
    size_t lengths [] = { 0, 1, 126, 127, 128, 16383, 16384, sizeof payload };
    for (size_t i = 0; i < sizeof lengths / sizeof lengths [0]; i++) {
        send.has_payload = true;
        send.payload.data = payload;
        send.payload.len = lengths [i];
        s_compare (&frame.base, (int) i);
    }
    Bulkhead__V1__Error error = BULKHEAD__V1__ERROR__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_ERROR;
    frame.error = &error;
    s_compare (&frame.base, 100);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_every_type_at_random),
        cmocka_unit_test (test_edges),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
