/* SPDX-License-Identifier: MIT */
/*
 * collector/store_sqlite.c - the embedded store: one SQLite file.
 *
 * Two connections: one writer, used under a mutex by every write (SQLite
 * has one writer at a time anyway), and one reader for store_query, so
 * that reports read a consistent snapshot while uploads go on (WAL).
 *
 * Durability: journal_mode=WAL with synchronous=FULL makes every COMMIT
 * wait for the WAL to reach the disk, so a batch that was answered 200
 * survives a crash of the process or of the machine.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store_impl.h"
#include "text.h"

/* Waits for a lock another process holds (a report run with the sqlite3
 * shell, a second collector pointed at the same file by mistake). */
#define BUSY_TIMEOUT_MS 5000

/*
 * The documented table `events` is a view over event_rows, which keeps
 * the four ids as 16-byte blobs instead of 36-byte text.  Event ids are
 * random (UUIDv4), so every insert lands at a random place of the unique
 * id index: with blobs its entries are half as long and compare with one
 * memcmp, and each row is 80 bytes shorter, which is that much less for
 * every commit to write and fsync.  The view gives readers (reports, the
 * dashboard, an operator's sqlite3 shell) the ids as lower-case UUID text
 * with plain SQL, and its rowid is event_rows' own, so "rowid > N" is a
 * range of the table.
 */
#define EVENTS_VIEW \
    "CREATE VIEW events AS SELECT rowid AS rowid, " STORE_SQLITE_UUID_TEXT("id") " AS id, ts, received, name, app," \
    " app_version, " STORE_SQLITE_UUID_TEXT("anon_id") " AS anon_id, " STORE_SQLITE_UUID_TEXT("exec_id") " AS exec_id, props," \
    " context, " STORE_SQLITE_UUID_TEXT("batch_id") " AS batch_id FROM event_rows;"

/* Each entry migrates the schema from version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE events ("
    " id TEXT PRIMARY KEY, ts INTEGER NOT NULL, received INTEGER NOT NULL,"
    " name TEXT NOT NULL, app TEXT NOT NULL, app_version TEXT,"
    " anon_id TEXT, exec_id TEXT, props TEXT NOT NULL, context TEXT NOT NULL,"
    " batch_id TEXT NOT NULL);"
    "CREATE INDEX events_ts ON events (ts);"
    "CREATE INDEX events_anon_id ON events (anon_id);"
    "CREATE TABLE batches ("
    " id TEXT PRIMARY KEY, received INTEGER NOT NULL, app TEXT NOT NULL,"
    " events INTEGER NOT NULL, dropped INTEGER NOT NULL);"
    "CREATE INDEX batches_received ON batches (received);"
    "CREATE TABLE erasures ("
    " anon_id TEXT PRIMARY KEY, received INTEGER NOT NULL, deleted INTEGER NOT NULL);",
    /* 2: the events move to event_rows, ids as 16-byte blobs (see
     * EVENTS_VIEW), rowids kept so that readers' watermarks stay valid. */
    "CREATE TABLE event_rows ("
    " id BLOB NOT NULL UNIQUE, ts INTEGER NOT NULL, received INTEGER NOT NULL,"
    " name TEXT NOT NULL, app TEXT NOT NULL, app_version TEXT,"
    " anon_id BLOB, exec_id BLOB, props TEXT NOT NULL, context TEXT NOT NULL,"
    " batch_id BLOB NOT NULL);"
    "INSERT INTO event_rows (rowid, id, ts, received, name, app, app_version, anon_id, exec_id,"
    " props, context, batch_id)"
    " SELECT rowid, tel_uuid_blob(id), ts, received, name, app, app_version, tel_uuid_blob(anon_id),"
    " tel_uuid_blob(exec_id), props, context, tel_uuid_blob(batch_id) FROM events ORDER BY rowid;"
    "DROP TABLE events;"
    "CREATE INDEX event_rows_ts ON event_rows (ts);"
    "CREATE INDEX event_rows_anon_id ON event_rows (anon_id);"
    EVENTS_VIEW,
    /* 3: no index on the events' time.  Their times are the clients',
     * so every commit wrote that index at random places too (a third of
     * the collector's CPU and writes on the bench); retention, its only
     * user, scans in rowid order instead (expire_locked). */
    "DROP INDEX IF EXISTS event_rows_ts;",
    /* 4: no index on the events' anonymous id (each insert paid a third
     * of its engine time for it, for erasures that come rarely); erasure
     * finds the rows through event_spans instead (see cover_locked).
     * The spans of the stored events are their batches' rowid ranges. */
    "CREATE TABLE event_spans (lo INTEGER NOT NULL, hi INTEGER NOT NULL, anon_id BLOB);"
    "INSERT INTO event_spans (lo, hi, anon_id) SELECT MIN(rowid), MAX(rowid), anon_id FROM event_rows"
    " GROUP BY batch_id, anon_id;"
    "CREATE INDEX event_spans_anon_id ON event_spans (anon_id);"
    "CREATE INDEX event_spans_hi ON event_spans (hi);"
    "DROP INDEX IF EXISTS event_rows_anon_id;",
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_HAS_ERASURE, S_HAS_BATCH, S_INS_EVENT, S_INS_BATCH,
    S_DEL_ANON, S_INS_ERASURE, S_SCAN_END, S_EXPIRE_EVENTS, S_EXPIRE_BATCHES, S_SAVEPOINT, S_RELEASE,
    S_ROLLBACK_TO, S_SPAN_TOP, S_SPAN_CUT_FROM, S_SPAN_CUT, S_SPAN_COVER, S_INS_SPAN, S_DEL_SPANS_ANON,
    S_EXPIRE_SPANS, NSTMT
};

static const char *const stmt_sql[NSTMT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_HAS_ERASURE] = "SELECT 1 FROM erasures WHERE anon_id = ?1",
    [S_HAS_BATCH] = "SELECT 1 FROM batches WHERE id = ?1",
    [S_INS_EVENT] = "INSERT INTO event_rows (id, ts, received, name, app, app_version, anon_id,"
                    " exec_id, props, context, batch_id)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    " ON CONFLICT (id) DO NOTHING",
    [S_INS_BATCH] = "INSERT INTO batches (id, received, app, events, dropped)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_DEL_ANON] = "DELETE FROM event_rows WHERE rowid IN (SELECT e.rowid FROM event_spans s"
                   " JOIN event_rows e ON e.rowid BETWEEN s.lo AND s.hi WHERE s.anon_id = ?1 AND e.anon_id = ?1)",
    [S_INS_ERASURE] = "INSERT INTO erasures (anon_id, received, deleted) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (anon_id) DO UPDATE SET deleted = deleted + excluded.deleted",
    [S_SCAN_END] = "SELECT MAX(rowid) FROM (SELECT rowid FROM event_rows WHERE rowid > ?1"
                   " ORDER BY rowid LIMIT ?2)",
    [S_EXPIRE_EVENTS] = "DELETE FROM event_rows WHERE rowid > ?1 AND rowid <= ?2 AND ts < ?3",
    [S_EXPIRE_BATCHES] = "DELETE FROM batches WHERE rowid IN"
                         " (SELECT rowid FROM batches WHERE received < ?1 LIMIT ?2)",
    [S_SAVEPOINT] = "SAVEPOINT batch",
    [S_RELEASE] = "RELEASE batch",
    [S_ROLLBACK_TO] = "ROLLBACK TO batch",
    [S_SPAN_TOP] = "SELECT (SELECT MAX(hi) FROM event_spans), (SELECT MAX(rowid) FROM event_rows)",
    [S_SPAN_CUT_FROM] = "SELECT MIN(lo) FROM event_spans WHERE hi > ?1",
    [S_SPAN_CUT] = "DELETE FROM event_spans WHERE hi > ?1",
    [S_SPAN_COVER] = "INSERT INTO event_spans (lo, hi, anon_id) SELECT MIN(rowid), MAX(rowid), anon_id"
                     " FROM event_rows WHERE rowid > ?1 GROUP BY batch_id, anon_id",
    [S_INS_SPAN] = "INSERT INTO event_spans (lo, hi, anon_id) VALUES (?1, ?2, ?3)",
    [S_DEL_SPANS_ANON] = "DELETE FROM event_spans WHERE anon_id = ?1",
    [S_EXPIRE_SPANS] = "DELETE FROM event_spans WHERE hi > ?1 AND hi <= ?2 AND NOT EXISTS (SELECT 1 FROM"
                       " event_rows e WHERE e.rowid BETWEEN event_spans.lo AND event_spans.hi"
                       " AND e.anon_id IS event_spans.anon_id)",
};

/* A batch waiting for the group commit (see put_grouped). */
typedef struct waiter {
    store_write *w;
    int rc, done;
    char err[256];
    struct waiter *next;
} waiter;

/* Batches stored in one commit at most: bounds how long a group holds
 * the write lock. */
#define GROUP_MAX 16

typedef struct sq {
    sqlite3 *w;
    pthread_mutex_t wlock;
    pthread_mutex_t glock;        /* the queue of waiting batches */
    pthread_cond_t gcond;
    waiter *ghead, **gtail;
    int leading;                  /* a thread is committing a group */
    sqlite3_stmt *st[NSTMT];
    sqlite3 *r;
    pthread_mutex_t rlock;
    sqlite3_int64 expired_to;     /* retention's place: the last rowid it looked at */
} sq;

static int sq_fail(sqlite3 *db, const char *what)
{
    return tel__store_fail("sqlite: %s: %s", what, sqlite3_errmsg(db));
}

/* Runs a prepared statement that returns no rows it needs, and resets it.
 * Returns 0, or -1 with the reason set. */
static int run(sq *q, int which)
{
    sqlite3_stmt *st = q->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(q->w, "statement failed");
    return 0;
}

/* 1 when the one-parameter statement finds a row, 0 when not, -1 on error. */
static int exists(sq *q, int which, const char *key)
{
    sqlite3_stmt *st = q->st[which];
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return sq_fail(q->w, "lookup failed");
}

/* Binds UUID text as its 16 bytes (the blob copied: SQLITE_TRANSIENT
 * would cost a malloc per id, so the caller's `blob` must outlive the
 * statement's step).  NULL binds NULL.  Returns 0, or -1 for text that is
 * no UUID (store.h promises UUIDs; this keeps a broken caller from
 * storing garbage). */
static int bind_uuid(sqlite3_stmt *st, int col, const char *text, uint8_t blob[TEL_ID_LEN])
{
    if (!text)
        return sqlite3_bind_null(st, col) == SQLITE_OK ? 0 : -1;
    if (tel__uuid_parse(text, strlen(text), blob) != 0)
        return -1;
    return sqlite3_bind_blob(st, col, blob, TEL_ID_LEN, SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
}

/* An id the caller may also have given as its bytes (store_event): those
 * are bound as they are, saving the parse.  Returns as bind_uuid. */
static int bind_id(sqlite3_stmt *st, int col, const char *text, const uint8_t *bytes, uint8_t blob[TEL_ID_LEN])
{
    if (text && bytes)
        return sqlite3_bind_blob(st, col, bytes, TEL_ID_LEN, SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
    return bind_uuid(st, col, text, blob);
}

/* tel_uuid_blob(text): the migration to version 2 turns the ids of the
 * stored events into blobs with it.  Text that is no UUID fails the
 * migration, which then leaves the store as it was. */
static void uuid_blob_fn(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;   /* registered with one argument */
    uint8_t id[TEL_ID_LEN];
    const char *t = (const char *)sqlite3_value_text(argv[0]);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
        sqlite3_result_null(cx);
    else if (t && tel__uuid_parse(t, (size_t)sqlite3_value_bytes(argv[0]), id) == 0)
        sqlite3_result_blob(cx, id, TEL_ID_LEN, SQLITE_TRANSIENT);
    else
        sqlite3_result_error(cx, "an id of the events table is not a UUID", -1);
}

static int version_row(void *ud, int ncol, char **vals, char **names)
{
    (void)names;   /* sqlite3_exec's callback shape */
    *(long *)ud = ncol > 0 && vals[0] ? atol(vals[0]) : 0;
    return 0;
}

/* Brings the schema to STORE_SCHEMA_VERSION inside one write transaction,
 * so that two processes starting on a new file cannot both create it. */
static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    char *msg = NULL;
    long version = 0;
    if (sqlite3_create_function(db, "tel_uuid_blob", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                uuid_blob_fn, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE;"
                         "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
                     NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db, "SELECT version FROM schema_version", version_row, &version, &msg) != SQLITE_OK)
        goto fail;
    if (version > (long)NMIGRATIONS) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        snprintf(err, errlen, "the database has schema version %ld; this tel-collect knows up to %d",
                 version, STORE_SCHEMA_VERSION);
        return -1;
    }
    for (long v = version; v < (long)NMIGRATIONS; v++)
        if (sqlite3_exec(db, migrations[v], NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
    if (version < (long)NMIGRATIONS) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d);",
                 (int)NMIGRATIONS);
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
            goto fail;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "sqlite: cannot create or migrate the schema: %s",
             msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* The file exists once this returns 0: an empty file is an empty
 * database to SQLite.  Made here rather than by SQLite, which would give
 * it 0644 under the usual umask: the events are the installs' business,
 * and SQLite gives the -wal and -shm files the database's own mode. */
static int create_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static sqlite3 *open_conn(const char *path, const char *pragmas, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    char *msg = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
        rc = sqlite3_exec(db, pragmas, NULL, NULL, &msg);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 msg ? msg : db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_free(msg);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void sq_close(void *h)
{
    sq *q = h;
    if (!q)
        return;
    for (int i = 0; i < NSTMT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->w);
    sqlite3_close(q->r);
    pthread_mutex_destroy(&q->wlock);
    pthread_mutex_destroy(&q->rlock);
    pthread_mutex_destroy(&q->glock);
    pthread_cond_destroy(&q->gcond);
    free(q);
}

static void *sq_open(const char *url, int create, char *err, size_t errlen)
{
    const char *path = url + strlen("sqlite:");
    if (!*path) {
        snprintf(err, errlen, "sqlite: the URL names no file (sqlite:PATH)");
        return NULL;
    }
    if (!create && access(path, F_OK) != 0 && errno == ENOENT) {
        snprintf(err, errlen, "sqlite: no database at %s", path);
        return NULL;
    }
    if (create && create_private(path, err, errlen) != 0)
        return NULL;
    sq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->wlock, NULL);
    pthread_mutex_init(&q->rlock, NULL);
    pthread_mutex_init(&q->glock, NULL);
    pthread_cond_init(&q->gcond, NULL);
    q->gtail = &q->ghead;
    /* temp_store: the dashboard's fold builds temporary tables of each
     * chunk on this connection; in files they were written out, more
     * bytes than the uploads' own commits.  wal_autocheckpoint: a
     * checkpoint copies each page changed since the last one once, and
     * the random id index has its pages changed by every commit: one
     * every 16 MiB instead of 4 copies them a quarter as often (a fifth
     * fewer bytes written on the bench). */
    q->w = open_conn(path, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;"
                           " PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=4096;", err, errlen);
    if (!q->w || migrate(q->w, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < NSTMT; i++) {
        if (sqlite3_prepare_v3(q->w, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(q->w));
            goto fail;
        }
    }
    /* query_only: store_query checks each statement too, this is the
     * engine's own guarantee that reports never write. */
    q->r = open_conn(path, "PRAGMA query_only=1;", err, errlen);
    if (!q->r)
        goto fail;
    return q;
fail:
    sq_close(q);
    return NULL;
}

/* ------------------------------------------------------------ reading */

/* Binds params to the $N parameters of st.  Every parameter of the
 * statement must be $1..$nparams: anything else would silently read as
 * NULL. */
static int bind_params(sqlite3_stmt *st, int nparams, const char *const *params)
{
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        char *end;
        long k = name && name[0] == '$' ? strtol(name + 1, &end, 10) : 0;
        if (!name || name[0] != '$' || end == name + 1 || *end || k < 1 || k > nparams)
            return tel__store_fail("sqlite: parameter %s has no value (write $1..$%d)",
                                   name ? name : "?", nparams);
        const char *v = params[k - 1];
        int rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
        if (rc != SQLITE_OK)
            return tel__store_fail("sqlite: cannot bind %s", name);
    }
    return 0;
}

static int sq_rows(sq *q, sqlite3_stmt *st, store_row_fn row, void *ud)
{
    int ncol = sqlite3_column_count(st);
    const char **vals = calloc(ncol > 0 ? (size_t)ncol : 1, sizeof *vals);
    if (!vals)
        return tel__store_fail("out of memory");
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < ncol; c++)
            vals[c] = (const char *)sqlite3_column_text(st, c);
        int stop = row(ud, ncol, vals);
        if (stop) {
            ret = stop;
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE)
        ret = sq_fail(q->r, "query failed");
    free(vals);
    return ret;
}

static int sq_query(void *h, const char *sql, int nparams, const char *const *params,
                    store_row_fn row, void *ud)
{
    sq *q = h;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int ret;
    pthread_mutex_lock(&q->rlock);
    if (sqlite3_prepare_v2(q->r, sql, -1, &st, &tail) != SQLITE_OK || !st) {
        ret = st ? sq_fail(q->r, "bad query") : tel__store_fail("sqlite: bad query: %s",
                                                                 sqlite3_errmsg(q->r));
        goto out;
    }
    tail += strspn(tail, " \t\r\n;");
    if (*tail) {
        ret = tel__store_fail("sqlite: store_query takes one statement");
        goto out;
    }
    if (!sqlite3_stmt_readonly(st)) {
        ret = tel__store_fail("sqlite: store_query only reads");
        goto out;
    }
    ret = bind_params(st, nparams, params);
    if (ret == 0)
        ret = sq_rows(q, st, row, ud);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&q->rlock);
    return ret;
}

static int sq_exec(void *h, const char *sql)
{
    sq *q = h;
    char *msg = NULL;
    pthread_mutex_lock(&q->wlock);
    int rc = sqlite3_exec(q->w, sql, NULL, NULL, &msg);
    pthread_mutex_unlock(&q->wlock);
    if (rc != SQLITE_OK) {
        tel__store_fail("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ writing */

/*
 * event_spans locates the rows of an anonymous id for erasure: each span
 * is a range of rowids of event_rows that holds rows of its anon_id (and
 * maybe others: erasure checks each row's own).  The invariant: every row
 * whose rowid is at most the spans' highest `hi` lies in a span of its
 * anon_id.  tel-collect adds one span per stored batch, and, before it
 * writes or erases, covers what other writers added since (cover_locked),
 * so erasure finds every row with one index lookup per batch instead of
 * the index on every row that each insert paid for before.
 */

/* The statement's one row of integers into out[0..n) (NULL as 0), its
 * parameter ?1, if any, bound to arg.  Returns 0 or -1. */
static int ask_ints(sq *q, int which, sqlite3_int64 arg, sqlite3_int64 *out, int n)
{
    sqlite3_stmt *st = q->st[which];
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, arg);
    int rc = sqlite3_step(st);
    for (int i = 0; i < n; i++)
        out[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : sq_fail(q->w, "cannot read the event spans");
}

/* Restores the invariant under the write transaction: rows above the
 * spans' top (other writers') get spans by batch, and when the newest
 * rows were deleted, spans reaching past the last row are cut and what
 * they covered is covered again, so that rowids the engine hands out
 * again start uncovered.  Costs two lookups when nothing changed.
 * Returns 0 or -1. */
static int cover_locked(sq *q)
{
    sqlite3_int64 tl[2], from;
    if (ask_ints(q, S_SPAN_TOP, 0, tl, 2) != 0)
        return -1;
    sqlite3_int64 top = tl[0], last = tl[1];
    if (top == last)
        return 0;
    from = top;
    if (last < top) {
        if (ask_ints(q, S_SPAN_CUT_FROM, last, &from, 1) != 0)
            return -1;
        from--;
        sqlite3_bind_int64(q->st[S_SPAN_CUT], 1, last);
        if (run(q, S_SPAN_CUT) != 0)
            return -1;
    }
    sqlite3_bind_int64(q->st[S_SPAN_COVER], 1, from);
    return run(q, S_SPAN_COVER);
}

/* The span of a batch's new rows [lo, hi].  Returns 0 or -1. */
static int add_span(sq *q, sqlite3_int64 lo, sqlite3_int64 hi, const uint8_t *anon)
{
    sqlite3_stmt *st = q->st[S_INS_SPAN];
    sqlite3_bind_int64(st, 1, lo);
    sqlite3_bind_int64(st, 2, hi);
    if (anon)
        sqlite3_bind_blob(st, 3, anon, TEL_ID_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    return run(q, S_INS_SPAN);
}

static int insert_events(sq *q, const store_batch *b, unsigned char *fresh, store_put_result *res)
{
    sqlite3_stmt *st = q->st[S_INS_EVENT];
    uint8_t anon[TEL_ID_LEN], bid[TEL_ID_LEN], id[TEL_ID_LEN], exec[TEL_ID_LEN];
    sqlite3_int64 lo = 0, hi = 0;
    sqlite3_bind_int64(st, 3, b->received_ms);
    if (bind_uuid(st, 7, b->anon_id, anon) != 0 || bind_uuid(st, 11, b->id, bid) != 0)
        return tel__store_fail("sqlite: the batch's ids are not UUIDs");
    for (size_t i = 0; i < b->nevents; i++) {
        const store_event *e = &b->events[i];
        if (bind_id(st, 1, e->id, e->id_bytes, id) != 0 || bind_id(st, 8, e->exec_id, e->exec_bytes, exec) != 0) {
            sqlite3_clear_bindings(st);
            return tel__store_fail("sqlite: an event's ids are not UUIDs");
        }
        sqlite3_bind_int64(st, 2, e->ts_ms);
        sqlite3_bind_text(st, 4, e->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, e->app, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, e->app_version, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, e->props, (int)e->props_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, e->context, (int)e->context_len, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq_fail(q->w, "cannot store an event");
        int added = sqlite3_changes(q->w) > 0;
        if (fresh)
            fresh[i] = (unsigned char)added;
        if (added) {
            hi = sqlite3_last_insert_rowid(q->w);
            lo = lo ? lo : hi;
            res->stored++;
        } else {
            res->duplicates++;
        }
    }
    sqlite3_clear_bindings(st);
    return lo ? add_span(q, lo, hi, b->anon_id ? anon : NULL) : 0;
}

static int insert_batch(sq *q, const store_batch *b, size_t stored)
{
    sqlite3_stmt *st = q->st[S_INS_BATCH];
    sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->received_ms);
    sqlite3_bind_text(st, 3, b->app, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)stored);
    sqlite3_bind_int64(st, 5, b->dropped > INT64_MAX ? INT64_MAX : (sqlite3_int64)b->dropped);
    return run(q, S_INS_BATCH);
}

/* Everything of a batch under the write transaction; COMMIT is the
 * caller's.  Returns 0, or -1 for a rollback. */
static int put_locked(sq *q, const store_batch *b, unsigned char *fresh, store_put_result *res)
{
    int hit;
    if (b->anon_id) {
        if ((hit = exists(q, S_HAS_ERASURE, b->anon_id)) < 0)
            return -1;
        if (hit) {
            res->outcome = STORE_ERASED;
            return 0;
        }
    }
    if ((hit = exists(q, S_HAS_BATCH, b->id)) < 0)
        return -1;
    if (hit) {
        res->outcome = STORE_REPEAT;
        res->duplicates = b->nevents;
        return 0;
    }
    if (insert_events(q, b, fresh, res) != 0 || insert_batch(q, b, res->stored) != 0)
        return -1;
    if (b->before_commit && b->before_commit(b->ud, fresh) != 0)
        return tel__store_fail("sqlite: the batch was rolled back by its caller");
    return 0;
}

static int erase_locked(sq *q, const store_write *w)
{
    int hit = exists(q, S_HAS_ERASURE, w->anon_id);
    if (hit < 0)
        return -1;
    *w->known = hit;
    uint8_t anon[TEL_ID_LEN];
    if (cover_locked(q) != 0)
        return -1;
    if (bind_uuid(q->st[S_DEL_ANON], 1, w->anon_id, anon) != 0 ||
        bind_uuid(q->st[S_DEL_SPANS_ANON], 1, w->anon_id, anon) != 0)
        return tel__store_fail("sqlite: the anonymous id to erase is not a UUID");
    if (run(q, S_DEL_ANON) != 0)
        return -1;
    *w->deleted = (uint64_t)sqlite3_changes(q->w);
    if (run(q, S_DEL_SPANS_ANON) != 0 || cover_locked(q) != 0)
        return -1;
    sqlite3_stmt *st = q->st[S_INS_ERASURE];
    sqlite3_bind_text(st, 1, w->anon_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, w->received_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)*w->deleted);
    return run(q, S_INS_ERASURE);
}

/* Retention looks at the next 8 * limit events by rowid (the order they
 * were stored in, which is roughly their time's) from where the last step
 * stopped, and starts over at the end of the table. */
static int expire_locked(sq *q, const store_write *w)
{
    sqlite3_stmt *st = q->st[S_SCAN_END];
    sqlite3_bind_int64(st, 1, q->expired_to);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)w->limit * 8);
    int rc = sqlite3_step(st);
    sqlite3_int64 end = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return sq_fail(q->w, "retention cannot read the events");
    if (end) {
        st = q->st[S_EXPIRE_EVENTS];
        sqlite3_bind_int64(st, 1, q->expired_to);
        sqlite3_bind_int64(st, 2, end);
        sqlite3_bind_int64(st, 3, w->before_ms);
        if (run(q, S_EXPIRE_EVENTS) != 0)
            return -1;
        *w->deleted = (uint64_t)sqlite3_changes(q->w);
        st = q->st[S_EXPIRE_SPANS];
        sqlite3_bind_int64(st, 1, q->expired_to);
        sqlite3_bind_int64(st, 2, end);
        if (*w->deleted && (run(q, S_EXPIRE_SPANS) != 0 || cover_locked(q) != 0))
            return -1;
    }
    st = q->st[S_EXPIRE_BATCHES];
    sqlite3_bind_int64(st, 1, w->before_ms);
    sqlite3_bind_int64(st, 2, w->limit);
    if (run(q, S_EXPIRE_BATCHES) != 0)
        return -1;
    /* A step whose transaction then fails is not looked at again until
     * the next sweep starts over: retention is late, never wrong. */
    q->expired_to = end;
    *w->more = end != 0 || sqlite3_changes(q->w) == (int)w->limit;
    return 0;
}

/* ------------------------------------------------------------ group commit
 *
 * With synchronous=FULL each COMMIT waits for the disk, and with random
 * event ids each batch dirties pages all over the id index, which the
 * commit writes to the WAL whole: committing batches that arrive together
 * in one transaction divides both costs by the size of the group.  Each
 * batch stays atomic on its own (a savepoint), and none is answered before
 * the commit that holds it returned.
 *
 * No thread of its own: the first waiting batch's thread commits every
 * batch queued at that moment (up to GROUP_MAX), then wakes their threads;
 * batches that arrive meanwhile form the next group.
 */

/* Under the write transaction: one batch inside its own savepoint, rolled
 * back alone when it fails.  Returns its result; -1 from the transaction
 * itself being lost (then the whole group fails). */
static int put_savepoint(sq *q, waiter *x)
{
    if (run(q, S_SAVEPOINT) != 0)
        return -1;
    store_write *w = x->w;
    x->rc = put_locked(q, w->b, w->fresh, w->res);
    if (x->rc != 0) {
        snprintf(x->err, sizeof x->err, "%s", store_error());
        run(q, S_ROLLBACK_TO);
    }
    run(q, S_RELEASE);
    /* An I/O error may have ended the transaction behind our back: then
     * nothing of the group may be counted as stored. */
    return sqlite3_get_autocommit(q->w) ? -1 : 0;
}

static void commit_group(sq *q, waiter *list)
{
    pthread_mutex_lock(&q->wlock);
    int rc = run(q, S_BEGIN);
    if (rc == 0)
        rc = cover_locked(q);
    for (waiter *x = list; x && rc == 0; x = x->next)
        rc = put_savepoint(q, x);
    if (rc == 0)
        rc = run(q, S_COMMIT);
    if (rc != 0) {
        char err[256];
        snprintf(err, sizeof err, "%s", store_error());
        if (!sqlite3_get_autocommit(q->w))
            run(q, S_ROLLBACK);
        for (waiter *x = list; x; x = x->next) {
            x->rc = -1;
            snprintf(x->err, sizeof x->err, "%s", err);
        }
    }
    pthread_mutex_unlock(&q->wlock);
}

static int put_grouped(sq *q, store_write *w)
{
    waiter me = { .w = w };
    pthread_mutex_lock(&q->glock);
    *q->gtail = &me;
    q->gtail = &me.next;
    while (!me.done) {
        if (q->leading) {
            pthread_cond_wait(&q->gcond, &q->glock);
            continue;
        }
        /* Lead: take up to GROUP_MAX from the head (this batch among them,
         * as every batch before it was taken by an earlier group). */
        q->leading = 1;
        waiter *list = q->ghead, *last = list;
        for (int n = 1; n < GROUP_MAX && last->next; n++)
            last = last->next;
        q->ghead = last->next;
        if (!q->ghead)
            q->gtail = &q->ghead;
        last->next = NULL;
        pthread_mutex_unlock(&q->glock);
        commit_group(q, list);
        pthread_mutex_lock(&q->glock);
        for (waiter *x = list, *next; x; x = next) {
            next = x->next;
            x->done = 1;
        }
        q->leading = 0;
        pthread_cond_broadcast(&q->gcond);
    }
    pthread_mutex_unlock(&q->glock);
    if (me.rc != 0)
        tel__store_fail("%s", me.err);
    return me.rc;
}

/* One write transaction: COMMIT when its work succeeded, else ROLLBACK.
 * Batches go through the group commit. */
static int sq_write(void *h, store_write *w)
{
    sq *q = h;
    if (w->kind == STORE_W_PUT)
        return put_grouped(q, w);
    pthread_mutex_lock(&q->wlock);
    int rc = run(q, S_BEGIN);
    if (rc == 0) {
        switch (w->kind) {
        case STORE_W_PUT: rc = put_locked(q, w->b, w->fresh, w->res); break;
        case STORE_W_ERASE: rc = erase_locked(q, w); break;
        case STORE_W_EXPIRE: rc = expire_locked(q, w); break;
        }
        if (rc == 0)
            rc = run(q, S_COMMIT);
        if (rc != 0)
            run(q, S_ROLLBACK);
    }
    pthread_mutex_unlock(&q->wlock);
    return rc;
}

const store_ops tel__store_sqlite = {
    .kind = STORE_SQLITE,
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .query = sq_query,
    .exec = sq_exec,
    .write = sq_write,
};
