#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_collect_store.sh - tel-collect storing into SQLite: what lands in
# the database, duplicates across restarts, dropped counts, erasure
# requests, the JSON-lines export (SIGHUP), retention, /metrics bounds,
# and the requests a hostile or slow client makes.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
MKBATCH="$TEL_TOP/tests/mkbatch.py"
W="$T_TMP/w"
mkdir -p "$W"
DB="$W/events.db"

# start NAME ARGS...: a collector on a free port; sets CPID and URL.
start() {
    sname="$1"; shift
    rm -f "$W/port"
    tel-collect --port 0 --port-file "$W/port" "$@" 2>"$W/$sname.err" &
    CPID=$!
    i=0
    while [ ! -s "$W/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    BASE="http://127.0.0.1:$(cat "$W/port" 2>/dev/null)"
    URL="$BASE/v1/batch"
}
stop() { kill -TERM "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; }
batch() {
    f="$1"; shift
    $PY "$MKBATCH" -o "$W/$f" "$@" >"$W/$f.ids" || echo "FAIL mkbatch: $*"
    BID=$(head -n 1 "$W/$f.ids")
}
# post FILE KEY [TYPE]: prints the status; body in $W/resp, headers in $W/hdr.
post() {
    curl -s -o "$W/resp" -D "$W/hdr" -w '%{http_code}' --max-time 20 \
        -H "Content-Type: ${3:-application/vnd.msgpack}" -H 'Content-Encoding: gzip' \
        -H "Idempotency-Key: $2" --data-binary "@$W/$1" "$URL"
}
resp() { tr -d '\n' <"$W/resp"; }
sql() { sqlite3 "${2:-$DB}" "$1"; }
metric() { curl -s "$BASE/metrics" | grep "^$1 " | cut -d' ' -f2; }

A=aaaaaaaa-1111-4111-8111-111111111111
B=bbbbbbbb-2222-4222-8222-222222222222

# ------------------------------------------------------ the default store
start dflt
batch d1 --events 2
check_eq default_store_200 "$(post d1 "$BID")" 200
stop
check_eq "without --db the store is \$HOME/.local/state/tel-collect/events.db" \
    "$(sql 'SELECT count(*) FROM events' "$HOME/.local/state/tel-collect/events.db")" 2
XDG_STATE_HOME="$W/xdg" start xdg
check_eq xdg_state_home_200 "$(post d1 "$BID")" 200
stop
check_eq "XDG_STATE_HOME moves the default store" "$(sql 'SELECT count(*) FROM events' "$W/xdg/tel-collect/events.db")" 2

tel-collect --db "sqlite:$W/no/such/dir/x.db" --port 0 >/dev/null 2>"$W/bad.err"
check_eq "an unusable --db: exit 1" "$?" 1
check_eq "an unusable --db: one line naming it" "$(wc -l <"$W/bad.err" | tr -d ' ')$(grep -c 'cannot open --db' "$W/bad.err")" 11
tel-collect --db mysql://x/y >/dev/null 2>"$W/bad.err"
check_eq "a --db of another kind is a usage error" "$?" 2
tel-collect report --db "sqlite:$W/typo.db" >"$W/typo.out" 2>"$W/typo.err"
check_eq "report on a missing database: exit 1" "$?" 1
check_eq "report on a missing database: one line naming it, no report" \
    "$(wc -l <"$W/typo.err" | tr -d ' ')$(grep -c "no database at $W/typo.db" "$W/typo.err")$(wc -c <"$W/typo.out" | tr -d ' ')" 110
check_eq "report on a missing database creates none" "$(ls "$W" | grep -c typo.db)" 0

# ------------------------------------------------------ what is stored
umask 022   # the usual one: what tel-collect makes must be private anyway
start main --db "sqlite:$DB" --out "$W/out.jsonl"
batch b1 --events 3 --anon "$A" --dropped 7
B1=$BID
check_eq batch_200 "$(post b1 "$B1")" 200
check_eq "three rows, each id once" "$(sql 'SELECT count(DISTINCT id) FROM events')" 3
want=$(sed -n 2p "$W/b1.ids")
check_eq "a row holds the event as sent" \
    "$(sql "SELECT name, app, app_version, anon_id, batch_id, json_extract(props, '\$.cmd'), json_extract(context, '\$.os'), json_extract(context, '\$.cpus'), length(exec_id) FROM events WHERE id = '$want'")" \
    "cmd.run|mkbatch|1.2.3|$A|$B1|deploy|linux|4|36"
check_eq "ids are lower-case UUID text" "$(sql "SELECT count(*) FROM events WHERE id = lower(id) AND length(id) = 36")" 3
check_eq "ts is the event's time, received the arrival" \
    "$(sql "SELECT count(*) FROM events WHERE ts > 1600000000000 AND received >= ts")" 3
check_eq "the batch's dropped count is stored" "$(sql "SELECT events, dropped FROM batches WHERE id = '$B1'")" "3|7"
check_eq "and shown in /metrics" "$(metric 'tel_collect_client_dropped_total{app="mkbatch"}')" 7
check_eq "the export holds the same three events" "$(wc -l <"$W/out.jsonl" | tr -d ' ')" 3
# Readable by their owner only, as the client's own files are.
check_eq "the database, its -wal and -shm and the export are 0600" \
    "$(stat -c %a "$DB" "$DB-wal" "$DB-shm" "$W/out.jsonl" | tr '\n' ' ')" "600 600 600 600 "

# ------------------------------------------------------ across a restart
stop
start again --db "sqlite:$DB" --out "$W/out.jsonl"
check_eq "after a restart the same batch is a duplicate" "$(post b1 "$B1")$(resp)" '200{"accepted":0,"duplicates":3}'
batch b2 --events 2 --event-id "$(sed -n 2p "$W/b1.ids")" --anon "$A"
check_eq "a known event in a new batch is not stored again" "$(post b2 "$BID")$(resp)" '200{"accepted":1,"duplicates":1}'
check_eq "rows: distinct ids" "$(sql 'SELECT count(*) FROM events')" 4
check_eq "the export got only the new event" "$(wc -l <"$W/out.jsonl" | tr -d ' ')" 4

# ------------------------------------------------------ erasure
batch b3 --events 2 --anon "$B"
post b3 "$BID" >/dev/null
$PY "$MKBATCH" -o "$W/erase-a" --erase "$A" >/dev/null
check_eq "an erasure request: 200" "$(post erase-a - application/vnd.tel.erasure+msgpack)" 200
check_eq "it says how many events it deleted" "$(resp)" '{"erased":4}'
check_eq "no event of the erased id is left" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$A'")" 0
check_eq "events of other ids are kept" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$B'")" 2
check_eq "the id is remembered" "$(sql "SELECT anon_id, deleted FROM erasures")" "$A|4"
batch b4 --events 2 --anon "$A"
check_eq "a late batch of the erased id is answered 200" "$(post b4 "$BID")$(resp)" '200{"accepted":0,"duplicates":0,"erased":true}'
check_eq "and stores nothing" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$A'")" 0
check_eq "nor exports anything" "$(grep -c "$(sed -n 2p "$W/b4.ids")" "$W/out.jsonl")" 0
check_eq "repeating the request deletes nothing more" "$(post erase-a - application/vnd.tel.erasure+msgpack)$(resp)" '200{"erased":0}'
check_eq "erasures are counted in /metrics" "$(metric tel_collect_erasures_total) $(metric tel_collect_erased_events_total)" "2 4"
$PY "$MKBATCH" -o "$W/erase-bad" --erase nil >/dev/null
check_eq "an erasure request without an id: 400" "$(post erase-bad - application/vnd.tel.erasure+msgpack)" 400
check_eq "a batch sent as an erasure request: 400" "$(post b3 - application/vnd.tel.erasure+msgpack)" 400

# ------------------------------------------------------ export and SIGHUP
mv "$W/out.jsonl" "$W/out.jsonl.1"
kill -HUP "$CPID"
sleep 0.3
batch b5 --events 2 --anon "$B"
check_eq "after SIGHUP: 200" "$(post b5 "$BID")" 200
check_eq "SIGHUP reopened the export under its name" "$(wc -l <"$W/out.jsonl" 2>/dev/null | tr -d ' ')" 2
check_eq "the rotated file was left alone" "$(wc -l <"$W/out.jsonl.1" | tr -d ' ')" 6
if $PY -c 'import json,sys
for f in sys.argv[1:]:
    for l in open(f): json.loads(l)' "$W/out.jsonl" "$W/out.jsonl.1" 2>/dev/null; then ok "every exported line is JSON"
else fail "every exported line is JSON" "a line does not parse"; fi

# ------------------------------------------------------ /metrics stays sane
batch m1 --metric-label "$(printf 'a\001b')" --events 1
post m1 "$BID" >/dev/null
batch m2 --metric-label nul --events 1
post m2 "$BID" >/dev/null
curl -s "$BASE/metrics" >"$W/metrics"
if $PY - "$W/metrics" <<'EOF'
import re, sys
data = open(sys.argv[1], "rb").read()
assert b"\0" not in data and b"\r" not in data and b"\x01" not in data, "control bytes"
sample = re.compile(rb'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? [-+0-9.eE]+$')
for line in data.split(b"\n"):
    if line and not line.startswith(b"#"):
        assert sample.match(line), line
assert b'lbl="a\xef\xbf\xbdb"' in data, "the control byte shows as U+FFFD"
EOF
then ok "label values with NUL or control bytes keep the exposition valid"
else fail "label values with NUL or control bytes keep the exposition valid" "$(head -c 300 "$W/metrics")"; fi

# 1,320 series of keys near the 2 KiB bound: more bytes than a map keeps.
for n in 1 2 3 4 5 6; do
    batch big$n --metric-label long --events 220
    post big$n "$BID" >/dev/null
done
size=$(curl -s "$BASE/metrics" | wc -c)
if [ "$size" -lt 3000000 ] && [ "$(metric tel_collect_series_evicted_total)" -gt 0 ]; then
    ok "/metrics is bounded in bytes ($size bytes, older series evicted)"
else fail "/metrics is bounded in bytes" "$size bytes, evicted $(metric tel_collect_series_evicted_total)"; fi
batch huge --metric-label huge --events 2
post huge "$BID" >/dev/null
check_eq "a series key over 2 KiB is not kept" "$(metric tel_collect_series_refused_total)" 2

# ------------------------------------------------------ hostile requests
batch dl --events 1
if $PY - "$(cat "$W/port")" "$W/dl" "$BID" >"$W/dup.out" 2>&1 <<'EOF'
import socket, sys
body = open(sys.argv[2], "rb").read()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
head = ("POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.msgpack\r\n"
        "Content-Encoding: gzip\r\nIdempotency-Key: %s\r\nContent-Length: %d\r\n"
        "Content-Length: %d\r\n\r\n" % (sys.argv[3], len(body), len(body) + 5)).encode()
s.sendall(head + body)
reply = s.recv(4096).decode("latin-1")
print(reply.split("\r\n")[0])
EOF
then check_eq "two Content-Length headers: 400" "$(head -n 1 "$W/dup.out" | cut -d' ' -f2)" 400
else fail "two Content-Length headers: 400" "$(tail -n 1 "$W/dup.out")"; fi
check_eq "and nothing stored" "$(sql "SELECT count(*) FROM events WHERE batch_id = '$BID'")" 0
stop

# Slow clients: from 127.0.0.2, more connections than allowed per address,
# each sending a header line every 0.5 s.  They are cut at the header
# deadline, the ones over the per-address bound at once, and an upload
# from another address goes through meanwhile.
start slow --db "sqlite:$DB" --header-timeout 2 --max-per-ip 4
$PY - "$(cat "$W/port")" >"$W/slow.out" 2>&1 <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
conns = []
for i in range(8):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", port))
    s.settimeout(0.01)
    conns.append([s, None, b"POST / HTTP/1.1\r\n"])
start = time.monotonic()
while time.monotonic() - start < 8 and any(c[1] is None for c in conns):
    for c in conns:
        if c[1] is not None:
            continue
        try:
            c[0].send(c[2])
            c[2] = b"X-Slow: 1\r\n"
            if c[0].recv(1) == b"":
                c[1] = time.monotonic() - start
        except socket.timeout:
            pass
        except OSError:
            c[1] = time.monotonic() - start
    time.sleep(0.3)
ends = sorted(round(c[1], 1) if c[1] is not None else 99 for c in conns)
print(" ".join(str(e) for e in ends))
EOF
spid=$!
sleep 1
batch fast --events 1
check_eq "an upload from another address goes through" "$(post fast "$BID")" 200
wait "$spid"
ends=$(cat "$W/slow.out")
if $PY -c 'import sys; e=[float(x) for x in sys.argv[1].split()]; sys.exit(not (len(e) == 8 and e[3] < 1.5 and e[4] < 4.5 and e[-1] < 4.5))' "$ends"; then
    ok "slow clients are cut: past 4 per address at once, the rest at the header deadline"
else fail "slow clients are cut" "connections ended after: $ends s"; fi
stop

# ------------------------------------------------------ store failure: 503
start busy --db "sqlite:$DB"
# The lock is held until the test has its answer (at most 20 s), however
# slowly the machine runs.
batch locked --events 2
$PY - "$DB" "$W/lock.held" "$W/lock.release" <<'EOF' &
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
end = time.monotonic() + 20
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    time.sleep(0.05)
c.execute("ROLLBACK")
EOF
lpid=$!
i=0
while [ ! -e "$W/lock.held" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
check_eq "a store that cannot be written: 503" "$(post locked "$BID")" 503
check_eq "with Retry-After" "$(tr -d '\r' <"$W/hdr" | grep -ci '^Retry-After: [0-9]')" 1
touch "$W/lock.release"
wait "$lpid"
check_eq "nothing of it stored" "$(sql "SELECT count(*) FROM batches WHERE id = '$BID'")" 0
check_eq "the retry once the store is back: 200" "$(post locked "$BID")$(resp)" '200{"accepted":2,"duplicates":0}'
stop

# ------------------------------------------------------ retention
batch old --events 3 --age-days 40
batch new --events 2 --age-days 1
start r1 --db "sqlite:$W/retain.db"
post old "$(head -n 1 "$W/old.ids")" >/dev/null
post new "$(head -n 1 "$W/new.ids")" >/dev/null
stop
start r2 --db "sqlite:$W/retain.db" --retain-days 30
i=0
while [ "$(sql 'SELECT count(*) FROM events' "$W/retain.db")" != 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check_eq "--retain-days deletes older events" "$(sql 'SELECT count(*) FROM events' "$W/retain.db")" 2
check_eq "and keeps newer ones" "$(sql "SELECT count(*) FROM events WHERE ts > (strftime('%s','now') - 86400 * 30) * 1000" "$W/retain.db")" 2
stop

# ------------------------------------------------------ contexts
start ctx --db "sqlite:$W/ctx.db"
# Events of a batch that take turns among three contexts each keep their
# own, whichever layout carried them.
for layout in "" --columns; do
    batch turns --events 7 --contexts 3 $layout
    check_eq "a batch of three contexts taking turns: 200 ${layout:-(rows)}" "$(post turns "$BID")" 200
    check_eq "each event keeps its own context, app version and all ${layout:-(rows)}" \
        "$(sql "SELECT group_concat(c, ',') FROM (SELECT json_extract(context, '\$.cpus') || ':' || COALESCE(app_version, '-') || ':' || COALESCE(json_extract(context, '\$.app_version'), '-') AS c FROM events WHERE batch_id = '$BID' ORDER BY ts)" "$W/ctx.db")" \
        "1:1.2.3:1.2.3,2:1.2.3:1.2.3,3:-:-,1:1.2.3:1.2.3,2:1.2.3:1.2.3,3:-:-,1:1.2.3:1.2.3"
done
stop

check_eq no_sanitizer_reports "$(cat "$W"/*.err | grep -c -e 'Sanitizer' -e 'runtime error')" 0
t_done
