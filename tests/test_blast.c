/*  test_blast.c: the policy graph and the blast-radius analysis
    (mediators/med_graph.c, mediators/med_blast.c).

    Hand-built policies with known answers: chains, diamonds, cycles, self
    loops, untrusted sources, causal-mode laundering, accepts_restricted,
    scopes, grants, a provider compromise that includes an approver; the
    score and the minimum cut. Then a property test: random policies (the
    seed is printed; BLAST_SEED=N replays one) where the analysis must agree
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
    //  One edge cuts it; the edges on the path are the most used.
    assert_int_equal (target->n_cut, 1);
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
    //  Two edge-disjoint ways: the minimum cut is two edges.
    assert_int_equal (target->n_cut, 2);
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
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
