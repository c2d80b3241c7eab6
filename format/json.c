/* SPDX-License-Identifier: MIT */
/*
 * format/json.c - the JSON view of a record that `tel show` and the
 * collector print.  Strings go through tel__json_str (util/text.c), which
 * shows bytes that are not UTF-8 as U+FFFD, so the output always parses.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "mp.h"
#include "record.h"
#include "text.h"

static int json_tstr(tel_buf *out, tel_str s)
{
    return tel__json_str(out, s.p ? s.p : "", s.len);
}

/* Decimal without printf, which costs more than all the rest of a
 * record's JSON together. */
static int json_u64(tel_buf *out, uint64_t v, int negative)
{
    char text[24];
    char *w = text + sizeof text;
    do {
        *--w = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        *--w = '-';
    return tel__buf_append(out, w, (size_t)(text + sizeof text - w));
}

static int json_i64(tel_buf *out, int64_t v)
{
    /* -(INT64_MIN) does not fit: negate in unsigned arithmetic. */
    return v < 0 ? json_u64(out, 0 - (uint64_t)v, 1) : json_u64(out, (uint64_t)v, 0);
}

static int json_uuid(tel_buf *out, const uint8_t *id)
{
    char text[38];
    if (!id)
        return tel__buf_puts(out, "null");
    text[0] = '"';
    tel__uuid_format(id, text + 1);
    text[37] = '"';
    return tel__buf_append(out, text, sizeof text);
}

/*
 * The shortest of %.15g, %.16g and %.17g that reads back as the same
 * double, so 0.1 shows as 0.1 and every value still round-trips.  A locale
 * with a decimal comma (the host may have called setlocale) would make
 * invalid JSON, so a comma is turned back into a point.
 */
void tel__double_text(double d, char text[TEL_DOUBLE_TEXT])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, TEL_DOUBLE_TEXT, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    for (char *c = text; *c; c++)
        if (*c == ',')
            *c = '.';
}

static int json_double(tel_buf *out, double d)
{
    char text[TEL_DOUBLE_TEXT];
    if (!isfinite(d))
        return tel__buf_puts(out, "null");
    tel__double_text(d, text);
    return tel__buf_puts(out, text);
}

/* ISO-8601 UTC with milliseconds, or null past the year 9999, where the
 * four-digit form ends. */
static int json_time(tel_buf *out, uint64_t ms)
{
    struct tm tm;
    time_t secs = (time_t)(ms / 1000);
    if (ms / 1000 > 253402300799ull || !gmtime_r(&secs, &tm))
        return tel__buf_puts(out, "null");
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ", filled digit by digit. */
    char t[] = "\"0000-00-00T00:00:00.000Z\"";
    const int fields[][3] = { { tm.tm_year + 1900, 1, 4 }, { tm.tm_mon + 1, 6, 2 }, { tm.tm_mday, 9, 2 },
                              { tm.tm_hour, 12, 2 }, { tm.tm_min, 15, 2 }, { tm.tm_sec, 18, 2 },
                              { (int)(ms % 1000), 21, 3 } };
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        int v = fields[f][0];
        for (int d = fields[f][2] - 1; d >= 0; d--) {
            t[fields[f][1] + d] = (char)('0' + v % 10);
            v /= 10;
        }
    }
    return tel__buf_append(out, t, sizeof t - 1);
}

/* One value read from a checked record's MessagePack, arrays and maps
 * included; the decoder bounded their depth, so the recursion is too. */
static int json_mp(tel_buf *out, tel_mp *r, int depth)
{
    tel_mp_obj o;
    if (depth > TEL_MAX_DEPTH + 1 || tel__mp_next(r, &o))
        return -1;
    switch (o.kind) {
    case TEL_MP_NIL: return tel__buf_puts(out, "null");
    case TEL_MP_BOOL: return tel__buf_puts(out, o.v.b ? "true" : "false");
    case TEL_MP_UINT: return json_u64(out, o.v.u, 0);
    case TEL_MP_INT: return json_i64(out, o.v.i);
    case TEL_MP_FLOAT: return json_double(out, o.v.f);
    case TEL_MP_STR: return tel__json_str(out, (const char *)o.data, o.len);
    case TEL_MP_ARRAY:
    case TEL_MP_MAP: {
        int is_map = o.kind == TEL_MP_MAP;
        int bad = tel__buf_puts(out, is_map ? "{" : "[");
        for (uint32_t i = 0; i < o.v.n && !bad; i++) {
            if (i)
                bad |= tel__buf_puts(out, ",");
            if (is_map) {
                tel_mp_obj k;
                if (tel__mp_next(r, &k) || k.kind != TEL_MP_STR)
                    return -1;
                bad |= tel__json_str(out, (const char *)k.data, k.len) | tel__buf_puts(out, ":");
            }
            bad |= json_mp(out, r, depth + 1);
        }
        return bad | tel__buf_puts(out, is_map ? "}" : "]");
    }
    default: return tel__buf_puts(out, "null");
    }
}

static int json_value(tel_buf *out, const tel_val *v)
{
    switch (v->type) {
    case TEL_T_NIL: return tel__buf_puts(out, "null");
    case TEL_T_BOOL: return tel__buf_puts(out, v->v.b ? "true" : "false");
    case TEL_T_INT: return json_i64(out, v->v.i);
    case TEL_T_FLOAT: return json_double(out, v->v.f);
    case TEL_T_STR: return json_tstr(out, v->v.s);
    case TEL_T_ARRAY:
    case TEL_T_MAP: {
        tel_mp r;
        tel__mp_init(&r, v->v.c.p, v->v.c.len);
        return json_mp(out, &r, 1);
    }
    }
    return tel__buf_puts(out, "null");
}

int tel__value_json(const tel_val *v, tel_buf *out)
{
    size_t start = out->len;
    if (json_value(out, v) != 0) {
        out->len = start;
        return tel__fail(TEL_ERR_NOMEM, "out of memory while rendering a value as JSON");
    }
    return TEL_OK;
}

/* ,"key":"value" for a context string that is present. */
static int json_opt(tel_buf *out, const char *key, tel_str s)
{
    if (!s.p)
        return 0;
    return tel__buf_puts(out, ",\"") | tel__buf_puts(out, key) | tel__buf_puts(out, "\":") | json_tstr(out, s);
}

static int props_json(const tel_record *r, tel_buf *out)
{
    int bad = tel__buf_puts(out, "{");
    for (size_t i = 0; i < r->nprops && i < TEL_MAX_PROPS; i++) {
        if (i)
            bad |= tel__buf_puts(out, ",");
        bad |= json_tstr(out, r->keys[i]);
        bad |= tel__buf_puts(out, ":");
        bad |= json_value(out, &r->vals[i]);
    }
    return bad | tel__buf_puts(out, "}");
}

static int context_json(const tel_record *r, tel_buf *out)
{
    int bad = tel__buf_puts(out, "{\"app\":");
    bad |= json_tstr(out, r->app);
    bad |= json_opt(out, "app_version", r->app_version);
    bad |= json_opt(out, "lib_version", r->lib_version);
    bad |= json_opt(out, "os", r->os);
    bad |= json_opt(out, "arch", r->arch);
    if (r->cpus > 0) {
        bad |= tel__buf_puts(out, ",\"cpus\":");
        bad |= json_i64(out, r->cpus);
    }
    bad |= tel__buf_puts(out, r->ci ? ",\"ci\":true" : ",\"ci\":false");
    bad |= json_opt(out, "ci_vendor", r->ci_vendor);
    bad |= json_opt(out, "project", r->project);
    return bad | tel__buf_puts(out, "}");
}

/* Runs one renderer; a failure takes back what it appended. */
static int whole(int (*render)(const tel_record *, tel_buf *), const tel_record *r, tel_buf *out)
{
    size_t start = out->len;
    if (render(r, out)) {
        out->len = start;
        return tel__fail(TEL_ERR_NOMEM, "out of memory while rendering an event as JSON");
    }
    return TEL_OK;
}

int tel__record_props_json(const tel_record *r, tel_buf *out)
{
    return whole(props_json, r, out);
}

int tel__record_context_json(const tel_record *r, tel_buf *out)
{
    return whole(context_json, r, out);
}

/* Failures are collected rather than checked one by one: a failed append
 * leaves the buffer as it was, and the whole object is taken back, so
 * nothing half-written is ever left behind. */
static int record_json(const tel_record *r, tel_buf *out)
{
    int bad = tel__buf_puts(out, "{\"id\":");
    bad |= json_uuid(out, r->id);
    bad |= tel__buf_puts(out, ",\"ts\":");
    bad |= json_u64(out, r->ts_ms, 0);
    bad |= tel__buf_puts(out, ",\"time\":");
    bad |= json_time(out, r->ts_ms);
    bad |= tel__buf_puts(out, ",\"name\":");
    bad |= json_tstr(out, r->name);
    bad |= tel__buf_puts(out, ",\"exec\":");
    bad |= json_uuid(out, r->exec);
    bad |= tel__buf_puts(out, ",\"anon\":");
    bad |= json_uuid(out, r->anon);
    bad |= tel__buf_puts(out, ",\"props\":");
    bad |= props_json(r, out);
    bad |= tel__buf_puts(out, ",\"context\":");
    bad |= context_json(r, out);
    return bad | tel__buf_puts(out, "}");
}

int tel__record_json(const tel_record *r, tel_buf *out)
{
    return whole(record_json, r, out);
}
