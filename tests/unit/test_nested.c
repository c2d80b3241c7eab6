/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_nested.c - structured property values: the flat form of
 * tel.h (TEL_ARRAY / TEL_MAP and their children), its checks and limits,
 * the record codec and the JSON view, the schema version of batches, the
 * JSON reader behind `tel emit KEY:=JSON`, and an emit through a handle.
 *
 *   test_nested                  run the checks
 *   test_nested --corpus DIR     also write fuzz seeds to DIR/record
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "jsonin.h"

static const tel_ctx CTX = { .app = "demo", .os = "linux" };
static const uint8_t ID[16] = { 1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16 };

static int encode(const tel_prop *p, size_t n, uint8_t *buf, size_t cap, size_t *len)
{
    tel_event_in ev;
    memset(&ev, 0, sizeof ev);
    memcpy(ev.id, ID, 16);
    memcpy(ev.exec, ID, 16);
    ev.ts_ms = 1790000000123ull;
    ev.name = "ev";
    ev.props = p;
    ev.nprops = n;
    ev.ctx = &CTX;
    *len = 0;
    return tel__record_encode(&ev, buf, cap, len);
}

/* The props of a decoded record as JSON: {"k":v,...}. */
static char *props_json(const uint8_t *buf, size_t len)
{
    static char out[32768];
    tel_record r;
    tel_buf b = TEL_BUF_INIT;
    out[0] = '\0';
    if (tel__record_decode(&r, buf, len) != TEL_OK)
        return out;
    int bad = tel__buf_puts(&b, "{");
    for (size_t i = 0; i < r.nprops; i++) {
        bad |= tel__buf_printf(&b, "%s\"%.*s\":", i ? "," : "", (int)r.keys[i].len, r.keys[i].p);
        bad |= tel__value_json(&r.vals[i], &b);
    }
    bad |= tel__buf_puts(&b, "}");
    if (!bad)
        snprintf(out, sizeof out, "%.*s", (int)b.len, (const char *)b.p);
    tel__buf_free(&b);
    return out;
}

static const tel_prop ASTRO[] = {
    TEL_STR("cliCommand", "dev"),
    TEL_MAP("config", 4),
      TEL_ARRAY("markdownPlugins", 0),
      TEL_STR("adapter", "@astrojs/vercel"),
      TEL_ARRAY("integrations", 2),
        TEL_STR(NULL, "@astrojs/mdx"),
        TEL_STR(NULL, "@astrojs/rss"),
      TEL_MAP("markdown", 1),
        TEL_STR("syntaxHighlight", "shiki"),
    TEL_INT("n", 3),
};
#define ASTRO_N (sizeof ASTRO / sizeof ASTRO[0])
#define ASTRO_JSON                                                                              \
    "{\"cliCommand\":\"dev\",\"config\":{\"markdownPlugins\":[],\"adapter\":\"@astrojs/vercel\"," \
    "\"integrations\":[\"@astrojs/mdx\",\"@astrojs/rss\"],\"markdown\":{\"syntaxHighlight\":"  \
    "\"shiki\"}},\"n\":3}"

static void test_round_trip(void)
{
    CHECK_GROUP("round trip");
    uint8_t buf[TEL_MAX_EVENT];
    size_t len;
    CHECK_EQ_INT("astro's config encodes", encode(ASTRO, ASTRO_N, buf, sizeof buf, &len), TEL_OK);
    CHECK("and reads back as the same JSON", strcmp(props_json(buf, len), ASTRO_JSON) == 0);
    tel_record r;
    tel__record_decode(&r, buf, len);
    CHECK("three top-level properties", r.nprops == 3);
    CHECK("config is a map of 4", r.vals[1].type == TEL_T_MAP && r.vals[1].v.c.n == 4);
    CHECK_EQ_INT("it needs schema version 2", r.version, 2);

    tel_prop flat[] = { TEL_INT("n", 1) };
    encode(flat, 1, buf, sizeof buf, &len);
    tel__record_decode(&r, buf, len);
    CHECK_EQ_INT("a record of scalars needs version 1", r.version, 1);

    tel_prop every[] = { TEL_ARRAY("a", 6), TEL_NIL(NULL), TEL_BOOL(NULL, 1), TEL_INT(NULL, -5),
                         TEL_FLOAT(NULL, 0.5), TEL_STR(NULL, "s\"q"), TEL_MAP(NULL, 0) };
    encode(every, 7, buf, sizeof buf, &len);
    CHECK("every scalar type inside an array", strcmp(props_json(buf, len),
                                                      "{\"a\":[null,true,-5,0.5,\"s\\\"q\",{}]}") == 0);
}

/* werf's commandOptions: 120 maps of {name, asCli, asEnv, count}. */
static size_t werf_options(tel_prop *p, char names[][32], int nopts)
{
    size_t n = 0;
    p[n++] = (tel_prop)TEL_STR("command", "werf converge");
    p[n++] = (tel_prop)TEL_ARRAY("commandOptions", nopts);
    for (int i = 0; i < nopts; i++) {
        snprintf(names[i], 32, "option-number-%03d", i);
        p[n++] = (tel_prop)TEL_MAP(NULL, 4);
        p[n++] = (tel_prop)TEL_STR("name", names[i]);
        p[n++] = (tel_prop)TEL_BOOL("asCli", i % 3 == 0);
        p[n++] = (tel_prop)TEL_BOOL("asEnv", i % 5 == 0);
        p[n++] = (tel_prop)TEL_INT("count", i % 4);
    }
    return n;
}

static void test_limits(void)
{
    CHECK_GROUP("limits");
    static tel_prop p[2 + 5 * 256];
    static char names[256][32];
    uint8_t buf[TEL_MAX_EVENT];
    size_t len;
    size_t n = werf_options(p, names, 120);
    CHECK_EQ_INT("werf's 120 options are accepted", encode(p, n, buf, sizeof buf, &len), TEL_OK);
    CHECK("and take more than 4 KiB", len > TEL_MAX_FLAT_EVENT);
    printf("# werf's 120 options: %zu items, %zu bytes\n", n, len);
    CHECK_EQ_INT("a small buffer tells the size it needs",
                 encode(p, n, buf, TEL_MAX_FLAT_EVENT, &len) == TEL_ERR_LIMIT && len > TEL_MAX_FLAT_EVENT, 1);

    n = werf_options(p, names, 256);
    CHECK_EQ_INT("256 maps of 5 items are over 1024 items", tel__event_check("e", p, n), TEL_ERR_LIMIT);

    tel_prop arr[TEL_MAX_ARRAY + 2];
    arr[0] = (tel_prop)TEL_ARRAY("a", TEL_MAX_ARRAY);
    for (int i = 1; i <= TEL_MAX_ARRAY + 1; i++)
        arr[i] = (tel_prop)TEL_INT(NULL, i);
    CHECK_EQ_INT("an array of 256 is accepted", tel__event_check("e", arr, TEL_MAX_ARRAY + 1), TEL_OK);
    arr[0].v.i = TEL_MAX_ARRAY + 1;
    CHECK_EQ_INT("an array of 257 is refused", tel__event_check("e", arr, TEL_MAX_ARRAY + 2), TEL_ERR_LIMIT);

    tel_prop deep[] = { TEL_ARRAY("a", 1), TEL_ARRAY(NULL, 1), TEL_ARRAY(NULL, 1), TEL_ARRAY(NULL, 1),
                        TEL_ARRAY(NULL, 1), TEL_INT(NULL, 1) };
    CHECK_EQ_INT("five levels are refused", tel__event_check("e", deep, 6), TEL_ERR_LIMIT);
    deep[1].key = "a";
    CHECK_EQ_INT("four levels are accepted", tel__event_check("e", deep + 1, 5), TEL_OK);

    tel_prop bad[] = { TEL_MAP("m", 2), TEL_INT("k", 1), TEL_INT(NULL, 2) };
    CHECK_EQ_INT("a map entry without a key is refused", tel__event_check("e", bad, 3), TEL_ERR_INVALID);
    bad[2].key = "k";
    CHECK_EQ_INT("a key twice in one map is refused", tel__event_check("e", bad, 3), TEL_ERR_INVALID);
    bad[2].key = "j";
    CHECK_EQ_INT("two keys in one map are fine", tel__event_check("e", bad, 3), TEL_OK);
    tel_prop keyed[] = { TEL_ARRAY("a", 1), TEL_INT("k", 1) };
    CHECK_EQ_INT("an array element with a key is refused", tel__event_check("e", keyed, 2), TEL_ERR_INVALID);
    tel_prop shortp[] = { TEL_ARRAY("a", 3), TEL_INT(NULL, 1) };
    CHECK_EQ_INT("a count running past the array is refused", tel__event_check("e", shortp, 2), TEL_ERR_INVALID);
    CHECK("and says so", strstr(tel_last_error(), "announces 3 items") != NULL);
    shortp[0].v.i = -1;
    CHECK_EQ_INT("a negative count is refused", tel__event_check("e", shortp, 2), TEL_ERR_INVALID);
    tel_prop sib[] = { TEL_MAP("m", 1), TEL_MAP("x", 1), TEL_INT("k", 1), TEL_MAP("n", 0) };
    CHECK_EQ_INT("keys of nested maps do not clash with outer ones", tel__event_check("e", sib, 4), TEL_OK);
    tel_prop nan[] = { TEL_ARRAY("a", 1), TEL_FLOAT(NULL, 0.0 / 0.0) };
    CHECK_EQ_INT("NaN inside an array is refused", tel__event_check("e", nan, 2), TEL_ERR_INVALID);

    /* An array of 2 and then k1..k32: 33 top-level properties in 35
     * items, or 32 in the first 34. */
    tel_prop many[35];
    static char keys[33][8];
    many[0] = (tel_prop)TEL_ARRAY("k0", 2);
    many[1] = (tel_prop)TEL_INT(NULL, 1);
    many[2] = (tel_prop)TEL_INT(NULL, 2);
    for (int i = 1; i <= 32; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i + 2] = (tel_prop)TEL_INT(keys[i], i);
    }
    CHECK_EQ_INT("33 top-level properties are refused though the array holds more",
                 tel__event_check("e", many, 35), TEL_ERR_LIMIT);
    CHECK_EQ_INT("32 are accepted", tel__event_check("e", many, 34), TEL_OK);
}

/* A record whose "p" is the given MessagePack bytes. */
static int decode_with_props(const void *p, size_t plen, tel_record *r, uint8_t *buf)
{
    static const uint8_t head[] = { 0x84, 0xa1, 'i', 0xc4, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                    15, 16, 0xa1, 'n', 0xa2, 'e', 'v', 0xa1, 'p' };
    static const uint8_t tail[] = { 0xa1, 'c', 0x81, 0xa3, 'a', 'p', 'p', 0xa1, 'd' };
    /* 4 of the 7 required fields above; add t, x, a with a wider map. */
    static const uint8_t more[] = { 0xa1, 't', 0x01, 0xa1, 'x', 0xc4, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                    13, 14, 15, 16, 0xa1, 'a', 0xc0 };
    size_t n = 0;
    memcpy(buf, head, sizeof head);
    buf[0] = 0x87;
    n = sizeof head;
    memcpy(buf + n, p, plen);
    n += plen;
    memcpy(buf + n, more, sizeof more);
    n += sizeof more;
    memcpy(buf + n, tail, sizeof tail);
    n += sizeof tail;
    return tel__record_decode(r, buf, n);
}

static void test_decode(void)
{
    CHECK_GROUP("decode");
    tel_record r;
    uint8_t buf[64 * 1024];
    CHECK_EQ_INT("a hand-made record decodes", decode_with_props("\x81\xa1" "a\x92\x01\x80", 6, &r, buf), TEL_OK);
    CHECK("with an array of 2", r.nprops == 1 && r.vals[0].type == TEL_T_ARRAY && r.vals[0].v.c.n == 2);
    CHECK_EQ_INT("five levels are corrupt",
                 decode_with_props("\x81\xa1" "a\x91\x91\x91\x91\x91\x01", 9, &r, buf), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("four levels are fine", decode_with_props("\x81\xa1" "a\x91\x91\x91\x91\x01", 8, &r, buf),
                 TEL_OK);
    CHECK_EQ_INT("a duplicate key in a nested map is corrupt",
                 decode_with_props("\x81\xa1" "a\x82\xa1k\x01\xa1k\x02", 10, &r, buf), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("an empty key in a nested map is corrupt",
                 decode_with_props("\x81\xa1" "a\x81\xa0\x01", 6, &r, buf), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("a binary inside an array is corrupt",
                 decode_with_props("\x81\xa1" "a\x91\xc4\x01x", 7, &r, buf), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("a non-string key in a nested map is corrupt",
                 decode_with_props("\x81\xa1" "a\x81\x01\x01", 6, &r, buf), TEL_ERR_CORRUPT);
    uint8_t big[3 + 3 + 257];
    memcpy(big, "\x81\xa1" "a\xdc\x01\x01", 6);
    memset(big + 6, 0x01, 257);
    CHECK_EQ_INT("an array of 257 is corrupt", decode_with_props(big, sizeof big, &r, buf), TEL_ERR_CORRUPT);
    big[4] = 0x01;
    big[5] = 0x00;
    CHECK_EQ_INT("an array of 256 is fine", decode_with_props(big, sizeof big - 1, &r, buf), TEL_OK);

    /* 5 arrays of 250 ones: 1255 values, over 1024 items. */
    uint8_t wide[4 + 5 * (3 + 250)];
    size_t w = 0;
    memcpy(wide, "\x81\xa1" "a", 3);
    w = 3;
    wide[w++] = 0x95;
    for (int a = 0; a < 5; a++) {
        wide[w++] = 0xdc;
        wide[w++] = 0;
        wide[w++] = 250;
        memset(wide + w, 0x01, 250);
        w += 250;
    }
    CHECK_EQ_INT("more than 1024 values are corrupt", decode_with_props(wide, w, &r, buf), TEL_ERR_CORRUPT);

    /* A record of scalars over 4096 bytes breaks the old limit. */
    uint8_t flat[3 + 4 * (2 + 3 + 1024)];
    w = 0;
    flat[w++] = 0x84;
    for (int k = 0; k < 4; k++) {
        flat[w++] = 0xa1;
        flat[w++] = (uint8_t)('a' + k);
        flat[w++] = 0xda;
        flat[w++] = 0x04;
        flat[w++] = 0x00;
        memset(flat + w, 'x', 1024);
        w += 1024;
    }
    CHECK_EQ_INT("a record of scalars over 4 KiB is corrupt", decode_with_props(flat, w, &r, buf),
                 TEL_ERR_CORRUPT);
}

static void test_batch(void)
{
    CHECK_GROUP("batch version");
    uint8_t rec[TEL_MAX_EVENT];
    size_t len;
    encode(ASTRO, ASTRO_N, rec, sizeof rec, &len);
    for (int v = 1; v <= 2; v++) {
        tel_buf b = TEL_BUF_INIT;
        tel_batch_head h = { .version = v, .nevents = 1 };
        memcpy(h.id, ID, 16);
        tel_batch_head got;
        int rc = tel__batch_begin(&b, &h) == TEL_OK && tel__buf_append(&b, rec, len) == 0
                     ? tel__batch_decode(b.p, b.len, &got, NULL, NULL)
                     : TEL_ERR_NOMEM;
        if (v == 1) {
            CHECK_EQ_INT("a structured record in a version 1 batch is refused", rc, TEL_ERR_CORRUPT);
            CHECK("the reason names the version", strstr(tel_last_error(), "version 1") != NULL);
        } else {
            CHECK_EQ_INT("a version 2 batch carries it", rc, TEL_OK);
            CHECK_EQ_INT("and says version 2", got.version, 2);
        }
        tel__buf_free(&b);
    }
}

/* Parses text as the value of key "k"; returns the code, the props JSON
 * of the event in *json. */
static int parse(const char *text, const char **json)
{
    static char copy[4096];
    static tel_prop p[TEL_MAX_ITEMS];
    static uint8_t buf[TEL_MAX_EVENT];
    size_t n = 0, len;
    snprintf(copy, sizeof copy, "%s", text);
    *json = "";
    int rc = tel__json_props(copy, "k", p, TEL_MAX_ITEMS, &n);
    if (rc != TEL_OK)
        return rc;
    rc = encode(p, n, buf, sizeof buf, &len);
    if (rc == TEL_OK)
        *json = props_json(buf, len);
    return rc;
}

static void test_json_reader(void)
{
    CHECK_GROUP("JSON reader");
    const char *j;
    static const char *const same[][2] = {
        { "5", "{\"k\":5}" },
        { "-0", "{\"k\":0}" },
        { "1.10", "{\"k\":1.1}" },
        { "1e3", "{\"k\":1000}" },
        { "9223372036854775807", "{\"k\":9223372036854775807}" },
        { "9223372036854775808", "{\"k\":9.223372036854776e+18}" },
        { " true ", "{\"k\":true}" },
        { "false", "{\"k\":false}" },
        { "null", "{\"k\":null}" },
        { "\"a\\\"b\\\\c\\/d\\n\"", "{\"k\":\"a\\\"b\\\\c/d\\u000a\"}" },
        { "\"\\u00e9\\ud83d\\ude00\"", "{\"k\":\"\xc3\xa9\xf0\x9f\x98\x80\"}" },
        { "[ ]", "{\"k\":[]}" },
        { "{ \"a\" : [1, {\"b\": \"c\"}], \"d\": {} }", "{\"k\":{\"a\":[1,{\"b\":\"c\"}],\"d\":{}}}" },
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s reads as %s", same[i][0], same[i][1]);
        CHECK(name, parse(same[i][0], &j) == TEL_OK && strcmp(j, same[i][1]) == 0);
    }
    static const char *const bad[] = {
        "", "[1,]", "{\"a\"}", "{\"a\":1,}", "01", "1.", ".5", "+1", "1e", "NaN", "Infinity", "tru",
        "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\u0000\"", "\"a\tb\"", "[1] 2", "{1:2}",
        "1e400", "'a'",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "'%s' is refused", bad[i]);
        CHECK(name, parse(bad[i], &j) == TEL_ERR_INVALID);
    }
    CHECK_EQ_INT("five levels stop the parse", parse("[[[[[1]]]]]", &j), TEL_ERR_LIMIT);
    CHECK_EQ_INT("invalid UTF-8 is refused by the event check", parse("\"\xff\"", &j), TEL_ERR_INVALID);
    tel_prop one[1];
    size_t n = 0;
    char two[] = "[1,2]";
    CHECK_EQ_INT("more items than room is a limit", tel__json_props(two, "k", one, 1, &n), TEL_ERR_LIMIT);
    CHECK_EQ_INT("and nothing is taken", n, 0);
}

static void test_emit(void)
{
    CHECK_GROUP("emit");
    char home[] = "/tmp/tel-nested.XXXXXX";
    if (!mkdtemp(home)) {
        CHECK_SKIP("no temporary directory");
        return;
    }
    setenv("HOME", home, 1);
    unsetenv("XDG_STATE_HOME");
    unsetenv("DO_NOT_TRACK");
    unsetenv("TNEST_TELEMETRY_ENABLED");
    tel *h;
    CHECK_EQ_INT("open", tel_open(&h, tel_options_new("tnest")), TEL_OK);
    static tel_prop p[TEL_MAX_ITEMS];
    static char names[120][32];
    size_t n = werf_options(p, names, 120);
    CHECK_EQ_INT("a handle records werf's options", tel_emit_event(h, "CommandStarted", p, n), TEL_OK);
    CHECK_EQ_INT("and astro's config", tel_emit_event(h, "dev", ASTRO, ASTRO_N), TEL_OK);
    tel_batch_begin(h);
    CHECK_EQ_INT("inside a batch too", tel_emit_event(h, "dev", ASTRO, ASTRO_N), TEL_OK);
    CHECK_EQ_INT("which commits", tel_batch_commit(h), TEL_OK);
    tel_close(h);
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    tel_queue_stats s = { 0 };
    tel__state_dir("tnest", dir, sizeof dir);
    if (tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) == TEL_OK) {
        tel__queue_stats(q, &s);
        tel__queue_close(q);
    }
    CHECK_EQ_INT("three events are queued", s.count, 3);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", home);
}

static void write_corpus(const char *dir)
{
    static tel_prop p[TEL_MAX_ITEMS];
    static char names[120][32];
    uint8_t buf[TEL_MAX_EVENT];
    size_t len;
    char path[1024];
    snprintf(path, sizeof path, "%s/record", dir);
    mkdir(path, 0755);
    struct { const char *name; const tel_prop *p; size_t n; } seeds[] = {
        { "nested-astro", ASTRO, ASTRO_N },
        { "nested-werf", p, werf_options(p, names, 120) },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        if (encode(seeds[i].p, seeds[i].n, buf, sizeof buf, &len) != TEL_OK)
            continue;
        snprintf(path, sizeof path, "%s/record/%s", dir, seeds[i].name);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(buf, 1, len, f);
            fclose(f);
        }
    }
}

int main(int argc, char **argv)
{
    test_round_trip();
    test_limits();
    test_decode();
    test_batch();
    test_json_reader();
    test_emit();
    if (argc == 3 && strcmp(argv[1], "--corpus") == 0)
        write_corpus(argv[2]);
    return check_exit();
}
