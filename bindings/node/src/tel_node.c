/* SPDX-License-Identifier: MIT */
/*
 * bindings/node/src/tel_node.c - libtel as a Node-API addon.
 *
 * Each function here converts JavaScript values to the C API's and back
 * and returns libtel's code; index.js decides what to throw.  Nothing of
 * tel's logic is here.  Conversion mistakes (a property tel cannot hold, a
 * NUL inside a string) return TEL_ERR_INVALID with their own detail, which
 * lastError() gives in place of libtel's.
 *
 * Strings passed to libtel live in a per-call arena freed when the call
 * returns: libtel only reads them during the call.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>

#include "tel.h"

/* The detail of the last conversion mistake, "" when libtel's own detail
 * applies.  JavaScript runs each isolate on one thread, and libtel's
 * detail is per thread, so one per thread here too. */
static _Thread_local char conv_error[256];

static int conv_vfail(int code, const char *fmt, va_list ap)
{
    vsnprintf(conv_error, sizeof conv_error, fmt, ap);
    return code;
}

static int conv_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = conv_vfail(TEL_ERR_INVALID, fmt, ap);
    va_end(ap);
    return rc;
}

static int conv_fail_code(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = conv_vfail(code, fmt, ap);
    va_end(ap);
    return rc;
}

static int closed_fail(void)
{
    snprintf(conv_error, sizeof conv_error, "the handle is closed");
    return TEL_ERR_STATE;
}

/* ------------------------------------------------------------ arena */

typedef struct arena {
    void **blocks;
    size_t n, cap;
    int failed;
} arena;

static int arena_adopt(arena *a, void *p);

static void *arena_alloc(arena *a, size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p && !arena_adopt(a, p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* Hands a malloc'ed block to the arena. */
static int arena_adopt(arena *a, void *p)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 16;
        void **nb = realloc(a->blocks, ncap * sizeof *nb);
        if (!nb)
            return 0;
        a->blocks = nb;
        a->cap = ncap;
    }
    a->blocks[a->n++] = p;
    return 1;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
}

/* A JavaScript string as UTF-8 in the arena; NULL with the reason set
 * when it is not a string or holds a NUL. */
static char *str_of(napi_env env, arena *a, napi_value v, const char *what, int *rc)
{
    size_t len;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
        *rc = conv_fail("%s must be a string", what);
        return NULL;
    }
    char *s = arena_alloc(a, len + 1);
    if (!s) {
        *rc = TEL_ERR_NOMEM;
        return NULL;
    }
    napi_get_value_string_utf8(env, v, s, len + 1, &len);
    if (strlen(s) != len) {
        *rc = conv_fail("%s holds a NUL character", what);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------ values */

static napi_value num(napi_env env, double d)
{
    napi_value v;
    napi_create_double(env, d, &v);
    return v;
}

static napi_value boolean(napi_env env, int b)
{
    napi_value v;
    napi_get_boolean(env, b != 0, &v);
    return v;
}

static napi_value string(napi_env env, const char *s)
{
    napi_value v;
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
    return v;
}

/* Reads up to `max` arguments; missing ones are undefined. */
static void args(napi_env env, napi_callback_info info, napi_value *argv, size_t max)
{
    size_t argc = max;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    napi_value undef;
    napi_get_undefined(env, &undef);
    for (size_t i = argc; i < max; i++)
        argv[i] = undef;
}

static int is_type(napi_env env, napi_value v, napi_valuetype t)
{
    napi_valuetype got;
    return napi_typeof(env, v, &got) == napi_ok && got == t;
}

/* The properties of one call, flat as tel.h lays out structured values:
 * an array or map item, then its children in pre-order. */
typedef struct pvec {
    tel_prop *p;
    size_t n, cap;
} pvec;

/* A value that holds itself is stopped here; libtel refuses far less. */
#define MAX_WALK 16

static tel_prop *pvec_push(pvec *v)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 16;
        tel_prop *np = realloc(v->p, ncap * sizeof *np);
        if (!np)
            return NULL;
        v->p = np;
        v->cap = ncap;
    }
    memset(&v->p[v->n], 0, sizeof v->p[0]);
    return &v->p[v->n++];
}

static int flatten(napi_env env, arena *a, pvec *v, const char *key, const char *name, napi_value val, int depth);

/* The own enumerable entries of obj as map entries; *count gets how many
 * (undefined values are left out, as JSON.stringify does). */
static int flatten_entries(napi_env env, arena *a, pvec *v, const char *name, napi_value obj, int depth,
                           int64_t *count)
{
    napi_value keys;
    uint32_t nkeys;
    *count = 0;
    if (napi_get_property_names(env, obj, &keys) != napi_ok || napi_get_array_length(env, keys, &nkeys) != napi_ok)
        return conv_fail("property '%s' is not a plain object", name);
    for (uint32_t i = 0; i < nkeys; i++) {
        napi_value k, val;
        int rc = TEL_OK;
        napi_get_element(env, keys, i, &k);
        napi_get_property(env, obj, k, &val);
        if (is_type(env, val, napi_undefined))
            continue;
        const char *ks = str_of(env, a, k, "a property key", &rc);
        if (!ks || (rc = flatten(env, a, v, ks, name ? name : ks, val, depth)) != TEL_OK)
            return rc;
        (*count)++;
    }
    return TEL_OK;
}

/* A scalar into p: null, boolean, number (an integral number within 64
 * bits is an integer, any other a float), bigint or string. */
static int scalar_of(napi_env env, arena *a, const char *name, napi_value val, napi_valuetype t, tel_prop *p)
{
    switch (t) {
    case napi_null:
        p->type = TEL_T_NIL;
        return TEL_OK;
    case napi_boolean: {
        bool b;
        napi_get_value_bool(env, val, &b);
        p->type = TEL_T_BOOL;
        p->v.b = b;
        return TEL_OK;
    }
    case napi_number: {
        double d;
        napi_get_value_double(env, val, &d);
        if (isfinite(d) && d == trunc(d) && fabs(d) < 9223372036854775808.0) {
            p->type = TEL_T_INT;
            p->v.i = (int64_t)d;
        } else {
            p->type = TEL_T_FLOAT;
            p->v.f = d;
        }
        return TEL_OK;
    }
    case napi_bigint: {
        bool lossless;
        napi_get_value_bigint_int64(env, val, &p->v.i, &lossless);
        p->type = TEL_T_INT;
        return lossless ? TEL_OK : conv_fail("property '%s' holds a bigint outside 64 bits", name);
    }
    case napi_string: {
        int rc = TEL_OK;
        char what[96];
        snprintf(what, sizeof what, "property '%s'", name);
        p->type = TEL_T_STR;
        p->v.s = str_of(env, a, val, what, &rc);
        return rc;
    }
    default:
        return conv_fail("property '%s' holds a %s; tel records null, booleans, numbers, bigints, strings, "
                         "and arrays and plain objects of them", name,
                         t == napi_function ? "function" : t == napi_object ? "non-plain object" : "symbol or undefined");
    }
}

/* Whether obj is an object literal (its prototype Object.prototype, or
 * null): a Date, a Map or a class instance would become an empty or a
 * partial map, so they are refused instead. */
static int is_plain(napi_env env, napi_value obj)
{
    napi_value proto, lit, lit_proto, nul;
    bool same = false;
    if (napi_get_prototype(env, obj, &proto) != napi_ok || napi_get_null(env, &nul) != napi_ok)
        return 0;
    if (napi_strict_equals(env, proto, nul, &same) == napi_ok && same)
        return 1;
    return napi_create_object(env, &lit) == napi_ok && napi_get_prototype(env, lit, &lit_proto) == napi_ok &&
           napi_strict_equals(env, proto, lit_proto, &same) == napi_ok && same;
}

/* Appends one value: a scalar, or an array (as an array) or a plain object
 * (as a map) followed by its children. */
static int flatten(napi_env env, arena *a, pvec *v, const char *key, const char *name, napi_value val, int depth)
{
    napi_valuetype t;
    bool array = false;
    napi_typeof(env, val, &t);
    tel_prop *p = pvec_push(v);
    if (!p)
        return TEL_ERR_NOMEM;
    size_t at = v->n - 1;
    p->key = key;
    if (t == napi_object)
        napi_is_array(env, val, &array);
    if (t != napi_object || (!array && !is_plain(env, val)))
        return scalar_of(env, a, name, val, t, p);
    if (depth >= MAX_WALK)
        return conv_fail_code(TEL_ERR_LIMIT, "property '%s' nests deeper than tel allows", name);
    if (!array) {
        int64_t count;
        int rc = flatten_entries(env, a, v, name, val, depth + 1, &count);
        v->p[at].type = TEL_T_MAP; /* p may have moved with the children */
        v->p[at].v.i = count;
        return rc;
    }
    uint32_t len;
    napi_get_array_length(env, val, &len);
    p->type = TEL_T_ARRAY;
    p->v.i = len;
    for (uint32_t i = 0; i < len; i++) {
        napi_value el;
        napi_get_element(env, val, i, &el);
        int rc = flatten(env, a, v, NULL, name, el, depth + 1);
        if (rc != TEL_OK)
            return rc;
    }
    return TEL_OK;
}

/* The properties of obj (undefined or null: none) as a tel_prop array,
 * owned by the arena. */
static int props_of(napi_env env, arena *a, napi_value obj, tel_prop **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (is_type(env, obj, napi_undefined) || is_type(env, obj, napi_null))
        return TEL_OK;
    bool array = false;
    if (!is_type(env, obj, napi_object) || (napi_is_array(env, obj, &array) == napi_ok && array))
        return conv_fail("properties must be an object");
    pvec v = { 0 };
    int64_t count;
    int rc = flatten_entries(env, a, &v, NULL, obj, 0, &count);
    if (v.p && !arena_adopt(a, v.p)) {
        free(v.p);
        return TEL_ERR_NOMEM;
    }
    *out = v.p;
    *n = v.n;
    return rc;
}

/* ------------------------------------------------------------ handles */

typedef struct handle {
    tel *h;
    napi_env env;
    napi_ref log;       /* the host's log function, or NULL */
} handle;

static void handle_finalize(napi_env env, void *data, void *hint)
{
    (void)hint;   /* Node-API's finalizer shape */
    handle *hd = data;
    tel_close(hd->h);
    if (hd->log)
        napi_delete_reference(env, hd->log);
    free(hd);
}

/* The handle of an external made by open(); NULL for anything else. */
static handle *handle_of(napi_env env, napi_value v)
{
    void *p = NULL;
    if (!is_type(env, v, napi_external) || napi_get_value_external(env, v, &p) != napi_ok)
        return NULL;
    return p;
}

/* libtel's log lines, passed to the host's function.  A function that
 * throws is ignored: telemetry never breaks its host. */
static void log_to_js(void *userdata, const char *line)
{
    handle *hd = userdata;
    napi_value fn, global, arg, ret;
    if (napi_get_reference_value(hd->env, hd->log, &fn) != napi_ok || !fn)
        return;
    napi_get_global(hd->env, &global);
    arg = string(hd->env, line);
    if (napi_call_function(hd->env, global, fn, 1, &arg, &ret) == napi_pending_exception) {
        napi_value ex;
        napi_get_and_clear_last_exception(hd->env, &ex);
    }
}

static napi_value get(napi_env env, napi_value obj, const char *name)
{
    napi_value v;
    if (napi_get_named_property(env, obj, name, &v) != napi_ok)
        napi_get_undefined(env, &v);
    return v;
}

static int opt_string(napi_env env, arena *a, napi_value obj, const char *name, const char **out, int *rc)
{
    napi_value v = get(env, obj, name);
    *out = NULL;
    if (is_type(env, v, napi_undefined) || is_type(env, v, napi_null))
        return 0;
    *out = str_of(env, a, v, name, rc);
    return *out != NULL;
}

static uint64_t opt_u64(napi_env env, napi_value obj, const char *name)
{
    double d = 0;
    napi_value v = get(env, obj, name);
    if (is_type(env, v, napi_number))
        napi_get_value_double(env, v, &d);
    return d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
}

static int opt_bool(napi_env env, napi_value obj, const char *name, int *out)
{
    napi_value v = get(env, obj, name);
    bool b;
    if (!is_type(env, v, napi_boolean))
        return 0;
    napi_get_value_bool(env, v, &b);
    *out = b;
    return 1;
}

/* env: [{ name, meaning, word }]: the host's own declared variables. */
static int declare_env(napi_env env, arena *a, tel_options *o, napi_value list)
{
    uint32_t n = 0;
    if (is_type(env, list, napi_undefined))
        return TEL_OK;
    if (napi_get_array_length(env, list, &n) != napi_ok)
        return conv_fail("env must be an array of { name, meaning, word }");
    for (uint32_t i = 0; i < n; i++) {
        napi_value d;
        int32_t meaning = 0;
        int rc = TEL_OK;
        const char *name, *word;
        napi_get_element(env, list, i, &d);
        napi_get_value_int32(env, get(env, d, "meaning"), &meaning);
        if (!opt_string(env, a, d, "name", &name, &rc))
            return rc < 0 ? rc : conv_fail("env entry %u has no name", i);
        opt_string(env, a, d, "word", &word, &rc);
        if (rc < 0 || (rc = tel_options_declare_env(o, name, (tel_env_meaning)meaning, word)) < 0)
            return rc;
    }
    return TEL_OK;
}

/* The host's knobs: declared variables, default, inspect, debug, erasure,
 * the run's ids, error detail. */
static int configure_knobs(napi_env env, arena *a, tel_options *o, napi_value opts)
{
    const char *s;
    int rc = declare_env(env, a, o, get(env, opts, "env")), b;
    if (rc < 0)
        return rc;
    if (opt_bool(env, opts, "defaultEnabled", &b) && (rc = tel_options_set_default_enabled(o, b)) < 0)
        return rc;
    if (opt_string(env, a, opts, "inspect", &s, &rc) && (rc = tel_options_set_inspect(o, s)) < 0)
        return rc;
    if (rc < 0)
        return rc;
    if (opt_bool(env, opts, "debug", &b) && b && (rc = tel_options_set_debug(o, 1)) < 0)
        return rc;
    if (opt_bool(env, opts, "erasure", &b) && (rc = tel_options_set_erasure(o, b)) < 0)
        return rc;
    if (opt_bool(env, opts, "projectLinkable", &b) && b && (rc = tel_options_set_project_linkable(o, 1)) < 0)
        return rc;
    if (opt_string(env, a, opts, "execId", &s, &rc) && (rc = tel_options_set_exec_id(o, s)) < 0)
        return rc;
    if (opt_string(env, a, opts, "stateDir", &s, &rc) && (rc = tel_options_set_state_dir(o, s)) < 0)
        return rc;
    if (opt_string(env, a, opts, "installationId", &s, &rc) && (rc = tel_options_set_installation_id(o, s)) < 0)
        return rc;
    if (rc < 0)
        return rc;
    int32_t detail = 0;
    if (is_type(env, get(env, opts, "errorDetail"), napi_number)) {
        napi_get_value_int32(env, get(env, opts, "errorDetail"), &detail);
        if ((rc = tel_options_set_error_detail(o, (tel_error_detail)detail)) < 0)
            return rc;
    }
    return TEL_OK;
}

/* Applies the options object of open() to o. */
static int configure(napi_env env, arena *a, handle *hd, tel_options *o, napi_value opts)
{
    if (!is_type(env, opts, napi_object))
        return TEL_OK;
    const char *s;
    int rc = TEL_OK, b;
    if (opt_string(env, a, opts, "version", &s, &rc) && (rc = tel_options_set_app_version(o, s)) < 0)
        return rc;
    if (opt_string(env, a, opts, "endpoint", &s, &rc) && (rc = tel_options_set_endpoint(o, s)) < 0)
        return rc;
    if (opt_string(env, a, opts, "token", &s, &rc) && (rc = tel_options_set_token(o, s)) < 0)
        return rc;
    if (opt_string(env, a, opts, "projectSalt", &s, &rc) && (rc = tel_options_set_project_salt(o, s)) < 0)
        return rc;
    if (rc < 0)
        return rc;
    if (opt_bool(env, opts, "enabled", &b)) {
        int flag = 0;
        opt_bool(env, opts, "byFlag", &flag);
        if ((rc = tel_options_set_enabled(o, b, flag ? TEL_SRC_FLAG : TEL_SRC_HOST)) < 0)
            return rc;
    }
    napi_value log = get(env, opts, "log");
    int logging = 0;
    if (is_type(env, log, napi_function)) {
        napi_create_reference(env, log, 1, &hd->log);
        rc = tel_options_set_logging(o, 1, log_to_js, hd);
    } else if (opt_bool(env, opts, "logging", &logging) && logging) {
        rc = tel_options_set_logging(o, 1, NULL, NULL);
    }
    if (rc < 0)
        return rc;
    uint64_t me = opt_u64(env, opts, "maxEvents"), mb = opt_u64(env, opts, "maxBytes"),
             ma = opt_u64(env, opts, "maxAgeSeconds");
    if ((me || mb || ma) && (rc = tel_options_set_caps(o, me, mb, ma)) < 0)
        return rc;
    if (opt_bool(env, opts, "requireNotice", &b) && b && (rc = tel_options_set_require_notice(o, 1)) < 0)
        return rc;
    return configure_knobs(env, a, o, opts);
}

/* ------------------------------------------------------------ calls */

/* One JavaScript call: its arguments, the arena its strings live in until
 * call_end(), and its code so far.  The first failure sticks: every later
 * call_str() or call_handle() returns NULL, so a function reads its
 * arguments one after the other and tests the code once. */
typedef struct jcall {
    napi_env env;
    napi_value argv[4];
    arena a;
    int rc;
} jcall;

static void call_begin(jcall *c, napi_env env, napi_callback_info info, size_t nargs)
{
    *c = (jcall){ .env = env, .rc = TEL_OK };
    conv_error[0] = '\0';
    args(env, info, c->argv, nargs);
}

/* A string as UTF-8, owned by the call's arena. */
static const char *call_text(jcall *c, napi_value v, const char *what)
{
    return c->rc == TEL_OK ? str_of(c->env, &c->a, v, what, &c->rc) : NULL;
}

/* Argument i as UTF-8, owned by the call's arena. */
static const char *call_str(jcall *c, size_t i, const char *what)
{
    return call_text(c, c->argv[i], what);
}

/* Argument i as a live handle; a closed one is TEL_ERR_STATE. */
static handle *call_handle(jcall *c, size_t i)
{
    handle *hd = handle_of(c->env, c->argv[i]);
    if (!hd || !hd->h) {
        c->rc = closed_fail();
        return NULL;
    }
    return hd;
}

/* Frees the call's strings and returns its code. */
static int call_done(jcall *c)
{
    arena_free(&c->a);
    return c->rc;
}

static napi_value call_end(jcall *c)
{
    return num(c->env, call_done(c));
}

/* [code, value]: what the calls that also give something back return. */
static napi_value pair(napi_env env, int rc, napi_value v)
{
    napi_value out;
    napi_create_array_with_length(env, 2, &out);
    napi_set_element(env, out, 0, num(env, rc));
    napi_set_element(env, out, 1, v);
    return out;
}

static napi_value null(napi_env env)
{
    napi_value v;
    napi_get_null(env, &v);
    return v;
}

/* open(app, options) -> [code, handle or null] */
static napi_value js_open(napi_env env, napi_callback_info info)
{
    jcall c;
    napi_value ext;
    call_begin(&c, env, info, 2);
    handle *hd = calloc(1, sizeof *hd);
    if (!hd)
        c.rc = TEL_ERR_NOMEM;
    const char *app = call_str(&c, 0, "app");
    tel_options *o = app ? tel_options_new(app) : NULL;
    if (app && !o)
        c.rc = TEL_ERR_INVALID;
    if (hd)
        hd->env = env;
    if (o && (c.rc = configure(env, &c.a, hd, o, c.argv[1])) < 0)
        tel_options_free(o);
    else if (o)
        c.rc = tel_open(&hd->h, o);
    int rc = call_done(&c);
    if (hd && hd->h) {
        napi_create_external(env, hd, handle_finalize, NULL, &ext);
        return pair(env, rc, ext);
    }
    if (hd && hd->log)
        napi_delete_reference(env, hd->log);
    free(hd);
    return pair(env, rc, null(env));
}

/* close(handle): releases it now; the finalizer then has nothing left. */
static napi_value js_close(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    args(env, info, argv, 1);
    handle *hd = handle_of(env, argv[0]);
    if (hd) {
        tel_close(hd->h);
        hd->h = NULL;
    }
    return NULL;
}

/* emit(app, event, props) -> code */
static napi_value js_emit(napi_env env, napi_callback_info info)
{
    jcall c;
    tel_prop *p;
    size_t n;
    call_begin(&c, env, info, 3);
    const char *app = call_str(&c, 0, "app"), *ev = call_str(&c, 1, "event");
    if (ev && (c.rc = props_of(env, &c.a, c.argv[2], &p, &n)) == TEL_OK)
        c.rc = tel_emit(app, ev, p, n);
    return call_end(&c);
}

/* emitEvent(handle, event, props) -> code */
static napi_value js_emit_event(napi_env env, napi_callback_info info)
{
    jcall c;
    tel_prop *p;
    size_t n;
    call_begin(&c, env, info, 3);
    handle *hd = call_handle(&c, 0);
    const char *ev = call_str(&c, 1, "event");
    if (ev && (c.rc = props_of(env, &c.a, c.argv[2], &p, &n)) == TEL_OK)
        c.rc = tel_emit_event(hd->h, ev, p, n);
    return call_end(&c);
}

/* The calls that take a handle alone, told apart by the function's data:
 * batchBegin, batchCommit, noticeShown -> code; enabled, noticeDue -> bool. */
typedef int (*handle_call)(tel *h);

static int call_enabled(tel *h) { return tel_enabled(h); }
static int call_notice_due(tel *h) { return tel_notice_due(h); }

static napi_value js_handle_call(napi_env env, napi_callback_info info)
{
    jcall c;
    void *data;
    napi_get_cb_info(env, info, NULL, NULL, NULL, &data);
    handle_call fn = *(handle_call *)data;
    call_begin(&c, env, info, 1);
    handle *hd = call_handle(&c, 0);
    if (fn == call_enabled || fn == call_notice_due)
        return boolean(env, hd && fn(hd->h));
    if (hd)
        c.rc = fn(hd->h);
    return call_end(&c);
}

/* Labels read as properties, laid out as the name/value pairs of
 * tel_emit_metric in the call's arena; NULL with c->rc set when one is
 * not a string. */
static const char **label_pairs(jcall *c, const char *name, size_t *n)
{
    tel_prop *labels;
    if (c->rc != TEL_OK || (c->rc = props_of(c->env, &c->a, c->argv[3], &labels, n)) != TEL_OK)
        return NULL;
    const char **pairs = arena_alloc(&c->a, (2 * *n + 1) * sizeof *pairs);
    if (!pairs)
        c->rc = TEL_ERR_NOMEM;
    for (size_t i = 0; pairs && i < *n; i++) {
        if (labels[i].type != TEL_T_STR) {
            c->rc = conv_fail("metric '%s' label '%s' must be a string", name, labels[i].key);
            return NULL;
        }
        pairs[2 * i] = labels[i].key;
        pairs[2 * i + 1] = labels[i].v.s;
    }
    return pairs;
}

/* metric(handle, name, value, labels) -> code */
static napi_value js_metric(napi_env env, napi_callback_info info)
{
    jcall c;
    size_t n = 0;
    double value = 0;
    call_begin(&c, env, info, 4);
    handle *hd = call_handle(&c, 0);
    const char *name = call_str(&c, 1, "metric name");
    if (name && napi_get_value_double(env, c.argv[2], &value) != napi_ok)
        c.rc = conv_fail("metric '%s' value must be a number", name);
    const char **pairs = label_pairs(&c, name, &n);
    if (pairs)
        c.rc = tel_emit_metric(hd->h, name, value, pairs, n);
    return call_end(&c);
}

/* prometheus(handle, text) -> code */
static napi_value js_prometheus(napi_env env, napi_callback_info info)
{
    jcall c;
    call_begin(&c, env, info, 2);
    handle *hd = call_handle(&c, 0);
    const char *text = call_str(&c, 1, "the exposition");
    if (text)
        c.rc = tel_emit_prometheus(hd->h, text, strlen(text));
    return call_end(&c);
}

/* commandStarted(handle, command, options[], envOptions[]) -> code */
static napi_value js_command_started(napi_env env, napi_callback_info info)
{
    jcall c;
    uint32_t n1 = 0, n2 = 0;
    call_begin(&c, env, info, 4);
    handle *hd = call_handle(&c, 0);
    const char *cmd = call_str(&c, 1, "command");
    if (cmd && (napi_get_array_length(env, c.argv[2], &n1) != napi_ok ||
                napi_get_array_length(env, c.argv[3], &n2) != napi_ok))
        c.rc = conv_fail("options must be arrays of names");
    tel_option_use *uses = c.rc == TEL_OK ? arena_alloc(&c.a, (n1 + n2 + 1) * sizeof *uses) : NULL;
    if (c.rc == TEL_OK && !uses)
        c.rc = TEL_ERR_NOMEM;
    for (uint32_t i = 0; uses && c.rc == TEL_OK && i < n1 + n2; i++) {
        napi_value v;
        napi_get_element(env, i < n1 ? c.argv[2] : c.argv[3], i < n1 ? i : i - n1, &v);
        uses[i].from_env = i >= n1;
        uses[i].name = call_text(&c, v, "an option name");
    }
    if (c.rc == TEL_OK)
        c.rc = tel_command_started(hd->h, cmd, uses, n1 + n2);
    return call_end(&c);
}

/* commandExited(handle, exitCode, errorClass?, errorMessage?) -> code */
static napi_value js_command_exited(napi_env env, napi_callback_info info)
{
    jcall c;
    int code = 0;
    call_begin(&c, env, info, 4);
    handle *hd = call_handle(&c, 0);
    napi_get_value_int32(env, c.argv[1], &code);
    const char *cls = is_type(env, c.argv[2], napi_string) ? call_str(&c, 2, "error class") : NULL;
    const char *msg = is_type(env, c.argv[3], napi_string) ? call_str(&c, 3, "error message") : NULL;
    if (c.rc == TEL_OK)
        c.rc = tel_command_exited(hd->h, code, cls, msg);
    return call_end(&c);
}

/* The calls that take a handle and a number, told apart by the
 * function's data: spawnSync(handle, seconds), handleSetEnabled(handle,
 * 0 or 1) -> code. */
typedef int (*handle_num_call)(tel *h, uint32_t n);

static int call_spawn_sync(tel *h, uint32_t secs) { return tel_spawn_sync(h, secs); }
static int call_set_enabled(tel *h, uint32_t on) { return tel_handle_set_enabled(h, on != 0); }

static napi_value js_handle_num_call(napi_env env, napi_callback_info info)
{
    jcall c;
    void *data;
    uint32_t n = 0;
    napi_get_cb_info(env, info, NULL, NULL, NULL, &data);
    call_begin(&c, env, info, 2);
    handle *hd = call_handle(&c, 0);
    napi_get_value_uint32(env, c.argv[1], &n);
    if (hd)
        c.rc = (*(handle_num_call *)data)(hd->h, n);
    return call_end(&c);
}

/* execId(handle) -> string, "" when telemetry is off */
static napi_value js_exec_id(napi_env env, napi_callback_info info)
{
    jcall c;
    char id[37] = "";
    call_begin(&c, env, info, 1);
    handle *hd = call_handle(&c, 0);
    if (hd && tel_exec_id(hd->h, id) != TEL_OK)
        id[0] = '\0';
    call_done(&c);
    return string(env, id);
}

/* spanBegin(handle, name, parent span or null) -> [code, span or null],
 * the code of tel_span_start.  The span is the handle's until tel_close;
 * index.js never passes one on after its handle was closed, nor as the
 * parent of another handle's span. */
static napi_value js_span_begin(napi_env env, napi_callback_info info)
{
    jcall c;
    void *parent = NULL;
    tel_span *span = NULL;
    napi_value sp;
    call_begin(&c, env, info, 3);
    handle *hd = call_handle(&c, 0);
    if (is_type(env, c.argv[2], napi_external))
        napi_get_value_external(env, c.argv[2], &parent);
    const char *name = call_str(&c, 1, "span name");
    if (name)
        c.rc = tel_span_start(&span, hd->h, name, parent);
    if (span)
        napi_create_external(env, span, NULL, NULL, &sp);
    return pair(env, call_done(&c), span ? sp : null(env));
}

/* spanEnd(span, status) -> code */
static napi_value js_span_end(napi_env env, napi_callback_info info)
{
    jcall c;
    void *span = NULL;
    int32_t status = 0;
    call_begin(&c, env, info, 2);
    if (is_type(env, c.argv[0], napi_external))
        napi_get_value_external(env, c.argv[0], &span);
    napi_get_value_int32(env, c.argv[1], &status);
    c.rc = tel_span_end(span, status);
    return call_end(&c);
}

/* ------------------------------------------------------- user controls */

/* setEnabled(app, bool), forget(app) -> code; status(app) -> [code, line] */
static napi_value js_set_enabled(napi_env env, napi_callback_info info)
{
    jcall c;
    bool on = false;
    call_begin(&c, env, info, 2);
    const char *app = call_str(&c, 0, "app");
    napi_get_value_bool(env, c.argv[1], &on);
    if (app)
        c.rc = tel_set_enabled(app, on);
    return call_end(&c);
}

static napi_value js_forget(napi_env env, napi_callback_info info)
{
    jcall c;
    call_begin(&c, env, info, 1);
    const char *app = call_str(&c, 0, "app");
    if (app)
        c.rc = tel_forget(app);
    return call_end(&c);
}

static napi_value js_status(napi_env env, napi_callback_info info)
{
    jcall c;
    char line[512] = "";
    call_begin(&c, env, info, 1);
    const char *app = call_str(&c, 0, "app");
    if (app)
        c.rc = tel_status_line(app, line, sizeof line);
    return pair(env, call_done(&c), string(env, line));
}

/* sanitize(text) -> [code, cleaned] */
static napi_value js_sanitize(napi_env env, napi_callback_info info)
{
    jcall c;
    call_begin(&c, env, info, 1);
    const char *in = call_str(&c, 0, "text");
    size_t size = in ? strlen(in) * 8 + 64 : 1;
    char *clean = in ? arena_alloc(&c.a, size) : NULL;
    if (in && !clean)
        c.rc = TEL_ERR_NOMEM;
    else if (in)
        c.rc = tel_sanitize(in, clean, size);
    napi_value out = string(env, c.rc == TEL_OK ? clean : "");
    return pair(env, call_done(&c), out);
}

static napi_value js_version(napi_env env, napi_callback_info info)
{
    (void)info;
    return string(env, tel_version());
}

static napi_value js_strerror(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    args(env, info, argv, 1);
    int32_t code = 0;
    napi_get_value_int32(env, argv[0], &code);
    return string(env, tel_strerror(code));
}

/* The detail of the last failure on this thread: a conversion mistake of
 * this addon, else libtel's. */
static napi_value js_last_error(napi_env env, napi_callback_info info)
{
    (void)info;
    return string(env, conv_error[0] ? conv_error : tel_last_error());
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct {
        const char *name;
        napi_callback fn;
    } fns[] = {
        { "emit", js_emit }, { "open", js_open }, { "close", js_close },
        { "emitEvent", js_emit_event }, { "metric", js_metric }, { "prometheus", js_prometheus },
        { "commandStarted", js_command_started }, { "commandExited", js_command_exited },
        { "setEnabled", js_set_enabled }, { "forget", js_forget }, { "status", js_status },
        { "sanitize", js_sanitize }, { "execId", js_exec_id },
        { "spanBegin", js_span_begin }, { "spanEnd", js_span_end },
        { "version", js_version }, { "strerror", js_strerror }, { "lastError", js_last_error },
    };
    static const struct {
        const char *name;
        handle_call fn;
    } calls[] = {
        { "batchBegin", tel_batch_begin }, { "batchCommit", tel_batch_commit },
        { "noticeShown", tel_notice_shown }, { "enabled", call_enabled }, { "noticeDue", call_notice_due },
    };
    static const struct {
        const char *name;
        handle_num_call fn;
    } num_calls[] = {
        { "spawnSync", call_spawn_sync }, { "handleSetEnabled", call_set_enabled },
    };
    napi_value f;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
        napi_set_named_property(env, exports, fns[i].name, f);
    }
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        napi_create_function(env, calls[i].name, NAPI_AUTO_LENGTH, js_handle_call, (void *)&calls[i].fn, &f);
        napi_set_named_property(env, exports, calls[i].name, f);
    }
    for (size_t i = 0; i < sizeof num_calls / sizeof num_calls[0]; i++) {
        napi_create_function(env, num_calls[i].name, NAPI_AUTO_LENGTH, js_handle_num_call, (void *)&num_calls[i].fn,
                             &f);
        napi_set_named_property(env, exports, num_calls[i].name, f);
    }
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
