/* SPDX-License-Identifier: MIT */
/*
 * util/error.h - the one error rule of tel's code: a function that fails
 * records a one-line detail for tel_last_error() and returns its code.
 */
#ifndef TEL_UTIL_ERROR_H
#define TEL_UTIL_ERROR_H

#include "tel.h"

/*
 * Records the detail of a failure for tel_last_error() (per thread) and
 * returns `code`, so that callers can write
 * `return tel__fail(TEL_ERR_INVALID, "...")`.  The message must never
 * contain a path, a user name or a token.
 */
int tel__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties the detail, so that a later tel_last_error() is never stale. */
void tel__clear_error(void);

/*
 * On an internal function whose result must not be dropped: a write that
 * failed unnoticed is data lost or a state left behind.  Where a result
 * is deliberately ignored, the caller says why, in a branch of its own
 * (GCC does not accept a (void) cast here).
 */
#define TEL_MUST_CHECK __attribute__((warn_unused_result))

#endif
