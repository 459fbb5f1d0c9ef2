/*  cmd_agent.c: send, recv, and the operator commands (reload, taint,
    clear, declassify, purge): commands that speak to the running bus as one
    agent, with that agent's own key. */
#include "cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_verdicts [] = { "?", "delivered", "queued", "held", "denied" };

static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static char *
s_read_file (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        return NULL;
    }
    char *data = NULL;
    size_t alloc = 0;
    *size = 0;
    while (true) {
        if (*size == alloc) {
            alloc = alloc? alloc * 2: 4096;
            char *grown = realloc (data, alloc);
            if (!grown || alloc > (64u << 20)) {
                free (grown? grown: data);
                fclose (file);
                return NULL;
            }
            data = grown;
        }
        size_t n = fread (data + *size, 1, alloc - *size, file);
        if (n == 0) {
            break;
        }
        *size += n;
    }
    fclose (file);
    return data;
}

static const char *s_send_help =
    "usage: bulkhead send --to AGENT --intent CLASS [options]\n\n"
    "Sends one message as the agent whose key is given and prints the bus's verdict:\n"
    "  delivered|queued|held|denied seq=N code=WORD: sentence\n"
    "Exit 0 if delivered, queued or held; 1 if denied or on error; 2 on bad usage.\n\n"
    "  --to AGENT         recipient\n"
    "  --intent CLASS     what the sender says this is (the bus decides the class)\n"
    "  --action NAME      e.g. transfer.create\n"
    "  --resource TEXT    what it acts on\n"
    "  --payload TEXT     the content (or --payload-file FILE)\n"
    "  --content-type T   e.g. text/plain\n"
    "  --id ID            message id (default random); a resent id is not delivered twice\n"
    "  --untrusted SRC    the content came from outside (SRC names where)\n"
    "  --cause SEQ        log sequence of a message that caused this one (repeatable)\n"
    "  --justification T  what you are about to do and why (approvers read it)\n"
    "  --tool NAME        the tool that produced it\n"
    "  --claim-sender A   put a sender name in the message (the bus checks it: SPOOF)\n"
    CMD_CONN_HELP;

int
cmd_send (int argc, char **argv)
{
    enum { TO = CMD_OPT_FIRST_FREE, INTENT, ACTION, RESOURCE, PAYLOAD, PAYLOAD_FILE, CTYPE,
           ID, UNTRUSTED, CAUSE, JUSTIFICATION, TOOL, CLAIM, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "to", required_argument, NULL, TO },
        { "intent", required_argument, NULL, INTENT },
        { "action", required_argument, NULL, ACTION },
        { "resource", required_argument, NULL, RESOURCE },
        { "payload", required_argument, NULL, PAYLOAD },
        { "payload-file", required_argument, NULL, PAYLOAD_FILE },
        { "content-type", required_argument, NULL, CTYPE },
        { "id", required_argument, NULL, ID },
        { "untrusted", required_argument, NULL, UNTRUSTED },
        { "cause", required_argument, NULL, CAUSE },
        { "justification", required_argument, NULL, JUSTIFICATION },
        { "tool", required_argument, NULL, TOOL },
        { "claim-sender", required_argument, NULL, CLAIM },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    uint64_t causes [64];
    char *file_payload = NULL;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        unsigned long long n;
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case TO: send.recipient = optarg; break;
            case INTENT: send.intent = optarg; break;
            case ACTION: send.action = optarg; break;
            case RESOURCE: send.resource = optarg; break;
            case CTYPE: send.content_type = optarg; break;
            case ID: send.message_id = optarg; break;
            case JUSTIFICATION: send.justification = optarg; break;
            case TOOL: send.tool = optarg; break;
            case CLAIM: send.sender = optarg; break;
            case PAYLOAD:
                send.has_payload = true;
                send.payload.data = (uint8_t *) optarg;
                send.payload.len = strlen (optarg);
                break;
            case PAYLOAD_FILE:
                free (file_payload);
                file_payload = s_read_file (optarg, &send.payload.len);
                if (!file_payload) {
                    fprintf (stderr, "bulkhead send: cannot read %s (or it is over 64 MiB)\n", optarg);
                    return 2;
                }
                send.has_payload = true;
                send.payload.data = (uint8_t *) file_payload;
                break;
            case UNTRUSTED:
                send.has_provenance = true;
                send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
                send.source = optarg;
                break;
            case CAUSE:
                if (!cmd_number (optarg, 1, UINT64_MAX, &n) || send.n_causes == 64) {
                    fprintf (stderr, "bulkhead send: --cause takes a log sequence (at most 64)\n");
                    free (file_payload);
                    return 2;
                }
                causes [send.n_causes++] = n;
                break;
            case HELP: free (file_payload); return s_help (s_send_help, true);
            default: free (file_payload); return s_help (s_send_help, false);
        }
    }
    send.causes = causes;
    if (!send.recipient || !send.intent || optind != argc) {
        free (file_payload);
        return s_help (s_send_help, false);
    }
    bus_client_t *client = cmd_connect (&conn, "send");
    if (!client) {
        free (file_payload);
        return 1;
    }
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    int rc = bus_client_send (client, &send, &reply, conn.timeout_ms, &err);
    free (file_payload);
    if (rc != 0) {
        bus_client_destroy (&client);
        return cmd_error ("send", &err);
    }
    int exit_code = 1;
    if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        const Bulkhead__V1__Ack *ack = reply->ack;
        unsigned v = ack->verdict < 5? (unsigned) ack->verdict: 0;
        //  The reason may quote the message's own fields: escaped.
        printf ("%s seq=%llu class=", s_verdicts [v], (unsigned long long) ack->seq);
        bus_print_line (stdout, ack->intent_class);
        printf ("%s code=", ack->restricted? " RESTRICTED": "");
        bus_print_line (stdout, ack->code);
        printf (": ");
        bus_print_line (stdout, ack->reason);
        if (ack->approval_id) {
            printf (" approval=");
            bus_print_line (stdout, ack->approval_id);
        }
        printf ("\n");
        exit_code = ack->verdict == BULKHEAD__V1__VERDICT__VERDICT_DENIED? 1: 0;
    }
    else {
        printf ("error code=");
        bus_print_line (stdout, reply->error->code);
        printf (": ");
        bus_print_line (stdout, reply->error->reason);
        printf ("\n");
    }
    bus_client_free (&reply);
    bus_client_destroy (&client);
    return exit_code;
}

static const char *s_recv_help =
    "usage: bulkhead recv [options]\n\n"
    "Receives messages as the agent whose key is given, prints one line each, and\n"
    "acknowledges them (so the bus will not deliver them again).\n"
    "  seq=N from=SENDER intent=I class=C [RESTRICTED] id=ID [action=A] [resource=R]\n"
    "      [approved-by=X,Y] payload=TEXT\n"
    "Everything another agent wrote is shown escaped, on that one line: newline and\n"
    "tab as \\n \\t, control bytes and bytes that are not UTF-8 as \\xHH, C1, bidi and\n"
    "invisible characters as \\uXXXX, a backslash as \\\\.\n\n"
    "  --count N          stop after N messages (default: until --wait passes with none)\n"
    "  --wait MS          stop after MS with no message (default 2000)\n"
    "  --no-ack           do not acknowledge (they will be delivered again)\n"
    CMD_CONN_HELP;

int
cmd_recv (int argc, char **argv)
{
    enum { COUNT = CMD_OPT_FIRST_FREE, WAIT, NOACK, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "count", required_argument, NULL, COUNT },
        { "wait", required_argument, NULL, WAIT },
        { "no-ack", no_argument, NULL, NOACK },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    unsigned long long count = 0, wait = 2000;
    bool ack = true;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case COUNT:
                if (!cmd_number (optarg, 1, UINT32_MAX, &count)) {
                    fprintf (stderr, "bulkhead recv: --count takes a positive number\n");
                    return 2;
                }
                break;
            case WAIT:
                if (!cmd_number (optarg, 1, 3600000, &wait)) {
                    fprintf (stderr, "bulkhead recv: --wait takes milliseconds\n");
                    return 2;
                }
                break;
            case NOACK: ack = false; break;
            case HELP: return s_help (s_recv_help, true);
            default: return s_help (s_recv_help, false);
        }
    }
    if (optind != argc) {
        return s_help (s_recv_help, false);
    }
    bus_client_t *client = cmd_connect (&conn, "recv");
    if (!client) {
        return 1;
    }
    unsigned long long got = 0;
    bus_error_t err;
    while (count == 0 || got < count) {
        Bulkhead__V1__Frame *frame;
        if (bus_client_recv (client, &frame, (int) wait, &err) != 0) {
            break;
        }
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER) {
            const Bulkhead__V1__Deliver *d = frame->deliver;
            printf ("seq=%llu from=", (unsigned long long) d->seq);
            bus_print_line (stdout, d->sender);
            printf (" intent=");
            bus_print_line (stdout, d->intent);
            printf (" class=");
            bus_print_line (stdout, d->intent_class);
            printf ("%s id=", d->restricted? " RESTRICTED": "");
            bus_print_line (stdout, d->message_id);
            if (d->action) {
                printf (" action=");
                bus_print_line (stdout, d->action);
            }
            if (d->resource) {
                printf (" resource=");
                bus_print_line (stdout, d->resource);
            }
            for (size_t i = 0; i < d->n_approvals; i++) {
                printf ("%s", i? ",": " approved-by=");
                bus_print_line (stdout, d->approvals [i]->approver);
            }
            printf (" payload=");
            bus_print_how_t how = { BUS_PRINT_LINE, 0, NULL };
            bus_print (stdout, &how, d->payload.data, d->has_payload? d->payload.len: 0);
            printf ("\n");
            fflush (stdout);
            got++;
            if (ack) {
                bus_client_ack (client, d->seq, &err);
            }
        }
        bus_client_free (&frame);
    }
    bus_client_destroy (&client);
    return 0;
}

static const char *s_reload_help =
    "usage: bulkhead reload [options]\n\n"
    "Asks the running bus to re-read its policy file (the same as SIGHUP). The key\n"
    "must belong to an agent with role = operator. An invalid policy is refused\n"
    "with its line number and the old one stays in force.\n\n"
    CMD_CONN_HELP;

static const char *s_clear_help =
    "usage: bulkhead clear AGENT [options]\n\n"
    "Clears AGENT's sticky taint (it was delivered restricted content, so its own\n"
    "messages are restricted). Operators only, never for themselves; the clearing\n"
    "is a log record naming who did it.\n\n"
    CMD_CONN_HELP;

static const char *s_taint_help =
    "usage: bulkhead taint [options]\n\n"
    "Lists tainted agents: since when, and through which message (log sequence).\n"
    "Operators only.\n\n"
    CMD_CONN_HELP;

static const char *s_declassify_help =
    "usage: bulkhead declassify SEQ --reason TEXT [options]\n\n"
    "Lowers the restricted mark of one message, the SEND record SEQ (bulkhead log\n"
    "--restricted lists them). Its record is not rewritten: the declassification is\n"
    "a record of its own, naming who did it and why. From then on the message no\n"
    "longer restricts what names it as a cause, its later deliveries (replays) are\n"
    "not marked, and an agent whose taint it alone caused is clean. Operators only,\n"
    "never for a message they sent or received.\n\n"
    "  --reason TEXT      why this content may be trusted (the log keeps it)\n"
    CMD_CONN_HELP;

//  Sends one control as the agent of conn and prints the reply: the
//  lines it carries on stdout, then "CODE: reason" (stdout if OK, else
//  stderr). Returns the exit code.
static int
s_control_call (const cmd_conn_t *conn, const Bulkhead__V1__Control *control, const char *prog)
{
    bus_client_t *client = cmd_connect (conn, prog);
    if (!client) {
        return 1;
    }
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    int rc = bus_client_control (client, control, &reply, conn->timeout_ms, &err);
    bus_client_destroy (&client);
    if (rc != 0) {
        return cmd_error (prog, &err);
    }
    int exit_code = 1;
    if (reply->body_case == BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY) {
        const Bulkhead__V1__ControlReply *r = reply->control_reply;
        for (size_t i = 0; i < r->n_lines; i++) {
            bus_print_line (stdout, r->lines [i]);
            printf ("\n");
        }
        FILE *out = strcmp (r->code, "OK") == 0? stdout: stderr;
        cmd_reply (out, NULL, r->code, r->reason);
        exit_code = out == stdout? 0: 1;
    }
    else {
        cmd_reply (stderr, NULL, reply->error->code, reply->error->reason);
    }
    bus_client_free (&reply);
    return exit_code;
}

//  One operator command: parse the connection options and at most one
//  positional argument (the agent), send the control, print the reply.
static int
s_control (int argc, char **argv, Bulkhead__V1__ControlOp op, const char *help, bool takes_agent)
{
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (!cmd_conn_option (&conn, opt, optarg)) {
            return s_help (help, opt == 'h');
        }
    }
    if (optind != argc - (takes_agent? 1: 0)) {
        return s_help (help, false);
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = op;
    control.agent = takes_agent? argv [optind]: NULL;
    return s_control_call (&conn, &control, argv [0]);
}

int
cmd_reload (int argc, char **argv)
{
    return s_control (argc, argv, BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD, s_reload_help, false);
}

int
cmd_clear (int argc, char **argv)
{
    return s_control (argc, argv, BULKHEAD__V1__CONTROL_OP__CONTROL_CLEAR_TAINT, s_clear_help, true);
}

int
cmd_taint (int argc, char **argv)
{
    return s_control (argc, argv, BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT, s_taint_help, false);
}

int
cmd_declassify (int argc, char **argv)
{
    enum { REASON = CMD_OPT_FIRST_FREE, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "reason", required_argument, NULL, REASON },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    const char *reason = NULL;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case REASON: reason = optarg; break;
            case HELP: return s_help (s_declassify_help, true);
            default: return s_help (s_declassify_help, false);
        }
    }
    if (optind != argc - 1 || !reason || !*reason) {
        return s_help (s_declassify_help, false);
    }
    unsigned long long seq;
    if (!cmd_number (argv [optind], 1, UINT64_MAX, &seq)) {
        fputs ("bulkhead declassify: SEQ is a log sequence number (see bulkhead log --restricted), "
               "not '", stderr);
        bus_print_line (stderr, argv [optind]);
        fputs ("'\n", stderr);
        return 2;
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_DECLASSIFY;
    control.has_seq = true;
    control.seq = seq;
    control.reason = (char *) reason;
    return s_control_call (&conn, &control, argv [0]);
}

static const char *s_purge_help =
    "usage: bulkhead purge --before WHEN [connection options]\n\n"
    "Retention (operators): the running bus drops the payloads of messages logged\n"
    "before WHEN, a duration back from now (30d, 2w) or an ISO 8601 time\n"
    "(2026-11-01T00:00:00Z). Every record stays, with its payload's digest and\n"
    "size, so the log and every proof still verify; `bulkhead log` marks the\n"
    "record payload-purged. A message its recipient has not acknowledged yet, or\n"
    "one still held for approval, keeps its payload. The bus works through the log\n"
    "a slice at a time (each slice one CONTROL record); this command calls it until\n"
    "it is done and prints the total.\n\n"
    CMD_CONN_HELP;

int
cmd_purge (int argc, char **argv)
{
    enum { BEFORE = CMD_OPT_FIRST_FREE, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "before", required_argument, NULL, BEFORE },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    const char *before = NULL;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case BEFORE: before = optarg; break;
            case HELP: return s_help (s_purge_help, true);
            default: return s_help (s_purge_help, false);
        }
    }
    if (optind != argc || !before) {
        return s_help (s_purge_help, false);
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
    uint64_t before_us;
    if (!cmd_time (before, now, &before_us) || before_us == 0 || before_us > now) {
        fputs ("bulkhead purge: --before takes a time in the past: a duration back from now "
               "(30d, 2w) or ISO 8601 (2026-11-01T00:00:00Z), not '", stderr);
        bus_print_line (stderr, before);
        fputs ("'\n", stderr);
        return 2;
    }
    bus_client_t *client = cmd_connect (&conn, argv [0]);
    if (!client) {
        return 1;
    }
    uint64_t purged = 0, kept = 0, from = 1, calls = 0, chain_from = 0;
    int exit_code = 0;
    while (from && exit_code == 0) {
        Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_PURGE;
        control.has_before_us = true;
        control.before_us = before_us;
        control.has_from_seq = true;
        control.from_seq = from;
        Bulkhead__V1__Frame *reply;
        bus_error_t err;
        if (bus_client_control (client, &control, &reply, conn.timeout_ms, &err) != 0) {
            exit_code = cmd_error (argv [0], &err);
            break;
        }
        const Bulkhead__V1__ControlReply *r = reply->body_case
            == BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY? reply->control_reply: NULL;
        if (r && strcmp (r->code, "OK") == 0 && r->purge) {
            purged += r->purge->purged;
            kept += r->purge->kept;
            chain_from = r->purge->has_chain_from? r->purge->chain_from: chain_from;
            //  The next slice starts past this one: never again from the start.
            from = r->purge->next_seq > from? r->purge->next_seq: 0;
            calls++;
        }
        else if (r) {
            cmd_reply (stderr, argv [0], r->code, r->reason);
            exit_code = 1;
        }
        else {
            cmd_reply (stderr, argv [0], reply->error->code, reply->error->reason);
            exit_code = 1;
        }
        bus_client_free (&reply);
    }
    bus_client_destroy (&client);
    if (exit_code == 0) {
        time_t secs = (time_t) (before_us / 1000000);
        struct tm tm;
        char when [32];
        strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&secs, &tm));
        printf ("purged %llu payloads of messages before %s; %llu kept (still queued or "
                "held); %llu slice%s\n", (unsigned long long) purged, when,
                (unsigned long long) kept, (unsigned long long) calls, calls == 1? "": "s");
        if (chain_from > 1) {
            printf ("records 1..%llu were written before the data dir's upgrade to format 2 and "
                    "keep their payloads: verify checks them by their stored bytes\n",
                    (unsigned long long) chain_from - 1);
        }
    }
    return exit_code;
}
