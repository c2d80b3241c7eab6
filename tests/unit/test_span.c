/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_span.c - spans: what tel_span_begin/tel_span_end record,
 * that the events rebuild the tree (ids, parents, offsets, durations),
 * the NULL and disabled paths, spans left open at tel_close, the codes of
 * tel_span_start, spans ended twice or across a switch of the handle, and
 * start offsets counted from the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define MAX_EV 16

/* The span events of the queue, decoded. */
typedef struct span_ev {
    char name[72], id[20], parent[72], parent_id[20], command[64];
    long long duration, start, status;
    char exec[37];
} span_ev;

static span_ev evs[MAX_EV];
static int nevs;
static int nall;   /* every span event, also past MAX_EV */

static void str_prop(const tel_record *r, const char *key, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < r->nprops; i++)
        if (r->keys[i].len == strlen(key) && memcmp(r->keys[i].p, key, r->keys[i].len) == 0 &&
            r->vals[i].type == TEL_T_STR)
            snprintf(out, size, "%.*s", (int)r->vals[i].v.s.len, r->vals[i].v.s.p);
}

static long long int_prop(const tel_record *r, const char *key)
{
    for (size_t i = 0; i < r->nprops; i++)
        if (r->keys[i].len == strlen(key) && memcmp(r->keys[i].p, key, r->keys[i].len) == 0 &&
            r->vals[i].type == TEL_T_INT)
            return r->vals[i].v.i;
    return -1;
}

static int collect(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)ud;
    (void)seq;
    tel_record r;
    if (tel__record_decode(&r, data, len) != TEL_OK)
        return 0;
    if (r.name.len != 4 || memcmp(r.name.p, "span", 4) != 0)
        return 0;
    if (nall++, nevs == MAX_EV)
        return 0;
    span_ev *e = &evs[nevs++];
    str_prop(&r, "name", e->name, sizeof e->name);
    str_prop(&r, "span_id", e->id, sizeof e->id);
    str_prop(&r, "parent", e->parent, sizeof e->parent);
    str_prop(&r, "parent_id", e->parent_id, sizeof e->parent_id);
    str_prop(&r, "command", e->command, sizeof e->command);
    e->duration = int_prop(&r, "duration_ms");
    e->start = int_prop(&r, "start_ms");
    e->status = int_prop(&r, "status");
    tel__uuid_format(r.exec, e->exec);
    return 0;
}

static void read_spans(const char *app)
{
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    nevs = nall = 0;
    if (tel__state_dir(app, dir, sizeof dir) == TEL_OK && tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) == TEL_OK) {
        tel__queue_scan(q, 0, 1000, SIZE_MAX, collect, NULL);
        tel__queue_close(q);
    }
}

static const span_ev *find(const char *name)
{
    for (int i = 0; i < nevs; i++)
        if (strcmp(evs[i].name, name) == 0)
            return &evs[i];
    return NULL;
}

static void nap(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

static void test_tree(void)
{
    CHECK_GROUP("tree");
    tel *h;
    CHECK_EQ_INT("open", tel_open(&h, tel_options_new("tspan")), TEL_OK);
    tel_command_started(h, "sync", NULL, 0);
    tel_span *op = tel_span_begin(h, "operation", NULL);
    nap(5);
    tel_span *fetch = tel_span_begin(h, "fetch", op);
    tel_span *parse = tel_span_begin(h, "parse", fetch);
    nap(20);
    CHECK_EQ_INT("a child ends", tel_span_end(parse, 0), TEL_OK);
    tel_span *late = tel_span_begin(h, "upload", op);
    CHECK_EQ_INT("a parent may end before its child", tel_span_end(op, 0), TEL_OK);
    CHECK_EQ_INT("fetch ends with a failure status", tel_span_end(fetch, 3), TEL_OK);
    CHECK_EQ_INT("and the orphan still records", tel_span_end(late, 0), TEL_OK);
    tel_close(h);

    read_spans("tspan");
    CHECK_EQ_INT("four span events", nevs, 4);
    const span_ev *o = find("operation"), *f = find("fetch"), *p = find("parse"), *u = find("upload");
    if (!o || !f || !p || !u) {
        CHECK("every span found", 0);
        return;
    }
    CHECK("the root has no parent", o->parent[0] == '\0' && o->parent_id[0] == '\0');
    CHECK("span ids are 16 hex digits", strlen(o->id) == 16 && strspn(o->id, "0123456789abcdef") == 16);
    CHECK("span ids differ", strcmp(o->id, f->id) && strcmp(f->id, p->id) && strcmp(p->id, u->id));
    CHECK("fetch's parent is the operation, by name and id",
          strcmp(f->parent, "operation") == 0 && strcmp(f->parent_id, o->id) == 0);
    CHECK("parse's parent is fetch", strcmp(p->parent_id, f->id) == 0 && strcmp(p->parent, "fetch") == 0);
    CHECK("upload's parent is the operation though it ended first", strcmp(u->parent_id, o->id) == 0);
    CHECK("all in one run", strcmp(o->exec, f->exec) == 0 && strcmp(o->exec, p->exec) == 0);
    CHECK("parse took at least the 20 ms slept", p->duration >= 20);
    CHECK("the parent lasts at least as long as its child", o->duration >= p->duration && f->duration >= p->duration);
    CHECK("a child starts no earlier than its parent", f->start >= o->start + 5 && p->start >= f->start);
    CHECK("statuses recorded", o->status == 0 && f->status == 3);
    CHECK("the command is named", strcmp(o->command, "sync") == 0);
}

static void test_edges(void)
{
    CHECK_GROUP("edges");
    tel *h;
    tel_open(&h, tel_options_new("tspan2"));
    CHECK("a bad name gives NULL", tel_span_begin(h, "has space", NULL) == NULL);
    CHECK("and says why", strstr(tel_last_error(), "space") != NULL);
    CHECK("NULL handle gives NULL", tel_span_begin(NULL, "x", NULL) == NULL);
    CHECK_EQ_INT("ending NULL is harmless", tel_span_end(NULL, 0), TEL_DISABLED);
    tel *other;
    tel_open(&other, tel_options_new("tspan3"));
    tel_span *foreign = tel_span_begin(other, "x", NULL);
    CHECK("a parent of another handle is refused", tel_span_begin(h, "y", foreign) == NULL);
    tel_span_end(foreign, 0);
    tel_close(other);
    tel_span_begin(h, "left-open", NULL);
    tel_span *a = tel_span_begin(h, "also-open", NULL);
    tel_span_begin(h, "child-open", a);
    tel_close(h);
    read_spans("tspan2");
    CHECK_EQ_INT("spans left open at close record nothing (and leak nothing)", nevs, 0);

    /* A long-running host that begins spans and never ends them must not
     * grow without bound. */
    tel_open(&h, tel_options_new("tspan5"));
    int opened = 0;
    tel_span *last = NULL, *s;
    while (opened < 100000 && (s = tel_span_begin(h, "leak", NULL)) != NULL) {
        last = s;
        opened++;
    }
    CHECK_EQ_INT("at most 1024 spans are open at once", opened, 1024);
    CHECK("the next is refused, saying why", strstr(tel_last_error(), "open spans") != NULL);
    tel_span_end(last, 0);
    CHECK("one ended makes room for another", tel_span_begin(h, "again", NULL) != NULL);
    tel_close(h);

    setenv("DO_NOT_TRACK", "1", 1);
    tel_open(&h, tel_options_new("tspan4"));
    tel_span *off = tel_span_begin(h, "x", NULL);
    CHECK("disabled: NULL", off == NULL);
    CHECK("disabled: no error", tel_last_error()[0] == '\0');
    CHECK("disabled: a NULL parent works too", tel_span_begin(h, "y", off) == NULL);
    CHECK_EQ_INT("disabled: end is a no-op", tel_span_end(off, 0), TEL_DISABLED);
    tel_close(h);
    unsetenv("DO_NOT_TRACK");
}


/* How many span events the queue of app holds. */
static int count_spans(const char *app)
{
    read_spans(app);
    return nall;
}

static void test_codes(void)
{
    CHECK_GROUP("codes");
    tel *h, *other;
    tel_span *s = (tel_span *)&s, *keep;
    tel_open(&h, tel_options_new("tspan6"));
    CHECK_EQ_INT("a bad name is invalid", tel_span_start(&s, h, "has space", NULL), TEL_ERR_INVALID);
    CHECK("and gives no span", s == NULL);
    CHECK_EQ_INT("no handle is invalid", tel_span_start(&s, NULL, "x", NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("no output is invalid", tel_span_start(NULL, h, "x", NULL), TEL_ERR_INVALID);
    tel_open(&other, tel_options_new("tspan7"));
    tel_span *foreign = tel_span_begin(other, "x", NULL);
    CHECK_EQ_INT("a parent of another handle is invalid", tel_span_start(&s, h, "y", foreign), TEL_ERR_INVALID);
    tel_span_end(foreign, 0);
    tel_close(other);
    CHECK_EQ_INT("a good span starts", tel_span_start(&keep, h, "ok", NULL), TEL_OK);
    CHECK("and is given", keep != NULL);
    int rc = TEL_OK, opened = 1;
    while (opened < 2000 && (rc = tel_span_start(&s, h, "many", NULL)) == TEL_OK)
        opened++;
    CHECK_EQ_INT("the open-span limit is its own code, not an invalid argument", rc, TEL_ERR_LIMIT);
    CHECK_EQ_INT("at 1024 open spans", opened, 1024);
    CHECK("saying why", strstr(tel_last_error(), "open spans") != NULL);
    tel_close(h);

    setenv("DO_NOT_TRACK", "1", 1);
    tel_open(&h, tel_options_new("tspan8"));
    s = (tel_span *)&s;
    CHECK_EQ_INT("disabled: TEL_DISABLED", tel_span_start(&s, h, "x", NULL), TEL_DISABLED);
    CHECK("disabled: no span and no error", s == NULL && tel_last_error()[0] == '\0');
    tel_close(h);
    unsetenv("DO_NOT_TRACK");
}

static void test_twice(void)
{
    CHECK_GROUP("twice");
    tel *h;
    tel_open(&h, tel_options_new("tspan9"));
    tel_span *a = tel_span_begin(h, "a", NULL);
    CHECK_EQ_INT("a span ends", tel_span_end(a, 0), TEL_OK);
    CHECK_EQ_INT("ending it again is refused", tel_span_end(a, 0), TEL_ERR_STATE);
    CHECK("saying why", strstr(tel_last_error(), "already ended") != NULL);
    tel_span *child;
    CHECK_EQ_INT("an ended parent is refused", tel_span_start(&child, h, "c", a), TEL_ERR_INVALID);
    /* Spans begun and ended in a loop reuse the memory of the oldest
     * ended ones, never of one just ended. */
    tel_span *last = NULL;
    for (int i = 0; i < 300; i++) {
        last = tel_span_begin(h, "loop", NULL);
        tel_span_end(last, 0);
    }
    CHECK_EQ_INT("the last of a loop is still refused a second end", tel_span_end(last, 0), TEL_ERR_STATE);
    tel_close(h);
    CHECK_EQ_INT("each span recorded once", count_spans("tspan9"), 301);
}

static void test_runs(void)
{
    CHECK_GROUP("runs");
    tel *h;
    tel_open(&h, tel_options_new("tspan10"));
    tel_span *old = tel_span_begin(h, "old", NULL);
    nap(300);
    CHECK_EQ_INT("off", tel_handle_set_enabled(h, 0), TEL_DISABLED);
    CHECK_EQ_INT("on again: a new run", tel_handle_set_enabled(h, 1), TEL_OK);
    tel_span *child;
    CHECK_EQ_INT("a child of a span of the ended run records nothing", tel_span_start(&child, h, "c", old),
                 TEL_DISABLED);
    CHECK_EQ_INT("a span of the ended run ends as a no-op", tel_span_end(old, 0), TEL_DISABLED);
    CHECK_EQ_INT("once", tel_span_end(old, 0), TEL_ERR_STATE);
    tel_span *fresh = tel_span_begin(h, "fresh", NULL);
    CHECK_EQ_INT("a span of the new run records", tel_span_end(fresh, 0), TEL_OK);
    tel_close(h);
    read_spans("tspan10");
    const span_ev *f = find("fresh");
    CHECK("only the new run's span is recorded", nevs == 1 && f && !find("old"));
    CHECK("its start counts from the new run, not from tel_open", f && f->start >= 0 && f->start < 300);
}

int main(void)
{
    char home[] = "/tmp/tel-span.XXXXXX";
    if (!mkdtemp(home)) {
        CHECK_SKIP("no temporary directory");
        return check_exit();
    }
    setenv("HOME", home, 1);
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("DO_NOT_TRACK");
    test_tree();
    test_edges();
    test_codes();
    test_twice();
    test_runs();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", home);
    return check_exit();
}
