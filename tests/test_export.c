/*  test_export.c: records as JSON (log --json) and as OCSF (log --ocsf),
    checked against the required attributes of OCSF 1.3.0, written here from
    the schema (ocsf-schema: events/base_event.json and its classification
    and occurrence traits, events/application/api_activity.json,
    events/iam/authentication.json, events/application/application_lifecycle
    .json, objects/metadata.json, api.json, user.json, network_endpoint.json):

        every event     activity_id, category_uid, class_uid, type_uid
                        (= class_uid * 100 + activity_id), severity_id, time,
                        metadata { version, product { name, vendor_name } }
        API Activity    actor (at least one of user, app_name), api
        (6003)          { operation }, src_endpoint (at least one of name,
                        ip, hostname, uid)
        Authentication  user (at least one of name, uid); at least one of
        (3002)          service, dst_endpoint
        Application     app { name, vendor_name }
        Lifecycle (6002)
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_export.h"
#include "bulkhead.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(name) BULKHEAD__V1__RECORD_KIND__RECORD_ ## name

static Bulkhead__V1__Record
s_record (int kind, const char *event)
{
    Bulkhead__V1__Record rec = BULKHEAD__V1__RECORD__INIT;
    rec.seq = 42;
    rec.time_us = 1764600000123456ull;
    rec.kind = kind;
    rec.event = (char *) event;
    rec.policy_hash = "ab12";
    rec.code = "OK";
    return rec;
}

//  The line bus_export_write prints, parsed back; checks it is ASCII.
static json_t *
s_line (const json_t *obj, char **text)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buf, &size);
    assert_non_null (out);
    assert_int_equal (bus_export_write (out, obj), 0);
    fclose (out);
    assert_true (size > 1 && buf [size - 1] == '\n');
    for (size_t i = 0; i < size; i++) {
        if ((unsigned char) buf [i] >= 0x80) {
            fail_msg ("byte %zu of the line is 0x%02x, not ASCII: %s", i,
                      (unsigned char) buf [i], buf);
        }
    }
    json_error_t error;
    json_t *back = json_loads (buf, 0, &error);
    if (!back) {
        fail_msg ("the line is not JSON (%s): %s", error.text, buf);
    }
    if (text) {
        *text = buf;
    }
    else {
        free (buf);
    }
    return back;
}

static const json_t *
s_path (const json_t *obj, const char *path)
{
    char copy [128];
    snprintf (copy, sizeof copy, "%s", path);
    const json_t *at = obj;
    for (char *part = strtok (copy, "."); part && at; part = strtok (NULL, ".")) {
        at = json_is_array (at)? json_array_get (at, (size_t) atoi (part))
                               : json_object_get (at, part);
    }
    return at;
}

static void
s_need (const json_t *ev, const char *path)
{
    const json_t *value = s_path (ev, path);
    if (!value || json_is_null (value)
    ||  (json_is_string (value) && !*json_string_value (value))) {
        char *text = json_dumps (ev, JSON_COMPACT);
        fail_msg ("required %s is missing: %s", path, text);
    }
}

static void
s_need_one (const json_t *ev, const char *a, const char *b)
{
    if (!s_path (ev, a) && !s_path (ev, b)) {
        char *text = json_dumps (ev, JSON_COMPACT);
        fail_msg ("needs %s or %s: %s", a, b, text);
    }
}

static json_int_t
s_int (const json_t *ev, const char *path)
{
    const json_t *value = s_path (ev, path);
    if (!json_is_integer (value)) {
        fail_msg ("%s is not an integer", path);
    }
    return json_integer_value (value);
}

//  Checks ev against the required attributes of its class; returns it.
static int
s_check_required (const json_t *ev)
{
    const char *base [] = { "activity_id", "category_uid", "class_uid", "type_uid",
                            "severity_id", "time", "metadata", "metadata.version",
                            "metadata.product", "metadata.product.name",
                            "metadata.product.vendor_name" };
    for (size_t i = 0; i < sizeof base / sizeof base [0]; i++) {
        s_need (ev, base [i]);
    }
    int class_uid = (int) s_int (ev, "class_uid");
    assert_int_equal (s_int (ev, "type_uid"), class_uid * 100 + s_int (ev, "activity_id"));
    assert_int_equal (s_int (ev, "category_uid"), class_uid / 1000);
    assert_string_equal (json_string_value (s_path (ev, "metadata.version")), "1.3.0");
    if (class_uid == 6003) {
        s_need (ev, "actor");
        s_need_one (ev, "actor.user.name", "actor.app_name");
        s_need (ev, "api.operation");
        s_need (ev, "src_endpoint");
        s_need_one (ev, "src_endpoint.name", "src_endpoint.ip");
    }
    else if (class_uid == 3002) {
        s_need (ev, "user");
        s_need_one (ev, "user.name", "user.uid");
        s_need_one (ev, "service", "dst_endpoint");
    }
    else if (class_uid == 6002) {
        s_need (ev, "app.name");
        s_need (ev, "app.vendor_name");
    }
    else {
        assert_int_equal (class_uid, 0);
    }
    return class_uid;
}

static void
test_ocsf_required_fields (void **state)
{
    (void) state;
    struct { int kind; const char *event; const char *sender; int verdict; int want; } cases [] = {
        { K (SEND), NULL, "planner", 1, 6003 },
        { K (SEND), NULL, "planner", 3, 6003 },
        { K (SEND), NULL, "planner", 4, 6003 },
        { K (SESSION), "hello, resume after 0", "planner", 0, 3002 },
        { K (SESSION), "disconnected; unacknowledged messages stay queued", "planner", 0, 3002 },
        { K (SESSION), "handshake refused", NULL, 0, 3002 },
        { K (POLICY), "policy loaded", NULL, 0, 6002 },
        { K (BUS), "bus started", NULL, 0, 6002 },
        { K (BUS), "bus stopped", NULL, 0, 6002 },
        { K (CONTROL), "control op 12", "ops", 0, 6003 },
        { K (HOLD), "approve", "payments", 0, 6003 },
        { K (DELIVERY_ACK), NULL, "search", 0, 6003 },
        { K (ERROR), NULL, "tcp://127.0.0.1:5", 0, 6003 },
        { K (ERROR), NULL, NULL, 0, 6003 },
        { 9, "alert", NULL, 0, 0 },
        { 10, "checkpoint", NULL, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        Bulkhead__V1__Record rec = s_record (cases [i].kind, cases [i].event);
        rec.sender = (char *) cases [i].sender;
        if (cases [i].verdict) {
            rec.has_verdict = true;
            rec.verdict = (uint32_t) cases [i].verdict;
            rec.recipient = "payments";
            rec.intent = "pay";
        }
        json_t *obj = bus_export_ocsf (&rec, 100);
        assert_non_null (obj);
        json_t *ev = s_line (obj, NULL);
        assert_int_equal (s_check_required (ev), cases [i].want);
        json_decref (ev);
        json_decref (obj);
    }
}

//  Who, with which credential, did what, on which resource, with what
//  result, at which place in the log: where each lands (README's table).
static void
test_ocsf_mapping (void **state)
{
    (void) state;
    Bulkhead__V1__Record rec = s_record (K (SEND), NULL);
    rec.sender = "planner";
    rec.key_fp = "0123456789abcdef";
    rec.recipient = "payments";
    rec.intent = "pay";
    rec.intent_class = "finance";
    rec.action = "transfer.create";
    rec.resource = "invoice:77";
    rec.message_id = "m-9";
    rec.has_verdict = true;
    rec.verdict = 4;
    rec.code = "DENIED";
    rec.reason = "planner may not reach payments";
    rec.has_restricted = true;
    rec.restricted = true;
    uint64_t causes [] = { 40, 41 };
    rec.causes = causes;
    rec.n_causes = 2;
    json_t *obj = bus_export_ocsf (&rec, 321);
    json_t *ev = s_line (obj, NULL);
    assert_string_equal (json_string_value (s_path (ev, "actor.user.name")), "planner");
    assert_string_equal (json_string_value (s_path (ev, "actor.user.credential_uid")),
                         "0123456789abcdef");
    assert_string_equal (json_string_value (s_path (ev, "api.operation")), "pay");
    assert_string_equal (json_string_value (s_path (ev, "api.request.uid")), "m-9");
    assert_string_equal (json_string_value (s_path (ev, "dst_endpoint.name")), "payments");
    assert_string_equal (json_string_value (s_path (ev, "resources.0.name")), "invoice:77");
    assert_string_equal (json_string_value (s_path (ev, "resources.0.type")), "finance");
    assert_int_equal (s_int (ev, "status_id"), 2);
    assert_string_equal (json_string_value (s_path (ev, "status_code")), "DENIED");
    assert_int_equal (s_int (ev, "metadata.sequence"), 42);
    assert_string_equal (json_string_value (s_path (ev, "metadata.uid")), "42");
    assert_int_equal (s_int (ev, "time"), 1764600000123);
    assert_int_equal (s_int (ev, "unmapped.causes.1"), 41);
    assert_true (json_is_true (s_path (ev, "unmapped.restricted")));
    assert_string_equal (json_string_value (s_path (ev, "unmapped.action")), "transfer.create");
    json_decref (ev);
    json_decref (obj);

    Bulkhead__V1__Record session = s_record (K (SESSION), "disconnected");
    session.sender = "planner";
    session.key_fp = "0123456789abcdef";
    obj = bus_export_ocsf (&session, 50);
    ev = s_line (obj, NULL);
    assert_int_equal (s_int (ev, "activity_id"), 2);
    assert_string_equal (json_string_value (s_path (ev, "user.name")), "planner");
    assert_string_equal (json_string_value (s_path (ev, "user.credential_uid")),
                         "0123456789abcdef");
    assert_int_equal (s_int (ev, "status_id"), 1);
    json_decref (ev);
    json_decref (obj);
}

//  A reason cut inside a character (the bus cuts long sentences), raw
//  controls, a bidi override, invalid bytes: the line is still ASCII JSON,
//  each bad byte U+FFFD, each character what it was.
static void
test_json_always_valid_utf8 (void **state)
{
    (void) state;
    Bulkhead__V1__Record rec = s_record (K (SEND), NULL);
    rec.sender = "planner";
    rec.reason = "paid 10 \xe2\x82";                       //  a euro sign, cut
    rec.justification = "\x1b[2J see \xe2\x80\xaetxt.exe \xff caf\xc3\xa9 \xf0\x9f\x98\x80";
    rec.resource = "\xed\xa0\x80 surrogate \xc0\xaf overlong";
    rec.message_id = "m\"1\\";
    for (int ocsf = 0; ocsf < 2; ocsf++) {
        json_t *obj = ocsf? bus_export_ocsf (&rec, 10): bus_export_json (&rec, 10, false);
        assert_non_null (obj);
        char *text = NULL;
        json_t *back = s_line (obj, &text);
        const char *reason = json_string_value (s_path (back, ocsf? "status_detail": "reason"));
        assert_string_equal (reason, "paid 10 \xef\xbf\xbd\xef\xbf\xbd");
        const char *why = json_string_value (s_path (back, ocsf? "unmapped.justification"
                                                                : "justification"));
        assert_string_equal (why, "\x1b[2J see \xe2\x80\xaetxt.exe \xef\xbf\xbd caf\xc3\xa9 "
                             "\xf0\x9f\x98\x80");
        assert_non_null (strstr (text, "\\u001b[2J see \\u202etxt.exe \\ufffd caf\\u00e9 "
                                       "\\ud83d\\ude00"));
        if (!ocsf) {
            assert_string_equal (json_string_value (s_path (back, "resource")),
                                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd surrogate "
                                 "\xef\xbf\xbd\xef\xbf\xbd overlong");
            assert_string_equal (json_string_value (s_path (back, "message_id")), "m\"1\\");
        }
        free (text);
        json_decref (back);
        json_decref (obj);
    }
}

//  --json keeps the names and the order it always had (scripts match them).
static void
test_json_names_and_order (void **state)
{
    (void) state;
    Bulkhead__V1__Record rec = s_record (K (SEND), NULL);
    rec.sender = "planner";
    rec.recipient = "payments";
    rec.message_id = "m3";
    rec.has_verdict = true;
    rec.verdict = 4;
    rec.code = "DENIED";
    uint8_t digest [32] = { 0xab };
    rec.has_payload_digest = true;
    rec.payload_digest.data = digest;
    rec.payload_digest.len = 32;
    rec.has_payload_size = true;
    rec.payload_size = 256;
    rec.has_payload = true;
    rec.payload.data = (uint8_t *) "hi";
    rec.payload.len = 2;
    json_t *obj = bus_export_json (&rec, 77, true);
    char *text = NULL;
    json_t *back = s_line (obj, &text);
    const char *order [] = { "{\"seq\":42,\"time_us\":1764600000123456,\"record_bytes\":77",
                             "\"kind\":\"send\"", "\"sender\":\"planner\"",
                             "\"message_id\":\"m3\"", "\"verdict\":\"denied\"",
                             "\"code\":\"DENIED\"", "\"payload_len\":256",
                             "\"payload_digest\":\"ab00", "\"payload_base64\":\"aGk=\"" };
    const char *at = text;
    for (size_t i = 0; i < sizeof order / sizeof order [0]; i++) {
        const char *found = strstr (at, order [i]);
        if (!found) {
            fail_msg ("%s not found (in this order) in %s", order [i], text);
        }
        at = found;
    }
    free (text);
    json_decref (back);
    json_decref (obj);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ocsf_required_fields),
        cmocka_unit_test (test_ocsf_mapping),
        cmocka_unit_test (test_json_always_valid_utf8),
        cmocka_unit_test (test_json_names_and_order),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
