/*  e2e_scope.c: scopes per edge (issue "Least privilege in the policy"),
    over real sockets against the real bus: in scope passes, out of scope
    is denied naming the rule, `outside = hold` is held and released only
    by an approver, and a policy error names its line.
*/
#include "check.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        approvers = alice\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    writer\n        key = @writer@\n"
    "    mailer\n        key = @mailer@\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "edges\n"
    "    planner\n"
    "        payments = finance\n"
    "            actions = transfer.create, refund.create\n"
    "            resources = invoice:*\n"
    "        writer = message\n"
    "            actions = report.*, none\n"
    "            tools = none\n"
    "        mailer = message\n"
    "            resources = \"mailto:*@example.com\"\n"
    "            outside = hold\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

//  One edge, two classes, each with its own scope: the edge's own line
//  applies to both, each class block replaces what it lists.
static const char *s_class_policy =
    "classes\n"
    "    finance\n"
    "        approvers = alice\n"
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    payments\n        key = @payments@\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "edges\n"
    "    planner\n"
    "        payments = finance, query\n"
    "            tools = none\n"
    "            finance\n"
    "                actions = transfer.create\n"
    "                resources = invoice:*\n"
    "            query\n"
    "                actions = balance.get\n"
    "                outside = hold\n";

static int
s_setup_classes (void **state)
{
    return harness_fixture (state, s_class_policy);
}

static int
s_teardown (void **state)
{
    return harness_fixture_end (state);
}

static Bulkhead__V1__Frame *
s_send (bus_client_t *client, const char *to, const char *intent, const char *action,
        const char *resource, const char *tool, const char *id)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.message_id = (char *) id;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.action = (char *) action;
    send.resource = (char *) resource;
    send.tool = (char *) tool;
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    CHECK_PASS (bus_client_send (client, &send, &reply, 5000, &err), err);
    return reply;
}

static void
s_expect (bus_client_t *client, const char *to, const char *intent, const char *action,
          const char *resource, const char *tool, const char *id, const char *verdict,
          const char *code)
{
    Bulkhead__V1__Frame *reply = s_send (client, to, intent, action, resource, tool, id);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_ACK);
    if (strcmp (harness_code (reply), verdict) != 0 || strcmp (reply->ack->code, code) != 0) {
        fail_msg ("%s: want %s %s, got %s %s (%s)", id, verdict, code, harness_code (reply),
                  reply->ack->code, reply->ack->reason);
    }
    bus_client_free (&reply);
}

static void
test_in_scope_passes_outside_denied (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    //  In scope: held as finance (the class), not refused by the scope.
    s_expect (planner, "payments", "finance", "transfer.create", "invoice:42", NULL, "p-1",
              "held", "OK");
    //  Outside: another action, no action, a resource spelled otherwise
    //  (resources match byte for byte), no resource.
    s_expect (planner, "payments", "finance", "transfer.delete", "invoice:42", NULL, "p-2",
              "denied", "SCOPE");
    s_expect (planner, "payments", "finance", NULL, "invoice:42", NULL, "p-3", "denied", "SCOPE");
    s_expect (planner, "payments", "finance", "refund.create", "Invoice:42", NULL, "p-4",
              "denied", "SCOPE");
    s_expect (planner, "payments", "finance", "refund.create", NULL, NULL, "p-5", "denied",
              "SCOPE");
    //  Actions match without regard to case, as class actions do.
    s_expect (planner, "payments", "finance", "Refund.Create", "invoice:7", NULL, "p-6", "held",
              "OK");
    //  'none' admits a message with no action; tools = none admits only none.
    s_expect (planner, "writer", "message", NULL, NULL, NULL, "w-1", "queued", "OK");
    s_expect (planner, "writer", "message", "report.weekly", NULL, NULL, "w-2", "queued", "OK");
    s_expect (planner, "writer", "message", "shell.exec", NULL, NULL, "w-3", "denied", "SCOPE");
    s_expect (planner, "writer", "message", "report.weekly", NULL, "browser", "w-4", "denied",
              "SCOPE");
    //  The reason names the rule and its line.
    Bulkhead__V1__Frame *reply = s_send (planner, "writer", "message", "shell.exec", NULL, NULL,
                                         "w-5");
    CHECK_CONTAINS (reply->ack->reason, "action shell.exec is outside edge planner -> writer");
    CHECK_CONTAINS (reply->ack->reason, "actions = report.*, none");
    bus_client_free (&reply);
    bus_client_destroy (&planner);
}

static void
test_outside_hold_needs_an_approver (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *mailer = harness_agent (h, "mailer");
    bus_client_t *alice = harness_agent (h, "alice");
    //  In scope: a message, delivered at once.
    s_expect (planner, "mailer", "message", NULL, "mailto:bob@example.com", NULL, "m-1",
              "delivered", "OK");
    Bulkhead__V1__Frame *d = harness_deliver (mailer, 2000);
    assert_non_null (d);
    bus_client_free (&d);
    //  Outside: held for an approver, marked as outside scope.
    Bulkhead__V1__Frame *reply = s_send (planner, "mailer", "message", NULL,
                                         "mailto:boss@evil.example", NULL, "m-2");
    assert_string_equal (harness_code (reply), "held");
    assert_string_equal (reply->ack->code, "SCOPE");
    CHECK_CONTAINS (reply->ack->reason, "outside scope");
    char id [32];
    snprintf (id, sizeof id, "%s", reply->ack->approval_id);
    bus_client_free (&reply);
    assert_null (harness_deliver (mailer, 300));
    //  A standing grant cannot stand in for it (and message is not a held
    //  class, so none can be made); alice approves what she read.
    Bulkhead__V1__Control list = BULKHEAD__V1__CONTROL__INIT;
    list.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING;
    bus_error_t err;
    CHECK_PASS (bus_client_control (alice, &list, &reply, 5000, &err), err);
    assert_int_equal (reply->control_reply->n_pending, 1);
    uint8_t digest [32];
    memcpy (digest, reply->control_reply->pending [0]->digest.data, 32);
    bus_client_free (&reply);
    Bulkhead__V1__Control approve = BULKHEAD__V1__CONTROL__INIT;
    approve.op = BULKHEAD__V1__CONTROL_OP__CONTROL_APPROVE;
    approve.id = id;
    approve.has_digest = true;
    approve.digest.data = digest;
    approve.digest.len = 32;
    CHECK_PASS (bus_client_control (alice, &approve, &reply, 5000, &err), err);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    d = harness_deliver (mailer, 2000);
    assert_non_null (d);
    assert_string_equal (d->deliver->resource, "mailto:boss@evil.example");
    assert_int_equal (d->deliver->n_approvals, 1);
    bus_client_free (&d);
    bus_client_destroy (&planner);
    bus_client_destroy (&mailer);
    bus_client_destroy (&alice);
}

static void
test_scopes_per_class (void **state)
{
    harness_t *h = *state;
    bus_client_t *planner = harness_agent (h, "planner");
    //  finance: its own actions and resources.
    s_expect (planner, "payments", "finance", "transfer.create", "invoice:1", NULL, "c-1",
              "held", "OK");
    s_expect (planner, "payments", "finance", "balance.get", "invoice:1", NULL, "c-2",
              "denied", "SCOPE");
    s_expect (planner, "payments", "finance", "transfer.create", "account:1", NULL, "c-3",
              "denied", "SCOPE");
    //  query: its own actions, any resource (it lists none), and outside
    //  it is held, not denied.
    s_expect (planner, "payments", "query", "balance.get", "account:1", NULL, "c-4", "queued",
              "OK");
    s_expect (planner, "payments", "query", "transfer.create", NULL, NULL, "c-5", "held",
              "SCOPE");
    //  The edge's own line (tools = none) holds for both classes.
    s_expect (planner, "payments", "query", "balance.get", NULL, "shell", "c-6", "held", "SCOPE");
    s_expect (planner, "payments", "finance", "transfer.create", "invoice:1", "shell", "c-7",
              "denied", "SCOPE");
    //  The reason names the class and the line of the list that refused.
    Bulkhead__V1__Frame *reply = s_send (planner, "payments", "finance", "refund.create",
                                         "invoice:1", NULL, "c-8");
    CHECK_CONTAINS (reply->ack->reason, "outside edge planner -> payments for finance (line 17: "
                    "actions = transfer.create)");
    bus_client_free (&reply);
    bus_client_destroy (&planner);
}

//  Writes a policy with agents a, b and the given edge lines; runs check.
static void
s_check_edge (harness_t *h, const char *edge, const char *want)
{
    char path [400];
    snprintf (path, sizeof path, "%s/bad.cfg", h->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "agents\n    a\n        key = \"KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n"
             "    b\n        key = \"8+9rBMLy0r%%7k}rmciW{.JwUzMOyfNKOz8G{{q+C\"\n"
             "edges\n    a\n%s", edge);
    fclose (file);
    char *out = NULL;
    assert_int_not_equal (harness_run (h, &out, "check", path, NULL), 0);
    CHECK_CONTAINS (out, want);
    free (out);
}

static void
test_class_scope_errors_name_the_line (void **state)
{
    harness_t *h = *state;
    //  A block for a class the edge does not carry.
    s_check_edge (h, "        b = message\n            finance\n                actions = x\n",
                  "bad.cfg:9: unknown key 'finance' under edge a -> b");
    //  A class block twice.
    s_check_edge (h, "        b = message, query\n            query\n                actions = x\n"
                  "            query\n                actions = y\n",
                  "bad.cfg:11: class query under edge a -> b is given twice (first at line 9)");
    //  An unknown key inside a block names the block.
    s_check_edge (h, "        b = query\n            query\n                verbs = x\n",
                  "bad.cfg:10: unknown key 'verbs' under query under edge a -> b");
    //  outside with nothing to be outside of, in a block.
    s_check_edge (h, "        b = query\n            query\n                outside = hold\n",
                  "bad.cfg:9: outside under query under edge a -> b has no scope");
    //  A block with a value.
    s_check_edge (h, "        b = query\n            query = x\n                actions = x\n",
                  "bad.cfg:9: a class block 'query' takes no value");
}

static void
test_scope_errors_name_the_line (void **state)
{
    harness_t *h = *state;
    char path [400];
    snprintf (path, sizeof path, "%s/bad.cfg", h->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "agents\n    a\n        key = \"KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n"
             "    b\n        key = \"8+9rBMLy0r%%7k}rmciW{.JwUzMOyfNKOz8G{{q+C\"\n"
             "edges\n    a\n        b = message\n            verbs = x\n");
    fclose (file);
    char *out = NULL;
    assert_int_not_equal (harness_run (h, &out, "check", path, NULL), 0);
    CHECK_CONTAINS (out, "bad.cfg:9: unknown key 'verbs' under edge a -> b");
    free (out);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_in_scope_passes_outside_denied, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_outside_hold_needs_an_approver, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scope_errors_name_the_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scopes_per_class, s_setup_classes, s_teardown),
        cmocka_unit_test_setup_teardown (test_class_scope_errors_name_the_line, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
