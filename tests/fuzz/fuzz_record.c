/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_record.c - libFuzzer harness for the record decoder and
 * the JSON view of whatever it accepts.
 *
 * Beyond "no crash, no sanitizer report", it asserts what the format
 * promises: a record that decodes renders as one JSON object of valid
 * UTF-8, and its views stay inside the input.
 */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "text.h"

static int inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
    const uint8_t *b = p;
    return !p || (b >= data && n <= size && b - data <= (ptrdiff_t)(size - n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tel_record r;
    if (tel__record_decode(&r, data, size) != TEL_OK)
        return 0;
    /* A record of scalars is version 1 and within the old 4 KiB. */
    if (r.version != 1 && r.version != 2)
        __builtin_trap();
    if (r.version == 1 && size > TEL_MAX_FLAT_EVENT)
        __builtin_trap();

    if (!inside(r.id, TEL_ID_LEN, data, size) || !inside(r.exec, TEL_ID_LEN, data, size) ||
        !inside(r.anon, TEL_ID_LEN, data, size) || !inside(r.name.p, r.name.len, data, size) ||
        !inside(r.app.p, r.app.len, data, size) || r.nprops > TEL_MAX_PROPS)
        __builtin_trap();
    for (size_t i = 0; i < r.nprops; i++)
        if (!inside(r.keys[i].p, r.keys[i].len, data, size) ||
            (r.vals[i].type == TEL_T_STR && !inside(r.vals[i].v.s.p, r.vals[i].v.s.len, data, size)) ||
            ((r.vals[i].type == TEL_T_ARRAY || r.vals[i].type == TEL_T_MAP) &&
             !inside(r.vals[i].v.c.p, r.vals[i].v.c.len, data, size)))
            __builtin_trap();

    tel_buf js = TEL_BUF_INIT;
    if (tel__record_json(&r, &js) == TEL_OK) {
        if (js.len < 2 || js.p[0] != '{' || js.p[js.len - 1] != '}' ||
            !tel__utf8_valid((const char *)js.p, js.len))
            __builtin_trap();
    }
    tel__buf_free(&js);
    return 0;
}
