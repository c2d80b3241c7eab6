/* SPDX-License-Identifier: MIT */
/*
 * collector/batch.c - what tel-collect does with the body of an upload:
 * inflate it within a bound, decode and check it as strictly as
 * format/SPEC.md says, and hand it to the store in one transaction, with
 * the export written inside that transaction so that the file and the
 * database never disagree about a batch that was answered 200.
 *
 * Memory is bounded per request whatever the client sends: the body is
 * inflated as it arrives into a buffer that never grows past the largest
 * batch the wire permits, so a gzip bomb costs at most that much.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "dash_store.h"
#include "internal.h"
#include "text.h"

/* The inflated batch may hold TEL_BATCH_MAX_BYTES of records plus the
 * batch's own fields and MessagePack headers; 64 KiB is far more than
 * those take, and anything past the sum is refused before it is stored. */
#define INFLATE_BOUND ((size_t)TEL_BATCH_MAX_BYTES + 64u * 1024u)
#define INFLATE_STEP (64u * 1024u)

/* Events stored by this process, for --exit-after. */
static atomic_ullong n_stored;
static atomic_int exit_signalled;

void tel__refuse(verdict *v, unsigned status, const char *fmt, ...)
{
    if (v->status)
        return;
    v->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ inflating */

void tel__inflate_free(inflater *z)
{
    if (z->live)
        inflateEnd(&z->zs);
    z->live = 0;
    tel__buf_free(&z->out);
}

/* Inflates what zs holds into z->out, within INFLATE_BOUND + 1 bytes
 * (reaching that is already the refusal).  Returns 1 at the end of the
 * stream, 0 when it wants more input, -1 when refused. */
static int inflate_some(inflater *z, verdict *v, int more_after)
{
    for (;;) {
        if (z->out.len > INFLATE_BOUND) {
            tel__refuse(v, 413, "batch inflates to more than %zu bytes", (size_t)INFLATE_BOUND);
            return -1;
        }
        if (z->out.len == z->out.cap && tel__buf_reserve(&z->out, INFLATE_STEP) != 0) {
            tel__refuse(v, 500, "out of memory");
            return -1;
        }
        size_t room = z->out.cap - z->out.len;
        if (room > INFLATE_BOUND + 1 - z->out.len)
            room = INFLATE_BOUND + 1 - z->out.len;
        z->zs.next_out = z->out.p + z->out.len;
        z->zs.avail_out = (uInt)room;
        int rc = inflate(&z->zs, Z_NO_FLUSH);
        z->out.len += room - z->zs.avail_out;
        if (rc == Z_STREAM_END) {
            z->end = 1;
            if (z->out.len > INFLATE_BOUND)
                tel__refuse(v, 413, "batch inflates to more than %zu bytes", (size_t)INFLATE_BOUND);
            else if (z->zs.avail_in > 0 || more_after)
                tel__refuse(v, 400, "data after the end of the gzip stream");
            return 1;
        }
        if (rc == Z_BUF_ERROR && z->zs.avail_in == 0)
            return 0;                 /* wants more input */
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            tel__refuse(v, rc == Z_MEM_ERROR ? 500 : 400, "body is not a valid gzip stream");
            return -1;
        }
        if (z->zs.avail_in == 0 && z->zs.avail_out > 0)
            return 0;                 /* all taken, nothing pending */
    }
}

void tel__inflate_piece(inflater *z, const uint8_t *p, size_t n, verdict *v)
{
    if (z->end) {
        tel__refuse(v, 400, "data after the end of the gzip stream");
        return;
    }
    if (!z->live) {
        if (inflateInit2(&z->zs, 16 + MAX_WBITS) != Z_OK) {
            tel__refuse(v, 500, "out of memory");
            return;
        }
        z->live = 1;
    }
    while (n > 0) {
        /* zlib counts in uInt; MHD's pieces are small, but never assume. */
        uInt take = n > 0x40000000u ? 0x40000000u : (uInt)n;
        z->zs.next_in = (Bytef *)p;
        z->zs.avail_in = take;
        if (inflate_some(z, v, n > take) != 0)
            return;
        p += take;
        n -= take;
    }
}

/* Refuses a body that is missing or cut short; 0 when it is whole. */
static int body_whole(const inflater *z, verdict *v)
{
    if (!z->live)
        tel__refuse(v, 400, "empty body");
    else if (!z->end)
        tel__refuse(v, 400, "gzip stream is truncated");
    return v->status ? -1 : 0;
}

/* ------------------------------------------------------------ decoding */

/* One event's texts, as offsets into the batch's arena until decoding
 * ends (the arena moves as it grows). */
typedef struct ev_text {
    char id[37], exec[37];
    uint8_t id_bytes[TEL_ID_LEN], exec_bytes[TEL_ID_LEN];
    int has_exec, has_version;
    int64_t ts;
    size_t name, app, app_version, props, props_len, context, context_len;
    size_t line, line_len;        /* its export line in lines */
} ev_text;

/* A context seen in the batch: its record bytes (in ctx_raw) and what
 * take_event made of them.  Events of one install share their context, so
 * most events of a batch find theirs here instead of rendering it again. */
typedef struct ctx_seen {
    uint32_t hash, raw_len;
    size_t raw;
    size_t app, app_version, context, context_len;
    int has_version;
} ctx_seen;

/* Slots of the table (a power of two); at most half are used, the
 * contexts past that are rendered each time. */
#define CTX_SLOTS 512

typedef struct decoded {
    ev_text *evs;
    ctx_seen *ctx;                /* CTX_SLOTS, hash 0 = empty */
    size_t nctx;
    tel_buf ctx_raw;
    series_ref *refs;             /* per event, its /metrics series */
    size_t nev;
    tel_buf arena, lines, keys;
    char suffix[96];              /* ,"batch":"<uuid>","received":<ms>}\n */
    size_t suffix_len;
    int failed;
} decoded;

static void decoded_free(decoded *d)
{
    free(d->evs);
    free(d->ctx);
    tel__buf_free(&d->ctx_raw);
    free(d->refs);
    tel__buf_free(&d->arena);
    tel__buf_free(&d->lines);
    tel__buf_free(&d->keys);
}

/* Copies s into the arena as NUL-terminated text that a database takes:
 * bytes that are not UTF-8, and NUL, become U+FFFD (the record decoder
 * does not check the UTF-8 of context strings).  Returns -1 when out of
 * memory. */
static int arena_text(tel_buf *a, tel_str s, size_t *off)
{
    *off = a->len;
    const uint8_t *p = (const uint8_t *)s.p;
    size_t i = 0;
    while (i < s.len) {
        size_t k = p[i] ? tel__utf8_seq(p + i, s.len - i) : 0;
        if (k == 0) {
            if (tel__buf_puts(a, "\xef\xbf\xbd"))
                return -1;
            i++;
            continue;
        }
        if (tel__buf_append(a, p + i, k))
            return -1;
        i += k;
    }
    return tel__buf_append(a, "", 1);
}

/* Appends the event's export line: its JSON view with the batch id and
 * receive time added as the object's last fields. */
static int export_line(decoded *d, ev_text *e, const tel_record *r)
{
    size_t start = d->lines.len;
    if (tel__record_json(r, &d->lines) != TEL_OK)
        return -1;
    /* The object must be "{...}" with at least one member, so that the
     * fields appended after a comma keep it valid JSON. */
    if (d->lines.len - start < 3 || d->lines.p[start] != '{' || d->lines.p[d->lines.len - 1] != '}')
        return -1;
    d->lines.len--;
    if (tel__buf_append(&d->lines, d->suffix, d->suffix_len) != 0)
        return -1;
    e->line = start;
    e->line_len = d->lines.len - start;
    return 0;
}

/* The slot of r's context: the one holding it, or the empty one where it
 * goes; NULL when the table is full (or r has no context bytes). */
static ctx_seen *ctx_slot(decoded *d, const tel_record *r, uint32_t *hash)
{
    if (!r->ctx_at || (!d->ctx && !(d->ctx = calloc(CTX_SLOTS, sizeof *d->ctx))))
        return NULL;
    uint32_t h = 2166136261u;                       /* FNV-1a */
    for (uint32_t i = 0; i < r->ctx_size; i++)
        h = (h ^ r->ctx_at[i]) * 16777619u;
    *hash = h | 1;
    for (uint32_t i = h;; i++) {
        ctx_seen *c = &d->ctx[i & (CTX_SLOTS - 1)];
        if (!c->hash)
            return d->nctx < CTX_SLOTS / 2 ? c : NULL;
        if (c->hash == *hash && c->raw_len == r->ctx_size && memcmp(d->ctx_raw.p + c->raw, r->ctx_at, c->raw_len) == 0)
            return c;
    }
}

/* Sets e's app, app_version and context from r's context, rendered once
 * per distinct context of the batch.  Returns -1 when out of memory. */
static int take_context(decoded *d, ev_text *e, const tel_record *r)
{
    uint32_t hash = 0;
    ctx_seen *c = ctx_slot(d, r, &hash);
    if (c && c->hash) {
        e->app = c->app;
        e->app_version = c->app_version;
        e->has_version = c->has_version;
        e->context = c->context;
        e->context_len = c->context_len;
        return 0;
    }
    tel_buf *a = &d->arena;
    e->has_version = r->app_version.p != NULL;
    if (arena_text(a, r->app, &e->app) || (e->has_version && arena_text(a, r->app_version, &e->app_version)))
        return -1;
    e->context = a->len;
    if (tel__record_context_json(r, a) != TEL_OK || tel__buf_append(a, "", 1) != 0)
        return -1;
    e->context_len = a->len - 1 - e->context;
    if (!c)
        return 0;
    size_t raw = d->ctx_raw.len;
    if (tel__buf_append(&d->ctx_raw, r->ctx_at, r->ctx_size) != 0)
        return 0;                                   /* not remembered, still right */
    *c = (ctx_seen){ .hash = hash, .raw_len = r->ctx_size, .raw = raw, .app = e->app,
                     .app_version = e->app_version, .context = e->context, .context_len = e->context_len,
                     .has_version = e->has_version };
    d->nctx++;
    return 0;
}

/* Called by tel__batch_decode for each record of a valid batch. */
static int take_event(void *ud, const tel_record *r)
{
    decoded *d = ud;
    if (d->nev >= TEL_BATCH_MAX_EVENTS ||
        (!d->evs && !(d->evs = calloc(TEL_BATCH_MAX_EVENTS, sizeof *d->evs))) ||
        (!d->refs && !(d->refs = calloc(TEL_BATCH_MAX_EVENTS, sizeof *d->refs))))
        goto fail;
    series_ref *ref = &d->refs[d->nev];
    ev_text *e = &d->evs[d->nev++];
    tel__uuid_format(r->id, e->id);
    memcpy(e->id_bytes, r->id, TEL_ID_LEN);
    e->ts = r->ts_ms > INT64_MAX ? INT64_MAX : (int64_t)r->ts_ms;
    e->has_exec = r->exec != NULL;
    if (r->exec) {
        tel__uuid_format(r->exec, e->exec);
        memcpy(e->exec_bytes, r->exec, TEL_ID_LEN);
    }
    tel_buf *a = &d->arena;
    if (arena_text(a, r->name, &e->name) || take_context(d, e, r) != 0)
        goto fail;
    e->props = a->len;
    if (tel__record_props_json(r, a) != TEL_OK)
        goto fail;
    e->props_len = a->len - e->props;
    if ((tel__export_on() && export_line(d, e, r) != 0) || tel__metrics_keys(r, &d->keys, ref) != 0)
        goto fail;
    return 0;
fail:
    d->failed = 1;
    return 1;
}

/* ------------------------------------------------------------ storing */

typedef struct export_ctx {
    decoded *d;
    int err;
} export_ctx;

/* Inside the store's transaction: the new events' lines go to the export
 * first, so a batch is committed only once its lines are written. */
static int export_fresh(void *ud, const unsigned char *fresh)
{
    export_ctx *x = ud;
    decoded *d = x->d;
    if (!tel__export_on())
        return 0;
    /* Squeeze out the lines of events stored before, in place. */
    size_t w = 0;
    for (size_t i = 0; i < d->nev; i++) {
        if (!fresh[i])
            continue;
        memmove(d->lines.p + w, d->lines.p + d->evs[i].line, d->evs[i].line_len);
        w += d->evs[i].line_len;
    }
    if (tel__export_write(d->lines.p, w) != 0) {
        x->err = errno;
        return -1;
    }
    return 0;
}

static void count_stored(decoded *d, const store_batch *b, const unsigned char *fresh,
                         const store_put_result *res, verdict *v)
{
    v->accepted = res->stored;
    v->dups = res->duplicates;
    if (res->outcome == STORE_ERASED) {
        v->erased = 1;
        return;
    }
    if (res->outcome == STORE_REPEAT) {
        tel__metrics_repeat(res->duplicates);
        return;
    }
    tel__metrics_batch(b->app, b->dropped, &d->keys, d->refs, fresh, d->nev, res->stored, res->duplicates);
    unsigned long long total = atomic_fetch_add(&n_stored, res->stored) + res->stored;
    if (tel__cfg.exit_after && total >= tel__cfg.exit_after && !atomic_exchange(&exit_signalled, 1))
        v->exit_due = 1;
}

/* Builds the store's view of the decoded batch and stores it. */
static void store_decoded(decoded *d, const tel_batch_head *head, const char *bid, int64_t received,
                          verdict *v)
{
    store_event *evs = calloc(d->nev ? d->nev : 1, sizeof *evs);
    if (!evs) {
        tel__refuse(v, 500, "out of memory");
        return;
    }
    const char *a = (const char *)d->arena.p;
    for (size_t i = 0; i < d->nev; i++) {
        const ev_text *e = &d->evs[i];
        evs[i] = (store_event){
            .id = e->id, .id_bytes = e->id_bytes, .ts_ms = e->ts, .name = a + e->name, .app = a + e->app,
            .app_version = e->has_version ? a + e->app_version : NULL,
            .exec_id = e->has_exec ? e->exec : NULL, .exec_bytes = e->has_exec ? e->exec_bytes : NULL,
            .props = a + e->props, .props_len = e->props_len,
            .context = a + e->context, .context_len = e->context_len,
        };
    }
    char anon[37];
    if (head->anon)
        tel__uuid_format(head->anon, anon);
    export_ctx x = { d, 0 };
    store_batch b = {
        .id = bid, .received_ms = received, .app = d->nev ? evs[0].app : "",
        .anon_id = head->anon ? anon : NULL, .dropped = head->dropped,
        .events = evs, .nevents = d->nev, .before_commit = export_fresh, .ud = &x,
    };
    unsigned char fresh[TEL_BATCH_MAX_EVENTS];
    store_put_result res;
    if (store_put_batch(tel__store, &b, fresh, &res) != 0) {
        v->retry = 1;
        if (x.err)
            tel__refuse(v, 503, "could not write the export: %s", strerror(x.err));
        else
            tel__refuse(v, 503, "could not store the batch: %s", store_error());
    } else {
        count_stored(d, &b, fresh, &res, v);
        tel__dash_upload_seen();
        v->status = 200;
    }
    free(evs);
}

void tel__batch_finish(inflater *z, const uint8_t key[TEL_ID_LEN], verdict *v)
{
    if (body_whole(z, v) != 0)
        return;
    decoded d;
    memset(&d, 0, sizeof d);
    char bid[37];
    tel__uuid_format(key, bid);
    int64_t received = (int64_t)tel__now_ms();
    d.suffix_len = (size_t)snprintf(d.suffix, sizeof d.suffix, ",\"batch\":\"%s\",\"received\":%lld}\n",
                                    bid, (long long)received);
    tel_batch_head head;
    int rc = tel__batch_decode(z->out.p, z->out.len, &head, take_event, &d);
    v->nev = d.nev;
    if (rc == TEL_ERR_LIMIT)
        tel__refuse(v, 413, "%s", tel_last_error());
    else if (rc < 0)
        tel__refuse(v, rc == TEL_ERR_NOMEM ? 500 : 400, "bad batch: %s", tel_last_error());
    else if (d.failed)
        tel__refuse(v, 500, "out of memory while rendering an event");
    else if (memcmp(head.id, key, TEL_ID_LEN) != 0)
        tel__refuse(v, 400, "Idempotency-Key does not match the batch id");
    if (!v->status) {
        /* head.anon points into the inflated bytes: keep them until the
         * batch is stored. */
        store_decoded(&d, &head, bid, received, v);
    }
    tel__inflate_free(z);
    decoded_free(&d);
}

void tel__erasure_finish(inflater *z, verdict *v)
{
    if (body_whole(z, v) != 0)
        return;
    uint8_t id[TEL_ID_LEN];
    if (tel__erasure_decode(z->out.p, z->out.len, id) != TEL_OK) {
        tel__refuse(v, 400, "%s", tel_last_error());
        return;
    }
    tel__inflate_free(z);
    char anon[37];
    tel__uuid_format(id, anon);
    uint64_t deleted = 0;
    int known = 0;
    if (store_erase(tel__store, anon, (int64_t)tel__now_ms(), &deleted, &known) != 0) {
        v->retry = 1;
        tel__refuse(v, 503, "could not erase: %s", store_error());
        return;
    }
    tel__metrics_erasure(deleted);
    v->deleted = deleted;
    v->status = 200;
}
