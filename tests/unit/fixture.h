/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/fixture.h - a private temporary root and fresh HOMEs under
 * it, so that no unit test reads or writes the real user's state and no
 * two tests (or two runs in parallel worktrees) share a directory.
 *
 *   fx_setup("api")      makes $TMPDIR/tel-api.XXXXXX and clears every
 *                        variable tel reads (DO_NOT_TRACK, XDG_*, CI ...)
 *   fx_fresh_home()      a new empty HOME under the root, set in the
 *                        environment, and the same variables cleared
 *                        again; returns its path (static storage)
 *   fx_root              the root, for tests that make other directories
 *   fx_cleanup()         removes the root and all below it
 */
#ifndef TEL_TEST_FIXTURE_H
#define TEL_TEST_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char fx_root[256];
static int fx_home_seq;

/* Variables that change what tel decides; none may leak in from the
 * environment the tests were started in. */
static const char *const fx_cleared[] = {
    "DO_NOT_TRACK", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "CI", "GITHUB_ACTIONS", "GITLAB_CI",
    "BUILDKITE", "TF_BUILD", "JENKINS_URL", "CIRCLECI", "TRAVIS", "CONTINUOUS_INTEGRATION",
    "BUILD_NUMBER", "RUN_ID",
};

static inline int fx_setup(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fx_root, sizeof fx_root, "%s/tel-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(fx_root)) {
        printf("FAIL setup: cannot make a temporary directory\n");
        return -1;
    }
    for (size_t i = 0; i < sizeof fx_cleared / sizeof *fx_cleared; i++)
        unsetenv(fx_cleared[i]);
    return 0;
}

static inline const char *fx_fresh_home(void)
{
    static char home[512];
    snprintf(home, sizeof home, "%s/home%d", fx_root, ++fx_home_seq);
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    for (size_t i = 0; i < sizeof fx_cleared / sizeof *fx_cleared; i++)
        unsetenv(fx_cleared[i]);
    return home;
}

static int fx_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    remove(path);
    return 0;
}

static inline void fx_cleanup(void)
{
    if (fx_root[0])
        nftw(fx_root, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
