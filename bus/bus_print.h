/*  bus_print.h: the one escaping printer for text a person reads.

    Anything an agent sent (payload, justification, reason, id, name,
    action, resource, tool, content type, and every sentence of the bus that
    quotes them) may hold ESC sequences, C1 controls, bidi overrides,
    invisible characters or invalid UTF-8. Printed raw, they would command
    the operator's terminal or make one text look like another. Everything
    the CLI shows of such text goes through here.

    Text mode (the default) writes valid UTF-8 with only printable
    characters, newline and tab; every other byte or character is shown as
    an escape, and a backslash always starts one:

        \\            a backslash
        \n \t \r      newline, tab (only with BUS_PRINT_LINE), carriage return
        \xHH          a byte: a C0 control, DEL, or a byte that is not part of
                      valid UTF-8 (strict: no overlongs, no surrogates,
                      nothing past U+10FFFF); \x1b is the byte 0x1b, \xff the
                      byte 0xff
        \uXXXX        a character that is valid UTF-8 but not shown: C1
                      controls U+0080-U+009F, bidi controls (U+061C, U+200E,
                      U+200F, U+202A-U+202E, U+2066-U+2069), zero-width and
                      other invisible format characters (U+00AD, U+180E,
                      U+200B-U+200D, U+2060-U+2064, U+206A-U+206F, U+FEFF,
                      U+FFF9-U+FFFB), line and paragraph separators
                      (U+2028, U+2029), the noncharacters U+FFFE, U+FFFF
        \U00XXXXXX    the same above U+FFFF: tag characters U+E0000-U+E007F
                      (invisible "ASCII smuggling"), musical format controls
                      U+1D173-U+1D17A
        \"            a double quote, only with BUS_PRINT_QUOTE
        \[N more bytes]
                      after a cut (max): N bytes of the text are not shown

    So the output reads back to exactly the bytes that were sent, and two
    different texts never print the same.

    JSON mode (BUS_PRINT_JSON) writes one JSON string, quotes included, that
    is always valid JSON and valid UTF-8: " and \ escaped, every C0 control
    and DEL as \u00XX, the characters above as \uXXXX (a surrogate pair
    above U+FFFF), and each byte that is not valid UTF-8 as \ufffd (the
    replacement character: JSON has no way to say "byte"; the bytes of a
    payload go base64 instead). A cut says nothing inside the string: the
    caller gets the count.

    A cut (max) never splits a UTF-8 sequence: it ends before the first
    character that would not fit whole.
*/
#ifndef BUS_PRINT_H
#define BUS_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum {
    BUS_PRINT_LINE  = 1 << 0,   //  escape newline and tab too: one line of output
    BUS_PRINT_QUOTE = 1 << 1,   //  escape " too: for text between double quotes
    BUS_PRINT_JSON  = 1 << 2,   //  one JSON string, quotes included (see above)
};

//  How to print: flags, a cut, and an indent for blocks.
typedef struct {
    int flags;                  //  BUS_PRINT_*
    size_t max;                 //  show at most this many bytes of the text; 0: all
    const char *indent;         //  text mode: written after each newline the text
                                //  keeps, so a text's lines cannot pass for the
                                //  lines around it (NULL: nothing)
} bus_print_how_t;

//  Writes size bytes of data to out as how says (NULL: text mode, all of
//  it). Returns the number of bytes of data not shown (0 if all were).
size_t
    bus_print (FILE *out, const bus_print_how_t *how, const void *data, size_t size);

//  The same into buf of cap bytes, always NUL-terminated when cap > 0, and
//  never ending inside an escape or a UTF-8 sequence. Returns the length
//  the whole output has (as snprintf does: >= cap means it was cut short);
//  *not_shown (if not NULL) gets what bus_print returns.
size_t
    bus_print_buf (char *buf, size_t cap, const bus_print_how_t *how, const void *data,
                   size_t size, size_t *not_shown);

//  Shorthands for a NUL-terminated text, all of it, with flags; NULL
//  prints `none` (unescaped: "-" for a field, "null" for JSON).
void
    bus_print_text (FILE *out, const char *text, int flags, const char *none);

//  One line's field: bus_print_text (out, text, BUS_PRINT_LINE, "-").
void
    bus_print_line (FILE *out, const char *text);

//  A JSON string: bus_print_text (out, text, BUS_PRINT_JSON, "null").
void
    bus_print_json (FILE *out, const char *text);

#endif
