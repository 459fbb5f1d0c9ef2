/*  test_scope.c: the scope stage (mediators/med_scope.c), least privilege
    per edge.

    An edge may list the actions, tools and resources it carries. Actions
    and tools match without regard to case, resources byte for byte (and
    `*` runs over `/`); "none" admits a message with no value there. The
    first list a message falls outside (action, then tool, then resource)
    decides: SCOPE, naming the value, the edge, the class and the list's
    line; or, under `outside = hold`, a pass with hold_required set and the
    same sentence as the hold's reason, for the hold stage to act on. A
    class's block replaces, per dimension, the edge's own list, and its
    `outside` the edge's. An edge with no lists is not scoped.

    The stage runs alone, on envelopes the stages before it would pass
    (the edge exists and carries the message's class).
*/
#include "check.h"
#include "stage.h"

#include "bus_policy.h"

#define KEY_A   "0sP+*eJu9)s.8C%G]?!3VaOc9?rsFf2]1Ehh9:/n"
#define KEY_B   "cnvRMqE9%SEU<qYS<PT=/5t#&0U2$>e&=r}t4IV1"
#define KEY_C   "oibFqCy>*wQPReC=!vHI}VWSLcO^?Qq^KfWE#oI:"
#define KEY_D   "Ac)t4OtSWa:Kx2g]-2mkas/uooJLXuC.q3AQ{4wG"

//  The line numbers matter: a refusal names the line of its list.
static const char *s_policy_text =
    "agents\n"                                          //  1
    "    planner\n"
    "        key = \"" KEY_A "\"\n"
    "    payments\n"
    "        key = \"" KEY_B "\"\n"                     //  5
    "    mailer\n"
    "        key = \"" KEY_C "\"\n"
    "    writer\n"
    "        key = \"" KEY_D "\"\n"
    "edges\n"                                           //  10
    "    planner\n"
    "        writer = message\n"
    "        payments = finance, query\n"
    "            tools = none\n"
    "            finance\n"                             //  15
    "                actions = transfer.create, refund.*\n"
    "                resources = invoice:*\n"
    "            query\n"
    "                actions = balance.get\n"
    "                outside = hold\n"                  //  20
    "        mailer = comms\n"
    "            resources = \"mailto:*@example.com\"\n"
    "            outside = hold\n"
    "    writer\n"
    "        payments = finance\n"                      //  25
    "            actions = none, transfer.create\n";

typedef stage_fixture_t fixture_t;

static int
s_setup (void **state)
{
    return stage_setup (state, s_policy_text, "scope");
}

//  Decides one Send with these action, tool and resource (NULL: none).
static med_verdict_t
s_scope (fixture_t *f, const char *from, const char *to, const char *intent,
         const char *action, const char *tool, const char *resource)
{
    bus_envelope_t *env = stage_envelope (f, from, to, intent);
    assert_non_null (env->sender);
    assert_non_null (env->recipient);
    assert_true (env->class_index >= 0);
    f->send.action = (char *) action;
    f->send.tool = (char *) tool;
    f->send.resource = (char *) resource;
    return stage_decide (f);
}

//  Passed, and not sent on to an approver.
static void
s_passes (fixture_t *f)
{
    assert_false (f->env.hold_required);
    assert_string_equal (f->env.hold_why, "");
}

static void
test_stage_shape (void **state)
{
    fixture_t *f = *state;
    assert_string_equal (f->stage->name, "scope");
    assert_non_null (f->stage->decide);
    assert_null (f->stage->observe);
}

//  No lists: whatever the message names passes.
static void
test_unscoped_edge (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_scope (f, "planner", "writer", "message", "anything.at.all", "shell",
                            "file:///etc/passwd"), MED_PASS);
    s_passes (f);
    CHECK_VERDICT (s_scope (f, "planner", "writer", "message", NULL, NULL, NULL), MED_PASS);
    s_passes (f);
}

static void
test_actions (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_scope (f, "planner", "payments", "finance", "transfer.create", NULL,
                            "invoice:42"), MED_PASS);
    s_passes (f);
    //  Actions match without regard to case; a glob runs to the end.
    CHECK_VERDICT (s_scope (f, "planner", "payments", "finance", "Refund.Partial", NULL,
                            "invoice:42"), MED_PASS);
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "transfer.delete", NULL,
                           "invoice:42"), f->err, MED_REJECT, BUS_ESCOPE);
    assert_string_equal (f->err.text, "action transfer.delete is outside edge planner -> "
                         "payments for finance (line 16: actions = transfer.create, refund.*)");
    //  A list without "none" refuses a message that names no action.
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", NULL, NULL, "invoice:42"),
                  f->err, MED_REJECT, BUS_ESCOPE);
    CHECK_CONTAINS (f->err.text, "action (none) is outside edge planner -> payments");
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "", NULL, "invoice:42"),
                  f->err, MED_REJECT, BUS_ESCOPE);
    CHECK_CONTAINS (f->err.text, "action (none)");
}

//  "none" admits the message with no value, and only that.
static void
test_none (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_scope (f, "writer", "payments", "finance", NULL, NULL, NULL), MED_PASS);
    s_passes (f);
    CHECK_VERDICT (s_scope (f, "writer", "payments", "finance", "TRANSFER.CREATE", NULL, NULL),
                   MED_PASS);
    //  "none" is no action, not an action of that name.
    CHECK_DECIDE (s_scope (f, "writer", "payments", "finance", "none", NULL, NULL), f->err,
                  MED_REJECT, BUS_ESCOPE);
    assert_string_equal (f->err.text, "action none is outside edge writer -> payments for "
                         "finance (line 26: actions = none, transfer.create)");
    CHECK_DECIDE (s_scope (f, "writer", "payments", "finance", "NONE", NULL, NULL), f->err,
                  MED_REJECT, BUS_ESCOPE);
    //  The edge lists no tools or resources: those are not scoped.
    CHECK_VERDICT (s_scope (f, "writer", "payments", "finance", NULL, "shell", "anything"),
                   MED_PASS);
}

//  The edge's `tools = none` holds for every class its blocks leave it to.
static void
test_tools (void **state)
{
    fixture_t *f = *state;
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "transfer.create", "curl",
                           "invoice:42"), f->err, MED_REJECT, BUS_ESCOPE);
    assert_string_equal (f->err.text, "tool curl is outside edge planner -> payments for "
                         "finance (line 14: tools = none)");
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "transfer.create", "none",
                           "invoice:42"), f->err, MED_REJECT, BUS_ESCOPE);
    CHECK_CONTAINS (f->err.text, "tool none is outside");
    //  The first list a message falls outside is the one named.
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "wire.send", "curl", "x"),
                  f->err, MED_REJECT, BUS_ESCOPE);
    CHECK_CONTAINS (f->err.text, "action wire.send is outside");
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "transfer.create", NULL, "x"),
                  f->err, MED_REJECT, BUS_ESCOPE);
    assert_string_equal (f->err.text, "resource x is outside edge planner -> payments for "
                         "finance (line 17: resources = invoice:*)");
}

//  Resources are bytes: case counts, and `*` runs over `/`.
static void
test_resources_bytes (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_scope (f, "planner", "payments", "finance", "transfer.create", NULL,
                            "invoice:2026/11/42"), MED_PASS);
    s_passes (f);
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "transfer.create", NULL,
                           "INVOICE:42"), f->err, MED_REJECT, BUS_ESCOPE);
    CHECK_CONTAINS (f->err.text, "resource INVOICE:42 is outside");
    CHECK_VERDICT (s_scope (f, "planner", "mailer", "comms", NULL, NULL,
                            "mailto:ops/team@example.com"), MED_PASS);
    s_passes (f);
}

//  `outside = hold`: passed on for an approver, with the refusal's sentence
//  as the hold's reason, and no error.
static void
test_outside_hold (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_scope (f, "planner", "mailer", "comms", NULL, NULL,
                            "mailto:bob@EXAMPLE.com"), MED_PASS);
    assert_true (f->env.hold_required);
    assert_string_equal (f->env.hold_why, "outside scope: resource mailto:bob@EXAMPLE.com is "
                         "outside edge planner -> mailer for comms (line 22: resources = "
                         "mailto:*@example.com)");
    CHECK_CODE (f->err, BUS_OK);
    CHECK_VERDICT (s_scope (f, "planner", "mailer", "comms", NULL, NULL, NULL), MED_PASS);
    assert_true (f->env.hold_required);
    CHECK_CONTAINS (f->env.hold_why, "resource (none) is outside");
}

//  A class's block: its lists replace the edge's per dimension, its
//  `outside` the edge's; what it does not say, the edge says.
static void
test_class_block (void **state)
{
    fixture_t *f = *state;
    CHECK_VERDICT (s_scope (f, "planner", "payments", "query", "balance.get", NULL, NULL),
                   MED_PASS);
    s_passes (f);
    //  finance's actions are not query's.
    CHECK_VERDICT (s_scope (f, "planner", "payments", "query", "transfer.create", NULL, NULL),
                   MED_PASS);
    assert_true (f->env.hold_required);
    assert_string_equal (f->env.hold_why, "outside scope: action transfer.create is outside "
                         "edge planner -> payments for query (line 19: actions = balance.get)");
    //  The edge's tools = none holds for query too, under query's outside.
    CHECK_VERDICT (s_scope (f, "planner", "payments", "query", "balance.get", "curl", NULL),
                   MED_PASS);
    assert_true (f->env.hold_required);
    CHECK_CONTAINS (f->env.hold_why, "tool curl is outside edge planner -> payments for query "
                    "(line 14: tools = none)");
    //  finance's block gives no outside, and the edge's is deny.
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", "balance.get", NULL,
                           "invoice:1"), f->err, MED_REJECT, BUS_ESCOPE);
    assert_false (f->env.hold_required);
    //  query's block gives no resources, and the edge none: unscoped.
    CHECK_VERDICT (s_scope (f, "planner", "payments", "query", "balance.get", NULL,
                            "anything:at/all"), MED_PASS);
    s_passes (f);
}

//  A value longer than the sentence has room for is cut, not overrun.
static void
test_long_value (void **state)
{
    fixture_t *f = *state;
    char action [4000];
    memset (action, 'a', sizeof action - 1);
    action [sizeof action - 1] = 0;
    CHECK_DECIDE (s_scope (f, "planner", "payments", "finance", action, NULL, "invoice:1"),
                  f->err, MED_REJECT, BUS_ESCOPE);
    CHECK_CONTAINS (f->err.text, "is outside edge planner -> payments for finance (line 16");
    assert_true (strlen (f->err.text) < sizeof f->err.text);
    CHECK_VERDICT (s_scope (f, "planner", "mailer", "comms", NULL, NULL, action), MED_PASS);
    assert_true (f->env.hold_required);
    assert_true (strlen (f->env.hold_why) < sizeof f->env.hold_why);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_stage_shape, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_unscoped_edge, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_actions, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_none, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_tools, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_resources_bytes, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_outside_hold, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_class_block, s_setup, stage_teardown),
        cmocka_unit_test_setup_teardown (test_long_value, s_setup, stage_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
