#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_collect.sh - tel-collect, driven over real HTTP with curl, with
# batches built by tests/mkbatch.py (python3-msgpack, independent of libtel).
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
MKBATCH="$TEL_TOP/tests/mkbatch.py"
W="$T_TMP/w"
mkdir -p "$W"

# start NAME ARGS...: starts a collector on a free port, with a database of
# its own ($W/NAME.db); sets CPID and URL.
start() {
    sname="$1"; shift
    rm -f "$W/port"
    tel-collect --port 0 --port-file "$W/port" --db "sqlite:$W/$sname.db" "$@" 2>"$W/$sname.err" &
    CPID=$!
    i=0
    while [ ! -s "$W/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    URL="http://127.0.0.1:$(cat "$W/port" 2>/dev/null)/v1/batch"
}
# reap SECS: waits for the collector to exit, with its status in EXIT_RC;
# one that is still there after SECS seconds is killed (EXIT_RC 137) and
# fails the test, so that a hung collector never hangs the suite.
reap() {
    # Short sleeps, so that the watchdog, once killed, is gone at once.
    (i=0; while [ $i -lt $(($1 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
     kill -KILL "$CPID" 2>/dev/null) &
    watchdog=$!
    wait "$CPID"
    EXIT_RC=$?
    kill "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    [ "$EXIT_RC" -ne 137 ] || fail "exit_$sname" "the collector did not exit within $1 s"
}
# stop: SIGTERM, then the collector's exit status in STOP_RC.
stop() { kill -TERM "$CPID" 2>/dev/null; reap 10; STOP_RC=$EXIT_RC; }

# batch FILE ARGS...: builds a batch; BID is its id, EIDS its event ids.
batch() {
    f="$1"; shift
    $PY "$MKBATCH" -o "$W/$f" "$@" >"$W/$f.ids" || echo "FAIL mkbatch: $*"
    BID=$(head -n 1 "$W/$f.ids")
    EIDS=$(tail -n +2 "$W/$f.ids")
}
# post FILE KEY [curl args]: prints the status; body in $W/resp, headers in $W/hdr.
post() {
    f="$1"; k="$2"; shift 2
    curl -s -o "$W/resp" -D "$W/hdr" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/vnd.msgpack' -H 'Content-Encoding: gzip' \
        -H "Idempotency-Key: $k" "$@" --data-binary "@$W/$f" "$URL"
}
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# ---------------------------------------------------------------- command line
tel-collect --help >"$W/help" 2>"$W/help.err"
check_eq help_exit_0 "$?" 0
missing=""
for o in --listen --port --port-file --out --db --retain-days --token --token-file --max-body \
         --header-timeout --body-timeout --max-per-ip --remember \
         --status --retry-after --delay --drop --fail-rate --seed --fail-first \
         --exit-after --quiet --verbose --help --version "Exit status"; do
    grep -q -- "$o" "$W/help" || missing="$missing $o"
done
check_eq help_lists_every_option "$missing" ""
check_eq help_nothing_on_stderr "$(wc -c <"$W/help.err" | tr -d ' ')" 0

check_eq version "$(tel-collect -V)" "tel-collect $(sed -n 's/^#define TEL_VERSION "\(.*\)"/\1/p' "$TEL_TOP/include/tel.h")"

for bad in "--bogus" "--port 70000" "--port x" "--fail-rate 2" "--listen nohost" \
           "--status 99" "--delay" "--exit-after 0" "extra" "--db mysql://x" "--retain-days 0" \
           "--header-timeout 0" "--max-per-ip x"; do
    # shellcheck disable=SC2086
    tel-collect $bad >"$W/bad.out" 2>"$W/bad.err"
    rc=$?
    n=$(grep -c '^tel-collect: ' "$W/bad.err")
    if [ "$rc" -eq 2 ] && [ "$n" -eq 1 ] && [ ! -s "$W/bad.out" ]; then
        ok "usage_error [$bad]"
    else
        fail "usage_error [$bad]" "rc=$rc, $n error lines: $(head -n 1 "$W/bad.err")"
    fi
done

# ------------------------------------------------- port 0, port file, storing
start main --out "$W/events.jsonl"
case "$(cat "$W/port" 2>/dev/null)" in
    ''|*[!0-9]*|0) fail port_file "holds '$(cat "$W/port" 2>/dev/null)'" ;;
    *) ok port_file ;;
esac

# A second collector on the same port cannot bind: one line, exit 1.
tel-collect --port "$(cat "$W/port")" --db "sqlite:$W/bind.db" >/dev/null 2>"$W/bind.err"
rc=$?
check_eq bind_failure_exit_1 "$rc" 1
check_eq bind_failure_one_line "$(wc -l <"$W/bind.err" | tr -d ' ')" 1

batch b1 --events 3 --anon 11111111-2222-4333-8444-555555555555 --name deploy.done
B1=$BID
E1=$EIDS
check_eq valid_batch_200 "$(post b1 "$B1")" 200
check_eq valid_batch_body "$(tr -d '\n' <"$W/resp")" '{"accepted":3,"duplicates":0}'
check_eq valid_batch_3_lines "$(lines "$W/events.jsonl")" 3

# Every line is JSON with the event's id, name, properties, the batch id
# and a receive time; checked with Python's own JSON parser.
echo "$E1" >"$W/e1.want"
if $PY - "$W/events.jsonl" "$W/e1.want" "$B1" >"$W/json.err" 2>&1 <<'EOF'
import json, sys, time
lines = [json.loads(l) for l in open(sys.argv[1])]
want = open(sys.argv[2]).read().split()
def find(d, *keys):
    for k in keys:
        if k in d:
            return d[k]
    raise KeyError(keys)
ids = [find(l, "id", "i") for l in lines]
assert ids == want, (ids, want)
now = time.time() * 1000
for n, l in enumerate(lines):
    assert find(l, "name", "n") == "deploy.done", l
    props = find(l, "props", "properties", "p")
    assert props["index"] == n and props["ok"] is True and props["ratio"] == 0.5 \
        and props["cmd"] == "deploy", props
    assert l["batch"] == sys.argv[3], l
    assert isinstance(l["received"], int) and abs(l["received"] - now) < 60000, l
    assert "11111111-2222-4333-8444-555555555555" in json.dumps(l), l
EOF
then ok json_lines_content; else fail json_lines_content "$(tail -n 3 "$W/json.err")"; fi

check_eq same_batch_again_200 "$(post b1 "$B1")" 200
check_eq same_batch_again_body "$(tr -d '\n' <"$W/resp")" '{"accepted":0,"duplicates":3}'
check_eq same_batch_again_writes_nothing "$(lines "$W/events.jsonl")" 3

# A new batch re-sending one known event id and one new event.
batch b2 --events 2 --event-id "$(echo "$E1" | head -n 1)"
check_eq resent_event_200 "$(post b2 "$BID")" 200
check_eq resent_event_body "$(tr -d '\n' <"$W/resp")" '{"accepted":1,"duplicates":1}'
check_eq resent_event_one_line "$(lines "$W/events.jsonl")" 4
new_id=$(echo "$EIDS" | tail -n 1)
check_eq resent_event_new_id_stored "$(grep -c "$new_id" "$W/events.jsonl")" 1

# No lasting id: nil anonymous id on the batch and on every event.
batch b3 --events 1 --anon none
check_eq nil_anon_200 "$(post b3 "$BID")" 200

# ------------------------------------------------------------------ refusals
batch good --events 1
GOOD=$BID
code=$(curl -s -o "$W/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Content-Encoding: gzip' -H "Idempotency-Key: $GOOD" --data-binary "@$W/good" "$URL")
check_eq wrong_content_type_415 "$code" 415
code=$(curl -s -o "$W/resp" -w '%{http_code}' -H 'Content-Type: application/vnd.msgpack' \
    -H 'Content-Encoding: br' -H "Idempotency-Key: $GOOD" --data-binary "@$W/good" "$URL")
check_eq wrong_content_encoding_415 "$code" 415
code=$(curl -s -o "$W/resp" -w '%{http_code}' -H 'Content-Type: application/vnd.msgpack' \
    -H "Idempotency-Key: $GOOD" --data-binary "@$W/good" "$URL")
check_eq no_content_encoding_415 "$code" 415
code=$(curl -s -o "$W/resp" -w '%{http_code}' "$URL")
check_eq get_405 "$code" 405

code=$(curl -s -o "$W/resp" -w '%{http_code}' -H 'Content-Type: application/vnd.msgpack' \
    -H 'Content-Encoding: gzip' --data-binary "@$W/good" "$URL")
check_eq no_idempotency_key_400 "$code" 400
check_eq wrong_idempotency_key_400 "$(post good 00000000-0000-4000-8000-000000000000)" 400

for kind in gzip gzip-cut not-msgpack truncated version mixed-anon; do
    batch "bad-$kind" --events 2 --corrupt "$kind"
    check_eq "corrupt_${kind}_400" "$(post "bad-$kind" "$BID")" 400
done
batch big --events 1001
check_eq over_1000_events_413 "$(post big "$BID")" 413
check_eq refusals_store_nothing "$(lines "$W/events.jsonl")" 5
check_eq good_after_refusals_200 "$(post good "$GOOD")" 200

# A 100 MiB zip bomb is refused quickly, without the memory to hold it.
batch bomb --bomb 100
t0=$(date +%s)
check_eq zip_bomb_413 "$(post bomb "$BID")" 413
check_eq zip_bomb_quick "$(( $(date +%s) - t0 < 5 ))" 1
hwm=$(sed -n 's/^VmHWM:[^0-9]*\([0-9]*\) kB/\1/p' "/proc/$CPID/status")
limit=65536
if [ -n "$hwm" ] && [ "$hwm" -lt "$limit" ]; then ok zip_bomb_rss_small
else fail zip_bomb_rss_small "VmHWM ${hwm:-?} kB, limit $limit kB"; fi

stop
check_eq sigterm_exit_0 "$STOP_RC" 0
check_eq sigterm_summary "$(tail -n 1 "$W/main.err")" \
    "tel-collect: 4 batches, 6 events accepted, 4 duplicates, 14 rejected"

# ------------------------------------------------------------- body limits
start small --out "$W/small.jsonl" --max-body 600 --quiet
batch b20 --events 20
check_eq max_body_413 "$(post b20 "$BID")" 413
# Without a Content-Length the limit is enforced while the body arrives.
check_eq max_body_chunked_413 "$(post b20 "$BID" -H 'Transfer-Encoding: chunked')" 413
batch b1s --events 1
check_eq under_max_body_200 "$(post b1s "$BID")" 200
stop
check_eq quiet_no_summary "$(wc -c <"$W/small.err" | tr -d ' ')" 0

# ------------------------------------------------------------------- token
start tok --out "$W/tok.jsonl" --token s3cr3t-t0ken -v
batch bt --events 2
check_eq token_missing_401 "$(post bt "$BID")" 401
check_eq token_wrong_401 "$(post bt "$BID" -H 'Authorization: Bearer s3cr3t-t0kem')" 401
check_eq token_prefix_401 "$(post bt "$BID" -H 'Authorization: Bearer s3cr3t')" 401
check_eq token_right_200 "$(post bt "$BID" -H 'Authorization: Bearer s3cr3t-t0ken')" 200
check_eq token_stored "$(lines "$W/tok.jsonl")" 2
stop
check_eq verbose_line_per_request "$(grep -c '^tel-collect: POST /v1/batch ' "$W/tok.err")" 4
check_eq verbose_shows_status "$(grep -c ' POST /v1/batch 401 ' "$W/tok.err")" 3
check_eq token_never_logged "$(grep -c s3cr3t "$W/tok.err")" 0

printf 'from-a-file\n' >"$W/token"
start tokf --token-file "$W/token" --out "$W/tokf.jsonl"
check_eq token_file_200 "$(post bt "$BID" -H 'Authorization: Bearer from-a-file')" 200
stop

# --------------------------------------------------------- fault injection
start st --out "$W/st.jsonl" --status 503 --retry-after 7
check_eq status_503 "$(post good "$GOOD")" 503
check_eq retry_after_header "$(tr -d '\r' <"$W/hdr" | grep -i '^Retry-After:')" "Retry-After: 7"
check_eq status_stores_nothing "$(lines "$W/st.jsonl")" 0
stop

start dr --out "$W/dr.jsonl" --drop
curl -s -o /dev/null --max-time 10 -H 'Content-Type: application/vnd.msgpack' \
    -H 'Content-Encoding: gzip' -H "Idempotency-Key: $GOOD" --data-binary "@$W/good" "$URL"
check_eq drop_empty_reply "$?" 52
check_eq drop_stores_nothing "$(lines "$W/dr.jsonl")" 0
stop

start ff --out "$W/ff.jsonl" --fail-first 2
codes="$(post good "$GOOD") $(post good "$GOOD") $(post good "$GOOD")"
check_eq fail_first_2 "$codes" "503 503 200"
check_eq fail_first_stores_once "$(lines "$W/ff.jsonl")" 1
stop

# --fail-rate: the same seed gives the same answers; both kinds occur.
rate_run() {
    start fr --out /dev/null --fail-rate 0.5 --seed "$1"
    s=""
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do s="$s$(post good "$GOOD" | cut -c1)"; done
    stop
    echo "$s"
}
r1=$(rate_run 42)
r2=$(rate_run 42)
check_eq fail_rate_deterministic "$r1" "$r2"
case "$r1" in *5*2*|*2*5*) ok fail_rate_mixes ;; *) fail fail_rate_mixes "answers $r1" ;; esac
start fr1 --out /dev/null --fail-rate 1
check_eq fail_rate_1_always_503 "$(post good "$GOOD")$(post good "$GOOD")" 503503
stop

# --delay holds one answer without stalling the others (thread per connection).
start dl --out "$W/dl.jsonl" --delay 1000
batch d1 --events 1
D1=$BID
batch d2 --events 1
t0=$($PY -c 'import time; print(time.monotonic())')
post d1 "$D1" >"$W/d1.code" &
p1=$!
post d2 "$BID" >"$W/d2.code"
wait "$p1"
el=$($PY -c "import time; print(int((time.monotonic() - $t0) * 1000))")
check_eq delay_answers "$(cat "$W/d1.code") $(cat "$W/d2.code")" "200 200"
if [ "$el" -ge 1000 ] && [ "$el" -lt 1900 ]; then ok delay_parallel
else fail delay_parallel "two delayed requests took ${el} ms"; fi
stop

# --exit-after: exits 0 on its own once enough distinct events are stored.
start ea --out "$W/ea.jsonl" --exit-after 4 --quiet
batch e3 --events 3
check_eq exit_after_first_200 "$(post e3 "$BID")" 200
batch e2 --events 2
check_eq exit_after_second_200 "$(post e2 "$BID")" 200
reap 5
check_eq exit_after_exit_0 "$EXIT_RC" 0
check_eq exit_after_stored "$(lines "$W/ea.jsonl")" 5

# --out - sends the lines to stdout.
rm -f "$W/port"
tel-collect --port 0 --port-file "$W/port" --db "sqlite:$W/stdout.db" --out - --exit-after 1 -q \
    >"$W/stdout.jsonl" 2>/dev/null &
CPID=$!
i=0
while [ ! -s "$W/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
URL="http://127.0.0.1:$(cat "$W/port")/"
sname=stdout
post good "$GOOD" >/dev/null
reap 5
check_eq stdout_output "$(grep -c "\"batch\":\"$GOOD\"" "$W/stdout.jsonl")" 1

# No collector of this file reported a sanitizer error or a leak.
check_eq no_sanitizer_reports "$(cat "$W"/*.err | grep -c -e 'Sanitizer' -e 'runtime error')" 0

t_done
