/*  logfix.c: see logfix.h. */
#include "logfix.h"
#include "bus_merkle.h"
#include "bus_store.h"
#include "bulkhead.pb-c.h"
#include "record.pb-c.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *s_dbs [] = {
    "log", "msgid", "mbox", "cursor", "taint", "pending", "meta", "cause"
};

static void
s_be64 (uint8_t out [8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (uint8_t) v;
        v >>= 8;
    }
}

static int
s_open (const char *dir, MDB_env **env, MDB_txn **txn, MDB_dbi *log, MDB_dbi *meta)
{
    if (mdb_env_create (env) || mdb_env_set_maxdbs (*env, 16)
    ||  mdb_env_set_mapsize (*env, (size_t) 256 << 20)
    ||  mdb_env_open (*env, dir, MDB_NOTLS, 0600)) {
        mdb_env_close (*env);
        return -1;
    }
    MDB_dbi dbi;
    if (mdb_txn_begin (*env, NULL, 0, txn)) {
        mdb_env_close (*env);
        return -1;
    }
    for (size_t i = 0; i < sizeof s_dbs / sizeof s_dbs [0]; i++) {
        if (mdb_dbi_open (*txn, s_dbs [i], MDB_CREATE, &dbi)) {
            mdb_txn_abort (*txn);
            mdb_env_close (*env);
            return -1;
        }
        if (i == 0) {
            *log = dbi;
        }
        if (i == 6) {
            *meta = dbi;
        }
    }
    return 0;
}

static int
s_close (MDB_env *env, MDB_txn *txn, int rc)
{
    if (rc == 0) {
        rc = mdb_txn_commit (txn)? -1: 0;
    }
    else {
        mdb_txn_abort (txn);
    }
    mdb_env_close (env);
    return rc;
}

void
logfix_send (Bulkhead__V1__Record *rec, const char *id, const char *payload, uint8_t digest [32],
             Bulkhead__V1__Verdict verdict)
{
    bus_hash (digest, payload, strlen (payload));
    bulkhead__v1__record__init (rec);
    rec->kind = BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
    rec->sender = "planner";
    rec->recipient = "writer";
    rec->intent = "message";
    rec->intent_class = "message";
    rec->message_id = (char *) id;
    rec->has_payload_digest = rec->has_payload = true;
    rec->payload_digest.data = digest;
    rec->payload_digest.len = 32;
    rec->payload.data = (uint8_t *) payload;
    rec->payload.len = strlen (payload);
    rec->has_verdict = true;
    rec->verdict = verdict;
    rec->code = "OK";
}

int
logfix_v1 (const char *dir, int records)
{
    mkdir (dir, 0700);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    uint8_t prev [32] = { 0 };
    int rc = 0;
    for (int i = 1; rc == 0 && i <= records; i++) {
        char payload [64], id [32];
        snprintf (payload, sizeof payload, "format one payload %d", i);
        snprintf (id, sizeof id, "v1-%d", i);
        uint8_t digest [32];
        Bulkhead__V1__Record rec;
        logfix_send (&rec, id, payload, digest, BULKHEAD__V1__VERDICT__VERDICT_QUEUED);
        rec.seq = (uint64_t) i;
        rec.time_us = 1700000000000000ULL + (uint64_t) i;
        rec.prev_hash.data = prev;
        rec.prev_hash.len = 32;
        size_t len = bulkhead__v1__record__get_packed_size (&rec);
        uint8_t *buf = malloc (len);
        bulkhead__v1__record__pack (&rec, buf);
        uint8_t key [8];
        s_be64 (key, (uint64_t) i);
        MDB_val k = { 8, key }, v = { len, buf };
        rc = mdb_put (txn, log, &k, &v, MDB_APPEND)? -1: 0;
        //  Format 1's chain: the hash of the stored bytes.
        bus_hash (prev, buf, len);
        free (buf);
    }
    return s_close (env, txn, rc);
}

int
logfix_get (const char *dir, uint64_t seq, uint8_t **data, size_t *len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    uint8_t key [8];
    s_be64 (key, seq);
    MDB_val k = { 8, key }, v;
    int rc = mdb_get (txn, log, &k, &v)? -1: 0;
    if (rc == 0) {
        *data = malloc (v.mv_size);
        memcpy (*data, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    return s_close (env, txn, rc);
}

int
logfix_put (const char *dir, uint64_t seq, const uint8_t *data, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    uint8_t key [8];
    s_be64 (key, seq);
    MDB_val k = { 8, key }, v = { len, (void *) data };
    int rc = data? mdb_put (txn, log, &k, &v, 0): mdb_del (txn, log, &k, NULL);
    return s_close (env, txn, rc? -1: 0);
}

int
logfix_strip (const char *dir, uint64_t seq, uint64_t purged_us)
{
    uint8_t *raw;
    size_t len;
    if (logfix_get (dir, seq, &raw, &len) != 0) {
        return -1;
    }
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, len, raw);
    free (raw);
    if (!rec || !rec->has_payload) {
        bulkhead__v1__record__free_unpacked (rec, NULL);
        return -1;
    }
    rec->has_payload = false;
    rec->has_payload_purged_us = purged_us != 0;
    rec->payload_purged_us = purged_us;
    size_t size = bulkhead__v1__record__get_packed_size (rec);
    uint8_t *buf = malloc (size + 1);
    int rc = buf? 0: -1;
    if (buf) {
        size = bulkhead__v1__record__pack (rec, buf);
        rc = logfix_put (dir, seq, buf, size);
    }
    free (buf);
    bulkhead__v1__record__free_unpacked (rec, NULL);
    return rc;
}

int
logfix_cut (const char *dir, uint64_t from, uint64_t to)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    MDB_cursor *cursor;
    int rc = mdb_cursor_open (txn, log, &cursor);
    if (rc == 0) {
        uint8_t key [8];
        s_be64 (key, from);
        MDB_val k = { 8, key }, v;
        while ((rc = mdb_cursor_get (cursor, &k, &v, MDB_SET_RANGE)) == 0) {
            uint64_t seq = 0;
            for (size_t i = 0; i < k.mv_size; i++) {
                seq = seq << 8 | ((uint8_t *) k.mv_data) [i];
            }
            if (seq > to) {
                rc = MDB_NOTFOUND;
                break;
            }
            if ((rc = mdb_cursor_del (cursor, 0)) != 0) {
                break;
            }
            k = (MDB_val) { 8, key };
        }
        mdb_cursor_close (cursor);
    }
    return s_close (env, txn, rc == MDB_NOTFOUND? 0: -1);
}

uint64_t
logfix_last (const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return 0;
    }
    MDB_cursor *cursor;
    MDB_val k, v;
    uint64_t last = 0;
    if (mdb_cursor_open (txn, log, &cursor) == 0) {
        if (mdb_cursor_get (cursor, &k, &v, MDB_LAST) == 0 && k.mv_size == 8) {
            for (int i = 0; i < 8; i++) {
                last = last << 8 | ((uint8_t *) k.mv_data) [i];
            }
        }
        mdb_cursor_close (cursor);
    }
    s_close (env, txn, 0);
    return last;
}

int
logfix_meta (const char *dir, const char *key, const char *value)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    MDB_val k = { strlen (key), (void *) key }, v = { strlen (value), (void *) value };
    return s_close (env, txn, mdb_put (txn, meta, &k, &v, 0)? -1: 0);
}

int
logfix_rechain (const char *dir, uint64_t from)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    //  Every record, in key order, into memory (the fixtures are small:
    //  tens of thousands of records at most).
    MDB_cursor *cursor;
    MDB_val k, v;
    size_t count = 0, max = 1024;
    uint8_t **recs = malloc (max * sizeof *recs);
    size_t *lens = malloc (max * sizeof *lens);
    int rc = mdb_cursor_open (txn, log, &cursor);
    for (int op = MDB_FIRST; rc == 0 && mdb_cursor_get (cursor, &k, &v, op) == 0; op = MDB_NEXT) {
        if (count == max) {
            max *= 2;
            recs = realloc (recs, max * sizeof *recs);
            lens = realloc (lens, max * sizeof *lens);
            if (!recs || !lens) {
                abort ();           //  a test fixture out of memory
            }
        }
        recs [count] = malloc (v.mv_size);
        memcpy (recs [count], v.mv_data, v.mv_size);
        lens [count++] = v.mv_size;
    }
    if (rc == 0) {
        mdb_cursor_close (cursor);
    }
    bus_tree_t tree;
    bus_tree_init (&tree);
    uint8_t prev [32] = { 0 };
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint64_t seq = i + 1;
        uint8_t key [8];
        s_be64 (key, seq);
        if (seq >= from) {
            Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, lens [i], recs [i]);
            if (!rec) {
                rc = -1;
                break;
            }
            uint8_t digest [32];
            //  Ours for the pack only: the decoded ones go back before the free.
            ProtobufCBinaryData old_prev = rec->prev_hash, old_digest = rec->payload_digest;
            protobuf_c_boolean had_digest = rec->has_payload_digest;
            rec->seq = seq;
            rec->prev_hash.data = prev;
            rec->prev_hash.len = 32;
            if (rec->has_payload) {
                bus_hash (digest, rec->payload.data, rec->payload.len);
                rec->has_payload_digest = true;
                rec->payload_digest.data = digest;
                rec->payload_digest.len = 32;
            }
            size_t len = bulkhead__v1__record__get_packed_size (rec);
            uint8_t *buf = malloc (len);
            bulkhead__v1__record__pack (rec, buf);
            rec->prev_hash = old_prev;
            rec->payload_digest = old_digest;
            rec->has_payload_digest = had_digest;
            bulkhead__v1__record__free_unpacked (rec, NULL);
            free (recs [i]);
            recs [i] = buf;
            lens [i] = len;
        }
        MDB_val kk = { 8, key }, vv = { lens [i], recs [i] };
        if (mdb_put (txn, log, &kk, &vv, 0)) {
            rc = -1;
        }
        bus_record_leaf_hash (recs [i], lens [i], prev);
        bus_tree_append (&tree, prev);
    }
    //  A deletion shifted everything down: the old last key goes.
    if (rc == 0) {
        uint8_t key [8];
        s_be64 (key, count + 1);
        MDB_val kk = { 8, key };
        mdb_del (txn, log, &kk, NULL);
        uint8_t buf [8 + 64 * 32];
        size_t len = bus_tree_encode (&tree, buf);
        MDB_val mk = { strlen (BUS_META_TREE), BUS_META_TREE }, mv = { len, buf };
        rc = mdb_put (txn, meta, &mk, &mv, 0)? -1: 0;
    }
    for (size_t i = 0; i < count; i++) {
        free (recs [i]);
    }
    free (recs);
    free (lens);
    return s_close (env, txn, rc);
}

int
logfix_dump (const char *dir, const char *path)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi log, meta;
    if (s_open (dir, &env, &txn, &log, &meta)) {
        return -1;
    }
    FILE *out = fopen (path, "w");
    MDB_cursor *cursor;
    MDB_val k, v;
    int rc = out && mdb_cursor_open (txn, log, &cursor) == 0? 0: -1;
    for (int op = MDB_FIRST; rc == 0 && mdb_cursor_get (cursor, &k, &v, op) == 0; op = MDB_NEXT) {
        for (size_t i = 0; i < v.mv_size; i++) {
            fprintf (out, "%02x", ((uint8_t *) v.mv_data) [i]);
        }
        fputc ('\n', out);
    }
    if (rc == 0) {
        mdb_cursor_close (cursor);
    }
    if (out) {
        fclose (out);
    }
    return s_close (env, txn, rc);
}
