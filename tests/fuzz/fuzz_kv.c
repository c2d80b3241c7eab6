/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_kv.c - libFuzzer harness for `tel emit`'s KEY=VALUE
 * typing (cli/kv.c) and what the library does with the typed property.
 *
 * The input is split at its first '=' like a command-line word.  Whatever
 * the value's bytes, typing must give one of the four types and keep its
 * promise (an integer or a decimal prints back as exactly the input, a
 * string is the input itself), and a property the event check accepts must
 * encode to a record that decodes back to the same type and value.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../../cli/kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A command-line word has no NUL inside: the shell stops at one. */
    char *word = malloc(size + 1);
    if (!word)
        return 0;
    memcpy(word, data, size);
    word[size] = '\0';
    char *eq = strchr(word, '=');
    const char *key = "k";
    const char *value = word;
    if (eq && eq != word) {
        *eq = '\0';
        key = word;
        value = eq + 1;
    }

    tel_prop p = { key, TEL_T_NIL, { 0 } };
    cli_kv_type(value, &p);
    switch (p.type) {
    case TEL_T_INT: {
        /* A typed value is one that prints back unchanged. */
        char back[32];
        snprintf(back, sizeof back, "%lld", (long long)p.v.i);
        if (p.v.i != strtoll(value, NULL, 10) || strcmp(back, value) != 0)
            __builtin_trap();
        break;
    }
    case TEL_T_FLOAT: {
        char back[TEL_DOUBLE_TEXT];
        if (!isfinite(p.v.f))
            __builtin_trap();
        tel__double_text(p.v.f, back);
        if (strcmp(back, value) != 0)
            __builtin_trap();
        break;
    }
    case TEL_T_BOOL:
        if (strcmp(value, p.v.b ? "true" : "false") != 0)
            __builtin_trap();
        break;
    case TEL_T_STR:
        if (p.v.s != value)
            __builtin_trap();
        break;
    default:
        __builtin_trap();
    }

    if (tel__event_check("fuzz.kv", &p, 1) == TEL_OK) {
        static const uint8_t id[TEL_ID_LEN] = { 1 };
        tel_ctx ctx = { .app = "fuzz" };
        tel_event_in ev = { .ts_ms = 1, .name = "fuzz.kv", .props = &p, .nprops = 1, .ctx = &ctx };
        memcpy(ev.id, id, sizeof id);
        memcpy(ev.exec, id, sizeof id);
        uint8_t buf[TEL_MAX_EVENT];
        size_t len;
        tel_record r;
        if (tel__record_encode(&ev, buf, sizeof buf, &len) == TEL_OK) {
            if (tel__record_decode(&r, buf, len) != TEL_OK || r.nprops != 1 ||
                r.vals[0].type != p.type || r.keys[0].len != strlen(key) ||
                memcmp(r.keys[0].p, key, r.keys[0].len) != 0)
                __builtin_trap();
            if ((p.type == TEL_T_INT && r.vals[0].v.i != p.v.i) ||
                (p.type == TEL_T_FLOAT && memcmp(&r.vals[0].v.f, &p.v.f, sizeof p.v.f) != 0) ||
                (p.type == TEL_T_BOOL && !r.vals[0].v.b != !p.v.b) ||
                (p.type == TEL_T_STR && (r.vals[0].v.s.len != strlen(value) ||
                                         memcmp(r.vals[0].v.s.p, value, r.vals[0].v.s.len) != 0)))
                __builtin_trap();
        }
    }
    free(word);
    return 0;
}
