/*  bus_server.c: the bus daemon's loop.

    The order of work for every batch is the guarantee this file exists for:

        read frames -> decide each (chain) -> append records -> COMMIT
        -> only now: send ACKs, WELCOMEs, DELIVERs queued in the outbox
        -> then the observers see what was committed

    Nothing leaves the bus about a message before its record is durable. If
    the commit fails, the outbox is turned into ERRORs (ELOGFULL/ELOGFAIL) and
    the bus stays up refusing every message: fail closed, and say why.

    This file is the loop (poll, batch, commit, flush, timers), start and
    stop, and the policy swap; bus_inbound reads each frame and hands it to
    its handler by frame type, and answers each handshake (ZAP). Neither knows a rule about who may send what
    to whom: those are the chain's (mediators/), run by bus_decide.
*/
#include "bus_approval.h"
#include "bus_anchor.h"
#include "bus_control.h"
#include "bus_core.h"
#include "bus_grants.h"
#include "bus_inbound.h"
#include "bus_keys.h"
#include "bus_metrics.h"
#include "bus_monitor.h"
#include "bus_refusals.h"
#include "bus_wire.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct bus_server {
    bus_core_t core;
    char endpoint [256];
    void *ctx;
    void *zap;
    void *monitor;                      //  the ROUTER's connection events
    int sigfd;
    int stopfd;                         //  bus_server_stop writes here
    bool stop;
    bus_keypair_t bus_key;
    bus_keypair_t next_key;             //  during a rotation of the bus's key
    char next_endpoint [256];           //  where it listens ("" otherwise)
    uint64_t next_timer_us;             //  when to look for expired holds and grants
    uint64_t next_refusals_us;          //  when to write the refusals counted
    uint64_t next_expiry_us;            //  when the next agent key expires
    uint64_t last_timers_us;            //  the clock at the last s_timers
    bus_wire_t *wire;                   //  decodes agents' frames
    bus_inbound_t inbound;              //  frames to handlers
    bus_anchor_t anchor;                //  signed checkpoints of the log
};

//  ---------------------------------------------------------------------
//  Commit, then flush

//  After a successful commit: send the outbox in order, then pump; what
//  waits in corks goes last, one Bundle per connection that takes them.
static void
s_flush (bus_server_t *self)
{
    bus_core_t *core = &self->core;
    for (size_t i = 0; i < bus_outbox_count (core->outbox); i++) {
        bus_out_t *out = bus_outbox_at (core->outbox, i);
        if (out->deliver_seq) {
            bus_session_deliver (core, out->session, out);
        }
        else
        if (!bus_session_cork (core, out->session, out->rid, out->rid_len, &out->data, out->size)) {
            bus_router_send (core->router, out->rid, out->rid_len, out->data, out->size);
        }
    }
    bus_outbox_clear (core->outbox);
    bus_sessions_pump (core);
    bus_sessions_uncork (core);
}

//  The commit failed: nothing of this batch may be acknowledged.
static void
s_flush_failed (bus_server_t *self)
{
    bus_core_t *core = &self->core;
    bus_outbox_fail (core->outbox, core->router, core->failure.code, core->failure.text);
    core->seen_count = 0;               //  nothing was committed: nothing to observe
}

static void
s_on_gone (void *arg, int fd)
{
    bus_session_gone (arg, fd);
}

//  Commit, flush, observe. What the observers raise (alerts, and the
//  bus's own quarantines) is logged in a second small batch right after,
//  so an alert is told within the same turn of the loop, not a poll later.
static void
s_commit (bus_server_t *self)
{
    bus_core_t *core = &self->core;
    for (int round = 0; round < 2; round++) {
        if (!core->failed && bus_store_dirty (core->store)) {
            bus_error_t err;
            uint64_t start = core->metrics? bus_now_us (): 0;
            if (bus_store_commit (core->store, &err) != 0) {
                bus_core_fail (core, &err);
            }
            if (core->metrics) {
                bus_metrics_commit (core->metrics, bus_now_us () - start);
            }
        }
        if (core->failed) {
            s_flush_failed (self);
            return;
        }
        //  Connections that closed before this moment lose their routing
        //  ids now, before anything is sent to one of them.
        bus_router_events (self->monitor, s_on_gone, core);
        s_flush (self);
        bus_core_observe_flush (core);
        if (!bus_monitor_drain (core)) {
            return;
        }
    }
}

//  ---------------------------------------------------------------------
//  Policy

static int
s_policy_load (bus_server_t *self, bus_error_t *err)
{
    bus_core_t *core = &self->core;
    bus_policy_t *policy;
    if (bus_policy_load (&policy, core->options.policy_path, err) != 0) {
        return -1;
    }
    med_chain_t *chain;
    const med_stage_t *const *stages = core->options.stages? core->options.stages
                                                           : med_chain_stages ();
    if (med_chain_open_with (&chain, stages, policy, err) != 0) {
        bus_policy_destroy (&policy);
        return -1;
    }
    //  Outcomes queued in this batch are seen after the commit by the new
    //  chain's observers (their strings are copies): observers' state
    //  starts again with each policy, as every stage's does.
    med_chain_destroy (&core->chain);
    bus_policy_destroy (&core->policy);
    core->policy = policy;
    core->chain = chain;
    bus_monitor_configure (core);       //  baselines and alerts stay
    //  A key changed or removed gets nothing more pushed, from now; its
    //  frames are refused from its next one. The clock is read before the
    //  walk: a key that expires during it is walked again at the next tick.
    uint64_t now = bus_now_us ();
    bus_sessions_rekey (core);
    self->next_expiry_us = bus_policy_next_expiry (policy, now);
    if (core->router) {
        bus_router_limit (core->router, policy->max_frame, err);
    }
    return 0;
}

//  Reload on SIGHUP or an operator's command. Atomic: an invalid file is
//  refused, logged, and the old policy stays. A new policy may complete,
//  or refuse, what waits for approval, and may end grants: every pending
//  hold is decided again, and every grant checked, under it.
static int
s_policy_reload (bus_core_t *core, const char *who, bus_error_t *err)
{
    bus_server_t *self = (bus_server_t *) core;
    char old [BUS_HASH_HEX_LEN + 1];
    snprintf (old, sizeof old, "%s", core->policy->hash);
    if (s_policy_load (self, err) != 0) {
        char event [700];
        snprintf (event, sizeof event, "reload refused: %s", err->text);
        bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_POLICY, who, NULL, err->code, event);
        bus_core_say (core, "BUS-POLICY", "reload=refused by=%s reason=\"%s\"", who, err->text);
        return -1;
    }
    char event [200];
    snprintf (event, sizeof event, "policy reloaded, was %.16s", old);
    bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_POLICY, who, NULL, BUS_OK, event);
    bus_core_say (core, "BUS-POLICY", "reload=ok by=%s hash=%.16s agents=%zu edges=%zu", who,
                  core->policy->hash, core->policy->agent_count, core->policy->edge_count);
    bus_grants_sweep (core);
    bus_approval_resume_all (core, false);
    return 0;
}

//  After the log failed: answer everything with the failure, log nothing.
static void
s_drain_failed (bus_server_t *self)
{
    bus_core_t *core = &self->core;
    bus_inframe_t in;
    while (bus_router_recv (core->router, &in) == 0) {
        bus_outbox_error (core->outbox, in.rid, in.rid_len, core->failure.code, core->failure.text,
                          NULL);
        bus_router_done (&in);
    }
    s_flush_failed (self);
}

static void
s_timers (bus_server_t *self)
{
    bus_core_t *core = &self->core;
    uint64_t now = bus_now_us ();
    //  Every schedule here is on the wall clock (expiries are dates). If it
    //  stepped back, they start again from now: else holds, grants and
    //  expired keys would wait out the step, and a key that expired before
    //  the step (and so passes again until the clock is back) would never
    //  be walked again when it expires a second time.
    if (now < self->last_timers_us) {
        self->next_timer_us = self->next_refusals_us = self->next_expiry_us = 0;
    }
    self->last_timers_us = now;
    if (now < self->next_timer_us || core->failed) {
        return;
    }
    self->next_timer_us = now + 200000;
    if (now >= self->next_refusals_us) {
        self->next_refusals_us = now + 1000000;
        bus_refusals_flush (core, now);
        //  A key that expired since is cut off as a removed one would be.
        //  Only then are the sessions walked: a fleet's ten thousand every
        //  second held a live pair's messages up for milliseconds.
        if (now >= self->next_expiry_us) {
            bus_sessions_rekey (core);
            self->next_expiry_us = bus_policy_next_expiry (core->policy, now);
        }
        if (core->metrics) {
            bus_metrics_render (core->metrics, core);
        }
    }
    //  A bus gone quiet puts what its last commits left in the trail, so
    //  that `log` beside it reads the index alone (s_commit commits it).
    if (bus_store_trail_due (core->store)) {
        bus_error_t err;
        if (bus_store_trail_flush (core->store, &err) != 0) {
            bus_core_fail (core, &err);
            return;
        }
    }
    bus_approval_expire (core, now);
    bus_grants_expire (core, now);
    bus_approval_resume_all (core, true);
    bus_monitor_tick (core, now);
}

//  ---------------------------------------------------------------------
//  Start, loop, stop

//  The overlap of a rotation of the bus's own key: the same ROUTER also
//  listens on the next endpoint with the next key (bus_router_bind_keyed).
static int
s_bind_next (bus_server_t *self, bus_error_t *err)
{
    bus_core_t *core = &self->core;
    const bus_server_options_t *o = &core->options;
    if (!o->next_endpoint || !o->next_key_path) {
        return bus_fail (err, BUS_EINVAL, "--next-key and --next-endpoint go together: the "
                         "next key listens on an endpoint of its own");
    }
    if (bus_keys_load_secret (&self->next_key, o->next_key_path, err) != 0) {
        return -1;
    }
    if (strcmp (self->next_key.public_z85, self->bus_key.public_z85) == 0) {
        return bus_fail (err, BUS_EKEY, "%s is the bus's key itself, not a next one",
                         o->next_key_path);
    }
    if (bus_router_bind_keyed (core->router, o->next_endpoint, self->next_key.secret_z85,
                               self->bus_key.secret_z85, self->next_endpoint,
                               sizeof self->next_endpoint, err) != 0) {
        return -1;
    }
    bus_router_endpoint_key (self->next_endpoint, core->next_local, sizeof core->next_local);
    return 0;
}

static int
s_start (bus_server_t *self, bus_error_t *err)
{
    bus_core_t *core = &self->core;
    const bus_server_options_t *o = &core->options;
    if (mkdir (o->data_dir, 0700) != 0 && errno != EEXIST) {
        return bus_fail (err, BUS_EIO, "data directory %s: %s", o->data_dir, strerror (errno));
    }
    //  A data dir from before the Merkle tree is upgraded here (once).
    bus_store_options_t store_options = { .map_max = o->map_max, .upgrade = true };
    if (o->map_max && o->map_max < ((size_t) 64 << 20)) {
        store_options.map_initial = o->map_max;     //  a small limit starts small
    }
    if (bus_store_open (&core->store, o->data_dir, &store_options, err) != 0
    ||  bus_holds_open (&core->holds, core->store, err) != 0) {
        return -1;
    }
    core->sessions = bus_sessions_new ();
    core->outbox = bus_outbox_new ();
    core->refusals = bus_refusals_new ();
    self->wire = bus_wire_new (4 * (size_t) BUS_HARD_FRAME_MAX / 16 + 65536);
    if (!core->sessions || !core->outbox || !core->refusals || !self->wire) {
        return bus_fail (err, BUS_ENOMEM, "out of memory at start");
    }
    self->inbound = (bus_inbound_t) { core, self->wire, s_policy_reload };
    if (s_policy_load (self, err) != 0 || bus_monitor_open (core, err) != 0
    ||  bus_keys_bus (&self->bus_key, o->data_dir, o->key_path, err) != 0
    ||  bus_anchor_open (&self->anchor, core, self->bus_key.public_z85, err) != 0) {
        return -1;
    }
    //  Signals arrive on a descriptor in the loop; block them before libzmq
    //  starts its threads so those inherit the mask.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGHUP);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    signal (SIGPIPE, SIG_IGN);
    self->sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    self->stopfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);

    self->ctx = zmq_ctx_new ();
    self->zap = zmq_socket (self->ctx, ZMQ_REP);
    if (!self->zap || zmq_bind (self->zap, BUS_ZAP_ENDPOINT) != 0) {
        return bus_fail (err, BUS_EIO, "cannot start the ZAP handler: %s", zmq_strerror (zmq_errno ()));
    }
    core->router = zmq_socket (self->ctx, ZMQ_ROUTER);
    if (!core->router
    ||  bus_router_secure (core->router, self->bus_key.secret_z85, o->heartbeat_ms, err) != 0
    ||  bus_router_limit (core->router, core->policy->max_frame, err) != 0) {
        return -1;
    }
    if (zmq_bind (core->router, o->endpoint) != 0) {
        return bus_fail (err, BUS_EIO, "cannot bind %s: %s", o->endpoint, zmq_strerror (zmq_errno ()));
    }
    size_t len = sizeof self->endpoint;
    zmq_getsockopt (core->router, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    if ((o->next_key_path || o->next_endpoint) && s_bind_next (self, err) != 0) {
        return -1;
    }
    if (!(self->monitor = bus_router_monitor (self->ctx, core->router, err))) {
        return -1;
    }
    if (o->metrics) {
        if (bus_metrics_open (&core->metrics, o->metrics, o->metrics_public, err) != 0) {
            return -1;
        }
        bus_metrics_render (core->metrics, core);
        bus_core_say (core, "BUS-METRICS", "listen=%s port=%u path=/metrics", o->metrics,
                      bus_metrics_port (core->metrics));
    }

    char event [700];
    int at = snprintf (event, sizeof event, "bus started on %s, key %s", self->endpoint,
                       self->bus_key.public_z85);
    if (self->next_endpoint [0]) {
        snprintf (event + at, sizeof event - (size_t) at, "; rotation under way: next key %s "
                  "on %s", self->next_key.public_z85, self->next_endpoint);
    }
    bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_BUS, NULL, self->bus_key.public_z85,
                    BUS_OK, event);
    if (bus_store_upgraded (core->store)) {
        snprintf (event, sizeof event, "data dir upgraded from format 1 to %d (Merkle tree over "
                  "records 1..%" PRIu64 ")", BUS_STORE_FORMAT,
                  bus_store_chain_from (core->store) - 1);
        bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_BUS, NULL, NULL, BUS_OK, event);
    }
    snprintf (event, sizeof event, "policy loaded from %s", o->policy_path);
    bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_POLICY, NULL, NULL, BUS_OK, event);
    //  The policy may have changed while the bus was down: what waits for
    //  approval is decided again under the one loaded now, and grants it
    //  no longer allows end.
    bus_grants_sweep (core);
    bus_approval_resume_all (core, false);
    if (bus_store_commit (core->store, err) != 0) {
        return -1;
    }
    //  The first checkpoint of this run anchors what the log held at start.
    bus_anchor_checkpoint (&self->anchor, core, true);
    if (core->failed) {
        *err = core->failure;
        return -1;
    }
    bus_core_say (core, "BUS-READY", "endpoint=%s bus_key=%s policy=%.16s agents=%zu edges=%zu "
                  "last_seq=%llu%s%s%s%s", self->endpoint, self->bus_key.public_z85,
                  core->policy->hash, core->policy->agent_count, core->policy->edge_count,
                  (unsigned long long) bus_store_last_seq (core->store),
                  self->next_endpoint [0]? " next_endpoint=": "", self->next_endpoint,
                  self->next_endpoint [0]? " next_bus_key=": "",
                  self->next_endpoint [0]? self->next_key.public_z85: "");
    if (o->ready_fd >= 0) {
        dprintf (o->ready_fd, "ready %s\n", self->endpoint);
        close (o->ready_fd);
    }
    return 0;
}

static void
s_on_signal (bus_server_t *self)
{
    struct signalfd_siginfo info;
    while (read (self->sigfd, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            bus_error_t err;
            s_policy_reload (&self->core, "SIGHUP", &err);
        }
        else {
            bus_core_say (&self->core, "BUS-STOP", "signal=%u", info.ssi_signo);
            self->stop = true;
        }
    }
}

int
bus_server_open (bus_server_t **out, const bus_server_options_t *options, bus_error_t *err)
{
    bus_server_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "out of memory");
    }
    bus_server_options_t *o = &self->core.options;
    *o = *options;
    if (!o->endpoint) {
        o->endpoint = "tcp://127.0.0.1:7750";
    }
    if (!o->batch_max) {
        o->batch_max = 1024;
    }
    if (!o->window) {
        o->window = 1000;
    }
    if (!o->heartbeat_ms) {
        o->heartbeat_ms = 2000;
    }
    if (!o->checkpoint_every) {
        o->checkpoint_every = 10000;
    }
    if (!o->checkpoint_secs) {
        o->checkpoint_secs = 60;
    }
    self->sigfd = -1;
    self->stopfd = -1;
    zsys_handler_set (NULL);            //  we own signals, not CZMQ
    if (s_start (self, err) != 0) {
        bus_server_destroy (&self);
        return -1;
    }
    *out = self;
    return 0;
}

const char *
bus_server_endpoint (bus_server_t *self)
{
    return self->endpoint;
}

void
bus_server_stop (bus_server_t *self)
{
    uint64_t one = 1;
    if (write (self->stopfd, &one, sizeof one) != sizeof one) {
        self->stop = true;
    }
}

int
bus_server_loop (bus_server_t *self)
{
    bus_core_t *core = &self->core;
    while (!self->stop) {
        zmq_pollitem_t items [] = {
            { core->router, 0, ZMQ_POLLIN, 0 },
            { self->zap, 0, ZMQ_POLLIN, 0 },
            { NULL, self->sigfd, ZMQ_POLLIN, 0 },
            { NULL, self->stopfd, ZMQ_POLLIN, 0 },
            { self->monitor, 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 5, 1000) < 0) {
            if (zmq_errno () == EINTR) {
                continue;
            }
            return -1;
        }
        if (items [3].revents & ZMQ_POLLIN) {
            self->stop = true;
        }
        if (items [2].revents & ZMQ_POLLIN) {
            s_on_signal (self);
        }
        //  Every handshake waiting, up to a batch, before the commit: one
        //  per pass served a reconnect storm one fsync apart, and agents
        //  whose handshake timed out meanwhile came back to queue again.
        if (items [1].revents & ZMQ_POLLIN) {
            for (uint32_t n = 0; n < core->options.batch_max && bus_inbound_zap (&self->inbound, self->zap); n++) {
            }
        }
        if (items [4].revents & ZMQ_POLLIN) {
            bus_router_events (self->monitor, s_on_gone, core);
        }
        if (core->failed) {
            s_drain_failed (self);
            continue;
        }
        s_timers (self);
        //  Read what is ready, up to a batch, then commit once. Keep room
        //  in the outbox for what one frame may add (an ACK, a DELIVER,
        //  Pending notices, a reply to a sender whose hold ended). (A time
        //  bound on a batch was tried against floods: it did not shorten
        //  the innocent's tail, and it multiplied the fsyncs at full load.)
        //  A bundle counts as the frames it holds.
        for (uint32_t n = 0; n < core->options.batch_max; ) {
            int taken = bus_outbox_reserve (core->outbox, 16) != 0
                      ? 0: bus_inbound_read (&self->inbound);
            if (taken == 0) {
                break;
            }
            n += (uint32_t) taken;
        }
        s_commit (self);
        bus_anchor_checkpoint (&self->anchor, core, false);
    }
    return 0;
}

void
bus_server_destroy (bus_server_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_server_t *self = *self_p;
    bus_core_t *core = &self->core;
    if (core->store && !core->failed && core->policy && core->router) {
        bus_refusals_flush (core, bus_now_us ());
        bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_BUS, NULL, NULL, BUS_OK, "bus stopped");
        bus_monitor_save (core);        //  baselines as they are now, for the next start
        //  A flush may append again (a disconnect seen meanwhile): commit
        //  until nothing is left, so that a clean stop anchors everything
        //  but the record of this last checkpoint itself.
        s_commit (self);
        for (int i = 0; i < 8 && !core->failed && bus_store_dirty (core->store); i++) {
            s_commit (self);
        }
        bus_anchor_checkpoint (&self->anchor, core, true);
        s_commit (self);
    }
    bus_anchor_close (&self->anchor);
    bus_outbox_destroy (&core->outbox);
    if (core->router) {
        zmq_close (core->router);
    }
    if (self->zap) {
        zmq_close (self->zap);
    }
    if (self->monitor) {
        zmq_close (self->monitor);
    }
    if (self->ctx) {
        zmq_ctx_term (self->ctx);
    }
    if (self->sigfd >= 0) {
        close (self->sigfd);
    }
    if (self->stopfd >= 0) {
        close (self->stopfd);
    }
    bus_sessions_destroy (&core->sessions);
    bus_refusals_destroy (&core->refusals);
    bus_wire_destroy (&self->wire);
    bus_holds_destroy (&core->holds);
    bus_metrics_destroy (&core->metrics);
    bus_monitor_close (core);
    med_chain_destroy (&core->chain);
    bus_policy_destroy (&core->policy);
    bus_store_destroy (&core->store);
    free (core->seen);
    free (self);
    *self_p = NULL;
}

int
bus_server_run (const bus_server_options_t *options, bus_error_t *err)
{
    bus_server_t *self;
    if (bus_server_open (&self, options, err) != 0) {
        return -1;
    }
    int rc = bus_server_loop (self);
    bus_server_destroy (&self);
    return rc;
}
