/*  test_query.c: indexed queries (bus_query), threads, the index build at
    open and payload purge, on real LMDB files in a fresh directory each.
    Random logs print their seed (BULKHEAD_SEED=N replays one).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_query.h"
#include "bus_store.h"
#include "bulkhead.pb-c.h"

#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SEND      BULKHEAD__V1__RECORD_KIND__RECORD_SEND
#define SESSION   BULKHEAD__V1__RECORD_KIND__RECORD_SESSION
#define DELIVERED BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
#define QUEUED    BULKHEAD__V1__VERDICT__VERDICT_QUEUED
#define DENIED    BULKHEAD__V1__VERDICT__VERDICT_DENIED

#define PASS(call) do { \
    if ((call) != 0) { \
        print_error ("%s: %s %s\n", #call, bus_errname (err.code), err.text); \
        fail (); \
    } \
} while (0)

static int
s_setup (void **state)
{
    char *dir = strdup ("/tmp/bulkhead-test-query-XXXXXX");
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
s_open (const char *dir, bool read_only)
{
    bus_store_options_t options = { .read_only = read_only };
    bus_store_t *store = NULL;
    bus_error_t err;
    PASS (bus_store_open (&store, dir, &options, &err));
    return store;
}

//  One record of the fields a query looks at.
typedef struct {
    int kind;
    const char *sender, *recipient, *actor, *intent_class, *code, *id;
    int verdict;
    bool restricted;
    uint64_t time_us;
    uint64_t causes [3];
    size_t n_causes;
    const char *payload;
} s_rec_t;

static uint64_t
s_append (bus_store_t *store, const s_rec_t *r)
{
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.kind = r->kind? r->kind: SEND;
    rec.time_us = r->time_us;
    rec.sender = (char *) r->sender;
    rec.recipient = (char *) r->recipient;
    rec.actor = (char *) r->actor;
    rec.intent_class = (char *) r->intent_class;
    rec.code = (char *) r->code;
    rec.message_id = (char *) r->id;
    rec.has_verdict = r->verdict != 0;
    rec.verdict = (uint32_t) r->verdict;
    rec.has_restricted = r->restricted;
    rec.restricted = r->restricted;
    rec.causes = (uint64_t *) r->causes;
    rec.n_causes = r->n_causes;
    if (r->payload) {
        rec.has_payload = true;
        rec.payload.data = (uint8_t *) r->payload;
        rec.payload.len = strlen (r->payload);
        rec.has_payload_size = true;
        rec.payload_size = rec.payload.len;
        rec.has_payload_digest = true;
        static uint8_t digest [32];
        bus_hash (digest, r->payload, strlen (r->payload));
        rec.payload_digest.data = digest;
        rec.payload_digest.len = 32;
    }
    bus_error_t err;
    PASS (bus_store_append (store, &rec, &err));
    return rec.seq;
}

//  The answer as a list of seqs.
typedef struct {
    uint64_t seqs [20000];
    size_t n;
} s_answer_t;

static int
s_collect (void *arg, const Bulkhead__V1__Record *rec, size_t raw_len)
{
    (void) raw_len;
    s_answer_t *answer = arg;
    assert_true (answer->n < 20000);
    if (answer->n) {
        assert_true (rec->seq > answer->seqs [answer->n - 1]);
    }
    answer->seqs [answer->n++] = rec->seq;
    return 0;
}

//  What a walk of the whole log gives: the reference for every query.
typedef struct {
    const bus_query_t *q;
    s_answer_t *answer;
} s_brute_t;

static int
s_brute_one (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t len)
{
    (void) raw, (void) len;
    s_brute_t *b = arg;
    if (bus_query_match (b->q, rec)) {
        b->answer->seqs [b->answer->n++] = rec->seq;
    }
    return 0;
}

static void
s_same_as_walk (bus_store_t *store, const bus_query_t *q, const char *what)
{
    static s_answer_t got, want;
    got.n = want.n = 0;
    bus_error_t err;
    bus_query_plan_t plan;
    PASS (bus_query_run (store, q, s_collect, &got, &plan, &err));
    s_brute_t b = { q, &want };
    PASS (bus_store_iterate (store, 1, s_brute_one, &b, &err));
    if (got.n != want.n || memcmp (got.seqs, want.seqs, got.n * sizeof got.seqs [0]) != 0) {
        print_error ("%s: the index answered %zu records, a walk of the log %zu\n", what,
                     got.n, want.n);
        fail ();
    }
    assert_int_equal (plan.matched, got.n);
}

static const char *s_agents [] = { "planner", "payments", "mail", "search", "deploy" };
static const char *s_classes [] = { "message", "finance", "deploy", "comms" };
static const char *s_codes [] = { "OK", "DENIED", "RATE", "RESTRICTED" };

static unsigned
s_seed (void)
{
    const char *env = getenv ("BULKHEAD_SEED");
    unsigned seed = env? (unsigned) strtoul (env, NULL, 10): (unsigned) time (NULL);
    print_message ("seed %u (BULKHEAD_SEED=%u replays it)\n", seed, seed);
    srand (seed);
    return seed;
}

//  A random log, with the clock stepping back now and then: every query,
//  single filters and combinations, answers what a walk answers.
static void
test_index_agrees_with_walk (void **state)
{
    s_seed ();
    bus_store_t *store = s_open (*state, false);
    bus_error_t err;
    uint64_t t = 1700000000000000ull;
    uint64_t times [3000];
    for (int i = 0; i < 3000; i++) {
        //  Mostly forward; one record in 50 steps back up to 5 s.
        t = rand () % 50 == 0? t - (uint64_t) (rand () % 5000000): t + (uint64_t) (rand () % 20000);
        times [i] = t;
        s_rec_t r = {
            .kind = rand () % 5? SEND: SESSION,
            .sender = s_agents [rand () % 5],
            .recipient = rand () % 4? s_agents [rand () % 5]: NULL,
            .intent_class = s_classes [rand () % 4],
            .code = s_codes [rand () % 4],
            .verdict = rand () % 4 + 1,
            .restricted = rand () % 7 == 0,
            .time_us = t,
        };
        char id [32];
        snprintf (id, sizeof id, "m-%d", rand () % 1000);
        r.id = id;
        s_append (store, &r);
        if (i % 500 == 499) {
            PASS (bus_store_commit (store, &err));
        }
    }
    PASS (bus_store_commit (store, &err));
    for (int round = 0; round < 200; round++) {
        bus_query_t q = { 0 };
        if (rand () % 2) {
            q.agent = s_agents [rand () % 5];
        }
        if (rand () % 3 == 0) {
            q.intent_class = s_classes [rand () % 4];
        }
        if (rand () % 3 == 0) {
            q.code = s_codes [rand () % 4];
        }
        if (rand () % 3 == 0) {
            q.verdict = rand () % 4 + 1;
        }
        if (rand () % 5 == 0) {
            q.kind = rand () % 2? SEND: SESSION;
        }
        q.restricted = rand () % 5 == 0;
        if (rand () % 6 == 0) {
            q.message_id = "m-7";
        }
        if (rand () % 2) {
            q.has_since = true;
            q.since_us = times [rand () % 3000];
        }
        if (rand () % 2) {
            q.has_until = true;
            q.until_us = times [rand () % 3000];
        }
        if (rand () % 8 == 0) {
            q.from_seq = (uint64_t) (rand () % 3000) + 1;
        }
        char what [64];
        snprintf (what, sizeof what, "round %d", round);
        s_same_as_walk (store, &q, what);
    }
    bus_store_destroy (&store);
}

//  n records of background traffic, with `rare` sending to `planner` every
//  (n / 100)th: the answer to --agent rare is 100 records whatever n is.
static void
s_fill (bus_store_t *store, int n, uint64_t t0)
{
    bus_error_t err;
    for (int i = 0; i < n; i++) {
        bool rare = i % (n / 100) == 0;
        s_rec_t r = {
            .sender = rare? "rare": s_agents [i % 5], .recipient = s_agents [(i + 1) % 5],
            .intent_class = "message", .code = "OK", .verdict = DELIVERED,
            .time_us = t0 + (uint64_t) i * 1000,
        };
        s_append (store, &r);
        if (i % 5000 == 4999) {
            PASS (bus_store_commit (store, &err));
        }
    }
    PASS (bus_store_commit (store, &err));
}

static uint64_t
s_cost (bus_store_t *store, const bus_query_t *q, uint64_t *matched)
{
    static s_answer_t answer;
    answer.n = 0;
    bus_error_t err;
    bus_query_plan_t plan;
    PASS (bus_query_run (store, q, s_collect, &answer, &plan, &err));
    assert_true (plan.indexed);
    *matched = plan.matched;
    return plan.reads;
}

//  The cost of a query is what it answers: the same 100 records out of a
//  log 25 times larger take the same reads, about 2 per record (a seek
//  and the record) for one filter.
static void
test_cost_grows_with_answer (void **state)
{
    char small [512], large [512];
    snprintf (small, sizeof small, "%s/small", (char *) *state);
    snprintf (large, sizeof large, "%s/large", (char *) *state);
    bus_store_t *a = s_open (small, false);
    bus_store_t *b = s_open (large, false);
    uint64_t t0 = 1700000000000000ull;
    s_fill (a, 4000, t0);
    s_fill (b, 100000, t0);
    bus_query_t q = { .agent = "rare" };
    uint64_t matched_a, matched_b;
    uint64_t cost_a = s_cost (a, &q, &matched_a);
    uint64_t cost_b = s_cost (b, &q, &matched_b);
    assert_int_equal (matched_a, 100);
    assert_int_equal (matched_b, 100);
    print_message ("agent, 100 of 4000: %llu reads; 100 of 100000: %llu reads\n",
                   (unsigned long long) cost_a, (unsigned long long) cost_b);
    assert_true (cost_b <= 2 * 100 + 8);
    assert_int_equal (cost_a, cost_b);

    //  Two lists, one of them huge (every record is DELIVERED): the
    //  leapfrog jumps over it, it does not walk it.
    q.verdict = DELIVERED;
    cost_b = s_cost (b, &q, &matched_b);
    assert_int_equal (matched_b, 100);
    assert_true (cost_b <= 4 * 100 + 8);

    //  A time range that holds 10 of rare's records, among 10,000.
    bus_query_t r = { .agent = "rare", .has_since = true, .since_us = t0 + 10000ull * 1000,
                      .has_until = true, .until_us = t0 + 20000ull * 1000 - 1 };
    cost_b = s_cost (b, &r, &matched_b);
    assert_int_equal (matched_b, 10);
    assert_true (cost_b <= 2 * 10 + 12);

    //  A time range alone: the range is the answer.
    bus_query_t t = { .has_since = true, .since_us = t0 + 50000ull * 1000,
                      .has_until = true, .until_us = t0 + 50099ull * 1000 };
    cost_b = s_cost (b, &t, &matched_b);
    assert_int_equal (matched_b, 100);
    assert_true (cost_b <= 100 + 8);
    bus_store_destroy (&a);
    bus_store_destroy (&b);
}

static void
test_thread_both_ways (void **state)
{
    bus_store_t *store = s_open (*state, false);
    bus_error_t err;
    s_rec_t r = { .sender = "planner", .recipient = "search", .verdict = DELIVERED };
    uint64_t a = s_append (store, &r);                      //  1: a root
    s_append (store, &r);                                   //  2: unrelated
    r.causes [0] = a;
    r.n_causes = 1;
    uint64_t b = s_append (store, &r);                      //  3: caused by a
    r.causes [0] = b;
    uint64_t c = s_append (store, &r);                      //  4: caused by b
    uint64_t d = s_append (store, &r);                      //  5: caused by b
    r.n_causes = 2;
    r.causes [0] = d;
    r.causes [1] = 2000;                                    //  not in the log
    uint64_t e = s_append (store, &r);                      //  6: caused by d
    r.n_causes = 0;
    s_append (store, &r);                                   //  7: unrelated
    PASS (bus_store_commit (store, &err));

    static s_answer_t answer;
    bus_query_t all = { 0 };
    for (uint64_t from = a; from <= e; from++) {
        if (from == 2) {
            continue;
        }
        answer.n = 0;
        PASS (bus_query_thread (store, from, &all, s_collect, &answer, NULL, &err));
        uint64_t want [] = { a, b, c, d, e };
        assert_int_equal (answer.n, 5);
        assert_memory_equal (answer.seqs, want, sizeof want);
    }
    answer.n = 0;
    PASS (bus_query_thread (store, 2, &all, s_collect, &answer, NULL, &err));
    assert_int_equal (answer.n, 1);
    assert_int_equal (bus_query_thread (store, 99, &all, s_collect, &answer, NULL, &err), -1);
    assert_int_equal (err.code, BUS_ENOTFOUND);
    bus_store_destroy (&store);
}

//  A log from before the indexes: a reader walks it and still answers
//  right; the first writable open builds the indexes, and the answers stay.
static void
test_build_at_open (void **state)
{
    bus_store_t *store = s_open (*state, false);
    bus_error_t err;
    for (int i = 0; i < 50000; i++) {
        s_rec_t r = { .sender = s_agents [i % 5], .recipient = s_agents [(i + 2) % 5],
                      .intent_class = s_classes [i % 4], .verdict = i % 3 + 1,
                      .restricted = i % 11 == 0 };
        s_append (store, &r);
    }
    PASS (bus_store_commit (store, &err));
    bus_store_destroy (&store);

    //  Drop what main did not have, as main left it.
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal (mdb_env_create (&env), 0);
    assert_int_equal (mdb_env_set_maxdbs (env, 16), 0);
    assert_int_equal (mdb_env_open (env, *state, 0, 0600), 0);
    assert_int_equal (mdb_txn_begin (env, NULL, 0, &txn), 0);
    assert_int_equal (mdb_dbi_open (txn, "index", 0, &dbi), 0);
    assert_int_equal (mdb_drop (txn, dbi, 1), 0);
    assert_int_equal (mdb_dbi_open (txn, "time", 0, &dbi), 0);
    assert_int_equal (mdb_drop (txn, dbi, 1), 0);
    assert_int_equal (mdb_dbi_open (txn, "meta", 0, &dbi), 0);
    //  No stamp and no watermark either: a data dir from before the
    //  indexes never had them.
    MDB_val key = { 5, "index" };
    assert_int_equal (mdb_del (txn, dbi, &key, NULL), 0);
    key = (MDB_val) { 10, "index_next" };
    assert_int_equal (mdb_del (txn, dbi, &key, NULL), 0);
    key = (MDB_val) { 5, "ix_to" };
    assert_int_equal (mdb_del (txn, dbi, &key, NULL), 0);
    assert_int_equal (mdb_txn_commit (txn), 0);
    mdb_env_close (env);

    bus_query_t q = { .agent = "mail", .intent_class = "finance", .restricted = true };
    store = s_open (*state, true);
    assert_false (bus_store_indexed (store));
    s_same_as_walk (store, &q, "read-only, no index");
    bus_store_destroy (&store);

    store = s_open (*state, false);
    assert_true (bus_store_indexed (store));
    s_same_as_walk (store, &q, "after the build");
    bus_query_t v = { .verdict = 2, .agent = "planner" };
    s_same_as_walk (store, &v, "after the build, verdict");
    bus_store_destroy (&store);
    //  Opening again builds nothing more and answers the same.
    store = s_open (*state, false);
    s_same_as_walk (store, &q, "reopened");
    bus_store_destroy (&store);
}

//  Purge keeps every byte but the payload's: the record packed again with
//  its payload and without payload_purged_us is exactly what was stored.
static void
test_purge_keeps_other_bytes (void **state)
{
    bus_store_t *store = s_open (*state, false);
    bus_error_t err;
    s_rec_t r = { .sender = "planner", .recipient = "search", .verdict = DELIVERED,
                  .intent_class = "message", .code = "OK", .id = "m-1",
                  .payload = "the quarterly numbers, 256 bytes or so" };
    r.causes [0] = 7;
    r.n_causes = 1;
    uint64_t seq = s_append (store, &r);
    r.payload = NULL;
    uint64_t bare = s_append (store, &r);
    s_rec_t tail = { .kind = SESSION, .sender = "planner", .code = "OK" };
    s_append (store, &tail);
    PASS (bus_store_commit (store, &err));
    void *before = NULL;
    size_t before_len = 0;
    PASS (bus_store_record_raw (store, seq, &before, &before_len, &err));

    assert_int_equal (bus_store_purge_payload (store, seq, 1234567, &err), 0);
    assert_int_equal (bus_store_purge_payload (store, bare, 1234567, &err), 1);
    assert_int_equal (bus_store_purge_payload (store, bus_store_last_seq (store), 1, &err), 1);
    PASS (bus_store_commit (store, &err));
    //  Twice is nothing more.
    assert_int_equal (bus_store_purge_payload (store, seq, 7654321, &err), 1);

    void *after = NULL;
    size_t after_len = 0;
    PASS (bus_store_record_raw (store, seq, &after, &after_len, &err));
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, after_len, after);
    assert_non_null (rec);
    assert_false (rec->has_payload);
    assert_true (rec->has_payload_purged_us);
    assert_int_equal (rec->payload_purged_us, 1234567);
    assert_true (rec->has_payload_digest);
    assert_int_equal (rec->payload_size, strlen ("the quarterly numbers, 256 bytes or so"));
    assert_null (memmem (after, after_len, "quarterly", 9));
    rec->has_payload_purged_us = false;
    rec->has_payload = true;
    rec->payload.data = (uint8_t *) "the quarterly numbers, 256 bytes or so";
    rec->payload.len = strlen ((char *) rec->payload.data);
    size_t len = bulkhead__v1__record__get_packed_size (rec);
    uint8_t *again = malloc (len);
    assert_non_null (again);
    bulkhead__v1__record__pack (rec, again);
    assert_int_equal (len, before_len);
    assert_memory_equal (again, before, len);
    rec->payload.data = NULL;
    rec->has_payload = false;
    bulkhead__v1__record__free_unpacked (rec, NULL);
    free (again);
    free (before);
    free (after);
    bus_store_destroy (&store);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)
        T (test_index_agrees_with_walk),
        T (test_cost_grows_with_answer),
        T (test_thread_both_ways),
        T (test_build_at_open),
        T (test_purge_keeps_other_bytes),
#undef T
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
