/* SPDX-License-Identifier: MIT */
/*
 * bench/emit_fullsync.c - the same one-event host as emit_one.c, but with
 * the queue opened in full-sync mode (LMDB syncs the meta page too, a
 * second fdatasync per commit) instead of tel's MDB_NOMETASYNC.
 *
 * The public API has no switch for this, on purpose: the durability
 * choice is the library's.  So this program walks the steps tel_emit()
 * takes (policy, state directory, cookie, queue, encode, append) through
 * the internal API, changing only the sync mode.  Keep it in step with
 * tel_emit() in libqueue/tel.c, or the comparison stops being fair.
 *
 *   emit_fullsync APP
 */
#include <string.h>

#include "internal.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    const char *app = argv[1];
    const tel_prop props[] = {
        TEL_STR("strategy", "rolling"), TEL_INT("services", 3), TEL_BOOL("dry_run", 0),
    };
    const size_t nprops = sizeof props / sizeof props[0];
    if (tel__event_check("deploy.finished", props, nprops) != TEL_OK || tel__app_check(app) != TEL_OK)
        return 1;

    tel_policy policy;
    tel__policy_resolve(&policy, app, NULL, NULL);
    if (!policy.enabled)
        return 1;
    char state[TEL_PATH_MAX];
    uint8_t anon[TEL_ID_LEN];
    int lasting;
    tel_queue *q;
    tel_caps caps = { 0, 0, 0, 1 };
    if (tel__state_dir(app, state, sizeof state) != TEL_OK || tel__mkdir_private(state) != TEL_OK ||
        tel__cookie_load(state, anon, &lasting) != TEL_OK ||
        tel__queue_open(&q, state, &caps, TEL_Q_CREATE) != TEL_OK)
        return 1;

    tel_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    tel__context_detect(&ctx);
    ctx.app = app;
    tel_event_in ev;
    memset(&ev, 0, sizeof ev);
    /* A run handed on by the environment, as tel_open() reads it; the
     * first event of a run of its own shares the run's random id. */
    if (tel__exec_id_env(app, ev.exec) == TEL_OK) {
        if (tel__uuid4(ev.id) != 0)
            return 1;
    } else {
        if (tel__uuid4(ev.exec) != 0)
            return 1;
        memcpy(ev.id, ev.exec, TEL_ID_LEN);
    }
    ev.ts_ms = tel__now_ms();
    ev.name = "deploy.finished";
    ev.props = props;
    ev.nprops = nprops;
    ev.anon = anon;
    ev.ctx = &ctx;
    uint8_t buf[TEL_MAX_EVENT];
    size_t len;
    int rc = tel__record_encode(&ev, buf, sizeof buf, &len);
    if (rc == TEL_OK) {
        tel_rec rec = { buf, len, ev.ts_ms };
        rc = tel__queue_append(q, &rec, 1);
    }
    tel__queue_close(q);
    return rc == TEL_OK ? 0 : 1;
}
