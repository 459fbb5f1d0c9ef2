/*  bus_refusals.c: the refusal ledger, see bus_refusals.h. */
#include "bus_record.h"
#include "bus_refusals.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool used;
    char who [BUS_NAME_MAX + 1];        //  agent name or peer address
    char key_fp [17];
    bus_code_t code;
    uint64_t pending;                   //  counted since the last record
    uint64_t first_us;
    uint64_t last_us;
    uint8_t sample [32];                //  digest of the first frame counted
    uint64_t sample_size;
    char reason [256];
} entry_t;

struct bus_refusals {
    entry_t entries [BUS_REFUSALS_MAX];
    uint32_t used;
};

bus_refusals_t *
bus_refusals_new (void)
{
    return calloc (1, sizeof (bus_refusals_t));
}

void
bus_refusals_destroy (bus_refusals_t **self_p)
{
    if (self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

static uint32_t
s_hash (const char *who, bus_code_t code)
{
    uint32_t h = 2166136261u ^ (uint32_t) code;
    for (const unsigned char *p = (const unsigned char *) who; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h;
}

//  The entry for (who, code), made if missing; "(others)" when full.
static entry_t *
s_entry (bus_refusals_t *self, const char *who, bus_code_t code, bool *made)
{
    *made = false;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t h = s_hash (who, code);
        for (uint32_t i = 0; i < BUS_REFUSALS_MAX; i++) {
            entry_t *entry = &self->entries [(h + i) % BUS_REFUSALS_MAX];
            if (!entry->used) {
                //  Keep a slot in four free so probes stay short; past that
                //  everything new is "(others)".
                if (self->used >= BUS_REFUSALS_MAX * 3 / 4 && strcmp (who, "(others)") != 0) {
                    break;
                }
                memset (entry, 0, sizeof *entry);
                entry->used = true;
                snprintf (entry->who, sizeof entry->who, "%s", who);
                entry->code = code;
                self->used++;
                *made = true;
                return entry;
            }
            if (entry->code == code && strcmp (entry->who, who) == 0) {
                return entry;
            }
        }
        who = "(others)";
    }
    return NULL;
}

static void
s_record (bus_core_t *core, const entry_t *entry, uint64_t count)
{
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_ERROR);
    rec.sender = (char *) entry->who;
    rec.key_fp = entry->key_fp [0]? (char *) entry->key_fp: NULL;
    rec.code = (char *) bus_errword (entry->code);
    rec.reason = (char *) entry->reason;
    rec.event = count == 1 && entry->first_us == entry->last_us? "refused"
                                                               : "refusals merged";
    rec.has_count = true;
    rec.count = count;
    rec.has_first_us = true;
    rec.first_us = entry->first_us;
    rec.has_last_us = true;
    rec.last_us = entry->last_us;
    rec.has_payload_digest = true;
    rec.payload_digest.data = (uint8_t *) entry->sample;
    rec.payload_digest.len = sizeof entry->sample;
    rec.has_payload_size = true;
    rec.payload_size = entry->sample_size;
    bus_core_append (core, &rec);
}

bool
bus_refusals_note (bus_core_t *core, const char *who, const char *key_fp, bus_code_t code,
                   const char *reason, const void *data, size_t size)
{
    bool made;
    entry_t *entry = s_entry (core->refusals, who && who [0]? who: "(unknown)", code, &made);
    if (!entry) {
        return false;
    }
    uint64_t now = bus_now_us ();
    if (entry->pending == 0) {
        entry->first_us = now;
        bus_hash (entry->sample, data? data: "", data? size: 0);
        entry->sample_size = size;
        snprintf (entry->reason, sizeof entry->reason, "%s", reason);
        bus_utf8_repair (entry->reason);
        snprintf (entry->key_fp, sizeof entry->key_fp, "%s", key_fp? key_fp: "");
    }
    entry->last_us = now;
    if (made) {
        //  The first of its kind is in the log at once.
        s_record (core, entry, 1);
        entry->pending = 0;
        entry->first_us = now;
        return true;
    }
    entry->pending++;
    return false;
}

void
bus_refusals_flush (bus_core_t *core, uint64_t now_us)
{
    bus_refusals_t *self = core->refusals;
    bool removed = false;
    for (uint32_t i = 0; i < BUS_REFUSALS_MAX && self->used; i++) {
        entry_t *entry = &self->entries [i];
        if (!entry->used) {
            continue;
        }
        if (entry->pending) {
            s_record (core, entry, entry->pending);
            entry->pending = 0;
        }
        else
        if (now_us - entry->last_us > 1000000) {
            //  Quiet for a second: forgotten.
            entry->used = false;
            self->used--;
            removed = true;
        }
    }
    //  Removing slots breaks probe chains: rebuild the table in place.
    entry_t *old = removed? malloc (sizeof self->entries): NULL;
    if (!old) {
        return;
    }
    memcpy (old, self->entries, sizeof self->entries);
    memset (self->entries, 0, sizeof self->entries);
    self->used = 0;
    for (uint32_t i = 0; i < BUS_REFUSALS_MAX; i++) {
        if (old [i].used) {
            bool made;
            entry_t *entry = s_entry (self, old [i].who, old [i].code, &made);
            if (entry) {
                *entry = old [i];
            }
        }
    }
    free (old);
}
