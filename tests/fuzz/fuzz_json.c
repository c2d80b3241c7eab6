/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_json.c - libFuzzer harness for the JSON reader behind
 * `tel emit KEY:=JSON` (format/jsonin.c) and what the library does with
 * the properties it yields.
 *
 * Whatever the bytes, the reader must return in bounded time without
 * writing outside the text, and a value that it and the event check
 * accept must encode to a record that decodes and renders as JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "jsonin.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A command-line word has no NUL inside. */
    char *text = malloc(size + 1);
    static tel_prop props[TEL_MAX_ITEMS];
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t n = 0;
    if (tel__json_props(text, "k", props, TEL_MAX_ITEMS, &n) == TEL_OK) {
        if (n == 0 || n > TEL_MAX_ITEMS)
            __builtin_trap();
        static const tel_ctx ctx = { .app = "fuzz" };
        tel_event_in ev;
        memset(&ev, 0, sizeof ev);
        ev.name = "e";
        ev.props = props;
        ev.nprops = n;
        ev.ctx = &ctx;
        uint8_t *buf = malloc(TEL_MAX_EVENT);
        size_t len;
        if (buf && tel__record_encode(&ev, buf, TEL_MAX_EVENT, &len) == TEL_OK) {
            tel_record r;
            tel_buf js = TEL_BUF_INIT;
            if (tel__record_decode(&r, buf, len) != TEL_OK || r.nprops != 1 ||
                tel__record_json(&r, &js) != TEL_OK || !tel__utf8_valid((const char *)js.p, js.len))
                __builtin_trap();
            tel__buf_free(&js);
        }
        free(buf);
    }
    free(text);
    return 0;
}
