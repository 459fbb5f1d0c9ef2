/*  test_reach.c: the reachability allowlist (mediators/med_reach.c), run as
    the bus runs it: med_chain_open on a policy from bus_policy_parse, an
    envelope built by hand around a Bulkhead__V1__Send, med_chain_run.

    Default deny: a recipient the policy does not name, and an edge it does
    not name, are refused by the reach stage itself. An intent the edge does
    not carry is refused by the chain (today by the classify stage, which
    checks the class the bus decides) with the allowed intents named. The
    reach stage is also run alone, to pin down what it decides and what it
    leaves to later stages.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_policy.h"
#include "med_chain.h"

#define KEY_A   "KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^"
#define KEY_B   "8+9rBMLy0r%7k}rmciW{.JwUzMOyfNKOz8G{{q+C"
#define KEY_C   "+YIY:*&Rg+pKfrUBVkua-yECBf{!OFG:b6fW%gy]"
#define KEY_D   "/.3M}j1.6Evbs<7n9bQ@O}P+6?[TZ1V{YmMzg@We"

static const char *s_policy =
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_A "\"\n"
    "    writer\n"
    "        key = \"" KEY_B "\"\n"
    "    payments\n"
    "        key = \"" KEY_C "\"\n"
    "    loner\n"
    "        key = \"" KEY_D "\"\n"
    "edges\n"
    "    planner\n"
    "        writer = message, query\n"
    "    writer\n"
    "        writer = message\n";          //  a self-edge, written out

typedef struct {
    bus_policy_t *policy;
    med_chain_t *chain;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    bus_error_t err;
    if (!f || bus_policy_parse (&f->policy, s_policy, strlen (s_policy), "t.cfg", &err) != 0) {
        fprintf (stderr, "policy: %s\n", f? err.text: "out of memory");
        free (f);
        return -1;
    }
    if (med_chain_open (&f->chain, f->policy, &err) != 0) {
        fprintf (stderr, "chain: %s\n", err.text);
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
    med_chain_destroy (&f->chain);
    assert_null (f->chain);
    med_chain_destroy (&f->chain);              //  idempotent
    bus_policy_destroy (&f->policy);
    free (f);
    return 0;
}

//  The envelope as the core fills it for a trusted sender with nothing in
//  the log behind it.
static void
s_envelope (bus_envelope_t *env, Bulkhead__V1__Send *send, const bus_policy_t *policy,
            const char *from, const char *to, const char *intent)
{
    bulkhead__v1__send__init (send);
    send->message_id = "m1";
    send->recipient = (char *) to;
    send->intent = (char *) intent;
    send->has_payload = true;
    send->payload.data = (uint8_t *) "hi";
    send->payload.len = 2;
    memset (env, 0, sizeof *env);
    env->policy = policy;
    env->sender = bus_policy_agent (policy, from);
    assert_non_null (env->sender);
    env->recipient = bus_policy_agent (policy, to);
    env->send = send;
    env->now_us = 1700000000000000ULL;
    env->class_index = bus_policy_class (policy, intent);
}

//  Runs the chain; returns the verdict, fills *stage and err.
static med_verdict_t
s_run (fixture_t *f, const char *from, const char *to, const char *intent,
       const char **stage, bus_error_t *err)
{
    bus_envelope_t env;
    Bulkhead__V1__Send send;
    s_envelope (&env, &send, f->policy, from, to, intent);
    *stage = NULL;
    memset (err, 0, sizeof *err);
    return med_chain_run (f->chain, &env, stage, err);
}

static const med_stage_t *
s_reach_stage (void)
{
    for (const med_stage_t *const *stage = med_chain_stages (); *stage; stage++) {
        if (strcmp ((*stage)->name, "reach") == 0) {
            return *stage;
        }
    }
    return NULL;
}

static void
test_reach_is_first (void **state)
{
    (void) state;
    //  Only the checks of who sent it (its key, the causes it may name)
    //  come first.
    const med_stage_t *const *stages = med_chain_stages ();
    assert_non_null (stages [0]);
    assert_string_equal (stages [0]->name, "identity");
    assert_string_equal (stages [1]->name, "causes");
    assert_non_null (stages [2]);
    assert_string_equal (stages [2]->name, "reach");
    assert_non_null (stages [2]->decide);
}

static void
test_unknown_recipient (void **state)
{
    fixture_t *f = *state;
    const char *stage;
    bus_error_t err;
    assert_int_equal (s_run (f, "planner", "nobody", "message", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    assert_non_null (stage);
    assert_string_equal (stage, "reach");
    assert_non_null (strstr (err.text, "no agent 'nobody'"));
}

static void
test_no_edge (void **state)
{
    fixture_t *f = *state;
    const char *stage;
    bus_error_t err;
    //  Agents that exist, with no edge between them, either way round.
    assert_int_equal (s_run (f, "planner", "payments", "finance", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    assert_string_equal (stage, "reach");
    assert_non_null (strstr (err.text, "no edge planner -> payments"));

    assert_int_equal (s_run (f, "writer", "planner", "message", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    assert_non_null (strstr (err.text, "no edge writer -> planner"));

    //  No edge from an agent to itself unless the policy writes one.
    assert_int_equal (s_run (f, "planner", "planner", "message", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    assert_int_equal (s_run (f, "loner", "planner", "message", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    assert_string_equal (stage, "reach");
}

static void
test_intent_not_allowed (void **state)
{
    fixture_t *f = *state;
    const char *stage;
    bus_error_t err;
    //  planner -> writer carries message and query, not finance.
    assert_int_equal (s_run (f, "planner", "writer", "finance", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EINTENT);
    assert_non_null (stage);
    assert_non_null (strstr (err.text, "planner -> writer"));
    assert_non_null (strstr (err.text, "finance"));
    //  The reason lists what the edge does allow.
    if (!strstr (err.text, "allowed: message, query")) {
        fail_msg ("reason does not list the allowed intents: %s", err.text);
    }

    //  A name that is no class at all.
    assert_int_equal (s_run (f, "planner", "writer", "gossip", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EINTENT);
    assert_non_null (strstr (err.text, "gossip"));

    //  The self-edge carries only what it names.
    assert_int_equal (s_run (f, "writer", "writer", "query", &stage, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EINTENT);
    assert_non_null (strstr (err.text, "allowed: message"));
}

static void
test_allowed_passes (void **state)
{
    fixture_t *f = *state;
    const char *stage;
    bus_error_t err;
    assert_int_equal (s_run (f, "planner", "writer", "message", &stage, &err), MED_PASS);
    assert_null (stage);
    assert_int_equal (s_run (f, "planner", "writer", "query", &stage, &err), MED_PASS);
    assert_int_equal (s_run (f, "writer", "writer", "message", &stage, &err), MED_PASS);
}

//  The reach stage alone: it decides existence of the edge, nothing else.
static void
test_reach_stage_alone (void **state)
{
    fixture_t *f = *state;
    const med_stage_t *reach = s_reach_stage ();
    assert_non_null (reach);
    void *stage_state = calloc (1, reach->state_size? reach->state_size: 1);
    bus_error_t err = { 0 };
    if (reach->init) {
        assert_int_equal (reach->init (stage_state, f->policy, &err), 0);
    }
    bus_envelope_t env;
    Bulkhead__V1__Send send;

    s_envelope (&env, &send, f->policy, "planner", "writer", "message");
    assert_int_equal (reach->decide (stage_state, &env, &err), MED_PASS);
    s_envelope (&env, &send, f->policy, "planner", "nobody", "message");
    assert_int_equal (reach->decide (stage_state, &env, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    s_envelope (&env, &send, f->policy, "planner", "payments", "message");
    assert_int_equal (reach->decide (stage_state, &env, &err), MED_REJECT);
    assert_int_equal (err.code, BUS_EDENIED);
    //  The stage does not tag: class and restricted are other stages' work.
    s_envelope (&env, &send, f->policy, "planner", "writer", "message");
    env.class_index = -1;
    assert_int_equal (reach->decide (stage_state, &env, &err), MED_PASS);
    assert_int_equal (env.class_index, -1);
    assert_false (env.restricted);

    if (reach->fini) {
        reach->fini (stage_state);
    }
    free (stage_state);
}

//  A recipient name the policy could never hold ("agentB\0evil" arrives as
//  "agentB" only if the wire let it through; here: odd bytes and length).
static void
test_odd_recipient_names (void **state)
{
    fixture_t *f = *state;
    const char *stage;
    bus_error_t err;
    static char long_name [300];
    memset (long_name, 'w', sizeof long_name - 1);
    const char *names [] = { "", "Writer", "writer ", "writer\n", long_name, "wr%s%n" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        assert_int_equal (s_run (f, "planner", names [i], "message", &stage, &err), MED_REJECT);
        assert_int_equal (err.code, BUS_EDENIED);
        assert_true (strlen (err.text) < sizeof err.text);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_reach_is_first),
        cmocka_unit_test_setup_teardown (test_unknown_recipient, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_edge, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_intent_not_allowed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_allowed_passes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reach_stage_alone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_odd_recipient_names, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
