/* SPDX-License-Identifier: MIT */
/*
 * collector/main.c - tel-collect, the reference collector: command line,
 * start-up, signals and retention.
 *
 * tel-collect takes the gzip'd MessagePack batches tel-sync uploads,
 * checks them as strictly as format/SPEC.md says, and stores every event
 * once in a database (SQLite by default, PostgreSQL when several
 * collectors share one), committed before the 200 goes out; optionally it
 * also appends each new event as one JSON line to a file.
 *
 * It is also the endpoint of the demo and of the tests, and a
 * misbehaving server on demand (--status, --drop, --delay, --fail-*), so
 * that tel-sync's retry and backoff rules can be tested against a real
 * socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "dash_store.h"
#include "common.h"
#include "internal.h"

#define DEFAULT_PORT 8787
#define DEFAULT_MAX_BODY (1024u * 1024u)
#define DEFAULT_HEADER_TIMEOUT 10u
#define DEFAULT_BODY_TIMEOUT 30u
#define DEFAULT_MAX_PER_IP 64u
#define MAX_REMEMBER 50000000u
/* Retention: events deleted per transaction, the pause between two, and
 * the pause between two sweeps. */
#define RETAIN_STEP 500u
#define RETAIN_PAUSE_MS 20
#define RETAIN_EVERY_MS (10 * 60 * 1000)

collector_config tel__cfg = {
    .listen = "127.0.0.1",
    .port = DEFAULT_PORT,
    .max_body = DEFAULT_MAX_BODY,
    .seed = 1,
    .header_timeout = DEFAULT_HEADER_TIMEOUT,
    .body_timeout = DEFAULT_BODY_TIMEOUT,
    .max_per_ip = DEFAULT_MAX_PER_IP,
    .min_installs = 5,
};
tel_store *tel__store;

static void usage(void)
{
    printf(
        "usage: tel-collect [OPTIONS]\n"
        "       tel-collect report --db URL [--app A] [--since 7d] [--json] ...\n"
        "\n"
        "The reference collector of tel: receives the batches tel-sync uploads\n"
        "(POST, any path) and stores each new event once in a database.\n"
        "\n"
        "Storing:\n"
        "  --db URL             sqlite:PATH or postgresql://USER@HOST:PORT/DB (default:\n"
        "                       sqlite:$XDG_STATE_HOME/tel-collect/events.db)\n"
        "  --out FILE           also append each new event as a JSON line to FILE\n"
        "                       ('-': stdout); SIGHUP reopens it\n"
        "  --retain-days N      delete events older than N days (default: keep)\n"
        "  --remember N         accepted for old command lines; duplicates are\n"
        "                       found by the database\n"
        "\n"
        "Serving:\n"
        "  --listen ADDR        IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
        "  --port N             TCP port (default %u; 0 picks a free one)\n"
        "  --port-file FILE     write the port there once listening (atomically)\n"
        "  --token T            require 'Authorization: Bearer T' (else 401)\n"
        "  --token-file FILE    read the token from FILE's first line instead\n"
        "  --max-body BYTES     largest compressed body (default %u; else 413)\n"
        "  --header-timeout S   seconds a request's headers may take (default %u)\n"
        "  --body-timeout S     seconds a request's body may take (default %u)\n"
        "  --max-per-ip N       connections per client address (default %u; 0: any)\n"
        "\n"
        "Dashboard:\n"
        "  --min-installs K     show no number, nor name, backed by fewer than K\n"
        "                       installs (1-20, default 5): such a cell reads \"< K\",\n"
        "                       such names fold into one \"other\" row\n"
        "\n"
        "Fault injection (all off by default; checked in this order):\n"
        "  --fail-first N       answer 503 to the first N POSTs\n"
        "  --fail-rate P        answer 503 to a fraction P (0..1) of POSTs\n"
        "  --seed N             seed of --fail-rate's generator (default 1)\n"
        "  --drop               read each request, then close without answering\n"
        "  --status CODE        answer CODE (200-599) to every POST, storing nothing\n"
        "  --retry-after VALUE  add 'Retry-After: VALUE' to every answer\n"
        "  --delay MS           wait MS milliseconds before every answer\n"
        "  --exit-after N       exit 0 once N distinct events were stored\n"
        "\n"
        "Other:\n"
        "  -q, --quiet          no summary line on exit\n"
        "  -v, --verbose        one stderr line per request (-vv: also server errors)\n"
        "  -h, --help           this help\n"
        "  -V, --version        print the version\n"
        "\n"
        "Answers: 200 {\"accepted\":N,\"duplicates\":M} once the batch is committed;\n"
        "400 malformed batch, bad gzip, missing or mismatched Idempotency-Key, two\n"
        "Content-Length headers; 401 token; 405 not POST; 413 too large; 415 wrong\n"
        "Content-Type or Content-Encoding; 503 with Retry-After when the database\n"
        "or the --out file cannot be written (the client keeps its events); 500 out\n"
        "of memory.\n"
        "POST with Content-Type application/vnd.tel.erasure+msgpack: an erasure\n"
        "request; every stored event of its anonymous id is deleted and later\n"
        "batches of it are dropped; 200 {\"erased\":N}.\n"
        "GET /metrics: what was received, as Prometheus text (counters, and the\n"
        "latest value of every received metric series as a gauge; with --token,\n"
        "the token is required there too).\n"
        "GET /: the usage dashboard of what the database holds (HTML; filters in\n"
        "the query string: app, version, from, to, ci; the token as for /metrics).\n"
        "'tel-collect report --help' tells how to print the same answers.\n"
        "\n"
        "Exit status: 0 stopped by SIGTERM, SIGINT, SIGUSR1 or --exit-after; 1 could\n"
        "not start (open --db, listen, open --out, read --token-file, write\n"
        "--port-file, no memory or random numbers); 2 bad command line.\n",
        DEFAULT_PORT, DEFAULT_MAX_BODY, DEFAULT_HEADER_TIMEOUT, DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_PER_IP);
}

static int read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("cannot read --token-file: %s", strerror(errno));
        return -1;
    }
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        cli_error("--token-file is empty");
        return -1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    free(tel__cfg.token);
    tel__cfg.token = strdup(line);
    return tel__cfg.token ? 0 : -1;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[TEL_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char num[16];
    int n = snprintf(num, sizeof num, "%u\n", port);
    if (cli_write_all(fd, num, (size_t)n) != 0 || close(fd) != 0) {
        unlink(tmp);
        return -1;
    }
    /* rename is atomic: a reader sees no file or the whole number. */
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Binds the listening socket ourselves, so that a failure can be reported
 * with its real cause, and the chosen port read back for --port 0. */
static int open_listener(int *fd_out, unsigned *port_out, int *v6_out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, tel__cfg.listen, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)tel__cfg.port);
        len = sizeof *a4;
        *v6_out = 0;
    } else {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)tel__cfg.port);
        inet_pton(AF_INET6, tel__cfg.listen, &a6->sin6_addr);   /* checked in parse_args */
        len = sizeof *a6;
        *v6_out = 1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &(socklen_t){ sizeof ss }) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    *port_out = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    *fd_out = fd;
    return 0;
}

/* ------------------------------------------------------------ the database */

/* mkdir -p of the directories above path, private to the user. */
static int make_parents(char *path)
{
    for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int rc = mkdir(path, 0700);
        *s = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* sqlite:$XDG_STATE_HOME/tel-collect/events.db, its directory created. */
static int default_db(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char path[TEL_PATH_MAX];
    int n = state && state[0] == '/' ? snprintf(path, sizeof path, "%s/tel-collect/events.db", state)
            : home && *home          ? snprintf(path, sizeof path, "%s/.local/state/tel-collect/events.db", home)
                                     : -1;
    if (n < 0 || n >= (int)sizeof path) {
        cli_error("no --db given and neither XDG_STATE_HOME nor HOME is set");
        return -1;
    }
    if (make_parents(path) != 0) {
        cli_error("cannot create the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen("sqlite:") + strlen(path) + 1;
    if (!(tel__cfg.db_url = malloc(len)))
        return -1;
    snprintf(tel__cfg.db_url, len, "sqlite:%s", path);
    return 0;
}

/* Deletes events past --retain-days in steps of RETAIN_STEP, each its own
 * short transaction with a pause after it, so uploads wait at most one
 * step; then sleeps until the next sweep or until told to stop. */
static pthread_mutex_t retain_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t retain_cond = PTHREAD_COND_INITIALIZER;
static int retain_stop;

static int retain_wait(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&retain_lock);
    while (!retain_stop && pthread_cond_timedwait(&retain_cond, &retain_lock, &until) == 0)
        ;
    int stop = retain_stop;
    pthread_mutex_unlock(&retain_lock);
    return stop;
}

static void *retain(void *arg)
{
    (void)arg;   /* pthread's thread shape */
    do {
        int64_t before = (int64_t)tel__now_ms() - (int64_t)tel__cfg.retain_days * 86400000;
        uint64_t deleted;
        int more;
        do {
            if (store_expire(tel__store, before, RETAIN_STEP, &deleted, &more) != 0) {
                if (tel__cfg.verbose)
                    fprintf(stderr, "%s: retention: %s\n", cli_prog, store_error());
                break;
            }
        } while (more && !retain_wait(RETAIN_PAUSE_MS));
    } while (!retain_wait(RETAIN_EVERY_MS));
    return NULL;
}

/* ------------------------------------------------------------ command line */

enum {
    OPT_LISTEN = 256, OPT_PORT, OPT_PORT_FILE, OPT_OUT, OPT_TOKEN, OPT_TOKEN_FILE,
    OPT_MAX_BODY, OPT_REMEMBER, OPT_STATUS, OPT_RETRY_AFTER, OPT_DELAY, OPT_DROP,
    OPT_FAIL_RATE, OPT_SEED, OPT_FAIL_FIRST, OPT_EXIT_AFTER, OPT_DB, OPT_RETAIN_DAYS,
    OPT_HEADER_TIMEOUT, OPT_BODY_TIMEOUT, OPT_MAX_PER_IP, OPT_MIN_INSTALLS
};

static const struct option long_opts[] = {
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "port", required_argument, NULL, OPT_PORT },
    { "port-file", required_argument, NULL, OPT_PORT_FILE },
    { "out", required_argument, NULL, OPT_OUT },
    { "db", required_argument, NULL, OPT_DB },
    { "retain-days", required_argument, NULL, OPT_RETAIN_DAYS },
    { "token", required_argument, NULL, OPT_TOKEN },
    { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
    { "max-body", required_argument, NULL, OPT_MAX_BODY },
    { "header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT },
    { "body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT },
    { "max-per-ip", required_argument, NULL, OPT_MAX_PER_IP },
    { "min-installs", required_argument, NULL, OPT_MIN_INSTALLS },
    { "remember", required_argument, NULL, OPT_REMEMBER },
    { "status", required_argument, NULL, OPT_STATUS },
    { "retry-after", required_argument, NULL, OPT_RETRY_AFTER },
    { "delay", required_argument, NULL, OPT_DELAY },
    { "drop", no_argument, NULL, OPT_DROP },
    { "fail-rate", required_argument, NULL, OPT_FAIL_RATE },
    { "seed", required_argument, NULL, OPT_SEED },
    { "fail-first", required_argument, NULL, OPT_FAIL_FIRST },
    { "exit-after", required_argument, NULL, OPT_EXIT_AFTER },
    { "quiet", no_argument, NULL, 'q' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 }
};

/* A whole number from 1 to max into *out; else the usage error's code. */
static int positive(const char *opt, unsigned long long max, unsigned *out)
{
    unsigned long long v;
    if (cli_parse_uint(optarg, max, &v) != 0 || v == 0)
        return cli_usage_error("%s takes a number from 1 to %llu", opt, max);
    *out = (unsigned)v;
    return -1;
}

/* The options about storing and serving; -1 to go on, else an exit code. */
static int parse_serving(int opt)
{
    unsigned long long v;
    switch (opt) {
    case OPT_LISTEN: {
        struct in6_addr any;
        if (inet_pton(AF_INET, optarg, &any) != 1 && inet_pton(AF_INET6, optarg, &any) != 1)
            return cli_usage_error("--listen takes an IPv4 or IPv6 address, not '%s'", optarg);
        tel__cfg.listen = optarg;
        return -1;
    }
    case OPT_PORT:
        if (cli_parse_uint(optarg, 65535, &v) != 0)
            return cli_usage_error("--port takes a number from 0 to 65535");
        tel__cfg.port = (unsigned)v;
        return -1;
    case OPT_PORT_FILE: tel__cfg.port_file = optarg; return -1;
    case OPT_OUT: tel__cfg.out = optarg; return -1;
    case OPT_DB:
        if (strncmp(optarg, "sqlite:", 7) != 0 && strncmp(optarg, "postgresql://", 13) != 0 &&
            strncmp(optarg, "postgres://", 11) != 0)
            return cli_usage_error("--db takes sqlite:PATH or postgresql://USER@HOST:PORT/DB");
        free(tel__cfg.db_url);
        tel__cfg.db_url = strdup(optarg);
        return -1;
    case OPT_RETAIN_DAYS: return positive("--retain-days", 36500, &tel__cfg.retain_days);
    case OPT_MIN_INSTALLS: return positive("--min-installs", DASH_K_MAX, &tel__cfg.min_installs);
    case OPT_TOKEN:
        if (!*optarg)
            return cli_usage_error("--token must not be empty");
        free(tel__cfg.token);
        tel__cfg.token = strdup(optarg);
        return -1;
    case OPT_MAX_BODY:
        if (cli_parse_uint(optarg, 1ull << 40, &v) != 0 || v == 0)
            return cli_usage_error("--max-body takes a positive number of bytes");
        tel__cfg.max_body = v;
        return -1;
    case OPT_HEADER_TIMEOUT: return positive("--header-timeout", 3600, &tel__cfg.header_timeout);
    case OPT_BODY_TIMEOUT: return positive("--body-timeout", 3600, &tel__cfg.body_timeout);
    case OPT_MAX_PER_IP:
        if (cli_parse_uint(optarg, 100000, &v) != 0)
            return cli_usage_error("--max-per-ip takes a number from 0 to 100000");
        tel__cfg.max_per_ip = (unsigned)v;
        return -1;
    case OPT_REMEMBER:
        if (cli_parse_uint(optarg, MAX_REMEMBER, &v) != 0 || v == 0)
            return cli_usage_error("--remember takes a number from 1 to %u", MAX_REMEMBER);
        return -1;
    }
    return -2;
}

/* The fault injection options; -1 to go on, else an exit code. */
static int parse_faults(int opt)
{
    unsigned long long v;
    switch (opt) {
    case OPT_STATUS:
        if (cli_parse_uint(optarg, 599, &v) != 0 || v < 200)
            return cli_usage_error("--status takes an HTTP status from 200 to 599");
        tel__cfg.status = (unsigned)v;
        return -1;
    case OPT_RETRY_AFTER:
        for (const char *s = optarg; *s; s++)
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                return cli_usage_error("--retry-after must not hold control characters");
        if (!*optarg)
            return cli_usage_error("--retry-after must not be empty");
        tel__cfg.retry_after = optarg;
        return -1;
    case OPT_DELAY:
        if (cli_parse_uint(optarg, 3600000, &v) != 0)
            return cli_usage_error("--delay takes milliseconds, at most 3600000");
        tel__cfg.delay_ms = v;
        return -1;
    case OPT_DROP: tel__cfg.drop = 1; return -1;
    case OPT_FAIL_RATE: {
        char *end;
        errno = 0;
        double p = strtod(optarg, &end);
        if (errno || end == optarg || *end || !(p >= 0.0 && p <= 1.0))
            return cli_usage_error("--fail-rate takes a number from 0 to 1");
        tel__cfg.fail_rate = p;
        return -1;
    }
    case OPT_SEED:
        if (cli_parse_uint(optarg, ~0ull, &v) != 0)
            return cli_usage_error("--seed takes a non-negative number");
        tel__cfg.seed = v;
        return -1;
    case OPT_FAIL_FIRST:
        if (cli_parse_uint(optarg, ~0ull, &v) != 0)
            return cli_usage_error("--fail-first takes a non-negative number");
        tel__cfg.fail_first = v;
        return -1;
    case OPT_EXIT_AFTER:
        if (cli_parse_uint(optarg, ~0ull, &v) != 0 || v == 0)
            return cli_usage_error("--exit-after takes a positive number");
        tel__cfg.exit_after = v;
        return -1;
    }
    return -2;
}

/* Parses the command line into tel__cfg; returns -1 to go on, else an
 * exit code. */
static int parse_args(int argc, char **argv)
{
    const char *token_file = NULL;
    int opt, rc;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":qvhV", long_opts, NULL)) != -1) {
        if ((rc = parse_serving(opt)) != -2 || (rc = parse_faults(opt)) != -2) {
            if (rc >= 0)
                return rc;
            continue;
        }
        switch (opt) {
        case OPT_TOKEN_FILE: token_file = optarg; break;
        case 'q': tel__cfg.quiet = 1; break;
        case 'v': tel__cfg.verbose++; break;
        case 'h': usage(); return EXIT_OK;
        case 'V': return cli_version();
        case ':': return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return cli_usage_error("unknown option '-%c'", optopt);
            return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (token_file && read_token_file(token_file) != 0)
        return EXIT_FAIL;
    if (tel__cfg.token)
        tel__cfg.token_len = strlen(tel__cfg.token);
    if (tel__cfg.token && tel__cfg.token_len == 0)
        return cli_usage_error("the token must not be empty");
    return -1;
}

/* ------------------------------------------------------------ running */

/* Opens what the server needs before it listens.  Returns 0 or -1 (the
 * reason printed). */
static int open_outputs(void)
{
    if (!tel__cfg.db_url && default_db() != 0)
        return -1;
    char err[300];
    if (!(tel__store = store_open(tel__cfg.db_url, err, sizeof err))) {
        cli_error("cannot open --db: %s", err);
        return -1;
    }
    if (tel__cfg.out && tel__export_open(tel__cfg.out) != 0) {
        cli_error("cannot open --out %s: %s", tel__cfg.out, strerror(errno));
        return -1;
    }
    if (tel__metrics_init() != 0) {
        cli_error("no random numbers available");
        return -1;
    }
    return 0;
}

/* Serves until a stopping signal; SIGHUP reopens the export. */
static void serve(const sigset_t *sigs)
{
    for (;;) {
        int sig = 0;
        if (sigwait(sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return;
        if (tel__export_reopen() != 0)
            cli_error("cannot reopen --out file: %s", strerror(errno));
    }
}

static void summary(void)
{
    uint64_t batches, accepted, dups, rejected;
    tel__metrics_totals(&batches, &accepted, &dups, &rejected);
    fprintf(stderr, "%s: %llu batches, %llu events accepted, %llu duplicates, %llu rejected\n", cli_prog,
            (unsigned long long)batches, (unsigned long long)accepted, (unsigned long long)dups,
            (unsigned long long)rejected);
}

/* Starts the server and the retention, serves, stops.  Returns the exit
 * code. */
static int run(const sigset_t *sigs)
{
    int lfd, v6;
    unsigned port;
    if (open_listener(&lfd, &port, &v6) != 0) {
        cli_error("cannot listen on %s port %u: %s", tel__cfg.listen, tel__cfg.port, strerror(errno));
        return EXIT_FAIL;
    }
    if (tel__dash_start(tel__store, tel__cfg.min_installs) != 0) {
        close(lfd);
        return EXIT_FAIL;
    }
    if (tel__http_start(lfd, v6) != 0) {
        tel__dash_stop();
        close(lfd);
        cli_error("cannot start the HTTP server on %s port %u", tel__cfg.listen, port);
        return EXIT_FAIL;
    }
    if (tel__cfg.port_file && write_port_file(tel__cfg.port_file, port) != 0) {
        cli_error("cannot write --port-file: %s", strerror(errno));
        tel__http_stop();
        tel__dash_stop();
        return EXIT_FAIL;
    }
    if (tel__cfg.verbose)
        fprintf(stderr, "%s: listening on %s port %u, storing into %s\n", cli_prog, tel__cfg.listen, port,
                store_engine_name(tel__store));
    pthread_t retainer;
    int retaining = tel__cfg.retain_days && pthread_create(&retainer, NULL, retain, NULL) == 0;
    serve(sigs);
    tel__http_stop();
    tel__dash_stop();
    if (retaining) {
        pthread_mutex_lock(&retain_lock);
        retain_stop = 1;
        pthread_cond_signal(&retain_cond);
        pthread_mutex_unlock(&retain_lock);
        pthread_join(retainer, NULL);
    }
    if (!tel__cfg.quiet)
        summary();
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    cli_start("tel-collect");
    if (argc > 1 && strcmp(argv[1], "report") == 0)
        return tel__dash_report(argc - 1, argv + 1);
    int rc = parse_args(argc, argv);
    if (rc < 0) {
        /* Signals are taken by sigwait() in this thread only: block them
         * before any other thread exists, so that they inherit the mask. */
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGUSR1);
        sigaddset(&sigs, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);
        rc = open_outputs() == 0 ? run(&sigs) : EXIT_FAIL;
    }
    store_close(tel__store);
    tel__export_close();
    tel__metrics_free();
    free(tel__cfg.token);
    free(tel__cfg.db_url);
    return rc;
}
