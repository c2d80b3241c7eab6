/* SPDX-License-Identifier: MIT */
/*
 * bench/jsonl.c - the JSON-lines peer: one event per process appended to
 * a text file as a JSON object and fsync'd, the way Gatsby's telemetry
 * keeps events on disk until it sends them.  The event is the same
 * command-finished event the tel host records, with a comparable context.
 *
 *   jsonl FILE
 */
#include <stdio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct utsname u;
    uname(&u);
    FILE *f = fopen(argv[1], "a");
    if (!f)
        return 1;
    fprintf(f,
            "{\"id\":\"6f1c2a9e-4b7d-4e21-9a0c-3d5e8f7a1b2c\",\"time\":%lld,"
            "\"event\":\"deploy.finished\",\"properties\":{\"strategy\":\"rolling\","
            "\"services\":3,\"dry_run\":false},\"context\":{\"app\":\"benchapp\","
            "\"appVersion\":\"1.4.2\",\"os\":\"linux\",\"arch\":\"%s\",\"ci\":false}}\n",
            (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, u.machine);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    return fclose(f) == 0 && ok ? 0 : 1;
}
