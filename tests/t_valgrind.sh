# SPDX-License-Identifier: MIT
# tests/t_valgrind.sh - the everyday commands under valgrind's memcheck:
# tel emit, show, status (text and JSON), forget, and tel-sync draining
# into tel-collect (itself under valgrind too), on both the success path
# and a refused upload.  Any invalid access, use of uninitialised memory
# or definite/possible leak makes valgrind exit 99.
#
# It runs in `make stress` only (TEL_STRESS=1): memcheck makes each run
# 20-50 times slower, and the sanitized build already covers the same
# ground on every `make check`.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

if [ "${TEL_STRESS:-0}" != 1 ]; then
    skip "valgrind: runs in make stress (TEL_STRESS=1)"
    t_done
fi
if [ "${TEL_SANITIZED:-0}" = 1 ]; then
    skip "valgrind: not in the sanitized build (ASan and memcheck cannot share a process)"
    t_done
fi
if ! command -v valgrind >/dev/null 2>&1; then
    fail "valgrind: installed" "scripts/deps.sh bench installs it"
    t_done
fi

VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible --track-origins=yes"
# vg NAME WANT_RC CMD...: CMD under memcheck exits WANT_RC with no report.
vg() {
    n="$1" want="$2"
    shift 2
    $VG "$@" >"$T_TMP/vg.out" 2>"$T_TMP/vg.err"
    rc=$?
    if [ "$rc" = "$want" ] && ! grep -q '^==[0-9]*==' "$T_TMP/vg.err"; then ok "valgrind: $n"
    else fail "valgrind: $n" "exit $rc, want $want: $(grep '^==' "$T_TMP/vg.err" | head -n 8 | tr '\n' ' ' | head -c 600)"; fi
}
wait_port() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
    cat "$1" 2>/dev/null
}

vg "tel emit (first run: cookie, queue created)" 0 tel emit --app vg ev n=1 s=hello f=1.5 t=true
vg "tel emit (existing queue)" 0 tel emit --app vg --endpoint https://collector.example/v1 --token t0k ev n=2
vg "tel emit (bad usage)" 2 tel emit --app vg "bad name"
vg "tel show" 0 tel show --app vg
vg "tel status" 0 tel status --app vg
vg "tel status --json" 0 tel status --app vg --json

$VG tel-collect -q --port 0 --port-file "$T_TMP/port" --out "$T_TMP/c.jsonl" 2>"$T_TMP/collect.vg" &
CPID=$!
URL="http://127.0.0.1:$(wait_port "$T_TMP/port")/v1/batch"
vg "tel-sync delivering to tel-collect" 0 tel-sync --app vg --endpoint "$URL" -vv
check_eq "and the queue is empty" "$(tel show --app vg | wc -l | tr -d ' ')" 0
tel emit --app vg ev n=3 >/dev/null 2>&1
vg "tel-sync against a refused connection" 0 tel-sync --app vg --endpoint http://127.0.0.1:9/v1/batch
vg "tel-sync deferred" 0 tel-sync --app vg --endpoint "$URL" -v
vg "tel-sync --all --force" 0 tel-sync --all --force --endpoint "$URL"
vg "tel forget" 0 tel forget --app vg
kill "$CPID" 2>/dev/null
wait "$CPID"
rc=$?
if [ "$rc" = 0 ] && ! grep -q '^==[0-9]*==' "$T_TMP/collect.vg"; then ok "valgrind: tel-collect served and stopped clean"
else fail "valgrind: tel-collect served and stopped clean" "exit $rc: $(grep '^==' "$T_TMP/collect.vg" | head -n 8 | tr '\n' ' ' | head -c 600)"; fi

t_done
