/*  bus_store.c: the durable log, its indexes and the bus state, in one LMDB
    environment. The contract is in bus_store.h; this file adds how.

    A batch is one LMDB write transaction. Every write of the batch is also
    kept as an op (database, flags, key and value bytes) until the commit
    succeeds, because MDB_MAP_FULL kills the transaction, from a put or from
    the commit itself: we then abort, grow the map and replay the ops into a
    new transaction. last_seq and last_hash describe the batch, so a replay
    leaves them as they are; when the batch fails for good they fall back to
    what the last commit made durable.
*/
#include "bus_store.h"
#include "bus_hash.h"
#include "bus_merkle.h"
#include "bus_pb.h"
#include "bulkhead.pb-c.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sys/statvfs.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_MAP_INITIAL   ((size_t) 64 << 20)
#define S_MAP_MAX       ((size_t) 64 << 30)
#define S_HASH_LEN      32
#define S_KEY_BUF       512         //  LMDB's key limit is 511 bytes

static const char *s_db_names [BUS_DB_COUNT] = {
    "log", "msgid", "mbox", "cursor", "taint", "pending", "meta", "cause",
    "index", "time", "monitor"
};

//  One write of the open batch, kept for replay.
typedef struct {
    bus_db_t db;
    unsigned flags;         //  MDB_APPEND, MDB_APPENDDUP, MDB_NOOVERWRITE or 0
    bool del;
    size_t key_len;
    size_t val_len;
    uint8_t *data;          //  key, then value; in the batch's blocks
    bool pending;           //  an index entry not yet put (s_index_flush)
} s_op_t;

//  The data of a batch's writes: a record, its keys and its index entries
//  are a dozen small blocks a message, which malloc and free would cost
//  as much as LMDB's puts of them. They come from blocks kept from batch
//  to batch instead (at most S_BLOCKS_KEPT, 1 MiB, after a large batch);
//  one larger than S_BLOCK gets a block of its own, freed with the batch.
#define S_BLOCK         ((size_t) 64 << 10)
#define S_BLOCKS_KEPT   16

typedef struct s_block {
    struct s_block *next;
    size_t size, used;
    uint8_t data [];
} s_block_t;

struct bus_store {
    char *dir;
    MDB_env *env;
    MDB_dbi dbi [BUS_DB_COUNT];
    bool read_only;
    size_t map_max;
    size_t key_max;
    MDB_txn *txn;           //  the open batch, or NULL
    MDB_txn *rtxn;          //  read txn, reset between reads, or NULL
    s_op_t *ops;            //  every write of the open batch
    size_t op_count;
    size_t op_max;
    size_t pending;         //  of them, index entries not yet put
    s_block_t *blocks;      //  their data (s_op_new), kept from batch to batch
    s_block_t *block;       //  the one being filled
    uint64_t last_seq;      //  these two include the open batch
    uint8_t last_hash [S_HASH_LEN];
    uint64_t durable_seq;   //  these two as of the last commit
    uint8_t durable_hash [S_HASH_LEN];
    uint8_t prev_hash [S_HASH_LEN];     //  lent to the last appended record
    bus_tree_t tree;                    //  the Merkle frontier, with the open batch
    bus_tree_t durable_tree;            //  as of the last commit
    int format;                         //  BUS_STORE_FORMAT, or 1 before an upgrade
    uint64_t chain_from;                //  first seq whose prev_hash is a leaf hash
    bool upgraded;                      //  this open upgraded the data dir
    int iterating;          //  > 0 while bus_store_iterate calls back
    bool unmapped;          //  a remap failed: the env is unusable
    bool failed;
    bus_error_t failure;
    size_t last_size;           //  bytes of the record appended last
    uint64_t time_max;          //  the latest time_us so far (the time index's key)
    uint64_t time_entry;        //  the time index's last key
    uint64_t clock_back;        //  the largest step back of time_us ever seen
    bool indexed;               //  index and time were built (s_index_build)
    bool ix_stamped;            //  meta "index" is "2" (the trail's stamp, with "ix_to")
    uint64_t ix_next;           //  the watermark: records below it are indexed
    uint64_t ix_moving;         //  the watermark the open batch moves it to, or 0
    uint8_t *trail;             //  index entries waiting for a commit (s_trail_add)
    size_t trail_len;
    size_t trail_size;
    size_t trail_records;
    uint64_t trail_since;       //  CLOCK_MONOTONIC us when the first came
    uint64_t trail_us;          //  how long they may wait
    bool pinned;                //  reads share one snapshot (bus_store_snapshot)
    uint64_t reads;             //  index entries and records read
    uint64_t reads_past;        //  of them, records past the watermark
    uint8_t *enc;               //  a record encodes here first (bus_pb.h)
    size_t enc_size;
};

static void
s_put_be64 (uint8_t *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (uint8_t) value;
        value >>= 8;
    }
}

static uint64_t
s_get_be64 (const uint8_t *in)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++) {
        value = value << 8 | in [i];
    }
    return value;
}

static bool
s_set (const char *s)
{
    return s && *s;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void
bus_hash (uint8_t out [32], const void *data, size_t len)
{
    crypto_generichash (out, S_HASH_LEN, data, len, NULL, 0);
}


//  --------------------------------------------------------------------------
//  Batch and failure

//  Drops the open batch: aborts its transaction and frees its ops.
static void
s_batch_end (bus_store_t *self)
{
    if (self->txn) {
        mdb_txn_abort (self->txn);
        self->txn = NULL;
    }
    //  The ops array is kept for the next batch unless a large one (the
    //  index build at open) made it big; the blocks are kept but for the
    //  large ones.
    if (self->op_max > 4096) {
        free (self->ops);
        self->ops = NULL;
        self->op_max = 0;
    }
    self->op_count = 0;
    self->pending = 0;
    size_t kept = 0;
    for (s_block_t **at = &self->blocks; *at; ) {
        s_block_t *block = *at;
        if (block->size > S_BLOCK || kept == S_BLOCKS_KEPT) {
            *at = block->next;
            free (block);
        }
        else {
            block->used = 0;
            at = &block->next;
            kept++;
        }
    }
    self->block = self->blocks;
}

//  Frees what s_batch_end keeps.
static void
s_blocks_free (bus_store_t *self)
{
    while (self->blocks) {
        s_block_t *next = self->blocks->next;
        free (self->blocks);
        self->blocks = next;
    }
    self->block = NULL;
    free (self->ops);
    self->ops = NULL;
    self->op_max = 0;
}

//  Puts the store in the failed state for good. The batch is dropped and
//  nobody was told it was stored, so the tail goes back to the last commit.
static int
s_fail (bus_store_t *self, bus_error_t *err, bus_code_t code,
        const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

static int
s_fail (bus_store_t *self, bus_error_t *err, bus_code_t code,
        const char *fmt, ...)
{
    self->failure.code = code;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->failure.text, sizeof self->failure.text, fmt, args);
    va_end (args);
    self->failed = true;
    s_batch_end (self);
    self->trail_len = self->trail_records = 0;     //  the next open rebuilds it
    self->ix_moving = 0;
    self->last_seq = self->durable_seq;
    memcpy (self->last_hash, self->durable_hash, S_HASH_LEN);
    self->tree = self->durable_tree;
    if (err) {
        *err = self->failure;
    }
    return -1;
}

static int
s_fail_mdb (bus_store_t *self, bus_error_t *err, const char *what, int rc)
{
    //  A full disk is a full log as far as anyone downstream cares. LMDB
    //  reports a short write (what a full disk gives) as EIO: ask the
    //  file system before calling it an I/O error.
    struct statvfs fs;
    bool disk_full = rc == EIO && statvfs (self->dir, &fs) == 0
                  && (uint64_t) fs.f_bavail * fs.f_frsize < ((uint64_t) 1 << 20);
    if (rc == ENOSPC || disk_full) {
        return s_fail (self, err, BUS_ELOGFULL,
                       "log %s is full: the disk has no space left (%s); "
                       "free disk space, then restart the bus",
                       self->dir, what);
    }
    return s_fail (self, err, BUS_ELOGFAIL,
                   "log %s: %s failed: %s; the bus stops delivering until "
                   "it is restarted", self->dir, what, mdb_strerror (rc));
}

static int
s_apply (bus_store_t *self, const s_op_t *op)
{
    MDB_val key = { op->key_len, op->data };
    if (op->del) {
        int rc = mdb_del (self->txn, self->dbi [op->db], &key, NULL);
        return rc == MDB_NOTFOUND? 0: rc;
    }
    MDB_val val = { op->val_len, op->data + op->key_len };
    int rc = mdb_put (self->txn, self->dbi [op->db], &key, &val, op->flags);
    //  APPENDDUP refuses a value not above the key's last one: a record
    //  that names the same value twice (two equal causes). A plain put
    //  then stores it where it belongs (or finds the pair already there).
    if (rc == MDB_KEYEXIST && (op->flags & MDB_APPENDDUP)) {
        rc = mdb_put (self->txn, self->dbi [op->db], &key, &val, op->flags & ~MDB_APPENDDUP);
    }
    //  NOOVERWRITE: the msgid index keeps naming the first Send.
    return rc == MDB_KEYEXIST && (op->flags & MDB_NOOVERWRITE)? 0: rc;
}

//  The batch's transaction died of MDB_MAP_FULL (and is aborted here if it
//  is still open): grow the map by doubling, up to map_max, and replay every
//  op into a new transaction. 0, or -1 with the store failed.
static int
s_regrow (bus_store_t *self, bus_error_t *err)
{
    while (true) {
        //  mdb_env_set_mapsize wants no transaction open in this process.
        if (self->txn) {
            mdb_txn_abort (self->txn);
            self->txn = NULL;
        }
        if (self->rtxn) {
            mdb_txn_abort (self->rtxn);
            self->rtxn = NULL;
        }
        //  Stale reader slots pin old pages, which is one way a map fills.
        int dead;
        mdb_reader_check (self->env, &dead);

        MDB_envinfo info;
        mdb_env_info (self->env, &info);
        if (info.me_mapsize >= self->map_max) {
            return s_fail (self, err, BUS_ELOGFULL,
                           "log %s is full: it reached its size limit of "
                           "%zu bytes (%.1f MiB, map_max); raise map_max "
                           "(and make sure the disk has room), then "
                           "restart the bus", self->dir, info.me_mapsize,
                           info.me_mapsize / 1048576.0);
        }
        size_t size = info.me_mapsize > self->map_max / 2?
                      self->map_max: info.me_mapsize * 2;
        int rc = mdb_env_set_mapsize (self->env, size);
        if (rc) {
            //  The old map is gone and no new one came: nothing may read.
            self->unmapped = true;
            return s_fail_mdb (self, err, "growing the map", rc);
        }
        rc = mdb_txn_begin (self->env, NULL, 0, &self->txn);
        for (size_t i = 0; rc == 0 && i < self->op_count; i++) {
            rc = self->ops [i].pending? 0: s_apply (self, &self->ops [i]);
        }
        if (rc == 0) {
            return 0;
        }
        if (rc != MDB_MAP_FULL) {
            return s_fail_mdb (self, err, "growing the map", rc);
        }
    }
}

//  Opens the batch if needed. -1 if the store cannot be written.
static int
s_writable (bus_store_t *self, bus_error_t *err)
{
    //  A write may regrow the map under the cursor iterate walks.
    assert (self->iterating == 0);
    if (self->failed) {
        if (err) {
            *err = self->failure;
        }
        return -1;
    }
    if (self->read_only) {
        return bus_fail (err, BUS_EINVAL,
                         "log %s is open read-only; it cannot be written",
                         self->dir);
    }
    if (!self->txn) {
        int rc = mdb_txn_begin (self->env, NULL, 0, &self->txn);
        if (rc) {
            return s_fail_mdb (self, err, "beginning a batch", rc);
        }
    }
    return 0;
}

//  size bytes from the batch's blocks, 8-aligned, or NULL.
static uint8_t *
s_alloc (bus_store_t *self, size_t size)
{
    if (size > SIZE_MAX / 2) {
        return NULL;                    //  no write is that large
    }
    size = (size + 7) & ~(size_t) 7;
    s_block_t *block = size > S_BLOCK? NULL: self->block;
    while (block && block->used + size > block->size) {
        block = block->next;            //  a kept one, emptied at the batch's end
    }
    if (!block) {
        size_t room = size > S_BLOCK? size: S_BLOCK;
        block = malloc (sizeof *block + room);
        if (!block) {
            return NULL;
        }
        block->size = room;
        block->used = 0;
        //  After the one being filled, so that the kept ones still follow.
        if (self->block) {
            block->next = self->block->next;
            self->block->next = block;
        }
        else {
            block->next = self->blocks;
            self->blocks = block;
        }
    }
    if (size <= S_BLOCK) {
        self->block = block;            //  a large one's own block is not filled on
    }
    uint8_t *data = block->data + block->used;
    block->used += size;
    return data;
}

static s_op_t
s_op_new (bus_store_t *self, bus_db_t db, unsigned flags, size_t key_len, size_t val_len)
{
    return (s_op_t) {
        .db = db, .flags = flags, .key_len = key_len, .val_len = val_len,
        .data = s_alloc (self, key_len + val_len)
    };
}

//  Keeps op for replay (and, pending, for s_index_flush).
static int
s_keep (bus_store_t *self, s_op_t op, bus_error_t *err)
{
    if (self->op_count == self->op_max) {
        size_t max = self->op_max? self->op_max * 2: 64;
        s_op_t *ops = realloc (self->ops, max * sizeof *ops);
        if (!ops) {
            op.data = NULL;             //  the batch's blocks keep it
        }
        else {
            self->ops = ops;
            self->op_max = max;
        }
    }
    if (!op.data) {
        return s_fail (self, err, BUS_ELOGFAIL,
                       "log %s: out of memory while writing a batch of %zu "
                       "writes", self->dir, self->op_count);
    }
    self->ops [self->op_count++] = op;
    self->pending += op.pending;
    return 0;
}

static int
s_applied (bus_store_t *self, const s_op_t *op, int rc, bus_error_t *err)
{
    if (rc == MDB_MAP_FULL) {
        return s_regrow (self, err);
    }
    if (rc) {
        char what [48];
        snprintf (what, sizeof what, "writing to '%s'", s_db_names [op->db]);
        return s_fail_mdb (self, err, what, rc);
    }
    return 0;
}

//  Applies op to the batch and keeps it for replay.
static int
s_write (bus_store_t *self, s_op_t op, bus_error_t *err)
{
    if (s_keep (self, op, err) != 0) {
        return -1;
    }
    const s_op_t *kept = &self->ops [self->op_count - 1];
    return s_applied (self, kept, s_apply (self, kept), err);
}

//  An index entry waits for s_index_flush.
static int
s_defer (bus_store_t *self, s_op_t op, bus_error_t *err)
{
    op.pending = true;
    return s_keep (self, op, err);
}

//  Keys LMDB would refuse are refused here, before anything is written,
//  so a bad name from a peer never fails the whole store.
static int
s_check_key (bus_store_t *self, size_t key_len, const char *what,
             bus_error_t *err)
{
    if (key_len == 0 || key_len > self->key_max) {
        return bus_fail (err, BUS_EINVAL,
                         "log %s: %s key is %zu bytes; it must be 1 to %zu",
                         self->dir, what, key_len, self->key_max);
    }
    return 0;
}

static bool
s_same_key (const s_op_t *x, const s_op_t *y)
{
    return x->db == y->db && x->key_len == y->key_len
        && memcmp (x->data, y->data, x->key_len) == 0;
}

//  Two groups by their keys, in the order of the tree, so that the cursor
//  moves on rather than searching again.
static int
s_group_compare (const void *a, const void *b, void *arg)
{
    s_op_t *const *first = arg;
    const s_op_t *x = first [*(const uint32_t *) a], *y = first [*(const uint32_t *) b];
    if (x->db != y->db) {
        return x->db < y->db? -1: 1;
    }
    size_t len = x->key_len < y->key_len? x->key_len: y->key_len;
    int c = memcmp (x->data, y->data, len);
    return c? c: x->key_len < y->key_len? -1: x->key_len > y->key_len;
}

//  The batch's pending index entries in the order s_index_flush puts them:
//  grouped by key (a table at most half full), the groups in key order,
//  each group's entries in the order they came, which is that of their
//  seqs. Returns how many, or -1 out of memory.
static long
s_index_order (bus_store_t *self, s_op_t **out)
{
    size_t n = self->pending, size = 16, groups = 0;
    while (size < 2 * n) {
        size *= 2;
    }
    uint32_t *slot = calloc (size, sizeof *slot);       //  group + 1, 0: free
    uint32_t *group_of = malloc (n * sizeof *group_of);
    s_op_t **first = malloc (n * sizeof *first);        //  per group
    size_t *start = calloc (n + 1, sizeof *start);      //  per group: count, then place
    uint32_t *by_key = malloc (n * sizeof *by_key);
    long rc = -1;
    if (slot && group_of && first && start && by_key) {
        size_t k = 0;
        for (size_t i = 0; i < self->op_count; i++) {
            s_op_t *op = &self->ops [i];
            if (!op->pending) {
                continue;
            }
            uint64_t h = bus_fnv1a (BUS_FNV_OFFSET ^ (uint64_t) op->db, op->data, op->key_len);
            size_t j = h & (size - 1);
            while (slot [j] && !s_same_key (first [slot [j] - 1], op)) {
                j = (j + 1) & (size - 1);
            }
            if (!slot [j]) {
                first [groups] = op;
                by_key [groups] = (uint32_t) groups;
                slot [j] = (uint32_t) ++groups;
            }
            group_of [k] = slot [j] - 1;
            start [group_of [k]]++;
            out [k++] = op;                             //  for now, in order
        }
        qsort_r (by_key, groups, sizeof *by_key, s_group_compare, first);
        size_t place = 0;
        for (size_t g = 0; g < groups; g++) {
            size_t count = start [by_key [g]];
            start [by_key [g]] = place;
            place += count;
        }
        //  The ops again, each to its group's next place: first serves as
        //  the copy of the order they came in.
        memcpy (first, out, n * sizeof *out);
        for (size_t i = 0; i < n; i++) {
            out [start [group_of [i]]++] = first [i];
        }
        rc = (long) n;
    }
    free (slot), free (group_of), free (first), free (start), free (by_key);
    return rc;
}

//  Puts the batch's pending index entries. A record has about eight, and a
//  batch of a hundred records names the same sender, recipient, kind, class,
//  code and verdict a hundred times: grouped by key, each key's seqs go in
//  one MDB_MULTIPLE put, which finds the key once. Entries are 8-byte
//  values of DUPFIXED databases (index, time). Before a commit, and before
//  anything reads the index through the open batch.
static int
s_index_flush (bus_store_t *self, bus_error_t *err)
{
    //  It writes, and a MAP_FULL would end the transaction under iterate.
    assert (self->iterating == 0);
    while (self->pending && !self->failed) {
        s_op_t **order = malloc (self->pending * sizeof *order);
        uint8_t *values = malloc (self->pending * 8);
        long n = order && values? s_index_order (self, order): -1;
        if (n < 0) {
            free (order), free (values);
            return s_fail (self, err, BUS_ELOGFAIL, "log %s: out of memory for the index "
                           "entries of a batch of %zu writes", self->dir, self->op_count);
        }
        MDB_cursor *cursor = NULL;
        bus_db_t cursor_db = BUS_DB_COUNT;
        int rc = 0;
        size_t run = 0;
        s_op_t failed = { .db = BUS_DB_INDEX };     //  for the message: its db
        while (rc == 0 && run < (size_t) n) {
            const s_op_t *first = order [run];
            size_t end = run, count = 0;
            unsigned flags = MDB_APPENDDUP;
            for (; end < (size_t) n && s_same_key (order [end], first); end++) {
                const uint8_t *value = order [end]->data + first->key_len;
                if (!count || memcmp (values + (count - 1) * 8, value, 8) != 0) {
                    memcpy (values + count++ * 8, value, 8);   //  a pair named twice, once
                }
                flags &= order [end]->flags;
            }
            if (first->db != cursor_db) {
                if (cursor) {
                    mdb_cursor_close (cursor);
                }
                cursor = NULL;
                cursor_db = first->db;
                rc = mdb_cursor_open (self->txn, self->dbi [first->db], &cursor);
            }
            MDB_val key = { first->key_len, first->data };
            MDB_val data [2] = { { 8, values }, { count, NULL } };
            if (rc == 0) {
                rc = mdb_cursor_put (cursor, &key, data, MDB_MULTIPLE | flags);
            }
            //  A multiple put may stop short: APPENDDUP refuses a seq not
            //  above the key's last one, and a plain one (the index build,
            //  which may meet a record twice) on a key that holds one value,
            //  equal to the first, rewrites it and returns 0 with the rest
            //  not written. What it did not store goes in one by one.
            size_t done = rc == 0 || rc == MDB_KEYEXIST? data [1].mv_size: 0;
            if ((rc == 0 || (rc == MDB_KEYEXIST && (flags & MDB_APPENDDUP))) && done < count) {
                rc = 0;
                for (size_t k = done; rc == 0 && k < count; k++) {
                    MDB_val one = { 8, values + k * 8 };
                    rc = mdb_cursor_put (cursor, &key, &one, 0);
                    rc = rc == MDB_KEYEXIST? 0: rc;     //  the pair is there already
                }
            }
            if (rc == 0) {
                for (size_t i = run; i < end; i++) {
                    order [i]->pending = false;
                }
                self->pending -= end - run;
            }
            else {
                failed.db = first->db;
            }
            run = end;
        }
        if (cursor) {
            mdb_cursor_close (cursor);
        }
        free (order);
        free (values);
        //  MAP_FULL: the map grew, and what was put so far was replayed
        //  into the new transaction; the loop puts the rest.
        if (rc && s_applied (self, &failed, rc, err) != 0) {
            return -1;
        }
    }
    return self->failed? -1: 0;
}

//  --------------------------------------------------------------------------
//  Reads

//  The transaction a read goes through: the open batch, so reads see it;
//  else the shared read txn, renewed per read so it never serves a snapshot
//  older than the last commit; or with fresh, a read txn of its own (for
//  iterate, whose callback may read in turn).
static int
s_read_begin (bus_store_t *self, bool fresh, MDB_txn **txn, bus_error_t *err)
{
    if (self->txn) {
        *txn = self->txn;
        return 0;
    }
    if (self->unmapped) {
        return bus_fail (err, BUS_EIO, "log %s: unreadable since the map "
                         "failed to grow; restart the bus", self->dir);
    }
    if (!fresh && self->rtxn && self->pinned) {
        *txn = self->rtxn;              //  one snapshot for a whole query
        return 0;
    }
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!fresh && self->rtxn) {
            rc = mdb_txn_renew (self->rtxn);
            if (rc == 0) {
                *txn = self->rtxn;
                return 0;
            }
            mdb_txn_abort (self->rtxn);
            self->rtxn = NULL;
        }
        else {
            MDB_txn *new_txn;
            rc = mdb_txn_begin (self->env, NULL, MDB_RDONLY, &new_txn);
            if (rc == 0) {
                if (!fresh) {
                    self->rtxn = new_txn;
                }
                *txn = new_txn;
                return 0;
            }
        }
        //  The bus grew the map under us (we read beside it): adopt its
        //  size, which is only safe with no read of ours in progress.
        if (rc != MDB_MAP_RESIZED || self->iterating) {
            break;
        }
        if (self->rtxn) {
            mdb_txn_abort (self->rtxn);
            self->rtxn = NULL;
        }
        rc = mdb_env_set_mapsize (self->env, 0);
        if (rc) {
            self->unmapped = true;
            break;
        }
    }
    return bus_fail (err, BUS_EIO, "log %s: cannot begin a read: %s",
                     self->dir, mdb_strerror (rc));
}

static void
s_read_end (bus_store_t *self, MDB_txn *txn)
{
    if (txn == self->rtxn) {
        if (!self->pinned) {
            mdb_txn_reset (txn);
        }
    }
    else if (txn != self->txn) {
        mdb_txn_abort (txn);
    }
}

//  Looks key up; 0 and a malloc'd copy, 1 if absent, -1 on error.
static int
s_lookup (bus_store_t *self, bus_db_t db, const void *key, size_t key_len,
          void **val, size_t *val_len, bus_error_t *err)
{
    if (key_len == 0 || key_len > self->key_max) {
        return 1;               //  no such key can exist
    }
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    MDB_val k = { key_len, (void *) key }, v;
    int rc = mdb_get (txn, self->dbi [db], &k, &v);
    self->reads += db == BUS_DB_LOG;
    int result = 0;
    if (rc == MDB_NOTFOUND) {
        result = 1;
    }
    else if (rc) {
        result = bus_fail (err, BUS_EIO, "log %s: reading %s: %s", self->dir,
                           s_db_names [db], mdb_strerror (rc));
    }
    else {
        //  +1: malloc (0) may answer NULL, which would read as no memory.
        *val = malloc (v.mv_size + 1);
        if (*val) {
            memcpy (*val, v.mv_data, v.mv_size);
            *val_len = v.mv_size;
        }
        else {
            result = bus_fail (err, BUS_ENOMEM, "log %s: no memory for a "
                               "%zu byte value", self->dir, v.mv_size);
        }
    }
    s_read_end (self, txn);
    return result;
}

//  Looks up a u64 BE value: 0 and *seq, 1 if absent, -1 on error.
static int
s_lookup_seq (bus_store_t *self, bus_db_t db, const void *key,
              size_t key_len, uint64_t *seq, bus_error_t *err)
{
    void *val;
    size_t val_len;
    int rc = s_lookup (self, db, key, key_len, &val, &val_len, err);
    if (rc) {
        return rc;
    }
    if (val_len == 8) {
        *seq = s_get_be64 (val);
    }
    else {
        rc = bus_fail (err, BUS_ECORRUPT, "log %s: a value in %s is %zu "
                       "bytes, not 8", self->dir, s_db_names [db], val_len);
    }
    free (val);
    return rc;
}


//  --------------------------------------------------------------------------
//  Open and close

static int
s_open_dbs (bus_store_t *self, bus_error_t *err)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin (self->env, NULL,
                            self->read_only? MDB_RDONLY: 0, &txn);
    for (int db = 0; rc == 0 && db < BUS_DB_COUNT; db++) {
        unsigned dup = db == BUS_DB_INDEX || db == BUS_DB_TIME? MDB_DUPSORT | MDB_DUPFIXED: 0;
        rc = mdb_dbi_open (txn, s_db_names [db],
                           (self->read_only? 0: MDB_CREATE) | dup, &self->dbi [db]);
        if (rc == MDB_NOTFOUND
        &&  (db == BUS_DB_CAUSE || db == BUS_DB_INDEX || db == BUS_DB_TIME
             || db == BUS_DB_MONITOR)) {
            //  A log written before this index (or before the monitor
            //  kept its state): readers do without.
            self->dbi [db] = 0;
            rc = 0;
            continue;
        }
        if (rc == MDB_NOTFOUND) {
            mdb_txn_abort (txn);
            return bus_fail (err, BUS_EIO, "no log exists at %s (its '%s' "
                             "database is missing); is this the bus's log "
                             "directory?", self->dir, s_db_names [db]);
        }
        if (rc) {
            mdb_txn_abort (txn);
        }
    }
    if (rc == 0) {
        rc = mdb_txn_commit (txn);
    }
    if (rc) {
        return bus_fail (err, BUS_EIO, "log %s: cannot open its databases: "
                         "%s", self->dir, mdb_strerror (rc));
    }
    return 0;
}

//  Finds the tail of the chain, so appends continue it with no gap.
static int
s_find_last (bus_store_t *self, bus_error_t *err)
{
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    MDB_cursor *cursor;
    MDB_val key, val;
    int rc = mdb_cursor_open (txn, self->dbi [BUS_DB_LOG], &cursor);
    if (rc == 0) {
        rc = mdb_cursor_get (cursor, &key, &val, MDB_LAST);
        mdb_cursor_close (cursor);
    }
    int result = 0;
    if (rc == 0 && key.mv_size == 8) {
        self->last_seq = s_get_be64 (key.mv_data);
        if (bus_record_leaf_hash (val.mv_data, val.mv_size, self->last_hash) != 0) {
            result = bus_fail (err, BUS_ECORRUPT, "log %s: its last record (%" PRIu64 ") "
                               "is not a protobuf message", self->dir, self->last_seq);
        }
    }
    else if (rc == 0) {
        result = bus_fail (err, BUS_ECORRUPT, "log %s: its last key is %zu "
                           "bytes, not 8", self->dir, key.mv_size);
    }
    else if (rc != MDB_NOTFOUND) {
        result = bus_fail (err, BUS_EIO, "log %s: cannot read its last "
                           "record: %s", self->dir, mdb_strerror (rc));
    }
    s_read_end (self, txn);
    self->durable_seq = self->last_seq;
    memcpy (self->durable_hash, self->last_hash, S_HASH_LEN);
    return result;
}

static int
s_index_record (bus_store_t *self, const Bulkhead__V1__Record *rec, uint64_t seq,
                bus_error_t *err);

#define S_TIME_STEP     1000        //  us: the time index's resolution

//  Where the indexes stand: time_max from the time index's last key,
//  clock_back and whether they cover the whole log from meta.
static int
s_index_load (bus_store_t *self, bus_error_t *err)
{
    self->indexed = false;
    if (self->dbi [BUS_DB_INDEX] == 0 || self->dbi [BUS_DB_TIME] == 0) {
        return 0;
    }
    uint64_t back = 0;
    int rc = s_lookup_seq (self, BUS_DB_META, "clock_back", 10, &back, err);
    if (rc < 0) {
        return -1;
    }
    self->clock_back = rc == 0? back: 0;
    void *val = NULL;
    size_t len = 0;
    rc = s_lookup (self, BUS_DB_META, "index", 5, &val, &len, err);
    if (rc < 0) {
        return -1;
    }
    char stamp = rc == 0 && len == 1? *(char *) val: 0;
    free (val);
    //  The watermark. "index" = "2": the index trails, up to "ix_to". "1":
    //  written by a bus from before the trail, which indexed every commit,
    //  so covered to the end (stamped "2" at the next open for writing).
    //  Neither: a build cut short resumes at its "index_next". (A bus from
    //  before the trail reads "2" as "not built": as a reader it walks the
    //  log, as a writer it builds from "index_next", which the trail keeps
    //  equal to "ix_to"; neither misses a record.)
    self->indexed = stamp == '1' || stamp == '2';
    self->ix_stamped = stamp == '2';
    uint64_t next = 0;
    rc = stamp == '1'? 1: s_lookup_seq (self, BUS_DB_META, stamp == '2'? "ix_to": "index_next",
                                        stamp == '2'? 5: 10, &next, err);
    if (rc < 0) {
        return -1;
    }
    self->ix_next = rc == 0? next: stamp == '1'? self->last_seq + 1: 1;
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    MDB_cursor *cursor;
    MDB_val key, data;
    rc = mdb_cursor_open (txn, self->dbi [BUS_DB_TIME], &cursor);
    if (rc == 0) {
        rc = mdb_cursor_get (cursor, &key, &data, MDB_LAST);
        mdb_cursor_close (cursor);
    }
    self->time_max = rc == 0 && key.mv_size == 8? s_get_be64 (key.mv_data): 0;
    self->time_entry = self->time_max;
    s_read_end (self, txn);
    return 0;
}

//  A log written before the indexes (or whose build was cut short, or
//  whose trail a crash lost) gets them at open, in batches of this many
//  records, each batch one commit that also moves meta "index_next" and
//  "ix_to" on: a build that is killed resumes where it stopped, and a
//  record indexed twice is harmless (a dup key and value pair is stored
//  once). Meta "index" = "2" once all is covered (see s_index_load).
#define S_INDEX_BATCH   20000

static int
s_index_build (bus_store_t *self, bus_error_t *err)
{
    uint64_t next = self->ix_next? self->ix_next: 1;
    int rc = 0;
    while (next <= self->last_seq) {
        for (size_t n = 0; n < S_INDEX_BATCH && next <= self->last_seq; n++, next++) {
            void *raw = NULL;
            size_t raw_len = 0;
            uint8_t key [8];
            s_put_be64 (key, next);
            rc = s_lookup (self, BUS_DB_LOG, key, 8, &raw, &raw_len, err);
            if (rc < 0) {
                return -1;
            }
            if (rc == 1) {
                continue;               //  a gap: verify reports it, not us
            }
            Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, raw_len, raw);
            free (raw);
            if (!rec) {
                continue;               //  the same: verify names it
            }
            rc = s_index_record (self, rec, next, err);
            bulkhead__v1__record__free_unpacked (rec, NULL);
            if (rc) {
                return -1;
            }
        }
        uint8_t val [8];
        s_put_be64 (val, next);
        if (bus_store_put (self, BUS_DB_META, "index_next", 10, val, 8, err)
        ||  bus_store_put (self, BUS_DB_META, "ix_to", 5, val, 8, err)
        ||  bus_store_commit (self, err)) {
            return -1;
        }
        self->ix_next = next;
        self->ix_stamped = true;
    }
    if (!self->indexed || !self->ix_stamped) {
        uint8_t val [8];
        s_put_be64 (val, next);
        if (bus_store_put (self, BUS_DB_META, "index", 5, "2", 1, err)
        ||  bus_store_put (self, BUS_DB_META, "ix_to", 5, val, 8, err)
        ||  bus_store_put (self, BUS_DB_META, "index_next", 10, val, 8, err)
        ||  bus_store_commit (self, err)) {
            return -1;
        }
    }
    self->indexed = self->ix_stamped = true;
    self->ix_next = next;
    return 0;
}

//  Reads the format stamp. A data dir with no stamp and no record is new:
//  it is stamped with today's format. One with records and no stamp was
//  made before formats existed (format 1: no tree, prev_hash over stored
//  bytes): upgraded when the caller allows it, else only readable.
static int s_upgrade (bus_store_t *self, bus_error_t *err);

static int
s_format (bus_store_t *self, bool upgrade, bus_error_t *err)
{
    void *val = NULL;
    size_t len = 0;
    int rc = s_lookup (self, BUS_DB_META, BUS_META_FORMAT, strlen (BUS_META_FORMAT), &val, &len,
                       err);
    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        char text [16] = "";
        snprintf (text, sizeof text, "%.*s", (int) (len < 15? len: 15), (char *) val);
        free (val);
        unsigned long long n = 0;
        char *end = NULL;
        n = strtoull (text, &end, 10);
        if (!*text || *end || n != BUS_STORE_FORMAT) {
            return bus_fail (err, BUS_EVERSION, "log %s: data dir format '%s' is unknown to this "
                             "bulkhead (it reads formats 1 and %d): it was made by another "
                             "version; run that version, or restore a backup made for this one",
                             self->dir, text, BUS_STORE_FORMAT);
        }
        self->format = BUS_STORE_FORMAT;
        uint64_t from = 1;
        rc = s_lookup_seq (self, BUS_DB_META, BUS_META_CHAIN_FROM, strlen (BUS_META_CHAIN_FROM),
                           &from, err);
        if (rc < 0) {
            return -1;
        }
        self->chain_from = from;
        rc = s_lookup (self, BUS_DB_META, BUS_META_TREE, strlen (BUS_META_TREE), &val, &len, err);
        if (rc < 0) {
            return -1;
        }
        bus_tree_init (&self->tree);
        if (rc == 0) {
            rc = bus_tree_decode (&self->tree, val, len);
            free (val);
        }
        if (rc != 0 && self->last_seq > 0 && !self->read_only) {
            return bus_fail (err, BUS_ECORRUPT, "log %s: its Merkle tree state is missing or "
                             "damaged; bulkhead verify --data %s says more", self->dir,
                             self->dir);
        }
        //  (A reader beside the bus read the tail and the tree in two
        //  snapshots: only the writer can compare them.)
        if (!self->read_only && self->tree.size != self->last_seq) {
            return bus_fail (err, BUS_ECORRUPT, "log %s: its Merkle tree covers %" PRIu64
                             " records but the log has %" PRIu64 ": records were removed or "
                             "added outside the bus; bulkhead verify --data %s says more", self->dir, self->tree.size, self->last_seq, self->dir);
        }
        self->durable_tree = self->tree;
        return 0;
    }
    self->format = self->last_seq == 0? BUS_STORE_FORMAT: 1;
    self->chain_from = self->last_seq + 1;
    if (self->read_only) {
        return 0;
    }
    if (self->format == 1 && !upgrade) {
        return bus_fail (err, BUS_EVERSION, "log %s: data dir format 1 (made before the Merkle "
                         "tree); upgrade it with bulkhead migrate --data %s (serve upgrades it "
                         "at start)", self->dir, self->dir);
    }
    return s_upgrade (self, err);
}

static int
s_upgrade_leaf (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t raw_len)
{
    bus_store_t *self = arg;
    uint8_t leaf [S_HASH_LEN];
    if (rec->seq != self->tree.size + 1 || bus_record_leaf_hash (raw, raw_len, leaf) != 0) {
        return 1;
    }
    bus_tree_append (&self->tree, leaf);
    return 0;
}

//  Format 1 -> 2 (or a new data dir): the tree over every record there is
//  (one pass, once), the stamp, and where the leaf-hash chain starts. The
//  records themselves are never rewritten: those before chain_from keep
//  their format 1 prev_hash, which verify checks by the old rule.
static int
s_upgrade (bus_store_t *self, bus_error_t *err)
{
    bus_tree_init (&self->tree);
    if (self->last_seq > 0) {
        int rc = bus_store_iterate (self, 0, s_upgrade_leaf, self, err);
        if (rc != 0 || self->tree.size != self->last_seq) {
            if (rc > 0 || rc == 0) {
                bus_fail (err, BUS_ECORRUPT, "log %s: cannot upgrade from format 1: record %"
                          PRIu64 " is missing or damaged (bulkhead verify --data %s)", self->dir,
                          self->tree.size + 1, self->dir);
            }
            return -1;
        }
    }
    char text [8];
    snprintf (text, sizeof text, "%d", BUS_STORE_FORMAT);
    uint8_t from [8];
    s_put_be64 (from, self->chain_from);
    uint8_t buf [8 + BUS_MERKLE_DEPTH * BUS_MERKLE_HASH];
    size_t len = bus_tree_encode (&self->tree, buf);
    if (bus_store_put (self, BUS_DB_META, BUS_META_FORMAT, strlen (BUS_META_FORMAT), text,
                       strlen (text), err)
    ||  bus_store_put (self, BUS_DB_META, BUS_META_CHAIN_FROM, strlen (BUS_META_CHAIN_FROM),
                       from, sizeof from, err)
    ||  bus_store_put (self, BUS_DB_META, BUS_META_TREE, strlen (BUS_META_TREE), buf, len, err)) {
        return -1;
    }
    self->durable_tree = self->tree;            //  written above, not by commit
    if (bus_store_commit (self, err) != 0) {
        return -1;
    }
    self->upgraded = self->format == 1;
    self->format = BUS_STORE_FORMAT;
    return 0;
}

int
bus_store_open (bus_store_t **out, const char *dir,
                const bus_store_options_t *options, bus_error_t *err)
{
    assert (out);
    assert (dir);
    bus_store_options_t opts = options? *options: (bus_store_options_t) { 0 };
    size_t map_initial = opts.map_initial? opts.map_initial: S_MAP_INITIAL;
    size_t map_max = opts.map_max? opts.map_max: S_MAP_MAX;
    if (map_initial > map_max) {
        return bus_fail (err, BUS_EINVAL, "log %s: map_initial (%zu bytes) "
                         "is larger than map_max (%zu bytes)", dir,
                         map_initial, map_max);
    }
    if (sodium_init () < 0) {
        return bus_fail (err, BUS_EIO, "log %s: libsodium cannot initialize",
                         dir);
    }
    if (!opts.read_only && mkdir (dir, 0700) && errno != EEXIST) {
        return bus_fail (err, BUS_EIO, "log %s: cannot create the "
                         "directory: %s", dir, strerror (errno));
    }
    bus_store_t *self = calloc (1, sizeof *self);
    if (self) {
        self->dir = strdup (dir);
    }
    if (!self || !self->dir) {
        free (self);
        return bus_fail (err, BUS_ENOMEM, "log %s: out of memory", dir);
    }
    self->read_only = opts.read_only;
    self->trail_us = opts.trail_us? opts.trail_us: BUS_STORE_TRAIL_US;
    self->map_max = map_max;

    int rc = mdb_env_create (&self->env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs (self->env, BUS_DB_COUNT);
    }
    //  A reader takes the size the bus chose (0: from the file).
    if (rc == 0 && !self->read_only) {
        rc = mdb_env_set_mapsize (self->env, map_initial);
    }
    //  No MDB_NOSYNC, NOMETASYNC or WRITEMAP: a commit is on disk when it
    //  returns, which is what lets the bus acknowledge.
    if (rc == 0) {
        rc = mdb_env_open (self->env, dir,
                           MDB_NOTLS | (self->read_only? MDB_RDONLY: 0),
                           0600);
    }
    if (rc == ENOENT && self->read_only) {
        bus_fail (err, BUS_EIO, "no log exists at %s; is this the bus's "
                  "log directory?", dir);
    }
    else if (rc) {
        bus_fail (err, BUS_EIO, "log %s: cannot open: %s", dir,
                  mdb_strerror (rc));
    }
    if (rc) {
        bus_store_destroy (&self);
        return -1;
    }
    int dead;
    mdb_reader_check (self->env, &dead);
    self->key_max = (size_t) mdb_env_get_maxkeysize (self->env);
    assert (self->key_max < S_KEY_BUF);

    if (s_open_dbs (self, err) || s_find_last (self, err) || s_format (self, opts.upgrade, err)
    ||  s_index_load (self, err)
    ||  (!self->read_only && (!self->indexed || !self->ix_stamped
                              || self->ix_next <= self->last_seq)
         && s_index_build (self, err))) {
        bus_store_destroy (&self);
        return -1;
    }
    *out = self;
    return 0;
}

void
bus_store_destroy (bus_store_t **self_p)
{
    assert (self_p);
    bus_store_t *self = *self_p;
    if (self) {
        //  A clean stop leaves no trail (a batch still open is the
        //  caller's to commit or drop, so only with none).
        bus_error_t err;
        if (self->trail_len && !self->txn && !self->failed
        &&  bus_store_trail_flush (self, &err) == 0) {
            bus_store_commit (self, &err);
        }
        s_batch_end (self);
        s_blocks_free (self);
        if (self->rtxn) {
            mdb_txn_abort (self->rtxn);
        }
        if (self->env) {
            mdb_env_close (self->env);
        }
        free (self->enc);
        free (self->trail);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

int
bus_store_format (bus_store_t *self)
{
    assert (self);
    return self->format;
}

bool
bus_store_upgraded (bus_store_t *self)
{
    assert (self);
    return self->upgraded;
}

uint64_t
bus_store_chain_from (bus_store_t *self)
{
    assert (self);
    return self->chain_from;
}

void
bus_store_tree (bus_store_t *self, bus_tree_t *out)
{
    assert (self);
    *out = self->tree;
}

void
bus_store_tree_durable (bus_store_t *self, bus_tree_t *out)
{
    assert (self);
    *out = self->durable_tree;
}

int
bus_store_backup (bus_store_t *self, const char *to, bus_error_t *err)
{
    assert (self);
    if (mkdir (to, 0700) != 0 && errno != EEXIST) {
        return bus_fail (err, BUS_EIO, "backup %s: cannot create the directory: %s", to,
                         strerror (errno));
    }
    char path [4096];
    snprintf (path, sizeof path, "%s/data.mdb", to);
    if (access (path, F_OK) == 0) {
        return bus_fail (err, BUS_EIO, "backup %s: already holds a log (data.mdb); a backup "
                         "never overwrites one: give an empty or new directory", to);
    }
    //  One read transaction: a consistent snapshot of every database, with
    //  free pages left out (compaction), while the bus goes on writing.
    int rc = mdb_env_copy2 (self->env, to, MDB_CP_COMPACT);
    if (rc) {
        return bus_fail (err, BUS_EIO, "backup %s: copying the log %s failed: %s", to,
                         self->dir, mdb_strerror (rc));
    }
    return 0;
}

int
bus_store_scan (bus_store_t *self, uint64_t from, bus_store_scan_fn *fn, void *arg,
                bus_error_t *err)
{
    assert (self);
    MDB_txn *txn = NULL;
    if (s_read_begin (self, true, &txn, err)) {
        return -1;
    }
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->dbi [BUS_DB_LOG], &cursor);
    if (rc) {
        s_read_end (self, txn);
        return bus_fail (err, BUS_EIO, "log %s: %s", self->dir, mdb_strerror (rc));
    }
    uint8_t buf [8];
    s_put_be64 (buf, from);
    MDB_val key = { sizeof buf, buf }, val;
    int result = 0;
    self->iterating++;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && result == 0) {
        if (key.mv_size != 8) {
            result = bus_fail (err, BUS_ECORRUPT, "log %s: a key is %zu bytes, not 8",
                               self->dir, key.mv_size);
            break;
        }
        result = fn (arg, s_get_be64 (key.mv_data), val.mv_data, val.mv_size);
        if (result == 0) {
            rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        }
    }
    if (result == 0 && rc == MDB_NOTFOUND) {
        result = fn (arg, 0, NULL, 0);
    }
    self->iterating--;
    if (result == 0 && rc && rc != MDB_NOTFOUND) {
        result = bus_fail (err, BUS_EIO, "log %s: reading: %s", self->dir, mdb_strerror (rc));
    }
    mdb_cursor_close (cursor);
    s_read_end (self, txn);
    return result;
}

uint64_t
bus_store_last_seq (bus_store_t *self)
{
    assert (self);
    return self->last_seq;
}

bool
bus_store_failed (bus_store_t *self)
{
    assert (self);
    return self->failed;
}

const bus_error_t *
bus_store_failure (bus_store_t *self)
{
    assert (self);
    return &self->failure;
}

bool
bus_store_dirty (bus_store_t *self)
{
    assert (self);
    return self->txn != NULL;
}


//  --------------------------------------------------------------------------
//  Writes


//  --------------------------------------------------------------------------
//  Indexes (see bus_store.h): one entry per record and property, written by
//  the append that writes the record, so they commit or fail with it.

//  The key of one index entry: tag, then the value. A value too long for a
//  key is cut: the key then stands for a superset, which is harmless, since
//  every reader checks each record it finds against what was asked.
static size_t
s_ix_key (bus_store_t *self, uint8_t *out, char tag, const void *value, size_t len)
{
    if (len + 1 > self->key_max) {
        len = self->key_max - 1;
    }
    out [0] = (uint8_t) tag;
    if (len) {
        memcpy (out + 1, value, len);
    }
    return len + 1;
}

//  An entry of an appended record (seq above last_seq, which
//  bus_store_append moves on only after indexing it) waits in the trail,
//  and is above every seq the index holds when it is put: APPENDDUP skips
//  the search for its place at the end of its key's list. The build at
//  open (seq <= last_seq, and it may meet a record twice) puts plainly.
static int s_trail_add (bus_store_t *self, bus_db_t db, const uint8_t *key, size_t key_len,
                        uint64_t seq, bus_error_t *err);

static int
s_ix_emit (bus_store_t *self, bus_db_t db, const uint8_t *key, size_t key_len, uint64_t seq,
           bus_error_t *err)
{
    if (seq > self->last_seq) {
        return s_trail_add (self, db, key, key_len, seq, err);
    }
    s_op_t op = s_op_new (self, db, 0, key_len, 8);
    if (op.data) {
        memcpy (op.data, key, key_len);
        s_put_be64 (op.data + key_len, seq);
    }
    return s_defer (self, op, err);
}

//  Where a record's index entries go: written (s_ix_put), or compared
//  with the one a reader looks for past the watermark (s_ix_match).
//  Nonzero stops the walk of the record's entries and is returned.
typedef int (s_ix_sink_fn) (bus_store_t *self, void *arg, char tag, const void *value,
                            size_t len, uint64_t seq, bus_error_t *err);

static int
s_ix_put (bus_store_t *self, void *arg, char tag, const void *value, size_t len,
          uint64_t seq, bus_error_t *err)
{
    (void) arg;
    uint8_t key [S_KEY_BUF];
    size_t key_len = s_ix_key (self, key, tag, value, len);
    return s_ix_emit (self, BUS_DB_INDEX, key, key_len, seq, err);
}

static bool
s_same (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

//  The index entries of one record, each to sink.
static int
s_ix_entries (bus_store_t *self, const Bulkhead__V1__Record *rec, uint64_t seq,
              s_ix_sink_fn *sink, void *arg, bus_error_t *err)
{
    const char *names [] = {
        rec->sender,
        s_same (rec->recipient, rec->sender)? NULL: rec->recipient,
        s_same (rec->actor, rec->sender) || s_same (rec->actor, rec->recipient)? NULL: rec->actor
    };
    const struct { char tag; const char *value; } words [] = {
        { BUS_IX_CLASS, rec->intent_class }, { BUS_IX_CODE, rec->code },
        { BUS_IX_ID, rec->message_id }
    };
    uint8_t kind = (uint8_t) rec->kind;
    int rc = sink (self, arg, BUS_IX_KIND, &kind, 1, seq, err);
    for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names [0]; i++) {
        rc = s_set (names [i])? sink (self, arg, BUS_IX_AGENT, names [i], strlen (names [i]),
                                      seq, err): 0;
    }
    for (size_t i = 0; rc == 0 && i < sizeof words / sizeof words [0]; i++) {
        rc = s_set (words [i].value)? sink (self, arg, words [i].tag, words [i].value,
                                            strlen (words [i].value), seq, err): 0;
    }
    if (rc == 0 && rec->has_verdict && rec->verdict <= 255) {
        uint8_t verdict = (uint8_t) rec->verdict;
        rc = sink (self, arg, BUS_IX_VERDICT, &verdict, 1, seq, err);
    }
    if (rc == 0 && rec->has_restricted && rec->restricted) {
        rc = sink (self, arg, BUS_IX_RESTRICTED, NULL, 0, seq, err);
    }
    for (size_t i = 0; rc == 0 && i < rec->n_causes; i++) {
        uint8_t cause [8];
        s_put_be64 (cause, rec->causes [i]);
        rc = sink (self, arg, BUS_IX_EFFECT, cause, 8, seq, err);
    }
    return rc;
}

//  The index entries of one record, and its time entry. The time index is
//  keyed by the running maximum of time_us, not time_us itself: that key
//  never decreases along the log, so a time range maps to one range of
//  seqs even if the clock stepped back; clock_back (kept in meta, in the
//  record's own batch) is how far a record's own time may lie below its
//  key (see bus_store_time_range).
static int
s_index_record (bus_store_t *self, const Bulkhead__V1__Record *rec, uint64_t seq,
                bus_error_t *err)
{
    if (self->dbi [BUS_DB_INDEX] == 0 || self->dbi [BUS_DB_TIME] == 0) {
        return 0;
    }
    if (s_writable (self, err)
    ||  s_ix_entries (self, rec, seq, s_ix_put, NULL, err)) {
        return -1;
    }
    if (rec->time_us < self->time_max && self->time_max - rec->time_us > self->clock_back) {
        self->clock_back = self->time_max - rec->time_us;
        uint8_t back [8];
        s_put_be64 (back, self->clock_back);
        s_op_t op = s_op_new (self, BUS_DB_META, 0, 10, 8);
        if (op.data) {
            memcpy (op.data, "clock_back", 10);
            memcpy (op.data + 10, back, 8);
        }
        if (s_write (self, op, err)) {
            return -1;
        }
    }
    if (rec->time_us > self->time_max) {
        self->time_max = rec->time_us;
    }
    //  Sparse: an entry only where the running maximum enters a new
    //  S_TIME_STEP, the first record there. Every record before it has a
    //  smaller maximum, so bus_store_time_range stays a bound, at most a
    //  step wide at each end; a dense index (older data dirs) is the same
    //  bound, closer. Put per record, this key was a tenth of an append.
    if (self->time_entry && self->time_max / S_TIME_STEP == self->time_entry / S_TIME_STEP) {
        return 0;
    }
    self->time_entry = self->time_max;
    uint8_t key [8];
    s_put_be64 (key, self->time_max);
    return s_ix_emit (self, BUS_DB_TIME, key, 8, seq, err);
}

//  --------------------------------------------------------------------------
//  The trail: index and time entries of appended records, waiting for a
//  commit that puts them all (see bus_store.h). One entry is its db (1
//  byte), key length (2, big endian), key and seq (8).

static uint64_t
s_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int
s_trail_add (bus_store_t *self, bus_db_t db, const uint8_t *key, size_t key_len,
             uint64_t seq, bus_error_t *err)
{
    size_t need = 3 + key_len + 8;
    if (self->trail_size - self->trail_len < need) {
        size_t size = self->trail_size? self->trail_size: 64 << 10;
        while (size - self->trail_len < need) {
            size *= 2;
        }
        uint8_t *trail = realloc (self->trail, size);
        if (!trail) {
            return s_fail (self, err, BUS_ELOGFAIL, "log %s: out of memory for the index "
                           "entries of %zu records", self->dir, self->trail_records);
        }
        self->trail = trail;
        self->trail_size = size;
    }
    uint8_t *at = self->trail + self->trail_len;
    at [0] = (uint8_t) db;
    at [1] = (uint8_t) (key_len >> 8);
    at [2] = (uint8_t) key_len;
    memcpy (at + 3, key, key_len);
    s_put_be64 (at + 3 + key_len, seq);
    if (self->trail_len == 0) {
        self->trail_since = s_mono_us ();
    }
    self->trail_len += need;
    return 0;
}

//  The trail into the open batch, for s_index_flush to put at the commit,
//  with the watermark it moves to.
static int
s_trail_move (bus_store_t *self, bus_error_t *err)
{
    for (size_t at = 0; at < self->trail_len; ) {
        const uint8_t *entry = self->trail + at;
        size_t key_len = (size_t) entry [1] << 8 | entry [2];
        s_op_t op = s_op_new (self, (bus_db_t) entry [0], MDB_APPENDDUP, key_len, 8);
        if (op.data) {
            memcpy (op.data, entry + 3, key_len + 8);
        }
        if (s_defer (self, op, err)) {
            return -1;
        }
        at += 3 + key_len + 8;
    }
    uint8_t val [8];
    s_put_be64 (val, self->last_seq + 1);
    if (bus_store_put (self, BUS_DB_META, "ix_to", 5, val, 8, err)
    ||  bus_store_put (self, BUS_DB_META, "index_next", 10, val, 8, err)) {
        return -1;
    }
    self->ix_moving = self->last_seq + 1;
    self->trail_len = self->trail_records = 0;
    return 0;
}

bool
bus_store_trail_due (bus_store_t *self)
{
    assert (self);
    return self->trail_len && !self->failed
        && (self->trail_records >= BUS_STORE_TRAIL_MAX
            || s_mono_us () - self->trail_since >= self->trail_us);
}

int
bus_store_trail_flush (bus_store_t *self, bus_error_t *err)
{
    assert (self);
    if (self->trail_len == 0) {
        return 0;
    }
    return s_writable (self, err) || s_trail_move (self, err)? -1: 0;
}

//  The three bits of name: from its FNV-1a hash, 9 bits each.
static void
s_ancestry_bits (const char *name, uint32_t bits [3])
{
    uint64_t h = bus_fnv1a_str (BUS_FNV_OFFSET, name, NULL);
    for (int i = 0; i < 3; i++) {
        bits [i] = (uint32_t) (h >> (9 * i)) % (BUS_ANCESTRY_BYTES * 8);
    }
}

void
bus_ancestry_add (uint8_t filter [BUS_ANCESTRY_BYTES], const char *name)
{
    uint32_t bits [3];
    s_ancestry_bits (name, bits);
    for (int i = 0; i < 3; i++) {
        filter [bits [i] / 8] |= (uint8_t) (1u << (bits [i] % 8));
    }
}

bool
bus_ancestry_may_hold (const uint8_t filter [BUS_ANCESTRY_BYTES], const char *name)
{
    uint32_t bits [3];
    s_ancestry_bits (name, bits);
    for (int i = 0; i < 3; i++) {
        if (!(filter [bits [i] / 8] & (1u << (bits [i] % 8)))) {
            return false;
        }
    }
    return true;
}

//  rec's ancestry, from its causes' entries (this batch's too: the cause
//  index is written as records are appended). A cause without an entry,
//  or one that cannot be read, makes it unknown: all ones.
static void
s_ancestry (bus_store_t *self, const Bulkhead__V1__Record *rec, uint8_t filter [BUS_ANCESTRY_BYTES])
{
    memset (filter, 0, BUS_ANCESTRY_BYTES);
    for (size_t i = 0; i < rec->n_causes; i++) {
        bus_cause_t cause;
        bus_error_t ignored;
        if (bus_store_cause (self, rec->causes [i], &cause, &ignored) != 0) {
            memset (filter, 0xff, BUS_ANCESTRY_BYTES);
            return;
        }
        bus_ancestry_add (filter, cause.sender);
        for (size_t b = 0; b < BUS_ANCESTRY_BYTES; b++) {
            filter [b] |= cause.ancestry [b];
        }
    }
}

int
bus_store_append (bus_store_t *self, Bulkhead__V1__Record *rec,
                  bus_error_t *err)
{
    assert (self);
    assert (rec);
    bool send = rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
    //  Denied Sends are indexed too: a retried id is a duplicate whatever
    //  its first verdict was; but a refusal for load leaves the id unused,
    //  so the sender may retry it (bus_store_load_refusal).
    bool by_id = send && s_set (rec->sender) && s_set (rec->message_id)
              && !(rec->has_verdict && rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DENIED
                   && rec->code && bus_store_load_refusal (bus_code_from_word (rec->code)));
    bool to_mbox = send && s_set (rec->recipient) && rec->has_verdict
        && (rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
         || rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED);
    size_t sender_len = by_id? strlen (rec->sender): 0;
    size_t id_len = by_id? strlen (rec->message_id): 0;
    size_t recipient_len = to_mbox? strlen (rec->recipient): 0;
    if ((by_id && s_check_key (self, sender_len + 1 + id_len,
                               "sender + message id", err))
    ||  (to_mbox && s_check_key (self, recipient_len + 1 + 8,
                                 "recipient + seq", err))) {
        return -1;
    }
    if (s_writable (self, err)) {
        return -1;
    }
    uint64_t seq = self->last_seq + 1;
    rec->seq = seq;
    //  A copy: last_hash moves on below, the record must keep this one.
    memcpy (self->prev_hash, self->last_hash, S_HASH_LEN);
    rec->prev_hash.data = self->prev_hash;
    rec->prev_hash.len = S_HASH_LEN;
    if (rec->time_us == 0) {
        rec->time_us = s_now_us ();
    }
    //  One backward pass into the scratch buffer, then a copy of exactly
    //  its length into the batch: sizing the record first cost as much.
    size_t len = bus_pb_encode (&rec->base, self->enc, self->enc_size);
    if (len == SIZE_MAX) {
        size_t need = bulkhead__v1__record__get_packed_size (rec);
        need = need < 4096? 4096: need;
        uint8_t *enc = realloc (self->enc, need);
        if (!enc) {
            return s_fail (self, err, BUS_ELOGFAIL,
                           "log %s: out of memory for a record of %zu bytes", self->dir, need);
        }
        self->enc = enc;
        self->enc_size = need;
        len = bus_pb_encode (&rec->base, self->enc, self->enc_size);
    }
    s_op_t op = s_op_new (self, BUS_DB_LOG, MDB_APPEND, 8, len);
    uint8_t hash [S_HASH_LEN];
    if (op.data) {
        s_put_be64 (op.data, seq);
        memcpy (op.data + 8, self->enc + self->enc_size - len, len);
        //  The chain and the tree both use the leaf hash (bus_merkle.h):
        //  it leaves the payload out, so a purge keeps both intact.
        bus_record_leaf_hash (op.data + 8, len, hash);
    }
    if (s_write (self, op, err)) {
        return -1;
    }
    if (by_id) {
        op = s_op_new (self, BUS_DB_MSGID, MDB_NOOVERWRITE,
                       sender_len + 1 + id_len, 8);
        if (op.data) {
            memcpy (op.data, rec->sender, sender_len + 1);
            memcpy (op.data + sender_len + 1, rec->message_id, id_len);
            s_put_be64 (op.data + op.key_len, seq);
        }
        if (s_write (self, op, err)) {
            return -1;
        }
    }
    if (send && s_set (rec->sender) && s_set (rec->recipient)
    &&  strlen (rec->sender) <= BUS_NAME_MAX && strlen (rec->recipient) <= BUS_NAME_MAX) {
        //  The cause index: what a later Send naming this seq as a cause
        //  needs, without decoding the record.
        size_t s_len = strlen (rec->sender);
        size_t r_len = strlen (rec->recipient);
        uint8_t filter [BUS_ANCESTRY_BYTES];
        s_ancestry (self, rec, filter);
        size_t f_len = rec->n_causes? BUS_ANCESTRY_BYTES: 0;
        op = s_op_new (self, BUS_DB_CAUSE, MDB_APPEND, 8, 1 + s_len + 1 + r_len + 1 + f_len);
        if (op.data) {
            s_put_be64 (op.data, seq);
            uint8_t *val = op.data + 8;
            val [0] = (rec->has_restricted && rec->restricted? BUS_CAUSE_RESTRICTED: 0)
                    | (to_mbox? BUS_CAUSE_ACCEPTED: 0)
                    | BUS_CAUSE_ANCESTRY | (f_len? BUS_CAUSE_FILTER: 0);
            memcpy (val + 1, rec->sender, s_len + 1);
            memcpy (val + 1 + s_len + 1, rec->recipient, r_len + 1);
            memcpy (val + 1 + s_len + 1 + r_len + 1, filter, f_len);
        }
        if (s_write (self, op, err)) {
            return -1;
        }
    }
    if (to_mbox) {
        op = s_op_new (self, BUS_DB_MBOX, 0, recipient_len + 1 + 8, 0);
        if (op.data) {
            memcpy (op.data, rec->recipient, recipient_len + 1);
            s_put_be64 (op.data + recipient_len + 1, seq);
        }
        if (s_write (self, op, err)) {
            return -1;
        }
    }
    if (s_index_record (self, rec, seq, err)) {
        return -1;
    }
    self->trail_records++;
    self->last_seq = seq;
    self->last_size = len;
    memcpy (self->last_hash, hash, S_HASH_LEN);
    bus_tree_append (&self->tree, hash);
    return 0;
}

size_t
bus_store_last_size (bus_store_t *self)
{
    return self->last_size;
}

int
bus_store_put (bus_store_t *self, bus_db_t db,
               const void *key, size_t key_len,
               const void *val, size_t val_len, bus_error_t *err)
{
    assert (self);
    //  The log is written by append only, or the chain breaks; the index
    //  and time entries by it too (they wait for s_index_flush).
    assert (db > BUS_DB_LOG && db < BUS_DB_COUNT && db != BUS_DB_INDEX && db != BUS_DB_TIME);
    if (s_check_key (self, key_len, s_db_names [db], err)
    ||  s_writable (self, err)) {
        return -1;
    }
    s_op_t op = s_op_new (self, db, 0, key_len, val_len);
    if (op.data) {
        memcpy (op.data, key, key_len);
        if (val_len) {
            memcpy (op.data + key_len, val, val_len);
        }
    }
    return s_write (self, op, err);
}

int
bus_store_del (bus_store_t *self, bus_db_t db,
               const void *key, size_t key_len, bus_error_t *err)
{
    assert (self);
    assert (db > BUS_DB_LOG && db < BUS_DB_COUNT && db != BUS_DB_INDEX && db != BUS_DB_TIME);
    if (key_len == 0 || key_len > self->key_max) {
        return 0;               //  nothing can be stored under it
    }
    if (s_writable (self, err)) {
        return -1;
    }
    s_op_t op = s_op_new (self, db, 0, key_len, 0);
    op.del = true;
    if (op.data) {
        memcpy (op.data, key, key_len);
    }
    return s_write (self, op, err);
}

int
bus_store_cursor_set (bus_store_t *self, const char *agent,
                      uint64_t seq, bus_error_t *err)
{
    assert (agent);
    uint8_t val [8];
    s_put_be64 (val, seq);
    return bus_store_put (self, BUS_DB_CURSOR, agent, strlen (agent),
                          val, sizeof val, err);
}

int
bus_store_commit (bus_store_t *self, bus_error_t *err)
{
    assert (self);
    assert (self->iterating == 0);
    if (self->failed) {
        if (err) {
            *err = self->failure;
        }
        return -1;
    }
    if (self->txn && bus_store_trail_due (self) && s_trail_move (self, err) != 0) {
        return -1;
    }
    if (self->txn && s_index_flush (self, err) != 0) {
        return -1;
    }
    //  The frontier goes into the same commit as the records it covers:
    //  O(log n) bytes, once per batch. A replay after MAP_FULL replays it.
    if (self->txn && self->tree.size != self->durable_tree.size) {
        uint8_t buf [8 + BUS_MERKLE_DEPTH * BUS_MERKLE_HASH];
        size_t len = bus_tree_encode (&self->tree, buf);
        s_op_t op = s_op_new (self, BUS_DB_META, 0, strlen (BUS_META_TREE), len);
        if (op.data) {
            memcpy (op.data, BUS_META_TREE, strlen (BUS_META_TREE));
            memcpy (op.data + op.key_len, buf, len);
        }
        if (s_write (self, op, err)) {
            return -1;
        }
    }
    while (self->txn) {
        int rc = mdb_txn_commit (self->txn);
        self->txn = NULL;       //  freed by the commit, whatever rc says
        if (rc == MDB_MAP_FULL) {
            if (s_regrow (self, err)) {
                return -1;
            }
        }
        else if (rc) {
            return s_fail_mdb (self, err, "commit", rc);
        }
    }
    s_batch_end (self);
    self->durable_seq = self->last_seq;
    memcpy (self->durable_hash, self->last_hash, S_HASH_LEN);
    self->durable_tree = self->tree;
    if (self->ix_moving) {
        self->ix_next = self->ix_moving;
        self->ix_moving = 0;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Reads

int
bus_store_get (bus_store_t *self, bus_db_t db,
               const void *key, size_t key_len,
               void **val, size_t *val_len, bus_error_t *err)
{
    assert (self);
    //  The index and time are read by bus_store_ix_* and time_range,
    //  which see a batch's pending entries.
    assert ((unsigned) db < BUS_DB_COUNT && db != BUS_DB_INDEX && db != BUS_DB_TIME);
    return s_lookup (self, db, key, key_len, val, val_len, err);
}

int
bus_store_find_msgid (bus_store_t *self, const char *sender,
                      const char *message_id, uint64_t *seq,
                      bus_error_t *err)
{
    assert (self);
    assert (sender && message_id);
    size_t sender_len = strlen (sender);
    size_t id_len = strlen (message_id);
    uint8_t key [S_KEY_BUF];
    if (sender_len + 1 + id_len > self->key_max) {
        return 1;
    }
    memcpy (key, sender, sender_len + 1);
    memcpy (key + sender_len + 1, message_id, id_len);
    return s_lookup_seq (self, BUS_DB_MSGID, key, sender_len + 1 + id_len,
                         seq, err);
}

bool
bus_store_load_refusal (bus_code_t code)
{
    return code == BUS_ERATE || code == BUS_EBACKLOG || code == BUS_ELOGBUDGET;
}

int
bus_store_cause (bus_store_t *self, uint64_t seq, bus_cause_t *out, bus_error_t *err)
{
    assert (self);
    if (self->dbi [BUS_DB_CAUSE] == 0) {
        return 1;
    }
    uint8_t key [8];
    s_put_be64 (key, seq);
    void *val = NULL;
    size_t len = 0;
    int rc = s_lookup (self, BUS_DB_CAUSE, key, sizeof key, &val, &len, err);
    if (rc != 0) {
        return rc;
    }
    //  flags, sender NUL, recipient NUL, [filter]; each name at most
    //  BUS_NAME_MAX.
    const uint8_t *p = val;
    if (len > 0 && (p [0] & BUS_CAUSE_FILTER)) {
        if (len < 3 + BUS_ANCESTRY_BYTES) {
            free (val);
            return bus_fail (err, BUS_ECORRUPT, "cause index entry %" PRIu64 " is damaged", seq);
        }
        len -= BUS_ANCESTRY_BYTES;
        memcpy (out->ancestry, p + len, BUS_ANCESTRY_BYTES);
    }
    else {
        //  None (a message without causes), or unknown (an older entry).
        memset (out->ancestry, len > 0 && (p [0] & BUS_CAUSE_ANCESTRY)? 0x00: 0xff,
                BUS_ANCESTRY_BYTES);
    }
    const uint8_t *nul = len > 2? memchr (p + 1, 0, len - 1): NULL;
    size_t s_len = nul? (size_t) (nul - p) - 1: 0;
    size_t r_len = nul? len - (size_t) (nul - p) - 2: 0;
    if (!nul || p [len - 1] != 0 || s_len > BUS_NAME_MAX || r_len > BUS_NAME_MAX
    ||  strlen ((const char *) nul + 1) != r_len) {
        free (val);
        return bus_fail (err, BUS_ECORRUPT, "cause index entry %" PRIu64 " is damaged", seq);
    }
    out->flags = p [0];
    memcpy (out->sender, p + 1, s_len + 1);
    memcpy (out->recipient, nul + 1, r_len + 1);
    free (val);
    return 0;
}

int
bus_store_record_raw (bus_store_t *self, uint64_t seq, void **data, size_t *size,
                      bus_error_t *err)
{
    assert (self);
    uint8_t key [8];
    s_put_be64 (key, seq);
    return s_lookup (self, BUS_DB_LOG, key, sizeof key, data, size, err);
}

int
bus_store_record (bus_store_t *self, uint64_t seq,
                  Bulkhead__V1__Record **rec, bus_error_t *err)
{
    assert (self);
    assert (rec);
    uint8_t key [8];
    s_put_be64 (key, seq);
    void *val;
    size_t val_len;
    int rc = s_lookup (self, BUS_DB_LOG, key, sizeof key, &val, &val_len, err);
    if (rc) {
        return rc;
    }
    *rec = bulkhead__v1__record__unpack (NULL, val_len, val);
    free (val);
    if (!*rec) {
        return bus_fail (err, BUS_ECORRUPT, "log record %" PRIu64 ": does "
                         "not decode", seq);
    }
    return 0;
}

int
bus_store_next_key (bus_store_t *self, bus_db_t db, const void *after, size_t after_len,
                    void **key_out, size_t *key_len, bus_error_t *err)
{
    assert (self);
    //  The index and time are read by bus_store_ix_* and time_range,
    //  which see a batch's pending entries.
    assert ((unsigned) db < BUS_DB_COUNT && db != BUS_DB_INDEX && db != BUS_DB_TIME);
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    MDB_cursor *cursor;
    MDB_val key = { after_len, (void *) after }, val;
    int rc = mdb_cursor_open (txn, self->dbi [db], &cursor);
    if (rc == 0) {
        //  The first key >= after; skip after itself.
        rc = after_len? mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE)
                      : mdb_cursor_get (cursor, &key, &val, MDB_FIRST);
        if (rc == 0 && after_len && key.mv_size == after_len
        &&  memcmp (key.mv_data, after, after_len) == 0) {
            rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    int result = 1;
    if (rc == 0) {
        *key_out = malloc (key.mv_size? key.mv_size: 1);
        if (!*key_out) {
            result = bus_fail (err, BUS_ENOMEM, "out of memory");
        }
        else {
            memcpy (*key_out, key.mv_data, key.mv_size);
            *key_len = key.mv_size;
            result = 0;
        }
    }
    else if (rc != MDB_NOTFOUND) {
        result = bus_fail (err, BUS_EIO, "log %s: reading keys: %s", self->dir, mdb_strerror (rc));
    }
    s_read_end (self, txn);
    return result;
}

int
bus_store_mailbox_next (bus_store_t *self, const char *agent,
                        uint64_t after, uint64_t *seq, bus_error_t *err)
{
    size_t n;
    if (bus_store_mailbox_range (self, agent, after, UINT64_MAX, seq, 1, &n, err) != 0) {
        return -1;
    }
    return n? 0: 1;
}

int
bus_store_mailbox_range (bus_store_t *self, const char *agent, uint64_t after,
                         uint64_t up_to, uint64_t *out, size_t max, size_t *n,
                         bus_error_t *err)
{
    assert (self);
    assert (agent && out && n);
    *n = 0;
    size_t prefix = strlen (agent) + 1;
    if (after >= up_to || max == 0 || prefix + 8 > self->key_max) {
        return 0;
    }
    uint8_t buf [S_KEY_BUF];
    memcpy (buf, agent, prefix);
    s_put_be64 (buf + prefix, after + 1);
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    MDB_cursor *cursor;
    MDB_val key = { prefix + 8, buf }, val;
    int rc = mdb_cursor_open (txn, self->dbi [BUS_DB_MBOX], &cursor);
    if (rc == 0) {
        rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size == prefix + 8 && memcmp (key.mv_data, agent, prefix) == 0) {
            uint64_t seq = s_get_be64 ((uint8_t *) key.mv_data + prefix);
            if (seq > up_to) {
                break;
            }
            out [(*n)++] = seq;
            if (*n == max) {
                break;
            }
            rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close (cursor);
    }
    int result = 0;
    if (rc && rc != MDB_NOTFOUND) {
        result = bus_fail (err, BUS_EIO, "log %s: reading mbox: %s", self->dir, mdb_strerror (rc));
    }
    s_read_end (self, txn);
    return result;
}

int
bus_store_cursor_get (bus_store_t *self, const char *agent,
                      uint64_t *seq, bus_error_t *err)
{
    assert (self);
    assert (agent && seq);
    int rc = s_lookup_seq (self, BUS_DB_CURSOR, agent, strlen (agent),
                           seq, err);
    if (rc == 1) {
        *seq = 0;
        rc = 0;
    }
    return rc;
}

int
bus_store_iterate (bus_store_t *self, uint64_t from,
                   bus_store_iter_fn *fn, void *arg, bus_error_t *err)
{
    assert (self);
    assert (fn);
    MDB_txn *txn = NULL;
    if (s_read_begin (self, true, &txn, err)) {
        return -1;
    }
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, self->dbi [BUS_DB_LOG], &cursor);
    if (rc) {
        s_read_end (self, txn);
        return bus_fail (err, BUS_EIO, "log %s: %s", self->dir,
                         mdb_strerror (rc));
    }
    uint8_t buf [8];
    s_put_be64 (buf, from);
    MDB_val key = { sizeof buf, buf }, val;
    int result = 0;
    self->iterating++;
    rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && result == 0) {
        if (key.mv_size != 8) {
            result = bus_fail (err, BUS_ECORRUPT, "log %s: a key is %zu "
                               "bytes, not 8", self->dir, key.mv_size);
            break;
        }
        uint64_t seq = s_get_be64 (key.mv_data);
        self->reads++;
        Bulkhead__V1__Record *rec =
            bulkhead__v1__record__unpack (NULL, val.mv_size, val.mv_data);
        if (!rec) {
            result = bus_fail (err, BUS_ECORRUPT, "log record %" PRIu64
                               ": does not decode", seq);
        }
        else if (rec->seq != seq) {
            result = bus_fail (err, BUS_ECORRUPT, "log record %" PRIu64
                               ": its seq field says %" PRIu64, seq,
                               rec->seq);
        }
        else {
            result = fn (arg, rec, val.mv_data, val.mv_size);
            if (result == 0) {
                rc = mdb_cursor_get (cursor, &key, &val, MDB_NEXT);
            }
        }
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    self->iterating--;
    if (result == 0 && rc && rc != MDB_NOTFOUND) {
        result = bus_fail (err, BUS_EIO, "log %s: reading: %s", self->dir,
                           mdb_strerror (rc));
    }
    mdb_cursor_close (cursor);
    s_read_end (self, txn);
    return result;
}

typedef struct {
    uint64_t next;                  //  the seq the next record must have
    uint8_t prev [S_HASH_LEN];      //  hash of the record before it
    uint64_t chain_from;            //  from here prev is the leaf hash
    bus_tree_t tree;
    bus_error_t *err;
} s_verify_t;

static int
s_verify_one (void *arg, const Bulkhead__V1__Record *rec,
              const uint8_t *raw, size_t raw_len)
{
    s_verify_t *v = arg;
    if (rec->seq != v->next) {
        return bus_fail (v->err, BUS_ECORRUPT, "log record %" PRIu64 ": "
                         "expected seq %" PRIu64 "; records are missing",
                         rec->seq, v->next);
    }
    if (rec->prev_hash.len != S_HASH_LEN
    ||  memcmp (rec->prev_hash.data, v->prev, S_HASH_LEN) != 0) {
        return bus_fail (v->err, BUS_ECORRUPT, "log record %" PRIu64 ": "
                         "prev_hash does not match the record before it; "
                         "the log was altered", rec->seq);
    }
    uint8_t leaf [S_HASH_LEN];
    bus_record_leaf_hash (raw, raw_len, leaf);
    bus_tree_append (&v->tree, leaf);
    //  Format 1 records chained the stored bytes; the record at chain_from
    //  and every later one chain the leaf hash (bus_merkle.h).
    if (rec->seq + 1 < v->chain_from) {
        bus_hash (v->prev, raw, raw_len);
    }
    else {
        memcpy (v->prev, leaf, S_HASH_LEN);
    }
    v->next++;
    return 0;
}

int
bus_store_verify (bus_store_t *self, uint64_t *count, bus_error_t *err)
{
    assert (self);
    s_verify_t v = { .next = 1, .err = err, .chain_from = self->chain_from };
    bus_tree_init (&v.tree);
    int rc = bus_store_iterate (self, 0, s_verify_one, &v, err);
    if (rc == 0 && self->format == BUS_STORE_FORMAT && !self->txn && !self->read_only) {
        //  The frontier the bus keeps must be the tree of what is there.
        uint8_t want [S_HASH_LEN], have [S_HASH_LEN];
        bus_tree_root (&v.tree, want);
        bus_tree_root (&self->tree, have);
        if (v.tree.size != self->tree.size || memcmp (want, have, S_HASH_LEN) != 0) {
            rc = bus_fail (err, BUS_ECORRUPT, "log %s: the Merkle tree state kept with the log "
                           "(%" PRIu64 " leaves) is not the tree of its %" PRIu64 " records",
                           self->dir, self->tree.size, v.tree.size);
        }
    }
    if (count) {
        *count = v.next - 1;
    }
    return rc? -1: 0;
}


//  --------------------------------------------------------------------------
//  Queries and retention

bool
bus_store_indexed (bus_store_t *self)
{
    assert (self);
    return self->indexed;
}

uint64_t
bus_store_reads (bus_store_t *self)
{
    assert (self);
    return self->reads;
}

uint64_t
bus_store_reads_past (bus_store_t *self)
{
    assert (self);
    return self->reads_past;
}

int
bus_store_snapshot (bus_store_t *self, bool on, bus_error_t *err)
{
    assert (self);
    if (!on) {
        self->pinned = false;
        if (self->rtxn) {
            mdb_txn_reset (self->rtxn);
        }
        return 0;
    }
    self->pinned = false;
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    //  With a batch open, reads go through it anyway.
    self->pinned = txn == self->rtxn;
    return 0;
}

int
bus_store_refresh (bus_store_t *self, bus_error_t *err)
{
    assert (self);
    assert (!self->txn);
    return s_find_last (self, err) || s_index_load (self, err)? -1: 0;
}

//  The watermark of what txn sees, which the index read after it must go
//  through too: the writer's own (the one the open batch moves it to, once
//  s_trail_move put it there), or, read-only beside a live bus, the stamps
//  in txn (see s_index_load). Unknown: 1, every record decoded.
static uint64_t
s_watermark (bus_store_t *self, MDB_txn *txn)
{
    if (!self->read_only) {
        return self->txn && self->ix_moving? self->ix_moving: self->ix_next;
    }
    MDB_val key = { 5, "index" }, val;
    if (mdb_get (txn, self->dbi [BUS_DB_META], &key, &val) != 0 || val.mv_size != 1) {
        return 1;
    }
    if (*(char *) val.mv_data == '1') {
        return self->last_seq + 1;
    }
    key = (MDB_val) { 5, "ix_to" };
    if (*(char *) val.mv_data != '2'
    ||  mdb_get (txn, self->dbi [BUS_DB_META], &key, &val) != 0 || val.mv_size != 8) {
        return 1;
    }
    return s_get_be64 (val.mv_data);
}

typedef struct {
    const uint8_t *key;
    size_t key_len;
} s_ix_want_t;

static int
s_ix_match (bus_store_t *self, void *arg, char tag, const void *value, size_t len,
            uint64_t seq, bus_error_t *err)
{
    (void) seq, (void) err;
    const s_ix_want_t *want = arg;
    uint8_t key [S_KEY_BUF];
    size_t key_len = s_ix_key (self, key, tag, value, len);
    return key_len == want->key_len && memcmp (key, want->key, key_len) == 0;
}

//  Past the watermark: the records from `from` to last_seq, each decoded
//  (bus_store_iterate: one that does not decode is ECORRUPT, as for a walk)
//  and its entries compared with key. The first in *seq (0, or 1 if none),
//  or with count set, how many there are added to *count.
typedef struct {
    bus_store_t *self;
    s_ix_want_t want;
    uint64_t *count;
    uint64_t found;
} s_scan_t;

static int
s_scan_one (void *arg, const Bulkhead__V1__Record *rec, const uint8_t *raw, size_t raw_len)
{
    (void) raw, (void) raw_len;
    s_scan_t *scan = arg;
    if (rec->seq > scan->self->last_seq) {
        return 1;
    }
    scan->self->reads_past++;
    bool match = s_ix_entries (scan->self, rec, rec->seq, s_ix_match, &scan->want, NULL) == 1;
    if (scan->count) {
        *scan->count += match;
        return 0;
    }
    scan->found = match? rec->seq: 0;
    return match;
}

static int
s_trail_scan (bus_store_t *self, const uint8_t *key, size_t key_len, uint64_t from,
              uint64_t *seq, uint64_t *count, bus_error_t *err)
{
    if (from > self->last_seq) {
        return count? 0: 1;
    }
    s_scan_t scan = { self, { key, key_len }, count, 0 };
    if (bus_store_iterate (self, from, s_scan_one, &scan, err) < 0) {
        return -1;
    }
    if (count || !scan.found) {
        return count? 0: 1;
    }
    *seq = scan.found;
    return 0;
}

int
bus_store_ix_seek (bus_store_t *self, char tag, const void *value, size_t len,
                   uint64_t from, uint64_t *seq, bus_error_t *err)
{
    assert (self);
    if (self->txn && s_index_flush (self, err) != 0) {
        return -1;                      //  read through the batch: its entries first
    }
    if (self->dbi [BUS_DB_INDEX] == 0) {
        return 1;
    }
    uint8_t buf [S_KEY_BUF], from_be [8];
    size_t key_len = s_ix_key (self, buf, tag, value, len);
    s_put_be64 (from_be, from);
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    uint64_t w = s_watermark (self, txn);
    if (from >= w) {
        s_read_end (self, txn);
        return s_trail_scan (self, buf, key_len, from, seq, NULL, err);
    }
    MDB_cursor *cursor;
    MDB_val key = { key_len, buf }, val = { 8, from_be };
    int rc = mdb_cursor_open (txn, self->dbi [BUS_DB_INDEX], &cursor);
    if (rc == 0) {
        rc = mdb_cursor_get (cursor, &key, &val, MDB_GET_BOTH_RANGE);
        mdb_cursor_close (cursor);
    }
    self->reads++;
    int result = 1;
    if (rc == 0 && val.mv_size == 8) {
        *seq = s_get_be64 (val.mv_data);
        result = *seq < w? 0: 1;        //  past the watermark: the scan says
    }
    else if (rc == 0) {
        result = bus_fail (err, BUS_ECORRUPT, "log %s: an index value is %zu bytes, not 8",
                           self->dir, val.mv_size);
    }
    else if (rc != MDB_NOTFOUND) {
        result = bus_fail (err, BUS_EIO, "log %s: reading the index: %s", self->dir,
                           mdb_strerror (rc));
    }
    s_read_end (self, txn);
    return result == 1? s_trail_scan (self, buf, key_len, w, seq, NULL, err): result;
}

int
bus_store_ix_count (bus_store_t *self, char tag, const void *value, size_t len,
                    uint64_t *count, bus_error_t *err)
{
    assert (self);
    *count = 0;
    if (self->txn && s_index_flush (self, err) != 0) {
        return -1;                      //  read through the batch: its entries first
    }
    if (self->dbi [BUS_DB_INDEX] == 0) {
        return 0;
    }
    uint8_t buf [S_KEY_BUF];
    size_t key_len = s_ix_key (self, buf, tag, value, len);
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    uint64_t w = s_watermark (self, txn);
    MDB_cursor *cursor;
    MDB_val key = { key_len, buf }, val;
    int rc = mdb_cursor_open (txn, self->dbi [BUS_DB_INDEX], &cursor);
    if (rc == 0) {
        rc = mdb_cursor_get (cursor, &key, &val, MDB_SET);
        size_t n = 0;
        if (rc == 0 && (rc = mdb_cursor_count (cursor, &n)) == 0) {
            *count = n;
        }
        mdb_cursor_close (cursor);
    }
    self->reads++;
    s_read_end (self, txn);
    if (rc && rc != MDB_NOTFOUND) {
        return bus_fail (err, BUS_EIO, "log %s: reading the index: %s", self->dir,
                         mdb_strerror (rc));
    }
    return s_trail_scan (self, buf, key_len, w, NULL, count, err);
}

int
bus_store_time_range (bus_store_t *self, uint64_t since_us, uint64_t until_us,
                      uint64_t *lo, uint64_t *hi, bus_error_t *err)
{
    assert (self);
    *lo = 1;
    *hi = 0;                            //  empty until found otherwise
    if (self->txn && s_index_flush (self, err) != 0) {
        return -1;                      //  read through the batch: its entries first
    }
    uint64_t back = 0;
    int rc = s_lookup_seq (self, BUS_DB_META, "clock_back", 10, &back, err);
    if (rc < 0) {
        return -1;
    }
    back = rc == 0? back: 0;
    uint64_t bound = until_us > UINT64_MAX - back - 1? UINT64_MAX - 1: until_us + back;
    MDB_txn *txn = NULL;
    if (s_read_begin (self, false, &txn, err)) {
        return -1;
    }
    uint64_t w = s_watermark (self, txn);
    uint8_t since_be [8], after_be [8];
    s_put_be64 (since_be, since_us);
    s_put_be64 (after_be, bound + 1);
    MDB_cursor *cursor;
    MDB_val key = { 8, since_be }, val;
    rc = mdb_cursor_open (txn, self->dbi [BUS_DB_TIME], &cursor);
    if (rc == 0) {
        //  lo: the last entry whose key (running max) is at most since:
        //  every record before it has a smaller maximum, so none can have
        //  a time_us >= since. If that entry's step is below since's, its
        //  records all lie below since too: then from the next entry on.
        //  No entry at most since: from the first record. The records
        //  past the watermark have no entries yet: the last entry's step
        //  ends at the watermark, not at the log's end.
        rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
        uint64_t next = rc == 0 && val.mv_size == 8? s_get_be64 (val.mv_data): 0;
        if (rc == 0 && s_get_be64 (key.mv_data) > since_us) {
            rc = mdb_cursor_get (cursor, &key, &val, MDB_PREV);
        }
        else
        if (rc == MDB_NOTFOUND) {
            rc = mdb_cursor_get (cursor, &key, &val, MDB_LAST);
            next = w;
        }
        *lo = rc == 0 && val.mv_size == 8? s_get_be64 (val.mv_data): 1;
        if (rc == 0 && next && s_get_be64 (key.mv_data) / S_TIME_STEP < since_us / S_TIME_STEP) {
            *lo = next;
        }
        //  hi: before the first entry whose key is over until + clock_back:
        //  a record's time_us is at least its maximum - clock_back, and from
        //  that entry on every maximum is at least its key. No such entry:
        //  to the last record.
        key = (MDB_val) { 8, after_be };
        rc = mdb_cursor_get (cursor, &key, &val, MDB_SET_RANGE);
        *hi = rc == 0 && val.mv_size == 8? s_get_be64 (val.mv_data) - 1: self->last_seq;
        rc = rc == MDB_NOTFOUND? 0: rc;
        mdb_cursor_close (cursor);
    }
    self->reads += 2;
    s_read_end (self, txn);
    if (rc && rc != MDB_NOTFOUND) {
        return bus_fail (err, BUS_EIO, "log %s: reading the time index: %s", self->dir,
                         mdb_strerror (rc));
    }
    return 0;
}

int
bus_store_purge_payload (bus_store_t *self, uint64_t seq, uint64_t now_us, bus_error_t *err)
{
    assert (self);
    if (seq >= self->last_seq) {
        return 1;                       //  the tail the next record chains to
    }
    void *raw = NULL;
    size_t raw_len = 0;
    uint8_t key [8];
    s_put_be64 (key, seq);
    int rc = s_lookup (self, BUS_DB_LOG, key, 8, &raw, &raw_len, err);
    if (rc) {
        return rc;
    }
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, raw_len, raw);
    free (raw);
    if (!rec) {
        return bus_fail (err, BUS_ECORRUPT, "log record %" PRIu64 ": does not decode", seq);
    }
    if (!rec->has_payload || rec->kind != BULKHEAD__V1__RECORD_KIND__RECORD_SEND) {
        bulkhead__v1__record__free_unpacked (rec, NULL);
        return 1;
    }
    //  protobuf-c packs fields in field order: without field 19 and with
    //  field 42 the other bytes come out exactly as they were.
    ProtobufCBinaryData payload = rec->payload;
    rec->has_payload = false;
    rec->payload = (ProtobufCBinaryData) { 0, NULL };
    rec->has_payload_purged_us = true;
    rec->payload_purged_us = now_us;
    size_t len = bulkhead__v1__record__get_packed_size (rec);
    rc = s_writable (self, err);
    s_op_t op = rc == 0? s_op_new (self, BUS_DB_LOG, 0, 8, len): (s_op_t) { .db = BUS_DB_LOG };
    if (rc == 0 && op.data) {
        s_put_be64 (op.data, seq);
        bulkhead__v1__record__pack (rec, op.data + 8);
    }
    rec->payload = payload;             //  so that free_unpacked frees it
    bulkhead__v1__record__free_unpacked (rec, NULL);
    if (rc) {
        return -1;                      //  op.data is the batch's blocks'
    }
    return s_write (self, op, err);
}
