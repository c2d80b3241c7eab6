#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/dash.sh BUILD - the usage dashboard on a store of 1,000,000 events.
#
# Fills a SQLite store with tools/telgen (60 days of realistic traffic,
# inserted directly: one transaction of prepared inserts), folds it into
# the rollups once (as a collector's first start on an old store would),
# then times GET / on a running tel-collect and `tel-collect report`
# (whole process: open, fold nothing new, answer, print), each RUNS times,
# and prints a table.  Wall time is what a user waits; CPU time is the
# collector's own work (utime + stime of the process), which the other
# processes of a busy machine do not inflate.
#
#   TEL_BENCH_DASH_EVENTS   events to generate (default 1,000,000)
#   TEL_BENCH_DASH_RUNS     timed requests of each kind (default 20)
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
EVENTS=${TEL_BENCH_DASH_EVENTS:-1000000}
RUNS=${TEL_BENCH_DASH_RUNS:-20}
COLLECT="$B/bin/tel-collect"
[ -x "$COLLECT" ] || { echo "bench: build $BUILD first" >&2; exit 2; }

T=$(mktemp -d /tmp/tel-bench-dash.XXXXXX)
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '%s\n' "$*" >&2; }
DB="sqlite:$T/store.db"
END=$(date -u +%Y-%m-%d)

say "bench: dashboard: generating $EVENTS events into SQLite..."
: >"$T/store.db"   # report makes the schema in an empty file, never a file
"$COLLECT" report --db "$DB" --since 1d >/dev/null
/usr/bin/time -f '%e %U %S' -o "$T/gen.time" /usr/bin/python3 "$ROOT/tools/telgen" --events "$EVENTS" \
    --days 60 --end "$END" --seed 1 --db "$DB" --summary >"$T/gen.json"
say "bench: dashboard: folding them into the rollups..."
/usr/bin/time -f '%e %U %S' -o "$T/fold.time" "$COLLECT" report --db "$DB" >/dev/null

# wall and CPU seconds of N runs of a command, one per line
times_of() {
    i=0
    while [ $i -lt "$RUNS" ]; do
        /usr/bin/time -f '%e %U %S' -o "$T/t" "$@" >/dev/null
        awk '{ print $1, $2 + $3 }' "$T/t"
        i=$((i + 1))
    done
}
say "bench: dashboard: tel-collect report, $RUNS runs each..."
times_of "$COLLECT" report --db "$DB" >"$T/report.txt"
times_of "$COLLECT" report --db "$DB" --json --app mycli --ci no >"$T/report_f.txt"
times_of "$COLLECT" report --db "$DB" --since 60d >"$T/report_60.txt"

"$COLLECT" --db "$DB" --port 0 --port-file "$T/port" -q &
PID=$!
for _ in $(seq 200); do [ -s "$T/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$T/port")/"
# CPU ticks of the collector process (utime + stime, field 14 + 15)
ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
hz=$(getconf CLK_TCK)
page_times() {
    curl -s -o /dev/null "$1"
    c0=$(ticks)
    i=0
    while [ $i -lt "$RUNS" ]; do
        curl -s -o "$T/page.html" -w '%{time_total}\n' "$1"
        i=$((i + 1))
    done >"$2"
    c1=$(ticks)
    echo "$(( (c1 - c0) * 1000 / hz / RUNS ))" >"$2.cpu"
}
say "bench: dashboard: GET /, $RUNS requests each..."
page_times "$URL" "$T/page.txt"
bytes=$(wc -c <"$T/page.html")
page_times "$URL?app=mycli&ci=no" "$T/page_f.txt"
from=$(date -u -d "$END - 60 days" +%Y-%m-%d)
page_times "$URL?from=$from&to=$END" "$T/page_60.txt"

stats() { sort -n | awk '{ v[NR] = $1 } END { printf "%.0f %.0f %.0f", v[int((NR + 1) / 2)] * 1000, v[1] * 1000, v[NR] * 1000 }'; }
cpu_med() { awk '{ print $2 }' "$1" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] * 1000 }'; }
row() { # label file cpu
    set -- "$1" "$2" "$3" $(awk '{ print $1 }' "$2" | stats)
    v=pass; [ "$4" -le 200 ] || v=FAIL
    printf '| %s | %s ms | %s–%s ms | CPU %s ms | < 200 ms | %s |\n' "$1" "$4" "$5" "$6" "$3" "$v"
}
n=$(sed 's/.*"events": \([0-9]*\).*/\1/' "$T/gen.json")
th() { printf '%s' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
echo
echo "Dashboard on a SQLite store of $(th "$n") events over 60 days ($(sed 's/.*"installs": \([0-9]*\).*/\1/' "$T/gen.json") installs):"
echo
echo "| workload | median | min–max | CPU | target | result |"
echo "|---|---|---|---|---|---|"
read -r gw gu gs <"$T/gen.time"
read -r fw fu fs <"$T/fold.time"
gc=$(echo "$gu + $gs" | bc)
printf '| generating %s events (tools/telgen, one transaction) | %.1f s | | CPU %.1f s | < 60 s | %s |\n' \
    "$(th "$n")" "$gw" "$gc" "$( [ "$(echo "$gw < 60" | bc)" = 1 ] && echo pass || echo FAIL)"
printf '| first fold of all of them into the rollups (report, whole process) | %.1f s | | CPU %.1f s | | |\n' \
    "$fw" "$(echo "$fu + $fs" | bc)"
row "GET /, last 30 days, every app ($(th "$bytes") bytes)" "$T/page.txt" "$(cat "$T/page.txt.cpu")"
row "GET /?app=mycli&ci=no" "$T/page_f.txt" "$(cat "$T/page_f.txt.cpu")"
row "GET /, all 60 days" "$T/page_60.txt" "$(cat "$T/page_60.txt.cpu")"
row "report (text, whole process), last 30 days" "$T/report.txt" "$(cpu_med "$T/report.txt")"
row "report --json --app mycli --ci no" "$T/report_f.txt" "$(cpu_med "$T/report_f.txt")"
row "report --since 60d" "$T/report_60.txt" "$(cpu_med "$T/report_60.txt")"
echo
printf 'Medians of %s runs; CPU: the process'"'"'s user + system time (for GET /, the collector'"'"'s per request).\n' "$RUNS"
printf 'Machine: %s cores, load average %s while it ran.\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
