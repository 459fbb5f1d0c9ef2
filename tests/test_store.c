/*  test_store.c: the durable log (bus_store), against real LMDB files in a
    fresh temporary directory per test.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_store.h"
#include "bulkhead.pb-c.h"

#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIB 1024
#define MIB (1024 * 1024)

#define SEND    BULKHEAD__V1__RECORD_KIND__RECORD_SEND
#define SESSION BULKHEAD__V1__RECORD_KIND__RECORD_SESSION
#define DELIVERED BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
#define QUEUED  BULKHEAD__V1__VERDICT__VERDICT_QUEUED
#define HELD    BULKHEAD__V1__VERDICT__VERDICT_HELD
#define DENIED  BULKHEAD__V1__VERDICT__VERDICT_DENIED

//  Every test declares `bus_error_t err`; these print its name and text.
#define PASS(call) do { \
    if ((call) != 0) { \
        print_error ("%s: %s %s\n", #call, bus_errname (err.code), err.text); \
        fail (); \
    } \
} while (0)

#define FAIL(call, want) do { \
    memset (&err, 0, sizeof err); \
    assert_int_equal ((call), -1); \
    assert_string_equal (bus_errname (err.code), bus_errname (want)); \
} while (0)

static int
s_setup (void **state)
{
    char *dir = strdup ("/tmp/bulkhead-test-store-XXXXXX");
    assert_non_null (dir);
    assert_non_null (mkdtemp (dir));
    *state = dir;
    return 0;
}

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove (path);
}

static int
s_teardown (void **state)
{
    nftw (*state, s_remove, 8, FTW_DEPTH | FTW_PHYS);
    free (*state);
    return 0;
}

static bus_store_t *
s_open (const char *dir, size_t map_initial, size_t map_max)
{
    bus_store_options_t options = { map_initial, map_max, false, false, 0 };
    bus_store_t *store = NULL;
    bus_error_t err;
    PASS (bus_store_open (&store, dir, &options, &err));
    return store;
}

//  Appends one record and returns its seq.
static uint64_t
s_append (bus_store_t *store, Bulkhead__V1__RecordKind kind,
          const char *sender, const char *recipient, const char *message_id,
          uint32_t verdict, const char *payload)
{
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = kind;
    rec.sender = (char *) sender;
    rec.recipient = (char *) recipient;
    rec.message_id = (char *) message_id;
    rec.has_verdict = verdict != 0;
    rec.verdict = verdict;
    if (payload) {
        rec.has_payload = true;
        rec.payload.data = (uint8_t *) payload;
        rec.payload.len = strlen (payload);
    }
    bus_error_t err;
    PASS (bus_store_append (store, &rec, &err));
    assert_int_equal (rec.seq, bus_store_last_seq (store));
    assert_true (rec.time_us > 0);
    return rec.seq;
}

static uint64_t
s_verify (bus_store_t *store)
{
    uint64_t count = 0;
    bus_error_t err;
    PASS (bus_store_verify (store, &count, &err));
    return count;
}

//  The leaf hash of record seq (what the next record's prev_hash names).
static void
s_stored_hash (bus_store_t *store, uint64_t seq, uint8_t hash [32])
{
    uint8_t key [8];
    for (int i = 0; i < 8; i++) {
        key [i] = (uint8_t) (seq >> (56 - 8 * i));
    }
    void *raw;
    size_t raw_len;
    bus_error_t err;
    PASS (bus_store_get (store, BUS_DB_LOG, key, 8, &raw, &raw_len, &err));
    PASS (bus_record_leaf_hash (raw, raw_len, hash));
    free (raw);
}

static void
test_append_reopen (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    assert_int_equal (bus_store_last_seq (store), 0);
    assert_int_equal (s_verify (store), 0);
    for (int i = 0; i < 5; i++) {
        s_append (store, i % 2? SESSION: SEND, "a", "b", NULL, DENIED, "x");
    }
    PASS (bus_store_commit (store, &err));
    Bulkhead__V1__Record *rec;
    PASS (bus_store_record (store, 1, &rec, &err));
    static const uint8_t zeros [32];
    assert_int_equal (rec->prev_hash.len, 32);
    assert_memory_equal (rec->prev_hash.data, zeros, 32);
    bulkhead__v1__record__free_unpacked (rec, NULL);
    bus_store_destroy (&store);
    assert_null (store);

    store = s_open (*state, 0, 0);
    assert_int_equal (bus_store_last_seq (store), 5);
    uint8_t hash [32];
    s_stored_hash (store, 5, hash);
    assert_int_equal (s_append (store, SEND, "a", "b", "m", QUEUED, NULL), 6);
    PASS (bus_store_commit (store, &err));
    PASS (bus_store_record (store, 6, &rec, &err));
    assert_int_equal (rec->seq, 6);
    assert_memory_equal (rec->prev_hash.data, hash, 32);
    bulkhead__v1__record__free_unpacked (rec, NULL);
    assert_int_equal (bus_store_record (store, 7, &rec, &err), 1);
    assert_int_equal (s_verify (store), 6);
    bus_store_destroy (&store);
}

static void
test_batch_visible (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    assert_false (bus_store_dirty (store));
    PASS (bus_store_commit (store, &err));          //  empty: fine
    s_append (store, SEND, "a", "b", "m1", DELIVERED, "hello");
    PASS (bus_store_put (store, BUS_DB_META, "k", 1, "v", 1, &err));
    PASS (bus_store_put (store, BUS_DB_TAINT, "a", 1, "", 0, &err));
    PASS (bus_store_cursor_set (store, "b", 1, &err));
    assert_true (bus_store_dirty (store));

    //  Twice: once through the open batch, once after the commit.
    for (int round = 0; round < 2; round++) {
        Bulkhead__V1__Record *rec;
        PASS (bus_store_record (store, 1, &rec, &err));
        assert_string_equal (rec->message_id, "m1");
        assert_memory_equal (rec->payload.data, "hello", 5);
        bulkhead__v1__record__free_unpacked (rec, NULL);
        uint64_t seq = 0;
        PASS (bus_store_find_msgid (store, "a", "m1", &seq, &err));
        assert_int_equal (seq, 1);
        PASS (bus_store_mailbox_next (store, "b", 0, &seq, &err));
        assert_int_equal (seq, 1);
        PASS (bus_store_cursor_get (store, "b", &seq, &err));
        assert_int_equal (seq, 1);
        void *val;
        size_t len;
        PASS (bus_store_get (store, BUS_DB_META, "k", 1, &val, &len, &err));
        assert_int_equal (len, 1);
        assert_memory_equal (val, "v", 1);
        free (val);
        PASS (bus_store_get (store, BUS_DB_TAINT, "a", 1, &val, &len, &err));
        assert_int_equal (len, 0);
        free (val);
        assert_int_equal (s_verify (store), round? 4: 1);
        //  The index entries wait for the commit, but each read through
        //  the batch sees them (s_index_flush before it): a record more
        //  before each.
        uint64_t count = 0, base = bus_store_last_seq (store);
        s_append (store, SEND, "a", "b", "x1", DELIVERED, NULL);
        PASS (bus_store_ix_count (store, BUS_IX_AGENT, "b", 1, &count, &err));
        assert_int_equal (count, base + 1);
        s_append (store, SEND, "a", "b", "x2", DELIVERED, NULL);
        assert_int_equal (bus_store_ix_seek (store, BUS_IX_ID, "x2", 2, base + 1, &seq, &err), 0);
        assert_int_equal (seq, base + 2);
        s_append (store, SEND, "a", "b", "x3", DELIVERED, NULL);
        uint64_t lo = 0, hi = 0;
        PASS (bus_store_time_range (store, 0, UINT64_MAX - 1, &lo, &hi, &err));
        assert_int_equal (lo, 1);
        assert_int_equal (hi, base + 3);
        PASS (bus_store_commit (store, &err));
        assert_false (bus_store_dirty (store));
    }
    PASS (bus_store_del (store, BUS_DB_META, "k", 1, &err));
    PASS (bus_store_del (store, BUS_DB_META, "never", 5, &err));
    void *val;
    size_t len;
    assert_int_equal (bus_store_get (store, BUS_DB_META, "k", 1, &val, &len,
                                     &err), 1);
    PASS (bus_store_commit (store, &err));
    assert_int_equal (bus_store_get (store, BUS_DB_META, "k", 1, &val, &len,
                                     &err), 1);
    bus_store_destroy (&store);
}

static void
test_msgid_index (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    s_append (store, SEND, "a", "b", "m1", DELIVERED, NULL);     //  1
    s_append (store, SEND, "a", "b", "m2", DENIED, NULL);        //  2
    s_append (store, SEND, "a", "b", "m3", HELD, NULL);          //  3
    s_append (store, SESSION, "a", "b", "m4", DELIVERED, NULL);  //  4
    s_append (store, SEND, "a", "b", "", QUEUED, NULL);          //  5
    s_append (store, SEND, "a", "b", "m1", DENIED, NULL);        //  6: retry
    PASS (bus_store_commit (store, &err));

    uint64_t seq;
    PASS (bus_store_find_msgid (store, "a", "m1", &seq, &err));
    assert_int_equal (seq, 1);          //  the first Send, not the retry
    PASS (bus_store_find_msgid (store, "a", "m2", &seq, &err));
    assert_int_equal (seq, 2);
    PASS (bus_store_find_msgid (store, "a", "m3", &seq, &err));
    assert_int_equal (seq, 3);
    assert_int_equal (bus_store_find_msgid (store, "a", "m4", &seq, &err), 1);
    assert_int_equal (bus_store_find_msgid (store, "b", "m1", &seq, &err), 1);
    assert_int_equal (bus_store_find_msgid (store, "a", "", &seq, &err), 1);

    //  Only delivered and queued Sends reach the mailbox.
    PASS (bus_store_mailbox_next (store, "b", 0, &seq, &err));
    assert_int_equal (seq, 1);
    PASS (bus_store_mailbox_next (store, "b", 1, &seq, &err));
    assert_int_equal (seq, 5);
    assert_int_equal (bus_store_mailbox_next (store, "b", 5, &seq, &err), 1);

    //  A key LMDB cannot hold is refused alone; the store stays sound.
    char long_id [600];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id [sizeof long_id - 1] = 0;
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = SEND;
    rec.sender = "a";
    rec.message_id = long_id;
    FAIL (bus_store_append (store, &rec, &err), BUS_EINVAL);
    assert_false (bus_store_failed (store));
    assert_int_equal (bus_store_last_seq (store), 6);
    assert_int_equal (bus_store_find_msgid (store, "a", long_id, &seq, &err),
                      1);
    assert_int_equal (s_append (store, SEND, "a", "b", "m7", QUEUED, NULL), 7);
    PASS (bus_store_commit (store, &err));
    assert_int_equal (s_verify (store), 7);
    bus_store_destroy (&store);
}

static void
test_mailbox_order (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    const char *to [] = { "b", "c", "bb", "b", "c", "b", "", "b" };
    for (int i = 0; i < 8; i++) {
        s_append (store, SEND, "a", to [i], NULL, i % 2? DELIVERED: QUEUED,
                  NULL);
        if (i == 3) {
            PASS (bus_store_commit (store, &err));
        }
    }
    //  Half committed, half in the open batch: one walk sees both.
    static const struct {
        const char *agent;
        uint64_t seqs [5];
    } want [] = {
        { "b", { 1, 4, 6, 8 } }, { "c", { 2, 5 } }, { "bb", { 3 } },
        { "d", { 0 } }
    };
    for (int round = 0; round < 2; round++) {
        for (size_t w = 0; w < sizeof want / sizeof want [0]; w++) {
            uint64_t seq = 0;
            for (int i = 0; want [w].seqs [i]; i++) {
                PASS (bus_store_mailbox_next (store, want [w].agent, seq,
                                              &seq, &err));
                assert_int_equal (seq, want [w].seqs [i]);
            }
            assert_int_equal (bus_store_mailbox_next (store, want [w].agent,
                                                      seq, &seq, &err), 1);
        }
        PASS (bus_store_commit (store, &err));
    }
    uint64_t seq;
    PASS (bus_store_mailbox_next (store, "b", 5, &seq, &err));
    assert_int_equal (seq, 6);
    assert_int_equal (bus_store_mailbox_next (store, "b", UINT64_MAX, &seq,
                                              &err), 1);
    //  The same by ranges (one cursor): not bb's, bounded by up_to and max.
    uint64_t seqs [4];
    size_t n;
    PASS (bus_store_mailbox_range (store, "b", 0, UINT64_MAX, seqs, 4, &n, &err));
    assert_int_equal (n, 4);
    assert_int_equal (seqs [0], 1);
    assert_int_equal (seqs [3], 8);
    PASS (bus_store_mailbox_range (store, "b", 1, 6, seqs, 4, &n, &err));
    assert_int_equal (n, 2);
    assert_int_equal (seqs [0], 4);
    assert_int_equal (seqs [1], 6);
    PASS (bus_store_mailbox_range (store, "b", 0, UINT64_MAX, seqs, 3, &n, &err));
    assert_int_equal (n, 3);
    assert_int_equal (seqs [2], 6);
    PASS (bus_store_mailbox_range (store, "b", 8, UINT64_MAX, seqs, 4, &n, &err));
    assert_int_equal (n, 0);
    PASS (bus_store_mailbox_range (store, "d", 0, UINT64_MAX, seqs, 4, &n, &err));
    assert_int_equal (n, 0);
    PASS (bus_store_mailbox_range (store, "bb", 0, UINT64_MAX, seqs, 4, &n, &err));
    assert_int_equal (n, 1);
    assert_int_equal (seqs [0], 3);
    bus_store_destroy (&store);
}

static void
test_cursor (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    uint64_t seq = 99;
    PASS (bus_store_cursor_get (store, "b", &seq, &err));
    assert_int_equal (seq, 0);
    PASS (bus_store_cursor_set (store, "b", 5, &err));
    PASS (bus_store_cursor_set (store, "c", UINT64_MAX, &err));
    PASS (bus_store_commit (store, &err));
    bus_store_destroy (&store);

    store = s_open (*state, 0, 0);
    PASS (bus_store_cursor_get (store, "b", &seq, &err));
    assert_int_equal (seq, 5);
    PASS (bus_store_cursor_get (store, "c", &seq, &err));
    assert_int_equal (seq, UINT64_MAX);
    PASS (bus_store_cursor_set (store, "b", 7, &err));
    PASS (bus_store_cursor_get (store, "b", &seq, &err));
    assert_int_equal (seq, 7);
    bus_store_destroy (&store);
}

static char s_payload [KIB + 1];

static void
s_fill_payload (int i)
{
    memset (s_payload, 'a' + i % 26, KIB);
    snprintf (s_payload, sizeof s_payload, "payload-%d", i);
    s_payload [strlen (s_payload)] = '-';
}

static void
test_map_grows (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 64 * KIB, 64 * MIB);
    for (int i = 1; i <= 2000; i++) {
        s_fill_payload (i);
        char id [32];
        snprintf (id, sizeof id, "m%d", i);
        s_append (store, SEND, "a", i % 2? "b": "c", id, QUEUED, s_payload);
    }
    PASS (bus_store_commit (store, &err));
    assert_false (bus_store_failed (store));
    bus_store_destroy (&store);

    //  The file holds every page written; it cannot exceed the map, so
    //  the map grew well past its 64 KiB start.
    char path [256];
    snprintf (path, sizeof path, "%s/data.mdb", (char *) *state);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_true (st.st_size > 2 * MIB);

    store = s_open (*state, 64 * KIB, 64 * MIB);
    assert_int_equal (bus_store_last_seq (store), 2000);
    assert_int_equal (s_verify (store), 2000);
    Bulkhead__V1__Record *rec;
    PASS (bus_store_record (store, 1234, &rec, &err));
    s_fill_payload (1234);
    assert_int_equal (rec->payload.len, KIB);
    assert_memory_equal (rec->payload.data, s_payload, KIB);
    bulkhead__v1__record__free_unpacked (rec, NULL);
    uint64_t seq;
    PASS (bus_store_find_msgid (store, "a", "m1999", &seq, &err));
    assert_int_equal (seq, 1999);
    PASS (bus_store_mailbox_next (store, "c", 1000, &seq, &err));
    assert_int_equal (seq, 1002);
    //  The batch's 16,000 index entries went in at the commit, the map
    //  growing under them: each is there once.
    uint64_t count = 0;
    PASS (bus_store_ix_count (store, BUS_IX_AGENT, "a", 1, &count, &err));
    assert_int_equal (count, 2000);
    PASS (bus_store_ix_count (store, BUS_IX_AGENT, "c", 1, &count, &err));
    assert_int_equal (count, 1000);
    uint8_t kind = SEND;
    PASS (bus_store_ix_count (store, BUS_IX_KIND, &kind, 1, &count, &err));
    assert_int_equal (count, 2000);
    PASS (bus_store_ix_count (store, BUS_IX_ID, "m1234", 5, &count, &err));
    assert_int_equal (count, 1);
    assert_int_equal (bus_store_ix_seek (store, BUS_IX_AGENT, "c", 1, 1001, &seq, &err), 0);
    assert_int_equal (seq, 1002);
    uint64_t lo = 0, hi = 0;
    PASS (bus_store_time_range (store, 0, UINT64_MAX - 1, &lo, &hi, &err));
    assert_int_equal (lo, 1);
    assert_int_equal (hi, 2000);
    bus_store_destroy (&store);
}

//  MDB_MAP_FULL can also come from the commit itself (the freelist and
//  the database roots need pages of their own), with the transaction then
//  dead. Which batch size does it depends on LMDB's page layout, so sweep:
//  with 4 KiB pages, 28 to 33 records of 1 KiB do it from a 64 KiB map.
static void
test_map_full_at_commit (void **state)
{
    bus_error_t err;
    s_fill_payload (0);
    for (int count = 20; count <= 45; count++) {
        char dir [256];
        snprintf (dir, sizeof dir, "%s/%d", (char *) *state, count);
        bus_store_t *store = s_open (dir, 64 * KIB, 64 * MIB);
        for (int i = 0; i < count; i++) {
            s_append (store, SEND, "a", "b", NULL, QUEUED, s_payload);
        }
        PASS (bus_store_commit (store, &err));
        bus_store_destroy (&store);
        store = s_open (dir, 64 * KIB, 64 * MIB);
        assert_int_equal (s_verify (store), count);
        bus_store_destroy (&store);
    }
}

//  A batch's index entries go in at the commit (s_index_flush), and that
//  is where the map fills when records are small and their ids long: the
//  map grows, what was put is replayed, and the rest goes in. Which batch
//  size does it depends on LMDB's page layout, so sweep.
static void
test_map_full_in_index (void **state)
{
    bus_error_t err;
    for (int count = 4; count <= 120; count += 4) {
        char dir [256];
        snprintf (dir, sizeof dir, "%s/%d", (char *) *state, count);
        bus_store_t *store = s_open (dir, 64 * KIB, 64 * MIB);
        char id [201];
        for (int i = 0; i < count; i++) {
            memset (id, 'a' + i % 26, 200);
            snprintf (id, sizeof id, "%04d", i);
            id [4] = '-';
            id [200] = 0;
            s_append (store, SEND, "a", i % 2? "b": "c", id, QUEUED, NULL);
        }
        PASS (bus_store_commit (store, &err));
        bus_store_destroy (&store);
        store = s_open (dir, 64 * KIB, 64 * MIB);
        assert_int_equal (s_verify (store), count);
        uint64_t n = 0, seq = 0;
        PASS (bus_store_ix_count (store, BUS_IX_AGENT, "a", 1, &n, &err));
        assert_int_equal (n, count);
        PASS (bus_store_ix_count (store, BUS_IX_AGENT, "b", 1, &n, &err));
        assert_int_equal (n, count / 2);
        for (int i = 0; i < count; i++) {
            memset (id, 'a' + i % 26, 200);
            snprintf (id, sizeof id, "%04d", i);
            id [4] = '-';
            id [200] = 0;
            assert_int_equal (bus_store_ix_seek (store, BUS_IX_ID, id, 200, 0, &seq, &err), 0);
            assert_int_equal (seq, (uint64_t) i + 1);
        }
        bus_store_destroy (&store);
    }
}

static void
test_map_full (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 64 * KIB, 256 * KIB);
    for (int i = 0; i < 10; i++) {
        s_append (store, SEND, "a", "b", NULL, QUEUED, "small");
    }
    PASS (bus_store_commit (store, &err));

    //  The map doubles to its 256 KiB limit, then the batch fails whole.
    int rc = 0;
    s_fill_payload (0);
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = SEND;
    rec.has_payload = true;
    rec.payload.data = (uint8_t *) s_payload;
    rec.payload.len = KIB;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        rec.time_us = 0;
        rc = bus_store_append (store, &rec, &err);
    }
    if (rc == 0) {
        rc = bus_store_commit (store, &err);
    }
    assert_int_equal (rc, -1);
    assert_string_equal (bus_errname (err.code), "ELOGFULL");
    assert_non_null (strstr (err.text, "full"));
    assert_non_null (strstr (err.text, "map_max"));
    assert_true (bus_store_failed (store));
    assert_int_equal (bus_store_failure (store)->code, BUS_ELOGFULL);
    assert_false (bus_store_dirty (store));
    assert_int_equal (bus_store_last_seq (store), 10);

    rec.time_us = 0;
    FAIL (bus_store_append (store, &rec, &err), BUS_ELOGFULL);
    FAIL (bus_store_put (store, BUS_DB_META, "k", 1, "v", 1, &err),
          BUS_ELOGFULL);
    FAIL (bus_store_commit (store, &err), BUS_ELOGFULL);
    assert_int_equal (s_verify (store), 10);        //  reads still work
    bus_store_destroy (&store);

    store = s_open (*state, 64 * KIB, 64 * MIB);
    assert_int_equal (bus_store_last_seq (store), 10);
    assert_int_equal (s_verify (store), 10);
    assert_int_equal (s_append (store, SEND, "a", "b", NULL, QUEUED, "x"), 11);
    PASS (bus_store_commit (store, &err));
    assert_int_equal (s_verify (store), 11);
    bus_store_destroy (&store);
}

//  Changes the log behind the store's back: val NULL deletes.
static void
s_raw_log_put (const char *dir, uint64_t seq, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t buf [8];
    for (int i = 0; i < 8; i++) {
        buf [i] = (uint8_t) (seq >> (56 - 8 * i));
    }
    MDB_val key = { 8, buf }, data = { len, (void *) val };
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_set_maxdbs (env, 8), 0);
    assert_int_equal (mdb_env_open (env, dir, 0, 0600), 0);
    assert_int_equal (mdb_txn_begin (env, NULL, 0, &txn), 0);
    assert_int_equal (mdb_dbi_open (txn, "log", 0, &dbi), 0);
    if (val) {
        assert_int_equal (mdb_put (txn, dbi, &key, &data, 0), 0);
    }
    else {
        assert_int_equal (mdb_del (txn, dbi, &key, NULL), 0);
    }
    assert_int_equal (mdb_txn_commit (txn), 0);
    mdb_env_close (env);
}

static void
test_verify_tamper (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    for (int i = 1; i <= 6; i++) {
        char payload [32], id [32];
        snprintf (payload, sizeof payload, "payload-%d", i);
        snprintf (id, sizeof id, "msgid-%d", i);
        s_append (store, SEND, "a", "b", id, QUEUED, payload);
    }
    PASS (bus_store_commit (store, &err));
    uint8_t key [8] = { 0, 0, 0, 0, 0, 0, 0, 3 };
    uint8_t *raw;
    size_t raw_len;
    PASS (bus_store_get (store, BUS_DB_LOG, key, 8, (void **) &raw, &raw_len,
                         &err));
    bus_store_destroy (&store);

    //  One byte of record 3's payload: the chain and the tree leave the
    //  payload out (payload_digest binds it, and purge may drop it), so
    //  they still hold; `bulkhead verify` checks payloads against digests.
    uint8_t *byte = memmem (raw, raw_len, "payload-3", 9);
    assert_non_null (byte);
    *byte = 'P';
    s_raw_log_put (*state, 3, raw, raw_len);
    store = s_open (*state, 0, 0);
    uint64_t count = 99;
    PASS (bus_store_verify (store, &count, &err));
    assert_int_equal (count, 6);
    bus_store_destroy (&store);
    *byte = 'p';

    //  One byte of its message id: it still decodes, the chain breaks at
    //  the record after it.
    byte = memmem (raw, raw_len, "msgid-3", 7);
    assert_non_null (byte);
    *byte = 'M';
    s_raw_log_put (*state, 3, raw, raw_len);
    store = s_open (*state, 0, 0);
    FAIL (bus_store_verify (store, &count, &err), BUS_ECORRUPT);
    assert_non_null (strstr (err.text, "log record 4:"));
    assert_int_equal (count, 3);
    bus_store_destroy (&store);

    //  Put it back and take record 5 out: a gap.
    *byte = 'm';
    s_raw_log_put (*state, 3, raw, raw_len);
    s_raw_log_put (*state, 5, NULL, 0);
    free (raw);
    store = s_open (*state, 0, 0);
    FAIL (bus_store_verify (store, &count, &err), BUS_ECORRUPT);
    assert_non_null (strstr (err.text, "log record 6:"));
    assert_int_equal (count, 4);

    //  Garbage that does not decode.
    bus_store_destroy (&store);
    s_raw_log_put (*state, 5, "\xff\xff\xff", 3);
    store = s_open (*state, 0, 0);
    FAIL (bus_store_verify (store, &count, &err), BUS_ECORRUPT);
    assert_non_null (strstr (err.text, "log record 5: does not decode"));
    Bulkhead__V1__Record *rec;
    FAIL (bus_store_record (store, 5, &rec, &err), BUS_ECORRUPT);
    bus_store_destroy (&store);
}

static void
test_readonly_missing (void **state)
{
    bus_error_t err;
    bus_store_options_t options = { .read_only = true };
    bus_store_t *store = NULL;
    char path [256];
    snprintf (path, sizeof path, "%s/nope", (char *) *state);
    FAIL (bus_store_open (&store, path, &options, &err), BUS_EIO);
    assert_non_null (strstr (err.text, "no log exists at"));
    assert_null (store);
    struct stat st;
    assert_int_equal (stat (path, &st), -1);        //  not created
    //  A directory with no log in it.
    FAIL (bus_store_open (&store, *state, &options, &err), BUS_EIO);
    assert_non_null (strstr (err.text, "no log exists at"));
    assert_null (store);
}

//  Checks what a read-only store beside the writer sees. 0 if all is as
//  expected, else the number of the check that failed.
static int
s_reader_check (bus_store_t *store, uint64_t want)
{
    bus_error_t err;
    Bulkhead__V1__Record *rec;
    uint64_t count;
    if (bus_store_record (store, want + 1, &rec, &err) != 1) {
        return 3;
    }
    if (bus_store_verify (store, &count, &err) || count != want) {
        fprintf (stderr, "reader: %s (%d)\n", err.text, (int) count);
        return 4;
    }
    Bulkhead__V1__Record new_rec = BULKHEAD__V1__RECORD__INIT;
    if (bus_store_append (store, &new_rec, &err) != -1
    ||  err.code != BUS_EINVAL) {
        return 5;
    }
    return 0;
}

//  The reader, in a child forked before the writer opens: LMDB must not
//  be opened twice in one process, nor used across a fork. Each byte on
//  go lets it take one step; it answers each on done.
static int
s_reader (const char *dir, int go, int done)
{
    char byte;
    if (read (go, &byte, 1) != 1) {
        return 1;
    }
    bus_store_options_t options = { .read_only = true };
    bus_store_t *store;
    bus_error_t err;
    if (bus_store_open (&store, dir, &options, &err)) {
        fprintf (stderr, "reader: %s\n", err.text);
        return 1;
    }
    //  The 2 records of the writer's open batch are not there yet.
    //  (last_seq is the tail as of open: a reader appends nothing.)
    int rc = bus_store_last_seq (store) == 3? s_reader_check (store, 3): 2;
    if (rc == 0 && (write (done, "", 1) != 1 || read (go, &byte, 1) != 1)) {
        rc = 1;
    }
    //  Now they are, and 3000 more that grew the map past ours.
    if (rc == 0) {
        rc = s_reader_check (store, 3005);
    }
    bus_store_destroy (&store);
    return rc? 10 + rc: 0;
}

static void
test_readonly_beside_writer (void **state)
{
    bus_error_t err;
    int go [2], done [2];
    assert_int_equal (pipe (go), 0);
    assert_int_equal (pipe (done), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (go [1]);
        close (done [0]);
        _exit (s_reader (*state, go [0], done [1]));
    }
    close (go [0]);
    close (done [1]);
    bus_store_t *store = s_open (*state, 64 * KIB, 64 * MIB);
    for (int i = 0; i < 5; i++) {
        s_append (store, SEND, "a", "b", NULL, QUEUED, "x");
        if (i == 2) {
            PASS (bus_store_commit (store, &err));
        }
    }
    char byte;
    assert_int_equal (write (go [1], "", 1), 1);
    assert_int_equal (read (done [0], &byte, 1), 1);
    s_fill_payload (0);
    for (int i = 0; i < 3000; i++) {
        s_append (store, SEND, "a", "b", NULL, QUEUED, s_payload);
    }
    PASS (bus_store_commit (store, &err));
    assert_int_equal (write (go [1], "", 1), 1);
    close (go [1]);
    close (done [0]);
    int status;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    bus_store_destroy (&store);
}

static void
test_abort_batch (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    for (int i = 0; i < 3; i++) {
        s_append (store, SEND, "a", "b", NULL, QUEUED, "kept");
    }
    PASS (bus_store_commit (store, &err));
    uint8_t hash [32];
    s_stored_hash (store, 3, hash);
    s_append (store, SEND, "a", "b", "lost", QUEUED, "lost");
    s_append (store, SEND, "a", "c", NULL, QUEUED, "lost");
    PASS (bus_store_put (store, BUS_DB_META, "k", 1, "v", 1, &err));
    bus_store_destroy (&store);

    store = s_open (*state, 0, 0);
    assert_int_equal (bus_store_last_seq (store), 3);
    Bulkhead__V1__Record *rec;
    assert_int_equal (bus_store_record (store, 4, &rec, &err), 1);
    uint64_t seq;
    assert_int_equal (bus_store_find_msgid (store, "a", "lost", &seq, &err),
                      1);
    assert_int_equal (bus_store_mailbox_next (store, "c", 0, &seq, &err), 1);
    void *val;
    size_t len;
    assert_int_equal (bus_store_get (store, BUS_DB_META, "k", 1, &val, &len,
                                     &err), 1);
    assert_int_equal (s_verify (store), 3);
    assert_int_equal (s_append (store, SEND, "a", "b", NULL, QUEUED, NULL), 4);
    PASS (bus_store_commit (store, &err));
    PASS (bus_store_record (store, 4, &rec, &err));
    assert_memory_equal (rec->prev_hash.data, hash, 32);
    bulkhead__v1__record__free_unpacked (rec, NULL);
    assert_int_equal (s_verify (store), 4);
    bus_store_destroy (&store);
}

typedef struct {
    uint64_t seen [8];
    int count;
    int stop_at;
} s_walk_t;

static int
s_walk (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw,
        size_t raw_len)
{
    s_walk_t *walk = arg;
    assert_true (raw_len > 0 && raw);
    walk->seen [walk->count++] = rec->seq;
    return walk->count == walk->stop_at? 42: 0;
}

static void
test_iterate (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    for (int i = 0; i < 6; i++) {
        s_append (store, SEND, "a", "b", NULL, QUEUED, NULL);
        if (i == 3) {
            PASS (bus_store_commit (store, &err));
        }
    }
    s_walk_t walk = { .stop_at = 0 };
    PASS (bus_store_iterate (store, 3, s_walk, &walk, &err));
    assert_int_equal (walk.count, 4);
    assert_int_equal (walk.seen [0], 3);
    assert_int_equal (walk.seen [3], 6);
    PASS (bus_store_commit (store, &err));
    walk = (s_walk_t) { .stop_at = 2 };
    assert_int_equal (bus_store_iterate (store, 0, s_walk, &walk, &err), 42);
    assert_int_equal (walk.count, 2);
    assert_int_equal (walk.seen [1], 2);
    walk = (s_walk_t) { .stop_at = 0 };
    PASS (bus_store_iterate (store, 7, s_walk, &walk, &err));
    assert_int_equal (walk.count, 0);
    bus_store_destroy (&store);
}

//  A new record's index entries go at the end of each key's list
//  (MDB_APPENDDUP). A record that names one value twice (two equal causes)
//  and a clock that steps back (an equal time key) must still be indexed,
//  each entry once, and the append must not fail.
static void
test_index_repeats (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    uint64_t first = s_append (store, SEND, "a", "b", "m1", DELIVERED, NULL);
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = SEND;
    rec.sender = (char *) "b";
    rec.recipient = (char *) "b";
    rec.message_id = (char *) "m2";
    uint64_t causes [2] = { first, first };
    rec.causes = causes;
    rec.n_causes = 2;
    rec.time_us = 1;                    //  long before the first record
    PASS (bus_store_append (store, &rec, &err));
    PASS (bus_store_commit (store, &err));
    uint8_t cause [8];
    for (int i = 0; i < 8; i++) {
        cause [i] = (uint8_t) (first >> (56 - 8 * i));
    }
    uint64_t count = 0, seq = 0;
    PASS (bus_store_ix_count (store, BUS_IX_EFFECT, cause, 8, &count, &err));
    assert_int_equal (count, 1);
    assert_int_equal (bus_store_ix_seek (store, BUS_IX_EFFECT, cause, 8, 0, &seq, &err), 0);
    assert_int_equal (seq, rec.seq);
    PASS (bus_store_ix_count (store, BUS_IX_AGENT, "b", 1, &count, &err));
    assert_int_equal (count, 2);
    uint64_t lo = 0, hi = 0;
    PASS (bus_store_time_range (store, 0, 2, &lo, &hi, &err));
    assert_true (lo <= rec.seq && rec.seq <= hi);
    bus_store_destroy (&store);
}

//  The index build at open may meet records already indexed (a meta that
//  lags its index). A key that holds one value, the first of the build's
//  group for it, must still get the rest of the group.
static void
test_index_rebuild_over (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    s_append (store, SEND, "x", "y", "m1", DELIVERED, NULL);
    s_append (store, SEND, "p", "q", "m2", DELIVERED, NULL);
    s_append (store, SEND, "x", "z", "m3", DELIVERED, NULL);
    PASS (bus_store_commit (store, &err));
    bus_store_destroy (&store);
    //  By hand: x's entry for seq 3 gone, and the build to start over.
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi index, meta;
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_set_maxdbs (env, 16), 0);
    assert_int_equal (mdb_env_open (env, *state, 0, 0600), 0);
    assert_int_equal (mdb_txn_begin (env, NULL, 0, &txn), 0);
    assert_int_equal (mdb_dbi_open (txn, "index", MDB_DUPSORT | MDB_DUPFIXED, &index), 0);
    assert_int_equal (mdb_dbi_open (txn, "meta", 0, &meta), 0);
    uint8_t one [8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    //  Both of x's entries gone, then seq 1's again: one value alone, not
    //  a list of them (which a delete of one of two would leave).
    MDB_val key = { 2, "ax" }, val = { 8, one };
    assert_int_equal (mdb_del (txn, index, &key, NULL), 0);
    assert_int_equal (mdb_put (txn, index, &key, &val, 0), 0);
    key = (MDB_val) { 5, "index" };
    assert_int_equal (mdb_del (txn, meta, &key, NULL), 0);
    key = (MDB_val) { 10, "index_next" };
    val = (MDB_val) { 8, one };
    assert_int_equal (mdb_put (txn, meta, &key, &val, 0), 0);
    assert_int_equal (mdb_txn_commit (txn), 0);
    mdb_env_close (env);

    store = s_open (*state, 0, 0);
    assert_true (bus_store_indexed (store));
    uint64_t count = 0;
    PASS (bus_store_ix_count (store, BUS_IX_AGENT, "x", 1, &count, &err));
    assert_int_equal (count, 2);
    uint64_t seq = 0;
    assert_int_equal (bus_store_ix_seek (store, BUS_IX_AGENT, "x", 1, 2, &seq, &err), 0);
    assert_int_equal (seq, 3);
    bus_store_destroy (&store);
}

//  A batch's writes take their data from blocks kept from batch to batch;
//  a record larger than a block gets one of its own. Batches of small and
//  large records, one after another, read back whole.
static void
test_batch_blocks (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    size_t big = 100 * KIB;
    char *payload = malloc (big + 1);
    assert_non_null (payload);
    uint64_t seq = 0;
    for (int batch = 0; batch < 3; batch++) {
        for (int i = 0; i < 300; i++) {
            size_t len = i % 50 == 7? big: (size_t) (i % 97) * 11 + 1;
            memset (payload, 'a' + (batch * 300 + i) % 26, len);
            payload [len] = 0;
            seq = s_append (store, SEND, "a", "b", NULL, QUEUED, payload);
        }
        PASS (bus_store_commit (store, &err));
    }
    assert_int_equal (seq, 900);
    for (int batch = 0; batch < 3; batch++) {
        for (int i = 0; i < 300; i++) {
            size_t len = i % 50 == 7? big: (size_t) (i % 97) * 11 + 1;
            Bulkhead__V1__Record *rec;
            PASS (bus_store_record (store, (uint64_t) (batch * 300 + i + 1), &rec, &err));
            assert_int_equal (rec->payload.len, len);
            for (size_t k = 0; k < len; k += 997) {
                assert_int_equal (rec->payload.data [k], 'a' + (batch * 300 + i) % 26);
            }
            bulkhead__v1__record__free_unpacked (rec, NULL);
        }
    }
    assert_int_equal (s_verify (store), 900);
    free (payload);
    bus_store_destroy (&store);
}

//  The time index keeps one entry per millisecond (S_TIME_STEP) of the
//  running maximum, so a range is a bound: it holds every record with a
//  time in [since, until], and at most a step more than a dense index
//  (one entry per record) would give at each end. Over a reopen too, and
//  with the clock stepping back once (which widens hi by the step back).
static void
test_time_range_sparse (void **state)
{
    bus_error_t err;
    enum { N = 200, STEP = 1000 };
    uint64_t times [N + 1], max [N + 1], back = 0;
    for (int i = 1; i <= N; i++) {
        //  300 us apart from second 10; 5 ms back at 150.
        times [i] = 10000000 + (uint64_t) i * 300 - (i >= 150? 5000: 0);
        max [i] = i > 1 && max [i - 1] > times [i]? max [i - 1]: times [i];
        back = max [i] - times [i] > back? max [i] - times [i]: back;
    }
    bus_store_t *store = s_open (*state, 0, 0);
    for (int i = 1; i <= N; i++) {
        Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
        rec.kind = SEND;
        rec.sender = (char *) "a";
        rec.recipient = (char *) "b";
        rec.time_us = times [i];
        PASS (bus_store_append (store, &rec, &err));
        assert_int_equal (rec.seq, (uint64_t) i);
        if (i % 37 == 0) {
            PASS (bus_store_commit (store, &err));
        }
    }
    PASS (bus_store_commit (store, &err));
    //  Round 0 with the records still in the trail (no time entries yet):
    //  the range holds them all, but need not be tight. Round 1 after the
    //  trail went in, round 2 after a reopen: tight.
    for (int round = 0; round < 3; round++) {
        bool tight = round > 0;
        for (uint64_t since = 9990000; since < 10000000 + N * 300 + 2000; since += 733) {
            for (uint64_t width = 0; width < 40000; width += 1999) {
                uint64_t until = since + width, lo = 0, hi = 0;
                PASS (bus_store_time_range (store, since, until, &lo, &hi, &err));
                uint64_t floor = since / STEP * STEP;
                uint64_t ceil = (until + back) / STEP * STEP + STEP;
                for (uint64_t i = 1; i <= N; i++) {
                    if (times [i] >= since && times [i] <= until) {
                        assert_true (lo <= i && i <= hi);
                    }
                    if (tight && max [i] < floor) {
                        assert_true (i < lo);
                    }
                    if (tight && max [i] >= ceil) {
                        assert_true (i > hi);
                    }
                }
            }
        }
        if (round == 0) {
            PASS (bus_store_trail_flush (store, &err));
            PASS (bus_store_commit (store, &err));
        }
        else {
            bus_store_destroy (&store);
            store = s_open (*state, 0, 0);
        }
    }
    bus_store_destroy (&store);
}

//  The index trails the log (bus_store.h). Records committed one by one
//  are answered exactly while their entries still wait, by the writer and
//  by a reader beside it; a writer killed with a trail loses only the
//  trail, which the next open rebuilds; a clean close leaves none. Whether
//  the answers came from the index or from decoding records past the
//  watermark shows in bus_store_reads.
enum { TRAIL_N = 30 };

//  Checks meta "index" is want; with set, makes it want and drops "ix_to"
//  (as a bus from before the trail left its data dirs). 0 if as asked.
static int
s_meta_stamp (const char *dir, const char *want, bool set)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    int rc = mdb_env_create (&env);
    rc = rc? rc: mdb_env_set_maxdbs (env, 16);
    rc = rc? rc: mdb_env_open (env, dir, 0, 0600);
    rc = rc? rc: mdb_txn_begin (env, NULL, 0, &txn);
    rc = rc? rc: mdb_dbi_open (txn, "meta", 0, &meta);
    MDB_val key = { 5, "index" }, val = { 1, (void *) want };
    if (rc == 0 && set) {
        rc = mdb_put (txn, meta, &key, &val, 0);
        key = (MDB_val) { 5, "ix_to" };
        rc = rc? rc: mdb_del (txn, meta, &key, NULL);
        rc = rc? rc: mdb_txn_commit (txn);
    }
    else if (rc == 0) {
        rc = mdb_get (txn, meta, &key, &val);
        rc = rc? rc: val.mv_size == 1 && *(char *) val.mv_data == *want? 0: -1;
        mdb_txn_abort (txn);
    }
    mdb_env_close (env);
    return rc;
}

static void
s_trail_check (bus_store_t *store, uint64_t n, uint64_t *reads)
{
    bus_error_t err;
    uint64_t before = bus_store_reads (store), count = 0, seq = 0;
    PASS (bus_store_ix_count (store, BUS_IX_AGENT, "s3", 2, &count, &err));
    assert_int_equal (count, n / 10 + (n % 10 > 3));
    assert_int_equal (bus_store_ix_seek (store, BUS_IX_AGENT, "s3", 2, 5, &seq, &err), 0);
    assert_int_equal (seq, 14);
    assert_int_equal (bus_store_ix_seek (store, BUS_IX_ID, "m7", 2, 1, &seq, &err), 0);
    assert_int_equal (seq, 8);
    assert_int_equal (bus_store_ix_seek (store, BUS_IX_ID, "m7", 2, 9, &seq, &err), 1);
    uint64_t lo = 0, hi = 0;
    PASS (bus_store_time_range (store, 0, UINT64_MAX - 1, &lo, &hi, &err));
    assert_true (lo == 1 && hi == n);
    *reads = bus_store_reads (store) - before;
}

static bus_store_t *
s_open_trail (const char *dir, bool read_only)
{
    //  A minute: no commit of the test's finds the trail due by time.
    bus_store_options_t options = { .read_only = read_only, .trail_us = 60000000 };
    bus_store_t *store = NULL;
    bus_error_t err;
    PASS (bus_store_open (&store, dir, &options, &err));
    return store;
}

static void
s_trail_append (bus_store_t *store, int from, int to)
{
    bus_error_t err;
    for (int i = from; i < to; i++) {
        char sender [16], id [16];
        snprintf (sender, sizeof sender, "s%d", i % 10);
        snprintf (id, sizeof id, "m%d", i);
        s_append (store, SEND, sender, "r", id, DELIVERED, NULL);
        PASS (bus_store_commit (store, &err));
    }
}

static void
test_index_trails (void **state)
{
    //  The writer, in a child that dies without closing (kill -9 as far
    //  as the store can tell): committed records, their entries in memory.
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        bus_store_t *store = s_open_trail (*state, false);
        s_trail_append (store, 0, TRAIL_N);
        uint64_t reads;
        s_trail_check (store, TRAIL_N, &reads);
        _exit (reads >= TRAIL_N? 0: 3);             //  answered past the watermark
    }
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    uint64_t reads;
    bus_store_t *store = s_open_trail (*state, true);
    s_trail_check (store, TRAIL_N, &reads);
    assert_true (reads >= TRAIL_N);                 //  none indexed: all decoded
    bus_store_destroy (&store);

    //  Open for writing: the trail is rebuilt, the index answers alone.
    store = s_open_trail (*state, false);
    s_trail_check (store, TRAIL_N, &reads);
    assert_true (reads < 10);
    //  Ten more wait in the trail: decoded, and only those.
    s_trail_append (store, TRAIL_N, TRAIL_N + 10);
    s_trail_check (store, TRAIL_N + 10, &reads);
    assert_true (reads >= 10 && reads < 30);
    //  Put in by hand, they are index entries too: read through the open
    //  batch (the idle timer's flush, before its commit), counted once.
    bus_error_t err;
    PASS (bus_store_trail_flush (store, &err));
    s_trail_check (store, TRAIL_N + 10, &reads);
    assert_true (reads < 10);
    PASS (bus_store_commit (store, &err));
    s_trail_check (store, TRAIL_N + 10, &reads);
    assert_true (reads < 10);
    s_trail_append (store, TRAIL_N + 10, TRAIL_N + 20);
    bus_store_destroy (&store);                     //  a clean close: no trail left

    store = s_open_trail (*state, true);
    s_trail_check (store, TRAIL_N + 20, &reads);
    assert_true (reads < 10);
    assert_int_equal (s_verify (store), TRAIL_N + 20);
    bus_store_destroy (&store);
}

//  A data dir a bus from before the trail indexed (meta "index" = "1", no
//  "ix_to": every commit carried its entries) is covered to its end: read
//  from the index alone, then stamped "2" by the next writer without a
//  rebuild (which would also have widened clock_back). The stamp a trailing
//  bus writes is "2", which such a bus reads as "not built".
static void
test_index_stamp_before_trail (void **state)
{
    bus_store_t *store = s_open_trail (*state, false);
    s_trail_append (store, 0, TRAIL_N);
    bus_store_destroy (&store);
    assert_int_equal (s_meta_stamp (*state, "2", false), 0);
    assert_int_equal (s_meta_stamp (*state, "1", true), 0);

    uint64_t reads;
    store = s_open_trail (*state, true);
    s_trail_check (store, TRAIL_N, &reads);
    assert_true (reads < 10);
    bus_store_destroy (&store);
    store = s_open_trail (*state, false);
    s_trail_check (store, TRAIL_N, &reads);
    assert_true (reads < 10);
    bus_store_destroy (&store);
    assert_int_equal (s_meta_stamp (*state, "2", false), 0);
}

//  Appends a SEND from sender naming causes; its seq.
static uint64_t
s_append_caused (bus_store_t *store, const char *sender, const char *recipient,
                 uint64_t *causes, size_t n_causes)
{
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = SEND;
    rec.sender = (char *) sender;
    rec.recipient = (char *) recipient;
    rec.has_verdict = true;
    rec.verdict = QUEUED;
    rec.n_causes = n_causes;
    rec.causes = causes;
    bus_error_t err;
    PASS (bus_store_append (store, &rec, &err));
    return rec.seq;
}

//  The cause index carries each message's ancestry: the senders of its
//  causes, transitively, within one batch and across a reopen; a message
//  without causes has none; a cause with no entry makes it unknown (maybe,
//  for everyone).
static void
test_cause_ancestry (void **state)
{
    bus_error_t err;
    bus_store_t *store = s_open (*state, 0, 0);
    uint64_t a = s_append_caused (store, "alice", "planner", NULL, 0);
    uint64_t prev = a;
    for (int i = 0; i < 30; i++) {      //  a chain, all in this batch
        prev = s_append_caused (store, i % 2? "writer": "planner", i % 2? "planner": "writer",
                                &prev, 1);
    }
    uint64_t other = s_append_caused (store, "bob", "planner", NULL, 0);
    uint64_t both [2] = { prev, other };
    uint64_t last = s_append_caused (store, "planner", "payments", both, 2);
    PASS (bus_store_commit (store, &err));
    bus_store_destroy (&store);

    store = s_open (*state, 0, 0);
    bus_cause_t entry;
    PASS (bus_store_cause (store, a, &entry, &err));
    assert_string_equal (entry.sender, "alice");
    assert_true (entry.flags & BUS_CAUSE_ANCESTRY);
    assert_false (entry.flags & BUS_CAUSE_FILTER);
    assert_false (bus_ancestry_may_hold (entry.ancestry, "alice"));     //  no causes: none
    PASS (bus_store_cause (store, last, &entry, &err));
    assert_string_equal (entry.sender, "planner");
    assert_string_equal (entry.recipient, "payments");
    assert_true (entry.flags & BUS_CAUSE_FILTER);
    const char *in [] = { "alice", "bob", "planner", "writer" };
    for (size_t i = 0; i < 4; i++) {
        if (!bus_ancestry_may_hold (entry.ancestry, in [i])) {
            fail_msg ("%s sent an ancestor of seq %llu; the filter says not", in [i],
                      (unsigned long long) last);
        }
    }
    //  3 of 512 bits a name: ten other names are (almost surely) not in it,
    //  and these ten are not, for this hash.
    char name [24];
    for (int i = 0; i < 10; i++) {
        snprintf (name, sizeof name, "agent-%d", i);
        if (bus_ancestry_may_hold (entry.ancestry, name)) {
            fail_msg ("%s is in the ancestry of seq %llu", name, (unsigned long long) last);
        }
    }
    //  A cause that has no entry (seq 999 does not exist): unknown.
    uint64_t missing = 999;
    uint64_t odd = s_append_caused (store, "writer", "planner", &missing, 1);
    PASS (bus_store_commit (store, &err));
    PASS (bus_store_cause (store, odd, &entry, &err));
    assert_true (bus_ancestry_may_hold (entry.ancestry, "agent-0"));
    bus_store_destroy (&store);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)
        T (test_append_reopen),
        T (test_batch_visible),
        T (test_msgid_index),
        T (test_mailbox_order),
        T (test_cursor),
        T (test_iterate),
        T (test_index_repeats),
        T (test_index_rebuild_over),
        T (test_time_range_sparse),
        T (test_index_trails),
        T (test_index_stamp_before_trail),
        T (test_batch_blocks),
        T (test_map_grows),
        T (test_map_full_at_commit),
        T (test_map_full_in_index),
        T (test_map_full),
        T (test_verify_tamper),
        T (test_readonly_missing),
        T (test_readonly_beside_writer),
        T (test_abort_batch),
        T (test_cause_ancestry),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
