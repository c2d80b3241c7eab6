/* SPDX-License-Identifier: MIT */
/*
 * format/columns.h - the column-wise batch (wire version 3, SPEC.md 4.1).
 *
 * A version 1 or 2 batch carries the stored records byte for byte.  A
 * version 3 batch carries the same events column by column: all event ids
 * together, times as differences, each execution id as a reference to the
 * event whose id it is, names and contexts once each with an index per
 * event, and the property maps as stored.  Every event stands for exactly
 * one record (its "rebuilt record"), which a reader checks and stores as
 * if it had arrived in version 2, so both layouts store the same rows.
 *
 * The 16 random bytes of an event id cannot be compressed; what version 3
 * saves is the framing and the repeats gzip pays for between them in a
 * record-per-event layout (bench/README.md, "Wire bytes").
 */
#ifndef TEL_FORMAT_COLUMNS_H
#define TEL_FORMAT_COLUMNS_H

#include <stddef.h>
#include <stdint.h>

#include "mp.h"
#include "record.h"

/* Where a record's parts lie in its own bytes: offsets from its first
 * byte (a record is at most TEL_MAX_EVENT = 16384 bytes). */
typedef struct tel_record_parts {
    uint64_t ts_ms;
    uint16_t id, exec, name, props, ctx;
    uint16_t name_size, props_size, ctx_size;
} tel_record_parts;

/*
 * Fills *out from r, a record decoded from its own bytes.  Returns 1 when
 * the record a version 3 batch rebuilds from these parts is byte for byte
 * r (true of every record tel writes), 0 when it is not (r carries an
 * unknown key, lacks "p", or encodes something longer than it must): such
 * a record travels in version 1 or 2 only, so nothing of it is lost.
 */
int tel__record_parts(const tel_record *r, tel_record_parts *out);

/* Lookup tables over one batch (slots hold an event index + 1; 0 is
 * empty), kept between batches so that building one allocates nothing. */
#define TEL_COLUMNS_SLOTS 2048
typedef struct tel_columns {
    uint16_t id_slot[TEL_COLUMNS_SLOTS];
    uint16_t name_slot[TEL_COLUMNS_SLOTS];
    uint16_t ctx_slot[TEL_COLUMNS_SLOTS];
    uint16_t name_of[TEL_BATCH_MAX_EVENTS], ctx_of[TEL_BATCH_MAX_EVENTS];
    int16_t exec_of[TEL_BATCH_MAX_EVENTS];      /* -1: written out in full */
    uint16_t name_first[TEL_BATCH_MAX_EVENTS], ctx_first[TEL_BATCH_MAX_EVENTS];
    size_t nnames, nctxs;
} tel_columns;

/*
 * Appends to out a version 3 batch holding the n records (1 <= n <=
 * TEL_BATCH_MAX_EVENTS) found at recs + off[k], described by parts[k],
 * each of which tel__record_parts accepted; head gives the batch's own
 * fields (its version and nevents are ignored).  Returns TEL_OK;
 * TEL_ERR_NOMEM; or TEL_ERR_INVALID when two neighbouring times differ by
 * more than 2^63 ms, which the layout cannot say (send version 1 or 2
 * instead).  On failure out is as it was.
 */
TEL_MUST_CHECK int tel__batch_columns(tel_buf *out, const tel_batch_head *head, const uint8_t *recs,
                                      const uint32_t *off, const tel_record_parts *parts, size_t n,
                                      tel_columns *scratch);

/* Appends a batch map's header for nkeys entries and its first five
 * (v = version, b, s, d, a from head); the caller writes the rest.
 * Returns 0, or -1 when memory ran out (out may then hold part of it). */
int tel__batch_pack_head(tel_buf *out, const tel_batch_head *head, int version, uint32_t nkeys);

/* The columns of a version 3 batch, found by tel__batch_decode: a cursor
 * at the start of each one's value. */
enum { TEL_COL_I, TEL_COL_T, TEL_COL_X, TEL_COL_NS, TEL_COL_N, TEL_COL_CS, TEL_COL_C, TEL_COL_P,
       TEL_COL_COUNT };

/*
 * Checks the columns of a version 3 batch whose head (anon included) is
 * already read, and only when every event's rebuilt record is valid calls
 * fn (may be NULL) for each, in order.  The records fn sees live in a
 * buffer of this call: their pointers are valid during the call only.
 * Sets head->nevents.  Returns as tel__batch_decode.
 */
int tel__columns_decode(const tel_mp col[TEL_COL_COUNT], tel_batch_head *head, tel_record_fn fn,
                        void *ud);

#endif
