/*  bus_holds.c: the approval queue's state, see bus_holds.h. */
#include "bus_holds.h"
#include "record.pb-c.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bus_holds {
    bus_store_t *store;
    bus_hold_t **holds;                 //  pending only
    uint32_t size;
    uint32_t alloc;
    bus_grant_t grants [BUS_GRANTS_MAX];    //  live only
    uint32_t grant_count;
};

static bool
s_is_grant (const char *id, size_t len)
{
    return len >= 2 && memcmp (id, "g-", 2) == 0;
}

static void
s_hold_free (bus_hold_t **hold_p)
{
    if (*hold_p) {
        free ((*hold_p)->justification);
        free (*hold_p);
        *hold_p = NULL;
    }
}

static int
s_persist (bus_holds_t *self, const bus_hold_t *hold, bus_error_t *err)
{
    Bulkhead__V1__Hold msg = BULKHEAD__V1__HOLD__INIT;
    char *votes [BUS_HOLD_VOTES_MAX];
    msg.id = (char *) hold->id;
    msg.seq = hold->seq;
    msg.digest.data = (uint8_t *) hold->digest;
    msg.digest.len = sizeof hold->digest;
    msg.sender = (char *) hold->sender;
    msg.message_id = (char *) hold->message_id;
    msg.recipient = (char *) hold->recipient;
    msg.intent_class = (char *) hold->intent_class;
    msg.action = hold->action [0]? (char *) hold->action: NULL;
    msg.resource = hold->resource [0]? (char *) hold->resource: NULL;
    msg.justification = hold->justification;
    msg.has_restricted = true;
    msg.restricted = hold->restricted;
    msg.created_us = hold->created_us;
    msg.expires_us = hold->expires_us;
    msg.quorum = hold->quorum;
    for (uint32_t i = 0; i < hold->n_votes; i++) {
        votes [i] = (char *) hold->votes [i];
    }
    msg.n_votes = hold->n_votes;
    msg.votes = votes;
    msg.state = hold->state;
    msg.reason = hold->reason [0]? (char *) hold->reason: NULL;
    msg.has_release_seq = hold->release_seq > 0;
    msg.release_seq = hold->release_seq;
    size_t size = bulkhead__v1__hold__get_packed_size (&msg);
    uint8_t *data = malloc (size);
    if (!data) {
        return bus_fail (err, BUS_ENOMEM, "out of memory for a hold");
    }
    bulkhead__v1__hold__pack (&msg, data);
    int rc = bus_store_put (self->store, BUS_DB_PENDING, hold->id, strlen (hold->id), data, size, err);
    free (data);
    return rc;
}

static Bulkhead__V1__Hold *
s_read (bus_holds_t *self, const char *id, bus_error_t *err)
{
    void *value = NULL;
    size_t size = 0;
    if (bus_store_get (self->store, BUS_DB_PENDING, id, strlen (id), &value, &size, err) != 0) {
        return NULL;
    }
    Bulkhead__V1__Hold *msg = bulkhead__v1__hold__unpack (NULL, size, value);
    free (value);
    return msg;
}

static int
s_append (bus_holds_t *self, bus_hold_t *hold, bus_error_t *err)
{
    if (self->size == self->alloc) {
        uint32_t alloc = self->alloc? self->alloc * 2: 64;
        bus_hold_t **holds = realloc (self->holds, alloc * sizeof *holds);
        if (!holds) {
            return bus_fail (err, BUS_ENOMEM, "out of memory for holds");
        }
        self->holds = holds;
        self->alloc = alloc;
    }
    self->holds [self->size++] = hold;
    return 0;
}

static bus_hold_t *
s_from_msg (const Bulkhead__V1__Hold *msg)
{
    bus_hold_t *hold = calloc (1, sizeof *hold);
    if (!hold) {
        return NULL;
    }
    snprintf (hold->id, sizeof hold->id, "%s", msg->id);
    hold->seq = msg->seq;
    if (msg->digest.len == sizeof hold->digest) {
        memcpy (hold->digest, msg->digest.data, sizeof hold->digest);
    }
    snprintf (hold->sender, sizeof hold->sender, "%s", msg->sender);
    snprintf (hold->message_id, sizeof hold->message_id, "%s", msg->message_id? msg->message_id: "");
    snprintf (hold->recipient, sizeof hold->recipient, "%s", msg->recipient);
    snprintf (hold->intent_class, sizeof hold->intent_class, "%s", msg->intent_class);
    snprintf (hold->action, sizeof hold->action, "%s", msg->action? msg->action: "");
    snprintf (hold->resource, sizeof hold->resource, "%s", msg->resource? msg->resource: "");
    hold->justification = msg->justification? strdup (msg->justification): NULL;
    hold->restricted = msg->has_restricted && msg->restricted;
    hold->created_us = msg->created_us;
    hold->expires_us = msg->expires_us;
    hold->quorum = msg->quorum;
    for (size_t i = 0; i < msg->n_votes && i < BUS_HOLD_VOTES_MAX; i++) {
        snprintf (hold->votes [i], sizeof hold->votes [i], "%s", msg->votes [i]);
        hold->n_votes++;
    }
    hold->state = msg->state;
    snprintf (hold->reason, sizeof hold->reason, "%s", msg->reason? msg->reason: "");
    hold->release_seq = msg->has_release_seq? msg->release_seq: 0;
    return hold;
}

static int
s_grant_persist (bus_holds_t *self, const bus_grant_t *grant, bus_error_t *err)
{
    Bulkhead__V1__Grant msg = BULKHEAD__V1__GRANT__INIT;
    msg.id = (char *) grant->id;
    msg.approver = (char *) grant->approver;
    msg.sender = (char *) grant->sender;
    msg.recipient = (char *) grant->recipient;
    msg.intent_class = (char *) grant->intent_class;
    msg.action = grant->action [0]? (char *) grant->action: NULL;
    msg.has_remaining = grant->counted;
    msg.remaining = grant->remaining;
    msg.expires_us = grant->expires_us;
    msg.created_us = grant->created_us;
    size_t size = bulkhead__v1__grant__get_packed_size (&msg);
    uint8_t *data = malloc (size);
    if (!data) {
        return bus_fail (err, BUS_ENOMEM, "out of memory for a grant");
    }
    bulkhead__v1__grant__pack (&msg, data);
    int rc = bus_store_put (self->store, BUS_DB_PENDING, grant->id, strlen (grant->id), data, size, err);
    free (data);
    return rc;
}

//  Loads one entry of the pending database: a pending hold or a live grant
//  goes to memory; history stays where it is. An entry that does not decode
//  is skipped (it cannot be acted on), as are keys that are none of ours.
static int
s_load (bus_holds_t *self, const char *key, size_t key_len, bus_error_t *err)
{
    if (key_len == 0 || key_len > BUS_HOLD_ID_MAX) {
        return 0;
    }
    char id [BUS_HOLD_ID_MAX + 1];
    memcpy (id, key, key_len);
    id [key_len] = 0;
    if (s_is_grant (id, key_len)) {
        void *value = NULL;
        size_t size = 0;
        if (bus_store_get (self->store, BUS_DB_PENDING, id, key_len, &value, &size, err) != 0) {
            return 0;
        }
        Bulkhead__V1__Grant *msg = bulkhead__v1__grant__unpack (NULL, size, value);
        free (value);
        if (!msg) {
            return 0;
        }
        if (self->grant_count < BUS_GRANTS_MAX) {
            bus_grant_t *grant = &self->grants [self->grant_count++];
            memset (grant, 0, sizeof *grant);
            snprintf (grant->id, sizeof grant->id, "%s", msg->id);
            snprintf (grant->approver, sizeof grant->approver, "%s", msg->approver);
            snprintf (grant->sender, sizeof grant->sender, "%s", msg->sender);
            snprintf (grant->recipient, sizeof grant->recipient, "%s", msg->recipient);
            snprintf (grant->intent_class, sizeof grant->intent_class, "%s", msg->intent_class);
            snprintf (grant->action, sizeof grant->action, "%s", msg->action? msg->action: "");
            grant->counted = msg->has_remaining;
            grant->remaining = msg->remaining;
            grant->expires_us = msg->expires_us;
            grant->created_us = msg->created_us;
        }
        bulkhead__v1__grant__free_unpacked (msg, NULL);
        return 0;
    }
    Bulkhead__V1__Hold *msg = s_read (self, id, err);
    if (!msg) {
        return 0;
    }
    int rc = 0;
    if (msg->state == BULKHEAD__V1__HOLD_STATE__HOLD_PENDING) {
        bus_hold_t *hold = s_from_msg (msg);
        if (!hold || s_append (self, hold, err) != 0) {
            s_hold_free (&hold);
            rc = bus_fail (err, BUS_ENOMEM, "out of memory loading holds");
        }
    }
    bulkhead__v1__hold__free_unpacked (msg, NULL);
    return rc;
}

int
bus_holds_open (bus_holds_t **out, bus_store_t *store, bus_error_t *err)
{
    bus_holds_t *self = calloc (1, sizeof *self);
    if (!self) {
        return bus_fail (err, BUS_ENOMEM, "out of memory");
    }
    self->store = store;
    //  The pending database is small (bounded by the caps plus history);
    //  walk it by key and keep what is live. The walk goes on from the
    //  whole key just read, whatever its length.
    void *after = NULL;
    size_t after_len = 0;
    while (true) {
        void *key = NULL;
        size_t key_len = 0;
        int rc = bus_store_next_key (store, BUS_DB_PENDING, after, after_len, &key, &key_len, err);
        free (after);
        after = key;
        after_len = key_len;
        if (rc == 0) {
            rc = s_load (self, key, key_len, err);
        }
        if (rc == 1) {
            break;
        }
        if (rc != 0) {
            free (after);
            bus_holds_destroy (&self);
            return -1;
        }
    }
    *out = self;
    return 0;
}

void
bus_holds_destroy (bus_holds_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    bus_holds_t *self = *self_p;
    for (uint32_t i = 0; i < self->size; i++) {
        s_hold_free (&self->holds [i]);
    }
    free (self->holds);
    free (self);
    *self_p = NULL;
}

int
bus_holds_add (bus_holds_t *self, const bus_hold_t *hold, bus_error_t *err)
{
    bus_hold_t *copy = malloc (sizeof *copy);
    if (!copy) {
        return bus_fail (err, BUS_ENOMEM, "out of memory for a hold");
    }
    *copy = *hold;
    copy->justification = hold->justification? strdup (hold->justification): NULL;
    if (s_persist (self, copy, err) != 0 || s_append (self, copy, err) != 0) {
        s_hold_free (&copy);
        return -1;
    }
    return 0;
}

int
bus_holds_save (bus_holds_t *self, bus_hold_t *hold, bus_error_t *err)
{
    if (s_persist (self, hold, err) != 0) {
        return -1;
    }
    if (hold->state != BULKHEAD__V1__HOLD_STATE__HOLD_PENDING) {
        for (uint32_t i = 0; i < self->size; i++) {
            if (self->holds [i] == hold) {
                s_hold_free (&self->holds [i]);
                self->holds [i] = self->holds [--self->size];
                break;
            }
        }
    }
    return 0;
}

bus_hold_t *
bus_holds_find (bus_holds_t *self, const char *id)
{
    for (uint32_t i = 0; i < self->size; i++) {
        if (strcmp (self->holds [i]->id, id) == 0) {
            return self->holds [i];
        }
    }
    return NULL;
}

int
bus_holds_state (bus_holds_t *self, const char *id, int *state, char reason [256], bus_error_t *err)
{
    //  A grant's id names no hold: never decode a grant as one.
    if (strlen (id) > BUS_HOLD_ID_MAX || s_is_grant (id, strlen (id))) {
        return 1;
    }
    Bulkhead__V1__Hold *msg = s_read (self, id, err);
    if (!msg) {
        return 1;
    }
    *state = msg->state;
    if (reason) {
        snprintf (reason, 256, "%s", msg->reason? msg->reason: "");
    }
    bulkhead__v1__hold__free_unpacked (msg, NULL);
    return 0;
}

uint32_t
bus_holds_count (bus_holds_t *self, const char *sender)
{
    if (!sender) {
        return self->size;
    }
    uint32_t count = 0;
    for (uint32_t i = 0; i < self->size; i++) {
        count += strcmp (self->holds [i]->sender, sender) == 0;
    }
    return count;
}

uint32_t
bus_holds_size (bus_holds_t *self)
{
    return self->size;
}

bus_hold_t *
bus_holds_at (bus_holds_t *self, uint32_t index)
{
    return index < self->size? self->holds [index]: NULL;
}

int
bus_holds_grant_add (bus_holds_t *self, const bus_grant_t *grant, bus_error_t *err)
{
    if (self->grant_count >= BUS_GRANTS_MAX) {
        return bus_fail (err, BUS_EINVAL, "%d grants are live, the most the bus keeps; "
                         "revoke one or let one end first", BUS_GRANTS_MAX);
    }
    if (s_grant_persist (self, grant, err) != 0) {
        return -1;
    }
    self->grants [self->grant_count++] = *grant;
    return 0;
}

int
bus_holds_grant_save (bus_holds_t *self, bus_grant_t *grant, bool ended, bus_error_t *err)
{
    if (!ended) {
        return s_grant_persist (self, grant, err);
    }
    if (bus_store_del (self->store, BUS_DB_PENDING, grant->id, strlen (grant->id), err) != 0) {
        return -1;
    }
    uint32_t index = (uint32_t) (grant - self->grants);
    assert (index < self->grant_count);
    self->grants [index] = self->grants [--self->grant_count];
    return 0;
}

bus_grant_t *
bus_holds_grant_find (bus_holds_t *self, const char *id)
{
    for (uint32_t i = 0; i < self->grant_count; i++) {
        if (strcmp (self->grants [i].id, id) == 0) {
            return &self->grants [i];
        }
    }
    return NULL;
}

bus_grant_t *
bus_holds_grant_match (bus_holds_t *self, const char *sender, const char *recipient,
                       const char *intent_class, const char *action)
{
    for (uint32_t i = 0; i < self->grant_count; i++) {
        bus_grant_t *grant = &self->grants [i];
        if (strcmp (grant->sender, sender) == 0
        &&  strcmp (grant->recipient, recipient) == 0
        &&  strcmp (grant->intent_class, intent_class) == 0
        &&  strcmp (grant->action, action? action: "") == 0) {
            return grant;
        }
    }
    return NULL;
}

uint32_t
bus_holds_grant_count (bus_holds_t *self)
{
    return self->grant_count;
}

bus_grant_t *
bus_holds_grant_at (bus_holds_t *self, uint32_t index)
{
    return index < self->grant_count? &self->grants [index]: NULL;
}
