/*  bus_core.c: the daemon's shared services, see bus_core.h. */
#include "bus_core.h"
#include "bus_keys.h"
#include "bus_names.h"
#include "bus_record.h"
#include "bus_refusals.h"
#include "bus_metrics.h"
#include "med_monitor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  One outcome kept for the observers until the commit, with copies of its
//  strings (the Send and the policy it borrowed from may be gone by then).
struct bus_seen {
    med_event_t event;
    char sender [BUS_NAME_MAX + 1];
    char recipient [BUS_NAME_MAX + 1];
    char intent_class [BUS_NAME_MAX + 1];
    char action [257];
    char intent [BUS_NAME_MAX + 1];
    char stage [32];
    uint64_t causes [64];
};

uint64_t
bus_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void
bus_core_say (bus_core_t *self, const char *id, const char *fmt, ...)
{
    if (self && self->options.quiet) {
        return;
    }
    char when [32];
    time_t now = time (NULL);
    struct tm tm;
    strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&now, &tm));
    char line [1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (line, sizeof line, fmt, args);
    va_end (args);
    fprintf (stderr, "%s %s %s\n", when, id, line);
}

void
bus_core_fail (bus_core_t *self, const bus_error_t *err)
{
    if (!self->failed) {
        self->failed = true;
        self->failure = *err;
        bus_core_say (self, "BUS-FAILCLOSED", "code=%s reason=\"%s\"", bus_errname (err->code),
                      err->text);
    }
}

int
bus_core_append (bus_core_t *self, record_t *rec)
{
    if (self->failed) {
        return -1;
    }
    bus_error_t err;
    if (bus_store_append (self->store, rec, &err) != 0) {
        bus_core_fail (self, &err);
        return -1;
    }
    return 0;
}

void
bus_core_event (bus_core_t *self, Bulkhead__V1__RecordKind kind, const char *agent,
                const char *key_z85, bus_code_t code, const char *event)
{
    record_t rec;
    bus_record_init (self, &rec, kind);
    char fp [17];
    if (key_z85) {
        bus_keys_fingerprint (fp, key_z85);
        rec.key_fp = fp;
    }
    rec.sender = (char *) agent;
    rec.code = (char *) bus_errword (code);
    rec.event = (char *) event;
    bus_core_append (self, &rec);
}

void
bus_core_refuse (bus_core_t *self, const bus_peer_t *peer, bus_code_t code, const char *reason,
                 const char *message_id)
{
    char fp [17] = "";
    if (peer->key) {
        bus_keys_fingerprint (fp, peer->key);
    }
    bool first = bus_refusals_note (self, peer->agent? peer->agent->name: fp, fp, code, reason,
                                    peer->data, peer->size);
    bus_outbox_error (self->outbox, peer->rid, peer->rid_len, code, reason, message_id);
    if (first) {
        bus_core_say (self, "BUS-ERROR", "agent=%s key_fp=%s code=%s reason=\"%s\" (more of "
                      "this kind are counted, not printed)", peer->agent? peer->agent->name: "-",
                      peer->key? fp: "-", bus_errname (code), reason);
    }
}

void
bus_core_observe (bus_core_t *self, const record_t *rec, med_verdict_t verdict, bool hold_closed,
                  const char *stage)
{
    //  Copies are made only for someone who reads them: an observing
    //  stage, the detectors when on, the metrics when served.
    if ((!self->chain || !med_chain_observed (self->chain))
    &&  !(self->monitor && med_monitor_on (self->monitor)) && !self->metrics) {
        return;
    }
    if (self->seen_count == self->seen_alloc) {
        size_t alloc = self->seen_alloc? self->seen_alloc * 2: 64;
        struct bus_seen *seen = realloc (self->seen, alloc * sizeof *seen);
        if (!seen) {
            return;                     //  observers miss one; nothing else does
        }
        self->seen = seen;
        self->seen_alloc = alloc;
    }
    struct bus_seen *seen = &self->seen [self->seen_count++];
    memset (&seen->event, 0, sizeof seen->event);
    bus_text_copy (seen->sender, sizeof seen->sender, rec->sender);
    bus_text_copy (seen->recipient, sizeof seen->recipient, rec->recipient);
    bus_text_copy (seen->intent_class, sizeof seen->intent_class, rec->intent_class);
    bus_text_copy (seen->action, sizeof seen->action, rec->action);
    bus_text_copy (seen->stage, sizeof seen->stage, stage);
    size_t n_causes = rec->n_causes < 64? rec->n_causes: 64;
    if (n_causes) {
        memcpy (seen->causes, rec->causes, n_causes * sizeof rec->causes [0]);
    }
    seen->event.seq = rec->seq;
    seen->event.time_us = rec->time_us;
    seen->event.verdict = verdict;
    seen->event.hold_closed = hold_closed;
    seen->event.code = rec->code? bus_code_from_word (rec->code): BUS_OK;
    seen->event.restricted = rec->has_restricted && rec->restricted;
    seen->event.n_causes = n_causes;
    bus_text_copy (seen->intent, sizeof seen->intent, rec->intent);
    if (rec->has_payload_digest && rec->payload_digest.len == 32) {
        memcpy (seen->event.digest, rec->payload_digest.data, 32);
    }
    seen->event.payload_size = rec->has_payload_size? rec->payload_size: 0;
    seen->event.ref_seq = rec->has_ref_seq? rec->ref_seq: 0;
    //  What the record cost: the store's figure for the one just appended,
    //  so the cost detector measures what the log budget measures.
    seen->event.record_size = rec->seq? bus_store_last_size (self->store): 0;
}

void
bus_core_observe_flush (bus_core_t *self)
{
    for (size_t i = 0; i < self->seen_count; i++) {
        struct bus_seen *seen = &self->seen [i];
        seen->event.sender = seen->sender;
        seen->event.recipient = seen->recipient;
        seen->event.intent_class = seen->intent_class;
        seen->event.action = seen->action;
        seen->event.stage = seen->stage;
        seen->event.causes = seen->causes;
        seen->event.intent = seen->intent;
        if (self->chain && med_chain_observed (self->chain)) {
            med_chain_observe (self->chain, &seen->event);
        }
        if (self->monitor) {
            med_monitor_observe (self->monitor, &seen->event);
        }
        if (self->metrics) {
            bus_metrics_count (self->metrics, self, &seen->event);
        }
    }
    self->seen_count = 0;
}
