/*  bus_outbox.h: what a batch decided to send, held until it commits.

    Nothing leaves the bus about a message before its record is durable: the
    handlers put ACKs, WELCOMEs, ERRORs, Pending notices and DELIVERs here,
    and the core sends them after the commit, or turns them into ERRORs when
    the commit failed. Bounded by the batch: at most a few frames per frame
    read (the core keeps room for them before it reads one).
*/
#ifndef BUS_OUTBOX_H
#define BUS_OUTBOX_H

#include "bulkhead.pb-c.h"
#include "bus_error.h"
#include "bus_router.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_MESSAGE_ID_MAX      128

struct bus_session;

typedef struct {
    struct bus_session *session;        //  DELIVERs: the recipient
    uint8_t rid [BUS_RID_MAX];          //  other frames: the peer
    size_t rid_len;
    uint8_t *data;                      //  owned
    size_t size;
    uint64_t deliver_seq;               //  non-zero for a DELIVER
    bool restricted;                    //  a DELIVER of restricted content
    uint64_t time_us;                   //  its record's time
    char message_id [BUS_MESSAGE_ID_MAX + 1];   //  for ERROR if the commit fails
} bus_out_t;

typedef struct bus_outbox bus_outbox_t;

bus_outbox_t *
    bus_outbox_new (void);
void
    bus_outbox_destroy (bus_outbox_t **self_p);

//  Makes sure room entries more can be added without growing. 0 or -1.
int
    bus_outbox_reserve (bus_outbox_t *self, size_t room);

//  Packs frame for rid (message_id, if not NULL, names the Send it answers).
//  NULL when memory is out (the frame is then not sent).
bus_out_t *
    bus_outbox_frame (bus_outbox_t *self, const uint8_t *rid, size_t rid_len,
                      const Bulkhead__V1__Frame *frame, const char *message_id);

//  An ERROR frame with code and reason.
void
    bus_outbox_error (bus_outbox_t *self, const uint8_t *rid, size_t rid_len,
                      bus_code_t code, const char *reason, const char *message_id);

//  A DELIVER of seq (data packed by the caller, owned by the outbox from
//  here, also on failure) for session. -1 when memory is out.
int
    bus_outbox_deliver (bus_outbox_t *self, struct bus_session *session, uint64_t seq,
                        bool restricted, uint64_t time_us, uint8_t *data, size_t size);

//  A DELIVER the recipient's window held back is kept, by seq, for the
//  pump: a backlog near the log's tail then goes out without reading,
//  decoding and re-encoding its records (at saturation most DELIVERs wait
//  for the window). A ring of BUS_OUTBOX_KEEP seqs and at most
//  BUS_OUTBOX_KEEP_BYTES in all: what falls out, or never fit, the pump
//  rebuilds from the log as before. The frame does not depend on the
//  connection, so it stays good across a reconnect; a declassification
//  since is the pump's to apply (it rebuilds then).
#define BUS_OUTBOX_KEEP         8192
#define BUS_OUTBOX_KEEP_BYTES   ((size_t) 32 << 20)
#define BUS_OUTBOX_KEEP_FRAME   ((size_t) 64 << 10)

//  Keeps out's DELIVER (and sets out->data to NULL) if it fits.
void
    bus_outbox_keep (bus_outbox_t *self, bus_out_t *out);

//  The kept DELIVER of seq, now the caller's to free, or NULL.
uint8_t *
    bus_outbox_take (bus_outbox_t *self, uint64_t seq, size_t *size, bool *restricted,
                     uint64_t *time_us);

//  The commit failed: sends every peer an ERROR with code and reason
//  instead of what was queued for it, drops the DELIVERs, and clears.
void
    bus_outbox_fail (bus_outbox_t *self, void *router, bus_code_t code, const char *reason);

//  The entries, in order; then clear frees their data.
size_t
    bus_outbox_count (bus_outbox_t *self);
bus_out_t *
    bus_outbox_at (bus_outbox_t *self, size_t index);
void
    bus_outbox_clear (bus_outbox_t *self);

#endif
