/* SPDX-License-Identifier: MIT */
/*
 * bench/sink.c - a loopback HTTP sink for the one-POST-per-event peer:
 * reads every request in full and answers 200 with an empty body.  It
 * does as little as a server can, so the peer's number is the cost of
 * the client's way of sending, not of a collector's work.
 *
 *   sink PORT_FILE MAX_SECONDS
 *
 * Listens on 127.0.0.1 on a free port, writes the port to PORT_FILE, and
 * exits on SIGTERM/SIGINT or after MAX_SECONDS, whichever comes first.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    static int started;
    /* The first call only announces the request; the body arrives in the
     * following calls and is dropped; the call with nothing left answers. */
    if (*state == NULL) {
        *state = &started;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int max_s = atoi(argv[2]);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "sink: cannot listen\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!info || !f || fprintf(f, "%u\n", (unsigned)info->port) < 0 || fclose(f) != 0 ||
        rename(tmp, argv[1]) != 0) {
        fprintf(stderr, "sink: cannot write the port file\n");
        MHD_stop_daemon(d);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (int i = 0; i < max_s * 10 && !stop; i++) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    return 0;
}
