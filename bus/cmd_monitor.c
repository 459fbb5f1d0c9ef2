/*  cmd_monitor.c: `bulkhead alerts`, `quarantine`, `release`, `top`. */
#include "cmd.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
s_help (const char *text, bool ok)
{
    fputs (text, ok? stdout: stderr);
    return ok? 0: 2;
}

static const char *s_alerts_help =
    "usage: bulkhead alerts [--ack ID] [--json] [options]\n\n"
    "Lists the monitor's alerts, open ones first, then those closed recently (the\n"
    "log keeps every one: bulkhead log --kind alert). A line: id, open or closed,\n"
    "kind, subject (agent, sender>recipient, or agent:expectation), when it\n"
    "opened (and closed), who acknowledged it, the log sequences that are its\n"
    "evidence, and what was seen. Operators and agents with role = monitor.\n\n"
    "  --ack ID           acknowledge alert ID (a log record names who)\n"
    "  --json             the alerts as one JSON array\n"
    CMD_CONN_HELP;

static const char *s_quarantine_help =
    "usage: bulkhead quarantine AGENT --reason TEXT [options]\n"
    "       bulkhead quarantine --list [options]\n\n"
    "The kill switch. From now on every message AGENT sends that its edges allow\n"
    "is held (QUARANTINE) until an operator runs `bulkhead release AGENT`; then\n"
    "each is decided again, and one of a held class still needs its approvers.\n"
    "What AGENT may not send is still denied. Its control commands are refused\n"
    "(QUARANTINE), reads included, and its votes and grants count for nothing\n"
    "meanwhile: a suspect approver releases nothing, a suspect operator cannot\n"
    "reload, quarantine others or release anyone. The quarantine is audited (a\n"
    "log record names who and why) and survives a restart. Operators only. The\n"
    "policy may let the bus quarantine on an alert kind (monitor quarantine_on).\n\n"
    "  --reason TEXT      why (kept in the log and shown with each held message)\n"
    "  --list             who is quarantined, since when, by whom, why\n"
    CMD_CONN_HELP;

static const char *s_release_help =
    "usage: bulkhead release AGENT [options]\n\n"
    "Ends AGENT's quarantine; its held messages are decided again at once\n"
    "against the live policy. Operators only, audited.\n\n"
    CMD_CONN_HELP;

//  Sends one control, prints the reply's lines (or its alerts as JSON),
//  then "CODE: reason". Returns the exit code.
static int
s_call (const cmd_conn_t *conn, const Bulkhead__V1__Control *control, const char *prog, bool json)
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
        bool ok = strcmp (r->code, "OK") == 0;
        if (json && ok) {
            //  jansson escapes what it prints: names and texts are safe.
            json_t *list = json_array ();
            for (size_t i = 0; i < r->n_alerts; i++) {
                const Bulkhead__V1__Alert *a = r->alerts [i];
                json_t *evidence = json_array ();
                for (size_t e = 0; e < a->n_evidence; e++) {
                    json_array_append_new (evidence, json_integer ((json_int_t) a->evidence [e]));
                }
                json_array_append_new (list, json_pack ("{s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:b}",
                    "id", a->id, "kind", a->kind, "subject", a->subject, "text", a->text,
                    "evidence", evidence, "opened_us", (json_int_t) a->opened_us,
                    "closed_us", (json_int_t) (a->has_closed_us? a->closed_us: 0),
                    "open", !a->has_closed_us));
            }
            char *text = json_dumps (list, JSON_COMPACT | JSON_ENSURE_ASCII);
            if (text) {
                printf ("%s\n", text);
                free (text);
            }
            json_decref (list);
            exit_code = 0;
        }
        else {
            for (size_t i = 0; i < r->n_lines; i++) {
                bus_print_line (stdout, r->lines [i]);
                printf ("\n");
            }
            cmd_reply (ok? stdout: stderr, NULL, r->code, r->reason);
            exit_code = ok? 0: 1;
        }
    }
    else {
        cmd_reply (stderr, NULL, reply->error->code, reply->error->reason);
    }
    bus_client_free (&reply);
    return exit_code;
}

int
cmd_alerts (int argc, char **argv)
{
    enum { ACK = CMD_OPT_FIRST_FREE, JSON, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "ack", required_argument, NULL, ACK },
        { "json", no_argument, NULL, JSON },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    const char *ack = NULL;
    bool json = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case ACK: ack = optarg; break;
            case JSON: json = true; break;
            case HELP: return s_help (s_alerts_help, true);
            default: return s_help (s_alerts_help, false);
        }
    }
    if (optind != argc || (ack && json)) {
        return s_help (s_alerts_help, false);
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = ack? BULKHEAD__V1__CONTROL_OP__CONTROL_ACK_ALERT
                    : BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_ALERTS;
    control.id = (char *) ack;
    return s_call (&conn, &control, argv [0], json);
}

int
cmd_quarantine (int argc, char **argv)
{
    enum { REASON = CMD_OPT_FIRST_FREE, LIST, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "reason", required_argument, NULL, REASON },
        { "list", no_argument, NULL, LIST },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    const char *reason = NULL;
    bool list = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case REASON: reason = optarg; break;
            case LIST: list = true; break;
            case HELP: return s_help (s_quarantine_help, true);
            default: return s_help (s_quarantine_help, false);
        }
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    if (list) {
        if (optind != argc || reason) {
            return s_help (s_quarantine_help, false);
        }
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_QUARANTINE;
        return s_call (&conn, &control, argv [0], false);
    }
    if (optind != argc - 1 || !reason || !*reason) {
        return s_help (s_quarantine_help, false);
    }
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_QUARANTINE;
    control.agent = argv [optind];
    control.reason = (char *) reason;
    return s_call (&conn, &control, argv [0], false);
}

int
cmd_release (int argc, char **argv)
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
            return s_help (s_release_help, opt == 'h');
        }
    }
    if (optind != argc - 1) {
        return s_help (s_release_help, false);
    }
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_RELEASE;
    control.agent = argv [optind];
    return s_call (&conn, &control, argv [0], false);
}

static const char *s_top_help =
    "usage: bulkhead top [--interval SECONDS] [--once | --count N] [options]\n\n"
    "A live view of the running bus, refreshed in the terminal: the log's last\n"
    "sequence, holds waiting, alerts open, agents quarantined and online; then per\n"
    "agent and per edge, busiest first, the messages of this minute against the\n"
    "baseline the detectors learned (messages a minute) and an agent's last hour;\n"
    "then the open alerts. Everything shown is escaped. Operators and agents with\n"
    "role = monitor (each refresh is one CONTROL record in the log, like every\n"
    "command). Ctrl-C stops it.\n\n"
    "  --interval SECONDS how often to refresh (1-3600, default 2)\n"
    "  --once             one snapshot, no screen control (for scripts)\n"
    "  --count N          N refreshes, then stop\n"
    CMD_CONN_HELP;

//  One snapshot, by section; a line the bus sent is printed escaped.
static void
s_top_print (const Bulkhead__V1__ControlReply *r, bool clear, unsigned interval)
{
    if (clear) {
        fputs ("\033[H\033[2J", stdout);
    }
    char when [32];
    time_t now = time (NULL);
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
    printf ("bulkhead top  %s  every %u s\n", when, interval);
    static const char *sections [] = { "bus", "agent", "edge", "alert" };
    static const char *titles [] = { NULL, "agents (this minute / usual a minute / last hour)",
                                     "edges (this minute / usual a minute)", "open alerts" };
    for (size_t s = 0; s < 4; s++) {
        bool first = true;
        size_t len = strlen (sections [s]);
        for (size_t i = 0; i < r->n_lines; i++) {
            const char *line = r->lines [i];
            if (strncmp (line, sections [s], len) != 0 || line [len] != ' ') {
                continue;
            }
            if (first && titles [s]) {
                printf ("\n%s\n", titles [s]);
            }
            first = false;
            fputs ("  ", stdout);
            bus_print_line (stdout, line + len + 1);
            fputs ("\n", stdout);
        }
    }
    fflush (stdout);
}

int
cmd_top (int argc, char **argv)
{
    enum { INTERVAL = CMD_OPT_FIRST_FREE, ONCE, COUNT, HELP };
    static const struct option options [] = {
        CMD_CONN_OPTIONS,
        { "interval", required_argument, NULL, INTERVAL },
        { "once", no_argument, NULL, ONCE },
        { "count", required_argument, NULL, COUNT },
        { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 }
    };
    cmd_conn_t conn;
    cmd_conn_defaults (&conn);
    unsigned long long interval = 2, count = 0;
    bool once = false;
    int opt;
    while ((opt = getopt_long (argc, argv, "", options, NULL)) != -1) {
        if (cmd_conn_option (&conn, opt, optarg)) {
            continue;
        }
        switch (opt) {
            case INTERVAL:
                if (!cmd_number (optarg, 1, 3600, &interval)) {
                    return s_help (s_top_help, false);
                }
                break;
            case COUNT:
                if (!cmd_number (optarg, 1, 1000000, &count)) {
                    return s_help (s_top_help, false);
                }
                break;
            case ONCE: once = true; break;
            case HELP: return s_help (s_top_help, true);
            default: return s_help (s_top_help, false);
        }
    }
    if (optind != argc || (once && count)) {
        return s_help (s_top_help, false);
    }
    if (once) {
        count = 1;
    }
    bus_client_t *client = cmd_connect (&conn, argv [0]);
    if (!client) {
        return 1;
    }
    bool clear = !once && isatty (STDOUT_FILENO);
    int rc = 0;
    for (unsigned long long n = 0; !count || n < count; n++) {
        if (n) {
            sleep ((unsigned) interval);
        }
        Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
        control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_SNAPSHOT;
        Bulkhead__V1__Frame *reply;
        bus_error_t err;
        if (bus_client_control (client, &control, &reply, conn.timeout_ms, &err) != 0) {
            rc = cmd_error (argv [0], &err);
            break;
        }
        if (reply->body_case != BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY
        ||  strcmp (reply->control_reply->code, "OK") != 0) {
            const char *code = reply->body_case == BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY
                             ? reply->control_reply->code: reply->error->code;
            const char *why = reply->body_case == BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY
                            ? reply->control_reply->reason: reply->error->reason;
            rc = cmd_reply_error (argv [0], code, why);
            bus_client_free (&reply);
            break;
        }
        s_top_print (reply->control_reply, clear, (unsigned) interval);
        bus_client_free (&reply);
    }
    bus_client_destroy (&client);
    return rc;
}
