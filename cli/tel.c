/* SPDX-License-Identifier: MIT */
/*
 * cli/tel.c - `tel`: record, show and control an app's telemetry.
 *
 * tel is a host like any other: it links libtel only (no libcurl, no
 * zlib), so `tel emit` from a shell script costs what an emit costs in C.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"
#include "erasure.h"
#include "jsonin.h"
#include "kv.h"
#include "policy.h"
#include "prom.h"
#include "syncstate.h"

/* Exit code of `tel emit` and `tel metrics --strict` when the event
 * could not be queued for a reason of the environment; without --strict
 * it is 0, since telemetry never fails its host's script. */
#define EXIT_NOT_QUEUED 1

/* The most exposition text `tel metrics` reads: a node_exporter scrape is
 * about 100 KiB, and the queue holds 4 MiB of records in all. */
#define METRICS_MAX_INPUT (1024u * 1024u)

static const char usage_text[] =
    "Usage: tel COMMAND --app APP [OPTIONS]\n"
    "\n"
    "Record, inspect and control the anonymous usage telemetry of APP.\n"
    "\n"
    "Commands:\n"
    "  emit EVENT [KEY=VALUE ...] [KEY:=JSON ...]\n"
    "                               queue one event; a VALUE is an integer, decimal\n"
    "                               or true/false when it prints back unchanged\n"
    "                               (2.5, -3; not 1.10 or 007), else a string;\n"
    "                               KEY:=JSON takes any JSON value, arrays and\n"
    "                               objects included (at most 4 levels deep)\n"
    "  metrics [FILE|-]             queue every sample of a Prometheus text exposition\n"
    "                               (default stdin, at most 1 MiB) as \"metric\" events,\n"
    "                               all or none\n"
    "  show                         print the queued events as JSON lines, oldest first\n"
    "  status                       state, deciding setting, cookie, queue and sync state\n"
    "                               (--all: of every app with a queue)\n"
    "  enable                       turn telemetry on in the user's telemetry.conf\n"
    "  disable                      turn it off there, and purge the queue\n"
    "  forget                       delete the anonymous cookie and purge the queue;\n"
    "                               when the program offers erasure, leave a request\n"
    "                               that tel-sync sends so the collector deletes the\n"
    "                               events sent under the old id\n"
    "  notice [--message TEXT]      print the first-run notice on stderr, once: only\n"
    "                               when telemetry is on, not in CI, and not yet shown\n"
    "  exec-id                      print an execution id for a run of several tel emit\n"
    "                               calls: APP's <APP>_TELEMETRY_EXEC_ID when it holds\n"
    "                               one, else a new one\n"
    "\n"
    "Options:\n"
    "  -a, --app APP            the program whose telemetry this is (required)\n"
    "      --app-version V      (emit, metrics) the program's version, recorded in the context\n"
    "      --endpoint URL       (emit, metrics) collector URL recorded for tel-sync\n"
    "      --token T            (emit, metrics) bearer token recorded for tel-sync\n"
    "      --spawn-sync         (emit, metrics) then start a detached tel-sync, at most\n"
    "                           once per 10 minutes and only when something is queued\n"
    "      --declare-env NAME=MEANING[:WORD]\n"
    "                           (emit, metrics) the script's own variable NAME means\n"
    "                           off-if-true, off-if-set, on-off, debug-if-contains:WORD,\n"
    "                           log-file or detailed-errors; recorded for tel status\n"
    "                           and tel-sync (repeatable, at most 16)\n"
    "      --default-off        (emit, metrics) telemetry is opt-in: off until the user\n"
    "                           turns it on\n"
    "      --offer-erasure      (emit, metrics) from now on, forget also leaves a request\n"
    "                           that the collector delete the forgotten id's events\n"
    "      --inspect FILE       (emit, metrics) write the events to FILE as JSON lines\n"
    "                           instead of queueing them\n"
    "      --debug              (emit, metrics) log the events on stderr, queue nothing\n"
    "      --strict             (emit, metrics) exit 1 when the event could not be queued\n"
    "  -v, --verbose            (emit, metrics) say why an event could not be queued\n"
    "      --exec-id ID         (emit, metrics) the run's execution id (a UUID), shared\n"
    "                           by several calls; <APP>_TELEMETRY_EXEC_ID wins over it\n"
    "      --project-salt S     (emit, metrics) add the project id: sha256 of S and the\n"
    "                           git origin of the working directory\n"
    "      --project-linkable   (emit, metrics) add the unsalted project id, the same for\n"
    "                           every product (linkable across them)\n"
    "      --message TEXT       (notice) the notice to print instead of the default\n"
    "      --all                (status) every app with a queue here, instead of --app\n"
    "      --json               (status) one JSON object instead of text (one per line\n"
    "                           with --all)\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  done; for emit and metrics also when telemetry is disabled (nothing to do)\n"
    "     and when the event could not be queued (no HOME, a read-only or full disk,\n"
    "     damaged state), said on stderr only with -v or logging on\n"
    "  1  (emit, metrics --strict) the event could not be queued; (other commands)\n"
    "     the state could not be read or changed; (any command) the output could\n"
    "     not be written\n"
    "  2  bad usage: unknown option, bad app or event name, malformed KEY=VALUE\n"
    "     or KEY:=JSON,\n"
    "     an event over a limit, malformed or unreadable metrics input; nothing\n"
    "     was stored\n";

enum { OPT_APP_VERSION = 256, OPT_ENDPOINT, OPT_TOKEN, OPT_JSON, OPT_SPAWN_SYNC, OPT_MESSAGE, OPT_ALL,
       OPT_DECLARE_ENV, OPT_DEFAULT_OFF, OPT_OFFER_ERASURE, OPT_INSPECT, OPT_DEBUG, OPT_STRICT,
       OPT_EXEC_ID, OPT_PROJECT_SALT, OPT_PROJECT_LINKABLE };

static const struct option long_opts[] = {
    { "app", required_argument, NULL, 'a' },
    { "app-version", required_argument, NULL, OPT_APP_VERSION },
    { "endpoint", required_argument, NULL, OPT_ENDPOINT },
    { "token", required_argument, NULL, OPT_TOKEN },
    { "json", no_argument, NULL, OPT_JSON },
    { "spawn-sync", no_argument, NULL, OPT_SPAWN_SYNC },
    { "message", required_argument, NULL, OPT_MESSAGE },
    { "all", no_argument, NULL, OPT_ALL },
    { "declare-env", required_argument, NULL, OPT_DECLARE_ENV },
    { "default-off", no_argument, NULL, OPT_DEFAULT_OFF },
    { "offer-erasure", no_argument, NULL, OPT_OFFER_ERASURE },
    { "inspect", required_argument, NULL, OPT_INSPECT },
    { "debug", no_argument, NULL, OPT_DEBUG },
    { "strict", no_argument, NULL, OPT_STRICT },
    { "verbose", no_argument, NULL, 'v' },
    { "exec-id", required_argument, NULL, OPT_EXEC_ID },
    { "project-salt", required_argument, NULL, OPT_PROJECT_SALT },
    { "project-linkable", no_argument, NULL, OPT_PROJECT_LINKABLE },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

typedef struct args {
    const char *command;
    const char *app;
    const char *app_version;
    const char *endpoint;
    const char *token;
    int json;
    int spawn_sync;
    int all;
    int strict;
    int verbose;
    const char *exec_id;
    const char *project_salt;
    int project_linkable;
    const char *message;
    tel_decls decls;          /* --declare-env, --default-off */
    const char *inspect;
    int debug;
    char **rest;
    int nrest;
} args;

/* The host options of emit and metrics given on the command line. */
static int host_options(const args *a, tel_options *o)
{
    if ((a->app_version && tel_options_set_app_version(o, a->app_version) != TEL_OK) ||
        (a->endpoint && tel_options_set_endpoint(o, a->endpoint) != TEL_OK) ||
        (a->token && tel_options_set_token(o, a->token) != TEL_OK) ||
        (a->inspect && tel_options_set_inspect(o, a->inspect) != TEL_OK) ||
        (a->debug && tel_options_set_debug(o, 1) != TEL_OK) ||
        (a->decls.default_off && tel_options_set_default_enabled(o, 0) != TEL_OK) ||
        (a->decls.erasure && tel_options_set_erasure(o, 1) != TEL_OK) ||
        (a->exec_id && tel_options_set_exec_id(o, a->exec_id) != TEL_OK) ||
        (a->project_salt && tel_options_set_project_salt(o, a->project_salt) != TEL_OK) ||
        (a->project_linkable && tel_options_set_project_linkable(o, 1) != TEL_OK))
        return -1;
    for (size_t i = 0; i < a->decls.n; i++) {
        const tel_decl *e = &a->decls.d[i];
        if (tel_options_declare_env(o, e->name, e->meaning, e->word[0] ? e->word : NULL) != TEL_OK)
            return -1;
    }
    return 0;
}

/* --declare-env NAME=MEANING[:WORD], checked as the library will. */
static int take_declaration(args *a, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) > TEL_DECL_NAME_MAX)
        return cli_usage_error("--declare-env takes NAME=MEANING[:WORD]");
    char name[TEL_DECL_NAME_MAX + 1];
    memcpy(name, arg, (size_t)(eq - arg));
    name[eq - arg] = '\0';
    const char *m = eq + 1, *colon = strchr(m, ':');
    int meaning = tel__meaning_parse(m, colon ? (size_t)(colon - m) : strlen(m));
    if (meaning < 0)
        return cli_usage_error("--declare-env %s: unknown meaning (off-if-true, off-if-set, on-off, "
                               "debug-if-contains:WORD, log-file, detailed-errors)", name);
    if (tel__decls_add(&a->decls, name, meaning, colon ? colon + 1 : NULL) != TEL_OK)
        return cli_usage_error("--declare-env: %s", tel_last_error());
    return -1;
}

/* ---------------------------------------------------------------- emit */

/*
 * The event could not be queued for a reason of the environment (no
 * HOME, a read-only or full disk, damaged state): telemetry never fails
 * its host, so this is exit 0 and silent, unless the script asked with
 * --strict, or -v or logging (flag, env, telemetry.conf) wants a word.
 */
static int not_queued(const args *a, int rc, const char *what)
{
    int say = a->strict || a->verbose;
    if (!say) {
        tel_policy p;
        char why[256];
        snprintf(why, sizeof why, "%s", tel_last_error());
        tel__policy_resolve(&p, a->app, NULL, NULL);
        explicit_bzero(p.token, sizeof p.token);
        say = p.logging;
        tel__fail(rc, "%s", why);
    }
    if (say)
        cli_error("could not queue the %s: %s: %s", what, tel_strerror(rc), tel_last_error());
    return a->strict ? EXIT_NOT_QUEUED : EXIT_OK;
}

/*
 * The app's tel variables that are set but ignored (the library reads
 * them quietly, as a host must never fail over telemetry): the tel
 * command names them, never their values, so a script's mistake shows.
 * Returns how many of out[] were filled.
 */
typedef struct ignored_var {
    char name[TEL_MAX_NAME + 32];
    const char *why;
} ignored_var;

static size_t ignored_vars(const char *app, ignored_var out[2])
{
    size_t n = 0;
    char dir[TEL_PATH_MAX];
    uint8_t id[TEL_ID_LEN];
    if (tel__state_dir_env(app, dir, sizeof dir) == TEL_ERR_INVALID) {
        tel__env_name(app, "STATE_DIR", out[n].name, sizeof out[n].name);
        out[n++].why = "not an absolute path";
    }
    if (tel__exec_id_env(app, id) == TEL_ERR_INVALID) {
        tel__env_name(app, "EXEC_ID", out[n].name, sizeof out[n].name);
        out[n++].why = "not a UUID";
    }
    return n;
}

/* One line on stderr per ignored variable, for the commands that record. */
static void warn_ignored(const char *app)
{
    ignored_var v[2];
    size_t n = ignored_vars(app, v);
    for (size_t i = 0; i < n; i++)
        cli_error("warning: %s is ignored: %s", v[i].name, v[i].why);
}

/*
 * exec-id: the id a script exports so that its tel emit calls share one
 * run.  The one already exported wins, so a script called by another
 * keeps its caller's run.
 */
static int cmd_exec_id(const args *a)
{
    if (a->nrest)
        return cli_usage_error("exec-id: unexpected argument");
    warn_ignored(a->app);
    char text[37];
    uint8_t id[TEL_ID_LEN];
    if (tel__exec_id_env(a->app, id) != TEL_OK) {
        if (tel__uuid4(id) != 0) {
            cli_error("exec-id: no random numbers available");
            return EXIT_FAIL;
        }
    }
    tel__uuid_format(id, text);
    printf("%s\n", text);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int cmd_emit(const args *a)
{
    if (a->nrest < 1)
        return cli_usage_error("emit: missing EVENT");
    const char *event = a->rest[0];
    size_t nargs = (size_t)(a->nrest - 1);
    if (nargs > TEL_MAX_PROPS)
        return cli_usage_error("emit: %zu properties, at most %d allowed", nargs, TEL_MAX_PROPS);
    /* KEY:=JSON may unfold into many items (tel.h's flat form). */
    static tel_prop props[TEL_MAX_ITEMS];
    size_t n = 0;
    for (size_t i = 0; i < nargs; i++) {
        char *kv = a->rest[i + 1];
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv || (eq == kv + 1 && kv[0] == ':'))
            return cli_usage_error("emit: property %zu is not KEY=VALUE or KEY:=JSON", i + 1);
        *eq = '\0';
        if (eq[-1] == ':') {
            eq[-1] = '\0';
            if (tel__json_props(eq + 1, kv, props, TEL_MAX_ITEMS, &n) != TEL_OK)
                return cli_usage_error("emit: property %zu: %s", i + 1, tel_last_error());
            continue;
        }
        props[n].key = kv;
        cli_kv_type(eq + 1, &props[n++]);
    }
    int rc = tel__event_check(event, props, n);
    if (rc != TEL_OK)
        return cli_usage_error("emit: %s", tel_last_error());
    if (a->endpoint && tel__endpoint_check(a->endpoint) != TEL_OK)
        return cli_usage_error("emit: --endpoint: %s", tel_last_error());

    warn_ignored(a->app);
    /* The app name was checked in main(), so a NULL here is memory. */
    tel_options *o = tel_options_new(a->app);
    if (!o)
        return not_queued(a, TEL_ERR_NOMEM, "event");
    if (host_options(a, o) != 0) {
        tel_options_free(o);
        return cli_usage_error("emit: %s", tel_last_error());
    }
    tel *h;
    rc = tel_open(&h, o);
    if (rc == TEL_ERR_CONFIG) {
        /* A broken config counts as an opt-out; say so, but it is not a
         * failure of this command. */
        cli_error("telemetry is off: %s", tel_last_error());
        return EXIT_OK;
    }
    if (rc < 0)
        return not_queued(a, rc, "event");
    if (rc == TEL_OK)
        rc = tel_emit_event(h, event, props, n);
    /* A script host has no exit hook of its own: this is it. */
    if (rc == TEL_OK && a->spawn_sync)
        tel_spawn_sync(h, 0);
    tel_close(h);
    /* The encoded size is only known once the event is encoded: an event
     * over it is bad input like any other limit. */
    if (rc == TEL_ERR_LIMIT || rc == TEL_ERR_INVALID)
        return cli_usage_error("emit: %s", tel_last_error());
    return rc < 0 ? not_queued(a, rc, "event") : EXIT_OK;
}

/* ------------------------------------------------------------- metrics */

/* Reads all of `path` ("-" or NULL: stdin) into a new buffer of at most
 * METRICS_MAX_INPUT bytes.  Returns 0, or prints why and returns -1. */
static int read_input(const char *path, char **out, size_t *len)
{
    int from_stdin = !path || strcmp(path, "-") == 0;
    FILE *f = from_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("metrics: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(METRICS_MAX_INPUT + 1);
    size_t n = 0, r;
    while (buf && n <= METRICS_MAX_INPUT &&
           (r = fread(buf + n, 1, METRICS_MAX_INPUT + 1 - n, f)) > 0)
        n += r;
    int err = buf && ferror(f);
    if (!from_stdin)
        fclose(f);
    if (!buf) {
        cli_error("metrics: out of memory");
        return -1;
    }
    if (err || n > METRICS_MAX_INPUT) {
        if (err)
            cli_error("metrics: cannot read %s", from_stdin ? "standard input" : path);
        else
            cli_error("metrics: input is larger than %u bytes", METRICS_MAX_INPUT);
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int cmd_metrics(const args *a)
{
    if (a->nrest > 1)
        return cli_usage_error("metrics: at most one FILE");
    if (a->endpoint && tel__endpoint_check(a->endpoint) != TEL_OK)
        return cli_usage_error("metrics: --endpoint: %s", tel_last_error());
    char *text;
    size_t len;
    if (read_input(a->nrest ? a->rest[0] : NULL, &text, &len) != 0)
        return EXIT_USAGE;
    /* Malformed text is refused before the state is touched: no cookie,
     * no queue, not even a lock file, for input that records nothing. */
    tel_prom_sample *s = malloc(sizeof *s);
    if (!s) {
        free(text);
        tel__fail(TEL_ERR_NOMEM, "out of memory");
        return not_queued(a, TEL_ERR_NOMEM, "metrics");
    }
    tel_prom_parser ps;
    int prc;
    tel__prom_init(&ps, text, len);
    while ((prc = tel__prom_next(&ps, s)) == 1)
        ;
    free(s);
    if (prc < 0) {
        free(text);
        cli_error("metrics: %s", tel_last_error());
        return EXIT_USAGE;
    }

    tel_options *o = tel_options_new(a->app);
    if (!o) {
        free(text);
        return cli_usage_error("%s", tel_last_error());
    }
    if (host_options(a, o) != 0) {
        tel_options_free(o);
        free(text);
        return cli_usage_error("metrics: %s", tel_last_error());
    }
    tel *h;
    int rc = tel_open(&h, o);
    if (rc < 0 && rc != TEL_ERR_CONFIG) {
        free(text);
        return not_queued(a, rc, "metrics");
    }
    /* Disabled or not, the text is checked, so that a script feeding
     * malformed input hears about it on every machine (a malformed
     * telemetry.conf gives no handle: the check runs without one). */
    int orc = rc;
    rc = h ? tel_emit_prometheus(h, text, len) : tel__prometheus_check(text, len);
    if (rc == TEL_OK && a->spawn_sync)
        tel_spawn_sync(h, 0);
    tel_close(h);
    free(text);
    if (rc == TEL_ERR_INVALID || rc == TEL_ERR_LIMIT) {
        cli_error("metrics: %s", tel_last_error());
        return EXIT_USAGE;
    }
    if (orc == TEL_ERR_CONFIG) {
        /* A broken config counts as an opt-out, as for emit. */
        cli_error("telemetry is off: telemetry.conf is malformed");
        return EXIT_OK;
    }
    return rc < 0 ? not_queued(a, rc, "metrics") : EXIT_OK;
}

/* ---------------------------------------------------------------- show */

typedef struct show_ctx {
    tel_buf line;
    uint64_t last_seq;
    size_t seen;
    int write_failed;
} show_ctx;

static int show_one(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    show_ctx *c = ud;
    tel_record r;
    c->last_seq = seq;
    c->seen++;
    tel__buf_clear(&c->line);
    if (tel__record_decode(&r, data, len) != TEL_OK) {
        printf("{\"seq\":%llu,\"error\":\"undecodable record\"}\n", (unsigned long long)seq);
        return 0;
    }
    if (tel__record_json(&r, &c->line) != TEL_OK || tel__buf_append(&c->line, "\n", 1) != 0) {
        c->write_failed = 1;
        return 1;
    }
    if (fwrite(c->line.p, 1, c->line.len, stdout) != c->line.len) {
        c->write_failed = 1;
        return 1;
    }
    return 0;
}

static int open_existing(const char *app, tel_queue **q, char *dir, size_t size)
{
    *q = NULL;
    int rc = tel__state_dir(app, dir, size);
    if (rc != TEL_OK)
        return rc;
    rc = tel__queue_open(q, dir, NULL, TEL_Q_READONLY);
    if (rc == TEL_ERR_NOTFOUND) {
        *q = NULL;
        return TEL_OK;
    }
    return rc;
}

static int cmd_show(const args *a)
{
    if (a->nrest)
        return cli_usage_error("show: unexpected argument");
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    int rc = open_existing(a->app, &q, dir, sizeof dir);
    if (rc != TEL_OK) {
        cli_error("cannot read the queue: %s: %s", tel_strerror(rc), tel_last_error());
        return EXIT_FAIL;
    }
    if (!q)
        return EXIT_OK;
    show_ctx c = { TEL_BUF_INIT, 0, 0, 0 };
    /* Pages of 1000 keep each read transaction short, so a producer or
     * tel-sync working on the queue meanwhile is never held up. */
    uint64_t from = 0;
    for (;;) {
        c.seen = 0;
        rc = tel__queue_scan(q, from, 1000, SIZE_MAX, show_one, &c);
        if (rc != TEL_OK || c.write_failed || c.seen < 1000)
            break;
        from = c.last_seq + 1;
    }
    tel__buf_free(&c.line);
    tel__queue_close(q);
    if (cli_flush_stdout() != 0)
        return EXIT_FAIL;
    if (c.write_failed) {
        cli_error("cannot write the output: out of memory");
        return EXIT_FAIL;
    }
    if (rc != TEL_OK) {
        cli_error("cannot read the queue: %s", tel_last_error());
        return EXIT_FAIL;
    }
    return c.write_failed ? EXIT_FAIL : EXIT_OK;
}

/* -------------------------------------------------------------- status */

static const char *cookie_state(const char *dir)
{
    char path[TEL_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, dir);
    struct stat st;
    if (lstat(path, &st) != 0)
        return "absent";
    if (!S_ISREG(st.st_mode))
        return "no lasting id";
    return "present";
}

/* The host's declared variables as "NAME (meaning[ word]), ...". */
static void decls_text(const tel_decls *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const tel_decl *e = &d->d[i];
        printf("%s%s (%s%s%s)", i ? ", " : "", e->name, tel__meaning_name(e->meaning),
               e->word[0] ? " " : "", e->word);
    }
}

/* The same as the members of a JSON array; non-zero when memory ran out. */
static int decls_json(tel_buf *o, const tel_decls *d)
{
    int bad = 0;
    for (size_t i = 0; i < d->n; i++) {
        const tel_decl *e = &d->d[i];
        bad |= tel__buf_puts(o, i ? ",{\"name\":" : "{\"name\":");
        bad |= tel__json_str(o, e->name, strlen(e->name));
        bad |= tel__buf_printf(o, ",\"meaning\":\"%s\"", tel__meaning_name(e->meaning));
        if (e->word[0]) {
            bad |= tel__buf_puts(o, ",\"word\":");
            bad |= tel__json_str(o, e->word, strlen(e->word));
        }
        bad |= tel__buf_puts(o, "}");
    }
    return bad;
}

/* The erasure requests waiting in a state directory: how many, and the
 * soonest a backed-off one is tried again.  Never their ids: status shows
 * no anonymous id, old or new. */
typedef struct erasure_status {
    size_t pending, deferred, unreadable;
    uint64_t next_ms;         /* the earliest backoff end of a deferred one */
    uint64_t now;
} erasure_status;

static int count_erasure(void *ud, tel_erasure_req *r)
{
    erasure_status *e = ud;
    e->pending++;
    if (r->backoff.until_ms > e->now) {
        if (!e->deferred++ || r->backoff.until_ms < e->next_ms)
            e->next_ms = r->backoff.until_ms;
    }
    return 0;
}

/* What `tel status` shows about one app, gathered before any of it is
 * rendered as text or JSON. */
typedef struct app_status {
    const char *app;
    tel_policy p;
    int token_set;
    int prc;                  /* what resolving the policy returned */
    char conferr[256];        /* "" when the config file parsed */
    char dir[TEL_PATH_MAX];   /* "" without a home directory */
    int qrc;                  /* how opening the queue went */
    tel_queue_stats s;
    int have_backoff, have_last, deferred;
    tel_backoff b;
    tel_last_sync ls;
    uint64_t now, age_s;
    const char *cookie;
    tel_decls d;              /* what the host declared (none when unreadable) */
    int drc;                  /* how reading the declarations went */
    char declerr[128];
    erasure_status er;
    ignored_var ignored[2];
    size_t nignored;
} app_status;

static void status_gather(const char *app, app_status *st)
{
    memset(st, 0, sizeof *st);
    st->app = app;
    char sdir[TEL_PATH_MAX];
    st->drc = TEL_ERR_NOTFOUND;
    if (tel__state_dir(app, sdir, sizeof sdir) == TEL_OK)
        st->drc = tel__decls_load(sdir, &st->d);
    if (st->drc == TEL_ERR_CORRUPT)
        snprintf(st->declerr, sizeof st->declerr, "%s", tel_last_error());
    if (st->drc != TEL_OK)
        memset(&st->d, 0, sizeof st->d);
    tel_queue *q = NULL;
    st->qrc = open_existing(app, &q, st->dir, sizeof st->dir);
    /* The policy tel-sync would apply, with what the host recorded. */
    st->prc = tel__policy_for_queue(&st->p, q, app, st->drc == TEL_OK ? &st->d : NULL, NULL);
    st->token_set = st->p.token[0] != '\0';
    explicit_bzero(st->p.token, sizeof st->p.token);
    if (st->prc == TEL_ERR_CONFIG)
        snprintf(st->conferr, sizeof st->conferr, "%s", tel_last_error());
    if (q) {
        if (tel__queue_stats(q, &st->s) != TEL_OK)
            memset(&st->s, 0, sizeof st->s);
        st->have_backoff = tel__backoff_load(q, &st->b) == TEL_OK;
        st->have_last = tel__last_sync_load(q, &st->ls) == TEL_OK;
        tel__queue_close(q);
    }
    st->now = tel__now_ms();
    const tel_queue_stats *s = &st->s;
    st->age_s = s->count && s->oldest_ts_ms && st->now > s->oldest_ts_ms
                    ? (st->now - s->oldest_ts_ms) / 1000 : 0;
    st->cookie = st->dir[0] ? cookie_state(st->dir) : "absent";
    st->deferred = st->have_backoff && st->b.until_ms > st->now;
    st->nignored = ignored_vars(app, st->ignored);
    st->er.now = st->now;
    if (st->dir[0] && tel__erasure_each(st->dir, count_erasure, &st->er, &st->er.unreadable) != TEL_OK)
        st->er.pending = 0;
}

/* Seconds left of a backoff, rounded up; 0 when none is running. */
static unsigned long long wait_s(const app_status *st)
{
    return st->deferred ? (unsigned long long)((st->b.until_ms - st->now + 999) / 1000) : 0;
}

/* The query of a URL with every value replaced by *** ("?key=***"): a
 * collector's token is sometimes passed there.  In place. */
static void redact_query(char *url, size_t size)
{
    char *q = strchr(url, '?');
    if (!q)
        return;
    char rest[1100];
    snprintf(rest, sizeof rest, "%s", q + 1);
    size_t at = (size_t)(q + 1 - url);
    const char *r = rest;
    while (*r && *r != '#' && at < size) {
        size_t key = strcspn(r, "=&#");
        int valued = r[key] == '=';
        size_t skip = key + (valued ? strcspn(r + key, "&#") : 0);
        int sep = r[skip] == '&';
        int n = snprintf(url + at, size - at, "%.*s%s%s", (int)key, r, valued ? "=***" : "", sep ? "&" : "");
        if (n < 0)
            return;
        at += (size_t)n;
        r += skip + (size_t)sep;
    }
    if (at < size)
        snprintf(url + at, size - at, "%s", r);   /* the fragment, or "" */
}

/* The endpoint as status shows it: a password or token in its user
 * part ("https://alice:hunter2@host") or a value of its query is
 * replaced by ***. */
static void redact_endpoint(const char *url, char *out, size_t size)
{
    snprintf(out, size, "%s", url);
    redact_query(out, size);
    char *auth = strstr(out, "://");
    if (!auth)
        return;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    char *at = NULL;
    for (char *c = auth; c < auth + alen; c++)
        if (*c == '@')
            at = c;
    if (!at)
        return;
    char *colon = memchr(auth, ':', (size_t)(at - auth));
    char *from = colon ? colon + 1 : auth;
    char rest[1100];
    snprintf(rest, sizeof rest, "%s", at);
    snprintf(from, size - (size_t)(from - out), "***%s", rest);
}

/* A path under the user's home directory as ~/..., so that status shows
 * where the state is without the user's name. */
static void shown_path(const char *path, char *out, size_t size)
{
    const char *home = getenv("HOME");
    size_t n = home ? strlen(home) : 0;
    while (n > 1 && home[n - 1] == '/')
        n--;
    if (n > 1 && home[0] == '/' && strncmp(path, home, n) == 0 && path[n] == '/')
        snprintf(out, size, "~%s", path + n);
    else
        snprintf(out, size, "%s", path);
}

/* One JSON object on one line.  Every string goes through the shared
 * escaper, so a state path that is not UTF-8 still gives valid JSON. */
static int status_json(const app_status *st)
{
    const tel_policy *p = &st->p;
    tel_buf o = TEL_BUF_INIT;
    int bad = tel__buf_puts(&o, "{\"app\":") || tel__json_str(&o, st->app, strlen(st->app));
    bad |= tel__buf_printf(&o, ",\"enabled\":%s,\"decided_by\":\"%s\",\"reason\":",
                           p->enabled ? "true" : "false", tel__source_name(p->enabled_src));
    bad |= tel__json_str(&o, p->enabled_why, strlen(p->enabled_why));
    bad |= tel__buf_puts(&o, ",\"config_error\":");
    bad |= st->conferr[0] ? tel__json_str(&o, st->conferr, strlen(st->conferr))
                          : tel__buf_puts(&o, "null");
    bad |= tel__buf_printf(&o, ",\"debug\":%s,\"logging\":%s,\"inspect\":%s",
                           p->debug ? "true" : "false", p->logging ? "true" : "false",
                           p->inspect[0] ? "true" : "false");
    bad |= tel__buf_printf(&o, ",\"opted_out\":%s,\"host_default\":\"%s\",\"declared\":[",
                           p->opted_out ? "true" : "false", st->d.default_off ? "off" : "on");
    bad |= decls_json(&o, &st->d);
    bad |= tel__buf_puts(&o, "],\"debug_by\":");
    bad |= tel__json_str(&o, p->debug_why, strlen(p->debug_why));
    bad |= tel__buf_puts(&o, ",\"log_file_by\":");
    bad |= tel__json_str(&o, p->log_file_why, strlen(p->log_file_why));
    bad |= tel__buf_printf(&o, ",\"errors\":\"%s\",\"endpoint\":",
                           p->error_detail == TEL_ERRORS_SANITIZED ? "sanitized" : "class");
    char shown[1100];
    redact_endpoint(p->endpoint, shown, sizeof shown);
    bad |= tel__json_str(&o, shown, strlen(shown));
    bad |= tel__buf_printf(&o, ",\"endpoint_source\":\"%s\",\"token_set\":%s,\"problem\":",
                           tel__source_name(p->endpoint_src), st->token_set ? "true" : "false");
    bad |= p->problem[0] ? tel__json_str(&o, p->problem, strlen(p->problem)) : tel__buf_puts(&o, "null");
    bad |= tel__buf_puts(&o, ",\"state_dir\":");
    char where[TEL_PATH_MAX + 2];
    shown_path(st->dir, where, sizeof where);
    bad |= tel__json_str(&o, where, strlen(where));
    bad |= tel__buf_printf(&o, ",\"cookie\":\"%s\",\"queue\":{\"events\":%llu,\"bytes\":%llu,"
                           "\"oldest_age_s\":%llu,\"dropped\":%llu,\"readable\":%s}",
                           st->cookie, (unsigned long long)st->s.count,
                           (unsigned long long)st->s.bytes, (unsigned long long)st->age_s,
                           (unsigned long long)st->s.dropped, st->qrc == TEL_OK ? "true" : "false");
    bad |= tel__buf_printf(&o, ",\"sync\":{\"deferred\":%s", st->deferred ? "true" : "false");
    if (st->have_backoff) {
        bad |= tel__buf_printf(&o, ",\"retry_after_s\":%llu,\"attempts\":%u,\"last_status\":%d,"
                               "\"last_error\":", wait_s(st), st->b.attempt, st->b.status);
        bad |= tel__json_str(&o, st->b.reason, strlen(st->b.reason));
    }
    if (st->have_last)
        bad |= tel__buf_printf(&o, ",\"last_sent_ms\":%llu,\"last_sent_events\":%u",
                               (unsigned long long)st->ls.at_ms, st->ls.events);
    bad |= tel__buf_printf(&o, "},\"erasure\":{\"offered\":%s,\"pending\":%zu,\"deferred\":%zu,"
                           "\"unreadable\":%zu}", st->d.erasure ? "true" : "false", st->er.pending,
                           st->er.deferred, st->er.unreadable);
    bad |= tel__buf_puts(&o, ",\"ignored\":[");
    for (size_t i = 0; i < st->nignored; i++) {
        bad |= tel__buf_printf(&o, "%s{\"variable\":", i ? "," : "");
        bad |= tel__json_str(&o, st->ignored[i].name, strlen(st->ignored[i].name));
        bad |= tel__buf_printf(&o, ",\"why\":\"%s\"}", st->ignored[i].why);
    }
    bad |= tel__buf_puts(&o, "]}\n");
    if (!bad)
        bad = fwrite(o.p, 1, o.len, stdout) != o.len;
    tel__buf_free(&o);
    return bad ? -1 : 0;
}

/* "45 s", "12 min", "24 h", "1 h 30 min": a wait as a person reads it,
 * rounded up to the unit shown. */
static void duration_text(unsigned long long s, char *out, size_t size)
{
    if (s < 60)
        snprintf(out, size, "%llu s", s);
    else if (s < 3600)
        snprintf(out, size, "%llu min", (s + 59) / 60);
    else if ((s + 59) / 60 % 60 == 0)
        snprintf(out, size, "%llu h", (s + 59) / 3600);
    else
        snprintf(out, size, "%llu h %llu min", (s + 59) / 60 / 60, (s + 59) / 60 % 60);
}

static void utc_text(uint64_t ms, const char *fmt, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, fmt, &tm);
}

static void queue_text(const app_status *st)
{
    unsigned long long n = st->s.count, bytes = st->s.bytes, dropped = st->s.dropped;
    printf("queue:       %llu %s", n, cli_noun(n, "event", "events"));
    /* An empty queue has no size and no oldest event to speak of. */
    if (n)
        printf(", %llu %s, oldest %llu s ago", bytes, cli_noun(bytes, "byte", "bytes"),
               (unsigned long long)st->age_s);
    printf(", %llu dropped\n", dropped);
}

/* The erasure offer and the requests that wait, without an id. */
static void erasure_text(const app_status *st)
{
    const erasure_status *e = &st->er;
    if (!st->d.erasure && !e->pending && !e->unreadable)
        return;
    printf("erasure:     %s", st->d.erasure ? "offered (forget asks the collector to delete the old id's events)"
                                            : "not offered");
    if (e->pending) {
        printf("; %zu %s to send", e->pending, cli_noun(e->pending, "request", "requests"));
        if (e->deferred) {
            char wait[32];
            duration_text((e->next_ms - e->now + 999) / 1000, wait, sizeof wait);
            printf(" (%zu deferred, next attempt in %s)", e->deferred, wait);
        }
    }
    if (e->unreadable)
        printf("; %zu unreadable %s", e->unreadable, cli_noun(e->unreadable, "request", "requests"));
    putchar('\n');
}

static void status_text(const app_status *st)
{
    const tel_policy *p = &st->p;
    printf("app:         %s\n", st->app);
    /* "decided by env: MYCLI_TELEMETRY_ENABLED", but not "builtin: builtin" */
    int why = p->enabled_why[0] && strcmp(p->enabled_why, tel__source_name(p->enabled_src)) != 0;
    printf("telemetry:   %s (decided by %s%s%s)\n", p->enabled ? "on" : "off",
           tel__source_name(p->enabled_src), why ? ": " : "", why ? p->enabled_why : "");
    if (st->conferr[0])
        printf("config:      error: %s\n", st->conferr);
    if (!p->enabled && !p->opted_out && st->prc != TEL_ERR_CONFIG)
        printf("             (this is not an opt-out: what is queued is kept)\n");
    if (st->d.n || st->d.default_off) {
        printf("declared:    ");
        if (st->d.default_off)
            printf("default off%s", st->d.n ? "; " : "");
        decls_text(&st->d);
        putchar('\n');
    } else if (st->drc == TEL_ERR_CORRUPT) {
        printf("declared:    unreadable: %s\n", st->declerr);
    }
    if (p->debug)
        printf("debug:       on (decided by env: %s; events are logged, never sent)\n", p->debug_why);
    if (p->logging)
        printf("logging:     on\n");
    if (p->log_file)
        printf("audit log:   on (the file named by env %s)\n", p->log_file_why);
    if (p->error_detail == TEL_ERRORS_SANITIZED)
        printf("errors:      sanitised messages are sent (decided by env: %s)\n", p->error_detail_why);
    if (p->inspect[0])
        printf("inspect:     on (tel-sync writes batches to a file instead of sending)\n");
    char shown[1100];
    redact_endpoint(p->endpoint, shown, sizeof shown);
    printf("endpoint:    %s (%s)%s\n", shown, tel__source_name(p->endpoint_src),
           st->token_set ? ", token set" : "");
    if (p->problem[0])
        printf("problem:     %s (tel-sync sends nothing until it is fixed)\n", p->problem);
    for (size_t i = 0; i < st->nignored; i++)
        printf("ignored:     %s (%s)\n", st->ignored[i].name, st->ignored[i].why);
    char where[TEL_PATH_MAX + 2];
    shown_path(st->dir, where, sizeof where);
    printf("state:       %s\n", st->dir[0] ? where : "(no home directory)");
    printf("cookie:      %s\n", st->cookie);
    if (st->qrc != TEL_OK)
        printf("queue:       unreadable: %s\n", tel_strerror(st->qrc));
    else
        queue_text(st);
    if (st->deferred) {
        char wait[32], until[32];
        duration_text(wait_s(st), wait, sizeof wait);
        utc_text(st->b.until_ms, "%Y-%m-%d %H:%M UTC", until, sizeof until);
        printf("sync:        deferred for %s (until %s) after %u failed %s (last: %s)\n", wait,
               until, st->b.attempt, cli_noun(st->b.attempt, "attempt", "attempts"), st->b.reason);
    } else if (st->have_last) {
        char when[32];
        utc_text(st->ls.at_ms, "%Y-%m-%dT%H:%M:%SZ", when, sizeof when);
        printf("sync:        last delivery: %u %s, accepted at %s\n",
               st->ls.events, cli_noun(st->ls.events, "event", "events"), when);
    } else {
        printf("sync:        nothing sent yet\n");
    }
    erasure_text(st);
}


static int status_one(const args *a, const char *app)
{
    static app_status st;
    status_gather(app, &st);
    if (!a->json) {
        status_text(&st);
    } else if (status_json(&st) != 0) {
        if (cli_flush_stdout() == 0)
            cli_error("status: out of memory");
        return EXIT_FAIL;
    }
    return st.qrc == TEL_OK ? EXIT_OK : EXIT_FAIL;
}

/*
 * status --all: every app with a queue under the state directory, in name
 * order; text blocks apart by a blank line, or one JSON object per line.
 */
typedef struct status_all_ctx {
    const args *a;
    int shown;
    int code;
} status_all_ctx;

static void status_one_of_all(void *ud, const char *app)
{
    status_all_ctx *c = ud;
    if (c->shown++ && !c->a->json)
        putchar('\n');
    if (status_one(c->a, app) != EXIT_OK)
        c->code = EXIT_FAIL;
}

static int cmd_status(const args *a)
{
    if (a->nrest)
        return cli_usage_error("status: unexpected argument");
    if (!a->all)
        return status_one(a, a->app);
    status_all_ctx c = { a, 0, EXIT_OK };
    if (tel__each_app(status_one_of_all, &c) != TEL_OK) {
        cli_error("status: %s", tel_last_error());
        return EXIT_FAIL;
    }
    return c.code;
}

/* ----------------------------------------------------- enable, disable */

/* Events queued for app now (0 when there is no queue or it cannot be
 * read): what a purge is about to delete, for the line that says so. */
static unsigned long long queued_now(const char *app)
{
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    tel_queue_stats s;
    unsigned long long n = 0;
    if (open_existing(app, &q, dir, sizeof dir) == TEL_OK && q) {
        if (tel__queue_stats(q, &s) == TEL_OK)
            n = s.count;
        tel__queue_close(q);
    }
    return n;
}

/* "; 12 queued events deleted", or "" when there were none. */
static void deleted_text(unsigned long long n, char *out, size_t size)
{
    if (n)
        snprintf(out, size, "; %llu queued %s deleted", n, cli_noun(n, "event", "events"));
    else
        out[0] = '\0';
}

static int cmd_set(const args *a, int enabled)
{
    if (a->nrest)
        return cli_usage_error("%s: unexpected argument", a->command);
    unsigned long long queued = enabled ? 0 : queued_now(a->app);
    int rc = tel_set_enabled(a->app, enabled);
    if (rc < 0) {
        cli_error("cannot %s telemetry: %s: %s", a->command, tel_strerror(rc), tel_last_error());
        return EXIT_FAIL;
    }
    if (enabled) {
        /* Say so when a stronger opt-out still keeps it off. */
        tel_policy p;
        tel__policy_resolve(&p, a->app, NULL, NULL);
        explicit_bzero(p.token, sizeof p.token);
        if (!p.enabled)
            cli_error("enabled in telemetry.conf, but still off because of %s", p.enabled_why);
        else
            cli_error("telemetry for %s is now on", a->app);
        return EXIT_OK;
    }
    char deleted[64];
    deleted_text(queued, deleted, sizeof deleted);
    cli_error("telemetry for %s is now off%s", a->app, deleted);
    return EXIT_OK;
}

/* The erasure requests waiting for app (0 without a state directory). */
static size_t erasures_waiting(const char *app)
{
    char dir[TEL_PATH_MAX];
    erasure_status e = { 0 };
    if (tel__state_dir(app, dir, sizeof dir) != TEL_OK ||
        tel__erasure_each(dir, count_erasure, &e, NULL) != TEL_OK)
        return 0;
    return e.pending;
}

static int cmd_forget(const args *a)
{
    if (a->nrest)
        return cli_usage_error("forget: unexpected argument");
    unsigned long long queued = queued_now(a->app);
    size_t before = erasures_waiting(a->app);
    int rc = tel_forget(a->app);
    if (rc < 0) {
        cli_error("cannot forget: %s: %s", tel_strerror(rc), tel_last_error());
        return EXIT_FAIL;
    }
    char deleted[64];
    deleted_text(queued, deleted, sizeof deleted);
    cli_error("the anonymous id of %s is forgotten (the next event gets a new one)%s%s", a->app,
              deleted, erasures_waiting(a->app) > before
                           ? "; tel-sync will ask the collector to erase what it holds under it"
                           : "");
    return EXIT_OK;
}

/* -------------------------------------------------------------- notice */

/*
 * The first-run notice for hosts that are scripts: they call this before
 * their first `tel emit`, and the library's rules decide (on, not CI, not
 * shown before), so a script cannot get them wrong.
 */
static int cmd_notice(const args *a)
{
    if (a->nrest)
        return cli_usage_error("notice: unexpected argument");
    tel_options *o = tel_options_new(a->app);
    if (!o) {
        cli_error("notice: %s", tel_last_error());
        return EXIT_FAIL;
    }
    tel *h;
    int rc = tel_open(&h, o);
    if (rc == TEL_ERR_CONFIG)
        return EXIT_OK; /* telemetry counts as off: no notice is due */
    if (rc < 0) {
        cli_error("notice: %s: %s", tel_strerror(rc), tel_last_error());
        return EXIT_FAIL;
    }
    if (tel_notice_due(h)) {
        if (a->message)
            fprintf(stderr, "%s\n", a->message);
        else
            fprintf(stderr,
                    "%s collects anonymous usage data (event names, durations, versions; never\n"
                    "paths, names or argument values). See it with `tel show --app %s`; turn it\n"
                    "off with `tel disable --app %s` or DO_NOT_TRACK=1.\n",
                    a->app, a->app, a->app);
        rc = tel_notice_shown(h);
    } else {
        rc = TEL_OK;
    }
    tel_close(h);
    if (rc < 0) {
        cli_error("notice: %s: %s", tel_strerror(rc), tel_last_error());
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* ---------------------------------------------------------------- main */

/*
 * Takes one option into a; returns -1 to go on, or the exit code when the
 * option ends the program (--help, --version, a usage error).  Shared by
 * both scans, so every option may come before or after the command.
 */
static int take_option(int c, args *a, char **argv)
{
    switch (c) {
    case 'h': fputs(usage_text, stdout); return EXIT_OK;
    case 'V': return cli_version();
    case 'a': a->app = optarg; return -1;
    case OPT_APP_VERSION: a->app_version = optarg; return -1;
    case OPT_ENDPOINT: a->endpoint = optarg; return -1;
    case OPT_TOKEN: a->token = optarg; return -1;
    case OPT_JSON: a->json = 1; return -1;
    case OPT_SPAWN_SYNC: a->spawn_sync = 1; return -1;
    case OPT_MESSAGE: a->message = optarg; return -1;
    case OPT_ALL: a->all = 1; return -1;
    case OPT_DECLARE_ENV: return take_declaration(a, optarg);
    case OPT_DEFAULT_OFF: a->decls.default_off = 1; return -1;
    case OPT_OFFER_ERASURE: a->decls.erasure = 1; return -1;
    case OPT_INSPECT: a->inspect = optarg; return -1;
    case OPT_DEBUG: a->debug = 1; return -1;
    case OPT_STRICT: a->strict = 1; return -1;
    case 'v': a->verbose = 1; return -1;
    case OPT_EXEC_ID: a->exec_id = optarg; return -1;
    case OPT_PROJECT_SALT: a->project_salt = optarg; return -1;
    case OPT_PROJECT_LINKABLE: a->project_linkable = 1; return -1;
    case ':': return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
    default: return cli_usage_error("unknown option '%s'", argv[optind - 1]);
    }
}

int main(int argc, char **argv)
{
    cli_start("tel");
    args a = { 0 };
    int c, rc;
    /* getopt's own messages would make a second error line. */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:a:hVv", long_opts, NULL)) != -1)
        if ((rc = take_option(c, &a, argv)) >= 0)
            return rc;
    if (optind >= argc)
        return cli_usage_error("missing COMMAND (emit, metrics, show, status, enable, disable, "
                               "forget, notice, exec-id)");
    a.command = argv[optind];
    optind++;
    /* Options may follow the command, among its operands. */
    int nargc = argc - optind + 1;
    char **nargv = argv + optind - 1;
    /* 0, not 1: glibc then forgets the "+" (stop at the first operand) of
     * the first scan, so options may follow the command's operands too. */
    optind = 0;
    while ((c = getopt_long(nargc, nargv, ":a:hVv", long_opts, NULL)) != -1)
        if ((rc = take_option(c, &a, nargv)) >= 0)
            return rc;
    a.rest = nargv + optind;
    a.nrest = nargc - optind;

    static const char *const commands[] = { "emit", "metrics", "show", "status", "enable", "disable",
                                            "forget", "notice", "exec-id" };
    int known = 0;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        known |= strcmp(a.command, commands[i]) == 0;
    if (!known)
        return cli_usage_error("unknown command '%.32s'", a.command);
    if (a.all && strcmp(a.command, "status") != 0)
        return cli_usage_error("%s: --all goes with status", a.command);
    if (a.all && a.app)
        return cli_usage_error("status: --app and --all exclude each other");
    if (!a.app && !a.all)
        return cli_usage_error("%s: missing --app APP", a.command);
    if (a.app && tel__app_check(a.app) != TEL_OK)
        return cli_usage_error("%s", tel_last_error());
    if (strcmp(a.command, "emit") != 0 && strcmp(a.command, "metrics") != 0 &&
        (a.app_version || a.endpoint || a.token || a.decls.n || a.decls.default_off || a.decls.erasure ||
         a.inspect || a.debug || a.exec_id || a.project_salt || a.project_linkable))
        return cli_usage_error("%s: --app-version, --endpoint, --token, --declare-env, --default-off, "
                               "--offer-erasure, --inspect, --debug, --exec-id and --project-* go with "
                               "emit and metrics",
                               a.command);
    if (a.project_salt && a.project_linkable)
        return cli_usage_error("%s: --project-salt and --project-linkable exclude each other", a.command);
    if (strcmp(a.command, "status") != 0 && a.json)
        return cli_usage_error("%s: --json goes with status", a.command);
    if (a.spawn_sync && strcmp(a.command, "emit") != 0 && strcmp(a.command, "metrics") != 0)
        return cli_usage_error("%s: --spawn-sync goes with emit and metrics", a.command);
    if ((a.strict || a.verbose) && strcmp(a.command, "emit") != 0 && strcmp(a.command, "metrics") != 0)
        return cli_usage_error("%s: --strict and --verbose go with emit and metrics", a.command);
    if (a.message && strcmp(a.command, "notice") != 0)
        return cli_usage_error("%s: --message goes with notice", a.command);

    if (strcmp(a.command, "emit") == 0)
        return cmd_emit(&a);
    if (strcmp(a.command, "metrics") == 0)
        return cmd_metrics(&a);
    if (strcmp(a.command, "show") == 0)
        return cmd_show(&a);
    if (strcmp(a.command, "status") == 0)
        return cmd_status(&a);
    if (strcmp(a.command, "enable") == 0)
        return cmd_set(&a, 1);
    if (strcmp(a.command, "disable") == 0)
        return cmd_set(&a, 0);
    if (strcmp(a.command, "notice") == 0)
        return cmd_notice(&a);
    if (strcmp(a.command, "exec-id") == 0)
        return cmd_exec_id(&a);
    return cmd_forget(&a);
}
