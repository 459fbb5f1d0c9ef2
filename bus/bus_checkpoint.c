/*  bus_checkpoint.c: checkpoint notes, their files, and signing keys. */
#include "bus_checkpoint.h"
#include "bus_names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_B64_32    45          //  base64 of 32 bytes, with its NUL
#define S_B64_64    89
#define S_B64_68    93          //  key id + signature

static const char s_dash [] = "\xe2\x80\x94";      //  U+2014, as C2SP notes sign

static void
s_key_id (bus_signer_t *self)
{
    //  C2SP signed-note: SHA-256 (name || "\n" || 0x01 || key), first 4 bytes.
    size_t name_len = strlen (self->name);
    uint8_t buf [BUS_SIGNER_NAME_MAX + 2 + 32];
    memcpy (buf, self->name, name_len);
    buf [name_len] = '\n';
    buf [name_len + 1] = 0x01;
    memcpy (buf + name_len + 2, self->public_key, 32);
    uint8_t hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, buf, name_len + 2 + 32);
    memcpy (self->id, hash, 4);
}

static void
s_b64 (char *out, size_t max, const uint8_t *bin, size_t len)
{
    sodium_bin2base64 (out, max, bin, len, sodium_base64_VARIANT_ORIGINAL);
}

//  Exactly len bytes from base64 text (the whole of it), or -1.
static int
s_unb64 (uint8_t *out, size_t len, const char *text, size_t text_len)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin (out, len, text, text_len, NULL, &got, &end,
                           sodium_base64_VARIANT_ORIGINAL) != 0
    ||  got != len || end != text + text_len) {
        return -1;
    }
    return 0;
}

int
bus_signer_generate (bus_signer_t *self, const char *name, bus_error_t *err)
{
    memset (self, 0, sizeof *self);
    if (sodium_init () < 0) {
        return bus_fail (err, BUS_EKEY, "libsodium cannot initialize");
    }
    if (!bus_name_valid (name, strlen (name))) {
        return bus_fail (err, BUS_EINVAL, "'%s' is not a valid key name: 1-64 of a-z 0-9 . _ -, "
                         "starting with a letter or digit", name);
    }
    snprintf (self->name, sizeof self->name, "%s", name);
    crypto_sign_keypair (self->public_key, self->secret_key);
    self->has_secret = true;
    s_key_id (self);
    return 0;
}

static int
s_write_new (const char *path, const char *text, mode_t mode, bus_error_t *err)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        return bus_fail (err, BUS_EIO, "%s: %s%s", path, strerror (errno),
                         errno == EEXIST? " (a key file is never replaced: remove it first)": "");
    }
    size_t len = strlen (text);
    int rc = write (fd, text, len) == (ssize_t) len && fsync (fd) == 0? 0: -1;
    int saved = errno;
    close (fd);
    if (rc) {
        unlink (path);
        return bus_fail (err, BUS_EIO, "%s: %s", path, strerror (saved));
    }
    return 0;
}

int
bus_signer_save (const bus_signer_t *self, const char *secret_path, const char *public_path,
                 bus_error_t *err)
{
    if (access (secret_path, F_OK) == 0 || access (public_path, F_OK) == 0) {
        return bus_fail (err, BUS_EIO, "%s: already exists (a key file is never replaced: "
                         "remove it first)", access (secret_path, F_OK) == 0? secret_path
                                                                            : public_path);
    }
    char pub [S_B64_32], sec [S_B64_64];
    s_b64 (pub, sizeof pub, self->public_key, 32);
    s_b64 (sec, sizeof sec, self->secret_key, 64);
    char text [512];
    snprintf (text, sizeof text, "#   bulkhead checkpoint signing key (Ed25519), SECRET: keep it "
              "outside the data dir, readable by the bus's user only\nname = \"%s\"\n"
              "public-key = \"%s\"\nsecret-key = \"%s\"\n", self->name, pub, sec);
    int rc = s_write_new (secret_path, text, 0600, err);
    sodium_memzero (text, sizeof text);
    sodium_memzero (sec, sizeof sec);
    if (rc) {
        return -1;
    }
    snprintf (text, sizeof text, "#   bulkhead checkpoint signing key (Ed25519), public: give it "
              "to auditors (bulkhead verify --pub)\nname = \"%s\"\npublic-key = \"%s\"\n",
              self->name, pub);
    if (s_write_new (public_path, text, 0644, err)) {
        unlink (secret_path);
        return -1;
    }
    return 0;
}

//  `name = "value"` (quotes optional) into out; true if line is that name.
static bool
s_value (const char *line, const char *name, char *out, size_t max)
{
    size_t len = strlen (name);
    if (strncmp (line, name, len) != 0) {
        return false;
    }
    const char *p = line + len;
    p += strspn (p, " \t");
    if (*p != '=') {
        return false;
    }
    p++;
    p += strspn (p, " \t");
    size_t n = strcspn (p, "\"\r\n");
    if (*p == '"') {
        p++;
        n = strcspn (p, "\"\r\n");
    }
    snprintf (out, max, "%.*s", (int) n, p);
    return true;
}

int
bus_signer_load (bus_signer_t *self, const char *path, bool need_secret, bus_error_t *err)
{
    memset (self, 0, sizeof *self);
    if (sodium_init () < 0) {
        return bus_fail (err, BUS_EKEY, "libsodium cannot initialize");
    }
    FILE *file = fopen (path, "r");
    if (!file) {
        return bus_fail (err, BUS_EKEY, "%s: %s", path, strerror (errno));
    }
    char line [512], pub [128] = "", sec [160] = "";
    while (fgets (line, sizeof line, file)) {
        if (!s_value (line, "public-key", pub, sizeof pub)
        &&  !s_value (line, "secret-key", sec, sizeof sec)) {
            s_value (line, "name", self->name, sizeof self->name);
        }
    }
    struct stat st;
    int stat_rc = fstat (fileno (file), &st);
    fclose (file);
    sodium_memzero (line, sizeof line);
    bool had_secret = sec [0] != 0;
    int rc = 0;
    if (!bus_name_valid (self->name, strlen (self->name))) {
        rc = bus_fail (err, BUS_EKEY, "%s: no valid name line (make a key with: bulkhead keygen "
                       "NAME --sign)", path);
    }
    else if (s_unb64 (self->public_key, 32, pub, strlen (pub))) {
        rc = bus_fail (err, BUS_EKEY, "%s: no valid public-key line (44 base64 characters of an "
                       "Ed25519 key; make one with: bulkhead keygen NAME --sign)", path);
    }
    else if (need_secret && !sec [0]) {
        rc = bus_fail (err, BUS_EKEY, "%s holds no secret-key: signing needs the secret key "
                       "file (NAME.sign.key), not the public one", path);
    }
    else if (sec [0] && s_unb64 (self->secret_key, 64, sec, strlen (sec))) {
        rc = bus_fail (err, BUS_EKEY, "%s: secret-key is not 88 base64 characters", path);
    }
    else if (sec [0] && stat_rc == 0 && (st.st_mode & 077)) {
        rc = bus_fail (err, BUS_EKEY, "%s: secret key file is readable by others (mode 0%03o; "
                       "only its owner may have access); chmod 600 %s", path,
                       (unsigned) (st.st_mode & 0777), path);
    }
    else if (sec [0] && memcmp (self->secret_key + 32, self->public_key, 32) != 0) {
        rc = bus_fail (err, BUS_EKEY, "%s: its secret-key and public-key do not belong together",
                       path);
    }
    sodium_memzero (sec, sizeof sec);
    if (rc) {
        sodium_memzero (self, sizeof *self);
        return -1;
    }
    self->has_secret = had_secret;
    s_key_id (self);
    return 0;
}


//  --------------------------------------------------------------------------
//  Notes

//  The body, exactly as signed. Its length, or 0 if a field cannot be one.
static size_t
s_body (const bus_checkpoint_t *self, char *out, size_t max)
{
    if (!self->origin [0] || strpbrk (self->origin, "\n\r") || strlen (self->policy) > 64
    ||  strspn (self->policy, "0123456789abcdef") != strlen (self->policy)) {
        return 0;
    }
    char root [S_B64_32], prev [S_B64_32];
    s_b64 (root, sizeof root, self->root, 32);
    s_b64 (prev, sizeof prev, self->prev, 32);
    int n = snprintf (out, max, "%s\n%" PRIu64 "\n%s\ntime %" PRIu64 "\npolicy %s\nnumber %"
                      PRIu64 "\nprev %s\n", self->origin, self->size, root, self->time_us,
                      self->policy [0]? self->policy: "-", self->number, prev);
    return n > 0 && (size_t) n < max? (size_t) n: 0;
}

char *
bus_checkpoint_sign (const bus_checkpoint_t *self, const bus_signer_t *signers, size_t count,
                     uint8_t digest [32], bus_error_t *err)
{
    char body [1024];
    size_t len = s_body (self, body, sizeof body);
    if (len == 0 || count == 0) {
        bus_fail (err, BUS_EINVAL, "checkpoint %" PRIu64 ": its origin or policy hash cannot be "
                  "written in a note", self->number);
        return NULL;
    }
    crypto_generichash (digest, 32, (const uint8_t *) body, len, NULL, 0);
    size_t max = len + 1 + count * (BUS_SIGNER_NAME_MAX + S_B64_68 + 8) + 1;
    char *note = malloc (max);
    if (!note) {
        bus_fail (err, BUS_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy (note, body, len);
    size_t pos = len;
    note [pos++] = '\n';
    for (size_t i = 0; i < count; i++) {
        uint8_t blob [4 + crypto_sign_BYTES];
        memcpy (blob, signers [i].id, 4);
        crypto_sign_detached (blob + 4, NULL, (const uint8_t *) body, len,
                              signers [i].secret_key);
        char b64 [S_B64_68];
        s_b64 (b64, sizeof b64, blob, sizeof blob);
        pos += (size_t) snprintf (note + pos, max - pos, "%s %s %s\n", s_dash, signers [i].name,
                                  b64);
    }
    note [pos] = 0;
    return note;
}

//  "KEY VALUE\n" at *p; the value's start and length. -1 if not that line.
static int
s_line (const char **p, const char *end, const char *key, const char **value, size_t *len)
{
    const char *nl = memchr (*p, '\n', (size_t) (end - *p));
    if (!nl) {
        return -1;
    }
    size_t key_len = key? strlen (key): 0;
    if (key && ((size_t) (nl - *p) <= key_len + 1 || strncmp (*p, key, key_len) != 0
                || (*p) [key_len] != ' ')) {
        return -1;
    }
    *value = *p + (key? key_len + 1: 0);
    *len = (size_t) (nl - *value);
    *p = nl + 1;
    return 0;
}

static int
s_u64 (const char *text, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || strspn (text, "0123456789") < len || (len > 1 && text [0] == '0')) {
        return -1;
    }
    char buf [24];
    memcpy (buf, text, len);
    buf [len] = 0;
    errno = 0;
    unsigned long long v = strtoull (buf, NULL, 10);
    if (errno) {
        return -1;
    }
    *out = v;
    return 0;
}

int
bus_checkpoint_open (bus_checkpoint_t *out, const char *note, size_t len,
                     const bus_signer_t *keys, size_t key_count, size_t *signed_by,
                     uint8_t digest [32], bus_error_t *err)
{
    memset (out, 0, sizeof *out);
    const char *split = NULL;
    for (size_t i = 0; i + 1 < len; i++) {
        if (note [i] == '\n' && note [i + 1] == '\n') {
            split = note + i + 1;
            break;
        }
    }
    if (!split || memchr (note, 0, len)) {
        return bus_fail (err, BUS_ECORRUPT, "not a signed note (no blank line before the "
                         "signatures)");
    }
    const char *p = note, *end = split, *v;
    size_t n;
    uint64_t size = 0;
    int bad = s_line (&p, end, NULL, &v, &n) || n == 0 || n > BUS_CHECKPOINT_ORIGIN_MAX;
    if (!bad) {
        memcpy (out->origin, v, n);
        bad = s_line (&p, end, NULL, &v, &n) || s_u64 (v, n, &size);
        out->size = size;
    }
    bad = bad || s_line (&p, end, NULL, &v, &n) || s_unb64 (out->root, 32, v, n);
    bad = bad || s_line (&p, end, "time", &v, &n) || s_u64 (v, n, &out->time_us);
    if (!bad) {
        bad = s_line (&p, end, "policy", &v, &n) || n > 64;
        if (!bad) {
            snprintf (out->policy, sizeof out->policy, "%.*s", (int) n, v);
            if (strcmp (out->policy, "-") == 0) {
                out->policy [0] = 0;
            }
        }
    }
    bad = bad || s_line (&p, end, "number", &v, &n) || s_u64 (v, n, &out->number);
    bad = bad || s_line (&p, end, "prev", &v, &n) || s_unb64 (out->prev, 32, v, n);
    bad = bad || p != end;
    //  Canonical: the body must be exactly what we would have written, so
    //  one checkpoint has one text and one digest.
    char body [1024];
    size_t body_len = bad? 0: s_body (out, body, sizeof body);
    if (bad || body_len != (size_t) (end - note) || memcmp (body, note, body_len) != 0) {
        return bus_fail (err, BUS_ECORRUPT, "the checkpoint's body is malformed (want origin, "
                         "size, root, then time, policy, number and prev lines)");
    }
    crypto_generichash (digest, 32, (const uint8_t *) body, body_len, NULL, 0);
    //  Signature lines: any one by a key we were given will do.
    p = split + 1;
    const char *note_end = note + len;
    while (p < note_end) {
        if (s_line (&p, note_end, NULL, &v, &n) || n < sizeof s_dash + 1
        ||  memcmp (v, s_dash, sizeof s_dash - 1) != 0 || v [sizeof s_dash - 1] != ' ') {
            return bus_fail (err, BUS_ECORRUPT, "a signature line of the checkpoint is malformed");
        }
        const char *name = v + sizeof s_dash;
        const char *space = memchr (name, ' ', n - sizeof s_dash);
        if (!space) {
            return bus_fail (err, BUS_ECORRUPT, "a signature line of the checkpoint is malformed");
        }
        uint8_t blob [4 + crypto_sign_BYTES];
        size_t name_len = (size_t) (space - name);
        if (s_unb64 (blob, sizeof blob, space + 1, (size_t) (v + n - space - 1)) != 0) {
            continue;                   //  another algorithm, or garbage: not ours
        }
        for (size_t k = 0; k < key_count; k++) {
            if (strlen (keys [k].name) == name_len && memcmp (keys [k].name, name, name_len) == 0
            &&  memcmp (keys [k].id, blob, 4) == 0
            &&  crypto_sign_verify_detached (blob + 4, (const uint8_t *) body, body_len,
                                             keys [k].public_key) == 0) {
                if (signed_by) {
                    *signed_by = k;
                }
                return 0;
            }
        }
    }
    return bus_fail (err, BUS_EKEY, "checkpoint %" PRIu64 " carries no valid signature by a "
                     "key given (forged, or signed by a key not listed with --pub)", out->number);
}


//  --------------------------------------------------------------------------
//  Files

static void
s_path (char *out, size_t max, const char *dir, uint64_t number)
{
    snprintf (out, max, "%s/%020" PRIu64 ".ckpt", dir, number);
}

int
bus_checkpoint_write (const char *dir, uint64_t number, const char *note, bus_error_t *err)
{
    char tmp [4096], path [4096];
    snprintf (tmp, sizeof tmp, "%s/.%020" PRIu64 ".tmp", dir, number);
    s_path (path, sizeof path, dir, number);
    unlink (tmp);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    size_t len = strlen (note);
    int rc = fd >= 0 && write (fd, note, len) == (ssize_t) len && fsync (fd) == 0? 0: -1;
    int saved = errno;
    if (fd >= 0) {
        close (fd);
    }
    //  link, not rename: an existing checkpoint is never replaced.
    if (rc == 0 && link (tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    unlink (tmp);
    if (rc == 0) {
        int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = dfd >= 0 && fsync (dfd) == 0? 0: -1;
        saved = errno;
        if (dfd >= 0) {
            close (dfd);
        }
    }
    if (rc) {
        return bus_fail (err, BUS_ELOGFAIL, "checkpoint %s cannot be written: %s; the bus stops "
                         "delivering until it can write its checkpoints (fix the directory, "
                         "then restart the bus)", path, strerror (saved));
    }
    return 0;
}

int
bus_checkpoint_last (const char *dir, uint64_t *number, bus_error_t *err)
{
    DIR *d = opendir (dir);
    if (!d) {
        return bus_fail (err, BUS_EIO, "checkpoints directory %s: %s", dir, strerror (errno));
    }
    *number = 0;
    struct dirent *e;
    while ((e = readdir (d))) {
        uint64_t n;
        if (strlen (e->d_name) == 25 && strcmp (e->d_name + 20, ".ckpt") == 0
        &&  strspn (e->d_name, "0123456789") == 20) {
            n = strtoull (e->d_name, NULL, 10);
            if (n > *number) {
                *number = n;
            }
        }
    }
    closedir (d);
    return 0;
}

int
bus_checkpoint_read (const char *dir, uint64_t number, char **note, size_t *len, bus_error_t *err)
{
    char path [4096];
    s_path (path, sizeof path, dir, number);
    FILE *file = fopen (path, "r");
    if (!file) {
        if (errno == ENOENT) {
            return 1;
        }
        return bus_fail (err, BUS_EIO, "%s: %s", path, strerror (errno));
    }
    char *buf = malloc (BUS_CHECKPOINT_MAX + 1);
    size_t got = buf? fread (buf, 1, BUS_CHECKPOINT_MAX + 1, file): 0;
    fclose (file);
    if (!buf || got > BUS_CHECKPOINT_MAX) {
        free (buf);
        return bus_fail (err, BUS_ECORRUPT, "%s: larger than a checkpoint can be", path);
    }
    buf [got] = 0;
    *note = buf;
    *len = got;
    return 0;
}
