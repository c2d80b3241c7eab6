/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_columns.c - the column-wise batch (wire version 3,
 * format/columns.h): stored records laid out in columns read back as the
 * very same record bytes, and a batch with any fault is refused whole.
 *
 *   test_columns --corpus DIR     also write fuzz seeds to DIR/batch
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "check.h"
#include "columns.h"
#include "internal.h"

#define MAXN TEL_BATCH_MAX_EVENTS
#define REC_MAX 512

static const uint8_t ANON[16] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x46, 0xa7,
                                  0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
static const tel_ctx CTX_A = { .app = "demo", .app_version = "1.0.0", .os = "linux", .cpus = 2 };
static const tel_ctx CTX_B = { .app = "demo", .app_version = "1.1.0", .os = "linux", .ci = 1,
                               .ci_vendor = "github_actions" };

/* The records of a batch, as tel-sync holds them. */
typedef struct recs {
    uint8_t bytes[MAXN * REC_MAX];
    uint32_t off[MAXN], len[MAXN];
    tel_record_parts parts[MAXN];
    size_t n, total;
} recs;

static recs R;
static tel_columns scratch;

static void put_id(uint8_t id[16], uint32_t k, uint8_t tag)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(k * 2654435761u >> (i % 4 * 8)) ^ (uint8_t)(i * 37) ^ tag;
    id[6] = (uint8_t)(0x40 | (id[6] & 0x0f));
    id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
}

/*
 * n events in runs of one to four, like hosts recording a command's
 * events: each run's execution id is its first event's id, except the
 * first run, which began in an earlier batch.  Times go backwards now
 * and then (two hosts' clocks); every seventh event holds an array.
 */
static size_t make(size_t n, const uint8_t *anon)
{
    size_t columnar = 0;
    static const char *const names[] = { "command.started", "command.exited", "deploy.finished" };
    uint8_t exec[16];
    uint64_t ts = 1790000000000ull;
    put_id(exec, 999999, 0x55);
    R.n = R.total = 0;
    for (size_t k = 0; k < n; k++) {
        tel_event_in ev;
        memset(&ev, 0, sizeof ev);
        put_id(ev.id, (uint32_t)k, 0);
        if (k > 0 && k % 3 == 0)
            memcpy(exec, ev.id, 16);
        memcpy(ev.exec, exec, 16);
        ts = k % 11 == 10 ? ts - 5000 : ts + k % 5;
        ev.ts_ms = ts;
        ev.name = names[k % 3];
        ev.anon = anon;
        ev.ctx = k % 4 == 3 ? &CTX_B : &CTX_A;
        tel_prop flat[] = { TEL_STR("command", "deploy"), TEL_INT("exit_code", (int64_t)k % 3 - 1),
                            TEL_FLOAT("ratio", 0.5), TEL_BOOL("ok", 1) };
        tel_prop tree[] = { TEL_ARRAY("opts", 2), TEL_STR(NULL, "force"), TEL_MAP(NULL, 1),
                            TEL_INT("count", 3) };
        ev.props = k % 7 == 6 ? tree : flat;
        ev.nprops = k % 7 == 6 ? 4 : (k % 5);
        size_t len = 0;
        uint8_t *at = R.bytes + R.total;
        SETUP(tel__record_encode(&ev, at, REC_MAX, &len));
        tel_record r;
        SETUP(tel__record_decode(&r, at, len));
        columnar += tel__record_parts(&r, &R.parts[k]) == 1;
        R.off[k] = (uint32_t)R.total;
        R.len[k] = (uint32_t)len;
        R.total += len;
        R.n++;
    }
    return columnar;
}

static void encode(tel_buf *out, size_t n, const uint8_t *anon)
{
    tel_batch_head h = { .sent_ms = 1790000060000ull, .dropped = 3, .anon = anon };
    put_id(h.id, 424242, 0x77);
    tel__buf_clear(out);
    SETUP(tel__batch_columns(out, &h, R.bytes, R.off, R.parts, n, &scratch));
}

typedef struct seen {
    size_t calls, same;
} seen;

/* Every record handed out must be byte for byte the stored one. */
static int same_fn(void *ud, const tel_record *r)
{
    seen *s = ud;
    size_t k = s->calls++;
    if (k < R.n && r->raw_len == R.len[k] && memcmp(r->raw, R.bytes + R.off[k], r->raw_len) == 0)
        s->same++;
    return 0;
}

static void write_seed(const char *dir, const char *name, const tel_buf *b)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/batch", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/batch/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b->p, 1, b->len, f);
        fclose(f);
    }
}

static void test_round_trip(const char *corpus)
{
    CHECK_GROUP("columns: round trip");
    tel_buf b = TEL_BUF_INIT;
    tel_batch_head h;
    seen s = { 0, 0 };

    CHECK_EQ_INT("every record tel writes can travel in columns", make(MAXN, ANON), MAXN);
    encode(&b, MAXN, ANON);
    CHECK_EQ_INT("a batch of 1000 decodes", tel__batch_decode(b.p, b.len, &h, same_fn, &s), TEL_OK);
    CHECK("its head", h.version == 3 && h.nevents == MAXN && h.dropped == 3 && h.sent_ms == 1790000060000ull &&
                          h.anon && memcmp(h.anon, ANON, 16) == 0);
    CHECK_EQ_INT("every event is handed out", s.calls, MAXN);
    CHECK_EQ_INT("each one rebuilt into the very bytes that were stored", s.same, MAXN);
    CHECK("and the batch is smaller than its records", b.len < R.total * 2 / 3);

    SETUP(make(5, NULL) != 5);
    encode(&b, 5, NULL);
    s = (seen){ 0, 0 };
    CHECK_EQ_INT("a batch without an anonymous id decodes", tel__batch_decode(b.p, b.len, &h, same_fn, &s),
                 TEL_OK);
    CHECK("into the stored bytes", h.anon == NULL && s.calls == 5 && s.same == 5);
    if (corpus)
        write_seed(corpus, "valid-columns-nil-anon", &b);
    SETUP(make(12, ANON) != 12);
    encode(&b, 12, ANON);
    if (corpus)
        write_seed(corpus, "valid-columns-12", &b);
    s = (seen){ 0, 0 };
    CHECK("the keys are written in the order of the spec",
          b.p[0] == 0x8d && b.p[1] == 0xa1 && b.p[2] == 'v' && b.p[3] == 0x03);
    CHECK_EQ_INT("a batch of runs, out-of-order times and arrays", tel__batch_decode(b.p, b.len, &h, same_fn, &s),
                 TEL_OK);
    CHECK("decodes into the stored bytes", s.calls == 12 && s.same == 12);
    tel__buf_free(&b);
}

/* format/SPEC.md 4.1's example: section 11's batch in version 3. */
static void test_spec_example(void)
{
    CHECK_GROUP("columns: the spec's example");
    static const char want[] =
        "8da17603a162c4100d9e8a7b6c5d4e3f8a1b2c3d4e5f6a7ba173cf000001a0c4"
        "515660a16400a161c0a169c4106f1c2a3b4c5d4e6f8091a2b3c4d5e6f7a17491"
        "cf000001a0c4506c7ba17891c41011223344556647778899aabbccddeeffa26e"
        "7391a7636c692e72756ea16e9100a263739183a3617070a464656d6fa26f73a5"
        "6c696e7578a26369c2a1639100a1709182a26f6bc3a16e03";
    static const tel_ctx ctx = { .app = "demo", .os = "linux" };
    tel_prop props[] = { TEL_BOOL("ok", 1), TEL_INT("n", 3) };
    tel_event_in ev = { .ts_ms = 1790000000123ull, .name = "cli.run", .props = props, .nprops = 2,
                        .ctx = &ctx };
    SETUP(tel__uuid_parse("6f1c2a3b-4c5d-4e6f-8091-a2b3c4d5e6f7", 36, ev.id));
    SETUP(tel__uuid_parse("11223344-5566-4777-8899-aabbccddeeff", 36, ev.exec));
    size_t len = 0;
    tel_record r;
    SETUP(tel__record_encode(&ev, R.bytes, REC_MAX, &len));
    SETUP(tel__record_decode(&r, R.bytes, len));
    SETUP(tel__record_parts(&r, &R.parts[0]) != 1);
    R.off[0] = 0;
    tel_batch_head h = { .sent_ms = 1790000060000ull };
    SETUP(tel__uuid_parse("0d9e8a7b-6c5d-4e3f-8a1b-2c3d4e5f6a7b", 36, h.id));
    tel_buf b = TEL_BUF_INIT;
    SETUP(tel__batch_columns(&b, &h, R.bytes, R.off, R.parts, 1, &scratch));
    char hex[2 * sizeof want];
    size_t n = 0;
    for (size_t i = 0; i < b.len && n + 3 < sizeof hex; i++)
        n += (size_t)snprintf(hex + n, sizeof hex - n, "%02x", b.p[i]);
    CHECK("the encoder writes exactly the bytes of the spec", strcmp(hex, want) == 0);
    tel__buf_free(&b);
}

static void test_parts(void)
{
    CHECK_GROUP("columns: which records may travel in columns");
    tel_record r;
    /* The worked example of SPEC.md 11 with one more key, "z": 1. */
    static const uint8_t unknown[] = "\x88\xa1i\xc4\x10\x6f\x1c\x2a\x3b\x4c\x5d\x4e\x6f\x80\x91\xa2\xb3\xc4\xd5\xe6\xf7"
                                     "\xa1t\x05\xa1n\xa1x\xa1p\x80\xa1x\xc4\x10\x11\x22\x33\x44\x55\x66\x47\x77\x88"
                                     "\x99\xaa\xbb\xcc\xdd\xee\xff\xa1" "a\xc0\xa1" "c\x81\xa3" "app\xa1" "d\xa1z\x01";
    tel_record_parts parts;
    SETUP(tel__record_decode(&r, unknown, sizeof unknown - 1));
    CHECK_EQ_INT("not one with a key this version does not know", tel__record_parts(&r, &parts), 0);
    static const uint8_t wide[] = "\x87\xa1i\xc4\x10\x6f\x1c\x2a\x3b\x4c\x5d\x4e\x6f\x80\x91\xa2\xb3\xc4\xd5\xe6\xf7"
                                  "\xa1t\xcf\0\0\0\0\0\0\0\x05\xa1n\xa1x\xa1p\x80\xa1x\xc4\x10\x11\x22\x33\x44\x55"
                                  "\x66\x47\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\xa1" "a\xc0\xa1" "c\x81\xa3" "app\xa1" "d";
    SETUP(tel__record_decode(&r, wide, sizeof wide - 1));
    CHECK_EQ_INT("not one whose time takes more bytes than it needs", tel__record_parts(&r, &parts), 0);
    static const uint8_t nop[] = "\x86\xa1i\xc4\x10\x6f\x1c\x2a\x3b\x4c\x5d\x4e\x6f\x80\x91\xa2\xb3\xc4\xd5\xe6\xf7"
                                 "\xa1t\x05\xa1n\xa1x\xa1x\xc4\x10\x11\x22\x33\x44\x55\x66\x47\x77\x88"
                                 "\x99\xaa\xbb\xcc\xdd\xee\xff\xa1" "a\xc0\xa1" "c\x81\xa3" "app\xa1" "d";
    SETUP(tel__record_decode(&r, nop, sizeof nop - 1));
    CHECK_EQ_INT("not one without properties", tel__record_parts(&r, &parts), 0);
}

/* ------------------------------------------------------- hostile input */

static int buf_write(void *data, const char *p, size_t n)
{
    return tel__buf_append(data, p, n);
}

#define KEY(k) msgpack_pack_str_with_body(&pk, (k), strlen(k))

enum fault {
    F_NONE, F_UNKNOWN_KEY, F_X_INDEX, F_X_SHORT, F_T_FIRST_NEG, F_T_BELOW, F_T_OVER, F_N_INDEX,
    F_C_INDEX, F_P_NOT_MAP, F_P_SHORT, F_NS_NOT_STR, F_CS_NOT_MAP, F_CS_NO_APP, F_NS_BAD_NAME, F_E,
    F_NO_CS, F_TWICE, F_I_ODD, F_NS_LONG, F_BIG_RECORD, F_TRAILING, F_NFAULTS
};
static const char *const fault_name[F_NFAULTS] = {
    "none", "an unknown key", "an execution index past the last event",
    "an execution id of 15 bytes", "a negative first time", "a time below 0",
    "a time above 2^64-1", "a name index past the names", "a context index past the contexts",
    "properties that are not a map", "one property map too few", "a name that is not a string",
    "a context that is not a map", "a context without its app", "a name with a space",
    "an events array besides the columns", "no contexts column", "a column twice",
    "ids of 17 bytes", "more names than events", "an event over 4 KiB", "a byte after the map",
};

static const char *const fault_slug[F_NFAULTS] = {
    "none", "unknown-key", "x-index", "x-short", "t-first-negative", "t-below-zero", "t-over",
    "n-index", "c-index", "p-not-map", "p-short", "ns-not-str", "cs-not-map", "cs-no-app",
    "ns-bad-name", "with-e", "no-cs", "column-twice", "i-odd", "ns-long", "big-record", "trailing",
};

/* A version 3 batch of n events written by hand, with one fault; each
 * event's properties hold a string of `pad` bytes. */
static void build(tel_buf *out, int fault, uint32_t n, size_t pad)
{
    static char big[5000];
    memset(big, 'x', sizeof big);
    msgpack_packer pk;
    tel__buf_clear(out);
    msgpack_packer_init(&pk, out, buf_write);
    msgpack_pack_map(&pk, 13 + (fault == F_UNKNOWN_KEY || fault == F_E || fault == F_TWICE) -
                              (fault == F_NO_CS));
    KEY("v"); msgpack_pack_uint64(&pk, 3);
    KEY("b"); msgpack_pack_bin_with_body(&pk, ANON, 16);
    KEY("s"); msgpack_pack_uint64(&pk, 1790000060000ull);
    KEY("d"); msgpack_pack_uint64(&pk, 0);
    KEY("a"); msgpack_pack_nil(&pk);
    if (fault == F_UNKNOWN_KEY) {
        KEY("zz"); msgpack_pack_array(&pk, 1); msgpack_pack_map(&pk, 0);
    }
    if (fault == F_E) {
        KEY("e"); msgpack_pack_array(&pk, 0);
    }
    KEY("i");
    msgpack_pack_bin(&pk, n * 16 + (fault == F_I_ODD));
    for (uint32_t k = 0; k < n * 16 + (fault == F_I_ODD); k++)
        msgpack_pack_bin_body(&pk, (const char *)&(uint8_t){ (uint8_t)(k * 7 + k / 16) }, 1);
    KEY("t");
    msgpack_pack_array(&pk, n);
    for (uint32_t k = 0; k < n; k++) {
        if (k == 0)
            fault == F_T_FIRST_NEG ? msgpack_pack_int64(&pk, -1) : msgpack_pack_uint64(&pk, 1000);
        else if (k == n - 1 && fault == F_T_BELOW)
            msgpack_pack_int64(&pk, -2000);
        else if (k == n - 1 && fault == F_T_OVER)
            msgpack_pack_uint64(&pk, UINT64_MAX - 500);
        else
            msgpack_pack_int64(&pk, k % 2 ? 3 : -1);
    }
    KEY("x");
    msgpack_pack_array(&pk, n);
    for (uint32_t k = 0; k < n; k++) {
        if (k == n - 1 && fault == F_X_INDEX)
            msgpack_pack_uint64(&pk, n);
        else if (k == n - 1 && fault == F_X_SHORT)
            msgpack_pack_bin_with_body(&pk, ANON, 15);
        else if (k == 1)
            msgpack_pack_bin_with_body(&pk, ANON, 16);
        else
            msgpack_pack_uint64(&pk, k - k % 2);
    }
    KEY("ns");
    msgpack_pack_array(&pk, fault == F_NS_LONG ? n + 1 : 2);
    for (uint32_t k = 0; k < (fault == F_NS_LONG ? n + 1 : 2); k++) {
        if (k == 1 && fault == F_NS_NOT_STR)
            msgpack_pack_uint64(&pk, 1);
        else if (k == 1 && fault == F_NS_BAD_NAME)
            msgpack_pack_str_with_body(&pk, "a b", 3);
        else
            k % 2 ? KEY("cli.run") : KEY("cli.exit");
    }
    KEY("n");
    msgpack_pack_array(&pk, n);
    for (uint32_t k = 0; k < n; k++)
        msgpack_pack_uint64(&pk, k == n - 1 && fault == F_N_INDEX ? 2 : k % 2);
    if (fault != F_NO_CS) {
        KEY("cs");
        msgpack_pack_array(&pk, 1);
        if (fault == F_CS_NOT_MAP) {
            msgpack_pack_array(&pk, 0);
        } else {
            msgpack_pack_map(&pk, 2);
            fault == F_CS_NO_APP ? KEY("ap") : KEY("app");
            KEY("demo");
            KEY("ci"); msgpack_pack_false(&pk);
        }
    }
    KEY("c");
    msgpack_pack_array(&pk, n);
    for (uint32_t k = 0; k < n; k++)
        msgpack_pack_uint64(&pk, k == n - 1 && fault == F_C_INDEX ? 1 : 0);
    KEY("p");
    uint32_t np = fault == F_P_SHORT ? n - 1 : n;
    msgpack_pack_array(&pk, np);
    for (uint32_t k = 0; k < np; k++) {
        if (k == np - 1 && fault == F_P_NOT_MAP) {
            msgpack_pack_nil(&pk);
            continue;
        }
        size_t len = k == np - 1 && fault == F_BIG_RECORD ? 1000 : pad;
        int n_s = k == np - 1 && fault == F_BIG_RECORD ? 4 : 1;
        msgpack_pack_map(&pk, 1 + (uint32_t)n_s);
        KEY("k"); msgpack_pack_uint64(&pk, k);
        for (int j = 0; j < n_s; j++) {
            char key[4] = { 's', (char)('0' + j), 0, 0 };
            KEY(key);
            msgpack_pack_str_with_body(&pk, big, len);
        }
    }
    if (fault == F_TWICE) {
        KEY("c");
        msgpack_pack_array(&pk, n);
        for (uint32_t k = 0; k < n; k++)
            msgpack_pack_uint64(&pk, 0);
    }
    if (fault == F_TRAILING)
        msgpack_pack_nil(&pk);
}

static int count_fn(void *ud, const tel_record *r)
{
    (void)r;
    ++*(size_t *)ud;
    return 0;
}

static int sum_fn(void *ud, const tel_record *r)
{
    *(size_t *)ud += r->raw_len;
    return 0;
}

static void test_hostile(const char *corpus)
{
    CHECK_GROUP("columns: every fault refuses the batch whole");
    tel_buf b = TEL_BUF_INIT;
    tel_batch_head h;
    size_t calls = 0;
    char name[160];

    build(&b, F_NONE, 6, 10);
    CHECK_EQ_INT("the batch without a fault decodes", tel__batch_decode(b.p, b.len, &h, count_fn, &calls), TEL_OK);
    CHECK_EQ_INT("all of it", calls, 6);
    for (int f = F_UNKNOWN_KEY; f < F_NFAULTS; f++) {
        build(&b, f, 6, 10);
        calls = 0;
        int rc = tel__batch_decode(b.p, b.len, &h, count_fn, &calls);
        snprintf(name, sizeof name, "%s: %s", fault_name[f],
                 f == F_UNKNOWN_KEY ? "skipped" : rc == TEL_ERR_CORRUPT ? tel_last_error() : "?");
        if (f == F_UNKNOWN_KEY) {
            CHECK(name, rc == TEL_OK && calls == 6);
            continue;
        }
        CHECK(name, rc == TEL_ERR_CORRUPT && calls == 0 && strchr(tel_last_error(), '\n') == NULL &&
                        strncmp(tel_last_error(), "batch: ", 7) == 0);
        if (corpus) {
            snprintf(name, sizeof name, "columns-%s", fault_slug[f]);
            write_seed(corpus, name, &b);
        }
    }

    build(&b, F_NONE, 6, 10);
    size_t cut_ok = 0;
    for (size_t len = 0; len < b.len; len++) {
        calls = 0;
        if (tel__batch_decode(b.p, len, &h, count_fn, &calls) != TEL_OK && calls == 0)
            cut_ok++;
    }
    CHECK("a batch cut anywhere is refused, and nothing of it handed out", cut_ok == b.len);

    CHECK_GROUP("columns: limits");
    build(&b, F_NONE, MAXN, 0);
    CHECK_EQ_INT("1000 events", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_OK);
    build(&b, F_NONE, MAXN + 1, 0);
    CHECK_EQ_INT("1001 events are too many", tel__batch_decode(b.p, b.len, &h, NULL, NULL), TEL_ERR_LIMIT);
    /* Records of about 590 bytes: the first count that goes over 512 KiB
     * of rebuilt records is refused, the one before it not. */
    uint32_t n = 850;
    size_t total = 0;
    for (;; n++) {
        build(&b, F_NONE, n + 1, 500);
        calls = 0;
        if (tel__batch_decode(b.p, b.len, &h, count_fn, &calls) != TEL_OK)
            break;
    }
    CHECK_EQ_INT("over 512 KiB of records is too large", tel__batch_decode(b.p, b.len, &h, NULL, NULL),
                 TEL_ERR_LIMIT);
    CHECK_EQ_INT("and nothing of it handed out", calls, 0);
    build(&b, F_NONE, n, 500);
    CHECK_EQ_INT("one event fewer is not", tel__batch_decode(b.p, b.len, &h, sum_fn, &total), TEL_OK);
    CHECK("and holds up to 512 KiB of records", total <= TEL_BATCH_MAX_BYTES && total + total / n > TEL_BATCH_MAX_BYTES);
    tel__buf_free(&b);
}

int main(int argc, char **argv)
{
    const char *corpus = argc == 3 && strcmp(argv[1], "--corpus") == 0 ? argv[2] : NULL;
    test_round_trip(corpus);
    test_spec_example();
    test_parts();
    test_hostile(corpus);
    return check_exit();
}
