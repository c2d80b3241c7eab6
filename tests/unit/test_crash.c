/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_crash.c - the queue under concurrent producers and under
 * SIGKILL at random instants.
 *
 * Both halves go through the public API exactly as a host does (tel_open,
 * tel_emit_event) in forked children, and read the result back with the
 * queue's own scan and the record decoder.  The promise checked is
 * tel's first: an event the API said was queued is never lost, never stored
 * twice, and the queue a killed producer leaves behind opens clean.
 *
 *   TEL_STRESS=1     ten times the kill iterations
 *   TEL_SANITIZED=1  a few fewer, since every emit is slower
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"

#define APP "crashtest"


static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* A private HOME, and nothing in the environment that could turn
 * telemetry off or point it elsewhere behind the test's back. */
static void setup_env(void)
{
    if (fx_setup("crash") != 0)
        exit(2);
    setenv("HOME", fx_root, 1);
    static const char *const drop[] = { "CRASHTEST_TELEMETRY_ENABLED", "CRASHTEST_TELEMETRY_DEBUG",
                                        "CRASHTEST_TELEMETRY_LOGGING", "CRASHTEST_TELEMETRY_INSPECT" };
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        unsetenv(drop[i]);
}

/* Deterministic, so a failing run can be repeated exactly. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* ------------------------------------------------------ reading back */

typedef struct seen_rec {
    uint8_t id[TEL_ID_LEN];
    int64_t producer;   /* -1 when the record has none */
    int64_t n;          /* -1 when the record has none */
} seen_rec;

typedef struct seen {
    seen_rec *v;
    size_t len, cap;
    size_t undecodable;
} seen;

static int int_prop(const tel_record *r, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < r->nprops; i++)
        if (r->keys[i].len == klen && memcmp(r->keys[i].p, key, klen) == 0 &&
            r->vals[i].type == TEL_T_INT) {
            *out = r->vals[i].v.i;
            return 1;
        }
    return 0;
}

static int collect(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)seq;
    seen *s = ud;
    tel_record r;
    if (tel__record_decode(&r, data, len) != TEL_OK) {
        s->undecodable++;
        return 0;
    }
    if (s->len == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        seen_rec *nv = realloc(s->v, ncap * sizeof *nv);
        if (!nv)
            return 1;
        s->v = nv;
        s->cap = ncap;
    }
    seen_rec *e = &s->v[s->len++];
    memcpy(e->id, r.id, TEL_ID_LEN);
    if (!int_prop(&r, "producer", &e->producer))
        e->producer = -1;
    if (!int_prop(&r, "n", &e->n))
        e->n = -1;
    return 0;
}

/* Reads every record of the queue in <state_dir>, oldest first. */
static int read_all(const char *state_dir, seen *s)
{
    memset(s, 0, sizeof *s);
    tel_queue *q;
    int rc = tel__queue_open(&q, state_dir, NULL, TEL_Q_READONLY);
    if (rc != TEL_OK)
        return rc;
    rc = tel__queue_scan(q, 0, SIZE_MAX, SIZE_MAX, collect, s);
    tel__queue_close(q);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(((const seen_rec *)a)->id, ((const seen_rec *)b)->id, TEL_ID_LEN);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Counts ids that occur more than once.  Sorts s->v. */
static size_t duplicate_ids(seen *s)
{
    qsort(s->v, s->len, sizeof *s->v, cmp_id);
    size_t dups = 0;
    for (size_t i = 1; i < s->len; i++)
        dups += memcmp(s->v[i - 1].id, s->v[i].id, TEL_ID_LEN) == 0;
    return dups;
}

static void state_dir_of(const char *state_home, char *out, size_t size)
{
    snprintf(out, size, "%s/" APP, state_home);
}

/* Names in the queue directory that hold ".corrupt-" (data moved aside). */
static int corrupt_files(const char *state_dir)
{
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/" TEL_QUEUE_DIR, state_dir);
    DIR *d = opendir(qdir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".corrupt-") != NULL;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------- producers */

/* Opens a handle for APP in the child, with caps large enough that
 * nothing this test writes is ever evicted. */
static tel *child_open(void)
{
    tel_options *o = tel_options_new(APP);
    if (!o)
        _exit(10);
    tel_options_set_caps(o, 10000000, 64u * 1024 * 1024, 0);
    tel *h;
    int rc = tel_open(&h, o);
    if (rc != TEL_OK) {
        fprintf(stderr, "child: tel_open: %s: %s\n", tel_strerror(rc), tel_last_error());
        _exit(11);
    }
    return h;
}

/* -------------------------------------------------------- concurrency */

#define PRODUCERS 8

static void concurrency(int per_producer)
{
    CHECK_GROUP("concurrency");
    char state_home[400], state_dir[500];
    snprintf(state_home, sizeof state_home, "%s/conc", fx_root);
    mkdir(state_home, 0700);
    setenv("XDG_STATE_HOME", state_home, 1);
    state_dir_of(state_home, state_dir, sizeof state_dir);

    /* The children wait for the start pipe to close, so that all eight
     * are writing at the same time rather than one after another. */
    int start[2];
    if (pipe(start) != 0) {
        CHECK("pipe", 0);
        return;
    }
    pid_t pids[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            close(start[1]);
            char c;
            while (read(start[0], &c, 1) > 0)
                ;
            tel *h = child_open();
            int failures = 0;
            for (int i = 0; i < per_producer; i++) {
                int rc = tel_emit_event(h, "tick", TEL_PROPS(TEL_INT("producer", p), TEL_INT("n", i)));
                if (rc != TEL_OK && failures++ == 0)
                    fprintf(stderr, "producer %d: emit %d: %s: %s\n", p, i, tel_strerror(rc),
                            tel_last_error());
            }
            tel_close(h);
            _exit(failures ? 1 : 0);
        }
    }
    close(start[0]);
    close(start[1]);
    int clean_exits = 0;
    for (int p = 0; p < PRODUCERS; p++) {
        int st;
        if (pids[p] > 0 && waitpid(pids[p], &st, 0) == pids[p] && WIFEXITED(st) &&
            WEXITSTATUS(st) == 0)
            clean_exits++;
    }
    CHECK_EQ_INT("every producer saw TEL_OK for every emit", clean_exits, PRODUCERS);

    seen s;
    int rc = read_all(state_dir, &s);
    CHECK_EQ_INT("queue reads back", rc, TEL_OK);
    CHECK_EQ_INT("every record decodes", s.undecodable, 0);
    CHECK_EQ_INT("exactly producers x emits records", s.len, (size_t)PRODUCERS * per_producer);

    /* In queue order, each producer's n must be 0, 1, 2, ...: its own
     * emits are sequential, so the queue must keep them so. */
    int64_t expect[PRODUCERS] = { 0 };
    size_t out_of_order = 0, foreign = 0;
    for (size_t i = 0; i < s.len; i++) {
        int64_t p = s.v[i].producer;
        if (p < 0 || p >= PRODUCERS) {
            foreign++;
            continue;
        }
        if (s.v[i].n != expect[p])
            out_of_order++;
        expect[p] = s.v[i].n + 1;
    }
    CHECK_EQ_INT("every record names its producer", foreign, 0);
    CHECK_EQ_INT("each producer's n values appear in increasing order", out_of_order, 0);
    int complete = 1;
    for (int p = 0; p < PRODUCERS; p++)
        complete &= expect[p] == per_producer;
    CHECK("each producer's last n is the last it emitted", complete);
    CHECK_EQ_INT("event ids are distinct", duplicate_ids(&s), 0);
    free(s.v);
    unsetenv("XDG_STATE_HOME");
}

/* --------------------------------------------------------- crash loop */

/* The child's counters are iteration * STRIDE + k, so two iterations can
 * never produce the same value and a duplicate is always a real one. */
#define STRIDE 1000000

typedef struct acked {
    int64_t *v;
    size_t len, cap;
} acked;

static void acked_push(acked *a, int64_t n)
{
    if (a->len == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 4096;
        int64_t *nv = realloc(a->v, ncap * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->len++] = n;
}

/* One producer in `state_home`, killed after `delay_us` (or left to
 * finish `limit` emits when delay_us < 0).  Every counter the child
 * acknowledged goes into `ack`.  Returns 0 when the child behaved (killed,
 * or finished cleanly), -1 when it failed on its own. */
static int run_producer(const char *state_home, int iteration, long delay_us, int limit, acked *ack)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        setenv("XDG_STATE_HOME", state_home, 1);
        tel *h = child_open();
        for (int k = 0; limit <= 0 || k < limit; k++) {
            int64_t n = (int64_t)iteration * STRIDE + k;
            int rc = tel_emit_event(h, "crash.tick", TEL_PROPS(TEL_INT("n", n)));
            if (rc != TEL_OK) {
                fprintf(stderr, "crash child: emit: %s: %s\n", tel_strerror(rc), tel_last_error());
                _exit(12);
            }
            /* Only after TEL_OK: the parent treats what it reads as
             * promised to be in the queue. */
            if (write(fds[1], &n, sizeof n) != (ssize_t)sizeof n)
                _exit(13);
            if (k + 1 >= STRIDE)
                _exit(0);
        }
        tel_close(h);
        _exit(0);
    }
    close(fds[1]);
    if (delay_us >= 0) {
        if (delay_us > 0) {
            struct timespec ts = { delay_us / 1000000, (delay_us % 1000000) * 1000 };
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
        kill(pid, SIGKILL);
    }
    /* Read to EOF before reaping: the pipe holds every counter written
     * before the kill, and a child blocked on a full pipe still dies. */
    int64_t n;
    ssize_t got;
    size_t partial = 0;
    uint8_t buf[sizeof n];
    while ((got = read(fds[0], buf + partial, sizeof buf - partial)) > 0 || (got < 0 && errno == EINTR)) {
        if (got < 0)
            continue;
        partial += (size_t)got;
        if (partial == sizeof buf) {
            memcpy(&n, buf, sizeof n);
            acked_push(ack, n);
            partial = 0;
        }
    }
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && delay_us >= 0)
        return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "crash child %d: %s %d\n", iteration, WIFEXITED(st) ? "exit" : "signal",
            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -1;
}

/* A queue directory we can check: where it is, what was promised in it. */
typedef struct crash_dir {
    char state_home[400];
    acked ack;
    int first_child_acked;   /* the child that created the queue acked something */
} crash_dir;

static int mdb_stat_ok(const char *state_dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "/usr/bin/mdb_stat -a '%s/" TEL_QUEUE_DIR "' >/dev/null 2>&1", state_dir);
    return system(cmd) == 0;
}

static int cookie_is_uuid(const char *state_dir)
{
    char path[600], buf[64];
    snprintf(path, sizeof path, "%s/" TEL_COOKIE_FILE, state_dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    uint8_t id[TEL_ID_LEN];
    return n == 37 && buf[36] == '\n' && tel__uuid_parse(buf, 36, id) == 0;
}

/* Checks one directory after its producers are gone; returns the number
 * of failed checks so the caller can report per kind across many dirs. */
typedef struct crash_tally {
    size_t dirs, lost, dup_counters, dup_ids, undecodable, open_failed, mdb_stat_failed,
        corrupt_with_acks, bad_cookie, append_failed;
    size_t acked, stored, moved_aside;
} crash_tally;

static void check_dir(crash_dir *cd, crash_tally *t, int have_mdb_stat)
{
    char state_dir[500];
    state_dir_of(cd->state_home, state_dir, sizeof state_dir);
    t->dirs++;
    seen s;
    int rc = read_all(state_dir, &s);
    if (rc != TEL_OK) {
        fprintf(stderr, "%s: read: %s: %s\n", state_dir, tel_strerror(rc), tel_last_error());
        t->open_failed++;
        if (cd->ack.len)
            t->lost += cd->ack.len;
        free(s.v);
        return;
    }
    t->undecodable += s.undecodable;
    t->stored += s.len;
    t->acked += cd->ack.len;
    t->dup_ids += duplicate_ids(&s);

    int64_t *ns = malloc((s.len + 1) * sizeof *ns);
    if (!ns) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < s.len; i++)
        ns[i] = s.v[i].n;
    qsort(ns, s.len, sizeof *ns, cmp_i64);
    for (size_t i = 1; i < s.len; i++)
        t->dup_counters += ns[i] == ns[i - 1];
    for (size_t i = 0; i < cd->ack.len; i++)
        if (!bsearch(&cd->ack.v[i], ns, s.len, sizeof *ns, cmp_i64)) {
            if (t->lost++ < 5)
                fprintf(stderr, "%s: acknowledged n=%lld is not in the queue\n", state_dir,
                        (long long)cd->ack.v[i]);
        }
    free(ns);
    free(s.v);

    /* Damage moved aside is acceptable only where the kill came before
     * anything was promised (queue creation cut short). */
    int corrupt = corrupt_files(state_dir);
    t->moved_aside += corrupt > 0;
    if (corrupt && cd->first_child_acked)
        t->corrupt_with_acks++;
    if (!cookie_is_uuid(state_dir))
        t->bad_cookie++;
    if (have_mdb_stat && !mdb_stat_ok(state_dir))
        t->mdb_stat_failed++;

    /* The writer's view: the queue accepts another append.  With the
     * producers' caps, so that the append evicts nothing. */
    tel_queue *q;
    tel_caps caps = { 10000000, 64u * 1024 * 1024, 0, 0 };
    rc = tel__queue_open(&q, state_dir, &caps, TEL_Q_CREATE);
    if (rc == TEL_OK) {
        uint8_t rec[TEL_MAX_EVENT];
        size_t len;
        tel_ctx ctx = { .app = APP };
        tel_event_in ev = { .ts_ms = tel__now_ms(), .name = "after.crash", .ctx = &ctx };
        tel__uuid4(ev.id);
        tel__uuid4(ev.exec);
        tel_queue_stats before, after;
        tel_rec r = { rec, 0, ev.ts_ms };
        int arc = TEL_OK;
        if (tel__record_encode(&ev, rec, sizeof rec, &len) != TEL_OK ||
            tel__queue_stats(q, &before) != TEL_OK || (r.len = len, arc = tel__queue_append(q, &r, 1)) != TEL_OK ||
            tel__queue_stats(q, &after) != TEL_OK || after.count != before.count + 1) {
            fprintf(stderr, "%s: append after the kills: %s: %s (%llu before, %llu after)\n", state_dir,
                    tel_strerror(arc), tel_last_error(), (unsigned long long)before.count,
                    (unsigned long long)after.count);
            t->append_failed++;
        }
        tel__queue_close(q);
    } else {
        t->append_failed++;
    }
}

static void crash_loop(int iterations, int fresh_every)
{
    CHECK_GROUP("crash loop");
    int have_mdb_stat = access("/usr/bin/mdb_stat", X_OK) == 0;
    size_t ndirs = 1 + (size_t)iterations / (size_t)fresh_every + 1;
    crash_dir *dirs = calloc(ndirs, sizeof *dirs);
    if (!dirs) {
        CHECK("memory", 0);
        return;
    }
    size_t used = 1;
    snprintf(dirs[0].state_home, sizeof dirs[0].state_home, "%s/crash-main", fx_root);
    mkdir(dirs[0].state_home, 0700);
    dirs[0].first_child_acked = 1; /* created by a child that is never killed, below */

    /* The shared queue is created by a producer that finishes, so the
     * main directory's damage check is strict from the first kill on. */
    int bad_children = 0;
    if (run_producer(dirs[0].state_home, 0, -1, 3, &dirs[0].ack) != 0)
        bad_children++;

    int fresh_kills = 0, fresh_before_ack = 0, kills_after_ack = 0;
    for (int it = 1; it <= iterations; it++) {
        crash_dir *cd = &dirs[0];
        long delay_us = (long)(rng() % 20001); /* 0-20 ms */
        int fresh = it % fresh_every == 0 && used < ndirs;
        if (fresh) {
            /* A new state dir: the kill lands in mkdir, the cookie, or
             * LMDB creating its files.  Short delays aim at that. */
            cd = &dirs[used++];
            snprintf(cd->state_home, sizeof cd->state_home, "%s/crash-fresh-%d", fx_root, it);
            mkdir(cd->state_home, 0700);
            delay_us = (long)(rng() % 3001);
            fresh_kills++;
        }
        size_t before = cd->ack.len;
        if (run_producer(cd->state_home, it, delay_us, 0, &cd->ack) != 0)
            bad_children++;
        kills_after_ack += cd->ack.len > before;
        if (fresh) {
            cd->first_child_acked = cd->ack.len > before;
            fresh_before_ack += cd->ack.len == before;
            /* A later producer must cope with whatever was left; it
             * finishes, so its three events are promised too. */
            if (run_producer(cd->state_home, it + iterations + 1, -1, 3, &cd->ack) != 0)
                bad_children++;
        }
    }
    CHECK_EQ_INT("no producer failed on its own", bad_children, 0);
    printf("# %d kills, %d in fresh state dirs (%d before the first ack)\n", iterations,
           fresh_kills, fresh_before_ack);

    crash_tally t = { 0 };
    for (size_t i = 0; i < used; i++)
        check_dir(&dirs[i], &t, have_mdb_stat);
    printf("# %zu acknowledged, %zu stored, over %zu queues (%zu with a file moved aside)\n",
           t.acked, t.stored, t.dirs, t.moved_aside);
    /* How many kills land after an acknowledgement depends on how busy the
     * machine is; what matters is that some did, so the no-loss checks
     * below were exercised by kills between acknowledged appends. */
    printf("# %d kills landed after their producer's first acknowledgement\n", kills_after_ack);
    CHECK("some kills landed after an acknowledged append", kills_after_ack > 0);
    CHECK_EQ_INT("every queue opens read-only after the kills", t.open_failed, 0);
    CHECK_EQ_INT("every acknowledged event is in the queue", t.lost, 0);
    CHECK_EQ_INT("no counter is stored twice", t.dup_counters, 0);
    CHECK_EQ_INT("event ids are distinct", t.dup_ids, 0);
    CHECK_EQ_INT("every stored record decodes", t.undecodable, 0);
    CHECK_EQ_INT("no queue holding promised events was moved aside", t.corrupt_with_acks, 0);
    CHECK_EQ_INT("every cookie is one UUID line", t.bad_cookie, 0);
    CHECK_EQ_INT("every queue takes a new append", t.append_failed, 0);
    if (have_mdb_stat)
        CHECK_EQ_INT("mdb_stat -a exits 0 on every queue", t.mdb_stat_failed, 0);
    else
        printf("# /usr/bin/mdb_stat not installed: LMDB's own check skipped\n");

    for (size_t i = 0; i < used; i++)
        free(dirs[i].ack.v);
    free(dirs);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    setup_env();
    int stress = env_flag("TEL_STRESS");
    int sanitized = env_flag("TEL_SANITIZED");

    concurrency(1000);

    int iterations = stress ? 2000 : sanitized ? 200 : 250;
    crash_loop(iterations, iterations / 20);

    fx_cleanup();
    return check_exit();
}
