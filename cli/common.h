/* SPDX-License-Identifier: MIT */
/*
 * cli/common.h - what tel, tel-sync and tel-collect share: the program
 * name for messages, one-line errors, and exit codes.
 */
#ifndef TEL_CLI_COMMON_H
#define TEL_CLI_COMMON_H

#include <stddef.h>

/* Exit codes shared by the tools (each tool's --help lists its own). */
#define EXIT_OK 0
#define EXIT_FAIL 1       /* the operation failed (I/O, could not queue) */
#define EXIT_USAGE 2      /* bad command line */

/* Set once from main() by cli_start; the prefix of every message. */
extern const char *cli_prog;

/* Names the program and makes its exit check stdout: whatever path main
 * takes (--help, a listing, a usage error), output that could not be
 * written (a full disk, /dev/full, a closed pipe) ends in a one-line
 * error and exit status EXIT_FAIL instead of a silent 0. */
void cli_start(const char *prog);

/* Flushes stdout now.  Returns 0, or -1 after printing the one-line error
 * (the exit check then prints nothing more). */
int cli_flush_stdout(void);

/* Prints "<prog>: <message>\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The noun that goes with n: one for 1, many otherwise ("1 event"). */
const char *cli_noun(unsigned long long n, const char *one, const char *many);

/* Prints "<prog>: <message>\nTry '<prog> --help'.\n" and returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "<prog> <version>" and returns EXIT_OK. */
int cli_version(void);

/* Writes all n bytes to fd, going on after short writes and EINTR.
 * Returns 0, or -1 with errno (some bytes may have been written). */
int cli_write_all(int fd, const void *p, size_t n);

/* Parses a whole non-negative decimal number; returns 0 or -1. */
int cli_parse_uint(const char *s, unsigned long long max, unsigned long long *out);

#endif
