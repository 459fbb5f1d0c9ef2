/*  test_causes.c: a Send may name as causes only what its sender saw
    (mediators/med_causes.c). The core fills env->foreign_cause from the
    cause index; the stage only decides.
*/
#include "check.h"
#include "bus_policy.h"
#include "med_chain.h"

#include <stdlib.h>

static const char *s_policy =
    "agents\n"
    "    planner\n        key = \"KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n"
    "    writer\n        key = \"8+9rBMLy0r%7k}rmciW{.JwUzMOyfNKOz8G{{q+C\"\n"
    "edges\n"
    "    planner\n        writer = message\n";

static const med_stage_t *
s_stage (void)
{
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        if (strcmp ((*stage)->name, "causes") == 0) {
            return *stage;
        }
    }
    return NULL;
}

static void
test_foreign_cause_denied (void **state)
{
    (void) state;
    bus_policy_t *policy;
    bus_error_t err;
    CHECK_PASS (bus_policy_parse (&policy, s_policy, strlen (s_policy), "t.cfg", &err), err);
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = "m";
    send.recipient = "writer";
    send.intent = "message";
    bus_envelope_t env;
    memset (&env, 0, sizeof env);
    env.policy = policy;
    env.sender = bus_policy_agent (policy, "planner");
    env.sender_name = "planner";
    env.recipient = bus_policy_agent (policy, "writer");
    env.send = &send;
    env.class_index = -1;
    const med_stage_t *stage = s_stage ();
    assert_non_null (stage);
    CHECK_VERDICT (stage->decide (NULL, &env, &err), MED_PASS);
    env.foreign_cause = 42;
    CHECK_DECIDE (stage->decide (NULL, &env, &err), err, MED_REJECT, BUS_ECAUSE);
    CHECK_CONTAINS (err.text, "cause seq 42");
    //  And the whole chain stops there, before reach could say anything.
    med_chain_t *chain;
    CHECK_PASS (med_chain_open (&chain, policy, &err), err);
    const char *name = NULL;
    CHECK_DECIDE (med_chain_run (chain, &env, &name, &err), err, MED_REJECT, BUS_ECAUSE);
    assert_string_equal (name, "causes");
    med_chain_destroy (&chain);
    bus_policy_destroy (&policy);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_foreign_cause_denied),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
