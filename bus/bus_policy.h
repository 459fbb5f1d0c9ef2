/*  bus_policy.h: the policy, loaded from one human-written file.

    The policy names every agent with its CURVE public key, the intent classes
    and which of them are privileged or held, and the allowed edges
    sender -> recipient with the classes each allows. Anything it does not name
    does not exist (default deny).

    The file is ZPL (the ZeroMQ property language that CZMQ's zconfig reads):
    one item per line, `name = value` or `name` alone, children indented four
    spaces under their parent, `#` starts a comment. We read it with a reader
    of our own rather than zconfig because zconfig forgets line numbers, and
    every error we print must name the file and line and say how to fix it.

        bus
            max_frame = 65536           # bytes, largest frame accepted
            max_backlog = 10000         # default per-recipient mailbox cap
            backlog_share = 50          # percent of a mailbox one sender may fill
            connections = 8             # live connections per key
            frames = 2000               # default budgets per key (see agents)
            bytes = 16777216
            log_budget = 0
        classes                         # message, query, finance, deploy, comms
            finance                     #   are built in; list a class to change
                privileged = true       #   it or to add one of your own
                hold = true
                actions = transfer.*, payment.*
                approvers = alice, bob
                quorum = 1
                ttl = 3600              # seconds a hold lives
                restricted = deny       # or hold: restricted content of this
                                        #   class goes to approvers, marked
        agents
            planner
                key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
                next_key = "..."        # during a rotation: both keys work
                created = 2026-11-01    # when the key was made (keygen writes it)
                expires = 2027-02-01    # UTC, ISO 8601, time of day optional
                provider = anthropic
                trust = trusted         # untrusted: ingests outside content
                taint = sticky          # or causal
                accepts_restricted = true
                class = message         # class of every message *to* it
                role = agent            # agent, approver, operator (list)
                max_backlog = 10000
                rate = 0                # messages per second, 0 = unlimited
                frames = 2000           # budget of its key: frames/s, any kind,
                bytes = 16777216        #   and bytes/s, checked before any decode
                log_budget = 0          # KiB of log records per hour; 0 = 5% of
                                        #   the log's map limit
        edges
            planner                     # sender
                payments = finance      # recipient = classes it may receive
                    actions = transfer.create, refund.create   # scope (optional)
                    resources = invoice:*
                    tools = none, ledger.*
                    outside = deny      # or hold: approvers decide
                web-reader = query, message

    Names (agents, classes) are 1..64 bytes of [a-z0-9._-], starting with a
    letter or digit, checked as raw bytes (a NUL or UTF-8 trick cannot pass).

    A policy is immutable once loaded; a reload builds a new one and swaps it
    in between batches, so borrowed pointers into a policy are valid until the
    caller's next bus_policy_destroy of it.
*/
#ifndef BUS_POLICY_H
#define BUS_POLICY_H

#include "bus_error.h"
#include "bus_names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_CLASS_MAX       64      //  classes fit a uint64_t bitmask
#define BUS_HASH_HEX_LEN    64

//  Agent roles, a bitmask.
#define BUS_ROLE_AGENT      1u
#define BUS_ROLE_APPROVER   2u
#define BUS_ROLE_OPERATOR   4u
#define BUS_ROLE_MONITOR    8u          //  receives alerts over the bus, lists and acks them

//  Alert kinds, in the order of bus_alert_kinds (policy words, log words).
typedef enum {
    BUS_ALERT_LOOP,         //  a cause cycle: one edge repeats along a chain of causes
    BUS_ALERT_DEPTH,        //  a cause chain deeper than loop_depth
    BUS_ALERT_BOUNCE,       //  the same payload forwarded again and again
    BUS_ALERT_PINGPONG,     //  a pair exchanging far above its baseline
    BUS_ALERT_VOLUME,       //  an agent or an edge far above its baseline
    BUS_ALERT_COST,         //  an agent over a budget per hour, or near its log budget
    BUS_ALERT_NEW_EDGE,     //  an allowed edge used for the first time in a window
    BUS_ALERT_PROBE,        //  a burst of denied attempts
    BUS_ALERT_TIMING,       //  activity far outside an agent's usual hours
    BUS_ALERT_HEARTBEAT,    //  an expected heartbeat did not come
    BUS_ALERT_RESULT,       //  an expected result did not come
    BUS_ALERT_RESULT_DENIED,//  the expected result came back denied
    BUS_ALERT_KIND_COUNT
} bus_alert_kind_t;

extern const char *const bus_alert_kinds [BUS_ALERT_KIND_COUNT + 1];

//  One `expect` of the monitor section: a heartbeat ("agent sends [intent]
//  at least every T") or an expected result ("a message of class C to R
//  expects a reply from R naming it as a cause within T").
typedef struct {
    char name [BUS_NAME_MAX + 1];
    bool reply;                         //  false: a heartbeat
    int agent;                          //  heartbeat: the sender; reply: R (index)
    char intent [BUS_NAME_MAX + 1];     //  heartbeat: the intent it must send, "" any
    int class_index;                    //  reply: class C, -1 for any class
    uint32_t seconds;                   //  T
    int line;
} bus_expect_t;

//  Detector settings (policy: `monitor`), defaults in bus_policy.c and README.
typedef struct {
    bool on;                            //  detectors run (default true)
    uint32_t loop_turns;                //  one edge this often along a cause chain: 4
    uint32_t loop_depth;                //  a cause chain deeper than this: 32
    uint32_t bounce;                    //  one payload forwarded this often in 10 min: 3
    uint32_t factor;                    //  "far above" a baseline: 8 times
    uint32_t min_volume;                //  messages a minute below which volume is quiet: 60
    uint32_t learn_hours;               //  baselines learn this long before they alert: 24
    uint32_t budget_messages;           //  per agent per hour, 0 = none
    uint32_t budget_bytes;              //  payload bytes per agent per hour, 0 = none
    uint32_t cost_percent;              //  of the agent's log budget per hour: 80
    uint32_t new_edge_days;             //  an edge unused this long is new again: 30
    uint32_t probe;                     //  denied attempts a minute from one agent: 10
    uint32_t timing_permille;           //  an hour holding less than this of an agent's
                                        //  traffic is unusual: 5 (0.5%)
    uint32_t quiet;                     //  seconds with no new sign before an alert closes: 300
    unsigned quarantine_on;             //  bit k: alert kind k quarantines its agent
    bus_expect_t *expects;
    size_t expect_count;
} bus_monitor_policy_t;

typedef struct {
    char name [BUS_NAME_MAX + 1];
    bool privileged;            //  restricted content may not trigger it
    bool hold;                  //  messages of this class wait for approval
    char **actions;             //  glob patterns on Send.action ('*' only)
    size_t action_count;
    char **approvers;           //  agent names with the approver role
    size_t approver_count;
    uint32_t quorum;            //  distinct approvals needed, >= 1
    uint32_t ttl_s;             //  how long a hold lives
    bool restricted_hold;       //  restricted = hold: restricted messages of a
                                //  privileged class wait for approval, marked
                                //  restricted, instead of being denied
    int line;                   //  0 for a built-in class not in the file
} bus_class_t;

typedef struct {
    char name [BUS_NAME_MAX + 1];
    char key_z85 [BUS_KEY_Z85_LEN + 1];
    uint8_t key [32];
    char key_fp [17];                   //  how logs name the key (bus_keys_fingerprint)
    char next_key_z85 [BUS_KEY_Z85_LEN + 1];    //  "" unless a rotation is under way:
    char next_key_fp [17];              //  both keys authenticate as this agent
    uint64_t created_us;                //  when the key was made (0: not said)
    uint64_t expires_us;                //  when the key stops working (0: never); the
                                        //  earlier of `expires` and created + key_max_age
    char provider [BUS_NAME_MAX + 1];   //  "" when not given
    int class_index;                    //  declared class, -1 if none
    bool untrusted;                     //  trust = untrusted
    bool causal;                        //  taint = causal (default sticky)
    bool accepts_restricted;            //  default true
    unsigned roles;                     //  BUS_ROLE_*; default BUS_ROLE_AGENT
    uint32_t max_backlog;               //  mailbox cap for this recipient
    uint32_t rate;                      //  msgs/s as sender, 0 = unlimited
    uint32_t frames;                    //  budget: frames/s its key may send (all kinds)
    uint32_t bytes;                     //  budget: bytes/s its key may send
    uint32_t log_budget;                //  KiB of log records per hour, 0 = the bus's share
    int line;
} bus_agent_t;

//  One allowlist of a scope: glob patterns, NULL (count 0) when the scope
//  does not limit that dimension. The entry "none" admits a message that
//  has no value there. Actions and tools match without regard to ASCII
//  case, resources byte for byte ('*' matches any run of bytes, '/' too).
typedef struct {
    char **patterns;
    size_t count;
    int line;                           //  where the list is, for reasons
} bus_patterns_t;

typedef enum {
    BUS_OUTSIDE_UNSET = 0,              //  not said here: the edge's, else deny
    BUS_OUTSIDE_DENY,
    BUS_OUTSIDE_HOLD,                   //  approvers of the class decide, marked
} bus_outside_t;

//  What an edge carries: its own lines apply to every class it carries; a
//  block named by one of its classes replaces, for that class, the lists it
//  gives and `outside` if it says it (bus_policy_scope resolves the two).
typedef struct {
    bus_patterns_t actions;
    bus_patterns_t tools;
    bus_patterns_t resources;
    bus_outside_t outside;
    int class_index;                    //  -1: the edge's own lines
    int line;
} bus_scope_t;

//  40 bytes: a fleet has a million of them, and most have no lines under
//  them, so what is under an edge is kept out of line.
typedef struct {
    uint32_t from;                      //  index into agents
    uint32_t to;                        //  index into agents
    uint64_t classes;                   //  bit i: classes [i] allowed
    bus_scope_t *scope;                 //  its own lines, for every class; NULL when
                                        //  nothing is under the edge (bus_edge_scope)
    bus_scope_t *class_scopes;          //  blocks per class, in file order
    uint32_t class_scope_count;
    int line;
} bus_edge_t;

typedef struct {
    char *path;                         //  file it came from ("" if parsed text)
    char hash [BUS_HASH_HEX_LEN + 1];   //  BLAKE2b-256 of the file bytes, hex
    bus_agent_t *agents;                //  sorted by name
    size_t agent_count;
    bus_edge_t *edges;                  //  sorted by (from, to)
    size_t edge_count;
    bus_class_t *classes;               //  built-ins first, then the file's
    size_t class_count;
    uint32_t max_frame;                 //  bytes; default 65536
    uint32_t max_backlog;               //  default per-agent mailbox cap 10000
    uint32_t hold_cap_total;            //  default 1000
    uint32_t hold_cap_sender;           //  default 100
    uint32_t frames;                    //  default per-key budget, frames/s: 2000
    uint32_t bytes;                     //  default per-key budget, bytes/s: 16 MiB
    uint32_t connections;               //  live connections per key: 8
    uint32_t log_budget;                //  default KiB of log per agent per hour; 0 = 5%
                                        //  of the log's map limit
    uint32_t backlog_share;             //  percent of a recipient's mailbox one sender
                                        //  may fill: 50
    uint32_t key_max_age;               //  days a key with `created` lives; 0 = no limit
    bus_monitor_policy_t monitor;       //  detectors, expectations, automatic quarantine
} bus_policy_t;

//  Reads and validates a policy file. On failure err says
//  "FILE:LINE: what is wrong (known: ...)" and *out is untouched.
int
    bus_policy_load (bus_policy_t **out, const char *path, bus_error_t *err);

//  The same with another bound on the file's size. The bus keeps 16 MiB
//  (a reload is parsed between batches, and a wrong path must not eat the
//  daemon's memory); the offline readers (check, blast) take
//  BUS_POLICY_OFFLINE_MAX, enough for 100,000 agents and 1,000,000 edges
//  (about 60 MB of ZPL) and still a bound on a wrong path.
#define BUS_POLICY_OFFLINE_MAX  ((size_t) 512 << 20)
int
    bus_policy_load_max (bus_policy_t **out, const char *path, size_t max_bytes,
                         bus_error_t *err);

//  Same from memory; `origin` names the text in error messages.
int
    bus_policy_parse (bus_policy_t **out, const char *text, size_t len,
                      const char *origin, bus_error_t *err);

void
    bus_policy_destroy (bus_policy_t **self_p);

//  Look-ups; NULL / -1 when absent. O(log n).
const bus_agent_t *
    bus_policy_agent (const bus_policy_t *self, const char *name);
const bus_agent_t *
    bus_policy_agent_by_key (const bus_policy_t *self, const char *key_z85);
const bus_edge_t *
    bus_policy_edge (const bus_policy_t *self,
                     const bus_agent_t *from, const bus_agent_t *to);
int
    bus_policy_class (const bus_policy_t *self, const char *name);

//  The agent whose live key (key or next_key) this is at now_us, or NULL:
//  an expired key is treated exactly as one the policy does not name.
//  *fp (if not NULL) gets the fingerprint of the key that matched.
const bus_agent_t *
    bus_policy_agent_by_live_key (const bus_policy_t *self, const char *key_z85,
                                  uint64_t now_us, const char **fp);

//  The first moment after after_us at which an agent's key expires
//  (bus_policy_agent_by_live_key stops taking it), UINT64_MAX if none does.
//  Nothing else of a loaded policy changes with time.
uint64_t
    bus_policy_next_expiry (const bus_policy_t *self, uint64_t after_us);

//  The scope a message of class_index meets on edge: per list, the class's
//  block where it gives one, else the edge's own; `outside` likewise, deny
//  when neither says. Points into the edge; nothing to free.
void
    bus_policy_scope (const bus_edge_t *edge, int class_index, bus_scope_t *out);

//  The edge's own scope, or an empty one (no lists, outside unset) when
//  nothing is under it. Borrowed: valid while the policy is.
const bus_scope_t *
    bus_edge_scope (const bus_edge_t *edge);

//  True if the scope limits nothing (no list on any dimension).
bool
    bus_scope_empty (const bus_scope_t *scope);

//  Index of an agent in self->agents (for bus_edge_t.from / .to).
uint32_t
    bus_policy_agent_index (const bus_policy_t *self, const bus_agent_t *agent);

//  "a, b, c" from a list into out (cut to size), or none when the list is
//  empty: for reasons that name what a rule allows.
void
    bus_policy_join (char *const *list, size_t count, const char *none, char *out, size_t size);

//  Glob match with '*' (any run of bytes) only, ASCII letters matched
//  without regard to case.
bool
    bus_glob_match (const char *pattern, const char *text);

//  The same, byte for byte (resources).
bool
    bus_glob_match_bytes (const char *pattern, const char *text);

#endif
