/*  bus_secmem.h: the CURVE handshake's secret buffers, without a guarded
    mapping each.

    libzmq 4.3.4 keeps each handshake's plaintexts (the boxes with the
    ephemeral keys, the cookie, the metadata) in vectors whose allocator is
    libsodium's sodium_allocarray / sodium_free. Each of those is a guarded
    mapping of its own: mmap, two guard pages by mprotect, mlock, and on
    free munlock and munmap. A handshake makes five (67 to 227 bytes), and
    every mprotect and munmap is a TLB shootdown across the CPUs: in a
    storm of 2,000 agents that was half of the bus's CPU.

    The bulkhead executable defines those two functions itself (the
    executable's symbols come before any library's, so libzmq's calls land
    here) and serves buffers of up to BUS_SECMEM_SLOT bytes from one region
    reserved at first use: grown 64 KiB at a time, locked into memory
    within half of RLIMIT_MEMLOCK (the rest stays for libsodium's own; best
    effort, as libsodium's), left out of core dumps, every slot zeroed when freed and reused, a slot freed twice an
    abort. Anything larger (a peer's outsized metadata) and anything past
    the region's 64 MiB goes to libsodium's own functions, as does the free
    of anything not from the region.

    What is given up: the guard pages and the canary around each small
    buffer, so an overrun inside libzmq's handshake code is no longer
    stopped by a fault. libzmq keeps the bus's long-term secret key and
    every session's keys in ordinary memory anyway; these buffers hold
    what a handshake decrypts, for microseconds.
*/
#ifndef BUS_SECMEM_H
#define BUS_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

#define BUS_SECMEM_SLOT     256

typedef struct {
    size_t slots;               //  slots handed out at least once
    size_t in_use;              //  slots allocated now
    size_t served;              //  allocations served from the region
    size_t passed;              //  allocations passed to libsodium
} bus_secmem_stats_t;

//  Finds libsodium's own functions and reserves the region; called by
//  main before any thread (the first allocation would do it otherwise).
void
    bus_secmem_init (void);

//  True if ptr is a slot of the region.
bool
    bus_secmem_owns (const void *ptr);

void
    bus_secmem_stats (bus_secmem_stats_t *stats);

//  bus_secmem.c also defines sodium_allocarray and sodium_free, with
//  libsodium's declarations (sodium.h) and contracts.

#endif
