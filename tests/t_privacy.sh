#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_privacy.sh - what never leaves the machine, and what never shows.
#
# The runs happen under a user name, host name, HOME, working directory,
# option value and environment value that each carry a distinctive marker.
# Then every byte tel keeps (the queue, the cookie, sent.log, the notice
# file, everything under the state directory), every byte uploaded (raw
# request heads and bodies kept by tests/rawsink.py, gunzipped), the
# INSPECT output and tel-collect's JSON lines are searched for the
# markers.  The collector token gets the same search over everything a
# person or a log sees, and must still reach the collector's
# Authorization header, so that the search is known to look where the
# token would be.
. "$TEL_TOP/tests/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
PY=/usr/bin/python3
M=qx7pv
TOK="tok-kw3tk9"

wait_file() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}

PHOME="$T_TMP/${M}home"
PCWD="$T_TMP/${M}cwd"
mkdir -p "$PHOME" "$PCWD"
PSTATE="$PHOME/.local/state/mycli"
SECRET="/home/${M}user/secret-${M}sec.txt"

# Background servers are stopped however the script ends.
BG=""
trap 'kill $BG 2>/dev/null; t_cleanup' EXIT
SINK="$T_TMP/sink"
$PY "$TEL_TOP/tests/rawsink.py" --ports 2 --port-file "$T_TMP/ports" --dir "$SINK" &
BG="$BG $!"
wait_file "$T_TMP/ports"
SINK_URL="http://127.0.0.1:$(head -n 1 "$T_TMP/ports")/v1/batch"
tel-collect -v --token "$TOK" --port 0 --port-file "$T_TMP/tc.port" --out "$T_TMP/tc.jsonl" 2>"$T_TMP/tc.err" &
BG="$BG $!"
wait_file "$T_TMP/tc.port"
TC_URL="http://127.0.0.1:$(cat "$T_TMP/tc.port")/v1/batch"

# A host name of our own needs a UTS namespace, which needs root.
HOSTWRAP=""
if unshare --uts sh -c "hostname ${M}host" 2>/dev/null; then
    HOSTWRAP="unshare --uts sh -c 'hostname ${M}host && exec \"\$@\"' sh"
    ok "host name set to ${M}host in a UTS namespace"
else
    skip "host name marker (no UTS namespace here; the other markers still run)"
fi

# priv CMD...: runs CMD as the marked user, in the marked directory, with
# the token and a marked environment value set.  The host's detached
# tel-sync is turned into /bin/true so that the syncs below are the only
# ones, and each sees the whole queue.
priv() {
    (cd "$PCWD" && eval "env HOME=\"$PHOME\" USER=${M}user LOGNAME=${M}user \
        MYCLI_DEPLOY_TARGET=${M}env PROJECT_DIR=\"$PCWD\" \
        MYCLI_TELEMETRY_TOKEN=$TOK TEL_SYNC_PATH=/bin/true $HOSTWRAP \"\$@\"")
}

# emit_all: the events of one round, through the host and through tel.
emit_all() {
    priv mycli --force --output "$SECRET" deploy >/dev/null 2>>"$T_TMP/host.err"
    priv mycli --output "$SECRET" fail >/dev/null 2>>"$T_TMP/host.err"
    priv env MYCLI_TELEMETRY_LOGGING=true mycli --output "$SECRET" build >/dev/null 2>>"$T_TMP/host.err"
    priv tel emit --app mycli --app-version 1.0 cmd.run exit_code=0 ok=true dur=1.5 kind=plain \
        2>>"$T_TMP/host.err"
}

# The wrapper really puts each marker where the programs will look.
want="${M}user ${M}user $PCWD $PHOME"
[ -n "$HOSTWRAP" ] && want="$want ${M}host"
got=$(priv sh -c 'echo $USER $LOGNAME $(pwd) $HOME; [ -n "$1" ] && hostname' sh "$HOSTWRAP" | tr '\n' ' ')
check_eq "the marked user, directory, HOME and host are in place" "${got% }" "$want"

# ------------------------------------------ round 1: inspect, then the sink
emit_all
n1=$(HOME="$PHOME" tel show --app mycli | wc -l | tr -d ' ')
check_eq "round 1: the host and tel queued 7 events" "$n1" 7
check "the notice file was written (so it is searched below)" test -e "$PSTATE/telemetry-notice"
priv env MYCLI_TELEMETRY_INSPECT="$T_TMP/inspect.out" tel-sync --app mycli --endpoint "$SINK_URL" -v -v \
    >>"$T_TMP/sync.out" 2>&1
check "INSPECT wrote the batches" test -s "$T_TMP/inspect.out"
check_eq "INSPECT kept the queue" "$(HOME="$PHOME" tel show --app mycli | wc -l | tr -d ' ')" 7
priv tel-sync --app mycli --endpoint "$SINK_URL" -v -v >>"$T_TMP/sync.out" 2>&1
check_eq "round 1: tel-sync emptied the queue into the sink" \
    "$(HOME="$PHOME" tel show --app mycli | wc -l | tr -d ' ')" 0
nraw=$(ls "$SINK"/req-*.raw 2>/dev/null | wc -l | tr -d ' ')
if [ "$nraw" -ge 1 ]; then ok "the sink kept $nraw gunzipped request bodies"; else fail "the sink kept request bodies" "none"; fi
# The bodies are MessagePack, where a marker would sit as plain bytes; the
# decoded events must also be all there, so the search covers them all.
got=$($PY -c '
import glob, msgpack, sys
n = 0
for f in glob.glob(sys.argv[1] + "/req-*.raw"):
    n += len(msgpack.unpackb(open(f, "rb").read(), raw=False)["e"])
print(n)' "$SINK" 2>&1)
check_eq "the sink received all 7 events" "$got" 7

# ------------------------------------------- round 2: through tel-collect
emit_all
priv tel-sync --app mycli --endpoint "$TC_URL" -v -v >>"$T_TMP/sync.out" 2>&1
check_eq "round 2: tel-collect stored the 7 events" "$(wc -l <"$T_TMP/tc.jsonl" | tr -d ' ')" 7

# ------------------------------------- a daemon: state directory, cluster id
# Its queue sits under the marked HOME (so the search below covers it), its
# installation id carries a marker, and its events go to tel-collect too.
POD="$PHOME/pod"
priv "$TEL_BUILD/bin/cozystack" --component controller --state-dir "$POD" \
    --cluster-uid "${M}cluster" --iterations 1 2>>"$T_TMP/host.err"
priv env COZYSTACK_CONTROLLER_TELEMETRY_STATE_DIR="$POD" COZYSTACK_CONTROLLER_TELEMETRY_TOKEN="$TOK" tel-sync --app cozystack-controller \
    --endpoint "$TC_URL" -v -v >>"$T_TMP/sync.out" 2>&1
check_eq "the daemon's 5 samples reached tel-collect too" \
    "$(grep -c '"app":"cozystack-controller"' "$T_TMP/tc.jsonl")" 5

# ----------------------------- the example hosts: a marked command word
# Whatever a user types where a command name goes may be a path or a
# secret: each example records only names from its own list ("unknown"
# for anything else) and an error by its class alone.  Their events are
# kept under the marked HOME, shown by tel show and stored by tel-collect,
# all searched below; the hosts' audit log lines are searched here.
ARG="${M}arg"
EXAPPS="atmos astro cloudquery werf"
for host in $EXAPPS; do
    priv env WERF_TELEMETRY=1 ATMOS_TELEMETRY_LOGGING=true "$TEL_BUILD/bin/$host" "$ARG" \
        >/dev/null 2>>"$T_TMP/examples.err"
done
priv env ATMOS_TELEMETRY_LOGGING=true "$TEL_BUILD/bin/atmos" terraform "$ARG" -s "$ARG" \
    >/dev/null 2>>"$T_TMP/examples.err"
priv "$TEL_BUILD/bin/cloudquery" --debug-telemetry "$ARG" >/dev/null 2>>"$T_TMP/examples.err"
nhosts=4
if command -v node >/dev/null 2>&1 && [ -f "$TEL_BUILD/tel.node" ]; then
    priv env TEL_NODE_ADDON="$TEL_BUILD/tel.node" node "$TEL_TOP/examples/node/astro/astro.js" "$ARG" \
        >/dev/null 2>>"$T_TMP/examples.err"
    nhosts=$((nhosts + 1))
else
    skip "the Node astro example with a marked command (no node or no tel.node)"
fi
if command -v go >/dev/null 2>&1 &&
    (cd "$TEL_TOP/examples/go/werf" && go build -o "$T_TMP/gowerf" .) >"$T_TMP/gowerf.log" 2>&1; then
    priv env WERF_TELEMETRY=1 "$T_TMP/gowerf" "$ARG" >/dev/null 2>>"$T_TMP/examples.err"
    nhosts=$((nhosts + 1))
else
    skip "the Go werf example with a marked command (no go, or it does not build here)"
fi
check "the hosts told their user about the word (so it reached them)" grep -qF -- "$ARG" "$T_TMP/examples.err"
check "atmos's audit log was on (so it is searched)" grep -q 'INFO  telemetry' "$T_TMP/examples.err"
check_eq "no audit log line holds the word" "$(grep 'INFO  telemetry' "$T_TMP/examples.err" | grep -cF -- "$ARG")" 0
for app in $EXAPPS; do
    HOME="$PHOME" tel show --app "$app" >>"$T_TMP/examples.shown" 2>&1
    priv env WERF_TELEMETRY=1 "$(echo "$app" | tr a-z A-Z)_TELEMETRY_TOKEN=$TOK" tel-sync --app "$app" \
        --endpoint "$TC_URL" -v -v >>"$T_TMP/sync.out" 2>&1
done
check_eq "each example's unknown command was recorded as 'unknown'" \
    "$(grep '"name":"command.started"' "$T_TMP/tc.jsonl" | grep -c -e '"command":"unknown"' -e '"command":"werf unknown"')" \
    "$((nhosts + 2))"
check_eq "and its error by class alone" \
    "$(grep '"name":"command.exited"' "$T_TMP/tc.jsonl" | grep -e '"command":"unknown"' -e '"command":"werf unknown"' | grep -c -e '"error":')" 0

# ------------------------------- run ids, erasure: what forget leaves behind
# A marked (malformed) execution id in the environment is ignored, never
# stored or sent; tel exec-id prints a fresh UUID, not the marked value.
# A forget with erasure offered leaves a request file (under the marked
# HOME, so the search covers it; a copy is kept, because tel-sync sends it
# to the sink and removes it), and tel status shows no id of it.
priv env ERASECLI_TELEMETRY_EXEC_ID="${M}env" tel emit --app erasecli --offer-erasure run.one \
    2>>"$T_TMP/host.err"
xid=$(priv env ERASECLI_TELEMETRY_EXEC_ID="${M}env" tel exec-id --app erasecli 2>&1)
check "tel exec-id ignores a marked value and prints a UUID" \
    sh -c 'echo "$1" | grep -Eqx "[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}"' sh "$xid"
priv env ERASECLI_TELEMETRY_EXEC_ID="$xid" tel emit --app erasecli --exec-id "$xid" run.two \
    2>>"$T_TMP/host.err"
priv tel-sync --app erasecli --endpoint "$SINK_URL" -v -v >>"$T_TMP/sync.out" 2>&1
priv tel forget --app erasecli >>"$T_TMP/host.err" 2>&1
REQ=$(ls "$PHOME/.local/state/erasecli/telemetry-erasure/" 2>/dev/null | head -n 1)
check "forget left an erasure request (so it is searched)" test -n "$REQ"
cp "$PHOME/.local/state/erasecli/telemetry-erasure/$REQ" "$T_TMP/erasure.req" 2>/dev/null
priv tel status --app erasecli >"$T_TMP/status-erasure.txt" 2>&1
priv tel status --app erasecli --json >>"$T_TMP/status-erasure.txt" 2>&1
check "tel status names the waiting request" grep -q "1 request to send" "$T_TMP/status-erasure.txt"
check "tel status shows no id of it" sh -c '! grep -qF -- "$1" "$2"' sh "${REQ:-none}" \
    "$T_TMP/status-erasure.txt"
priv tel-sync --app erasecli --endpoint "$SINK_URL" -v -v >>"$T_TMP/sync.out" 2>&1
check "tel-sync sent the request and removed it" \
    test ! -e "$PHOME/.local/state/erasecli/telemetry-erasure/$REQ"

# ------------------------------------------------------------- the search
# Everything under the state directory, whatever its name: data.mdb,
# lock.mdb, the cookie, sent.log, the notice, the stamps and locks.
STORED=$(find "$PHOME" -type f | sort)
check "sent.log exists (so it is searched)" test -s "$PSTATE/telemetry/sent.log"
UPLOADED=$(ls "$SINK"/req-* 2>/dev/null | grep -v '\.port$')
SEEN="$T_TMP/inspect.out $T_TMP/tc.jsonl $T_TMP/erasure.req $T_TMP/examples.shown"
markers="${M}user ${M}home ${M}cwd ${M}sec ${M}env ${M}cluster ${M}arg $PHOME $PCWD $SECRET"
[ -n "$HOSTWRAP" ] && markers="$markers ${M}host"
for m in $markers $M; do
    # shellcheck disable=SC2086
    for set in STORED UPLOADED SEEN; do
        eval "files=\$$set"
        found=$(grep -laF -- "$m" $files 2>/dev/null | tr '\n' ' ')
        check_eq "'$m' is in no $(echo $set | tr 'A-Z' 'a-z') byte" "$found" ""
    done
done
# The search finds a marker where there is one: the option's value went to
# the host's own stdout, never to tel, so plant one in a copy instead.
cp "$T_TMP/inspect.out" "$T_TMP/planted"
printf '%s\n' "$SECRET" >>"$T_TMP/planted"
check "the search itself finds a planted marker" grep -qaF -- "${M}sec" "$T_TMP/planted"
# What the host was asked is recorded as names: the option name "output"
# arrived, its value did not.
check "the option name 'output' was uploaded" grep -qaF '"options":"force,output"' "$T_TMP/tc.jsonl"

# ---------------------------------------------------------------- the token
# It travels in the Authorization header, and nowhere else.
auth=$(cat "$SINK"/req-*.head 2>/dev/null | tr -d '\r' | grep -c "^Authorization: Bearer $TOK\$")
if [ "$auth" -ge 1 ]; then ok "the token reached the collector as 'Authorization: Bearer'"
else fail "the token reached the collector as 'Authorization: Bearer'" "in $auth request heads"; fi
# The status field only: "listening on ... port 40123" must not count.
check_eq "tel-collect accepted it (a wrong token gets 401)" "$(grep -c ' 401 events=' "$T_TMP/tc.err")" 0
for f in "$SINK"/req-*.head; do
    tr -d '\r' <"$f" | grep -v '^Authorization: ' >>"$T_TMP/heads-without-auth"
done
priv tel status --app mycli >"$T_TMP/status.txt" 2>&1
priv tel status --app mycli --json >"$T_TMP/status.json" 2>&1
check_eq "status --json says a token is set" \
    "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["token_set"])' "$T_TMP/status.json" 2>&1)" True

# Error paths that hold the token in hand: a collector answering 401, an
# endpoint refused by policy, a config file broken on the token's line,
# and a token too long to use.
$PY "$TEL_TOP/tests/rawsink.py" --ports 1 --port-file "$T_TMP/ports401" --dir "$T_TMP/sink401" \
    --status 401 --first 1000 &
BG="$BG $!"
wait_file "$T_TMP/ports401"
U401="http://127.0.0.1:$(cat "$T_TMP/ports401")/v1/batch"
priv tel emit --app mycli after.round 2>>"$T_TMP/errors.out"
priv tel-sync --app mycli --endpoint "$U401" -v -v >>"$T_TMP/errors.out" 2>&1
priv tel status --app mycli >>"$T_TMP/errors.out" 2>&1
priv tel status --app mycli --json >>"$T_TMP/errors.out" 2>&1
check "the 401 shows in tel status" grep -q '"last_status":401' "$T_TMP/errors.out"
priv tel-sync --app mycli --endpoint http://192.0.2.1/v1/batch --force -v -v >>"$T_TMP/errors.out" 2>&1
priv tel-sync --app mycli --token "$TOK" --endpoint http://192.0.2.1/v1/batch -v -v >>"$T_TMP/errors.out" 2>&1
mkdir -p "$PHOME/.config/mycli"
printf 'token = "%s\n' "$TOK" >"$PHOME/.config/mycli/telemetry.conf"
priv tel status --app mycli >>"$T_TMP/errors.out" 2>&1
priv tel emit --app mycli ev >>"$T_TMP/errors.out" 2>&1
priv tel-sync --app mycli -v -v >>"$T_TMP/errors.out" 2>&1
printf 'token %s\n' "$TOK" >"$PHOME/.config/mycli/telemetry.conf"
priv tel status --app mycli --json >>"$T_TMP/errors.out" 2>&1
rm -f "$PHOME/.config/mycli/telemetry.conf"
long=$(printf '%0600d' 0 | tr 0 t)
priv env MYCLI_TELEMETRY_TOKEN="$TOK$long" tel-sync --app mycli --endpoint "$U401" --force -v -v \
    >>"$T_TMP/errors.out" 2>&1
priv tel emit --app mycli --token "$TOK$long" ev >>"$T_TMP/errors.out" 2>&1
check "the error runs said something (so the search has text)" test -s "$T_TMP/errors.out"

# token_absent NAME FILES...: the token is in none of them.
token_absent() {
    n=$1; shift
    found=$(grep -laF -- "$TOK" "$@" 2>/dev/null | tr '\n' ' ')
    check_eq "the token is not in $n" "$found" ""
}
token_absent "tel status" "$T_TMP/status.txt"
token_absent "tel status --json" "$T_TMP/status.json"
token_absent "tel-sync -v -v output" "$T_TMP/sync.out"
token_absent "sent.log" "$PSTATE/telemetry/sent.log"
token_absent "the INSPECT output" "$T_TMP/inspect.out"
token_absent "error messages and status after failures" "$T_TMP/errors.out"
token_absent "the host's stderr (notice, audit log)" "$T_TMP/host.err"
token_absent "any stored file" $(find "$PHOME" -type f)
token_absent "request bodies or other headers" "$T_TMP/heads-without-auth" $(ls "$SINK"/req-*.body "$SINK"/req-*.raw)
token_absent "tel-collect's stored events" "$T_TMP/tc.jsonl"
check "the audit log was on for one run (so it is searched)" grep -q 'telemetry: recorded: ' "$T_TMP/host.err"

t_done
