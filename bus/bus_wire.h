/*  bus_wire.h: one frame <-> one bulkhead.v1.Frame, safely.

    Decoding is bounded: protobuf-c allocates from an arena of fixed size
    owned by the decoder, so a small frame cannot make the process allocate
    much more than the arena (protobuf-c's decoder amplifies memory). A
    decoded frame borrows the arena and is valid until the next decode with
    the same decoder.

    A frame is accepted only if it re-encodes to exactly its own length. That
    one check refuses strings with an embedded NUL (which C would read
    short: "agentB\0evil"), duplicated fields and non-minimal encodings.
    Unknown fields, which protobuf-c keeps and would re-emit, are refused at
    the frame and body levels: the only levels of what agents may send. The
    nested types (Reach, Approval, Pending) travel only from the bus, and the
    bus refuses those bodies from agents.
*/
#ifndef BUS_WIRE_H
#define BUS_WIRE_H

#include "bulkhead.pb-c.h"
#include "bus_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bus_wire bus_wire_t;

//  A decoder whose arena holds at most arena_size bytes of decoded data.
bus_wire_t *
    bus_wire_new (size_t arena_size);
void
    bus_wire_destroy (bus_wire_t **self_p);

//  Decodes one frame. 0 and *frame (borrowed, see above) or -1 with
//  EMALFORMED and a sentence saying what is wrong.
int
    bus_wire_decode (bus_wire_t *self, const void *data, size_t size,
                     Bulkhead__V1__Frame **frame, bus_error_t *err);

//  Packs a frame into self's output buffer; *data is valid until the next
//  encode or decode (a decode re-encodes into the same buffer). Returns 0, or -1 with ENOMEM.
int
    bus_wire_encode (bus_wire_t *self, const Bulkhead__V1__Frame *frame,
                     const uint8_t **data, size_t *size, bus_error_t *err);

//  Packs a frame into a new malloc'd buffer (caller frees).
uint8_t *
    bus_wire_pack (const Bulkhead__V1__Frame *frame, size_t *size);

//  Field checks for what agents send. Text is valid UTF-8 with no control
//  characters but tab and newline (C0, DEL and C1 are refused); an id is
//  1..max printable ASCII bytes.
bool
    bus_text_valid (const char *text, size_t max);
bool
    bus_id_valid (const char *id, size_t max);

//  The name of a frame's body ("send", "hello", ...), for errors and logs.
const char *
    bus_wire_body_name (const Bulkhead__V1__Frame *frame);

#endif
