#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_collect_pg.sh - tel-collect on a real PostgreSQL (tests/pg.sh):
# two collectors sharing one database while tel-sync clients replay
# overlapping queues at both, the database going down and coming back,
# a database too slow to answer, and the export on a full disk.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
MKBATCH="$TEL_TOP/tests/mkbatch.py"
W="$T_TMP/w"
mkdir -p "$W"

if ! pg_start -c fsync=off; then
    fail "PostgreSQL starts for the test" "$PG_WHY"
    t_done
fi

# start NAME ARGS...: a collector on a free port; sets CPID, PORT, URL.
start() {
    sname="$1"; shift
    rm -f "$W/$sname.port"
    tel-collect --port 0 --port-file "$W/$sname.port" "$@" 2>"$W/$sname.err" &
    CPID=$!
    i=0
    while [ ! -s "$W/$sname.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    PORT=$(cat "$W/$sname.port" 2>/dev/null)
    URL="http://127.0.0.1:$PORT/v1/batch"
}
batch() {
    f="$1"; shift
    $PY "$MKBATCH" -o "$W/$f" "$@" >"$W/$f.ids" || echo "FAIL mkbatch: $*"
    BID=$(head -n 1 "$W/$f.ids")
}
# post FILE KEY URL [HDR]: prints the status; headers in HDR ($W/hdr)
post() {
    curl -s -o /dev/null -D "${4:-$W/hdr}" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/vnd.msgpack' -H 'Content-Encoding: gzip' \
        -H "Idempotency-Key: $2" --data-binary "@$W/$1" "$3"
}

# retry_post FILE KEY URL OUT: posts until 200, as a client would, backing
# off between tries; every status it got goes to OUT, so a batch that never
# got its 200 is reported with them.  A loaded machine (or a sanitized
# build) can keep a collector waiting on the database past its 5 s limit
# more than once, so the budget is generous.
retry_post() {
    tries=8
    [ "${TEL_SANITIZED:-0}" != 0 ] && tries=14
    : >"$4"
    pause=0.25
    i=0
    while [ $i -lt $tries ]; do
        code=$(post "$1" "$2" "$3" "$4.hdr")
        printf '%s ' "$code" >>"$4"
        [ "$code" = 200 ] && return 0
        sleep $pause
        case $pause in 0.25) pause=0.5 ;; 0.5) pause=1 ;; *) pause=2 ;; esac
        i=$((i + 1))
    done
    return 1
}

# ------------------------------------------- two collectors, one database
start a --db "$PG_URL" -q
APID=$CPID
URL_A=$URL
start b --db "postgres://tel@127.0.0.1:$PG_PORT/tel" -q
BPID=$CPID
URL_B=$URL
check_eq "two collectors start on one database" "$( [ -n "$URL_A" ] && [ -n "$URL_B" ] && echo yes)" yes
check_eq "the schema is there once" "$(pg_sql 'SELECT version FROM schema_version')" 4

# Two apps' queues of 250 events each, copied into four homes: eight
# tel-sync clients then deliver the same events, in batches of their own,
# half of them to each collector, all at once.
for app in twin1 twin2; do
    $PY -c 'for i in range(250): print("m_twin{i=\"%d\"} %d" % (i, i))' >"$W/$app.prom"
    tel metrics --app "$app" "$W/$app.prom" >/dev/null 2>&1
    tel show --app "$app" | $PY -c 'import json,sys
for l in sys.stdin: print(json.loads(l)["id"])' >>"$W/queued.ids"
done
for h in 2 3 4; do cp -a "$HOME" "$T_TMP/home$h"; done
n=0
PIDS=""
for h in "$HOME" "$T_TMP/home2" "$T_TMP/home3" "$T_TMP/home4"; do
    for app in twin1 twin2; do
        n=$((n + 1))
        if [ $((n % 2)) = 0 ]; then u=$URL_A; else u=$URL_B; fi
        # A client whose batch got 503 keeps it and tries again, as a
        # timer would run it again.
        (for _ in 1 2 3 4 5; do
            HOME="$h" tel-sync --app "$app" --endpoint "$u" --force -q
            [ "$(HOME="$h" tel status --app "$app" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["queue"]["events"])')" = 0 ] && break
            sleep 0.5
        done) &
        PIDS="$PIDS $!"
    done
done
# And the same batches posted to both collectors at the same instant.
for k in 1 2 3 4 5 6; do
    batch same$k --events 50
    retry_post "same$k" "$BID" "$URL_A" "$W/same$k.a.codes" &
    PIDS="$PIDS $!"
    retry_post "same$k" "$BID" "$URL_B" "$W/same$k.b.codes" &
    PIDS="$PIDS $!"
    sed 1d "$W/same$k.ids" >>"$W/queued.ids"
done
# Each one by its pid: under dash "$(jobs -p)" runs in a subshell that
# lists no jobs, so nothing was waited for and the counts below could be
# taken while a batch was still on its way.
for p in $PIDS; do wait "$p"; done
# A post that never got its 200 is the client's problem to retry later, not
# a loss; but then the counts below cannot hold, so it is named here.
unanswered=$T_FAILS
for k in 1 2 3 4 5 6; do
    for c in a b; do
        case " $(cat "$W/same$k.$c.codes")" in
        *" 200 ") ;;
        *) fail "both posts of a batch sent to both collectors at once get their 200" \
               "batch same$k at collector $c answered: $(cat "$W/same$k.$c.codes")" ;;
        esac
    done
done
[ "$T_FAILS" = "$unanswered" ] && ok "both posts of a batch sent to both collectors at once get their 200"
sort -u "$W/queued.ids" >"$W/want.ids"
pg_sql 'SELECT id FROM events ORDER BY id' >"$W/got.ids"
check_eq "every event delivered is stored" "$(comm -23 "$W/want.ids" "$W/got.ids" | wc -l | tr -d ' ')" 0
check_eq "rows = distinct event ids" "$(pg_sql 'SELECT count(*) = count(DISTINCT id) FROM events')|$(wc -l <"$W/got.ids" | tr -d ' ')" "t|$(wc -l <"$W/want.ids" | tr -d ' ')"
check_eq "a batch sent to both collectors at once is stored once" \
    "$(pg_sql "SELECT count(*) FROM events WHERE batch_id IN ($(for k in 1 2 3 4 5 6; do printf "'%s'," "$(head -n 1 "$W/same$k.ids")"; done)'')")" 300
for app in twin1 twin2; do
    for h in "$HOME" "$T_TMP/home2" "$T_TMP/home3" "$T_TMP/home4"; do
        c=$(HOME="$h" tel status --app "$app" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["queue"]["events"])' 2>/dev/null)
        [ "$c" = 0 ] || fail "every client's queue is empty" "$h $app: $c"
    done
done
ok "every client's queue is empty"

# ------------------------------------------- the first taker rolls back
# Collector A takes a batch and then cannot finish it: its events insert
# waits on a lock the test holds until A's 5 s limit rolls it back (503).
# Meanwhile B got the same batch and waits on A's batch row; only after
# A's rollback may it take the batch, store the events and answer 200.
# A B that took A's uncommitted row for "already stored" would answer 200
# for events nobody keeps.
# WAITING: how many sessions wait for a lock on the events table.
WAITING="SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE c.relname = 'events' AND NOT l.granted"
# until_sql SQL WANT: polls (up to 20 s) until SQL prints WANT.
until_sql() {
    i=0
    while [ "$(pg_sql "$1")" != "$2" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
}
batch race --events 20
RACE=$BID
(pg_sql "BEGIN; LOCK TABLE events IN SHARE MODE; SELECT 'held-events-lock', pg_sleep(60)" >/dev/null 2>&1) &
holder=$!
until_sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
           WHERE c.relname = 'events' AND l.mode = 'ShareLock' AND l.granted" 1
(post race "$RACE" "$URL_A" "$W/race.a.hdr" >"$W/race.a") &
ra=$!
until_sql "$WAITING" 1
# B comes a second after A began to wait, so its own wait on A's batch
# row ends (A's rollback) well within B's 5 s.
sleep 1
(post race "$RACE" "$URL_B" "$W/race.b.hdr" >"$W/race.b") &
rb=$!
wait "$ra"
# B now holds the batch and waits on the test's lock in turn.
until_sql "$WAITING" 1
pg_sql "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
        WHERE query LIKE '%held-events-lock%' AND pid <> pg_backend_pid()" >/dev/null
wait "$rb"
wait "$holder"
check_eq "the first taker of a batch rolls back: 503 from it, 200 from the other only once stored" \
    "$(cat "$W/race.a") $(cat "$W/race.b")" "503 200"
check_eq "and that batch is stored, once" \
    "$(pg_sql "SELECT count(*) FROM events WHERE batch_id = '$RACE'")|$(pg_sql "SELECT events FROM batches WHERE id = '$RACE'")" \
    "20|20"

# ------------------------------------------- the database goes away
pg_kill
batch down --events 3
t0=$(date +%s)
code=$(post down "$BID" "$URL_A")
check_eq "database down: 503" "$code" 503
check_eq "with Retry-After" "$(tr -d '\r' <"$W/hdr" | grep -ci '^Retry-After: [0-9]')" 1
check_eq "answered without waiting for a timeout" "$(( $(date +%s) - t0 < 8 ))" 1
pg_restart
i=0
while [ "$(post down "$BID" "$URL_A")" != 200 ] && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
check_eq "once it is back, the collector reconnects on its own" "$(post down "$BID" "$URL_A")" 200
check_eq "and the batch is stored once" "$(pg_sql "SELECT count(*) FROM events WHERE batch_id = '$BID'")" 3
batch down2 --events 1
check_eq "the other collector reconnects too" "$(post down2 "$BID" "$URL_B")" 200

# ------------------------------------------- a database too slow to answer
(pg_sql "BEGIN; LOCK TABLE batches IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(7); COMMIT;" >/dev/null 2>&1) &
lock=$!
sleep 0.5
batch slow --events 2
check_eq "a database too slow to answer: 503, not 200" "$(post slow "$BID" "$URL_A")" 503
wait "$lock"
check_eq "nothing of it stored" "$(pg_sql "SELECT count(*) FROM events WHERE batch_id = '$BID'")" 0
check_eq "its retry: 200" "$(post slow "$BID" "$URL_A")" 200
kill -TERM "$APID" "$BPID" 2>/dev/null
wait "$APID" "$BPID" 2>/dev/null

# ------------------------------------------- the export on a full disk
# RLIMIT_FSIZE (soft) makes writes past 3000 bytes fail as a full disk would:
# the first part of the write goes in, the rest fails.  The database is
# another process and is not limited.
sh -c 'trap "" XFSZ; exec prlimit --fsize=3000:unlimited tel-collect "$@"' - --port 0 --port-file "$W/full.port" \
    --db "$PG_URL" --out "$W/full.jsonl" -q 2>"$W/full.err" &
CPID=$!
i=0
while [ ! -s "$W/full.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
URL="http://127.0.0.1:$(cat "$W/full.port")/v1/batch"
batch f1 --events 2
check_eq "export: a batch that fits: 200" "$(post f1 "$BID" "$URL")" 200
batch f2 --events 12
F2=$BID
check_eq "export: a batch that does not fit: 503" "$(post f2 "$F2" "$URL")" 503
check_eq "the file ends with a whole line" "$(tail -c 1 "$W/full.jsonl" | od -An -c | tr -d ' ')" '\n'
check_eq "and holds only the first batch" "$(wc -l <"$W/full.jsonl" | tr -d ' ')" 2
check_eq "the database kept none of the refused batch" "$(pg_sql "SELECT count(*) FROM events WHERE batch_id = '$F2'")" 0
prlimit --pid "$CPID" --fsize=unlimited:unlimited
check_eq "room again: the retry is 200" "$(post f2 "$F2" "$URL")" 200
if $PY - "$W/full.jsonl" "$W/f2.ids" <<'EOF'
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1])]
want = open(sys.argv[2]).read().split()[1:]
assert len(ids) == 14 and len(set(ids)) == 14 and set(want) <= set(ids), ids
EOF
then ok "every line is whole JSON, each event once"
else fail "every line is whole JSON, each event once" "$(head -c 300 "$W/full.jsonl")"; fi
kill -TERM "$CPID"
wait "$CPID"

check_eq no_sanitizer_reports "$(cat "$W"/*.err | grep -c -e 'Sanitizer' -e 'runtime error')" 0
t_done
