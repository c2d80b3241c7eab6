#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_bindings.sh - the Python, Go and Node bindings of bindings/: each
# language's own tests (unittest, go vet + go test, node --test) as ok/FAIL
# lines, then events recorded from each language delivered by tel-sync to
# tel-collect with their types, and a DO_NOT_TRACK run of each that must
# leave nothing to deliver.  A language whose toolchain is absent is a
# skip line.
. "$TEL_TOP/tests/lib.sh"

if [ "$TEL_SANITIZED" = 1 ]; then
    # Python, Go and node are not built with the sanitizers; the plain
    # build's run covers the bindings.
    skip "bindings: run against the plain build only"
    t_done
fi
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
BIND="$TEL_TOP/bindings"
E2E="$T_TMP/e2e"
mkdir -p "$E2E"
export TEL_BIN="$TEL_BUILD/bin/tel" TEL_E2E_HOME="$E2E"
langs=""

# sentences LANG: "ok LANG: name" / "FAIL LANG: name: why" from the
# ecosystem's own report on stdin (see each case); the rest is kept in
# $T_TMP/LANG.log for the FAIL line's reason.
# ------------------------------------------------------------------ python
if [ -x "$PY" ]; then
    out=$(TEL_LIBRARY="$TEL_BUILD/libtel.so.0" "$PY" "$BIND/python/tests/test_tel.py" 2>"$T_TMP/py.err")
    rc=$?
    echo "$out"
    case "$out" in *FAIL*) T_FAILS=$((T_FAILS + 1)) ;; esac
    [ $rc -eq 0 ] || case "$out" in *FAIL*) ;; *) fail "python: the unittest run" "exit $rc: $(tail -n 3 "$T_TMP/py.err")" ;; esac
    langs="$langs python"
else
    skip "python: no /usr/bin/python3"
fi

# ---------------------------------------------------------------------- go
if command -v go >/dev/null 2>&1; then
    # A private module cache and build cache, no network: the module has
    # no dependencies.  CGO_LDFLAGS picks this build's libtel.a.
    export GOPATH="$T_TMP/gopath" GOCACHE="$T_TMP/gocache" GOPROXY=off GOFLAGS= GO111MODULE=on
    export CGO_LDFLAGS="-L$TEL_BUILD"
    if v=$(cd "$BIND/go" && go vet ./... 2>&1); then ok "go: go vet is clean"
    else fail "go: go vet is clean" "$(echo "$v" | head -n 3 | tr '\n' ' ')"; fi
    (cd "$BIND/go" && go test -v -count=1 ./... >"$T_TMP/go.log" 2>&1)
    rc=$?
    # "--- PASS: TestOneHandleIsShared" -> "ok go: one handle is shared"
    sed -n 's/^--- PASS: Test\([A-Za-z0-9]*\).*/\1/p' "$T_TMP/go.log" |
        sed 's/\([a-z0-9]\)\([A-Z]\)/\1 \2/g; s/.*/ok go: \L&/'
    sed -n 's/^--- PASS: \(Example[A-Za-z0-9_]*\).*/ok go: \1 prints what its Output comment says/p' "$T_TMP/go.log"
    failed=$(sed -n 's/^--- FAIL: \([A-Za-z0-9_]*\).*/\1/p' "$T_TMP/go.log")
    for f in $failed; do
        fail "go: $f" "$(grep -A2 -- "--- FAIL: $f" "$T_TMP/go.log" | tail -n 2 | tr '\n' ' ')"
    done
    if [ $rc -ne 0 ] && [ -z "$failed" ]; then fail "go: go test" "exit $rc: $(tail -n 5 "$T_TMP/go.log" | tr '\n' ' ')"; fi
    langs="$langs go"
else
    skip "go: no go toolchain (golang-go)"
fi

# -------------------------------------------------------------------- node
if ! command -v node >/dev/null 2>&1; then
    skip "node: no node (nodejs)"
elif [ ! -f "$TEL_BUILD/tel.node" ]; then
    skip "node: no tel.node addon in the build (Node's headers, node_api.h, are not installed)"
else
    TEL_NODE_ADDON="$TEL_BUILD/tel.node" node --expose-gc --test --test-reporter=tap "$BIND/node/test/" \
        >"$T_TMP/node.log" 2>&1
    rc=$?
    # TAP: "ok 3 - name" / "not ok 3 - name"; skipped ones say "# SKIP".
    grep -v '# SKIP' "$T_TMP/node.log" | sed -n 's/^ok [0-9]* - \(.*\)/ok node: \1/p'
    awk '/^not ok [0-9]+ - / { if (n != "") print "FAIL node: " n ": " why; n = $0; sub(/^not ok [0-9]+ - /, "", n); why = "" }
         n != "" && why == "" && /^ +error:/ { why = $0; sub(/^ +/, "", why) }
         END { if (n != "") print "FAIL node: " n ": " why }' "$T_TMP/node.log"
    grep -q '^not ok' "$T_TMP/node.log" && T_FAILS=$((T_FAILS + 1))
    if [ $rc -ne 0 ] && ! grep -q '^not ok' "$T_TMP/node.log"; then
        fail "node: node --test" "exit $rc: $(tail -n 5 "$T_TMP/node.log" | tr '\n' ' ')"
    fi
    langs="$langs node"
    NODE_OK=1
fi

# ------------------------------------------------ the werf and Astro examples
# events APP: the names of the events queued for APP in $EX.
EX="$T_TMP/examples"
# The examples start a tel-sync as they exit, to their compiled-in endpoint;
# here the queue is what is checked, so the spawn starts nothing (a real
# one would empty the queue into whatever listens on that port).
SAVED_SYNC_PATH=$TEL_SYNC_PATH
export TEL_SYNC_PATH=/bin/true
events() { HOME="$EX" tel show --app "$1" 2>/dev/null | $PY -c 'import sys,json; print(",".join(json.loads(l)["name"] for l in sys.stdin if l.strip()))'; }
if command -v go >/dev/null 2>&1; then
    if (cd "$TEL_TOP/examples/go/werf" && go vet . && go build -o "$T_TMP/werf" .) >"$T_TMP/werf.log" 2>&1; then
        mkdir -p "$EX"
        HOME="$EX" "$T_TMP/werf" converge >/dev/null
        check_eq "go werf: opt-in, nothing is recorded by default" "$(events werf)" ""
        HOME="$EX" WERF_TELEMETRY=1 WERF_REPO=r "$T_TMP/werf" --env prod converge >/dev/null
        check_eq "go werf: WERF_TELEMETRY=1 records the command" "$(events werf)" "command.started,attributes,command.options,command.exited"
        opts=$(HOME="$EX" tel show --app werf | head -n 1 | $PY -c 'import sys,json; p=json.load(sys.stdin)["props"]; print(p["options"], p["env_options"])')
        check_eq "go werf: the names of the options used, and how" "$opts" "env repo"
        co=$(HOME="$EX" tel show --app werf | sed -n 3p | $PY -c 'import sys,json; print(json.dumps(json.load(sys.stdin)["props"]["commandOptions"], sort_keys=True))')
        check_eq "go werf: commandOptions as the page shows them" "$co" \
            '[{"asCli": false, "asEnv": true, "count": 1, "name": "repo"}, {"asCli": true, "asEnv": false, "count": 1, "name": "env"}]'
        if command -v git >/dev/null 2>&1; then
            git init -q "$T_TMP/wrepo" && git -C "$T_TMP/wrepo" remote add origin git@github.com:werf/demo.git
            prj=$(cd "$T_TMP/wrepo" && HOME="$EX" WERF_TELEMETRY=1 "$T_TMP/werf" build >/dev/null &&
                HOME="$EX" tel show --app werf | tail -n 1 | $PY -c 'import sys,json; print(json.load(sys.stdin)["context"].get("project"))')
            check_eq "go werf: projectID is SHA-256 of the origin, unsalted" "$prj" \
                "$(printf %s github.com/werf/demo | sha256sum | cut -d' ' -f1)"
        fi

        HOME="$EX" WERF_TELEMETRY=0 "$T_TMP/werf" converge >/dev/null
        check_eq "go werf: WERF_TELEMETRY=0 opts out and purges" "$(events werf)" ""
    else
        fail "go werf: builds and is vet-clean" "$(tail -n 3 "$T_TMP/werf.log" | tr '\n' ' ')"
    fi
fi
if [ -n "${NODE_OK:-}" ]; then
    astro() { HOME="$EX" TEL_NODE_ADDON="$TEL_BUILD/tel.node" node "$TEL_TOP/examples/node/astro/astro.js" "$@"; }
    mkdir -p "$EX"
    astro build >/dev/null
    check_eq "node astro: a command records its config" "$(events astro)" "command.started,config,command.exited"
    cfg=$(HOME="$EX" tel show --app astro | sed -n 2p | $PY -c 'import sys,json; print(json.dumps(json.load(sys.stdin)["props"]["config"], sort_keys=True))')
    check_eq "node astro: the config object as the page shows it" "$cfg" \
        '{"adapter": "@astrojs/vercel", "integrations": ["@astrojs/mdx", "@astrojs/rss"], "markdown": {"syntaxHighlight": "shiki"}, "markdownPlugins": []}'

    err=$(DEBUG=vite,astro:telemetry astro dev 2>&1 >/dev/null)
    case "$err" in *"debug, not stored"*'"name":"config"'*) ok "node astro: DEBUG=astro:telemetry logs the events" ;;
        *) fail "node astro: DEBUG=astro:telemetry logs the events" "stderr: $(echo "$err" | head -c 200)" ;; esac
    check_eq "node astro: ... and records nothing" "$(events astro | tr ',' '\n' | grep -c started)" 1
    astro fail >/dev/null 2>&1
    e=$(HOME="$EX" tel show --app astro | tail -n 1)
    case "$e" in *'"error_class":"ConfigNotFound"'*'"error":'*) case "$e" in *"$EX"*) fail "node astro: sanitized error information" "the path was recorded" ;;
        *) ok "node astro: sanitized error information" ;; esac ;;
        *) fail "node astro: sanitized error information" "$e" ;; esac
    ASTRO_TELEMETRY_DISABLED=1 astro build >/dev/null
    check_eq "node astro: ASTRO_TELEMETRY_DISABLED=1 opts out and purges" "$(events astro)" ""
    astro build >/dev/null
    astro telemetry disable >/dev/null
    check_eq "node astro: astro telemetry disable purges and keeps it off" "$(astro build >/dev/null; events astro)" ""
fi

export TEL_SYNC_PATH="$SAVED_SYNC_PATH"

# ---------------------------------------- from each language to tel-collect
rm -f "$T_TMP/tc.port"
tel-collect -q --port 0 --port-file "$T_TMP/tc.port" --out "$T_TMP/tc.jsonl" 2>"$T_TMP/tc.err" &
CPID=$!
i=0
while [ ! -s "$T_TMP/tc.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
URL="http://127.0.0.1:$(cat "$T_TMP/tc.port")/v1/batch"
HOME="$E2E" tel-sync --all --endpoint "$URL" >/dev/null 2>&1
kill $CPID 2>/dev/null
wait $CPID 2>/dev/null
for l in $langs; do
    got=$($PY - "$T_TMP/tc.jsonl" "e2e-$l" <<'EOF'
import json, sys
evs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
mine = [e for e in evs if e["context"]["app"] == sys.argv[2]]
if len(mine) != 1:
    print("%d events arrived" % len(mine)); sys.exit()
p = mine[0]["props"]
want = {"count": 3, "ratio": 2.5, "ok": True, "none": None, "who": "équipe"}
types = {k: type(v).__name__ for k, v in p.items()}
if p != want or types != {k: type(v).__name__ for k, v in want.items()}:
    print("props %s types %s" % (json.dumps(p), types)); sys.exit()
print("typed")
EOF
)
    check_eq "$l: an event recorded from the language arrives at tel-collect with its types" "$got" "typed"
    n=$(grep -c "\"e2e-$l-dnt\"" "$T_TMP/tc.jsonl")
    if [ "$n" = 0 ] && [ ! -e "$E2E/.local/state/e2e-$l-dnt" ]; then ok "$l: with DO_NOT_TRACK=1 nothing is queued or delivered"
    else fail "$l: with DO_NOT_TRACK=1 nothing is queued or delivered" "$n delivered, state: $(ls "$E2E/.local/state/")"; fi
done
t_done
