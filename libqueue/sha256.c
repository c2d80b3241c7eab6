/* SPDX-License-Identifier: MIT */
/*
 * libqueue/sha256.c - SHA-256 (FIPS 180-4) and the salted project id.
 *
 * libtel may depend on LMDB and msgpack-c only, so the hash is written
 * here.  It is used for one short string per process, so it favours
 * plainness over speed.
 *
 * The project id lets a CLI author count distinct projects without
 * learning which: the git origin URL is normalised (so the https, ssh and
 * scp-like spellings of one repository agree), salted with a constant of
 * the host program (so ids of two programs cannot be joined, and a
 * dictionary of public repository URLs has to be rebuilt per program),
 * and hashed.  The repository is found by reading files; no git process
 * is run.
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

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

/* Folds one 64-byte block into the state. */
static void compress(uint32_t h[8], const uint8_t block[64])
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void tel__sha256(const void *data, size_t len, uint8_t out[32])
{
    uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 64) {
        compress(h, p);
        p += 64;
        left -= 64;
    }
    /* The tail, the 0x80 marker and the 64-bit bit length fill one block,
     * or two when fewer than 9 bytes remain after the tail. */
    uint8_t tail[128] = { 0 };
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tlen = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    compress(h, tail);
    if (tlen == 128)
        compress(h, tail + 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ------------------------------------------------------------ project id */

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
 * Finds `url` of [remote "origin"] in git config text.  Section names are
 * case-insensitive, the subsection is not; keys are case-insensitive.
 * Returns a pointer into txt (NUL-terminated in place), or NULL.
 */
static char *origin_url(char *txt)
{
    int in_origin = 0;
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*line))
            line++;
        rstrip(line);
        if (*line == '#' || *line == ';' || *line == '\0')
            continue;
        if (*line == '[') {
            char sect[16], sub[64];
            in_origin = sscanf(line, "[%15[A-Za-z] \"%63[^\"]\"]", sect, sub) == 2 &&
                        strcasecmp(sect, "remote") == 0 && strcmp(sub, "origin") == 0;
            continue;
        }
        if (!in_origin || strncasecmp(line, "url", 3) != 0)
            continue;
        char *p = line + 3;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
            p[n - 1] = '\0';
            p++;
        }
        return *p ? p : NULL;
    }
    return NULL;
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

int tel__project_id(const char *salt, const char *cwd, char out[65])
{
    char here[PATH_MAX];
    out[0] = '\0';
    /* Walking up needs an absolute path. */
    if (realpath(cwd ? cwd : ".", here) == NULL)
        return tel__fail(TEL_ERR_NOTFOUND, "the working directory is unknown");
    cwd = here;
    char gitdir[TEL_PATH_MAX], cfgpath[TEL_PATH_MAX];
    if (find_git_dir(cwd, gitdir, sizeof gitdir) != 0 ||
        resolve(cfgpath, sizeof cfgpath, gitdir, "config") != 0)
        return tel__fail(TEL_ERR_NOTFOUND, "not inside a git repository");
    char *cfg = slurp(cfgpath, GIT_FILE_MAX);
    if (cfg == NULL)
        return tel__fail(TEL_ERR_NOTFOUND, "the git repository's config cannot be read");
    char *url = origin_url(cfg);
    if (url == NULL) {
        free(cfg);
        return tel__fail(TEL_ERR_NOTFOUND, "the git repository has no origin remote");
    }
    char norm[2048];
    normalise(url, norm, sizeof norm);
    free(cfg);
    if (norm[0] == '\0')
        return tel__fail(TEL_ERR_NOTFOUND, "the git origin URL is empty");

    tel_buf msg = TEL_BUF_INIT;
    if (tel__buf_printf(&msg, "%s\n%s", salt ? salt : "", norm) != 0) {
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
