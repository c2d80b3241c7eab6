/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_store.c - the dashboard on tel-collect's store: the page
 * at GET /, the refresher that keeps the rollups current in the
 * background, and `tel-collect report`.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "common.h"
#include "dash_store.h"

/* ------------------------------------------------------------ the store */

static int query(void *store, const char *sql, int n, const char *const *params, dash_row_fn row,
                 void *ud, char *err, size_t errsize)
{
    int rc = store_query(store, sql, n, params, row, ud);
    if (rc < 0)
        snprintf(err, errsize, "%s", store_error());
    return rc;
}

static int exec_sql(void *store, const char *sql, char *err, size_t errsize)
{
    if (store_exec(store, sql) == 0)
        return 0;
    snprintf(err, errsize, "%s", store_error());
    return -1;
}

void tel__dash_db(dash_db *db, tel_store *s)
{
    memset(db, 0, sizeof *db);
    db->store = s;
    db->query = query;
    db->exec = exec_sql;
    db->pg = store_engine(s) == STORE_POSTGRESQL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ----------------------------------------------------- the page and its
 * refresher: one folds at a time, so both take the same lock. */

static pthread_mutex_t fold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static struct {
    pthread_t thread;
    int running, stopping;
    int ready;               /* the rollup tables exist (under fold_lock) */
    dash_db db;
    unsigned k;
} dash;

/* Creates the rollup tables once; called under fold_lock.  The store may
 * be down when the collector starts (PostgreSQL restarting): the
 * refresher and the page try again. */
static int ready_locked(dash_db *db)
{
    if (!dash.ready && dash_setup(db) == 0)
        dash.ready = 1;
    return dash.ready ? 0 : -1;
}

/* Events folded per step: small, so that an upload waiting for the
 * store's writer (which a step holds) waits tens of milliseconds at most. */
#define STEP_EVENTS 1000

static int refresh_locked(dash_db *db, int all)
{
    int more = 1, rc = 0;
    while (more && rc == 0) {
        pthread_mutex_lock(&fold_lock);
        rc = ready_locked(db) == 0 ? dash_refresh_step(db, STEP_EVENTS, &more) : -1;
        pthread_mutex_unlock(&fold_lock);
        if (!all)
            break;
    }
    return rc;
}

/* Uploads come first: while batches arrive (one stored in the last
 * UPLOAD_QUIET_MS), the refresher folds one step per BUSY_STEP_MS at
 * most, so a burst of uploads has the store's writer and the CPU to
 * itself, and the folding catches up once it ends.  Pages and reports
 * fold whatever is left before they answer, so they still show
 * everything stored. */
#define UPLOAD_QUIET_MS 200
#define BUSY_STEP_MS 1000

static _Atomic int64_t last_upload_ms;

void tel__dash_upload_seen(void)
{
    atomic_store_explicit(&last_upload_ms, now_ms(), memory_order_relaxed);
}

/* One round of the refresher: a step, unless uploads keep the writer
 * busy.  Returns how long to wait before the next round. */
static long refresh_round(int64_t *last_step)
{
    int64_t t0 = now_ms();
    if (t0 - atomic_load_explicit(&last_upload_ms, memory_order_relaxed) < UPLOAD_QUIET_MS &&
        t0 - *last_step < BUSY_STEP_MS)
        return UPLOAD_QUIET_MS / 4;
    dash_db db = dash.db;
    int more = 0;
    pthread_mutex_lock(&fold_lock);
    if ((ready_locked(&db) != 0 || dash_refresh_step(&db, STEP_EVENTS, &more) != 0) && tel__cfg.verbose)
        cli_error("dashboard: %s", db.err);
    pthread_mutex_unlock(&fold_lock);
    *last_step = now_ms();
    /* While catching up, a pause as long as the step leaves the writer
     * to uploads at least half the time; a second when there is nothing
     * to fold. */
    return more ? (long)(*last_step - t0) + 10 : 1000;
}

static void *refresher(void *arg)
{
    (void)arg;
    int64_t last_step = 0;
    pthread_mutex_lock(&stop_lock);
    while (!dash.stopping) {
        pthread_mutex_unlock(&stop_lock);
        long pause_ms = refresh_round(&last_step);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += pause_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&stop_lock);
        if (!dash.stopping)
            pthread_cond_timedwait(&stop_cond, &stop_lock, &until);
    }
    pthread_mutex_unlock(&stop_lock);
    return NULL;
}

/* ------------------------------------------------------- page cache
 *
 * A page depends only on its filter (dates resolved to days, so a new day
 * is a new key) and on the rollups, whose generation every fold step
 * bumps: a page rendered at one generation is the page of every later
 * request with the same filter until the generation moves.  Most
 * requests are someone reloading or a monitor polling, so they are
 * answered from here in a millisecond instead of recomputed.  A few
 * pages only: memory stays bounded whatever filters clients try. */

#define CACHED_PAGES 8

typedef struct cached_page {
    char key[4 * DASH_TEXT_MAX];
    long long gen;
    unsigned long used;          /* LRU clock */
    tel_buf html;
} cached_page;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_page cache[CACHED_PAGES];
static unsigned long cache_clock;

static void page_key(const dash_filter *f, char *out, size_t n)
{
    snprintf(out, n, "%s\n%s\n%d\n%lld\n%lld\n%u", f->app, f->version, f->ci, (long long)f->from_day,
             (long long)f->to_day, f->k);
}

/* Copies the page cached for key at gen into body: 1, or 0 when none. */
static int cache_get(const char *key, long long gen, tel_buf *body)
{
    int hit = 0;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHED_PAGES && !hit; i++) {
        cached_page *c = &cache[i];
        if (c->html.len && c->gen == gen && strcmp(c->key, key) == 0) {
            c->used = ++cache_clock;
            tel__buf_clear(body);
            hit = tel__buf_append(body, c->html.p, c->html.len) == 0;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

/* Keeps a copy of the page in the least recently used slot; a failed
 * copy only means a miss later. */
static void cache_put(const char *key, long long gen, const tel_buf *body)
{
    pthread_mutex_lock(&cache_lock);
    cached_page *c = &cache[0];
    for (int i = 1; i < CACHED_PAGES; i++)
        if (cache[i].used < c->used)
            c = &cache[i];
    tel__buf_clear(&c->html);
    snprintf(c->key, sizeof c->key, "%s", key);
    c->gen = gen;
    c->used = ++cache_clock;
    if (tel__buf_append(&c->html, body->p, body->len) != 0)
        tel__buf_clear(&c->html);
    pthread_mutex_unlock(&cache_lock);
}

static void cache_free(void)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHED_PAGES; i++)
        tel__buf_free(&cache[i].html);
    memset(cache, 0, sizeof cache);
    pthread_mutex_unlock(&cache_lock);
}

static unsigned plain(tel_buf *body, const char **type, unsigned status, const char *fmt, const char *why)
{
    *type = "text/plain; charset=utf-8";
    tel__buf_clear(body);
    return tel__buf_printf(body, fmt, why) == 0 ? status : 0;
}

static unsigned page(void *ud, const http_get *req, tel_buf *body, const char **type)
{
    (void)ud;
    dash_filter f;
    char err[160];
    dash_filter_default(&f, now_ms());
    f.k = dash.k;
    static const char *const keys[] = { "app", "version", "ci", "from", "to" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = req->arg(req->conn, keys[i]);
        if (v && dash_filter_set(&f, keys[i], v, err, sizeof err) != 0)
            return plain(body, type, 400, "bad filter: %s\n", err);
    }
    dash_db db = dash.db;
    /* The page shows everything stored up to now: what the refresher has
     * not folded yet is folded first. */
    long long gen;
    if (refresh_locked(&db, 1) != 0 || dash_generation(&db, &gen) != 0)
        return plain(body, type, 503, "the store cannot answer now: %s\n", db.err);
    char key[4 * DASH_TEXT_MAX];
    page_key(&f, key, sizeof key);
    *type = "text/html; charset=utf-8";
    if (cache_get(key, gen, body))
        return 200;
    dash_answers *a = dash_answer(&db, &f);
    if (!a)
        return plain(body, type, strstr(db.err, "range") || strstr(db.err, "threshold") ? 400 : 503,
                     "cannot answer: %s\n", db.err);
    int rc = dash_render_html(body, a);
    dash_answers_free(a);
    if (rc != 0)
        return 0;
    cache_put(key, gen, body);
    return 200;
}

int tel__dash_start(tel_store *s, unsigned k)
{
    tel__dash_db(&dash.db, s);
    dash.k = k;
    if (tel__http_page("/", page, NULL) != 0)
        return -1;
    if (pthread_create(&dash.thread, NULL, refresher, NULL) != 0) {
        cli_error("dashboard: cannot start its refresher");
        return -1;
    }
    dash.running = 1;
    return 0;
}

void tel__dash_stop(void)
{
    if (!dash.running)
        return;
    pthread_mutex_lock(&stop_lock);
    dash.stopping = 1;
    pthread_cond_signal(&stop_cond);
    pthread_mutex_unlock(&stop_lock);
    pthread_join(dash.thread, NULL);
    dash.running = 0;
    cache_free();
}

/* ------------------------------------------------------------- report */

static void report_usage(void)
{
    printf("Usage: %s report --db URL [--app A] [--version V] [--ci yes|no] [--since 30d]\n"
           "       [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--json] [--min-installs K]\n"
           "Prints the dashboard's answers from the store at URL (sqlite:PATH or\n"
           "postgresql://...) as text tables, or as one JSON document with --json.\n"
           "\n"
           "  --db URL            the store tel-collect writes (required)\n"
           "  --app A             one app only (default: every app)\n"
           "  --version V         one app version only\n"
           "  --ci yes|no         runs in CI only, or outside CI only\n"
           "  --since N[d|w]      the last N days or weeks, today included (default 30d)\n"
           "  --from, --to DATE   the range's first and last day (UTC), instead of --since\n"
           "  --json              one JSON document instead of text\n"
           "  --min-installs K    show no number, nor name, backed by fewer than K\n"
           "                      installs (1-%d, default 5; smaller cells read \"< K\",\n"
           "                      such names fold into one \"other\" row)\n"
           "\n"
           "Exit status: 0 printed; 1 the store cannot be opened (a SQLite file that does\n"
           "not exist is never created) or read; 2 bad usage.\n",
           cli_prog, DASH_K_MAX);
}

enum { R_DB = 1, R_APP, R_VERSION, R_CI, R_SINCE, R_FROM, R_TO, R_JSON, R_K, R_HELP };

static const struct option report_opts[] = {
    { "db", required_argument, NULL, R_DB },
    { "app", required_argument, NULL, R_APP },
    { "version", required_argument, NULL, R_VERSION },
    { "ci", required_argument, NULL, R_CI },
    { "since", required_argument, NULL, R_SINCE },
    { "from", required_argument, NULL, R_FROM },
    { "to", required_argument, NULL, R_TO },
    { "json", no_argument, NULL, R_JSON },
    { "min-installs", required_argument, NULL, R_K },
    { "help", no_argument, NULL, R_HELP },
    { NULL, 0, NULL, 0 },
};

/* Parses the command line into f; returns -1 to go on, or an exit code. */
static int report_args(int argc, char **argv, dash_filter *f, const char **db, int *json)
{
    char err[160];
    const char *from = NULL, *since = NULL;
    int64_t days = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", report_opts, NULL)) != -1) {
        unsigned long long k;
        switch (opt) {
        case R_DB: *db = optarg; break;
        case R_APP: case R_VERSION: case R_CI: case R_TO:
            if (dash_filter_set(f, report_opts[opt - 1].name, optarg, err, sizeof err) != 0)
                return cli_usage_error("--%s", err);
            break;
        case R_FROM: from = optarg; break;
        case R_SINCE:
            if (dash_parse_since(optarg, &days) != 0)
                return cli_usage_error("--since takes a number of days or weeks, like 7d or 2w");
            since = optarg;
            break;
        case R_JSON: *json = 1; break;
        case R_K:
            if (cli_parse_uint(optarg, DASH_K_MAX, &k) != 0 || k < 1)
                return cli_usage_error("--min-installs takes a number from 1 to %d", DASH_K_MAX);
            f->k = (unsigned)k;
            break;
        case 'h': case R_HELP: report_usage(); return EXIT_OK;
        case ':': return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!*db)
        return cli_usage_error("report needs --db URL");
    if (from && since)
        return cli_usage_error("give --since or --from, not both");
    if (from && dash_filter_set(f, "from", from, err, sizeof err) != 0)
        return cli_usage_error("--%s", err);
    if (!from)
        f->from_day = f->to_day - (since ? days : 30) + 1;
    if (f->from_day > f->to_day)
        return cli_usage_error("--from is after --to");
    return -1;
}

int tel__dash_report(int argc, char **argv)
{
    dash_filter f;
    const char *url = NULL;
    int json = 0;
    dash_filter_default(&f, now_ms());
    int rc = report_args(argc, argv, &f, &url, &json);
    if (rc >= 0)
        return rc;
    char err[256];
    /* A mistyped --db names no database: saying so beats an all-zero
     * report from an empty one made on the spot. */
    tel_store *s = store_open_existing(url, err, sizeof err);
    if (!s) {
        cli_error("cannot open the store: %s", err);
        return EXIT_FAIL;
    }
    dash_db db;
    tel__dash_db(&db, s);
    dash_answers *a = NULL;
    if (dash_setup(&db) != 0 || dash_refresh(&db) != 0 || !(a = dash_answer(&db, &f))) {
        cli_error("cannot read the store: %s", db.err);
        store_close(s);
        return EXIT_FAIL;
    }
    tel_buf b = TEL_BUF_INIT;
    rc = json ? dash_render_json(&b, a) : dash_render_text(&b, a);
    dash_answers_free(a);
    store_close(s);
    if (rc != 0) {
        tel__buf_free(&b);
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    rc = fwrite(b.p, 1, b.len, stdout) == b.len && fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
    if (rc != EXIT_OK)
        cli_error("cannot write the report: %s", strerror(errno));
    tel__buf_free(&b);
    return rc;
}
