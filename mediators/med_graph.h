/*  med_graph.h: the policy as a graph, and what the chain does on one hop.

    Nodes are the policy's agents, edges its edges (already sorted by
    (from, to), so the out-edges of an agent are one run of the array); the
    graph adds the in-edge index and, for every edge, what the bus would do
    with a message on it.

    That answer is never re-derived here: a hop is judged by running the
    shipped chain's own stages (med_chain_stages: identity, causes, reach,
    classify, scope, taint, hold, and whatever stage is added later) on a
    synthetic message, as if the sender had sent it now. Two stages are left
    out because they bound a path rather than stop it: limits (a rate, a log
    budget) and backlog (a mailbox cap); the analysis shows their figures.

    What an attacker who steers the sender may try on an edge, for a class
    c: the label c, and as action none, each action pattern of the edge's
    scope and of class c, and the action of each standing grant for this
    (sender, recipient, c); tool and resource: none where the scope admits
    it, else its first pattern. A pattern's '*' becomes "x". The best
    outcome over these (PASS, then HOLD, then REJECT) is the edge's answer
    for c, and the decided class must be c (classify decides, not the label).

    The sender's state is one bit: tainted (it has been delivered restricted
    content). The taint stage then says whether its message is restricted
    (sticky) or not (causal mode: the compromised agent omits the cause).
    A compromised agent itself starts clean.

    Answers are computed on first use and kept. Edges of one shape
    (everything the stages may read of sender, recipient and edge but
    names, keys and lines) share one answer for both states of the sender,
    through a memo keyed by 128-bit BLAKE2b digests of the shape: a fleet
    has few shapes, so a million edges cost a few thousand runs of the
    chain, and an edge keeps a 4-byte index to its answer. With the edge
    lists (in-edges with their senders, recipients packed) the graph adds
    17 bytes per edge to the policy.
    An edge a standing grant names is judged on its own (grants go by name).
    A stage that decides by an agent's name would have to be added to the
    shape (s_shape); none does today.
*/
#ifndef MED_GRAPH_H
#define MED_GRAPH_H

#include "bus_error.h"
#include "bus_holds.h"
#include "bus_policy.h"
#include "med_stage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct med_graph med_graph_t;

//  One hop judged by the stages, with the message that got the best answer.
typedef struct {
    med_verdict_t verdict;
    const char *stage;                  //  the stage that did not pass ("" if all did)
    bus_error_t err;                    //  its reason (or the hold's)
    bool restricted;                    //  the message as the bus marked it
    bool dropped;                       //  sender tainted, causal mode: not restricted
    bool hold_required;                 //  held because of restricted = hold or scope
    const bus_grant_t *grant;           //  the standing grant that stood in, or NULL
    char action [264];                  //  the action tried ("" for none)
    char tool [128];                    //  the tool and resource with it ("" for none)
    char resource [128];
} med_hop_t;

//  grants (may be NULL) are borrowed and must outlive the graph; now_us
//  is the time grants are judged at.
int
    med_graph_new (med_graph_t **out, const bus_policy_t *policy, const bus_grant_t *grants,
                   uint32_t n_grants, uint64_t now_us, bus_error_t *err);
void
    med_graph_destroy (med_graph_t **self_p);

const bus_policy_t *
    med_graph_policy (const med_graph_t *self);

//  Out-edges of agent a: indices first .. first+count-1 into policy->edges.
void
    med_graph_out (const med_graph_t *self, uint32_t a, size_t *first, size_t *count);

//  A hint for a breadth-first search, which reads its queue's agents at
//  random: asks for agent a's place in the out-edge index (stage 0), or,
//  a few agents later, for its out-edges and their answers (stage 1), so
//  that those reads wait for memory together rather than one by one.
void
    med_graph_prefetch_out (const med_graph_t *self, uint32_t a, int stage);

//  The same for a backward search: agent a's in-edges, their senders and,
//  once med_graph_in_bits has built them, their bits.
void
    med_graph_prefetch_in (const med_graph_t *self, uint32_t a, int stage);

//  In-edges of agent a: *list (borrowed) holds count edge indices.
void
    med_graph_in (const med_graph_t *self, uint32_t a, const uint32_t **list, size_t *count);

//  The senders of those in-edges, in the same order (borrowed).
const uint32_t *
    med_graph_in_from (const med_graph_t *self, uint32_t a);

//  What the in-edges of agent a deliver, packed beside them (borrowed):
//  per in-edge, MED_GRAPH_PASS0 if a clean sender gets any class through
//  without a person, MED_GRAPH_PASS1 a tainted one, MED_GRAPH_TAINTS0 /
//  MED_GRAPH_TAINTS1 if what it delivers is then restricted. Judges every
//  edge on the first call (NULL if out of memory), so that a backward
//  search reads its way along the lists instead of at random.
#define MED_GRAPH_PASS0     1
#define MED_GRAPH_PASS1     2
#define MED_GRAPH_TAINTS0   4
#define MED_GRAPH_TAINTS1   8
const uint8_t *
    med_graph_in_bits (med_graph_t *self, uint32_t a);

//  The recipient of every edge, by edge index (borrowed; the same as
//  policy->edges [e].to, packed for searches).
const uint32_t *
    med_graph_recipients (const med_graph_t *self);

//  The classes the in-edges of agent a carry, together.
uint64_t
    med_graph_in_classes (const med_graph_t *self, uint32_t a);

//  Classes a message on edge e is delivered with, sender clean (tainted =
//  false) or tainted: without a person (pass) or after approval (held).
uint64_t
    med_graph_pass (med_graph_t *self, size_t e, bool tainted);
uint64_t
    med_graph_held (med_graph_t *self, size_t e, bool tainted);

//  Whether a standing grant names edge e's sender and recipient.
bool
    med_graph_granted (const med_graph_t *self, size_t e);

//  Whether what edge e delivers is restricted (the recipient is then
//  tainted), for a clean or a tainted sender.
bool
    med_graph_taints (med_graph_t *self, size_t e, bool tainted);

//  Runs the stages for class cls on edge e and says why (for printing).
void
    med_graph_hop (med_graph_t *self, size_t e, int cls, bool tainted, med_hop_t *out);

//  Fills every edge's answers (for --all and timing); returns how many
//  stage runs that took.
size_t
    med_graph_fill (med_graph_t *self);

//  Judges every edge and builds the in-edge bits, so that from then on
//  the graph is only read, but for med_graph_hop, which then takes a lock:
//  analyses may run on several threads at once. False if that could not
//  be had (out of memory, or an answer not kept); the graph then stays
//  for one thread.
bool
    med_graph_share (med_graph_t *self);

//  Runs of the chain so far, and answers the memo gave instead.
void
    med_graph_counts (const med_graph_t *self, size_t *runs, size_t *memo_hits);

//  Bytes the graph holds beyond the policy.
size_t
    med_graph_bytes (const med_graph_t *self);

#endif
