/*  test_control.c: the control table (bus/bus_control.c), against a bus
    run in-process (bus_server_open on a thread of the test) with real
    CURVE sockets and a real LMDB log in a temporary directory.

    The table checks the role each operation needs before its handler runs,
    answers every command with one CONTROL_REPLY, and refuses what it does
    not know. The server object itself is tested too: open, loop on a
    thread, stop from another thread, destroy (idempotent).
*/
#include "check.h"
#include "harness.h"
#include "bus_server.h"

#include <pthread.h>
#include <stdlib.h>

static const char *s_policy =
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    alice\n        key = @alice@\n        role = approver\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "    root\n        key = @root@\n        role = approver, operator\n"
    "edges\n"
    "    planner\n"
    "        payments = finance\n";

typedef struct {
    harness_t h;
    bus_server_t *server;
    pthread_t thread;
    bool running;                   //  the loop thread is up
} fixture_t;

//  Stops the loop from this thread and waits for it.
static void
s_stop (fixture_t *f)
{
    if (f->running) {
        bus_server_stop (f->server);
        pthread_join (f->thread, NULL);
        f->running = false;
    }
}

static void *
s_loop (void *arg)
{
    bus_server_loop (arg);
    return NULL;
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    if (!f) {
        return -1;
    }
    harness_init (&f->h);
    if (harness_policy (&f->h, s_policy) != 0) {
        return -1;
    }
    bus_server_options_t options = {
        .policy_path = f->h.policy,
        .data_dir = f->h.data,
        .endpoint = f->h.endpoint,
        .ready_fd = -1,
        .quiet = 1,
    };
    bus_error_t err;
    if (bus_server_open (&f->server, &options, &err) != 0) {
        fprintf (stderr, "bus_server_open: %s: %s\n", bus_errname (err.code), err.text);
        return -1;
    }
    if (pthread_create (&f->thread, NULL, s_loop, f->server) != 0) {
        return -1;
    }
    f->running = true;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    s_stop (f);
    bus_server_destroy (&f->server);
    assert_null (f->server);
    bus_server_destroy (&f->server);            //  idempotent
    harness_cleanup (&f->h);
    free (f);
    return 0;
}

//  One command as agent; returns the reply code (static copy) and the
//  reason in *reason (static copy).
static const char *
s_control (fixture_t *f, const char *agent, Bulkhead__V1__ControlOp op, const char **reason)
{
    static char code [32];
    static char text [600];
    bus_client_t *client = harness_agent (&f->h, agent);
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = op;
    control.agent = "payments";
    Bulkhead__V1__Frame *reply = NULL;
    bus_error_t err;
    CHECK_PASS (bus_client_control (client, &control, &reply, 5000, &err), err);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    snprintf (code, sizeof code, "%s", reply->control_reply->code);
    snprintf (text, sizeof text, "%s", reply->control_reply->reason);
    bus_client_free (&reply);
    bus_client_destroy (&client);
    if (reason) {
        *reason = text;
    }
    return code;
}

static void
test_server_in_process (void **state)
{
    fixture_t *f = *state;
    //  The bus answers over its socket while it runs on the test's thread.
    bus_client_t *client = harness_agent (&f->h, "planner");
    assert_string_equal (bus_client_agent (client), "planner");
    bus_client_destroy (&client);
}

static void
test_roles_checked_by_the_table (void **state)
{
    fixture_t *f = *state;
    const char *reason;
    assert_string_equal (s_control (f, "planner", BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD, &reason),
                         "PERM");
    CHECK_CONTAINS (reason, "planner is not an operator");
    assert_string_equal (s_control (f, "alice", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT, &reason),
                         "PERM");
    CHECK_CONTAINS (reason, "alice is not an operator");
    assert_string_equal (s_control (f, "ops", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING, &reason),
                         "PERM");
    CHECK_CONTAINS (reason, "ops is not an approver");
    assert_string_equal (s_control (f, "planner", BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT, &reason),
                         "PERM");
    CHECK_CONTAINS (reason, "not an approver or an operator");
}

static void
test_allowed_roles_reach_their_handler (void **state)
{
    fixture_t *f = *state;
    const char *reason;
    assert_string_equal (s_control (f, "ops", BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD, &reason), "OK");
    CHECK_CONTAINS (reason, "loaded");
    assert_string_equal (s_control (f, "ops", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT, &reason),
                         "OK");
    CHECK_CONTAINS (reason, "0 tainted agents");
    assert_string_equal (s_control (f, "alice", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING, &reason),
                         "OK");
    CHECK_CONTAINS (reason, "0 messages wait for alice");
    //  An agent with both roles passes the table for either.
    assert_string_equal (s_control (f, "root", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_PENDING, NULL),
                         "OK");
    assert_string_equal (s_control (f, "root", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT, NULL), "OK");
    //  The handler's own rules still apply past the table: nothing to clear.
    assert_string_equal (s_control (f, "ops", BULKHEAD__V1__CONTROL_OP__CONTROL_CLEAR_TAINT, &reason),
                         "NOTFOUND");
    CHECK_CONTAINS (reason, "payments is not tainted");
    //  A pure operator passes the table for GRANT (to revoke), but making a
    //  grant is an approver's.
    assert_string_equal (s_control (f, "ops", BULKHEAD__V1__CONTROL_OP__CONTROL_GRANT, &reason),
                         "INVAL");
}

static void
test_unknown_operation_refused (void **state)
{
    fixture_t *f = *state;
    const char *reason;
    assert_string_equal (s_control (f, "root", BULKHEAD__V1__CONTROL_OP__CONTROL_UNSPECIFIED, &reason),
                         "INVAL");
    CHECK_CONTAINS (reason, "not supported");
}

static void
test_every_command_is_logged (void **state)
{
    fixture_t *f = *state;
    s_control (f, "planner", BULKHEAD__V1__CONTROL_OP__CONTROL_RELOAD, NULL);
    s_control (f, "ops", BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT, NULL);
    //  Stop the bus so `bulkhead log` reads a quiet environment.
    s_stop (f);
    bus_server_destroy (&f->server);
    char *out = NULL;
    assert_int_equal (harness_run (&f->h, &out, "log", "--data", f->h.data, "--kind", "control", NULL), 0);
    CHECK_CONTAINS (out, "planner is not an operator");
    CHECK_CONTAINS (out, "0 tainted agents");
    free (out);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_server_in_process, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_roles_checked_by_the_table, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_allowed_roles_reach_their_handler, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_operation_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_every_command_is_logged, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
