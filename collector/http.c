/* SPDX-License-Identifier: MIT */
/*
 * collector/http.c - the HTTP front of tel-collect (libmicrohttpd, one
 * thread per connection).
 *
 * Routes: POST (any path) takes a batch (application/vnd.msgpack) or an
 * erasure request (application/vnd.tel.erasure+msgpack); GET /metrics the
 * exposition; GET of a registered page (the dashboard) that page;
 * anything else 405.
 *
 * Slow clients are bounded three ways: connections per client address
 * (MHD), idle time per connection (MHD), and a deadline for each
 * request's headers and for its body, which MHD does not have: a watchdog
 * thread shuts down the socket of a connection past its deadline, so one
 * sending a header line every few seconds cannot hold its thread for
 * long.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "collector.h"
#include "common.h"
#include "internal.h"

/* How much of a refused body is still read to reach the answer (see
 * on_request): four times --max-body, at least this much. */
#define DRAIN_MIN (8ull * 1024 * 1024)
#define IDLE_TIMEOUT 30u
#define MAX_CONNECTIONS 512u
#define MAX_PAGES 8
#define WATCH_TICK_MS 200

#define TYPE_BATCH "application/vnd.msgpack"
#define TYPE_ERASURE "application/vnd.tel.erasure+msgpack"

static struct MHD_Daemon *daemon_;
static atomic_ullong n_posts;
static atomic_ullong rng_state;

typedef struct page {
    const char *path;
    http_page_fn fn;
    void *ud;
} page;
static page pages[MAX_PAGES];
static int npages;

int tel__http_page(const char *path, http_page_fn fn, void *ud)
{
    if (npages == MAX_PAGES)
        return -1;
    pages[npages++] = (page){ path, fn, ud };
    return 0;
}

/* ------------------------------------------------------------ deadlines */

enum { W_HEADERS, W_BODY, W_ANSWER, W_CUT };

/* One connection, watched from its start to its close. */
typedef struct watch {
    struct watch *prev, *next;
    int fd;
    int phase;
    struct timespec since;
} watch;

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_stop_cond = PTHREAD_COND_INITIALIZER;
static watch *watched;
static int watch_stopping;
static pthread_t watch_thread;
static int watch_running;

static long elapsed_ms(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void watch_phase(watch *w, int phase)
{
    if (!w)
        return;
    pthread_mutex_lock(&watch_lock);
    if (w->phase != W_CUT) {
        w->phase = phase;
        clock_gettime(CLOCK_MONOTONIC, &w->since);
    }
    pthread_mutex_unlock(&watch_lock);
}

/* MHD calls this as a connection starts and as it closes, before its
 * socket is closed: the watchdog may shut the socket down under the
 * same lock without ever touching a descriptor that was reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;   /* libmicrohttpd's callback shape */
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        watch *w = ci ? calloc(1, sizeof *w) : NULL;
        *socket_context = w;
        if (!w)
            return;
        w->fd = ci->connect_fd;
        w->phase = W_HEADERS;
        clock_gettime(CLOCK_MONOTONIC, &w->since);
        pthread_mutex_lock(&watch_lock);
        w->next = watched;
        if (watched)
            watched->prev = w;
        watched = w;
        pthread_mutex_unlock(&watch_lock);
        return;
    }
    watch *w = *socket_context;
    if (!w)
        return;
    pthread_mutex_lock(&watch_lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        watched = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&watch_lock);
    free(w);
    *socket_context = NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;   /* pthread's thread shape */
    pthread_mutex_lock(&watch_lock);
    while (!watch_stopping) {
        long header_ms = (long)tel__cfg.header_timeout * 1000, body_ms = (long)tel__cfg.body_timeout * 1000;
        for (watch *w = watched; w; w = w->next) {
            long ms = elapsed_ms(&w->since);
            if ((w->phase == W_HEADERS && ms >= header_ms) || (w->phase == W_BODY && ms >= body_ms)) {
                /* The connection's thread sees the end of its stream and
                 * closes it; nothing more is read from this client. */
                shutdown(w->fd, SHUT_RDWR);
                w->phase = W_CUT;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WATCH_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&watch_stop_cond, &watch_lock, &until);
    }
    pthread_mutex_unlock(&watch_lock);
    return NULL;
}

static watch *watch_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* ------------------------------------------------------------ requests */

typedef struct request {
    verdict v;
    int injected;             /* status chosen by a fault flag, not by the batch */
    int drop;
    int answered;
    int erasure;
    int close;                /* answer with Connection: close */
    unsigned long long body_bytes;
    unsigned long long announced;  /* Content-Length, 0 if none */
    inflater z;
    uint8_t key[TEL_ID_LEN];  /* Idempotency-Key */
    watch *w;
} request;

static void request_free(request *rq)
{
    tel__inflate_free(&rq->z);
    free(rq);
}

static void sleep_ms(unsigned long long ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* splitmix64 over a shared counter: each request takes the next number,
 * so a given --seed always gives the same sequence of answers to requests
 * that arrive one after another. */
static double next_uniform(void)
{
    uint64_t z = atomic_fetch_add(&rng_state, 0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* True when `value` is `want` (case-insensitively), optionally followed by
 * spaces or by ';' and parameters, as media types may be. */
static int header_is(const char *value, const char *want)
{
    if (!value)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(want);
    if (strncasecmp(value, want, n) != 0)
        return 0;
    value += n;
    while (*value == ' ' || *value == '\t')
        value++;
    return *value == '\0' || *value == ';';
}

static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind, (void)value;   /* libmicrohttpd's callback shape */
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        (*(int *)cls)++;
    return MHD_YES;
}

/*
 * Compares the credential of "Bearer <token>" with the configured token in
 * time that depends only on the configured token's length, so that timing
 * the answers reveals nothing about how much of a guess was right.
 */
static int authorized(struct MHD_Connection *c)
{
    static const char scheme[] = "Bearer ";
    if (!tel__cfg.token)
        return 1;
    const char *value = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!value || strncasecmp(value, scheme, sizeof scheme - 1) != 0)
        return 0;
    const unsigned char *got = (const unsigned char *)value + sizeof scheme - 1;
    size_t got_len = strlen((const char *)got);
    const unsigned char *want = (const unsigned char *)tel__cfg.token;
    unsigned diff = got_len != tel__cfg.token_len;
    for (size_t i = 0; i < tel__cfg.token_len; i++)
        diff |= want[i] ^ (i < got_len ? got[i] : 0u);
    return diff == 0;
}

/* The fault flags, in a fixed order of precedence.  They act before any
 * check of the request, as a broken proxy or server in front would. */
static void inject(request *rq)
{
    unsigned long long n = atomic_fetch_add(&n_posts, 1) + 1;
    if (n <= tel__cfg.fail_first) {
        tel__refuse(&rq->v, 503, "injected failure (--fail-first)");
        rq->injected = 1;
    } else if (tel__cfg.fail_rate > 0 && next_uniform() < tel__cfg.fail_rate) {
        tel__refuse(&rq->v, 503, "injected failure (--fail-rate)");
        rq->injected = 1;
    } else if (tel__cfg.drop) {
        rq->drop = 1;
    } else if (tel__cfg.status) {
        tel__refuse(&rq->v, tel__cfg.status, "injected status (--status)");
        rq->injected = 1;
    }
}

static void check_headers(request *rq, struct MHD_Connection *c)
{
    verdict *v = &rq->v;
    int lengths = 0;
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_length, &lengths);
    if (lengths > 1) {
        /* Two lengths make two ways to frame the body: a proxy in front
         * may have taken the other one.  Nothing more is read. */
        tel__refuse(v, 400, "Content-Length is given more than once");
        rq->close = 1;
        return;
    }
    if (!authorized(c)) {
        tel__refuse(v, 401, "missing or wrong bearer token");
        return;
    }
    if (!header_is(header(c, MHD_HTTP_HEADER_CONTENT_ENCODING), "gzip")) {
        tel__refuse(v, 415, "Content-Encoding must be gzip");
        return;
    }
    const char *type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    rq->erasure = header_is(type, TYPE_ERASURE);
    if (!rq->erasure && !header_is(type, TYPE_BATCH)) {
        tel__refuse(v, 415, "Content-Type must be " TYPE_BATCH " or " TYPE_ERASURE);
        return;
    }
    const char *len = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n;
    if (len && cli_parse_uint(len, ~0ull, &n) == 0 && (rq->announced = n) > tel__cfg.max_body) {
        tel__refuse(v, 413, "body of %llu bytes is over the limit of %llu", n, tel__cfg.max_body);
        return;
    }
    if (rq->erasure)
        return;               /* the request carries no batch id */
    const char *key = header(c, "Idempotency-Key");
    if (!key)
        tel__refuse(v, 400, "missing Idempotency-Key");
    else if (tel__uuid_parse(key, strlen(key), rq->key) != 0)
        tel__refuse(v, 400, "Idempotency-Key is not a UUID");
}

static void take_body(request *rq, const char *data, size_t n)
{
    rq->body_bytes += n;
    if (rq->v.status || rq->drop)
        return;               /* decided already: only count what is drained */
    if (rq->body_bytes > tel__cfg.max_body) {
        tel__refuse(&rq->v, 413, "body is over the limit of %llu bytes", tel__cfg.max_body);
        return;
    }
    tel__inflate_piece(&rq->z, (const uint8_t *)data, n, &rq->v);
}

/* ------------------------------------------------------------ answers */

/* Copies s into a JSON string body, dropping what would need escaping:
 * reasons are plain English, this only keeps a stray quote harmless. */
static void json_plain(char *out, size_t size, const char *s)
{
    size_t j = 0;
    for (; *s && j + 1 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        out[j++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) ? '?' : (char)ch;
    }
    out[j] = '\0';
}

static void log_request(const request *rq, const char *method, const char *url, const char *what)
{
    if (tel__cfg.verbose == 0)
        return;
    char path[80], meth[16];
    json_plain(path, sizeof path, url ? url : "");
    json_plain(meth, sizeof meth, method ? method : "");
    const char *why = rq->v.why;
    fprintf(stderr, "%s: %s %s %s events=%zu bytes=%llu%s%s%s\n", cli_prog, meth, path, what,
            rq->v.nev, rq->body_bytes, why[0] ? " (" : "", why, why[0] ? ")" : "");
}

/* Sends resp (released here) and logs the request. */
static enum MHD_Result queue(struct MHD_Connection *c, const request *rq, struct MHD_Response *resp,
                             unsigned status, const char *method, const char *url)
{
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    char what[16];
    snprintf(what, sizeof what, "%u", status);
    log_request(rq, method, url, what);
    return ret;
}

static void success_body(const request *rq, char *body, size_t size)
{
    const verdict *v = &rq->v;
    if (rq->erasure)
        snprintf(body, size, "{\"erased\":%llu}\n", (unsigned long long)v->deleted);
    else if (v->erased)
        snprintf(body, size, "{\"accepted\":0,\"duplicates\":0,\"erased\":true}\n");
    else
        snprintf(body, size, "{\"accepted\":%zu,\"duplicates\":%zu}\n", v->accepted, v->dups);
}

/* Every answer to a POST says which schema versions this collector reads,
 * so that tel-sync sends the column-wise layout (version 3) only to a
 * collector that reads it (format/SPEC.md 5). */
#define VERSIONS_READ "1,2,3"
_Static_assert(TEL_SCHEMA_VERSION == 3, "VERSIONS_READ lists every version tel__batch_decode reads");

static enum MHD_Result answer(struct MHD_Connection *c, request *rq, const char *method, const char *url)
{
    if (tel__cfg.delay_ms)
        sleep_ms(tel__cfg.delay_ms);
    char body[320];
    unsigned status = rq->v.status ? rq->v.status : 500;
    if (status >= 200 && status < 300) {
        success_body(rq, body, sizeof body);
    } else {
        char why[sizeof rq->v.why];
        json_plain(why, sizeof why, rq->v.why);
        snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", why);
        tel__metrics_rejected(status);
    }
    rq->answered = 1;
    watch_phase(rq->w, W_ANSWER);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Tel-Versions", VERSIONS_READ);
    if (tel__cfg.retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, tel__cfg.retry_after);
    else if (rq->v.retry)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, STORE_RETRY_AFTER);
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (rq->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(c, rq, resp, status, method, url);
}

/* Queues a rendered body (handed over) with its status. */
static enum MHD_Result answer_text(struct MHD_Connection *c, request *rq, tel_buf *b, const char *type,
                                   unsigned status, const char *method, const char *url)
{
    rq->answered = 1;
    rq->v.status = status;
    watch_phase(rq->w, W_ANSWER);
    struct MHD_Response *resp = MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        tel__buf_free(b);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return queue(c, rq, resp, status, method, url);
}

static const char *page_arg(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* GET /metrics or a registered page: answered on the first call (a GET
 * has no body).  Returns MHD_NO when the path is neither. */
static int serve_get(struct MHD_Connection *c, request *rq, const char *method, const char *url,
                     enum MHD_Result *ret)
{
    int metrics = strcmp(url, "/metrics") == 0;
    const page *pg = NULL;
    for (int i = 0; i < npages && !metrics && !pg; i++)
        if (strcmp(url, pages[i].path) == 0)
            pg = &pages[i];
    if (!metrics && !pg)
        return 0;
    if (!authorized(c)) {
        tel__refuse(&rq->v, 401, "missing or wrong bearer token");
        *ret = answer(c, rq, method, url);
        return 1;
    }
    tel_buf b = TEL_BUF_INIT;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    unsigned status = 200;
    if (metrics && tel__metrics_render(&b) != 0)
        status = 0;
    if (pg) {
        http_get req = { url, page_arg, c };
        status = pg->fn(pg->ud, &req, &b, &type);
    }
    if (status == 0) {
        tel__buf_free(&b);
        tel__refuse(&rq->v, 500, "out of memory");
        *ret = answer(c, rq, method, url);
        return 1;
    }
    *ret = answer_text(c, rq, &b, type, status, method, url);
    return 1;
}

static unsigned long long drain_limit(void)
{
    unsigned long long n = tel__cfg.max_body * 4;
    return n < DRAIN_MIN ? DRAIN_MIN : n;
}

/* First call: headers only.  Decide what can be decided now, but keep
 * reading the body unless it is announced too large: closing on a client
 * that is still sending makes it see a reset instead of the answer. */
static enum MHD_Result first_call(struct MHD_Connection *c, request *rq, const char *method, const char *url)
{
    enum MHD_Result ret;
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && serve_get(c, rq, method, url, &ret))
        return ret;
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        tel__refuse(&rq->v, 405, "only POST is accepted");
    else
        inject(rq);
    if (!rq->v.status && !rq->drop)
        check_headers(rq, c);
    /* A body announced too large is best refused before it is sent: a
     * client waiting for "100 Continue" then sends nothing, and one
     * announcing more than we would drain is not worth waiting for.  A
     * request whose length is ambiguous is not read at all. */
    if ((rq->v.status == 413 && (header_is(header(c, MHD_HTTP_HEADER_EXPECT), "100-continue") ||
                                 rq->announced > drain_limit())) ||
        rq->close)
        return answer(c, rq, method, url);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
    (void)cls, (void)version;   /* libmicrohttpd's callback shape */
    request *rq = *state;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *state = rq;
        rq->w = watch_of(c);
        watch_phase(rq->w, W_BODY);
        return first_call(c, rq, method, url);
    }
    if (rq->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        take_body(rq, upload, *upload_size);
        *upload_size = 0;
        /* Once refused, the rest of a body is read and thrown away, so that
         * the client, still sending, gets to read the answer.  Past a hard
         * bound it is not worth it: answer and close. */
        if (rq->body_bytes > drain_limit()) {
            if (rq->drop)
                return MHD_NO;
            tel__refuse(&rq->v, 413, "body is over the limit of %llu bytes", tel__cfg.max_body);
            return answer(c, rq, method, url);
        }
        return MHD_YES;
    }
    /* Last call: the whole body is in. */
    watch_phase(rq->w, W_ANSWER);
    if (rq->drop) {
        if (tel__cfg.delay_ms)
            sleep_ms(tel__cfg.delay_ms);
        tel__metrics_rejected(0);
        log_request(rq, method, url, "dropped");
        return MHD_NO;
    }
    if (!rq->v.status) {
        if (rq->erasure)
            tel__erasure_finish(&rq->z, &rq->v);
        else
            tel__batch_finish(&rq->z, rq->key, &rq->v);
    }
    return answer(c, rq, method, url);
}

static void on_done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;   /* libmicrohttpd's callback shape */
    request *rq = *state;
    if (!rq)
        return;
    /* A kept-alive connection now waits for its next request's headers. */
    watch_phase(rq->w, W_HEADERS);
    /* Only now, with the answer sent, may the main thread stop the server. */
    if (rq->v.exit_due)
        kill(getpid(), SIGUSR1);
    request_free(rq);
    *state = NULL;
}

/* ------------------------------------------------------------ start, stop */

int tel__http_start(int lfd, int v6)
{
    atomic_store(&rng_state, tel__cfg.seed);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO |
                     (v6 ? MHD_USE_IPv6 : 0) | (tel__cfg.verbose > 1 ? MHD_USE_ERROR_LOG : 0);
    daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                               MHD_OPTION_LISTEN_SOCKET, lfd,
                               MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                               MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                               MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT,
                               MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
                               MHD_OPTION_PER_IP_CONNECTION_LIMIT, tel__cfg.max_per_ip,
                               MHD_OPTION_END);
    if (!daemon_)
        return -1;
    watch_stopping = 0;
    if (pthread_create(&watch_thread, NULL, watchdog, NULL) != 0) {
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
        return -1;
    }
    watch_running = 1;
    return 0;
}

void tel__http_stop(void)
{
    if (daemon_)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
    if (watch_running) {
        pthread_mutex_lock(&watch_lock);
        watch_stopping = 1;
        pthread_cond_signal(&watch_stop_cond);
        pthread_mutex_unlock(&watch_lock);
        pthread_join(watch_thread, NULL);
        watch_running = 0;
    }
}
