/* SPDX-License-Identifier: MIT */
/*
 * libqueue/context.c - the coarse facts about the machine that every event
 * carries: operating system, CPU architecture, CPU count, and whether it
 * runs under CI (and which).
 *
 * Only facts shared by millions of machines are read.  No host name, no
 * kernel release (it pins a machine to a patch level), and of the
 * environment only whether a CI vendor's variable exists, or equals a
 * fixed word: no environment value is ever stored.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "internal.h"

/*
 * One way to recognise a vendor: `var` is set and non-empty, and equals
 * `value` when that is given; `also` (when given) must be set too.  A
 * vendor may have several rows.  Order matters where vendors imitate each
 * other: Gitea and Forgejo runners set GITHUB_ACTIONS, Jenkins sets
 * HUDSON_URL, Woodpecker used to set DRONE, so they come first.
 */
typedef struct ci_rule {
    const char *id;
    const char *var;
    const char *value;
    const char *also;
} ci_rule;

static const ci_rule ci_rules[] = {
    { "gitea_actions", "GITEA_ACTIONS", NULL, NULL },
    { "forgejo_actions", "FORGEJO_ACTIONS", NULL, NULL },
    { "github_actions", "GITHUB_ACTIONS", NULL, NULL },
    { "gitlab", "GITLAB_CI", NULL, NULL },
    { "circleci", "CIRCLECI", NULL, NULL },
    { "travis", "TRAVIS", NULL, NULL },
    { "jenkins", "JENKINS_URL", NULL, "BUILD_ID" },
    { "hudson", "HUDSON_URL", NULL, NULL },
    { "azure_pipelines", "TF_BUILD", NULL, NULL },
    { "azure_pipelines", "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", NULL, NULL },
    { "bitbucket", "BITBUCKET_COMMIT", NULL, NULL },
    { "buildkite", "BUILDKITE", NULL, NULL },
    { "teamcity", "TEAMCITY_VERSION", NULL, NULL },
    { "appveyor", "APPVEYOR", NULL, NULL },
    { "woodpecker", "CI", "woodpecker", NULL },
    { "drone", "DRONE", NULL, NULL },
    { "semaphore", "SEMAPHORE", NULL, NULL },
    { "aws_codebuild", "CODEBUILD_BUILD_ARN", NULL, NULL },
    { "google_cloud_build", "BUILDER_OUTPUT", NULL, NULL },
    { "bitrise", "BITRISE_IO", NULL, NULL },
    { "buddy", "BUDDY_WORKSPACE_ID", NULL, NULL },
    { "codefresh", "CF_BUILD_ID", NULL, NULL },
    { "codemagic", "CM_BUILD_ID", NULL, NULL },
    { "cirrus", "CIRRUS_CI", NULL, NULL },
    { "netlify", "NETLIFY", NULL, NULL },
    { "vercel", "VERCEL", NULL, NULL },
    { "vercel", "NOW_BUILDER", NULL, NULL },
    { "render", "RENDER", NULL, NULL },
    { "heroku_ci", "HEROKU_TEST_RUN_ID", NULL, NULL },
    { "harness", "HARNESS_BUILD_ID", NULL, NULL },
    { "sourcehut", "CI_NAME", "sourcehut", NULL },
    { "codeship", "CI_NAME", "codeship", NULL },
    { "screwdriver", "SCREWDRIVER", NULL, NULL },
    { "expo_eas", "EAS_BUILD", NULL, NULL },
    { "bamboo", "bamboo_planKey", NULL, NULL },
    { "gocd", "GO_PIPELINE_LABEL", NULL, NULL },
    { "nevercode", "NEVERCODE", NULL, NULL },
    { "shippable", "SHIPPABLE", NULL, NULL },
    { "sail", "SAILCI", NULL, NULL },
    { "strider", "STRIDER", NULL, NULL },
    { "magnum", "MAGNUM", NULL, NULL },
    { "layerci", "LAYERCI", NULL, NULL },
    { "appcircle", "AC_APPCIRCLE", NULL, NULL },
    { "xcode_cloud", "CI_XCODE_PROJECT", NULL, NULL },
    { "xcode_server", "XCS", NULL, NULL },
    { "prow", "PROW_JOB_ID", NULL, NULL },
    { "earthly", "EARTHLY_CI", NULL, NULL },
    { "releasehub", "RELEASE_BUILD_ID", NULL, NULL },
    { "cloudflare_pages", "CF_PAGES", NULL, NULL },
    { "vela", "VELA", NULL, NULL },
    { "agola", "AGOLA_GIT_REF", NULL, NULL },
    { "dsari", "DSARI", NULL, NULL },
    { "gerrit", "GERRIT_PROJECT", NULL, NULL },
    { "jetbrains_space", "JB_SPACE_EXECUTION_NUMBER", NULL, NULL },
    { "wercker", "WERCKER_MAIN_PIPELINE_STARTED", NULL, NULL },
    { "solano", "TDDIUM", NULL, NULL },
};

#define N_RULES (sizeof ci_rules / sizeof ci_rules[0])

/*
 * The variables the rules name, looked up in one pass over the
 * environment: a getenv per rule walked the whole environment some sixty
 * times per event, most of what a short-lived host paid for its context.
 * Slots: each rule's `var`, then each rule's `also`, then the generic
 * markers; a name in several slots fills them all.
 */
extern char **environ;

static const char *const generic_vars[] = { "CI", "CONTINUOUS_INTEGRATION", "BUILD_NUMBER", "RUN_ID" };
#define N_GENERIC (sizeof generic_vars / sizeof generic_vars[0])
#define N_SLOTS (2 * N_RULES + N_GENERIC)
#define N_BUCKETS 64

static short bucket_head[N_BUCKETS];
static short slot_next[N_SLOTS];
static pthread_once_t buckets_once = PTHREAD_ONCE_INIT;

static const char *slot_name(size_t i)
{
    if (i < N_RULES)
        return ci_rules[i].var;
    if (i < 2 * N_RULES)
        return ci_rules[i - N_RULES].also;
    return generic_vars[i - 2 * N_RULES];
}

static unsigned name_hash(const char *name, size_t len)
{
    return ((unsigned)len * 31u + (unsigned char)name[0] * 7u + (unsigned char)name[len - 1]) % N_BUCKETS;
}

static void build_buckets(void)
{
    for (size_t b = 0; b < N_BUCKETS; b++)
        bucket_head[b] = -1;
    for (size_t i = 0; i < N_SLOTS; i++) {
        const char *n = slot_name(i);
        slot_next[i] = -1;
        if (n == NULL)
            continue;
        unsigned b = name_hash(n, strlen(n));
        slot_next[i] = bucket_head[b];
        bucket_head[b] = (short)i;
    }
}

/* Fills vals[slot] with each slot's value when set and non-empty, else
 * NULL; the first of a name given twice wins, as with getenv. */
static void scan_env(const char *vals[N_SLOTS])
{
    pthread_once(&buckets_once, build_buckets);
    memset(vals, 0, N_SLOTS * sizeof *vals);
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || eq == *e || eq[1] == '\0')
            continue;
        size_t len = (size_t)(eq - *e);
        for (short i = bucket_head[name_hash(*e, len)]; i >= 0; i = slot_next[i]) {
            const char *n = slot_name((size_t)i);
            if (vals[i] == NULL && strncmp(n, *e, len) == 0 && n[len] == '\0')
                vals[i] = eq + 1;
        }
    }
}

/* Generic markers that say "CI" without saying whose.  CI=false is how
 * people force interactive behaviour, so it does not count. */
static int generic_ci(const char *const vals[N_SLOTS])
{
    const char *const *g = vals + 2 * N_RULES;
    const char *ci = g[0];
    if (ci != NULL && strcmp(ci, "0") != 0 && strcasecmp(ci, "false") != 0)
        return 1;
    return g[1] != NULL || g[2] != NULL || g[3] != NULL;
}

const char *tel__ci_vendor(void)
{
    const char *vals[N_SLOTS];
    scan_env(vals);
    for (size_t i = 0; i < N_RULES; i++) {
        const ci_rule *r = &ci_rules[i];
        const char *v = vals[i];
        if (v == NULL)
            continue;
        if (r->value != NULL && strcmp(v, r->value) != 0)
            continue;
        if (r->also != NULL && vals[N_RULES + i] == NULL)
            continue;
        return r->id;
    }
    return generic_ci(vals) ? "" : NULL;
}

size_t tel__ci_vendor_count(void)
{
    /* Vendors, not rules: a vendor with two rows counts once.  The table
     * keeps a vendor's rows next to each other. */
    size_t n = 0;
    for (size_t i = 0; i < N_RULES; i++)
        if (i == 0 || strcmp(ci_rules[i].id, ci_rules[i - 1].id) != 0)
            n++;
    return n;
}

/* The machine facts never change during a process, so they are read once
 * into static storage that every tel_ctx may borrow. */
static char os_name[32];
static char arch_name[32];
static int cpu_count;
static pthread_once_t machine_once = PTHREAD_ONCE_INIT;

/* Lower-case [a-z0-9_] only, so a strange uname cannot put anything odd
 * into an event. */
static void tidy(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src != '\0' && o + 1 < cap; src++) {
        char c = *src;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            c = '_';
        dst[o++] = c;
    }
    dst[o] = '\0';
}

static void read_machine(void)
{
    struct utsname u;
    if (uname(&u) == 0) {
        tidy(os_name, sizeof os_name, u.sysname);
        tidy(arch_name, sizeof arch_name, u.machine);
    }
    if (os_name[0] == '\0')
        strcpy(os_name, "unknown");
    if (arch_name[0] == '\0')
        strcpy(arch_name, "unknown");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_count = (n > 0 && n < 1000000) ? (int)n : 0;
}

void tel__context_detect(tel_ctx *ctx)
{
    pthread_once(&machine_once, read_machine);
    ctx->os = os_name;
    ctx->arch = arch_name;
    ctx->cpus = cpu_count;
    ctx->lib_version = TEL_VERSION;
    const char *vendor = tel__ci_vendor();
    ctx->ci = vendor != NULL;
    ctx->ci_vendor = (vendor != NULL && vendor[0] != '\0') ? vendor : NULL;
}
