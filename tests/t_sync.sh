# SPDX-License-Identifier: MIT
# tests/t_sync.sh - tel-sync end to end, against tel-collect and against the
# independent tests/collector.py, including every failure class of the
# upload rules, the time bounds, single flight, dry runs and a crash loop.
. "$TEL_TOP/tests/lib.sh"

# A proxy from the caller's environment would sit between tel-sync and the
# loopback collectors and change what is being tested.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
COLLECTOR="$TEL_TOP/tests/collector.py"
STRESS=${TEL_STRESS:-0}

# ms since the epoch, for timing runs.
now_ms() { date +%s%3N; }


# start_py NAME [collector.py options]: sets PORT, CPID, OUT (the JSON record).
start_py() {
    name=$1; shift
    OUT="$T_TMP/$name.json"
    rm -f "$T_TMP/$name.port"
    $PY "$COLLECTOR" --port-file "$T_TMP/$name.port" --out "$OUT" "$@" 2>"$T_TMP/$name.err" &
    CPID=$!
    PORT=$(wait_port "$T_TMP/$name.port")
    URL="http://127.0.0.1:$PORT/v1/batch"
}

# start_tc NAME [tel-collect options]: sets PORT, CPID, OUT (JSON lines).
start_tc() {
    tc_start "$@"
    CPID=$TC_PID OUT=$TC_OUT URL=$TC_URL
    PORT=$(cat "$T_TMP/$1.port" 2>/dev/null)
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# Questions about a collector.py record: R is the list of requests.
pyq() { $PY - "$1" "$2" <<'EOF'
import json, sys
R = json.load(open(sys.argv[1]))['requests']
OK = [r for r in R if 200 <= (r['status'] or 0) < 300]
print(eval(sys.argv[2]))
EOF
}

# emit APP N [PREFIX]: N events with a unique "seq" property each.
emit() {
    i=1
    while [ $i -le "$2" ]; do
        tel emit --app "$1" test.event "seq=${3:-s}$i" kind=unit n=$i ok=true || return 1
        i=$((i + 1))
    done
}

qcount() { tel show --app "$1" 2>/dev/null | grep -c '^{'; }
qids() { tel show --app "$1" 2>/dev/null | $PY -c 'import sys,json; print("\n".join(sorted(json.loads(l)["id"] for l in sys.stdin if l.strip())))'; }

# ------------------------------------------------------------ command line

check_rc "usage: no app" 2 tel-sync
check_rc "usage: --app and --all" 2 tel-sync --app a --all
check_rc "usage: bad app name" 2 tel-sync --app ../etc
check_rc "usage: bad --max-time" 2 tel-sync --app a --max-time 0
check_rc "usage: stray argument" 2 tel-sync --app a extra
out=$(tel-sync --help); rc=$?
case "$out" in *"Exit status"*"3  bad configuration"*) check_eq "--help lists exit codes" $rc 0 ;;
    *) fail "--help lists exit codes" "no exit status table" ;; esac
check_eq "--version" "$(tel-sync --version)" "tel-sync $(sed -n 's/^#define TEL_VERSION "\(.*\)"/\1/p' "$TEL_TOP/include/tel.h")"
check_rc "nothing queued exits 0" 0 tel-sync --app never-used --endpoint http://127.0.0.1:9/x

# ------------------------------------------------ delivery, both collectors

start_py basic --token s3cr3t-t0ken
emit basic 5
want=$(qids basic)
err=$(tel-sync --app basic --endpoint "$URL" --token s3cr3t-t0ken -vv 2>&1); rc=$?
check_eq "basic: exit 0" $rc 0
check_eq "basic: one request" "$(pyq "$OUT" 'len(R)')" 1
check_eq "basic: no spec violations" "$(pyq "$OUT" 'sum(len(r["errors"]) for r in R)')" 0
check_eq "basic: accepted" "$(pyq "$OUT" 'R[0]["status"]')" 200
got=$(pyq "$OUT" '"\n".join(sorted(e["id"] for r in R for e in r["events"]))')
check_eq "basic: the queued ids arrive exactly once" "$got" "$want"
check_eq "basic: queue emptied" "$(qcount basic)" 0
check_eq "basic: batch anon is the cookie" "$(pyq "$OUT" 'R[0]["anon"]')" "$(cat "$STATE/basic/telemetry-cookie")"
log="$STATE/basic/telemetry/sent.log"
check_eq "basic: sent.log has one line" "$(wc -l <"$log" | tr -d ' ')" 1
check_eq "basic: sent.log is 0600" "$(stat -c %a "$log")" 600
case "$(cat "$log")" in *"$(pyq "$OUT" 'R[0]["key"]')"*"events 5"*"status 200"*) ok "basic: sent.log names batch, size, status" ;;
    *) fail "basic: sent.log names batch, size, status" "$(cat "$log")" ;; esac
if grep -rq s3cr3t-t0ken "$STATE/basic/telemetry/sent.log" || echo "$err" | grep -q s3cr3t-t0ken; then
    fail "basic: token never in logs or output" "found"
else ok "basic: token never in logs or output"; fi
stop $CPID

# The endpoint a host records (tel emit --endpoint) is used by tel-sync.
start_tc tc
tel emit --app viahost --endpoint "$URL" first.event seq=a1 >/dev/null
emit viahost 3 b
want=$(qids viahost)
check_rc "tel-collect: exit 0" 0 tel-sync --app viahost
got=$($PY -c 'import sys,json; print("\n".join(sorted(json.loads(l)["id"] for l in open(sys.argv[1]))))' "$OUT" 2>/dev/null)
check_eq "tel-collect: host-recorded endpoint, ids arrive" "$got" "$want"
check_eq "tel-collect: queue emptied" "$(qcount viahost)" 0
stop $CPID

# A run delivers what was queued when it started; events recorded while it
# runs wait for the next run (a steady emitter cannot keep one run busy).
start_tc later --delay 700
emit later 4 early
tel-sync --app later --endpoint "$URL" & SP=$!
sleep 0.3
emit later 2 late
wait $SP; rc=$?
check_eq "snapshot: exit 0" $rc 0
check_eq "snapshot: the events recorded during the run are still queued" "$(qcount later)" 2
check_eq "snapshot: the collector got exactly the events queued at the start" \
    "$($PY -c 'import sys,json; print(sorted(json.loads(l)["props"]["seq"] for l in open(sys.argv[1])))' "$OUT")" \
    "['early1', 'early2', 'early3', 'early4']"
check_rc "snapshot: the next run sends the rest" 0 tel-sync --app later --endpoint "$URL"
check_eq "snapshot: then the queue is empty" "$(qcount later)" 0
stop $CPID

# --all drains every app, each under its own policy.
start_py all
tel emit --app all-a --endpoint "$URL" x.one seq=1 >/dev/null
tel emit --app all-b --endpoint "$URL" x.two seq=2 >/dev/null
mkdir -p "$STATE/Not_An_App/telemetry"
check_rc "--all: exit 0" 0 tel-sync --all
check_eq "--all: both apps delivered" "$(pyq "$OUT" 'sorted(e["app"] for r in OK for e in r["events"])')" "['all-a', 'all-b']"
stop $CPID

# ----------------------------------------------------- the failure table

# 503: kept, backoff recorded, next run deferred, --force retries the same id.
start_py s503 --mode status --status 503 --first 2
emit s503 3
check_rc "503: exit 0" 0 tel-sync --app s503 --endpoint "$URL"
check_eq "503: events kept" "$(qcount s503)" 3
err=$(tel-sync --app s503 --endpoint "$URL" -v 2>&1); rc=$?
check_eq "503: second run exits 0" $rc 0
check_eq "503: second run sends nothing" "$(pyq "$OUT" 'len(R)')" 1
case "$err" in *deferred*"HTTP 503"*) ok "503: second run says deferred" ;; *) fail "503: second run says deferred" "$err" ;; esac
check_rc "503: --force exit 0" 0 tel-sync --app s503 --endpoint "$URL" --force
check_rc "503: --force again exit 0" 0 tel-sync --app s503 --endpoint "$URL" --force
check_eq "503: three attempts" "$(pyq "$OUT" 'len(R)')" 3
check_eq "503: every retry has the same batch id" "$(pyq "$OUT" 'len(set(r["key"] for r in R))')" 1
check_eq "503: delivered in the end" "$(pyq "$OUT" '[r["status"] for r in R]')" "[503, 503, 200]"
check_eq "503: queue emptied" "$(qcount s503)" 0
err=$(tel-sync --app s503 --endpoint "$URL" -v 2>&1)
case "$err" in *deferred*) fail "503: backoff cleared after 2xx" "$err" ;; *) ok "503: backoff cleared after 2xx" ;; esac
stop $CPID

# deferred seconds from a -v line "deferred: next attempt in N s"
deferred_s() { echo "$1" | sed -n 's/.*next attempt in \([0-9]*\) s.*/\1/p'; }

start_py s429 --mode status --status 429 --retry-after 120
emit s429 2
check_rc "429: exit 0" 0 tel-sync --app s429 --endpoint "$URL"
s=$(deferred_s "$(tel-sync --app s429 --endpoint "$URL" -v 2>&1)")
if [ -n "$s" ] && [ "$s" -ge 100 ] && [ "$s" -le 121 ]; then ok "429: Retry-After 120 honoured"; else fail "429: Retry-After 120 honoured" "deferred '$s' s"; fi
check_eq "429: events kept" "$(qcount s429)" 2
stop $CPID

date_in_300=$(LC_ALL=C TZ=GMT date -d @$(( $(date +%s) + 300 )) '+%a, %d %b %Y %H:%M:%S GMT')
start_py sdate --mode status --status 503 --retry-after "$date_in_300"
emit sdate 1
tel-sync --app sdate --endpoint "$URL"
s=$(deferred_s "$(tel-sync --app sdate --endpoint "$URL" -v 2>&1)")
if [ -n "$s" ] && [ "$s" -ge 250 ] && [ "$s" -le 301 ]; then ok "503: Retry-After HTTP-date honoured"; else fail "503: Retry-After HTTP-date honoured" "deferred '$s' s"; fi
stop $CPID

start_py sbig --mode status --status 503 --retry-after 999999999
emit sbig 1
tel-sync --app sbig --endpoint "$URL"
s=$(deferred_s "$(tel-sync --app sbig --endpoint "$URL" -v 2>&1)")
if [ -n "$s" ] && [ "$s" -le 86400 ] && [ "$s" -ge 86000 ]; then ok "Retry-After capped at 24 h"; else fail "Retry-After capped at 24 h" "deferred '$s' s"; fi
stop $CPID

start_py sjunk --mode status --status 503 --retry-after 'soon-ish'
emit sjunk 1
tel-sync --app sjunk --endpoint "$URL"
s=$(deferred_s "$(tel-sync --app sjunk --endpoint "$URL" -v 2>&1)")
if [ -n "$s" ] && [ "$s" -le 60 ]; then ok "garbage Retry-After ignored (jitter <= 60 s)"; else fail "garbage Retry-After ignored (jitter <= 60 s)" "deferred '$s' s"; fi
stop $CPID

# 413: halved into new batches with new ids until they fit; all delivered.
start_py s413 --max-events 2
emit s413 7
want=$(qids s413)
check_rc "413: exit 0" 0 tel-sync --app s413 --endpoint "$URL"
got=$(pyq "$OUT" '"\n".join(sorted(e["id"] for r in OK for e in r["events"]))')
check_eq "413: all delivered once" "$got" "$want"
check_eq "413: accepted batches fit" "$(pyq "$OUT" 'max(len(r["events"]) for r in OK) <= 2 and len(OK) >= 4')" True
check_eq "413: split batches get new ids" "$(pyq "$OUT" 'len(set(r["key"] for r in R)) == len(R)')" True
check_eq "413: queue emptied" "$(qcount s413)" 0
stop $CPID

# 413 to everything, even to one event: a misconfigured collector or proxy.
# Nothing is dropped; the run backs off a day and says why; the next run
# (the collector fixed) starts from one full batch again.
start_py a413 --mode status --status 413
emit a413 40
want=$(qids a413)
err=$(tel-sync --app a413 --endpoint "$URL" -v 2>&1); rc=$?
check_eq "tel-sync exits 0 when the collector answers 413 to a single event" $rc 0
check_eq "tel-sync keeps all 40 events when the collector answers 413 to a single event" "$(qcount a413)" 40
check_eq "tel-sync halves down to one event, then stops" "$(pyq "$OUT" '[len(r["events"]) for r in R]')" "[40, 20, 10, 5, 2, 1]"
case "$err" in *"413 for a single event"*"backing off 86400 s"*) ok "tel-sync -v says a single event got 413 and it backs off a day" ;;
    *) fail "tel-sync -v says a single event got 413 and it backs off a day" "$err" ;; esac
st=$(tel status --app a413)
case "$st" in *"queue:       40 events,"*", 0 dropped"*) ok "tel status shows the 40 events still queued, none dropped" ;;
    *) fail "tel status shows the 40 events still queued, none dropped" "$st" ;; esac
case "$st" in *"deferred for 24 h"*"HTTP 413 for a single event"*) ok "tel status shows the day-long wait and the 413 reason" ;;
    *) fail "tel status shows the day-long wait and the 413 reason" "$st" ;; esac
stop $CPID
start_py h413
check_rc "a later run against a healthy collector exits 0" 0 tel-sync --app a413 --endpoint "$URL" --force
check_eq "a later run sends all 40 events in one full batch" "$(pyq "$OUT" '[len(r["events"]) for r in OK]')" "[40]"
got=$(pyq "$OUT" '"\n".join(sorted(e["id"] for r in OK for e in r["events"]))')
check_eq "a later run delivers every event kept after the 413s" "$got" "$want"
check_eq "a later run leaves the queue empty" "$(qcount a413)" 0
stop $CPID

# 400: the batch is poison: dropped, counted, reported by the next accepted batch.
start_py s400 --mode status --status 400 --first 1
emit s400 3
check_rc "400: exit 0" 0 tel-sync --app s400 --endpoint "$URL"
check_eq "400: batch dropped" "$(qcount s400)" 0
emit s400 2 again
check_rc "400: next run exit 0" 0 tel-sync --app s400 --endpoint "$URL"
check_eq "400: next accepted batch reports 3 dropped" "$(pyq "$OUT" '[(r["status"], r["dropped"]) for r in R]')" "[(400, 0), (200, 3)]"
stop $CPID

# A batch never carries two identities: deleting the cookie between events
# makes the next batch start at the first event of the new identity.
start_py ident
emit ident 2 a
rm -f "$STATE/ident/telemetry-cookie"
emit ident 2 b
check_rc "identities: exit 0" 0 tel-sync --app ident --endpoint "$URL"
check_eq "identities: two batches, one anon each, no violations" \
    "$(pyq "$OUT" '(len(OK), len(set(r["anon"] for r in OK)), sum(len(r["errors"]) for r in R))')" "(2, 2, 0)"
check_eq "identities: each batch holds one cookie's events" \
    "$(pyq "$OUT" 'sorted(sorted(e["props"]["seq"] for e in r["events"]) for r in OK)')" "[['a1', 'a2'], ['b1', 'b2']]"
stop $CPID

# A record that no longer decodes is poison: deleted, counted, never sent.
start_py poison
emit poison 3
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n 00000000000f4240\n c1c1c1\nDATA=END\n' |
    mdb_load -s events "$STATE/poison/telemetry" 2>/dev/null
entries() { mdb_stat -s events "$STATE/poison/telemetry" 2>/dev/null | sed -n 's/.*Entries: //p'; }
check_eq "poison: injected" "$(entries)" 4
check_rc "poison: exit 0" 0 tel-sync --app poison --endpoint "$URL"
check_eq "poison: good events delivered, no violations" "$(pyq "$OUT" '(sum(len(r["events"]) for r in OK), sum(len(r["errors"]) for r in R))')" "(3, 0)"
check_eq "poison: record deleted" "$(entries)" 0
check_eq "poison: counted as dropped by the batch sent after" "$(pyq "$OUT" 'R[0]["dropped"]')" 1
emit poison 1 later
tel-sync --app poison --endpoint "$URL"
check_eq "poison: the count is acknowledged once" "$(pyq "$OUT" 'R[-1]["dropped"]')" 0
stop $CPID

for code in 401 403 404; do
    start_py "s$code" --mode status --status $code
    emit "s$code" 2
    check_rc "$code: exit 0" 0 tel-sync --app "s$code" --endpoint "$URL"
    check_eq "$code: events kept" "$(qcount "s$code")" 2
    s=$(deferred_s "$(tel-sync --app "s$code" --endpoint "$URL" -v 2>&1)")
    if [ -n "$s" ] && [ "$s" -ge 86000 ]; then ok "$code: backs off a day"; else fail "$code: backs off a day" "deferred '$s' s"; fi
    stop $CPID
done

# Network-level failures: reset mid-body, redirect loop, refused connection.
start_py reset --mode reset
emit reset 2
check_rc "reset: exit 0" 0 tel-sync --app reset --endpoint "$URL"
check_eq "reset: events kept" "$(qcount reset)" 2
case "$(tel-sync --app reset --endpoint "$URL" -v 2>&1)" in *deferred*) ok "reset: backoff recorded" ;; *) fail "reset: backoff recorded" "not deferred" ;; esac
stop $CPID

start_py redir --mode redirect
emit redir 2
check_rc "redirect: exit 0" 0 tel-sync --app redir --endpoint "$URL"
check_eq "redirect: not followed" "$(pyq "$OUT" 'len(R)')" 1
check_eq "redirect: events kept" "$(qcount redir)" 2
stop $CPID

start_py refuse --mode refuse-after --first 1
emit refuse 1
check_rc "refused: first batch delivered" 0 tel-sync --app refuse --endpoint "$URL"
wait $CPID 2>/dev/null
emit refuse 2 r
err=$(tel-sync --app refuse --endpoint "$URL" -v 2>&1); rc=$?
check_eq "refused: exit 0" $rc 0
check_eq "refused: events kept" "$(qcount refuse)" 2
case "$err" in *"backing off"*) ok "refused: backs off" ;; *) fail "refused: backs off" "$err" ;; esac

# ------------------------------------------------------------- time bounds

for mode in silent slow; do
    start_py "t$mode" --mode $mode
    emit "t$mode" 3
    t0=$(now_ms)
    tel-sync --app "t$mode" --endpoint "$URL" --max-time 3; rc=$?
    el=$(( $(now_ms) - t0 ))
    check_eq "$mode server: exit 0" $rc 0
    if [ $el -le 5000 ]; then ok "$mode server: --max-time 3 ends within 5 s (${el} ms)"; else fail "$mode server: --max-time 3 ends within 5 s" "${el} ms"; fi
    check_eq "$mode server: nothing lost" "$(qcount "t$mode")" 3
    stop $CPID
done

# A 64 MiB answer neither holds tel-sync nor grows it.
start_py huge --mode huge
emit huge 3
rss=$($PY -c 'import resource,subprocess,sys; r=subprocess.call(sys.argv[1:]); print(r, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
    tel-sync --app huge --endpoint "$URL" --max-time 10)
check_eq "huge answer: exit 0" "${rss% *}" 0
check_eq "huge answer: delivered" "$(qcount huge)" 0
if [ "$TEL_SANITIZED" = 1 ]; then ok "huge answer: peak RSS (not measured under sanitizers)"
elif [ "${rss#* }" -le 16384 ]; then ok "huge answer: peak RSS ${rss#* } KiB <= 16 MiB"
else fail "huge answer: peak RSS <= 16 MiB" "${rss#* } KiB"; fi
stop $CPID

# -------------------------------------------------------------- single flight

start_py busy --mode silent
emit busy 2
tel-sync --app busy --endpoint "$URL" --max-time 4 &
first=$!
sleep 1
t0=$(now_ms)
err=$(tel-sync --app busy --endpoint "$URL" -v 2>&1); rc=$?
el=$(( $(now_ms) - t0 ))
check_eq "two at once: the second exits 0" $rc 0
if [ $el -le 1000 ]; then ok "two at once: the second leaves at once (${el} ms)"; else fail "two at once: the second leaves at once" "${el} ms"; fi
case "$err" in *"another tel-sync"*) ok "two at once: -v says why" ;; *) fail "two at once: -v says why" "$err" ;; esac
wait $first
stop $CPID

start_py race
emit race 40
want=$(qids race)
tel-sync --app race --endpoint "$URL" & a=$!
tel-sync --app race --endpoint "$URL" & b=$!
wait $a; ra=$?; wait $b; rb=$?
check_eq "two at once: both exit 0" "$ra $rb" "0 0"
got=$(pyq "$OUT" '"\n".join(sorted(e["id"] for r in OK for e in r["events"]))')
check_eq "two at once: every event delivered exactly once" "$got" "$want"
stop $CPID

# -------------------------------------------------------- policy and config

start_py policy
emit badurl 2
err=$(tel-sync --app badurl --endpoint http://192.0.2.1/v1/batch 2>&1); rc=$?
check_eq "http:// to a non-loopback host: exit 3" $rc 3
check_eq "http:// to a non-loopback host: one line" "$(echo "$err" | wc -l | tr -d ' ')" 1
case "$err" in "tel-sync: "*) ok "http:// refused: names the program" ;; *) fail "http:// refused: names the program" "$err" ;; esac
rc=0; BADURL_TELEMETRY_ENDPOINT=http://example.com/x tel-sync --app badurl 2>/dev/null || rc=$?
check_eq "env endpoint http:// non-loopback: exit 3" $rc 3
check_eq "refused endpoint: nothing deleted" "$(qcount badurl)" 2

emit off 3
OFF_TELEMETRY_ENABLED=0 tel-sync --app off --endpoint "$URL"; rc=$?
check_eq "disabled: exit 0" $rc 0
check_eq "disabled: queue purged" "$(qcount off)" 0
emit dnt 1
DO_NOT_TRACK=1 tel-sync --app dnt --endpoint "$URL"
check_eq "DO_NOT_TRACK: queue purged" "$(qcount dnt)" 0

emit insp 4
want=$(qids insp)
INSP_TELEMETRY_INSPECT="$T_TMP/inspect.jsonl" tel-sync --app insp --endpoint "$URL" --token s3cr3t-t0ken; rc=$?
check_eq "inspect: exit 0" $rc 0
got=$($PY -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
b = [json.loads(l) for l in lines]
assert all(set(x) >= {"batch", "sent", "dropped", "anon", "events"} for x in b)
print("\n".join(sorted(e["id"] for x in b for e in x["events"])))' "$T_TMP/inspect.jsonl" 2>&1)
check_eq "inspect: file holds the batches that would be sent" "$got" "$want"
check_eq "inspect: queue kept" "$(qcount insp)" 4
if grep -q s3cr3t-t0ken "$T_TMP/inspect.jsonl"; then fail "inspect: no token in the file" "found"; else ok "inspect: no token in the file"; fi

err=$(INSP_TELEMETRY_DEBUG=1 tel-sync --app insp --endpoint "$URL" 2>&1); rc=$?
check_eq "debug: exit 0" $rc 0
case "$err" in *"$(echo "$want" | head -n 1)"*) ok "debug: logs what would be sent" ;; *) fail "debug: logs what would be sent" "$err" ;; esac
check_eq "debug: queue kept" "$(qcount insp)" 4
check_eq "inspect and debug: nothing sent" "$(pyq "$OUT" 'len(R)')" 0
stop $CPID

# ------------------------------------------------------------------ crash loop

# Producers emit while tel-sync is SIGKILLed at random instants.  Every
# event whose `tel emit` exited 0 must reach tel-collect at least once, and
# an event that arrives twice must carry the same event id both times.
iters=30
[ "$STRESS" = 1 ] && iters=500
start_tc crash --delay 20
producer() {
    i=0
    while [ ! -e "$T_TMP/stop" ]; do
        i=$((i + 1))
        tel emit --app crash --endpoint "$URL" crash.event "seq=$1-$i" && echo "$1-$i" >>"$T_TMP/emitted.$1"
    done
}
producer p1 & p1=$!
producer p2 & p2=$!
k=0
while [ $k -lt $iters ]; do
    tel-sync --app crash --max-time 5 2>/dev/null & s=$!
    ms=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 250 ))
    sleep "$(printf '0.%03d' $ms)"
    kill -9 $s 2>/dev/null
    wait $s 2>/dev/null
    k=$((k + 1))
done
touch "$T_TMP/stop"
wait $p1 $p2
k=0
while [ "$(qcount crash)" -gt 0 ] && [ $k -lt 20 ]; do tel-sync --app crash --force --max-time 10; k=$((k + 1)); done
check_eq "crash loop: queue drained after $iters kills" "$(qcount crash)" 0
missing=$($PY - "$OUT" "$T_TMP"/emitted.p1 "$T_TMP"/emitted.p2 <<'EOF'
import json, sys
ids = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    ids.setdefault(e["props"]["seq"], set()).add(e["id"])
want = [l.strip() for f in sys.argv[2:] for l in open(f) if l.strip()]
missing = [s for s in want if s not in ids]
twice = [s for s, v in ids.items() if len(v) > 1]
print(len(want), len(missing), len(twice))
EOF
)
set -- $missing
if [ "${1:-0}" -gt 0 ]; then ok "crash loop: $1 events emitted"; else fail "crash loop: events emitted" "none"; fi
check_eq "crash loop: every queued event arrived" "${2:-x}" 0
check_eq "crash loop: a re-sent event keeps its id" "${3:-x}" 0
stop $CPID

t_done
