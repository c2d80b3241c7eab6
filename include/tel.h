/* SPDX-License-Identifier: MIT */
/*
 * tel.h - anonymous, opt-out usage telemetry for command-line programs.
 *
 * A host program records events with one call.  Each event is appended,
 * as MessagePack, to a crash-safe LMDB queue in the user's state directory
 * ($XDG_STATE_HOME/<app>/telemetry/).  Nothing here touches the network:
 * delivery is the job of the separate `tel-sync` program, which the host
 * may start detached with tel_spawn_sync() as it finishes.
 *
 * Conventions
 *  - Every function that can fail returns an int: TEL_OK (0) or a positive
 *    non-error status on success, a negative tel_error on failure.
 *    tel_strerror() names any of them; tel_last_error() gives the detail of
 *    the last failure on the calling thread.
 *  - The library never aborts, exits, prints (unless logging was asked
 *    for), blocks on the network or waits for a child process.
 *  - Strings passed in are copied unless a function says otherwise; the
 *    caller keeps ownership of what it passed.
 *  - A tel handle is not thread-safe: use one per thread, or serialise.
 *    Several processes may use the same queue at once.
 */
#ifndef TEL_H
#define TEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(TEL_STATIC_BUILD)
#define TEL_API __attribute__((visibility("default")))
#else
#define TEL_API
#endif

#define TEL_VERSION_MAJOR 0
#define TEL_VERSION_MINOR 1
#define TEL_VERSION_PATCH 0
#define TEL_VERSION "0.1.0"

/*
 * Error and status codes.  The list only grows at the end; values are
 * never renumbered.
 */
typedef enum tel_error {
    TEL_OK = 0,              /* done */
    TEL_DISABLED = 1,        /* telemetry is off: nothing stored, not an error */
    TEL_ERR_INVALID = -1,    /* an argument is malformed (app, event or key name) */
    TEL_ERR_LIMIT = -2,      /* an event breaks a size or count limit */
    TEL_ERR_NOSTATE = -3,    /* no usable state directory (no HOME, read-only, not a directory) */
    TEL_ERR_IO = -4,         /* a file could not be read or written (the queue, the
                              * config, the inspect file), or tel-sync not started */
    TEL_ERR_NOMEM = -5,      /* out of memory */
    TEL_ERR_CORRUPT = -6,    /* stored or received bytes do not decode */
    TEL_ERR_BUSY = -7,       /* another process holds what was asked for (a sync lock) */
    TEL_ERR_CONFIG = -8,     /* the user's telemetry.conf is malformed */
    TEL_ERR_STATE = -9,      /* the call is not valid in the handle's current state */
    TEL_ERR_NOTFOUND = -10   /* nothing by that name (no queue yet, no such app) */
} tel_error;

/* Returns a static, one-line description of a tel_error code. */
TEL_API const char *tel_strerror(int code);

/*
 * Returns the detail of the last failure on this thread ("event name
 * 'a b' has a space at byte 1"), or "" when there was none.  The string
 * is owned by the library and valid until the next tel call on this thread.
 * It never holds a path, a user name or a token.
 */
TEL_API const char *tel_last_error(void);

/* The library's version string, e.g. "0.1.0". */
TEL_API const char *tel_version(void);

/*
 * The version of the library actually loaded, as numbers, for a host that
 * compares it with the TEL_VERSION_* it was compiled against.  Each
 * pointer may be NULL.  Returns major * 10000 + minor * 100 + patch.
 */
TEL_API int tel_version_numbers(int *major, int *minor, int *patch);

/* ---------------------------------------------------------------------
 * Event properties
 * ------------------------------------------------------------------ */

typedef enum tel_type {
    TEL_T_NIL = 0,
    TEL_T_BOOL = 1,
    TEL_T_INT = 2,
    TEL_T_FLOAT = 3,
    TEL_T_STR = 4,
    TEL_T_ARRAY = 5,   /* v.i elements follow in the array (keys NULL) */
    TEL_T_MAP = 6      /* v.i entries follow in the array (keys set) */
} tel_type;

/*
 * One typed property.  Keys are 1-64 bytes of printable ASCII without
 * spaces; string values are at most 1 KiB of UTF-8.  The strings are only
 * read during the call that receives them.
 *
 * Structured values (arrays and maps) are written flat, in the same array
 * of tel_prop as the properties: a TEL_ARRAY(key, n) or TEL_MAP(key, n)
 * item is followed at once by its n children, each of which may itself be
 * an array or a map (a tree in pre-order).  Array elements have a NULL
 * key; map entries have a key, by the rules of property keys.  So
 *
 *     { "config": { "adapter": "@astrojs/vercel",
 *                   "integrations": ["@astrojs/mdx", "@astrojs/rss"] } }
 *
 * is written
 *
 *     tel_prop p[] = {
 *         TEL_MAP("config", 2),
 *           TEL_STR("adapter", "@astrojs/vercel"),
 *           TEL_ARRAY("integrations", 2),
 *             TEL_STR(NULL, "@astrojs/mdx"),
 *             TEL_STR(NULL, "@astrojs/rss"),
 *     };
 *     tel_emit_event(h, "build", p, 5);
 *
 * and `nprops` counts every item of the array (5 here), while the event's
 * property limit counts only the top-level ones (1 here).  An array that
 * does not add up (a count running past nprops, a key where none belongs)
 * is refused whole with TEL_ERR_INVALID.
 */
typedef struct tel_prop {
    const char *key;
    tel_type type;
    union {
        int b;
        int64_t i;
        double f;
        const char *s;
    } v;
} tel_prop;

/*
 * TEL_NIL(key), TEL_BOOL(key, b), TEL_INT(key, i), TEL_FLOAT(key, f),
 * TEL_STR(key, s), TEL_ARRAY(key, n) and TEL_MAP(key, n) build one
 * tel_prop, as an element of an initialiser:
 *     tel_prop p[] = { TEL_STR("strategy", "rolling"), TEL_INT("services", 3) };
 * TEL_PROPS(p1, p2, ...) expands to "array, count" for the emit calls:
 *     tel_emit("mycli", "deploy", TEL_PROPS(TEL_INT("services", 3)));
 *
 * C gets designated initialisers and a compound literal.  C++ has neither
 * (designated initialisers only from C++20, and there only in member
 * order), so in C++ (11 and later) the same macros call the inline
 * functions below and build a temporary array, which lives until the end
 * of the full expression: as long as the call it is an argument of.
 */
#ifndef __cplusplus
#define TEL_NIL(k)      { (k), TEL_T_NIL,   { 0 } }
#define TEL_BOOL(k, x)  { (k), TEL_T_BOOL,  { .b = (x) } }
#define TEL_INT(k, x)   { (k), TEL_T_INT,   { .i = (x) } }
#define TEL_FLOAT(k, x) { (k), TEL_T_FLOAT, { .f = (x) } }
#define TEL_STR(k, x)   { (k), TEL_T_STR,   { .s = (x) } }
#define TEL_ARRAY(k, n) { (k), TEL_T_ARRAY, { .i = (n) } }
#define TEL_MAP(k, n)   { (k), TEL_T_MAP,   { .i = (n) } }
#define TEL_PROPS(...) \
    ((const tel_prop[]){ __VA_ARGS__ }), \
    (sizeof((const tel_prop[]){ __VA_ARGS__ }) / sizeof(tel_prop))
#else
} /* extern "C": templates cannot have C linkage */

inline tel_prop tel_prop_make_(const char *k, tel_type t)
{
    tel_prop p = tel_prop();
    p.key = k;
    p.type = t;
    return p;
}
inline tel_prop tel_prop_nil_(const char *k) { return tel_prop_make_(k, TEL_T_NIL); }
inline tel_prop tel_prop_bool_(const char *k, int x)
{
    tel_prop p = tel_prop_make_(k, TEL_T_BOOL);
    p.v.b = x;
    return p;
}
inline tel_prop tel_prop_int_(const char *k, int64_t x)
{
    tel_prop p = tel_prop_make_(k, TEL_T_INT);
    p.v.i = x;
    return p;
}
inline tel_prop tel_prop_float_(const char *k, double x)
{
    tel_prop p = tel_prop_make_(k, TEL_T_FLOAT);
    p.v.f = x;
    return p;
}
inline tel_prop tel_prop_str_(const char *k, const char *x)
{
    tel_prop p = tel_prop_make_(k, TEL_T_STR);
    p.v.s = x;
    return p;
}
inline tel_prop tel_prop_tree_(const char *k, tel_type t, int64_t n)
{
    tel_prop p = tel_prop_make_(k, t);
    p.v.i = n;
    return p;
}
/* Only named inside sizeof, never called: the count is taken unevaluated,
 * so each property expression runs once, as in C. */
template <typename... T> char (&tel_props_count_(const T &...))[sizeof...(T)];
template <size_t N> struct tel_props_ {
    tel_prop p[N];
};

#define TEL_NIL(k)      tel_prop_nil_((k))
#define TEL_BOOL(k, x)  tel_prop_bool_((k), (x))
#define TEL_INT(k, x)   tel_prop_int_((k), (x))
#define TEL_FLOAT(k, x) tel_prop_float_((k), (x))
#define TEL_ARRAY(k, n) tel_prop_tree_((k), TEL_T_ARRAY, (n))
#define TEL_MAP(k, n)   tel_prop_tree_((k), TEL_T_MAP, (n))
#define TEL_STR(k, x)   tel_prop_str_((k), (x))
#define TEL_PROPS(...) \
    (tel_props_<sizeof(tel_props_count_(__VA_ARGS__))>{ { __VA_ARGS__ } }.p), \
    sizeof(tel_props_count_(__VA_ARGS__))

extern "C" {
#endif

/* Limits checked on every event; an event over any of them is refused
 * whole with TEL_ERR_LIMIT or TEL_ERR_INVALID, never truncated. */
#define TEL_MAX_NAME 64
#define TEL_MAX_PROPS 32          /* top-level properties */
#define TEL_MAX_KEY 64
#define TEL_MAX_STRING 1024
/* Structured values: arrays and maps nest at most 4 deep (a property
 * whose value is an array counts 1); an array holds at most 256 elements,
 * a map at most 64 entries; one event holds at most 1024 items in all
 * (nprops, counting every nested value). */
#define TEL_MAX_DEPTH 4
#define TEL_MAX_ARRAY 256
#define TEL_MAX_MAP 64
#define TEL_MAX_ITEMS 1024
/*
 * Encoded size: an event of scalar properties is at most TEL_MAX_FLAT_EVENT
 * bytes, as it always was; one holding a structured value may take up to
 * TEL_MAX_EVENT.  The larger bound exists for per-option payloads: a
 * command with ~120 options described as {name, asCli, asEnv, count}
 * encodes to about 6 KiB.  16 KiB keeps at least 256 of the largest events
 * in the default 4 MiB queue and 32 in one 512 KiB upload batch.
 */
#define TEL_MAX_FLAT_EVENT 4096
#define TEL_MAX_EVENT 16384
/* Longest command name tel_command_started() takes. */
#define TEL_MAX_COMMAND 128

/* ---------------------------------------------------------------------
 * The one call
 * ------------------------------------------------------------------ */

/*
 * Records one event for `app` with no set-up: resolves the user's policy,
 * opens the queue, appends, closes.  Returns TEL_OK when the event is
 * durably queued, TEL_DISABLED when the user opted out (nothing stored),
 * or a negative tel_error.  A host recording several events in one run
 * should open a handle instead; it saves re-opening the queue.
 */
TEL_API int tel_emit(const char *app, const char *event,
                     const tel_prop *props, size_t nprops);

/* ---------------------------------------------------------------------
 * Options and handles
 * ------------------------------------------------------------------ */

typedef struct tel_options tel_options;
typedef struct tel tel;

/* Where a setting came from; the strongest source wins (see policy). */
typedef enum tel_source {
    TEL_SRC_BUILTIN = 0,   /* compiled-in default */
    TEL_SRC_HOST = 1,      /* what the host program passed through tel_options */
    TEL_SRC_CONFIG = 2,    /* the user's telemetry.conf */
    TEL_SRC_ENV = 3,       /* <APP>_TELEMETRY_* or DO_NOT_TRACK */
    TEL_SRC_FLAG = 4       /* an explicit command-line flag of the host or of tel */
} tel_source;

/* Callback for audit logging: one line (no newline), valid only during the
 * call.  Tokens never appear in it. */
typedef void (*tel_log_fn)(void *userdata, const char *line);

/*
 * Creates an options object for `app` (1-64 of [a-z0-9._-], not starting
 * with '.').  Returns NULL on a bad app name or no memory, with the reason
 * in tel_last_error().  Freed by tel_open() (which always takes ownership)
 * or by tel_options_free().
 */
TEL_API tel_options *tel_options_new(const char *app);
TEL_API void tel_options_free(tel_options *opts);

/* The host's own version string (at most 64 bytes, recorded in context). */
TEL_API int tel_options_set_app_version(tel_options *opts, const char *version);
/* The host's collector URL and bearer token, recorded for tel-sync at the
 * host's level of precedence (the user's config and environment override).
 * At most 1023 and 511 bytes; a control character (a CR/LF would become a
 * header of its own) is refused with TEL_ERR_INVALID, as it is from every
 * other source. */
TEL_API int tel_options_set_endpoint(tel_options *opts, const char *url);
TEL_API int tel_options_set_token(tel_options *opts, const char *token);
/*
 * Telemetry off for this run, decided by the host: enabled = 0 with
 * TEL_SRC_FLAG is the host's --no-telemetry flag, with TEL_SRC_HOST a
 * host-level setting (a project's own config file saying "enabled:
 * false").  Either beats every "on" and records nothing for this run, but
 * touches nothing else: events other runs queued stay queued and the
 * anonymous id is kept.  Only the user's lasting opt-outs (DO_NOT_TRACK,
 * <APP>_TELEMETRY_ENABLED=false, a declared opt-out variable,
 * telemetry.conf, `tel disable`) also purge what was queued.
 * enabled = 1 with TEL_SRC_FLAG is the user's own "on" for this run (it
 * overrides tel_options_set_default_enabled(opts, 0)); with TEL_SRC_HOST it
 * only says what the host defaults to.  Any opt-out from the user wins.
 */
TEL_API int tel_options_set_enabled(tel_options *opts, int enabled, tel_source src);
/*
 * What the host does when the user has said nothing: enabled = 0 makes
 * telemetry opt-in.  It is a default, not an opt-out: the user's own "on"
 * (<APP>_TELEMETRY_ENABLED=true, `enabled = true` in telemetry.conf,
 * `tel enable`, a declared TEL_ENV_ON_OFF variable set to 1, the host's
 * on flag) turns telemetry on, and while it is off by default nothing
 * queued is purged.  Recorded beside the queue, so tel status and tel-sync
 * apply it too.
 */
TEL_API int tel_options_set_default_enabled(tel_options *opts, int enabled);
/*
 * on = 1 offers erasure: from then on a forget (tel_forget(), `tel
 * forget`) also leaves behind a request, carrying only the forgotten
 * anonymous id, that tel-sync sends to the collector on its own so that
 * the events already sent under that id are deleted there too.  Recorded
 * beside the queue, so the user's `tel forget` honours it; on = 0 takes
 * the offer back.  Nothing of it runs on the emit path.  TEL_OK, or
 * TEL_ERR_INVALID / TEL_ERR_NOMEM.
 */
TEL_API int tel_options_set_erasure(tel_options *opts, int on);

/*
 * What a host-declared environment variable means (tel_options_declare_env).
 * Values are read from the environment of whichever tel program needs them
 * (the host, tel status, tel-sync), never recorded.
 */
typedef enum tel_env_meaning {
    /* NAME=1 (true, yes, anything but 0/false/no/off) is the user's opt-out:
     * ASTRO_TELEMETRY_DISABLED=1 */
    TEL_ENV_OFF_IF_TRUE = 1,
    /* NAME set to anything, even empty, is the user's opt-out: CQ_NO_TELEMETRY */
    TEL_ENV_OFF_IF_SET = 2,
    /* NAME=1 is the user's "on", NAME=0 (or any value not read as true) the
     * user's opt-out: WERF_TELEMETRY, ATMOS_TELEMETRY_ENABLED */
    TEL_ENV_ON_OFF = 3,
    /* NAME holds `word` in its comma or space separated list (or a pattern
     * "prefix*" covering it): debug for this run, events are logged and
     * never recorded: DEBUG=astro:telemetry */
    TEL_ENV_DEBUG_IF_CONTAINS = 4,
    /* NAME is the path of an audit log file: every recorded event, and
     * from tel-sync every sent one, is appended there as a JSON line:
     * WERF_TELEMETRY_LOG_FILE */
    TEL_ENV_LOG_FILE = 5,
    /* NAME set (and not 0/false/no/off) sends sanitised error messages
     * (TEL_ERRORS_SANITIZED): CQ_DEBUG_TELEMETRY */
    TEL_ENV_DETAILED_ERRORS = 6
} tel_env_meaning;

/* Limits of a declaration. */
#define TEL_MAX_DECLS 16
#define TEL_DECL_NAME_MAX 64
#define TEL_DECL_WORD_MAX 64

/*
 * Declares one of the host's own environment variables and its meaning,
 * once, at start-up.  `word` is the word TEL_ENV_DEBUG_IF_CONTAINS looks for
 * ("astro:telemetry") and NULL for the other meanings.  The declarations are
 * recorded beside the queue when tel_open() records anything, so `tel
 * status` and a tel-sync started by cron read the same names from their own
 * environment, and `tel status` names the variable that decided.  Returns
 * TEL_OK, TEL_ERR_INVALID (bad name, unknown meaning, a name declared twice)
 * or TEL_ERR_LIMIT (more than TEL_MAX_DECLS).
 */
TEL_API int tel_options_declare_env(tel_options *opts, const char *name,
                                    tel_env_meaning meaning, const char *word);

/*
 * Inspect for this run: every event of the run is appended to `path`
 * (created 0600 when missing), one JSON object per line, exactly as `tel
 * show` prints it and tel-collect stores it (without the collector's own
 * batch and receive fields); nothing is queued, synced or created in the
 * state directory, and an existing anonymous id is read, not made.
 * Nothing is written when telemetry is off.  NULL turns it off.  A file
 * that cannot be opened makes tel_open() fail with TEL_ERR_IO.
 */
TEL_API int tel_options_set_inspect(tel_options *opts, const char *path);
/* Debug for this run: every event is logged (through the log callback, or
 * stderr) and nothing is recorded. */
TEL_API int tel_options_set_debug(tel_options *opts, int on);

/* How much of an error tel_command_exited() records. */
typedef enum tel_error_detail {
    TEL_ERRORS_CLASS = 0,      /* the error's class only ("ConfigError"); the default */
    TEL_ERRORS_SANITIZED = 1   /* the class and the message, through tel_sanitize() */
} tel_error_detail;

/* The host's choice of error detail.  A declared TEL_ENV_DETAILED_ERRORS
 * variable set by the user raises it to TEL_ERRORS_SANITIZED. */
TEL_API int tel_options_set_error_detail(tel_options *opts, tel_error_detail level);
/* Audit logging of every recorded event through `fn` (NULL: stderr). */
TEL_API int tel_options_set_logging(tel_options *opts, int on, tel_log_fn fn, void *userdata);
/* Queue caps; 0 keeps the default (10,000 events, 4 MiB, 30 days).  A
 * byte cap must hold one whole event: at least TEL_MAX_EVENT, or
 * TEL_ERR_INVALID. */
TEL_API int tel_options_set_caps(tel_options *opts, uint64_t max_events,
                                 uint64_t max_bytes, uint64_t max_age_seconds);
/*
 * Opt into a project id: sha256(salt, normalised git origin URL of the
 * working directory) in hex, added to every event's context.  Off unless
 * called; the salt should be a constant of the host program.
 */
TEL_API int tel_options_set_project_salt(tel_options *opts, const char *salt);
/*
 * Opt into the linkable project id instead: sha256 of the normalised git
 * origin URL alone ("github.com/owner/repo"), so that every program using
 * tel computes the same id for one repository.  That is its point and its
 * cost: ids recorded by two products can be joined.  Off unless called;
 * when both are set, the linkable form is used.  The origin is resolved
 * as git resolves it: url.<base>.insteadOf rules and include.path files of
 * the repository's and the user's git config, so "gh:o/r" (with an
 * insteadOf rule) and "https://github.com/o/r.git" give one id.
 */
TEL_API int tel_options_set_project_linkable(tel_options *opts, int on);

/*
 * The execution id shared by every event of one run, when the run spans
 * several processes (a script calling `tel emit` several times, a
 * program handing its run to a helper): `id` is a UUID in text form,
 * copied; NULL goes back to a fresh random id per handle.  Returns
 * TEL_ERR_INVALID for anything else.  <APP>_TELEMETRY_EXEC_ID, when it
 * holds a UUID, takes precedence, as environment settings do over the
 * host's; a malformed value there is ignored.
 */
TEL_API int tel_options_set_exec_id(tel_options *opts, const char *id);

/*
 * The state directory, for a host without a usable HOME (a daemon in a
 * pod): an absolute path, used instead of $XDG_STATE_HOME/<app>; it is
 * created 0700 if missing.  <APP>_TELEMETRY_STATE_DIR, when set to an
 * absolute path, wins, and is also how tel-sync, tel status and tel show
 * find that queue; tel_spawn_sync() passes it on by itself.  NULL goes
 * back to the default.
 */
TEL_API int tel_options_set_state_dir(tel_options *opts, const char *dir);

/*
 * An installation id the host already has and keeps (a cluster's UID),
 * 1-256 bytes: the anonymous id becomes a hash of it and the app name
 * instead of the random cookie, so a restarted process keeps its
 * identity, two apps given the same id get different anonymous ids, and
 * the installation id itself is never stored or sent.  No cookie file is
 * read or written then, and tel_forget() cannot give a new identity: the
 * host's id decides it.
 */
TEL_API int tel_options_set_installation_id(tel_options *opts, const char *id);

/* Homebrew's rule: record nothing until tel_notice_shown() was called once. */
TEL_API int tel_options_set_require_notice(tel_options *opts, int on);

/*
 * Opens a handle: resolves policy, and (when enabled) prepares the state
 * directory, the cookie and the queue.  Always takes ownership of `opts`,
 * even on failure.  On success *out is a handle to release with
 * tel_close().  When telemetry is disabled the call still succeeds, returns
 * TEL_DISABLED and gives a handle whose emits are no-ops; when the user
 * opted out (not when the host turned this run off, nor by default) what
 * was queued before is purged.  On failure *out is NULL.
 */
TEL_API int tel_open(tel **out, tel_options *opts);

/* Releases the handle; a batch still open is committed first (if that
 * fails, its events are lost, said in the log when logging is on). */
TEL_API void tel_close(tel *h);

/*
 * Writes the handle's execution id as 36 characters of UUID text plus a
 * NUL into `out`, for a host that hands its run to a child process
 * (setenv("<APP>_TELEMETRY_EXEC_ID", out, 1) before starting it).
 * Returns TEL_OK, or TEL_DISABLED with out = "" when telemetry is off.
 */
TEL_API int tel_exec_id(const tel *h, char out[37]);

/*
 * Switches an open handle off or back on, for a long-running host that
 * learns of its user's choice while running (a config map flipped).  Off
 * is an opt-out like tel_set_enabled(app, 0): what was queued, and a
 * batch still open, are deleted, the spans still open are dropped
 * unrecorded, and nothing more is recorded.  On records again, as a new
 * run (spans' start offsets count from it), unless another opt-out of the
 * user's still holds (DO_NOT_TRACK, the environment, telemetry.conf).
 * Returns TEL_OK when the handle records, TEL_DISABLED when it does not,
 * or an error from opening the queue.
 */
TEL_API int tel_handle_set_enabled(tel *h, int enabled);

/* Non-zero when this handle records events. */
TEL_API int tel_enabled(const tel *h);

/*
 * Records one event.  Outside a batch the event is durable on return.
 * Inside tel_batch_begin()/tel_batch_commit() it is buffered in memory and
 * written with the batch.
 */
TEL_API int tel_emit_event(tel *h, const char *event,
                           const tel_prop *props, size_t nprops);

/*
 * Buffers every following tel_emit_event() until tel_batch_commit(), which
 * appends them all in one transaction (one sync).  Use it for bursts; no
 * lock is held on the queue between the two calls.
 */
TEL_API int tel_batch_begin(tel *h);
TEL_API int tel_batch_commit(tel *h);

/* ---------------------------------------------------------------------
 * Metrics
 *
 * A metric sample is an ordinary event named "metric" (format/SPEC.md,
 * "Metric events"): it is queued, capped, synced and shown like every
 * other event.  Properties: "name" (str), "value" (float), "kind" (str,
 * when known) and one "label.<labelname>" (str) per label.
 * ------------------------------------------------------------------ */

/*
 * Records one sample of metric `name` (1-64 of [a-zA-Z_:][a-zA-Z0-9_:]*).
 * `label_pairs` holds 2 * npairs strings: name, value, name, value...;
 * label names are 1-58 of [a-zA-Z_][a-zA-Z0-9_]* not starting with "__",
 * each at most once, values at most 1 KiB of UTF-8 with no control byte
 * but newline (a tab, DEL or any other byte below 0x20 is refused, naming
 * the label); at most 29 labels.
 * `value` must be finite: NaN and infinities are refused.  The strings are
 * only read during the call.  Returns what tel_emit_event() returns;
 * TEL_ERR_INVALID names the offending argument, never a label's value.
 */
TEL_API int tel_emit_metric(tel *h, const char *name, double value,
                            const char *const *label_pairs, size_t npairs);

/*
 * Parses `text` (len bytes, Prometheus text exposition format 0.0.4:
 * "# HELP"/"# TYPE" lines, comments, samples with labels and optional
 * timestamps) and records every sample, as tel_emit_metric() would, in one
 * batch: all or nothing.  A "# TYPE" line tags its family's samples with
 * "kind"; timestamps are checked, then dropped (an event carries its own
 * time).  On any malformed line -- including NaN and +-Inf values, which
 * tel refuses -- nothing is recorded and TEL_ERR_INVALID is returned with
 * "line N: <problem>" in tel_last_error(); a sample too large for one
 * event gives TEL_ERR_LIMIT, also with its line.  The text is only read
 * during the call and need not be NUL-terminated.  Inside an open
 * tel_batch_begin() the samples join that batch (and a failure leaves
 * what the batch held before untouched); otherwise the call opens and
 * commits its own.  Returns TEL_OK, TEL_DISABLED (the text was still
 * checked) or a negative tel_error.
 */
TEL_API int tel_emit_prometheus(tel *h, const char *text, size_t len);

/* ---------------------------------------------------------------------
 * Command lifecycle
 * ------------------------------------------------------------------ */

/* Where an option was given.  Only option names are recorded, never values. */
typedef struct tel_option_use {
    const char *name;   /* "force", "output": the option's name, not its value */
    int from_env;       /* 1 when set through an environment variable */
} tel_option_use;

/*
 * Records "command.started" for `command` (e.g. "deploy" or "db migrate")
 * with the names of the options used, and starts the duration clock.
 * A command name is one or more words of [A-Za-z0-9_.-] (each starting
 * with a letter, digit or '_') apart by single spaces, at most
 * TEL_MAX_COMMAND bytes; anything else (a path, a URL: an operand passed
 * before the host knew it was a command) is refused with TEL_ERR_INVALID
 * and nothing is recorded.  Pass only names from the host's own list of
 * commands: a word the user typed where a command goes (a project name, a
 * token) has the shape of a name and would be recorded as it is.  Record
 * a word not on the list as a fixed one ("unknown"), or not at all.
 */
TEL_API int tel_command_started(tel *h, const char *command,
                                const tel_option_use *options, size_t noptions);

/*
 * Records "command.exited" with the exit code and the duration in ms since
 * tel_command_started().  `error_class` (e.g. "ConfigError", 1-64 of
 * [A-Za-z0-9_.-]; anything else is left out) and `error_message` may be
 * NULL.  The class is recorded as "error_class".  The message is never
 * recorded unless the error detail is TEL_ERRORS_SANITIZED (the host's
 * tel_options_set_error_detail() or a declared TEL_ENV_DETAILED_ERRORS
 * variable) or the run is a debug run; it is then recorded as "error",
 * sanitised first by tel_sanitize().
 */
TEL_API int tel_command_exited(tel *h, int exit_code,
                               const char *error_class, const char *error_message);

/* ---------------------------------------------------------------------
 * Spans: timing the parts of an operation
 *
 * A span is recorded as one ordinary event named "span" when it ends
 * (format/SPEC.md, "Span events"), with the properties "name",
 * "duration_ms", "start_ms" (ms from the start of the run to the span's
 * start: tel_open(), or the tel_handle_set_enabled() that switched the
 * handle back on), "span_id" (16 hex digits, random), "parent" and
 * "parent_id" (the enclosing span's name and id; absent at the top level),
 * "command" (the command of tel_command_started(), if any) and "status".
 * With the execution id every event carries, a collector rebuilds each
 * run's tree.  A span that never ends records nothing.
 * ------------------------------------------------------------------ */

typedef struct tel_span tel_span;

/*
 * Starts timing `name` (an identifier like an event name: 1-64 of
 * [A-Za-z0-9_.:-]) inside `parent` (NULL: at the top level; a parent must
 * be an open span of the same handle).  Returns TEL_OK with the span in
 * *out; TEL_DISABLED with *out NULL when telemetry is off or the parent's
 * run ended (the handle was switched off since); or, with *out NULL:
 *   TEL_ERR_INVALID  a bad name, no handle, a parent of another handle or
 *                    one already ended;
 *   TEL_ERR_LIMIT    1024 spans of the handle are open already (begun and
 *                    never ended);
 *   TEL_ERR_NOMEM    no memory; TEL_ERR_IO no random numbers for the id.
 * The reason is in tel_last_error().  The span is the handle's: it stays
 * valid until tel_close(), and NULL is a valid argument to tel_span_end()
 * and as a parent, so a host need not test what it got.
 */
TEL_API int tel_span_start(tel_span **out, tel *h, const char *name, tel_span *parent);

/*
 * tel_span_start() for a host that does not want the reason: the span, or
 * NULL in every case where tel_span_start() gives none (tel_last_error()
 * is "" when telemetry is off, the reason otherwise).
 */
TEL_API tel_span *tel_span_begin(tel *h, const char *name, tel_span *parent);

/*
 * Ends the span and records its event.  `status` is the host's outcome
 * code (0: success).  Returns what tel_emit_event() returns; TEL_DISABLED
 * for a NULL span or one whose run ended (the handle was switched off
 * since: nothing recorded); TEL_ERR_STATE for a span already ended, which
 * is refused without touching anything.  Children may end after their
 * parent: each span keeps a copy of its parent's name and id.
 * @note An ended span's memory stays the handle's until tel_close() and is
 *       reused for a new span only once more than 64 others have ended
 *       after it: a span ended twice is refused as long as fewer did (a
 *       pointer kept longer may by then name a newer span).  Spans still
 *       open at tel_close() are freed there, unrecorded; after tel_close()
 *       no span of the handle may be passed to tel again (the bindings
 *       refuse it themselves).
 */
TEL_API int tel_span_end(tel_span *span, int status);

/* ---------------------------------------------------------------------
 * Delivery, notice and user controls
 * ------------------------------------------------------------------ */

/*
 * Starts a detached tel-sync for this app (own session, stdio on
 * /dev/null, no inherited descriptors) if telemetry is on, something is
 * queued, no backoff is pending and none was started in the last
 * `min_interval_s` seconds (0: 600).  While telemetry is off it starts
 * one only for erasure requests a forget left (turning telemetry off does
 * not cancel them), as often.  Does not wait for it.  Returns TEL_OK
 * when one was started, TEL_DISABLED when there was nothing to do.
 * @note The child is its own session and is never waited for.  A handle
 *       has at most one: while the one it started is still running, this
 *       returns TEL_DISABLED; once it has finished it is reaped here or in
 *       tel_close(), without blocking and without waiting for any other
 *       child of the host's.  A long-running host calling this
 *       periodically is thus left with at most one finished child between
 *       two calls.  One still running at tel_close() is left to the host
 *       (a process about to exit need not care).
 */
TEL_API int tel_spawn_sync(tel *h, unsigned min_interval_s);

/*
 * Non-zero when the first-run notice is due: telemetry on, not in CI, and
 * not yet marked shown for this app.  The host prints its notice on
 * stderr and calls tel_notice_shown().
 */
TEL_API int tel_notice_due(tel *h);
TEL_API int tel_notice_shown(tel *h);

/*
 * Persist the user's choice in $XDG_CONFIG_HOME/<app>/telemetry.conf
 * (enabled = true|false), keeping the file's other lines.  Disabling also
 * purges the queue.
 */
TEL_API int tel_set_enabled(const char *app, int enabled);

/*
 * Copies `in` into out (at most size bytes, always NUL-terminated) with
 * quoted text ('<value>'), URLs of any scheme ("<url>"), option values
 * ("--name <value>", "--name=<value>"), the values after Bearer, Basic,
 * token, password, secret, key and the like ("<value>"), e-mail addresses
 * ("<email>"), paths, also those with blanks, and the home directory
 * ("<path>", "<home>"), host names and IPv4/IPv6 addresses with their
 * port ("<host>"), the user's names ("<user>") and long hex or base64
 * runs ("<token>") replaced; the words of the message stay.  The rules
 * are spelled out in tel_command_started(3).  This is what
 * tel_command_exited() does to a message before recording it; hosts may
 * clean their own strings with it.  Errs on the side of removing too
 * much.  Returns TEL_OK, or TEL_ERR_INVALID when out is NULL or size 0.
 * A NULL `in` gives "".
 */
TEL_API int tel_sanitize(const char *in, char *out, size_t size);

/*
 * Deletes the cookie and purges the queue: the next event gets a new id.
 * When the host offered erasure (tel_options_set_erasure) and there was a
 * lasting id, an erasure request for that id is first stored, durably,
 * in the state directory; tel-sync sends it.  TEL_OK, or an error (then
 * nothing was deleted when the request could not be stored).
 */
TEL_API int tel_forget(const char *app);

/* A one-line text describing the host's recorded events, for a host's
 * `telemetry status` command: state, deciding source, queue depth. The
 * text is written into buf (always NUL-terminated). */
TEL_API int tel_status_line(const char *app, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* TEL_H */
