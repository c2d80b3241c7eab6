/* SPDX-License-Identifier: MIT */
/*
 * util/text.h - UTF-8 checks, UUID text and JSON string escaping, shared
 * by the event checks (which refuse invalid text), the renderers (which
 * repair it for display) and the programs.
 */
#ifndef TEL_UTIL_TEXT_H
#define TEL_UTIL_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Bytes of an event, execution, anonymous or batch id (a UUID). */
#define TEL_ID_LEN 16

/*
 * Length (1-4) of the well-formed UTF-8 sequence at p[0..n), n >= 1, or 0
 * when it is not one: a stray continuation byte, a truncated sequence, an
 * overlong form, a UTF-16 surrogate or a code point past U+10FFFF.
 */
size_t tel__utf8_seq(const uint8_t *p, size_t n);

/* Non-zero when all of s[0..n) is well-formed UTF-8. */
int tel__utf8_valid(const char *s, size_t n);

/* Formats 16 bytes as a lowercase 36-character UUID plus NUL. */
void tel__uuid_format(const uint8_t id[TEL_ID_LEN], char out[37]);
/* Parses a 36-character UUID (any case); returns 0 on success, -1 if not.
 * out is written only on success. */
int tel__uuid_parse(const char *s, size_t len, uint8_t out[TEL_ID_LEN]);

/*
 * Appends s[0..n) to out as one quoted JSON string: '"', '\\' and control
 * bytes escaped, well-formed UTF-8 kept, every byte of a malformed
 * sequence replaced by U+FFFD, so the result always parses.  Returns 0,
 * or -1 when memory ran out (out may then hold part of the string).
 */
int tel__json_str(tel_buf *out, const char *s, size_t n);

#endif
