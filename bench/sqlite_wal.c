/* SPDX-License-Identifier: MIT */
/*
 * bench/sqlite_wal.c - the SQLite peer: one event per process inserted
 * into a WAL-mode SQLite queue, the way Microsoft's 1DS SDK stores events
 * for later upload, with Debian's libsqlite3.
 *
 *   sqlite_wal FILE full|normal
 *
 * "full" (synchronous=FULL) syncs the WAL on every commit, so the event is
 * as durable as the floor's and tel's; it is the peer the targets are
 * measured against.  "normal" (synchronous=NORMAL) syncs only at
 * checkpoints, which is cheaper per commit but not durable across a power
 * cut; it is shown for completeness.  The table is created on the first
 * run (the bench's warm-up round), as an SDK's first launch would.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "full") && strcmp(argv[2], "normal")))
        return 2;
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        return 1;
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;",
             strcmp(argv[2], "full") == 0 ? "FULL" : "NORMAL");
    int rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
                          "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, "
                          "ts INTEGER NOT NULL, name TEXT NOT NULL, payload BLOB NOT NULL)",
                          NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO events (ts, name, payload) VALUES (?, ?, ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        /* The payload is the same size as tel's encoded record of this event. */
        static const char payload[150] = "{\"strategy\":\"rolling\",\"services\":3,\"dry_run\":false}";
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        sqlite3_bind_text(st, 2, "deploy.finished", -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, payload, sizeof payload, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return sqlite3_close(db) == SQLITE_OK && rc == SQLITE_OK ? 0 : 1;
}
