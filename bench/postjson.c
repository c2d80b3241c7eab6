/* SPDX-License-Identifier: MIT */
/*
 * bench/postjson.c - the one-POST-per-event peer: each event rendered as a
 * JSON object and sent by libcurl in its own HTTP request, as Atmos and
 * werf send theirs.  Each event gets a fresh easy handle, hence a fresh
 * connection, because in those tools each event comes from a separate run
 * of the CLI; process start-up is left out, which flatters the peer.
 *
 *   postjson URL EVENTS TRIALS
 *
 * The JSON carries what a tel record carries (event id, time, name,
 * properties, execution and anonymous ids, the context) under readable
 * keys, for the same realistic events tel's queue holds.  Prints
 * "post median min max bytes_per_event body_per_event", rates in
 * events/s; bytes are the request's headers and body as sent.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "stats.h"

#define MAX_EVENTS 20000
#define MAX_TRIALS 15

static bench_ev events[MAX_EVENTS + 8];

static void uuid(bench_rng *r, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        uint32_t b = bench_next(r) & 0xff;
        out[j++] = hex[b >> 4];
        out[j++] = hex[b & 15];
    }
    out[j] = '\0';
}

static size_t render(bench_rng *r, const bench_ev *e, const char *anon, char *out, size_t cap)
{
    char id[37], exec[37];
    uuid(r, id);
    uuid(r, exec);
    size_t n = (size_t)snprintf(out, cap, "{\"id\":\"%s\",\"timestamp\":%llu,\"event\":\"%s\",\"properties\":{",
                                id, 1767225600000ull + bench_next(r), e->name);
    for (size_t i = 0; i < e->nprops; i++) {
        const tel_prop *p = &e->props[i];
        n += (size_t)snprintf(out + n, cap - n, "%s\"%s\":", i ? "," : "", p->key);
        switch (p->type) {
        case TEL_T_STR: n += (size_t)snprintf(out + n, cap - n, "\"%s\"", p->v.s); break;
        case TEL_T_INT: n += (size_t)snprintf(out + n, cap - n, "%lld", (long long)p->v.i); break;
        case TEL_T_FLOAT: n += (size_t)snprintf(out + n, cap - n, "%g", p->v.f); break;
        case TEL_T_BOOL: n += (size_t)snprintf(out + n, cap - n, "%s", p->v.b ? "true" : "false"); break;
        default: n += (size_t)snprintf(out + n, cap - n, "null"); break;
        }
    }
    n += (size_t)snprintf(out + n, cap - n,
                          "},\"executionId\":\"%s\",\"anonymousId\":\"%s\",\"context\":{"
                          "\"app\":\"benchapp\",\"appVersion\":\"%s\",\"libVersion\":\"0.1.0\","
                          "\"os\":\"linux\",\"arch\":\"x86_64\",\"cpus\":8,\"ci\":%s%s}}",
                          exec, anon, e->version, e->ci ? "true" : "false",
                          e->ci == 1 ? ",\"ciVendor\":\"github_actions\""
                                     : e->ci == 2 ? ",\"ciVendor\":\"gitlab\"" : "");
    return n;
}

static size_t header_bytes;

static int on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)c, (void)data, (void)ud;
    if (type == CURLINFO_HEADER_OUT)
        header_bytes += size;
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

/* One event, one request, one fresh connection.  Returns 0 on a 200. */
static int post(const char *url, struct curl_slist *hdrs, const char *body, size_t len, int count_headers)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (count_headers) {
        curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
        curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    }
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && status == 200 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int nev = atoi(argv[2]), trials = atoi(argv[3]);
    if (nev < 1 || nev > MAX_EVENTS || trials < 1 || trials > MAX_TRIALS)
        return 2;
    bench_rng rng = { 0x7e1u };
    bench_events_fill(&rng, events, nev);
    char anon[37];
    uuid(&rng, anon);
    static char body[MAX_EVENTS][1024];
    static size_t blen[MAX_EVENTS];
    size_t body_total = 0;
    for (int i = 0; i < nev; i++) {
        blen[i] = render(&rng, &events[i], anon, body[i], sizeof body[i]);
        body_total += blen[i];
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");

    /* Headers are counted on an untimed pass, with libcurl's debug
     * callback; the timed passes run without it. */
    int probe = nev < 100 ? nev : 100;
    for (int i = 0; i < probe; i++)
        if (post(argv[1], hdrs, body[i], blen[i], 1) != 0) {
            fprintf(stderr, "postjson: a POST failed\n");
            return 1;
        }
    double rate[MAX_TRIALS];
    for (int t = 0; t < trials; t++) {
        double t0 = bench_now_s();
        for (int i = 0; i < nev; i++)
            if (post(argv[1], hdrs, body[i], blen[i], 0) != 0) {
                fprintf(stderr, "postjson: a POST failed\n");
                return 1;
            }
        rate[t] = nev / (bench_now_s() - t0);
    }
    curl_slist_free_all(hdrs);
    curl_global_cleanup();
    double med = bench_median(rate, trials);
    double body_avg = (double)body_total / nev;
    printf("post %.0f %.0f %.0f %.0f %.0f\n", med, rate[0], rate[trials - 1],
           body_avg + (double)header_bytes / probe, body_avg);
    return 0;
}
