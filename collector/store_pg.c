/*
 * collector/store_pg.c - the shared store: PostgreSQL over libpq.
 */
#include <stdio.h>

#include "store_impl.h"

static void *pg_open(const char *url, char *err, size_t errlen)
{
    snprintf(err, errlen, "postgresql: not supported by this build yet");
    return NULL;
}

const store_ops tel__store_pg = {
    .kind = STORE_POSTGRESQL,
    .name = "postgresql",
    .open = pg_open,
};
