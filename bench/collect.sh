#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/collect.sh BUILD - tel-collect's ingest: events per second stored
# into SQLite and into PostgreSQL (one collector, and two sharing the
# database), each beside the raw floor of its engine on the same rows
# (SQLite: one transaction of prepared inserts; PostgreSQL: COPY).
#
# The load is 60 batches of 1000 events (bench/collect_load.py), posted
# over 8 keep-alive connections; each run starts from an empty database.
# Both engines run with their durable defaults (SQLite WAL +
# synchronous=FULL as tel-collect sets it; PostgreSQL fsync on).  Prints
# the rows of the bench table; bench/README.md explains them.
#
#   TEL_BENCH_COLLECT_RUNS   runs per row (default 3)
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
O=$B/bench
RUNS=${TEL_BENCH_COLLECT_RUNS:-3}
PY=/usr/bin/python3
mkdir -p "$O"
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I"$ROOT/collector" -I"$ROOT/util" $(pkg-config --cflags libpq) \
    "$ROOT/bench/store_floor.c" "$B/obj/collector/store.o" "$B/obj/collector/store_sqlite.o" \
    "$B/obj/collector/store_pg.o" "$B/obj/util/text.o" "$B/obj/util/buf.o" -lsqlite3 -lpq -lpthread \
    -o "$O/store_floor"

T=$(mktemp -d /tmp/tel-bench-collect.XXXXXX)
# tests/pg.sh is written for the tests; it needs these two.
free_port() { $PY -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
t_cleanup() { rm -rf "$T"; }
. "$ROOT/tests/pg.sh"
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    pg_stop
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "$@" >&2; }

say "bench: making 60 batches of 1000 events..."
$PY "$ROOT/bench/collect_load.py" make "$T/load" 60

# collector NAME DB: starts one; its URL in $URL.
collector() {
    rm -f "$T/$1.port"
    "$B/bin/tel-collect" --port 0 --port-file "$T/$1.port" --db "$2" --max-per-ip 0 -q &
    PIDS="$PIDS $!"
    i=0
    while [ ! -s "$T/$1.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    URL="http://127.0.0.1:$(cat "$T/$1.port")/v1/batch"
}
stop_all() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}
# rate LABEL: events/s of "events seconds" on stdin, appended to $T/LABEL.
rate() { awk '{ printf "%.0f\n", $1 / $2 }' >>"$T/$1"; }

for run in $(seq "$RUNS"); do
    say "bench: SQLite run $run/$RUNS..."
    rm -f "$T"/s.db*
    "$O/store_floor" sqlite "$T/s.db" "$T/load/rows.tsv" | rate sqlite_floor
    rm -f "$T"/s.db*
    "$O/store_floor" sqlite-nosync "$T/s.db" "$T/load/rows.tsv" | rate sqlite_nosync
    rm -f "$T"/s.db*
    collector s "sqlite:$T/s.db"
    $PY "$ROOT/bench/collect_load.py" post "$T/load" 8 "$URL" | rate sqlite_collect
    stop_all
done

if pg_start; then
    for run in $(seq "$RUNS"); do
        say "bench: PostgreSQL run $run/$RUNS..."
        "$O/store_floor" pg "$(pg_createdb "floor$run")" "$T/load/rows.tsv" | rate pg_floor
        db=$(pg_createdb "one$run")
        collector p1 "$db"
        $PY "$ROOT/bench/collect_load.py" post "$T/load" 8 "$URL" | rate pg_one
        stop_all
        db=$(pg_createdb "two$run")
        collector p1 "$db"
        u1=$URL
        collector p2 "$db"
        $PY "$ROOT/bench/collect_load.py" post "$T/load" 8 "$u1" "$URL" | rate pg_two
        stop_all
    done
else
    say "bench: no PostgreSQL ($PG_WHY): its rows are left out"
fi

# One table row per measure: median, min-max, ratio to the engine's floor.
for f in sqlite_floor sqlite_nosync sqlite_collect pg_floor pg_one pg_two; do
    [ -s "$T/$f" ] && printf '%s %s\n' "$f" "$(sort -n "$T/$f" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[1], v[NR] }')"
done | awk '
function th(x,   s) { s = sprintf("%.0f", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
function row(w, n, ratio, target, res) {
    printf "| %s | %s ev/s | %s–%s | %s | %s | %s |\n", w, th(m[n]), th(lo[n]), th(hi[n]), ratio, target, res
}
function verdict(ok) { return ok ? "pass" : "**miss**" }
{ m[$1] = $2; lo[$1] = $3; hi[$1] = $4 }
END {
    if ("sqlite_floor" in m) {
        row("6. collector: SQLite floor, one transaction of prepared inserts", "sqlite_floor", "", "", "")
        if ("sqlite_nosync" in m)
            row("6. collector: the same floor with synchronous=OFF (no wait for the disk)", "sqlite_nosync",
                sprintf("%.2f× floor", m["sqlite_nosync"] / m["sqlite_floor"]), "", "")
        r = m["sqlite_collect"] / m["sqlite_floor"]
        row("6. collector: tel-collect → SQLite (commit per group of batches, synchronous=FULL)", "sqlite_collect",
            sprintf("%.2f× floor", r), "≥ 100,000 ev/s, ≥ 0.5× floor",
            verdict(m["sqlite_collect"] >= 100000 && r >= 0.5))
    }
    if ("pg_floor" in m) {
        row("6. collector: PostgreSQL floor, COPY", "pg_floor", "", "", "")
        r = m["pg_one"] / m["pg_floor"]
        row("6. collector: tel-collect → PostgreSQL, one collector", "pg_one", sprintf("%.2f× floor", r),
            "≥ 0.5× floor", verdict(r >= 0.5))
        r = m["pg_two"] / m["pg_floor"]
        row("6. collector: tel-collect → PostgreSQL, two collectors", "pg_two", sprintf("%.2f× floor", r),
            "≥ 0.5× floor", verdict(r >= 0.5))
    }
}'
