/*  fuzz_wire.c: one frame from an agent, decoded as the bus decodes it.

    bus_wire_decode with the bus's own arena size (bus_server.c), then the
    field checks the bus applies before it trusts, logs or echoes a field:
    bus_intake_invalid for a Send, the id/name/text checks for a Control.
    Checked on every input:
    - a frame that decodes is canonical: bus_wire_pack gives back exactly
      the input bytes, and it decodes again;
    - a second decoder with a small arena agrees, or refuses (bounded);
    - bus_text_valid, bus_id_valid and bus_name_valid say what their
      headers say (tests/fuzz/oracle.h), and bus_intake_invalid refuses
      exactly the Sends whose fields break those rules;
    - bus_bundle_open, which reads an agent's Bundle in place, takes
      exactly the bundles of one or more frames that decode canonically,
      its frames lie inside the input, and bundled again they are the input.
*/
#include "bus_intake.h"
#include "bus_names.h"
#include "bus_outbox.h"
#include "bus_router.h"
#include "bus_wire.h"
#include "oracle.h"

#define ARENA_BUS       (4 * (size_t) BUS_HARD_FRAME_MAX / 16 + 65536)
#define ARENA_SMALL     2048
#define FIELD_MAX       256         //  bus_intake.c
#define JUSTIFICATION_MAX 4096
#define CAUSES_MAX      64

static bus_wire_t *s_wire, *s_small;

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    s_wire = bus_wire_new (ARENA_BUS);
    s_small = bus_wire_new (ARENA_SMALL);
    FUZZ_CHECK (s_wire && s_small, "bus_wire_new");
    return 0;
}

static bool
s_text (const char *text, size_t max)
{
    bool got = bus_text_valid (text, max);
    FUZZ_CHECK (got == ref_text_valid (text, max), "bus_text_valid (\"%s\", %zu) = %d", text, max, got);
    return got;
}

static bool
s_id (const char *id, size_t max)
{
    bool got = bus_id_valid (id, max);
    FUZZ_CHECK (got == ref_id_valid (id, max), "bus_id_valid (\"%s\", %zu) = %d", id, max, got);
    return got;
}

static bool
s_name (const char *name)
{
    bool got = bus_name_valid (name, strlen (name));
    FUZZ_CHECK (got == ref_name_valid (name, strlen (name)), "bus_name_valid (\"%s\") = %d", name, got);
    return got;
}

//  bus_intake.c's rules for a Send, from its sentences.
static void
s_send (const Bulkhead__V1__Send *send)
{
    FUZZ_CHECK (send->message_id && send->recipient && send->intent, "a required string is NULL");
    bool ok = s_id (send->message_id, BUS_MESSAGE_ID_MAX);
    ok = s_name (send->recipient) && ok;
    ok = s_name (send->intent) && ok;
    if (send->action) {
        ok = s_id (send->action, FIELD_MAX) && ok;
    }
    const char *fields [] = { send->action, send->resource, send->content_type,
                              send->source, send->tool, send->sender };
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
        if (fields [i]) {
            ok = s_text (fields [i], FIELD_MAX) && ok;
        }
    }
    if (send->justification) {
        ok = s_text (send->justification, JUSTIFICATION_MAX) && ok;
    }
    ok = send->n_causes <= CAUSES_MAX && ok;
    FUZZ_CHECK (send->n_causes == 0 || send->causes, "causes counted but NULL");
    const char *invalid = bus_intake_invalid (send);
    FUZZ_CHECK ((invalid == NULL) == ok, "bus_intake_invalid says %s", invalid? invalid: "fine");
    if (invalid) {
        FUZZ_CHECK (ref_text_valid (invalid, 1024), "the refusal is not plain text");
    }
}

//  bus_control.c's checks run on the same three functions.
static void
s_control (const Bulkhead__V1__Control *control)
{
    if (control->id) {
        s_id (control->id, 64);
    }
    const char *names [] = { control->agent, control->recipient, control->intent_class };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        if (names [i]) {
            s_name (names [i]);
        }
    }
    if (control->action) {
        s_id (control->action, 256);
    }
    if (control->reason) {
        s_text (control->reason, 1024);
    }
}

//  The in-place reader against the decoder. rc: bus_wire_decode's answer
//  (frame then the decoded frame).
static void
s_bundle (const uint8_t *data, size_t size, int rc, const Bulkhead__V1__Frame *frame)
{
    bus_bundle_reader_t reader;
    size_t count = 0;
    bus_error_t err;
    bool open = bus_bundle_open (&reader, data, size, &count, &err) == 0;
    bool decoded = rc == 0 && frame->body_case == BULKHEAD__V1__FRAME__BODY_BUNDLE
                && frame->bundle->n_frames > 0;
    //  The decoder may refuse for its arena what the reader takes.
    FUZZ_CHECK (open || !decoded, "a canonical bundle of %zu frames refused: %s",
                frame->bundle->n_frames, err.text);
    if (!open) {
        FUZZ_CHECK (err.code == BUS_EMALFORMED && err.text [0], "refused without a sentence");
        return;
    }
    FUZZ_CHECK (!decoded || frame->bundle->n_frames == count, "%zu frames read, %zu decoded",
                count, frame->bundle->n_frames);
    bus_bundle_t again = { 0 };
    const uint8_t *member;
    size_t len;
    size_t n = 0;
    while (bus_bundle_next (&reader, &member, &len)) {
        FUZZ_CHECK (member >= data && len <= size && member - data <= (ptrdiff_t) (size - len),
                    "frame %zu outside the input", n);
        //  (protobuf-c leaves an empty frame's data NULL: no memcmp then)
        FUZZ_CHECK (!decoded || (frame->bundle->frames [n].len == len
                                 && (len == 0
                                     || memcmp (frame->bundle->frames [n].data, member, len) == 0)),
                    "frame %zu differs from the decoder's", n);
        FUZZ_CHECK (bus_bundle_add (&again, member, len) == 0, "bus_bundle_add");
        n++;
    }
    FUZZ_CHECK (n == count, "%zu frames counted, %zu read", count, n);
    if (n > 1) {
        uint8_t *out = malloc (size);
        FUZZ_CHECK (out && bus_bundle_size (&again) == size, "bundled again: %zu bytes, not %zu",
                    bus_bundle_size (&again), size);
        bus_bundle_write (&again, out);
        FUZZ_CHECK (memcmp (out, data, size) == 0, "bundled again: other bytes");
        free (out);
    }
    bus_bundle_reset (&again, 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    Bulkhead__V1__Frame *frame = NULL;
    bus_error_t err;
    memset (&err, 0, sizeof err);
    int rc = bus_wire_decode (s_wire, data, size, &frame, &err);

    //  The small arena never accepts what the big one refuses, and what
    //  it accepts is the same frame (both are canonical: the input).
    Bulkhead__V1__Frame *small = NULL;
    bus_error_t small_err;
    int small_rc = bus_wire_decode (s_small, data, size, &small, &small_err);
    FUZZ_CHECK (rc == 0 || small_rc != 0, "only the small arena accepts: %s", err.text);
    if (small_rc != 0) {
        FUZZ_CHECK (small_err.code == BUS_EMALFORMED, "small arena: code %d", (int) small_err.code);
    }
    s_bundle (data, size, rc, frame);
    if (rc != 0) {
        FUZZ_CHECK (err.code == BUS_EMALFORMED, "code %d: %s", (int) err.code, err.text);
        FUZZ_CHECK (err.text [0] && memchr (err.text, 0, sizeof err.text), "no sentence");
        return 0;
    }
    FUZZ_CHECK (frame && frame->body_case != BULKHEAD__V1__FRAME__BODY__NOT_SET, "no body");
    FUZZ_CHECK (frame->base.n_unknown_fields == 0, "unknown fields kept");

    //  Canonical: packing it again gives back exactly the input.
    size_t again_size;
    uint8_t *again = bus_wire_pack (frame, &again_size);
    FUZZ_CHECK (again, "bus_wire_pack");
    FUZZ_CHECK (again_size == size && memcmp (again, data, size) == 0,
                "accepted a frame of %zu bytes that packs to %zu other bytes", size, again_size);
    free (again);

    const char *body = bus_wire_body_name (frame);
    FUZZ_CHECK (strcmp (body, "empty") != 0, "a frame with a body is named empty");
    switch (frame->body_case) {
        case BULKHEAD__V1__FRAME__BODY_SEND:
            FUZZ_CHECK (frame->send->base.n_unknown_fields == 0, "unknown fields in send");
            s_send (frame->send);
            break;
        case BULKHEAD__V1__FRAME__BODY_CONTROL:
            FUZZ_CHECK (frame->control->base.n_unknown_fields == 0, "unknown fields in control");
            s_control (frame->control);
            break;
        case BULKHEAD__V1__FRAME__BODY_HELLO:
            if (frame->hello->software) {
                s_text (frame->hello->software, FIELD_MAX);
            }
            break;
        default:
            break;
    }
    //  The frame is borrowed from the arena: decoding it again (as the
    //  bus would the next frame) must give the same answer.
    Bulkhead__V1__Frame *twice;
    FUZZ_CHECK (bus_wire_decode (s_wire, data, size, &twice, &err) == 0,
                "a canonical frame fails the second time: %s", err.text);
    return 0;
}
