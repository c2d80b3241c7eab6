/* SPDX-License-Identifier: MIT */
/*
 * format/jsonin.h - reads one JSON value into the flat property form of
 * tel.h, for `tel emit KEY:=JSON` and anything else that takes typed
 * values as text.
 *
 * JSON types map onto tel's: null, true/false, a number without fraction
 * or exponent that fits int64 -> integer, any other number -> float
 * (finite), string -> string, array -> TEL_T_ARRAY, object -> TEL_T_MAP.
 * The text is RFC 8259 JSON; nothing more is accepted (no comments, no
 * trailing commas, no NaN).
 */
#ifndef TEL_FORMAT_JSONIN_H
#define TEL_FORMAT_JSONIN_H

#include <stddef.h>

#include "tel.h"

/*
 * Parses the NUL-terminated `text` as one JSON value and appends it to
 * out[*n..cap) as items of the flat form: the value itself, keyed `key`
 * (NULL for an array element), then, for an array or object, its
 * children.  Strings are unescaped in place, so `text` is modified and
 * every string (and object key) of the result points into it: it must
 * outlive the items.  The parse stops at TEL_MAX_DEPTH + 1 levels of
 * nesting; the other limits (counts, lengths, keys) are left to
 * tel__event_check(), which names the property.
 *
 * Returns TEL_OK with *n advanced, TEL_ERR_INVALID ("byte 7: expected ','
 * or ']'") or TEL_ERR_LIMIT (nested too deep, or more than cap items),
 * with the reason in tel_last_error(); *n is then unchanged.  The message
 * gives positions, never the text.
 */
int tel__json_props(char *text, const char *key, tel_prop *out, size_t cap, size_t *n);

#endif
