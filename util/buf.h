/* SPDX-License-Identifier: MIT */
/*
 * util/buf.h - a growable byte buffer, used by the encoders and by
 * everything that builds output of unknown length.
 */
#ifndef TEL_UTIL_BUF_H
#define TEL_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tel_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} tel_buf;

#define TEL_BUF_INIT { NULL, 0, 0 }

/* Makes room for `more` bytes; returns 0, or -1 when memory ran out (the
 * buffer is then unchanged). */
__attribute__((warn_unused_result)) int tel__buf_reserve(tel_buf *b, size_t more);
/* Appends n bytes; returns 0 or -1 (out of memory, buffer unchanged). */
__attribute__((warn_unused_result)) int tel__buf_append(tel_buf *b, const void *data, size_t n);
/* Appends a NUL-terminated string without its NUL. */
__attribute__((warn_unused_result)) int tel__buf_puts(tel_buf *b, const char *s);
/* Appends printf-style text; returns 0 or -1. */
int tel__buf_printf(tel_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Keeps the allocation, forgets the content. */
static inline void tel__buf_clear(tel_buf *b) { b->len = 0; }
/* Frees the allocation; the buffer may be reused after. */
void tel__buf_free(tel_buf *b);

#endif
