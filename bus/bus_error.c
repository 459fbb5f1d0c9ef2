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
    }
    return -1;
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
