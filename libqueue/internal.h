/* SPDX-License-Identifier: MIT */
/*
 * libqueue/internal.h - what the modules of libtel say to each other.
 *
 * Nothing here is installed or exported.  Functions are named tel__module_verb
 * (two underscores) so that they never look like public API.  The shared
 * library exports only TEL_API symbols (see tel.map).
 *
 * libqueue/ stands on format/ and util/ (whose headers this one pulls in)
 * and on the public include/tel.h; it never includes sync/ or cli/, which
 * stand on it.
 *
 * One error rule everywhere: a function that fails returns a TEL_ERR_*
 * code and has set the detail with tel__fail (util/error.h), so a caller
 * may print tel_last_error() and it is never stale.  TEL_ERR_NOTFOUND
 * from a lookup is an answer, not a failure, and sets nothing.  Results
 * marked TEL_MUST_CHECK are writes whose failure loses data or leaves
 * state behind; a caller that ignores one says why.
 */
#ifndef TEL_INTERNAL_H
#define TEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tel.h"
#include "buf.h"
#include "error.h"
#include "record.h"
#include "text.h"

#define TEL_PATH_MAX 4096

/* The queue (queue.c), an opaque handle. */
typedef struct tel_queue tel_queue;

/* ----------------------------------------------------------------- random.c */

/* Fills buf with n bytes from getrandom(); returns 0 or -1. */
int tel__random(void *buf, size_t n);
/* A random UUIDv4 (version and variant bits set). */
int tel__uuid4(uint8_t out[TEL_ID_LEN]);
/*
 * A pool of random bytes for many ids, refilled a page at a time: one
 * getrandom() call per 255 ids.  A forked child never hands out what its
 * parent may (see random.c).  Not thread-safe: one per handle.
 * tel__idpool_new returns NULL when no pool can be made fork-safe here;
 * tel__idpool_uuid4 then draws each id by itself, so NULL is a valid
 * pool.  tel__idpool_uuid4 returns 0 or -1 (no random numbers);
 * tel__idpool_free accepts NULL.
 */
typedef struct tel_idpool tel_idpool;
tel_idpool *tel__idpool_new(void);
void tel__idpool_free(tel_idpool *pool);
int tel__idpool_uuid4(tel_idpool *pool, uint8_t out[TEL_ID_LEN]);
/* Wall clock in ms since the epoch; monotonic clock in ms. */
uint64_t tel__now_ms(void);
uint64_t tel__mono_ms(void);

/* ------------------------------------------------------------------ paths.c */

/* 1-64 of [a-z0-9._-], not starting with '.'.  Returns TEL_OK or
 * TEL_ERR_INVALID with a reason. */
int tel__app_check(const char *app);

/*
 * The state directory <XDG_STATE_HOME or HOME/.local/state>/<app>, and the
 * config file <XDG_CONFIG_HOME or HOME/.config>/<app>/telemetry.conf.  A
 * relative XDG_* value is ignored.  Returns TEL_OK or TEL_ERR_NOSTATE (no
 * HOME, path too long).
 */
int tel__state_dir(const char *app, char *out, size_t size);
/* <APP>_TELEMETRY_STATE_DIR when it is an absolute path (a daemon's state
 * directory, handed to every tel program by the environment): TEL_OK and
 * out filled; TEL_ERR_NOTFOUND when unset or empty; TEL_ERR_INVALID when
 * set but unusable (relative, too long), which callers ignore as they
 * ignore a relative XDG_STATE_HOME.  tel__state_dir() tries it first. */
int tel__state_dir_env(const char *app, char *out, size_t size);
/* <APP>_TELEMETRY_EXEC_ID, the run a parent process hands on: TEL_OK and
 * out filled when it holds a UUID; TEL_ERR_NOTFOUND when unset or empty;
 * TEL_ERR_INVALID when it holds anything else (ignored: telemetry never
 * fails its host; the tel command says so). */
int tel__exec_id_env(const char *app, uint8_t out[TEL_ID_LEN]);
int tel__config_path(const char *app, char *out, size_t size);
/* The parent holding every app's state dir (for tel-sync --all). */
int tel__state_root(char *out, size_t size);

/*
 * Calls fn(ud, app) for every app under the state root that has a queue
 * directory or erasure requests (a real directory, not a link), in name
 * order.  Returns TEL_OK
 * (also when there is no state root yet) or TEL_ERR_NOSTATE when the root
 * cannot be found or listed.  What fn returns is ignored.
 */
int tel__each_app(void (*fn)(void *ud, const char *app), void *ud);

/*
 * Creates `path` and any missing parents with mode 0700 (whatever the
 * umask), refusing to follow a symlink in the last component, and checks
 * the result is a directory.  Returns TEL_OK or TEL_ERR_NOSTATE.
 */
TEL_MUST_CHECK int tel__mkdir_private(const char *path);

/*
 * Opens a file of a state, queue or config directory so that nothing
 * planted at its name can hang or fool the host: never blocking (a FIFO
 * without a peer, a device), never through a symlink, and only a regular
 * file (fstat-checked).  Whatever else sits at the name is left for the
 * user to look at, never followed, read or replaced.  Returns the fd, or
 * -1 with errno set (EINVAL: not a regular file).
 */
int tel__open_file(const char *path, int flags, mode_t mode);
/*
 * Whether the file at `path` is no longer the one known as (dev, ino):
 * removed, or another file put in its place.  Asks for the inode number
 * only: reading a file's change time would make its next write take a
 * fine-grained timestamp and dirty the inode at every commit (see
 * tel__queue_stale).  Returns 1 replaced or gone, 0 the same file.
 */
int tel__file_replaced(const char *path, dev_t dev, ino_t ino);
/* Why tel__open_file failed, for a one-line error: its own refusal
 * (EINVAL) in words, else strerror(err).  Static text. */
const char *tel__open_file_why(int err);

/*
 * Environment variable name for an app: "<APP>_TELEMETRY_<suffix>" with the
 * app upper-cased and '.'/'-' turned into '_'.
 */
void tel__env_name(const char *app, const char *suffix, char *out, size_t size);

/* ---------------------------------------------------------------- declare.c */

/* What the host declared, written beside the queue for tel and tel-sync
 * (format/SPEC.md, "Host declarations"). */
#define TEL_DECL_FILE "telemetry-declared"
#define TEL_DECL_FILE_MAX 4096

typedef struct tel_decl {
    char name[TEL_DECL_NAME_MAX + 1];
    tel_env_meaning meaning;
    char word[TEL_DECL_WORD_MAX + 1];   /* TEL_ENV_DEBUG_IF_CONTAINS only, else "" */
} tel_decl;

typedef struct tel_decls {
    tel_decl d[TEL_MAX_DECLS];
    size_t n;
    int default_off;          /* tel_options_set_default_enabled(opts, 0) */
    int erasure;              /* tel_options_set_erasure(opts, 1): forget leaves an
                               * erasure request (erasure.c) */
    int stated;               /* a host setter filled this in: recorded even when
                               * every value is the default, so that a host taking
                               * back an "off" or an erasure offer is heard */
} tel_decls;

/* "off-if-true"... for a meaning, NULL for an unknown one; the reverse
 * gives -1 for an unknown word.  The words of `tel emit --declare-env`. */
const char *tel__meaning_name(tel_env_meaning m);
int tel__meaning_parse(const char *word, size_t len);

/* Adds one declaration after checking it.  Returns TEL_OK,
 * TEL_ERR_INVALID or TEL_ERR_LIMIT with the reason. */
int tel__decls_add(tel_decls *d, const char *name, int meaning, const char *word);

/* The file's text, appended to out.  TEL_OK or TEL_ERR_NOMEM. */
int tel__decls_format(const tel_decls *d, tel_buf *out);
/* Parses the file's text into d (cleared first).  TEL_OK, or
 * TEL_ERR_CORRUPT naming the line; d is then partly filled. */
int tel__decls_parse(const char *text, size_t len, tel_decls *d);

/* Reads <state_dir>/telemetry-declared into d (cleared first).  TEL_OK,
 * TEL_ERR_NOTFOUND (nothing declared), TEL_ERR_CORRUPT. */
int tel__decls_load(const char *state_dir, tel_decls *d);
/* Replaces the file atomically (temp file + rename, 0600).  TEL_OK,
 * TEL_ERR_NOSTATE or TEL_ERR_IO. */
int tel__decls_store(const char *state_dir, const tel_decls *d);

/* What the declared variables say in this process's environment.  Every
 * pointer is NULL when nothing says so; names point into d, log_file into
 * the environment: both valid while d and the environment are. */
typedef struct tel_decl_effect {
    const char *off;              /* the variable that opts out */
    int on;                       /* 1 when a TEL_ENV_ON_OFF variable says on, else -1 */
    const char *on_name;
    const char *debug;            /* the variable that asks for debug */
    const char *log_file;         /* the audit log path (a value: never shown) */
    const char *log_file_name;
    const char *detailed_errors;  /* the variable that asks for error messages */
} tel_decl_effect;

void tel__decls_apply(const tel_decls *d, tel_decl_effect *fx);

/* ----------------------------------------------------------------- policy.c */

/* What the host passed through tel_options, before the user's say. */
typedef struct tel_host_settings {
    int enabled;              /* -1 unset, 0 off, 1 on */
    tel_source enabled_src;   /* TEL_SRC_HOST or TEL_SRC_FLAG */
    const char *endpoint;     /* NULL unset */
    const char *token;
    int logging;              /* -1 unset */
    const tel_decls *decls;   /* NULL: none; also carries the host's default off */
    int error_detail;         /* tel_error_detail the host chose */
} tel_host_settings;

/* Command-line flags of tel / tel-sync: strongest source. */
typedef struct tel_flag_settings {
    int enabled;              /* -1 unset */
    const char *endpoint;
    const char *token;
    int logging;
} tel_flag_settings;

typedef struct tel_policy {
    int enabled;
    tel_source enabled_src;
    char enabled_why[96];     /* "DO_NOT_TRACK", "MYCLI_TELEMETRY_ENABLED", "telemetry.conf line 3" */
    char endpoint[1024];
    tel_source endpoint_src;
    char token[512];          /* never logged or printed */
    tel_source token_src;
    int logging;
    tel_source logging_src;
    int debug;                /* <APP>_TELEMETRY_DEBUG or a declared variable: log, never send */
    char debug_why[96];       /* the variable that asked for debug, "" if none */
    char inspect[TEL_PATH_MAX];  /* <APP>_TELEMETRY_INSPECT, "" if unset */
    /*
     * Off because the user opted out (DO_NOT_TRACK, <APP>_TELEMETRY_ENABLED,
     * a declared opt-out variable, telemetry.conf): what was queued is
     * purged.  0 when the only offs are the host's (per run, host level,
     * default) or tel's own flag: those record nothing and touch nothing.
     */
    int opted_out;
    /* The audit log path from a declared variable, NULL if none; never
     * shown.  It points into the environment (a path is too large to copy
     * into every policy for the few hosts that have one), so it is valid
     * until the environment changes: open it at once. */
    const char *log_file;
    char log_file_why[96];    /* the variable that named it */
    int error_detail;         /* tel_error_detail */
    char error_detail_why[96];  /* "host" or the variable that raised it */
    /* An endpoint or token that was given but not used (too long, or a
     * control character), named: "MYCLI_TELEMETRY_TOKEN has a control
     * character; not used".  "" when none.  tel-sync sends nothing then. */
    char problem[224];
} tel_policy;

/* The compiled-in default endpoint (TEL_DEFAULT_ENDPOINT at build time). */
extern const char tel__default_endpoint[];

/*
 * Resolves every setting for `app`: built-in < host < config file < env
 * < flags, except `enabled`, where any source saying "off" wins.  host and
 * flags may be NULL.  A malformed config file is an error naming the file
 * and line (TEL_ERR_CONFIG); the policy is then still filled, from the
 * other sources, and telemetry counts as disabled so that a broken opt-out
 * line never turns telemetry on.
 */
int tel__policy_resolve(tel_policy *out, const char *app,
                        const tel_host_settings *host, const tel_flag_settings *flags);

/*
 * The policy tel-sync applies to the queue q of app, and `tel status`
 * shows: the endpoint and token the host recorded in the queue's meta
 * (TEL_META_ENDPOINT, TEL_META_TOKEN) and the declarations it stored
 * (decls, read by the caller with tel__decls_load) stand at the host's
 * level, so the user's config, environment and flags win over them.  q,
 * decls and flags may be NULL (nothing recorded, declared, given).
 * Returns what tel__policy_resolve returns.  The token read from the
 * queue is wiped from memory here; out->token is the caller's to wipe.
 */
int tel__policy_for_queue(tel_policy *out, tel_queue *q, const char *app, const tel_decls *decls,
                          const tel_flag_settings *flags);

/* An endpoint or token (`what` names it) of fewer than cap bytes without
 * control characters: TEL_OK or TEL_ERR_INVALID naming the problem, never
 * the value. */
int tel__setting_check(const char *what, const char *val, size_t cap);

/* "builtin", "host", "config", "env", "flag". */
const char *tel__source_name(tel_source src);

/* Parses a boolean word: true/1/yes/on -> 1, false/0/no/off -> 0, else -1. */
int tel__parse_bool(const char *s);

/*
 * Sets `key = value` in the config file, keeping other lines and comments,
 * writing atomically (temp file + rename), creating the directory 0700 and
 * the file 0600.  Returns TEL_OK, TEL_ERR_NOSTATE or TEL_ERR_IO.
 */
TEL_MUST_CHECK int tel__config_set(const char *app, const char *key, const char *value);

/* ----------------------------------------------------------------- cookie.c */

#define TEL_COOKIE_FILE "telemetry-cookie"

/*
 * Loads the anonymous id from <state_dir>/telemetry-cookie, creating it
 * (0600, O_EXCL|O_NOFOLLOW) when missing and replacing it atomically when
 * it does not hold a UUID.  When the path is anything but a regular file
 * (directory, symlink, fifo) it is left alone and a fresh random id for
 * this execution is returned with *lasting = 0.  Returns TEL_OK, or
 * TEL_ERR_NOSTATE when nothing could be read or written (then out is a
 * fresh random id and *lasting = 0, so the caller may still proceed).
 */
int tel__cookie_load(const char *state_dir, uint8_t out[TEL_ID_LEN], int *lasting);
/* The lasting id if a valid cookie is there, else a fresh random one
 * (*lasting = 0); never creates or changes anything (inspect runs). */
void tel__cookie_peek(const char *state_dir, uint8_t out[TEL_ID_LEN], int *lasting);
/* Removes the cookie if it is a regular file.  TEL_OK when gone. */
TEL_MUST_CHECK int tel__cookie_delete(const char *state_dir);

/* ------------------------------------------------------------------ queue.c */

typedef struct tel_caps {
    uint64_t max_events;      /* default 10,000 */
    uint64_t max_bytes;       /* default 4 MiB, sum of record sizes */
    uint64_t max_age_ms;      /* default 30 days */
    int full_sync;            /* 1: sync the meta page too on every commit */
} tel_caps;

#define TEL_CAPS_DEFAULT_EVENTS 10000u
#define TEL_CAPS_DEFAULT_BYTES (4u * 1024u * 1024u)
#define TEL_CAPS_DEFAULT_AGE_MS (30ull * 24 * 3600 * 1000)

#define TEL_QUEUE_DIR "telemetry"

/* Opening modes. */
#define TEL_Q_CREATE 1        /* create the directory and files if missing */
#define TEL_Q_READONLY 2      /* never write (tel show, tel status) */

/*
 * Opens the queue in <state_dir>/telemetry/, sharing the process's one
 * LMDB environment of that file with every other open (threads too).
 * A file that is not a valid
 * LMDB environment is renamed aside (data.mdb.corrupt-<ms>) and a fresh
 * queue started.  caps may be NULL for the defaults.  Returns TEL_OK,
 * TEL_ERR_NOTFOUND (no queue and no TEL_Q_CREATE), TEL_ERR_NOSTATE or
 * TEL_ERR_IO.
 */
TEL_MUST_CHECK int tel__queue_open(tel_queue **out, const char *state_dir, const tel_caps *caps, int mode);
void tel__queue_close(tel_queue *q);

/*
 * 1 when the queue's data.mdb on disk is no longer the file q has open
 * (tel forget or tel disable in another process removed it, or a damaged
 * file was moved aside): what q writes would be lost.  One statx() of the
 * inode number only, never of the timestamps (queue.c says why).
 */
int tel__queue_stale(const tel_queue *q);

/* One encoded record to append. */
typedef struct tel_rec {
    const uint8_t *data;
    size_t len;
    uint64_t ts_ms;
} tel_rec;

/*
 * Appends n records in one write transaction, in order, after evicting the
 * oldest events that the caps require (counted as dropped).  The queue
 * never refuses for being full.  Returns TEL_OK when every record is
 * durably stored (per the queue's sync mode) or a negative error, in which
 * case none is.
 */
TEL_MUST_CHECK int tel__queue_append(tel_queue *q, const tel_rec *recs, size_t n);

typedef struct tel_queue_stats {
    uint64_t count;
    uint64_t bytes;
    uint64_t oldest_ts_ms;    /* 0 when empty */
    uint64_t dropped;         /* dropped since the last accepted batch */
    uint64_t first_seq, last_seq;
} tel_queue_stats;

int tel__queue_stats(tel_queue *q, tel_queue_stats *out);

/*
 * Calls fn for up to max_count records with seq >= from_seq, oldest first,
 * stopping before the byte total would pass max_bytes (at least one record
 * is always given) or when fn returns non-zero.  The data pointer is valid
 * only during the call: the read transaction ends before this returns.
 */
typedef int (*tel_queue_fn)(void *ud, uint64_t seq, const uint8_t *data, size_t len);
int tel__queue_scan(tel_queue *q, uint64_t from_seq, size_t max_count, size_t max_bytes,
                    tel_queue_fn fn, void *ud);

/*
 * Deletes records first..last (inclusive; missing ones are fine) and
 * subtracts `dropped_acked` from the dropped counter, in one transaction.
 */
TEL_MUST_CHECK int tel__queue_delete(tel_queue *q, uint64_t first, uint64_t last, uint64_t dropped_acked);

/* A meta key to set (val != NULL) or delete (val == NULL). */
typedef struct tel_meta_kv {
    const char *key;
    const void *val;
    size_t len;
} tel_meta_kv;

/*
 * tel__queue_delete plus meta changes, in the same transaction: tel-sync
 * acknowledges a batch and records the next one with one sync, not two.
 */
TEL_MUST_CHECK int tel__queue_delete_meta(tel_queue *q, uint64_t first, uint64_t last, uint64_t dropped_acked,
                           const tel_meta_kv *kv, size_t nkv);
/* Adds n to the dropped counter (poison batches). */
TEL_MUST_CHECK int tel__queue_add_dropped(tel_queue *q, uint64_t n);
/* Deletes every record and resets the dropped counter and sync state. */
TEL_MUST_CHECK int tel__queue_purge(tel_queue *q);

/*
 * Purges the queue of state_dir (if any) and then removes its files from
 * the disk: LMDB reuses freed pages without clearing them, so old events
 * and the old anonymous id would stay readable in data.mdb.  Used by
 * forget and by every opt-out.  A handle that had the queue open before
 * notices on its next write (tel__queue_stale) and starts over with the
 * new queue (or stops, after a disable); a batch it buffered meanwhile is
 * forgotten too, and tel-sync sends nothing more of the old queue.  Returns TEL_OK when nothing is
 * left, or an error.
 */
TEL_MUST_CHECK int tel__queue_wipe(const char *state_dir);

/*
 * The keys of the queue's meta table, one list for every reader and
 * writer.  The queue keeps its counters; the library records what the host
 * configured; the sync engine keeps its state (layouts in syncstate.h).
 */
#define TEL_META_NEXT "next"            /* queue: the next sequence number */
#define TEL_META_BYTES "bytes"          /* queue: sum of record sizes */
#define TEL_META_DROPPED "dropped"      /* queue: dropped since the last accepted batch */
#define TEL_META_ENDPOINT "endpoint"    /* host: tel_options_set_endpoint */
#define TEL_META_TOKEN "token"          /* host: tel_options_set_token */
#define TEL_META_DECLARED "declared"    /* host: a copy of its declarations file */
#define TEL_META_PENDING "pending"      /* sync: the batch chosen before its first POST */
#define TEL_META_BACKOFF "backoff"      /* sync: when to try again, and why */
#define TEL_META_LAST_SYNC "last_sync"  /* sync: the last accepted batch */
#define TEL_META_COLLECTOR "collector"  /* sync: the versions its collector reads (sync.h) */
/* What the sync engine keeps about the events: purged with them. */
#define TEL_META_SYNC_KEYS { TEL_META_PENDING, TEL_META_BACKOFF, TEL_META_LAST_SYNC }

/*
 * Small named values next to the queue (TEL_META_*).  get copies at most cap bytes
 * and sets *len to the stored length; TEL_ERR_NOTFOUND when absent.
 * put with val == NULL deletes the key.
 */
int tel__queue_meta_get(tel_queue *q, const char *key, void *buf, size_t cap, size_t *len);
TEL_MUST_CHECK int tel__queue_meta_put(tel_queue *q, const char *key, const void *val, size_t len);

/* The queue directory path, for lock files and logs beside it. */
const char *tel__queue_dir(const tel_queue *q);

/* When opening found data.mdb damaged and started a fresh queue: the name
 * the damaged file was kept under (beside the queue), else NULL. */
const char *tel__queue_recovered(const tel_queue *q);

/* Drops this process's resident pages of the queue's map (a long reader
 * such as tel-sync keeps its memory bounded this way); data is untouched. */
void tel__queue_release_pages(tel_queue *q);

/* -------------------------------------------------------------------- tel.c */

/*
 * Checks Prometheus text as tel_emit_prometheus() would on a disabled
 * handle (every line parsed, every metric event built and checked),
 * without a handle: for `tel metrics` when telemetry.conf is malformed.
 * Returns TEL_OK or the first bad line's error ("line N: ...").
 */
int tel__prometheus_check(const char *text, size_t len);

/* ---------------------------------------------------------------- context.c */

/* Fills ctx with os, arch, CPU count and CI facts of this process.  Strings
 * are static.  App fields are left as they were. */
void tel__context_detect(tel_ctx *ctx);

/* Returns the CI vendor id ("github_actions", ...) when a known vendor's
 * variable is set, "" when only a generic CI variable is set, NULL when
 * not in CI. */
const char *tel__ci_vendor(void);
/* Number of vendors in the compiled table (for tests). */
size_t tel__ci_vendor_count(void);

/* --------------------------------------------------------------- sanitize.c */

/*
 * Copies `in` to out (always NUL-terminated, truncated to size, never
 * inside a placeholder or a character) with quoted text, URLs, option and
 * credential values, e-mail addresses, paths, host names and addresses,
 * the user's names and long hex/base64 runs replaced by placeholders, as
 * docs/man/tel_command_started.3 lists.
 */
void tel__sanitize(const char *in, char *out, size_t size);

/* ------------------------------------------------------------------ sha256.c */

void tel__sha256(const void *data, size_t len, uint8_t out[32]);

/* ----------------------------------------------------------------- project.c */

/*
 * The project id of the git repository around `cwd`, in hex: sha256 of
 * salt "\n" the normalised origin URL, or with salt NULL of the
 * normalised URL alone (the linkable form).  The origin is resolved as git
 * resolves it: url.<base>.insteadOf rules of /etc/gitconfig, the user's
 * git config files and the repository's, following include.path.  Returns
 * TEL_OK or TEL_ERR_NOTFOUND (no git origin).  Reads files; runs no
 * process.
 */
int tel__project_id(const char *salt, const char *cwd, char out[65]);

/* ------------------------------------------------------------------ spawn.c */

/*
 * Starts `tel-sync --app <app>` detached.  The binary is $TEL_SYNC_PATH
 * when set, else the compiled-in TEL_SYNC_BIN.  A state_dir (the host's
 * choice, may be NULL) is handed on as <APP>_TELEMETRY_STATE_DIR.
 * Returns TEL_OK with the child's pid in *pid, or TEL_ERR_IO; never
 * waits for the child.
 */
TEL_MUST_CHECK int tel__spawn_sync(const char *app, const char *state_dir, pid_t *pid);

#endif
