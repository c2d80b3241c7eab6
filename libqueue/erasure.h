/* SPDX-License-Identifier: MIT */
/*
 * libqueue/erasure.h - erasure requests waiting to be sent.
 *
 * When the host offered erasure (tel_options_set_erasure, recorded as
 * "erasure on" in telemetry-declared), a forget leaves behind a request
 * carrying the forgotten anonymous id; tel-sync sends it alone
 * (format/SPEC.md section 13) and removes it once the collector said 2xx
 * or the request was given up.
 *
 * Requests live in <state>/telemetry-erasure/, one file per forgotten id,
 * beside the queue and never in it: the queue is where batches are cut
 * from (a request must never travel with events), and every opt-out
 * removes the queue's files, while the user's wish to erase outlives a
 * later `tel disable`.  Each file is small UTF-8 text, replaced
 * atomically and synced (file and directory) before a forget deletes
 * anything, so a crash leaves the old request or the new one, never none:
 *
 *   # an erasure request; tel-sync sends it alone
 *   erase 1 <uuid>              the id to erase; "1" is the layout
 *   backoff <syncstate.h line>  when to try again, and why (optional)
 *   unsupported <n>             answers saying the collector has no erasure
 *   endpoint <url>              the host's endpoint, from the forgotten
 *   token <token>               queue's meta (optional; 0600 like it)
 *
 * The file name is the id in UUID text form, so a second forget of the
 * same id (after a crash between the request and the cookie's removal)
 * replaces the request instead of doubling it.
 */
#ifndef TEL_ERASURE_H
#define TEL_ERASURE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "syncstate.h"

#define TEL_ERASURE_DIR "telemetry-erasure"
#define TEL_ERASURE_FILE_MAX 2048

typedef struct tel_erasure_req {
    uint8_t anon[TEL_ID_LEN];  /* the id to erase */
    tel_backoff backoff;       /* attempt 0: never failed */
    uint32_t unsupported;      /* 404/415 answers so far */
    char endpoint[1024];       /* the host's endpoint when it was left; "" none */
    char token[512];           /* likewise; the caller wipes it after use */
} tel_erasure_req;

/*
 * Stores r as the request for r->anon (replacing one for the same id),
 * creating the directory 0700 and the file 0600, synced before the
 * return.  TEL_OK, TEL_ERR_NOSTATE (directory) or TEL_ERR_IO.
 */
TEL_MUST_CHECK int tel__erasure_save(const char *state_dir, const tel_erasure_req *r);

/* Removes the request for anon (synced).  TEL_OK also when none was
 * there; TEL_ERR_IO otherwise. */
TEL_MUST_CHECK int tel__erasure_remove(const char *state_dir, const uint8_t anon[TEL_ID_LEN]);

/*
 * Calls fn for every readable request of state_dir, oldest name first (the
 * list is read before the first call, so fn may save or remove the
 * request it is given).  fn returning non-zero stops the walk.  A file
 * that does not parse is left alone and counted in *unreadable (may be
 * NULL).  r is valid during the call only and wiped after it.  Returns
 * TEL_OK (also without a directory) or TEL_ERR_NOSTATE when the directory
 * cannot be listed.
 */
int tel__erasure_each(const char *state_dir, int (*fn)(void *ud, tel_erasure_req *r), void *ud,
                      size_t *unreadable);

/* The file's text for r, and back (TEL_OK or TEL_ERR_CORRUPT / NOMEM). */
int tel__erasure_format(const tel_erasure_req *r, tel_buf *out);
int tel__erasure_parse(const char *text, size_t len, tel_erasure_req *r);

#endif
