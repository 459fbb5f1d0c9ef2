/*  e2e_keys.c: keys that expire and rotate (issue "Least privilege in the
    policy"), over real sockets against the real bus.
*/
#include "check.h"
#include "harness.h"
#include "bus_keys.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static char s_text [4096];

//  A policy where planner's key line is `planner_key` (its own lines).
static const char *
s_policy (const char *planner_key)
{
    snprintf (s_text, sizeof s_text,
        "agents\n"
        "    planner\n%s"
        "    writer\n        key = @writer@\n"
        "    ops\n        key = @ops@\n        role = operator\n"
        "edges\n"
        "    planner\n        writer = message\n"
        "    writer\n        planner = message\n", planner_key);
    return s_text;
}

static bus_client_t *
s_connect_with (harness_t *h, const char *key_name, bus_error_t *err)
{
    char key [512];
    snprintf (key, sizeof key, "%s/%s.key", h->dir, key_name);
    bus_client_options_t options = {
        .endpoint = h->endpoint, .bus_key = h->bus_pub, .key_file = key, .timeout_ms = 3000,
    };
    bus_client_t *client = NULL;
    bus_client_connect (&client, &options, err);
    return client;
}

static void
test_expired_key_refused_at_handshake (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner@\n"
                                                    "        created = 2019-06-01\n"
                                                    "        expires = 2020-01-01\n")), 0);
    assert_int_equal (harness_start (&h), 0);
    bus_error_t err;
    bus_client_t *planner = s_connect_with (&h, "planner", &err);
    assert_null (planner);
    assert_int_equal (err.code, BUS_EUNKNOWN);
    bus_client_t *writer = harness_agent (&h, "writer");
    bus_client_destroy (&writer);
    assert_int_equal (harness_cleanup (&h), 0);
}

static void
test_key_expiring_live_is_cut_off (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    time_t soon = time (NULL) + 3;
    struct tm tm;
    char line [128], when [32];
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", gmtime_r (&soon, &tm));
    snprintf (line, sizeof line, "        key = @planner@\n        expires = %s\n", when);
    assert_int_equal (harness_policy (&h, s_policy (line)), 0);
    assert_int_equal (harness_start (&h), 0);
    bus_client_t *planner = harness_agent (&h, "planner");
    bus_client_t *writer = harness_agent (&h, "writer");
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", "before", "b-1");
    assert_string_equal (harness_code (reply), "delivered");
    bus_client_free (&reply);
    //  Wait past the expiry (bounded: 6 s).
    while (time (NULL) <= soon + 1) {
        struct timespec tick = { 0, 200 * 1000 * 1000 };
        nanosleep (&tick, NULL);
    }
    //  Nothing reaches the expired key's connection, and it is not answered.
    reply = harness_send (writer, "planner", "message", "after", "a-1");
    assert_string_equal (harness_code (reply), "queued");
    bus_client_free (&reply);
    assert_null (harness_deliver (planner, 500));
    char *out = NULL;
    harness_run (&h, &out, "log", "--data", h.data, "--kind", "session", NULL);
    CHECK_CONTAINS (out, "key expired");
    free (out);
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
    assert_int_equal (harness_cleanup (&h), 0);
}

static void
test_rotation_without_a_flag_day (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner@\n")), 0);
    //  The new key pair, made before the rotation starts.
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner@\n"
                                                    "        next_key = @planner2@\n")), 0);
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner@\n")), 0);
    assert_int_equal (harness_start (&h), 0);
    bus_client_t *old_key = harness_agent (&h, "planner");
    bus_client_t *writer = harness_agent (&h, "writer");
    bus_client_t *ops = harness_agent (&h, "ops");
    //  Overlap: both keys authenticate as planner.
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner@\n"
                                                    "        next_key = @planner2@\n")), 0);
    Bulkhead__V1__Frame *reply = harness_reload (ops);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    bus_error_t err;
    bus_client_t *new_key = s_connect_with (&h, "planner2", &err);
    assert_non_null (new_key);
    assert_string_equal (bus_client_agent (new_key), "planner");
    reply = harness_send (old_key, "writer", "message", "old", "o-1");
    assert_string_equal (harness_code (reply), "delivered");
    bus_client_free (&reply);
    reply = harness_send (new_key, "writer", "message", "new", "n-1");
    assert_string_equal (harness_code (reply), "delivered");
    bus_client_free (&reply);
    //  The log says which key each message used.
    char fp_old [17], fp_new [17];
    bus_keypair_t pair;
    char path [512];
    snprintf (path, sizeof path, "%s/planner.key", h.dir);
    CHECK_PASS (bus_keys_load (&pair, path, &err), err);
    bus_keys_fingerprint (fp_old, pair.public_z85);
    snprintf (path, sizeof path, "%s/planner2.key", h.dir);
    CHECK_PASS (bus_keys_load (&pair, path, &err), err);
    bus_keys_fingerprint (fp_new, pair.public_z85);
    char *out = NULL;
    harness_run (&h, &out, "log", "--data", h.data, "--kind", "send", "--json", NULL);
    char want [128];
    snprintf (want, sizeof want, "\"key_fp\":\"%s\"", fp_old);
    CHECK_CONTAINS (out, want);
    snprintf (want, sizeof want, "\"key_fp\":\"%s\"", fp_new);
    CHECK_CONTAINS (out, want);
    free (out);
    //  The end of the overlap: the old key goes, its connection at once.
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner2@\n")), 0);
    reply = harness_reload (ops);
    assert_string_equal (reply->control_reply->code, "OK");
    bus_client_free (&reply);
    reply = harness_send (writer, "planner", "message", "to the new key", "w-1");
    bus_client_free (&reply);
    assert_null (harness_deliver (old_key, 500));
    Bulkhead__V1__Frame *d = harness_deliver (new_key, 2000);
    assert_non_null (d);
    bus_client_free (&d);
    bus_client_destroy (&old_key);
    bus_client_destroy (&new_key);
    bus_client_destroy (&writer);
    bus_client_destroy (&ops);
    assert_int_equal (harness_cleanup (&h), 0);
}

//  Connects as key_name pinning bus_pub at endpoint; NULL if refused.
static bus_client_t *
s_connect_at (const char *endpoint, const char *bus_pub, harness_t *h, const char *key_name)
{
    char key [512];
    snprintf (key, sizeof key, "%s/%s.key", h->dir, key_name);
    bus_client_options_t options = {
        .endpoint = endpoint, .bus_key = bus_pub, .key_file = key, .timeout_ms = 1500,
    };
    bus_client_t *client = NULL;
    bus_error_t err;
    bus_client_connect (&client, &options, &err);
    return client;
}

//  The bus's own key rotates with an overlap: keygen --bus --rotate makes
//  the next pair, the bus listens with each key on an endpoint of its own,
//  agents move one by one (the log says which key each used), and once
//  the next key is the key the old one opens nothing.
static void
test_bus_key_rotation (void **state)
{
    (void) state;
    harness_t h;
    harness_init (&h);
    assert_int_equal (harness_policy (&h, s_policy ("        key = @planner@\n")), 0);
    assert_int_equal (harness_start (&h), 0);
    char *out = NULL;
    assert_int_equal (harness_run (&h, &out, "keygen", "--bus", "--rotate", "--dir", h.data,
                                   NULL), 0);
    CHECK_CONTAINS (out, "bus.next.key (secret, 0600)");
    CHECK_CONTAINS (out, "--next-key");
    free (out);
    char next_key [400], next_pub [400], next_ep [300], old_pub [400], old_ep [420];
    snprintf (next_key, sizeof next_key, "%s/bus.next.key", h.data);
    snprintf (next_pub, sizeof next_pub, "%s/bus.next.pub", h.data);
    snprintf (next_ep, sizeof next_ep, "ipc://%s/next.sock", h.dir);
    //  A copy of the old public key: bus.pub itself is replaced at the end.
    snprintf (old_pub, sizeof old_pub, "%s/old.pub", h.dir);
    FILE *from = fopen (h.bus_pub, "r"), *to = fopen (old_pub, "w");
    assert_non_null (from);
    assert_non_null (to);
    char buf [1024];
    size_t n = fread (buf, 1, sizeof buf, from);
    assert_int_equal (fwrite (buf, 1, n, to), n);
    fclose (from);
    fclose (to);
    assert_int_equal (harness_stop (&h, SIGTERM), 0);

    //  The overlap: both keys, each on its endpoint.
    h.extra [0] = "--next-key";
    h.extra [1] = next_key;
    h.extra [2] = "--next-endpoint";
    h.extra [3] = next_ep;
    assert_int_equal (harness_start (&h), 0);
    snprintf (old_ep, sizeof old_ep, "%s", h.endpoint);
    bus_client_t *planner = s_connect_at (old_ep, old_pub, &h, "planner");
    bus_client_t *writer = s_connect_at (next_ep, next_pub, &h, "writer");
    assert_non_null (planner);
    assert_non_null (writer);
    Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", "over old", "k-1");
    assert_string_equal (harness_code (reply), "delivered");
    bus_client_free (&reply);
    Bulkhead__V1__Frame *d = harness_deliver (writer, 3000);
    assert_non_null (d);
    assert_string_equal (d->deliver->sender, "planner");
    bus_client_free (&d);
    //  A key pinned on the other key's endpoint: no handshake.
    assert_null (s_connect_at (old_ep, next_pub, &h, "ops"));
    assert_null (s_connect_at (next_ep, old_pub, &h, "ops"));
    bus_client_destroy (&planner);
    bus_client_destroy (&writer);
    assert_int_equal (harness_run (&h, &out, "log", "--data", h.data, "--kind", "session", NULL),
                      0);
    //  writer said HELLO through the next key, planner did not.
    const char *at = strstr (out, "via the next bus key");
    assert_non_null (at);
    const char *line = at;
    while (line > out && line [-1] != '\n') {
        line--;
    }
    CHECK_CONTAINS (line, "writer");
    assert_null (strstr (at + 1, "via the next bus key"));
    free (out);
    assert_int_equal (harness_stop (&h, SIGTERM), 0);

    //  The end: the next key becomes the key, on its endpoint, alone.
    char key [400], pub [400];
    snprintf (key, sizeof key, "%s/bus.key", h.data);
    snprintf (pub, sizeof pub, "%s/bus.pub", h.data);
    assert_int_equal (rename (next_key, key), 0);
    assert_int_equal (rename (next_pub, pub), 0);
    h.extra [0] = NULL;
    snprintf (h.listen, sizeof h.listen, "%s", next_ep);
    assert_int_equal (harness_start (&h), 0);
    planner = s_connect_at (next_ep, pub, &h, "planner");
    assert_non_null (planner);
    bus_client_destroy (&planner);
    assert_null (s_connect_at (next_ep, old_pub, &h, "planner"));
    //  The options go together, and the next key is not the key itself.
    assert_int_equal (harness_stop (&h, SIGTERM), 0);
    assert_int_not_equal (harness_run (&h, &out, "serve", "--policy", h.policy, "--data", h.data,
                                       "--next-key", key, NULL), 0);
    CHECK_CONTAINS (out, "--next-key and --next-endpoint go together");
    free (out);
    h.extra [0] = "--next-key";
    h.extra [1] = key;
    h.extra [2] = "--next-endpoint";
    h.extra [3] = next_ep;
    assert_int_not_equal (harness_start (&h), 0);
    static char whole [1 << 16];
    FILE *log = fopen (h.log, "r");
    assert_non_null (log);
    n = fread (whole, 1, sizeof whole - 1, log);
    whole [n] = 0;
    fclose (log);
    CHECK_CONTAINS (whole, "is the bus's key itself, not a next one");
    h.extra [0] = NULL;
    assert_int_equal (harness_cleanup (&h), 0);
}

static void
test_policy_refuses_bad_dates_and_shared_next_key (void **state)
{
    (void) state;
    bus_policy_t *policy = NULL;
    bus_error_t err;
    const char *bad_date = "agents\n    a\n        key = \"KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n"
                           "        expires = next week\n";
    CHECK_FAIL (bus_policy_parse (&policy, bad_date, strlen (bad_date), "t.cfg", &err), err,
                BUS_EPOLICY);
    CHECK_CONTAINS (err.text, "t.cfg:4: expires of agent 'a' is not a date");
    const char *same = "agents\n    a\n        key = \"KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n"
                       "    b\n        key = \"8+9rBMLy0r%7k}rmciW{.JwUzMOyfNKOz8G{{q+C\"\n"
                       "        next_key = \"KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^\"\n";
    CHECK_FAIL (bus_policy_parse (&policy, same, strlen (same), "t.cfg", &err), err, BUS_EPOLICY);
    CHECK_CONTAINS (err.text, "has the same key as agent");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_expired_key_refused_at_handshake),
        cmocka_unit_test (test_key_expiring_live_is_cut_off),
        cmocka_unit_test (test_rotation_without_a_flag_day),
        cmocka_unit_test (test_policy_refuses_bad_dates_and_shared_next_key),
        cmocka_unit_test (test_bus_key_rotation),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
