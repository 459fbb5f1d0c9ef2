/*  bus_names.h: the sizes and the alphabet of names, shared by the policy
    and the key files without either needing the other.

    Names (agents, classes) are 1..64 bytes of [a-z0-9._-], starting with a
    letter or digit, checked as raw bytes (a NUL or UTF-8 trick cannot pass).
*/
#ifndef BUS_NAMES_H
#define BUS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define BUS_NAME_MAX        64
#define BUS_KEY_Z85_LEN     40

//  True if name is 1..BUS_NAME_MAX bytes of [a-z0-9._-] starting with
//  [a-z0-9]. Checks raw bytes: embedded NULs fail.
bool
    bus_name_valid (const char *name, size_t len);

//  Copies src (NULL reads as "") into dst of cap bytes, cut to cap - 1 and
//  always terminated: snprintf's "%s" without the format machinery, which
//  costs hundreds of instructions a call on the per-message path.
void
    bus_text_copy (char *dst, size_t cap, const char *src);

#endif
