/* SPDX-License-Identifier: MIT */
/*
 * collector/export.c - the JSON-lines export (--out): every event stored,
 * one JSON object per line, beside the database.
 *
 * The file only ever holds whole lines.  Lines are appended under a lock
 * (so two batches never interleave), and a write that fails part-way --
 * a full disk -- is undone by cutting the file back to its length before
 * the write, so the batch's retry starts on a fresh line.
 *
 * SIGHUP reopens the path (tel__export_reopen), for logrotate: the old
 * file is closed once the new one is open, and only then.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector.h"
#include "common.h"

static pthread_mutex_t export_lock = PTHREAD_MUTEX_INITIALIZER;
static int export_fd = -1;
static int export_stdout;
static const char *export_path;

static int open_path(const char *path)
{
    /* 0600: the export holds every event, as the database does. */
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

int tel__export_open(const char *path)
{
    if (strcmp(path, "-") == 0) {
        export_fd = STDOUT_FILENO;
        export_stdout = 1;
        return 0;
    }
    int fd = open_path(path);
    if (fd < 0)
        return -1;
    export_fd = fd;
    export_path = path;
    return 0;
}

int tel__export_reopen(void)
{
    if (!export_path)
        return 0;
    int fd = open_path(export_path);
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&export_lock);
    int old = export_fd;
    export_fd = fd;
    pthread_mutex_unlock(&export_lock);
    close(old);
    return 0;
}

int tel__export_on(void)
{
    return export_fd >= 0;
}

int tel__export_write(const void *lines, size_t n)
{
    if (export_fd < 0 || n == 0)
        return 0;
    pthread_mutex_lock(&export_lock);
    struct stat st;
    /* A pipe or terminal (stdout) has no length to go back to; a regular
     * file does, and only this process appends to it. */
    int seekable = fstat(export_fd, &st) == 0 && S_ISREG(st.st_mode);
    int rc = cli_write_all(export_fd, lines, n);
    if (rc != 0) {
        int err = errno;
        if (seekable && ftruncate(export_fd, st.st_size) != 0)
            err = errno;
        errno = err;
    }
    pthread_mutex_unlock(&export_lock);
    return rc;
}

void tel__export_close(void)
{
    if (export_fd >= 0 && !export_stdout)
        close(export_fd);
    export_fd = -1;
}
