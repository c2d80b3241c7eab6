/* SPDX-License-Identifier: MIT */
/*
 * libqueue/syncstate.h - what tel-sync remembers between runs.
 *
 * tel-sync keeps its state in the queue's meta table, next to the events,
 * so that it survives crashes and is purged with them.  `tel status` reads
 * the same keys to tell the user why nothing is being sent.  The batch in
 * flight is the exception: it lives in a file beside the queue (below).
 * Nothing here needs libcurl: this file is part of libtel.
 *
 * Every value is one line of ASCII text starting with a layout version, so
 * that `mdb_dump` shows it readably and a future tel-sync can tell an old
 * layout apart:
 *
 *   meta "backoff"   "1 <until_ms> <attempt> <status> <reason>"
 *                    until_ms  wall clock (ms since the epoch) before which
 *                              no upload is tried unless --force
 *                    attempt   failed attempts in a row (drives the growth)
 *                    status    last HTTP status, 0 for a network error
 *                    reason    a short text to the end of the line, e.g.
 *                              "HTTP 503" or "Couldn't connect to server";
 *                              never a token or a path
 *   file "sync.pending"  "<sum> 1 <batch uuid> <first_seq> <last_seq> <count> <dropped>"
 *                    the batch chosen before its first POST: which records
 *                    it holds and the dropped count it reports, so a retry
 *                    sends the same events under the same id; <sum> is 16
 *                    hex digits, tel__pending_sum of its first record.
 *                    A file, written without a sync, rather than a commit:
 *                    every commit takes the queue's one writer lock and
 *                    waits for the disk, and a host recording an event
 *                    waits behind it.  A killed tel-sync finds the file
 *                    as written (the page cache keeps it); a power cut
 *                    may take it back, as it may take back the queue's
 *                    last commit (its meta page is not synced), and the
 *                    same events then go again under a new id, which a
 *                    collector drops by their event ids.  The sum ties
 *                    the file to the records it was written for: a queue
 *                    removed and started anew reuses sequence numbers,
 *                    never records.
 *   meta "pending"   the same line without <sum>, where a tel-sync before
 *                    this one kept it: still honoured when no file is
 *   meta "last_sync" "1 <ms> <events>"
 *                    when the last batch was accepted, and its size
 *
 * A missing key means "no backoff", "no batch in flight", "never sent".
 */
#ifndef TEL_SYNCSTATE_H
#define TEL_SYNCSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The keys are TEL_META_BACKOFF, TEL_META_PENDING and TEL_META_LAST_SYNC
 * (internal.h).  The log of upload attempts, sent.log (rotated to
 * sent.log.1), lies beside the queue and goes with it on forget. */
#define TEL_SENT_LOG "sent.log"
#define TEL_PENDING_FILE "sync.pending"

/* Non-zero when `name`, a file in the queue directory, is one the sync
 * engine wrote about the old events (the queue removes them on wipe). */
int tel__syncstate_is_file(const char *name);

/* Encoded values never exceed this many bytes (including no NUL). */
#define TEL_SYNCSTATE_MAX 160

typedef struct tel_backoff {
    uint64_t until_ms;        /* wall clock, ms since the epoch */
    uint32_t attempt;         /* consecutive failures */
    int status;               /* last HTTP status; 0 = network error */
    char reason[72];          /* NUL-terminated, printable ASCII */
} tel_backoff;

typedef struct tel_pending {
    uint8_t id[TEL_ID_LEN];   /* the batch id, sent as Idempotency-Key */
    uint64_t first_seq;
    uint64_t last_seq;
    uint32_t count;           /* records in first..last when chosen */
    uint64_t dropped;         /* the "d" field the batch reports */
    uint64_t first_sum;       /* tel__pending_sum of its first record; 0: not
                               * known (kept in the meta table, see above) */
} tel_pending;

typedef struct tel_last_sync {
    uint64_t at_ms;
    uint32_t events;
} tel_last_sync;

/*
 * Encoders write one line (no newline, no NUL) into out[0..cap) and return
 * its length, or 0 when cap is too small.  A reason with bytes outside
 * printable ASCII has them replaced by '?'.
 */
size_t tel__backoff_encode(const tel_backoff *b, char *out, size_t cap);
size_t tel__pending_encode(const tel_pending *p, char *out, size_t cap);
size_t tel__last_sync_encode(const tel_last_sync *s, char *out, size_t cap);

/*
 * Decoders parse exactly what the encoders write (len bytes, no NUL
 * needed).  They return TEL_OK, or TEL_ERR_CORRUPT for anything else, in
 * which case the caller should treat the key as absent.
 */
int tel__backoff_decode(tel_backoff *out, const void *buf, size_t len);
int tel__pending_decode(tel_pending *out, const void *buf, size_t len);
int tel__last_sync_decode(tel_last_sync *out, const void *buf, size_t len);

/*
 * Convenience readers over the queue's meta table (for the pending batch:
 * its file first): TEL_OK and *out filled, TEL_ERR_NOTFOUND when the key
 * is absent or unreadable, or the queue's error.
 */
int tel__backoff_load(tel_queue *q, tel_backoff *out);
int tel__pending_load(tel_queue *q, tel_pending *out);
int tel__last_sync_load(tel_queue *q, tel_last_sync *out);

/* The checksum (64-bit FNV-1a) that ties a pending batch to its first
 * record's bytes; never 0. */
uint64_t tel__pending_sum(const void *record, size_t len);

/*
 * Records p, whose first_sum must be set, as the batch in flight (the
 * file above, replaced whole; no sync).  Returns TEL_OK, or TEL_ERR_IO
 * with the detail set (no path in it): the batch must then not be sent.
 */
TEL_MUST_CHECK int tel__pending_store(tel_queue *q, const tel_pending *p);

/* Forgets the batch in flight once it is delivered or dropped.  Best
 * effort: a file left behind names records that are gone, and is ignored. */
void tel__pending_clear(tel_queue *q);

#endif
