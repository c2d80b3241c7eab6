/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_corpus.c - replays the fuzzers' seed corpora and saved
 * regressions through the harnesses' own entry points, without libFuzzer,
 * in every `make check` (plain and sanitized).
 *
 * Each harness is linked in here as its own object, built with its entry
 * point renamed (the Makefile's -DLLVMFuzzerTestOneInput=fuzz_NAME_one),
 * so the invariants it asserts (with __builtin_trap) are exactly the ones
 * the fuzzer checks.  Every input runs in a child process: a crash or a trap
 * is then a FAIL line naming the file, and the replay goes on.
 *
 *   tests/fuzz/corpus/<harness>/        seeds (and anything worth keeping)
 *   tests/fuzz/regressions/<harness>/   inputs that once broke something
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* The harnesses' entry points, and fuzz_config's set-up. */
int fuzz_record_one(const uint8_t *data, size_t size);
int fuzz_batch_one(const uint8_t *data, size_t size);
int fuzz_config_one(const uint8_t *data, size_t size);
int fuzz_kv_one(const uint8_t *data, size_t size);
int fuzz_prom_one(const uint8_t *data, size_t size);
int fuzz_json_one(const uint8_t *data, size_t size);
int fuzz_config_setup(void);
const char *fuzz_config_home(void);

typedef int (*entry_fn)(const uint8_t *, size_t);

static const struct {
    const char *name;
    entry_fn fn;
} harnesses[] = {
    { "record", fuzz_record_one },
    { "batch", fuzz_batch_one },
    { "config", fuzz_config_one },
    { "kv", fuzz_kv_one },
    { "prom", fuzz_prom_one },
    { "json", fuzz_json_one },
};

static entry_fn harness(const char *name)
{
    for (size_t i = 0; i < sizeof harnesses / sizeof *harnesses; i++)
        if (strcmp(harnesses[i].name, name) == 0)
            return harnesses[i].fn;
    return NULL;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return -1;
    *data = buf;
    *len = n;
    return 0;
}

/* Runs one input in a child; returns the wait status. */
static int replay(entry_fn fn, const uint8_t *data, size_t len)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The child must not print ok/FAIL lines: stdout is the parent's
         * report, so only a sanitizer's stderr report may come out. */
        fn(data, len);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* Replays every file of dir/<harness>/ for each harness subdirectory;
 * returns the number of inputs replayed. */
static size_t replay_tree(const char *top, const char *sub, int required)
{
    char root[1024];
    snprintf(root, sizeof root, "%s/tests/fuzz/%s", top, sub);
    DIR *d = opendir(root);
    if (!d) {
        if (required)
            CHECK("the corpus directory exists", 0);
        return 0;
    }
    size_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char hdir[1400];
        snprintf(hdir, sizeof hdir, "%s/%s", root, e->d_name);
        struct stat st;
        if (stat(hdir, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        entry_fn fn = harness(e->d_name);
        char name[640];
        snprintf(name, sizeof name, "%s/%.200s has a harness to replay it", sub, e->d_name);
        CHECK(name, fn != NULL);
        if (!fn)
            continue;
        DIR *hd = opendir(hdir);
        size_t n = 0, bad = 0;
        struct dirent *f;
        while (hd && (f = readdir(hd))) {
            if (f->d_name[0] == '.')
                continue;
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", hdir, f->d_name);
            uint8_t *data;
            size_t len;
            if (read_file(path, &data, &len) != 0) {
                printf("FAIL %s/%s/%s: cannot be read\n", sub, e->d_name, f->d_name);
                check_failures++;
                continue;
            }
            int ws = replay(fn, data, len);
            free(data);
            n++;
            if (ws == -1 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
                bad++;
                check_failures++;
                if (ws != -1 && WIFSIGNALED(ws))
                    printf("FAIL %s/%s/%s: killed by signal %d\n", sub, e->d_name, f->d_name,
                           WTERMSIG(ws));
                else
                    printf("FAIL %s/%s/%s: exit status %d\n", sub, e->d_name, f->d_name,
                           ws == -1 ? -1 : WEXITSTATUS(ws));
            }
        }
        if (hd)
            closedir(hd);
        snprintf(name, sizeof name, "%s/%.200s: %zu inputs replayed, none broke an invariant", sub,
                 e->d_name, n);
        CHECK(name, bad == 0 && n > 0);
        total += n;
    }
    closedir(d);
    return total;
}

int main(void)
{
    const char *top = getenv("TEL_TOP");
    if (!top || !*top) {
        printf("FAIL corpus: TEL_TOP is not set (run through tests/run.sh)\n");
        return 1;
    }
    /* Made here, not in each child, so that every replay shares one
     * private HOME and the parent removes it. */
    CHECK("fuzz_config's private HOME is made", fuzz_config_setup() == 0);
    size_t seeds = replay_tree(top, "corpus", 1);
    replay_tree(top, "regressions", 0);
    /* Four harnesses with a few seeds each: far fewer means the corpus
     * went missing, and the replay would pass by testing nothing. */
    CHECK("the seed corpus holds at least 40 inputs", seeds >= 40);
    for (size_t i = 0; i < sizeof harnesses / sizeof *harnesses; i++) {
        char p[1024], name[128];
        struct stat st;
        snprintf(p, sizeof p, "%s/tests/fuzz/corpus/%s", top, harnesses[i].name);
        snprintf(name, sizeof name, "harness %s has a seed corpus", harnesses[i].name);
        CHECK(name, stat(p, &st) == 0 && S_ISDIR(st.st_mode));
    }
    /* fuzz_config's private HOME. */
    const char *fz_home = fuzz_config_home();
    if (fz_home[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_home);
        if (system(cmd) != 0)
            printf("# could not remove %s\n", fz_home);
    }
    return check_exit();
}
