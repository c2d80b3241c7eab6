/* SPDX-License-Identifier: MIT */
/*
 * bench/emit_one.c - a host program that records one event with the
 * public one-call API and exits: exactly what a CLI that adopts tel pays
 * per run.  Its state goes where XDG_STATE_HOME points.
 *
 *   emit_one APP
 */
#include "tel.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int rc = tel_emit(argv[1], "deploy.finished",
                      TEL_PROPS(TEL_STR("strategy", "rolling"), TEL_INT("services", 3),
                                TEL_BOOL("dry_run", 0)));
    return rc == TEL_OK ? 0 : 1;
}
