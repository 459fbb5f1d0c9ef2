/*  main.c: `bulkhead COMMAND ...`, a table of subcommands. */
#include "bus_secmem.h"
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cmd_t s_commands [] = {
    { "serve",  cmd_serve,  "run the bus: bulkhead serve --policy FILE --data DIR" },
    { "keygen", cmd_keygen, "make a CURVE keypair for one agent" },
    { "check",  cmd_check,  "validate a policy file; warn of unscoped privileged edges and old keys" },
    { "blast",  cmd_blast,  "if this agent, key or provider is compromised, what can it make happen?" },
    { "access", cmd_access, "who has what: per agent its keys, roles, edges and scopes (--data: last used)" },
    { "send",   cmd_send,   "send one message as an agent" },
    { "recv",   cmd_recv,   "receive messages as an agent" },
    { "pending", cmd_pending, "list held messages waiting for this approver" },
    { "approve", cmd_approve, "approve a held message (approvers)" },
    { "deny",   cmd_deny,   "deny a held message with a reason (approvers)" },
    { "console", cmd_console, "the approval console: a local web page for one approver" },
    { "grant",  cmd_grant,  "let the next N messages or T minutes of one kind through (approvers)" },
    { "log",    cmd_log,    "read the log (also while the bus runs)" },
    { "verify", cmd_verify, "check the log: chain, payload digests, Merkle tree, signed checkpoints" },
    { "prove",  cmd_prove,  "inclusion proof of one record, or consistency of two checkpoints (--check)" },
    { "backup", cmd_backup, "consistent, compacted copy of a data dir (also while the bus runs)" },
    { "migrate", cmd_migrate, "upgrade a data dir to this version's format (serve does it at start)" },
    { "stats",  cmd_stats,  "who uses how much of the log, per agent (also while the bus runs)" },
    { "reload", cmd_reload, "make the running bus reload its policy (operators)" },
    { "taint",  cmd_taint,  "list tainted agents (operators)" },
    { "clear",  cmd_clear,  "clear an agent's taint (operators, audited)" },
    { "declassify", cmd_declassify, "lower one message's restricted mark, with a reason (operators)" },
    { "purge",  cmd_purge,  "drop payloads older than a time, keeping every record and digest (operators)" },
    { "alerts", cmd_alerts, "list and acknowledge the monitor's alerts (operators, monitors)" },
    { "quarantine", cmd_quarantine, "hold all of an agent's sends for an operator (operators, audited)" },
    { "release", cmd_release, "end an agent's quarantine (operators, audited)" },
    { "top",    cmd_top,    "a live view: rates per agent and edge, holds, alerts, sessions" },
};

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: bulkhead COMMAND [OPTIONS]   (bulkhead COMMAND --help for more)\n\n"
                  "bulkhead mediates agent-to-agent messages: authenticated by CURVE key,\n"
                  "allowed by policy, logged durably before delivery.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++) {
        fprintf (out, "  %-10s %s\n", s_commands [i].name, s_commands [i].summary);
    }
}

void
cmd_conn_defaults (cmd_conn_t *conn)
{
    const char *endpoint = getenv ("BULKHEAD_BUS");
    conn->endpoint = endpoint && *endpoint? endpoint: "tcp://127.0.0.1:7750";
    conn->bus_key = getenv ("BULKHEAD_BUS_KEY");
    conn->key_file = getenv ("BULKHEAD_KEY");
    conn->timeout_ms = 5000;
}

bool
cmd_number (const char *text, unsigned long long min, unsigned long long max,
            unsigned long long *value)
{
    if (!text || !*text || strspn (text, "0123456789") != strlen (text)) {
        return false;
    }
    errno = 0;
    unsigned long long n = strtoull (text, NULL, 10);
    if (errno || n < min || n > max) {
        return false;
    }
    *value = n;
    return true;
}

bool
cmd_conn_option (cmd_conn_t *conn, int opt, const char *arg)
{
    unsigned long long n;
    switch (opt) {
        case CMD_OPT_BUS: conn->endpoint = arg; return true;
        case CMD_OPT_BUS_KEY: conn->bus_key = arg; return true;
        case CMD_OPT_KEY: conn->key_file = arg; return true;
        case CMD_OPT_TIMEOUT:
            if (!cmd_number (arg, 1, 3600000, &n)) {
                fprintf (stderr, "bulkhead: --timeout takes milliseconds, 1 to 3600000\n");
                exit (2);
            }
            conn->timeout_ms = (int) n;
            return true;
        default: return false;
    }
}

int
cmd_error (const char *prog, const bus_error_t *err)
{
    //  The sentence may quote what the bus or a file said.
    fprintf (stderr, "bulkhead %s: %s: ", prog, bus_errword (err->code));
    bus_print_line (stderr, err->text);
    fputc ('\n', stderr);
    return 1;
}

void
cmd_reply (FILE *out, const char *prog, const char *code, const char *reason)
{
    if (prog) {
        fprintf (out, "bulkhead %s: ", prog);
    }
    bus_print_line (out, code);
    fputs (": ", out);
    bus_print_line (out, reason);
    fputc ('\n', out);
}

int
cmd_policy_error (const char *prog, const bus_error_t *err)
{
    if (err->code != BUS_EPOLICY) {
        return cmd_error (prog, err);
    }
    bus_print_line (stderr, err->text);       //  it quotes the file, which may hold anything
    fputc ('\n', stderr);
    return 1;
}

int
cmd_reply_error (const char *prog, const char *code, const char *reason)
{
    cmd_reply (stderr, prog, code, reason);
    return 1;
}

bus_client_t *
cmd_connect (const cmd_conn_t *conn, const char *prog)
{
    if (!conn->key_file || !conn->bus_key) {
        fprintf (stderr, "bulkhead %s: INVAL: need --key FILE (the agent's secret key) and "
                         "--bus-key KEY (the bus's public key, e.g. DATA/bus.pub), or "
                         "BULKHEAD_KEY and BULKHEAD_BUS_KEY\n", prog);
        exit (2);
    }
    bus_client_options_t options = {
        .endpoint = conn->endpoint,
        .bus_key = conn->bus_key,
        .key_file = conn->key_file,
        .timeout_ms = conn->timeout_ms,
    };
    bus_client_t *client;
    bus_error_t err;
    if (bus_client_connect (&client, &options, &err) != 0) {
        cmd_error (prog, &err);
        return NULL;
    }
    return client;
}

int
main (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv [1], "--help") == 0 || strcmp (argv [1], "-h") == 0
    ||  strcmp (argv [1], "help") == 0) {
        s_usage (argc < 2? stderr: stdout);
        return argc < 2? 2: 0;
    }
    //  libzmq's CURVE handshakes take their buffers from bus_secmem (not
    //  one guarded mapping each): set up before any thread starts.
    bus_secmem_init ();
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++) {
        if (strcmp (argv [1], s_commands [i].name) == 0) {
            return s_commands [i].run (argc - 1, argv + 1);
        }
    }
    fputs ("bulkhead: unknown command '", stderr);
    bus_print_line (stderr, argv [1]);
    fputs ("'\n", stderr);
    s_usage (stderr);
    return 2;
}
