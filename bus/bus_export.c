/*  bus_export.c: records as JSON and as OCSF, see bus_export.h. */
#include "bus_export.h"
#include "bulkhead.pb-c.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  The length of the valid UTF-8 sequence at p (n bytes left), 0 if the
//  byte at p starts none. Strict: no overlongs, surrogates, or values past
//  U+10FFFF (what jansson accepts).
static size_t
s_utf8_len (const uint8_t *p, size_t n)
{
    uint8_t c = p [0];
    size_t len = c < 0x80? 1: c >= 0xc2 && c <= 0xdf? 2: c >= 0xe0 && c <= 0xef? 3
               : c >= 0xf0 && c <= 0xf4? 4: 0;
    if (len <= 1 || len > n) {
        return len > n? 0: len;
    }
    uint32_t value = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((p [i] & 0xc0) != 0x80) {
            return 0;
        }
        value = value << 6 | (p [i] & 0x3f);
    }
    if ((len == 3 && value < 0x800) || (len == 4 && (value < 0x10000 || value > 0x10ffff))
    ||  (value >= 0xd800 && value <= 0xdfff)) {
        return 0;
    }
    return len;
}

char *
bus_export_utf8 (const char *text)
{
    size_t n = strlen (text);
    char *out = malloc (n * 3 + 1);     //  each byte at worst U+FFFD (3 bytes)
    if (!out) {
        return NULL;
    }
    const uint8_t *p = (const uint8_t *) text;
    size_t at = 0, used = 0;
    while (at < n) {
        size_t len = s_utf8_len (p + at, n - at);
        if (len) {
            memcpy (out + used, p + at, len);
            used += len;
            at += len;
        }
        else {
            memcpy (out + used, "\xef\xbf\xbd", 3);
            used += 3;
            at++;
        }
    }
    out [used] = 0;
    return out;
}

//  Sets key to text (made valid UTF-8) if text is set. false if out of memory.
static bool
s_str (json_t *obj, const char *key, const char *text)
{
    if (!text) {
        return true;
    }
    char *valid = bus_export_utf8 (text);
    json_t *value = valid? json_string (valid): NULL;
    free (valid);
    return value && json_object_set_new (obj, key, value) == 0;
}

static bool
s_int (json_t *obj, const char *key, uint64_t value)
{
    //  JSON numbers are doubles to many readers; ours stay below 2^63.
    json_t *number = json_integer ((json_int_t) (value > INT64_MAX? INT64_MAX: value));
    return number && json_object_set_new (obj, key, number) == 0;
}

static bool
s_set (json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new (obj, key, value) == 0;
}

const char *const bus_record_kinds [] = {
    "?", "send", "session", "policy", "delivery-ack", "control", "error", "bus", "hold",
    "alert",            //  RECORD_ALERT (9): a monitoring alert's transition
    "checkpoint",       //  RECORD_CHECKPOINT (10): a signed checkpoint was written
};
const size_t bus_record_kind_count = sizeof bus_record_kinds / sizeof bus_record_kinds [0];
static const char *s_verdicts [] = { NULL, "delivered", "queued", "held", "denied" };

static const char *
s_kind (const Bulkhead__V1__Record *rec)
{
    return (size_t) rec->kind < bus_record_kind_count? bus_record_kinds [rec->kind]: "?";
}

static const char *
s_verdict (const Bulkhead__V1__Record *rec)
{
    return rec->has_verdict && rec->verdict < 5? s_verdicts [rec->verdict]: NULL;
}

static json_t *
s_hex (const ProtobufCBinaryData *data)
{
    char *hex = malloc (data->len * 2 + 1);
    if (!hex) {
        return NULL;
    }
    sodium_bin2hex (hex, data->len * 2 + 1, data->data, data->len);
    json_t *value = json_string (hex);
    free (hex);
    return value;
}

static json_t *
s_seqs (const uint64_t *seqs, size_t n)
{
    json_t *array = json_array ();
    for (size_t i = 0; array && i < n; i++) {
        if (json_array_append_new (array, json_integer ((json_int_t) seqs [i]))) {
            json_decref (array);
            return NULL;
        }
    }
    return array;
}

static json_t *
s_strings (char **texts, size_t n)
{
    json_t *array = json_array ();
    for (size_t i = 0; array && i < n; i++) {
        char *valid = bus_export_utf8 (texts [i]);
        if (!valid || json_array_append_new (array, json_string (valid))) {
            free (valid);
            json_decref (array);
            return NULL;
        }
        free (valid);
    }
    return array;
}

json_t *
bus_export_json (const Bulkhead__V1__Record *rec, size_t raw_len, bool with_payload)
{
    json_t *obj = json_object ();
    //  The order is the order `log --json` always had.
    bool ok = obj && s_int (obj, "seq", rec->seq) && s_int (obj, "time_us", rec->time_us)
           && s_int (obj, "record_bytes", raw_len)
           && s_str (obj, "kind", s_kind (rec)) && s_str (obj, "sender", rec->sender)
           && s_str (obj, "key_fp", rec->key_fp) && s_str (obj, "recipient", rec->recipient)
           && s_str (obj, "intent", rec->intent) && s_str (obj, "intent_class", rec->intent_class)
           && s_str (obj, "action", rec->action) && s_str (obj, "resource", rec->resource)
           && s_str (obj, "tool", rec->tool) && s_str (obj, "content_type", rec->content_type)
           && s_str (obj, "message_id", rec->message_id)
           && s_str (obj, "verdict", s_verdict (rec)) && s_str (obj, "code", rec->code)
           && s_str (obj, "reason", rec->reason) && s_str (obj, "event", rec->event)
           && s_str (obj, "justification", rec->justification)
           && s_str (obj, "restricted_why", rec->restricted_why)
           && s_str (obj, "policy_hash", rec->policy_hash) && s_str (obj, "actor", rec->actor)
           && s_str (obj, "approval_id", rec->approval_id);
    ok = ok && (!rec->has_votes || s_int (obj, "votes", rec->votes))
            && (!rec->has_quorum || s_int (obj, "quorum", rec->quorum))
            && (!rec->has_hold_state || s_int (obj, "hold_state", rec->hold_state))
            && (!rec->has_remaining || s_int (obj, "remaining", rec->remaining))
            && (!rec->n_approvers
                || s_set (obj, "approvers", s_strings (rec->approvers, rec->n_approvers)))
            && (!rec->has_restricted
                || s_set (obj, "restricted", json_boolean (rec->restricted)))
            && (!rec->n_causes || s_set (obj, "causes", s_seqs (rec->causes, rec->n_causes)))
            && (!rec->has_ref_seq || s_int (obj, "ref_seq", rec->ref_seq))
            && (!rec->has_count || s_int (obj, "count", rec->count))
            && (!rec->has_first_us || s_int (obj, "first_us", rec->first_us))
            && (!rec->has_last_us || s_int (obj, "last_us", rec->last_us))
            && s_str (obj, "alert_id", rec->alert_id) && s_str (obj, "alert_kind", rec->alert_kind)
            && s_str (obj, "alert_subject", rec->alert_subject)
            && (!rec->n_evidence || s_set (obj, "evidence", s_seqs (rec->evidence, rec->n_evidence)))
            && (!rec->has_opened_us || s_int (obj, "opened_us", rec->opened_us))
            && (!rec->has_closed_us || s_int (obj, "closed_us", rec->closed_us))
            && (!rec->has_acked_us || s_int (obj, "acked_us", rec->acked_us))
            && (!rec->has_checkpoint_number
                || s_int (obj, "checkpoint_number", rec->checkpoint_number))
            && (!rec->has_checkpoint_size || s_int (obj, "checkpoint_size", rec->checkpoint_size))
            && (!rec->has_checkpoint_root
                || s_set (obj, "checkpoint_root", s_hex (&rec->checkpoint_root)));
    if (ok && rec->has_payload_digest) {
        uint64_t len = rec->has_payload_size? rec->payload_size: rec->payload.len;
        ok = s_int (obj, "payload_len", len)
          && s_set (obj, "payload_digest", s_hex (&rec->payload_digest));
    }
    ok = ok && (!rec->has_payload_purged_us
                || s_int (obj, "payload_purged_us", rec->payload_purged_us))
            && (!rec->has_purge_before_us
                || s_int (obj, "purge_before_us", rec->purge_before_us));
    if (ok && with_payload && rec->has_payload) {
        size_t b64_len = sodium_base64_encoded_len (rec->payload.len,
                                                    sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc (b64_len);
        ok = b64 != NULL;
        if (ok) {
            sodium_bin2base64 (b64, b64_len, rec->payload.data, rec->payload.len,
                               sodium_base64_VARIANT_ORIGINAL);
            ok = s_str (obj, "payload_base64", b64);
            free (b64);
        }
    }
    if (!ok) {
        json_decref (obj);
        return NULL;
    }
    return obj;
}

//  --------------------------------------------------------------------------
//  OCSF

enum { S_API = 6003, S_AUTH = 3002, S_LIFECYCLE = 6002, S_BASE = 0 };

static int
s_class (const Bulkhead__V1__Record *rec)
{
    switch (rec->kind) {
        case BULKHEAD__V1__RECORD_KIND__RECORD_SEND:
        case BULKHEAD__V1__RECORD_KIND__RECORD_CONTROL:
        case BULKHEAD__V1__RECORD_KIND__RECORD_HOLD:
        case BULKHEAD__V1__RECORD_KIND__RECORD_DELIVERY_ACK:
        case BULKHEAD__V1__RECORD_KIND__RECORD_ERROR:
            return S_API;
        case BULKHEAD__V1__RECORD_KIND__RECORD_SESSION:
            return S_AUTH;
        case BULKHEAD__V1__RECORD_KIND__RECORD_BUS:
        case BULKHEAD__V1__RECORD_KIND__RECORD_POLICY:
            return S_LIFECYCLE;
        default:
            return S_BASE;
    }
}

static bool
s_starts (const char *text, const char *prefix)
{
    return text && strncmp (text, prefix, strlen (prefix)) == 0;
}

//  activity_id and its caption, per class.
static int
s_activity (const Bulkhead__V1__Record *rec, int class_uid, const char **name)
{
    switch (class_uid) {
        case S_API:
            if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_SEND) {
                *name = "Create";               //  a message is made on the bus
                return 1;
            }
            if (rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_HOLD
            ||  rec->kind == BULKHEAD__V1__RECORD_KIND__RECORD_DELIVERY_ACK) {
                *name = "Update";               //  a hold's state, a cursor
                return 3;
            }
            *name = "Other";
            return 99;
        case S_AUTH:
            if (s_starts (rec->event, "disconnected")) {
                *name = "Logoff";
                return 2;
            }
            *name = "Logon";
            return 1;
        case S_LIFECYCLE:
            if (s_starts (rec->event, "bus started")) {
                *name = "Start";
                return 3;
            }
            if (s_starts (rec->event, "bus stopped")) {
                *name = "Stop";
                return 4;
            }
            *name = "Other";
            return 99;
        default:
            *name = "Other";
            return 99;
    }
}

static const char *
s_class_name (int class_uid)
{
    return class_uid == S_API? "API Activity": class_uid == S_AUTH? "Authentication"
         : class_uid == S_LIFECYCLE? "Application Lifecycle": "Base Event";
}

//  A named thing: { "name": name } (also uid, for users).
static json_t *
s_named (const char *name, bool user, const char *credential)
{
    json_t *obj = json_object ();
    if (obj && !(s_str (obj, "name", name) && (!user || s_str (obj, "uid", name))
                 && (!user || s_str (obj, "type", "Agent"))
                 && (!user || s_int (obj, "type_id", 99))
                 && s_str (obj, "credential_uid", credential))) {
        json_decref (obj);
        return NULL;
    }
    return obj;
}

static json_t *
s_product (void)
{
    json_t *obj = json_object ();
    if (obj && !(s_str (obj, "name", "bulkhead") && s_str (obj, "vendor_name", "bulkhead"))) {
        json_decref (obj);
        return NULL;
    }
    return obj;
}

json_t *
bus_export_ocsf (const Bulkhead__V1__Record *rec, size_t raw_len)
{
    int class_uid = s_class (rec);
    const char *activity_name = NULL;
    int activity_id = s_activity (rec, class_uid, &activity_name);
    const char *verdict = s_verdict (rec);
    bool held = rec->has_verdict && rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_HELD;
    bool failed = (rec->code && strcmp (rec->code, "OK") != 0)
               || (rec->has_verdict && rec->verdict == BULKHEAD__V1__VERDICT__VERDICT_DENIED);
    int status_id = held? 99: failed? 2: 1;
    const char *who = rec->actor && rec->kind != BULKHEAD__V1__RECORD_KIND__RECORD_SEND
                    ? rec->actor: rec->sender;

    json_t *ev = json_object ();
    json_t *metadata = json_object ();
    json_t *unmapped = json_object ();
    bool ok = ev && metadata && unmapped
           && s_int (ev, "class_uid", (uint64_t) class_uid)
           && s_str (ev, "class_name", s_class_name (class_uid))
           && s_int (ev, "category_uid", (uint64_t) (class_uid / 1000))
           && s_str (ev, "category_name", class_uid == S_AUTH? "Identity & Access Management"
                     : class_uid == S_BASE? "Uncategorized": "Application Activity")
           && s_int (ev, "activity_id", (uint64_t) activity_id)
           && s_str (ev, "activity_name", activity_name)
           && s_int (ev, "type_uid", (uint64_t) class_uid * 100 + (uint64_t) activity_id)
           && s_int (ev, "time", rec->time_us / 1000)
           && s_int (ev, "severity_id", held? 2: failed? 3: 1)
           && s_str (ev, "severity", held? "Low": failed? "Medium": "Informational")
           && s_int (ev, "status_id", (uint64_t) status_id)
           && s_str (ev, "status", held? "Other": failed? "Failure": "Success")
           && s_str (ev, "status_code", rec->code)
           && s_str (ev, "status_detail", rec->reason? rec->reason: rec->event)
           && s_str (ev, "message", rec->reason? rec->reason: rec->event);

    //  metadata: the sequence, what wrote it, and the version we follow.
    char uid [24];
    snprintf (uid, sizeof uid, "%llu", (unsigned long long) rec->seq);
    ok = ok && s_str (metadata, "version", BUS_OCSF_VERSION)
            && s_set (metadata, "product", s_product ())
            && s_str (metadata, "uid", uid) && s_int (metadata, "sequence", rec->seq)
            && s_str (metadata, "log_name", "bulkhead")
            && s_int (metadata, "logged_time", rec->time_us / 1000)
            && s_str (metadata, "correlation_uid", rec->message_id)
            && json_object_set (ev, "metadata", metadata) == 0;

    //  who, with which credential; what, on which resource.
    if (ok && class_uid == S_AUTH) {
        json_t *service = s_named ("bulkhead", false, NULL);
        ok = s_set (ev, "user", s_named (rec->sender? rec->sender: "-", true, rec->key_fp))
          && s_set (ev, "service", service)
          && s_set (ev, "dst_endpoint", s_named ("bulkhead", false, NULL))
          && s_set (ev, "src_endpoint", s_named (rec->sender? rec->sender: "-", false, NULL))
          && s_str (ev, "auth_protocol", "CurveZMQ") && s_int (ev, "auth_protocol_id", 99);
    }
    else if (ok && class_uid == S_LIFECYCLE) {
        ok = s_set (ev, "app", s_product ());
    }
    if (ok && class_uid != S_AUTH) {
        json_t *actor = json_object ();
        ok = actor && (who? s_set (actor, "user", s_named (who, true, rec->key_fp))
                          : s_str (actor, "app_name", "bulkhead"))
          && s_set (ev, "actor", actor);
        if (!ok) {
            json_decref (actor);
        }
    }
    if (ok && class_uid == S_API) {
        json_t *api = json_object ();
        json_t *service = s_named (rec->recipient? rec->recipient: "bulkhead", false, NULL);
        const char *operation = rec->intent? rec->intent: rec->event? rec->event: s_kind (rec);
        ok = api && s_str (api, "operation", operation) && s_set (api, "service", service);
        if (ok && rec->message_id) {
            json_t *request = json_object ();
            ok = request && s_str (request, "uid", rec->message_id)
              && s_set (api, "request", request);
        }
        ok = ok && s_set (ev, "api", api)
                && s_set (ev, "src_endpoint", s_named (rec->sender? rec->sender: "bulkhead",
                                                        false, NULL))
                && (!rec->recipient
                    || s_set (ev, "dst_endpoint", s_named (rec->recipient, false, NULL)));
        if (ok && (rec->resource || rec->intent_class)) {
            json_t *resource = json_object ();
            json_t *resources = json_array ();
            ok = resource && resources && s_str (resource, "name", rec->resource)
              && s_str (resource, "type", rec->intent_class)
              && json_array_append_new (resources, resource) == 0
              && s_set (ev, "resources", resources);
        }
    }
    //  The rest in our names, under unmapped, as OCSF asks.
    ok = ok && s_str (unmapped, "kind", s_kind (rec)) && s_str (unmapped, "verdict", verdict)
            && s_str (unmapped, "intent_class", rec->intent_class)
            && s_str (unmapped, "action", rec->action) && s_str (unmapped, "tool", rec->tool)
            && s_str (unmapped, "event", rec->event)
            && s_str (unmapped, "justification", rec->justification)
            && s_str (unmapped, "restricted_why", rec->restricted_why)
            && s_str (unmapped, "policy_hash", rec->policy_hash)
            && s_str (unmapped, "approval_id", rec->approval_id)
            && s_int (unmapped, "record_bytes", raw_len)
            && (!rec->has_restricted
                || s_set (unmapped, "restricted", json_boolean (rec->restricted)))
            && (!rec->n_causes
                || s_set (unmapped, "causes", s_seqs (rec->causes, rec->n_causes)))
            && (!rec->n_approvers
                || s_set (unmapped, "approvers", s_strings (rec->approvers, rec->n_approvers)))
            && (!rec->has_ref_seq || s_int (unmapped, "ref_seq", rec->ref_seq))
            && (!rec->has_payload_digest
                || s_set (unmapped, "payload_digest", s_hex (&rec->payload_digest)))
            && (!rec->has_payload_size || s_int (unmapped, "payload_size", rec->payload_size))
            && (!rec->has_payload_purged_us
                || s_int (unmapped, "payload_purged_us", rec->payload_purged_us))
            && json_object_set (ev, "unmapped", unmapped) == 0;
    json_decref (metadata);
    json_decref (unmapped);
    if (!ok) {
        json_decref (ev);
        return NULL;
    }
    return ev;
}

int
bus_export_write (FILE *out, const json_t *obj)
{
    char *line = json_dumps (obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!line) {
        return -1;
    }
    //  jansson writes \u escapes in capitals; the log has always printed
    //  them in lower case (and scripts match them): the same JSON either way.
    for (char *p = line; *p; p++) {
        if (p [0] == '\\' && p [1] == 'u') {
            for (int i = 2; i < 6 && p [i]; i++) {
                if (p [i] >= 'A' && p [i] <= 'F') {
                    p [i] = (char) (p [i] - 'A' + 'a');
                }
            }
            p += 5;
        }
        else if (p [0] == '\\' && p [1]) {
            p++;                        //  an escaped character: \\ or \"
        }
    }
    int rc = fputs (line, out) < 0 || fputc ('\n', out) == EOF? -1: 0;
    free (line);
    return rc;
}
