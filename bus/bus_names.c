/*  bus_names.c: the name alphabet, see bus_names.h. */
#include "bus_names.h"

#include <string.h>

bool
bus_name_valid (const char *name, size_t len)
{
    if (!name || len < 1 || len > BUS_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) name [i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return false;
        }
    }
    return true;
}

void
bus_text_copy (char *dst, size_t cap, const char *src)
{
    if (cap == 0) {
        return;
    }
    size_t len = src? strnlen (src, cap - 1): 0;
    memcpy (dst, src? src: "", len);
    dst [len] = 0;
}
