/* SPDX-License-Identifier: MIT */
/*
 * libqueue/project.c - the project id: which repository a run works in,
 * counted without learning which.
 *
 * The git origin URL is resolved as git resolves it (url.<base>.insteadOf
 * rules from the system, user and repository configs, and the files their
 * include.path lines pull in), then normalised, so that the https, ssh,
 * scp-like and shorthand spellings of one repository agree, and hashed.
 * Salted with a constant of the host program, ids of two programs cannot
 * be joined; unsalted (when the host asks), they are the same for every
 * product that uses tel, on purpose.  The repository is found by reading
 * files; no git process is run, and no path or URL is ever kept, logged or
 * put in an error message.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"


#define GIT_FILE_MAX (1024 * 1024)

/* Reads a small regular file into a NUL-terminated malloc'd buffer. */
static char *slurp(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (size_t)st.st_size > max) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf != NULL && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (buf != NULL)
        buf[got] = '\0';
    return buf;
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

/* Joins a possibly relative `rel` onto directory `base`. */
static int resolve(char *out, size_t size, const char *base, const char *rel)
{
    int n = rel[0] == '/' ? snprintf(out, size, "%s", rel) : snprintf(out, size, "%s/%s", base, rel);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/*
 * Finds the git directory holding `config` for the working tree around
 * `dir`: a .git directory, or a .git file saying "gitdir: <path>"
 * (submodules, worktrees); a worktree's "commondir" leads to the shared
 * config.  Returns 0 and fills out, or -1.
 */
static int find_git_dir(const char *dir, char *out, size_t size)
{
    char cur[TEL_PATH_MAX];
    if (strlen(dir) >= sizeof cur)
        return -1;
    strcpy(cur, dir);
    for (;;) {
        char dotgit[TEL_PATH_MAX];
        struct stat st;
        if (resolve(dotgit, sizeof dotgit, strcmp(cur, "/") == 0 ? "" : cur, ".git") == 0 &&
            stat(dotgit, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                if (strlen(dotgit) >= size)
                    return -1;
                strcpy(out, dotgit);
            } else if (S_ISREG(st.st_mode)) {
                char *txt = slurp(dotgit, 4096);
                if (txt == NULL || strncmp(txt, "gitdir:", 7) != 0) {
                    free(txt);
                    return -1;
                }
                rstrip(txt);
                const char *g = txt + 7;
                while (*g == ' ' || *g == '\t')
                    g++;
                int rc = resolve(out, size, strcmp(cur, "/") == 0 ? "" : cur, g);
                free(txt);
                if (rc != 0)
                    return -1;
            } else {
                return -1;
            }
            char cd[TEL_PATH_MAX];
            if (resolve(cd, sizeof cd, out, "commondir") == 0) {
                char *common = slurp(cd, 4096);
                if (common != NULL) {
                    rstrip(common);
                    char joined[TEL_PATH_MAX];
                    int rc = resolve(joined, sizeof joined, out, common);
                    free(common);
                    if (rc == 0 && strlen(joined) < size)
                        strcpy(out, joined);
                }
            }
            return 0;
        }
        char *slash = strrchr(cur, '/');
        if (slash == NULL || strcmp(cur, "/") == 0)
            return -1;
        if (slash == cur)
            cur[1] = '\0';
        else
            *slash = '\0';
    }
}

/*
 * Normalises a remote URL to "host/path": no scheme, no user or password,
 * no port, lower-case host, no trailing ".git" or '/'.  "git@host:o/r" is
 * the scp-like form of "ssh://git@host/o/r".
 */
static void normalise(const char *url, char *out, size_t size)
{
    const char *p = url;
    const char *sep = strstr(p, "://");
    const char *host, *path;
    size_t hlen;
    if (sep != NULL) {
        p = sep + 3;
        size_t alen = strcspn(p, "/");
        const char *at = NULL;
        for (const char *q = p; q < p + alen; q++)
            if (*q == '@')
                at = q;
        host = at ? at + 1 : p;
        const char *aend = p + alen;
        const char *colon = memchr(host, ':', (size_t)(aend - host));
        if (*host == '[') {
            const char *close = memchr(host, ']', (size_t)(aend - host));
            colon = close ? memchr(close, ':', (size_t)(aend - close)) : NULL;
        }
        hlen = colon ? (size_t)(colon - host) : (size_t)(aend - host);
        path = aend;
    } else {
        const char *colon = strchr(p, ':');
        const char *slash = strchr(p, '/');
        if (colon != NULL && (slash == NULL || colon < slash)) {
            const char *at = memchr(p, '@', (size_t)(colon - p));
            host = at ? at + 1 : p;
            hlen = (size_t)(colon - host);
            path = colon + 1;
        } else {
            /* A local path: nothing to strip but its tail. */
            host = "";
            hlen = 0;
            path = p;
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < hlen && o + 1 < size; i++)
        out[o++] = (char)tolower((unsigned char)host[i]);
    while (*path == '/')
        path++;
    if (hlen > 0 && o + 1 < size)
        out[o++] = '/';
    for (; *path != '\0' && o + 1 < size; path++)
        out[o++] = *path;
    out[o] = '\0';
    for (;;) {
        size_t n = strlen(out);
        if (n > 0 && out[n - 1] == '/')
            out[n - 1] = '\0';
        else if (n >= 4 && strcmp(out + n - 4, ".git") == 0)
            out[n - 4] = '\0';
        else
            break;
    }
}

/* ------------------------------------------------------- git config */

/* git stops following include.path at 10 levels; so do we. */
#define INCLUDE_DEPTH 10
/* The depth alone does not bound the work: a file that includes itself
 * k times is read k^10 times.  No real setup includes this many files;
 * past it the rest are skipped, as a loop's are, and the system, user and
 * repository files themselves are still read. */
#define MAX_INCLUDES 64
#define MAX_RULES 64
#define URL_MAX 2048

typedef struct insteadof {
    char base[URL_MAX];
    char prefix[URL_MAX];
} insteadof;

/* What the config files say about the origin. */
typedef struct git_cfg {
    char url[URL_MAX];        /* remote.origin.url, the first one read */
    insteadof rules[MAX_RULES];
    size_t nrules;
    unsigned includes;        /* included files read so far (MAX_INCLUDES) */
} git_cfg;

/*
 * Reads a value in place: leading blanks dropped, "quoted parts" joined,
 * \" \\ \n \t \b unescaped, a # or ; outside quotes ends it, trailing
 * blanks outside quotes dropped.  Returns the value (inside s).
 */
static char *cfg_value(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *w = s, *r = s, *keep = s;   /* keep: end of the last quoted or non-blank byte */
    int quoted = 0;
    for (; *r; r++) {
        char c = *r;
        if (c == '"') {
            quoted = !quoted;
            keep = w;
            continue;
        }
        if (!quoted && (c == '#' || c == ';'))
            break;
        if (c == '\\' && r[1]) {
            r++;
            c = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r == 'b' ? '\b' : *r;
            *w++ = c;
            keep = w;
            continue;
        }
        *w++ = c;
        if (quoted || (c != ' ' && c != '\t'))
            keep = w;
    }
    *keep = '\0';
    return s;
}

static void cfg_file(git_cfg *c, const char *path, int depth);

/* An include.path value: "~/" is the home directory, a relative path is
 * relative to the directory of the file that includes it. */
static void cfg_include(git_cfg *c, const char *from, const char *val, int depth)
{
    char path[TEL_PATH_MAX];
    const char *home = getenv("HOME");
    int n;
    if (val[0] == '~' && val[1] == '/') {
        if (!home || home[0] != '/')
            return;
        n = snprintf(path, sizeof path, "%s/%s", home, val + 2);
    } else if (val[0] == '/') {
        n = snprintf(path, sizeof path, "%s", val);
    } else {
        const char *slash = strrchr(from, '/');
        n = snprintf(path, sizeof path, "%.*s/%s", slash ? (int)(slash - from) : 1, slash ? from : ".", val);
    }
    if (n > 0 && (size_t)n < sizeof path)
        cfg_file(c, path, depth + 1);
}

/* One "key = value" line of section sect (subsection sub, "" if none). */
static void cfg_entry(git_cfg *c, const char *file, const char *sect, const char *sub, char *line, int depth)
{
    char *k = line;
    while (isalnum((unsigned char)*line) || *line == '-')
        line++;
    size_t klen = (size_t)(line - k);
    while (*line == ' ' || *line == '\t')
        line++;
    if (klen == 0 || *line != '=')
        return;                     /* a bare key means "true": nothing we use */
    char *val = cfg_value(line + 1);
#define KEY_IS(name) (klen == sizeof(name) - 1 && strncasecmp(k, name, klen) == 0)
    if (strcasecmp(sect, "include") == 0 && sub[0] == '\0' && KEY_IS("path")) {
        cfg_include(c, file, val, depth);
    } else if (strcasecmp(sect, "remote") == 0 && strcmp(sub, "origin") == 0 && KEY_IS("url")) {
        if (c->url[0] == '\0' && strlen(val) < sizeof c->url)
            strcpy(c->url, val);
    } else if (strcasecmp(sect, "url") == 0 && sub[0] && KEY_IS("insteadof")) {
        if (c->nrules < MAX_RULES && val[0] && strlen(sub) < URL_MAX && strlen(val) < URL_MAX) {
            strcpy(c->rules[c->nrules].base, sub);
            strcpy(c->rules[c->nrules].prefix, val);
            c->nrules++;
        }
    }
#undef KEY_IS
}

/*
 * A section header: [name], [name "sub"] (sub case-sensitive, \" and \\
 * unescaped) or the old [name.sub].  Fills sect and sub; returns 0, or -1
 * for a line that is no header git would accept.
 */
static int cfg_section(char *line, char *sect, size_t ssize, char *sub, size_t bsize)
{
    char *p = line + 1;
    size_t n = 0;
    while ((isalnum((unsigned char)*p) || *p == '-' || *p == '.') && n + 1 < ssize)
        sect[n++] = *p++;
    sect[n] = '\0';
    sub[0] = '\0';
    char *dot = strchr(sect, '.');
    if (dot) {
        *dot = '\0';
        snprintf(sub, bsize, "%s", dot + 1);
    }
    if (*p == ' ' && p[1] == '"') {
        p += 2;
        n = 0;
        while (*p && *p != '"' && n + 1 < bsize) {
            if (*p == '\\' && p[1])
                p++;
            sub[n++] = *p++;
        }
        sub[n] = '\0';
        if (*p++ != '"')
            return -1;
    }
    return *p == ']' && n < bsize ? 0 : -1;
}

/* Reads one config file (a missing or unreadable one is simply skipped). */
static void cfg_file(git_cfg *c, const char *path, int depth)
{
    if (depth > INCLUDE_DEPTH || (depth > 0 && c->includes++ >= MAX_INCLUDES))
        return;
    char *txt = slurp(path, GIT_FILE_MAX);
    if (!txt)
        return;
    char sect[64] = "", sub[URL_MAX] = "";
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*line))
            line++;
        rstrip(line);
        if (*line == '#' || *line == ';' || *line == '\0')
            continue;
        if (*line == '[') {
            if (cfg_section(line, sect, sizeof sect, sub, sizeof sub) != 0)
                sect[0] = '\0';
            continue;
        }
        if (sect[0])
            cfg_entry(c, path, sect, sub, line, depth);
    }
    free(txt);
}

/* The user's own config files, as git finds them. */
static void cfg_global(git_cfg *c)
{
    char path[TEL_PATH_MAX];
    const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *nosys = getenv("GIT_CONFIG_NOSYSTEM");
    if (!nosys || !*nosys || tel__parse_bool(nosys) == 0)
        cfg_file(c, "/etc/gitconfig", 0);
    if (xdg && xdg[0] == '/' && (size_t)snprintf(path, sizeof path, "%s/git/config", xdg) < sizeof path)
        cfg_file(c, path, 0);
    else if (home && home[0] == '/' && (size_t)snprintf(path, sizeof path, "%s/.config/git/config", home) < sizeof path)
        cfg_file(c, path, 0);
    if (home && home[0] == '/' && (size_t)snprintf(path, sizeof path, "%s/.gitconfig", home) < sizeof path)
        cfg_file(c, path, 0);
}

/* Rewrites c->url by the longest matching insteadOf prefix, as git does. */
static void apply_insteadof(git_cfg *c)
{
    const insteadof *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < c->nrules; i++) {
        size_t n = strlen(c->rules[i].prefix);
        if (n > best_len && strncmp(c->url, c->rules[i].prefix, n) == 0) {
            best = &c->rules[i];
            best_len = n;
        }
    }
    if (!best)
        return;
    char out[URL_MAX];
    if ((size_t)snprintf(out, sizeof out, "%s%s", best->base, c->url + best_len) < sizeof out)
        strcpy(c->url, out);
}

int tel__project_id(const char *salt, const char *cwd, char out[65])
{
    char here[PATH_MAX];
    out[0] = '\0';
    /* Walking up needs an absolute path. */
    if (realpath(cwd ? cwd : ".", here) == NULL)
        return tel__fail(TEL_ERR_NOTFOUND, "the working directory is unknown");
    char gitdir[TEL_PATH_MAX], cfgpath[TEL_PATH_MAX];
    if (find_git_dir(here, gitdir, sizeof gitdir) != 0 || resolve(cfgpath, sizeof cfgpath, gitdir, "config") != 0)
        return tel__fail(TEL_ERR_NOTFOUND, "not inside a git repository");
    git_cfg *c = calloc(1, sizeof *c);
    if (!c)
        return tel__fail(TEL_ERR_NOMEM, "out of memory reading the git config");
    /* Rules from every file apply to the repository's URL; git reads the
     * system and user files first. */
    cfg_global(c);
    c->url[0] = '\0';
    cfg_file(c, cfgpath, 0);
    if (c->url[0] == '\0') {
        free(c);
        return tel__fail(TEL_ERR_NOTFOUND, "the git repository has no origin remote");
    }
    apply_insteadof(c);
    char norm[URL_MAX];
    normalise(c->url, norm, sizeof norm);
    free(c);
    if (norm[0] == '\0')
        return tel__fail(TEL_ERR_NOTFOUND, "the git origin URL is empty");

    tel_buf msg = TEL_BUF_INIT;
    int bad = salt ? tel__buf_printf(&msg, "%s\n%s", salt, norm) : tel__buf_puts(&msg, norm);
    if (bad) {
        tel__buf_free(&msg);
        return tel__fail(TEL_ERR_NOMEM, "out of memory hashing the project id");
    }
    uint8_t digest[32];
    tel__sha256(msg.p, msg.len, digest);
    tel__buf_free(&msg);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
    return TEL_OK;
}
