/* SPDX-License-Identifier: MIT */
/*
 * libqueue/random.c - ids and clocks.
 *
 * Every id tel makes (cookie, event, execution, batch) comes from the
 * kernel's CSPRNG and from nothing else: no MAC address, host name, time
 * or process id goes into it, so no id can be traced back to a machine.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

int tel__random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int tel__uuid4(uint8_t out[TEL_ID_LEN])
{
    if (tel__random(out, TEL_ID_LEN) != 0)
        return -1;
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
    return 0;
}

/*
 * A pool of kernel random bytes for event ids.  A batch of a thousand
 * events made a thousand getrandom() calls, and the system call, not the
 * generator, was most of their cost; one call now fills a page.
 *
 * The page is the whole pool, its count of unused bytes included, and is
 * marked MADV_WIPEONFORK: a forked child finds it all zero, so it sees an
 * empty pool and draws its own bytes, and never hands out an id its
 * parent may hand out too.  Where the kernel cannot wipe on fork (before
 * Linux 4.14) there is no pool, and every id is drawn by itself as before.
 * Bytes are cleared as they are handed out: the page only ever holds ids
 * not used yet.
 */
#define POOL_SIZE 4096

struct tel_idpool {
    uint32_t left;            /* unused bytes, at the end of `bytes` */
    uint8_t bytes[POOL_SIZE - sizeof(uint32_t)];
};
_Static_assert(sizeof(struct tel_idpool) == POOL_SIZE, "the pool is one page");

tel_idpool *tel__idpool_new(void)
{
    void *p = mmap(NULL, POOL_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_WIPEONFORK
    if (madvise(p, POOL_SIZE, MADV_WIPEONFORK) == 0)
        return p;
#endif
    munmap(p, POOL_SIZE);
    return NULL;
}

void tel__idpool_free(tel_idpool *pool)
{
    if (pool)
        munmap(pool, POOL_SIZE);
}

int tel__idpool_uuid4(tel_idpool *pool, uint8_t out[TEL_ID_LEN])
{
    if (!pool)
        return tel__uuid4(out);
    if (pool->left < TEL_ID_LEN) {
        if (tel__random(pool->bytes, sizeof pool->bytes) != 0)
            return -1;
        pool->left = sizeof pool->bytes;
    }
    uint8_t *at = pool->bytes + sizeof pool->bytes - pool->left;
    memcpy(out, at, TEL_ID_LEN);
    memset(at, 0, TEL_ID_LEN);
    pool->left -= TEL_ID_LEN;
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
    return 0;
}

uint64_t tel__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tel__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
