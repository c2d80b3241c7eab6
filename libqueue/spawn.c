/* SPDX-License-Identifier: MIT */
/*
 * libqueue/spawn.c - starts tel-sync detached from the host.
 *
 * posix_spawn (vfork underneath) costs the host a fraction of a
 * millisecond however large it is, where fork would copy its page tables.
 * The child gets its own session, so closing the terminal does not stop
 * it; /dev/null for stdio, so it can never write into the host's output
 * or hold a pipe of the host's open; and no other inherited descriptor.
 * The host never waits for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tel_config.h"


extern char **environ;

/* environ plus NAME=VALUE, in a block the caller frees; NULL when memory
 * ran out.  A NAME already present is replaced, not doubled. */
static char **env_with(const char *name, const char *value)
{
    size_t n = 0, nlen = strlen(name);
    /* A host that called clearenv() has no environment block at all. */
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    char *entry = malloc(nlen + strlen(value) + 2);
    if (!env || !entry) {
        free(env);
        free(entry);
        return NULL;
    }
    sprintf(entry, "%s=%s", name, value);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], name, nlen) == 0 && environ[i][nlen] == '='))
            env[k++] = environ[i];
    env[k++] = entry;
    env[k] = NULL;
    return env;
}

int tel__spawn_sync(const char *app, const char *state_dir, pid_t *pidp)
{
    /* $TEL_SYNC_PATH (absolute) for tests and unusual installs; else the
     * path chosen at build time; else, for a library installed under
     * another prefix than it was built for, tel-sync on PATH. */
    const char *bin = getenv("TEL_SYNC_PATH");
    int search = 0;
    if (!bin || bin[0] != '/')
        bin = TEL_SYNC_BIN;
    if (access(bin, X_OK) != 0) {
        bin = "tel-sync";
        search = 1;
    }
    char *argv[] = { (char *)bin, "--app", (char *)app, "--quiet", NULL };

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return tel__fail(TEL_ERR_NOMEM, "spawn: out of memory");
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return tel__fail(TEL_ERR_NOMEM, "spawn: out of memory");
    }
    int rc = 0;
    rc |= posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rc |= posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    rc |= posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc |= posix_spawn_file_actions_addclosefrom_np(&fa, 3);

    /* Signals the host blocked or ignored are not tel-sync's business. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    rc |= posix_spawnattr_setsigmask(&attr, &none);
    rc |= posix_spawnattr_setsigdefault(&attr, &all);
    rc |= posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    /* A state directory the host chose must reach tel-sync, which finds
     * queues by the app's name alone. */
    char **env = environ;
    if (rc == 0 && state_dir) {
        char name[TEL_MAX_NAME + 32];
        tel__env_name(app, "STATE_DIR", name, sizeof name);
        if (!(env = env_with(name, state_dir)))
            rc = ENOMEM;
    }
    pid_t pid = 0;
    if (rc == 0)
        rc = search ? posix_spawnp(&pid, bin, &fa, &attr, argv, env)
                    : posix_spawn(&pid, bin, &fa, &attr, argv, env);
    if (env != environ) {
        /* Only the entry env_with() added, the last one, is ours. */
        size_t last = 0;
        while (env[last + 1])
            last++;
        free(env[last]);
        free(env);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (pidp)
        *pidp = pid;
    if (rc != 0)
        return tel__fail(TEL_ERR_IO, "spawn: cannot start tel-sync (%s)", strerror(rc));
    return TEL_OK;
}
