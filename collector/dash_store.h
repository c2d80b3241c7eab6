/* SPDX-License-Identifier: MIT */
/*
 * collector/dash_store.h - the dashboard inside tel-collect: its page at
 * GET /, the background refresher of its rollups, and the report
 * subcommand.
 */
#ifndef TEL_COLLECTOR_DASH_STORE_H
#define TEL_COLLECTOR_DASH_STORE_H

#include "dash.h"
#include "store.h"

/* Fills db to run on store s (which the caller keeps owning). */
void tel__dash_db(dash_db *db, tel_store *s);

/*
 * Registers the page "/" (before the HTTP server starts) showing no cell
 * backed by fewer than k installs, and starts the thread that creates
 * the rollup tables and folds new events into them in small steps (a
 * store that is down meanwhile only delays that).  Returns 0, or -1
 * after printing why.
 */
int tel__dash_start(tel_store *s, unsigned k);
/* Tells the refresher that an upload was just stored (any thread, a
 * relaxed store): it then leaves the store's writer to uploads for a
 * while. */
void tel__dash_upload_seen(void);

/* Stops the refresher (before the store is closed); harmless if never
 * started. */
void tel__dash_stop(void);

/* `tel-collect report ...` (argv[0] is "report"): prints the answers.
 * Returns the exit status. */
int tel__dash_report(int argc, char **argv);

#endif
