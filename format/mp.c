/* SPDX-License-Identifier: MIT */
/*
 * format/mp.c - the bounded MessagePack reader (see mp.h).
 */
#include "mp.h"

#include <string.h>

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Consumes n bytes and returns where they start, or NULL (cursor
 * unchanged) when fewer are left. */
static const uint8_t *take(tel_mp *r, size_t n)
{
    if (tel__mp_left(r) < n)
        return NULL;
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

/* Reads an n-byte big-endian length or value. */
static int take_be(tel_mp *r, size_t n, uint64_t *out)
{
    const uint8_t *at = take(r, n);
    if (!at)
        return TEL_MP_ETRUNC;
    *out = load_be(at, n);
    return 0;
}

static int body(tel_mp *r, tel_mp_obj *o, tel_mp_kind kind, uint64_t len)
{
    const uint8_t *at = take(r, (size_t)len);
    if (!at)
        return TEL_MP_ETRUNC;
    o->kind = kind;
    o->data = at;
    o->len = (uint32_t)len;
    return 0;
}

/* An array or map header is only accepted when the bytes left could hold
 * its elements; this is what makes 0xdd ffffffff harmless. */
static int container(tel_mp *r, tel_mp_obj *o, tel_mp_kind kind, uint64_t n)
{
    uint64_t need = kind == TEL_MP_MAP ? 2 * n : n;
    if (need > tel__mp_left(r))
        return TEL_MP_ETRUNC;
    o->kind = kind;
    o->v.n = (uint32_t)n;
    return 0;
}

static int ext(tel_mp *r, tel_mp_obj *o, uint64_t len)
{
    const uint8_t *type = take(r, 1);
    if (!type)
        return TEL_MP_ETRUNC;
    o->ext_type = (int8_t)*type;
    return body(r, o, TEL_MP_EXT, len);
}

static void set_int(tel_mp_obj *o, int64_t v)
{
    if (v >= 0) {
        o->kind = TEL_MP_UINT;
        o->v.u = (uint64_t)v;
    } else {
        o->kind = TEL_MP_INT;
        o->v.i = v;
    }
}

int tel__mp_next(tel_mp *r, tel_mp_obj *o)
{
    const uint8_t *h = take(r, 1);
    if (!h)
        return TEL_MP_ETRUNC;
    uint8_t c = *h;
    uint64_t v;

    if (c <= 0x7f) {
        o->kind = TEL_MP_UINT;
        o->v.u = c;
        return 0;
    }
    if (c >= 0xe0) {
        o->kind = TEL_MP_INT;
        o->v.i = (int8_t)c;
        return 0;
    }
    if (c <= 0x8f)
        return container(r, o, TEL_MP_MAP, c & 0x0f);
    if (c <= 0x9f)
        return container(r, o, TEL_MP_ARRAY, c & 0x0f);
    if (c <= 0xbf)
        return body(r, o, TEL_MP_STR, c & 0x1f);

    switch (c) {
    case 0xc0:
        o->kind = TEL_MP_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        o->kind = TEL_MP_BOOL;
        o->v.b = c == 0xc3;
        return 0;
    case 0xc4: case 0xc5: case 0xc6:     /* bin 8, 16, 32 */
        if (take_be(r, (size_t)1 << (c - 0xc4), &v))
            return TEL_MP_ETRUNC;
        return body(r, o, TEL_MP_BIN, v);
    case 0xc7: case 0xc8: case 0xc9:     /* ext 8, 16, 32 */
        if (take_be(r, (size_t)1 << (c - 0xc7), &v))
            return TEL_MP_ETRUNC;
        return ext(r, o, v);
    case 0xca: {                          /* float 32 */
        float f;
        uint32_t bits;
        if (take_be(r, 4, &v))
            return TEL_MP_ETRUNC;
        bits = (uint32_t)v;
        memcpy(&f, &bits, sizeof f);
        o->kind = TEL_MP_FLOAT;
        o->v.f = f;
        return 0;
    }
    case 0xcb: {                          /* float 64 */
        double d;
        if (take_be(r, 8, &v))
            return TEL_MP_ETRUNC;
        memcpy(&d, &v, sizeof d);
        o->kind = TEL_MP_FLOAT;
        o->v.f = d;
        return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:   /* uint 8 .. 64 */
        if (take_be(r, (size_t)1 << (c - 0xcc), &v))
            return TEL_MP_ETRUNC;
        o->kind = TEL_MP_UINT;
        o->v.u = v;
        return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: { /* int 8 .. 64 */
        size_t n = (size_t)1 << (c - 0xd0);
        if (take_be(r, n, &v))
            return TEL_MP_ETRUNC;
        /* Sign-extend from n bytes without shifting into the sign bit. */
        if (n < 8 && (v >> (8 * n - 1)))
            v |= ~(uint64_t)0 << (8 * n);
        int64_t s;
        memcpy(&s, &v, sizeof s);
        set_int(o, s);
        return 0;
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:  /* fixext */
        return ext(r, o, (uint64_t)1 << (c - 0xd4));
    case 0xd9: case 0xda: case 0xdb:     /* str 8, 16, 32 */
        if (take_be(r, (size_t)1 << (c - 0xd9), &v))
            return TEL_MP_ETRUNC;
        return body(r, o, TEL_MP_STR, v);
    case 0xdc: case 0xdd:                /* array 16, 32 */
        if (take_be(r, c == 0xdc ? 2 : 4, &v))
            return TEL_MP_ETRUNC;
        return container(r, o, TEL_MP_ARRAY, v);
    case 0xde: case 0xdf:                /* map 16, 32 */
        if (take_be(r, c == 0xde ? 2 : 4, &v))
            return TEL_MP_ETRUNC;
        return container(r, o, TEL_MP_MAP, v);
    default:                             /* 0xc1 is never used */
        return TEL_MP_ETRUNC;
    }
}

int tel__mp_skip(tel_mp *r, int depth)
{
    tel_mp_obj o;
    int rc = tel__mp_next(r, &o);
    if (rc)
        return rc;
    if (o.kind != TEL_MP_ARRAY && o.kind != TEL_MP_MAP)
        return 0;
    if (depth <= 0)
        return TEL_MP_EDEEP;
    uint64_t items = o.kind == TEL_MP_MAP ? 2 * (uint64_t)o.v.n : o.v.n;
    for (uint64_t i = 0; i < items; i++) {
        rc = tel__mp_skip(r, depth - 1);
        if (rc)
            return rc;
    }
    return 0;
}
