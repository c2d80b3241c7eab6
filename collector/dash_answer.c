/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_answer.c - the dashboard's questions, asked of the
 * rollups (dash_rollup.c), answered as tables of aggregates: filters,
 * commands, options, errors, spans, metrics and what is missing (the
 * answers that count installs exactly are in dash_installs.c).
 *
 * Every cell that counts or measures something is checked against the
 * installs behind it; cells under the filter's k become DASH_HIDDEN here,
 * so no renderer can show them by mistake.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash_impl.h"

#define DAY_MS 86400000LL

/* ------------------------------------------------------------- filters */

void dash_filter_default(dash_filter *f, int64_t now_ms)
{
    memset(f, 0, sizeof *f);
    f->ci = -1;
    f->to_day = now_ms / DAY_MS;
    f->from_day = f->to_day - 29;
    f->k = 5;
}

void dash_day_text(int64_t day, char out[16])
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, 16, "%Y-%m-%d", &tm) == 0)
        out[0] = '\0';
}

static int parse_day(const char *s, int64_t *day)
{
    int y, m, d, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] || m < 1 || m > 12 || d < 1 ||
        d > 31 || y < 1970 || y > 9999)
        return -1;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
    time_t t = timegm(&tm);
    char back[16];
    *day = (int64_t)t / 86400;
    dash_day_text(*day, back);
    return strcmp(back, s) == 0 ? 0 : -1;  /* refuses 2026-02-31 */
}

/* App names and versions as sent: printable, no quotes to worry about in
 * HTML since everything is escaped, but bounded. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n >= DASH_TEXT_MAX)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

int dash_filter_set(dash_filter *f, const char *key, const char *value,
                    char *err, size_t errsize)
{
    if (!value)
        value = "";
    if (strcmp(key, "app") == 0 || strcmp(key, "version") == 0) {
        if (!name_ok(value)) {
            snprintf(err, errsize, "%s must be 0-%d printable characters without spaces",
                     key, DASH_TEXT_MAX - 1);
            return -1;
        }
        strcpy(strcmp(key, "app") == 0 ? f->app : f->version, value);
    } else if (strcmp(key, "ci") == 0) {
        if (!*value || strcmp(value, "any") == 0)
            f->ci = -1;
        else if (strcmp(value, "yes") == 0)
            f->ci = 1;
        else if (strcmp(value, "no") == 0)
            f->ci = 0;
        else {
            snprintf(err, errsize, "ci must be yes, no or empty");
            return -1;
        }
    } else if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
        int64_t day;
        if (!*value)
            return 0;
        if (parse_day(value, &day) != 0) {
            snprintf(err, errsize, "%s must be a date as YYYY-MM-DD", key);
            return -1;
        }
        *(strcmp(key, "from") == 0 ? &f->from_day : &f->to_day) = day;
    }
    return 0;
}

int dash_parse_since(const char *s, int64_t *days)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n < 1 || n > 36500 || !isdigit((unsigned char)s[0]))
        return -1;
    if (strcmp(end, "d") == 0)
        *days = n;
    else if (strcmp(end, "w") == 0)
        *days = n * 7;
    else
        return -1;
    return 0;
}
/* --------------------------------------------------------------- tables */

dash_table *tel__dash_table_new(dash_answers *a, const char *section, const char *id,
                                const char *title, int chart, const char *const *cols)
{
    dash_table *t = realloc(a->tables, (a->ntables + 1) * sizeof *t);
    if (!t)
        return NULL;
    a->tables = t;
    t = &a->tables[a->ntables++];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->title, sizeof t->title, "%s", title);
    t->section = section;
    t->chart = chart;
    t->label_cols = 1;
    t->value_col = 1;
    for (; cols[t->ncols] && t->ncols < DASH_MAX_COLS; t->ncols++)
        if (!(t->cols[t->ncols] = strdup(cols[t->ncols])))
            return NULL;
    return t;
}

dash_cell *tel__dash_row_new(dash_table *t)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        dash_cell *c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return NULL;
        t->cells = c;
        t->cap = cap;
    }
    dash_cell *r = &t->cells[t->nrows++ * t->ncols];
    memset(r, 0, t->ncols * sizeof *r);
    return r;
}

int tel__dash_cell_text(dash_cell *c, const char *s)
{
    c->kind = DASH_TEXT;
    c->s = strdup(s ? s : "");
    return c->s ? 0 : -1;
}

void tel__dash_cell_num(dash_cell *c, int kind, double v, int visible)
{
    c->kind = visible ? kind : DASH_HIDDEN;
    c->v = visible ? v : 0;
}

int tel__dash_other_row(dash_table *t, int label_cols, size_t left_out, unsigned k)
{
    if (left_out == 0)
        return 0;
    char label[64];
    snprintf(label, sizeof label, "other (fewer than %u installs each)", k);
    dash_cell *c = tel__dash_row_new(t);
    if (!c)
        return -1;
    for (int j = 0; j < t->ncols; j++) {
        if (j >= label_cols)
            tel__dash_cell_num(&c[j], DASH_INT, 0, 0);
        else if (tel__dash_cell_text(&c[j], j == 0 ? label : ""))
            return -1;
    }
    return 0;
}

static void table_free(dash_table *t)
{
    for (int i = 0; i < t->ncols; i++)
        free(t->cols[i]);
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i].s);
    free(t->cells);
}

void dash_answers_free(dash_answers *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->ntables; i++)
        table_free(&a->tables[i]);
    free(a->tables);
    for (size_t i = 0; i < a->napps; i++)
        free(a->apps[i]);
    for (size_t i = 0; i < a->nversions; i++)
        free(a->versions[i]);
    free(a->apps);
    free(a->versions);
    free(a);
}

/* -------------------------------------------------------------- queries */

void tel__dash_where_make(tel__dash_where *w, const dash_filter *f, const char *col,
                          int64_t from, int64_t to)
{
    snprintf(w->from, sizeof w->from, "%lld", (long long)from);
    snprintf(w->to, sizeof w->to, "%lld", (long long)to);
    w->p[0] = w->from;
    w->p[1] = w->to;
    w->n = 2;
    int len = snprintf(w->sql, sizeof w->sql, "%s >= $1 AND %s <= $2", col, col);
    if (f->app[0]) {
        w->p[w->n++] = f->app;
        len += snprintf(w->sql + len, sizeof w->sql - len, " AND app = $%d", w->n);
    }
    if (f->version[0]) {
        w->p[w->n++] = f->version;
        len += snprintf(w->sql + len, sizeof w->sql - len, " AND ver = $%d", w->n);
    }
    if (f->ci >= 0) {
        snprintf(w->ci, sizeof w->ci, "%d", f->ci);
        w->p[w->n++] = w->ci;
        snprintf(w->sql + len, sizeof w->sql - len, " AND ci = $%d", w->n);
    }
}

static int collect_row(void *ud, int ncols, const char *const *vals)
{
    tel__dash_rows *r = ud;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **v = realloc(r->v, cap * ncols * sizeof *v);
        if (!v)
            return 1;
        r->v = v;
        r->cap = cap;
    }
    r->ncols = ncols;
    for (int i = 0; i < ncols; i++) {
        r->v[r->n * ncols + i] = vals[i] ? strdup(vals[i]) : NULL;
        if (vals[i] && !r->v[r->n * ncols + i]) {
            for (int j = 0; j < i; j++)
                free(r->v[r->n * ncols + j]);
            return 1;
        }
    }
    r->n++;
    return 0;
}

void tel__dash_rows_free(tel__dash_rows *r)
{
    for (size_t i = 0; i < r->n * (size_t)r->ncols; i++)
        free(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}

const char *tel__dash_rv(const tel__dash_rows *r, size_t row, int col)
{
    const char *s = r->v[row * r->ncols + col];
    return s ? s : "";
}

long long tel__dash_ri(const tel__dash_rows *r, size_t row, int col)
{
    return strtoll(tel__dash_rv(r, row, col), NULL, 10);
}

double tel__dash_rd(const tel__dash_rows *r, size_t row, int col)
{
    return strtod(tel__dash_rv(r, row, col), NULL);
}

int tel__dash_ask(dash_db *db, const tel__dash_where *w, tel__dash_rows *out, const char *fmt)
{
    char sql[2048];
    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, fmt, w->sql);
    int rc = db->query(db->store, sql, w->n, w->p, collect_row, out, db->err, sizeof db->err);
    if (rc != 0) {
        if (rc > 0)
            snprintf(db->err, sizeof db->err, "out of memory");
        tel__dash_rows_free(out);
        return -1;
    }
    return 0;
}

void tel__dash_week_text(long long week, char out[16]) { dash_day_text(week * 7 - 3, out); }

#define rv tel__dash_rv
#define ri tel__dash_ri
#define rd tel__dash_rd
typedef tel__dash_rows rows;
typedef tel__dash_where where;

/* Weeks start on Monday; day 0 (1970-01-01) was a Thursday. */
#define WEEK "((day + 3) / 7)"

/*
 * A counted table's cells (see dash_rollup.c): `sums` holds rows (keys...,
 * values..., MAX(nk)) and `listed` rows (keys..., distinct listed
 * installs), both over the same range and keys.  A cell is shown when a
 * day of it reached k installs, or its listed installs number k or more.
 */
static int visible(const rows *sums, size_t i, int nkeys, const rows *listed, unsigned k)
{
    if (ri(sums, i, sums->ncols - 1) >= (long long)k)
        return 1;
    for (size_t j = 0; j < listed->n; j++) {
        int same = 1;
        for (int c = 0; c < nkeys && same; c++)
            same = strcmp(rv(sums, i, c), rv(listed, j, c)) == 0;
        if (same)
            return ri(listed, j, nkeys) >= (long long)k;
    }
    return 0;
}

/* Both queries of a counted table: keys is "cmd" or "cmd, opt" (columns
 * or expressions with an alias), groups the same without the aliases,
 * sums the value expressions. */
static int ask_counted(dash_db *db, const where *w, unsigned k, const char *table, const char *keys,
                       const char *groups, const char *sums, const char *order, rows *s, rows *l)
{
    char fmt[1536];
    snprintf(fmt, sizeof fmt, "SELECT %s, %s, MAX(nk) FROM %s WHERE %%1$s GROUP BY %s ORDER BY %s",
             keys, sums, table, groups, order);
    if (tel__dash_ask(db, w, s, fmt))
        return -1;
    /* Only cells with no day at k installs need their listed installs. */
    snprintf(fmt, sizeof fmt, "SELECT %s, COUNT(DISTINCT aid) FROM %s_k WHERE %%1$s AND (%s) IN"
             " (SELECT %s FROM %s WHERE %%1$s GROUP BY %s HAVING MAX(nk) < %u) GROUP BY %s",
             keys, table, groups, groups, table, groups, k, groups);
    if (tel__dash_ask(db, w, l, fmt)) {
        tel__dash_rows_free(s);
        return -1;
    }
    return 0;
}

/* A duration bucket (dash_rollup.c): b = digits * 100 + its first two
 * digits; its value is the geometric middle of it and the next one. */
static double bucket_ms(long long b)
{
    long long digits = b / 100, lead = b % 100;
    double v = (double)lead;
    for (long long i = 2; i < digits; i++)
        v *= 10;
    /* 1-9 ms are exact; above, buckets are about 20% wide */
    return digits == 1 ? v : v * 1.1;
}

/* Duration buckets per command, summed in C as the rows stream by:
 * b < DUR_BUCKETS (at most 19 digits). */
#define DUR_BUCKETS 2000
typedef struct durs {
    size_t n, cap;
    char **cmd;
    long long **count;
} durs;

static long long *durs_of(durs *d, const char *cmd)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->cmd[i], cmd) == 0)
            return d->count[i];
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        char **c = realloc(d->cmd, cap * sizeof *c);
        if (!c)
            return NULL;
        d->cmd = c;
        long long **n = realloc(d->count, cap * sizeof *n);
        if (!n)
            return NULL;
        d->count = n;
        d->cap = cap;
    }
    d->cmd[d->n] = strdup(cmd);
    d->count[d->n] = calloc(DUR_BUCKETS, sizeof **d->count);
    if (!d->cmd[d->n] || !d->count[d->n]) {
        free(d->cmd[d->n]);
        free(d->count[d->n]);
        return NULL;
    }
    return d->count[d->n++];
}

static void durs_free(durs *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->cmd[i]);
        free(d->count[i]);
    }
    free(d->cmd);
    free(d->count);
}

static int on_dur(void *ud, int ncols, const char *const *v)
{
    if (ncols != 3 || !v[0] || !v[1] || !v[2])
        return 0;
    long long b = atoll(v[1]), *c = durs_of(ud, v[0]);
    if (!c)
        return 1;
    if (b >= 0 && b < DUR_BUCKETS)
        c[b] += atoll(v[2]);
    return 0;
}

static int ask_durs(dash_db *db, const where *w, durs *d)
{
    char sql[512];
    memset(d, 0, sizeof *d);
    snprintf(sql, sizeof sql, "SELECT cmd, b, n FROM dash_dur WHERE %s", w->sql);
    int rc = db->query(db->store, sql, w->n, w->p, on_dur, d, db->err, sizeof db->err);
    if (rc > 0)
        snprintf(db->err, sizeof db->err, "out of memory");
    if (rc)
        durs_free(d);
    return rc ? -1 : 0;
}

/* p-th percentile of a command's buckets; *have = 0 when it has none. */
static double percentile(const durs *d, const char *cmd, double p, int *have)
{
    const long long *c = NULL;
    for (size_t i = 0; i < d->n && !c; i++)
        if (strcmp(d->cmd[i], cmd) == 0)
            c = d->count[i];
    long long total = 0, seen = 0;
    for (int b = 0; c && b < DUR_BUCKETS; b++)
        total += c[b];
    *have = total > 0;
    if (total == 0)
        return 0;
    double at = p * (double)total;
    long long want = (long long)at + ((double)(long long)at < at);  /* rounded up */
    for (int b = 0; b < DUR_BUCKETS; b++) {
        seen += c[b];
        if (seen >= want && c[b])
            return bucket_ms(b);
    }
    return 0;
}

/* Change of uses per day, second half of the range against the first,
 * from rows (cmd, half, uses, nk) and their listing; *ok = 0 when either
 * half is hidden or empty. */
static double trend_of(const rows *s, const rows *l, const char *cmd, const dash_filter *f, int *ok)
{
    double per[2] = { 0, 0 };
    long long mid = (f->from_day + f->to_day + 1) / 2;
    double days[2] = { (double)(mid - f->from_day), (double)(f->to_day - mid + 1) };
    int have = 0;
    *ok = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(rv(s, i, 0), cmd) != 0)
            continue;
        int h = (int)ri(s, i, 1) & 1;
        if (!visible(s, i, 2, l, f->k) || days[h] <= 0)
            return 0;
        per[h] = (double)ri(s, i, 2) / days[h];
        have |= 1 << h;
    }
    if (have != 3 || per[0] <= 0)
        return 0;
    *ok = 1;
    return per[1] / per[0] - 1;
}

static const char *const COLS_CMD[] = { "command", "uses", "failure rate", "p50", "p95", "trend", NULL };

static int commands_table(dash_answers *a, const rows *s, const rows *l, const durs *d,
                          const rows *ts, const rows *tl)
{
    dash_table *t = tel__dash_table_new(a, "commands", "commands", "Commands by use", DASH_CHART_BARS,
                                        COLS_CMD);
    if (!t)
        return -1;
    t->note = "failure rate: share of runs ending with a non-zero exit code; p50, p95: "
              "duration; trend: uses per day in the second half of the range against the first";
    t->empty = "no command.exited events in this range";
    size_t left_out = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *cmd = rv(s, i, 0);
        long long uses = ri(s, i, 1);
        int have;
        if (!visible(s, i, 1, l, a->filter.k)) {
            left_out++;
            continue;
        }
        double p50 = percentile(d, cmd, 0.50, &have), p95 = percentile(d, cmd, 0.95, &have);
        dash_cell *c = tel__dash_row_new(t);
        if (!c || tel__dash_cell_text(&c[0], cmd))
            return -1;
        tel__dash_cell_num(&c[1], DASH_INT, (double)uses, 1);
        tel__dash_cell_num(&c[2], DASH_PCT, uses ? (double)ri(s, i, 2) / (double)uses : 0, 1);
        if (have) {
            tel__dash_cell_num(&c[3], DASH_MS, p50, 1);
            tel__dash_cell_num(&c[4], DASH_MS, p95, 1);
        }
        int ok;
        double tv = trend_of(ts, tl, cmd, &a->filter, &ok);
        if (ok)
            tel__dash_cell_num(&c[5], DASH_DELTA, tv, 1);
    }
    return tel__dash_other_row(t, 1, left_out, a->filter.k);
}

/* Weekly uses of the busiest commands (rows week, cmd, uses, nk): only
 * commands the table above names, since a column's name is a label. */
static int commands_weekly(dash_answers *a, const rows *cmds, const rows *cl, const rows *s, const rows *l)
{
    const char *cols[8] = { "week of" };
    int nc = 1;
    for (size_t i = 0; i < cmds->n && nc < 7; i++)
        if (visible(cmds, i, 1, cl, a->filter.k))
            cols[nc++] = rv(cmds, i, 0);
    cols[nc] = NULL;
    dash_table *t = tel__dash_table_new(a, "commands", "commands-per-week",
                                        "Uses per week of the busiest commands", DASH_CHART_LINES, cols);
    if (!t)
        return -1;
    t->empty = "no command.exited events in this range";
    long long w0 = (a->filter.from_day + 3) / 7, w1 = (a->filter.to_day + 3) / 7;
    for (long long wk = w0; wk <= w1 && nc > 1; wk++) {
        char label[16];
        tel__dash_week_text(wk, label);
        dash_cell *c = tel__dash_row_new(t);
        if (!c || tel__dash_cell_text(&c[0], label))
            return -1;
        for (int j = 1; j < nc; j++)
            tel__dash_cell_num(&c[j], DASH_INT, 0, 1);
        for (size_t i = 0; i < s->n; i++) {
            if (ri(s, i, 0) != wk)
                continue;
            for (int j = 1; j < nc; j++)
                if (strcmp(t->cols[j], rv(s, i, 1)) == 0)
                    tel__dash_cell_num(&c[j], DASH_INT, rd(s, i, 2), visible(s, i, 2, l, a->filter.k));
        }
    }
    return 0;
}

static int ask_commands(dash_db *db, dash_answers *a, const where *w, rows *s)
{
    rows l, ts, tl, ws, wl;
    durs d;
    char half[128];
    long long mid = (a->filter.from_day + a->filter.to_day + 1) / 2;
    char half_expr[96];
    snprintf(half_expr, sizeof half_expr, "cmd, CASE WHEN day >= %lld THEN 1 ELSE 0 END", mid);
    snprintf(half, sizeof half, "%s AS h", half_expr);
    if (ask_counted(db, w, a->filter.k, "dash_cmd", "cmd", "cmd", "SUM(uses), SUM(fails), SUM(ms)", "2 DESC, 1", s, &l))
        return -1;
    int rc = ask_durs(db, w, &d);
    if (rc == 0) {
        rc = ask_counted(db, w, a->filter.k, "dash_cmd", half, half_expr, "SUM(uses)", "1, 2", &ts, &tl);
        if (rc == 0) {
            rc = ask_counted(db, w, a->filter.k, "dash_cmd", WEEK " AS w, cmd", WEEK ", cmd", "SUM(uses)", "1, 2", &ws, &wl);
            if (rc == 0) {
                rc = commands_table(a, s, &l, &d, &ts, &tl) || commands_weekly(a, s, &l, &ws, &wl) ? -1 : 0;
                tel__dash_rows_free(&ws);
                tel__dash_rows_free(&wl);
            }
            tel__dash_rows_free(&ts);
            tel__dash_rows_free(&tl);
        }
        durs_free(&d);
    }
    tel__dash_rows_free(&l);
    return rc;
}

/* A table of a counted rollup: the keys as text, then the sums, for the
 * rows shown; shown[i] (when not NULL) says which row of s each was.
 * The others fold into one "other" row at the end. */
static int counted_table(dash_answers *a, const rows *s, const rows *l, int nkeys, const int *kinds,
                         dash_table *t, size_t *shown)
{
    size_t left_out = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!visible(s, i, nkeys, l, a->filter.k)) {
            left_out++;
            continue;
        }
        if (shown)
            shown[t->nrows] = i;
        dash_cell *c = tel__dash_row_new(t);
        if (!c)
            return -1;
        for (int j = 0; j < nkeys; j++)
            if (tel__dash_cell_text(&c[j], rv(s, i, j)))
                return -1;
        for (int j = nkeys; j < t->ncols && kinds[j - nkeys]; j++)
            tel__dash_cell_num(&c[j], kinds[j - nkeys], rd(s, i, j), 1);
    }
    return tel__dash_other_row(t, nkeys, left_out, a->filter.k);
}

/* A bar-chart table with its labels, drawn column, and texts. */
static dash_table *bars_table(dash_answers *a, const char *section, const char *id, const char *title,
                              const char *const *cols, int label_cols, int value_col, const char *empty,
                              const char *note)
{
    dash_table *t = tel__dash_table_new(a, section, id, title, DASH_CHART_BARS, cols);
    if (t) {
        t->label_cols = label_cols;
        t->value_col = value_col;
        t->empty = empty;
        t->note = note;
    }
    return t;
}

static int ask_usage(dash_db *db, dash_answers *a, const where *w)
{
    static const char *const opt_cols[] = { "command", "option", "uses", NULL };
    static const char *const err_cols[] = { "error class", "events", NULL };
    static const int one[] = { DASH_INT, 0 };
    rows s, l;
    if (ask_counted(db, w, a->filter.k, "dash_opt", "cmd, opt", "cmd, opt", "SUM(n)", "3 DESC, 1, 2", &s, &l))
        return -1;
    dash_table *t = bars_table(a, "options", "options", "Options by use (names only)", opt_cols, 2, 2,
                               "no options recorded in this range", NULL);
    int rc = t ? counted_table(a, &s, &l, 2, one, t, NULL) : -1;
    tel__dash_rows_free(&s);
    tel__dash_rows_free(&l);
    if (rc || ask_counted(db, w, a->filter.k, "dash_err", "cls", "cls", "SUM(n)", "2 DESC, 1", &s, &l))
        return -1;
    t = bars_table(a, "errors", "errors", "Error classes", err_cols, 1, 1,
                   "no error classes recorded in this range",
                   "the error_class property of any event, e.g. command.exited");
    rc = t ? counted_table(a, &s, &l, 1, one, t, NULL) : -1;
    tel__dash_rows_free(&s);
    tel__dash_rows_free(&l);
    return rc;
}

static int ask_spans(dash_db *db, dash_answers *a, const where *w, const rows *cmds)
{
    static const char *const cols[] = {
        "command", "span", "parent", "count", "total", "mean", "share of command time", NULL
    };
    static const int kinds[] = { DASH_INT, DASH_MS, 0 };
    rows s, l;
    if (ask_counted(db, w, a->filter.k, "dash_span", "cmd, span, parent", "cmd, span, parent", "SUM(n), SUM(ms)",
                    "1, 5 DESC, 2", &s, &l))
        return -1;
    dash_table *t = bars_table(a, "spans", "spans", "Spans: where time goes inside a command", cols, 2, 4,
                               "no spans recorded",
                               "events named \"span\"; share: the span's total time over its command's "
                               "total duration (a nested span's time is also inside its parent's)");
    size_t *shown = malloc((s.n + 1) * sizeof *shown);
    int rc = t && shown ? counted_table(a, &s, &l, 3, kinds, t, shown) : -1;
    for (size_t r = 0; rc == 0 && r < t->nrows; r++) {
        dash_cell *c = &t->cells[r * t->ncols];
        if (c[3].kind == DASH_HIDDEN)
            continue;   /* the "other" row */
        size_t i = shown[r];
        double n = rd(&s, i, 3), ms = rd(&s, i, 4), cmd_ms = 0;
        for (size_t j = 0; j < cmds->n; j++)
            if (strcmp(rv(cmds, j, 0), rv(&s, i, 0)) == 0)
                cmd_ms = rd(cmds, j, 3);
        tel__dash_cell_num(&c[5], DASH_MS, n > 0 ? ms / n : 0, 1);
        if (cmd_ms > 0)
            tel__dash_cell_num(&c[6], DASH_PCT, ms / cmd_ms, 1);
    }
    free(shown);
    tel__dash_rows_free(&s);
    tel__dash_rows_free(&l);
    return rc;
}

static int ask_metrics(dash_db *db, dash_answers *a, const where *w)
{
    rows r;
    static const char *const cols[] = { "series", "labels", "installs", "sum", "mean", "min", "max", NULL };
    if (tel__dash_ask(db, w, &r, "SELECT name, labels, COUNT(*), SUM(value), MIN(value), MAX(value)"
                       " FROM dash_metric WHERE %s GROUP BY name, labels ORDER BY name, labels"))
        return -1;
    dash_table *t = bars_table(a, "metrics", "metrics", "Latest value of each metric series", cols, 2, 3,
                               "no metric samples in this range",
                               "per series and label set: the latest sample of each install, summed "
                               "over installs (one install's value alone is never shown)");
    int rc = t ? 0 : -1;
    unsigned k = a->filter.k;
    size_t left_out = 0;
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        long long inst = ri(&r, i, 2);
        /* A label value, like a series name, may be anything an install
         * sent: fewer than k installs behind it and it is not shown. */
        if (inst < (long long)k) {
            left_out++;
            continue;
        }
        dash_cell *c = tel__dash_row_new(t);
        const char *labels = rv(&r, i, 1);
        if (!c || tel__dash_cell_text(&c[0], rv(&r, i, 0)) || tel__dash_cell_text(&c[1], *labels ? labels : "-")) {
            rc = -1;
            break;
        }
        tel__dash_cell_num(&c[2], DASH_INT, (double)inst, 1);
        tel__dash_cell_num(&c[3], DASH_REAL, rd(&r, i, 3), 1);
        tel__dash_cell_num(&c[4], DASH_REAL, rd(&r, i, 3) / (double)inst, 1);
        tel__dash_cell_num(&c[5], DASH_REAL, rd(&r, i, 4), 1);
        tel__dash_cell_num(&c[6], DASH_REAL, rd(&r, i, 5), 1);
    }
    if (rc == 0)
        rc = tel__dash_other_row(t, 2, left_out, k);
    tel__dash_rows_free(&r);
    return rc;
}

/* What is missing from the store: events clients dropped at their caps
 * (reported with each batch) and erasures.  These count batches and
 * requests, not anyone's use, and carry no id, so they are shown whole. */
static int ask_missing(dash_db *db, dash_answers *a)
{
    const dash_filter *f = &a->filter;
    tel__dash_where wa;
    dash_filter app_only = *f;
    app_only.version[0] = '\0';
    app_only.ci = -1;
    /* Batches carry no version or CI state: only the app filter applies. */
    tel__dash_where_make(&wa, &app_only, "day", f->from_day, f->to_day);
    rows b, e;
    if (tel__dash_ask(db, &wa, &b, "SELECT COALESCE(SUM(dropped), 0), COALESCE(SUM(dropping), 0)"
                                   " FROM dash_batch WHERE %1$s"))
        return -1;
    char from[24], to[24];
    snprintf(from, sizeof from, "%lld", (long long)(f->from_day * DAY_MS));
    snprintf(to, sizeof to, "%lld", (long long)((f->to_day + 1) * DAY_MS));
    tel__dash_where we = { .n = 2, .p = { from, to } };
    snprintf(we.sql, sizeof we.sql, "received >= $1 AND received < $2");
    if (tel__dash_ask(db, &we, &e, "SELECT COUNT(*) FROM erasures WHERE %1$s")) {
        tel__dash_rows_free(&b);
        return -1;
    }
    static const char *const cols[] = { "what", "count", NULL };
    dash_table *t = tel__dash_table_new(a, "missing", "missing", "What the store does not hold",
                                        DASH_CHART_BARS, cols);
    int rc = t ? 0 : -1;
    const char *what[3] = { "events dropped on clients (queue caps)", "batches reporting drops",
                            "erasure requests (ids deleted)" };
    double v[3] = { b.n ? rd(&b, 0, 0) : 0, b.n ? rd(&b, 0, 1) : 0, e.n ? rd(&e, 0, 0) : 0 };
    if (t)
        t->note = "counts of batches and erasure requests received in the range (drops: of the "
                  "chosen app); they carry no id and say nothing of anyone's use, so they are "
                  "shown whole";
    for (int i = 0; rc == 0 && i < 3; i++) {
        dash_cell *c = tel__dash_row_new(t);
        if (!c || tel__dash_cell_text(&c[0], what[i]))
            rc = -1;
        else
            tel__dash_cell_num(&c[1], DASH_INT, v[i], 1);
    }
    tel__dash_rows_free(&b);
    tel__dash_rows_free(&e);
    return rc;
}

static int ask_choices(dash_db *db, dash_answers *a)
{
    rows r;
    where none = { .n = 0 };
    strcpy(none.sql, "true");
    if (tel__dash_ask(db, &none, &r, "SELECT DISTINCT app FROM dash_day WHERE %1$s ORDER BY app"))
        return -1;
    a->apps = calloc(r.n + 1, sizeof *a->apps);
    for (size_t i = 0; a->apps && i < r.n; i++)
        if ((a->apps[a->napps] = strdup(rv(&r, i, 0))))
            a->napps++;
    tel__dash_rows_free(&r);
    /* A version is free text its installs sent: offered only when k
     * installs of the chosen app (or any) ran it in the range's blocks. */
    dash_filter app_only = a->filter;
    app_only.version[0] = '\0';
    app_only.ci = -1;
    where w;
    tel__dash_where_make(&w, &app_only, "blk", app_only.from_day / 32, app_only.to_day / 32);
    char fmt[256];
    snprintf(fmt, sizeof fmt, "SELECT ver FROM dash_inst WHERE %%1$s AND aid <> 0 GROUP BY ver"
             " HAVING COUNT(DISTINCT aid) >= %u ORDER BY ver", a->filter.k);
    if (tel__dash_ask(db, &w, &r, fmt))
        return -1;
    a->versions = calloc(r.n + 1, sizeof *a->versions);
    for (size_t i = 0; a->versions && i < r.n; i++)
        if ((a->versions[a->nversions] = strdup(rv(&r, i, 0))))
            a->nversions++;
    tel__dash_rows_free(&r);
    return a->apps && a->versions ? 0 : -1;
}

dash_answers *dash_answer(dash_db *db, const dash_filter *f)
{
    dash_answers *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(db->err, sizeof db->err, "out of memory");
        return NULL;
    }
    a->filter = *f;
    if (f->k < 1 || f->k > DASH_K_MAX || f->from_day > f->to_day || f->to_day - f->from_day > 3660) {
        snprintf(db->err, sizeof db->err, f->from_day > f->to_day ? "the range ends before it starts" :
                 f->k < 1 || f->k > DASH_K_MAX ? "the threshold must be 1 to 20 installs" :
                 "the range is longer than ten years");
        free(a);
        return NULL;
    }
    db->err[0] = '\0';
    where w;
    tel__dash_where_make(&w, f, "day", f->from_day, f->to_day);
    rows cmds = { 0 };
    int rc = ask_choices(db, a) || tel__dash_ask_installs(db, a) || ask_commands(db, a, &w, &cmds) ||
             ask_metrics(db, a, &w) || ask_usage(db, a, &w) || ask_spans(db, a, &w, &cmds) ||
             ask_missing(db, a);
    tel__dash_rows_free(&cmds);
    if (rc) {
        if (!db->err[0])
            snprintf(db->err, sizeof db->err, "out of memory");
        dash_answers_free(a);
        return NULL;
    }
    return a;
}
