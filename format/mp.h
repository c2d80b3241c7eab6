/* SPDX-License-Identifier: MIT */
/*
 * format/mp.h - a small MessagePack reader that trusts no length.
 *
 * Writing goes through msgpack-c's packer.  Reading does not: msgpack-c's
 * unpacker allocates room for as many elements as an array header claims
 * (0xdd ffffffff asks for 4 G of them) before it knows whether the bytes
 * are there.  This reader is a cursor over a byte range.  Every header,
 * and every body it announces, is checked against the bytes left before
 * anything is read; nothing is allocated; strings and binaries come back
 * as pointers into the input, valid as long as the input is.
 */
#ifndef TEL_FORMAT_MP_H
#define TEL_FORMAT_MP_H

#include <stddef.h>
#include <stdint.h>

/* How deep skipped values may nest before they are refused.  The record
 * itself needs 3 levels; the bound only exists so that a hostile input of
 * nested one-element arrays cannot exhaust the stack. */
#define TEL_MP_MAX_DEPTH 32

typedef struct tel_mp {
    const uint8_t *p;     /* next byte to read */
    const uint8_t *end;   /* one past the last byte */
} tel_mp;

typedef enum tel_mp_kind {
    TEL_MP_NIL,
    TEL_MP_BOOL,
    TEL_MP_UINT,      /* any integer encoding whose value is >= 0 */
    TEL_MP_INT,       /* any integer encoding whose value is < 0 */
    TEL_MP_FLOAT,     /* float 32 or 64, widened to double */
    TEL_MP_STR,
    TEL_MP_BIN,
    TEL_MP_EXT,
    TEL_MP_ARRAY,     /* header only: the elements follow */
    TEL_MP_MAP        /* header only: key, value pairs follow */
} tel_mp_kind;

typedef struct tel_mp_obj {
    tel_mp_kind kind;
    union {
        int b;
        uint64_t u;
        int64_t i;
        double f;
        uint32_t n;   /* elements of an array, pairs of a map */
    } v;
    const uint8_t *data;  /* body of a str, bin or ext (already consumed) */
    uint32_t len;
    int8_t ext_type;
} tel_mp_obj;

/* Failures of the reader; both mean the input is not what it claims. */
#define TEL_MP_ETRUNC (-1)   /* truncated, or a byte that is no MessagePack type */
#define TEL_MP_EDEEP (-2)    /* nested deeper than the depth allowed */

static inline void tel__mp_init(tel_mp *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
}

static inline size_t tel__mp_left(const tel_mp *r)
{
    return (size_t)(r->end - r->p);
}

/*
 * Reads one value.  Scalars, strings, binaries and extensions are consumed
 * whole.  For an array or a map only the header is consumed, and only
 * when the bytes left could hold that many elements (each takes at least
 * one byte), so a caller looping over v.n elements never loops longer than
 * the input.  Returns 0 or TEL_MP_ETRUNC; on failure the cursor is left
 * somewhere inside the bad value.
 */
int tel__mp_next(tel_mp *r, tel_mp_obj *o);

/*
 * Skips one value of any type, with everything nested in it, allowing
 * `depth` levels of arrays and maps.  Returns 0, TEL_MP_ETRUNC or
 * TEL_MP_EDEEP.  Time is linear in the bytes skipped.
 */
int tel__mp_skip(tel_mp *r, int depth);

#endif
