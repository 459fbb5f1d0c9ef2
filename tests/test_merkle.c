/*  test_merkle.c: the tree (bus_merkle), checkpoints and signing keys
    (bus_checkpoint), and the store's tree and format (bus_store), against
    a plain recursive reference written from RFC 9162's definitions.
*/
#include "check.h"

#include "bus_checkpoint.h"
#include "bus_merkle.h"
#include "bus_store.h"
#include "bulkhead.pb-c.h"
#include "logfix.h"

#include <ftw.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_MAX 40

static uint8_t s_leaves [70][32];

//  MTH (D[lo:hi]) by the RFC's recursion, with nothing shared with
//  bus_merkle.c but the hash function.
static void
s_mth (uint64_t lo, uint64_t hi, uint8_t out [32])
{
    uint64_t n = hi - lo;
    if (n == 0) {
        crypto_generichash (out, 32, NULL, 0, NULL, 0);
        return;
    }
    if (n == 1) {
        memcpy (out, s_leaves [lo], 32);
        return;
    }
    uint64_t k = 1;
    while (k * 2 < n) {
        k *= 2;
    }
    uint8_t buf [65], left [32], right [32];
    s_mth (lo, lo + k, left);
    s_mth (lo + k, hi, right);
    buf [0] = 1;
    memcpy (buf + 1, left, 32);
    memcpy (buf + 33, right, 32);
    crypto_generichash (out, 32, buf, 65, NULL, 0);
}

static int
s_leaf (void *arg, uint64_t index, uint8_t out [32])
{
    (void) arg;
    memcpy (out, s_leaves [index], 32);
    return 0;
}

static int
s_setup_leaves (void **state)
{
    (void) state;
    for (int i = 0; i < 70; i++) {
        char text [24];
        snprintf (text, sizeof text, "leaf %d", i);
        crypto_generichash (s_leaves [i], 32, (uint8_t *) text, strlen (text), NULL, 0);
    }
    return 0;
}

static void
test_root_matches_reference (void **state)
{
    (void) state;
    bus_tree_t tree;
    bus_tree_init (&tree);
    for (uint64_t n = 0; n < 70; n++) {
        uint8_t want [32], have [32];
        s_mth (0, n, want);
        bus_tree_root (&tree, have);
        assert_memory_equal (want, have, 32);
        //  The persisted form gives back the same tree.
        uint8_t buf [8 + 64 * 32];
        bus_tree_t copy;
        size_t len = bus_tree_encode (&tree, buf);
        assert_int_equal (bus_tree_decode (&copy, buf, len), 0);
        bus_tree_root (&copy, have);
        assert_memory_equal (want, have, 32);
        assert_int_equal (bus_tree_decode (&copy, buf, len + 1), -1);
        bus_tree_append (&tree, s_leaves [n]);
    }
}

//  A perfect subtree appended whole is the tree of its leaves appended one
//  by one (verify appends a batch's subtree roots computed elsewhere).
static void
test_append_subtree (void **state)
{
    (void) state;
    for (unsigned level = 0; level <= 6; level++) {
        uint64_t unit = (uint64_t) 1 << level;
        for (uint64_t base = 0; base + unit <= 70; base += unit) {
            bus_tree_t one, whole;
            bus_tree_init (&one);
            for (uint64_t i = 0; i < base + unit; i++) {
                bus_tree_append (&one, s_leaves [i]);
            }
            bus_tree_init (&whole);
            for (uint64_t i = 0; i < base; i++) {
                bus_tree_append (&whole, s_leaves [i]);
            }
            uint8_t sub [32], want [32], have [32];
            s_mth (base, base + unit, sub);
            bus_tree_append_subtree (&whole, level, sub);
            assert_int_equal (whole.size, base + unit);
            s_mth (0, base + unit, want);
            bus_tree_root (&whole, have);
            assert_memory_equal (want, have, 32);
            //  The same frontier, so later appends agree too.
            uint8_t a [8 + 64 * 32], b [8 + 64 * 32];
            size_t len = bus_tree_encode (&one, a);
            assert_int_equal (bus_tree_encode (&whole, b), len);
            assert_memory_equal (a, b, len);
        }
    }
}

static void
test_inclusion_every_leaf (void **state)
{
    (void) state;
    uint8_t path [BUS_MERKLE_PROOF_MAX][32];
    size_t count;
    for (uint64_t n = 1; n <= N_MAX; n++) {
        uint8_t root [32];
        s_mth (0, n, root);
        for (uint64_t m = 0; m < n; m++) {
            assert_int_equal (bus_merkle_inclusion (m, n, s_leaf, NULL, path, &count), 0);
            assert_true (bus_merkle_check_inclusion (m, n, s_leaves [m],
                                                     (const uint8_t (*) [32]) path, count, root));
            //  Another leaf, another index, a flipped bit, a shorter path: no.
            assert_false (bus_merkle_check_inclusion (m, n, s_leaves [m + 1],
                                                      (const uint8_t (*) [32]) path, count, root));
            if (n > 1) {
                assert_false (bus_merkle_check_inclusion ((m + 1) % n, n, s_leaves [m],
                                                          (const uint8_t (*) [32]) path, count,
                                                          root));
                path [count - 1][5] ^= 1;
                assert_false (bus_merkle_check_inclusion (m, n, s_leaves [m],
                                                          (const uint8_t (*) [32]) path, count,
                                                          root));
                assert_false (bus_merkle_check_inclusion (m, n, s_leaves [m],
                                                          (const uint8_t (*) [32]) path,
                                                          count - 1, root));
            }
        }
    }
    assert_int_equal (bus_merkle_inclusion (5, 5, s_leaf, NULL, path, &count), -1);
}

static void
test_consistency_every_pair (void **state)
{
    (void) state;
    uint8_t path [BUS_MERKLE_PROOF_MAX][32];
    size_t count;
    for (uint64_t n = 1; n <= N_MAX; n++) {
        uint8_t second [32];
        s_mth (0, n, second);
        for (uint64_t m = 1; m <= n; m++) {
            uint8_t first [32];
            s_mth (0, m, first);
            assert_int_equal (bus_merkle_consistency (m, n, s_leaf, NULL, path, &count), 0);
            assert_true (bus_merkle_check_consistency (m, n, first, second,
                                                       (const uint8_t (*) [32]) path, count));
            //  A first tree that is not a prefix of the second: no.
            uint8_t other [32];
            memcpy (other, first, 32);
            other [0] ^= 1;
            assert_false (bus_merkle_check_consistency (m, n, other, second,
                                                        (const uint8_t (*) [32]) path, count));
            if (count > 0) {
                path [0][7] ^= 1;
                assert_false (bus_merkle_check_consistency (m, n, first, second,
                                                            (const uint8_t (*) [32]) path,
                                                            count));
            }
        }
    }
    assert_int_equal (bus_merkle_consistency (0, 3, s_leaf, NULL, path, &count), -1);
    assert_int_equal (bus_merkle_consistency (4, 3, s_leaf, NULL, path, &count), -1);
}

static size_t
s_pack (Bulkhead__V1__Record *rec, uint8_t *buf)
{
    return bulkhead__v1__record__pack (rec, buf);
}

//  The contract with purge: the leaf hash leaves out the payload (19) and
//  payload_purged_us (42), and nothing else.
static void
test_leaf_hash_without_payload (void **state)
{
    (void) state;
    uint8_t zeros [32] = { 0 }, digest [32] = { 1 };
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.seq = 7;
    rec.time_us = 123;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
    rec.prev_hash.data = zeros;
    rec.prev_hash.len = 32;
    rec.sender = "planner";
    rec.has_payload_digest = true;
    rec.payload_digest.data = digest;
    rec.payload_digest.len = 32;
    rec.has_verdict = true;
    rec.verdict = 1;
    rec.code = "OK";
    uint8_t buf [512], with [32], without [32], other [32];
    size_t len = s_pack (&rec, buf);
    assert_int_equal (bus_record_leaf_hash (buf, len, without), 0);
    //  The reference: 0x00 || the bytes of the record with no payload.
    uint8_t ref [513], want [32];
    ref [0] = 0;
    memcpy (ref + 1, buf, len);
    crypto_generichash (want, 32, ref, len + 1, NULL, 0);
    assert_memory_equal (want, without, 32);

    rec.has_payload = true;
    rec.payload.data = (uint8_t *) "the payload";
    rec.payload.len = 11;
    len = s_pack (&rec, buf);
    assert_int_equal (bus_record_leaf_hash (buf, len, with), 0);
    assert_memory_equal (with, without, 32);

    //  Field 42 (payload_purged_us, a varint), appended as purge would add it.
    buf [len++] = 0xd0;                 //  tag (42 << 3) | 0 as a varint
    buf [len++] = 0x02;
    buf [len++] = 0x80;
    buf [len++] = 0x01;
    assert_int_equal (bus_record_leaf_hash (buf, len, with), 0);
    assert_memory_equal (with, without, 32);

    //  Any other field changes it.
    rec.sender = "planneR";
    len = s_pack (&rec, buf);
    assert_int_equal (bus_record_leaf_hash (buf, len, other), 0);
    assert_memory_not_equal (other, without, 32);
    rec.sender = "planner";
    digest [3] = 9;
    len = s_pack (&rec, buf);
    assert_int_equal (bus_record_leaf_hash (buf, len, other), 0);
    assert_memory_not_equal (other, without, 32);

    //  Bytes that are not a message.
    assert_int_equal (bus_record_leaf_hash ((const uint8_t *) "\xff\xff\xff", 3, other), -1);
    assert_int_equal (bus_record_leaf_hash ((const uint8_t *) "\x0a\x05" "ab", 4, other), -1);
    assert_int_equal (bus_record_leaf_hash ((const uint8_t *) "\x0b", 1, other), -1);
}


//  --------------------------------------------------------------------------
//  Checkpoints and keys

static char s_dir [64];

static int
s_rm (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

static int
s_setup_dir (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/bulkhead-test-merkle-XXXXXX");
    return mkdtemp (s_dir)? 0: -1;
}

static int
s_teardown_dir (void **state)
{
    (void) state;
    nftw (s_dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static bus_checkpoint_t
s_checkpoint (void)
{
    bus_checkpoint_t c = { .size = 42, .time_us = 1764633600000000ULL, .number = 3 };
    snprintf (c.origin, sizeof c.origin, "bulkhead/test");
    snprintf (c.policy, sizeof c.policy, "%064d", 7);
    memset (c.root, 0xab, 32);
    memset (c.prev, 0xcd, 32);
    return c;
}

static void
test_checkpoint_signed_note (void **state)
{
    (void) state;
    bus_error_t err;
    bus_signer_t a, b, pub_a;
    CHECK_PASS (bus_signer_generate (&a, "bus-a", &err), err);
    CHECK_PASS (bus_signer_generate (&b, "bus-b", &err), err);
    char secret [128], public [128];
    snprintf (secret, sizeof secret, "%s/a.sign.key", s_dir);
    snprintf (public, sizeof public, "%s/a.sign.pub", s_dir);
    CHECK_PASS (bus_signer_save (&a, secret, public, &err), err);
    CHECK_FAIL (bus_signer_save (&a, secret, public, &err), err, BUS_EIO);
    CHECK_FAIL (bus_signer_load (&pub_a, public, true, &err), err, BUS_EKEY);
    CHECK_PASS (bus_signer_load (&pub_a, public, false, &err), err);
    assert_false (pub_a.has_secret);
    bus_signer_t loaded;
    CHECK_PASS (bus_signer_load (&loaded, secret, true, &err), err);
    assert_memory_equal (loaded.secret_key, a.secret_key, 64);
    //  A secret key others may read is refused, like a CURVE key.
    chmod (secret, 0640);
    CHECK_FAIL (bus_signer_load (&loaded, secret, true, &err), err, BUS_EKEY);
    CHECK_CONTAINS (err.text, "chmod 600");
    chmod (secret, 0600);

    bus_checkpoint_t c = s_checkpoint (), got;
    uint8_t digest [32], digest2 [32];
    bus_signer_t both [2] = { a, b };
    char *note = bus_checkpoint_sign (&c, both, 2, digest, &err);
    assert_non_null (note);
    CHECK_CONTAINS (note, "bulkhead/test\n42\n");
    CHECK_CONTAINS (note, "\n\n\xe2\x80\x94 bus-a ");
    CHECK_CONTAINS (note, "\n\xe2\x80\x94 bus-b ");
    size_t len = strlen (note), by = 9;
    //  Either key alone verifies it (the overlap of a rotation).
    CHECK_PASS (bus_checkpoint_open (&got, note, len, &pub_a, 1, &by, digest2, &err), err);
    assert_int_equal (by, 0);
    assert_memory_equal (digest, digest2, 32);
    assert_int_equal (got.size, 42);
    assert_int_equal (got.number, 3);
    assert_memory_equal (got.root, c.root, 32);
    assert_memory_equal (got.prev, c.prev, 32);
    assert_string_equal (got.policy, c.policy);
    CHECK_PASS (bus_checkpoint_open (&got, note, len, &b, 1, &by, digest2, &err), err);

    //  A key not listed: EKEY. A body changed after signing: EKEY.
    bus_signer_t other;
    CHECK_PASS (bus_signer_generate (&other, "bus-a", &err), err);
    CHECK_FAIL (bus_checkpoint_open (&got, note, len, &other, 1, &by, digest2, &err), err,
                BUS_EKEY);
    char *forged = strdup (note);
    forged [strlen ("bulkhead/test\n4")] = '3';             //  size 43
    CHECK_FAIL (bus_checkpoint_open (&got, forged, len, both, 2, &by, digest2, &err), err,
                BUS_EKEY);
    //  Not canonical (a leading zero), or no signature block: ECORRUPT.
    free (forged);
    size_t prefix = strlen ("bulkhead/test\n");
    forged = malloc (len + 2);
    memcpy (forged, note, prefix);
    forged [prefix] = '0';
    memcpy (forged + prefix + 1, note + prefix, len - prefix + 1);
    CHECK_FAIL (bus_checkpoint_open (&got, forged, len + 1, both, 2, &by, digest2, &err), err,
                BUS_ECORRUPT);
    CHECK_FAIL (bus_checkpoint_open (&got, "bulkhead/test\n42\n", 17, both, 2, &by, digest2, &err),
                err, BUS_ECORRUPT);
    free (forged);

    //  Files: written once, never over an existing one; the last number.
    CHECK_PASS (bus_checkpoint_write (s_dir, 3, note, &err), err);
    CHECK_FAIL (bus_checkpoint_write (s_dir, 3, note, &err), err, BUS_ELOGFAIL);
    uint64_t last = 0;
    CHECK_PASS (bus_checkpoint_last (s_dir, &last, &err), err);
    assert_int_equal (last, 3);
    char *back = NULL;
    size_t back_len = 0;
    assert_int_equal (bus_checkpoint_read (s_dir, 3, &back, &back_len, &err), 0);
    assert_string_equal (back, note);
    free (back);
    assert_int_equal (bus_checkpoint_read (s_dir, 2, &back, &back_len, &err), 1);
    free (note);
}


//  --------------------------------------------------------------------------
//  The store: the tree it keeps, and its format

static void
test_store_tree_and_format (void **state)
{
    (void) state;
    bus_error_t err;
    char dir [128];
    snprintf (dir, sizeof dir, "%s/data", s_dir);
    bus_store_t *store;
    CHECK_PASS (bus_store_open (&store, dir, NULL, &err), err);
    assert_int_equal (bus_store_format (store), BUS_STORE_FORMAT);
    bus_tree_t ref;
    bus_tree_init (&ref);
    for (int i = 0; i < 25; i++) {
        Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
        rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_BUS;
        rec.event = "x";
        CHECK_PASS (bus_store_append (store, &rec, &err), err);
        uint8_t *raw;
        size_t len;
        if (i % 7 == 6) {
            CHECK_PASS (bus_store_commit (store, &err), err);
        }
        (void) raw;
        (void) len;
    }
    CHECK_PASS (bus_store_commit (store, &err), err);
    bus_store_destroy (&store);
    //  The frontier kept in the same commits is the tree of the records.
    for (uint64_t seq = 1; seq <= 25; seq++) {
        uint8_t *raw, leaf [32];
        size_t len;
        assert_int_equal (logfix_get (dir, seq, &raw, &len), 0);
        assert_int_equal (bus_record_leaf_hash (raw, len, leaf), 0);
        bus_tree_append (&ref, leaf);
        free (raw);
    }
    CHECK_PASS (bus_store_open (&store, dir, NULL, &err), err);
    bus_tree_t kept;
    bus_store_tree (store, &kept);
    uint8_t a [32], b [32];
    bus_tree_root (&kept, a);
    bus_tree_root (&ref, b);
    assert_int_equal (kept.size, 25);
    assert_memory_equal (a, b, 32);
    //  A batch that is dropped takes its leaves with it.
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_BUS;
    CHECK_PASS (bus_store_append (store, &rec, &err), err);
    bus_store_destroy (&store);
    CHECK_PASS (bus_store_open (&store, dir, NULL, &err), err);
    bus_store_tree (store, &kept);
    assert_int_equal (kept.size, 25);
    uint64_t count;
    CHECK_PASS (bus_store_verify (store, &count, &err), err);
    assert_int_equal (count, 25);
    bus_store_destroy (&store);

    //  A format this code does not know: refused, saying so.
    assert_int_equal (logfix_meta (dir, BUS_META_FORMAT, "9"), 0);
    CHECK_FAIL (bus_store_open (&store, dir, NULL, &err), err, BUS_EVERSION);
    CHECK_CONTAINS (err.text, "format '9' is unknown");
}

//  A format 1 data dir (as main made it before the tree): readable,
//  refused for writing unless upgraded, and upgraded without rewriting a
//  record; the chain goes on from it by leaf hash.
static void
test_store_upgrade_format_1 (void **state)
{
    (void) state;
    bus_error_t err;
    char dir [128];
    snprintf (dir, sizeof dir, "%s/v1", s_dir);
    assert_int_equal (logfix_v1 (dir, 12), 0);
    uint8_t *before;
    size_t before_len;
    assert_int_equal (logfix_get (dir, 12, &before, &before_len), 0);

    bus_store_t *store;
    bus_store_options_t ro = { .read_only = true };
    CHECK_PASS (bus_store_open (&store, dir, &ro, &err), err);
    assert_int_equal (bus_store_format (store), 1);
    uint64_t count;
    CHECK_PASS (bus_store_verify (store, &count, &err), err);
    assert_int_equal (count, 12);
    bus_store_destroy (&store);

    CHECK_FAIL (bus_store_open (&store, dir, NULL, &err), err, BUS_EVERSION);
    CHECK_CONTAINS (err.text, "bulkhead migrate");
    bus_store_options_t up = { .upgrade = true };
    CHECK_PASS (bus_store_open (&store, dir, &up, &err), err);
    assert_true (bus_store_upgraded (store));
    assert_int_equal (bus_store_format (store), BUS_STORE_FORMAT);
    assert_int_equal (bus_store_chain_from (store), 13);
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_BUS;
    rec.event = "after the upgrade";
    CHECK_PASS (bus_store_append (store, &rec, &err), err);
    CHECK_PASS (bus_store_commit (store, &err), err);
    CHECK_PASS (bus_store_verify (store, &count, &err), err);
    assert_int_equal (count, 13);
    bus_store_destroy (&store);

    uint8_t *after, *next, leaf [32];
    size_t after_len, next_len;
    assert_int_equal (logfix_get (dir, 12, &after, &after_len), 0);
    assert_int_equal (after_len, before_len);
    assert_memory_equal (after, before, before_len);            //  never rewritten
    assert_int_equal (logfix_get (dir, 13, &next, &next_len), 0);
    Bulkhead__V1__Record *r13 = bulkhead__v1__record__unpack (NULL, next_len, next);
    assert_non_null (r13);
    bus_record_leaf_hash (after, after_len, leaf);
    assert_memory_equal (r13->prev_hash.data, leaf, 32);
    bulkhead__v1__record__free_unpacked (r13, NULL);
    free (before);
    free (after);
    free (next);

    //  Opened again: no second upgrade, the tree goes on.
    CHECK_PASS (bus_store_open (&store, dir, NULL, &err), err);
    assert_false (bus_store_upgraded (store));
    bus_tree_t kept;
    bus_store_tree (store, &kept);
    assert_int_equal (kept.size, 13);
    bus_store_destroy (&store);
}

int
main (void)
{
    if (sodium_init () < 0) {
        return 1;
    }
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup (test_root_matches_reference, s_setup_leaves),
        cmocka_unit_test_setup (test_append_subtree, s_setup_leaves),
        cmocka_unit_test_setup (test_inclusion_every_leaf, s_setup_leaves),
        cmocka_unit_test_setup (test_consistency_every_pair, s_setup_leaves),
        cmocka_unit_test (test_leaf_hash_without_payload),
        cmocka_unit_test_setup_teardown (test_checkpoint_signed_note, s_setup_dir, s_teardown_dir),
        cmocka_unit_test_setup_teardown (test_store_tree_and_format, s_setup_dir, s_teardown_dir),
        cmocka_unit_test_setup_teardown (test_store_upgrade_format_1, s_setup_dir, s_teardown_dir),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
