/*  bus_refusals.h: refusals are counted, not stored frame by frame.

    One agent (or one unauthenticated peer) can send refused frames as fast
    as its socket goes; if each were a synced log record with its payload,
    its garbage would fill the log and stop the bus for everyone. So a
    refusal of a frame (malformed, over budget, over a cap, from a key the
    policy does not name, a refused handshake) and a refusal of a Send for
    load (RATE, BACKLOG, LOGBUDGET, HOLDFULL) goes through this ledger:

    - the first of its kind (who, code) is logged at once as a counter
      record with count 1: when, who, the code, the sentence, the length
      and digest of the frame, never its payload;
    - the ones after it are counted, and once a second each (who, code)
      that had more gets one counter record: first, last, count, and the
      digest of a sample;
    - a kind that was quiet for a second is forgotten, so its next refusal
      is logged at once again.

    So refusals cost the log a few records a second per kind, not a record
    per frame. The table is bounded (BUS_REFUSALS_MAX kinds); past that,
    refusals are counted under who = "(others)".
*/
#ifndef BUS_REFUSALS_H
#define BUS_REFUSALS_H

#include "bus_core.h"

#define BUS_REFUSALS_MAX    1024

typedef struct bus_refusals bus_refusals_t;

bus_refusals_t *
    bus_refusals_new (void);
void
    bus_refusals_destroy (bus_refusals_t **self_p);

//  Notes one refusal of code for who (an agent name or a peer address),
//  with its key fingerprint (or NULL), the sentence, and the refused frame's
//  bytes (digest and length are kept; data may be NULL). True if it was
//  the first of its kind (logged at once; worth a line on stderr).
bool
    bus_refusals_note (bus_core_t *core, const char *who, const char *key_fp, bus_code_t code,
                       const char *reason, const void *data, size_t size);

//  Once a second: one counter record per kind that had more refusals.
void
    bus_refusals_flush (bus_core_t *core, uint64_t now_us);

#endif
