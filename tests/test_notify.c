/*  test_notify.c: the notify hook (bus/bus_notify.c) with a real /bin/sh:
    one run per interval with every hold since the last (a batch), what is
    queued at exit still told, a flood capped with a count of what was
    left out, and what agents wrote escaped in valid JSON. */
#include "check.h"

#include "bus_notify.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir [64];
    char out [128];             //  what CMD read, all runs
    char runs [128];            //  one line per run
    char command [512];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    snprintf (f->dir, sizeof f->dir, "/tmp/bulkhead-notify-XXXXXX");
    if (!f || !mkdtemp (f->dir)) {
        free (f);
        return -1;
    }
    snprintf (f->out, sizeof f->out, "%s/out", f->dir);
    snprintf (f->runs, sizeof f->runs, "%s/runs", f->dir);
    snprintf (f->command, sizeof f->command, "cat >>'%s'; echo run >>'%s'", f->out, f->runs);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    unlink (f->out);
    unlink (f->runs);
    rmdir (f->dir);
    free (f);
    return 0;
}

static size_t
s_lines (const char *path)
{
    FILE *file = fopen (path, "r");
    size_t n = 0;
    int c;
    while (file && (c = fgetc (file)) != EOF) {
        n += c == '\n';
    }
    if (file) {
        fclose (file);
    }
    return n;
}

static void
s_pending (bus_notify_t *notify, const char *id, const char *justification)
{
    Bulkhead__V1__Pending p = BULKHEAD__V1__PENDING__INIT;
    p.approval_id = (char *) id;
    p.sender = "planner";
    p.recipient = "payments";
    p.intent_class = "finance";
    p.justification = (char *) justification;
    p.has_quorum = true;
    p.quorum = 2;
    bus_notify_pending (notify, &p);
}

//  Ticks until no run is going (bounded: 5 s).
static void
s_settle (bus_notify_t *notify)
{
    for (int i = 0; i < 500 && bus_notify_wait_ms (notify) == 100; i++) {
        usleep (10 * 1000);
        bus_notify_tick (notify);
    }
}

static void
test_batched_per_interval (void **state)
{
    fixture_t *f = *state;
    bus_notify_t *notify = bus_notify_new (f->command, 3600);
    assert_non_null (notify);
    assert_int_equal (bus_notify_wait_ms (notify), -1);     //  nothing queued
    s_pending (notify, "h-1", "one");
    s_pending (notify, "h-2", "two");
    s_pending (notify, "h-3", "three");
    assert_int_equal (bus_notify_wait_ms (notify), 0);      //  the first run is due at once
    bus_notify_tick (notify);
    s_settle (notify);
    assert_int_equal (s_lines (f->runs), 1);
    assert_int_equal (s_lines (f->out), 3);
    //  Within the interval: queued, not run.
    s_pending (notify, "h-4", "four");
    s_pending (notify, "h-5", "five");
    bus_notify_tick (notify);
    s_settle (notify);
    assert_int_equal (s_lines (f->runs), 1);
    assert_true (bus_notify_wait_ms (notify) > 3500 * 1000);
    //  At exit, what waits is still told, in one more run.
    bus_notify_destroy (&notify);
    assert_null (notify);
    assert_int_equal (s_lines (f->runs), 2);
    assert_int_equal (s_lines (f->out), 5);
}

static void
test_flood_capped_and_counted (void **state)
{
    fixture_t *f = *state;
    bus_notify_t *notify = bus_notify_new (f->command, 3600);
    char id [32];
    for (int i = 0; i < BUS_NOTIFY_QUEUE_MAX + 5; i++) {
        snprintf (id, sizeof id, "h-%d", i);
        s_pending (notify, id, "flood");
    }
    bus_notify_destroy (&notify);
    assert_int_equal (s_lines (f->runs), 1);
    assert_int_equal (s_lines (f->out), BUS_NOTIFY_QUEUE_MAX + 1);
    //  The last line counts what did not fit.
    FILE *file = fopen (f->out, "r");
    assert_non_null (file);
    char line [4096], last [4096] = "";
    while (fgets (line, sizeof line, file)) {
        snprintf (last, sizeof last, "%s", line);
    }
    fclose (file);
    CHECK_CONTAINS (last, "{\"event\":\"dropped\",\"count\":5}");
}

static void
test_escaped_valid_json (void **state)
{
    fixture_t *f = *state;
    bus_notify_t *notify = bus_notify_new (f->command, 1);
    //  ESC, a bidi override (U+202E), a newline, a quote, invalid UTF-8.
    s_pending (notify, "h-1", "pay \x1b[31mnow\xe2\x80\xae\n\"x\" \xff");
    bus_notify_destroy (&notify);
    FILE *file = fopen (f->out, "r");
    assert_non_null (file);
    char line [4096] = "";
    assert_non_null (fgets (line, sizeof line, file));
    fclose (file);
    json_error_t error;
    json_t *o = json_loads (line, 0, &error);
    if (!o) {
        fail_msg ("not JSON: %s: %s", error.text, line);
    }
    const char *j = json_string_value (json_object_get (o, "justification"));
    assert_non_null (j);
    assert_string_equal (j, "pay \\x1b[31mnow\\u202e\\n\"x\" \\xff");
    assert_string_equal (json_string_value (json_object_get (o, "event")), "pending");
    assert_int_equal (json_integer_value (json_object_get (o, "quorum")), 2);
    json_decref (o);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_batched_per_interval, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_flood_capped_and_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_escaped_valid_json, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
