/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_store.c - the store interface of tel-collect
 * (collector/store.h) on a real SQLite file, and on a real PostgreSQL
 * when TEL_TEST_PG_URL names one (tests/t_store_pg.sh starts one and runs
 * this program again with it).
 *
 * Every check goes through store.h only, so both engines answer the same
 * questions: opening and its errors, batches stored once whatever is
 * re-sent, $N parameters in any order, read-only queries, erasure,
 * retention in bounded steps, and what survives closing and reopening.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "store.h"

#define ANON "aaaaaaaa-0000-4000-8000-000000000001"

static char err[256];

/* Event ids: a fixed prefix and a number, so tests can name them. */
static void event_id(char out[37], unsigned n)
{
    snprintf(out, 37, "eeeeeeee-0000-4000-8000-%012u", n);
}

typedef struct mkbatch {
    char bid[37];
    char ids[8][37];
    store_event ev[8];
    store_batch b;
} mkbatch;

/* A batch "b<n>" of the events first .. first+count-1. */
static const store_batch *make(mkbatch *m, unsigned n, unsigned first, unsigned count, const char *anon,
                               int64_t ts)
{
    memset(m, 0, sizeof *m);
    snprintf(m->bid, sizeof m->bid, "bbbbbbbb-0000-4000-8000-%012u", n);
    for (unsigned i = 0; i < count; i++) {
        event_id(m->ids[i], first + i);
        store_event *e = &m->ev[i];
        e->id = m->ids[i];
        e->ts_ms = ts + i;
        e->name = i % 2 ? "cmd.run" : "cmd.fail";
        e->app = "demo";
        e->app_version = i == 0 ? NULL : "1.2.3";
        e->exec_id = "cccccccc-0000-4000-8000-000000000001";
        e->props = "{\"cmd\":\"deploy\",\"ok\":true}";
        e->props_len = strlen(e->props);
        e->context = "{\"app\":\"demo\",\"os\":\"linux\",\"ci\":false}";
        e->context_len = strlen(e->context);
    }
    m->b.id = m->bid;
    m->b.received_ms = 1700000000000;
    m->b.app = "demo";
    m->b.anon_id = anon;
    m->b.dropped = n;
    m->b.events = m->ev;
    m->b.nevents = count;
    return &m->b;
}

/* Rows into one string: "a,b|c,d|" with NULL shown as "~". */
typedef struct rows {
    char text[1024];
    int n, stop_after;
} rows;

static int collect(void *ud, int ncol, const char *const *vals)
{
    rows *r = ud;
    for (int c = 0; c < ncol; c++) {
        size_t len = strlen(r->text);
        snprintf(r->text + len, sizeof r->text - len, "%s%s", c ? "," : "", vals[c] ? vals[c] : "~");
    }
    size_t len = strlen(r->text);
    snprintf(r->text + len, sizeof r->text - len, "|");
    r->n++;
    return r->stop_after && r->n >= r->stop_after ? 7 : 0;
}

/* The rows of sql as text, or "ERR" when it failed. */
static const char *q(tel_store *s, const char *sql, int np, const char *const *p)
{
    static rows r;
    memset(&r, 0, sizeof r);
    if (store_query(s, sql, np, p, collect, &r) != 0) {
        printf("# %s\n", store_error());
        return "ERR";
    }
    return r.text;
}

static void opening_errors(void)
{
    CHECK_GROUP("open");
    CHECK("an unknown scheme is refused", !store_open("mysql://x/y", err, sizeof err) &&
                                              strstr(err, "sqlite:") && !strchr(err, '\n'));
    CHECK("sqlite: without a path is refused", !store_open("sqlite:", err, sizeof err) && strstr(err, "no file"));
    CHECK("a missing directory is one line", !store_open("sqlite:/nonexistent/dir/x.db", err, sizeof err) &&
                                                 strstr(err, "cannot open") && !strchr(err, '\n'));
}

/* The mode bits of dir/name, or -1 when it does not exist. */
static int mode_of(const char *dir, const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* A reader never makes a database; a writer makes it, and its journal
 * files, readable by the owner only whatever the umask. */
static void private_files(const char *dir)
{
    CHECK_GROUP("files");
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s/typo.db", dir);
    CHECK("a reader's missing database is refused, named",
          !store_open_existing(url, err, sizeof err) && strstr(err, "no database at") && strstr(err, "typo.db") &&
              !strchr(err, '\n'));
    CHECK_EQ_INT("and no file was made for it", mode_of(dir, "typo.db"), -1);
    mode_t old = umask(022);
    snprintf(url, sizeof url, "sqlite:%s/new.db", dir);
    tel_store *s = store_open(url, err, sizeof err);
    umask(old);
    CHECK("a writer makes a new database", s != NULL);
    CHECK_EQ_INT("the database is 0600 under umask 022", mode_of(dir, "new.db"), 0600);
    CHECK_EQ_INT("its -wal is 0600", mode_of(dir, "new.db-wal"), 0600);
    CHECK_EQ_INT("its -shm is 0600", mode_of(dir, "new.db-shm"), 0600);
    store_close(s);
    s = store_open_existing(url, err, sizeof err);
    CHECK("a reader opens a database that exists", s != NULL);
    store_close(s);
}

static void batches(tel_store *s)
{
    CHECK_GROUP(store_engine_name(s));
    mkbatch m;
    store_put_result res;
    unsigned char fresh[8];

    CHECK_EQ_INT("a new batch is stored", store_put_batch(s, make(&m, 1, 1, 3, ANON, 1000), fresh, &res), 0);
    CHECK("its three events are new", res.outcome == STORE_STORED && res.stored == 3 && res.duplicates == 0 &&
                                          fresh[0] && fresh[1] && fresh[2]);
    CHECK_EQ_INT("the same batch again", store_put_batch(s, make(&m, 1, 1, 3, ANON, 1000), fresh, &res), 0);
    CHECK("is a repeat, stored nothing", res.outcome == STORE_REPEAT && res.stored == 0 && !fresh[0]);

    /* A new batch id re-sending event 3 beside a new event 4 (a split). */
    CHECK_EQ_INT("a split batch", store_put_batch(s, make(&m, 2, 3, 2, ANON, 1000), fresh, &res), 0);
    CHECK("stores only the new event", res.outcome == STORE_STORED && res.stored == 1 && res.duplicates == 1 &&
                                           !fresh[0] && fresh[1]);
    CHECK_EQ_INT("a batch with no lasting id", store_put_batch(s, make(&m, 3, 5, 1, NULL, 5000), fresh, &res), 0);

    CHECK_EQ_INT("events hold each id once", atoi(q(s, "SELECT count(*) FROM events", 0, NULL)), 5);
    CHECK("dropped counts are stored per batch",
          strcmp(q(s, "SELECT id, events, dropped FROM batches ORDER BY id", 0, NULL),
                 "bbbbbbbb-0000-4000-8000-000000000001,3,1|bbbbbbbb-0000-4000-8000-000000000002,1,2|"
                 "bbbbbbbb-0000-4000-8000-000000000003,1,3|") == 0);
    CHECK("columns keep what was stored",
          strcmp(q(s, "SELECT name, app, app_version, anon_id, exec_id, ts, batch_id FROM events"
                      " WHERE id = 'eeeeeeee-0000-4000-8000-000000000005'", 0, NULL),
                 "cmd.fail,demo,~,~,cccccccc-0000-4000-8000-000000000001,5000,"
                 "bbbbbbbb-0000-4000-8000-000000000003|") == 0);
}

static void queries(tel_store *s)
{
    const char *p[] = { "demo", "cmd.run", NULL };
    CHECK("$2 before $1, one used twice",
          strcmp(q(s, "SELECT count(*) FROM events WHERE name = $2 AND app = $1 AND name = $2", 2, p),
                 "2|") == 0);
    CHECK("a NULL parameter is SQL NULL",
          strcmp(q(s, "SELECT count(*) FROM events WHERE app_version = CAST($3 AS TEXT) OR CAST($3 AS TEXT) IS NULL", 3, p), "5|") == 0);
    CHECK("a parameter past nparams is refused",
          strcmp(q(s, "SELECT count(*) FROM events WHERE app = $3", 2, p), "ERR") == 0 && *store_error());
    CHECK("a writing statement is refused", strcmp(q(s, "DELETE FROM events", 0, NULL), "ERR") == 0);
    CHECK("nothing was deleted by it", atoi(q(s, "SELECT count(*) FROM events", 0, NULL)) == 5);
    CHECK("a bad statement is refused", strcmp(q(s, "SELEC nothing", 0, NULL), "ERR") == 0);
    rows r;
    memset(&r, 0, sizeof r);
    r.stop_after = 2;
    CHECK_EQ_INT("row() stops the query with its value",
                 store_query(s, "SELECT id FROM events ORDER BY id", 0, NULL, collect, &r), 7);
    CHECK_EQ_INT("after two rows", r.n, 2);
    CHECK_EQ_INT("store_exec runs DDL",
                 store_exec(s, "CREATE INDEX IF NOT EXISTS batches_app ON batches (app)"), 0);
    CHECK_EQ_INT("store_exec refuses nonsense", store_exec(s, "CREATE NONSENSE"), -1);
}

static void erasure_and_retention(tel_store *s)
{
    uint64_t deleted = 0;
    int known = -1;
    CHECK_EQ_INT("erasing an anonymous id", store_erase(s, ANON, 1700000000001, &deleted, &known), 0);
    CHECK("deletes the four events of that id", deleted == 4 && known == 0);
    CHECK_EQ_INT("only events of other ids are left",
                 atoi(q(s, "SELECT count(*) FROM events WHERE anon_id IS NOT NULL", 0, NULL)), 0);
    CHECK_EQ_INT("erasing it again", store_erase(s, ANON, 1700000000002, &deleted, &known), 0);
    CHECK("is known, deletes nothing", deleted == 0 && known == 1);
    mkbatch m;
    store_put_result res;
    CHECK_EQ_INT("a late batch of the erased id", store_put_batch(s, make(&m, 9, 90, 2, ANON, 1000), NULL, &res), 0);
    CHECK("is dropped", res.outcome == STORE_ERASED && res.stored == 0);
    CHECK_EQ_INT("and stores nothing", atoi(q(s, "SELECT count(*) FROM events", 0, NULL)), 1);

    /* Retention: 5 old events, 1 new, then 24 new and 3 old stored after
     * them; steps of 2 (SQLite looks at 16 events a step). */
    make(&m, 10, 100, 5, NULL, 10);
    store_put_batch(s, &m.b, NULL, &res);
    for (unsigned i = 0; i < 3; i++) {
        make(&m, 11 + i, 110 + 8 * i, 8, NULL, 5000);
        store_put_batch(s, &m.b, NULL, &res);
    }
    make(&m, 14, 140, 3, NULL, 20);
    store_put_batch(s, &m.b, NULL, &res);
    uint64_t total = 0, steps = 0, most = 0;
    int more;
    do {
        if (store_expire(s, 2000, 2, &deleted, &more) != 0)
            break;
        total += deleted;
        most = deleted > most ? deleted : most;
        steps++;
    } while (more && steps < 100);
    CHECK("expiry deletes every old event, also those stored after newer ones", total == 8);
    CHECK("in steps that end", steps < 100 && !more);
    CHECK("each deleting a bounded number", most <= 16 && (store_engine(s) != STORE_POSTGRESQL || most <= 2));
    CHECK_EQ_INT("and keeps newer ones", atoi(q(s, "SELECT count(*) FROM events", 0, NULL)), 25);
    CHECK("a sweep started again finds nothing more",
          store_expire(s, 2000, 2, &deleted, &more) == 0 && deleted == 0);
}

static void reopen(const char *url)
{
    tel_store *s = store_open(url, err, sizeof err);
    CHECK("reopening the store", s != NULL);
    if (!s)
        return;
    CHECK_EQ_INT("keeps the events", atoi(q(s, "SELECT count(*) FROM events", 0, NULL)), 25);
    CHECK_EQ_INT("keeps the erasures", atoi(q(s, "SELECT count(*) FROM erasures", 0, NULL)), 1);
    CHECK_EQ_INT("at the current schema version", atoi(q(s, "SELECT version FROM schema_version", 0, NULL)),
                 STORE_SCHEMA_VERSION);
    mkbatch m;
    store_put_result res;
    store_put_batch(s, make(&m, 3, 5, 1, NULL, 5000), NULL, &res);
    CHECK("a batch stored before the restart is still a repeat", res.outcome == STORE_REPEAT);
    /* A newer schema than this build knows is refused, not damaged. */
    store_exec(s, "UPDATE schema_version SET version = 99");
    store_close(s);
    s = store_open(url, err, sizeof err);
    CHECK("a newer schema version is refused", !s && strstr(err, "schema version 99"));
    store_close(s);
}

static void run(const char *url, int fresh_db)
{
    tel_store *s = store_open(url, err, sizeof err);
    CHECK("opening the store", s != NULL);
    if (!s) {
        printf("# %s\n", err);
        return;
    }
    if (!fresh_db) {
        store_exec(s, "DELETE FROM events; DELETE FROM batches; DELETE FROM erasures");
    }
    batches(s);
    queries(s);
    erasure_and_retention(s);
    store_close(s);
    reopen(url);
}

/* A SQLite store as version 1 of the schema made it (ids as text in the
 * table events itself), with two events and a batch. */
static const char v1_store[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE events (id TEXT PRIMARY KEY, ts INTEGER NOT NULL, received INTEGER NOT NULL,"
    " name TEXT NOT NULL, app TEXT NOT NULL, app_version TEXT, anon_id TEXT, exec_id TEXT,"
    " props TEXT NOT NULL, context TEXT NOT NULL, batch_id TEXT NOT NULL);"
    "CREATE INDEX events_ts ON events (ts); CREATE INDEX events_anon_id ON events (anon_id);"
    "CREATE TABLE batches (id TEXT PRIMARY KEY, received INTEGER NOT NULL, app TEXT NOT NULL,"
    " events INTEGER NOT NULL, dropped INTEGER NOT NULL);"
    "CREATE INDEX batches_received ON batches (received);"
    "CREATE TABLE erasures (anon_id TEXT PRIMARY KEY, received INTEGER NOT NULL, deleted INTEGER NOT NULL);"
    "INSERT INTO events VALUES ('eeeeeeee-0000-4000-8000-000000000001', 1700000000000, 1700000000001,"
    " 'cmd.run', 'demo', '1.0', '" ANON "', NULL, '{}', '{\"os\":\"linux\"}',"
    " 'bbbbbbbb-0000-4000-8000-000000000001');"
    "INSERT INTO events VALUES ('eeeeeeee-0000-4000-8000-000000000002', 1700000000002, 1700000000001,"
    " 'cmd.run', 'demo', NULL, NULL, 'cccccccc-0000-4000-8000-000000000001', '{\"n\":1}', '{}',"
    " 'bbbbbbbb-0000-4000-8000-000000000001');"
    "DELETE FROM events WHERE rowid = 1;"
    "INSERT INTO events VALUES ('eeeeeeee-0000-4000-8000-000000000003', 1700000000003, 1700000000001,"
    " 'cmd.run', 'demo', '1.0', '" ANON "', NULL, '{}', '{}', 'bbbbbbbb-0000-4000-8000-000000000001');"
    "INSERT INTO batches VALUES ('bbbbbbbb-0000-4000-8000-000000000001', 1700000000001, 'demo', 3, 0);";

static void migrates_v1(const char *dir)
{
    CHECK_GROUP("sqlite migration");
    char path[160], url[170];
    snprintf(path, sizeof path, "%s/v1.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    sqlite3 *db;
    int made = sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, v1_store, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    CHECK("a version 1 store is made", made);
    tel_store *s = store_open(url, err, sizeof err);
    CHECK("a version 1 store opens", s != NULL);
    if (!s) {
        printf("# %s\n", err);
        return;
    }
    CHECK_EQ_INT("it is migrated to the current version", atoi(q(s, "SELECT version FROM schema_version", 0, NULL)),
                 STORE_SCHEMA_VERSION);
    CHECK("its events keep their ids as text, and their rowids",
          strcmp(q(s, "SELECT rowid, id, anon_id, exec_id, batch_id, props FROM events ORDER BY rowid", 0, NULL),
                 "2,eeeeeeee-0000-4000-8000-000000000002,~,cccccccc-0000-4000-8000-000000000001,"
                 "bbbbbbbb-0000-4000-8000-000000000001,{\"n\":1}|"
                 "3,eeeeeeee-0000-4000-8000-000000000003," ANON ",~,"
                 "bbbbbbbb-0000-4000-8000-000000000001,{}|") == 0);
    mkbatch m;
    store_put_result res;
    store_put_batch(s, make(&m, 2, 3, 2, ANON, 1700000000000), NULL, &res);
    CHECK("an event stored before the migration is still a duplicate", res.stored == 1 && res.duplicates == 1);
    uint64_t deleted;
    int known;
    CHECK("erasure finds the migrated events", store_erase(s, ANON, 1700000000009, &deleted, &known) == 0 &&
                                               deleted == 2);
    CHECK("the events' time has no index (retention scans by rowid)",
          strcmp(q(s, "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'event_rows'"
                      " AND type = 'index' AND sql LIKE '%(ts)%'", 0, NULL), "0|") == 0);
    store_close(s);
}

/* A SQLite store as versions 2 and 3 made it (events in event_rows, ids
 * as blobs, an index on anon_id; version 2 also on ts): two batches of
 * ANON and one of another id, a row another program wrote without a
 * batch, and the newest row deleted. */
#define X_ANON "x'aaaaaaaa000040008000000000000001'"
#define X_OTHER "x'aaaaaaaa000040008000000000000002'"
#define V23_ROW(n, anon, batch) \
    "INSERT INTO event_rows VALUES (x'eeeeeeee0000400080000000000000" n "', 1700000000000, 1700000000001," \
    " 'cmd.run', 'demo', '1.0', " anon ", NULL, '{}', '{}', x'bbbbbbbb0000400080000000000000" batch "');"
static const char v23_store[] =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE event_rows (id BLOB NOT NULL UNIQUE, ts INTEGER NOT NULL, received INTEGER NOT NULL,"
    " name TEXT NOT NULL, app TEXT NOT NULL, app_version TEXT, anon_id BLOB, exec_id BLOB,"
    " props TEXT NOT NULL, context TEXT NOT NULL, batch_id BLOB NOT NULL);"
    "CREATE INDEX event_rows_anon_id ON event_rows (anon_id);"
    "CREATE TABLE batches (id TEXT PRIMARY KEY, received INTEGER NOT NULL, app TEXT NOT NULL,"
    " events INTEGER NOT NULL, dropped INTEGER NOT NULL);"
    "CREATE INDEX batches_received ON batches (received);"
    "CREATE TABLE erasures (anon_id TEXT PRIMARY KEY, received INTEGER NOT NULL, deleted INTEGER NOT NULL);"
    "CREATE VIEW events AS SELECT rowid AS rowid, " STORE_SQLITE_UUID_TEXT("id") " AS id, ts, received, name,"
    " app, app_version, " STORE_SQLITE_UUID_TEXT("anon_id") " AS anon_id, " STORE_SQLITE_UUID_TEXT("exec_id")
    " AS exec_id, props, context, " STORE_SQLITE_UUID_TEXT("batch_id") " AS batch_id FROM event_rows;"
    V23_ROW("01", X_ANON, "01") V23_ROW("02", X_ANON, "01") V23_ROW("03", X_OTHER, "02")
    V23_ROW("04", X_ANON, "03") V23_ROW("05", "NULL", "04") V23_ROW("06", X_ANON, "05")
    V23_ROW("07", X_OTHER, "06") "DELETE FROM event_rows WHERE rowid = 7;";

/* Opens a new store at dir/name made by sql; NULL (a failed check) when
 * it cannot be made or opened. */
static tel_store *old_store(const char *dir, const char *name, const char *sql, const char *extra)
{
    char path[160], url[170];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(url, sizeof url, "sqlite:%s", path);
    sqlite3 *db;
    int made = sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK &&
               sqlite3_exec(db, extra, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    CHECK("the old store is made", made);
    tel_store *s = store_open(url, err, sizeof err);
    CHECK("it opens", s != NULL);
    if (!s)
        printf("# %s\n", err);
    return s;
}

static void migrates_v2_v3(const char *dir)
{
    static const char *const extra[2] = {
        "CREATE INDEX event_rows_ts ON event_rows (ts); INSERT INTO schema_version VALUES (2);",
        "INSERT INTO schema_version VALUES (3);",
    };
    for (int v = 2; v <= 3; v++) {
        CHECK_GROUP(v == 2 ? "sqlite migration from version 2" : "sqlite migration from version 3");
        char name[16];
        snprintf(name, sizeof name, "v%d.db", v);
        tel_store *s = old_store(dir, name, v23_store, extra[v - 2]);
        if (!s)
            continue;
        CHECK_EQ_INT("it is migrated to the current version",
                     atoi(q(s, "SELECT version FROM schema_version", 0, NULL)), STORE_SCHEMA_VERSION);
        CHECK("no index on the events but the unique id is left",
              strcmp(q(s, "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'event_rows' AND type = 'index'",
                       0, NULL), "1|") == 0);
        CHECK("the events keep their rowids",
              strcmp(q(s, "SELECT group_concat(rowid) FROM events", 0, NULL), "1,2,3,4,5,6|") == 0);
        mkbatch m;
        store_put_result res;
        store_put_batch(s, make(&m, 9, 90, 2, ANON, 1700000000000), NULL, &res);
        uint64_t deleted;
        int known;
        CHECK("erasure finds the migrated events and the new ones",
              store_erase(s, ANON, 1700000000009, &deleted, &known) == 0 && deleted == 6);
        CHECK("and leaves the others",
              strcmp(q(s, "SELECT group_concat(rowid) FROM events", 0, NULL), "3,5|") == 0);
        store_close(s);
    }
}

/* Rows that another program writes or deletes straight in event_rows:
 * erasure still finds them. */
static void others_rows(const char *dir)
{
    CHECK_GROUP("sqlite erasure");
    char path[160], url[170];
    snprintf(path, sizeof path, "%s/spans.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    tel_store *s = store_open(url, err, sizeof err);
    sqlite3 *db = NULL;
    SETUP(!s || sqlite3_open(path, &db) != SQLITE_OK);
    if (!s || !db) {
        sqlite3_close(db);
        store_close(s);
        return;
    }
    mkbatch m;
    store_put_result res;
    uint64_t deleted;
    int known;
    store_put_batch(s, make(&m, 1, 1, 3, ANON, 1000), NULL, &res);
    sqlite3_exec(db, V23_ROW("11", X_OTHER, "11"), NULL, NULL, NULL);
    store_put_batch(s, make(&m, 2, 4, 2, NULL, 1000), NULL, &res);
    sqlite3_exec(db, V23_ROW("12", X_OTHER, "12"), NULL, NULL, NULL);
    CHECK("finds rows another program wrote between batches and after them",
          store_erase(s, "aaaaaaaa-0000-4000-8000-000000000002", 1001, &deleted, &known) == 0 && deleted == 2);
    /* The newest rows deleted by hand: the engine hands their rowids out
     * again, to rows that must be found by their own id. */
    sqlite3_exec(db, "DELETE FROM event_rows WHERE rowid > 1;" V23_ROW("13", X_OTHER, "13"), NULL, NULL, NULL);
    CHECK("finds a row written at a rowid whose row was deleted",
          store_erase(s, "aaaaaaaa-0000-4000-8000-000000000002", 1002, &deleted, &known) == 0 && deleted == 1);
    CHECK("and leaves the others", strcmp(q(s, "SELECT count(*) FROM events", 0, NULL), "1|") == 0);
    store_put_batch(s, make(&m, 3, 20, 4, ANON, 1000), NULL, &res);
    CHECK("a batch stored after it is found too",
          store_erase(s, ANON, 1003, &deleted, &known) == 0 && deleted == 5);
    /* Retention drops the spans of what it deleted, so they do not pile up. */
    store_put_batch(s, make(&m, 4, 30, 3, "aaaaaaaa-0000-4000-8000-000000000003", 10), NULL, &res);
    store_put_batch(s, make(&m, 5, 40, 3, NULL, 5000), NULL, &res);
    int more;
    CHECK("retention deletes the old batch",
          store_expire(s, 2000, 100, &deleted, &more) == 0 && deleted == 3);
    CHECK("and its span",
          strcmp(q(s, "SELECT count(*) FROM event_spans s WHERE NOT EXISTS (SELECT 1 FROM event_rows e"
                      " WHERE e.rowid BETWEEN s.lo AND s.hi)", 0, NULL), "0|") == 0);
    sqlite3_close(db);
    store_close(s);
}

int main(void)
{
    opening_errors();
    const char *pg = getenv("TEL_TEST_PG_URL");
    if (pg && *pg) {
        run(pg, 0);
        return check_exit();
    }
    char dir[] = "/tmp/tel-store.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char url[128];
    snprintf(url, sizeof url, "sqlite:%s/events.db", dir);
    run(url, 1);
    migrates_v1(dir);
    migrates_v2_v3(dir);
    others_rows(dir);
    private_files(dir);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return check_exit();
}
