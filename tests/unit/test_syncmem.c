/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_syncmem.c - tel-sync's memory stays bounded whatever the
 * queue holds.
 *
 * Fills a queue with 100,000 events (caps raised for the purpose), drains
 * it with the real tel-sync into the real tel-collect, and reads the peak
 * resident set of the tel-sync process from wait4().  Under the sanitizers
 * the shadow memory makes the figure meaningless, so the bound is skipped
 * there and only the delivery is checked.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"

#define EVENTS 100000
#define BOUND_KB (16 * 1024)


static pid_t start(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int fill(void)
{
    tel_options *o = tel_options_new("syncmem");
    if (!o || tel_options_set_caps(o, 1000000, 256u << 20, 0) != TEL_OK)
        return -1;
    tel *h;
    if (tel_open(&h, o) != TEL_OK)
        return -1;
    char cmd[16];
    for (int i = 0; i < EVENTS; i += 1000) {
        tel_batch_begin(h);
        for (int k = 0; k < 1000; k++) {
            snprintf(cmd, sizeof cmd, "cmd%d", k % 9);
            tel_prop p[] = { TEL_STR("command", cmd), TEL_INT("n", i + k), TEL_INT("exit_code", k % 3) };
            tel_emit_event(h, "command.exited", p, 3);
        }
        if (tel_batch_commit(h) != TEL_OK) {
            tel_close(h);
            return -1;
        }
    }
    tel_close(h);
    return 0;
}

static long queued(void)
{
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    tel_queue_stats s;
    if (tel__state_dir("syncmem", dir, sizeof dir) != TEL_OK ||
        tel__queue_open(&q, dir, NULL, TEL_Q_READONLY) != TEL_OK)
        return -1;
    long n = tel__queue_stats(q, &s) == TEL_OK ? (long)s.count : -1;
    tel__queue_close(q);
    return n;
}

int main(void)
{
    const char *build = getenv("TEL_BUILD");
    if (!build) {
        printf("FAIL syncmem: TEL_BUILD is not set (run through tests/run.sh)\n");
        return 1;
    }
    if (fx_setup("syncmem") != 0)
        return 1;
    const char *home = fx_fresh_home();
    unsetenv("SYNCMEM_TELEMETRY_ENABLED");

    CHECK("100,000 events queued", fill() == 0 && queued() == EVENTS);

    char collect[512], sync_bin[512], portfile[600], url[128];
    snprintf(collect, sizeof collect, "%s/bin/tel-collect", build);
    snprintf(sync_bin, sizeof sync_bin, "%s/bin/tel-sync", build);
    snprintf(portfile, sizeof portfile, "%s/port", home);
    char *cargv[] = { collect, "--port", "0", "--port-file", portfile, "--out", "/dev/null", "-q", NULL };
    pid_t cpid = start(cargv);
    int port = 0;
    for (int i = 0; i < 200 && port == 0; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (!port)
            usleep(20000);
    }
    CHECK("tel-collect is listening", port > 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/batch", port);

    char *sargv[] = { sync_bin, "--app", "syncmem", "--endpoint", url, "--max-time", "120", NULL };
    pid_t spid = start(sargv);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t got = wait4(spid, &status, 0, &ru);
    CHECK("tel-sync exits 0", got == spid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT("every event delivered: the queue is empty", queued(), 0);
    printf("# tel-sync peak RSS draining %d events: %ld KiB\n", EVENTS, ru.ru_maxrss);
    const char *san = getenv("TEL_SANITIZED");
    if (san && strcmp(san, "1") == 0)
        CHECK_SKIP("peak RSS bound (sanitizer shadow memory counts too)");
    else
        CHECK("tel-sync peak RSS stays within 16 MiB", ru.ru_maxrss > 0 && ru.ru_maxrss <= BOUND_KB);

    kill(cpid, SIGTERM);
    waitpid(cpid, NULL, 0);
    fx_cleanup();
    return check_exit();
}
