/* SPDX-License-Identifier: MIT */
/*
 * collector/metrics.c - GET /metrics: what this process received, as
 * Prometheus text.
 *
 * Counters per (app, event name), dropped counts per app, and the latest
 * value of every received metric series (format/SPEC.md, "Metric
 * events") as a gauge.  Clients choose label values, so everything here
 * is bounded: series per map, bytes per key, bytes of keys per map, and
 * so bytes per scrape.  Past a bound the least recently updated series is
 * forgotten.
 *
 * Uploads update the maps under metrics_lock; a scrape holds it only to
 * copy the maps into a private snapshot, then sorts and renders without
 * it, so scrapes never hold up uploads for longer than a copy.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "internal.h"
#include "prom.h"
#include "text.h"

#define MAX_SERIES 10000u
/* A series key longer than this is not kept: label values may be up to
 * 1 KiB each, but a series of several such labels is not worth exposing
 * 10,000 times over. */
#define MAX_KEY_BYTES 2048u
/* Bytes of keys per map; with MAX_SERIES this bounds a scrape to a few
 * MiB whatever clients send. */
#define MAX_MAP_BYTES (2u * 1024u * 1024u)
#define SERIES_BUCKETS 16384u

typedef struct series {
    struct series *hnext;         /* next in the hash bucket */
    struct series *older, *newer; /* update order */
    uint64_t hash;
    double value;                 /* gauges */
    uint64_t count;               /* counters */
    uint64_t ts_ms;               /* time of the event that set value */
    size_t key_len;
    char key[];                   /* NUL-terminated; holds no NUL */
} series;

typedef struct series_map {
    series *buckets[SERIES_BUCKETS];
    series *oldest, *newest;
    size_t count, bytes;
    uint64_t evicted;
    uint64_t k0;
} series_map;

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under metrics_lock: */
static series_map event_counts, dropped_counts, metric_values;
static uint64_t n_batches, n_accepted, n_duplicates, n_refused_keys;
static uint64_t n_erasures, n_erased_events;

static atomic_ullong n_rejected;
static atomic_ullong n_rejected_status[600];
static atomic_ullong n_rejected_dropped;

/* ------------------------------------------------------------ the maps */

static uint64_t series_hash(const series_map *m, const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ m->k0;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void unlink_order(series_map *m, series *e)
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

static void push_newest(series_map *m, series *e)
{
    e->older = m->newest;
    e->newer = NULL;
    if (m->newest)
        m->newest->newer = e;
    else
        m->oldest = e;
    m->newest = e;
}

static void evict_oldest(series_map *m)
{
    series *old = m->oldest;
    series **link = &m->buckets[old->hash & (SERIES_BUCKETS - 1)];
    while (*link != old)
        link = &(*link)->hnext;
    *link = old->hnext;
    unlink_order(m, old);
    m->count--;
    m->bytes -= old->key_len;
    m->evicted++;
    free(old);
}

/* The entry for key, created when missing (evicting the least recently
 * updated ones at the bounds) and marked as just updated.  NULL when the
 * key is over MAX_KEY_BYTES or memory ran out. */
static series *series_get(series_map *m, const char *key, size_t len)
{
    if (len > MAX_KEY_BYTES) {
        n_refused_keys++;
        return NULL;
    }
    uint64_t h = series_hash(m, key, len);
    series **slot = &m->buckets[h & (SERIES_BUCKETS - 1)];
    for (series *e = *slot; e; e = e->hnext) {
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0) {
            unlink_order(m, e);
            push_newest(m, e);
            return e;
        }
    }
    while (m->oldest && (m->count >= MAX_SERIES || m->bytes + len > MAX_MAP_BYTES))
        evict_oldest(m);
    series *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->hash = h;
    e->key_len = len;
    memcpy(e->key, key, len);
    e->hnext = *slot;
    *slot = e;
    push_newest(m, e);
    m->count++;
    m->bytes += len;
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

int tel__metrics_init(void)
{
    return tel__random(&event_counts.k0, sizeof event_counts.k0) ||
                   tel__random(&dropped_counts.k0, sizeof dropped_counts.k0) ||
                   tel__random(&metric_values.k0, sizeof metric_values.k0)
               ? -1
               : 0;
}

void tel__metrics_free(void)
{
    series_free(&event_counts);
    series_free(&dropped_counts);
    series_free(&metric_values);
}

/* ------------------------------------------------------------ series keys */

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

/* A label value as the exposition format wants it, and then some: control
 * bytes (a NUL would end the line for many readers, a CR confuse others)
 * become U+FFFD; backslash, quote and newline are escaped. */
static int label_value(tel_buf *k, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 0x20 && c != 0x7f) || c == '\n')
            continue;
        if (tel__prom_escape(k, s + from, i - from) || tel__buf_puts(k, "\xef\xbf\xbd"))
            return -1;
        from = i + 1;
    }
    return tel__prom_escape(k, s + from, n - from);
}

/* Inserts label index i into labels[0..n) kept sorted by label name. */
static void insert_sorted(const tel_record *r, size_t *labels, size_t n, size_t i, size_t plen)
{
    tel_str ln = { r->keys[i].p + plen, r->keys[i].len - (uint32_t)plen };
    size_t j = n;
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

/*
 * Appends the series key of a "metric" event to keys:
 * `<name>{app="<app>",<label>="<value>",...}` with the labels sorted by
 * name, so the same label set always makes the same key.  An event that
 * does not follow the layout gets no series; it is stored and counted
 * all the same.  Returns -1 only when memory ran out.
 */
static int metric_key(const tel_record *r, tel_buf *k, series_ref *ref)
{
    const tel_val *name = NULL, *value = NULL;
    size_t labels[TEL_MAX_PROPS], nl = 0;
    const size_t plen = sizeof TEL_PROM_LABEL_PREFIX - 1;
    int has_app = 0, has_exported_app = 0;
    for (size_t i = 0; i < r->nprops; i++) {
        tel_str key = r->keys[i];
        if (str_is(key, "name"))
            name = &r->vals[i];
        else if (str_is(key, "value"))
            value = &r->vals[i];
        else if (key.len > plen && memcmp(key.p, TEL_PROM_LABEL_PREFIX, plen) == 0) {
            tel_str ln = { key.p + plen, key.len - (uint32_t)plen };
            if (r->vals[i].type != TEL_T_STR || tel__prom_label_name_check(ln.p, ln.len) != TEL_OK ||
                !tel__utf8_valid(r->vals[i].v.s.p, r->vals[i].v.s.len))
                return 0;
            has_app |= str_is(ln, "app");
            has_exported_app |= str_is(ln, "exported_app");
            insert_sorted(r, labels, nl++, i, plen);
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
    size_t start = k->len;
    if (tel__buf_append(k, n.p, n.len) || tel__buf_puts(k, "{app=\"") ||
        label_value(k, r->app.p, r->app.len) || tel__buf_puts(k, "\""))
        return -1;
    for (size_t j = 0; j < nl; j++) {
        tel_str lk = r->keys[labels[j]];
        tel_str lv = r->vals[labels[j]].v.s;
        tel_str ln = { lk.p + plen, lk.len - (uint32_t)plen };
        if (tel__buf_puts(k, ",") || (str_is(ln, "app") && tel__buf_puts(k, "exported_")) ||
            tel__buf_append(k, ln.p, ln.len) || tel__buf_puts(k, "=\"") ||
            label_value(k, lv.p, lv.len) || tel__buf_puts(k, "\""))
            return -1;
    }
    if (tel__buf_puts(k, "}"))
        return -1;
    ref->mkey_off = start;
    ref->mkey_len = k->len - start;
    ref->mvalue = value->type == TEL_T_FLOAT ? value->v.f : (double)value->v.i;
    return 0;
}

int tel__metrics_keys(const tel_record *r, tel_buf *k, series_ref *ref)
{
    ref->ckey_off = k->len;
    ref->mkey_len = 0;
    ref->ts_ms = r->ts_ms;
    if (tel__buf_puts(k, "tel_collect_events_total{app=\"") || label_value(k, r->app.p, r->app.len) ||
        tel__buf_puts(k, "\",name=\"") || label_value(k, r->name.p, r->name.len) || tel__buf_puts(k, "\"}"))
        return -1;
    ref->ckey_len = k->len - ref->ckey_off;
    if (str_is(r->name, "metric"))
        return metric_key(r, k, ref);
    return 0;
}

/* ------------------------------------------------------------ counting */

/* Under metrics_lock.  A series that cannot be kept is skipped: the
 * exposition is a view, the events are stored. */
static void count_series(const char *keys, const series_ref *ref)
{
    series *e = series_get(&event_counts, keys + ref->ckey_off, ref->ckey_len);
    if (e)
        e->count++;
    if (ref->mkey_len == 0)
        return;
    e = series_get(&metric_values, keys + ref->mkey_off, ref->mkey_len);
    /* Retries and splits deliver out of order: the value recorded last by
     * the client wins, not the one that arrived last. */
    if (e && (e->count == 0 || ref->ts_ms >= e->ts_ms)) {
        e->count = 1;
        e->value = ref->mvalue;
        e->ts_ms = ref->ts_ms;
    }
}

void tel__metrics_batch(const char *app, uint64_t dropped, const tel_buf *keys,
                        const series_ref *refs, const unsigned char *fresh, size_t n,
                        size_t accepted, size_t dups)
{
    char dkey[160];
    int dlen = snprintf(dkey, sizeof dkey, "tel_collect_client_dropped_total{app=\"%s\"}", app);
    pthread_mutex_lock(&metrics_lock);
    for (size_t i = 0; i < n; i++)
        if (fresh[i])
            count_series((const char *)keys->p, &refs[i]);
    /* Apps are checked names (1-64 of [a-z0-9._-]): no escaping needed. */
    series *e = dropped ? series_get(&dropped_counts, dkey, (size_t)dlen) : NULL;
    if (e)
        e->count += dropped;
    n_batches++;
    n_accepted += accepted;
    n_duplicates += dups;
    pthread_mutex_unlock(&metrics_lock);
}

void tel__metrics_repeat(size_t dups)
{
    pthread_mutex_lock(&metrics_lock);
    n_duplicates += dups;
    pthread_mutex_unlock(&metrics_lock);
}

void tel__metrics_erasure(uint64_t deleted)
{
    pthread_mutex_lock(&metrics_lock);
    n_erasures++;
    n_erased_events += deleted;
    pthread_mutex_unlock(&metrics_lock);
}

void tel__metrics_rejected(unsigned status)
{
    atomic_fetch_add(&n_rejected, 1);
    if (status == 0)
        atomic_fetch_add(&n_rejected_dropped, 1);
    else if (status < 600)
        atomic_fetch_add(&n_rejected_status[status], 1);
}

void tel__metrics_totals(uint64_t *batches, uint64_t *accepted, uint64_t *dups, uint64_t *rejected)
{
    pthread_mutex_lock(&metrics_lock);
    *batches = n_batches;
    *accepted = n_accepted;
    *dups = n_duplicates;
    pthread_mutex_unlock(&metrics_lock);
    *rejected = atomic_load(&n_rejected);
}

/* ------------------------------------------------------------ rendering */

/* One series copied out of a map: its key in the snapshot's text. */
typedef struct snap_entry {
    size_t off;
    double value;
    uint64_t count;
} snap_entry;

typedef struct snapshot {
    tel_buf text;
    snap_entry *e[3];
    size_t n[3];
    uint64_t batches, accepted, dups, evicted, refused, erasures, erased;
} snapshot;

/* Under metrics_lock: copies a map.  Returns 0 or -1. */
static int snap_map(snapshot *s, int which, const series_map *m)
{
    s->n[which] = 0;
    if (m->count == 0)
        return 0;
    if (!(s->e[which] = malloc(m->count * sizeof *s->e[which])) ||
        tel__buf_reserve(&s->text, m->bytes + m->count) != 0)
        return -1;
    for (series *e = m->oldest; e; e = e->newer) {
        snap_entry *d = &s->e[which][s->n[which]++];
        d->off = s->text.len;
        d->value = e->value;
        d->count = e->count;
        /* Reserved above: a copy into room already there. */
        memcpy(s->text.p + s->text.len, e->key, e->key_len + 1);
        s->text.len += e->key_len + 1;
    }
    return 0;
}

static int take_snapshot(snapshot *s)
{
    pthread_mutex_lock(&metrics_lock);
    int bad = snap_map(s, 0, &event_counts) || snap_map(s, 1, &dropped_counts) ||
              snap_map(s, 2, &metric_values);
    s->batches = n_batches;
    s->accepted = n_accepted;
    s->dups = n_duplicates;
    s->evicted = event_counts.evicted + dropped_counts.evicted + metric_values.evicted;
    s->refused = n_refused_keys;
    s->erasures = n_erasures;
    s->erased = n_erased_events;
    pthread_mutex_unlock(&metrics_lock);
    return bad ? -1 : 0;
}

static int entry_cmp(const void *a, const void *b, void *text)
{
    return strcmp((const char *)text + ((const snap_entry *)a)->off,
                  (const char *)text + ((const snap_entry *)b)->off);
}

static int counter(tel_buf *b, const char *name, const char *help, uint64_t v)
{
    return tel__buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name) ||
           (v != UINT64_MAX && tel__buf_printf(b, "%s %llu\n", name, (unsigned long long)v));
}

static int counters(tel_buf *b, const snapshot *s, int which)
{
    for (size_t i = 0; i < s->n[which]; i++)
        if (tel__buf_printf(b, "%s %llu\n", (const char *)s->text.p + s->e[which][i].off,
                           (unsigned long long)s->e[which][i].count))
            return -1;
    return 0;
}

/* Every received metric series, latest value, a TYPE line per family. */
static int gauges(tel_buf *b, const snapshot *s)
{
    const char *family = "";
    size_t family_len = 0;
    for (size_t i = 0; i < s->n[2]; i++) {
        const char *k = (const char *)s->text.p + s->e[2][i].off;
        size_t fl = strcspn(k, "{");
        if (fl != family_len || memcmp(k, family, fl) != 0) {
            if (tel__buf_printf(b, "# TYPE %.*s gauge\n", (int)fl, k))
                return -1;
            family = k;
            family_len = fl;
        }
        if (tel__buf_printf(b, "%s %.17g\n", k, s->e[2][i].value))
            return -1;
    }
    return 0;
}

static int rejected(tel_buf *b)
{
    if (counter(b, "tel_collect_rejected_total", "Requests refused or dropped, by HTTP status.", UINT64_MAX))
        return -1;
    for (unsigned st = 100; st < 600; st++) {
        unsigned long long n = atomic_load(&n_rejected_status[st]);
        if (n && tel__buf_printf(b, "tel_collect_rejected_total{status=\"%u\"} %llu\n", st, n))
            return -1;
    }
    unsigned long long dropped = atomic_load(&n_rejected_dropped);
    return dropped && tel__buf_printf(b, "tel_collect_rejected_total{status=\"dropped\"} %llu\n", dropped);
}

int tel__metrics_render(tel_buf *b)
{
    snapshot s;
    memset(&s, 0, sizeof s);
    int bad = take_snapshot(&s);
    /* Sorted by key, a family's series end up together, as the format
     * wants. */
    for (int i = 0; i < 3; i++)
        if (s.n[i] > 1)
            qsort_r(s.e[i], s.n[i], sizeof *s.e[i], entry_cmp, s.text.p);
    bad = bad || counter(b, "tel_collect_batches_total", "Batches stored.", s.batches) ||
          counter(b, "tel_collect_duplicates_total", "Events received again and not stored.", s.dups) ||
          counter(b, "tel_collect_events_total", "Events stored, by app and event name.", UINT64_MAX) ||
          counters(b, &s, 0) ||
          counter(b, "tel_collect_client_dropped_total",
                  "Events clients dropped before sending (caps, poison), by app.", UINT64_MAX) ||
          counters(b, &s, 1) ||
          counter(b, "tel_collect_erasures_total", "Erasure requests carried out.", s.erasures) ||
          counter(b, "tel_collect_erased_events_total", "Stored events deleted by erasure requests.",
                  s.erased) ||
          counter(b, "tel_collect_series_evicted_total",
                  "Series forgotten to stay within the bounds of series kept.", s.evicted) ||
          counter(b, "tel_collect_series_refused_total",
                  "Series not kept because their key is over 2048 bytes.", s.refused) ||
          gauges(b, &s) || rejected(b);
    for (int i = 0; i < 3; i++)
        free(s.e[i]);
    tel__buf_free(&s.text);
    return bad ? -1 : 0;
}
