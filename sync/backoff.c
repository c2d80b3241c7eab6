/* SPDX-License-Identifier: MIT */
/*
 * sync/backoff.c - how long to wait after a failed upload.  Pure, so the
 * schedule is tested without a clock, a queue or a network.
 */
#include <stdio.h>
#include <string.h>

#include "sync.h"

int tel__backoff_is_auth(long status)
{
    return status == 401 || status == 403 || status == 404;
}

uint64_t tel__backoff_delay(uint32_t attempt, int auth, long retry_after_s, uint64_t rnd)
{
    uint64_t delay;
    if (auth) {
        delay = TEL_BACKOFF_AUTH_MS;
    } else {
        unsigned shift = attempt <= 1 ? 0 : attempt - 1 > 20 ? 20 : attempt - 1;
        uint64_t ceiling = TEL_BACKOFF_BASE_MS << shift;
        if (ceiling > TEL_BACKOFF_CAP_MS)
            ceiling = TEL_BACKOFF_CAP_MS;
        delay = rnd % (ceiling + 1);
    }
    if (retry_after_s >= 0)
        delay = (uint64_t)retry_after_s * 1000;
    if (delay > TEL_BACKOFF_MAX_MS)
        delay = TEL_BACKOFF_MAX_MS;
    if (delay < TEL_BACKOFF_MIN_MS)
        delay = TEL_BACKOFF_MIN_MS;
    return delay;
}

uint32_t tel__backoff_steps(void)
{
    uint32_t attempt = 1;
    while ((TEL_BACKOFF_BASE_MS << (attempt - 1)) < TEL_BACKOFF_CAP_MS)
        attempt++;
    return attempt;
}

uint64_t tel__backoff_next(tel_backoff *b, const tel_upload_result *res, int auth)
{
    if (b->attempt < UINT32_MAX)
        b->attempt++;
    uint64_t rnd;
    /* Without randomness the clock still spreads a fleet apart. */
    if (tel__random(&rnd, sizeof rnd) != 0)
        rnd = tel__now_ms();
    uint64_t delay = tel__backoff_delay(b->attempt, auth, res->retry_after, rnd);
    b->until_ms = tel__now_ms() + delay;
    b->status = (int)res->status;
    if (res->status)
        snprintf(b->reason, sizeof b->reason, "HTTP %ld", res->status);
    else
        snprintf(b->reason, sizeof b->reason, "%.*s", (int)sizeof b->reason - 1, res->error);
    return delay;
}
