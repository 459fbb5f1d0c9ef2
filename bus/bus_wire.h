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

//  A Bundle being gathered: encoded frames named one by one (borrowed:
//  they must stay valid until reset), then written in one pass as the
//  bytes protobuf-c packs for a Bundle of them. The caller writes it
//  straight into the message it sends, so bundling adds no copy: the
//  frames are copied once, as sending them one by one would.
typedef struct {
    const uint8_t *data;
    size_t size;
} bus_bundle_part_t;

typedef struct {
    bus_bundle_part_t *parts;
    size_t count;
    size_t alloc;
    size_t body;                        //  bytes of the Bundle message so far
} bus_bundle_t;

//  The most bytes of one Bundle the bus sends, whatever a peer offers.
#define BUS_BUNDLE_MAX          ((size_t) 256 << 10)

//  The most frames in one Bundle an agent sends (the C client keeps to
//  it; the bus refuses a bigger one whole): one bundle is then at most
//  about one batch of the bus's work, whatever max_frame allows.
#define BUS_BUNDLE_FRAMES       1024

//  The size of the sealed frame with one more frame of size (count 0:
//  that frame alone).
size_t
    bus_bundle_with (const bus_bundle_t *self, size_t size);

//  Names one more encoded frame. 0, or -1 when memory is out.
int
    bus_bundle_add (bus_bundle_t *self, const void *frame, size_t size);

//  The size of the sealed frame: a Frame with the Bundle, or for one frame
//  that frame alone; 0 for none.
size_t
    bus_bundle_size (const bus_bundle_t *self);

//  Writes the sealed frame, bus_bundle_size bytes, to out.
void
    bus_bundle_write (const bus_bundle_t *self, uint8_t *out);

//  Forgets the frames; the list is kept unless it grew past keep entries.
void
    bus_bundle_reset (bus_bundle_t *self, size_t keep);

//  A Bundle an agent sent, read in place: its frames are ranges of the
//  bytes received (no copy, no allocation, unlike protobuf-c's decoder,
//  which copies every bytes field and allocates per member).
typedef struct {
    const uint8_t *data;
    size_t pos;
    size_t end;
} bus_bundle_reader_t;

//  True when data is a Frame whose body is a Bundle. Its first byte says
//  so: a Frame's only field is its body, so the canonical encoding of any
//  other body starts with another tag.
bool
    bus_wire_is_bundle (const void *data, size_t size);

//  Checks that data is exactly what protobuf-c packs for a Frame holding a
//  Bundle of at least one frame (minimal lengths, no other field, nothing
//  after), then sets reader at its first frame and *count to how many.
//  0, or -1 with EMALFORMED and a sentence saying what is wrong. The frames
//  themselves are not looked at: each is decoded as any frame is.
int
    bus_bundle_open (bus_bundle_reader_t *reader, const void *data, size_t size,
                     size_t *count, bus_error_t *err);

//  The next frame of an opened bundle: true and its bytes, false at the end.
bool
    bus_bundle_next (bus_bundle_reader_t *reader, const uint8_t **frame, size_t *size);

#endif
