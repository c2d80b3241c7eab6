/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_config.c - libFuzzer harness for telemetry.conf, reached
 * the way every tool reaches it: the input is written to the config file
 * of a private HOME and tel__policy_resolve() reads it.
 *
 * What must hold whatever the file says:
 *  - a file the parser refuses counts as an opt-out (a broken "enabled =
 *    false" line must never leave telemetry on);
 *  - every text field of the policy stays NUL-terminated inside its array;
 *  - the error detail never names the file's path (it would carry the
 *    user's home directory);
 *  - after `tel disable` rewrote the file (tel__config_set), telemetry is
 *    off, whatever else the file held.
 * The private HOME lives in /dev/shm when there is one, since the rewrite
 * fsyncs and a disk would make every execution cost milliseconds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define FZ_APP "fuzzconf"

static char fz_home[128];
static char fz_conf[256];

/* Leaves no directory behind in /dev/shm when the fuzzer (or the corpus
 * replay) ends normally. */
static void fz_cleanup(void)
{
    char dir[200];
    unlink(fz_conf);
    snprintf(dir, sizeof dir, "%s/.config/" FZ_APP, fz_home);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/.config", fz_home);
    rmdir(dir);
    rmdir(fz_home);
}

/* The corpus replay (tests/unit/test_corpus.c) makes the private HOME
 * once, in its parent process, so that every replay shares it. */
int fuzz_config_setup(void);
const char *fuzz_config_home(void);

const char *fuzz_config_home(void)
{
    return fz_home;
}

int fuzz_config_setup(void)
{
    if (fz_home[0])
        return 0;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fz_home, sizeof fz_home, "%s/tel-fuzzconf.XXXXXX", base);
    if (!mkdtemp(fz_home))
        return -1;
    setenv("HOME", fz_home, 1);
    static const char *const drop[] = { "XDG_STATE_HOME", "XDG_CONFIG_HOME", "DO_NOT_TRACK",
                                        "FUZZCONF_TELEMETRY_ENABLED", "FUZZCONF_TELEMETRY_ENDPOINT",
                                        "FUZZCONF_TELEMETRY_TOKEN", "FUZZCONF_TELEMETRY_LOGGING",
                                        "FUZZCONF_TELEMETRY_DEBUG", "FUZZCONF_TELEMETRY_INSPECT" };
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        unsetenv(drop[i]);
    char dir[200];
    snprintf(dir, sizeof dir, "%s/.config", fz_home);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/.config/" FZ_APP, fz_home);
    mkdir(dir, 0700);
    snprintf(fz_conf, sizeof fz_conf, "%s/telemetry.conf", dir);
    atexit(fz_cleanup);
    return 0;
}

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void fz_check_policy(const tel_policy *p, int rc)
{
    if (rc == TEL_ERR_CONFIG && p->enabled)
        __builtin_trap();
    if (!terminated(p->enabled_why, sizeof p->enabled_why) ||
        !terminated(p->endpoint, sizeof p->endpoint) || !terminated(p->token, sizeof p->token) ||
        !terminated(p->inspect, sizeof p->inspect))
        __builtin_trap();
    if (rc != TEL_OK && rc != TEL_DISABLED && rc != TEL_ERR_CONFIG && rc != TEL_ERR_NOMEM)
        __builtin_trap();
    if (rc == TEL_ERR_CONFIG && strstr(tel_last_error(), fz_home))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_config_setup() != 0)
        return 0;
    FILE *f = fopen(fz_conf, "wb");
    if (!f)
        return 0;
    size_t w = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || w != size)
        return 0;

    tel_policy p;
    int rc = tel__policy_resolve(&p, FZ_APP, NULL, NULL);
    fz_check_policy(&p, rc);

    if (tel__config_set(FZ_APP, "enabled", "false") == TEL_OK) {
        rc = tel__policy_resolve(&p, FZ_APP, NULL, NULL);
        fz_check_policy(&p, rc);
        if (p.enabled)
            __builtin_trap();
    }
    unlink(fz_conf);
    return 0;
}
