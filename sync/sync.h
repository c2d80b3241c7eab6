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
 *  - the batch (its id and its exact range of records) is written to the
 *    queue's meta before the first POST, so a retry in this run or a later
 *    one sends the same events under the same Idempotency-Key;
 *  - no LMDB transaction is open while the transport runs: records are
 *    copied out of the queue first;
 *  - 413 halves the batch (new ids), 400/422 drop it and count it dropped,
 *    anything else stops the run with a backoff (docs/tel-sync.md).
 */
#ifndef TEL_SYNC_H
#define TEL_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
 * the call began, the collector answers anything but 2xx, 413, 400 or 422
 * (a backoff is then stored and the call returns TEL_OK), or the
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

/* The log of upload attempts beside the queue (sent.log; see syncstate.h). */
#define TEL_SENT_LOG_MAX (64 * 1024)

#endif
