/* SPDX-License-Identifier: MIT */
/*
 * bench/noop.c - a program that does nothing: the start-up and exit cost
 * every other per-process number includes.  Built several times over by
 * bench/run.sh: plain, linked with libtel (shared and static) and linked
 * with libcurl, to show what linking a library costs a host that does not
 * even call it.  The reference through a volatile pointer keeps the linker
 * from dropping the library, without running any of its code.
 */
#ifdef NOOP_TEL
#include "tel.h"
static int (*volatile keep)(const char *, const char *, const tel_prop *, size_t) = tel_emit;
#elif defined(NOOP_CURL)
#include <curl/curl.h>
static CURL *(*volatile keep)(void) = curl_easy_init;
#else
static volatile int keep;
#endif

int main(void)
{
    (void)keep;
    return 0;
}
