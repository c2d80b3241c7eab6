/* SPDX-License-Identifier: MIT */
/*
 * libqueue/policy.c - who decides whether telemetry is on, and where it
 * goes.
 *
 * Settings come from five places: the built-in defaults, what the host
 * program passed, the user's telemetry.conf, the environment, and
 * command-line flags.  For the endpoint, the token and logging the
 * strongest source that says anything wins.  For "enabled" it is
 * different: an opt-out anywhere is an opt-out, so any source saying "off"
 * wins over every source saying "on".  Only a host's default of "off" is
 * weaker: the user's own "on" overrides it.  The host also declares its
 * own variable names (declare.c); they count as the user's environment.
 * Whatever goes wrong while reading
 * the user's choice (a malformed or unreadable file) counts as "off": a
 * broken opt-out line must never turn telemetry on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tel_config.h"
#include "policy.h"


const char tel__default_endpoint[] = TEL_DEFAULT_ENDPOINT;

#define CONF_NAME "telemetry.conf"

/* Reads a string the library recorded in the queue's meta; "" if none
 * or if it does not fit. */
static void meta_string(tel_queue *q, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    if (!q || tel__queue_meta_get(q, key, out, cap - 1, &len) != TEL_OK || len >= cap)
        len = 0;
    out[len] = '\0';
}

int tel__policy_for_queue(tel_policy *out, tel_queue *q, const char *app, const tel_decls *decls,
                          const tel_flag_settings *flags)
{
    char endpoint[sizeof out->endpoint], token[sizeof out->token];
    meta_string(q, TEL_META_ENDPOINT, endpoint, sizeof endpoint);
    meta_string(q, TEL_META_TOKEN, token, sizeof token);
    tel_host_settings host = {
        .enabled = -1, .enabled_src = TEL_SRC_HOST,
        .endpoint = endpoint[0] ? endpoint : NULL,
        .token = token[0] ? token : NULL,
        .logging = -1,
        .decls = decls,
        .error_detail = TEL_ERRORS_CLASS,
    };
    int rc = tel__policy_resolve(out, app, &host, flags);
    explicit_bzero(token, sizeof token);
    return rc;
}

const char *tel__source_name(tel_source src)
{
    switch (src) {
    case TEL_SRC_BUILTIN: return "builtin";
    case TEL_SRC_HOST: return "host";
    case TEL_SRC_CONFIG: return "config";
    case TEL_SRC_ENV: return "env";
    case TEL_SRC_FLAG: return "flag";
    }
    return "unknown";
}

int tel__parse_bool(const char *s)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return 1;
        if (strcasecmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Copies s into a fixed field; returns 0, or -1 when it does not fit. */
static int copy_field(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* Copies s into a fixed field, cutting it at the field's size. */
static void set_text(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ------------------------------------------------------------- reading */

/*
 * Reads the whole config file into a fresh NUL-terminated buffer.
 * Returns TEL_OK, TEL_ERR_NOTFOUND when there is no file (the normal
 * case), or TEL_ERR_CONFIG when something is there that is not a small
 * regular file; the caller owns *data on TEL_OK.  O_NONBLOCK keeps a FIFO
 * planted at the path from hanging the host in open().
 */
static int conf_load(const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    /* A symlink is followed: dotfile managers link config files into
     * place, and reading the user's own file through a link gives away
     * nothing.  What it points at must still be a small regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return TEL_ERR_NOTFOUND;
        if (errno == ELOOP)
            return tel__fail(TEL_ERR_CONFIG, CONF_NAME " is a symlink loop");
        if (errno == EISDIR)
            return tel__fail(TEL_ERR_CONFIG, CONF_NAME " is a directory");
        return tel__fail(TEL_ERR_CONFIG, CONF_NAME " cannot be read (%s)", strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tel__fail(TEL_ERR_CONFIG, CONF_NAME " is not a regular file");
    }
    if (st.st_size > TEL_CONFIG_MAX) {
        close(fd);
        return tel__fail(TEL_ERR_CONFIG, CONF_NAME " is larger than %d KiB", TEL_CONFIG_MAX / 1024);
    }
    char *buf = malloc(TEL_CONFIG_MAX + 2);
    if (buf == NULL) {
        close(fd);
        return tel__fail(TEL_ERR_NOMEM, "out of memory reading " CONF_NAME);
    }
    /* The size is checked again while reading: the file may grow between
     * fstat and read. */
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, TEL_CONFIG_MAX + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return tel__fail(TEL_ERR_CONFIG, CONF_NAME " cannot be read (%s)", strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > TEL_CONFIG_MAX) {
            free(buf);
            close(fd);
            return tel__fail(TEL_ERR_CONFIG, CONF_NAME " is larger than %d KiB",
                             TEL_CONFIG_MAX / 1024);
        }
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return TEL_OK;
}

typedef struct span {
    const char *p;
    size_t len;
} span;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static span trim(const char *p, size_t len)
{
    while (len > 0 && is_space(*p)) {
        p++;
        len--;
    }
    while (len > 0 && is_space(p[len - 1]))
        len--;
    return (span){ p, len };
}

enum { LINE_SKIP, LINE_KV, LINE_BAD };

/*
 * Splits one line (without its newline) into key and value spans.  Blank
 * lines and '#' comments are LINE_SKIP.  The value loses one pair of
 * surrounding double quotes; there are no escapes, so a token holding any
 * byte but a quote at its ends needs no quoting at all.  On LINE_BAD *why
 * says what is wrong.
 */
static int split_line(const char *line, size_t len, span *key, span *val, const char **why)
{
    span t = trim(line, len);
    if (t.len == 0 || t.p[0] == '#')
        return LINE_SKIP;
    if (memchr(t.p, '\0', t.len) != NULL) {
        *why = "contains a NUL byte";
        return LINE_BAD;
    }
    const char *eq = memchr(t.p, '=', t.len);
    if (eq == NULL) {
        *why = "expected 'key = value'";
        return LINE_BAD;
    }
    *key = trim(t.p, (size_t)(eq - t.p));
    if (key->len == 0) {
        *why = "missing key before '='";
        return LINE_BAD;
    }
    *val = trim(eq + 1, t.len - (size_t)(eq + 1 - t.p));
    if (val->len > 0 && val->p[0] == '"') {
        if (val->len < 2 || val->p[val->len - 1] != '"') {
            *why = "unterminated double quote";
            return LINE_BAD;
        }
        val->p++;
        val->len -= 2;
    }
    for (size_t i = 0; i < val->len; i++) {
        unsigned char c = (unsigned char)val->p[i];
        if (c < 0x20 && c != '\t') {
            *why = "control character in the value";
            return LINE_BAD;
        }
    }
    return LINE_KV;
}

static int key_is(span k, const char *name)
{
    return k.len == strlen(name) && memcmp(k.p, name, k.len) == 0;
}

static int known_key(span k)
{
    return key_is(k, "enabled") || key_is(k, "endpoint") || key_is(k, "token") ||
           key_is(k, "logging");
}

/* What telemetry.conf says; -1 / "" for what it does not mention. */
typedef struct conf_vals {
    int enabled;
    int enabled_line;
    char endpoint[sizeof(((tel_policy *)0)->endpoint)];
    char token[sizeof(((tel_policy *)0)->token)];
    int logging;
} conf_vals;

/*
 * Parses the file text.  On a bad line returns TEL_ERR_CONFIG with
 * "telemetry.conf line N: ..." and sets *bad_line; the values read so far
 * must then be ignored by the caller.
 */
static int conf_parse(const char *data, size_t len, conf_vals *cv, int *bad_line)
{
    cv->enabled = -1;
    cv->enabled_line = 0;
    cv->endpoint[0] = '\0';
    cv->token[0] = '\0';
    cv->logging = -1;
    int lineno = 0;
    int seen_line[4] = { 0, 0, 0, 0 };
    size_t pos = 0;
    while (pos < len) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;
        pos += llen + (nl ? 1 : 0);
        lineno++;

        span k, v;
        const char *why = "";
        int kind = split_line(line, llen, &k, &v, &why);
        *bad_line = lineno;
        if (kind == LINE_SKIP)
            continue;
        if (kind == LINE_BAD)
            return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: %s", lineno, why);
        if (!known_key(k)) {
            /* The key is echoed only when it looks like a key: a line with
             * no '=' in the right place could be a pasted token. */
            int printable = k.len <= 32;
            for (size_t i = 0; i < k.len && printable; i++) {
                char c = k.p[i];
                printable = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
            }
            if (printable)
                return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: unknown key '%.*s'", lineno,
                                 (int)k.len, k.p);
            return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: unknown key", lineno);
        }
        /* A key given twice has no obvious meaning ("enabled = false"
         * then "enabled = true": which did the user mean?), so the file
         * is malformed, and fails closed like any other malformation. */
        static const char *const keys[] = { "enabled", "endpoint", "token", "logging" };
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            if (!key_is(k, keys[i]))
                continue;
            if (seen_line[i])
                return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: '%s' is already set on line %d",
                                 lineno, keys[i], seen_line[i]);
            seen_line[i] = lineno;
        }
        char word[16];
        if (key_is(k, "enabled") || key_is(k, "logging")) {
            int b = -1;
            if (copy_field(word, sizeof word, v.p, v.len) == 0)
                b = tel__parse_bool(word);
            if (b < 0)
                return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: '%s' must be true or false",
                                 lineno, key_is(k, "enabled") ? "enabled" : "logging");
            if (key_is(k, "enabled")) {
                cv->enabled = b;
                cv->enabled_line = lineno;
            } else {
                cv->logging = b;
            }
        } else if (key_is(k, "endpoint")) {
            if (copy_field(cv->endpoint, sizeof cv->endpoint, v.p, v.len) != 0)
                return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: endpoint is too long",
                                 lineno);
        } else {
            if (copy_field(cv->token, sizeof cv->token, v.p, v.len) != 0)
                return tel__fail(TEL_ERR_CONFIG, CONF_NAME " line %d: token is too long", lineno);
        }
    }
    *bad_line = 0;
    return TEL_OK;
}

/* ------------------------------------------------------------ resolving */

int tel__setting_check(const char *what, const char *val, size_t cap)
{
    size_t n = strnlen(val, cap);
    if (n >= cap)
        return tel__fail(TEL_ERR_INVALID, "%s is longer than %zu bytes", what, cap - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c < 0x20 || c == 0x7f)
            return tel__fail(TEL_ERR_INVALID, "%s has a control character at byte %zu", what, i);
    }
    return TEL_OK;
}

/*
 * Takes one source's endpoint or token (`what` is "ENDPOINT" or "TOKEN")
 * into field, only whole and free of control characters: a cut-off URL
 * would send elsewhere, and a CR/LF would become a header of its own.
 * Anything else is not used and is named in out->problem (the first
 * problem wins), so that tel-sync refuses to send rather than fall back
 * on a weaker setting, and tel status says why.
 */
static void take_value(tel_policy *out, const char *app, tel_source src, const char *what,
                       const char *val, char *field, size_t cap, tel_source *field_src)
{
    if (val == NULL || val[0] == '\0')
        return;
    size_t n = strnlen(val, cap);
    const char *why = n >= cap ? "is too long" : NULL;
    for (size_t i = 0; i < n && !why; i++)
        if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f)
            why = "has a control character";
    if (why == NULL) {
        memcpy(field, val, n + 1);
        *field_src = src;
        return;
    }
    if (out->problem[0] != '\0')
        return;
    char name[160];
    const char *lower = what[0] == 'E' ? "endpoint" : "token";
    if (src == TEL_SRC_ENV)
        tel__env_name(app, what, name, sizeof name);
    else if (src == TEL_SRC_FLAG)
        snprintf(name, sizeof name, "--%s", lower);
    else
        snprintf(name, sizeof name, "the %s's %s", tel__source_name(src), lower);
    if (n >= cap)
        snprintf(out->problem, sizeof out->problem, "%s is longer than %zu bytes; not used", name, cap - 1);
    else
        snprintf(out->problem, sizeof out->problem, "%s %s; not used", name, why);
}

/* Records a vote to switch telemetry off; the first one recorded names
 * the decision, so callers vote strongest source first. */
static void vote_off(tel_policy *out, tel_source src, const char *why)
{
    if (!out->enabled)
        return;
    out->enabled = 0;
    out->enabled_src = src;
    set_text(out->enabled_why, sizeof out->enabled_why, why);
}

/* Records who explicitly said "on"; the strongest such source is named
 * as long as nobody says off. */
static void note_on(tel_source *src, char *why, size_t whycap, tel_source s, const char *name)
{
    if (*src == TEL_SRC_BUILTIN || s > *src) {
        *src = s;
        set_text(why, whycap, name);
    }
}

/* DO_NOT_TRACK follows consoledonottrack.com: set to anything but "",
 * "0" or "false" means do not track. */
static int do_not_track(void)
{
    const char *v = getenv("DO_NOT_TRACK");
    if (v == NULL || v[0] == '\0')
        return 0;
    return strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0;
}

/* An environment value, or NULL when unset or empty. */
static const char *env_value(const char *app, const char *suffix, char *name, size_t cap)
{
    tel__env_name(app, suffix, name, cap);
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : NULL;
}

static const char *name_of(const char *app, const char *suffix, char *name, size_t cap)
{
    tel__env_name(app, suffix, name, cap);
    return name;
}

/*
 * Nobody said off: names the strongest source saying on.  A host whose
 * default is off stays off unless the user's own "on" is among them; that
 * off is a default, not an opt-out, so nothing is purged for it.
 */
static void resolve_on(tel_policy *out, const tel_host_settings *host, tel_source host_src,
                       int conf_on_line, const char *env_on_name, const tel_decl_effect *fx,
                       const tel_flag_settings *flags)
{
    tel_source src = TEL_SRC_BUILTIN;
    char why[sizeof out->enabled_why] = "builtin";
    int user_on = 0;
    if (host && host->enabled == 1) {
        note_on(&src, why, sizeof why, host_src, host_src == TEL_SRC_FLAG ? "host flag" : "host");
        user_on |= host_src == TEL_SRC_FLAG;
    }
    if (conf_on_line > 0) {
        char w[64];
        snprintf(w, sizeof w, CONF_NAME " line %d", conf_on_line);
        note_on(&src, why, sizeof why, TEL_SRC_CONFIG, w);
        user_on = 1;
    }
    if (env_on_name) {
        note_on(&src, why, sizeof why, TEL_SRC_ENV, env_on_name);
        user_on = 1;
    }
    if (fx->on == 1) {
        note_on(&src, why, sizeof why, TEL_SRC_ENV, fx->on_name);
        user_on = 1;
    }
    if (flags && flags->enabled == 1) {
        note_on(&src, why, sizeof why, TEL_SRC_FLAG, "flag");
        user_on = 1;
    }
    if (host && host->decls && host->decls->default_off && !user_on) {
        out->enabled = 0;
        src = TEL_SRC_HOST;
        set_text(why, sizeof why, "default off");
    }
    out->enabled_src = src;
    set_text(out->enabled_why, sizeof out->enabled_why, why);
}

int tel__policy_resolve(tel_policy *out, const char *app, const tel_host_settings *host,
                        const tel_flag_settings *flags)
{
    memset(out, 0, sizeof *out);
    out->enabled = 1;
    out->enabled_src = TEL_SRC_BUILTIN;
    set_text(out->enabled_why, sizeof out->enabled_why, "builtin");
    set_text(out->endpoint, sizeof out->endpoint, tel__default_endpoint);
    out->endpoint_src = TEL_SRC_BUILTIN;
    out->token_src = TEL_SRC_BUILTIN;
    out->logging_src = TEL_SRC_BUILTIN;

    int rc = tel__app_check(app);
    if (rc != TEL_OK) {
        vote_off(out, TEL_SRC_BUILTIN, "invalid app name");
        return rc;
    }

    /* Gather the user's file first; it only counts after the host. */
    char path[TEL_PATH_MAX];
    conf_vals cv;
    int conf_rc = TEL_ERR_NOTFOUND;
    int bad_line = 0;
    char conf_err[256] = "";
    if (tel__config_path(app, path, sizeof path) == TEL_OK) {
        char *data;
        size_t len;
        conf_rc = conf_load(path, &data, &len);
        if (conf_rc == TEL_OK) {
            conf_rc = conf_parse(data, len, &cv, &bad_line);
            free(data);
        }
        if (conf_rc != TEL_OK && conf_rc != TEL_ERR_NOTFOUND)
            set_text(conf_err, sizeof conf_err, tel_last_error());
    }
    int conf_ok = (conf_rc == TEL_OK);

    char name[160];
    const char *env_enabled = env_value(app, "ENABLED", name, sizeof name);
    char env_enabled_name[160];
    set_text(env_enabled_name, sizeof env_enabled_name, name);
    const char *env_endpoint = env_value(app, "ENDPOINT", name, sizeof name);
    const char *env_token = env_value(app, "TOKEN", name, sizeof name);
    const char *env_logging = env_value(app, "LOGGING", name, sizeof name);
    const char *env_debug = env_value(app, "DEBUG", name, sizeof name);
    const char *env_inspect = env_value(app, "INSPECT", name, sizeof name);

    tel_decl_effect fx;
    tel__decls_apply(host ? host->decls : NULL, &fx);

    /* enabled: off votes, strongest source first.  The user's own offs
     * are opt-outs (opted_out: purge); the host's and tel's flags only
     * switch this run off. */
    int env_on = env_enabled ? tel__parse_bool(env_enabled) : -1;
    tel_source host_src = host ? host->enabled_src : TEL_SRC_HOST;
    if (host_src != TEL_SRC_FLAG)
        host_src = TEL_SRC_HOST;
    if (flags && flags->enabled == 0)
        vote_off(out, TEL_SRC_FLAG, "flag");
    if (host && host->enabled == 0 && host_src == TEL_SRC_FLAG)
        vote_off(out, TEL_SRC_FLAG, "host flag");
    /* An unrecognised value is read as "off": someone who wrote
     * ENABLED=disable meant to opt out. */
    if (env_enabled && env_on != 1) {
        vote_off(out, TEL_SRC_ENV, env_enabled_name);
        out->opted_out = 1;
    }
    if (fx.off) {
        vote_off(out, TEL_SRC_ENV, fx.off);
        out->opted_out = 1;
    }
    if (do_not_track()) {
        vote_off(out, TEL_SRC_ENV, "DO_NOT_TRACK");
        out->opted_out = 1;
    }
    if (conf_rc != TEL_OK && conf_rc != TEL_ERR_NOTFOUND) {
        char why[64];
        if (bad_line > 0)
            snprintf(why, sizeof why, CONF_NAME " line %d (malformed)", bad_line);
        else
            snprintf(why, sizeof why, CONF_NAME " (unreadable)");
        vote_off(out, TEL_SRC_CONFIG, why);
    }
    if (conf_ok && cv.enabled == 0) {
        char why[64];
        snprintf(why, sizeof why, CONF_NAME " line %d", cv.enabled_line);
        vote_off(out, TEL_SRC_CONFIG, why);
        out->opted_out = 1;
    }
    if (host && host->enabled == 0 && host_src == TEL_SRC_HOST)
        vote_off(out, TEL_SRC_HOST, "host");

    if (out->enabled)
        resolve_on(out, host, host_src, conf_ok && cv.enabled == 1 ? cv.enabled_line : 0,
                   env_on == 1 ? env_enabled_name : NULL, &fx, flags);

    /* The other settings: each source as one layer, weakest first, each
     * stronger layer overwriting what it sets.  A value too long for its
     * field or holding a control character is named in out->problem and
     * not used (see take_value). */
    struct layer {
        tel_source src;
        const char *endpoint, *token;
        int logging;
    } layers[4] = {
        { TEL_SRC_HOST, host ? host->endpoint : NULL, host ? host->token : NULL,
          host ? host->logging : -1 },
        { TEL_SRC_CONFIG, conf_ok ? cv.endpoint : NULL, conf_ok ? cv.token : NULL,
          conf_ok ? cv.logging : -1 },
        { TEL_SRC_ENV, env_endpoint, env_token, env_logging ? tel__parse_bool(env_logging) : -1 },
        { TEL_SRC_FLAG, flags ? flags->endpoint : NULL, flags ? flags->token : NULL,
          flags ? flags->logging : -1 },
    };
    for (int i = 0; i < 4; i++) {
        const struct layer *l = &layers[i];
        take_value(out, app, l->src, "ENDPOINT", l->endpoint, out->endpoint, sizeof out->endpoint,
                   &out->endpoint_src);
        take_value(out, app, l->src, "TOKEN", l->token, out->token, sizeof out->token, &out->token_src);
        if (l->logging >= 0) {
            out->logging = l->logging != 0;
            out->logging_src = l->src;
        }
    }

    out->debug = env_debug != NULL && tel__parse_bool(env_debug) == 1;
    if (out->debug)
        set_text(out->debug_why, sizeof out->debug_why, name_of(app, "DEBUG", name, sizeof name));
    else if (fx.debug) {
        out->debug = 1;
        set_text(out->debug_why, sizeof out->debug_why, fx.debug);
    }
    if (env_inspect != NULL)
        copy_field(out->inspect, sizeof out->inspect, env_inspect, strlen(env_inspect));
    if (fx.log_file) {
        out->log_file = fx.log_file;
        set_text(out->log_file_why, sizeof out->log_file_why, fx.log_file_name);
    }
    out->error_detail = host && host->error_detail == TEL_ERRORS_SANITIZED ? TEL_ERRORS_SANITIZED
                                                                           : TEL_ERRORS_CLASS;
    if (out->error_detail == TEL_ERRORS_SANITIZED)
        set_text(out->error_detail_why, sizeof out->error_detail_why, "host");
    if (fx.detailed_errors) {
        out->error_detail = TEL_ERRORS_SANITIZED;
        set_text(out->error_detail_why, sizeof out->error_detail_why, fx.detailed_errors);
    }

    /* The config error is reported last so that nothing above overwrote
     * the detail. */
    if (conf_err[0] != '\0')
        return tel__fail(conf_rc, "%s", conf_err);
    return TEL_OK;
}

/* ------------------------------------------------------------- writing */

static int value_ok(const char *key, const char *value)
{
    size_t cap = strcmp(key, "token") == 0 ? sizeof(((tel_policy *)0)->token)
                                          : sizeof(((tel_policy *)0)->endpoint);
    size_t n = strlen(value);
    if (n >= cap)
        return tel__fail(TEL_ERR_INVALID, "the %s value is too long", key);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return tel__fail(TEL_ERR_INVALID, "the %s value has a control character", key);
    }
    if ((strcmp(key, "enabled") == 0 || strcmp(key, "logging") == 0) &&
        tel__parse_bool(value) < 0)
        return tel__fail(TEL_ERR_INVALID, "%s must be true or false", key);
    return TEL_OK;
}

/* Writes all of buf; returns 0 or -1. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Builds the new file text: the old lines kept verbatim, the first line
 * for `key` replaced, later ones for it dropped, or the line appended. */
static int conf_rewrite(const char *old, size_t oldlen, const char *key, const char *value,
                        tel_buf *out)
{
    /* Quotes keep surrounding spaces and a leading quote intact on the
     * next read; anything else is written bare. */
    size_t vlen = strlen(value);
    int quote = vlen == 0 || is_space(value[0]) || is_space(value[vlen - 1]) || value[0] == '"';
    tel_buf line = TEL_BUF_INIT;
    int err = tel__buf_printf(&line, quote ? "%s = \"%s\"\n" : "%s = %s\n", key, value);

    int done = 0;
    size_t pos = 0;
    while (!err && pos < oldlen) {
        const char *l = old + pos;
        const char *nl = memchr(l, '\n', oldlen - pos);
        size_t llen = nl ? (size_t)(nl - l) : oldlen - pos;
        pos += llen + (nl ? 1 : 0);
        span k, v;
        const char *why;
        if (split_line(l, llen, &k, &v, &why) == LINE_KV && key_is(k, key)) {
            if (!done)
                err = tel__buf_append(out, line.p, line.len);
            done = 1;
            continue;
        }
        err = tel__buf_append(out, l, llen) || tel__buf_append(out, "\n", 1);
    }
    if (!err && !done)
        err = tel__buf_append(out, line.p, line.len);
    tel__buf_free(&line);
    return err ? tel__fail(TEL_ERR_NOMEM, "out of memory writing " CONF_NAME) : TEL_OK;
}

int tel__config_set(const char *app, const char *key, const char *value)
{
    if (key == NULL || value == NULL)
        return tel__fail(TEL_ERR_INVALID, "config key or value is missing");
    span k = { key, strlen(key) };
    if (!known_key(k))
        return tel__fail(TEL_ERR_INVALID, "unknown config key");
    int rc = value_ok(key, value);
    if (rc != TEL_OK)
        return rc;

    char path[TEL_PATH_MAX];
    rc = tel__config_path(app, path, sizeof path);
    if (rc != TEL_OK)
        return rc;
    char dir[TEL_PATH_MAX];
    memcpy(dir, path, strlen(path) + 1);
    *strrchr(dir, '/') = '\0';
    rc = tel__mkdir_private(dir);
    if (rc != TEL_OK)
        return rc;
    /* A config file linked into place by a dotfile manager is updated
     * where it really lives, so the link keeps working. */
    struct stat lst;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        char real[TEL_PATH_MAX];
        struct stat rst;
        if (!realpath(path, real) || stat(real, &rst) != 0 || !S_ISREG(rst.st_mode) ||
            strlen(real) >= sizeof path)
            return tel__fail(TEL_ERR_IO, CONF_NAME " is a symlink to something that is not a file");
        memcpy(path, real, strlen(real) + 1);
        memcpy(dir, path, strlen(path) + 1);
        *strrchr(dir, '/') = '\0';
    }

    char *old = NULL;
    size_t oldlen = 0;
    rc = conf_load(path, &old, &oldlen);
    if (rc == TEL_ERR_CONFIG)
        /* A symlink or a directory there is left for the user to sort
         * out rather than silently replaced. */
        return tel__fail(TEL_ERR_IO, "%s", tel_last_error());
    if (rc != TEL_OK && rc != TEL_ERR_NOTFOUND)
        return rc;

    tel_buf text = TEL_BUF_INIT;
    rc = conf_rewrite(old ? old : "", oldlen, key, value, &text);
    free(old);
    if (rc != TEL_OK) {
        tel__buf_free(&text);
        return rc;
    }

    char tmp[TEL_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, CONF_NAME) >= (int)sizeof tmp) {
        tel__buf_free(&text);
        return tel__fail(TEL_ERR_NOSTATE, "the config file path is too long");
    }
    /* mkostemp creates the file 0600 with O_EXCL, so nothing can be
     * planted at the name; fchmod repeats it in case of an odd libc. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        tel__buf_free(&text);
        return tel__fail(TEL_ERR_IO, "cannot create a temporary " CONF_NAME " (%s)", strerror(e));
    }
    int failed = fchmod(fd, 0600) != 0 || write_all(fd, (const char *)text.p, text.len) != 0 ||
                 fsync(fd) != 0;
    int e = errno;
    failed = (close(fd) != 0) || failed;
    tel__buf_free(&text);
    if (failed || rename(tmp, path) != 0) {
        if (!failed)
            e = errno;
        unlink(tmp);
        return tel__fail(TEL_ERR_IO, "cannot write " CONF_NAME " (%s)", strerror(e));
    }
    /* The rename is durable only once the directory is synced too. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return TEL_OK;
}

/* ------------------------------------------------------------ endpoints */

static int is_loopback(const char *host, size_t len, int bracketed)
{
    char h[64];
    if (len >= sizeof h)
        return 0;
    memcpy(h, host, len);
    h[len] = '\0';
    if (bracketed) {
        struct in6_addr a6;
        return inet_pton(AF_INET6, h, &a6) == 1 && memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
    }
    if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0)
        return 1;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int tel__endpoint_loopback(const char *url)
{
    const char *rest = strstr(url, "://");
    if (rest == NULL)
        return 0;
    rest += 3;
    size_t alen = strcspn(rest, "/?#");
    if (alen > 0 && rest[0] == '[') {
        const char *close = memchr(rest, ']', alen);
        return close != NULL && is_loopback(rest + 1, (size_t)(close - rest - 1), 1);
    }
    const char *colon = memchr(rest, ':', alen);
    return is_loopback(rest, colon ? (size_t)(colon - rest) : alen, 0);
}

int tel__endpoint_check(const char *url)
{
    if (url == NULL || url[0] == '\0')
        return tel__fail(TEL_ERR_INVALID, "endpoint is empty");
    size_t n = strnlen(url, sizeof(((tel_policy *)0)->endpoint));
    if (n >= sizeof(((tel_policy *)0)->endpoint))
        return tel__fail(TEL_ERR_INVALID, "endpoint is longer than %zu bytes",
                         sizeof(((tel_policy *)0)->endpoint) - 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f)
            return tel__fail(TEL_ERR_INVALID,
                             "endpoint has a space, control or non-ASCII character at byte %zu", i);
    }
    int https;
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0) {
        https = 1;
        rest = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        https = 0;
        rest = url + 7;
    } else {
        const char *colon = strstr(url, "://");
        if (colon != NULL && colon - url <= 16)
            return tel__fail(TEL_ERR_INVALID, "endpoint scheme '%.*s' is not allowed; use https",
                             (int)(colon - url), url);
        return tel__fail(TEL_ERR_INVALID, "endpoint must start with https://");
    }

    size_t alen = strcspn(rest, "/?#");
    if (memchr(rest, '@', alen) != NULL)
        return tel__fail(TEL_ERR_INVALID, "endpoint must not contain user credentials (user@)");
    const char *host = rest;
    size_t hlen;
    const char *after;
    int bracketed = 0;
    if (alen > 0 && rest[0] == '[') {
        const char *close = memchr(rest, ']', alen);
        if (close == NULL)
            return tel__fail(TEL_ERR_INVALID, "endpoint has an unterminated '[' in its host");
        host = rest + 1;
        hlen = (size_t)(close - host);
        after = close + 1;
        bracketed = 1;
        struct in6_addr a6;
        char h[64];
        if (hlen == 0 || hlen >= sizeof h)
            return tel__fail(TEL_ERR_INVALID, "endpoint has a malformed IPv6 host");
        memcpy(h, host, hlen);
        h[hlen] = '\0';
        if (inet_pton(AF_INET6, h, &a6) != 1)
            return tel__fail(TEL_ERR_INVALID, "endpoint has a malformed IPv6 host");
    } else {
        const char *colon = memchr(rest, ':', alen);
        hlen = colon ? (size_t)(colon - rest) : alen;
        after = rest + hlen;
        if (hlen == 0)
            return tel__fail(TEL_ERR_INVALID, "endpoint has no host");
        for (size_t i = 0; i < hlen; i++) {
            char c = host[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_'))
                return tel__fail(TEL_ERR_INVALID, "endpoint host has '%c', not allowed in a host name",
                                 c);
        }
    }
    const char *aend = rest + alen;
    if (after < aend) {
        if (*after != ':')
            return tel__fail(TEL_ERR_INVALID, "endpoint has text after its host");
        const char *p = after + 1;
        unsigned long port = 0;
        if (p == aend)
            return tel__fail(TEL_ERR_INVALID, "endpoint has an empty port");
        for (; p < aend; p++) {
            if (*p < '0' || *p > '9')
                return tel__fail(TEL_ERR_INVALID, "endpoint port is not a number");
            port = port * 10 + (unsigned long)(*p - '0');
            if (port > 65535)
                return tel__fail(TEL_ERR_INVALID, "endpoint port is larger than 65535");
        }
        if (port == 0)
            return tel__fail(TEL_ERR_INVALID, "endpoint port 0 is not allowed");
    }
    if (!https && !is_loopback(host, hlen, bracketed))
        return tel__fail(TEL_ERR_INVALID,
                         "endpoint uses http:// to host '%s%.*s%s'; http is allowed only to "
                         "loopback, use https",
                         bracketed ? "[" : "", (int)(hlen > 100 ? 100 : hlen), host,
                         bracketed ? "]" : "");
    return TEL_OK;
}
