/* SPDX-License-Identifier: MIT */
/*
 * sync/upload.c - gzip with zlib, one POST with libcurl.
 *
 * Everything a hostile or broken collector can do to us is bounded here:
 * the time (connect and whole-request limits, no signals), the memory (a
 * response body cap), where we go (no redirects, http and https only) and
 * what we trust (peer and host verification are always on; there is
 * deliberately no switch to turn them off).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <zlib.h>

#include "upload.h"
#include "policy.h"

struct tel_upload {
    CURL *curl;
    char *endpoint;
    char *token;              /* NULL when there is none; wiped on free */
    tel_buf response;         /* at most TEL_UPLOAD_MAX_RESPONSE bytes */
    int response_capped;      /* the collector sent more than we keep */
    long retry_after;         /* from the final response's headers */
    unsigned versions;        /* from the final response's Tel-Versions */
    char where[96];           /* "host:port" for network errors; never the path or token */
};

/* ------------------------------------------------------------------ gzip */

#define GZIP_LEVEL 6

/* Makes room for zlib's next output, and points zs at it; returns the
 * room given (at most 1 GiB: zlib counts in uInt), 0 when memory ran out. */
static size_t out_room(z_stream *zs, tel_buf *out)
{
    if (out->cap - out->len < 64 && tel__buf_reserve(out, 64 * 1024) != 0)
        return 0;
    size_t room = out->cap - out->len;
    if (room > (1u << 30))
        room = 1u << 30;
    zs->next_out = out->p + out->len;
    zs->avail_out = (uInt)room;
    return room;
}

/* Deflates all of zs's input with `flush` (for Z_FINISH: to the end of
 * the stream), growing out as needed. */
static int deflate_all(z_stream *zs, tel_buf *out, int flush)
{
    int zr;
    do {
        size_t room = out_room(zs, out);
        if (room == 0)
            return TEL_ERR_NOMEM;
        zr = deflate(zs, flush);
        out->len += room - zs->avail_out;
        if (zr == Z_STREAM_ERROR)
            return TEL_ERR_IO;
    } while (zs->avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return TEL_OK;
}

/* Switches the level for the input to come.  zlib first ends the block
 * in progress, and answers Z_BUF_ERROR while out has no room for it. */
static int set_level(z_stream *zs, tel_buf *out, int level)
{
    for (;;) {
        size_t room = out_room(zs, out);
        if (room == 0)
            return TEL_ERR_NOMEM;
        int zr = deflateParams(zs, level, Z_DEFAULT_STRATEGY);
        out->len += room - zs->avail_out;
        if (zr == Z_OK)
            return TEL_OK;
        if (zr != Z_BUF_ERROR || tel__buf_reserve(out, 64 * 1024) != 0)
            return zr == Z_BUF_ERROR ? TEL_ERR_NOMEM : TEL_ERR_IO;
    }
}

int tel__upload_gzip(tel_buf *out, const tel_iov *spans, size_t n)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 16 + MAX_WBITS asks zlib for a gzip wrapper rather than a zlib one:
     * Content-Encoding: gzip means RFC 1952, and collectors in every
     * language decode it out of the box. */
    if (deflateInit2(&zs, GZIP_LEVEL, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return tel__fail(TEL_ERR_NOMEM, "out of memory for zlib");

    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += spans[i].len;
    /* Reserving the bound up front usually makes this a single pass; the
     * helpers above still grow the buffer if zlib ever needs more. */
    if (tel__buf_reserve(out, deflateBound(&zs, (uLong)total) + 64 + 16 * n) != 0) {
        deflateEnd(&zs);
        return tel__fail(TEL_ERR_NOMEM, "out of memory for a gzip body");
    }

    int rc = TEL_OK, level = GZIP_LEVEL;
    for (size_t i = 0; i < n && rc == TEL_OK; i++) {
        int want = spans[i].random ? 0 : GZIP_LEVEL;
        if (want != level && (rc = set_level(&zs, out, want)) != TEL_OK)
            break;
        level = want;
        const uint8_t *p = spans[i].data;
        size_t left = spans[i].len;
        do {
            /* zlib counts in uInt; feed huge spans in slices. */
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)p;
            zs.avail_in = chunk;
            rc = deflate_all(&zs, out, Z_NO_FLUSH);
            p += chunk;
            left -= chunk;
        } while (left > 0 && rc == TEL_OK);
    }
    if (rc == TEL_OK) {
        zs.next_in = NULL;
        zs.avail_in = 0;
        rc = deflate_all(&zs, out, Z_FINISH);
    }
    deflateEnd(&zs);
    if (rc == TEL_ERR_NOMEM)
        return tel__fail(rc, "out of memory for a gzip body");
    return rc == TEL_OK ? TEL_OK : tel__fail(rc, "zlib refused to compress the batch");
}

/* ----------------------------------------------------------- Retry-After */

long tel__upload_retry_after(const char *value, size_t len, time_t now)
{
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
                       value[len - 1] == '\r' || value[len - 1] == '\n'))
        len--;
    if (len == 0)
        return -1;

    size_t digits = 0;
    while (digits < len && value[digits] >= '0' && value[digits] <= '9')
        digits++;
    if (digits == len) {
        /* delta-seconds; a number too large to hold is still "very long",
         * so it saturates at the cap rather than being thrown away. */
        long v = 0;
        for (size_t i = 0; i < len; i++) {
            v = v * 10 + (value[i] - '0');
            if (v > TEL_UPLOAD_MAX_RETRY_AFTER)
                return TEL_UPLOAD_MAX_RETRY_AFTER;
        }
        return v;
    }

    /* An HTTP-date needs letters; curl_getdate is lenient enough to read
     * other shapes of text as a date, so insist on the three that RFC 9110
     * allows receivers to accept, which all start with a day name. */
    if (len > 64 || !isalpha((unsigned char)value[0]))
        return -1;
    char tmp[65];
    memcpy(tmp, value, len);
    tmp[len] = '\0';
    time_t when = curl_getdate(tmp, NULL);
    if (when == (time_t)-1)
        return -1;
    if (when <= now)
        return 0;
    if (when - now > TEL_UPLOAD_MAX_RETRY_AFTER)
        return TEL_UPLOAD_MAX_RETRY_AFTER;
    return (long)(when - now);
}

/* ---------------------------------------------------------- Tel-Versions */

unsigned tel__upload_versions(const char *value, size_t len)
{
    unsigned set = 0;
    size_t i = 0;
    for (;;) {
        while (i < len && (value[i] == ' ' || value[i] == '\t'))
            i++;
        unsigned long v = 0;
        size_t digits = 0;
        for (; i < len && value[i] >= '0' && value[i] <= '9' && digits < 10; i++, digits++)
            v = v * 10 + (unsigned long)(value[i] - '0');
        if (digits == 0 || (i < len && value[i] >= '0' && value[i] <= '9'))
            return 0;
        if (v >= 1 && v <= 31)
            set |= 1u << v;
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n'))
            i++;
        if (i == len)
            return set;
        if (value[i++] != ',')
            return 0;
    }
}

/* ------------------------------------------------------------- transport */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    tel_upload *u = ud;
    size_t n = size * nmemb;
    size_t room = TEL_UPLOAD_MAX_RESPONSE - u->response.len;
    if (n > room) {
        /* Returning short makes curl stop the transfer.  The status line
         * has been read by now, so the answer is still known. */
        u->response_capped = 1;
        if (tel__buf_append(&u->response, data, room) != 0) {
            /* Only the body is lost, never the answer: nothing to do. */
        }
        return 0;
    }
    if (tel__buf_append(&u->response, data, n) != 0)
        return 0;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    tel_upload *u = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:", vname[] = "tel-versions:";
    /* Each new status line (an interim 1xx, then the final one) starts a
     * fresh header block: only the final response's headers count. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        u->retry_after = -1;
        u->versions = 0;
    } else if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        u->retry_after = tel__upload_retry_after(data + sizeof name - 1,
                                                 n - (sizeof name - 1), time(NULL));
    } else if (n > sizeof vname - 1 && strncasecmp(data, vname, sizeof vname - 1) == 0) {
        u->versions = tel__upload_versions(data + sizeof vname - 1, n - (sizeof vname - 1));
    }
    return n;
}

static int curl_ready;

/* "host:port" of url (the scheme's port when none is written), so that a
 * network error says which collector did not answer; the path and any
 * credentials stay out of messages.  "" when the URL does not parse. */
static void where_of(const char *url, char *out, size_t size)
{
    out[0] = '\0';
    CURLU *h = curl_url();
    char *host = NULL, *port = NULL;
    if (h && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        snprintf(out, size, "%s:%s", host, port);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
}

int tel__upload_new(tel_upload **out, const char *endpoint, const char *token)
{
    *out = NULL;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return tel__fail(TEL_ERR_IO, "libcurl could not start");
        curl_ready = 1;
    }
    tel_upload *u = calloc(1, sizeof *u);
    if (!u)
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    u->endpoint = strdup(endpoint);
    u->token = (token && *token) ? strdup(token) : NULL;
    u->curl = curl_easy_init();
    if (!u->endpoint || (token && *token && !u->token) || !u->curl) {
        tel__upload_free(u);
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    }

    where_of(u->endpoint, u->where, sizeof u->where);
    CURL *c = u->curl;
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_URL, u->endpoint) != CURLE_OK;
    /* A loopback collector is on this machine: a proxy from http_proxy,
     * ALL_PROXY and the like would receive the batch and the token.  An
     * https endpoint keeps them (users behind a corporate proxy need it). */
    if (tel__endpoint_loopback(u->endpoint))
        bad |= curl_easy_setopt(c, CURLOPT_NOPROXY, "*") != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
#else
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
#endif
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    /* Without NOSIGNAL, libcurl's synchronous resolver uses SIGALRM for
     * its timeout, which is unsafe and can fire into the rest of tel-sync. */
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "tel-sync/" TEL_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, u) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, u) != CURLE_OK;
    if (bad) {
        tel__upload_free(u);
        return tel__fail(TEL_ERR_IO, "libcurl refused an option");
    }
    *out = u;
    return TEL_OK;
}

/* Frees a header list after overwriting every entry, because one of them
 * carries the bearer token. */
static void wipe_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        if (p->data)
            memset(p->data, 0, strlen(p->data));
    curl_slist_free_all(h);
}

void tel__upload_free(tel_upload *u)
{
    if (!u)
        return;
    if (u->curl)
        curl_easy_cleanup(u->curl);
    if (u->token) {
        memset(u->token, 0, strlen(u->token));
        free(u->token);
    }
    free(u->endpoint);
    tel__buf_free(&u->response);
    free(u);
}

static struct curl_slist *add_header(struct curl_slist *list, const char *h, int *bad)
{
    struct curl_slist *next = curl_slist_append(list, h);
    if (!next) {
        *bad = 1;
        return list;
    }
    return next;
}

/* One POST of a gzip body of the given type; batch_id NULL: no
 * Idempotency-Key (an erasure request is harmless to repeat). */
static int post(tel_upload *u, const char *type, const uint8_t *batch_id, const void *gz, size_t len,
                uint64_t timeout_ms, tel_upload_result *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after = -1;
    tel__buf_clear(&u->response);
    u->response_capped = 0;
    u->retry_after = -1;
    u->versions = 0;

    char id[37];
    char line[96];
    int bad = 0;
    struct curl_slist *h = NULL;
    snprintf(line, sizeof line, "Content-Type: %s", type);
    h = add_header(h, line, &bad);
    h = add_header(h, "Content-Encoding: gzip", &bad);
    if (batch_id) {
        tel__uuid_format(batch_id, id);
        snprintf(line, sizeof line, "Idempotency-Key: %s", id);
        h = add_header(h, line, &bad);
    }
    /* Empty values remove headers curl would add by itself: "Accept" says
     * nothing we need, and "Expect: 100-continue" would cost a round trip
     * (or a one-second stall) on every batch over a kilobyte. */
    h = add_header(h, "Accept:", &bad);
    h = add_header(h, "Expect:", &bad);
    if (u->token) {
        tel_buf auth = TEL_BUF_INIT;
        if (tel__buf_printf(&auth, "Authorization: Bearer %s", u->token) != 0 ||
            tel__buf_append(&auth, "", 1) != 0)
            bad = 1;
        else
            h = add_header(h, (const char *)auth.p, &bad);
        if (auth.p)
            memset(auth.p, 0, auth.cap);
        tel__buf_free(&auth);
    }
    if (bad) {
        wipe_headers(h);
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    }

    if (timeout_ms < 1)
        timeout_ms = 1;
    long total = timeout_ms < TEL_UPLOAD_REQUEST_MS ? (long)timeout_ms : TEL_UPLOAD_REQUEST_MS;
    long connect = total < TEL_UPLOAD_CONNECT_MS ? total : TEL_UPLOAD_CONNECT_MS;
    CURL *c = u->curl;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, gz);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect);

    CURLcode cr = curl_easy_perform(c);

    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t up = 0;
    if (curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK && up > 0)
        res->sent_bytes = (size_t)up;
    /* The header list must outlive the transfer; the handle keeps only a
     * pointer to it, so detach it before freeing. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    wipe_headers(h);

    if (cr == CURLE_OK || (cr == CURLE_WRITE_ERROR && u->response_capped && status > 0)) {
        res->status = status;
        res->retry_after = u->retry_after;
        res->versions = u->versions;
        return TEL_OK;
    }
    /* Any other failure, even after a status line arrived, means we cannot
     * know whether the collector kept the batch: report a network error so
     * that the batch is retried under the same id. */
    res->status = 0;
    if (u->where[0])
        snprintf(res->error, sizeof res->error, "%s (%s)", curl_easy_strerror(cr), u->where);
    else
        snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(cr));
    return TEL_OK;
}

int tel__upload_post(tel_upload *u, const uint8_t batch_id[TEL_ID_LEN], const void *gz, size_t len,
                     uint64_t timeout_ms, tel_upload_result *res)
{
    return post(u, "application/vnd.msgpack", batch_id, gz, len, timeout_ms, res);
}

int tel__upload_post_erasure(tel_upload *u, const void *gz, size_t len, uint64_t timeout_ms,
                             tel_upload_result *res)
{
    return post(u, "application/vnd.tel.erasure+msgpack", NULL, gz, len, timeout_ms, res);
}
