/*  fleet.c: thousands of idle agents on one bus, and a live pair beside them.

    Four modes, each one process, each printing one JSON line on stdout:

    fleet keys --dir DIR --agents N [--policy FILE]
        Keys for agents a00000 .. a(N-1), planner and writer (DIR/NAME.key,
        the format bus_keys.h reads; keys already there are kept, so one
        directory serves every N up to the largest), and a policy naming
        exactly those N agents plus the pair, with the one edge
        planner -> writer (FILE, default DIR/policy-N.cfg).

    fleet connect --endpoint EP --bus-key FILE --dir DIR --from I --count K
                  [--seconds S] [--ping MS] [--io-threads T] [--timeout S]
        Agents I .. I+K-1, each its own raw DEALER with its own CURVE key
        (no bus_client: K of those would be K contexts and 2K threads), each
        says HELLO and waits for WELCOME. Prints when the first connect was
        made and when the last WELCOME came (CLOCK_MONOTONIC, which every
        process on the machine shares, so several fleets can be summed up),
        then stays connected and idle for S seconds or until SIGTERM.
        --ping MS makes each DEALER send ZMQ heartbeats as bus_client does
        (interval MS, timeout 3 MS); 0, the default, sends none.
        T I/O threads (default 8) keep the fleet's own libzmq timers, which
        are linear per thread like the bus's, from measuring the fleet.

    fleet pair --endpoint EP --bus-key FILE --dir DIR [--seconds S]
               [--rate R] [--size B]
        planner -> writer through bus_client, as agents do: B bytes (256)
        at R messages/s (100), open loop, for S seconds (20), after a short
        unmeasured warm-up. Latency is send (just before post) to DELIVER
        at writer, in the same process (one clock). Every DELIVER goes
        through one synced LMDB commit before it leaves the bus.

    fleet cpu --pid PID [--seconds S]
        CPU (utime + stime from /proc/PID/stat, every thread) a process
        used over S seconds (10), as a share of one core; its RSS and open
        file descriptors (about one per connection for the bus).

    bench/fleet.sh puts them together; see there.
*/
#include "bench_util.h"
#include "bus_client.h"
#include "bus_keys.h"

#include <dirent.h>
#include <sodium.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <zmq.h>

#define FLEET_NAME_FMT      "a%05ld"
#define FLEET_MAX           100000
#define FLEET_WARMUP        20

static volatile sig_atomic_t s_stop = 0;

static void
s_on_signal (int signo)
{
    (void) signo;
    s_stop = 1;
}

typedef struct {
    const char *mode;
    const char *dir;
    const char *policy;
    const char *endpoint;
    const char *bus_key;
    long agents;
    long from;
    long count;
    double seconds;
    double timeout;
    int ping_ms;
    int io_threads;
    double rate;
    size_t size;
    int pid;
} fleet_options_t;

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: fleet keys --dir DIR --agents N [--policy FILE]\n"
        "       fleet connect --endpoint EP --bus-key FILE --dir DIR --from I --count K\n"
        "                     [--seconds S] [--ping MS] [--io-threads T] [--timeout S]\n"
        "       fleet pair --endpoint EP --bus-key FILE --dir DIR [--seconds S] [--rate R]\n"
        "                  [--size B]\n"
        "       fleet cpu --pid PID [--seconds S]\n"
        "(see the comment at the top of bench/fleet.c)\n");
    exit (2);
}

static void
s_agent_name (char *out, size_t size, long index)
{
    snprintf (out, size, FLEET_NAME_FMT, index);
}

//  ---------------------------------------------------------------------
//  keys

//  The key of `name` in dir: the one there, or a new one saved there.
static int
s_key (const char *dir, const char *name, bus_keypair_t *pair)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s.key", dir, name);
    bus_error_t err;
    if (access (path, F_OK) == 0) {
        if (bus_keys_load (pair, path, &err) != 0) {
            fprintf (stderr, "fleet: %s\n", err.text);
            return -1;
        }
        return 0;
    }
    //  The secret file holds the public key too: no NAME.pub, half the
    //  files (each is fsynced).
    if (bus_keys_generate (pair, name, &err) != 0
    ||  bus_keys_save (pair, path, NULL, &err) != 0) {
        fprintf (stderr, "fleet: %s\n", err.text);
        return -1;
    }
    return 1;
}

static int
s_keys (const fleet_options_t *o)
{
    if (mkdir (o->dir, 0700) != 0 && errno != EEXIST) {
        fprintf (stderr, "fleet: cannot make %s: %s\n", o->dir, strerror (errno));
        return 1;
    }
    char policy_path [4096];
    if (o->policy) {
        snprintf (policy_path, sizeof policy_path, "%s", o->policy);
    }
    else {
        snprintf (policy_path, sizeof policy_path, "%s/policy-%ld.cfg", o->dir, o->agents);
    }
    char tmp_path [4200];
    snprintf (tmp_path, sizeof tmp_path, "%s.tmp", policy_path);
    FILE *policy = fopen (tmp_path, "w");
    if (!policy) {
        fprintf (stderr, "fleet: cannot write %s: %s\n", tmp_path, strerror (errno));
        return 1;
    }
    uint64_t start = bench_now_ns ();
    fprintf (policy,
        "#   bench/fleet.c: %ld idle agents, each its own key, and one live pair.\n"
        "bus\n"
        "    max_frame = 65536\n"
        "agents\n", o->agents);
    long made = 0;
    int rc = 0;
    for (long i = 0; i < o->agents + 2 && rc == 0; i++) {
        char name [32];
        if (i < o->agents) {
            s_agent_name (name, sizeof name, i);
        }
        else {
            snprintf (name, sizeof name, "%s", i == o->agents? "planner": "writer");
        }
        bus_keypair_t pair;
        int got = s_key (o->dir, name, &pair);
        if (got < 0) {
            rc = 1;
            break;
        }
        made += got;
        fprintf (policy, "    %s\n        key = \"%s\"\n", name, pair.public_z85);
        if (i >= o->agents) {
            fprintf (policy, "        provider = bench\n");
        }
    }
    fprintf (policy, "edges\n    planner\n        writer = message\n");
    if (fclose (policy) != 0 || rc != 0 || rename (tmp_path, policy_path) != 0) {
        fprintf (stderr, "fleet: cannot write %s\n", policy_path);
        unlink (tmp_path);
        return 1;
    }
    printf ("{\"mode\":\"keys\",\"agents\":%ld,\"made\":%ld,\"seconds\":%.2f,\"policy\":\"%s\"}\n",
            o->agents, made, (double) (bench_now_ns () - start) / 1e9, policy_path);
    return 0;
}

//  ---------------------------------------------------------------------
//  connect

static int
s_connect (const fleet_options_t *o)
{
    bus_error_t err;
    char bus_key [BUS_KEY_Z85_LEN + 1];
    if (bus_keys_public (bus_key, o->bus_key, &err) != 0) {
        fprintf (stderr, "fleet: %s\n", err.text);
        return 1;
    }
    //  Every key read before the clock starts: the figure is the bus's.
    bus_keypair_t *keys = calloc ((size_t) o->count, sizeof *keys);
    void **sockets = calloc ((size_t) o->count, sizeof *sockets);
    zmq_pollitem_t *items = calloc ((size_t) o->count, sizeof *items);
    long *index = calloc ((size_t) o->count, sizeof *index);
    if (!keys || !sockets || !items || !index) {
        fprintf (stderr, "fleet: out of memory\n");
        return 1;
    }
    for (long i = 0; i < o->count; i++) {
        char name [32], path [4096];
        s_agent_name (name, sizeof name, o->from + i);
        snprintf (path, sizeof path, "%s/%s.key", o->dir, name);
        if (bus_keys_load (&keys [i], path, &err) != 0) {
            fprintf (stderr, "fleet: %s (run fleet keys first)\n", err.text);
            return 1;
        }
    }
    void *ctx = zmq_ctx_new ();
    zmq_ctx_set (ctx, ZMQ_IO_THREADS, o->io_threads);
    zmq_ctx_set (ctx, ZMQ_MAX_SOCKETS, (int) o->count + 64);

    //  HELLO is the same bytes for every agent.
    Bulkhead__V1__Hello hello = BULKHEAD__V1__HELLO__INIT;
    hello.version = 1;
    hello.software = "bulkhead-fleet/1";
    Bulkhead__V1__Frame frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_HELLO;
    frame.hello = &hello;
    uint8_t hello_bytes [256];
    size_t hello_size = bulkhead__v1__frame__pack (&frame, hello_bytes);

    int linger = 0;
    int ping_timeout = o->ping_ms * 3;
    int handshake = 30000;
    uint64_t start = bench_now_ns ();
    for (long i = 0; i < o->count; i++) {
        void *dealer = zmq_socket (ctx, ZMQ_DEALER);
        if (!dealer
        ||  zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof linger)
        ||  zmq_setsockopt (dealer, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake)
        ||  zmq_setsockopt (dealer, ZMQ_CURVE_SERVERKEY, bus_key, BUS_KEY_Z85_LEN)
        ||  zmq_setsockopt (dealer, ZMQ_CURVE_PUBLICKEY, keys [i].public_z85, BUS_KEY_Z85_LEN)
        ||  zmq_setsockopt (dealer, ZMQ_CURVE_SECRETKEY, keys [i].secret_z85, BUS_KEY_Z85_LEN)
        ||  (o->ping_ms > 0
             && (zmq_setsockopt (dealer, ZMQ_HEARTBEAT_IVL, &o->ping_ms, sizeof o->ping_ms)
             ||  zmq_setsockopt (dealer, ZMQ_HEARTBEAT_TIMEOUT, &ping_timeout, sizeof ping_timeout)))
        ||  zmq_connect (dealer, o->endpoint) != 0
        ||  zmq_send (dealer, hello_bytes, hello_size, ZMQ_DONTWAIT) != (int) hello_size) {
            fprintf (stderr, "fleet: agent %ld: %s\n", o->from + i, zmq_strerror (zmq_errno ()));
            return 1;
        }
        sockets [i] = dealer;
        index [i] = i;
    }
    sodium_memzero (keys, (size_t) o->count * sizeof *keys);
    uint64_t connected = bench_now_ns ();

    //  Wait for every WELCOME, polling only those still waiting.
    long waiting = o->count;
    long welcomed = 0, refused = 0;
    uint64_t last = start;
    uint64_t deadline = start + (uint64_t) (o->timeout * 1e9);
    char first_error [200] = "";
    while (waiting > 0 && !s_stop && bench_now_ns () < deadline) {
        for (long k = 0; k < waiting; k++) {
            items [k] = (zmq_pollitem_t) { sockets [index [k]], 0, ZMQ_POLLIN, 0 };
        }
        if (zmq_poll (items, (int) waiting, 100) <= 0) {
            continue;
        }
        long kept = 0;
        for (long k = 0; k < waiting; k++) {
            bool done = false;
            if (items [k].revents & ZMQ_POLLIN) {
                zmq_msg_t msg;
                zmq_msg_init (&msg);
                while (!done && zmq_msg_recv (&msg, items [k].socket, ZMQ_DONTWAIT) >= 0) {
                    Bulkhead__V1__Frame *reply = bulkhead__v1__frame__unpack (
                        NULL, zmq_msg_size (&msg), zmq_msg_data (&msg));
                    if (reply && reply->body_case == BULKHEAD__V1__FRAME__BODY_WELCOME) {
                        welcomed++;
                        done = true;
                        last = bench_now_ns ();
                    }
                    else
                    if (reply && reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
                        if (!first_error [0]) {
                            snprintf (first_error, sizeof first_error, "%s", reply->error->code);
                        }
                        refused++;
                        done = true;
                    }
                    bulkhead__v1__frame__free_unpacked (reply, NULL);
                }
                zmq_msg_close (&msg);
            }
            if (!done) {
                index [kept++] = index [k];
            }
        }
        waiting = kept;
    }
    printf ("{\"mode\":\"connect\",\"from\":%ld,\"count\":%ld,\"welcomed\":%ld,\"refused\":%ld,"
            "\"missing\":%ld,\"first_error\":\"%s\",\"ping_ms\":%d,\"io_threads\":%d,"
            "\"start_ns\":%llu,\"connected_ns\":%llu,\"last_ns\":%llu,\"welcome_s\":%.3f}\n",
            o->from, o->count, welcomed, refused, waiting, first_error, o->ping_ms, o->io_threads,
            (unsigned long long) start, (unsigned long long) connected,
            (unsigned long long) last, (double) (last - start) / 1e9);
    fflush (stdout);

    //  Idle, connected, until told or the time is up. Nothing is read: an
    //  idle agent gets nothing from the bus.
    uint64_t idle_end = bench_now_ns () + (uint64_t) (o->seconds * 1e9);
    while (!s_stop && bench_now_ns () < idle_end) {
        usleep (100000);
    }
    for (long i = 0; i < o->count; i++) {
        zmq_close (sockets [i]);
    }
    zmq_ctx_term (ctx);
    free (keys);
    free (sockets);
    free (items);
    free (index);
    return waiting || refused? 1: 0;
}

//  ---------------------------------------------------------------------
//  pair

typedef struct {
    bus_client_t *planner;
    bus_client_t *writer;
    uint64_t *samples;
    uint64_t sample_count;
    uint64_t samples_max;
    uint64_t posted;
    uint64_t answered;
    uint64_t acked;
    uint64_t delivered;
    uint64_t warm_delivered;
    uint64_t errors;
    uint64_t run;                   //  part of every message id
} pair_t;

static void
s_pair_drain (pair_t *p)
{
    Bulkhead__V1__Frame *frame;
    bus_error_t err;
    bool got = false;
    while (bus_client_recv (p->writer, &frame, 0, &err) == 0) {
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER) {
            Bulkhead__V1__Deliver *d = frame->deliver;
            uint64_t seq = 0;
            if (d->payload.len >= BENCH_STAMP_SIZE) {
                memcpy (&seq, d->payload.data + 8, 8);
            }
            if (seq & (1ull << 63)) {
                p->warm_delivered++;
            }
            else {
                uint64_t latency = bench_latency (d->payload.data, d->payload.len);
                if (p->sample_count < p->samples_max) {
                    p->samples [p->sample_count++] = latency;
                }
                p->delivered++;
            }
            got = true;
        }
        bus_client_free (&frame);
    }
    if (got && bus_client_ack (p->writer, bus_client_last_seq (p->writer), &err) != 0) {
        p->errors++;
    }
    while (bus_client_recv (p->planner, &frame, 0, &err) == 0) {
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
            p->answered++;
            Bulkhead__V1__Verdict v = frame->ack->verdict;
            if (v == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
            ||  v == BULKHEAD__V1__VERDICT__VERDICT_QUEUED) {
                p->acked++;
            }
            else {
                fprintf (stderr, "fleet: planner refused: %s %s\n", frame->ack->code,
                         frame->ack->reason);
            }
        }
        else
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
            p->answered++;
            fprintf (stderr, "fleet: planner: ERROR %s %s\n", frame->error->code,
                     frame->error->reason);
        }
        bus_client_free (&frame);
    }
}

static int
s_pair_post (pair_t *p, uint8_t *payload, size_t size, uint64_t seq, bool warm)
{
    //  Ids unique across runs: the bus answers a repeated id with the first
    //  answer and delivers nothing again.
    char id [64];
    snprintf (id, sizeof id, "%c%llu-%llx-%d", warm? 'w': 'm', (unsigned long long) seq,
              (unsigned long long) p->run, (int) getpid ());
    bench_stamp (payload, seq | (warm? 1ull << 63: 0));
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = id;
    send.recipient = "writer";
    send.intent = "message";
    send.content_type = "application/octet-stream";
    send.has_payload = true;
    send.payload.data = payload;
    send.payload.len = size;
    bus_error_t err;
    if (bus_client_post (p->planner, &send, &err) != 0) {
        fprintf (stderr, "fleet: post: %s\n", err.text);
        return -1;
    }
    p->posted++;
    return 0;
}

//  Waits until `when` (or a frame), then reads whatever came.
static void
s_pair_wait (pair_t *p, uint64_t when)
{
    zmq_pollitem_t items [] = {
        { bus_client_socket (p->writer), 0, ZMQ_POLLIN, 0 },
        { bus_client_socket (p->planner), 0, ZMQ_POLLIN, 0 },
    };
    uint64_t now = bench_now_ns ();
    int timeout = now >= when? 0: (int) ((when - now) / 1000000u);
    zmq_poll (items, 2, timeout);
    s_pair_drain (p);
}

static int
s_pair (const fleet_options_t *o)
{
    pair_t p = { .run = bench_now_ns () };
    char planner_key [4096], writer_key [4096];
    snprintf (planner_key, sizeof planner_key, "%s/planner.key", o->dir);
    snprintf (writer_key, sizeof writer_key, "%s/writer.key", o->dir);
    bus_client_options_t wo = { .endpoint = o->endpoint, .bus_key = o->bus_key,
                                .key_file = writer_key, .timeout_ms = 60000 };
    bus_client_options_t po = wo;
    po.key_file = planner_key;
    bus_error_t err;
    uint64_t t0 = bench_now_ns ();
    if (bus_client_connect (&p.writer, &wo, &err) != 0
    ||  bus_client_connect (&p.planner, &po, &err) != 0) {
        fprintf (stderr, "fleet: pair cannot connect: %s: %s\n", bus_errname (err.code), err.text);
        return 1;
    }
    double connect_s = (double) (bench_now_ns () - t0) / 1e9;
    uint8_t *payload = calloc (1, o->size);
    p.samples_max = (uint64_t) (o->rate * o->seconds) + 16;
    p.samples = calloc (p.samples_max, sizeof *p.samples);
    if (!payload || !p.samples) {
        return 1;
    }
    memset (payload, 'x', o->size);

    //  Warm-up, one at a time: the pair's pages, the log's map.
    uint64_t warm_end = bench_now_ns () + 10000000000u;
    for (uint64_t k = 0; k < FLEET_WARMUP && bench_now_ns () < warm_end; k++) {
        if (s_pair_post (&p, payload, o->size, k, true) != 0) {
            return 1;
        }
        while (p.warm_delivered <= k && bench_now_ns () < warm_end) {
            s_pair_wait (&p, bench_now_ns () + 5000000u);
        }
    }
    p.posted = p.answered = p.acked = 0;

    //  Open loop: message k is due at start + k / rate.
    double interval = 1e9 / o->rate;
    uint64_t count = (uint64_t) (o->rate * o->seconds);
    uint64_t start = bench_now_ns ();
    uint64_t k = 0;
    while (k < count && !s_stop) {
        uint64_t due = start + (uint64_t) ((double) k * interval);
        if (bench_now_ns () < due) {
            s_pair_wait (&p, due);
            continue;
        }
        if (s_pair_post (&p, payload, o->size, k, false) != 0) {
            p.errors++;
        }
        k++;
    }
    uint64_t drain_end = bench_now_ns () + 10000000000u;
    while ((p.delivered < p.acked || p.answered < p.posted) && bench_now_ns () < drain_end) {
        s_pair_wait (&p, bench_now_ns () + 10000000u);
    }
    double elapsed = (double) (bench_now_ns () - start) / 1e9;
    qsort (p.samples, p.sample_count, sizeof *p.samples, s_u64_cmp);
    uint64_t errors = p.errors + (p.posted - p.acked) + (p.acked - p.delivered);
    printf ("{\"mode\":\"pair\",\"size\":%zu,\"rate\":%.0f,\"seconds\":%.1f,\"connect_s\":%.3f,"
            "\"sent\":%llu,\"acked\":%llu,\"delivered\":%llu,\"errors\":%llu,"
            "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}\n",
            o->size, o->rate, elapsed, connect_s, (unsigned long long) p.posted,
            (unsigned long long) p.acked, (unsigned long long) p.delivered,
            (unsigned long long) errors,
            bench_percentile (p.samples, p.sample_count, 50),
            bench_percentile (p.samples, p.sample_count, 99),
            bench_percentile (p.samples, p.sample_count, 99.9),
            p.sample_count? (double) p.samples [p.sample_count - 1] / 1000.0: 0);
    bus_client_destroy (&p.planner);
    bus_client_destroy (&p.writer);
    free (payload);
    free (p.samples);
    return errors? 1: 0;
}

//  ---------------------------------------------------------------------
//  cpu

static long
s_fds (int pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/fd", pid);
    DIR *dir = opendir (path);
    if (!dir) {
        return -1;
    }
    long count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        count += entry->d_name [0] != '.';
    }
    closedir (dir);
    return count;
}

//  Busy and total ticks of the whole machine (every CPU), from /proc/stat.
static void
s_machine (unsigned long long *busy, unsigned long long *total)
{
    *busy = *total = 0;
    FILE *file = fopen ("/proc/stat", "r");
    if (!file) {
        return;
    }
    unsigned long long v [8] = { 0 };
    if (fscanf (file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                &v [0], &v [1], &v [2], &v [3], &v [4], &v [5], &v [6], &v [7]) == 8) {
        for (int i = 0; i < 8; i++) {
            *total += v [i];
        }
        *busy = *total - v [3] - v [4];
    }
    fclose (file);
}

static int
s_cpu (const fleet_options_t *o)
{
    unsigned long long busy0, total0, busy1, total1;
    s_machine (&busy0, &total0);
    double before = bench_proc_cpu (o->pid);
    uint64_t start = bench_now_ns ();
    if (before < 0) {
        fprintf (stderr, "fleet: no process %d\n", o->pid);
        return 1;
    }
    uint64_t end = start + (uint64_t) (o->seconds * 1e9);
    while (!s_stop && bench_now_ns () < end) {
        bench_sleep_until (end);
    }
    double after = bench_proc_cpu (o->pid);
    double seconds = (double) (bench_now_ns () - start) / 1e9;
    s_machine (&busy1, &total1);
    //  What else ran meanwhile, in cores (the machine is shared).
    double machine = total1 > total0
                   ? (double) (busy1 - busy0) / (double) (total1 - total0) * (double) sysconf (_SC_NPROCESSORS_ONLN)
                   : 0;
    if (after < 0) {
        fprintf (stderr, "fleet: process %d ended during the window\n", o->pid);
        return 1;
    }
    printf ("{\"mode\":\"cpu\",\"pid\":%d,\"seconds\":%.2f,\"cpu_s\":%.3f,\"pct\":%.2f,"
            "\"rss_kb\":%ld,\"fds\":%ld,\"machine_busy_cores\":%.2f,\"cpus\":%ld}\n",
            o->pid, seconds, after - before, 100.0 * (after - before) / seconds,
            bench_proc_kb (o->pid, "VmRSS:"), s_fds (o->pid), machine,
            sysconf (_SC_NPROCESSORS_ONLN));
    return 0;
}

//  ---------------------------------------------------------------------

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage ();
    }
    fleet_options_t o = {
        .mode = argv [1], .agents = -1, .from = -1, .count = -1, .seconds = -1,
        .timeout = 120, .io_threads = 8, .rate = 100, .size = 256
    };
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            s_usage ();
        }
        const char *name = argv [i], *value = argv [++i];
        if      (strcmp (name, "--dir") == 0)         o.dir = value;
        else if (strcmp (name, "--policy") == 0)      o.policy = value;
        else if (strcmp (name, "--endpoint") == 0)    o.endpoint = value;
        else if (strcmp (name, "--bus-key") == 0)     o.bus_key = value;
        else if (strcmp (name, "--agents") == 0)      o.agents = atol (value);
        else if (strcmp (name, "--from") == 0)        o.from = atol (value);
        else if (strcmp (name, "--count") == 0)       o.count = atol (value);
        else if (strcmp (name, "--seconds") == 0)     o.seconds = atof (value);
        else if (strcmp (name, "--timeout") == 0)     o.timeout = atof (value);
        else if (strcmp (name, "--ping") == 0)        o.ping_ms = atoi (value);
        else if (strcmp (name, "--io-threads") == 0)  o.io_threads = atoi (value);
        else if (strcmp (name, "--rate") == 0)        o.rate = atof (value);
        else if (strcmp (name, "--size") == 0)        o.size = strtoul (value, NULL, 10);
        else if (strcmp (name, "--pid") == 0)         o.pid = atoi (value);
        else s_usage ();
    }
    struct sigaction action = { .sa_handler = s_on_signal };
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    signal (SIGPIPE, SIG_IGN);

    if (strcmp (o.mode, "keys") == 0) {
        if (!o.dir || o.agents < 0 || o.agents > FLEET_MAX) {
            s_usage ();
        }
        return s_keys (&o);
    }
    if (strcmp (o.mode, "connect") == 0) {
        if (!o.dir || !o.endpoint || !o.bus_key || o.from < 0 || o.count < 1
        ||  o.from + o.count > FLEET_MAX || o.ping_ms < 0 || o.io_threads < 1
        ||  o.io_threads > 64 || o.timeout <= 0) {
            s_usage ();
        }
        if (o.seconds < 0) {
            o.seconds = 60;
        }
        return s_connect (&o);
    }
    if (strcmp (o.mode, "pair") == 0) {
        if (!o.dir || !o.endpoint || !o.bus_key || o.rate <= 0 || o.rate > 100000
        ||  o.size < BENCH_STAMP_SIZE || o.size > 65000) {
            s_usage ();
        }
        if (o.seconds <= 0) {
            o.seconds = 20;
        }
        return s_pair (&o);
    }
    if (strcmp (o.mode, "cpu") == 0) {
        if (o.pid <= 0) {
            s_usage ();
        }
        if (o.seconds <= 0) {
            o.seconds = 10;
        }
        return s_cpu (&o);
    }
    s_usage ();
    return 2;
}
