#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_erasure.sh - erasure end to end: a program that offers it, `tel
# forget`, and tel-sync carrying the request to a real tel-collect with a
# SQLite store (the old id's events deleted, a late batch of it dropped,
# the new id's events kept), and to a raw sink that keeps every byte (the
# request alone on its own connection, carrying the old id and nothing
# else); a request outliving `tel disable`, a collector without erasure,
# and a program that does not offer it.
. "$(dirname "$0")/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
PY=/usr/bin/python3
export TEL_SYNC_PATH=/bin/true
ERASE_TYPE=application/vnd.tel.erasure+msgpack

BG=""
trap 'kill $BG 2>/dev/null; t_cleanup' EXIT
wait_file() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
# start_sink NAME [rawsink options]: sets SINK_URL and SINK (its directory).
start_sink() {
    SINK="$T_TMP/$1"
    n=$1; shift
    $PY "$TEL_TOP/tests/rawsink.py" --port-file "$T_TMP/$n.port" --dir "$SINK" "$@" &
    BG="$BG $!"
    wait_file "$T_TMP/$n.port"
    SINK_URL="http://127.0.0.1:$(cat "$T_TMP/$n.port")/v1/batch"
}
nreq() { ls "$1"/req-*.head 2>/dev/null | wc -l | tr -d ' '; }
conns() { $PY -c 'import json,sys; print(sum(v["conns"] for v in json.load(open(sys.argv[1])).values()))' "$1/counts.json"; }
cookie() { cat "$STATE/$1/telemetry-cookie" 2>/dev/null; }
pending() { ls "$STATE/$1/telemetry-erasure" 2>/dev/null | wc -l | tr -d ' '; }
# the exact request body for an id: {"v": 1, "x": <16 bytes>}, as hex
want_hex() { $PY -c 'import sys,uuid; print((b"\x82\xa1v\x01\xa1x\xc4\x10" + uuid.UUID(sys.argv[1]).bytes).hex())' "$1"; }
raw_hex() { $PY -c 'import sys; print(open(sys.argv[1], "rb").read().hex())' "$1"; }
hex_of() { $PY -c 'import sys,uuid; print(uuid.UUID(sys.argv[1]).hex)' "$1"; }

# ------------------------------------------------ against tel-collect (SQLite)
DB="$T_TMP/events.db"
rm -f "$T_TMP/tc.port"
tel-collect -q --port 0 --port-file "$T_TMP/tc.port" --db "sqlite:$DB" 2>"$T_TMP/tc.err" &
TCPID=$!
BG="$BG $TCPID"
wait_file "$T_TMP/tc.port"
BASE="http://127.0.0.1:$(cat "$T_TMP/tc.port")"
URL="$BASE/v1/batch"
sql() { $PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DB" "$1"; }
metric() { curl -s "$BASE/metrics" | grep "^$1 " | cut -d' ' -f2; }

tel emit --app erapp --endpoint "$URL" --offer-erasure cmd.run n=1
tel emit --app erapp cmd.run n=2
A=$(cookie erapp)
check "the offer is recorded beside the queue" grep -qx 'erasure on' "$STATE/erapp/telemetry-declared"
tel-sync --app erapp
check_eq "events of id A are stored" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$A'")" 2

tel forget --app erapp 2>"$T_TMP/forget.err"
check "tel forget says the collector will be asked to erase" grep -q 'tel-sync will ask the collector to erase' "$T_TMP/forget.err"
check_eq "tel forget leaves one erasure request" "$(pending erapp)" 1
check "it names the old id" grep -q "^erase 1 $A\$" "$STATE/erapp/telemetry-erasure/$A"
check_eq "the cookie is gone" "$(cookie erapp)" ""
tel status --app erapp >"$T_TMP/status.txt"
check "tel status says a request waits" grep -q '^erasure:  .*offered.*1 request to send' "$T_TMP/status.txt"
check_not "without printing the id" grep -q "$A" "$T_TMP/status.txt"
tel status --app erapp --json >"$T_TMP/status.json"
check_eq "tel status --json counts it" \
    "$($PY -c 'import json,sys; e=json.load(open(sys.argv[1]))["erasure"]; print(e["offered"], e["pending"])' "$T_TMP/status.json")" \
    "True 1"
check_not "nor in JSON" grep -q "$A" "$T_TMP/status.json"

tel emit --app erapp --endpoint "$URL" cmd.run n=3
B=$(cookie erapp)
check "the next event has a new id" test -n "$B" -a "$B" != "$A"
check_rc "tel-sync sends the request and the new events: exit 0" 0 tel-sync --app erapp
check_eq "the collector holds no event of A" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$A'")" 0
check_eq "the new id's event arrived" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$B'")" 1
check_eq "the collector remembers A" "$(sql "SELECT count(*) FROM erasures WHERE anon_id = '$A'")" 1
check_eq "and did not erase B" "$(sql "SELECT count(*) FROM erasures WHERE anon_id = '$B'")" 0
check_eq "the request is deleted after the 2xx" "$(pending erapp)" 0
check_eq "/metrics counts one erasure" "$(metric tel_collect_erasures_total)" 1
$PY "$TEL_TOP/tests/mkbatch.py" -o "$T_TMP/late" --events 2 --anon "$A" >/dev/null
curl -s -o /dev/null --max-time 20 -H 'Content-Type: application/vnd.msgpack' \
    -H 'Content-Encoding: gzip' --data-binary "@$T_TMP/late" "$URL"
check_eq "a late batch of A is dropped" "$(sql "SELECT count(*) FROM events WHERE anon_id = '$A'")" 0
check_rc "a second tel-sync has nothing more to send: exit 0" 0 tel-sync --app erapp
check_eq "and /metrics still counts one" "$(metric tel_collect_erasures_total)" 1
stop_pid "$TCPID"

# ------------------------------------------------ every byte on the wire
start_sink wire
tel emit --app wire --endpoint "$SINK_URL" --offer-erasure cmd.run
A=$(cookie wire)
tel forget --app wire 2>/dev/null
tel emit --app wire --endpoint "$SINK_URL" cmd.run
B=$(cookie wire)
tel-sync --app wire
check_eq "two requests: the erasure and one batch" "$(nreq "$SINK")" 2
check_eq "each on a connection of its own" "$(conns "$SINK")" 2
check "the erasure request goes first" grep -qi "^Content-Type: $ERASE_TYPE" "$SINK/req-1.head"
check_eq "its body is the old id and nothing else" "$(raw_hex "$SINK/req-1.raw")" "$(want_hex "$A")"
check_not "it carries no Idempotency-Key" grep -qi '^Idempotency-Key' "$SINK/req-1.head"
raw_hex "$SINK/req-1.raw" >"$SINK/req-1.hex"
check_not "nor the new id" grep -q "$(hex_of "$B")" "$SINK/req-1.hex"
raw_hex "$SINK/req-2.raw" >"$SINK/req-2.hex"
check "the batch carries the new id" grep -q "$(hex_of "$B")" "$SINK/req-2.hex"
check_not "and not the old one" grep -q "$(hex_of "$A")" "$SINK/req-2.hex"

# ------------------------------------------------ a forget, then tel disable
start_sink off
tel emit --app offapp --endpoint "$SINK_URL" --offer-erasure cmd.run
A=$(cookie offapp)
tel forget --app offapp 2>/dev/null
tel disable --app offapp 2>/dev/null
check_eq "the request outlives tel disable" "$(pending offapp)" 1
check_rc "tel-sync --all with telemetry off: exit 0" 0 tel-sync --all
check_eq "the request still went, alone" "$(nreq "$SINK")" 1
check_eq "carrying the old id" "$(raw_hex "$SINK/req-1.raw")" "$(want_hex "$A")"
check_eq "and is deleted" "$(pending offapp)" 0

# ------------------------------------------------ debug runs send nothing
start_sink dbg
tel emit --app dbgapp --endpoint "$SINK_URL" --offer-erasure cmd.run
tel forget --app dbgapp 2>/dev/null
DBGAPP_TELEMETRY_DEBUG=1 tel-sync --app dbgapp 2>/dev/null
check_eq "a debug run sends no erasure request" "$(conns "$SINK")" 0
check_eq "and keeps it" "$(pending dbgapp)" 1

# ------------------------------------------------ a collector without erasure
start_sink old --status 404 --first 1000
tel emit --app oldapp --endpoint "$SINK_URL" --offer-erasure cmd.run
tel forget --app oldapp 2>/dev/null
check_rc "a 404 is no failure of tel-sync: exit 0" 0 tel-sync --app oldapp
check_eq "the request is kept after a 404" "$(pending oldapp)" 1
tel status --app oldapp >"$T_TMP/old.txt"
check "tel status shows it deferred" grep -q '^erasure: .*1 deferred, next attempt in 24 h' "$T_TMP/old.txt"
tel-sync --app oldapp
check_eq "the next run waits out the day" "$(nreq "$SINK")" 1
i=1
while [ $i -lt 9 ]; do tel-sync --force --app oldapp; i=$((i + 1)); done
check_eq "nine 404s: still kept" "$(pending oldapp)" "1"
tel-sync --force --app oldapp
check_eq "the tenth gives it up" "$(pending oldapp) $(nreq "$SINK")" "0 10"

# ------------------------------------------------ a program that does not offer it
start_sink none
tel emit --app plain --endpoint "$SINK_URL" cmd.run
tel forget --app plain 2>"$T_TMP/forget.err"
check_eq "without the offer, forget leaves no request" "$(pending plain)" 0
check_not "and says nothing of erasure" grep -q erase "$T_TMP/forget.err"
tel-sync --app plain
check_eq "and tel-sync sends nothing" "$(conns "$SINK")" 0

t_done
