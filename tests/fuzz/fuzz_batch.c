/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_batch.c - libFuzzer harness for the batch decoder, the
 * collector's first contact with bytes from the network.
 *
 * Every record handed out must itself decode again on its own bytes and
 * carry the batch's anonymous id, and the number handed out must match the
 * head: the decoder promises all of it before calling back.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "text.h"

typedef struct seen {
    const tel_batch_head *head;
    uint32_t count;
    tel_buf js;
} seen;

static int on_record(void *ud, const tel_record *r)
{
    seen *s = ud;
    tel_record again;
    s->count++;
    if (tel__record_decode(&again, r->raw, r->raw_len) != TEL_OK)
        __builtin_trap();
    if ((r->anon == NULL) != (s->head->anon == NULL) ||
        (r->anon && memcmp(r->anon, s->head->anon, TEL_ID_LEN) != 0))
        __builtin_trap();
    tel__buf_clear(&s->js);
    if (tel__record_json(r, &s->js) == TEL_OK &&
        !tel__utf8_valid((const char *)s->js.p, s->js.len))
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tel_batch_head head;
    seen s = { &head, 0, TEL_BUF_INIT };
    int rc = tel__batch_decode(data, size, &head, on_record, &s);
    if (rc == TEL_OK && s.count != head.nevents)
        __builtin_trap();
    if (rc != TEL_OK && s.count != 0)
        __builtin_trap();
    if (rc != TEL_OK && rc != TEL_ERR_CORRUPT && rc != TEL_ERR_LIMIT)
        __builtin_trap();
    tel__buf_free(&s.js);
    return 0;
}
