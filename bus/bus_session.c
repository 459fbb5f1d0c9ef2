/*  bus_session.c: sessions, HELLO, cursors and the pump, see bus_session.h. */
#include "bus_core.h"
#include "bus_record.h"
#include "bus_session.h"
#include "bus_taint.h"
#include "bus_wire.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_PROTOCOL_VERSION    1

struct bus_sessions {
    zhashx_t *table;                    //  agent name -> bus_session_t
    bus_session_t **by_fd;              //  fd of every live connection -> its session
    size_t by_fd_size;
    //  Every session that is online with a backlog is in `due` (perhaps
    //  others too, dropped at the next pump): the pump after each commit
    //  visits those, not the thousands of idle sessions of a fleet.
    bus_session_t **due;
    size_t due_count;
    size_t due_cap;
    bool due_lost;                      //  an append failed: the next pump visits all
    size_t online;                      //  sessions online now
    bus_session_t **corked;             //  sessions whose cork holds frames
    size_t corked_count;
    size_t corked_cap;
};

//  A DELIVER in a cork: what its bundle's fate decides.
typedef struct {
    uint64_t seq;
    uint64_t time_us;
    bool restricted;
} s_pushed_t;

struct bus_cork {
    bus_bundle_t bundle;
    s_pushed_t *delivers;
    size_t count;
    size_t alloc;
    uint64_t bytes;                     //  the DELIVERs' bytes
    size_t replies;                     //  bytes of the other frames in this bundle
    uint64_t sent;                      //  the session's `sent` and `pushed` before them
    uint64_t pushed;
    bool listed;                        //  in bus_sessions_t.corked
};

//  What a cork keeps between flushes: lists for a few hundred frames; a
//  longer one is allocated for a burst and freed after, so a fleet's
//  sessions do not each keep what one busy agent needed once.
#define CORK_KEEP_FRAMES    256

//  Frees the frames (the cork owns them) and forgets them.
static void
s_cork_empty (struct bus_cork *cork)
{
    for (size_t i = 0; i < cork->bundle.count; i++) {
        free ((void *) cork->bundle.parts [i].data);
    }
    bus_bundle_reset (&cork->bundle, CORK_KEEP_FRAMES);
    if (cork->alloc > CORK_KEEP_FRAMES) {
        free (cork->delivers);
        cork->delivers = NULL;
        cork->alloc = 0;
    }
    cork->count = 0;
    cork->bytes = 0;
    cork->replies = 0;
}

static void
s_session_destroy (void **item)
{
    bus_session_t *session = *item;
    zhashx_t *by_sender = session->by_sender;
    zhashx_destroy (&by_sender);
    if (session->cork) {
        s_cork_empty (session->cork);
        bus_bundle_reset (&session->cork->bundle, 0);
        free (session->cork->delivers);
        free (session->cork);
    }
    free (session);
    *item = NULL;
}

//  Counts of a recipient's unacknowledged messages by sender, for the fair
//  share (med_backlog): values are counts stored in the pointer.
static void
s_count (bus_session_t *session, const char *sender, int delta)
{
    if (!session->by_sender) {
        return;
    }
    uintptr_t count = (uintptr_t) zhashx_lookup (session->by_sender, sender);
    count = delta < 0? (count > (uintptr_t) -delta? count + (uintptr_t) (intptr_t) delta: 0)
                     : count + (uintptr_t) delta;
    if (count) {
        zhashx_update (session->by_sender, sender, (void *) count);
    }
    else {
        zhashx_delete (session->by_sender, sender);
    }
}

//  The sender of the message at seq, from the cause index.
static bool
s_sender_of (bus_core_t *core, uint64_t seq, char sender [BUS_NAME_MAX + 1])
{
    bus_cause_t cause;
    bus_error_t err;
    if (bus_store_cause (core->store, seq, &cause, &err) != 0) {
        return false;
    }
    memcpy (sender, cause.sender, sizeof cause.sender);
    return true;
}

//  Walks agent's mailbox over (after, up_to], S_RANGE seqs per cursor
//  (bus_store_mailbox_range), and returns how many it holds there. With a
//  session, each message's sender is counted by delta (s_count). A read
//  that fails is said, and ends the walk.
#define S_RANGE     256

static uint32_t
s_mailbox_walk (bus_core_t *core, const char *agent, uint64_t after, uint64_t up_to,
                bus_session_t *senders, int delta)
{
    uint64_t seqs [S_RANGE];
    uint32_t count = 0;
    for (size_t n = S_RANGE; n == S_RANGE; ) {
        bus_error_t err;
        if (bus_store_mailbox_range (core->store, agent, after, up_to, seqs, S_RANGE, &n,
                                     &err) != 0) {
            bus_core_say (core, "BUS-MAILBOX", "agent=%s code=%s reason=\"%s\"", agent,
                          bus_errname (err.code), err.text);
            break;
        }
        count += (uint32_t) n;
        for (size_t i = 0; senders && i < n; i++) {
            char sender [BUS_NAME_MAX + 1];
            if (s_sender_of (core, seqs [i], sender)) {
                s_count (senders, sender, delta);
            }
        }
        after = n? seqs [n - 1]: after;
    }
    return count;
}

//  The fair share is checked only once a mailbox holds at least its
//  share; below that, counting each message's sender would cost every
//  message a look-up for nothing. So counts per sender are kept only from
//  that point (built once by a scan of the mailbox), and dropped when the
//  mailbox is empty again.
static uint32_t
s_track_from (bus_core_t *core, const bus_session_t *session)
{
    const bus_agent_t *agent = bus_policy_agent (core->policy, session->agent);
    uint64_t cap = agent? agent->max_backlog: core->policy->max_backlog;
    uint64_t share = cap * core->policy->backlog_share / 100;
    share = share? share: 1;
    return share < 64? (uint32_t) share: 64;
}

static void
s_track (bus_core_t *core, bus_session_t *session)
{
    if (session->by_sender || session->pending < s_track_from (core, session)) {
        return;
    }
    if (!(session->by_sender = zhashx_new ())) {
        return;
    }
    s_mailbox_walk (core, session->agent, session->acked, UINT64_MAX, session, 1);
}

uint32_t
bus_session_pending_from (bus_session_t *session, const char *sender)
{
    return session->by_sender? (uint32_t) (uintptr_t) zhashx_lookup (session->by_sender, sender): 0;
}

bus_sessions_t *
bus_sessions_new (void)
{
    bus_sessions_t *self = calloc (1, sizeof *self);
    if (self && !(self->table = zhashx_new ())) {
        free (self);
        return NULL;
    }
    if (self) {
        zhashx_set_destructor (self->table, s_session_destroy);
    }
    return self;
}

void
bus_sessions_destroy (bus_sessions_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    zhashx_destroy (&(*self_p)->table);
    free ((*self_p)->by_fd);
    free ((*self_p)->due);
    free ((*self_p)->corked);
    free (*self_p);
    *self_p = NULL;
}

bus_session_t *
bus_session_find (bus_core_t *core, const char *agent)
{
    return zhashx_lookup (core->sessions->table, agent);
}

bus_session_t *
bus_session_first (bus_core_t *core)
{
    return zhashx_first (core->sessions->table);
}

bus_session_t *
bus_session_next (bus_core_t *core)
{
    return zhashx_next (core->sessions->table);
}

bus_session_t *
bus_session_get (bus_core_t *core, const char *agent)
{
    bus_session_t *session = bus_session_find (core, agent);
    if (session) {
        return session;
    }
    session = calloc (1, sizeof *session);
    if (!session) {
        return NULL;
    }
    snprintf (session->agent, sizeof session->agent, "%s", agent);
    session->fd = -1;
    bus_error_t err;
    if (bus_store_cursor_get (core->store, agent, &session->acked, &err) != 0) {
        session->acked = 0;
    }
    session->sent = session->acked;
    session->pushed = session->acked;
    //  Count what waits in its mailbox once; from then on it is kept current.
    session->pending = s_mailbox_walk (core, agent, session->acked, UINT64_MAX, NULL, 0);
    session->backlog = session->pending > 0;
    s_track (core, session);
    bus_taint_load (core, session);
    zhashx_insert (core->sessions->table, agent, session);
    return session;
}

//  The session has entries past `sent` to push: the pump looks at it after
//  the commit. An offline one joins the list when s_bind brings it online.
static void
s_due (bus_core_t *core, bus_session_t *session)
{
    bus_sessions_t *self = core->sessions;
    session->backlog = true;
    if (session->due || !session->online) {
        return;
    }
    if (self->due_count == self->due_cap) {
        size_t cap = self->due_cap? self->due_cap * 2: 64;
        bus_session_t **due = realloc (self->due, cap * sizeof *due);
        if (!due) {
            self->due_lost = true;
            return;
        }
        self->due = due;
        self->due_cap = cap;
    }
    self->due [self->due_count++] = session;
    session->due = true;
}

//  No connection to deliver to: what is not acknowledged stays queued.
static void
s_unbind (bus_core_t *core, bus_session_t *session)
{
    core->sessions->online -= session->online;
    session->fd = -1;
    session->rid_len = 0;
    session->online = false;
    session->backlog = true;            //  pushed from the cursor at its next bind
    session->bundle = 0;                //  until a HELLO on the next connection offers it
    if (session->cork) {
        s_cork_empty (session->cork);   //  nothing of it went; the next bind resends
    }
}

//  Makes peer's connection the one session delivers to.
static void
s_bind (bus_core_t *core, bus_session_t *session, const bus_peer_t *peer)
{
    core->sessions->online += !session->online;
    session->fd = peer->fd;
    memcpy (session->rid, peer->rid, peer->rid_len);
    session->rid_len = peer->rid_len;
    snprintf (session->key, sizeof session->key, "%s", peer->key? peer->key: "");
    session->sent = session->acked;
    session->inflight = 0;
    session->inflight_bytes = 0;
    session->online = true;
    s_due (core, session);
}

//  The session owning the live connection on fd, or NULL.
static bus_session_t *
s_owner (bus_sessions_t *self, int fd)
{
    return fd >= 0 && (size_t) fd < self->by_fd_size? self->by_fd [fd]: NULL;
}

//  The connection on fd is no longer session's (closed, or its descriptor
//  was taken by a connection whose close we had not seen yet).
static void
s_release (bus_core_t *core, bus_session_t *session, int fd)
{
    core->sessions->by_fd [fd] = NULL;
    if (session->connections) {
        session->connections--;
    }
    if (session->fd == fd) {
        s_unbind (core, session);
        bus_core_say (core, "BUS-OFFLINE", "agent=%s acked=%llu", session->agent,
                      (unsigned long long) session->acked);
        bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, session->agent,
                        session->key, BUS_OK, "disconnected; unacknowledged messages stay queued");
    }
}

bool
bus_session_connection (bus_core_t *core, bus_session_t *session, int fd)
{
    bus_sessions_t *self = core->sessions;
    if (fd < 0) {
        return true;                    //  no descriptor: nothing to count by
    }
    bus_session_t *owner = s_owner (self, fd);
    if (owner == session) {
        return true;
    }
    if (owner) {
        s_release (core, owner, fd);
    }
    if (session->connections >= core->policy->connections) {
        return false;
    }
    if ((size_t) fd >= self->by_fd_size) {
        size_t size = self->by_fd_size? self->by_fd_size: 1024;
        while (size <= (size_t) fd) {
            size *= 2;
        }
        bus_session_t **by_fd = realloc (self->by_fd, size * sizeof *by_fd);
        if (!by_fd) {
            return false;
        }
        memset (by_fd + self->by_fd_size, 0, (size - self->by_fd_size) * sizeof *by_fd);
        self->by_fd = by_fd;
        self->by_fd_size = size;
    }
    self->by_fd [fd] = session;
    session->connections++;
    return true;
}

void
bus_session_seen (bus_core_t *core, bus_session_t *session, const bus_peer_t *peer)
{
    if (session->fd < 0 && session->hello) {
        s_bind (core, session, peer);
    }
}

void
bus_session_gone (bus_core_t *core, int fd)
{
    bus_session_t *owner = s_owner (core->sessions, fd);
    if (owner) {
        s_release (core, owner, fd);
    }
}

bool
bus_session_budget (bus_session_t *session, const bus_agent_t *agent, size_t size, uint64_t now_us)
{
    double frames = agent->frames;
    double bytes = agent->bytes;
    if (session->budget_us == 0) {
        session->budget_frames = frames;
        session->budget_bytes = bytes;
    }
    else
    if (now_us > session->budget_us) {
        double seconds = (double) (now_us - session->budget_us) / 1e6;
        session->budget_frames += seconds * frames;
        session->budget_bytes += seconds * bytes;
        session->budget_frames = session->budget_frames > frames? frames: session->budget_frames;
        session->budget_bytes = session->budget_bytes > bytes? bytes: session->budget_bytes;
    }
    session->budget_us = now_us;
    if (session->budget_frames < 1.0 || session->budget_bytes < (double) size) {
        return false;
    }
    session->budget_frames -= 1.0;
    session->budget_bytes -= (double) size;
    return true;
}

double
bus_session_log_left (bus_core_t *core, bus_session_t *session, const bus_agent_t *agent,
                      uint64_t now_us)
{
    //  The budget per hour: the agent's, or 5% of the log's map limit.
    size_t map = core->options.map_max? core->options.map_max: (size_t) 64 << 30;
    double budget = agent->log_budget? (double) agent->log_budget * 1024.0: (double) map * 0.05;
    if (session->log_us == 0) {
        session->log_left = budget;
    }
    else
    if (now_us > session->log_us) {
        session->log_left += (double) (now_us - session->log_us) / 3.6e9 * budget;
        session->log_left = session->log_left > budget? budget: session->log_left;
    }
    session->log_us = now_us;
    return session->log_left;
}

void
bus_session_log_spent (bus_session_t *session, size_t bytes)
{
    session->log_left -= (double) bytes;
}

void
bus_sessions_rekey (bus_core_t *core)
{
    for (bus_session_t *session = bus_session_first (core); session;
         session = bus_session_next (core)) {
        const bus_agent_t *agent = bus_policy_agent (core->policy, session->agent);
        if (session->rid_len == 0
        ||  (agent && bus_policy_agent_by_live_key (core->policy, session->key, bus_now_us (),
                                                    NULL) == agent)) {
            continue;
        }
        s_unbind (core, session);
        session->hello = false;
        bool expired = agent && (strcmp (agent->key_z85, session->key) == 0
                                 || strcmp (agent->next_key_z85, session->key) == 0);
        const char *why = !agent? "agent removed: its connection gets nothing more"
                        : expired? "key expired: its connection gets nothing more"
                        : "key changed or rotated out: its connection gets nothing more";
        bus_core_say (core, "BUS-REKEY", "agent=%s reason=\"%s\"", session->agent, why);
        bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, session->agent,
                        session->key, expired? BUS_EEXPIRED: BUS_EUNKNOWN, why);
    }
}

//  ROUTER_MANDATORY told us the connection is gone (EHOSTUNREACH): what
//  was not acknowledged stays in the mailbox for its next HELLO. Logged
//  as a session event; the record commits with the next batch.
static void
s_gone (bus_core_t *core, bus_session_t *session)
{
    s_unbind (core, session);
    bus_core_say (core, "BUS-OFFLINE", "agent=%s acked=%llu", session->agent,
                  (unsigned long long) session->acked);
    bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, session->agent, NULL, BUS_OK,
                    "disconnected (found at delivery); unacknowledged messages stay queued");
}

//  ---------------------------------------------------------------------
//  Corks: a flush's frames for one connection, sent as one Bundle

//  Counts seq as pushed on session's connection.
static void
s_push (bus_session_t *session, uint64_t seq, size_t size)
{
    session->sent = seq;
    session->pushed = seq > session->pushed? seq: session->pushed;
    session->inflight++;
    session->inflight_bytes += size;
}

//  Sends what session's cork holds. A bundle libzmq does not take gives
//  its DELIVERs back: `sent` goes back to before them, and the pump sends
//  them again from the log. 0, or the error bus_router_send returned.
static int
s_uncork (bus_core_t *core, bus_session_t *session)
{
    struct bus_cork *cork = session->cork;
    if (!cork || cork->bundle.count == 0) {
        return 0;
    }
    int rc = cork->bundle.count == 1
           ? bus_router_send (core->router, session->rid, session->rid_len,
                              cork->bundle.parts [0].data, cork->bundle.parts [0].size)
           : bus_router_send_bundle (core->router, session->rid, session->rid_len, &cork->bundle);
    if (rc == 0) {
        for (size_t i = 0; i < cork->count; i++) {
            if (cork->delivers [i].restricted) {
                bus_taint_mark (core, session, cork->delivers [i].seq, cork->delivers [i].time_us);
            }
        }
    }
    else
    if (cork->count) {
        session->sent = cork->sent;
        session->pushed = cork->pushed;
        session->inflight -= session->inflight < cork->count? session->inflight
                                                             : (uint32_t) cork->count;
        session->inflight_bytes -= session->inflight_bytes < cork->bytes? session->inflight_bytes
                                                                         : cork->bytes;
    }
    s_cork_empty (cork);
    if (rc == EHOSTUNREACH) {
        s_gone (core, session);
    }
    else
    if (rc != 0) {
        s_due (core, session);
    }
    return rc;
}

//  Session's cork, made and listed for bus_sessions_uncork. NULL when
//  memory is out.
static struct bus_cork *
s_cork_get (bus_core_t *core, bus_session_t *session)
{
    bus_sessions_t *self = core->sessions;
    if (!session->cork && !(session->cork = calloc (1, sizeof *session->cork))) {
        return NULL;
    }
    struct bus_cork *cork = session->cork;
    if (!cork->listed) {
        if (self->corked_count == self->corked_cap) {
            size_t cap = self->corked_cap? self->corked_cap * 2: 64;
            bus_session_t **corked = realloc (self->corked, cap * sizeof *corked);
            if (!corked) {
                return NULL;
            }
            self->corked = corked;
            self->corked_cap = cap;
        }
        self->corked [self->corked_count++] = session;
        cork->listed = true;
    }
    return cork;
}

//  Puts a frame (a DELIVER if pushed) in session's cork, which owns data
//  from here when this says true; first sends what the cork holds if the
//  frame would not fit in the same bundle. False when the caller must
//  send it itself, or not at all: the
//  connection takes no bundles or this one is bigger than a bundle (what
//  waited has gone first, to keep the order), memory is out, or the cork
//  could not be sent (its DELIVERs are the pump's again: check `sent`).
static bool
s_cork (bus_core_t *core, bus_session_t *session, uint8_t *data, size_t size,
        const s_pushed_t *pushed)
{
    struct bus_cork *cork = session->cork;
    //  No bundle is bigger than one frame an agent may send (max_frame):
    //  libzmq's high-water mark counts frames, so a connection that
    //  acknowledges without reading (the window then lets everything
    //  through) holds at most the frames it did before bundles, each no
    //  bigger than it could have been.
    size_t limit = session->bundle < core->policy->max_frame? session->bundle
                                                             : core->policy->max_frame;
    bool fits = limit && session->online && size <= limit;
    bool full = cork && cork->bundle.count
             && (bus_bundle_with (&cork->bundle, size) > limit
                 || (!pushed && cork->replies + size > BUS_BUNDLE_REPLIES));
    if (!fits || full) {
        if (s_uncork (core, session) != 0 || !fits) {
            return false;
        }
    }
    if (!(cork = s_cork_get (core, session))) {
        s_uncork (core, session);
        return false;
    }
    if (pushed && cork->count == cork->alloc) {
        size_t alloc = cork->alloc? cork->alloc * 2: 64;
        s_pushed_t *delivers = realloc (cork->delivers, alloc * sizeof *delivers);
        if (!delivers) {
            s_uncork (core, session);
            return false;
        }
        cork->delivers = delivers;
        cork->alloc = alloc;
    }
    if (bus_bundle_add (&cork->bundle, data, size) != 0) {
        s_uncork (core, session);
        return false;
    }
    if (!pushed) {
        cork->replies += size;
    }
    else {
        if (cork->count == 0) {
            cork->sent = session->sent;
            cork->pushed = session->pushed;
        }
        cork->delivers [cork->count++] = *pushed;
        cork->bytes += size;
    }
    return true;
}

bool
bus_session_cork (bus_core_t *core, bus_session_t *session, const uint8_t *rid, size_t rid_len,
                  uint8_t **data, size_t size)
{
    if (!session || !session->bundle || rid_len != session->rid_len
    ||  memcmp (rid, session->rid, rid_len) != 0 || !s_cork (core, session, *data, size, NULL)) {
        return false;
    }
    *data = NULL;
    return true;
}

void
bus_sessions_uncork (bus_core_t *core)
{
    bus_sessions_t *self = core->sessions;
    for (size_t i = 0; i < self->corked_count; i++) {
        bus_session_t *session = self->corked [i];
        session->cork->listed = false;
        s_uncork (core, session);
    }
    self->corked_count = 0;
}

//  Moves an agent's delivery cursor to up_to (it processed everything
//  before), durably and on the log.
static void
s_advance (bus_core_t *core, bus_session_t *session, uint64_t up_to, const char *event)
{
    if (up_to <= session->acked) {
        return;
    }
    uint32_t count = s_mailbox_walk (core, session->agent, session->acked, up_to,
                                     session->by_sender? session: NULL, -1);
    bus_error_t err;
    if (bus_store_cursor_set (core->store, session->agent, up_to, &err) != 0) {
        bus_core_fail (core, &err);
        return;
    }
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_DELIVERY_ACK);
    rec.sender = session->agent;
    rec.has_ref_seq = true;
    rec.ref_seq = up_to;
    rec.event = (char *) event;
    bus_core_append (core, &rec);
    session->acked = up_to;
    session->pushed = up_to > session->pushed? up_to: session->pushed;
    uint32_t before = session->inflight;
    session->inflight = session->inflight > count? session->inflight - count: 0;
    //  Sizes are not kept per message: what is still in flight keeps its
    //  share of the bytes.
    session->inflight_bytes = before? session->inflight_bytes * session->inflight / before: 0;
    session->pending = session->pending > count? session->pending - count: 0;
    if (session->pending == 0 && session->by_sender) {
        zhashx_t *by_sender = session->by_sender;
        zhashx_destroy (&by_sender);
        session->by_sender = NULL;
    }
}

void
bus_session_ack (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__DeliveryAck *ack)
{
    bus_session_t *session = peer->session;
    //  An agent cannot acknowledge what it was not sent: that would skip
    //  messages in its own mailbox. Any of its connections may acknowledge
    //  what any of them was sent. Room freed in its window is used by the
    //  pump after the commit.
    uint64_t up_to = ack->up_to < session->pushed? ack->up_to: session->pushed;
    s_advance (core, session, up_to, "processed up to ref_seq");
}

//  WELCOME lists what it may reach, so an agent can plan within policy.
static void
s_welcome (bus_core_t *core, bus_peer_t *peer, uint64_t resume)
{
    const bus_policy_t *policy = core->policy;
    uint32_t me = bus_policy_agent_index (policy, peer->agent);
    Bulkhead__V1__Reach *reach = calloc (policy->edge_count + 1, sizeof *reach);
    Bulkhead__V1__Reach **reach_ptrs = calloc (policy->edge_count + 1, sizeof *reach_ptrs);
    char **intents = calloc (policy->edge_count * policy->class_count + 1, sizeof *intents);
    size_t n_reach = 0;
    size_t n_intents = 0;
    if (reach && reach_ptrs && intents) {
        for (size_t i = 0; i < policy->edge_count; i++) {
            const bus_edge_t *edge = &policy->edges [i];
            if (edge->from != me) {
                continue;
            }
            bulkhead__v1__reach__init (&reach [n_reach]);
            reach [n_reach].recipient = (char *) policy->agents [edge->to].name;
            reach [n_reach].intents = intents + n_intents;
            for (size_t c = 0; c < policy->class_count; c++) {
                if (edge->classes & (UINT64_C (1) << c)) {
                    intents [n_intents++] = (char *) policy->classes [c].name;
                    reach [n_reach].n_intents++;
                }
            }
            reach_ptrs [n_reach] = &reach [n_reach];
            n_reach++;
        }
    }
    Bulkhead__V1__Welcome welcome = BULKHEAD__V1__WELCOME__INIT;
    welcome.agent = (char *) peer->agent->name;
    welcome.version = BUS_PROTOCOL_VERSION;
    welcome.policy_hash = (char *) policy->hash;
    welcome.n_reach = n_reach;
    welcome.reach = reach_ptrs;
    welcome.has_resume_from = true;
    welcome.resume_from = resume;
    welcome.has_bundle = true;          //  a bundle is one frame: max_frame holds
    welcome.bundle = policy->max_frame;
    frame_t frame = BULKHEAD__V1__FRAME__INIT;
    frame.body_case = BULKHEAD__V1__FRAME__BODY_WELCOME;
    frame.welcome = &welcome;
    bus_outbox_frame (core->outbox, peer->rid, peer->rid_len, &frame, NULL);
    free (reach);
    free (reach_ptrs);
    free (intents);
}

void
bus_session_hello (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Hello *hello)
{
    if (hello->version != BUS_PROTOCOL_VERSION) {
        char reason [128];
        snprintf (reason, sizeof reason, "protocol version %u is not supported (this bus speaks %d)",
                  hello->version, BUS_PROTOCOL_VERSION);
        bus_core_refuse (core, peer, BUS_EVERSION, reason, NULL);
        return;
    }
    bus_session_t *session = peer->session;
    session->hello = true;
    //  The connection that said HELLO last is the one deliveries go to. A
    //  HELLO again on that same connection resends nothing in flight: it
    //  cannot make the bus queue its window again.
    bool same = session->online && session->fd == peer->fd && session->rid_len == peer->rid_len
             && memcmp (session->rid, peer->rid, peer->rid_len) == 0;
    if (!same) {
        s_bind (core, session, peer);
    }
    session->bundle = !hello->has_bundle? 0
                    : hello->bundle < BUS_BUNDLE_MAX? hello->bundle: (uint32_t) BUS_BUNDLE_MAX;
    //  Resume after what it says it has processed, never before what it
    //  acknowledged: an agent that lost its state gets no replay of acked
    //  messages, one that kept it gets nothing twice.
    if (hello->has_last_seq && hello->last_seq <= bus_store_last_seq (core->store)) {
        s_advance (core, session, hello->last_seq, "hello: processed up to ref_seq");
    }
    uint64_t resume = session->acked;
    if (!same) {
        session->sent = resume;
    }
    s_welcome (core, peer, resume);

    //  During a rotation of the bus's key, the log says which key each
    //  agent pinned: the operator ends the overlap when none use the old.
    char local [256];
    bool next = core->next_local [0] && bus_router_local (peer->fd, local, sizeof local) == 0
             && strcmp (local, core->next_local) == 0;
    char event [160];
    snprintf (event, sizeof event, "hello, resume after %llu%s", (unsigned long long) resume,
              next? ", via the next bus key": "");
    bus_core_event (core, BULKHEAD__V1__RECORD_KIND__RECORD_SESSION, peer->agent->name, peer->key,
                    BUS_OK, event);
    bus_core_say (core, "BUS-HELLO", "agent=%s resume=%llu", peer->agent->name,
                  (unsigned long long) resume);
}

void
bus_session_accept (bus_core_t *core, bus_session_t *session, const record_t *rec)
{
    session->pending++;
    if (session->by_sender) {
        if (rec->sender) {
            s_count (session, rec->sender, 1);
        }
    }
    else {
        s_track (core, session);        //  counts this one too, by the scan
    }
    bus_taint_accept (core, session, rec);
    uint8_t *data = NULL;
    size_t size = 0;
    if (!session->online || !(data = bus_record_deliver (rec, &size))
    ||  bus_outbox_deliver (core->outbox, session, rec->seq,
                            rec->has_restricted && rec->restricted, rec->time_us, data, size) != 0) {
        s_due (core, session);
    }
}

//  Whether a DELIVER of seq (size bytes) may go to session now: it is in
//  step with its mailbox (the next one) and its window has room.
static bool
s_in_step (bus_core_t *core, const bus_session_t *session, uint64_t seq, size_t size)
{
    return session->online && !session->backlog && seq > session->sent
        && session->inflight < core->options.window
        && session->inflight_bytes + size <= BUS_INFLIGHT_BYTES;
}

void
bus_session_deliver (bus_core_t *core, bus_session_t *session, bus_out_t *out)
{
    uint64_t seq = out->deliver_seq;
    s_pushed_t pushed = { seq, out->time_us, out->restricted };
    if (s_in_step (core, session, seq, out->size)
    &&  s_cork (core, session, out->data, out->size, &pushed)) {
        out->data = NULL;               //  the cork's now
        s_push (session, seq, out->size);
        return;
    }
    //  Direct delivery only while the session is in step with its mailbox;
    //  otherwise the pump sends it, in order, from the log.
    if (!s_in_step (core, session, seq, out->size)) {
        if (seq > session->sent) {
            s_due (core, session);
            bus_outbox_keep (core->outbox, out);    //  for the pump
        }
        return;
    }
    int rc = bus_router_send (core->router, session->rid, session->rid_len, out->data, out->size);
    if (rc == 0) {
        s_push (session, seq, out->size);
        if (out->restricted) {
            bus_taint_mark (core, session, seq, out->time_us);
        }
    }
    else
    if (rc == EHOSTUNREACH) {
        s_gone (core, session);
    }
    else {
        s_due (core, session);
    }
}

//  Seq's DELIVER built from its record in the log. A declassified message
//  is replayed unmarked (its record is not changed: the DELIVER says what
//  the bus vouches for now). 0, or -1 having said why.
static int
s_replay (bus_core_t *core, bus_session_t *session, uint64_t seq, uint8_t **data,
          size_t *size, bool *restricted, uint64_t *time_us)
{
    bus_error_t err;
    record_t *rec = NULL;
    if (bus_store_record (core->store, seq, &rec, &err) != 0) {
        bus_core_say (core, "BUS-MAILBOX", "agent=%s code=%s reason=\"%s\"",
                      session->agent, bus_errname (err.code), err.text);
        return -1;
    }
    *restricted = rec->has_restricted && rec->restricted;
    if (*restricted && bus_taint_declassified (core, seq)) {
        rec->restricted = false;
        *restricted = false;
    }
    *data = bus_record_deliver (rec, size);
    *time_us = rec->time_us;
    bulkhead__v1__record__free_unpacked (rec, NULL);
    return *data? 0: -1;
}

void
bus_session_pump (bus_core_t *core, bus_session_t *session)
{
    uint32_t window = core->options.window;
    bus_error_t err;
    while (session->online && session->backlog && session->inflight < window
       &&  session->inflight_bytes < BUS_INFLIGHT_BYTES && !core->failed) {
        uint64_t seq;
        int rc = bus_store_mailbox_next (core->store, session->agent, session->sent, &seq, &err);
        if (rc == 1) {
            session->backlog = false;
            break;
        }
        if (rc != 0) {
            bus_core_say (core, "BUS-MAILBOX", "agent=%s code=%s reason=\"%s\"",
                          session->agent, bus_errname (err.code), err.text);
            break;
        }
        size_t size;
        bool restricted;
        uint64_t time_us;
        uint8_t *data = bus_outbox_take (core->outbox, seq, &size, &restricted, &time_us);
        if (data && restricted && bus_taint_declassified (core, seq)) {
            free (data);                //  built marked: rebuild it from the log
            data = NULL;
        }
        if (!data && s_replay (core, session, seq, &data, &size, &restricted, &time_us) != 0) {
            break;
        }
        uint64_t after = session->sent;
        s_pushed_t pushed = { seq, time_us, restricted };
        if (s_cork (core, session, data, size, &pushed)) {
            s_push (session, seq, size);
            continue;
        }
        if (!session->online || session->sent != after) {
            free (data);            //  its cork did not go: the pump's again, later
            break;
        }
        int sent = bus_router_send (core->router, session->rid, session->rid_len, data, size);
        free (data);
        if (sent == EHOSTUNREACH) {
            s_gone (core, session);
            break;
        }
        if (sent != 0) {
            break;                  //  EAGAIN: its queue is full; try later
        }
        s_push (session, seq, size);
        if (restricted) {
            bus_taint_mark (core, session, seq, time_us);   //  replayed restricted content
        }
    }
}

void
bus_sessions_pump (bus_core_t *core)
{
    bus_sessions_t *self = core->sessions;
    if (self->due_lost) {
        //  An append failed: find every session that is due, and pump the
        //  ones the list still has no room for (s_due says so again, so the
        //  next pump looks again).
        self->due_lost = false;
        for (bus_session_t *session = zhashx_first (self->table); session;
             session = zhashx_next (self->table)) {
            if (session->online && session->backlog && !session->due) {
                s_due (core, session);
                if (!session->due) {
                    bus_session_pump (core, session);
                }
            }
        }
    }
    //  Compacted in place: a session still due after its pump (window
    //  full, queue full) stays for the next commit; the others leave.
    size_t kept = 0;
    for (size_t i = 0; i < self->due_count; i++) {
        bus_session_t *session = self->due [i];
        if (session->online && session->backlog) {
            bus_session_pump (core, session);
        }
        if (session->online && session->backlog) {
            self->due [kept++] = session;
        }
        else {
            session->due = false;
        }
    }
    self->due_count = kept;
}

size_t
bus_sessions_online (bus_core_t *core)
{
    return core->sessions->online;
}

size_t
bus_sessions_count (bus_core_t *core)
{
    return zhashx_size (core->sessions->table);
}
