/* SPDX-License-Identifier: MIT */
/*
 * format/columns.c - the column-wise batch (version 3; see columns.h and
 * SPEC.md 4.1): laying stored records out in columns, and reading the
 * columns back into the records they stand for.
 *
 * The reader rebuilds each event's record and hands it to the record
 * decoder, so a version 3 batch is held to every rule of a record (and
 * stores the same rows) without a second set of checks to keep in step.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "columns.h"
#include "error.h"

/* The bytes of a rebuilt record besides its time, anonymous id, name,
 * properties and context: the map header, seven one-letter keys and the
 * two ids (SPEC.md 4.1). */
#define REBUILT_FIXED (1 + 7 * 2 + 18 + 18)

static size_t uint_size(uint64_t v)
{
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

int tel__record_parts(const tel_record *r, tel_record_parts *out)
{
    if (!r->raw || !r->props_at || !r->id || !r->exec || r->raw_len > TEL_MAX_EVENT)
        return 0;
    size_t want = REBUILT_FIXED + uint_size(r->ts_ms) + (r->anon ? 18 : 1) + r->name_size +
                  r->props_size + r->ctx_size;
    if (want != r->raw_len)
        return 0;
    out->ts_ms = r->ts_ms;
    out->id = (uint16_t)(r->id - r->raw);
    out->exec = (uint16_t)(r->exec - r->raw);
    out->name = (uint16_t)(r->name_at - r->raw);
    out->props = (uint16_t)(r->props_at - r->raw);
    out->ctx = (uint16_t)(r->ctx_at - r->raw);
    out->name_size = (uint16_t)r->name_size;
    out->props_size = (uint16_t)r->props_size;
    out->ctx_size = (uint16_t)r->ctx_size;
    return 1;
}

/* ------------------------------------------------------------- writing */

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The 16 bytes an id is made of are random already. */
static uint32_t hash_id(const uint8_t *id)
{
    return (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
}

typedef struct part_of {
    const uint8_t *recs;
    const uint32_t *off;
    const tel_record_parts *parts;
} part_of;

static const uint8_t *name_bytes(const part_of *w, size_t k, size_t *len)
{
    *len = w->parts[k].name_size;
    return w->recs + w->off[k] + w->parts[k].name;
}

static const uint8_t *ctx_bytes(const part_of *w, size_t k, size_t *len)
{
    *len = w->parts[k].ctx_size;
    return w->recs + w->off[k] + w->parts[k].ctx;
}

/* The dictionary index of event k's name or context (selected by get),
 * adding it when new.  Slots hold the event of its first appearance. */
static uint16_t intern(const part_of *w, size_t k, uint16_t *slot, uint16_t *first, size_t *count,
                       const uint8_t *(*get)(const part_of *, size_t, size_t *), uint16_t *index_of)
{
    size_t len;
    const uint8_t *p = get(w, k, &len);
    for (uint32_t h = hash_bytes(p, len);; h++) {
        uint16_t *s = &slot[h & (TEL_COLUMNS_SLOTS - 1)];
        if (*s == 0) {
            *s = (uint16_t)(k + 1);
            first[*count] = (uint16_t)k;
            return (uint16_t)(*count)++;
        }
        size_t olen;
        const uint8_t *o = get(w, *s - 1u, &olen);
        if (olen == len && memcmp(o, p, len) == 0)
            return index_of[*s - 1u];
    }
}

/* Fills the scratch tables for n records. */
static void index_batch(const part_of *w, size_t n, tel_columns *c)
{
    memset(c->id_slot, 0, sizeof c->id_slot);
    memset(c->name_slot, 0, sizeof c->name_slot);
    memset(c->ctx_slot, 0, sizeof c->ctx_slot);
    c->nnames = c->nctxs = 0;
    for (size_t k = 0; k < n; k++) {
        const uint8_t *id = w->recs + w->off[k] + w->parts[k].id;
        for (uint32_t h = hash_id(id);; h++) {
            uint16_t *s = &c->id_slot[h & (TEL_COLUMNS_SLOTS - 1)];
            if (*s == 0) {
                *s = (uint16_t)(k + 1);
                break;
            }
            if (memcmp(w->recs + w->off[*s - 1u] + w->parts[*s - 1u].id, id, TEL_ID_LEN) == 0)
                break;        /* the same id twice: the first one is the reference */
        }
        c->name_of[k] = intern(w, k, c->name_slot, c->name_first, &c->nnames, name_bytes, c->name_of);
        c->ctx_of[k] = intern(w, k, c->ctx_slot, c->ctx_first, &c->nctxs, ctx_bytes, c->ctx_of);
    }
    for (size_t k = 0; k < n; k++) {
        const uint8_t *x = w->recs + w->off[k] + w->parts[k].exec;
        c->exec_of[k] = -1;
        for (uint32_t h = hash_id(x);; h++) {
            uint16_t s = c->id_slot[h & (TEL_COLUMNS_SLOTS - 1)];
            if (s == 0)
                break;
            if (memcmp(w->recs + w->off[s - 1u] + w->parts[s - 1u].id, x, TEL_ID_LEN) == 0) {
                c->exec_of[k] = (int16_t)(s - 1u);
                break;
            }
        }
    }
}

static int buf_write(void *data, const char *p, size_t n)
{
    return tel__buf_append(data, p, n);
}

#define pack_key(pk, key) msgpack_pack_str_with_body((pk), (key), sizeof(key) - 1)

/* Each time as the difference to the one before (the first as it is):
 * events of one run are recorded close together, so most are one byte. */
static int pack_times(msgpack_packer *pk, const tel_record_parts *parts, size_t n, int *bad)
{
    *bad |= msgpack_pack_array(pk, (uint32_t)n);
    uint64_t prev = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t t = parts[k].ts_ms;
        if (t >= prev) {
            *bad |= msgpack_pack_uint64(pk, t - prev);
        } else {
            if (prev - t > (uint64_t)1 << 63)
                return -1;
            *bad |= msgpack_pack_int64(pk, (int64_t)(0 - (prev - t)));
        }
        prev = t;
    }
    return 0;
}

/* The columns, in the order SPEC.md 4.1 gives. */
static int pack_columns(msgpack_packer *pk, tel_buf *out, const part_of *w, size_t n,
                        const tel_columns *c, int *bad)
{
    *bad |= pack_key(pk, "i");
    *bad |= msgpack_pack_bin(pk, (uint32_t)(n * TEL_ID_LEN));
    for (size_t k = 0; k < n; k++)
        *bad |= tel__buf_append(out, w->recs + w->off[k] + w->parts[k].id, TEL_ID_LEN);
    *bad |= pack_key(pk, "t");
    if (pack_times(pk, w->parts, n, bad) != 0)
        return -1;
    *bad |= pack_key(pk, "x");
    *bad |= msgpack_pack_array(pk, (uint32_t)n);
    for (size_t k = 0; k < n; k++)
        *bad |= c->exec_of[k] >= 0
                    ? msgpack_pack_uint64(pk, (uint64_t)c->exec_of[k])
                    : msgpack_pack_bin_with_body(pk, w->recs + w->off[k] + w->parts[k].exec, TEL_ID_LEN);
    size_t len;
    *bad |= pack_key(pk, "ns");
    *bad |= msgpack_pack_array(pk, (uint32_t)c->nnames);
    for (size_t d = 0; d < c->nnames; d++) {
        const uint8_t *p = name_bytes(w, c->name_first[d], &len);
        *bad |= tel__buf_append(out, p, len);
    }
    *bad |= pack_key(pk, "n");
    *bad |= msgpack_pack_array(pk, (uint32_t)n);
    for (size_t k = 0; k < n; k++)
        *bad |= msgpack_pack_uint64(pk, c->name_of[k]);
    *bad |= pack_key(pk, "cs");
    *bad |= msgpack_pack_array(pk, (uint32_t)c->nctxs);
    for (size_t d = 0; d < c->nctxs; d++) {
        const uint8_t *p = ctx_bytes(w, c->ctx_first[d], &len);
        *bad |= tel__buf_append(out, p, len);
    }
    *bad |= pack_key(pk, "c");
    *bad |= msgpack_pack_array(pk, (uint32_t)n);
    for (size_t k = 0; k < n; k++)
        *bad |= msgpack_pack_uint64(pk, c->ctx_of[k]);
    *bad |= pack_key(pk, "p");
    *bad |= msgpack_pack_array(pk, (uint32_t)n);
    for (size_t k = 0; k < n; k++)
        *bad |= tel__buf_append(out, w->recs + w->off[k] + w->parts[k].props, w->parts[k].props_size);
    return 0;
}

int tel__batch_columns(tel_buf *out, const tel_batch_head *head, const uint8_t *recs,
                       const uint32_t *off, const tel_record_parts *parts, size_t n,
                       tel_columns *scratch)
{
    size_t start = out->len;
    part_of w = { recs, off, parts };
    msgpack_packer pk;
    int bad = 0;

    if (n == 0 || n > TEL_BATCH_MAX_EVENTS)
        return tel__fail(TEL_ERR_INVALID, "a version 3 batch holds 1 to %d events", TEL_BATCH_MAX_EVENTS);
    index_batch(&w, n, scratch);
    msgpack_packer_init(&pk, out, buf_write);
    bad |= tel__batch_pack_head(out, head, TEL_SCHEMA_VERSION_COLUMNS, 5 + TEL_COL_COUNT);
    if (pack_columns(&pk, out, &w, n, scratch, &bad) != 0) {
        out->len = start;
        return tel__fail(TEL_ERR_INVALID, "two neighbouring event times differ by more than 2^63 ms");
    }
    if (bad) {
        out->len = start;
        return tel__fail(TEL_ERR_NOMEM, "out of memory while writing a batch");
    }
    return TEL_OK;
}

/* ------------------------------------------------------------- reading */

static int bad_column(const char *what)
{
    return tel__fail(TEL_ERR_CORRUPT, "batch: %s", what);
}

/* A value's bytes, header included. */
typedef struct extent {
    const uint8_t *p;
    uint32_t len;
} extent;

/* Reads the header of an array that must hold `want` elements (or, with
 * want == 0, any number up to max, returned in *n). */
static int array_of(tel_mp *r, uint32_t want, uint32_t max, uint32_t *n)
{
    tel_mp_obj o;
    if (tel__mp_next(r, &o) || o.kind != TEL_MP_ARRAY)
        return -1;
    if (want ? o.v.n != want : o.v.n > max)
        return -1;
    *n = o.v.n;
    return 0;
}

/* The next value of r, which must be of `kind`, as an extent. */
static int take(tel_mp *r, tel_mp_kind kind, extent *e)
{
    tel_mp peek = *r;
    tel_mp_obj o;
    if (tel__mp_next(&peek, &o) || o.kind != kind)
        return -1;
    e->p = r->p;
    if (tel__mp_skip(r, TEL_MP_MAX_DEPTH) != 0)
        return -1;
    e->len = (uint32_t)(r->p - e->p);
    return 0;
}

/* A dictionary column: an array of at most nev values of `kind`. */
static int dictionary(tel_mp *r, tel_mp_kind kind, uint32_t nev, extent *out, uint32_t *n)
{
    if (array_of(r, 0, nev, n))
        return -1;
    for (uint32_t k = 0; k < *n; k++)
        if (take(r, kind, &out[k]))
            return -1;
    return 0;
}

/* Event k's time from the previous one and the next element of "t". */
static int next_time(tel_mp *r, uint32_t k, uint64_t *t)
{
    tel_mp_obj o;
    if (tel__mp_next(r, &o))
        return -1;
    if (o.kind == TEL_MP_UINT) {
        if (k > 0 && o.v.u > UINT64_MAX - *t)
            return -1;
        *t = k > 0 ? *t + o.v.u : o.v.u;
        return 0;
    }
    if (o.kind != TEL_MP_INT || k == 0)
        return -1;
    uint64_t back = 0 - (uint64_t)o.v.i;
    if (back > *t)
        return -1;
    *t -= back;
    return 0;
}

static int index_into(tel_mp *r, uint32_t n, uint32_t *i)
{
    tel_mp_obj o;
    if (tel__mp_next(r, &o) || o.kind != TEL_MP_UINT || o.v.u >= n)
        return -1;
    *i = (uint32_t)o.v.u;
    return 0;
}

/* Event k's execution id: another event's id, or 16 bytes of its own. */
static int next_exec(tel_mp *r, const uint8_t *ids, uint32_t nev, const uint8_t **x)
{
    tel_mp_obj o;
    if (tel__mp_next(r, &o))
        return -1;
    if (o.kind == TEL_MP_UINT && o.v.u < nev) {
        *x = ids + o.v.u * TEL_ID_LEN;
        return 0;
    }
    if (o.kind != TEL_MP_BIN || o.len != TEL_ID_LEN)
        return -1;
    *x = o.data;
    return 0;
}

static int append_id(tel_buf *b, const char *key, const uint8_t *id)
{
    uint8_t h[4] = { 0xa1, (uint8_t)key[0], 0xc4, TEL_ID_LEN };
    return tel__buf_append(b, h, 4) || tel__buf_append(b, id, TEL_ID_LEN);
}

/* Appends the record event k stands for (SPEC.md 4.1). */
static int rebuild(tel_buf *b, const uint8_t *id, uint64_t t, extent name, extent props,
                   const uint8_t *exec, const uint8_t *anon, extent ctx)
{
    uint8_t tb[11] = { 0xa1, 't' };
    size_t tl = uint_size(t);
    if (tl == 1) {
        tb[2] = (uint8_t)t;
    } else {
        tb[2] = tl == 2 ? 0xcc : tl == 3 ? 0xcd : tl == 5 ? 0xce : 0xcf;
        for (size_t i = 0; i + 1 < tl; i++)
            tb[3 + i] = (uint8_t)(t >> (8 * (tl - 2 - i)));
    }
    return tel__buf_append(b, "\x87", 1) || append_id(b, "i", id) || tel__buf_append(b, tb, 2 + tl) ||
           tel__buf_append(b, "\xa1n", 2) || tel__buf_append(b, name.p, name.len) ||
           tel__buf_append(b, "\xa1p", 2) || tel__buf_append(b, props.p, props.len) ||
           append_id(b, "x", exec) ||
           (anon ? append_id(b, "a", anon) : tel__buf_append(b, "\xa1" "a\xc0", 3)) ||
           tel__buf_append(b, "\xa1" "c", 2) || tel__buf_append(b, ctx.p, ctx.len);
}

/* What one version 3 decode holds: the dictionaries and the rebuilt
 * records, all bounded by the batch's own limits. */
typedef struct rebuilt {
    extent names[TEL_BATCH_MAX_EVENTS], ctxs[TEL_BATCH_MAX_EVENTS];
    uint32_t off[TEL_BATCH_MAX_EVENTS + 1];
    tel_buf recs;
} rebuilt;

/* Reads the per-event columns and rebuilds every record, checking each. */
static int rebuild_all(const tel_mp col[TEL_COL_COUNT], const tel_batch_head *head, const uint8_t *ids,
                       uint32_t nev, rebuilt *rb)
{
    tel_mp t = col[TEL_COL_T], x = col[TEL_COL_X], n = col[TEL_COL_N], c = col[TEL_COL_C],
           p = col[TEL_COL_P], ns = col[TEL_COL_NS], cs = col[TEL_COL_CS];
    uint32_t nnames, nctxs, m;
    if (dictionary(&ns, TEL_MP_STR, nev, rb->names, &nnames))
        return bad_column("field 'ns' is not an array of at most one name string per event");
    if (dictionary(&cs, TEL_MP_MAP, nev, rb->ctxs, &nctxs))
        return bad_column("field 'cs' is not an array of at most one context map per event");
    if (array_of(&t, nev, 0, &m) || array_of(&x, nev, 0, &m) || array_of(&n, nev, 0, &m) ||
        array_of(&c, nev, 0, &m) || array_of(&p, nev, 0, &m))
        return bad_column("a column (t, x, n, c or p) is not an array of one element per event");
    uint64_t ts = 0;
    for (uint32_t k = 0; k < nev; k++) {
        const uint8_t *exec;
        uint32_t ni, ci;
        extent props;
        if (next_time(&t, k, &ts))
            return tel__fail(TEL_ERR_CORRUPT, "batch: event %u: its time in 't' is not an integer "
                             "or falls outside 0 to 2^64-1", k + 1);
        if (next_exec(&x, ids, nev, &exec))
            return tel__fail(TEL_ERR_CORRUPT, "batch: event %u: 'x' is neither an event index "
                             "nor 16 bytes of binary", k + 1);
        if (index_into(&n, nnames, &ni) || index_into(&c, nctxs, &ci))
            return tel__fail(TEL_ERR_CORRUPT, "batch: event %u: 'n' or 'c' is not an index into "
                             "'ns' or 'cs'", k + 1);
        if (take(&p, TEL_MP_MAP, &props))
            return tel__fail(TEL_ERR_CORRUPT, "batch: event %u: 'p' is not a map", k + 1);
        size_t size = REBUILT_FIXED + uint_size(ts) + (head->anon ? 18 : 1) + rb->names[ni].len +
                      props.len + rb->ctxs[ci].len;
        if (rb->recs.len + size > TEL_BATCH_MAX_BYTES)
            return tel__fail(TEL_ERR_LIMIT, "batch: over %u bytes of events", TEL_BATCH_MAX_BYTES);
        rb->off[k] = (uint32_t)rb->recs.len;
        if (rebuild(&rb->recs, ids + (size_t)k * TEL_ID_LEN, ts, rb->names[ni], props, exec, head->anon,
                    rb->ctxs[ci]))
            return tel__fail(TEL_ERR_NOMEM, "out of memory while reading a batch");
    }
    rb->off[nev] = (uint32_t)rb->recs.len;
    return TEL_OK;
}

/* Decodes rebuilt record k; the record decoder's reason becomes the
 * batch's. */
static int decode_one(const rebuilt *rb, uint32_t k, tel_record *rec)
{
    if (tel__record_decode(rec, rb->recs.p + rb->off[k], rb->off[k + 1] - rb->off[k]) == TEL_OK)
        return TEL_OK;
    char why[200];
    snprintf(why, sizeof why, "%s", tel_last_error());
    return tel__fail(TEL_ERR_CORRUPT, "batch: event %u: %s", k + 1, why);
}

int tel__columns_decode(const tel_mp col[TEL_COL_COUNT], tel_batch_head *head, tel_record_fn fn,
                        void *ud)
{
    tel_mp r = col[TEL_COL_I];
    tel_mp_obj o;
    if (tel__mp_next(&r, &o) || o.kind != TEL_MP_BIN || o.len % TEL_ID_LEN != 0)
        return bad_column("field 'i' is not binary of 16 bytes per event");
    if (o.len / TEL_ID_LEN > TEL_BATCH_MAX_EVENTS)
        return tel__fail(TEL_ERR_LIMIT, "batch: %u events (at most %d)", o.len / TEL_ID_LEN,
                         TEL_BATCH_MAX_EVENTS);
    uint32_t nev = o.len / TEL_ID_LEN;
    head->nevents = nev;

    rebuilt *rb = malloc(sizeof *rb);
    if (!rb)
        return tel__fail(TEL_ERR_NOMEM, "out of memory while reading a batch");
    memset(&rb->recs, 0, sizeof rb->recs);
    int rc = rebuild_all(col, head, o.data, nev, rb);
    /* As for version 1: every record proves valid before fn sees one. */
    for (int pass = 0; rc == TEL_OK && pass < (fn ? 2 : 1); pass++) {
        for (uint32_t k = 0; k < nev; k++) {
            tel_record rec;
            if ((rc = decode_one(rb, k, &rec)) != TEL_OK)
                break;
            if (pass == 1 && fn(ud, &rec) != 0)
                break;
        }
    }
    tel__buf_free(&rb->recs);
    free(rb);
    return rc;
}
