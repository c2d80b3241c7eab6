/* SPDX-License-Identifier: MIT */
/*
 * cli/kv.c - typing of `tel emit` KEY=VALUE values (see kv.h); KEY:=JSON
 * goes through format/jsonin.c.
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

