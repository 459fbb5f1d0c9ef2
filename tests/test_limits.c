/*  test_limits.c: the limits stage (mediators/med_limits.c).

    A token bucket per sender, one second deep: a burst of `rate` at once,
    then `rate` per second; beyond it ERATE. rate = 0 is unlimited. A held
    message decided again (env->resume) paid when it was held and takes no
    token. The buckets belong to the chain: a reload (fini, init) starts
    them full.

    Time is env->now_us, set by the test: nothing sleeps, and every figure
    is exact in binary floating point.
*/
#include "check.h"
#include "stage.h"


#include "bus_policy.h"
#include "med_chain.h"

#define KEY_PLANNER     "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_DUO         "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_FREE        "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_WRITER      "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"

#define T0  UINT64_C (1700000000000000)
#define SEC UINT64_C (1000000)

static const char *s_policy_text =
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_PLANNER "\"\n"
    "        rate = 3\n"
    "    duo\n"
    "        key = \"" KEY_DUO "\"\n"
    "        rate = 2\n"
    "    free\n"
    "        key = \"" KEY_FREE "\"\n"
    "        rate = 0\n"
    "    writer\n"
    "        key = \"" KEY_WRITER "\"\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n"
    "    duo\n"
    "        writer = message\n"
    "    free\n"
    "        writer = message\n";

typedef stage_fixture_t fixture_t;

static int
s_setup (void **state)
{
    return stage_setup (state, s_policy_text, "limits");
}

static bus_envelope_t *
s_envelope (fixture_t *f, const char *from, uint64_t now_us)
{
    bus_envelope_t *env = stage_envelope (f, from, "writer", "message");
    assert_non_null (env->sender);
    env->now_us = now_us;
    return env;
}

//  One message from `from` at now_us.
static med_verdict_t
s_send (fixture_t *f, const char *from, uint64_t now_us)
{
    s_envelope (f, from, now_us);
    return stage_decide (f);
}

//  The same message, decided again after an approval.
static med_verdict_t
s_resume (fixture_t *f, const char *from, uint64_t now_us)
{
    s_envelope (f, from, now_us);
    memset (&f->hold, 0, sizeof f->hold);
    snprintf (f->hold.sender, sizeof f->hold.sender, "%s", from);
    f->env.resume = &f->hold;
    return stage_decide (f);
}

//  How many of up to `tries` messages at now_us pass before the first ERATE.
static unsigned
s_burst (fixture_t *f, const char *from, uint64_t now_us, unsigned tries)
{
    unsigned passed = 0;
    while (passed < tries && s_send (f, from, now_us) == MED_PASS) {
        passed++;
    }
    return passed;
}

static void
test_stage_shape (void **state)
{
    fixture_t *f = *state;
    assert_string_equal (f->stage->name, "limits");
    assert_true (f->stage->state_size > 0);
    assert_non_null (f->stage->init);
    assert_non_null (f->stage->fini);
    assert_non_null (f->stage->decide);
    assert_null (f->stage->observe);
}

static void
test_burst_then_rate (void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++) {
        CHECK_VERDICT (s_send (f, "planner", T0), MED_PASS);
    }
    CHECK_DECIDE (s_send (f, "planner", T0), f->err, MED_REJECT, BUS_ERATE);
    assert_string_equal (f->err.text, "planner is over its limit of 3 messages per second");
    //  Still nothing at the same instant.
    CHECK_DECIDE (s_send (f, "planner", T0), f->err, MED_REJECT, BUS_ERATE);
}

static void
test_refill (void **state)
{
    fixture_t *f = *state;
    //  duo: rate 2, one token every 500 ms.
    assert_int_equal (s_burst (f, "duo", T0, 10), 2);
    //  250 ms: half a token, not enough; the denied message costs nothing
    //  and the half is kept.
    CHECK_DECIDE (s_send (f, "duo", T0 + SEC / 4), f->err, MED_REJECT, BUS_ERATE);
    CHECK_VERDICT (s_send (f, "duo", T0 + SEC / 2), MED_PASS);
    CHECK_DECIDE (s_send (f, "duo", T0 + SEC / 2), f->err, MED_REJECT, BUS_ERATE);
    //  Another 500 ms: exactly one more.
    assert_int_equal (s_burst (f, "duo", T0 + SEC, 10), 1);
}

//  The bucket is one second deep: a long quiet spell gives a burst of
//  `rate`, never more.
static void
test_bucket_depth (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (s_burst (f, "planner", T0, 10), 3);
    assert_int_equal (s_burst (f, "planner", T0 + 3600 * SEC, 10), 3);
    assert_int_equal (s_burst (f, "planner", T0 + 3600 * SEC + 1, 10), 0);
    //  A partly spent bucket refills to the top only.
    assert_int_equal (s_burst (f, "planner", T0 + 7200 * SEC, 1), 1);
    assert_int_equal (s_burst (f, "planner", T0 + 7300 * SEC, 10), 3);
}

//  A clock that steps back gives no tokens.
static void
test_clock_backwards (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (s_burst (f, "planner", T0, 10), 3);
    assert_int_equal (s_burst (f, "planner", T0 - 10 * SEC, 10), 0);
    assert_int_equal (s_burst (f, "planner", T0 - 10 * SEC, 10), 0);
}

static void
test_unlimited (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (s_burst (f, "free", T0, 10000), 10000);
    assert_int_equal (s_burst (f, "writer", T0, 1000), 1000);   //  rate not given: 0
}

static void
test_buckets_are_per_sender (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (s_burst (f, "planner", T0, 10), 3);
    assert_int_equal (s_burst (f, "duo", T0, 10), 2);
    CHECK_DECIDE (s_send (f, "planner", T0), f->err, MED_REJECT, BUS_ERATE);
    CHECK_DECIDE (s_send (f, "duo", T0), f->err, MED_REJECT, BUS_ERATE);
    CHECK_CONTAINS (f->err.text, "duo is over its limit of 2");
}

//  A resume paid when it was held: it takes no token, and passes even when
//  the bucket is empty.
static void
test_resume_takes_no_token (void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 20; i++) {
        CHECK_VERDICT (s_resume (f, "planner", T0), MED_PASS);
    }
    assert_int_equal (s_burst (f, "planner", T0, 10), 3);
    for (int i = 0; i < 20; i++) {
        CHECK_VERDICT (s_resume (f, "planner", T0), MED_PASS);
    }
    CHECK_DECIDE (s_send (f, "planner", T0), f->err, MED_REJECT, BUS_ERATE);
    //  What accrues meanwhile still counts: a third of a second after the
    //  burst buys one token, resumes in between or not.
    CHECK_VERDICT (s_resume (f, "planner", T0 + SEC / 4), MED_PASS);
    assert_int_equal (s_burst (f, "planner", T0 + SEC / 3 + 1, 10), 1);
}

//  A reload rebuilds the chain: fini, then init on fresh state, full.
static void
test_reload_starts_full (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (s_burst (f, "planner", T0, 10), 3);
    f->stage->fini (f->state);
    memset (f->state, 0, f->stage->state_size);
    bus_error_t err;
    CHECK_PASS (f->stage->init (f->state, f->policy, &err), err);
    assert_int_equal (s_burst (f, "planner", T0, 10), 3);
}

//  In the shipped chain: ERATE names the limits stage, and a resume goes
//  past it when the bucket is empty.
static void
test_in_chain (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    const char *stage = NULL;
    for (int i = 0; i < 3; i++) {
        s_envelope (f, "planner", T0);
        CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    }
    s_envelope (f, "planner", T0);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_REJECT, BUS_ERATE);
    assert_string_equal (stage, "limits");

    s_envelope (f, "planner", T0);
    f->env.resume = &f->hold;
    stage = NULL;
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_null (stage);

    //  Each chain has its own buckets.
    med_chain_t *other = NULL;
    CHECK_PASS (med_chain_open (&other, f->policy, &err), err);
    s_envelope (f, "planner", T0);
    CHECK_VERDICT (med_chain_run (other, &f->env, &stage, &f->err), MED_PASS);
    med_chain_destroy (&other);
    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_burst_then_rate, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_refill, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_bucket_depth, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_clock_backwards, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_unlimited, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_buckets_are_per_sender, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_resume_takes_no_token, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_reload_starts_full, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
