/*  bus_holds.h: the approval queue's state.

    Pending holds live in memory for fast look-up and in the pending
    database for durability; every change is written into the store's open
    batch, so it commits (or is lost) together with the log record that
    tells of it. Only pending holds are kept in memory: once released,
    denied or expired a hold stays in the database as history and leaves
    memory. The number in memory is bounded by the policy's hold caps.

    Borrowed bus_hold_t pointers are valid until the next add or save.
*/
#ifndef BUS_HOLDS_H
#define BUS_HOLDS_H

#include "bus_error.h"
#include "bus_policy.h"
#include "bus_store.h"

#include <stdbool.h>
#include <stdint.h>

#define BUS_HOLD_ID_MAX     24
#define BUS_HOLD_VOTES_MAX  16

typedef struct {
    char id [BUS_HOLD_ID_MAX + 1];
    uint64_t seq;                       //  the held SEND record
    uint8_t digest [32];                //  of that record's stored bytes
    char message_id [129];
    char sender [BUS_NAME_MAX + 1];
    char recipient [BUS_NAME_MAX + 1];
    char intent_class [BUS_NAME_MAX + 1];
    char action [257];
    char resource [257];
    char *justification;                //  owned; NULL if none
    bool restricted;
    uint64_t created_us;
    uint64_t expires_us;
    uint32_t quorum;
    char votes [BUS_HOLD_VOTES_MAX][BUS_NAME_MAX + 1];
    uint32_t n_votes;
    int state;                          //  Bulkhead__V1__HoldState
    char reason [256];
    uint64_t release_seq;
} bus_hold_t;

typedef struct bus_holds bus_holds_t;

//  Loads every pending hold from the store.
int
    bus_holds_open (bus_holds_t **out, bus_store_t *store, bus_error_t *err);
void
    bus_holds_destroy (bus_holds_t **self_p);

//  Adds a pending hold (copied) and writes it into the batch.
int
    bus_holds_add (bus_holds_t *self, const bus_hold_t *hold, bus_error_t *err);

//  Writes a changed hold into the batch; one that is no longer pending
//  leaves memory (hold is then invalid).
int
    bus_holds_save (bus_holds_t *self, bus_hold_t *hold, bus_error_t *err);

//  A pending hold by id, or NULL.
bus_hold_t *
    bus_holds_find (bus_holds_t *self, const char *id);

//  The state of any hold ever made (pending or not): 0 and *state (and
//  reason if not NULL), 1 if no such id.
int
    bus_holds_state (bus_holds_t *self, const char *id, int *state,
                     char reason [256], bus_error_t *err);

//  Pending holds: how many in all, or of one sender.
uint32_t
    bus_holds_count (bus_holds_t *self, const char *sender);

//  Iteration over pending holds by index, 0 .. size-1.
uint32_t
    bus_holds_size (bus_holds_t *self);
bus_hold_t *
    bus_holds_at (bus_holds_t *self, uint32_t index);

#endif
