# SPDX-License-Identifier: MIT
# tests/t_storm.sh - a crash storm: 16 producers looping `tel emit` and a
# `tel-sync --force` loop share one queue, every one of those processes is
# SIGKILLed at random instants, and the collector (tel-collect) fails 30%
# of the batches on purpose.
#
# Afterwards the queue must open clean, a final clean drain must empty it,
# and every event whose `tel emit` exited 0 must have reached the
# collector; an event that arrived more than once must carry the same
# event id every time (tel-collect runs with --remember 1, so it lets
# re-sent events through instead of hiding them).
#
#   make check       300 kills (150 under sanitizers)
#   TEL_STRESS=1     10,000 kills
#   TEL_STORM_KILLS=N, TEL_STORM_SEED=N   override either
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
NPROD=16
kills_target=300
[ "${TEL_SANITIZED:-0}" = 1 ] && kills_target=150
[ "${TEL_STRESS:-0}" = 1 ] && kills_target=10000
kills_target=${TEL_STORM_KILLS:-$kills_target}
seed=${TEL_STORM_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "# storm seed $seed, $kills_target kills"

COLL="$T_TMP/collect.jsonl"
tel-collect -q --port 0 --port-file "$T_TMP/port" --out "$COLL" --fail-rate 0.3 --seed "$seed" \
    --remember 1 2>"$T_TMP/collect.err" &
CPID=$!
PORT=$(wait_port "$T_TMP/port")
[ -n "$PORT" ] || { fail "storm: tel-collect starts" "$(head -c 200 "$T_TMP/collect.err")"; t_done; }
export STORM_TELEMETRY_ENDPOINT="http://127.0.0.1:$PORT/v1/batch"

RUN="$T_TMP/run"
mkdir -p "$RUN"
# producer N: emits p=N-1, N-2, ... until told to stop; a line in acked.N
# for every emit that exited 0.  Its current child's pid is in pid.N for
# the killer, and removed as soon as the child is reaped.
producer() {
    n=0
    while [ ! -e "$RUN/stop" ]; do
        n=$((n + 1))
        tel emit --app storm storm.event "p=$1-$n" >/dev/null 2>>"$RUN/err.$1" &
        c=$!
        echo "$c" >"$RUN/pid.$1"
        wait "$c"
        rc=$?
        rm -f "$RUN/pid.$1"
        case "$rc" in
        0) echo "$1-$n" >>"$RUN/acked.$1" ;;
        137) ;;
        *) echo "$1-$n exit $rc" >>"$RUN/odd.$1" ;;
        esac
    done
}
syncer() {
    while [ ! -e "$RUN/stop" ]; do
        tel-sync --app storm --force --max-time 5 >/dev/null 2>>"$RUN/err.sync" &
        c=$!
        echo "$c" >"$RUN/pid.sync"
        wait "$c"
        rc=$?
        rm -f "$RUN/pid.sync"
        case "$rc" in 0|137) ;; *) echo "sync exit $rc" >>"$RUN/odd.sync" ;; esac
    done
}

loops=""
p=1
while [ $p -le $NPROD ]; do
    producer $p 2>/dev/null &
    loops="$loops $!"
    eval "ppid_$p=$!"
    p=$((p + 1))
done
syncer 2>/dev/null &
loops="$loops $!"
ppid_sync=$!

# The killer: a random victim after a random pause (0-15 ms), from a list
# drawn once with the seed.  A pid is killed only while its parent is the
# loop that started it, so a reused pid is never hit.
start=$(date +%s)
kills=0 tries=0
limit=$((kills_target * 20))
awk -v s="$seed" -v n="$limit" -v np="$NPROD" 'BEGIN { srand(s); for (i = 0; i < n; i++) {
    v = int(rand() * (np + 4)); if (v >= np) v = "sync"; else v = v + 1;
    printf "%s 0.%03d\n", v, int(rand() * 16) } }' >"$RUN/plan"
while read -r victim pause; do
    [ "$kills" -ge "$kills_target" ] && break
    tries=$((tries + 1))
    sleep "$pause"
    pid=$(cat "$RUN/pid.$victim" 2>/dev/null) || continue
    [ -n "$pid" ] || continue
    eval "want=\$ppid_$victim"
    parent=""
    read -r _ _ _ parent _ <"/proc/$pid/stat" 2>/dev/null || continue
    [ "$parent" = "$want" ] || continue
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
done <"$RUN/plan"
touch "$RUN/stop"
for l in $loops; do wait "$l" 2>/dev/null; done
elapsed=$(( $(date +%s) - start ))

if [ "$kills" -ge "$kills_target" ]; then ok "storm: $kills SIGKILLs in ${elapsed}s ($tries tries)"
else fail "storm: $kills_target SIGKILLs" "only $kills of $tries tries hit a process"; fi
cat "$RUN"/acked.* 2>/dev/null | sort -u >"$RUN/acked"
nacked=$(wc -l <"$RUN/acked" | tr -d ' ')
if [ "$nacked" -gt "$NPROD" ]; then ok "storm: $nacked emits acknowledged"
else fail "storm: emits acknowledged" "only $nacked"; fi
odd=$(cat "$RUN"/odd.* 2>/dev/null | head -n 5 | tr '\n' ';')
check_eq "storm: every process exited 0 or was killed" "$odd" ""
[ -z "$odd" ] || grep -v "^tel-sync: storm: \(HTTP\|collector\)" "$RUN"/err.* 2>/dev/null | sort | uniq -c | sort -rn | head -n 5 | sed "s/^/# /"

Q="$STATE/storm/telemetry"
check "storm: the queue opens clean after the storm (mdb_stat)" mdb_stat -s events "$Q"
check "storm: and every record is readable (tel show)" tel show --app storm

# Drain with nothing killed; 30% failures still come, so a few rounds.
r=0
while [ "$(tel show --app storm 2>/dev/null | wc -l)" -gt 0 ] && [ $r -lt 60 ]; do
    tel-sync --app storm --force --max-time 10 >/dev/null 2>&1
    r=$((r + 1))
done
check_eq "storm: a final clean drain empties the queue" "$(tel show --app storm 2>/dev/null | wc -l | tr -d ' ')" 0
check "storm: the queue still opens clean" mdb_stat -s events "$Q"
kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null

res=$($PY - "$COLL" "$RUN/acked" <<'EOF'
import json, sys
ids, batches = {}, {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    p = e["props"]["p"]
    ids.setdefault(p, set()).add(e["id"])
    batches.setdefault(e["id"], []).append(e["batch"])
acked = [l.strip() for l in open(sys.argv[2]) if l.strip()]
lost = [p for p in acked if p not in ids]
split = [p for p, v in ids.items() if len(v) > 1]
dups = sum(len(b) - 1 for b in batches.values())
print(len(lost), len(split), dups, len(ids), " ".join(lost[:5]) or "-")
EOF
)
set -- $res
check_eq "storm: events lost (acknowledged, never delivered)" "${1:-?}" 0
[ "${1:-1}" = 0 ] || echo "# lost, e.g.: $5"
check_eq "storm: a re-sent event always carries its first id" "${2:-?}" 0
ok "storm: ${4:-?} distinct events delivered, ${3:-?} re-sent copies seen"
if [ -n "${TEL_STORM_REPORT:-}" ]; then
    echo "kills=$kills acked=$nacked delivered=${4:-?} resent=${3:-?} lost=${1:-?} seconds=$elapsed seed=$seed" >>"$TEL_STORM_REPORT"
fi

t_done
