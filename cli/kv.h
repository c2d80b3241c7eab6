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
 * Types KEY=VALUE's `s` without ever changing it: an integer or decimal
 * only when `tel show` prints that number back as exactly s ("-3", "2.5";
 * not "1.10", "00123", " 5", "1e3" or 99999999999999999999), true/false a
 * boolean, anything else the string s.  Sets p->type and p->v; a string
 * value points into `s`, which must outlive p.  p->key is left alone.
 */
void cli_kv_type(const char *s, tel_prop *p);

#endif
