/* SPDX-License-Identifier: MIT */
/*
 * collector/store_pg.c - the shared store: PostgreSQL over libpq.
 *
 * Several collectors may share one database, so nothing here relies on
 * being alone: duplicates are refused by the unique keys (a batch row is
 * inserted first and so also serves as the lock that makes a second
 * collector receiving the same batch wait, then find it stored), and an
 * erasure and a batch of the same anonymous id are ordered by a
 * transaction-scoped advisory lock on that id.
 *
 * A batch travels as one COPY into a temporary table and one
 * INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING id, so that its
 * cost stays close to that of COPY alone whatever its size.
 *
 * The engine may be down or slow: every statement has a time limit, a
 * lost connection is reopened on the next call, and while it cannot be
 * reopened calls fail at once for a second instead of each waiting for
 * the connect timeout.  Callers answer 503 and the clients keep their
 * events.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "store_impl.h"

/* Connections for writes: concurrent uploads each take a free one, so
 * their commits can overlap (PostgreSQL groups the WAL flushes). */
#define PG_WRITERS 4
#define CONNECT_TIMEOUT "3"
/* Below tel-sync's 10 s request timeout, so a slow engine still gets an
 * answer (503) to the client before it gives up on its own. */
#define STATEMENT_TIMEOUT_MS 5000
#define RECONNECT_PAUSE_MS 1000
/* The first key of the advisory locks, "tel" in ASCII. */
#define LOCK_SPACE 0x74656c

static const char *const migrations[] = {
    "CREATE TABLE events ("
    " id text PRIMARY KEY, ts bigint NOT NULL, received bigint NOT NULL,"
    " name text NOT NULL, app text NOT NULL, app_version text,"
    " anon_id text, exec_id text, props jsonb NOT NULL, context jsonb NOT NULL,"
    " batch_id text NOT NULL);"
    "CREATE INDEX events_ts ON events (ts);"
    "CREATE INDEX events_anon_id ON events (anon_id);"
    "CREATE TABLE batches ("
    " id text PRIMARY KEY, received bigint NOT NULL, app text NOT NULL,"
    " events bigint NOT NULL, dropped bigint NOT NULL);"
    "CREATE INDEX batches_received ON batches (received);"
    "CREATE TABLE erasures ("
    " anon_id text PRIMARY KEY, received bigint NOT NULL, deleted bigint NOT NULL);",
    /* 2: SQLite's store changed how it keeps the events (store_sqlite.c);
     * the logical tables, and so this engine's, stay as they were. */
    "COMMENT ON TABLE events IS 'one row per distinct event id';",
    /* 3: SQLite dropped its index on the events' time; this engine keeps
     * it (its retention looks events up by time). */
    "COMMENT ON INDEX events_ts IS 'retention';",
    /* 4: SQLite replaced its index on the anonymous id by spans of rows;
     * this engine keeps the index (several collectors insert at once,
     * so their rows have no spans of rowids). */
    "COMMENT ON INDEX events_anon_id IS 'erasure';",
};
#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

typedef struct pgc {
    pthread_mutex_t lock;
    PGconn *c;
    int reader;
} pgc;

typedef struct pg {
    char *url;
    pgc w[PG_WRITERS];
    pgc r;
    pthread_mutex_t down_lock;
    struct timespec down_since;   /* last failed connect; 0 when none */
    unsigned next;
} pg;

static int pg_fail(PGconn *c, const char *what)
{
    char line[200];
    tel__store_first_line(line, sizeof line, c ? PQerrorMessage(c) : "out of memory");
    return tel__store_fail("postgresql: %s: %s", what, line);
}

/* PGRES_* of a result, then frees it; -1 with the reason on failure. */
static int done(PGconn *c, PGresult *r, ExecStatusType want, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != want) {
        char line[200];
        tel__store_first_line(line, sizeof line, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        return tel__store_fail("postgresql: %s: %s", what, line);
    }
    PQclear(r);
    return 0;
}

static int cmd(PGconn *c, const char *sql, const char *what)
{
    return done(c, PQexec(c, sql), PGRES_COMMAND_OK, what);
}

/* Server notices ("relation already exists, skipping") are not errors;
 * libpq would print them on stderr. */
static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static PGconn *connect_url(const char *url, int reader)
{
    const char *keys[] = { "dbname", "connect_timeout", "application_name", "client_encoding", NULL };
    const char *vals[] = { url, CONNECT_TIMEOUT, "tel-collect", "UTF8", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK)
        return c;
    PQsetNoticeProcessor(c, quiet, NULL);
    char set[160];
    snprintf(set, sizeof set, "SET statement_timeout = %d; SET default_transaction_read_only = %s",
             STATEMENT_TIMEOUT_MS, reader ? "on" : "off");
    PGresult *r = PQexec(c, set);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    /* Each session stages batches in its own temporary table. */
    if (!reader) {
        r = PQexec(c, "CREATE TEMPORARY TABLE IF NOT EXISTS incoming"
                      " (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS");
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK) {
            PQfinish(c);
            return NULL;
        }
    }
    return c;
}

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Makes sure k (locked by the caller) holds a working connection.
 * Returns 0, or -1 with the reason set. */
static int ensure(pg *p, pgc *k)
{
    if (k->c && PQstatus(k->c) == CONNECTION_OK)
        return 0;
    if (k->c) {
        PQfinish(k->c);
        k->c = NULL;
    }
    pthread_mutex_lock(&p->down_lock);
    int recent = p->down_since.tv_sec && ms_since(&p->down_since) < RECONNECT_PAUSE_MS;
    pthread_mutex_unlock(&p->down_lock);
    if (recent)
        return tel__store_fail("postgresql: the database is unreachable; retrying shortly");
    PGconn *c = connect_url(p->url, k->reader);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        int rc = pg_fail(c, "cannot connect");
        PQfinish(c);
        pthread_mutex_lock(&p->down_lock);
        clock_gettime(CLOCK_MONOTONIC, &p->down_since);
        pthread_mutex_unlock(&p->down_lock);
        return rc;
    }
    pthread_mutex_lock(&p->down_lock);
    p->down_since.tv_sec = 0;
    pthread_mutex_unlock(&p->down_lock);
    k->c = c;
    return 0;
}

/* A writer connection, locked and connected; NULL with the reason set. */
static pgc *take_writer(pg *p)
{
    pgc *k = NULL;
    for (int i = 0; i < PG_WRITERS && !k; i++)
        if (pthread_mutex_trylock(&p->w[i].lock) == 0)
            k = &p->w[i];
    if (!k) {
        pthread_mutex_lock(&p->down_lock);
        unsigned i = p->next++ % PG_WRITERS;
        pthread_mutex_unlock(&p->down_lock);
        k = &p->w[i];
        pthread_mutex_lock(&k->lock);
    }
    if (ensure(p, k) != 0) {
        pthread_mutex_unlock(&k->lock);
        return NULL;
    }
    return k;
}

/* BEGIN on k.  A connection that broke while idle (the server restarted)
 * is only found out by using it: then it is reopened and BEGIN tried once
 * more, so the first request after an outage is not refused for nothing. */
static int begin(pg *p, pgc *k)
{
    if (cmd(k->c, "BEGIN", "cannot begin") == 0)
        return 0;
    if (PQstatus(k->c) == CONNECTION_OK || ensure(p, k) != 0)
        return -1;
    return cmd(k->c, "BEGIN", "cannot begin");
}

static void give_back(pgc *k)
{
    pthread_mutex_unlock(&k->lock);
}

static int migrate(PGconn *c, char *err, size_t errlen)
{
    char sql[160];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d, 0);", LOCK_SPACE);
    long version = 0;
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto fail;
    PQclear(r);
    r = NULL;
    if (cmd(c, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)", "schema") != 0)
        goto fail;
    r = PQexec(c, "SELECT version FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto fail;
    if (PQntuples(r) > 0)
        version = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    r = NULL;
    if (version > (long)NMIGRATIONS) {
        PQclear(PQexec(c, "ROLLBACK"));
        snprintf(err, errlen, "the database has schema version %ld; this tel-collect knows up to %d",
                 version, STORE_SCHEMA_VERSION);
        return -1;
    }
    for (long v = version; v < (long)NMIGRATIONS; v++)
        if (cmd(c, migrations[v], "schema") != 0)
            goto fail;
    snprintf(sql, sizeof sql, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)",
             (int)NMIGRATIONS);
    if ((version < (long)NMIGRATIONS && cmd(c, sql, "schema") != 0) || cmd(c, "COMMIT", "schema") != 0)
        goto fail;
    return 0;
fail:;
    char line[200];
    tel__store_first_line(line, sizeof line, r ? PQresultErrorMessage(r) : store_error());
    PQclear(r);
    snprintf(err, errlen, "postgresql: cannot create or migrate the schema: %s", line);
    PQclear(PQexec(c, "ROLLBACK"));
    return -1;
}

static void pg_close(void *h)
{
    pg *p = h;
    if (!p)
        return;
    for (int i = 0; i < PG_WRITERS; i++) {
        PQfinish(p->w[i].c);
        pthread_mutex_destroy(&p->w[i].lock);
    }
    PQfinish(p->r.c);
    pthread_mutex_destroy(&p->r.lock);
    pthread_mutex_destroy(&p->down_lock);
    free(p->url);
    free(p);
}

/* The schema must exist before the first writer connects (its temporary
 * table copies the events table), so the first connection migrates. */
static void *pg_open(const char *url, int create, char *err, size_t errlen)
{
    (void)create;   /* connecting never creates a PostgreSQL database */
    pg *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(url))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < PG_WRITERS; i++)
        pthread_mutex_init(&p->w[i].lock, NULL);
    pthread_mutex_init(&p->r.lock, NULL);
    pthread_mutex_init(&p->down_lock, NULL);
    p->r.reader = 1;
    const char *keys[] = { "dbname", "connect_timeout", "client_encoding", NULL };
    const char *vals[] = { url, CONNECT_TIMEOUT, "UTF8", NULL };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char line[200];
        tel__store_first_line(line, sizeof line, c ? PQerrorMessage(c) : "out of memory");
        snprintf(err, errlen, "postgresql: cannot connect: %s", line);
        PQfinish(c);
        pg_close(p);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    int rc = migrate(c, err, errlen);
    PQfinish(c);
    if (rc != 0 || ensure(p, &p->w[0]) != 0) {
        if (rc == 0)
            snprintf(err, errlen, "%s", store_error());
        pg_close(p);
        return NULL;
    }
    return p;
}

/* ------------------------------------------------------------ reading */

/* 1 when the SQL text mentions $k (not as the start of $k0..). */
static int mentions(const char *sql, int k)
{
    char want[16];
    int n = snprintf(want, sizeof want, "$%d", k);
    for (const char *at = strstr(sql, want); at; at = strstr(at + 1, want))
        if (at[n] < '0' || at[n] > '9')
            return 1;
    return 0;
}

/* Parameter types for PQexecParams: the engine infers the type of each
 * parameter from where it is used, but cannot for one that is not used
 * at all; those are declared text, so callers may pass optional filters
 * their SQL leaves out.  NULL when none is needed; malloc'd otherwise. */
static Oid *param_types(const char *sql, int nparams, int *bad)
{
    *bad = 0;
    Oid *types = NULL;
    for (int k = 1; k <= nparams; k++) {
        if (mentions(sql, k))
            continue;
        if (!types && !(types = calloc((size_t)nparams, sizeof *types))) {
            *bad = 1;
            return NULL;
        }
        types[k - 1] = 25;      /* text */
    }
    return types;
}

/* The rows are handed out after the connection is unlocked, so row() may
 * itself query the store. */
static int pg_query(void *h, const char *sql, int nparams, const char *const *params,
                    store_row_fn row, void *ud)
{
    pg *p = h;
    pthread_mutex_lock(&p->r.lock);
    if (ensure(p, &p->r) != 0) {
        pthread_mutex_unlock(&p->r.lock);
        return -1;
    }
    int bad;
    Oid *types = param_types(sql, nparams, &bad);
    if (bad) {
        pthread_mutex_unlock(&p->r.lock);
        return tel__store_fail("out of memory");
    }
    PGresult *r = PQexecParams(p->r.c, sql, nparams, types, params, NULL, NULL, 0);
    if (PQstatus(p->r.c) != CONNECTION_OK && ensure(p, &p->r) == 0) {
        /* Broken while idle: once more on a new connection (see begin). */
        PQclear(r);
        r = PQexecParams(p->r.c, sql, nparams, types, params, NULL, NULL, 0);
    }
    free(types);
    int ret = 0;
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        /* A statement that returns no rows is not a query either. */
        PQclear(r);
        ret = tel__store_fail("postgresql: store_query only reads");
    } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        ret = done(p->r.c, r, PGRES_TUPLES_OK, "query failed");
    }
    pthread_mutex_unlock(&p->r.lock);
    if (ret != 0)
        return ret;
    int ncol = PQnfields(r), nrow = PQntuples(r);
    const char **vals = calloc(ncol > 0 ? (size_t)ncol : 1, sizeof *vals);
    if (!vals) {
        PQclear(r);
        return tel__store_fail("out of memory");
    }
    for (int i = 0; i < nrow && ret == 0; i++) {
        for (int c = 0; c < ncol; c++)
            vals[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
        ret = row(ud, ncol, vals);
    }
    free(vals);
    PQclear(r);
    return ret;
}

static int pg_exec(void *h, const char *sql)
{
    pg *p = h;
    pgc *k = take_writer(p);
    if (!k)
        return -1;
    PGresult *r = PQexec(k->c, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK
                 ? (PQclear(r), 0)
                 : done(k->c, r, PGRES_COMMAND_OK, "statement failed");
    give_back(k);
    return rc;
}

/* ------------------------------------------------------------ writing */

/* Appends s as one field of COPY's text format.  JSON texts also get
 * \u0000 turned into \ufffd: jsonb refuses a NUL in a string, and one
 * event must not make its whole batch fail forever. */
static int copy_field(char **w, char *end, const char *s, size_t n, int json)
{
    if (!s) {
        if (end - *w < 2)
            return -1;
        memcpy(*w, "\\N", 2);
        *w += 2;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (end - *w < 8)
            return -1;
        char ch = s[i];
        if (json && ch == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && n - i >= 6 && memcmp(s + i + 2, "0000", 4) == 0) {
                memcpy(*w, "\\\\ufffd", 7);
                *w += 7;
                i += 5;
                continue;
            }
            memcpy(*w, "\\\\", 2);      /* the escape and what it escapes */
            *w += 2;
            ch = s[++i];
        }
        switch (ch) {
        case '\\': memcpy(*w, "\\\\", 2); *w += 2; break;
        case '\t': memcpy(*w, "\\t", 2); *w += 2; break;
        case '\n': memcpy(*w, "\\n", 2); *w += 2; break;
        case '\r': memcpy(*w, "\\r", 2); *w += 2; break;
        default: *(*w)++ = ch;
        }
    }
    return 0;
}

/* The COPY text of the batch's events, in malloc'd memory. */
static char *copy_text(const store_batch *b, size_t *len)
{
    size_t cap = 256;
    for (size_t i = 0; i < b->nevents; i++) {
        const store_event *e = &b->events[i];
        cap += 512 + 2 * (strlen(e->name) + strlen(e->app) +
                          (e->app_version ? strlen(e->app_version) : 0)) +
               4 * (e->props_len + e->context_len);
    }
    char *text = malloc(cap), *w = text, *end = text + cap;
    if (!text)
        return NULL;
    char num[64];
    for (size_t i = 0; i < b->nevents; i++) {
        const store_event *e = &b->events[i];
        int bad = copy_field(&w, end, e->id, strlen(e->id), 0);
        int n = snprintf(num, sizeof num, "\t%lld\t%lld\t", (long long)e->ts_ms, (long long)b->received_ms);
        memcpy(w, num, (size_t)n);
        w += n;
        const char *text_fields[] = { e->name, e->app, e->app_version, b->anon_id, e->exec_id };
        for (int f = 0; f < 5 && !bad; f++) {
            bad |= copy_field(&w, end, text_fields[f], text_fields[f] ? strlen(text_fields[f]) : 0, 0);
            *w++ = '\t';
        }
        bad |= copy_field(&w, end, e->props, e->props_len, 1);
        *w++ = '\t';
        bad |= copy_field(&w, end, e->context, e->context_len, 1);
        *w++ = '\t';
        bad |= copy_field(&w, end, b->id, strlen(b->id), 0);
        *w++ = '\n';
        if (bad || end - w < 64) {
            free(text);
            return NULL;
        }
    }
    *len = (size_t)(w - text);
    return text;
}

static int copy_in(PGconn *c, const store_batch *b)
{
    size_t len = 0;
    char *text = copy_text(b, &len);
    if (!text)
        return tel__store_fail("postgresql: out of memory");
    PGresult *r = PQexec(c, "COPY incoming (id, ts, received, name, app, app_version, anon_id,"
                            " exec_id, props, context, batch_id) FROM STDIN");
    int rc = PQresultStatus(r) == PGRES_COPY_IN ? 0 : -1;
    PQclear(r);
    if (rc == 0 && (PQputCopyData(c, text, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1))
        rc = -1;
    free(text);
    if (rc != 0)
        return pg_fail(c, "cannot send the events");
    return done(c, PQgetResult(c), PGRES_COMMAND_OK, "cannot stage the events");
}

typedef struct id_at {
    const char *id;
    size_t i;
} id_at;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const id_at *)a)->id, ((const id_at *)b)->id);
}

/* Marks fresh[i] for each event id the INSERT returned. */
static void mark_fresh(PGresult *r, const store_batch *b, unsigned char *fresh)
{
    if (!fresh)
        return;
    id_at by_id[STORE_MAX_EVENTS];
    for (size_t i = 0; i < b->nevents; i++)
        by_id[i] = (id_at){ b->events[i].id, i };
    qsort(by_id, b->nevents, sizeof *by_id, cmp_id);
    for (int t = 0; t < PQntuples(r); t++) {
        id_at key = { PQgetvalue(r, t, 0), 0 };
        const id_at *hit = bsearch(&key, by_id, b->nevents, sizeof *by_id, cmp_id);
        if (hit)
            fresh[hit->i] = 1;
    }
}

static int one_row(PGconn *c, PGresult *r, int *found, const char *what)
{
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return done(c, r, PGRES_TUPLES_OK, what);
    *found = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

/* Under BEGIN: the checks and the writes of one batch. */
static int put_locked(PGconn *c, const store_batch *b, unsigned char *fresh, store_put_result *res)
{
    int found = 0;
    if (b->anon_id) {
        const char *pa[] = { b->anon_id };
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT 1 FROM (SELECT pg_advisory_xact_lock_shared(%d, hashtext($1))) l,"
                                  " erasures WHERE anon_id = $1", LOCK_SPACE);
        if (one_row(c, PQexecParams(c, sql, 1, NULL, pa, NULL, NULL, 0), &found, "lookup failed") != 0)
            return -1;
        if (found) {
            res->outcome = STORE_ERASED;
            return 0;
        }
    }
    char dropped[24];
    snprintf(dropped, sizeof dropped, "%llu", (unsigned long long)(b->dropped > INT64_MAX ? INT64_MAX : b->dropped));
    char received[24];
    snprintf(received, sizeof received, "%lld", (long long)b->received_ms);
    const char *pb[] = { b->id, received, b->app, dropped };
    if (one_row(c, PQexecParams(c, "INSERT INTO batches (id, received, app, events, dropped)"
                                   " VALUES ($1, $2, $3, 0, $4) ON CONFLICT (id) DO NOTHING RETURNING 1",
                                4, NULL, pb, NULL, NULL, 0), &found, "cannot store the batch") != 0)
        return -1;
    if (!found) {
        res->outcome = STORE_REPEAT;
        res->duplicates = b->nevents;
        return 0;
    }
    if (b->nevents == 0)
        return b->before_commit && b->before_commit(b->ud, fresh) != 0 ? -1 : 0;
    if (copy_in(c, b) != 0)
        return -1;
    /* In id order: two batches sharing events (a split, a replay at
     * another collector) then wait for each other instead of deadlocking. */
    PGresult *r = PQexec(c, "INSERT INTO events SELECT * FROM incoming ORDER BY id"
                            " ON CONFLICT (id) DO NOTHING RETURNING id");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return done(c, r, PGRES_TUPLES_OK, "cannot store the events");
    res->stored = (size_t)PQntuples(r);
    res->duplicates = b->nevents - res->stored;
    mark_fresh(r, b, fresh);
    PQclear(r);
    char stored[24];
    snprintf(stored, sizeof stored, "%zu", res->stored);
    const char *pu[] = { b->id, stored };
    if (done(c, PQexecParams(c, "UPDATE batches SET events = $2 WHERE id = $1", 2, NULL, pu, NULL, NULL, 0),
             PGRES_COMMAND_OK, "cannot count the batch") != 0)
        return -1;
    if (b->before_commit && b->before_commit(b->ud, fresh) != 0)
        return tel__store_fail("postgresql: the batch was rolled back by its caller");
    return 0;
}

static int erase_locked(PGconn *c, const store_write *w)
{
    const char *pa[] = { w->anon_id };
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT 1 FROM (SELECT pg_advisory_xact_lock(%d, hashtext($1))) l,"
                              " erasures WHERE anon_id = $1", LOCK_SPACE);
    if (one_row(c, PQexecParams(c, sql, 1, NULL, pa, NULL, NULL, 0), w->known, "lookup failed") != 0)
        return -1;
    PGresult *r = PQexecParams(c, "DELETE FROM events WHERE anon_id = $1", 1, NULL, pa, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return done(c, r, PGRES_COMMAND_OK, "cannot delete the events");
    *w->deleted = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    char received[24], deleted[24];
    snprintf(received, sizeof received, "%lld", (long long)w->received_ms);
    snprintf(deleted, sizeof deleted, "%llu", (unsigned long long)*w->deleted);
    const char *pi[] = { w->anon_id, received, deleted };
    return done(c, PQexecParams(c, "INSERT INTO erasures (anon_id, received, deleted) VALUES ($1, $2, $3)"
                                   " ON CONFLICT (anon_id) DO UPDATE SET deleted = erasures.deleted + excluded.deleted",
                                3, NULL, pi, NULL, NULL, 0),
                PGRES_COMMAND_OK, "cannot remember the erasure");
}

static int expire_locked(PGconn *c, const store_write *w)
{
    char before[24], limit[16];
    snprintf(before, sizeof before, "%lld", (long long)w->before_ms);
    snprintf(limit, sizeof limit, "%u", w->limit);
    const char *pe[] = { before, limit };
    /* ctid, not id: the subquery's rows are deleted by their place. */
    PGresult *r = PQexecParams(c, "DELETE FROM events WHERE ctid = ANY (ARRAY("
                                  "SELECT ctid FROM events WHERE ts < $1 LIMIT $2))",
                               2, NULL, pe, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return done(c, r, PGRES_COMMAND_OK, "cannot expire events");
    *w->deleted = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    r = PQexecParams(c, "DELETE FROM batches WHERE ctid = ANY (ARRAY("
                        "SELECT ctid FROM batches WHERE received < $1 LIMIT $2))",
                     2, NULL, pe, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return done(c, r, PGRES_COMMAND_OK, "cannot expire batches");
    *w->more = *w->deleted == w->limit || strtoull(PQcmdTuples(r), NULL, 10) == w->limit;
    PQclear(r);
    return 0;
}

/* One write transaction on a writer connection: COMMIT when its work
 * succeeded, else ROLLBACK. */
static int pg_write(void *h, store_write *w)
{
    pgc *k = take_writer(h);
    if (!k)
        return -1;
    int rc = begin(h, k);
    if (rc == 0) {
        switch (w->kind) {
        case STORE_W_PUT: rc = put_locked(k->c, w->b, w->fresh, w->res); break;
        case STORE_W_ERASE: rc = erase_locked(k->c, w); break;
        case STORE_W_EXPIRE: rc = expire_locked(k->c, w); break;
        }
        if (rc == 0)
            rc = cmd(k->c, "COMMIT", "cannot commit");
        if (rc != 0 && PQstatus(k->c) == CONNECTION_OK)
            PQclear(PQexec(k->c, "ROLLBACK"));
    }
    give_back(k);
    return rc;
}

const store_ops tel__store_pg = {
    .kind = STORE_POSTGRESQL,
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .query = pg_query,
    .exec = pg_exec,
    .write = pg_write,
};
