# SPDX-License-Identifier: MIT
# tests/lib.sh - sourced by the shell tests.
#
# Gives each test a private HOME (so XDG paths land in a temp dir), the
# built tools on PATH, and helpers that print "ok NAME" / "FAIL NAME: why".
set -u
: "${TEL_BUILD:?run through tests/run.sh or make check}"
T_FAILS=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tel-test.XXXXXX")
trap 't_cleanup' EXIT
t_cleanup() {
    # Not "$(jobs -p)": that runs in a subshell, which under dash lists no
    # job, and every server a test left running outlived it.  The list
    # goes through a file this shell writes.
    jobs -p >"$T_TMP/.jobs" 2>/dev/null
    for p in $(cat "$T_TMP/.jobs" 2>/dev/null); do kill "$p" 2>/dev/null; done
    chmod -R u+rwx "$T_TMP" 2>/dev/null
    rm -rf "$T_TMP"
}
export HOME="$T_TMP/home"
mkdir -p "$HOME"
unset XDG_STATE_HOME XDG_CONFIG_HOME DO_NOT_TRACK CI GITHUB_ACTIONS GITLAB_CI BUILDKITE TF_BUILD JENKINS_URL CIRCLECI TRAVIS
STATE="$HOME/.local/state"
CONF="$HOME/.config"

ok() { echo "ok $1"; }
# skip NAME: a check that cannot run here (missing tool, sanitizer build);
# counted apart, never as a pass.
skip() { echo "skip $1"; }
fail() { echo "FAIL $1: $2"; T_FAILS=$((T_FAILS + 1)); }
# check NAME CMD...: passes when CMD exits 0
check() { n="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$n"; else fail "$n" "command failed: $*"; fi; }
# check_not NAME CMD...: passes when CMD exits non-zero
check_not() { n="$1"; shift; if "$@" >/dev/null 2>&1; then fail "$n" "command succeeded: $*"; else ok "$n"; fi; }
# check_eq NAME GOT WANT
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'"; fi; }
# check_rc NAME WANT CMD...: passes when CMD exits with WANT
check_rc() { n="$1"; w="$2"; shift 2; "$@" >/dev/null 2>&1; r=$?; check_eq "$n" "$r" "$w"; }
# free_port: an unused loopback TCP port
free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# wait_port FILE: waits up to 5 s for a server's port file; prints the port.
wait_port() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    cat "$1" 2>/dev/null
}
# start_collect NAME [tel-collect options]: a quiet tel-collect on a free
# loopback port, writing $T_TMP/NAME.jsonl; sets CPID and URL.
start_collect() {
    sc_name=$1; shift
    rm -f "$T_TMP/$sc_name.port"
    tel-collect -q --port 0 --port-file "$T_TMP/$sc_name.port" --out "$T_TMP/$sc_name.jsonl" "$@" &
    CPID=$!
    URL="http://127.0.0.1:$(wait_port "$T_TMP/$sc_name.port")/v1/batch"
}
# stop_pid PID: ends a server this test started, and reaps it.
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
t_done() { exit $((T_FAILS > 0)); }
# tc_start NAME [tel-collect options]: a tel-collect on a free loopback port
# writing JSON lines; sets TC_URL, TC_PID and TC_OUT.  tc_stop ends it.
tc_start() {
    _n=$1; shift
    TC_OUT="$T_TMP/$_n.jsonl"
    rm -f "$T_TMP/$_n.port"
    tel-collect -q --port 0 --port-file "$T_TMP/$_n.port" --out "$TC_OUT" "$@" 2>"$T_TMP/$_n.err" &
    TC_PID=$!
    _i=0
    while [ ! -s "$T_TMP/$_n.port" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
    TC_URL="http://127.0.0.1:$(cat "$T_TMP/$_n.port" 2>/dev/null)/v1/batch"
}
tc_stop() { kill "$TC_PID" 2>/dev/null; wait "$TC_PID" 2>/dev/null; }
