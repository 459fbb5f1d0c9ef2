/*  bus_query.c: indexed queries and threads, see bus_query.h. */
#include "bus_query.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool
s_eq (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

bool
bus_query_match (const bus_query_t *q, const Bulkhead__V1__Record *rec)
{
    if (q->agent && !s_eq (rec->sender, q->agent) && !s_eq (rec->recipient, q->agent)
    &&  !s_eq (rec->actor, q->agent)) {
        return false;
    }
    if ((q->intent_class && !s_eq (rec->intent_class, q->intent_class))
    ||  (q->code && !s_eq (rec->code, q->code))
    ||  (q->message_id && !s_eq (rec->message_id, q->message_id))
    ||  (q->kind && (int) rec->kind != q->kind)
    ||  (q->verdict && !(rec->has_verdict && (int) rec->verdict == q->verdict))
    ||  (q->restricted && !(rec->has_restricted && rec->restricted))
    ||  (q->has_since && rec->time_us < q->since_us)
    ||  (q->has_until && rec->time_us > q->until_us)
    ||  (q->from_seq && rec->seq < q->from_seq)) {
        return false;
    }
    return true;
}

//  Reads and decodes one record: 0, 1 if absent, -1 on error.
static int
s_read (bus_store_t *store, uint64_t seq, Bulkhead__V1__Record **rec, size_t *raw_len,
        bus_error_t *err)
{
    void *raw = NULL;
    int rc = bus_store_record_raw (store, seq, &raw, raw_len, err);
    if (rc) {
        return rc;
    }
    *rec = bulkhead__v1__record__unpack (NULL, *raw_len, raw);
    free (raw);
    if (!*rec) {
        return bus_fail (err, BUS_ECORRUPT, "log record %" PRIu64 ": does not decode", seq);
    }
    return 0;
}

//  Decodes seq and hands it on if it matches. 0, fn's value, or -1.
static int
s_emit (bus_store_t *store, uint64_t seq, const bus_query_t *q, bus_query_fn *fn, void *arg,
        bus_query_plan_t *plan, bus_error_t *err)
{
    Bulkhead__V1__Record *rec = NULL;
    size_t raw_len = 0;
    int rc = s_read (store, seq, &rec, &raw_len, err);
    if (rc) {
        return rc < 0? -1: 0;
    }
    if (bus_query_match (q, rec)) {
        plan->matched++;
        rc = fn (arg, rec, raw_len);
    }
    bulkhead__v1__record__free_unpacked (rec, NULL);
    return rc;
}

//  One equality filter: an index list.
typedef struct {
    char tag;
    const void *value;
    size_t len;
    uint64_t count;
} s_list_t;

static int
s_count_cmp (const void *a, const void *b)
{
    const s_list_t *x = a, *y = b;
    return x->count < y->count? -1: x->count > y->count;
}

static size_t
s_lists (const bus_query_t *q, s_list_t *lists, uint8_t *bytes)
{
    size_t n = 0;
    if (q->agent) {
        lists [n++] = (s_list_t) { BUS_IX_AGENT, q->agent, strlen (q->agent), 0 };
    }
    if (q->intent_class) {
        lists [n++] = (s_list_t) { BUS_IX_CLASS, q->intent_class, strlen (q->intent_class), 0 };
    }
    if (q->code) {
        lists [n++] = (s_list_t) { BUS_IX_CODE, q->code, strlen (q->code), 0 };
    }
    if (q->message_id) {
        lists [n++] = (s_list_t) { BUS_IX_ID, q->message_id, strlen (q->message_id), 0 };
    }
    if (q->kind) {
        bytes [0] = (uint8_t) q->kind;
        lists [n++] = (s_list_t) { BUS_IX_KIND, bytes, 1, 0 };
    }
    if (q->verdict) {
        bytes [1] = (uint8_t) q->verdict;
        lists [n++] = (s_list_t) { BUS_IX_VERDICT, bytes + 1, 1, 0 };
    }
    if (q->restricted) {
        lists [n++] = (s_list_t) { BUS_IX_RESTRICTED, NULL, 0, 0 };
    }
    return n;
}

//  Records lo..hi in order, each checked: the walk for a log without
//  indexes, or for a query with no equality filter (the range is then
//  the answer, give or take a clock that stepped back).
typedef struct {
    const bus_query_t *q;
    uint64_t hi;
    bus_query_fn *fn;
    void *arg;
    bus_query_plan_t *plan;
    int stopped;
} s_walk_t;

static int
s_walk_one (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t raw_len)
{
    (void) raw;
    s_walk_t *walk = arg;
    if (rec->seq > walk->hi) {
        return 1;
    }
    if (bus_query_match (walk->q, rec)) {
        walk->plan->matched++;
        walk->stopped = walk->fn (walk->arg, rec, raw_len);
        return walk->stopped? 2: 0;
    }
    return 0;
}

static int
s_leapfrog (bus_store_t *store, const bus_query_t *q, s_list_t *lists, size_t n,
            uint64_t lo, uint64_t hi, bus_query_fn *fn, void *arg, bus_query_plan_t *plan,
            bus_error_t *err)
{
    uint64_t target = lo;
    size_t agreed = 0;
    for (size_t k = 0; target <= hi; k = (k + 1) % n) {
        uint64_t seq;
        int rc = bus_store_ix_seek (store, lists [k].tag, lists [k].value, lists [k].len,
                                    target, &seq, err);
        if (rc) {
            return rc < 0? -1: 0;
        }
        if (seq > hi) {
            return 0;
        }
        if (seq != target) {
            target = seq;
            agreed = 0;
        }
        if (++agreed == n) {
            rc = s_emit (store, target, q, fn, arg, plan, err);
            if (rc || target == UINT64_MAX) {
                return rc;
            }
            target++;
            agreed = 0;
        }
    }
    return 0;
}

int
bus_query_run (bus_store_t *store, const bus_query_t *q, bus_query_fn *fn, void *arg,
               bus_query_plan_t *plan_out, bus_error_t *err)
{
    assert (store && q && fn);
    bus_query_plan_t scratch, *plan = plan_out? plan_out: &scratch;
    memset (plan, 0, sizeof *plan);
    uint64_t reads = bus_store_reads (store), past = bus_store_reads_past (store);
    if (bus_store_snapshot (store, true, err)) {
        return -1;
    }
    plan->indexed = bus_store_indexed (store);
    uint64_t lo = q->from_seq? q->from_seq: 1;
    uint64_t hi = bus_store_last_seq (store);
    int rc = 0;
    if (plan->indexed && (q->has_since || q->has_until)) {
        uint64_t t_lo, t_hi;
        rc = bus_store_time_range (store, q->has_since? q->since_us: 0,
                                   q->has_until? q->until_us: UINT64_MAX - 1, &t_lo, &t_hi, err);
        lo = t_lo > lo? t_lo: lo;
        hi = t_hi < hi? t_hi: hi;
    }
    s_list_t lists [8];
    uint8_t bytes [2];
    size_t n = plan->indexed? s_lists (q, lists, bytes): 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = bus_store_ix_count (store, lists [i].tag, lists [i].value, lists [i].len,
                                 &lists [i].count, err);
        if (rc == 0 && lists [i].count == 0) {
            hi = 0;                     //  one empty list: no answer
        }
    }
    qsort (lists, n, sizeof lists [0], s_count_cmp);
    plan->lists = n;
    plan->lo = lo;
    plan->hi = hi;
    if (rc == 0 && lo <= hi) {
        if (n) {
            rc = s_leapfrog (store, q, lists, n, lo, hi, fn, arg, plan, err);
        }
        else {
            s_walk_t walk = { q, hi, fn, arg, plan, 0 };
            rc = bus_store_iterate (store, lo, s_walk_one, &walk, err);
            rc = rc < 0? -1: walk.stopped;
        }
    }
    bus_store_snapshot (store, false, NULL);
    plan->reads = bus_store_reads (store) - reads;
    plan->past = bus_store_reads_past (store) - past;
    return rc;
}

//  --------------------------------------------------------------------------
//  Threads

//  A set of seqs: open addressing, linear probing, 0 never stored (no
//  record has seq 0), sized for BUS_QUERY_THREAD_MAX at most half full.
#define S_SET_SLOTS     (BUS_QUERY_THREAD_MAX * 2 + 1)

typedef struct {
    uint64_t *slots;
    uint64_t *order;            //  in the order found: the work queue
    size_t count;
} s_set_t;

//  1 if added, 0 if there already, -1 if full.
static int
s_set_add (s_set_t *set, uint64_t seq)
{
    size_t i = (size_t) ((seq * 0x9e3779b97f4a7c15ull) % S_SET_SLOTS);
    while (set->slots [i]) {
        if (set->slots [i] == seq) {
            return 0;
        }
        i = (i + 1) % S_SET_SLOTS;
    }
    if (set->count == BUS_QUERY_THREAD_MAX) {
        return -1;
    }
    set->slots [i] = seq;
    set->order [set->count++] = seq;
    return 1;
}

static int
s_seq_cmp (const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y? -1: x > y;
}

static void
s_be64 (uint8_t *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (uint8_t) value;
        value >>= 8;
    }
}

//  Adds the causes and effects of seq to the set.
static int
s_neighbours (bus_store_t *store, s_set_t *set, uint64_t seq, bus_error_t *err)
{
    Bulkhead__V1__Record *rec = NULL;
    size_t raw_len = 0;
    int rc = s_read (store, seq, &rec, &raw_len, err);
    if (rc) {
        return rc < 0? -1: 0;           //  a cause that is not in the log
    }
    for (size_t i = 0; rc >= 0 && i < rec->n_causes; i++) {
        rc = rec->causes [i]? s_set_add (set, rec->causes [i]): 0;
    }
    bulkhead__v1__record__free_unpacked (rec, NULL);
    uint8_t key [8];
    s_be64 (key, seq);
    uint64_t from = 0, effect;
    while (rc >= 0) {
        int found = bus_store_ix_seek (store, BUS_IX_EFFECT, key, 8, from, &effect, err);
        if (found) {
            return found < 0? -1: 0;
        }
        rc = s_set_add (set, effect);
        if (effect == UINT64_MAX) {
            break;
        }
        from = effect + 1;
    }
    if (rc < 0) {
        return bus_fail (err, BUS_ETOOBIG, "the thread through %" PRIu64 " has more than %d "
                         "records; narrow it with --since/--until or start from a later "
                         "record", set->order [0], BUS_QUERY_THREAD_MAX);
    }
    return 0;
}

int
bus_query_thread (bus_store_t *store, uint64_t seq, const bus_query_t *q, bus_query_fn *fn,
                  void *arg, bus_query_plan_t *plan_out, bus_error_t *err)
{
    assert (store && q && fn);
    bus_query_plan_t scratch, *plan = plan_out? plan_out: &scratch;
    memset (plan, 0, sizeof *plan);
    plan->indexed = bus_store_indexed (store);
    if (!plan->indexed) {
        return bus_fail (err, BUS_EINVAL, "--thread needs the effect index, which this log "
                         "does not have yet: start the bus on it once (it builds the "
                         "indexes at start)");
    }
    uint64_t reads = bus_store_reads (store), past = bus_store_reads_past (store);
    s_set_t set = {
        calloc (S_SET_SLOTS, sizeof (uint64_t)),
        calloc (BUS_QUERY_THREAD_MAX, sizeof (uint64_t)), 0
    };
    int rc = 0;
    if (!set.slots || !set.order) {
        rc = bus_fail (err, BUS_ENOMEM, "out of memory for a thread");
    }
    if (rc == 0) {
        rc = bus_store_snapshot (store, true, err);
    }
    if (rc == 0) {
        Bulkhead__V1__Record *rec = NULL;
        size_t raw_len;
        rc = s_read (store, seq, &rec, &raw_len, err);
        if (rc == 1) {
            rc = bus_fail (err, BUS_ENOTFOUND, "no record %" PRIu64 " in the log", seq);
        }
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    if (rc == 0) {
        s_set_add (&set, seq);
        //  Breadth first: the set's order is the queue.
        for (size_t i = 0; rc == 0 && i < set.count; i++) {
            rc = s_neighbours (store, &set, set.order [i], err);
        }
    }
    if (rc == 0) {
        qsort (set.order, set.count, sizeof set.order [0], s_seq_cmp);
        plan->lists = 1;
        plan->lo = set.order [0];
        plan->hi = set.order [set.count - 1];
        for (size_t i = 0; rc == 0 && i < set.count; i++) {
            rc = s_emit (store, set.order [i], q, fn, arg, plan, err);
        }
    }
    bus_store_snapshot (store, false, NULL);
    free (set.slots);
    free (set.order);
    plan->reads = bus_store_reads (store) - reads;
    plan->past = bus_store_reads_past (store) - past;
    return rc;
}
