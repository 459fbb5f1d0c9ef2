/*  e2e_audit.c: the tamper-evident log (issue 14), against the real bus
    over real sockets with a real LMDB log and real signed checkpoints.

    One log is made by a real bus; each tampering case works on a copy of
    its data dir (or of its checkpoints), edited in LMDB as someone with the
    bus user's rights would (tests/support/logfix.h), and `bulkhead verify`
    must name what was done. Proofs are compared with an independent
    reference (tests/merkle_ref.py, Python's hashlib) and checked with
    `bulkhead prove --check`.
*/
#include "check.h"
#include "harness.h"
#include "bus_checkpoint.h"
#include "bus_merkle.h"
#include "bus_store.h"
#include "logfix.h"

#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *s_policy =
    "agents\n"
    "    planner\n        key = @planner@\n"
    "    writer\n        key = @writer@\n"
    "edges\n"
    "    planner\n"
    "        writer = message\n";

#define MESSAGES 40

typedef struct {
    harness_t h;
    char ckpt [400];        //  the checkpoints directory
    char key [400];         //  bus-a.sign.key
    char pub [400];         //  bus-a.sign.pub
    char work [400];        //  where copies go
} audit_t;

static void
s_paths (audit_t *a)
{
    snprintf (a->ckpt, sizeof a->ckpt, "%s/ckpt", a->h.dir);
    snprintf (a->key, sizeof a->key, "%s/bus-a.sign.key", a->h.dir);
    snprintf (a->pub, sizeof a->pub, "%s/bus-a.sign.pub", a->h.dir);
    snprintf (a->work, sizeof a->work, "%s/work", a->h.dir);
    mkdir (a->work, 0700);
}

static void
s_serve_args (audit_t *a, const char *key, const char *next_key, const char *every)
{
    memset (a->h.extra, 0, sizeof a->h.extra);
    int n = 0;
    a->h.extra [n++] = "--checkpoints";
    a->h.extra [n++] = a->ckpt;
    a->h.extra [n++] = "--sign-key";
    a->h.extra [n++] = key;
    if (next_key) {
        a->h.extra [n++] = "--next-sign-key";
        a->h.extra [n++] = next_key;
    }
    a->h.extra [n++] = "--checkpoint-every";
    a->h.extra [n++] = every;
}

static int
s_run (const char *cmd)
{
    int rc = system (cmd);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

//  Changes the first character after prefix on the first line of file
//  that starts with it (A, or B where it is A already), so the line is
//  always different, whatever it held. 0, or -1 with no such line.
static int
s_flip (const char *file, const char *prefix)
{
    FILE *f = fopen (file, "r+");
    if (!f) {
        return -1;
    }
    char line [1024];
    long at = 0;
    int rc = -1;
    size_t n = strlen (prefix);
    while (rc != 0 && fgets (line, sizeof line, f)) {
        if (strncmp (line, prefix, n) == 0 && line [n] && line [n] != '\n') {
            fseek (f, at + (long) n, SEEK_SET);
            fputc (line [n] == 'A'? 'B': 'A', f);
            rc = 0;
        }
        at = ftell (f);
    }
    fclose (f);
    return rc;
}

//  Sends n messages planner -> writer ("audit message I"), each acked.
static void
s_send (harness_t *h, int from, int n)
{
    bus_client_t *planner = harness_agent (h, "planner");
    for (int i = from; i < from + n; i++) {
        char id [32], payload [64];
        snprintf (id, sizeof id, "a-%d", i);
        snprintf (payload, sizeof payload, "audit message %d", i);
        Bulkhead__V1__Frame *reply = harness_send (planner, "writer", "message", payload, id);
        assert_non_null (reply);
        assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_ACK);
        assert_string_equal (reply->ack->code, "OK");
        //  The ACK names the record's leaf, for a later proof.
        assert_true (reply->ack->has_leaf);
        assert_int_equal (reply->ack->leaf, reply->ack->seq - 1);
        bus_client_free (&reply);
    }
    bus_client_destroy (&planner);
}

static int
s_group_setup (void **state)
{
    audit_t *a = calloc (1, sizeof *a);
    harness_init (&a->h);
    s_paths (a);
    if (harness_policy (&a->h, s_policy) != 0
    ||  harness_run (&a->h, NULL, "keygen", "bus-a", "--sign", "--dir", a->h.dir, NULL) != 0) {
        return -1;
    }
    s_serve_args (a, a->key, NULL, "10");
    if (harness_start (&a->h) != 0) {
        return -1;
    }
    *state = a;
    s_send (&a->h, 0, MESSAGES);
    return harness_stop (&a->h, SIGTERM) == 0? 0: -1;
}

static int
s_group_teardown (void **state)
{
    audit_t *a = *state;
    int rc = harness_cleanup (&a->h);
    free (a);
    return rc;
}

//  A fresh copy of the data dir (or of the checkpoints) under work/NAME.
static const char *
s_copy (audit_t *a, const char *from, const char *name)
{
    static char path [600];
    char cmd [1500];
    snprintf (path, sizeof path, "%s/%s", a->work, name);
    snprintf (cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", path, from, path);
    assert_int_equal (s_run (cmd), 0);
    return path;
}

//  bulkhead verify on data (and ckpt, with the given keys): exit code, and
//  the output in *out (caller frees).
static int
s_verify (audit_t *a, const char *data, const char *ckpt, const char *pub, const char *pub2,
          char **out)
{
    if (!ckpt) {
        return harness_run (&a->h, out, "verify", "--data", data, NULL);
    }
    if (pub2) {
        return harness_run (&a->h, out, "verify", "--data", data, "--checkpoints", ckpt,
                            "--pub", pub, "--pub", pub2, NULL);
    }
    return harness_run (&a->h, out, "verify", "--data", data, "--checkpoints", ckpt, "--pub",
                        pub, NULL);
}

static void
s_expect_bad (audit_t *a, const char *data, const char *ckpt, const char *needle)
{
    char *out = NULL;
    int rc = s_verify (a, data, ckpt, a->pub, NULL, &out);
    if (rc != 1 || !strstr (out, needle)) {
        fail_msg ("verify exit %d, want 1 and \"%s\": %s", rc, needle, out);
    }
    free (out);
}

static void
s_expect_ok (audit_t *a, const char *data, const char *ckpt, const char *needle)
{
    char *out = NULL;
    int rc = s_verify (a, data, ckpt, a->pub, NULL, &out);
    if (rc != 0 || (needle && !strstr (out, needle))) {
        fail_msg ("verify exit %d, want 0 and \"%s\": %s", rc, needle? needle: "", out);
    }
    free (out);
}

//  The size a checkpoint covers, from its file.
static uint64_t
s_ckpt_size (const char *dir, uint64_t number)
{
    char *note;
    size_t len;
    bus_error_t err;
    assert_int_equal (bus_checkpoint_read (dir, number, &note, &len, &err), 0);
    const char *line = strchr (note, '\n');
    uint64_t size = strtoull (line + 1, NULL, 10);
    free (note);
    return size;
}

static uint64_t
s_ckpt_last (const char *dir)
{
    uint64_t last = 0;
    bus_error_t err;
    CHECK_PASS (bus_checkpoint_last (dir, &last, &err), err);
    return last;
}

//  The seq of the last record whose payload holds text, searching down.
static uint64_t
s_find (const char *data, const char *text)
{
    for (uint64_t seq = logfix_last (data); seq > 0; seq--) {
        uint8_t *raw;
        size_t len;
        assert_int_equal (logfix_get (data, seq, &raw, &len), 0);
        bool hit = memmem (raw, len, text, strlen (text)) != NULL;
        free (raw);
        if (hit) {
            return seq;
        }
    }
    fail_msg ("no record holds %s", text);
    return 0;
}

//  Changes one byte of text in record seq (in place, same length).
static void
s_edit (const char *data, uint64_t seq, const char *text)
{
    uint8_t *raw;
    size_t len;
    assert_int_equal (logfix_get (data, seq, &raw, &len), 0);
    uint8_t *at = memmem (raw, len, text, strlen (text));
    assert_non_null (at);
    at [0] ^= 0x20;                             //  'a' -> 'A'
    assert_int_equal (logfix_put (data, seq, raw, len), 0);
    free (raw);
}


//  --------------------------------------------------------------------------

static void
test_intact_copy (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "intact");
    //  The clean stop's checkpoint anchors all but its own record.
    uint64_t last = logfix_last (data);
    uint64_t anchored = s_ckpt_size (a->ckpt, s_ckpt_last (a->ckpt));
    assert_int_equal (anchored, last - 1);
    char needle [100];
    snprintf (needle, sizeof needle, "records %" PRIu64 "..%" PRIu64 " (1) are not yet anchored",
              last, last);
    s_expect_ok (a, data, a->ckpt, needle);
    s_expect_ok (a, data, a->ckpt, "anchors records 1..");
    //  Every N records (10) and at start and stop: more than a few.
    assert_true (s_ckpt_last (a->ckpt) >= last / 10);
    //  Without checkpoints, it says what it cannot see.
    s_expect_ok (a, data, NULL, "this cannot detect a cut tail");
    //  Each checkpoint is a record of the log too.
    char *out = NULL;
    assert_int_equal (harness_run (&a->h, &out, "log", "--data", data, "--kind", "checkpoint",
                                   NULL), 0);
    CHECK_CONTAINS (out, " checkpoint checkpoint 1 signed");
    free (out);
}

static void
test_cut_tail (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "cut");
    uint64_t last = logfix_last (data);
    for (uint64_t seq = last - 5; seq <= last; seq++) {
        assert_int_equal (logfix_put (data, seq, NULL, 0), 0);
    }
    //  The chain alone cannot see it ...
    s_expect_ok (a, data, NULL, "ok");
    //  ... the checkpoints can.
    s_expect_bad (a, data, a->ckpt, "its tail was cut");
}

//  What `bulkhead purge` does to an old record (drop field 19, set field
//  42), done by hand: the tree and every checkpoint still match (the leaf
//  hash leaves the payload out, so that a purge keeps them), but no purge
//  record follows it, so verify names the record as stripped. (A real
//  purge verifies: tests/query.test.sh.)
static void
test_stripped_payload_is_not_a_purge (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "purged");
    uint64_t seq = s_find (data, "audit message 5");
    assert_int_equal (logfix_strip (data, seq, 257), 0);
    char needle [160];
    snprintf (needle, sizeof needle, "record %" PRIu64 ": its payload is gone, marked purged at ",
              seq);
    s_expect_bad (a, data, a->ckpt, needle);
    s_expect_bad (a, data, a->ckpt, "no purge in the log after it covers it (1 such payloads): "
                  "the payload was stripped, not purged");
    s_expect_bad (a, data, NULL, "the payload was stripped, not purged");
}

//  The same strip without the purge mark (field 19 dropped, no field 42):
//  the leaf hash leaves the payload out, so the tree and every checkpoint
//  still match. A message the bus carried (delivered, queued or held) with
//  a payload of some size keeps it or is marked purged; one with neither
//  was stripped. (A refused message keeps no payload by design.)
static void
test_stripped_payload_unmarked (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "stripped-unmarked");
    uint64_t seq = s_find (data, "audit message 6");
    assert_int_equal (logfix_strip (data, seq, 0), 0);
    char needle [160];
    snprintf (needle, sizeof needle, "record %" PRIu64 ": its payload is gone", seq);
    s_expect_bad (a, data, a->ckpt, needle);
    s_expect_bad (a, data, NULL, needle);
}

static void
test_rechained_edit (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "rechained");
    uint64_t seq = s_find (data, "audit message 3");
    s_edit (data, seq, "audit message 3");
    assert_int_equal (logfix_rechain (data, seq), 0);
    s_expect_ok (a, data, NULL, "hash chain intact");
    s_expect_bad (a, data, a->ckpt, "the log does not match checkpoint");
}

static void
test_newest_record_edit (void **state)
{
    audit_t *a = *state;
    char text [40];
    snprintf (text, sizeof text, "audit message %d", MESSAGES - 1);
    const char *data = s_copy (a, a->h.data, "newest");
    uint64_t seq = s_find (data, text);
    s_edit (data, seq, text);
    char needle [100];
    snprintf (needle, sizeof needle, "record %" PRIu64 ": its payload does not match", seq);
    s_expect_bad (a, data, NULL, needle);
    s_expect_bad (a, data, a->ckpt, needle);
}

static void
test_reordered (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "swapped");
    uint8_t *r7, *r8;
    size_t l7, l8;
    assert_int_equal (logfix_get (data, 7, &r7, &l7), 0);
    assert_int_equal (logfix_get (data, 8, &r8, &l8), 0);
    assert_int_equal (logfix_put (data, 7, r8, l8), 0);
    assert_int_equal (logfix_put (data, 8, r7, l7), 0);
    free (r7);
    free (r8);
    s_expect_bad (a, data, a->ckpt, "record 7 says it is record 8: records were reordered");
    //  Renumbered and re-chained after the swap: only the checkpoints see it.
    assert_int_equal (logfix_rechain (data, 7), 0);
    s_expect_ok (a, data, NULL, "hash chain intact");
    s_expect_bad (a, data, a->ckpt, "the log does not match checkpoint");
}

static void
test_deleted_record (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "deleted");
    assert_int_equal (logfix_put (data, 9, NULL, 0), 0);
    s_expect_bad (a, data, NULL, "record 9 is missing");
    //  Deleted, the rest renumbered and re-chained.
    assert_int_equal (logfix_rechain (data, 9), 0);
    s_expect_ok (a, data, NULL, "hash chain intact");
    s_expect_bad (a, data, a->ckpt, "the log does not match checkpoint");
}

static void
test_forged_checkpoint (void **state)
{
    audit_t *a = *state;
    //  A body changed after signing.
    const char *ckpt = s_copy (a, a->ckpt, "forged");
    char path [700], cmd [1500];
    snprintf (path, sizeof path, "%s/%020d.ckpt", ckpt, 3);
    snprintf (cmd, sizeof cmd, "sed -i '4s/^time 1/time 2/' '%s'", path);
    assert_int_equal (s_run (cmd), 0);
    s_expect_bad (a, a->h.data, ckpt, "checkpoint 3: checkpoint 3 carries no valid signature");

    //  A whole checkpoint made by someone with another key of the same name.
    ckpt = s_copy (a, a->ckpt, "forged2");
    uint64_t last = s_ckpt_last (ckpt);
    char *note;
    size_t len;
    bus_error_t err;
    bus_checkpoint_t c;
    uint8_t digest [32];
    assert_int_equal (bus_checkpoint_read (ckpt, last, &note, &len, &err), 0);
    assert_int_equal (bus_checkpoint_open (&c, note, len, NULL, 0, NULL, digest, &err), -1);
    free (note);
    bus_signer_t mallory;
    CHECK_PASS (bus_signer_generate (&mallory, "bus-a", &err), err);
    c.size -= 3;
    char *fake = bus_checkpoint_sign (&c, &mallory, 1, digest, &err);
    assert_non_null (fake);
    snprintf (path, sizeof path, "%s/%020" PRIu64 ".ckpt", ckpt, last);
    unlink (path);
    CHECK_PASS (bus_checkpoint_write (ckpt, last, fake, &err), err);
    free (fake);
    char needle [100];
    snprintf (needle, sizeof needle, "checkpoint %" PRIu64 " carries no valid signature", last);
    s_expect_bad (a, a->h.data, ckpt, needle);
}

static void
test_replayed_and_deleted_checkpoints (void **state)
{
    audit_t *a = *state;
    uint64_t last = s_ckpt_last (a->ckpt);
    char cmd [1500];
    //  An old checkpoint copied in as the next one (a replay).
    const char *ckpt = s_copy (a, a->ckpt, "replayed");
    snprintf (cmd, sizeof cmd, "cp '%s/%020d.ckpt' '%s/%020" PRIu64 ".ckpt'", ckpt, 2, ckpt,
              last + 1);
    assert_int_equal (s_run (cmd), 0);
    char needle [120];
    snprintf (needle, sizeof needle, "checkpoint %" PRIu64 ": its body says another number",
              last + 1);
    s_expect_bad (a, a->h.data, ckpt, needle);

    //  One from the middle deleted.
    ckpt = s_copy (a, a->ckpt, "gap");
    snprintf (cmd, sizeof cmd, "rm '%s/%020d.ckpt'", ckpt, 3);
    assert_int_equal (s_run (cmd), 0);
    s_expect_bad (a, a->h.data, ckpt, "checkpoint 3 is missing");

    //  The newest deleted along with the tail it anchored: the log itself
    //  says that checkpoint was written.
    ckpt = s_copy (a, a->ckpt, "newest-gone");
    snprintf (cmd, sizeof cmd, "rm '%s/%020" PRIu64 ".ckpt'", ckpt, last);
    assert_int_equal (s_run (cmd), 0);
    snprintf (needle, sizeof needle, "logs checkpoint %" PRIu64 ", which is not in the "
              "checkpoints directory", last);
    s_expect_bad (a, a->h.data, ckpt, needle);

    //  Every one deleted: the log still names them.
    ckpt = s_copy (a, a->ckpt, "all-gone");
    snprintf (cmd, sizeof cmd, "rm '%s'/*.ckpt", ckpt);
    assert_int_equal (s_run (cmd), 0);
    s_expect_bad (a, a->h.data, ckpt, "logs checkpoint 1, which is not in the checkpoints");
}

//  Runs prove ARGS into work/proof.txt, the Python reference on it, and
//  prove --check; all must agree it holds.
static void
s_proof_ok (audit_t *a, const char *what, const char *arg1, const char *arg2)
{
    char *out = NULL;
    int rc = arg2? harness_run (&a->h, &out, "prove", "--consistency", arg1, arg2, "--data",
                                a->h.data, "--checkpoints", a->ckpt, NULL)
                 : harness_run (&a->h, &out, "prove", arg1, "--data", a->h.data,
                                "--checkpoints", a->ckpt, NULL);
    if (rc != 0) {
        fail_msg ("prove %s: exit %d: %s", what, rc, out);
    }
    char proof [600], records [600], cmd [2000];
    snprintf (proof, sizeof proof, "%s/proof.txt", a->work);
    snprintf (records, sizeof records, "%s/records.txt", a->work);
    FILE *file = fopen (proof, "w");
    fputs (out, file);
    fclose (file);
    free (out);
    assert_int_equal (logfix_dump (a->h.data, records), 0);
    snprintf (cmd, sizeof cmd, "/usr/bin/python3 tests/merkle_ref.py '%s' '%s' > '%s/ref.out' "
              "2>&1", records, proof, a->work);
    if (s_run (cmd) != 0) {
        snprintf (cmd, sizeof cmd, "cat '%s/ref.out' >&2", a->work);
        s_run (cmd);
        fail_msg ("the reference disagrees with prove %s", what);
    }
    rc = harness_run (&a->h, &out, "prove", "--check", proof, "--pub", a->pub, NULL);
    if (rc != 0 || !strstr (out, ": ok: ")) {
        fail_msg ("prove --check %s: exit %d: %s", what, rc, out);
    }
    free (out);
}

static void
test_proofs_against_reference (void **state)
{
    audit_t *a = *state;
    uint64_t last = s_ckpt_last (a->ckpt);
    uint64_t size = s_ckpt_size (a->ckpt, last);
    char n [32], m [32];
    uint64_t seqs [] = { 1, 2, 3, 16, 17, size / 2, size - 1, size };
    for (size_t i = 0; i < sizeof seqs / sizeof seqs [0]; i++) {
        snprintf (n, sizeof n, "%" PRIu64, seqs [i]);
        s_proof_ok (a, n, n, NULL);
    }
    uint64_t pairs [][2] = { { 1, last }, { 2, 3 }, { 3, last }, { last - 1, last }, { 2, 2 } };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs [0]; i++) {
        snprintf (n, sizeof n, "%" PRIu64, pairs [i][0]);
        snprintf (m, sizeof m, "%" PRIu64, pairs [i][1]);
        s_proof_ok (a, "--consistency", n, m);
    }
    //  The last proof (consistency) with a path hash changed; then an
    //  inclusion proof of a record whose bytes were changed.
    char proof [600], cmd [1500];
    snprintf (proof, sizeof proof, "%s/proof.txt", a->work);
    s_proof_ok (a, "--consistency", "1", m);
    //  (A sed that set the first character to A changed nothing when it
    //  was A already: one run in 64 passed a proof it had not altered.)
    assert_int_equal (s_flip (proof, "path "), 0);
    char *out = NULL;
    assert_int_equal (harness_run (&a->h, &out, "prove", "--check", proof, "--pub", a->pub, NULL),
                      1);
    CHECK_CONTAINS (out, "does NOT hold");
    free (out);
    s_proof_ok (a, "17", "17", NULL);
    snprintf (cmd, sizeof cmd, "sed -i 's/^record CBE/record CBI/' '%s'", proof);
    assert_int_equal (s_run (cmd), 0);
    assert_int_equal (harness_run (&a->h, &out, "prove", "--check", proof, "--pub", a->pub, NULL),
                      1);
    CHECK_CONTAINS (out, "does NOT hold");
    free (out);
    //  A record no checkpoint covers yet.
    snprintf (n, sizeof n, "%" PRIu64, size + 1);
    assert_int_equal (harness_run (&a->h, &out, "prove", n, "--data", a->h.data, "--checkpoints",
                                   a->ckpt, NULL), 1);
    CHECK_CONTAINS (out, "a later checkpoint will cover it");
    free (out);
}

//  Restart on the same data and checkpoints (the numbering goes on), back
//  up while it runs, and check the restored copy against the checkpoints.
static void
test_backup_of_live_bus (void **state)
{
    audit_t *a = *state;
    uint64_t before = s_ckpt_last (a->ckpt);
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, MESSAGES, 15);
    char backup [600];
    snprintf (backup, sizeof backup, "%s/backup", a->work);
    char *out = NULL;
    int rc = harness_run (&a->h, &out, "backup", "--data", a->h.data, backup, NULL);
    if (rc != 0) {
        fail_msg ("backup: %s", out);
    }
    free (out);
    //  Never over an existing backup.
    assert_int_equal (harness_run (&a->h, &out, "backup", "--data", a->h.data, backup, NULL), 1);
    CHECK_CONTAINS (out, "already holds a log");
    free (out);
    s_send (&a->h, MESSAGES + 15, 5);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    assert_true (s_ckpt_last (a->ckpt) > before);
    //  Checked as what it is, a copy older than the checkpoints since.
    s_expect_bad (a, backup, a->ckpt, "its tail was cut");
    rc = harness_run (&a->h, &out, "verify", "--data", backup, "--checkpoints", a->ckpt, "--pub",
                      a->pub, "--backup", NULL);
    if (rc != 0 || !strstr (out, "a backup: ") || !strstr (out, "matches")) {
        fail_msg ("verify --backup: exit %d: %s", rc, out);
    }
    free (out);
    //  A backup edited is no backup.
    uint64_t seq = s_find (backup, "audit message 50");
    s_edit (backup, seq, "audit message 50");
    assert_int_equal (logfix_rechain (backup, seq), 0);
    assert_int_equal (harness_run (&a->h, &out, "verify", "--data", backup, "--checkpoints",
                                   a->ckpt, "--pub", a->pub, "--backup", NULL), 1);
    CHECK_CONTAINS (out, "does not match checkpoint");
    free (out);
    s_expect_ok (a, a->h.data, a->ckpt, "matches");
}


//  --------------------------------------------------------------------------
//  Runs of their own

static int
s_setup_own (void **state)
{
    audit_t *a = calloc (1, sizeof *a);
    harness_init (&a->h);
    s_paths (a);
    if (harness_policy (&a->h, s_policy) != 0
    ||  harness_run (&a->h, NULL, "keygen", "bus-a", "--sign", "--dir", a->h.dir, NULL) != 0) {
        return -1;
    }
    *state = a;
    return 0;
}

//  A checkpoint that cannot be written stops the bus delivering, as a log
//  write that fails does.
static void
test_checkpoint_write_fails_closed (void **state)
{
    audit_t *a = *state;
    s_serve_args (a, a->key, NULL, "1000000");
    a->h.extra [6] = "--checkpoint-secs";
    a->h.extra [7] = "1";
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, 0, 3);
    //  Connected first: within a second the bus refuses even a HELLO.
    bus_client_t *planner = harness_agent (&a->h, "planner");
    char cmd [1500];
    snprintf (cmd, sizeof cmd, "mv '%s' '%s.gone' && touch '%s'", a->ckpt, a->ckpt, a->ckpt);
    assert_int_equal (s_run (cmd), 0);
    Bulkhead__V1__Frame *reply = NULL;
    //  Within a few checkpoint periods the bus fails closed.
    for (int i = 0; i < 40; i++) {
        char id [16];
        snprintf (id, sizeof id, "f-%d", i);
        reply = harness_send (planner, "writer", "message", "after", id);
        if (reply && reply->body_case == BULKHEAD__V1__FRAME__BODY_ERROR) {
            break;
        }
        bus_client_free (&reply);
        struct timespec tick = { 0, 100 * 1000 * 1000 };
        nanosleep (&tick, NULL);
    }
    assert_non_null (reply);
    assert_int_equal (reply->body_case, BULKHEAD__V1__FRAME__BODY_ERROR);
    assert_string_equal (reply->error->code, "LOGFAIL");
    CHECK_CONTAINS (reply->error->reason, "cannot be written");
    bus_client_free (&reply);
    bus_client_destroy (&planner);
    harness_stop (&a->h, SIGTERM);
    //  Nothing acknowledged was lost; what the old directory anchors holds.
    snprintf (cmd, sizeof cmd, "rm '%s' && mv '%s.gone' '%s'", a->ckpt, a->ckpt, a->ckpt);
    assert_int_equal (s_run (cmd), 0);
    s_expect_ok (a, a->h.data, a->ckpt, "matches");
}

//  The signing key rotates with an overlap: A alone, A and B together,
//  B alone; a verifier with both public keys accepts every checkpoint.
static void
test_signing_key_rotation (void **state)
{
    audit_t *a = *state;
    char key_b [400], pub_b [400];
    snprintf (key_b, sizeof key_b, "%s/bus-b.sign.key", a->h.dir);
    snprintf (pub_b, sizeof pub_b, "%s/bus-b.sign.pub", a->h.dir);
    assert_int_equal (harness_run (&a->h, NULL, "keygen", "bus-b", "--sign", "--dir", a->h.dir,
                                   NULL), 0);
    s_serve_args (a, a->key, NULL, "5");
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, 0, 4);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    uint64_t only_a = s_ckpt_last (a->ckpt);

    s_serve_args (a, a->key, key_b, "5");
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, 4, 4);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    uint64_t both = s_ckpt_last (a->ckpt);
    char *note;
    size_t len;
    bus_error_t err;
    assert_int_equal (bus_checkpoint_read (a->ckpt, both, &note, &len, &err), 0);
    CHECK_CONTAINS (note, "\xe2\x80\x94 bus-a ");
    CHECK_CONTAINS (note, "\xe2\x80\x94 bus-b ");
    free (note);

    s_serve_args (a, key_b, NULL, "5");
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, 8, 4);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    assert_true (s_ckpt_last (a->ckpt) > both);

    char *out = NULL;
    assert_int_equal (s_verify (a, a->h.data, a->ckpt, a->pub, pub_b, &out), 0);
    CHECK_CONTAINS (out, "signed by bus-b");
    free (out);
    //  One key alone does not cover the other's checkpoints.
    char needle [100];
    snprintf (needle, sizeof needle, "checkpoint %" PRIu64 ": checkpoint %" PRIu64
              " carries no valid signature", both + 1, both + 1);
    assert_int_equal (s_verify (a, a->h.data, a->ckpt, a->pub, NULL, &out), 1);
    CHECK_CONTAINS (out, needle);
    free (out);
    assert_int_equal (s_verify (a, a->h.data, a->ckpt, pub_b, NULL, &out), 1);
    CHECK_CONTAINS (out, "checkpoint 1: checkpoint 1 carries no valid signature");
    free (out);
    assert_true (only_a >= 1);
}

//  A data dir as main made it before this change (format 1) is upgraded
//  by migrate, and by serve at start; an unknown format is refused.
static void
test_format_1_upgraded (void **state)
{
    audit_t *a = *state;
    char old [600];
    snprintf (old, sizeof old, "%s/old", a->work);
    assert_int_equal (logfix_v1 (old, 30), 0);
    char *out = NULL;
    assert_int_equal (harness_run (&a->h, &out, "verify", "--data", old, NULL), 0);
    free (out);
    assert_int_equal (harness_run (&a->h, &out, "migrate", "--data", old, NULL), 0);
    CHECK_CONTAINS (out, "upgraded from format 1 to 2: Merkle tree over records 1..30");
    free (out);
    assert_int_equal (harness_run (&a->h, &out, "migrate", "--data", old, NULL), 0);
    CHECK_CONTAINS (out, "already format 2");
    free (out);
    assert_int_equal (harness_run (&a->h, &out, "verify", "--data", old, NULL), 0);
    free (out);

    //  serve upgrades at start, logs that it did, and its checkpoints
    //  anchor the old records too.
    assert_int_equal (logfix_v1 (a->h.data, 25), 0);
    s_serve_args (a, a->key, NULL, "10");
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, 0, 5);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    assert_int_equal (harness_run (&a->h, &out, "log", "--data", a->h.data, NULL), 0);
    CHECK_CONTAINS (out, "data dir upgraded from format 1 to 2");
    free (out);
    s_expect_ok (a, a->h.data, a->ckpt, "matches");
    s_proof_ok (a, "a format 1 record", "7", NULL);

    assert_int_equal (logfix_meta (a->h.data, "format", "7"), 0);
    assert_int_equal (harness_start (&a->h), -1);
    snprintf (old, sizeof old, "grep -q \"format '7' is unknown to this bulkhead\" '%s'",
              a->h.log);
    assert_int_equal (s_run (old), 0);
}

//  purge in a data dir upgraded from format 1: the records from before the
//  upgrade are chained by their stored bytes (verify checks that chain up
//  to chain_from), so purge leaves their payloads and says so; the others
//  go, and the log still verifies.
static int
s_setup_purge (void **state)
{
    return harness_fixture (state, "agents\n"
                            "    planner\n        key = @planner@\n"
                            "    writer\n        key = @writer@\n"
                            "    ops\n        key = @ops@\n        role = operator\n"
                            "edges\n"
                            "    planner\n        writer = message\n");
}

static int
s_teardown_purge (void **state)
{
    return harness_fixture_end (state);
}

static void
test_purge_after_upgrade (void **state)
{
    harness_t *hp = *state;
#define h (*hp)
    assert_int_equal (harness_stop (&h, SIGTERM), 0);
    char cmd [700];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", h.data);
    assert_int_equal (s_run (cmd), 0);
    assert_int_equal (logfix_v1 (h.data, 10), 0);
    assert_int_equal (harness_start (&h), 0);
    s_send (&h, 0, 3);
    bus_client_t *writer = harness_agent (&h, "writer");
    //  logfix_v1's records are past writer's cursor already; the 3 new come.
    uint64_t last = 0;
    for (int i = 0; i < 3; i++) {
        Bulkhead__V1__Frame *d = harness_deliver (writer, 5000);
        assert_non_null (d);
        last = d->deliver->seq;
        bus_client_free (&d);
    }
    bus_error_t err;
    assert_int_equal (bus_client_ack (writer, last, &err), 0);
    //  A round trip on the same connection: the ACK is taken before it.
    Bulkhead__V1__Control control = BULKHEAD__V1__CONTROL__INIT;
    control.op = BULKHEAD__V1__CONTROL_OP__CONTROL_LIST_TAINT;
    Bulkhead__V1__Frame *reply = NULL;
    assert_int_equal (bus_client_control (writer, &control, &reply, 5000, &err), 0);
    bus_client_free (&reply);
    bus_client_destroy (&writer);
    char key [600], *out = NULL;
    snprintf (key, sizeof key, "%s/ops.key", h.dir);
    assert_int_equal (harness_run (&h, &out, "purge", "--before", "0s", "--bus", h.endpoint,
                                   "--bus-key", h.bus_pub, "--key", key, NULL), 0);
    CHECK_CONTAINS (out, "purged 3 payloads");
    CHECK_CONTAINS (out, "records 1..10 were written before the data dir's upgrade to format 2");
    free (out);
    assert_int_equal (harness_stop (&h, SIGTERM), 0);
    harness_verify (&h);
    assert_int_equal (harness_run (&h, &out, "verify", "--data", h.data, NULL), 0);
    CHECK_CONTAINS (out, "3 purged");
    free (out);
#undef h
}

//  verify beside a bus that writes a checkpoint after every commit: what
//  the bus writes meanwhile is never taken for tampering.
static void
test_verify_beside_live_bus (void **state)
{
    audit_t *a = *state;
    s_serve_args (a, a->key, NULL, "1");
    assert_int_equal (harness_start (&a->h), 0);
    bus_client_t *planner = harness_agent (&a->h, "planner");
    bus_error_t err;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 500; i++) {
            char id [32];
            snprintf (id, sizeof id, "live-%d-%d", round, i);
            Bulkhead__V1__Send send = BULKHEAD__V1__SEND__INIT;
            send.recipient = "writer";
            send.intent = "message";
            send.message_id = id;
            send.has_payload = true;
            send.payload.data = (uint8_t *) "streaming";
            send.payload.len = 9;
            CHECK_PASS (bus_client_post (planner, &send, &err), err);
        }
        char *out = NULL;
        int rc = s_verify (a, a->h.data, a->ckpt, a->pub, NULL, &out);
        if (rc != 0) {
            fail_msg ("verify beside the live bus, round %d: %s", round, out);
        }
        free (out);
    }
    bus_client_destroy (&planner);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    assert_true (s_ckpt_last (a->ckpt) > 4);
    s_expect_ok (a, a->h.data, a->ckpt, "matches");
}

//  A bus whose log is shorter than its last checkpoint refuses to go on
//  from it: someone cut the log, or restored an older copy over it.
static void
test_cut_log_refused_at_start (void **state)
{
    audit_t *a = *state;
    s_serve_args (a, a->key, NULL, "10");
    assert_int_equal (harness_start (&a->h), 0);
    s_send (&a->h, 0, 5);
    assert_int_equal (harness_stop (&a->h, SIGTERM), 0);
    uint64_t last = logfix_last (a->h.data);
    for (uint64_t seq = last - 2; seq <= last; seq++) {
        assert_int_equal (logfix_put (a->h.data, seq, NULL, 0), 0);
    }
    //  Cut naively, the tree kept with the log no longer fits it.
    assert_int_equal (harness_start (&a->h), -1);
    char cmd [1500];
    snprintf (cmd, sizeof cmd, "grep -q 'records were removed or added outside the bus' '%s'",
              a->h.log);
    assert_int_equal (s_run (cmd), 0);
    //  Cut with the tree recomputed: the last checkpoint still knows.
    assert_int_equal (logfix_rechain (a->h.data, last), 0);
    if (harness_start (&a->h) != -1) {
        snprintf (cmd, sizeof cmd, "cat '%s' >&2; ls -la '%s' >&2", a->h.log, a->ckpt);
        s_run (cmd);
        fail ();
    }
    snprintf (cmd, sizeof cmd, "grep -q 'the log was cut or restored from an older copy' '%s'",
              a->h.log);
    assert_int_equal (s_run (cmd), 0);
}

//  The signing key must be private and, with the checkpoints, outside the
//  data dir.
static void
test_key_and_directory_refused (void **state)
{
    audit_t *a = *state;
    chmod (a->key, 0640);
    s_serve_args (a, a->key, NULL, "10");
    assert_int_equal (harness_start (&a->h), -1);
    char cmd [1500];
    snprintf (cmd, sizeof cmd, "grep -q 'chmod 600' '%s'", a->h.log);
    assert_int_equal (s_run (cmd), 0);
    chmod (a->key, 0600);

    char inside [600];
    snprintf (inside, sizeof inside, "%s/ckpt", a->h.data);
    mkdir (a->h.data, 0700);
    mkdir (inside, 0755);
    s_serve_args (a, a->key, NULL, "10");
    a->h.extra [1] = inside;
    assert_int_equal (harness_start (&a->h), -1);
    snprintf (cmd, sizeof cmd, "grep -q 'is inside the data dir' '%s'", a->h.log);
    assert_int_equal (s_run (cmd), 0);
}


//  --------------------------------------------------------------------------
//  Across verify's batches

//  verify hashes the log in batches of 8192 records (S_BATCH in
//  cmd_audit.c) on several threads and checks them in order. This log
//  spans three batches; it is written through the store (as the bus does,
//  only faster), and the checkpoints are signed here, at sizes on and
//  beside the batch edges, with roots from the leaves one by one.
#define BATCH   8192
#define BIG     (2 * BATCH + 300)

static const uint64_t s_sizes [] = {
    1, 4000, BATCH - 1, BATCH, BATCH + 1, 12000, 2 * BATCH - 1, 2 * BATCH, 2 * BATCH + 1, BIG - 1
};
#define SIZES (sizeof s_sizes / sizeof s_sizes [0])

static uint8_t s_big_leaves [BIG][32];

static int
s_big_leaf (void *arg, uint64_t seq, const uint8_t *raw, size_t raw_len)
{
    (void) arg;
    if (!raw) {
        return 0;
    }
    return seq >= 1 && seq <= BIG && bus_record_leaf_hash (raw, raw_len, s_big_leaves [seq - 1]) == 0
        ? 0: -1;
}

//  The root of the first n records, leaf by leaf, in base64.
static void
s_big_root (uint64_t n, char out [48])
{
    bus_tree_t tree;
    bus_tree_init (&tree);
    for (uint64_t i = 0; i < n; i++) {
        bus_tree_append (&tree, s_big_leaves [i]);
    }
    uint8_t root [32];
    bus_tree_root (&tree, root);
    sodium_bin2base64 (out, 48, root, 32, sodium_base64_VARIANT_ORIGINAL);
}

static int
s_setup_batches (void **state)
{
    if (s_setup_own (state) != 0) {
        return -1;
    }
    audit_t *a = *state;
    bus_store_t *store;
    bus_error_t err;
    bus_store_options_t options = { 0 };
    if (bus_store_open (&store, a->h.data, &options, &err) != 0) {
        return -1;
    }
    int rc = 0;
    for (int i = 1; rc == 0 && i <= BIG; i++) {
        char id [32], payload [200];
        snprintf (id, sizeof id, "id-%d", i);
        snprintf (payload, sizeof payload, "payload %d, long enough to be a few blocks of the "
                  "hash and to make pages of only a few records each %d", i, i);
        uint8_t digest [32];
        Bulkhead__V1__Record rec;
        logfix_send (&rec, id, payload, digest, BULKHEAD__V1__VERDICT__VERDICT_DELIVERED);
        rc = bus_store_append (store, &rec, &err);
        if (rc == 0 && (i % 1000 == 0 || i == BIG)) {
            rc = bus_store_commit (store, &err);
        }
    }
    if (rc == 0) {
        rc = bus_store_scan (store, 1, s_big_leaf, NULL, &err) == 0? 0: -1;
    }
    bus_store_destroy (&store);
    bus_signer_t signer;
    if (rc != 0 || bus_signer_load (&signer, a->key, true, &err) != 0) {
        return -1;
    }
    mkdir (a->ckpt, 0700);
    uint8_t prev [32] = { 0 };
    for (size_t k = 0; rc == 0 && k < SIZES; k++) {
        bus_tree_t tree;
        bus_tree_init (&tree);
        for (uint64_t i = 0; i < s_sizes [k]; i++) {
            bus_tree_append (&tree, s_big_leaves [i]);
        }
        bus_checkpoint_t c = { .size = s_sizes [k], .time_us = 1764633600000000ULL + k,
                               .number = k + 1 };
        snprintf (c.origin, sizeof c.origin, "bulkhead/batches");
        snprintf (c.policy, sizeof c.policy, "%064d", 0);
        bus_tree_root (&tree, c.root);
        memcpy (c.prev, prev, 32);
        char *note = bus_checkpoint_sign (&c, &signer, 1, prev, &err);
        rc = note && bus_checkpoint_write (a->ckpt, k + 1, note, &err) == 0? 0: -1;
        free (note);
    }
    sodium_memzero (&signer, sizeof signer);
    return rc;
}

//  The whole log: every checkpoint matches (those inside a batch too), and
//  the root is the one of the leaves one by one.
static void
test_batches_intact (void **state)
{
    audit_t *a = *state;
    char root [48], want [120];
    s_big_root (BIG, root);
    snprintf (want, sizeof want, "%d records, sequence 1..%d", BIG, BIG);
    s_expect_ok (a, a->h.data, NULL, want);
    s_expect_ok (a, a->h.data, NULL, root);
    snprintf (want, sizeof want, "matches %zu signed checkpoints", SIZES);
    s_expect_ok (a, a->h.data, a->ckpt, want);
}

//  Logs shorter than a batch, of exactly one or two, and one past: the
//  last batch is partial, or there is none after the full ones.
static void
test_batches_sizes (void **state)
{
    audit_t *a = *state;
    static const uint64_t lengths [] = {
        1, 2, 3, BATCH - 1, BATCH, BATCH + 1, 2 * BATCH, 2 * BATCH + 1
    };
    for (size_t i = 0; i < sizeof lengths / sizeof lengths [0]; i++) {
        uint64_t n = lengths [i];
        const char *data = s_copy (a, a->h.data, "cut");
        assert_int_equal (logfix_cut (data, n + 1, UINT64_MAX), 0);
        char root [48], want [120];
        s_big_root (n, root);
        s_expect_ok (a, data, NULL, root);
        //  The checkpoints it holds in full, as a backup would be checked.
        size_t held = 0;
        while (held < SIZES && s_sizes [held] <= n) {
            held++;
        }
        char *out = NULL;
        int rc = harness_run (&a->h, &out, "verify", "--data", data, "--checkpoints", a->ckpt,
                              "--pub", a->pub, "--backup", NULL);
        snprintf (want, sizeof want, "matches %zu signed checkpoints", held);
        if (rc != 0 || !strstr (out, want) || !strstr (out, root)) {
            fail_msg ("verify of %" PRIu64 " records: exit %d, want 0, \"%s\" and root %s: %s",
                      n, rc, want, root, out);
        }
        free (out);
    }
}

//  Payloads stripped and marked purged with a time of their own each,
//  newest first (the worst order for a sorted list): verify names the
//  first and counts them all, through every growth of its index.
static void
test_batches_many_purge_times (void **state)
{
    audit_t *a = *state;
    const char *data = s_copy (a, a->h.data, "purge-times");
    enum { N = 600 };
    for (uint64_t seq = 1; seq <= N; seq++) {
        assert_int_equal (logfix_strip (data, seq, 1700000000000000ULL - seq * 1000), 0);
    }
    char want [160];
    s_expect_bad (a, data, NULL, "record 1: its payload is gone, marked purged at ");
    snprintf (want, sizeof want, "(%d such payloads): the payload was stripped", N);
    s_expect_bad (a, data, NULL, want);
}

//  A payload changed at a batch's first or last record, in its second
//  half (hashed by another thread than the first half may be), in the
//  last, partial batch: that record is named. With two changed, the first.
static void
test_batches_first_bad_named (void **state)
{
    audit_t *a = *state;
    static const uint64_t at [] = {
        1, BATCH - 1, BATCH, BATCH + 1, BATCH + BATCH / 2 + 7, 2 * BATCH, 2 * BATCH + 1, BIG
    };
    char text [64], want [160];
    for (size_t i = 0; i < sizeof at / sizeof at [0]; i++) {
        const char *data = s_copy (a, a->h.data, "payload");
        snprintf (text, sizeof text, "payload %" PRIu64 ",", at [i]);
        s_edit (data, at [i], text);
        snprintf (want, sizeof want, "record %" PRIu64 ": its payload does not match", at [i]);
        s_expect_bad (a, data, NULL, want);
    }
    //  Two: a later batch may be hashed first; the earlier record is named.
    static const uint64_t pairs [][2] = {
        { BATCH + 5000, 2 * BATCH + 100 }, { BATCH + 100, BATCH + 8000 }, { 3, 2 * BATCH }
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs [0]; i++) {
        const char *data = s_copy (a, a->h.data, "two");
        for (int k = 1; k >= 0; k--) {
            snprintf (text, sizeof text, "payload %" PRIu64 ",", pairs [i][k]);
            s_edit (data, pairs [i][k], text);
        }
        snprintf (want, sizeof want, "record %" PRIu64 ": its payload does not match",
                  pairs [i][0]);
        s_expect_bad (a, data, NULL, want);
    }
}

//  The chain across a batch edge: the last record of a batch edited, the
//  first of the next names it; a batch's first record deleted.
static void
test_batches_chain_across (void **state)
{
    audit_t *a = *state;
    char text [64], want [160];
    const char *data = s_copy (a, a->h.data, "edge");
    snprintf (text, sizeof text, "id-%d", BATCH);
    s_edit (data, BATCH, text);
    snprintf (want, sizeof want, "record %d: its prev_hash is not the hash of record %d",
              BATCH + 1, BATCH);
    s_expect_bad (a, data, NULL, want);

    data = s_copy (a, a->h.data, "deleted");
    assert_int_equal (logfix_put (data, 2 * BATCH + 1, NULL, 0), 0);
    snprintf (want, sizeof want, "record %d is missing (the next one there is %d)",
              2 * BATCH + 1, 2 * BATCH + 2);
    s_expect_bad (a, data, NULL, want);

    //  A whole batch's worth gone: the record after the gap is the next.
    data = s_copy (a, a->h.data, "gap");
    assert_int_equal (logfix_cut (data, BATCH + 1, 2 * BATCH), 0);
    snprintf (want, sizeof want, "record %d is missing (the next one there is %d)", BATCH + 1,
              2 * BATCH + 1);
    s_expect_bad (a, data, NULL, want);
}

//  An edit re-chained after it (only the checkpoints tell): the checkpoint
//  whose tree is the first to hold it is named, where it ends inside a
//  batch (the tree at that size is built from the batch's subtrees).
static void
test_batches_rechained (void **state)
{
    audit_t *a = *state;
    static const struct {
        uint64_t seq;
        size_t ckpt;        //  index in s_sizes of the first covering it
    } cases [] = {
        { 2, 1 }, { BATCH, 3 }, { BATCH + 3000, 5 }, { 2 * BATCH - 1, 6 }, { BIG - 1, 9 }
    };
    char text [64], want [300];
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        const char *data = s_copy (a, a->h.data, "rechained");
        snprintf (text, sizeof text, "id-%" PRIu64, cases [i].seq);
        s_edit (data, cases [i].seq, text);
        assert_int_equal (logfix_rechain (data, cases [i].seq + 1), 0);
        s_expect_ok (a, data, NULL, NULL);
        size_t k = cases [i].ckpt;
        snprintf (want, sizeof want, "the log does not match checkpoint %zu (records 1..%"
                  PRIu64 "): a record among %" PRIu64 "..%" PRIu64 " was changed", k + 1,
                  s_sizes [k], s_sizes [k - 1] + 1, s_sizes [k]);
        s_expect_bad (a, data, a->ckpt, want);
    }
}

int
main (void)
{
    const struct CMUnitTest shared [] = {
        cmocka_unit_test (test_intact_copy),
        cmocka_unit_test (test_cut_tail),
        cmocka_unit_test (test_stripped_payload_is_not_a_purge),
        cmocka_unit_test (test_stripped_payload_unmarked),
        cmocka_unit_test (test_rechained_edit),
        cmocka_unit_test (test_newest_record_edit),
        cmocka_unit_test (test_reordered),
        cmocka_unit_test (test_deleted_record),
        cmocka_unit_test (test_forged_checkpoint),
        cmocka_unit_test (test_replayed_and_deleted_checkpoints),
        cmocka_unit_test (test_proofs_against_reference),
        cmocka_unit_test (test_backup_of_live_bus),
    };
    const struct CMUnitTest own [] = {
        cmocka_unit_test_setup_teardown (test_checkpoint_write_fails_closed, s_setup_own,
                                         s_group_teardown),
        cmocka_unit_test_setup_teardown (test_signing_key_rotation, s_setup_own,
                                         s_group_teardown),
        cmocka_unit_test_setup_teardown (test_format_1_upgraded, s_setup_own, s_group_teardown),
        cmocka_unit_test_setup_teardown (test_purge_after_upgrade, s_setup_purge,
                                         s_teardown_purge),
        cmocka_unit_test_setup_teardown (test_verify_beside_live_bus, s_setup_own,
                                         s_group_teardown),
        cmocka_unit_test_setup_teardown (test_cut_log_refused_at_start, s_setup_own,
                                         s_group_teardown),
        cmocka_unit_test_setup_teardown (test_key_and_directory_refused, s_setup_own,
                                         s_group_teardown),
    };
    const struct CMUnitTest batches [] = {
        cmocka_unit_test (test_batches_intact),
        cmocka_unit_test (test_batches_sizes),
        cmocka_unit_test (test_batches_first_bad_named),
        cmocka_unit_test (test_batches_many_purge_times),
        cmocka_unit_test (test_batches_chain_across),
        cmocka_unit_test (test_batches_rechained),
    };
    int failed = cmocka_run_group_tests_name ("tampering", shared, s_group_setup,
                                              s_group_teardown);
    failed += cmocka_run_group_tests_name ("runs", own, NULL, NULL);
    return failed + cmocka_run_group_tests_name ("batches", batches, s_setup_batches,
                                                 s_group_teardown);
}
