/*  agent.c: a bulkhead agent in C, as a user would write one.

    It links the client library only (bus_client.h; installed by
    `make install`, built with `pkg-config --cflags --libs bulkhead`):

        agent [connection] send --to AGENT --intent CLASS [options]
        agent [connection] work [--count N] [--wait MS] [--reply INTENT]

    The session: bus_client_connect opens a CURVE session with the agent's
    own key, pinned to the bus's public key, and returns once the bus has
    said WELCOME and named the agent it authenticated.

    send   sends one message and prints the bus's verdict. A held message
           waits for approvers; with --wait-held MS the agent stays
           connected and prints the verdict the bus sends when the hold is
           released or denied (the same message id, a second ACK).
    work   receives messages, prints each, and acknowledges it once it is
           handled (unacknowledged messages come again next session); with
           --reply it answers each sender, naming the message as the cause.

    What another agent wrote (payload, names, reasons) is printed escaped:
    it may hold terminal control sequences.

    Build it by hand against an installed bulkhead:
        cc -o agent agent.c $(pkg-config --cflags --libs bulkhead)
*/
#define _POSIX_C_SOURCE 200809L     //  clock_gettime under -std=c11
#include "bus_client.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_DENIED 1       //  denied, failed, or fewer messages than --count
#define EXIT_USAGE  2
#define EXIT_HELD   3       //  still held when --wait-held ran out

static const char *s_usage =
    "usage: agent [connection options] send --to AGENT --intent CLASS [options]\n"
    "       agent [connection options] work [--count N] [--wait MS] [--reply INTENT]\n"
    "\n"
    "An example agent that links bulkhead's C client library.\n"
    "\n"
    "connection options (before or after the command):\n"
    "  --bus ENDPOINT     the bus (env BULKHEAD_BUS; default tcp://127.0.0.1:7750)\n"
    "  --bus-key KEY      the bus's public key: 40 Z85 chars or a file such as\n"
    "                     DATA/bus.pub (env BULKHEAD_BUS_KEY)\n"
    "  --key FILE         this agent's secret key file (env BULKHEAD_KEY)\n"
    "  --timeout MS       how long to wait for the bus and each reply (default 5000)\n"
    "\n"
    "send: sends one message and prints the verdict\n"
    "  --to AGENT  --intent CLASS  --action NAME  --resource TEXT  --payload TEXT\n"
    "  --justification TEXT   what you are about to do and why (approvers read it)\n"
    "  --id ID                message id (default: random)\n"
    "  --cause SEQ            log sequence of the message that caused this one\n"
    "  --wait-held MS         if held, stay connected up to MS for the approvers' verdict\n"
    "\n"
    "work: receives messages, prints one line each, acknowledges each\n"
    "  --count N              stop after N messages (default: when --wait passes with none)\n"
    "  --wait MS              give up after MS with no message (default 2000)\n"
    "  --reply INTENT         answer each sender with INTENT, the message as cause\n"
    "\n"
    "Prints \"connected as NAME\" once the bus has authenticated it.\n"
    "Exit: 0 delivered, queued or held (or N messages handled); 1 denied, failed,\n"
    "or fewer than --count messages; 2 bad usage; 3 still held after --wait-held.\n";

static const char *s_verdicts [] = { "?", "delivered", "queued", "held", "denied" };

typedef struct {
    const char *command;
    bus_client_options_t conn;
    Bulkhead__V1__Send send;
    uint64_t cause;
    unsigned long wait_held_ms;
    unsigned long count;
    unsigned long wait_ms;
    const char *reply_intent;
} agent_args_t;

static int
s_fail (const char *command, const bus_error_t *err)
{
    fprintf (stderr, "agent %s: %s: %s\n", command, bus_errword (err->code), err->text);
    return EXIT_DENIED;
}

static int
s_bad_usage (const char *fmt, const char *what)
{
    fprintf (stderr, "agent: ");
    fprintf (stderr, fmt, what);
    fprintf (stderr, "\n(agent --help says how to use it)\n");
    return EXIT_USAGE;
}

//  Text from another agent, with every byte that is not printable ASCII
//  (controls, ESC, UTF-8 included) as \xNN: a terminal shows it, never obeys it.
static void
s_escape (const void *data, size_t size)
{
    const unsigned char *byte = data;
    for (size_t i = 0; i < size; i++) {
        if (byte [i] >= 0x20 && byte [i] < 0x7f && byte [i] != '\\') {
            putchar (byte [i]);
        }
        else {
            printf ("\\x%02x", byte [i]);
        }
    }
}

static void
s_print_escaped (const char *label, const void *data, size_t size)
{
    printf (" %s=", label);
    s_escape (data, size);
}

static void
s_print_string (const char *label, const char *text)
{
    s_print_escaped (label, text? text: "-", text? strlen (text): 1);
}

static bool
s_number (const char *text, unsigned long max, unsigned long *value)
{
    if (!text || !*text || strspn (text, "0123456789") != strlen (text)) {
        return false;
    }
    errno = 0;
    unsigned long long n = strtoull (text, NULL, 10);
    if (errno || n == 0 || n > max) {
        return false;
    }
    *value = (unsigned long) n;
    return true;
}

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void
s_print_ack (const char *prefix, const Bulkhead__V1__Ack *ack)
{
    unsigned v = ack->verdict < 5? (unsigned) ack->verdict: 0;
    printf ("%s%s seq=%llu", prefix, s_verdicts [v], (unsigned long long) ack->seq);
    s_print_string ("class", ack->intent_class);
    if (ack->restricted) {
        printf (" RESTRICTED");
    }
    s_print_string ("code", ack->code);
    s_print_string ("reason", ack->reason);
    if (ack->approval_id) {
        s_print_string ("approval", ack->approval_id);
    }
    printf ("\n");
    fflush (stdout);
}

//  A held message: the bus sends a second ACK for the same message id when
//  the approvers release it (delivered or queued) or deny it (or it expires).
//  Other frames that arrive meanwhile are not ours to handle here: a DELIVER
//  left unacknowledged comes again in the next session.
static int
s_wait_held (bus_client_t *client, const char *message_id, unsigned long wait_ms)
{
    int64_t deadline = s_now_ms () + (int64_t) wait_ms;
    while (true) {
        int64_t left = deadline - s_now_ms ();
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (left <= 0 || bus_client_recv (client, &frame, (int) left, &err) != 0) {
            if (left <= 0 || err.code == BUS_ETIMEOUT) {
                fprintf (stderr, "agent send: still held after %lu ms; an approver can still "
                                 "decide (bulkhead pending / approve)\n", wait_ms);
                return EXIT_HELD;
            }
            return s_fail ("send", &err);
        }
        int rc = -1;
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_ACK
        &&  strcmp (frame->ack->message_id, message_id) == 0
        &&  frame->ack->verdict != BULKHEAD__V1__VERDICT__VERDICT_HELD) {
            s_print_ack ("then ", frame->ack);
            rc = frame->ack->verdict == BULKHEAD__V1__VERDICT__VERDICT_DENIED? EXIT_DENIED: 0;
        }
        bus_client_free (&frame);
        if (rc >= 0) {
            return rc;
        }
    }
}

static int
s_send (bus_client_t *client, agent_args_t *args)
{
    if (args->cause) {
        args->send.causes = &args->cause;
        args->send.n_causes = 1;
    }
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    if (bus_client_send (client, &args->send, &reply, args->conn.timeout_ms, &err) != 0) {
        return s_fail ("send", &err);
    }
    int rc = EXIT_DENIED;
    if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
        const Bulkhead__V1__Ack *ack = reply->ack;
        s_print_ack ("", ack);
        if (ack->verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD && args->wait_held_ms) {
            rc = s_wait_held (client, ack->message_id, args->wait_held_ms);
        }
        else if (ack->verdict != BULKHEAD__V1__VERDICT__VERDICT_DENIED) {
            rc = 0;
        }
    }
    else {
        //  An ERROR frame: the bus could not read or accept the message.
        printf ("error");
        s_print_string ("code", reply->error->code);
        s_print_string ("reason", reply->error->reason);
        printf ("\n");
    }
    bus_client_free (&reply);
    return rc;
}

//  Handles one DELIVER: print it, answer it if asked to, then acknowledge.
//  The acknowledgement comes last, so a crash in between means the message
//  comes again, never that it is lost.
static int
s_handle (bus_client_t *client, const agent_args_t *args, const Bulkhead__V1__Deliver *d)
{
    printf ("seq=%llu", (unsigned long long) d->seq);
    s_print_string ("from", d->sender);
    s_print_string ("intent", d->intent);
    s_print_string ("class", d->intent_class);
    if (d->restricted) {
        printf (" RESTRICTED");
    }
    s_print_string ("id", d->message_id);
    for (size_t i = 0; i < d->n_approvals; i++) {
        s_print_string ("approved-by", d->approvals [i]->approver);
    }
    s_print_escaped ("payload", d->payload.data, d->payload.len);
    printf ("\n");
    fflush (stdout);

    bus_error_t err;
    if (args->reply_intent) {
        char text [160];
        snprintf (text, sizeof text, "done: message %llu", (unsigned long long) d->seq);
        uint64_t cause = d->seq;
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.recipient = d->sender;
        send.intent = (char *) args->reply_intent;
        send.has_payload = true;
        send.payload.data = (uint8_t *) text;
        send.payload.len = strlen (text);
        send.causes = &cause;
        send.n_causes = 1;
        Bulkhead__V1__Frame *reply;
        if (bus_client_send (client, &send, &reply, args->conn.timeout_ms, &err) != 0) {
            return s_fail ("work", &err);
        }
        if (reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK) {
            s_print_ack ("replied ", reply->ack);
        }
        bus_client_free (&reply);
    }
    if (bus_client_ack (client, d->seq, &err) != 0) {
        return s_fail ("work", &err);
    }
    return 0;
}

static int
s_work (bus_client_t *client, const agent_args_t *args)
{
    unsigned long handled = 0;
    while (args->count == 0 || handled < args->count) {
        Bulkhead__V1__Frame *frame;
        bus_error_t err;
        if (bus_client_recv (client, &frame, (int) args->wait_ms, &err) != 0) {
            if (err.code != BUS_ETIMEOUT) {
                return s_fail ("work", &err);
            }
            break;
        }
        int rc = 0;
        if (frame->body_case == BULKHEAD__V1__FRAME__BODY_DELIVER) {
            rc = s_handle (client, args, frame->deliver);
            handled++;
        }
        bus_client_free (&frame);
        if (rc != 0) {
            return rc;
        }
    }
    if (args->count && handled < args->count) {
        fprintf (stderr, "agent work: %lu of %lu messages, then none for %lu ms\n",
                 handled, args->count, args->wait_ms);
        return EXIT_DENIED;
    }
    return 0;
}

//  Fills args from the command line; 0 to go on, -1 after --help, else
//  the exit code of bad usage (the message printed).
static int
s_parse (int argc, char **argv, agent_args_t *args)
{
    enum { BUS = 1000, BUS_KEY, KEY, TIMEOUT, TO, INTENT, ACTION, RESOURCE, PAYLOAD,
           JUSTIFICATION, ID, CAUSE, WAIT_HELD, COUNT, WAIT, REPLY, HELP };
    static const struct option options [] = {
        { "bus", required_argument, NULL, BUS },
        { "bus-key", required_argument, NULL, BUS_KEY },
        { "key", required_argument, NULL, KEY },
        { "timeout", required_argument, NULL, TIMEOUT },
        { "to", required_argument, NULL, TO },
        { "intent", required_argument, NULL, INTENT },
        { "action", required_argument, NULL, ACTION },
        { "resource", required_argument, NULL, RESOURCE },
        { "payload", required_argument, NULL, PAYLOAD },
        { "justification", required_argument, NULL, JUSTIFICATION },
        { "id", required_argument, NULL, ID },
        { "cause", required_argument, NULL, CAUSE },
        { "wait-held", required_argument, NULL, WAIT_HELD },
        { "count", required_argument, NULL, COUNT },
        { "wait", required_argument, NULL, WAIT },
        { "reply", required_argument, NULL, REPLY },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    const char *endpoint = getenv ("BULKHEAD_BUS");
    args->conn.endpoint = endpoint && *endpoint? endpoint: "tcp://127.0.0.1:7750";
    args->conn.bus_key = getenv ("BULKHEAD_BUS_KEY");
    args->conn.key_file = getenv ("BULKHEAD_KEY");
    args->conn.timeout_ms = 5000;
    args->wait_ms = 2000;
    bool send_only = false, work_only = false;
    unsigned long n;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
            case BUS: args->conn.endpoint = optarg; break;
            case BUS_KEY: args->conn.bus_key = optarg; break;
            case KEY: args->conn.key_file = optarg; break;
            case TIMEOUT:
                if (!s_number (optarg, 3600000, &n)) {
                    return s_bad_usage ("--timeout takes milliseconds, not '%s'", optarg);
                }
                args->conn.timeout_ms = (int) n;
                break;
            case TO: args->send.recipient = optarg; send_only = true; break;
            case INTENT: args->send.intent = optarg; send_only = true; break;
            case ACTION: args->send.action = optarg; send_only = true; break;
            case RESOURCE: args->send.resource = optarg; send_only = true; break;
            case JUSTIFICATION: args->send.justification = optarg; send_only = true; break;
            case ID: args->send.message_id = optarg; send_only = true; break;
            case PAYLOAD:
                args->send.has_payload = true;
                args->send.payload.data = (uint8_t *) optarg;
                args->send.payload.len = strlen (optarg);
                send_only = true;
                break;
            case CAUSE:
                if (!s_number (optarg, (unsigned long) -1, &n)) {
                    return s_bad_usage ("--cause takes a log sequence (1 or more), not '%s'", optarg);
                }
                args->cause = n;
                send_only = true;
                break;
            case WAIT_HELD:
                if (!s_number (optarg, 86400000, &args->wait_held_ms)) {
                    return s_bad_usage ("--wait-held takes milliseconds, not '%s'", optarg);
                }
                send_only = true;
                break;
            case COUNT:
                if (!s_number (optarg, 1000000, &args->count)) {
                    return s_bad_usage ("--count takes a positive number, not '%s'", optarg);
                }
                work_only = true;
                break;
            case WAIT:
                if (!s_number (optarg, 3600000, &args->wait_ms)) {
                    return s_bad_usage ("--wait takes milliseconds, not '%s'", optarg);
                }
                work_only = true;
                break;
            case REPLY: args->reply_intent = optarg; work_only = true; break;
            case 'h':
            case HELP:
                fputs (s_usage, stdout);
                return -1;
            default:
                return s_bad_usage ("%s", "unknown option (see above)");
        }
    }
    if (optind != argc - 1) {
        return s_bad_usage ("%s", optind == argc? "no command: give send or work"
                                                : "one command only: send or work");
    }
    args->command = argv [optind];
    bool is_send = strcmp (args->command, "send") == 0;
    if (!is_send && strcmp (args->command, "work") != 0) {
        return s_bad_usage ("unknown command '%s': give send or work", args->command);
    }
    if (is_send && work_only) {
        return s_bad_usage ("%s", "--count, --wait and --reply are options of work, not send");
    }
    if (!is_send && send_only) {
        return s_bad_usage ("%s", "--to, --intent, --payload, ... are options of send, not work");
    }
    if (is_send && (!args->send.recipient || !args->send.intent)) {
        return s_bad_usage ("%s", "send needs --to AGENT and --intent CLASS");
    }
    if (!args->conn.key_file || !*args->conn.key_file) {
        return s_bad_usage ("%s", "no key: give --key FILE (this agent's secret key) or set BULKHEAD_KEY");
    }
    if (!args->conn.bus_key || !*args->conn.bus_key) {
        return s_bad_usage ("%s", "no bus key: give --bus-key KEY (e.g. DATA/bus.pub) or set BULKHEAD_BUS_KEY");
    }
    return 0;
}

int
main (int argc, char **argv)
{
    agent_args_t args;
    memset (&args, 0, sizeof args);
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    args.send = send;
    int rc = s_parse (argc, argv, &args);
    if (rc != 0) {
        return rc < 0? 0: rc;       //  -1: --help was printed
    }
    bus_client_t *client;
    bus_error_t err;
    if (bus_client_connect (&client, &args.conn, &err) != 0) {
        return s_fail (args.command, &err);
    }
    const char *name = bus_client_agent (client);
    printf ("connected as ");
    s_escape (name, strlen (name));
    printf ("\n");
    fflush (stdout);
    rc = strcmp (args.command, "send") == 0? s_send (client, &args): s_work (client, &args);
    bus_client_destroy (&client);
    return rc;
}
