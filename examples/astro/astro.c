/* SPDX-License-Identifier: MIT */
/*
 * examples/astro/astro.c - the Astro CLI's telemetry, kept knob for knob
 * with tel.  README.md beside it maps each line of Astro's telemetry page
 * to the call below that keeps it.
 *
 *   astro dev|build|preview|fail
 *   astro telemetry enable|disable
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tel.h"

#define APP "astro"
#define VERSION "4.16.0"

/* `astro telemetry disable` turns telemetry off for the whole machine (the
 * user's telemetry.conf, whatever project it runs in) and deletes what was
 * queued; `enable` turns it back on. */
static int telemetry_command(const char *verb)
{
    int rc;
    if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0)
        rc = tel_set_enabled(APP, verb[0] == 'e');
    else {
        fprintf(stderr, "astro: unknown telemetry command '%s' (enable, disable)\n", verb);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "astro: %s: %s\n", tel_strerror(rc), tel_last_error());
        return 1;
    }
    printf("Anonymous telemetry %s.\n", verb[0] == 'e' ? "enabled" : "disabled");
    return 0;
}

/* The knobs of Astro's page, declared once: tel status and tel-sync apply
 * the same variables from then on. */
static tel *open_telemetry(void)
{
    tel_options *o = tel_options_new(APP);
    tel_options_set_app_version(o, VERSION);
    tel_options_declare_env(o, "ASTRO_TELEMETRY_DISABLED", TEL_ENV_OFF_IF_TRUE, NULL);
    tel_options_declare_env(o, "DEBUG", TEL_ENV_DEBUG_IF_CONTAINS, "astro:telemetry");
    /* "Sanitized error information" is part of what Astro sends. */
    tel_options_set_error_detail(o, TEL_ERRORS_SANITIZED);
    tel *t = NULL;
    tel_open(&t, o); /* on failure t is NULL and every tel call is a no-op */
    return t;
}

/* General configuration information: the adapter, the integrations and the
 * markdown options of the project, as the nested object Astro's page shows,
 * never its paths or values of its own. */
static void record_config(tel *t)
{
    static const tel_prop config[] = {
        TEL_MAP("config", 4),
          TEL_ARRAY("markdownPlugins", 0),
          TEL_STR("adapter", "@astrojs/vercel"),
          TEL_ARRAY("integrations", 2),
            TEL_STR(NULL, "@astrojs/mdx"),
            TEL_STR(NULL, "@astrojs/rss"),
          TEL_MAP("markdown", 1),
            TEL_STR("syntaxHighlight", "shiki"),
    };
    tel_emit_event(t, "config", config, sizeof config / sizeof *config);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: astro dev|build|preview|fail\n       astro telemetry enable|disable\n");
        return 2;
    }
    const char *command = argv[1];
    if (strcmp(command, "telemetry") == 0)
        return argc > 2 ? telemetry_command(argv[2]) : 2;

    /* Only a name from astro's own list is recorded: what the user typed
     * may be anything (a path, a token), so anything else is "unknown". */
    static const char *const known[] = { "dev", "build", "preview", "fail" };
    const char *name = "unknown";
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(command, known[i]) == 0)
            name = known[i];

    tel *t = open_telemetry();
    tel_command_started(t, name, NULL, 0);
    record_config(t);

    int status = 0;
    const char *error_class = NULL;
    char message[512] = "";
    if (strcmp(name, "unknown") == 0) {
        /* The user sees what was typed; the telemetry only the class. */
        fprintf(stderr, "astro: unknown command '%s'\n", command);
        status = 2;
        error_class = "UnknownCommand";
    } else if (strcmp(name, "fail") != 0) {
        printf("astro %s: done\n", name);
    } else {
        /* The kind of message a real failure prints: it names the user's
         * files, which the sanitiser takes out before it is recorded. */
        const char *home = getenv("HOME");
        snprintf(message, sizeof message, "Cannot read %s/site/astro.config.mjs: no such file",
                 home ? home : "/home/someone");
        fprintf(stderr, "astro: %s\n", message);
        status = 1;
        error_class = "ConfigNotFound";
    }
    tel_command_exited(t, status, error_class, message[0] ? message : NULL);
    tel_spawn_sync(t, 0);
    tel_close(t);
    return status;
}
