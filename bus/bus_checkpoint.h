/*  bus_checkpoint.h: signed checkpoints of the log, and the bus's signing key.

    A checkpoint is a C2SP signed note (c2sp.org/signed-note) whose body is a
    C2SP tlog-checkpoint with extension lines:

        bulkhead/3fa9c2e1d0b4a7f6           origin (serve --origin)
        1042                                tree size: records covered
        q7Vn...base64...=                   root hash (bus_merkle.h)
        time 1764637200123456               when, microseconds since the epoch
        policy 9f3c...                      hash of the policy then live
        number 17                           1, 2, ... per checkpoints directory
        prev 3u9...base64...=               BLAKE2b-256 of checkpoint 16's body
                                            (32 zero bytes for number 1)
        <blank line>
        — bus-2026 AbCd...base64...         one line per signing key

    A signature line is U+2014, the key's name, and base64 of the key id (the
    first 4 bytes of SHA-256 (name || "\n" || 0x01 || public key), as in the
    C2SP note spec for Ed25519) followed by the Ed25519 signature of the body.
    During a key rotation the bus signs with both keys; a verifier accepts a
    checkpoint that any key it was given signed.

    `number` and `prev` chain the checkpoints as CloudTrail chains its digest
    files: a deleted, reordered or replayed (copied under a later number)
    checkpoint breaks the chain, and `time` shows silence (one every T
    seconds, even idle).

    Files: DIR/<number, 20 digits>.ckpt, written to a temporary name, synced,
    linked to the final name (never over an existing one) and the directory
    synced.

    Signing key files, like the CURVE key files but Ed25519 in base64:

        #   bulkhead checkpoint signing key (Ed25519)
        name = "bus-2026"
        public-key = "...44 base64 characters..."
        secret-key = "...88 base64 characters..."      (only in NAME.sign.key)
*/
#ifndef BUS_CHECKPOINT_H
#define BUS_CHECKPOINT_H

#include "bus_error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_SIGNER_NAME_MAX     64
#define BUS_CHECKPOINT_ORIGIN_MAX 128
#define BUS_CHECKPOINT_MAX      4096    //  bytes of a note we read

typedef struct {
    char name [BUS_SIGNER_NAME_MAX + 1];
    uint8_t public_key [32];
    uint8_t secret_key [64];
    bool has_secret;
    uint8_t id [4];
} bus_signer_t;

//  A new key named name (the bus-name alphabet: a-z 0-9 . _ -).
int
    bus_signer_generate (bus_signer_t *self, const char *name, bus_error_t *err);

//  Writes the secret file (0600, never overwritten) and the public one.
int
    bus_signer_save (const bus_signer_t *self, const char *secret_path,
                     const char *public_path, bus_error_t *err);

//  Reads a key file. need_secret: it must hold secret-key, and a secret file
//  anyone but its owner may read is refused (EKEY), as CURVE keys are.
int
    bus_signer_load (bus_signer_t *self, const char *path, bool need_secret, bus_error_t *err);

typedef struct {
    char origin [BUS_CHECKPOINT_ORIGIN_MAX + 1];
    uint64_t size;
    uint8_t root [32];
    uint64_t time_us;
    char policy [65];
    uint64_t number;
    uint8_t prev [32];
} bus_checkpoint_t;

//  The signed note (malloc'd, NUL-terminated, caller frees) signed by each
//  of count signers, and the digest of its body (what the next one's prev
//  names). NULL on a bad field (err).
char *
    bus_checkpoint_sign (const bus_checkpoint_t *self, const bus_signer_t *signers,
                         size_t count, uint8_t digest [32], bus_error_t *err);

//  Parses a note and checks its signatures against keys: 0 when its body
//  is well formed and at least one signature line verifies with one of
//  keys (*signed_by gets that key's index); -1 (ECORRUPT: malformed; EKEY:
//  no valid signature by a known key) otherwise. digest as above.
int
    bus_checkpoint_open (bus_checkpoint_t *out, const char *note, size_t len,
                         const bus_signer_t *keys, size_t key_count, size_t *signed_by,
                         uint8_t digest [32], bus_error_t *err);

//  Writes note as checkpoint number in dir (see above). 0 or -1 (EIO).
int
    bus_checkpoint_write (const char *dir, uint64_t number, const char *note, bus_error_t *err);

//  The highest checkpoint number in dir (0 if none): 0, or -1 (EIO).
int
    bus_checkpoint_last (const char *dir, uint64_t *number, bus_error_t *err);

//  Reads checkpoint number from dir: 0 and *note (malloc'd, NUL-terminated)
//  and *len, 1 if there is no such file, -1 on error.
int
    bus_checkpoint_read (const char *dir, uint64_t number, char **note, size_t *len,
                         bus_error_t *err);

#endif
