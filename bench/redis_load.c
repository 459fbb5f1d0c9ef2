/*  redis_load.c: the same load as load.c, through Redis Streams.

    The durable peer beside NATS: Debian's redis-server with `appendonly
    yes` and `appendfsync always`, so that every write (XADD, and the
    consumer-group state XREADGROUP and XACK change) is fsynced to the
    append-only file before Redis answers anyone: the XADD reply and the
    delivery to a blocked XREADGROUP both leave after that fsync. That is
    the bus's own rule (sync before ACK, log before deliver), which NATS
    2.9 cannot be told to follow. Driven through Debian's hiredis (0.14).

    Per pair K (sender sK, recipient rK), set up by the admin user:
        stream bench:rK (one stream per recipient), consumer group g
    sK XADDs to bench:rK (pipelined: at most --inflight replies
    outstanding, like the bus driver's unacknowledged sends); the XADD
    reply, an entry id, is its ACK. rK reads with XREADGROUP GROUP g rK
    COUNT 1000 (the bus's delivery window) BLOCK 2 and acknowledges with
    XACK every 100 messages or when a read finds nothing new (idle), as the
    NATS driver does; with each XACK it trims what it acknowledged (XTRIM
    MINID ~), as a deployment must, since Redis keeps a stream in memory.

    Each agent is its own ACL user (written by bench/run.sh: user NAME,
    password pw-NAME): sK may only XADD, and only to bench:rK (write-only
    key permission, so it cannot even read the stream it writes to); rK may
    only XREADGROUP, XACK and XTRIM, and only on bench:rK. Before every run
    the driver checks that Redis enforces this (a forbidden XADD, a read by
    a sender, a read of another recipient's stream: each must fail with
    NOPERM) and that the server syncs every write; it refuses to measure a
    server that does not.

    One thread per agent (a blocking hiredis context each), as nats_load.c
    has libnats threads; a sender polls its socket itself so that it can
    keep sending on time (open loop) while replies are outstanding.
*/
#include "bench_util.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#define REDIS_WARMUP        500
#define REDIS_ACK_EVERY     100
#define REDIS_WINDOW        1000
#define REDIS_BLOCK_MS      2
#define REDIS_DRAIN_S       10
#define REDIS_IO_TIMEOUT_S  10
#define REDIS_WARM_BIT      (1ull << 63)
#define REDIS_ID_MAX        48          //  "ms-seq": two u64 in decimal, and a NUL
#define REDIS_ACL_PAIRS     4           //  bench/run.sh names s1..s4, r1..r4

typedef struct load_s load_t;

typedef struct {
    load_t *load;
    int index;                      //  pair number, from 1
    char name [16];
    char stream [32];               //  bench:rK, its own (recipient) or its peer's (sender)
    redisContext *redis;
    //  Sender
    uint64_t sent;
    uint64_t outstanding;           //  XADDs without a reply yet
    atomic_uint_fast64_t acked;     //  XADD replies that were entry ids
    atomic_uint_fast64_t failed;
    //  Recipient
    char (*pending) [REDIS_ID_MAX]; //  ids read, not yet acknowledged
    size_t pending_count;
} agent_t;

struct load_s {
    bench_run_t run;
    const char *host;
    int port;
    agent_t senders [BENCH_PAIRS_MAX];
    agent_t recipients [BENCH_PAIRS_MAX];
    bool warm;                      //  senders: warm-up phase
    uint64_t t_start;
    atomic_int stop;                //  recipients: the run is over
    pthread_mutex_t lock;           //  samples, t_last
    uint64_t t_last;
    atomic_uint_fast64_t warm_seen;
    atomic_uint_fast64_t seen;
    atomic_uint_fast64_t recipient_errors;
};

static redisContext *
s_connect (load_t *self, const char *user)
{
    struct timeval timeout = { REDIS_IO_TIMEOUT_S, 0 };
    redisContext *redis = redisConnectWithTimeout (self->host, self->port, timeout);
    if (!redis || redis->err) {
        fprintf (stderr, "redis_load: %s cannot connect to %s:%d: %s\n", user, self->host,
                 self->port, redis? redis->errstr: "out of memory");
        redisFree (redis);
        return NULL;
    }
    //  Every blocking read is bounded: a server that stops answering ends
    //  the run with an error, not a hang.
    redisSetTimeout (redis, timeout);
    char password [64];
    snprintf (password, sizeof password, "pw-%s", user);
    redisReply *reply = redisCommand (redis, "AUTH %s %s", user, password);
    bool ok = reply && reply->type == REDIS_REPLY_STATUS;
    if (!ok) {
        fprintf (stderr, "redis_load: %s cannot log in: %s\n", user,
                 reply && reply->type == REDIS_REPLY_ERROR? reply->str: redis->errstr);
    }
    freeReplyObject (reply);
    if (!ok) {
        redisFree (redis);
        return NULL;
    }
    return redis;
}

//  ---------------------------------------------------------------------
//  Set-up: the server syncs every write, the streams and groups exist, and
//  the ACLs hold

//  The value of a CONFIG GET, or "" (into out).
static void
s_config (redisContext *redis, const char *name, char *out, size_t size)
{
    out [0] = 0;
    redisReply *reply = redisCommand (redis, "CONFIG GET %s", name);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
    &&  reply->element [1]->type == REDIS_REPLY_STRING) {
        snprintf (out, size, "%s", reply->element [1]->str);
    }
    freeReplyObject (reply);
}

static int
s_setup (load_t *self)
{
    redisContext *admin = s_connect (self, "admin");
    if (!admin) {
        return -1;
    }
    int rc = 0;
    char appendonly [16], appendfsync [16];
    s_config (admin, "appendonly", appendonly, sizeof appendonly);
    s_config (admin, "appendfsync", appendfsync, sizeof appendfsync);
    if (strcmp (appendonly, "yes") != 0 || strcmp (appendfsync, "always") != 0) {
        fprintf (stderr, "redis_load: the server has appendonly=%s appendfsync=%s; the bench "
                 "compares durable systems only: appendonly yes, appendfsync always\n",
                 appendonly, appendfsync);
        rc = -1;
    }
    for (int i = 1; i <= self->run.pairs && rc == 0; i++) {
        char stream [32];
        snprintf (stream, sizeof stream, "bench:r%d", i);
        //  "$": the group starts at the end; MKSTREAM makes the stream.
        redisReply *reply = redisCommand (admin, "XGROUP CREATE %s g $ MKSTREAM", stream);
        if (!reply || reply->type != REDIS_REPLY_STATUS) {
            fprintf (stderr, "redis_load: XGROUP CREATE %s: %s\n", stream,
                     reply && reply->type == REDIS_REPLY_ERROR? reply->str: admin->errstr);
            rc = -1;
        }
        freeReplyObject (reply);
    }
    redisFree (admin);
    return rc;
}

//  Runs one command as `user` that the ACLs must refuse; 0 if Redis did.
static int
s_must_refuse (load_t *self, const char *user, const char *what, int argc, const char **argv)
{
    redisContext *redis = s_connect (self, user);
    if (!redis) {
        return -1;
    }
    redisReply *reply = redisCommandArgv (redis, argc, argv, NULL);
    int rc = 0;
    if (!reply) {
        fprintf (stderr, "redis_load: ACL check (%s): %s\n", what, redis->errstr);
        rc = -1;
    }
    else
    if (reply->type != REDIS_REPLY_ERROR || strncmp (reply->str, "NOPERM", 6) != 0) {
        fprintf (stderr, "redis_load: ACL check failed: %s %s was not refused (%s)\n", user,
                 what, reply->type == REDIS_REPLY_ERROR? reply->str: "it succeeded");
        rc = -1;
    }
    freeReplyObject (reply);
    redisFree (redis);
    return rc;
}

//  The ACLs bench/run.sh writes, checked against the live server: a
//  Redis column measured without them would compare less isolation.
static int
s_acl_check (load_t *self)
{
    const char *xadd_other [] = { "XADD", "bench:r2", "*", "p", "forbidden" };
    const char *xadd_key [] = { "XADD", "other", "*", "p", "forbidden" };
    const char *xrange_own [] = { "XRANGE", "bench:r1", "-", "+" };
    const char *xread_other [] = { "XREADGROUP", "GROUP", "g", "r1", "COUNT", "1",
                                   "STREAMS", "bench:r2", ">" };
    const char *xadd_recipient [] = { "XADD", "bench:r1", "*", "p", "forbidden" };
    const char *keys [] = { "KEYS", "*" };
    int failed = 0;
    failed += s_must_refuse (self, "s1", "XADD to another recipient's stream", 5, xadd_other) != 0;
    failed += s_must_refuse (self, "s1", "XADD to a key no edge names", 5, xadd_key) != 0;
    failed += s_must_refuse (self, "s1", "XRANGE of the stream it writes to", 4, xrange_own) != 0;
    failed += s_must_refuse (self, "s1", "KEYS", 2, keys) != 0;
    failed += s_must_refuse (self, "r1", "XREADGROUP of another recipient's stream", 9,
                             xread_other) != 0;
    failed += s_must_refuse (self, "r1", "XADD to its own stream", 5, xadd_recipient) != 0;
    if (failed) {
        fprintf (stderr, "redis_load: %d ACL check(s) failed: not measuring\n", failed);
        return -1;
    }
    fprintf (stderr, "redis_load: ACLs hold (6 forbidden commands refused with NOPERM)\n");
    return 0;
}

//  ---------------------------------------------------------------------
//  Recipients

//  XACK then XTRIM of everything pending, pipelined before the next read.
static void
s_append_ack (agent_t *recipient, int *replies)
{
    if (recipient->pending_count == 0) {
        return;
    }
    size_t count = recipient->pending_count;
    const char **argv = malloc ((count + 3) * sizeof *argv);
    if (!argv) {
        atomic_fetch_add (&recipient->load->recipient_errors, 1);
        return;
    }
    argv [0] = "XACK";
    argv [1] = recipient->stream;
    argv [2] = "g";
    for (size_t i = 0; i < count; i++) {
        argv [3 + i] = recipient->pending [i];
    }
    redisAppendCommandArgv (recipient->redis, (int) count + 3, argv, NULL);
    //  Entries before the last acknowledged one are all acknowledged (one
    //  consumer, in order): "~" lets Redis drop whole nodes only, cheaply.
    const char *trim [] = { "XTRIM", recipient->stream, "MINID", "~",
                            recipient->pending [count - 1] };
    redisAppendCommandArgv (recipient->redis, 5, trim, NULL);
    *replies += 2;
    free (argv);
    recipient->pending_count = 0;
}

//  One XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]]].
static size_t
s_take_entries (agent_t *recipient, redisReply *reply)
{
    load_t *self = recipient->load;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
    ||  reply->element [0]->type != REDIS_REPLY_ARRAY || reply->element [0]->elements != 2) {
        return 0;
    }
    redisReply *entries = reply->element [0]->element [1];
    size_t taken = 0;
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        redisReply *entry = entries->element [i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
        ||  entry->element [0]->type != REDIS_REPLY_STRING
        ||  entry->element [1]->type != REDIS_REPLY_ARRAY
        ||  entry->element [1]->elements != 2
        ||  entry->element [1]->element [1]->type != REDIS_REPLY_STRING) {
            atomic_fetch_add (&self->recipient_errors, 1);
            continue;
        }
        const uint8_t *payload = (const uint8_t *) entry->element [1]->element [1]->str;
        size_t size = entry->element [1]->element [1]->len;
        uint64_t seq = 0;
        if (size >= BENCH_STAMP_SIZE) {
            memcpy (&seq, payload + 8, 8);
        }
        if (seq & REDIS_WARM_BIT) {
            atomic_fetch_add (&self->warm_seen, 1);
        }
        else {
            uint64_t latency = bench_latency (payload, size);
            pthread_mutex_lock (&self->lock);
            bench_sample (&self->run, latency);
            self->t_last = bench_now_ns ();
            uint64_t seen = atomic_fetch_add (&self->seen, 1) + 1;
            uint64_t tenth = self->run.count / 10;
            if (tenth && seen % tenth == 0 && seen < self->run.count) {
                bench_rss_sample (&self->run);
            }
            pthread_mutex_unlock (&self->lock);
        }
        snprintf (recipient->pending [recipient->pending_count++], REDIS_ID_MAX, "%s",
                  entry->element [0]->str);
        taken++;
    }
    return taken;
}

static void *
s_recipient_thread (void *arg)
{
    agent_t *recipient = arg;
    load_t *self = recipient->load;
    char count [16], block [16];
    snprintf (count, sizeof count, "%d", REDIS_WINDOW);
    snprintf (block, sizeof block, "%d", REDIS_BLOCK_MS);
    const char *read [] = { "XREADGROUP", "GROUP", "g", recipient->name, "COUNT", count,
                            "BLOCK", block, "STREAMS", recipient->stream, ">" };
    bool idle = false;
    while (true) {
        bool stopping = atomic_load (&self->stop);
        int replies = 0;
        if (recipient->pending_count >= REDIS_ACK_EVERY || idle || stopping) {
            s_append_ack (recipient, &replies);
        }
        if (!stopping) {
            redisAppendCommandArgv (recipient->redis, 11, read, NULL);
            replies++;
        }
        idle = false;
        for (int i = 0; i < replies; i++) {
            redisReply *reply = NULL;
            if (redisGetReply (recipient->redis, (void **) &reply) != REDIS_OK || !reply) {
                fprintf (stderr, "redis_load: %s: %s\n", recipient->name,
                         recipient->redis->errstr);
                atomic_fetch_add (&self->recipient_errors, 1);
                return NULL;
            }
            if (reply->type == REDIS_REPLY_ERROR) {
                fprintf (stderr, "redis_load: %s: %s\n", recipient->name, reply->str);
                atomic_fetch_add (&self->recipient_errors, 1);
            }
            else
            if (reply->type == REDIS_REPLY_NIL) {
                idle = true;        //  BLOCK ran out: nothing new for 2 ms
            }
            else
            if (reply->type == REDIS_REPLY_ARRAY) {
                s_take_entries (recipient, reply);
            }
            freeReplyObject (reply);
        }
        if (stopping) {
            return NULL;
        }
    }
}

//  ---------------------------------------------------------------------
//  Senders

static void
s_append_xadd (agent_t *sender, uint8_t *payload, size_t size, bool warm)
{
    bench_stamp (payload, sender->sent | (warm? REDIS_WARM_BIT: 0));
    const char *argv [] = { "XADD", sender->stream, "*", "p", (const char *) payload };
    size_t lengths [] = { 4, strlen (sender->stream), 1, 1, size };
    redisAppendCommandArgv (sender->redis, 5, argv, lengths);
    sender->sent++;
    sender->outstanding++;
}

//  Writes what is appended, then waits until `until` (ns) at most for
//  replies and reads every one that came. -1 when the connection failed.
static int
s_exchange (agent_t *sender, uint64_t until)
{
    redisContext *redis = sender->redis;
    int done = 0;
    while (!done) {
        if (redisBufferWrite (redis, &done) != REDIS_OK) {
            return -1;
        }
    }
    uint64_t now = bench_now_ns ();
    uint64_t wait = until > now? until - now: 0;
    struct timespec timeout = { (time_t) (wait / 1000000000u), (long) (wait % 1000000000u) };
    struct pollfd item = { redis->fd, POLLIN, 0 };
    int ready = ppoll (&item, 1, &timeout, NULL);
    if (ready < 0) {
        return 0;                   //  EINTR: the caller loops
    }
    if (ready > 0 && redisBufferRead (redis) != REDIS_OK) {
        return -1;
    }
    void *aux = NULL;
    while (redisGetReplyFromReader (redis, &aux) == REDIS_OK && aux) {
        redisReply *reply = aux;
        if (reply->type == REDIS_REPLY_STRING) {
            atomic_fetch_add (&sender->acked, 1);
        }
        else {
            if (atomic_fetch_add (&sender->failed, 1) == 0) {
                fprintf (stderr, "redis_load: %s: XADD: %s\n", sender->name,
                         reply->type == REDIS_REPLY_ERROR? reply->str: "unexpected reply");
            }
        }
        sender->outstanding--;
        freeReplyObject (reply);
        aux = NULL;
    }
    return redis->err? -1: 0;
}

static void *
s_sender_thread (void *arg)
{
    agent_t *sender = arg;
    load_t *self = sender->load;
    bench_run_t *run = &self->run;
    uint8_t *payload = calloc (1, run->size);
    if (!payload) {
        atomic_fetch_add (&sender->failed, 1);
        return NULL;
    }
    memset (payload, 'x', run->size);
    bool tput = self->warm || strcmp (run->mode, "tput") == 0;
    uint64_t start = self->warm? bench_now_ns (): self->t_start;
    uint64_t end = start + (uint64_t) (run->seconds * 1e9);
    uint64_t quota = self->warm? REDIS_WARMUP
                   : tput? (run->count + (uint64_t) run->pairs - 1) / (uint64_t) run->pairs
                   : run->count / (uint64_t) run->pairs;
    //  Open loop: this sender's share of the rate, offset so that the
    //  pairs take turns as in load.c.
    double interval = tput? 0: 1e9 * run->pairs / run->rate;
    uint64_t offset = tput? 0: (uint64_t) (1e9 / run->rate * (sender->index - 1));
    uint64_t k = 0;
    while (true) {
        uint64_t now = bench_now_ns ();
        bool open = k < quota && (self->warm || now < end);
        uint64_t next = now + 100000000u;
        if (open && tput) {
            while (k < quota && sender->outstanding < run->inflight) {
                s_append_xadd (sender, payload, run->size, self->warm);
                k++;
            }
        }
        else
        if (open) {
            uint64_t due = start + offset + (uint64_t) ((double) k * interval);
            if (due <= now && sender->outstanding < run->inflight) {
                s_append_xadd (sender, payload, run->size, false);
                k++;
                due = start + offset + (uint64_t) ((double) k * interval);
            }
            //  A full window waits for a reply, not for the next due time.
            next = sender->outstanding < run->inflight? due: now + 100000000u;
        }
        else
        if (sender->outstanding == 0) {
            break;
        }
        else
        if (now > end + (uint64_t) REDIS_DRAIN_S * 1000000000u) {
            fprintf (stderr, "redis_load: %s: %llu XADD replies still missing %d s after the run\n",
                     sender->name, (unsigned long long) sender->outstanding, REDIS_DRAIN_S);
            atomic_fetch_add (&sender->failed, sender->outstanding);
            break;
        }
        if (s_exchange (sender, next) != 0) {
            fprintf (stderr, "redis_load: %s: %s\n", sender->name, sender->redis->errstr);
            atomic_fetch_add (&sender->failed, 1);
            break;
        }
    }
    free (payload);
    return NULL;
}

static void
s_run_senders (load_t *self)
{
    pthread_t threads [BENCH_PAIRS_MAX];
    for (int i = 0; i < self->run.pairs; i++) {
        self->senders [i].outstanding = 0;
        pthread_create (&threads [i], NULL, s_sender_thread, &self->senders [i]);
    }
    for (int i = 0; i < self->run.pairs; i++) {
        pthread_join (threads [i], NULL);
    }
}

static uint64_t
s_acked (load_t *self)
{
    uint64_t acked = 0;
    for (int i = 0; i < self->run.pairs; i++) {
        acked += atomic_load (&self->senders [i].acked);
    }
    return acked;
}

//  Waits (bounded) until `counter` reaches `target`.
static void
s_wait_seen (atomic_uint_fast64_t *counter, uint64_t target, int seconds)
{
    uint64_t end = bench_now_ns () + (uint64_t) seconds * 1000000000u;
    while (atomic_load (counter) < target && bench_now_ns () < end) {
        bench_sleep_until (bench_now_ns () + 1000000);
    }
}

//  ---------------------------------------------------------------------

static void
s_usage (const char *prog)
{
    bench_usage_exit (prog, "--port PORT [--host 127.0.0.1]");
}

int
main (int argc, char **argv)
{
    load_t *self = calloc (1, sizeof *self);
    if (!self) {
        return 1;
    }
    self->host = "127.0.0.1";
    bench_run_t *run = &self->run;
    for (int i = 1; i < argc; i++) {
        if (bench_option (run, argc, argv, &i)) {
            continue;
        }
        if (i + 1 < argc && strcmp (argv [i], "--port") == 0) {
            self->port = atoi (argv [++i]);
        }
        else
        if (i + 1 < argc && strcmp (argv [i], "--host") == 0) {
            self->host = argv [++i];
        }
        else {
            s_usage (argv [0]);
        }
    }
    if (!bench_options_valid (run) || self->port <= 0 || self->port > 65535
    ||  run->pairs > REDIS_ACL_PAIRS) {
        s_usage (argv [0]);
    }
    pthread_mutex_init (&self->lock, NULL);
    int rc = s_setup (self) == 0 && s_acl_check (self) == 0? 0: -1;
    pthread_t threads [BENCH_PAIRS_MAX];
    int started = 0;
    for (int i = 0; i < run->pairs && rc == 0; i++) {
        agent_t *recipient = &self->recipients [i];
        recipient->load = self;
        recipient->index = i + 1;
        snprintf (recipient->name, sizeof recipient->name, "r%d", i + 1);
        snprintf (recipient->stream, sizeof recipient->stream, "bench:r%d", i + 1);
        //  At most one batch below the ack threshold, plus one full read.
        recipient->pending = calloc (REDIS_ACK_EVERY + REDIS_WINDOW, REDIS_ID_MAX);
        agent_t *sender = &self->senders [i];
        sender->load = self;
        sender->index = i + 1;
        snprintf (sender->name, sizeof sender->name, "s%d", i + 1);
        snprintf (sender->stream, sizeof sender->stream, "bench:r%d", i + 1);
        if (!recipient->pending
        ||  !(recipient->redis = s_connect (self, recipient->name))
        ||  !(sender->redis = s_connect (self, sender->name))) {
            rc = -1;
        }
    }
    for (int i = 0; i < run->pairs && rc == 0; i++) {
        pthread_create (&threads [i], NULL, s_recipient_thread, &self->recipients [i]);
        started++;
    }
    if (rc == 0) {
        //  Warm-up, not measured.
        self->warm = true;
        s_run_senders (self);
        s_wait_seen (&self->warm_seen, s_acked (self), 10);
        for (int i = 0; i < run->pairs; i++) {
            self->senders [i].sent = 0;
            atomic_store (&self->senders [i].acked, 0);
        }
        self->warm = false;
        self->t_start = bench_now_ns ();
        double cpu_start = 0;
        double self_cpu_start = bench_self_cpu ();
        if (run->server_pid) {
            cpu_start = bench_proc_cpu (run->server_pid);
            bench_rss_sample (run);
        }
        s_run_senders (self);
        uint64_t expected = s_acked (self);
        s_wait_seen (&self->seen, expected, REDIS_DRAIN_S);
        pthread_mutex_lock (&self->lock);
        for (int i = 0; i < run->pairs; i++) {
            run->sent += self->senders [i].sent;
            run->errors += atomic_load (&self->senders [i].failed);
        }
        run->acked = expected;
        run->driver_cpu = bench_self_cpu () - self_cpu_start;
        run->delivered = atomic_load (&self->seen);
        run->elapsed = self->t_last > self->t_start? (double) (self->t_last - self->t_start) / 1e9: 0;
        if (run->server_pid) {
            run->server_cpu = bench_proc_cpu (run->server_pid) - cpu_start;
            bench_rss_sample (run);
            run->hwm_kb = bench_proc_kb (run->server_pid, "VmHWM:");
        }
        if (run->delivered < run->acked) {
            fprintf (stderr, "redis_load: %llu messages acknowledged but not delivered\n",
                     (unsigned long long) (run->acked - run->delivered));
            run->errors += run->acked - run->delivered;
        }
        pthread_mutex_unlock (&self->lock);
    }
    //  Recipients acknowledge what they hold, then stop.
    atomic_store (&self->stop, 1);
    for (int i = 0; i < started; i++) {
        pthread_join (threads [i], NULL);
    }
    if (rc == 0) {
        run->errors += atomic_load (&self->recipient_errors);
        bench_report (run);
        rc = run->errors? 1: 0;
    }
    for (int i = 0; i < run->pairs; i++) {
        redisFree (self->recipients [i].redis);
        redisFree (self->senders [i].redis);
        free (self->recipients [i].pending);
    }
    free (run->samples);
    free (self);
    return rc? 1: 0;
}
