/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_policy.c - app names, paths, private directories, the
 * precedence of settings, telemetry.conf reading and writing, and the
 * endpoint rules.
 *
 * Every test runs under a fresh temporary HOME with the relevant
 * environment variables cleared first, so the developer's own settings
 * never leak into a result.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"
#include "policy.h"
#include "tel_config.h"

#define APP "tapp"

static const char *const app_env[] = {
    "TAPP_TELEMETRY_ENABLED", "TAPP_TELEMETRY_ENDPOINT", "TAPP_TELEMETRY_TOKEN",
    "TAPP_TELEMETRY_LOGGING", "TAPP_TELEMETRY_DEBUG",    "TAPP_TELEMETRY_INSPECT",
    "T_OFF",                  "T_SET",                   "T_ONOFF",
    "T_DEBUG",                "T_LOG",                   "T_ERRS",
};

/* A new empty HOME and none of our variables set. */
static const char *fresh_home(void)
{
    const char *home = fx_fresh_home();
    for (size_t i = 0; i < sizeof app_env / sizeof app_env[0]; i++)
        unsetenv(app_env[i]);
    return home;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void write_conf(const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.config", getenv("HOME"));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/.config/" APP, getenv("HOME"));
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/.config/" APP "/telemetry.conf", getenv("HOME"));
    write_file(path, text);
}

static char *read_text(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* -------------------------------------------------------------- names */

static void test_app_names(void)
{
    CHECK_GROUP("app_check");
    CHECK_EQ_INT("plain name", tel__app_check("mycli"), TEL_OK);
    CHECK_EQ_INT("all allowed characters", tel__app_check("my-app.cli_2"), TEL_OK);
    char name[80];
    memset(name, 'a', 64);
    name[64] = '\0';
    CHECK_EQ_INT("64 characters", tel__app_check(name), TEL_OK);
    name[64] = 'a';
    name[65] = '\0';
    CHECK_EQ_INT("65 characters refused", tel__app_check(name), TEL_ERR_INVALID);
    CHECK("65 characters: message gives the length", strstr(tel_last_error(), "65") != NULL);
    CHECK("65 characters: message does not echo the name", strstr(tel_last_error(), "aaaaaaaa") == NULL);
    CHECK_EQ_INT("empty refused", tel__app_check(""), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL refused", tel__app_check(NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("'..' refused", tel__app_check(".."), TEL_ERR_INVALID);
    CHECK_EQ_INT("'a/b' refused", tel__app_check("a/b"), TEL_ERR_INVALID);
    CHECK("'a/b': message names the slash", strstr(tel_last_error(), "'/'") != NULL);
    CHECK_EQ_INT("'../x' refused", tel__app_check("../x"), TEL_ERR_INVALID);
    CHECK_EQ_INT("'.hidden' refused", tel__app_check(".hidden"), TEL_ERR_INVALID);
    CHECK_EQ_INT("'UPPER' refused", tel__app_check("UPPER"), TEL_ERR_INVALID);
    CHECK("'UPPER': message says upper-case", strstr(tel_last_error(), "upper-case") != NULL);
    CHECK_EQ_INT("space refused", tel__app_check("a b"), TEL_ERR_INVALID);
    CHECK_EQ_INT("newline refused", tel__app_check("a\nb"), TEL_ERR_INVALID);
    CHECK_EQ_INT("non-ASCII refused", tel__app_check("caf\xc3\xa9"), TEL_ERR_INVALID);

    CHECK_GROUP("env_name");
    char env[128];
    tel__env_name("my-app.cli", "ENABLED", env, sizeof env);
    CHECK("my-app.cli -> MY_APP_CLI_TELEMETRY_ENABLED", strcmp(env, "MY_APP_CLI_TELEMETRY_ENABLED") == 0);
    tel__env_name("mycli", "TOKEN", env, sizeof env);
    CHECK("mycli -> MYCLI_TELEMETRY_TOKEN", strcmp(env, "MYCLI_TELEMETRY_TOKEN") == 0);
    memset(env, 'x', sizeof env);
    tel__env_name("my-app.cli", "ENABLED", env, 8);
    CHECK("truncated and NUL-terminated", strcmp(env, "MY_APP_") == 0);
}

/* -------------------------------------------------------------- paths */

static void test_paths(void)
{
    CHECK_GROUP("paths");
    char out[PATH_MAX], want[PATH_MAX];
    const char *home = fresh_home();

    CHECK_EQ_INT("state dir from HOME", tel__state_dir("mycli", out, sizeof out), TEL_OK);
    snprintf(want, sizeof want, "%s/.local/state/mycli", home);
    CHECK("state dir is HOME/.local/state/mycli", strcmp(out, want) == 0);
    CHECK_EQ_INT("config path from HOME", tel__config_path("mycli", out, sizeof out), TEL_OK);
    snprintf(want, sizeof want, "%s/.config/mycli/telemetry.conf", home);
    CHECK("config path is HOME/.config/mycli/telemetry.conf", strcmp(out, want) == 0);
    CHECK_EQ_INT("state root", tel__state_root(out, sizeof out), TEL_OK);
    snprintf(want, sizeof want, "%s/.local/state", home);
    CHECK("state root is HOME/.local/state", strcmp(out, want) == 0);

    setenv("XDG_STATE_HOME", "/xdg/state/", 1);
    setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
    tel__state_dir("mycli", out, sizeof out);
    CHECK("absolute XDG_STATE_HOME used", strcmp(out, "/xdg/state/mycli") == 0);
    tel__config_path("mycli", out, sizeof out);
    CHECK("absolute XDG_CONFIG_HOME used", strcmp(out, "/xdg/config/mycli/telemetry.conf") == 0);

    setenv("XDG_STATE_HOME", "relative/state", 1);
    setenv("XDG_CONFIG_HOME", "relative/config", 1);
    tel__state_dir("mycli", out, sizeof out);
    snprintf(want, sizeof want, "%s/.local/state/mycli", home);
    CHECK("relative XDG_STATE_HOME ignored", strcmp(out, want) == 0);
    tel__config_path("mycli", out, sizeof out);
    snprintf(want, sizeof want, "%s/.config/mycli/telemetry.conf", home);
    CHECK("relative XDG_CONFIG_HOME ignored", strcmp(out, want) == 0);
    setenv("XDG_STATE_HOME", "", 1);
    tel__state_dir("mycli", out, sizeof out);
    snprintf(want, sizeof want, "%s/.local/state/mycli", home);
    CHECK("empty XDG_STATE_HOME ignored", strcmp(out, want) == 0);
    unsetenv("XDG_STATE_HOME");
    unsetenv("XDG_CONFIG_HOME");

    CHECK_EQ_INT("bad app refused", tel__state_dir("../etc", out, sizeof out), TEL_ERR_INVALID);
    CHECK_EQ_INT("path too long", tel__state_dir("mycli", out, 10), TEL_ERR_NOSTATE);
    setenv("HOME", "relative/home", 1);
    CHECK_EQ_INT("relative HOME refused", tel__state_dir("mycli", out, sizeof out), TEL_ERR_NOSTATE);
    CHECK("relative HOME: message has no path", strstr(tel_last_error(), "relative/home") == NULL);
    unsetenv("HOME");
    CHECK_EQ_INT("no HOME refused", tel__state_dir("mycli", out, sizeof out), TEL_ERR_NOSTATE);
    CHECK_EQ_INT("no HOME: config refused", tel__config_path("mycli", out, sizeof out), TEL_ERR_NOSTATE);
    setenv("XDG_STATE_HOME", "/xdg/state", 1);
    CHECK_EQ_INT("no HOME but absolute XDG_STATE_HOME", tel__state_dir("mycli", out, sizeof out), TEL_OK);
    fresh_home();
}

static int mode_of(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    return (int)(st.st_mode & 07777);
}

static void test_mkdir_private(void)
{
    CHECK_GROUP("mkdir_private");
    const char *home = fresh_home();
    char p[PATH_MAX], q[PATH_MAX];
    chmod(home, 0755);
    mode_t old = umask(0);
    snprintf(p, sizeof p, "%s/a/b/c", home);
    CHECK_EQ_INT("creates nested dirs", tel__mkdir_private(p), TEL_OK);
    CHECK_EQ_INT("leaf is 0700 under umask 000", mode_of(p), 0700);
    snprintf(q, sizeof q, "%s/a", home);
    CHECK_EQ_INT("new parent is 0700 under umask 000", mode_of(q), 0700);
    CHECK_EQ_INT("existing parent (HOME) untouched", mode_of(home), 0755);
    CHECK_EQ_INT("existing dir is fine", tel__mkdir_private(p), TEL_OK);
    umask(0277);
    snprintf(p, sizeof p, "%s/odd/umask", home);
    CHECK_EQ_INT("umask 0277 still works", tel__mkdir_private(p), TEL_OK);
    CHECK_EQ_INT("umask 0277: leaf is 0700", mode_of(p), 0700);
    umask(0);

    snprintf(p, sizeof p, "%s/shared", home);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/shared/new", home);
    SETUP(tel__mkdir_private(p));
    snprintf(q, sizeof q, "%s/shared", home);
    CHECK_EQ_INT("pre-existing parent keeps its mode", mode_of(q), 0755);

    snprintf(p, sizeof p, "%s/target", home);
    mkdir(p, 0755);
    snprintf(q, sizeof q, "%s/link", home);
    CHECK("symlink made", symlink(p, q) == 0);
    CHECK_EQ_INT("symlink as last component refused", tel__mkdir_private(q), TEL_ERR_NOSTATE);
    CHECK("message has no path", strstr(tel_last_error(), home) == NULL);
    snprintf(q, sizeof q, "%s/link/sub", home);
    CHECK_EQ_INT("symlink as existing parent is followed", tel__mkdir_private(q), TEL_OK);
    snprintf(q, sizeof q, "%s/dangling", home);
    CHECK("dangling symlink made", symlink("/nonexistent/tel-test", q) == 0);
    CHECK_EQ_INT("dangling symlink as last component refused", tel__mkdir_private(q), TEL_ERR_NOSTATE);
    CHECK("dangling symlink's target not created", access("/nonexistent/tel-test", F_OK) != 0);

    snprintf(p, sizeof p, "%s/file", home);
    write_file(p, "x");
    CHECK_EQ_INT("regular file in the way refused", tel__mkdir_private(p), TEL_ERR_NOSTATE);
    snprintf(p, sizeof p, "%s/file/sub", home);
    CHECK_EQ_INT("regular file as parent refused", tel__mkdir_private(p), TEL_ERR_NOSTATE);
    CHECK_EQ_INT("empty path refused", tel__mkdir_private(""), TEL_ERR_NOSTATE);
    umask(old);
}

/* ---------------------------------------------------------- small bits */

static void test_small(void)
{
    CHECK_GROUP("parse_bool");
    const char *on[] = { "true", "1", "yes", "on", "TRUE", "Yes" };
    const char *off[] = { "false", "0", "no", "off", "FALSE", "Off" };
    const char *bad[] = { "", "2", "maybe", "truee", " true", "disable" };
    for (size_t i = 0; i < 6; i++) {
        char n[64];
        snprintf(n, sizeof n, "'%s' is 1", on[i]);
        CHECK_EQ_INT(n, tel__parse_bool(on[i]), 1);
        snprintf(n, sizeof n, "'%s' is 0", off[i]);
        CHECK_EQ_INT(n, tel__parse_bool(off[i]), 0);
        snprintf(n, sizeof n, "'%s' is -1", bad[i]);
        CHECK_EQ_INT(n, tel__parse_bool(bad[i]), -1);
    }
    CHECK_EQ_INT("NULL is -1", tel__parse_bool(NULL), -1);

    CHECK_GROUP("source_name");
    CHECK("builtin", strcmp(tel__source_name(TEL_SRC_BUILTIN), "builtin") == 0);
    CHECK("host", strcmp(tel__source_name(TEL_SRC_HOST), "host") == 0);
    CHECK("config", strcmp(tel__source_name(TEL_SRC_CONFIG), "config") == 0);
    CHECK("env", strcmp(tel__source_name(TEL_SRC_ENV), "env") == 0);
    CHECK("flag", strcmp(tel__source_name(TEL_SRC_FLAG), "flag") == 0);

    CHECK_GROUP("default_endpoint");
    CHECK("matches the build's TEL_DEFAULT_ENDPOINT", strcmp(tel__default_endpoint, TEL_DEFAULT_ENDPOINT) == 0);
}

/* ---------------------------------------------------------- precedence */

static const char *const src_label[] = { "host", "config", "env", "flag" };

/*
 * Every subset of {host, config, env, flag} sets endpoint, token and
 * logging to values of its own; the strongest source set must win for
 * each, and with none set the built-in values stay.
 */
static void test_precedence_matrix(void)
{
    CHECK_GROUP("precedence");
    for (int mask = 0; mask < 16; mask++) {
        fresh_home();
        tel_host_settings h = { -1, TEL_SRC_HOST, NULL, NULL, -1, NULL, TEL_ERRORS_CLASS };
        tel_flag_settings f = { -1, NULL, NULL, -1 };
        /* logging alternates 1, 0, 1, 0 with strength so the winner's
         * value differs from the next one down. */
        if (mask & 1) {
            h.endpoint = "https://host.example/h";
            h.token = "tok-host";
            h.logging = 1;
        }
        if (mask & 2)
            write_conf("endpoint = https://config.example/c\ntoken = tok-config\nlogging = false\n");
        if (mask & 4) {
            setenv("TAPP_TELEMETRY_ENDPOINT", "https://env.example/e", 1);
            setenv("TAPP_TELEMETRY_TOKEN", "tok-env", 1);
            setenv("TAPP_TELEMETRY_LOGGING", "1", 1);
        }
        if (mask & 8) {
            f.endpoint = "https://flag.example/f";
            f.token = "tok-flag";
            f.logging = 0;
        }
        tel_policy p;
        int rc = tel__policy_resolve(&p, APP, &h, &f);
        int top = -1;
        for (int k = 0; k < 4; k++)
            if (mask & (1 << k))
                top = k;
        static const char *const ep[] = { "https://host.example/h", "https://config.example/c",
                                          "https://env.example/e", "https://flag.example/f" };
        static const char *const tk[] = { "tok-host", "tok-config", "tok-env", "tok-flag" };
        static const tel_source sv[] = { TEL_SRC_HOST, TEL_SRC_CONFIG, TEL_SRC_ENV, TEL_SRC_FLAG };
        char label[64] = "";
        for (int k = 0; k < 4; k++)
            if (mask & (1 << k)) {
                strcat(label, label[0] ? "+" : "");
                strcat(label, src_label[k]);
            }
        if (!label[0])
            strcpy(label, "none");
        char n[128];
        snprintf(n, sizeof n, "%s: resolves", label);
        CHECK_EQ_INT(n, rc, TEL_OK);
        snprintf(n, sizeof n, "%s: endpoint from %s", label, top < 0 ? "builtin" : src_label[top]);
        CHECK(n, strcmp(p.endpoint, top < 0 ? tel__default_endpoint : ep[top]) == 0 &&
                     p.endpoint_src == (top < 0 ? TEL_SRC_BUILTIN : sv[top]));
        snprintf(n, sizeof n, "%s: token from %s", label, top < 0 ? "builtin" : src_label[top]);
        CHECK(n, strcmp(p.token, top < 0 ? "" : tk[top]) == 0 &&
                     p.token_src == (top < 0 ? TEL_SRC_BUILTIN : sv[top]));
        snprintf(n, sizeof n, "%s: logging from %s", label, top < 0 ? "builtin" : src_label[top]);
        CHECK(n, p.logging == (top < 0 ? 0 : (top % 2 == 0)) &&
                     p.logging_src == (top < 0 ? TEL_SRC_BUILTIN : sv[top]));
        snprintf(n, sizeof n, "%s: still enabled", label);
        CHECK(n, p.enabled == 1);
    }
}

/*
 * enabled: host, config, env and flag each unset, on or off (81 cases).
 * Any "off" wins, named by the strongest source saying off; otherwise the
 * strongest source saying "on" is named, or builtin.
 */
static void test_enabled_matrix(void)
{
    CHECK_GROUP("enabled");
    static const tel_source sv[] = { TEL_SRC_HOST, TEL_SRC_CONFIG, TEL_SRC_ENV, TEL_SRC_FLAG };
    int failures_before = check_failures;
    int cases = 0;
    for (int c = 0; c < 81; c++) {
        int v[4], x = c;
        for (int k = 0; k < 4; k++) {
            v[k] = x % 3 - 1; /* -1 unset, 0 off, 1 on */
            x /= 3;
        }
        fresh_home();
        tel_host_settings h = { v[0], TEL_SRC_HOST, NULL, NULL, -1, NULL, TEL_ERRORS_CLASS };
        tel_flag_settings f = { v[3], NULL, NULL, -1 };
        if (v[1] >= 0)
            write_conf(v[1] ? "# mine\nenabled = true\n" : "# mine\nenabled = false\n");
        if (v[2] >= 0)
            setenv("TAPP_TELEMETRY_ENABLED", v[2] ? "true" : "off", 1);
        tel_policy p;
        tel__policy_resolve(&p, APP, &h, &f);
        int want_on = 1;
        tel_source want_src = TEL_SRC_BUILTIN;
        for (int k = 0; k < 4; k++)
            if (v[k] == 0) {
                want_on = 0;
                want_src = sv[k];
            }
        if (want_on)
            for (int k = 0; k < 4; k++)
                if (v[k] == 1)
                    want_src = sv[k];
        char label[96];
        snprintf(label, sizeof label, "host=%d config=%d env=%d flag=%d", v[0], v[1], v[2], v[3]);
        cases++;
        if (p.enabled != want_on || p.enabled_src != want_src) {
            char n[160];
            snprintf(n, sizeof n, "%s: enabled=%d from %s", label, want_on, tel__source_name(want_src));
            CHECK(n, 0);
        }
        if (v[1] == 0 && v[2] != 0 && v[3] != 0)
            if (strcmp(p.enabled_why, "telemetry.conf line 2") != 0) {
                char n[160];
                snprintf(n, sizeof n, "%s: why names telemetry.conf line 2", label);
                CHECK(n, 0);
            }
    }
    CHECK_EQ_INT("81 combinations, none wrong", cases - (check_failures - failures_before), 81);

    fresh_home();
    tel_host_settings hf = { 0, TEL_SRC_FLAG, NULL, NULL, -1, NULL, TEL_ERRORS_CLASS };
    tel_flag_settings fon = { 1, NULL, NULL, -1 };
    tel_policy p;
    tel__policy_resolve(&p, APP, &hf, NULL);
    CHECK("host --no-telemetry counts as a flag", !p.enabled && p.enabled_src == TEL_SRC_FLAG);
    tel__policy_resolve(&p, APP, &hf, &fon);
    CHECK("host --no-telemetry beats tel's own --enable flag", !p.enabled);
    setenv("TAPP_TELEMETRY_ENABLED", "true", 1);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("env on is named", p.enabled && strcmp(p.enabled_why, "TAPP_TELEMETRY_ENABLED") == 0);
    static const char *const offs[] = { "false", "0", "no", "off", "OFF", "disable" };
    for (size_t i = 0; i < 6; i++) {
        char n[96];
        setenv("TAPP_TELEMETRY_ENABLED", offs[i], 1);
        tel__policy_resolve(&p, APP, NULL, &fon);
        snprintf(n, sizeof n, "ENABLED=%s disables, even against a flag", offs[i]);
        CHECK(n, !p.enabled && p.enabled_src == TEL_SRC_ENV &&
                     strcmp(p.enabled_why, "TAPP_TELEMETRY_ENABLED") == 0);
    }
    setenv("TAPP_TELEMETRY_ENABLED", "", 1);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("ENABLED= (empty) is unset", p.enabled && p.enabled_src == TEL_SRC_BUILTIN);
    unsetenv("TAPP_TELEMETRY_ENABLED");
}

static void test_do_not_track(void)
{
    CHECK_GROUP("DO_NOT_TRACK");
    static const struct {
        const char *v;
        int enabled;
    } cases[] = { { "", 1 }, { "0", 1 }, { "false", 1 }, { "FALSE", 1 }, { "1", 0 }, { "yes", 0 },
                  { "true", 0 }, { "anything", 0 } };
    tel_flag_settings fon = { 1, NULL, NULL, -1 };
    tel_host_settings hon = { 1, TEL_SRC_HOST, NULL, NULL, -1, NULL, TEL_ERRORS_CLASS };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fresh_home();
        write_conf("enabled = true\n");
        setenv("TAPP_TELEMETRY_ENABLED", "1", 1);
        setenv("DO_NOT_TRACK", cases[i].v, 1);
        tel_policy p;
        tel__policy_resolve(&p, APP, &hon, &fon);
        char n[96];
        snprintf(n, sizeof n, "DO_NOT_TRACK='%s' -> %s against every other source saying on",
                 cases[i].v, cases[i].enabled ? "enabled" : "disabled");
        CHECK(n, p.enabled == cases[i].enabled);
        if (!cases[i].enabled) {
            snprintf(n, sizeof n, "DO_NOT_TRACK='%s' named as the reason", cases[i].v);
            CHECK(n, p.enabled_src == TEL_SRC_ENV && strcmp(p.enabled_why, "DO_NOT_TRACK") == 0);
        }
    }
    /* It is not per app: another app's resolve sees it too. */
    fresh_home();
    setenv("DO_NOT_TRACK", "1", 1);
    tel_policy p;
    tel__policy_resolve(&p, "other-app", NULL, NULL);
    CHECK("applies to every app", !p.enabled);
    unsetenv("DO_NOT_TRACK");
}

static void test_env_misc(void)
{
    CHECK_GROUP("env");
    fresh_home();
    tel_policy p;
    setenv("TAPP_TELEMETRY_DEBUG", "1", 1);
    setenv("TAPP_TELEMETRY_INSPECT", "/tmp/inspect.out", 1);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("DEBUG=1 sets debug", p.debug == 1);
    CHECK("INSPECT sets the inspect path", strcmp(p.inspect, "/tmp/inspect.out") == 0);
    setenv("TAPP_TELEMETRY_DEBUG", "0", 1);
    unsetenv("TAPP_TELEMETRY_INSPECT");
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("DEBUG=0 leaves debug off", p.debug == 0);
    CHECK("no INSPECT, empty path", p.inspect[0] == '\0');
    unsetenv("TAPP_TELEMETRY_DEBUG");

    setenv("MY_APP_CLI_TELEMETRY_ENABLED", "no", 1);
    tel__policy_resolve(&p, "my-app.cli", NULL, NULL);
    CHECK("dotted, dashed app reads MY_APP_CLI_TELEMETRY_ENABLED", !p.enabled);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("another app's variable does not count", p.enabled);
    unsetenv("MY_APP_CLI_TELEMETRY_ENABLED");

    setenv("TAPP_TELEMETRY_LOGGING", "maybe", 1);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("unparseable LOGGING is ignored", p.logging == 0 && p.logging_src == TEL_SRC_BUILTIN);
    unsetenv("TAPP_TELEMETRY_LOGGING");

    CHECK_EQ_INT("bad app name refused", tel__policy_resolve(&p, "../x", NULL, NULL), TEL_ERR_INVALID);
    CHECK("bad app name counts as disabled", !p.enabled);

    unsetenv("HOME");
    CHECK_EQ_INT("no HOME: still resolves", tel__policy_resolve(&p, APP, NULL, NULL), TEL_OK);
    CHECK("no HOME: enabled by default", p.enabled);
    fresh_home();
}

/* -------------------------------------------------------------- config */

static void test_config_parse(void)
{
    CHECK_GROUP("config");
    tel_policy p;
    const char *home = fresh_home();
    CHECK_EQ_INT("missing file is fine", tel__policy_resolve(&p, APP, NULL, NULL), TEL_OK);

    write_conf("# telemetry settings\n\n   # indented comment\n"
               "  endpoint   =   \"https://c.example/x y\"  \r\n"
               "token=\"  spaced  \"\n"
               "logging = on\n"
               "enabled = TRUE\n");
    CHECK_EQ_INT("comments, blanks, quotes, CRLF parse", tel__policy_resolve(&p, APP, NULL, NULL), TEL_OK);
    CHECK("quoted endpoint", strcmp(p.endpoint, "https://c.example/x y") == 0 && p.endpoint_src == TEL_SRC_CONFIG);
    CHECK("quotes keep inner spaces", strcmp(p.token, "  spaced  ") == 0);
    CHECK("logging = on", p.logging == 1 && p.logging_src == TEL_SRC_CONFIG);
    CHECK("enabled = TRUE is an explicit on", p.enabled && p.enabled_src == TEL_SRC_CONFIG &&
                                                 strcmp(p.enabled_why, "telemetry.conf line 7") == 0);

    write_conf("endpoint =\ntoken = \"\"\n");
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("empty values leave the defaults", strcmp(p.endpoint, tel__default_endpoint) == 0 &&
                                                 p.endpoint_src == TEL_SRC_BUILTIN && p.token[0] == '\0');

    static const struct {
        const char *text;
        int line;
        const char *msg;
    } bad[] = {
        { "enabled = true\nfoo = 1\n", 2, "unknown key 'foo'" },
        { "# c\n\njust words\n", 3, "expected 'key = value'" },
        { "enabled = perhaps\n", 1, "must be true or false" },
        { "token = \"open\n", 1, "unterminated" },
        { "= x\n", 1, "missing key" },
        { "logging = 2\n", 1, "must be true or false" },
        { "Enabled = false\n", 1, "unknown key 'Enabled'" },
        /* A key twice: "off then on" must not resolve to on. */
        { "enabled = false\nenabled = true\n", 2, "'enabled' is already set on line 1" },
        { "token = a\n# c\ntoken = b\n", 3, "'token' is already set on line 1" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fresh_home();
        setenv("TAPP_TELEMETRY_ENDPOINT", "https://env.example/e", 1);
        write_conf(bad[i].text);
        char n[128], want[64];
        int rc = tel__policy_resolve(&p, APP, NULL, NULL);
        snprintf(n, sizeof n, "bad file %zu: TEL_ERR_CONFIG", i + 1);
        CHECK_EQ_INT(n, rc, TEL_ERR_CONFIG);
        snprintf(want, sizeof want, "telemetry.conf line %d: ", bad[i].line);
        snprintf(n, sizeof n, "bad file %zu: message names line %d", i + 1, bad[i].line);
        CHECK(n, strncmp(tel_last_error(), want, strlen(want)) == 0);
        snprintf(n, sizeof n, "bad file %zu: message says '%s'", i + 1, bad[i].msg);
        CHECK(n, strstr(tel_last_error(), bad[i].msg) != NULL);
        snprintf(n, sizeof n, "bad file %zu: message holds no path", i + 1);
        CHECK(n, strchr(tel_last_error(), '/') == NULL);
        snprintf(n, sizeof n, "bad file %zu: counts as disabled by config", i + 1);
        CHECK(n, !p.enabled && p.enabled_src == TEL_SRC_CONFIG);
        snprintf(n, sizeof n, "bad file %zu: other sources still fill the policy", i + 1);
        CHECK(n, strcmp(p.endpoint, "https://env.example/e") == 0);
    }
    unsetenv("TAPP_TELEMETRY_ENDPOINT");

    fresh_home();
    write_conf("token = from-broken-file\nbogus\n");
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("a broken file's good lines are not used", p.token[0] == '\0');

    /* Not a regular file. */
    home = fresh_home();
    char path[PATH_MAX], other[PATH_MAX];
    snprintf(path, sizeof path, "%s/.config/" APP "/telemetry.conf", home);
    write_conf("");
    unlink(path);
    mkdir(path, 0755);
    CHECK_EQ_INT("directory in its place: error", tel__policy_resolve(&p, APP, NULL, NULL), TEL_ERR_CONFIG);
    CHECK("directory in its place: disabled", !p.enabled);
    CHECK_EQ_INT("directory in its place: tel disable refuses to replace it",
                 tel__config_set(APP, "enabled", "false"), TEL_ERR_IO);
    CHECK("and says why in its detail", tel_last_error()[0] != '\0');
    rmdir(path);
    snprintf(other, sizeof other, "%s/elsewhere.conf", home);
    write_file(other, "enabled = false\n");
    CHECK("symlink made", symlink(other, path) == 0);
    CHECK_EQ_INT("symlink to a file: followed", tel__policy_resolve(&p, APP, NULL, NULL), TEL_OK);
    CHECK("symlink to a file: its opt-out counts", !p.enabled && p.enabled_src == TEL_SRC_CONFIG);
    unlink(path);
    CHECK("dangling symlink made", symlink("/nonexistent/tel.conf", path) == 0);
    CHECK_EQ_INT("dangling symlink: no config", tel__policy_resolve(&p, APP, NULL, NULL), TEL_OK);
    unlink(path);
    CHECK("symlink to a directory made", symlink(home, path) == 0);
    CHECK_EQ_INT("symlink to a directory: error", tel__policy_resolve(&p, APP, NULL, NULL), TEL_ERR_CONFIG);
    CHECK("symlink to a directory: disabled", !p.enabled);
    CHECK("symlink to a directory: message holds no path", strchr(tel_last_error(), '/') == NULL);
    unlink(path);
    CHECK("fifo made", mkfifo(path, 0600) == 0);
    CHECK_EQ_INT("fifo: error, no hang", tel__policy_resolve(&p, APP, NULL, NULL), TEL_ERR_CONFIG);
    unlink(path);

    char *big = malloc(70 * 1024);
    memset(big, '#', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    write_conf(big);
    free(big);
    CHECK_EQ_INT("over 64 KiB: error", tel__policy_resolve(&p, APP, NULL, NULL), TEL_ERR_CONFIG);
    CHECK("over 64 KiB: disabled", !p.enabled);

    /* Relative XDG_CONFIG_HOME is ignored: the file under HOME counts. */
    fresh_home();
    write_conf("enabled = false\n");
    setenv("XDG_CONFIG_HOME", "nowhere", 1);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("relative XDG_CONFIG_HOME: HOME/.config read", !p.enabled);
    snprintf(path, sizeof path, "%s/xdgconf", fx_root);
    mkdir(path, 0755);
    setenv("XDG_CONFIG_HOME", path, 1);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("absolute XDG_CONFIG_HOME: HOME/.config not read", p.enabled);
    unsetenv("XDG_CONFIG_HOME");
}

static void test_config_set(void)
{
    CHECK_GROUP("config_set");
    const char *home = fresh_home();
    char path[PATH_MAX], dir[1024];
    snprintf(dir, sizeof dir, "%s/.config/" APP, home);
    snprintf(path, sizeof path, "%s/telemetry.conf", dir);
    mode_t old = umask(0);

    CHECK_EQ_INT("creates the file", tel__config_set(APP, "enabled", "false"), TEL_OK);
    CHECK_EQ_INT("dir is 0700 under umask 000", mode_of(dir), 0700);
    CHECK_EQ_INT("file is 0600 under umask 000", mode_of(path), 0600);
    char *txt = read_text(path);
    CHECK("content is the one line", txt && strcmp(txt, "enabled = false\n") == 0);
    tel_policy p;
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("read back: disabled", !p.enabled && p.enabled_src == TEL_SRC_CONFIG);

    write_file(path, "# keep me\nendpoint = https://mine.example/x\n\n"
                     "enabled = false # stale\n# and me\nenabled = true\nlogging = on");
    chmod(path, 0644);
    CHECK_EQ_INT("rewrites", tel__config_set(APP, "enabled", "true"), TEL_OK);
    txt = read_text(path);
    CHECK("comments and other keys kept, first key line replaced, duplicates dropped",
          txt && strcmp(txt, "# keep me\nendpoint = https://mine.example/x\n\nenabled = true\n"
                             "# and me\nlogging = on\n") == 0);
    CHECK_EQ_INT("rewritten file is 0600", mode_of(path), 0600);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("read back: enabled by config, endpoint kept",
          p.enabled && p.enabled_src == TEL_SRC_CONFIG && strcmp(p.endpoint, "https://mine.example/x") == 0);

    CHECK_EQ_INT("token with spaces", tel__config_set(APP, "token", " a b "), TEL_OK);
    CHECK_EQ_INT("leading quote", tel__config_set(APP, "endpoint", "\"q\""), TEL_OK);
    tel__policy_resolve(&p, APP, NULL, NULL);
    CHECK("spaces survive the round trip", strcmp(p.token, " a b ") == 0);
    CHECK("quotes survive the round trip", strcmp(p.endpoint, "\"q\"") == 0);

    CHECK_EQ_INT("unknown key refused", tel__config_set(APP, "colour", "blue"), TEL_ERR_INVALID);
    CHECK_EQ_INT("newline in value refused", tel__config_set(APP, "token", "a\nenabled = true"), TEL_ERR_INVALID);
    CHECK_EQ_INT("non-boolean enabled refused", tel__config_set(APP, "enabled", "perhaps"), TEL_ERR_INVALID);
    CHECK_EQ_INT("bad app refused", tel__config_set("../x", "enabled", "false"), TEL_ERR_INVALID);

    /* No temporary file is left behind. */
    int leftovers = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        leftovers += strncmp(e->d_name, ".telemetry", 10) == 0;
    if (d)
        closedir(d);
    CHECK_EQ_INT("no temporary files left", leftovers, 0);

    /* A symlink in place of the file (a dotfile manager's) is kept, and
     * the file it points at is what gets updated. */
    unlink(path);
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/real.conf", home);
    write_file(other, "enabled = true\n");
    symlink(other, path);
    CHECK_EQ_INT("symlink in place: written through", tel__config_set(APP, "enabled", "false"), TEL_OK);
    struct stat st;
    CHECK("symlink still a symlink", lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK("symlink target updated", strcmp(read_text(other), "enabled = false\n") == 0);
    unlink(path);
    symlink("/nonexistent/tel.conf", path);
    CHECK_EQ_INT("dangling symlink in place refused", tel__config_set(APP, "enabled", "false"), TEL_ERR_IO);
    CHECK("dangling symlink's target not created", access("/nonexistent/tel.conf", F_OK) != 0);

    unsetenv("HOME");
    CHECK_EQ_INT("no HOME: NOSTATE", tel__config_set(APP, "enabled", "false"), TEL_ERR_NOSTATE);
    fresh_home();
    umask(old);
}

/* ------------------------------------------------------------ endpoint */

static void test_endpoint(void)
{
    CHECK_GROUP("endpoint_check");
    static const char *const good[] = {
        "https://collector.example.com/v1/batch",
        "https://collector.example.com",
        "https://collector.example.com:8443/v1/batch?x=1",
        "HTTPS://Collector.Example.com/x",
        "http://127.0.0.1:8787/v1/batch",
        "http://127.1.2.3/x",
        "http://localhost:8080/",
        "http://LOCALHOST/x",
        "http://[::1]:9000/v1",
        "https://[2001:db8::1]/v1",
    };
    static const char *const bad[] = {
        "http://example.com/v1",
        "http://128.0.0.1/x",
        "http://localhost.example.com/x",
        "http://[::2]/x",
        "https://user:pass@collector.example.com/x",
        "https://token@collector.example.com/x",
        "http://user@127.0.0.1/x",
        "ftp://collector.example.com/x",
        "file:///etc/passwd",
        "collector.example.com/v1",
        "https://collector.example.com/a b",
        "https://collector.example.com/a\tb",
        "https://collector.example.com/\x01",
        "https://",
        "https://:443/x",
        "https://host:99999/x",
        "https://host:/x",
        "https://host:12ab/x",
        "https://[::1/x",
        "",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char n[160];
        snprintf(n, sizeof n, "accepts %s", good[i]);
        CHECK_EQ_INT(n, tel__endpoint_check(good[i]), TEL_OK);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char n[160];
        snprintf(n, sizeof n, "refuses bad endpoint %zu", i + 1);
        CHECK_EQ_INT(n, tel__endpoint_check(bad[i]), TEL_ERR_INVALID);
    }
    CHECK_EQ_INT("refuses NULL", tel__endpoint_check(NULL), TEL_ERR_INVALID);
    tel__endpoint_check("https://alice:s3cr3t-pw@collector.example.com/x");
    CHECK("credentials not echoed", strstr(tel_last_error(), "s3cr3t") == NULL &&
                                        strstr(tel_last_error(), "alice") == NULL);
    tel__endpoint_check("http://example.com/private/path");
    CHECK("http refusal names the host", strstr(tel_last_error(), "example.com") != NULL);
    CHECK("http refusal does not echo the path", strstr(tel_last_error(), "private") == NULL);
    tel__endpoint_check("ftp://x/y");
    CHECK("scheme refusal names the scheme", strstr(tel_last_error(), "'ftp'") != NULL);
}

/* The declarations every test below starts from: one of each meaning. */
static void declare_all(tel_decls *d)
{
    memset(d, 0, sizeof *d);
    tel__decls_add(d, "T_OFF", TEL_ENV_OFF_IF_TRUE, NULL);
    tel__decls_add(d, "T_SET", TEL_ENV_OFF_IF_SET, NULL);
    tel__decls_add(d, "T_ONOFF", TEL_ENV_ON_OFF, NULL);
    tel__decls_add(d, "T_DEBUG", TEL_ENV_DEBUG_IF_CONTAINS, "tapp:telemetry");
    tel__decls_add(d, "T_LOG", TEL_ENV_LOG_FILE, NULL);
    tel__decls_add(d, "T_ERRS", TEL_ENV_DETAILED_ERRORS, NULL);
}

static tel_policy resolve_with(const tel_decls *d, int host_enabled, tel_source host_src)
{
    tel_host_settings h = { host_enabled, host_src, NULL, NULL, -1, d, TEL_ERRORS_CLASS };
    tel_policy p;
    tel__policy_resolve(&p, APP, &h, NULL);
    return p;
}

/*
 * Host-declared variables: each meaning against the values a user types,
 * the variable named as the decider, and an opt-out counted as one.
 */
static void test_declared(void)
{
    CHECK_GROUP("declared variables");
    tel_decls d;
    declare_all(&d);
    CHECK_EQ_INT("six declared", (int)d.n, 6);
    static const struct {
        const char *var, *val;
        int on;
        const char *why;
    } cases[] = {
        { "T_OFF", "1", 0, "T_OFF" },        { "T_OFF", "true", 0, "T_OFF" },
        { "T_OFF", "yes please", 0, "T_OFF" }, { "T_OFF", "0", 1, "builtin" },
        { "T_OFF", "false", 1, "builtin" },  { "T_OFF", "", 1, "builtin" },
        { "T_SET", "1", 0, "T_SET" },        { "T_SET", "0", 0, "T_SET" },
        { "T_SET", "", 0, "T_SET" },         { "T_ONOFF", "0", 0, "T_ONOFF" },
        { "T_ONOFF", "false", 0, "T_ONOFF" }, { "T_ONOFF", "nope", 0, "T_ONOFF" },
        { "T_ONOFF", "1", 1, "T_ONOFF" },    { "T_ONOFF", "", 1, "builtin" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fresh_home();
        setenv(cases[i].var, cases[i].val, 1);
        tel_policy p = resolve_with(&d, -1, TEL_SRC_HOST);
        char n[128];
        snprintf(n, sizeof n, "%s='%s' -> %s, decided by %s", cases[i].var, cases[i].val,
                 cases[i].on ? "on" : "off", cases[i].why);
        CHECK(n, p.enabled == cases[i].on && strcmp(p.enabled_why, cases[i].why) == 0 &&
                     p.opted_out == !cases[i].on);
        unsetenv(cases[i].var);
    }
    fresh_home();
    setenv("T_OFF", "1", 1);
    write_conf("enabled = true\n");
    setenv("TAPP_TELEMETRY_ENABLED", "true", 1);
    tel_policy p = resolve_with(&d, 1, TEL_SRC_FLAG);
    CHECK("a declared opt-out beats every on (config, env, the host's flag)",
          !p.enabled && p.enabled_src == TEL_SRC_ENV && strcmp(p.enabled_why, "T_OFF") == 0);
    tel_policy none = resolve_with(NULL, -1, TEL_SRC_HOST);
    CHECK("without the declaration the variable means nothing", none.enabled);

    fresh_home();
    static const struct {
        const char *val;
        int debug;
    } dbg[] = { { "tapp:telemetry", 1 }, { "vite:*,tapp:telemetry", 1 }, { "tapp:*", 1 }, { "*", 1 },
                { "tapp:telemetryx", 0 }, { "other", 0 }, { "tapp", 0 }, { "", 0 } };
    for (size_t i = 0; i < sizeof dbg / sizeof *dbg; i++) {
        setenv("T_DEBUG", dbg[i].val, 1);
        p = resolve_with(&d, -1, TEL_SRC_HOST);
        char n[128];
        snprintf(n, sizeof n, "T_DEBUG='%s' -> debug %s", dbg[i].val, dbg[i].debug ? "on" : "off");
        CHECK(n, p.debug == dbg[i].debug && (!p.debug || strcmp(p.debug_why, "T_DEBUG") == 0));
    }
    unsetenv("T_DEBUG");
    setenv("T_LOG", "/tmp/audit.log", 1);
    setenv("T_ERRS", "1", 1);
    p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("log-file: the path is taken, the variable named", p.log_file && strcmp(p.log_file, "/tmp/audit.log") == 0 &&
                                                                   strcmp(p.log_file_why, "T_LOG") == 0);
    CHECK("detailed-errors: raised to sanitised, the variable named",
          p.error_detail == TEL_ERRORS_SANITIZED && strcmp(p.error_detail_why, "T_ERRS") == 0);
    setenv("T_ERRS", "0", 1);
    p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("detailed-errors=0: class only", p.error_detail == TEL_ERRORS_CLASS);
    unsetenv("T_LOG");
    unsetenv("T_ERRS");

    tel_decls bad = { .n = 0 };
    CHECK_EQ_INT("a name with '=' is refused", tel__decls_add(&bad, "A=B", TEL_ENV_OFF_IF_SET, NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("a name starting with a digit is refused", tel__decls_add(&bad, "1A", TEL_ENV_OFF_IF_SET, NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("an unknown meaning is refused", tel__decls_add(&bad, "A", 99, NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("debug-if-contains needs a word", tel__decls_add(&bad, "A", TEL_ENV_DEBUG_IF_CONTAINS, NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("a word with a comma is refused", tel__decls_add(&bad, "A", TEL_ENV_DEBUG_IF_CONTAINS, "a,b"), TEL_ERR_INVALID);
    CHECK_EQ_INT("a word on another meaning is refused", tel__decls_add(&bad, "A", TEL_ENV_OFF_IF_SET, "w"), TEL_ERR_INVALID);
    CHECK_EQ_INT("the first declaration is taken", tel__decls_add(&bad, "A", TEL_ENV_OFF_IF_SET, NULL), TEL_OK);
    CHECK_EQ_INT("a name declared twice is refused", tel__decls_add(&bad, "A", TEL_ENV_ON_OFF, NULL), TEL_ERR_INVALID);
    for (int i = 1; i < TEL_MAX_DECLS; i++) {
        char n[16];
        snprintf(n, sizeof n, "V%d", i);
        tel__decls_add(&bad, n, TEL_ENV_OFF_IF_SET, NULL);
    }
    CHECK_EQ_INT("more than 16 is over the limit", tel__decls_add(&bad, "LAST", TEL_ENV_OFF_IF_SET, NULL), TEL_ERR_LIMIT);
}

/* The file beside the queue: what is written is what is read back; what
 * does not parse is refused whole. */
static void test_declared_file(void)
{
    CHECK_GROUP("declared file");
    const char *home = fresh_home();
    tel_decls d, back;
    declare_all(&d);
    d.default_off = 1;
    CHECK_EQ_INT("stored", tel__decls_store(home, &d), TEL_OK);
    CHECK_EQ_INT("loaded", tel__decls_load(home, &back), TEL_OK);
    CHECK("read back the same", back.n == d.n && back.default_off && memcmp(&back, &d, sizeof d) == 0);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" TEL_DECL_FILE, home);
    CHECK_EQ_INT("mode 0600", mode_of(path), 0600);
    char *text = read_text(path);
    CHECK("holds names and meanings", text && strstr(text, "env T_DEBUG debug-if-contains tapp:telemetry\n") &&
                                          strstr(text, "default off\n"));
    static const char *const bad[] = { "env\n", "env A\n", "env A off\n", "env A off-if-set extra\n",
                                       "default on\n", "env A=B off-if-set\n", "envy A off-if-set\n",
                                       "env A debug-if-contains\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(path, bad[i]);
        char n[96];
        snprintf(n, sizeof n, "refused: '%.*s'", (int)strlen(bad[i]) - 1, bad[i]);
        CHECK(n, tel__decls_load(home, &back) == TEL_ERR_CORRUPT);
    }
    unlink(path);
    CHECK_EQ_INT("no file: nothing declared", tel__decls_load(home, &back), TEL_ERR_NOTFOUND);
    mkfifo(path, 0600);
    CHECK_EQ_INT("a fifo there is refused, without hanging", tel__decls_load(home, &back), TEL_ERR_CORRUPT);
    unlink(path);
}

/*
 * A host default of off is a default: the user's own on (config, env, a
 * declared on variable, a flag) turns it on, and it never counts as an
 * opt-out.  The host's off (per run or host level) beats every on and is
 * not an opt-out either; the user's offs are.
 */
static void test_default_off(void)
{
    CHECK_GROUP("default off and who opted out");
    tel_decls d;
    declare_all(&d);
    d.default_off = 1;
    fresh_home();
    tel_policy p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("default off: off, decided by the host's default, not an opt-out",
          !p.enabled && p.enabled_src == TEL_SRC_HOST && strcmp(p.enabled_why, "default off") == 0 &&
              !p.opted_out);
    p = resolve_with(&d, 1, TEL_SRC_HOST);
    CHECK("default off: the host's own on does not count as the user's", !p.enabled);
    p = resolve_with(&d, 1, TEL_SRC_FLAG);
    CHECK("default off: the user's on flag turns it on", p.enabled && p.enabled_src == TEL_SRC_FLAG);
    setenv("T_ONOFF", "1", 1);
    p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("default off: the declared on variable turns it on", p.enabled && strcmp(p.enabled_why, "T_ONOFF") == 0);
    unsetenv("T_ONOFF");
    setenv("TAPP_TELEMETRY_ENABLED", "1", 1);
    p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("default off: <APP>_TELEMETRY_ENABLED=1 turns it on", p.enabled && p.enabled_src == TEL_SRC_ENV);
    unsetenv("TAPP_TELEMETRY_ENABLED");
    write_conf("enabled = true\n");
    p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("default off: enabled = true in telemetry.conf turns it on", p.enabled && p.enabled_src == TEL_SRC_CONFIG);
    setenv("DO_NOT_TRACK", "1", 1);
    p = resolve_with(&d, -1, TEL_SRC_HOST);
    CHECK("default off, config on: DO_NOT_TRACK still wins, as an opt-out", !p.enabled && p.opted_out);
    unsetenv("DO_NOT_TRACK");

    fresh_home();
    p = resolve_with(NULL, 0, TEL_SRC_FLAG);
    CHECK("the host's --no-telemetry: off, not an opt-out", !p.enabled && !p.opted_out);
    p = resolve_with(NULL, 0, TEL_SRC_HOST);
    CHECK("a host-level off: off, not an opt-out", !p.enabled && !p.opted_out &&
                                                        strcmp(p.enabled_why, "host") == 0);
    write_conf("enabled = true\n");
    p = resolve_with(NULL, 0, TEL_SRC_HOST);
    CHECK("a host-level off beats the user's on", !p.enabled && !p.opted_out);
    tel_flag_settings foff = { 0, NULL, NULL, -1 };
    tel__policy_resolve(&p, APP, NULL, &foff);
    CHECK("tel's own off flag: not an opt-out", !p.enabled && !p.opted_out);
    static const char *const user_offs[] = { "DO_NOT_TRACK", "TAPP_TELEMETRY_ENABLED", "T_OFF", "conf" };
    for (size_t i = 0; i < 4; i++) {
        fresh_home();
        if (i == 3)
            write_conf("enabled = false\n");
        else
            setenv(user_offs[i], i == 1 ? "false" : "1", 1);
        p = resolve_with(&d, 0, TEL_SRC_FLAG);
        char n[128];
        snprintf(n, sizeof n, "%s with the host's flag off too: still the user's opt-out", user_offs[i]);
        CHECK(n, !p.enabled && p.opted_out);
        unsetenv(user_offs[i]);
    }
}

int main(void)
{
    if (fx_setup("policy") != 0)
        return 1;
    test_app_names();
    test_paths();
    test_mkdir_private();
    test_small();
    test_precedence_matrix();
    test_enabled_matrix();
    test_do_not_track();
    test_env_misc();
    test_config_parse();
    test_config_set();
    test_endpoint();
    test_declared();
    test_declared_file();
    test_default_off();
    fx_cleanup();
    return check_exit();
}
