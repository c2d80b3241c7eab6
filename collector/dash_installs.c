/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_installs.c - every answer that counts installs exactly:
 * events and active installs per day, installs per week and month,
 * versions over time, OS, architecture, CPUs and CI.
 *
 * They all come from one read of dash_inst (one row per install, 32-day
 * block and attributes, with a bitmap of its days; see dash_rollup.c),
 * sorted by install, so each install is counted once per day, week,
 * month and attribute value however many rows it has.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_impl.h"

/* A small set of strings, each with a count. */
typedef struct dict {
    size_t n, cap;
    char **s;
    long long *count;
} dict;

/* The index of s in d, added when missing; -1 when memory ran out. */
static long dict_index(dict *d, const char *s)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->s[i], s) == 0)
            return (long)i;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        char **ns = realloc(d->s, cap * sizeof *ns);
        if (!ns)
            return -1;
        d->s = ns;
        long long *nc = realloc(d->count, cap * sizeof *nc);
        if (!nc)
            return -1;
        d->count = nc;
        d->cap = cap;
    }
    if (!(d->s[d->n] = strdup(s)))
        return -1;
    d->count[d->n] = 0;
    return (long)d->n++;
}

static void dict_free(dict *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->s[i]);
    free(d->s);
    free(d->count);
}

enum { A_OS, A_ARCH, A_CPUS, A_CI, A_CIV, NATTR };

/* What is counted over the range. */
typedef struct tally {
    int64_t from, nd;            /* first day, number of days */
    long long w0, nw, m0, nm;    /* first week and month, how many */
    int *month_of;               /* per day: its month's index */
    long long *daily, *weekly, *monthly, total;
    dict attr[NATTR];
    dict vers;                   /* count: installs of each version in the range */
    long long *verweek;          /* [week * vcap + version] */
    size_t vcap;
    /* the install being read */
    int *dmark, *wmark, *mmark;  /* marks per day, week, month */
    long *seen;                  /* (attr, value) and (week, version) pairs met */
    size_t nseen, seencap;
} tally;

static long long month_num(int64_t day)
{
    char s[16];
    dash_day_text(day, s);
    return atoll(s) * 12 + atoll(s + 5) - 1;
}

static int tally_init(tally *t, const dash_filter *f)
{
    memset(t, 0, sizeof *t);
    t->from = f->from_day;
    t->nd = f->to_day - f->from_day + 1;
    t->w0 = (f->from_day + 3) / 7;
    t->nw = (f->to_day + 3) / 7 - t->w0 + 1;
    t->m0 = month_num(f->from_day);
    t->nm = month_num(f->to_day) - t->m0 + 1;
    t->month_of = calloc((size_t)t->nd, sizeof *t->month_of);
    t->daily = calloc((size_t)t->nd, sizeof *t->daily);
    t->weekly = calloc((size_t)t->nw, sizeof *t->weekly);
    t->monthly = calloc((size_t)t->nm, sizeof *t->monthly);
    t->dmark = calloc((size_t)t->nd, sizeof *t->dmark);
    t->wmark = calloc((size_t)t->nw, sizeof *t->wmark);
    t->mmark = calloc((size_t)t->nm, sizeof *t->mmark);
    if (!t->month_of || !t->daily || !t->weekly || !t->monthly || !t->dmark || !t->wmark || !t->mmark)
        return -1;
    for (int64_t d = 0; d < t->nd; d++)
        t->month_of[d] = (int)(month_num(t->from + d) - t->m0);
    return 0;
}

static void tally_free(tally *t)
{
    free(t->month_of);
    free(t->daily);
    free(t->weekly);
    free(t->monthly);
    free(t->dmark);
    free(t->wmark);
    free(t->mmark);
    free(t->verweek);
    free(t->seen);
    for (int i = 0; i < NATTR; i++)
        dict_free(&t->attr[i]);
    dict_free(&t->vers);
}

/* Notes a pair for the install being read; 1 if new, 0 if met, -1. */
static int seen_once(tally *t, long key)
{
    for (size_t i = 0; i < t->nseen; i++)
        if (t->seen[i] == key)
            return 0;
    if (t->nseen == t->seencap) {
        size_t cap = t->seencap ? t->seencap * 2 : 64;
        long *n = realloc(t->seen, cap * sizeof *n);
        if (!n)
            return -1;
        t->seen = n;
        t->seencap = cap;
    }
    t->seen[t->nseen++] = key;
    return 1;
}

static int ver_week(tally *t, long v, long long w)
{
    if ((size_t)v >= t->vcap) {
        size_t cap = t->vcap ? t->vcap * 2 : 16;
        while ((size_t)v >= cap)
            cap *= 2;
        long long *n = calloc(cap * (size_t)t->nw, sizeof *n);
        if (!n)
            return -1;
        for (long long i = 0; i < t->nw; i++)
            for (size_t j = 0; j < t->vcap; j++)
                n[i * cap + j] = t->verweek[i * t->vcap + j];
        free(t->verweek);
        t->verweek = n;
        t->vcap = cap;
    }
    int r = seen_once(t, (long)(1 << 30) + (long)(w * 4096 + v));
    if (r > 0)
        t->verweek[w * (long long)t->vcap + v]++;
    return r < 0 ? -1 : 0;
}

/* One dash_inst row: v = blk, bits, aid, ver, ci, os, arch, cpus, civ. */
static int tally_row(tally *t, const char *const *v)
{
#define V(i) (v[i] ? v[i] : "")
    long long blk = atoll(V(0)), bits = atoll(V(1));
    long long wmin = -1, wmax = -1;
    for (int b = 0; b < 32; b++) {
        int64_t off = blk * 32 + b - t->from;
        if (!((bits >> b) & 1) || off < 0 || off >= t->nd)
            continue;
        t->dmark[off] = 1;
        long long w = (t->from + off + 3) / 7 - t->w0;
        t->wmark[w] = 1;
        t->mmark[t->month_of[off]] = 1;
        if (wmin < 0)
            wmin = w;
        wmax = w;
    }
    if (wmin < 0)
        return 0;  /* no day of this row in the range */
    int in_ci = atoi(V(4)) != 0;
    const char *vals[NATTR] = { V(5), V(6), V(7), in_ci ? "in CI" : "not in CI", V(8) };
    for (int a = 0; a < NATTR; a++) {
        if (a == A_CIV && !in_ci)
            continue;
        long x = dict_index(&t->attr[a], *vals[a] ? vals[a] : "(unknown)");
        int fresh = x < 0 ? -1 : seen_once(t, (long)a * 65536 + x);
        if (fresh < 0)
            return -1;
        t->attr[a].count[x] += fresh;
    }
    long ver = dict_index(&t->vers, V(3));
    /* Negative keys: apart from the (attr, value) and (week, version) ones. */
    int fresh = ver < 0 ? -1 : seen_once(t, -1 - ver);
    if (fresh < 0)
        return -1;
    t->vers.count[ver] += fresh;
    for (long long w = wmin; w <= wmax; w++)
        if (t->wmark[w] && ver_week(t, ver, w) != 0)
            return -1;
    return 0;
#undef V
}

/* Counts the install just read once per day, week and month it was seen. */
static void tally_close(tally *t)
{
    int any = 0;
    for (int64_t d = 0; d < t->nd; d++)
        if (t->dmark[d]) {
            t->daily[d]++;
            t->dmark[d] = 0;
            any = 1;
        }
    for (long long w = 0; w < t->nw; w++) {
        t->weekly[w] += t->wmark[w];
        t->wmark[w] = 0;
    }
    for (long long m = 0; m < t->nm; m++) {
        t->monthly[m] += t->mmark[m];
        t->mmark[m] = 0;
    }
    t->total += any;
    t->nseen = 0;
}

typedef struct reader {
    tally *t;
    long long aid;
    int any;
} reader;

/* Rows arrive sorted by install and are counted as they come. */
static int on_install(void *ud, int ncols, const char *const *v)
{
    reader *r = ud;
    long long aid = ncols == 9 && v[2] ? atoll(v[2]) : 0;
    if (r->any && aid != r->aid)
        tally_close(r->t);
    r->aid = aid;
    r->any = 1;
    return ncols == 9 && tally_row(r->t, v) == 0 ? 0 : 1;
}

static int read_installs(dash_db *db, const dash_filter *f, tally *t)
{
    tel__dash_where w;
    tel__dash_where_make(&w, f, "blk", f->from_day / 32, f->to_day / 32);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT blk, bits, aid, ver, ci, os, arch, cpus, civ FROM dash_inst"
             " WHERE %s AND aid <> 0 ORDER BY aid", w.sql);
    reader r = { t, 0, 0 };
    int rc = db->query(db->store, sql, w.n, w.p, on_install, &r, db->err, sizeof db->err);
    if (rc > 0)
        snprintf(db->err, sizeof db->err, "out of memory");
    if (rc == 0 && r.any)
        tally_close(t);
    return rc ? -1 : 0;
}

/* Per-day tables: events (from dash_day), installs and runs without a
 * lasting id (from dash_noid). */
static int per_day(dash_db *db, dash_answers *a, const tally *t)
{
    static const char *const ev_cols[] = { "day", "events", NULL };
    static const char *const in_cols[] = { "day", "installs", "runs without lasting id", NULL };
    const dash_filter *f = &a->filter;
    unsigned k = f->k;
    tel__dash_where w;
    tel__dash_rows ev, noid;
    tel__dash_where_make(&w, f, "day", f->from_day, f->to_day);
    if (tel__dash_ask(db, &w, &ev, "SELECT day, SUM(events) FROM dash_day WHERE %1$s GROUP BY day"))
        return -1;
    if (tel__dash_ask(db, &w, &noid, "SELECT day, COUNT(*) FROM dash_noid WHERE %1$s GROUP BY day")) {
        tel__dash_rows_free(&ev);
        return -1;
    }
    long long *nev = calloc((size_t)t->nd, sizeof *nev), *nno = calloc((size_t)t->nd, sizeof *nno);
    dash_table *te = tel__dash_table_new(a, "events", "events-per-day", "Events per day",
                                         DASH_CHART_COLUMNS, ev_cols);
    dash_table *ti = te ? tel__dash_table_new(a, "installs", "installs-per-day", "Active installs per day",
                                              DASH_CHART_COLUMNS, in_cols) : NULL;
    int rc = nev && nno && ti ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < ev.n; i++)
        nev[tel__dash_ri(&ev, i, 0) - t->from] = tel__dash_ri(&ev, i, 1);
    for (size_t i = 0; rc == 0 && i < noid.n; i++)
        nno[tel__dash_ri(&noid, i, 0) - t->from] = tel__dash_ri(&noid, i, 1);
    if (rc == 0) {
        te = ti - 1;
        te->empty = "no events in this range";
        ti->empty = "no installs in this range";
        ti->note = "distinct anonymous ids; runs without a lasting id (no cookie) are not "
                   "installs and are counted apart";
    }
    /* One row per day of the range, so quiet days show as gaps.  Runs
     * without a lasting id are only shown on days with enough installs to
     * hide among. */
    for (int64_t d = 0; rc == 0 && d < t->nd; d++) {
        char day[16];
        dash_day_text(t->from + d, day);
        dash_cell *r = tel__dash_row_new(te), *s = r ? tel__dash_row_new(ti) : NULL;
        if (!s || tel__dash_cell_text(&r[0], day) || tel__dash_cell_text(&s[0], day)) {
            rc = -1;
            break;
        }
        int vis = t->daily[d] >= (long long)k || (t->daily[d] == 0 && nev[d] == 0 && nno[d] == 0);
        tel__dash_cell_num(&r[1], DASH_INT, (double)nev[d], vis);
        tel__dash_cell_num(&s[1], DASH_INT, (double)t->daily[d], vis);
        tel__dash_cell_num(&s[2], DASH_INT, (double)nno[d], vis);
    }
    free(nev);
    free(nno);
    tel__dash_rows_free(&ev);
    tel__dash_rows_free(&noid);
    return rc;
}

static int per_period(dash_answers *a, const tally *t, int monthly)
{
    static const char *const wcols[] = { "week of", "installs", NULL };
    static const char *const mcols[] = { "month", "installs", NULL };
    dash_table *tb = tel__dash_table_new(a, "installs", monthly ? "installs-per-month" : "installs-per-week",
                                         monthly ? "Active installs per month" : "Active installs per week",
                                         DASH_CHART_COLUMNS, monthly ? mcols : wcols);
    if (!tb)
        return -1;
    tb->empty = "no installs in this range";
    long long n = monthly ? t->nm : t->nw;
    for (long long i = 0; i < n; i++) {
        char label[16];
        if (monthly)
            snprintf(label, sizeof label, "%04d-%02d", (int)((t->m0 + i) / 12 % 10000),
                     (int)((t->m0 + i) % 12 + 1));
        else
            tel__dash_week_text(t->w0 + i, label);
        long long v = monthly ? t->monthly[i] : t->weekly[i];
        dash_cell *c = tel__dash_row_new(tb);
        if (!c || tel__dash_cell_text(&c[0], label))
            return -1;
        tel__dash_cell_num(&c[1], DASH_INT, (double)v, v >= (long long)a->filter.k || v == 0);
    }
    return 0;
}

static int cmp_ver(const void *x, const void *y)
{
    return strverscmp(**(char *const *const *)x, **(char *const *const *)y);
}

/* Installs per version and week: one column per version, in version
 * order, the newest DASH_MAX_COLS - 1 of them.  A version is free text
 * its installs sent, and a column's name shows it: only versions k
 * installs ran in the range have one. */
static int versions(dash_answers *a, const tally *t)
{
    size_t nv = 0;
    char **order[256];
    for (size_t i = 0; i < t->vers.n && nv < 256; i++)
        if (t->vers.count[i] >= (long long)a->filter.k)
            order[nv++] = &t->vers.s[i];
    qsort(order, nv, sizeof order[0], cmp_ver);
    size_t first = nv > DASH_MAX_COLS - 1 ? nv - (DASH_MAX_COLS - 1) : 0;
    const char *cols[DASH_MAX_COLS + 1] = { "week of" };
    size_t nc = 1;
    for (size_t i = first; i < nv; i++)
        cols[nc++] = *order[i];
    cols[nc] = NULL;
    dash_table *tb = tel__dash_table_new(a, "versions", "versions-per-week",
                                         "Installs per app version, by week", DASH_CHART_LINES, cols);
    if (!tb)
        return -1;
    tb->empty = "no installs in this range";
    tb->note = "a version fewer installs ran than the threshold has no column";
    for (long long w = 0; w < t->nw && nv; w++) {
        char label[16];
        tel__dash_week_text(t->w0 + w, label);
        dash_cell *c = tel__dash_row_new(tb);
        if (!c || tel__dash_cell_text(&c[0], label))
            return -1;
        for (size_t j = first; j < nv; j++) {
            size_t v = (size_t)(order[j] - t->vers.s);
            long long n = t->verweek[w * (long long)t->vcap + v];
            tel__dash_cell_num(&c[1 + j - first], DASH_INT, (double)n, n >= (long long)a->filter.k || n == 0);
        }
    }
    return 0;
}

static const dict *sort_dict;
static int cmp_count(const void *x, const void *y)
{
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    long long a = sort_dict->count[i], b = sort_dict->count[j];
    return a != b ? (a < b ? 1 : -1) : strcmp(sort_dict->s[i], sort_dict->s[j]);
}

static int attribute(dash_answers *a, const tally *t, int which)
{
    static const struct { const char *id, *title, *head; } meta[NATTR] = {
        { "os", "Operating systems", "os" },
        { "arch", "Architectures", "arch" },
        { "cpus", "CPU counts", "cpus" },
        { "ci", "CI share", "where" },
        { "ci-vendors", "CI vendors", "vendor" },
    };
    const char *cols[] = { meta[which].head, "installs", "share", NULL };
    dash_table *tb = tel__dash_table_new(a, "platform", meta[which].id, meta[which].title,
                                         DASH_CHART_BARS, cols);
    if (!tb)
        return -1;
    tb->empty = which == A_CIV ? "no installs in CI in this range" : "no installs in this range";
    if (which == A_CIV)
        tb->note = "share of all installs";
    const dict *d = &t->attr[which];
    size_t *idx = malloc((d->n + 1) * sizeof *idx);
    if (!idx)
        return -1;
    for (size_t i = 0; i < d->n; i++)
        idx[i] = i;
    sort_dict = d;
    qsort(idx, d->n, sizeof *idx, cmp_count);
    int rc = 0;
    size_t left_out = 0;
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        long long n = d->count[idx[i]];
        /* The value is what the installs sent (any text): under k
         * installs, its name is not shown either. */
        if (n < (long long)a->filter.k) {
            left_out++;
            continue;
        }
        dash_cell *c = tel__dash_row_new(tb);
        if (!c || tel__dash_cell_text(&c[0], d->s[idx[i]]))
            rc = -1;
        else {
            tel__dash_cell_num(&c[1], DASH_INT, (double)n, 1);
            tel__dash_cell_num(&c[2], DASH_PCT, t->total ? (double)n / (double)t->total : 0, 1);
        }
    }
    free(idx);
    return rc ? rc : tel__dash_other_row(tb, 1, left_out, a->filter.k);
}

int tel__dash_ask_installs(dash_db *db, dash_answers *a)
{
    tally t;
    int rc = tally_init(&t, &a->filter);
    if (rc == 0)
        rc = read_installs(db, &a->filter, &t);
    else
        snprintf(db->err, sizeof db->err, "out of memory");
    if (rc == 0)
        rc = per_day(db, a, &t) || per_period(a, &t, 0) || per_period(a, &t, 1) || versions(a, &t);
    for (int i = 0; rc == 0 && i < NATTR; i++)
        rc = attribute(a, &t, i);
    tally_free(&t);
    return rc ? -1 : 0;
}
