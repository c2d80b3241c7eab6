/* SPDX-License-Identifier: MIT */
/*
 * examples/atmos/atmos.c - Atmos's telemetry, kept knob for knob with tel.
 * README.md beside it maps each line of Atmos's telemetry page to the call
 * below that keeps it.
 *
 *   atmos terraform plan COMPONENT -s STACK
 *   atmos list components
 *   atmos fail
 *
 * Settings come from settings.telemetry in ./atmos.yaml (enabled, endpoint,
 * token, logging); ATMOS_TELEMETRY_ENABLED, _ENDPOINT, _TOKEN and _LOGGING
 * are tel's own names for the app "atmos", so they need no declaration.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tel.h"

#define APP "atmos"
#define VERSION "1.160.0"

/* settings.telemetry of atmos.yaml; -1 or "" for what it leaves out. */
typedef struct telemetry_settings {
    int enabled;
    int logging;
    char endpoint[1024];
    char token[512];
} telemetry_settings;

/* "${NAME}" stands for the environment variable, as in Atmos's files. */
static void set_value(char *dst, size_t cap, const char *v)
{
    size_t n = strlen(v);
    if (n > 3 && v[0] == '$' && v[1] == '{' && v[n - 1] == '}') {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(n - 3), v + 2);
        v = getenv(name) ? getenv(name) : "";
    }
    snprintf(dst, cap, "%s", v);
}

/* Reads the keys under "telemetry:" of ./atmos.yaml: enough YAML for the
 * block the page documents (key: value lines, quotes optional). */
static void read_settings(telemetry_settings *s)
{
    *s = (telemetry_settings){ -1, -1, "", "" };
    FILE *f = fopen("atmos.yaml", "r");
    if (!f)
        return;
    char line[1024];
    int block = -1; /* indentation of "telemetry:", -1 outside it */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        int indent = (int)strspn(line, " ");
        char *key = line + indent, *colon = strchr(key, ':');
        if (!*key || *key == '#' || !colon)
            continue;
        if (block >= 0 && indent <= block)
            block = -1;
        *colon = '\0';
        char *val = colon + 1;
        while (isspace((unsigned char)*val))
            val++;
        size_t vn = strlen(val);
        if (vn >= 2 && val[0] == '"' && val[vn - 1] == '"') {
            val[vn - 1] = '\0';
            val++;
        }
        if (strcmp(key, "telemetry") == 0 && !*val) {
            block = indent;
            continue;
        }
        if (block < 0)
            continue;
        if (strcmp(key, "enabled") == 0)
            s->enabled = strcmp(val, "false") != 0;
        else if (strcmp(key, "logging") == 0)
            s->logging = strcmp(val, "true") == 0;
        else if (strcmp(key, "endpoint") == 0)
            set_value(s->endpoint, sizeof s->endpoint, val);
        else if (strcmp(key, "token") == 0)
            set_value(s->token, sizeof s->token, val);
    }
    fclose(f);
}

/* Atmos' standard logger: diagnostic logging goes where Atmos logs. */
static void atmos_log(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "INFO  telemetry %s\n", line);
}

static tel *open_telemetry(void)
{
    telemetry_settings s;
    read_settings(&s);
    tel_options *o = tel_options_new(APP);
    tel_options_set_app_version(o, VERSION);
    /* enabled: false in a project's atmos.yaml: nothing is collected or
     * sent for runs in that project, whatever else says on.  It is that
     * project's setting, not the user's opt-out: other runs' events stay. */
    if (s.enabled == 0)
        tel_options_set_enabled(o, 0, TEL_SRC_HOST);
    /* endpoint and token stand at the host's level: the user's
     * ATMOS_TELEMETRY_ENDPOINT / _TOKEN (and telemetry.conf) override them. */
    if (s.endpoint[0])
        tel_options_set_endpoint(o, s.endpoint);
    if (s.token[0])
        tel_options_set_token(o, s.token);
    /* logging: true; ATMOS_TELEMETRY_LOGGING overrides it either way. */
    tel_options_set_logging(o, s.logging == 1, atmos_log, NULL);
    tel *t = NULL;
    tel_open(&t, o);
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: atmos terraform plan COMPONENT -s STACK | list components | fail\n");
        return 2;
    }
    /* The command is its verbs: "terraform plan", "list components".
     * Component and stack names are arguments, never recorded; and only
     * verbs from atmos's own list are: what the user typed in their place
     * may be anything (a path, a token), recorded as "unknown". */
    static const char *const known[] = { "terraform plan", "list components", "fail" };
    char typed[128];
    snprintf(typed, sizeof typed, "%s%s%s", argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
    const char *command = "unknown";
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(typed, known[i]) == 0 || strcmp(argv[1], known[i]) == 0)
            command = known[i];

    tel *t = open_telemetry();
    tel_command_started(t, command, NULL, 0);
    int status = 0;
    const char *error_class = NULL;
    if (strcmp(command, "unknown") == 0) {
        fprintf(stderr, "atmos: unknown command '%s'\n", typed);
        status = 2;
        error_class = "UnknownCommand";
    } else if (strcmp(command, "fail") == 0) {
        fprintf(stderr, "atmos: failed\n");
        status = 1;
        error_class = "ExecError";
    } else {
        printf("atmos %s: done\n", command);
    }
    /* Whether it succeeded; the error class, never its message. */
    tel_command_exited(t, status, error_class, NULL);
    /* Sent in the background: the command never waits for telemetry. */
    tel_spawn_sync(t, 0);
    tel_close(t);
    return status;
}
