/*  bus_keys.c: CURVE key files. */
#include "bus_keys.h"
#include "bus_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

int
bus_keys_generate (bus_keypair_t *pair, const char *name, bus_error_t *err)
{
    memset (pair, 0, sizeof *pair);
    if (!bus_name_valid (name, strlen (name))) {
        return bus_fail (err, BUS_EINVAL,
                         "'%s' is not a valid agent name: 1-64 of a-z 0-9 . _ -, "
                         "starting with a letter or digit", name);
    }
    snprintf (pair->name, sizeof pair->name, "%s", name);
    if (zmq_curve_keypair (pair->public_z85, pair->secret_z85) != 0) {
        return bus_fail (err, BUS_EKEY, "cannot generate a CURVE key: %s "
                         "(is libzmq built with libsodium?)", zmq_strerror (zmq_errno ()));
    }
    return 0;
}

static int
s_write_file (const char *path, const char *text, mode_t mode, bus_error_t *err)
{
    //  O_EXCL: a key is never silently replaced; the old one may be in use.
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        return bus_fail (err, BUS_EIO, "%s: %s%s", path, strerror (errno),
                         errno == EEXIST? " (remove it first to replace the key)": "");
    }
    size_t len = strlen (text);
    ssize_t wrote = write (fd, text, len);
    int rc = (wrote == (ssize_t) len && fsync (fd) == 0)? 0: -1;
    int saved = errno;
    close (fd);
    if (rc != 0) {
        unlink (path);
        return bus_fail (err, BUS_EIO, "%s: %s", path, strerror (saved));
    }
    return 0;
}

int
bus_keys_save (const bus_keypair_t *pair, const char *secret_path,
               const char *public_path, bus_error_t *err)
{
    //  Refuse before writing anything: half a keypair on disk would block
    //  the next attempt.
    const char *paths [] = { secret_path, public_path };
    for (int i = 0; i < 2; i++) {
        if (paths [i] && access (paths [i], F_OK) == 0) {
            return bus_fail (err, BUS_EIO, "%s: already exists (remove it first to replace the key)",
                             paths [i]);
        }
    }
    char text [1024];
    if (secret_path) {
        snprintf (text, sizeof text,
                  "#   bulkhead CURVE secret key for '%s'\n"
                  "#   SECRET: whoever holds this file can act as '%s'. Keep it mode 0600.\n"
                  "metadata\n    name = \"%s\"\ncurve\n"
                  "    public-key = \"%s\"\n    secret-key = \"%s\"\n",
                  pair->name, pair->name, pair->name, pair->public_z85, pair->secret_z85);
        if (s_write_file (secret_path, text, 0600, err) != 0) {
            return -1;
        }
    }
    if (public_path) {
        snprintf (text, sizeof text,
                  "#   bulkhead CURVE public key for '%s'\n"
                  "metadata\n    name = \"%s\"\ncurve\n    public-key = \"%s\"\n",
                  pair->name, pair->name, pair->public_z85);
        if (s_write_file (public_path, text, 0644, err) != 0) {
            if (secret_path) {
                unlink (secret_path);
            }
            return -1;
        }
    }
    return 0;
}

//  Finds `key = "value"` on a line and copies value (Z85 has no quotes).
static bool
s_value (const char *line, const char *key, char *out, size_t out_size)
{
    const char *p = line + strspn (line, " \t");
    size_t key_len = strlen (key);
    if (strncmp (p, key, key_len) != 0) {
        return false;
    }
    p += key_len;
    p += strspn (p, " \t");
    if (*p++ != '=') {
        return false;
    }
    p += strspn (p, " \t");
    bool quoted = *p == '"';
    p += quoted;
    size_t len = 0;
    while (p [len] && p [len] != '\n' && p [len] != '\r' && p [len] != (quoted? '"': ' ')) {
        len++;
    }
    if (len >= out_size) {
        return false;
    }
    memcpy (out, p, len);
    out [len] = 0;
    return true;
}

static bool
s_z85_key_valid (const char *z85)
{
    uint8_t raw [32];
    return strlen (z85) == BUS_KEY_Z85_LEN && zmq_z85_decode (raw, z85) != NULL;
}

int
bus_keys_load (bus_keypair_t *pair, const char *path, bus_error_t *err)
{
    memset (pair, 0, sizeof *pair);
    FILE *file = fopen (path, "r");
    if (!file) {
        return bus_fail (err, BUS_EKEY, "%s: %s", path, strerror (errno));
    }
    char line [512];
    while (fgets (line, sizeof line, file)) {
        if (!s_value (line, "public-key", pair->public_z85, sizeof pair->public_z85)
        &&  !s_value (line, "secret-key", pair->secret_z85, sizeof pair->secret_z85)) {
            s_value (line, "name", pair->name, sizeof pair->name);
        }
    }
    struct stat st;
    int stat_rc = fstat (fileno (file), &st);
    fclose (file);
    if (!s_z85_key_valid (pair->public_z85)) {
        return bus_fail (err, BUS_EKEY, "%s: no valid public-key line "
                         "(make one with: bulkhead keygen NAME)", path);
    }
    if (pair->secret_z85 [0]) {
        if (!s_z85_key_valid (pair->secret_z85)) {
            return bus_fail (err, BUS_EKEY, "%s: secret-key is not 40 Z85 characters", path);
        }
        if (stat_rc == 0 && (st.st_mode & 077)) {
            //  The bus's own key comes here too (serve), and an agent's.
            return bus_fail (err, BUS_EKEY, "%s: secret key file is readable by others "
                             "(mode 0%03o; only its owner may have access); chmod 600 %s",
                             path, (unsigned) (st.st_mode & 0777), path);
        }
    }
    return 0;
}

int
bus_keys_load_secret (bus_keypair_t *pair, const char *path, bus_error_t *err)
{
    if (bus_keys_load (pair, path, err) != 0) {
        return -1;
    }
    if (!pair->secret_z85 [0]) {
        return bus_fail (err, BUS_EKEY, "%s holds no secret-key: the bus needs its secret key",
                         path);
    }
    return 0;
}

int
bus_keys_bus (bus_keypair_t *pair, const char *data_dir, const char *key_path, bus_error_t *err)
{
    char path [4096];
    if (!key_path) {
        snprintf (path, sizeof path, "%s/bus.key", data_dir);
        key_path = path;
        if (access (path, F_OK) != 0) {
            //  First start: make the bus's own key, and its public half
            //  for agents to pin.
            char pub [4096];
            snprintf (pub, sizeof pub, "%s/bus.pub", data_dir);
            unlink (pub);
            if (bus_keys_generate (pair, "bus", err) != 0
            ||  bus_keys_save (pair, path, pub, err) != 0) {
                return -1;
            }
            return 0;
        }
    }
    return bus_keys_load_secret (pair, key_path, err);
}

int
bus_keys_private (const char *path, unsigned fix_mode, bus_error_t *err)
{
    struct stat st;
    if (stat (path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return bus_fail (err, BUS_EIO, "%s: %s", path, strerror (errno));
    }
    unsigned mode = (unsigned) (st.st_mode & 07777);
    if (st.st_uid != 0 && st.st_uid != geteuid ()) {
        return bus_fail (err, BUS_EPERM, "%s is owned by uid %u, who may change it, not by the "
                         "user the bus runs as (uid %u) or root; chown %u %s", path,
                         (unsigned) st.st_uid, (unsigned) geteuid (), (unsigned) geteuid (), path);
    }
    if (mode & 022) {
        return bus_fail (err, BUS_EPERM, "%s is writable by group or others (mode 0%03o); "
                         "chmod 0%03o %s", path, mode,
                         fix_mode? fix_mode: mode & ~022u & 0777, path);
    }
    return 0;
}

int
bus_keys_public (char out [BUS_KEY_Z85_LEN + 1], const char *key_or_path, bus_error_t *err)
{
    //  A file by that name wins: a 40-character path can be valid Z85 too.
    if (s_z85_key_valid (key_or_path) && access (key_or_path, F_OK) != 0) {
        snprintf (out, BUS_KEY_Z85_LEN + 1, "%s", key_or_path);
        return 0;
    }
    bus_keypair_t pair;
    if (bus_keys_load (&pair, key_or_path, err) != 0) {
        return -1;
    }
    memcpy (out, pair.public_z85, BUS_KEY_Z85_LEN + 1);
    return 0;
}

void
bus_keys_fingerprint (char out [17], const char *public_z85)
{
    static const char hex [] = "0123456789abcdef";
    uint8_t hash [32];
    bus_hash (hash, public_z85, strlen (public_z85));
    for (int i = 0; i < 8; i++) {
        out [2 * i] = hex [hash [i] >> 4];
        out [2 * i + 1] = hex [hash [i] & 15];
    }
    out [16] = 0;
}
