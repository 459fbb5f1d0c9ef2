/*  audit_gen.c: writes a log of COUNT realistic SEND records (256-byte
    payloads by default) into a new data dir through the store's own append
    and group commit (1,000 records a batch, as the bus under load), for
    timing `bulkhead verify` and `bulkhead prove` on a large log:

        build/release/bench/audit_gen /tmp/big 1000000
        time build/release/bulkhead verify --data /tmp/big

    Not part of make bench's run (bench/run.sh does not call it). The
    payloads come from a fixed seed (printed), so two runs make the same
    records except for their times.
*/
#include "bus_store.h"
#include "bulkhead.pb-c.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
main (int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf (stderr, "usage: %s DIR COUNT [PAYLOAD_BYTES]\n", argv [0]);
        return 2;
    }
    const char *dir = argv [1];
    uint64_t count = strtoull (argv [2], NULL, 10);
    size_t payload_len = argc == 4? (size_t) strtoul (argv [3], NULL, 10): 256;
    if (count == 0 || payload_len > 65536) {
        fprintf (stderr, "%s: COUNT must be positive, PAYLOAD_BYTES at most 65536\n", argv [0]);
        return 2;
    }
    bus_store_t *store;
    bus_error_t err;
    bus_store_options_t options = { .map_initial = (size_t) 1 << 30 };
    if (bus_store_open (&store, dir, &options, &err) != 0) {
        fprintf (stderr, "%s: %s\n", argv [0], err.text);
        return 1;
    }
    unsigned seed = 14;
    printf ("seed %u\n", seed);
    uint8_t *payload = malloc (payload_len + 1);
    char policy [65];
    memset (policy, 'a', 64);
    policy [64] = 0;
    struct timespec start, end;
    clock_gettime (CLOCK_MONOTONIC, &start);
    for (uint64_t i = 0; i < count; i++) {
        for (size_t k = 0; k < payload_len; k++) {
            seed = seed * 1103515245u + 12345u;
            payload [k] = (uint8_t) ('a' + (seed >> 16) % 26);
        }
        char sender [16], recipient [16], id [32], fp [17];
        snprintf (sender, sizeof sender, "agent-%03" PRIu64, i % 100);
        snprintf (recipient, sizeof recipient, "agent-%03" PRIu64, (i * 7 + 3) % 100);
        snprintf (id, sizeof id, "m-%" PRIu64, i);
        snprintf (fp, sizeof fp, "%016" PRIx64, (uint64_t) ((i % 100) * 0x9e3779b97f4a7c15ULL));
        uint8_t digest [32];
        bus_hash (digest, payload, payload_len);
        Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
        rec.kind = BULKHEAD__V1__RECORD_KIND__RECORD_SEND;
        rec.policy_hash = policy;
        rec.sender = sender;
        rec.key_fp = fp;
        rec.recipient = recipient;
        rec.intent = "message";
        rec.intent_class = "message";
        rec.action = "report.create";
        rec.resource = "doc:quarterly";
        rec.content_type = "text/plain";
        rec.message_id = id;
        rec.has_payload_digest = rec.has_payload = true;
        rec.payload_digest.data = digest;
        rec.payload_digest.len = 32;
        rec.payload.data = payload;
        rec.payload.len = payload_len;
        rec.has_payload_size = true;
        rec.payload_size = payload_len;
        rec.has_verdict = true;
        rec.verdict = BULKHEAD__V1__VERDICT__VERDICT_DELIVERED;
        rec.code = "OK";
        rec.reason = "delivered";
        rec.has_restricted = true;
        if (bus_store_append (store, &rec, &err) != 0
        ||  ((i + 1) % 1000 == 0 && bus_store_commit (store, &err) != 0)) {
            fprintf (stderr, "%s: record %" PRIu64 ": %s\n", argv [0], i + 1, err.text);
            return 1;
        }
    }
    if (bus_store_commit (store, &err) != 0) {
        fprintf (stderr, "%s: %s\n", argv [0], err.text);
        return 1;
    }
    clock_gettime (CLOCK_MONOTONIC, &end);
    double secs = (double) (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf ("%s: %" PRIu64 " records of %zu-byte payloads in %.1f s (%.0f records/s)\n", dir,
            count, payload_len, secs, (double) count / secs);
    bus_store_destroy (&store);
    free (payload);
    return 0;
}
