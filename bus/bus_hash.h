/*  bus_hash.h: FNV-1a, the hash of the bus's in-memory and mapped tables
    (policy names, a batch's keys, metric series, the monitor's slots).

    Not a keyed hash: every table that uses it is bounded (a policy, one
    batch, the series cap, the monitor's fixed slots), so a chosen collision
    costs its chooser a longer probe, never an unbounded one.

    The seed is the caller's: the monitor's file places agents and edges by
    the hash it was written with, so its seed stays the figure it always
    had (FNV's offset basis with a digit lost) when its copy became this.
*/
#ifndef BUS_HASH_H
#define BUS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define BUS_FNV_OFFSET  UINT64_C (0xcbf29ce484222325)   //  FNV-1a's offset basis
#define BUS_FNV_OLD     UINT64_C (1469598103934665603)  //  the monitor's file's
#define BUS_FNV_PRIME   UINT64_C (0x100000001b3)

//  FNV-1a of len bytes, from h (a seed above, or a hash to go on from).
static inline uint64_t
bus_fnv1a (uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p [i]) * BUS_FNV_PRIME;
    }
    return h;
}

//  The same over a NUL-terminated string, in one pass; *len (if not NULL)
//  gets its length.
static inline uint64_t
bus_fnv1a_str (uint64_t h, const char *s, size_t *len)
{
    const uint8_t *p = (const uint8_t *) s;
    for (; *p; p++) {
        h = (h ^ *p) * BUS_FNV_PRIME;
    }
    if (len) {
        *len = (size_t) (p - (const uint8_t *) s);
    }
    return h;
}

#endif
