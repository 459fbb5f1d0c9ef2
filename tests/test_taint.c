/*  test_taint.c: the taint stage (mediators/med_taint.c).

    A message is restricted when its sender is untrusted, when it declares
    untrusted provenance, when a cause is restricted, or when its sender is
    tainted and in sticky mode (the default); in causal mode only the causes
    count. A held message decided again keeps the mark it was held with.

    Effects, in this order: restricted to an agent with accepts_restricted =
    false is EREFUSED whatever the class (issue 9, finding 1: also when the
    class is privileged with `restricted = hold`); restricted of a privileged
    class is ERESTRICTED, or with `restricted = hold` passes with
    hold_required set for the hold stage.

    The stage runs alone with env->class_index set as classify would set it,
    and in the shipped chain for the effects that need the hold stage.
*/
#include "check.h"
#include "stage.h"


#include "bus_policy.h"
#include "med_chain.h"

#define KEY_PLANNER     "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_HELPER      "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_READER      "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_PAYMENTS    "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"
#define KEY_DEPLOYER    "M7Ug^.oyJ<)F3+[86*<@mnNi2AErL8OV5)e:</kk"
#define KEY_VAULT       "Y2A4J>jeuO5/&wRk1OZXyit5+Mz7y?.P*-[)!D$@"
#define KEY_VAULTPAY    "?%f>m3L<)ph:Qkvv@uNBKd8]HYt&mN>KOMS6cnOV"
#define KEY_WRITER      "1p(y%fGR:3tXw89H)aBfW7<=l&oQ7q3(p9ti73Cz"

//  finance: privileged, held, restricted = hold. deploy: privileged, held,
//  restricted = deny (the default). admin: privileged, not held,
//  restricted = hold. message: ordinary.
static const char *s_policy_text =
    "classes\n"
    "    finance\n"
    "        restricted = hold\n"
    "    admin\n"
    "        privileged = true\n"
    "        restricted = hold\n"
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_PLANNER "\"\n"
    "    helper\n"
    "        key = \"" KEY_HELPER "\"\n"
    "        taint = causal\n"
    "    reader\n"
    "        key = \"" KEY_READER "\"\n"
    "        trust = untrusted\n"
    "    payments\n"
    "        key = \"" KEY_PAYMENTS "\"\n"
    "        class = finance\n"
    "    deployer\n"
    "        key = \"" KEY_DEPLOYER "\"\n"
    "        class = deploy\n"
    "    vault\n"
    "        key = \"" KEY_VAULT "\"\n"
    "        accepts_restricted = false\n"
    "    vaultpay\n"
    "        key = \"" KEY_VAULTPAY "\"\n"
    "        class = finance\n"
    "        accepts_restricted = false\n"
    "    writer\n"
    "        key = \"" KEY_WRITER "\"\n"
    "edges\n"
    "    planner\n"
    "        writer = message, admin\n"
    "        payments = finance\n"
    "        deployer = deploy\n"
    "        vault = message\n"
    "        vaultpay = finance\n"
    "    helper\n"
    "        writer = message\n"
    "        payments = finance\n"
    "    reader\n"
    "        writer = message, admin\n"
    "        payments = finance\n"
    "        deployer = deploy\n"
    "        vault = message\n"
    "        vaultpay = finance\n";

typedef stage_fixture_t fixture_t;

static int
s_setup (void **state)
{
    return stage_setup (state, s_policy_text, "taint");
}

//  A clean envelope from a sender with nothing behind it in the log; the
//  class as classify would have decided it.
static bus_envelope_t *
s_envelope (fixture_t *f, const char *from, const char *to, const char *cls)
{
    bus_envelope_t *env = stage_envelope (f, from, to, cls);
    assert_non_null (env->sender);
    assert_non_null (env->recipient);
    assert_true (env->class_index >= 0);
    return env;
}

//  Makes the envelope a resume of a hold made with the given mark.
static void
s_resume (fixture_t *f, bool restricted, uint64_t seq)
{
    memset (&f->hold, 0, sizeof f->hold);
    snprintf (f->hold.id, sizeof f->hold.id, "h-test");
    f->hold.seq = seq;
    snprintf (f->hold.sender, sizeof f->hold.sender, "%s", f->env.sender_name);
    snprintf (f->hold.recipient, sizeof f->hold.recipient, "%s", f->env.recipient->name);
    snprintf (f->hold.intent_class, sizeof f->hold.intent_class, "%s",
              f->policy->classes [f->env.class_index].name);
    f->hold.restricted = restricted;
    f->hold.quorum = 1;
    f->env.resume = &f->hold;
}

static void
test_stage_shape (void **state)
{
    fixture_t *f = *state;
    assert_string_equal (f->stage->name, "taint");
    assert_non_null (f->stage->decide);
    assert_null (f->stage->observe);
}

static void
test_clean_passes (void **state)
{
    fixture_t *f = *state;
    const char *to [] = { "writer", "payments", "deployer", "vault", "vaultpay" };
    const char *cls [] = { "message", "finance", "deploy", "message", "finance" };
    for (size_t i = 0; i < 5; i++) {
        s_envelope (f, "planner", to [i], cls [i]);
        CHECK_VERDICT (stage_decide (f), MED_PASS);
        assert_false (f->env.restricted);
        assert_false (f->env.hold_required);
        assert_string_equal (f->env.restricted_why, "");
    }
    //  Trusted provenance, and provenance left unspecified, are not marks.
    s_envelope (f, "planner", "writer", "message");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_TRUSTED;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_false (f->env.restricted);
    s_envelope (f, "planner", "writer", "message");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNSPECIFIED;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_false (f->env.restricted);
}

//  Each source of the mark, to an ordinary class and a willing recipient:
//  marked, passed, no hold asked for.
static void
test_sources_of_the_mark (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "reader", "writer", "message");
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_false (f->env.hold_required);
    assert_string_equal (f->env.restricted_why, "sender reader is untrusted");

    s_envelope (f, "planner", "writer", "message");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
    f->send.source = "https://example.com/page";
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_string_equal (f->env.restricted_why, "untrusted provenance: https://example.com/page");

    s_envelope (f, "planner", "writer", "message");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    CHECK_CONTAINS (f->env.restricted_why, "unnamed source");

    s_envelope (f, "planner", "writer", "message");
    f->env.cause_restricted = true;
    f->env.cause_seq = 41;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_string_equal (f->env.restricted_why, "cause seq 41 is restricted");

    s_envelope (f, "planner", "writer", "message");
    f->env.sender_tainted = true;
    f->env.taint_seq = 7;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_string_equal (f->env.restricted_why, "sender planner tainted since seq 7 (sticky)");
}

//  Nothing the sender writes clears the mark: trusted provenance from an
//  untrusted sender, or with a restricted cause, is still restricted.
static void
test_sender_cannot_clear (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "reader", "writer", "message");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_TRUSTED;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);

    s_envelope (f, "planner", "writer", "message");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_TRUSTED;
    f->env.cause_restricted = true;
    f->env.cause_seq = 3;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
}

static void
test_causal_mode (void **state)
{
    fixture_t *f = *state;
    //  Tainted but causal: not restricted, and the log says why not.
    s_envelope (f, "helper", "payments", "finance");
    f->env.sender_tainted = true;
    f->env.taint_seq = 12;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_false (f->env.restricted);
    assert_false (f->env.hold_required);
    assert_string_equal (f->env.restricted_why,
                         "not restricted: helper tainted since seq 12, causal mode");

    //  Causal, tainted, and a restricted cause: the cause counts.
    s_envelope (f, "helper", "payments", "finance");
    f->env.sender_tainted = true;
    f->env.taint_seq = 12;
    f->env.cause_restricted = true;
    f->env.cause_seq = 13;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_true (f->env.hold_required);
    assert_string_equal (f->env.restricted_why, "cause seq 13 is restricted");

    //  Causal and untainted: nothing in the log either.
    s_envelope (f, "helper", "writer", "message");
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_false (f->env.restricted);
    assert_string_equal (f->env.restricted_why, "");
}

//  Issue 9, finding 1: a recipient that refuses restricted content refuses
//  it whatever the class, also a privileged one with restricted = hold
//  (which would otherwise send it on to a person and then deliver it).
static void
test_refused_whatever_the_class (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "reader", "vault", "message");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EREFUSED);
    CHECK_CONTAINS (f->err.text, "vault does not accept restricted content");
    CHECK_CONTAINS (f->err.text, "sender reader is untrusted");

    assert_true (f->policy->classes [bus_policy_class (f->policy, "finance")].restricted_hold);
    s_envelope (f, "reader", "vaultpay", "finance");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EREFUSED);
    assert_false (f->env.hold_required);
    CHECK_CONTAINS (f->err.text, "vaultpay does not accept restricted content");

    //  Also when the mark comes from a cause or from the hold it was held
    //  under, and for a privileged class under restricted = deny.
    s_envelope (f, "planner", "vaultpay", "finance");
    f->env.cause_restricted = true;
    f->env.cause_seq = 5;
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EREFUSED);
    assert_false (f->env.hold_required);

    s_envelope (f, "planner", "vaultpay", "finance");
    s_resume (f, true, 9);
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EREFUSED);
    assert_false (f->env.hold_required);

    s_envelope (f, "reader", "vault", "deploy");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_EREFUSED);

    //  An unmarked message goes to the same recipients.
    s_envelope (f, "planner", "vaultpay", "finance");
    CHECK_VERDICT (stage_decide (f), MED_PASS);
}

static void
test_privileged_deny (void **state)
{
    fixture_t *f = *state;
    assert_false (f->policy->classes [bus_policy_class (f->policy, "deploy")].restricted_hold);
    s_envelope (f, "reader", "deployer", "deploy");
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ERESTRICTED);
    CHECK_CONTAINS (f->err.text, "restricted content may not trigger deploy");
    CHECK_CONTAINS (f->err.text, "sender reader is untrusted");
    assert_true (f->env.restricted);
    assert_false (f->env.hold_required);

    //  Each source of the mark is enough.
    s_envelope (f, "planner", "deployer", "deploy");
    f->env.sender_tainted = true;
    f->env.taint_seq = 2;
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ERESTRICTED);
    CHECK_CONTAINS (f->err.text, "(sticky)");
}

static void
test_privileged_hold (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "reader", "payments", "finance");
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_true (f->env.hold_required);
    CHECK_CONTAINS (f->env.hold_why, "restricted finance message");
    CHECK_CONTAINS (f->env.hold_why, "sender reader is untrusted");

    //  A privileged class that is not held asks for a person just the same.
    s_envelope (f, "reader", "writer", "admin");
    assert_false (f->policy->classes [f->env.class_index].hold);
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.hold_required);
    CHECK_CONTAINS (f->env.hold_why, "restricted admin message");

    //  An ordinary class never asks.
    s_envelope (f, "reader", "writer", "message");
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_false (f->env.hold_required);
    assert_string_equal (f->env.hold_why, "");
}

//  A resume keeps the mark it was held with: a taint cleared meanwhile, or
//  a sender that was never tainted, does not launder it.
static void
test_resume_keeps_mark (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "planner", "payments", "finance");
    s_resume (f, true, 77);
    assert_false (f->env.sender_tainted);
    assert_false (f->env.cause_restricted);
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_true (f->env.hold_required);
    assert_string_equal (f->env.restricted_why, "restricted when held at seq 77");

    //  Under restricted = deny the kept mark denies.
    s_envelope (f, "planner", "deployer", "deploy");
    s_resume (f, true, 78);
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ERESTRICTED);
    CHECK_CONTAINS (f->err.text, "restricted when held at seq 78");

    //  On an ordinary class the mark stays, and nothing is asked.
    s_envelope (f, "helper", "writer", "message");
    s_resume (f, true, 79);
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_false (f->env.hold_required);
}

//  A resume of a clean hold is decided by the rules as they are now.
static void
test_resume_clean_hold (void **state)
{
    fixture_t *f = *state;
    s_envelope (f, "planner", "payments", "finance");
    s_resume (f, false, 80);
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_false (f->env.restricted);
    assert_false (f->env.hold_required);

    //  Its sender was tainted while it waited (sticky): restricted now.
    s_envelope (f, "planner", "payments", "finance");
    s_resume (f, false, 80);
    f->env.sender_tainted = true;
    f->env.taint_seq = 90;
    CHECK_VERDICT (stage_decide (f), MED_PASS);
    assert_true (f->env.restricted);
    assert_true (f->env.hold_required);
    CHECK_CONTAINS (f->env.restricted_why, "tainted since seq 90");
}

//  Long sources are quoted bounded.
static void
test_long_source (void **state)
{
    fixture_t *f = *state;
    static char source [1000];
    memset (source, 's', sizeof source - 1);
    s_envelope (f, "planner", "deployer", "deploy");
    f->send.has_provenance = true;
    f->send.provenance = BULKHEAD__V1__PROVENANCE__PROVENANCE_UNTRUSTED;
    f->send.source = source;
    CHECK_DECIDE (stage_decide (f), f->err, MED_REJECT, BUS_ERESTRICTED);
    assert_true (strlen (f->env.restricted_why) < sizeof f->env.restricted_why);
    assert_true (strlen (f->err.text) < sizeof f->err.text);
}

//  In the shipped chain: the refusal names the taint stage; restricted =
//  hold reaches the hold stage, which holds it marked.
static void
test_in_chain (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    const char *stage = NULL;

    s_envelope (f, "reader", "vaultpay", "message");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_REJECT, BUS_EREFUSED);
    assert_string_equal (stage, "taint");

    s_envelope (f, "reader", "deployer", "message");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_REJECT, BUS_ERESTRICTED);
    assert_string_equal (stage, "taint");

    s_envelope (f, "reader", "payments", "message");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_HOLD, BUS_ERESTRICTED);
    assert_string_equal (stage, "hold");
    assert_true (f->env.restricted);
    CHECK_CONTAINS (f->err.text, "restricted finance message");

    s_envelope (f, "reader", "writer", "admin");
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err,
                  MED_HOLD, BUS_ERESTRICTED);
    assert_string_equal (stage, "hold");
    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_clean_passes, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_sources_of_the_mark, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_sender_cannot_clear, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_causal_mode, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_refused_whatever_the_class, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_privileged_deny, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_privileged_hold, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_resume_keeps_mark, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_resume_clean_hold, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_long_source, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
