/* SPDX-License-Identifier: MIT */
/*
 * collector/store_impl.h - the contract between collector/store.c, which
 * picks the engine from the URL, and each engine's backend.
 *
 * A backend implements the calls of store.h on its own handle (void *db);
 * store.c checks the arguments every engine would check the same way, so
 * backends may assume them.  Backends report failures with
 * tel__store_fail(), which store_error() then returns.
 */
#ifndef TEL_COLLECTOR_STORE_IMPL_H
#define TEL_COLLECTOR_STORE_IMPL_H

#include "store.h"

/* One write transaction: what store_put_batch, store_erase and
 * store_expire ask of a backend, with their arguments. */
typedef enum store_write_kind { STORE_W_PUT, STORE_W_ERASE, STORE_W_EXPIRE } store_write_kind;

typedef struct store_write {
    store_write_kind kind;
    const store_batch *b;         /* PUT */
    unsigned char *fresh;         /* PUT, may be NULL; zeroed by the caller */
    store_put_result *res;        /* PUT, zeroed by the caller */
    const char *anon_id;          /* ERASE */
    int64_t received_ms;          /* ERASE */
    int *known;                   /* ERASE */
    int64_t before_ms;            /* EXPIRE */
    unsigned limit;               /* EXPIRE */
    uint64_t *deleted;            /* ERASE, EXPIRE */
    int *more;                    /* EXPIRE */
} store_write;

typedef struct store_ops {
    store_kind kind;
    const char *name;
    /* url is the whole URL as given; create is 0 when a database that
     * does not exist must be refused, not made.  NULL with a reason in
     * err. */
    void *(*open)(const char *url, int create, char *err, size_t errlen);
    void (*close)(void *db);
    int (*query)(void *db, const char *sql, int nparams, const char *const *params,
                 store_row_fn row, void *ud);
    int (*exec)(void *db, const char *sql);
    /* Runs w in one transaction, committed before it returns 0; -1
     * when nothing was written (store.c then clears w's results). */
    int (*write)(void *db, store_write *w);
} store_ops;

extern const store_ops tel__store_sqlite;
extern const store_ops tel__store_pg;

/* Sets this thread's store_error() text; returns -1 for `return` chains. */
int tel__store_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The first line of msg, at most n - 1 bytes, into out (for engine
 * messages, which may run over several lines). */
void tel__store_first_line(char *out, size_t n, const char *msg);

#endif
