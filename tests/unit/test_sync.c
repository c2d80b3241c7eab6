/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_sync.c - the sync engine (sync/) without a network: the
 * drain loop against a fake transport that answers what each case needs,
 * the pure backoff schedule, Retry-After parsing and the stored state's
 * text codecs.  Each case runs in microseconds to milliseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lmdb.h>
#include <zlib.h>

#include "check.h"
#include "fixture.h"
#include "sync.h"

#define APP "tsync"

/* --------------------------------------------------------- the fake */

typedef struct answer {
    long status;              /* 0: network error */
    long retry_after;         /* -1: none */
    int fail;                 /* non-zero: the send itself fails, as if killed */
} answer;

#define MAX_CALLS 16

typedef struct call {
    uint8_t id[TEL_ID_LEN];
    uint32_t nevents;
    uint64_t dropped;
    int version;
    int decoded;
} call;

typedef struct fake {
    const answer *answers;
    size_t nanswers;
    size_t ncalls;
    call calls[MAX_CALLS];
    unsigned versions;        /* what every answer says the collector reads */
    unsigned refuse_versions; /* versions answered 422 whatever the status scripted */
    const char *endpoint;     /* given to the drain; NULL: none */
} fake;

static int inflate_all(const void *gz, size_t len, uint8_t *out, size_t cap, size_t *n)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int zr = inflate(&zs, Z_FINISH);
    *n = cap - zs.avail_out;
    inflateEnd(&zs);
    return zr == Z_STREAM_END ? 0 : -1;
}

/* Inflates the gzip body and decodes the batch, as a collector would. */
static int read_body(const void *gz, size_t len, call *c)
{
    static uint8_t raw[TEL_BATCH_MAX_BYTES + 4096];
    size_t n = 0;
    tel_batch_head h;
    if (inflate_all(gz, len, raw, sizeof raw, &n) != 0 || tel__batch_decode(raw, n, &h, NULL, NULL) != TEL_OK)
        return -1;
    memcpy(c->id, h.id, TEL_ID_LEN);
    c->nevents = h.nevents;
    c->dropped = h.dropped;
    c->version = h.version;
    c->decoded = 1;
    return 0;
}

static int fake_send(void *ud, const uint8_t id[TEL_ID_LEN], const void *gz, size_t len,
                     uint64_t timeout_ms, tel_upload_result *res)
{
    fake *f = ud;
    (void)timeout_ms;
    if (f->ncalls >= MAX_CALLS || f->ncalls >= f->nanswers)
        return tel__fail(TEL_ERR_IO, "fake: no answer scripted for call %zu", f->ncalls + 1);
    call *c = &f->calls[f->ncalls];
    const answer *a = &f->answers[f->ncalls++];
    memset(c, 0, sizeof *c);
    if (read_body(gz, len, c) != 0 || memcmp(c->id, id, TEL_ID_LEN) != 0)
        c->decoded = 0;
    if (a->fail)
        return tel__fail(TEL_ERR_IO, "fake: the process died here");
    memset(res, 0, sizeof *res);
    res->status = a->status;
    if (c->decoded && (f->refuse_versions & (1u << c->version)))
        res->status = 422;
    res->retry_after = a->retry_after;
    res->versions = res->status ? f->versions : 0;
    res->sent_bytes = len;
    if (a->status == 0)
        snprintf(res->error, sizeof res->error, "Could not connect to server");
    return TEL_OK;
}

/* ------------------------------------------------------------ set-up */

static char state[TEL_PATH_MAX];
static tel_sync_batch *batch;

/* A fresh HOME with an empty queue for APP. */
static tel_queue *fresh_queue(void)
{
    fx_fresh_home();
    tel_queue *q = NULL;
    if (tel__state_dir(APP, state, sizeof state) != TEL_OK ||
        tel__queue_open(&q, state, NULL, TEL_Q_CREATE) != TEL_OK)
        return NULL;
    return q;
}

/* Appends n events in one transaction (one sync, not n). */
static int add_events(tel_queue *q, int n)
{
    static const uint8_t anon[TEL_ID_LEN] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x46, 0xa7,
                                              0x88, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
    enum { REC_MAX = 256 };
    tel_ctx ctx = { .app = APP };
    uint8_t *mem = malloc((size_t)n * REC_MAX);
    tel_rec *recs = malloc((size_t)n * sizeof *recs);
    int rc = mem && recs ? 0 : -1;
    for (int i = 0; i < n && rc == 0; i++) {
        size_t len = 0;
        tel_prop p[] = { TEL_INT("i", i) };
        tel_event_in ev = { .ts_ms = tel__now_ms(), .name = "ev", .props = p, .nprops = 1,
                            .anon = anon, .ctx = &ctx };
        if (tel__uuid4(ev.id) != 0 || tel__uuid4(ev.exec) != 0 ||
            tel__record_encode(&ev, mem + (size_t)i * REC_MAX, REC_MAX, &len) != TEL_OK)
            rc = -1;
        recs[i] = (tel_rec){ mem + (size_t)i * REC_MAX, len, ev.ts_ms };
    }
    if (rc == 0 && tel__queue_append(q, recs, (size_t)n) != TEL_OK)
        rc = -1;
    free(mem);
    free(recs);
    return rc;
}

static uint64_t queued(tel_queue *q, uint64_t *dropped)
{
    tel_queue_stats s;
    if (tel__queue_stats(q, &s) != TEL_OK)
        return UINT64_MAX;
    if (dropped)
        *dropped = s.dropped;
    return s.count;
}

static int run(tel_queue *q, fake *f, tel_sync_stats *st)
{
    tel_sync_io io = { fake_send, f, NULL, NULL, NULL, NULL, NULL, NULL, f->endpoint };
    memset(st, 0, sizeof *st);
    return tel__sync_drain(q, batch, &io, APP, tel__mono_ms() + 10000, st);
}

/* The id of the queue's last committed write transaction, as another
 * reader of its file sees it: each one took the writer lock and a sync. */
static uint64_t last_txn(void)
{
    char path[TEL_PATH_MAX + 32];
    MDB_env *env;
    MDB_envinfo info;
    uint64_t id = 0;
    snprintf(path, sizeof path, "%s/" TEL_QUEUE_DIR "/data.mdb", state);
    if (mdb_env_create(&env) != 0)
        return 0;
    if (mdb_env_open(env, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0600) == 0 &&
        mdb_env_info(env, &info) == 0)
        id = info.me_last_txnid;
    mdb_env_close(env);
    return id;
}

#define RUN(q, f, st, ...)                                                  \
    do {                                                                   \
        static const answer a_[] = { __VA_ARGS__ };                        \
        (f)->answers = a_;                                                 \
        (f)->nanswers = sizeof a_ / sizeof *a_;                            \
        (f)->ncalls = 0;                                                   \
        drc = run((q), (f), (st));                                         \
    } while (0)

/* ------------------------------------------------------------- drain */

static int drc;

static void accepted(void)
{
    CHECK_GROUP("drain: 2xx");
    tel_queue *q = fresh_queue();
    fake f = { 0 };
    tel_sync_stats st;
    CHECK("ten events are queued", q && add_events(q, 10) == 0);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK_EQ_INT("one batch is sent", f.ncalls, 1);
    CHECK("the body is a gzip'd batch under the id sent as Idempotency-Key", f.calls[0].decoded);
    CHECK_EQ_INT("the batch holds all ten", f.calls[0].nevents, 10);
    CHECK_EQ_INT("the accepted events leave the queue", queued(q, NULL), 0);
    CHECK_EQ_INT("stats count the batch", st.batches, 1);
    CHECK_EQ_INT("stats count the events", st.events, 10);
    tel_last_sync ls;
    CHECK("the last sync is remembered", tel__last_sync_load(q, &ls) == TEL_OK && ls.events == 10);
    tel_backoff b;
    CHECK("no backoff is left", tel__backoff_load(q, &b) == TEL_ERR_NOTFOUND);
    tel__queue_close(q);

    CHECK_GROUP("drain: 2xx in several batches");
    q = fresh_queue();
    CHECK("2,500 events are queued", q && add_events(q, 2500) == 0);
    RUN(q, &f, &st, { 202, -1, 0 }, { 200, -1, 0 }, { 204, -1, 0 });
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK_EQ_INT("three batches are sent", f.ncalls, 3);
    CHECK("batches hold at most 1,000 events",
          f.calls[0].nevents == 1000 && f.calls[1].nevents == 1000 && f.calls[2].nevents == 500);
    CHECK("each batch has its own id", memcmp(f.calls[0].id, f.calls[1].id, TEL_ID_LEN) != 0 &&
                                           memcmp(f.calls[1].id, f.calls[2].id, TEL_ID_LEN) != 0);
    CHECK_EQ_INT("the queue is empty", queued(q, NULL), 0);
    tel__queue_close(q);

    /* A host that records an event waits for every commit of tel-sync:
     * the batch to send is recorded beside the queue, without one, and
     * each accepted batch goes in one commit. */
    CHECK_GROUP("drain: commits");
    q = fresh_queue();
    CHECK("2,500 events are queued", q && add_events(q, 2500) == 0);
    uint64_t before = last_txn();
    RUN(q, &f, &st, { 200, -1, 0 }, { 200, -1, 0 }, { 200, -1, 0 });
    CHECK_EQ_INT("three batches are sent", f.ncalls, 3);
    CHECK_EQ_INT("three batches take three commits", last_txn() - before, 3);
    tel_pending pd;
    CHECK("no batch is left recorded as in flight", tel__pending_load(q, &pd) == TEL_ERR_NOTFOUND);
    CHECK("the last sync counts the run's events", tel__last_sync_load(q, &ls) == TEL_OK && ls.events == 2500);
    CHECK("ten more events are queued", add_events(q, 10) == 0);
    before = last_txn();
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK_EQ_INT("a run of one batch takes one commit", last_txn() - before, 1);
    CHECK("the last sync counts that run's events", tel__last_sync_load(q, &ls) == TEL_OK && ls.events == 10);
    tel__queue_close(q);
}

static void too_large(void)
{
    CHECK_GROUP("drain: 413");
    tel_queue *q = fresh_queue();
    fake f = { 0 };
    tel_sync_stats st;
    CHECK("eight events are queued", q && add_events(q, 8) == 0);
    RUN(q, &f, &st, { 413, -1, 0 }, { 200, -1, 0 }, { 200, -1, 0 });
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK_EQ_INT("the batch is sent whole, then in two halves", f.ncalls, 3);
    CHECK("the halves hold four events each",
          f.calls[0].nevents == 8 && f.calls[1].nevents == 4 && f.calls[2].nevents == 4);
    CHECK("the first half has a new batch id", memcmp(f.calls[0].id, f.calls[1].id, TEL_ID_LEN) != 0);
    CHECK("the second half has a new batch id", memcmp(f.calls[1].id, f.calls[2].id, TEL_ID_LEN) != 0);
    CHECK_EQ_INT("nothing is lost", st.events, 8);
    CHECK_EQ_INT("the queue is empty", queued(q, NULL), 0);
    tel__queue_close(q);

    /* A collector that refuses even one event (each is at most 16 KiB)
     * is misconfigured or lying: the events wait for it to be fixed. */
    CHECK_GROUP("drain: 413 down to one event");
    q = fresh_queue();
    uint64_t dropped = 0;
    CHECK("three events are queued", q && add_events(q, 3) == 0);
    uint64_t before = tel__now_ms();
    RUN(q, &f, &st, { 413, -1, 0 }, { 413, -1, 0 }, { 200, -1, 0 });
    CHECK_EQ_INT("the drain ends without error", drc, TEL_OK);
    CHECK_EQ_INT("three events, then one, then the run stops", f.ncalls, 2);
    CHECK("the single event was the last one sent", f.ncalls == 2 && f.calls[1].nevents == 1);
    CHECK_EQ_INT("every event stays queued", queued(q, &dropped), 3);
    CHECK_EQ_INT("none is counted dropped", dropped, 0);
    CHECK_EQ_INT("stats drop none", st.dropped, 0);
    CHECK("the run says it backed off", st.backed_off);
    tel_backoff b;
    int have = tel__backoff_load(q, &b) == TEL_OK;
    CHECK("a backoff is stored", have);
    if (have) {
        CHECK("it waits a day, as for a wrong token", b.until_ms >= before + TEL_BACKOFF_AUTH_MS);
        CHECK_EQ_INT("it keeps the status", b.status, 413);
        CHECK("its reason says a single event was refused", strstr(b.reason, "413") != NULL &&
                                                               strstr(b.reason, "single event") != NULL);
    }
    tel_pending p;
    CHECK("no batch of one is left pending", tel__pending_load(q, &p) != TEL_OK);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK_EQ_INT("the next run sends one full batch", f.ncalls, 1);
    CHECK_EQ_INT("it holds every event", f.calls[0].nevents, 3);
    CHECK_EQ_INT("the queue is empty", queued(q, NULL), 0);
    CHECK_EQ_INT("nothing was dropped", st.dropped, 0);
    tel__queue_close(q);
}

static void refused(long status)
{
    CHECK_GROUP(status == 400 ? "drain: 400" : "drain: 422");
    tel_queue *q = fresh_queue();
    fake f = { 0 };
    tel_sync_stats st;
    uint64_t dropped = 0;
    CHECK("five events are queued", q && add_events(q, 5) == 0);
    f.answers = (answer[]){ { status, -1, 0 } };
    f.nanswers = 1;
    f.ncalls = 0;
    drc = run(q, &f, &st);
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK_EQ_INT("the refused events leave the queue", queued(q, &dropped), 0);
    CHECK_EQ_INT("they are counted dropped", dropped, 5);
    CHECK_EQ_INT("stats say so", st.dropped, 5);
    tel_pending p;
    CHECK("no pending batch is left", tel__pending_load(q, &p) == TEL_ERR_NOTFOUND);
    CHECK("three more events are queued", add_events(q, 3) == 0);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK_EQ_INT("the next batch reports the five dropped", f.calls[0].dropped, 5);
    CHECK_EQ_INT("and holds the three", f.calls[0].nevents, 3);
    CHECK("once accepted, the dropped count starts again",
          queued(q, &dropped) == 0 && dropped == 0);
    tel__queue_close(q);
}

/* A backoff answer: the events stay and the wait is within [lo, hi] s. */
static void kept(const char *group, long status, long retry_after, uint64_t lo, uint64_t hi)
{
    CHECK_GROUP(group);
    tel_queue *q = fresh_queue();
    fake f = { 0 };
    tel_sync_stats st;
    CHECK("four events are queued", q && add_events(q, 4) == 0);
    f.answers = (answer[]){ { status, retry_after, 0 }, { 200, -1, 0 } };
    f.nanswers = 2;
    f.ncalls = 0;
    uint64_t before = tel__now_ms();
    drc = run(q, &f, &st);
    uint64_t after = tel__now_ms();
    CHECK_EQ_INT("the drain ends without error", drc, TEL_OK);
    CHECK_EQ_INT("the run stops after the first answer", f.ncalls, 1);
    CHECK_EQ_INT("the events are kept", queued(q, NULL), 4);
    tel_backoff b;
    int have = tel__backoff_load(q, &b) == TEL_OK;
    CHECK("a backoff is stored", have);
    if (have) {
        CHECK("it waits as long as it should", b.until_ms >= before + lo * 1000 &&
                                                   b.until_ms <= after + hi * 1000);
        CHECK_EQ_INT("it counts the attempt", b.attempt, 1);
        CHECK_EQ_INT("it keeps the status", b.status, status);
    }
    tel_pending p1, p2;
    CHECK("the batch stays pending", tel__pending_load(q, &p1) == TEL_OK);
    RUN(q, &f, &st, { 503, -1, 0 });
    CHECK("a second failure counts attempt 2",
          tel__backoff_load(q, &b) == TEL_OK && b.attempt == 2);
    CHECK("the retry sends the same batch id",
          tel__pending_load(q, &p2) == TEL_OK && memcmp(p1.id, p2.id, TEL_ID_LEN) == 0 &&
          memcmp(f.calls[0].id, p1.id, TEL_ID_LEN) == 0);
    tel__queue_close(q);
}

static void crash(void)
{
    CHECK_GROUP("drain: a process killed mid-request");
    tel_queue *q = fresh_queue();
    fake f = { 0 };
    tel_sync_stats st;
    CHECK("six events are queued", q && add_events(q, 6) == 0);
    RUN(q, &f, &st, { 0, -1, 1 });
    CHECK("the drain reports the failure", drc == TEL_ERR_IO && strstr(tel_last_error(), "died"));
    CHECK_EQ_INT("the events are kept", queued(q, NULL), 6);
    uint8_t first[TEL_ID_LEN];
    memcpy(first, f.calls[0].id, TEL_ID_LEN);
    tel__queue_close(q);
    /* A new process opens the queue again. */
    CHECK("the queue reopens", tel__queue_open(&q, state, NULL, 0) == TEL_OK);
    CHECK("two more events are queued", add_events(q, 2) == 0);
    RUN(q, &f, &st, { 200, -1, 0 }, { 200, -1, 0 });
    CHECK_EQ_INT("the pending batch and then the rest are sent", f.ncalls, 2);
    CHECK("the pending batch goes again under its id",
          memcmp(f.calls[0].id, first, TEL_ID_LEN) == 0 && f.calls[0].nevents == 6);
    CHECK("the newer events go in a batch of their own",
          memcmp(f.calls[1].id, first, TEL_ID_LEN) != 0 && f.calls[1].nevents == 2);
    CHECK_EQ_INT("the queue is empty", queued(q, NULL), 0);
    tel__queue_close(q);
}

static int first_record(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)seq;
    *(uint64_t *)ud = tel__pending_sum(data, len);
    return 1;
}

/* Stores, as the batch in flight, the queue's events 1..n under id; its
 * sum that of the first record plus `off` (0: the right one), or, with
 * legacy, in the meta table as a tel-sync before the file kept it. */
static int plant_pending(tel_queue *q, const uint8_t id[TEL_ID_LEN], uint32_t n, uint64_t off,
                         int legacy)
{
    tel_pending p = { { 0 }, 1, n, n, 0, 0 };
    memcpy(p.id, id, TEL_ID_LEN);
    if (tel__queue_scan(q, 1, 1, TEL_BATCH_MAX_BYTES, first_record, &p.first_sum) != TEL_OK)
        return -1;
    p.first_sum += off;
    if (!legacy)
        return tel__pending_store(q, &p);
    char enc[TEL_SYNCSTATE_MAX];
    size_t len = tel__pending_encode(&p, enc, sizeof enc);
    return len ? tel__queue_meta_put(q, TEL_META_PENDING, enc, len) : -1;
}

static void pending_file(void)
{
    static const uint8_t id[TEL_ID_LEN] = { 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x47, 0x58,
                                            0x99, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x50 };
    tel_pending p;
    tel_sync_stats st;
    fake f = { 0 };
    CHECK_GROUP("drain: the batch in flight");
    tel_queue *q = fresh_queue();
    CHECK("five events are queued", q && add_events(q, 5) == 0);
    CHECK("a batch of them is recorded", plant_pending(q, id, 5, 0, 0) == 0);
    CHECK("it is recorded in its file", tel__pending_load(q, &p) == TEL_OK &&
                                            memcmp(p.id, id, TEL_ID_LEN) == 0 && p.first_sum != 0);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK("it is sent under its id", f.ncalls == 1 && memcmp(f.calls[0].id, id, TEL_ID_LEN) == 0 &&
                                         f.calls[0].nevents == 5);
    CHECK("once delivered, it is forgotten", tel__pending_load(q, &p) == TEL_ERR_NOTFOUND);
    tel__queue_close(q);

    /* A queue removed (forget, disable) starts its sequence numbers over:
     * a record of a batch of the old queue may name the same numbers. */
    q = fresh_queue();
    CHECK("five other events are queued", q && add_events(q, 5) == 0);
    CHECK("a batch of the same numbers but other records is recorded", plant_pending(q, id, 5, 1, 0) == 0);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK("the events go under a new id", f.ncalls == 1 && memcmp(f.calls[0].id, id, TEL_ID_LEN) != 0 &&
                                              f.calls[0].nevents == 5);
    tel__queue_close(q);

    q = fresh_queue();
    CHECK("five events are queued again", q && add_events(q, 5) == 0);
    CHECK("a batch is kept in the meta table, as before the file", plant_pending(q, id, 5, 0, 1) == 0);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK("that batch is still sent under its id",
          f.ncalls == 1 && memcmp(f.calls[0].id, id, TEL_ID_LEN) == 0);
    char buf[TEL_SYNCSTATE_MAX];
    CHECK("and then cleared from the meta table",
          tel__queue_meta_get(q, TEL_META_PENDING, buf, sizeof buf, NULL) == TEL_ERR_NOTFOUND);
    tel__queue_close(q);
    CHECK("the file is removed with the queue (forget, opt-outs)", tel__syncstate_is_file(TEL_PENDING_FILE));
}

static void network_error(void)
{
    CHECK_GROUP("drain: no answer");
    tel_queue *q = fresh_queue();
    fake f = { 0 };
    tel_sync_stats st;
    CHECK("an event is queued", q && add_events(q, 1) == 0);
    RUN(q, &f, &st, { 0, -1, 0 });
    tel_backoff b;
    CHECK("a backoff names the network error",
          tel__backoff_load(q, &b) == TEL_OK && b.status == 0 && strstr(b.reason, "connect"));
    CHECK_EQ_INT("the event is kept", queued(q, NULL), 1);
    tel__queue_close(q);
}

/* ----------------------------------------------------------- backoff */

/* ---------------------------------------------------------- versions */

#define V12 (1u << 1 | 1u << 2)
#define V123 (V12 | 1u << 3)
#define ENDPOINT "http://127.0.0.1:9/v1/batch"

static void negotiated(void)
{
    CHECK_GROUP("drain: a collector that reads version 3");
    tel_queue *q = fresh_queue();
    fake f = { .versions = V123, .endpoint = ENDPOINT };
    tel_sync_stats st;
    CHECK("2,500 events are queued", q && add_events(q, 2500) == 0);
    RUN(q, &f, &st, { 200, -1, 0 }, { 200, -1, 0 }, { 200, -1, 0 });
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK("every batch decodes", f.ncalls == 3 && f.calls[0].decoded && f.calls[1].decoded &&
                                     f.calls[2].decoded);
    CHECK_EQ_INT("the first batch, before it said so, is version 1", f.calls[0].version, 1);
    CHECK("the next ones are version 3, the one prepared meanwhile included",
          f.calls[1].version == 3 && f.calls[2].version == 3);
    CHECK("they hold the rest", f.calls[1].nevents == 1000 && f.calls[2].nevents == 500);
    CHECK_EQ_INT("the queue is empty", queued(q, NULL), 0);
    CHECK_EQ_INT("what it reads is remembered", tel__versions_load(q, ENDPOINT), V123);
    CHECK_EQ_INT("for that endpoint only", tel__versions_load(q, "http://127.0.0.1:10/v1/batch"), 0);
    CHECK("three events are queued", add_events(q, 3) == 0);
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK_EQ_INT("the next run's first batch is version 3", f.calls[0].version, 3);
    CHECK("three events are queued", add_events(q, 3) == 0);
    f.endpoint = "http://127.0.0.1:10/v1/batch";
    RUN(q, &f, &st, { 200, -1, 0 });
    CHECK_EQ_INT("another endpoint starts over at version 1", f.calls[0].version, 1);
    tel__queue_close(q);

    CHECK_GROUP("drain: a collector that no longer reads version 3");
    q = fresh_queue();
    f = (fake){ .versions = 0, .refuse_versions = 1u << 3, .endpoint = ENDPOINT };
    CHECK("it was heard to read it", tel__versions_store(q, ENDPOINT, V123) == TEL_OK);
    CHECK("five events are queued", q && add_events(q, 5) == 0);
    RUN(q, &f, &st, { 200, -1, 0 }, { 200, -1, 0 });
    uint64_t dropped = 1;
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK("the batch goes in version 3 and is refused, then in version 1",
          f.ncalls == 2 && f.calls[0].version == 3 && f.calls[1].version == 1);
    CHECK("under the same batch id", memcmp(f.calls[0].id, f.calls[1].id, TEL_ID_LEN) == 0);
    CHECK_EQ_INT("nothing is dropped", queued(q, &dropped), 0);
    CHECK_EQ_INT("nothing is counted dropped", dropped, 0);
    CHECK_EQ_INT("it is remembered to read versions 1 and 2 only", tel__versions_load(q, ENDPOINT), 0);
    tel__queue_close(q);

    CHECK_GROUP("drain: a collector that says version 3 but refuses it");
    q = fresh_queue();
    f = (fake){ .versions = V123, .refuse_versions = 1u << 3, .endpoint = ENDPOINT };
    CHECK("it was heard to read it", tel__versions_store(q, ENDPOINT, V123) == TEL_OK);
    CHECK("1,500 events are queued", q && add_events(q, 1500) == 0);
    RUN(q, &f, &st, { 200, -1, 0 }, { 200, -1, 0 }, { 200, -1, 0 });
    CHECK_EQ_INT("the drain succeeds", drc, TEL_OK);
    CHECK("version 3 is tried once; the rest of the run speaks version 1",
          f.ncalls == 3 && f.calls[0].version == 3 && f.calls[1].version == 1 && f.calls[2].version == 1);
    CHECK_EQ_INT("nothing is dropped", queued(q, &dropped), 0);
    CHECK_EQ_INT("nothing is counted dropped", dropped, 0);
    tel__queue_close(q);

    CHECK_GROUP("drain: a collector that never said anything");
    q = fresh_queue();
    f = (fake){ .refuse_versions = 1u << 3, .endpoint = ENDPOINT };
    CHECK("1,500 events are queued", q && add_events(q, 1500) == 0);
    RUN(q, &f, &st, { 200, -1, 0 }, { 200, -1, 0 });
    CHECK("gets version 1 only", f.ncalls == 2 && f.calls[0].version == 1 && f.calls[1].version == 1);
    CHECK_EQ_INT("the queue is empty", queued(q, NULL), 0);
    tel__queue_close(q);

    CHECK_GROUP("Tel-Versions header");
    CHECK_EQ_INT("1,2,3", tel__upload_versions("1,2,3", 5), V123);
    CHECK_EQ_INT("blanks and a line end", tel__upload_versions(" 1 , 2,3 \r\n", 11), V123);
    CHECK_EQ_INT("a version past 31 is skipped", tel__upload_versions("99,3", 4), 1u << 3);
    CHECK_EQ_INT("an empty value", tel__upload_versions(" ", 1), 0);
    CHECK_EQ_INT("another separator", tel__upload_versions("1;2", 3), 0);
    CHECK_EQ_INT("a word", tel__upload_versions("all", 3), 0);
    CHECK_EQ_INT("a trailing comma", tel__upload_versions("1,2,", 4), 0);
    CHECK_EQ_INT("a huge number", tel__upload_versions("123456789012", 12), 0);
}

static void schedule(void)
{
    CHECK_GROUP("backoff schedule");
    CHECK_EQ_INT("a first failure waits at least a second", tel__backoff_delay(1, 0, -1, 0), 1000);
    CHECK("a first failure waits at most a minute", tel__backoff_delay(1, 0, -1, UINT64_MAX) <= 60000);
    CHECK_EQ_INT("the jitter is the random value below the ceiling",
                 tel__backoff_delay(1, 0, -1, 30000), 30000);
    CHECK_EQ_INT("the third failure's ceiling is four minutes",
                 tel__backoff_delay(3, 0, -1, 240000), 240000);
    CHECK_EQ_INT("and nothing above it", tel__backoff_delay(3, 0, -1, 240001), 1000);
    CHECK("growth stops at six hours", tel__backoff_delay(40, 0, -1, UINT64_MAX - 1) <= 6 * 3600 * 1000ull);
    CHECK_EQ_INT("the ceiling of attempt 40 is six hours",
                 tel__backoff_delay(40, 0, -1, 6 * 3600 * 1000ull), 6 * 3600 * 1000ull);
    CHECK_EQ_INT("401/403/404 wait a day", tel__backoff_delay(1, 1, -1, 0), 24 * 3600 * 1000ull);
    CHECK_EQ_INT("Retry-After wins over the schedule", tel__backoff_delay(5, 0, 120, 12345), 120000);
    CHECK_EQ_INT("Retry-After wins over the auth wait", tel__backoff_delay(1, 1, 30, 0), 30000);
    CHECK_EQ_INT("Retry-After: 0 still waits a second", tel__backoff_delay(1, 0, 0, 0), 1000);
    CHECK_EQ_INT("a huge Retry-After is cut to a day", tel__backoff_delay(1, 0, 999999999, 0),
                 24 * 3600 * 1000ull);
    CHECK("401, 403 and 404 are the long waits",
          tel__backoff_is_auth(401) && tel__backoff_is_auth(403) && tel__backoff_is_auth(404) &&
          !tel__backoff_is_auth(503) && !tel__backoff_is_auth(429) && !tel__backoff_is_auth(0));
}

static void retry_after(void)
{
    CHECK_GROUP("Retry-After");
    time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
#define RA(s) tel__upload_retry_after(s, strlen(s), now)
    CHECK_EQ_INT("delta-seconds", RA("120"), 120);
    CHECK_EQ_INT("blanks and the line end around it", RA(" \t7\r\n"), 7);
    CHECK_EQ_INT("zero", RA("0"), 0);
    CHECK_EQ_INT("a day at most", RA("86401"), 86400);
    CHECK_EQ_INT("a number too long to hold saturates", RA("99999999999999999999999"), 86400);
    CHECK_EQ_INT("an HTTP-date a minute ahead", RA("Wed, 21 Oct 2015 07:29:00 GMT"), 60);
    CHECK_EQ_INT("an HTTP-date in the past is now", RA("Wed, 21 Oct 2015 07:00:00 GMT"), 0);
    CHECK_EQ_INT("an HTTP-date a year ahead is a day", RA("Fri, 21 Oct 2016 07:28:00 GMT"), 86400);
    CHECK_EQ_INT("empty", RA(""), -1);
    CHECK_EQ_INT("a negative number", RA("-5"), -1);
    CHECK_EQ_INT("a fraction", RA("1.5"), -1);
    CHECK_EQ_INT("words", RA("soon"), -1);
    CHECK_EQ_INT("a date that does not start with a day name", RA("2015-10-21"), -1);
#undef RA
}

/* ------------------------------------------------------- state codecs */

static void codecs(void)
{
    CHECK_GROUP("sync state codecs");
    char enc[TEL_SYNCSTATE_MAX];
    size_t n;

    tel_backoff b = { 1790000000123ull, 3, 503, "HTTP 503" }, b2;
    n = tel__backoff_encode(&b, enc, sizeof enc);
    CHECK("backoff encodes as one line", n > 0 && memcmp(enc, "1 1790000000123 3 503 HTTP 503", n) == 0);
    CHECK("backoff decodes to the same",
          tel__backoff_decode(&b2, enc, n) == TEL_OK && b2.until_ms == b.until_ms &&
          b2.attempt == 3 && b2.status == 503 && strcmp(b2.reason, "HTTP 503") == 0);
    tel_backoff weird = { 1, 1, 0, "caf\xc3\xa9\nx" };
    n = tel__backoff_encode(&weird, enc, sizeof enc);
    CHECK("a reason's bytes outside printable ASCII become '?'",
          tel__backoff_decode(&b2, enc, n) == TEL_OK && strcmp(b2.reason, "caf???x") == 0);
    CHECK("an encoder refuses a buffer too small", tel__backoff_encode(&b, enc, 8) == 0);
    CHECK("backoff: another layout version is refused",
          tel__backoff_decode(&b2, "2 1 1 503 x", 11) == TEL_ERR_CORRUPT);
    CHECK("backoff: a status past 999 is refused",
          tel__backoff_decode(&b2, "1 1 1 1000 x", 12) == TEL_ERR_CORRUPT);
    CHECK("backoff: a missing field is refused", tel__backoff_decode(&b2, "1 1 1", 5) == TEL_ERR_CORRUPT);

    tel_pending p = { { 0 }, 10, 19, 10, 4, 0 }, p2;
    for (int i = 0; i < TEL_ID_LEN; i++)
        p.id[i] = (uint8_t)(0x10 + i);
    n = tel__pending_encode(&p, enc, sizeof enc);
    CHECK("pending encodes as one line",
          n > 0 && memcmp(enc, "1 10111213-1415-1617-1819-1a1b1c1d1e1f 10 19 10 4", n) == 0);
    CHECK("pending decodes to the same",
          tel__pending_decode(&p2, enc, n) == TEL_OK && memcmp(p2.id, p.id, TEL_ID_LEN) == 0 &&
          p2.first_seq == 10 && p2.last_seq == 19 && p2.count == 10 && p2.dropped == 4);
    static const char *const bad_pending[] = {
        "1 10111213-1415-1617-1819-1a1b1c1d1e1f 10 19 10 4 ",   /* trailing */
        "1 10111213-1415-1617-1819-1a1b1c1d1e1f 19 10 1 0",     /* last < first */
        "1 10111213-1415-1617-1819-1a1b1c1d1e1f 10 19 11 0",    /* more than the range */
        "1 10111213-1415-1617-1819-1a1b1c1d1e1f 10 19 0 0",     /* none */
        "1 10111213-1415-1617-1819-1a1b1c1d1e1g 10 19 10 0",    /* not a uuid */
        "1 10111213-1415-1617-1819-1a1b1c1d1e1f 10  19 10 0",   /* two spaces */
        "1 10111213-1415-1617-1819-1a1b1c1d1e1f 10 19 10 -1",   /* a sign */
    };
    int refused = 1;
    for (size_t i = 0; i < sizeof bad_pending / sizeof *bad_pending; i++)
        if (tel__pending_decode(&p2, bad_pending[i], strlen(bad_pending[i])) != TEL_ERR_CORRUPT)
            refused = 0;
    CHECK("pending: every malformed value is refused", refused);
    CHECK("a value with a NUL inside is refused", tel__pending_decode(&p2, "1 \0", 3) == TEL_ERR_CORRUPT);

    tel_last_sync s = { 1790000000123ull, 250 }, s2;
    n = tel__last_sync_encode(&s, enc, sizeof enc);
    CHECK("last sync round-trips", n > 0 && tel__last_sync_decode(&s2, enc, n) == TEL_OK &&
                                       s2.at_ms == s.at_ms && s2.events == 250);
    CHECK("last sync: a count past 32 bits is refused",
          tel__last_sync_decode(&s2, "1 5 4294967296", 14) == TEL_ERR_CORRUPT);
    CHECK("last sync: a number past 64 bits is refused",
          tel__last_sync_decode(&s2, "1 18446744073709551616 1", 24) == TEL_ERR_CORRUPT);
}

static void gzip_spans(void)
{
    CHECK_GROUP("gzip");
    enum { TEXT = 20000, RANDOM = 16000 };
    static uint8_t before[TEXT], ids[RANDOM], after[TEXT], raw[2 * TEXT + RANDOM + 1];
    for (size_t i = 0; i < TEXT; i++) {
        before[i] = (uint8_t)"command.exited"[i % 14];
        after[i] = (uint8_t)"deploy.finished"[i % 15];
    }
    int rnd = 0;
    for (size_t i = 0; i < RANDOM; i += TEL_ID_LEN)
        rnd |= tel__uuid4(ids + i);
    tel_iov spans[3] = { { before, TEXT, 0 }, { ids, RANDOM, 1 }, { after, TEXT, 0 } };
    tel_buf gz = TEL_BUF_INIT;
    size_t n = 0;
    CHECK("a body of text, random ids and text compresses",
          rnd == 0 && tel__upload_gzip(&gz, spans, 3) == TEL_OK);
    CHECK("it inflates to the same bytes",
          inflate_all(gz.p, gz.len, raw, sizeof raw, &n) == 0 && n == 2 * TEXT + RANDOM &&
              memcmp(raw, before, TEXT) == 0 && memcmp(raw + TEXT, ids, RANDOM) == 0 &&
              memcmp(raw + TEXT + RANDOM, after, TEXT) == 0);
    CHECK("the random ids are stored as they are, not searched for repeats",
          gz.len >= RANDOM && memmem(gz.p, gz.len, ids, RANDOM) != NULL);
    CHECK("the text around them is still compressed", gz.len < RANDOM + 1000);
    tel__buf_clear(&gz);
    CHECK("no spans make an empty gzip stream", tel__upload_gzip(&gz, NULL, 0) == TEL_OK &&
                                                    inflate_all(gz.p, gz.len, raw, sizeof raw, &n) == 0 && n == 0);
    tel__buf_free(&gz);
}

/* ------------------------------------------------------------ erasure */

/* What the fake collector of erasure requests saw. */
typedef struct erase_fake {
    const answer *answers;
    size_t nanswers;
    size_t ncalls;
    uint8_t ids[MAX_CALLS][TEL_ID_LEN];
    int exact[MAX_CALLS];     /* the body was the request for that id, byte for byte */
} erase_fake;

static int erase_send(void *ud, const tel_erasure_req *r, const void *gz, size_t len,
                      uint64_t timeout_ms, tel_upload_result *res)
{
    erase_fake *f = ud;
    (void)timeout_ms;
    if (f->ncalls >= MAX_CALLS || f->ncalls >= f->nanswers)
        return tel__fail(TEL_ERR_IO, "fake: no answer scripted for call %zu", f->ncalls + 1);
    size_t i = f->ncalls++;
    const answer *a = &f->answers[i];
    uint8_t raw[256];
    size_t n = 0;
    tel_buf want = TEL_BUF_INIT;
    f->exact[i] = inflate_all(gz, len, raw, sizeof raw, &n) == 0 &&
                  tel__erasure_decode(raw, n, f->ids[i]) == TEL_OK &&
                  memcmp(f->ids[i], r->anon, TEL_ID_LEN) == 0 &&
                  tel__erasure_encode(&want, r->anon) == TEL_OK && want.len == n &&
                  memcmp(want.p, raw, n) == 0;
    tel__buf_free(&want);
    memset(res, 0, sizeof *res);
    res->status = a->status;
    res->retry_after = a->retry_after;
    if (a->status == 0)
        snprintf(res->error, sizeof res->error, "Could not connect to server");
    return TEL_OK;
}

static int erc;
static tel_erase_stats est;

#define ERASE(f, force, ...)                                                \
    do {                                                                   \
        static const answer a_[] = { __VA_ARGS__ };                        \
        (f)->answers = a_;                                                 \
        (f)->nanswers = sizeof a_ / sizeof *a_;                            \
        (f)->ncalls = 0;                                                   \
        tel_erase_io io_ = { erase_send, (f), NULL, NULL };                \
        erc = tel__sync_erasures(state, &io_, APP, tel__mono_ms() + 10000, (force), &est); \
    } while (0)

static const uint8_t old_id[TEL_ID_LEN] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x77,
                                            0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

/* A fresh HOME holding one erasure request for old_id. */
static int one_request(void)
{
    tel_queue *q = fresh_queue();
    if (!q)
        return -1;
    tel__queue_close(q);
    tel_erasure_req r = { .endpoint = "http://127.0.0.1:9/v1/batch", .token = "s3cret" };
    memcpy(r.anon, old_id, TEL_ID_LEN);
    return tel__erasure_save(state, &r);
}

static int count_req(void *ud, tel_erasure_req *r)
{
    (void)r;
    (*(size_t *)ud)++;
    return 0;
}

static size_t requests(void)
{
    size_t n = 0;
    return tel__erasure_each(state, count_req, &n, NULL) == TEL_OK ? n : SIZE_MAX;
}

static int first_req(void *ud, tel_erasure_req *r)
{
    *(tel_erasure_req *)ud = *r;
    return 1;
}

static void erasure_store(void)
{
    CHECK_GROUP("erasure: the stored request");
    CHECK("a request is saved", one_request() == 0);
    tel_erasure_req r;
    memset(&r, 0, sizeof r);
    CHECK("and read back with its id, endpoint and token",
          tel__erasure_each(state, first_req, &r, NULL) == TEL_OK &&
          memcmp(r.anon, old_id, TEL_ID_LEN) == 0 && strcmp(r.endpoint, "http://127.0.0.1:9/v1/batch") == 0 &&
          strcmp(r.token, "s3cret") == 0 && r.backoff.attempt == 0 && r.unsupported == 0);
    char path[TEL_PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/" TEL_ERASURE_DIR "/11223344-5566-4777-8899-aabbccddeeff", state);
    struct stat st;
    CHECK("in a private file named by the id",
          lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK("saving the same id again replaces it", tel__erasure_save(state, &r) == TEL_OK && requests() == 1);
    r.backoff = (tel_backoff){ 1790000000123ull, 2, 503, "HTTP 503" };
    r.unsupported = 3;
    tel_erasure_req r2;
    CHECK("the backoff and the unsupported count are kept",
          tel__erasure_save(state, &r) == TEL_OK && tel__erasure_each(state, first_req, &r2, NULL) == TEL_OK &&
          r2.backoff.until_ms == 1790000000123ull && r2.backoff.attempt == 2 && r2.unsupported == 3);
    static const char bad[] = "erase 1 not-a-uuid\n";
    tel_erasure_req r3;
    CHECK("a request without a valid id does not parse",
          tel__erasure_parse(bad, sizeof bad - 1, &r3) == TEL_ERR_CORRUPT);
    static const char odd[] = "erase 1 11223344-5566-4777-8899-aabbccddeeff\nnew-id 1\n";
    CHECK("nor one with a line it does not know", tel__erasure_parse(odd, sizeof odd - 1, &r3) == TEL_ERR_CORRUPT);
    char other[TEL_PATH_MAX + 80];
    snprintf(other, sizeof other, "%s/" TEL_ERASURE_DIR "/00000000-0000-4000-8000-000000000000", state);
    FILE *f = fopen(other, "w");
    if (f) {
        fputs("garbage\n", f);
        fclose(f);
    }
    size_t unreadable = 0, n = 0;
    CHECK("an unreadable request is counted and left alone",
          tel__erasure_each(state, count_req, &n, &unreadable) == TEL_OK && n == 1 && unreadable == 1 &&
          lstat(other, &st) == 0);
    unlink(other);
    CHECK("remove deletes it", tel__erasure_remove(state, old_id) == TEL_OK && requests() == 0);
    CHECK("and removing it twice is fine", tel__erasure_remove(state, old_id) == TEL_OK);
}

/* tel_forget with and without the host's offer. */
static void erasure_forget(void)
{
    CHECK_GROUP("erasure: forget");
    tel_queue *q = fresh_queue();
    uint8_t id[TEL_ID_LEN];
    int lasting = 0;
    static const char ep[] = "http://127.0.0.1:9/v1/batch";
    CHECK("a queue with a recorded endpoint and a cookie",
          q && tel__queue_meta_put(q, TEL_META_ENDPOINT, ep, sizeof ep - 1) == TEL_OK &&
          tel__cookie_load(state, id, &lasting) == TEL_OK && lasting);
    tel__queue_close(q);
    CHECK("without the host's offer, forget leaves no request", tel_forget(APP) == TEL_OK && requests() == 0);
    tel_decls d = { .erasure = 1 };
    CHECK("the host's offer is recorded as text", tel__decls_store(state, &d) == TEL_OK);
    tel_decls back;
    CHECK("and read back", tel__decls_load(state, &back) == TEL_OK && back.erasure == 1);
    CHECK("a new id", tel__cookie_load(state, id, &lasting) == TEL_OK && lasting);
    q = NULL;
    CHECK("with its queue", tel__queue_open(&q, state, NULL, TEL_Q_CREATE) == TEL_OK &&
                                tel__queue_meta_put(q, TEL_META_ENDPOINT, ep, sizeof ep - 1) == TEL_OK);
    tel__queue_close(q);
    tel_erasure_req r;
    memset(&r, 0, sizeof r);
    CHECK("with the offer, forget leaves one request",
          tel_forget(APP) == TEL_OK && requests() == 1 && tel__erasure_each(state, first_req, &r, NULL) == TEL_OK);
    CHECK("for the forgotten id", memcmp(r.anon, id, TEL_ID_LEN) == 0);
    CHECK("naming the collector the queue recorded", strcmp(r.endpoint, ep) == 0);
    char cpath[TEL_PATH_MAX + 32];
    snprintf(cpath, sizeof cpath, "%s/" TEL_COOKIE_FILE, state);
    struct stat st;
    CHECK("and the cookie is gone", lstat(cpath, &st) != 0);
    CHECK("a forget without a lasting id adds nothing", tel_forget(APP) == TEL_OK && requests() == 1);
}

static void erasure_sent(void)
{
    CHECK_GROUP("erasure: 2xx");
    erase_fake f;
    CHECK("a request waits", one_request() == 0);
    ERASE(&f, 0, { 200, -1, 0 });
    CHECK("it is sent in one request of its own", erc == TEL_OK && f.ncalls == 1);
    CHECK("holding the old id and nothing else", f.exact[0] && memcmp(f.ids[0], old_id, TEL_ID_LEN) == 0);
    CHECK("and removed after the 2xx", requests() == 0 && est.sent == 1);
    ERASE(&f, 0, { 200, -1, 0 });
    CHECK("the next run sends nothing", erc == TEL_OK && f.ncalls == 0);
    CHECK("two requests", one_request() == 0);
    tel_erasure_req r2 = { .anon = { 0x22 } };
    CHECK("two requests wait", tel__erasure_save(state, &r2) == TEL_OK && requests() == 2);
    ERASE(&f, 0, { 204, -1, 0 }, { 200, -1, 0 });
    CHECK("go in two requests, each with its own id",
          f.ncalls == 2 && f.exact[0] && f.exact[1] && memcmp(f.ids[0], f.ids[1], TEL_ID_LEN) != 0 &&
          requests() == 0);
}

static void erasure_kept(void)
{
    CHECK_GROUP("erasure: 503, network");
    erase_fake f;
    CHECK("a request waits", one_request() == 0);
    ERASE(&f, 0, { 503, -1, 0 });
    tel_erasure_req r;
    memset(&r, 0, sizeof r);
    CHECK("a 503 keeps it", erc == TEL_OK && requests() == 1 && est.backed_off);
    CHECK("with a backoff of its own",
          tel__erasure_each(state, first_req, &r, NULL) == TEL_OK && r.backoff.attempt == 1 &&
          r.backoff.status == 503 && r.backoff.until_ms > tel__now_ms());
    ERASE(&f, 0, { 200, -1, 0 });
    CHECK("which the next run respects", erc == TEL_OK && f.ncalls == 0 && requests() == 1);
    ERASE(&f, 1, { 0, -1, 0 });
    CHECK("a network error (forced run) keeps it too",
          erc == TEL_OK && f.ncalls == 1 && requests() == 1 &&
          tel__erasure_each(state, first_req, &r, NULL) == TEL_OK && r.backoff.attempt == 2 &&
          r.backoff.status == 0);
    ERASE(&f, 1, { 400, -1, 0 });
    CHECK("a 400 gives it up: its bytes never change", erc == TEL_OK && requests() == 0 && est.given_up == 1);
}

static void erasure_unsupported(void)
{
    CHECK_GROUP("erasure: a collector without it");
    CHECK_EQ_INT("the growing schedule reaches its cap in 10 steps", tel__backoff_steps(), 10);
    erase_fake f;
    CHECK("a request waits", one_request() == 0);
    ERASE(&f, 0, { 404, -1, 0 });
    tel_erasure_req r;
    memset(&r, 0, sizeof r);
    uint64_t now = tel__now_ms();
    CHECK("a 404 keeps it, waiting a day",
          requests() == 1 && tel__erasure_each(state, first_req, &r, NULL) == TEL_OK && r.unsupported == 1 &&
          r.backoff.until_ms >= now + 86400000ull - 5000 && r.backoff.until_ms <= now + 86400000ull + 5000);
    int kept = 1;
    for (uint32_t i = 2; i < tel__backoff_steps(); i++) {
        if (i % 2)
            ERASE(&f, 1, { 404, -1, 0 });
        else
            ERASE(&f, 1, { 415, -1, 0 });
        kept = kept && f.ncalls == 1 && requests() == 1;
    }
    CHECK("404 and 415 keep it up to the ninth answer", kept);
    ERASE(&f, 1, { 503, -1, 0 });
    CHECK("a 503 meanwhile is not counted", requests() == 1 &&
                                                tel__erasure_each(state, first_req, &r, NULL) == TEL_OK &&
                                                r.unsupported == tel__backoff_steps() - 1);
    ERASE(&f, 1, { 404, -1, 0 });
    CHECK("the tenth gives it up", erc == TEL_OK && f.ncalls == 1 && requests() == 0 && est.given_up == 1);
}

/* ------------------------------------------------------------ cookie */

static void cookie(void)
{
    CHECK_GROUP("cookie");
    fx_fresh_home();
    char dir[TEL_PATH_MAX], path[TEL_PATH_MAX + 32];
    CHECK("a state directory is made",
          tel__state_dir("tcookie", dir, sizeof dir) == TEL_OK && tel__mkdir_private(dir) == TEL_OK);
    snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, dir);
    uint8_t a[TEL_ID_LEN], b[TEL_ID_LEN];
    int lasting = -1;
    CHECK("the first load creates it", tel__cookie_load(dir, a, &lasting) == TEL_OK && lasting == 1);
    struct stat st;
    CHECK("as a private file", lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    CHECK("holding a version 4 UUID", (a[6] >> 4) == 4 && (a[8] & 0xc0) == 0x80);
    CHECK("the next load reads the same id",
          tel__cookie_load(dir, b, &lasting) == TEL_OK && lasting == 1 && memcmp(a, b, TEL_ID_LEN) == 0);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("not a uuid\n", f);
        fclose(f);
    }
    CHECK("a damaged cookie is replaced by a new id",
          tel__cookie_load(dir, b, &lasting) == TEL_OK && lasting == 1 && memcmp(a, b, TEL_ID_LEN) != 0);
    uint8_t c[TEL_ID_LEN];
    CHECK("which then lasts", tel__cookie_load(dir, c, &lasting) == TEL_OK && memcmp(b, c, TEL_ID_LEN) == 0);
    CHECK("delete removes it", tel__cookie_delete(dir) == TEL_OK && lstat(path, &st) != 0);
    CHECK("a directory in its place is left alone", mkdir(path, 0700) == 0);
    CHECK("and gives an id for this run only",
          tel__cookie_load(dir, a, &lasting) == TEL_OK && lasting == 0 && lstat(path, &st) == 0 &&
          S_ISDIR(st.st_mode));
    CHECK("which changes each time", tel__cookie_load(dir, b, &lasting) == TEL_OK &&
                                         memcmp(a, b, TEL_ID_LEN) != 0);
    rmdir(path);
    CHECK("a symlink in its place is not followed", symlink("/nonexistent/elsewhere", path) == 0 &&
                                                        tel__cookie_load(dir, a, &lasting) == TEL_OK &&
                                                        lasting == 0);
    CHECK("nor deleted", tel__cookie_delete(dir) == TEL_OK && lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
}

int main(void)
{
    if (fx_setup("sync") != 0)
        return 1;
    batch = tel__sync_batch_new();
    if (!batch) {
        printf("FAIL setup: out of memory\n");
        return 1;
    }
    accepted();
    too_large();
    refused(400);
    refused(422);
    kept("drain: 503 with Retry-After", 503, 120, 120, 120);
    kept("drain: 429 without Retry-After", 429, -1, 1, 60);
    kept("drain: 401", 401, -1, 86400, 86400);
    kept("drain: 403", 403, -1, 86400, 86400);
    kept("drain: 404", 404, -1, 86400, 86400);
    crash();
    pending_file();
    network_error();
    negotiated();
    schedule();
    retry_after();
    codecs();
    gzip_spans();
    cookie();
    erasure_store();
    erasure_forget();
    erasure_sent();
    erasure_kept();
    erasure_unsupported();
    tel__sync_batch_free(batch);
    fx_cleanup();
    return check_exit();
}
