/*  bus_print.c: the escaping printer, see bus_print.h. */
#include "bus_print.h"

#include <stdint.h>
#include <string.h>

//  Where the output goes: a FILE, or a buffer that takes whole pieces
//  only (so it never ends inside an escape or a UTF-8 sequence).
typedef struct {
    FILE *file;
    char *buf;
    size_t cap;
    size_t used;                //  bytes in buf
    size_t total;               //  bytes the whole output has
    bool full;                  //  a piece did not fit: take no more
} s_sink_t;

static void
s_put (s_sink_t *sink, const char *bytes, size_t n)
{
    sink->total += n;
    if (sink->file) {
        fwrite (bytes, 1, n, sink->file);
        return;
    }
    if (!sink->full && sink->used + n < sink->cap) {
        memcpy (sink->buf + sink->used, bytes, n);
        sink->used += n;
    }
    else {
        sink->full = true;
    }
}

static void
s_puts (s_sink_t *sink, const char *text)
{
    s_put (sink, text, strlen (text));
}

//  The valid UTF-8 sequence at p (n bytes available): its length 1..4 and
//  *cp, or 0 if the byte at p does not start one. Strict: no overlongs,
//  no surrogates, nothing past U+10FFFF, no sequence cut by the end.
static size_t
s_decode (const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p [0];
    size_t len;
    uint32_t value;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        value = c & 0x1f;
    }
    else
    if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        value = c & 0x0f;
    }
    else
    if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        value = c & 0x07;
    }
    else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p [i] & 0xc0) != 0x80) {
            return 0;
        }
        value = (value << 6) | (p [i] & 0x3f);
    }
    if ((len == 3 && value < 0x800) || (len == 4 && (value < 0x10000 || value > 0x10ffff))
    ||  (value >= 0xd800 && value <= 0xdfff)) {
        return 0;
    }
    *cp = value;
    return len;
}

//  Characters that are valid but must not reach a terminal as they are:
//  C1 controls, bidi controls, invisible format characters, separators
//  that break lines, noncharacters. Ranges, inclusive (see bus_print.h).
static const uint32_t s_hidden_ranges [][2] = {
    { 0x0080, 0x009f },         //  C1 controls (U+009B is CSI)
    { 0x00ad, 0x00ad },         //  soft hyphen
    { 0x061c, 0x061c },         //  Arabic letter mark (bidi)
    { 0x180e, 0x180e },         //  Mongolian vowel separator
    { 0x200b, 0x200f },         //  zero-width space, ZWNJ, ZWJ, LRM, RLM
    { 0x2028, 0x202e },         //  line/paragraph separators, LRE RLE PDF LRO RLO
    { 0x2060, 0x2064 },         //  word joiner, invisible operators
    { 0x2066, 0x206f },         //  LRI RLI FSI PDI, deprecated format characters
    { 0xfeff, 0xfeff },         //  zero-width no-break space (BOM)
    { 0xfff9, 0xfffb },         //  interlinear annotation
    { 0xfffe, 0xffff },         //  noncharacters
    { 0x1d173, 0x1d17a },       //  musical format controls
    { 0xe0000, 0xe007f },       //  tag characters
};

static bool
s_hidden (uint32_t cp)
{
    for (size_t i = 0; i < sizeof s_hidden_ranges / sizeof s_hidden_ranges [0]; i++) {
        if (cp >= s_hidden_ranges [i][0] && cp <= s_hidden_ranges [i][1]) {
            return true;
        }
    }
    return false;
}

//  One character (len > 0, code point cp) or one invalid byte (len 0) in
//  text mode.
static void
s_text_one (s_sink_t *sink, const bus_print_how_t *how, const uint8_t *p, size_t len, uint32_t cp)
{
    char escape [16];
    bool line = how->flags & BUS_PRINT_LINE;
    if (len == 0) {
        snprintf (escape, sizeof escape, "\\x%02x", p [0]);
    }
    else
    if (cp == '\\') {
        snprintf (escape, sizeof escape, "\\\\");
    }
    else
    if (cp == '"' && (how->flags & BUS_PRINT_QUOTE)) {
        snprintf (escape, sizeof escape, "\\\"");
    }
    else
    if (cp == '\n') {
        if (line) {
            snprintf (escape, sizeof escape, "\\n");
        }
        else {
            s_put (sink, "\n", 1);
            if (how->indent) {
                s_puts (sink, how->indent);
            }
            return;
        }
    }
    else
    if (cp == '\t') {
        snprintf (escape, sizeof escape, line? "\\t": "\t");
    }
    else
    if (cp == '\r') {
        snprintf (escape, sizeof escape, "\\r");
    }
    else
    if (cp < 0x20 || cp == 0x7f) {
        snprintf (escape, sizeof escape, "\\x%02x", (unsigned) cp);
    }
    else
    if (s_hidden (cp)) {
        snprintf (escape, sizeof escape, cp <= 0xffff? "\\u%04x": "\\U%08x", (unsigned) cp);
    }
    else {
        s_put (sink, (const char *) p, len);
        return;
    }
    s_puts (sink, escape);
}

//  The same in JSON mode.
static void
s_json_one (s_sink_t *sink, const uint8_t *p, size_t len, uint32_t cp)
{
    char escape [16];
    if (len == 0) {
        snprintf (escape, sizeof escape, "\\ufffd");
    }
    else
    if (cp == '"' || cp == '\\') {
        snprintf (escape, sizeof escape, "\\%c", (char) cp);
    }
    else
    if (cp < 0x20 || cp == 0x7f || (s_hidden (cp) && cp <= 0xffff)) {
        snprintf (escape, sizeof escape, "\\u%04x", (unsigned) cp);
    }
    else
    if (s_hidden (cp)) {
        uint32_t v = cp - 0x10000;
        snprintf (escape, sizeof escape, "\\u%04x\\u%04x", (unsigned) (0xd800 + (v >> 10)),
                  (unsigned) (0xdc00 + (v & 0x3ff)));
    }
    else {
        s_put (sink, (const char *) p, len);
        return;
    }
    s_puts (sink, escape);
}

static size_t
s_print (s_sink_t *sink, const bus_print_how_t *how, const void *data, size_t size)
{
    static const bus_print_how_t plain = { 0, 0, NULL };
    if (!how) {
        how = &plain;
    }
    bool json = how->flags & BUS_PRINT_JSON;
    size_t limit = how->max && how->max < size? how->max: size;
    const uint8_t *p = data;
    size_t at = 0;
    if (json) {
        s_put (sink, "\"", 1);
    }
    while (at < size) {
        uint32_t cp = 0;
        size_t len = s_decode (p + at, size - at, &cp);
        size_t take = len? len: 1;
        if (at + take > limit) {
            break;                  //  never half a character
        }
        if (json) {
            s_json_one (sink, p + at, len, cp);
        }
        else {
            s_text_one (sink, how, p + at, len, cp);
        }
        at += take;
    }
    if (json) {
        s_put (sink, "\"", 1);
    }
    else
    if (at < size) {
        char note [48];
        snprintf (note, sizeof note, "\\[%zu more bytes]", size - at);
        s_puts (sink, note);
    }
    return size - at;
}

size_t
bus_print (FILE *out, const bus_print_how_t *how, const void *data, size_t size)
{
    s_sink_t sink = { .file = out };
    return s_print (&sink, how, data, size);
}

size_t
bus_print_buf (char *buf, size_t cap, const bus_print_how_t *how, const void *data,
               size_t size, size_t *not_shown)
{
    s_sink_t sink = { .buf = buf, .cap = cap };
    size_t cut = s_print (&sink, how, data, size);
    if (cap > 0) {
        buf [sink.used] = 0;
    }
    if (not_shown) {
        *not_shown = cut;
    }
    return sink.total;
}

void
bus_print_text (FILE *out, const char *text, int flags, const char *none)
{
    if (!text) {
        fputs (none, out);
        return;
    }
    bus_print_how_t how = { flags, 0, NULL };
    bus_print (out, &how, text, strlen (text));
}

void
bus_print_line (FILE *out, const char *text)
{
    bus_print_text (out, text, BUS_PRINT_LINE, "-");
}

void
bus_print_json (FILE *out, const char *text)
{
    bus_print_text (out, text, BUS_PRINT_JSON, "null");
}
