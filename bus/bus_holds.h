/*  bus_holds.h: the approval queue's state.

    Pending holds live in memory for fast look-up and in the pending
    database for durability; every change is written into the store's open
    batch, so it commits (or is lost) together with the log record that
    tells of it. Only pending holds are kept in memory: once released,
    denied or expired a hold stays in the database as history and leaves
    memory. The number in memory is bounded by the policy's hold caps.

    Standing grants live here too, in the same database under ids "g-..."
    (holds are "h-..."), so a grant's use commits with the message it let
    through. Only live grants are kept, at most BUS_GRANTS_MAX; an ended
    grant (used up, expired, revoked) is deleted from memory and database
    alike: the log keeps its story, and a restart loads only what is live.

    Borrowed bus_hold_t pointers are valid until the next add or save;
    borrowed bus_grant_t pointers until the next grant add or save.
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
#define BUS_GRANTS_MAX      256         //  live grants; one more is refused

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
    bool retry;                         //  approved but refused for room: decide again
                                        //  on the timer (memory only; a start decides
                                        //  every hold again anyway)
} bus_hold_t;

//  A standing grant: approver lets exactly (sender, recipient, class,
//  action) through without a hold while it lives.
typedef struct {
    char id [BUS_HOLD_ID_MAX + 1];
    char approver [BUS_NAME_MAX + 1];
    char sender [BUS_NAME_MAX + 1];
    char recipient [BUS_NAME_MAX + 1];
    char intent_class [BUS_NAME_MAX + 1];
    char action [257];                  //  "" matches only messages with no action
    bool counted;                       //  limited by count
    uint32_t remaining;                 //  messages left, if counted (> 0 while live)
    uint64_t expires_us;                //  ends then in any case
    uint64_t created_us;
} bus_grant_t;

typedef struct bus_holds bus_holds_t;

//  Loads every pending hold and every live grant from the store.
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

//  The state of any hold ever made (ids that are not a hold's: 1) (pending or not): 0 and *state (and
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

//  Adds a live grant (copied) and writes it into the batch. EINVAL when
//  BUS_GRANTS_MAX grants live already.
int
    bus_holds_grant_add (bus_holds_t *self, const bus_grant_t *grant, bus_error_t *err);

//  Writes a changed grant into the batch; with ended, deletes it from the
//  database and memory instead (grant is then invalid).
int
    bus_holds_grant_save (bus_holds_t *self, bus_grant_t *grant, bool ended,
                          bus_error_t *err);

//  A live grant by id, or NULL.
bus_grant_t *
    bus_holds_grant_find (bus_holds_t *self, const char *id);

//  The first live grant for exactly this (sender, recipient, class,
//  action), or NULL. action NULL is the same as "". Time is the caller's to
//  check.
bus_grant_t *
    bus_holds_grant_match (bus_holds_t *self, const char *sender, const char *recipient,
                           const char *intent_class, const char *action);

//  Iteration over live grants by index, 0 .. count-1.
uint32_t
    bus_holds_grant_count (bus_holds_t *self);
bus_grant_t *
    bus_holds_grant_at (bus_holds_t *self, uint32_t index);

#endif
