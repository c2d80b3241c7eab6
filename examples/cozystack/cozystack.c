/* SPDX-License-Identifier: MIT */
/*
 * examples/cozystack/cozystack.c - the telemetry loop of a
 * long-running Kubernetes component (Cozystack's operator or controller),
 * on tel.  README.md in this folder maps every line of Cozystack's
 * telemetry page to what this program does.
 *
 * In a real operator the metrics come from the cluster's API and the
 * switch from the `cozystack` config map; here both come from files the
 * test (or a curious reader) writes, so the program runs anywhere:
 *
 *   cozystack --component operator|controller
 *       --state-dir DIR         where the queue lives (pods have no HOME)
 *       --cluster-uid UID       the kube-system namespace's UID
 *       [--config-map FILE]     the config map's data: telemetry-enabled: "false"
 *       [--metrics FILE]        Prometheus text to send (default: the page's example)
 *       [--interval SEC]        how often to collect and send (default 3600)
 *       [--iterations N]        stop after N rounds (default: run forever)
 *       [--endpoint URL]        the collector
 *       [--version V]           the component's version
 */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tel.h>

/* The payloads of the telemetry page, as each component would compute them. */
static const char operator_metrics[] =
    "cozy_cluster_info{cozystack_version=\"v1.0.0\",kubernetes_version=\"v1.31.4\"} 1\n"
    "cozy_nodes_count{os=\"linux (Talos (v1.8.4))\",kernel=\"6.6.64-talos\"} 3\n"
    "cozy_cluster_capacity{resource=\"cpu\"} 168\n"
    "cozy_cluster_capacity{resource=\"memory\"} 811020009472\n"
    "cozy_cluster_capacity{resource=\"nvidia.com/TU104GL_TESLA_T4\"} 3\n"
    "cozy_loadbalancers_count 1\n"
    "cozy_pvs_count{driver=\"linstor.csi.linbit.com\",size=\"5Gi\"} 7\n"
    "cozy_pvs_count{driver=\"linstor.csi.linbit.com\",size=\"10Gi\"} 6\n"
    "cozy_package_info{name=\"cozystack.core\",variant=\"default\"} 1\n"
    "cozy_package_info{name=\"cozystack.storage\",variant=\"linstor\"} 1\n"
    "cozy_package_info{name=\"cozystack.monitoring\",variant=\"default\"} 1\n";

static const char controller_metrics[] =
    "cozy_application_count{kind=\"Tenant\"} 2\n"
    "cozy_application_count{kind=\"Postgres\"} 5\n"
    "cozy_application_count{kind=\"Redis\"} 3\n"
    "cozy_application_count{kind=\"Kubernetes\"} 2\n"
    "cozy_application_count{kind=\"VirtualMachine\"} 0\n";

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

/* Reads a whole small file; NULL when it cannot. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/*
 * The config map's switch: 1 unless its data says telemetry-enabled is
 * "false".  A config map that cannot be read changes nothing (-1): the
 * API server may be briefly unreachable.
 */
static int config_map_enabled(const char *path)
{
    size_t len;
    char *text = path ? slurp(path, &len) : NULL;
    if (!text)
        return -1;
    /* telemetry-enabled: "false" (or false) on its line means off. */
    int on = 1;
    const char *at = strstr(text, "telemetry-enabled");
    if (at) {
        const char *f = strstr(at, "false");
        on = !(f && (size_t)(f - at) < strcspn(at, "\n"));
    }
    free(text);
    return on;
}

static void sleep_s(unsigned s)
{
    struct timespec ts = { (time_t)s, 0 };
    while (!stop && nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    const char *component = NULL, *state_dir = NULL, *cluster = NULL, *config_map = NULL;
    const char *metrics_file = NULL, *endpoint = NULL, *version = "v1.0.0";
    unsigned interval = 3600;
    long iterations = -1;
    static const struct option opts[] = {
        { "component", required_argument, NULL, 'c' }, { "state-dir", required_argument, NULL, 's' },
        { "cluster-uid", required_argument, NULL, 'u' }, { "config-map", required_argument, NULL, 'm' },
        { "metrics", required_argument, NULL, 'x' },     { "interval", required_argument, NULL, 'i' },
        { "iterations", required_argument, NULL, 'n' },  { "endpoint", required_argument, NULL, 'e' },
        { "version", required_argument, NULL, 'v' },     { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': component = optarg; break;
        case 's': state_dir = optarg; break;
        case 'u': cluster = optarg; break;
        case 'm': config_map = optarg; break;
        case 'x': metrics_file = optarg; break;
        case 'i': interval = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': iterations = strtol(optarg, NULL, 10); break;
        case 'e': endpoint = optarg; break;
        case 'v': version = optarg; break;
        default: return 2;
        }
    }
    if (!component || (strcmp(component, "operator") != 0 && strcmp(component, "controller") != 0) ||
        !state_dir || !cluster) {
        fprintf(stderr, "usage: cozystack --component operator|controller --state-dir DIR "
                        "--cluster-uid UID [--config-map FILE] [--metrics FILE] [--interval SEC] "
                        "[--iterations N] [--endpoint URL]\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);

    /* One handle for the life of the process. */
    tel_options *o = tel_options_new(strcmp(component, "operator") == 0 ? "cozystack-operator"
                                                                        : "cozystack-controller");
    tel_options_set_state_dir(o, state_dir);
    tel_options_set_installation_id(o, cluster);
    tel_options_set_app_version(o, version);
    if (endpoint)
        tel_options_set_endpoint(o, endpoint);
    /* Whatever it returns, the component goes on: without a handle every
     * call below is a no-op that returns an error. */
    tel *h;
    tel_open(&h, o);

    for (long round = 0; !stop && (iterations < 0 || round < iterations); round++) {
        if (round > 0)
            sleep_s(interval);
        int on = config_map_enabled(config_map);
        if (on >= 0)
            tel_handle_set_enabled(h, on);
        if (!tel_enabled(h))
            continue;
        size_t len = 0;
        char *text = metrics_file ? slurp(metrics_file, &len) : NULL;
        const char *t = text ? text
                             : strcmp(component, "operator") == 0 ? operator_metrics : controller_metrics;
        tel_emit_prometheus(h, t, text ? len : strlen(t));
        free(text);
        /* Deliver in the background; the handle reaps the syncs it started. */
        tel_spawn_sync(h, interval > 1 ? interval - 1 : 1);
    }
    tel_close(h);
    return 0;
}
