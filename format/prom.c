/* SPDX-License-Identifier: MIT */
/*
 * format/prom.c - the Prometheus text exposition parser (see prom.h).
 *
 * The input comes from whatever command a cron job pipes into
 * `tel metrics`, so it is treated as hostile: lengths are checked before
 * copying, nothing is allocated, and error messages describe the problem
 * by line and column without quoting the input, since label values are
 * where a secret would hide.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "record.h"
#include "prom.h"
#include "text.h"

/* ----------------------------------------------------------------- names */

static int is_alpha_(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Length of the run of metric-name bytes at s[0..n); 0 when s does not
 * start like a metric name. */
static size_t metric_name_span(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !(is_alpha_((unsigned char)s[0]) || s[0] == ':'))
        return 0;
    while (i < n && (is_alpha_((unsigned char)s[i]) || is_digit((unsigned char)s[i]) || s[i] == ':'))
        i++;
    return i;
}

static size_t label_name_span(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_alpha_((unsigned char)s[0]))
        return 0;
    while (i < n && (is_alpha_((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
        i++;
    return i;
}

int tel__prom_metric_name_check(const char *s, size_t len)
{
    if (!s || len == 0)
        return tel__fail(TEL_ERR_INVALID, "metric name is empty");
    if (len > TEL_PROM_MAX_NAME)
        return tel__fail(TEL_ERR_INVALID, "metric name is longer than %d bytes", TEL_PROM_MAX_NAME);
    if (metric_name_span(s, len) != len)
        return tel__fail(TEL_ERR_INVALID,
                         "metric name is not [a-zA-Z_:][a-zA-Z0-9_:]* (bad byte at %zu)",
                         metric_name_span(s, len) + 1);
    return TEL_OK;
}

int tel__prom_label_name_check(const char *s, size_t len)
{
    if (!s || len == 0)
        return tel__fail(TEL_ERR_INVALID, "label name is empty");
    if (len > TEL_PROM_MAX_LABEL_NAME)
        return tel__fail(TEL_ERR_INVALID, "label name is longer than %d bytes", TEL_PROM_MAX_LABEL_NAME);
    if (label_name_span(s, len) != len)
        return tel__fail(TEL_ERR_INVALID,
                         "label name is not [a-zA-Z_][a-zA-Z0-9_]* (bad byte at %zu)",
                         label_name_span(s, len) + 1);
    if (len >= 2 && s[0] == '_' && s[1] == '_')
        return tel__fail(TEL_ERR_INVALID, "label name '%.*s' starts with '__', which Prometheus reserves",
                         (int)len, s);
    return TEL_OK;
}

const char *tel__prom_kind_name(tel_prom_kind kind)
{
    switch (kind) {
    case TEL_PROM_COUNTER: return "counter";
    case TEL_PROM_GAUGE: return "gauge";
    case TEL_PROM_HISTOGRAM: return "histogram";
    case TEL_PROM_SUMMARY: return "summary";
    case TEL_PROM_UNTYPED: return "untyped";
    case TEL_PROM_UNKNOWN: break;
    }
    return NULL;
}

int tel__prom_escape(tel_buf *out, const char *s, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '"' ? "\\\"" : s[i] == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        if (tel__buf_append(out, s + from, i - from) != 0 || tel__buf_append(out, esc, 2) != 0)
            return -1;
        from = i + 1;
    }
    return tel__buf_append(out, s + from, len - from);
}

/* ---------------------------------------------------------------- parser */

void tel__prom_init(tel_prom_parser *ps, const char *text, size_t len)
{
    memset(ps, 0, sizeof *ps);
    ps->p = text ? text : "";
    ps->len = text ? len : 0;
}

/* One line being parsed: its bytes, where we are, and its number. */
typedef struct line_cur {
    const char *s;
    size_t n, i;
    unsigned no;
} line_cur;

#define bad(lc, ...) bad_at((lc)->no, __VA_ARGS__)

static int bad_at(unsigned no, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad_at(unsigned no, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tel__fail(TEL_ERR_INVALID, "line %u: %s", no, what);
}

static void skip_blanks(line_cur *lc)
{
    while (lc->i < lc->n && is_blank((unsigned char)lc->s[lc->i]))
        lc->i++;
}

/* The column of the cursor, 1-based, for messages. */
static size_t col(const line_cur *lc)
{
    return lc->i + 1;
}

/* True when the line continues with the word `w` followed by a blank or
 * the end of the line. */
static int take_word(line_cur *lc, const char *w)
{
    size_t n = strlen(w);
    if (lc->n - lc->i < n || memcmp(lc->s + lc->i, w, n) != 0)
        return 0;
    if (lc->i + n < lc->n && !is_blank((unsigned char)lc->s[lc->i + n]))
        return 0;
    lc->i += n;
    return 1;
}

static int parse_type_line(tel_prom_parser *ps, line_cur *lc)
{
    skip_blanks(lc);
    size_t start = lc->i;
    size_t len = metric_name_span(lc->s + start, lc->n - start);
    if (len == 0)
        return bad(lc, "# TYPE needs a metric name at column %zu", col(lc));
    if (len > TEL_PROM_MAX_NAME)
        return bad(lc, "metric name is longer than %d bytes", TEL_PROM_MAX_NAME);
    lc->i += len;
    if (lc->i < lc->n && !is_blank((unsigned char)lc->s[lc->i]))
        return bad(lc, "# TYPE has a bad byte in its metric name at column %zu", col(lc));
    skip_blanks(lc);
    static const struct { const char *word; tel_prom_kind kind; } kinds[] = {
        { "counter", TEL_PROM_COUNTER }, { "gauge", TEL_PROM_GAUGE },
        { "histogram", TEL_PROM_HISTOGRAM }, { "summary", TEL_PROM_SUMMARY },
        { "untyped", TEL_PROM_UNTYPED },
    };
    tel_prom_kind kind = TEL_PROM_UNKNOWN;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds && kind == TEL_PROM_UNKNOWN; k++)
        if (take_word(lc, kinds[k].word))
            kind = kinds[k].kind;
    if (kind == TEL_PROM_UNKNOWN)
        return bad(lc, "# TYPE has an unknown type at column %zu "
                       "(counter, gauge, histogram, summary or untyped)", col(lc));
    skip_blanks(lc);
    if (lc->i < lc->n)
        return bad(lc, "unexpected text after the type at column %zu", col(lc));
    memcpy(ps->type_name, lc->s + start, len);
    ps->type_name[len] = '\0';
    ps->type_kind = kind;
    return TEL_OK;
}

/* The kind of a sample: its family's, when the last # TYPE line named it
 * or the family a histogram or summary series belongs to. */
static tel_prom_kind kind_of(const tel_prom_parser *ps, const char *name)
{
    size_t tn = strlen(ps->type_name);
    if (tn == 0 || strncmp(name, ps->type_name, tn) != 0)
        return TEL_PROM_UNKNOWN;
    const char *rest = name + tn;
    if (*rest == '\0')
        return ps->type_kind;
    if ((ps->type_kind == TEL_PROM_HISTOGRAM || ps->type_kind == TEL_PROM_SUMMARY) &&
        (strcmp(rest, "_sum") == 0 || strcmp(rest, "_count") == 0))
        return ps->type_kind;
    if (ps->type_kind == TEL_PROM_HISTOGRAM && strcmp(rest, "_bucket") == 0)
        return ps->type_kind;
    return TEL_PROM_UNKNOWN;
}

/* Copies a label value (the cursor is just past the opening quote) into
 * the store, unescaped, and leaves the cursor past the closing quote. */
static int parse_label_value(line_cur *lc, char **w, char *wend, const char *label)
{
    char *out = *w;
    size_t vlen = 0;
    for (;;) {
        if (lc->i >= lc->n)
            return bad(lc, "label '%s' has an unterminated value (no closing quote)", label);
        char c = lc->s[lc->i++];
        if (c == '"')
            break;
        /* A raw NUL would cut the value short unseen, and any control
         * byte breaks the exposition tel-collect writes from it. */
        if ((unsigned char)c < 0x20 || c == 0x7f)
            return bad(lc, "label '%s' value has a control byte at column %zu", label, col(lc) - 1);
        if (c == '\\') {
            if (lc->i >= lc->n)
                return bad(lc, "label '%s' has an unterminated value (no closing quote)", label);
            char e = lc->s[lc->i++];
            if (e == 'n')
                c = '\n';
            else if (e == '\\' || e == '"')
                c = e;
            else
                return bad(lc, "label '%s' value has an unknown escape at column %zu "
                               "(only \\\\, \\\" and \\n)", label, col(lc) - 1);
        }
        if (vlen == TEL_PROM_MAX_LABEL_VALUE)
            return bad(lc, "label '%s' value is longer than %d bytes", label, TEL_PROM_MAX_LABEL_VALUE);
        if (out + vlen + 1 >= wend)      /* cannot happen: the store fits a line */
            return bad(lc, "sample does not fit the parser's store");
        out[vlen++] = c;
    }
    out[vlen] = '\0';
    if (!tel__utf8_valid(out, vlen))
        return bad(lc, "label '%s' value is not valid UTF-8", label);
    *w = out + vlen + 1;
    return TEL_OK;
}

/* The value: a decimal float.  NaN and the infinities are valid in the
 * exposition format but tel refuses non-finite numbers, so they are named
 * in the error rather than passed on. */
static int parse_value(line_cur *lc, double *out)
{
    size_t start = lc->i;
    while (lc->i < lc->n && !is_blank((unsigned char)lc->s[lc->i]))
        lc->i++;
    size_t len = lc->i - start;
    const char *t = lc->s + start;
    if (len == 0)
        return bad(lc, "missing the sample value at column %zu", start + 1);
    size_t k = (t[0] == '+' || t[0] == '-') ? 1 : 0;
    if ((len - k == 3 && strncasecmp(t + k, "inf", 3) == 0) ||
        (len - k == 8 && strncasecmp(t + k, "infinity", 8) == 0) ||
        (len - k == 3 && strncasecmp(t + k, "nan", 3) == 0))
        return bad(lc, "value at column %zu is NaN or infinite; tel records finite numbers only",
                   start + 1);
    int digits = 0;
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)t[j];
        digits |= is_digit(c);
        if (!is_digit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-')
            return bad(lc, "value at column %zu is not a number", start + 1);
    }
    char num[72];
    if (!digits || len >= sizeof num)
        return bad(lc, "value at column %zu is not a number", start + 1);
    memcpy(num, t, len);
    num[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(num, &end);
    if (end != num + len)
        return bad(lc, "value at column %zu is not a number", start + 1);
    if (!isfinite(v))
        return bad(lc, "value at column %zu is out of range of a double", start + 1);
    *out = v;
    return TEL_OK;
}

/* The optional timestamp: an integer of milliseconds, possibly negative. */
static int parse_timestamp(line_cur *lc, int64_t *out)
{
    size_t start = lc->i;
    int neg = lc->i < lc->n && lc->s[lc->i] == '-';
    if (neg)
        lc->i++;
    uint64_t v = 0;
    size_t ndig = 0;
    while (lc->i < lc->n && is_digit((unsigned char)lc->s[lc->i])) {
        unsigned d = (unsigned)(lc->s[lc->i] - '0');
        if (v > (UINT64_MAX - d) / 10 || v * 10 + d > (uint64_t)INT64_MAX)
            return bad(lc, "timestamp at column %zu is out of range", start + 1);
        v = v * 10 + d;
        lc->i++;
        ndig++;
    }
    if (ndig == 0 || (lc->i < lc->n && !is_blank((unsigned char)lc->s[lc->i])))
        return bad(lc, "timestamp at column %zu is not an integer of milliseconds", start + 1);
    *out = neg ? -(int64_t)v : (int64_t)v;
    return TEL_OK;
}

/* One `name="value"` of a label set, stored at *w; the cursor is on the
 * name.  Returns TEL_OK or TEL_ERR_INVALID with the line and reason. */
static int parse_label(line_cur *lc, tel_prom_sample *out, char **w, char *wend)
{
    size_t ln = label_name_span(lc->s + lc->i, lc->n - lc->i);
    if (ln == 0)
        return bad(lc, "expected a label name or '}' at column %zu", col(lc));
    if (ln > TEL_PROM_MAX_LABEL_NAME)
        return bad(lc, "label name at column %zu is longer than %d bytes", col(lc),
                   TEL_PROM_MAX_LABEL_NAME);
    if (ln >= 2 && lc->s[lc->i] == '_' && lc->s[lc->i + 1] == '_')
        return bad(lc, "label name at column %zu starts with '__', which Prometheus reserves",
                   col(lc));
    if (out->nlabels == TEL_PROM_MAX_LABELS)
        return bad(lc, "sample has more than %d labels", TEL_PROM_MAX_LABELS);
    char *lname = *w;
    memcpy(lname, lc->s + lc->i, ln);
    lname[ln] = '\0';
    *w += ln + 1;
    lc->i += ln;
    for (size_t j = 0; j < out->nlabels; j++)
        if (strcmp(out->label_name[j], lname) == 0)
            return bad(lc, "label '%s' is given twice", lname);
    skip_blanks(lc);
    if (lc->i >= lc->n || lc->s[lc->i] != '=')
        return bad(lc, "expected '=' after label '%s' at column %zu", lname, col(lc));
    lc->i++;
    skip_blanks(lc);
    if (lc->i >= lc->n || lc->s[lc->i] != '"')
        return bad(lc, "expected '\"' to open the value of label '%s' at column %zu", lname,
                   col(lc));
    lc->i++;
    char *lval = *w;
    int rc = parse_label_value(lc, w, wend, lname);
    if (rc != TEL_OK)
        return rc;
    out->label_name[out->nlabels] = lname;
    out->label_value[out->nlabels] = lval;
    out->nlabels++;
    return TEL_OK;
}

/* The label set after '{', through its '}'. */
static int parse_label_set(line_cur *lc, tel_prom_sample *out, char **w, char *wend)
{
    for (;;) {
        skip_blanks(lc);
        if (lc->i < lc->n && lc->s[lc->i] == '}') {
            lc->i++;
            return TEL_OK;
        }
        int rc = parse_label(lc, out, w, wend);
        if (rc != TEL_OK)
            return rc;
        const char *lname = out->label_name[out->nlabels - 1];
        skip_blanks(lc);
        if (lc->i < lc->n && lc->s[lc->i] == ',') {
            lc->i++;
            continue;
        }
        if (lc->i < lc->n && lc->s[lc->i] == '}') {
            lc->i++;
            return TEL_OK;
        }
        if (lc->i >= lc->n)
            return bad(lc, "label set is not closed with '}'");
        return bad(lc, "expected ',' or '}' after label '%s' at column %zu", lname, col(lc));
    }
}

/* The value and the optional timestamp after the name and labels. */
static int parse_value_ts(line_cur *lc, tel_prom_sample *out)
{
    size_t before = lc->i;
    skip_blanks(lc);
    if (lc->i >= lc->n)
        return bad(lc, "missing the sample value");
    if (lc->i == before)
        return bad(lc, "expected a blank before the value at column %zu", col(lc));
    int rc = parse_value(lc, &out->value);
    if (rc != TEL_OK)
        return rc;
    skip_blanks(lc);
    if (lc->i < lc->n) {
        if ((rc = parse_timestamp(lc, &out->ts_ms)) != TEL_OK)
            return rc;
        out->has_ts = 1;
        skip_blanks(lc);
        if (lc->i < lc->n)
            return bad(lc, "unexpected text after the timestamp at column %zu", col(lc));
    }
    return TEL_OK;
}

static int parse_sample(tel_prom_parser *ps, line_cur *lc, tel_prom_sample *out)
{
    char *w = out->store;
    char *wend = out->store + sizeof out->store;
    size_t len = metric_name_span(lc->s + lc->i, lc->n - lc->i);
    if (len == 0)
        return bad(lc, "expected a metric name at column %zu", col(lc));
    if (len > TEL_PROM_MAX_NAME)
        return bad(lc, "metric name is longer than %d bytes", TEL_PROM_MAX_NAME);
    memcpy(w, lc->s + lc->i, len);
    w[len] = '\0';
    out->name = w;
    w += len + 1;
    lc->i += len;
    out->nlabels = 0;
    out->has_ts = 0;
    out->ts_ms = 0;
    size_t after_name = lc->i;
    skip_blanks(lc);
    /* Blanks before the value are required, blanks before '{' allowed:
     * without a label set the cursor goes back to the name's end. */
    int rc = TEL_OK;
    if (lc->i < lc->n && lc->s[lc->i] == '{') {
        lc->i++;
        rc = parse_label_set(lc, out, &w, wend);
    } else {
        lc->i = after_name;
    }
    if (rc == TEL_OK)
        rc = parse_value_ts(lc, out);
    if (rc != TEL_OK)
        return rc;
    out->kind = kind_of(ps, out->name);
    out->line = lc->no;
    return TEL_OK;
}

int tel__prom_next(tel_prom_parser *ps, tel_prom_sample *out)
{
    while (ps->pos < ps->len) {
        const char *s = ps->p + ps->pos;
        size_t rest = ps->len - ps->pos;
        /* Look no further than one byte past the longest allowed line: a
         * huge line is refused after at most 8 KiB of scanning. */
        size_t scan = rest < TEL_PROM_MAX_LINE + 1 ? rest : TEL_PROM_MAX_LINE + 1;
        const char *nl = memchr(s, '\n', scan);
        unsigned no = ps->line + 1;
        size_t n;
        if (nl)
            n = (size_t)(nl - s);
        else if (rest <= TEL_PROM_MAX_LINE)
            n = rest;
        else
            return bad_at(no, "line is longer than %d bytes", TEL_PROM_MAX_LINE);
        const char *nul = memchr(s, '\0', n);
        if (nul)
            return bad_at(no, "NUL byte at column %zu", (size_t)(nul - s) + 1);
        ps->line = no;
        ps->pos += n + (nl ? 1 : 0);
        /* Files written on Windows end lines with CR LF. */
        if (n > 0 && s[n - 1] == '\r')
            n--;
        line_cur lc = { s, n, 0, no };
        skip_blanks(&lc);
        if (lc.i == lc.n)
            continue;
        if (s[lc.i] == '#') {
            lc.i++;
            skip_blanks(&lc);
            if (take_word(&lc, "TYPE")) {
                int rc = parse_type_line(ps, &lc);
                if (rc != TEL_OK)
                    return rc;
            }
            /* HELP text and comments carry nothing tel records. */
            continue;
        }
        int rc = parse_sample(ps, &lc, out);
        if (rc != TEL_OK)
            return rc;
        return 1;
    }
    return 0;
}
