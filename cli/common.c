/* SPDX-License-Identifier: MIT */
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tel.h"

const char *cli_prog = "tel";

static int stdout_reported;

int cli_flush_stdout(void)
{
    if (stdout_reported)
        return -1;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    /* errno is fflush's when it failed; a write error seen earlier by
     * printf leaves only the error flag. */
    int e = errno;
    cli_error("cannot write the output: %s", strerror(e ? e : EIO));
    stdout_reported = 1;
    return -1;
}

/* At exit, after main returned its status: a failed write turns it into
 * EXIT_FAIL.  fclose catches what only shows at close (NFS, say). */
static void check_stdout(void)
{
    errno = 0;
    int bad = cli_flush_stdout() != 0;
    if (!bad && fclose(stdout) != 0) {
        cli_error("cannot write the output: %s", strerror(errno));
        bad = 1;
    }
    if (bad)
        _exit(EXIT_FAIL);
}

void cli_start(const char *prog)
{
    cli_prog = prog;
    atexit(check_stdout);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cli_noun(unsigned long long n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cli_prog);
    return EXIT_USAGE;
}

int cli_version(void)
{
    printf("%s %s\n", cli_prog, tel_version());
    return EXIT_OK;
}

int cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}
