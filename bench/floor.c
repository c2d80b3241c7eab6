/* SPDX-License-Identifier: MIT */
/*
 * bench/floor.c - the physical floor of one durable event per process:
 * start, append 150 bytes to a file, make them durable, exit.  No format,
 * no index, no lock.  Anything that stores an event durably from a fresh
 * process pays at least this.
 *
 *   floor FILE
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char rec[150];
    memset(rec, 'e', sizeof rec - 1);
    rec[sizeof rec - 1] = '\n';
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return 1;
    /* fdatasync, not fsync: the file's data and size, not its mtime, is
     * what an appended event needs, and it is the cheapest honest sync. */
    int ok = write(fd, rec, sizeof rec) == (ssize_t)sizeof rec && fdatasync(fd) == 0;
    return close(fd) == 0 && ok ? 0 : 1;
}
