/* SPDX-License-Identifier: MIT */
/*
 * bindings/go/shim.c - the C side of the Go binding's log callback.
 *
 * A file of the package exports gotelLog, so cgo allows only declarations
 * in its preamble: the function libtel calls back lives here.
 */
#include <stdint.h>

#include "_cgo_export.h"

static void gotel_log_thunk(void *userdata, const char *line)
{
    gotelLog((uintptr_t)userdata, (char *)line);
}

int gotel_set_logging(tel_options *o, int on, uintptr_t handle)
{
    return tel_options_set_logging(o, on, handle ? gotel_log_thunk : NULL, (void *)handle);
}
