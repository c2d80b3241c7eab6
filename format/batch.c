/* SPDX-License-Identifier: MIT */
/*
 * format/batch.c - the upload batch: a small map whose last entry is the
 * array of records, copied byte for byte from the queue.
 *
 * The writer only emits the head; records are appended raw by the caller,
 * which is what lets tel-sync build a batch without decoding anything.
 * The reader is the collector's first line of defence and validates the
 * whole batch before it hands out a single record, so that a collector
 * can accept or refuse a batch as one unit.
 */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "columns.h"
#include "error.h"
#include "record.h"
#include "mp.h"

/* msgpack-c's packer appending to a growable buffer. */
static int buf_write(void *data, const char *p, size_t n)
{
    return tel__buf_append(data, p, n);
}

#define pack_key(pk, key) msgpack_pack_str_with_body((pk), (key), sizeof(key) - 1)

int tel__batch_pack_head(tel_buf *out, const tel_batch_head *head, int version, uint32_t nkeys)
{
    msgpack_packer pk;
    int bad = 0;
    msgpack_packer_init(&pk, out, buf_write);
    bad |= msgpack_pack_map(&pk, nkeys);
    bad |= pack_key(&pk, "v");
    bad |= msgpack_pack_uint64(&pk, (uint64_t)version);
    bad |= pack_key(&pk, "b");
    bad |= msgpack_pack_bin_with_body(&pk, head->id, TEL_ID_LEN);
    bad |= pack_key(&pk, "s");
    bad |= msgpack_pack_uint64(&pk, head->sent_ms);
    bad |= pack_key(&pk, "d");
    bad |= msgpack_pack_uint64(&pk, head->dropped);
    bad |= pack_key(&pk, "a");
    bad |= head->anon ? msgpack_pack_bin_with_body(&pk, head->anon, TEL_ID_LEN) : msgpack_pack_nil(&pk);
    return bad ? -1 : 0;
}

int tel__batch_begin(tel_buf *out, const tel_batch_head *head)
{
    size_t start = out->len;
    msgpack_packer pk;
    int bad = tel__batch_pack_head(out, head, head->version > 0 ? head->version : TEL_SCHEMA_VERSION_FLAT, 6);

    msgpack_packer_init(&pk, out, buf_write);
    bad |= pack_key(&pk, "e");
    bad |= msgpack_pack_array(&pk, head->nevents);

    /* A failed append leaves the buffer as it was, but later ones may
     * still succeed; the whole head is taken back so no torn map is left. */
    if (bad) {
        out->len = start;
        return tel__fail(TEL_ERR_NOMEM, "out of memory while starting a batch");
    }
    return TEL_OK;
}

static int bad_batch(const char *what)
{
    return tel__fail(TEL_ERR_CORRUPT, "batch: %s", what);
}

static int read_uint(tel_mp *r, uint64_t *v)
{
    tel_mp_obj o;
    if (tel__mp_next(r, &o) || o.kind != TEL_MP_UINT)
        return -1;
    *v = o.v.u;
    return 0;
}

/* Reads a 16-byte id, or nil when nil_ok (then *out = NULL). */
static int read_id(tel_mp *r, const uint8_t **out, int nil_ok)
{
    tel_mp_obj o;
    if (tel__mp_next(r, &o))
        return -1;
    if (nil_ok && o.kind == TEL_MP_NIL) {
        *out = NULL;
        return 0;
    }
    if (o.kind != TEL_MP_BIN || o.len != TEL_ID_LEN)
        return -1;
    *out = o.data;
    return 0;
}

/* Finds the extent of the next record of the events array.  The skip is
 * bounded in depth and linear in bytes, so a hostile array costs no more
 * than reading it. */
static int next_record(tel_mp *r, const uint8_t **at, size_t *len)
{
    *at = r->p;
    if (tel__mp_skip(r, TEL_MP_MAX_DEPTH) != 0)
        return -1;
    *len = (size_t)(r->p - *at);
    return 0;
}

static int same_anon(const uint8_t *a, const uint8_t *b)
{
    if (!a || !b)
        return a == b;
    return memcmp(a, b, TEL_ID_LEN) == 0;
}

enum { B_V = 1, B_B = 2, B_S = 4, B_D = 8, B_A = 16, B_E = 32, B_HEAD = 31 };

/* The column of a version 3 batch a key names, or -1. */
static int column_of(const tel_mp_obj *k)
{
    static const char *const names[TEL_COL_COUNT] = {
        [TEL_COL_I] = "i", [TEL_COL_T] = "t", [TEL_COL_X] = "x", [TEL_COL_NS] = "ns",
        [TEL_COL_N] = "n", [TEL_COL_CS] = "cs", [TEL_COL_C] = "c", [TEL_COL_P] = "p",
    };
    for (int c = 0; c < TEL_COL_COUNT; c++)
        if (k->len == strlen(names[c]) && memcmp(k->data, names[c], k->len) == 0)
            return c;
    return -1;
}

/* Skips a value the batch does not (yet) know the meaning of. */
static int skip_value(tel_mp *r)
{
    int rc = tel__mp_skip(r, TEL_MP_MAX_DEPTH);
    if (rc == TEL_MP_EDEEP)
        return bad_batch("an unknown field nests deeper than 32 levels");
    if (rc)
        return bad_batch("an unknown field is truncated or malformed");
    return TEL_OK;
}

/* The version 1 and 2 events array: counts and bounds it, and leaves
 * *events over its records. */
static int events_array(tel_mp *r, tel_batch_head *head, tel_mp *events)
{
    tel_mp_obj a;
    if (tel__mp_next(r, &a) || a.kind != TEL_MP_ARRAY)
        return bad_batch("field 'e' is not an array");
    if (a.v.n > TEL_BATCH_MAX_EVENTS)
        return tel__fail(TEL_ERR_LIMIT, "batch: %u events (at most %d)", a.v.n, TEL_BATCH_MAX_EVENTS);
    head->nevents = a.v.n;
    /* Remember where the records start and only find where they end now:
     * the anonymous id they must match may come later. */
    *events = *r;
    for (uint32_t j = 0; j < a.v.n; j++) {
        const uint8_t *at;
        size_t rlen;
        if (next_record(r, &at, &rlen))
            return tel__fail(TEL_ERR_CORRUPT, "batch: event %u is truncated or malformed", j + 1);
    }
    if ((size_t)(r->p - events->p) > TEL_BATCH_MAX_BYTES)
        return tel__fail(TEL_ERR_LIMIT, "batch: %zu bytes of events (at most %u)",
                         (size_t)(r->p - events->p), TEL_BATCH_MAX_BYTES);
    events->end = r->p;
    return TEL_OK;
}

/* Reads one field of the head: the bit it sets, or -1 with the error set. */
static int head_field(tel_mp *r, unsigned bit, tel_batch_head *head)
{
    const uint8_t *id = NULL;
    uint64_t version = 0;
    switch (bit) {
    case B_V:
        if (read_uint(r, &version))
            return bad_batch("field 'v' is not an unsigned integer");
        if (version < TEL_SCHEMA_VERSION_FLAT || version > TEL_SCHEMA_VERSION)
            return tel__fail(TEL_ERR_CORRUPT,
                             "batch: schema version %llu is not supported (this reader knows %d to %d)",
                             (unsigned long long)version, TEL_SCHEMA_VERSION_FLAT, TEL_SCHEMA_VERSION);
        head->version = (int)version;
        return TEL_OK;
    case B_B:
        if (read_id(r, &id, 0))
            return bad_batch("field 'b' is not 16 bytes of binary");
        memcpy(head->id, id, TEL_ID_LEN);
        return TEL_OK;
    case B_S:
        if (read_uint(r, &head->sent_ms))
            return bad_batch("field 's' is not an unsigned integer");
        return TEL_OK;
    case B_D:
        if (read_uint(r, &head->dropped))
            return bad_batch("field 'd' is not an unsigned integer");
        return TEL_OK;
    default:
        if (read_id(r, &head->anon, 1))
            return bad_batch("field 'a' is neither nil nor 16 bytes of binary");
        return TEL_OK;
    }
}

/* Two passes over the records of version 1 or 2: the first proves every
 * one valid, the second hands them out, so fn never sees part of a batch
 * that is then refused. */
static int decode_records(const tel_mp *events, const tel_batch_head *head, tel_record_fn fn, void *ud)
{
    for (int pass = 0; pass < (fn ? 2 : 1); pass++) {
        tel_mp cur = *events;
        for (uint32_t j = 0; j < head->nevents; j++) {
            tel_record rec;
            const uint8_t *at;
            size_t rlen;
            if (next_record(&cur, &at, &rlen))
                return tel__fail(TEL_ERR_CORRUPT, "batch: event %u is truncated or malformed", j + 1);
            if (tel__record_decode(&rec, at, rlen) != TEL_OK) {
                char why[200];
                snprintf(why, sizeof why, "%s", tel_last_error());
                return tel__fail(TEL_ERR_CORRUPT, "batch: event %u: %s", j + 1, why);
            }
            if (rec.version > head->version)
                return tel__fail(TEL_ERR_CORRUPT,
                                 "batch: event %u holds an array or map, which schema version %d does not allow",
                                 j + 1, head->version);
            if (!same_anon(rec.anon, head->anon))
                return tel__fail(TEL_ERR_CORRUPT,
                                 "batch: event %u has another anonymous id than the batch", j + 1);
            if (pass == 1 && fn(ud, &rec) != 0)
                return TEL_OK;
        }
    }
    return TEL_OK;
}

/* What the key loop found: the head's fields, where the events are (the
 * array of version 1 and 2, the columns of version 3). */
typedef struct found {
    unsigned seen;
    tel_mp events;
    tel_mp col[TEL_COL_COUNT];
    unsigned cols, col_twice;
} found;

/* Reads one entry of the batch map. */
static int batch_entry(tel_mp *r, tel_batch_head *head, found *f)
{
    tel_mp_obj k;
    unsigned bit = 0;
    if (tel__mp_next(r, &k) || k.kind != TEL_MP_STR)
        return bad_batch("a key is not a string");
    if (k.len == 1) {
        switch (k.data[0]) {
        case 'v': bit = B_V; break;
        case 'b': bit = B_B; break;
        case 's': bit = B_S; break;
        case 'd': bit = B_D; break;
        case 'a': bit = B_A; break;
        case 'e': bit = B_E; break;
        }
    }
    if (!bit) {
        /* A column means nothing to versions 1 and 2, which skip it as
         * any unknown key; whether it was needed is known at the end. */
        int c = column_of(&k);
        if (c >= 0) {
            f->col_twice |= f->cols & (1u << c);
            f->cols |= 1u << c;
            f->col[c] = *r;
        }
        return skip_value(r);
    }
    if (f->seen & bit)
        return bad_batch("a key appears twice");
    f->seen |= bit;
    return bit == B_E ? events_array(r, head, &f->events) : head_field(r, bit, head);
}

int tel__batch_decode(const void *buf, size_t len, tel_batch_head *head,
                      tel_record_fn fn, void *ud)
{
    tel_batch_head local;
    tel_mp r;
    tel_mp_obj o;
    found f;

    if (!head)
        head = &local;
    memset(head, 0, sizeof *head);
    memset(&f, 0, sizeof f);
    if (!buf || len == 0)
        return bad_batch("empty");

    tel__mp_init(&r, buf, len);
    if (tel__mp_next(&r, &o) || o.kind != TEL_MP_MAP)
        return bad_batch("not a map");
    for (uint32_t i = 0; i < o.v.n; i++) {
        int rc = batch_entry(&r, head, &f);
        if (rc != TEL_OK)
            return rc;
    }
    if ((f.seen & B_HEAD) != B_HEAD)
        return bad_batch(head->version == TEL_SCHEMA_VERSION_COLUMNS
                             ? "a required field (v, b, s, d or a) is missing"
                             : "a required field (v, b, s, d, a or e) is missing");
    if (tel__mp_left(&r) != 0)
        return tel__fail(TEL_ERR_CORRUPT, "batch: %zu bytes after the end of the map", tel__mp_left(&r));
    if (head->version < TEL_SCHEMA_VERSION_COLUMNS) {
        if (!(f.seen & B_E))
            return bad_batch("a required field (v, b, s, d, a or e) is missing");
        return decode_records(&f.events, head, fn, ud);
    }
    if (f.seen & B_E)
        return bad_batch("field 'e' has no place in a version 3 batch, whose events are in columns");
    if (f.col_twice)
        return bad_batch("a key appears twice");
    if (f.cols != (1u << TEL_COL_COUNT) - 1)
        return bad_batch("a required column (i, t, x, ns, n, cs, c or p) is missing");
    return tel__columns_decode(f.col, head, fn, ud);
}

/* ------------------------------------------------------------ erasure */

int tel__erasure_encode(tel_buf *out, const uint8_t anon[TEL_ID_LEN])
{
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, buf_write);
    int bad = msgpack_pack_map(&pk, 2);
    bad |= pack_key(&pk, "v");
    /* Version 2 changed only what a record may hold: an erasure request
     * is the same in both, and says 1 so every collector reads it. */
    bad |= msgpack_pack_uint64(&pk, TEL_SCHEMA_VERSION_FLAT);
    bad |= pack_key(&pk, "x");
    bad |= msgpack_pack_bin_with_body(&pk, anon, TEL_ID_LEN);
    if (bad) {
        out->len = start;
        return tel__fail(TEL_ERR_NOMEM, "out of memory while writing an erasure request");
    }
    return TEL_OK;
}

static int bad_erasure(const char *what)
{
    return tel__fail(TEL_ERR_CORRUPT, "erasure request: %s", what);
}

int tel__erasure_decode(const void *buf, size_t len, uint8_t anon[TEL_ID_LEN])
{
    tel_mp r;
    tel_mp_obj o;
    const uint8_t *id = NULL;
    uint64_t version = 0;
    int has_v = 0;
    if (!buf || len == 0)
        return bad_erasure("empty");
    tel__mp_init(&r, buf, len);
    if (tel__mp_next(&r, &o) || o.kind != TEL_MP_MAP)
        return bad_erasure("not a map");
    for (uint32_t i = 0; i < o.v.n; i++) {
        tel_mp_obj k;
        if (tel__mp_next(&r, &k) || k.kind != TEL_MP_STR)
            return bad_erasure("a key is not a string");
        int is_v = k.len == 1 && k.data[0] == 'v', is_x = k.len == 1 && k.data[0] == 'x';
        if ((is_v && has_v) || (is_x && id))
            return bad_erasure("a key appears twice");
        if (is_v) {
            if (read_uint(&r, &version))
                return bad_erasure("field 'v' is not an unsigned integer");
            if (version < TEL_SCHEMA_VERSION_FLAT || version > TEL_SCHEMA_VERSION_NESTED)
                return tel__fail(TEL_ERR_CORRUPT, "erasure request: schema version %llu is not supported",
                                 (unsigned long long)version);
            has_v = 1;
        } else if (is_x) {
            if (read_id(&r, &id, 0))
                return bad_erasure("field 'x' is not 16 bytes of binary");
        } else if (tel__mp_skip(&r, TEL_MP_MAX_DEPTH) != 0) {
            return bad_erasure("an unknown field is truncated, malformed or too deep");
        }
    }
    if (!has_v || !id)
        return bad_erasure("a required field (v or x) is missing");
    if (tel__mp_left(&r) != 0)
        return bad_erasure("bytes after the end of the map");
    memcpy(anon, id, TEL_ID_LEN);
    return TEL_OK;
}
