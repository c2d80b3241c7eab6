/* SPDX-License-Identifier: MIT */
/*
 * collector/dash.h - the usage dashboard and reports: rollups kept beside
 * the events, the answers computed from them, and their renderings (HTML
 * with inline SVG, text tables, one JSON document).
 *
 * Privacy contract: nothing here ever reads an id out of the store into an
 * answer.  Every number an answer holds is an aggregate, and a cell backed
 * by fewer than `k` distinct installs is replaced by DASH_HIDDEN before
 * any renderer sees it.
 */
#ifndef TEL_COLLECTOR_DASH_H
#define TEL_COLLECTOR_DASH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* ------------------------------------------------------------ the store */

/* Called once per result row: vals[i] is the text of column i, or NULL
 * for SQL NULL; valid only during the call.  Returns 0 to go on, non-zero
 * to stop (the query then returns -1). */
typedef int (*dash_row_fn)(void *ud, int ncols, const char *const *vals);

/* The store as the dashboard sees it.  query runs one read-only
 * statement with $1..$N text parameters (the same on both engines) and
 * hands each row to row; exec runs one or more statements without
 * parameters or rows.  Both return 0, or -1 with a one-line reason in
 * err (at most errsize bytes, NUL-terminated). */
typedef int (*dash_query_fn)(void *store, const char *sql, int nparams,
                             const char *const *params, dash_row_fn row, void *ud,
                             char *err, size_t errsize);
typedef int (*dash_exec_fn)(void *store, const char *sql, char *err, size_t errsize);

typedef struct dash_db {
    void *store;
    dash_query_fn query;
    dash_exec_fn exec;
    int pg;                  /* 1: PostgreSQL's dialect; 0: SQLite's */
    char err[256];           /* the last failure, one line */
} dash_db;

/* The largest privacy threshold the rollups can answer for: they count
 * each day's distinct installs of a cell up to this many.  Leaves room
 * above the usual k for the installs an erasure takes away. */
#define DASH_K_MAX 20

/* Creates the rollup tables and indexes if missing.  Returns 0 or -1. */
int dash_setup(dash_db *db);

/*
 * Folds up to `max_events` events not yet counted into the rollups, in one
 * transaction, and applies erasures (rollup rows of an erased id go).
 * *more is set to 1 when events are left.  Returns 0 or -1 (the rollups
 * are then as before the call).
 */
int dash_refresh_step(dash_db *db, long max_events, int *more);

/* Steps until everything stored is counted.  Returns 0 or -1. */
int dash_refresh(dash_db *db);

/* The rollups' generation: a number that grows with every step that
 * changed them (in any process sharing the store), 0 before the first.
 * Answers computed at one generation stay true until it changes, for the
 * same filter and the same day.  Returns 0 or -1. */
int dash_generation(dash_db *db, long long *gen);

/* ------------------------------------------------------------- filters */

#define DASH_TEXT_MAX 65

typedef struct dash_filter {
    char app[DASH_TEXT_MAX];       /* "" = every app */
    char version[DASH_TEXT_MAX];   /* "" = every version */
    int ci;                        /* -1 both, 0 not in CI, 1 in CI */
    int64_t from_day, to_day;      /* days since the epoch, inclusive, UTC */
    unsigned k;                    /* smallest number of installs shown */
} dash_filter;

/* Fills the defaults: every app, version and CI state, the 30 days ending
 * with the day of `now_ms`, and k = 5. */
void dash_filter_default(dash_filter *f, int64_t now_ms);

/* Sets one filter from a query-string key (app, version, ci, from, to;
 * dates as YYYY-MM-DD, ci as yes|no|"").  Unknown keys are ignored.
 * Returns 0, or -1 with a one-line reason in err for a bad value. */
int dash_filter_set(dash_filter *f, const char *key, const char *value,
                    char *err, size_t errsize);

/* Parses "30d" or "2w" (days, weeks) into days.  Returns 0 or -1. */
int dash_parse_since(const char *s, int64_t *days);

/* ------------------------------------------------------------- answers */

enum dash_kind { DASH_EMPTY, DASH_TEXT, DASH_INT, DASH_REAL, DASH_PCT, DASH_DELTA, DASH_MS, DASH_HIDDEN };
enum dash_chart { DASH_CHART_NONE, DASH_CHART_COLUMNS, DASH_CHART_BARS, DASH_CHART_LINES };

typedef struct dash_cell {
    int kind;                /* enum dash_kind */
    double v;                /* INT, REAL, PCT (0-1), DELTA (a change, -0.1 = -10%), MS */
    char *s;                 /* DASH_TEXT; owned by the table */
} dash_cell;

#define DASH_MAX_COLS 12

typedef struct dash_table {
    char id[64];             /* [a-z0-9-]: the HTML anchor, the JSON key */
    char title[128];
    const char *section;     /* the section's id: events, installs, commands, ... */
    const char *note;        /* static text under the title, or NULL */
    const char *empty;       /* what to say when there are no rows */
    int chart;               /* enum dash_chart */
    int label_cols;          /* BARS: label = columns 0..label_cols-1 */
    int value_col;           /* BARS and COLUMNS: the column drawn */
    int ncols;
    char *cols[DASH_MAX_COLS];
    size_t nrows, cap;
    dash_cell *cells;        /* nrows * ncols, row-major */
} dash_table;

typedef struct dash_answers {
    dash_filter filter;
    size_t ntables;
    dash_table *tables;
    size_t napps, nversions;
    char **apps, **versions; /* for the filter form */
} dash_answers;

/* Runs every query of the dashboard on the rollups (dash_refresh first
 * for a current answer).  Returns the answers (free with dash_answers_free)
 * or NULL with db->err set. */
dash_answers *dash_answer(dash_db *db, const dash_filter *f);
void dash_answers_free(dash_answers *a);

/* ----------------------------------------------------------- renderings */

/* Each appends to `out` and returns 0, or -1 when memory ran out. */
int dash_render_html(tel_buf *out, const dash_answers *a);
int dash_render_text(tel_buf *out, const dash_answers *a);
int dash_render_json(tel_buf *out, const dash_answers *a);

/* "2026-11-30" for a day since the epoch; out has room for 11 bytes. */
void dash_day_text(int64_t day, char out[16]);

#endif
