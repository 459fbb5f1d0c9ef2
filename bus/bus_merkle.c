/*  bus_merkle.c: leaf hashes, the frontier, and RFC 9162 proofs. */
#include "bus_merkle.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

//  Field numbers the leaf hash leaves out (record.proto).
#define S_FIELD_PAYLOAD         19
#define S_FIELD_PAYLOAD_PURGED  42

static int
s_varint (const uint8_t *p, size_t len, size_t *pos, uint64_t *value)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) {
            return -1;
        }
        uint8_t b = p [(*pos)++];
        v |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return 0;
        }
    }
    return -1;
}

int
bus_record_leaf_hash (const uint8_t *bytes, size_t len, uint8_t out [32])
{
    //  One pass over the wire format: every field is hashed as it is stored
    //  except the two left out, so the hash is of the bytes a record would
    //  have had without them (protobuf-c writes fields in number order, and
    //  our records are canonical, so this is also its re-encoding).
    crypto_generichash_state state;
    crypto_generichash_init (&state, NULL, 0, BUS_MERKLE_HASH);
    static const uint8_t leaf_prefix = 0x00;
    crypto_generichash_update (&state, &leaf_prefix, 1);
    size_t pos = 0, span = 0;
    while (pos < len) {
        size_t start = pos;
        uint64_t tag, n;
        if (s_varint (bytes, len, &pos, &tag) || (tag >> 3) == 0) {
            return -1;
        }
        switch (tag & 7) {
            case 0:
                if (s_varint (bytes, len, &pos, &n)) {
                    return -1;
                }
                break;
            case 1:
                pos += 8;
                break;
            case 5:
                pos += 4;
                break;
            case 2:
                if (s_varint (bytes, len, &pos, &n) || n > len - pos) {
                    return -1;
                }
                pos += (size_t) n;
                break;
            default:
                return -1;          //  groups and unknown wire types
        }
        if (pos > len) {
            return -1;
        }
        uint64_t field = tag >> 3;
        if (field == S_FIELD_PAYLOAD || field == S_FIELD_PAYLOAD_PURGED) {
            if (start > span) {
                crypto_generichash_update (&state, bytes + span, start - span);
            }
            span = pos;
        }
    }
    if (len > span) {
        crypto_generichash_update (&state, bytes + span, len - span);
    }
    crypto_generichash_final (&state, out, BUS_MERKLE_HASH);
    return 0;
}

void
bus_merkle_node (uint8_t out [32], const uint8_t left [32], const uint8_t right [32])
{
    uint8_t buf [1 + 2 * BUS_MERKLE_HASH];
    buf [0] = 0x01;
    memcpy (buf + 1, left, BUS_MERKLE_HASH);
    memcpy (buf + 1 + BUS_MERKLE_HASH, right, BUS_MERKLE_HASH);
    crypto_generichash (out, BUS_MERKLE_HASH, buf, sizeof buf, NULL, 0);
}

void
bus_tree_init (bus_tree_t *self)
{
    memset (self, 0, sizeof *self);
}

void
bus_tree_append (bus_tree_t *self, const uint8_t leaf [32])
{
    bus_tree_append_subtree (self, 0, leaf);
}

void
bus_tree_append_subtree (bus_tree_t *self, unsigned level, const uint8_t root [32])
{
    assert (level < BUS_MERKLE_DEPTH);
    uint64_t unit = (uint64_t) 1 << level;
    assert ((self->size & (unit - 1)) == 0);
    //  Like a binary counter: each carry merges two equal subtrees.
    uint8_t h [BUS_MERKLE_HASH];
    memcpy (h, root, BUS_MERKLE_HASH);
    unsigned i = level;
    while (self->size & ((uint64_t) 1 << i)) {
        bus_merkle_node (h, self->nodes [i], h);
        i++;
    }
    memcpy (self->nodes [i], h, BUS_MERKLE_HASH);
    self->size += unit;
}

void
bus_tree_root (const bus_tree_t *self, uint8_t out [32])
{
    if (self->size == 0) {
        crypto_generichash (out, BUS_MERKLE_HASH, NULL, 0, NULL, 0);
        return;
    }
    //  Fold from the smallest subtree (rightmost) up to the largest.
    bool have = false;
    uint8_t r [BUS_MERKLE_HASH];
    for (int i = 0; i < BUS_MERKLE_DEPTH; i++) {
        if (!(self->size & ((uint64_t) 1 << i))) {
            continue;
        }
        if (have) {
            bus_merkle_node (r, self->nodes [i], r);
        }
        else {
            memcpy (r, self->nodes [i], BUS_MERKLE_HASH);
            have = true;
        }
    }
    memcpy (out, r, BUS_MERKLE_HASH);
}

size_t
bus_tree_encode (const bus_tree_t *self, uint8_t *out)
{
    uint64_t size = self->size;
    for (int i = 7; i >= 0; i--) {
        out [i] = (uint8_t) size;
        size >>= 8;
    }
    size_t len = 8;
    for (int i = 0; i < BUS_MERKLE_DEPTH; i++) {
        if (self->size & ((uint64_t) 1 << i)) {
            memcpy (out + len, self->nodes [i], BUS_MERKLE_HASH);
            len += BUS_MERKLE_HASH;
        }
    }
    return len;
}

int
bus_tree_decode (bus_tree_t *self, const uint8_t *data, size_t len)
{
    if (len < 8) {
        return -1;
    }
    bus_tree_init (self);
    for (int i = 0; i < 8; i++) {
        self->size = self->size << 8 | data [i];
    }
    size_t want = 8 + (size_t) __builtin_popcountll (self->size) * BUS_MERKLE_HASH;
    if (len != want) {
        return -1;
    }
    size_t pos = 8;
    for (int i = 0; i < BUS_MERKLE_DEPTH; i++) {
        if (self->size & ((uint64_t) 1 << i)) {
            memcpy (self->nodes [i], data + pos, BUS_MERKLE_HASH);
            pos += BUS_MERKLE_HASH;
        }
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Proofs, from the RFC's recursive definitions

//  MTH (D[lo:hi]): the root of the leaves in that range.
static int
s_range_root (uint64_t lo, uint64_t hi, bus_leaf_fn *leaf, void *arg, uint8_t out [32])
{
    bus_tree_t tree;
    bus_tree_init (&tree);
    for (uint64_t i = lo; i < hi; i++) {
        uint8_t h [BUS_MERKLE_HASH];
        if (leaf (arg, i, h)) {
            return -1;
        }
        bus_tree_append (&tree, h);
    }
    bus_tree_root (&tree, out);
    return 0;
}

//  The largest power of two smaller than n (n > 1).
static uint64_t
s_split (uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n) {
        k <<= 1;
    }
    return k;
}

typedef struct {
    bus_leaf_fn *leaf;
    void *arg;
    uint8_t (*path) [32];
    size_t count;
} s_proof_t;

static int
s_push_root (s_proof_t *p, uint64_t lo, uint64_t hi)
{
    if (p->count >= BUS_MERKLE_PROOF_MAX) {
        return -1;
    }
    return s_range_root (lo, hi, p->leaf, p->arg, p->path [p->count++]);
}

//  PATH (m, D[lo:lo+n])
static int
s_path (s_proof_t *p, uint64_t m, uint64_t lo, uint64_t n)
{
    if (n <= 1) {
        return 0;
    }
    uint64_t k = s_split (n);
    if (m < k) {
        return s_path (p, m, lo, k) || s_push_root (p, lo + k, lo + n)? -1: 0;
    }
    return s_path (p, m - k, lo + k, n - k) || s_push_root (p, lo, lo + k)? -1: 0;
}

//  SUBPROOF (m, D[lo:lo+n], b)
static int
s_subproof (s_proof_t *p, uint64_t m, uint64_t lo, uint64_t n, bool b)
{
    if (m == n) {
        return b? 0: s_push_root (p, lo, lo + n);
    }
    uint64_t k = s_split (n);
    if (m <= k) {
        return s_subproof (p, m, lo, k, b) || s_push_root (p, lo + k, lo + n)? -1: 0;
    }
    return s_subproof (p, m - k, lo + k, n - k, false) || s_push_root (p, lo, lo + k)? -1: 0;
}

int
bus_merkle_inclusion (uint64_t index, uint64_t size, bus_leaf_fn *leaf, void *arg,
                      uint8_t path [][32], size_t *count)
{
    if (index >= size) {
        return -1;
    }
    s_proof_t p = { leaf, arg, path, 0 };
    if (s_path (&p, index, 0, size)) {
        return -1;
    }
    *count = p.count;
    return 0;
}

int
bus_merkle_consistency (uint64_t first, uint64_t second, bus_leaf_fn *leaf, void *arg,
                        uint8_t path [][32], size_t *count)
{
    if (first == 0 || first > second) {
        return -1;
    }
    s_proof_t p = { leaf, arg, path, 0 };
    if (s_subproof (&p, first, 0, second, true)) {
        return -1;
    }
    *count = p.count;
    return 0;
}

bool
bus_merkle_check_inclusion (uint64_t index, uint64_t size, const uint8_t leaf [32],
                            const uint8_t path [][32], size_t count, const uint8_t root [32])
{
    if (index >= size) {
        return false;
    }
    uint64_t fn = index, sn = size - 1;
    uint8_t r [BUS_MERKLE_HASH];
    memcpy (r, leaf, BUS_MERKLE_HASH);
    for (size_t i = 0; i < count; i++) {
        if (sn == 0) {
            return false;
        }
        if ((fn & 1) || fn == sn) {
            bus_merkle_node (r, path [i], r);
            if (!(fn & 1)) {
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        }
        else {
            bus_merkle_node (r, r, path [i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp (r, root, BUS_MERKLE_HASH) == 0;
}

bool
bus_merkle_check_consistency (uint64_t first, uint64_t second,
                              const uint8_t first_root [32], const uint8_t second_root [32],
                              const uint8_t path [][32], size_t count)
{
    if (first == 0 || first > second) {
        return false;
    }
    if (first == second) {
        return count == 0 && sodium_memcmp (first_root, second_root, BUS_MERKLE_HASH) == 0;
    }
    //  A first tree that is a perfect subtree is its own first node.
    const uint8_t *nodes [BUS_MERKLE_PROOF_MAX + 1];
    size_t n = 0;
    if ((first & (first - 1)) == 0) {
        nodes [n++] = first_root;
    }
    if (count + n > BUS_MERKLE_PROOF_MAX + 1 || count + n == 0) {
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        nodes [n++] = path [i];
    }
    uint64_t fn = first - 1, sn = second - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr [BUS_MERKLE_HASH], sr [BUS_MERKLE_HASH];
    memcpy (fr, nodes [0], BUS_MERKLE_HASH);
    memcpy (sr, nodes [0], BUS_MERKLE_HASH);
    for (size_t i = 1; i < n; i++) {
        if (sn == 0) {
            return false;
        }
        if ((fn & 1) || fn == sn) {
            bus_merkle_node (fr, nodes [i], fr);
            bus_merkle_node (sr, nodes [i], sr);
            if (!(fn & 1)) {
                while (!(fn & 1) && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        }
        else {
            bus_merkle_node (sr, sr, nodes [i]);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0 && sodium_memcmp (fr, first_root, BUS_MERKLE_HASH) == 0
        && sodium_memcmp (sr, second_root, BUS_MERKLE_HASH) == 0;
}
