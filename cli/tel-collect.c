/*
 * cli/tel-collect.c - the reference collector.
 *
 * A small HTTP/1.1 server (libmicrohttpd, one thread per connection) that
 * takes the gzip'd MessagePack batches tel-sync uploads, checks them as
 * strictly as format/SPEC.md says, drops what it has already seen, and
 * appends every new event as one JSON line to a file or to stdout.
 *
 * It is three things at once: the endpoint of the demo and of the tests,
 * a template for teams who host their own collector, and a misbehaving
 * server on demand (--status, --drop, --delay, --fail-*), so that tel-sync's
 * retry and backoff rules can be tested against a real socket.
 *
 * Memory is bounded per request whatever the client sends: the compressed
 * body is counted as it arrives and inflated as it arrives, into a buffer
 * that is never allowed past the largest batch the wire permits, so a
 * gzip bomb costs at most that much before it is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "common.h"
#include "internal.h"
#include "prom.h"
#include "text.h"

/* The inflated batch may hold TEL_BATCH_MAX_BYTES of records plus the
 * batch's own fields and MessagePack headers; 64 KiB is far more than
 * those take, and anything past the sum is refused before it is stored. */
#define INFLATE_BOUND ((size_t)TEL_BATCH_MAX_BYTES + 64u * 1024u)
#define INFLATE_STEP (64u * 1024u)
/* How much of a refused body is still read to reach the answer (see
 * on_request): four times --max-body, at least this much. */
#define DRAIN_MIN (8ull * 1024 * 1024)

#define DEFAULT_PORT 8787
#define DEFAULT_MAX_BODY (1024u * 1024u)
#define DEFAULT_REMEMBER 1000000u
#define MAX_REMEMBER 50000000u
/* Batch ids are remembered a tenth as long as event ids (at least 1,000):
 * a batch holds many events, so this covers the same stretch of time. */
#define BATCHES_PER_EVENT 10u
/* Series kept for GET /metrics: per (app, event name) counters, and the
 * latest value of each received metric series.  Past the bound the least
 * recently updated series is forgotten, so memory stays bounded whatever
 * label values clients invent. */
#define MAX_SERIES 10000u

/* Exit codes beyond common.h's: none; listed in --help. */

struct config {
    const char *listen;
    unsigned port;
    const char *port_file;
    const char *out;
    char *token;              /* NULL: no authorization asked */
    size_t token_len;
    unsigned long long max_body;
    unsigned long long remember;
    unsigned status;          /* 0: answer normally */
    const char *retry_after;
    unsigned long long delay_ms;
    int drop;
    double fail_rate;
    unsigned long long seed;
    unsigned long long fail_first;
    unsigned long long exit_after;
    int quiet;
    int verbose;
};

static struct config cfg = {
    .listen = "127.0.0.1",
    .port = DEFAULT_PORT,
    .max_body = DEFAULT_MAX_BODY,
    .remember = DEFAULT_REMEMBER,
    .seed = 1,
};

/* ---------------------------------------------------------------------
 * A bounded set of 16-byte ids
 *
 * Ids live in a ring of `cap` slots filled in arrival order, so the oldest
 * id is always the one in the slot about to be reused: remembering a new
 * id past the bound forgets the oldest, and memory never grows.  Each slot
 * is also chained into a hash bucket for lookups.  The hash is keyed with
 * random bytes so that a client cannot easily choose event ids that all
 * land in one bucket (it is a cheap mix, not a cryptographic guarantee).
 * ------------------------------------------------------------------ */

typedef struct idset {
    uint8_t (*ids)[TEL_ID_LEN];
    uint32_t *next;           /* per slot: following slot of its bucket + 1; 0 ends */
    uint32_t *heads;          /* per bucket: first slot + 1; 0 = empty */
    size_t cap, count, fill, mask;
    uint64_t k0, k1;
} idset;

static int idset_init(idset *s, size_t cap, const idset *keys_from)
{
    size_t nb = 1;
    memset(s, 0, sizeof *s);
    while (nb < cap)
        nb <<= 1;
    /* calloc of large blocks maps zero pages lazily: an idle collector with
     * a large bound costs only what it has actually remembered. */
    s->ids = calloc(cap, TEL_ID_LEN);
    s->next = calloc(cap, sizeof *s->next);
    s->heads = calloc(nb, sizeof *s->heads);
    if (!s->ids || !s->next || !s->heads)
        return -1;
    s->cap = cap;
    s->mask = nb - 1;
    if (keys_from) {
        s->k0 = keys_from->k0;
        s->k1 = keys_from->k1;
    } else if (tel__random(&s->k0, sizeof s->k0) || tel__random(&s->k1, sizeof s->k1)) {
        return -1;
    }
    return 0;
}

static void idset_free(idset *s)
{
    free(s->ids);
    free(s->next);
    free(s->heads);
    memset(s, 0, sizeof *s);
}

static size_t idset_bucket(const idset *s, const uint8_t id[TEL_ID_LEN])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = (a ^ s->k0) * 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 29) ^ b ^ s->k1) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (size_t)h & s->mask;
}

static int idset_has(const idset *s, const uint8_t id[TEL_ID_LEN])
{
    for (uint32_t i = s->heads[idset_bucket(s, id)]; i; i = s->next[i - 1])
        if (memcmp(s->ids[i - 1], id, TEL_ID_LEN) == 0)
            return 1;
    return 0;
}

static void idset_add(idset *s, const uint8_t id[TEL_ID_LEN])
{
    size_t slot = s->fill;
    if (s->count == s->cap) {
        /* The slot to reuse holds the oldest id: unlink it from its chain
         * before overwriting, or lookups would walk into the new id. */
        uint32_t *link = &s->heads[idset_bucket(s, s->ids[slot])];
        while (*link != slot + 1)
            link = &s->next[*link - 1];
        *link = s->next[slot];
    } else {
        s->count++;
    }
    memcpy(s->ids[slot], id, TEL_ID_LEN);
    size_t b = idset_bucket(s, id);
    s->next[slot] = s->heads[b];
    s->heads[b] = (uint32_t)(slot + 1);
    s->fill = (slot + 1) % s->cap;
}

/* ---------------------------------------------------------------------
 * A bounded map of series for GET /metrics
 *
 * A series is keyed by its exposition text up to the value, e.g.
 * `mem_bytes{app="demo",host="a"}`, so rendering is a copy.  Entries sit
 * in a hash table for lookups and in a list ordered by last update; when
 * the map is full, the entry at the old end is dropped.  The hash is
 * keyed with random bytes, as the id sets are, because clients choose
 * the label values.
 * ------------------------------------------------------------------ */

typedef struct series {
    struct series *hnext;         /* next in the hash bucket */
    struct series *older, *newer; /* update order */
    uint64_t hash;
    double value;                 /* gauges */
    uint64_t count;               /* counters */
    uint64_t ts_ms;               /* time of the event that set value */
    size_t key_len;
    char key[];                   /* NUL-terminated */
} series;

#define SERIES_BUCKETS 16384u

typedef struct series_map {
    series *buckets[SERIES_BUCKETS];
    series *oldest, *newest;
    size_t count;
    uint64_t evicted;
    uint64_t k0;
} series_map;

static uint64_t series_hash(const series_map *m, const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ m->k0;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void series_unlink_order(series_map *m, series *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        m->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        m->newest = e->older;
    e->older = e->newer = NULL;
}

static void series_push_newest(series_map *m, series *e)
{
    e->older = m->newest;
    e->newer = NULL;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
}

/* The entry for key, created when missing (evicting the least recently
 * updated one at the bound) and marked as just updated.  NULL only when
 * memory ran out. */
static series *series_get(series_map *m, const char *key, size_t len)
{
    uint64_t h = series_hash(m, key, len);
    series **slot = &m->buckets[h & (SERIES_BUCKETS - 1)];
    for (series *e = *slot; e; e = e->hnext) {
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
            series_unlink_order(m, e);
            series_push_newest(m, e);
            return e;
        }
    }
    if (m->count >= MAX_SERIES && m->oldest) {
        series *old = m->oldest;
        series **link = &m->buckets[old->hash & (SERIES_BUCKETS - 1)];
        while (*link != old)
            link = &(*link)->hnext;
        *link = old->hnext;
        series_unlink_order(m, old);
        free(old);
        m->count--;
        m->evicted++;
    }
    series *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->hash = h;
    e->key_len = len;
    memcpy(e->key, key, len);
    e->hnext = *slot;
    *slot = e;
    series_push_newest(m, e);
    m->count++;
    return e;
}

static void series_free(series_map *m)
{
    series *e = m->oldest;
    while (e) {
        series *next = e->newer;
        free(e);
        e = next;
    }
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------
 * Shared state
 * ------------------------------------------------------------------ */

static int out_fd = STDOUT_FILENO;

/* Everything below store_lock is read and written only while holding it:
 * the id sets, the counters of stored work, and the output file, so that
 * the check "seen?" and the write of what was not seen are one step and
 * lines of two batches never interleave. */
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static idset seen_events, seen_batches;
static uint64_t n_batches, n_accepted, n_duplicates;
static int exit_due;
/* GET /metrics: events stored per (app, name), and received metrics. */
static series_map event_counts, metric_values;

static atomic_ullong n_rejected;
/* Refusals by HTTP status, and requests closed unanswered (--drop). */
static atomic_ullong n_rejected_status[600];
static atomic_ullong n_rejected_dropped;
static atomic_ullong n_posts;
static atomic_ullong rng_state;

/* splitmix64 over a shared counter: each request takes the next number,
 * so a given --seed always gives the same sequence of answers to requests
 * that arrive one after another. */
static double next_uniform(void)
{
    uint64_t z = atomic_fetch_add(&rng_state, 0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* ---------------------------------------------------------------------
 * One request
 * ------------------------------------------------------------------ */

typedef struct ev_line {
    uint8_t id[TEL_ID_LEN];
    size_t off, len;          /* its JSON line in request.lines */
    int dup;
    size_t ckey_off, ckey_len;  /* its event-counter key in request.keys */
    size_t mkey_off, mkey_len;  /* a metric's series key there; len 0: none */
    double mvalue;
    uint64_t ts_ms;
} ev_line;

typedef struct request {
    unsigned status;          /* the answer once decided; 0 while undecided */
    char why[200];            /* reason of a refusal, for the body and -v */
    int injected;             /* status chosen by a fault flag, not by the batch */
    int drop;
    int answered;
    int trigger_exit;
    unsigned long long body_bytes;
    unsigned long long announced;  /* Content-Length, 0 if none */

    z_stream zs;
    int z_live, z_end;
    tel_buf raw;              /* the inflated batch */

    uint8_t key[TEL_ID_LEN];  /* Idempotency-Key */
    char key_str[37];
    uint64_t received_ms;
    char suffix[96];          /* ,"batch":"<uuid>","received":<ms>}\n */
    size_t suffix_len;

    tel_buf lines;            /* one JSON line per event, in order */
    tel_buf keys;             /* series keys of the events, for GET /metrics */
    ev_line *evs;
    size_t nev;
    int collect_failed;
    size_t accepted, dups;
} request;

static void request_free(request *rq)
{
    if (rq->z_live)
        inflateEnd(&rq->zs);
    tel__buf_free(&rq->raw);
    tel__buf_free(&rq->lines);
    tel__buf_free(&rq->keys);
    free(rq->evs);
    free(rq);
}

static void refuse(request *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decides the answer (the first decision wins: later problems of a request
 * already refused are not interesting). */
static void refuse(request *rq, unsigned status, const char *fmt, ...)
{
    if (rq->status)
        return;
    rq->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->why, sizeof rq->why, fmt, ap);
    va_end(ap);
}

static void sleep_ms(unsigned long long ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------------
 * Header checks
 * ------------------------------------------------------------------ */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* True when `value` is `want` (case-insensitively), optionally followed by
 * spaces or by ';' and parameters, as media types may be. */
static int header_is(const char *value, const char *want)
{
    if (!value)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(want);
    if (strncasecmp(value, want, n) != 0)
        return 0;
    value += n;
    while (*value == ' ' || *value == '\t')
        value++;
    return *value == '\0' || *value == ';';
}

/*
 * Compares the credential of "Bearer <token>" with the configured token in
 * time that depends only on the configured token's length, so that timing
 * the answers reveals nothing about how much of a guess was right.
 */
static int authorized(const char *value)
{
    static const char scheme[] = "Bearer ";
    if (!value || strncasecmp(value, scheme, sizeof scheme - 1) != 0)
        return 0;
    const unsigned char *got = (const unsigned char *)value + sizeof scheme - 1;
    size_t got_len = strlen((const char *)got);
    const unsigned char *want = (const unsigned char *)cfg.token;
    unsigned diff = got_len != cfg.token_len;
    for (size_t i = 0; i < cfg.token_len; i++)
        diff |= want[i] ^ (i < got_len ? got[i] : 0u);
    return diff == 0;
}

/* The fault flags, in a fixed order of precedence.  They act before any
 * check of the request, as a broken proxy or server in front would. */
static void inject(request *rq)
{
    unsigned long long n = atomic_fetch_add(&n_posts, 1) + 1;
    if (n <= cfg.fail_first) {
        refuse(rq, 503, "injected failure (--fail-first)");
        rq->injected = 1;
    } else if (cfg.fail_rate > 0 && next_uniform() < cfg.fail_rate) {
        refuse(rq, 503, "injected failure (--fail-rate)");
        rq->injected = 1;
    } else if (cfg.drop) {
        rq->drop = 1;
    } else if (cfg.status) {
        refuse(rq, cfg.status, "injected status (--status)");
        rq->injected = 1;
    }
}

static void check_headers(request *rq, struct MHD_Connection *c)
{
    if (cfg.token && !authorized(header(c, MHD_HTTP_HEADER_AUTHORIZATION))) {
        refuse(rq, 401, "missing or wrong bearer token");
        return;
    }
    if (!header_is(header(c, MHD_HTTP_HEADER_CONTENT_ENCODING), "gzip")) {
        refuse(rq, 415, "Content-Encoding must be gzip");
        return;
    }
    if (!header_is(header(c, MHD_HTTP_HEADER_CONTENT_TYPE), "application/vnd.msgpack")) {
        refuse(rq, 415, "Content-Type must be application/vnd.msgpack");
        return;
    }
    const char *len = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n;
    if (len && cli_parse_uint(len, ~0ull, &n) == 0 && (rq->announced = n) > cfg.max_body) {
        refuse(rq, 413, "body of %llu bytes is over the limit of %llu", n, cfg.max_body);
        return;
    }
    const char *key = header(c, "Idempotency-Key");
    if (!key) {
        refuse(rq, 400, "missing Idempotency-Key");
        return;
    }
    if (tel__uuid_parse(key, strlen(key), rq->key) != 0) {
        refuse(rq, 400, "Idempotency-Key is not a UUID");
        return;
    }
    tel__uuid_format(rq->key, rq->key_str);
}

/* ---------------------------------------------------------------------
 * The body
 * ------------------------------------------------------------------ */

/* Inflates one piece of the body into rq->raw, never letting it grow past
 * INFLATE_BOUND + 1 bytes: reaching that is already the refusal. */
static void inflate_piece(request *rq, const uint8_t *p, size_t n)
{
    if (rq->z_end) {
        refuse(rq, 400, "data after the end of the gzip stream");
        return;
    }
    if (!rq->z_live) {
        if (inflateInit2(&rq->zs, 16 + MAX_WBITS) != Z_OK) {
            refuse(rq, 500, "out of memory");
            return;
        }
        rq->z_live = 1;
    }
    while (n > 0) {
        /* zlib counts in uInt; MHD's pieces are small, but never assume. */
        uInt take = n > 0x40000000u ? 0x40000000u : (uInt)n;
        rq->zs.next_in = (Bytef *)p;
        rq->zs.avail_in = take;
        for (;;) {
            if (rq->raw.len > INFLATE_BOUND) {
                refuse(rq, 413, "batch inflates to more than %zu bytes", (size_t)INFLATE_BOUND);
                return;
            }
            if (rq->raw.len == rq->raw.cap &&
                tel__buf_reserve(&rq->raw, INFLATE_STEP) != 0) {
                refuse(rq, 500, "out of memory");
                return;
            }
            size_t room = rq->raw.cap - rq->raw.len;
            if (room > INFLATE_BOUND + 1 - rq->raw.len)
                room = INFLATE_BOUND + 1 - rq->raw.len;
            rq->zs.next_out = rq->raw.p + rq->raw.len;
            rq->zs.avail_out = (uInt)room;
            int rc = inflate(&rq->zs, Z_NO_FLUSH);
            rq->raw.len += room - rq->zs.avail_out;
            if (rc == Z_STREAM_END) {
                rq->z_end = 1;
                if (rq->raw.len > INFLATE_BOUND)
                    refuse(rq, 413, "batch inflates to more than %zu bytes", (size_t)INFLATE_BOUND);
                else if (rq->zs.avail_in > 0 || n > take)
                    refuse(rq, 400, "data after the end of the gzip stream");
                return;
            }
            if (rc == Z_BUF_ERROR && rq->zs.avail_in == 0)
                break;                /* wants more input */
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                refuse(rq, rc == Z_MEM_ERROR ? 500 : 400, "body is not a valid gzip stream");
                return;
            }
            if (rq->zs.avail_in == 0 && rq->zs.avail_out > 0)
                break;                /* all taken, nothing pending */
        }
        p += take;
        n -= take;
    }
}

static void take_body(request *rq, const char *data, size_t n)
{
    rq->body_bytes += n;
    if (rq->status || rq->drop)
        return;               /* decided already: only count what is drained */
    if (rq->body_bytes > cfg.max_body) {
        refuse(rq, 413, "body is over the limit of %llu bytes", cfg.max_body);
        return;
    }
    inflate_piece(rq, (const uint8_t *)data, n);
}

/* ---------------------------------------------------------------------
 * Series of an event, for GET /metrics
 * ------------------------------------------------------------------ */

static int str_is(tel_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static int str_less(tel_str a, tel_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.p, b.p, n);
    return c < 0 || (c == 0 && a.len < b.len);
}

/*
 * Appends the series key of a "metric" event (format/SPEC.md, "Metric
 * events") to rq->keys: `<name>{app="<app>",<label>="<value>",...}` with
 * the labels sorted by name, so the same label set always makes the same
 * key.  An event that does not follow the layout -- another writer's, or
 * a name or label that could not be re-exposed -- gets no series; it is
 * stored and counted all the same.  Returns -1 only when memory ran out.
 */
static int metric_key(request *rq, ev_line *ev, const tel_record *r)
{
    const tel_val *name = NULL, *value = NULL;
    size_t labels[TEL_MAX_PROPS], nl = 0;
    const size_t plen = sizeof TEL_PROM_LABEL_PREFIX - 1;
    int has_app = 0, has_exported_app = 0;
    for (size_t i = 0; i < r->nprops; i++) {
        tel_str k = r->keys[i];
        if (str_is(k, "name"))
            name = &r->vals[i];
        else if (str_is(k, "value"))
            value = &r->vals[i];
        else if (k.len > plen && memcmp(k.p, TEL_PROM_LABEL_PREFIX, plen) == 0) {
            tel_str ln = { k.p + plen, k.len - (uint32_t)plen };
            if (r->vals[i].type != TEL_T_STR || tel__prom_label_name_check(ln.p, ln.len) != TEL_OK ||
                !tel__utf8_valid(r->vals[i].v.s.p, r->vals[i].v.s.len))
                return 0;
            has_app |= str_is(ln, "app");
            has_exported_app |= str_is(ln, "exported_app");
            /* Insertion sort: at most 32 labels. */
            size_t j = nl++;
            while (j > 0) {
                tel_str prev = r->keys[labels[j - 1]];
                tel_str pn = { prev.p + plen, prev.len - (uint32_t)plen };
                if (!str_less(ln, pn))
                    break;
                labels[j] = labels[j - 1];
                j--;
            }
            labels[j] = i;
        }
    }
    if (!name || name->type != TEL_T_STR || !value ||
        (value->type != TEL_T_FLOAT && value->type != TEL_T_INT))
        return 0;
    tel_str n = name->v.s;
    /* tel-collect's own families are not to be confused with received
     * ones; and the collector's "app" label wins, as Prometheus renames a
     * scraped label that clashes with a target label. */
    if (tel__prom_metric_name_check(n.p, n.len) != TEL_OK ||
        (n.len >= 12 && memcmp(n.p, "tel_collect_", 12) == 0) || (has_app && has_exported_app))
        return 0;
    tel_buf *k = &rq->keys;
    size_t start = k->len;
    if (tel__buf_append(k, n.p, n.len) || tel__buf_puts(k, "{app=\"") ||
        tel__prom_escape(k, r->app.p, r->app.len) || tel__buf_puts(k, "\""))
        return -1;
    for (size_t j = 0; j < nl; j++) {
        tel_str lk = r->keys[labels[j]];
        tel_str lv = r->vals[labels[j]].v.s;
        if (tel__buf_puts(k, ",") || (str_is((tel_str){ lk.p + plen, lk.len - (uint32_t)plen }, "app") &&
                                     tel__buf_puts(k, "exported_")) ||
            tel__buf_append(k, lk.p + plen, lk.len - plen) || tel__buf_puts(k, "=\"") ||
            tel__prom_escape(k, lv.p, lv.len) || tel__buf_puts(k, "\""))
            return -1;
    }
    if (tel__buf_puts(k, "}"))
        return -1;
    ev->mkey_off = start;
    ev->mkey_len = k->len - start;
    ev->mvalue = value->type == TEL_T_FLOAT ? value->v.f : (double)value->v.i;
    return 0;
}

/* Appends the event's counter key, and its metric series key if any. */
static int note_series(request *rq, ev_line *ev, const tel_record *r)
{
    tel_buf *k = &rq->keys;
    ev->ckey_off = k->len;
    ev->mkey_len = 0;
    ev->ts_ms = r->ts_ms;
    if (tel__buf_puts(k, "tel_collect_events_total{app=\"") || tel__prom_escape(k, r->app.p, r->app.len) ||
        tel__buf_puts(k, "\",name=\"") || tel__prom_escape(k, r->name.p, r->name.len) ||
        tel__buf_puts(k, "\"}"))
        return -1;
    ev->ckey_len = k->len - ev->ckey_off;
    if (str_is(r->name, "metric"))
        return metric_key(rq, ev, r);
    return 0;
}

/* Called under store_lock for each event stored.  A series that cannot be
 * allocated is skipped: the exposition is a view, the events are stored. */
static void count_series(const request *rq, const ev_line *ev)
{
    const char *keys = (const char *)rq->keys.p;
    series *e = series_get(&event_counts, keys + ev->ckey_off, ev->ckey_len);
    if (e)
        e->count++;
    if (ev->mkey_len == 0)
        return;
    e = series_get(&metric_values, keys + ev->mkey_off, ev->mkey_len);
    /* Retries and splits deliver out of order: the value recorded last by
     * the client wins, not the one that arrived last. */
    if (e && (e->count == 0 || ev->ts_ms >= e->ts_ms)) {
        e->count = 1;
        e->value = ev->mvalue;
        e->ts_ms = ev->ts_ms;
    }
}

/* Called by tel__batch_decode for each record: renders its JSON line with
 * the batch id and the receive time added as the object's last fields. */
static int collect_event(void *ud, const tel_record *r)
{
    request *rq = ud;
    if (rq->nev >= TEL_BATCH_MAX_EVENTS)
        goto fail;
    if (!rq->evs && !(rq->evs = calloc(TEL_BATCH_MAX_EVENTS, sizeof *rq->evs)))
        goto fail;
    ev_line *ev = &rq->evs[rq->nev];
    memcpy(ev->id, r->id, TEL_ID_LEN);
    ev->off = rq->lines.len;
    ev->len = 0;
    /* Re-sent events are common (every retry after a lost answer), and
     * rendering is most of the cost of a batch: skip the ones already
     * stored.  store() checks again under the same lock before writing,
     * as another request may store the same id in between. */
    pthread_mutex_lock(&store_lock);
    ev->dup = idset_has(&seen_events, r->id);
    pthread_mutex_unlock(&store_lock);
    rq->nev++;
    if (ev->dup)
        return 0;
    if (note_series(rq, ev, r) != 0)
        goto fail;
    size_t start = rq->lines.len;
    if (tel__record_json(r, &rq->lines) != TEL_OK)
        goto fail;
    /* The object must be "{...}" with at least one member, so that the
     * fields appended after a comma keep it valid JSON. */
    if (rq->lines.len - start < 3 || rq->lines.p[start] != '{' ||
        rq->lines.p[rq->lines.len - 1] != '}')
        goto fail;
    rq->lines.len--;
    if (tel__buf_append(&rq->lines, rq->suffix, rq->suffix_len) != 0)
        goto fail;
    ev->len = rq->lines.len - start;
    return 0;
fail:
    rq->collect_failed = 1;
    return 1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Stores the events of a decoded batch that were not seen before.  Ids are
 * remembered only once their lines are written, so a failed write leaves
 * the batch acceptable on the client's retry.
 */
static void store(request *rq, const tel_batch_head *head)
{
    /* Repeats inside the batch itself need no lock: a private set. */
    idset local;
    if (rq->nev > 1) {
        if (idset_init(&local, rq->nev, &seen_events) != 0) {
            idset_free(&local);
            refuse(rq, 500, "out of memory");
            return;
        }
        for (size_t i = 0; i < rq->nev; i++) {
            if (rq->evs[i].dup)
                continue;
            if (idset_has(&local, rq->evs[i].id))
                rq->evs[i].dup = 1;
            else
                idset_add(&local, rq->evs[i].id);
        }
        idset_free(&local);
    }

    pthread_mutex_lock(&store_lock);
    if (idset_has(&seen_batches, head->id)) {
        rq->dups = rq->nev;
        n_duplicates += rq->nev;
        pthread_mutex_unlock(&store_lock);
        rq->status = 200;
        return;
    }
    /* Squeeze out the lines of repeated events, in place, keeping order. */
    size_t w = 0;
    for (size_t i = 0; i < rq->nev; i++) {
        ev_line *ev = &rq->evs[i];
        if (ev->dup || idset_has(&seen_events, ev->id)) {
            ev->dup = 1;
            rq->dups++;
            continue;
        }
        memmove(rq->lines.p + w, rq->lines.p + ev->off, ev->len);
        w += ev->len;
        rq->accepted++;
    }
    if (w > 0 && write_all(out_fd, rq->lines.p, w) != 0) {
        int err = errno;
        pthread_mutex_unlock(&store_lock);
        rq->accepted = rq->dups = 0;
        refuse(rq, 500, "could not write events: %s", strerror(err));
        return;
    }
    for (size_t i = 0; i < rq->nev; i++) {
        if (rq->evs[i].dup)
            continue;
        idset_add(&seen_events, rq->evs[i].id);
        count_series(rq, &rq->evs[i]);
    }
    idset_add(&seen_batches, head->id);
    n_batches++;
    n_accepted += rq->accepted;
    n_duplicates += rq->dups;
    if (cfg.exit_after && !exit_due && n_accepted >= cfg.exit_after) {
        exit_due = 1;
        rq->trigger_exit = 1;
    }
    pthread_mutex_unlock(&store_lock);
    rq->status = 200;
}

static void finish_batch(request *rq)
{
    if (!rq->z_live) {
        refuse(rq, 400, "empty body");
        return;
    }
    if (!rq->z_end) {
        refuse(rq, 400, "gzip stream is truncated");
        return;
    }
    rq->received_ms = tel__now_ms();
    /* The same tail ends every line of the batch: format it once. */
    int n = snprintf(rq->suffix, sizeof rq->suffix, ",\"batch\":\"%s\",\"received\":%llu}\n",
                     rq->key_str, (unsigned long long)rq->received_ms);
    rq->suffix_len = (size_t)n;
    tel_batch_head head;
    int rc = tel__batch_decode(rq->raw.p, rq->raw.len, &head, collect_event, rq);
    if (rc == TEL_ERR_LIMIT) {
        refuse(rq, 413, "%s", tel_last_error());
        return;
    }
    if (rc < 0) {
        refuse(rq, rc == TEL_ERR_NOMEM ? 500 : 400, "bad batch: %s", tel_last_error());
        return;
    }
    if (rq->collect_failed) {
        refuse(rq, 500, "could not render an event");
        return;
    }
    if (memcmp(head.id, rq->key, TEL_ID_LEN) != 0) {
        refuse(rq, 400, "Idempotency-Key does not match the batch id");
        return;
    }
    /* The inflated bytes are no longer needed; give them back before the
     * lock, as a busy collector holds many requests at once. */
    tel__buf_free(&rq->raw);
    store(rq, &head);
}

/* ---------------------------------------------------------------------
 * Answers
 * ------------------------------------------------------------------ */

/* Copies s into a JSON string body, dropping what would need escaping:
 * reasons are plain English, this only keeps a stray quote harmless. */
static void json_plain(char *out, size_t size, const char *s)
{
    size_t j = 0;
    for (; *s && j + 1 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        out[j++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) ? '?' : (char)ch;
    }
    out[j] = '\0';
}

static void log_request(const request *rq, const char *method, const char *url, const char *what)
{
    if (cfg.verbose == 0)
        return;
    char path[80];
    json_plain(path, sizeof path, url ? url : "");
    char meth[16];
    json_plain(meth, sizeof meth, method ? method : "");
    fprintf(stderr, "%s: %s %s %s events=%zu bytes=%llu%s%s%s\n", cli_prog, meth, path,
            what, rq->nev, rq->body_bytes,
            rq->why[0] ? " (" : "", rq->why, rq->why[0] ? ")" : "");
}

static enum MHD_Result answer(struct MHD_Connection *c, request *rq,
                              const char *method, const char *url)
{
    if (cfg.delay_ms)
        sleep_ms(cfg.delay_ms);
    char body[320];
    unsigned status = rq->status ? rq->status : 500;
    if (status >= 200 && status < 300) {
        snprintf(body, sizeof body, "{\"accepted\":%zu,\"duplicates\":%zu}\n",
                 rq->accepted, rq->dups);
    } else {
        char why[sizeof rq->why];
        json_plain(why, sizeof why, rq->why);
        snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", why);
        atomic_fetch_add(&n_rejected, 1);
        if (status < 600)
            atomic_fetch_add(&n_rejected_status[status], 1);
    }
    rq->answered = 1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (cfg.retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, cfg.retry_after);
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    char what[16];
    snprintf(what, sizeof what, "%u", status);
    log_request(rq, method, url, what);
    return ret;
}

/* ---------------------------------------------------------------------
 * GET /metrics
 * ------------------------------------------------------------------ */

static int key_cmp(const void *a, const void *b)
{
    return strcmp((*(series *const *)a)->key, (*(series *const *)b)->key);
}

/* The entries of m sorted by key: a family's series end up together, as
 * the exposition format wants.  NULL with *n == 0 for an empty map. */
static series **sorted_series(const series_map *m, size_t *n)
{
    *n = 0;
    if (m->count == 0)
        return NULL;
    series **v = malloc(m->count * sizeof *v);
    if (!v)
        return NULL;
    for (series *e = m->oldest; e; e = e->newer)
        v[(*n)++] = e;
    qsort(v, *n, sizeof *v, key_cmp);
    return v;
}

static int counter_head(tel_buf *b, const char *name, const char *help)
{
    return tel__buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
}

/* The exposition of what was received, rendered under the store lock so
 * that it is one consistent moment.  Returns 0 or -1 (out of memory). */
static int render_metrics(tel_buf *b)
{
    int bad = 0;
    size_t nc = 0, ng = 0;
    pthread_mutex_lock(&store_lock);
    series **cs = sorted_series(&event_counts, &nc);
    series **gs = sorted_series(&metric_values, &ng);
    if ((event_counts.count && !cs) || (metric_values.count && !gs))
        bad = 1;
    bad = bad || counter_head(b, "tel_collect_batches_total", "Batches stored.") ||
          tel__buf_printf(b, "tel_collect_batches_total %llu\n", (unsigned long long)n_batches) ||
          counter_head(b, "tel_collect_duplicates_total", "Events received again and not stored.") ||
          tel__buf_printf(b, "tel_collect_duplicates_total %llu\n", (unsigned long long)n_duplicates) ||
          counter_head(b, "tel_collect_events_total", "Events stored, by app and event name.");
    for (size_t i = 0; i < nc && !bad; i++)
        bad = tel__buf_printf(b, "%s %llu\n", cs[i]->key, (unsigned long long)cs[i]->count) != 0;
    bad = bad || counter_head(b, "tel_collect_series_evicted_total",
                              "Series forgotten to stay within the bound of series kept.") ||
          tel__buf_printf(b, "tel_collect_series_evicted_total %llu\n",
                         (unsigned long long)(event_counts.evicted + metric_values.evicted));
    /* The gauges: every received metric series, latest value. */
    const char *family = "";
    size_t family_len = 0;
    for (size_t i = 0; i < ng && !bad; i++) {
        const char *k = gs[i]->key;
        size_t fl = strcspn(k, "{");
        if (fl != family_len || memcmp(k, family, fl) != 0) {
            bad = tel__buf_printf(b, "# TYPE %.*s gauge\n", (int)fl, k) != 0;
            family = k;
            family_len = fl;
        }
        bad = bad || tel__buf_printf(b, "%s %.17g\n", k, gs[i]->value) != 0;
    }
    pthread_mutex_unlock(&store_lock);
    free(cs);
    free(gs);
    bad = bad || counter_head(b, "tel_collect_rejected_total",
                              "Requests refused or dropped, by HTTP status.");
    for (unsigned st = 100; st < 600 && !bad; st++) {
        unsigned long long n = atomic_load(&n_rejected_status[st]);
        if (n)
            bad = tel__buf_printf(b, "tel_collect_rejected_total{status=\"%u\"} %llu\n", st, n) != 0;
    }
    unsigned long long dropped = atomic_load(&n_rejected_dropped);
    if (!bad && dropped)
        bad = tel__buf_printf(b, "tel_collect_rejected_total{status=\"dropped\"} %llu\n", dropped) != 0;
    return bad ? -1 : 0;
}

/* Answers GET /metrics (on the request's first call: it has no body). */
static enum MHD_Result serve_metrics(struct MHD_Connection *c, request *rq,
                                     const char *method, const char *url)
{
    if (cfg.token && !authorized(header(c, MHD_HTTP_HEADER_AUTHORIZATION))) {
        refuse(rq, 401, "missing or wrong bearer token");
        return answer(c, rq, method, url);
    }
    tel_buf b = TEL_BUF_INIT;
    if (render_metrics(&b) != 0) {
        tel__buf_free(&b);
        refuse(rq, 500, "out of memory");
        return answer(c, rq, method, url);
    }
    rq->answered = 1;
    rq->status = 200;
    struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        tel__buf_free(&b);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    log_request(rq, method, url, "200");
    return ret;
}

static unsigned long long drain_limit(void)
{
    unsigned long long n = cfg.max_body * 4;
    return n < DRAIN_MIN ? DRAIN_MIN : n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
    (void)cls, (void)version;   /* libmicrohttpd's callback shape */
    request *rq = *state;
    if (!rq) {
        /* First call: headers only.  Decide what can be decided now, but
         * keep reading the body unless it is announced too large: closing
         * on a client that is still sending makes it see a reset instead
         * of the answer. */
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *state = rq;
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 && strcmp(url, "/metrics") == 0)
            return serve_metrics(c, rq, method, url);
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            refuse(rq, 405, "only POST is accepted");
        else
            inject(rq);
        if (!rq->status && !rq->drop)
            check_headers(rq, c);
        /* A body announced too large is best refused before it is sent:
         * a client waiting for "100 Continue" then sends nothing, and one
         * announcing more than we would drain is not worth waiting for. */
        if (rq->status == 413 &&
            (header_is(header(c, MHD_HTTP_HEADER_EXPECT), "100-continue") ||
             rq->announced > drain_limit()))
            return answer(c, rq, method, url);
        return MHD_YES;
    }
    if (rq->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        take_body(rq, upload, *upload_size);
        *upload_size = 0;
        /* Once refused, the rest of a body is read and thrown away, so that
         * the client, still sending, gets to read the answer: a server that
         * closes with unread data makes the kernel send a reset instead.
         * Past a hard bound it is not worth it: answer and close. */
        if (rq->body_bytes > drain_limit()) {
            if (rq->drop)
                return MHD_NO;
            refuse(rq, 413, "body is over the limit of %llu bytes", cfg.max_body);
            return answer(c, rq, method, url);
        }
        return MHD_YES;
    }
    /* Last call: the whole body is in. */
    if (rq->drop) {
        if (cfg.delay_ms)
            sleep_ms(cfg.delay_ms);
        atomic_fetch_add(&n_rejected, 1);
        atomic_fetch_add(&n_rejected_dropped, 1);
        log_request(rq, method, url, "dropped");
        return MHD_NO;
    }
    if (!rq->status)
        finish_batch(rq);
    return answer(c, rq, method, url);
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;   /* libmicrohttpd's callback shape */
    request *rq = *state;
    if (!rq)
        return;
    /* Only now, with the answer sent, may the main thread stop the server. */
    if (rq->trigger_exit)
        kill(getpid(), SIGUSR1);
    request_free(rq);
    *state = NULL;
}

/* ---------------------------------------------------------------------
 * Start-up
 * ------------------------------------------------------------------ */

static void usage(void)
{
    printf(
        "usage: tel-collect [OPTIONS]\n"
        "\n"
        "The reference collector of tel: receives the batches tel-sync uploads\n"
        "(POST, any path) and appends each new event as one JSON line.\n"
        "\n"
        "Serving:\n"
        "  --listen ADDR        IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
        "  --port N             TCP port (default %u; 0 picks a free one)\n"
        "  --port-file FILE     write the port there once listening (atomically)\n"
        "  --out FILE           append JSON lines to FILE (default: stdout)\n"
        "  --token T            require 'Authorization: Bearer T' (else 401)\n"
        "  --token-file FILE    read the token from FILE's first line instead\n"
        "  --max-body BYTES     largest compressed body (default %u; else 413)\n"
        "  --remember N         event ids kept to drop duplicates (default %u;\n"
        "                       batch ids: N/10, at least 1000)\n"
        "\n"
        "Fault injection (all off by default; checked in this order):\n"
        "  --fail-first N       answer 503 to the first N POSTs\n"
        "  --fail-rate P        answer 503 to a fraction P (0..1) of POSTs\n"
        "  --seed N             seed of --fail-rate's generator (default 1)\n"
        "  --drop               read each request, then close without answering\n"
        "  --status CODE        answer CODE (200-599) to every POST, storing nothing\n"
        "  --retry-after VALUE  add 'Retry-After: VALUE' to every answer\n"
        "  --delay MS           wait MS milliseconds before every answer\n"
        "  --exit-after N       exit 0 once N distinct events were stored\n"
        "\n"
        "Other:\n"
        "  -q, --quiet          no summary line on exit\n"
        "  -v, --verbose        one stderr line per request (-vv: also server errors)\n"
        "  -h, --help           this help\n"
        "  -V, --version        print the version\n"
        "\n"
        "Answers: 200 {\"accepted\":N,\"duplicates\":M}; 400 malformed batch, bad gzip,\n"
        "missing or mismatched Idempotency-Key; 401 token; 405 not POST; 413 too\n"
        "large; 415 wrong Content-Type or Content-Encoding; 500 could not store.\n"
        "GET /metrics: what was received, as Prometheus text (counters, and the\n"
        "latest value of every received metric series as a gauge; with --token,\n"
        "the token is required there too).\n"
        "\n"
        "Exit status: 0 stopped by SIGTERM, SIGINT, SIGUSR1 or --exit-after; 1 could\n"
        "not start (listen, open --out, read --token-file, write --port-file, no\n"
        "memory or random numbers); 2 bad command line.\n",
        DEFAULT_PORT, DEFAULT_MAX_BODY, DEFAULT_REMEMBER);
}

static int read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("cannot read --token-file: %s", strerror(errno));
        return -1;
    }
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        cli_error("--token-file is empty");
        return -1;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    free(cfg.token);
    cfg.token = strdup(line);
    return cfg.token ? 0 : -1;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[TEL_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char num[16];
    int n = snprintf(num, sizeof num, "%u\n", port);
    if (write_all(fd, (const uint8_t *)num, (size_t)n) != 0 || close(fd) != 0) {
        unlink(tmp);
        return -1;
    }
    /* rename is atomic: a reader sees no file or the whole number. */
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Binds the listening socket ourselves, so that a failure can be reported
 * with its real cause, and the chosen port read back for --port 0. */
static int open_listener(int *fd_out, unsigned *port_out, int *v6_out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg.listen, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg.port);
        len = sizeof *a4;
        *v6_out = 0;
    } else {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg.port);
        inet_pton(AF_INET6, cfg.listen, &a6->sin6_addr);   /* checked in main */
        len = sizeof *a6;
        *v6_out = 1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    *port_out = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    *fd_out = fd;
    return 0;
}

enum {
    OPT_LISTEN = 256, OPT_PORT, OPT_PORT_FILE, OPT_OUT, OPT_TOKEN, OPT_TOKEN_FILE,
    OPT_MAX_BODY, OPT_REMEMBER, OPT_STATUS, OPT_RETRY_AFTER, OPT_DELAY, OPT_DROP,
    OPT_FAIL_RATE, OPT_SEED, OPT_FAIL_FIRST, OPT_EXIT_AFTER
};

static const struct option long_opts[] = {
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "port", required_argument, NULL, OPT_PORT },
    { "port-file", required_argument, NULL, OPT_PORT_FILE },
    { "out", required_argument, NULL, OPT_OUT },
    { "token", required_argument, NULL, OPT_TOKEN },
    { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
    { "max-body", required_argument, NULL, OPT_MAX_BODY },
    { "remember", required_argument, NULL, OPT_REMEMBER },
    { "status", required_argument, NULL, OPT_STATUS },
    { "retry-after", required_argument, NULL, OPT_RETRY_AFTER },
    { "delay", required_argument, NULL, OPT_DELAY },
    { "drop", no_argument, NULL, OPT_DROP },
    { "fail-rate", required_argument, NULL, OPT_FAIL_RATE },
    { "seed", required_argument, NULL, OPT_SEED },
    { "fail-first", required_argument, NULL, OPT_FAIL_FIRST },
    { "exit-after", required_argument, NULL, OPT_EXIT_AFTER },
    { "quiet", no_argument, NULL, 'q' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 }
};

/* Parses the command line into cfg; returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv)
{
    const char *token_file = NULL;
    unsigned long long v;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":qvhV", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN: {
            struct in6_addr any;
            if (inet_pton(AF_INET, optarg, &any) != 1 && inet_pton(AF_INET6, optarg, &any) != 1)
                return cli_usage_error("--listen takes an IPv4 or IPv6 address, not '%s'", optarg);
            cfg.listen = optarg;
            break;
        }
        case OPT_PORT:
            if (cli_parse_uint(optarg, 65535, &v) != 0)
                return cli_usage_error("--port takes a number from 0 to 65535");
            cfg.port = (unsigned)v;
            break;
        case OPT_PORT_FILE: cfg.port_file = optarg; break;
        case OPT_OUT: cfg.out = optarg; break;
        case OPT_TOKEN:
            if (!*optarg)
                return cli_usage_error("--token must not be empty");
            free(cfg.token);
            cfg.token = strdup(optarg);
            break;
        case OPT_TOKEN_FILE: token_file = optarg; break;
        case OPT_MAX_BODY:
            if (cli_parse_uint(optarg, 1ull << 40, &v) != 0 || v == 0)
                return cli_usage_error("--max-body takes a positive number of bytes");
            cfg.max_body = v;
            break;
        case OPT_REMEMBER:
            if (cli_parse_uint(optarg, MAX_REMEMBER, &v) != 0 || v == 0)
                return cli_usage_error("--remember takes a number from 1 to %u", MAX_REMEMBER);
            cfg.remember = v;
            break;
        case OPT_STATUS:
            if (cli_parse_uint(optarg, 599, &v) != 0 || v < 200)
                return cli_usage_error("--status takes an HTTP status from 200 to 599");
            cfg.status = (unsigned)v;
            break;
        case OPT_RETRY_AFTER:
            for (const char *s = optarg; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                    return cli_usage_error("--retry-after must not hold control characters");
            if (!*optarg)
                return cli_usage_error("--retry-after must not be empty");
            cfg.retry_after = optarg;
            break;
        case OPT_DELAY:
            if (cli_parse_uint(optarg, 3600000, &v) != 0)
                return cli_usage_error("--delay takes milliseconds, at most 3600000");
            cfg.delay_ms = v;
            break;
        case OPT_DROP: cfg.drop = 1; break;
        case OPT_FAIL_RATE: {
            char *end;
            errno = 0;
            double p = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(p >= 0.0 && p <= 1.0))
                return cli_usage_error("--fail-rate takes a number from 0 to 1");
            cfg.fail_rate = p;
            break;
        }
        case OPT_SEED:
            if (cli_parse_uint(optarg, ~0ull, &v) != 0)
                return cli_usage_error("--seed takes a non-negative number");
            cfg.seed = v;
            break;
        case OPT_FAIL_FIRST:
            if (cli_parse_uint(optarg, ~0ull, &v) != 0)
                return cli_usage_error("--fail-first takes a non-negative number");
            cfg.fail_first = v;
            break;
        case OPT_EXIT_AFTER:
            if (cli_parse_uint(optarg, ~0ull, &v) != 0 || v == 0)
                return cli_usage_error("--exit-after takes a positive number");
            cfg.exit_after = v;
            break;
        case 'q': cfg.quiet = 1; break;
        case 'v': cfg.verbose++; break;
        case 'h': usage(); return EXIT_OK;
        case 'V': return cli_version();
        case ':':
            return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt)
                return cli_usage_error("unknown option '-%c'", optopt);
            return cli_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (token_file && read_token_file(token_file) != 0)
        return EXIT_FAIL;
    if (cfg.token)
        cfg.token_len = strlen(cfg.token);
    if (cfg.token && cfg.token_len == 0)
        return cli_usage_error("the token must not be empty");
    return -1;
}

int main(int argc, char **argv)
{
    cli_prog = "tel-collect";
    int rc = parse_args(argc, argv);
    if (rc >= 0) {
        free(cfg.token);
        return rc;
    }
    rc = EXIT_FAIL;

    if (cfg.out) {
        out_fd = open(cfg.out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (out_fd < 0) {
            cli_error("cannot open --out file: %s", strerror(errno));
            free(cfg.token);
            return EXIT_FAIL;
        }
    }
    size_t batch_cap = (size_t)(cfg.remember / BATCHES_PER_EVENT);
    if (batch_cap < 1000)
        batch_cap = 1000;
    if (idset_init(&seen_events, (size_t)cfg.remember, NULL) != 0 ||
        idset_init(&seen_batches, batch_cap, NULL) != 0) {
        cli_error("out of memory");
        goto out;
    }
    atomic_store(&rng_state, cfg.seed);
    if (tel__random(&event_counts.k0, sizeof event_counts.k0) ||
        tel__random(&metric_values.k0, sizeof metric_values.k0)) {
        cli_error("no random numbers available");
        goto out;
    }

    /* Signals are taken by sigwait() in this thread only: block them before
     * the server's threads exist, so that they inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd, v6;
    unsigned port;
    if (open_listener(&lfd, &port, &v6) != 0) {
        cli_error("cannot listen on %s port %u: %s", cfg.listen, cfg.port, strerror(errno));
        goto out;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_AUTO | (v6 ? MHD_USE_IPv6 : 0) |
                     (cfg.verbose > 1 ? MHD_USE_ERROR_LOG : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_LIMIT, 512u,
        MHD_OPTION_END);
    if (!d) {
        close(lfd);
        cli_error("cannot start the HTTP server on %s port %u", cfg.listen, port);
        goto out;
    }
    if (cfg.port_file && write_port_file(cfg.port_file, port) != 0) {
        cli_error("cannot write --port-file: %s", strerror(errno));
        MHD_stop_daemon(d);
        goto out;
    }
    if (cfg.verbose)
        fprintf(stderr, "%s: listening on %s port %u\n", cli_prog, cfg.listen, port);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    rc = EXIT_OK;
    if (!cfg.quiet) {
        pthread_mutex_lock(&store_lock);
        fprintf(stderr, "%s: %llu batches, %llu events accepted, %llu duplicates, %llu rejected\n",
                cli_prog, (unsigned long long)n_batches, (unsigned long long)n_accepted,
                (unsigned long long)n_duplicates, (unsigned long long)atomic_load(&n_rejected));
        pthread_mutex_unlock(&store_lock);
    }
out:
    idset_free(&seen_events);
    idset_free(&seen_batches);
    series_free(&event_counts);
    series_free(&metric_values);
    if (cfg.out && out_fd >= 0)
        close(out_fd);
    free(cfg.token);
    return rc;
}
