/* SPDX-License-Identifier: MIT */
/*
 * sync/drain.c - the sync protocol over one queue (see sync.h): choosing
 * a batch and remembering it, sending it through the given transport,
 * and what each answer does to the queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "columns.h"
#include "sync.h"

/* Records of a batch leave room for the batch's own header under the
 * wire's byte limit. */
#define BATCH_RECORD_BYTES (TEL_BATCH_MAX_BYTES - 256)

void tel__sync_notef(tel_sync_note_fn fn, void *ud, int level, const char *fmt, ...)
{
    if (!fn)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fn(ud, level, line);
}

#define note(io, level, ...) tel__sync_notef((io)->note, (io)->note_ud, (level), __VA_ARGS__)

/* ------------------------------------------------------------- batches */

/*
 * One batch in memory: copies of its records (so no read transaction
 * outlives the scan) and their sequence numbers.  At most two exist at a
 * time (the current one and the prefetched next), which is what bounds
 * tel-sync's memory whatever the queue holds.
 */
struct tel_sync_batch {
    tel_buf recs;
    size_t n;
    uint64_t seq[TEL_BATCH_MAX_EVENTS];
    uint32_t off[TEL_BATCH_MAX_EVENTS];
    uint32_t len[TEL_BATCH_MAX_EVENTS];
    uint8_t version[TEL_BATCH_MAX_EVENTS];   /* the schema version each record needs */
    uint8_t columnar[TEL_BATCH_MAX_EVENTS];  /* 1: parts[] rebuild the record exactly */
    tel_record_parts parts[TEL_BATCH_MAX_EVENTS];
    tel_columns cols;         /* scratch of the column-wise layout */
    uint64_t poison[TEL_BATCH_MAX_EVENTS];
    size_t npoison;
    uint8_t anon[TEL_ID_LEN];
    int anon_nil;
    uint64_t last_seen;       /* highest seq looked at and not refused */
    uint64_t stop_seq;        /* records after this one wait for the next run */
    int oom;
};

tel_sync_batch *tel__sync_batch_new(void)
{
    return calloc(1, sizeof(tel_sync_batch));
}

void tel__sync_batch_free(tel_sync_batch *b)
{
    if (!b)
        return;
    tel__buf_free(&b->recs);
    free(b);
}

static int collect_one(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    tel_sync_batch *b = ud;
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
    if (tel__buf_append(&b->recs, data, len) != 0) {
        b->oom = 1;
        return 1;
    }
    b->seq[b->n] = seq;
    b->off[b->n] = (uint32_t)(b->recs.len - len);
    b->len[b->n] = (uint32_t)len;
    b->version[b->n] = (uint8_t)r.version;
    b->columnar[b->n] = (uint8_t)tel__record_parts(&r, &b->parts[b->n]);
    b->n++;
    b->last_seen = seq;
    return 0;
}

static int collect(tel_queue *q, tel_sync_batch *b, uint64_t from, size_t max_events)
{
    tel__buf_clear(&b->recs);
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

/* Lays b's first p->count records out column by column (version 3) into
 * head, when every one of them can be: TEL_OK, TEL_ERR_INVALID when the
 * batch must go in version 1 or 2, or TEL_ERR_NOMEM. */
static int build_columns(tel_sync_batch *b, const tel_pending *p, const tel_batch_head *h, tel_buf *head)
{
    for (size_t i = 0; i < p->count; i++)
        if (!b->columnar[i])
            return TEL_ERR_INVALID;
    return tel__batch_columns(head, h, b->recs.p, b->off, b->parts, p->count, &b->cols);
}

/* Where the event ids of a version 3 batch lie in it: the body of its
 * "i" column (SPEC.md 4.1), 16 random bytes per event.  Returns the
 * offset, *len the size; 0 and 0 when it has none. */
static size_t id_column(const tel_buf *batch, size_t *len)
{
    tel_mp r;
    tel_mp_obj o;
    tel__mp_init(&r, batch->p, batch->len);
    *len = 0;
    if (tel__mp_next(&r, &o) != 0 || o.kind != TEL_MP_MAP)
        return 0;
    for (uint32_t k = 0; k < o.v.n; k++) {
        tel_mp_obj key;
        if (tel__mp_next(&r, &key) != 0 || key.kind != TEL_MP_STR)
            return 0;
        if (key.len == 1 && key.data[0] == 'i') {
            tel_mp_obj ids;
            if (tel__mp_next(&r, &ids) != 0 || ids.kind != TEL_MP_BIN)
                return 0;
            *len = ids.len;
            return (size_t)(ids.data - batch->p);
        }
        if (tel__mp_skip(&r, TEL_MP_MAX_DEPTH) != 0)
            return 0;
    }
    return 0;
}

/* Builds the gzip'd body of b's first p->count records under pending p:
 * column-wise when `columns` (the collector reads version 3) and the
 * records allow it, else version 1 or 2.  *layout says which was built. */
static int build_body(tel_sync_batch *b, const tel_pending *p, tel_buf *head, tel_buf *gz, int columns,
                      int *layout)
{
    tel_batch_head h = {
        .sent_ms = tel__now_ms(),
        .dropped = p->dropped,
        .anon = b->anon_nil ? NULL : b->anon,
        .nevents = p->count,
    };
    memcpy(h.id, p->id, TEL_ID_LEN);
    tel__buf_clear(head);
    tel__buf_clear(gz);
    if (columns && p->count <= b->n) {
        int rc = build_columns(b, p, &h, head);
        if (rc == TEL_OK) {
            *layout = TEL_SCHEMA_VERSION_COLUMNS;
            size_t ids_len, ids = id_column(head, &ids_len);
            tel_iov spans[3] = { { head->p, ids, 0 }, { head->p + ids, ids_len, 1 },
                                 { head->p + ids + ids_len, head->len - ids - ids_len, 0 } };
            return tel__upload_gzip(gz, spans, 3);
        }
        if (rc != TEL_ERR_INVALID)
            return rc;
    }
    /* The oldest version that allows every record: a queue without
     * structured values keeps speaking version 1 (format/SPEC.md 8). */
    h.version = TEL_SCHEMA_VERSION_FLAT;
    for (size_t i = 0; i < p->count && i < b->n; i++)
        if (b->version[i] > h.version)
            h.version = b->version[i];
    *layout = h.version;
    int rc = tel__batch_begin(head, &h);
    if (rc != TEL_OK)
        return rc;
    size_t bytes = p->count == b->n ? b->recs.len : b->off[p->count - 1] + b->len[p->count - 1];
    tel_iov spans[2] = { { head->p, head->len, 0 }, { b->recs.p, bytes, 0 } };
    return tel__upload_gzip(gz, spans, 2);
}

/* ------------------------------------------------------------ sent.log */

/*
 * A bounded, local record of every upload attempt, for the user who wants
 * to audit what left the machine.  It names batches and sizes, never
 * contents or tokens.  Past TEL_SENT_LOG_MAX it is rotated to sent.log.1,
 * so it never holds more than twice that.  Best effort: an audit line that
 * cannot be written must not stop the delivery it describes.
 */
static void sent_log(const char *qdir, const uint8_t id[TEL_ID_LEN], size_t events,
                     size_t wire, const tel_upload_result *res)
{
    char path[TEL_PATH_MAX + 16], old[TEL_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/" TEL_SENT_LOG, qdir);
    snprintf(old, sizeof old, "%s/" TEL_SENT_LOG ".1", qdir);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > TEL_SENT_LOG_MAX)
        rename(path, old);
    int fd = tel__open_file(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
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
        if (write(fd, line, len) < 0) {
            /* best effort, as above */
        }
    }
    close(fd);
}

/* ------------------------------------------------------------- backoff */

/* Persists the backoff after a failed attempt (see tel__backoff_delay):
 * the day-long one when long_wait, with `reason` (NULL: the answer's own)
 * for tel status and -v. */
static int back_off(tel_queue *q, const tel_sync_io *io, const tel_upload_result *res,
                    const char *app, int long_wait, const char *reason)
{
    tel_backoff b;
    if (tel__backoff_load(q, &b) != TEL_OK)
        memset(&b, 0, sizeof b);
    uint64_t delay = tel__backoff_next(&b, res, long_wait);
    if (reason)
        snprintf(b.reason, sizeof b.reason, "%s", reason);
    char enc[TEL_SYNCSTATE_MAX];
    size_t len = tel__backoff_encode(&b, enc, sizeof enc);
    int rc = len ? tel__queue_meta_put(q, TEL_META_BACKOFF, enc, len)
                 : tel__fail(TEL_ERR_IO, "the backoff does not encode");
    note(io, 1, "%s: %s; backing off %" PRIu64 " s (attempt %" PRIu32 ")", app, b.reason,
         delay / 1000, b.attempt);
    return rc;
}

/* ----------------------------------------------------------- dry runs */

static int write_dry_batch(FILE *out, const tel_sync_batch *b, uint64_t dropped)
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
    if (tel__buf_printf(&line, "{\"batch\":\"%s\",\"sent\":%" PRIu64 ",\"dropped\":%" PRIu64
                        ",\"anon\":%s%s%s,\"events\":[",
                        idtxt, tel__now_ms(), dropped, b->anon_nil ? "null" : "\"",
                        b->anon_nil ? "" : anontxt, b->anon_nil ? "" : "\"") != 0)
        rc = tel__fail(TEL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < b->n && rc == TEL_OK; i++) {
        tel_record r;
        if (tel__record_decode(&r, b->recs.p + b->off[i], b->len[i]) != TEL_OK)
            continue;
        if ((i > 0 && tel__buf_puts(&line, ",") != 0) || tel__record_json(&r, &line) != TEL_OK)
            rc = tel__fail(TEL_ERR_NOMEM, "out of memory");
    }
    if (rc == TEL_OK && tel__buf_puts(&line, "]}\n") != 0)
        rc = tel__fail(TEL_ERR_NOMEM, "out of memory");
    if (rc == TEL_OK && fwrite(line.p, 1, line.len, out) != line.len)
        rc = tel__fail(TEL_ERR_IO, "could not write the inspect output");
    tel__buf_free(&line);
    return rc;
}

int tel__sync_dry_run(tel_queue *q, tel_sync_batch *b, FILE *out, uint64_t deadline,
                      size_t *batches, size_t *events)
{
    b->stop_seq = UINT64_MAX; /* a dry run shows all that is queued */
    tel_queue_stats st;
    uint64_t dropped = tel__queue_stats(q, &st) == TEL_OK ? st.dropped : 0;
    uint64_t from = 0;
    int rc = TEL_OK;
    *batches = *events = 0;
    while (tel__mono_ms() < deadline) {
        rc = collect(q, b, from, TEL_BATCH_MAX_EVENTS);
        if (rc != TEL_OK || (b->n == 0 && b->npoison == 0))
            break;
        if (b->n > 0) {
            if ((rc = write_dry_batch(out, b, dropped)) != TEL_OK)
                break;
            (*batches)++;
            *events += b->n;
        }
        dropped = b->npoison;
        from = b->last_seen + 1;
    }
    return rc;
}

/* ------------------------------------------------------------ draining */

/* A fresh batch id and range over b's first n records, not yet stored. */
static int fresh_pending(const tel_sync_batch *b, size_t n, uint64_t dropped, tel_pending *p)
{
    if (tel__uuid4(p->id) != 0)
        return tel__fail(TEL_ERR_IO, "no randomness for a batch id");
    p->first_seq = b->seq[0];
    p->last_seq = b->seq[n - 1];
    p->count = (uint32_t)n;
    p->dropped = dropped;
    p->first_sum = tel__pending_sum(b->recs.p + b->off[0], b->len[0]);
    return TEL_OK;
}

/* A fresh batch over b's first n records, stored before it is sent (in
 * its file, without a commit: syncstate.h says why). */
static int new_pending(tel_queue *q, const tel_sync_batch *b, size_t n, uint64_t dropped,
                       tel_pending *p)
{
    int rc = fresh_pending(b, n, dropped, p);
    return rc != TEL_OK ? rc : tel__pending_store(q, p);
}

/* The batch p is delivered or dropped: no retry may send it again.  One
 * that an older tel-sync kept in the meta table goes with a commit. */
static int forget_pending(tel_queue *q, const tel_pending *p)
{
    tel__pending_clear(q);
    return p->first_sum ? TEL_OK : tel__queue_meta_put(q, TEL_META_PENDING, NULL, 0);
}

/* Whether b still holds exactly the records of the stored batch p. */
static int pending_matches(const tel_sync_batch *b, const tel_pending *p)
{
    return b->n == p->count && b->seq[0] == p->first_seq && b->seq[b->n - 1] == p->last_seq &&
           (!p->first_sum || tel__pending_sum(b->recs.p + b->off[0], b->len[0]) == p->first_sum);
}

/* Deletes records that do not decode, one by one, and counts them dropped:
 * a collector would refuse the whole batch for them. */
static int drop_poison(tel_queue *q, const tel_sync_io *io, const tel_sync_batch *b,
                       const char *app)
{
    for (size_t i = 0; i < b->npoison; i++) {
        int rc = tel__queue_delete(q, b->poison[i], b->poison[i], 0);
        if (rc != TEL_OK)
            return rc;
    }
    note(io, 1, "%s: dropped %zu records that do not decode", app, b->npoison);
    return tel__queue_add_dropped(q, b->npoison);
}

/*
 * The next batch, prepared on a second thread while the current one is on
 * the wire: reading it out of the queue and gzipping it costs about as
 * much as the collector takes to answer, so doing both at once nearly
 * halves a drain.  The worker only reads the queue (its own short read
 * transaction) and builds bytes; every write stays on the calling thread,
 * after the join.
 */
typedef struct prefetch {
    tel_queue *q;
    tel_sync_batch *b;
    tel_buf head, gz;
    uint64_t from;
    size_t limit;
    uint64_t dropped;
    tel_pending p;
    int columns;              /* asked for the column-wise layout */
    int layout;               /* the version built */
    int ready;
} prefetch;

static void *prefetch_run(void *arg)
{
    prefetch *f = arg;
    f->ready = 0;
    /* A batch with poison, or nothing at all, is left to the main loop,
     * which knows how to handle both. */
    if (collect(f->q, f->b, f->from, f->limit) != TEL_OK || f->b->npoison || f->b->n == 0)
        return NULL;
    if (fresh_pending(f->b, f->b->n, f->dropped, &f->p) != TEL_OK ||
        build_body(f->b, &f->p, &f->head, &f->gz, f->columns, &f->layout) != TEL_OK)
        return NULL;
    f->ready = 1;
    return NULL;
}

/* Everything one drain carries from batch to batch. */
typedef struct drain {
    tel_queue *q;
    const tel_sync_io *io;
    const char *app;
    uint64_t deadline;
    tel_sync_stats *ds;
    char qdir[TEL_PATH_MAX];
    tel_sync_batch *b;        /* the batch being sent */
    tel_pending p;            /* its id and range, as stored */
    tel_buf head, gz;         /* its header and gzip'd body */
    size_t limit;             /* events per batch, lowered after a 413 */
    int ignore_pending;       /* the stored batch no longer matches the queue */
    int cleared_backoff;
    int carried;              /* b, p and gz were prepared by the prefetch */
    int columns;              /* gz was built asking for the column-wise layout */
    int layout;               /* the version gz was built in */
    unsigned versions;        /* what the collector said it reads (versions.c) */
    int columns_refused;      /* it refused a column-wise batch in this run */
    uint64_t stop_seq;        /* the last record queued when the drain began */
    uint64_t queued;          /* events queued when the drain began */
    prefetch pf;
    tel_sync_batch *spare;    /* allocated here, whichever of b, pf.b it is */
} drain;

/* What the loop does after a step. */
enum { STEP_SEND, STEP_AGAIN, STEP_STOP };

/* Whether to lay the next batch out in columns: only for a collector
 * that said it reads version 3, and not again in a run where it refused
 * one all the same. */
static int columns_ok(const drain *d)
{
    return (d->versions & (1u << TEL_SCHEMA_VERSION_COLUMNS)) && !d->columns_refused;
}

/*
 * Chooses the batch to send: the stored one again, when every one of its
 * records is still there exactly, else a new one (caps evicted some, or
 * it was already delivered).  Records that do not decode are dropped
 * first.  Sets *step; returns TEL_OK or an error.
 */
static int pick_batch(drain *d, int *step)
{
    tel_sync_batch *b = d->b;
    tel_pending *p = &d->p;
    int have_pending = !d->ignore_pending && tel__pending_load(d->q, p) == TEL_OK;
    int rc = have_pending ? collect(d->q, b, p->first_seq, p->count) : collect(d->q, b, 0, d->limit);
    *step = STEP_STOP;
    if (rc != TEL_OK)
        return rc;
    if (b->npoison > 0) {
        if ((rc = drop_poison(d->q, d->io, b, d->app)) != TEL_OK)
            return rc;
        d->ds->dropped += b->npoison;
        *step = STEP_AGAIN;
        return TEL_OK;
    }
    if (b->n == 0)
        return have_pending ? forget_pending(d->q, p) : TEL_OK;
    if (have_pending && !pending_matches(b, p)) {
        d->ignore_pending = 1;
        *step = STEP_AGAIN;
        return TEL_OK;
    }
    d->ignore_pending = 0;
    if (!have_pending) {
        tel_queue_stats st;
        if ((rc = tel__queue_stats(d->q, &st)) != TEL_OK ||
            (rc = new_pending(d->q, b, b->n, st.dropped, p)) != TEL_OK)
            return rc;
    }
    d->columns = columns_ok(d);
    if ((rc = build_body(b, p, &d->head, &d->gz, d->columns, &d->layout)) != TEL_OK)
        return rc;
    *step = STEP_SEND;
    return TEL_OK;
}

/* Starts preparing the next batch while this one travels, when the queue
 * holds more than this batch.  Returns non-zero when a worker runs. */
static int start_prefetch(drain *d, pthread_t *worker)
{
    tel_queue_stats st;
    if (!d->pf.b || d->p.last_seq >= d->stop_seq || tel__queue_stats(d->q, &st) != TEL_OK ||
        st.count <= d->b->n)
        return 0;
    d->pf.q = d->q;
    d->pf.from = d->p.last_seq + 1;
    d->pf.limit = d->limit;
    d->pf.dropped = st.dropped > d->p.dropped ? st.dropped - d->p.dropped : 0;
    d->pf.columns = columns_ok(d);
    return pthread_create(worker, NULL, prefetch_run, &d->pf) == 0;
}

/* The prepared batch becomes the current one. */
static void take_prefetched(drain *d)
{
    tel_sync_batch *tb = d->b;
    d->b = d->pf.b;
    d->pf.b = tb;
    tel_buf th = d->head, tg = d->gz;
    d->head = d->pf.head;
    d->gz = d->pf.gz;
    d->pf.head = th;
    d->pf.gz = tg;
    d->p = d->pf.p;
    d->columns = d->pf.columns;
    d->layout = d->pf.layout;
    d->carried = 1;
}

/*
 * 2xx: the acknowledged records go, and in the same transaction the
 * backoff of an earlier run ends and the last sync is noted: one commit,
 * and one sync, per batch.  Every commit takes the queue's single writer
 * lock and waits for the disk, and a host recording an event meanwhile
 * waits for both.  Only then is the next batch (if it was prepared)
 * recorded in the delivered one's place: a tel-sync killed in between
 * finds a record of a batch that is gone, and starts a new one.
 */
static int on_accepted(drain *d, int next_ready)
{
    tel_meta_kv kv[3];
    size_t nkv = 0, len;
    char last[TEL_SYNCSTATE_MAX];
    /* Where a tel-sync before this one kept the batch (syncstate.h). */
    kv[nkv++] = (tel_meta_kv){ TEL_META_PENDING, NULL, 0 };
    if (!d->cleared_backoff)
        kv[nkv++] = (tel_meta_kv){ TEL_META_BACKOFF, NULL, 0 };
    tel_last_sync ls = { tel__now_ms(), (uint32_t)(d->ds->events + d->p.count) };
    if ((len = tel__last_sync_encode(&ls, last, sizeof last)) == 0)
        return tel__fail(TEL_ERR_IO, "the last sync does not encode");
    kv[nkv++] = (tel_meta_kv){ TEL_META_LAST_SYNC, last, len };
    int rc = tel__queue_delete_meta(d->q, d->p.first_seq, d->p.last_seq, d->p.dropped, kv, nkv);
    if (rc != TEL_OK)
        return rc;
    d->cleared_backoff = 1;
    for (size_t i = 0; d->io->sent && i < d->p.count && i < d->b->n; i++)
        d->io->sent(d->io->sent_ud, d->b->recs.p + d->b->off[i], d->b->len[i]);
    d->ds->batches++;
    d->ds->events += d->p.count;
    d->ds->wire += d->gz.len;
    if (d->io->progress)
        d->io->progress(d->io->progress_ud, d->ds->events, d->queued);
    if (next_ready) {
        if ((rc = tel__pending_store(d->q, &d->pf.p)) != TEL_OK)
            return rc;
        take_prefetched(d);
    } else {
        tel__pending_clear(d->q);
    }
    /* The pages of the map that the delete read stay in our resident set
     * until dropped; see collect(). */
    tel__queue_release_pages(d->q);
    return TEL_OK;
}

/* 413 on more than one event: split in halves under new ids, and the
 * rest of the run keeps to the smaller size. */
static int on_too_large(drain *d)
{
    tel_pending *p = &d->p;
    int rc;
    size_t half = p->count / 2;
    if (half < d->limit)
        d->limit = half;
    /* b may hold more records than the batch (a carried one never does);
     * the halves are b's first records either way. */
    if (d->b->n > p->count)
        d->b->n = p->count;
    if ((rc = new_pending(d->q, d->b, half, p->dropped, p)) != TEL_OK)
        return rc;
    note(d->io, 1, "%s: collector says too large; splitting into batches of %zu", d->app, half);
    return TEL_OK;
}

/*
 * 413 on a single event, which is at most 16 KiB: the collector (or a
 * proxy before it) is misconfigured or lying, and the event is not at
 * fault, so it is kept and the run waits as long as for a wrong token.
 * The batch of one is forgotten so that the next run, against a collector
 * fixed meanwhile, starts again from full-size batches; a new id for it
 * is safe, since an answer of 413 means nothing was stored.
 */
static int on_one_too_large(drain *d, const tel_upload_result *res)
{
    int rc = forget_pending(d->q, &d->p);
    if (rc != TEL_OK)
        return rc;
    return back_off(d->q, d->io, res, d->app, 1, "HTTP 413 for a single event: collector misconfigured");
}

/* 400, 422: the collector will never accept these bytes: drop them and
 * report how many in the next batch it does accept. */
static int on_refused(drain *d, long status)
{
    tel_pending *p = &d->p;
    int rc;
    if ((rc = tel__queue_delete(d->q, p->first_seq, p->last_seq, 0)) != TEL_OK ||
        (rc = tel__queue_add_dropped(d->q, p->count)) != TEL_OK ||
        (rc = forget_pending(d->q, p)) != TEL_OK)
        return rc;
    d->ds->dropped += p->count;
    char idtxt[37];
    tel__uuid_format(p->id, idtxt);
    note(d->io, 1, "%s: collector refused batch %s (HTTP %ld); %" PRIu32 " events dropped",
         d->app, idtxt, status, p->count);
    return TEL_OK;
}

/*
 * Whether a request without an answer was cut by the run's own deadline
 * (its timeout was what the run had left, and that is spent) rather than
 * by the network: the collector did nothing wrong, so there is no
 * backoff; the stored batch goes again, same id, at the next run.
 */
static int own_deadline(const drain *d, uint64_t started, const tel_upload_result *res)
{
    return res->status == 0 && d->deadline - started < TEL_UPLOAD_REQUEST_MS &&
           tel__mono_ms() + TEL_SYNC_MIN_REQUEST_MS > d->deadline;
}

/* 1 when the batch p may no longer be sent: its queue file was removed
 * (tel forget, tel disable) or its records are gone from the queue (the
 * purge that comes first). */
static int forgotten(tel_queue *q, const tel_pending *p)
{
    tel_queue_stats st;
    if (tel__queue_stale(q))
        return 1;
    return tel__queue_stats(q, &st) == TEL_OK &&
           (st.count == 0 || st.first_seq > p->first_seq || st.last_seq < p->last_seq);
}

/* Every answer says what its collector reads (nothing: versions 1 and 2
 * only); a change is remembered for the next run.  Best effort: a hint
 * that cannot be stored costs a batch in version 1 or 2 next time. */
static void learn_versions(drain *d, unsigned versions)
{
    if (versions == d->versions)
        return;
    d->versions = versions;
    if (tel__versions_store(d->q, d->io->endpoint, versions) != TEL_OK)
        note(d->io, 2, "%s: could not remember the collector's versions: %s", d->app, tel_last_error());
}

/* Sends the current batch, with the next one prepared meanwhile, and acts
 * on the answer.  Sets *step; returns TEL_OK or an error. */
static int send_batch(drain *d, int *step)
{
    uint64_t now = tel__mono_ms();
    *step = STEP_STOP;
    if (now + TEL_SYNC_MIN_REQUEST_MS > d->deadline) {
        note(d->io, 1, "%s: out of time; the rest waits for the next run", d->app);
        return TEL_OK;
    }
    /* A forget or disable that returned while the last batch was on the
     * wire removed the queue: nothing read before it, prepared ahead or
     * not, may leave the machine after it. */
    if (forgotten(d->q, &d->p)) {
        note(d->io, 1, "%s: the queue was forgotten or disabled meanwhile; nothing more is sent", d->app);
        return TEL_OK;
    }
    pthread_t worker;
    int prefetching = start_prefetch(d, &worker);
    tel_upload_result res;
    int rc = d->io->send(d->io->send_ud, d->p.id, d->gz.p, d->gz.len, d->deadline - now, &res);
    if (prefetching)
        pthread_join(worker, NULL);
    if (rc != TEL_OK)
        return rc;
    sent_log(d->qdir, d->p.id, d->p.count, res.sent_bytes, &res);
    char idtxt[37];
    tel__uuid_format(d->p.id, idtxt);
    if (res.status)
        note(d->io, 2, "%s: batch %s: %" PRIu32 " events, %zu bytes, version %d: HTTP %ld", d->app,
             idtxt, d->p.count, d->gz.len, d->layout, res.status);
    else
        note(d->io, 2, "%s: batch %s: %" PRIu32 " events, %zu bytes, version %d: %s", d->app, idtxt,
             d->p.count, d->gz.len, d->layout, res.error);

    long s = res.status;
    if (s)
        learn_versions(d, res.versions);
    *step = STEP_AGAIN;
    if (s >= 200 && s < 300)
        return on_accepted(d, prefetching && d->pf.ready);
    if (s == 413 && d->p.count > 1)
        return on_too_large(d);
    if ((s == 400 || s == 422) && d->layout == TEL_SCHEMA_VERSION_COLUMNS) {
        /* Nothing is lost to the newer layout: a collector that refuses
         * it (an older one behind the same address, say) gets the same
         * batch, same id, in version 1 or 2. */
        d->columns_refused = 1;
        note(d->io, 1, "%s: collector refused batch %s in version 3 (HTTP %ld); sending it in version 1 or 2",
             d->app, idtxt, s);
        return TEL_OK;
    }
    if (s == 400 || s == 422)
        return on_refused(d, s);
    *step = STEP_STOP;
    if (own_deadline(d, now, &res)) {
        note(d->io, 1, "%s: out of time; the rest waits for the next run", d->app);
        return TEL_OK;
    }
    d->ds->backed_off = 1;
    if (s == 413)
        return on_one_too_large(d, &res);
    return back_off(d->q, d->io, &res, d->app, tel__backoff_is_auth(s), NULL);
}

static int drain_loop(drain *d)
{
    int rc = TEL_OK, step = STEP_AGAIN;
    while (rc == TEL_OK && step != STEP_STOP) {
        if (tel__mono_ms() + TEL_SYNC_MIN_REQUEST_MS > d->deadline) {
            note(d->io, 1, "%s: out of time; the rest waits for the next run", d->app);
            break;
        }
        if (d->carried) {
            d->carried = 0;
            step = STEP_SEND;
            /* Prepared before the last answer told what the collector
             * reads: built again when that changed the layout to ask. */
            if (d->columns != columns_ok(d)) {
                d->columns = columns_ok(d);
                rc = build_body(d->b, &d->p, &d->head, &d->gz, d->columns, &d->layout);
            }
        } else {
            rc = pick_batch(d, &step);
        }
        if (rc == TEL_OK && step == STEP_SEND)
            rc = send_batch(d, &step);
    }
    return rc;
}

int tel__sync_drain(tel_queue *q, tel_sync_batch *b, const tel_sync_io *io, const char *app,
                    uint64_t deadline, tel_sync_stats *stats)
{
    drain d = {
        .q = q, .io = io, .app = app, .deadline = deadline, .ds = stats, .b = b,
        .head = TEL_BUF_INIT, .gz = TEL_BUF_INIT, .limit = TEL_BATCH_MAX_EVENTS,
        .pf = { .head = TEL_BUF_INIT, .gz = TEL_BUF_INIT },
    };
    snprintf(d.qdir, sizeof d.qdir, "%s", tel__queue_dir(q));
    d.versions = tel__versions_load(q, io->endpoint);
    /* Without memory for a second batch there is simply no prefetch. */
    d.spare = d.pf.b = tel__sync_batch_new();

    /* A run delivers what was queued when it started.  Events that arrive
     * meanwhile wait for the next run, so a host emitting steadily cannot
     * keep one run busy with a stream of tiny batches until its deadline. */
    tel_queue_stats start;
    int rc = tel__queue_stats(q, &start);
    if (rc == TEL_OK) {
        d.stop_seq = b->stop_seq = start.last_seq;
        d.queued = start.count;
        if (d.spare)
            d.spare->stop_seq = start.last_seq;
        rc = drain_loop(&d);
    }
    tel__buf_free(&d.head);
    tel__buf_free(&d.gz);
    tel__buf_free(&d.pf.head);
    tel__buf_free(&d.pf.gz);
    tel__sync_batch_free(d.spare);
    return rc;
}
