/* SPDX-License-Identifier: MIT */
/*
 * format/record.c - checks, encodes and decodes one event record.
 *
 * Encoding runs in the host on every event, so it works in the caller's
 * fixed buffer and measures each string once.  Decoding runs on bytes
 * that may come from a damaged queue or from anyone on the network, so
 * it goes through the bounded reader of mp.h and checks every rule of
 * SPEC.md, not only what it needs.
 */
#include <math.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "record.h"
#include "mp.h"
#include "text.h"

/* Context strings are the library's own (os, arch, vendor ids) or short
 * host facts (a version); the bound keeps a record's size predictable. */
#define CTX_MAX_STRING TEL_MAX_STRING
#define APP_MAX 64

/* ------------------------------------------------------------------ checks */

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == ':' || c == '-';
}

static int key_char(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

/* An app name is 1-64 of [a-z0-9._-], not starting with '.': it names a
 * directory, so it can never hold a separator or climb with "..". */
static int app_ok(const char *s, size_t len)
{
    if (len == 0 || len > APP_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int tel__event_name_valid(const char *name, size_t len)
{
    if (!name)
        return tel__fail(TEL_ERR_INVALID, "event name is missing");
    if (len == 0)
        return tel__fail(TEL_ERR_INVALID, "event name is empty");
    if (len > TEL_MAX_NAME)
        return tel__fail(TEL_ERR_LIMIT, "event name is longer than %d bytes", TEL_MAX_NAME);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (name_char(c))
            continue;
        /* A name is not a secret, but it may hold anything, so the bad
         * byte is shown only when it prints as itself. */
        if (c > 0x20 && c < 0x7f)
            return tel__fail(TEL_ERR_INVALID,
                             "event name has '%c' at byte %zu (allowed: A-Z a-z 0-9 _ . : -)", c, i);
        if (c == ' ')
            return tel__fail(TEL_ERR_INVALID, "event name has a space at byte %zu", i);
        return tel__fail(TEL_ERR_INVALID,
                         "event name has byte 0x%02x at byte %zu (allowed: A-Z a-z 0-9 _ . : -)", c, i);
    }
    return TEL_OK;
}

/* Which rule a key breaks, if any; the message is only formatted on
 * failure, since this runs for every property of every event. */
enum { KEY_OK, KEY_NULL, KEY_EMPTY, KEY_LONG, KEY_BYTE };

static int key_rule(const char *key, size_t *len, size_t *at)
{
    if (!key)
        return KEY_NULL;
    size_t klen = strnlen(key, TEL_MAX_KEY + 1);
    if (klen == 0)
        return KEY_EMPTY;
    if (klen > TEL_MAX_KEY)
        return KEY_LONG;
    for (size_t j = 0; j < klen; j++)
        if (!key_char((unsigned char)key[j])) {
            *at = j;
            return KEY_BYTE;
        }
    *len = klen;
    return KEY_OK;
}

/* The error for a key breaking `rule`; `what` names the item ("property
 * 3", "property 'config' entry 2"). */
static int key_fail(int rule, const char *key, size_t at, const char *what)
{
    switch (rule) {
    case KEY_NULL: return tel__fail(TEL_ERR_INVALID, "%s has no key", what);
    case KEY_EMPTY: return tel__fail(TEL_ERR_INVALID, "%s has an empty key", what);
    case KEY_LONG: return tel__fail(TEL_ERR_LIMIT, "%s has a key longer than %d bytes", what, TEL_MAX_KEY);
    default:
        return tel__fail(TEL_ERR_INVALID,
                         "%s key has byte 0x%02x at byte %zu (keys are printable ASCII without spaces)", what,
                         (unsigned char)key[at], at);
    }
}

/* Checks a scalar value; `top` is the top-level key, already known to be
 * printable, so it may be named.  The value never is: it could be a
 * secret.  Sets *slen for a string. */
static int check_scalar(const tel_prop *p, const char *top, uint16_t *slen)
{
    switch (p->type) {
    case TEL_T_NIL:
    case TEL_T_BOOL:
    case TEL_T_INT:
        return TEL_OK;
    case TEL_T_FLOAT:
        if (!isfinite(p->v.f))
            return tel__fail(TEL_ERR_INVALID, "property '%s' holds a number that is not finite (NaN or infinity)",
                             top);
        return TEL_OK;
    case TEL_T_STR: {
        if (!p->v.s)
            return tel__fail(TEL_ERR_INVALID, "property '%s' holds a string whose value is NULL", top);
        size_t n = strnlen(p->v.s, TEL_MAX_STRING + 1);
        if (n > TEL_MAX_STRING)
            return tel__fail(TEL_ERR_LIMIT, "property '%s' holds a string longer than %d bytes", top,
                             TEL_MAX_STRING);
        if (!tel__utf8_valid(p->v.s, n))
            return tel__fail(TEL_ERR_INVALID, "property '%s' holds a string that is not valid UTF-8", top);
        *slen = (uint16_t)n;
        return TEL_OK;
    }
    default:
        return tel__fail(TEL_ERR_INVALID, "property '%s' has unknown type %d", top, (int)p->type);
    }
}

/*
 * Checks the children of the array or map at props[*i] (already taken),
 * recursively, and moves *i past them.  `depth` is the container's own
 * level (1 for a property's value).
 */
static int check_nested(const tel_prop *props, size_t nprops, size_t *i, int depth, const char *top)
{
    const tel_prop *c = &props[*i - 1];
    int is_map = c->type == TEL_T_MAP;
    int64_t n = c->v.i;
    if (depth > TEL_MAX_DEPTH)
        return tel__fail(TEL_ERR_LIMIT, "property '%s' nests arrays and maps deeper than %d levels", top,
                         TEL_MAX_DEPTH);
    if (n < 0)
        return tel__fail(TEL_ERR_INVALID, "property '%s' has an %s of %lld items", top,
                         is_map ? "map" : "array", (long long)n);
    if (n > (is_map ? TEL_MAX_MAP : TEL_MAX_ARRAY))
        return tel__fail(TEL_ERR_LIMIT, "property '%s' has %s of %lld %s (at most %d)", top,
                         is_map ? "a map" : "an array", (long long)n, is_map ? "entries" : "elements",
                         is_map ? TEL_MAX_MAP : TEL_MAX_ARRAY);
    if ((uint64_t)n > nprops - *i)
        return tel__fail(TEL_ERR_INVALID, "property '%s' announces %lld items but the array ends first", top,
                         (long long)n);
    size_t first = *i;
    for (int64_t k = 0; k < n; k++) {
        const tel_prop *p = &props[*i];
        size_t klen;
        uint16_t slen;
        if (is_map) {
            size_t at = 0;
            int rule = key_rule(p->key, &klen, &at);
            if (rule != KEY_OK) {
                char what[TEL_MAX_KEY + 48];
                snprintf(what, sizeof what, "property '%s' entry %lld", top, (long long)k + 1);
                return key_fail(rule, p->key, at, what);
            }
            /* Entries of one map are direct children: compare with the
             * earlier ones at this level only. */
            for (size_t j = first; j < *i;) {
                if (strcmp(props[j].key, p->key) == 0)
                    return tel__fail(TEL_ERR_INVALID, "property '%s' has the key '%s' twice in one map", top,
                                     p->key);
                j = tel__prop_skip(props, nprops, j);
            }
        } else if (p->key) {
            return tel__fail(TEL_ERR_INVALID, "property '%s' array element %lld has a key (elements have none)",
                             top, (long long)k + 1);
        }
        (*i)++;
        int rc = p->type == TEL_T_ARRAY || p->type == TEL_T_MAP ? check_nested(props, nprops, i, depth + 1, top)
                                                                 : check_scalar(p, top, &slen);
        if (rc != TEL_OK)
            return rc;
    }
    return TEL_OK;
}

size_t tel__prop_skip(const tel_prop *props, size_t nprops, size_t i)
{
    size_t todo = 1;
    while (todo > 0 && i < nprops) {
        const tel_prop *p = &props[i++];
        todo--;
        if ((p->type == TEL_T_ARRAY || p->type == TEL_T_MAP) && p->v.i > 0)
            todo += (size_t)p->v.i;
    }
    return i;
}

/*
 * Checks an event and measures it into *sh, so that the encoder does not
 * measure every string a second time.
 */
int tel__event_measure(const char *name, const tel_prop *props, size_t nprops, tel_event_shape *sh)
{
    size_t nlen = name ? strnlen(name, TEL_MAX_NAME + 1) : 0;
    int rc = tel__event_name_valid(name, nlen);
    if (rc != TEL_OK)
        return rc;
    sh->name_len = nlen;
    sh->nested = 0;

    if (nprops > TEL_MAX_ITEMS)
        return tel__fail(TEL_ERR_LIMIT, "event has %zu items (at most %d)", nprops, TEL_MAX_ITEMS);
    if (nprops > 0 && !props)
        return tel__fail(TEL_ERR_INVALID, "event has %zu properties but no array of them", nprops);

    size_t top[TEL_MAX_PROPS];
    size_t t = 0;
    for (size_t i = 0; i < nprops; t++) {
        const tel_prop *p = &props[i];
        if (t == TEL_MAX_PROPS)
            return tel__fail(TEL_ERR_LIMIT, "event has more than %d properties", TEL_MAX_PROPS);
        size_t klen = 0, at = 0;
        int rule = key_rule(p->key, &klen, &at);
        if (rule != KEY_OK) {
            char what[32];
            snprintf(what, sizeof what, "property %zu", t + 1);
            return key_fail(rule, p->key, at, what);
        }
        for (size_t j = 0; j < t; j++)
            if (sh->key_len[j] == klen && memcmp(props[top[j]].key, p->key, klen) == 0)
                return tel__fail(TEL_ERR_INVALID, "property '%s' is given twice", p->key);
        top[t] = i;
        sh->key_len[t] = (uint16_t)klen;
        i++;
        /* From here the key is known to be short printable ASCII, so it
         * may be named. */
        if (p->type == TEL_T_ARRAY || p->type == TEL_T_MAP) {
            sh->nested = 1;
            rc = check_nested(props, nprops, &i, 1, p->key);
        } else {
            rc = check_scalar(p, p->key, &sh->str_len[t]);
        }
        if (rc != TEL_OK)
            return rc;
    }
    sh->ntop = t;
    return TEL_OK;
}

int tel__event_check(const char *name, const tel_prop *props, size_t nprops)
{
    tel_event_shape sh;
    return tel__event_measure(name, props, nprops, &sh);
}

/* One optional context string: absent, or at most CTX_MAX_STRING bytes of
 * UTF-8.  *len is set for the encoder. */
static int ctx_string(const char *s, const char *field, size_t *len)
{
    if (!s)
        return TEL_OK;
    *len = strnlen(s, CTX_MAX_STRING + 1);
    if (*len > CTX_MAX_STRING)
        return tel__fail(TEL_ERR_LIMIT, "context field '%s' is longer than %d bytes", field, CTX_MAX_STRING);
    if (!tel__utf8_valid(s, *len))
        return tel__fail(TEL_ERR_INVALID, "context field '%s' is not valid UTF-8", field);
    return TEL_OK;
}

/* ---------------------------------------------------------------- encoding */

/*
 * msgpack-c's packer writes through a callback; this one fills the
 * caller's fixed buffer.  It keeps counting after the space runs out, so
 * that the error can say how large the record would have been.
 */
typedef struct fixed_out {
    uint8_t *p;
    size_t cap;
    size_t len;
} fixed_out;

static int fixed_write(void *data, const char *buf, size_t n)
{
    fixed_out *o = data;
    size_t at = o->len;
    o->len += n;
    /* Past the end nothing is copied, but success is reported: the
     * packer would otherwise skip a string's body after its header, and
     * the count must be exact for a caller retrying with a larger buffer. */
    if (n <= o->cap && at <= o->cap - n)
        memcpy(o->p + at, buf, n);
    return 0;
}

/* Keys are string literals, so their length is known at compile time. */
#define pack_key(pk, key) msgpack_pack_str_with_body((pk), (key), sizeof(key) - 1)

static void pack_id(msgpack_packer *pk, const uint8_t *id)
{
    msgpack_pack_bin_with_body(pk, id, TEL_ID_LEN);
}

/* The order of the context keys on the wire, fixed so that the same event
 * always encodes to the same bytes. */
enum { C_APP, C_AV, C_LV, C_OS, C_ARCH, C_CIV, C_PRJ, C_NSTR };
static const char *const ctx_keys[C_NSTR] = { "app", "av", "lv", "os", "arch", "civ", "prj" };
static const uint8_t ctx_key_len[C_NSTR] = { 3, 2, 2, 2, 4, 3, 3 };

/* Packs one scalar inside a structured value. */
static void pack_scalar(msgpack_packer *pk, const tel_prop *p)
{
    switch (p->type) {
    case TEL_T_NIL: msgpack_pack_nil(pk); break;
    case TEL_T_BOOL: p->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case TEL_T_INT: msgpack_pack_int64(pk, p->v.i); break;
    case TEL_T_FLOAT: msgpack_pack_double(pk, p->v.f); break;
    case TEL_T_STR: msgpack_pack_str_with_body(pk, p->v.s, strlen(p->v.s)); break;
    default: break;
    }
}

static void pack_tree_with(msgpack_packer *pk, const tel_prop *props, size_t *i)
{
    const tel_prop *c = &props[(*i)++];
    if (c->type != TEL_T_ARRAY && c->type != TEL_T_MAP) {
        pack_scalar(pk, c);
        return;
    }
    size_t n = (size_t)c->v.i;
    if (c->type == TEL_T_ARRAY)
        msgpack_pack_array(pk, n);
    else
        msgpack_pack_map(pk, n);
    for (size_t k = 0; k < n; k++) {
        if (c->type == TEL_T_MAP)
            msgpack_pack_str_with_body(pk, props[*i].key, strlen(props[*i].key));
        pack_tree_with(pk, props, i);
    }
}

/*
 * Packs the checked tree at props[*i] into o and moves *i past it.  It
 * takes the output, not the caller's packer, on purpose: a packer whose
 * address escapes can no longer have its write callback resolved at
 * compile time, and tel__record_encode would pay an indirect call for
 * every one of its writes.
 */
static void pack_tree(fixed_out *o, const tel_prop *props, size_t *i)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, o, fixed_write);
    pack_tree_with(&pk, props, i);
}

/* Checks the context of ev and measures its strings, in the wire's
 * order (cs[i] NULL when absent). */
static int ctx_measure(const tel_event_in *ev, const char *cs[C_NSTR], size_t cl[C_NSTR])
{
    const tel_ctx *c = ev->ctx;
    if (!c || !c->app)
        return tel__fail(TEL_ERR_INVALID, "event has no app in its context");
    cl[C_APP] = strnlen(c->app, APP_MAX + 1);
    if (!app_ok(c->app, cl[C_APP]))
        return tel__fail(TEL_ERR_INVALID, "context app name is not 1-64 of [a-z0-9._-] starting without '.'");
    cs[C_APP] = c->app;
    cs[C_AV] = c->app_version;
    cs[C_LV] = c->lib_version;
    cs[C_OS] = c->os;
    cs[C_ARCH] = c->arch;
    cs[C_CIV] = c->ci_vendor;
    cs[C_PRJ] = c->project;
    for (int i = C_AV; i < C_NSTR; i++) {
        cl[i] = 0;
        int rc = ctx_string(cs[i], ctx_keys[i], &cl[i]);
        if (rc != TEL_OK)
            return rc;
    }
    return TEL_OK;
}

/*
 * Packs the event's own fields: the map header, "i", "t", "n" and "p".
 * Forced inline, as pack_tail is: only inside its caller, with the packer
 * a local there, does the compiler see that every write goes to
 * fixed_write and inline it; an out-of-line copy pays an indirect call
 * for every write of every record.
 */
__attribute__((always_inline)) static inline void pack_head(msgpack_packer *pk, fixed_out *o, const tel_event_in *ev,
                             const tel_event_shape *sh)
{
    msgpack_pack_map(pk, 7);
    pack_key(pk, "i");
    pack_id(pk, ev->id);
    pack_key(pk, "t");
    msgpack_pack_uint64(pk, ev->ts_ms);
    pack_key(pk, "n");
    msgpack_pack_str_with_body(pk, ev->name, sh->name_len);

    pack_key(pk, "p");
    msgpack_pack_map(pk, sh->ntop);
    for (size_t i = 0, t = 0; t < sh->ntop; t++) {
        const tel_prop *p = &ev->props[i];
        msgpack_pack_str_with_body(pk, p->key, sh->key_len[t]);
        /* Scalars are packed here rather than through pack_scalar(): the
         * packer's calls inline into this loop, which the hot path of
         * every event pays for. */
        switch (p->type) {
        case TEL_T_NIL: msgpack_pack_nil(pk); break;
        case TEL_T_BOOL: p->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
        case TEL_T_INT: msgpack_pack_int64(pk, p->v.i); break;
        case TEL_T_FLOAT: msgpack_pack_double(pk, p->v.f); break;
        case TEL_T_STR: msgpack_pack_str_with_body(pk, p->v.s, sh->str_len[t]); break;
        case TEL_T_ARRAY:
        case TEL_T_MAP: pack_tree(o, ev->props, &i); continue;
        }
        i++;
    }
}

/* Packs "x", "a" and "c": what every event of one run and one identity
 * shares.  Forced inline for the reason given at pack_head. */
__attribute__((always_inline)) static inline void pack_tail(msgpack_packer *pk, const tel_event_in *ev, const char *const cs[C_NSTR],
                      const size_t cl[C_NSTR])
{
    const tel_ctx *c = ev->ctx;
    pack_key(pk, "x");
    pack_id(pk, ev->exec);
    pack_key(pk, "a");
    if (ev->anon)
        pack_id(pk, ev->anon);
    else
        msgpack_pack_nil(pk);

    /* "ci" is always written; "cpu" only when known; strings when set. */
    size_t nctx = 1 + (c->cpus > 0);
    for (int i = 0; i < C_NSTR; i++)
        nctx += cs[i] != NULL;
    pack_key(pk, "c");
    msgpack_pack_map(pk, nctx);
    for (int i = C_APP; i <= C_ARCH; i++) {
        if (!cs[i])
            continue;
        msgpack_pack_str_with_body(pk, ctx_keys[i], ctx_key_len[i]);
        msgpack_pack_str_with_body(pk, cs[i], cl[i]);
    }
    if (c->cpus > 0) {
        pack_key(pk, "cpu");
        msgpack_pack_uint64(pk, (uint64_t)c->cpus);
    }
    pack_key(pk, "ci");
    c->ci ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    for (int i = C_CIV; i < C_NSTR; i++) {
        if (!cs[i])
            continue;
        msgpack_pack_str_with_body(pk, ctx_keys[i], ctx_key_len[i]);
        msgpack_pack_str_with_body(pk, cs[i], cl[i]);
    }
}

/* The result of an encoding into o, whose cap was min(cap, limit). */
static int encoded(const fixed_out *o, size_t limit, size_t cap, int nested, size_t *len)
{
    if (o->len > o->cap) {
        if (o->len > limit)
            return tel__fail(TEL_ERR_LIMIT, "event encodes to %zu bytes (at most %zu%s)", o->len, limit,
                             nested ? "" : " without arrays or maps");
        *len = o->len;
        return tel__fail(TEL_ERR_LIMIT, "event encodes to %zu bytes but the buffer holds %zu", o->len, cap);
    }
    *len = o->len;
    return TEL_OK;
}

int tel__record_encode(const tel_event_in *ev, uint8_t *buf, size_t cap, size_t *len)
{
    tel_event_shape sh;
    const char *cs[C_NSTR];
    size_t cl[C_NSTR];
    int rc = tel__event_measure(ev->name, ev->props, ev->nprops, &sh);
    if (rc == TEL_OK)
        rc = ctx_measure(ev, cs, cl);
    if (rc != TEL_OK)
        return rc;
    size_t limit = sh.nested ? TEL_MAX_EVENT : TEL_MAX_FLAT_EVENT;
    fixed_out o = { buf, cap < limit ? cap : limit, 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, fixed_write);
    /* Return values of the packer are not checked one by one: fixed_write
     * refuses everything after the first overflow, and o.len tells. */
    pack_head(&pk, &o, ev, &sh);
    pack_tail(&pk, ev, cs, cl);
    return encoded(&o, limit, cap, sh.nested, len);
}

int tel__record_tail(const tel_event_in *ev, uint8_t *buf, size_t cap, size_t *len)
{
    const char *cs[C_NSTR];
    size_t cl[C_NSTR];
    int rc = ctx_measure(ev, cs, cl);
    if (rc != TEL_OK)
        return rc;
    fixed_out o = { buf, cap, 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, fixed_write);
    pack_tail(&pk, ev, cs, cl);
    *len = o.len;
    return o.len > cap ? tel__fail(TEL_ERR_LIMIT, "the context encodes to %zu bytes but the buffer holds %zu",
                                   o.len, cap)
                       : TEL_OK;
}

int tel__record_encode_tail(const tel_event_in *ev, const tel_event_shape *sh, const uint8_t *tail,
                            size_t tail_len, uint8_t *buf, size_t cap, size_t *len)
{
    size_t limit = sh->nested ? TEL_MAX_EVENT : TEL_MAX_FLAT_EVENT;
    fixed_out o = { buf, cap < limit ? cap : limit, 0 };
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, fixed_write);
    pack_head(&pk, &o, ev, sh);
    fixed_write(&o, (const char *)tail, tail_len);
    return encoded(&o, limit, cap, sh->nested, len);
}

/* ---------------------------------------------------------------- decoding */

static int corrupt(const char *what)
{
    return tel__fail(TEL_ERR_CORRUPT, "record: %s", what);
}

/* Reads one value and insists on its kind. */
static int read_kind(tel_mp *r, tel_mp_obj *o, tel_mp_kind kind)
{
    return tel__mp_next(r, o) == 0 && o->kind == kind ? 0 : -1;
}

static int read_id(tel_mp *r, const uint8_t **out)
{
    tel_mp_obj o;
    if (read_kind(r, &o, TEL_MP_BIN) || o.len != TEL_ID_LEN)
        return -1;
    *out = o.data;
    return 0;
}

static int read_str(tel_mp *r, tel_str *out, uint32_t max)
{
    tel_mp_obj o;
    if (read_kind(r, &o, TEL_MP_STR) || o.len > max)
        return -1;
    out->p = (const char *)o.data;
    out->len = o.len;
    return 0;
}

/* A key of the record or context map: a short string.  Anything longer
 * than any known key is returned as is and simply not recognised. */
static int read_key(tel_mp *r, tel_str *key)
{
    return read_str(r, key, UINT32_MAX);
}

/* name is a string literal: its length folds to a constant. */
#define key_is(k, name) ((k).len == sizeof(name) - 1 && memcmp((k).p, (name), sizeof(name) - 1) == 0)

static int skip_unknown(tel_mp *r)
{
    int rc = tel__mp_skip(r, TEL_MP_MAX_DEPTH);
    if (rc == TEL_MP_EDEEP)
        return corrupt("an unknown field nests deeper than 32 levels");
    return rc ? corrupt("an unknown field is truncated or malformed") : 0;
}

/* Reads a map key (of the properties or of a nested map): 1-64 bytes of
 * printable ASCII, not one of keys[0..n). */
static int read_prop_key(tel_mp *r, tel_str *k, const tel_str *keys, uint32_t n)
{
    if (read_str(r, k, TEL_MAX_KEY) || k->len == 0)
        return corrupt("a property key is not a string of 1-64 bytes");
    for (uint32_t j = 0; j < k->len; j++)
        if (!key_char((unsigned char)k->p[j]))
            return corrupt("a property key is not printable ASCII");
    for (uint32_t j = 0; j < n; j++)
        if (keys[j].len == k->len && memcmp(keys[j].p, k->p, k->len) == 0)
            return corrupt("a property key appears twice");
    return 0;
}

/* A scalar value: nil, bool, int64, finite float or string. */
static int decode_scalar(const tel_mp_obj *x, tel_val *v)
{
    switch (x->kind) {
    case TEL_MP_NIL:
        v->type = TEL_T_NIL;
        return 0;
    case TEL_MP_BOOL:
        v->type = TEL_T_BOOL;
        v->v.b = x->v.b;
        return 0;
    case TEL_MP_UINT:
        if (x->v.u > (uint64_t)INT64_MAX)
            return corrupt("a property integer is beyond the int64 range");
        v->type = TEL_T_INT;
        v->v.i = (int64_t)x->v.u;
        return 0;
    case TEL_MP_INT:
        v->type = TEL_T_INT;
        v->v.i = x->v.i;
        return 0;
    case TEL_MP_FLOAT:
        if (!isfinite(x->v.f))
            return corrupt("a property float is NaN or infinite");
        v->type = TEL_T_FLOAT;
        v->v.f = x->v.f;
        return 0;
    case TEL_MP_STR:
        if (x->len > TEL_MAX_STRING)
            return corrupt("a property string is longer than 1024 bytes");
        v->type = TEL_T_STR;
        v->v.s.p = (const char *)x->data;
        v->v.s.len = x->len;
        return 0;
    default:
        return corrupt("a property value has a type other than nil, bool, int, float, string, array or map");
    }
}

/*
 * Checks the array or map whose header h was just read, and everything in
 * it, against the limits of SPEC.md 3.1.  `depth` is its own level (1 for
 * a property's value); *items counts every value of the record.
 */
static int decode_nested(tel_mp *r, const tel_mp_obj *h, int depth, size_t *items)
{
    int is_map = h->kind == TEL_MP_MAP;
    if (depth > TEL_MAX_DEPTH)
        return corrupt("arrays and maps nest deeper than 4 levels");
    if (h->v.n > (uint32_t)(is_map ? TEL_MAX_MAP : TEL_MAX_ARRAY))
        return corrupt(is_map ? "a map holds more than 64 entries" : "an array holds more than 256 elements");
    tel_str keys[TEL_MAX_MAP];
    for (uint32_t k = 0; k < h->v.n; k++) {
        int rc;
        if (is_map && (rc = read_prop_key(r, &keys[k], keys, k)) != 0)
            return rc;
        tel_mp_obj x;
        tel_val v;
        if (tel__mp_next(r, &x))
            return corrupt("a property value is truncated or malformed");
        if (++*items > TEL_MAX_ITEMS)
            return corrupt("more than 1024 values in one record");
        rc = x.kind == TEL_MP_ARRAY || x.kind == TEL_MP_MAP ? decode_nested(r, &x, depth + 1, items)
                                                            : decode_scalar(&x, &v);
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_props(tel_mp *r, tel_record *out)
{
    tel_mp_obj o;
    if (read_kind(r, &o, TEL_MP_MAP))
        return corrupt("field 'p' is not a map");
    if (o.v.n > TEL_MAX_PROPS)
        return corrupt("more than 32 properties");
    out->nprops = o.v.n;
    size_t items = o.v.n;
    for (uint32_t i = 0; i < o.v.n; i++) {
        tel_val *v = &out->vals[i];
        int rc = read_prop_key(r, &out->keys[i], out->keys, i);
        if (rc)
            return rc;
        const uint8_t *at = r->p;
        tel_mp_obj x;
        if (tel__mp_next(r, &x))
            return corrupt("a property value is truncated or malformed");
        if (x.kind != TEL_MP_ARRAY && x.kind != TEL_MP_MAP) {
            if ((rc = decode_scalar(&x, v)) != 0)
                return rc;
            continue;
        }
        if ((rc = decode_nested(r, &x, 1, &items)) != 0)
            return rc;
        v->type = x.kind == TEL_MP_ARRAY ? TEL_T_ARRAY : TEL_T_MAP;
        v->v.c.p = at;
        v->v.c.len = (uint32_t)(r->p - at);
        v->v.c.n = x.v.n;
        out->version = 2;
    }
    return 0;
}

static int decode_context(tel_mp *r, tel_record *out)
{
    tel_mp_obj o;
    unsigned seen = 0;
    if (read_kind(r, &o, TEL_MP_MAP))
        return corrupt("field 'c' is not a map");
    for (uint32_t i = 0; i < o.v.n; i++) {
        tel_str k;
        tel_str *s = NULL;
        unsigned bit;
        if (read_key(r, &k))
            return corrupt("a context key is not a string");
        if (key_is(k, "app")) { s = &out->app; bit = 1; }
        else if (key_is(k, "av")) { s = &out->app_version; bit = 2; }
        else if (key_is(k, "lv")) { s = &out->lib_version; bit = 4; }
        else if (key_is(k, "os")) { s = &out->os; bit = 8; }
        else if (key_is(k, "arch")) { s = &out->arch; bit = 16; }
        else if (key_is(k, "civ")) { s = &out->ci_vendor; bit = 32; }
        else if (key_is(k, "prj")) { s = &out->project; bit = 64; }
        else if (key_is(k, "cpu")) { bit = 128; }
        else if (key_is(k, "ci")) { bit = 256; }
        else {
            int rc = skip_unknown(r);
            if (rc)
                return rc;
            continue;
        }
        if (seen & bit)
            return corrupt("a context key appears twice");
        seen |= bit;

        tel_mp_obj x;
        if (s) {
            if (read_str(r, s, CTX_MAX_STRING))
                return corrupt("a context field is not a string of at most 1024 bytes");
        } else if (bit == 128) {
            if (read_kind(r, &x, TEL_MP_UINT) || x.v.u > (uint64_t)INT64_MAX)
                return corrupt("context field 'cpu' is not an unsigned integer");
            out->cpus = (int64_t)x.v.u;
        } else {
            if (read_kind(r, &x, TEL_MP_BOOL))
                return corrupt("context field 'ci' is not a boolean");
            out->ci = x.v.b;
        }
    }
    if (!(seen & 1))
        return corrupt("context has no 'app'");
    if (!app_ok(out->app.p, out->app.len))
        return corrupt("context 'app' is not 1-64 of [a-z0-9._-]");
    return 0;
}

/* Bits of the record keys, to find duplicates and missing ones. */
enum { R_I = 1, R_T = 2, R_N = 4, R_P = 8, R_X = 16, R_A = 32, R_C = 64,
       R_REQUIRED = R_I | R_T | R_N | R_X | R_A | R_C };

int tel__record_decode(tel_record *out, const void *buf, size_t len)
{
    tel_mp r;
    tel_mp_obj o;
    unsigned seen = 0;

    if (!buf || len == 0)
        return corrupt("empty");
    if (len > TEL_MAX_EVENT)
        return tel__fail(TEL_ERR_CORRUPT, "record: %zu bytes (at most %d)", len, TEL_MAX_EVENT);
    out->version = TEL_SCHEMA_VERSION_FLAT;

    /* Only the fixed fields need clearing; keys and vals are written up
     * to nprops, and clearing all of them would cost more than decoding. */
    out->id = out->exec = out->anon = NULL;
    out->ts_ms = 0;
    out->name = (tel_str){ NULL, 0 };
    out->nprops = 0;
    memset(&out->app, 0, offsetof(tel_record, raw) - offsetof(tel_record, app));
    out->raw = buf;
    out->raw_len = len;

    tel__mp_init(&r, buf, len);
    if (read_kind(&r, &o, TEL_MP_MAP))
        return corrupt("not a map");
    for (uint32_t i = 0; i < o.v.n; i++) {
        tel_str k;
        unsigned bit = 0;
        if (read_key(&r, &k))
            return corrupt("a key is not a string");
        if (k.len == 1) {
            switch (k.p[0]) {
            case 'i': bit = R_I; break;
            case 't': bit = R_T; break;
            case 'n': bit = R_N; break;
            case 'p': bit = R_P; break;
            case 'x': bit = R_X; break;
            case 'a': bit = R_A; break;
            case 'c': bit = R_C; break;
            }
        }
        if (!bit) {
            int rc = skip_unknown(&r);
            if (rc)
                return rc;
            continue;
        }
        if (seen & bit)
            return corrupt("a key appears twice");
        seen |= bit;

        int rc = 0;
        tel_mp_obj x;
        switch (bit) {
        case R_I:
            if (read_id(&r, &out->id))
                return corrupt("field 'i' is not 16 bytes of binary");
            break;
        case R_T:
            if (read_kind(&r, &x, TEL_MP_UINT))
                return corrupt("field 't' is not an unsigned integer");
            out->ts_ms = x.v.u;
            break;
        case R_N:
            out->name_at = r.p;
            if (read_str(&r, &out->name, TEL_MAX_NAME) || out->name.len == 0)
                return corrupt("field 'n' is not a string of 1-64 bytes");
            for (uint32_t j = 0; j < out->name.len; j++)
                if (!name_char((unsigned char)out->name.p[j]))
                    return corrupt("field 'n' has a byte outside [A-Za-z0-9_.:-]");
            out->name_size = (uint32_t)(r.p - out->name_at);
            break;
        case R_P:
            out->props_at = r.p;
            rc = decode_props(&r, out);
            out->props_size = (uint32_t)(r.p - out->props_at);
            break;
        case R_X:
            if (read_id(&r, &out->exec))
                return corrupt("field 'x' is not 16 bytes of binary");
            break;
        case R_A: {
            const uint8_t *save = r.p;
            if (tel__mp_next(&r, &x) == 0 && x.kind == TEL_MP_NIL)
                break;
            r.p = save;
            if (read_id(&r, &out->anon))
                return corrupt("field 'a' is neither nil nor 16 bytes of binary");
            break;
        }
        case R_C:
            out->ctx_at = r.p;
            rc = decode_context(&r, out);
            out->ctx_size = (uint32_t)(r.p - out->ctx_at);
            break;
        }
        if (rc)
            return rc;
    }
    if ((seen & R_REQUIRED) != R_REQUIRED)
        return corrupt("a required field (i, t, n, x, a or c) is missing");
    if (out->version == TEL_SCHEMA_VERSION_FLAT && len > TEL_MAX_FLAT_EVENT)
        return tel__fail(TEL_ERR_CORRUPT, "record: %zu bytes without an array or map (at most %d)", len,
                         TEL_MAX_FLAT_EVENT);
    if (tel__mp_left(&r) != 0)
        return tel__fail(TEL_ERR_CORRUPT, "record: %zu bytes after the end of the map", tel__mp_left(&r));
    return TEL_OK;
}
