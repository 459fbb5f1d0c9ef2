/*  med_blast.c: what a compromised set can make happen (see med_blast.h). */
#include "med_blast.h"
#include "med_hold.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_NONE      UINT32_MAX
#define S_BIT(c)    (UINT64_C (1) << (c))
//  Beyond this many edge-disjoint unapproved paths a cut is no choke point.
#define S_CUT_MAX   64
#define S_TOP_EDGES 10

const char *
med_blast_verdict_name (med_blast_verdict_t verdict)
{
    switch (verdict) {
        case MED_BLAST_DIRECT:   return "direct";
        case MED_BLAST_DROPPED:  return "taint dropped";
        case MED_BLAST_GRANTED:  return "approved in advance";
        case MED_BLAST_APPROVAL: return "needs approval";
        case MED_BLAST_BLOCKED:  return "blocked";
    }
    return "?";
}

const char *
med_blast_band (uint32_t count, size_t agents)
{
    if (count == 0 || agents == 0) {
        return "none";
    }
    double share = (double) count / (double) agents;
    return share < 0.01? "low": share < 0.10? "moderate": share < 0.50? "high": "critical";
}

static double
s_ms (void)
{
    struct timespec ts;
    //  CPU, as the machine is shared; this thread's, as `blast` analyses
    //  all untrusted agents on a second one meanwhile.
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

void
med_blast_options_default (med_blast_options_t *options)
{
    options->k = 3;
    options->depth = 8;
    options->cuts = 3;
    options->targets = 20;
    options->counted_paths = true;
}

static uint64_t
s_privileged (const bus_policy_t *policy)
{
    uint64_t mask = 0;
    for (size_t c = 0; c < policy->class_count; c++) {
        if (policy->classes [c].privileged) {
            mask |= S_BIT (c);
        }
    }
    return mask;
}

//  The classes a hop from state (u, t) over e delivers at a level.
static uint64_t
s_mask (med_graph_t *graph, size_t e, bool tainted, int level)
{
    uint64_t mask = med_graph_pass (graph, e, tainted);
    if (level > 0) {
        mask |= med_graph_held (graph, e, tainted);
    }
    return mask;
}

//  The state a hop over e lands in: the recipient tainted if what it got is
//  restricted; a member of S is the attacker's and always clean.
static uint32_t
s_next (med_blast_t *self, size_t e, bool tainted)
{
    uint32_t to = self->to [e];
    bool t2 = !self->inside [to] && med_graph_taints (self->graph, e, tainted);
    return to * 2 + (t2? 1: 0);
}

//  How far ahead of its head a search asks for its queue's agents: their
//  index entry, then their edges (med_graph_prefetch_out).
#define S_AHEAD_FAR     16
#define S_AHEAD_NEAR    8

static void
s_search (med_blast_t *self, int level, uint32_t *queue)
{
    size_t n2 = self->n_agents * 2;
    uint32_t *dist = self->dist [level], *parent = self->parent [level], *via = self->via [level];
    for (size_t s = 0; s < n2; s++) {
        dist [s] = parent [s] = via [s] = S_NONE;
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < self->n_set; i++) {
        uint32_t st = self->set [i] * 2;
        if (dist [st] == S_NONE) {
            dist [st] = 0;
            queue [tail++] = st;
        }
    }
    while (head < tail) {
        //  The queue is read at random places of the graph: ask ahead.
        if (head + S_AHEAD_FAR < tail) {
            med_graph_prefetch_out (self->graph, queue [head + S_AHEAD_FAR] / 2, 0);
        }
        if (head + S_AHEAD_NEAR < tail) {
            med_graph_prefetch_out (self->graph, queue [head + S_AHEAD_NEAR] / 2, 1);
        }
        uint32_t st = queue [head++];
        uint32_t u = st / 2;
        bool t = st & 1;
        size_t first, count;
        med_graph_out (self->graph, u, &first, &count);
        for (size_t e = first; e < first + count; e++) {
            if (!s_mask (self->graph, e, t, level)) {
                continue;
            }
            uint32_t ns = s_next (self, e, t);
            if (dist [ns] != S_NONE) {
                continue;
            }
            dist [ns] = dist [st] + 1;
            parent [ns] = st;
            via [ns] = (uint32_t) e;
            queue [tail++] = ns;
        }
    }
}

static void
s_plain (med_blast_t *self, uint32_t *queue)
{
    for (size_t a = 0; a < self->n_agents; a++) {
        self->plain_dist [a] = self->plain_via [a] = S_NONE;
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < self->n_set; i++) {
        if (self->plain_dist [self->set [i]] == S_NONE) {
            self->plain_dist [self->set [i]] = 0;
            queue [tail++] = self->set [i];
        }
    }
    while (head < tail) {
        if (head + S_AHEAD_FAR < tail) {
            med_graph_prefetch_out (self->graph, queue [head + S_AHEAD_FAR], 0);
        }
        if (head + S_AHEAD_NEAR < tail) {
            med_graph_prefetch_out (self->graph, queue [head + S_AHEAD_NEAR], 1);
        }
        uint32_t u = queue [head++];
        size_t first, count;
        med_graph_out (self->graph, u, &first, &count);
        for (size_t e = first; e < first + count; e++) {
            uint32_t v = self->to [e];
            if (self->plain_dist [v] == S_NONE) {
                self->plain_dist [v] = self->plain_dist [u] + 1;
                self->plain_via [v] = (uint32_t) e;
                queue [tail++] = v;
            }
        }
    }
}

void
med_blast_path_free (med_blast_path_t *path)
{
    free (path->hops);
    path->hops = NULL;
    path->n_hops = 0;
}

//  The class a steered sender would send on an inner hop: one delivered
//  without a person if any, else one that is held, else the first the edge
//  carries (the replay then says who refuses it).
static int
s_inner_class (med_graph_t *graph, size_t e, bool tainted)
{
    uint64_t mask = med_graph_pass (graph, e, tainted);
    if (!mask) {
        mask = med_graph_held (graph, e, tainted);
    }
    if (!mask) {
        mask = med_graph_policy (graph)->edges [e].classes;
    }
    return mask? __builtin_ctzll (mask): 0;
}

static bool
s_quorum_inside (med_blast_t *self, int cls, uint32_t sender)
{
    const bus_policy_t *policy = med_graph_policy (self->graph);
    const bus_class_t *klass = &policy->classes [cls];
    //  med_hold_votes never counts the sender's own vote.
    uint32_t owned = self->approvers_inside [cls];
    if (self->inside [sender] && med_hold_may_approve (&policy->agents [sender], klass)) {
        owned--;
    }
    return owned >= med_hold_quorum (klass);
}

//  light: the verdicts from the graph's cached answers (the same stages'
//  answers), the reasons left out; a hop a grant may stand in on is run
//  in full. For targets that are counted, not listed.
static int
s_replay (med_blast_t *self, const uint32_t *agents, size_t n, int cls, bool light,
          med_blast_path_t *path);

int
med_blast_replay (med_blast_t *self, const uint32_t *agents, size_t n, int cls,
                  med_blast_path_t *path)
{
    return s_replay (self, agents, n, cls, false, path);
}

static int
s_replay (med_blast_t *self, const uint32_t *agents, size_t n, int cls, bool light,
          med_blast_path_t *path)
{
    const bus_policy_t *policy = med_graph_policy (self->graph);
    memset (path, 0, sizeof *path);
    if (n < 2) {
        return -1;
    }
    path->hops = calloc (n - 1, sizeof *path->hops);
    if (!path->hops) {
        return -1;
    }
    path->n_hops = n - 1;
    path->verdict = MED_BLAST_DIRECT;
    path->light = light;
    for (size_t i = 1; i < n && !path->revisits; i++) {
        for (size_t j = 0; j < i && !path->revisits; j++) {
            path->revisits = agents [i] == agents [j] && (i + 1 < n || agents [i] != agents [i - 1]);
        }
    }
    bool tainted = false;
    for (size_t i = 0; i + 1 < n; i++) {
        med_blast_hop_t *hop = &path->hops [i];
        const bus_edge_t *edge = bus_policy_edge (policy, &policy->agents [agents [i]],
                                                  &policy->agents [agents [i + 1]]);
        if (!edge) {
            med_blast_path_free (path);
            return -1;
        }
        if (self->inside [agents [i]]) {
            tainted = false;
        }
        hop->from = agents [i];
        hop->to = agents [i + 1];
        hop->edge = (uint32_t) (edge - policy->edges);
        hop->tainted = tainted;
        hop->cls = i + 2 == n && cls >= 0? cls: s_inner_class (self->graph, hop->edge, tainted);
        if (light && !med_graph_granted (self->graph, hop->edge)) {
            uint64_t bit = S_BIT (hop->cls);
            hop->hop.verdict = med_graph_pass (self->graph, hop->edge, tainted) & bit? MED_PASS:
                               med_graph_held (self->graph, hop->edge, tainted) & bit? MED_HOLD:
                               MED_REJECT;
            hop->hop.stage = "";
            hop->hop.restricted = hop->hop.verdict != MED_REJECT
                               && med_graph_taints (self->graph, hop->edge, tainted);
            hop->hop.dropped = tainted && !hop->hop.restricted && hop->hop.verdict != MED_REJECT;
        }
        else {
            med_graph_hop (self->graph, hop->edge, hop->cls, tainted, &hop->hop);
        }
        med_blast_verdict_t v = MED_BLAST_DIRECT;
        if (hop->hop.verdict == MED_REJECT) {
            v = MED_BLAST_BLOCKED;
        }
        else
        if (hop->hop.verdict == MED_HOLD) {
            v = MED_BLAST_APPROVAL;
            hop->quorum_inside = s_quorum_inside (self, hop->cls, hop->from);
        }
        else
        if (hop->hop.grant) {
            v = MED_BLAST_GRANTED;
        }
        else
        if (hop->hop.dropped) {
            v = MED_BLAST_DROPPED;
        }
        if (v > path->verdict) {
            path->verdict = v;
        }
        tainted = hop->hop.restricted;
    }
    return 0;
}

typedef struct {
    int level;                          //  0 direct, 1 approval, 2 plain
    uint32_t length;
    uint32_t state;                     //  (levels 0, 1) or agent (2) before the last hop
    uint32_t edge;
} s_cand_t;

static int
s_cand_compare (const void *a, const void *b)
{
    const s_cand_t *x = a, *y = b;
    if (x->level != y->level) {
        return x->level - y->level;
    }
    if (x->length != y->length) {
        return x->length < y->length? -1: 1;
    }
    return x->edge < y->edge? -1: x->edge > y->edge;
}

//  The agents of the path a candidate stands for, S first; *n of them.
static uint32_t *
s_agents (med_blast_t *self, const s_cand_t *cand, size_t *n)
{
    const bus_policy_t *policy = med_graph_policy (self->graph);
    size_t len = cand->length + 1;
    uint32_t *agents = calloc (len, sizeof *agents);
    if (!agents) {
        return NULL;
    }
    size_t i = len;
    agents [--i] = policy->edges [cand->edge].to;
    if (cand->level < 2) {
        uint32_t st = cand->state;
        while (st != S_NONE && i > 0) {
            agents [--i] = st / 2;
            st = self->parent [cand->level][st];
        }
    }
    else {
        uint32_t a = cand->state;
        while (i > 0) {
            agents [--i] = a;
            if (self->plain_via [a] == S_NONE) {
                break;
            }
            a = policy->edges [self->plain_via [a]].from;
        }
    }
    *n = len;
    return agents;
}

//  The candidates of one (class, recipient): a last hop into it from a
//  state each level reaches. Grows *cands; returns how many, -1 on no memory.
static long
s_candidates (med_blast_t *self, int c, uint32_t v, s_cand_t **cands, size_t *cap)
{
    med_graph_t *graph = self->graph;
    const bus_policy_t *policy = med_graph_policy (graph);
    const uint32_t *in;
    size_t n_in, n = 0;
    if (!(med_graph_in_classes (graph, v) & S_BIT (c))) {
        return 0;                       //  nothing of class c comes in
    }
    med_graph_in (graph, v, &in, &n_in);
    const uint32_t *senders = med_graph_in_from (graph, v);
    for (size_t i = 0; i < n_in; i++) {
        uint32_t from = senders [i];
        if (self->plain_dist [from] == S_NONE || !(policy->edges [in [i]].classes & S_BIT (c))) {
            continue;
        }
        if (n + 5 > *cap) {
            *cap = *cap? *cap * 2: 64;
            s_cand_t *more = realloc (*cands, *cap * sizeof *more);
            if (!more) {
                return -1;
            }
            *cands = more;
        }
        for (int level = 0; level < 2; level++) {
            for (int t = 0; t < 2; t++) {
                uint32_t st = from * 2 + (uint32_t) t;
                if (self->dist [level][st] != S_NONE
                &&  (s_mask (graph, in [i], t, level) & S_BIT (c))) {
                    (*cands) [n++] = (s_cand_t) { level, self->dist [level][st] + 1, st, in [i] };
                }
            }
        }
        (*cands) [n++] = (s_cand_t) { 2, self->plain_dist [from] + 1, from, in [i] };
    }
    if (n) {
        qsort (*cands, n, sizeof **cands, s_cand_compare);
    }
    return (long) n;
}

//  Replays the path a candidate stands for into *path.
static int
s_replay_cand (med_blast_t *self, int cls, const s_cand_t *cand, bool light,
               med_blast_path_t *path)
{
    size_t n = 0;
    uint32_t *agents = s_agents (self, cand, &n);
    int rc = agents? s_replay (self, agents, n, cls, light, path): -1;
    free (agents);
    return rc;
}

//  The edges of a best path that is not blocked, counted (sign 1) or
//  uncounted (-1) for top_edges.
static void
s_count_edges (uint32_t *uses, const med_blast_path_t *path, int sign)
{
    if (path->verdict == MED_BLAST_BLOCKED) {
        return;
    }
    for (size_t h = 0; h < path->n_hops; h++) {
        uses [path->hops [h].edge] += (uint32_t) sign;
    }
}

//  First pass: the best verdict (the first candidate's path, replayed) and
//  that path if it is within depth (kept if options->counted_paths).
static int
s_target_best (med_blast_t *self, med_blast_target_t *target, const s_cand_t *cands,
               const med_blast_options_t *options, uint32_t *uses)
{
    target->paths = calloc ((size_t) options->k + 1, sizeof *target->paths);
    med_blast_path_t path;
    if (!target->paths || s_replay_cand (self, target->cls, &cands [0], true, &path) != 0) {
        return -1;
    }
    target->best = path.verdict;
    target->best_length = (uint32_t) path.n_hops;
    if (cands [0].length <= options->depth) {
        s_count_edges (uses, &path, 1);
    }
    else {
        target->beyond_depth++;
    }
    if (cands [0].length <= options->depth && options->counted_paths) {
        target->paths [target->n_paths++] = path;
    }
    else {
        med_blast_path_free (&path);
    }
    return 0;
}

//  True if path goes through exactly these agents.
static bool
s_same_path (const med_blast_path_t *path, const uint32_t *agents, size_t n)
{
    if (path->n_hops + 1 != n || path->hops [0].from != agents [0]) {
        return false;
    }
    for (size_t h = 0; h < path->n_hops; h++) {
        if (path->hops [h].to != agents [h + 1]) {
            return false;
        }
    }
    return true;
}

//  Second pass, for the targets listed in full: up to k alternatives, each
//  another sequence of agents, shortest first by level.
static int
s_target_more (med_blast_t *self, med_blast_target_t *target, const s_cand_t *cands,
               size_t n_cands, const med_blast_options_t *options)
{
    for (size_t i = 1; i < n_cands; i++) {
        if (cands [i].length > options->depth) {
            target->beyond_depth++;
            continue;
        }
        if (target->n_paths == (size_t) options->k + 1) {
            break;
        }
        size_t n = 0;
        uint32_t *agents = s_agents (self, &cands [i], &n);
        if (!agents) {
            return -1;
        }
        bool seen = false;
        for (size_t p = 0; p < target->n_paths && !seen; p++) {
            seen = s_same_path (&target->paths [p], agents, n);
        }
        med_blast_path_t path;
        int rc = seen? 0: med_blast_replay (self, agents, n, target->cls, &path);
        free (agents);
        if (rc != 0) {
            return -1;
        }
        if (!seen) {
            target->paths [target->n_paths++] = path;
        }
    }
    return 0;
}

static int
s_target_compare (const void *a, const void *b)
{
    const med_blast_target_t *x = a, *y = b;
    if (x->cls != y->cls) {
        return x->cls - y->cls;
    }
    if (x->best != y->best) {
        return (int) x->best - (int) y->best;
    }
    if (x->best_length != y->best_length) {
        return x->best_length < y->best_length? -1: 1;
    }
    return x->recipient < y->recipient? -1: x->recipient > y->recipient;
}

static int
s_targets (med_blast_t *self, const med_blast_options_t *options, uint32_t *uses)
{
    const bus_policy_t *policy = med_graph_policy (self->graph);
    uint64_t privileged = s_privileged (policy);
    size_t cap = 0, room = 0;
    s_cand_t *cands = NULL;
    int rc = 0;
    for (size_t c = 0; c < policy->class_count && rc == 0; c++) {
        if (!(privileged & S_BIT (c))) {
            continue;
        }
        for (uint32_t v = 0; v < self->n_agents && rc == 0; v++) {
            if (self->inside [v]) {
                continue;               //  S's own: the attacker has it already
            }
            long n = s_candidates (self, (int) c, v, &cands, &cap);
            if (n <= 0) {
                rc = (int) (n < 0? -1: 0);
                continue;
            }
            if (self->n_targets == room) {
                room = room? room * 2: 16;
                med_blast_target_t *more = realloc (self->targets, room * sizeof *more);
                if (!more) {
                    rc = -1;
                    break;
                }
                self->targets = more;
            }
            med_blast_target_t *target = &self->targets [self->n_targets++];
            memset (target, 0, sizeof *target);
            target->cls = (int) c;
            target->recipient = v;
            rc = s_target_best (self, target, cands, options, uses);
            if (rc == 0 && target->best <= MED_BLAST_GRANTED) {
                self->classes_direct |= S_BIT (c);
            }
            if (rc == 0 && target->best <= MED_BLAST_APPROVAL) {
                self->classes_approval |= S_BIT (c);
            }
        }
    }
    //  Worst first within each class; the first `targets` of each in full.
    if (self->n_targets) {
        qsort (self->targets, self->n_targets, sizeof *self->targets, s_target_compare);
    }
    for (size_t i = 0, rank = 0; rc == 0 && i < self->n_targets; i++, rank++) {
        med_blast_target_t *target = &self->targets [i];
        if (i && target->cls != self->targets [i - 1].cls) {
            rank = 0;
        }
        if (options->targets && rank >= options->targets) {
            self->n_summarised++;
            continue;
        }
        long n = s_candidates (self, target->cls, target->recipient, &cands, &cap);
        if (n > 0 && cands [0].length <= options->depth) {
            //  Listed: the best path again, with every stage's reason (and
            //  counted as that one).
            med_blast_path_t light;
            if (target->n_paths) {
                light = target->paths [0];
            }
            else
            if (s_replay_cand (self, target->cls, &cands [0], true, &light) != 0) {
                rc = -1;
                break;
            }
            s_count_edges (uses, &light, -1);
            med_blast_path_free (&light);
            target->n_paths = target->n_paths? target->n_paths: 1;
            rc = s_replay_cand (self, target->cls, &cands [0], false, &target->paths [0]);
            if (rc == 0) {
                s_count_edges (uses, &target->paths [0], 1);
            }
        }
        if (rc == 0) {
            rc = n < 0? -1: s_target_more (self, target, cands, (size_t) n, options);
        }
    }
    free (cands);
    return rc;
}

static int
s_exposure (med_blast_t *self)
{
    med_graph_t *graph = self->graph;
    const bus_policy_t *policy = med_graph_policy (graph);
    for (uint32_t a = 0; a < self->n_agents; a++) {
        if (policy->agents [a].roles & BUS_ROLE_APPROVER) {
            self->n_approvers++;
        }
    }
    self->approvers = calloc (self->n_approvers + 1, sizeof *self->approvers);
    self->holds = calloc (policy->class_count + 1, sizeof *self->holds);
    if (!self->approvers || !self->holds) {
        return -1;
    }
    size_t n = 0;
    for (uint32_t a = 0; a < self->n_agents; a++) {
        if (policy->agents [a].roles & BUS_ROLE_APPROVER) {
            self->approvers [n++] = (med_blast_approver_t) { a, self->inside [a],
                                                             self->dist_direct [a],
                                                             self->dist_approval [a] };
        }
    }
    //  Which classes S can make wait: a held hop from a state steered
    //  without a person.
    uint64_t waits = 0;
    for (uint32_t st = 0; st < self->n_agents * 2; st++) {
        if (self->dist [0][st] == S_NONE) {
            continue;
        }
        size_t first, count;
        med_graph_out (graph, st / 2, &first, &count);
        for (size_t e = first; e < first + count; e++) {
            waits |= med_graph_held (graph, e, st & 1);
        }
    }
    for (size_t c = 0; c < policy->class_count; c++) {
        const bus_class_t *klass = &policy->classes [c];
        if (!klass->hold && !klass->restricted_hold) {
            continue;
        }
        med_blast_hold_t *hold = &self->holds [self->n_holds++];
        hold->cls = (int) c;
        hold->quorum = med_hold_quorum (klass);
        hold->floodable = (waits & S_BIT (c)) != 0;
        for (uint32_t a = 0; a < self->n_agents; a++) {
            if (!med_hold_may_approve (&policy->agents [a], klass)) {
                continue;
            }
            hold->eligible++;
            hold->owned += self->inside [a];
            hold->reachable += self->inside [a] || self->dist_direct [a] != S_NONE;
        }
    }
    return 0;
}

static int
s_edge_count_compare (const void *a, const void *b)
{
    const med_blast_edge_count_t *x = a, *y = b;
    if (x->count != y->count) {
        return x->count > y->count? -1: 1;
    }
    return x->edge < y->edge? -1: x->edge > y->edge;
}

//  uses: per edge, the best paths within depth (not blocked) that take it.
static int
s_top_edges (med_blast_t *self, const uint32_t *uses)
{
    size_t edges = med_graph_policy (self->graph)->edge_count, used = 0;
    for (size_t e = 0; e < edges; e++) {
        used += uses [e] != 0;
    }
    med_blast_edge_count_t *counts = calloc (used + 1, sizeof *counts);
    if (!counts) {
        return -1;
    }
    used = 0;
    for (size_t e = 0; e < edges; e++) {
        if (uses [e]) {
            counts [used++] = (med_blast_edge_count_t) { (uint32_t) e, uses [e] };
        }
    }
    qsort (counts, used, sizeof *counts, s_edge_count_compare);
    self->top_edges = counts;
    self->n_top_edges = used < S_TOP_EDGES? used: S_TOP_EDGES;
    return 0;
}

//  --- Minimum cut by max-flow -------------------------------------------------
//
//  Of the unapproved paths from S to one (class, recipient): the edges on
//  some such path (forward from S over direct hops, backward from the
//  recipient), with capacity 1 each, S joined to a source of capacity
//  S_CUT_MAX + 1 per member and the recipients to a common sink likewise.
//  The cut is the saturated edges from the side the source still reaches
//  once the flow is maximum: that side is the same for every maximum flow,
//  so the cut does not depend on how the flow was found. Taint states are
//  merged per agent for the flow, so the cut is of a graph that holds
//  every unapproved path (and possibly a few that mix states): always a
//  cut, minimum for that graph.
//
//  The network is not built: its arcs are the policy's edges, marked in
//  one byte each, and the residual graph is read from the graph's out- and
//  in-edge lists. Each augmenting path is found by a search from both ends
//  at once (the smaller frontier grows first), which in a fleet meets after
//  a few thousand agents rather than the whole graph.

#define S_ARC_IN    1                   //  the edge is an arc of the network
#define S_ARC_LATE  2                   //  ... found only from a tainted state
#define S_ARC_FLOW  4                   //  ... and carries a unit of flow
#define S_VIA_END   (UINT32_MAX - 1)    //  reached from the source (forward)
                                        //  or into the sink (backward)

//  What every cut of one analysis reuses; nodes are agents, then the
//  source (n) and the sink (n + 1).
typedef struct {
    uint8_t *arc;                       //  per edge: S_ARC_*
    uint8_t *is_sink;                   //  per agent
    uint8_t *src_flow, *sink_flow;      //  per agent: units on its source / sink arc
    uint32_t *fmark, *bmark;            //  per node: the search that reached it
    uint32_t *fvia, *bvia;              //  per node: how (edge * 2 + reverse, or S_VIA_END)
    uint32_t *fq, *bq;                  //  per node
    //  Per agent: its in-edges and out-edges that carry flow. Only those
    //  are arcs back against an edge (the residual graph's reverse arcs),
    //  and almost no agent has one: a search looks for them only where
    //  these say there are some, instead of reading every in-edge's arc
    //  at random.
    uint32_t *flow_in, *flow_out;
    uint32_t stamp;
    const uint32_t *sinks;
    size_t n_sinks;
} s_flow_t;

static void
s_flow_free (s_flow_t *f)
{
    free (f->arc), free (f->is_sink), free (f->src_flow), free (f->sink_flow);
    free (f->fmark), free (f->bmark), free (f->fvia), free (f->bvia), free (f->fq), free (f->bq);
    free (f->flow_in), free (f->flow_out);
}

static int
s_flow_new (s_flow_t *f, size_t agents, size_t edges)
{
    memset (f, 0, sizeof *f);
    size_t nodes = agents + 2;
    f->arc = calloc (edges + 1, 1);
    f->is_sink = calloc (agents + 1, 1);
    f->src_flow = calloc (agents + 1, 1);
    f->sink_flow = calloc (agents + 1, 1);
    f->fmark = calloc (nodes, sizeof (uint32_t));
    f->bmark = calloc (nodes, sizeof (uint32_t));
    f->fvia = calloc (nodes, sizeof (uint32_t));
    f->bvia = calloc (nodes, sizeof (uint32_t));
    f->fq = calloc (nodes, sizeof (uint32_t));
    f->bq = calloc (nodes, sizeof (uint32_t));
    f->flow_in = calloc (agents + 1, sizeof (uint32_t));
    f->flow_out = calloc (agents + 1, sizeof (uint32_t));
    if (!f->arc || !f->is_sink || !f->src_flow || !f->sink_flow || !f->fmark || !f->bmark
    ||  !f->fvia || !f->bvia || !f->fq || !f->bq || !f->flow_in || !f->flow_out) {
        s_flow_free (f);
        return -1;
    }
    return 0;
}

//  Edge e carries a unit of flow (on) or no longer does.
static void
s_flow_mark (s_flow_t *f, const bus_edge_t *edges, uint32_t e, bool on)
{
    if (on == !!(f->arc [e] & S_ARC_FLOW)) {
        return;
    }
    int delta = on? 1: -1;
    f->arc [e] = (uint8_t) (on? f->arc [e] | S_ARC_FLOW: f->arc [e] & ~S_ARC_FLOW);
    f->flow_in [edges [e].to] += (uint32_t) delta;
    f->flow_out [edges [e].from] += (uint32_t) delta;
}

//  Pushes one unit along the path through node m: back to the source by
//  fvia, on to the sink by bvia.
static void
s_flow_push (med_blast_t *self, s_flow_t *f, uint32_t m)
{
    const bus_edge_t *edges = med_graph_policy (self->graph)->edges;
    //  Rare (at most S_CUT_MAX + 1 paths a cut): the policy's edges will do.
    uint32_t src = (uint32_t) self->n_agents, snk = src + 1;
    uint32_t x = m;
    if (x == snk) {
        x = f->fvia [snk];
        f->sink_flow [x]++;
    }
    while (x != src) {
        uint32_t via = f->fvia [x];
        if (via == S_VIA_END) {
            f->src_flow [x]++;
            break;
        }
        uint32_t e = via / 2;
        s_flow_mark (f, edges, e, !(via & 1));
        x = via & 1? edges [e].to: edges [e].from;
    }
    x = m;
    if (x == src) {
        x = f->bvia [src];
        f->src_flow [x]++;
    }
    while (x != snk) {
        uint32_t via = f->bvia [x];
        if (via == S_VIA_END) {
            f->sink_flow [x]++;
            break;
        }
        uint32_t e = via / 2;
        s_flow_mark (f, edges, e, !(via & 1));
        x = via & 1? edges [e].from: edges [e].to;
    }
}

//  Marks node v reached by one side; true if the other side has it (the
//  searches meet there).
static inline bool
s_flow_reach (uint32_t *mark, uint32_t *via, const uint32_t *other, uint32_t *queue,
              size_t *tail, uint32_t stamp, uint32_t v, uint32_t how)
{
    if (mark [v] == stamp) {
        return false;
    }
    mark [v] = stamp;
    via [v] = how;
    queue [(*tail)++] = v;
    return other [v] == stamp;
}

//  One augmenting path: true if found (and pushed). If not, fmark == stamp
//  is the side the source reaches in the residual graph.
static bool
s_flow_augment (med_blast_t *self, s_flow_t *f)
{
    med_graph_t *graph = self->graph;
    const uint32_t *to = self->to;
    uint32_t src = (uint32_t) self->n_agents, snk = src + 1;
    uint32_t cap = S_CUT_MAX + 1;
    uint32_t stamp = ++f->stamp;
    size_t fh = 0, ft = 0, bh = 0, bt = 0;
    f->fmark [src] = stamp;
    f->bmark [snk] = stamp;
    //  The source's arcs and the sink's, expanded at once.
    for (size_t i = 0; i < self->n_set; i++) {
        uint32_t m = self->set [i];
        if (f->src_flow [m] < cap
        &&  s_flow_reach (f->fmark, f->fvia, f->bmark, f->fq, &ft, stamp, m, S_VIA_END)) {
            s_flow_push (self, f, m);
            return true;
        }
    }
    for (size_t k = 0; k < f->n_sinks; k++) {
        uint32_t s = f->sinks [k];
        if (f->sink_flow [s] < cap
        &&  s_flow_reach (f->bmark, f->bvia, f->fmark, f->bq, &bt, stamp, s, S_VIA_END)) {
            s_flow_push (self, f, s);
            return true;
        }
    }
    while (fh < ft) {
        size_t first, count;
        const uint32_t *in;
        size_t n_in;
        if (bh == bt || ft - fh <= bt - bh) {
            uint32_t u = f->fq [fh++];
            med_graph_out (graph, u, &first, &count);
            for (size_t e = first; e < first + count; e++) {
                if ((f->arc [e] & (S_ARC_IN | S_ARC_FLOW)) == S_ARC_IN
                &&  s_flow_reach (f->fmark, f->fvia, f->bmark, f->fq, &ft, stamp, to [e],
                                  (uint32_t) e * 2)) {
                    s_flow_push (self, f, to [e]);
                    return true;
                }
            }
            med_graph_in (graph, u, &in, &n_in);
            const uint32_t *from = med_graph_in_from (graph, u);
            for (size_t i = 0; f->flow_in [u] && i < n_in; i++) {
                uint32_t e = in [i];
                if ((f->arc [e] & (S_ARC_IN | S_ARC_FLOW)) == (S_ARC_IN | S_ARC_FLOW)
                &&  s_flow_reach (f->fmark, f->fvia, f->bmark, f->fq, &ft, stamp, from [i],
                                  e * 2 + 1)) {
                    s_flow_push (self, f, from [i]);
                    return true;
                }
            }
            if (f->is_sink [u] && f->sink_flow [u] < cap && f->fmark [snk] != stamp) {
                f->fmark [snk] = stamp;
                f->fvia [snk] = u;
                s_flow_push (self, f, snk);
                return true;
            }
            continue;
        }
        //  Backward: the nodes with a residual arc into x.
        uint32_t x = f->bq [bh++];
        med_graph_in (graph, x, &in, &n_in);
        const uint32_t *from = med_graph_in_from (graph, x);
        for (size_t i = 0; i < n_in; i++) {
            uint32_t e = in [i];
            if ((f->arc [e] & (S_ARC_IN | S_ARC_FLOW)) == S_ARC_IN
            &&  s_flow_reach (f->bmark, f->bvia, f->fmark, f->bq, &bt, stamp, from [i],
                              e * 2)) {
                s_flow_push (self, f, from [i]);
                return true;
            }
        }
        med_graph_out (graph, x, &first, &count);
        for (size_t e = first; f->flow_out [x] && e < first + count; e++) {
            if ((f->arc [e] & (S_ARC_IN | S_ARC_FLOW)) == (S_ARC_IN | S_ARC_FLOW)
            &&  s_flow_reach (f->bmark, f->bvia, f->fmark, f->bq, &bt, stamp, to [e],
                              (uint32_t) e * 2 + 1)) {
                s_flow_push (self, f, to [e]);
                return true;
            }
        }
        if (self->inside [x] && f->src_flow [x] < cap) {
            f->bvia [src] = x;
            s_flow_push (self, f, src);
            return true;
        }
    }
    return false;
}

typedef struct {
    uint32_t from, late, edge;
} s_cut_key_t;

static int
s_cut_key_compare (const void *a, const void *b)
{
    const s_cut_key_t *x = a, *y = b;
    if (x->from != y->from) {
        return x->from < y->from? -1: 1;
    }
    if (x->late != y->late) {
        return x->late < y->late? -1: 1;
    }
    return x->edge < y->edge? -1: x->edge > y->edge;
}

//  The cut of the unapproved paths from S to class cls at the sinks (one
//  recipient, or every recipient of the class at once through a common
//  sink). *cut gets the edges (malloc'd), *n_cut how many; none (0) when
//  there is no path or the cut is wider than S_CUT_MAX.
static int
s_cut (med_blast_t *self, s_flow_t *f, int cls, const uint32_t *sinks, size_t n_sinks,
       uint8_t *back, uint32_t *queue, uint32_t **cut, size_t *n_cut)
{
    med_graph_t *graph = self->graph;
    const bus_policy_t *policy = med_graph_policy (graph);
    size_t n2 = self->n_agents * 2;
    *cut = NULL;
    *n_cut = 0;
    memset (back, 0, n2);
    memset (f->arc, 0, policy->edge_count);
    memset (f->flow_in, 0, self->n_agents * sizeof *f->flow_in);
    memset (f->flow_out, 0, self->n_agents * sizeof *f->flow_out);
    for (size_t i = 0; i < self->n_set; i++) {
        f->src_flow [self->set [i]] = 0;
    }
    f->sinks = sinks;
    f->n_sinks = n_sinks;
    //  States that reach a sink with class cls, without a person.
    size_t head = 0, tail = 0;
    const uint32_t *in;
    size_t n_in;
    for (size_t k = 0; k < n_sinks; k++) {
        f->is_sink [sinks [k]] = 1;
        f->sink_flow [sinks [k]] = 0;
        med_graph_in (graph, sinks [k], &in, &n_in);
        const uint32_t *from = med_graph_in_from (graph, sinks [k]);
        for (size_t i = 0; i < n_in; i++) {
            for (int t = 0; t < 2; t++) {
                uint32_t st = from [i] * 2 + (uint32_t) t;
                if ((med_graph_pass (graph, in [i], t) & S_BIT (cls)) && !back [st]) {
                    back [st] = 1;
                    queue [tail++] = st;
                }
            }
        }
    }
    while (head < tail) {
        if (head + S_AHEAD_FAR < tail) {
            med_graph_prefetch_in (graph, queue [head + S_AHEAD_FAR] / 2, 0);
        }
        if (head + S_AHEAD_NEAR < tail) {
            med_graph_prefetch_in (graph, queue [head + S_AHEAD_NEAR] / 2, 1);
        }
        uint32_t st = queue [head++];
        med_graph_in (graph, st / 2, &in, &n_in);
        const uint32_t *from = med_graph_in_from (graph, st / 2);
        const uint8_t *bits = med_graph_in_bits (graph, st / 2);
        if (!bits) {
            return -1;
        }
        //  A hop into st / 2 lands in st (s_next) if what it delivers taints
        //  exactly when st is the tainted state.
        bool inside = self->inside [st / 2], tainted = st & 1;
        for (size_t i = 0; i < n_in; i++) {
            for (int t = 0; t < 2; t++) {
                uint32_t ps = from [i] * 2 + (uint32_t) t;
                uint8_t pass = t? MED_GRAPH_PASS1: MED_GRAPH_PASS0;
                uint8_t taints = t? MED_GRAPH_TAINTS1: MED_GRAPH_TAINTS0;
                if (!back [ps] && (bits [i] & pass)
                &&  (!inside && (bits [i] & taints)) == tainted) {
                    back [ps] = 1;
                    queue [tail++] = ps;
                }
            }
        }
    }
    //  The arcs: one per policy edge, whichever state it was found from.
    for (uint32_t st = 0; st < n2; st++) {
        if (self->dist [0][st] == S_NONE || !back [st]) {
            continue;
        }
        size_t e0, count;
        med_graph_out (graph, st / 2, &e0, &count);
        for (size_t e = e0; e < e0 + count; e++) {
            if (f->arc [e]) {
                continue;
            }
            uint64_t pass = med_graph_pass (graph, e, st & 1);
            uint32_t to = self->to [e];
            bool last = f->is_sink [to] && (pass & S_BIT (cls));
            bool inner = pass && back [s_next (self, e, st & 1)] && !self->inside [to];
            if ((last || inner) && to != st / 2) {
                f->arc [e] = S_ARC_IN | (st & 1? S_ARC_LATE: 0);
            }
        }
    }
    int flow = 0;
    while (flow <= S_CUT_MAX && s_flow_augment (self, f)) {
        flow++;
    }
    int rc = 0;
    if (flow > S_CUT_MAX || flow == 0) {
        goto done;                      //  none, or too wide to be a choke point
    }
    //  fmark == stamp is what the source still reaches after the last search;
    //  the cut in the order the arcs would be listed: by sender, the arcs
    //  found from a clean state first, then by edge.
    s_cut_key_t keys [S_CUT_MAX];
    size_t n_keys = 0;
    for (size_t e = 0; e < policy->edge_count; e++) {
        if ((f->arc [e] & (S_ARC_IN | S_ARC_FLOW)) != (S_ARC_IN | S_ARC_FLOW)) {
            continue;
        }
        const bus_edge_t *edge = &policy->edges [e];
        if (f->fmark [edge->from] == f->stamp && f->fmark [edge->to] != f->stamp
        &&  n_keys < (size_t) flow) {
            keys [n_keys++] = (s_cut_key_t) { edge->from, (f->arc [e] & S_ARC_LATE) != 0,
                                              (uint32_t) e };
        }
    }
    qsort (keys, n_keys, sizeof *keys, s_cut_key_compare);
    *cut = calloc ((size_t) flow, sizeof **cut);
    if (!*cut) {
        rc = -1;
        goto done;
    }
    for (size_t k = 0; k < n_keys; k++) {
        (*cut) [(*n_cut)++] = keys [k].edge;
    }
done:
    for (size_t k = 0; k < n_sinks; k++) {
        f->is_sink [sinks [k]] = 0;
    }
    return rc;
}
int
med_blast_open (med_blast_t **out, med_graph_t *graph, const uint32_t *set, size_t n_set,
                const med_blast_options_t *options, bus_error_t *err)
{
    const bus_policy_t *policy = med_graph_policy (graph);
    med_blast_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "blast: out of memory");
    }
    self->graph = graph;
    self->to = med_graph_recipients (graph);
    self->n_agents = policy->agent_count;
    size_t n = self->n_agents, n2 = n * 2;
    self->inside = calloc (n + 1, sizeof *self->inside);
    self->set = calloc (n_set + 1, sizeof *self->set);
    self->dist_direct = calloc (n + 1, sizeof (uint32_t));
    self->dist_approval = calloc (n + 1, sizeof (uint32_t));
    self->plain_dist = calloc (n + 1, sizeof (uint32_t));
    self->plain_via = calloc (n + 1, sizeof (uint32_t));
    uint32_t *queue = calloc (n2 + 1, sizeof *queue);
    uint8_t *back = calloc (n2 + 1, 1);
    bool ok = self->inside && self->set && self->dist_direct && self->dist_approval
           && self->plain_dist && self->plain_via && queue && back;
    for (int level = 0; level < 2 && ok; level++) {
        self->dist [level] = calloc (n2 + 1, sizeof (uint32_t));
        self->parent [level] = calloc (n2 + 1, sizeof (uint32_t));
        self->via [level] = calloc (n2 + 1, sizeof (uint32_t));
        ok = self->dist [level] && self->parent [level] && self->via [level];
    }
    if (!ok) {
        free (queue), free (back);
        med_blast_destroy (&self);
        return bus_fail (err, BUS_ENOMEM, "blast: out of memory for %zu agents", n);
    }
    for (size_t i = 0; i < n_set; i++) {
        if (set [i] >= n) {
            free (queue), free (back);
            med_blast_destroy (&self);
            return bus_fail (err, BUS_EINVAL, "blast: agent index %u out of range", set [i]);
        }
        if (!self->inside [set [i]]) {
            self->inside [set [i]] = true;
            self->set [self->n_set++] = set [i];
        }
    }
    double t0 = s_ms ();
    s_search (self, 0, queue);
    s_search (self, 1, queue);
    s_plain (self, queue);
    self->ms_search = s_ms () - t0;
    for (size_t a = 0; a < n; a++) {
        uint32_t d0 = self->dist [0][a * 2], d1 = self->dist [0][a * 2 + 1];
        self->dist_direct [a] = d0 < d1? d0: d1;
        d0 = self->dist [1][a * 2], d1 = self->dist [1][a * 2 + 1];
        self->dist_approval [a] = d0 < d1? d0: d1;
    }
    for (size_t i = 0; i < self->n_set; i++) {
        const bus_agent_t *agent = &policy->agents [self->set [i]];
        for (size_t c = 0; c < policy->class_count; c++) {
            self->approvers_inside [c] += med_hold_may_approve (agent, &policy->classes [c]);
        }
    }
    t0 = s_ms ();
    uint32_t *uses = calloc (policy->edge_count + 1, sizeof *uses);
    int rc = uses? s_targets (self, options, uses): -1;
    if (rc == 0) {
        rc = s_exposure (self);
    }
    if (rc == 0) {
        rc = s_top_edges (self, uses);
    }
    free (uses);
    self->ms_targets = s_ms () - t0;
    t0 = s_ms ();
    //  Targets are worst first per class: the cuts go to the first ones.
    s_flow_t flow;
    bool cuts = rc == 0 && options->cuts;
    if (cuts && s_flow_new (&flow, n, policy->edge_count) != 0) {
        rc = -1;
        cuts = false;
    }
    for (size_t i = 0, done = 0; cuts && rc == 0 && i < self->n_targets; i++) {
        med_blast_target_t *target = &self->targets [i];
        if (target->best <= MED_BLAST_GRANTED && done++ < options->cuts) {
            rc = s_cut (self, &flow, target->cls, &target->recipient, 1, back, queue,
                        &target->cut, &target->n_cut);
        }
    }
    //  And per class, every unapproved recipient of it at once.
    uint32_t *sinks = calloc (self->n_targets + 1, sizeof *sinks);
    self->class_cuts = calloc (policy->class_count + 1, sizeof *self->class_cuts);
    if (rc == 0 && (!sinks || !self->class_cuts)) {
        rc = -1;
    }
    for (size_t c = 0; cuts && rc == 0 && c < policy->class_count; c++) {
        size_t n_sinks = 0;
        for (size_t i = 0; i < self->n_targets; i++) {
            if (self->targets [i].cls == (int) c && self->targets [i].best <= MED_BLAST_GRANTED) {
                sinks [n_sinks++] = self->targets [i].recipient;
            }
        }
        if (n_sinks) {
            med_blast_cut_t *cut = &self->class_cuts [self->n_class_cuts++];
            cut->cls = (int) c;
            cut->recipients = n_sinks;
            rc = s_cut (self, &flow, (int) c, sinks, n_sinks, back, queue, &cut->cut,
                        &cut->n_cut);
        }
    }
    if (cuts) {
        s_flow_free (&flow);
    }
    free (sinks);
    self->ms_cuts = s_ms () - t0;
    free (queue);
    free (back);
    if (rc != 0) {
        med_blast_destroy (&self);
        return bus_fail (err, BUS_ENOMEM, "blast: out of memory");
    }
    *out = self;
    return 0;
}

void
med_blast_destroy (med_blast_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    med_blast_t *self = *self_p;
    for (size_t i = 0; i < self->n_targets; i++) {
        for (size_t p = 0; p < self->targets [i].n_paths; p++) {
            med_blast_path_free (&self->targets [i].paths [p]);
        }
        free (self->targets [i].paths);
        free (self->targets [i].cut);
    }
    free (self->targets);
    for (size_t i = 0; i < self->n_class_cuts; i++) {
        free (self->class_cuts [i].cut);
    }
    free (self->class_cuts);
    free (self->approvers);
    free (self->holds);
    free (self->top_edges);
    free (self->inside);
    free (self->set);
    free (self->dist_direct);
    free (self->dist_approval);
    free (self->plain_dist);
    free (self->plain_via);
    for (int level = 0; level < 2; level++) {
        free (self->dist [level]);
        free (self->parent [level]);
        free (self->via [level]);
    }
    free (self);
    *self_p = NULL;
}

//  --- Score: every agent alone as S, at once ---------------------------------
//
//  Tarjan's algorithm, iterative, over the (agent, tainted) state graph of
//  one level; a component is finished after every component it reaches, so
//  its class set is its members' own triggers joined with its successors'.

typedef struct {
    med_graph_t *graph;
    const uint32_t *to;                 //  recipient per edge
    int level;
    uint64_t privileged;
    size_t n2;
    uint32_t *index, *low, *comp, *stack, *call;
    size_t *cursor;
    uint8_t *on;
    uint64_t *mask;                     //  per component
} s_tarjan_t;

static uint32_t
s_target_state (s_tarjan_t *t, size_t e, uint32_t st)
{
    return t->to [e] * 2 + (med_graph_taints (t->graph, e, st & 1)? 1: 0);
}

static void
s_tarjan (s_tarjan_t *t)
{
    uint32_t next_index = 0, next_comp = 0;
    size_t sp = 0, cp = 0;
    for (uint32_t root = 0; root < t->n2; root++) {
        if (t->index [root] != S_NONE) {
            continue;
        }
        t->call [cp++] = root;
        t->index [root] = t->low [root] = next_index++;
        t->stack [sp++] = root;
        t->on [root] = 1;
        size_t dummy;
        med_graph_out (t->graph, root / 2, &t->cursor [root], &dummy);
        while (cp) {
            uint32_t st = t->call [cp - 1];
            size_t first, count;
            med_graph_out (t->graph, st / 2, &first, &count);
            bool descended = false;
            while (t->cursor [st] < first + count) {
                size_t e = t->cursor [st]++;
                if (!s_mask (t->graph, e, st & 1, t->level)) {
                    continue;
                }
                uint32_t ns = s_target_state (t, e, st);
                if (t->index [ns] == S_NONE) {
                    t->index [ns] = t->low [ns] = next_index++;
                    t->stack [sp++] = ns;
                    t->on [ns] = 1;
                    size_t d;
                    med_graph_out (t->graph, ns / 2, &t->cursor [ns], &d);
                    t->call [cp++] = ns;
                    descended = true;
                    break;
                }
                if (t->on [ns] && t->index [ns] < t->low [st]) {
                    t->low [st] = t->index [ns];
                }
            }
            if (descended) {
                continue;
            }
            cp--;
            if (cp && t->low [st] < t->low [t->call [cp - 1]]) {
                t->low [t->call [cp - 1]] = t->low [st];
            }
            if (t->low [st] != t->index [st]) {
                continue;
            }
            //  st roots a component: pop it, then join its class sets.
            uint32_t c = next_comp++;
            size_t bottom = sp;
            do {
                bottom--;
                t->on [t->stack [bottom]] = 0;
                t->comp [t->stack [bottom]] = c;
            } while (t->stack [bottom] != st);
            uint64_t mask = 0;
            for (size_t i = bottom; i < sp; i++) {
                uint32_t m = t->stack [i];
                med_graph_out (t->graph, m / 2, &first, &count);
                for (size_t e = first; e < first + count; e++) {
                    uint64_t delivered = s_mask (t->graph, e, m & 1, t->level);
                    if (!delivered) {
                        continue;
                    }
                    mask |= delivered & t->privileged;
                    uint32_t other = t->comp [s_target_state (t, e, m)];
                    if (other != c && other != S_NONE) {
                        mask |= t->mask [other];
                    }
                }
            }
            t->mask [c] = mask;
            sp = bottom;
        }
    }
}

//  One level of the score: its own Tarjan over the shared graph, so that
//  the two levels can run on two threads.
typedef struct {
    med_graph_t *graph;
    int level;
    uint32_t *counts;                   //  per class
    uint64_t *by_agent;                 //  or NULL; [a * 2 + level]
    int rc;
    bus_error_t err;
} s_level_t;

static void *
s_score_level (void *arg)
{
    s_level_t *l = arg;
    const bus_policy_t *policy = med_graph_policy (l->graph);
    size_t n = policy->agent_count, n2 = n * 2;
    s_tarjan_t t = { .graph = l->graph, .to = med_graph_recipients (l->graph),
                     .level = l->level, .privileged = s_privileged (policy), .n2 = n2 };
    t.index = malloc ((n2 + 1) * sizeof *t.index);
    t.low = malloc ((n2 + 1) * sizeof *t.low);
    t.comp = malloc ((n2 + 1) * sizeof *t.comp);
    t.stack = malloc ((n2 + 1) * sizeof *t.stack);
    t.call = malloc ((n2 + 1) * sizeof *t.call);
    t.cursor = malloc ((n2 + 1) * sizeof *t.cursor);
    t.on = malloc (n2 + 1);
    t.mask = malloc ((n2 + 1) * sizeof *t.mask);
    l->rc = 0;
    if (!t.index || !t.low || !t.comp || !t.stack || !t.call || !t.cursor || !t.on || !t.mask) {
        l->rc = bus_fail (&l->err, BUS_ENOMEM, "blast score: out of memory for %zu agents", n);
    }
    else {
        for (size_t s = 0; s < n2; s++) {
            t.index [s] = t.comp [s] = S_NONE;
            t.on [s] = 0;
        }
        s_tarjan (&t);
        for (size_t a = 0; a < n; a++) {
            uint64_t mask = t.mask [t.comp [a * 2]];
            if (l->by_agent) {
                l->by_agent [a * 2 + (size_t) l->level] = mask;
            }
            for (int c = 0; mask; c++, mask >>= 1) {
                l->counts [c] += mask & 1;
            }
        }
    }
    free (t.index), free (t.low), free (t.comp), free (t.stack), free (t.call);
    free (t.cursor), free (t.on), free (t.mask);
    return NULL;
}

int
med_blast_score (med_graph_t *graph, uint32_t direct [BUS_CLASS_MAX],
                 uint32_t approval [BUS_CLASS_MAX], uint64_t *by_agent, bus_error_t *err)
{
    memset (direct, 0, BUS_CLASS_MAX * sizeof *direct);
    memset (approval, 0, BUS_CLASS_MAX * sizeof *approval);
    s_level_t levels [2] = {
        { .graph = graph, .level = 0, .counts = direct, .by_agent = by_agent },
        { .graph = graph, .level = 1, .counts = approval, .by_agent = by_agent },
    };
    //  The levels share only the graph, which med_graph_share makes safe
    //  to read from two threads.
    pthread_t thread;
    bool threaded = sysconf (_SC_NPROCESSORS_ONLN) > 1 && med_graph_share (graph)
                 && pthread_create (&thread, NULL, s_score_level, &levels [1]) == 0;
    s_score_level (&levels [0]);
    if (threaded) {
        pthread_join (thread, NULL);
    }
    else {
        s_score_level (&levels [1]);
    }
    for (int level = 0; level < 2; level++) {
        if (levels [level].rc != 0) {
            *err = levels [level].err;
            return -1;
        }
    }
    return 0;
}
