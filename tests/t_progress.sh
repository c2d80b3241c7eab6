#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_progress.sh - tel-sync shows its progress on stderr when a person
# watches (stderr a terminal), and never in a pipe, a cron mail or with -q.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
PY=/usr/bin/python3

# on_tty CMD...: runs CMD with stderr on a pseudo-terminal, prints what it wrote there.
on_tty() {
    $PY - "$@" <<'PYEOF'
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=s)
os.close(s)
out = b''
while True:
    try:
        d = os.read(m, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
p.wait()
sys.stdout.write(out.decode('utf-8', 'replace'))
PYEOF
}
emit3() { for i in 1 2 3; do tel emit --app "$1" test.event "n=$i"; done; }

start_collect c
emit3 tty
out=$(on_tty tel-sync --app tty --endpoint "$URL")
case "$out" in
*"tty: 3 / 3 events sent, "*" events/s"*) ok "on a terminal tel-sync shows events sent / queued and the rate" ;;
*) fail "on a terminal tel-sync shows events sent / queued and the rate" "'$out'" ;;
esac
case "$out" in
*"$(printf '\r\033[K')") ok "on a terminal the progress line is erased at the end" ;;
*) fail "on a terminal the progress line is erased at the end" "'$out'" ;;
esac

emit3 quiet
out=$(on_tty tel-sync --app quiet --endpoint "$URL" -q)
check_eq "on a terminal with -q tel-sync prints nothing" "$out" ""

emit3 pipe
err=$(tel-sync --app pipe --endpoint "$URL" 2>&1 | cat)
check_eq "with stderr a pipe tel-sync prints nothing" "$err" ""
emit3 pipev
err=$(tel-sync --app pipev --endpoint "$URL" -v 2>&1 | cat)
case "$err" in
*"events sent"*|*"$(printf '\r')"*) fail "with stderr a pipe tel-sync -v prints only its lines" "$err" ;;
*) ok "with stderr a pipe tel-sync -v prints only its lines" ;;
esac
stop_pid $CPID
t_done
