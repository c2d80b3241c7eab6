/* SPDX-License-Identifier: MIT */
/*
 * sync/versions.c - what the drain remembers of its collector's versions
 * (sync.h).  It is a hint, never a promise: a value that does not parse,
 * or was stored for another endpoint, reads as "nothing known", which
 * only costs one batch sent in version 1 or 2.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sync.h"

static uint64_t endpoint_hash(const char *endpoint)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = endpoint; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return h;
}

unsigned tel__versions_load(tel_queue *q, const char *endpoint)
{
    char val[64], tail;
    size_t len = 0;
    uint64_t h;
    unsigned versions;
    if (!endpoint || tel__queue_meta_get(q, TEL_META_COLLECTOR, val, sizeof val - 1, &len) != TEL_OK ||
        len >= sizeof val)
        return 0;
    val[len] = '\0';
    if (sscanf(val, "1 %16" SCNx64 " %u%c", &h, &versions, &tail) != 2 || h != endpoint_hash(endpoint))
        return 0;
    return versions;
}

int tel__versions_store(tel_queue *q, const char *endpoint, unsigned versions)
{
    char val[64];
    if (!endpoint)
        return TEL_OK;
    int n = snprintf(val, sizeof val, "1 %016" PRIx64 " %u", endpoint_hash(endpoint), versions);
    return tel__queue_meta_put(q, TEL_META_COLLECTOR, val, (size_t)n);
}
