/*  test_keys.c: CURVE key files (bus_keys).

    Each test gets a fresh directory under /tmp, removed afterwards.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "bus_keys.h"

//  A real CURVE public key with '#' in it: only quoted in a file.
#define KEY_HASH "S9X2bxfLD#J5*A(4qho{rQ8py4HQyw<(^9Kc)[sK"

typedef struct {
    char dir [64];
    char secret [128];
    char public [128];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    if (!f) {
        return -1;
    }
    snprintf (f->dir, sizeof f->dir, "/tmp/bulkhead-keys-XXXXXX");
    if (!mkdtemp (f->dir)) {
        free (f);
        return -1;
    }
    snprintf (f->secret, sizeof f->secret, "%s/agent.key", f->dir);
    snprintf (f->public, sizeof f->public, "%s/agent.pub", f->dir);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    int rc = system (command);
    free (f);
    return rc == 0? 0: -1;
}

static void
s_write (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (chmod (path, mode), 0);
}

static void
s_expect_load_fails (const char *path, const char *want)
{
    bus_keypair_t pair;
    bus_error_t err = { 0 };
    assert_int_equal (bus_keys_load (&pair, path, &err), -1);
    assert_int_equal (err.code, BUS_EKEY);
    if (!strstr (err.text, want)) {
        fail_msg ("'%s' does not mention '%s'", err.text, want);
    }
}

static void
test_generate (void **state)
{
    (void) state;
    bus_keypair_t a, b;
    bus_error_t err;
    assert_int_equal (bus_keys_generate (&a, "planner", &err), 0);
    assert_int_equal (bus_keys_generate (&b, "planner", &err), 0);
    assert_string_equal (a.name, "planner");
    assert_int_equal (strlen (a.public_z85), BUS_KEY_Z85_LEN);
    assert_int_equal (strlen (a.secret_z85), BUS_KEY_Z85_LEN);
    assert_string_not_equal (a.public_z85, b.public_z85);
    assert_string_not_equal (a.secret_z85, b.secret_z85);

    //  Names as the policy takes them, nothing else.
    const char *bad [] = { "", "Planner", "../x", "a/b", "-x", "a b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        err.code = BUS_OK;
        assert_int_equal (bus_keys_generate (&a, bad [i], &err), -1);
        assert_int_equal (err.code, BUS_EINVAL);
        assert_non_null (strstr (err.text, "not a valid agent name"));
    }
}

static void
test_save_load_round_trip (void **state)
{
    fixture_t *f = *state;
    bus_keypair_t pair, loaded;
    bus_error_t err;
    assert_int_equal (bus_keys_generate (&pair, "agent", &err), 0);
    assert_int_equal (bus_keys_save (&pair, f->secret, f->public, &err), 0);

    assert_int_equal (bus_keys_load (&loaded, f->secret, &err), 0);
    assert_string_equal (loaded.name, "agent");
    assert_string_equal (loaded.public_z85, pair.public_z85);
    assert_string_equal (loaded.secret_z85, pair.secret_z85);

    //  The public file has no secret in it, and loads as public only.
    assert_int_equal (bus_keys_load (&loaded, f->public, &err), 0);
    assert_string_equal (loaded.name, "agent");
    assert_string_equal (loaded.public_z85, pair.public_z85);
    assert_string_equal (loaded.secret_z85, "");
}

static void
test_modes_and_no_overwrite (void **state)
{
    fixture_t *f = *state;
    bus_keypair_t pair, other;
    bus_error_t err;
    assert_int_equal (bus_keys_generate (&pair, "agent", &err), 0);
    assert_int_equal (bus_keys_save (&pair, f->secret, f->public, &err), 0);
    struct stat st;
    assert_int_equal (stat (f->secret, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    assert_int_equal (stat (f->public, &st), 0);
    assert_int_equal (st.st_mode & 0600, 0600);

    //  A key is never replaced: the old one may be in use.
    assert_int_equal (bus_keys_generate (&other, "agent", &err), 0);
    assert_int_equal (bus_keys_save (&other, f->secret, NULL, &err), -1);
    assert_int_equal (err.code, BUS_EIO);
    assert_non_null (strstr (err.text, "remove it first"));
    bus_keypair_t loaded;
    assert_int_equal (bus_keys_load (&loaded, f->secret, &err), 0);
    assert_string_equal (loaded.secret_z85, pair.secret_z85);

    //  A missing directory is an I/O error naming the path.
    char path [200];
    snprintf (path, sizeof path, "%s/no/such.key", f->dir);
    assert_int_equal (bus_keys_save (&pair, path, NULL, &err), -1);
    assert_int_equal (err.code, BUS_EIO);
    assert_non_null (strstr (err.text, path));
}

static void
test_open_secret_refused (void **state)
{
    fixture_t *f = *state;
    bus_keypair_t pair;
    bus_error_t err;
    assert_int_equal (bus_keys_generate (&pair, "agent", &err), 0);
    assert_int_equal (bus_keys_save (&pair, f->secret, f->public, &err), 0);
    const mode_t modes [] = { 0644, 0640, 0604, 0620, 0666 };
    for (size_t i = 0; i < sizeof modes / sizeof modes [0]; i++) {
        assert_int_equal (chmod (f->secret, modes [i]), 0);
        s_expect_load_fails (f->secret, "readable by others");
        s_expect_load_fails (f->secret, "chmod 600");
    }
    //  Owner-only modes stricter than 0600 are fine.
    assert_int_equal (chmod (f->secret, 0400), 0);
    assert_int_equal (bus_keys_load (&pair, f->secret, &err), 0);
    //  A public file may be world-readable.
    assert_int_equal (chmod (f->public, 0644), 0);
    assert_int_equal (bus_keys_load (&pair, f->public, &err), 0);
}

static void
test_hand_written_files (void **state)
{
    fixture_t *f = *state;
    char path [200];
    snprintf (path, sizeof path, "%s/hand.pub", f->dir);
    bus_keypair_t pair;
    bus_error_t err;

    //  A zcert public file written by hand, with a '#' in the key.
    s_write (path, "metadata\n    name = \"hand\"\ncurve\n    public-key = \"" KEY_HASH "\"\n", 0644);
    assert_int_equal (bus_keys_load (&pair, path, &err), 0);
    assert_string_equal (pair.public_z85, KEY_HASH);
    assert_string_equal (pair.name, "hand");
    assert_string_equal (pair.secret_z85, "");

    s_write (path, "# nothing here\n", 0644);
    s_expect_load_fails (path, "no valid public-key");
    s_write (path, "curve\n    public-key = \"tooshort\"\n", 0644);
    s_expect_load_fails (path, "no valid public-key");
    //  40 characters, but not Z85 (the quote-free '~' is outside the alphabet).
    s_write (path, "curve\n    public-key = \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n", 0644);
    s_expect_load_fails (path, "no valid public-key");
    s_write (path, "curve\n    public-key = \"" KEY_HASH "\"\n    secret-key = \"short\"\n", 0600);
    s_expect_load_fails (path, "secret-key is not 40 Z85");
    snprintf (path, sizeof path, "%s/missing.key", f->dir);
    s_expect_load_fails (path, "missing.key");
}

static void
test_public (void **state)
{
    fixture_t *f = *state;
    bus_keypair_t pair;
    bus_error_t err;
    char out [BUS_KEY_Z85_LEN + 1];
    assert_int_equal (bus_keys_public (out, KEY_HASH, &err), 0);
    assert_string_equal (out, KEY_HASH);

    assert_int_equal (bus_keys_generate (&pair, "agent", &err), 0);
    assert_int_equal (bus_keys_save (&pair, f->secret, f->public, &err), 0);
    memset (out, 0, sizeof out);
    assert_int_equal (bus_keys_public (out, f->public, &err), 0);
    assert_string_equal (out, pair.public_z85);
    memset (out, 0, sizeof out);
    assert_int_equal (bus_keys_public (out, f->secret, &err), 0);
    assert_string_equal (out, pair.public_z85);

    //  Neither a key nor a readable key file.
    err.code = BUS_OK;
    assert_int_equal (bus_keys_public (out, "not-a-key", &err), -1);
    assert_int_equal (err.code, BUS_EKEY);
    assert_int_equal (bus_keys_public (out, "", &err), -1);
    char truncated [BUS_KEY_Z85_LEN];
    memcpy (truncated, KEY_HASH, BUS_KEY_Z85_LEN - 1);
    truncated [BUS_KEY_Z85_LEN - 1] = 0;
    assert_int_equal (bus_keys_public (out, truncated, &err), -1);
}

static void
test_fingerprint (void **state)
{
    (void) state;
    char a [17], b [17], c [17];
    memset (a, 'x', sizeof a);
    bus_keys_fingerprint (a, KEY_HASH);
    bus_keys_fingerprint (b, KEY_HASH);
    assert_int_equal (strlen (a), 16);
    assert_int_equal (strspn (a, "0123456789abcdef"), 16);
    assert_string_equal (a, b);                 //  stable
    bus_keys_fingerprint (c, "KJT[{OVflK2.s2Sii/=HdP/H^XxjcuMIIF1Bi>K^");
    assert_string_not_equal (a, c);

    //  What the header promises: the first 8 bytes of BLAKE2b-256 of the
    //  Z85 text, in hex.
    uint8_t hash [32];
    assert_true (sodium_init () >= 0);
    crypto_generichash (hash, sizeof hash, (const uint8_t *) KEY_HASH, strlen (KEY_HASH), NULL, 0);
    char want [17];
    for (int i = 0; i < 8; i++) {
        snprintf (want + 2 * i, 3, "%02x", hash [i]);
    }
    assert_string_equal (a, want);
}

//  The bus's own key: made at the first start with its public half, the
//  same one read at every start after; a given file without its secret
//  half is refused.
static void
test_bus_key (void **state)
{
    fixture_t *f = *state;
    bus_keypair_t first, again, loaded;
    bus_error_t err;
    assert_int_equal (bus_keys_bus (&first, f->dir, NULL, &err), 0);
    char path [160];
    snprintf (path, sizeof path, "%s/bus.key", f->dir);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    snprintf (path, sizeof path, "%s/bus.pub", f->dir);
    assert_int_equal (bus_keys_load (&loaded, path, &err), 0);
    assert_string_equal (loaded.public_z85, first.public_z85);
    assert_string_equal (loaded.secret_z85, "");

    assert_int_equal (bus_keys_bus (&again, f->dir, NULL, &err), 0);
    assert_string_equal (again.public_z85, first.public_z85);
    assert_string_equal (again.secret_z85, first.secret_z85);

    //  --key names the file: a public one will not do, nor is one made.
    assert_int_equal (bus_keys_bus (&again, f->dir, path, &err), -1);
    assert_int_equal (err.code, BUS_EKEY);
    assert_non_null (strstr (err.text, "holds no secret-key"));
    assert_int_equal (bus_keys_load_secret (&again, path, &err), -1);
    assert_int_equal (err.code, BUS_EKEY);
    assert_int_equal (bus_keys_bus (&again, f->dir, f->secret, &err), -1);
    assert_int_equal (err.code, BUS_EKEY);
    assert_int_equal (access (f->secret, F_OK), -1);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_generate),
        cmocka_unit_test_setup_teardown (test_save_load_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_modes_and_no_overwrite, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_open_secret_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hand_written_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_public, s_setup, s_teardown),
        cmocka_unit_test (test_fingerprint),
        cmocka_unit_test_setup_teardown (test_bus_key, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
