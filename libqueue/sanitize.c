/* SPDX-License-Identifier: MIT */
/*
 * libqueue/sanitize.c - takes the identifying parts out of an error
 * message before it may be recorded.
 *
 * Error text is written for a person at the terminal, so it is full of
 * things that must not leave the machine: file paths, the home directory,
 * the user's name, host names and addresses, URLs, e-mail addresses,
 * quoted input, option values, passwords and API keys.  The text is
 * scanned once, left to right; at the start of each word the matchers
 * below are tried in order and the first that recognises something writes
 * a placeholder instead.  What each one takes out is listed in
 * docs/man/tel_command_started.3, which must stay in step with this file.
 * It errs on the side of removing too much: a message that reads
 * "<path> not found" is still useful, a leaked path is not repairable.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

#define VALUE "<value>"

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

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes that end a path, URL or other token. */
static int is_stop(unsigned char c)
{
    return c <= 0x20 || c == 0x7f || strchr("\"'`<>|,;()[]{}=", c) != NULL;
}

/* Non-zero when s[i] ends a clause: a stop byte other than a blank, or
 * ':', ',', ';' or '.' before a blank or the end ("open /a b/c: denied",
 * "... b.pdf. Retrying"). */
static int clause_end(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (is_stop(c) && !is_blank(c))
        return 1;
    return strchr(":.", c) != NULL && (i + 1 == n || is_stop((unsigned char)s[i + 1]));
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

/* Length of the run of bytes above a blank at s. */
static size_t word_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (unsigned char)s[i] > 0x20)
        i++;
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

/*
 * Words that, after an option name or a word like "token", continue the
 * sentence rather than give a value ("option --name requires an
 * argument", "token expired").  Any other word there is taken for a
 * value; the list is printed in docs/man/tel_command_started.3.
 */
static int continues_sentence(const char *s, size_t len)
{
    static const char *const words[] = {
        "a", "an", "and", "are", "auth", "can", "cannot", "denied", "does", "expected",
        "expects", "expired", "failed", "for", "from", "has", "have", "in", "invalid", "is",
        "missing", "must", "needs", "not", "of", "on", "or", "rejected", "required", "requires",
        "takes", "the", "to", "token", "too", "unknown", "value", "was", "were", "with",
    };
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strlen(words[k]) == len && strncasecmp(s, words[k], len) == 0)
            return 1;
    return 0;
}

/* ----------------------------------------------------------- matchers */

/* Each matcher looks at s[0..n) at the start of a word; when it
 * recognises its kind it writes the replacement and returns how many
 * input bytes it consumed, else 0 and writes nothing. */

/*
 * Where the quoted text that opens at s ends (the index of its closing
 * quote), or 0.  It closes at the first closing quote not followed by a
 * letter or digit; one between two of them is an apostrophe and is
 * passed ("'don't'"), any other quote mark, or a line break, means this
 * was no quote.  So a scan never passes the next quote that could open
 * one, and a line of quote marks costs its length, not its square.  A
 * backslash escapes the next byte when `escapes`.
 */
static size_t quote_close(const char *s, size_t n, const char *open, const char *close, int escapes)
{
    size_t olen = strlen(open), clen = strlen(close);
    for (size_t i = olen; i < n && s[i] != '\n'; i++) {
        if (escapes && s[i] == '\\') {
            i++;
            continue;
        }
        if (i + olen <= n && memcmp(s + i, open, olen) == 0 && strcmp(open, close) != 0)
            return 0;
        if (i + clen > n || memcmp(s + i, close, clen) != 0)
            continue;
        if (i + clen == n || !is_alnum((unsigned char)s[i + clen]))
            return i > olen ? i : 0;
        if (!is_alnum((unsigned char)s[i - 1]))
            return 0;
    }
    return 0;
}

static const char *const quote_pairs[][2] = {
    { "'", "'" }, { "\"", "\"" }, { "`", "`" },
    { "\xe2\x80\x98", "\xe2\x80\x99" }, { "\xe2\x80\x9c", "\xe2\x80\x9d" },
};

/* The length of the quoted text at s, quotes included, or 0 when s does
 * not open a quote that closes; *kind is its row of quote_pairs. */
static size_t quoted_len(const char *s, size_t n, size_t *kind)
{
    for (size_t k = 0; k < sizeof quote_pairs / sizeof quote_pairs[0]; k++) {
        size_t olen = strlen(quote_pairs[k][0]);
        if (n < olen || memcmp(s, quote_pairs[k][0], olen) != 0)
            continue;
        /* 'C:\dir\' has a backslash before its closing quote. */
        size_t end = quote_close(s, n, quote_pairs[k][0], quote_pairs[k][1], 1);
        if (end == 0)
            end = quote_close(s, n, quote_pairs[k][0], quote_pairs[k][1], 0);
        *kind = k;
        return end ? end + strlen(quote_pairs[k][1]) : 0;
    }
    return 0;
}

/* '...', "...", `...`, and the typographic quotes (U+2018 U+2019,
 * U+201C U+201D) of GNU tools: whatever was quoted is input the program
 * echoed back. */
static size_t match_quoted(sink *o, const char *s, size_t n)
{
    size_t kind, len = quoted_len(s, n, &kind);
    if (len) {
        puts_(o, quote_pairs[kind][0]);
        puts_(o, VALUE);
        puts_(o, quote_pairs[kind][1]);
    }
    return len;
}

/* scheme://anything: the authority (user, password, host, bucket) is as
 * private as the path, so all of it goes. */
static size_t match_url(sink *o, const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_alpha((unsigned char)s[0]))
        return 0;
    while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i + 3 > n || memcmp(s + i, "://", 3) != 0)
        return 0;
    /* The URL runs to a stop byte; '=' is ordinary inside it. */
    size_t end = i + 3;
    while (end < n && (!is_stop((unsigned char)s[end]) || s[end] == '='))
        end++;
    while (end > i + 3 && strchr(".:,", s[end - 1]) != NULL)
        end--;
    puts_(o, "<url>");
    return end;
}

/* A word that is an option: "-x" or "--name" (not "--" alone, nor "-5"). */
static int is_option(const char *s, size_t n)
{
    return n >= 2 && s[0] == '-' && (is_alpha((unsigned char)s[1]) ||
                                     (s[1] == '-' && n >= 3 && is_alnum((unsigned char)s[2])));
}

/*
 * Whether s[0..id) ends in a word that announces a secret, as a word of
 * its own or the last part of a compound ("Bearer", "client_secret",
 * "x-api-key", "accessToken"; not "monkey").  *blank_ok says whether the
 * value may follow after a blank, or only after '=' or ':'.
 */
static int is_secret_name(const char *s, size_t id, int *blank_ok)
{
    static const struct { const char *word; int blank; } names[] = {
        { "bearer", 1 }, { "basic", 1 }, { "token", 1 }, { "password", 1 }, { "passwd", 1 },
        { "secret", 1 }, { "key", 1 }, { "apikey", 1 }, { "credentials", 0 },
        { "authorization", 0 },
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        size_t w = strlen(names[k].word);
        if (id < w || strncasecmp(s + id - w, names[k].word, w) != 0)
            continue;
        size_t b = id - w;
        unsigned char before = b ? (unsigned char)s[b - 1] : 0;
        if (b == 0 || before == '_' || before == '-' ||
            (before >= 'a' && before <= 'z' && s[b] >= 'A' && s[b] <= 'Z')) {
            *blank_ok = names[k].blank;
            return 1;
        }
    }
    return 0;
}

/*
 * The value after a name that ends at s[i]: "=value" (also ":value" when
 * `colon`), or " value" when `blank` and the next word is neither an
 * option nor a word that continues the sentence.  Returns where the value
 * starts, and sets *end to where it ends; 0 when there is none.  A quoted
 * value or a secret name there is left to the driver, which matches it
 * next: then *end is the start too.
 */
static size_t value_after(const char *s, size_t n, size_t i, int colon, int blank, size_t *end)
{
    size_t v = i, kind;
    int explicit = v < n && (s[v] == '=' || (colon && s[v] == ':'));
    if (explicit)
        v++;
    while (v < n && is_blank((unsigned char)s[v]))
        v++;
    if ((!explicit && (v == i || !blank)) || v == n)
        return 0;
    size_t w = word_len(s + v, n - v), id = 0;
    while (id < w && (is_alnum((unsigned char)s[v + id]) || s[v + id] == '_' || s[v + id] == '-'))
        id++;
    int dummy;
    if (quoted_len(s + v, n - v, &kind) || is_secret_name(s + v, id, &dummy)) {
        *end = v;
        return v;
    }
    int sentence = continues_sentence(s + v, id) && (id == w || strchr(".,;:!?)", s[v + id]));
    if (clause_end(s, n, v) || (!explicit && (is_option(s + v, w) || sentence)))
        return 0;
    /* The value is the whole word ("--tags=a,b" leaves no "b"), less
     * the punctuation of the sentence ("--name acme, retrying"). */
    size_t e = v + w;
    while (e > v + 1 && strchr(".,;:)]}", s[e - 1]) != NULL)
        e--;
    *end = e;
    return v;
}

/* Writes s[0..v) and, unless the driver is left the value, "<value>". */
static size_t put_value(sink *o, const char *s, size_t v, size_t end)
{
    put(o, s, v);
    if (end == v)
        return v;
    puts_(o, VALUE);
    return end;
}

/* "--name value", "--name=value", "-x value": option names may be
 * recorded, their values never. */
static size_t match_option(sink *o, const char *s, size_t n)
{
    if (!is_option(s, n))
        return 0;
    size_t i = 1;
    if (s[1] == '-') {
        i = 2;
        while (i < n && (is_alnum((unsigned char)s[i]) || strchr("_.-", s[i]) != NULL))
            i++;
    } else {
        /* A short option is one letter: "-rf" and "-e." are not. */
        i = 2;
        if (i < n && !is_blank((unsigned char)s[i]) && s[i] != '=')
            return 0;
    }
    size_t end, v = value_after(s, n, i, 0, 1, &end);
    if (v == 0) {
        put(o, s, i);
        return i;
    }
    return put_value(o, s, v, end);
}

/* "Bearer abc", "password: x", "client_secret=x", "token ghp_...". */
static size_t match_secret(sink *o, const char *s, size_t n)
{
    size_t id = 0;
    while (id < n && (is_alnum((unsigned char)s[id]) || s[id] == '_' || s[id] == '-'))
        id++;
    int blank_ok;
    if (id == 0 || !is_secret_name(s, id, &blank_ok))
        return 0;
    size_t end, v = value_after(s, n, id, 1, blank_ok, &end);
    return v ? put_value(o, s, v, end) : 0;
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

/*
 * A path ends at its first blank, unless a later word of the same clause
 * has a '/' or '\' inside it without starting a path of its own
 * ("/srv/Client Acme Corp/plan b.pdf"): then the path had blanks in it,
 * and it runs to the end of the clause (see clause_end), taking the
 * words after its last separator too.  Returns the length from s.
 */
static size_t path_extent(const char *s, size_t n, size_t len)
{
    size_t i = len;
    while (i < n && is_blank((unsigned char)s[i])) {
        while (i < n && is_blank((unsigned char)s[i]))
            i++;
        size_t w = 0;
        while (i + w < n && !is_blank((unsigned char)s[i + w]) && !clause_end(s, n, i + w))
            w++;
        if (w == 0 || s[i] == '/' || s[i] == '~' || s[i] == '.' || s[i] == '\\')
            return len;
        if (memchr(s + i, '/', w) || memchr(s + i, '\\', w)) {
            size_t end = i + w;
            while (end < n && !clause_end(s, n, end))
                end++;
            while (end > len && is_blank((unsigned char)s[end - 1]))
                end--;
            return end;
        }
        i += w;
        if (i < n && clause_end(s, n, i))
            return len;
    }
    return len;
}

/* A path from the root, the home directory or the working directory. */
static size_t match_abs_path(sink *o, const secrets *sc, const char *s, size_t n)
{
    int lead = s[0] == '/' || (n >= 2 && s[0] == '~' && (s[1] == '/' || is_alnum((unsigned char)s[1]))) ||
               (n >= 2 && s[0] == '.' && s[1] == '/') ||
               (n >= 3 && s[0] == '.' && s[1] == '.' && s[2] == '/');
    int win = n >= 3 && is_alpha((unsigned char)s[0]) && s[1] == ':' && (s[2] == '\\' || s[2] == '/');
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
    size_t full = path_extent(s, n, len);
    if (sc->home_len > 0 && len >= sc->home_len && memcmp(s, sc->home, sc->home_len) == 0 &&
        (len == sc->home_len || s[sc->home_len] == '/')) {
        puts_(o, "<home>");
        if (full > sc->home_len + 1)
            puts_(o, "/<path>");
        return full;
    }
    puts_(o, "<path>");
    return full;
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
    return path_extent(s, n, len);
}

/* ":port" after a host, when there is one; its length or 0. */
static size_t port_len(const char *s, size_t n)
{
    size_t i = 1;
    if (n < 2 || s[0] != ':')
        return 0;
    while (i < n && i <= 6 && is_digit((unsigned char)s[i]))
        i++;
    return i > 1 && i <= 6 && (i == n || !is_alnum((unsigned char)s[i])) ? i : 0;
}

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
    puts_(o, "<host>");
    return used + port_len(s + used, n - used);
}

/* Length of an IPv6 address at s, or 0. */
static size_t ipv6_len(const char *s, size_t n)
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
    return i;
}

/* fe80::1, and [::1]:8080 with its brackets and port. */
static size_t match_ipv6(sink *o, const char *s, size_t n)
{
    if (s[0] == '[') {
        size_t len = ipv6_len(s + 1, n - 1);
        if (len == 0 || len + 1 >= n || s[len + 1] != ']')
            return 0;
        puts_(o, "<host>");
        return len + 2 + port_len(s + len + 2, n - len - 2);
    }
    size_t len = ipv6_len(s, n);
    if (len)
        puts_(o, "<host>");
    return len;
}

/*
 * A dotted name whose last label starts with a letter and is not one
 * letter long ("db.acme.internal", "example.com:8443"; also a file name
 * such as "plan.pdf", which is as telling).  Versions ("v1.2.3"), numbers
 * ("3.5s"), "main.c" and "e.g." keep their shape.
 */
static size_t match_host(sink *o, const char *s, size_t n)
{
    size_t i = 0, labels = 0, last = 0;
    for (;;) {
        size_t start = i;
        while (i < n && (is_alnum((unsigned char)s[i]) || s[i] == '-'))
            i++;
        if (i == start)
            return 0;
        labels++;
        last = start;
        if (i + 1 < n && s[i] == '.' && is_alnum((unsigned char)s[i + 1]))
            i++;
        else
            break;
    }
    if (labels < 2 || !is_alpha((unsigned char)s[last]) || i - last < 2)
        return 0;
    i += port_len(s + i, n - i);
    /* "example.com/x" is a path, "a.b_c" or "a.b@c" something else. */
    if (i < n && !is_stop((unsigned char)s[i]) && strchr(".:!?", s[i]) == NULL)
        return 0;
    puts_(o, "<host>");
    return i;
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

/* The matchers in order at a word's start (prev: the byte before it). */
static size_t match_any(sink *o, const secrets *sc, const char *s, size_t left, unsigned char prev)
{
    size_t used = match_quoted(o, s, left);
    if (!used)
        used = match_url(o, s, left);
    if (!used)
        used = match_option(o, s, left);
    if (!used)
        used = match_secret(o, s, left);
    if (!used)
        used = match_email(o, s, left);
    if (!used)
        used = match_abs_path(o, sc, s, left);
    if (!used && prev != '.')
        used = match_ipv4(o, s, left);
    if (!used)
        used = match_ipv6(o, s, left);
    if (!used && prev != '.')
        used = match_host(o, s, left);
    for (int k = 0; k < 3 && !used; k++)
        used = match_word(o, s, left, sc->users[k], 0, "<user>");
    for (int k = 0; k < 2 && !used; k++)
        used = match_word(o, s, left, sc->hosts[k], 1, "<host>");
    if (!used)
        used = match_rel_path(o, s, left);
    if (!used)
        used = match_token(o, s, left);
    return used;
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
        size_t used = is_alnum(prev) ? 0 : match_any(&o, &sc, s, left, prev);
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
