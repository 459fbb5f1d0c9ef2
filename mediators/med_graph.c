/*  med_graph.c: the policy graph; each hop judged by the chain's own stages. */
#include "med_graph.h"
#include "med_chain.h"
#include "bus_big.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  What edges of one shape deliver: pass and held by sender tainted 0 / 1,
//  bit t of taints: delivered restricted. Few distinct ones in a fleet;
//  every edge keeps the index of its own (0: not judged yet).
typedef struct {
    uint64_t pass [2];
    uint64_t held [2];
    uint8_t taints;
} s_answer_t;

//  The memo: which answer edges of one shape get. A shape is everything
//  the stages may read of the sender, the recipient and the edge but who
//  they are (names, keys, lines), for both states of the sender; an edge
//  that a standing grant names (grants go by name) is judged on its own.
//  The key holds the shapes of sender and recipient (their 128-bit BLAKE2b
//  digests, numbered as they come), the edge's classes and flags and the
//  digest of its scope lists: compared whole, so two shapes never share an
//  answer.
typedef struct {
    uint32_t from, to;                  //  agent shape numbers, from 1
    uint64_t classes;
    uint8_t flags;                      //  1: a loop (sender is recipient), 2: scoped
    uint8_t scope [16];
} s_key_t;

typedef struct {
    s_key_t key;
    uint32_t answer;                    //  index into answers, 0: a free slot
} s_memo_t;

//  The answers edges were given, and the memo that finds one by shape.
//  The graph has one; while two threads fill a fleet's graph, the second
//  keeps a book of its own, merged into the graph's after (s_fill_share).
typedef struct {
    s_answer_t *answers;                //  [0] unused
    size_t n_answers, answers_size;
    s_answer_t spare;                   //  an answer that could not be kept
    s_memo_t *memo;                     //  open addressing, memo_size a power of two
    size_t memo_size, memo_used;
    size_t memo_hits;
} s_book_t;

//  Agent shapes, numbered: digest -> number.
typedef struct {
    uint8_t digest [16];
    uint32_t number;                    //  0: a free slot
} s_shape_slot_t;

struct med_graph {
    const bus_policy_t *policy;
    const bus_grant_t *grants;
    uint32_t n_grants;
    uint64_t now_us;
    const med_stage_t *stages [MED_CHAIN_MAX + 1];
    med_chain_t *chain;
    size_t *out_first;                  //  agent_count + 1
    size_t *in_first;                   //  agent_count + 1
    uint32_t *in_edges;                 //  edge_count
    uint32_t *in_from;                  //  edge_count: the sender of each in_edges
    uint32_t *edge_to;                  //  edge_count: the recipient of each edge
    uint64_t *in_classes;               //  per agent: the classes its in-edges carry
    uint8_t *in_bits;                   //  edge_count, beside in_edges (med_graph_in_bits)
    uint32_t *edge_answer;              //  edge_count: index into answers, 0 not yet
    uint8_t *granted;                   //  edge_count: a standing grant names the pair
    s_book_t book;                      //  the answers and the memo
    uint32_t *agent_shape;              //  per agent, its shape's number (0: not yet)
    s_shape_slot_t *shapes;             //  open addressing, shapes_size a power of two
    size_t shapes_size, shapes_used;
    size_t runs;
    bool locked;                        //  hops take the lock (med_graph_share)
    bool shared;                        //  med_graph_share succeeded
    pthread_mutex_t lock;
};

//  Stages that bound a path without stopping it: shown, not applied.
//  A fleet's edges are judged on two threads: at this many, it pays.
#define S_FILL_SHARED   (1u << 16)

static uint32_t s_shape_agent (med_graph_t *self, uint32_t a);

//  A fleet's agents get their shapes' numbers on a second thread while
//  med_graph_new indexes the edges: only the fill reads them, and it
//  needs them all (s_fill_share). One that fails is tried again there.
static void *
s_shapes_run (void *arg)
{
    med_graph_t *self = arg;
    for (uint32_t a = 0; a < self->policy->agent_count; a++) {
        if (!s_shape_agent (self, a)) {
            break;
        }
    }
    return NULL;
}

static bool
s_bound_only (const med_stage_t *stage)
{
    return strcmp (stage->name, "limits") == 0 || strcmp (stage->name, "backlog") == 0;
}

int
med_graph_new (med_graph_t **out, const bus_policy_t *policy, const bus_grant_t *grants,
               uint32_t n_grants, uint64_t now_us, bus_error_t *err)
{
    med_graph_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "policy graph: out of memory");
    }
    self->policy = policy;
    self->grants = grants;
    self->n_grants = grants? n_grants: 0;
    self->now_us = now_us;
    size_t n = 0;
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        if (!s_bound_only (*stage) && n < MED_CHAIN_MAX) {
            self->stages [n++] = *stage;
        }
    }
    self->stages [n] = NULL;
    size_t agents = policy->agent_count, edges = policy->edge_count;
    self->out_first = bus_big_calloc (agents + 1, sizeof *self->out_first);
    self->in_first = bus_big_calloc (agents + 1, sizeof *self->in_first);
    self->in_edges = bus_big_calloc (edges + 1, sizeof *self->in_edges);
    self->in_from = bus_big_calloc (edges + 1, sizeof *self->in_from);
    self->edge_to = bus_big_calloc (edges + 1, sizeof *self->edge_to);
    self->in_classes = bus_big_calloc (agents + 1, sizeof *self->in_classes);
    self->edge_answer = bus_big_calloc (edges + 1, sizeof *self->edge_answer);
    self->granted = bus_big_calloc (edges + 1, 1);
    self->agent_shape = bus_big_calloc (agents + 1, sizeof *self->agent_shape);
    if (!self->out_first || !self->in_first || !self->in_edges || !self->in_from
    ||  !self->edge_to || !self->in_classes || !self->edge_answer
    ||  !self->granted || !self->agent_shape) {
        med_graph_destroy (&self);
        return bus_fail (err, BUS_ENOMEM, "policy graph of %zu edges: out of memory", edges);
    }
    if (med_chain_open_with (&self->chain, self->stages, policy, err) != 0) {
        med_graph_destroy (&self);
        return -1;
    }
    pthread_t thread;
    bool threaded = edges >= S_FILL_SHARED && sysconf (_SC_NPROCESSORS_ONLN) > 1
                 && pthread_create (&thread, NULL, s_shapes_run, self) == 0;
    //  Edges are sorted by (from, to): count per agent, then prefix sums.
    for (size_t e = 0; e < edges; e++) {
        self->out_first [policy->edges [e].from + 1]++;
        self->in_first [policy->edges [e].to + 1]++;
    }
    for (size_t a = 0; a < agents; a++) {
        self->out_first [a + 1] += self->out_first [a];
        self->in_first [a + 1] += self->in_first [a];
    }
    size_t *fill = calloc (agents + 1, sizeof *fill);
    if (!fill) {
        if (threaded) {
            pthread_join (thread, NULL);
        }
        med_graph_destroy (&self);
        return bus_fail (err, BUS_ENOMEM, "policy graph: out of memory");
    }
    for (size_t e = 0; e < edges; e++) {
        uint32_t to = policy->edges [e].to;
        size_t at = self->in_first [to] + fill [to]++;
        self->in_edges [at] = (uint32_t) e;
        self->in_from [at] = policy->edges [e].from;
        self->edge_to [e] = to;
        self->in_classes [to] |= policy->edges [e].classes;
    }
    free (fill);
    if (threaded) {
        pthread_join (thread, NULL);
    }
    for (uint32_t g = 0; g < self->n_grants; g++) {
        const bus_agent_t *from = bus_policy_agent (policy, self->grants [g].sender);
        const bus_agent_t *to = bus_policy_agent (policy, self->grants [g].recipient);
        const bus_edge_t *edge = from && to? bus_policy_edge (policy, from, to): NULL;
        if (edge) {
            self->granted [edge - policy->edges] = 1;
        }
    }
    *out = self;
    return 0;
}

void
med_graph_destroy (med_graph_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    med_graph_t *self = *self_p;
    if (self->locked) {
        pthread_mutex_destroy (&self->lock);
    }
    med_chain_destroy (&self->chain);
    bus_big_free (self->out_first);
    bus_big_free (self->in_first);
    bus_big_free (self->in_edges);
    bus_big_free (self->in_from);
    bus_big_free (self->edge_to);
    bus_big_free (self->in_classes);
    bus_big_free (self->in_bits);
    bus_big_free (self->edge_answer);
    bus_big_free (self->granted);
    free (self->book.answers);
    free (self->book.memo);
    bus_big_free (self->agent_shape);
    free (self->shapes);
    free (self);
    *self_p = NULL;
}

const bus_policy_t *
med_graph_policy (const med_graph_t *self)
{
    return self->policy;
}

void
med_graph_out (const med_graph_t *self, uint32_t a, size_t *first, size_t *count)
{
    *first = self->out_first [a];
    *count = self->out_first [a + 1] - self->out_first [a];
}

void
med_graph_prefetch_out (const med_graph_t *self, uint32_t a, int stage)
{
    if (stage == 0) {
        __builtin_prefetch (&self->out_first [a]);
    }
    else {
        size_t first = self->out_first [a];
        __builtin_prefetch (&self->edge_to [first]);
        __builtin_prefetch (&self->edge_answer [first]);
    }
}

void
med_graph_prefetch_in (const med_graph_t *self, uint32_t a, int stage)
{
    if (stage == 0) {
        __builtin_prefetch (&self->in_first [a]);
    }
    else {
        size_t first = self->in_first [a];
        __builtin_prefetch (&self->in_from [first]);
        __builtin_prefetch (&self->in_edges [first]);
        if (self->in_bits) {
            __builtin_prefetch (&self->in_bits [first]);
        }
    }
}

void
med_graph_in (const med_graph_t *self, uint32_t a, const uint32_t **list, size_t *count)
{
    *list = self->in_edges + self->in_first [a];
    *count = self->in_first [a + 1] - self->in_first [a];
}

const uint32_t *
med_graph_in_from (const med_graph_t *self, uint32_t a)
{
    return self->in_from + self->in_first [a];
}

const uint32_t *
med_graph_recipients (const med_graph_t *self)
{
    return self->edge_to;
}

uint64_t
med_graph_in_classes (const med_graph_t *self, uint32_t a)
{
    return self->in_classes [a];
}

size_t
med_graph_bytes (const med_graph_t *self)
{
    size_t agents = self->policy->agent_count, edges = self->policy->edge_count;
    return sizeof *self + 2 * (agents + 1) * sizeof (size_t)
         + (edges + 1) * (4 * sizeof (uint32_t) + 1 + (self->in_bits? 1: 0))
         + agents * (sizeof (uint32_t) + sizeof (uint64_t))
         + self->book.answers_size * sizeof (s_answer_t)
         + self->book.memo_size * sizeof (s_memo_t)
         + self->shapes_size * sizeof (s_shape_slot_t);
}

//  A glob pattern made into a value it matches: each '*' becomes "x".
static void
s_concrete (const char *pattern, char *out, size_t size)
{
    size_t used = 0;
    for (const char *p = pattern; *p && used + 2 < size; p++) {
        out [used++] = *p == '*'? 'x': *p;
    }
    out [used] = 0;
}

//  A value the scope list admits: none (NULL) where it can, else its first
//  pattern made concrete.
static const char *
s_admitted (const bus_patterns_t *list, char *buf, size_t size)
{
    if (list->count == 0) {
        return NULL;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp (list->patterns [i], "none") == 0) {
            return NULL;
        }
    }
    s_concrete (list->patterns [0], buf, size);
    return buf;
}

static int
s_rank (med_verdict_t verdict)
{
    return verdict == MED_PASS? 0: verdict == MED_HOLD? 1: 2;
}

//  Position of a stage in the chain: of two refusals the one that came
//  later says more (the message met every rule before it).
static int
s_position (const med_graph_t *self, const char *stage)
{
    for (int i = 0; self->stages [i]; i++) {
        if (strcmp (self->stages [i]->name, stage) == 0) {
            return i;
        }
    }
    return -1;
}

static bool
s_better (const med_graph_t *self, const med_hop_t *hop, const med_hop_t *best)
{
    if (s_rank (hop->verdict) != s_rank (best->verdict)) {
        return s_rank (hop->verdict) < s_rank (best->verdict);
    }
    if (hop->verdict == MED_REJECT) {
        return s_position (self, hop->stage) > s_position (self, best->stage);
    }
    return hop->grant && !best->grant;
}

//  One synthetic message through the stages.
static void
s_run (med_graph_t *self, const bus_edge_t *edge, int cls, bool tainted, const char *action,
       const char *tool, const char *resource, med_hop_t *out, int *decided)
{
    const bus_policy_t *policy = self->policy;
    const bus_agent_t *from = &policy->agents [edge->from];
    const bus_agent_t *to = &policy->agents [edge->to];
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = (char *) "blast";
    send.recipient = (char *) to->name;
    send.intent = (char *) policy->classes [cls].name;
    send.action = (char *) action;
    send.tool = (char *) tool;
    send.resource = (char *) resource;
    bus_envelope_t env;
    memset (&env, 0, sizeof env);
    env.policy = policy;
    env.sender = from;
    env.sender_name = from->name;
    env.recipient = to;
    env.send = &send;
    env.sender_tainted = tainted;
    env.grants = self->grants;
    env.n_grants = self->n_grants;
    env.log_checked = true;
    env.log_left = 1e18;                //  the log budget is a bound, not a stop
    env.now_us = self->now_us;
    env.class_index = -1;
    const char *stage = "";
    bus_error_t err = { BUS_OK, "" };
    out->verdict = med_chain_run (self->chain, &env, &stage, &err);
    self->runs++;
    out->stage = out->verdict == MED_PASS? "": stage;
    out->err = err;
    out->restricted = env.restricted;
    //  The taint stage's answer, not a rule of ours: a tainted sender whose
    //  message it did not mark restricted has dropped the taint.
    out->dropped = tainted && !env.restricted && out->verdict != MED_REJECT;
    out->hold_required = env.hold_required;
    out->grant = env.grant;
    snprintf (out->action, sizeof out->action, "%s", action? action: "");
    snprintf (out->tool, sizeof out->tool, "%s", tool? tool: "");
    snprintf (out->resource, sizeof out->resource, "%s", resource? resource: "");
    *decided = env.class_index;
}

static void s_hop (med_graph_t *self, size_t e, int cls, bool tainted, med_hop_t *out);

//  The chain and its stages' state are one per graph: a shared graph runs
//  them for one hop at a time.
void
med_graph_hop (med_graph_t *self, size_t e, int cls, bool tainted, med_hop_t *out)
{
    if (self->locked) {
        pthread_mutex_lock (&self->lock);
    }
    s_hop (self, e, cls, tainted, out);
    if (self->locked) {
        pthread_mutex_unlock (&self->lock);
    }
}

static void
s_hop (med_graph_t *self, size_t e, int cls, bool tainted, med_hop_t *out)
{
    const bus_policy_t *policy = self->policy;
    const bus_edge_t *edge = &policy->edges [e];
    const bus_class_t *klass = &policy->classes [cls];
    //  The scope a message of this class meets on the edge, as the scope
    //  stage resolves it (a block named by the class, else the edge's own).
    bus_scope_t scope;
    bus_policy_scope (edge, cls, &scope);
    //  The actions an attacker would try (see the header).
    enum { S_CANDIDATES = 24 };
    char buf [S_CANDIDATES][264];
    const char *actions [S_CANDIDATES];
    size_t n = 0;
    actions [n++] = NULL;
    for (size_t i = 0; i < scope.actions.count && n < S_CANDIDATES; i++) {
        if (strcmp (scope.actions.patterns [i], "none") != 0) {
            s_concrete (scope.actions.patterns [i], buf [n], sizeof buf [n]);
            actions [n] = buf [n];
            n++;
        }
    }
    for (size_t i = 0; i < klass->action_count && n < S_CANDIDATES; i++) {
        s_concrete (klass->actions [i], buf [n], sizeof buf [n]);
        actions [n] = buf [n];
        n++;
    }
    const char *from = policy->agents [edge->from].name;
    const char *to = policy->agents [edge->to].name;
    for (uint32_t g = 0; g < self->n_grants && n < S_CANDIDATES; g++) {
        const bus_grant_t *grant = &self->grants [g];
        if (strcmp (grant->sender, from) == 0 && strcmp (grant->recipient, to) == 0
        &&  strcmp (grant->intent_class, klass->name) == 0) {
            snprintf (buf [n], sizeof buf [n], "%s", grant->action);
            actions [n] = *grant->action? buf [n]: NULL;
            n++;
        }
    }
    char tool_buf [128], resource_buf [128];
    const char *tool = s_admitted (&scope.tools, tool_buf, sizeof tool_buf);
    const char *resource = s_admitted (&scope.resources, resource_buf, sizeof resource_buf);
    bool have = false;
    med_hop_t best;
    memset (&best, 0, sizeof best);
    for (size_t i = 0; i < n; i++) {
        med_hop_t hop;
        int decided = -1;
        s_run (self, edge, cls, tainted, actions [i], tool, resource, &hop, &decided);
        //  A message the bus decides to be of another class is not a way
        //  to deliver this one; that class is judged on its own.
        bool counts = decided == cls || (hop.verdict == MED_REJECT && decided < 0);
        if (!counts && hop.verdict == MED_REJECT && !have) {
            best = hop;                 //  keep classify's reason in case none counts
            continue;
        }
        if (counts && (!have || s_better (self, &hop, &best))) {
            best = hop;
            have = true;
        }
        if (have && best.verdict == MED_PASS) {
            break;
        }
    }
    if (!have && best.verdict != MED_REJECT) {
        best.verdict = MED_REJECT;
        best.stage = "classify";
        bus_fail (&best.err, BUS_ECLASS, "no message on %s -> %s is decided %s", from, to,
                  klass->name);
    }
    *out = best;
}

//  An open-addressing table's slot count for used + 1 entries, at most
//  half full; 0 if it need not grow.
static size_t
s_grow_to (size_t size, size_t used)
{
    if (size && (used + 1) * 2 <= size) {
        return 0;
    }
    return size? size * 2: 1024;
}

static uint64_t
s_mix (uint64_t h, uint64_t word)
{
    return (h ^ word) * UINT64_C (0x9E3779B97F4A7C15);
}

static s_shape_slot_t *
s_shape_slot (s_shape_slot_t *table, size_t size, const uint8_t digest [16])
{
    uint64_t word;
    memcpy (&word, digest, 8);          //  uniform already
    for (size_t i = word & (size - 1);; i = (i + 1) & (size - 1)) {
        if (!table [i].number || memcmp (table [i].digest, digest, 16) == 0) {
            return &table [i];
        }
    }
}

//  The shape of an agent for the memo: every field but who it is, as a
//  number (equal digests, equal numbers); 0 if out of memory.
static uint32_t
s_shape_agent (med_graph_t *self, uint32_t a)
{
    if (self->agent_shape [a]) {
        return self->agent_shape [a];
    }
    const bus_agent_t *agent = &self->policy->agents [a];
    crypto_generichash_state h;
    crypto_generichash_init (&h, NULL, 0, 16);
    crypto_generichash_update (&h, (const uint8_t *) agent->provider, strlen (agent->provider) + 1);
    int32_t numbers [] = {
        agent->class_index, agent->untrusted, agent->causal, agent->accepts_restricted,
        (int32_t) agent->roles, (int32_t) agent->max_backlog, (int32_t) agent->rate,
        (int32_t) agent->frames, (int32_t) agent->bytes, (int32_t) agent->log_budget
    };
    crypto_generichash_update (&h, (const uint8_t *) numbers, sizeof numbers);
    uint8_t digest [16];
    crypto_generichash_final (&h, digest, sizeof digest);
    size_t size = s_grow_to (self->shapes_size, self->shapes_used);
    if (size) {
        s_shape_slot_t *table = calloc (size, sizeof *table);
        if (!table) {
            return 0;
        }
        for (size_t i = 0; i < self->shapes_size; i++) {
            if (self->shapes [i].number) {
                *s_shape_slot (table, size, self->shapes [i].digest) = self->shapes [i];
            }
        }
        free (self->shapes);
        self->shapes = table;
        self->shapes_size = size;
    }
    s_shape_slot_t *slot = s_shape_slot (self->shapes, self->shapes_size, digest);
    if (!slot->number) {
        memcpy (slot->digest, digest, sizeof digest);
        slot->number = (uint32_t) ++self->shapes_used;
    }
    self->agent_shape [a] = slot->number;
    return slot->number;
}

static void
s_shape_list (crypto_generichash_state *h, const bus_patterns_t *list)
{
    uint64_t n = list->count;
    crypto_generichash_update (h, (const uint8_t *) &n, sizeof n);
    for (size_t i = 0; i < list->count; i++) {
        crypto_generichash_update (h, (const uint8_t *) list->patterns [i],
                                   strlen (list->patterns [i]) + 1);
    }
}

//  A scope: its lists, what happens outside, and which class it is for.
static void
s_shape_scope (crypto_generichash_state *h, const bus_scope_t *scope)
{
    int32_t fixed [] = { scope->class_index, (int32_t) scope->outside };
    crypto_generichash_update (h, (const uint8_t *) fixed, sizeof fixed);
    s_shape_list (h, &scope->actions);
    s_shape_list (h, &scope->tools);
    s_shape_list (h, &scope->resources);
}

//  False if out of memory.
static bool
s_shape (med_graph_t *self, size_t e, s_key_t *key)
{
    const bus_policy_t *policy = self->policy;
    const bus_edge_t *edge = &policy->edges [e];
    memset (key, 0, sizeof *key);
    key->from = s_shape_agent (self, edge->from);
    key->to = s_shape_agent (self, edge->to);
    key->classes = edge->classes;
    key->flags = edge->from == edge->to? 1: 0;
    //  The edge's own scope and every block per class (any may be the one
    //  a class meets); none at all is the common case and needs no digest.
    const bus_scope_t *own = bus_edge_scope (edge);
    if (!bus_scope_empty (own) || own->outside || edge->class_scope_count) {
        crypto_generichash_state h;
        crypto_generichash_init (&h, NULL, 0, 16);
        s_shape_scope (&h, own);
        uint64_t blocks = edge->class_scope_count;
        crypto_generichash_update (&h, (const uint8_t *) &blocks, sizeof blocks);
        for (size_t b = 0; b < edge->class_scope_count; b++) {
            s_shape_scope (&h, &edge->class_scopes [b]);
        }
        crypto_generichash_final (&h, key->scope, sizeof key->scope);
        key->flags |= 2;
    }
    return key->from && key->to;
}

static s_memo_t *
s_memo_slot (s_memo_t *table, size_t size, const s_key_t *key)
{
    uint64_t scope [2];
    memcpy (scope, key->scope, sizeof scope);
    uint64_t h = s_mix (s_mix (s_mix (s_mix (0, key->from | (uint64_t) key->to << 32),
                                      key->classes), key->flags), scope [0] ^ scope [1]);
    for (size_t i = (h >> 17) & (size - 1);; i = (i + 1) & (size - 1)) {
        if (!table [i].answer || memcmp (&table [i].key, key, sizeof *key) == 0) {
            return &table [i];
        }
    }
}

//  Keeps the memo at most half full; false if it cannot grow (the answer
//  is then simply not kept).
static bool
s_memo_room (s_book_t *book)
{
    size_t size = s_grow_to (book->memo_size, book->memo_used);
    if (!size) {
        return true;
    }
    s_memo_t *table = calloc (size, sizeof *table);
    if (!table) {
        return false;
    }
    for (size_t i = 0; i < book->memo_size; i++) {
        if (book->memo [i].answer) {
            *s_memo_slot (table, size, &book->memo [i].key) = book->memo [i];
        }
    }
    free (book->memo);
    book->memo = table;
    book->memo_size = size;
    return true;
}

//  Runs the stages for every class edge e carries, sender state t.
static void
s_judge (med_graph_t *self, size_t e, int t, s_answer_t *answer)
{
    const bus_policy_t *policy = self->policy;
    uint64_t classes = policy->edges [e].classes;
    answer->pass [t] = answer->held [t] = 0;
    for (size_t c = 0; c < policy->class_count; c++) {
        if (!(classes & (UINT64_C (1) << c))) {
            continue;
        }
        med_hop_t hop;
        med_graph_hop (self, e, (int) c, t == 1, &hop);
        if (hop.verdict == MED_PASS) {
            answer->pass [t] |= UINT64_C (1) << c;
        }
        else
        if (hop.verdict == MED_HOLD) {
            answer->held [t] |= UINT64_C (1) << c;
        }
        if (hop.verdict != MED_REJECT && hop.restricted) {
            answer->taints |= (uint8_t) (1u << t);
        }
    }
}

//  A new answer, kept: its index, or 0 if it cannot be kept.
static uint32_t
s_keep (s_book_t *book, const s_answer_t *answer)
{
    if (book->n_answers + 1 >= book->answers_size) {
        size_t size = book->answers_size? book->answers_size * 2: 1024;
        s_answer_t *more = size < UINT32_MAX? realloc (book->answers, size * sizeof *more): NULL;
        if (!more) {
            return 0;
        }
        book->answers = more;
        book->answers_size = size;
        book->n_answers += book->n_answers == 0;    //  [0] stands for "not yet"
    }
    book->answers [book->n_answers] = *answer;
    return (uint32_t) book->n_answers++;
}

//  What edge e delivers, both states of the sender: judged on first use
//  (s_judged), kept after (s_answer, which the searches call millions of
//  times, so it stays small).
//  Edge e's answer goes in the book given: the graph's, or while a fleet's
//  graph is filled on two threads, the second thread's (then edge_answer
//  [e] is an index into that book until s_fill_share merges it).
static const s_answer_t *s_judged (med_graph_t *self, s_book_t *book, size_t e);

static inline const s_answer_t *
s_answer (med_graph_t *self, size_t e)
{
    uint32_t index = self->edge_answer [e];
    return index? &self->book.answers [index]: s_judged (self, &self->book, e);
}

static __attribute__ ((noinline)) const s_answer_t *
s_judged (med_graph_t *self, s_book_t *book, size_t e)
{
    uint32_t index;
    s_key_t key;
    s_memo_t *slot = NULL;
    if (!self->granted [e] && s_shape (self, e, &key) && s_memo_room (book)) {
        slot = s_memo_slot (book->memo, book->memo_size, &key);
        if (slot->answer) {
            book->memo_hits += 2;
            self->edge_answer [e] = slot->answer;
            return &book->answers [slot->answer];
        }
    }
    s_answer_t answer;
    memset (&answer, 0, sizeof answer);
    s_judge (self, e, 0, &answer);
    s_judge (self, e, 1, &answer);
    index = s_keep (book, &answer);
    if (!index) {
        book->spare = answer;
        return &book->spare;
    }
    if (slot) {
        slot->key = key;
        slot->answer = index;
        book->memo_used++;
    }
    self->edge_answer [e] = index;
    return &book->answers [index];
}

uint64_t
med_graph_pass (med_graph_t *self, size_t e, bool tainted)
{
    return s_answer (self, e)->pass [tainted];
}

uint64_t
med_graph_held (med_graph_t *self, size_t e, bool tainted)
{
    return s_answer (self, e)->held [tainted];
}

bool
med_graph_taints (med_graph_t *self, size_t e, bool tainted)
{
    return (s_answer (self, e)->taints >> tainted) & 1u;
}

//  The in-edges' bits [first, last): each in-edge's answer, packed.
static void
s_bits_fill (med_graph_t *self, uint8_t *bits, size_t first, size_t last)
{
    for (size_t k = first; k < last; k++) {
        const s_answer_t *answer = s_answer (self, self->in_edges [k]);
        bits [k] = (uint8_t) ((answer->pass [0]? MED_GRAPH_PASS0: 0)
                           | (answer->pass [1]? MED_GRAPH_PASS1: 0)
                           | (answer->taints & 1? MED_GRAPH_TAINTS0: 0)
                           | (answer->taints & 2? MED_GRAPH_TAINTS1: 0));
    }
}

typedef struct {
    med_graph_t *graph;
    uint8_t *bits;
    size_t first, last;
} s_bits_t;

static void *
s_bits_run (void *arg)
{
    s_bits_t *share = arg;
    s_bits_fill (share->graph, share->bits, share->first, share->last);
    return NULL;
}

const uint8_t *
med_graph_in_bits (med_graph_t *self, uint32_t a)
{
    if (!self->in_bits) {
        size_t edges = self->policy->edge_count;
        uint8_t *bits = bus_big_calloc (edges + 1, 1);
        if (!bits) {
            return NULL;
        }
        s_bits_fill (self, bits, 0, edges);
        self->in_bits = bits;
    }
    return self->in_bits + self->in_first [a];
}

size_t
med_graph_fill (med_graph_t *self)
{
    size_t before = self->runs;
    for (size_t e = 0; e < self->policy->edge_count; e++) {
        s_answer (self, e);
    }
    return self->runs - before;
}

typedef struct {
    med_graph_t *graph;
    size_t first, last;                 //  its edges
    s_book_t book;                      //  and their answers
} s_filler_t;

static void *
s_fill_run (void *arg)
{
    s_filler_t *filler = arg;
    for (size_t e = filler->first; e < filler->last; e++) {
        s_judged (filler->graph, &filler->book, e);
    }
    return NULL;
}

//  Fills a fleet's graph on two threads: the second judges the upper half
//  of the edges into a book of its own, merged into the graph's after (an
//  answer both found is then kept twice: the memo is only a shortcut). The
//  agents' shapes are numbered first, so the threads only read them; the
//  chain runs one hop at a time (the lock).
static void
s_fill_share (med_graph_t *self)
{
    size_t edges = self->policy->edge_count;
    for (uint32_t a = 0; a < self->policy->agent_count; a++) {
        if (!s_shape_agent (self, a)) {
            med_graph_fill (self);      //  out of memory: one thread, which copes
            return;
        }
    }
    s_filler_t second = { .graph = self, .first = edges / 2, .last = edges };
    //  The merge reads every upper-half answer as the second book's: an
    //  edge judged before (an analysis on the graph before it was shared)
    //  holds an index into the graph's book, so then one thread fills.
    bool judged = false;
    for (size_t e = second.first; e < edges && !judged; e++) {
        judged = self->edge_answer [e] != 0;
    }
    pthread_t thread;
    if (judged || edges < S_FILL_SHARED || sysconf (_SC_NPROCESSORS_ONLN) < 2
    ||  pthread_create (&thread, NULL, s_fill_run, &second) != 0) {
        med_graph_fill (self);
        return;
    }
    for (size_t e = 0; e < second.first; e++) {
        s_answer (self, e);
    }
    pthread_join (thread, NULL);
    //  The second book's answers go after the graph's, and its edges are
    //  renumbered; one that could not be kept stays 0, not judged yet.
    uint32_t *renumber = calloc (second.book.n_answers + 1, sizeof *renumber);
    for (size_t i = 1; renumber && i < second.book.n_answers; i++) {
        renumber [i] = s_keep (&self->book, &second.book.answers [i]);
    }
    for (size_t e = second.first; e < edges; e++) {
        self->edge_answer [e] = renumber? renumber [self->edge_answer [e]]: 0;
    }
    self->book.memo_hits += second.book.memo_hits;
    free (renumber);
    free (second.book.answers);
    free (second.book.memo);
}

bool
med_graph_share (med_graph_t *self)
{
    if (self->shared) {
        return true;
    }
    if (!self->locked) {
        if (pthread_mutex_init (&self->lock, NULL) != 0) {
            return false;
        }
        self->locked = true;
    }
    s_fill_share (self);
    //  An answer that could not be kept (s_keep out of memory) would be
    //  judged again on every read, which writes: not for two threads.
    for (size_t e = 0; e < self->policy->edge_count; e++) {
        if (!self->edge_answer [e]) {
            return false;
        }
    }
    //  Every edge has its answer, which is then only read: a fleet's bits
    //  are packed on two threads.
    size_t edges = self->policy->edge_count;
    pthread_t thread;
    s_bits_t second = { self, NULL, edges / 2, edges };
    if (!self->in_bits && edges >= S_FILL_SHARED && sysconf (_SC_NPROCESSORS_ONLN) > 1
    &&  (second.bits = bus_big_calloc (edges + 1, 1)) != NULL) {
        bool threaded = pthread_create (&thread, NULL, s_bits_run, &second) == 0;
        s_bits_fill (self, second.bits, 0, threaded? second.first: edges);
        if (threaded) {
            pthread_join (thread, NULL);
        }
        self->in_bits = second.bits;
    }
    if (self->policy->agent_count && !med_graph_in_bits (self, 0)) {
        return false;
    }
    self->shared = true;
    return true;
}

void
med_graph_counts (const med_graph_t *self, size_t *runs, size_t *memo_hits)
{
    *runs = self->runs;
    *memo_hits = self->book.memo_hits;
}

bool
med_graph_granted (const med_graph_t *self, size_t e)
{
    return self->granted [e] != 0;
}
