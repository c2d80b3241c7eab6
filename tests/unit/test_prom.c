/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_prom.c - the Prometheus exposition parser (format/prom.c)
 * and the library calls built on it, tel_emit_metric and
 * tel_emit_prometheus.
 *
 * The parser groups feed it valid text of every shape the format allows,
 * every error it must name with the right line, each limit at and one past
 * its boundary, and hostile input; every error message is also searched
 * for the label value that must never be echoed.  The library groups run
 * under a private HOME and count what reached the queue.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"
#include "prom.h"

#define SECRET "s3cr3t-Value"

static tel_prom_sample smp;

/* Parses all of text; returns the number of samples, or the error code.
 * The last sample stays in smp. */
static int parse_n(const char *text, size_t len)
{
    tel_prom_parser ps;
    tel__prom_init(&ps, text, len);
    int n = 0, rc;
    while ((rc = tel__prom_next(&ps, &smp)) == 1)
        n++;
    return rc < 0 ? rc : n;
}

static int parse(const char *text)
{
    return parse_n(text, strlen(text));
}

/* Parses the first sample only; 1 when there was one. */
static int first(const char *text)
{
    tel_prom_parser ps;
    tel__prom_init(&ps, text, strlen(text));
    return tel__prom_next(&ps, &smp);
}

/* The error of `text` is TEL_ERR_INVALID, names line `line`, mentions
 * `what`, and holds no secret. */
static void check_error(const char *name, const char *text, size_t len, unsigned line, const char *what)
{
    int rc = parse_n(text, len);
    char want[32];
    snprintf(want, sizeof want, "line %u: ", line);
    const char *e = tel_last_error();
    int good = rc == TEL_ERR_INVALID && strncmp(e, want, strlen(want)) == 0 && strstr(e, what) &&
               !strstr(e, SECRET) && !strchr(e, '\n');
    if (!good)
        printf("# %s: rc %d, error '%s'\n", name, rc, e);
    CHECK(name, good);
}

#define ERR(name, text, line, what) check_error(name, text, sizeof(text) - 1, line, what)

static void test_valid(void)
{
    CHECK_GROUP("valid");
    CHECK_EQ_INT("empty text has no samples", parse(""), 0);
    CHECK_EQ_INT("blank lines and comments only", parse("\n  \n# just a comment\n#\n\t\n"), 0);
    CHECK_EQ_INT("a bare sample", first("up 1\n"), 1);
    CHECK("its name", strcmp(smp.name, "up") == 0);
    CHECK("its value", smp.value == 1.0);
    CHECK("no labels, no timestamp, no kind",
          smp.nlabels == 0 && !smp.has_ts && smp.kind == TEL_PROM_UNKNOWN);

    const char *text =
        "# HELP http_requests_total The total number of HTTP requests.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
        "http_requests_total{method=\"post\",code=\"400\"}    3   1395066363000\n";
    CHECK_EQ_INT("HELP and TYPE lines are skipped", parse(text), 2);
    CHECK("TYPE tags the family's samples", smp.kind == TEL_PROM_COUNTER);
    CHECK("two labels, in order", smp.nlabels == 2 && strcmp(smp.label_name[0], "method") == 0 &&
                                      strcmp(smp.label_value[1], "400") == 0);
    CHECK("the timestamp", smp.has_ts && smp.ts_ms == 1395066363000LL);
    CHECK("the sample's line number", smp.line == 4);
    CHECK("kind names", strcmp(tel__prom_kind_name(smp.kind), "counter") == 0 &&
                            tel__prom_kind_name(TEL_PROM_UNKNOWN) == NULL);

    CHECK_EQ_INT("escapes in a label value", first("m{p=\"C:\\\\dir\\\\\",q=\"say \\\"hi\\\"\",n=\"a\\nb\"} 1\n"), 1);
    CHECK("backslash unescaped", strcmp(smp.label_value[0], "C:\\dir\\") == 0);
    CHECK("quote unescaped", strcmp(smp.label_value[1], "say \"hi\"") == 0);
    CHECK("newline unescaped", strcmp(smp.label_value[2], "a\nb") == 0);

    CHECK_EQ_INT("blanks inside braces and a trailing comma", first("m { a = \"1\" , b=\"2\", } 2\n"), 1);
    CHECK("both labels read", smp.nlabels == 2 && strcmp(smp.label_value[1], "2") == 0);
    CHECK_EQ_INT("empty braces", first("m{} 3"), 1);
    CHECK("no labels in empty braces", smp.nlabels == 0 && smp.value == 3.0);
    CHECK_EQ_INT("empty label value", first("m{a=\"\"} 3"), 1);
    CHECK("empty value kept", smp.nlabels == 1 && smp.label_value[0][0] == '\0');
    CHECK_EQ_INT("UTF-8 label value", first("m{city=\"Zürich\"} 1"), 1);
    CHECK_EQ_INT("colons in metric names", first("job:rate5m:sum 0.25"), 1);
    CHECK("colon name kept", strcmp(smp.name, "job:rate5m:sum") == 0 && smp.value == 0.25);

    CHECK_EQ_INT("CRLF line ends", parse("a 1\r\nb{x=\"y\"} 2\r\n"), 2);
    CHECK("CR is not part of the value", smp.value == 2.0);
    CHECK_EQ_INT("no newline at the end", parse("a 1\nb 2"), 2);
    CHECK_EQ_INT("leading blanks and tabs", parse("  \ta 1\n\t# TYPE a gauge\n"), 1);

    static const struct { const char *text; double want; } values[] = {
        { "v -0.5", -0.5 }, { "v +1.5", 1.5 }, { "v 1e3", 1000.0 }, { "v 1.5E-3", 0.0015 },
        { "v 0", 0.0 }, { "v 42", 42.0 }, { "v .5", 0.5 }, { "v 1.7976931348623157e308", 1.7976931348623157e308 },
    };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        char name[80];
        snprintf(name, sizeof name, "value '%s'", values[i].text + 2);
        CHECK(name, first(values[i].text) == 1 && smp.value == values[i].want);
    }
    CHECK_EQ_INT("negative timestamp", first("v 1 -5"), 1);
    CHECK("negative timestamp read", smp.has_ts && smp.ts_ms == -5);
    CHECK_EQ_INT("largest timestamp", first("v 1 9223372036854775807"), 1);

    const char *hist =
        "# TYPE rpc_seconds histogram\n"
        "rpc_seconds_bucket{le=\"0.1\"} 3\n"
        "rpc_seconds_sum 1.5\n"
        "rpc_seconds_count 4\n"
        "rpc_seconds_other 1\n";
    tel_prom_parser ps;
    tel_prom_kind kinds[5];
    int n = 0;
    tel__prom_init(&ps, hist, strlen(hist));
    while (n < 5 && tel__prom_next(&ps, &smp) == 1)
        kinds[n++] = smp.kind;
    CHECK_EQ_INT("histogram samples", n, 4);
    CHECK("_bucket, _sum and _count belong to the histogram",
          kinds[0] == TEL_PROM_HISTOGRAM && kinds[1] == TEL_PROM_HISTOGRAM && kinds[2] == TEL_PROM_HISTOGRAM);
    CHECK("another suffix does not", kinds[3] == TEL_PROM_UNKNOWN);
    CHECK_EQ_INT("summary _sum", first("# TYPE s summary\ns_sum 2\n"), 1);
    CHECK("summary kind", smp.kind == TEL_PROM_SUMMARY);
    CHECK_EQ_INT("a later family forgets the earlier TYPE", parse("# TYPE a gauge\n# TYPE b counter\na 1\n"), 1);
    CHECK("untagged once another TYPE came", smp.kind == TEL_PROM_UNKNOWN);
    CHECK_EQ_INT("untyped", first("# TYPE u untyped\nu 1\n"), 1);
    CHECK("untyped kind", smp.kind == TEL_PROM_UNTYPED && strcmp(tel__prom_kind_name(smp.kind), "untyped") == 0);
    CHECK_EQ_INT("HELP for any name, with any text", parse("# HELP x \\ anything \" goes\nx 1\n"), 1);
    CHECK_EQ_INT("a sample outlives its input buffer", first("keep{a=\"b\"} 1"), 1);
}

static void test_errors(void)
{
    CHECK_GROUP("errors");
    ERR("NaN is refused", "a 1\nb NaN\n", 2, "NaN or infinite");
    ERR("+Inf is refused", "b{x=\"" SECRET "\"} +Inf\n", 1, "finite numbers only");
    ERR("-Inf is refused", "\n\nb -Inf", 3, "NaN or infinite");
    ERR("lowercase nan is refused", "b nan", 1, "NaN or infinite");
    ERR("a value that is not a number", "a 1\nb 12abc\n", 2, "not a number");
    ERR("hex values are refused", "b 0x10", 1, "not a number");
    ERR("a value out of range", "b 1e999", 1, "out of range");
    ERR("a missing value", "a 1\n\nb\n", 3, "missing the sample value");
    ERR("a missing value after labels", "b{a=\"" SECRET "\"}\n", 1, "missing the sample value");
    ERR("no blank before the value", "b{a=\"1\"}2\n", 1, "blank before the value");
    ERR("a bad metric name", "1abc 2\n", 1, "expected a metric name");
    ERR("a bad byte in a name", "ab-c 2\n", 1, "blank before the value");
    ERR("a bad label name", "m{1a=\"x\"} 1", 1, "expected a label name");
    ERR("a reserved label name", "m{__name__=\"x\"} 1", 1, "reserves");
    ERR("a label given twice", "m{a=\"1\",a=\"" SECRET "\"} 1", 1, "label 'a' is given twice");
    ERR("no '=' after a label", "m{a \"x\"} 1", 1, "expected '='");
    ERR("an unquoted label value", "m{a=" SECRET "} 1", 1, "expected '\"'");
    ERR("an unterminated label value", "x 1\nm{a=\"" SECRET "} 1\n", 2, "unterminated");
    ERR("a backslash at the end of the line", "m{a=\"" SECRET "\\", 1, "unterminated");
    ERR("an unknown escape", "m{a=\"" SECRET "\\t\"} 1", 1, "unknown escape");
    ERR("a raw control byte in a label value", "a 1\nm{a=\"" SECRET "\x01\"} 1", 2, "label 'a' value has a control byte");
    ERR("a raw tab in a label value", "m{a=\"x\ty\"} 1", 1, "label 'a' value has a control byte");
    ERR("a DEL in a label value", "m{a=\"x\x7fy\"} 1", 1, "label 'a' value has a control byte");
    ERR("labels not closed", "m{a=\"x\"", 1, "not closed");
    ERR("junk between labels", "m{a=\"" SECRET "\" b=\"y\"} 1", 1, "expected ',' or '}'");
    ERR("a bad timestamp", "m 1 12.5", 1, "timestamp");
    ERR("a timestamp out of range", "m 1 9223372036854775808", 1, "out of range");
    ERR("text after the timestamp", "m 1 2 3", 1, "after the timestamp");
    ERR("a TYPE with an unknown type", "# TYPE m widget\nm 1", 1, "unknown type");
    ERR("a TYPE without a name", "a 1\n# TYPE\n", 2, "needs a metric name");
    ERR("a TYPE with text after the type", "# TYPE m gauge extra\n", 1, "after the type");
    ERR("a NUL byte", "a 1\nb{a=\"x\0y\"} 1\n", 2, "NUL byte at column 7");
    ERR("invalid UTF-8 in a label value", "m{a=\"\xff\xfe\"} 1", 1, "not valid UTF-8");
    ERR("an overlong UTF-8 form", "m{a=\"\xc0\xaf\"} 1", 1, "not valid UTF-8");
    ERR("an error after good samples", "a 1\nb 2\nc 3\nd{", 4, "expected a label name");
}

/* A valid line of exactly `len` bytes: a sample padded with trailing
 * blanks, which the format allows. */
static char *line_of(size_t len)
{
    char *s = malloc(len + 2);
    memcpy(s, "m 1", 3);
    memset(s + 3, ' ', len - 3);
    s[len] = '\n';
    s[len + 1] = '\0';
    return s;
}

static void test_limits(void)
{
    CHECK_GROUP("limits");
    char buf[40000];
    char name[80];

    memset(name, 'n', 64);
    snprintf(buf, sizeof buf, "%.64s 1", name);
    CHECK_EQ_INT("a 64-byte metric name", parse(buf), 1);
    snprintf(buf, sizeof buf, "%.64sn 1", name);
    CHECK_EQ_INT("a 65-byte metric name", parse(buf), TEL_ERR_INVALID);
    CHECK("names the limit", strstr(tel_last_error(), "longer than 64") != NULL);
    snprintf(buf, sizeof buf, "# TYPE %.64sn gauge", name);
    CHECK_EQ_INT("a 65-byte name in TYPE", parse(buf), TEL_ERR_INVALID);

    snprintf(buf, sizeof buf, "m{%.58s=\"v\"} 1", name);
    CHECK_EQ_INT("a 58-byte label name", parse(buf), 1);
    snprintf(buf, sizeof buf, "m{%.59s=\"v\"} 1", name);
    CHECK_EQ_INT("a 59-byte label name", parse(buf), TEL_ERR_INVALID);
    CHECK("names the label limit", strstr(tel_last_error(), "longer than 58") != NULL);

    char val[1100];
    memset(val, 'v', sizeof val);
    snprintf(buf, sizeof buf, "m{a=\"%.1024s\"} 1", val);
    CHECK_EQ_INT("a 1024-byte label value", parse(buf), 1);
    CHECK("kept whole", strlen(smp.label_value[0]) == 1024);
    snprintf(buf, sizeof buf, "m{a=\"%.1025s\"} 1", val);
    CHECK_EQ_INT("a 1025-byte label value", parse(buf), TEL_ERR_INVALID);
    CHECK("names the value limit, not the value",
          strstr(tel_last_error(), "longer than 1024") && !strstr(tel_last_error(), "vvvv"));
    /* 1024 escaped newlines: 2048 bytes of text, 1024 bytes of value. */
    size_t at = (size_t)snprintf(buf, sizeof buf, "m{a=\"");
    for (int i = 0; i < 1024; i++, at += 2)
        memcpy(buf + at, "\\n", 2);
    snprintf(buf + at, sizeof buf - at, "\"} 1");
    CHECK_EQ_INT("the value limit counts unescaped bytes", parse(buf), 1);

    at = (size_t)snprintf(buf, sizeof buf, "m{");
    for (int i = 0; i < 29; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "l%d=\"v\",", i);
    snprintf(buf + at, sizeof buf - at, "} 1");
    CHECK_EQ_INT("29 labels", parse(buf), 1);
    CHECK("all 29 read", smp.nlabels == 29 && strcmp(smp.label_name[28], "l28") == 0);
    snprintf(buf + at, sizeof buf - at, "l29=\"v\"} 1");
    CHECK_EQ_INT("30 labels", parse(buf), TEL_ERR_INVALID);
    CHECK("names the label count", strstr(tel_last_error(), "more than 29 labels") != NULL);

    char *l = line_of(TEL_PROM_MAX_LINE);
    CHECK_EQ_INT("an 8192-byte line", parse(l), 1);
    free(l);
    l = line_of(TEL_PROM_MAX_LINE + 1);
    CHECK_EQ_INT("an 8193-byte line", parse(l), TEL_ERR_INVALID);
    CHECK("names the line limit", strncmp(tel_last_error(), "line 1: line is longer than 8192", 32) == 0);
    free(l);
    /* The last line, without a newline, is measured the same way. */
    l = line_of(TEL_PROM_MAX_LINE + 1);
    l[TEL_PROM_MAX_LINE + 1] = '\0';
    CHECK_EQ_INT("an 8193-byte last line without newline", parse(l), TEL_ERR_INVALID);
    free(l);
}

static void test_hostile(void)
{
    CHECK_GROUP("hostile");
    /* 16 MiB without a newline after a good line: refused at line 2
     * after scanning at most one line's worth. */
    size_t big = 16u << 20;
    char *s = malloc(big);
    memcpy(s, "ok 1\n", 5);
    memset(s + 5, 'a', big - 5);
    CHECK_EQ_INT("a 16 MiB line", parse_n(s, big), TEL_ERR_INVALID);
    CHECK("named as line 2", strncmp(tel_last_error(), "line 2: line is longer", 22) == 0);
    /* 16 MiB of one open quote. */
    memcpy(s, "m{a=\"", 5);
    memset(s + 5, 'q', big - 5);
    CHECK_EQ_INT("an unterminated quote running 16 MiB", parse_n(s, big), TEL_ERR_INVALID);
    free(s);
    static const char nul_only[4] = { 0, 0, 0, 0 };
    CHECK_EQ_INT("NUL bytes only", parse_n(nul_only, sizeof nul_only), TEL_ERR_INVALID);
    CHECK("NUL at column 1", strstr(tel_last_error(), "NUL byte at column 1") != NULL);
    CHECK_EQ_INT("a NUL right after the text", parse_n("a 1\n\0", 5), TEL_ERR_INVALID);
    CHECK_EQ_INT("a NULL text is empty", parse_n(NULL, 5), 0);
    CHECK_EQ_INT("a newline only", parse("\n"), 0);
    char *blank = memset(malloc(100000), '\n', 100000);
    CHECK_EQ_INT("100,000 blank lines", parse_n(blank, 100000), 0);
    free(blank);
    char lines[64];
    size_t many = 70000 * 4 + 1;
    char *t = malloc(many + 8);
    for (size_t i = 0; i < 70000; i++)
        memcpy(t + i * 4, "a 1\n", 4);
    memcpy(t + 70000 * 4, "?", 1);
    CHECK_EQ_INT("70,000 samples then junk", parse_n(t, many), TEL_ERR_INVALID);
    snprintf(lines, sizeof lines, "line %u: ", 70001u);
    CHECK("the junk's line number", strncmp(tel_last_error(), lines, strlen(lines)) == 0);
    free(t);
}

static void test_names_and_escape(void)
{
    CHECK_GROUP("names");
    CHECK("metric name ok", tel__prom_metric_name_check("a_b:c9", 6) == TEL_OK);
    CHECK("metric name may start with ':'", tel__prom_metric_name_check(":x", 2) == TEL_OK);
    CHECK("metric name not with a digit", tel__prom_metric_name_check("9x", 2) == TEL_ERR_INVALID);
    CHECK("metric name not with '-'", tel__prom_metric_name_check("a-b", 3) == TEL_ERR_INVALID);
    CHECK("metric name not empty", tel__prom_metric_name_check("", 0) == TEL_ERR_INVALID);
    CHECK("label name ok", tel__prom_label_name_check("_x9", 3) == TEL_OK);
    CHECK("label name not with ':'", tel__prom_label_name_check("a:b", 3) == TEL_ERR_INVALID);
    CHECK("label name not '__'", tel__prom_label_name_check("__x", 3) == TEL_ERR_INVALID);

    tel_buf b = TEL_BUF_INIT;
    const char raw[] = "a\\b\"c\nd";
    CHECK("escape succeeds", tel__prom_escape(&b, raw, sizeof raw - 1) == 0);
    CHECK("escaped as the format says", b.len == 10 && memcmp(b.p, "a\\\\b\\\"c\\nd", 10) == 0);
    /* Round trip through the parser. */
    char line[64];
    snprintf(line, sizeof line, "m{a=\"%.*s\"} 1", (int)b.len, (const char *)b.p);
    CHECK("escaped text parses back to the original", first(line) == 1 &&
                                                          strcmp(smp.label_value[0], raw) == 0);
    tel__buf_free(&b);
}

/* ------------------------------------------------------------- library */

static void fresh(void)
{
    fx_fresh_home();
    static const char *const clear[] = { "TPROM_TELEMETRY_ENABLED", "TPROM_TELEMETRY_DEBUG",
                                         "TPROM_TELEMETRY_LOGGING" };
    for (size_t i = 0; i < sizeof clear / sizeof *clear; i++)
        unsetenv(clear[i]);
}

typedef struct seen {
    int n;
    tel_record r;
    uint8_t raw[TEL_MAX_EVENT];
} seen;

static int keep_last(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)seq;
    seen *s = ud;
    s->n++;
    if (len <= sizeof s->raw) {
        memcpy(s->raw, data, len);
        tel__record_decode(&s->r, s->raw, len);
    }
    return 0;
}

/* Events queued for the app; the last one decoded into s. */
static int queued(seen *s)
{
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    memset(s, 0, sizeof *s);
    if (tel__state_dir("tprom", dir, sizeof dir) != TEL_OK)
        return -1;
    int rc = tel__queue_open(&q, dir, NULL, TEL_Q_READONLY);
    if (rc == TEL_ERR_NOTFOUND)
        return 0;
    if (rc != TEL_OK)
        return -1;
    tel__queue_scan(q, 0, 100000, SIZE_MAX, keep_last, s);
    tel__queue_close(q);
    return s->n;
}

/* The value of property `key` of the decoded record, or NULL. */
static const tel_val *prop(const tel_record *r, const char *key)
{
    for (size_t i = 0; i < r->nprops; i++)
        if (r->keys[i].len == strlen(key) && memcmp(r->keys[i].p, key, r->keys[i].len) == 0)
            return &r->vals[i];
    return NULL;
}

static int str_prop(const tel_record *r, const char *key, const char *want)
{
    const tel_val *v = prop(r, key);
    return v && v->type == TEL_T_STR && v->v.s.len == strlen(want) && memcmp(v->v.s.p, want, v->v.s.len) == 0;
}

static tel *open_app(void)
{
    tel *h = NULL;
    tel_open(&h, tel_options_new("tprom"));
    return h;
}

static void test_library(void)
{
    CHECK_GROUP("library");
    seen s;
    fresh();
    tel *h = open_app();
    CHECK("handle opens", h != NULL);
    const char *const pairs[] = { "region", "eu-1", "tier", "gold" };
    CHECK_EQ_INT("tel_emit_metric", tel_emit_metric(h, "jobs_running", 3.5, pairs, 2), TEL_OK);
    CHECK_EQ_INT("one event queued", queued(&s), 1);
    CHECK("named metric", s.r.name.len == 6 && memcmp(s.r.name.p, "metric", 6) == 0);
    CHECK("name property", str_prop(&s.r, "name", "jobs_running"));
    CHECK("value is a float", prop(&s.r, "value") && prop(&s.r, "value")->type == TEL_T_FLOAT &&
                                  prop(&s.r, "value")->v.f == 3.5);
    CHECK("no kind from tel_emit_metric", prop(&s.r, "kind") == NULL);
    CHECK("labels as label.<name>", str_prop(&s.r, "label.region", "eu-1") && str_prop(&s.r, "label.tier", "gold"));
    CHECK_EQ_INT("no labels", tel_emit_metric(h, "up", 1, NULL, 0), TEL_OK);

    CHECK_EQ_INT("NaN refused", tel_emit_metric(h, "x", NAN, NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("infinity refused", tel_emit_metric(h, "x", INFINITY, NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("bad metric name", tel_emit_metric(h, "a-b", 1, NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL metric name", tel_emit_metric(h, NULL, 1, NULL, 0), TEL_ERR_INVALID);
    const char *const dup[] = { "a", "1", "a", SECRET };
    CHECK_EQ_INT("duplicate label", tel_emit_metric(h, "x", 1, dup, 2), TEL_ERR_INVALID);
    CHECK("error holds no value", !strstr(tel_last_error(), SECRET));
    const char *const reserved[] = { "__a", "1" };
    CHECK_EQ_INT("reserved label", tel_emit_metric(h, "x", 1, reserved, 1), TEL_ERR_INVALID);
    const char *const nullval[] = { "a", NULL };
    CHECK_EQ_INT("NULL label value", tel_emit_metric(h, "x", 1, nullval, 1), TEL_ERR_INVALID);
    CHECK_EQ_INT("labels but no array", tel_emit_metric(h, "x", 1, NULL, 1), TEL_ERR_INVALID);
    const char *many[60];
    char names[30][8];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof names[i], "l%d", i);
        many[2 * i] = names[i];
        many[2 * i + 1] = "v";
    }
    CHECK_EQ_INT("29 labels fit an event", tel_emit_metric(h, "x", 1, many, 29), TEL_OK);
    CHECK_EQ_INT("30 labels do not", tel_emit_metric(h, "x", 1, many, 30), TEL_ERR_LIMIT);
    const char *const badutf[] = { "a", "\xff" };
    CHECK_EQ_INT("invalid UTF-8 label value", tel_emit_metric(h, "x", 1, badutf, 1), TEL_ERR_INVALID);
    const char *const ctl[] = { "a", "ok", "b", "x\x01" SECRET };
    CHECK_EQ_INT("a control byte in a label value is refused", tel_emit_metric(h, "x", 1, ctl, 2), TEL_ERR_INVALID);
    CHECK("naming the label, not the value", strstr(tel_last_error(), "label 'b'") && !strstr(tel_last_error(), SECRET));
    const char *const tab[] = { "a", "x\ty" };
    CHECK_EQ_INT("a tab in a label value is refused", tel_emit_metric(h, "x", 1, tab, 1), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL handle", tel_emit_metric(NULL, "x", 1, NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("nothing bad was queued", queued(&s), 3);

    CHECK_GROUP("exposition");
    const char *text = "# TYPE reqs counter\nreqs{code=\"200\"} 10\nreqs{code=\"500\"} 2 1700000000000\n"
                       "# TYPE temp gauge\ntemp 21.5\n";
    CHECK_EQ_INT("a whole exposition", tel_emit_prometheus(h, text, strlen(text)), TEL_OK);
    CHECK_EQ_INT("three samples added", queued(&s), 6);
    CHECK("the last with its kind", str_prop(&s.r, "kind", "gauge") && str_prop(&s.r, "name", "temp"));
    CHECK("the timestamp is not a property", prop(&s.r, "ts") == NULL);

    const char *bad = "ok_one 1\nok_two{a=\"b\"} 2\nbroken{a=\"" SECRET "} 3\n";
    CHECK_EQ_INT("a bad third line", tel_emit_prometheus(h, bad, strlen(bad)), TEL_ERR_INVALID);
    CHECK("the error names line 3", strncmp(tel_last_error(), "line 3: ", 8) == 0);
    CHECK("and not the value", !strstr(tel_last_error(), SECRET));
    CHECK_EQ_INT("nothing of it was queued", queued(&s), 6);

    /* A sample over the 4 KiB record: refused as a limit, by line. */
    char big[8000];
    size_t at = (size_t)snprintf(big, sizeof big, "fine 1\nhuge{");
    for (int i = 0; i < 5; i++)
        at += (size_t)snprintf(big + at, sizeof big - at, "l%d=\"%01000d\",", i, 0);
    snprintf(big + at, sizeof big - at, "} 1\n");
    CHECK_EQ_INT("a sample too large for an event", tel_emit_prometheus(h, big, strlen(big)), TEL_ERR_LIMIT);
    CHECK("named by its line", strncmp(tel_last_error(), "line 2: ", 8) == 0);
    CHECK_EQ_INT("still nothing queued", queued(&s), 6);

    /* Inside a caller's batch: a failure leaves the batch as it was. */
    CHECK_EQ_INT("batch opens", tel_batch_begin(h), TEL_OK);
    CHECK_EQ_INT("an event in the batch", tel_emit_metric(h, "before", 1, NULL, 0), TEL_OK);
    CHECK_EQ_INT("bad text in the batch", tel_emit_prometheus(h, bad, strlen(bad)), TEL_ERR_INVALID);
    CHECK_EQ_INT("good text in the batch", tel_emit_prometheus(h, "after 2\n", 8), TEL_OK);
    CHECK_EQ_INT("batch commits", tel_batch_commit(h), TEL_OK);
    CHECK_EQ_INT("the batch held exactly its two good events", queued(&s), 8);
    CHECK("the last one is 'after'", str_prop(&s.r, "name", "after"));

    CHECK_EQ_INT("empty text", tel_emit_prometheus(h, "", 0), TEL_OK);
    CHECK_EQ_INT("comments only", tel_emit_prometheus(h, "# x\n", 4), TEL_OK);
    CHECK_EQ_INT("NULL text with a length", tel_emit_prometheus(h, NULL, 3), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL handle", tel_emit_prometheus(NULL, "a 1", 3), TEL_ERR_INVALID);
    CHECK_EQ_INT("text not NUL-terminated", tel_emit_prometheus(h, "nt 1\nGARBAGE", 5), TEL_OK);
    CHECK_EQ_INT("one more", queued(&s), 9);
    const char *const nl[] = { "a", "x\ny" };
    CHECK_EQ_INT("a newline in a label value (the format escapes it) is kept", tel_emit_metric(h, "x", 1, nl, 1),
                 TEL_OK);
    tel_close(h);

    CHECK_GROUP("disabled");
    fresh();
    setenv("TPROM_TELEMETRY_ENABLED", "false", 1);
    h = open_app();
    CHECK_EQ_INT("valid text when disabled", tel_emit_prometheus(h, text, strlen(text)), TEL_DISABLED);
    CHECK_EQ_INT("malformed text is still refused", tel_emit_prometheus(h, bad, strlen(bad)), TEL_ERR_INVALID);
    CHECK_EQ_INT("tel_emit_metric when disabled", tel_emit_metric(h, "x", 1, NULL, 0), TEL_DISABLED);
    CHECK_EQ_INT("nothing stored", queued(&s), 0);
    tel_close(h);
    unsetenv("TPROM_TELEMETRY_ENABLED");
}

int main(void)
{
    if (fx_setup("prom") != 0)
        return 1;
    test_valid();
    test_errors();
    test_limits();
    test_hostile();
    test_names_and_escape();
    test_library();
    fx_cleanup();
    return check_exit();
}
