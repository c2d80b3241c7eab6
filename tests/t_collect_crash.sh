#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_collect_crash.sh - tel-collect SIGKILLed at random instants while
# tel-sync clients upload to it, restarted each time on the same port and
# SQLite file.  A client deletes what it sent only on a 200, so when the
# queues are finally empty every event must be in the database, exactly
# once: a 200 given before the commit reached the file, or a batch half
# stored, would show as a missing or a doubled event.
#
#   TEL_CRASH_KILLS=N, TEL_CRASH_SEED=N   override the defaults
. "$(dirname "$0")/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
W="$T_TMP/w"
mkdir -p "$W"
DB="$W/crash.db"
kills_target=${TEL_CRASH_KILLS:-25}
[ "${TEL_STRESS:-0}" = 1 ] && kills_target=${TEL_CRASH_KILLS:-500}
seed=${TEL_CRASH_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "# crash seed $seed, $kills_target kills"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/v1/batch"

# Four apps' queues of 400 events each.  tel-sync sends at most 1000 per
# batch, so each client run is one to a few batches.
: >"$W/queued.ids"
for n in 1 2 3 4; do
    $PY -c 'for i in range(400): print("m_crash{i=\"%d\"} %d" % (i, i))' >"$W/m.prom"
    tel metrics --app "crash$n" "$W/m.prom" >/dev/null 2>&1
    tel show --app "crash$n" | $PY -c 'import json,sys
for l in sys.stdin: print(json.loads(l)["id"])' >>"$W/queued.ids"
done
check_eq "1600 events queued" "$(sort -u "$W/queued.ids" | wc -l | tr -d ' ')" 1600

collector() {
    rm -f "$W/port"
    tel-collect --port "$PORT" --port-file "$W/port" --db "sqlite:$DB" -q 2>>"$W/collect.err" &
    CPID=$!
    i=0
    while [ ! -s "$W/port" ] && [ $i -lt 200 ]; do sleep 0.02; i=$((i + 1)); done
}
queued() { tel status --app "$1" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["queue"]["events"])'; }

# Clients: each app's tel-sync in a loop until its queue is empty.
for n in 1 2 3 4; do
    (while [ ! -e "$W/stop" ] && [ "$(queued "crash$n")" != 0 ]; do
        tel-sync --app "crash$n" --endpoint "$URL" --force -q --max-time 5
        sleep 0.05
    done) &
done

# The killer: random pauses of 30-400 ms between a start and a SIGKILL.
collector
kills=0
rand=$seed
while [ $kills -lt "$kills_target" ]; do
    rand=$(( (rand * 1103515245 + 12345) % 2147483648 ))
    sleep "0.$(printf '%03d' $(( 30 + rand % 370 )))"
    kill -KILL "$CPID" 2>/dev/null
    wait "$CPID" 2>/dev/null
    kills=$((kills + 1))
    collector
done
echo "# $kills kills"

# Calm: the collector stays up until every queue is empty.
i=0
while [ $i -lt 300 ]; do
    left=0
    for n in 1 2 3 4; do left=$((left + $(queued "crash$n"))); done
    [ "$left" = 0 ] && break
    sleep 0.1
    i=$((i + 1))
done
touch "$W/stop"
# The job list goes through a file: "$(jobs -p)" runs in a subshell,
# which under dash lists nothing, so nothing was waited for.
jobs -p >"$W/jobs"
for p in $(cat "$W/jobs"); do [ "$p" = "$CPID" ] || wait "$p"; done
check_eq "every queue emptied after the crashes" "$left" 0
kill -TERM "$CPID"
wait "$CPID"

sort -u "$W/queued.ids" >"$W/want.ids"
sqlite3 "$DB" 'SELECT id FROM events ORDER BY id' >"$W/got.ids"
check_eq "no acknowledged event is missing from the database" "$(comm -23 "$W/want.ids" "$W/got.ids" | wc -l | tr -d ' ')" 0
check_eq "each is stored exactly once, and nothing else" "$(wc -l <"$W/got.ids" | tr -d ' ')" 1600
check_eq "the database is sound" "$(sqlite3 "$DB" 'PRAGMA integrity_check')" ok
check_eq no_sanitizer_reports "$(grep -c -e 'Sanitizer' -e 'runtime error' "$W/collect.err")" 0
t_done
