/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_prom.c - libFuzzer harness for the Prometheus exposition
 * parser (format/prom.c).
 *
 * Whatever the bytes, the parser must end (in samples, the end, or one
 * error naming a line), and every sample it hands out must keep the
 * promises of prom.h: a valid metric name, at most 29 labels with valid,
 * distinct names, values of at most 1 KiB of UTF-8, a finite value.  Each
 * sample is then written back in the exposition format, with tel's own
 * escaping, and must parse again to the same sample.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "prom.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks one sample's promises; traps when one is broken. */
static void fz_prom_check(const tel_prom_sample *s)
{
    if (tel__prom_metric_name_check(s->name, strlen(s->name)) != TEL_OK || !isfinite(s->value) ||
        s->nlabels > TEL_PROM_MAX_LABELS || s->line == 0)
        __builtin_trap();
    for (size_t i = 0; i < s->nlabels; i++) {
        size_t vl = strlen(s->label_value[i]);
        if (tel__prom_label_name_check(s->label_name[i], strlen(s->label_name[i])) != TEL_OK ||
            vl > TEL_PROM_MAX_LABEL_VALUE || !tel__utf8_valid(s->label_value[i], vl))
            __builtin_trap();
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->label_name[i], s->label_name[j]) == 0)
                __builtin_trap();
    }
}

/* Writes the sample back as one exposition line and parses it again. */
static void fz_prom_round_trip(const tel_prom_sample *s)
{
    tel_buf b = TEL_BUF_INIT;
    int bad = tel__buf_puts(&b, s->name) != 0 || tel__buf_puts(&b, "{") != 0;
    for (size_t i = 0; i < s->nlabels && !bad; i++)
        bad = tel__buf_printf(&b, "%s=\"", s->label_name[i]) != 0 ||
              tel__prom_escape(&b, s->label_value[i], strlen(s->label_value[i])) != 0 ||
              tel__buf_puts(&b, "\",") != 0;
    bad = bad || tel__buf_printf(&b, "} %.17g\n", s->value) != 0;
    if (bad) {
        tel__buf_free(&b);
        return;
    }
    /* A line may grow past the line limit when many values are escaped;
     * the rest must come back the same. */
    if (b.len <= TEL_PROM_MAX_LINE) {
        tel_prom_parser ps;
        static tel_prom_sample again;
        tel__prom_init(&ps, (const char *)b.p, b.len);
        if (tel__prom_next(&ps, &again) != 1 || strcmp(again.name, s->name) != 0 ||
            again.value != s->value || again.nlabels != s->nlabels)
            __builtin_trap();
        for (size_t i = 0; i < s->nlabels; i++)
            if (strcmp(again.label_name[i], s->label_name[i]) != 0 ||
                strcmp(again.label_value[i], s->label_value[i]) != 0)
                __builtin_trap();
    }
    tel__buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tel_prom_sample s;
    tel_prom_parser ps;
    tel__prom_init(&ps, (const char *)data, size);
    int rc;
    unsigned last_line = 0;
    while ((rc = tel__prom_next(&ps, &s)) == 1) {
        if (s.line <= last_line)
            __builtin_trap();
        last_line = s.line;
        fz_prom_check(&s);
        fz_prom_round_trip(&s);
    }
    if (rc != 0) {
        const char *e = tel_last_error();
        if (rc != TEL_ERR_INVALID || strncmp(e, "line ", 5) != 0 || strchr(e, '\n'))
            __builtin_trap();
    }
    return 0;
}
