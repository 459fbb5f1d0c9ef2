/*  cmd_audit.c: verify, prove, backup, migrate, and keygen --sign: the
    commands that let someone who does not trust the bus's host check its
    log (bus_merkle.h, bus_checkpoint.h). */
#include "cmd.h"
#include "bus_checkpoint.h"
#include "bus_merkle.h"

#include <getopt.h>
#include <pthread.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_KEYS_MAX 8

static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static int
s_fail (const char *prog, bus_code_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (const char *prog, bus_code_t code, const char *fmt, ...)
{
    bus_error_t err = { .code = code };
    va_list args;
    va_start (args, fmt);
    vsnprintf (err.text, sizeof err.text, fmt, args);
    va_end (args);
    return cmd_error (prog, &err);
}

static void
s_when (char out [32], uint64_t time_us)
{
    time_t secs = (time_t) (time_us / 1000000);
    struct tm tm;
    strftime (out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&secs, &tm));
}

//  --pub KEY, up to S_KEYS_MAX of them (old and new during a rotation).
static int
s_add_key (bus_signer_t *keys, size_t *count, const char *path, const char *prog)
{
    bus_error_t err;
    if (*count == S_KEYS_MAX) {
        fprintf (stderr, "bulkhead %s: at most %d --pub keys\n", prog, S_KEYS_MAX);
        return 2;
    }
    if (bus_signer_load (&keys [*count], path, false, &err) != 0) {
        return cmd_error (prog, &err);
    }
    (*count)++;
    return 0;
}


//  --------------------------------------------------------------------------
//  The checkpoints directory, read and checked as a chain

typedef struct {
    bus_checkpoint_t c;
    uint8_t digest [32];
    size_t signed_by;
    bool matched;           //  the log's tree at c.size was compared
} s_ckpt_t;

//  Loads checkpoints 1..last of dir, each signed by one of keys, each
//  naming the one before (number, prev), sizes and times never going back.
//  0 and *out / *count; or 1 after printing the first bad checkpoint.
static int
s_load_checkpoints (const char *dir, const bus_signer_t *keys, size_t key_count,
                    s_ckpt_t **out, size_t *count, const char *prog)
{
    bus_error_t err;
    uint64_t last;
    if (bus_checkpoint_last (dir, &last, &err) != 0) {
        return cmd_error (prog, &err);
    }
    //  Grown as checkpoints are read: a file named with a huge number makes
    //  a gap to report, not an allocation.
    s_ckpt_t *list = NULL;
    size_t max = 0;
    for (uint64_t n = 1; n <= last; n++) {
        if (n > max) {
            size_t grow = max? max * 2: 64;
            s_ckpt_t *bigger = realloc (list, grow * sizeof *list);
            if (!bigger) {
                free (list);
                return s_fail (prog, BUS_ENOMEM, "out of memory for %zu checkpoints", grow);
            }
            list = bigger;
            max = grow;
        }
        s_ckpt_t *c = &list [n - 1];
        memset (c, 0, sizeof *c);
        char *note = NULL;
        size_t len = 0;
        int rc = bus_checkpoint_read (dir, n, &note, &len, &err);
        if (rc == 1) {
            free (list);
            return s_fail (prog, BUS_ECORRUPT, "%s: checkpoint %" PRIu64 " is missing (the "
                           "directory has checkpoints up to %" PRIu64 "): it was deleted",
                           dir, n, last);
        }
        if (rc == 0) {
            rc = bus_checkpoint_open (&c->c, note, len, keys, key_count, &c->signed_by,
                                      c->digest, &err);
        }
        free (note);
        if (rc != 0) {
            free (list);
            return s_fail (prog, err.code, "%s: checkpoint %" PRIu64 ": %s", dir, n, err.text);
        }
        const s_ckpt_t *prev = n > 1? &list [n - 2]: NULL;
        static const uint8_t zeros [32];
        const char *why = NULL;
        if (c->c.number != n) {
            why = "its body says another number: it was copied from elsewhere (replayed)";
        }
        else if (memcmp (c->c.prev, prev? prev->digest: zeros, 32) != 0) {
            why = prev? "its prev does not name the checkpoint before it: replayed or inserted"
                      : "it is number 1 but names a checkpoint before it";
        }
        else if (prev && c->c.size < prev->c.size) {
            why = "it covers fewer records than the checkpoint before it";
        }
        else if (prev && c->c.time_us < prev->c.time_us) {
            why = "its time is before the checkpoint before it";
        }
        else if (prev && strcmp (c->c.origin, prev->c.origin) != 0) {
            why = "its origin is not that of the checkpoint before it";
        }
        if (why) {
            free (list);
            return s_fail (prog, BUS_ECORRUPT, "%s: checkpoint %" PRIu64 ": %s", dir, n, why);
        }
    }
    *out = list;
    *count = (size_t) last;
    return 0;
}


//  --------------------------------------------------------------------------
//  verify

static const char *s_verify_help =
    "usage: bulkhead verify --data DIR [--checkpoints CDIR --pub KEY [--pub KEY ...] [--backup]]\n\n"
    "Checks a log (also while the bus runs, or a copy of one) record by record:\n"
    "sequences with no gap and each in its place, each prev_hash the hash of the\n"
    "record before, each kept payload against its payload_digest (a purged payload\n"
    "is counted, not checkable, and a purge logged after it must cover it: one\n"
    "stripped by hand is named), and the Merkle tree of all records.\n\n"
    "With the bus's signed checkpoints and its public signing key (several --pub\n"
    "during a key rotation) it also finds what a hash chain alone cannot: a cut\n"
    "tail, a record edited and the chain recomputed after it, a deleted, inserted\n"
    "or reordered record, and a forged, deleted or replayed checkpoint. It names the\n"
    "first bad record or checkpoint. Records after the newest checkpoint are\n"
    "reported as not yet anchored: nothing signed covers them yet.\n\n"
    "Needs only the data dir (or a copy), the checkpoints and the public key.\n"
    "Exit 0 if sound, 1 naming the first problem.\n\n"
    "  --data DIR         the data dir, or a restored backup of it\n"
    "  --checkpoints CDIR the checkpoints directory (serve --checkpoints)\n"
    "  --pub KEY          a public signing key file (NAME.sign.pub); any listed key counts\n"
    "  --backup           DIR is a backup (or restored copy): checkpoints written after it\n"
    "                     was made cover records it cannot hold; say so instead of failing\n";

//  The fields of a stored record that verify needs, read from the wire
//  format without decoding the rest (faster, and no allocation).
typedef struct {
    uint64_t seq, time_us, kind, ckpt_number, ckpt_size, purged_us, purge_before_us;
    uint64_t verdict, payload_size;
    const uint8_t *prev, *digest, *payload, *ckpt_digest;
    size_t prev_len, digest_len, payload_len, ckpt_digest_len;
    bool has_seq, has_payload, purged, has_ckpt, has_purge_before;
} s_fields_t;

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

static int
s_fields (const uint8_t *p, size_t len, s_fields_t *f)
{
    memset (f, 0, sizeof *f);
    size_t pos = 0;
    while (pos < len) {
        uint64_t tag, v = 0;
        if (s_varint (p, len, &pos, &tag)) {
            return -1;
        }
        unsigned wire = (unsigned) (tag & 7);
        uint64_t field = tag >> 3;
        const uint8_t *data = NULL;
        if (wire == 0) {
            if (s_varint (p, len, &pos, &v)) {
                return -1;
            }
        }
        else if (wire == 2) {
            if (s_varint (p, len, &pos, &v) || v > len - pos) {
                return -1;
            }
            data = p + pos;
            pos += (size_t) v;
        }
        else if (wire == 1 || wire == 5) {
            pos += wire == 1? 8: 4;
            if (pos > len) {
                return -1;
            }
            continue;
        }
        else {
            return -1;
        }
        if (!data && (field == 4 || field == 18 || field == 19 || field == 41)) {
            return -1;                  //  bytes fields as varints: damaged, not NULL data
        }
        switch (field) {
            case 1: f->seq = v; f->has_seq = true; break;
            case 2: f->time_us = v; break;
            case 3: f->kind = v; break;
            case 4: f->prev = data; f->prev_len = (size_t) v; break;
            case 18: f->digest = data; f->digest_len = (size_t) v; break;
            case 20: f->verdict = v; break;
            case 37: f->payload_size = v; break;
            case 19: f->payload = data; f->payload_len = (size_t) v; f->has_payload = true; break;
            case 38: f->ckpt_number = v; f->has_ckpt = true; break;
            case 39: f->ckpt_size = v; break;
            case 41: f->ckpt_digest = data; f->ckpt_digest_len = (size_t) v; break;
            case 42: f->purged = true; f->purged_us = v; break;
            case 43: f->purge_before_us = v; f->has_purge_before = true; break;
            default: break;
        }
    }
    return 0;
}

//  One record of a batch: what the hashing phase found, for the ordered one.
typedef struct {
    uint64_t seq;
    const uint8_t *raw;             //  in the scan's read transaction
    size_t raw_len;
    s_fields_t f;
    uint8_t leaf [32];
    uint8_t chain [32];             //  format 1's link to the next record: the hash of raw
    bool decodes;
    bool payload_ok;
} s_item_t;

//  Payloads marked purged (field 42, payload_purged_us) that no purge in
//  the log covers yet, one entry per purge time. The leaf hash leaves the
//  payload out, so that a purge keeps the tree; what tells a purge from a
//  payload stripped by hand is the purge's own record: the bus drops the
//  payloads and appends a control record with purge_before_us in one
//  commit, so every purged payload is followed, later in the log, by a
//  purge of what was sent before purge_before_us, a time after it was
//  sent. One purge marks all it drops with one time, so the entries are as
//  many as purges not yet reached: few; a tamperer's many distinct times
//  cost a hash lookup each (an index on purged_us), and are capped. What
//  stays possible by hand: to strip a payload of a message sent before a
//  later purge's purge_before_us that this purge did not drop (queued or
//  held then, or not in its slice).
typedef struct {
    uint64_t purged_us;
    uint64_t first_seq;             //  the first record purged at that time
    uint64_t max_time_us;           //  the newest of them
    uint64_t count;
} s_unpurged_t;

#define S_UNPURGED_MAX  ((size_t) 1 << 20)

//  Nearly all of verify's work is hashing (a leaf hash and a payload
//  digest per record, and one tree node per record), and none of it needs
//  order. So the scan fills batches of S_BATCH records; worker threads,
//  one per core, hash whole batches while the scan goes on, each batch's
//  perfect subtree of leaves included; and the scanning thread takes the
//  hashed batches in order and checks them record by record (place, chain,
//  payload, checkpoints), then appends the batch's subtree roots to the
//  tree. Every check runs in record order on one thread, so the first bad
//  record is the one named, whichever thread hashed it.
//
//  S_BATCH is a power of two, and every batch but the last is full, so a
//  batch starts where the tree's size is a multiple of S_BATCH: its
//  subtree is a node of the log's tree (bus_tree_append_subtree).
//
//  Limits: 2 * workers + 2 batches in flight (about 2 MB each); the scan
//  waits for the oldest to be checked when all are taken.
#define S_BATCH_LEVEL   13
#define S_BATCH         ((size_t) 1 << S_BATCH_LEVEL)
#define S_WORKERS_MAX   8

typedef struct {
    s_item_t *items;                //  S_BATCH
    uint8_t (*nodes) [32];          //  levels 1..S_BATCH_LEVEL of its subtrees
    size_t count;
    bool hashed;                    //  under the lock
} s_batch_t;

typedef struct {
    const char *prog;
    uint64_t next;                  //  the seq the next record must have
    uint64_t chain_from;
    uint8_t prev [32];
    bus_tree_t tree;                //  of every record in the batches checked
    s_ckpt_t *ckpts;
    size_t ckpt_count;
    bool with_ckpts;                //  --checkpoints given (maybe empty)
    const char *cdir;
    const bus_signer_t *keys;
    size_t key_count;
    size_t ckpt_next;               //  the first checkpoint not yet compared
    uint64_t purged, payloads, logged_ckpts;
    s_unpurged_t *unpurged;         //  purged payloads no purge covers yet, by time
    size_t n_unpurged, unpurged_alloc;
    uint32_t *unpurged_ix;          //  open addressing on purged_us: entry + 1, 0 free
    size_t ix_size;                 //  a power of two, at least twice unpurged_alloc
    char problem [900];
    //  The pipeline: batch number n is in slots [n % slot_count].
    s_batch_t *slots;
    size_t slot_count;
    uint64_t filled;                //  batches handed to the workers
    uint64_t taken;                 //  batches a worker has started (under the lock)
    uint64_t checked;               //  batches checked in order: their slots are free
    pthread_t workers [S_WORKERS_MAX];
    size_t worker_count;
    pthread_mutex_t lock;
    pthread_cond_t work;            //  workers wait here: a batch to hash, or quit
    pthread_cond_t hashed;          //  the scan waits here: a batch was hashed
    bool quit;                      //  under the lock
} s_verify_t;

static int
s_problem (s_verify_t *v, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_problem (s_verify_t *v, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (v->problem, sizeof v->problem, fmt, args);
    va_end (args);
    return 1;
}

//  Node j of level (0: the leaves) of a batch's subtrees.
static uint8_t *
s_node (s_batch_t *b, unsigned level, size_t j)
{
    if (level == 0) {
        return b->items [j].leaf;
    }
    return b->nodes [S_BATCH - (S_BATCH >> (level - 1)) + j];
}

//  Appends the batch's first m leaves to tree, whose size is a multiple
//  of S_BATCH: one subtree per bit of m, the largest first, as RFC 9162
//  splits them.
static void
s_append_prefix (bus_tree_t *tree, s_batch_t *b, size_t m)
{
    for (unsigned level = S_BATCH_LEVEL + 1; level-- > 0;) {
        if (m & ((size_t) 1 << level)) {
            bus_tree_append_subtree (tree, level, s_node (b, level, (m >> level) - 1));
        }
    }
}

//  Compares the tree of the records up to item m - 1 of batch b (the
//  checked ones before it) with every checkpoint of that size.
static int
s_match_checkpoints (s_verify_t *v, s_batch_t *b, size_t m)
{
    uint64_t size = v->tree.size + m;
    bool have = false;
    uint8_t root [32];
    while (v->ckpt_next < v->ckpt_count && v->ckpts [v->ckpt_next].c.size == size) {
        s_ckpt_t *c = &v->ckpts [v->ckpt_next];
        if (!have) {
            bus_tree_t tree = v->tree;
            s_append_prefix (&tree, b, m);
            bus_tree_root (&tree, root);
            have = true;
        }
        if (memcmp (root, c->c.root, 32) != 0) {
            uint64_t good = 0;
            for (size_t i = v->ckpt_next; i-- > 0;) {
                if (v->ckpts [i].c.size < c->c.size) {
                    good = v->ckpts [i].c.size;
                    break;
                }
            }
            return s_problem (v, "the log does not match checkpoint %" PRIu64 " (records 1..%"
                              PRIu64 "): a record among %" PRIu64 "..%" PRIu64 " was changed, "
                              "deleted, inserted or moved, and the chain recomputed after it "
                              "(records 1..%" PRIu64 " match the checkpoint before)",
                              c->c.number, c->c.size, good + 1, c->c.size, good);
        }
        c->matched = true;
        v->ckpt_next++;
    }
    return 0;
}

//  The part of the check that needs no other record, for a whole batch.
static void
s_hash_batch (s_batch_t *b, uint64_t chain_from)
{
    for (size_t i = 0; i < b->count; i++) {
        s_item_t *it = &b->items [i];
        //  The first touch of a record's page costs more than hashing it
        //  (a TLB miss in a 10 GB map, a long page walk in a VM): ask for
        //  the one after next now, so it comes while these two are hashed.
        //  Measured at 1M records: 2.6 s of user CPU without it, 2.2 s with.
        if (i + 2 < b->count) {
            const s_item_t *ahead = &b->items [i + 2];
            for (size_t at = 0; at < ahead->raw_len; at += 64) {
                __builtin_prefetch (ahead->raw + at);
            }
        }
        it->decodes = s_fields (it->raw, it->raw_len, &it->f) == 0
                   && bus_record_leaf_hash (it->raw, it->raw_len, it->leaf) == 0;
        if (!it->decodes) {
            //  Never used (the check stops there) but in subtrees over it.
            memset (it->leaf, 0, sizeof it->leaf);
        }
        it->payload_ok = true;
        if (it->decodes && it->f.has_payload) {
            uint8_t digest [32];
            bus_hash (digest, it->f.payload, it->f.payload_len);
            it->payload_ok = it->f.digest_len == 32 && memcmp (digest, it->f.digest, 32) == 0;
        }
        if (it->seq + 1 < chain_from) {
            bus_hash (it->chain, it->raw, it->raw_len);
        }
    }
    //  A full batch makes one subtree of S_BATCH leaves; the last one, one
    //  per bit of its count.
    for (unsigned level = 1; level <= S_BATCH_LEVEL; level++) {
        for (size_t j = 0; j < b->count >> level; j++) {
            bus_merkle_node (s_node (b, level, j), s_node (b, level - 1, 2 * j),
                             s_node (b, level - 1, 2 * j + 1));
        }
    }
}

static void *
s_worker (void *arg)
{
    s_verify_t *v = arg;
    pthread_mutex_lock (&v->lock);
    while (true) {
        while (v->taken == v->filled && !v->quit) {
            pthread_cond_wait (&v->work, &v->lock);
        }
        if (v->quit) {
            break;
        }
        s_batch_t *b = &v->slots [v->taken++ % v->slot_count];
        pthread_mutex_unlock (&v->lock);
        s_hash_batch (b, v->chain_from);
        pthread_mutex_lock (&v->lock);
        b->hashed = true;
        pthread_cond_signal (&v->hashed);
    }
    pthread_mutex_unlock (&v->lock);
    return NULL;
}

static size_t
s_unpurged_slot (const s_verify_t *v, uint64_t purged_us)
{
    size_t mask = v->ix_size - 1;
    size_t i = (size_t) ((purged_us * UINT64_C (0x9e3779b97f4a7c15)) >> 20) & mask;
    while (v->unpurged_ix [i] && v->unpurged [v->unpurged_ix [i] - 1].purged_us != purged_us) {
        i = (i + 1) & mask;
    }
    return i;
}

//  The index again, after the entries grew or moved.
static int
s_unpurged_reindex (s_verify_t *v)
{
    size_t size = 128;
    while (size < 2 * v->unpurged_alloc) {
        size *= 2;
    }
    if (size != v->ix_size) {
        uint32_t *ix = realloc (v->unpurged_ix, size * sizeof *ix);
        if (!ix) {
            return -1;
        }
        v->unpurged_ix = ix;
        v->ix_size = size;
    }
    memset (v->unpurged_ix, 0, v->ix_size * sizeof *v->unpurged_ix);
    for (size_t i = 0; i < v->n_unpurged; i++) {
        v->unpurged_ix [s_unpurged_slot (v, v->unpurged [i].purged_us)] = (uint32_t) i + 1;
    }
    return 0;
}

//  Notes a purged payload of record seq, to be covered by a purge later.
static int
s_unpurged_add (s_verify_t *v, uint64_t seq, const s_fields_t *f)
{
    if (!v->unpurged_ix && s_unpurged_reindex (v) != 0) {
        return s_problem (v, "out of memory at record %" PRIu64, seq);
    }
    size_t slot = s_unpurged_slot (v, f->purged_us);
    if (v->unpurged_ix [slot]) {
        s_unpurged_t *u = &v->unpurged [v->unpurged_ix [slot] - 1];
        u->count++;
        u->max_time_us = f->time_us > u->max_time_us? f->time_us: u->max_time_us;
        return 0;
    }
    if (v->n_unpurged == S_UNPURGED_MAX) {
        return s_problem (v, "record %" PRIu64 ": over %zu different purge times wait for the "
                          "purges that would cover them; the bus marks all a purge drops with "
                          "one time: payloads were stripped by hand", seq, S_UNPURGED_MAX);
    }
    if (v->n_unpurged == v->unpurged_alloc) {
        size_t alloc = v->unpurged_alloc? v->unpurged_alloc * 2: 64;
        s_unpurged_t *grown = realloc (v->unpurged, alloc * sizeof *grown);
        if (!grown) {
            return s_problem (v, "out of memory at record %" PRIu64, seq);
        }
        v->unpurged = grown;
        v->unpurged_alloc = alloc;
    }
    v->unpurged [v->n_unpurged++] = (s_unpurged_t) { f->purged_us, seq, f->time_us, 1 };
    if (2 * v->unpurged_alloc > v->ix_size) {
        return s_unpurged_reindex (v) == 0? 0: s_problem (v, "out of memory at record %" PRIu64, seq);
    }
    v->unpurged_ix [slot] = (uint32_t) v->n_unpurged;
    return 0;
}

//  A purge's record, f: what it covers is no longer waiting.
static int
s_unpurged_cover (s_verify_t *v, const s_fields_t *f)
{
    size_t kept = 0;
    for (size_t i = 0; i < v->n_unpurged; i++) {
        const s_unpurged_t *u = &v->unpurged [i];
        if (u->max_time_us >= f->purge_before_us) {
            v->unpurged [kept++] = *u;
        }
    }
    if (kept == v->n_unpurged) {
        return 0;
    }
    v->n_unpurged = kept;
    return s_unpurged_reindex (v);
}

//  The ordered part: where item pos of b is, what it chains to, the
//  checkpoints of the tree up to it.
static int
s_check_item (s_verify_t *v, s_batch_t *b, size_t pos)
{
    const s_item_t *it = &b->items [pos];
    uint64_t seq = it->seq;
    const s_fields_t *f = &it->f;
    if (seq != v->next) {
        if (seq > v->next) {
            return s_problem (v, "record %" PRIu64 " is missing (the next one there is %" PRIu64
                              "): records were deleted", v->next, seq);
        }
        return s_problem (v, "record key %" PRIu64 " out of order", seq);
    }
    if (!it->decodes) {
        return s_problem (v, "record %" PRIu64 " does not decode: it was damaged", seq);
    }
    if (!f->has_seq || f->seq != seq) {
        return s_problem (v, "record %" PRIu64 " says it is record %" PRIu64 ": records were "
                          "reordered or moved", seq, f->seq);
    }
    static const uint8_t zeros [32];
    const uint8_t *want = seq == 1? zeros: v->prev;
    if (f->prev_len != 32 || memcmp (f->prev, want, 32) != 0) {
        return s_problem (v, "record %" PRIu64 ": its prev_hash is not the hash of record %"
                          PRIu64 ": the log was altered there", seq, seq - 1);
    }
    if (!it->payload_ok) {
        return s_problem (v, "record %" PRIu64 ": its payload does not match its "
                          "payload_digest: the payload was changed", seq);
    }
    if (f->has_payload) {
        v->payloads++;
    }
    else if (!f->purged && f->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND && f->payload_size > 0
         &&  (f->verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
          ||  f->verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED
          ||  f->verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD)) {
        //  The bus keeps the payload of every message it carried until a
        //  purge drops it and marks it (field 42); only a refused message
        //  has none. The leaf leaves the payload out, so nothing else sees
        //  a payload dropped without the mark.
        return s_problem (v, "record %" PRIu64 ": its payload is gone (%" PRIu64 " bytes) and it "
                          "is not marked purged: the payload was stripped, not purged", seq,
                          f->payload_size);
    }
    else if (f->purged) {
        v->purged++;
        if (s_unpurged_add (v, seq, f) != 0) {
            return 1;
        }
    }
    if (f->kind == BULKHEAD__V1__RECORD_KIND__RECORD_CONTROL && f->has_purge_before) {
        if (s_unpurged_cover (v, f) != 0) {
            return s_problem (v, "out of memory at record %" PRIu64, seq);
        }
    }
    //  A checkpoint the log says it wrote must be the one in the directory.
    if (f->kind == BULKHEAD__V1__RECORD_KIND__RECORD_CHECKPOINT && f->has_ckpt && v->with_ckpts) {
        v->logged_ckpts++;
        //  Beside a live bus: the bus writes a checkpoint's file before its
        //  record, so one written since the directory was read is there now.
        //  Only those up to the one named are taken: later ones may cover
        //  records this scan's snapshot does not hold.
        char *note = NULL;
        size_t note_len = 0;
        if (f->ckpt_number > v->ckpt_count
        &&  bus_checkpoint_read (v->cdir, f->ckpt_number, &note, &note_len, NULL) == 0) {
            free (note);
            s_ckpt_t *list;
            size_t count;
            if (s_load_checkpoints (v->cdir, v->keys, v->key_count, &list, &count, v->prog) != 0) {
                return s_problem (v, "the checkpoints directory changed under verify and no "
                                  "longer reads as a chain (above)");
            }
            for (size_t i = 0; i < v->ckpt_count && i < count; i++) {
                list [i].matched = v->ckpts [i].matched;
            }
            free (v->ckpts);
            v->ckpts = list;
            v->ckpt_count = count < f->ckpt_number? count: (size_t) f->ckpt_number;
        }
        if (f->ckpt_number == 0 || f->ckpt_number > v->ckpt_count) {
            return s_problem (v, "record %" PRIu64 " logs checkpoint %" PRIu64 ", which is not "
                              "in the checkpoints directory: it was deleted, or this is another "
                              "bus's directory", seq, f->ckpt_number);
        }
        const s_ckpt_t *c = &v->ckpts [f->ckpt_number - 1];
        if (f->ckpt_digest_len != 32 || memcmp (f->ckpt_digest, c->digest, 32) != 0
        ||  f->ckpt_size != c->c.size) {
            return s_problem (v, "record %" PRIu64 " logs a checkpoint %" PRIu64 " other than "
                              "the one in the directory: one of them was replaced", seq,
                              f->ckpt_number);
        }
    }
    memcpy (v->prev, seq + 1 < v->chain_from? it->chain: it->leaf, 32);
    v->next++;
    return s_match_checkpoints (v, b, pos + 1);
}

static int
s_check_batch (s_verify_t *v, s_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        if (s_check_item (v, b, i) != 0) {
            return 1;
        }
    }
    s_append_prefix (&v->tree, b, b->count);
    return 0;
}

//  Checks the hashed batches in order, all those hashed already, and
//  waits for more until at most keep are in flight.
static int
s_check_hashed (s_verify_t *v, uint64_t keep)
{
    while (v->checked < v->filled) {
        s_batch_t *b = &v->slots [v->checked % v->slot_count];
        pthread_mutex_lock (&v->lock);
        while (!b->hashed && v->filled - v->checked > keep) {
            pthread_cond_wait (&v->hashed, &v->lock);
        }
        bool ready = b->hashed;
        pthread_mutex_unlock (&v->lock);
        if (!ready) {
            break;
        }
        if (s_check_batch (v, b) != 0) {
            return 1;
        }
        b->count = 0;
        v->checked++;
    }
    return 0;
}

//  Hands the batch being filled to the workers (or hashes it here if
//  there are none), then checks what is hashed, keeping a slot free.
static int
s_submit (s_verify_t *v)
{
    s_batch_t *b = &v->slots [v->filled % v->slot_count];
    pthread_mutex_lock (&v->lock);
    b->hashed = false;
    v->filled++;
    pthread_cond_signal (&v->work);
    pthread_mutex_unlock (&v->lock);
    if (v->worker_count == 0) {
        s_hash_batch (b, v->chain_from);
        b->hashed = true;
    }
    return s_check_hashed (v, v->slot_count - 1);
}

//  Stops the workers after the batch each is on: none touches a record's
//  bytes once the scan's read transaction may end.
static void
s_stop_workers (s_verify_t *v)
{
    pthread_mutex_lock (&v->lock);
    v->quit = true;
    pthread_cond_broadcast (&v->work);
    pthread_mutex_unlock (&v->lock);
    for (size_t i = 0; i < v->worker_count; i++) {
        pthread_join (v->workers [i], NULL);
    }
    v->worker_count = 0;
}

static int
s_verify_record (void *arg, uint64_t seq, const uint8_t *raw, size_t raw_len)
{
    s_verify_t *v = arg;
    s_batch_t *b = &v->slots [v->filled % v->slot_count];
    int rc = 0;
    if (raw) {
        s_item_t *it = &b->items [b->count++];
        it->seq = seq;
        it->raw = raw;
        it->raw_len = raw_len;
        if (b->count == S_BATCH) {
            rc = s_submit (v);
        }
    }
    else {
        //  The end of the log, still in the read transaction: the rest.
        if (b->count > 0) {
            rc = s_submit (v);
        }
        if (rc == 0) {
            rc = s_check_hashed (v, 0);
        }
    }
    if (rc != 0 || !raw) {
        s_stop_workers (v);
    }
    return rc;
}

static void
s_free_slots (s_verify_t *v)
{
    for (size_t i = 0; v->slots && i < v->slot_count; i++) {
        free (v->slots [i].items);
        free (v->slots [i].nodes);
    }
    free (v->slots);
    v->slots = NULL;
}

//  The scan, with a worker per core (up to S_WORKERS_MAX).
static int
s_verify_scan (bus_store_t *store, s_verify_t *v, bus_error_t *err)
{
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    size_t workers = cores < 1? 1: cores > S_WORKERS_MAX? S_WORKERS_MAX: (size_t) cores;
    v->slot_count = 2 * workers + 2;
    v->slots = calloc (v->slot_count, sizeof *v->slots);
    bool ok = v->slots != NULL;
    for (size_t i = 0; ok && i < v->slot_count; i++) {
        v->slots [i].items = malloc (S_BATCH * sizeof *v->slots [i].items);
        v->slots [i].nodes = malloc ((S_BATCH - 1) * sizeof *v->slots [i].nodes);
        ok = v->slots [i].items && v->slots [i].nodes;
    }
    if (!ok) {
        s_free_slots (v);
        return bus_fail (err, BUS_ENOMEM, "out of memory for verify's batches");
    }
    pthread_mutex_init (&v->lock, NULL);
    pthread_cond_init (&v->work, NULL);
    pthread_cond_init (&v->hashed, NULL);
    while (v->worker_count < workers
       &&  pthread_create (&v->workers [v->worker_count], NULL, s_worker, v) == 0) {
        v->worker_count++;
    }
    int rc = bus_store_scan (store, 1, s_verify_record, v, err);
    s_stop_workers (v);             //  after a read error; else done already
    pthread_mutex_destroy (&v->lock);
    pthread_cond_destroy (&v->work);
    pthread_cond_destroy (&v->hashed);
    s_free_slots (v);
    return rc;
}

int
cmd_verify (int argc, char **argv)
{
    static const struct option options [] = {
        { "data", required_argument, NULL, 'd' },
        { "checkpoints", required_argument, NULL, 'c' },
        { "pub", required_argument, NULL, 'p' },
        { "backup", no_argument, NULL, 'b' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL, *cdir = NULL;
    bool backup = false;
    bus_signer_t keys [S_KEYS_MAX];
    size_t key_count = 0;
    int opt, rc;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 'c': cdir = optarg; break;
            case 'b': backup = true; break;
            case 'p':
                if ((rc = s_add_key (keys, &key_count, optarg, "verify")) != 0) {
                    return rc;
                }
                break;
            case 'h': return s_help (s_verify_help, true);
            default: return s_help (s_verify_help, false);
        }
    }
    if (!dir || optind != argc || (cdir && key_count == 0) || (!cdir && key_count)) {
        if (dir && cdir && key_count == 0) {
            fprintf (stderr, "bulkhead verify: --checkpoints needs the bus's public signing key: "
                             "--pub NAME.sign.pub\n");
        }
        return s_help (s_verify_help, false);
    }
    s_verify_t v = { .prog = "verify", .next = 1, .with_ckpts = cdir != NULL, .cdir = cdir,
                     .keys = keys, .key_count = key_count };
    bus_tree_init (&v.tree);
    if (cdir && (rc = s_load_checkpoints (cdir, keys, key_count, &v.ckpts, &v.ckpt_count,
                                          "verify")) != 0) {
        return rc;
    }
    bus_store_t *store = cmd_open_log (dir, "verify");
    if (!store) {
        free (v.ckpts);
        free (v.unpurged);
        free (v.unpurged_ix);
        return 1;
    }
    v.chain_from = bus_store_chain_from (store);
    int format = bus_store_format (store);
    bus_tree_t kept;
    bus_store_tree (store, &kept);
    bus_error_t err;
    rc = s_verify_scan (store, &v, &err);
    bus_store_destroy (&store);
    if (rc < 0) {
        free (v.ckpts);
        free (v.unpurged);
        free (v.unpurged_ix);
        return cmd_error ("verify", &err);
    }
    uint64_t count = v.next - 1;
    //  A backup is older than the checkpoints written since: it is checked
    //  against every checkpoint it holds in full.
    size_t beyond = v.ckpt_count - v.ckpt_next;
    if (backup) {
        v.ckpt_count = v.ckpt_next;
    }
    if (rc == 0 && v.ckpt_next < v.ckpt_count) {
        const s_ckpt_t *c = &v.ckpts [v.ckpt_next];
        rc = s_problem (&v, "the log has %" PRIu64 " records but checkpoint %" PRIu64 " covers %"
                        PRIu64 ": its tail was cut (records %" PRIu64 "..%" PRIu64 " are "
                        "missing)", count, c->c.number, c->c.size, count + 1, c->c.size);
    }
    if (rc == 0 && v.n_unpurged > 0) {
        //  The first record whose payload went with no purge to say so.
        const s_unpurged_t *first = &v.unpurged [0];
        uint64_t stripped = 0;
        for (size_t i = 0; i < v.n_unpurged; i++) {
            first = v.unpurged [i].first_seq < first->first_seq? &v.unpurged [i]: first;
            stripped += v.unpurged [i].count;
        }
        char when [32];
        s_when (when, first->purged_us);
        rc = s_problem (&v, "record %" PRIu64 ": its payload is gone, marked purged at %s, but no "
                        "purge in the log after it covers it (%" PRIu64 " such payloads): the "
                        "payload was stripped, not purged", first->first_seq, when, stripped);
    }
    if (rc == 0 && format == BUS_STORE_FORMAT && kept.size == count) {
        uint8_t a [32], b [32];
        bus_tree_root (&kept, a);
        bus_tree_root (&v.tree, b);
        if (memcmp (a, b, 32) != 0) {
            rc = s_problem (&v, "the Merkle tree state kept with the log is not the tree of its "
                            "records: the log or its state was altered");
        }
    }
    if (rc != 0) {
        free (v.ckpts);
        free (v.unpurged);
        free (v.unpurged_ix);
        return s_fail ("verify", BUS_ECORRUPT, "%s: %s", dir, v.problem);
    }
    uint8_t root [32];
    char root_b64 [48];
    bus_tree_root (&v.tree, root);
    sodium_bin2base64 (root_b64, sizeof root_b64, root, 32, sodium_base64_VARIANT_ORIGINAL);
    printf ("%s: ok: %" PRIu64 " records, sequence 1..%" PRIu64 " with no gap, hash chain "
            "intact, %" PRIu64 " payloads match their digests, %" PRIu64 " purged (digest kept, "
            "payload not checkable); Merkle root %s\n", dir, count, count, v.payloads, v.purged,
            root_b64);
    if (!cdir) {
        printf ("%s: not checked against signed checkpoints (no --checkpoints): this cannot "
                "detect a cut tail, nor a log rewritten and re-chained by someone with write "
                "access to the data dir\n", dir);
    }
    else if (v.ckpt_count == 0) {
        printf ("%s: the checkpoints directory %s holds no checkpoint: nothing is anchored; "
                "all %" PRIu64 " records are not yet anchored\n", dir, cdir, count);
    }
    else {
        const s_ckpt_t *c = &v.ckpts [v.ckpt_count - 1];
        char when [32];
        s_when (when, c->c.time_us);
        printf ("%s: matches %zu signed checkpoints (%" PRIu64 " logged in the log); the newest, "
                "%" PRIu64 " of %s signed by %s, anchors records 1..%" PRIu64 "\n", dir,
                v.ckpt_count, v.logged_ckpts, c->c.number, when, keys [c->signed_by].name,
                c->c.size);
        if (count > c->c.size) {
            printf ("%s: records %" PRIu64 "..%" PRIu64 " (%" PRIu64 ") are not yet anchored: no "
                    "checkpoint covers them yet\n", dir, c->c.size + 1, count, count - c->c.size);
        }
    }
    if (backup && beyond > 0) {
        printf ("%s: a backup: %zu later checkpoints cover records this copy does not hold "
                "(from record %" PRIu64 " on): it ends where the live log went on\n", dir, beyond,
                count + 1);
    }
    free (v.ckpts);
    free (v.unpurged);
    free (v.unpurged_ix);
    return 0;
}


//  --------------------------------------------------------------------------
//  prove

static const char *s_prove_help =
    "usage: bulkhead prove SEQ --data DIR --checkpoints CDIR [--checkpoint N]\n"
    "       bulkhead prove --consistency N M --data DIR --checkpoints CDIR\n"
    "       bulkhead prove --check FILE --pub KEY [--pub KEY ...]\n\n"
    "The first form prints an inclusion proof of record SEQ (leaf SEQ-1; a SEND's ACK\n"
    "names its leaf) under a signed checkpoint: the newest, or N. The proof holds the\n"
    "record's bytes, the hashes on its path to the root (RFC 9162) and the signed\n"
    "checkpoint, so anyone can check it without the log. The second prints a\n"
    "consistency proof between checkpoints N and M (M a later one): the log of M\n"
    "extends the log of N, nothing in it rewritten.\n\n"
    "--check FILE checks either kind of proof with the bus's public signing key\n"
    "(FILE - reads stdin): exit 0 if it holds, 1 if not.\n";

//  Every leaf hash up to size, read once: a proof needs most of them.
typedef struct {
    uint8_t (*leaves) [32];
    uint64_t size;
    uint64_t got;
} s_leaves_t;

static int
s_collect (void *arg, uint64_t seq, const uint8_t *raw, size_t raw_len)
{
    s_leaves_t *l = arg;
    if (!raw) {
        return 0;                   //  the end of the log
    }
    if (l->got == l->size) {
        return 2;
    }
    if (seq != l->got + 1 || bus_record_leaf_hash (raw, raw_len, l->leaves [l->got]) != 0) {
        return 1;
    }
    l->got++;
    return 0;
}

static int
s_leaf (void *arg, uint64_t index, uint8_t out [32])
{
    s_leaves_t *l = arg;
    if (index >= l->got) {
        return -1;
    }
    memcpy (out, l->leaves [index], 32);
    return 0;
}

static int
s_read_leaves (bus_store_t *store, uint64_t size, s_leaves_t *l)
{
    l->size = size;
    l->got = 0;
    l->leaves = malloc ((size? size: 1) * 32);
    if (!l->leaves) {
        return s_fail ("prove", BUS_ENOMEM, "out of memory for %" PRIu64 " leaf hashes", size);
    }
    bus_error_t err;
    int rc = bus_store_scan (store, 1, s_collect, l, &err);
    if (rc < 0) {
        return cmd_error ("prove", &err);
    }
    if (l->got != size) {
        return s_fail ("prove", BUS_ECORRUPT, "the log does not hold records 1..%" PRIu64
                       " in order (bulkhead verify says where)", size);
    }
    return 0;
}

static void
s_print_path (uint8_t path [][32], size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char b64 [48];
        sodium_bin2base64 (b64, sizeof b64, path [i], 32, sodium_base64_VARIANT_ORIGINAL);
        printf ("path %s\n", b64);
    }
}

//  Reads checkpoint n (0: the newest) as a note, checking nothing: the
//  proof's reader checks its signature.
static char *
s_note (const char *cdir, uint64_t *n, bus_checkpoint_t *c)
{
    bus_error_t err;
    if (*n == 0 && bus_checkpoint_last (cdir, n, &err) != 0) {
        cmd_error ("prove", &err);
        return NULL;
    }
    char *note = NULL;
    size_t len = 0;
    int rc = *n? bus_checkpoint_read (cdir, *n, &note, &len, &err): 1;
    if (rc != 0) {
        if (rc == 1) {
            s_fail ("prove", BUS_ENOTFOUND, "%s: no checkpoint %" PRIu64, cdir, *n);
        }
        else {
            cmd_error ("prove", &err);
        }
        return NULL;
    }
    //  Parsed with no key: only its fields are wanted here.
    uint8_t digest [32];
    if (bus_checkpoint_open (c, note, len, NULL, 0, NULL, digest, &err) != 0
    &&  err.code != BUS_EKEY) {
        cmd_error ("prove", &err);
        free (note);
        return NULL;
    }
    return note;
}

static int
s_prove_inclusion (const char *dir, const char *cdir, uint64_t seq, uint64_t number)
{
    bus_checkpoint_t c;
    char *note = s_note (cdir, &number, &c);
    if (!note) {
        return 1;
    }
    if (seq == 0 || seq > c.size) {
        free (note);
        return s_fail ("prove", BUS_ENOTFOUND, "record %" PRIu64 " is not covered by checkpoint %"
                       PRIu64 " (records 1..%" PRIu64 "); a later checkpoint will cover it",
                       seq, number, c.size);
    }
    bus_store_t *store = cmd_open_log (dir, "prove");
    if (!store) {
        free (note);
        return 1;
    }
    s_leaves_t l;
    int rc = s_read_leaves (store, c.size, &l);
    void *raw = NULL;
    size_t raw_len = 0;
    bus_error_t err;
    if (rc == 0 && bus_store_record_raw (store, seq, &raw, &raw_len, &err) != 0) {
        rc = s_fail ("prove", BUS_ENOTFOUND, "record %" PRIu64 " cannot be read", seq);
    }
    bus_store_destroy (&store);
    uint8_t path [BUS_MERKLE_PROOF_MAX][32];
    size_t count = 0;
    if (rc == 0 && bus_merkle_inclusion (seq - 1, c.size, s_leaf, &l, path, &count) != 0) {
        rc = s_fail ("prove", BUS_ECORRUPT, "cannot build the proof");
    }
    if (rc == 0) {
        char *b64 = malloc (sodium_base64_ENCODED_LEN (raw_len, sodium_base64_VARIANT_ORIGINAL));
        if (b64) {
            sodium_bin2base64 (b64, sodium_base64_ENCODED_LEN (raw_len,
                               sodium_base64_VARIANT_ORIGINAL), raw, raw_len,
                               sodium_base64_VARIANT_ORIGINAL);
            printf ("bulkhead inclusion proof\nseq %" PRIu64 "\nleaf %" PRIu64 "\nsize %" PRIu64
                    "\nrecord %s\n", seq, seq - 1, c.size, b64);
            s_print_path (path, count);
            printf ("checkpoint\n%s", note);
            free (b64);
        }
        else {
            rc = s_fail ("prove", BUS_ENOMEM, "out of memory");
        }
    }
    free (raw);
    free (l.leaves);
    free (note);
    return rc;
}

static int
s_prove_consistency (const char *dir, const char *cdir, uint64_t first, uint64_t second)
{
    bus_checkpoint_t a, b;
    char *note_a = s_note (cdir, &first, &a);
    char *note_b = note_a? s_note (cdir, &second, &b): NULL;
    int rc = note_b? 0: 1;
    if (rc == 0 && (a.size == 0 || a.size > b.size)) {
        rc = s_fail ("prove", BUS_EINVAL, "checkpoint %" PRIu64 " (%" PRIu64 " records) must "
                     "cover at least one record and no more than checkpoint %" PRIu64 " (%" PRIu64
                     ")", first, a.size, second, b.size);
    }
    bus_store_t *store = rc == 0? cmd_open_log (dir, "prove"): NULL;
    s_leaves_t l = { 0 };
    if (rc == 0 && !store) {
        rc = 1;
    }
    if (rc == 0) {
        rc = s_read_leaves (store, b.size, &l);
    }
    bus_store_destroy (&store);
    uint8_t path [BUS_MERKLE_PROOF_MAX][32];
    size_t count = 0;
    if (rc == 0 && bus_merkle_consistency (a.size, b.size, s_leaf, &l, path, &count) != 0) {
        rc = s_fail ("prove", BUS_ECORRUPT, "cannot build the proof");
    }
    if (rc == 0) {
        printf ("bulkhead consistency proof\nfirst %" PRIu64 "\nsecond %" PRIu64 "\n", a.size,
                b.size);
        s_print_path (path, count);
        printf ("checkpoint\n%scheckpoint\n%s", note_a, note_b);
    }
    free (l.leaves);
    free (note_a);
    free (note_b);
    return rc;
}

//  A proof file: "key value" lines, then "checkpoint" and a note, once or
//  twice.
typedef struct {
    bool inclusion;
    uint64_t seq, leaf, size, first, second;
    uint8_t *record;
    size_t record_len;
    uint8_t path [BUS_MERKLE_PROOF_MAX][32];
    size_t count;
    char *notes [2];
    size_t note_lens [2];
    size_t note_count;
} s_proof_t;

static bool
s_proof_u64 (const char *line, const char *key, uint64_t *out)
{
    size_t n = strlen (key);
    unsigned long long v;
    if (strncmp (line, key, n) != 0 || line [n] != ' '
    ||  !cmd_number (line + n + 1, 0, UINT64_MAX, &v)) {
        return false;
    }
    *out = v;
    return true;
}

static int
s_proof_parse (char *text, s_proof_t *p)
{
    memset (p, 0, sizeof *p);
    char *line = text, *next;
    int i = 0;
    for (; line && *line; line = next, i++) {
        next = strchr (line, '\n');
        if (next) {
            *next++ = 0;
        }
        if (i == 0) {
            if (strcmp (line, "bulkhead inclusion proof") == 0) {
                p->inclusion = true;
            }
            else if (strcmp (line, "bulkhead consistency proof") != 0) {
                return -1;
            }
            continue;
        }
        if (strcmp (line, "checkpoint") == 0) {
            if (!next || p->note_count == 2) {
                return -1;
            }
            //  The note runs to the next "checkpoint" line or the end.
            char *end = strstr (next, "\ncheckpoint\n");
            p->notes [p->note_count] = next;
            p->note_lens [p->note_count] = end? (size_t) (end - next + 1): strlen (next);
            p->note_count++;
            next = end? end + 1: NULL;
            continue;
        }
        if (strncmp (line, "path ", 5) == 0) {
            size_t got = 0;
            if (p->count == BUS_MERKLE_PROOF_MAX
            ||  sodium_base642bin (p->path [p->count], 32, line + 5, strlen (line + 5), NULL, &got,
                                   NULL, sodium_base64_VARIANT_ORIGINAL) != 0 || got != 32) {
                return -1;
            }
            p->count++;
        }
        else if (strncmp (line, "record ", 7) == 0) {
            size_t len = strlen (line + 7);
            p->record = malloc (len + 1);
            if (!p->record || sodium_base642bin (p->record, len, line + 7, len, NULL,
                                                 &p->record_len, NULL,
                                                 sodium_base64_VARIANT_ORIGINAL) != 0) {
                return -1;
            }
        }
        else if (!s_proof_u64 (line, "seq", &p->seq) && !s_proof_u64 (line, "leaf", &p->leaf)
             &&  !s_proof_u64 (line, "size", &p->size) && !s_proof_u64 (line, "first", &p->first)
             &&  !s_proof_u64 (line, "second", &p->second)) {
            return -1;
        }
    }
    return p->note_count == (p->inclusion? 1u: 2u) && (!p->inclusion || p->record)? 0: -1;
}

static int
s_prove_check (const char *file, const bus_signer_t *keys, size_t key_count)
{
    FILE *in = strcmp (file, "-") == 0? stdin: fopen (file, "r");
    if (!in) {
        return s_fail ("prove", BUS_EIO, "%s: cannot read it", file);
    }
    size_t max = 16 << 20, len = 0;
    char *text = malloc (max + 1);
    if (text) {
        len = fread (text, 1, max + 1, in);
    }
    if (in != stdin) {
        fclose (in);
    }
    if (!text || len > max) {
        free (text);
        return s_fail ("prove", BUS_EINVAL, "%s: not a proof (too large)", file);
    }
    text [len] = 0;
    s_proof_t p;
    int rc = 0;
    if (s_proof_parse (text, &p) != 0) {
        rc = s_fail ("prove", BUS_EINVAL, "%s: not a bulkhead proof (bulkhead prove makes them)",
                     file);
    }
    bus_checkpoint_t c [2];
    uint8_t digest [32];
    size_t signer = 0;
    bus_error_t err;
    for (size_t i = 0; rc == 0 && i < p.note_count; i++) {
        if (bus_checkpoint_open (&c [i], p.notes [i], p.note_lens [i], keys, key_count, &signer,
                                 digest, &err) != 0) {
            rc = s_fail ("prove", err.code, "%s: %s", file, err.text);
        }
    }
    if (rc == 0 && p.inclusion) {
        uint8_t leaf [32];
        Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, p.record_len, p.record);
        if (!rec || bus_record_leaf_hash (p.record, p.record_len, leaf) != 0) {
            rc = s_fail ("prove", BUS_ECORRUPT, "%s: its record does not decode", file);
        }
        else if (rec->seq != p.leaf + 1 || c [0].size != p.size
             ||  !bus_merkle_check_inclusion (p.leaf, c [0].size, leaf,
                                              (const uint8_t (*) [32]) p.path, p.count,
                                              c [0].root)) {
            rc = s_fail ("prove", BUS_ECORRUPT, "%s: the proof does NOT hold: record %" PRIu64
                         " is not leaf %" PRIu64 " of the log signed in checkpoint %" PRIu64,
                         file, rec->seq, p.leaf, c [0].number);
        }
        else {
            uint8_t pd [32];
            if (rec->has_payload) {
                bus_hash (pd, rec->payload.data, rec->payload.len);
            }
            bool payload_ok = !rec->has_payload || (rec->payload_digest.len == 32
                                                    && memcmp (pd, rec->payload_digest.data, 32) == 0);
            if (!payload_ok) {
                rc = s_fail ("prove", BUS_ECORRUPT, "%s: record %" PRIu64 " is in the log, but the "
                             "payload in this proof does not match its digest", file, rec->seq);
            }
            else {
                char when [32];
                s_when (when, c [0].time_us);
                printf ("%s: ok: record %" PRIu64 " (leaf %" PRIu64 ") is in the log of %" PRIu64
                        " records signed by %s in checkpoint %" PRIu64 " of %s (%s)%s\n", file,
                        rec->seq, p.leaf, c [0].size, keys [signer].name, c [0].number, when,
                        c [0].origin, rec->has_payload? "; its payload matches its digest"
                                                      : "; payload not included (digest only)");
            }
        }
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    else if (rc == 0) {
        if (strcmp (c [0].origin, c [1].origin) != 0 || c [0].size != p.first
        ||  c [1].size != p.second
        ||  !bus_merkle_check_consistency (c [0].size, c [1].size, c [0].root, c [1].root,
                                           (const uint8_t (*) [32]) p.path, p.count)) {
            rc = s_fail ("prove", BUS_ECORRUPT, "%s: the proof does NOT hold: the log of "
                         "checkpoint %" PRIu64 " does not extend that of checkpoint %" PRIu64,
                         file, c [1].number, c [0].number);
        }
        else {
            printf ("%s: ok: the log of checkpoint %" PRIu64 " (%" PRIu64 " records) extends "
                    "that of checkpoint %" PRIu64 " (%" PRIu64 " records), nothing rewritten (%s)\n",
                    file, c [1].number, c [1].size, c [0].number, c [0].size, c [0].origin);
        }
    }
    free (p.record);
    free (text);
    return rc;
}

int
cmd_prove (int argc, char **argv)
{
    static const struct option options [] = {
        { "data", required_argument, NULL, 'd' },
        { "checkpoints", required_argument, NULL, 'c' },
        { "checkpoint", required_argument, NULL, 'n' },
        { "consistency", no_argument, NULL, 'C' },
        { "check", required_argument, NULL, 'k' },
        { "pub", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dir = NULL, *cdir = NULL, *check = NULL;
    bool consistency = false;
    unsigned long long number = 0, a = 0, b = 0;
    bus_signer_t keys [S_KEYS_MAX];
    size_t key_count = 0;
    int opt, rc;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 'c': cdir = optarg; break;
            case 'C': consistency = true; break;
            case 'k': check = optarg; break;
            case 'n':
                if (!cmd_number (optarg, 1, UINT64_MAX, &number)) {
                    return s_help (s_prove_help, false);
                }
                break;
            case 'p':
                if ((rc = s_add_key (keys, &key_count, optarg, "prove")) != 0) {
                    return rc;
                }
                break;
            case 'h': return s_help (s_prove_help, true);
            default: return s_help (s_prove_help, false);
        }
    }
    if (check) {
        if (key_count == 0 || optind != argc) {
            return s_help (s_prove_help, false);
        }
        return s_prove_check (check, keys, key_count);
    }
    if (!dir || !cdir) {
        return s_help (s_prove_help, false);
    }
    if (consistency) {
        if (optind != argc - 2 || !cmd_number (argv [optind], 1, UINT64_MAX, &a)
        ||  !cmd_number (argv [optind + 1], 1, UINT64_MAX, &b)) {
            return s_help (s_prove_help, false);
        }
        return s_prove_consistency (dir, cdir, a, b);
    }
    if (optind != argc - 1 || !cmd_number (argv [optind], 1, UINT64_MAX, &a)) {
        return s_help (s_prove_help, false);
    }
    return s_prove_inclusion (dir, cdir, a, number);
}


//  --------------------------------------------------------------------------
//  backup, migrate, keygen --sign

static const char *s_backup_help =
    "usage: bulkhead backup --data DIR OUT\n\n"
    "Copies the log and state in DIR into the new directory OUT (made 0700; one that\n"
    "already holds a log is refused): one consistent snapshot, free pages left out\n"
    "(LMDB's compacting copy), also while the bus runs and writes. Check it with\n"
    "bulkhead verify --data OUT --checkpoints CDIR --pub KEY. The bus key and the\n"
    "signing key are not in DIR's log and not copied: back them up apart.\n";

int
cmd_backup (int argc, char **argv)
{
    if (argc == 2 && strcmp (argv [1], "--help") == 0) {
        return s_help (s_backup_help, true);
    }
    if (argc != 4 || strcmp (argv [1], "--data") != 0) {
        return s_help (s_backup_help, false);
    }
    const char *dir = argv [2], *out = argv [3];
    bus_store_t *store = cmd_open_log (dir, "backup");
    if (!store) {
        return 1;
    }
    bus_error_t err;
    int rc = bus_store_backup (store, out, &err);
    bus_store_destroy (&store);
    if (rc != 0) {
        return cmd_error ("backup", &err);
    }
    printf ("%s: backup of %s written; check it with bulkhead verify --data %s --checkpoints "
            "CDIR --pub KEY\n", out, dir, out);
    return 0;
}

static const char *s_migrate_help =
    "usage: bulkhead migrate --data DIR\n\n"
    "Upgrades a data dir to this version's format (2: the Merkle tree over records).\n"
    "A format 1 dir (made before it) gets its tree computed over every record, once;\n"
    "no record is rewritten (verify checks the old ones by the old chain rule). serve\n"
    "does the same at start; this is for doing it ahead, or for a copy. A format this\n"
    "version does not know is refused.\n";

int
cmd_migrate (int argc, char **argv)
{
    if (argc == 2 && strcmp (argv [1], "--help") == 0) {
        return s_help (s_migrate_help, true);
    }
    if (argc != 3 || strcmp (argv [1], "--data") != 0) {
        return s_help (s_migrate_help, false);
    }
    const char *dir = argv [2];
    bus_store_options_t options = { .upgrade = true };
    bus_store_t *store;
    bus_error_t err;
    if (access (dir, F_OK) != 0) {
        return s_fail ("migrate", BUS_EIO, "no data dir at %s", dir);
    }
    if (bus_store_open (&store, dir, &options, &err) != 0) {
        return cmd_error ("migrate", &err);
    }
    if (bus_store_upgraded (store)) {
        printf ("%s: upgraded from format 1 to %d: Merkle tree over records 1..%" PRIu64 "\n",
                dir, BUS_STORE_FORMAT, bus_store_last_seq (store));
    }
    else {
        printf ("%s: already format %d; nothing to do\n", dir, bus_store_format (store));
    }
    bus_store_destroy (&store);
    return 0;
}

int
cmd_keygen_sign (const char *name, const char *dir)
{
    bus_signer_t signer;
    bus_error_t err;
    if (bus_signer_generate (&signer, name, &err) != 0) {
        return cmd_error ("keygen", &err);
    }
    char secret [4096], public [4096];
    snprintf (secret, sizeof secret, "%s/%s.sign.key", dir, name);
    snprintf (public, sizeof public, "%s/%s.sign.pub", dir, name);
    int rc = bus_signer_save (&signer, secret, public, &err);
    sodium_memzero (&signer, sizeof signer);
    if (rc != 0) {
        return cmd_error ("keygen", &err);
    }
    printf ("# wrote %s (secret, 0600) and %s\n"
            "# the bus signs checkpoints with it: keep it outside the data dir, readable only\n"
            "# by the bus's user, and give %s to auditors:\n"
            "#   bulkhead serve ... --checkpoints CDIR --sign-key %s\n"
            "#   bulkhead verify --data DIR --checkpoints CDIR --pub %s\n",
            secret, public, public, secret, public);
    return 0;
}
