/* SPDX-License-Identifier: MIT */
/*
 * libqueue/tel.c - the public API: options, handles, emits, the command
 * lifecycle helpers and the user controls.
 *
 * Everything here runs inside the host program, on its critical path, so
 * it does only local work: environment and config reads, one cookie read,
 * one LMDB transaction per emit (or per batch).  No network, no DNS, no
 * waiting for a child.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "erasure.h"
#include "internal.h"
#include "syncstate.h"
#include "prom.h"

#define NOTICE_FILE "telemetry-notice"

struct tel_options {
    char app[TEL_MAX_NAME + 1];
    char app_version[65];
    char *endpoint;
    char *token;
    char *salt;
    int project_linkable;
    uint8_t exec[TEL_ID_LEN];
    int exec_given;
    char *state_dir;          /* the host's choice, NULL: the XDG default */
    char *install_id;         /* the host's installation id, NULL: the cookie */
    int enabled;
    tel_source enabled_src;
    int logging;
    tel_log_fn log_fn;
    void *log_ud;
    tel_caps caps;
    int require_notice;
    tel_decls *decls;         /* declared variables and the host's default;
                               * NULL until the first, so the many hosts that
                               * declare nothing do not pay for the table */
    char *inspect;            /* this run's inspect file, NULL: none */
    int debug;                /* this run is a debug run */
    int error_detail;         /* tel_error_detail */
};

/* A record buffered by tel_batch_begin(). */
typedef struct pending_rec {
    size_t off;
    size_t len;
    uint64_t ts;
} pending_rec;

struct tel {
    char app[TEL_MAX_NAME + 1];
    char app_version[65];
    char project[65];
    tel_policy policy;
    /* What the host passed, kept to resolve the policy and reopen the
     * queue again after another process's forget or disable. */
    tel_host_settings host;
    char *host_endpoint, *host_token;
    tel_decls *decls;         /* taken from the options; NULL: none */
    tel_caps caps;
    tel_options *opts;        /* the rest of the options, kept to start
                               * recording again (tel_handle_set_enabled) */
    pid_t child;              /* the tel-sync this handle started, until reaped; 0: none */
    int enabled;
    int waiting_notice;       /* require_notice and the notice not shown yet */
    tel_log_fn log_fn;
    void *log_ud;
    int debug;                /* log, record nothing: the host's or the user's choice */
    int inspect_fd;           /* this run's events go here instead of the queue; -1 none */
    int log_fd;               /* the declared audit log file; -1 none */
    char state_dir[TEL_PATH_MAX];
    int dir_rc;               /* TEL_OK when state_dir holds one */
    tel_queue *q;
    uint8_t anon[TEL_ID_LEN];
    dev_t cookie_dev;         /* the cookie file anon was read from; */
    ino_t cookie_ino;         /* cookie_ino 0: none to watch */
    uint8_t run[TEL_ID_LEN];  /* the run's token, what tel_exec_id hands on */
    uint8_t exec[TEL_ID_LEN]; /* what events record: derived from run and anon */
    int exec_shared;          /* the run came from the host or the environment */
    pid_t exec_pid;           /* the process that drew exec (see emit) */
    tel_idpool *ids;          /* event ids; made at the first one drawn */
    int ids_tried;            /* tel__idpool_new was called (it may give NULL) */
    int events_recorded;
    tel_ctx ctx;              /* set once, by the first activate() */
    /* The end of every record ("x", "a", "c": tel__record_tail), encoded
     * once for the exec and anon ids copied beside it; made again when
     * either changes (a reopen after forget, a handle switched back on). */
    uint8_t *tail;
    size_t tail_len, tail_cap;
    uint8_t tail_ids[2 * TEL_ID_LEN];

    char command[TEL_MAX_STRING + 1];
    int command_started;
    uint64_t command_start_ms;
    uint64_t run_mono_ms;     /* when this run began (activate): spans'
                               * start offsets count from here */
    uint64_t recheck_ms;      /* off by the user: when to read the choice again; 0 never */
    struct tel_span *spans;   /* open spans, freed by tel_close */
    size_t nspans;            /* how many (SPANS_OPEN_MAX) */
    struct tel_span *ended, *ended_last;   /* ended spans, oldest first, freed
                                            * by tel_close or reused */
    size_t nended;

    int in_batch;
    tel_buf batch;
    pending_rec *brecs;
    size_t nbrecs, cap_brecs;
};

/* ------------------------------------------------------------- options */

static int copy_str(char **dst, const char *src, size_t max, const char *what)
{
    if (src && strlen(src) > max)
        return tel__fail(TEL_ERR_INVALID, "%s is longer than %zu bytes", what, max);
    char *c = NULL;
    if (src && !(c = strdup(src)))
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    free(*dst);
    *dst = c;
    return TEL_OK;
}

tel_options *tel_options_new(const char *app)
{
    if (tel__app_check(app) != TEL_OK)
        return NULL;
    tel_options *o = calloc(1, sizeof *o);
    if (!o) {
        tel__fail(TEL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    strcpy(o->app, app);
    o->enabled = -1;
    o->enabled_src = TEL_SRC_HOST;
    o->logging = -1;
    return o;
}

void tel_options_free(tel_options *o)
{
    if (!o)
        return;
    free(o->endpoint);
    if (o->token) {
        explicit_bzero(o->token, strlen(o->token));
        free(o->token);
    }
    free(o->salt);
    free(o->state_dir);
    if (o->install_id) {
        explicit_bzero(o->install_id, strlen(o->install_id));
        free(o->install_id);
    }
    free(o->inspect);
    free(o->decls);
    free(o);
}

int tel_options_set_app_version(tel_options *o, const char *version)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (!version) {
        o->app_version[0] = '\0';
        return TEL_OK;
    }
    size_t n = strlen(version);
    if (n > 64)
        return tel__fail(TEL_ERR_INVALID, "app version is longer than 64 bytes");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)version[i] < 0x21 || (unsigned char)version[i] > 0x7e)
            return tel__fail(TEL_ERR_INVALID, "app version has a space or control character at byte %zu", i);
    memcpy(o->app_version, version, n + 1);
    return TEL_OK;
}

int tel_options_set_endpoint(tel_options *o, const char *url)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (url && *url && tel__setting_check("endpoint", url, 1024) != TEL_OK)
        return TEL_ERR_INVALID;
    return copy_str(&o->endpoint, url && *url ? url : NULL, 1023, "endpoint");
}

int tel_options_set_token(tel_options *o, const char *token)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    /* A CR or LF would end the Authorization header and start another. */
    if (token && *token && tel__setting_check("token", token, 512) != TEL_OK)
        return TEL_ERR_INVALID;
    return copy_str(&o->token, token && *token ? token : NULL, 511, "token");
}

int tel_options_set_enabled(tel_options *o, int enabled, tel_source src)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (src != TEL_SRC_HOST && src != TEL_SRC_FLAG)
        return tel__fail(TEL_ERR_INVALID, "a host sets 'enabled' as TEL_SRC_HOST or TEL_SRC_FLAG");
    o->enabled = enabled ? 1 : 0;
    o->enabled_src = src;
    return TEL_OK;
}

/* The declarations the options carry, made on the first declaring setter
 * (most hosts declare nothing and do not pay for the table). */
static int decls_ready(tel_options *o)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (!o->decls && !(o->decls = calloc(1, sizeof *o->decls)))
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    o->decls->stated = 1;
    return TEL_OK;
}

int tel_options_set_default_enabled(tel_options *o, int enabled)
{
    int rc = decls_ready(o);
    if (rc == TEL_OK)
        o->decls->default_off = !enabled;
    return rc;
}

int tel_options_set_erasure(tel_options *o, int on)
{
    int rc = decls_ready(o);
    if (rc == TEL_OK)
        o->decls->erasure = on ? 1 : 0;
    return rc;
}

int tel_options_declare_env(tel_options *o, const char *name, tel_env_meaning meaning,
                            const char *word)
{
    int rc = decls_ready(o);
    return rc != TEL_OK ? rc : tel__decls_add(o->decls, name, (int)meaning, word);
}

int tel_options_set_inspect(tel_options *o, const char *path)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    return copy_str(&o->inspect, path && *path ? path : NULL, TEL_PATH_MAX - 1, "inspect path");
}

int tel_options_set_debug(tel_options *o, int on)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    o->debug = on ? 1 : 0;
    return TEL_OK;
}

int tel_options_set_error_detail(tel_options *o, tel_error_detail level)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (level != TEL_ERRORS_CLASS && level != TEL_ERRORS_SANITIZED)
        return tel__fail(TEL_ERR_INVALID, "unknown error detail level %d", (int)level);
    o->error_detail = level;
    return TEL_OK;
}

int tel_options_set_logging(tel_options *o, int on, tel_log_fn fn, void *userdata)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    o->logging = on ? 1 : 0;
    o->log_fn = fn;
    o->log_ud = userdata;
    return TEL_OK;
}

int tel_options_set_caps(tel_options *o, uint64_t max_events, uint64_t max_bytes,
                         uint64_t max_age_seconds)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (max_age_seconds > UINT64_MAX / 1000)
        return tel__fail(TEL_ERR_INVALID, "max age is too large");
    /* A byte cap smaller than one event would make every emit succeed and
     * then drop its own event at once: refuse it here instead. */
    if (max_bytes != 0 && max_bytes < TEL_MAX_EVENT)
        return tel__fail(TEL_ERR_INVALID, "max bytes must be 0 (default) or at least %d", TEL_MAX_EVENT);
    o->caps.max_events = max_events;
    o->caps.max_bytes = max_bytes;
    o->caps.max_age_ms = max_age_seconds * 1000;
    return TEL_OK;
}

int tel_options_set_project_salt(tel_options *o, const char *salt)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    return copy_str(&o->salt, salt && *salt ? salt : NULL, 256, "project salt");
}

int tel_options_set_project_linkable(tel_options *o, int on)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    o->project_linkable = on ? 1 : 0;
    return TEL_OK;
}

int tel_options_set_exec_id(tel_options *o, const char *id)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (!id) {
        o->exec_given = 0;
        return TEL_OK;
    }
    if (tel__uuid_parse(id, strnlen(id, 37), o->exec) != 0)
        return tel__fail(TEL_ERR_INVALID, "execution id is not a UUID (8-4-4-4-12 hex digits)");
    o->exec_given = 1;
    return TEL_OK;
}

int tel_options_set_state_dir(tel_options *o, const char *dir)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (dir && dir[0] != '/')
        return tel__fail(TEL_ERR_INVALID, "state directory must be an absolute path");
    /* Room for the queue's own file names below it. */
    return copy_str(&o->state_dir, dir, TEL_PATH_MAX - 64, "state directory");
}

int tel_options_set_installation_id(tel_options *o, const char *id)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    if (id && !*id)
        return tel__fail(TEL_ERR_INVALID, "installation id is empty");
    if (id && strlen(id) > 256)
        return tel__fail(TEL_ERR_INVALID, "installation id is longer than 256 bytes");
    char *c = NULL;
    if (id && !(c = strdup(id)))
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    /* The old id is wiped only once the call cannot fail any more: a
     * refused id must leave the one set before, not an empty one that
     * every such host would share. */
    if (o->install_id) {
        explicit_bzero(o->install_id, strlen(o->install_id));
        free(o->install_id);
    }
    o->install_id = c;
    return TEL_OK;
}

int tel_options_set_require_notice(tel_options *o, int on)
{
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    o->require_notice = on ? 1 : 0;
    return TEL_OK;
}

/* ------------------------------------------------------------- helpers */

static int notice_path(const tel *h, char *out, size_t size)
{
    return (size_t)snprintf(out, size, "%s/" NOTICE_FILE, h->state_dir) < size ? 0 : -1;
}

static int notice_recorded(const tel *h)
{
    char path[TEL_PATH_MAX + 32];
    struct stat st;
    return notice_path(h, path, sizeof path) == 0 && lstat(path, &st) == 0;
}

/*
 * Forgets what an app kept: empties its queue if it has one and removes it
 * from the disk (LMDB's freed pages would still hold old events and the
 * old anonymous id), and deletes the cookie, so that turning telemetry
 * back on later starts a new identity.  Used by every opt-out and by
 * forget.  Costs two lstat calls when there is nothing, the common case
 * for a user who opted out long ago.
 */
static int purge_existing(const char *state_dir)
{
    char path[TEL_PATH_MAX + 32];
    struct stat st;
    int rc = tel__cookie_delete(state_dir);
    snprintf(path, sizeof path, "%s/" TEL_QUEUE_DIR "/data.mdb", state_dir);
    if (lstat(path, &st) != 0)
        return rc;
    int wrc = tel__queue_wipe(state_dir);
    return rc != TEL_OK ? rc : wrc;
}

/* One line to the log the user or host asked for: the callback or
 * stderr when logging or debug is on, and the audit log file when one was
 * declared.  A write that fails is dropped: telemetry never fails its host. */
static void log_line(tel *h, const char *line)
{
    if (h->policy.logging || h->debug) {
        if (h->log_fn)
            h->log_fn(h->log_ud, line);
        else
            fprintf(stderr, "%s telemetry: %s\n", h->app, line);
    }
    if (h->log_fd >= 0) {
        size_t n = strlen(line);
        struct iovec iov[2] = { { (void *)line, n }, { "\n", 1 } };
        /* One writev with O_APPEND: lines of concurrent runs never mix. */
        if (writev(h->log_fd, iov, 2) < 0)
            return;
    }
}

/*
 * Records the host's declarations for tel and tel-sync, in the file beside
 * the queue, when they differ from the copy kept in the queue's meta: the
 * comparison reads memory LMDB already mapped, so a run whose declarations
 * did not change costs no file read, and a host that declares nothing
 * pays nothing at all (which is also why a host that stops declaring
 * leaves its last declarations in place).
 */
static void record_declarations(tel *h, const tel_decls *d)
{
    if (!d || !d->stated)
        return;
    char cur[TEL_DECL_FILE_MAX];
    size_t len = 0;
    int have = tel__queue_meta_get(h->q, TEL_META_DECLARED, cur, sizeof cur, &len) == TEL_OK;
    tel_buf text = TEL_BUF_INIT;
    if (tel__decls_format(d, &text) == TEL_OK &&
        !(have && len == text.len && memcmp(cur, text.p, len) == 0) &&
        tel__decls_store(h->state_dir, d) == TEL_OK &&
        tel__queue_meta_put(h->q, TEL_META_DECLARED, text.p, text.len) != TEL_OK) {
        /* The file is written; without the copy the next run only
         * compares again and rewrites it, which is harmless. */
    }
    tel__buf_free(&text);
}

/*
 * Records the host's endpoint and token beside the queue for tel-sync,
 * only when they differ from what is there: most runs write nothing.
 */
static void record_host_settings(tel *h, const char *endpoint, const char *token)
{
    static const char *const keys[2] = { TEL_META_ENDPOINT, TEL_META_TOKEN };
    const char *vals[2] = { endpoint, token };
    for (int i = 0; i < 2; i++) {
        if (!vals[i])
            continue;
        char cur[1024];
        size_t len = 0;
        size_t want = strlen(vals[i]);
        int rc = tel__queue_meta_get(h->q, keys[i], cur, sizeof cur, &len);
        if (rc == TEL_OK && len == want && memcmp(cur, vals[i], want) == 0)
            continue;
        /* Deliberately not an error: the host's events matter more than
         * this record, and tel-sync still has every other source. */
        if (tel__queue_meta_put(h->q, keys[i], vals[i], want) != TEL_OK)
            return;
    }
}

/* ---------------------------------------------------------------- open */

/* The first 16 bytes of sha256(msg), marked as a UUID of version 8
 * (RFC 9562: laid out by the application). */
static void id_from(const void *msg, size_t len, uint8_t out[TEL_ID_LEN])
{
    uint8_t d[32];
    tel__sha256(msg, len, d);
    memcpy(out, d, TEL_ID_LEN);
    explicit_bzero(d, sizeof d);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x80);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

/*
 * The anonymous id of an installation the host names (a cluster's UID):
 * derived from a fixed label, the app and the id.  A restarted process
 * gets the same id, two apps never share one, and the id the host passed
 * never leaves the process.
 */
static void install_anon(const char *app, const char *id, uint8_t out[TEL_ID_LEN])
{
    tel_buf msg = TEL_BUF_INIT;
    if (tel__buf_printf(&msg, "tel installation\n%s\n%s", app, id) != 0) {
        tel__buf_free(&msg);
        if (tel__uuid4(out) != 0)   /* no memory: no lasting id this run */
            memset(out, 0, TEL_ID_LEN);
        return;
    }
    id_from(msg.p, msg.len, out);
    explicit_bzero(msg.p, msg.len);
    tel__buf_free(&msg);
}

/* The anonymous id of a handle that records: derived from the host's
 * installation id when it gave one (no cookie file), else the cookie's. */
static int cookie_stat(const tel *h, struct stat *st)
{
    char path[TEL_PATH_MAX + sizeof TEL_COOKIE_FILE + 1];
    snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, h->state_dir);
    return lstat(path, st);
}

static int load_anon(tel *h, int *lasting)
{
    h->cookie_ino = 0;
    if (h->opts->install_id) {
        install_anon(h->app, h->opts->install_id, h->anon);
        *lasting = 1;
        return TEL_OK;
    }
    int rc = tel__cookie_load(h->state_dir, h->anon, lasting);
    struct stat st;
    if (rc == TEL_OK && *lasting && cookie_stat(h, &st) == 0) {
        h->cookie_dev = st.st_dev;
        h->cookie_ino = st.st_ino;
    }
    return rc;
}

/* The user deleted (or replaced) the cookie file the handle's id came
 * from: the next event gets a new one, as a new process would. */
static int cookie_moved(const tel *h)
{
    char path[TEL_PATH_MAX + sizeof TEL_COOKIE_FILE + 1];
    if (!h->cookie_ino)
        return 0;
    snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, h->state_dir);
    return tel__file_replaced(path, h->cookie_dev, h->cookie_ino);
}

/*
 * Where the handle's state lives, into h->state_dir:
 * <APP>_TELEMETRY_STATE_DIR, else the host's directory, else
 * $XDG_STATE_HOME/<app>.  The environment wins because it is also how
 * tel-sync and tel status find the queue.  Returns TEL_OK or why there is
 * none (no HOME), as tel__state_dir does.
 */
static int state_dir_resolve(tel *h)
{
    if (h->opts->state_dir && tel__state_dir_env(h->app, h->state_dir, sizeof h->state_dir) != TEL_OK) {
        /* Its length was checked when it was set. */
        strcpy(h->state_dir, h->opts->state_dir);
        return TEL_OK;
    }
    return tel__state_dir(h->app, h->state_dir, sizeof h->state_dir);
}

/*
 * Prepares what a handle that records needs: the state directory, the
 * anonymous id and the queue; or, for an inspect or debug run, only the
 * id, read from an existing cookie without creating or changing anything.
 */
static int open_state(tel *h, int dry)
{
    const tel_options *o = h->opts;
    /* Tried again when it failed at open: HOME may be back since. */
    int rc = h->dir_rc == TEL_OK ? TEL_OK : (h->dir_rc = state_dir_resolve(h));
    int lasting = 0;
    if (dry) {
        if (o->install_id)
            install_anon(h->app, o->install_id, h->anon);
        else if (rc == TEL_OK)
            tel__cookie_peek(h->state_dir, h->anon, &lasting);
        else if (tel__uuid4(h->anon) != 0)
            return tel__fail(TEL_ERR_IO, "no random numbers available");
        if (o->inspect && h->inspect_fd < 0) {
            /* Named by the host or the user, it is still only ever a
             * regular file: a FIFO planted there must not hang the host. */
            h->inspect_fd = tel__open_file(o->inspect, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (h->inspect_fd < 0)
                return tel__fail(TEL_ERR_IO, "cannot open the inspect file: %s", tel__open_file_why(errno));
        }
        return TEL_OK;
    }
    if (rc != TEL_OK)
        return rc;
    rc = tel__mkdir_private(h->state_dir);
    if (rc == TEL_OK)
        rc = load_anon(h, &lasting);
    if (rc == TEL_OK)
        rc = tel__queue_open(&h->q, h->state_dir, &h->caps, TEL_Q_CREATE);
    return rc;
}

/*
 * The execution id events record: derived from the run's token and the
 * anonymous id.  Every process of one run and one identity records the
 * same id; after a forget or a deleted cookie the same token (still in a
 * script's environment) gives another, so nothing recorded links the
 * identity before to the one after.  The token itself is never recorded.
 */
static void exec_derive(tel *h)
{
    uint8_t msg[8 + 2 * TEL_ID_LEN];
    memcpy(msg, "tel run\n", 8);
    memcpy(msg + 8, h->run, TEL_ID_LEN);
    memcpy(msg + 8 + TEL_ID_LEN, h->anon, TEL_ID_LEN);
    id_from(msg, sizeof msg, h->exec);
    explicit_bzero(msg, sizeof msg);
}

/*
 * The run's token: <APP>_TELEMETRY_EXEC_ID when it holds a UUID (a
 * script or a parent process handing its run to this one), else the
 * host's, else a fresh random one; then the id events record.  A
 * malformed variable is ignored: telemetry never fails its host.  Needs
 * h->anon.  Returns 0, or -1 without randomness.
 */
static int exec_id_resolve(tel *h, const tel_options *o)
{
    if (tel__exec_id_env(h->app, h->run) == TEL_OK) {
        h->exec_shared = 1;
    } else if (o->exec_given) {
        memcpy(h->run, o->exec, TEL_ID_LEN);
        h->exec_shared = 1;
    } else {
        h->exec_pid = getpid();
        if (tel__uuid4(h->run) != 0)
            return -1;
    }
    exec_derive(h);
    return 0;
}

int tel_exec_id(const tel *h, char out[37])
{
    if (!out)
        return tel__fail(TEL_ERR_INVALID, "no output buffer");
    out[0] = '\0';
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (!h->enabled)
        return TEL_DISABLED;
    tel__uuid_format(h->run, out);
    return TEL_OK;
}

/*
 * Everything recording needs, once the policy says on: the state, the
 * execution id, the context, the audit log.  Called by tel_open() and
 * when the host switches an open handle back on (a new run then: the ids
 * of before are not carried over).  Returns TEL_OK with h->enabled set,
 * or an error.
 */
static int activate(tel *h)
{
    const tel_options *o = h->opts;
    int rc = open_state(h, h->debug || o->inspect != NULL);
    if (rc == TEL_OK && exec_id_resolve(h, o) != 0)
        rc = tel__fail(TEL_ERR_IO, "no random numbers available");
    if (rc != TEL_OK)
        return rc;
    h->events_recorded = 0;
    h->run_mono_ms = tel__mono_ms();
    if (!h->ctx.app) {
        tel__context_detect(&h->ctx);
        h->ctx.app = h->app;
        h->ctx.app_version = h->app_version[0] ? h->app_version : NULL;
        if (o->salt || o->project_linkable) {
            char cwd[TEL_PATH_MAX];
            /* The linkable form wins when both were asked: the host said it
             * wants ids other products can match. */
            const char *salt = o->project_linkable ? NULL : o->salt;
            if (getcwd(cwd, sizeof cwd) && tel__project_id(salt, cwd, h->project) == TEL_OK)
                h->ctx.project = h->project;
        }
    }
    h->waiting_notice = o->require_notice && h->q && !notice_recorded(h);
    /* The audit log is opened once: a run's emits pay nothing more than
     * the write. */
    if (h->policy.log_file && h->log_fd < 0)
        h->log_fd = tel__open_file(h->policy.log_file, O_WRONLY | O_CREAT | O_APPEND, 0600);
    /* The one thing worth a line even in a quiet library: events were
     * lost to a damaged file.  Said only where logging was asked for. */
    if (h->q && tel__queue_recovered(h->q)) {
        char line[160];
        snprintf(line, sizeof line, "the queue was damaged; kept aside as %s, a fresh queue started",
                 tel__queue_recovered(h->q));
        log_line(h, line);
    }
    if (h->q) {
        record_host_settings(h, h->host_endpoint, h->host_token);
        record_declarations(h, h->decls);
    }
    h->enabled = 1;
    return TEL_OK;
}

/*
 * Off by the user's choice (tel disable, telemetry.conf, an opt-in not
 * given yet), not by the host: a long-running host follows the user's
 * later tel enable too.  The choice is read again at an emit at most
 * every TEL_RECHECK_MS, and only while off; back on is a new run.
 */
#define TEL_RECHECK_MS 2000

static void watch_user_choice(tel *h)
{
    h->recheck_ms = h->host.enabled != 0 ? tel__mono_ms() + TEL_RECHECK_MS : 0;
}

static void follow_user_choice(tel *h)
{
    if (!h->recheck_ms || tel__mono_ms() < h->recheck_ms)
        return;
    watch_user_choice(h);
    explicit_bzero(h->policy.token, sizeof h->policy.token);
    if (tel__policy_resolve(&h->policy, h->app, &h->host, NULL) != TEL_OK || !h->policy.enabled)
        return;
    h->debug = h->policy.debug || h->opts->debug;
    if (activate(h) == TEL_OK)
        h->recheck_ms = 0;
}

int tel_open(tel **out, tel_options *o)
{
    if (!out) {
        tel_options_free(o);
        return tel__fail(TEL_ERR_INVALID, "no output handle");
    }
    *out = NULL;
    if (!o)
        return tel__fail(TEL_ERR_INVALID, "no options");
    tel__clear_error();
    tel *h = calloc(1, sizeof *h);
    if (!h) {
        tel_options_free(o);
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    }
    strcpy(h->app, o->app);
    strcpy(h->app_version, o->app_version);
    h->log_fn = o->log_fn;
    h->log_ud = o->log_ud;
    h->inspect_fd = -1;
    h->log_fd = -1;

    /* The handle keeps the options (tel_close frees them), with its own
     * copies of what resolves the policy again after another process's
     * forget or disable, or when the host switches it back on. */
    h->opts = o;
    h->host_endpoint = o->endpoint;
    h->host_token = o->token;
    h->decls = o->decls;
    o->endpoint = o->token = NULL;
    o->decls = NULL;
    h->host = (tel_host_settings){ o->enabled, o->enabled_src, h->host_endpoint, h->host_token,
                                   o->logging, h->decls, o->error_detail };
    h->caps = o->caps;
    int prc = tel__policy_resolve(&h->policy, h->app, &h->host, NULL);
    h->debug = h->policy.debug || o->debug;
    h->dir_rc = state_dir_resolve(h);

    if (!h->policy.enabled) {
        /* The user's opt-out means nothing is kept: a queue filled before
         * is emptied now.  The host's off (this run, this project, or its
         * default) records nothing and leaves the rest alone.  A config
         * file that could not be read or parsed only counts as "off" for
         * this run: it may hold an opt-out, or nothing of the kind, so
         * nothing is deleted on that guess (tel-sync does the same). */
        if (h->policy.opted_out && prc != TEL_ERR_CONFIG && h->dir_rc == TEL_OK)
            purge_existing(h->state_dir);
        if (prc == TEL_ERR_CONFIG) {
            /* A failure, so no handle (tel.h); tel_last_error() still
             * names the file's problem. */
            tel_close(h);
            return TEL_ERR_CONFIG;
        }
        watch_user_choice(h);
        *out = h;
        return TEL_DISABLED;
    }
    int rc = activate(h);
    if (rc != TEL_OK) {
        tel_close(h);
        return rc;
    }
    *out = h;
    return TEL_OK;
}

static void spans_drop(tel *h);

int tel_handle_set_enabled(tel *h, int enabled)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (!enabled) {
        /* The host learned of its user's opt-out (a config map flipped):
         * what was queued is purged, as for every lasting opt-out, and
         * nothing more is recorded until it is switched back on.  The
         * host's off is kept in the settings a reopen resolves again. */
        h->host.enabled = 0;
        h->host.enabled_src = TEL_SRC_HOST;
        h->enabled = 0;
        h->recheck_ms = 0;
        h->in_batch = 0;
        h->nbrecs = 0;
        tel__buf_clear(&h->batch);
        spans_drop(h);
        tel__queue_close(h->q);
        h->q = NULL;
        int rc = h->dir_rc == TEL_OK ? purge_existing(h->state_dir) : TEL_OK;
        return rc == TEL_OK ? TEL_DISABLED : rc;
    }
    h->host.enabled = h->opts->enabled;
    h->host.enabled_src = h->opts->enabled_src;
    if (h->enabled)
        return TEL_OK;
    explicit_bzero(h->policy.token, sizeof h->policy.token);
    int prc = tel__policy_resolve(&h->policy, h->app, &h->host, NULL);
    h->debug = h->policy.debug || h->opts->debug;
    if (!h->policy.enabled) {
        watch_user_choice(h);
        return prc == TEL_ERR_CONFIG ? TEL_ERR_CONFIG : TEL_DISABLED;
    }
    return activate(h);
}

static void spans_free(tel_span *s);
static void reap_child(tel *h);

void tel_close(tel *h)
{
    if (!h)
        return;
    spans_free(h->spans);
    spans_free(h->ended);
    /* tel_close has no result to give: events of a batch that cannot be
     * stored now are lost, and said so where logging was asked for (the
     * log decides). */
    if (h->in_batch && tel_batch_commit(h) != TEL_OK) {
        char line[320];
        snprintf(line, sizeof line, "the open batch was not stored: %s", tel_last_error());
        log_line(h, line);
    }
    tel__queue_close(h->q);
    if (h->inspect_fd >= 0)
        close(h->inspect_fd);
    if (h->log_fd >= 0)
        close(h->log_fd);
    tel__buf_free(&h->batch);
    free(h->tail);
    free(h->brecs);
    tel__idpool_free(h->ids);
    explicit_bzero(h->policy.token, sizeof h->policy.token);
    free(h->host_endpoint);
    free(h->decls);
    if (h->host_token) {
        explicit_bzero(h->host_token, strlen(h->host_token));
        free(h->host_token);
    }
    reap_child(h);
    tel_options_free(h->opts);
    free(h);
}

int tel_enabled(const tel *h)
{
    return h && h->enabled && !h->waiting_notice;
}

/* ---------------------------------------------------------------- emit */

/*
 * Shows one encoded event where it was asked for: the inspect file (as
 * `tel show` prints it), the log, the audit log file.  Only a failure to
 * write the inspect file is an error: that file is what the host asked
 * this run to produce.
 */
static int show_event(tel *h, const uint8_t *buf, size_t len)
{
    tel_record r;
    tel_buf line = TEL_BUF_INIT;
    const char *tag = h->inspect_fd >= 0 ? "inspect, not stored: "
                      : h->debug         ? "debug, not stored: "
                                         : "recorded: ";
    int rc = TEL_OK;
    if (tel__record_decode(&r, buf, len) != TEL_OK || tel__buf_puts(&line, tag) != 0 ||
        tel__record_json(&r, &line) != TEL_OK || tel__buf_append(&line, "\n", 1) != 0)
        rc = tel__fail(TEL_ERR_NOMEM, "out of memory");
    size_t skip = strlen(tag);
    if (rc == TEL_OK && h->inspect_fd >= 0 &&
        write(h->inspect_fd, line.p + skip, line.len - skip) != (ssize_t)(line.len - skip))
        rc = tel__fail(TEL_ERR_IO, "cannot write the inspect file (%s)", strerror(errno));
    if (rc == TEL_OK) {
        line.p[line.len - 1] = '\0';
        log_line(h, (const char *)line.p);
    }
    tel__buf_free(&line);
    return rc;
}

static int record(tel *h, const tel_event_in *ev, const uint8_t *buf, size_t len);

/* The anonymous id changed under the handle: the run's events from now
 * on are recorded under an id derived from the new one. */
static void new_identity(tel *h)
{
    exec_derive(h);
    /* exec_pid stays: only the process that drew the token may give its
     * id to a first event (a forked child reopening too derives the same). */
    h->events_recorded = 0;
}

/* A new queue holds none of the host's settings yet. */
static int finish_reopen(tel *h)
{
    record_host_settings(h, h->host_endpoint, h->host_token);
    record_declarations(h, h->decls);
    return TEL_OK;
}

/*
 * The queue file this handle opened is gone (another process's tel forget
 * or tel disable removed it, or moved it aside as damaged): whatever the
 * handle wrote now would be lost.  A daemon keeps its handle for days, so
 * it starts over as tel_open would: the user's choice read again (off:
 * nothing more is recorded), and after a forget a new anonymous id, a new
 * execution id and the new queue (the same identity keeps its run).  Returns TEL_OK, TEL_DISABLED or an
 * error (then the next emit tries again).
 */
static int reopen(tel *h)
{
    tel__queue_close(h->q);
    h->q = NULL;
    int prc = tel__policy_resolve(&h->policy, h->app, &h->host, NULL);
    if (prc != TEL_OK || !h->policy.enabled) {
        h->enabled = 0;
        watch_user_choice(h);
        return TEL_DISABLED;
    }
    int lasting = 0;
    uint8_t was[TEL_ID_LEN];
    memcpy(was, h->anon, sizeof was);
    int rc = tel__mkdir_private(h->state_dir);
    if (rc == TEL_OK)
        rc = load_anon(h, &lasting);
    if (rc == TEL_OK)
        rc = tel__queue_open(&h->q, h->state_dir, &h->caps, TEL_Q_CREATE);
    if (rc != TEL_OK)
        return rc;
    /* A new identity records its run under another id (the token is
     * kept: processes that share it stay together); the same identity (a
     * damaged queue set aside, not a forget) goes on as it was. */
    if (memcmp(was, h->anon, sizeof was) != 0)
        new_identity(h);
    return finish_reopen(h);
}

/* Reopens when the queue file on disk is no longer ours, and takes the
 * new identity when the cookie was deleted: two lstat()s. */
static int check_queue(tel *h)
{
    if (!h->q || tel__queue_stale(h->q))
        return reopen(h);
    if (cookie_moved(h)) {
        int lasting;
        uint8_t was[TEL_ID_LEN];
        memcpy(was, h->anon, sizeof was);
        /* Whatever it returns, anon now holds the id to use (a fresh
         * random one when no cookie could be written). */
        load_anon(h, &lasting);
        if (memcmp(was, h->anon, sizeof was) != 0)
            new_identity(h);
    }
    return TEL_OK;
}

/* A fresh event id from the handle's pool, made at the first id drawn: a
 * run of one event draws none, it takes the execution id. */
static int draw_id(tel *h, uint8_t out[TEL_ID_LEN])
{
    if (!h->ids_tried) {
        h->ids = tel__idpool_new();
        h->ids_tried = 1;
    }
    return tel__idpool_uuid4(h->ids, out);
}

/* A context of short strings fits the first allocation of a tail. */
#define TAIL_GUESS 256

/* h->tail for the event's ids and context, made when it is not yet. */
static int current_tail(tel *h, const tel_event_in *ev)
{
    if (h->tail_len > 0 && memcmp(h->tail_ids, ev->exec, TEL_ID_LEN) == 0 &&
        memcmp(h->tail_ids + TEL_ID_LEN, ev->anon, TEL_ID_LEN) == 0)
        return TEL_OK;
    h->tail_len = 0;
    size_t len = TAIL_GUESS;
    int rc = h->tail ? tel__record_tail(ev, h->tail, h->tail_cap, &len) : TEL_ERR_LIMIT;
    /* At most twice: the guess, then the size the encoder said. */
    for (int i = 0; i < 2 && rc == TEL_ERR_LIMIT && len > h->tail_cap; i++) {
        uint8_t *p = malloc(len);
        if (!p)
            return tel__fail(TEL_ERR_NOMEM, "out of memory");
        free(h->tail);
        h->tail = p;
        h->tail_cap = len;
        rc = tel__record_tail(ev, h->tail, h->tail_cap, &len);
    }
    if (rc != TEL_OK)
        return rc;
    h->tail_len = len;
    memcpy(h->tail_ids, ev->exec, TEL_ID_LEN);
    memcpy(h->tail_ids + TEL_ID_LEN, ev->anon, TEL_ID_LEN);
    return TEL_OK;
}

/* Records an event already checked, whose measure is *shape. */
static int emit_checked(tel *h, const char *event, const tel_prop *props, size_t nprops,
                        const tel_event_shape *shape)
{
    int rc;
    if (!h->enabled)
        follow_user_choice(h);
    if (!h->enabled || h->waiting_notice)
        return TEL_DISABLED;
    /* Before the event takes the handle's ids: a forget gives new ones. */
    if (!h->in_batch && !h->debug && h->inspect_fd < 0 && (rc = check_queue(h)) != TEL_OK)
        return rc;

    tel_event_in ev;
    memset(&ev, 0, sizeof ev);
    /* The execution id is the id of the run's first event, so the events
     * of one run are linked without a second random number per event; an
     * id shared with other processes cannot be: each would reuse it.  Nor
     * can a child forked before that first event, which would record it
     * again beside its parent. */
    if (h->events_recorded == 0 && !h->exec_shared && h->exec_pid == getpid())
        memcpy(ev.id, h->exec, TEL_ID_LEN);
    else if (draw_id(h, ev.id) != 0)
        return tel__fail(TEL_ERR_IO, "no random numbers available");
    memcpy(ev.exec, h->exec, TEL_ID_LEN);
    ev.ts_ms = tel__now_ms();
    ev.name = event;
    ev.props = props;
    ev.nprops = nprops;
    ev.anon = h->anon;
    ev.ctx = &h->ctx;
    if ((rc = current_tail(h, &ev)) != TEL_OK)
        return rc;

    /* Events of scalars fit the stack buffer; only one with a large
     * structured value pays for a heap buffer of the size it needs. */
    uint8_t stack_buf[TEL_MAX_FLAT_EVENT];
    uint8_t *buf = stack_buf;
    size_t len = 0;
    rc = tel__record_encode_tail(&ev, shape, h->tail, h->tail_len, buf, sizeof stack_buf, &len);
    if (rc == TEL_ERR_LIMIT && len > sizeof stack_buf) {
        if (!(buf = malloc(len)))
            return tel__fail(TEL_ERR_NOMEM, "out of memory");
        rc = tel__record_encode_tail(&ev, shape, h->tail, h->tail_len, buf, len, &len);
    }
    if (rc == TEL_OK)
        rc = record(h, &ev, buf, len);
    if (buf != stack_buf)
        free(buf);
    return rc;
}

static int emit(tel *h, const char *event, const tel_prop *props, size_t nprops)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    tel_event_shape shape;
    int rc = tel__event_measure(event, props, nprops, &shape);
    return rc == TEL_OK ? emit_checked(h, event, props, nprops, &shape) : rc;
}

/* Logs and stores one encoded event (or buffers it in the open batch). */
static int record(tel *h, const tel_event_in *ev, const uint8_t *buf, size_t len)
{
    int rc;
    if (h->policy.logging || h->debug || h->log_fd >= 0 || h->inspect_fd >= 0) {
        rc = show_event(h, buf, len);
        if (rc != TEL_OK)
            return rc;
    }
    /* Debug and inspect runs are for looking, never for sending. */
    if (h->debug || h->inspect_fd >= 0) {
        h->events_recorded++;
        return TEL_OK;
    }

    if (h->in_batch) {
        if (h->nbrecs == h->cap_brecs) {
            size_t ncap = h->cap_brecs ? h->cap_brecs * 2 : 64;
            pending_rec *n = realloc(h->brecs, ncap * sizeof *n);
            if (!n)
                return tel__fail(TEL_ERR_NOMEM, "out of memory");
            h->brecs = n;
            h->cap_brecs = ncap;
        }
        size_t off = h->batch.len;
        if (tel__buf_append(&h->batch, buf, len) != 0)
            return tel__fail(TEL_ERR_NOMEM, "out of memory");
        h->brecs[h->nbrecs++] = (pending_rec){ off, len, ev->ts_ms };
        h->events_recorded++;
        return TEL_OK;
    }
    tel_rec rec = { buf, len, ev->ts_ms };
    rc = tel__queue_append(h->q, &rec, 1);
    if (rc == TEL_OK)
        h->events_recorded++;
    return rc;
}

int tel_emit_event(tel *h, const char *event, const tel_prop *props, size_t nprops)
{
    return emit(h, event, props, nprops);
}

int tel_emit(const char *app, const char *event, const tel_prop *props, size_t nprops)
{
    /* Check the event before touching the disk: a bad call costs nothing. */
    tel_event_shape shape;
    int rc = tel__event_measure(event, props, nprops, &shape);
    if (rc != TEL_OK)
        return rc;
    tel_options *o = tel_options_new(app);
    if (!o)
        return TEL_ERR_INVALID;
    tel *h;
    rc = tel_open(&h, o);
    if (rc < 0)
        return rc;
    if (rc == TEL_OK)
        rc = emit_checked(h, event, props, nprops, &shape);
    tel_close(h);
    return rc;
}

int tel_batch_begin(tel *h)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (h->in_batch)
        return tel__fail(TEL_ERR_STATE, "a batch is already open");
    h->in_batch = 1;
    h->nbrecs = 0;
    tel__buf_clear(&h->batch);
    return TEL_OK;
}

int tel_batch_commit(tel *h)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (!h->in_batch)
        return tel__fail(TEL_ERR_STATE, "no batch is open");
    h->in_batch = 0;
    if (h->nbrecs == 0 || !h->q)
        return h->enabled ? TEL_OK : TEL_DISABLED;
    /* Events buffered before another process's forget or disable belong
     * to what it removed: they are forgotten with it. */
    if (tel__queue_stale(h->q)) {
        h->nbrecs = 0;
        tel__buf_clear(&h->batch);
        int rc = reopen(h);
        return rc == TEL_DISABLED ? TEL_DISABLED : rc < 0 ? rc : TEL_OK;
    }
    tel_rec *recs = malloc(h->nbrecs * sizeof *recs);
    if (!recs)
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < h->nbrecs; i++)
        recs[i] = (tel_rec){ h->batch.p + h->brecs[i].off, h->brecs[i].len, h->brecs[i].ts };
    int rc = tel__queue_append(h->q, recs, h->nbrecs);
    free(recs);
    h->nbrecs = 0;
    tel__buf_clear(&h->batch);
    return rc;
}

/* ------------------------------------------------------------- metrics */

/* The properties of one metric event; the label keys are built here, so
 * the props point into the same struct and it must not be copied. */
typedef struct metric_props {
    tel_prop props[TEL_MAX_PROPS];
    char keys[TEL_PROM_MAX_LABELS][TEL_MAX_KEY + 1];
    size_t n;
} metric_props;

/* Checks a sample's name, value and labels and lays them out as the
 * properties of SPEC.md's "Metric events".  Label values are checked
 * (length, UTF-8) by the event check, which never quotes them. */
static int metric_build(metric_props *m, const char *name, double value, const char *kind,
                        const char *const *pairs, size_t npairs)
{
    int rc = tel__prom_metric_name_check(name, name ? strnlen(name, TEL_PROM_MAX_NAME + 1) : 0);
    if (rc != TEL_OK)
        return rc;
    if (!isfinite(value))
        return tel__fail(TEL_ERR_INVALID, "metric '%s' value is NaN or infinite; tel records finite numbers only",
                         name);
    if (npairs > TEL_PROM_MAX_LABELS)
        return tel__fail(TEL_ERR_LIMIT, "metric '%s' has %zu labels (at most %d)", name, npairs,
                         TEL_PROM_MAX_LABELS);
    if (npairs > 0 && !pairs)
        return tel__fail(TEL_ERR_INVALID, "metric '%s' has %zu labels but no array of them", name, npairs);
    m->n = 0;
    m->props[m->n++] = (tel_prop)TEL_STR("name", name);
    m->props[m->n++] = (tel_prop)TEL_FLOAT("value", value);
    if (kind)
        m->props[m->n++] = (tel_prop)TEL_STR("kind", kind);
    for (size_t i = 0; i < npairs; i++) {
        const char *lname = pairs[2 * i], *lval = pairs[2 * i + 1];
        if (!lname || !lval)
            return tel__fail(TEL_ERR_INVALID, "metric '%s' label %zu has no %s", name, i + 1,
                             lname ? "value" : "name");
        if ((rc = tel__prom_label_name_check(lname, strnlen(lname, TEL_PROM_MAX_LABEL_NAME + 1))) != TEL_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(pairs[2 * j], lname) == 0)
                return tel__fail(TEL_ERR_INVALID, "metric '%s' label '%s' is given twice", name, lname);
        /* A newline has its escape in the exposition format; every other
         * control byte would break what tel-collect writes. */
        for (const char *c = lval; *c; c++)
            if (((unsigned char)*c < 0x20 && *c != '\n') || *c == 0x7f)
                return tel__fail(TEL_ERR_INVALID, "metric '%s' label '%s' value has a control byte at byte %zu",
                                 name, lname, (size_t)(c - lval));
        snprintf(m->keys[i], sizeof m->keys[i], TEL_PROM_LABEL_PREFIX "%s", lname);
        m->props[m->n++] = (tel_prop)TEL_STR(m->keys[i], lval);
    }
    return TEL_OK;
}

int tel_emit_metric(tel *h, const char *name, double value, const char *const *label_pairs,
                    size_t npairs)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    metric_props m;
    int rc = metric_build(&m, name, value, NULL, label_pairs, npairs);
    return rc == TEL_OK ? emit(h, "metric", m.props, m.n) : rc;
}

/* Builds the event of one parsed sample. */
static int metric_from_sample(metric_props *m, const tel_prom_sample *s)
{
    const char *pairs[2 * TEL_PROM_MAX_LABELS];
    for (size_t i = 0; i < s->nlabels; i++) {
        pairs[2 * i] = s->label_name[i];
        pairs[2 * i + 1] = s->label_value[i];
    }
    return metric_build(m, s->name, s->value, tel__prom_kind_name(s->kind), pairs, s->nlabels);
}

/* Encodes the event as emit() would, without storing it, so that a sample
 * too large for a record is found before anything of the text is. */
static int metric_fits(const tel *h, const metric_props *m)
{
    if (!h || !h->enabled || h->waiting_notice)
        return tel__event_check("metric", m->props, m->n);
    tel_event_in ev;
    memset(&ev, 0, sizeof ev);
    ev.ts_ms = tel__now_ms();
    ev.name = "metric";
    ev.props = m->props;
    ev.nprops = m->n;
    ev.anon = h->anon;
    ev.ctx = &h->ctx;
    uint8_t buf[TEL_MAX_FLAT_EVENT];
    size_t len;
    return tel__record_encode(&ev, buf, sizeof buf, &len);
}

/* Puts "line N: " before the detail of the failure that just happened. */
static int fail_at_line(int rc, unsigned line)
{
    char why[256];
    snprintf(why, sizeof why, "%s", tel_last_error());
    return tel__fail(rc, "line %u: %s", line, why);
}

/* About 12 KiB of scratch: on the heap, since a host may call this from
 * a thread with a small stack. */
typedef struct prom_scratch {
    tel_prom_sample s;
    metric_props m;
} prom_scratch;

/* Every line parsed and every event built and (for a recording handle)
 * encoded, so that a bad line anywhere means nothing is recorded and
 * nothing logged as recorded.  h NULL checks as a disabled handle would.
 * Returns TEL_OK or the first line's error. */
static int prom_check(const tel *h, prom_scratch *x, const char *text, size_t len)
{
    tel_prom_parser ps;
    int rc;
    tel__prom_init(&ps, text, len);
    while ((rc = tel__prom_next(&ps, &x->s)) == 1) {
        if ((rc = metric_from_sample(&x->m, &x->s)) != TEL_OK ||
            (rc = metric_fits(h, &x->m)) != TEL_OK)
            return fail_at_line(rc, x->s.line);
    }
    return rc < 0 ? rc : TEL_OK;
}

int tel__prometheus_check(const char *text, size_t len)
{
    if (!text && len)
        return tel__fail(TEL_ERR_INVALID, "no text");
    prom_scratch *x = malloc(sizeof *x);
    if (!x)
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    int rc = prom_check(NULL, x, text, len);
    free(x);
    return rc;
}

int tel_emit_prometheus(tel *h, const char *text, size_t len)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (!text && len)
        return tel__fail(TEL_ERR_INVALID, "no text");
    prom_scratch *x = malloc(sizeof *x);
    if (!x)
        return tel__fail(TEL_ERR_NOMEM, "out of memory");
    tel_prom_parser ps;
    int rc = prom_check(h, x, text, len);
    if (rc < 0 || !h->enabled || h->waiting_notice) {
        free(x);
        return rc < 0 ? rc : TEL_DISABLED;
    }

    /* Second pass: record.  What can still fail here (memory, random
     * numbers) is undone by forgetting what this call added to the batch. */
    int own_batch = !h->in_batch;
    size_t mark_recs = h->nbrecs, mark_len = h->batch.len;
    int mark_events = h->events_recorded;
    if (own_batch)
        tel_batch_begin(h);
    tel__prom_init(&ps, text, len);
    while ((rc = tel__prom_next(&ps, &x->s)) == 1) {
        if ((rc = metric_from_sample(&x->m, &x->s)) == TEL_OK)
            rc = emit(h, "metric", x->m.props, x->m.n);
        if (rc < 0) {
            rc = fail_at_line(rc, x->s.line);
            break;
        }
    }
    free(x);
    if (rc < 0) {
        h->nbrecs = mark_recs;
        h->batch.len = mark_len;
        h->events_recorded = mark_events;
        if (own_batch)
            h->in_batch = 0;
        return rc;
    }
    return own_batch ? tel_batch_commit(h) : TEL_OK;
}

/* ---------------------------------------------------- command lifecycle */

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static int option_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return 0;
    return 1;
}

/* A command name is one or more option-name words apart by single
 * spaces ("deploy", "db migrate"), each starting with a letter, digit or
 * '_': a path, a URL or any other argument passed by mistake (the first
 * operand, before the host knew it was a command) is refused. */
static int command_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > TEL_MAX_COMMAND || s[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++) {
        int word_start = i == 0 || s[i - 1] == ' ';
        if (s[i] == ' ' ? word_start : !name_char(s[i]) || (word_start && (s[i] == '-' || s[i] == '.')))
            return 0;
    }
    return 1;
}

int tel_command_started(tel *h, const char *command, const tel_option_use *options,
                        size_t noptions)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (!command_name_ok(command))
        return tel__fail(TEL_ERR_INVALID,
                         "command is not a command name (words of [A-Za-z0-9_.-] apart by single "
                         "spaces, at most %d bytes)",
                         TEL_MAX_COMMAND);
    /* Option names are joined into two strings, so a command with many
     * options still fits the 32-property limit; each name is checked to
     * be a name, so a value passed by mistake is refused, not recorded. */
    char cli[TEL_MAX_STRING + 1] = "", env[TEL_MAX_STRING + 1] = "";
    for (size_t i = 0; i < noptions; i++) {
        if (!option_name_ok(options[i].name))
            return tel__fail(TEL_ERR_INVALID, "option %zu is not a name (1-64 of [A-Za-z0-9_.-])", i);
        char *dst = options[i].from_env ? env : cli;
        size_t used = strlen(dst), add = strlen(options[i].name) + (used ? 1 : 0);
        if (used + add > TEL_MAX_STRING)
            return tel__fail(TEL_ERR_LIMIT, "option names exceed %d bytes", TEL_MAX_STRING);
        if (used)
            strcat(dst, ",");
        strcat(dst, options[i].name);
    }
    snprintf(h->command, sizeof h->command, "%s", command);
    h->command_started = 1;
    h->command_start_ms = tel__mono_ms();
    tel_prop props[3];
    size_t n = 0;
    props[n++] = (tel_prop)TEL_STR("command", h->command);
    if (cli[0])
        props[n++] = (tel_prop)TEL_STR("options", cli);
    if (env[0])
        props[n++] = (tel_prop)TEL_STR("env_options", env);
    return emit(h, "command.started", props, n);
}

int tel_command_exited(tel *h, int exit_code, const char *error_class, const char *error_message)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    tel_prop props[6];
    size_t n = 0;
    char clean[512];
    if (h->command_started)
        props[n++] = (tel_prop)TEL_STR("command", h->command);
    props[n++] = (tel_prop)TEL_INT("exit_code", exit_code);
    props[n++] = (tel_prop)TEL_BOOL("success", exit_code == 0);
    if (h->command_started)
        props[n++] = (tel_prop)TEL_INT("duration_ms", (int64_t)(tel__mono_ms() - h->command_start_ms));
    /* The class is a name the program chose, checked to be one.  The
     * message can carry anything the program printed: it is recorded only
     * when the host or the user asked for it (or in a debug run, which
     * sends nothing), and always sanitised. */
    if (error_class && option_name_ok(error_class))
        props[n++] = (tel_prop)TEL_STR("error_class", error_class);
    if (error_message && (h->debug || h->policy.error_detail == TEL_ERRORS_SANITIZED)) {
        tel__sanitize(error_message, clean, sizeof clean);
        props[n++] = (tel_prop)TEL_STR("error", clean);
    }
    return emit(h, "command.exited", props, n);
}

/* ---------------------------------------------------------------- spans */

/* Where a span is in its life; tel_span_end() reads it before anything
 * else, so a span ended twice is refused instead of freed twice. */
typedef enum span_state {
    SPAN_OPEN = 1,
    SPAN_ENDED,      /* recorded (or refused) by tel_span_end */
    SPAN_DROPPED     /* its run ended (the handle switched off): never recorded */
} span_state;

struct tel_span {
    tel *h;
    tel_span *prev, *next;    /* the handle's open spans, or its ended ones */
    span_state state;
    char name[TEL_MAX_NAME + 1];
    char parent[TEL_MAX_NAME + 1];   /* "" at the top level */
    char id[17], parent_id[17];      /* 16 hex digits; parent_id "" at the top */
    uint64_t start_ms;               /* monotonic */
};

/* A host that begins spans in a loop and never ends them (a daemon's
 * forgotten error path) would otherwise grow until tel_close. */
#define SPANS_OPEN_MAX 1024
/* Ended spans stay the handle's, so that ending one again reads memory
 * that is still ours and says so; their memory is reused, oldest first,
 * only once more than this many wait. */
#define SPANS_ENDED_KEPT 64

static void span_unlink(tel_span *s)
{
    s->h->nspans--;
    if (s->prev)
        s->prev->next = s->next;
    else
        s->h->spans = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* Appends an open span, just unlinked, to the handle's ended ones. */
static void span_retire(tel_span *s, span_state state)
{
    tel *h = s->h;
    s->state = state;
    s->next = NULL;
    s->prev = h->ended_last;
    if (h->ended_last)
        h->ended_last->next = s;
    else
        h->ended = s;
    h->ended_last = s;
    h->nended++;
}

/* A span to fill: the oldest ended one when enough wait, else a new one. */
static tel_span *span_alloc(tel *h)
{
    if (h->nended <= SPANS_ENDED_KEPT)
        return calloc(1, sizeof(tel_span));
    tel_span *s = h->ended;
    h->ended = s->next;
    if (h->ended)
        h->ended->prev = NULL;
    else
        h->ended_last = NULL;
    h->nended--;
    memset(s, 0, sizeof *s);
    return s;
}

static void spans_free(tel_span *s)
{
    while (s) {
        tel_span *next = s->next;
        free(s);
        s = next;
    }
}

/* The run ended (the handle switched off): its open spans are never
 * recorded, and ending one later is a no-op rather than an error. */
static void spans_drop(tel *h)
{
    while (h->spans) {
        tel_span *s = h->spans;
        span_unlink(s);
        span_retire(s, SPAN_DROPPED);
    }
}

int tel_span_start(tel_span **out, tel *h, const char *name, tel_span *parent)
{
    if (!out)
        return tel__fail(TEL_ERR_INVALID, "no output span");
    *out = NULL;
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    int rc = tel__event_name_valid(name, name ? strnlen(name, TEL_MAX_NAME + 1) : 0);
    if (rc != TEL_OK)
        return rc;
    if (parent && parent->h != h)
        return tel__fail(TEL_ERR_INVALID, "the parent span belongs to another handle");
    /* A parent whose run ended records nothing, nor do its children. */
    if (!tel_enabled(h) || (parent && parent->state == SPAN_DROPPED)) {
        tel__clear_error();
        return TEL_DISABLED;
    }
    if (parent && parent->state != SPAN_OPEN)
        return tel__fail(TEL_ERR_INVALID, "the parent span has ended");
    if (h->nspans >= SPANS_OPEN_MAX)
        return tel__fail(TEL_ERR_LIMIT, "too many open spans (%d): some are begun and never ended",
                         SPANS_OPEN_MAX);
    uint8_t rnd[8];
    if (tel__random(rnd, sizeof rnd) != 0)
        return tel__fail(TEL_ERR_IO, "no random numbers available for a span id");
    tel_span *s = span_alloc(h);
    if (!s)
        return tel__fail(TEL_ERR_NOMEM, "out of memory for a span");
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        s->id[2 * i] = hex[rnd[i] >> 4];
        s->id[2 * i + 1] = hex[rnd[i] & 15];
    }
    s->h = h;
    s->state = SPAN_OPEN;
    strcpy(s->name, name);
    /* The parent's name and id are copied, so a parent that ends first
     * leaves nothing dangling. */
    if (parent) {
        strcpy(s->parent, parent->name);
        strcpy(s->parent_id, parent->id);
    }
    s->start_ms = tel__mono_ms();
    s->next = h->spans;
    if (h->spans)
        h->spans->prev = s;
    h->spans = s;
    h->nspans++;
    *out = s;
    return TEL_OK;
}

tel_span *tel_span_begin(tel *h, const char *name, tel_span *parent)
{
    tel_span *s;
    tel_span_start(&s, h, name, parent);
    return s;
}

int tel_span_end(tel_span *s, int status)
{
    if (!s)
        return TEL_DISABLED;
    if (s->state == SPAN_DROPPED) {
        s->state = SPAN_ENDED;
        tel__clear_error();
        return TEL_DISABLED;
    }
    if (s->state != SPAN_OPEN)
        return tel__fail(TEL_ERR_STATE, "the span '%s' has already ended", s->name);
    tel *h = s->h;
    uint64_t now = tel__mono_ms();
    tel_prop props[8];
    size_t n = 0;
    props[n++] = (tel_prop)TEL_STR("name", s->name);
    props[n++] = (tel_prop)TEL_INT("duration_ms", (int64_t)(now - s->start_ms));
    props[n++] = (tel_prop)TEL_INT("start_ms", (int64_t)(s->start_ms - h->run_mono_ms));
    props[n++] = (tel_prop)TEL_STR("span_id", s->id);
    if (s->parent[0]) {
        props[n++] = (tel_prop)TEL_STR("parent", s->parent);
        props[n++] = (tel_prop)TEL_STR("parent_id", s->parent_id);
    }
    if (h->command_started)
        props[n++] = (tel_prop)TEL_STR("command", h->command);
    props[n++] = (tel_prop)TEL_INT("status", status);
    /* The properties point into the span: it is retired only once recorded. */
    int rc = emit(h, "span", props, n);
    span_unlink(s);
    span_retire(s, SPAN_ENDED);
    return rc;
}

/* ------------------------------------------------------ delivery, notice */

/*
 * Reaps the tel-sync this handle started if it has finished, without
 * waiting for it.  Only that pid is waited for, never another child of
 * the host's.
 */
static void reap_child(tel *h)
{
    if (h->child <= 0)
        return;
    pid_t r = waitpid(h->child, NULL, WNOHANG);
    /* Reaped, or not ours any more (the host reaped it, or ignores
     * SIGCHLD): forget it either way. */
    if (r == h->child || (r < 0 && errno != EINTR))
        h->child = 0;
}

static int stamp_and_spawn(tel *h, const char *stamp, unsigned min_interval_s);

static int any_request(void *ud, tel_erasure_req *r)
{
    (void)r;   /* the walk's callback shape: that one exists is enough */
    *(int *)ud = 1;
    return 1;
}

/*
 * A handle that records nothing (the user's opt-out, the host's off)
 * still starts a tel-sync while a forget's erasure requests wait: turning
 * telemetry off does not cancel one (README, "Erasure"), and no one else
 * may ever run tel-sync for this app.  Stamped in the requests' own
 * directory, where the queue may be gone; not in a debug run.
 */
static int spawn_for_erasure(tel *h, unsigned min_interval_s)
{
    char stamp[TEL_PATH_MAX + 64];
    int waiting = 0;
    if (h->dir_rc != TEL_OK || h->debug ||
        tel__erasure_each(h->state_dir, any_request, &waiting, NULL) != TEL_OK || !waiting ||
        (size_t)snprintf(stamp, sizeof stamp, "%s/" TEL_ERASURE_DIR "/.spawn.stamp", h->state_dir) >=
            sizeof stamp)
        return TEL_DISABLED;
    return stamp_and_spawn(h, stamp, min_interval_s);
}

int tel_spawn_sync(tel *h, unsigned min_interval_s)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    /* One sync at a time per handle: a second would only find the queue
     * locked, and a long-running host keeps at most one child.  Reaped
     * first, so that a handle switched off keeps no finished one either. */
    reap_child(h);
    if (h->child > 0)
        return TEL_DISABLED;
    if (!h->enabled)
        return spawn_for_erasure(h, min_interval_s);
    if (h->waiting_notice || h->debug || !h->q)
        return TEL_DISABLED;
    if (h->in_batch && tel_batch_commit(h) != TEL_OK) {
        /* Those events are lost; what is queued already still deserves
         * its delivery, so the spawn goes on. */
    }
    tel_queue_stats s;
    if (tel__queue_stats(h->q, &s) != TEL_OK || s.count == 0)
        return TEL_DISABLED;
    /* A collector that asked us to wait is not asked again early. */
    tel_backoff b;
    if (tel__backoff_load(h->q, &b) == TEL_OK && b.until_ms > tel__now_ms())
        return TEL_DISABLED;
    char stamp[TEL_PATH_MAX + 32];
    snprintf(stamp, sizeof stamp, "%s/spawn.stamp", tel__queue_dir(h->q));
    return stamp_and_spawn(h, stamp, min_interval_s);
}

/*
 * Starts a tel-sync unless the stamp says one was started less than
 * min_interval_s (0: 600) ago.  The stamp's mtime is that time; a stat is
 * all a typical run pays.
 */
static int stamp_and_spawn(tel *h, const char *stamp, unsigned min_interval_s)
{
    if (min_interval_s == 0)
        min_interval_s = 600;
    struct stat st;
    time_t now = time(NULL);
    if (lstat(stamp, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime <= now &&
        now - st.st_mtime < (time_t)min_interval_s)
        return TEL_DISABLED;
    int fd = tel__open_file(stamp, O_WRONLY | O_CREAT, 0600);
    if (fd < 0)
        return tel__fail(TEL_ERR_IO, "cannot write the sync stamp");
    futimens(fd, NULL);
    close(fd);
    /* The stamp says a sync was started: when none could be (no tel-sync
     * where it should be), the next run tries again instead of waiting
     * out the interval with nothing sent. */
    pid_t pid = 0;
    int rc = tel__spawn_sync(h->app, h->opts->state_dir ? h->state_dir : NULL, &pid);
    if (rc != TEL_OK)
        unlink(stamp);
    else
        h->child = pid;
    return rc;
}

int tel_notice_due(tel *h)
{
    if (!h || !h->enabled || h->ctx.ci)
        return 0;
    return !notice_recorded(h);
}

int tel_notice_shown(tel *h)
{
    if (!h)
        return tel__fail(TEL_ERR_INVALID, "no handle");
    if (!h->enabled)
        return TEL_DISABLED;
    char path[TEL_PATH_MAX + 32];
    if (notice_path(h, path, sizeof path) != 0)
        return tel__fail(TEL_ERR_NOSTATE, "state path too long");
    int fd = tel__open_file(path, O_WRONLY | O_CREAT, 0600);
    if (fd < 0)
        return tel__fail(TEL_ERR_NOSTATE, "cannot record that the notice was shown");
    char line[32];
    int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)tel__now_ms());
    int ok = write(fd, line, (size_t)n) == n;
    close(fd);
    h->waiting_notice = 0;
    return ok ? TEL_OK : tel__fail(TEL_ERR_IO, "cannot record that the notice was shown");
}

/* ------------------------------------------------------- user controls */

int tel_set_enabled(const char *app, int enabled)
{
    int rc = tel__app_check(app);
    if (rc != TEL_OK)
        return rc;
    rc = tel__config_set(app, "enabled", enabled ? "true" : "false");
    if (rc != TEL_OK || enabled)
        return rc;
    char dir[TEL_PATH_MAX];
    if (tel__state_dir(app, dir, sizeof dir) != TEL_OK)
        return TEL_OK;
    return purge_existing(dir);
}

int tel_sanitize(const char *in, char *out, size_t size)
{
    if (!out || size == 0)
        return tel__fail(TEL_ERR_INVALID, "no output buffer");
    tel__sanitize(in, out, size);
    return TEL_OK;
}

/* The host's endpoint and token recorded in the queue about to be
 * forgotten: the collector that got the old id's events, whatever the
 * next host run records in the new queue. */
static void recorded_collector(const char *dir, tel_erasure_req *r)
{
    tel_queue *q;
    size_t len;
    if (tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) != TEL_OK)
        return;
    if (tel__queue_meta_get(q, TEL_META_ENDPOINT, r->endpoint, sizeof r->endpoint - 1, &len) != TEL_OK ||
        len >= sizeof r->endpoint)
        len = 0;
    r->endpoint[len] = '\0';
    if (tel__queue_meta_get(q, TEL_META_TOKEN, r->token, sizeof r->token - 1, &len) != TEL_OK ||
        len >= sizeof r->token)
        len = 0;
    r->token[len] = '\0';
    tel__queue_close(q);
}

/*
 * When the host offered erasure and there is a lasting id, stores the
 * request to erase it, durably, before anything is deleted: a forget that
 * cannot keep that promise deletes nothing and says why.  Without a
 * lasting id (none yet, or a directory in place of the cookie) there is
 * nothing a collector could find.  Declarations that cannot be read may
 * or may not offer erasure: nothing is asked on that guess.
 */
static int leave_erasure(const char *dir)
{
    tel_decls d;
    if (tel__decls_load(dir, &d) != TEL_OK || !d.erasure)
        return TEL_OK;
    /* On the stack: tel_forget may run on two threads at once. */
    tel_erasure_req r;
    int lasting = 0;
    memset(&r, 0, sizeof r);
    tel__cookie_peek(dir, r.anon, &lasting);
    if (!lasting)
        return TEL_OK;
    recorded_collector(dir, &r);
    int rc = tel__erasure_save(dir, &r);
    explicit_bzero(&r, sizeof r);
    return rc;
}

int tel_forget(const char *app)
{
    int rc = tel__app_check(app);
    if (rc != TEL_OK)
        return rc;
    char dir[TEL_PATH_MAX];
    if ((rc = tel__state_dir(app, dir, sizeof dir)) != TEL_OK)
        return rc;
    if ((rc = leave_erasure(dir)) != TEL_OK)
        return rc;
    return purge_existing(dir);
}

int tel_status_line(const char *app, char *buf, size_t size)
{
    if (!buf || size == 0)
        return tel__fail(TEL_ERR_INVALID, "no buffer");
    buf[0] = '\0';
    int rc = tel__app_check(app);
    if (rc != TEL_OK)
        return rc;
    char dir[TEL_PATH_MAX];
    int have_dir = tel__state_dir(app, dir, sizeof dir) == TEL_OK;
    tel_decls d;
    tel_host_settings host = { -1, TEL_SRC_HOST, NULL, NULL, -1, NULL, TEL_ERRORS_CLASS };
    if (have_dir && tel__decls_load(dir, &d) == TEL_OK)
        host.decls = &d;
    tel_policy p;
    int prc = tel__policy_resolve(&p, app, &host, NULL);
    explicit_bzero(p.token, sizeof p.token);
    uint64_t count = 0;
    if (have_dir) {
        tel_queue *q;
        tel_queue_stats s;
        if (tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) == TEL_OK) {
            if (tel__queue_stats(q, &s) == TEL_OK)
                count = s.count;
            tel__queue_close(q);
        }
    }
    int why = p.enabled_why[0] && strcmp(p.enabled_why, tel__source_name(p.enabled_src)) != 0;
    snprintf(buf, size, "telemetry is %s (decided by %s%s%s)%s; %llu event%s queued",
             p.enabled ? "on" : "off", tel__source_name(p.enabled_src),
             why ? ": " : "", why ? p.enabled_why : "",
             prc == TEL_ERR_CONFIG ? "; telemetry.conf has an error" : "",
             (unsigned long long)count, count == 1 ? "" : "s");
    return TEL_OK;
}
