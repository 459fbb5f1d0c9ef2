/*  fuzz_checkpoint.c: what an auditor's `verify` and `prove --check` read
    from places an attacker may write: checkpoint notes (bus_checkpoint_open)
    and record bytes (bus_record_leaf_hash), and proofs (bus_merkle_check_*).

    - A note that opens (its signature by the fixed fuzz key verifies) is
      canonical: signing what it parsed gives back exactly its body and
      digest, and that opens to the same fields.
    - A record's leaf hash, when protobuf-c decodes the bytes and they are
      its canonical encoding with no unknown field (what the bus writes),
      exists and is the hash of 0x00 and the record re-encoded without its
      payload (the purge contract), so it does not depend on the payload.
      For bytes that are not canonical it may refuse: protobuf-c decodes
      some that no encoder writes (a field-0 tag in two bytes, 80 00, passes
      its zero check, which reads the first byte only), and the hash need
      not follow it there.
    - The proof checkers never read past the path they are given, whatever
      the sizes and indexes.
*/
#include "bus_checkpoint.h"
#include "bus_merkle.h"
#include "record.pb-c.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static bus_signer_t s_key;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    if (sodium_init () < 0) {
        abort ();
    }
    //  A fixed key, so the committed seeds carry signatures that verify.
    uint8_t seed [32];
    memset (seed, 0x5a, sizeof seed);
    memset (&s_key, 0, sizeof s_key);
    snprintf (s_key.name, sizeof s_key.name, "fuzz");
    crypto_sign_seed_keypair (s_key.public_key, s_key.secret_key, seed);
    s_key.has_secret = true;
    //  The key id as the C2SP note spec (and bus_checkpoint.c) has it.
    uint8_t buf [4 + 2 + 32];
    memcpy (buf, "fuzz\n\x01", 6);
    memcpy (buf + 6, s_key.public_key, 32);
    uint8_t hash [32];
    crypto_hash_sha256 (hash, buf, sizeof buf);
    memcpy (s_key.id, hash, 4);
    return 0;
}

static void
s_note (const uint8_t *data, size_t size)
{
    bus_checkpoint_t c;
    uint8_t digest [32];
    size_t by = 99;
    bus_error_t err;
    if (bus_checkpoint_open (&c, (const char *) data, size, &s_key, 1, &by, digest, &err) != 0) {
        return;
    }
    assert (by == 0);
    uint8_t again [32];
    char *note = bus_checkpoint_sign (&c, &s_key, 1, again, &err);
    assert (note);
    assert (memcmp (digest, again, 32) == 0);
    size_t body = strstr (note, "\n\n") - note + 1;
    assert (body <= size && memcmp (note, data, body) == 0);
    bus_checkpoint_t c2;
    assert (bus_checkpoint_open (&c2, note, strlen (note), &s_key, 1, NULL, again, &err) == 0);
    assert (c2.size == c.size && c2.number == c.number && c2.time_us == c.time_us);
    assert (memcmp (c2.root, c.root, 32) == 0 && memcmp (c2.prev, c.prev, 32) == 0);
    assert (strcmp (c2.origin, c.origin) == 0 && strcmp (c2.policy, c.policy) == 0);
    free (note);
}

static void
s_record (const uint8_t *data, size_t size)
{
    uint8_t leaf [32];
    int rc = bus_record_leaf_hash (data, size, leaf);
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, size, data);
    if (!rec) {
        return;
    }
    size_t len = bulkhead__v1__record__get_packed_size (rec);
    uint8_t *buf = malloc (len + 1);
    assert (buf);
    bool canonical = rec->base.n_unknown_fields == 0
                  && bulkhead__v1__record__pack (rec, buf + 1) == size
                  && memcmp (buf + 1, data, size) == 0;
    if (canonical) {
        assert (rc == 0);
        rec->has_payload = false;
        size_t without = bulkhead__v1__record__pack (rec, buf + 1);
        buf [0] = 0x00;
        uint8_t want [32];
        crypto_generichash (want, 32, buf, without + 1, NULL, 0);
        assert (memcmp (want, leaf, 32) == 0);
    }
    free (buf);
    bulkhead__v1__record__free_unpacked (rec, NULL);
}

static void
s_proofs (const uint8_t *data, size_t size)
{
    if (size < 16 + 64) {
        return;
    }
    uint64_t a, b;
    memcpy (&a, data, 8);
    memcpy (&b, data + 8, 8);
    size_t count = (size - 16 - 64) / 32;
    if (count > BUS_MERKLE_PROOF_MAX) {
        count = BUS_MERKLE_PROOF_MAX;
    }
    //  The path is copied to a buffer of exactly count hashes, so ASan sees
    //  any read past it.
    uint8_t (*path) [32] = malloc (count? count * 32: 1);
    assert (path);
    memcpy (path, data + 16 + 64, count * 32);
    (void) bus_merkle_check_inclusion (a % (b? b: 1), b, data + 16, (const uint8_t (*) [32]) path,
                                       count, data + 48);
    (void) bus_merkle_check_consistency (a, b, data + 16, data + 48,
                                         (const uint8_t (*) [32]) path, count);
    free (path);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > 8192) {
        return 0;
    }
    s_note (data, size);
    s_record (data, size);
    s_proofs (data, size);
    return 0;
}
