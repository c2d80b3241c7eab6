/* SPDX-License-Identifier: MIT */
/*
 * cli/kv.c - typing of `tel emit` KEY=VALUE and KEY:=JSON values (see kv.h).
 */
#include "kv.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

/* An integer whose decimal form is exactly s ("-3", not "+3", "007"). */
static int exact_int(const char *s, int64_t *out)
{
    char *end, back[32];
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return 0;
    snprintf(back, sizeof back, "%lld", i);
    if (strcmp(back, s) != 0)
        return 0;
    *out = i;
    return 1;
}

/* A finite decimal that tel show prints back as exactly s ("2.5", not
 * "1.10", "1e3" or "100.0"). */
static int exact_float(const char *s, double *out)
{
    char *end, back[TEL_DOUBLE_TEXT];
    errno = 0;
    double f = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(f))
        return 0;
    tel__double_text(f, back);
    if (strcmp(back, s) != 0)
        return 0;
    *out = f;
    return 1;
}

void cli_kv_type(const char *s, tel_prop *p)
{
    if (exact_int(s, &p->v.i)) {
        p->type = TEL_T_INT;
    } else if (exact_float(s, &p->v.f)) {
        p->type = TEL_T_FLOAT;
    } else if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        p->type = TEL_T_BOOL;
        p->v.b = s[0] == 't';
    } else {
        p->type = TEL_T_STR;
        p->v.s = s;
    }
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

/* Appends code point cp as UTF-8 at *w. */
static void put_utf8(char **w, unsigned cp)
{
    unsigned char *o = (unsigned char *)*w;
    if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xc0 | cp >> 6);
        *o++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xe0 | cp >> 12);
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (unsigned char)(0xf0 | cp >> 18);
        *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *w = (char *)o;
}

/* Decodes the JSON string s (quotes included) in place; the text only
 * ever shrinks.  Returns the decoded start or NULL with *why set. */
static char *json_string(char *s, const char **why)
{
    size_t n = strlen(s);
    if (n < 2 || s[n - 1] != '"') {
        *why = "a JSON string needs its closing quote";
        return NULL;
    }
    s[n - 1] = '\0';
    char *r = s + 1, *w = s;
    while (*r) {
        unsigned char c = (unsigned char)*r;
        if (c == '"' || c < 0x20) {
            *why = c == '"' ? "a JSON string has an unescaped quote inside" : "a JSON string has a raw control character";
            return NULL;
        }
        if (c != '\\') {
            *w++ = *r++;
            continue;
        }
        char e = r[1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            *w++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            r += 2;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || strlen(r) < 6 || hex4(r + 2, &cp) != 0) {
            *why = "a JSON string has a bad escape";
            return NULL;
        }
        r += 6;
        if (cp >= 0xd800 && cp < 0xdc00) {
            if (r[0] != '\\' || r[1] != 'u' || strlen(r) < 6 || hex4(r + 2, &lo) != 0 || lo < 0xdc00 ||
                lo > 0xdfff) {
                *why = "a JSON string has a lone surrogate";
                return NULL;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            r += 6;
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            *why = "a JSON string has a lone surrogate";
            return NULL;
        }
        if (cp == 0) {
            *why = "a JSON string holds \\u0000";
            return NULL;
        }
        put_utf8(&w, cp);
    }
    *w = '\0';
    return s;
}

/* A JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number_syntax(const char *s, int *integral)
{
    const char *p = s + (*s == '-');
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return 0;
    *integral = 1;
    if (*p == '.') {
        *integral = 0;
        if (!(*++p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        *integral = 0;
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

int cli_kv_json(char *s, tel_prop *p, const char **why)
{
    int integral;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        p->type = TEL_T_BOOL;
        p->v.b = s[0] == 't';
    } else if (strcmp(s, "null") == 0) {
        p->type = TEL_T_NIL;
    } else if (s[0] == '"') {
        char *t = json_string(s, why);
        if (!t)
            return -1;
        p->type = TEL_T_STR;
        p->v.s = t;
    } else if (s[0] == '[' || s[0] == '{') {
        *why = "arrays and objects are not property values (a value is a number, true, false, null "
               "or a string)";
        return -1;
    } else if (json_number_syntax(s, &integral)) {
        char *end;
        errno = 0;
        if (integral) {
            long long i = strtoll(s, &end, 10);
            if (errno) {
                *why = "a JSON integer out of the 64-bit range";
                return -1;
            }
            p->type = TEL_T_INT;
            p->v.i = i;
        } else {
            double f = strtod(s, &end);
            if (errno || !isfinite(f)) {
                *why = "a JSON number out of range";
                return -1;
            }
            p->type = TEL_T_FLOAT;
            p->v.f = f;
        }
    } else {
        *why = "not a JSON value (a number, true, false, null or a \"string\")";
        return -1;
    }
    return 0;
}
