/* SPDX-License-Identifier: MIT */
/*
 * sync/sync.h - the sync engine: how one queue is delivered to a collector.
 *
 * tel-sync is this engine plus a command line; a long-running process can
 * link the same library (libtelsync.a) to deliver in-process, and the unit
 * tests drive it with a fake transport.  The engine never prints: what it
 * has to say goes through the note function, and failures set the detail
 * for tel_last_error() like the rest of tel.
 *
 * The protocol, whatever the transport:
 *  - events leave the queue only after the collector answered 2xx;
 *  - the batch (its id and its exact range of records) is recorded beside
 *    the queue before the first POST (libqueue/syncstate.h), so a retry in
 *    this run or a later one sends the same events under the same
 *    Idempotency-Key;
 *  - no LMDB transaction is open while the transport runs: records are
 *    copied out of the queue first;
 *  - 413 halves the batch (new ids), 400/422 drop it and count it dropped,
 *    anything else stops the run with a backoff, and so does 413 on a
 *    single event, which is kept (docs/tel-sync.md).
 */
#ifndef TEL_SYNC_H
#define TEL_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "erasure.h"
#include "internal.h"
#include "syncstate.h"
#include "upload.h"

/* Backoff schedule (see docs/tel-sync.md). */
#define TEL_BACKOFF_BASE_MS (60ull * 1000)
#define TEL_BACKOFF_CAP_MS (6ull * 3600 * 1000)
#define TEL_BACKOFF_AUTH_MS (24ull * 3600 * 1000)
#define TEL_BACKOFF_MAX_MS (24ull * 3600 * 1000)
#define TEL_BACKOFF_MIN_MS 1000ull
/* A request is not started with less time than this left in the run. */
#define TEL_SYNC_MIN_REQUEST_MS 100

/* ------------------------------------------------------------ backoff.c */

/*
 * The wait after the attempt-th failure in a row (attempt >= 1), in ms.
 * Transient failures grow exponentially with full jitter: rnd (any 64-bit
 * value, random in real use) picks the wait in [0, min(cap, base *
 * 2^(attempt-1))], so a fleet that lost the collector at once does not come
 * back at once.  Refusals that will not heal by themselves (auth != 0:
 * 401/403/404) wait a day.  A collector's Retry-After (seconds, >= 0; -1
 * when none) overrides both.  The result is clamped to [1 s, 1 day]: the
 * floor keeps a failing run from being retried by the very next hook.
 * Pure: same arguments, same answer.
 */
uint64_t tel__backoff_delay(uint32_t attempt, int auth, long retry_after_s, uint64_t rnd);

/* Non-zero when an HTTP status means "do not retry soon": 401, 403, 404. */
int tel__backoff_is_auth(long status);

/*
 * How many failures the growing schedule takes to reach its cap (10: a
 * ceiling of 60 s * 2^9 is past 6 h).  Past it, waiting longer teaches
 * nothing new: this is where "the schedule is exhausted" for a request
 * that may be given up (sync/erase.c).
 */
uint32_t tel__backoff_steps(void);

/*
 * b after one more failure answered by res: attempt counted, the wait of
 * tel__backoff_delay (auth: the day-long wait) from a random draw,
 * until_ms set from the wall clock, status and reason from res (never a
 * token: curl's reasons name a host at most).  Returns the wait in ms.
 */
uint64_t tel__backoff_next(tel_backoff *b, const tel_upload_result *res, int auth);

/* ------------------------------------------------------------- drain.c */

/*
 * Sends one gzip'd batch: the shape of tel__upload_post, with the
 * transport as `ud`.  Fills *res and returns TEL_OK whenever an answer (or
 * a network failure, res->status == 0) is known; any other return stops
 * the drain with that error, whose detail the send function has set.
 */
typedef int (*tel_sync_send_fn)(void *ud, const uint8_t batch_id[TEL_ID_LEN], const void *gz,
                                size_t len, uint64_t timeout_ms, tel_upload_result *res);

/* A line for the user at verbosity `level` (1: what happens, 2: every
 * batch), without the trailing newline.  Never holds a token or a path. */
typedef void (*tel_sync_note_fn)(void *ud, int level, const char *line);

/* fn's line from a printf format (cut at 511 bytes); nothing when fn is
 * NULL.  The engine's one way of saying things. */
void tel__sync_notef(tel_sync_note_fn fn, void *ud, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Called with each record of a batch once the collector accepted it and
 * it left the queue (an audit log, say).  Must not touch the queue. */
typedef void (*tel_sync_sent_fn)(void *ud, const uint8_t *record, size_t len);

/* Called after each accepted batch with the events sent so far in this
 * call and the events the queue held when it began (a progress display). */
typedef void (*tel_sync_progress_fn)(void *ud, size_t sent, uint64_t queued);

typedef struct tel_sync_io {
    tel_sync_send_fn send;
    void *send_ud;
    tel_sync_note_fn note;    /* NULL: silent */
    void *note_ud;
    tel_sync_sent_fn sent;    /* NULL: nobody asks */
    void *sent_ud;
    tel_sync_progress_fn progress; /* NULL: nobody watches */
    void *progress_ud;
    const char *endpoint;     /* where send posts, to remember what its collector
                               * reads (versions.c); NULL: remember nothing */
} tel_sync_io;

typedef struct tel_sync_stats {
    size_t batches, events, dropped;
    size_t wire;              /* gzip bytes of the accepted batches */
    int backed_off;           /* the run ended in a backoff (a note said why) */
} tel_sync_stats;

/* The memory of one drain: a batch's records, copied out of the queue.
 * Reused across apps, so a run over many queues allocates once. */
typedef struct tel_sync_batch tel_sync_batch;

/* Returns NULL when memory ran out.  free takes NULL. */
tel_sync_batch *tel__sync_batch_new(void);
void tel__sync_batch_free(tel_sync_batch *b);

/*
 * Sends batches of q until the queue holds nothing that was there when
 * the call began, the collector answers anything but 2xx, 413, 400 or 422,
 * or 413 to a single event (a backoff is then stored and the call returns
 * TEL_OK), or the
 * monotonic clock (tel__mono_ms) reaches `deadline`.  `app` names the
 * queue in notes only.  *stats counts what happened even on failure.
 * Returns TEL_OK, or the error of the queue, the memory or the send
 * function, with the detail set; the queue is then as consistent as
 * after a crash at that point.
 */
int tel__sync_drain(tel_queue *q, tel_sync_batch *b, const tel_sync_io *io, const char *app,
                    uint64_t deadline, tel_sync_stats *stats) __attribute__((warn_unused_result));

/*
 * Walks the whole queue as a drain would batch it, writing each batch to
 * out as one JSON line, and changes nothing (DEBUG and INSPECT).  The
 * dropped count is what the first batch would report; later ones report
 * what accrued after it.  Returns TEL_OK or an error with the detail set;
 * *batches and *events say what was shown.
 */
int tel__sync_dry_run(tel_queue *q, tel_sync_batch *b, FILE *out, uint64_t deadline,
                      size_t *batches, size_t *events) __attribute__((warn_unused_result));

/* ------------------------------------------------------------- erase.c */

/*
 * Sends one gzip'd erasure request for r: the transport opens its own
 * connection to the collector r's recorded endpoint and token resolve to
 * (with the user's settings above them), so the request never shares one
 * with batches.  Contract of tel_sync_send_fn otherwise; TEL_ERR_CONFIG
 * means r cannot be sent with the settings in force (the transport said
 * why), and the request is kept.
 */
typedef int (*tel_erase_send_fn)(void *ud, const tel_erasure_req *r, const void *gz, size_t len,
                                 uint64_t timeout_ms, tel_upload_result *res);

typedef struct tel_erase_io {
    tel_erase_send_fn send;
    void *send_ud;
    tel_sync_note_fn note;    /* NULL: silent; every note is level 1 */
    void *note_ud;
} tel_erase_io;

typedef struct tel_erase_stats {
    size_t sent;              /* accepted with 2xx: removed */
    size_t given_up;          /* removed unsent: 400/422, or unsupported too often */
    size_t waiting;           /* kept for a later run */
    size_t unreadable;        /* files that do not parse, left alone */
    int backed_off;           /* a request failed in this run */
} tel_erase_stats;

/* 404 or 415: the collector does not take erasure requests. */
int tel__erase_unsupported(long status);

/*
 * Sends every erasure request of state_dir that is not waiting out its
 * backoff (force: even then), one request per POST, until the monotonic
 * clock reaches `deadline`.  2xx removes a request; 400 and 422 remove it
 * unsent (its bytes will never be taken); 404 and 415 wait as a 404 does
 * for events (a day, or Retry-After) and at the tel__backoff_steps()-th
 * such answer the request is removed unsent; anything else keeps it with
 * the growing backoff of events.  Each request keeps its own backoff.
 * One sender at a time (a second returns TEL_OK at once).  Returns
 * TEL_OK, or the error of the store or of the send function.
 */
int tel__sync_erasures(const char *state_dir, const tel_erase_io *io, const char *app,
                       uint64_t deadline, int force, tel_erase_stats *st)
    __attribute__((warn_unused_result));

/* ----------------------------------------------------------- versions.c */

/*
 * What a collector reads.  Every answer of tel-collect lists the schema
 * versions it reads in a Tel-Versions header; the drain sends the
 * column-wise layout (version 3) only to a collector that listed it, and
 * versions 1 and 2 exactly as before to any other.  The last list heard
 * is kept in the queue's meta (TEL_META_COLLECTOR) as
 *     "1 <16 hex digits: FNV-1a of the endpoint> <versions as bits>"
 * so that a run of one small batch (a hook after each command) sends it
 * in version 3 too, and so that a changed endpoint starts over from
 * versions 1 and 2.
 */

/* The versions the collector at endpoint was last heard to read, as bits
 * (bit v for version v); 0 when unknown, stored for another endpoint, or
 * unreadable.  Never fails. */
unsigned tel__versions_load(tel_queue *q, const char *endpoint);

/* Remembers them.  Returns TEL_OK or the queue's error. */
int tel__versions_store(tel_queue *q, const char *endpoint, unsigned versions);

/* The log of upload attempts beside the queue (sent.log; see syncstate.h). */
#define TEL_SENT_LOG_MAX (64 * 1024)

#endif
