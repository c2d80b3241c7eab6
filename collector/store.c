/* SPDX-License-Identifier: MIT */
/*
 * collector/store.c - picks the engine a store URL names, and the checks
 * every engine shares.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

struct tel_store {
    const store_ops *ops;
    void *db;
};

static _Thread_local char last_error[256];

int tel__store_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

void tel__store_first_line(char *out, size_t n, const char *msg)
{
    if (n == 0)
        return;
    size_t len = msg ? strcspn(msg, "\r\n") : 0;
    if (len >= n)
        len = n - 1;
    memcpy(out, msg ? msg : "", len);
    out[len] = '\0';
}

const char *store_error(void)
{
    return last_error[0] ? last_error : "unknown store error";
}

static const store_ops *engine_of(const char *url)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        return &tel__store_sqlite;
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return &tel__store_pg;
    return NULL;
}

static tel_store *open_store(const char *url, int create, char *err, size_t errlen)
{
    const store_ops *ops = url ? engine_of(url) : NULL;
    if (!ops) {
        snprintf(err, errlen, "the database URL must start with sqlite: or postgresql://");
        return NULL;
    }
    tel_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ops = ops;
    s->db = ops->open(url, create, err, errlen);
    if (!s->db) {
        free(s);
        return NULL;
    }
    return s;
}

tel_store *store_open(const char *url, char *err, size_t errlen)
{
    return open_store(url, 1, err, errlen);
}

tel_store *store_open_existing(const char *url, char *err, size_t errlen)
{
    return open_store(url, 0, err, errlen);
}

void store_close(tel_store *s)
{
    if (!s)
        return;
    s->ops->close(s->db);
    free(s);
}

store_kind store_engine(const tel_store *s)
{
    return s->ops->kind;
}

const char *store_engine_name(const tel_store *s)
{
    return s->ops->name;
}

int store_query(tel_store *s, const char *sql, int nparams, const char *const *params,
                store_row_fn row, void *ud)
{
    if (!sql || nparams < 0 || (nparams > 0 && !params) || !row)
        return tel__store_fail("store_query: bad arguments");
    return s->ops->query(s->db, sql, nparams, params, row, ud);
}

int store_exec(tel_store *s, const char *sql)
{
    if (!sql)
        return tel__store_fail("store_exec: no statement");
    return s->ops->exec(s->db, sql);
}

/* Runs w; on failure clears its results, so callers never see half of
 * a transaction that was rolled back. */
static int write(tel_store *s, store_write *w)
{
    int rc = s->ops->write(s->db, w);
    if (rc != 0) {
        if (w->res)
            memset(w->res, 0, sizeof *w->res);
        if (w->fresh)
            memset(w->fresh, 0, w->b->nevents);
        if (w->deleted)
            *w->deleted = 0;
        if (w->known)
            *w->known = 0;
        if (w->more)
            *w->more = 0;
    }
    return rc;
}

int store_put_batch(tel_store *s, const store_batch *b, unsigned char *fresh,
                    store_put_result *res)
{
    memset(res, 0, sizeof *res);
    if (!b->id || !b->app || (b->nevents && !b->events))
        return tel__store_fail("store_put_batch: bad arguments");
    if (b->before_commit && !fresh)
        return tel__store_fail("store_put_batch: before_commit needs a fresh array");
    if (b->nevents > STORE_MAX_EVENTS)
        return tel__store_fail("store_put_batch: a batch holds at most %d events", STORE_MAX_EVENTS);
    if (fresh)
        memset(fresh, 0, b->nevents);
    store_write w = { .kind = STORE_W_PUT, .b = b, .fresh = fresh, .res = res };
    return write(s, &w);
}

int store_erase(tel_store *s, const char *anon_id, int64_t received_ms,
                uint64_t *deleted, int *known)
{
    *deleted = 0;
    *known = 0;
    if (!anon_id)
        return tel__store_fail("store_erase: no anonymous id");
    store_write w = { .kind = STORE_W_ERASE, .anon_id = anon_id, .received_ms = received_ms,
                      .deleted = deleted, .known = known };
    return write(s, &w);
}

int store_expire(tel_store *s, int64_t before_ms, unsigned limit, uint64_t *deleted, int *more)
{
    *deleted = 0;
    *more = 0;
    if (limit == 0)
        return 0;
    store_write w = { .kind = STORE_W_EXPIRE, .before_ms = before_ms, .limit = limit, .deleted = deleted,
                      .more = more };
    return write(s, &w);
}
