/*  bus_big.h: zeroed arrays the size of a fleet, on 2 MiB pages.

    A policy of 100,000 agents and a million edges is read into arrays of
    tens of megabytes, which the loader and the blast-radius analysis then
    walk at random (a recipient's name, an edge's answer, an agent's
    distance). On 4 KiB pages each of those reads may also miss the TLB,
    and in a virtual machine a miss walks two page tables: on the machines
    we measured that is a tenth of `bulkhead blast`. Where the kernel's
    transparent huge pages are "madvise" (Debian's default), an array only
    gets 2 MiB pages if it asks, so the large ones come from here.

    bus_big_calloc (count, size) is calloc's contract: zeroed, NULL when
    count * size overflows or memory is short. Arrays under BUS_BIG_MIN
    bytes are calloc's; larger ones a mapping of their own with the advice.
    Free either kind with bus_big_free (NULL is a no-op); never with free ().
*/
#ifndef BUS_BIG_H
#define BUS_BIG_H

#include <stddef.h>

#define BUS_BIG_MIN     (2u << 20)      //  one huge page: smaller gains nothing

void *bus_big_calloc (size_t count, size_t size);
void bus_big_free (void *block);

#endif
