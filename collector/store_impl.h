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

typedef struct store_ops {
    store_kind kind;
    const char *name;
    /* url is the whole URL as given; NULL with a reason in err. */
    void *(*open)(const char *url, char *err, size_t errlen);
    void (*close)(void *db);
    int (*query)(void *db, const char *sql, int nparams, const char *const *params,
                 store_row_fn row, void *ud);
    int (*exec)(void *db, const char *sql);
    int (*put_batch)(void *db, const store_batch *b, unsigned char *fresh, store_put_result *res);
    int (*erase)(void *db, const char *anon_id, int64_t received_ms, uint64_t *deleted, int *known);
    int (*expire)(void *db, int64_t before_ms, unsigned limit, uint64_t *deleted);
} store_ops;

extern const store_ops tel__store_sqlite;
extern const store_ops tel__store_pg;

/* Sets this thread's store_error() text; returns -1 for `return` chains. */
int tel__store_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The first line of msg, at most n - 1 bytes, into out (for engine
 * messages, which may run over several lines). */
void tel__store_first_line(char *out, size_t n, const char *msg);

#endif
