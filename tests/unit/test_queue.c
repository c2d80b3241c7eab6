/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_queue.c - the LMDB queue alone: order, scans, deletes,
 * the caps and the dropped counter, purge, meta values, and what it does
 * with damaged or hostile files around it.
 *
 * Each group works in its own state directory under a private temporary
 * root, so one group's leftovers never explain another's result.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"

static const tel_ctx CTX = { .app = "queuetest" };

/* ------------------------------------------------------------- helpers */

static void setup_root(void)
{
    if (fx_setup("queue") != 0)
        exit(2);
    setenv("HOME", fx_root, 1);
}

/* A new, empty state directory named after the group using it. */
static const char *state(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fx_root, name);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        perror(path);
        exit(2);
    }
    return path;
}

static void qpath(char *out, size_t size, const char *state_dir, const char *file)
{
    if (file)
        snprintf(out, size, "%s/" TEL_QUEUE_DIR "/%s", state_dir, file);
    else
        snprintf(out, size, "%s/" TEL_QUEUE_DIR, state_dir);
}

/*
 * One encoded record holding n as property "n", at time ts, with `pad`
 * bytes of string padding spread over properties of at most 1 KiB (so a
 * test can make records of a chosen size).  Records with the same pad and
 * an n of the same msgpack width have the same length.
 */
typedef struct rec {
    uint8_t b[TEL_MAX_EVENT];
    size_t len;
    uint64_t ts;
} rec;

static char padding[TEL_MAX_STRING + 1];

static void mkrec(rec *r, int64_t n, uint64_t ts, size_t pad)
{
    tel_prop props[5];
    size_t np = 0;
    static const char *const keys[] = { "pad0", "pad1", "pad2", "pad3" };
    props[np++] = (tel_prop)TEL_INT("n", n);
    for (size_t k = 0; pad > 0 && k < 4; k++) {
        size_t chunk = pad > TEL_MAX_STRING ? TEL_MAX_STRING : pad;
        props[np++] = (tel_prop)TEL_STR(keys[k], padding + TEL_MAX_STRING - chunk);
        pad -= chunk;
    }
    tel_event_in ev;
    memset(&ev, 0, sizeof ev);
    tel__uuid4(ev.id);
    tel__uuid4(ev.exec);
    ev.ts_ms = ts;
    ev.name = "q.test";
    ev.props = props;
    ev.nprops = np;
    ev.ctx = &CTX;
    if (tel__record_encode(&ev, r->b, sizeof r->b, &r->len) != TEL_OK) {
        fprintf(stderr, "mkrec: %s\n", tel_last_error());
        exit(2);
    }
    r->ts = ts;
}

/* Appends records n = first .. first+count-1 one transaction each. */
static int append_each(tel_queue *q, int64_t first, int count, uint64_t ts, size_t pad)
{
    rec r;
    for (int i = 0; i < count; i++) {
        mkrec(&r, first + i, ts, pad);
        tel_rec tr = { r.b, r.len, r.ts };
        int rc = tel__queue_append(q, &tr, 1);
        if (rc != TEL_OK)
            return rc;
    }
    return TEL_OK;
}

/* Appends records n = first .. first+count-1 in one transaction. */
static int append_batch(tel_queue *q, int64_t first, int count, uint64_t ts, size_t pad)
{
    rec *rs = malloc((size_t)count * sizeof *rs);
    tel_rec *trs = malloc((size_t)count * sizeof *trs);
    if (!rs || !trs) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int i = 0; i < count; i++) {
        mkrec(&rs[i], first + i, ts, pad);
        trs[i] = (tel_rec){ rs[i].b, rs[i].len, rs[i].ts };
    }
    int rc = tel__queue_append(q, trs, (size_t)count);
    free(rs);
    free(trs);
    return rc;
}

/* What a scan returned, in order. */
typedef struct scanned {
    uint64_t seq[4096];
    int64_t n[4096];
    size_t bytes[4096];
    size_t count;
    size_t stop_after;   /* the callback asks to stop after this many (0: never) */
    int bad;             /* a record did not decode or had no n */
} scanned;

static int take(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    scanned *s = ud;
    tel_record r;
    int64_t n = -1;
    if (tel__record_decode(&r, data, len) == TEL_OK && r.nprops >= 1 && r.keys[0].len == 1 &&
        r.keys[0].p[0] == 'n' && r.vals[0].type == TEL_T_INT)
        n = r.vals[0].v.i;
    else
        s->bad = 1;
    if (s->count < 4096) {
        s->seq[s->count] = seq;
        s->n[s->count] = n;
        s->bytes[s->count] = len;
    }
    s->count++;
    return s->stop_after && s->count >= s->stop_after;
}

static int scan(tel_queue *q, uint64_t from, size_t max_count, size_t max_bytes, scanned *s)
{
    size_t stop = s->stop_after;
    memset(s, 0, sizeof *s);
    s->stop_after = stop;
    return tel__queue_scan(q, from, max_count, max_bytes, take, s);
}

/* n values of the whole queue as "a,b,c" for readable comparisons. */
static const char *ns(tel_queue *q)
{
    static char out[8192];
    static scanned s;
    s.stop_after = 0;
    out[0] = '\0';
    if (scan(q, 0, SIZE_MAX, SIZE_MAX, &s) != TEL_OK)
        return "(scan failed)";
    size_t used = 0;
    for (size_t i = 0; i < s.count && i < 4096 && used < sizeof out - 32; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%lld", i ? "," : "", (long long)s.n[i]);
    return out;
}

#define CHECK_NS(name, q, want)                                            \
    do {                                                                   \
        const char *got_ = ns(q);                                          \
        if (strcmp(got_, want) != 0)                                       \
            printf("# %s: got [%s], want [%s]\n", name, got_, want);       \
        CHECK(name, strcmp(got_, want) == 0);                              \
    } while (0)

static tel_queue_stats stats(tel_queue *q)
{
    tel_queue_stats s;
    if (tel__queue_stats(q, &s) != TEL_OK)
        memset(&s, 0xff, sizeof s);
    return s;
}

static tel_queue *open_q(const char *state_dir, const tel_caps *caps)
{
    tel_queue *q = NULL;
    int rc = tel__queue_open(&q, state_dir, caps, TEL_Q_CREATE);
    if (rc != TEL_OK)
        printf("# open %s: %s: %s\n", state_dir, tel_strerror(rc), tel_last_error());
    return q;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    if (!b)
        return -1;
    *out = b;
    *len = n;
    return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    int ok = write(fd, data, len) == (ssize_t)len;
    close(fd);
    return ok ? 0 : -1;
}

static int copy_file(const char *from, const char *to)
{
    uint8_t *b;
    size_t n;
    if (read_file(from, &b, &n) != 0)
        return -1;
    int rc = write_file(to, b, n);
    free(b);
    return rc;
}

static int same_content(const char *path, const uint8_t *want, size_t len)
{
    uint8_t *b;
    size_t n;
    if (read_file(path, &b, &n) != 0)
        return 0;
    int same = n == len && memcmp(b, want, n) == 0;
    free(b);
    return same;
}

/* The name of a file in the queue dir containing `part`, or NULL. */
static const char *find_in_queue(const char *state_dir, const char *part)
{
    static char found[1024];
    char dir[600];
    qpath(dir, sizeof dir, state_dir, NULL);
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    struct dirent *e;
    const char *res = NULL;
    while ((e = readdir(d)))
        if (strstr(e->d_name, part)) {
            snprintf(found, sizeof found, "%s/%s", dir, e->d_name);
            res = found;
            break;
        }
    closedir(d);
    return res;
}

/* ------------------------------------------------------------ the tests */

static void test_open_modes(void)
{
    CHECK_GROUP("open");
    const char *sd = state("open");
    tel_queue *q = NULL;
    CHECK_EQ_INT("no queue, no CREATE: NOTFOUND", tel__queue_open(&q, sd, NULL, 0), TEL_ERR_NOTFOUND);
    CHECK("and *out is NULL", q == NULL);
    CHECK_EQ_INT("no queue, read-only: NOTFOUND", tel__queue_open(&q, sd, NULL, TEL_Q_READONLY),
                 TEL_ERR_NOTFOUND);
    char dir[600];
    qpath(dir, sizeof dir, sd, NULL);
    struct stat st;
    CHECK("read-only open creates no directory", lstat(dir, &st) != 0 && errno == ENOENT);

    mode_t old = umask(0);
    q = open_q(sd, NULL);
    umask(old);
    CHECK("CREATE makes a queue", q != NULL);
    if (!q)
        return;
    CHECK("the queue dir is the state dir's telemetry/", strcmp(tel__queue_dir(q), dir) == 0);
    CHECK("with umask 0 the directory is 0700", lstat(dir, &st) == 0 && (st.st_mode & 07777) == 0700);
    char data[700];
    qpath(data, sizeof data, sd, "data.mdb");
    CHECK("with umask 0 data.mdb is 0600", lstat(data, &st) == 0 && (st.st_mode & 07777) == 0600);
    tel_queue_stats s = stats(q);
    CHECK("a new queue is empty", s.count == 0 && s.bytes == 0 && s.dropped == 0 && s.oldest_ts_ms == 0);
    tel__queue_close(q);

    tel_queue *ro = NULL;
    CHECK_EQ_INT("read-only open of an existing queue", tel__queue_open(&ro, sd, NULL, TEL_Q_READONLY), TEL_OK);
    if (ro) {
        rec r;
        mkrec(&r, 1, tel__now_ms(), 0);
        tel_rec tr = { r.b, r.len, r.ts };
        CHECK_EQ_INT("read-only: append refused", tel__queue_append(ro, &tr, 1), TEL_ERR_STATE);
        CHECK_EQ_INT("read-only: delete refused", tel__queue_delete(ro, 1, 10, 0), TEL_ERR_STATE);
        CHECK_EQ_INT("read-only: purge refused", tel__queue_purge(ro), TEL_ERR_STATE);
        CHECK_EQ_INT("read-only: meta put refused", tel__queue_meta_put(ro, "k", "v", 1), TEL_ERR_STATE);
        CHECK_EQ_INT("read-only: add_dropped refused", tel__queue_add_dropped(ro, 1), TEL_ERR_STATE);
        tel__queue_close(ro);
    }
    tel__queue_close(NULL);
    CHECK("close(NULL) is harmless", 1);
}

static void test_fifo(void)
{
    CHECK_GROUP("fifo");
    tel_queue *q = open_q(state("fifo"), NULL);
    if (!q)
        { CHECK("open", 0); return; }
    uint64_t now = tel__now_ms();
    int ok = append_each(q, 0, 3, now, 0) == TEL_OK && append_batch(q, 3, 4, now, 0) == TEL_OK &&
             append_each(q, 7, 3, now, 0) == TEL_OK;
    CHECK("single and batched appends succeed", ok);
    CHECK_NS("records come back in append order", q, "0,1,2,3,4,5,6,7,8,9");
    CHECK_EQ_INT("an empty append is fine", tel__queue_append(q, NULL, 0), TEL_OK);

    scanned s = { .stop_after = 0 };
    scan(q, 0, SIZE_MAX, SIZE_MAX, &s);
    int increasing = 1;
    size_t total = 0;
    for (size_t i = 0; i < s.count; i++) {
        if (i && s.seq[i] <= s.seq[i - 1])
            increasing = 0;
        total += s.bytes[i];
    }
    CHECK("sequence numbers increase", increasing);
    CHECK("every record decodes", !s.bad);
    tel_queue_stats st = stats(q);
    CHECK_EQ_INT("stats count", st.count, 10);
    CHECK_EQ_INT("stats bytes is the sum of record sizes", st.bytes, total);
    CHECK_EQ_INT("stats first_seq", st.first_seq, s.seq[0]);
    CHECK_EQ_INT("stats last_seq", st.last_seq, s.seq[9]);
    CHECK_EQ_INT("stats oldest_ts_ms", st.oldest_ts_ms, now);
    CHECK_EQ_INT("nothing dropped", st.dropped, 0);

    /* Order survives reopening: it is the key order on disk, not memory. */
    char sd[512];
    snprintf(sd, sizeof sd, "%s", state("fifo"));
    tel__queue_close(q);
    q = open_q(sd, NULL);
    if (!q)
        { CHECK("reopen", 0); return; }
    append_each(q, 10, 2, now, 0);
    CHECK_NS("order holds across close and open", q, "0,1,2,3,4,5,6,7,8,9,10,11");

    /* A "next" behind the tree (a meta page restored from an old copy)
     * must never overwrite or reorder what is there. */
    uint8_t behind[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
    SETUP(tel__queue_meta_put(q, TEL_META_NEXT, behind, sizeof behind));
    CHECK_EQ_INT("a burst after \"next\" fell behind is stored", append_batch(q, 12, 3, now, 0), TEL_OK);
    SETUP(tel__queue_meta_put(q, TEL_META_NEXT, behind, sizeof behind));
    CHECK_EQ_INT("and a single event", append_each(q, 15, 1, now, 0), TEL_OK);
    CHECK_NS("after the last record, nothing overwritten", q, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15");
    CHECK_EQ_INT("all sixteen are there", stats(q).count, 16);
    tel__queue_close(q);
}

static void test_scan_limits(void)
{
    CHECK_GROUP("scan");
    tel_queue *q = open_q(state("scan"), NULL);
    if (!q)
        { CHECK("open", 0); return; }
    append_batch(q, 0, 10, tel__now_ms(), 100);
    scanned s = { .stop_after = 0 };

    CHECK_EQ_INT("scan with max_count 3", scan(q, 0, 3, SIZE_MAX, &s), TEL_OK);
    CHECK("gives the first 3", s.count == 3 && s.n[0] == 0 && s.n[2] == 2);
    uint64_t next = s.seq[2] + 1;
    scan(q, next, 3, SIZE_MAX, &s);
    CHECK("from_seq continues where the last page ended", s.count == 3 && s.n[0] == 3 && s.n[2] == 5);
    size_t one = s.bytes[0];

    scan(q, 0, SIZE_MAX, one * 2 + one / 2, &s);
    CHECK_EQ_INT("a byte limit of 2.5 records gives 2", s.count, 2);
    scan(q, 0, SIZE_MAX, one * 3, &s);
    CHECK_EQ_INT("a byte limit of exactly 3 records gives 3", s.count, 3);
    scan(q, 0, SIZE_MAX, 1, &s);
    CHECK_EQ_INT("a byte limit below one record still gives one", s.count, 1);
    scan(q, 0, SIZE_MAX, 0, &s);
    CHECK_EQ_INT("a byte limit of 0 still gives one", s.count, 1);
    scan(q, 0, 0, SIZE_MAX, &s);
    CHECK_EQ_INT("a count limit of 0 gives none", s.count, 0);

    s.stop_after = 4;
    scan(q, 0, SIZE_MAX, SIZE_MAX, &s);
    CHECK_EQ_INT("the callback can stop the scan", s.count, 4);
    s.stop_after = 0;

    tel_queue_stats st = stats(q);
    scan(q, st.last_seq + 1, SIZE_MAX, SIZE_MAX, &s);
    CHECK_EQ_INT("from_seq past the end gives none", s.count, 0);
    scan(q, st.last_seq, SIZE_MAX, SIZE_MAX, &s);
    CHECK("from_seq = last gives the last", s.count == 1 && s.n[0] == 9);
    tel__queue_close(q);
}

static void test_delete(void)
{
    CHECK_GROUP("delete");
    tel_queue *q = open_q(state("delete"), NULL);
    if (!q)
        { CHECK("open", 0); return; }
    append_batch(q, 0, 10, tel__now_ms(), 0);
    tel_queue_stats st = stats(q);
    uint64_t f = st.first_seq;
    size_t one = st.bytes / 10;

    CHECK_EQ_INT("delete a middle range", tel__queue_delete(q, f + 3, f + 5, 0), TEL_OK);
    CHECK_NS("the range is gone, the rest kept in order", q, "0,1,2,6,7,8,9");
    CHECK_EQ_INT("bytes follow", stats(q).bytes, one * 7);
    CHECK_EQ_INT("deleting the same range again is fine", tel__queue_delete(q, f + 3, f + 5, 0), TEL_OK);
    CHECK_EQ_INT("a range half missing", tel__queue_delete(q, f + 4, f + 6, 0), TEL_OK);
    CHECK_NS("deletes what is there", q, "0,1,2,7,8,9");
    CHECK_EQ_INT("a range past the end", tel__queue_delete(q, f + 100, f + 200, 0), TEL_OK);
    CHECK_EQ_INT("a reversed range", tel__queue_delete(q, f + 2, f + 1, 0), TEL_OK);
    CHECK_NS("changes nothing", q, "0,1,2,7,8,9");
    CHECK_EQ_INT("a single record", tel__queue_delete(q, f, f, 0), TEL_OK);
    CHECK_NS("first gone", q, "1,2,7,8,9");
    CHECK_EQ_INT("stats first_seq moves", stats(q).first_seq, f + 1);
    CHECK_EQ_INT("delete everything", tel__queue_delete(q, 0, UINT64_MAX, 0), TEL_OK);
    st = stats(q);
    CHECK("empty: count 0, bytes 0, oldest 0", st.count == 0 && st.bytes == 0 && st.oldest_ts_ms == 0);
    append_each(q, 20, 1, tel__now_ms(), 0);
    CHECK("sequence numbers go on after deleting everything", stats(q).first_seq > f + 9);
    tel__queue_close(q);
}

static void test_caps(void)
{
    CHECK_GROUP("caps");
    uint64_t now = tel__now_ms();

    /* max_events */
    const char *sd = state("cap-events");
    char sd_events[512];
    snprintf(sd_events, sizeof sd_events, "%s", sd);
    tel_caps c5 = { 5, 0, 0, 0 };
    tel_queue *q = open_q(sd_events, &c5);
    if (!q)
        { CHECK("open", 0); return; }
    CHECK_EQ_INT("appending 10 with a cap of 5", append_each(q, 0, 10, now, 0), TEL_OK);
    CHECK_NS("keeps the 5 newest", q, "5,6,7,8,9");
    CHECK_EQ_INT("and counts 5 dropped", stats(q).dropped, 5);
    tel__queue_close(q);

    /* The dropped counter is on disk, so the next batch reports it even
     * after the process that dropped them is gone. */
    CHECK_GROUP("dropped");
    q = open_q(sd_events, NULL);
    if (!q)
        { CHECK("reopen", 0); return; }
    CHECK_EQ_INT("dropped survives close and open", stats(q).dropped, 5);
    CHECK_EQ_INT("delete with dropped_acked 3", tel__queue_delete(q, 0, 0, 3), TEL_OK);
    CHECK_EQ_INT("leaves 2", stats(q).dropped, 2);
    CHECK_NS("and deleted no record outside the range", q, "5,6,7,8,9");
    CHECK_EQ_INT("add_dropped 4", tel__queue_add_dropped(q, 4), TEL_OK);
    CHECK_EQ_INT("gives 6", stats(q).dropped, 6);
    CHECK_EQ_INT("acking more than was dropped", tel__queue_delete(q, 0, 0, 100), TEL_OK);
    CHECK_EQ_INT("stops at 0", stats(q).dropped, 0);
    tel__queue_close(q);

    /* max_bytes: every record the same size, the cap 3.5 of them. */
    CHECK_GROUP("caps");
    rec r;
    mkrec(&r, 0, now, 200);
    tel_caps cb = { 0, r.len * 3 + r.len / 2, 0, 0 };
    q = open_q(state("cap-bytes"), &cb);
    if (!q)
        { CHECK("open", 0); return; }
    CHECK_EQ_INT("appending 10 with a byte cap of 3.5 records", append_each(q, 0, 10, now, 200), TEL_OK);
    CHECK_NS("keeps the 3 newest", q, "7,8,9");
    tel_queue_stats st = stats(q);
    CHECK_EQ_INT("dropped 7", st.dropped, 7);
    CHECK("bytes within the cap", st.bytes <= cb.max_bytes && st.bytes == 3 * r.len);
    tel__queue_close(q);

    /* max_age: a record older than the cap goes at the next append. */
    tel_caps ca = { 0, 0, 3600 * 1000, 0 };
    q = open_q(state("cap-age"), &ca);
    if (!q) { CHECK("open", 0); return; }
    append_each(q, 0, 3, now - 7200 * 1000, 0);
    append_each(q, 3, 2, now - 1000, 0);
    CHECK_NS("old records are gone after the appends that follow them", q, "3,4");
    tel__queue_close(q);
    /* The same with the old records appended under a long age cap, then
     * the queue opened with a short one, as after a host changed caps. */
    tel_caps long_age = { 0, 0, 365ull * 24 * 3600 * 1000, 0 };
    q = open_q(state("cap-age2"), &long_age);
    if (!q)
        { CHECK("open", 0); return; }
    append_each(q, 0, 3, now - 7200 * 1000, 0);
    append_each(q, 3, 2, now - 1000, 0);
    CHECK_NS("under a long age cap old records are kept", q, "0,1,2,3,4");
    tel__queue_close(q);
    char sd_age[512];
    snprintf(sd_age, sizeof sd_age, "%s/cap-age2", fx_root);
    q = open_q(sd_age, &ca);
    if (!q)
        { CHECK("open", 0); return; }
    CHECK_NS("opening with a short age cap evicts nothing by itself", q, "0,1,2,3,4");
    CHECK_EQ_INT("the next append", append_each(q, 5, 1, now, 0), TEL_OK);
    CHECK_NS("evicts the records older than the cap", q, "3,4,5");
    CHECK_EQ_INT("and counts them dropped", stats(q).dropped, 3);
    CHECK_EQ_INT("oldest_ts_ms is now the oldest kept", stats(q).oldest_ts_ms, now - 1000);
    tel__queue_close(q);

    /* A burst larger than the cap keeps its own newest events. */
    q = open_q(state("cap-burst"), &c5);
    if (!q)
        { CHECK("open", 0); return; }
    append_each(q, 0, 2, now, 0);
    CHECK_EQ_INT("a burst of 12 with a cap of 5", append_batch(q, 100, 12, now, 0), TEL_OK);
    CHECK_NS("keeps the burst's 5 newest", q, "107,108,109,110,111");
    CHECK_EQ_INT("dropped: 2 old + 7 of the burst", stats(q).dropped, 9);
    tel__queue_close(q);

    q = open_q(state("cap-burst-bytes"), &cb);
    if (!q)
        { CHECK("open", 0); return; }
    CHECK_EQ_INT("a burst of 10 over the byte cap", append_batch(q, 0, 10, now, 200), TEL_OK);
    CHECK_NS("keeps the burst's 3 newest", q, "7,8,9");
    CHECK_EQ_INT("dropped 7", stats(q).dropped, 7);
    tel__queue_close(q);

    /* A single record larger than the byte cap: the queue never refuses
     * for being full, so it has to decide; either it keeps that record
     * alone or keeps nothing, but never more than the cap allows plus
     * that record. */
    rec small;
    mkrec(&small, 0, now, 0);
    tel_caps tiny = { 0, small.len, 0, 0 };
    q = open_q(state("cap-tiny"), &tiny);
    if (!q)
        { CHECK("open", 0); return; }
    append_each(q, 0, 3, now, 0);
    CHECK_NS("a byte cap of one record keeps one", q, "2");
    CHECK_EQ_INT("an append of a record over the cap succeeds", append_each(q, 3, 1, now, 500), TEL_OK);
    st = stats(q);
    CHECK("and the queue is not over the cap", st.bytes <= tiny.max_bytes);
    tel__queue_close(q);
}

static void test_purge(void)
{
    CHECK_GROUP("purge");
    tel_queue *q = open_q(state("purge"), NULL);
    if (!q)
        { CHECK("open", 0); return; }
    append_each(q, 0, 5, tel__now_ms(), 0);
    SETUP(tel__queue_add_dropped(q, 3));
    SETUP(tel__queue_meta_put(q, "pending", "batch", 5));
    uint64_t last = stats(q).last_seq;
    CHECK_EQ_INT("purge", tel__queue_purge(q), TEL_OK);
    tel_queue_stats st = stats(q);
    CHECK("leaves no record, no bytes, nothing dropped", st.count == 0 && st.bytes == 0 && st.dropped == 0);
    char buf[16];
    size_t len;
    CHECK_EQ_INT("the pending batch is forgotten", tel__queue_meta_get(q, "pending", buf, sizeof buf, &len),
                 TEL_ERR_NOTFOUND);
    append_each(q, 10, 1, tel__now_ms(), 0);
    CHECK("sequence numbers keep increasing after a purge", stats(q).first_seq > last);
    tel__queue_close(q);
    char sd[512];
    snprintf(sd, sizeof sd, "%s/purge", fx_root);
    q = open_q(sd, NULL);
    if (!q)
        { CHECK("reopen", 0); return; }
    SETUP(tel__queue_purge(q));
    SETUP(tel__queue_purge(q));
    append_each(q, 11, 1, tel__now_ms(), 0);
    CHECK("even across reopen and repeated purges", stats(q).first_seq > last + 1);
    tel__queue_close(q);
}

static void test_meta(void)
{
    CHECK_GROUP("meta");
    tel_queue *q = open_q(state("meta"), NULL);
    if (!q)
        { CHECK("open", 0); return; }
    char buf[64];
    size_t len = 999;
    CHECK_EQ_INT("get of a missing key", tel__queue_meta_get(q, "endpoint", buf, sizeof buf, &len),
                 TEL_ERR_NOTFOUND);
    CHECK_EQ_INT("put", tel__queue_meta_put(q, "endpoint", "https://a.example/v1", 20), TEL_OK);
    memset(buf, 0, sizeof buf);
    CHECK_EQ_INT("get", tel__queue_meta_get(q, "endpoint", buf, sizeof buf, &len), TEL_OK);
    CHECK("returns the value and its length", len == 20 && memcmp(buf, "https://a.example/v1", 20) == 0);
    memset(buf, 'z', sizeof buf);
    CHECK_EQ_INT("get into a small buffer", tel__queue_meta_get(q, "endpoint", buf, 5, &len), TEL_OK);
    CHECK("copies only what fits and tells the full length",
          len == 20 && memcmp(buf, "https", 5) == 0 && buf[5] == 'z');
    CHECK_EQ_INT("overwrite", tel__queue_meta_put(q, "endpoint", "x", 1), TEL_OK);
    tel__queue_meta_get(q, "endpoint", buf, sizeof buf, &len);
    CHECK("the new value replaces the old", len == 1 && buf[0] == 'x');
    CHECK_EQ_INT("a binary value with NULs", tel__queue_meta_put(q, "bin", "\0\1\0", 3), TEL_OK);
    tel__queue_meta_get(q, "bin", buf, sizeof buf, &len);
    CHECK("comes back whole", len == 3 && memcmp(buf, "\0\1\0", 3) == 0);
    CHECK_EQ_INT("put NULL deletes", tel__queue_meta_put(q, "endpoint", NULL, 0), TEL_OK);
    CHECK_EQ_INT("then get is NOTFOUND", tel__queue_meta_get(q, "endpoint", buf, sizeof buf, &len),
                 TEL_ERR_NOTFOUND);
    CHECK_EQ_INT("deleting a missing key is fine", tel__queue_meta_put(q, "never", NULL, 0), TEL_OK);
    append_each(q, 0, 2, tel__now_ms(), 0);
    CHECK_NS("meta values are not events", q, "0,1");
    tel__queue_close(q);
    char sd[512];
    snprintf(sd, sizeof sd, "%s/meta", fx_root);
    q = open_q(sd, NULL);
    if (!q)
        { CHECK("reopen", 0); return; }
    CHECK_EQ_INT("values persist", tel__queue_meta_get(q, "bin", buf, sizeof buf, &len), TEL_OK);
    tel__queue_close(q);
}

/*
 * A queue filled under caps larger than the default, then opened by a
 * program with the defaults (tel emit after a host raised its caps): the
 * map the second opener asks for is smaller than the data, so LMDB sizes
 * it to the data and the next append can only go through by evicting.
 * This is the one way the MDB_MAP_FULL recovery is reachable from outside:
 * queue.c sizes the map from the caps, so a single opener never fills it.
 */
static void test_map_full(void)
{
    CHECK_GROUP("map full");
    char sd[512];
    snprintf(sd, sizeof sd, "%s", state("mapfull"));
    tel_caps big = { 1000000, 256u * 1024 * 1024, 0, 0 };
    tel_queue *q = open_q(sd, &big);
    if (!q)
        { CHECK("open", 0); return; }
    /* Records of ~3 KiB each take a 4 KiB overflow page: 18,000 of them
     * make a data file larger than the 64 MiB map of the defaults. */
    int total = 0, ok = 1;
    uint64_t now = tel__now_ms();
    for (int b = 0; b < 18 && ok; b++, total += 1000)
        ok = append_batch(q, total, 1000, now, 3000) == TEL_OK;
    CHECK("filling 18,000 large records under big caps", ok);
    tel__queue_close(q);
    char data[700];
    qpath(data, sizeof data, sd, "data.mdb");
    struct stat st;
    int reached = lstat(data, &st) == 0 && (uint64_t)st.st_size > 64ull * 1024 * 1024;
    if (!reached) {
        printf("# data.mdb is %lld bytes, not over the default map: MAP_FULL not reached, skipped\n",
               (long long)st.st_size);
        return;
    }
    printf("# data.mdb is %lld MiB\n", (long long)(st.st_size >> 20));
    q = open_q(sd, NULL);
    CHECK("opening it with the default caps", q != NULL);
    if (!q)
        return;
    int rc = append_each(q, 100000, 1, now, 0);
    if (rc != TEL_OK)
        printf("# append: %s: %s\n", tel_strerror(rc), tel_last_error());
    CHECK_EQ_INT("an append under the default caps succeeds", rc, TEL_OK);
    tel_queue_stats s = stats(q);
    CHECK("and the queue is back within the default caps",
          s.count <= TEL_CAPS_DEFAULT_EVENTS && s.bytes <= TEL_CAPS_DEFAULT_BYTES);
    scanned sc = { .stop_after = 0 };
    tel__queue_scan(q, s.last_seq, 1, SIZE_MAX, take, &sc);
    CHECK("the new record is the newest", sc.count == 1 && sc.n[0] == 100000);
    CHECK_EQ_INT("a second append", append_each(q, 100001, 1, now, 0), TEL_OK);
    tel__queue_close(q);
}

/*
 * The other side of the same coin: a long-lived opener with the default
 * map while another process (a host with big caps) grows the file past
 * that map.  LMDB then refuses the first's transactions with
 * MDB_MAP_RESIZED until it adopts the new size.  The first opener runs in
 * a child so that each LMDB environment lives in its own process.
 */
static void test_map_resized(void)
{
    CHECK_GROUP("map resized");
    char sd[512];
    snprintf(sd, sizeof sd, "%s", state("mapresized"));
    tel_queue *q = open_q(sd, NULL);
    if (!q) { CHECK("open", 0); return; }
    tel__queue_close(q);

    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0) { CHECK("pipe", 0); return; }
    pid_t pid = fork();
    if (pid == 0) {
        close(go[1]);
        close(ready[0]);
        tel_queue *small = NULL;
        if (tel__queue_open(&small, sd, NULL, TEL_Q_CREATE) != TEL_OK)
            _exit(20);
        if (write(ready[1], "r", 1) != 1)
            _exit(21);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(22);
        int rc = append_each(small, 500000, 1, tel__now_ms(), 0);
        if (rc != TEL_OK)
            printf("# child append: %s: %s\n", tel_strerror(rc), tel_last_error());
        tel__queue_close(small);
        _exit(rc == TEL_OK ? 0 : 23);
    }
    close(go[0]);
    close(ready[1]);
    char c;
    int started = read(ready[0], &c, 1) == 1;
    CHECK("a long-lived opener with the default caps is ready", started);
    tel_caps big = { 1000000, 256u * 1024 * 1024, 0, 0 };
    q = open_q(sd, &big);
    int ok = q != NULL;
    uint64_t now = tel__now_ms();
    for (int b = 0; b < 18 && ok; b++)
        ok = append_batch(q, b * 1000, 1000, now, 3000) == TEL_OK;
    CHECK("meanwhile a big-caps host grows the file past its map", ok);
    tel__queue_close(q);
    if (write(go[1], "g", 1) != 1)
        CHECK("signal", 0);
    close(go[1]);
    close(ready[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK("the long-lived opener's next append succeeds", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_corrupt(void)
{
    CHECK_GROUP("corrupt");
    uint8_t junk[3 * 4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7919u >> 3 ^ i);

    /* Random bytes where data.mdb should be. */
    char sd[512], dir[600], data[700], lock[700];
    snprintf(sd, sizeof sd, "%s", state("corrupt-random"));
    qpath(dir, sizeof dir, sd, NULL);
    qpath(data, sizeof data, sd, "data.mdb");
    qpath(lock, sizeof lock, sd, "lock.mdb");
    mkdir(dir, 0700);
    write_file(data, junk, sizeof junk);
    tel_queue *ro = NULL;
    CHECK("read-only open of a corrupt file fails", tel__queue_open(&ro, sd, NULL, TEL_Q_READONLY) < 0);
    CHECK("and leaves it alone", same_content(data, junk, sizeof junk) && !find_in_queue(sd, ".corrupt-"));
    tel_queue *q = open_q(sd, NULL);
    CHECK("random data.mdb: open succeeds", q != NULL);
    const char *aside = find_in_queue(sd, "data.mdb.corrupt-");
    CHECK("the bad file is kept as data.mdb.corrupt-*", aside && same_content(aside, junk, sizeof junk));
    if (q) {
        CHECK_EQ_INT("the fresh queue is empty", stats(q).count, 0);
        CHECK_EQ_INT("and takes appends", append_each(q, 0, 2, tel__now_ms(), 0), TEL_OK);
        CHECK_NS("which read back", q, "0,1");
        tel__queue_close(q);
    }

    /* A valid queue cut short: LMDB would fault reading past the end. */
    snprintf(sd, sizeof sd, "%s", state("corrupt-truncated"));
    qpath(data, sizeof data, sd, "data.mdb");
    q = open_q(sd, NULL);
    if (!q)
        { CHECK("open", 0); return; }
    append_batch(q, 0, 300, tel__now_ms(), 1000);
    tel__queue_close(q);
    struct stat st;
    lstat(data, &st);
    CHECK("truncate to half", truncate(data, st.st_size / 2) == 0);
    q = open_q(sd, NULL);
    CHECK("truncated data.mdb: open succeeds", q != NULL);
    CHECK("and the truncated file is kept aside", find_in_queue(sd, "data.mdb.corrupt-") != NULL);
    if (q) {
        CHECK_EQ_INT("the fresh queue takes appends", append_each(q, 0, 1, tel__now_ms(), 0), TEL_OK);
        tel__queue_close(q);
    }

    /* Zero length is what a killed creator can leave: LMDB initialises it. */
    snprintf(sd, sizeof sd, "%s", state("corrupt-empty"));
    qpath(dir, sizeof dir, sd, NULL);
    qpath(data, sizeof data, sd, "data.mdb");
    mkdir(dir, 0700);
    write_file(data, "", 0);
    q = open_q(sd, NULL);
    CHECK("zero-length data.mdb: open succeeds", q != NULL);
    if (q) {
        CHECK_EQ_INT("and takes appends", append_each(q, 0, 1, tel__now_ms(), 0), TEL_OK);
        tel__queue_close(q);
    }

    /* A garbage lock file holds no events: the data must survive it. */
    snprintf(sd, sizeof sd, "%s", state("corrupt-lock"));
    qpath(data, sizeof data, sd, "data.mdb");
    qpath(lock, sizeof lock, sd, "lock.mdb");
    q = open_q(sd, NULL);
    if (!q)
        { CHECK("open", 0); return; }
    append_each(q, 0, 3, tel__now_ms(), 0);
    tel__queue_close(q);
    write_file(lock, junk, sizeof junk);
    q = open_q(sd, NULL);
    CHECK("random lock.mdb: open succeeds", q != NULL);
    if (q) {
        CHECK_NS("and the events are still there", q, "0,1,2");
        CHECK("nothing was moved aside", !find_in_queue(sd, ".corrupt-"));
        CHECK_EQ_INT("appends work", append_each(q, 3, 1, tel__now_ms(), 0), TEL_OK);
        tel__queue_close(q);
    }

    /* A record that does not decode is still delivered by scan (tel-sync
     * decides), and counts as the oldest for the age cap. */
    snprintf(sd, sizeof sd, "%s", state("corrupt-record"));
    q = open_q(sd, NULL);
    if (!q)
        { CHECK("open", 0); return; }
    tel_rec garbage = { (const uint8_t *)"\xc1\xc1\xc1", 3, tel__now_ms() };
    CHECK_EQ_INT("the queue stores bytes it cannot decode", tel__queue_append(q, &garbage, 1), TEL_OK);
    CHECK_EQ_INT("and the next append", append_each(q, 0, 1, tel__now_ms(), 0), TEL_OK);
    CHECK_NS("evicts them as too old", q, "0");
    tel__queue_close(q);
}

static void test_symlinks(void)
{
    CHECK_GROUP("symlinks");
    /* A real queue elsewhere, whose files a planted link points at. */
    char victim[512], vdata[700], vlock[700];
    snprintf(victim, sizeof victim, "%s", state("victim"));
    tel_queue *q = open_q(victim, NULL);
    if (!q)
        { CHECK("open", 0); return; }
    append_each(q, 0, 3, tel__now_ms(), 0);
    tel__queue_close(q);
    char target_data[600], target_lock[600];
    qpath(vdata, sizeof vdata, victim, "data.mdb");
    qpath(vlock, sizeof vlock, victim, "lock.mdb");
    snprintf(target_data, sizeof target_data, "%s/elsewhere-data.mdb", fx_root);
    snprintf(target_lock, sizeof target_lock, "%s/elsewhere-lock", fx_root);
    copy_file(vdata, target_data);
    static const char lock_text[] = "not yours to write\n";
    write_file(target_lock, lock_text, sizeof lock_text - 1);
    uint8_t *before;
    size_t before_len;
    if (read_file(target_data, &before, &before_len) != 0)
        { CHECK("read target", 0); return; }

    char sd[512], dir[600], data[700], lock[700];
    snprintf(sd, sizeof sd, "%s", state("symlink-data"));
    qpath(dir, sizeof dir, sd, NULL);
    qpath(data, sizeof data, sd, "data.mdb");
    mkdir(dir, 0700);
    CHECK("plant data.mdb -> a valid queue file elsewhere", symlink(target_data, data) == 0);
    q = open_q(sd, NULL);
    CHECK("open succeeds", q != NULL);
    if (q) {
        append_each(q, 100, 2, tel__now_ms(), 0);
        tel__queue_close(q);
    }
    CHECK("the link target's content is unchanged", same_content(target_data, before, before_len));
    struct stat st;
    CHECK("data.mdb is now a regular file", lstat(data, &st) == 0 && S_ISREG(st.st_mode));

    snprintf(sd, sizeof sd, "%s", state("symlink-lock"));
    qpath(dir, sizeof dir, sd, NULL);
    qpath(lock, sizeof lock, sd, "lock.mdb");
    mkdir(dir, 0700);
    CHECK("plant lock.mdb -> a file elsewhere", symlink(target_lock, lock) == 0);
    q = open_q(sd, NULL);
    CHECK("open succeeds", q != NULL);
    if (q) {
        CHECK_EQ_INT("appends work", append_each(q, 0, 2, tel__now_ms(), 0), TEL_OK);
        tel__queue_close(q);
    }
    CHECK("the lock link's target is unchanged",
          same_content(target_lock, (const uint8_t *)lock_text, sizeof lock_text - 1));
    CHECK("lock.mdb is now a regular file", lstat(lock, &st) == 0 && S_ISREG(st.st_mode));

    /* The queue directory itself as a link to somewhere else. */
    snprintf(sd, sizeof sd, "%s", state("symlink-dir"));
    qpath(dir, sizeof dir, sd, NULL);
    char elsewhere[600];
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere-dir", fx_root);
    mkdir(elsewhere, 0700);
    CHECK("plant telemetry/ -> a directory elsewhere", symlink(elsewhere, dir) == 0);
    tel_queue *lq = NULL;
    int rc = tel__queue_open(&lq, sd, NULL, TEL_Q_CREATE);
    char probe[700];
    snprintf(probe, sizeof probe, "%s/data.mdb", elsewhere);
    CHECK("nothing is created through the link", lstat(probe, &st) != 0);
    CHECK("the open fails with NOSTATE rather than follow it", rc == TEL_ERR_NOSTATE && lq == NULL);
    tel__queue_close(lq);
    free(before);
}

static void test_permissions(void)
{
    CHECK_GROUP("permissions");
    char sd[512], dir[600];
    snprintf(sd, sizeof sd, "%s", state("loose"));
    qpath(dir, sizeof dir, sd, NULL);
    mkdir(dir, 0700);
    chmod(dir, 0777);
    tel_queue *q = open_q(sd, NULL);
    struct stat st;
    CHECK("a 0777 queue dir of ours opens", q != NULL);
    CHECK("and is tightened to 0700", lstat(dir, &st) == 0 && (st.st_mode & 07777) == 0700);
    tel__queue_close(q);

    if (geteuid() != 0) {
        printf("# not root: the foreign-owner check is skipped\n");
        return;
    }
    snprintf(sd, sizeof sd, "%s", state("foreign"));
    qpath(dir, sizeof dir, sd, NULL);
    mkdir(dir, 0700);
    CHECK("chown the queue dir to uid 65534", chown(dir, 65534, 65534) == 0);
    q = NULL;
    CHECK_EQ_INT("a queue dir owned by another uid: NOSTATE", tel__queue_open(&q, sd, NULL, TEL_Q_CREATE),
                 TEL_ERR_NOSTATE);
    CHECK("and no handle", q == NULL);
    CHECK_EQ_INT("read-only too", tel__queue_open(&q, sd, NULL, TEL_Q_READONLY), TEL_ERR_NOSTATE);
    char data[700];
    qpath(data, sizeof data, sd, "data.mdb");
    CHECK("nothing was created in it", lstat(data, &st) != 0);
    tel__queue_close(q);

    /* A regular file where the queue dir should be. */
    snprintf(sd, sizeof sd, "%s", state("file-in-the-way"));
    qpath(dir, sizeof dir, sd, NULL);
    write_file(dir, "x", 1);
    q = NULL;
    int rc = tel__queue_open(&q, sd, NULL, TEL_Q_CREATE);
    CHECK("a file in place of the queue dir: an error, no handle", rc < 0 && q == NULL);
    CHECK("and the file is left as it was", same_content(dir, (const uint8_t *)"x", 1));
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(padding, 'p', TEL_MAX_STRING);
    setup_root();
    test_open_modes();
    test_fifo();
    test_scan_limits();
    test_delete();
    test_caps();
    test_purge();
    test_meta();
    test_corrupt();
    test_symlinks();
    test_permissions();
    test_map_full();
    test_map_resized();

    fx_cleanup();
    return check_exit();
}
