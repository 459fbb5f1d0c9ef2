/*  cmd_approve.c: pending, approve, deny, grant: the approval queue, run
    with the approver's own key against the running bus.

    An approver approves bytes: the held record's stored bytes, which the
    hold's digest names and which the recipient will be delivered. So
    pending and approve fetch those bytes (CONTROL_GET_HOLD, or the notice's
    first 4 KiB when that is all of them), check them against the digest
    before showing anything, show every field that reaches the recipient
    (escaped: bus_print.h), and approve the digest of what they showed. */
#include "cmd.h"
#include "bus_notify.h"
#include "bus_store.h"

#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

//  How much of a payload is shown unless --full.
#define CMD_PAYLOAD_SHOWN   4096

//  The indent of a payload's lines: none of them can pass for a line of
//  the view around it.
#define CMD_BLOCK           "      | "

static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static uint64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

//  Sends one approval-queue command and returns the reply (or NULL after
//  printing the error).
static Bulkhead__V1__Frame *
s_call (bus_client_t *client, const Bulkhead__V1__Control *control, const cmd_conn_t *conn,
        const char *prog)
{
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    if (bus_client_control (client, control, &reply, conn->timeout_ms, &err) != 0) {
        cmd_error (prog, &err);
        return NULL;
    }
    if (reply->body_case != BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY) {
        cmd_reply_error (prog, reply->error->code, reply->error->reason);
        bus_client_free (&reply);
        return NULL;
    }
    return reply;
}

//  One line of the view: a label, then the value escaped onto the line.
static void
s_row (const char *label, const char *value)
{
    printf ("    %-14s", label);
    bus_print_line (stdout, value);
    printf ("\n");
}

//  The checks every approver's tool makes on a held record's bytes before
//  it shows any of them: they hash to the digest the bus names (digest gets
//  that hash), they are what the listing carried, and they are the SEND
//  the hold names. The decoded record (caller frees), or NULL with *wrong
//  saying which check failed.
Bulkhead__V1__Record *
cmd_hold_check (const Bulkhead__V1__Pending *p, const uint8_t *bytes, size_t size,
                uint8_t digest [32], const char **wrong)
{
    bus_hash (digest, bytes, size);
    *wrong = NULL;
    if (p->digest.len != 32 || sodium_memcmp (digest, p->digest.data, 32) != 0) {
        *wrong = "its record does not match the digest the bus names";
        return NULL;
    }
    if ((p->has_record_size && p->record_size != size)
    ||  (p->has_record && (p->record.len > size || memcmp (p->record.data, bytes, p->record.len) != 0))) {
        *wrong = "the listing and the record the bus sent disagree";
        return NULL;
    }
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, size, bytes);
    if (!rec || rec->kind != BULKHEAD__V1__RECORD_KIND__RECORD_SEND
    ||  (p->has_seq && rec->seq != p->seq)
    ||  !rec->sender || strcmp (rec->sender, p->sender) != 0
    ||  !rec->recipient || strcmp (rec->recipient, p->recipient) != 0) {
        if (rec) {
            bulkhead__v1__record__free_unpacked (rec, NULL);
        }
        *wrong = "its record is not the message the hold names";
        return NULL;
    }
    return rec;
}

//  The held message of pending entry p, fetched and checked: the decoded
//  record (caller frees) and the digest of its bytes, or NULL after saying
//  why (nothing of the record is shown then).
static Bulkhead__V1__Record *
s_fetch (bus_client_t *client, const cmd_conn_t *conn, const char *prog,
         const Bulkhead__V1__Pending *p, uint8_t digest [32])
{
    Bulkhead__V1__Frame *reply = NULL;
    const uint8_t *bytes;
    size_t size;
    if (p->has_record && p->has_record_size && p->record.len == p->record_size) {
        bytes = p->record.data;         //  the listing carries all of it
        size = p->record.len;
    }
    else {
        Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD;
        control.id = p->approval_id;
        reply = s_call (client, &control, conn, prog);
        if (!reply) {
            return NULL;
        }
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        if (strcmp (r->code, "OK") != 0 || !r->has_record) {
            cmd_reply_error (prog, r->code, strcmp (r->code, "OK") == 0
                             ? "the bus sent no record for this hold": r->reason);
            bus_client_free (&reply);
            return NULL;
        }
        bytes = r->record.data;
        size = r->record.len;
    }
    const char *wrong = NULL;
    Bulkhead__V1__Record *rec = cmd_hold_check (p, bytes, size, digest, &wrong);
    bus_client_free (&reply);
    if (!rec) {
        fprintf (stderr, "bulkhead %s: ", prog);
        bus_print_line (stderr, p->approval_id);
        fprintf (stderr, ": MISMATCH: %s; nothing of it is shown and nothing can be approved. "
                         "Tell the bus's operator (bulkhead verify --data DIR checks the log)\n",
                 wrong);
        return NULL;
    }
    return rec;
}

//  Shows the held message: the hold (id, votes, time left, digest), then
//  every field the recipient will be delivered, the payload last.
static void
s_show (const Bulkhead__V1__Pending *p, const Bulkhead__V1__Record *rec,
        const uint8_t digest [32], bool full)
{
    long left = p->has_expires_us? (long) ((int64_t) (p->expires_us - s_now_us ()) / 1000000): 0;
    bool restricted = rec->has_restricted && rec->restricted;
    bus_print_line (stdout, p->approval_id);
    printf ("  ");
    bus_print_line (stdout, rec->sender);
    printf (" -> ");
    bus_print_line (stdout, rec->recipient);
    printf ("  ");
    bus_print_line (stdout, rec->intent_class);
    printf ("  votes %zu/%u", p->n_votes, p->quorum);
    for (size_t i = 0; i < p->n_votes; i++) {
        printf ("%s", i? ",": " (");
        bus_print_line (stdout, p->votes [i]);
    }
    printf ("%s  expires in %lds%s\n", p->n_votes? ")": "", left,
            restricted? "  RESTRICTED": "");
    if (restricted) {
        printf ("    %-14sit comes from or depends on untrusted content: ", "RESTRICTED");
        bus_print_line (stdout, rec->restricted_why? rec->restricted_why: "no detail given");
        printf ("\n");
    }
    else {
        s_row ("restricted", "no");
    }
    if (p->blocked) {
        //  The bus says this approver may not decide on it, and why.
        s_row ("YOU MAY NOT", p->blocked);
    }
    char seq [32];
    snprintf (seq, sizeof seq, "%llu", (unsigned long long) rec->seq);
    s_row ("seq", seq);
    s_row ("sender", rec->sender);
    s_row ("sender key", rec->key_fp);
    s_row ("recipient", rec->recipient);
    s_row ("intent", rec->intent);
    s_row ("class", rec->intent_class);
    s_row ("action", rec->action);
    s_row ("resource", rec->resource);
    s_row ("tool", rec->tool);
    s_row ("content type", rec->content_type);
    s_row ("message id", rec->message_id);
    printf ("    %-14s", "causes");
    for (size_t i = 0; i < rec->n_causes; i++) {
        printf ("%s%llu", i? ", ": "", (unsigned long long) rec->causes [i]);
    }
    printf ("%s\n", rec->n_causes? "": "-");
    s_row ("justification", rec->justification? rec->justification: "(none given)");
    size_t size = rec->has_payload? rec->payload.len: 0;
    printf ("    %-14s", "payload");
    if (!rec->has_payload) {
        printf ("none\n");
    }
    else {
        char hex [17];
        uint8_t hash [32];
        bus_hash (hash, rec->payload.data, size);
        sodium_bin2hex (hex, sizeof hex, hash, 8);
        bool cut = !full && size > CMD_PAYLOAD_SHOWN;
        printf ("%zu bytes, BLAKE2b-256 %s..., ", size, hex);
        if (cut) {
            printf ("the first %d shown (--full shows all)\n", CMD_PAYLOAD_SHOWN);
        }
        else {
            printf ("all shown\n");
        }
        bus_print_how_t how = { 0, cut? CMD_PAYLOAD_SHOWN: 0, CMD_BLOCK };
        printf ("%s", CMD_BLOCK);
        bus_print (stdout, &how, rec->payload.data, size);
        printf ("\n");
    }
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, digest, 32);
    s_row ("digest", hex);
}

static const char *s_pending_help =
    "usage: bulkhead pending [ID] [--full] [options]\n"
    "       bulkhead pending --follow [--notify CMD] [--notify-interval S] [options]\n\n"
    "Lists the held messages this approver may decide on (or only ID), each as\n"
    "exactly what the recipient will be delivered: the CLI fetches the held\n"
    "record's bytes, checks them against the digest an approval names, and only\n"
    "then shows the hold (id, sender -> recipient, class, votes, time left),\n"
    "whether it is RESTRICTED (from untrusted content, and why), and every field:\n"
    "seq, sender and its key, recipient, intent, class, action, resource, tool,\n"
    "content type, message id, causes, the sender's justification, the payload\n"
    "(its size, a hash, and its first 4096 bytes; each of its lines after \"| \"),\n"
    "and the digest. A record that does not match its digest is an error (exit 1)\n"
    "and nothing of it is shown.\n\n"
    "What agents wrote is shown escaped: control bytes and bytes that are not\n"
    "UTF-8 as \\xHH, C1, bidi and invisible characters as \\uXXXX, a backslash as\n"
    "\\\\, and a payload cut short ends in \\[N more bytes]. Fields other than the\n"
    "payload stay on their line (newline and tab as \\n \\t).\n\n"
    "  --full             the whole payload, not only its first 4096 bytes\n"
    "  --follow           then stay connected and print one line per new hold\n"
    "                     (PENDING ...) and per vote or decision on one (UPDATE ...),\n"
    "                     until interrupted\n"
    "  --notify CMD       with --follow: run CMD (/bin/sh -c) with one JSON object a\n"
    "                     line on its standard input for each new hold, batched: at\n"
    "                     most one run at a time and one per --notify-interval; what\n"
    "                     is queued at exit still runs\n"
    "  --notify-interval S  seconds between runs of CMD, 1..3600 (default 10)\n"
    CMD_CONN_HELP;

static const char *s_approve_help =
    "usage: bulkhead approve ID [--digest HEX] [--full] [options]\n\n"
    "Approves held message ID. It is shown first as bulkhead pending shows it\n"
    "(fetched and checked against its digest; --full for the whole payload), and\n"
    "the approval names the digest of exactly those bytes, so the bus releases\n"
    "nothing but what was shown. With --digest, the approval is refused unless the\n"
    "message still has that digest (the one you read with bulkhead pending). An\n"
    "approver counts once, cannot approve its own message, and cannot approve a\n"
    "denied or expired one. With enough approvals (the class's quorum) the message\n"
    "is delivered, once.\n\n"
    "  --digest HEX       the digest shown by bulkhead pending\n"
    "  --full             show the whole payload, not only its first 4096 bytes\n"
    CMD_CONN_HELP;

static const char *s_deny_help =
    "usage: bulkhead deny ID --reason TEXT [options]\n\n"
    "Denies held message ID; the sender is told, with the reason.\n\n"
    "  --reason TEXT      why (the sender and the log see it)\n"
    CMD_CONN_HELP;

//  What pending, approve and deny were asked.
typedef struct {
    const char *prog;
    cmd_conn_t conn;
    const char *id;
    const char *digest_hex;
    const char *reason;
    bool full;
    bool follow;
    const char *notify;
    unsigned notify_interval;
} s_ask_t;

//  ID first (if any), then --digest / --reason / --full and the connection
//  options. Returns -1 to go on, else the exit code.
static int
s_parse (int argc, char **argv, const char *help, s_ask_t *ask)
{
    enum { DIGEST = CMD_OPT_FIRST_FREE, REASON, FULL, FOLLOW, NOTIFY, INTERVAL, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "digest", required_argument, NULL, DIGEST },
        { "reason", required_argument, NULL, REASON },
        { "full", no_argument, NULL, FULL },
        { "follow", no_argument, NULL, FOLLOW },
        { "notify", required_argument, NULL, NOTIFY },
        { "notify-interval", required_argument, NULL, INTERVAL },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    memset (ask, 0, sizeof *ask);
    ask->prog = argv [0];
    cmd_conn_defaults (&ask->conn);
    ask->notify_interval = 10;
    unsigned long long n;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&ask->conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case DIGEST: ask->digest_hex = optarg; break;
            case REASON: ask->reason = optarg; break;
            case FULL: ask->full = true; break;
            case FOLLOW: ask->follow = true; break;
            case NOTIFY: ask->notify = optarg; break;
            case INTERVAL:
                if (!cmd_number (optarg, 1, 3600, &n)) {
                    fprintf (stderr, "bulkhead %s: --notify-interval takes seconds, 1..3600\n", ask->prog);
                    return 2;
                }
                ask->notify_interval = (unsigned) n;
                break;
            case HELP: return s_help (help, true);
            default: return s_help (help, false);
        }
    }
    if (optind < argc) {
        ask->id = argv [optind++];
    }
    return optind == argc? -1: s_help (help, false);
}

//  LIST-PENDING as this approver (reply owned by the caller), or NULL.
static Bulkhead__V1__Frame *
s_list (bus_client_t *client, const s_ask_t *ask)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    Bulkhead__V1__Frame *reply = s_call (client, &control, &ask->conn, ask->prog);
    if (reply && strcmp (reply->control_reply->code, "OK") != 0) {
        cmd_reply_error (ask->prog, reply->control_reply->code, reply->control_reply->reason);
        bus_client_free (&reply);
    }
    return reply;
}

//  The entry of id in a listing, or NULL.
static const Bulkhead__V1__Pending *
s_entry (const Bulkhead__V1__ControlReply *r, const char *id)
{
    for (size_t i = 0; i < r->n_pending; i++) {
        if (strcmp (r->pending [i]->approval_id, id) == 0) {
            return r->pending [i];
        }
    }
    return NULL;
}

//  id is not in this approver's listing: the bus says why (unknown,
//  denied, expired, not yours), or it is past what a listing shows.
static int
s_not_listed (bus_client_t *client, const s_ask_t *ask)
{
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GET_HOLD;
    control.id = (char *) ask->id;
    Bulkhead__V1__Frame *reply = s_call (client, &control, &ask->conn, ask->prog);
    if (reply) {
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        if (strcmp (r->code, "OK") != 0) {
            cmd_reply_error (ask->prog, r->code, r->reason);
        }
        else {
            fprintf (stderr, "bulkhead %s: ", ask->prog);
            bus_print_line (stderr, ask->id);
            fprintf (stderr, " waits, but not among the holds the bus lists (at most 1024); "
                             "decide on others first\n");
        }
        bus_client_free (&reply);
    }
    return 1;
}

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

//  pending --follow: one line per notice, and the notify hook, until
//  SIGINT or SIGTERM. 0, or 1 if the bus went away.
static int
s_follow (bus_client_t *client, const s_ask_t *ask)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
    bus_notify_t *notify = ask->notify? bus_notify_new (ask->notify, ask->notify_interval): NULL;
    fflush (stdout);
    while (!s_stop) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        while (bus_client_recv (client, &frame, 0, &err) == 0) {
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_PENDING) {
                const Bulkhead__V1__Pending *p = frame->pending;
                printf ("PENDING ");
                bus_print_line (stdout, p->approval_id);
                printf (" ");
                bus_print_line (stdout, p->sender);
                printf (" -> ");
                bus_print_line (stdout, p->recipient);
                printf (" ");
                bus_print_line (stdout, p->intent_class);
                printf ("%s: ", p->has_restricted && p->restricted? " RESTRICTED": "");
                bus_print_line (stdout, p->justification? p->justification: "(no justification)");
                if (p->blocked) {
                    printf ("  (YOU MAY NOT: ");
                    bus_print_line (stdout, p->blocked);
                    printf (")");
                }
                printf ("\n");
                //  Never its own messages: nobody needs a chat about those.
                if (notify && strcmp (p->sender, bus_client_agent (client)) != 0) {
                    bus_notify_pending (notify, p);
                }
            }
            else
            if (frame->body_case == BULKHEAD__V1__FRAME__BODY_HOLD_UPDATE) {
                const Bulkhead__V1__HoldUpdate *u = frame->hold_update;
                printf ("UPDATE ");
                bus_print_line (stdout, u->approval_id);
                printf (" ");
                bus_print_line (stdout, u->state);
                printf (" votes %zu/%u: ", u->n_votes, u->quorum);
                bus_print_line (stdout, u->reason);
                printf ("\n");
            }
            bus_client_free (&frame);
        }
        fflush (stdout);
        if (notify) {
            bus_notify_tick (notify);
        }
        int wait = notify? bus_notify_wait_ms (notify): -1;
        zmq_pollitem_t item = { bus_client_socket (client), 0, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, wait < 0 || wait > 1000? 1000: wait);
    }
    bus_notify_destroy (&notify);
    return 0;
}

int
cmd_pending (int argc, char **argv)
{
    s_ask_t ask;
    int rc = s_parse (argc, argv, s_pending_help, &ask);
    if (rc >= 0) {
        return rc;
    }
    if (ask.digest_hex || ask.reason || (ask.notify && !ask.follow) || (ask.follow && ask.id)) {
        return s_help (s_pending_help, false);
    }
    bus_client_t *client = cmd_connect (&ask.conn, ask.prog);
    if (!client) {
        return 1;
    }
    Bulkhead__V1__Frame *reply = s_list (client, &ask);
    if (!reply) {
        bus_client_destroy (&client);
        return 1;
    }
    const Bulkhead__V1__ControlReply *r = reply->control_reply;
    int exit_code = 0;
    if (ask.id && !s_entry (r, ask.id)) {
        exit_code = s_not_listed (client, &ask);
    }
    for (size_t i = 0; i < r->n_pending; i++) {
        const Bulkhead__V1__Pending *p = r->pending [i];
        if (ask.id && strcmp (p->approval_id, ask.id) != 0) {
            continue;
        }
        uint8_t digest [32];
        Bulkhead__V1__Record *rec = s_fetch (client, &ask.conn, ask.prog, p, digest);
        if (!rec) {
            exit_code = 1;
            continue;
        }
        s_show (p, rec, digest, ask.full);
        printf ("\n");
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    if (!ask.id) {
        bus_print_line (stdout, r->reason);
        printf ("\n");
    }
    bus_client_free (&reply);
    if (ask.follow) {
        exit_code = s_follow (client, &ask);
    }
    bus_client_destroy (&client);
    return exit_code;
}

int
cmd_approve (int argc, char **argv)
{
    s_ask_t ask;
    int rc = s_parse (argc, argv, s_approve_help, &ask);
    if (rc >= 0) {
        return rc;
    }
    if (!ask.id || ask.reason || ask.follow || ask.notify) {
        return s_help (s_approve_help, false);
    }
    uint8_t named [32];
    if (ask.digest_hex && (strlen (ask.digest_hex) != 64
                       ||  sodium_hex2bin (named, sizeof named, ask.digest_hex, 64, NULL, NULL, NULL) != 0)) {
        fprintf (stderr, "bulkhead %s: --digest takes the 64 hex characters bulkhead pending shows\n",
                 ask.prog);
        return 2;
    }
    bus_client_t *client = cmd_connect (&ask.conn, ask.prog);
    if (!client) {
        return 1;
    }
    Bulkhead__V1__Frame *list = s_list (client, &ask);
    const Bulkhead__V1__Pending *p = list? s_entry (list->control_reply, ask.id): NULL;
    if (!p) {
        if (list) {
            s_not_listed (client, &ask);
        }
        bus_client_free (&list);
        bus_client_destroy (&client);
        return 1;
    }
    uint8_t digest [32];
    Bulkhead__V1__Record *rec = s_fetch (client, &ask.conn, ask.prog, p, digest);
    int exit_code = 1;
    if (rec) {
        printf ("approving:\n");
        s_show (p, rec, digest, ask.full);
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    if (rec && ask.digest_hex && sodium_memcmp (named, digest, 32) != 0) {
        fprintf (stderr, "bulkhead %s: ", ask.prog);
        bus_print_line (stderr, ask.id);
        fprintf (stderr, " is not the message --digest names (that is not its digest); "
                         "nothing approved. Read it again: bulkhead pending ID\n");
    }
    else
    if (rec) {
        //  The digest of the bytes just shown: the bus releases only those.
        Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
        control.id = (char *) ask.id;
        control.has_digest = true;
        control.digest.data = digest;
        control.digest.len = sizeof digest;
        Bulkhead__V1__Frame *reply = s_call (client, &control, &ask.conn, ask.prog);
        if (reply) {
            const Bulkhead__V1__ControlReply *r = reply->control_reply;
            exit_code = strcmp (r->code, "OK") == 0? 0: 1;
            cmd_reply (exit_code? stderr: stdout, NULL, r->code, r->reason);
            bus_client_free (&reply);
        }
    }
    bus_client_free (&list);
    bus_client_destroy (&client);
    return exit_code;
}

int
cmd_deny (int argc, char **argv)
{
    s_ask_t ask;
    int rc = s_parse (argc, argv, s_deny_help, &ask);
    if (rc >= 0) {
        return rc;
    }
    if (!ask.id || !ask.reason || ask.digest_hex || ask.full || ask.follow || ask.notify) {
        return s_help (s_deny_help, false);
    }
    bus_client_t *client = cmd_connect (&ask.conn, ask.prog);
    if (!client) {
        return 1;
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DENY;
    control.id = (char *) ask.id;
    control.reason = (char *) ask.reason;
    int exit_code = 1;
    Bulkhead__V1__Frame *reply = s_call (client, &control, &ask.conn, ask.prog);
    if (reply) {
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        exit_code = strcmp (r->code, "OK") == 0? 0: 1;
        cmd_reply (exit_code? stderr: stdout, NULL, r->code, r->reason);
        bus_client_free (&reply);
    }
    bus_client_destroy (&client);
    return exit_code;
}

static const char *s_grant_help =
    "usage: bulkhead grant --sender A --to R --class C [--action X] [--count N] [--minutes T] [options]\n"
    "       bulkhead grant --revoke ID [options]\n\n"
    "A standing grant, against approval fatigue: lets the next N messages, or those of\n"
    "the next T minutes (both: whichever ends first), of exactly one sender, recipient,\n"
    "class and action through without a hold, as approved by you. Prints the grant id.\n"
    "The bus refuses a grant wider than the policy's edge, for a class you may not\n"
    "approve, for your own messages, or for a class that needs more than one approval.\n"
    "Restricted messages are held anyway. A grant by count alone ends after a day.\n"
    "Every grant, use, end and revocation is in the log (bulkhead log --kind hold).\n\n"
    "  --sender A         the sending agent\n"
    "  --to R             the recipient\n"
    "  --class C          the intent class the bus decides for those messages\n"
    "  --action X         exactly this action; without it, only messages with no action\n"
    "  --count N          this many messages, 1..1000\n"
    "  --minutes T        for this long, 1..1440\n"
    "  --revoke ID        end grant ID now (its approver or an operator)\n"
    CMD_CONN_HELP;

int
cmd_grant (int argc, char **argv)
{
    enum { SENDER = CMD_OPT_FIRST_FREE, TO, CLASS, ACTION, COUNT, MINUTES, REVOKE, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "sender", required_argument, NULL, SENDER },
        { "to", required_argument, NULL, TO },
        { "class", required_argument, NULL, CLASS },
        { "action", required_argument, NULL, ACTION },
        { "count", required_argument, NULL, COUNT },
        { "minutes", required_argument, NULL, MINUTES },
        { "revoke", required_argument, NULL, REVOKE },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    const char *prog = argv [0];
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT;
    unsigned long long n;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case SENDER: control.agent = optarg; break;
            case TO: control.recipient = optarg; break;
            case CLASS: control.intent_class = optarg; break;
            case ACTION: control.action = optarg; break;
            case REVOKE: control.id = optarg; break;
            case COUNT:
                if (!cmd_number (optarg, 1, 1000, &n)) {
                    fprintf (stderr, "bulkhead %s: --count takes a number of messages, 1..1000\n", prog);
                    return 2;
                }
                control.has_count = true;
                control.count = (uint32_t) n;
                break;
            case MINUTES:
                if (!cmd_number (optarg, 1, 1440, &n)) {
                    fprintf (stderr, "bulkhead %s: --minutes takes 1..1440\n", prog);
                    return 2;
                }
                control.has_minutes = true;
                control.minutes = (uint32_t) n;
                break;
            case HELP: return s_help (s_grant_help, true);
            default: return s_help (s_grant_help, false);
        }
    }
    bool revoke = control.id != NULL;
    bool scoped = control.agent || control.recipient || control.intent_class || control.action
               || control.has_count || control.has_minutes;
    if (optind != argc || (revoke && scoped)
    ||  (!revoke && !(control.agent && control.recipient && control.intent_class
                      && (control.has_count || control.has_minutes)))) {
        return s_help (s_grant_help, false);
    }
    bus_client_t *client = cmd_connect (&conn, prog);
    if (!client) {
        return 1;
    }
    int exit_code = 1;
    Bulkhead__V1__Frame *reply = s_call (client, &control, &conn, prog);
    if (reply) {
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        exit_code = strcmp (r->code, "OK") == 0? 0: 1;
        if (exit_code) {
            cmd_reply_error (prog, r->code, r->reason);
        }
        else
        if (revoke) {
            cmd_reply (stdout, NULL, r->code, r->reason);
        }
        else {
            //  The id alone on stdout, for scripts; what was granted on stderr.
            bus_print_line (stdout, r->n_lines? r->lines [0]: "");
            printf ("\n");
            fflush (stdout);
            bus_print_line (stderr, r->reason);
            fprintf (stderr, "\n");
        }
        bus_client_free (&reply);
    }
    bus_client_destroy (&client);
    return exit_code;
}
