/*  test_quarantine.c: the quarantine stage, alone and in the shipped chain.

    A quarantined sender's message is held (EQUARANTINE) with who and why in
    the sentence; decided again it stays held, whatever the votes; within the
    hold caps a first pass is refused EHOLDFULL; a sender not quarantined
    passes; and in the chain, what the sender may not send is still denied
    by the stage that denies it (the quarantine comes after).
*/
#include "check.h"
#include "stage.h"
#include "bus_policy.h"
#include "med_chain.h"

#include <stdlib.h>

#define KEY_PLANNER     "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_WRITER      "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"

static const char *s_policy_text =
    "bus\n"
    "    hold_cap_sender = 2\n"
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_PLANNER "\"\n"
    "    writer\n"
    "        key = \"" KEY_WRITER "\"\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n";

typedef stage_fixture_t fixture_t;

//  planner -> writer, a message, with room left in its log budget.
static int
s_setup (void **state)
{
    if (stage_setup (state, s_policy_text, "quarantine") != 0) {
        return -1;
    }
    fixture_t *f = *state;
    stage_envelope (f, "planner", "writer", "message");
    f->env.log_checked = true;
    f->env.log_left = 1e12;
    return 0;
}

static void
test_not_quarantined_passes (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
}

static void
test_quarantined_is_held (void **state)
{
    fixture_t *f = *state;
    f->env.quarantine = "by ops: odd tool use";
    med_verdict_t v = stage_decide (f);
    CHECK_DECIDE (v, f->err, MED_HOLD, BUS_EQUARANTINE);
    CHECK_CONTAINS (f->err.text, "planner is quarantined (by ops: odd tool use)");
    CHECK_CONTAINS (f->err.text, "bulkhead release planner");
}

static void
test_caps (void **state)
{
    fixture_t *f = *state;
    f->env.quarantine = "by bus: alert a-1";
    f->env.holds_sender = 2;
    f->env.holds_total = 2;
    med_verdict_t v = stage_decide (f);
    CHECK_DECIDE (v, f->err, MED_REJECT, BUS_EHOLDFULL);
    //  Decided again (an approval, a reload): still held, caps or not, and
    //  whatever votes it has.
    bus_hold_t hold = { .n_votes = 3 };
    f->env.resume = &hold;
    v = stage_decide (f);
    CHECK_DECIDE (v, f->err, MED_HOLD, BUS_EQUARANTINE);
}

static void
test_in_chain_denials_come_first (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    f->env.quarantine = "by ops: testing";
    const char *stage = NULL;
    med_verdict_t v = med_chain_run (chain, &f->env, &stage, &f->err);
    CHECK_DECIDE (v, f->err, MED_HOLD, BUS_EQUARANTINE);
    assert_string_equal (stage, "quarantine");
    //  writer -> planner is no edge: denied by reach, not held.
    f->env.sender = bus_policy_agent (f->policy, "writer");
    f->env.sender_name = "writer";
    f->env.recipient = bus_policy_agent (f->policy, "planner");
    f->send.recipient = "planner";
    f->env.class_index = bus_policy_class (f->policy, "message");
    v = med_chain_run (chain, &f->env, &stage, &f->err);
    CHECK_DECIDE (v, f->err, MED_REJECT, BUS_EDENIED);
    assert_string_equal (stage, "reach");
    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_not_quarantined_passes, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_quarantined_is_held, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_caps, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain_denials_come_first, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
