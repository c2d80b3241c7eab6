#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_optout.sh - every way to turn telemetry off, against every path
# that could store or send something: `tel emit`, a host (mycli), tel-sync,
# and the tel-sync a host spawns as it exits.  For each pairing: exit 0,
# nothing stored, no cookie on a fresh HOME, not one connection to the
# collector, no tel-sync started, and a queue filled before the opt-out
# emptied -- except for the host's --no-telemetry, which is one run's off,
# not an opt-out: that run records nothing and leaves the queue and the
# cookie of other runs as they were.  The same runs without an opt-out
# must do all of those things, which is what shows each check can fail.
. "$TEL_TOP/tests/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
unset MYCLI_TELEMETRY_ENABLED MYCLI_TELEMETRY_ENDPOINT MYCLI_TELEMETRY_TOKEN \
    MYCLI_TELEMETRY_LOGGING MYCLI_TELEMETRY_DEBUG MYCLI_TELEMETRY_INSPECT
PY=/usr/bin/python3
REAL_SYNC=${TEL_SYNC_PATH:?run through tests/run.sh}

wait_file() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}

# Background servers are stopped however the script ends.
BG=""
trap 'kill $BG 2>/dev/null; t_cleanup' EXIT
# One bare listener with a port per case, so that a connection can be
# traced to the case that made it.
SINK="$T_TMP/sink"
$PY "$TEL_TOP/tests/rawsink.py" --ports 90 --port-file "$T_TMP/ports" --dir "$SINK" &
SINK_PID=$!
BG="$BG $!"
wait_file "$T_TMP/ports"
PORTS=$(cat "$T_TMP/ports")
[ -n "$PORTS" ] || { fail "listener" "rawsink.py did not start"; t_done; }
take_port() { PORT=$1; shift; PORTS="$*"; }

# The spawned tel-sync goes through this wrapper, which leaves a trace
# beside the case's HOME (outside it, so "nothing created" stays exact).
cat >"$T_TMP/sync-wrapper" <<EOF
#!/bin/sh
echo "started \$*" >>"\$HOME.spawned"
"$REAL_SYNC" "\$@"
echo "ended \$?" >>"\$HOME.spawned"
EOF
chmod +x "$T_TMP/sync-wrapper"
export TEL_SYNC_PATH="$T_TMP/sync-wrapper"

conns() { $PY -c 'import json,sys; c=json.load(open(sys.argv[1]))[sys.argv[2]]; print(c["conns"], c["bytes"])' "$SINK/counts.json" "$1"; }
stored() { tel show --app mycli 2>/dev/null | wc -l | tr -d ' '; }
# Entries in the LMDB events table, read by LMDB's own tool; 0 without a file.
entries() {
    q="$HOME/.local/state/mycli/telemetry"
    if [ -e "$q/data.mdb" ]; then mdb_stat -s events "$q" 2>/dev/null | sed -n 's/.*Entries: //p'; else echo 0; fi
}

# opt_prefix OPTOUT: the words put before the command for env opt-outs.
# opt_persist OPTOUT: writes the persistent ones (config file, tel disable).
opt_prefix() {
    case "$1" in
    env=*) echo "env MYCLI_TELEMETRY_ENABLED=${1#env=}" ;;
    dnt=*) echo "env DO_NOT_TRACK=${1#dnt=}" ;;
    envtrue+conf) echo "env MYCLI_TELEMETRY_ENABLED=true" ;;
    *) echo "env" ;;
    esac
}
opt_persist() {
    case "$1" in
    conf|envtrue+conf)
        mkdir -p "$HOME/.config/mycli"
        printf '# mine\nenabled = false\n' >"$HOME/.config/mycli/telemetry.conf" ;;
    disable) tel disable --app mycli >/dev/null 2>&1 || fail "$2" "tel disable failed" ;;
    esac
}

CASES="$T_TMP/cases"
: >"$CASES"
ncase=0

# case OPTOUT PATH FILL WANT: one cell of the matrix.
#   OPTOUT: none conf env=V disable flag dnt=V envtrue+conf
#   PATH:   emit (tel emit), mycli (a host run; its exit may spawn
#           tel-sync), sync (tel-sync --app), syncall (tel-sync --all)
#   FILL:   fresh (empty HOME) or filled (3 events queued before the opt-out)
#   WANT:   off (nothing may happen), keep (nothing may happen, and what
#           was queued stays, cookie and all) or on (the control)
case_run() {
    opt=$1 path=$2 fill=$3 want=$4
    ncase=$((ncase + 1))
    label="$opt x $path, $fill"
    export HOME="$T_TMP/c$ncase"
    mkdir -p "$HOME"
    take_port $PORTS
    export MYCLI_TELEMETRY_ENDPOINT="http://127.0.0.1:$PORT/v1/batch"
    if [ "$fill" = filled ]; then
        for e in fill.one fill.two fill.three; do tel emit --app mycli "$e" k=1 >/dev/null 2>&1; done
        [ "$(stored)" = 3 ] || fail "$label: setup" "the queue was not filled"
    fi
    cookie_before=$(cat "$HOME/.local/state/mycli/telemetry-cookie" 2>/dev/null)
    opt_persist "$opt" "$label"
    pre=$(opt_prefix "$opt")
    flag=""
    [ "$opt" = flag ] && flag=--no-telemetry
    case "$path" in
    emit) $pre tel emit --app mycli some.event k=v n=3 >"$T_TMP/out" 2>&1 ;;
    mycli) $pre mycli $flag --force deploy >"$T_TMP/out" 2>&1 ;;
    sync) $pre tel-sync --app mycli -v >"$T_TMP/out" 2>&1 ;;
    syncall) $pre tel-sync --all >"$T_TMP/out" 2>&1 ;;
    esac
    rc=$?
    check_eq "$label: exit 0" "$rc" 0
    st=$(stored) en=$(entries)
    if [ "$want" = keep ]; then
        check_eq "$label: the events of other runs stay queued, none added" "$st:$en" 3:3
        check_eq "$label: the anonymous id is kept" \
            "$(cat "$HOME/.local/state/mycli/telemetry-cookie" 2>/dev/null)" "$cookie_before"
    elif [ "$want" = off ]; then
        check_eq "$label: tel show is empty" "$st" 0
        check_eq "$label: data.mdb holds no events" "$en" 0
        if [ "$fill" = fresh ]; then
            check "$label: no cookie created" test ! -e "$HOME/.local/state/mycli/telemetry-cookie"
            check "$label: no state directory created" test ! -e "$HOME/.local/state"
        fi
    else
        case "$path" in
        emit|mycli)
            # A host run also spawns tel-sync (it has queued something, on a
            # fresh HOME too), which may drain the queue between the two
            # counts; what it delivers is checked below, at the collector.
            if [ "$path" = mycli ]; then
                if [ "$st" -gt 0 ] || [ "$en" -gt 0 ] || [ -e "$T_TMP/c$ncase.spawned" ]; then
                    ok "$label (control): events are stored or already being sent"
                else fail "$label (control): events are stored or already being sent" "show $st, entries $en"; fi
            elif [ "$st" -gt 0 ] && [ "$en" = "$st" ]; then ok "$label (control): events are stored"
            else fail "$label (control): events are stored" "show $st, entries $en"; fi
            check "$label (control): a cookie exists" test -f "$HOME/.local/state/mycli/telemetry-cookie" ;;
        esac
    fi
    echo "$ncase $PORT $want $path $fill $label" >>"$CASES"
}

# ------------------------------------------------------------ the matrix
for opt in conf env=false disable dnt=1 flag; do
    for fill in fresh filled; do
        for path in emit mycli sync; do
            # The host's flag is a flag of one host run: tel and tel-sync
            # have no such thing to be given.
            [ "$opt" = flag ] && [ "$path" != mycli ] && continue
            want=off
            [ "$opt" = flag ] && [ "$fill" = filled ] && want=keep
            case_run "$opt" "$path" "$fill" $want
        done
    done
done
# The other spellings of "off", and --all, on the paths tel emit's own
# tests (t_tel.sh) do not cover.
for v in 0 no off; do
    case_run "env=$v" mycli filled off
    case_run "env=$v" sync filled off
done
case_run dnt=1 syncall filled off
case_run conf syncall filled off
# An "on" somewhere does not outvote an "off" elsewhere.
case_run envtrue+conf mycli filled off
case_run envtrue+conf sync filled off

# DO_NOT_TRACK set to "", "0" or "false" is not an opt-out; t_tel.sh checks
# tel emit, these check the host, tel-sync and the spawn.
for v in "" 0 false; do
    case_run "dnt=$v" mycli filled on
    case_run "dnt=$v" sync filled on
done
# Controls with no opt-out at all.
case_run none emit fresh on
case_run none mycli fresh on
case_run none mycli filled on
case_run none sync filled on
case_run none syncall filled on

# --------------------------------------------- network and spawn, deferred
# A wrongly spawned tel-sync is detached and may still be starting when its
# host exits, so the network and spawn checks wait for stragglers once for
# all cases.  The controls must show the connection and the spawn.
settle=1
[ "${TEL_SANITIZED:-0}" = 1 ] && settle=3
sleep $settle
while read -r cn cport cwant cpath cfill clabel; do
    set -- $(conns "$cport")
    spawned="$T_TMP/c$cn.spawned"
    if [ "$cwant" != on ]; then
        check_eq "$clabel: not one connection or byte reached the collector" "$1 $2" "0 0"
        if [ -e "$spawned" ]; then fail "$clabel: no tel-sync spawned" "$(head -n 1 "$spawned")"
        else ok "$clabel: no tel-sync spawned"; fi
    else
        case "$cpath" in
        sync|syncall)
            if [ "$1" -gt 0 ] && [ "$2" -gt 0 ]; then ok "$clabel (control): the collector was reached"
            else fail "$clabel (control): the collector was reached" "$1 connections, $2 bytes"; fi ;;
        mycli)
            if [ "$cfill" = filled ]; then
                # The spawned sync delivers what was queued plus this run.
                i=0
                while ! grep -q '^ended' "$spawned" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
                check_eq "$clabel (control): tel-sync was spawned and ended 0" \
                    "$(grep -c '^started --app mycli' "$spawned" 2>/dev/null):$(sed -n 's/^ended //p' "$spawned" 2>/dev/null)" "1:0"
                set -- $(conns "$cport")
                if [ "$1" -gt 0 ]; then ok "$clabel (control): the spawned tel-sync reached the collector"
                else fail "$clabel (control): the spawned tel-sync reached the collector" "no connection"; fi
            fi ;;
        esac
    fi
done <"$CASES"

# ----------------------------------------------------- tel-collect as well
# The same pairings against the reference collector, counted from its own
# request log (-v prints one line per request) and its output file.
export HOME="$T_TMP/tc"
mkdir -p "$HOME"
tel-collect -v --port 0 --port-file "$T_TMP/tc.port" --out "$T_TMP/tc.jsonl" 2>"$T_TMP/tc.err" &
TC_PID=$!
BG="$BG $!"
wait_file "$T_TMP/tc.port"
TC_URL="http://127.0.0.1:$(cat "$T_TMP/tc.port")/v1/batch"
unset MYCLI_TELEMETRY_ENDPOINT
tc_requests() { grep -cE '^tel-collect: [A-Z]+ /' "$T_TMP/tc.err"; }
for opt in conf env=false disable dnt=1; do
    export HOME="$T_TMP/tc-$opt"
    mkdir -p "$HOME"
    for e in a b c; do tel emit --app mycli --endpoint "$TC_URL" "fill.$e" >/dev/null 2>&1; done
    opt_persist "$opt" "tel-collect, $opt"
    $(opt_prefix "$opt") tel-sync --app mycli >/dev/null 2>&1
    check_eq "tel-collect, $opt: the queue is purged" "$(stored)" 0
    $(opt_prefix "$opt") tel-sync --app mycli --endpoint "$TC_URL" --force >/dev/null 2>&1
done
check_eq "tel-collect: no request from any opted-out sync" "$(tc_requests)" 0
check_eq "tel-collect: nothing stored" "$(wc -c <"$T_TMP/tc.jsonl" | tr -d ' ')" 0
export HOME="$T_TMP/tc-control"
mkdir -p "$HOME"
tel emit --app mycli --endpoint "$TC_URL" fill.a >/dev/null 2>&1
tel-sync --app mycli >/dev/null 2>&1
check_eq "tel-collect (control): one request from a sync that is on" "$(tc_requests)" 1
kill $TC_PID 2>/dev/null

# ----------------------------------------------- status names the decider
# status_case OPTOUT DECIDED_BY REASON_PATTERN
status_case() {
    export HOME="$T_TMP/st-$1"
    mkdir -p "$HOME"
    tel emit --app mycli ev >/dev/null 2>&1
    opt_persist "$1" "status, $1"
    $(opt_prefix "$1") tel status --app mycli --json >"$T_TMP/st.json" 2>&1
    got=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["enabled"], d["decided_by"], d["reason"])' "$T_TMP/st.json" 2>&1)
    case "$got" in
    "False $2 "$3) ok "status --json, $1: enabled false, decided by $2 ($3)" ;;
    *) fail "status --json, $1: enabled false, decided by $2 ($3)" "$got" ;;
    esac
    line=$($(opt_prefix "$1") mycli telemetry status 2>&1)
    case "$line" in
    "telemetry is off (decided by $2"*) ok "mycli telemetry status, $1: off, decided by $2" ;;
    *) fail "mycli telemetry status, $1: off, decided by $2" "$line" ;;
    esac
}
status_case conf config "telemetry.conf line 2"
status_case disable config "telemetry.conf line 1"
status_case env=false env MYCLI_TELEMETRY_ENABLED
status_case env=off env MYCLI_TELEMETRY_ENABLED
status_case dnt=1 env DO_NOT_TRACK
status_case dnt=yes env DO_NOT_TRACK
status_case envtrue+conf config "telemetry.conf line 2"
export HOME="$T_TMP/st-on"
mkdir -p "$HOME"
for v in "" 0 false; do
    got=$(env DO_NOT_TRACK=$v tel status --app mycli --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["enabled"])' 2>&1)
    check_eq "status --json, DO_NOT_TRACK='$v': still enabled" "$got" True
done

kill $SINK_PID 2>/dev/null
t_done
