/* SPDX-License-Identifier: MIT */
/*
 * libqueue/policy.h - what policy.c offers beyond the shared declarations
 * in internal.h.
 */
#ifndef TEL_POLICY_H
#define TEL_POLICY_H

/*
 * Checks a collector URL before anything is sent to it: https://host[:port]
 * with an optional path, or http:// only to a loopback host (127.0.0.0/8,
 * localhost, [::1]).  Refuses other schemes, user:password@ parts, spaces,
 * control and non-ASCII characters.  Returns TEL_OK, or TEL_ERR_INVALID
 * with the reason in tel_last_error() (which may name the scheme or the
 * host, never anything after them).
 */
int tel__endpoint_check(const char *url);

/* 1 when a checked endpoint's host is loopback (127.0.0.0/8, localhost,
 * [::1]), else 0. */
int tel__endpoint_loopback(const char *url);

/* Largest telemetry.conf read; a bigger file is an error, not a truncation. */
#define TEL_CONFIG_MAX (64 * 1024)

#endif
