/*  bus_big.c: zeroed arrays the size of a fleet, on 2 MiB pages. */
#include "bus_big.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

//  Each block starts with a header: how many bytes were mapped (0: the
//  block is calloc's), so bus_big_free needs no size. 64 bytes keep the
//  array after it aligned for any type and on its own cache line.
#define S_HEADER    64u

void *
bus_big_calloc (size_t count, size_t size)
{
    if (size && count > (SIZE_MAX - S_HEADER) / size) {
        return NULL;
    }
    size_t bytes = count * size + S_HEADER;
    size_t *header;
    if (bytes < BUS_BIG_MIN) {
        header = calloc (1, bytes);
        if (!header) {
            return NULL;
        }
        header [0] = 0;
    }
    else {
        void *map = mmap (NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) {
            return NULL;
        }
        //  Advice only: without it (or without THP) the pages are 4 KiB.
        madvise (map, bytes, MADV_HUGEPAGE);
        header = map;
        header [0] = bytes;
    }
    return (char *) header + S_HEADER;
}

void
bus_big_free (void *block)
{
    if (!block) {
        return;
    }
    size_t *header = (size_t *) (void *) ((char *) block - S_HEADER);
    if (header [0]) {
        munmap (header, header [0]);
    }
    else {
        free (header);
    }
}
