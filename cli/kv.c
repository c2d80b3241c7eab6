/* SPDX-License-Identifier: MIT */
/*
 * cli/kv.c - typing of `tel emit` KEY=VALUE values (see kv.h).
 */
#include "kv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_kv_type(const char *s, tel_prop *p)
{
    char *end;
    if (*s) {
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (!*end && !errno && (s[0] != '+')) {
            p->type = TEL_T_INT;
            p->v.i = i;
            return;
        }
        errno = 0;
        double f = strtod(s, &end);
        if (!*end && !errno && isfinite(f) && strpbrk(s, "0123456789") && !strpbrk(s, "xXnN")) {
            p->type = TEL_T_FLOAT;
            p->v.f = f;
            return;
        }
    }
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        p->type = TEL_T_BOOL;
        p->v.b = s[0] == 't';
        return;
    }
    p->type = TEL_T_STR;
    p->v.s = s;
}
