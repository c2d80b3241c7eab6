/* SPDX-License-Identifier: MIT */
/*
 * libqueue/queue.c - the crash-safe event queue, an LMDB environment in
 * <state>/telemetry/.
 *
 *   telemetry/
 *   +-- data.mdb     B-trees "events" and "meta"
 *   +-- lock.mdb     LMDB's reader table and writer mutex (no data)
 *
 *   "events": key = sequence number, 8 bytes big-endian (so byte order is
 *             numeric order and appends go to the right edge of the tree);
 *             value = one record, exactly as format/SPEC.md describes.
 *   "meta":   key = short ASCII name, value = a small binary value:
 *             "next"    u64 next sequence number (never reused, even after
 *                       a purge, so an old pending batch can never match
 *                       new events)
 *             "bytes"   u64 sum of the stored record sizes
 *             "dropped" u64 events dropped locally since the last
 *                       accepted batch
 *             other keys belong to the host settings and tel-sync.
 *
 * Every commit writes the data pages and fdatasync()s them; by default the
 * meta page is written but not synced (MDB_NOMETASYNC), which halves the
 * syncs per event.  A killed process loses nothing either way, because a
 * commit is complete in the page cache before it returns; a power cut may
 * take back the last commit, never corrupt the tree.  README.md explains
 * the measurement behind that choice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"
#include "syncstate.h"

/* The map is virtual address space, not disk: the file only grows as
 * pages are used.  64 MiB holds the 4 MiB default cap many times over
 * (copy-on-write needs free pages for old readers), and hosts that raise
 * the byte cap get a map sized from it. */
#define MAP_MIN (64ull * 1024 * 1024)

/*
 * One LMDB environment per queue file per process (lmdb.h: opening the
 * same environment twice in a process and closing either drops the
 * process's fcntl locks on lock.mdb), shared by every handle, tel_emit(),
 * tel_status_line(), tel_set_enabled() and tel_forget() in any thread,
 * and closed with its last user.  An environment whose data.mdb was
 * replaced on disk (forget, disable, a damaged file moved aside) is taken
 * off the list: its users keep it until they close, new opens get the
 * new file.  A read-only environment is shared by readers only; a writer
 * arriving while one is open gets its own (the one case of two).
 */
typedef struct shared_env {
    struct shared_env *next;
    int listed;               /* in `envs`, found by new opens */
    int refs;                 /* guarded by envs_lock */
    int rdonly;               /* opened MDB_RDONLY */
    MDB_env *env;
    MDB_dbi events;
    MDB_dbi meta;
    dev_t dev;                /* of data.mdb as opened */
    ino_t ino;
    /* Read-held by every transaction, write-held to change the map size,
     * which LMDB allows only while the process has no transaction open. */
    pthread_rwlock_t resize;
    uintptr_t map_lo, map_hi; /* our mapping of data.mdb, once looked up (envs_lock) */
    char *dir;                /* the queue directory (allocated: most are short) */
} shared_env;

/* Guards the list, the reference counts and the map ranges.  A rwlock,
 * not a mutex, only so that the emit path binds one family of locking
 * calls: a one-event process pays for each libc symbol it resolves. */
static pthread_rwlock_t envs_lock = PTHREAD_RWLOCK_INITIALIZER;
static shared_env *envs;

struct tel_queue {
    shared_env *se;
    tel_caps caps;
    int readonly;
    char dir[TEL_PATH_MAX];
    char recovered[64];       /* name a damaged data.mdb was kept under, or "" */
};

static void put_u64be(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64be(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

static int lmdb_fail(int rc, const char *what)
{
    if (rc == ENOMEM)
        return tel__fail(TEL_ERR_NOMEM, "queue: out of memory (%s)", what);
    if (rc == EACCES || rc == EROFS || rc == EPERM)
        return tel__fail(TEL_ERR_NOSTATE, "queue: %s: %s", what, mdb_strerror(rc));
    return tel__fail(TEL_ERR_IO, "queue: %s: %s", what, mdb_strerror(rc));
}

/*
 * Begins a transaction.  Another process with larger caps may have grown
 * the file past the map this process opened with; LMDB then refuses every
 * transaction with MDB_MAP_RESIZED until the process adopts the size now
 * on disk (possible only while it has no transaction open, as here).
 */
static int txn_begin(tel_queue *q, unsigned flags, MDB_txn **txn)
{
    shared_env *se = q->se;
    pthread_rwlock_rdlock(&se->resize);
    int rc = mdb_txn_begin(se->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        pthread_rwlock_unlock(&se->resize);
        pthread_rwlock_wrlock(&se->resize);
        mdb_env_set_mapsize(se->env, 0);
        se->map_hi = 0; /* the map moved */
        pthread_rwlock_unlock(&se->resize);
        pthread_rwlock_rdlock(&se->resize);
        rc = mdb_txn_begin(se->env, NULL, flags, txn);
    }
    if (rc)
        pthread_rwlock_unlock(&se->resize);
    return rc;
}

/* Ends a transaction begun by txn_begin (the only way to end one). */
static int txn_commit(tel_queue *q, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&q->se->resize);
    return rc;
}

static void txn_abort(tel_queue *q, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&q->se->resize);
}

/* ---------------------------------------------------------------- meta */

static int meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out)
{
    MDB_val k = { strlen(key), (void *)key }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    *out = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size != 8)
        return 0; /* a damaged counter restarts from zero rather than failing */
    *out = get_u64be(v.mv_data);
    return 0;
}

static int meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t val)
{
    uint8_t b[8];
    put_u64be(b, val);
    MDB_val k = { strlen(key), (void *)key }, v = { 8, b };
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* ------------------------------------------------------------- opening */

/*
 * LMDB maps data.mdb and trusts it: a file cut short would turn a read
 * past its end into SIGBUS inside the host.  So before trusting a file we
 * check its header ourselves, and after opening we check that the file
 * really holds every page the meta page claims.
 */
/*
 * Returns 1 when the header is fine (or there is no file yet), 0 when the
 * file is damaged, and -1 with *err set when it could not be looked at.
 * The difference matters: a file we failed to read (EIO, EMFILE, EACCES
 * for a moment) may hold every queued event, and moving it aside as
 * damage would lose them all; only what we read and found wrong goes.
 */
static int data_header_ok(const char *path, int *err)
{
    int fd = tel__open_file(path, O_RDONLY, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        if (errno == EINVAL)
            return 0; /* a planted symlink, FIFO, socket or directory: damage, see try_open */
        *err = errno;
        return -1;
    }
    struct stat st;
    uint8_t hdr[24];
    int ok = 0;
    if (fstat(fd, &st) != 0) {
        *err = errno;
        ok = -1;
    } else if (S_ISREG(st.st_mode)) {
        ssize_t got;
        if (st.st_size == 0)
            ok = 1; /* LMDB initialises an empty file */
        else if (st.st_size < 4096)
            ok = 0;
        else if ((got = pread(fd, hdr, sizeof hdr, 0)) < 0) {
            *err = errno;
            ok = -1;
        } else if (got == (ssize_t)sizeof hdr) {
            /* page header (16 bytes on 64-bit), then the meta magic and
             * format version, both native-endian uint32. */
            uint32_t magic, version;
            memcpy(&magic, hdr + 16, 4);
            memcpy(&version, hdr + 20, 4);
            ok = magic == 0xBEEFC0DEu && version == 1;
        }
    }
    close(fd);
    return ok;
}

/* 1 when the file holds every page the meta page claims, 0 when it is
 * short (damage), -1 with *err set when that could not be checked. */
static int env_size_ok(MDB_env *env, struct stat *fst, int *err)
{
    MDB_envinfo info;
    MDB_stat st;
    mdb_filehandle_t fd;
    int rc = mdb_env_info(env, &info);
    if (rc == 0)
        rc = mdb_env_stat(env, &st);
    if (rc == 0)
        rc = mdb_env_get_fd(env, &fd);
    if (rc != 0) {
        *err = rc;
        return -1;
    }
    /* The file LMDB holds open, not the name: a concurrent forget may
     * have unlinked the name already. */
    if (fstat(fd, fst) != 0) {
        *err = errno;
        return -1;
    }
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    return (uint64_t)fst->st_size >= need;
}

/* Keeps a damaged file beside the queue; records its new name in out
 * (the file name only, never a path). */
static void move_aside(const char *path, char *out, size_t size)
{
    char aside[TEL_PATH_MAX + 64];
    unsigned long long ms = (unsigned long long)tel__now_ms();
    snprintf(aside, sizeof aside, "%s.corrupt-%llu", path, ms);
    if (rename(path, aside) == 0)
        snprintf(out, size, "data.mdb.corrupt-%llu", ms);
    else if (unlink(path) == 0)
        snprintf(out, size, "(removed)");
}

/* try_open's answer when lock.mdb is not a regular file and stays so. */
#define LOCK_NOT_FILE (-1)

static int try_open(tel_queue *q, int mode, int *bad_data)
{
    char data_path[TEL_PATH_MAX + 16], lock_path[TEL_PATH_MAX + 16];
    snprintf(data_path, sizeof data_path, "%s/data.mdb", q->dir);
    snprintf(lock_path, sizeof lock_path, "%s/lock.mdb", q->dir);
    *bad_data = 0;
    /* LMDB opens its files by name and would follow a planted symlink to
     * write somewhere else; the link itself is removed, its target never
     * touched.  (A symlinked data.mdb fails data_header_ok and is moved
     * aside as damage.) */
    /* The same for a FIFO, a socket or a directory there, which LMDB
     * would open blocking or fail on; a reader never removes anything. */
    struct stat lst;
    if (lstat(lock_path, &lst) == 0 && !S_ISREG(lst.st_mode)) {
        if (q->readonly || (unlink(lock_path) != 0 && rmdir(lock_path) != 0))
            return LOCK_NOT_FILE;
    }
    int err = EIO;
    int hdr = data_header_ok(data_path, &err);
    if (hdr < 0)
        return err;
    if (hdr == 0) {
        *bad_data = 1;
        return MDB_INVALID;
    }

    shared_env *se = q->se;
    int rc = mdb_env_create(&se->env);
    if (rc)
        return rc;
    uint64_t map = q->caps.max_bytes * 16;
    if (map < MAP_MIN)
        map = MAP_MIN;
    mdb_env_set_mapsize(se->env, (size_t)map);
    mdb_env_set_maxdbs(se->env, 2);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (!q->caps.full_sync)
        flags |= MDB_NOMETASYNC;
    if (mode & TEL_Q_READONLY)
        flags |= MDB_RDONLY;
    rc = mdb_env_open(se->env, q->dir, flags, 0600);
    if (rc == 0) {
        struct stat fst;
        int size_ok = env_size_ok(se->env, &fst, &err);
        se->dev = fst.st_dev;
        se->ino = fst.st_ino;
        if (size_ok < 0) {
            rc = err;
        } else if (size_ok == 0) {
            *bad_data = 1;
            rc = MDB_CORRUPTED;
        }
    }
    if (rc == 0) {
        MDB_txn *txn;
        unsigned dflags = (mode & TEL_Q_READONLY) ? 0 : MDB_CREATE;
        rc = txn_begin(q, (mode & TEL_Q_READONLY) ? MDB_RDONLY : 0, &txn);
        if (rc == 0) {
            rc = mdb_dbi_open(txn, "events", dflags, &se->events);
            if (rc == 0)
                rc = mdb_dbi_open(txn, "meta", dflags, &se->meta);
            if (rc == 0)
                rc = txn_commit(q, txn);
            else
                txn_abort(q, txn);
            if (rc == MDB_INCOMPATIBLE)
                *bad_data = 1;
        }
    }
    if (rc != 0) {
        mdb_env_close(se->env);
        se->env = NULL;
    }
    return rc;
}

static int is_damage(int rc)
{
    return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == MDB_CORRUPTED ||
           rc == MDB_PANIC || rc == MDB_INCOMPATIBLE || rc == MDB_BAD_DBI ||
           rc == EINVAL;
}

/* Takes the env off the list (envs_lock held): new opens will not find
 * it, its users keep it. */
static void env_unlist(shared_env *se)
{
    shared_env **pp = &envs;
    while (*pp != se)
        pp = &(*pp)->next;
    *pp = se->next;
    se->listed = 0;
}

/* Drops one reference (envs_lock held); the last closes the env. */
static void env_release(shared_env *se)
{
    if (!se || --se->refs > 0)
        return;
    if (se->listed)
        env_unlist(se);
    if (se->env)
        mdb_env_close(se->env);
    free(se->dir);
    free(se);
}

/* The listed env of q's directory that still holds the data.mdb on disk
 * and suits the mode, with a reference taken; NULL when there is none
 * (envs_lock held). */
static shared_env *env_find(tel_queue *q)
{
    for (shared_env *se = envs; se; se = se->next) {
        if (strcmp(se->dir, q->dir) != 0)
            continue;
        char path[TEL_PATH_MAX + 16];
        struct stat st;
        snprintf(path, sizeof path, "%s/data.mdb", q->dir);
        if (lstat(path, &st) != 0 || st.st_dev != se->dev || st.st_ino != se->ino ||
            (se->rdonly && !q->readonly)) {
            env_unlist(se);
            return NULL;
        }
        se->refs++;
        return se;
    }
    return NULL;
}

/* Gives q the process's env of its queue, opening (and listing) one when
 * there is none, with the damage recovery below (envs_lock held). */
static int share_or_open(tel_queue *q, int mode)
{
    if ((q->se = env_find(q)) != NULL)
        return TEL_OK;
    size_t dlen = strlen(q->dir) + 1;
    shared_env *se = calloc(1, sizeof *se);
    char *dir = malloc(dlen);
    if (!se || !dir) {
        free(se);
        free(dir);
        return tel__fail(TEL_ERR_NOMEM, "queue: out of memory");
    }
    memcpy(dir, q->dir, dlen);
    se->resize = (pthread_rwlock_t)PTHREAD_RWLOCK_INITIALIZER;
    se->refs = 1;
    se->rdonly = q->readonly;
    se->dir = dir;
    q->se = se;

    int bad_data = 0;
    int rc = try_open(q, mode, &bad_data);
    /* A concurrent forget may unlink the files between our look and
     * LMDB's open: that is a fresh start, not a failure. */
    for (int attempt = 0; rc == ENOENT && !q->readonly && attempt < 3; attempt++)
        rc = try_open(q, mode, &bad_data);
    /*
     * A damaged queue must never take the host down or stop telemetry for
     * good: the broken file is kept beside the queue for a human to look
     * at, and a fresh queue starts.  A bad lock file holds no events, so
     * it is replaced first; the data file goes only if that was not it.
     */
    for (int attempt = 0; rc != 0 && is_damage(rc) && !q->readonly && attempt < 2; attempt++) {
        char path[TEL_PATH_MAX + 16];
        if (bad_data || attempt == 1) {
            snprintf(path, sizeof path, "%s/data.mdb", q->dir);
            move_aside(path, q->recovered, sizeof q->recovered);
        }
        snprintf(path, sizeof path, "%s/lock.mdb", q->dir);
        unlink(path);
        rc = try_open(q, mode, &bad_data);
    }
    if (rc != 0) {
        /* Read-only, a missing file or a file whose first commit never
         * completed (no trees yet, as after a power cut during the very
         * first emit) is simply an empty queue. */
        int empty = q->readonly && (rc == ENOENT || rc == MDB_NOTFOUND);
        int code = empty ? tel__fail(TEL_ERR_NOTFOUND, "queue: no queue yet")
                   : rc == LOCK_NOT_FILE ? tel__fail(TEL_ERR_NOSTATE, "queue: lock.mdb is not a regular file")
                                         : lmdb_fail(rc, "open");
        env_release(se);
        q->se = NULL;
        return code;
    }
    if (!q->readonly) {
        int dead = 0;
        mdb_reader_check(se->env, &dead);
    }
    se->next = envs;
    envs = se;
    se->listed = 1;
    return TEL_OK;
}

int tel__queue_open(tel_queue **out, const char *state_dir, const tel_caps *caps, int mode)
{
    *out = NULL;
    tel_queue *q = calloc(1, sizeof *q);
    if (!q)
        return tel__fail(TEL_ERR_NOMEM, "queue: out of memory");
    q->caps.max_events = caps && caps->max_events ? caps->max_events : TEL_CAPS_DEFAULT_EVENTS;
    q->caps.max_bytes = caps && caps->max_bytes ? caps->max_bytes : TEL_CAPS_DEFAULT_BYTES;
    q->caps.max_age_ms = caps && caps->max_age_ms ? caps->max_age_ms : TEL_CAPS_DEFAULT_AGE_MS;
    q->caps.full_sync = caps ? caps->full_sync : 0;
    q->readonly = (mode & TEL_Q_READONLY) != 0;
    if ((size_t)snprintf(q->dir, sizeof q->dir, "%s/" TEL_QUEUE_DIR, state_dir) >= sizeof q->dir) {
        free(q);
        return tel__fail(TEL_ERR_NOSTATE, "queue: state path too long");
    }

    /* tel__mkdir_private never follows a symlink in place of the app's
     * state directory, so no emit can have queued anything through one;
     * following it here would let tel-sync lock, log and delete in a
     * queue somewhere else. */
    struct stat st;
    if (lstat(state_dir, &st) == 0 && S_ISLNK(st.st_mode)) {
        free(q);
        return tel__fail(TEL_ERR_NOSTATE, "queue: the state directory is a symlink");
    }
    int have_dir = lstat(q->dir, &st) == 0;
    int lstat_errno = errno;
    if (!have_dir || !S_ISDIR(st.st_mode)) {
        if (!(mode & TEL_Q_CREATE) || q->readonly) {
            free(q);
            if (!have_dir && lstat_errno == ENOENT)
                return tel__fail(TEL_ERR_NOTFOUND, "queue: no queue yet");
            return tel__fail(TEL_ERR_NOSTATE, "queue: the queue path is not a directory");
        }
        int rc = tel__mkdir_private(q->dir);
        if (rc != TEL_OK) {
            free(q);
            return rc;
        }
        if (lstat(q->dir, &st) != 0) {
            free(q);
            return tel__fail(TEL_ERR_NOSTATE, "queue: the queue directory vanished");
        }
    }
    /* Someone else's directory could be read or swapped under us: refuse
     * it.  Our own with loose permissions is tightened. */
    if (st.st_uid != geteuid()) {
        free(q);
        return tel__fail(TEL_ERR_NOSTATE, "queue: the queue directory belongs to another user");
    }
    if ((st.st_mode & 077) && !q->readonly)
        chmod(q->dir, 0700);

    pthread_rwlock_wrlock(&envs_lock);
    int rc = share_or_open(q, mode);
    pthread_rwlock_unlock(&envs_lock);
    if (rc != TEL_OK) {
        free(q);
        return rc;
    }
    *out = q;
    return TEL_OK;
}

void tel__queue_close(tel_queue *q)
{
    if (!q)
        return;
    pthread_rwlock_wrlock(&envs_lock);
    env_release(q->se);
    pthread_rwlock_unlock(&envs_lock);
    free(q);
}

/*
 * Runs before every emit, so it asks for the file's identity and nothing
 * else.  A stat() that reads a file's change time makes the next write to
 * it take a fresh fine-grained timestamp (Linux 6.13 and later, on file
 * systems with multigrain timestamps such as ext4 and XFS): every commit
 * then dirtied the inode, and every fdatasync() wrote the inode block as
 * well as the pages.  Unqueried, timestamps stay at the clock tick, and
 * commits within one tick write the inode once.
 */
int tel__queue_stale(const tel_queue *q)
{
    char path[TEL_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/data.mdb", q->dir);
    return tel__file_replaced(path, q->se->dev, q->se->ino);
}

const char *tel__queue_dir(const tel_queue *q)
{
    return q->dir;
}

/* Looks our mapping of data.mdb up in /proc/self/maps (envs_lock held,
 * resize read-held); leaves map_hi 0 when it is not found. */
static void map_lookup(tel_queue *q)
{
    shared_env *se = q->se;
    char want[TEL_PATH_MAX + 16];
    int wl = snprintf(want, sizeof want, "%s/data.mdb", q->dir);
    if (wl <= 0 || (size_t)wl >= sizeof want)
        return;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return;
    char line[TEL_PATH_MAX + 256];
    while (fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path || strncmp(path, want, (size_t)wl) != 0 ||
            (path[wl] != '\n' && path[wl] != ' ' && path[wl] != '\0'))
            continue;
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && hi > lo) {
            se->map_lo = lo;
            se->map_hi = hi;
            break;
        }
    }
    fclose(f);
}

void tel__queue_release_pages(tel_queue *q)
{
    /*
     * LMDB does not say where it mapped the file (mdb_env_info reports an
     * address only for MDB_FIXEDMAP), so the mapping of our data.mdb is
     * looked up in /proc/self/maps.  The map is read-only and shared:
     * dropping our page table entries loses nothing (a later read faults
     * the page back in from the page cache), even while another thread
     * reads inside a transaction.  The map moves only when its size is
     * changed, which the resize lock keeps out meanwhile (and which
     * forgets the range looked up).
     */
    if (!q || !q->se->env)
        return;
    shared_env *se = q->se;
    pthread_rwlock_wrlock(&envs_lock);
    pthread_rwlock_rdlock(&se->resize);
    if (se->map_hi == 0)
        map_lookup(q);
    if (se->map_hi != 0)
        madvise((void *)se->map_lo, se->map_hi - se->map_lo, MADV_DONTNEED);
    pthread_rwlock_unlock(&se->resize);
    pthread_rwlock_unlock(&envs_lock);
}

const char *tel__queue_recovered(const tel_queue *q)
{
    return q && q->recovered[0] ? q->recovered : NULL;
}

/* -------------------------------------------------------------- append */

/* The time of a stored record, or 0 if it does not decode (it is then the
 * first to go: an undecodable record can never be delivered anyway). */
static uint64_t record_ts(const MDB_val *v)
{
    tel_record r;
    if (tel__record_decode(&r, v->mv_data, v->mv_size) != TEL_OK)
        return 0;
    return r.ts_ms;
}

/*
 * Drops the oldest records until `incoming` more events of `incoming_bytes`
 * fit, and every record older than the age cap.  `force` drops at least
 * that many more, to free pages when the map is full.
 */
static int evict(tel_queue *q, MDB_txn *txn, uint64_t incoming, uint64_t incoming_bytes,
                 uint64_t force, uint64_t *bytes, uint64_t *dropped)
{
    MDB_stat st;
    int rc = mdb_stat(txn, q->se->events, &st);
    if (rc)
        return rc;
    uint64_t count = st.ms_entries;
    uint64_t now = tel__now_ms();
    uint64_t cutoff = now > q->caps.max_age_ms ? now - q->caps.max_age_ms : 0;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, q->se->events, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    while (count > 0 && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        int over = count + incoming > q->caps.max_events ||
                   *bytes + incoming_bytes > q->caps.max_bytes || force > 0;
        if (!over && record_ts(&v) >= cutoff)
            break;
        *bytes = *bytes > v.mv_size ? *bytes - v.mv_size : 0;
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
        count--;
        (*dropped)++;
        if (force)
            force--;
    }
    mdb_cursor_close(cur);
    if (count == 0)
        *bytes = 0; /* resynchronise the counter whenever the queue empties */
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int append_txn(tel_queue *q, const tel_rec *recs, size_t n, uint64_t force)
{
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        return rc;
    uint64_t next, bytes, dropped, incoming_bytes = 0;
    if ((rc = meta_get_u64(txn, q->se->meta, TEL_META_NEXT, &next)) ||
        (rc = meta_get_u64(txn, q->se->meta, TEL_META_BYTES, &bytes)) ||
        (rc = meta_get_u64(txn, q->se->meta, TEL_META_DROPPED, &dropped)))
        goto out;
    for (size_t i = 0; i < n; i++)
        incoming_bytes += recs[i].len;

    /* A burst larger than the caps keeps only its newest events, just as
     * if they had been appended one by one. */
    size_t skip = 0;
    while (skip < n && (n - skip > q->caps.max_events || incoming_bytes > q->caps.max_bytes)) {
        incoming_bytes -= recs[skip].len;
        skip++;
        dropped++;
    }
    if ((rc = evict(q, txn, n - skip, incoming_bytes, force, &bytes, &dropped)))
        goto out;

    if (next == 0)
        next = 1;
    /* One cursor for the whole burst: it stays on the right edge of the
     * tree, where every append goes, instead of each put searching down
     * from the root. */
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, q->se->events, &cur)))
        goto out;
    for (size_t i = skip; i < n && rc == 0; i++) {
        uint8_t kb[8];
        put_u64be(kb, next);
        MDB_val k = { 8, kb }, v = { recs[i].len, (void *)recs[i].data };
        rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
        if (rc == MDB_KEYEXIST) {
            /* "next" fell behind the tree (restored from an old copy):
             * carry on after the last key. */
            MDB_val lk, lv;
            rc = mdb_cursor_get(cur, &lk, &lv, MDB_LAST);
            if (rc == 0 && lk.mv_size == 8)
                next = get_u64be(lk.mv_data) + 1;
            put_u64be(kb, next);
            rc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
        }
        next++;
        bytes += recs[i].len;
    }
    mdb_cursor_close(cur);
    if (rc)
        goto out;
    if ((rc = meta_put_u64(txn, q->se->meta, TEL_META_NEXT, next)) ||
        (rc = meta_put_u64(txn, q->se->meta, TEL_META_BYTES, bytes)) ||
        (rc = meta_put_u64(txn, q->se->meta, TEL_META_DROPPED, dropped)))
        goto out;
    return txn_commit(q, txn);
out:
    txn_abort(q, txn);
    return rc;
}

int tel__queue_append(tel_queue *q, const tel_rec *recs, size_t n)
{
    if (q->readonly)
        return tel__fail(TEL_ERR_STATE, "queue: opened read-only");
    if (n == 0)
        return TEL_OK;
    int rc = append_txn(q, recs, n, 0);
    /*
     * LMDB sizes the map to at least the data already in the file, so a
     * queue filled under a host's larger caps can leave no room even to
     * evict: pages freed in a transaction are reusable only after it
     * commits.  Growing the map costs address space, not disk; the file
     * grows only if the pages are used, and eviction then frees them.
     */
    if (rc == MDB_MAP_FULL) {
        MDB_envinfo info;
        pthread_rwlock_wrlock(&q->se->resize);
        int grown = mdb_env_info(q->se->env, &info) == 0 &&
                    mdb_env_set_mapsize(q->se->env, info.me_mapsize + MAP_MIN) == 0;
        q->se->map_hi = 0; /* the map moved */
        pthread_rwlock_unlock(&q->se->resize);
        if (grown)
            rc = append_txn(q, recs, n, 0);
    }
    /*
     * The map filling up means the caps were set larger than the map can
     * hold with LMDB's copy-on-write overhead.  A full queue is never the
     * host's problem: drop a growing share of the oldest events and retry.
     */
    for (uint64_t force = 64; rc == MDB_MAP_FULL && force <= (1u << 20); force *= 4)
        rc = append_txn(q, recs, n, force);
    if (rc)
        return lmdb_fail(rc, "append");
    return TEL_OK;
}

/* --------------------------------------------------------------- reads */

int tel__queue_stats(tel_queue *q, tel_queue_stats *out)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_fail(rc, "stats");
    MDB_stat st;
    if ((rc = mdb_stat(txn, q->se->events, &st)) == 0) {
        out->count = st.ms_entries;
        meta_get_u64(txn, q->se->meta, TEL_META_BYTES, &out->bytes);
        meta_get_u64(txn, q->se->meta, TEL_META_DROPPED, &out->dropped);
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(txn, q->se->events, &cur)) == 0) {
            MDB_val k, v;
            if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8) {
                out->first_seq = get_u64be(k.mv_data);
                out->oldest_ts_ms = record_ts(&v);
                if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
                    out->last_seq = get_u64be(k.mv_data);
            }
            mdb_cursor_close(cur);
        }
    }
    txn_abort(q, txn);
    return rc ? lmdb_fail(rc, "stats") : TEL_OK;
}

int tel__queue_scan(tel_queue *q, uint64_t from_seq, size_t max_count, size_t max_bytes,
                    tel_queue_fn fn, void *ud)
{
    MDB_txn *txn;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_fail(rc, "scan");
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, q->se->events, &cur))) {
        txn_abort(q, txn);
        return lmdb_fail(rc, "scan");
    }
    uint8_t kb[8];
    put_u64be(kb, from_seq);
    MDB_val k = { 8, kb }, v;
    size_t count = 0, bytes = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && count < max_count) {
        if (k.mv_size != 8)
            break;
        if (count > 0 && bytes + v.mv_size > max_bytes)
            break;
        count++;
        bytes += v.mv_size;
        if (fn(ud, get_u64be(k.mv_data), v.mv_data, v.mv_size))
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    txn_abort(q, txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return lmdb_fail(rc, "scan");
    return TEL_OK;
}

/* ------------------------------------------------------------- deletes */

int tel__queue_delete(tel_queue *q, uint64_t first, uint64_t last, uint64_t dropped_acked)
{
    return tel__queue_delete_meta(q, first, last, dropped_acked, NULL, 0);
}

int tel__queue_delete_meta(tel_queue *q, uint64_t first, uint64_t last, uint64_t dropped_acked,
                           const tel_meta_kv *kv, size_t nkv)
{
    if (q->readonly)
        return tel__fail(TEL_ERR_STATE, "queue: opened read-only");
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        return lmdb_fail(rc, "delete");
    uint64_t bytes, dropped;
    MDB_cursor *cur = NULL;
    if ((rc = meta_get_u64(txn, q->se->meta, TEL_META_BYTES, &bytes)) ||
        (rc = meta_get_u64(txn, q->se->meta, TEL_META_DROPPED, &dropped)) ||
        (rc = mdb_cursor_open(txn, q->se->events, &cur)))
        goto out;
    uint8_t kb[8];
    put_u64be(kb, first);
    MDB_val k = { 8, kb }, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 8 && get_u64be(k.mv_data) <= last) {
        bytes = bytes > v.mv_size ? bytes - v.mv_size : 0;
        if ((rc = mdb_cursor_del(cur, 0)))
            goto out;
        /* After a delete LMDB leaves the cursor on the following record,
         * and MDB_NEXT returns that one rather than skipping it. */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto out;
    mdb_cursor_close(cur);
    cur = NULL;
    MDB_stat st;
    if ((rc = mdb_stat(txn, q->se->events, &st)))
        goto out;
    if (st.ms_entries == 0)
        bytes = 0;
    dropped = dropped > dropped_acked ? dropped - dropped_acked : 0;
    if ((rc = meta_put_u64(txn, q->se->meta, TEL_META_BYTES, bytes)) ||
        (rc = meta_put_u64(txn, q->se->meta, TEL_META_DROPPED, dropped)))
        goto out;
    for (size_t i = 0; i < nkv; i++) {
        MDB_val mk = { strlen(kv[i].key), (void *)kv[i].key }, mv = { kv[i].len, (void *)kv[i].val };
        rc = kv[i].val ? mdb_put(txn, q->se->meta, &mk, &mv, 0) : mdb_del(txn, q->se->meta, &mk, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc)
            goto out;
    }
    rc = txn_commit(q, txn);
    return rc ? lmdb_fail(rc, "delete") : TEL_OK;
out:
    if (cur)
        mdb_cursor_close(cur);
    txn_abort(q, txn);
    return lmdb_fail(rc, "delete");
}

int tel__queue_add_dropped(tel_queue *q, uint64_t n)
{
    if (q->readonly)
        return tel__fail(TEL_ERR_STATE, "queue: opened read-only");
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        return lmdb_fail(rc, "count dropped");
    uint64_t dropped;
    if ((rc = meta_get_u64(txn, q->se->meta, TEL_META_DROPPED, &dropped)) ||
        (rc = meta_put_u64(txn, q->se->meta, TEL_META_DROPPED, dropped + n))) {
        txn_abort(q, txn);
        return lmdb_fail(rc, "count dropped");
    }
    rc = txn_commit(q, txn);
    return rc ? lmdb_fail(rc, "count dropped") : TEL_OK;
}

int tel__queue_purge(tel_queue *q)
{
    if (q->readonly)
        return tel__fail(TEL_ERR_STATE, "queue: opened read-only");
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        return lmdb_fail(rc, "purge");
    /* Emptying the tree keeps "next": sequence numbers are never reused.
     * Everything tel-sync kept about the old events (pending batch,
     * backoff) goes, so nothing from before the purge lingers. */
    uint64_t next;
    if ((rc = meta_get_u64(txn, q->se->meta, TEL_META_NEXT, &next)) ||
        (rc = mdb_drop(txn, q->se->events, 0)))
        goto out;
    static const char *const sync_keys[] = TEL_META_SYNC_KEYS;
    for (size_t i = 0; i < sizeof sync_keys / sizeof *sync_keys; i++) {
        MDB_val k = { strlen(sync_keys[i]), (void *)sync_keys[i] };
        rc = mdb_del(txn, q->se->meta, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            goto out;
    }
    if ((rc = meta_put_u64(txn, q->se->meta, TEL_META_BYTES, 0)) ||
        (rc = meta_put_u64(txn, q->se->meta, TEL_META_DROPPED, 0)) ||
        (rc = meta_put_u64(txn, q->se->meta, TEL_META_NEXT, next ? next : 1)))
        goto out;
    rc = txn_commit(q, txn);
    return rc ? lmdb_fail(rc, "purge") : TEL_OK;
out:
    txn_abort(q, txn);
    return lmdb_fail(rc, "purge");
}

/* ---------------------------------------------------------------- meta */

int tel__queue_meta_get(tel_queue *q, const char *key, void *buf, size_t cap, size_t *len)
{
    MDB_txn *txn;
    int rc = txn_begin(q, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_fail(rc, "read setting");
    MDB_val k = { strlen(key), (void *)key }, v;
    rc = mdb_get(txn, q->se->meta, &k, &v);
    if (rc == 0) {
        if (len)
            *len = v.mv_size;
        memcpy(buf, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
    }
    txn_abort(q, txn);
    if (rc == MDB_NOTFOUND)
        return TEL_ERR_NOTFOUND;
    return rc ? lmdb_fail(rc, "read setting") : TEL_OK;
}

int tel__queue_meta_put(tel_queue *q, const char *key, const void *val, size_t len)
{
    if (q->readonly)
        return tel__fail(TEL_ERR_STATE, "queue: opened read-only");
    MDB_txn *txn;
    int rc = txn_begin(q, 0, &txn);
    if (rc)
        return lmdb_fail(rc, "write setting");
    MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)val };
    rc = val ? mdb_put(txn, q->se->meta, &k, &v, 0) : mdb_del(txn, q->se->meta, &k, NULL);
    if (rc && rc != MDB_NOTFOUND) {
        txn_abort(q, txn);
        return lmdb_fail(rc, "write setting");
    }
    rc = txn_commit(q, txn);
    return rc ? lmdb_fail(rc, "write setting") : TEL_OK;
}

/* ---------------------------------------------------------------- wipe */

int tel__queue_wipe(const char *state_dir)
{
    char dir[TEL_PATH_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/" TEL_QUEUE_DIR, state_dir) >= sizeof dir)
        return tel__fail(TEL_ERR_NOSTATE, "queue: state path too long");
    struct stat st;
    /* A state directory that is a symlink leads to someone else's files
     * (tel__queue_open refuses it); forgetting must not delete there. */
    if (lstat(state_dir, &st) == 0 && S_ISLNK(st.st_mode))
        return TEL_OK;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? TEL_OK : tel__fail(TEL_ERR_NOSTATE, "queue: %s", strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return TEL_OK; /* not ours to touch; tel__queue_open refuses it too */

    /* Empty the tree first, so that a process holding the queue open sees
     * an empty queue rather than events that are about to vanish. */
    tel_queue *q;
    int rc = tel__queue_open(&q, state_dir, NULL, 0);
    if (rc == TEL_OK) {
        rc = tel__queue_purge(q);
        tel__queue_close(q);
    } else if (rc == TEL_ERR_NOTFOUND) {
        rc = TEL_OK;
    }

    /* Then the files: the data, the lock, tel-sync's log (batch ids the
     * collector saw with the old id) and any damaged copies kept aside. */
    DIR *d = opendir(dir);
    if (!d)
        return rc;
    struct dirent *e;
    int failed = 0;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, "data.mdb") != 0 && strcmp(n, "lock.mdb") != 0 &&
            !tel__syncstate_is_file(n) && strncmp(n, "data.mdb.corrupt-", 17) != 0)
            continue;
        /* A damaged "file" moved aside may be a planted directory. */
        if (unlinkat(dirfd(d), n, 0) != 0 && errno != ENOENT &&
            !(errno == EISDIR && unlinkat(dirfd(d), n, AT_REMOVEDIR) == 0))
            failed = 1;
    }
    closedir(d);
    if (failed && rc == TEL_OK)
        rc = tel__fail(TEL_ERR_IO, "queue: cannot remove the old queue files");
    return rc;
}
