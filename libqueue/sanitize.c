/* SPDX-License-Identifier: MIT */
/*
 * libqueue/sanitize.c - takes the identifying parts out of an error
 * message before it may be recorded (debug telemetry only).
 *
 * Error text is written for a person at the terminal, so it is full of
 * things that must not leave the machine: file paths, the home directory,
 * the user's and the machine's names, e-mail addresses, URLs with
 * passwords, IP addresses and API keys.  The text is scanned once, left to
 * right; at the start of each word the matchers below are tried in order
 * and the first that recognises something writes a placeholder instead.
 * It errs on the side of removing too much: a message that reads
 * "<path> not found" is still useful, a leaked path is not repairable.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

/* Names of this user and machine, looked up once per call. */
typedef struct secrets {
    char home[TEL_PATH_MAX];
    size_t home_len;
    char users[3][256];
    char hosts[2][256];
} secrets;

typedef struct sink {
    char *p;
    size_t size;
    size_t len;
    int full;
} sink;

/* Appends all of s or, when it does not fit, nothing and marks the sink
 * full, so that output is never cut inside a placeholder or a UTF-8
 * character. */
static void put(sink *o, const char *s, size_t n)
{
    if (o->full)
        return;
    if (o->len + n >= o->size) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(sink *o, const char *s)
{
    put(o, s, strlen(s));
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes that end a path, URL or other token. */
static int is_stop(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || strchr("\"'`<>|,;()[]{}=", c) != NULL;
}

/*
 * Length of the token starting at s: up to a stop byte, or a ':' that is
 * followed by a stop byte or the end ("open /a/b: denied").  A sentence's
 * final '.' is not part of it.
 */
static size_t token_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !is_stop((unsigned char)s[i])) {
        if (s[i] == ':' && (i + 1 == n || is_stop((unsigned char)s[i + 1])))
            break;
        i++;
    }
    while (i > 1 && s[i - 1] == '.' && (i == n || is_stop((unsigned char)s[i])))
        i--;
    return i;
}

/* Length of a valid UTF-8 character at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    /* The second byte's range rules out overlong forms, surrogates and
     * code points past U+10FFFF. */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    return len;
}

/* ----------------------------------------------------------- matchers */

/* Each matcher looks at s[0..n) at the start of a word; when it
 * recognises its kind it writes the replacement and returns how many
 * input bytes it consumed, else 0 and writes nothing. */

static int is_ipv4(const char *s, size_t n, size_t *used)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        unsigned v = 0;
        size_t d = 0;
        while (i < n && is_digit((unsigned char)s[i]) && d < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            d++;
        }
        if (d == 0 || d > 3 || v > 255)
            return 0;
    }
    /* "1.2.3.4.5" or "1.2.3.4a" is something else (a version, a name). */
    if (i < n && (is_alnum((unsigned char)s[i]) ||
                  (s[i] == '.' && i + 1 < n && is_digit((unsigned char)s[i + 1]))))
        return 0;
    *used = i;
    return 1;
}

static size_t match_ipv4(sink *o, const char *s, size_t n)
{
    size_t used;
    if (!is_ipv4(s, n, &used))
        return 0;
    puts_(o, "<ip>");
    return used;
}

static size_t match_ipv6(sink *o, const char *s, size_t n)
{
    size_t i = 0, colons = 0, hex = 0;
    int dbl = 0;
    while (i < n && (is_hex((unsigned char)s[i]) || s[i] == ':' || s[i] == '.')) {
        if (s[i] == ':') {
            colons++;
            if (i > 0 && s[i - 1] == ':')
                dbl = 1;
        } else if (s[i] != '.') {
            hex++;
        }
        i++;
    }
    /* "::" or many groups: times (12:30:45) and C++ scopes (a::b with
     * non-hex letters) do not get this far. */
    if (hex == 0 || colons < 2 || !(dbl || colons >= 5))
        return 0;
    if (i < n && is_alnum((unsigned char)s[i]))
        return 0;
    puts_(o, "<ip>");
    return i;
}

static int host_is_secret(const secrets *sc, const char *h, size_t len)
{
    for (int k = 0; k < 2; k++)
        if (sc->hosts[k][0] && strlen(sc->hosts[k]) == len && strncasecmp(sc->hosts[k], h, len) == 0)
            return 1;
    return 0;
}

/* scheme://[user[:pass]@]host[:port][/path?query#frag] */
static size_t match_url(sink *o, const secrets *sc, const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i + 3 > n || memcmp(s + i, "://", 3) != 0)
        return 0;
    size_t scheme = i;
    size_t start = i + 3;
    /* The URL runs to a stop byte; ':' and '=' are ordinary inside it. */
    size_t end = start;
    while (end < n && (!is_stop((unsigned char)s[end]) || s[end] == '='))
        end++;
    while (end > start && (s[end - 1] == '.' || s[end - 1] == ':'))
        end--;
    size_t aend = start;
    while (aend < end && s[aend] != '/' && s[aend] != '?' && s[aend] != '#')
        aend++;
    size_t host = start;
    for (size_t k = start; k < aend; k++)
        if (s[k] == '@')
            host = k + 1;

    put(o, s, scheme + 3);
    if (host > start)
        puts_(o, "<redacted>@");
    size_t hend = host;
    if (hend < aend && s[hend] == '[') {
        while (hend < aend && s[hend] != ']')
            hend++;
        if (hend < aend)
            hend++;
    } else {
        while (hend < aend && s[hend] != ':')
            hend++;
    }
    size_t used;
    if (host_is_secret(sc, s + host, hend - host))
        puts_(o, "<host>");
    else if (is_ipv4(s + host, hend - host, &used) && used == hend - host)
        puts_(o, "<ip>");
    else
        put(o, s + host, hend - host);
    put(o, s + hend, aend - hend); /* the port */
    if (aend < end)
        puts_(o, "/<path>");
    return end;
}

static size_t match_email(sink *o, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || strchr("._%+-", s[i]) != NULL) && s[i] != '\0')
        i++;
    if (i == 0 || i >= n || s[i] != '@')
        return 0;
    size_t j = i + 1, label_start = j;
    int letter_in_label = 0;
    while (j < n && (is_alnum((unsigned char)s[j]) || s[j] == '-' || s[j] == '.')) {
        if (s[j] == '.') {
            if (j + 1 >= n || !is_alnum((unsigned char)s[j + 1]))
                break;
            label_start = j + 1;
            letter_in_label = 0;
        } else if (!is_digit((unsigned char)s[j]) && s[j] != '-') {
            letter_in_label = 1;
        }
        j++;
    }
    /* "pkg@1.2.3" is a version, not an address: the last label must have
     * a letter. */
    if (j == i + 1 || !letter_in_label || label_start >= j)
        return 0;
    puts_(o, "<email>");
    return j;
}

/* A path from the root, the home directory or the working directory. */
static size_t match_abs_path(sink *o, const secrets *sc, const char *s, size_t n)
{
    int lead = s[0] == '/' || (n >= 2 && s[0] == '~' && (s[1] == '/' || is_alnum((unsigned char)s[1]))) ||
               (n >= 2 && s[0] == '.' && s[1] == '/') ||
               (n >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '/');
    int win = n >= 3 && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) &&
              s[1] == ':' && (s[2] == '\\' || s[2] == '/');
    int unc = n >= 3 && s[0] == '\\' && s[1] == '\\' && !is_stop((unsigned char)s[2]);
    if (!lead && !win && !unc)
        return 0;
    size_t len = token_len(s, n);
    /* A lone "/" ("read / write") is punctuation. */
    if (len < 2 && !win)
        return 0;
    if (s[0] == '~' && s[1] != '/') {
        /* "~name" only counts as a path when a '/' follows the name. */
        if (memchr(s, '/', len) == NULL)
            return 0;
    }
    if (sc->home_len > 0 && len >= sc->home_len && memcmp(s, sc->home, sc->home_len) == 0 &&
        (len == sc->home_len || s[sc->home_len] == '/')) {
        puts_(o, "<home>");
        if (len > sc->home_len + 1)
            puts_(o, "/<path>");
        return len;
    }
    puts_(o, "<path>");
    return len;
}

/*
 * A relative path ("src/main.c", "clients/acme/report") is told from
 * ordinary words with a slash ("I/O", "and/or", "TCP/IP", "1/2") by
 * shape: those are one slash between two short alphanumeric words.
 */
static size_t match_rel_path(sink *o, const char *s, size_t n)
{
    size_t len = token_len(s, n);
    const char *slash = memchr(s, '/', len);
    const char *bslash = memchr(s, '\\', len);
    if (slash == NULL && bslash == NULL)
        return 0;
    size_t slashes = 0, bslashes = 0;
    int plain = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '/')
            slashes++;
        else if (s[i] == '\\')
            bslashes++;
        else if (!is_alnum((unsigned char)s[i]))
            plain = 0;
    }
    /* One backslash is more often an escape ("a\\nb") than a folder, and
     * slashes alone ("/", "//") are punctuation. */
    if ((slashes == 0 && bslashes < 2) || slashes + bslashes == len)
        return 0;
    if (slashes == 1 && plain && slash != NULL) {
        size_t left = (size_t)(slash - s), right = len - left - 1;
        if (left >= 1 && left <= 5 && right >= 1 && right <= 5)
            return 0;
    }
    puts_(o, "<path>");
    return len;
}

/* A name that must not appear, matched as a whole word. */
static size_t match_word(sink *o, const char *s, size_t n, const char *word, int icase,
                         const char *placeholder)
{
    size_t w = strlen(word);
    if (w == 0 || w > n)
        return 0;
    if (icase ? strncasecmp(s, word, w) != 0 : memcmp(s, word, w) != 0)
        return 0;
    if (w < n && is_alnum((unsigned char)s[w]))
        return 0;
    puts_(o, placeholder);
    return w;
}

/* Long hex (hashes, ids) or base64-ish runs with a digit (API keys,
 * JWT parts); long ordinary words have no digit and survive. */
static size_t match_token(sink *o, const char *s, size_t n)
{
    size_t i = 0, digits = 0, hex = 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/' || s[i] == '_' ||
                     s[i] == '-')) {
        if (is_digit((unsigned char)s[i]))
            digits++;
        if (is_hex((unsigned char)s[i]))
            hex++;
        i++;
    }
    size_t run = i;
    while (i < n && s[i] == '=')
        i++;
    if ((run >= 16 && hex == run) || (run >= 20 && digits > 0)) {
        puts_(o, "<token>");
        return i;
    }
    return 0;
}

/*
 * "name=value" and "name: value" where the name ends in a word that
 * announces a secret ("--password=", "client_secret:").  The value is
 * replaced whatever its shape, since a short password has none.
 */
static size_t match_keyed_secret(sink *o, const char *s, size_t n)
{
    static const char *const names[] = { "password", "passwd", "secret", "token", "apikey",
                                         "api_key", "api-key", "access_key", "private_key",
                                         "credentials" };
    size_t i = 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-'))
        i++;
    size_t id = i;
    int secret = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !secret; k++) {
        size_t w = strlen(names[k]);
        secret = id >= w && strncasecmp(s + id - w, names[k], w) == 0;
    }
    if (!secret || i >= n || (s[i] != '=' && s[i] != ':'))
        return 0;
    i++;
    while (i < n && s[i] == ' ')
        i++;
    size_t v = i;
    while (i < n && (unsigned char)s[i] > 0x20 && s[i] != '"' && s[i] != '\'' && s[i] != ',' &&
           s[i] != ';')
        i++;
    if (i == v)
        return 0;
    put(o, s, v);
    puts_(o, "<redacted>");
    return i;
}

/* ------------------------------------------------------------- driver */

static void add_name(char *dst, size_t cap, const char *name)
{
    /* One-letter names would blank out ordinary words. */
    if (name == NULL || strlen(name) < 2 || strlen(name) >= cap)
        return;
    strcpy(dst, name);
}

static void gather(secrets *sc)
{
    memset(sc, 0, sizeof *sc);
    const char *home = getenv("HOME");
    if (home != NULL && strlen(home) < sizeof sc->home) {
        strcpy(sc->home, home);
        size_t n = strlen(sc->home);
        while (n > 1 && sc->home[n - 1] == '/')
            sc->home[--n] = '\0';
        sc->home_len = n >= 2 ? n : 0;
    }
    struct passwd pw, *res = NULL;
    char pwbuf[2048];
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res != NULL)
        add_name(sc->users[0], sizeof sc->users[0], res->pw_name);
    add_name(sc->users[1], sizeof sc->users[1], getenv("USER"));
    add_name(sc->users[2], sizeof sc->users[2], getenv("LOGNAME"));
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        add_name(sc->hosts[0], sizeof sc->hosts[0], host);
        char *dot = strchr(host, '.');
        if (dot != NULL) {
            *dot = '\0';
            add_name(sc->hosts[1], sizeof sc->hosts[1], host);
        }
    }
}

void tel__sanitize(const char *in, char *out, size_t size)
{
    if (out == NULL || size == 0)
        return;
    sink o = { out, size, 0, 0 };
    secrets sc;
    gather(&sc);
    size_t n = in ? strlen(in) : 0;
    size_t i = 0;
    while (i < n && !o.full) {
        const char *s = in + i;
        size_t left = n - i;
        unsigned char prev = i > 0 ? (unsigned char)in[i - 1] : ' ';
        size_t used = 0;
        if (!is_alnum(prev)) {
            used = match_url(&o, &sc, s, left);
            if (!used)
                used = match_keyed_secret(&o, s, left);
            if (!used)
                used = match_email(&o, s, left);
            if (!used)
                used = match_abs_path(&o, &sc, s, left);
            if (!used && prev != '.')
                used = match_ipv4(&o, s, left);
            if (!used)
                used = match_ipv6(&o, s, left);
            for (int k = 0; k < 3 && !used; k++)
                used = match_word(&o, s, left, sc.users[k], 0, "<user>");
            for (int k = 0; k < 2 && !used; k++)
                used = match_word(&o, s, left, sc.hosts[k], 1, "<host>");
            if (!used)
                used = match_rel_path(&o, s, left);
            if (!used)
                used = match_token(&o, s, left);
        }
        if (used) {
            i += used;
            continue;
        }
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\t' || c == '\r') {
            put(&o, " ", 1);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            put(&o, "?", 1);
            i++;
        } else {
            size_t len = utf8_len((const unsigned char *)s, left);
            if (len == 0) {
                put(&o, "?", 1);
                i++;
            } else {
                put(&o, s, len);
                i += len;
            }
        }
    }
    out[o.len] = '\0';
}
