/*  fuzz_record.c: a log record's stored bytes, decoded as `bulkhead log`,
    `verify` and `approve` decode them (bulkhead__v1__record__unpack, no
    allocator), and every field printed the ways the CLI prints them:
    bus_print_line (a field on a line), BUS_PRINT_LINE | BUS_PRINT_QUOTE
    (a quoted reason), bus_print_json (--json), plain text with an indent,
    and cut at a size. The CLI's printer (cmd_admin.c) is static, and every
    string it shows goes through bus_print: so this walks the record's
    fields from its descriptor (future fields included) and checks what
    bus_print.h promises, on every field:
    - text mode reads back to exactly the bytes given, every escape is one
      the header lists and is needed, nothing raw is a control, a hidden
      character or invalid UTF-8, and a cut names how many bytes it left;
    - JSON mode is one valid JSON string of valid UTF-8 that decodes to the
      text, each invalid byte as U+FFFD;
    - bus_print_buf gives a prefix of the same output that never ends
      inside an escape or a UTF-8 sequence, and the same totals;
    - a cut never splits a character.
    The CLI's own assumptions are checked too: the time a record gives
    converts (gmtime_r), the kind and verdict index their name tables.
    And `log --json` / `--ocsf` (bus_export): each record becomes one line
    of ASCII that jansson reads back as a JSON object.
*/
#include "bus_export.h"
#include "bus_print.h"
#include "record.pb-c.h"
#include "oracle.h"

#include <stdio.h>
#include <sys/types.h>
#include <time.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

//  One FILE for bus_print, made once: its bytes go to a growing buffer
//  (fopencookie, unbuffered), so each print costs no open or close.
static char *s_file_buf;
static size_t s_file_len, s_file_cap;
static FILE *s_file;

static ssize_t
s_file_write (void *cookie, const char *data, size_t size)
{
    (void) cookie;
    if (s_file_len + size > s_file_cap) {
        s_file_cap = (s_file_len + size) * 2 + 4096;
        s_file_buf = realloc (s_file_buf, s_file_cap);
        FUZZ_CHECK (s_file_buf, "realloc");
    }
    memcpy (s_file_buf + s_file_len, data, size);
    s_file_len += size;
    return (ssize_t) size;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    s_file_cap = 4096;
    s_file_buf = malloc (s_file_cap);       //  never NULL, even before a write
    FUZZ_CHECK (s_file_buf, "malloc");
    cookie_io_functions_t io = { .write = s_file_write };
    s_file = fopencookie (NULL, "w", io);
    FUZZ_CHECK (s_file && setvbuf (s_file, NULL, _IONBF, 0) == 0, "fopencookie");
    return 0;
}

//  At most 12 output bytes a byte of input (a 4-byte character as a pair
//  of \u escapes), plus the quotes or a cut note.
#define OUT_MAX(size) (12 * (size) + 64)

static void
s_check (const uint8_t *data, size_t size, int flags, size_t max, size_t cap, bool file)
{
    bus_print_how_t how = { flags, max, NULL };
    size_t room = OUT_MAX (size);
    char *out = malloc (room);
    uint8_t *back = malloc (room);
    uint8_t *want = malloc (3 * size + 16);
    FUZZ_CHECK (out && back && want, "malloc");
    size_t not_shown = 12345;
    size_t len = bus_print_buf (out, room, &how, data, size, &not_shown);
    FUZZ_CHECK (len < room, "%zu bytes of output for %zu of input", len, size);
    FUZZ_CHECK (strlen (out) == len, "a NUL in the output, or it was cut");
    size_t shown = ref_cut_at (data, size, max);
    FUZZ_CHECK (not_shown == size - shown, "not shown %zu of %zu, expected %zu (max %zu)",
                not_shown, size, size - shown, max);
    bool json = flags & BUS_PRINT_JSON;
    if (json) {
        size_t n = ref_read_json (out, len, back);
        size_t w = ref_json_expect (data, shown, want);
        FUZZ_CHECK (n == w && memcmp (back, want, n) == 0, "JSON output does not read back");
    }
    else {
        size_t cut;
        size_t n = ref_read_back (out, len, flags, back, &cut);
        FUZZ_CHECK (cut == not_shown, "the note says %zu, bus_print says %zu", cut, not_shown);
        FUZZ_CHECK (n == shown && memcmp (back, data, shown) == 0,
                    "text output reads back to %zu other bytes (shown %zu)", n, shown);
    }
    //  To a FILE (what the CLI does): the same bytes.
    if (file) {
        s_file_len = 0;
        size_t file_not_shown = bus_print (s_file, &how, data, size);
        fflush (s_file);
        FUZZ_CHECK (file_not_shown == not_shown && s_file_len == len
                    && memcmp (s_file_buf, out, len) == 0, "bus_print and bus_print_buf differ");
    }
    //  Into a buffer of cap bytes: a prefix made of whole pieces.
    char *buf = malloc (cap + 1);
    FUZZ_CHECK (buf, "malloc");
    memset (buf, 'Z', cap + 1);
    size_t buf_not_shown = 12345;
    size_t total = bus_print_buf (buf, cap, &how, data, size, &buf_not_shown);
    FUZZ_CHECK (total == len, "bus_print_buf says %zu bytes with cap %zu, %zu without", total, cap, len);
    FUZZ_CHECK (buf_not_shown == not_shown, "bus_print_buf's not_shown depends on cap");
    FUZZ_CHECK (buf [cap] == 'Z', "bus_print_buf wrote past cap %zu", cap);
    if (cap > 0) {
        size_t got = strnlen (buf, cap);
        FUZZ_CHECK (got < cap, "not NUL-terminated within cap %zu", cap);
        FUZZ_CHECK (memcmp (buf, out, got) == 0, "a short buffer is not a prefix of the output");
        FUZZ_CHECK (cap <= len || got == len, "room for all, but cut at %zu of %zu", got, len);
        if (got < len && got > 0) {
            size_t cut;
            if (json) {
                buf [got] = '"';        //  close it: what is there must be whole
                (void) ref_read_json (buf, got + 1, back);
            }
            else {
                (void) ref_read_back (buf, got, flags, back, &cut);
            }
        }
    }
    free (buf);

    //  An indent follows every newline the text keeps, and nothing else
    //  changes.
    if (!json && !(flags & BUS_PRINT_LINE) && memchr (out, '\n', len)) {
        bus_print_how_t indented = { flags, max, "  | " };
        size_t iroom = room + 4 * size;
        char *iout = malloc (iroom);
        FUZZ_CHECK (iout, "malloc");
        size_t ins;
        size_t ilen = bus_print_buf (iout, iroom, &indented, data, size, &ins);
        size_t j = 0;
        for (size_t i = 0; i < len; i++, j++) {
            FUZZ_CHECK (j < ilen && iout [j] == out [i], "indent changed the text at %zu", i);
            if (out [i] == '\n') {
                FUZZ_CHECK (ilen - j > 4 && memcmp (iout + j + 1, "  | ", 4) == 0,
                            "no indent after a newline");
                j += 4;
            }
        }
        FUZZ_CHECK (j == ilen && ins == not_shown, "indented output is longer");
        free (iout);
    }
    free (out);
    free (back);
    free (want);
}

//  Every mode, whole; and cut at max in one mode the record picks.
static void
s_check_all (const void *data, size_t size, size_t max, size_t cap, size_t pick)
{
    static const int modes [] = {
        0, BUS_PRINT_LINE, BUS_PRINT_LINE | BUS_PRINT_QUOTE, BUS_PRINT_QUOTE, BUS_PRINT_JSON
    };
    size_t n = sizeof modes / sizeof modes [0];
    for (size_t m = 0; m < n; m++) {
        s_check (data, size, modes [m], 0, cap, true);
    }
    if (max && max < size) {
        s_check (data, size, modes [pick % n], max, cap, false);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    Bulkhead__V1__Record *rec = bulkhead__v1__record__unpack (NULL, size, data);
    if (!rec) {
        return 0;
    }
    //  cmd_admin.c: the time, the kind's and the verdict's names.
    time_t secs = (time_t) (rec->time_us / 1000000);
    struct tm tm;
    FUZZ_CHECK (gmtime_r (&secs, &tm), "gmtime_r fails for time_us %llu",
                (unsigned long long) rec->time_us);
    char when [40];
    FUZZ_CHECK (strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm) > 0, "strftime");

    //  Cut and buffer sizes come from the record, so the fuzzer steers them.
    size_t max = (size_t) (rec->seq % 97);
    size_t cap = (size_t) (rec->time_us % 131);
    const ProtobufCMessageDescriptor *d = rec->base.descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields [i];
        const uint8_t *member = (const uint8_t *) rec + f->offset;
        size_t count = 1;
        const uint8_t *values = member;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *) ((const uint8_t *) rec + f->quantifier_offset);
            values = *(const uint8_t *const *) member;
        }
        else
        if (f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING
        &&  !*(const protobuf_c_boolean *) ((const uint8_t *) rec + f->quantifier_offset)) {
            continue;           //  optional, not given
        }
        for (size_t k = 0; k < count; k++) {
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *text = ((const char *const *) values) [k];
                if (text) {
                    s_check_all (text, strlen (text), max, cap, i + k + rec->seq / 97);
                    bus_print_how_t how = { BUS_PRINT_LINE, 0, NULL };
                    char small [8];
                    (void) bus_print_buf (small, sizeof small, &how, text, strlen (text), NULL);
                }
            }
            else
            if (f->type == PROTOBUF_C_TYPE_BYTES) {
                const ProtobufCBinaryData *bin = &((const ProtobufCBinaryData *) values) [k];
                FUZZ_CHECK (bin->len == 0 || bin->data, "bytes with a length and no data");
                s_check_all (bin->len? bin->data: (const uint8_t *) "", bin->len, max, cap,
                             i + k + rec->seq / 97);
            }
        }
    }
    for (int ocsf = 0; ocsf < 2; ocsf++) {
        json_t *obj = ocsf? bus_export_ocsf (rec, size): bus_export_json (rec, size, true);
        FUZZ_CHECK (obj, "bus_export gives no object (%s)", ocsf? "ocsf": "json");
        char *line = NULL;
        size_t line_len = 0;
        FILE *out = open_memstream (&line, &line_len);
        FUZZ_CHECK (out && bus_export_write (out, obj) == 0, "bus_export_write fails");
        fclose (out);
        FUZZ_CHECK (line_len > 1 && line [line_len - 1] == '\n', "the line has no newline");
        for (size_t i = 0; i < line_len; i++) {
            FUZZ_CHECK ((uint8_t) line [i] < 0x80 && (line [i] >= 0x20 || i == line_len - 1),
                        "byte %zu of the JSON line is 0x%02x", i, (uint8_t) line [i]);
        }
        json_error_t error;
        json_t *back = json_loads (line, 0, &error);
        FUZZ_CHECK (json_is_object (back), "the JSON line does not parse: %s", error.text);
        json_decref (back);
        json_decref (obj);
        free (line);
    }
    bulkhead__v1__record__free_unpacked (rec, NULL);
    return 0;
}
