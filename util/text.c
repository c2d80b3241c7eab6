/* SPDX-License-Identifier: MIT */
/*
 * util/text.c - UTF-8 checks, UUID text and the one JSON string escaper.
 *
 * JSON that tel prints is for people and for line-oriented tools, so it
 * must always parse: bytes that are not UTF-8 (a record written by another
 * implementation, a non-UTF-8 $HOME) become U+FFFD rather than passing
 * through.
 */
#include <stdint.h>
#include <string.h>

#include "text.h"

size_t tel__utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80, hi = 0xbf;   /* allowed range of the second byte */
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;              /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f;              /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;              /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f;              /* past U+10FFFF */
    } else {
        return 0;                   /* continuation byte, 0xc0/0xc1, 0xf5.. */
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

int tel__utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = tel__utf8_seq(p + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

void tel__uuid_format(const uint8_t id[TEL_ID_LEN], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *w = out;
    for (int i = 0; i < TEL_ID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *w++ = '-';
        *w++ = hex[id[i] >> 4];
        *w++ = hex[id[i] & 0x0f];
    }
    *w = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tel__uuid_parse(const char *s, size_t len, uint8_t out[TEL_ID_LEN])
{
    uint8_t id[TEL_ID_LEN];
    size_t j = 0;

    if (!s || len != 36)
        return -1;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
            continue;
        }
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        id[j++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    /* out is only written on success, so a caller's id survives a bad
     * cookie file. */
    memcpy(out, id, sizeof id);
    return 0;
}

int tel__json_str(tel_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s;

    /* Worst case: every byte becomes a six-byte \u00XX escape. */
    if (n > (SIZE_MAX - 2) / 6 || tel__buf_reserve(out, 6 * n + 2) != 0)
        return -1;
    uint8_t *w = out->p + out->len;
    *w++ = '"';
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = c;
            i++;
        } else if (c < 0x20) {
            memcpy(w, "\\u00", 4);
            w[4] = (uint8_t)hex[c >> 4];
            w[5] = (uint8_t)hex[c & 0x0f];
            w += 6;
            i++;
        } else if (c < 0x80) {
            *w++ = c;
            i++;
        } else {
            size_t k = tel__utf8_seq(p + i, n - i);
            if (k == 0) {
                memcpy(w, "\xef\xbf\xbd", 3);   /* U+FFFD, one per bad byte */
                w += 3;
                i++;
            } else {
                memcpy(w, p + i, k);
                w += k;
                i += k;
            }
        }
    }
    *w++ = '"';
    out->len = (size_t)(w - out->p);
    return 0;
}
