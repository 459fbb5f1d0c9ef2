/*  test_backlog.c: the backlog stage (mediators/med_backlog.c).

    A recipient holds at most max_backlog unacknowledged messages (per agent,
    default bus.max_backlog). recipient_pending >= the cap is EBACKLOG; below
    it passes. It runs before the hold stage, so no approver is asked about
    a message that could not be delivered, and again on a resume, so a
    release meets the cap as a message sent now would.
*/
#include "check.h"
#include "stage.h"


#include "bus_policy.h"
#include "med_chain.h"

#define KEY_PLANNER     "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_WRITER      "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_TINY        "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_PAYMENTS    "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"
#define KEY_HUGE        "M7Ug^.oyJ<)F3+[86*<@mnNi2AErL8OV5)e:</kk"

static const char *s_policy_text =
    "bus\n"
    "    max_backlog = 3\n"
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_PLANNER "\"\n"
    "    writer\n"
    "        key = \"" KEY_WRITER "\"\n"
    "    tiny\n"
    "        key = \"" KEY_TINY "\"\n"
    "        max_backlog = 1\n"
    "    payments\n"
    "        key = \"" KEY_PAYMENTS "\"\n"
    "        class = finance\n"
    "    huge\n"
    "        key = \"" KEY_HUGE "\"\n"
    "        max_backlog = 4294967295\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n"
    "        tiny = message\n"
    "        payments = finance\n"
    "        huge = message\n";

typedef stage_fixture_t fixture_t;

static int
s_setup (void **state)
{
    return stage_setup (state, s_policy_text, "backlog");
}

static bus_envelope_t *
s_envelope (fixture_t *f, const char *to, const char *intent, uint32_t pending)
{
    bus_envelope_t *env = stage_envelope (f, "planner", to, intent);
    assert_non_null (env->recipient);
    env->recipient_pending = pending;
    return env;
}

static med_verdict_t
s_decide (fixture_t *f, const char *to, uint32_t pending)
{
    s_envelope (f, to, "message", pending);
    return stage_decide (f);
}

static void
test_stage_shape (void **state)
{
    fixture_t *f = *state;
    assert_string_equal (f->stage->name, "backlog");
    assert_non_null (f->stage->decide);
    assert_null (f->stage->observe);
    //  Before hold: nobody is asked about a message that cannot be delivered.
    size_t backlog = SIZE_MAX, hold = SIZE_MAX;
    const med_stage_t *const *stages = med_chain_stages ();
    for (size_t i = 0; stages [i]; i++) {
        if (stages [i] == f->stage) {
            backlog = i;
        }
        if (strcmp (stages [i]->name, "hold") == 0) {
            hold = i;
        }
    }
    assert_true (backlog < hold);
    assert_true (hold != SIZE_MAX);
}

static void
test_default_cap (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (bus_policy_agent (f->policy, "writer")->max_backlog, 3);
    for (uint32_t pending = 0; pending < 3; pending++) {
        CHECK_VERDICT (s_decide (f, "writer", pending), MED_PASS);
    }
    CHECK_DECIDE (s_decide (f, "writer", 3), f->err, MED_REJECT, BUS_EBACKLOG);
    assert_string_equal (f->err.text, "writer has 3 unacknowledged messages (limit 3)");
    CHECK_DECIDE (s_decide (f, "writer", 4), f->err, MED_REJECT, BUS_EBACKLOG);
}

static void
test_per_agent_cap (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_decide (f, "tiny", 0), MED_PASS);
    CHECK_DECIDE (s_decide (f, "tiny", 1), f->err, MED_REJECT, BUS_EBACKLOG);
    CHECK_CONTAINS (f->err.text, "(limit 1)");
    //  The largest cap: only a full count reaches it.
    CHECK_VERDICT (s_decide (f, "huge", UINT32_MAX - 1), MED_PASS);
    CHECK_DECIDE (s_decide (f, "huge", UINT32_MAX), f->err, MED_REJECT, BUS_EBACKLOG);
}

//  The core counts a recipient it has no session for as full (UINT32_MAX).
static void
test_unknown_count_is_full (void **state)
{
    fixture_t *f = *state;
    CHECK_DECIDE (s_decide (f, "writer", UINT32_MAX), f->err, MED_REJECT, BUS_EBACKLOG);
    CHECK_CONTAINS (f->err.text, "4294967295");
}

//  A resume meets the cap as a message sent now would.
static void
test_resume_meets_cap (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "writer", "message", 3);
    f->env.resume = &f->hold;
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EBACKLOG);
    s_envelope (f, "writer", "message", 2);
    f->env.resume = &f->hold;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
}

//  In the shipped chain: a full mailbox is refused before the hold stage
//  would hold a finance message for it.
static void
test_in_chain_before_hold (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    const char *stage = NULL;
    s_envelope (f, "payments", "finance", 3);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_EBACKLOG);
    assert_string_equal (stage, "backlog");
    s_envelope (f, "payments", "finance", 2);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_HOLD, BUS_OK);
    assert_string_equal (stage, "hold");
    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_default_cap, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_per_agent_cap, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_count_is_full, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_resume_meets_cap, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain_before_hold, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
