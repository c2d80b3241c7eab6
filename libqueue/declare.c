/* SPDX-License-Identifier: MIT */
/*
 * libqueue/declare.c - the host's own telemetry knobs: environment names
 * it declared (tel_options_declare_env) and a default of "off".
 *
 * A host program knows its users' variables (ASTRO_TELEMETRY_DISABLED,
 * WERF_TELEMETRY...), but `tel status` and a tel-sync started by cron do
 * not run inside the host.  So the declaration is written beside the
 * queue, as text in <state>/telemetry-declared, and every tel program
 * reads it and then applies it to its *own* environment.  The file holds
 * names and meanings only, never a value: a variable's value is read
 * from the environment of the process that needs it, each time.
 *
 * It lives beside the queue rather than inside it because every opt-out
 * removes the queue's files: `tel status` must still be able to say that
 * ASTRO_TELEMETRY_DISABLED is what keeps telemetry off afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const struct {
    tel_env_meaning m;
    const char *word;
} meanings[] = {
    { TEL_ENV_OFF_IF_TRUE, "off-if-true" },
    { TEL_ENV_OFF_IF_SET, "off-if-set" },
    { TEL_ENV_ON_OFF, "on-off" },
    { TEL_ENV_DEBUG_IF_CONTAINS, "debug-if-contains" },
    { TEL_ENV_LOG_FILE, "log-file" },
    { TEL_ENV_DETAILED_ERRORS, "detailed-errors" },
};

const char *tel__meaning_name(tel_env_meaning m)
{
    for (size_t i = 0; i < sizeof meanings / sizeof *meanings; i++)
        if (meanings[i].m == m)
            return meanings[i].word;
    return NULL;
}

int tel__meaning_parse(const char *word, size_t len)
{
    for (size_t i = 0; i < sizeof meanings / sizeof *meanings; i++)
        if (strlen(meanings[i].word) == len && memcmp(meanings[i].word, word, len) == 0)
            return (int)meanings[i].m;
    return -1;
}

/* An environment name as a shell writes one: [A-Za-z_][A-Za-z0-9_]*. */
static int env_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > TEL_DECL_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* The word of debug-if-contains: printable ASCII without spaces or commas
 * (the separators of the variable's list). */
static int word_ok(const char *s, size_t n)
{
    if (n == 0 || n > TEL_DECL_WORD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == ',')
            return 0;
    return 1;
}

int tel__decls_add(tel_decls *d, const char *name, int meaning, const char *word)
{
    if (!name || !env_name_ok(name, strlen(name)))
        return tel__fail(TEL_ERR_INVALID, "a declared variable name must be 1-%d of [A-Za-z0-9_], "
                                          "not starting with a digit", TEL_DECL_NAME_MAX);
    if (!tel__meaning_name((tel_env_meaning)meaning))
        return tel__fail(TEL_ERR_INVALID, "variable %s: unknown meaning %d", name, meaning);
    int wants_word = meaning == TEL_ENV_DEBUG_IF_CONTAINS;
    if (wants_word && (!word || !word_ok(word, strlen(word))))
        return tel__fail(TEL_ERR_INVALID, "variable %s: debug-if-contains needs a word of 1-%d "
                                          "printable characters, no spaces or commas",
                         name, TEL_DECL_WORD_MAX);
    if (!wants_word && word && *word)
        return tel__fail(TEL_ERR_INVALID, "variable %s: only debug-if-contains takes a word", name);
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->d[i].name, name) == 0)
            return tel__fail(TEL_ERR_INVALID, "variable %s is declared twice", name);
    if (d->n == TEL_MAX_DECLS)
        return tel__fail(TEL_ERR_LIMIT, "at most %d variables may be declared", TEL_MAX_DECLS);
    tel_decl *e = &d->d[d->n++];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name);
    e->meaning = (tel_env_meaning)meaning;
    if (wants_word)
        strcpy(e->word, word);
    return TEL_OK;
}

/* ---------------------------------------------------------------- text */

int tel__decls_format(const tel_decls *d, tel_buf *out)
{
    int err = tel__buf_puts(out, "# what the host program declared; read by tel and tel-sync\n");
    if (d->default_off)
        err = err || tel__buf_puts(out, "default off\n");
    if (d->erasure)
        err = err || tel__buf_puts(out, "erasure on\n");
    for (size_t i = 0; i < d->n && !err; i++)
        err = tel__buf_printf(out, "env %s %s%s%s\n", d->d[i].name, tel__meaning_name(d->d[i].meaning),
                             d->d[i].word[0] ? " " : "", d->d[i].word);
    return err ? tel__fail(TEL_ERR_NOMEM, "out of memory") : TEL_OK;
}

/* Splits off the next space-separated word of [*p, end). */
static size_t next_word(const char **p, const char *end, const char **w)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *w = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t)(*p - *w);
}

int tel__decls_parse(const char *text, size_t len, tel_decls *d)
{
    memset(d, 0, sizeof *d);
    const char *end = text + len;
    int lineno = 0;
    while (text < end) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        const char *lend = nl ? nl : end;
        const char *p = text;
        text = nl ? nl + 1 : end;
        lineno++;
        if (p == lend || *p == '#')
            continue;
        const char *w[4];
        size_t n[4];
        for (int i = 0; i < 4; i++)
            n[i] = next_word(&p, lend, &w[i]);
        if (n[0] == 7 && memcmp(w[0], "default", 7) == 0 && n[1] == 3 && memcmp(w[1], "off", 3) == 0 &&
            n[2] == 0) {
            d->default_off = 1;
            continue;
        }
        if (n[0] == 7 && memcmp(w[0], "erasure", 7) == 0 && n[1] == 2 && memcmp(w[1], "on", 2) == 0 &&
            n[2] == 0) {
            d->erasure = 1;
            continue;
        }
        char name[TEL_DECL_NAME_MAX + 1], word[TEL_DECL_WORD_MAX + 1] = "";
        int m = n[1] ? tel__meaning_parse(w[2], n[2]) : -1;
        if (n[0] != 3 || memcmp(w[0], "env", 3) != 0 || n[1] == 0 || n[1] > TEL_DECL_NAME_MAX ||
            m < 0 || n[3] > TEL_DECL_WORD_MAX || p != lend)
            return tel__fail(TEL_ERR_CORRUPT, TEL_DECL_FILE " line %d is not understood", lineno);
        memcpy(name, w[1], n[1]);
        name[n[1]] = '\0';
        memcpy(word, w[3], n[3]);
        word[n[3]] = '\0';
        if (tel__decls_add(d, name, m, word[0] ? word : NULL) != TEL_OK)
            return tel__fail(TEL_ERR_CORRUPT, TEL_DECL_FILE " line %d is not understood", lineno);
    }
    return TEL_OK;
}

/* ---------------------------------------------------------------- file */

int tel__decls_load(const char *state_dir, tel_decls *d)
{
    memset(d, 0, sizeof *d);
    char path[TEL_PATH_MAX + 32];
    if ((size_t)snprintf(path, sizeof path, "%s/" TEL_DECL_FILE, state_dir) >= sizeof path)
        return tel__fail(TEL_ERR_NOSTATE, "state path too long");
    /* No links: the file is ours, written by the library, never placed
     * there by a user; O_NONBLOCK keeps a fifo from hanging the reader. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? TEL_ERR_NOTFOUND
                                                    : tel__fail(TEL_ERR_CORRUPT, TEL_DECL_FILE " cannot be read");
    struct stat st;
    char buf[TEL_DECL_FILE_MAX + 1];
    ssize_t r = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= TEL_DECL_FILE_MAX)
        r = read(fd, buf, sizeof buf);
    close(fd);
    if (r < 0 || r > TEL_DECL_FILE_MAX)
        return tel__fail(TEL_ERR_CORRUPT, TEL_DECL_FILE " is not a small regular file");
    return tel__decls_parse(buf, (size_t)r, d);
}

int tel__decls_store(const char *state_dir, const tel_decls *d)
{
    tel_buf text = TEL_BUF_INIT;
    int rc = tel__decls_format(d, &text);
    char path[TEL_PATH_MAX + 32], tmp[TEL_PATH_MAX + 48];
    if (rc == TEL_OK && ((size_t)snprintf(path, sizeof path, "%s/" TEL_DECL_FILE, state_dir) >= sizeof path ||
                         (size_t)snprintf(tmp, sizeof tmp, "%s/." TEL_DECL_FILE ".XXXXXX", state_dir) >= sizeof tmp))
        rc = tel__fail(TEL_ERR_NOSTATE, "state path too long");
    int fd = rc == TEL_OK ? mkostemp(tmp, O_CLOEXEC) : -1;
    if (rc == TEL_OK && fd < 0)
        rc = tel__fail(TEL_ERR_IO, "cannot write " TEL_DECL_FILE " (%s)", strerror(errno));
    if (fd >= 0) {
        /* Readers see the old file or the new one, never half of one; the
         * text is tiny, so no fsync: losing it to a crash costs one rewrite
         * at the next run. */
        int ok = fchmod(fd, 0600) == 0 && write(fd, text.p, text.len) == (ssize_t)text.len;
        ok = close(fd) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) {
            unlink(tmp);
            rc = tel__fail(TEL_ERR_IO, "cannot write " TEL_DECL_FILE);
        }
    }
    tel__buf_free(&text);
    return rc;
}

/* ------------------------------------------------------------ applying */

/* The value of a declared variable, or NULL when unset.  An empty value
 * counts as set only where being set is the whole meaning. */
static const char *decl_value(const tel_decl *e)
{
    const char *v = getenv(e->name);
    if (v && v[0] == '\0' && e->meaning != TEL_ENV_OFF_IF_SET)
        return NULL;
    return v;
}

/* DEBUG=astro:telemetry,vite:* holds the word itself, or a pattern the
 * debug convention uses for it: "*" or a prefix followed by "*". */
static int list_has(const char *list, const char *word)
{
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            size_t wl = strlen(word);
            if ((n == wl && memcmp(p, word, n) == 0) ||
                (p[n - 1] == '*' && n - 1 <= wl && memcmp(p, word, n - 1) == 0))
                return 1;
        }
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

void tel__decls_apply(const tel_decls *d, tel_decl_effect *fx)
{
    memset(fx, 0, sizeof *fx);
    fx->on = -1;
    for (size_t i = 0; d && i < d->n; i++) {
        const tel_decl *e = &d->d[i];
        const char *v = decl_value(e);
        if (!v)
            continue;
        int b = tel__parse_bool(v);
        switch (e->meaning) {
        case TEL_ENV_OFF_IF_TRUE:
            /* As for <APP>_TELEMETRY_ENABLED, a value that is not a clear
             * "no" is read as the opt-out it most likely meant. */
            if (b != 0 && !fx->off)
                fx->off = e->name;
            break;
        case TEL_ENV_OFF_IF_SET:
            if (!fx->off)
                fx->off = e->name;
            break;
        case TEL_ENV_ON_OFF:
            if (b != 1 && !fx->off)
                fx->off = e->name;
            else if (b == 1 && fx->on < 0) {
                fx->on = 1;
                fx->on_name = e->name;
            }
            break;
        case TEL_ENV_DEBUG_IF_CONTAINS:
            if (!fx->debug && list_has(v, e->word))
                fx->debug = e->name;
            break;
        case TEL_ENV_LOG_FILE:
            if (!fx->log_file) {
                fx->log_file = v;
                fx->log_file_name = e->name;
            }
            break;
        case TEL_ENV_DETAILED_ERRORS:
            if (b != 0 && !fx->detailed_errors)
                fx->detailed_errors = e->name;
            break;
        }
    }
}
