/*  oracle.h: what the fuzz targets check, written from the headers' words
    (bus_wire.h, bus_names.h, bus_print.h), not from the code they check.

    Each check that fails prints what it saw and aborts, so libFuzzer keeps
    the input as a crash with a stack. The references are deliberately
    simple (byte loops, no tricks): two different implementations of one
    promise, compared on every input.
*/
#ifndef FUZZ_ORACLE_H
#define FUZZ_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...) do { \
    if (!(cond)) { \
        fprintf (stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
        fprintf (stderr, __VA_ARGS__); \
        fputc ('\n', stderr); \
        abort (); \
    } \
} while (0)

//  Strict UTF-8 (RFC 3629): the sequence at p of n bytes available, its
//  length 1..4 and *cp, or 0 if it is not a whole, minimal, non-surrogate
//  sequence of at most U+10FFFF.
static inline size_t
ref_utf8 (const uint8_t *p, size_t n, uint32_t *cp)
{
    if (n == 0) {
        return 0;
    }
    if (p [0] < 0x80) {
        *cp = p [0];
        return 1;
    }
    size_t len = p [0] >= 0xf0? 4: p [0] >= 0xe0? 3: p [0] >= 0xc0? 2: 0;
    if (len == 0 || p [0] >= 0xf8 || n < len) {
        return 0;
    }
    uint32_t v = p [0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p [i] & 0xc0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p [i] & 0x3f);
    }
    static const uint32_t least [5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < least [len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return len;
}

static inline size_t
ref_utf8_put (uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out [0] = (uint8_t) cp;
        return 1;
    }
    if (cp < 0x800) {
        out [0] = (uint8_t) (0xc0 | (cp >> 6));
        out [1] = (uint8_t) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out [0] = (uint8_t) (0xe0 | (cp >> 12));
        out [1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        out [2] = (uint8_t) (0x80 | (cp & 0x3f));
        return 3;
    }
    out [0] = (uint8_t) (0xf0 | (cp >> 18));
    out [1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
    out [2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
    out [3] = (uint8_t) (0x80 | (cp & 0x3f));
    return 4;
}

//  bus_wire.h: "Text is valid UTF-8 with no control characters but tab
//  and newline (C0, DEL and C1 are refused)", at most max bytes.
static inline bool
ref_text_valid (const char *text, size_t max)
{
    size_t len = strlen (text);
    if (len > max) {
        return false;
    }
    const uint8_t *p = (const uint8_t *) text;
    for (size_t at = 0; at < len; ) {
        uint32_t cp;
        size_t n = ref_utf8 (p + at, len - at, &cp);
        if (n == 0) {
            return false;
        }
        if ((cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7f && cp <= 0x9f)) {
            return false;
        }
        at += n;
    }
    return true;
}

//  "an id is 1..max printable ASCII bytes" (no space).
static inline bool
ref_id_valid (const char *id, size_t max)
{
    size_t len = strlen (id);
    if (len < 1 || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((uint8_t) id [i] < 0x21 || (uint8_t) id [i] > 0x7e) {
            return false;
        }
    }
    return true;
}

//  bus_names.h: "1..64 bytes of [a-z0-9._-] starting with [a-z0-9]".
static inline bool
ref_name_valid (const char *name, size_t len)
{
    if (!name || len < 1 || len > 64) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t) name [i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool punct = c == '.' || c == '_' || c == '-';
        if (!alnum && !(i > 0 && punct)) {
            return false;
        }
    }
    return true;
}

//  bus_print.h's list of characters that are valid but not shown.
static inline bool
ref_hidden (uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x61c || cp == 0x180e
        || (cp >= 0x200b && cp <= 0x200f) || cp == 0x2028 || cp == 0x2029
        || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064)
        || (cp >= 0x2066 && cp <= 0x2069) || (cp >= 0x206a && cp <= 0x206f)
        || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) || cp == 0xfffe || cp == 0xffff
        || (cp >= 0xe0000 && cp <= 0xe007f) || (cp >= 0x1d173 && cp <= 0x1d17a);
}

static inline int
ref_hex (const char *p, size_t digits, uint32_t *value)
{
    uint32_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        char c = p [i];
        int d = c >= '0' && c <= '9'? c - '0': c >= 'a' && c <= 'f'? c - 'a' + 10: -1;
        if (d < 0) {
            return -1;      //  bus_print writes lower-case hex only
        }
        v = v * 16 + (uint32_t) d;
    }
    *value = v;
    return 0;
}

//  Reads text-mode output back (bus_print.h: "the output reads back to
//  exactly the bytes that were sent"), checking on the way that what is
//  raw may be raw and that every escape is one bus_print.h lists and is
//  needed. Writes the bytes to back (room for out_len bytes: reading
//  back never grows) and returns their count, and in *cut the N of a
//  closing "\[N more bytes]" (0 if none). Aborts on anything else.
static inline size_t
ref_read_back (const char *out, size_t out_len, int flags, uint8_t *back, size_t *cut)
{
    bool line = flags & 1, quote = flags & 2;
    size_t n = 0;
    *cut = 0;
    for (size_t at = 0; at < out_len; ) {
        uint8_t c = (uint8_t) out [at];
        if (c != '\\') {
            uint32_t cp;
            size_t len = ref_utf8 ((const uint8_t *) out + at, out_len - at, &cp);
            FUZZ_CHECK (len > 0, "output byte %zu (0x%02x) is not UTF-8", at, c);
            FUZZ_CHECK (cp >= 0x20 || (!line && (cp == '\n' || cp == '\t')),
                        "raw control 0x%02x in the output at %zu", (unsigned) cp, at);
            FUZZ_CHECK (cp != 0x7f && !ref_hidden (cp),
                        "U+%04X shown raw at %zu", (unsigned) cp, at);
            FUZZ_CHECK (!(quote && cp == '"'), "raw quote at %zu with BUS_PRINT_QUOTE", at);
            memcpy (back + n, out + at, len);
            n += len;
            at += len;
            continue;
        }
        FUZZ_CHECK (at + 1 < out_len, "output ends in a lone backslash");
        char e = out [at + 1];
        uint32_t v;
        if (e == '\\' || e == 'n' || e == 't' || e == 'r' || e == '"') {
            FUZZ_CHECK (e != '"' || quote, "\\\" without BUS_PRINT_QUOTE");
            FUZZ_CHECK ((e != 'n' && e != 't') || line, "\\%c without BUS_PRINT_LINE", e);
            back [n++] = e == 'n'? '\n': e == 't'? '\t': e == 'r'? '\r': (uint8_t) e;
            at += 2;
        }
        else
        if (e == 'x') {
            FUZZ_CHECK (at + 4 <= out_len && ref_hex (out + at + 2, 2, &v) == 0,
                        "bad \\x escape at %zu", at);
            //  A byte: a C0 control or DEL (not tab, newline, CR: those
            //  have their own escapes), or a byte not part of valid UTF-8
            //  where it stands (checked by the caller's comparison).
            FUZZ_CHECK (v >= 0x80 || ((v < 0x20 || v == 0x7f) && v != '\n' && v != '\t' && v != '\r'),
                        "\\x%02x needs no escape", (unsigned) v);
            back [n++] = (uint8_t) v;
            at += 4;
        }
        else
        if (e == 'u' || e == 'U') {
            size_t digits = e == 'u'? 4: 8;
            FUZZ_CHECK (at + 2 + digits <= out_len && ref_hex (out + at + 2, digits, &v) == 0,
                        "bad \\%c escape at %zu", e, at);
            FUZZ_CHECK (ref_hidden (v), "\\%c%0*x is not a hidden character", e,
                        (int) digits, (unsigned) v);
            FUZZ_CHECK ((e == 'u') == (v <= 0xffff), "U+%X written as \\%c", (unsigned) v, e);
            n += ref_utf8_put (back + n, v);
            at += 2 + digits;
        }
        else
        if (e == '[') {
            const char *p = out + at + 2, *end = out + out_len;
            size_t count = 0, digits = 0;
            for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
                count = count * 10 + (size_t) (*p - '0');
            }
            static const char tail [] = " more bytes]";
            FUZZ_CHECK (digits > 0 && (size_t) (end - p) == sizeof tail - 1
                        && memcmp (p, tail, sizeof tail - 1) == 0,
                        "a cut note that is not the end of the output");
            FUZZ_CHECK (count > 0, "a cut of 0 bytes");
            *cut = count;
            at = out_len;
        }
        else {
            FUZZ_CHECK (0, "unknown escape \\%c at %zu", e, at);
        }
    }
    return n;
}

//  JSON mode: one JSON string (RFC 8259), valid UTF-8, every escape one
//  bus_print.h lists; decoded into back as UTF-8 (a pair of surrogate
//  escapes joined; U+FFFD stands for an invalid byte). Returns the length.
static inline size_t
ref_read_json (const char *out, size_t out_len, uint8_t *back)
{
    FUZZ_CHECK (out_len >= 2 && out [0] == '"' && out [out_len - 1] == '"',
                "JSON output is not one string");
    size_t n = 0;
    for (size_t at = 1; at < out_len - 1; ) {
        uint8_t c = (uint8_t) out [at];
        FUZZ_CHECK (c != '"', "unescaped quote inside the JSON string at %zu", at);
        if (c != '\\') {
            uint32_t cp;
            size_t len = ref_utf8 ((const uint8_t *) out + at, out_len - 1 - at, &cp);
            FUZZ_CHECK (len > 0, "JSON output byte %zu is not UTF-8", at);
            FUZZ_CHECK (cp >= 0x20 && cp != 0x7f && !ref_hidden (cp),
                        "U+%04X raw in JSON at %zu", (unsigned) cp, at);
            memcpy (back + n, out + at, len);
            n += len;
            at += len;
            continue;
        }
        FUZZ_CHECK (at + 1 < out_len - 1, "JSON string ends in a backslash");
        char e = out [at + 1];
        if (e == '"' || e == '\\') {
            back [n++] = (uint8_t) e;
            at += 2;
            continue;
        }
        uint32_t v, lo;
        FUZZ_CHECK (e == 'u' && at + 6 <= out_len - 1 && ref_hex (out + at + 2, 4, &v) == 0,
                    "JSON escape \\%c at %zu is not one bus_print writes", e, at);
        at += 6;
        if (v >= 0xd800 && v <= 0xdbff) {
            FUZZ_CHECK (at + 6 <= out_len - 1 && out [at] == '\\' && out [at + 1] == 'u'
                        && ref_hex (out + at + 2, 4, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff,
                        "a high surrogate escape without its low half");
            v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            at += 6;
        }
        FUZZ_CHECK (!(v >= 0xdc00 && v <= 0xdfff), "a lone low surrogate escape");
        FUZZ_CHECK (v < 0x20 || v == 0x7f || ref_hidden (v) || v == 0xfffd,
                    "\\u escape of U+%04X, which needs none", (unsigned) v);
        n += ref_utf8_put (back + n, v);
    }
    return n;
}

//  What JSON mode should show of data: each valid character as it is,
//  each byte not part of valid UTF-8 as U+FFFD. back has 3 * size bytes.
static inline size_t
ref_json_expect (const uint8_t *data, size_t size, uint8_t *back)
{
    size_t n = 0;
    for (size_t at = 0; at < size; ) {
        uint32_t cp;
        size_t len = ref_utf8 (data + at, size - at, &cp);
        if (len == 0) {
            n += ref_utf8_put (back + n, 0xfffd);
            at++;
        }
        else {
            memcpy (back + n, data + at, len);
            n += len;
            at += len;
        }
    }
    return n;
}

//  Where a cut at max bytes must fall: the end of the last whole
//  character (or invalid byte) that ends at or before max.
static inline size_t
ref_cut_at (const uint8_t *data, size_t size, size_t max)
{
    if (max == 0 || max >= size) {
        return size;
    }
    size_t at = 0;
    while (at < size) {
        uint32_t cp;
        size_t len = ref_utf8 (data + at, size - at, &cp);
        size_t take = len? len: 1;
        if (at + take > max) {
            break;
        }
        at += take;
    }
    return at;
}

#endif
