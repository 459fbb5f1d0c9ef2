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
#include "stage.h"


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

typedef stage_fixture_t fixture_t;

static int
s_setup (void **state)
{
    return stage_setup (state, s_policy_text, "identity");
}

//  The envelope as the core fills it for an authenticated sender.
static bus_envelope_t *
s_envelope (fixture_t *f, const char *from, const char *to, const char *claimed)
{
    bus_envelope_t *env = stage_envelope (f, from, to, "message");
    f->send.sender = (char *) claimed;
    return env;
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
    CHECK_VERDICT (stage_decide (f), MED_PASS);
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
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    s_envelope (f, "writer", "planner", NULL);
    CHECK_VERDICT (stage_decide (f), MED_PASS);
}

static void
test_spoof (void **state)
{
    fixture_t *f = *state;
    //  Another agent of the policy.
    s_envelope (f, "planner", "writer", "writer");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ESPOOF);
    CHECK_CONTAINS (f->err.text, "claims sender 'writer'");
    CHECK_CONTAINS (f->err.text, "'planner''s");
    //  A name no agent has.
    s_envelope (f, "writer", "planner", "root");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ESPOOF);
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
        CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ESPOOF);
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
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EUNKNOWN);
    CHECK_CONTAINS (f->err.text, "ghost");
    CHECK_CONTAINS (f->err.text, "no longer in the policy");

    //  Also with a claim, which could only be checked against an agent.
    s_envelope (f, "ghost", "writer", "ghost");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EUNKNOWN);

    //  And with no name at all.
    s_envelope (f, "ghost", "writer", NULL);
    f->env.sender_name = NULL;
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EUNKNOWN);
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
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_matching_claim_passes, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_no_claim_passes, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_spoof, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_spoof_near_misses, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_sender_left_policy, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
