/* SPDX-License-Identifier: MIT */
/*
 * cli/kv.h - how `tel emit` turns a command-line VALUE into a typed
 * property.  Kept apart from cli/tel.c so the fuzzer and the corpus replay
 * test exercise exactly the code the command runs.
 */
#ifndef TEL_CLI_KV_H
#define TEL_CLI_KV_H

#include "tel.h"

/*
 * Types `s` the way a shell user means it: 42 is an integer, 1.5 a
 * decimal, true/false a boolean, anything else a string.  Sets p->type and
 * p->v; a string value points into `s`, which must outlive p.  p->key is
 * left alone.
 */
void cli_kv_type(const char *s, tel_prop *p);

#endif
