/* SPDX-License-Identifier: MIT */
/*
 * libqueue/erasure.c - erasure requests waiting to be sent (erasure.h):
 * their text, and the directory of them beside the queue.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "erasure.h"

/* ---------------------------------------------------------------- text */

int tel__erasure_format(const tel_erasure_req *r, tel_buf *out)
{
    char id[37], bo[TEL_SYNCSTATE_MAX + 1];
    tel__uuid_format(r->anon, id);
    int err = tel__buf_printf(out, "# an erasure request; tel-sync sends it alone\nerase 1 %s\n", id);
    if (r->backoff.attempt) {
        size_t n = tel__backoff_encode(&r->backoff, bo, sizeof bo - 1);
        bo[n] = '\0';
        err = err || n == 0 || tel__buf_printf(out, "backoff %s\n", bo);
    }
    if (r->unsupported)
        err = err || tel__buf_printf(out, "unsupported %" PRIu32 "\n", r->unsupported);
    if (r->endpoint[0])
        err = err || tel__buf_printf(out, "endpoint %s\n", r->endpoint);
    if (r->token[0])
        err = err || tel__buf_printf(out, "token %s\n", r->token);
    return err ? tel__fail(TEL_ERR_NOMEM, "out of memory") : TEL_OK;
}

/* Copies the value [v, end) into out (cap bytes with the NUL); 0 or -1. */
static int take_value(const char *v, const char *end, char *out, size_t cap)
{
    size_t n = (size_t)(end - v);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* One line "key value" into r; 0, or -1 when it is not understood. */
static int parse_line(const char *p, const char *end, tel_erasure_req *r, int *have_id)
{
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp)
        return -1;
    size_t klen = (size_t)(sp - p);
    const char *v = sp + 1;
#define KEY(k) (klen == sizeof k - 1 && memcmp(p, k, klen) == 0)
    if (KEY("erase")) {
        *have_id = end - v == 38 && memcmp(v, "1 ", 2) == 0 && tel__uuid_parse(v + 2, 36, r->anon) == TEL_OK;
        return *have_id ? 0 : -1;
    }
    if (KEY("backoff"))
        return tel__backoff_decode(&r->backoff, v, (size_t)(end - v)) == TEL_OK ? 0 : -1;
    if (KEY("unsupported")) {
        char num[12];
        char *e;
        if (take_value(v, end, num, sizeof num) != 0 || num[0] < '0' || num[0] > '9')
            return -1;
        unsigned long n = strtoul(num, &e, 10);
        r->unsupported = (uint32_t)n;
        return *e == '\0' && n <= UINT32_MAX ? 0 : -1;
    }
    if (KEY("endpoint"))
        return take_value(v, end, r->endpoint, sizeof r->endpoint);
    if (KEY("token"))
        return take_value(v, end, r->token, sizeof r->token);
#undef KEY
    return -1;
}

int tel__erasure_parse(const char *text, size_t len, tel_erasure_req *r)
{
    memset(r, 0, sizeof *r);
    const char *end = text + len;
    int have_id = 0;
    while (text < end) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        const char *lend = nl ? nl : end;
        const char *p = text;
        text = nl ? nl + 1 : end;
        if (p == lend || *p == '#')
            continue;
        if (parse_line(p, lend, r, &have_id) != 0)
            return tel__fail(TEL_ERR_CORRUPT, "an erasure request has a line that is not understood");
    }
    return have_id ? TEL_OK : tel__fail(TEL_ERR_CORRUPT, "an erasure request names no id");
}

/* ---------------------------------------------------------------- files */

static int dir_path(const char *state_dir, char *out, size_t size)
{
    if ((size_t)snprintf(out, size, "%s/" TEL_ERASURE_DIR, state_dir) >= size)
        return tel__fail(TEL_ERR_NOSTATE, "state path too long");
    return TEL_OK;
}

/* The directory's entries reach the disk: a rename or unlink in it is
 * only durable once the directory itself is synced. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes text to a fresh temporary file in dir, synced, then renames it
 * to name: readers see the old file or the new one, never half. */
static int replace_file(const char *dir, const char *name, const tel_buf *text)
{
    char path[TEL_PATH_MAX + 64], tmp[TEL_PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= sizeof tmp)
        return tel__fail(TEL_ERR_NOSTATE, "state path too long");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return tel__fail(TEL_ERR_IO, "cannot write an erasure request (%s)", strerror(errno));
    int ok = fchmod(fd, 0600) == 0 && write(fd, text->p, text->len) == (ssize_t)text->len &&
             fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0 || sync_dir(dir) != 0) {
        int e = errno;
        unlink(tmp);
        return tel__fail(TEL_ERR_IO, "cannot write an erasure request (%s)", strerror(e));
    }
    return TEL_OK;
}

int tel__erasure_save(const char *state_dir, const tel_erasure_req *r)
{
    char dir[TEL_PATH_MAX + 32], name[37];
    int rc = dir_path(state_dir, dir, sizeof dir);
    if (rc == TEL_OK)
        rc = tel__mkdir_private(dir);
    if (rc != TEL_OK)
        return rc;
    tel_buf text = TEL_BUF_INIT;
    tel__uuid_format(r->anon, name);
    rc = tel__erasure_format(r, &text);
    if (rc == TEL_OK)
        rc = replace_file(dir, name, &text);
    if (text.p)
        explicit_bzero(text.p, text.cap);
    tel__buf_free(&text);
    return rc;
}

int tel__erasure_remove(const char *state_dir, const uint8_t anon[TEL_ID_LEN])
{
    char dir[TEL_PATH_MAX + 32], path[TEL_PATH_MAX + 80], name[37];
    int rc = dir_path(state_dir, dir, sizeof dir);
    if (rc != TEL_OK)
        return rc;
    tel__uuid_format(anon, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) != 0)
        return errno == ENOENT ? TEL_OK
                               : tel__fail(TEL_ERR_IO, "cannot remove an erasure request (%s)",
                                           strerror(errno));
    return sync_dir(dir) == 0 ? TEL_OK
                              : tel__fail(TEL_ERR_IO, "cannot remove an erasure request (%s)",
                                          strerror(errno));
}

/* Reads one request file (a small regular file, never through a link). */
static int load(const char *dir, const char *name, tel_erasure_req *r)
{
    char path[TEL_PATH_MAX + 80], buf[TEL_ERASURE_FILE_MAX + 1];
    int fd = -1;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path)
        fd = tel__open_file(path, O_RDONLY, 0);
    if (fd < 0)
        return TEL_ERR_NOTFOUND;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    int rc = n < 0 || n > TEL_ERASURE_FILE_MAX ? TEL_ERR_CORRUPT : tel__erasure_parse(buf, (size_t)n, r);
    explicit_bzero(buf, sizeof buf);
    return rc;
}

/* Request files are named by their id; temporary files start with '.'. */
static int is_request(const struct dirent *e)
{
    uint8_t id[TEL_ID_LEN];
    return strlen(e->d_name) == 36 && tel__uuid_parse(e->d_name, 36, id) == TEL_OK;
}

int tel__erasure_each(const char *state_dir, int (*fn)(void *ud, tel_erasure_req *r), void *ud,
                      size_t *unreadable)
{
    char dir[TEL_PATH_MAX + 32];
    if (unreadable)
        *unreadable = 0;
    int rc = dir_path(state_dir, dir, sizeof dir);
    if (rc != TEL_OK)
        return rc;
    struct dirent **names;
    int n = scandir(dir, &names, is_request, alphasort);
    if (n < 0)
        return errno == ENOENT || errno == ENOTDIR
                   ? TEL_OK
                   : tel__fail(TEL_ERR_NOSTATE, "cannot list the erasure requests: %s", strerror(errno));
    tel_erasure_req r;
    int stop = 0;
    for (int i = 0; i < n; i++) {
        int lrc = stop ? TEL_ERR_NOTFOUND : load(dir, names[i]->d_name, &r);
        if (lrc == TEL_OK)
            stop = fn(ud, &r) != 0;
        else if (lrc == TEL_ERR_CORRUPT && unreadable)
            (*unreadable)++;
        explicit_bzero(&r, sizeof r);
        free(names[i]);
    }
    free(names);
    return TEL_OK;
}
