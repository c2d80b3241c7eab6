/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_rollup.c - the rollup tables behind the dashboard.
 *
 * A query over a million JSON events cannot answer in a fraction of a
 * second, so the dashboard reads small tables keyed by day, app, version
 * and CI state instead, folded in from `events` a chunk at a time behind a
 * watermark.  The folding never runs inside an upload's transaction.
 *
 * Counts add up across days; distinct installs do not.  Two shapes keep
 * those exact without a row per install and day for everything:
 *  - dash_inst holds one row per install, 32-day block and attributes,
 *    with a bitmap of the days it was seen: active installs per day, week
 *    and month, versions, OS... are counted from it exactly.
 *  - For commands, options, errors and spans only the privacy threshold
 *    needs installs: is a cell backed by at least k of them?  Each
 *    counted table (dash_cmd, ...) keeps, per day and cell, nk = the
 *    number of distinct installs, up to DASH_K_MAX; while a day's cell
 *    has fewer, its installs are listed in the _k table beside it, and
 *    once it reaches DASH_K_MAX the list goes.  Over any range, a cell has
 *    at least k <= DASH_K_MAX installs exactly when one of its days has
 *    nk >= k, or the installs listed for its days number k or more (every
 *    day below k lists all of its installs).
 * `aid` is a small number standing for an anonymous id (dash_anon); 0
 * stands for runs with no lasting id, which never count as installs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "store.h"

/* Rollup tables; the same columns on both engines. */
static const char *const tables_sql[] = {
    "CREATE TABLE IF NOT EXISTS dash_state (k TEXT PRIMARY KEY, v BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dash_day (day INTEGER, app TEXT, ver TEXT, ci INTEGER,"
    " events BIGINT, PRIMARY KEY (day, app, ver, ci))",
    "CREATE TABLE IF NOT EXISTS dash_noid (day INTEGER, app TEXT, ver TEXT, ci INTEGER,"
    " exec TEXT, PRIMARY KEY (day, app, ver, ci, exec))",
    "CREATE TABLE IF NOT EXISTS dash_inst (blk INTEGER, app TEXT, ver TEXT, ci INTEGER,"
    " aid BIGINT, os TEXT, arch TEXT, cpus TEXT, civ TEXT, bits BIGINT,"
    " PRIMARY KEY (blk, app, ver, ci, aid, os, arch, cpus, civ))",
    "CREATE TABLE IF NOT EXISTS dash_batch (day INTEGER, app TEXT, dropped BIGINT, dropping BIGINT,"
    " PRIMARY KEY (day, app))",
    "CREATE TABLE IF NOT EXISTS dash_dur (day INTEGER, app TEXT, ver TEXT, ci INTEGER,"
    " cmd TEXT, b INTEGER, n BIGINT, PRIMARY KEY (day, app, ver, ci, cmd, b))",
    "CREATE TABLE IF NOT EXISTS dash_metric (app TEXT, name TEXT, labels TEXT, aid BIGINT,"
    " ts BIGINT, day INTEGER, ver TEXT, ci INTEGER, value DOUBLE PRECISION,"
    " PRIMARY KEY (app, name, labels, aid))",
    "CREATE INDEX IF NOT EXISTS dash_metric_day ON dash_metric (day)",
};

/*
 * The counted tables: per day and cell (the key columns), sums, and nk.
 * Each reads its rows from `src`, a subquery over the chunk with the
 * columns day, app, ver, ci, aid, the keys and what the sums use.
 */
typedef struct counted {
    const char *name;           /* dash_<name> and dash_<name>_k */
    const char *keys[3];
    const char *sums;           /* the columns: "uses BIGINT, ..." */
    const char *exprs;          /* their values over a group of src */
    const char *add;            /* how a new group adds to a stored row */
    const char *src;
} counted;

static const counted counteds[] = {
    { "cmd", { "cmd" }, "uses BIGINT, fails BIGINT, ms BIGINT",
      "COUNT(*), SUM(CASE WHEN code <> 0 THEN 1 ELSE 0 END), SUM(COALESCE(dur, 0))",
      "uses = t.uses + excluded.uses, fails = t.fails + excluded.fails, ms = t.ms + excluded.ms",
      "(SELECT * FROM dash_new WHERE name = 'command.exited' AND cmd IS NOT NULL)" },
    { "opt", { "cmd", "opt" }, "n BIGINT", "COUNT(*)", "n = t.n + excluded.n", "dash_opts" },
    { "err", { "cls" }, "n BIGINT", "COUNT(*)", "n = t.n + excluded.n",
      "(SELECT * FROM dash_new WHERE cls IS NOT NULL AND cls <> '')" },
    { "span", { "cmd", "span", "parent" }, "n BIGINT, ms BIGINT", "COUNT(*), SUM(COALESCE(dur, 0))",
      "n = t.n + excluded.n, ms = t.ms + excluded.ms",
      "(SELECT day, app, ver, ci, aid, COALESCE(cmd, '') AS cmd, pname AS span, parent, dur"
      " FROM dash_new WHERE name = 'span' AND pname IS NOT NULL)" },
};
#define NCOUNTED (sizeof counteds / sizeof counteds[0])

/* "cmd, opt" or "a.cmd = b.cmd AND a.opt = b.opt" */
static int keys_list(tel_buf *b, const counted *c, const char *pre)
{
    int bad = 0;
    for (int i = 0; i < 3 && c->keys[i]; i++)
        bad |= tel__buf_printf(b, "%s%s%s", i ? ", " : "", pre, c->keys[i]);
    return bad;
}

static int keys_match(tel_buf *b, const counted *c, const char *x, const char *y)
{
    int bad = tel__buf_printf(b, "%s.day = %s.day AND %s.app = %s.app AND %s.ver = %s.ver AND"
                             " %s.ci = %s.ci", x, y, x, y, x, y, x, y);
    for (int i = 0; i < 3 && c->keys[i]; i++)
        bad |= tel__buf_printf(b, " AND %s.%s = %s.%s", x, c->keys[i], y, c->keys[i]);
    return bad;
}

static int counted_ddl(tel_buf *b, const counted *c, const char *suffix)
{
    int bad = tel__buf_printf(b, "CREATE TABLE IF NOT EXISTS dash_%s (day INTEGER, app TEXT, ver TEXT,"
                             " ci INTEGER", c->name);
    for (int i = 0; i < 3 && c->keys[i]; i++)
        bad |= tel__buf_printf(b, ", %s TEXT", c->keys[i]);
    bad |= tel__buf_printf(b, ", %s, nk INTEGER, PRIMARY KEY (day, app, ver, ci, ", c->sums) ||
           keys_list(b, c, "") || tel__buf_printf(b, "))%s;\n", suffix);
    bad |= tel__buf_printf(b, "CREATE TABLE IF NOT EXISTS dash_%s_k (day INTEGER, app TEXT, ver TEXT,"
                          " ci INTEGER", c->name);
    for (int i = 0; i < 3 && c->keys[i]; i++)
        bad |= tel__buf_printf(b, ", %s TEXT", c->keys[i]);
    return bad || tel__buf_puts(b, ", aid BIGINT, PRIMARY KEY (day, app, ver, ci, ") ||
           keys_list(b, c, "") || tel__buf_printf(b, ", aid))%s;\n", suffix);
}

/* Folds the chunk into one counted table (see the comment at the top). */
static int counted_fold(tel_buf *b, const counted *c)
{
    int bad = tel__buf_printf(b, "INSERT INTO dash_%s AS t SELECT day, app, ver, ci, ", c->name) ||
              keys_list(b, c, "") || tel__buf_printf(b, ", %s, 0 FROM %s s WHERE true GROUP BY"
                                                    " day, app, ver, ci, ", c->exprs, c->src) ||
              keys_list(b, c, "") || tel__buf_puts(b, " ON CONFLICT (day, app, ver, ci, ") ||
              keys_list(b, c, "") || tel__buf_printf(b, ") DO UPDATE SET %s;\n", c->add);
    bad |= tel__buf_printf(b, "INSERT INTO dash_%s_k SELECT DISTINCT s.day, s.app, s.ver, s.ci, ", c->name) ||
           keys_list(b, c, "s.") || tel__buf_printf(b, ", s.aid FROM %s s WHERE s.aid <> 0 AND NOT EXISTS"
                                                  " (SELECT 1 FROM dash_%s x WHERE ", c->src, c->name) ||
           keys_match(b, c, "x", "s") ||
           tel__buf_printf(b, " AND x.nk >= %d) ON CONFLICT DO NOTHING;\n", DASH_K_MAX);
    char t[40], tk[40];
    snprintf(t, sizeof t, "dash_%s", c->name);
    snprintf(tk, sizeof tk, "dash_%s_k", c->name);
    bad |= tel__buf_printf(b, "UPDATE %s SET nk = (SELECT COUNT(*) FROM %s x WHERE ", t, tk) ||
           keys_match(b, c, "x", t) ||
           tel__buf_printf(b, ") WHERE nk < %d AND day IN (SELECT DISTINCT day FROM dash_new);\n",
                          DASH_K_MAX);
    bad |= tel__buf_printf(b, "DELETE FROM %s WHERE day IN (SELECT DISTINCT day FROM dash_new)"
                          " AND EXISTS (SELECT 1 FROM %s x WHERE ", tk, t) ||
           keys_match(b, c, "x", tk) ||
           tel__buf_printf(b, " AND x.nk >= %d);\n", DASH_K_MAX);
    return bad;
}

/* dash_anon maps an anonymous id to a small number; the engines spell an
 * automatic key differently. */
static const char anon_sqlite[] =
    "CREATE TABLE IF NOT EXISTS dash_anon (aid INTEGER PRIMARY KEY, anon TEXT NOT NULL UNIQUE)";
static const char anon_pg[] =
    "CREATE TABLE IF NOT EXISTS dash_anon (aid BIGSERIAL PRIMARY KEY, anon TEXT NOT NULL UNIQUE)";

static int run(dash_db *db, const char *sql)
{
    return db->exec(db->store, sql, db->err, sizeof db->err);
}

static int first_int(void *ud, int ncols, const char *const *vals)
{
    *(long long *)ud = ncols > 0 && vals[0] ? strtoll(vals[0], NULL, 10) : 0;
    return 0;
}

static int ask_int(dash_db *db, const char *sql, int n, const char *const *p, long long *out)
{
    *out = 0;
    return db->query(db->store, sql, n, p, first_int, out, db->err, sizeof db->err);
}

static int run_step(dash_db *db, tel_buf *b);

/* The rollups' own schema version, kept in dash_state. */
#define DASH_SCHEMA 1

int dash_setup(dash_db *db)
{
    /* Set up already: no DDL at all, so that a report or a restart takes
     * no lock the uploads would wait for (on PostgreSQL even CREATE INDEX
     * IF NOT EXISTS locks the events table). */
    long long have = 0;
    char keep[sizeof db->err];
    memcpy(keep, db->err, sizeof keep);
    if (ask_int(db, "SELECT v FROM dash_state WHERE k = 'schema'", 0, NULL, &have) == 0 &&
        have == DASH_SCHEMA)
        return 0;
    memcpy(db->err, keep, sizeof keep);  /* a missing table is no error here */
    /* One transaction; on PostgreSQL collectors starting together take
     * turns (the lock), so none trips over the other's new tables.  In
     * SQLite a table clustered by its key reads a range of days as one run
     * of pages instead of one lookup per row.  PostgreSQL's events have no
     * order of arrival that commits follow, so chunks there are whole
     * batches, found by batch id (dash_pgb, dash_events_batch). */
    const char *suffix = db->pg ? "" : " WITHOUT ROWID";
    tel_buf b = TEL_BUF_INIT;
    int bad = tel__buf_puts(&b, db->pg ? "BEGIN;\nSELECT pg_advisory_xact_lock(7628652);\n" : "BEGIN;\n") ||
              tel__buf_printf(&b, "%s;\n", db->pg ? anon_pg : anon_sqlite);
    if (db->pg)
        bad |= tel__buf_puts(&b, "CREATE TABLE IF NOT EXISTS dash_pgb (id TEXT PRIMARY KEY,"
                                 " received BIGINT NOT NULL);\n"
                                 "CREATE INDEX IF NOT EXISTS dash_events_batch ON events (batch_id);\n");
    for (size_t i = 0; i < sizeof tables_sql / sizeof tables_sql[0]; i++)
        bad |= tel__buf_printf(&b, "%s%s;\n", tables_sql[i],
                               strncmp(tables_sql[i], "CREATE TABLE", 12) == 0 ? suffix : "");
    for (size_t i = 0; i < NCOUNTED; i++)
        bad |= counted_ddl(&b, &counteds[i], suffix);
    bad |= tel__buf_printf(&b, "INSERT INTO dash_state (k, v) VALUES ('schema', %d) ON CONFLICT (k)"
                           " DO UPDATE SET v = excluded.v;\nCOMMIT;", DASH_SCHEMA);
    int rc = bad ? -1 : run_step(db, &b);
    if (bad)
        snprintf(db->err, sizeof db->err, "out of memory");
    tel__buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------ the chunk */

/*
 * The chunk of new events, with what every rollup needs pulled out of the
 * JSON once.  A value of the wrong JSON type is taken as absent, never as
 * an error: one odd event from another writer must not stop the folding.
 * SQLite and PostgreSQL share `->>`, and differ in how they test a type.
 */
#define CHUNK_COLS \
    "e.ts / 86400000 AS day, e.ts AS ts, e.app AS app, COALESCE(e.app_version, '') AS ver, " \
    "%s AS ci, COALESCE(e.context->>'os', '') AS os, COALESCE(e.context->>'arch', '') AS arch, " \
    "COALESCE(CAST(%s AS TEXT), '') AS cpus, COALESCE(e.context->>'ci_vendor', '') AS civ, " \
    "e.name AS name, COALESCE(a.aid, 0) AS aid, " \
    "CASE WHEN e.anon_id IS NULL THEN e.exec_id END AS noid, " \
    "e.props->>'command' AS cmd, %s AS code, %s AS dur, " \
    "CASE WHEN e.name = 'command.started' THEN " \
    "  COALESCE(e.props->>'options', '') || ',' || COALESCE(e.props->>'env_options', '') END AS opts, " \
    "e.props->>'error_class' AS cls, " \
    "CASE WHEN e.name IN ('metric', 'span') THEN e.props->>'name' END AS pname, " \
    "COALESCE(e.props->>'parent', '') AS parent, %s AS value, " \
    "CASE WHEN e.name = 'metric' THEN %s END AS labels"

#define SQ_NUM(col, key) "CASE WHEN json_type(" col ", '$." key "') IN ('integer', 'real') " \
    "THEN CAST(" col "->>'" key "' AS DOUBLE PRECISION) END"
#define PG_NUM(col, key) "CASE WHEN jsonb_typeof(" col "->'" key "') = 'number' " \
    "THEN CAST(" col "->>'" key "' AS DOUBLE PRECISION) END"

static const char *const chunk_sqlite[6] = {
    "CASE WHEN json_type(e.context, '$.ci') = 'true' THEN 1 ELSE 0 END",
    "CASE WHEN json_type(e.context, '$.cpus') = 'integer' THEN e.context->>'cpus' END",
    "CAST(" SQ_NUM("e.props", "exit_code") " AS BIGINT)",
    "CAST(" SQ_NUM("e.props", "duration_ms") " AS BIGINT)",
    SQ_NUM("e.props", "value"),
    "(SELECT group_concat(substr(j.key, 7) || '=' || j.value, ',') FROM"
    " (SELECT key, value FROM json_each(e.props) WHERE key LIKE 'label.%' ORDER BY key) j)",
};
static const char *const chunk_pg[6] = {
    "CASE WHEN e.context->'ci' = 'true'::jsonb THEN 1 ELSE 0 END",
    "CASE WHEN jsonb_typeof(e.context->'cpus') = 'number' THEN e.context->>'cpus' END",
    "CAST(" PG_NUM("e.props", "exit_code") " AS BIGINT)",
    "CAST(" PG_NUM("e.props", "duration_ms") " AS BIGINT)",
    PG_NUM("e.props", "value"),
    "(SELECT string_agg(substr(j.key, 7) || '=' || j.value, ',' ORDER BY j.key)"
    " FROM jsonb_each_text(e.props) j WHERE j.key LIKE 'label.%')",
};

/*
 * SQLite keeps the events' ids as blobs in event_rows, and its view
 * `events` spells every id of every row as text, which costs more than
 * the rest of the fold; so the SQLite fold reads event_rows and spells
 * only the chunk's distinct anonymous ids, into dash_chunk_anon (blob ->
 * aid), which dash_new joins.  Runs with no lasting id count by their
 * execution id, as a blob: only its distinctness matters.
 */
static int chunk_anon_sqlite(tel_buf *b, const char *which)
{
    static const char distinct[] = "(SELECT DISTINCT e.anon_id FROM event_rows e WHERE %s"
                                    " AND e.anon_id IS NOT NULL) x";
    return tel__buf_puts(b, "INSERT INTO dash_anon (anon) SELECT " STORE_SQLITE_UUID_TEXT("x.anon_id") " FROM ") ||
           tel__buf_printf(b, distinct, which) ||
           tel__buf_puts(b, " WHERE true ON CONFLICT DO NOTHING;\n"
                            "CREATE TEMP TABLE dash_chunk_anon (anon BLOB PRIMARY KEY, aid INTEGER);\n"
                            "INSERT INTO temp.dash_chunk_anon SELECT x.anon_id, a.aid FROM ") ||
           tel__buf_printf(b, distinct, which) ||
           tel__buf_puts(b, " JOIN dash_anon a ON a.anon = " STORE_SQLITE_UUID_TEXT("x.anon_id") ";\n");
}

static int chunk_sql(tel_buf *b, const dash_db *db, const char *which)
{
    const char *const *x = db->pg ? chunk_pg : chunk_sqlite;
    return tel__buf_printf(b, "CREATE TEMP TABLE dash_new %s AS SELECT ", db->pg ? "ON COMMIT DROP" : "") ||
           tel__buf_printf(b, CHUNK_COLS, x[0], x[1], x[2], x[3], x[4], x[5]) ||
           tel__buf_printf(b, db->pg ? " FROM events e LEFT JOIN dash_anon a ON a.anon = e.anon_id WHERE %s;\n"
                                     : " FROM event_rows e LEFT JOIN temp.dash_chunk_anon a ON a.anon = e.anon_id"
                                       " WHERE %s;\n", which);
}

/* The additive rollups, folded from dash_new.  "WHERE true" keeps
 * SQLite's parser from reading ON CONFLICT as a join constraint. */
static const char *const folds[] = {
    "INSERT INTO dash_day SELECT day, app, ver, ci, COUNT(*) FROM dash_new"
    " WHERE true GROUP BY day, app, ver, ci ON CONFLICT (day, app, ver, ci) DO UPDATE SET"
    " events = dash_day.events + excluded.events",
    "INSERT INTO dash_noid SELECT DISTINCT day, app, ver, ci, noid FROM dash_new"
    " WHERE noid IS NOT NULL ON CONFLICT DO NOTHING",
    /* One bit per day in a 32-day block; the sum of distinct powers of
     * two is their OR, which SQLite has no aggregate for. */
    "INSERT INTO dash_inst SELECT day / 32, app, ver, ci, aid, os, arch, cpus, civ,"
    " SUM(DISTINCT CAST(1 AS BIGINT) << CAST(day % 32 AS INTEGER)) FROM dash_new WHERE aid <> 0"
    " GROUP BY day / 32, app, ver, ci, aid, os, arch, cpus, civ"
    " ON CONFLICT (blk, app, ver, ci, aid, os, arch, cpus, civ) DO UPDATE SET"
    " bits = dash_inst.bits | excluded.bits",
    /* Durations go into buckets of the E12 series (10, 12, 15, 18, 22,
     * ... 82, then 100, 120, ...: twelve a decade, about 20% apart), as
     * b = digits * 100 + the bucket's first two digits: close enough for
     * percentiles, additive, and computable with the string functions
     * both engines have. */
    "INSERT INTO dash_dur SELECT day, app, ver, ci, cmd, length(t) * 100 + CASE"
    " WHEN p < 10 THEN p WHEN p < 12 THEN 10 WHEN p < 15 THEN 12 WHEN p < 18 THEN 15"
    " WHEN p < 22 THEN 18 WHEN p < 27 THEN 22 WHEN p < 33 THEN 27 WHEN p < 39 THEN 33"
    " WHEN p < 47 THEN 39 WHEN p < 56 THEN 47 WHEN p < 68 THEN 56 WHEN p < 82 THEN 68"
    " ELSE 82 END AS b, COUNT(*) FROM"
    " (SELECT day, app, ver, ci, cmd, t, CAST(substr(t, 1, 2) AS INTEGER) AS p FROM"
    "  (SELECT day, app, ver, ci, cmd, CAST(CASE WHEN dur < 0 THEN 0 ELSE dur END AS TEXT) AS t"
    "   FROM dash_new WHERE name = 'command.exited' AND cmd IS NOT NULL AND dur IS NOT NULL) x) y"
    " WHERE true GROUP BY 1, 2, 3, 4, 5, 6 ON CONFLICT (day, app, ver, ci, cmd, b) DO UPDATE SET"
    " n = dash_dur.n + excluded.n",
};

/* Option names are joined with commas in one property; each engine
 * splits them its own way, into dash_opts. */
static const char opt_sqlite[] =
    "CREATE TEMP TABLE dash_opts AS WITH RECURSIVE s(day, app, ver, ci, cmd, aid, rest, opt) AS ("
    " SELECT day, app, ver, ci, cmd, aid, opts || ',', NULL FROM dash_new"
    "  WHERE opts IS NOT NULL AND cmd IS NOT NULL"
    " UNION ALL SELECT day, app, ver, ci, cmd, aid, substr(rest, instr(rest, ',') + 1),"
    "  substr(rest, 1, instr(rest, ',') - 1) FROM s WHERE rest <> '')"
    " SELECT day, app, ver, ci, cmd, aid, opt FROM s WHERE opt IS NOT NULL AND opt <> ''";
static const char opt_pg[] =
    "CREATE TEMP TABLE dash_opts ON COMMIT DROP AS SELECT * FROM"
    " (SELECT day, app, ver, ci, cmd, aid, unnest(string_to_array(opts, ',')) AS opt"
    "  FROM dash_new WHERE opts IS NOT NULL AND cmd IS NOT NULL) x WHERE opt <> ''";

/* The latest sample of each series per install. */
static const char metric_sqlite[] =
    "INSERT INTO dash_metric SELECT app, pname, COALESCE(labels, ''), aid, MAX(ts), day, ver, ci,"
    " value FROM dash_new WHERE name = 'metric' AND pname IS NOT NULL AND value IS NOT NULL"
    " AND aid <> 0 GROUP BY app, pname, COALESCE(labels, ''), aid"
    " ON CONFLICT (app, name, labels, aid) DO UPDATE SET ts = excluded.ts, day = excluded.day,"
    " ver = excluded.ver, ci = excluded.ci, value = excluded.value WHERE excluded.ts >= dash_metric.ts";
static const char metric_pg[] =
    "INSERT INTO dash_metric SELECT DISTINCT ON (app, pname, COALESCE(labels, ''), aid)"
    " app, pname, COALESCE(labels, ''), aid, ts, day, ver, ci, value FROM dash_new"
    " WHERE name = 'metric' AND pname IS NOT NULL AND value IS NOT NULL AND aid <> 0"
    " ORDER BY app, pname, COALESCE(labels, ''), aid, ts DESC"
    " ON CONFLICT (app, name, labels, aid) DO UPDATE SET ts = excluded.ts, day = excluded.day,"
    " ver = excluded.ver, ci = excluded.ci, value = excluded.value WHERE excluded.ts >= dash_metric.ts";

/*
 * An erased id leaves no row that names it: its aid goes from every table
 * that holds one, then from dash_anon.  nk of the days it was listed in
 * is counted again (a saturated day keeps its nk: DASH_K_MAX leaves room
 * above any k in use).  Erasures are few, and the statements find nothing
 * to do once applied, so they run with every step.
 */
static int erasures_sql(tel_buf *b, long long count)
{
    static const char gone[] = "(SELECT a.aid FROM dash_anon a JOIN erasures r ON r.anon_id = a.anon)";
    int bad = tel__buf_printf(b, "DELETE FROM dash_inst WHERE aid IN %s;\n"
                             "DELETE FROM dash_metric WHERE aid IN %s;\n", gone, gone);
    for (size_t i = 0; i < NCOUNTED; i++) {
        const counted *c = &counteds[i];
        char t[40], tk[40];
        snprintf(t, sizeof t, "dash_%s", c->name);
        snprintf(tk, sizeof tk, "dash_%s_k", c->name);
        bad |= tel__buf_printf(b, "UPDATE %s SET nk = nk - (SELECT COUNT(*) FROM %s x WHERE ", t, tk) ||
               keys_match(b, c, "x", t) ||
               tel__buf_printf(b, " AND x.aid IN %s) WHERE nk < %d;\n", gone, DASH_K_MAX) ||
               tel__buf_printf(b, "DELETE FROM %s WHERE aid IN %s;\n", tk, gone);
    }
    return bad || tel__buf_puts(b, "DELETE FROM dash_anon WHERE anon IN (SELECT anon_id FROM erasures);\n") ||
           tel__buf_printf(b, "INSERT INTO dash_state (k, v) VALUES ('erasures', %lld) ON CONFLICT (k)"
                          " DO UPDATE SET v = excluded.v;\n", count);
}

/* The statements that fold the events matching `which` (a condition on
 * events e) into every rollup. */
static int fold_sql(tel_buf *b, const dash_db *db, const char *which)
{
    int bad = (db->pg ? tel__buf_printf(b, "INSERT INTO dash_anon (anon) SELECT DISTINCT e.anon_id FROM events e"
                                        " WHERE %s AND e.anon_id IS NOT NULL ON CONFLICT DO NOTHING;\n", which)
                      : chunk_anon_sqlite(b, which)) ||
              chunk_sql(b, db, which);
    for (size_t i = 0; i < sizeof folds / sizeof folds[0]; i++)
        bad |= tel__buf_puts(b, folds[i]) || tel__buf_puts(b, ";\n");
    bad |= tel__buf_puts(b, db->pg ? opt_pg : opt_sqlite) || tel__buf_puts(b, ";\n") ||
           tel__buf_puts(b, db->pg ? metric_pg : metric_sqlite) || tel__buf_puts(b, ";\n");
    for (size_t i = 0; i < NCOUNTED; i++)
        bad |= counted_fold(b, &counteds[i]);
    if (!db->pg)
        bad |= tel__buf_puts(b, "DROP TABLE temp.dash_new;\nDROP TABLE temp.dash_opts;\n"
                                "DROP TABLE temp.dash_chunk_anon;\n");
    return bad;
}

/* Every step that changes the rollups counts itself, in its own
 * transaction: an answer computed at one count holds until the next. */
#define GENERATION_BUMP \
    "INSERT INTO dash_state (k, v) VALUES ('folds', 1) ON CONFLICT (k) DO UPDATE SET v = dash_state.v + 1;\n"

int dash_generation(dash_db *db, long long *gen)
{
    return ask_int(db, "SELECT v FROM dash_state WHERE k = 'folds'", 0, NULL, gen);
}

/* Runs a step's statements in one transaction; on failure rolls back and
 * keeps the first reason. */
static int run_step(dash_db *db, tel_buf *b)
{
    if (tel__buf_append(b, "", 1) != 0) {
        snprintf(db->err, sizeof db->err, "out of memory");
        return -1;
    }
    if (run(db, (const char *)b->p) == 0)
        return 0;
    char keep[sizeof db->err];
    memcpy(keep, db->err, sizeof keep);
    run(db, "ROLLBACK");
    if (!db->pg)
        run(db, "DROP TABLE IF EXISTS temp.dash_new; DROP TABLE IF EXISTS temp.dash_opts;"
                " DROP TABLE IF EXISTS temp.dash_chunk_anon");
    memcpy(db->err, keep, sizeof keep);
    return -1;
}

/* SQLite: rowids grow with every insert and there is one writer, so the
 * watermark is the last rowid counted. */
/* The erasures not applied yet: 1 when there are some (their count is
 * then in *now), 0 when none, -1 on failure.  Erasure rows are only ever
 * added, so a count says whether there are new ones. */
static int new_erasures(dash_db *db, long long *now)
{
    long long done;
    if (ask_int(db, "SELECT v FROM dash_state WHERE k = 'erasures'", 0, NULL, &done) != 0 ||
        ask_int(db, "SELECT COUNT(*) FROM erasures", 0, NULL, now) != 0)
        return -1;
    return *now != done;
}

/* The drops clients reported, per day and app, from the batches matching
 * `which` (a condition on batches b). */
static int batches_sql(tel_buf *b, const char *which)
{
    return tel__buf_printf(b, "INSERT INTO dash_batch SELECT b.received / 86400000, b.app, SUM(b.dropped),"
                          " SUM(CASE WHEN b.dropped > 0 THEN 1 ELSE 0 END) FROM batches b WHERE %s"
                          " GROUP BY 1, 2 ON CONFLICT (day, app) DO UPDATE SET"
                          " dropped = dash_batch.dropped + excluded.dropped,"
                          " dropping = dash_batch.dropping + excluded.dropping;\n", which);
}

static int step_sqlite(dash_db *db, long max_events, int *more)
{
    long long wm, top, bwm, btop, erased;
    int fresh = new_erasures(db, &erased);
    if (fresh < 0 || ask_int(db, "SELECT v FROM dash_state WHERE k = 'events'", 0, NULL, &wm) != 0 ||
        ask_int(db, "SELECT MAX(rowid) FROM event_rows", 0, NULL, &top) != 0 ||
        ask_int(db, "SELECT v FROM dash_state WHERE k = 'batches'", 0, NULL, &bwm) != 0 ||
        ask_int(db, "SELECT MAX(rowid) FROM batches", 0, NULL, &btop) != 0)
        return -1;
    /* Rows above the watermark that are gone (an erasure took the newest
     * events) free their rowids for the next inserts: count from what is
     * left, or those would be skipped. */
    int lowered = top < wm || btop < bwm;
    if (top < wm)
        wm = top;
    if (btop < bwm)
        bwm = btop;
    long long hi = top - wm > max_events ? wm + max_events : top;
    if (hi <= wm && btop <= bwm && !fresh && !lowered)
        return 0;  /* nothing to do, and no transaction for it */
    /* The watermark is read again under the write lock, so that two
     * processes folding at once (a collector and a report) never count
     * the same events twice: the second finds its range empty. */
    tel_buf b = TEL_BUF_INIT;
    char which[192];
    if (lowered)
        snprintf(which, sizeof which, "e.rowid > %lld AND e.rowid <= %lld", wm, hi);
    else
        snprintf(which, sizeof which, "e.rowid > (SELECT COALESCE(MAX(v), 0) FROM dash_state"
                 " WHERE k = 'events') AND e.rowid <= %lld", hi);
    int bad = tel__buf_puts(&b, "BEGIN IMMEDIATE;\n");
    if (hi > wm)
        bad |= fold_sql(&b, db, which);
    bad |= tel__buf_printf(&b, "INSERT INTO dash_state (k, v) VALUES ('events', %lld)"
                          " ON CONFLICT (k) DO UPDATE SET v = %s;\n", hi,
                          lowered ? "excluded.v" : "MAX(dash_state.v, excluded.v)");
    if (btop > bwm) {
        char bw[192];
        snprintf(bw, sizeof bw, "b.rowid > (SELECT COALESCE(MAX(v), %lld) FROM dash_state"
                 " WHERE k = 'batches') AND b.rowid <= %lld", bwm, btop);
        bad |= batches_sql(&b, bw);
    }
    bad |= tel__buf_printf(&b, "INSERT INTO dash_state (k, v) VALUES ('batches', %lld)"
                          " ON CONFLICT (k) DO UPDATE SET v = %s;\n", btop,
                          lowered ? "excluded.v" : "MAX(dash_state.v, excluded.v)");
    if (fresh)
        bad |= erasures_sql(&b, erased);
    bad |= tel__buf_puts(&b, GENERATION_BUMP "COMMIT;");
    int rc = bad ? -1 : run_step(db, &b);
    if (bad)
        snprintf(db->err, sizeof db->err, "out of memory");
    tel__buf_free(&b);
    *more = rc == 0 && hi < top;
    return rc;
}

/* Batch ids are UUID text; anything else is never pasted into SQL. */
static int uuid_text(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') || s[n] == '-'))
            return 0;
    return n == 36;
}

typedef struct idlist {
    tel_buf sql;
    long long max_received, total;
    int n, bad;
} idlist;

static int add_batch(void *ud, int ncols, const char *const *vals)
{
    idlist *l = ud;
    if (ncols < 3 || !vals[0] || !vals[1] || !vals[2] || !uuid_text(vals[0]))
        return 0;
    l->total = strtoll(vals[2], NULL, 10);
    l->bad |= tel__buf_printf(&l->sql, "%s'%s'", l->n ? "," : "", vals[0]);
    long long r = strtoll(vals[1], NULL, 10);
    if (r > l->max_received)
        l->max_received = r;
    l->n++;
    return 0;
}

/* How long after its received time a batch may still commit (a slow
 * transaction of another collector); batches are looked for that far
 * behind the watermark, and remembered until twice that. */
#define PG_LATE_MS 600000LL

/* PostgreSQL: several collectors commit in any order, so the chunk is a
 * set of whole batches not yet folded (dash_pgb remembers them). */
static int step_pg(dash_db *db, long max_events, int *more)
{
    long long wm, erased;
    int fresh = new_erasures(db, &erased);
    if (fresh < 0 || ask_int(db, "SELECT v FROM dash_state WHERE k = 'received'", 0, NULL, &wm) != 0)
        return -1;
    char since[24], limit[24];
    snprintf(since, sizeof since, "%lld", wm - PG_LATE_MS);
    snprintf(limit, sizeof limit, "%ld", max_events);
    idlist l = { TEL_BUF_INIT, wm, 0, 0, 0 };
    const char *p[2] = { since, limit };
    l.bad |= tel__buf_puts(&l.sql, "(");
    /* Whole batches, oldest first, until they hold max_events (at least
     * one batch); `left` says whether others wait. */
    if (db->query(db->store, "SELECT id, received, total FROM (SELECT b.id, b.received, b.events,"
                  " SUM(b.events) OVER (ORDER BY b.received, b.id ROWS UNBOUNDED PRECEDING) AS upto,"
                  " COUNT(*) OVER () AS total FROM batches b WHERE b.received >= $1"
                  " AND NOT EXISTS (SELECT 1 FROM dash_pgb d WHERE d.id = b.id)) x"
                  " WHERE upto - events < CAST($2 AS BIGINT) ORDER BY received, id", 2, p, add_batch, &l,
                  db->err, sizeof db->err) != 0) {
        tel__buf_free(&l.sql);
        return -1;
    }
    l.bad |= tel__buf_append(&l.sql, ")", 2);
    if (l.n == 0 && !fresh && !l.bad) {
        tel__buf_free(&l.sql);
        return 0;
    }
    tel_buf b = TEL_BUF_INIT;
    char which[128];
    /* Collectors sharing the database fold one at a time (the lock), and
     * a batch another one folded meanwhile is left out (NOT IN dash_pgb,
     * read after the lock is taken). */
    int bad = l.bad || tel__buf_puts(&b, "BEGIN;\nSELECT pg_advisory_xact_lock(7628652);\n");
    if (l.n) {
        const char *ids = (const char *)l.sql.p;
        snprintf(which, sizeof which, "e.batch_id NOT IN (SELECT id FROM dash_pgb) AND e.batch_id IN ");
        tel_buf w = TEL_BUF_INIT;
        tel_buf bw = TEL_BUF_INIT;
        bad |= tel__buf_puts(&w, which) || tel__buf_append(&w, ids, strlen(ids) + 1) ||
               tel__buf_puts(&bw, "b.id NOT IN (SELECT id FROM dash_pgb) AND b.id IN ") || tel__buf_append(&bw, ids, strlen(ids) + 1) ||
               fold_sql(&b, db, (const char *)w.p) || batches_sql(&b, (const char *)bw.p) ||
               tel__buf_printf(&b, "INSERT INTO dash_pgb SELECT id, received FROM batches WHERE id IN %s"
                              " ON CONFLICT DO NOTHING;\n", ids) ||
               tel__buf_printf(&b, "INSERT INTO dash_state (k, v) VALUES ('received', %lld)"
                              " ON CONFLICT (k) DO UPDATE SET v = GREATEST(dash_state.v, excluded.v);\n"
                              "DELETE FROM dash_pgb WHERE received < %lld;\n",
                              l.max_received, l.max_received - 2 * PG_LATE_MS);
        tel__buf_free(&w);
        tel__buf_free(&bw);
    }
    if (fresh)
        bad |= erasures_sql(&b, erased);
    bad |= tel__buf_puts(&b, GENERATION_BUMP "COMMIT;");
    int rc = bad ? -1 : run_step(db, &b);
    if (bad)
        snprintf(db->err, sizeof db->err, "out of memory");
    *more = rc == 0 && l.total > l.n;
    tel__buf_free(&b);
    tel__buf_free(&l.sql);
    return rc;
}

int dash_refresh_step(dash_db *db, long max_events, int *more)
{
    *more = 0;
    return db->pg ? step_pg(db, max_events, more) : step_sqlite(db, max_events, more);
}

int dash_refresh(dash_db *db)
{
    int more = 1;
    while (more)
        if (dash_refresh_step(db, 20000, &more) != 0)
            return -1;
    return 0;
}
