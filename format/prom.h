/* SPDX-License-Identifier: MIT */
/*
 * format/prom.h - a bounded parser for the Prometheus text exposition
 * format (version 0.0.4), the input of tel_emit_prometheus() and
 * `tel metrics`.
 *
 * The parser walks a caller's buffer line by line and allocates nothing:
 * each sample is unescaped into the fixed store of a tel_prom_sample, and
 * every limit below is checked before a byte is copied, so any input --
 * a 1 GiB line, NUL bytes, an unterminated quote -- costs at most one
 * scan of the line and ends in an error naming the line.
 *
 * Accepted:
 *   # HELP name text             skipped
 *   # TYPE name kind             remembered, to tag the family's samples
 *   # anything else              a comment, skipped
 *   (blank line)                 skipped
 *   name{l="v",...} value [ts]   one sample; blanks around tokens allowed,
 *                                a trailing comma in the braces too
 *
 * Refused, with "line N: <problem>" in tel_last_error(): every malformed
 * token, NaN and +-Inf values (tel stores finite numbers only), label
 * names starting with "__", a label given twice, and anything over the
 * limits.  No error message ever holds a label value or any byte of the
 * input that is not known to be a name: a label value may be a secret.
 */
#ifndef TEL_FORMAT_PROM_H
#define TEL_FORMAT_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Limits.  A sample becomes one event with properties name, value, kind
 * and one "label.<name>" per label: 3 + 29 fills the 32 properties of an
 * event, and "label." (6 bytes) + 58 fills a 64-byte property key.
 */
#define TEL_PROM_MAX_LABELS 29
#define TEL_PROM_MAX_NAME 64
#define TEL_PROM_MAX_LABEL_NAME 58
#define TEL_PROM_MAX_LABEL_VALUE 1024
#define TEL_PROM_MAX_LINE 8192
#define TEL_PROM_LABEL_PREFIX "label."

/* The kind a # TYPE line gave a family; UNKNOWN when no TYPE line did. */
typedef enum tel_prom_kind {
    TEL_PROM_UNKNOWN = 0,
    TEL_PROM_COUNTER,
    TEL_PROM_GAUGE,
    TEL_PROM_HISTOGRAM,
    TEL_PROM_SUMMARY,
    TEL_PROM_UNTYPED
} tel_prom_kind;

/* "counter", "gauge", "histogram", "summary", "untyped", or NULL. */
const char *tel__prom_kind_name(tel_prom_kind kind);

/*
 * One sample.  Every string is NUL-terminated and lives in `store`, so a
 * sample stays valid until it is overwritten by the next call, whatever
 * happens to the input buffer.  The struct is about 9 KiB: fine on a
 * stack, not in a tight recursion.
 */
typedef struct tel_prom_sample {
    const char *name;
    tel_prom_kind kind;
    double value;                 /* always finite */
    int has_ts;
    int64_t ts_ms;
    size_t nlabels;
    const char *label_name[TEL_PROM_MAX_LABELS];
    const char *label_value[TEL_PROM_MAX_LABELS];
    unsigned line;                /* 1-based line of the input */
    /* Unescaping only shrinks text, so a line's worth of bytes plus a NUL
     * per string always fits. */
    char store[TEL_PROM_MAX_LINE + 2 * TEL_PROM_MAX_LABELS + 2];
} tel_prom_sample;

/* A cursor over the caller's text; the text must outlive it. */
typedef struct tel_prom_parser {
    const char *p;
    size_t len, pos;
    unsigned line;                /* lines consumed so far */
    /* The last # TYPE line: the format groups a family's samples right
     * after it, so one remembered family is enough. */
    char type_name[TEL_PROM_MAX_NAME + 1];
    tel_prom_kind type_kind;
} tel_prom_parser;

void tel__prom_init(tel_prom_parser *ps, const char *text, size_t len);

/*
 * Reads up to the next sample.  Returns 1 with *out filled, 0 at the end
 * of the text, or TEL_ERR_INVALID with "line N: <problem>" in
 * tel_last_error().  After an error the caller stops: the parser has
 * moved past the failing line, and what follows is not worth reading.
 */
int tel__prom_next(tel_prom_parser *ps, tel_prom_sample *out);

/*
 * Name checks shared with tel_emit_metric(): a metric name is 1-64 of
 * [a-zA-Z_:][a-zA-Z0-9_:]*; a label name 1-58 of [a-zA-Z_][a-zA-Z0-9_]*
 * not starting with "__" (reserved by Prometheus).  Each returns TEL_OK or
 * TEL_ERR_INVALID with the reason (no line number) in tel_last_error().
 */
int tel__prom_metric_name_check(const char *s, size_t len);
int tel__prom_label_name_check(const char *s, size_t len);

/*
 * Appends `s` (len bytes) to out as the inside of a label value of the
 * exposition format: backslash, double quote and newline escaped, nothing
 * else changed.  Returns 0, or -1 when memory ran out.
 */
int tel__prom_escape(tel_buf *out, const char *s, size_t len);

#endif
