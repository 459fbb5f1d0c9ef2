/*  harness.h: end-to-end tests against the real bus binary.

    Each test gets a fresh temporary directory with keys, a policy, and a
    data directory; the bus runs as a child process (the real `bulkhead
    serve`, real CURVE, real LMDB) listening on ipc:// in that directory, and
    tells us it is ready through a pipe (no sleeps). Everything is bounded in
    time, and cleanup kills the bus and removes the directory.
*/
#ifndef HARNESS_H
#define HARNESS_H

#include "bus_client.h"

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    char dir [256];
    char policy [300];
    char data [300];
    char endpoint [420];            //  where the bus listens (set by start)
    char listen [320];              //  what to bind, if not the ipc default
    char bus_pub [300];
    char log [300];                 //  the bus's stderr
    pid_t pid;
    const char *extra [8];          //  extra serve arguments
} harness_t;

//  A fresh directory; aborts the test run if it cannot make one.
void
    harness_init (harness_t *h);

//  Writes the policy; "@name@" in text becomes the public key of agent
//  `name`, whose keypair is made in the directory on first use.
int
    harness_policy (harness_t *h, const char *text);

//  Starts the bus and waits (at most 10 s) until it listens. 0 or -1.
int
    harness_start (harness_t *h);

//  Stops the bus with sig (SIGTERM: clean; SIGKILL: crash) and reaps it.
//  Returns its exit status as waitpid gives it.
int
    harness_stop (harness_t *h, int sig);

//  Connects as `agent` with its key. NULL (and err) on failure.
bus_client_t *
    harness_connect (harness_t *h, const char *agent, bus_error_t *err);
bus_client_t *
    harness_connect_at (harness_t *h, const char *agent, uint64_t last_seq, bus_error_t *err);

//  Sends and waits up to 5 s for the reply frame (ACK or ERROR).
Bulkhead__V1__Frame *
    harness_send (bus_client_t *client, const char *to, const char *intent,
                  const char *payload, const char *id);

//  Waits up to timeout_ms for the next DELIVER, skipping other frames.
Bulkhead__V1__Frame *
    harness_deliver (bus_client_t *client, int timeout_ms);

//  Runs `bulkhead ARGS...` with output to a file; returns exit status and
//  the output (malloc'd, caller frees) in *out if not NULL.
int
    harness_run (harness_t *h, char **out, const char *arg, ...);

//  Stops the bus if running and removes the directory. -1 if the bus's
//  log has a sanitizer report (the directory is then kept).
int
    harness_cleanup (harness_t *h);

//  cmocka fixtures: a fresh directory and a running bus with `policy` for
//  one test (state is the harness_t); the end fails if the bus reported a
//  sanitizer error.
int
    harness_fixture (void **state, const char *policy);
int
    harness_fixture_end (void **state);

//  Connects as agent or fails the running test, naming why.
bus_client_t *
    harness_agent (harness_t *h, const char *agent);

//  Asks the bus to reload its policy as `operator`; returns the reply (a
//  CONTROL_REPLY, else the test fails). Caller frees.
Bulkhead__V1__Frame *
    harness_reload (bus_client_t *operator_client);

//  `bulkhead verify` on the bus's log must pass, else the test fails.
void
    harness_verify (harness_t *h);

//  A raw DEALER in ctx with agent's key (its key file in the test dir) and,
//  if rid is not NULL, a fixed routing id; connected to the bus. For
//  tests that must do what the client library never does.
void *
    harness_raw (harness_t *h, void *ctx, const char *agent, const char *rid);

//  Sends one frame on a raw dealer (packed from frame). 0 or -1.
int
    harness_raw_send (void *dealer, const Bulkhead__V1__Frame *frame);

//  Sends HELLO (version 1) on a raw dealer.
int
    harness_raw_hello (void *dealer);

//  The next frame on a raw dealer within timeout_ms, decoded (free with
//  bulkhead__v1__frame__free_unpacked (frame, NULL)), or NULL.
Bulkhead__V1__Frame *
    harness_raw_recv (void *dealer, int timeout_ms);

//  The verdict word of an ACK frame or the code of an ERROR frame.
const char *
    harness_code (const Bulkhead__V1__Frame *frame);

#endif
