/* SPDX-License-Identifier: MIT */
/*
 * sync/upload.h - the sync engine's transport: gzip and one HTTP POST.
 *
 * This is the only code that links libcurl and zlib, and it is linked
 * into tel-sync alone, never into libtel: a host program that records
 * events must not pay libcurl's start-up cost (about ten times a
 * do-nothing process's; bench/README.md, start-up weight).
 *
 * The transport knows nothing of queues or retries.  It compresses a body,
 * posts it once within a time limit, and reports what happened; tel-sync
 * decides what the answer means.
 */
#ifndef TEL_UPLOAD_H
#define TEL_UPLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "internal.h"

/* Connection and whole-request ceilings; a run's deadline may cut them. */
#define TEL_UPLOAD_CONNECT_MS 3000
#define TEL_UPLOAD_REQUEST_MS 10000
/* Bytes of response body kept; the rest is refused, so a collector that
 * answers with an endless body cannot grow tel-sync's memory. */
#define TEL_UPLOAD_MAX_RESPONSE (64 * 1024)
/* Retry-After values beyond this are clamped. */
#define TEL_UPLOAD_MAX_RETRY_AFTER (24 * 3600)

typedef struct tel_upload tel_upload;

typedef struct tel_upload_result {
    long status;              /* HTTP status; 0 when no response came */
    long retry_after;         /* seconds from Retry-After, -1 when none or unusable */
    size_t sent_bytes;        /* request body bytes handed to the wire */
    unsigned versions;        /* bit v set for each schema version v the final
                               * answer's Tel-Versions header lists; 0 when it
                               * has none (a collector that predates it) */
    char error[128];          /* curl's one-line reason when status == 0, else "" */
} tel_upload_result;

/* One chunk of a body to compress; the pieces are concatenated. */
typedef struct tel_iov {
    const void *data;
    size_t len;
    int random;               /* non-zero: random bytes (event ids), which no
                               * compressor can shrink: stored as they are */
} tel_iov;

/*
 * Appends to `out` the gzip stream (RFC 1952, zlib level 6) of the
 * concatenation of the n spans.  A span marked random goes into stored
 * blocks: searching random bytes for repeats finds none, yet took a
 * quarter of the instructions of a version 3 batch's compression; stored,
 * they take their own size plus a few bytes, as little as any level gets.
 * Returns TEL_OK, TEL_ERR_NOMEM or TEL_ERR_IO (zlib refused).
 */
TEL_MUST_CHECK int tel__upload_gzip(tel_buf *out, const tel_iov *spans, size_t n);

/*
 * Creates a transport posting to `endpoint` (copied).  `token` may be NULL
 * or "" for no Authorization header; it is copied and wiped on free.  The
 * endpoint must already have passed the endpoint check: this layer only
 * limits libcurl to http and https.  Returns TEL_OK, TEL_ERR_NOMEM or
 * TEL_ERR_IO (libcurl could not start).  Keeps one connection open across
 * posts, so a run of batches pays one handshake.
 */
TEL_MUST_CHECK int tel__upload_new(tel_upload **out, const char *endpoint, const char *token);
void tel__upload_free(tel_upload *u);

/*
 * POSTs the gzip body `gz` with the batch id as Idempotency-Key, waiting
 * at most min(TEL_UPLOAD_REQUEST_MS, timeout_ms) in all and
 * min(TEL_UPLOAD_CONNECT_MS, timeout_ms) to connect.  Redirects are not
 * followed (a 3xx comes back as its status).  Fills *res and returns
 * TEL_OK whenever a request was attempted, even when it failed on the
 * network (res->status == 0); TEL_ERR_NOMEM or TEL_ERR_IO only when the
 * request could not even be prepared.
 */
TEL_MUST_CHECK int tel__upload_post(tel_upload *u, const uint8_t batch_id[TEL_ID_LEN],
                     const void *gz, size_t len, uint64_t timeout_ms,
                     tel_upload_result *res);

/*
 * POSTs the gzip body of an erasure request (format/SPEC.md section 13):
 * as tel__upload_post, with its own Content-Type and no Idempotency-Key.
 */
TEL_MUST_CHECK int tel__upload_post_erasure(tel_upload *u, const void *gz, size_t len,
                                            uint64_t timeout_ms, tel_upload_result *res);

/*
 * Parses a Retry-After value (len bytes, surrounding blanks allowed):
 * delta-seconds, or an HTTP-date taken relative to `now`.  Returns the
 * seconds to wait, clamped to [0, TEL_UPLOAD_MAX_RETRY_AFTER], or -1 when
 * the value is neither.
 */
long tel__upload_retry_after(const char *value, size_t len, time_t now);

/*
 * Parses a Tel-Versions value (len bytes): schema versions as decimal
 * numbers separated by commas, blanks allowed around each.  Returns the
 * set as bits (bit v for version v, 1 <= v <= 31); a number outside that
 * range is skipped, and anything that is not such a list gives 0, which
 * means "versions 1 and 2 only" to the caller.
 */
unsigned tel__upload_versions(const char *value, size_t len);

#endif
