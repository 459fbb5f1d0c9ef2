/*  bus_names.c: the name alphabet, see bus_names.h. */
#include "bus_names.h"

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
