/* SPDX-License-Identifier: MIT */
/*
 * format/jsonin.c - one JSON value into tel properties (see jsonin.h).
 *
 * A recursive-descent parser over a NUL-terminated string.  It unescapes
 * strings where they stand: an escape is never shorter than what it
 * stands for, so the write position never passes the read position and
 * no second buffer is needed.  Numbers are checked against the JSON
 * grammar first, so strtoll/strtod only ever see a well-formed number.
 */
#include "jsonin.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct parser {
    char *start;
    char *p;
    tel_prop *out;
    size_t cap;
    size_t n;
} parser;

static int fail_at(const parser *ps, int code, const char *what)
{
    return tel__fail(code, "JSON: byte %zu: %s", (size_t)(ps->p - ps->start) + 1, what);
}

static void skip_ws(parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static tel_prop *new_item(parser *ps, const char *key)
{
    if (ps->n == ps->cap)
        return NULL;
    tel_prop *it = &ps->out[ps->n++];
    it->key = key;
    return it;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *w, unsigned cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/* One \uXXXX escape at ps->p (just past the 'u'), with its low surrogate
 * when it is a high one; sets *cp and moves past it. */
static int unicode_escape(parser *ps, unsigned *cp)
{
    if (hex4(ps->p, cp))
        return fail_at(ps, TEL_ERR_INVALID, "\\u is not followed by four hex digits");
    ps->p += 4;
    if (*cp >= 0xdc00 && *cp <= 0xdfff)
        return fail_at(ps, TEL_ERR_INVALID, "a low surrogate without a high one");
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        unsigned lo;
        if (ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return fail_at(ps, TEL_ERR_INVALID, "a high surrogate without a low one");
        ps->p += 6;
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (*cp == 0)
        return fail_at(ps, TEL_ERR_INVALID, "\\u0000 cannot be stored in a string");
    return 0;
}

/* A string at ps->p (on the opening quote); unescapes it in place and
 * returns where it starts, NUL-terminated, or NULL after a failure. */
static char *parse_string(parser *ps)
{
    char *w = ++ps->p;
    char *s = w;
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == '"') {
            ps->p++;
            *w = '\0';
            return s;
        }
        if (c == '\0') {
            fail_at(ps, TEL_ERR_INVALID, "the string is not closed");
            return NULL;
        }
        if (c < 0x20) {
            fail_at(ps, TEL_ERR_INVALID, "a control character in a string (escape it)");
            return NULL;
        }
        ps->p++;
        if (c != '\\') {
            *w++ = (char)c;
            continue;
        }
        char e = *ps->p++;
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (unicode_escape(ps, &cp))
                return NULL;
            w = put_utf8(w, cp);
            break;
        }
        default:
            ps->p--;
            fail_at(ps, TEL_ERR_INVALID, "an unknown escape in a string");
            return NULL;
        }
    }
}

static int digits(parser *ps)
{
    if (*ps->p < '0' || *ps->p > '9')
        return -1;
    while (*ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    return 0;
}

/* A number: an integer when it has no fraction or exponent and fits
 * int64, else a finite double. */
static int parse_number(parser *ps, tel_prop *it)
{
    char *from = ps->p;
    int integral = 1;
    if (*ps->p == '-')
        ps->p++;
    if (*ps->p == '0')
        ps->p++;
    else if (digits(ps))
        return fail_at(ps, TEL_ERR_INVALID, "expected a value");
    if (*ps->p == '.') {
        ps->p++;
        integral = 0;
        if (digits(ps))
            return fail_at(ps, TEL_ERR_INVALID, "expected a digit after '.'");
    }
    if (*ps->p == 'e' || *ps->p == 'E') {
        ps->p++;
        integral = 0;
        if (*ps->p == '+' || *ps->p == '-')
            ps->p++;
        if (digits(ps))
            return fail_at(ps, TEL_ERR_INVALID, "expected a digit in the exponent");
    }
    errno = 0;
    if (integral) {
        long long v = strtoll(from, NULL, 10);
        if (errno == 0) {
            it->type = TEL_T_INT;
            it->v.i = v;
            return 0;
        }
    }
    errno = 0;
    double d = strtod(from, NULL);
    if (!isfinite(d)) {
        ps->p = from;
        return fail_at(ps, TEL_ERR_INVALID, "a number too large for a double");
    }
    it->type = TEL_T_FLOAT;
    it->v.f = d;
    return 0;
}

static int parse_value(parser *ps, const char *key, int depth);

/* An array or object at ps->p (on '[' or '{'). */
static int parse_container(parser *ps, tel_prop *it, int depth)
{
    int is_map = *ps->p == '{';
    char close = is_map ? '}' : ']';
    if (depth > TEL_MAX_DEPTH)
        return fail_at(ps, TEL_ERR_LIMIT, "arrays and objects nest deeper than 4 levels");
    it->type = is_map ? TEL_T_MAP : TEL_T_ARRAY;
    it->v.i = 0;
    ps->p++;
    skip_ws(ps);
    if (*ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        const char *k = NULL;
        skip_ws(ps);
        if (is_map) {
            if (*ps->p != '"')
                return fail_at(ps, TEL_ERR_INVALID, "expected a string key");
            if (!(k = parse_string(ps)))
                return TEL_ERR_INVALID;
            skip_ws(ps);
            if (*ps->p != ':')
                return fail_at(ps, TEL_ERR_INVALID, "expected ':'");
            ps->p++;
        }
        int rc = parse_value(ps, k, depth + 1);
        if (rc)
            return rc;
        it->v.i++;
        skip_ws(ps);
        if (*ps->p == close) {
            ps->p++;
            return 0;
        }
        if (*ps->p != ',')
            return fail_at(ps, TEL_ERR_INVALID, is_map ? "expected ',' or '}'" : "expected ',' or ']'");
        ps->p++;
    }
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(ps->p, word, n) != 0)
        return -1;
    ps->p += n;
    return 0;
}

/* Any value; `depth` is the level a container here would have. */
static int parse_value(parser *ps, const char *key, int depth)
{
    skip_ws(ps);
    tel_prop *it = new_item(ps, key);
    if (!it)
        return fail_at(ps, TEL_ERR_LIMIT, "more values than one event may hold");
    char c = *ps->p;
    if (c == '{' || c == '[')
        return parse_container(ps, it, depth);
    if (c == '"') {
        it->type = TEL_T_STR;
        return (it->v.s = parse_string(ps)) ? 0 : TEL_ERR_INVALID;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps, it);
    if (literal(ps, "true") == 0) {
        it->type = TEL_T_BOOL;
        it->v.b = 1;
        return 0;
    }
    if (literal(ps, "false") == 0) {
        it->type = TEL_T_BOOL;
        it->v.b = 0;
        return 0;
    }
    if (literal(ps, "null") == 0) {
        it->type = TEL_T_NIL;
        it->v.i = 0;
        return 0;
    }
    return fail_at(ps, TEL_ERR_INVALID, c ? "expected a value" : "the text ends where a value should be");
}

int tel__json_props(char *text, const char *key, tel_prop *out, size_t cap, size_t *n)
{
    if (!text || !out || !n || *n > cap)
        return tel__fail(TEL_ERR_INVALID, "JSON: no text or no room");
    parser ps = { text, text, out, cap, *n };
    int rc = parse_value(&ps, key, 1);
    if (rc)
        return rc < 0 ? rc : TEL_ERR_INVALID;
    skip_ws(&ps);
    if (*ps.p != '\0')
        return fail_at(&ps, TEL_ERR_INVALID, "text after the value");
    *n = ps.n;
    return TEL_OK;
}
