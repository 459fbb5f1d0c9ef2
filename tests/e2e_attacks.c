/*  e2e_attacks.c: what an attacker tried on the new surfaces (a review of
    the console, audit and monitoring work), each a test over real sockets
    that failed before its fix.

    - A quarantined agent that also holds the operator role may not end its
      own quarantine (as nobody clears their own taint): RELEASE of itself
      must be refused, and its sends must stay held.
    - CONTROL_GET_CAUSES gives an approver what led to a hold (sender,
      recipient, class, action, restricted), not the payloads of records it
      was never sent: here yy -> xx is two hops back from planner's held
      payment, and neither planner nor the approver bob ever received it.
    - `bulkhead verify` reads a log someone may have edited: a record whose
      payload (or prev_hash, digest) field has the wrong wire type must be
      named as damaged (exit 1), not crash verify (NULL data in s_fields).
    - A quarantine survives a bus whose saved detector state is of another
      layout (an upgrade that changes a monitor table's size): the agent's
      sends must still be held after the restart.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"
#include "record.pb-c.h"
#include "logfix.h"

#include <lmdb.h>
#include <signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_policy =
    "classes\n"
    "    finance\n"
    "        approvers = bob\n"
    "agents\n"
    "    yy\n        key = @yy@\n"
    "    xx\n        key = @xx@\n"
    "    planner\n        key = @planner@\n"
    "    worker\n        key = @worker@\n"
    "    payments\n        key = @payments@\n        class = finance\n"
    "    bob\n        key = @bob@\n        role = approver\n"
    "    ops\n        key = @ops@\n        role = operator\n"
    "    opsbot\n        key = @opsbot@\n        role = agent, operator\n"
    "edges\n"
    "    yy\n"
    "        xx = message\n"
    "    xx\n"
    "        planner = message\n"
    "    planner\n"
    "        payments = finance\n"
    "    opsbot\n"
    "        worker = message\n";

static int
s_setup (void **state)
{
    return harness_fixture (state, s_policy);
}

static char s_key [512];
#define S_CLI(h, out, agent, ...) \
    (snprintf (s_key, sizeof s_key, "%s/%s.key", (h)->dir, (agent)), \
     harness_run ((h), (out), __VA_ARGS__, "--bus", (h)->endpoint, "--bus-key", (h)->bus_pub, \
                  "--key", s_key, NULL))

static uint64_t
s_send (bus_client_t *client, const char *to, const char *intent, const char *payload,
        const uint64_t *causes, size_t n_causes, const char *verdict, char *approval)
{
    Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
    send.recipient = (char *) to;
    send.intent = (char *) intent;
    send.justification = "as asked";
    send.has_payload = true;
    send.payload.data = (uint8_t *) payload;
    send.payload.len = strlen (payload);
    send.n_causes = n_causes;
    send.causes = (uint64_t *) causes;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_send (client, &send, &reply, 5000, &err), 0);
    if (strcmp (harness_code (reply), verdict) != 0) {
        fail_msg ("sent to %s: %s (%s), expected %s", to, harness_code (reply),
                  reply->body_case == BULKHEAD__V1__FRAME__BODY_ACK? reply->ack->reason: "-",
                  verdict);
    }
    uint64_t seq = reply->ack->seq;
    if (approval) {
        assert_non_null (reply->ack->approval_id);
        snprintf (approval, 32, "%s", reply->ack->approval_id);
    }
    bus_client_free (&reply);
    return seq;
}

static void
test_quarantined_operator_cannot_release_itself (void **state)
{
    harness_t *h = *state;
    char *out = NULL;
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "opsbot", "--reason", "alert"), 0);
    free (out);
    bus_client_t *opsbot = harness_agent (h, "opsbot");
    bus_client_t *worker = harness_agent (h, "worker");
    s_send (opsbot, "worker", "message", "rm -rf", NULL, 0, "held", NULL);
    //  Itself: must be refused (another operator must release it).
    int rc = S_CLI (h, &out, "opsbot", "release", "opsbot");
    if (rc == 0) {
        fail_msg ("a quarantined operator released itself: %s", out);
    }
    free (out);
    assert_null (harness_deliver (worker, 500));
    bus_client_destroy (&opsbot);
    bus_client_destroy (&worker);
}

static void
test_causes_carry_no_payloads (void **state)
{
    harness_t *h = *state;
    bus_client_t *yy = harness_agent (h, "yy");
    bus_client_t *xx = harness_agent (h, "xx");
    bus_client_t *planner = harness_agent (h, "planner");
    bus_client_t *bob = harness_agent (h, "bob");
    uint64_t s0 = s_send (yy, "xx", "message", "yy-to-xx-secret", NULL, 0, "delivered", NULL);
    uint64_t s1 = s_send (xx, "planner", "message", "xx-to-planner", &s0, 1, "delivered", NULL);
    char id [32];
    s_send (planner, "payments", "finance", "pay 10", &s1, 1, "held", id);

    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_GET_CAUSES;
    control.id = id;
    Bulkhead__V1__Frame *reply;
    bus_error_t err;
    assert_int_equal (bus_client_control (bob, &control, &reply, 5000, &err), 0);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_CONTROL_REPLY);
    const Bulkhead__V1__ControlReply *r = reply->control_reply;
    assert_string_equal (r->code, "OK");
    assert_int_equal (r->n_causes, 2);
    for (size_t i = 0; i < r->n_causes; i++) {
        Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, r->causes [i].len,
                                                                  r->causes [i].data);
        assert_non_null (rec);
        if (rec->has_payload) {
            fail_msg ("GET_CAUSES gave approver bob the payload of seq %llu (%s -> %s): \"%.*s\"",
                      (unsigned long long) rec->seq, rec->sender, rec->recipient,
                      (int) rec->payload.len, (const char *) rec->payload.data);
        }
        bulkhead__v1__record__free_unpacked (rec, NULL);
    }
    bus_client_free (&reply);
    bus_client_destroy (&yy);
    bus_client_destroy (&xx);
    bus_client_destroy (&planner);
    bus_client_destroy (&bob);
}

static void
test_verify_survives_wrong_wire_type (void **state)
{
    harness_t *h = *state;
    char data [600];
    snprintf (data, sizeof data, "%s/tampered", h->dir);
    assert_int_equal (logfix_v1 (data, 3), 0);
    //  seq = 3, then field 19 (payload) as a varint of 4096: no bytes.
    static const uint8_t rec [] = { 0x08, 0x03, 0x98, 0x01, 0x80, 0x20 };
    assert_int_equal (logfix_put (data, 3, rec, sizeof rec), 0);
    char *out = NULL;
    int rc = harness_run (h, &out, "verify", "--data", data, NULL);
    if (rc != 1) {
        fail_msg ("verify of a damaged record: exit %d (want 1, naming record 3): %s", rc,
                  out? out: "");
    }
    free (out);
}

//  Changes the monitor's saved state as another build's layout would be:
//  the first byte of its layout's struct sizes, right after the magic.
static int
s_other_layout (const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    if (mdb_env_create (&env) || mdb_env_set_maxdbs (env, 16)
    ||  mdb_env_open (env, dir, MDB_NOTLS, 0600)) {
        return -1;
    }
    int rc = -1;
    if (mdb_txn_begin (env, NULL, 0, &txn) == 0) {
        MDB_val k = { 5, (void *) "state" }, v;
        if (mdb_dbi_open (txn, "monitor", 0, &dbi) == 0 && mdb_get (txn, dbi, &k, &v) == 0
        &&  v.mv_size > 7) {
            uint8_t *copy = malloc (v.mv_size);
            memcpy (copy, v.mv_data, v.mv_size);
            copy [6] ^= 0x08;
            MDB_val nv = { v.mv_size, copy };
            rc = mdb_put (txn, dbi, &k, &nv, 0) == 0? 0: -1;
            free (copy);
        }
        rc = rc == 0 && mdb_txn_commit (txn) == 0? 0: (mdb_txn_abort (txn), -1);
    }
    mdb_env_close (env);
    return rc;
}

static void
test_quarantine_survives_other_layout (void **state)
{
    harness_t *h = *state;
    char *out = NULL;
    assert_int_equal (S_CLI (h, &out, "ops", "quarantine", "opsbot", "--reason", "alert"), 0);
    free (out);
    assert_int_equal (harness_stop (h, SIGTERM), 0);
    assert_int_equal (s_other_layout (h->data), 0);
    assert_int_equal (harness_start (h), 0);
    bus_client_t *opsbot = harness_agent (h, "opsbot");
    bus_client_t *worker = harness_agent (h, "worker");
    s_send (opsbot, "worker", "message", "rm -rf", NULL, 0, "held", NULL);
    bus_client_destroy (&opsbot);
    bus_client_destroy (&worker);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_quarantined_operator_cannot_release_itself, s_setup,
                                         harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_causes_carry_no_payloads, s_setup,
                                         harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_verify_survives_wrong_wire_type, s_setup,
                                         harness_fixture_end),
        cmocka_unit_test_setup_teardown (test_quarantine_survives_other_layout, s_setup,
                                         harness_fixture_end),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
