/*  med_graph.c: the policy graph; each hop judged by the chain's own stages. */
#include "med_graph.h"
#include "med_chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  What one edge delivers, filled on first use. 40 bytes with padding.
typedef struct {
    uint64_t pass [2];                  //  by sender tainted 0 / 1
    uint64_t held [2];
    uint8_t done;
    uint8_t taints;                     //  bit t: delivered restricted
} s_answer_t;

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
    s_answer_t *answers;                //  edge_count
    size_t runs;
};

//  Stages that bound a path without stopping it: shown, not applied.
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
    self->out_first = calloc (agents + 1, sizeof *self->out_first);
    self->in_first = calloc (agents + 1, sizeof *self->in_first);
    self->in_edges = calloc (edges + 1, sizeof *self->in_edges);
    self->answers = calloc (edges + 1, sizeof *self->answers);
    if (!self->out_first || !self->in_first || !self->in_edges || !self->answers) {
        med_graph_destroy (&self);
        return bus_fail (err, BUS_ENOMEM, "policy graph of %zu edges: out of memory", edges);
    }
    if (med_chain_open_with (&self->chain, self->stages, policy, err) != 0) {
        med_graph_destroy (&self);
        return -1;
    }
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
        med_graph_destroy (&self);
        return bus_fail (err, BUS_ENOMEM, "policy graph: out of memory");
    }
    for (size_t e = 0; e < edges; e++) {
        uint32_t to = policy->edges [e].to;
        self->in_edges [self->in_first [to] + fill [to]++] = (uint32_t) e;
    }
    free (fill);
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
    med_chain_destroy (&self->chain);
    free (self->out_first);
    free (self->in_first);
    free (self->in_edges);
    free (self->answers);
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
med_graph_in (const med_graph_t *self, uint32_t a, const uint32_t **list, size_t *count)
{
    *list = self->in_edges + self->in_first [a];
    *count = self->in_first [a + 1] - self->in_first [a];
}

size_t
med_graph_bytes (const med_graph_t *self)
{
    size_t agents = self->policy->agent_count, edges = self->policy->edge_count;
    return sizeof *self + 2 * (agents + 1) * sizeof (size_t)
         + (edges + 1) * (sizeof (uint32_t) + sizeof (s_answer_t));
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
s_admitted (char **list, size_t count, char *buf, size_t size)
{
    if (count == 0) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp (list [i], "none") == 0) {
            return NULL;
        }
    }
    s_concrete (list [0], buf, size);
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

void
med_graph_hop (med_graph_t *self, size_t e, int cls, bool tainted, med_hop_t *out)
{
    const bus_policy_t *policy = self->policy;
    const bus_edge_t *edge = &policy->edges [e];
    const bus_class_t *klass = &policy->classes [cls];
    //  The actions an attacker would try (see the header).
    enum { S_CANDIDATES = 24 };
    char buf [S_CANDIDATES][264];
    const char *actions [S_CANDIDATES];
    size_t n = 0;
    actions [n++] = NULL;
    for (size_t i = 0; i < edge->action_count && n < S_CANDIDATES; i++) {
        if (strcmp (edge->actions [i], "none") != 0) {
            s_concrete (edge->actions [i], buf [n], sizeof buf [n]);
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
    const char *tool = s_admitted (edge->tools, edge->tool_count, tool_buf, sizeof tool_buf);
    const char *resource = s_admitted (edge->resources, edge->resource_count, resource_buf,
                                       sizeof resource_buf);
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

static s_answer_t *
s_answer (med_graph_t *self, size_t e)
{
    s_answer_t *answer = &self->answers [e];
    if (answer->done) {
        return answer;
    }
    const bus_policy_t *policy = self->policy;
    uint64_t classes = policy->edges [e].classes;
    for (int t = 0; t < 2; t++) {
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
    answer->done = 1;
    return answer;
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

size_t
med_graph_fill (med_graph_t *self)
{
    size_t before = self->runs;
    for (size_t e = 0; e < self->policy->edge_count; e++) {
        s_answer (self, e);
    }
    return self->runs - before;
}
