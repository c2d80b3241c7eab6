/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_format.c - the record and batch format: checks, limits,
 * round trips, the exact bytes of SPEC.md's example, hostile input, JSON.
 *
 *   test_format                  run the checks
 *   test_format --corpus DIR     also write fuzz seeds to DIR/record and DIR/batch
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "internal.h"
#include "mp.h"
#include "text.h"

/* ------------------------------------------------------------- helpers */

static const uint8_t ID[16] = { 0x6f, 0x1c, 0x2a, 0x3b, 0x4c, 0x5d, 0x4e, 0x6f,
                                0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7 };
static const uint8_t EXEC[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x77,
                                  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t ANON[16] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x46, 0xa7,
                                  0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
static const uint8_t ANON2[16] = { 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0x46, 0xb7,
                                   0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf };

static const tel_ctx CTX_MIN = { .app = "demo" };
static const tel_ctx CTX_FULL = { .app = "my-cli", .app_version = "1.2.3", .lib_version = "0.1.0",
                                  .os = "linux", .arch = "x86_64", .cpus = 8, .ci = 1,
                                  .ci_vendor = "github_actions",
                                  .project = "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea" };

static tel_event_in event(const char *name, const tel_prop *props, size_t n, const tel_ctx *ctx,
                          const uint8_t *anon)
{
    tel_event_in ev;
    memset(&ev, 0, sizeof ev);
    memcpy(ev.id, ID, 16);
    memcpy(ev.exec, EXEC, 16);
    ev.ts_ms = 1790000000123ull;
    ev.name = name;
    ev.props = props;
    ev.nprops = n;
    ev.anon = anon;
    ev.ctx = ctx;
    return ev;
}

/* Encodes with the given props and a minimal context; returns the code. */
static int encode_props(const char *name, const tel_prop *props, size_t n, uint8_t *buf, size_t *len)
{
    tel_event_in ev = event(name, props, n, &CTX_MIN, NULL);
    return tel__record_encode(&ev, buf, TEL_MAX_EVENT, len);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static int tstr_eq(tel_str s, const char *want)
{
    if (!want)
        return s.p == NULL;
    return s.p && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = 0;
    for (const char *p = hex; *p;) {
        if (*p == ' ' || *p == '\n') {
            p++;
            continue;
        }
        unsigned v;
        sscanf(p, "%2x", &v);
        out[n++] = (uint8_t)v;
        p += 2;
    }
    *len = n;
}

/* Deterministic xorshift: the fuzz loop must fail the same way twice. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A small strict JSON reader, to prove the renderer's output parses:
 * RFC 8259 grammar, no raw control characters, UTF-8 checked apart. */
static const char *js_value(const char *p, const char *end, int depth);

static const char *js_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *js_string(const char *p, const char *end)
{
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= end)
                return NULL;
            if (*p == 'u') {
                for (int i = 0; i < 4; i++)
                    if (++p >= end || !strchr("0123456789abcdefABCDEF", *p) || !*p)
                        return NULL;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *js_number(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return p > s ? p : NULL;
}

static const char *js_value(const char *p, const char *end, int depth)
{
    p = js_ws(p, end);
    if (p >= end || depth > 16)
        return NULL;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = js_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = js_string(js_ws(p, end), end)))
                    return NULL;
                p = js_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            if (!(p = js_value(p, end, depth + 1)))
                return NULL;
            p = js_ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == close)
                return p + 1;
            return NULL;
        }
    }
    if (*p == '"')
        return js_string(p, end);
    if (end - p >= 4 && (!memcmp(p, "true", 4) || !memcmp(p, "null", 4)))
        return p + 4;
    if (end - p >= 5 && !memcmp(p, "false", 5))
        return p + 5;
    return js_number(p, end);
}

static int json_valid(const uint8_t *s, size_t n)
{
    const char *end = (const char *)s + n;
    const char *p = js_value((const char *)s, end, 0);
    return p && js_ws(p, end) == end && tel__utf8_valid((const char *)s, n) && s[0] == '{';
}

/* Builds records field by field with msgpack-c, to make the malformed
 * ones the encoder would never write. */
static msgpack_sbuffer sb;
static msgpack_packer pk;

static void b_start(uint32_t nkeys)
{
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, nkeys);
}

static void b_str(const char *s)
{
    msgpack_pack_str_with_body(&pk, s, strlen(s));
}

/* Writes the standard, valid field named by letter k. */
static void b_field(char k)
{
    char key[2] = { k, 0 };
    b_str(key);
    switch (k) {
    case 'i': msgpack_pack_bin_with_body(&pk, ID, 16); break;
    case 't': msgpack_pack_uint64(&pk, 1790000000000ull); break;
    case 'n': b_str("ev"); break;
    case 'p': msgpack_pack_map(&pk, 0); break;
    case 'x': msgpack_pack_bin_with_body(&pk, EXEC, 16); break;
    case 'a': msgpack_pack_nil(&pk); break;
    case 'c': msgpack_pack_map(&pk, 1); b_str("app"); b_str("demo"); break;
    }
}

/* A record holding the standard fields listed in `keys`, in that order. */
static int decode_keys(const char *keys)
{
    tel_record r;
    b_start((uint32_t)strlen(keys));
    for (const char *k = keys; *k; k++)
        b_field(*k);
    return tel__record_decode(&r, sb.data, sb.size);
}

/* A record with every standard field but `k`, and `k` written by the
 * caller-supplied packer calls that follow (finish with b_decode()). */
static void b_all_but(char k)
{
    b_start(7);
    for (const char *p = "itnpxac"; *p; p++)
        if (*p != k)
            b_field(*p);
    char key[2] = { k, 0 };
    b_str(key);
}

static int b_decode(tel_record *r)
{
    return tel__record_decode(r, sb.data, sb.size);
}

/* A typical record: what command.exited looks like in a real host. */
static const tel_prop TYPICAL[] = {
    TEL_STR("command", "deploy"),
    TEL_INT("exit_code", 0),
    TEL_INT("duration_ms", 1234),
    TEL_BOOL("interactive", 1),
};

static size_t typical_record(uint8_t *buf, const uint8_t *anon)
{
    size_t len = 0;
    tel_event_in ev = event("command.exited", TYPICAL, 4, &CTX_FULL, anon);
    SETUP(tel__record_encode(&ev, buf, TEL_MAX_EVENT, &len));
    return len;
}

static void write_file(const char *dir, const char *sub, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

/* --------------------------------------------------------------- tests */

static void test_uuid(void)
{
    CHECK_GROUP("uuid");
    char text[37];
    uint8_t back[16], keep[16];
    tel__uuid_format(ID, text);
    CHECK("format", strcmp(text, "6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6f7") == 0);
    CHECK("parse round trip", tel__uuid_parse(text, 36, back) == 0 && memcmp(back, ID, 16) == 0);
    CHECK("parse upper case", tel__uuid_parse("6F1C2A3B-4C5D-4E6F-8091-A2B3C4D5E6F7", 36, back) == 0 &&
                                  memcmp(back, ID, 16) == 0);
    memcpy(keep, back, 16);
    CHECK("short refused", tel__uuid_parse(text, 35, back) == -1);
    CHECK("long refused", tel__uuid_parse("6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6f70", 37, back) == -1);
    CHECK("dash misplaced refused", tel__uuid_parse("6f1c2a3b4-c5d-4e6f-8091-a2b3c4d5e6f7", 36, back) == -1);
    CHECK("non-hex refused", tel__uuid_parse("6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6fg", 36, back) == -1);
    CHECK("NUL inside refused", tel__uuid_parse("6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6\0" "7", 36, back) == -1);
    CHECK("NULL refused", tel__uuid_parse(NULL, 36, back) == -1);
    CHECK("output untouched on failure", memcmp(back, keep, 16) == 0);
}

static void test_names(void)
{
    CHECK_GROUP("event names");
    char *n64 = repeat('a', 64), *n65 = repeat('a', 65);
    CHECK_EQ_INT("one byte", tel__event_check("a", NULL, 0), TEL_OK);
    CHECK_EQ_INT("every allowed character", tel__event_check("AZaz09_.:-", NULL, 0), TEL_OK);
    CHECK_EQ_INT("64 bytes", tel__event_check(n64, NULL, 0), TEL_OK);
    CHECK_EQ_INT("65 bytes is over the limit", tel__event_check(n65, NULL, 0), TEL_ERR_LIMIT);
    CHECK_EQ_INT("empty", tel__event_check("", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL", tel__event_check(NULL, NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("space", tel__event_check("a b", NULL, 0), TEL_ERR_INVALID);
    CHECK("space error names the place", strstr(tel_last_error(), "space at byte 1") != NULL);
    CHECK_EQ_INT("slash", tel__event_check("a/b", NULL, 0), TEL_ERR_INVALID);
    CHECK("slash error names the character", strstr(tel_last_error(), "'/'") != NULL);
    CHECK_EQ_INT("unicode", tel__event_check("caf\xc3\xa9", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("newline", tel__event_check("a\n", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("name_valid with length", tel__event_name_valid("ab/", 2), TEL_OK);
    CHECK_EQ_INT("name_valid counts to len", tel__event_name_valid("ab/", 3), TEL_ERR_INVALID);
    free(n64);
    free(n65);
}

static void test_limits(void)
{
    CHECK_GROUP("limits");
    tel_prop props[TEL_MAX_PROPS + 1];
    char keys[TEL_MAX_PROPS + 1][8];
    for (int i = 0; i <= TEL_MAX_PROPS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        props[i] = (tel_prop)TEL_INT(keys[i], i);
    }
    CHECK_EQ_INT("32 props", tel__event_check("e", props, 32), TEL_OK);
    CHECK_EQ_INT("33 props", tel__event_check("e", props, 33), TEL_ERR_LIMIT);
    CHECK_EQ_INT("props NULL with a count", tel__event_check("e", NULL, 1), TEL_ERR_INVALID);

    char *k64 = repeat('k', 64), *k65 = repeat('k', 65);
    tel_prop p1[1] = { TEL_INT(k64, 1) };
    CHECK_EQ_INT("key 64 bytes", tel__event_check("e", p1, 1), TEL_OK);
    p1[0].key = k65;
    CHECK_EQ_INT("key 65 bytes", tel__event_check("e", p1, 1), TEL_ERR_LIMIT);
    p1[0].key = "";
    CHECK_EQ_INT("empty key", tel__event_check("e", p1, 1), TEL_ERR_INVALID);
    p1[0].key = NULL;
    CHECK_EQ_INT("NULL key", tel__event_check("e", p1, 1), TEL_ERR_INVALID);
    p1[0].key = "a key";
    CHECK_EQ_INT("key with a space", tel__event_check("e", p1, 1), TEL_ERR_INVALID);
    p1[0].key = "del\x7f";
    CHECK_EQ_INT("key with DEL", tel__event_check("e", p1, 1), TEL_ERR_INVALID);
    p1[0].key = "!~";
    CHECK_EQ_INT("key of the printable edges", tel__event_check("e", p1, 1), TEL_OK);
    tel_prop dup[2] = { TEL_INT("same", 1), TEL_STR("same", "x") };
    CHECK_EQ_INT("duplicate key", tel__event_check("e", dup, 2), TEL_ERR_INVALID);
    CHECK("duplicate error names the key", strstr(tel_last_error(), "'same'") != NULL);

    char *s1024 = repeat('s', 1024), *s1025 = repeat('s', 1025);
    memcpy(s1025, "SECRET", 6);
    tel_prop ps[1] = { TEL_STR("v", s1024) };
    CHECK_EQ_INT("string 1024 bytes", tel__event_check("e", ps, 1), TEL_OK);
    ps[0].v.s = s1025;
    CHECK_EQ_INT("string 1025 bytes", tel__event_check("e", ps, 1), TEL_ERR_LIMIT);
    CHECK("error names the key, not the value",
          strstr(tel_last_error(), "'v'") && !strstr(tel_last_error(), "SECRET"));
    ps[0].v.s = NULL;
    CHECK_EQ_INT("NULL string", tel__event_check("e", ps, 1), TEL_ERR_INVALID);
    ps[0].v.s = "bad \xff utf-8";
    CHECK_EQ_INT("invalid UTF-8 string", tel__event_check("e", ps, 1), TEL_ERR_INVALID);
    ps[0].v.s = "\xed\xa0\x80";
    CHECK_EQ_INT("surrogate in UTF-8 string", tel__event_check("e", ps, 1), TEL_ERR_INVALID);
    ps[0].v.s = "\xc0\xaf";
    CHECK_EQ_INT("overlong UTF-8 string", tel__event_check("e", ps, 1), TEL_ERR_INVALID);
    ps[0].v.s = "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x98\x80";
    CHECK_EQ_INT("valid multi-byte string", tel__event_check("e", ps, 1), TEL_OK);

    tel_prop pf[1] = { TEL_FLOAT("f", NAN) };
    CHECK_EQ_INT("NaN refused", tel__event_check("e", pf, 1), TEL_ERR_INVALID);
    pf[0].v.f = INFINITY;
    CHECK_EQ_INT("+inf refused", tel__event_check("e", pf, 1), TEL_ERR_INVALID);
    pf[0].v.f = -INFINITY;
    CHECK_EQ_INT("-inf refused", tel__event_check("e", pf, 1), TEL_ERR_INVALID);
    pf[0].v.f = DBL_MAX;
    CHECK_EQ_INT("DBL_MAX accepted", tel__event_check("e", pf, 1), TEL_OK);
    tel_prop pt[1] = { { "t", (tel_type)9, { 0 } } };
    CHECK_EQ_INT("unknown type refused", tel__event_check("e", pt, 1), TEL_ERR_INVALID);

    /* The 4 KiB limit on a record of scalars, found by measuring: three
     * maximal strings plus one whose length is tuned to land on it. */
    char *fill = repeat('f', 1024);
    tel_prop big[4] = { TEL_STR("a", s1024), TEL_STR("b", s1024), TEL_STR("c", s1024), TEL_STR("d", fill) };
    uint8_t buf[TEL_MAX_EVENT];
    size_t len = 0;
    fill[300] = '\0';
    int rc = encode_props("e", big, 4, buf, &len);
    size_t want = 300 + (TEL_MAX_FLAT_EVENT - len);
    memset(fill, 'f', 1024);
    fill[want] = '\0';
    CHECK_EQ_INT("event of exactly 4096 bytes", encode_props("e", big, 4, buf, &len), TEL_OK);
    CHECK_EQ_INT("its length", len, TEL_MAX_FLAT_EVENT);
    tel_record r;
    CHECK_EQ_INT("4096 bytes decode", tel__record_decode(&r, buf, len), TEL_OK);
    fill[want] = 'f';
    fill[want + 1] = '\0';
    CHECK_EQ_INT("event of 4097 bytes", encode_props("e", big, 4, buf, &len), TEL_ERR_LIMIT);
    CHECK("error tells the size", strstr(tel_last_error(), "4097") != NULL);
    (void)rc;

    tel_event_in ev = event("e", TYPICAL, 4, &CTX_MIN, NULL);
    CHECK_EQ_INT("buffer too small", tel__record_encode(&ev, buf, 20, &len), TEL_ERR_LIMIT);
    tel_ctx noapp = { .os = "linux" };
    ev.ctx = &noapp;
    CHECK_EQ_INT("context without app", tel__record_encode(&ev, buf, sizeof buf, &len), TEL_ERR_INVALID);
    tel_ctx badapp = { .app = "../x" };
    ev.ctx = &badapp;
    CHECK_EQ_INT("context with a bad app", tel__record_encode(&ev, buf, sizeof buf, &len), TEL_ERR_INVALID);
    tel_ctx badver = { .app = "x", .app_version = "\xff" };
    ev.ctx = &badver;
    CHECK_EQ_INT("context with non-UTF-8 version", tel__record_encode(&ev, buf, sizeof buf, &len),
                 TEL_ERR_INVALID);
    ev.ctx = NULL;
    CHECK_EQ_INT("no context", tel__record_encode(&ev, buf, sizeof buf, &len), TEL_ERR_INVALID);

    free(k64);
    free(k65);
    free(s1024);
    free(s1025);
    free(fill);
}

static void test_round_trip(void)
{
    CHECK_GROUP("round trip");
    static const int64_t ints[] = { 0, 1, -1, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129,
                                    -32768, -32769, 4294967295ll, 4294967296ll, INT32_MIN - 1ll,
                                    INT64_MAX, INT64_MIN };
    static const double floats[] = { 0.0, -0.0, 0.5, -1.25, 1e300, -1e-300, DBL_MAX, DBL_MIN, 0.1 };
    char *s1024 = repeat('x', 1024);
    tel_prop props[TEL_MAX_PROPS];
    char keys[TEL_MAX_PROPS][8];
    size_t n = 0;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(keys[n], 8, "i%zu", i);
        props[n] = (tel_prop)TEL_INT(keys[n], ints[i]);
        n++;
    }
    uint8_t buf[TEL_MAX_EVENT];
    size_t len;
    tel_record r;
    tel_event_in ev = event("ints", props, n, &CTX_MIN, NULL);
    int ok = tel__record_encode(&ev, buf, sizeof buf, &len) == TEL_OK &&
             tel__record_decode(&r, buf, len) == TEL_OK && r.nprops == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = r.vals[i].type == TEL_T_INT && r.vals[i].v.i == ints[i] && tstr_eq(r.keys[i], keys[i]);
    CHECK("every integer width", ok);

    n = 0;
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        snprintf(keys[n], 8, "f%zu", i);
        props[n] = (tel_prop)TEL_FLOAT(keys[n], floats[i]);
        n++;
    }
    ev = event("floats", props, n, &CTX_MIN, NULL);
    ok = tel__record_encode(&ev, buf, sizeof buf, &len) == TEL_OK && tel__record_decode(&r, buf, len) == TEL_OK &&
         r.nprops == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = r.vals[i].type == TEL_T_FLOAT && memcmp(&r.vals[i].v.f, &floats[i], sizeof(double)) == 0;
    CHECK("every float, bit for bit", ok);

    tel_prop mixed[] = { TEL_NIL("nil"), TEL_BOOL("yes", 7), TEL_BOOL("no", 0), TEL_STR("empty", ""),
                         TEL_STR("utf8", "h\xc3\xa9llo \xe2\x82\xac"), TEL_STR("long", s1024),
                         TEL_STR("ctrl", "a\tb\nc") };
    ev = event("ns:ev.name-1_x", mixed, 7, &CTX_FULL, ANON);
    CHECK_EQ_INT("mixed encode", tel__record_encode(&ev, buf, sizeof buf, &len), TEL_OK);
    CHECK_EQ_INT("mixed decode", tel__record_decode(&r, buf, len), TEL_OK);
    CHECK("nil", r.vals[0].type == TEL_T_NIL);
    CHECK("true (any non-zero)", r.vals[1].type == TEL_T_BOOL && r.vals[1].v.b == 1);
    CHECK("false", r.vals[2].type == TEL_T_BOOL && r.vals[2].v.b == 0);
    CHECK("empty string", r.vals[3].type == TEL_T_STR && r.vals[3].v.s.len == 0);
    CHECK("utf-8 string", r.vals[4].type == TEL_T_STR && tstr_eq(r.vals[4].v.s, "h\xc3\xa9llo \xe2\x82\xac"));
    CHECK("1024-byte string", r.vals[5].type == TEL_T_STR && tstr_eq(r.vals[5].v.s, s1024));
    CHECK("control characters kept", tstr_eq(r.vals[6].v.s, "a\tb\nc"));
    CHECK("ids", memcmp(r.id, ID, 16) == 0 && memcmp(r.exec, EXEC, 16) == 0 && memcmp(r.anon, ANON, 16) == 0);
    CHECK("time", r.ts_ms == 1790000000123ull);
    CHECK("name", tstr_eq(r.name, "ns:ev.name-1_x"));
    CHECK("full context", tstr_eq(r.app, "my-cli") && tstr_eq(r.app_version, "1.2.3") &&
                              tstr_eq(r.lib_version, "0.1.0") && tstr_eq(r.os, "linux") &&
                              tstr_eq(r.arch, "x86_64") && r.cpus == 8 && r.ci == 1 &&
                              tstr_eq(r.ci_vendor, "github_actions") && tstr_eq(r.project, CTX_FULL.project));
    CHECK("raw view", r.raw == buf && r.raw_len == len);

    ev = event("min", NULL, 0, &CTX_MIN, NULL);
    CHECK_EQ_INT("minimal encode", tel__record_encode(&ev, buf, sizeof buf, &len), TEL_OK);
    CHECK_EQ_INT("minimal decode", tel__record_decode(&r, buf, len), TEL_OK);
    CHECK("minimal context absent fields", tstr_eq(r.app, "demo") && !r.app_version.p && !r.lib_version.p &&
                                               !r.os.p && !r.arch.p && r.cpus == 0 && r.ci == 0 &&
                                               !r.ci_vendor.p && !r.project.p);
    CHECK("no anon is nil", r.anon == NULL && r.nprops == 0);

    uint8_t again[TEL_MAX_EVENT];
    size_t len2;
    ev = event("command.exited", TYPICAL, 4, &CTX_FULL, ANON);
    SETUP(tel__record_encode(&ev, buf, sizeof buf, &len));
    SETUP(tel__record_encode(&ev, again, sizeof again, &len2));
    CHECK("deterministic bytes", len == len2 && memcmp(buf, again, len) == 0);
    free(s1024);
}

/* The worked example of SPEC.md, byte for byte. */
static const char SPEC_HEX[] =
    "87 a1 69 c4 10 6f 1c 2a 3b 4c 5d 4e 6f 80 91 a2 b3 c4 d5 e6 f7"
    " a1 74 cf 00 00 01 a0 c4 50 6c 7b"
    " a1 6e a7 63 6c 69 2e 72 75 6e"
    " a1 70 82 a2 6f 6b c3 a1 6e 03"
    " a1 78 c4 10 11 22 33 44 55 66 47 77 88 99 aa bb cc dd ee ff"
    " a1 61 c0"
    " a1 63 83 a3 61 70 70 a4 64 65 6d 6f a2 6f 73 a5 6c 69 6e 75 78 a2 63 69 c2";

static void test_spec_example(void)
{
    CHECK_GROUP("spec example");
    tel_prop props[] = { TEL_BOOL("ok", 1), TEL_INT("n", 3) };
    tel_ctx ctx = { .app = "demo", .os = "linux" };
    tel_event_in ev = event("cli.run", props, 2, &ctx, NULL);
    uint8_t buf[256], want[256];
    size_t len = 0, wlen = 0;
    hex_to_bytes(SPEC_HEX, want, &wlen);
    CHECK_EQ_INT("encodes", tel__record_encode(&ev, buf, sizeof buf, &len), TEL_OK);
    CHECK_EQ_INT("length as in SPEC.md", len, wlen);
    CHECK("bytes as in SPEC.md", len == wlen && memcmp(buf, want, len) == 0);

    /* The batch of section 11: the head, then the record unchanged. */
    static const char head_hex[] =
        "86 a1 76 01 a1 62 c4 10 0d 9e 8a 7b 6c 5d 4e 3f 8a 1b 2c 3d 4e 5f 6a 7b"
        " a1 73 cf 00 00 01 a0 c4 51 56 60 a1 64 00 a1 61 c0 a1 65 91";
    uint8_t head_want[64];
    size_t head_len;
    hex_to_bytes(head_hex, head_want, &head_len);
    tel_batch_head h = { .sent_ms = 1790000060000ull, .dropped = 0, .anon = NULL, .nevents = 1 };
    tel__uuid_parse("0d9e8a7b-6c5d-4e3f-8a1b-2c3d4e5f6a7b", 36, h.id);
    tel_buf batch = TEL_BUF_INIT;
    SETUP(tel__batch_begin(&batch, &h));
    CHECK("batch head as in SPEC.md", batch.len == head_len && memcmp(batch.p, head_want, head_len) == 0);
    SETUP(tel__buf_append(&batch, buf, len));
    CHECK_EQ_INT("that batch decodes", tel__batch_decode(batch.p, batch.len, NULL, NULL, NULL), TEL_OK);
    tel__buf_free(&batch);

    tel_record r;
    tel_buf js = TEL_BUF_INIT;
    tel__record_decode(&r, want, wlen);
    tel__record_json(&r, &js);
    SETUP(tel__buf_append(&js, "", 1));
    CHECK("JSON as in SPEC.md",
          strcmp((char *)js.p,
                 "{\"id\":\"6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6f7\",\"ts\":1790000000123,"
                 "\"time\":\"2026-09-21T14:13:20.123Z\",\"name\":\"cli.run\","
                 "\"exec\":\"11223344-5566-4777-8899-aabbccddeeff\",\"anon\":null,"
                 "\"props\":{\"ok\":true,\"n\":3},\"context\":{\"app\":\"demo\",\"os\":\"linux\",\"ci\":false}}") == 0);
    if (js.p && getenv("TEL_SHOW_JSON"))
        printf("# %s\n", (char *)js.p);
    tel__buf_free(&js);
}

static void test_decode_rules(void)
{
    CHECK_GROUP("decode rules");
    tel_record r;
    CHECK_EQ_INT("all fields", decode_keys("itnpxac"), TEL_OK);
    CHECK_EQ_INT("any order", decode_keys("caxpnti"), TEL_OK);
    CHECK_EQ_INT("p may be absent", decode_keys("itnxac"), TEL_OK);
    CHECK_EQ_INT("missing i", decode_keys("tnpxac"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("missing t", decode_keys("inpxac"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("missing n", decode_keys("itpxac"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("missing x", decode_keys("itnpac"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("missing a", decode_keys("itnpxc"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("missing c", decode_keys("itnpxa"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("duplicate i", decode_keys("iitnpxac"), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("not a map", tel__record_decode(&r, "\x91\xc0", 2), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("empty input", tel__record_decode(&r, "", 0), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("NULL input", tel__record_decode(&r, NULL, 0), TEL_ERR_CORRUPT);

    b_all_but('i');
    msgpack_pack_bin_with_body(&pk, ID, 15);
    CHECK_EQ_INT("id of 15 bytes", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('i');
    b_str("6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6f7");
    CHECK_EQ_INT("id as text", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('t');
    msgpack_pack_int64(&pk, -1);
    CHECK_EQ_INT("negative time", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('t');
    msgpack_pack_fix_int64(&pk, 5);
    CHECK_EQ_INT("time in an int64 encoding", b_decode(&r), TEL_OK);
    b_all_but('n');
    b_str("bad name");
    CHECK_EQ_INT("name with a space", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('n');
    b_str("");
    CHECK_EQ_INT("empty name", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('a');
    msgpack_pack_bin_with_body(&pk, ANON, 16);
    CHECK("anon of 16 bytes", b_decode(&r) == TEL_OK && r.anon && memcmp(r.anon, ANON, 16) == 0);
    b_all_but('a');
    msgpack_pack_false(&pk);
    CHECK_EQ_INT("anon false", b_decode(&r), TEL_ERR_CORRUPT);

    b_all_but('c');
    msgpack_pack_map(&pk, 1);
    b_str("os");
    b_str("linux");
    CHECK_EQ_INT("context without app", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('c');
    msgpack_pack_map(&pk, 1);
    b_str("app");
    b_str("Bad/App");
    CHECK_EQ_INT("context with a bad app", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('c');
    msgpack_pack_map(&pk, 3);
    b_str("app");
    b_str("a");
    b_str("future");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 1);
    b_str("deep");
    msgpack_pack_ext_with_body(&pk, "xyz", 3, 7);
    msgpack_pack_float(&pk, 1.5f);
    b_str("ci");
    msgpack_pack_true(&pk);
    CHECK("unknown context key skipped", b_decode(&r) == TEL_OK && r.ci == 1 && tstr_eq(r.app, "a"));
    b_all_but('c');
    msgpack_pack_map(&pk, 2);
    b_str("app");
    b_str("a");
    b_str("cpu");
    msgpack_pack_int64(&pk, -2);
    CHECK_EQ_INT("negative cpu count", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('c');
    msgpack_pack_map(&pk, 2);
    b_str("app");
    b_str("a");
    b_str("app");
    b_str("b");
    CHECK_EQ_INT("duplicate context key", b_decode(&r), TEL_ERR_CORRUPT);

    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("big");
    msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX);
    CHECK("int64 max accepted", b_decode(&r) == TEL_OK && r.vals[0].v.i == INT64_MAX);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("big");
    msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
    CHECK_EQ_INT("int beyond int64 refused", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("f");
    msgpack_pack_float(&pk, 0.25f);
    CHECK("float32 accepted", b_decode(&r) == TEL_OK && r.vals[0].type == TEL_T_FLOAT && r.vals[0].v.f == 0.25);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("f");
    msgpack_pack_double(&pk, NAN);
    CHECK_EQ_INT("NaN refused on decode", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("f");
    msgpack_pack_double(&pk, -INFINITY);
    CHECK_EQ_INT("infinity refused on decode", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("b");
    msgpack_pack_bin_with_body(&pk, "x", 1);
    CHECK_EQ_INT("binary value refused", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("a");
    msgpack_pack_ext(&pk, 1, 1);
    msgpack_pack_ext_body(&pk, "x", 1);
    CHECK_EQ_INT("ext value refused", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 2);
    b_str("k");
    msgpack_pack_nil(&pk);
    b_str("k");
    msgpack_pack_nil(&pk);
    CHECK_EQ_INT("duplicate property key", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("a b");
    msgpack_pack_nil(&pk);
    CHECK_EQ_INT("property key with a space", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_nil(&pk);
    CHECK_EQ_INT("integer property key", b_decode(&r), TEL_ERR_CORRUPT);
    b_all_but('p');
    msgpack_pack_map(&pk, 33);
    for (int i = 0; i < 33; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        b_str(k);
        msgpack_pack_nil(&pk);
    }
    CHECK_EQ_INT("33 properties refused", b_decode(&r), TEL_ERR_CORRUPT);
    char *s1025 = repeat('s', 1025);
    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("s");
    b_str(s1025);
    CHECK_EQ_INT("1025-byte string refused", b_decode(&r), TEL_ERR_CORRUPT);
    free(s1025);

    /* Forward compatibility: a newer writer's extra fields are skipped. */
    b_start(8);
    for (const char *k = "itnpxac"; *k; k++)
        b_field(*k);
    b_str("future");
    msgpack_pack_map(&pk, 2);
    b_str("x");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_str_with_body(&pk, "\xff\xfe", 2);
    msgpack_pack_bin_with_body(&pk, "\0\1", 2);
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_double(&pk, NAN);
    CHECK("unknown top-level key skipped", b_decode(&r) == TEL_OK && tstr_eq(r.name, "ev"));
    b_start(8);
    for (const char *k = "itnpxac"; *k; k++)
        b_field(*k);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_nil(&pk);
    CHECK_EQ_INT("non-string top-level key refused", b_decode(&r), TEL_ERR_CORRUPT);
}

static void test_hostile(void)
{
    CHECK_GROUP("hostile input");
    uint8_t rec[TEL_MAX_EVENT], buf[2 * TEL_MAX_EVENT];
    tel_record r;
    size_t len = typical_record(rec, ANON);

    int all = 1;
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1);   /* exact size, so ASan sees overreads */
        memcpy(copy, rec, n);
        if (tel__record_decode(&r, copy, n) != TEL_ERR_CORRUPT)
            all = 0;
        free(copy);
    }
    CHECK("every truncation is corrupt", all);
    memcpy(buf, rec, len);
    buf[len] = 0xc0;
    CHECK_EQ_INT("one trailing byte", tel__record_decode(&r, buf, len + 1), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("over 4096 bytes", tel__record_decode(&r, buf, TEL_MAX_EVENT + 1), TEL_ERR_CORRUPT);

    static const char *const huge[] = {
        "\xdd\xff\xff\xff\xff",             /* array 32 */
        "\xdf\xff\xff\xff\xff",             /* map 32 */
        "\xdc\xff\xff",                     /* array 16 */
        "\xde\xff\xff",                     /* map 16 */
        "\xdb\xff\xff\xff\xff",             /* str 32 */
        "\xc6\xff\xff\xff\xff",             /* bin 32 */
        "\xc9\xff\xff\xff\xff\x01",         /* ext 32 */
        "\xc1",                             /* never used */
    };
    all = 1;
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        size_t hl = strlen(huge[i]);
        if (tel__record_decode(&r, huge[i], hl) != TEL_ERR_CORRUPT)
            all = 0;
        /* The same header as the value of an unknown key and as the
         * properties map of an otherwise valid record. */
        memcpy(buf, rec, len);
        buf[0]++;
        memcpy(buf + len, "\xa1z", 2);
        memcpy(buf + len + 2, huge[i], hl);
        if (tel__record_decode(&r, buf, len + 2 + hl) != TEL_ERR_CORRUPT)
            all = 0;
    }
    CHECK("huge array, map, str, bin and ext headers are corrupt", all);
    b_all_but('p');
    msgpack_sbuffer_write(&sb, "\xde\xff\xff", 3);
    CHECK_EQ_INT("properties map of 65535 entries", b_decode(&r), TEL_ERR_CORRUPT);

    /* Nesting in an unknown key: 20 levels are skipped, 5000 refused
     * without recursion running away. */
    for (int depth = 0; depth < 2; depth++) {
        int levels = depth ? 5000 : 20;
        b_start(8);
        for (const char *k = "itnpxac"; *k; k++)
            b_field(*k);
        b_str("z");
        for (int i = 0; i < levels; i++)
            msgpack_pack_array(&pk, 1);
        msgpack_pack_nil(&pk);
        int rc = tel__record_decode(&r, sb.data, sb.size);
        if (depth)
            CHECK_EQ_INT("5000 levels of nesting refused", rc, TEL_ERR_CORRUPT);
        else
            CHECK_EQ_INT("20 levels of nesting skipped", rc, TEL_OK);
    }
    {
        tel_mp cur;
        uint8_t deep[40];
        memset(deep, 0x91, 33);
        deep[33] = 0xc0;
        tel__mp_init(&cur, deep, 34);
        CHECK_EQ_INT("33 levels exceed the bound", tel__mp_skip(&cur, TEL_MP_MAX_DEPTH), TEL_MP_EDEEP);
        tel__mp_init(&cur, deep + 1, 33);
        CHECK_EQ_INT("32 levels are within it", tel__mp_skip(&cur, TEL_MP_MAX_DEPTH), 0);
    }

    /* Mutations of valid records: any outcome but a crash is fine, and
     * whatever decodes must render as valid JSON. */
    uint8_t seeds[3][TEL_MAX_EVENT];
    size_t seed_len[3];
    seed_len[0] = typical_record(seeds[0], ANON);
    seed_len[1] = typical_record(seeds[1], NULL);
    tel_prop mixed[] = { TEL_NIL("n"), TEL_FLOAT("f", 2.5), TEL_STR("s", "x\ty"), TEL_INT("i", -70000) };
    tel_event_in ev = event("m", mixed, 4, &CTX_MIN, ANON);
    SETUP(tel__record_encode(&ev, seeds[2], TEL_MAX_EVENT, &seed_len[2]));

    static const uint8_t interesting[] = { 0x00, 0x7f, 0x80, 0x8f, 0x9f, 0xbf, 0xc0, 0xc1, 0xc3, 0xc4,
                                           0xcb, 0xcf, 0xd3, 0xd9, 0xdb, 0xdd, 0xdf, 0xe0, 0xff };
    tel_buf js = TEL_BUF_INIT;
    long decoded = 0, bad_json = 0;
    int iterations = getenv("TEL_SANITIZED") && strcmp(getenv("TEL_SANITIZED"), "1") == 0 ? 50000 : 200000;
    for (int it = 0; it < iterations; it++) {
        int s = (int)(rnd() % 3);
        size_t n = seed_len[s];
        memcpy(buf, seeds[s], n);
        int muts = 1 + (int)(rnd() % 4);
        for (int m = 0; m < muts && n > 0; m++) {
            size_t at = rnd() % n;
            switch (rnd() % 6) {
            case 0: buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
            case 1: buf[at] = interesting[rnd() % sizeof interesting]; break;
            case 2: buf[at] = (uint8_t)rnd(); break;
            case 3:
                if (n < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)rnd();
                    n++;
                }
                break;
            case 4:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            case 5: n = at; break;
            }
        }
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        if (tel__record_decode(&r, copy, n) == TEL_OK) {
            decoded++;
            tel__buf_clear(&js);
            if (tel__record_json(&r, &js) != TEL_OK || !json_valid(js.p, js.len))
                bad_json++;
        }
        free(copy);
    }
    printf("# fuzz: %d mutations, %ld still decoded\n", iterations, decoded);
    CHECK("mutated records that decode render valid JSON", bad_json == 0);
    CHECK("some mutations still decode (the loop reaches JSON)", decoded > 0);
    tel__buf_free(&js);
}

static void test_json(void)
{
    CHECK_GROUP("json");
    tel_record r;
    tel_buf js = TEL_BUF_INIT;

    /* The encoder refuses invalid UTF-8, so the record is built by hand,
     * as another implementation might write it. */
    b_all_but('p');
    msgpack_pack_map(&pk, 2);
    b_str("ctl");
    msgpack_pack_str_with_body(&pk, "\x01\n\"\\/\x1f\x7f", 7);
    b_str("bad");
    msgpack_pack_str_with_body(&pk, "a\xff" "b\xc3" "c\xe2\x82" "d\xed\xa0\x80" "e\xf0\x9f\x98\x80\0", 17);
    CHECK_EQ_INT("hand-made record decodes", b_decode(&r), TEL_OK);
    CHECK_EQ_INT("renders", tel__record_json(&r, &js), TEL_OK);
    CHECK("valid JSON", json_valid(js.p, js.len));
    SETUP(tel__buf_append(&js, "", 1));
    const char *s = (const char *)js.p;
    CHECK("control characters as \\u00XX", strstr(s, "\"ctl\":\"\\u0001\\u000a\\\"\\\\/\\u001f\x7f\"") != NULL);
    CHECK("invalid UTF-8 replaced, valid kept, NUL escaped",
          strstr(s, "\"bad\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd"
                    "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "e\xf0\x9f\x98\x80\\u0000\"") != NULL);

    tel__buf_clear(&js);
    uint8_t buf[TEL_MAX_EVENT];
    size_t len;
    tel_prop props[] = { TEL_FLOAT("f", 0.1), TEL_FLOAT("g", 1e300), TEL_FLOAT("h", -2.0),
                         TEL_INT("min", INT64_MIN), TEL_NIL("z") };
    tel_event_in ev = event("e", props, 5, &CTX_FULL, ANON);
    SETUP(tel__record_encode(&ev, buf, sizeof buf, &len));
    tel__record_decode(&r, buf, len);
    tel__record_json(&r, &js);
    CHECK("full record valid JSON", json_valid(js.p, js.len));
    SETUP(tel__buf_append(&js, "", 1));
    s = (const char *)js.p;
    CHECK("shortest float that round-trips",
          strstr(s, "\"f\":0.1,\"g\":1e+300,\"h\":-2,\"min\":-9223372036854775808,\"z\":null") != NULL);
    CHECK("anon as uuid", strstr(s, "\"anon\":\"a0a1a2a3-a4a5-46a7-a8a9-aaabacadaeaf\"") != NULL);
    CHECK("full context", strstr(s, "\"context\":{\"app\":\"my-cli\",\"app_version\":\"1.2.3\","
                                    "\"lib_version\":\"0.1.0\",\"os\":\"linux\",\"arch\":\"x86_64\","
                                    "\"cpus\":8,\"ci\":true,\"ci_vendor\":\"github_actions\","
                                    "\"project\":\"3f79bb7b") != NULL);

    tel__buf_clear(&js);
    b_all_but('t');
    msgpack_pack_uint64(&pk, UINT64_MAX);
    b_decode(&r);
    tel__record_json(&r, &js);
    SETUP(tel__buf_append(&js, "", 1));
    CHECK("time past year 9999 is null", strstr((char *)js.p, "\"time\":null") != NULL);
    tel__buf_free(&js);
}

/* Batch helpers: a batch of n typical records with the given anon ids. */
static void make_batch(tel_buf *out, uint32_t n, const uint8_t *head_anon, const uint8_t *const *rec_anon)
{
    tel_batch_head h = { .sent_ms = 1790000001000ull, .dropped = 7, .anon = head_anon, .nevents = n };
    memcpy(h.id, EXEC, 16);
    tel__buf_clear(out);
    SETUP(tel__batch_begin(out, &h));
    for (uint32_t i = 0; i < n; i++) {
        uint8_t rec[TEL_MAX_EVENT];
        size_t len = typical_record(rec, rec_anon ? rec_anon[i] : head_anon);
        SETUP(tel__buf_append(out, rec, len));
    }
}

typedef struct collect {
    int calls;
    int stop_after;
    int names_ok;
} collect;

static int collect_fn(void *ud, const tel_record *r)
{
    collect *c = ud;
    c->calls++;
    if (!tstr_eq(r->name, "command.exited"))
        c->names_ok = 0;
    return c->stop_after && c->calls >= c->stop_after;
}

static void test_batch(const char *corpus)
{
    CHECK_GROUP("batch");
    tel_buf b = TEL_BUF_INIT;
    tel_batch_head h;
    collect c = { 0, 0, 1 };

    make_batch(&b, 3, ANON, NULL);
    CHECK_EQ_INT("round trip", tel__batch_decode(b.p, b.len, &h, collect_fn, &c), TEL_OK);
    CHECK("every record handed out", c.calls == 3 && c.names_ok);
    CHECK("head fields", memcmp(h.id, EXEC, 16) == 0 && h.sent_ms == 1790000001000ull && h.dropped == 7 &&
                             h.anon && memcmp(h.anon, ANON, 16) == 0 && h.nevents == 3);
    CHECK("head bytes: keys v b s d a e in order",
          b.len > 8 && b.p[0] == 0x86 && b.p[1] == 0xa1 && b.p[2] == 'v' && b.p[3] == 0x01 && b.p[4] == 0xa1 &&
              b.p[5] == 'b');
    if (corpus)
        write_file(corpus, "batch", "valid-3", b.p, b.len);

    c = (collect){ 0, 2, 1 };
    CHECK_EQ_INT("fn may stop early", tel__batch_decode(b.p, b.len, NULL, collect_fn, &c), TEL_OK);
    CHECK_EQ_INT("stopped after 2", c.calls, 2);

    int all = 1;
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.p, n);
        if (tel__batch_decode(copy, n, &h, NULL, NULL) != TEL_ERR_CORRUPT)
            all = 0;
        if (corpus && n == b.len / 2)
            write_file(corpus, "batch", "truncated", copy, n);
        free(copy);
    }
    CHECK("every truncation is corrupt", all);
    SETUP(tel__buf_append(&b, "\xc0", 1));
    CHECK_EQ_INT("trailing byte", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_ERR_CORRUPT);

    make_batch(&b, 2, NULL, NULL);
    CHECK("nil anon round trip", tel__batch_decode(b.p, b.len, &h, NULL, NULL) == TEL_OK && h.anon == NULL);
    if (corpus)
        write_file(corpus, "batch", "valid-nil-anon", b.p, b.len);
    make_batch(&b, 0, ANON, NULL);
    CHECK_EQ_INT("empty batch", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_OK);

    const uint8_t *mixed[3] = { ANON, ANON2, ANON };
    c = (collect){ 0, 0, 1 };
    make_batch(&b, 3, ANON, mixed);
    CHECK_EQ_INT("mixed anon ids refused", tel__batch_decode(b.p, b.len, &h, collect_fn, &c), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("fn never called on a refused batch", c.calls, 0);
    if (corpus)
        write_file(corpus, "batch", "mixed-anon", b.p, b.len);
    const uint8_t *some_nil[2] = { ANON, NULL };
    make_batch(&b, 2, ANON, some_nil);
    CHECK_EQ_INT("anon and nil mixed refused", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_ERR_CORRUPT);
    const uint8_t *all_set[1] = { ANON };
    make_batch(&b, 1, NULL, all_set);
    CHECK_EQ_INT("record anon under a nil batch refused", tel__batch_decode(b.p, b.len, &h, NULL, NULL),
                 TEL_ERR_CORRUPT);

    make_batch(&b, TEL_BATCH_MAX_EVENTS, ANON, NULL);
    CHECK_EQ_INT("1000 events", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_OK);
    make_batch(&b, TEL_BATCH_MAX_EVENTS + 1, ANON, NULL);
    CHECK_EQ_INT("1001 events over the limit", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_ERR_LIMIT);

    /* 200 records of 3 KiB are under the event count but over 512 KiB. */
    {
        char *s = repeat('s', 1000);
        tel_prop big[3] = { TEL_STR("a", s), TEL_STR("b", s), TEL_STR("c", s) };
        tel_batch_head bh = { .nevents = 200 };
        uint8_t rec[TEL_MAX_EVENT];
        size_t len;
        tel_event_in ev = event("big", big, 3, &CTX_MIN, NULL);
        SETUP(tel__record_encode(&ev, rec, sizeof rec, &len));
        tel__buf_clear(&b);
        SETUP(tel__batch_begin(&b, &bh));
        for (int i = 0; i < 200; i++)
            SETUP(tel__buf_append(&b, rec, len));
        CHECK_EQ_INT("over 512 KiB of records", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_ERR_LIMIT);
        tel__buf_clear(&b);
        bh.nevents = 160;
        SETUP(tel__batch_begin(&b, &bh));
        for (int i = 0; i < 160; i++)
            SETUP(tel__buf_append(&b, rec, len));
        CHECK_EQ_INT("just under 512 KiB of records", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_OK);
        free(s);
    }

    /* Hand-made heads: version, unknown keys, missing keys, bad records. */
    uint8_t rec[TEL_MAX_EVENT];
    size_t rlen = typical_record(rec, NULL);
    for (int variant = 0; variant < 7; variant++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, variant == 1 ? 7 : variant == 2 ? 5 : 6);
        b_str("v");
        msgpack_pack_uint64(&pk, variant == 0 ? 3 : 1);
        if (variant == 1) {
            b_str("future");
            msgpack_pack_map(&pk, 1);
            b_str("k");
            msgpack_pack_array(&pk, 0);
        }
        b_str("b");
        msgpack_pack_bin_with_body(&pk, ID, 16);
        b_str("s");
        msgpack_pack_uint64(&pk, 1);
        if (variant != 2) {
            b_str("d");
            msgpack_pack_uint64(&pk, 0);
        }
        b_str("a");
        msgpack_pack_nil(&pk);
        b_str("e");
        if (variant == 3) {
            msgpack_sbuffer_write(&sb, "\xdd\xff\xff\xff\xff", 5);
        } else if (variant == 4) {
            /* Well-formed MessagePack, but a record with only a name. */
            msgpack_pack_array(&pk, 1);
            msgpack_sbuffer_write(&sb, "\x81\xa1" "n\xa2" "ev", 6);
        } else if (variant == 5) {
            msgpack_pack_array(&pk, 2);
            msgpack_sbuffer_write(&sb, (const char *)rec, rlen);
            msgpack_pack_int64(&pk, 5);
        } else if (variant == 6) {
            msgpack_pack_array(&pk, 1);
            for (int i = 0; i < 3000; i++)
                msgpack_pack_array(&pk, 1);
            msgpack_pack_nil(&pk);
        } else {
            msgpack_pack_array(&pk, 1);
            msgpack_sbuffer_write(&sb, (const char *)rec, rlen);
        }
        int rc = tel__batch_decode(sb.data, sb.size, &h, NULL, NULL);
        static const char *const what[] = { "schema version 3 refused", "unknown batch key skipped",
                                            "missing d refused", "huge events header refused",
                                            "invalid record refused", "non-record event refused",
                                            "deeply nested event refused" };
        CHECK_EQ_INT(what[variant], rc, variant == 1 ? TEL_OK : TEL_ERR_CORRUPT);
        if (variant == 0)
            CHECK("version error says so", strstr(tel_last_error(), "version 3") != NULL);
        if (corpus && variant >= 1) {
            static const char *const file[] = { "", "unknown-key", "missing-key", "huge-header",
                                                "invalid-record", "non-record", "deep-nesting" };
            write_file(corpus, "batch", file[variant], sb.data, sb.size);
        }
    }
    CHECK_EQ_INT("not a map", tel__batch_decode("\x90", 1, &h, NULL, NULL), TEL_ERR_CORRUPT);
    CHECK_EQ_INT("empty", tel__batch_decode("", 0, &h, NULL, NULL), TEL_ERR_CORRUPT);
    tel__buf_free(&b);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* 1 when the record made from ev's tail is the one tel__record_encode
 * makes, byte for byte, and both succeed. */
static int tail_same(const tel_event_in *ev)
{
    uint8_t whole[TEL_MAX_EVENT], split[TEL_MAX_EVENT];
    size_t wlen = 0, slen = 0;
    uint8_t tail[TEL_MAX_EVENT];
    size_t tlen = 0;
    tel_event_shape sh;
    return tel__record_encode(ev, whole, sizeof whole, &wlen) == TEL_OK &&
           tel__event_measure(ev->name, ev->props, ev->nprops, &sh) == TEL_OK &&
           tel__record_tail(ev, tail, sizeof tail, &tlen) == TEL_OK &&
           tel__record_encode_tail(ev, &sh, tail, tlen, split, sizeof split, &slen) == TEL_OK &&
           wlen == slen && memcmp(whole, split, wlen) == 0;
}

static void test_tail(void)
{
    CHECK_GROUP("a handle's record tail");
    tel_prop nested[] = { TEL_STR("k", "v"), TEL_ARRAY("a", 2), TEL_INT(NULL, 1), TEL_STR(NULL, "x") };
    tel_event_in ev = event("command.exited", TYPICAL, 4, &CTX_FULL, ANON);
    CHECK("a typical event with the full context: the same bytes", tail_same(&ev));
    ev = event("e", NULL, 0, &CTX_MIN, NULL);
    CHECK("no properties, the least context, no anonymous id: the same bytes", tail_same(&ev));
    ev = event("e", nested, 4, &CTX_FULL, ANON2);
    CHECK("a structured value: the same bytes", tail_same(&ev));

    uint8_t tail[TEL_MAX_EVENT];
    size_t tlen = 0;
    tel_ctx badver = { .app = "x", .app_version = "\xff" };
    ev.ctx = &badver;
    CHECK_EQ_INT("a tail with a non-UTF-8 version is refused", tel__record_tail(&ev, tail, sizeof tail, &tlen),
                 TEL_ERR_INVALID);
    ev.ctx = NULL;
    CHECK_EQ_INT("a tail without context is refused", tel__record_tail(&ev, tail, sizeof tail, &tlen),
                 TEL_ERR_INVALID);

    /* The limits hold for the whole record, tail included. */
    ev = event("e", TYPICAL, 4, &CTX_FULL, ANON);
    tel_event_shape sh;
    uint8_t buf[64];
    size_t len = 0, whole = 0;
    uint8_t big[TEL_MAX_EVENT];
    SETUP(tel__record_encode(&ev, big, sizeof big, &whole));
    SETUP(tel__event_measure(ev.name, ev.props, ev.nprops, &sh));
    SETUP(tel__record_tail(&ev, tail, sizeof tail, &tlen));
    CHECK_EQ_INT("a buffer too small for head and tail",
                 tel__record_encode_tail(&ev, &sh, tail, tlen, buf, sizeof buf, &len), TEL_ERR_LIMIT);
    CHECK_EQ_INT("says the size the whole record needs", len, whole);
    char *s = repeat('v', 1000);
    tel_ctx wide = CTX_FULL;
    wide.app_version = wide.lib_version = wide.os = wide.arch = s;
    ev.ctx = &wide;
    CHECK_EQ_INT("a tail too large for its buffer says the size it needs", tel__record_tail(&ev, buf, sizeof buf, &tlen),
                 TEL_ERR_LIMIT);
    size_t need = tlen;
    SETUP(tel__record_tail(&ev, tail, sizeof tail, &tlen));
    CHECK_EQ_INT("which is its size", need, tlen);
    CHECK_EQ_INT("a flat event whose context takes it past 4096 bytes is refused",
                 tel__record_encode_tail(&ev, &sh, tail, tlen, big, sizeof big, &len), TEL_ERR_LIMIT);
    CHECK("as tel__record_encode refuses it", tel__record_encode(&ev, big, sizeof big, &len) == TEL_ERR_LIMIT);
    free(s);
}

static void test_speed(void)
{
    CHECK_GROUP("repeated round trips");
    enum { N = 200000 };
    uint8_t buf[TEL_MAX_EVENT];
    size_t len = 0;
    tel_record r;
    tel_event_in ev = event("command.exited", TYPICAL, 4, &CTX_FULL, ANON);
    int ok = 1;

    double t0 = now_ns();
    for (int i = 0; i < N; i++) {
        ev.ts_ms++;
        ok &= tel__record_encode(&ev, buf, sizeof buf, &len) == TEL_OK;
    }
    double t1 = now_ns();
    for (int i = 0; i < N; i++)
        ok &= tel__record_decode(&r, buf, len) == TEL_OK;
    double t2 = now_ns();
    double enc = (t1 - t0) / N, dec = (t2 - t1) / N;
    printf("# typical record: %zu bytes, encode %.0f ns, decode %.0f ns\n", len, enc, dec);
    /* The figures are printed for a reader, never asserted: a shared or
     * loaded machine makes any time bound flaky, and speed is make bench's
     * job.  What must hold is that 200,000 round trips all succeed. */
    CHECK("200,000 encodes and decodes of one record all succeed", ok);
}

static void write_record_corpus(const char *dir)
{
    uint8_t rec[TEL_MAX_EVENT], buf[TEL_MAX_EVENT + 64];
    size_t len = typical_record(rec, ANON);
    write_file(dir, "record", "typical", rec, len);
    write_file(dir, "record", "truncated", rec, len / 2);
    len = typical_record(rec, NULL);
    write_file(dir, "record", "nil-anon", rec, len);

    tel_prop mixed[] = { TEL_NIL("n"), TEL_FLOAT("f", 2.5), TEL_STR("s", "x\ty"), TEL_INT("i", -70000),
                         TEL_INT("u", 1ll << 40), TEL_BOOL("b", 0) };
    tel_event_in ev = event("m:x", mixed, 6, &CTX_MIN, ANON);
    SETUP(tel__record_encode(&ev, rec, sizeof rec, &len));
    write_file(dir, "record", "all-types", rec, len);

    memcpy(buf, rec, len);
    buf[0]++;
    memcpy(buf + len, "\xa1z\xdd\xff\xff\xff\xff", 7);
    write_file(dir, "record", "huge-header", buf, len + 7);
    write_file(dir, "record", "huge-map", "\xdf\xff\xff\xff\xff", 5);
    memcpy(buf + len, "\xa1z", 2);
    memset(buf + len + 2, 0x91, 40);
    buf[len + 42] = 0xc0;
    write_file(dir, "record", "deep-nesting", buf, len + 43);

    b_all_but('p');
    msgpack_pack_map(&pk, 1);
    b_str("bad");
    msgpack_pack_str_with_body(&pk, "\x01\xff\xed\xa0\x80", 5);
    write_file(dir, "record", "bad-utf8", sb.data, sb.size);
}

int main(int argc, char **argv)
{
    const char *corpus = argc == 3 && strcmp(argv[1], "--corpus") == 0 ? argv[2] : NULL;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    test_uuid();
    test_names();
    test_limits();
    test_round_trip();
    test_spec_example();
    test_decode_rules();
    test_hostile();
    test_json();
    test_batch(corpus);
    test_tail();
    test_speed();
    if (corpus)
        write_record_corpus(corpus);

    msgpack_sbuffer_destroy(&sb);
    return check_exit();
}
