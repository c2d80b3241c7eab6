/* SPDX-License-Identifier: MIT */
/*
 * format/record.h - the event record and the upload batch (wire version 1).
 *
 * A record is one event as a MessagePack map; the same bytes are stored in
 * the queue and embedded, untouched, in the upload batch.  SPEC.md in this
 * folder is the normative description; this header is its C binding.
 *
 *   record (map)                         batch (map)
 *   +------+--------------------------+  +-----+---------------------------+
 *   | "i"  | bin 16   event id (UUIDv4)|  | "v" | uint     schema version = 1|
 *   | "t"  | uint     time, ms epoch   |  | "b" | bin 16   batch id (UUIDv4)|
 *   | "n"  | str      event name       |  | "s" | uint     send time, ms    |
 *   | "p"  | map      properties       |  | "d" | uint     dropped locally  |
 *   | "x"  | bin 16   execution id     |  | "a" | bin 16 | nil  anonymous id|
 *   | "a"  | bin 16 | nil  anon id     |  | "e" | array    records          |
 *   | "c"  | map      context          |  +-----+---------------------------+
 *   +------+--------------------------+
 *
 * Decoding never trusts a length: every header is checked against the
 * bytes left before anything is read or allocated, so any input is safe.
 */
#ifndef TEL_FORMAT_RECORD_H
#define TEL_FORMAT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "tel.h"
#include "buf.h"
#include "error.h"
#include "text.h"

/* The newest schema version this code reads, and the version of a batch
 * whose records hold no structured value (SPEC.md, section 8: such a
 * batch is still sent as version 1, so that a collector that only knows
 * version 1 keeps receiving it).  Version 2 is the newest a record or an
 * erasure request may need; version 3 only changes how a batch lays its
 * events out (column by column), and is sent only to a collector that
 * said it reads it. */
#define TEL_SCHEMA_VERSION 3
#define TEL_SCHEMA_VERSION_FLAT 1
#define TEL_SCHEMA_VERSION_NESTED 2
#define TEL_SCHEMA_VERSION_COLUMNS 3

/* Batch limits of the wire: a batch holds at most this many events and
 * this many bytes of records before compression. */
#define TEL_BATCH_MAX_EVENTS 1000
#define TEL_BATCH_MAX_BYTES (512u * 1024u)

/* The context stamped on each event; borrowed strings, NULL = absent. */
typedef struct tel_ctx {
    const char *app;          /* "c.app"  */
    const char *app_version;  /* "c.av"   */
    const char *lib_version;  /* "c.lv"   */
    const char *os;           /* "c.os"   linux, darwin, freebsd ... */
    const char *arch;         /* "c.arch" x86_64, aarch64 ... */
    int cpus;                 /* "c.cpu"  online CPUs, 0 = unknown */
    int ci;                   /* "c.ci"   1 when running under CI */
    const char *ci_vendor;    /* "c.civ"  e.g. "github_actions", NULL if none */
    const char *project;      /* "c.prj"  hex project id, NULL unless opted in */
} tel_ctx;

/* An event to encode.  Nothing is owned. */
typedef struct tel_event_in {
    uint8_t id[TEL_ID_LEN];
    uint64_t ts_ms;
    const char *name;
    const tel_prop *props;
    size_t nprops;
    uint8_t exec[TEL_ID_LEN];
    const uint8_t *anon;      /* TEL_ID_LEN bytes, or NULL for "no lasting id" */
    const tel_ctx *ctx;
} tel_event_in;

/* A length-delimited view into someone else's bytes (not NUL-terminated). */
typedef struct tel_str {
    const char *p;
    uint32_t len;
} tel_str;

/* An array or a map inside a decoded record: its whole MessagePack value
 * (header included) and its number of elements or entries.  Walk it with
 * the reader of mp.h; the decoder has checked every rule of SPEC.md 3.1
 * inside it. */
typedef struct tel_nested {
    const uint8_t *p;
    uint32_t len;
    uint32_t n;
} tel_nested;

typedef struct tel_val {
    tel_type type;
    union {
        int b;
        int64_t i;
        double f;
        tel_str s;
        tel_nested c;     /* TEL_T_ARRAY, TEL_T_MAP */
    } v;
} tel_val;

/*
 * A decoded record: every pointer points into the buffer that was decoded,
 * which must outlive the view.  Absent optional strings have p == NULL.
 */
typedef struct tel_record {
    const uint8_t *id;
    uint64_t ts_ms;
    tel_str name;
    size_t nprops;
    tel_str keys[TEL_MAX_PROPS];
    tel_val vals[TEL_MAX_PROPS];
    const uint8_t *exec;
    const uint8_t *anon;      /* NULL when the record carries nil */
    tel_str app, app_version, lib_version, os, arch, ci_vendor, project;
    int64_t cpus;
    int ci;
    /* The encoded name (its str header included), property map and
     * context map, as they lie in raw; props_at is NULL without "p". */
    const uint8_t *name_at, *props_at, *ctx_at;
    uint32_t name_size, props_size, ctx_size;
    const uint8_t *raw;       /* the whole record */
    size_t raw_len;
    int version;              /* the oldest schema version that allows it: 1, or 2
                               * when it holds a structured value */
} tel_record;

/*
 * Checks an event name and its properties against the limits of tel.h.
 * Returns TEL_OK, TEL_ERR_INVALID or TEL_ERR_LIMIT with the reason in
 * tel_last_error().
 */
int tel__event_check(const char *name, const tel_prop *props, size_t nprops);

/* What checking an event measured: the encoder's input, so that an event
 * is checked and measured once.  key_len and str_len are per top-level
 * property (str_len only for a string); nested: one holds an array or a
 * map. */
typedef struct tel_event_shape {
    size_t name_len;
    size_t ntop;
    int nested;
    uint16_t key_len[TEL_MAX_PROPS];
    uint16_t str_len[TEL_MAX_PROPS];
} tel_event_shape;

/* tel__event_check, filling *shape when the event is good. */
int tel__event_measure(const char *name, const tel_prop *props, size_t nprops, tel_event_shape *shape);

/* In a flat array of properties (tel.h), the index just past the item at
 * props[i] and everything nested in it (never past nprops). */
size_t tel__prop_skip(const tel_prop *props, size_t nprops, size_t i);

/* Checks a name alone: 1-64 of [A-Za-z0-9_.:-].  Like every check here it
 * returns TEL_OK (0) when the name is good, else TEL_ERR_INVALID or
 * TEL_ERR_LIMIT with the reason, so test it with `!= TEL_OK`. */
int tel__event_name_valid(const char *name, size_t len);

/*
 * Encodes `ev` as a record into buf[0..cap).  Checks the event first.
 * Returns TEL_OK and sets *len, or TEL_ERR_LIMIT when the record would
 * exceed its limit (TEL_MAX_FLAT_EVENT, or TEL_MAX_EVENT with a structured
 * value), or the error of tel__event_check().  When only `cap` was too
 * small, TEL_ERR_LIMIT comes with *len set to the size needed, so a
 * caller may retry with a larger buffer.
 */
TEL_MUST_CHECK int tel__record_encode(const tel_event_in *ev, uint8_t *buf, size_t cap, size_t *len);

/*
 * A record ends with its execution id, anonymous id and context ("x",
 * "a", "c"), the same for every event of one run and one identity; a
 * handle encodes them once (tel__record_tail, which checks the context)
 * and every event's own fields before them (tel__record_encode_tail,
 * given the event's tel__event_measure).  The bytes are those of
 * tel__record_encode for the same event.
 *
 * tel__record_tail encodes the tail of ev (its id, time, name and
 * properties are not read) into buf[0..cap) and sets *len.  Returns
 * TEL_OK, TEL_ERR_INVALID or TEL_ERR_LIMIT for a bad context, or
 * TEL_ERR_LIMIT with *len set to the size needed when only cap was too
 * small.  tel__record_encode_tail returns what tel__record_encode
 * returns, but does not check the event again: shape must be what
 * tel__event_measure gave for its name and properties.
 */
TEL_MUST_CHECK int tel__record_tail(const tel_event_in *ev, uint8_t *buf, size_t cap, size_t *len);
TEL_MUST_CHECK int tel__record_encode_tail(const tel_event_in *ev, const tel_event_shape *shape,
                                           const uint8_t *tail, size_t tail_len, uint8_t *buf, size_t cap,
                                           size_t *len);

/*
 * Decodes one record occupying exactly buf[0..len).  Strict: every field
 * of the spec is checked (types, lengths, limits, UTF-8 of strings is not
 * checked); unknown keys are skipped for forward compatibility.  Returns
 * TEL_OK or TEL_ERR_CORRUPT with the reason in tel_last_error().
 */
int tel__record_decode(tel_record *out, const void *buf, size_t len);

/*
 * Appends one property value as JSON (arrays and maps as JSON arrays and
 * objects).  Returns TEL_OK or TEL_ERR_NOMEM.
 */
int tel__value_json(const tel_val *v, tel_buf *out);

/*
 * Appends the record as one JSON object (no newline) to `out`: ids as
 * UUID strings, time as ms and as ISO-8601 UTC, strings escaped.
 * Returns TEL_OK or TEL_ERR_NOMEM.
 */
int tel__record_json(const tel_record *r, tel_buf *out);

/* A finite double as the JSON view prints it: the shortest of %.15g,
 * %.16g and %.17g that reads back as the same value, with a '.' whatever
 * the locale. */
#define TEL_DOUBLE_TEXT 40
void tel__double_text(double d, char text[TEL_DOUBLE_TEXT]);

/* The fixed part of a batch; anon NULL means nil. */
typedef struct tel_batch_head {
    int version;              /* schema version; 0 when encoding means 1 */
    uint8_t id[TEL_ID_LEN];
    uint64_t sent_ms;
    uint64_t dropped;
    const uint8_t *anon;
    uint32_t nevents;
} tel_batch_head;

/*
 * Starts a batch in `out` (appending): writes the map and the events array
 * header for head->nevents records.  The caller then appends exactly that
 * many encoded records with tel__buf_append().  Returns TEL_OK or
 * TEL_ERR_NOMEM.
 */
TEL_MUST_CHECK int tel__batch_begin(tel_buf *out, const tel_batch_head *head);

/* Called by tel__batch_decode for each event; return non-zero to stop. */
typedef int (*tel_record_fn)(void *ud, const tel_record *r);

/*
 * Decodes an uncompressed batch.  Checks the schema version, the limits,
 * every record, and that every record's anonymous id equals the batch's.
 * Only once all of that holds does it call fn (may be NULL) for each
 * record in order, so fn never sees part of a batch that is refused.
 * head may be NULL; head->anon points into buf.  Returns TEL_OK,
 * TEL_ERR_CORRUPT (malformed; reason in tel_last_error()) or TEL_ERR_LIMIT
 * (more events or bytes than a batch may hold).
 */
int tel__batch_decode(const void *buf, size_t len, tel_batch_head *head,
                      tel_record_fn fn, void *ud);

/*
 * The erasure request (SPEC.md, "Erasure requests"): a map {"v": 1,
 * "x": <the anonymous id to erase>}.  encode appends it to out (TEL_OK or
 * TEL_ERR_NOMEM); decode checks all of buf and copies the id (TEL_OK, or
 * TEL_ERR_CORRUPT with the reason in tel_last_error()).
 */
int tel__erasure_encode(tel_buf *out, const uint8_t anon[TEL_ID_LEN]);
int tel__erasure_decode(const void *buf, size_t len, uint8_t anon[TEL_ID_LEN]);

/* The two JSON objects of tel__record_json that a store keeps apart:
 * "props" and "context", each appended to out as one object.  TEL_OK or
 * TEL_ERR_NOMEM (out unchanged). */
int tel__record_props_json(const tel_record *r, tel_buf *out);
int tel__record_context_json(const tel_record *r, tel_buf *out);

#endif
