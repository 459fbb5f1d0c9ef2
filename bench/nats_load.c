/*  nats_load.c: the same load as load.c, through NATS JetStream.

    What a user would pick instead of the bus: nats-server with a user per
    agent allowed only its own subjects, and JetStream file storage so that
    a message is stored before it is acknowledged and delivered. Driven
    through Debian's libnats (3.4), which has the JetStream API.

    Per pair K (sender sK, recipient rK), set up by an admin user:
        stream BENCH, subjects bench.>, file storage
        consumer cK: durable push consumer, filter bench.rK, deliver subject
        dlv.rK, ack policy "all" (cumulative, like the bus's DELIVERY-ACK),
        at most 1000 unacknowledged deliveries (the bus's window)
    sK publishes to bench.rK with js_PublishAsync (at most --inflight
    unacknowledged publishes, like the bus driver) and reads its publish
    ACKs on its own inbox prefix; rK reads dlv.rK and acknowledges every
    100 messages or when idle.

    nats-server 2.9 acknowledges a JetStream publish once the message is
    written to the store file, not fsynced (it syncs every 2 minutes and
    2.9 has no option to sync each write). The bus fsyncs before it ACKs.
    The report says so next to every NATS figure.

    Users and passwords follow a convention shared with bench/run.sh, which
    writes the server configuration: user NAME, password pw-NAME.
*/
#include "bench_util.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#define NATS_WARMUP         500
#define NATS_ACK_EVERY      100
#define NATS_WINDOW         1000
#define NATS_DRAIN_S        10
#define NATS_WARM_BIT       (1ull << 63)

typedef struct load_s load_t;

typedef struct {
    load_t *load;
    int index;                      //  pair number, from 1
    natsConnection *conn;
    jsCtx *js;
    natsSubscription *sub;
    char subject [32];              //  sender: bench.rK
    uint64_t sent;                  //  sender thread only
    atomic_uint_fast64_t acked;     //  publish ACKs (libnats thread)
    atomic_uint_fast64_t failed;    //  publish errors (libnats thread)
    pthread_mutex_t lock;           //  recipient: reply and unacked
    char reply [256];               //  last delivery's ack subject
    uint64_t unacked;
    uint64_t last_ns;               //  time of the last delivery
} agent_t;

struct load_s {
    bench_run_t run;
    const char *url;
    agent_t senders [BENCH_PAIRS_MAX];
    agent_t recipients [BENCH_PAIRS_MAX];
    bool warm;                      //  senders: warm-up phase
    uint64_t t_start;
    pthread_mutex_t lock;           //  samples, t_last
    uint64_t t_last;
    atomic_uint_fast64_t warm_seen;
    atomic_uint_fast64_t seen;
    atomic_uint_fast64_t ack_errors;
};

static natsStatus
s_connect (load_t *self, natsConnection **conn, const char *user, const char *inbox)
{
    natsOptions *opts = NULL;
    char password [64];
    snprintf (password, sizeof password, "pw-%s", user);
    natsStatus s = natsOptions_Create (&opts);
    if (s == NATS_OK) {
        s = natsOptions_SetURL (opts, self->url);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetUserInfo (opts, user, password);
    }
    if (s == NATS_OK && inbox) {
        s = natsOptions_SetCustomInboxPrefix (opts, inbox);
    }
    if (s == NATS_OK) {
        //  No reconnects: a lost connection must show as a failed run.
        s = natsOptions_SetAllowReconnect (opts, false);
    }
    if (s == NATS_OK) {
        s = natsConnection_Connect (conn, opts);
    }
    natsOptions_Destroy (opts);
    if (s != NATS_OK) {
        fprintf (stderr, "nats_load: %s cannot connect to %s: %s\n", user, self->url,
                 natsStatus_GetText (s));
    }
    return s;
}

//  ---------------------------------------------------------------------
//  Set-up: the stream and one consumer per pair, as the admin user

static int
s_setup (load_t *self)
{
    natsConnection *conn = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    if (s_connect (self, &conn, "admin", NULL) != NATS_OK) {
        return -1;
    }
    natsStatus s = natsConnection_JetStream (&js, conn, NULL);
    if (s == NATS_OK) {
        const char *subjects [] = { "bench.>" };
        jsStreamConfig config;
        jsStreamConfig_Init (&config);
        config.Name = "BENCH";
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Storage = js_FileStorage;
        jsStreamInfo *info = NULL;
        s = js_AddStream (&info, js, &config, NULL, &jerr);
        jsStreamInfo_Destroy (info);
    }
    for (int i = 1; i <= self->run.pairs && s == NATS_OK; i++) {
        char durable [16], filter [32], deliver [32];
        snprintf (durable, sizeof durable, "c%d", i);
        snprintf (filter, sizeof filter, "bench.r%d", i);
        snprintf (deliver, sizeof deliver, "dlv.r%d", i);
        jsConsumerConfig config;
        jsConsumerConfig_Init (&config);
        config.Durable = durable;
        config.FilterSubject = filter;
        config.DeliverSubject = deliver;
        config.DeliverPolicy = js_DeliverAll;
        config.AckPolicy = js_AckAll;
        config.MaxAckPending = NATS_WINDOW;
        jsConsumerInfo *info = NULL;
        s = js_AddConsumer (&info, js, "BENCH", &config, NULL, &jerr);
        jsConsumerInfo_Destroy (info);
    }
    if (s != NATS_OK) {
        fprintf (stderr, "nats_load: JetStream set-up failed: %s (JetStream error %d)\n",
                 natsStatus_GetText (s), (int) jerr);
    }
    jsCtx_Destroy (js);
    natsConnection_Destroy (conn);
    return s == NATS_OK? 0: -1;
}

//  ---------------------------------------------------------------------
//  Recipients (callbacks run on libnats's delivery threads)

static void
s_ack (agent_t *recipient)
{
    //  Ack policy "all": acking one delivery acks every one before it.
    if (recipient->unacked && recipient->reply [0]) {
        if (natsConnection_Publish (recipient->conn, recipient->reply, "+ACK", 4) != NATS_OK) {
            atomic_fetch_add (&recipient->load->ack_errors, 1);
        }
        recipient->unacked = 0;
    }
}

static void
s_on_deliver (natsConnection *conn, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) conn;
    (void) sub;
    agent_t *recipient = closure;
    load_t *self = recipient->load;
    const uint8_t *payload = (const uint8_t *) natsMsg_GetData (msg);
    size_t size = (size_t) natsMsg_GetDataLength (msg);
    uint64_t seq = 0;
    if (size >= BENCH_STAMP_SIZE) {
        memcpy (&seq, payload + 8, 8);
    }
    if (seq & NATS_WARM_BIT) {
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
    pthread_mutex_lock (&recipient->lock);
    const char *reply = natsMsg_GetReply (msg);
    snprintf (recipient->reply, sizeof recipient->reply, "%s", reply? reply: "");
    recipient->unacked++;
    recipient->last_ns = bench_now_ns ();
    if (recipient->unacked >= NATS_ACK_EVERY) {
        s_ack (recipient);
    }
    pthread_mutex_unlock (&recipient->lock);
    natsMsg_Destroy (msg);
}

//  Acks what each idle recipient has processed (called every few ms).
static void
s_ack_idle (load_t *self)
{
    uint64_t now = bench_now_ns ();
    for (int i = 0; i < self->run.pairs; i++) {
        agent_t *recipient = &self->recipients [i];
        pthread_mutex_lock (&recipient->lock);
        if (now - recipient->last_ns > 2000000) {
            s_ack (recipient);
        }
        pthread_mutex_unlock (&recipient->lock);
    }
}

//  ---------------------------------------------------------------------
//  Senders (one thread each: js_PublishAsync blocks at MaxPending)

static void
s_on_puback (jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void) js;
    agent_t *sender = closure;
    if (pa && !pae) {
        atomic_fetch_add (&sender->acked, 1);
    }
    else {
        atomic_fetch_add (&sender->failed, 1);
    }
    natsMsg_Destroy (msg);
}

static int
s_publish (agent_t *sender, uint8_t *payload, size_t size, bool warm)
{
    bench_stamp (payload, sender->sent | (warm? NATS_WARM_BIT: 0));
    //  At MaxPending, js_PublishAsync waits (StallWait) and may time out;
    //  try again while the run lasts rather than drop the message.
    for (int attempt = 0; attempt < 50; attempt++) {
        natsStatus s = js_PublishAsync (sender->js, sender->subject, payload, (int) size, NULL);
        if (s == NATS_OK) {
            sender->sent++;
            return 0;
        }
        if (s != NATS_TIMEOUT) {
            fprintf (stderr, "nats_load: publish: %s\n", natsStatus_GetText (s));
            return -1;
        }
    }
    return -1;
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
    uint64_t start = self->warm? bench_now_ns (): self->t_start;
    if (self->warm) {
        for (uint64_t i = 0; i < NATS_WARMUP; i++) {
            if (s_publish (sender, payload, run->size, true) != 0) {
                atomic_fetch_add (&sender->failed, 1);
            }
        }
    }
    else
    if (strcmp (run->mode, "tput") == 0) {
        uint64_t quota = (run->count + (uint64_t) run->pairs - 1) / (uint64_t) run->pairs;
        uint64_t end = start + (uint64_t) (run->seconds * 1e9);
        while (sender->sent < quota && bench_now_ns () < end) {
            if (s_publish (sender, payload, run->size, false) != 0) {
                atomic_fetch_add (&sender->failed, 1);
                break;
            }
        }
    }
    else {
        //  Open loop: this sender's share of the rate, offset so that the
        //  pairs take turns as in load.c.
        double interval = 1e9 * run->pairs / run->rate;
        uint64_t share = run->count / (uint64_t) run->pairs;
        uint64_t offset = (uint64_t) (1e9 / run->rate * (sender->index - 1));
        uint64_t end = start + (uint64_t) (run->seconds * 1e9);
        for (uint64_t k = 0; k < share && bench_now_ns () < end; k++) {
            bench_sleep_until (start + offset + (uint64_t) ((double) k * interval));
            if (s_publish (sender, payload, run->size, false) != 0) {
                atomic_fetch_add (&sender->failed, 1);
            }
        }
    }
    jsPubOptions options;
    jsPubOptions_Init (&options);
    options.MaxWait = NATS_DRAIN_S * 1000;
    if (js_PublishAsyncComplete (sender->js, &options) != NATS_OK) {
        fprintf (stderr, "nats_load: publish ACKs still missing %d s after the run\n", NATS_DRAIN_S);
        atomic_fetch_add (&sender->failed, 1);
    }
    free (payload);
    return NULL;
}

static void
s_run_senders (load_t *self)
{
    pthread_t threads [BENCH_PAIRS_MAX];
    for (int i = 0; i < self->run.pairs; i++) {
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

//  Waits (bounded) until `counter` reaches `target`, acking idle recipients.
static void
s_wait_seen (load_t *self, atomic_uint_fast64_t *counter, uint64_t target, int seconds)
{
    uint64_t end = bench_now_ns () + (uint64_t) seconds * 1000000000u;
    while (atomic_load (counter) < target && bench_now_ns () < end) {
        bench_sleep_until (bench_now_ns () + 1000000);
        s_ack_idle (self);
    }
}

//  ---------------------------------------------------------------------

int
main (int argc, char **argv)
{
    load_t *self = calloc (1, sizeof *self);
    if (!self) {
        return 1;
    }
    bench_run_t *run = &self->run;
    for (int i = 1; i < argc; i++) {
        if (bench_option (run, argc, argv, &i)) {
            continue;
        }
        if (i + 1 < argc && strcmp (argv [i], "--url") == 0) {
            self->url = argv [++i];
        }
        else {
            bench_usage_exit (argv [0], "--url nats://127.0.0.1:PORT");
        }
    }
    if (!bench_options_valid (run) || !self->url) {
        bench_usage_exit (argv [0], "--url nats://127.0.0.1:PORT");
    }
    pthread_mutex_init (&self->lock, NULL);
    int rc = s_setup (self);
    for (int i = 0; i < run->pairs && rc == 0; i++) {
        char name [16], inbox [32], deliver [32];
        agent_t *recipient = &self->recipients [i];
        recipient->load = self;
        recipient->index = i + 1;
        pthread_mutex_init (&recipient->lock, NULL);
        snprintf (name, sizeof name, "r%d", i + 1);
        snprintf (deliver, sizeof deliver, "dlv.r%d", i + 1);
        if (s_connect (self, &recipient->conn, name, NULL) != NATS_OK
        ||  natsConnection_Subscribe (&recipient->sub, recipient->conn, deliver,
                                      s_on_deliver, recipient) != NATS_OK
        ||  natsSubscription_SetPendingLimits (recipient->sub, -1, -1) != NATS_OK) {
            rc = -1;
            break;
        }
        agent_t *sender = &self->senders [i];
        sender->load = self;
        sender->index = i + 1;
        snprintf (name, sizeof name, "s%d", i + 1);
        snprintf (inbox, sizeof inbox, "_INBOX.s%d", i + 1);
        snprintf (sender->subject, sizeof sender->subject, "bench.r%d", i + 1);
        jsOptions options;
        jsOptions_Init (&options);
        options.PublishAsync.MaxPending = run->inflight;
        options.PublishAsync.AckHandler = s_on_puback;
        options.PublishAsync.AckHandlerClosure = sender;
        if (s_connect (self, &sender->conn, name, inbox) != NATS_OK
        ||  natsConnection_JetStream (&sender->js, sender->conn, &options) != NATS_OK) {
            rc = -1;
        }
    }
    if (rc == 0) {
        //  Warm-up, not measured.
        self->warm = true;
        s_run_senders (self);
        s_wait_seen (self, &self->warm_seen, s_acked (self), 10);
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
        s_wait_seen (self, &self->seen, expected, NATS_DRAIN_S);
        pthread_mutex_lock (&self->lock);
        for (int i = 0; i < run->pairs; i++) {
            run->sent += self->senders [i].sent;
            run->errors += atomic_load (&self->senders [i].failed);
        }
        run->acked = expected;
        run->driver_cpu = bench_self_cpu () - self_cpu_start;
        run->delivered = atomic_load (&self->seen);
        run->errors += atomic_load (&self->ack_errors);
        run->elapsed = self->t_last > self->t_start? (double) (self->t_last - self->t_start) / 1e9: 0;
        if (run->server_pid) {
            run->server_cpu = bench_proc_cpu (run->server_pid) - cpu_start;
            bench_rss_sample (run);
            run->hwm_kb = bench_proc_kb (run->server_pid, "VmHWM:");
        }
        if (run->delivered < run->acked) {
            fprintf (stderr, "nats_load: %llu messages acknowledged but not delivered\n",
                     (unsigned long long) (run->acked - run->delivered));
            run->errors += run->acked - run->delivered;
        }
        pthread_mutex_unlock (&self->lock);
        //  Stop deliveries before the report reads the samples.
        for (int i = 0; i < run->pairs; i++) {
            if (self->recipients [i].sub) {
                natsSubscription_Unsubscribe (self->recipients [i].sub);
            }
        }
        pthread_mutex_lock (&self->lock);
        bench_report (run);
        pthread_mutex_unlock (&self->lock);
        rc = run->errors? 1: 0;
    }
    for (int i = 0; i < run->pairs; i++) {
        natsSubscription_Destroy (self->recipients [i].sub);
        natsConnection_Destroy (self->recipients [i].conn);
        jsCtx_Destroy (self->senders [i].js);
        natsConnection_Destroy (self->senders [i].conn);
    }
    nats_Close ();
    free (run->samples);
    free (self);
    return rc;
}
