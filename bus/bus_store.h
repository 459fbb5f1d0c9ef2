/*  bus_store.h: the durable log and everything kept with it, in one LMDB
    environment.

    Databases in the environment:
      log     u64 big-endian seq -> serialized bulkhead.v1.Record. Appended with
              MDB_APPEND; never deleted, updated only by a purge (which drops
              an old payload). Leaves of a Merkle tree and hash-chained by leaf
              hash.
      msgid   sender '\0' message_id -> u64 BE seq of the Send (idempotency)
      mbox    recipient '\0' u64 BE seq -> "" (the durable mailbox: every
              delivered or queued message)
      cursor  agent -> u64 BE last seq the agent acknowledged
      taint   agent -> opaque (owned by the taint logic)
      pending approval id -> opaque (owned by the approval queue)
      meta    name -> opaque
      cause   u64 BE seq -> flags, sender NUL, recipient NUL of every SEND
              record: what a later Send naming it as a cause needs, without
              decoding it (written in the same batch as the record)
      index   tag + value -> u64 BE seqs (dupsort, ascending): the records
              with that property, for queries (BUS_IX_* below). The append
              of the record computes them into the trail (below); the commit
              that empties the trail puts them grouped by key, each key's
              seqs in one MDB_MULTIPLE put.
      time    u64 BE running maximum of time_us -> u64 BE seq: the key
              never decreases along the log, so a time range is a range of
              seqs (bus_store_time_range). Sparse: one entry per millisecond
              of the maximum, at the first record there (data dirs written
              before have one per record: the same bound, closer)

    The index trails the log. A record's index and time entries wait in
    memory (the trail) and go into a later commit, once BUS_STORE_TRAIL_US
    has passed since the first of them or BUS_STORE_TRAIL_MAX records wait,
    and at close; that commit also moves meta "ix_to" (the watermark: every
    record below it is indexed) on. At a thousand messages a second each
    message is a commit of its own, and the index's leaf pages, about
    twenty of them, were most of what each commit wrote; trailing, they are
    written once for a few hundred records. The readers (bus_store_ix_*,
    bus_store_time_range) answer exactly all the same: past the watermark
    they decode the records themselves. A crash loses only the trail, which
    the next open for writing rebuilds from the records past "ix_to".

    A log without index and time (written before them) gets them when it is
    opened for writing: the bus builds them at start, in batches, resuming
    where a killed build stopped (meta "index_next", kept equal to "ix_to"
    since); meta "index" = "2" says they were built and trail. ("1", from a
    bus before the trail, which indexed every commit: covered to the end,
    and stamped "2" at the next open for writing. Such a bus reads "2" as
    "not built", so it walks or rebuilds rather than miss the trail.)
    Opened read-only before that, queries walk the log instead
    (bus_store_indexed is false).

    The log is append-only with one exception: bus_store_purge_payload
    rewrites an old SEND record without its payload (retention).
      monitor name -> opaque (owned by the monitor: detector baselines,
              alerts, quarantines; written in a batch like everything else)

    Writing is by batch (group commit): the first write of a batch opens the
    write transaction; bus_store_commit makes every write since then durable
    with one synced commit. Nothing written is visible to other processes, and
    nothing may be acknowledged to anyone, before commit returned 0.

    MDB_MAP_FULL (from a put or from the commit itself) is handled inside: the
    dead transaction is aborted, the map grown (doubling, up to map_max), and
    the whole batch replayed from the copies the store keeps until commit.
    Any other failure, or a map that cannot grow further, puts the store in
    the failed state: every later write answers ELOGFULL / ELOGFAIL. The bus
    then stops delivering (fail closed). Records of a failed batch were never
    acknowledged, so nothing acknowledged is lost.

    Single-threaded: one store per process, used from one thread.
*/
#ifndef BUS_STORE_H
#define BUS_STORE_H

#include "bus_error.h"
#include "bus_merkle.h"
#include "bus_names.h"
#include "record.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bus_store bus_store_t;

typedef enum {
    BUS_DB_LOG,
    BUS_DB_MSGID,
    BUS_DB_MBOX,
    BUS_DB_CURSOR,
    BUS_DB_TAINT,
    BUS_DB_PENDING,
    BUS_DB_META,
    BUS_DB_CAUSE,
    BUS_DB_INDEX,
    BUS_DB_TIME,
    BUS_DB_MONITOR,
    BUS_DB_COUNT
} bus_db_t;

//  The data dir's format, stamped in meta under "format" when it is made.
//  1: no stamp (before the Merkle tree); 2: the tree (meta "tree": its
//  frontier, written in every commit), the leaf-hash chain from meta
//  "chain_from" on. A format this code does not know is refused (EVERSION).
#define BUS_STORE_FORMAT        2
#define BUS_META_FORMAT         "format"
#define BUS_META_TREE           "tree"
#define BUS_META_CHAIN_FROM     "chain_from"

typedef struct {
    size_t map_initial;     //  bytes; 0 = 64 MiB
    size_t map_max;         //  bytes; 0 = 64 GiB. The map never grows past it.
    bool read_only;         //  for `bulkhead log` / `verify` beside a live bus
    bool upgrade;           //  upgrade a format 1 data dir (else refused, EVERSION)
    uint64_t trail_us;      //  how long index entries may wait; 0 = BUS_STORE_TRAIL_US
} bus_store_options_t;

//  Opens (creating if needed) the environment in directory dir, clears stale
//  reader slots (readers killed by kill -9), and finds the last sequence and
//  the hash of the last record so appends continue the chain with no gap.
int
    bus_store_open (bus_store_t **out, const char *dir,
                    const bus_store_options_t *options, bus_error_t *err);

//  Aborts any uncommitted batch, puts the trail in a commit of its own if
//  no batch was open, and closes the environment.
void
    bus_store_destroy (bus_store_t **self_p);

//  The data dir's format (BUS_STORE_FORMAT, or 1 for an old one opened
//  read-only); true if this open upgraded it; the first seq whose prev_hash
//  is the leaf hash of the record before (1 for a dir made in format 2).
int
    bus_store_format (bus_store_t *self);
bool
    bus_store_upgraded (bus_store_t *self);
uint64_t
    bus_store_chain_from (bus_store_t *self);

//  The Merkle frontier of every record appended (open batch included:
//  call with no batch open for what is durable).
void
    bus_store_tree (bus_store_t *self, bus_tree_t *out);
//  The frontier as of the last commit: what a checkpoint may cover.
void
    bus_store_tree_durable (bus_store_t *self, bus_tree_t *out);

//  A consistent, compacted copy of the whole environment into directory
//  to (made 0700; refused if it already holds a log), while the bus runs.
int
    bus_store_backup (bus_store_t *self, const char *to, bus_error_t *err);

//  Like bus_store_iterate, without decoding: fn gets the key's seq and the
//  stored bytes, valid until bus_store_scan returns (one read transaction
//  for the whole scan, so a callback may keep them for a batch). After the
//  last record fn is called once more with raw NULL (seq and raw_len 0),
//  still inside the transaction, so it can finish what it kept; not after
//  fn stopped the scan (non-zero) or a read error. The store must not be
//  written meanwhile.
typedef int (bus_store_scan_fn) (void *arg, uint64_t seq, const uint8_t *raw, size_t raw_len);
int
    bus_store_scan (bus_store_t *self, uint64_t from, bus_store_scan_fn *fn, void *arg,
                    bus_error_t *err);

//  Highest sequence appended (committed or in the open batch); 0 if empty.
uint64_t
    bus_store_last_seq (bus_store_t *self);

//  True once a write failed for good; the reason is in bus_store_failure.
bool
    bus_store_failed (bus_store_t *self);
const bus_error_t *
    bus_store_failure (bus_store_t *self);

//  Appends a record to the current batch. Sets rec->seq, rec->prev_hash
//  (borrowed from the store, valid until the next append) and rec->time_us
//  if it is 0. Also writes the indexes: msgid when kind is SEND with a sender
//  and message id; mbox when kind is SEND and verdict is DELIVERED or QUEUED;
//  index and time for every record.
int
    bus_store_append (bus_store_t *self, Bulkhead__V1__Record *rec,
                      bus_error_t *err);

//  Bytes of the record appended last (what it costs the log).
size_t
    bus_store_last_size (bus_store_t *self);

//  Generic writes in the current batch, for the state databases.
int
    bus_store_put (bus_store_t *self, bus_db_t db,
                   const void *key, size_t key_len,
                   const void *val, size_t val_len, bus_error_t *err);
int
    bus_store_del (bus_store_t *self, bus_db_t db,
                   const void *key, size_t key_len, bus_error_t *err);

//  Makes the batch durable: one synced commit. Returns 0 on success (also
//  when the batch is empty). On failure the store is failed (see above).
int
    bus_store_commit (bus_store_t *self, bus_error_t *err);

//  True if a batch is open (there is something to commit).
bool
    bus_store_dirty (bus_store_t *self);

//  Reads see the open batch as well as what is committed.

//  Generic read. Returns 0 and a copy in *val (malloc'd, caller frees) if
//  found, 1 if not found, -1 on error.
int
    bus_store_get (bus_store_t *self, bus_db_t db,
                   const void *key, size_t key_len,
                   void **val, size_t *val_len, bus_error_t *err);

//  The first key of db after `after` in key order (after_len 0: the first
//  key). 0 and *key (malloc'd, caller frees), 1 if none, -1 on error.
int
    bus_store_next_key (bus_store_t *self, bus_db_t db, const void *after,
                        size_t after_len, void **key, size_t *key_len,
                        bus_error_t *err);

//  The seq of sender's Send with this message id: 0 and *seq, 1 if none.
int
    bus_store_find_msgid (bus_store_t *self, const char *sender,
                          const char *message_id, uint64_t *seq,
                          bus_error_t *err);

//  One record: 0 and *rec (free with bulkhead__v1__record__free_unpacked
//  (rec, NULL)), 1 if no such seq, -1 on error (ECORRUPT if it does not decode).
int
    bus_store_record (bus_store_t *self, uint64_t seq,
                      Bulkhead__V1__Record **rec, bus_error_t *err);

//  A refusal for load (RATE, BACKLOG, LOGBUDGET) does not use up a message
//  id: its Send is not indexed, so the sender may retry it.
bool
    bus_store_load_refusal (bus_code_t code);

//  The cause index entry of a SEND record.
#define BUS_CAUSE_RESTRICTED    1       //  the message was restricted
#define BUS_CAUSE_ACCEPTED      2       //  delivered or queued to its recipient
#define BUS_CAUSE_ANCESTRY      4       //  its ancestry is known (older entries: not)
#define BUS_CAUSE_FILTER        8       //  stored: BUS_ANCESTRY_BYTES of filter follow

//  A message's ancestry: the senders of its causes and of theirs, all the
//  way back, as a Bloom filter of their names (3 bits a name). Written at
//  append time from the causes' own entries, so "may agent have sent one
//  of this message's causes, however far back?" is one lookup: "no" is
//  exact, "maybe" is for the walk of the records to settle. Unknown
//  ancestry (an entry from before, a cause that cannot be read) is a
//  filter of all ones: maybe, for everyone.
#define BUS_ANCESTRY_BYTES      64
typedef struct {
    uint8_t flags;
    char sender [BUS_NAME_MAX + 1];
    char recipient [BUS_NAME_MAX + 1];
    uint8_t ancestry [BUS_ANCESTRY_BYTES];
} bus_cause_t;

//  Adds name to a filter; whether name may be in it.
void
    bus_ancestry_add (uint8_t filter [BUS_ANCESTRY_BYTES], const char *name);
bool
    bus_ancestry_may_hold (const uint8_t filter [BUS_ANCESTRY_BYTES], const char *name);

//  0 and *out, 1 if seq is no SEND record (or the log predates the index),
//  -1 on error.
int
    bus_store_cause (bus_store_t *self, uint64_t seq, bus_cause_t *out, bus_error_t *err);

//  One record's stored bytes: 0 and *data (malloc'd, caller frees), 1 if no
//  such seq, -1 on error. These are the bytes a hold's digest names.
int
    bus_store_record_raw (bus_store_t *self, uint64_t seq, void **data, size_t *size,
                          bus_error_t *err);

//  The first seq in agent's mailbox greater than after: 0 and *seq, 1 if none.
int
    bus_store_mailbox_next (bus_store_t *self, const char *agent,
                            uint64_t after, uint64_t *seq, bus_error_t *err);

//  The seqs in agent's mailbox greater than after and at most up_to, in
//  order, read with one cursor: at most max of them into out, *n how many.
//  Call again from the last one for more (*n < max: there are no more).
int
    bus_store_mailbox_range (bus_store_t *self, const char *agent, uint64_t after,
                             uint64_t up_to, uint64_t *out, size_t max, size_t *n,
                             bus_error_t *err);

//  Delivery cursor: the last seq agent acknowledged (0 if never).
int
    bus_store_cursor_get (bus_store_t *self, const char *agent,
                          uint64_t *seq, bus_error_t *err);
int
    bus_store_cursor_set (bus_store_t *self, const char *agent,
                          uint64_t seq, bus_error_t *err);

//  Calls fn for every record with seq >= from, in order, with the decoded
//  record and its stored bytes (both valid only during the call). fn returns
//  0 to go on, non-zero to stop (that value is returned).
typedef int (bus_store_iter_fn) (void *arg, const Bulkhead__V1__Record *rec,
                                 const uint8_t *raw, size_t raw_len);
int
    bus_store_iterate (bus_store_t *self, uint64_t from,
                       bus_store_iter_fn *fn, void *arg, bus_error_t *err);

//  Walks the whole log: sequences 1..last with no gap, each prev_hash the
//  leaf hash of the record before (from chain_from; before it, as format 1
//  had it, the BLAKE2b-256 of its stored bytes), and the tree kept with the
//  log the tree of its records. 0 if sound; -1 with ECORRUPT naming the
//  first bad seq otherwise. *count gets the number of records checked.
int
    bus_store_verify (bus_store_t *self, uint64_t *count, bus_error_t *err);

//  --------------------------------------------------------------------------
//  Queries. Index entries of a record, by tag (the value follows the tag in
//  the key; a value longer than a key allows is cut, so a key may stand for
//  more than one value: check each record found against what was asked):
#define BUS_IX_AGENT        'a'     //  sender, recipient and actor (each once)
#define BUS_IX_CLASS        'c'     //  intent_class
#define BUS_IX_EFFECT       'e'     //  u64 BE seq of a cause -> the records it caused
#define BUS_IX_ID           'i'     //  message_id
#define BUS_IX_CODE         'k'     //  code word
#define BUS_IX_KIND         'n'     //  one byte: RecordKind
#define BUS_IX_RESTRICTED   'r'     //  no value: restricted records
#define BUS_IX_VERDICT      'v'     //  one byte: Verdict

//  The trail (see the top): index entries wait in memory at most this long
//  after the first of them, or until this many records wait.
#define BUS_STORE_TRAIL_US      200000
#define BUS_STORE_TRAIL_MAX     2048

//  True when the indexes were built (the readers below cover the whole log:
//  the index up to the watermark, the records past it by decoding them).
bool
    bus_store_indexed (bus_store_t *self);

//  Puts the trail into the batch now, due or not (opening the batch if
//  there is a trail); the next commit makes it durable. For a bus going
//  idle, and for a test that counts reads.
int
    bus_store_trail_flush (bus_store_t *self, bus_error_t *err);

//  The first seq >= from among the records of (tag, value): 0 and *seq, 1
//  if none, -1 on error.
int
    bus_store_ix_seek (bus_store_t *self, char tag, const void *value, size_t len,
                       uint64_t from, uint64_t *seq, bus_error_t *err);

//  How many records (tag, value) has, in *count (0 if none).
int
    bus_store_ix_count (bus_store_t *self, char tag, const void *value, size_t len,
                        uint64_t *count, bus_error_t *err);

//  Seqs [*lo, *hi] outside which no record has since_us <= time_us <=
//  until_us (*hi < *lo: none). A bound, not exact: it may reach up to a
//  millisecond's records past each end (the index is sparse), and hi is
//  widened by the largest step back of the clock seen; a caller checks each
//  record's time_us and still misses none.
int
    bus_store_time_range (bus_store_t *self, uint64_t since_us, uint64_t until_us,
                          uint64_t *lo, uint64_t *hi, bus_error_t *err);

//  Index entries and records read since open: what queries cost (a test
//  checks that it grows with the answer, not with the log).
uint64_t
    bus_store_reads (bus_store_t *self);

//  Of them, the records decoded past the watermark (the trail's records).
uint64_t
    bus_store_reads_past (bus_store_t *self);

//  True when the trail waited long enough (or holds enough records) for
//  bus_store_trail_flush: the bus's timer flushes it when no commit did.
bool
    bus_store_trail_due (bus_store_t *self);

//  on: later reads share one read snapshot until off (a query sees one
//  state of the log). Keep it short beside a live bus: a snapshot held
//  open keeps the pages it sees from being reused.
int
    bus_store_snapshot (bus_store_t *self, bool on, bus_error_t *err);

//  A read-only store: sees what was committed since open (last seq, index
//  state). For `log --follow`.
int
    bus_store_refresh (bus_store_t *self, bus_error_t *err);

//  Retention: rewrites SEND record seq in the open batch without its payload
//  (field 19) and with payload_purged_us = now_us; every other field, and
//  so every other byte, stays. 0 if purged, 1 if there was nothing to purge
//  (no such record, not a SEND, no payload kept, or the last record), -1 on
//  error. What may be purged (nothing still queued or held) is the
//  caller's to decide.
int
    bus_store_purge_payload (bus_store_t *self, uint64_t seq, uint64_t now_us,
                             bus_error_t *err);

//  BLAKE2b-256, used for the chain, payload digests and the policy hash.
void
    bus_hash (uint8_t out [32], const void *data, size_t len);

#endif
