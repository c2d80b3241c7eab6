#!/bin/sh
# SPDX-License-Identifier: MIT
# Output that cannot be written is an error, on every path of every tool:
# stdout on /dev/full gives a one-line error and a non-zero exit, never a
# silent 0 with the output lost.
. "$(dirname "$0")/lib.sh"

if [ ! -w /dev/full ]; then
    skip "write errors: no /dev/full here"
    t_done
fi

tel emit --app wr run >/dev/null 2>&1

# full NAME CMD...: CMD with stdout on /dev/full exits 1 with one line on stderr
full() {
    n="$1"; shift
    "$@" >/dev/full 2>"$T_TMP/err"; r=$?
    lines=$(wc -l <"$T_TMP/err" | tr -d ' ')
    if [ "$r" -ne 1 ]; then
        fail "$n" "exit $r, want 1"
    elif [ "$lines" != 1 ] || ! grep -q "cannot write the output" "$T_TMP/err"; then
        fail "$n" "stderr: $(cat "$T_TMP/err")"
    else
        ok "$n"
    fi
}

full "tel status to a full disk fails with one line" tel status --app wr
full "tel status --json to a full disk fails with one line" tel status --app wr --json
full "tel status --all to a full disk fails with one line" tel status --all
full "tel show to a full disk fails with one line" tel show --app wr
full "tel --help to a full disk fails with one line" tel --help
full "tel --version to a full disk fails with one line" tel --version
full "tel-sync --help to a full disk fails with one line" tel-sync --help
full "tel-sync --version to a full disk fails with one line" tel-sync --version
full "tel-collect --help to a full disk fails with one line" tel-collect --help
full "tel-collect --version to a full disk fails with one line" tel-collect --version

check_rc "tel status to a working stdout still exits 0" 0 tel status --app wr
t_done
