/*  bus_error.c: names and sentences for the codes in bus_error.h. */
#include "bus_error.h"

#include <stdio.h>
#include <string.h>

static const char *s_names [] = {
#define BUS_ERR_NAME(name, text) #name,
    BUS_ERRORS (BUS_ERR_NAME)
#undef BUS_ERR_NAME
};

static const char *s_texts [] = {
#define BUS_ERR_TEXT(name, text) text,
    BUS_ERRORS (BUS_ERR_TEXT)
#undef BUS_ERR_TEXT
};

const char *
bus_errname (bus_code_t code)
{
    if ((unsigned) code >= BUS_ERROR_COUNT) {
        return "EUNKNOWNCODE";
    }
    return s_names [code];
}

const char *
bus_errword (bus_code_t code)
{
    const char *name = bus_errname (code);
    //  "OK" has no leading E; every other name does.
    return name [0] == 'E' && code != BUS_OK? name + 1: name;
}

const char *
bus_strerror (bus_code_t code)
{
    if ((unsigned) code >= BUS_ERROR_COUNT) {
        return "unknown error code";
    }
    return s_texts [code];
}

int
bus_fail (bus_error_t *err, bus_code_t code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list args;
        va_start (args, fmt);
        vsnprintf (err->text, sizeof err->text, fmt, args);
        va_end (args);
        //  A sentence may quote an agent's text cut to a width: never leave
        //  half a UTF-8 sequence on the wire or in the log.
        bus_utf8_repair (err->text);
    }
    return -1;
}

//  Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid or cut.
static size_t
s_utf8_len (const unsigned char *p)
{
    unsigned char c = p [0];
    size_t n;
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    }
    else
    if (c >= 0xe0 && c <= 0xef) {
        n = 3;
    }
    else
    if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
    }
    else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p [i] & 0xc0) != 0x80) {
            return 0;                   //  also stops at the terminating NUL
        }
    }
    //  No overlongs, no surrogates, nothing past U+10FFFF.
    if ((c == 0xe0 && p [1] < 0xa0) || (c == 0xed && p [1] > 0x9f)
    ||  (c == 0xf0 && p [1] < 0x90) || (c == 0xf4 && p [1] > 0x8f)) {
        return 0;
    }
    return n;
}

void
bus_utf8_repair (char *text)
{
    unsigned char *p = (unsigned char *) text;
    while (*p) {
        size_t n = s_utf8_len (p);
        if (n > 0) {
            p += n;
            continue;
        }
        //  A sequence cut by a width at the end is dropped; an invalid
        //  byte inside becomes '?'.
        size_t rest = 1;
        while (p [rest] && (p [rest] & 0xc0) == 0x80 && rest < 4) {
            rest++;
        }
        if (!p [rest] && *p >= 0xc2 && *p <= 0xf4) {
            *p = 0;
            return;
        }
        *p++ = '?';
    }
}

bus_code_t
bus_code_from_word (const char *word)
{
    for (int code = 0; code < BUS_ERROR_COUNT; code++) {
        if (strcmp (bus_errword ((bus_code_t) code), word) == 0) {
            return (bus_code_t) code;
        }
    }
    return BUS_EINVAL;
}
