/* SPDX-License-Identifier: MIT */
/*
 * libqueue/random.c - ids and clocks.
 *
 * Every id tel makes (cookie, event, execution, batch) comes from the
 * kernel's CSPRNG and from nothing else: no MAC address, host name, time
 * or process id goes into it, so no id can be traced back to a machine.
 */
#include <errno.h>
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
