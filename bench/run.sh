#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/run.sh BUILD - tel against its peers and the physical floor.
#
# Builds the programs of bench/ against BUILD's libtel (into BUILD/bench/),
# runs every workload in a private temporary HOME, and prints one table.
# bench/README.md says what each row measures and how the peers are built.
# Loopback only; every loop has a bound; a few minutes on two cores.
#
#   TEL_BENCH_RUNS   whole-process runs per program (default 100, at least 30)
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) B=$BUILD ;; *) B=$ROOT/$BUILD ;; esac
O=$B/bench
RUNS=${TEL_BENCH_RUNS:-100}
[ "$RUNS" -ge 30 ] || { echo "bench: TEL_BENCH_RUNS must be at least 30" >&2; exit 2; }
[ -f "$B/libtel.a" ] && [ -x "$B/bin/tel-sync" ] && [ -x "$B/bin/tel-collect" ] ||
    { echo "bench: build $BUILD first (make BUILD=$BUILD all)" >&2; exit 2; }
for tool in valgrind; do
    command -v $tool >/dev/null || { echo "bench: $tool is missing (scripts/deps.sh bench)" >&2; exit 2; }
done

# ------------------------------------------------------------------ build
mkdir -p "$O"
CF="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I$ROOT/include -I$ROOT/util -I$ROOT/format -I$ROOT/libqueue"
# Hosts link libtel.a with LMDB and msgpack-c static too: the dynamic
# loader's work for two more shared objects is most of what a one-event
# process pays above the floor.  The _dyn row shows the other way.
TEL="$B/libtel.a -Wl,-Bstatic -llmdb -lmsgpackc -Wl,-Bdynamic"
TEL_DYN="$B/libtel.a -llmdb -lmsgpackc"
cc_() { out=$1; shift; cc $CF "$@" -o "$O/$out" || { echo "bench: cannot build $out" >&2; exit 1; }; }
S=$ROOT/bench
cc_ rr "$S/rr.c"
cc_ floor "$S/floor.c"
cc_ jsonl "$S/jsonl.c"
cc_ sqlite_wal "$S/sqlite_wal.c" -lsqlite3
cc_ noop "$S/noop.c"
cc_ emit_one "$S/emit_one.c" $TEL
cc_ emit_one_dyn "$S/emit_one.c" $TEL_DYN
cc_ emit_fullsync "$S/emit_fullsync.c" $TEL
# --no-as-needed: a do-nothing program that merely links a library must
# still load it, as a host that calls it on other paths would.
cc_ noop_tel_shared -DNOOP_TEL "$S/noop.c" -Wl,--no-as-needed -L"$B" -ltel -Wl,-rpath,"$B"
cc_ noop_tel_static -DNOOP_TEL "$S/noop.c" -Wl,--no-as-needed $TEL
cc_ noop_curl -DNOOP_CURL "$S/noop.c" -Wl,--no-as-needed -lcurl
cc_ inproc "$S/inproc.c" $TEL
cc_ fill "$S/fill.c" $TEL
cc_ contend "$S/contend.c" $TEL
cc_ postjson "$S/postjson.c" -lcurl
cc_ sink "$S/sink.c" -lmicrohttpd

# ---------------------------------------------------------- private world
T=$(mktemp -d /tmp/tel-bench.XXXXXX)
SHM=$T
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    [ -n "${PG_STOP:-}" ] && $PG_STOP
    rm -rf "$T" "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export HOME=$T/home XDG_STATE_HOME=$T/state XDG_CONFIG_HOME=$T/config
mkdir -p "$HOME" "$XDG_STATE_HOME" "$XDG_CONFIG_HOME" "$T/files"
# Nothing from the caller's environment may turn telemetry off or send it
# elsewhere, or make the bench's events look like CI's.
unset DO_NOT_TRACK CI GITHUB_ACTIONS GITLAB_CI 2>/dev/null || true
for v in $(env | sed -n 's/^\(BENCH[A-Z_]*_TELEMETRY_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

say() { printf '%s\n' "$*" >&2; }
wait_port() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$1" ] || { say "bench: a loopback server did not start"; exit 1; }
    cat "$1"
}

# ------------------------------------------- 1, 2: whole processes, round-robin
say "bench: whole processes, $RUNS rounds of 10 programs..."
"$O/rr" -n "$RUNS" -w 2 \
    @floor "$O/floor" "$T/files/floor.dat" \
    @jsonl "$O/jsonl" "$T/files/events.jsonl" \
    @sqlite_full "$O/sqlite_wal" "$T/files/full.db" full \
    @sqlite_normal "$O/sqlite_wal" "$T/files/normal.db" normal \
    @noop "$O/noop" \
    @tel "$O/emit_one" benchone \
    @tel_dyn "$O/emit_one_dyn" benchdyn \
    @tel_full "$O/emit_fullsync" benchfull \
    @noop_tel_so "$O/noop_tel_shared" \
    @noop_tel_a "$O/noop_tel_static" \
    @noop_curl "$O/noop_curl" > "$T/wall.txt"

# Instructions are the steady measure on a shared machine: callgrind's
# total Ir of the whole process (user space, dynamic loader included),
# three runs each, the files already created by the runs above.
say "bench: instruction counts (callgrind)..."
ir() {
    name=$1; shift
    for k in 1 2 3; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
            sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
    done | sort -n | tr '\n' ' ' | awk -v n="$name" '{ print n, $2, $1, $3 }'
}
{
    ir floor "$O/floor" "$T/files/floor.dat"
    ir jsonl "$O/jsonl" "$T/files/events.jsonl"
    ir sqlite_full "$O/sqlite_wal" "$T/files/full.db" full
    ir sqlite_normal "$O/sqlite_wal" "$T/files/normal.db" normal
    ir noop "$O/noop"
    ir tel "$O/emit_one" benchone
    ir tel_dyn "$O/emit_one_dyn" benchdyn
    ir tel_full "$O/emit_fullsync" benchfull
    ir noop_tel_so "$O/noop_tel_shared"
    ir noop_tel_a "$O/noop_tel_static"
    ir noop_curl "$O/noop_curl"
} > "$T/ir.txt"

# ------------------------------------------------------------ 3: in-process
say "bench: in-process events/s..."
"$O/inproc" benchin 5 > "$T/inproc.txt"

# --------------------------------------- 4, 5: a realistic queue of 10,000
# Row 4 measures tel-sync, not the collector's disk: its database goes to
# memory (/dev/shm) when it can, where a commit's fsync costs nothing.
[ -d /dev/shm ] && [ -w /dev/shm ] && SHM=$(mktemp -d /dev/shm/tel-bench.XXXXXX)
"$B/bin/tel-collect" --port 0 --port-file "$T/collect.port" --db "sqlite:$SHM/deliver.db" --out /dev/null -q &
COLLECT_PID=$!
PIDS="$PIDS $!"
CPORT=$(wait_port "$T/collect.port")
URL="http://127.0.0.1:$CPORT/v1/batch"

say "bench: filling a queue with 10,000 realistic events..."
QD=$XDG_STATE_HOME/benchq/telemetry
# The queue has synced with this collector once before, as any queue
# that is not brand new has: tel-sync remembers, with the queue, that the
# collector reads version 3 (format/SPEC.md 6.1), so the wire row is what
# a collector that reads version 3 receives.  Only the very first batch a
# queue sends to a collector goes in version 1 or 2.
"$O/fill" benchq 1 > /dev/null
"$B/bin/tel-sync" --app benchq --endpoint "$URL" -q ||
    { say "bench: tel-sync could not deliver the first event"; exit 1; }
rm -f "$QD/sent.log"
"$O/fill" benchq 10000 > /dev/null
DISK=$(stat -c %s "$QD/data.mdb")
cp -a "$XDG_STATE_HOME/benchq" "$T/template"
RESTORE="rm -rf $XDG_STATE_HOME/benchq && cp -a $T/template $XDG_STATE_HOME/benchq"

# The collector's CPU time (user + system, clock ticks) over all the runs,
# warm-up included: what of the wall time is its work, not tel-sync's.
collect_ticks() { awk '{ print $14 + $15 }' "/proc/$COLLECT_PID/stat"; }
say "bench: tel-sync draining 10,000 events into tel-collect, 7 times..."
C0=$(collect_ticks)
"$O/rr" -n 7 -w 1 -p "$RESTORE" @sync "$B/bin/tel-sync" --app benchq --endpoint "$URL" > "$T/sync.txt"
echo "$C0 $(collect_ticks) $(getconf CLK_TCK) 8" > "$T/collect_cpu.txt"
# The last run's sent.log: every batch accepted, and its gzip'd body sizes.
awk '$NF != 200 { bad = 1 } { ev += $5; by += $7 } END { if (bad || ev != 10000) exit 1; printf "%d %d\n", ev, by }' \
    "$QD/sent.log" > "$T/wire.txt" || { say "bench: tel-sync did not deliver all 10,000 events"; exit 1; }
# Where those bytes go: the same queue gzipped in other layouts.
/usr/bin/python3 "$S/wire_layouts.py" "$T/template/telemetry" > "$T/layouts.txt" ||
    { say "bench: wire_layouts.py failed"; exit 1; }

say "bench: one libcurl POST per event into a loopback sink..."
"$O/sink" "$T/sink.port" 600 &
PIDS="$PIDS $!"
SPORT=$(wait_port "$T/sink.port")
"$O/postjson" "http://127.0.0.1:$SPORT/event" 1000 5 > "$T/post.txt"

say "bench: emit latency, alone and while tel-sync drains the same queue..."
# Alone first, on a queue of its own: the same emits with nobody else
# writing, so the table shows what the drain adds to the disk's own sync.
"$O/contend" benchalone 1000 500 | sed 's/^contend/alone/' > "$T/alone.txt"
sh -c "$RESTORE"
"$O/contend" benchq 1000 500 > "$T/contend.txt" &
CPID=$!
nsync=0
while kill -0 $CPID 2>/dev/null && [ $nsync -lt 500 ]; do
    "$B/bin/tel-sync" --app benchq --endpoint "$URL" -q || true
    nsync=$((nsync + 1))
done
wait $CPID || { say "bench: the producer failed"; exit 1; }

# ---------------------------------------------- 7: the language bindings
say "bench: one event from Python, Go and Node, in process and through tel emit..."
"$ROOT/bench/bindings.sh" "$B" "$T/bindings.txt"

say "bench: tel-collect's ingest into SQLite and PostgreSQL (bench/collect.sh)..."
sh "$S/collect.sh" "$B" >"$T/collect.rows" || { say "bench: bench/collect.sh failed"; exit 1; }

# ------------------------------------------------------------------ table
say ""
awk -v runs="$RUNS" -v disk="$DISK" -v nsync="$nsync" '
function ms(x) { return sprintf("%.2f ms", x) }
function kir(x) { return sprintf("%.0fk Ir", x / 1000) }
function th(x,   s) { s = sprintf("%.0f", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }
function eps(x) { return th(x) " ev/s" }
function verdict(ok) { return ok ? "pass" : "**miss**" }
function row(w, med, mm, ratio, target, res) {
    printf "| %s | %s | %s | %s | %s | %s |\n", w, med, mm, ratio, target, res
}
FILENAME ~ /wall.txt$/  { wm[$1] = $2; wlo[$1] = $3; whi[$1] = $4; rss[$1] = $5 }
FILENAME ~ /ir.txt$/    { im[$1] = $2; ilo[$1] = $3; ihi[$1] = $4 }
FILENAME ~ /inproc.txt$/ { pm[$1] = $2; plo[$1] = $3; phi[$1] = $4 }
FILENAME ~ /sync.txt$/  { sm = $2; slo = $3; shi = $4; srss = $5; scpu = $6 }
FILENAME ~ /collect_cpu.txt$/ { ccpu = ($2 - $1) * 1000 / $3 / $4 }
FILENAME ~ /wire.txt$/  { wev = $1; wby = $2 }
FILENAME ~ /layouts.txt$/ { lay[$1] = $2 }
FILENAME ~ /post.txt$/  { qm = $2; qlo = $3; qhi = $4; qbytes = $5; qbody = $6 }
FILENAME ~ /contend.txt$/ { c50 = $2; c99 = $3; cmax = $4; cn = $5 }
FILENAME ~ /alone.txt$/ { a50 = $2; a99 = $3; amax = $4; an = $5 }
FILENAME ~ /bindings.txt$/ { nb++; bl[nb] = $1; bh[nb] = $2; bo[nb] = $3; bs[nb] = $4; bhc[nb] = $5; bsc[nb] = $6 }
END {
    f = wm["floor"]; fi = im["floor"]; sq = wm["sqlite_full"]
    print "| workload | median | min–max | ratio | target | result |"
    print "|---|---|---|---|---|---|"
    split("floor jsonl sqlite_full sqlite_normal noop tel tel_dyn tel_full", k1, " ")
    lab["floor"] = "floor: write+fdatasync 150 B"
    lab["jsonl"] = "JSON line + fsync (Gatsby)"
    lab["sqlite_full"] = "SQLite WAL, synchronous=FULL (1DS)"
    lab["sqlite_normal"] = "SQLite WAL, synchronous=NORMAL"
    lab["noop"] = "do-nothing process"
    lab["tel"] = "tel_emit(), MDB_NOMETASYNC (default), LMDB+msgpack-c static"
    lab["tel_dyn"] = "tel_emit(), the same with liblmdb.so + libmsgpackc.so"
    lab["tel_full"] = "tel emit, full sync (meta page synced too)"
    lab["noop_tel_so"] = "do-nothing linked with libtel.so"
    lab["noop_tel_a"] = "do-nothing linked with libtel.a (+ LMDB, msgpack-c static)"
    lab["noop_curl"] = "do-nothing linked with libcurl"
    for (i = 1; i <= 8; i++) {
        n = k1[i]; r = sprintf("%.2f× floor", wm[n] / f); t = ""; v = ""
        if (n ~ /^sqlite/) r = r sprintf(", %.2f× SQLite FULL", wm[n] / sq)
        if (n == "tel") {
            r = sprintf("%.2f× floor, %.2f× SQLite FULL", wm[n] / f, wm[n] / sq)
            t = "≤ 1.3× floor, ≤ 0.5× SQLite"
            v = verdict(wm[n] / f <= 1.3 && wm[n] / sq <= 0.5)
        }
        row("1. per process, wall: " lab[n], ms(wm[n]), sprintf("%.2f–%.2f ms", wlo[n], whi[n]), r, t, v)
    }
    for (i = 1; i <= 8; i++) {
        n = k1[i]; t = ""; v = ""
        if (n == "tel") { t = "≤ 2.5× floor"; v = verdict(im[n] / fi <= 2.5) }
        row("1. per process, instructions: " lab[n], kir(im[n]), sprintf("%.0fk–%.0fk", ilo[n] / 1000, ihi[n] / 1000),
            sprintf("%.2f× floor", im[n] / fi), t, v)
    }
    split("noop noop_tel_so noop_tel_a noop_curl", k2, " ")
    for (i = 1; i <= 4; i++) {
        n = k2[i]
        row("2. start-up, wall: " lab[n], ms(wm[n]), sprintf("%.2f–%.2f ms", wlo[n], whi[n]),
            sprintf("%.2f× do-nothing", wm[n] / wm["noop"]), "", "")
    }
    for (i = 1; i <= 4; i++) {
        n = k2[i]
        row("2. start-up, instructions: " lab[n], kir(im[n]), sprintf("%.0fk–%.0fk", ilo[n] / 1000, ihi[n] / 1000),
            sprintf("%.2f× do-nothing", im[n] / im["noop"]), "", "")
    }
    row("3. in-process: one event per transaction (tel_emit_event)", eps(pm["single"]),
        th(plo["single"]) "–" th(phi["single"]), "", "", "")
    row("3. in-process: batch API, 1000 emits per commit", eps(pm["batch"]),
        th(plo["batch"]) "–" th(phi["batch"]), "", "≥ 500,000 ev/s", verdict(pm["batch"] >= 500000))
    srate = 10000 / (sm / 1000); qrate = qm
    row("4. delivery: tel-sync, 10,000 events → tel-collect (whole process)", eps(srate),
        th(10000 / (shi / 1000)) "–" th(10000 / (slo / 1000)),
        sprintf("%.0f× one POST per event", srate / qrate), "≥ 200,000 ev/s, ≥ 100×",
        verdict(srate >= 200000 && srate / qrate >= 100))
    row("4. delivery: CPU per drain of 10,000: tel-sync (its own user + system)", ms(scpu), "",
        sprintf("%.0f%% of its wall time", 100 * scpu / sm), "", "")
    row("4. delivery: CPU per drain of 10,000: tel-collect, the same runs", ms(ccpu), "",
        sprintf("%.0f%% of the same wall time", 100 * ccpu / sm), "", "")
    row("4. delivery: one libcurl POST per event, JSON (Atmos, werf)", eps(qm),
        th(qlo) "–" th(qhi), "", "", "")
    row("4. wire: tel-sync gzip body bytes per event", sprintf("%.1f B", wby / wev), "",
        sprintf("%.0f× fewer than one POST", qbytes / (wby / wev)), "≤ 24 B", verdict(wby / wev <= 24))
    row("4. wire: one POST per event, headers + JSON body", sprintf("%.0f B", qbytes), "",
        sprintf("body %.0f B", qbody), "", "")
    row("4. wire analysis: the same events in version 3, laid out by bench/wire_layouts.py", lay["v3"] " B", "", "", "", "")
    row("4. wire analysis: … with every event id zeroed", lay["v3-no-ids"] " B", "", "", "", "")
    row("4. wire analysis: version 1 (a collector that reads 1 and 2 only)", lay["v1"] " B", "", "", "", "")
    row("4. wire analysis: … with every event id zeroed", lay["v1-no-ids"] " B", "", "", "", "")
    row("4. wire analysis: … and every execution id zeroed too", lay["v1-no-ids-x"] " B", "", "", "", "")
    row("5. disk: data.mdb bytes per queued event at 10,000", sprintf("%.0f B", disk / 10000), "",
        th(disk) " B file", "≤ 250 B", verdict(disk / 10000 <= 250))
    row("5. memory: tel-sync peak RSS draining 10,000", sprintf("%.1f MiB", srss / 1024), "", "", "≤ 16 MiB",
        verdict(srss / 1024 <= 16))
    row(sprintf("5. emit latency while tel-sync drains (%d emits, %d tel-sync runs): p50 / p99", cn, nsync),
        sprintf("%.2f / %.2f ms", c50, c99), sprintf("max %.2f ms", cmax),
        sprintf("p99 %.2f× alone", c99 / a99), "p99 ≤ 5 ms", verdict(c99 <= 5))
    row(sprintf("5. emit latency, producer alone (%d emits): p50 / p99", an),
        sprintf("%.2f / %.2f ms", a50, a99), sprintf("max %.2f ms", amax), "", "", "")
    name["python"] = "Python"; name["go"] = "Go"; name["node"] = "Node"
    for (i = 1; i <= nb; i++) {
        l = name[bl[i]]
        row("7. " l ": one durable event on a handle, in process, CPU", sprintf("%.0f µs", bhc[i]), "",
            sprintf("%.1f× cheaper than tel emit", bsc[i] / bhc[i]), "≥ 10× cheaper", verdict(bsc[i] / bhc[i] >= 10))
        row("7. " l ": one durable event on a handle, in process, wall", sprintf("%.0f µs", bh[i]), "",
            sprintf("%.1f× cheaper than tel emit", bs[i] / bh[i]), "", "")
        row("7. " l ": the one call (opens the queue each time), in process, wall", sprintf("%.0f µs", bo[i]), "",
            sprintf("%.1f× cheaper than tel emit", bs[i] / bo[i]), "", "")
        row("7. " l ": tel emit run as a subprocess, CPU / wall", sprintf("%.0f / %.0f µs", bsc[i], bs[i]), "",
            "", "", "")
    }
}' "$T/wall.txt" "$T/ir.txt" "$T/inproc.txt" "$T/sync.txt" "$T/collect_cpu.txt" "$T/wire.txt" "$T/layouts.txt" "$T/post.txt" "$T/contend.txt" "$T/alone.txt" "$T/bindings.txt"
cat "$T/collect.rows"
printf '\n%s whole-process runs per program, interleaved; instructions: callgrind, median of 3.\n' "$RUNS"
printf 'Machine: %s cores, %s, kernel %s, /tmp on %s; %s.\n' "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(uname -r)" \
    "$(df -T /tmp | awk 'NR == 2 { print $2 }')" "$(date -u '+%Y-%m-%d %H:%M UTC')"
