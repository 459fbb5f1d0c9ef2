/*  logfix.h: log fixtures and tampering for the audit tests, on real LMDB.

    logfix_v1 writes a data dir exactly as bulkhead wrote it before data
    dir formats existed (format 1, what main made before the Merkle tree):
    every database, no "format" stamp, records chained by the BLAKE2b-256
    of the stored bytes of the record before. It is generated, not a
    committed binary, from the rules of format 1 (schemas/record.proto).

    The others edit a data dir (stopped bus) as an attacker with the bus
    user's rights would, straight in LMDB. logfix_rechain recomputes every
    prev_hash from `from` on (leaf hashes, format 2) and the tree kept in
    meta, so only signed checkpoints can tell.
*/
#ifndef LOGFIX_H
#define LOGFIX_H

#include "bulkhead.pb-c.h"
#include "record.pb-c.h"

#include <stddef.h>
#include <stdint.h>

//  *rec becomes a SEND record from planner to writer, class message, with
//  message id, payload (a string) and its digest, computed into digest;
//  rec borrows all three. The caller sets seq, time and prev_hash if it
//  writes the log itself (bus_store_append sets them).
void logfix_send (Bulkhead__V1__Record *rec, const char *id, const char *payload,
                  uint8_t digest [32], Bulkhead__V1__Verdict verdict);

//  A format 1 data dir in dir (made 0700) with `records` SEND records
//  from planner to writer, each with a payload and its digest. 0 or -1.
int logfix_v1 (const char *dir, int records);

//  Record seq's stored bytes (malloc'd) in *data, *len; 0, or -1.
int logfix_get (const char *dir, uint64_t seq, uint8_t **data, size_t *len);
//  Writes (len > 0) or deletes (data NULL) record seq. 0 or -1.
int logfix_put (const char *dir, uint64_t seq, const uint8_t *data, size_t len);
//  Drops record seq's payload (field 19) and, if purged_us is not 0, marks
//  it purged then (field 42), as `bulkhead purge` does, or without the
//  mark. Every other byte stays. 0, or -1 (no such record, no payload).
int logfix_strip (const char *dir, uint64_t seq, uint64_t purged_us);
//  Deletes records from..to in one transaction (to UINT64_MAX: a cut
//  tail). 0 or -1.
int logfix_cut (const char *dir, uint64_t from, uint64_t to);
//  Highest seq in the log (0 if empty).
uint64_t logfix_last (const char *dir);
//  Writes meta key = value (a string). 0 or -1.
int logfix_meta (const char *dir, const char *key, const char *value);

//  Rewrites records from..last: seq fields renumbered to their keys (after
//  a deletion: shifted down to close the gap), payload digests of the
//  payloads they hold, prev_hash chained by leaf hash; then the tree in
//  meta. 0 or -1.
int logfix_rechain (const char *dir, uint64_t from);

//  Every stored record as one hex line per record, into path. 0 or -1.
int logfix_dump (const char *dir, const char *path);

#endif
