/*  bus_secmem.c: small secret buffers from one locked region, see
    bus_secmem.h. */
#include "bus_secmem.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define S_REGION    ((size_t) 64 << 20)         //  262,144 slots of 256 bytes
#define S_GROW      ((size_t) 64 << 10)
#define S_SLOTS     (S_REGION / BUS_SECMEM_SLOT)

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *s_base;                 //  the region, NULL if it could not be reserved
static size_t s_usable;                 //  bytes of it made readable and writable
static size_t s_next;                   //  bytes of it handed out at least once
static size_t s_lock_left;              //  bytes it may still lock (half of RLIMIT_MEMLOCK)
static void *s_free;                    //  freed slots, linked through their first bytes
static uint64_t s_used [S_SLOTS / 64];  //  a bit per slot allocated now
static bus_secmem_stats_t s_stats;
static void *(*s_real_alloc) (size_t count, size_t size);
static void (*s_real_free) (void *ptr);

static void
s_init (void)
{
    //  The next definitions after this executable's: libsodium's.
    s_real_alloc = (void *(*) (size_t, size_t)) dlsym (RTLD_NEXT, "sodium_allocarray");
    s_real_free = (void (*) (void *)) dlsym (RTLD_NEXT, "sodium_free");
    //  Its guarded allocations need its page size, which sodium_init sets.
    if (!s_real_alloc || !s_real_free || sodium_init () < 0) {
        fprintf (stderr, "bulkhead: libsodium's sodium_allocarray and sodium_free are "
                 "not found or it does not start\n");
        abort ();
    }
    void *region = mmap (NULL, S_REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
    if (region == MAP_FAILED) {
        return;                         //  everything goes to libsodium
    }
#ifdef MADV_DONTDUMP
    (void) madvise (region, S_REGION, MADV_DONTDUMP);
#endif
    //  What the region locks stays locked (it never shrinks): at most half
    //  of the process's allowance, so libsodium's own guarded allocations
    //  (the larger buffers) can still lock theirs.
    struct rlimit limit;
    s_lock_left = getrlimit (RLIMIT_MEMLOCK, &limit) != 0? 0
                : limit.rlim_cur == RLIM_INFINITY? S_REGION: (size_t) limit.rlim_cur / 2;
    s_base = region;
}

void
bus_secmem_init (void)
{
    pthread_once (&s_once, s_init);
}

//  The whole reservation is ours, so nothing libsodium maps can be in it.
bool
bus_secmem_owns (const void *ptr)
{
    bus_secmem_init ();
    const uint8_t *p = ptr;
    return s_base && p >= s_base && p < s_base + S_REGION;
}

void
bus_secmem_stats (bus_secmem_stats_t *stats)
{
    pthread_mutex_lock (&s_lock);
    *stats = s_stats;
    pthread_mutex_unlock (&s_lock);
}

//  A slot, or NULL when the region is full or cannot grow. Under s_lock.
static void *
s_take (void)
{
    uint8_t *slot = s_free;
    if (slot) {
        memcpy (&s_free, slot, sizeof s_free);
        memset (slot, 0, sizeof s_free);
    }
    else {
        if (s_next == s_usable) {
            if (s_usable == S_REGION
            ||  mprotect (s_base + s_usable, S_GROW, PROT_READ | PROT_WRITE) != 0) {
                return NULL;
            }
            if (s_lock_left >= S_GROW && mlock (s_base + s_usable, S_GROW) == 0) {
                s_lock_left -= S_GROW;  //  best effort, as libsodium's
            }
            s_usable += S_GROW;
        }
        slot = s_base + s_next;
        s_next += BUS_SECMEM_SLOT;
        s_stats.slots++;
    }
    size_t index = (size_t) (slot - s_base) / BUS_SECMEM_SLOT;
    s_used [index / 64] |= (uint64_t) 1 << (index % 64);
    s_stats.in_use++;
    s_stats.served++;
    return slot;
}

void *
sodium_allocarray (size_t count, size_t size)
{
    bus_secmem_init ();
    if (size && count > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *slot = NULL;
    if (s_base && count * size <= BUS_SECMEM_SLOT) {
        pthread_mutex_lock (&s_lock);
        slot = s_take ();
        pthread_mutex_unlock (&s_lock);
    }
    if (slot) {
        return slot;
    }
    pthread_mutex_lock (&s_lock);
    s_stats.passed++;
    pthread_mutex_unlock (&s_lock);
    return s_real_alloc (count, size);
}

void
sodium_free (void *ptr)
{
    if (!ptr) {
        return;
    }
    bus_secmem_init ();
    if (!bus_secmem_owns (ptr)) {
        s_real_free (ptr);
        return;
    }
    size_t offset = (size_t) ((uint8_t *) ptr - s_base);
    size_t index = offset / BUS_SECMEM_SLOT;
    uint64_t bit = (uint64_t) 1 << (index % 64);
    pthread_mutex_lock (&s_lock);
    if (offset % BUS_SECMEM_SLOT || !(s_used [index / 64] & bit)) {
        //  Not a slot's start, or a slot freed twice: the heap of secrets
        //  is not what the caller thinks. libsodium aborts on the same.
        pthread_mutex_unlock (&s_lock);
        fprintf (stderr, "bulkhead: sodium_free of %p, which is not an allocated slot\n", ptr);
        abort ();
    }
    s_used [index / 64] &= ~bit;
    s_stats.in_use--;
    sodium_memzero (ptr, BUS_SECMEM_SLOT);
    memcpy (ptr, &s_free, sizeof s_free);
    s_free = ptr;
    pthread_mutex_unlock (&s_lock);
}
