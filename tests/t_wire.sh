# SPDX-License-Identifier: MIT
# tests/t_wire.sh - the column-wise batch (wire version 3, format/SPEC.md
# 4.1) end to end: tel-collect announces what it reads, tel-sync sends
# version 3 only to a collector that announced it, an independent decoder
# (python3-msgpack) finds no fault in it, and the same events sent both
# ways are stored as the same rows.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
PY=/usr/bin/python3
MKBATCH="$TEL_TOP/tests/mkbatch.py"
W="$T_TMP/w"
mkdir -p "$W"

# post FILE KEY: prints the status; body in $W/resp, headers in $W/hdr.
post() {
    curl -s -o "$W/resp" -D "$W/hdr" -w '%{http_code}' --max-time 20 \
        -H 'Content-Type: application/vnd.msgpack' -H 'Content-Encoding: gzip' \
        -H "Idempotency-Key: $2" --data-binary "@$W/$1" "$URL"
}
# batch FILE ARGS...: a batch written by tests/mkbatch.py; BID is its id.
batch() {
    f="$1"; shift
    $PY "$MKBATCH" -o "$W/$f" "$@" >"$W/$f.ids" || echo "FAIL mkbatch: $*"
    BID=$(head -n 1 "$W/$f.ids")
}
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
versions_header() { tr -d '\r' <"$W/hdr" | sed -n 's/^[Tt]el-[Vv]ersions: //p'; }
# pyreq FILE EXPR: a question about an independent collector's record, with
# R its list of requests.
pyreq() { $PY -c "import json;R=json.load(open('$1'))['requests'];print($2)"; }

# ------------------------------------------------ tel-collect reads version 3
start_collect main
batch good --columns --events 4
check_eq "tel-collect accepts a version 3 batch written by another encoder" "$(post good "$BID")" 200
check_eq "and says which versions it reads" "$(versions_header)" "1,2,3"
check_eq "it stores each of its events" "$(lines "$T_TMP/main.jsonl")" 4
check_eq "an execution id given as an event's index is that event's id" \
    "$($PY -c "import json;L=[json.loads(x) for x in open('$T_TMP/main.jsonl')];print(L[1]['exec']==L[0]['id'] and L[3]['exec']==L[2]['id'])")" True
check_eq "times given as differences come back whole" \
    "$($PY -c "
import gzip, itertools, json, msgpack
b = msgpack.unpackb(gzip.open('$W/good').read())
L = [json.loads(x) for x in open('$T_TMP/main.jsonl')]
print([e['ts'] for e in L] == list(itertools.accumulate(b['t'])) and len(set(b['t'][1:])) > 0)")" True

for kind in x-index time-below short-column name-index with-e; do
    batch "bad-$kind" --columns --events 3 --corrupt "$kind"
    check_eq "a version 3 batch with a fault ($kind) is refused with 400" "$(post "bad-$kind" "$BID")" 400
    check_eq "the refusal ($kind) is one line naming the fault" \
        "$($PY -c "import json;e=json.load(open('$W/resp'))['error'];print(e.startswith('bad batch: ') and '\n' not in e)")" True
done
check_eq "a refusal says which versions it reads too" "$(versions_header)" "1,2,3"
batch bad-big --columns --events 3 --corrupt big-record
check_eq "an event standing for a record over 4 KiB is refused" "$(post bad-big "$BID")" 400
check_eq "and the reason names the record's size" \
    "$(grep -c 'bytes without an array or map' "$W/resp")" 1
batch many --columns --events 1001
check_eq "a version 3 batch of 1001 events is too large" "$(post many "$BID")" 413
check_eq "nothing of a refused batch is stored" "$(lines "$T_TMP/main.jsonl")" 4
stop_pid "$CPID"

# ----------------------------------------- the same events, both layouts
start_collect two --db "sqlite:$T_TMP/two.db"
URL2=$URL; PID2=$CPID
tel emit --app wb --endpoint "$URL2" probe
tel-sync --app wb -vv 2>"$W/probe.err"
check_eq "a first batch to a collector not heard from yet is version 1" \
    "$(grep -c 'version 1: HTTP 200' "$W/probe.err")" 1
tel emit --app wb cmd.run ok:=true n:=3 ratio:=0.25 'where=a b' 'text=é ü'
tel emit --app wb cfg 'config:={"adapter":"x","integrations":["a","b"],"deep":[{"k":null}]}'
tel emit --app wb cmd.exited exit_code:=-2 big:=9007199254740993 neg:=-1.5e300
cp -a "$STATE/wb" "$STATE/wa"
start_collect one --db "sqlite:$T_TMP/one.db"
URL1=$URL; PID1=$CPID
tel-sync --app wa --endpoint "$URL1" -vv 2>"$W/one.err"
tel-sync --app wb -vv 2>"$W/two.err"
stop_pid "$PID1"; stop_pid "$PID2"
check_eq "the queue's copy goes to a new endpoint as before: version 2, as it holds a map" \
    "$(grep -c 'version 2: HTTP 200' "$W/one.err")" 1
check_eq "the queue itself goes to the collector it heard from in version 3" \
    "$(grep -c 'version 3: HTTP 200' "$W/two.err")" 1
rows() {
    $PY - "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for r in db.execute("SELECT id, ts, name, app, app_version, anon_id, exec_id, props, context"
                    " FROM events WHERE name != 'probe' ORDER BY id"):
    print(repr(r))
EOF
}
rows "$T_TMP/one.db" >"$W/one.rows"
rows "$T_TMP/two.db" >"$W/two.rows"
check_eq "both stores hold the three events" "$(lines "$W/one.rows") $(lines "$W/two.rows")" "3 3"
check_eq "and store the same rows from either layout" "$(cmp -s "$W/one.rows" "$W/two.rows" && echo same)" same
export_lines() {
    $PY - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["name"] != "probe":
        e.pop("batch"); e.pop("received")
        print(json.dumps(e, sort_keys=True))
EOF
}
export_lines "$T_TMP/one.jsonl" | sort >"$W/one.exp"
export_lines "$T_TMP/two.jsonl" | sort >"$W/two.exp"
check_eq "and export the same lines" "$(lines "$W/one.exp") $(cmp -s "$W/one.exp" "$W/two.exp" && echo same)" "3 same"

# ------------------------------------------- an independent decoder's view
PYOUT="$T_TMP/py.json"
$PY "$TEL_TOP/tests/collector.py" --port-file "$T_TMP/py.port" --out "$PYOUT" --versions 1,2,3 \
    2>"$T_TMP/py.err" &
PYPID=$!
PYURL="http://127.0.0.1:$(wait_port "$T_TMP/py.port")/v1/batch"
tel emit --app pa --endpoint "$PYURL" first n=1
tel-sync --app pa
tel emit --app pa second n=2
tel emit --app pa third 'tree:=[1,{"k":"v"}]'
tel-sync --app pa
stop_pid "$PYPID"
check_eq "tel-sync speaks version 1 first, then version 3 to a collector that announced it" \
    "$(pyreq "$PYOUT" "[x['version'] for x in R]")" "[1, 3]"
check_eq "the independent decoder finds no fault in version 3" \
    "$(pyreq "$PYOUT" "sum(len(x['errors']) for x in R)")" 0
check_eq "and reads the events as recorded" \
    "$(pyreq "$PYOUT" "[(e['name'], e['props']) for e in R[1]['events']]")" \
    "[('second', {'n': 2}), ('third', {'tree': [1, {'k': 'v'}]})]"

$PY "$TEL_TOP/tests/collector.py" --port-file "$T_TMP/py2.port" --out "$PYOUT" 2>"$T_TMP/py.err" &
PYPID=$!
PYURL="http://127.0.0.1:$(wait_port "$T_TMP/py2.port")/v1/batch"
tel emit --app pb --endpoint "$PYURL" first
tel-sync --app pb
tel emit --app pb second
tel-sync --app pb
stop_pid "$PYPID"
check_eq "a collector that announces nothing only ever gets versions 1 and 2" \
    "$(pyreq "$PYOUT" "[x['version'] for x in R]")" "[1, 1]"
check_eq "and finds no fault" "$(pyreq "$PYOUT" "sum(len(x['errors']) for x in R)")" 0

t_done
