#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_metrics.sh - metrics in the Prometheus text format, end to end:
# `tel metrics` from stdin and from a file, what it stores (read back by
# tel show and by an independent decoder), malformed input refused whole
# with the line named, the opt-outs, and tel-sync into tel-collect, whose
# GET /metrics must show the gauges with their labels and app, and its own
# counters, in text that parses again.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
OUT="$T_TMP/out"
ERR="$T_TMP/err"
W="$T_TMP/w"
mkdir -p "$W"
SECRET="s3cr3t-label-value"

run() { "$@" >"$OUT" 2>"$ERR"; RC=$?; }
run_in() { f="$1"; shift; "$@" <"$f" >"$OUT" 2>"$ERR"; RC=$?; }
count() { tel show --app "$1" 2>/dev/null | wc -l | tr -d ' '; }
# Every file under $HOME with size and mtime, except the mtime of LMDB's
# lock file, which records readers on every open of the queue.
snap() {
    find "$HOME" -printf '%p %y %s %T@\n' 2>/dev/null | sort |
        sed 's|^\(.*/lock.mdb f [0-9]*\) .*|\1|'
}
# pyshow APP EXPR: EXPR over evs, the `tel show` objects of APP.
pyshow() {
    tel show --app "$1" 2>/dev/null |
        $PY -c "import json,sys; evs=[json.loads(l) for l in sys.stdin if l.strip()]; print($2)"
}
# refused NAME WANT_LINE: exit 2, one stderr line "tel: metrics: line N: ...",
# no secret in it, nothing on stdout.
refused() {
    why=""
    [ "$RC" = 2 ] || why="exit $RC, want 2"
    [ -s "$OUT" ] && why="$why; wrote to stdout"
    [ "$(wc -l <"$ERR" | tr -d ' ')" = 1 ] || why="$why; $(wc -l <"$ERR") stderr lines"
    case "$(cat "$ERR")" in "tel: metrics: line $2: "?*) ;; *) why="$why; stderr: $(head -c 200 "$ERR")" ;; esac
    grep -q "$SECRET" "$ERR" && why="$why; the label value is in the error"
    if [ -z "$why" ]; then ok "$1"; else fail "$1" "$why"; fi
}

cat >"$W/good.prom" <<'EOF'
# HELP build_info A metric with a constant '1' value.
# TYPE build_info gauge
build_info{version="1.4.2",goversion="go1.22"} 1
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"} 3
# a comment
disk_free_bytes{path="C:\\dir\\",note="say \"hi\"\nbye"} 1.5e9
load1 0.25
EOF

# ----------------------------------------------------------------- usage
tel --help >"$OUT" 2>&1
check "tel --help lists metrics" grep -q '^  metrics \[FILE|-\]' "$OUT"
run tel metrics
check_eq "metrics without --app: exit 2" "$RC" 2
run tel metrics --app met "$W/good.prom" "$W/good.prom"
check_eq "two FILEs: exit 2" "$RC" 2
run tel metrics --app met "$W/nonexistent.prom"
check_eq "a missing FILE: exit 2" "$RC" 2
check_eq "a missing FILE: one line" "$(wc -l <"$ERR" | tr -d ' ')" 1
check_eq "a missing FILE: nothing stored" "$(count met)" 0

# ------------------------------------------------------------ stdin, file
run_in "$W/good.prom" tel metrics --app met --app-version 2.0.0
check_eq "from stdin: exit 0" "$RC" 0
check_eq "from stdin: quiet" "$(cat "$OUT" "$ERR")" ""
check_eq "five samples, five events" "$(count met)" 5
check_eq "all named metric" "$(pyshow met "sorted(set(e['name'] for e in evs))")" "['metric']"
check_eq "names in order" "$(pyshow met "[e['props']['name'] for e in evs]")" \
    "['build_info', 'http_requests_total', 'http_requests_total', 'disk_free_bytes', 'load1']"
check_eq "values" "$(pyshow met "[e['props']['value'] for e in evs]")" "[1, 1027, 3, 1500000000, 0.25]"
check_eq "kinds from TYPE lines, none without" "$(pyshow met "[e['props'].get('kind') for e in evs]")" \
    "['gauge', 'counter', 'counter', None, None]"
check_eq "labels as label.<name>" "$(pyshow met "evs[1]['props']['label.method'], evs[1]['props']['label.code']")" \
    "post 200"
check_eq "escapes undone" "$(pyshow met "evs[3]['props']['label.path'] == 'C:\\\\dir\\\\' and evs[3]['props']['label.note'] == 'say \"hi\"\nbye'")" True
check_eq "the app version in the context" "$(pyshow met "evs[0]['context'].get('app_version')")" 2.0.0
check_eq "timestamps are not stored as properties" "$(pyshow met "any('ts' in e['props'] or 'timestamp' in e['props'] for e in evs)")" False

run tel metrics --app met "$W/good.prom"
check_eq "from a file: exit 0" "$RC" 0
check_eq "from a file: five more" "$(count met)" 10
run_in "$W/good.prom" tel metrics --app met -
check_eq "'-' is stdin" "$RC" 0
check_eq "'-': five more" "$(count met)" 15
printf '' >"$W/empty.prom"
run tel metrics --app met "$W/empty.prom"
check_eq "empty input: exit 0" "$RC" 0
check_eq "empty input: nothing more" "$(count met)" 15

# Independent decoder: the stored value is a MessagePack float even when
# it prints as an integer, labels and name are strings.
if [ -x /usr/bin/mdb_dump ] && $PY -c 'import msgpack' 2>/dev/null; then
    mdb_dump -s events "$STATE/met/telemetry" >"$W/dump" 2>/dev/null
    types=$($PY - "$W/dump" <<'EOF'
import sys, msgpack
vals, body = [], False
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line == "HEADER=END": body = True; continue
    if line == "DATA=END": break
    if body and line.startswith(" "): vals.append(bytes.fromhex(line[1:]))
p = msgpack.unpackb(vals[1::2][1], raw=False)["p"]
print(type(p["value"]).__name__, p["value"], type(p["name"]).__name__, type(p["label.code"]).__name__, p["kind"])
EOF
)
    check_eq "stored types: float value, string name and labels" "$types" "float 1027.0 str str counter"
else
    echo "# mdb_dump or python3-msgpack missing: the independent decoder is skipped"
fi

# ------------------------------------------------------------- malformed
before=$(snap)
printf 'ok_one 1\nok_two{a="b"} 2\nbroken{a="%s} 3\nok_three 4\n' "$SECRET" >"$W/bad.prom"
run tel metrics --app met "$W/bad.prom"
refused "an unterminated quote on line 3: refused whole" 3
printf 'a 1\nb{x="%s"} NaN\n' "$SECRET" >"$W/nan.prom"
run_in "$W/nan.prom" tel metrics --app met
refused "NaN: refused, naming line 2" 2
# piped NAME LINE TEXT: TEXT (printf format, SECRET as %s) on tel metrics'
# stdin must be refused naming LINE.
piped() {
    # shellcheck disable=SC2059
    printf "$3" "$SECRET" >"$W/piped.prom"
    run_in "$W/piped.prom" tel metrics --app met
    refused "$1" "$2"
}
piped "+Inf: refused" 1 'a +Inf # %s\n'
piped "a reserved label name: refused" 1 'm{__name__="%s"} 1\n'
piped "a label given twice: refused on line 3" 3 'a 1\n\nm{a="1",a="%s"} 1\n'
piped "an unknown escape: refused" 2 'a 1\nm{a="%s\\t"} 1\n'
printf 'a 1\nb{x="y\0z"} 2\n' >"$W/nul.prom"
run tel metrics --app met "$W/nul.prom"
refused "a NUL byte: refused" 2
$PY -c "print('a 1'); print('m{a=\"' + 'x' * 9000 + '\"} 1')" >"$W/longline.prom"
run tel metrics --app met "$W/longline.prom"
refused "a 9000-byte line: refused" 2
# 30 labels: parsed fine by Prometheus, over what one event holds.
$PY -c "print('m{' + ','.join('l%d=\"v\"' % i for i in range(30)) + '} 1')" >"$W/labels30.prom"
run tel metrics --app met "$W/labels30.prom"
refused "30 labels: refused" 1
# Five 1000-byte labels: valid text, but over the 4 KiB of one event.
$PY -c "print('ok 1'); print('m{' + ','.join('l%d=\"%s\"' % (i, 'v' * 1000) for i in range(5)) + '} 1')" >"$W/big.prom"
run tel metrics --app met "$W/big.prom"
refused "a sample over 4 KiB encoded: refused" 2
$PY -c "import sys; sys.stdout.write('a 1\n' * 300000)" >"$W/huge.prom"
run tel metrics --app met "$W/huge.prom"
check_eq "input over 1 MiB: exit 2" "$RC" 2
check "input over 1 MiB: says so" grep -q 'larger than 1048576 bytes' "$ERR"
after=$(snap)
check_eq "no malformed input stored anything" "$(count met)" 15
[ "$before" = "$after" ] && ok "no file under HOME changed by refused input" ||
    fail "no file under HOME changed by refused input" "files changed"

run tel metrics --app fresh "$W/bad.prom"
refused "malformed input for a new app: refused" 3
[ -e "$STATE/fresh" ] && fail "malformed input creates no state, no cookie" "$STATE/fresh exists" ||
    ok "malformed input creates no state, no cookie"

# -------------------------------------------------------------- opt-outs
MET2_TELEMETRY_ENABLED=false tel metrics --app met2 "$W/good.prom" >"$OUT" 2>"$ERR"
check_eq "disabled by env: exit 0" "$?" 0
check_eq "disabled by env: nothing stored" "$(count met2)" 0
[ -e "$STATE/met2" ] && fail "disabled by env: no state created" "$STATE/met2 exists" ||
    ok "disabled by env: no state created"
DO_NOT_TRACK=1 tel metrics --app met2 "$W/good.prom" >"$OUT" 2>"$ERR"
check_eq "DO_NOT_TRACK: exit 0" "$?" 0
check_eq "DO_NOT_TRACK: nothing stored" "$(count met2)" 0
DO_NOT_TRACK=1 tel metrics --app met2 "$W/bad.prom" >"$OUT" 2>"$ERR"
RC=$?
refused "disabled, malformed input is still refused" 3
tel disable --app met3 >/dev/null 2>&1
check_rc "tel disable, then metrics: exit 0" 0 tel metrics --app met3 "$W/good.prom"
check_eq "tel disable, then metrics: nothing stored" "$(count met3)" 0

# ------------------------------------------------------------ end to end
rm -f "$W/port"
tel-collect --port 0 --port-file "$W/port" --out "$W/events.jsonl" -q 2>"$W/collect.err" &
CPID=$!
i=0
while [ ! -s "$W/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
BASE="http://127.0.0.1:$(cat "$W/port" 2>/dev/null)"

tel forget --app e2e >/dev/null 2>&1
check_rc "e2e: tel metrics" 0 tel metrics --app e2e "$W/good.prom"
printf 'load1 0.75\nqueue_depth{queue="default",app="inner"} 12\n' | tel metrics --app e2e
check_rc "e2e: tel-sync delivers" 0 tel-sync --app e2e --endpoint "$BASE/v1/batch"
check_eq "e2e: the queue is empty" "$(count e2e)" 0
check_eq "e2e: seven events stored" "$(wc -l <"$W/events.jsonl" | tr -d ' ')" 7

curl -s -o "$W/scrape" -D "$W/scrape.hdr" -w '%{http_code}' "$BASE/metrics" >"$W/code"
check_eq "GET /metrics: 200" "$(cat "$W/code")" 200
tel-collect --help >"$OUT" 2>&1
check "tel-collect --help mentions GET /metrics" grep -q "GET /metrics" "$OUT"
check "GET /metrics: text/plain version 0.0.4" grep -qi '^content-type: text/plain; version=0.0.4' "$W/scrape.hdr"
S="$W/scrape"
check "events counter by app and name" grep -qx 'tel_collect_events_total{app="e2e",name="metric"} 7' "$S"
check "batches counter" grep -qx 'tel_collect_batches_total 1' "$S"
check "duplicates counter" grep -qx 'tel_collect_duplicates_total 0' "$S"
check "a gauge with its labels, sorted, and app" \
    grep -qx 'http_requests_total{app="e2e",code="200",method="post"} 1027' "$S"
check "the second series of the family" grep -qx 'http_requests_total{app="e2e",code="400",method="post"} 3' "$S"
check "re-exposed as gauges" grep -qx '# TYPE http_requests_total gauge' "$S"
check "a gauge without labels gets app" grep -qx 'build_info{app="e2e",goversion="go1.22",version="1.4.2"} 1' "$S"
check "the latest value wins" grep -qx 'load1{app="e2e"} 0.75' "$S"
check_eq "one series per label set" "$(grep -c '^load1{' "$S")" 1
check "label values escaped again" grep -qxF 'disk_free_bytes{app="e2e",note="say \"hi\"\nbye",path="C:\\dir\\"} 1500000000' "$S"
check "a client's app label becomes exported_app" \
    grep -qx 'queue_depth{app="e2e",exported_app="inner",queue="default"} 12' "$S"

# The scrape parses again with tel's own parser (it is valid exposition
# text) and with a small independent check of the format's grammar.
check_rc "the scrape parses with tel's parser" 0 tel metrics --app reparse "$S"
check_eq "and gives one event per sample line" "$(count reparse)" "$(grep -vc '^#' "$S")"
check_eq "the scrape passes an independent grammar check" "$($PY - "$S" <<'EOF'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r'^(%s)(\{(%s(,%s)*)?\})? (\S+)$' % (name, label, label))
typed, problems, seen = {}, [], set()
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, fam, kind = line.split(" ")
        if fam in typed: problems.append("family %s typed twice (line %d)" % (fam, n))
        typed[fam] = kind
        continue
    if line.startswith("#"): continue
    m = sample.match(line)
    if not m: problems.append("line %d: %r" % (n, line)); continue
    float(m.group(5))
    key = line.rsplit(" ", 1)[0]
    if key in seen: problems.append("series twice: %s" % key)
    seen.add(key)
print("; ".join(problems) or "ok")
EOF
)" ok

curl -s -o /dev/null -w '%{http_code}' "$BASE/other" >"$W/code"
check_eq "GET on another path: 405" "$(cat "$W/code")" 405
curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary x "$BASE/metrics" >"$W/code"
check_eq "POST to /metrics is still a batch upload (415 without its headers)" "$(cat "$W/code")" 415
curl -s "$BASE/metrics" >"$S"
check "refusals counted by status" grep -qx 'tel_collect_rejected_total{status="405"} 1' "$S"
check "415 counted too" grep -qx 'tel_collect_rejected_total{status="415"} 1' "$S"

# A retried batch changes nothing: same events, the collector dedupes.
printf 'load1 0.5\n' | tel metrics --app e2e
check_rc "e2e: a second sync" 0 tel-sync --app e2e --endpoint "$BASE/v1/batch"
curl -s "$BASE/metrics" >"$S"
check "the newer value replaces the older" grep -qx 'load1{app="e2e"} 0.5' "$S"
check "events counted once more" grep -qx 'tel_collect_events_total{app="e2e",name="metric"} 8' "$S"
kill -TERM "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null

# With a token, /metrics asks for it too: it shows what clients sent.
echo "scrape-token-zq9" >"$W/token"
rm -f "$W/port"
tel-collect --port 0 --port-file "$W/port" --token-file "$W/token" -q >/dev/null 2>&1 &
CPID=$!
i=0
while [ ! -s "$W/port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
BASE="http://127.0.0.1:$(cat "$W/port" 2>/dev/null)"
check_eq "with --token: GET /metrics without it is 401" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/metrics")" 401
check_eq "with --token: GET /metrics with it is 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer scrape-token-zq9' "$BASE/metrics")" 200
kill -TERM "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null

t_done
