/*  test_blast.c: the policy graph and the blast-radius analysis
    (mediators/med_graph.c, mediators/med_blast.c).

    Hand-built policies with known answers: chains, diamonds, cycles, self
    loops, untrusted sources, causal-mode laundering, accepts_restricted,
    scopes, grants, a provider compromise that includes an approver; the
    score and the minimum cut. Then a property test: random policies (the
    seed is printed; BLAST_SEED=N replays one, BLAST_ROUNDS=N runs N) where the analysis must agree
    with a brute-force enumeration of every simple path, and every path it
    prints must be accepted hop by hop by the shipped chain itself.
*/
#include "check.h"

#include <stdlib.h>
#include <time.h>
#include <zmq.h>

#include "bus_policy.h"
#include "med_blast.h"
#include "med_chain.h"

//  Policy text with every "@K" replaced by a fresh CURVE public key.
static bus_policy_t *
s_policy (const char *text)
{
    size_t len = strlen (text);
    char *out = malloc (len * 20 + 1);
    assert_non_null (out);
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        if (text [i] == '@' && text [i + 1] == 'K') {
            char pub [41], sec [41];
            assert_int_equal (zmq_curve_keypair (pub, sec), 0);
            used += (size_t) sprintf (out + used, "\"%s\"", pub);
            i++;
        }
        else {
            out [used++] = text [i];
        }
    }
    out [used] = 0;
    bus_policy_t *policy = NULL;
    bus_error_t err;
    int rc = bus_policy_parse (&policy, out, used, "test", &err);
    if (rc != 0) {
        print_error ("policy: %s\n%s\n", err.text, out);
    }
    free (out);
    CHECK_PASS (rc, err);
    return policy;
}

typedef struct {
    bus_policy_t *policy;
    med_graph_t *graph;
    med_blast_t *blast;
} s_case_t;

static uint32_t
s_agent (const bus_policy_t *policy, const char *name)
{
    const bus_agent_t *agent = bus_policy_agent (policy, name);
    if (!agent) {
        print_error ("no agent %s\n", name);
        fail ();
    }
    return bus_policy_agent_index (policy, agent);
}

//  names: space-separated agents of S.
static void
s_open_with (s_case_t *self, const char *text, const char *names, const bus_grant_t *grants,
             uint32_t n_grants)
{
    self->policy = s_policy (text);
    bus_error_t err;
    CHECK_PASS (med_graph_new (&self->graph, self->policy, grants, n_grants,
                               (uint64_t) time (NULL) * 1000000, &err), err);
    uint32_t set [16];
    size_t n = 0;
    char buf [256];
    snprintf (buf, sizeof buf, "%s", names);
    for (char *save = NULL, *word = strtok_r (buf, " ", &save); word;
         word = strtok_r (NULL, " ", &save)) {
        set [n++] = s_agent (self->policy, word);
    }
    med_blast_options_t options;
    med_blast_options_default (&options);
    CHECK_PASS (med_blast_open (&self->blast, self->graph, set, n, &options, &err), err);
}

static void
s_open (s_case_t *self, const char *text, const char *names)
{
    s_open_with (self, text, names, NULL, 0);
}

static void
s_close (s_case_t *self)
{
    med_blast_destroy (&self->blast);
    med_graph_destroy (&self->graph);
    bus_policy_destroy (&self->policy);
}

static const med_blast_target_t *
s_find (s_case_t *self, const char *cls, const char *recipient)
{
    int c = bus_policy_class (self->policy, cls);
    uint32_t r = s_agent (self->policy, recipient);
    for (size_t i = 0; i < self->blast->n_targets; i++) {
        if (self->blast->targets [i].cls == c && self->blast->targets [i].recipient == r) {
            return &self->blast->targets [i];
        }
    }
    return NULL;
}

static void
s_expect (s_case_t *self, const char *cls, const char *recipient, med_blast_verdict_t verdict,
          uint32_t length)
{
    const med_blast_target_t *target = s_find (self, cls, recipient);
    if (!target) {
        print_error ("no target %s -> %s\n", cls, recipient);
        fail ();
    }
    if (target->best != verdict || target->best_length != length) {
        print_error ("%s -> %s: %s in %u hops, expected %s in %u\n", cls, recipient,
                     med_blast_verdict_name (target->best), target->best_length,
                     med_blast_verdict_name (verdict), length);
        fail ();
    }
}

//  A chain a -> b -> c, c executes a privileged class that is not held.
static const char *s_chain =
    "classes\n"
    "    exec\n"
    "        privileged = true\n"
    "agents\n"
    "    a\n        key = @K\n"
    "    b\n        key = @K\n"
    "    c\n        key = @K\n        class = exec\n"
    "    d\n        key = @K\n"
    "edges\n"
    "    a\n        b = message\n"
    "    b\n        c = exec\n"
    "    d\n        a = message\n";

static void
test_chain (void **state)
{
    (void) state;
    s_case_t t;
    s_open (&t, s_chain, "a");
    s_expect (&t, "exec", "c", MED_BLAST_DIRECT, 2);
    assert_int_equal (t.blast->dist_direct [s_agent (t.policy, "b")], 1);
    assert_int_equal (t.blast->dist_direct [s_agent (t.policy, "c")], 2);
    //  Upstream is not reached: steering goes along edges only.
    assert_int_equal (t.blast->dist_direct [s_agent (t.policy, "d")], UINT32_MAX);
    const med_blast_target_t *target = s_find (&t, "exec", "c");
    assert_int_equal (target->n_paths, 1);
    assert_int_equal (target->paths [0].hops [0].to, s_agent (t.policy, "b"));
    //  One edge cuts it (for d alone and for the class); the edges on the
    //  path are the most used.
    assert_int_equal (target->n_cut, 1);
    assert_int_equal (t.blast->n_class_cuts, 1);
    assert_int_equal (t.blast->class_cuts [0].n_cut, 1);
    assert_true (t.blast->n_top_edges == 2);
    assert_true ((t.blast->classes_direct >> bus_policy_class (t.policy, "exec")) & 1);
    s_close (&t);

    //  From c itself: nothing downstream, nothing listed.
    s_open (&t, s_chain, "c");
    assert_int_equal (t.blast->n_targets, 0);
    s_close (&t);
}

//  Two ways to d; a cross edge b -> c; b -> b self loop; a cycle c -> a.
static const char *s_diamond =
    "classes\n"
    "    exec\n"
    "        privileged = true\n"
    "agents\n"
    "    a\n        key = @K\n"
    "    b\n        key = @K\n"
    "    c\n        key = @K\n"
    "    d\n        key = @K\n        class = exec\n"
    "edges\n"
    "    a\n        b = message\n        c = message\n"
    "    b\n        b = message\n        c = message\n        d = exec\n"
    "    c\n        a = message\n        d = exec\n";

static void
test_diamond_cycle (void **state)
{
    (void) state;
    s_case_t t;
    s_open (&t, s_diamond, "a");
    s_expect (&t, "exec", "d", MED_BLAST_DIRECT, 2);
    const med_blast_target_t *target = s_find (&t, "exec", "d");
    //  The shortest and one alternative through the other last hop.
    assert_int_equal (target->n_paths, 2);
    assert_int_equal (target->paths [1].verdict, MED_BLAST_DIRECT);
    assert_int_not_equal (target->paths [0].hops [1].from, target->paths [1].hops [1].from);
    //  Two edge-disjoint ways: the minimum cut is two edges (a -> b and
    //  a -> c, or b -> d and c -> d).
    assert_int_equal (target->n_cut, 2);
    assert_int_equal (t.blast->class_cuts [0].n_cut, 2);
    s_close (&t);

    //  From b (self loop, cycle back through c -> a): still found, no loop.
    s_open (&t, s_diamond, "b");
    s_expect (&t, "exec", "d", MED_BLAST_DIRECT, 1);
    assert_int_equal (t.blast->dist_direct [s_agent (t.policy, "a")], 2);
    s_close (&t);
}

//  An untrusted reader; a sticky and a causal relay; a class that is
//  denied to restricted content and one that holds it; a recipient that
//  refuses restricted content.
static const char *s_taint =
    "classes\n"
    "    exec\n"
    "        privileged = true\n"
    "    admin\n"
    "        privileged = true\n"
    "        restricted = hold\n"
    "        approvers = alice\n"
    "agents\n"
    "    reader\n        key = @K\n        trust = untrusted\n"
    "    sticky\n        key = @K\n"
    "    causal\n        key = @K\n        taint = causal\n"
    "    x1\n        key = @K\n        class = exec\n"
    "    x2\n        key = @K\n        class = exec\n"
    "    adm\n        key = @K\n        class = admin\n"
    "    vault\n        key = @K\n        class = admin\n        accepts_restricted = false\n"
    "    alice\n        key = @K\n        role = approver\n"
    "edges\n"
    "    reader\n        sticky = message\n        causal = message\n        adm = admin\n"
    "        vault = admin\n"
    "    sticky\n        x1 = exec\n"
    "    causal\n        x2 = exec\n";

static void
test_taint (void **state)
{
    (void) state;
    s_case_t t;
    s_open (&t, s_taint, "reader");
    //  Restricted is sticky: denied at the executor.
    s_expect (&t, "exec", "x1", MED_BLAST_BLOCKED, 2);
    const med_blast_target_t *target = s_find (&t, "exec", "x1");
    assert_string_equal (target->paths [0].hops [1].hop.stage, "taint");
    CHECK_CODE (target->paths [0].hops [1].hop.err, BUS_ERESTRICTED);
    //  A causal relay launders it: the analysis says where.
    s_expect (&t, "exec", "x2", MED_BLAST_DROPPED, 2);
    target = s_find (&t, "exec", "x2");
    assert_true (target->paths [0].hops [1].hop.dropped);
    assert_true (target->paths [0].hops [1].tainted);
    //  restricted = hold: a person sees it.
    s_expect (&t, "admin", "adm", MED_BLAST_APPROVAL, 1);
    target = s_find (&t, "admin", "adm");
    assert_true (target->paths [0].hops [0].hop.hold_required);
    //  accepts_restricted = false wins over restricted = hold.
    s_expect (&t, "admin", "vault", MED_BLAST_BLOCKED, 1);
    target = s_find (&t, "admin", "vault");
    CHECK_CODE (target->paths [0].hops [0].hop.err, BUS_EREFUSED);
    //  alice can be flooded with Pending notices, not steered.
    assert_int_equal (t.blast->n_holds >= 1, 1);
    bool flood = false;
    for (size_t i = 0; i < t.blast->n_holds; i++) {
        if (t.blast->holds [i].cls == bus_policy_class (t.policy, "admin")) {
            flood = t.blast->holds [i].floodable;
            assert_int_equal (t.blast->holds [i].owned, 0);
        }
    }
    assert_true (flood);
    s_close (&t);

    //  A trusted agent's stolen key is not restricted: sticky is clean.
    s_open (&t, s_taint, "sticky");
    s_expect (&t, "exec", "x1", MED_BLAST_DIRECT, 1);
    s_close (&t);
}

//  finance (built in: privileged, held), approvers alice and bob; alice
//  and planner on one provider.
static const char *s_hold =
    "classes\n"
    "    finance\n"
    "        approvers = alice, bob\n"
    "        quorum = 1\n"
    "        actions = transfer.*\n"
    "agents\n"
    "    planner\n        key = @K\n        provider = llm-a\n"
    "    helper\n        key = @K\n        provider = llm-b\n"
    "    payments\n        key = @K\n        class = finance\n"
    "    alice\n        key = @K\n        role = approver\n        provider = llm-a\n"
    "    bob\n        key = @K\n        role = approver\n"
    "edges\n"
    "    planner\n"
    "        payments = finance\n"
    "            actions = transfer.create\n"
    "            resources = invoice:*\n"
    "        alice = message\n"
    "    helper\n"
    "        payments = finance\n"
    "            actions = refund.create\n"
    "            tools = ledger.*\n"
    "        planner = message\n";

static void
test_hold_grant_provider (void **state)
{
    (void) state;
    s_case_t t;
    s_open (&t, s_hold, "helper");
    s_expect (&t, "finance", "payments", MED_BLAST_APPROVAL, 1);
    const med_blast_target_t *target = s_find (&t, "finance", "payments");
    //  The alternative through planner needs approval as well.
    assert_int_equal (target->n_paths, 2);
    assert_false (target->paths [0].hops [0].quorum_inside);
    //  alice is steered (helper -> planner -> alice), bob is not.
    for (size_t i = 0; i < t.blast->n_approvers; i++) {
        const med_blast_approver_t *approver = &t.blast->approvers [i];
        bool is_alice = approver->agent == s_agent (t.policy, "alice");
        assert_int_equal (approver->dist_direct, is_alice? 2: UINT32_MAX);
    }
    s_close (&t);

    //  A standing grant by bob for planner -> payments transfer.create.
    bus_grant_t grant;
    memset (&grant, 0, sizeof grant);
    strcpy (grant.id, "g-1");
    strcpy (grant.approver, "bob");
    strcpy (grant.sender, "planner");
    strcpy (grant.recipient, "payments");
    strcpy (grant.intent_class, "finance");
    strcpy (grant.action, "transfer.create");
    grant.expires_us = (uint64_t) (time (NULL) + 3600) * 1000000;
    s_open_with (&t, s_hold, "planner", &grant, 1);
    s_expect (&t, "finance", "payments", MED_BLAST_GRANTED, 1);
    target = s_find (&t, "finance", "payments");
    assert_non_null (target->paths [0].hops [0].hop.grant);
    assert_string_equal (target->paths [0].hops [0].hop.action, "transfer.create");
    s_close (&t);

    //  An expired grant stands in for nothing.
    grant.expires_us = 1;
    s_open_with (&t, s_hold, "planner", &grant, 1);
    s_expect (&t, "finance", "payments", MED_BLAST_APPROVAL, 1);
    s_close (&t);

    //  Provider llm-a: planner and alice at once. alice approves what
    //  planner sends: the quorum is inside S.
    s_open (&t, s_hold, "planner alice");
    target = s_find (&t, "finance", "payments");
    assert_int_equal (target->best, MED_BLAST_APPROVAL);
    assert_true (target->paths [0].hops [0].quorum_inside);
    for (size_t i = 0; i < t.blast->n_holds; i++) {
        if (t.blast->holds [i].cls == bus_policy_class (t.policy, "finance")) {
            assert_int_equal (t.blast->holds [i].owned, 1);
            assert_int_equal (t.blast->holds [i].eligible, 2);
        }
    }
    s_close (&t);
}

//  The scope decides: an edge that carries deploy but whose only action
//  is a finance action cannot deliver deploy (classify decides finance,
//  the edge does not carry it; with no action the scope refuses).
static const char *s_scope =
    "classes\n"
    "    finance\n"
    "        actions = transfer.*\n"
    "agents\n"
    "    a\n        key = @K\n"
    "    ops\n        key = @K\n"
    "edges\n"
    "    a\n"
    "        ops = deploy\n"
    "            actions = transfer.create\n";

static void
test_scope (void **state)
{
    (void) state;
    s_case_t t;
    s_open (&t, s_scope, "a");
    s_expect (&t, "deploy", "ops", MED_BLAST_BLOCKED, 1);
    s_close (&t);
}

//  Score: share of agents with an unapproved path to each class.
static void
test_score (void **state)
{
    (void) state;
    bus_policy_t *policy = s_policy (s_diamond);
    med_graph_t *graph;
    bus_error_t err;
    CHECK_PASS (med_graph_new (&graph, policy, NULL, 0, 0, &err), err);
    uint32_t direct [BUS_CLASS_MAX], approval [BUS_CLASS_MAX];
    uint64_t masks [8];
    CHECK_PASS (med_blast_score (graph, direct, approval, masks, &err), err);
    int exec = bus_policy_class (policy, "exec");
    //  a, b, c reach d's exec; d does not.
    assert_int_equal (direct [exec], 3);
    assert_int_equal (approval [exec], 3);
    assert_false ((masks [s_agent (policy, "d") * 2] >> exec) & 1);
    assert_string_equal (med_blast_band (3, 4), "critical");
    assert_string_equal (med_blast_band (0, 4), "none");
    med_graph_destroy (&graph);
    bus_policy_destroy (&policy);

    policy = s_policy (s_hold);
    CHECK_PASS (med_graph_new (&graph, policy, NULL, 0, 0, &err), err);
    CHECK_PASS (med_blast_score (graph, direct, approval, NULL, &err), err);
    int finance = bus_policy_class (policy, "finance");
    assert_int_equal (direct [finance], 0);
    assert_int_equal (approval [finance], 2);
    med_graph_destroy (&graph);
    bus_policy_destroy (&policy);
}


//  --- Property test --------------------------------------------------------

static uint64_t s_rng;

static uint32_t
s_rand (uint32_t n)
{
    //  xorshift64*: the seed alone replays a run.
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return (uint32_t) ((s_rng * UINT64_C (2685821657736338717)) >> 33) % n;
}

//  A random small policy: up to 6 agents a0.. and the approver alice;
//  classes exec (privileged, not held), admin (privileged, held,
//  restricted = hold), the built-ins; random trust, taint mode,
//  accepts_restricted, declared class; random edges (self loops too) with
//  random classes and now and then a scope, `outside = hold` among them,
//  or a scope block for one of the edge's classes.
static char *
s_random_policy (uint32_t *n_agents)
{
    static const char *classes [] = { "message", "exec", "finance", "admin", "query", "deploy" };
    static const char *declared [] = { NULL, NULL, "exec", "finance", "admin", "message" };
    size_t cap = 16384, used = 0;
    char *text = malloc (cap);
    assert_non_null (text);
#define S_OUT(...) used += (size_t) snprintf (text + used, cap - used, __VA_ARGS__)
    S_OUT ("classes\n    exec\n        privileged = true\n"
           "    admin\n        privileged = true\n        restricted = hold\n"
           "        approvers = alice, a1\n"
           "    finance\n        approvers = alice\n        actions = transfer.*\n");
    if (s_rand (2)) {
        S_OUT ("        restricted = hold\n");
    }
    uint32_t n = 2 + s_rand (5);
    *n_agents = n + 1;
    S_OUT ("agents\n    alice\n        key = @K\n        role = approver\n");
    for (uint32_t a = 0; a < n; a++) {
        S_OUT ("    a%u\n        key = @K\n", a);
        if (a != 1 && s_rand (4) == 0) {
            S_OUT ("        trust = untrusted\n");
        }
        if (s_rand (3) == 0) {
            S_OUT ("        taint = causal\n");
        }
        if (s_rand (6) == 0) {
            S_OUT ("        accepts_restricted = false\n");
        }
        const char *cls = declared [s_rand (6)];
        if (cls) {
            S_OUT ("        class = %s\n", cls);
        }
        if (a == 1) {
            S_OUT ("        role = approver, agent\n");
        }
    }
    S_OUT ("edges\n");
    for (uint32_t a = 0; a < n; a++) {
        bool header = false;
        for (uint32_t b = 0; b <= n; b++) {
            if (s_rand (10) >= 4) {
                continue;
            }
            if (!header) {
                S_OUT ("    a%u\n", a);
                header = true;
            }
            uint32_t mask = 1 + s_rand (63);
            char name [16];
            snprintf (name, sizeof name, b == n? "alice": "a%u", b);
            S_OUT ("        %s =", name);
            bool first = true;
            for (int c = 0; c < 6; c++) {
                if (mask & (1u << c)) {
                    S_OUT ("%s %s", first? "": ",", classes [c]);
                    first = false;
                }
            }
            S_OUT ("\n");
            uint32_t scope = s_rand (7);
            if (scope == 1) {
                S_OUT ("            actions = transfer.create, none\n");
            }
            else
            if (scope == 2) {
                S_OUT ("            actions = transfer.create\n            outside = hold\n");
            }
            else
            if (scope == 3) {
                S_OUT ("            resources = invoice:*\n");
            }
            else
            if (scope == 4) {
                //  A block for one class the edge carries (scopes per class).
                int c = 0;
                while (!(mask & (1u << c))) {
                    c++;
                }
                S_OUT ("            %s\n                actions = transfer.create\n", classes [c]);
                if (s_rand (2)) {
                    S_OUT ("                outside = hold\n");
                }
            }
        }
    }
#undef S_OUT
    return text;
}

//  Levels of a verdict: without a person, with one, not at all.
static int
s_level (med_blast_verdict_t verdict)
{
    return verdict <= MED_BLAST_GRANTED? 0: verdict == MED_BLAST_APPROVAL? 1: 2;
}

typedef struct {
    med_blast_t *blast;
    const bus_policy_t *policy;
    uint32_t path [16];
    //  Brute force answers: per (class, recipient) best level and its
    //  shortest length; per agent the shortest direct reach.
    int best [BUS_CLASS_MAX][8];
    uint32_t length [BUS_CLASS_MAX][8];
    uint32_t reach [8];
    const uint8_t *removed;             //  per edge: not walked (a cut's), or NULL
} s_brute_t;

static void
s_brute_walk (s_brute_t *self, size_t n)
{
    const bus_policy_t *policy = self->policy;
    uint32_t u = self->path [n - 1];
    for (uint32_t v = 0; v < policy->agent_count; v++) {
        const bus_edge_t *edge = bus_policy_edge (policy, &policy->agents [u], &policy->agents [v]);
        if (!edge || (self->removed && self->removed [edge - policy->edges])) {
            continue;
        }
        //  The path to the last sender is simple; the last hop may go back
        //  to an agent on it (a self loop, a cycle back), never into S.
        bool again = false;
        for (size_t i = 0; i < n && !again; i++) {
            again = self->path [i] == v;
        }
        if (self->blast->inside [v]) {
            continue;
        }
        self->path [n] = v;
        med_blast_path_t path;
        //  Reach: the inner hops' choice on the last hop too.
        assert_int_equal (med_blast_replay (self->blast, self->path, n + 1, -1, &path), 0);
        if (!again && path.verdict <= MED_BLAST_GRANTED && n < self->reach [v]) {
            self->reach [v] = (uint32_t) n;
        }
        med_blast_path_free (&path);
        for (size_t c = 0; c < policy->class_count; c++) {
            if (!policy->classes [c].privileged || !(edge->classes & (UINT64_C (1) << c))) {
                continue;
            }
            assert_int_equal (med_blast_replay (self->blast, self->path, n + 1, (int) c, &path), 0);
            int level = s_level (path.verdict);
            if (level < self->best [c][v]
            ||  (level == self->best [c][v] && n < self->length [c][v])) {
                self->best [c][v] = level;
                self->length [c][v] = (uint32_t) n;
            }
            med_blast_path_free (&path);
        }
        if (!again) {
            s_brute_walk (self, n + 1);
        }
    }
}

//  Every hop of a path the analysis prints, through the whole shipped
//  chain (limits and backlog included, fresh state per hop), as the bus
//  would run it: the same verdict, the same restricted mark.
static void
s_chain_accepts (const bus_policy_t *policy, const med_blast_t *blast,
                 const med_blast_path_t *path, uint64_t seed)
{
    for (size_t h = 0; h < path->n_hops; h++) {
        const med_blast_hop_t *hop = &path->hops [h];
        med_chain_t *chain;
        bus_error_t err;
        CHECK_PASS (med_chain_open (&chain, policy, &err), err);
        Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
        send.message_id = (char *) "prop";
        send.recipient = (char *) policy->agents [hop->to].name;
        send.intent = (char *) policy->classes [hop->cls].name;
        send.action = hop->hop.action [0]? (char *) hop->hop.action: NULL;
        send.tool = hop->hop.tool [0]? (char *) hop->hop.tool: NULL;
        send.resource = hop->hop.resource [0]? (char *) hop->hop.resource: NULL;
        bus_envelope_t env;
        memset (&env, 0, sizeof env);
        env.policy = policy;
        env.sender = &policy->agents [hop->from];
        env.sender_name = env.sender->name;
        env.recipient = &policy->agents [hop->to];
        env.send = &send;
        env.sender_tainted = hop->tainted;
        env.log_checked = true;
        env.log_left = 1e9;
        env.now_us = 1;
        env.class_index = -1;
        med_verdict_t verdict = med_chain_run (chain, &env, NULL, &err);
        //  A hop the analysis refuses: the chain refuses its message too, or
        //  decides it to be of another class (no message of this one passes).
        bool refused = hop->hop.verdict == MED_REJECT
                    && (verdict == MED_REJECT || env.class_index != hop->cls);
        if (!refused && (verdict != hop->hop.verdict || env.class_index != hop->cls
                         || env.restricted != hop->hop.restricted)) {
            print_error ("seed %llu: hop %s -> %s (%s): chain says %s (%s), analysis %s\n",
                         (unsigned long long) seed, env.sender->name, env.recipient->name,
                         policy->classes [hop->cls].name, check_verdict_name (verdict), err.text,
                         check_verdict_name (hop->hop.verdict));
            fail ();
        }
        //  The next hop's sender is tainted exactly when this one
        //  delivered restricted content (unless it is in S).
        if (h + 1 < path->n_hops && !blast->inside [hop->to]) {
            assert_int_equal (path->hops [h + 1].tainted, env.restricted);
        }
        med_chain_destroy (&chain);
    }
}

//  Whether the direct-level search's walk to agent v passes an agent twice.
static bool
s_walk_revisits (const med_blast_t *blast, uint32_t v)
{
    uint32_t st = blast->dist [0][v * 2] <= blast->dist [0][v * 2 + 1]? v * 2: v * 2 + 1;
    uint32_t seen [64];
    size_t n = 0;
    while (st != UINT32_MAX && n < 64) {
        for (size_t i = 0; i < n; i++) {
            if (seen [i] == st / 2) {
                return true;
            }
        }
        seen [n++] = st / 2;
        st = blast->parent [0][st];
    }
    return false;
}

//  A fleet large enough that med_graph_share judges its edges on two
//  threads (more than 65,536 edges), in many shapes: trusted or not,
//  sticky or causal, refusing restricted content, privileged and held
//  classes, scoped edges. Each half keeps answers of its own, merged after:
//  every edge must still get the answer one thread gives it.
static void
test_fleet_fill (void **state)
{
    (void) state;
    enum { AGENTS = 400, FANOUT = 200 };
    size_t size = (size_t) AGENTS * (FANOUT + 8) * 48 + 4096, len = 0;
    char *text = malloc (size);
    assert_non_null (text);
#define F_ADD(...) (len += (size_t) snprintf (text + len, size - len, __VA_ARGS__))
    F_ADD ("classes\n    exec\n        privileged = true\n"
           "    finance\n        approvers = ap\n        quorum = 1\n"
           "agents\n    ap\n        key = @K\n        role = approver\n");
    for (int a = 0; a < AGENTS; a++) {
        F_ADD ("    a%d\n        key = @K\n        provider = p%d\n", a, a % 4);
        F_ADD ("%s", a % 5 == 0? "        trust = untrusted\n": "");
        F_ADD ("%s", a % 7 == 0? "        taint = causal\n": "");
        F_ADD ("%s", a % 11 == 0? "        accepts_restricted = false\n": "");
        F_ADD ("%s", a % 3 == 0? "        class = exec\n": a % 3 == 1? "        class = finance\n": "");
    }
    static const char *classes [] = { "message", "message, exec", "finance", "query, exec" };
    F_ADD ("edges\n");
    for (int a = 0; a < AGENTS; a++) {
        F_ADD ("    a%d\n", a);
        for (int e = 0; e < FANOUT; e++) {
            F_ADD ("        a%d = %s\n", (a + 1 + e * 7) % AGENTS, classes [(a + e) % 4]);
            F_ADD ("%s", (a + e) % 4 == 2 && e % 3 == 0? "            actions = transfer.create\n": "");
        }
    }
#undef F_ADD
    assert_true (len < size);
    bus_policy_t *policy = s_policy (text);
    free (text);
    assert_true (policy->edge_count > 65536);
    med_graph_t *one, *two;
    bus_error_t err;
    CHECK_PASS (med_graph_new (&one, policy, NULL, 0, 0, &err), err);
    CHECK_PASS (med_graph_new (&two, policy, NULL, 0, 0, &err), err);
    med_graph_fill (one);
    assert_true (med_graph_share (two));
    size_t tainted_differs = 0, held = 0, taints = 0;
    for (size_t e = 0; e < policy->edge_count; e++) {
        for (int t = 0; t < 2; t++) {
            assert_true (med_graph_pass (one, e, t) == med_graph_pass (two, e, t));
            assert_true (med_graph_held (one, e, t) == med_graph_held (two, e, t));
            assert_true (med_graph_taints (one, e, t) == med_graph_taints (two, e, t));
            held += med_graph_held (one, e, t) != 0;
            taints += med_graph_taints (one, e, t);
        }
        tainted_differs += med_graph_pass (one, e, 0) != med_graph_pass (one, e, 1);
    }
    //  The shapes differ in what they deliver, so the answers were not all one.
    assert_true (tainted_differs > 0 && held > 0 && taints > 0);
    //  A graph some of whose edges were judged before it is shared (an
    //  analysis ran on it first): their indices are the graph's book's, so
    //  the fill must not merge them as the second thread's.
    med_graph_t *three;
    CHECK_PASS (med_graph_new (&three, policy, NULL, 0, 0, &err), err);
    for (size_t e = 0; e < policy->edge_count; e += 997) {
        med_graph_pass (three, e, false);
    }
    assert_true (med_graph_share (three));
    for (size_t e = 0; e < policy->edge_count; e++) {
        for (int t = 0; t < 2; t++) {
            assert_true (med_graph_pass (one, e, t) == med_graph_pass (three, e, t));
            assert_true (med_graph_held (one, e, t) == med_graph_held (three, e, t));
            assert_true (med_graph_taints (one, e, t) == med_graph_taints (three, e, t));
        }
    }
    med_graph_destroy (&three);
    med_graph_destroy (&one);
    med_graph_destroy (&two);
    bus_policy_destroy (&policy);
}

//  Brute force from every member of S; removed: edges not to walk, or NULL.
static void
s_brute_run (s_brute_t *brute, s_case_t *t, const uint8_t *removed)
{
    memset (brute, 0, sizeof *brute);
    brute->blast = t->blast;
    brute->policy = t->policy;
    brute->removed = removed;
    for (int c = 0; c < BUS_CLASS_MAX; c++) {
        for (int v = 0; v < 8; v++) {
            brute->best [c][v] = 3;
            brute->length [c][v] = UINT32_MAX;
        }
    }
    for (int v = 0; v < 8; v++) {
        brute->reach [v] = UINT32_MAX;
    }
    for (size_t i = 0; i < t->blast->n_set; i++) {
        brute->path [0] = t->blast->set [i];
        brute->reach [t->blast->set [i]] = 0;
        s_brute_walk (brute, 1);
    }
}

//  Brute force from S over the policy without the edges of a cut: true if
//  no recipient of it is then reached for cls without a person.
static bool
s_cut_cuts (s_case_t *t, const uint32_t *cut, size_t n_cut, int cls, const uint32_t *sinks,
            size_t n_sinks)
{
    uint8_t *removed = calloc (t->policy->edge_count + 1, 1);
    assert_non_null (removed);
    for (size_t i = 0; i < n_cut; i++) {
        removed [cut [i]] = 1;
    }
    s_brute_t brute;
    s_brute_run (&brute, t, removed);
    free (removed);
    for (size_t k = 0; k < n_sinks; k++) {
        if (brute.best [cls][sinks [k]] == 0) {
            return false;
        }
    }
    return true;
}

static void
test_property (void **state)
{
    (void) state;
    const char *env_seed = getenv ("BLAST_SEED");
    uint64_t seed = env_seed? strtoull (env_seed, NULL, 10): (uint64_t) time (NULL);
    printf ("test_property: BLAST_SEED=%llu\n", (unsigned long long) seed);
    const char *env_rounds = getenv ("BLAST_ROUNDS");
    int rounds = env_rounds? atoi (env_rounds): env_seed? 1: 300;
    for (int round = 0; round < rounds; round++) {
        uint64_t this_seed = seed + (uint64_t) round;
        s_rng = this_seed * 2654435761u + 1;
        uint32_t n_agents;
        char *text = s_random_policy (&n_agents);
        s_case_t t;
        char names [64];
        snprintf (names, sizeof names, "a%u%s", s_rand (n_agents - 1),
                  s_rand (4) == 0? " a0": "");
        s_open (&t, text, names);
        s_brute_t brute;
        s_brute_run (&brute, &t, NULL);
        //  The analysis's targets are exactly brute force's, same answers.
        size_t expected = 0;
        for (size_t c = 0; c < t.policy->class_count; c++) {
            for (uint32_t v = 0; v < t.policy->agent_count; v++) {
                expected += brute.best [c][v] < 3;
            }
        }
        bool bad = t.blast->n_targets != expected;
        for (size_t i = 0; i < t.blast->n_targets && !bad; i++) {
            const med_blast_target_t *target = &t.blast->targets [i];
            //  The analysis never misses what brute force finds; where its
            //  best path is a simple one it finds exactly the same.
            int level = s_level (target->best);
            int want = brute.best [target->cls][target->recipient];
            uint32_t want_length = brute.length [target->cls][target->recipient];
            bool simple = target->n_paths && !target->paths [0].revisits
                       && target->paths [0].n_hops == target->best_length;
            if (level > want || (simple && (level != want || target->best_length != want_length))
            ||  (level == want && target->best_length > want_length)) {
                print_error ("seed %llu: %s at %s: analysis %s in %u, brute force level %d in %u\n",
                             (unsigned long long) this_seed,
                             t.policy->classes [target->cls].name,
                             t.policy->agents [target->recipient].name,
                             med_blast_verdict_name (target->best), target->best_length,
                             brute.best [target->cls][target->recipient],
                             brute.length [target->cls][target->recipient]);
                for (size_t p = 0; p < target->n_paths; p++) {
                    print_error ("  path %zu (%s):", p, med_blast_verdict_name (target->paths [p].verdict));
                    for (size_t h = 0; h < target->paths [p].n_hops; h++) {
                        const med_blast_hop_t *hop = &target->paths [p].hops [h];
                        print_error (" %s-%s%s->%s", t.policy->agents [hop->from].name,
                                     t.policy->classes [hop->cls].name, hop->tainted? "(t)": "",
                                     t.policy->agents [hop->to].name);
                    }
                    print_error ("\n");
                }
                bad = true;
            }
            for (size_t p = 0; p < target->n_paths; p++) {
                s_chain_accepts (t.policy, t.blast, &target->paths [p], this_seed);
            }
        }
        for (uint32_t v = 0; v < t.policy->agent_count && !bad; v++) {
            //  Shorter than any simple path only by a walk that revisits.
            if (t.blast->dist_direct [v] != brute.reach [v]
            &&  (t.blast->dist_direct [v] > brute.reach [v] || !s_walk_revisits (t.blast, v))) {
                print_error ("seed %llu: reach of %s: analysis %u, brute force %u\n",
                             (unsigned long long) this_seed, t.policy->agents [v].name,
                             t.blast->dist_direct [v], brute.reach [v]);
                bad = true;
            }
        }
        //  Every cut cuts: without its edges, brute force finds no path
        //  without a person to the recipient, or to any of the class's.
        for (size_t i = 0; i < t.blast->n_targets && !bad; i++) {
            const med_blast_target_t *target = &t.blast->targets [i];
            if (target->n_cut && !s_cut_cuts (&t, target->cut, target->n_cut, target->cls,
                                               &target->recipient, 1)) {
                print_error ("seed %llu: the cut for %s at %s leaves a path\n",
                             (unsigned long long) this_seed, t.policy->classes [target->cls].name,
                             t.policy->agents [target->recipient].name);
                bad = true;
            }
        }
        for (size_t i = 0; i < t.blast->n_class_cuts && !bad; i++) {
            const med_blast_cut_t *cut = &t.blast->class_cuts [i];
            uint32_t sinks [8];
            size_t n_sinks = 0;
            for (size_t j = 0; j < t.blast->n_targets; j++) {
                const med_blast_target_t *target = &t.blast->targets [j];
                if (target->cls == cut->cls && target->best <= MED_BLAST_GRANTED && n_sinks < 8) {
                    sinks [n_sinks++] = target->recipient;
                }
            }
            if (cut->n_cut && !s_cut_cuts (&t, cut->cut, cut->n_cut, cut->cls, sinks, n_sinks)) {
                print_error ("seed %llu: the cut for all of %s leaves a path\n",
                             (unsigned long long) this_seed, t.policy->classes [cut->cls].name);
                bad = true;
            }
        }
        //  Counted targets (verdicts from the cached answers) say the same
        //  as listed ones (every stage rerun).
        med_blast_options_t counted;
        med_blast_options_default (&counted);
        counted.targets = 1;
        med_blast_t *light;
        bus_error_t err;
        CHECK_PASS (med_blast_open (&light, t.graph, t.blast->set, t.blast->n_set, &counted, &err),
                    err);
        assert_int_equal (light->n_targets, t.blast->n_targets);
        for (size_t i = 0; i < light->n_targets && !bad; i++) {
            const med_blast_target_t *a = &light->targets [i];
            for (size_t j = 0; j < t.blast->n_targets; j++) {
                const med_blast_target_t *b = &t.blast->targets [j];
                if (a->cls == b->cls && a->recipient == b->recipient
                &&  (a->best != b->best || a->best_length != b->best_length)) {
                    print_error ("seed %llu: counted target %s says %s, listed %s\n",
                                 (unsigned long long) this_seed,
                                 t.policy->agents [a->recipient].name,
                                 med_blast_verdict_name (a->best), med_blast_verdict_name (b->best));
                    bad = true;
                }
            }
        }
        med_blast_destroy (&light);
        if (bad) {
            print_error ("seed %llu: S = %s, %zu targets, brute force %zu; policy:\n%s\n",
                         (unsigned long long) this_seed, names, t.blast->n_targets, expected, text);
            fail ();
        }
        s_close (&t);
        free (text);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_chain),
        cmocka_unit_test (test_diamond_cycle),
        cmocka_unit_test (test_taint),
        cmocka_unit_test (test_hold_grant_provider),
        cmocka_unit_test (test_scope),
        cmocka_unit_test (test_score),
        cmocka_unit_test (test_fleet_fill),
        cmocka_unit_test (test_property),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
