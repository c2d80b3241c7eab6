#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_dashboard.sh - the usage dashboard (GET /) and `tel-collect
# report`, on SQLite and on PostgreSQL, over traffic from tools/telgen:
# every answer matches the generated rows (tests/dashcheck.py aggregates
# them independently), a command used by 4 installs is never named nor
# counted, a name only one install sent (command, option, error class,
# span, version, metric) shows nowhere, no id ever appears, both engines
# give the same answers, and a real headless browser draws every chart
# with the numbers.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
GEN="$ROOT/tools/telgen"
TSV="$T_TMP/rows"
DB="$T_TMP/store.db"
FROM=2026-05-11
TO=2026-05-31
RANGE="--from $FROM --to $TO"

# The same seed gives the same rows, as TSV (for the checker and
# PostgreSQL) and straight into SQLite.
$PY "$GEN" --events 6000 --days 21 --end 2026-06-01 --seed 7 --copy "$TSV" >/dev/null
# The report makes the schema in an empty file (it never makes the file);
# the generator then fills it.
: >"$DB"
tel-collect report --db "sqlite:$DB" $RANGE >/dev/null 2>"$T_TMP/err" ||
    fail "report opens an empty store" "$(cat "$T_TMP/err")"
$PY "$GEN" --events 6000 --days 21 --end 2026-06-01 --seed 7 --db "sqlite:$DB" >/dev/null
nrows=$(wc -l <"$TSV/events.tsv" | tr -d ' ')

tel-collect report --db "sqlite:$DB" $RANGE --json >"$T_TMP/sqlite.json" 2>"$T_TMP/err"
check_eq "report --json exits 0 on SQLite" "$?" 0
$PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$T_TMP/sqlite.json" 2>/dev/null ||
    fail "report --json is one JSON document" "$(head -c 300 "$T_TMP/sqlite.json")"
$PY "$ROOT/tests/dashcheck.py" --tsv "$TSV" --report "$T_TMP/sqlite.json" --from $FROM --to $TO \
    --label " (SQLite, $nrows events)" || T_FAILS=$((T_FAILS + 1))

# ------------------------------------------------------- the k threshold
tel-collect report --db "sqlite:$DB" $RANGE >"$T_TMP/sqlite.txt"
tel-collect report --db "sqlite:$DB" $RANGE --min-installs 4 --json >"$T_TMP/k4.json"
rare=$($PY - "$T_TMP/k4.json" <<'PY'
import json, sys
t = [t for t in json.load(open(sys.argv[1]))["tables"] if t["id"] == "commands"][0]
print([r for r in t["rows"] if r[0] == "selfupdate"][0][1])
PY
)
case "$rare" in
[0-9]*) ok "with --min-installs 4, the command 4 installs use shows its count ($rare)" ;;
*) fail "with --min-installs 4, the command 4 installs use shows its count" "got '$rare'" ;;
esac
check_eq "JSON: the command 4 installs use is named nowhere" "$(grep -c selfupdate "$T_TMP/sqlite.json")" 0
other=$($PY - "$T_TMP/sqlite.json" <<'PY'
import json, sys
t = {t["id"]: t for t in json.load(open(sys.argv[1]))["tables"]}
print([r for r in t["commands"]["rows"] if r[0].startswith("other")],
      [r for r in t["options"]["rows"] if r[0].startswith("other")])
PY
)
check_eq "JSON: one 'other' row stands for it in commands and options, every number hidden" "$other" \
    "[['other (fewer than 5 installs each)', '< 5', '< 5', '< 5', '< 5', '< 5']] [['other (fewer than 5 installs each)', '', '< 5']]"
check_eq "text: the command 4 installs use is named nowhere" "$(grep -c selfupdate "$T_TMP/sqlite.txt")" 0
check_eq "text: its 'other' row shows no count" \
    "$(sed -n '/^== Commands by use$/,/^$/p' "$T_TMP/sqlite.txt" | grep '^other (fewer' | tr -s ' ')" \
    "other (fewer than 5 installs each) < 5 < 5 < 5 < 5 < 5"
grep -q "^doctor  *[0-9]" "$T_TMP/sqlite.txt" && ok "text: a command 5 installs use shows its count" ||
    fail "text: a command 5 installs use shows its count" "$(grep '^doctor' "$T_TMP/sqlite.txt")"

# ------------------------------------------ names only a few installs sent
# Five installs send the same names, a sixth sends a marker in every place
# a name can go: command, option, error class, span, app version, metric
# series and label value.  Each install is a HOME of its own, its events
# recorded by `tel emit` and delivered by `tel-sync` to a collector on the
# store; then the page (one app, and every app) and both reports are
# searched: the five's names show, with their counts, the marker nowhere.
MK=qz8mark
# label_check ENGINE URL: the whole round on the store at URL.
label_check() {
    d="$T_TMP/labels-$1"
    mkdir -p "$d"
    tel-collect --db "$2" --port 0 --port-file "$d/port" -q 2>>"$T_TMP/collect.err" &
    lpid=$!
    for _ in $(seq 100); do [ -s "$d/port" ] && break; sleep 0.05; done
    lurl="http://127.0.0.1:$(cat "$d/port")"
    for i in 1 2 3 4 5 6; do
        v=1.0.0 w=common
        [ $i = 6 ] && v="9.$MK" w=$MK
        for ev in "command.started command=$w options=${w}opt" \
            "command.exited command=$w exit_code=1 duration_ms=40 error_class=${w}Error" \
            "span name=${w}span command=$w duration_ms=5" "metric name=${w}_total value=1.5 label.env=$w"; do
            # shellcheck disable=SC2086
            HOME="$d/h$i" TEL_SYNC_PATH=/bin/true tel emit --app labapp --app-version "$v" $ev
        done
        HOME="$d/h$i" tel-sync --app labapp --endpoint "$lurl/v1/batch" >>"$d/sync.out" 2>&1
    done
    curl -s "$lurl/?app=labapp" >"$d/page.html"
    curl -s "$lurl/" >"$d/every.html"
    kill "$lpid"; wait "$lpid" 2>/dev/null
    tel-collect report --db "$2" --app labapp --since 1d >"$d/report.txt" 2>&1
    tel-collect report --db "$2" --app labapp --since 1d --json >"$d/report.json" 2>&1
    for f in page.html every.html report.txt report.json; do
        check_eq "$1: no name only one install sent is in $f" "$(grep -c "$MK" "$d/$f")" 0
    done
    got=$($PY - "$d/report.json" <<'PY'
import json, sys
t = {t["id"]: t for t in json.load(open(sys.argv[1]))["tables"]}
def row(tid, *key):
    return [r[len(key):len(key) + 1] for r in t[tid]["rows"] if tuple(r[:len(key)]) == key]
other = [tid for tid in ("commands", "options", "errors", "spans", "metrics")
         if [r for r in t[tid]["rows"] if r[0] == "other (fewer than 5 installs each)"]]
print(sum(r[1] for r in t["events-per-day"]["rows"] if isinstance(r[1], int)),
      row("commands", "common"), row("options", "common", "commonopt"), row("errors", "commonError"),
      row("spans", "common", "commonspan", ""), row("metrics", "common_total", "env=common"),
      t["versions-per-week"]["columns"][1:], other)
PY
)
    check_eq "$1: the 24 events arrived; the names five installs sent show, counted; the rest fold into 'other'" \
        "$got" "24 [[5]] [[5]] [[5]] [[5]] [[5]] ['1.0.0'] ['commands', 'options', 'errors', 'spans', 'metrics']"
    check "$1: the page offers the version five installs ran" grep -q '<option value="1.0.0">' "$d/page.html"
}
label_check sqlite "sqlite:$T_TMP/labels.db"

# --------------------------------------------------------------- no ids
# Every id the store holds (events, runs, installs, batches, spans) is
# looked for in every output.
ids="$T_TMP/ids"
$PY - "$TSV" >"$ids" <<'PY'
import json, sys
ids = set()
for line in open(sys.argv[1] + "/events.tsv"):
    f = line.rstrip("\n").split("\t")
    ids.update(x for x in (f[0], f[6], f[7], f[10]) if x != "\\N")
    ids.add(json.loads(f[8].replace("\\\\", "\\")).get("span_id", f[0]))
for line in open(sys.argv[1] + "/erasures.tsv"):
    ids.add(line.split("\t")[0])
print("\n".join(sorted(ids)))
PY
no_ids() {
    if grep -F -f "$ids" "$2" >/dev/null; then
        fail "$1" "$(grep -o -F -f "$ids" "$2" | head -n 1) appears"
    elif grep -Eq '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-' "$2"; then
        fail "$1" "a UUID appears"
    else ok "$1"; fi
}
no_ids "the text report shows none of the $(wc -l <"$ids" | tr -d ' ') stored ids" "$T_TMP/sqlite.txt"
no_ids "the JSON report shows no stored id" "$T_TMP/sqlite.json"

# ------------------------------------------------------------ the page
port_file="$T_TMP/port"
tel-collect --db "sqlite:$DB" --port 0 --port-file "$port_file" --token s3cret -q 2>"$T_TMP/collect.err" &
pid=$!
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$port_file")"
get() { curl -s -o "$T_TMP/page.html" -w '%{http_code}' "$@"; }
check_eq "GET / without the token is refused (401)" "$(get "$URL/")" 401
check_eq "GET / with the token answers 200" "$(get -H 'Authorization: Bearer s3cret' "$URL/?from=$FROM&to=$TO")" 200
cp "$T_TMP/page.html" "$T_TMP/sqlite.html"
no_ids "the page shows no stored id" "$T_TMP/sqlite.html"
grep -q '<script\|<link\|@import\|url(' "$T_TMP/sqlite.html" &&
    fail "the page loads no script and no outside asset" "found one" ||
    ok "the page loads no script and no outside asset"
check_eq "HTML: the command 4 installs use is named nowhere, charts included" \
    "$(grep -c selfupdate "$T_TMP/sqlite.html")" 0
row=$(grep -o '<tr><td>other (fewer than 5 installs each)</td>.*</tr>' "$T_TMP/sqlite.html" | head -n 1)
check_eq "HTML: its 'other' row shows '< 5' in each cell" \
    "$(echo "$row" | sed 's/<[^>]*>/|/g' | tr -s '|')" "|other (fewer than 5 installs each)|&lt; 5|&lt; 5|&lt; 5|&lt; 5|&lt; 5|"
check_eq "GET / with a bad date is refused (400)" \
    "$(get -H 'Authorization: Bearer s3cret' "$URL/?from=2026-02-31")" 400
check_eq "GET /?app=mycli&ci=yes answers 200" \
    "$(get -H 'Authorization: Bearer s3cret' "$URL/?app=mycli&ci=yes&from=$FROM&to=$TO")" 200
grep -q 'Usage of mycli' "$T_TMP/page.html" && grep -q 'in CI' "$T_TMP/page.html" &&
    ok "the filters show in the page's heading" || fail "the filters show in the page's heading" "not found"

# New events show on the next page view, without waiting for the refresher.
$PY "$GEN" --events 300 --days 7 --end 2026-06-01 --seed 99 --post "$URL/v1/batch" --token s3cret >/dev/null 2>&1
get -H 'Authorization: Bearer s3cret' "$URL/?from=$FROM&to=$TO" >/dev/null
if cmp -s "$T_TMP/page.html" "$T_TMP/sqlite.html"; then
    fail "events posted to the running collector show on the next page view" "the page did not change"
else ok "events posted to the running collector show on the next page view"; fi
cp "$T_TMP/page.html" "$T_TMP/posted.html"
tel-collect report --db "sqlite:$DB" $RANGE --json >"$T_TMP/after.json"
# An erasure reaches the rollups: no row names the erased install any
# more, so it leaves the counts of installs; counts of events stay.
victim=$(awk -F'\t' '$5 == "mycli" && $7 != "\\N" { print $7; exit }' "$TSV/events.tsv")
$PY - "$victim" "$T_TMP/erase.gz" <<'PY'
import gzip, sys, uuid, msgpack
open(sys.argv[2], "wb").write(gzip.compress(msgpack.packb({"v": 1, "x": uuid.UUID(sys.argv[1]).bytes})))
PY
check_eq "the collector takes an erasure request" "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/vnd.tel.erasure+msgpack' \
    -H 'Content-Encoding: gzip' --data-binary @"$T_TMP/erase.gz" "$URL/v1/batch")" 200
get -H 'Authorization: Bearer s3cret' "$URL/?from=$FROM&to=$TO" >/dev/null
# The page of the same filter was answered before the erasure: it must be
# computed again, not served from the collector's page cache.
if cmp -s "$T_TMP/page.html" "$T_TMP/posted.html"; then
    fail "an erasure shows on the next page view" "the page did not change"
else ok "an erasure shows on the next page view"; fi
tel-collect report --db "sqlite:$DB" $RANGE --json >"$T_TMP/erased.json"
$PY - "$DB" "$victim" "$T_TMP/after.json" "$T_TMP/erased.json" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
left = db.execute("SELECT COUNT(*) FROM dash_anon WHERE anon = ?", (sys.argv[2],)).fetchone()[0]
def month(path):
    t = [t for t in json.load(open(path))["tables"] if t["id"] == "installs-per-month"][0]
    return sum(r[1] for r in t["rows"])
before, after = month(sys.argv[3]), month(sys.argv[4])
name = "an erased install leaves the rollups and the count of installs"
if left == 0 and after == before - 1:
    print("ok " + name)
else:
    print("FAIL %s: %d rows still name it; installs %d then %d" % (name, left, before, after))
PY
kill "$pid"; wait "$pid" 2>/dev/null

# --------------------------------------------------- a real browser
if ! command -v chromium >/dev/null 2>&1; then
    skip "a headless browser draws every chart (chromium is not installed: scripts/deps.sh test)"
else
    tel-collect --db "sqlite:$DB" --port 0 --port-file "$port_file.2" -q 2>>"$T_TMP/collect.err" &
    pid=$!
    for _ in $(seq 100); do [ -s "$port_file.2" ] && break; sleep 0.05; done
    URL="http://127.0.0.1:$(cat "$port_file.2")/?from=$FROM&to=$TO"
    CHROME="chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
    CHROME="$CHROME --user-data-dir=$T_TMP/chromium --hide-scrollbars"
    timeout 120 $CHROME --dump-dom "$URL" >"$T_TMP/dom.html" 2>"$T_TMP/chromium.err"
    timeout 120 $CHROME --screenshot="$T_TMP/dashboard.png" --window-size=1280,2400 "$URL" \
        >/dev/null 2>>"$T_TMP/chromium.err"
    kill "$pid"; wait "$pid" 2>/dev/null
    $PY - "$T_TMP/dom.html" "$T_TMP/erased.json" <<'PY'
import html, json, re, sys
dom = open(sys.argv[1]).read()
rep = json.load(open(sys.argv[2]))
def fmt(v):
    return "{:,}".format(v) if isinstance(v, int) else None
bad = []
for t in rep["tables"]:
    m = re.search(r'<svg id="chart-%s".*?</svg>' % re.escape(t["id"]), dom, re.S)
    if not m:
        bad.append("no chart " + t["id"])
        continue
    svg = html.unescape(m.group(0))
    # the chart's biggest number (or a hidden mark) is written in it
    nums = [r[1] for r in t["rows"] if len(r) > 1 and isinstance(r[1], int)]
    if nums and t["id"] not in ("versions-per-week", "commands-per-week") and fmt(max(nums)) not in svg:
        bad.append("%s: %s not drawn" % (t["id"], fmt(max(nums))))
print("ok the browser shows a chart for each of the %d tables, with its numbers" % len(rep["tables"])
      if not bad else "FAIL the browser shows a chart for each table, with its numbers: " + "; ".join(bad[:4]))
PY
    if [ -s "$T_TMP/dashboard.png" ] && [ "$(head -c 4 "$T_TMP/dashboard.png" | od -An -c | tr -d ' ')" = "211PNG" ]; then
        ok "the browser takes a screenshot of the page ($(wc -c <"$T_TMP/dashboard.png") bytes, kept while the test runs)"
    else
        fail "the browser takes a screenshot of the page" "$(tail -n 2 "$T_TMP/chromium.err")"
    fi
    [ -n "${TEL_DASH_SHOT:-}" ] && cp "$T_TMP/dashboard.png" "$TEL_DASH_SHOT"
fi

# ---------------------------------------------------------- PostgreSQL
if [ -f "$ROOT/tests/pg.sh" ]; then
    . "$ROOT/tests/pg.sh"
fi
if ! type pg_start >/dev/null 2>&1; then
    skip "the same answers on PostgreSQL (no tests/pg.sh)"
elif ! pg_start; then
    skip "the same answers on PostgreSQL ($PG_WHY)"
else
    tel-collect report --db "$PG_URL" $RANGE >/dev/null 2>"$T_TMP/err" ||
        fail "report opens an empty PostgreSQL store" "$(cat "$T_TMP/err")"
    # The same rows, loaded with COPY by a psql client (which may run as
    # root: only the server may not).
    for t in events batches erasures; do
        "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U tel -d tel \
            -c "\\copy $t FROM '$TSV/$t.tsv'" >/dev/null 2>"$T_TMP/err" ||
            fail "the generated $t load into PostgreSQL" "$(cat "$T_TMP/err")"
    done
    check_eq "PostgreSQL holds the generated events" "$(pg_sql 'SELECT COUNT(*) FROM events')" "$nrows"
    tel-collect report --db "$PG_URL" $RANGE --json >"$T_TMP/pg.json" 2>"$T_TMP/err"
    check_eq "report --json exits 0 on PostgreSQL" "$?" 0
    $PY "$ROOT/tests/dashcheck.py" --tsv "$TSV" --report "$T_TMP/pg.json" --from $FROM --to $TO \
        --label " (PostgreSQL)" || T_FAILS=$((T_FAILS + 1))
    if cmp -s "$T_TMP/pg.json" "$T_TMP/sqlite.json"; then
        ok "PostgreSQL and SQLite give the same report, byte for byte"
    else
        fail "PostgreSQL and SQLite give the same report, byte for byte" \
            "$(diff "$T_TMP/pg.json" "$T_TMP/sqlite.json" | head -c 400)"
    fi
    tel-collect report --db "$PG_URL" $RANGE >"$T_TMP/pg.txt" 2>&1
    no_ids "the PostgreSQL text report shows no stored id" "$T_TMP/pg.txt"
    label_check postgresql "$PG_URL"
    pg_stop
fi
# Option names end without a comma when a run has environment options: the
# split of the joined names must still end (it once looped for ever).
ODB="$T_TMP/opts.db"
: >"$ODB"
tel-collect report --db "sqlite:$ODB" >/dev/null 2>&1
now=$(date +%s)000
sqlite3 "$ODB" "INSERT INTO event_rows (id, ts, received, name, app, app_version, anon_id, exec_id, props, context, batch_id) VALUES (x'000000000000400080000000000000aa', $now, $now, 'command.started', 'optapp', '1.0', x'a1a1a1a1a1a14000800000000000000a', x'e1e1e1e1e1e14000800000000000000e', '{\"command\":\"build\",\"options\":\"repo\",\"env_options\":\"token\"}', '{}', x'b1b1b1b1b1b14000800000000000000b')"
timeout 20 tel-collect report --db "sqlite:$ODB" --min-installs 1 --json >"$T_TMP/opts.json" 2>"$T_TMP/err"
check_eq "a run with both option and environment-option names is folded and reported" "$?" 0
check "and both names are counted" grep -q '"token"' "$T_TMP/opts.json"
# Names beyond ASCII keep the text report's columns aligned on a terminal:
# widths count columns (two for CJK), not bytes.
for c in build déploy 构建; do
    h=$(printf '%s' "$c" | md5sum | cut -c1-32)
    sqlite3 "$ODB" "INSERT INTO event_rows (id, ts, received, name, app, app_version, anon_id, exec_id, props, context, batch_id) VALUES (x'$h', $now, $now, 'command.exited', 'optapp', '1.0', x'a1a1a1a1a1a14000800000000000000a', x'e1e1e1e1e1e14000800000000000000e', '{\"command\":\"$c\",\"exit_code\":0,\"duration_ms\":1200}', '{}', x'b1b1b1b1b1b14000800000000000000b')"
done
tel-collect report --db "sqlite:$ODB" --min-installs 1 >"$T_TMP/wide.txt" 2>"$T_TMP/err"
$PY - "$T_TMP/wide.txt" <<'PY'
import sys, unicodedata
def cols(s):
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in s)
lines = [l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8")]
rows = [l for l in lines if l.split(" ")[0] in ("build", "déploy", "构建") and "%" in l]
ends = {cols(l[:l.index("%") + 1]) for l in rows}
name = "the text report aligns columns after non-ASCII command names"
if len(rows) == 3 and len(ends) == 1:
    print("ok " + name)
else:
    print("FAIL %s: %r" % (name, rows))
PY
t_done
