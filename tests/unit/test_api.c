/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_api.c - the public API as a host author meets it: the
 * first-run notice and require_notice, the audit callback, debug
 * telemetry, error details, option names, the project id, tel_emit's
 * return codes, NULL handles and the batch calls.
 *
 * Each group runs under a fresh temporary HOME with every variable that
 * could change the outcome cleared, so the machine's own settings (a CI
 * runner's variables, a developer's DO_NOT_TRACK) never decide a result.
 * The queue is counted through the library's internal reader only to
 * observe; everything under test goes through tel.h.
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "internal.h"
#include "tel.h"

#define APP "tapi"
#define TOKEN "tok-unit-zq8secret"

static const char *home = "";

/* The test apps' own variables; the fixture clears the rest. */
static const char *const clear_env[] = {
    "TAPI_TELEMETRY_ENABLED", "TAPI_TELEMETRY_ENDPOINT", "TAPI_TELEMETRY_TOKEN",
    "TAPI_TELEMETRY_LOGGING", "TAPI_TELEMETRY_DEBUG",    "TAPI_TELEMETRY_INSPECT",
    "TAPI2_TELEMETRY_ENABLED",
};

static void fresh(void)
{
    home = fx_fresh_home();
    for (size_t i = 0; i < sizeof clear_env / sizeof clear_env[0]; i++)
        unsetenv(clear_env[i]);
}

/* Events in an app's queue; 0 when there is no queue. */
static long queued(const char *app)
{
    char dir[TEL_PATH_MAX];
    tel_queue *q;
    tel_queue_stats s;
    if (tel__state_dir(app, dir, sizeof dir) != TEL_OK)
        return -1;
    int rc = tel__queue_open(&q, dir, NULL, TEL_Q_READONLY);
    if (rc == TEL_ERR_NOTFOUND)
        return 0;
    if (rc != TEL_OK)
        return -1;
    rc = tel__queue_stats(q, &s);
    tel__queue_close(q);
    return rc == TEL_OK ? (long)s.count : -1;
}

static int exists(const char *rel)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", home, rel);
    return lstat(p, &st) == 0;
}

/* ------------------------------------------------------ log capture */

#define MAX_LINES 64
static char *lines[MAX_LINES];
static int nlines;

static void capture(void *ud, const char *line)
{
    (*(int *)ud)++;
    if (nlines < MAX_LINES)
        lines[nlines++] = strdup(line);
}

static void clear_lines(void)
{
    for (int i = 0; i < nlines; i++)
        free(lines[i]);
    nlines = 0;
}

static int any_line_has(const char *s)
{
    for (int i = 0; i < nlines; i++)
        if (strstr(lines[i], s))
            return 1;
    return 0;
}

static const char *last_line(void)
{
    return nlines ? lines[nlines - 1] : "";
}

/* The execution id of the last logged event; "" when none. */
static void last_exec(char out[37])
{
    const char *p = strstr(last_line(), "\"exec\":\"");
    out[0] = '\0';
    if (p && strlen(p + 8) >= 36)
        snprintf(out, 37, "%.36s", p + 8);
}

/* Opens APP with a capturing logger; extra settings by the caller first. */
static int calls;
static tel *open_logged(tel_options *o)
{
    tel *h = NULL;
    tel_options_set_logging(o, 1, capture, &calls);
    tel_open(&h, o);
    return h;
}

static tel *open_app(const char *app)
{
    tel *h = NULL;
    tel_open(&h, tel_options_new(app));
    return h;
}

/* ------------------------------------------------------------ notice */

static void test_notice(void)
{
    CHECK_GROUP("notice");
    fresh();
    int in_ci = tel__ci_vendor() != NULL;
    if (in_ci) {
        CHECK_SKIP("an unknown CI variable is set on this machine");
        return;
    }
    tel *h = open_app(APP);
    CHECK("due on the first run", tel_notice_due(h) == 1);
    CHECK_EQ_INT("shown", tel_notice_shown(h), TEL_OK);
    CHECK("not due once shown, same handle", tel_notice_due(h) == 0);
    tel_close(h);
    h = open_app(APP);
    CHECK("not due on the next run", tel_notice_due(h) == 0);
    tel_close(h);
    h = open_app(APP);
    CHECK("nor the one after", tel_notice_due(h) == 0);
    tel_close(h);
    h = open_app("tapi2");
    CHECK("due for another app", tel_notice_due(h) == 1);
    tel_close(h);

    static const char *const ci[][2] = { { "CI", "true" }, { "GITHUB_ACTIONS", "true" } };
    for (size_t i = 0; i < 2; i++) {
        fresh();
        setenv(ci[i][0], ci[i][1], 1);
        h = open_app(APP);
        char name[96];
        snprintf(name, sizeof name, "never due with %s=%s", ci[i][0], ci[i][1]);
        CHECK(name, tel_notice_due(h) == 0);
        tel_close(h);
        unsetenv(ci[i][0]);
        h = open_app(APP);
        snprintf(name, sizeof name, "a run under %s did not use up the notice", ci[i][0]);
        CHECK(name, tel_notice_due(h) == 1);
        tel_close(h);
    }
    fresh();
    setenv("CI", "false", 1);
    h = open_app(APP);
    CHECK("CI=false is not CI: due", tel_notice_due(h) == 1);
    tel_close(h);

    /* Disabled: nothing to give notice of, and nothing written. */
    fresh();
    setenv("DO_NOT_TRACK", "1", 1);
    h = open_app(APP);
    CHECK("not due under DO_NOT_TRACK", tel_notice_due(h) == 0);
    CHECK_EQ_INT("shown under DO_NOT_TRACK is a no-op", tel_notice_shown(h), TEL_DISABLED);
    CHECK("and writes no state", !exists(".local/state"));
    tel_close(h);
    fresh();
    tel_options *o = tel_options_new(APP);
    tel_options_set_enabled(o, 0, TEL_SRC_FLAG);
    tel_open(&h, o);
    CHECK("not due with the host's --no-telemetry", tel_notice_due(h) == 0);
    tel_close(h);
    fresh();
    setenv("TAPI_TELEMETRY_ENABLED", "false", 1);
    h = open_app(APP);
    CHECK("not due with <APP>_TELEMETRY_ENABLED=false", tel_notice_due(h) == 0);
    tel_close(h);
    fresh();
    tel_set_enabled(APP, 0);
    h = open_app(APP);
    CHECK("not due after tel_set_enabled(0)", tel_notice_due(h) == 0);
    tel_close(h);
}

static void test_require_notice(void)
{
    CHECK_GROUP("require_notice");
    fresh();
    tel_options *o = tel_options_new(APP);
    tel_options_set_require_notice(o, 1);
    calls = 0;
    tel *h = open_logged(o);
    CHECK("open succeeds", h != NULL);
    CHECK("tel_enabled is 0 before the notice", tel_enabled(h) == 0);
    CHECK_EQ_INT("an emit before the notice", tel_emit_event(h, "ev", NULL, 0), TEL_DISABLED);
    CHECK_EQ_INT("command_started before the notice", tel_command_started(h, "deploy", NULL, 0),
                 TEL_DISABLED);
    CHECK_EQ_INT("command_exited before the notice", tel_command_exited(h, 0, NULL, NULL),
                 TEL_DISABLED);
    tel_batch_begin(h);
    CHECK_EQ_INT("a batched emit before the notice", tel_emit_event(h, "ev", NULL, 0), TEL_DISABLED);
    tel_batch_commit(h);
    CHECK_EQ_INT("spawn before the notice", tel_spawn_sync(h, 1), TEL_DISABLED);
    CHECK_EQ_INT("nothing queued before the notice", queued(APP), 0);
    CHECK_EQ_INT("nothing logged before the notice", calls, 0);
    CHECK_EQ_INT("notice shown", tel_notice_shown(h), TEL_OK);
    CHECK("tel_enabled is 1 after", tel_enabled(h) == 1);
    CHECK_EQ_INT("an emit after the notice", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    CHECK_EQ_INT("is queued", queued(APP), 1);
    tel_close(h);
    o = tel_options_new(APP);
    tel_options_set_require_notice(o, 1);
    h = NULL;
    tel_open(&h, o);
    CHECK_EQ_INT("the next run records at once", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    tel_close(h);
    CHECK_EQ_INT("two queued", queued(APP), 2);
    clear_lines();
}

/* ------------------------------------------------- logging and debug */

static void test_logging(void)
{
    CHECK_GROUP("logging");
    fresh();
    tel_options *o = tel_options_new(APP);
    tel_options_set_token(o, TOKEN);
    tel_options_set_endpoint(o, "https://collector.example/v1");
    calls = 0;
    clear_lines();
    tel *h = open_logged(o);
    tel_emit_event(h, "ev.one", TEL_PROPS(TEL_STR("k", "v"), TEL_INT("n", 3)));
    tel_emit_event(h, "ev.two", NULL, 0);
    tel_command_started(h, "deploy", NULL, 0);
    tel_command_exited(h, 0, NULL, NULL);
    tel_close(h);
    CHECK_EQ_INT("one callback per event", calls, 4);
    CHECK_EQ_INT("four events queued", queued(APP), 4);
    int json = nlines == 4;
    for (int i = 0; i < nlines; i++) {
        const char *j = strchr(lines[i], '{');
        size_t n = strlen(lines[i]);
        json = json && j && strncmp(lines[i], "recorded: ", 10) == 0 && lines[i][n - 1] == '}';
    }
    CHECK("each line is 'recorded: ' and a JSON object", json);
    CHECK("the first line is the first event, with its properties",
          nlines > 0 && strstr(lines[0], "\"name\":\"ev.one\"") &&
              strstr(lines[0], "\"props\":{\"k\":\"v\",\"n\":3}"));
    CHECK("the command events are logged", any_line_has("command.exited"));
    CHECK("the token is in no line", !any_line_has(TOKEN) && !any_line_has("zq8secret"));

    fresh();
    setenv("DO_NOT_TRACK", "1", 1);
    calls = 0;
    h = open_logged(tel_options_new(APP));
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    CHECK_EQ_INT("disabled: no callback", calls, 0);
    clear_lines();
}

static void test_debug(void)
{
    CHECK_GROUP("debug");
    fresh();
    setenv("TAPI_TELEMETRY_DEBUG", "1", 1);
    calls = 0;
    tel_options *o = tel_options_new(APP);
    tel_options_set_token(o, TOKEN);
    tel *h = open_logged(o);
    CHECK_EQ_INT("an emit in debug mode", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    tel_batch_begin(h);
    tel_emit_event(h, "ev.batched", NULL, 0);
    tel_batch_commit(h);
    CHECK_EQ_INT("both are logged", calls, 2);
    CHECK("as not stored", nlines == 2 && strncmp(lines[0], "debug, not stored: {", 20) == 0);
    CHECK("without the token", !any_line_has(TOKEN));
    CHECK_EQ_INT("and not queued", queued(APP), 0);
    CHECK_EQ_INT("no sync is spawned", tel_spawn_sync(h, 1), TEL_DISABLED);
    tel_close(h);
    unsetenv("TAPI_TELEMETRY_DEBUG");
    clear_lines();
}

/* The host's per-run choices: debug and inspect record nothing and create
 * nothing; the host's off leaves what other runs queued alone. */
static void test_per_run(void)
{
    CHECK_GROUP("per run");
    fresh();
    calls = 0;
    clear_lines();
    tel_options *o = tel_options_new(APP);
    tel_options_set_debug(o, 1);
    tel *h = open_logged(o);
    CHECK_EQ_INT("host debug: an emit", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    CHECK("host debug: logged as not stored", nlines == 1 && strncmp(lines[0], "debug, not stored: {", 20) == 0);
    tel_close(h);
    CHECK("host debug: no state directory, no cookie", !exists(".local/state"));

    char path[1024];
    snprintf(path, sizeof path, "%s/cq-telemetry.txt", home);
    o = tel_options_new(APP);
    CHECK_EQ_INT("set_inspect", tel_options_set_inspect(o, path), TEL_OK);
    tel_open(&h, o);
    tel_command_started(h, "sync", NULL, 0);
    tel_command_exited(h, 0, NULL, NULL);
    tel_close(h);
    CHECK("inspect: no state directory, no cookie", !exists(".local/state"));
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    int lines_in_file = 0;
    if (f) {
        while (getline(&text, &len, f) > 0)
            lines_in_file += text[0] == '{' && strstr(text, "\"name\":\"command.");
        fclose(f);
    }
    free(text);
    CHECK_EQ_INT("inspect: both events in the file, one JSON object per line", lines_in_file, 2);
    o = tel_options_new(APP);
    snprintf(path, sizeof path, "%s/no/such/dir/x.txt", home);
    tel_options_set_inspect(o, path);
    h = (tel *)1;
    CHECK_EQ_INT("inspect: a file that cannot be opened is an error", tel_open(&h, o), TEL_ERR_IO);
    CHECK("inspect: and no handle", h == NULL);

    /* Three events of other runs, then runs the host turned off. */
    fresh();
    for (int i = 0; i < 3; i++)
        tel_emit(APP, "earlier", NULL, 0);
    for (int src = 0; src < 2; src++) {
        o = tel_options_new(APP);
        tel_options_set_enabled(o, 0, src ? TEL_SRC_HOST : TEL_SRC_FLAG);
        CHECK_EQ_INT(src ? "host-level off: disabled" : "host flag off: disabled", tel_open(&h, o), TEL_DISABLED);
        tel_emit_event(h, "this.run", NULL, 0);
        tel_close(h);
        CHECK_EQ_INT(src ? "host-level off: the other runs' events stay" : "host flag off: the other runs' events stay",
                     queued(APP), 3);
        CHECK(src ? "host-level off: the cookie stays" : "host flag off: the cookie stays",
              exists(".local/state/" APP "/telemetry-cookie"));
    }
    setenv("DO_NOT_TRACK", "1", 1);
    o = tel_options_new(APP);
    tel_options_set_enabled(o, 0, TEL_SRC_FLAG);
    tel_open(&h, o);
    tel_close(h);
    CHECK_EQ_INT("the user's opt-out with the host's flag: purged", queued(APP), 0);
    CHECK("the user's opt-out with the host's flag: cookie gone", !exists(".local/state/" APP "/telemetry-cookie"));
    unsetenv("DO_NOT_TRACK");
}

/* Declarations are recorded beside the queue when the handle records, and
 * survive the opt-out that removes the queue. */
static void test_declarations(void)
{
    CHECK_GROUP("declarations");
    fresh();
    tel_options *o = tel_options_new(APP);
    CHECK_EQ_INT("declare", tel_options_declare_env(o, "TAPI_OFF", TEL_ENV_OFF_IF_TRUE, NULL), TEL_OK);
    CHECK_EQ_INT("declare twice", tel_options_declare_env(o, "TAPI_OFF", TEL_ENV_OFF_IF_SET, NULL), TEL_ERR_INVALID);
    tel *h;
    tel_open(&h, o);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    CHECK("recorded in telemetry-declared", exists(".local/state/" APP "/" TEL_DECL_FILE));
    char line[256];
    setenv("TAPI_OFF", "1", 1);
    tel_status_line(APP, line, sizeof line);
    CHECK("tel_status_line names the declared variable",
          strncmp(line, "telemetry is off (decided by env: TAPI_OFF)", 43) == 0);
    o = tel_options_new(APP);
    tel_options_declare_env(o, "TAPI_OFF", TEL_ENV_OFF_IF_TRUE, NULL);
    CHECK_EQ_INT("the declared opt-out disables", tel_open(&h, o), TEL_DISABLED);
    tel_close(h);
    CHECK_EQ_INT("and purges, as an opt-out", queued(APP), 0);
    tel_status_line(APP, line, sizeof line);
    CHECK("after the purge, status still names it", strncmp(line, "telemetry is off (decided by env: TAPI_OFF)", 43) == 0);
    unsetenv("TAPI_OFF");

    fresh();
    o = tel_options_new(APP);
    tel_options_set_default_enabled(o, 0);
    CHECK_EQ_INT("default off: disabled", tel_open(&h, o), TEL_DISABLED);
    tel_close(h);
    CHECK("default off: nothing created", !exists(".local/state"));
    setenv("TAPI_TELEMETRY_ENABLED", "1", 1);
    o = tel_options_new(APP);
    tel_options_set_default_enabled(o, 0);
    CHECK_EQ_INT("default off, the user's on: enabled", tel_open(&h, o), TEL_OK);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    unsetenv("TAPI_TELEMETRY_ENABLED");
    o = tel_options_new(APP);
    tel_options_set_default_enabled(o, 0);
    tel_open(&h, o);
    tel_close(h);
    CHECK_EQ_INT("default off again: what the user let record stays", queued(APP), 1);
    tel_status_line(APP, line, sizeof line);
    CHECK("status: off, decided by the host's default", strncmp(line, "telemetry is off (decided by host: default off)", 47) == 0);
    o = tel_options_new(APP);
    tel_options_set_default_enabled(o, 1);
    tel_open(&h, o);
    tel_close(h);
    tel_status_line(APP, line, sizeof line);
    CHECK("a host taking back its default off is recorded", strncmp(line, "telemetry is on", 15) == 0);
}

/* The offer of erasure is recorded for tel forget, and taken back. */
static void test_erasure_offer(void)
{
    CHECK_GROUP("erasure offer");
    fresh();
    char sdir[TEL_PATH_MAX];
    tel_decls d;
    CHECK("no options: refused", tel_options_set_erasure(NULL, 1) == TEL_ERR_INVALID);
    tel_options *o = tel_options_new(APP);
    CHECK_EQ_INT("offered", tel_options_set_erasure(o, 1), TEL_OK);
    tel *h;
    tel_open(&h, o);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    CHECK("recorded as 'erasure on'", tel__state_dir(APP, sdir, sizeof sdir) == TEL_OK &&
                                          tel__decls_load(sdir, &d) == TEL_OK && d.erasure == 1);
    CHECK_EQ_INT("tel_forget", tel_forget(APP), TEL_OK);
    CHECK("leaves a request beside the queue", exists(".local/state/" APP "/telemetry-erasure"));
    o = tel_options_new(APP);
    tel_options_set_erasure(o, 0);
    tel_open(&h, o);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    CHECK("taking it back is recorded", tel__decls_load(sdir, &d) == TEL_OK && d.erasure == 0);
}

/* Forgets one app; run on its own thread beside another app's forget. */
static void *forget_thread(void *app)
{
    return (void *)(intptr_t)tel_forget(app);
}

/* Offers erasure for app, records one event and returns its cookie's id. */
static void offered_with_cookie(const char *app, char id[64])
{
    tel_options *o = tel_options_new(app);
    tel_options_set_erasure(o, 1);
    tel *h;
    tel_open(&h, o);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    char p[700];
    snprintf(p, sizeof p, "%s/.local/state/%s/telemetry-cookie", home, app);
    id[0] = '\0';
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%63s", id) != 1)
            id[0] = '\0';
        fclose(f);
    }
}

/* The request left by forgetting app names exactly the id it had. */
static int request_names(const char *app, const char *id)
{
    char p[800];
    struct stat st;
    snprintf(p, sizeof p, "%s/.local/state/%s/telemetry-erasure/%s", home, app, id);
    return id[0] && lstat(p, &st) == 0;
}

/*
 * tel_forget may be called from two threads at once (a host forgetting two
 * of its apps): each request must carry its own app's id, never the other
 * thread's, nor an id wiped to zeros half-way.
 */
static void test_erasure_threads(void)
{
    CHECK_GROUP("erasure from two threads");
    fresh();
    int wrong = 0;
    for (int round = 0; round < 40; round++) {
        char a[64], b[64];
        offered_with_cookie(APP, a);
        offered_with_cookie("tapi2", b);
        pthread_t ta, tb;
        void *ra, *rb;
        pthread_create(&ta, NULL, forget_thread, (void *)APP);
        pthread_create(&tb, NULL, forget_thread, (void *)"tapi2");
        pthread_join(ta, &ra);
        pthread_join(tb, &rb);
        if (ra != NULL || rb != NULL || !request_names(APP, a) || !request_names("tapi2", b))
            wrong++;
    }
    CHECK_EQ_INT("two forgets at once: every request names its own app's id", wrong, 0);
}

/*
 * Error class and message: the class by default, the message only when
 * the host or the user asked for it (or in debug), always sanitised.
 * Modes: 0 default, 1 debug, 2 the host's TEL_ERRORS_SANITIZED, 3 a
 * declared detailed-errors variable set by the user, 4 that variable
 * declared but set to 0.
 */
static void test_errors(void)
{
    CHECK_GROUP("error details");
    static const char msg[] = "cannot read /home/zq8alice/app.conf for zq8alice@example.com";
    static const char *const mode[] = { "default", "debug", "host sanitized", "declared env",
                                        "declared env=0" };
    for (int m = 0; m < 5; m++) {
        fresh();
        if (m == 1)
            setenv("TAPI_TELEMETRY_DEBUG", "1", 1);
        if (m >= 3)
            setenv("TAPI_DEBUG_TELEMETRY", m == 3 ? "1" : "0", 1);
        calls = 0;
        clear_lines();
        tel_options *o = tel_options_new(APP);
        if (m == 2)
            CHECK_EQ_INT("set_error_detail", tel_options_set_error_detail(o, TEL_ERRORS_SANITIZED), TEL_OK);
        if (m >= 3)
            tel_options_declare_env(o, "TAPI_DEBUG_TELEMETRY", TEL_ENV_DETAILED_ERRORS, NULL);
        tel *h = open_logged(o);
        tel_command_started(h, "deploy", NULL, 0);
        tel_command_exited(h, 3, "ConfigError", msg);
        const char *l = last_line();
        int detailed = m >= 1 && m <= 3;
        char n[128];
        snprintf(n, sizeof n, "%s: the exit and the error class are recorded", mode[m]);
        CHECK(n, strstr(l, "\"exit_code\":3") && strstr(l, "\"error_class\":\"ConfigError\""));
        snprintf(n, sizeof n, "%s: the message is %s", mode[m], detailed ? "recorded" : "not recorded");
        CHECK(n, (strstr(l, "cannot read") != NULL) == detailed);
        snprintf(n, sizeof n, "%s: without the path, the user or the e-mail", mode[m]);
        CHECK(n, !strstr(l, "/home/zq8alice") && !strstr(l, "app.conf") && !strstr(l, "zq8alice"));
        tel_command_exited(h, 3, "Config Error: /etc/x", NULL);
        snprintf(n, sizeof n, "%s: a class that is not a name is left out", mode[m]);
        CHECK(n, !strstr(last_line(), "error_class") && !strstr(last_line(), "/etc/x"));
        tel_close(h);
        unsetenv("TAPI_TELEMETRY_DEBUG");
        unsetenv("TAPI_DEBUG_TELEMETRY");
    }
    tel_options *bad = tel_options_new(APP);
    CHECK_EQ_INT("an unknown detail level is refused",
                 tel_options_set_error_detail(bad, (tel_error_detail)7), TEL_ERR_INVALID);
    tel_options_free(bad);
    char out[64];
    CHECK_EQ_INT("tel_sanitize cleans a host's own string",
                 tel_sanitize("open /home/zq8alice/x failed", out, sizeof out), TEL_OK);
    CHECK("tel_sanitize leaves no path", !strstr(out, "zq8alice") && strstr(out, "failed"));
    CHECK_EQ_INT("tel_sanitize without a buffer", tel_sanitize("x", NULL, 0), TEL_ERR_INVALID);
    clear_lines();
}

static void test_options(void)
{
    CHECK_GROUP("option names");
    fresh();
    calls = 0;
    clear_lines();
    tel *h = open_logged(tel_options_new(APP));
    tel_option_use ok_opts[] = { { "output", 0 }, { "force", 0 }, { "token", 1 } };
    CHECK_EQ_INT("names are accepted", tel_command_started(h, "deploy", ok_opts, 3), TEL_OK);
    CHECK("and recorded as names, split by source",
          strstr(last_line(), "\"options\":\"output,force\"") &&
              strstr(last_line(), "\"env_options\":\"token\""));
    static const char *const bad[] = { "output=/tmp/zq8secret", "/home/zq8alice/file", "a b",
                                       "zq8alice@example.com", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tel_option_use u[] = { { "force", 0 }, { bad[i], 0 } };
        char name[96];
        snprintf(name, sizeof name, "a value-looking name '%s' is refused", bad[i]);
        CHECK_EQ_INT(name, tel_command_started(h, "deploy", u, 2), TEL_ERR_INVALID);
    }
    CHECK_EQ_INT("refused calls record nothing", queued(APP), 1);
    CHECK_EQ_INT("and log nothing", calls, 1);
    CHECK("the reason names no value", !strstr(tel_last_error(), "zq8"));
    tel_close(h);
    clear_lines();
}

/* ------------------------------------------------------- project id */

static int sh(const char *fmt, const char *arg)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, arg, arg);
    return system(cmd);
}

/* The project id an event carries when recorded in cwd with salt; "" for
 * none, "?" when nothing was logged. */
static void project_of(const char *salt, char out[80])
{
    calls = 0;
    clear_lines();
    tel_options *o = tel_options_new(APP);
    if (salt)
        tel_options_set_project_salt(o, salt);
    tel *h = open_logged(o);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    strcpy(out, nlines ? "" : "?");
    const char *p = nlines ? strstr(lines[0], "\"project\":\"") : NULL;
    if (p) {
        snprintf(out, 80, "%.64s", p + 11);
    }
}

static void test_project(void)
{
    CHECK_GROUP("project id");
    fresh();
    char repo[600], old[PATH_MAX];
    snprintf(repo, sizeof repo, "%s/repo", home);
    if (!getcwd(old, sizeof old) || system("git --version >/dev/null 2>&1") != 0) {
        CHECK_SKIP("no git");
        return;
    }
    if (sh("git init -q '%s' && git -C '%s' remote add origin https://github.com/Acme/widget.git",
           repo) != 0) {
        CHECK("git init and remote add", 0);
        return;
    }
    char none[80], https[80], ssh[80], scp[80], other_salt[80], other_repo[80], outside[80];
    CHECK("chdir into the repository", chdir(repo) == 0);
    project_of(NULL, none);
    CHECK("off unless a salt is given", strcmp(none, "") == 0);
    project_of("salt-1", https);
    CHECK("a salt gives a 64-hex-digit id", strlen(https) == 64 && strspn(https, "0123456789abcdef") == 64);
    sh("git -C '%s' remote set-url origin git@github.com:Acme/widget.git", repo);
    project_of("salt-1", scp);
    CHECK("the same for git@host:owner/repo", strcmp(scp, https) == 0);
    sh("git -C '%s' remote set-url origin ssh://git@github.com/Acme/widget", repo);
    project_of("salt-1", ssh);
    CHECK("the same for ssh://git@host/owner/repo", strcmp(ssh, https) == 0);
    project_of("salt-2", other_salt);
    CHECK("another salt, another id", strlen(other_salt) == 64 && strcmp(other_salt, https) != 0);
    sh("git -C '%s' remote set-url origin https://github.com/Acme/gadget.git", repo);
    project_of("salt-1", other_repo);
    CHECK("another repository, another id", strlen(other_repo) == 64 && strcmp(other_repo, https) != 0);
    CHECK("the origin URL itself is not recorded", !any_line_has("github.com") && !any_line_has("Acme"));
    CHECK("back to the old directory", chdir(home) == 0);
    project_of("salt-1", outside);
    CHECK("outside a repository: no project id", strcmp(outside, "") == 0);
    if (chdir(old) != 0)
        CHECK("back to the start directory", 0);
    clear_lines();
}

/* ------------------------------------------------ one call, NULL, batch */

static void test_emit_codes(void)
{
    CHECK_GROUP("tel_emit");
    fresh();
    CHECK_EQ_INT("queued", tel_emit(APP, "ev", TEL_PROPS(TEL_INT("n", 1))), TEL_OK);
    CHECK_EQ_INT("and stored", queued(APP), 1);
    CHECK_EQ_INT("no props", tel_emit(APP, "ev", NULL, 0), TEL_OK);
    setenv("DO_NOT_TRACK", "1", 1);
    CHECK_EQ_INT("DO_NOT_TRACK", tel_emit(APP, "ev", NULL, 0), TEL_DISABLED);
    unsetenv("DO_NOT_TRACK");
    CHECK_EQ_INT("which purged the queue", queued(APP), 0);
    setenv("TAPI_TELEMETRY_ENABLED", "off", 1);
    CHECK_EQ_INT("<APP>_TELEMETRY_ENABLED=off", tel_emit(APP, "ev", NULL, 0), TEL_DISABLED);
    unsetenv("TAPI_TELEMETRY_ENABLED");
    CHECK_EQ_INT("bad event name", tel_emit(APP, "a b", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("bad app name", tel_emit("../x", "ev", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL app", tel_emit(NULL, "ev", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL event", tel_emit(APP, NULL, NULL, 0), TEL_ERR_INVALID);
    tel_prop many[TEL_MAX_PROPS + 1];
    char keys[TEL_MAX_PROPS + 1][8];
    for (int i = 0; i <= TEL_MAX_PROPS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = (tel_prop)TEL_INT(keys[i], i);
    }
    CHECK_EQ_INT("33 properties", tel_emit(APP, "ev", many, TEL_MAX_PROPS + 1), TEL_ERR_LIMIT);
    CHECK_EQ_INT("32 properties", tel_emit(APP, "ev", many, TEL_MAX_PROPS), TEL_OK);
    CHECK_EQ_INT("only the good ones stored", queued(APP), 1);
    unsetenv("HOME");
    int rc = tel_emit(APP, "ev", NULL, 0);
    CHECK("no HOME: a negative code", rc < 0);
    CHECK("with a reason", tel_last_error()[0] != '\0');
    char file[600];
    snprintf(file, sizeof file, "%s/plain-file", home);
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    setenv("HOME", file, 1);
    CHECK("HOME is a file: a negative code", tel_emit(APP, "ev", NULL, 0) < 0);
    setenv("HOME", home, 1);
}

static void test_null(void)
{
    CHECK_GROUP("NULL");
    fresh();
    tel_option_use u = { "force", 0 };
    CHECK_EQ_INT("emit_event", tel_emit_event(NULL, "ev", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("batch_begin", tel_batch_begin(NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("batch_commit", tel_batch_commit(NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("command_started", tel_command_started(NULL, "x", &u, 1), TEL_ERR_INVALID);
    CHECK_EQ_INT("command_exited", tel_command_exited(NULL, 0, "E", "m"), TEL_ERR_INVALID);
    CHECK_EQ_INT("spawn_sync", tel_spawn_sync(NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("notice_due", tel_notice_due(NULL), 0);
    CHECK_EQ_INT("notice_shown", tel_notice_shown(NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("enabled", tel_enabled(NULL), 0);
    tel_close(NULL);
    tel_options_free(NULL);
    CHECK("close and options_free of NULL return", 1);
    CHECK_EQ_INT("options_set_app_version", tel_options_set_app_version(NULL, "1"), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_endpoint", tel_options_set_endpoint(NULL, "https://x"), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_token", tel_options_set_token(NULL, "t"), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_enabled", tel_options_set_enabled(NULL, 0, TEL_SRC_FLAG), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_logging", tel_options_set_logging(NULL, 1, NULL, NULL), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_caps", tel_options_set_caps(NULL, 1, 1, 1), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_project_salt", tel_options_set_project_salt(NULL, "s"), TEL_ERR_INVALID);
    CHECK_EQ_INT("options_set_require_notice", tel_options_set_require_notice(NULL, 1), TEL_ERR_INVALID);
    CHECK("options_new(NULL) is NULL", tel_options_new(NULL) == NULL);
    {
        /* A byte cap that cannot hold one event is refused up front, so an
         * emit can never report success for an event the cap drops at once. */
        tel_options *co = tel_options_new("caps-check");
        CHECK_EQ_INT("caps: byte cap under one event refused", tel_options_set_caps(co, 0, 100, 0), TEL_ERR_INVALID);
        CHECK_EQ_INT("caps: byte cap of one maximal event accepted", tel_options_set_caps(co, 0, TEL_MAX_EVENT, 0), TEL_OK);
        CHECK_EQ_INT("caps: zeros keep the defaults", tel_options_set_caps(co, 0, 0, 0), TEL_OK);
        tel_options_free(co);
    }
    tel *h = (tel *)1;
    CHECK_EQ_INT("open(&h, NULL)", tel_open(&h, NULL), TEL_ERR_INVALID);
    CHECK("leaves h NULL", h == NULL);
    CHECK_EQ_INT("open(NULL, opts) frees opts", tel_open(NULL, tel_options_new(APP)), TEL_ERR_INVALID);
    CHECK_EQ_INT("set_enabled(NULL)", tel_set_enabled(NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("forget(NULL)", tel_forget(NULL), TEL_ERR_INVALID);
    char buf[64];
    CHECK_EQ_INT("status_line(NULL app)", tel_status_line(NULL, buf, sizeof buf), TEL_ERR_INVALID);
    CHECK_EQ_INT("status_line(NULL buf)", tel_status_line(APP, NULL, 0), TEL_ERR_INVALID);
    CHECK("none of them wrote state", !exists(".local") && !exists(".config"));
}

static void test_batch(void)
{
    CHECK_GROUP("batch");
    fresh();
    tel *h = open_app(APP);
    CHECK_EQ_INT("commit without begin", tel_batch_commit(h), TEL_ERR_STATE);
    CHECK_EQ_INT("begin", tel_batch_begin(h), TEL_OK);
    CHECK_EQ_INT("begin twice", tel_batch_begin(h), TEL_ERR_STATE);
    int rcs = 0;
    for (int i = 0; i < 3; i++)
        rcs |= tel_emit_event(h, "ev", TEL_PROPS(TEL_INT("i", i)));
    CHECK_EQ_INT("buffered emits", rcs, TEL_OK);
    CHECK_EQ_INT("a bad event inside a batch", tel_emit_event(h, "a b", NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("nothing visible before commit", queued(APP), 0);
    CHECK_EQ_INT("commit", tel_batch_commit(h), TEL_OK);
    CHECK_EQ_INT("the three are there after", queued(APP), 3);
    CHECK_EQ_INT("an empty batch commits", (tel_batch_begin(h), tel_batch_commit(h)), TEL_OK);
    tel_batch_begin(h);
    tel_emit_event(h, "ev", NULL, 0);
    tel_emit_event(h, "ev", NULL, 0);
    tel_close(h);
    CHECK_EQ_INT("close commits an open batch", queued(APP), 5);
    h = open_app(APP);
    tel_batch_begin(h);
    tel_emit_event(h, "ev", NULL, 0);
    CHECK_EQ_INT("spawn commits an open batch first", (tel_spawn_sync(h, 3600), queued(APP)), 6);
    tel_close(h);

    setenv("DO_NOT_TRACK", "1", 1);
    h = open_app(APP);
    CHECK_EQ_INT("disabled: begin", tel_batch_begin(h), TEL_OK);
    CHECK_EQ_INT("disabled: emit", tel_emit_event(h, "ev", NULL, 0), TEL_DISABLED);
    CHECK_EQ_INT("disabled: commit", tel_batch_commit(h), TEL_DISABLED);
    tel_close(h);
    unsetenv("DO_NOT_TRACK");
    CHECK_EQ_INT("disabled: the queue was purged and nothing added", queued(APP), 0);
}

/* Writes `text` as the user's telemetry.conf of APP. */
static void write_conf(const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/.config", home);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/.config/" APP, home);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/.config/" APP "/telemetry.conf", home);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_open_failure(void)
{
    CHECK_GROUP("tel_open failure");
    fresh();
    write_conf("enabled = maybe\n");
    tel *h = (tel *)1;
    CHECK_EQ_INT("a malformed telemetry.conf is TEL_ERR_CONFIG", tel_open(&h, tel_options_new(APP)),
                 TEL_ERR_CONFIG);
    CHECK("and gives no handle, as tel.h says of every failure", h == NULL);
    CHECK("the error still names the file's problem", strstr(tel_last_error(), "telemetry.conf line 1") != NULL);
    tel_close(h);
    CHECK_EQ_INT("tel_emit says TEL_ERR_CONFIG too", tel_emit(APP, "ev", NULL, 0), TEL_ERR_CONFIG);
    CHECK_EQ_INT("and stored nothing", queued(APP), 0);
    unsetenv("HOME");
    h = (tel *)1;
    CHECK("no HOME: a negative code", tel_open(&h, tel_options_new(APP)) < 0);
    CHECK("and no handle", h == NULL);
    setenv("HOME", home, 1);
}

static void test_setting_bytes(void)
{
    CHECK_GROUP("tokens and endpoints");
    fresh();
    tel_options *o = tel_options_new(APP);
    CHECK_EQ_INT("a token with CR/LF is refused", tel_options_set_token(o, "tok\r\nX-Injected: yes"),
                 TEL_ERR_INVALID);
    CHECK("naming the problem, not the token", strstr(tel_last_error(), "control character") &&
                                                   !strstr(tel_last_error(), "Injected"));
    CHECK_EQ_INT("a token with a tab is refused", tel_options_set_token(o, "a\tb"), TEL_ERR_INVALID);
    CHECK_EQ_INT("an endpoint with CR/LF is refused",
                 tel_options_set_endpoint(o, "http://127.0.0.1:1/x\r\nHost: evil"), TEL_ERR_INVALID);
    CHECK_EQ_INT("a plain token is taken", tel_options_set_token(o, "tok-123"), TEL_OK);
    tel *h = NULL;
    CHECK_EQ_INT("and the handle opens", tel_open(&h, o), TEL_OK);
    tel_close(h);
}

static void test_command_names(void)
{
    CHECK_GROUP("command names");
    fresh();
    tel *h = open_app(APP);
    static const char *const good[] = { "deploy", "db migrate", "db migrate up", "build_2", "v1.2" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char n[96];
        snprintf(n, sizeof n, "'%s' is a command name", good[i]);
        CHECK_EQ_INT(n, tel_command_started(h, good[i], NULL, 0), TEL_OK);
    }
    long before = queued(APP);
    static const char *const bad[] = { "/home/zq8alice/SECRETPROJ", "SECRET/PROJ", "db  migrate",
                                       " deploy", "deploy ", "db\tmigrate", "--output", ".hidden",
                                       "a=b", "https://x.example", "x y\n", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char n[96];
        snprintf(n, sizeof n, "'%.20s' is refused", bad[i]);
        CHECK_EQ_INT(n, tel_command_started(h, bad[i], NULL, 0), TEL_ERR_INVALID);
    }
    char longer[TEL_MAX_COMMAND + 2];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK_EQ_INT("a name over TEL_MAX_COMMAND bytes is refused", tel_command_started(h, longer, NULL, 0),
                 TEL_ERR_INVALID);
    CHECK_EQ_INT("NULL is refused", tel_command_started(h, NULL, NULL, 0), TEL_ERR_INVALID);
    CHECK_EQ_INT("and nothing refused was recorded", queued(APP), before);
    tel_close(h);
}

/* The POSIX locks this process holds on the file at `path`, from
 * /proc/locks ("N: POSIX ADVISORY READ pid maj:min:inode start end"). */
static int my_locks_on(const char *path)
{
    struct stat st;
    FILE *f = fopen("/proc/locks", "r");
    if (stat(path, &st) != 0 || !f) {
        if (f)
            fclose(f);
        return -1;
    }
    char line[256], kind[16];
    int n = 0, pid;
    unsigned long ino;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%*d: %15s %*s %*s %d %*x:%*x:%lu", kind, &pid, &ino) == 3 &&
            strcmp(kind, "POSIX") == 0 && pid == (int)getpid() && ino == (unsigned long)st.st_ino)
            n++;
    fclose(f);
    return n;
}

#define THREADS 4
#define PER_THREAD 25

static void *emit_thread(void *ud)
{
    long fails = 0;
    tel *h = open_app(APP);
    for (int i = 0; i < PER_THREAD; i++) {
        fails += tel_emit(APP, "thread.one", NULL, 0) != TEL_OK;
        fails += tel_emit_event(h, "thread.handle", NULL, 0) != TEL_OK;
    }
    tel_close(h);
    *(long *)ud = fails;
    return NULL;
}

static void test_one_env(void)
{
    CHECK_GROUP("one LMDB environment per queue");
    fresh();
    char lock[700];
    snprintf(lock, sizeof lock, "%s/.local/state/" APP "/telemetry/lock.mdb", home);
    tel *h = open_app(APP);
    CHECK_EQ_INT("a handle emits", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    CHECK("with a handle open the process holds its locks on lock.mdb", my_locks_on(lock) > 0);
    CHECK_EQ_INT("tel_emit with the handle open", tel_emit(APP, "ev", NULL, 0), TEL_OK);
    CHECK("after tel_emit the process still holds its locks on lock.mdb", my_locks_on(lock) > 0);
    char buf[256];
    CHECK_EQ_INT("tel_status_line with the handle open", tel_status_line(APP, buf, sizeof buf), TEL_OK);
    CHECK("after tel_status_line too", my_locks_on(lock) > 0);
    CHECK_EQ_INT("tel_set_enabled(on) with the handle open", tel_set_enabled(APP, 1), TEL_OK);
    CHECK("after tel_set_enabled too", my_locks_on(lock) > 0);
    CHECK_EQ_INT("and the handle still writes", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    CHECK_EQ_INT("every event is queued", queued(APP), 3);

    pthread_t t[THREADS];
    long fails[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, emit_thread, &fails[i]);
    long all = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        all += fails[i];
    }
    CHECK_EQ_INT("threads sharing the queue: no emit fails", all, 0);
    CHECK_EQ_INT("threads sharing the queue: every event is queued", queued(APP), 3 + THREADS * PER_THREAD * 2);
    CHECK("after the threads the process still holds its locks", my_locks_on(lock) > 0);
    tel_close(h);
    CHECK_EQ_INT("the last close releases them", my_locks_on(lock), 0);
}

/* The anonymous id in the cookie file, "" when there is none. */
static void cookie_of(char out[64])
{
    char p[700];
    snprintf(p, sizeof p, "%s/.local/state/" APP "/telemetry-cookie", home);
    out[0] = '\0';
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(out, 64, f))
            out[0] = '\0';
        fclose(f);
    }
}

/* Runs `tel VERB --app APP` as another process would. */
static int tel_cmd(const char *verb)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "tel %s --app " APP " >/dev/null 2>&1", verb);
    return system(cmd);
}

static void test_long_lived(void)
{
    CHECK_GROUP("a long-lived handle");
    fresh();
    tel *h = open_app(APP);
    char before[64], after[64], run[37], run_after[37];
    CHECK_EQ_INT("records", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    cookie_of(before);
    tel_exec_id(h, run);
    /* A queue file set aside (as a damaged one is) leaves the identity
     * as it was: the events after it still belong to the same run. */
    char q[700], aside[720];
    snprintf(q, sizeof q, "%s/.local/state/" APP "/telemetry/data.mdb", home);
    snprintf(aside, sizeof aside, "%s.aside", q);
    CHECK("the queue file is set aside", rename(q, aside) == 0);
    CHECK_EQ_INT("the next emit reopens a new queue", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    tel_exec_id(h, run_after);
    cookie_of(after);
    CHECK("under the same anonymous id and the same run", strcmp(before, after) == 0 && strcmp(run, run_after) == 0);
    unlink(aside);

    /* The user deletes the cookie to become someone new: the open handle
     * takes a new id at its next event, as a new process would. */
    char cookie[700];
    snprintf(cookie, sizeof cookie, "%s/.local/state/" APP "/telemetry-cookie", home);
    CHECK("the cookie is deleted", unlink(cookie) == 0);
    CHECK_EQ_INT("the next emit succeeds", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    cookie_of(after);
    CHECK("and makes a new cookie with a new id", after[0] && strcmp(before, after) != 0);
    strcpy(before, after);
    CHECK_EQ_INT("tel forget runs in another process", tel_cmd("forget"), 0);
    int rcs = 0;
    for (int i = 0; i < 3; i++)
        rcs |= tel_emit_event(h, "after.forget", NULL, 0);
    CHECK_EQ_INT("emits after the forget succeed", rcs, TEL_OK);
    CHECK_EQ_INT("and land in the new queue, not an unlinked file", queued(APP), 3);
    cookie_of(after);
    CHECK("under a new anonymous id", before[0] && after[0] && strcmp(before, after) != 0);
    tel_exec_id(h, run_after);
    CHECK("the run's token is kept (processes sharing it stay together)", strcmp(run, run_after) == 0);

    tel_batch_begin(h);
    tel_emit_event(h, "buffered", NULL, 0);
    tel_cmd("forget");
    CHECK_EQ_INT("a batch buffered before a forget commits", tel_batch_commit(h), TEL_OK);
    CHECK_EQ_INT("and is forgotten with it", queued(APP), 0);
    CHECK_EQ_INT("the next emit is queued", tel_emit_event(h, "ev", NULL, 0), TEL_OK);
    CHECK_EQ_INT("in the newest queue", queued(APP), 1);

    CHECK_EQ_INT("tel disable runs in another process", tel_cmd("disable"), 0);
    CHECK_EQ_INT("an emit after it is TEL_DISABLED", tel_emit_event(h, "after.disable", NULL, 0), TEL_DISABLED);
    CHECK_EQ_INT("and records nothing", queued(APP), 0);
    CHECK("the handle says it is off", !tel_enabled(h));

    /* The user turns it back on while the host runs: within a few
     * seconds the handle records again, in a new run. */
    CHECK_EQ_INT("tel enable runs in another process", tel_cmd("enable"), 0);
    int erc = TEL_DISABLED;
    for (int i = 0; i < 100 && erc == TEL_DISABLED; i++) {
        erc = tel_emit_event(h, "after.enable", NULL, 0);
        if (erc == TEL_DISABLED)
            usleep(100 * 1000);
    }
    CHECK_EQ_INT("an emit after tel enable records again", erc, TEL_OK);
    CHECK_EQ_INT("into the queue", queued(APP), 1);
    CHECK("the handle says it is on", tel_enabled(h));
    tel_exec_id(h, run_after);
    CHECK("in a new run", strcmp(run, run_after) != 0);
    tel_close(h);

    /* The host's own off for this run is not the user's to lift. */
    tel_options *o = tel_options_new(APP);
    tel_options_set_enabled(o, 0, TEL_SRC_FLAG);
    tel_open(&h, o);
    tel_cmd("enable");
    usleep(2500 * 1000);
    CHECK_EQ_INT("a run the host turned off stays off after tel enable", tel_emit_event(h, "ev", NULL, 0),
                 TEL_DISABLED);
    tel_close(h);
}

/* -------------------------------------------------------- execution id */

/* One event on a new handle in the run `token`; its recorded run id. */
static void emit_in_run(const char *token, char out[37])
{
    tel_options *o = tel_options_new(APP);
    tel_options_set_exec_id(o, token);
    tel *h = open_logged(o);
    tel_emit_event(h, "ev", NULL, 0);
    last_exec(out);
    tel_close(h);
}

static void test_exec_id(void)
{
    CHECK_GROUP("exec id");
    fresh();
    clear_lines();
    const char *given = "0d9e8a7b-6c5d-4e3f-8a1b-2c3d4e5f6a7b";
    char got[37];
    tel_options *o = tel_options_new(APP);
    CHECK_EQ_INT("a UUID is taken", tel_options_set_exec_id(o, given), TEL_OK);
    CHECK_EQ_INT("anything else is refused", tel_options_set_exec_id(o, "0d9e8a7b"), TEL_ERR_INVALID);
    CHECK_EQ_INT("one character more is refused", tel_options_set_exec_id(o, "0d9e8a7b-6c5d-4e3f-8a1b-2c3d4e5f6a7bX"),
                 TEL_ERR_INVALID);
    tel *h = open_logged(o);
    CHECK_EQ_INT("tel_exec_id", tel_exec_id(h, got), TEL_OK);
    CHECK("the handle hands on the host's token", strcmp(got, given) == 0);
    tel_emit_event(h, "one", NULL, 0);
    char first[37], again[37], after[37];
    last_exec(first);
    CHECK("events record an id derived from it, never the token itself",
          strlen(first) == 36 && !any_line_has("0d9e8a7b"));
    tel_close(h);

    /* The token handed on across a forget (a script's environment keeps
     * it): one run and one identity record one id, a new identity
     * another, so nothing links the two identities. */
    emit_in_run(given, again);
    CHECK("a second process of the run records the same id", strcmp(first, again) == 0);
    CHECK_EQ_INT("tel_forget", tel_forget(APP), TEL_OK);
    emit_in_run(given, after);
    CHECK("after a forget the same token records another id", strlen(after) == 36 && strcmp(first, after) != 0);

    setenv("TAPI_TELEMETRY_EXEC_ID", "11111111-2222-4333-8444-555555555555", 1);
    o = tel_options_new(APP);
    tel_options_set_exec_id(o, given);
    tel_open(&h, o);
    tel_exec_id(h, got);
    CHECK("the exported id wins over the host's", strcmp(got, "11111111-2222-4333-8444-555555555555") == 0);
    tel_close(h);
    setenv("TAPI_TELEMETRY_EXEC_ID", "garbage", 1);
    h = open_app(APP);
    tel_exec_id(h, got);
    CHECK("a malformed exported id is ignored", strlen(got) == 36 && strcmp(got, given) != 0);
    tel_close(h);
    unsetenv("TAPI_TELEMETRY_EXEC_ID");
    setenv("DO_NOT_TRACK", "1", 1);
    h = open_app(APP);
    CHECK_EQ_INT("disabled: no id to hand on", tel_exec_id(h, got), TEL_DISABLED);
    CHECK("and out is empty", got[0] == '\0');
    tel_close(h);
    unsetenv("DO_NOT_TRACK");
    CHECK_EQ_INT("NULL handle", tel_exec_id(NULL, got), TEL_ERR_INVALID);
}

int main(void)
{
    /* tel_spawn_sync must not start a real tel-sync from a unit test. */
    setenv("TEL_SYNC_PATH", "/bin/true", 1);
    if (fx_setup("api") != 0)
        return 1;
    test_notice();
    test_require_notice();
    test_logging();
    test_debug();
    test_errors();
    test_per_run();
    test_declarations();
    test_erasure_offer();
    test_erasure_threads();
    test_options();
    test_project();
    test_emit_codes();
    test_null();
    test_batch();
    test_open_failure();
    test_command_names();
    test_setting_bytes();
    test_one_env();
    test_long_lived();
    test_exec_id();
    clear_lines();
    fx_cleanup();
    return check_exit();
}
