/*  bus_pb.h: protobuf encoding in one pass, from the end backward.

    protobuf-c packs a message in two passes: one to size it (so the caller
    can allocate), one to write it; a length-prefixed field inside sizes its
    message again. The bus encodes every frame it sends, every record it
    appends, and re-encodes every frame it receives to check that it is
    canonical, so those passes were a tenth of its work per message.

    Written from the end backward, a nested message is written before its
    length is needed: one pass, no sizing, and a bound on the buffer instead
    of an unchecked write. The bytes are those protobuf_c_message_pack
    writes (protobuf-c 1.4: fields in the descriptor's order, which is by
    number; proto2 repeated scalars unpacked unless [packed]; optional
    strings and messages left out when NULL or their default; unknown
    fields last). tests/test_pb.c holds it to protobuf-c's bytes for every
    message type of both schemas, filled at random.
*/
#ifndef BUS_PB_H
#define BUS_PB_H

#include <protobuf-c/protobuf-c.h>

#include <stddef.h>
#include <stdint.h>

//  Encodes msg into the last bytes of buf [0, cap): on success returns its
//  length n, the encoding being buf + cap - n .. buf + cap. Returns
//  SIZE_MAX, having written only inside buf, when it needs more than cap.
size_t
    bus_pb_encode (const ProtobufCMessage *msg, uint8_t *buf, size_t cap);

#endif
