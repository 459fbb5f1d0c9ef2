/*  cmd_console.c: `bulkhead console`, the approval console in the browser.

    A small web server the approver runs on their own machine. It connects
    to the bus as that approver (its key never leaves this process; the bus
    sees its votes exactly as from `bulkhead approve`) and serves one page
    that shows, live, what waits for this approver and what was decided.

    Threads. The main thread owns the bus connection and all state: it
    reads notices (Pending, HoldUpdate), lists and fetches holds, verifies
    each held record against its digest, and rebuilds one JSON snapshot of
    the page's state after every change. libmicrohttpd runs one thread per
    connection: the event stream of each open page waits on a condition
    variable for a new snapshot; an approve or deny is queued for the main
    thread, which asks the bus and hands back the answer. One lock guards
    the snapshot, the holds' payloads and the request queue.

    Security model (see README, "Approval console"):
    - loopback only unless --allow-remote;
    - a random token made at start, printed in the URL; every request must
      carry it: in the URL for the page, its event stream (EventSource
      cannot send headers) and reads; in the X-Bulkhead-Token header for
      state changes (POST, JSON body), never a cookie, so another site
      cannot make the browser send it;
    - the Host header must name the listen address (DNS rebinding);
    - a request must arrive whole within 5 s, and connections that have not
      shown the token hold at most 16 of the 64 slots (the connection guard);
    - a strict Content-Security-Policy: the page's one style and one script
      are inline and allowed by their SHA-256 only, nothing else loads; no
      framing; no referrer (the token is in the URL); nothing cached.
    - what agents wrote is escaped here (bus_print text mode) and the page
      only ever sets it as text.
*/
#include "cmd.h"
#include "bus_notify.h"
#include "record.pb-c.h"
#include "med_blast.h"
#include "console_assets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define CON_HOLDS_MAX       1024    //  as many as a listing gives
#define CON_HISTORY_MAX     200     //  decided holds kept for the page, newest first
#define CON_PAYLOAD_SHOWN   1024    //  bytes of a payload in the snapshot; "show all" for more
#define CON_BODY_MAX        8192    //  bytes of a POST body
#define CON_REQUESTS_MAX    16      //  approvals and denials waiting for the bus thread
#define CON_CONNECTIONS_MAX 64      //  HTTP connections at once (libmicrohttpd's limit)
#define CON_UNTRUSTED_MAX   16      //  of them not yet shown the token: one more closes the oldest
#define CON_REQUEST_MS      5000    //  a request (headers and body) must arrive within this, from
                                    //  the connection's start or its last answer
#define CON_GUARD_SAY_MS    10000   //  the guard's line on stderr at most this often
#define CON_CAUSES_DEPTH    8       //  generations of causes shown
#define CON_LIST_EVERY_MS   30000   //  a listing now and then, for notices this connection
                                    //  missed (see README); each is a log record
#define CON_LIST_GAP_MS     200     //  a flood of notices makes a listing at most this often
#define CON_KEEPALIVE_S     15
#define CON_RECONNECT_MS    3000    //  a new session this often while the bus is gone      //  a comment on an idle event stream
#define CON_TOKEN_BYTES     24
#define CON_NOTIFIED_MAX    2048    //  ids the notify hook was told of, newest kept

//  What approving unlocks: the recipient's own reach, from the blast-radius
//  analysis (mediators/med_blast.h) of a copy of the policy the approver
//  gives with --policy: every privileged class and recipient the recipient
//  could then make happen, and what stands in the way. A JSON array of
//  strings, or NULL when unknown (no --policy, or an agent it does not
//  name); the page shows it under each hold, or says it does not know.
typedef json_t *(console_unlocks_fn) (const char *recipient);
static console_unlocks_fn *s_unlocks_hook = NULL;
static med_graph_t *s_unlocks_graph;    //  the analysis's graph of that policy

//  Frees the policy copy and its graph; returns rc.
static int
s_unlocks_end (bus_policy_t **policy, int rc)
{
    med_graph_destroy (&s_unlocks_graph);
    bus_policy_destroy (policy);
    return rc;
}

#define CON_UNLOCKS_MAX     12          //  lines shown per hold; then "and N more"

static json_t *
s_unlocks (const char *recipient)
{
    const bus_policy_t *policy = med_graph_policy (s_unlocks_graph);
    const bus_agent_t *agent = bus_policy_agent (policy, recipient);
    if (!agent) {
        return NULL;
    }
    uint32_t set = bus_policy_agent_index (policy, agent);
    med_blast_options_t options;
    med_blast_options_default (&options);
    options.k = 0;
    options.cuts = 0;
    med_blast_t *blast = NULL;
    bus_error_t err;
    if (med_blast_open (&blast, s_unlocks_graph, &set, 1, &options, &err) != 0) {
        return NULL;
    }
    json_t *lines = json_array ();
    size_t shown = 0;
    for (size_t i = 0; lines && i < blast->n_targets; i++) {
        const med_blast_target_t *target = &blast->targets [i];
        if (target->best == MED_BLAST_BLOCKED) {
            continue;
        }
        if (shown++ == CON_UNLOCKS_MAX) {
            continue;
        }
        char line [BUS_NAME_MAX * 2 + 96];
        snprintf (line, sizeof line, "%s to %s (%s, %u hop%s)",
                  policy->classes [target->cls].name, policy->agents [target->recipient].name,
                  med_blast_verdict_name (target->best), target->best_length,
                  target->best_length == 1? "": "s");
        json_array_append_new (lines, json_string (line));
    }
    if (lines && shown > CON_UNLOCKS_MAX) {
        char more [64];
        snprintf (more, sizeof more, "and %zu more (bulkhead blast)", shown - CON_UNLOCKS_MAX);
        json_array_append_new (lines, json_string (more));
    }
    if (lines && shown == 0) {
        json_array_append_new (lines, json_string ("no privileged class: nothing beyond its "
                                                   "ordinary edges"));
    }
    med_blast_destroy (&blast);
    return lines;
}

static const char *s_help =
    "usage: bulkhead console --key APPROVER.key [--listen 127.0.0.1:PORT] [--notify CMD]\n"
    "                        [--notify-interval S] [--allow-remote] [--policy FILE]\n"
    "                        [options]\n\n"
    "The approval console: a small web server for one approver, on their own\n"
    "machine. It connects to the bus with the approver's key and prints a URL with\n"
    "a one-time token; open it in a browser. The page shows, live, every held\n"
    "message waiting for this approver: sender -> recipient, class, action,\n"
    "resource, the sender's justification first, RESTRICTED when it comes from\n"
    "untrusted content, votes and quorum, time left; the payload as it will be\n"
    "delivered (checked against the digest, escaped, the first KiB and \"show all\");\n"
    "the messages that led to it (their sender, time, class, restricted or not).\n"
    "Approve names the digest shown; deny takes a reason the sender reads. Holds it\n"
    "may not decide on (its own, or caused by its own message) say why. Decided\n"
    "holds, by anyone, move to a history list.\n\n"
    "Every request needs the token (in the URL, or the X-Bulkhead-Token header for\n"
    "approve and deny) and a Host header naming the listen address.\n\n"
    "  --listen HOST:PORT   where to serve (default 127.0.0.1:7760; port 0: any free one)\n"
    "  --allow-remote       allow a listen address that is not loopback (plain HTTP:\n"
    "                       put it behind TLS of your own)\n"
    "  --notify CMD         run CMD (/bin/sh -c) with one JSON object a line on its\n"
    "                       standard input for each new Pending notice, batched: at\n"
    "                       most one run at a time and one per --notify-interval\n"
    "  --notify-interval S  seconds between runs of CMD, 1..3600 (default 10)\n"
    "  --policy FILE        a copy of the bus's policy: each hold then shows what\n"
    "                       approving unlocks, the recipient's own reach (the\n"
    "                       privileged classes and recipients it could make happen,\n"
    "                       and what stands in the way: bulkhead blast RECIPIENT)\n"
    CMD_CONN_HELP;

//  One approve or deny from a page, handed to the main thread. Lives on
//  the HTTP thread's stack until done.
typedef struct {
    bool deny;
    char id [80];
    char digest_hex [65];
    char reason [1025];
    bool done;
    int status;                 //  HTTP status of the answer
    char *answer;               //  JSON text, malloc'd by the main thread
} con_request_t;

//  One hold this console shows.
typedef struct {
    char id [80];
    char sender [80];
    char recipient [80];
    char intent_class [80];
    char action [300];
    json_t *view;               //  what the page gets
    json_t *payload_all;        //  the whole payload, escaped (a JSON string), or NULL
    uint8_t digest [32];        //  of the record this console checked and shows
    bool verified;
    bool listed;                //  in the last listing
} con_hold_t;

//  One HTTP connection, as the guard sees it (under the console's lock).
typedef struct {
    bool used;
    int fd;
    uint64_t serial;            //  order of arrival: the oldest is the smallest
    int64_t since_ms;           //  when it began to wait for the request it reads
    bool reading;               //  a request not yet read whole
    bool trusted;               //  has shown the token
    bool cut;                   //  shut down by the guard, not yet closed
} con_slot_t;

typedef struct {
    //  Set at start, then read-only.
    char token [CON_TOKEN_BYTES * 2 + 1];
    char host [80];             //  Host headers accepted
    char host_alt [80];
    char agent [BUS_NAME_MAX + 1];
    char csp [512];
    char *page;
    size_t page_size;

    pthread_mutex_t lock;
    pthread_cond_t changed;     //  a new snapshot, a request done, or stopping
    bool stopping;
    uint64_t version;
    char *snapshot;             //  JSON text of the state
    con_request_t *requests [CON_REQUESTS_MAX];
    size_t n_requests;
    int wake [2];               //  HTTP threads -> main thread

    //  Written by the main thread only (under lock: the HTTP threads read
    //  holds for "show all").
    con_hold_t *holds [CON_HOLDS_MAX];
    size_t n_holds;
    json_t *history;            //  newest first
    bool bus_ok;
    char bus_error [400];

    //  The connections, for the guard (see "The connection guard").
    con_slot_t slots [CON_CONNECTIONS_MAX];
    uint64_t serial;            //  connections accepted so far
    uint64_t cut_slow;          //  closed: no whole request within CON_REQUEST_MS
    uint64_t cut_crowded;       //  closed: the oldest of too many without the token
    uint64_t cut_full;          //  closed at once: no slot (more than libmicrohttpd's limit)

    //  The notify hook (main thread only) and the holds it was told of:
    //  a hold is told once, from its notice or, when the notice did not
    //  reach this connection, from the listing that found it.
    bus_notify_t *notify;
    char notified [CON_NOTIFIED_MAX][80];
    size_t n_notified;
} con_t;

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// ---------------------------------------------------------------------------
//  State, on the main thread

static con_hold_t *
s_find (con_t *self, const char *id, size_t *index)
{
    for (size_t i = 0; i < self->n_holds; i++) {
        if (strcmp (self->holds [i]->id, id) == 0) {
            if (index) {
                *index = i;
            }
            return self->holds [i];
        }
    }
    return NULL;
}

static void
s_hold_free (con_hold_t **hold_p)
{
    if (*hold_p) {
        json_decref ((*hold_p)->view);
        json_decref ((*hold_p)->payload_all);
        free (*hold_p);
        *hold_p = NULL;
    }
}

//  Rebuilds the snapshot from the state, and wakes the event streams if
//  it changed (a listing every few seconds changes nothing, mostly); the
//  caller holds the lock. The streams add the time when they send it.
static void
s_publish_locked (con_t *self)
{
    json_t *holds = json_array ();
    for (size_t i = 0; i < self->n_holds; i++) {
        json_array_append (holds, self->holds [i]->view);
    }
    json_t *state = json_pack ("{s:o, s:b, s:o, s:o, s:O}",
                               "agent", bus_json_str (self->agent),
                               "bus_ok", self->bus_ok,
                               "bus_error", bus_json_str (self->bus_error),
                               "holds", holds,
                               "history", self->history);
    char *text = state? json_dumps (state, JSON_COMPACT): NULL;
    json_decref (state);
    if (text && self->snapshot && strcmp (text, self->snapshot) == 0) {
        free (text);
    }
    else
    if (text) {
        free (self->snapshot);
        self->snapshot = text;
        self->version++;
        pthread_cond_broadcast (&self->changed);
    }
}

//  A hold is decided (state: released, denied, expired, gone): off the
//  list, into the history. Caller holds the lock.
static void
s_decided_locked (con_t *self, size_t index, const char *state, const char *actor,
                  const char *reason)
{
    con_hold_t *hold = self->holds [index];
    json_t *entry = json_pack ("{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:I}",
                               "id", bus_json_str (hold->id),
                               "sender", bus_json_str (hold->sender),
                               "recipient", bus_json_str (hold->recipient),
                               "class", bus_json_str (hold->intent_class),
                               "action", bus_json_str (hold->action [0]? hold->action: NULL),
                               "state", state,
                               "actor", bus_json_str (actor),
                               "reason", bus_json_str (reason),
                               "time_us", (json_int_t) s_now_us ());
    if (entry) {
        json_array_insert_new (self->history, 0, entry);
        while (json_array_size (self->history) > CON_HISTORY_MAX) {
            json_array_remove (self->history, CON_HISTORY_MAX);
        }
    }
    s_hold_free (&self->holds [index]);
    self->holds [index] = self->holds [--self->n_holds];
}

//  Tells the notify hook of p once; never of this approver's own holds.
static void
s_notify (con_t *self, const Bulkhead__V1__Pending *p)
{
    if (!self->notify || strcmp (p->sender, self->agent) == 0) {
        return;
    }
    size_t known = self->n_notified < CON_NOTIFIED_MAX? self->n_notified: CON_NOTIFIED_MAX;
    for (size_t i = 0; i < known; i++) {
        if (strcmp (self->notified [i], p->approval_id) == 0) {
            return;
        }
    }
    snprintf (self->notified [self->n_notified++ % CON_NOTIFIED_MAX], sizeof self->notified [0], "%s",
              p->approval_id);
    bus_notify_pending (self->notify, p);
}

// ---------------------------------------------------------------------------
//  The bus, on the main thread

//  A control call: the reply (owned by the caller), or NULL with why
//  ("CODE: sentence") in why. No answer in time is the bus gone (bus_ok
//  false, shown on the page, and the main loop connects again); an ERROR
//  frame refuses this request only (a reason the bus finds malformed),
//  unless `listing`: a listing refused means the session is gone (the bus
//  restarted and wants a HELLO).
static Bulkhead__V1__Frame *
s_call (con_t *self, bus_client_t *client, const Bulkhead__V1__Control *control, bool listing,
        char *why, size_t size)
{
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    bool gone = false;
    if (bus_client_control (client, control, &reply, 5000, &err) != 0) {
        snprintf (why, size, "%s: %.250s", bus_errword (err.code), err.text);
        gone = true;
        reply = NULL;
    }
    else
    if (reply->body_case != BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY) {
        bool error = reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR;
        snprintf (why, size, "%.32s: %.300s", error? reply->error->code: "PROTOCOL",
                  error? reply->error->reason: "the bus answered with something else");
        gone = listing;
        bus_client_free (&reply);
    }
    if (gone) {
        pthread_mutex_lock (&self->lock);
        self->bus_ok = false;
        snprintf (self->bus_error, sizeof self->bus_error, "%s", why);
        s_publish_locked (self);
        pthread_mutex_unlock (&self->lock);
    }
    return reply;
}

//  The causes of rec (the held record) from GET_CAUSES, as the page shows
//  them: breadth first with their distance, only records the held
//  message's causes lead to.
static json_t *
s_causes (con_t *self, bus_client_t *client, const char *id, const Bulkhead__V1__Record *held,
          bool *cut)
{
    json_t *out = json_array ();
    *cut = false;
    if (!held->n_causes) {
        return out;
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES;
    control.id = (char *) id;
    control.has_depth = true;
    control.depth = CON_CAUSES_DEPTH;
    char why [400];
    Bulkhead__V1__Frame *reply = s_call (self, client, &control, false, why, sizeof why);
    if (!reply) {
        return out;
    }
    const Bulkhead__V1__ControlReply *r = reply->control_reply;
    size_t n = r->n_causes;
    Bulkhead__V1__Record **recs = calloc (n? n: 1, sizeof *recs);
    for (size_t i = 0; recs && i < n; i++) {
        recs [i] = bulkhead__v1__record__unpack (NULL, r->causes [i].len, r->causes [i].data);
    }
    *cut = r->has_causes_cut && r->causes_cut;
    //  The walk: seqs at distance `level`, starting with the held message's.
    uint64_t wave [64 * 2];
    size_t n_wave = 0;
    bool *shown = calloc (n? n: 1, sizeof *shown);
    for (size_t i = 0; i < held->n_causes && n_wave < 64; i++) {
        wave [n_wave++] = held->causes [i];
    }
    for (int level = 1; recs && shown && n_wave && level <= CON_CAUSES_DEPTH; level++) {
        uint64_t next [64];
        size_t n_next = 0;
        for (size_t w = 0; w < n_wave; w++) {
            for (size_t i = 0; i < n; i++) {
                const Bulkhead__V1__Record *c = recs [i];
                if (!c || shown [i] || c->seq != wave [w]) {
                    continue;
                }
                shown [i] = true;
                json_t *cause = json_pack ("{s:I, s:i, s:o, s:o, s:I, s:o, s:o, s:b, s:o, s:o, s:o}",
                    "seq", (json_int_t) c->seq, "depth", level,
                    "sender", bus_json_str (c->sender), "recipient", bus_json_str (c->recipient),
                    "time_us", (json_int_t) c->time_us, "class", bus_json_str (c->intent_class),
                    "action", bus_json_str (c->action),
                    "restricted", c->has_restricted && c->restricted,
                    "restricted_why", bus_json_str (c->restricted_why),
                    "code", bus_json_str (c->code),
                    "justification", c->justification
                        ? bus_json_text (c->justification, strlen (c->justification), BUS_PRINT_LINE,
                                         300, NULL)
                        : json_null ());
                if (cause) {
                    json_array_append_new (out, cause);
                }
                for (size_t k = 0; k < c->n_causes && n_next < 64; k++) {
                    next [n_next++] = c->causes [k];
                }
            }
        }
        memcpy (wave, next, n_next * sizeof next [0]);
        n_wave = n_next;
    }
    for (size_t i = 0; recs && i < n; i++) {
        if (recs [i]) {
            bulkhead__v1__record__free_unpacked (recs [i], NULL);
        }
    }
    free (recs);
    free (shown);
    bus_client_free (&reply);
    return out;
}

//  Fetches and checks the held record of p, as `bulkhead pending` does:
//  its bytes must hash to the digest the bus names and be the message the
//  hold names. The record (caller frees) or NULL with why.
static Bulkhead__V1__Record *
s_fetch (con_t *self, bus_client_t *client, const Bulkhead__V1__Pending *p, uint8_t digest [32],
         char *why, size_t size, bool *tampered)
{
    *tampered = false;
    Bulkhead__V1__Frame *reply = NULL;
    const uint8_t *bytes;
    size_t n;
    if (p->has_record && p->has_record_size && p->record.len == p->record_size) {
        bytes = p->record.data;
        n = p->record.len;
    }
    else {
        Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD;
        control.id = p->approval_id;
        char failed [400];
        reply = s_call (self, client, &control, false, failed, sizeof failed);
        if (!reply || strcmp (reply->control_reply->code, "OK") != 0 || !reply->control_reply->has_record) {
            snprintf (why, size, "the bus did not send its record: %.300s",
                      reply? reply->control_reply->reason: failed);
            bus_client_free (&reply);
            return NULL;
        }
        bytes = reply->control_reply->record.data;
        n = reply->control_reply->record.len;
    }
    const char *wrong = NULL;
    Bulkhead__V1__Record *rec = cmd_hold_check (p, bytes, n, digest, &wrong);
    bus_client_free (&reply);
    if (!rec) {
        snprintf (why, size, "MISMATCH: %s", wrong);
        *tampered = true;
        return NULL;
    }
    return rec;
}

//  The parts of a hold's view that change: votes, quorum, time, blocked.
static void
s_view_update (json_t *view, const Bulkhead__V1__Pending *p)
{
    json_t *votes = json_array ();
    for (size_t i = 0; i < p->n_votes; i++) {
        json_array_append_new (votes, bus_json_str (p->votes [i]));
    }
    json_object_set_new (view, "votes", votes);
    json_object_set_new (view, "quorum", json_integer (p->quorum));
    json_object_set_new (view, "expires_us", json_integer ((json_int_t) p->expires_us));
    json_object_set_new (view, "blocked", bus_json_str (p->blocked));
}

//  A new hold: fetched, checked, its causes read. NULL if out of memory.
static con_hold_t *
s_make (con_t *self, bus_client_t *client, const Bulkhead__V1__Pending *p)
{
    con_hold_t *hold = calloc (1, sizeof *hold);
    if (!hold) {
        return NULL;
    }
    snprintf (hold->id, sizeof hold->id, "%s", p->approval_id);
    snprintf (hold->sender, sizeof hold->sender, "%s", p->sender);
    snprintf (hold->recipient, sizeof hold->recipient, "%s", p->recipient);
    snprintf (hold->intent_class, sizeof hold->intent_class, "%s", p->intent_class);
    snprintf (hold->action, sizeof hold->action, "%s", p->action? p->action: "");
    char why [400] = "";
    bool tampered = false;
    Bulkhead__V1__Record *rec = s_fetch (self, client, p, hold->digest, why, sizeof why, &tampered);
    hold->verified = rec != NULL;
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, hold->digest, 32);
    //  Before it is checked, the page gets only what the notice says.
    json_t *view = json_pack ("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:I, s:b, s:b, s:o}",
        "id", bus_json_str (p->approval_id),
        "sender", bus_json_str (p->sender),
        "recipient", bus_json_str (p->recipient),
        "class", bus_json_str (p->intent_class),
        "action", bus_json_str (p->action),
        "resource", bus_json_str (p->resource),
        "justification", p->justification
            ? bus_json_text (p->justification, strlen (p->justification), 0, 0, NULL): json_null (),
        "restricted", p->has_restricted && p->restricted,
        "seq", (json_int_t) p->seq,
        "verified", hold->verified,
        "tampered", tampered,
        "mismatch", rec? json_null (): bus_json_str (why));
    hold->view = view;
    if (!view) {
        s_hold_free (&hold);
        if (rec) {
            bulkhead__v1__record__free_unpacked (rec, NULL);
        }
        return NULL;
    }
    if (rec) {
        //  From here on, what the page shows is the checked record's.
        json_object_set_new (view, "digest", json_string (hex));
        json_object_set_new (view, "justification", rec->justification
            ? bus_json_text (rec->justification, strlen (rec->justification), 0, 0, NULL): json_null ());
        json_object_set_new (view, "action", bus_json_str (rec->action));
        json_object_set_new (view, "resource", bus_json_str (rec->resource));
        json_object_set_new (view, "restricted", json_boolean (rec->has_restricted && rec->restricted));
        json_object_set_new (view, "restricted_why", bus_json_str (rec->restricted_why));
        json_object_set_new (view, "intent", bus_json_str (rec->intent));
        json_object_set_new (view, "tool", bus_json_str (rec->tool));
        json_object_set_new (view, "content_type", bus_json_str (rec->content_type));
        json_object_set_new (view, "message_id", bus_json_str (rec->message_id));
        json_object_set_new (view, "key_fp", bus_json_str (rec->key_fp));
        if (rec->has_payload) {
            size_t more = 0;
            json_t *text = bus_json_text (rec->payload.data, rec->payload.len, 0, CON_PAYLOAD_SHOWN, &more);
            json_object_set_new (view, "payload", json_pack ("{s:I, s:o, s:I, s:I}",
                "size", (json_int_t) rec->payload.len, "text", text? text: json_string (""),
                "shown_bytes", (json_int_t) (rec->payload.len - more), "more", (json_int_t) more));
            hold->payload_all = bus_json_text (rec->payload.data, rec->payload.len, 0, 0, NULL);
        }
        bool cut = false;
        json_object_set_new (view, "causes", s_causes (self, client, p->approval_id, rec, &cut));
        json_object_set_new (view, "causes_cut", json_boolean (cut));
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    json_t *unlocks = s_unlocks_hook? s_unlocks_hook (hold->recipient): NULL;
    json_object_set_new (view, "unlocks", unlocks? unlocks: json_null ());
    s_view_update (view, p);
    return hold;
}

//  LIST_PENDING (with this approver's own holds, which say why it may not
//  decide): new holds are fetched and checked, known ones updated, and
//  those no longer listed were decided elsewhere or expired.
static void
s_list (con_t *self, bus_client_t *client)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    control.has_include_own = true;
    control.include_own = true;
    char why [400];
    Bulkhead__V1__Frame *reply = s_call (self, client, &control, true, why, sizeof why);
    if (!reply) {
        return;
    }
    const Bulkhead__V1__ControlReply *r = reply->control_reply;
    //  Fetch what is new without the lock (bus calls), then change the
    //  state under it.
    con_hold_t *made [CON_HOLDS_MAX];
    size_t n_made = 0;
    for (size_t i = 0; i < r->n_pending && n_made < CON_HOLDS_MAX; i++) {
        if (!s_find (self, r->pending [i]->approval_id, NULL)) {
            s_notify (self, r->pending [i]);
            made [n_made] = s_make (self, client, r->pending [i]);
            if (made [n_made]) {
                n_made++;
            }
        }
    }
    pthread_mutex_lock (&self->lock);
    self->bus_ok = strcmp (r->code, "OK") == 0;
    snprintf (self->bus_error, sizeof self->bus_error, "%s", self->bus_ok? "": r->reason);
    for (size_t i = 0; i < self->n_holds; i++) {
        self->holds [i]->listed = false;
    }
    for (size_t i = 0; i < n_made; i++) {
        if (self->n_holds < CON_HOLDS_MAX) {
            self->holds [self->n_holds++] = made [i];
        }
        else {
            s_hold_free (&made [i]);
        }
    }
    for (size_t i = 0; i < r->n_pending; i++) {
        con_hold_t *hold = s_find (self, r->pending [i]->approval_id, NULL);
        if (hold) {
            hold->listed = true;
            s_view_update (hold->view, r->pending [i]);
        }
    }
    for (size_t i = self->n_holds; i-- > 0; ) {
        if (!self->holds [i]->listed && self->bus_ok) {
            s_decided_locked (self, i, "gone", NULL, "no longer waiting: decided or expired "
                              "while this console was not told");
        }
    }
    s_publish_locked (self);
    pthread_mutex_unlock (&self->lock);
    bus_client_free (&reply);
}

//  A HoldUpdate: votes so far, or decided.
static void
s_on_update (con_t *self, const Bulkhead__V1__HoldUpdate *u)
{
    pthread_mutex_lock (&self->lock);
    size_t index;
    con_hold_t *hold = s_find (self, u->approval_id, &index);
    if (hold && strcmp (u->state, "pending") == 0) {
        json_t *votes = json_array ();
        for (size_t i = 0; i < u->n_votes; i++) {
            json_array_append_new (votes, bus_json_str (u->votes [i]));
        }
        json_object_set_new (hold->view, "votes", votes);
        json_object_set_new (hold->view, "quorum", json_integer (u->quorum));
    }
    else
    if (hold) {
        const char *states [] = { "released", "denied", "expired" };
        const char *state = "gone";
        for (size_t i = 0; i < 3; i++) {
            state = strcmp (u->state, states [i]) == 0? states [i]: state;
        }
        s_decided_locked (self, index, state, u->actor, u->reason);
    }
    s_publish_locked (self);
    pthread_mutex_unlock (&self->lock);
}

//  One approve or deny from the page: checked against what this console
//  showed, then asked of the bus. Fills the request's answer.
static void
s_decide (con_t *self, bus_client_t *client, con_request_t *req)
{
    char code [32] = "OK";
    char reason [700] = "";
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.id = req->id;
    uint8_t digest [32];
    con_hold_t *hold = s_find (self, req->id, NULL);
    if (!hold) {
        snprintf (code, sizeof code, "NOTFOUND");
        snprintf (reason, sizeof reason, "this console shows no hold with that id waiting");
    }
    else
    if (!req->deny && (!hold->verified || strlen (req->digest_hex) != 64
                   ||  sodium_hex2bin (digest, 32, req->digest_hex, 64, NULL, NULL, NULL) != 0
                   ||  sodium_memcmp (digest, hold->digest, 32) != 0)) {
        //  Bound to the digest shown: the page must name the record this
        //  console checked and showed, and nothing else can be approved.
        snprintf (code, sizeof code, "INVAL");
        snprintf (reason, sizeof reason, "%s", hold->verified
                  ? "the approval names another digest than the message shown; reload and read it again"
                  : "its record could not be checked against its digest: nothing of it can be approved");
    }
    else {
        control.op = req->deny? BULKHEAD__V1__CONTROL_OP__CONTROL_DENY
                              : BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
        if (req->deny) {
            control.reason = req->reason;
        }
        else {
            control.has_digest = true;
            control.digest.data = hold->digest;
            control.digest.len = 32;
        }
        char why [400];
        Bulkhead__V1__Frame *reply = s_call (self, client, &control, false, why, sizeof why);
        if (reply) {
            snprintf (code, sizeof code, "%s", reply->control_reply->code);
            snprintf (reason, sizeof reason, "%s", reply->control_reply->reason);
            bus_client_free (&reply);
        }
        else {
            snprintf (code, sizeof code, "REFUSED");
            snprintf (reason, sizeof reason, "%s", why);
        }
    }
    json_t *answer = json_pack ("{s:o, s:o}", "code", bus_json_str (code), "reason", bus_json_str (reason));
    req->answer = answer? json_dumps (answer, JSON_COMPACT): NULL;
    req->status = strcmp (code, "OK") == 0? 200: 409;
    json_decref (answer);
}

// ---------------------------------------------------------------------------
//  The connection guard
//
//  libmicrohttpd gives each connection a thread, allows CON_CONNECTIONS_MAX
//  of them, and times a connection out only when it is idle: a local
//  process without the token could hold every slot with headers that never
//  end (a byte now and then), and the approver's page would not load. So a
//  slot must be earned: a request must arrive whole within CON_REQUEST_MS of
//  the connection's start (or of its last answer, for one kept alive), and
//  connections that have not shown the token hold at most
//  CON_UNTRUSTED_MAX slots: one more closes the oldest of them. While a
//  request that showed the token is answered (the page's event stream for
//  hours), the guard leaves its connection alone.
//
//  Closing is shutdown(2) of the socket: the connection's thread sees the
//  end of the stream and libmicrohttpd closes it. The descriptor stays
//  valid meanwhile, because libmicrohttpd tells s_on_connection of the close
//  (which takes the lock) before it closes the descriptor.

static void
s_cut_locked (con_slot_t *slot)
{
    if (!slot->cut) {
        slot->cut = true;
        shutdown (slot->fd, SHUT_RDWR);
    }
}

//  libmicrohttpd's notice of a connection's start and end (its threads).
static void
s_on_connection (void *cls, struct MHD_Connection *conn, void **socket_context,
                 enum MHD_ConnectionNotificationCode toe)
{
    con_t *self = cls;
    pthread_mutex_lock (&self->lock);
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        con_slot_t *slot = *socket_context;
        if (slot) {
            slot->used = false;
        }
        *socket_context = NULL;
        pthread_mutex_unlock (&self->lock);
        return;
    }
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    con_slot_t *free_slot = NULL, *oldest = NULL;
    size_t untrusted = 0;
    for (size_t i = 0; i < CON_CONNECTIONS_MAX; i++) {
        con_slot_t *slot = &self->slots [i];
        if (!slot->used) {
            free_slot = free_slot? free_slot: slot;
        }
        else
        if (!slot->trusted && !slot->cut) {
            untrusted++;
            oldest = oldest && oldest->serial < slot->serial? oldest: slot;
        }
    }
    if (!info || !free_slot) {
        //  Not expected: libmicrohttpd accepts no more than the slots.
        if (info) {
            shutdown (info->connect_fd, SHUT_RDWR);
        }
        self->cut_full++;
        pthread_mutex_unlock (&self->lock);
        return;
    }
    if (untrusted >= CON_UNTRUSTED_MAX) {
        s_cut_locked (oldest);
        self->cut_crowded++;
    }
    *free_slot = (con_slot_t) {
        .used = true, .fd = info->connect_fd, .serial = ++self->serial,
        .since_ms = s_mono_ms (), .reading = true,
    };
    *socket_context = free_slot;
    pthread_mutex_unlock (&self->lock);
}

//  What a request showed: the token (trusted), and whether it is read whole;
//  or, at its end (done), that the connection waits for the next one.
static void
s_guard_mark (con_t *self, struct MHD_Connection *conn, bool trusted, bool whole, bool done)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    pthread_mutex_lock (&self->lock);
    con_slot_t *slot = info? info->socket_context: NULL;
    if (slot) {
        slot->trusted = slot->trusted || trusted;
        slot->reading = done || !whole;
        if (done) {
            slot->since_ms = s_mono_ms ();
        }
    }
    pthread_mutex_unlock (&self->lock);
}

//  On the main thread, at least once a second: close what is past its
//  deadline, and say what the guard closed (at most every CON_GUARD_SAY_MS).
static void
s_guard (con_t *self, int64_t *said_ms, uint64_t *said_total)
{
    int64_t now = s_mono_ms ();
    pthread_mutex_lock (&self->lock);
    for (size_t i = 0; i < CON_CONNECTIONS_MAX; i++) {
        con_slot_t *slot = &self->slots [i];
        if (slot->used && slot->reading && !slot->cut && now - slot->since_ms >= CON_REQUEST_MS) {
            s_cut_locked (slot);
            self->cut_slow++;
        }
    }
    uint64_t slow = self->cut_slow, crowded = self->cut_crowded, full = self->cut_full;
    pthread_mutex_unlock (&self->lock);
    uint64_t total = slow + crowded + full;
    if (total != *said_total && now - *said_ms >= CON_GUARD_SAY_MS) {
        fprintf (stderr, "bulkhead console: closed %" PRIu64 " HTTP connections so far: %" PRIu64
                 " sent no whole request within %d s, %" PRIu64 " were the oldest of more than %d"
                 " without the token, %" PRIu64 " found no slot\n",
                 total, slow, CON_REQUEST_MS / 1000, crowded, CON_UNTRUSTED_MAX, full);
        *said_ms = now;
        *said_total = total;
    }
}

// ---------------------------------------------------------------------------
//  HTTP, on libmicrohttpd's threads

//  Every response: the page's CSP, no framing, no sniffing, no referrer
//  (the token is in URLs), nothing cached.
static enum MHD_Result
s_send (con_t *self, struct MHD_Connection *conn, unsigned status, const char *type,
        struct MHD_Response *response)
{
    if (!response) {
        return MHD_NO;
    }
    MHD_add_response_header (response, "Content-Type", type);
    MHD_add_response_header (response, "Content-Security-Policy", self->csp);
    MHD_add_response_header (response, "X-Frame-Options", "DENY");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (response, "Cache-Control", "no-store");
    MHD_add_response_header (response, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header (response, "Cross-Origin-Opener-Policy", "same-origin");
    enum MHD_Result rc = MHD_queue_response (conn, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_text (con_t *self, struct MHD_Connection *conn, unsigned status, const char *text)
{
    json_t *o = json_pack ("{s:s, s:s}", "code", status == 403? "FORBIDDEN": "REFUSED", "reason", text);
    char *body = o? json_dumps (o, JSON_COMPACT): NULL;
    json_decref (o);
    struct MHD_Response *r = body? MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE)
                                 : NULL;
    return s_send (self, conn, status, "application/json", r);
}

//  The token matches, in constant time.
static bool
s_token_ok (con_t *self, const char *given)
{
    return given && strlen (given) == strlen (self->token)
        && sodium_memcmp (given, self->token, strlen (self->token)) == 0;
}

//  One event stream: what it still has to write of the last snapshot.
typedef struct {
    con_t *console;
    uint64_t version;
    char *buf;
    size_t len;
    size_t off;
} con_stream_t;

static ssize_t
s_stream_read (void *cls, uint64_t pos, char *out, size_t max)
{
    (void) pos;
    con_stream_t *st = cls;
    con_t *self = st->console;
    if (st->off == st->len) {
        free (st->buf);
        st->buf = NULL;
        st->len = st->off = 0;
        pthread_mutex_lock (&self->lock);
        struct timespec until;
        clock_gettime (CLOCK_REALTIME, &until);
        until.tv_sec += CON_KEEPALIVE_S;
        while (!self->stopping && self->version == st->version) {
            if (pthread_cond_timedwait (&self->changed, &self->lock, &until) == ETIMEDOUT) {
                break;
            }
        }
        if (self->stopping) {
            pthread_mutex_unlock (&self->lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (self->version != st->version && self->snapshot) {
            st->version = self->version;
            size_t size = strlen (self->snapshot) + 96;
            st->buf = malloc (size);
            if (st->buf) {
                //  The snapshot is one JSON object: the time goes in first.
                st->len = (size_t) snprintf (st->buf, size, "retry: 2000\nevent: state\n"
                                             "data: {\"now_us\":%llu,%s\n\n",
                                             (unsigned long long) s_now_us (), self->snapshot + 1);
            }
        }
        pthread_mutex_unlock (&self->lock);
        if (!st->buf) {
            st->buf = strdup (": idle\n\n");
            st->len = st->buf? strlen (st->buf): 0;
        }
        if (!st->buf) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t n = st->len - st->off < max? st->len - st->off: max;
    memcpy (out, st->buf + st->off, n);
    st->off += n;
    return (ssize_t) n;
}

static void
s_stream_free (void *cls)
{
    con_stream_t *st = cls;
    free (st->buf);
    free (st);
}

//  GET /api/hold?id=: the whole payload of one hold, escaped.
static enum MHD_Result
s_get_hold (con_t *self, struct MHD_Connection *conn)
{
    const char *id = MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "id");
    pthread_mutex_lock (&self->lock);
    con_hold_t *hold = id? s_find (self, id, NULL): NULL;
    json_t *o = NULL;
    if (hold && hold->verified) {
        o = json_pack ("{s:s, s:s, s:O}", "code", "OK", "reason", "the whole payload",
                       "payload", hold->payload_all? hold->payload_all: json_string (""));
    }
    pthread_mutex_unlock (&self->lock);
    if (!o) {
        return s_text (self, conn, 404, "no checked hold with that id waits");
    }
    char *body = json_dumps (o, JSON_COMPACT);
    json_decref (o);
    struct MHD_Response *r = body? MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE)
                                 : NULL;
    return s_send (self, conn, 200, "application/json", r);
}

//  POST /api/approve {id, digest} and /api/deny {id, reason}: queued for
//  the main thread, answered when the bus answered.
static enum MHD_Result
s_post (con_t *self, struct MHD_Connection *conn, bool deny, const char *body, size_t size)
{
    json_error_t jerr;
    json_t *in = json_loadb (body, size, 0, &jerr);
    const char *id = NULL, *digest = NULL, *reason = NULL;
    if (!in || json_unpack (in, deny? "{s:s, s:s}": "{s:s, s:s}", "id", &id,
                            deny? "reason": "digest", deny? &reason: &digest) != 0
    ||  strlen (id) >= sizeof ((con_request_t *) 0)->id
    ||  (digest && strlen (digest) != 64)
    ||  (reason && (strlen (reason) == 0 || strlen (reason) > 1024))) {
        json_decref (in);
        return s_text (self, conn, 400, deny? "want JSON {\"id\": ..., \"reason\": ...} (reason 1-1024 bytes)"
                                            : "want JSON {\"id\": ..., \"digest\": 64 hex characters}");
    }
    con_request_t req;
    memset (&req, 0, sizeof req);
    req.deny = deny;
    snprintf (req.id, sizeof req.id, "%s", id);
    snprintf (req.digest_hex, sizeof req.digest_hex, "%s", digest? digest: "");
    snprintf (req.reason, sizeof req.reason, "%s", reason? reason: "");
    json_decref (in);
    pthread_mutex_lock (&self->lock);
    if (self->n_requests == CON_REQUESTS_MAX || self->stopping) {
        pthread_mutex_unlock (&self->lock);
        return s_text (self, conn, 503, "too many decisions in flight; try again");
    }
    self->requests [self->n_requests++] = &req;
    char byte = 1;
    if (write (self->wake [1], &byte, 1) < 0) {
        //  Full pipe: the main thread is waking anyway.
    }
    //  The main thread always finishes a request it took (each bus call is
    //  bounded), or marks it done when stopping: req lives until then.
    while (!req.done) {
        pthread_cond_wait (&self->changed, &self->lock);
    }
    pthread_mutex_unlock (&self->lock);
    if (!req.answer) {
        return s_text (self, conn, 503, "the console is stopping");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer (strlen (req.answer), req.answer,
                                                              MHD_RESPMEM_MUST_FREE);
    return s_send (self, conn, (unsigned) req.status, "application/json", r);
}

//  What one connection's request has read of its body.
typedef struct {
    char body [CON_BODY_MAX];
    size_t size;
    bool too_big;
} con_upload_t;

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void) toe;
    free (*con_cls);
    *con_cls = NULL;
    s_guard_mark (cls, conn, false, false, true);
}

//  GET /: the page.
static enum MHD_Result
s_get_page (con_t *self, struct MHD_Connection *conn, const con_upload_t *upload)
{
    (void) upload;
    struct MHD_Response *r = MHD_create_response_from_buffer (self->page_size, self->page,
                                                              MHD_RESPMEM_PERSISTENT);
    return s_send (self, conn, 200, "text/html; charset=utf-8", r);
}

//  GET /events: the page's event stream, one snapshot per change.
static enum MHD_Result
s_get_events (con_t *self, struct MHD_Connection *conn, const con_upload_t *upload)
{
    (void) upload;
    con_stream_t *st = calloc (1, sizeof *st);
    if (!st) {
        return MHD_NO;
    }
    st->console = self;
    struct MHD_Response *r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 16384,
                                                                s_stream_read, st, s_stream_free);
    if (!r) {
        free (st);
        return MHD_NO;
    }
    return s_send (self, conn, 200, "text/event-stream", r);
}

static enum MHD_Result
s_get_payload (con_t *self, struct MHD_Connection *conn, const con_upload_t *upload)
{
    (void) upload;
    return s_get_hold (self, conn);
}

static enum MHD_Result
s_post_approve (con_t *self, struct MHD_Connection *conn, const con_upload_t *upload)
{
    return s_post (self, conn, false, upload->body, upload->size);
}

static enum MHD_Result
s_post_deny (con_t *self, struct MHD_Connection *conn, const con_upload_t *upload)
{
    return s_post (self, conn, true, upload->body, upload->size);
}

typedef enum MHD_Result (route_fn) (con_t *self, struct MHD_Connection *conn,
                                    const con_upload_t *upload);

//  Everything the console answers; anything else is 404.
static const struct {
    bool post;                  //  a state change: POST, token in the header
    const char *path;
    route_fn *handler;
} s_routes [] = {
    { false, "/", s_get_page },
    { false, "/events", s_get_events },
    { false, "/api/hold", s_get_payload },
    { true, "/api/approve", s_post_approve },
    { true, "/api/deny", s_post_deny },
};

//  The checks every request passes on its headers, before any body is
//  read: NULL, or why it is refused (and *status).
static const char *
s_refused (con_t *self, struct MHD_Connection *conn, const char *method, unsigned *status)
{
    *status = 403;
    const char *host = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Host");
    if (!host || (strcmp (host, self->host) != 0 && strcmp (host, self->host_alt) != 0)) {
        return "wrong Host header: this console answers only to the address it listens on";
    }
    if (strcmp (method, "POST") == 0) {
        const char *type = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Type");
        if (!s_token_ok (self, MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "X-Bulkhead-Token"))) {
            return "a state change needs the token in the X-Bulkhead-Token header";
        }
        *status = 415;
        return type && strncmp (type, "application/json", 16) == 0
             ? NULL: "a state change is a JSON body (application/json)";
    }
    if (strcmp (method, "GET") == 0) {
        return s_token_ok (self, MHD_lookup_connection_value (conn, MHD_GET_ARGUMENT_KIND, "token"))
             ? NULL: "missing or wrong token: open the URL the console printed";
    }
    *status = 405;
    return "only GET and POST";
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    con_t *self = cls;
    if (!*con_cls) {
        //  Headers only: refuse what is not ours before reading any body.
        unsigned status;
        const char *refused = s_refused (self, conn, method, &status);
        s_guard_mark (self, conn, !refused, refused != NULL, false);
        if (refused) {
            return s_text (self, conn, status, refused);
        }
        *con_cls = calloc (1, sizeof (con_upload_t));
        return *con_cls? MHD_YES: MHD_NO;
    }
    con_upload_t *upload = *con_cls;
    if (*upload_data_size > 0) {
        if (upload->size + *upload_data_size > sizeof upload->body) {
            upload->too_big = true;
        }
        else {
            memcpy (upload->body + upload->size, upload_data, *upload_data_size);
            upload->size += *upload_data_size;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    s_guard_mark (self, conn, true, true, false);
    if (upload->too_big) {
        return s_text (self, conn, 413, "body too big");
    }
    bool post = strcmp (method, "POST") == 0;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes [0]; i++) {
        if (s_routes [i].post == post && strcmp (s_routes [i].path, url) == 0) {
            return s_routes [i].handler (self, conn, upload);
        }
    }
    return s_text (self, conn, 404, "no such page");
}

// ---------------------------------------------------------------------------
//  Start

//  base64 of the SHA-256 of text: its CSP source.
static void
s_csp_hash (char *out, size_t size, const char *text)
{
    uint8_t hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, (const uint8_t *) text, strlen (text));
    sodium_bin2base64 (out, size, hash, sizeof hash, sodium_base64_VARIANT_ORIGINAL);
}

//  The page: console.html with the style and script put inline, and the
//  CSP that allows exactly those two.
static int
s_page (con_t *self)
{
    const char *style = strstr (console_html, "@STYLE@");
    const char *script = strstr (console_html, "@SCRIPT@");
    if (!style || !script || script < style) {
        return -1;
    }
    size_t size = strlen (console_html) + strlen (console_css) + strlen (console_js) + 1;
    self->page = malloc (size);
    if (!self->page) {
        return -1;
    }
    int n = snprintf (self->page, size, "%.*s%s%.*s%s%s", (int) (style - console_html), console_html,
                      console_css, (int) (script - style - 7), style + 7, console_js, script + 8);
    self->page_size = (size_t) n;
    char css [64], js [64];
    s_csp_hash (css, sizeof css, console_css);
    s_csp_hash (js, sizeof js, console_js);
    snprintf (self->csp, sizeof self->csp,
              "default-src 'none'; script-src 'sha256-%s'; style-src 'sha256-%s'; connect-src 'self'; "
              "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", js, css);
    return 0;
}

//  HOST:PORT, IPv4 or localhost. false if it is not one.
static bool
s_parse_listen (const char *text, struct sockaddr_in *addr, char *host, size_t size)
{
    const char *colon = strrchr (text, ':');
    unsigned long long port;
    if (!colon || colon == text || (size_t) (colon - text) >= size || !cmd_number (colon + 1, 0, 65535, &port)) {
        return false;
    }
    snprintf (host, size, "%.*s", (int) (colon - text), text);
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    const char *numeric = strcmp (host, "localhost") == 0? "127.0.0.1": host;
    return inet_pton (AF_INET, numeric, &addr->sin_addr) == 1;
}

typedef struct {
    cmd_conn_t conn;
    const char *prog;
    const char *listen;
    const char *notify;
    const char *policy;
    unsigned notify_interval;
    bool allow_remote;
} con_args_t;

static int
s_args (int argc, char **argv, con_args_t *args)
{
    enum { LISTEN = CMD_OPT_FIRST_FREE, NOTIFY, INTERVAL, REMOTE, POLICY, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "listen", required_argument, NULL, LISTEN },
        { "notify", required_argument, NULL, NOTIFY },
        { "notify-interval", required_argument, NULL, INTERVAL },
        { "allow-remote", no_argument, NULL, REMOTE },
        { "policy", required_argument, NULL, POLICY },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    memset (args, 0, sizeof *args);
    args->prog = argv [0];
    args->listen = "127.0.0.1:7760";
    args->notify_interval = 10;
    cmd_conn_defaults (&args->conn);
    int opt;
    unsigned long long n;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&args->conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case LISTEN: args->listen = optarg; break;
            case NOTIFY: args->notify = optarg; break;
            case REMOTE: args->allow_remote = true; break;
            case POLICY: args->policy = optarg; break;
            case INTERVAL:
                if (!cmd_number (optarg, 1, 3600, &n)) {
                    fprintf (stderr, "bulkhead %s: --notify-interval takes seconds, 1..3600\n", args->prog);
                    return 2;
                }
                args->notify_interval = (unsigned) n;
                break;
            case HELP: fputs (s_help, stdout); return 0;
            default: fputs (s_help, stderr); return 2;
        }
    }
    if (optind != argc) {
        fputs (s_help, stderr);
        return 2;
    }
    return -1;
}

//  Takes the requests queued by HTTP threads and answers each.
static void
s_requests (con_t *self, bus_client_t *client)
{
    char drain [64];
    while (read (self->wake [0], drain, sizeof drain) > 0) {
    }
    while (true) {
        pthread_mutex_lock (&self->lock);
        con_request_t *req = self->n_requests? self->requests [0]: NULL;
        pthread_mutex_unlock (&self->lock);
        if (!req) {
            return;
        }
        s_decide (self, client, req);
        pthread_mutex_lock (&self->lock);
        memmove (self->requests, self->requests + 1, --self->n_requests * sizeof self->requests [0]);
        req->done = true;
        pthread_cond_broadcast (&self->changed);
        pthread_mutex_unlock (&self->lock);
    }
}

//  The main loop: notices from the bus, requests from pages, listings,
//  the notify hook; until SIGINT or SIGTERM.
static void
s_run (con_t *self, bus_client_t **client_p, const con_args_t *args)
{
    bus_notify_t *notify = self->notify;
    int64_t listed_ms = 0;
    int64_t connected_ms = s_mono_ms ();
    bool list_due = true;
    int64_t guard_said_ms = 0;
    uint64_t guard_said = 0;
    while (!s_stop) {
        s_guard (self, &guard_said_ms, &guard_said);
        //  The bus went away (or restarted and forgot this session): a new
        //  session, every few seconds until one works.
        if (!self->bus_ok && s_mono_ms () - connected_ms >= CON_RECONNECT_MS) {
            connected_ms = s_mono_ms ();
            bus_client_t *fresh = cmd_connect (&args->conn, args->prog);
            if (fresh) {
                bus_client_destroy (client_p);
                *client_p = fresh;
                list_due = true;
                listed_ms = 0;
            }
        }
        bus_client_t *client = *client_p;
        if (self->bus_ok && bus_client_reconnects (client) > 0) {
            //  ZeroMQ connected again by itself (the bus restarted): that
            //  connection has said no HELLO, the bus sends it nothing.
            pthread_mutex_lock (&self->lock);
            self->bus_ok = false;
            snprintf (self->bus_error, sizeof self->bus_error, "the bus restarted; connecting again");
            s_publish_locked (self);
            pthread_mutex_unlock (&self->lock);
            connected_ms = 0;
            continue;
        }
        //  Everything the bus sent, also what a control call kept aside.
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        while (bus_client_recv (client, &frame, 0, &err) == 0) {
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_PENDING) {
                list_due = true;
                s_notify (self, frame->pending);
            }
            else
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE) {
                s_on_update (self, frame->hold_update);
                list_due = true;
            }
            bus_client_free (&frame);
        }
        s_requests (self, client);
        int64_t now = s_mono_ms ();
        if ((list_due && now - listed_ms >= CON_LIST_GAP_MS) || now - listed_ms >= CON_LIST_EVERY_MS) {
            s_list (self, client);
            listed_ms = s_mono_ms ();
            list_due = false;
            continue;               //  the listing may have kept notices aside
        }
        if (notify) {
            bus_notify_tick (notify);
        }
        int wait = (int) (listed_ms + (list_due? CON_LIST_GAP_MS: CON_LIST_EVERY_MS) - s_mono_ms ());
        int notify_wait = notify? bus_notify_wait_ms (notify): -1;
        if (notify_wait >= 0 && notify_wait < wait) {
            wait = notify_wait;
        }
        zmq_pollitem_t items [] = {
            { bus_client_socket (client), 0, ZMQ_POLLIN, 0 },
            { NULL, self->wake [0], ZMQ_POLLIN, 0 },
        };
        //  At most a second: a new connection is seen by its monitor only.
        zmq_poll (items, 2, wait < 0? 0: wait > 1000? 1000: wait);
    }
}

int
cmd_console (int argc, char **argv)
{
    con_args_t args;
    int rc = s_args (argc, argv, &args);
    if (rc >= 0) {
        return rc;
    }
    //  A copy of the policy, for what approving unlocks: read once, here.
    bus_policy_t *policy = NULL;
    if (args.policy) {
        bus_error_t err;
        if (bus_policy_load (&policy, args.policy, &err) != 0
        ||  med_graph_new (&s_unlocks_graph, policy, NULL, 0, 0, &err) != 0) {
            bus_policy_destroy (&policy);
            return cmd_error (args.prog, &err);
        }
        s_unlocks_hook = s_unlocks;
    }
    static con_t console;
    con_t *self = &console;
    struct sockaddr_in addr;
    char host [64];
    if (!s_parse_listen (args.listen, &addr, host, sizeof host)) {
        fprintf (stderr, "bulkhead %s: --listen takes HOST:PORT with an IPv4 address or localhost, "
                         "e.g. 127.0.0.1:7760\n", args.prog);
        return s_unlocks_end (&policy, 2);
    }
    bool loopback = (ntohl (addr.sin_addr.s_addr) >> 24) == 127;
    if (!loopback && !args.allow_remote) {
        fprintf (stderr, "bulkhead %s: %s is not a loopback address: the console serves plain HTTP "
                         "to the approver's own browser. Use 127.0.0.1, or --allow-remote behind "
                         "TLS of your own\n", args.prog, host);
        return s_unlocks_end (&policy, 2);
    }
    if (sodium_init () < 0 || s_page (self) != 0) {
        fprintf (stderr, "bulkhead %s: cannot set up the page\n", args.prog);
        return s_unlocks_end (&policy, 1);
    }
    bus_client_t *client = cmd_connect (&args.conn, args.prog);
    if (!client) {
        free (self->page);
        return s_unlocks_end (&policy, 1);
    }
    snprintf (self->agent, sizeof self->agent, "%s", bus_client_agent (client));
    uint8_t raw [CON_TOKEN_BYTES];
    randombytes_buf (raw, sizeof raw);
    sodium_bin2hex (self->token, sizeof self->token, raw, sizeof raw);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->changed, NULL);
    self->history = json_array ();
    self->bus_ok = true;
    if (pipe2 (self->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        fprintf (stderr, "bulkhead %s: pipe: %s\n", args.prog, strerror (errno));
        bus_client_destroy (&client);
        return s_unlocks_end (&policy, 1);
    }
    //  Signals go to this thread: libmicrohttpd's threads start with them
    //  blocked.
    sigset_t block, old;
    sigemptyset (&block);
    sigaddset (&block, SIGINT);
    sigaddset (&block, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &block, &old);
    signal (SIGPIPE, SIG_IGN);
    struct MHD_Daemon *daemon = MHD_start_daemon (
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        ntohs (addr.sin_port), NULL, NULL, s_answer, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned) CON_CONNECTIONS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) CON_CONNECTIONS_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) (CON_KEEPALIVE_S * 4),
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_NOTIFY_CONNECTION, s_on_connection, self,
        MHD_OPTION_END);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (!daemon) {
        fprintf (stderr, "bulkhead %s: cannot listen on %s: %s\n", args.prog, args.listen, strerror (errno));
        bus_client_destroy (&client);
        return s_unlocks_end (&policy, 1);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info? info->port: ntohs (addr.sin_port);
    snprintf (self->host, sizeof self->host, "%s:%u", host, port);
    snprintf (self->host_alt, sizeof self->host_alt, "%s:%u", loopback? "localhost": host, port);
    self->notify = args.notify? bus_notify_new (args.notify, args.notify_interval): NULL;
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    printf ("bulkhead console: the approvals of %s, at\n    http://%s/?token=%s\n", self->agent,
            self->host, self->token);
    fflush (stdout);
    s_run (self, &client, &args);

    //  Stop: wake every stream and every waiting request, then the server.
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    for (size_t i = 0; i < self->n_requests; i++) {
        self->requests [i]->done = true;
    }
    self->n_requests = 0;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->lock);
    MHD_stop_daemon (daemon);
    bus_notify_destroy (&self->notify);
    for (size_t i = 0; i < self->n_holds; i++) {
        s_hold_free (&self->holds [i]);
    }
    json_decref (self->history);
    free (self->snapshot);
    free (self->page);
    close (self->wake [0]);
    close (self->wake [1]);
    bus_client_destroy (&client);
    sodium_memzero (self->token, sizeof self->token);
    return s_unlocks_end (&policy, 0);
}
