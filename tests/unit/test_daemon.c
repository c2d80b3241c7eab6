/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_daemon.c - what a long-running host (an operator in a
 * pod) needs: a state directory of its choosing without HOME, an identity
 * derived from its installation id (stable across restarts, distinct per
 * app, no cookie file), the user's opt-out flipped on the open handle,
 * and periodic tel_spawn_sync without zombies.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define CLUSTER "5b8f2a9e-3c1d-4e7f-9a0b-1c2d3e4f5a6b"

static char root[64];

static long queued_in(const char *dir)
{
    tel_queue *q;
    tel_queue_stats s = { 0 };
    if (tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) != TEL_OK)
        return 0;
    tel__queue_stats(q, &s);
    tel__queue_close(q);
    return (long)s.count;
}

/* Keeps the anonymous id of the first record it is shown, as text. */
static int anon_of(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    (void)seq;
    char *out = ud;
    tel_record r;
    if (tel__record_decode(&r, data, len) == TEL_OK && r.anon)
        tel__uuid_format(r.anon, out);
    return 1;
}

/* The anonymous id of the first queued event, as text. */
static int first_anon(const char *dir, char out[37])
{
    tel_queue *q;
    out[0] = '\0';
    if (tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) != TEL_OK)
        return -1;
    tel__queue_scan(q, 0, 1, SIZE_MAX, anon_of, out);
    tel__queue_close(q);
    return out[0] ? 0 : -1;
}

static tel *open_daemon(const char *app, const char *dir, const char *cluster)
{
    tel_options *o = tel_options_new(app);
    tel_options_set_state_dir(o, dir);
    if (cluster)
        tel_options_set_installation_id(o, cluster);
    tel *h = NULL;
    tel_open(&h, o);
    return h;
}

static void test_state_dir(void)
{
    CHECK_GROUP("state dir");
    char dir[128], path[256];
    snprintf(dir, sizeof dir, "%s/var/lib/op", root);
    tel_options *o = tel_options_new("cozy-op");
    CHECK_EQ_INT("a relative directory is refused", tel_options_set_state_dir(o, "var/lib"), TEL_ERR_INVALID);
    tel_options_free(o);
    tel *h = open_daemon("cozy-op", dir, NULL);
    CHECK("without HOME, the host's directory opens", h && tel_enabled(h));
    CHECK_EQ_INT("and records", tel_emit_event(h, "tick", NULL, 0), TEL_OK);
    tel_close(h);
    CHECK_EQ_INT("the queue is in the host's directory", queued_in(dir), 1);
    struct stat st;
    CHECK("created 0700", stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    snprintf(path, sizeof path, "%s/telemetry-cookie", dir);
    CHECK("with a random cookie when no installation id is given", stat(path, &st) == 0);

    char env_dir[128];
    snprintf(env_dir, sizeof env_dir, "%s/from-env", root);
    setenv("COZY_OP_TELEMETRY_STATE_DIR", env_dir, 1);
    char found[TEL_PATH_MAX];
    CHECK("tel__state_dir finds the variable's directory (tel-sync, tel status)",
          tel__state_dir("cozy-op", found, sizeof found) == TEL_OK && strcmp(found, env_dir) == 0);
    h = open_daemon("cozy-op", dir, NULL);
    tel_emit_event(h, "tick", NULL, 0);
    tel_close(h);
    CHECK_EQ_INT("the variable wins over the host's option", queued_in(env_dir), 1);
    setenv("COZY_OP_TELEMETRY_STATE_DIR", "relative/dir", 1);
    CHECK_EQ_INT("a relative variable is ignored", tel__state_dir("cozy-op", found, sizeof found), TEL_ERR_NOSTATE);
    unsetenv("COZY_OP_TELEMETRY_STATE_DIR");
}

static void test_identity(void)
{
    CHECK_GROUP("installation id");
    char d1[128], d2[128], d3[128], a1[37], a2[37], a3[37], path[256];
    snprintf(d1, sizeof d1, "%s/op-1", root);
    snprintf(d2, sizeof d2, "%s/op-2", root);
    snprintf(d3, sizeof d3, "%s/ctl", root);
    tel *h = open_daemon("cozystack-operator", d1, CLUSTER);
    tel_emit_event(h, "tick", NULL, 0);
    tel_close(h);
    /* A restarted pod: a fresh, empty state directory, the same cluster. */
    h = open_daemon("cozystack-operator", d2, CLUSTER);
    tel_emit_event(h, "tick", NULL, 0);
    tel_close(h);
    h = open_daemon("cozystack-controller", d3, CLUSTER);
    tel_emit_event(h, "tick", NULL, 0);
    tel_close(h);
    first_anon(d1, a1);
    first_anon(d2, a2);
    first_anon(d3, a3);
    CHECK("a restarted pod keeps its identity", a1[0] && strcmp(a1, a2) == 0);
    CHECK("two apps of one cluster never share one", a3[0] && strcmp(a1, a3) != 0);
    CHECK("the id is marked as a derived UUID (version 8)", a1[14] == '8' && strchr("89ab", a1[19]));
    CHECK("the cluster UID is not the id", strcmp(a1, CLUSTER) != 0);
    struct stat st;
    snprintf(path, sizeof path, "%s/telemetry-cookie", d1);
    CHECK("no cookie file is written", stat(path, &st) != 0);
    tel_options *o = tel_options_new("x");
    CHECK_EQ_INT("an empty installation id is refused", tel_options_set_installation_id(o, ""), TEL_ERR_INVALID);
    tel_options_free(o);

    /* A refused id leaves the one set before, not an empty one. */
    char d4[128], a4[37], huge[300];
    snprintf(d4, sizeof d4, "%s/op-4", root);
    memset(huge, 'u', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    o = tel_options_new("cozystack-operator");
    tel_options_set_state_dir(o, d4);
    tel_options_set_installation_id(o, CLUSTER);
    CHECK_EQ_INT("an installation id over 256 bytes is refused",
                 tel_options_set_installation_id(o, huge), TEL_ERR_INVALID);
    h = NULL;
    tel_open(&h, o);
    tel_emit_event(h, "tick", NULL, 0);
    tel_close(h);
    first_anon(d4, a4);
    CHECK("and the id set before it still decides the identity", a4[0] && strcmp(a4, a1) == 0);
}

static void test_flip(void)
{
    CHECK_GROUP("set-enabled on the open handle");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/flip", root);
    tel *h = open_daemon("cozy-flip", dir, CLUSTER);
    tel_emit_event(h, "a", NULL, 0);
    tel_emit_event(h, "b", NULL, 0);
    tel_batch_begin(h);
    tel_emit_event(h, "in-batch", NULL, 0);
    char run1[37], run2[37];
    tel_exec_id(h, run1);
    CHECK_EQ_INT("off", tel_handle_set_enabled(h, 0), TEL_DISABLED);
    CHECK("the handle stops recording", !tel_enabled(h));
    CHECK_EQ_INT("an emit is a no-op", tel_emit_event(h, "c", NULL, 0), TEL_DISABLED);
    CHECK_EQ_INT("what was queued is purged", queued_in(dir), 0);
    CHECK_EQ_INT("and the open batch dropped", tel_batch_commit(h) == TEL_ERR_STATE || queued_in(dir) == 0, 1);
    CHECK_EQ_INT("on", tel_handle_set_enabled(h, 1), TEL_OK);
    tel_exec_id(h, run2);
    CHECK("a new run after the flip: nothing links it to the events of before",
          run1[0] && run2[0] && strcmp(run1, run2) != 0);
    CHECK_EQ_INT("records again", tel_emit_event(h, "d", NULL, 0), TEL_OK);
    CHECK_EQ_INT("one event queued", queued_in(dir), 1);
    setenv("DO_NOT_TRACK", "1", 1);
    tel_handle_set_enabled(h, 0);
    CHECK_EQ_INT("on while the user's DO_NOT_TRACK holds stays off", tel_handle_set_enabled(h, 1), TEL_DISABLED);
    unsetenv("DO_NOT_TRACK");
    tel_close(h);
    CHECK_EQ_INT("NULL handle", tel_handle_set_enabled(NULL, 1), TEL_ERR_INVALID);
}

/* Zombie children of this process. */
static int zombies(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    pid_t me = getpid();
    while (d && (e = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == me && state == 'Z')
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static void nap(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void test_spawn(void)
{
    CHECK_GROUP("periodic spawn");
    if (access("/bin/true", X_OK) != 0) {
        CHECK_SKIP("no /bin/true to stand in for tel-sync");
        return;
    }
    setenv("TEL_SYNC_PATH", "/bin/true", 1);
    char dir[128], stamp[256];
    snprintf(dir, sizeof dir, "%s/spawn", root);
    snprintf(stamp, sizeof stamp, "%s/telemetry/spawn.stamp", dir);
    tel *h = open_daemon("cozy-spawn", dir, CLUSTER);
    int started = 0, worst = 0;
    for (int i = 0; i < 6; i++) {
        tel_emit_event(h, "tick", NULL, 0);
        /* The previous sync may still be running on a loaded machine:
         * then none is started beside it, and the next try is. */
        int rc = TEL_DISABLED;
        for (int k = 0; k < 200 && rc != TEL_OK; k++) {
            unlink(stamp);   /* as if the interval had passed */
            rc = tel_spawn_sync(h, 1);
            if (rc != TEL_OK)
                nap(50);
        }
        started += rc == TEL_OK;
        nap(100);
        int z = zombies();
        worst = z > worst ? z : worst;
    }
    CHECK_EQ_INT("six periodic syncs started", started, 6);
    CHECK("never more than the latest finished child waits", worst <= 1);
    for (int k = 0; k < 200 && zombies() == 0; k++)
        nap(50);   /* until the last sync has finished */
    CHECK_EQ_INT("the last one, finished, waits to be reaped", zombies(), 1);
    tel_close(h);
    CHECK_EQ_INT("tel_close reaps it: none left", zombies(), 0);

    /* A sync that outlives the interval: no second one beside it. */
    char slow[160];
    snprintf(slow, sizeof slow, "%s/slow-sync", root);
    FILE *f = fopen(slow, "w");
    if (f) {
        fputs("#!/bin/sh\nsleep 1\n", f);
        fclose(f);
        chmod(slow, 0700);
    }
    setenv("TEL_SYNC_PATH", slow, 1);
    h = open_daemon("cozy-spawn", dir, CLUSTER);
    tel_emit_event(h, "tick", NULL, 0);
    unlink(stamp);
    CHECK_EQ_INT("a slow sync starts", tel_spawn_sync(h, 1), TEL_OK);
    unlink(stamp);
    CHECK_EQ_INT("no second one while it runs", tel_spawn_sync(h, 1), TEL_DISABLED);
    /* Polled with a generous deadline: a loaded machine may be slow to
     * run the one-second sync to its end. */
    int next = TEL_DISABLED;
    for (int i = 0; i < 300 && next != TEL_OK; i++) {
        nap(100);
        unlink(stamp);
        next = tel_spawn_sync(h, 1);
    }
    CHECK_EQ_INT("once it has finished, the next one starts", next, TEL_OK);
    CHECK_EQ_INT("and the finished one was reaped", zombies(), 0);
    tel_close(h);
    unsetenv("TEL_SYNC_PATH");
}

/*
 * A forget's erasure request is sent even after the user opted out: the
 * host's tel_spawn_sync still starts a tel-sync for it (here a script
 * that leaves a mark), and reaps it while the handle records nothing.
 */
static void test_erasure_when_off(void)
{
    CHECK_GROUP("erasure request while off");
    /* The slow sync test_spawn's handle left running is waited for here,
     * so the zombie count below is this test's own. */
    while (waitpid(-1, NULL, 0) > 0)
        ;
    char dir[128], mark[160], script[160];
    snprintf(dir, sizeof dir, "%s/erase", root);
    snprintf(mark, sizeof mark, "%s/erase-sync-ran", root);
    snprintf(script, sizeof script, "%s/erase-sync", root);
    FILE *f = fopen(script, "w");
    if (f) {
        fprintf(f, "#!/bin/sh\ntouch '%s'\n", mark);
        fclose(f);
        chmod(script, 0700);
    }
    setenv("TEL_SYNC_PATH", script, 1);
    setenv("COZY_ERASE_TELEMETRY_STATE_DIR", dir, 1);
    tel_options *o = tel_options_new("cozy-erase");
    tel_options_set_erasure(o, 1);
    tel *h = NULL;
    tel_open(&h, o);
    tel_emit_event(h, "tick", NULL, 0);
    tel_close(h);
    CHECK_EQ_INT("forget leaves an erasure request", tel_forget("cozy-erase"), TEL_OK);

    setenv("DO_NOT_TRACK", "1", 1);
    h = NULL;
    CHECK_EQ_INT("the user opted out", tel_open(&h, tel_options_new("cozy-erase")), TEL_DISABLED);
    CHECK_EQ_INT("a sync is still started for the request", tel_spawn_sync(h, 60), TEL_OK);
    for (int i = 0; i < 200 && access(mark, F_OK) != 0; i++)
        nap(50);
    CHECK("and it ran", access(mark, F_OK) == 0);
    for (int i = 0; i < 200 && zombies() == 0; i++)
        nap(50);
    CHECK_EQ_INT("not a second one within the interval", tel_spawn_sync(h, 60), TEL_DISABLED);
    CHECK_EQ_INT("and the finished one is reaped though the handle is off", zombies(), 0);
    tel_close(h);
    unsetenv("DO_NOT_TRACK");
    unsetenv("COZY_ERASE_TELEMETRY_STATE_DIR");
    unsetenv("TEL_SYNC_PATH");
}

/*
 * A host that cleared its whole environment (clearenv() leaves environ
 * NULL) still gets its sync started, with the state directory passed on,
 * and is not crashed by it.  Run in a child, so the environment of the
 * other tests stays.  Whether a tel-sync is found does not matter here.
 */
static void test_spawn_without_environment(void)
{
    CHECK_GROUP("spawn without an environment");
    char dir[128];
    snprintf(dir, sizeof dir, "%s/noenv", root);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        clearenv();
        tel_options *o = tel_options_new("cozy-noenv");
        tel_options_set_state_dir(o, dir);
        tel_options_set_endpoint(o, "http://127.0.0.1:1/v1/batch");
        tel *h = NULL;
        tel_open(&h, o);
        tel_emit_event(h, "tick", NULL, 0);
        tel_spawn_sync(h, 0);
        tel_close(h);
        _exit(0);
    }
    int st = 0;
    CHECK("the child ran", pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK("tel_spawn_sync with environ NULL returns instead of crashing",
          WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/tel-daemon.XXXXXX");
    if (!mkdtemp(root)) {
        CHECK_SKIP("no temporary directory");
        return check_exit();
    }
    /* A pod: no HOME, no XDG directories. */
    unsetenv("HOME");
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("DO_NOT_TRACK");
    test_state_dir();
    test_identity();
    test_flip();
    test_spawn();
    test_erasure_when_off();
    test_spawn_without_environment();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", root);
    return check_exit();
}
