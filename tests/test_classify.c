/*  test_classify.c: the classify stage (mediators/med_classify.c).

    The bus decides what a message is: the recipient's declared class, then
    the classes whose action patterns match Send.action, then the sender's
    label, which can raise the class but never lower it. A privileged class
    outranks an ordinary one; between equals the first found wins (recipient,
    action rule, label; among action rules, the class first in the policy).
    Then the edge must carry the decided class: EINTENT when the sender asked
    for that class itself, ECLASS when the bus decided it against the label.
    An unknown label is EINTENT, listing the known classes.

    The stage runs alone, on envelopes the reach stage would pass (the
    recipient exists and the edge does), and once in the shipped chain.
*/
#include "check.h"
#include "stage.h"


#include "bus_policy.h"
#include "med_chain.h"

#define KEY_A   "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_B   "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_C   "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_D   "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"
#define KEY_E   "M7Ug^.oyJ<)F3+[86*<@mnNi2AErL8OV5)e:</kk"

//  Class indices: message 0, query 1, finance 2, deploy 3, comms 4 (the
//  built-ins, always first), then report 5 and admin 6 from the file.
static const char *s_policy_text =
    "classes\n"
    "    message\n"
    "        actions = y.*\n"
    "    deploy\n"
    "        actions = ops.*\n"
    "    comms\n"
    "        actions = email.*, y.mail\n"
    "    report\n"
    "        actions = report.*\n"
    "    admin\n"
    "        privileged = true\n"
    "        actions = ops.mail*\n"
    "agents\n"
    "    planner\n"
    "        key = \"" KEY_A "\"\n"
    "    writer\n"
    "        key = \"" KEY_B "\"\n"
    "    payments\n"
    "        key = \"" KEY_C "\"\n"
    "        class = finance\n"
    "    reporter\n"
    "        key = \"" KEY_D "\"\n"
    "        class = report\n"
    "    mailer\n"
    "        key = \"" KEY_E "\"\n"
    "        class = comms\n"
    "edges\n"
    "    planner\n"
    "        writer = message, query, finance, deploy, comms, report\n"
    "        payments = finance\n"
    "        reporter = report, comms\n"
    "        mailer = comms\n"
    "    writer\n"
    "        payments = message\n"
    "        reporter = report\n";

typedef stage_fixture_t fixture_t;

static int
s_setup (void **state)
{
    return stage_setup (state, s_policy_text, "classify");
}

//  The envelope as the core fills it (class_index starts at the label's).
static bus_envelope_t *
s_envelope (fixture_t *f, const char *from, const char *to, const char *intent,
            const char *action)
{
    bus_envelope_t *env = stage_envelope (f, from, to, intent);
    assert_non_null (env->sender);
    assert_non_null (env->recipient);
    f->send.action = (char *) action;
    return env;
}

//  Decides one message; returns the verdict.
static med_verdict_t
s_classify (fixture_t *f, const char *from, const char *to, const char *intent,
            const char *action)
{
    s_envelope (f, from, to, intent, action);
    return stage_decide (f);
}

static const char *
s_decided (fixture_t *f)
{
    assert_true (f->env.class_index >= 0);
    assert_true ((size_t) f->env.class_index < f->policy->class_count);
    return f->policy->classes [f->env.class_index].name;
}

static void
test_stage_shape (void **state)
{
    fixture_t *f = *state;
    assert_string_equal (f->stage->name, "classify");
    assert_non_null (f->stage->decide);
    assert_null (f->stage->observe);
    //  Built-ins first, in a fixed order, so edge masks mean the same.
    assert_int_equal (bus_policy_class (f->policy, "message"), 0);
    assert_int_equal (bus_policy_class (f->policy, "comms"), 4);
    assert_int_equal (bus_policy_class (f->policy, "report"), 5);
    assert_int_equal (bus_policy_class (f->policy, "admin"), 6);
}

static void
test_unknown_intent (void **state)
{
    fixture_t *f = *state;
    CHECK_DECIDE (s_classify (f, "planner", "writer", "gossip", NULL), f->err,
                  MED_REJECT, BUS_EINTENT);
    CHECK_CONTAINS (f->err.text, "unknown intent 'gossip'");
    CHECK_CONTAINS (f->err.text, "known: message, query, finance, deploy, comms, report, admin");
    //  Case matters; the empty label is no class either.
    CHECK_DECIDE (s_classify (f, "planner", "writer", "Message", NULL), f->err,
                  MED_REJECT, BUS_EINTENT);
    CHECK_DECIDE (s_classify (f, "planner", "writer", "", NULL), f->err,
                  MED_REJECT, BUS_EINTENT);
}

//  When the policy says nothing, the sender's label decides.
static void
test_label_when_policy_silent (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_classify (f, "planner", "writer", "query", NULL), MED_PASS);
    assert_string_equal (s_decided (f), "query");
    assert_string_equal (f->env.class_rule, "sender's intent query");
    //  An action no pattern matches is the same as none.
    CHECK_VERDICT (s_classify (f, "planner", "writer", "message", "calendar.add"), MED_PASS);
    assert_string_equal (s_decided (f), "message");
    CHECK_VERDICT (s_classify (f, "planner", "writer", "message", ""), MED_PASS);
    assert_string_equal (s_decided (f), "message");
}

static void
test_recipient_class (void **state)
{
    fixture_t *f = *state;
    //  Everything sent to payments is finance, whatever the label.
    CHECK_VERDICT (s_classify (f, "planner", "payments", "message", NULL), MED_PASS);
    assert_string_equal (s_decided (f), "finance");
    assert_string_equal (f->env.class_rule, "recipient payments is finance");
    CHECK_VERDICT (s_classify (f, "planner", "payments", "query", "y.anything"), MED_PASS);
    assert_string_equal (s_decided (f), "finance");
    //  An ordinary recipient class beats an ordinary label: the edge
    //  planner -> reporter does not carry query, and need not.
    CHECK_VERDICT (s_classify (f, "planner", "reporter", "query", NULL), MED_PASS);
    assert_string_equal (s_decided (f), "report");
    assert_string_equal (f->env.class_rule, "recipient reporter is report");
}

static void
test_action_rule (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_classify (f, "planner", "writer", "message", "email.send"), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
    assert_string_equal (f->env.class_rule, "action email.send matches comms (email.*)");
    //  An ordinary class can have action rules too.
    CHECK_VERDICT (s_classify (f, "planner", "writer", "query", "report.daily"), MED_PASS);
    assert_string_equal (s_decided (f), "report");
    CHECK_CONTAINS (f->env.class_rule, "(report.*)");
}

//  Rank beats order: y.mail matches message (y.*, first in the policy,
//  ordinary) and comms (y.mail, privileged); comms wins.
static void
test_privileged_outranks_ordinary (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_classify (f, "planner", "writer", "message", "y.mail"), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
    assert_string_equal (f->env.class_rule, "action y.mail matches comms (y.mail)");
    CHECK_VERDICT (s_classify (f, "planner", "writer", "query", "y.other"), MED_PASS);
    assert_string_equal (s_decided (f), "message");
    assert_string_equal (f->env.class_rule, "action y.other matches message (y.*)");
    //  A privileged action class over an ordinary recipient class.
    CHECK_VERDICT (s_classify (f, "planner", "reporter", "report", "email.send"), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
}

//  Between equals the first found wins: recipient, then action rule (the
//  class first in the policy), then label.
static void
test_first_found_among_equals (void **state)
{
    fixture_t *f = *state;
    //  recipient finance vs action comms, both privileged
    CHECK_VERDICT (s_classify (f, "planner", "payments", "message", "email.send"), MED_PASS);
    assert_string_equal (s_decided (f), "finance");
    assert_string_equal (f->env.class_rule, "recipient payments is finance");
    //  recipient comms vs label finance, both privileged
    CHECK_VERDICT (s_classify (f, "planner", "mailer", "finance", NULL), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
    //  recipient report vs action message (y.*), both ordinary
    CHECK_VERDICT (s_classify (f, "planner", "reporter", "report", "y.x"), MED_PASS);
    assert_string_equal (s_decided (f), "report");
    //  action comms vs label deploy, both privileged
    CHECK_VERDICT (s_classify (f, "planner", "writer", "deploy", "email.send"), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
    CHECK_CONTAINS (f->env.class_rule, "action email.send");
    //  two privileged action classes: deploy (ops.*) before admin (ops.mail*)
    CHECK_VERDICT (s_classify (f, "planner", "writer", "message", "ops.mail.send"), MED_PASS);
    assert_string_equal (s_decided (f), "deploy");
    CHECK_CONTAINS (f->env.class_rule, "(ops.*)");
}

//  The label can raise the class, never lower it.
static void
test_label_raises (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_classify (f, "planner", "writer", "finance", NULL), MED_PASS);
    assert_string_equal (s_decided (f), "finance");
    assert_string_equal (f->env.class_rule, "sender's intent finance");
    //  over an ordinary action rule
    CHECK_VERDICT (s_classify (f, "planner", "writer", "deploy", "y.x"), MED_PASS);
    assert_string_equal (s_decided (f), "deploy");
    //  over an ordinary recipient class
    CHECK_VERDICT (s_classify (f, "planner", "reporter", "comms", NULL), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
    assert_string_equal (f->env.class_rule, "sender's intent comms");
}

static void
test_label_never_lowers (void **state)
{
    fixture_t *f = *state;
    //  A payment labelled "message" is still finance, and writer -> payments
    //  carries only message: the bus decided against the label, so ECLASS.
    CHECK_DECIDE (s_classify (f, "writer", "payments", "message", NULL), f->err,
                  MED_REJECT, BUS_ECLASS);
    CHECK_CONTAINS (f->err.text, "edge writer -> payments does not allow finance");
    CHECK_CONTAINS (f->err.text, "decided by recipient payments is finance");
    CHECK_CONTAINS (f->err.text, "allowed: message)");
    //  The decided class stays in the envelope for the log.
    assert_string_equal (s_decided (f), "finance");

    //  An action that makes a report into comms, on an edge of report only.
    CHECK_DECIDE (s_classify (f, "writer", "reporter", "report", "email.blast"), f->err,
                  MED_REJECT, BUS_ECLASS);
    CHECK_CONTAINS (f->err.text, "does not allow comms");
    CHECK_CONTAINS (f->err.text, "action email.blast matches comms");
    assert_string_equal (s_decided (f), "comms");
}

//  EINTENT when the class the edge refuses is the one the sender asked for.
static void
test_edge_refuses_label (void **state)
{
    fixture_t *f = *state;
    CHECK_DECIDE (s_classify (f, "planner", "writer", "admin", NULL), f->err,
                  MED_REJECT, BUS_EINTENT);
    CHECK_CONTAINS (f->err.text, "edge planner -> writer does not allow admin");
    CHECK_CONTAINS (f->err.text, "allowed: message, query, finance, deploy, comms, report)");
    //  ...also when the recipient's class agrees with the label.
    CHECK_DECIDE (s_classify (f, "writer", "reporter", "comms", NULL), f->err,
                  MED_REJECT, BUS_EINTENT);
    CHECK_DECIDE (s_classify (f, "planner", "payments", "finance", "email.x"), f->err,
                  MED_PASS, BUS_OK);
}

//  Long actions are quoted bounded: the rule and the reason always fit.
static void
test_long_action (void **state)
{
    fixture_t *f = *state;
    static char action [600];
    memcpy (action, "email.", 6);
    memset (action + 6, 'x', sizeof action - 7);
    CHECK_VERDICT (s_classify (f, "planner", "writer", "message", action), MED_PASS);
    assert_string_equal (s_decided (f), "comms");
    assert_true (strlen (f->env.class_rule) < sizeof f->env.class_rule);
    CHECK_DECIDE (s_classify (f, "writer", "reporter", "report", action), f->err,
                  MED_REJECT, BUS_ECLASS);
    assert_true (strlen (f->err.text) < sizeof f->err.text);
}

//  In the shipped chain, classify is the stage that refuses a class.
static void
test_in_chain (void **state)
{
    fixture_t *f = *state;
    med_chain_t *chain = NULL;
    bus_error_t err;
    CHECK_PASS (med_chain_open (&chain, f->policy, &err), err);
    const char *stage = NULL;
    s_envelope (f, "writer", "payments", "message", NULL);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_REJECT, BUS_ECLASS);
    assert_string_equal (stage, "classify");
    s_envelope (f, "planner", "writer", "gossip", NULL);
    CHECK_DECIDE (med_chain_run (chain, &f->env, &stage, &f->err), f->err, MED_REJECT, BUS_EINTENT);
    assert_string_equal (stage, "classify");
    stage = NULL;
    s_envelope (f, "planner", "writer", "message", "y.x");
    CHECK_VERDICT (med_chain_run (chain, &f->env, &stage, &f->err), MED_PASS);
    assert_null (stage);
    assert_string_equal (s_decided (f), "message");
    med_chain_destroy (&chain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_intent, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_label_when_policy_silent, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_recipient_class, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_action_rule, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_privileged_outranks_ordinary, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_first_found_among_equals, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_label_raises, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_label_never_lowers, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_edge_refuses_label, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_long_action, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_in_chain, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
