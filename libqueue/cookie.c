/* SPDX-License-Identifier: MIT */
/*
 * libqueue/cookie.c - the anonymous id: one random UUIDv4 on one line in
 * <state>/telemetry-cookie.
 *
 * The file is the user's handle on their identity: deleting it makes a new
 * one at the next event; putting a directory (or anything but a regular
 * file) there means "no lasting id", and each execution then gets a fresh
 * random id that is never written anywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* Reads a UUID from an open regular file.  Returns 1 and fills out on
 * success, 0 when the content is not a UUID. */
static int read_uuid(int fd, uint8_t out[TEL_ID_LEN])
{
    char buf[80];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t len = (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                       buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    return len == 36 && tel__uuid_parse(buf, len, out) == 0;
}

/*
 * Writes a fresh id to a temporary file beside the cookie, fully, before
 * anyone can see it.  Returns the temporary path in tmp, or -1.
 */
static int write_temp(const char *state_dir, const uint8_t id[TEL_ID_LEN], char *tmp, size_t size)
{
    uint8_t r[8];
    if (tel__random(r, sizeof r) != 0)
        return -1;
    snprintf(tmp, size, "%s/.telemetry-cookie.%02x%02x%02x%02x%02x%02x%02x%02x", state_dir,
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char line[38];
    tel__uuid_format(id, line);
    line[36] = '\n';
    int ok = write(fd, line, 37) == 37;
    /* Explicit, so a umask of 0 or 077 makes no difference either way. */
    ok = ok && fchmod(fd, 0600) == 0;
    close(fd);
    if (!ok) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int fresh(uint8_t out[TEL_ID_LEN], int *lasting, int code)
{
    *lasting = 0;
    if (tel__uuid4(out) != 0)
        memset(out, 0, TEL_ID_LEN);
    return code;
}

int tel__cookie_load(const char *state_dir, uint8_t out[TEL_ID_LEN], int *lasting)
{
    char path[TEL_PATH_MAX], tmp[TEL_PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, state_dir) >= sizeof path)
        return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: state path too long"));

    for (int attempt = 0; attempt < 3; attempt++) {
        /* O_NONBLOCK so that a fifo planted there cannot hang the host. */
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return fresh(out, lasting, TEL_OK);
            }
            int good = read_uuid(fd, out);
            close(fd);
            if (good) {
                *lasting = 1;
                return TEL_OK;
            }
            /* Not a UUID: replace it atomically, then read back whatever
             * won, in case another process replaced it at the same time. */
            uint8_t id[TEL_ID_LEN];
            if (tel__uuid4(id) != 0 || write_temp(state_dir, id, tmp, sizeof tmp) != 0)
                return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: cannot replace a malformed cookie"));
            if (rename(tmp, path) != 0) {
                unlink(tmp);
                return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: cannot replace a malformed cookie"));
            }
            continue;
        }
        if (errno == ELOOP || errno == ENOTDIR || errno == ENXIO)
            return fresh(out, lasting, TEL_OK); /* a symlink or something odd: no lasting id */
        if (errno != ENOENT)
            return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: cannot read the cookie (%s)", strerror(errno)));

        /* Missing: publish a complete file with link(), which fails rather
         * than replaces if another process got there first. */
        uint8_t id[TEL_ID_LEN];
        if (tel__uuid4(id) != 0 || write_temp(state_dir, id, tmp, sizeof tmp) != 0)
            return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: cannot create the cookie"));
        int rc = link(tmp, path);
        int err = errno;
        unlink(tmp);
        if (rc == 0) {
            memcpy(out, id, TEL_ID_LEN);
            *lasting = 1;
            return TEL_OK;
        }
        if (err != EEXIST)
            return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: cannot create the cookie (%s)", strerror(err)));
    }
    return fresh(out, lasting, tel__fail(TEL_ERR_NOSTATE, "cookie: the cookie keeps changing"));
}

int tel__cookie_delete(const char *state_dir)
{
    char path[TEL_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, state_dir) >= sizeof path)
        return tel__fail(TEL_ERR_NOSTATE, "cookie: state path too long");
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? TEL_OK : tel__fail(TEL_ERR_NOSTATE, "cookie: %s", strerror(errno));
    /* A directory or link there is the user's own opt-out of a lasting
     * id; forgetting must not undo it. */
    if (!S_ISREG(st.st_mode))
        return TEL_OK;
    if (unlink(path) != 0 && errno != ENOENT)
        return tel__fail(TEL_ERR_NOSTATE, "cookie: cannot delete the cookie (%s)", strerror(errno));
    return TEL_OK;
}

void tel__cookie_peek(const char *state_dir, uint8_t out[TEL_ID_LEN], int *lasting)
{
    char path[TEL_PATH_MAX];
    *lasting = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, state_dir) < sizeof path) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd >= 0) {
            *lasting = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read_uuid(fd, out);
            close(fd);
        }
    }
    if (!*lasting)
        fresh(out, lasting, TEL_OK);
}
