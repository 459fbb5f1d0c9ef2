/*  gen_log.c: a big log for the query figures, written directly through
    the store API (bus_store_append, so with every index a running bus
    writes), and the warm query timing.

        gen_log make DIR N      N SEND records with 256-byte payloads: 1,000
                                agents, plus "probe" who sends exactly 100,
                                spread over the whole log; one in five names
                                the record before it as its cause
        gen_log query DIR       opens DIR read-only (as `bulkhead log` does)
                                and times the query --agent probe (and two
                                combinations) 20 times each after one warm-up

    One JSON line per figure, like the other drivers.
*/
#include "bus_query.h"
#include "bus_store.h"
#include "bulkhead.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
s_make (const char *dir, unsigned long long n)
{
    bus_store_t *store;
    bus_error_t err;
    bus_store_options_t options = { 0 };
    if (bus_store_open (&store, dir, &options, &err) != 0) {
        fprintf (stderr, "gen_log: %s\n", err.text);
        return 1;
    }
    uint8_t payload [256], digest [32];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload [i] = (uint8_t) (i * 37 + 11);
    }
    char policy [65];
    memset (policy, 'a', 64);
    policy [64] = 0;
    uint64_t t0 = 1764547200000000ull;      //  2025-12-01T00:00:00Z
    unsigned long long every = n / 100? n / 100: 1;
    double start = s_now ();
    for (unsigned long long i = 0; i < n; i++) {
        char sender [32], recipient [32], id [32];
        bool probe = i % every == every / 2;
        snprintf (sender, sizeof sender, probe? "probe": "agent-%llu", i % 1000);
        snprintf (recipient, sizeof recipient, "agent-%llu", (i * 7 + 3) % 1000);
        snprintf (id, sizeof id, "m-%llu", i);
        memcpy (payload, &i, sizeof i);     //  each payload its own
        bus_hash (digest, payload, sizeof payload);
        Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
        rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
        rec.time_us = t0 + i * 100;
        rec.policy_hash = policy;
        rec.sender = sender;
        rec.key_fp = "0123456789abcdef";
        rec.recipient = recipient;
        rec.intent = "message";
        rec.intent_class = "message";
        rec.message_id = id;
        rec.content_type = "application/json";
        rec.has_payload = rec.has_payload_digest = rec.has_payload_size = true;
        rec.payload = (ProtobufCBinaryData) { sizeof payload, payload };
        rec.payload_digest = (ProtobufCBinaryData) { sizeof digest, digest };
        rec.payload_size = sizeof payload;
        rec.has_verdict = true;
        rec.verdict = BULKHEAD__V1__VERDICT__VERDICT_DELIVERED;
        rec.code = "OK";
        rec.reason = "delivered";
        uint64_t cause = bus_store_last_seq (store);
        if (i % 5 == 4 && cause) {
            rec.causes = &cause;
            rec.n_causes = 1;
        }
        if (bus_store_append (store, &rec, &err) != 0
        ||  (i % 10000 == 9999 && bus_store_commit (store, &err) != 0)) {
            fprintf (stderr, "gen_log: %s\n", err.text);
            bus_store_destroy (&store);
            return 1;
        }
    }
    if (bus_store_commit (store, &err) != 0) {
        fprintf (stderr, "gen_log: %s\n", err.text);
        return 1;
    }
    double seconds = s_now () - start;
    bus_store_destroy (&store);
    char path [4096];
    snprintf (path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    unsigned long long bytes = stat (path, &st) == 0? (unsigned long long) st.st_blocks * 512: 0;
    printf ("{\"figure\":\"gen_log\",\"records\":%llu,\"payload\":256,\"seconds\":%.1f,"
            "\"records_per_s\":%.0f,\"data_bytes\":%llu,\"bytes_per_record\":%.0f}\n",
            n, seconds, (double) n / seconds, bytes, (double) bytes / (double) n);
    return 0;
}

static int
s_count (void *arg, const Bulkhead__V1__Record *rec, size_t raw_len)
{
    (void) rec, (void) raw_len;
    (*(uint64_t *) arg)++;
    return 0;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static int
s_time (bus_store_t *store, const char *name, const bus_query_t *q)
{
    double ms [20];
    bus_query_plan_t plan;
    bus_error_t err;
    for (int i = -1; i < 20; i++) {
        uint64_t n = 0;
        double start = s_now ();
        if (bus_query_run (store, q, s_count, &n, &plan, &err) != 0) {
            fprintf (stderr, "gen_log: %s\n", err.text);
            return 1;
        }
        if (i >= 0) {
            ms [i] = (s_now () - start) * 1000;
        }
    }
    qsort (ms, 20, sizeof ms [0], s_cmp);
    printf ("{\"figure\":\"query\",\"query\":\"%s\",\"records\":%llu,\"matched\":%llu,"
            "\"reads\":%llu,\"ms_median\":%.3f,\"ms_max\":%.3f}\n", name,
            (unsigned long long) bus_store_last_seq (store), (unsigned long long) plan.matched,
            (unsigned long long) plan.reads, ms [10], ms [19]);
    return 0;
}

static int
s_query (const char *dir)
{
    bus_store_t *store;
    bus_error_t err;
    bus_store_options_t options = { .read_only = true };
    if (bus_store_open (&store, dir, &options, &err) != 0) {
        fprintf (stderr, "gen_log: %s\n", err.text);
        return 1;
    }
    uint64_t last = bus_store_last_seq (store);
    uint64_t t0 = 1764547200000000ull;
    bus_query_t agent = { .agent = "probe" };
    bus_query_t both = { .agent = "probe", .verdict = BULKHEAD__V1__VERDICT__VERDICT_DELIVERED };
    //  The last tenth of the log by time: 10 of probe's 100.
    bus_query_t window = { .agent = "probe", .has_since = true,
                           .since_us = t0 + (last - last / 10) * 100 };
    int rc = s_time (store, "--agent probe", &agent)
          || s_time (store, "--agent probe --verdict delivered", &both)
          || s_time (store, "--agent probe --since (last tenth)", &window);
    bus_store_destroy (&store);
    return rc;
}

int
main (int argc, char **argv)
{
    unsigned long long n = 0;
    if (argc == 4 && strcmp (argv [1], "make") == 0
    &&  (n = strtoull (argv [3], NULL, 10)) >= 100) {
        return s_make (argv [2], n);
    }
    if (argc == 3 && strcmp (argv [1], "query") == 0) {
        return s_query (argv [2]);
    }
    fprintf (stderr, "usage: gen_log make DIR N (N >= 100) | gen_log query DIR\n");
    return 2;
}
