/* SPDX-License-Identifier: MIT */
/*
 * collector/collector.h - the contracts between the parts of tel-collect:
 *
 *   main.c     command line, start-up, signals, retention
 *   http.c     the HTTP front (libmicrohttpd): routes, checks of headers,
 *              fault injection, answers, slow-client bounds
 *   batch.c    an upload's body: bounded inflate, decode, validation, and
 *              the hand-over to the store
 *   store*.c   the database (store.h)
 *   export.c   the JSON-lines export (--out)
 *   metrics.c  GET /metrics
 *
 * The configuration is filled by main.c before the server starts and only
 * read afterwards, so it needs no lock.
 */
#ifndef TEL_COLLECTOR_H
#define TEL_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "buf.h"
#include "record.h"
#include "store.h"

typedef struct collector_config {
    const char *listen;
    unsigned port;
    const char *port_file;
    const char *out;              /* NULL: no export; "-": stdout */
    char *db_url;                 /* malloc'd */
    char *token;                  /* NULL: no authorization asked */
    size_t token_len;
    unsigned long long max_body;
    unsigned status;              /* 0: answer normally */
    const char *retry_after;
    unsigned long long delay_ms;
    int drop;
    double fail_rate;
    unsigned long long seed;
    unsigned long long fail_first;
    unsigned long long exit_after;
    unsigned retain_days;         /* 0: keep forever */
    unsigned min_installs;        /* the dashboard's k */
    unsigned header_timeout;      /* seconds for a request's headers */
    unsigned body_timeout;        /* seconds for a request's body */
    unsigned max_per_ip;          /* connections per client address */
    int quiet;
    int verbose;
} collector_config;

extern collector_config tel__cfg;
/* The open store, set before the server starts. */
extern tel_store *tel__store;

/* Seconds a client is asked to wait (Retry-After) when the store failed. */
#define STORE_RETRY_AFTER "5"

/* ---------------------------------------------------------------- batch.c */

/* The body of one upload, inflated as it arrives into `out`, which never
 * grows past the largest batch the wire permits (plus one byte, which is
 * already the refusal): a gzip bomb costs at most that much. */
typedef struct inflater {
    z_stream zs;
    int live, end;
    tel_buf out;
} inflater;

/* What was decided about an upload: an HTTP status (0 while undecided)
 * and its reason; the counts of a batch that was stored. */
typedef struct verdict {
    unsigned status;
    char why[200];
    int retry;                    /* store failed: add Retry-After */
    size_t nev, accepted, dups;
    int erased;                   /* batch dropped: its anonymous id was erased */
    uint64_t deleted;             /* erasure request: events deleted now */
    int exit_due;                 /* --exit-after reached by this batch */
} verdict;

/* Sets v's status and reason, unless one was set before (the first
 * decision wins). */
void tel__refuse(verdict *v, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Inflates one piece of body; refusals go to v. */
void tel__inflate_piece(inflater *z, const uint8_t *p, size_t n, verdict *v);
/* Frees the inflater's memory; it may be reused. */
void tel__inflate_free(inflater *z);

/* The body is complete: decodes and checks the batch in z->out (its
 * Idempotency-Key is key), stores it and exports its new events.  Sets
 * v (200, or the refusal).  Frees the inflated bytes early. */
void tel__batch_finish(inflater *z, const uint8_t key[TEL_ID_LEN], verdict *v);

/* The body is complete: an erasure request (format/SPEC.md).  Sets v. */
void tel__erasure_finish(inflater *z, verdict *v);

/* ---------------------------------------------------------------- export.c */

/* Opens the export (path "-": stdout).  Returns 0 or -1 with errno. */
int tel__export_open(const char *path);
/* Reopens the export under the same path (after logrotate moved it).
 * Keeps the old file when the new one cannot be opened.  0 or -1. */
int tel__export_reopen(void);
/* 1 when an export is open. */
int tel__export_on(void);
/*
 * Appends n bytes of whole lines.  Either all of them reach the file or,
 * on a failed write (full disk), the file is cut back to where it ended
 * before, so it never holds part of a line.  Returns 0 or -1 with errno.
 */
int tel__export_write(const void *lines, size_t n);
void tel__export_close(void);

/* ---------------------------------------------------------------- metrics.c */

/* Where the /metrics series keys of one event are, in a caller's buffer. */
typedef struct series_ref {
    size_t ckey_off, ckey_len;    /* its event counter */
    size_t mkey_off, mkey_len;    /* a metric's gauge; len 0: none */
    double mvalue;
    uint64_t ts_ms;
} series_ref;

/* Random keys of the hashes.  Returns 0, or -1 without random numbers. */
int tel__metrics_init(void);
void tel__metrics_free(void);
/* Appends the series keys of record r to keys and describes them in ref.
 * Returns 0, or -1 when memory ran out. */
int tel__metrics_keys(const tel_record *r, tel_buf *keys, series_ref *ref);
/* Counts a stored batch: its new events' series (refs[i] for fresh[i]),
 * its client's dropped count, and the totals. */
void tel__metrics_batch(const char *app, uint64_t dropped, const tel_buf *keys,
                        const series_ref *refs, const unsigned char *fresh, size_t n,
                        size_t accepted, size_t dups);
/* Counts a batch that was stored before: all its events are duplicates. */
void tel__metrics_repeat(size_t dups);
/* Counts an erasure request and the events it deleted. */
void tel__metrics_erasure(uint64_t deleted);
/* Counts a refused request by status (0: closed unanswered, --drop). */
void tel__metrics_rejected(unsigned status);
/* The exposition, bounded in bytes.  Returns 0 or -1 (out of memory). */
int tel__metrics_render(tel_buf *out);
/* The exit summary's numbers. */
void tel__metrics_totals(uint64_t *batches, uint64_t *accepted, uint64_t *dups, uint64_t *rejected);

/* ---------------------------------------------------------------- http.c */

/*
 * A page served at GET <path> (the dashboard fills "/").  Called on the
 * connection's own thread, after the token check, with the query
 * arguments readable through arg(conn, name) (NULL when absent).  Fills
 * body and sets *type (a static string); returns the HTTP status.
 */
typedef struct http_get {
    const char *url;
    const char *(*arg)(void *conn, const char *name);
    void *conn;
} http_get;
typedef unsigned (*http_page_fn)(void *ud, const http_get *req, tel_buf *body, const char **type);

/* Registers fn for GET path (before tel__http_start; at most 8 pages). */
int tel__http_page(const char *path, http_page_fn fn, void *ud);

/* Starts the server on an already listening socket.  Returns 0 or -1. */
int tel__http_start(int listen_fd, int v6);
void tel__http_stop(void);

#endif
