/* SPDX-License-Identifier: MIT */
/*
 * util/error.c - error codes, their names, and the per-thread detail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

static _Thread_local char last_error[256];

const char *tel_strerror(int code)
{
    switch (code) {
    case TEL_OK: return "success";
    case TEL_DISABLED: return "telemetry is disabled";
    case TEL_ERR_INVALID: return "invalid argument";
    case TEL_ERR_LIMIT: return "event exceeds a limit";
    case TEL_ERR_NOSTATE: return "no usable state directory";
    case TEL_ERR_IO: return "I/O error";
    case TEL_ERR_NOMEM: return "out of memory";
    case TEL_ERR_CORRUPT: return "malformed data";
    case TEL_ERR_BUSY: return "busy: held by another process";
    case TEL_ERR_CONFIG: return "malformed telemetry.conf";
    case TEL_ERR_STATE: return "call not valid in this state";
    case TEL_ERR_NOTFOUND: return "not found";
    }
    return "unknown error";
}

const char *tel_last_error(void)
{
    return last_error;
}

const char *tel_version(void)
{
    return TEL_VERSION;
}

int tel_version_numbers(int *major, int *minor, int *patch)
{
    if (major)
        *major = TEL_VERSION_MAJOR;
    if (minor)
        *minor = TEL_VERSION_MINOR;
    if (patch)
        *patch = TEL_VERSION_PATCH;
    return TEL_VERSION_MAJOR * 10000 + TEL_VERSION_MINOR * 100 + TEL_VERSION_PATCH;
}

/* Hosts size arrays of properties with sizeof(tel_prop): a change of its
 * size is a change of the ABI (a new SONAME), never an accident. */
_Static_assert(sizeof(tel_prop) == (sizeof(void *) == 8 ? 24 : 16),
               "tel_prop changed size: that breaks every host built before");

int tel__fail(int code, const char *fmt, ...)
{
    /* Through a copy: a caller may pass the last detail itself as an
     * argument (to keep it under another code), and vsnprintf into its
     * own source is undefined (it printed an empty detail). */
    char detail[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    memcpy(last_error, detail, sizeof last_error);
    return code;
}

void tel__clear_error(void)
{
    last_error[0] = '\0';
}
