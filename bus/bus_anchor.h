/*  bus_anchor.h: signed checkpoints of the log, for the bus (see
    bus_anchor.c; formats and signatures in bus_checkpoint.h).
*/
#ifndef BUS_ANCHOR_H
#define BUS_ANCHOR_H

#include "bus_checkpoint.h"
#include "bus_core.h"

typedef struct {
    bus_signer_t signers [2];           //  the signing key, and the next during a rotation
    size_t signer_count;
    char origin [BUS_CHECKPOINT_ORIGIN_MAX + 1];
    uint64_t ckpt_number;               //  the last checkpoint written (0: none yet)
    uint8_t ckpt_digest [32];           //  its body's digest: the next one's prev
    uint64_t ckpt_size;                 //  records it covered
    uint64_t next_ckpt_us;              //  when the next is due even if idle
} bus_anchor_t;

//  Loads the signing keys and goes on from the checkpoints directory's
//  last checkpoint (refusing a log shorter than it). Nothing to do when the
//  options name no checkpoints directory. 0, or -1 with err.
int
    bus_anchor_open (bus_anchor_t *self, bus_core_t *core, const char *bus_key_z85,
                     bus_error_t *err);

//  After a commit: a checkpoint if one is due (or force). A checkpoint that
//  cannot be written fails the bus closed (bus_core_fail).
void
    bus_anchor_checkpoint (bus_anchor_t *self, bus_core_t *core, bool force);

//  Forgets the signing keys.
void
    bus_anchor_close (bus_anchor_t *self);

#endif
