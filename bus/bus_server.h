/*  bus_server.h: the bus daemon, `bulkhead serve`.

    One thread, one loop. It polls the ROUTER, the ZAP handler socket and a
    signalfd; reads every frame the ROUTER has ready (up to batch_max), runs
    each through decode and the mediator chain, appends its log record to the
    batch, then commits the batch with one synced LMDB transaction and only
    then sends what the batch decided (ACKs, DELIVERs, WELCOMEs). Committing
    as soon as the socket has nothing more to read gives low latency at low
    load and large batches (few fsyncs) at high load.

    A separate writer thread would gain nothing on two cores, and one thread
    means the policy, the sessions and the store need no locks.
*/
#ifndef BUS_SERVER_H
#define BUS_SERVER_H

#include "bus_error.h"
#include "bus_router.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *policy_path;
    const char *data_dir;
    const char *endpoint;       //  default tcp://127.0.0.1:7750
    const char *key_path;       //  bus secret key; default DATA/bus.key (made if missing)
    //  The bus's own key rotation: during the overlap the bus also listens
    //  on next_endpoint with next_key_path's key (both or neither), so each
    //  agent moves to the new key (and endpoint) on its own day.
    const char *next_key_path;
    const char *next_endpoint;
    int ready_fd;               //  -1, or a fd that gets "ready ENDPOINT\n" after bind
    size_t map_max;             //  LMDB map limit in bytes; 0 = default
    uint32_t batch_max;         //  frames per group commit; 0 = 1024
    uint32_t window;            //  unacknowledged DELIVERs per recipient; 0 = 1000
    int heartbeat_ms;           //  0 = 2000
    int quiet;                  //  no per-event lines on stderr
    const char *checkpoints;    //  directory for signed checkpoints (outside data_dir),
                                //  or NULL: none (bus_checkpoint.h)
    const char *sign_key;       //  Ed25519 signing key file (outside data_dir)
    const char *next_sign_key;  //  a second one during a rotation: both sign
    const char *origin;         //  checkpoint origin; default "bulkhead/<bus key fp>"
    uint64_t checkpoint_every;  //  records between checkpoints; 0 = 10000
    uint32_t checkpoint_secs;   //  seconds between checkpoints, even idle; 0 = 60
    const struct med_stage_s *const *stages;    //  NULL: the shipped chain (tests may
                                                //  give their own, NULL-terminated)
} bus_server_options_t;

typedef struct bus_server bus_server_t;

//  Starts a bus: opens the log, loads the policy, binds. 0, or -1 with err
//  when it could not start (bad policy, data dir, key, endpoint).
int
    bus_server_open (bus_server_t **out, const bus_server_options_t *options,
                     bus_error_t *err);

//  Runs the loop until SIGINT or SIGTERM or bus_server_stop. 0 after a
//  clean stop.
int
    bus_server_loop (bus_server_t *self);

//  Asks the loop to stop; safe from another thread (a test runs the bus
//  in-process on a thread of its own).
void
    bus_server_stop (bus_server_t *self);

//  The endpoint it listens on (with the port a tcp://...:* bind chose).
const char *
    bus_server_endpoint (bus_server_t *self);

//  Logs "bus stopped", commits, closes everything. Idempotent.
void
    bus_server_destroy (bus_server_t **self_p);

//  open, loop, destroy: `bulkhead serve`.
int
    bus_server_run (const bus_server_options_t *options, bus_error_t *err);

#endif
