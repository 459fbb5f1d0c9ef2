/*  stage.h: one shipped stage alone, as the chain runs it, for the stage's
    unit test (tests/test_<stage>.c).

    The policy is parsed from the test's text; the stage is the one of that
    name in med_chain_stages (); its state is zeroed, then init, as the
    chain does it. An envelope is filled as the core fills it for an
    authenticated sender with nothing behind it in the log; a test then
    sets what its stage reads beyond that (a claimed sender, an action, a
    mailbox count, a clock, a resume).

        static int
        s_setup (void **state)
        {
            return stage_setup (state, s_policy_text, "taint");
        }
        ...
        cmocka_unit_test_setup_teardown (test_x, s_setup, stage_teardown)
*/
#ifndef STAGE_H
#define STAGE_H

#include "bus_policy.h"
#include "med_stage.h"

//  The clock of a fresh envelope, in microseconds (November 2023).
#define STAGE_NOW_US    1700000000000000ULL

typedef struct {
    bus_policy_t *policy;
    const med_stage_t *stage;
    void *state;
    Bulkhead__V1__Send send;
    bus_envelope_t env;
    bus_hold_t hold;                    //  for a test's resume
    bus_error_t err;                    //  the last decide's
} stage_fixture_t;

//  The shipped stage of that name, or NULL.
const med_stage_t *
    stage_find (const char *name);

//  A cmocka setup: *state is a new fixture for the stage name under the
//  policy text. -1, with the reason on stderr, when either is wrong.
int
    stage_setup (void **state, const char *policy_text, const char *name);

//  The matching teardown: fini, then everything freed.
int
    stage_teardown (void **state);

//  A clean Send ("m1", to, intent) from `from` and its envelope at
//  STAGE_NOW_US, class_index the intent's class (-1 if none), err cleared.
//  The sender and recipient are looked up, and NULL when the policy has no
//  such agent (identity and reach decide on that).
bus_envelope_t *
    stage_envelope (stage_fixture_t *f, const char *from, const char *to, const char *intent);

//  The stage's verdict on the envelope as it is now.
med_verdict_t
    stage_decide (stage_fixture_t *f);

#endif
