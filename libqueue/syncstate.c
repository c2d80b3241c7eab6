/* SPDX-License-Identifier: MIT */
/*
 * libqueue/syncstate.c - text encoding of tel-sync's persistent state.
 *
 * The layouts are described in syncstate.h.  Parsing is strict (digits
 * only, single spaces, nothing trailing) because a value that does not
 * parse is simply treated as absent: a damaged "backoff" must never stall
 * uploads, and a damaged "pending" only costs a fresh batch id.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "syncstate.h"

/* A cursor over a copied, NUL-terminated value. */
typedef struct cursor {
    const char *p;
} cursor;

static int take_u64(cursor *c, uint64_t *out)
{
    const char *p = c->p;
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        p++;
    }
    c->p = p;
    *out = v;
    return 0;
}

static int take_space(cursor *c)
{
    if (*c->p != ' ')
        return -1;
    c->p++;
    return 0;
}

/* Copies the value so the parsers can rely on a terminating NUL, and
 * checks the layout version "1 ". */
static int open_value(char *tmp, size_t tmpcap, const void *buf, size_t len, cursor *c)
{
    if (!buf || len < 2 || len >= tmpcap)
        return -1;
    memcpy(tmp, buf, len);
    tmp[len] = '\0';
    if (strlen(tmp) != len || tmp[0] != '1' || tmp[1] != ' ')
        return -1;
    c->p = tmp + 2;
    return 0;
}

static size_t finish(int n, size_t cap)
{
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

size_t tel__backoff_encode(const tel_backoff *b, char *out, size_t cap)
{
    char reason[sizeof b->reason];
    size_t i;
    for (i = 0; i + 1 < sizeof reason && b->reason[i]; i++) {
        char ch = b->reason[i];
        reason[i] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
    }
    reason[i] = '\0';
    int n = snprintf(out, cap, "1 %" PRIu64 " %" PRIu32 " %d %s",
                     b->until_ms, b->attempt, b->status < 0 ? 0 : b->status, reason);
    return finish(n, cap);
}

int tel__backoff_decode(tel_backoff *out, const void *buf, size_t len)
{
    char tmp[TEL_SYNCSTATE_MAX + 1];
    cursor c;
    uint64_t until, attempt, status;
    if (open_value(tmp, sizeof tmp, buf, len, &c) != 0 ||
        take_u64(&c, &until) || take_space(&c) ||
        take_u64(&c, &attempt) || take_space(&c) ||
        take_u64(&c, &status) || take_space(&c) ||
        attempt > UINT32_MAX || status > 999)
        return TEL_ERR_CORRUPT;
    memset(out, 0, sizeof *out);
    out->until_ms = until;
    out->attempt = (uint32_t)attempt;
    out->status = (int)status;
    /* The reason runs to the end; a longer one than fits is cut, which is
     * harmless for a text meant for people. */
    snprintf(out->reason, sizeof out->reason, "%s", c.p);
    return TEL_OK;
}

size_t tel__pending_encode(const tel_pending *p, char *out, size_t cap)
{
    char id[37];
    tel__uuid_format(p->id, id);
    int n = snprintf(out, cap, "1 %s %" PRIu64 " %" PRIu64 " %" PRIu32 " %" PRIu64,
                     id, p->first_seq, p->last_seq, p->count, p->dropped);
    return finish(n, cap);
}

int tel__pending_decode(tel_pending *out, const void *buf, size_t len)
{
    char tmp[TEL_SYNCSTATE_MAX + 1];
    cursor c;
    uint64_t first, last, count, dropped;
    if (open_value(tmp, sizeof tmp, buf, len, &c) != 0 || strlen(c.p) < 37 ||
        tel__uuid_parse(c.p, 36, out->id) != 0)
        return TEL_ERR_CORRUPT;
    c.p += 36;
    if (take_space(&c) || take_u64(&c, &first) || take_space(&c) ||
        take_u64(&c, &last) || take_space(&c) ||
        take_u64(&c, &count) || take_space(&c) ||
        take_u64(&c, &dropped) || *c.p != '\0' ||
        count == 0 || count > UINT32_MAX || last < first || last - first + 1 < count)
        return TEL_ERR_CORRUPT;
    out->first_seq = first;
    out->last_seq = last;
    out->count = (uint32_t)count;
    out->dropped = dropped;
    return TEL_OK;
}

size_t tel__last_sync_encode(const tel_last_sync *s, char *out, size_t cap)
{
    int n = snprintf(out, cap, "1 %" PRIu64 " %" PRIu32, s->at_ms, s->events);
    return finish(n, cap);
}

int tel__last_sync_decode(tel_last_sync *out, const void *buf, size_t len)
{
    char tmp[TEL_SYNCSTATE_MAX + 1];
    cursor c;
    uint64_t at, events;
    if (open_value(tmp, sizeof tmp, buf, len, &c) != 0 ||
        take_u64(&c, &at) || take_space(&c) || take_u64(&c, &events) ||
        *c.p != '\0' || events > UINT32_MAX)
        return TEL_ERR_CORRUPT;
    out->at_ms = at;
    out->events = (uint32_t)events;
    return TEL_OK;
}

int tel__syncstate_is_file(const char *name)
{
    return strncmp(name, TEL_SENT_LOG, sizeof TEL_SENT_LOG - 1) == 0 ||
           strcmp(name, TEL_PENDING_FILE) == 0;
}

enum { KIND_BACKOFF, KIND_PENDING, KIND_LAST_SYNC };

/* Reads and decodes one of our meta keys; a value that is absent, too
 * long to be ours or does not decode reads as TEL_ERR_NOTFOUND. */
static int load(tel_queue *q, const char *key, int kind, void *out)
{
    char buf[TEL_SYNCSTATE_MAX];
    size_t len = 0;
    int rc = tel__queue_meta_get(q, key, buf, sizeof buf, &len);
    if (rc != TEL_OK)
        return rc;
    if (len > sizeof buf)
        return TEL_ERR_NOTFOUND;
    switch (kind) {
    case KIND_BACKOFF: rc = tel__backoff_decode(out, buf, len); break;
    case KIND_PENDING: rc = tel__pending_decode(out, buf, len); break;
    default: rc = tel__last_sync_decode(out, buf, len); break;
    }
    return rc == TEL_OK ? TEL_OK : TEL_ERR_NOTFOUND;
}

int tel__backoff_load(tel_queue *q, tel_backoff *out)
{
    return load(q, TEL_META_BACKOFF, KIND_BACKOFF, out);
}

uint64_t tel__pending_sum(const void *record, size_t len)
{
    const uint8_t *p = record;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ? h : 1;
}

static void pending_path(tel_queue *q, char *out, size_t size)
{
    snprintf(out, size, "%s/" TEL_PENDING_FILE, tel__queue_dir(q));
}

/* "<16 hex digits> " and the meta table's line: the file's layout. */
static int pending_file_decode(tel_pending *out, const char *buf, size_t len)
{
    uint64_t sum = 0;
    if (len < 17 || buf[16] != ' ')
        return TEL_ERR_CORRUPT;
    for (size_t i = 0; i < 16; i++) {
        char ch = buf[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return TEL_ERR_CORRUPT;
        sum = sum << 4 | (uint64_t)d;
    }
    if (sum == 0 || tel__pending_decode(out, buf + 17, len - 17) != TEL_OK)
        return TEL_ERR_CORRUPT;
    out->first_sum = sum;
    return TEL_OK;
}

int tel__pending_load(tel_queue *q, tel_pending *out)
{
    char path[TEL_PATH_MAX + 32], buf[TEL_SYNCSTATE_MAX + 20];
    pending_path(q, path, sizeof path);
    int fd = tel__open_file(path, O_RDONLY, 0);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        return n > 0 && (size_t)n < sizeof buf && pending_file_decode(out, buf, (size_t)n) == TEL_OK
                   ? TEL_OK : TEL_ERR_NOTFOUND;
    }
    int rc = load(q, TEL_META_PENDING, KIND_PENDING, out);
    if (rc == TEL_OK)
        out->first_sum = 0;
    return rc;
}

int tel__pending_store(tel_queue *q, const tel_pending *p)
{
    char path[TEL_PATH_MAX + 32], line[TEL_SYNCSTATE_MAX + 20];
    int n = snprintf(line, sizeof line, "%016" PRIx64 " ", p->first_sum);
    size_t len = tel__pending_encode(p, line + n, sizeof line - (size_t)n);
    if (p->first_sum == 0 || len == 0)
        return tel__fail(TEL_ERR_IO, "pending batch does not encode");
    len += (size_t)n;
    pending_path(q, path, sizeof path);
    int fd = tel__open_file(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return tel__fail(TEL_ERR_IO, "cannot record the batch to send: %s", strerror(errno));
    ssize_t w = write(fd, line, len);
    int err = w < 0 ? errno : EIO;
    if (close(fd) != 0 && w == (ssize_t)len) {
        err = errno;
        w = -1;
    }
    if (w != (ssize_t)len)
        return tel__fail(TEL_ERR_IO, "cannot record the batch to send: %s", strerror(err));
    return TEL_OK;
}

void tel__pending_clear(tel_queue *q)
{
    char path[TEL_PATH_MAX + 32];
    pending_path(q, path, sizeof path);
    unlink(path);
}

int tel__last_sync_load(tel_queue *q, tel_last_sync *out)
{
    return load(q, TEL_META_LAST_SYNC, KIND_LAST_SYNC, out);
}
