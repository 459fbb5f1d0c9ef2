/*  test_print.c: the escaping printer (bus/bus_print.c) against hostile text.

    Exact outputs for the cases a person would name (terminal title and
    clear-screen sequences, CSI as a C1 character, bidi overrides, invalid
    UTF-8, a literal backslash that looks like an escape), then properties
    over random byte strings (the seed is printed; BULKHEAD_SEED repeats a
    run): text output reads back to the very bytes, holds no control, no
    C1, no bidi or zero-width character and no invalid UTF-8; a cut never
    splits a character; JSON output is always a valid JSON string. */
#include "check.h"

#include "bus_print.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

//  The text output of size bytes of data with flags and max (static).
static const char *
s_text (const void *data, size_t size, int flags, size_t max)
{
    static char out [65536];
    bus_print_how_t how = { flags, max, NULL };
    size_t need = bus_print_buf (out, sizeof out, &how, data, size, NULL);
    assert_true (need < sizeof out);
    assert_int_equal (strlen (out), need);
    return out;
}

#define TEXT(literal)       s_text (literal, sizeof literal - 1, 0, 0)
#define LINE(literal)       s_text (literal, sizeof literal - 1, BUS_PRINT_LINE, 0)
#define JSON(literal)       s_text (literal, sizeof literal - 1, BUS_PRINT_JSON, 0)

//  What must never reach a terminal raw, decided here independently of
//  the printer: the characters the brief and bus_print.h name.
static bool
s_forbidden (uint32_t cp)
{
    return (cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7f
        || (cp >= 0x80 && cp <= 0x9f)
        || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e)
        || (cp >= 0x2066 && cp <= 0x2069)
        || (cp >= 0x200b && cp <= 0x200d) || cp == 0x2060 || cp == 0xfeff
        || cp == 0x061c || cp == 0x2028 || cp == 0x2029 || (cp >= 0xe0000 && cp <= 0xe007f);
}

//  Walks out as strict UTF-8; false if it is not, or holds a forbidden
//  character (newline and tab too when line is set).
static bool
s_safe (const char *out, size_t len, bool line)
{
    const uint8_t *p = (const uint8_t *) out;
    size_t at = 0;
    while (at < len) {
        uint8_t c = p [at];
        size_t n = c < 0x80? 1: c >= 0xc2 && c <= 0xdf? 2: c >= 0xe0 && c <= 0xef? 3
                 : c >= 0xf0 && c <= 0xf4? 4: 0;
        if (n == 0 || at + n > len) {
            return false;
        }
        uint32_t cp = n == 1? c: (uint32_t) (c & (0x7f >> n));
        for (size_t i = 1; i < n; i++) {
            if ((p [at + i] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p [at + i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        ||  (cp >= 0xd800 && cp <= 0xdfff) || s_forbidden (cp)
        ||  (line && (cp == '\n' || cp == '\t'))) {
            return false;
        }
        at += n;
    }
    return true;
}

static int
s_hex (const char *p, size_t digits, uint32_t *value)
{
    *value = 0;
    for (size_t i = 0; i < digits; i++) {
        char c = p [i];
        int d = c >= '0' && c <= '9'? c - '0': c >= 'a' && c <= 'f'? c - 'a' + 10: -1;
        if (d < 0) {
            return -1;
        }
        *value = (*value << 4) | (uint32_t) d;
    }
    return 0;
}

static size_t
s_utf8 (uint32_t cp, uint8_t *out)
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

//  Reads text-mode output back to bytes (as bus_print.h documents the
//  escapes). Returns the byte count, or -1 if out is not something the
//  printer writes. A cut note must come last.
static long
s_unescape (const char *out, uint8_t *bytes, size_t cap, bool *cut)
{
    size_t n = 0;
    *cut = false;
    for (const char *p = out; *p; ) {
        if (n + 4 > cap || *cut) {
            return -1;
        }
        if (*p != '\\') {
            bytes [n++] = (uint8_t) *p++;
            continue;
        }
        uint32_t value;
        switch (p [1]) {
            case '\\': bytes [n++] = '\\'; p += 2; break;
            case '"': bytes [n++] = '"'; p += 2; break;
            case 'n': bytes [n++] = '\n'; p += 2; break;
            case 't': bytes [n++] = '\t'; p += 2; break;
            case 'r': bytes [n++] = '\r'; p += 2; break;
            case 'x':
                if (s_hex (p + 2, 2, &value) != 0) {
                    return -1;
                }
                bytes [n++] = (uint8_t) value;
                p += 4;
                break;
            case 'u':
                if (s_hex (p + 2, 4, &value) != 0) {
                    return -1;
                }
                n += s_utf8 (value, bytes + n);
                p += 6;
                break;
            case 'U':
                if (s_hex (p + 2, 8, &value) != 0) {
                    return -1;
                }
                n += s_utf8 (value, bytes + n);
                p += 10;
                break;
            case '[':
                *cut = true;
                p += strcspn (p, "]");
                if (*p != ']' || p [1]) {
                    return -1;
                }
                p++;
                break;
            default:
                return -1;
        }
    }
    return (long) n;
}

//  A JSON string (RFC 8259) and nothing else: quotes, escapes, no raw
//  control, valid UTF-8, surrogate escapes paired.
static bool
s_json_valid (const char *out)
{
    size_t len = strlen (out);
    if (len < 2 || out [0] != '"' || out [len - 1] != '"') {
        return false;
    }
    for (size_t i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char) out [i];
        if (c < 0x20 || c == '"') {
            return false;
        }
        if (c != '\\') {
            continue;
        }
        char e = out [++i];
        if (strchr ("\"\\/bfnrt", e) && e) {
            continue;
        }
        uint32_t value;
        if (e != 'u' || i + 4 >= len - 1 || s_hex (out + i + 1, 4, &value) != 0) {
            return false;
        }
        i += 4;
        if (value >= 0xdc00 && value <= 0xdfff) {
            return false;                   //  a low surrogate alone
        }
        if (value >= 0xd800 && value <= 0xdbff) {
            uint32_t low;
            if (i + 6 >= len - 1 || out [i + 1] != '\\' || out [i + 2] != 'u'
            ||  s_hex (out + i + 3, 4, &low) != 0 || low < 0xdc00 || low > 0xdfff) {
                return false;
            }
            i += 6;
        }
    }
    //  The raw part must be valid UTF-8 with no control (DEL is allowed by
    //  JSON but the printer escapes it: check that too).
    return s_safe (out, len, true);
}

static void
test_plain_text_unchanged (void **state)
{
    (void) state;
    assert_string_equal (TEXT ("amount=10 EUR, invoice #42"), "amount=10 EUR, invoice #42");
    assert_string_equal (TEXT ("two\nlines\twith tab"), "two\nlines\twith tab");
    assert_string_equal (LINE ("two\nlines\twith tab"), "two\\nlines\\twith tab");
    //  Valid UTF-8 that is printable stays as it is.
    assert_string_equal (TEXT ("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"),
                         "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    assert_string_equal (TEXT (""), "");
}

static void
test_terminal_sequences_escaped (void **state)
{
    (void) state;
    //  Set the window title; clear the screen; CR to overwrite a line.
    assert_string_equal (TEXT ("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
    assert_string_equal (TEXT ("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
    assert_string_equal (TEXT ("amount=10\ramount=1000000"), "amount=10\\ramount=1000000");
    assert_string_equal (TEXT ("bs\b del\x7f nul"), "bs\\x08 del\\x7f nul");
    assert_string_equal (s_text ("a\0b", 3, 0, 0), "a\\x00b");
    //  CSI as one C1 character (U+009B), and the same byte alone (invalid).
    assert_string_equal (TEXT ("\xc2\x9b" "2J"), "\\u009b2J");
    assert_string_equal (TEXT ("\x9b" "2J"), "\\x9b2J");
    assert_string_equal (TEXT ("\xc2\x85"), "\\u0085");
}

static void
test_bidi_and_invisible_escaped (void **state)
{
    (void) state;
    //  "refund 24" that a terminal shows reversed.
    assert_string_equal (TEXT ("refund \xe2\x80\xae" "42\xe2\x80\xac"), "refund \\u202e42\\u202c");
    static const struct { const char *in; const char *out; } cases [] = {
        { "\xe2\x80\x8e", "\\u200e" }, { "\xe2\x80\x8f", "\\u200f" },
        { "\xe2\x80\xaa", "\\u202a" }, { "\xe2\x80\xab", "\\u202b" },
        { "\xe2\x80\xad", "\\u202d" }, { "\xe2\x81\xa6", "\\u2066" },
        { "\xe2\x81\xa7", "\\u2067" }, { "\xe2\x81\xa8", "\\u2068" },
        { "\xe2\x81\xa9", "\\u2069" }, { "\xe2\x80\x8b", "\\u200b" },
        { "\xe2\x80\x8c", "\\u200c" }, { "\xe2\x80\x8d", "\\u200d" },
        { "\xe2\x81\xa0", "\\u2060" }, { "\xef\xbb\xbf", "\\ufeff" },
        { "\xd8\x9c", "\\u061c" }, { "\xe2\x80\xa8", "\\u2028" },
        { "\xe2\x80\xa9", "\\u2029" }, { "\xc2\xad", "\\u00ad" },
        //  A tag character: invisible text ("ASCII smuggling").
        { "\xf3\xa0\x81\x81", "\\U000e0041" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        assert_string_equal (s_text (cases [i].in, strlen (cases [i].in), 0, 0), cases [i].out);
    }
    //  Neighbours that are ordinary text are not escaped.
    assert_string_equal (TEXT ("\xe2\x80\x90"), "\xe2\x80\x90");       //  U+2010 hyphen
    assert_string_equal (TEXT ("\xc2\xa0"), "\xc2\xa0");               //  U+00A0
}

static void
test_invalid_utf8_shown_as_bytes (void **state)
{
    (void) state;
    assert_string_equal (TEXT ("\xff"), "\\xff");
    assert_string_equal (TEXT ("\xfe\xff"), "\\xfe\\xff");
    assert_string_equal (TEXT ("\xc0\xaf"), "\\xc0\\xaf");               //  overlong '/'
    assert_string_equal (TEXT ("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");      //  overlong, 3 bytes
    assert_string_equal (TEXT ("\xed\xa0\x80"), "\\xed\\xa0\\x80");      //  a surrogate
    assert_string_equal (TEXT ("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); //  past U+10FFFF
    assert_string_equal (TEXT ("ok\xe2\x80"), "ok\\xe2\\x80");            //  cut at the end
    assert_string_equal (TEXT ("\xe2" "a"), "\\xe2a");                    //  cut by ASCII
    assert_string_equal (TEXT ("\x80"), "\\x80");                          //  a lone continuation
}

static void
test_backslash_doubled_so_output_is_unambiguous (void **state)
{
    (void) state;
    //  The text "\x1b" (four characters) is not the byte ESC.
    assert_string_equal (TEXT ("\\x1b"), "\\\\x1b");
    assert_string_equal (TEXT ("\x1b"), "\\x1b");
    assert_string_equal (TEXT ("C:\\dir\\"), "C:\\\\dir\\\\");
    //  Nor can a text forge the cut note.
    assert_string_equal (TEXT ("\\[5 more bytes]"), "\\\\[5 more bytes]");
    //  Quotes only when asked.
    assert_string_equal (TEXT ("say \"hi\""), "say \"hi\"");
    assert_string_equal (s_text ("say \"hi\"", 8, BUS_PRINT_QUOTE | BUS_PRINT_LINE, 0),
                         "say \\\"hi\\\"");
}

static void
test_cut_never_splits_a_character (void **state)
{
    (void) state;
    //  "a" then U+00E9 (2 bytes): a cut at 2 leaves the e-acute out whole.
    assert_string_equal (s_text ("a\xc3\xa9z", 4, 0, 2), "a\\[3 more bytes]");
    assert_string_equal (s_text ("a\xc3\xa9z", 4, 0, 3), "a\xc3\xa9\\[1 more bytes]");
    assert_string_equal (s_text ("a\xc3\xa9z", 4, 0, 4), "a\xc3\xa9z");
    assert_string_equal (s_text ("a\xc3\xa9z", 4, 0, 100), "a\xc3\xa9z");
    //  A 4-byte emoji cut at 1, 2, 3 bytes: nothing of it.
    for (size_t max = 1; max < 4; max++) {
        assert_string_equal (s_text ("\xf0\x9f\x98\x80", 4, 0, max), "\\[4 more bytes]");
    }
    //  An invalid byte is one byte: a cut can end right after it.
    assert_string_equal (s_text ("\xff\xff\xff", 3, 0, 2), "\\xff\\xff\\[1 more bytes]");
    //  JSON says nothing inside the string; the count comes back.
    bus_print_how_t how = { BUS_PRINT_JSON, 2, NULL };
    char out [64];
    size_t cut = 0;
    bus_print_buf (out, sizeof out, &how, "a\xc3\xa9z", 4, &cut);
    assert_string_equal (out, "\"a\"");
    assert_int_equal (cut, 3);
}

static void
test_buffer_never_ends_inside_an_escape (void **state)
{
    (void) state;
    char out [8];
    //  "\x1b" needs 4 bytes and the NUL: a 4-byte buffer holds none of it.
    assert_int_equal (bus_print_buf (out, 4, NULL, "\x1b", 1, NULL), 4);
    assert_string_equal (out, "");
    assert_int_equal (bus_print_buf (out, 5, NULL, "\x1b", 1, NULL), 4);
    assert_string_equal (out, "\\x1b");
    //  Nor inside a UTF-8 sequence, and nothing after a piece that did
    //  not fit.
    assert_int_equal (bus_print_buf (out, 4, NULL, "ab\xc3\xa9z", 5, NULL), 5);
    assert_string_equal (out, "ab");
    assert_int_equal (bus_print_buf (NULL, 0, NULL, "abc", 3, NULL), 3);
}

static void
test_indent_keeps_a_text_inside_its_block (void **state)
{
    (void) state;
    //  A payload that tries to add a line of the CLI's own.
    static const char forged [] = "amount=10\n    restricted: no\n";
    bus_print_how_t how = { 0, 0, "  | " };
    char out [128];
    bus_print_buf (out, sizeof out, &how, forged, strlen (forged), NULL);
    assert_string_equal (out, "amount=10\n  |     restricted: no\n  | ");
}

static void
test_file_output_equals_buffer_output (void **state)
{
    (void) state;
    static const char hostile [] = "\x1b]0;pwned\x07 \xc2\x9b \xe2\x80\xae \xff \\ \"q\"\n";
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream (&text, &len);
    assert_non_null (out);
    bus_print_how_t how = { BUS_PRINT_LINE, 0, NULL };
    assert_int_equal (bus_print (out, &how, hostile, sizeof hostile - 1), 0);
    bus_print_line (out, NULL);
    bus_print_line (out, "|\x1b");
    bus_print_json (out, NULL);
    bus_print_json (out, "\x1b\xff");
    fclose (out);
    assert_string_equal (text, "\\x1b]0;pwned\\x07 \\u009b \\u202e \\xff \\\\ \"q\"\\n"
                               "-|\\x1bnull\"\\u001b\\ufffd\"");
    free (text);
}

static void
test_json_strings (void **state)
{
    (void) state;
    assert_string_equal (JSON ("plain"), "\"plain\"");
    assert_string_equal (JSON ("q\"b\\"), "\"q\\\"b\\\\\"");
    assert_string_equal (JSON ("\x1b]0;pwned\x07\n\t\x7f"),
                         "\"\\u001b]0;pwned\\u0007\\u000a\\u0009\\u007f\"");
    assert_string_equal (JSON ("\xc2\x9b\xe2\x80\xae\xef\xbb\xbf"), "\"\\u009b\\u202e\\ufeff\"");
    assert_string_equal (JSON ("\xf3\xa0\x81\x81"), "\"\\udb40\\udc41\"");
    assert_string_equal (JSON ("\xff\xc3"), "\"\\ufffd\\ufffd\"");
    assert_string_equal (JSON ("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    assert_true (s_json_valid (JSON ("\xf3\xa0\x81\x81\xff\x1b\"")));
}

//  A random byte string, weighted towards what breaks printers.
static size_t
s_random (uint8_t *out, size_t cap, unsigned *seed)
{
    static const uint8_t pieces [][4] = {
        { 0x1b }, { 0x07 }, { 0x00 }, { 0x7f }, { '\\' }, { '"' }, { '\n' }, { '\t' }, { '\r' },
        { 0xc2, 0x9b }, { 0xe2, 0x80, 0xae }, { 0xe2, 0x81, 0xa6 }, { 0xef, 0xbb, 0xbf },
        { 0xf0, 0x9f, 0x98, 0x80 }, { 0xf3, 0xa0, 0x81, 0x81 }, { 0xc3, 0xa9 }, { 'a' }, { '[' },
        { 0xff }, { 0xc0 }, { 0x80 }, { 0xe2 }, { 0xe2, 0x80 }, { 0xed, 0xa0, 0x80 }, { 'x' },
    };
    static const size_t sizes [] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 4, 4, 2, 1, 1, 1, 1, 1,
                                     1, 2, 3, 1 };
    size_t n = 0;
    size_t count = (size_t) rand_r (seed) % 24;
    for (size_t i = 0; i < count && n + 4 <= cap; i++) {
        size_t which = (size_t) rand_r (seed) % (sizeof sizes / sizeof sizes [0]);
        if (rand_r (seed) % 4 == 0) {
            out [n++] = (uint8_t) rand_r (seed);            //  any byte at all
        }
        else {
            memcpy (out + n, pieces [which], sizes [which]);
            n += sizes [which];
        }
    }
    return n;
}

static void
test_random_text_reads_back_and_is_safe (void **state)
{
    (void) state;
    const char *env = getenv ("BULKHEAD_SEED");
    unsigned seed = env? (unsigned) strtoul (env, NULL, 10): (unsigned) time (NULL);
    print_message ("test_print: seed %u (BULKHEAD_SEED=%u repeats it)\n", seed, seed);
    for (int round = 0; round < 20000; round++) {
        uint8_t data [128];
        size_t size = s_random (data, sizeof data, &seed);
        int flags = round % 2? BUS_PRINT_LINE: 0;
        size_t max = round % 3 == 0 && size? 1 + (size_t) rand_r (&seed) % size: 0;
        bus_print_how_t how = { flags, max, NULL };
        char out [2048];
        size_t cut = 0;
        size_t need = bus_print_buf (out, sizeof out, &how, data, size, &cut);
        assert_true (need < sizeof out);
        //  No control, C1, bidi, invisible or invalid UTF-8 in what is shown.
        if (!s_safe (out, need, flags & BUS_PRINT_LINE)) {
            fail_msg ("seed round %d: unsafe output '%s'", round, out);
        }
        //  It reads back to exactly the bytes shown, and those are a prefix.
        uint8_t back [1024];
        bool noted;
        long n = s_unescape (out, back, sizeof back, &noted);
        assert_true (n >= 0);
        assert_int_equal ((size_t) n + cut, size);
        assert_memory_equal (back, data, (size_t) n);
        assert_true (noted == (cut > 0));
        //  A cut is at most one character short of max, never past it.
        if (max) {
            assert_true ((size_t) n <= max);
            assert_true ((size_t) n + 3 >= max || cut == 0);
        }
        //  JSON of the same bytes is always a valid JSON string.
        bus_print_how_t json = { BUS_PRINT_JSON, max, NULL };
        bus_print_buf (out, sizeof out, &json, data, size, NULL);
        if (!s_json_valid (out)) {
            fail_msg ("round %d: invalid JSON '%s'", round, out);
        }
    }
}

static void
test_every_byte_alone (void **state)
{
    (void) state;
    for (unsigned b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t) b;
        const char *out = s_text (&byte, 1, BUS_PRINT_LINE, 0);
        bool printable = b >= 0x20 && b < 0x7f && b != '\\';
        if (printable) {
            assert_int_equal (strlen (out), 1);
        }
        else {
            assert_true (out [0] == '\\');
            assert_true (s_safe (out, strlen (out), true));
        }
        assert_true (s_json_valid (s_text (&byte, 1, BUS_PRINT_JSON, 0)));
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_plain_text_unchanged),
        cmocka_unit_test (test_terminal_sequences_escaped),
        cmocka_unit_test (test_bidi_and_invisible_escaped),
        cmocka_unit_test (test_invalid_utf8_shown_as_bytes),
        cmocka_unit_test (test_backslash_doubled_so_output_is_unambiguous),
        cmocka_unit_test (test_cut_never_splits_a_character),
        cmocka_unit_test (test_buffer_never_ends_inside_an_escape),
        cmocka_unit_test (test_indent_keeps_a_text_inside_its_block),
        cmocka_unit_test (test_file_output_equals_buffer_output),
        cmocka_unit_test (test_json_strings),
        cmocka_unit_test (test_random_text_reads_back_and_is_safe),
        cmocka_unit_test (test_every_byte_alone),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
