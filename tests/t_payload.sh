# SPDX-License-Identifier: MIT
# tests/t_payload.sh - what the first users' payloads need end to end:
# structured property values (arrays and maps), from `tel emit KEY:=JSON`
# through the queue, tel-sync and tel-collect to the stored JSON.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
PY=/usr/bin/python3

# jq-less JSON questions: pyj FILE EXPR, with L the list of JSON lines.
pyj() { $PY - "$1" "$2" <<'EOF'
import json, sys
L = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
print(eval(sys.argv[2]))
EOF
}

ASTRO_CONFIG='{"markdownPlugins":[],"adapter":"@astrojs/vercel","integrations":["@astrojs/mdx","@astrojs/rss"],"markdown":{"syntaxHighlight":"shiki"}}'

# werf's commandOptions for a command with 120 options.
WERF_OPTIONS=$($PY -c '
import json
print(json.dumps([{"name": "option-number-%03d" % i, "asCli": i % 3 == 0, "asEnv": i % 5 == 0,
                   "count": i % 4} for i in range(120)]))')

# ------------------------------------------------------- structured values

tc_start payload --db "sqlite:$T_TMP/payload.db"
tel emit --app astro --endpoint "$TC_URL" dev cliCommand=dev "config:=$ASTRO_CONFIG"
check_eq "tel emit queues astro's nested config" "$?" 0
tel show --app astro >"$T_TMP/astro.show"
check_eq "tel show prints the nested config as JSON" \
    "$(pyj "$T_TMP/astro.show" "L[0]['props']['config'] == json.loads('''$ASTRO_CONFIG''')")" True
tel emit --app werf --endpoint "$TC_URL" CommandStarted command="werf converge" \
    "commandOptions:=$WERF_OPTIONS"
check_eq "werf's 120 command options fit one event" "$?" 0
tel emit --app werf --endpoint "$TC_URL" CommandExited exitCode:=0 durationMs:=10827
tel-sync --app astro && tel-sync --app werf
check_eq "tel-sync delivers the structured events" "$?" 0
tc_stop
check_eq "tel-collect stores astro's config as sent" \
    "$(pyj "$TC_OUT" "[e['props']['config'] for e in L if e['name'] == 'dev'] == [json.loads('''$ASTRO_CONFIG''')]")" True
check_eq "tel-collect stores all 120 of werf's options, typed" \
    "$(pyj "$TC_OUT" "[e['props']['commandOptions'] for e in L if e['name'] == 'CommandStarted'] == [json.loads('''$WERF_OPTIONS''')]")" True
check_eq "tel-collect's database holds the nested values as JSON" "$($PY - "$T_TMP/payload.db" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT props FROM events WHERE name = 'CommandStarted'").fetchall()
print(len(rows) == 1 and len(json.loads(rows[0][0])['commandOptions']) == 120)
EOF
)" True
check_eq "a scalar given as JSON keeps its type" \
    "$(pyj "$TC_OUT" "[(e['props']['exitCode'], e['props']['durationMs']) for e in L if e['name'] == 'CommandExited']")" \
    "[(0, 10827)]"
check_eq "tel show and tel-collect agree on nothing left queued" "$(tel show --app werf | wc -l)" 0

# The independent decoder (python3-msgpack) sees version 1 for a queue of
# scalars and version 2 once a batch holds a structured value.
PYOUT="$T_TMP/py.json"
rm -f "$T_TMP/py.port"
$PY "$TEL_TOP/tests/collector.py" --port-file "$T_TMP/py.port" --out "$PYOUT" 2>"$T_TMP/py.err" &
PYPID=$!
i=0; while [ ! -s "$T_TMP/py.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PYURL="http://127.0.0.1:$(cat "$T_TMP/py.port")/v1/batch"
tel emit --app flat --endpoint "$PYURL" ev n=1
tel-sync --app flat
tel emit --app tree --endpoint "$PYURL" ev 'n:=[1,{"k":null}]'
tel-sync --app tree
kill $PYPID; wait $PYPID 2>/dev/null
check_eq "a batch of scalars is still sent as version 1" \
    "$($PY -c "import json;r=json.load(open('$PYOUT'))['requests'];print([x['version'] for x in r if x['events'] and x['events'][0]['app']=='flat'])")" "[1]"
check_eq "a batch holding an array is sent as version 2" \
    "$($PY -c "import json;r=json.load(open('$PYOUT'))['requests'];print([x['version'] for x in r if x['events'] and x['events'][0]['app']=='tree'])")" "[2]"
check_eq "the independent decoder finds no fault in either" \
    "$($PY -c "import json;print(sum(len(x['errors']) for x in json.load(open('$PYOUT'))['requests']))")" 0

# Limits: refused whole, with one line, nothing stored.
over_array=$($PY -c 'print("[" + ",".join(["1"] * 257) + "]")')
check_rc "an array of 257 elements is refused" 2 tel emit --app lim ev "a:=$over_array"
check_rc "five levels of nesting are refused" 2 tel emit --app lim ev 'a:=[[[[[1]]]]]'
over_map=$($PY -c 'import json;print(json.dumps({"k%d" % i: i for i in range(65)}))')
check_rc "a map of 65 entries is refused" 2 tel emit --app lim ev "a:=$over_map"
check_rc "a duplicate key in a map is refused" 2 tel emit --app lim ev 'a:={"k":1,"k":2}'
check_rc "malformed JSON is refused" 2 tel emit --app lim ev 'a:=[1,'
big=$($PY -c 'import json;print(json.dumps(["x" * 1000] * 17))')
check_rc "a structured event over 16 KiB is refused" 2 tel emit --app lim ev "a:=$big"
s1000=$($PY -c 'print("s" * 1000)')
check_rc "an event of scalars over 4 KiB is still refused" 2 \
    tel emit --app lim ev a=$s1000 b=$s1000 c=$s1000 d=$s1000 e=$s1000
check_eq "nothing of the refused events was stored" "$(tel show --app lim | wc -l)" 0
tel emit --app lim ev 'a:=[1,' 2>"$T_TMP/err"
check_eq "the refusal is one line naming the position" \
    "$(head -n 1 "$T_TMP/err")" "tel: emit: property 1: JSON: byte 4: the text ends where a value should be"
check_eq "the refusal never quotes the value" "$(grep -c 'option-number' "$T_TMP/err")" 0

# A batch of today's format (format/SPEC.md's worked example, kept as a
# fixture) is still accepted and stored as before.
tc_start old
gzip -c "$TEL_TOP/tests/fixtures/v1-batch.msgpack" >"$T_TMP/v1.gz"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/vnd.msgpack' \
    -H 'Content-Encoding: gzip' -H 'Idempotency-Key: 0d9e8a7b-6c5d-4e3f-8a1b-2c3d4e5f6a7b' \
    --data-binary @"$T_TMP/v1.gz" "$TC_URL")
tc_stop
check_eq "tel-collect accepts a version 1 batch of the old format" "$code" 200
check_eq "and stores its event as before" \
    "$(pyj "$TC_OUT" "(L[0]['name'], L[0]['props'])")" "('cli.run', {'ok': True, 'n': 3})"

# ---------------------------------------------------------------- spans

# A host timing the parts of one operation, and a script adding a span of
# its own to the same run through the documented event layout.
cat >"$T_TMP/spans.c" <<'EOF'
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <time.h>
#include <tel.h>
static void nap(long ms) { struct timespec ts = { 0, ms * 1000000L }; nanosleep(&ts, NULL); }
int main(void)
{
    tel *h;
    tel_options *o = tel_options_new("spans");
    tel_options_set_exec_id(o, getenv("RUN_ID"));
    if (tel_open(&h, o) != TEL_OK)
        return 1;
    tel_command_started(h, "sync", NULL, 0);
    tel_span *op = tel_span_begin(h, "operation", NULL);
    tel_span *fetch = tel_span_begin(h, "fetch", op);
    for (int i = 0; i < 2; i++) {
        tel_span *t = tel_span_begin(h, "table", fetch);
        nap(10);
        tel_span_end(t, 0);
    }
    tel_span_end(fetch, 0);
    tel_span *up = tel_span_begin(h, "upload", op);
    nap(5);
    tel_span_end(up, 1);
    tel_span_end(op, 1);
    tel_command_exited(h, 1, NULL, NULL);
    tel_close(h);
    return 0;
}
EOF
hostsan=""
[ "${TEL_SANITIZED:-0}" = 1 ] && hostsan="-fsanitize=address,undefined"
if cc $hostsan -std=c99 -Wall -Wextra -Werror -I"$TEL_TOP/include" "$T_TMP/spans.c" "$TEL_BUILD/libtel.a" \
    -Wl,-Bstatic -llmdb -lmsgpackc -Wl,-Bdynamic -o "$T_TMP/spans" 2>"$T_TMP/cc.err"; then
    run=$(tel exec-id --app spans)
    RUN_ID=$run "$T_TMP/spans"
    check_eq "a host records its spans" "$?" 0
    tel emit --app spans --exec-id "$run" span name=report duration_ms:=7 span_id=script0000000001
    tc_start spans
    tel-sync --app spans --endpoint "$TC_URL"
    tc_stop
    # The tree as a collector rebuilds it: per run, parent_id -> span_id.
    tree=$($PY - "$TC_OUT" "$run" <<'EOF'
import json, sys
ev = [json.loads(x) for x in open(sys.argv[1]) if x.strip()]
spans = [e for e in ev if e['name'] == 'span']
# One run: the host's spans and the script's share one recorded id,
# derived from the token, never the token itself.
if len({s['exec'] for s in spans}) != 1 or spans[0]['exec'] == sys.argv[2]:
    spans = []
by_id = {s['props'].get('span_id'): s for s in spans}
def path(s):
    p = by_id.get(s['props'].get('parent_id'))
    return (path(p) + '/' if p else '') + s['props']['name']
print(' '.join(sorted(path(s) for s in spans)))
EOF
)
    check_eq "tel-collect's events rebuild the run's span tree" "$tree" \
        "operation operation/fetch operation/fetch/table operation/fetch/table operation/upload report"
    check_eq "every span of the host carries its duration, start offset and command" "$(pyj "$TC_OUT" \
        "all(isinstance(e['props'].get('duration_ms'), int) and e['props'].get('command') == 'sync' and e['props']['start_ms'] >= 0 for e in L if e['name'] == 'span' and e['props']['name'] != 'report')")" True
    check_eq "a parent lasts at least as long as its children" "$(pyj "$TC_OUT" \
        "[e['props']['duration_ms'] >= 20 for e in L if e['name'] == 'span' and e['props']['name'] == 'fetch']")" "[True]"
    check_eq "the status of a failed part is kept" "$(pyj "$TC_OUT" \
        "[e['props']['status'] for e in L if e['name'] == 'span' and e['props']['name'] == 'upload']")" "[1]"
else
    fail "a host using spans compiles" "$(head -n 3 "$T_TMP/cc.err")"
fi

# ------------------------------------------------ one run across processes

id=$(tel exec-id --app run)
check_eq "tel exec-id prints a UUID" "$(echo "$id" | grep -cE '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')" 1
check_eq "tel exec-id keeps the id already exported" "$(RUN_TELEMETRY_EXEC_ID=$id tel exec-id --app run)" "$id"
RUN_TELEMETRY_EXEC_ID=$id tel emit --app run step.one
RUN_TELEMETRY_EXEC_ID=$id tel emit --app run step.two
tel emit --app run --exec-id "$id" step.three
tel emit --app run alone
RUN_TELEMETRY_EXEC_ID=not-a-uuid-zq8marker tel emit --app run garbled 2>"$T_TMP/garbled.err"
check_eq "a malformed exported id is ignored, the event still queued" "$?" 0
check_eq "tel emit names the ignored variable on stderr, in one line" \
    "$(cat "$T_TMP/garbled.err")" "tel: warning: RUN_TELEMETRY_EXEC_ID is ignored: not a UUID"
RUN_TELEMETRY_EXEC_ID=not-a-uuid-zq8marker RUN_TELEMETRY_STATE_DIR=relative/zq8marker \
    tel status --app run >"$T_TMP/run.status" 2>&1
check_eq "tel status lists both ignored variables, never their values" \
    "$(grep -c '^ignored: .*RUN_TELEMETRY_\(EXEC_ID (not a UUID)\|STATE_DIR (not an absolute path)\)$' "$T_TMP/run.status"):$(grep -c zq8marker "$T_TMP/run.status")" "2:0"
check_eq "tel status --json lists them too" \
    "$(RUN_TELEMETRY_STATE_DIR=relative/zq8marker tel status --app run --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["ignored"])')" \
    "[{'variable': 'RUN_TELEMETRY_STATE_DIR', 'why': 'not an absolute path'}]"
check_eq "and nothing when every variable is usable" \
    "$(RUN_TELEMETRY_EXEC_ID=$id tel status --app run --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["ignored"])'):$(RUNOK_TELEMETRY_EXEC_ID=$id tel emit --app runok fine 2>&1)" "[]:"
tel show --app run >"$T_TMP/run.show"
shared=$(pyj "$T_TMP/run.show" "[e['exec'] for e in L if e['name'] == 'step.one'][0]")
check_eq "three calls share the exported run, under one recorded id that is not the token" \
    "$(pyj "$T_TMP/run.show" "sorted(e['name'] for e in L if e['exec'] == '$shared')"):$([ "$shared" != "$id" ] && echo derived)" \
    "['step.one', 'step.three', 'step.two']:derived"
check_eq "a call without it is a run of its own" \
    "$(pyj "$T_TMP/run.show" "[e['exec'] != '$shared' for e in L if e['name'] in ('alone', 'garbled')]")" "[True, True]"
check_eq "events sharing a run still have ids of their own" \
    "$(pyj "$T_TMP/run.show" "len(set(e['id'] for e in L)) == len(L) and '$id' not in [e['id'] for e in L]")" True
# A script keeps its exported run across a forget: the identities before
# and after must not be linked by it, nor by a deleted cookie.
runf=$(tel exec-id --app runf)
RUNF_TELEMETRY_EXEC_ID=$runf tel emit --app runf before
tel show --app runf >"$T_TMP/runf.show"
x1=$(pyj "$T_TMP/runf.show" "[e['exec'] for e in L][0]")
tel forget --app runf
RUNF_TELEMETRY_EXEC_ID=$runf tel emit --app runf after.forget
tel show --app runf >"$T_TMP/runf.show"
x2=$(pyj "$T_TMP/runf.show" "[e['exec'] for e in L][0]")
rm -f "$STATE/runf/telemetry-cookie"
RUNF_TELEMETRY_EXEC_ID=$runf tel emit --app runf after.cookie
tel show --app runf >"$T_TMP/runf.show"
x3=$(pyj "$T_TMP/runf.show" "[e['exec'] for e in L if e['name'] == 'after.cookie'][0]")
check_eq "an exported run links no identity to the next: after a forget, after a deleted cookie" \
    "$([ "$x1" != "$x2" ] && [ "$x2" != "$x3" ] && [ "$x1" != "$x3" ] && echo unlinked)" unlinked
check_rc "--exec-id that is no UUID is bad usage" 2 tel emit --app run --exec-id 1234 ev
check_rc "--exec-id goes with emit and metrics only" 2 tel show --app run --exec-id "$id"

# --------------------------------------------- project id, as git resolves it

if command -v git >/dev/null 2>&1; then
    mkdir -p "$T_TMP/short" "$T_TMP/long" "$T_TMP/incl"
    git -C "$T_TMP/short" init -q && git -C "$T_TMP/short" remote add origin gh:o/r
    git -C "$T_TMP/long" init -q && git -C "$T_TMP/long" remote add origin https://github.com/o/r.git
    git -C "$T_TMP/incl" init -q && git -C "$T_TMP/incl" remote add origin lab:o/r
    printf '[url "git@github.com:"]\n\tinsteadOf = lab:\n' >"$T_TMP/rules.inc"
    git -C "$T_TMP/incl" config include.path "$T_TMP/rules.inc"
    git config --global url.https://github.com/.insteadOf gh:
    project_of() { (cd "$1" && tel emit --app "prj$2" $3 ev && tel show --app "prj$2" | sed -n 's/.*"project":"\([0-9a-f]*\)".*/\1/p'); }
    p_short=$(project_of "$T_TMP/short" 1 --project-linkable)
    p_long=$(project_of "$T_TMP/long" 2 --project-linkable)
    p_incl=$(project_of "$T_TMP/incl" 3 --project-linkable)
    check_eq "git itself resolves gh:o/r to the https URL" "$(git -C "$T_TMP/short" ls-remote --get-url origin)" \
        "https://github.com/o/r"
    check_eq "gh:o/r with ~/.gitconfig's insteadOf gets the id of https://github.com/o/r.git" "$p_short" "$p_long"
    check_eq "a rule from include.path applies too" "$p_incl" "$p_long"
    check_eq "the linkable id is sha256 of host/path" "$p_long" \
        "$(printf 'github.com/o/r' | sha256sum | cut -d' ' -f1)"
    p_salted=$(project_of "$T_TMP/long" 4 "--project-salt s1")
    check_eq "a salted id is another one" "$([ -n "$p_salted" ] && [ "$p_salted" != "$p_long" ] && echo yes)" yes
    check_eq "no path or URL of the repository is stored" \
        "$(tel show --app prj1 | grep -c -e github -e "$T_TMP")" 0
else
    skip "project id against git: git is not installed"
fi

t_done
