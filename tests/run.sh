#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/run.sh - runs the test suite against one or more build directories.
#
#   tests/run.sh [--summary] [--only PATTERN] BUILD [BUILD ...]
#
# Every test (a C program in BUILD/tests/, or a tests/*.sh or tests/*.py
# script) prints "ok <name>" or "FAIL <name>: <why>" lines.  A test that
# exits non-zero without printing a FAIL line counts as one failure, so a
# crash never passes silently.  "skip <name>" lines (a check that cannot run
# here) are counted apart.  The last line is "N passed, N failed, N skipped".
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
only=""
builds=""
while [ $# -gt 0 ]; do
    case "$1" in
    --summary) ;;
    --only) only="$2"; shift ;;
    *) builds="$builds $1" ;;
    esac
    shift
done
[ -n "$builds" ] || { echo "usage: tests/run.sh [--only PATTERN] BUILD..." >&2; exit 2; }

total_pass=0
total_fail=0
total_skip=0
failed_names=""
for b in $builds; do
    bdir=$(cd "$top/$b" 2>/dev/null && pwd) || { echo "tests/run.sh: no build directory '$b'" >&2; exit 2; }
    case "$b" in *san*) san=1 ;; *) san=0 ;; esac
    echo "== tests in $b"
    tests=""
    for t in "$bdir"/tests/*; do [ -x "$t" ] && [ -f "$t" ] && tests="$tests $t"; done
    for t in "$top"/tests/t_*.sh "$top"/tests/t_*.py; do [ -f "$t" ] && tests="$tests $t"; done
    for t in $tests; do
        name=$(basename "$t")
        if [ -n "$only" ]; then case "$name" in *$only*) ;; *) continue ;; esac; fi
        out=$(mktemp)
        start=$(date +%s)
        case "$t" in
        *.sh) cmd="sh $t" ;;
        *.py) cmd="/usr/bin/python3 $t" ;;
        *) cmd="$t" ;;
        esac
        TEL_BUILD="$bdir" TEL_TOP="$top" TEL_SANITIZED=$san \
            TEL_SYNC_PATH="$bdir/bin/tel-sync" PATH="$bdir/bin:$PATH" \
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
            timeout 600 $cmd </dev/null >"$out" 2>&1
        rc=$?
        p=$(grep -c '^ok ' "$out")
        f=$(grep -c '^FAIL ' "$out")
        k=$(grep -c '^skip ' "$out")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1
            echo "FAIL $name: exited with status $rc" >>"$out"
        fi
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
        total_skip=$((total_skip + k))
        secs=$(( $(date +%s) - start ))
        if [ "$f" -gt 0 ]; then
            echo "FAIL $name ($p passed, $f failed, ${secs}s)"
            grep -v '^ok ' "$out" | tail -n 40 | sed 's/^/    /'
            failed_names="$failed_names $b/$name"
        else
            if [ "$k" -gt 0 ]; then echo "ok   $name ($p passed, $k skipped, ${secs}s)"
            else echo "ok   $name ($p passed, ${secs}s)"; fi
        fi
        rm -f "$out"
    done
done
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
