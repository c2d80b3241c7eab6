/*
 * cli/tel-sync.c - drains an app's telemetry queue to its collector.
 *
 * Run from cron, a systemd timer or a detached post-command hook, so it
 * must be quiet on a normal day (offline, backed off, collector down all
 * exit 0), bounded in time and memory, and safe to kill at any instant:
 *
 *  - events leave the queue only after the collector answered 2xx;
 *  - the batch (its id and its exact range of records) is written to the
 *    queue's meta before the first POST, so a retry in this run or a later
 *    one sends the same events under the same Idempotency-Key;
 *  - no LMDB transaction is open while we talk to the network: records are
 *    copied out of the queue first;
 *  - one process per queue (flock on sync.lock); a second one leaves at once.
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
#include "syncstate.h"
#include "upload.h"

#define EXIT_CONFIG 3         /* bad configuration: endpoint refused, config file malformed */

#define SENT_LOG "sent.log"
#define SENT_LOG_MAX (64 * 1024)
#define LOCK_FILE "sync.lock"

/* Backoff schedule (see docs/tel-sync.md). */
#define BACKOFF_BASE_MS (60ull * 1000)
#define BACKOFF_CAP_MS (6ull * 3600 * 1000)
#define BACKOFF_AUTH_MS (24ull * 3600 * 1000)
#define BACKOFF_MAX_MS (24ull * 3600 * 1000)
/* A request is not started with less time than this left in the run. */
#define MIN_REQUEST_MS 100
/* Records of a batch leave room for the batch's own header under the
 * wire's byte limit. */
#define BATCH_RECORD_BYTES (TEL_BATCH_MAX_BYTES - 256)

typedef struct options {
    const char *endpoint;
    const char *token;
    uint64_t max_time_ms;
    int force;
    int verbose;
    int quiet;
} options;

static const options *opt;

/* Every message is one line on stderr, prefixed like cli_error's, so that
 * -v output and errors read the same in a cron mail or a journal. */
static void vline(const char *fmt, va_list ap)
{
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

/* ------------------------------------------------------------- batches */

/*
 * One batch in memory: copies of its records (so no read transaction
 * outlives the scan) and their sequence numbers.  Only one exists at a
 * time, which is what bounds tel-sync's memory whatever the queue holds.
 */
typedef struct batch {
    tel_buf recs;
    size_t n;
    uint64_t seq[TEL_BATCH_MAX_EVENTS];
    uint32_t off[TEL_BATCH_MAX_EVENTS];
    uint32_t len[TEL_BATCH_MAX_EVENTS];
    uint64_t poison[TEL_BATCH_MAX_EVENTS];
    size_t npoison;
    uint8_t anon[TEL_ID_LEN];
    int anon_nil;
    uint64_t last_seen;       /* highest seq looked at and not refused */
    uint64_t stop_seq;        /* records after this one wait for the next run */
    int oom;
} batch;

static int collect_one(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    batch *b = ud;
    tel_record r;
    if (seq > b->stop_seq)
        return 1;
    if (tel__record_decode(&r, data, len) != TEL_OK) {
        b->poison[b->npoison++] = seq;
        b->last_seen = seq;
        return 0;
    }
    /* A batch carries one identity: stop at the first record stamped with
     * another anonymous id (or with none where the first had one). */
    if (b->n == 0) {
        b->anon_nil = r.anon == NULL;
        if (r.anon)
            memcpy(b->anon, r.anon, TEL_ID_LEN);
    } else if ((r.anon == NULL) != b->anon_nil ||
               (r.anon && memcmp(r.anon, b->anon, TEL_ID_LEN) != 0)) {
        return 1;
    }
    if (tel_buf_append(&b->recs, data, len) != 0) {
        b->oom = 1;
        return 1;
    }
    b->seq[b->n] = seq;
    b->off[b->n] = (uint32_t)(b->recs.len - len);
    b->len[b->n] = (uint32_t)len;
    b->n++;
    b->last_seen = seq;
    return 0;
}

static int collect(tel_queue *q, batch *b, uint64_t from, size_t max_events)
{
    tel_buf_clear(&b->recs);
    b->n = 0;
    b->npoison = 0;
    b->oom = 0;
    b->last_seen = 0;
    if (max_events > TEL_BATCH_MAX_EVENTS)
        max_events = TEL_BATCH_MAX_EVENTS;
    int rc = tel__queue_scan(q, from, max_events, BATCH_RECORD_BYTES, collect_one, b);
    /* The records are copied out; the map pages the scan touched (the
     * kernel maps neighbours of each page read, too) would otherwise stay
     * in our resident set, and a drain of a large queue would outgrow its
     * 16 MiB bound. */
    tel__queue_release_pages(q);
    if (rc == TEL_OK && b->oom)
        rc = tel__fail(TEL_ERR_NOMEM, "out of memory");
    return rc;
}

/* ------------------------------------------------------------ sent.log */

/*
 * A bounded, local record of every upload attempt, for the user who wants
 * to audit what left the machine.  It names batches and sizes, never
 * contents or tokens.  Past SENT_LOG_MAX it is rotated to sent.log.1, so
 * it never holds more than twice that.
 */
static void sent_log(const char *qdir, const uint8_t id[TEL_ID_LEN], size_t events,
                     size_t wire, const tel_upload_result *res)
{
    char path[TEL_PATH_MAX + 16], old[TEL_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" SENT_LOG, qdir);
    snprintf(old, sizeof old, "%s/" SENT_LOG ".1", qdir);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > SENT_LOG_MAX)
        rename(path, old);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char idtxt[37], when[32], line[256];
    tel__uuid_format(id, idtxt);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n;
    if (res->status)
        n = snprintf(line, sizeof line, "%s batch %s events %zu bytes %zu status %ld\n",
                     when, idtxt, events, wire, res->status);
    else
        n = snprintf(line, sizeof line, "%s batch %s events %zu bytes %zu error %s\n",
                     when, idtxt, events, wire, res->error);
    if (n > 0) {
        size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        ssize_t w = write(fd, line, len);
        (void)w;
    }
    close(fd);
}

/* ----------------------------------------------------------- audit log */

/* The audit log file the host declared and the user named in our
 * environment (TEL_ENV_LOG_FILE); -1 when none. */
static int audit_fd = -1;

/*
 * Appends "sent: {event}" for each record of the batch the collector just
 * accepted: the same lines the library wrote as "recorded: " when they
 * were queued, so the file shows both ends.  A failed write is dropped.
 */
static void audit_sent(const batch *b, size_t n)
{
    tel_buf line = TEL_BUF_INIT;
    for (size_t i = 0; i < n && i < b->n; i++) {
        tel_record r;
        tel_buf_clear(&line);
        if (tel__record_decode(&r, b->recs.p + b->off[i], b->len[i]) != TEL_OK ||
            tel_buf_puts(&line, "sent: ") != 0 || tel__record_json(&r, &line) != TEL_OK ||
            tel_buf_append(&line, "\n", 1) != 0)
            continue;
        if (write(audit_fd, line.p, line.len) < 0)
            break;
    }
    tel_buf_free(&line);
}

/* ------------------------------------------------------------- backoff */

static uint64_t random_below(uint64_t bound)
{
    uint64_t r = 0;
    if (bound == 0 || tel__random(&r, sizeof r) != 0)
        return bound / 2;
    return r % (bound + 1);
}

/*
 * Persists the backoff after a failed attempt.  Transient failures grow
 * exponentially with full jitter (a random wait in [0, min(cap, base *
 * 2^(attempt-1))]), so a fleet of clients that all lost the collector at
 * once does not come back at once; a collector's Retry-After overrides
 * it.  Refusals that will not heal by themselves (401/403/404) wait a day.
 * The floor of one second keeps a failing run from being retried by the
 * very next invocation of a hook.
 */
static void back_off(tel_queue *q, const tel_upload_result *res, int auth, const char *app)
{
    tel_backoff b;
    if (tel__backoff_load(q, &b) != TEL_OK)
        memset(&b, 0, sizeof b);
    if (b.attempt < UINT32_MAX)
        b.attempt++;
    uint64_t delay;
    if (auth) {
        delay = BACKOFF_AUTH_MS;
    } else {
        unsigned shift = b.attempt - 1 > 20 ? 20 : b.attempt - 1;
        uint64_t ceiling = BACKOFF_BASE_MS << shift;
        if (ceiling > BACKOFF_CAP_MS)
            ceiling = BACKOFF_CAP_MS;
        delay = random_below(ceiling);
    }
    if (res->retry_after >= 0)
        delay = (uint64_t)res->retry_after * 1000;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    if (delay < 1000)
        delay = 1000;
    b.until_ms = tel__now_ms() + delay;
    b.status = (int)res->status;
    if (res->status)
        snprintf(b.reason, sizeof b.reason, "HTTP %ld", res->status);
    else
        snprintf(b.reason, sizeof b.reason, "%.*s", (int)sizeof b.reason - 1, res->error);
    char enc[TEL_SYNCSTATE_MAX];
    size_t len = tel__backoff_encode(&b, enc, sizeof enc);
    if (len)
        tel__queue_meta_put(q, TEL_META_BACKOFF, enc, len);
    say(1, "%s: %s; backing off %" PRIu64 " s (attempt %" PRIu32 ")", app,
        b.reason, delay / 1000, b.attempt);
}

/* ----------------------------------------------------------- dry runs */

static int write_dry_batch(FILE *out, tel_queue *q, const batch *b, uint64_t dropped)
{
    tel_buf line = TEL_BUF_INIT;
    uint8_t id[TEL_ID_LEN];
    char idtxt[37], anontxt[37];
    int rc = TEL_OK;
    if (tel__uuid4(id) != 0)
        return tel__fail(TEL_ERR_IO, "no randomness for a batch id");
    tel__uuid_format(id, idtxt);
    if (!b->anon_nil)
        tel__uuid_format(b->anon, anontxt);
    if (tel_buf_printf(&line, "{\"batch\":\"%s\",\"sent\":%" PRIu64 ",\"dropped\":%" PRIu64
                       ",\"anon\":%s%s%s,\"events\":[",
                       idtxt, tel__now_ms(), dropped, b->anon_nil ? "null" : "\"",
                       b->anon_nil ? "" : anontxt, b->anon_nil ? "" : "\"") != 0)
        rc = TEL_ERR_NOMEM;
    for (size_t i = 0; i < b->n && rc == TEL_OK; i++) {
        tel_record r;
        if (tel__record_decode(&r, b->recs.p + b->off[i], b->len[i]) != TEL_OK)
            continue;
        if ((i > 0 && tel_buf_puts(&line, ",") != 0) || tel__record_json(&r, &line) != TEL_OK)
            rc = TEL_ERR_NOMEM;
    }
    if (rc == TEL_OK && tel_buf_puts(&line, "]}\n") != 0)
        rc = TEL_ERR_NOMEM;
    if (rc == TEL_OK && fwrite(line.p, 1, line.len, out) != line.len)
        rc = tel__fail(TEL_ERR_IO, "could not write the inspect output");
    tel_buf_free(&line);
    (void)q;
    return rc;
}

/*
 * DEBUG and INSPECT: walk the whole queue as tel-sync would batch it and
 * show each batch, changing nothing.  The dropped count is what the first
 * batch would report; later ones would report what accrued after it.
 */
static int dry_run(tel_queue *q, batch *b, const tel_policy *pol, const char *app,
                   uint64_t deadline)
{
    FILE *out = stderr;
    b->stop_seq = UINT64_MAX; /* a dry run shows all that is queued */
    if (pol->inspect[0]) {
        int fd = open(pol->inspect, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || !(out = fdopen(fd, "a"))) {
            if (fd >= 0)
                close(fd);
            complain("%s: cannot open the inspect file: %s", app, strerror(errno));
            return EXIT_FAIL;
        }
    }
    tel_queue_stats st;
    uint64_t dropped = tel__queue_stats(q, &st) == TEL_OK ? st.dropped : 0;
    uint64_t from = 0;
    size_t batches = 0, events = 0;
    int rc = TEL_OK;
    while (tel__mono_ms() < deadline) {
        rc = collect(q, b, from, TEL_BATCH_MAX_EVENTS);
        if (rc != TEL_OK || (b->n == 0 && b->npoison == 0))
            break;
        if (b->n > 0) {
            if ((rc = write_dry_batch(out, q, b, dropped)) != TEL_OK)
                break;
            batches++;
            events += b->n;
        }
        dropped = b->npoison;
        from = b->last_seen + 1;
    }
    if (out != stderr && fclose(out) != 0 && rc == TEL_OK)
        rc = tel__fail(TEL_ERR_IO, "could not write the inspect output");
    if (rc != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return EXIT_FAIL;
    }
    say(1, "%s: %s: %zu batches, %zu events shown, nothing sent", app,
        pol->inspect[0] ? "inspect" : "debug", batches, events);
    return EXIT_OK;
}

/* ------------------------------------------------------------ draining */

typedef struct drain_stats {
    size_t batches, events, dropped;
    size_t wire;
} drain_stats;

static int put_pending(tel_queue *q, const tel_pending *p)
{
    char enc[TEL_SYNCSTATE_MAX];
    size_t len = tel__pending_encode(p, enc, sizeof enc);
    if (len == 0)
        return tel__fail(TEL_ERR_IO, "pending batch does not encode");
    return tel__queue_meta_put(q, TEL_META_PENDING, enc, len);
}

/* A fresh batch over b's first n records. */
static int new_pending(tel_queue *q, const batch *b, size_t n, uint64_t dropped, tel_pending *p)
{
    if (tel__uuid4(p->id) != 0)
        return tel__fail(TEL_ERR_IO, "no randomness for a batch id");
    p->first_seq = b->seq[0];
    p->last_seq = b->seq[n - 1];
    p->count = (uint32_t)n;
    p->dropped = dropped;
    return put_pending(q, p);
}

/* Deletes records that do not decode, one by one, and counts them dropped:
 * a collector would refuse the whole batch for them. */
static int drop_poison(tel_queue *q, const batch *b, const char *app)
{
    for (size_t i = 0; i < b->npoison; i++) {
        int rc = tel__queue_delete(q, b->poison[i], b->poison[i], 0);
        if (rc != TEL_OK)
            return rc;
    }
    say(1, "%s: dropped %zu records that do not decode", app, b->npoison);
    return tel__queue_add_dropped(q, b->npoison);
}

/*
 * The next batch, prepared on a second thread while the current one is on
 * the wire: reading it out of the queue and gzipping it costs about as
 * much as the collector takes to answer, so doing both at once nearly
 * halves a drain.  The worker only reads the queue (its own short read
 * transaction) and builds bytes; every write stays on the main thread,
 * after the join.
 */
typedef struct prefetch {
    tel_queue *q;
    batch *b;
    tel_buf head, gz;
    uint64_t from;
    size_t limit;
    uint64_t dropped;
    tel_pending p;
    int ready;
} prefetch;

/* Builds the gzip'd body of b's first n records under pending p. */
static int build_body(const batch *b, const tel_pending *p, tel_buf *head, tel_buf *gz)
{
    tel_batch_head h = {
        .sent_ms = tel__now_ms(),
        .dropped = p->dropped,
        .anon = b->anon_nil ? NULL : b->anon,
        .nevents = p->count,
    };
    memcpy(h.id, p->id, TEL_ID_LEN);
    tel_buf_clear(head);
    tel_buf_clear(gz);
    int rc = tel__batch_begin(head, &h);
    if (rc != TEL_OK)
        return rc;
    size_t bytes = p->count == b->n ? b->recs.len : b->off[p->count - 1] + b->len[p->count - 1];
    tel_span spans[2] = { { head->p, head->len }, { b->recs.p, bytes } };
    return tel__upload_gzip(gz, spans, 2);
}

static void *prefetch_run(void *arg)
{
    prefetch *f = arg;
    f->ready = 0;
    /* A batch with poison, or nothing at all, is left to the main loop,
     * which knows how to handle both. */
    if (collect(f->q, f->b, f->from, f->limit) != TEL_OK || f->b->npoison || f->b->n == 0)
        return NULL;
    if (tel__uuid4(f->p.id) != 0)
        return NULL;
    f->p.first_seq = f->b->seq[0];
    f->p.last_seq = f->b->seq[f->b->n - 1];
    f->p.count = (uint32_t)f->b->n;
    f->p.dropped = f->dropped;
    if (build_body(f->b, &f->p, &f->head, &f->gz) != TEL_OK)
        return NULL;
    f->ready = 1;
    return NULL;
}

/*
 * Sends batches until the queue is empty, the collector asks us to stop,
 * or the run's time is up.  Returns an exit code.
 */
static int drain(tel_queue **qp, const char *state, batch *b, tel_upload *up,
                 const char *app, uint64_t deadline, drain_stats *ds)
{
    tel_queue *q = *qp;
    char qdir[TEL_PATH_MAX];
    snprintf(qdir, sizeof qdir, "%s", tel__queue_dir(q));
    tel_buf head = TEL_BUF_INIT, gz = TEL_BUF_INIT;
    size_t limit = TEL_BATCH_MAX_EVENTS;   /* lowered for the run after a 413 */
    int ignore_pending = 0;
    int cleared_backoff = 0;
    int code = EXIT_OK;
    int rc = TEL_OK;
    prefetch pf = { .head = TEL_BUF_INIT, .gz = TEL_BUF_INIT };
    /* b and pf.b trade places as batches are carried over; `mine` is
     * the one this function allocated and must free, whichever it is. */
    batch *mine = pf.b = calloc(1, sizeof *pf.b);
    int carried = 0;       /* b, p and gz were prepared by the prefetch */
    tel_pending p;

    /* A run delivers what was queued when it started.  Events that arrive
     * meanwhile wait for the next run, so a host emitting steadily cannot
     * keep one run busy with a stream of tiny batches until its deadline. */
    tel_queue_stats start;
    if ((rc = tel__queue_stats(q, &start)) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        free(mine);
        return EXIT_FAIL;
    }
    b->stop_seq = start.last_seq;
    if (mine)
        mine->stop_seq = start.last_seq;

    for (;;) {
        uint64_t now = tel__mono_ms();
        if (now + MIN_REQUEST_MS > deadline) {
            say(1, "%s: out of time; the rest waits for the next run", app);
            break;
        }

        if (!carried) {
            int have_pending = !ignore_pending && tel__pending_load(q, &p) == TEL_OK;
            rc = have_pending ? collect(q, b, p.first_seq, p.count) : collect(q, b, 0, limit);
            if (rc != TEL_OK)
                break;
            if (b->npoison > 0) {
                if ((rc = drop_poison(q, b, app)) != TEL_OK)
                    break;
                ds->dropped += b->npoison;
                continue;
            }
            if (b->n == 0) {
                if (have_pending)
                    tel__queue_meta_put(q, TEL_META_PENDING, NULL, 0);
                break;
            }
            /* The batch chosen earlier is reused only if every one of its
             * records is still there, exactly; otherwise (caps evicted some,
             * or it was already delivered) a new batch takes a new id. */
            if (have_pending && (b->n != p.count || b->seq[0] != p.first_seq ||
                                 b->seq[b->n - 1] != p.last_seq)) {
                ignore_pending = 1;
                continue;
            }
            ignore_pending = 0;
            if (!have_pending) {
                tel_queue_stats st;
                if ((rc = tel__queue_stats(q, &st)) != TEL_OK ||
                    (rc = new_pending(q, b, b->n, st.dropped, &p)) != TEL_OK)
                    break;
            }
            if ((rc = build_body(b, &p, &head, &gz)) != TEL_OK)
                break;
        }
        carried = 0;

        now = tel__mono_ms();
        if (now + MIN_REQUEST_MS > deadline) {
            say(1, "%s: out of time; the rest waits for the next run", app);
            break;
        }

        /* Start on the next batch while this one travels, when there is
         * one: the queue holds more than this batch. */
        pthread_t worker;
        int prefetching = 0;
        tel_queue_stats st;
        if (pf.b && p.last_seq < start.last_seq && tel__queue_stats(q, &st) == TEL_OK &&
            st.count > b->n) {
            pf.q = q;
            pf.from = p.last_seq + 1;
            pf.limit = limit;
            pf.dropped = st.dropped > p.dropped ? st.dropped - p.dropped : 0;
            prefetching = pthread_create(&worker, NULL, prefetch_run, &pf) == 0;
        }

        tel_upload_result res;
        rc = tel__upload_post(up, p.id, gz.p, gz.len, deadline - now, &res);
        if (prefetching)
            pthread_join(worker, NULL);
        int next_ready = prefetching && pf.ready;
        if (rc != TEL_OK)
            break;
        sent_log(qdir, p.id, p.count, res.sent_bytes, &res);
        char idtxt[37];
        tel__uuid_format(p.id, idtxt);
        if (res.status)
            say(2, "%s: batch %s: %" PRIu32 " events, %zu bytes: HTTP %ld", app, idtxt, p.count,
                gz.len, res.status);
        else
            say(2, "%s: batch %s: %" PRIu32 " events, %zu bytes: %s", app, idtxt, p.count,
                gz.len, res.error);

        long s = res.status;
        if (s >= 200 && s < 300) {
            /* The acknowledged records go, and the next batch (if it was
             * prepared) is recorded in the same transaction: one sync per
             * batch.  Without a next batch, the stale "pending" left behind
             * is harmless: its range is gone, so the next pass makes a new
             * one. */
            tel_meta_kv kv[2];
            size_t nkv = 0;
            char enc[TEL_SYNCSTATE_MAX];
            if (next_ready) {
                size_t len = tel__pending_encode(&pf.p, enc, sizeof enc);
                if (len)
                    kv[nkv++] = (tel_meta_kv){ TEL_META_PENDING, enc, len };
                else
                    next_ready = 0;
            }
            if (!cleared_backoff)
                kv[nkv++] = (tel_meta_kv){ TEL_META_BACKOFF, NULL, 0 };
            if ((rc = tel__queue_delete_meta(q, p.first_seq, p.last_seq, p.dropped, kv, nkv)) != TEL_OK)
                break;
            cleared_backoff = 1;
            if (audit_fd >= 0)
                audit_sent(b, p.count);
            ds->batches++;
            ds->events += p.count;
            ds->wire += gz.len;
            if (next_ready) {
                /* The prepared batch becomes the current one. */
                batch *tb = b;
                b = pf.b;
                pf.b = tb;
                tel_buf th = head, tg = gz;
                head = pf.head;
                gz = pf.gz;
                pf.head = th;
                pf.gz = tg;
                p = pf.p;
                carried = 1;
            }
            /* The pages of the map that the delete read stay in our
             * resident set until dropped; see collect(). */
            tel__queue_release_pages(q);
            continue;
        }
        if (s == 413) {
            if (p.count == 1) {
                /* One event the collector will never take: poison. */
                if ((rc = tel__queue_delete(q, p.first_seq, p.last_seq, 0)) != TEL_OK ||
                    (rc = tel__queue_add_dropped(q, 1)) != TEL_OK)
                    break;
                ds->dropped++;
                continue;
            }
            size_t half = p.count / 2;
            if (half < limit)
                limit = half;
            /* b may hold more records than the batch (a carried one never
             * does); the halves are b's first records either way. */
            if (b->n > p.count)
                b->n = p.count;
            if ((rc = new_pending(q, b, half, p.dropped, &p)) != TEL_OK)
                break;
            say(1, "%s: collector says too large; splitting into batches of %zu", app, half);
            continue;
        }
        if (s == 400 || s == 422) {
            /* The collector will never accept these bytes: drop them and
             * report how many in the next batch it does accept. */
            if ((rc = tel__queue_delete(q, p.first_seq, p.last_seq, 0)) != TEL_OK ||
                (rc = tel__queue_add_dropped(q, p.count)) != TEL_OK)
                break;
            tel__queue_meta_put(q, TEL_META_PENDING, NULL, 0);
            ds->dropped += p.count;
            say(1, "%s: collector refused batch %s (HTTP %ld); %" PRIu32 " events dropped", app,
                idtxt, s, p.count);
            continue;
        }
        back_off(q, &res, s == 401 || s == 403 || s == 404, app);
        break;
    }
    if (rc != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        code = EXIT_FAIL;
    }
    if (ds->batches > 0 && q) {
        tel_last_sync ls = { tel__now_ms(), (uint32_t)ds->events };
        char enc[TEL_SYNCSTATE_MAX];
        size_t len = tel__last_sync_encode(&ls, enc, sizeof enc);
        if (len)
            tel__queue_meta_put(q, TEL_META_LAST_SYNC, enc, len);
    }
    tel_buf_free(&head);
    tel_buf_free(&gz);
    tel_buf_free(&pf.head);
    tel_buf_free(&pf.gz);
    if (mine) {
        tel_buf_free(&mine->recs);
        free(mine);
    }
    return code;
}

/* ---------------------------------------------------------------- apps */

/* Reads a string the library recorded in the queue's meta; "" if none. */
static void meta_string(tel_queue *q, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    if (tel__queue_meta_get(q, key, out, cap - 1, &len) != TEL_OK || len >= cap) {
        out[0] = '\0';
        return;
    }
    out[len] = '\0';
}

/* Takes the queue's single-flight lock; returns the fd, -1 when another
 * process holds it, -2 on error. */
static int take_lock(const char *qdir)
{
    char path[TEL_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" LOCK_FILE, qdir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -2;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? -1 : -2;
    }
    return fd;
}

static int sync_app(const char *app, uint64_t deadline, batch *b)
{
    char state[TEL_PATH_MAX];
    if (tel__app_check(app) != TEL_OK) {
        complain("%s", tel_last_error());
        return EXIT_USAGE;
    }
    if (tel__state_dir(app, state, sizeof state) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return EXIT_FAIL;
    }
    tel_queue *q;
    int rc = tel__queue_open(&q, state, NULL, 0);
    if (rc == TEL_ERR_NOTFOUND) {
        say(1, "%s: nothing queued", app);
        return EXIT_OK;
    }
    if (rc != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        return EXIT_FAIL;
    }
    int code = EXIT_OK;
    int wipe = 0;
    tel_upload *up = NULL;
    if (tel__queue_recovered(q))
        complain("%s: the queue was damaged; kept aside as %s, a fresh queue started", app,
                 tel__queue_recovered(q));
    int lock = take_lock(tel__queue_dir(q));
    if (lock == -1) {
        say(1, "%s: another tel-sync is draining this queue", app);
        goto out;
    }
    if (lock < 0) {
        complain("%s: cannot take the sync lock: %s", app, strerror(errno));
        code = EXIT_FAIL;
        goto out;
    }

    /* The endpoint and token the host recorded stand at the host's level
     * of precedence; the user's config, environment and our flags win. */
    static char host_endpoint[1024], host_token[512];
    meta_string(q, "endpoint", host_endpoint, sizeof host_endpoint);
    meta_string(q, "token", host_token, sizeof host_token);
    /* The host's declared variables are read from our own environment:
     * a cron job sees the user's crontab settings, not the shell's. */
    static tel_decls decls;
    rc = tel__decls_load(state, &decls);
    if (rc == TEL_ERR_CORRUPT) {
        /* It may declare an opt-out we cannot read: as for a malformed
         * telemetry.conf, send nothing and delete nothing. */
        complain("%s: %s", app, tel_last_error());
        code = EXIT_CONFIG;
        goto out;
    }
    int have_decls = rc == TEL_OK;
    tel_host_settings host = {
        .enabled = -1, .enabled_src = TEL_SRC_HOST,
        .endpoint = host_endpoint[0] ? host_endpoint : NULL,
        .token = host_token[0] ? host_token : NULL,
        .logging = -1,
        .decls = have_decls ? &decls : NULL,
    };
    tel_flag_settings flags = {
        .enabled = -1, .endpoint = opt->endpoint, .token = opt->token, .logging = -1,
    };
    static tel_policy pol;
    rc = tel__policy_resolve(&pol, app, &host, &flags);
    memset(host_token, 0, sizeof host_token);
    if (rc == TEL_ERR_CONFIG) {
        /* A broken config file may hold an opt-out we cannot read: send
         * nothing, but do not purge on a guess either. */
        complain("%s: %s", app, tel_last_error());
        code = EXIT_CONFIG;
        goto out;
    }
    if (rc != TEL_OK && rc != TEL_DISABLED) {
        complain("%s: %s", app, tel_last_error());
        code = EXIT_FAIL;
        goto out;
    }
    if (!pol.enabled && !pol.opted_out) {
        /* Off by the host's default, with no "on" from the user in our
         * environment: what an earlier run recorded (when the user had
         * said on) waits; it is neither sent nor deleted. */
        say(1, "%s: telemetry is off (%s); nothing sent, the queue is kept", app,
            pol.enabled_why[0] ? pol.enabled_why : tel__source_name(pol.enabled_src));
        goto out;
    }
    if (!pol.enabled) {
        if ((rc = tel__queue_purge(q)) != TEL_OK) {
            complain("%s: %s", app, tel_last_error());
            code = EXIT_FAIL;
        } else {
            say(1, "%s: telemetry is off (%s); queue purged, nothing sent", app,
                pol.enabled_why[0] ? pol.enabled_why : tel__source_name(pol.enabled_src));
            wipe = 1;
        }
        goto out;
    }

    tel_queue_stats st;
    if ((rc = tel__queue_stats(q, &st)) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        code = EXIT_FAIL;
        goto out;
    }
    if (pol.debug || pol.inspect[0]) {
        code = dry_run(q, b, &pol, app, deadline);
        goto out;
    }
    if (pol.log_file[0])
        audit_fd = open(pol.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (st.count == 0) {
        say(1, "%s: nothing queued", app);
        goto out;
    }
    if (tel__endpoint_check(pol.endpoint) != TEL_OK) {
        complain("%s: %s", app, tel_last_error());
        code = EXIT_CONFIG;
        goto out;
    }

    tel_backoff bo;
    if (!opt->force && tel__backoff_load(q, &bo) == TEL_OK) {
        uint64_t now = tel__now_ms();
        /* A wait longer than any we set means the clock went back: ignore
         * it rather than stall for the size of the jump. */
        if (bo.until_ms > now && bo.until_ms - now <= BACKOFF_MAX_MS + 60000) {
            say(1, "%s: deferred: next attempt in %" PRIu64 " s (attempt %" PRIu32
                   ", last: %s)", app, (bo.until_ms - now + 999) / 1000, bo.attempt,
                bo.reason);
            goto out;
        }
    }

    if ((rc = tel__upload_new(&up, pol.endpoint, pol.token[0] ? pol.token : NULL)) != TEL_OK) {
        memset(pol.token, 0, sizeof pol.token);
        complain("%s: %s", app, tel_last_error());
        code = EXIT_FAIL;
        goto out;
    }
    memset(pol.token, 0, sizeof pol.token);
    drain_stats ds = { 0, 0, 0, 0 };
    uint64_t t0 = tel__mono_ms();
    code = drain(&q, state, b, up, app, deadline, &ds);
    uint64_t ms = tel__mono_ms() - t0;
    say(1, "%s: sent %zu events in %zu batches (%zu bytes gzip) in %" PRIu64 " ms%s", app,
        ds.events, ds.batches, ds.wire, ms, ds.dropped ? ", some dropped" : "");
out:
    if (audit_fd >= 0)
        close(audit_fd);
    audit_fd = -1;
    tel__upload_free(up);
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

/* Keeps the worst outcome of several apps: a config error outranks a local
 * failure, which outranks success. */
static int worse(int a, int b)
{
    static const int rank[] = { [EXIT_OK] = 0, [EXIT_FAIL] = 2, [EXIT_USAGE] = 1, [EXIT_CONFIG] = 3 };
    return rank[b] > rank[a] ? b : a;
}

typedef struct sync_all_ctx {
    uint64_t deadline;
    batch *b;
    int code;
} sync_all_ctx;

static void sync_one_of_all(void *ud, const char *app)
{
    sync_all_ctx *c = ud;
    if (tel__mono_ms() + MIN_REQUEST_MS > c->deadline)
        say(1, "%s: out of time; skipped", app);
    else
        c->code = worse(c->code, sync_app(app, c->deadline, c->b));
}

static int sync_all(uint64_t deadline, batch *b)
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
           "  --max-time SEC   bound on the whole run (default 30)\n"
           "  --force          ignore a pending backoff and try now\n"
           "  -v, --verbose    say what happens; twice: every batch\n"
           "  -q, --quiet      print nothing, not even errors\n"
           "  -h, --help       this help\n"
           "  -V, --version    print the version\n"
           "\n"
           "Exit status:\n"
           "  0  sent, nothing to do, or deferred (offline, backing off, collector\n"
           "     refused with 401/403/404; see `tel status`)\n"
           "  1  local failure (the queue could not be read or written)\n"
           "  2  bad usage\n"
           "  3  bad configuration (endpoint neither https nor loopback, config file\n"
           "     malformed); nothing was sent or deleted\n");
}

int main(int argc, char **argv)
{
    cli_prog = "tel-sync";
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

    /* A collector closing the connection under us must be an error code
     * from libcurl, not a signal that kills the run mid-batch. */
    signal(SIGPIPE, SIG_IGN);
    uint64_t deadline = tel__mono_ms() + o.max_time_ms;
    batch *b = calloc(1, sizeof *b);
    if (!b) {
        complain("out of memory");
        return EXIT_FAIL;
    }
    int code = app ? sync_app(app, deadline, b) : sync_all(deadline, b);
    tel_buf_free(&b->recs);
    free(b);
    return code;
}
