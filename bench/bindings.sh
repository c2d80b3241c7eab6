#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/bindings.sh BUILD OUT - rows 7: one durable event from Python, Go and Node,
# in process (a handle; the one call) and as `tel emit` run as a
# subprocess from the same language.  Writes "LANG HANDLE_US ONECALL_US
# SUBPROCESS_US HANDLE_CPU_US SUBPROCESS_CPU_US" lines to OUT (wall time,
# then CPU time of the language's process and its children); a language whose toolchain is absent is
# left out.  Called by bench/run.sh inside its private HOME.
set -eu
B=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=5
N=${TEL_BENCH_BIND_N:-200}
export TEL_BIN="$B/bin/tel"
: >"$OUT"
if [ -x /usr/bin/python3 ]; then
    TEL_LIBRARY="$B/libtel.so.0" PYTHONPATH="$ROOT/bindings/python" \
        /usr/bin/python3 "$ROOT/bench/bind_emit.py" $ROUNDS "$N" >>"$OUT"
fi
if command -v go >/dev/null 2>&1; then
    G=$(mktemp -d /tmp/tel-bench-go.XXXXXX)
    # ns/op of each benchmark, median of the rounds, in µs.
    (cd "$ROOT/bindings/go" && GOPATH=$G/path GOCACHE=$G/cache GOPROXY=off GOFLAGS= CGO_LDFLAGS="-L$B" \
        go test -run '^$' -bench . -benchtime "${N}x" -count $ROUNDS) >"$G/out" 2>&1 ||
        { cat "$G/out" >&2; rm -rf "$G"; exit 1; }
    awk '/^Benchmark/ { sub(/-[0-9]+$/, "", $1); v[$1] = v[$1] " " $3 / 1000; c[$1] = c[$1] " " $5 }
         function med(s,   a, n, i, j, t) { n = split(s, a, " ")
             for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
             return a[int((n + 1) / 2)] }
         END { printf "go %.1f %.1f %.1f %.1f %.1f\n", med(v["BenchmarkHandleEmit"]), med(v["BenchmarkOneCallEmit"]),
               med(v["BenchmarkTelEmitSubprocess"]), med(c["BenchmarkHandleEmit"]),
               med(c["BenchmarkTelEmitSubprocess"]) }' "$G/out" >>"$OUT"
    rm -rf "$G"
fi
if command -v node >/dev/null 2>&1 && [ -f "$B/tel.node" ]; then
    TEL_NODE_ADDON="$B/tel.node" node "$ROOT/bench/bind_emit.js" $ROUNDS "$N" >>"$OUT"
fi
