/*  test_identity.c: the identity stage (mediators/med_identity.c).

    Identity comes from the key, never from the message: the core puts the
    agent its CURVE key authenticated in env->sender, and a Send that claims
    any other sender is a spoof (ESPOOF). A held message decided again after
    its sender left the policy has no sender (NULL) and goes nowhere
    (EUNKNOWN). No claim at all, or the true name, passes.

    The stage is run alone on envelopes built by hand, and in the shipped
    chain, where it must come first: before reach, which reads the sender.
*/
#include "check.h"

#include <stdlib.h>

#include "bus_policy.h"
#include "med_chain.h"

#define KEY_A   "KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^"
#define KEY_B   "8+9rBMLy0r%7k}rmciW{.JwUzMOyfNKOz8G{{q+C"

static const char *s_policy_text =
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_A "\"\n"
    "    writer\n"
    "        key = \"" KEY_B "\"\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n";

typedef struct {
    bus_policy_t *policy;
    const med_stage_t *stage;
    void *state;
    Bulkhead__V1__Send send;
    bus_envelope_t env;
    bus_error_t err;
} fixture_t;

static const med_stage_t *
s_find (const char *name)
{
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        if (strcmp ((*stage)->name, name) == 0) {
            return *stage;
        }
    }
    return NULL;
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    if (!f) {
        return -1;
    }
    bus_error_t err;
    if (bus_policy_parse (&f->policy, s_policy_text, strlen (s_policy_text), "t.cfg", &err)) {
        fprintf (stderr, "policy: %s: %s\n", bus_errname (err.code), err.text);
        free (f);
        return -1;
    }
    f->stage = s_find ("identity");
    f->state = f->stage? calloc (1, f->stage->state_size? f->stage->state_size: 1): NULL;
    if (!f->state || (f->stage->init && f->stage->init (f->state, f->policy, &err))) {
        free (f->state);
        bus_policy_destroy (&f->policy);
        free (f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    if (f->stage->fini) {
        f->stage->fini (f->state);
    }
    free (f->state);
    bus_policy_destroy (&f->policy);
    free (f);
    return 0;
}

//  The envelope as the core fills it for an authenticated sender.
static bus_envelope_t *
s_envelope (fixture_t *f, const char *from, const char *to, const char *claimed)
{
    Bulkhead__V1__Send *send = &f->send;
    bulkhead__v1__send__init (send);
    send->message_id = "m1";
    send->recipient = (char *) to;
    send->intent = "message";
    send->sender = (char *) claimed;
    bus_envelope_t *env = &f->env;
    memset (env, 0, sizeof *env);
    env->policy = f->policy;
    env->sender = bus_policy_agent (f->policy, from);
    env->sender_name = from;
    env->recipient = bus_policy_agent (f->policy, to);
    env->send = send;
    env->now_us = 1700000000000000ULL;
    env->class_index = bus_policy_class (f->policy, "message");
    memset (&f->err, 0, sizeof f->err);
    return env;
}

static med_verdict_t
s_decide (fixture_t *f)
{
    return f->stage->decide (f->state, &f->env, &f->err);
}

static void
test_stage_shape (void **state)
{
    fixture_t *f = *state;
    assert_string_equal (f->stage->name, "identity");
    assert_non_null (f->stage->decide);
    assert_null (f->stage->observe);
    //  First in the shipped chain: every later stage trusts env->sender.
    assert_ptr_equal (med_chain_stages () [0], f->stage);
}

static void
test_matching_claim_passes (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "planner", "writer", "planner");
    CHECK_VERDICT (s_decide (f), MED_PASS);
    //  The stage decides nothing else.
    assert_false (f->env.restricted);
    assert_false (f->env.hold_required);
    assert_null (f->env.grant);
    assert_int_equal (f->env.n_approvers, 0);
}

static void
test_no_claim_passes (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "planner", "writer", NULL);
    CHECK_VERDICT (s_decide (f), MED_PASS);
    s_envelope (f, "writer", "planner", NULL);
    CHECK_VERDICT (s_decide (f), MED_PASS);
}

static void
test_spoof (void **state)
{
    fixture_t *f = *state;
    //  Another agent of the policy.
    s_envelope (f, "planner", "writer", "writer");
    CHECK_DECIDE (s_decide (f), f->err, MED_REJECT, BUS_ESPOOF);
    CHECK_CONTAINS (f->err.text, "claims sender 'writer'");
    CHECK_CONTAINS (f->err.text, "'planner''s");
    //  A name no agent has.
    s_envelope (f, "writer", "planner", "root");
    CHECK_DECIDE (s_decide (f), f->err, MED_REJECT, BUS_ESPOOF);
    CHECK_CONTAINS (f->err.text, "'root'");
}

//  Near misses are spoofs too: the comparison is exact, byte for byte.
static void
test_spoof_near_misses (void **state)
{
    fixture_t *f = *state;
    static char long_claim [400];
    memset (long_claim, 'p', sizeof long_claim - 1);
    const char *claims [] = {
        "", "Planner", "planner ", " planner", "planner\n", "plann", "planner2",
        "planner%s%n", long_claim
    };
    for (size_t i = 0; i < sizeof claims / sizeof claims [0]; i++) {
        s_envelope (f, "planner", "writer", claims [i]);
        CHECK_DECIDE (s_decide (f), f->err, MED_REJECT, BUS_ESPOOF);
        //  The claim is quoted bounded: the sentence always fits.
        assert_true (strlen (f->err.text) < sizeof f->err.text - 1);
    }
}

static void
test_sender_left_policy (void **state)
{
    fixture_t *f = *state;
    //  A resume whose sender is no longer in the live policy: the core
    //  passes the name it was held under, and no agent.
    s_envelope (f, "ghost", "writer", NULL);
    assert_null (f->env.sender);
    CHECK_DECIDE (s_decide (f), f->err, MED_REJECT, BUS_EUNKNOWN);
    CHECK_CONTAINS (f->err.text, "ghost");
    CHECK_CONTAINS (f->err.text, "no longer in the policy");

    //  Also with a claim, which could only be checked against an agent.
    s_envelope (f, "ghost", "writer", "ghost");
    CHECK_DECIDE (s_decide (f), f->err, MED_REJECT, BUS_EUNKNOWN);

    //  And with no name at all.
    s_envelope (f, "ghost", "writer", NULL);
    f->env.sender_name = NULL;
    CHECK_DECIDE (s_decide (f), f->err, MED_REJECT, BUS_EUNKNOWN);
    CHECK_CONTAINS (f->err.text, "(unknown)");
}

//  The shipped chain: identity decides before reach looks at the sender.
static void
test_in_chain (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    const char *stage = NULL;

    bus_envelope_t *env = s_envelope (f, "planner", "writer", "planner");
    CHECK_VERDICT (med_chain_run (chain, env, &stage, &f->err), MED_PASS);
    assert_null (stage);

    //  A spoof to a recipient that does not exist: identity speaks first.
    env = s_envelope (f, "planner", "nobody", "writer");
    CHECK_DECIDE (med_chain_run (chain, env, &stage, &f->err), f->err, MED_REJECT, BUS_ESPOOF);
    assert_string_equal (stage, "identity");

    //  No sender: rejected before any stage reads env->sender.
    env = s_envelope (f, "ghost", "writer", NULL);
    CHECK_DECIDE (med_chain_run (chain, env, &stage, &f->err), f->err, MED_REJECT, BUS_EUNKNOWN);
    assert_string_equal (stage, "identity");

    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_matching_claim_passes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_claim_passes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_spoof, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_spoof_near_misses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sender_left_policy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
