/*  med_blast.h: blast radius. If the agents of a set S are compromised,
    what can they make happen?

    Steering: an agent delivered content from S (or from an agent S steers)
    may be steered, and send whatever its edges allow. Each hop is judged by
    the chain's stages (med_graph.h), with the sender clean or tainted. A
    search over (agent, tainted) states from S, once with the hops that pass
    without a person (level "direct") and once also with the hops that are
    held for approval (level "approval"), gives every agent's distance and,
    for every privileged class and recipient of it, the best level and the
    shortest path at that level; reachability is not bounded by depth.

    Every (class, recipient) gets its best verdict and the path behind it;
    the first `targets` of each class, worst first, get alternatives too,
    and the first `cuts` unapproved ones a minimum cut.

    Paths listed per (class, recipient): the shortest at the best level, then
    up to k alternatives, each the search's path to another last hop (a
    different sender into the recipient, or the same at another level),
    direct ones first, then held, then blocked ones (edges exist but a stage
    refuses on the way); no two with the same agents. Counting all simple paths
    is exponential; this is not that. Paths longer than depth are counted,
    not listed.

    The search is over walks: exact for them, polynomial. The bus keeps a
    sticky agent tainted once it is, so a walk that passes an agent tainted
    and comes back to it clean (through a causal-mode agent) is not one the
    bus allows; such a path is flagged (revisits) and its answer may be
    worse than shown. Excluding them exactly is the "path avoiding
    forbidden pairs" problem, NP-complete; the analysis errs on the side
    of the attacker, never the other way (the property test checks both
    directions against brute force on small policies).

    Every listed path is replayed hop by hop through the stages; its verdict
    is the worst hop's: blocked > needs approval > approved in advance (a
    standing grant) > taint dropped (a causal-mode agent sent on unrestricted)
    > direct.
*/
#ifndef MED_BLAST_H
#define MED_BLAST_H

#include "med_graph.h"

typedef enum {
    MED_BLAST_DIRECT,
    MED_BLAST_DROPPED,                  //  direct, because a causal agent dropped the taint
    MED_BLAST_GRANTED,                  //  direct, because a standing grant stood in
    MED_BLAST_APPROVAL,
    MED_BLAST_BLOCKED
} med_blast_verdict_t;

const char *
    med_blast_verdict_name (med_blast_verdict_t verdict);

typedef struct {
    uint32_t from, to;                  //  agents
    uint32_t edge;
    int cls;                            //  class of the message on this hop
    bool tainted;                       //  the sender was tainted
    med_hop_t hop;                      //  what the stages said
    bool quorum_inside;                 //  held, and S holds the quorum itself
} med_blast_hop_t;

typedef struct {
    med_blast_verdict_t verdict;
    bool revisits;                      //  an agent appears twice before the last hop
    bool light;                         //  verdicts only (a counted target): no reasons
    size_t n_hops;
    med_blast_hop_t *hops;
} med_blast_path_t;

typedef struct {
    int cls;
    uint32_t recipient;
    med_blast_verdict_t best;           //  best verdict of any path (not depth-bounded)
    uint32_t best_length;               //  hops of the shortest path at that level
    size_t n_paths;
    med_blast_path_t *paths;            //  shortest first, then alternatives
    size_t beyond_depth;                //  candidate paths longer than depth, not listed
    //  Minimum cut of the unapproved paths from S (see med_blast_cut).
    size_t n_cut;
    uint32_t *cut;                      //  edge indices
} med_blast_target_t;

typedef struct {
    uint32_t agent;
    bool inside;                        //  in S
    uint32_t dist_direct;               //  UINT32_MAX: not steered
    uint32_t dist_approval;
} med_blast_approver_t;

typedef struct {
    int cls;
    uint32_t quorum;
    uint32_t eligible;                  //  approvers that may decide on it
    uint32_t owned;                     //  of them inside S
    uint32_t reachable;                 //  of them inside S or steered without a person
    bool floodable;                     //  S can make messages of it wait (Pending notices)
} med_blast_hold_t;

typedef struct {
    uint32_t edge;
    uint32_t count;                     //  shortest paths that use it
} med_blast_edge_count_t;

//  The cut of every unapproved path from S to every recipient of a class.
typedef struct {
    int cls;
    size_t recipients;                  //  unapproved recipients it separates S from
    size_t n_cut;                       //  0: wider than 64 edges (no choke point)
    uint32_t *cut;
} med_blast_cut_t;

typedef struct {
    uint32_t k;                         //  alternatives per target, default 3
    uint32_t depth;                     //  longest path listed, default 8
    uint32_t cuts;                      //  minimum cuts (max-flow) for the first N
                                        //  unapproved targets, default 3; 0 = none
                                        //  (per class cuts come with any N > 0)
    uint32_t targets;                   //  per class, targets listed in full (with
                                        //  alternatives), default 20; 0 = all
    bool counted_paths;                 //  keep the best path of the others too
                                        //  (default true; false: their verdict,
                                        //  length and count only, which is what
                                        //  the text output shows of them)
} med_blast_options_t;

typedef struct {
    med_graph_t *graph;                 //  borrowed
    size_t n_agents;
    bool *inside;                       //  per agent: in S
    uint32_t *set;                      //  S, agent indices
    size_t n_set;
    uint32_t *dist_direct;              //  per agent, over both states; UINT32_MAX = no
    uint32_t *dist_approval;
    size_t n_targets;
    med_blast_target_t *targets;        //  by class, then worst verdict, shortest, index
    size_t n_summarised;                //  targets with their best path only
    size_t n_approvers;
    med_blast_approver_t *approvers;
    size_t n_holds;
    med_blast_hold_t *holds;
    size_t n_class_cuts;
    med_blast_cut_t *class_cuts;        //  per privileged class S reaches unapproved
    size_t n_top_edges;
    med_blast_edge_count_t *top_edges;  //  most used by the shortest paths, at most 10
    uint64_t classes_direct;            //  privileged classes S triggers without a person
    uint64_t classes_approval;          //  ... with approval at most
    double ms_search, ms_targets, ms_cuts;  //  where the CPU time went
    //  Internal search state (per level, per state = agent * 2 + tainted).
    const uint32_t *to;                 //  recipient per edge (the graph's)
    uint32_t approvers_inside [BUS_CLASS_MAX];  //  members of S that may approve
    uint32_t *dist [2];
    uint32_t *parent [2];               //  previous state
    uint32_t *via [2];                  //  edge into this state
    uint32_t *plain_dist;               //  agents, over any edge
    uint32_t *plain_via;
} med_blast_t;

void
    med_blast_options_default (med_blast_options_t *options);

//  Analyses the compromise of agents set [0 .. n_set-1] (indices).
int
    med_blast_open (med_blast_t **out, med_graph_t *graph, const uint32_t *set, size_t n_set,
                    const med_blast_options_t *options, bus_error_t *err);
void
    med_blast_destroy (med_blast_t **self_p);

//  Replays an agent path (agents [0] in S) through the stages, with class
//  cls on the last hop (-1: whichever an inner hop would carry); fills path (hops malloc'd, free with
//  med_blast_path_free). For tests and for --diff.
int
    med_blast_replay (med_blast_t *self, const uint32_t *agents, size_t n, int cls,
                      med_blast_path_t *path);
void
    med_blast_path_free (med_blast_path_t *path);

//  The share of agents that reach each privileged class: for every agent
//  alone as S, whether it triggers class c directly (direct [c]) or with
//  approval at most (approval [c]); counts of agents. Strongly connected
//  components of the state graph are condensed and the class sets
//  propagated once over the condensed graph: O(agents + edges).
//  by_agent (may be NULL) gets two masks per agent (direct, approval).
int
    med_blast_score (med_graph_t *graph, uint32_t direct [BUS_CLASS_MAX],
                     uint32_t approval [BUS_CLASS_MAX], uint64_t *by_agent, bus_error_t *err);

//  BloodHound-like band for a share of agents: "none", "low" (< 1%),
//  "moderate" (< 10%), "high" (< 50%), "critical".
const char *
    med_blast_band (uint32_t count, size_t agents);

#endif
