/*
 * format/text.h - UTF-8 checks shared by the event checks (which refuse
 * invalid text) and the JSON renderer (which repairs it for display).
 */
#ifndef TEL_FORMAT_TEXT_H
#define TEL_FORMAT_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Length (1-4) of the well-formed UTF-8 sequence at p[0..n), n >= 1, or 0
 * when it is not one: a stray continuation byte, a truncated sequence, an
 * overlong form, a UTF-16 surrogate or a code point past U+10FFFF.
 */
size_t tel__utf8_seq(const uint8_t *p, size_t n);

/* Non-zero when all of s[0..n) is well-formed UTF-8. */
int tel__utf8_valid(const char *s, size_t n);

#endif
