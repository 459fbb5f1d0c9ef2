/*  bus_keys.h: CURVE key files, one credential per agent.

    The layout is CZMQ's zcert text format, so zcert tools can read it:

        #   bulkhead CURVE secret key for agent 'planner'
        metadata
            name = "planner"
        curve
            public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
            secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"

    A secret file is written with mode 0600 and refused when anyone but its
    owner can read it. A public file is the same without secret-key.

    What else decides what the bus does (its data directory, its policy) is
    checked by bus_keys_private before serve starts.
*/
#ifndef BUS_KEYS_H
#define BUS_KEYS_H

#include "bus_error.h"
#include "bus_names.h"

typedef struct {
    char name [BUS_NAME_MAX + 1];
    char public_z85 [BUS_KEY_Z85_LEN + 1];
    char secret_z85 [BUS_KEY_Z85_LEN + 1];     //  "" when only public is known
} bus_keypair_t;

int
    bus_keys_generate (bus_keypair_t *pair, const char *name, bus_error_t *err);

//  Writes NAME.key (secret, 0600, never overwritten) and NAME.pub in dir.
int
    bus_keys_save (const bus_keypair_t *pair, const char *secret_path,
                   const char *public_path, bus_error_t *err);

//  Reads a key file (secret or public). A secret file readable by group or
//  others is refused (EKEY).
int
    bus_keys_load (bus_keypair_t *pair, const char *path, bus_error_t *err);

//  As bus_keys_load, for a key the caller must hold the secret half of
//  (the bus's own key, the next one of a rotation): EKEY without it.
int
    bus_keys_load_secret (bus_keypair_t *pair, const char *path, bus_error_t *err);

//  The bus's own key: key_path if given, else DATA_DIR/bus.key, which the
//  first start makes (with DATA_DIR/bus.pub, the half agents pin).
int
    bus_keys_bus (bus_keypair_t *pair, const char *data_dir, const char *key_path,
                  bus_error_t *err);

//  Refuses (EPERM) a file or directory that someone other than the bus's
//  user (or root) may change: writable by group or others, or owned by
//  another user. The sentence names the path, its mode and the command that
//  fixes it, fix_mode being the mode to suggest (0: the mode without the
//  group and other write bits). A path that does not exist passes.
int
    bus_keys_private (const char *path, unsigned fix_mode, bus_error_t *err);

//  A public key given as 40 Z85 characters or as a path to a key file.
int
    bus_keys_public (char out [BUS_KEY_Z85_LEN + 1], const char *key_or_path,
                     bus_error_t *err);

//  16 hex characters of BLAKE2b(key): how logs name a credential.
void
    bus_keys_fingerprint (char out [17], const char *public_z85);

#endif
