/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_ids.c - event ids: the pool they are drawn from, and
 * what a forked child draws.
 *
 * Two processes that hand out the same event id lose events: a collector
 * keeps one of two events with one id.  A child forked from a process
 * that holds a handle shares its memory, so every id the handle would
 * draw next must not be drawn again in the child.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"
#include "tel.h"

#define APP "tids"
#define NIDS 2000 /* several refills of a pool */
#define NFORK 100

static uint8_t ids[NIDS][TEL_ID_LEN];

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, TEL_ID_LEN);
}

/* 1 when no two of the n ids are equal (sorts them). */
static int all_distinct(uint8_t (*v)[TEL_ID_LEN], size_t n)
{
    qsort(v, n, TEL_ID_LEN, cmp_id);
    for (size_t i = 1; i < n; i++)
        if (memcmp(v[i - 1], v[i], TEL_ID_LEN) == 0)
            return 0;
    return 1;
}

/*
 * Runs child() in a forked child, which writes n ids of TEL_ID_LEN bytes
 * to the pipe, and reads them into out.  Returns how many were read.
 */
static size_t from_child(void (*child)(int fd, void *ud), void *ud, uint8_t (*out)[TEL_ID_LEN], size_t n)
{
    int p[2];
    if (pipe(p) != 0)
        return 0;
    fflush(stdout); /* nothing buffered may be printed twice */
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        child(p[1], ud);
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    while (pid > 0 && got < n * TEL_ID_LEN) {
        ssize_t r = read(p[0], (uint8_t *)out + got, n * TEL_ID_LEN - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(p[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return got / TEL_ID_LEN;
}

/* ------------------------------------------------------------ the pool */

static void pool_child(int fd, void *ud)
{
    uint8_t id[TEL_ID_LEN];
    for (int i = 0; i < NFORK; i++)
        if (tel__idpool_uuid4(ud, id) != 0 || write(fd, id, sizeof id) != (ssize_t)sizeof id)
            return;
}

static void test_pool(void)
{
    CHECK_GROUP("id pool");
    tel_idpool *pool = tel__idpool_new();
    if (!pool)
        CHECK_SKIP("this kernel cannot wipe a page on fork: ids are drawn one by one");
    int rc = 0, version = 1;
    for (int i = 0; i < NIDS; i++) {
        rc |= tel__idpool_uuid4(pool, ids[i]);
        version &= (ids[i][6] >> 4) == 4 && (ids[i][8] & 0xc0) == 0x80;
    }
    CHECK_EQ_INT("ids are drawn", rc, 0);
    CHECK("every id is a UUID of version 4", version);
    CHECK("no two ids of one pool are equal, across its refills", all_distinct(ids, NIDS));

    /* Half-used pool: without the wipe, the child would draw exactly the
     * ids the parent draws next. */
    uint8_t parent[NFORK][TEL_ID_LEN], both[2 * NFORK][TEL_ID_LEN];
    size_t n = from_child(pool_child, pool, both, NFORK);
    CHECK_EQ_INT("the child drew its ids", n, NFORK);
    for (int i = 0; i < NFORK; i++)
        tel__idpool_uuid4(pool, parent[i]);
    memcpy(both[NFORK], parent, sizeof parent);
    CHECK("a forked child draws other ids than its parent", all_distinct(both, 2 * NFORK));
    tel__idpool_free(pool);
    tel__idpool_free(NULL);
}

/* ---------------------------------------------------- a handle's events */

/* The ids of the events the handle logged, in order. */
static uint8_t logged[NIDS][TEL_ID_LEN];
static size_t nlogged;

static void capture_id(void *ud, const char *line)
{
    (void)ud;
    const char *at = strstr(line, "{\"id\":\"");
    if (at && nlogged < NIDS && tel__uuid_parse(at + 7, 36, logged[nlogged]) == 0)
        nlogged++;
}

/* A debug handle: its events are logged with their ids and never stored,
 * so that a child may use it without touching the parent's queue. */
static tel *open_debug(void)
{
    tel_options *o = tel_options_new(APP);
    tel *h = NULL;
    if (o) {
        tel_options_set_debug(o, 1);
        tel_options_set_logging(o, 1, capture_id, NULL);
    }
    tel_open(&h, o);
    return h;
}

static void emit_child(int fd, void *ud)
{
    nlogged = 0;
    tel *h = ud;
    tel_batch_begin(h);
    for (int i = 0; i < NFORK; i++)
        tel_emit_event(h, "ev", NULL, 0);
    tel_batch_commit(h);
    if (write(fd, logged, nlogged * TEL_ID_LEN) < 0)
        return;
}

/* Forks after `before` events; the child and the parent then emit NFORK
 * each.  1 when the 2 * NFORK ids are all different. */
static int fork_apart(int before)
{
    uint8_t both[2 * NFORK][TEL_ID_LEN];
    tel *h = open_debug();
    if (!h)
        return 0;
    for (int i = 0; i < before; i++)
        tel_emit_event(h, "ev", NULL, 0);
    size_t n = from_child(emit_child, h, both, NFORK);
    nlogged = 0;
    tel_batch_begin(h);
    for (int i = 0; i < NFORK; i++)
        tel_emit_event(h, "ev", NULL, 0);
    tel_batch_commit(h);
    tel_close(h);
    if (n != NFORK || nlogged != NFORK)
        return 0;
    memcpy(both[NFORK], logged, NFORK * TEL_ID_LEN);
    return all_distinct(both, 2 * NFORK);
}

static void test_fork(void)
{
    CHECK_GROUP("event ids after fork");
    fx_fresh_home();
    CHECK("a child forked before the first event does not record the parent's first id", fork_apart(0));
    CHECK("a child forked after some events draws other ids than its parent", fork_apart(3));
}

/* --------------------------------------------------- ids after a forget */

/* The anonymous and execution ids of the queued records of APP. */
static uint8_t rec_anon[8][TEL_ID_LEN], rec_exec[8][TEL_ID_LEN];
static size_t nrecs;

static int keep_ids(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)seq;
    tel_record r;
    if (nrecs < 8 && tel__record_decode(&r, data, len) == TEL_OK && r.anon) {
        memcpy(rec_anon[nrecs], r.anon, TEL_ID_LEN);
        memcpy(rec_exec[nrecs], r.exec, TEL_ID_LEN);
        nrecs++;
    }
    return 0;
}

/* Calls fn for each of the first 8 records queued for app. */
static void scan_app(const char *app, tel_queue_fn fn)
{
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    if (tel__state_dir(app, dir, sizeof dir) == TEL_OK && tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) == TEL_OK) {
        tel__queue_scan(q, 0, 8, 1u << 20, fn, NULL);
        tel__queue_close(q);
    }
}

static size_t read_queue(void)
{
    nrecs = 0;
    scan_app(APP, keep_ids);
    return nrecs;
}

static void test_forget(void)
{
    CHECK_GROUP("a long-lived handle's ids after a forget");
    fx_fresh_home();
    tel *h = NULL;
    SETUP(tel_open(&h, tel_options_new(APP)));
    uint8_t old_anon[TEL_ID_LEN], old_exec[TEL_ID_LEN];
    tel_emit_event(h, "before", NULL, 0);
    tel_emit_event(h, "before", NULL, 0);
    SETUP(read_queue() != 2);
    memcpy(old_anon, rec_anon[1], TEL_ID_LEN);
    memcpy(old_exec, rec_exec[1], TEL_ID_LEN);
    SETUP(tel_forget(APP));
    tel_emit_event(h, "after", NULL, 0);
    tel_batch_begin(h);
    tel_emit_event(h, "after", NULL, 0);
    tel_emit_event(h, "after", NULL, 0);
    SETUP(tel_batch_commit(h));
    CHECK_EQ_INT("the events after it are queued", read_queue(), 3);
    int fresh_anon = 1, fresh_exec = 1;
    for (size_t i = 0; i < nrecs; i++) {
        fresh_anon &= memcmp(rec_anon[i], old_anon, TEL_ID_LEN) != 0 &&
                      memcmp(rec_anon[i], rec_anon[0], TEL_ID_LEN) == 0;
        fresh_exec &= memcmp(rec_exec[i], old_exec, TEL_ID_LEN) != 0;
    }
    CHECK("under the new anonymous id, one for all of them", fresh_anon);
    CHECK("under a new execution id", fresh_exec);
    tel_close(h);
}

/* ------------------------------------------------ the widest context */

static tel_record widest[2];
static uint8_t widest_raw[2][TEL_MAX_FLAT_EVENT];
static size_t nwidest;

static int keep_record(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)seq;
    if (nwidest < 2 && len <= sizeof widest_raw[0]) {
        memcpy(widest_raw[nwidest], data, len);
        if (tel__record_decode(&widest[nwidest], widest_raw[nwidest], len) == TEL_OK)
            nwidest++;
    }
    return 0;
}

static int str_is(tel_str s, const char *want)
{
    return s.p && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* A 64-byte app name and version, a CI vendor and a project id: the end
 * of each record ("x", "a", "c") is then larger than a handle's first
 * guess at it. */
static void test_wide_context(void)
{
    CHECK_GROUP("the widest context");
    const char *home = fx_fresh_home();
    char app[65], version[65], repo[600], cwd[4096], path[700];
    memset(app, 'w', 64);
    app[64] = '\0';
    memset(version, '9', 64);
    version[64] = '\0';
    snprintf(repo, sizeof repo, "%s/repo", home);
    snprintf(path, sizeof path, "%s/.git", repo);
    SETUP(mkdir(repo, 0700) || mkdir(path, 0700) || !getcwd(cwd, sizeof cwd));
    snprintf(path, sizeof path, "%s/.git/config", repo);
    FILE *f = fopen(path, "w");
    SETUP(!f);
    if (f) {
        fputs("[remote \"origin\"]\n\turl = https://example.com/acme/widget.git\n", f);
        fclose(f);
    }
    SETUP(chdir(repo));
    setenv("GITHUB_ACTIONS", "true", 1);
    tel_options *o = tel_options_new(app);
    tel_options_set_app_version(o, version);
    tel_options_set_project_salt(o, "salt");
    tel *h = NULL;
    SETUP(tel_open(&h, o));
    CHECK_EQ_INT("the first event is queued", tel_emit_event(h, "one", NULL, 0), TEL_OK);
    CHECK_EQ_INT("the second too", tel_emit_event(h, "two", TEL_PROPS(TEL_INT("n", 2))), TEL_OK);
    tel_close(h);
    unsetenv("GITHUB_ACTIONS");
    SETUP(chdir(cwd));

    nwidest = 0;
    scan_app(app, keep_record);
    CHECK_EQ_INT("both decode", nwidest, 2);
    int ok = nwidest == 2;
    for (size_t i = 0; ok && i < 2; i++)
        ok = str_is(widest[i].app, app) && str_is(widest[i].app_version, version) &&
             str_is(widest[i].ci_vendor, "github_actions") && widest[i].project.len == 64 && widest[i].ci;
    CHECK("each carries the whole context", ok);
    CHECK("the second one's name and property are its own",
          ok && str_is(widest[1].name, "two") && widest[1].nprops == 1 && widest[1].vals[0].v.i == 2);
}

int main(void)
{
    if (fx_setup("ids") != 0)
        return 1;
    test_pool();
    test_fork();
    test_forget();
    test_wide_context();
    fx_cleanup();
    return check_exit();
}
