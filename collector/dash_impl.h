/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_impl.h - what the dashboard's answer files share: query
 * rows kept as text, the filter as SQL, and table building.  Internal to
 * collector/dash_*.c.
 */
#ifndef TEL_COLLECTOR_DASH_IMPL_H
#define TEL_COLLECTOR_DASH_IMPL_H

#include "dash.h"

/* The filter as a condition: "<day> >= $1 AND <day> <= $2" and the active
 * filters, with their parameters (the strings live in the struct or in
 * the filter it was made from). */
typedef struct tel__dash_where {
    char sql[256];
    const char *p[5];
    char from[24], to[24], ci[12];
    int n;
} tel__dash_where;

/* `col` is the day column ("day", or "blk" with from/to already divided). */
void tel__dash_where_make(tel__dash_where *w, const dash_filter *f, const char *col,
                          int64_t from, int64_t to);

/* The rows of a query, as text (NULL for SQL NULL). */
typedef struct tel__dash_rows {
    size_t n, cap;
    int ncols;
    char **v;
} tel__dash_rows;

/* Runs fmt, with every "%1$s" standing for the WHERE condition, and keeps
 * the rows in *out (freed with tel__dash_rows_free, also on failure).
 * Returns 0, or -1 with db->err set. */
int tel__dash_ask(dash_db *db, const tel__dash_where *w, tel__dash_rows *out, const char *fmt);
void tel__dash_rows_free(tel__dash_rows *r);
/* Column col of row `row`: "" for NULL; as a number: 0 for NULL. */
const char *tel__dash_rv(const tel__dash_rows *r, size_t row, int col);
long long tel__dash_ri(const tel__dash_rows *r, size_t row, int col);
double tel__dash_rd(const tel__dash_rows *r, size_t row, int col);

/* Appends a table to a->tables (which may move: earlier table pointers
 * are then stale) with the NULL-terminated column names.  Returns it, or
 * NULL when memory ran out. */
dash_table *tel__dash_table_new(dash_answers *a, const char *section, const char *id,
                                const char *title, int chart, const char *const *cols);
/* Appends a row of empty cells; returns its first cell or NULL. */
dash_cell *tel__dash_row_new(dash_table *t);
/* Copies s into a text cell; returns 0 or -1. */
int tel__dash_cell_text(dash_cell *c, const char *s);
/* A number, or DASH_HIDDEN when `visible` is 0. */
void tel__dash_cell_num(dash_cell *c, int kind, double v, int visible);
/* Appends the row standing for the `left_out` rows a table does not show
 * because their label (a command, an option, an OS, a metric's labels:
 * anything an install may send) came from fewer than k installs.  Its
 * first cell reads "other (fewer than K installs each)", the rest of the
 * first label_cols are empty, every number is hidden.  Appends nothing
 * when left_out is 0.  Returns 0 or -1 (no memory). */
int tel__dash_other_row(dash_table *t, int label_cols, size_t left_out, unsigned k);

/* Monday of a week number ((day + 3) / 7); out holds 11 bytes. */
void tel__dash_week_text(long long week, char out[16]);

/* The sections answered from dash_inst: events and installs per day,
 * installs per week and month, versions by week, platforms and CI.
 * Returns 0 or -1. */
int tel__dash_ask_installs(dash_db *db, dash_answers *a);

#endif
