/*  bus_merkle.h: the log as a Merkle tree (RFC 9162's shape, section 2.1).

    Every record is a leaf; leaf index = seq - 1, tree size = records
    covered. The hash is BLAKE2b-256 (libsodium's crypto_generichash), with
    RFC 9162's domain separation:

        leaf hash  = BLAKE2b-256 (0x00 || record bytes without fields 19, 42)
        node hash  = BLAKE2b-256 (0x01 || left || right)
        empty tree = BLAKE2b-256 ("")

    Why BLAKE2b and not SHA-256: it is the hash the log already uses for
    payload digests, policy hashes and fingerprints (one primitive to trust),
    libsodium has a vectorised BLAKE2b but only a portable SHA-256 (no SHA-NI
    path), and verify hashes every record: on this machine BLAKE2b is the
    faster of the two. Python's hashlib has it (blake2b (digest_size=32)),
    so an auditor's checker stays a few lines.

    The leaf hash leaves out the payload (field 19) and payload_purged_us
    (field 42): the record binds its payload through payload_digest (18), so
    `bulkhead purge` may drop the bytes of an old payload and every proof
    and checkpoint still verifies.

    The tree is kept incrementally as a frontier: the roots of the perfect
    subtrees that make up the first `size` leaves, one per set bit of size
    (at most 64 hashes). Appending a leaf costs amortised one node hash; the
    root is at most 63 more. Nothing here is O(n) except the proof builders,
    which read the leaves they need through a callback.
*/
#ifndef BUS_MERKLE_H
#define BUS_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_MERKLE_HASH     32
#define BUS_MERKLE_DEPTH    64
#define BUS_MERKLE_PROOF_MAX 128       //  hashes in any proof of a 64-bit tree

//  The leaf hash of one stored record (its protobuf bytes). 0, or -1 if the
//  bytes are not a well-formed protobuf message (nothing is then in out).
int
    bus_record_leaf_hash (const uint8_t *bytes, size_t len, uint8_t out [32]);

//  BLAKE2b-256 (0x01 || left || right).
void
    bus_merkle_node (uint8_t out [32], const uint8_t left [32], const uint8_t right [32]);

typedef struct {
    uint64_t size;
    uint8_t nodes [BUS_MERKLE_DEPTH][BUS_MERKLE_HASH];  //  nodes [i]: bit i of size
} bus_tree_t;

void
    bus_tree_init (bus_tree_t *self);
void
    bus_tree_append (bus_tree_t *self, const uint8_t leaf [32]);
void
    bus_tree_root (const bus_tree_t *self, uint8_t out [32]);
//  Appends 2^level leaves at once, given the root of their perfect subtree
//  (as bus_merkle_node makes it from them): the same tree as appending each
//  of them, for a tree whose size is a multiple of 2^level (asserted), at
//  the cost of the carries only. The size's bits below level are zero, so
//  the subtree lands at nodes [level] and merges upward like one leaf does
//  at nodes [0]; RFC 9162's MTH splits at the largest power of two below
//  n, which is where these aligned subtrees sit.
void
    bus_tree_append_subtree (bus_tree_t *self, unsigned level, const uint8_t root [32]);

//  Persisted form: 8 bytes big-endian size, then the popcount (size) hashes
//  from the lowest bit up. encode returns the length written (out holds at
//  least 8 + 64 * 32 bytes); decode 0, or -1 if the bytes are not one.
size_t
    bus_tree_encode (const bus_tree_t *self, uint8_t *out);
int
    bus_tree_decode (bus_tree_t *self, const uint8_t *data, size_t len);

//  Where proof builders get leaf hashes: 0 and out, or -1 (they stop).
typedef int (bus_leaf_fn) (void *arg, uint64_t index, uint8_t out [32]);

//  RFC 9162 2.1.3.1: the inclusion proof of leaf index in the tree of the
//  first size leaves. 0 and *count hashes in path, or -1.
int
    bus_merkle_inclusion (uint64_t index, uint64_t size, bus_leaf_fn *leaf, void *arg,
                          uint8_t path [][32], size_t *count);

//  RFC 9162 2.1.4.1: the consistency proof from the tree of size first to
//  that of size second (0 < first <= second). 0 and *count, or -1.
int
    bus_merkle_consistency (uint64_t first, uint64_t second, bus_leaf_fn *leaf, void *arg,
                            uint8_t path [][32], size_t *count);

//  RFC 9162 2.1.3.2 and 2.1.4.2: true if the proof holds.
bool
    bus_merkle_check_inclusion (uint64_t index, uint64_t size, const uint8_t leaf [32],
                                const uint8_t path [][32], size_t count,
                                const uint8_t root [32]);
bool
    bus_merkle_check_consistency (uint64_t first, uint64_t second,
                                  const uint8_t first_root [32], const uint8_t second_root [32],
                                  const uint8_t path [][32], size_t count);

#endif
