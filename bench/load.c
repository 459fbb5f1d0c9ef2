/*  load.c: the load driver for the bus and for the baseline broker.

    N senders s1..sN each send to their own recipient r1..rN, through either
    the real bus (`--system bulkhead`, with the C client library an agent
    links, so the figures include what an agent pays) or the baseline broker
    (`--system baseline`, raw DEALER sockets). The same loops drive both, so
    a ratio between the two is a ratio between the brokers.

    Two threads: one owns every sender, one every recipient. On a 2-core
    machine shared with the broker, more threads would only measure the
    scheduler; one poll loop per side keeps the driver's cost small and the
    same for both systems.

    tput: closed loop. Each sender keeps at most --inflight sends without
          an ACK, all senders together at most LOAD_LEAD sends ahead of
          the deliveries, and each stops at its share of --count or after
          --seconds. (An ACK says "stored": without the second bound a bus
          that stores faster than its recipients read fills their
          mailboxes, and its BACKLOG answers would be counted as errors.)
          Throughput = deliveries / (first send .. last delivery).
    lat:  open loop at --rate msgs/s over all pairs for --seconds; latency
          is send (just before post) to delivery at the recipient.

    A short closed-loop warm-up (connections up, pages touched, LMDB map
    grown) runs first and is not measured. Every wait is bounded in time.
*/
#include "bench_util.h"
#include "bus_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <zmq.h>

#define LOAD_WARMUP         500             //  warm-up messages per pair
#define LOAD_ACK_EVERY      100             //  recipients ack this often
#define LOAD_POLL_MS        2
#define LOAD_DRAIN_S        10              //  after the run: wait for stragglers
#define LOAD_LEAD           4000            //  tput: sends at most this ahead of deliveries
#define LOAD_WARM_BIT       (1ull << 63)    //  sequence flag: warm-up message
#define LOAD_PREFIX         32              //  room before the payload in frame

typedef struct {
    char name [16];
    char peer [16];                 //  a sender's recipient
    bus_client_t *client;           //  bulkhead
    void *ctx;                      //  baseline
    void *socket;
    uint64_t sent;
    uint64_t answered;              //  ACKs and refusals
    uint64_t acked;                 //  ACKs that said delivered or queued
    uint64_t unacked;               //  recipient: deliveries not yet acked
    uint64_t next;                  //  recipient: the measured stamp due next
    uint64_t disorder;              //  recipient: deliveries repeated or out of order
} agent_t;

typedef struct {
    bench_run_t run;
    bool bus;                       //  bulkhead, else baseline
    const char *endpoint;
    const char *server_key;         //  bulkhead: bus.pub file; baseline: Z85
    const char *keys;               //  bulkhead: directory of agent keys
    agent_t senders [BENCH_PAIRS_MAX];
    agent_t recipients [BENCH_PAIRS_MAX];
    uint8_t frame [70000];          //  sender's outgoing frame (sender thread)
    atomic_int phase;               //  0 warm-up, 1 measuring, 2 senders done
    atomic_uint_fast64_t warm_seen;
    atomic_uint_fast64_t seen;      //  measured deliveries
    atomic_uint_fast64_t expected;  //  measured ACKs, set when senders are done
    uint64_t ack_errors;            //  recipient thread's own count
    uint64_t t_start;
    uint64_t t_last;                //  last measured delivery
    double cpu_start;
    double self_cpu_start;
} load_t;

//  ---------------------------------------------------------------------
//  One agent's connection

static int
s_connect (load_t *self, agent_t *agent, const char *name)
{
    snprintf (agent->name, sizeof agent->name, "%s", name);
    if (self->bus) {
        char key_file [4096];
        snprintf (key_file, sizeof key_file, "%s/%s.key", self->keys, name);
        bus_client_options_t options = {
            .endpoint = self->endpoint, .bus_key = self->server_key,
            .key_file = key_file, .timeout_ms = 10000
        };
        bus_error_t err;
        if (bus_client_connect (&agent->client, &options, &err) != 0) {
            fprintf (stderr, "load: %s cannot connect: %s: %s\n", name, bus_errname (err.code), err.text);
            return -1;
        }
        agent->socket = bus_client_socket (agent->client);
        return 0;
    }
    //  Baseline: the routing id is the name, the broker forwards by it.
    char public_key [41], secret_key [41];
    zmq_curve_keypair (public_key, secret_key);
    agent->ctx = zmq_ctx_new ();
    agent->socket = zmq_socket (agent->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt (agent->socket, ZMQ_ROUTING_ID, name, strlen (name));
    zmq_setsockopt (agent->socket, ZMQ_CURVE_SERVERKEY, self->server_key, 40);
    zmq_setsockopt (agent->socket, ZMQ_CURVE_PUBLICKEY, public_key, 40);
    zmq_setsockopt (agent->socket, ZMQ_CURVE_SECRETKEY, secret_key, 40);
    zmq_setsockopt (agent->socket, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect (agent->socket, self->endpoint) != 0) {
        fprintf (stderr, "load: %s cannot connect to %s\n", name, self->endpoint);
        return -1;
    }
    //  HELLO, echoed once the connection is up and known to the broker.
    uint8_t hello = 0;
    zmq_send (agent->socket, &hello, 1, 0);
    zmq_pollitem_t item = { agent->socket, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll (&item, 1, 10000) != 1 || zmq_recv (agent->socket, &hello, 1, 0) != 1) {
        fprintf (stderr, "load: %s: no answer from the baseline broker\n", name);
        return -1;
    }
    return 0;
}

static void
s_disconnect (agent_t *agent)
{
    if (agent->client) {
        bus_client_destroy (&agent->client);
    }
    if (agent->ctx) {
        zmq_close (agent->socket);
        zmq_ctx_term (agent->ctx);
        agent->ctx = NULL;
    }
}

//  ---------------------------------------------------------------------
//  Sender side

static int
s_post (load_t *self, agent_t *sender, bool warm)
{
    uint64_t seq = sender->sent | (warm? LOAD_WARM_BIT: 0);
    uint8_t *payload = self->frame + LOAD_PREFIX;
    bench_stamp (payload, seq);
    if (self->bus) {
        char id [32];
        snprintf (id, sizeof id, "%c%llu", warm? 'w': 'm', (unsigned long long) sender->sent);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.message_id = id;
        send.recipient = sender->peer;
        send.intent = "message";
        send.content_type = "application/octet-stream";
        send.has_payload = true;
        send.payload.data = payload;
        send.payload.len = self->run.size;
        bus_error_t err;
        if (bus_client_post (sender->client, &send, &err) != 0) {
            return -1;
        }
    }
    else {
        //  [name length][name] right before the payload: one frame, one copy.
        size_t len = strlen (sender->peer);
        uint8_t *start = payload - 1 - len;
        start [0] = (uint8_t) len;
        memcpy (start + 1, sender->peer, len);
        if (zmq_send (sender->socket, start, 1 + len + self->run.size, 0) < 0) {
            return -1;
        }
    }
    sender->sent++;
    return 0;
}

//  Reads every ACK waiting on a sender's socket.
static void
s_drain_sender (load_t *self, agent_t *sender)
{
    if (self->bus) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        while (bus_client_recv (sender->client, &frame, 0, &err) == 0) {
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
                Bulkhead__V1__Verdict verdict = frame->ack->verdict;
                sender->answered++;
                if (verdict == BULKHEAD__V1__VERDICT__VERDICT_DELIVERED
                ||  verdict == BULKHEAD__V1__VERDICT__VERDICT_QUEUED) {
                    sender->acked++;
                }
                else {
                    fprintf (stderr, "load: %s refused: %s %s\n", sender->name,
                             frame->ack->code, frame->ack->reason);
                }
            }
            else
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
                sender->answered++;
                fprintf (stderr, "load: %s: ERROR %s %s\n", sender->name,
                         frame->error->code, frame->error->reason);
            }
            bus_client_free (&frame);
        }
        return;
    }
    uint8_t ack [16];
    while (zmq_recv (sender->socket, ack, sizeof ack, ZMQ_DONTWAIT) >= 0) {
        sender->answered++;
        sender->acked += ack [0] == 1;
    }
}

//  Waits up to timeout_ms for ACKs on every sender and reads them.
static void
s_poll_senders (load_t *self, int timeout_ms)
{
    zmq_pollitem_t items [BENCH_PAIRS_MAX];
    int pairs = self->run.pairs;
    for (int i = 0; i < pairs; i++) {
        items [i] = (zmq_pollitem_t) { self->senders [i].socket, 0, ZMQ_POLLIN, 0 };
    }
    if (zmq_poll (items, pairs, timeout_ms) > 0) {
        for (int i = 0; i < pairs; i++) {
            if (items [i].revents & ZMQ_POLLIN) {
                s_drain_sender (self, &self->senders [i]);
            }
        }
    }
}

static void
s_reset_senders (load_t *self)
{
    for (int i = 0; i < self->run.pairs; i++) {
        agent_t *sender = &self->senders [i];
        sender->sent = sender->answered = sender->acked = 0;
    }
}

static bool
s_all_answered (load_t *self)
{
    for (int i = 0; i < self->run.pairs; i++) {
        if (self->senders [i].answered < self->senders [i].sent) {
            return false;
        }
    }
    return true;
}

//  Closed loop: each sender sends `quota` messages, at most `inflight`
//  unanswered, until done or until `deadline`; then waits for the answers.
static void
s_closed_loop (load_t *self, uint64_t quota, bool warm, uint64_t deadline)
{
    bench_run_t *run = &self->run;
    while (true) {
        bool more = false;
        bool past = bench_now_ns () >= deadline;
        uint64_t sent = 0;
        for (int i = 0; i < run->pairs; i++) {
            sent += self->senders [i].sent;
        }
        uint64_t seen = atomic_load (warm? &self->warm_seen: &self->seen);
        for (int i = 0; i < run->pairs && !past; i++) {
            agent_t *sender = &self->senders [i];
            //  The bus takes what the window allows at once as bundles,
            //  as any pipelining client of the C library can.
            if (self->bus) {
                bus_client_cork (sender->client);
            }
            while (sender->sent < quota && sender->sent - sender->answered < run->inflight
               &&  sent - seen < LOAD_LEAD) {
                if (s_post (self, sender, warm) != 0) {
                    run->errors++;
                    break;
                }
                sent++;
            }
            bus_error_t err;
            if (self->bus && bus_client_uncork (sender->client, &err) != 0) {
                fprintf (stderr, "load: %s: %s\n", sender->name, err.text);
                run->errors++;
            }
            more |= sender->sent < quota;
        }
        if ((!more || past) && s_all_answered (self)) {
            break;
        }
        if (bench_now_ns () > deadline + (uint64_t) LOAD_DRAIN_S * 1000000000u) {
            fprintf (stderr, "load: answers still missing %d s after the run\n", LOAD_DRAIN_S);
            run->errors++;
            break;
        }
        s_poll_senders (self, 1);
    }
}

//  Open loop: message k is due at start + k / rate, round robin over the
//  senders, whatever the answers do.
static void
s_open_loop (load_t *self, uint64_t start)
{
    bench_run_t *run = &self->run;
    double interval = 1e9 / run->rate;
    uint64_t k = 0;
    uint64_t end = start + (uint64_t) (run->seconds * 1e9);
    while (k < run->count && bench_now_ns () < end) {
        uint64_t due = start + (uint64_t) ((double) k * interval);
        bench_sleep_until (due);
        uint64_t now = bench_now_ns ();
        //  Send everything due by now (after a late wake-up, a small burst).
        while (k < run->count && start + (uint64_t) ((double) k * interval) <= now) {
            agent_t *sender = &self->senders [k % (uint64_t) run->pairs];
            if (s_post (self, sender, false) != 0) {
                run->errors++;
            }
            k++;
        }
        s_poll_senders (self, 0);
    }
    uint64_t drain_end = bench_now_ns () + (uint64_t) LOAD_DRAIN_S * 1000000000u;
    while (!s_all_answered (self) && bench_now_ns () < drain_end) {
        s_poll_senders (self, 10);
    }
}

static void *
s_sender_thread (void *arg)
{
    load_t *self = arg;
    bench_run_t *run = &self->run;

    //  Warm-up, not measured: wait until every warm-up message is delivered.
    uint64_t warm_end = bench_now_ns () + 10000000000u;
    s_closed_loop (self, LOAD_WARMUP, true, warm_end);
    uint64_t warm_acked = 0;
    for (int i = 0; i < run->pairs; i++) {
        warm_acked += self->senders [i].acked;
    }
    while (atomic_load (&self->warm_seen) < warm_acked && bench_now_ns () < warm_end) {
        s_poll_senders (self, 1);
    }
    s_reset_senders (self);

    self->t_start = bench_now_ns ();
    self->self_cpu_start = bench_self_cpu ();
    if (run->server_pid) {
        self->cpu_start = bench_proc_cpu (run->server_pid);
        bench_rss_sample (run);
    }
    atomic_store (&self->phase, 1);
    if (strcmp (run->mode, "tput") == 0) {
        uint64_t quota = (run->count + (uint64_t) run->pairs - 1) / (uint64_t) run->pairs;
        s_closed_loop (self, quota, false, self->t_start + (uint64_t) (run->seconds * 1e9));
    }
    else {
        s_open_loop (self, self->t_start);
    }
    uint64_t expected = 0;
    for (int i = 0; i < run->pairs; i++) {
        run->sent += self->senders [i].sent;
        run->acked += self->senders [i].acked;
        run->errors += self->senders [i].answered - self->senders [i].acked;
        expected += self->senders [i].acked;
    }
    atomic_store (&self->expected, expected);
    atomic_store (&self->phase, 2);
    return NULL;
}

//  ---------------------------------------------------------------------
//  Recipient side

static void
s_delivered (load_t *self, agent_t *recipient, const uint8_t *payload, size_t size)
{
    uint64_t seq = 0;
    if (size >= BENCH_STAMP_SIZE) {
        memcpy (&seq, payload + 8, 8);
    }
    recipient->unacked++;
    if (seq & LOAD_WARM_BIT) {
        atomic_fetch_add (&self->warm_seen, 1);
        return;
    }
    //  One sender per recipient, stamps counting up from 0: one below the
    //  next is a message repeated or out of order (a gap is a refusal,
    //  counted at the sender).
    if (seq < recipient->next) {
        if (!recipient->disorder++) {
            fprintf (stderr, "load: %s got message %llu, expected %llu\n", recipient->name,
                     (unsigned long long) seq, (unsigned long long) recipient->next);
        }
    }
    recipient->next = seq + 1;
    bench_sample (&self->run, bench_latency (payload, size));
    self->t_last = bench_now_ns ();
    uint64_t seen = atomic_fetch_add (&self->seen, 1) + 1;
    //  Server RSS at every tenth of the run.
    uint64_t tenth = self->run.count / 10;
    if (tenth && seen % tenth == 0 && seen < self->run.count) {
        bench_rss_sample (&self->run);
    }
}

static void
s_ack_recipient (load_t *self, agent_t *recipient)
{
    if (self->bus && recipient->unacked) {
        bus_error_t err;
        if (bus_client_ack (recipient->client, bus_client_last_seq (recipient->client), &err) != 0) {
            self->ack_errors++;
        }
    }
    recipient->unacked = 0;
}

static void
s_drain_recipient (load_t *self, agent_t *recipient)
{
    if (self->bus) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        while (bus_client_recv (recipient->client, &frame, 0, &err) == 0) {
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER) {
                Bulkhead__V1__Deliver *deliver = frame->deliver;
                s_delivered (self, recipient, deliver->payload.data, deliver->payload.len);
                if (recipient->unacked >= LOAD_ACK_EVERY) {
                    s_ack_recipient (self, recipient);
                }
            }
            bus_client_free (&frame);
        }
        return;
    }
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (zmq_msg_recv (&msg, recipient->socket, ZMQ_DONTWAIT) >= 0) {
        const uint8_t *data = zmq_msg_data (&msg);
        size_t size = zmq_msg_size (&msg);
        if (size > 0 && (size_t) data [0] + 1 <= size) {
            s_delivered (self, recipient, data + 1 + data [0], size - 1 - data [0]);
        }
    }
    zmq_msg_close (&msg);
}

static void *
s_recipient_thread (void *arg)
{
    load_t *self = arg;
    bench_run_t *run = &self->run;
    int pairs = run->pairs;
    //  Hard stop: warm-up, the run, and the drain after it.
    uint64_t hard_end = bench_now_ns ()
                      + (uint64_t) ((10 + run->seconds + 2 * LOAD_DRAIN_S) * 1e9);
    while (bench_now_ns () < hard_end) {
        if (atomic_load (&self->phase) == 2
        &&  atomic_load (&self->seen) >= atomic_load (&self->expected)) {
            break;
        }
        zmq_pollitem_t items [BENCH_PAIRS_MAX];
        for (int i = 0; i < pairs; i++) {
            items [i] = (zmq_pollitem_t) { self->recipients [i].socket, 0, ZMQ_POLLIN, 0 };
        }
        int rc = zmq_poll (items, pairs, LOAD_POLL_MS);
        for (int i = 0; i < pairs; i++) {
            agent_t *recipient = &self->recipients [i];
            if (rc > 0 && (items [i].revents & ZMQ_POLLIN)) {
                s_drain_recipient (self, recipient);
            }
            else
            if (rc == 0) {
                //  Idle: acknowledge what was processed, as an agent would.
                s_ack_recipient (self, recipient);
            }
        }
    }
    for (int i = 0; i < pairs; i++) {
        s_ack_recipient (self, &self->recipients [i]);
    }
    return NULL;
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
    const char *extra = "--endpoint EP --server-key KEY [--keys DIR]\n"
                        "  bulkhead: KEY is the bus.pub file, DIR holds s1.key.. r1.key..\n"
                        "  baseline: KEY is the broker's public key (Z85)";
    for (int i = 1; i < argc; i++) {
        if (bench_option (run, argc, argv, &i)) {
            continue;
        }
        if (i + 1 < argc && strcmp (argv [i], "--endpoint") == 0) {
            self->endpoint = argv [++i];
        }
        else
        if (i + 1 < argc && strcmp (argv [i], "--server-key") == 0) {
            self->server_key = argv [++i];
        }
        else
        if (i + 1 < argc && strcmp (argv [i], "--keys") == 0) {
            self->keys = argv [++i];
        }
        else {
            bench_usage_exit (argv [0], extra);
        }
    }
    if (!bench_options_valid (run) || !self->endpoint || !self->server_key) {
        bench_usage_exit (argv [0], extra);
    }
    self->bus = strcmp (run->system, "bulkhead") == 0;
    if ((self->bus && !self->keys) || (!self->bus && strlen (self->server_key) != 40)) {
        bench_usage_exit (argv [0], extra);
    }
    memset (self->frame, 'x', sizeof self->frame);
    int rc = 0;
    char name [16];
    for (int i = 0; i < run->pairs && rc == 0; i++) {
        snprintf (name, sizeof name, "r%d", i + 1);
        rc = s_connect (self, &self->recipients [i], name);
        snprintf (name, sizeof name, "s%d", i + 1);
        rc = rc? rc: s_connect (self, &self->senders [i], name);
        snprintf (self->senders [i].peer, sizeof self->senders [i].peer, "r%d", i + 1);
    }
    if (rc == 0) {
        pthread_t sender, recipient;
        pthread_create (&recipient, NULL, s_recipient_thread, self);
        pthread_create (&sender, NULL, s_sender_thread, self);
        pthread_join (sender, NULL);
        pthread_join (recipient, NULL);
        run->delivered = atomic_load (&self->seen);
        run->driver_cpu = bench_self_cpu () - self->self_cpu_start;
        run->errors += self->ack_errors;
        for (int i = 0; i < run->pairs; i++) {
            run->errors += self->recipients [i].disorder;
        }
        run->elapsed = self->t_last > self->t_start? (double) (self->t_last - self->t_start) / 1e9: 0;
        if (run->server_pid) {
            run->server_cpu = bench_proc_cpu (run->server_pid) - self->cpu_start;
            bench_rss_sample (run);
            run->hwm_kb = bench_proc_kb (run->server_pid, "VmHWM:");
        }
        if (run->delivered < run->acked) {
            fprintf (stderr, "load: %llu messages acknowledged but not delivered\n",
                     (unsigned long long) (run->acked - run->delivered));
            run->errors += run->acked - run->delivered;
        }
        bench_report (run);
        rc = run->errors? 1: 0;
    }
    for (int i = 0; i < run->pairs; i++) {
        s_disconnect (&self->senders [i]);
        s_disconnect (&self->recipients [i]);
    }
    free (run->samples);
    free (self);
    return rc;
}
