/*  cmd_monitor.c: `bulkhead alerts`, `quarantine`, `release`. */
#include "cmd.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

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
    "What AGENT may not send is still denied. The quarantine is audited (a log\n"
    "record names who and why) and survives a restart. Operators only. The\n"
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
