/* SPDX-License-Identifier: MIT */
/*
 * cli/tel-sync.c - the command line of the sync engine (sync/): drains an
 * app's telemetry queue, or every app's, to its collector.
 *
 * Run from cron, a systemd timer or a detached post-command hook, so it
 * must be quiet on a normal day (offline, backed off, collector down all
 * exit 0), bounded in time and memory, and safe to kill at any instant
 * (sync/sync.h says how the engine makes that so).  One process per queue
 * (flock on sync.lock); a second one leaves at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"
#include "policy.h"
#include "sync.h"

#define EXIT_CONFIG 3         /* bad configuration: endpoint refused, config file malformed */

#define LOCK_FILE "sync.lock"

typedef struct options {
    const char *endpoint;
    const char *token;
    uint64_t max_time_ms;
    int force;
    int verbose;
    int quiet;
} options;

static const options *opt;

/*
 * The progress line of a drain, shown only when stderr is a terminal (a
 * person is watching) and not with -q: cron mail, journals and pipes
 * never see it.  It is rewritten in place after each accepted batch and
 * erased before any other line and at the end of the drain.
 */
typedef struct progress {
    int on, shown;
    const char *app;
    uint64_t t0;
} progress;

static progress bar;

static void progress_erase(void)
{
    if (bar.shown)
        fputs("\r\033[K", stderr);
    bar.shown = 0;
}

static void on_progress(void *ud, size_t sent, uint64_t queued)
{
    (void)ud;
    uint64_t ms = tel__mono_ms() - bar.t0;
    uint64_t rate = ms ? (uint64_t)sent * 1000 / ms : 0;
    uint64_t left = queued > sent ? queued - sent : 0;
    fprintf(stderr, "\r\033[K%s: %s: %zu / %" PRIu64 " %s sent, %" PRIu64 " events/s", cli_prog,
            bar.app, sent, queued, cli_noun(queued, "event", "events"), rate);
    if (left && rate)
        fprintf(stderr, ", about %" PRIu64 " s left", (left + rate - 1) / rate);
    fflush(stderr);
    bar.shown = 1;
}

/* Every message is one line on stderr, prefixed like cli_error's, so that
 * -v output and errors read the same in a cron mail or a journal. */
static void vline(const char *fmt, va_list ap)
{
    progress_erase();
    fprintf(stderr, "%s: ", cli_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* -v output, shown from the given level of -v up. */
static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...)
{
    if (opt->quiet || opt->verbose < level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

/* A real error: printed unless -q. */
static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
    if (opt->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vline(fmt, ap);
    va_end(ap);
}

/* The engine's notes are -v output. */
static void on_note(void *ud, int level, const char *line)
{
    (void)ud;
    say(level, "%s", line);
}

/* The transport behind the engine's send function. */
static int post(void *ud, const uint8_t id[TEL_ID_LEN], const void *gz, size_t len,
                uint64_t timeout_ms, tel_upload_result *res)
{
    return tel__upload_post(ud, id, gz, len, timeout_ms, res);
}

/*
 * Appends "sent: {event}" for each record of a batch the collector just
 * accepted, to the audit log file the host declared and the user named in
 * our environment (TEL_ENV_LOG_FILE; *ud is its descriptor): the same
 * lines the library wrote as "recorded: " when they were queued, so the
 * file shows both ends.  A failed write is dropped.
 */
static void audit_sent(void *ud, const uint8_t *rec, size_t len)
{
    int audit_fd = *(const int *)ud;
    tel_record r;
    tel_buf line = TEL_BUF_INIT;
    if (tel__record_decode(&r, rec, len) == TEL_OK && tel__buf_puts(&line, "sent: ") == 0 &&
        tel__record_json(&r, &line) == TEL_OK && tel__buf_append(&line, "\n", 1) == 0 &&
        write(audit_fd, line.p, line.len) < 0) {
        /* dropped, as above */
    }
    tel__buf_free(&line);
}

/* DEBUG and INSPECT: show the batches a drain would send, change nothing. */
static int dry_run(tel_queue *q, tel_sync_batch *b, const tel_policy *pol, const char *app,
                   uint64_t deadline)
{
    FILE *out = stderr;
    if (pol->inspect[0]) {
        /* Never through a symlink, never a FIFO that would outlast the
         * run's deadline: a regular file or nothing. */
        int fd = tel__open_file(pol->inspect, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd < 0 || !(out = fdopen(fd, "a"))) {
            int err = errno;
            if (fd >= 0)
                close(fd);
            complain("%s: cannot open the inspect file: %s", app, tel__open_file_why(err));
            return EXIT_FAIL;
        }
    }
    size_t batches, events;
    int rc = tel__sync_dry_run(q, b, out, deadline, &batches, &events);
    if (out != stderr && fclose(out) != 0 && rc == TEL_OK)
        rc = tel__fail(TEL_ERR_IO, "could not write the inspect output");
    if (rc != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return EXIT_FAIL;
    }
    say(1, "%s: %s: %zu %s, %zu %s shown, nothing sent", app,
        pol->inspect[0] ? "inspect" : "debug", batches, cli_noun(batches, "batch", "batches"),
        events, cli_noun(events, "event", "events"));
    return EXIT_OK;
}

/* Sends what the queue holds to pol's collector. */
static int deliver(tel_queue *q, tel_sync_batch *b, tel_policy *pol, const char *app,
                   uint64_t deadline)
{
    tel_upload *up;
    int rc = tel__upload_new(&up, pol->endpoint, pol->token[0] ? pol->token : NULL);
    explicit_bzero(pol->token, sizeof pol->token);
    if (rc != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return EXIT_FAIL;
    }
    int audit_fd = -1;
    if (pol->log_file)
        audit_fd = tel__open_file(pol->log_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
    tel_sync_io io = { post, up, on_note, NULL, audit_fd >= 0 ? audit_sent : NULL, &audit_fd,
                       NULL, NULL, pol->endpoint };
    uint64_t t0 = tel__mono_ms();
    bar = (progress){ !opt->quiet && isatty(STDERR_FILENO), 0, app, t0 };
    if (bar.on)
        io.progress = on_progress;
    tel_sync_stats ds = { 0 };
    rc = tel__sync_drain(q, b, &io, app, deadline, &ds);
    progress_erase();
    tel__upload_free(up);
    if (audit_fd >= 0)
        close(audit_fd);
    if (rc != TEL_OK)
        complain("%s: %s", app, tel_last_error());
    /* After a failure with nothing sent, the failure's own line says it. */
    if (ds.batches || (rc == TEL_OK && !ds.backed_off))
        say(1, "%s: sent %zu %s in %zu %s (%zu bytes gzip) in %" PRIu64 " ms%s", app, ds.events,
            cli_noun(ds.events, "event", "events"), ds.batches,
            cli_noun(ds.batches, "batch", "batches"), ds.wire, tel__mono_ms() - t0,
            ds.dropped ? ", some dropped" : "");
    return rc == TEL_OK ? EXIT_OK : EXIT_FAIL;
}

/* ---------------------------------------------------------------- apps */

/* Takes the queue's single-flight lock; returns the fd, -1 when another
 * process holds it, -2 on error. */
static int take_lock(const char *qdir)
{
    char path[TEL_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" LOCK_FILE, qdir);
    int fd = tel__open_file(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return -2;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? -1 : -2;
    }
    return fd;
}

/* A wait longer than any the engine sets means the clock went back: it
 * is ignored rather than stalling for the size of the jump. */
static int deferred(tel_queue *q, const char *app)
{
    tel_backoff bo;
    if (opt->force || tel__backoff_load(q, &bo) != TEL_OK)
        return 0;
    uint64_t now = tel__now_ms();
    if (bo.until_ms <= now || bo.until_ms - now > TEL_BACKOFF_MAX_MS + 60000)
        return 0;
    say(1, "%s: deferred: next attempt in %" PRIu64 " s (attempt %" PRIu32 ", last: %s)", app,
        (bo.until_ms - now + 999) / 1000, bo.attempt, bo.reason);
    return 1;
}

/*
 * What to do with the open, locked queue of app: purge it when telemetry
 * is off (*wipe then asks the caller to remove its files), show it for
 * DEBUG and INSPECT, wait out a backoff, or deliver.  Returns an exit code.
 */
static int sync_queue(tel_queue *q, const char *state, const char *app, uint64_t deadline,
                      tel_sync_batch *b, int *wipe)
{
    /* The host's declared variables are read from our own environment:
     * a cron job sees the user's crontab settings, not the shell's. */
    static tel_decls decls;
    int rc = tel__decls_load(state, &decls);
    if (rc == TEL_ERR_CORRUPT) {
        /* It may declare an opt-out we cannot read: as for a malformed
         * telemetry.conf, send nothing and delete nothing. */
        complain("%s: %s", app, tel_last_error());
        return EXIT_CONFIG;
    }
    tel_flag_settings flags = {
        .enabled = -1, .endpoint = opt->endpoint, .token = opt->token, .logging = -1,
    };
    static tel_policy pol;
    rc = tel__policy_for_queue(&pol, q, app, rc == TEL_OK ? &decls : NULL, &flags);
    if (rc != TEL_OK && rc != TEL_DISABLED) {
        /* A broken config file may hold an opt-out we cannot read: send
         * nothing, but do not purge on a guess either. */
        complain("%s: %s", app, tel_last_error());
        return rc == TEL_ERR_CONFIG ? EXIT_CONFIG : EXIT_FAIL;
    }
    if (!pol.enabled && !pol.opted_out) {
        /* Off by the host's default, with no "on" from the user in our
         * environment: what an earlier run recorded (when the user had
         * said on) waits; it is neither sent nor deleted. */
        explicit_bzero(pol.token, sizeof pol.token);
        say(1, "%s: telemetry is off (%s); nothing sent, the queue is kept", app,
            pol.enabled_why[0] ? pol.enabled_why : tel__source_name(pol.enabled_src));
        return EXIT_OK;
    }
    if (!pol.enabled) {
        explicit_bzero(pol.token, sizeof pol.token);
        if (tel__queue_purge(q) != TEL_OK) {
            complain("%s: %s", app, tel_last_error());
            return EXIT_FAIL;
        }
        say(1, "%s: telemetry is off (%s); queue purged, nothing sent", app,
            pol.enabled_why[0] ? pol.enabled_why : tel__source_name(pol.enabled_src));
        *wipe = 1;
        return EXIT_OK;
    }
    int code = EXIT_OK;
    tel_queue_stats st;
    if (tel__queue_stats(q, &st) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        code = EXIT_FAIL;
    } else if (pol.debug || pol.inspect[0]) {
        code = dry_run(q, b, &pol, app, deadline);
    } else if (st.count == 0) {
        say(1, "%s: nothing queued", app);
    } else if (pol.problem[0]) {
        /* A setting given but unusable (a control character, too long)
         * is refused loudly: falling back on a weaker one would send
         * elsewhere. */
        complain("%s: %s", app, pol.problem);
        code = EXIT_CONFIG;
    } else if (tel__endpoint_check(pol.endpoint) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        code = EXIT_CONFIG;
    } else if (!deferred(q, app)) {
        return deliver(q, b, &pol, app, deadline);
    }
    explicit_bzero(pol.token, sizeof pol.token);
    return code;
}

/* Keeps the worst of several outcomes (apps, or an app's erasure requests
 * and its queue): a config error outranks a local failure, which
 * outranks success. */
static int worse(int a, int b)
{
    static const int rank[] = { [EXIT_OK] = 0, [EXIT_FAIL] = 2, [EXIT_USAGE] = 1, [EXIT_CONFIG] = 3 };
    return rank[b] > rank[a] ? b : a;
}

/* ------------------------------------------------------------ erasure */

typedef struct erase_ctx {
    const char *app;
    const tel_decls *decls;
} erase_ctx;

/*
 * The transport of one erasure request.  The endpoint and token recorded
 * with it stand where the host's would (the user's config, environment
 * and flags still win), and it gets a connection of its own, opened and
 * closed for it: a kept-alive one would tie it to the batches of the new
 * id that follow.  Whether telemetry is on is not asked: see sync_app.
 */
static int post_erasure(void *ud, const tel_erasure_req *r, const void *gz, size_t len,
                        uint64_t timeout_ms, tel_upload_result *res)
{
    const erase_ctx *c = ud;
    tel_host_settings host = { -1, TEL_SRC_HOST, r->endpoint[0] ? r->endpoint : NULL,
                               r->token[0] ? r->token : NULL, -1, c->decls, TEL_ERRORS_CLASS };
    tel_flag_settings flags = {
        .enabled = -1, .endpoint = opt->endpoint, .token = opt->token, .logging = -1,
    };
    static tel_policy pol;
    int rc = tel__policy_resolve(&pol, c->app, &host, &flags);
    if (rc == TEL_OK || rc == TEL_DISABLED) {
        if (pol.problem[0])
            rc = tel__fail(TEL_ERR_CONFIG, "%s", pol.problem);
        else if (tel__endpoint_check(pol.endpoint) != TEL_OK)
            rc = TEL_ERR_CONFIG;
        else
            rc = TEL_OK;
    }
    tel_upload *up = NULL;
    if (rc == TEL_OK)
        rc = tel__upload_new(&up, pol.endpoint, pol.token[0] ? pol.token : NULL);
    explicit_bzero(pol.token, sizeof pol.token);
    if (rc == TEL_OK)
        rc = tel__upload_post_erasure(up, gz, len, timeout_ms, res);
    tel__upload_free(up);
    return rc;
}

/*
 * Sends the erasure requests a forget left for app, before its events:
 * a collector that has erased the old id drops any late batch of it, so
 * nothing of that id outlives the request whatever the order of what is
 * still on its way.  They go even when telemetry is now off: a request
 * is the user's own wish to erase, carries nothing the collector does
 * not hold already, and is the only way that wish is carried out.  Not
 * in DEBUG or INSPECT runs (nothing is sent there), nor while the host's
 * declarations cannot be read (they may name either).  Returns an exit
 * code.
 */
static int send_erasures(const char *state, const char *app, uint64_t deadline)
{
    static tel_decls decls;
    int drc = tel__decls_load(state, &decls);
    if (drc == TEL_ERR_CORRUPT)
        return EXIT_OK;       /* sync_queue says why, and sends nothing either */
    erase_ctx c = { app, drc == TEL_OK ? &decls : NULL };
    static tel_policy pol;
    tel_host_settings host = { -1, TEL_SRC_HOST, NULL, NULL, -1, c.decls, TEL_ERRORS_CLASS };
    int prc = tel__policy_resolve(&pol, app, &host, NULL);
    explicit_bzero(pol.token, sizeof pol.token);
    if (prc == TEL_ERR_CONFIG || pol.debug || pol.inspect[0]) {
        say(1, "%s: erasure requests are kept: %s", app,
            prc == TEL_ERR_CONFIG ? "telemetry.conf has an error" : "a debug or inspect run sends nothing");
        return EXIT_OK;
    }
    tel_erase_io io = { post_erasure, &c, on_note, NULL };
    tel_erase_stats es;
    int rc = tel__sync_erasures(state, &io, app, deadline, opt->force, &es);
    if (rc != TEL_OK) {
        complain("%s: erasure request: %s", app, tel_last_error());
        return rc == TEL_ERR_CONFIG ? EXIT_CONFIG : EXIT_FAIL;
    }
    return EXIT_OK;
}

/* One app: send its erasure requests, open its queue, take the lock,
 * sync, and after an opt-out remove what is left on disk.  Returns an
 * exit code. */
static int sync_app(const char *app, uint64_t deadline, tel_sync_batch *b)
{
    char state[TEL_PATH_MAX];
    /* Each app's errors are its own: a detail left by the app before is
     * never printed for this one. */
    tel__clear_error();
    if (tel__app_check(app) != TEL_OK) {
        complain("%s", tel_last_error());
        return EXIT_USAGE;
    }
    if (tel__state_dir(app, state, sizeof state) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return EXIT_FAIL;
    }
    int code = send_erasures(state, app, deadline);
    tel_queue *q;
    int rc = tel__queue_open(&q, state, NULL, 0);
    if (rc == TEL_ERR_NOTFOUND) {
        say(1, "%s: nothing queued", app);
        return code;
    }
    if (rc != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return worse(code, EXIT_FAIL);
    }
    int wipe = 0;
    if (tel__queue_recovered(q))
        complain("%s: the queue was damaged; kept aside as %s, a fresh queue started", app,
                 tel__queue_recovered(q));
    int lock = take_lock(tel__queue_dir(q));
    if (lock == -1) {
        say(1, "%s: another tel-sync is draining this queue", app);
    } else if (lock < 0) {
        complain("%s: cannot take the sync lock: %s", app, strerror(errno));
        code = worse(code, EXIT_FAIL);
    } else {
        code = worse(code, sync_queue(q, state, app, deadline, b, &wipe));
    }
    tel__queue_close(q);
    /* Purged pages still hold the old bytes until LMDB reuses them:
     * remove the files too, once our own handle is closed, and the cookie,
     * as every opt-out does. */
    if (wipe && (tel__queue_wipe(state) != TEL_OK || tel__cookie_delete(state) != TEL_OK))
        complain("%s: %s", app, tel_last_error());
    if (lock >= 0)
        close(lock);
    return code;
}

typedef struct sync_all_ctx {
    uint64_t deadline;
    tel_sync_batch *b;
    int code;
} sync_all_ctx;

static void sync_one_of_all(void *ud, const char *app)
{
    sync_all_ctx *c = ud;
    if (tel__mono_ms() + TEL_SYNC_MIN_REQUEST_MS > c->deadline)
        say(1, "%s: out of time; skipped", app);
    else
        c->code = worse(c->code, sync_app(app, c->deadline, c->b));
}

static int sync_all(uint64_t deadline, tel_sync_batch *b)
{
    sync_all_ctx c = { deadline, b, EXIT_OK };
    if (tel__each_app(sync_one_of_all, &c) != TEL_OK) {
        complain("%s", tel_last_error());
        return EXIT_FAIL;
    }
    return c.code;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    printf("Usage: tel-sync (--app APP | --all) [options]\n"
           "\n"
           "Uploads the telemetry events queued by APP (or by every app) to its\n"
           "collector, in gzip batches, deleting them once the collector accepts them.\n"
           "\n"
           "  --app APP        drain APP's queue\n"
           "  --all            drain every app's queue under the state directory\n"
           "  --endpoint URL   collector URL (https://, or http:// to a loopback host)\n"
           "  --token T        bearer token sent to the collector\n"
           "  --max-time SEC   bound on the whole run (default 30); reaching it is no\n"
           "                   failure: the next run goes on, with no backoff\n"
           "  --force          ignore a pending backoff and try now\n"
           "  -v, --verbose    say what happens; twice: every batch\n"
           "  -q, --quiet      print nothing, not even errors (nor, on a terminal,\n"
           "                   the progress line: events sent / queued, rate, time left)\n"
           "  -h, --help       this help\n"
           "  -V, --version    print the version\n"
           "\n"
           "Exit status:\n"
           "  0  sent, nothing to do, or deferred (offline, backing off, collector\n"
           "     refused with 401/403/404; see `tel status`)\n"
           "  1  local failure (the queue could not be read or written, or the output)\n"
           "  2  bad usage\n"
           "  3  bad configuration (endpoint neither https nor loopback, an endpoint or\n"
           "     token over its length or with a control character, config file\n"
           "     malformed); nothing was sent or deleted\n");
}

int main(int argc, char **argv)
{
    cli_start("tel-sync");
    /* Peak memory is bounded at 16 MiB whatever the queue holds, so the
     * allocator must give back what a batch or a queue reopen used: one
     * arena (the prefetch thread would otherwise get its own), and large
     * blocks (LMDB's 2 MiB per open, batch buffers) always mapped and
     * unmapped, never kept in a heap that grows by its high-water mark. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    static options o = { NULL, NULL, 30000, 0, 0, 0 };
    opt = &o;
    const char *app = NULL;
    int all = 0;
    enum { OPT_APP = 256, OPT_ALL, OPT_ENDPOINT, OPT_TOKEN, OPT_MAXTIME, OPT_FORCE };
    static const struct option longs[] = {
        { "app", required_argument, NULL, OPT_APP },
        { "all", no_argument, NULL, OPT_ALL },
        { "endpoint", required_argument, NULL, OPT_ENDPOINT },
        { "token", required_argument, NULL, OPT_TOKEN },
        { "max-time", required_argument, NULL, OPT_MAXTIME },
        { "force", no_argument, NULL, OPT_FORCE },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    unsigned long long secs;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vqhV", longs, NULL)) != -1) {
        switch (c) {
        case OPT_APP: app = optarg; break;
        case OPT_ALL: all = 1; break;
        case OPT_ENDPOINT: o.endpoint = optarg; break;
        case OPT_TOKEN: o.token = optarg; break;
        case OPT_MAXTIME:
            if (cli_parse_uint(optarg, 86400, &secs) != 0 || secs == 0)
                return cli_usage_error("--max-time wants whole seconds from 1 to 86400");
            o.max_time_ms = secs * 1000;
            break;
        case OPT_FORCE: o.force = 1; break;
        case 'v': o.verbose++; break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(); return EXIT_OK;
        case 'V': return cli_version();
        case ':':
            return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                return cli_usage_error("unknown option '-%c'", optopt);
            return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (!app == !all)
        return cli_usage_error(all ? "--app and --all exclude each other"
                                   : "say which app: --app APP, or --all");
    if (app && tel__app_check(app) != TEL_OK)
        return cli_usage_error("%s", tel_last_error());
    if (o.endpoint && tel__endpoint_check(o.endpoint) != TEL_OK) {
        complain("%s", tel_last_error());
        return EXIT_CONFIG;
    }
    if (o.token && tel__setting_check("--token", o.token, 512) != TEL_OK)
        return cli_usage_error("%s", tel_last_error());

    /* A collector closing the connection under us must be an error code
     * from libcurl, not a signal that kills the run mid-batch. */
    signal(SIGPIPE, SIG_IGN);
    uint64_t deadline = tel__mono_ms() + o.max_time_ms;
    tel_sync_batch *b = tel__sync_batch_new();
    if (!b) {
        complain("out of memory");
        return EXIT_FAIL;
    }
    int code = app ? sync_app(app, deadline, b) : sync_all(deadline, b);
    tel__sync_batch_free(b);
    return code;
}
