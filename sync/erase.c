/* SPDX-License-Identifier: MIT */
/*
 * sync/erase.c - sending the erasure requests a forget left behind
 * (libqueue/erasure.h, format/SPEC.md section 13), each alone, and what
 * each answer does to it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "sync.h"

typedef struct eraser {
    const char *state;
    const tel_erase_io *io;
    const char *app;
    uint64_t deadline;
    int force;
    tel_erase_stats *st;
    int rc;                   /* the first error that stopped the walk */
} eraser;

#define note(e, ...) tel__sync_notef((e)->io->note, (e)->io->note_ud, 1, __VA_ARGS__)

int tel__erase_unsupported(long status)
{
    return status == 404 || status == 415;
}

/* Waiting out a backoff; a wait longer than any we set means the clock
 * went back, and is ignored. */
static int waiting(const eraser *e, const tel_erasure_req *r)
{
    uint64_t now = tel__now_ms();
    return !e->force && r->backoff.until_ms > now &&
           r->backoff.until_ms - now <= TEL_BACKOFF_MAX_MS + 60000;
}

/* The gzip'd body: the id, and nothing else. */
static int body(const tel_erasure_req *r, tel_buf *gz)
{
    tel_buf raw = TEL_BUF_INIT;
    int rc = tel__erasure_encode(&raw, r->anon);
    if (rc == TEL_OK) {
        tel_iov span = { raw.p, raw.len, 0 };
        rc = tel__upload_gzip(gz, &span, 1);
    }
    tel__buf_free(&raw);
    return rc;
}

/* A failed attempt: kept, with the next wait stored.  A collector without
 * erasure gets the day-long wait of a 404 for events; at the
 * tel__backoff_steps()-th such answer the request is given up. */
static int keep(eraser *e, tel_erasure_req *r, const tel_upload_result *res)
{
    int unsupported = tel__erase_unsupported(res->status);
    if (unsupported && ++r->unsupported >= tel__backoff_steps()) {
        e->st->given_up++;
        note(e, "%s: the collector does not take erasure requests (HTTP %ld, %" PRIu32
                " times); one is given up", e->app, res->status, r->unsupported);
        return tel__erasure_remove(e->state, r->anon);
    }
    uint64_t delay = tel__backoff_next(&r->backoff, res, unsupported || tel__backoff_is_auth(res->status));
    e->st->backed_off = 1;
    e->st->waiting++;
    note(e, "%s: erasure request: %s; backing off %" PRIu64 " s (attempt %" PRIu32 ")", e->app,
         r->backoff.reason, delay / 1000, r->backoff.attempt);
    return tel__erasure_save(e->state, r);
}

/* Sends one request and acts on the answer; TEL_OK or the error that
 * stops the walk (the request is then as it was). */
static int send_one(eraser *e, tel_erasure_req *r)
{
    tel_buf gz = TEL_BUF_INIT;
    tel_upload_result res;
    uint64_t now = tel__mono_ms();
    int rc = body(r, &gz);
    if (rc == TEL_OK)
        rc = e->io->send(e->io->send_ud, r, gz.p, gz.len, e->deadline - now, &res);
    tel__buf_free(&gz);
    if (rc != TEL_OK)
        return rc;
    long s = res.status;
    if (s >= 200 && s < 300) {
        e->st->sent++;
        note(e, "%s: erasure request accepted (HTTP %ld)", e->app, s);
        return tel__erasure_remove(e->state, r->anon);
    }
    if (s == 400 || s == 422) {
        /* The bytes never change: the collector will never take them. */
        e->st->given_up++;
        note(e, "%s: collector refused an erasure request (HTTP %ld); given up", e->app, s);
        return tel__erasure_remove(e->state, r->anon);
    }
    if (s == 0 && e->deadline - now < TEL_UPLOAD_REQUEST_MS &&
        tel__mono_ms() + TEL_SYNC_MIN_REQUEST_MS > e->deadline) {
        /* Cut by our own deadline: the collector did nothing wrong. */
        e->st->waiting++;
        return TEL_OK;
    }
    return keep(e, r, &res);
}

static int erase_each(void *ud, tel_erasure_req *r)
{
    eraser *e = ud;
    if (waiting(e, r)) {
        e->st->waiting++;
        note(e, "%s: erasure request deferred: next attempt in %" PRIu64 " s (attempt %" PRIu32
                ", last: %s)", e->app, (r->backoff.until_ms - tel__now_ms() + 999) / 1000,
             r->backoff.attempt, r->backoff.reason);
        return 0;
    }
    if (tel__mono_ms() + TEL_SYNC_MIN_REQUEST_MS > e->deadline) {
        e->st->waiting++;
        note(e, "%s: out of time; an erasure request waits for the next run", e->app);
        return 0;
    }
    e->rc = send_one(e, r);
    return e->rc != TEL_OK;
}

int tel__sync_erasures(const char *state_dir, const tel_erase_io *io, const char *app,
                       uint64_t deadline, int force, tel_erase_stats *st)
{
    memset(st, 0, sizeof *st);
    char dir[TEL_PATH_MAX + 32];
    if ((size_t)snprintf(dir, sizeof dir, "%s/" TEL_ERASURE_DIR, state_dir) >= sizeof dir)
        return tel__fail(TEL_ERR_NOSTATE, "state path too long");
    /* One sender at a time: the directory itself is the lock, so nothing
     * is added to it that a listing would have to skip. */
    eraser e = { state_dir, io, app, deadline, force, st, TEL_OK };
    int lock = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (lock < 0)
        return errno == ENOENT ? TEL_OK : tel__fail(TEL_ERR_NOSTATE, "cannot open the erasure requests");
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        close(lock);
        note(&e, "%s: another tel-sync is sending the erasure requests", app);
        return TEL_OK;
    }
    int rc = tel__erasure_each(state_dir, erase_each, &e, &st->unreadable);
    close(lock);
    if (st->unreadable)
        note(&e, "%s: %zu erasure %s cannot be read; left alone", app, st->unreadable,
             st->unreadable == 1 ? "request" : "requests");
    return e.rc != TEL_OK ? e.rc : rc;
}
