/*  cmd_approve.c: pending, approve, deny, grant: the approval queue, run
    with the approver's own key against the running bus. */
#include "cmd.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void
s_print_pending (const Bulkhead__V1__Pending *p)
{
    char digest [65];
    sodium_bin2hex (digest, sizeof digest, p->digest.data, p->digest.len < 32? p->digest.len: 32);
    long left = p->has_expires_us? (long) ((int64_t) (p->expires_us - s_now_us ()) / 1000000): 0;
    printf ("%s  %s -> %s  %s%s%s%s%s  votes %zu/%u  expires in %lds%s\n", p->approval_id, p->sender,
            p->recipient, p->intent_class, p->action? "  action=": "", p->action? p->action: "",
            p->resource? "  resource=": "", p->resource? p->resource: "", p->n_votes, p->quorum,
            left, p->restricted? "  RESTRICTED (from untrusted content)": "");
    printf ("    why: %s\n    digest: %s\n", p->justification? p->justification: "(no justification given)",
            digest);
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
        fprintf (stderr, "bulkhead %s: %s: %s\n", prog, reply->error->code, reply->error->reason);
        bus_client_free (&reply);
        return NULL;
    }
    return reply;
}

static const char *s_pending_help =
    "usage: bulkhead pending [options]\n\n"
    "Lists the held messages this approver may decide on: id, sender -> recipient,\n"
    "class, action, votes, time left, whether it is restricted, the sender's\n"
    "justification, and the digest that an approval names.\n\n"
    CMD_CONN_HELP;

static const char *s_approve_help =
    "usage: bulkhead approve ID [--digest HEX] [options]\n\n"
    "Approves held message ID. The approval names the digest of the exact message;\n"
    "without --digest, the message is shown and its current digest used. An\n"
    "approver counts once, cannot approve its own message, and cannot approve a\n"
    "denied or expired one. With enough approvals (the class's quorum) the message\n"
    "is delivered, once.\n\n"
    "  --digest HEX       the digest shown by bulkhead pending\n"
    CMD_CONN_HELP;

static const char *s_deny_help =
    "usage: bulkhead deny ID --reason TEXT [options]\n\n"
    "Denies held message ID; the sender is told, with the reason.\n\n"
    "  --reason TEXT      why (the sender and the log see it)\n"
    CMD_CONN_HELP;

//  pending, approve and deny share option parsing: ID first (if any),
//  then --digest / --reason and the connection options.
static int
s_queue_command (int argc, char **argv, Bulkhead__V1__ControlOp op, const char *help)
{
    enum { DIGEST = CMD_OPT_FIRST_FREE, REASON, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "digest", required_argument, NULL, DIGEST },
        { "reason", required_argument, NULL, REASON },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    const char *prog = argv [0];
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    const char *digest_hex = NULL;
    const char *reason = NULL;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case DIGEST: digest_hex = optarg; break;
            case REASON: reason = optarg; break;
            case HELP: return s_help (help, true);
            default: return s_help (help, false);
        }
    }
    bool takes_id = op != BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    if (optind != argc - (takes_id? 1: 0)
    ||  (op == BULKHEAD__V1__CONTROL_OP__CONTROL_DENY && !reason)) {
        return s_help (help, false);
    }
    const char *id = takes_id? argv [optind]: NULL;
    uint8_t digest [32];
    if (digest_hex && (sodium_hex2bin (digest, sizeof digest, digest_hex, strlen (digest_hex),
                                       NULL, NULL, NULL) != 0 || strlen (digest_hex) != 64)) {
        fprintf (stderr, "bulkhead %s: --digest takes the 64 hex characters bulkhead pending shows\n", prog);
        return 2;
    }
    bus_client_t *client = cmd_connect (&conn, prog);
    if (!client) {
        return 1;
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    int exit_code = 1;
    if (op == BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING
    ||  (op == BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE && !digest_hex)) {
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
        Bulkhead__V1__Frame *reply = s_call (client, &control, &conn, prog);
        if (!reply) {
            bus_client_destroy (&client);
            return 1;
        }
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        bool found = false;
        for (size_t i = 0; i < r->n_pending; i++) {
            if (!id || strcmp (r->pending [i]->approval_id, id) == 0) {
                printf ("%s", id? "approving: ": "");
                s_print_pending (r->pending [i]);
                if (id && r->pending [i]->digest.len == 32) {
                    memcpy (digest, r->pending [i]->digest.data, 32);
                    found = true;
                }
            }
        }
        if (!id) {
            printf ("%s\n", r->reason);
            exit_code = strcmp (r->code, "OK") == 0? 0: 1;
            if (exit_code) {
                fprintf (stderr, "bulkhead %s: %s: %s\n", prog, r->code, r->reason);
            }
            bus_client_free (&reply);
            bus_client_destroy (&client);
            return exit_code;
        }
        bus_client_free (&reply);
        if (!found) {
            //  Let the bus say why (denied, expired, unknown, not yours).
            memset (digest, 0, sizeof digest);
        }
    }
    control.op = op;
    control.id = (char *) id;
    control.reason = (char *) reason;
    if (op == BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE) {
        control.has_digest = true;
        control.digest.data = digest;
        control.digest.len = sizeof digest;
    }
    Bulkhead__V1__Frame *reply = s_call (client, &control, &conn, prog);
    if (reply) {
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        exit_code = strcmp (r->code, "OK") == 0? 0: 1;
        fprintf (exit_code? stderr: stdout, "%s: %s\n", r->code, r->reason);
        bus_client_free (&reply);
    }
    bus_client_destroy (&client);
    return exit_code;
}

int
cmd_pending (int argc, char **argv)
{
    return s_queue_command (argc, argv, BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING, s_pending_help);
}

int
cmd_approve (int argc, char **argv)
{
    return s_queue_command (argc, argv, BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE, s_approve_help);
}

int
cmd_deny (int argc, char **argv)
{
    return s_queue_command (argc, argv, BULKHEAD__V1__CONTROL_OP__CONTROL_DENY, s_deny_help);
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
            fprintf (stderr, "bulkhead %s: %s: %s\n", prog, r->code, r->reason);
        }
        else
        if (revoke) {
            printf ("%s: %s\n", r->code, r->reason);
        }
        else {
            //  The id alone on stdout, for scripts; what was granted on stderr.
            printf ("%s\n", r->n_lines? r->lines [0]: "");
            fflush (stdout);
            fprintf (stderr, "%s\n", r->reason);
        }
        bus_client_free (&reply);
    }
    bus_client_destroy (&client);
    return exit_code;
}
