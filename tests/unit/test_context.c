/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_context.c - machine context, CI vendor detection, SHA-256
 * and the salted project id.
 *
 * The environment is emptied first: the machine running the tests may
 * itself be a CI runner, and its variables must not decide the results.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"


/* One vendor's variable, the value it is set to, and the id expected. */
static const struct {
    const char *var, *value, *id;
} vendors[] = {
    { "GITHUB_ACTIONS", "true", "github_actions" },
    { "GITLAB_CI", "true", "gitlab" },
    { "CIRCLECI", "true", "circleci" },
    { "TRAVIS", "true", "travis" },
    { "TF_BUILD", "True", "azure_pipelines" },
    { "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI", "https://dev.azure.com/x/", "azure_pipelines" },
    { "BITBUCKET_COMMIT", "abc", "bitbucket" },
    { "BUILDKITE", "true", "buildkite" },
    { "TEAMCITY_VERSION", "2023.1", "teamcity" },
    { "APPVEYOR", "True", "appveyor" },
    { "DRONE", "true", "drone" },
    { "CI", "woodpecker", "woodpecker" },
    { "SEMAPHORE", "true", "semaphore" },
    { "CODEBUILD_BUILD_ARN", "arn:x", "aws_codebuild" },
    { "BUILDER_OUTPUT", "/builder/outputs", "google_cloud_build" },
    { "BITRISE_IO", "true", "bitrise" },
    { "BUDDY_WORKSPACE_ID", "1", "buddy" },
    { "CF_BUILD_ID", "1", "codefresh" },
    { "CM_BUILD_ID", "1", "codemagic" },
    { "CIRRUS_CI", "true", "cirrus" },
    { "NETLIFY", "true", "netlify" },
    { "VERCEL", "1", "vercel" },
    { "NOW_BUILDER", "1", "vercel" },
    { "RENDER", "true", "render" },
    { "HEROKU_TEST_RUN_ID", "1", "heroku_ci" },
    { "HARNESS_BUILD_ID", "1", "harness" },
    { "CI_NAME", "sourcehut", "sourcehut" },
    { "CI_NAME", "codeship", "codeship" },
    { "SCREWDRIVER", "true", "screwdriver" },
    { "EAS_BUILD", "true", "expo_eas" },
    { "GITEA_ACTIONS", "true", "gitea_actions" },
    { "bamboo_planKey", "X", "bamboo" },
    { "GO_PIPELINE_LABEL", "1", "gocd" },
    { "HUDSON_URL", "http://h/", "hudson" },
    { "NEVERCODE", "true", "nevercode" },
    { "SHIPPABLE", "true", "shippable" },
    { "SAILCI", "true", "sail" },
    { "STRIDER", "true", "strider" },
    { "MAGNUM", "true", "magnum" },
    { "LAYERCI", "true", "layerci" },
    { "AC_APPCIRCLE", "true", "appcircle" },
    { "CI_XCODE_PROJECT", "x", "xcode_cloud" },
    { "XCS", "1", "xcode_server" },
    { "PROW_JOB_ID", "1", "prow" },
    { "EARTHLY_CI", "true", "earthly" },
    { "RELEASE_BUILD_ID", "1", "releasehub" },
    { "CF_PAGES", "1", "cloudflare_pages" },
    { "VELA", "true", "vela" },
    { "FORGEJO_ACTIONS", "true", "forgejo_actions" },
    { "JB_SPACE_EXECUTION_NUMBER", "1", "jetbrains_space" },
};

static int is_lower_snake(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static void test_ci(void)
{
    CHECK_GROUP("ci");
    CHECK("clean environment: not CI", tel__ci_vendor() == NULL);
    CHECK("at least 30 vendors in the table", tel__ci_vendor_count() >= 30);

    size_t n = sizeof vendors / sizeof vendors[0];
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        char name[128];
        setenv(vendors[i].var, vendors[i].value, 1);
        const char *got = tel__ci_vendor();
        snprintf(name, sizeof name, "%s=%s -> %s", vendors[i].var, vendors[i].value, vendors[i].id);
        CHECK(name, got != NULL && strcmp(got, vendors[i].id) == 0);
        snprintf(name, sizeof name, "%s is lower_snake_case", vendors[i].id);
        CHECK(name, is_lower_snake(got));
        unsetenv(vendors[i].var);
        snprintf(name, sizeof name, "%s unset -> not CI", vendors[i].var);
        CHECK(name, tel__ci_vendor() == NULL);
        seen += got != NULL && strcmp(got, vendors[i].id) == 0;
    }
    CHECK("at least 25 vendors detected in isolation", seen >= 25);

    /* Vendors that need two variables, or that imitate another. */
    setenv("JENKINS_URL", "http://j/", 1);
    CHECK("JENKINS_URL alone is not Jenkins", tel__ci_vendor() == NULL);
    setenv("BUILD_ID", "7", 1);
    CHECK("JENKINS_URL + BUILD_ID is Jenkins", tel__ci_vendor() && strcmp(tel__ci_vendor(), "jenkins") == 0);
    setenv("HUDSON_URL", "http://j/", 1);
    CHECK("Jenkins also setting HUDSON_URL is still Jenkins",
          tel__ci_vendor() && strcmp(tel__ci_vendor(), "jenkins") == 0);
    unsetenv("JENKINS_URL");
    unsetenv("BUILD_ID");
    unsetenv("HUDSON_URL");
    setenv("GITHUB_ACTIONS", "true", 1);
    setenv("GITEA_ACTIONS", "true", 1);
    CHECK("Gitea runner setting GITHUB_ACTIONS is Gitea",
          tel__ci_vendor() && strcmp(tel__ci_vendor(), "gitea_actions") == 0);
    unsetenv("GITEA_ACTIONS");
    unsetenv("GITHUB_ACTIONS");
    setenv("CI_NAME", "something-else", 1);
    CHECK("CI_NAME with another value is no vendor", tel__ci_vendor() == NULL);
    unsetenv("CI_NAME");
    setenv("GITHUB_ACTIONS", "", 1);
    CHECK("an empty vendor variable does not count", tel__ci_vendor() == NULL);
    unsetenv("GITHUB_ACTIONS");

    static const struct {
        const char *var, *value;
        int ci;
    } generic[] = {
        { "CI", "true", 1 },  { "CI", "1", 1 },        { "CI", "yes", 1 },
        { "CI", "false", 0 }, { "CI", "FALSE", 0 },    { "CI", "0", 0 },
        { "CI", "", 0 },      { "CONTINUOUS_INTEGRATION", "true", 1 },
        { "BUILD_NUMBER", "12", 1 }, { "RUN_ID", "3", 1 },
    };
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++) {
        char name[128];
        setenv(generic[i].var, generic[i].value, 1);
        const char *got = tel__ci_vendor();
        snprintf(name, sizeof name, "%s='%s' -> %s", generic[i].var, generic[i].value,
                 generic[i].ci ? "CI, vendor unknown" : "not CI");
        CHECK(name, generic[i].ci ? (got != NULL && got[0] == '\0') : got == NULL);
        unsetenv(generic[i].var);
    }
}

static void test_context(void)
{
    CHECK_GROUP("context");
    tel_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.app = "keep";
    tel__context_detect(&ctx);
    CHECK("app left as it was", ctx.app && strcmp(ctx.app, "keep") == 0);
    CHECK("os is lower-case", is_lower_snake(ctx.os));
#ifdef __linux__
    CHECK("os is linux", strcmp(ctx.os, "linux") == 0);
#endif
    CHECK("arch is set", is_lower_snake(ctx.arch));
    CHECK("at least one CPU", ctx.cpus >= 1);
    CHECK("lib version", ctx.lib_version && strcmp(ctx.lib_version, TEL_VERSION) == 0);
    CHECK("clean env: ci = 0", ctx.ci == 0 && ctx.ci_vendor == NULL);

    char host[256] = "";
    gethostname(host, sizeof host);
    CHECK("os is not the host name", strlen(host) < 2 || strcmp(ctx.os, host) != 0);
    CHECK("arch is not the host name", strlen(host) < 2 || strcmp(ctx.arch, host) != 0);

    setenv("GITLAB_CI", "true", 1);
    tel__context_detect(&ctx);
    CHECK("GITLAB_CI: ci = 1, vendor gitlab", ctx.ci == 1 && ctx.ci_vendor && strcmp(ctx.ci_vendor, "gitlab") == 0);
    unsetenv("GITLAB_CI");
    setenv("CI", "true", 1);
    tel__context_detect(&ctx);
    CHECK("CI=true: ci = 1, vendor absent", ctx.ci == 1 && ctx.ci_vendor == NULL);
    unsetenv("CI");
}

/* -------------------------------------------------------------- sha256 */

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int sha_is(const void *data, size_t len, const char *want)
{
    uint8_t d[32];
    char h[65];
    tel__sha256(data, len, d);
    hex(d, 32, h);
    return strcmp(h, want) == 0;
}

static void test_sha256(void)
{
    CHECK_GROUP("sha256");
    CHECK("empty string",
          sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK("abc", sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK("448-bit message",
          sha_is(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    CHECK("896-bit message",
          sha_is(m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    char *million = malloc(1000000);
    if (million) {
        memset(million, 'a', 1000000);
        CHECK("one million 'a'",
              sha_is(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
        free(million);
    }
    /* Lengths around the padding boundary (55/56/63/64 bytes) use one or
     * two final blocks; compare them against the known 64 x 'a'. */
    char a64[64];
    memset(a64, 'a', 64);
    CHECK("64 x 'a'", sha_is(a64, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"));
    CHECK("55 x 'a'", sha_is(a64, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"));
    CHECK("56 x 'a'", sha_is(a64, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"));
}

/* ----------------------------------------------------------- project id */

/* A repository at <tmp>/<name> whose origin is `url`; returns its path. */
static const char *make_repo(const char *name, const char *url)
{
    static char dir[512];
    char p[1024];
    snprintf(dir, sizeof dir, "%s/%s", fx_root, name);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/.git", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/.git/config", dir);
    FILE *f = fopen(p, "w");
    if (f) {
        fprintf(f, "[core]\n\trepositoryformatversion = 0\n"
                   "[remote \"upstream\"]\n\turl = https://other.example/else.git\n"
                   "[remote \"origin\"]\n\turl = %s\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
                   "[branch \"main\"]\n\tremote = origin\n", url);
        fclose(f);
    }
    return dir;
}

static void test_project_id(void)
{
    CHECK_GROUP("project_id");
    static const char *const forms[] = {
        "https://github.com/Owner/Repo.git",
        "https://GitHub.com/Owner/Repo",
        "https://user:secret@github.com/Owner/Repo.git/",
        "http://github.com:443/Owner/Repo",
        "ssh://git@github.com/Owner/Repo.git",
        "ssh://git@github.com:22/Owner/Repo",
        "git@github.com:Owner/Repo.git",
        "github.com:Owner/Repo",
        "git://github.com/Owner/Repo.git",
    };
    char first[65] = "", id[65];
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char name[32], label[160];
        snprintf(name, sizeof name, "repo%zu", i);
        const char *dir = make_repo(name, forms[i]);
        int rc = tel__project_id("salt-1", dir, id);
        snprintf(label, sizeof label, "%s: found", forms[i]);
        CHECK_EQ_INT(label, rc, TEL_OK);
        if (i == 0) {
            strcpy(first, id);
            CHECK("id is 64 hex digits", strlen(id) == 64 && strspn(id, "0123456789abcdef") == 64);
            continue;
        }
        snprintf(label, sizeof label, "%s: same id as the https form", forms[i]);
        CHECK(label, strcmp(id, first) == 0);
    }

    /* The id is sha256(salt "\n" "github.com/Owner/Repo"). */
    const char *plain = "salt-1\ngithub.com/Owner/Repo";
    uint8_t d[32];
    char want[65];
    tel__sha256(plain, strlen(plain), d);
    hex(d, 32, want);
    CHECK("id is sha256 of salt, newline and host/path", strcmp(first, want) == 0);

    const char *dir = make_repo("repo0", "https://github.com/Owner/Repo.git");
    tel__project_id("salt-2", dir, id);
    CHECK("another salt gives another id", strcmp(id, first) != 0);
    make_repo("other", "https://github.com/Owner/Other.git");
    char other[512];
    snprintf(other, sizeof other, "%s/other", fx_root);
    tel__project_id("salt-1", other, id);
    CHECK("another repository gives another id", strcmp(id, first) != 0);
    make_repo("case", "https://github.com/owner/repo.git");
    snprintf(other, sizeof other, "%s/case", fx_root);
    tel__project_id("salt-1", other, id);
    CHECK("path case is kept (only the host is lower-cased)", strcmp(id, first) != 0);

    /* From a subdirectory, and through a .git file (worktree, submodule). */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/repo0/src/deep", fx_root);
    snprintf(other, sizeof other, "%s/repo0/src", fx_root);
    mkdir(other, 0755);
    mkdir(sub, 0755);
    CHECK_EQ_INT("found from a subdirectory", tel__project_id("salt-1", sub, id), TEL_OK);
    CHECK("subdirectory: same id", strcmp(id, first) == 0);
    snprintf(other, sizeof other, "%s/linked", fx_root);
    mkdir(other, 0755);
    snprintf(sub, sizeof sub, "%s/linked/.git", fx_root);
    FILE *f = fopen(sub, "w");
    if (f) {
        fprintf(f, "gitdir: ../repo0/.git\n");
        fclose(f);
    }
    CHECK_EQ_INT("found through a .git file", tel__project_id("salt-1", other, id), TEL_OK);
    CHECK(".git file: same id", strcmp(id, first) == 0);

    make_repo("noorigin", "x");
    snprintf(sub, sizeof sub, "%s/noorigin/.git/config", fx_root);
    f = fopen(sub, "w");
    if (f) {
        fprintf(f, "[remote \"upstream\"]\n\turl = https://github.com/a/b\n");
        fclose(f);
    }
    snprintf(other, sizeof other, "%s/noorigin", fx_root);
    CHECK_EQ_INT("no origin: NOTFOUND", tel__project_id("salt-1", other, id), TEL_ERR_NOTFOUND);
    CHECK("no origin: out is empty", id[0] == '\0');
    snprintf(other, sizeof other, "%s/plain", fx_root);
    mkdir(other, 0755);
    /* fx_root itself may sit inside a repository (TMPDIR under a
     * checkout); only a definite answer is checked. */
    int rc = tel__project_id("salt-1", other, id);
    CHECK("outside a repository: NOTFOUND or an id", rc == TEL_ERR_NOTFOUND || (rc == TEL_OK && strlen(id) == 64));
    CHECK("message holds no path", strstr(tel_last_error(), fx_root) == NULL);
}

/* Writes text to <fx_root>/<rel>. */
static void put(const char *rel, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", fx_root, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The id of <fx_root>/<name> whose .git/config is `cfg`; "" if none. */
static void id_of(const char *name, const char *salt, const char *cfg, char out[65])
{
    char rel[256];
    const char *dir = make_repo(name, "unused");
    snprintf(rel, sizeof rel, "%s/.git/config", name);
    put(rel, cfg);
    if (tel__project_id(salt, dir, out) != TEL_OK)
        out[0] = '\0';
}

/* The origin resolved as git resolves it: insteadOf rules of the user's
 * and the repository's config, include.path, the unsalted form. */
static void test_project_git_rules(void)
{
    CHECK_GROUP("project_id git rules");
    char home[600], want[65], id[65];
    uint8_t d[32];
    snprintf(home, sizeof home, "%s/ghome", fx_root);
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    tel__sha256("github.com/o/r", 14, d);
    hex(d, 32, want);

    id_of("plainurl", NULL, "[remote \"origin\"]\n\turl = https://github.com/o/r.git\n", id);
    CHECK("unsalted: sha256 of host/path alone", strcmp(id, want) == 0);

    id_of("short", NULL, "[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("gh:o/r without a rule is another repository", id[0] && strcmp(id, want) != 0);
    put("ghome/.gitconfig", "[url \"https://github.com/\"]\n\tinsteadOf = gh:\n");
    id_of("short", NULL, "[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("~/.gitconfig insteadOf: gh:o/r is https://github.com/o/r.git", strcmp(id, want) == 0);
    put("ghome/.gitconfig", "[url \"https://github.com/\"]\n\tinsteadOf = g\n"
                            "[url \"https://gitlab.com/\"]\n\tinsteadOf = gh\n"
                            "[url \"https://github.com/\"]\n\tInsteadOf = \"gh:\" # the longest wins\n");
    id_of("short", NULL, "[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("the longest matching prefix wins, as in git", strcmp(id, want) == 0);
    put("ghome/.gitconfig", "");

    id_of("local", NULL, "[url \"git@github.com:\"]\n\tinsteadOf = gh:\n[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("a rule in the repository's own config applies", strcmp(id, want) == 0);

    put("rules.inc", "[url \"ssh://git@github.com/\"]\n\tinsteadOf = gh:\n");
    id_of("incl", NULL, "[include]\n\tpath = ../../rules.inc\n[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("include.path relative to the including file", strcmp(id, want) == 0);
    put("ghome/.gitconfig", "[include]\n\tpath = ~/more.inc\n");
    put("ghome/more.inc", "[url \"https://github.com/\"]\n\tinsteadOf = gh:\n");
    id_of("short", NULL, "[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("include.path with ~/ from ~/.gitconfig", strcmp(id, want) == 0);
    put("ghome/.gitconfig", "[include]\n\tpath = ~/.gitconfig\n");
    id_of("short", NULL, "[remote \"origin\"]\n\turl = gh:o/r\n", id);
    CHECK("an include loop ends", id[0] && strcmp(id, want) != 0);
    /* Ten includes of itself per level, ten levels deep, would be 10^10
     * reads; a hang guard (not a speed test): killed by SIGALRM when the
     * fan-out is not bounded. */
    put("ghome/.gitconfig", "[include]\n\tpath = ~/.gitconfig\n\tpath = ~/.gitconfig\n"
                            "\tpath = ~/.gitconfig\n\tpath = ~/.gitconfig\n\tpath = ~/.gitconfig\n"
                            "\tpath = ~/.gitconfig\n\tpath = ~/.gitconfig\n\tpath = ~/.gitconfig\n"
                            "\tpath = ~/.gitconfig\n\tpath = ~/.gitconfig\n");
    alarm(120);
    id_of("short", NULL, "[remote \"origin\"]\n\turl = gh:o/r\n", id);
    alarm(0);
    CHECK("a config including itself ten times a level ends, with an id", id[0] != '\0');
    put("ghome/.gitconfig", "");

    put("origin.inc", "[remote \"origin\"]\n\turl = https://github.com/o/r\n");
    id_of("urlinc", NULL, "[include]\n\tpath = ../../origin.inc\n", id);
    CHECK("the origin itself may come from an included file", strcmp(id, want) == 0);

    char salted[65];
    id_of("plainurl", "s", "[remote \"origin\"]\n\turl = https://github.com/o/r.git\n", salted);
    CHECK("salted and unsalted ids differ", salted[0] && strcmp(salted, want) != 0);
    unsetenv("HOME");
    unsetenv("GIT_CONFIG_NOSYSTEM");
}

int main(void)
{
    /* Keep only what the tests need; a CI runner's variables would
     * otherwise decide the "not CI" cases. */
    if (fx_setup("context") != 0)
        return 1;
    clearenv();
    setenv("PATH", "/usr/bin:/bin", 1);
    test_ci();
    test_context();
    test_sha256();
    test_project_id();
    test_project_git_rules();
    fx_cleanup();
    return check_exit();
}
