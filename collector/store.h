/* SPDX-License-Identifier: MIT */
/*
 * collector/store.h - where tel-collect keeps what it accepted: one
 * interface, two engines (SQLite in a file, PostgreSQL over libpq).
 *
 * The schema is the same on both engines and documented in
 * docs/tel-collect.md: tables events, batches, erasures and
 * schema_version.  store_open() creates it on a new database and migrates
 * an older one in place.
 *
 * A store may be used from many threads at once: each call takes the
 * lock of the connection it uses.  Writes (store_put_batch, store_erase,
 * store_expire, store_exec) share one connection; reads (store_query)
 * have their own, so a long report never waits for an upload nor makes
 * one wait (SQLite in WAL mode, PostgreSQL by MVCC).
 *
 * Every function that can fail returns -1 and leaves a one-line reason
 * for the calling thread in store_error().  Reasons name the problem,
 * never a value of an event.
 */
#ifndef TEL_COLLECTOR_STORE_H
#define TEL_COLLECTOR_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tel_store tel_store;

typedef enum store_kind {
    STORE_SQLITE = 1,
    STORE_POSTGRESQL = 2
} store_kind;

/* The most events store_put_batch takes at once: a batch of the wire. */
#define STORE_MAX_EVENTS 1000

/* SQLite keeps ids as 16-byte blobs (docs/tel-collect.md): this SQL
 * expression gives the blob column c as lower-case UUID text, as the
 * view `events` shows it (SQLite 3.40 has no function for it). */
#define STORE_SQLITE_UUID_TEXT(c) \
    "CASE WHEN " c " IS NOT NULL THEN lower(substr(hex(" c "), 1, 8) || '-' || substr(hex(" c "), 9, 4)" \
    " || '-' || substr(hex(" c "), 13, 4) || '-' || substr(hex(" c "), 17, 4) || '-' ||" \
    " substr(hex(" c "), 21)) END"

/* The schema version this build creates and migrates to. */
#define STORE_SCHEMA_VERSION 4

/*
 * Opens the store named by url, creating or migrating its schema:
 *   sqlite:PATH                       a SQLite file (created if missing,
 *                                     readable by its owner only; its
 *                                     directory must exist)
 *   postgresql://USER@HOST:PORT/DB    a libpq connection URI (postgres://
 *                                     too); the database must exist
 * Returns the store (the caller owns it; free with store_close), or NULL
 * with a one-line reason in err[0..errlen) (always NUL-terminated).
 */
tel_store *store_open(const char *url, char *err, size_t errlen);

/* store_open for a reader: a SQLite file that does not exist is an error
 * ("no database at PATH"), never created empty. */
tel_store *store_open_existing(const char *url, char *err, size_t errlen);

/* Closes the connections and frees the store; NULL is ignored. */
void store_close(tel_store *s);

store_kind store_engine(const tel_store *s);
/* "sqlite" or "postgresql": a static string. */
const char *store_engine_name(const tel_store *s);

/* The reason of this thread's last failed store call: a static or
 * thread-local string, valid until the thread's next store call. */
const char *store_error(void);

/*
 * Runs one read-only statement and hands each row to row(): ncol values
 * as NUL-terminated text, SQL NULL as a NULL pointer, valid only during
 * the call.  Parameters are written $1 .. $N in the SQL on both engines,
 * in any order and as often as needed; params[i] is the text of $(i+1),
 * NULL for SQL NULL.  row returns 0 to go on or a positive number to stop.
 * Returns 0 when every row was delivered, the positive number row
 * stopped with, or -1 (statement refused, not read-only, engine down).
 */
typedef int (*store_row_fn)(void *ud, int ncol, const char *const *vals);
int store_query(tel_store *s, const char *sql, int nparams, const char *const *params,
                store_row_fn row, void *ud);

/* Runs one or more statements without parameters or results, for DDL
 * (indexes, views).  Returns 0 or -1. */
int store_exec(tel_store *s, const char *sql);

/* One event of a batch to store.  Strings are NUL-terminated valid UTF-8
 * without NUL bytes; the JSON texts are objects.  Nothing is owned. */
typedef struct store_event {
    const char *id;           /* 36-character lower-case UUID text */
    /* The 16 bytes that id and exec_id spell, when the caller has them
     * (an engine that keeps ids as bytes then need not parse the text);
     * NULL otherwise.  exec_bytes is NULL when exec_id is. */
    const uint8_t *id_bytes, *exec_bytes;
    int64_t ts_ms;            /* the event's time */
    const char *name;
    const char *app;
    const char *app_version;  /* NULL when the event has none */
    const char *exec_id;      /* UUID text or NULL */
    const char *props;        /* JSON object */
    size_t props_len;
    const char *context;      /* JSON object */
    size_t context_len;
} store_event;

typedef struct store_batch {
    const char *id;           /* the batch id, UUID text */
    int64_t received_ms;
    const char *app;          /* of its first event */
    const char *anon_id;      /* shared by every event; NULL: none */
    uint64_t dropped;         /* the batch's "d" */
    const store_event *events;
    size_t nevents;
    /* Called inside the transaction once the events are written, before
     * COMMIT, with fresh[] filled (store_put_batch must then be given a
     * fresh array): a non-zero return rolls the whole batch back and
     * store_put_batch fails.  tel-collect writes its export here, so that
     * a batch is committed only with its lines written.  May be NULL. */
    int (*before_commit)(void *ud, const unsigned char *fresh);
    void *ud;
} store_batch;

typedef enum store_outcome {
    STORE_STORED = 0,         /* stored; per-event results in fresh[] */
    STORE_REPEAT,             /* the batch id was stored before: nothing written */
    STORE_ERASED              /* its anonymous id was erased: nothing written */
} store_outcome;

typedef struct store_put_result {
    store_outcome outcome;
    size_t stored;            /* events written now */
    size_t duplicates;        /* events whose id was stored before */
} store_put_result;

/*
 * Stores a batch atomically, committed durably before it returns 0 (the
 * SQLite backend may commit it together with batches other threads store
 * at the same moment, each in its own savepoint: still all or nothing).  Events whose id is already stored are left alone (by the database's
 * unique id, so also across restarts and between collectors sharing one
 * PostgreSQL).  fresh, when not NULL, holds nevents flags set to 1 for the
 * events written now and 0 for the others.  Returns 0 with *res filled,
 * or -1 with nothing stored (the client should retry later).
 */
int store_put_batch(tel_store *s, const store_batch *b, unsigned char *fresh,
                    store_put_result *res);

/*
 * Erases every event of anonymous id anon_id and remembers the id, so that
 * later batches of it are dropped (STORE_ERASED).  One transaction,
 * committed before it returns 0.  *deleted is the number of events
 * removed now; *known is 1 when the id had been erased before.  Returns 0
 * or -1.
 */
int store_erase(tel_store *s, const char *anon_id, int64_t received_ms,
                uint64_t *deleted, int *known);

/*
 * One short step of retention, in one transaction, so uploads wait at most
 * that long: deletes events whose time is before before_ms and batch rows
 * received before it, at most `limit` of each.  PostgreSQL finds the
 * events by an index on their time; SQLite has none (it would be written
 * at a random place by every commit), so it looks at the next 8 * limit
 * events in the order they were stored, from where its previous step of
 * this process stopped.  *deleted is the number of events removed; *more
 * is 1 when a next step may find more: call again while it is.  Returns
 * 0 or -1.
 */
int store_expire(tel_store *s, int64_t before_ms, unsigned limit, uint64_t *deleted, int *more);

#endif
