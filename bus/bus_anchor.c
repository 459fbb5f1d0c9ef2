/*  bus_anchor.c: the bus's signed checkpoints of its log, as a job of its
    own: the signing keys, when one is due (every N records, every T
    seconds even idle, at start and stop), writing it outside the data dir
    and logging that it was. The formats and the signatures themselves are
    bus_checkpoint's; the tree is the store's.
*/
#include "bus_anchor.h"
#include "bus_keys.h"
#include "bus_record.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

//  After a commit, when one is due (every checkpoint_every records, every
//  checkpoint_secs seconds even idle, or forced at start and stop): sign
//  the tree of what is durable (a batch may be open again already: what a
//  flush appended, such as a disconnect, is not covered yet), write it to
//  the checkpoints directory, and log that it was written. A checkpoint that cannot be written fails the
//  bus closed, as a log write does: records nobody can anchor are records
//  an attacker could cut unseen.
void
bus_anchor_checkpoint (bus_anchor_t *self, bus_core_t *core, bool force)
{
    const bus_server_options_t *o = &core->options;
    if (!o->checkpoints || core->failed) {
        return;
    }
    uint64_t now = bus_now_us ();
    bus_tree_t tree;
    bus_store_tree_durable (core->store, &tree);
    if (!force && now < self->next_ckpt_us && tree.size - self->ckpt_size < o->checkpoint_every) {
        return;
    }
    bus_checkpoint_t ckpt = { .size = tree.size, .time_us = now, .number = self->ckpt_number + 1 };
    snprintf (ckpt.origin, sizeof ckpt.origin, "%s", self->origin);
    snprintf (ckpt.policy, sizeof ckpt.policy, "%s", core->policy? core->policy->hash: "");
    memcpy (ckpt.prev, self->ckpt_digest, 32);
    bus_tree_root (&tree, ckpt.root);
    bus_error_t err;
    uint8_t digest [32];
    char *note = bus_checkpoint_sign (&ckpt, self->signers, self->signer_count, digest, &err);
    if (!note || bus_checkpoint_write (o->checkpoints, ckpt.number, note, &err) != 0) {
        free (note);
        bus_core_fail (core, &err);
        return;
    }
    free (note);
    self->ckpt_number = ckpt.number;
    self->ckpt_size = ckpt.size;
    memcpy (self->ckpt_digest, digest, 32);
    self->next_ckpt_us = now + (uint64_t) o->checkpoint_secs * 1000000;
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_CHECKPOINT);
    rec.has_checkpoint_number = rec.has_checkpoint_size = true;
    rec.checkpoint_number = ckpt.number;
    rec.checkpoint_size = ckpt.size;
    rec.has_checkpoint_root = rec.has_checkpoint_digest = true;
    rec.checkpoint_root.data = ckpt.root;
    rec.checkpoint_root.len = 32;
    rec.checkpoint_digest.data = digest;
    rec.checkpoint_digest.len = 32;
    rec.code = (char *) bus_errword (BUS_OK);
    char event [64];
    snprintf (event, sizeof event, "checkpoint %" PRIu64 " signed", ckpt.number);
    rec.event = event;
    bus_core_append (core, &rec);
}

//  Is path inside dir (both resolved)? A key or checkpoints directory in
//  the data dir would go wherever the log goes, to whoever can change it.
static bool
s_inside (const char *path, const char *dir)
{
    char rp [PATH_MAX], rd [PATH_MAX];
    if (!realpath (path, rp) || !realpath (dir, rd)) {
        return false;
    }
    size_t n = strlen (rd);
    return strncmp (rp, rd, n) == 0 && (rp [n] == '/' || rp [n] == 0);
}

int
bus_anchor_open (bus_anchor_t *self, bus_core_t *core, const char *bus_key_z85, bus_error_t *err)
{
    const bus_server_options_t *o = &core->options;
    if (!o->checkpoints) {
        if (o->sign_key || o->next_sign_key) {
            return bus_fail (err, BUS_EINVAL, "--sign-key needs --checkpoints DIR (where the "
                             "signed checkpoints go)");
        }
        return 0;
    }
    if (!o->sign_key) {
        return bus_fail (err, BUS_EINVAL, "--checkpoints needs --sign-key FILE (make one with "
                         "bulkhead keygen NAME --sign --dir DIR, outside the data dir)");
    }
    if (mkdir (o->checkpoints, 0755) != 0 && errno != EEXIST) {
        return bus_fail (err, BUS_EIO, "checkpoints directory %s: %s", o->checkpoints,
                         strerror (errno));
    }
    const char *inside [] = { o->checkpoints, o->sign_key, o->next_sign_key };
    for (int i = 0; i < 3; i++) {
        if (inside [i] && s_inside (inside [i], o->data_dir)) {
            return bus_fail (err, BUS_EINVAL, "%s is inside the data dir %s: checkpoints and the "
                             "signing key must live elsewhere, or whoever can rewrite the log "
                             "can rewrite them too", inside [i], o->data_dir);
        }
    }
    if (bus_keys_private (o->checkpoints, 0755, err) != 0
    ||  bus_signer_load (&self->signers [0], o->sign_key, true, err) != 0) {
        return -1;
    }
    self->signer_count = 1;
    if (o->next_sign_key) {
        if (bus_signer_load (&self->signers [1], o->next_sign_key, true, err) != 0) {
            return -1;
        }
        self->signer_count = 2;
    }
    if (o->origin) {
        snprintf (self->origin, sizeof self->origin, "%s", o->origin);
    }
    else {
        char fp [17];
        bus_keys_fingerprint (fp, bus_key_z85);
        snprintf (self->origin, sizeof self->origin, "bulkhead/%s", fp);
    }
    //  Go on from the directory's last checkpoint: its number, its digest
    //  (the next prev), and it must not cover more than the log holds.
    uint64_t last = 0;
    if (bus_checkpoint_last (o->checkpoints, &last, err) != 0) {
        return -1;
    }
    if (last > 0) {
        char *note = NULL;
        size_t len = 0;
        int rc = bus_checkpoint_read (o->checkpoints, last, &note, &len, err);
        bus_checkpoint_t ckpt;
        if (rc == 0) {
            rc = bus_checkpoint_open (&ckpt, note, len, self->signers, self->signer_count, NULL,
                                      self->ckpt_digest, err);
        }
        free (note);
        if (rc != 0) {
            return bus_fail (err, err->code, "checkpoints directory %s: checkpoint %" PRIu64
                             ": %s (is it another bus's directory, or its key not this one?)",
                             o->checkpoints, last, err->text);
        }
        if (ckpt.number != last || ckpt.size > bus_store_last_seq (core->store)) {
            return bus_fail (err, BUS_ECORRUPT, "checkpoint %" PRIu64 " in %s covers %" PRIu64
                             " records but the log in %s has %" PRIu64 ": the log was cut or "
                             "restored from an older copy. Keep that directory as evidence and "
                             "start with a new --checkpoints directory (bulkhead verify "
                             "--checkpoints %s says what is missing)", last, o->checkpoints,
                             ckpt.size, o->data_dir, bus_store_last_seq (core->store),
                             o->checkpoints);
        }
        //  The origin names the log, not the key of the day: it stays what
        //  the first checkpoint said (a CURVE key rotation must not fork it).
        if (o->origin && strcmp (o->origin, ckpt.origin) != 0) {
            return bus_fail (err, BUS_EINVAL, "--origin '%s' is not the origin of the "
                             "checkpoints in %s ('%s'): a log keeps its origin; drop --origin, "
                             "or start a new checkpoints directory", o->origin, o->checkpoints,
                             ckpt.origin);
        }
        snprintf (self->origin, sizeof self->origin, "%s", ckpt.origin);
        self->ckpt_number = last;
        self->ckpt_size = ckpt.size;
    }
    return 0;
}

void
bus_anchor_close (bus_anchor_t *self)
{
    sodium_memzero (self->signers, sizeof self->signers);
}
