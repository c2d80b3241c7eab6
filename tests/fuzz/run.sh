#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/fuzz/run.sh - builds every libFuzzer harness in tests/fuzz/ and runs
# each for FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus
# (tests/fuzz/corpus/<name>/), so the checked-in seeds never churn.
#
#   FUZZ_SECONDS=N   time per harness
#   FUZZ_ONLY=NAME   run only fuzz_NAME
#   FUZZ_BUILD=DIR   where to build (default build-fuzz)
#
# Prints one line per harness with its executions and the corpus size it
# reached, and exits 1 if any harness found a crash, a leak or a broken
# invariant; the input that did it is saved under DIR/artifacts/, ready to
# be copied into tests/fuzz/regressions/ once fixed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 2
secs=${FUZZ_SECONDS:-60}
out=${FUZZ_BUILD:-build-fuzz}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null 2>&1 || { echo "fuzz: $CC not found (scripts/deps.sh fuzz)" >&2; exit 2; }

# The library is compiled once with coverage and sanitizers; each harness
# links it with the objects it needs beyond libtel.
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer-no-link,address,undefined \
 -fno-sanitize-recover=all -fno-omit-frame-pointer -Iinclude -Iutil -Iformat -Ilibqueue -Icli \
 -I$out/gen $(pkg-config --cflags lmdb msgpack 2>/dev/null)"
mkdir -p "$out/obj" "$out/artifacts" "$out/corpus" "$out/gen" || exit 2
# A build-time configuration that can reach nothing: the harnesses never
# spawn tel-sync or send.
cfg='#define TEL_SYNC_BIN "/nonexistent/tel-sync"
#define TEL_DEFAULT_ENDPOINT "http://127.0.0.1:9/v1/batch"'
[ "$(cat "$out/gen/tel_config.h" 2>/dev/null)" = "$cfg" ] || printf '%s\n' "$cfg" >"$out/gen/tel_config.h"
objs=""
for src in util/*.c format/*.c libqueue/*.c cli/kv.c; do
    o="$out/obj/$(echo "$src" | tr / _).o"
    if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ -n "$(find include util libqueue format cli "$out/gen" -name '*.h' -newer "$o" 2>/dev/null | head -n 1)" ]; then
        $CC $flags -c "$src" -o "$o" || { echo "fuzz: compiling $src failed" >&2; exit 2; }
    fi
    objs="$objs $o"
done

status=0
for h in tests/fuzz/fuzz_*.c; do
    name=$(basename "$h" .c)
    short=${name#fuzz_}
    if [ -n "${FUZZ_ONLY:-}" ] && [ "$short" != "$FUZZ_ONLY" ]; then continue; fi
    $CC $flags -fsanitize=fuzzer "$h" $objs -o "$out/$name" -llmdb -lmsgpackc -lm ||
        { echo "FAIL $name: does not build"; status=1; continue; }
    rm -rf "$out/corpus/$short"
    mkdir -p "$out/corpus/$short"
    [ -d "tests/fuzz/corpus/$short" ] && cp tests/fuzz/corpus/"$short"/* "$out/corpus/$short/" 2>/dev/null
    [ -d "tests/fuzz/regressions/$short" ] && cp tests/fuzz/regressions/"$short"/* "$out/corpus/$short/" 2>/dev/null
    log="$out/$name.log"
    ASAN_OPTIONS=detect_leaks=1 "$out/$name" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name-" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
        "$out/corpus/$short" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    files=$(ls "$out/corpus/$short" | wc -l | tr -d ' ')
    if [ "$rc" -ne 0 ]; then
        echo "FAIL $name: exit $rc after ${execs:-?} executions; see $log"
        grep -m 5 -E 'ERROR|SUMMARY|Test unit written' "$log" | sed 's/^/    /'
        status=1
    else
        echo "ok $name: ${execs:-?} executions in ${secs} s, corpus $files inputs"
    fi
done
exit $status
