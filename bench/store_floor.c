/* SPDX-License-Identifier: MIT */
/*
 * bench/store_floor.c - the raw floor of each store engine on the rows the
 * collector benchmark sends: what the engine itself takes to store them,
 * with nothing of tel-collect in the way.
 *
 *   store_floor sqlite DB ROWS     one transaction of prepared INSERTs into
 *                                  the events of a new file, as the
 *                                  collector keeps them (table event_rows,
 *                                  ids as 16-byte blobs, and one row of
 *                                  event_spans per batch; WAL,
 *                                  synchronous=FULL)
 *   store_floor sqlite-nosync DB ROWS  the same with synchronous=OFF: the
 *                                  commit writes but never waits for the
 *                                  disk, which shows what durability costs
 *   store_floor pg URL ROWS        one COPY into the events table of an
 *                                  empty database (the collector's schema)
 *
 * ROWS is bench/collect_load.py's rows.tsv (COPY text).  Prints
 * "events seconds", the time from the first row to the commit.  The
 * schema is the collector's own: run tel-collect on the database once
 * first, or let this program create it by opening the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "store.h"
#include "text.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    p[n] = '\0';
    *len = (size_t)n;
    return p;
}

/* Undoes COPY's text escapes in place; NULL for \N. */
static char *field(char *s)
{
    if (strcmp(s, "\\N") == 0)
        return NULL;
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) {
            r++;
            *w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return s;
}

/* The span of the batch that ends at the last insert (see
 * collector/store_sqlite.c): the collector writes one per batch. */
static int add_span(sqlite3 *db, sqlite3_stmt *span, sqlite3_int64 lo, const uint8_t *anon, int has_anon)
{
    sqlite3_bind_int64(span, 1, lo);
    sqlite3_bind_int64(span, 2, sqlite3_last_insert_rowid(db));
    if (has_anon)
        sqlite3_bind_blob(span, 3, anon, TEL_ID_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_null(span, 3);
    int rc = sqlite3_step(span);
    sqlite3_reset(span);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int sqlite_floor(const char *path, char *rows, int nosync)
{
    char err[256], url[512];
    snprintf(url, sizeof url, "sqlite:%s", path);
    tel_store *s = store_open(url, err, sizeof err);   /* creates the schema */
    if (!s) {
        fprintf(stderr, "store_floor: %s\n", err);
        return 1;
    }
    store_close(s);
    sqlite3 *db;
    sqlite3_stmt *st, *span;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;"
                         " PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=4096;", NULL, NULL, NULL) != SQLITE_OK ||
        (nosync && sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL) != SQLITE_OK) ||
        sqlite3_prepare_v2(db, "INSERT INTO event_rows (id, ts, received, name, app, app_version, anon_id,"
                           " exec_id, props, context, batch_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO event_spans (lo, hi, anon_id) VALUES (?1, ?2, ?3)", -1, &span,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "store_floor: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    double t0 = now();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    long n = 0;
    sqlite3_int64 lo = 0;
    uint8_t batch[TEL_ID_LEN], anon[TEL_ID_LEN];
    int has_anon = 0;
    for (char *line = strtok(rows, "\n"); line; line = strtok(NULL, "\n")) {
        char *f[11];
        int k = 0;
        for (char *p = line; k < 11; k++) {
            f[k] = p;
            char *tab = strchr(p, '\t');
            if (tab)
                *tab = '\0';
            p = tab ? tab + 1 : p + strlen(p);
        }
        uint8_t ids[11][TEL_ID_LEN];
        memset(ids, 0, sizeof ids);
        for (k = 0; k < 11; k++) {
            char *v = field(f[k]);
            if (k == 1 || k == 2)
                sqlite3_bind_int64(st, k + 1, atoll(v));
            else if ((k == 0 || k == 6 || k == 7 || k == 10) && v && tel__uuid_parse(v, strlen(v), ids[k]) == 0)
                sqlite3_bind_blob(st, k + 1, ids[k], TEL_ID_LEN, SQLITE_STATIC);
            else
                sqlite3_bind_text(st, k + 1, v, -1, SQLITE_STATIC);
        }
        /* A new batch: the one before gets its span. */
        int fail = lo && memcmp(batch, ids[10], TEL_ID_LEN) != 0 && add_span(db, span, lo, anon, has_anon) != 0;
        if (fail || sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "store_floor: %s\n", sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(st);
        if (!lo || memcmp(batch, ids[10], TEL_ID_LEN) != 0) {
            lo = sqlite3_last_insert_rowid(db);
            memcpy(batch, ids[10], TEL_ID_LEN);
            memcpy(anon, ids[6], TEL_ID_LEN);
            has_anon = strcmp(f[6], "\\N") != 0;
        }
        n++;
    }
    if ((lo && add_span(db, span, lo, anon, has_anon) != 0) || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return 1;
    printf("%ld %.4f\n", n, now() - t0);
    sqlite3_finalize(st);
    sqlite3_finalize(span);
    sqlite3_close(db);
    return 0;
}

static int pg_floor(const char *url, const char *rows, size_t len)
{
    char err[256];
    tel_store *s = store_open(url, err, sizeof err);    /* creates the schema */
    if (!s) {
        fprintf(stderr, "store_floor: %s\n", err);
        return 1;
    }
    store_close(s);
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        return 1;
    long n = 0;
    for (size_t i = 0; i < len; i++)
        n += rows[i] == '\n';
    double t0 = now();
    PGresult *r = PQexec(c, "COPY events FROM STDIN");
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    ok = ok && PQputCopyData(c, rows, (int)len) == 1 && PQputCopyEnd(c, NULL) == 1;
    r = PQgetResult(c);
    ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "store_floor: %s", PQerrorMessage(c));
    PQclear(r);
    printf("%ld %.4f\n", n, now() - t0);
    PQfinish(c);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: store_floor sqlite|sqlite-nosync DB ROWS | pg URL ROWS\n");
        return 2;
    }
    size_t len;
    char *rows = slurp(argv[3], &len);
    if (!rows) {
        perror("store_floor");
        return 1;
    }
    int rc = strncmp(argv[1], "sqlite", 6) == 0 ? sqlite_floor(argv[2], rows, strcmp(argv[1], "sqlite-nosync") == 0)
                                                : pg_floor(argv[2], rows, len);
    free(rows);
    return rc;
}
