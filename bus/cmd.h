/*  cmd.h: what the `bulkhead` subcommands share. Each command is
    `int cmd_NAME (int argc, char **argv)` returning the process exit code:
    0 success, 1 the operation failed or was denied, 2 bad usage.

    Whatever a command prints that an agent or the bus wrote (payloads,
    names, ids, actions, reasons, replies) goes through bus_print
    (bus_print.h): escaped, never raw. */
#ifndef CMD_H
#define CMD_H

#include "bus_client.h"
#include "bus_error.h"
#include "bus_print.h"
#include "bus_store.h"

#include <stdbool.h>

typedef struct {
    const char *name;
    int (*run) (int argc, char **argv);
    const char *summary;
} cmd_t;

//  Connection options every agent-side command takes, with their
//  environment fallbacks: BULKHEAD_BUS, BULKHEAD_BUS_KEY, BULKHEAD_KEY.
typedef struct {
    const char *endpoint;
    const char *bus_key;
    const char *key_file;
    int timeout_ms;
} cmd_conn_t;

#define CMD_CONN_HELP \
    "  --bus ENDPOINT     the bus (env BULKHEAD_BUS; default tcp://127.0.0.1:7750)\n" \
    "  --bus-key KEY      bus public key, Z85 or a file such as DATA/bus.pub (env BULKHEAD_BUS_KEY)\n" \
    "  --key FILE         this agent's secret key file (env BULKHEAD_KEY)\n" \
    "  --timeout MS       how long to wait for the bus (default 5000)\n"

void
    cmd_conn_defaults (cmd_conn_t *conn);

//  Handles --bus, --bus-key, --key, --timeout; true if opt was one of them.
bool
    cmd_conn_option (cmd_conn_t *conn, int opt, const char *arg);

//  Connects as the agent of conn->key_file; prints the error and returns
//  NULL on failure. Without a key or the bus's key it is bad usage: said
//  as INVAL, and the command exits 2 here.
bus_client_t *
    cmd_connect (const cmd_conn_t *conn, const char *prog);

//  Why a policy file was refused, to stderr: a mistake in it as compilers
//  say one, "FILE:LINE: sentence"; any other failure (no such file, no
//  memory) as cmd_error does. Returns 1.
int
    cmd_policy_error (const char *prog, const bus_error_t *err);

//  Prints "bulkhead NAME: CODE: sentence" to stderr, the sentence
//  escaped; returns 1.
int
    cmd_error (const char *prog, const bus_error_t *err);

//  Prints the bus's answer "CODE: reason" (a ControlReply's or an Error
//  frame's) as one escaped line to out, after "bulkhead PROG: " if prog
//  is not NULL.
void
    cmd_reply (FILE *out, const char *prog, const char *code, const char *reason);

//  The same to stderr with prog; returns 1.
int
    cmd_reply_error (const char *prog, const char *code, const char *reason);

//  Parses a decimal number in [min, max]; false if it is not one.
bool
    cmd_number (const char *text, unsigned long long min, unsigned long long max,
                unsigned long long *value);

//  Opens the log in dir read-only (safe beside a running bus); prints the
//  error as "bulkhead PROG: CODE: ..." and returns NULL on failure.
bus_store_t *
    cmd_open_log (const char *dir, const char *prog);

//  A time as --since/--until take it: a duration back from now_us (90s,
//  30m, 1h, 7d, 2w; a number alone is seconds) or ISO 8601 (a date; or a
//  date and time with an optional fraction and Z or +HH:MM), in *out as
//  microseconds since the epoch. false if it is neither.
bool
    cmd_time (const char *text, uint64_t now_us, uint64_t *out);

//  Long option values for the shared connection options.
enum { CMD_OPT_BUS = 1000, CMD_OPT_BUS_KEY, CMD_OPT_KEY, CMD_OPT_TIMEOUT, CMD_OPT_FIRST_FREE };

#define CMD_CONN_OPTIONS \
    { "bus", required_argument, NULL, CMD_OPT_BUS }, \
    { "bus-key", required_argument, NULL, CMD_OPT_BUS_KEY }, \
    { "key", required_argument, NULL, CMD_OPT_KEY }, \
    { "timeout", required_argument, NULL, CMD_OPT_TIMEOUT }

int cmd_serve (int argc, char **argv);
int cmd_keygen (int argc, char **argv);
int cmd_check (int argc, char **argv);
int cmd_access (int argc, char **argv);
int cmd_blast (int argc, char **argv);
int cmd_log (int argc, char **argv);
int cmd_verify (int argc, char **argv);
int cmd_send (int argc, char **argv);
int cmd_recv (int argc, char **argv);
int cmd_reload (int argc, char **argv);
int cmd_clear (int argc, char **argv);
int cmd_taint (int argc, char **argv);
int cmd_pending (int argc, char **argv);
int cmd_approve (int argc, char **argv);
int cmd_deny (int argc, char **argv);
int cmd_grant (int argc, char **argv);
int cmd_declassify (int argc, char **argv);
int cmd_stats (int argc, char **argv);
int cmd_purge (int argc, char **argv);
int cmd_prove (int argc, char **argv);
int cmd_backup (int argc, char **argv);
int cmd_migrate (int argc, char **argv);

//  keygen NAME --sign: the checkpoint signing key (cmd_audit.c).
int cmd_keygen_sign (const char *name, const char *dir);
int cmd_alerts (int argc, char **argv);
int cmd_quarantine (int argc, char **argv);
int cmd_release (int argc, char **argv);
int cmd_top (int argc, char **argv);
int cmd_console (int argc, char **argv);

//  A held record's bytes checked as every approver's tool must before it
//  shows them (cmd_approve.c): decoded, or NULL with *wrong saying why.
Bulkhead__V1__Record *cmd_hold_check (const Bulkhead__V1__Pending *p, const uint8_t *bytes,
                                      size_t size, uint8_t digest [32], const char **wrong);

#endif
