#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_promises.sh - promises an outside review found broken (leaks,
# hangs, lost events, changed values), each checked the way the review
# broke it.  docs/RELIABILITY.md lists which check guards which finding.
. "$TEL_TOP/tests/lib.sh"

PY=/usr/bin/python3
OUT="$T_TMP/out"
ERR="$T_TMP/err"
run() { "$@" >"$OUT" 2>"$ERR"; RC=$?; }
count() { tel show --app "$1" 2>/dev/null | wc -l | tr -d ' '; }

# ------------------------------------------- a path is never a command name
run mycli --output "$T_TMP/zq8out" /home/zq8alice/SECRETPROJ
check_eq "mycli with a path as its command exits 2" "$RC" 2
if tel show --app mycli 2>/dev/null | grep -q SECRETPROJ; then
    fail "a path given as mycli's command is never recorded" "$(tel show --app mycli | head -c 300)"
else
    ok "a path given as mycli's command is never recorded"
fi
mycli --force deploy >/dev/null 2>&1
check_eq "a known command is still recorded" \
    "$(tel show --app mycli | grep -c '"name":"command.started".*"command":"deploy"')" 1
rm -rf "$STATE/mycli"

# ------------------------------- control bytes in a metric label value
printf 'ok_total 1\nm{path="a\001b"} 1\n' >"$T_TMP/ctl.prom"
run tel metrics --app met "$T_TMP/ctl.prom"
check_eq "tel metrics refuses a control byte in a label value (exit 2)" "$RC" 2
case "$(cat "$ERR")" in *"line 2: label 'path' value has a control byte"*) ok "naming the line and the label" ;;
*) fail "naming the line and the label" "$(cat "$ERR")" ;; esac
check_eq "and queues none of the text" "$(count met)" 0

# ------------------------------------------ tel emit never changes a value
run tel emit --app kv ev version=1.10 zip=00123 big=99999999999999999999 sp=' 5' plus=+5 \
    e=1e3 hundred=100.0 neg=-3 dec=2.5 t=true e20=1e+20
check_eq "tel emit with look-alike numbers exits 0" "$RC" 0
P='evs[-1]["props"]'
pyshow() {
    tel show --app "$1" 2>/dev/null |
        $PY -c "import json,sys; evs=[json.loads(l) for l in sys.stdin if l.strip()]; print($2)"
}
for k in version:1.10 zip:00123 big:99999999999999999999 "sp: 5" plus:+5 e:1e3 hundred:100.0; do
    key=${k%%:*} want=${k#*:}
    check_eq "tel emit keeps $key='$want' as the string it was" "$(pyshow kv "repr($P['$key'])")" "'$want'"
done
check_eq "-3 becomes an integer" "$(pyshow kv "repr($P['neg'])")" -3
check_eq "2.5 becomes a decimal" "$(pyshow kv "repr($P['dec'])")" 2.5
check_eq "true becomes a boolean" "$(pyshow kv "repr($P['t'])")" True
check_eq "1e+20 (how tel prints 10^20) becomes a decimal" "$(pyshow kv "repr($P['e20'])")" 1e+20
check_eq "tel show prints each number back as it was typed" \
    "$(tel show --app kv | tail -n 1 | grep -o '"neg":-3,"dec":2.5' )" '"neg":-3,"dec":2.5'

run tel emit --app kv2 ev 'n:=1.10' 'i:=7' 's:="00123"' 'b:=false' 'z:=null' 'u:="caf\u00e9 \"q\""' 'x=a:=b'
check_eq "tel emit KEY:=JSON exits 0" "$RC" 0
check_eq "KEY:=JSON gives a number" "$(pyshow kv2 "repr($P['n'])")" 1.1
check_eq "KEY:=JSON gives an integer" "$(pyshow kv2 "repr($P['i'])")" 7
check_eq "KEY:=JSON gives a string that looks like a number" "$(pyshow kv2 "repr($P['s'])")" "'00123'"
check_eq "KEY:=JSON gives a boolean" "$(pyshow kv2 "repr($P['b'])")" False
check_eq "KEY:=JSON gives null" "$(pyshow kv2 "repr($P['z'])")" None
check_eq "KEY:=JSON decodes string escapes" "$(pyshow kv2 "$P['u'] == 'caf\u00e9 \"q\"'")" True
check_eq "':=' inside a plain value is part of the value" "$(pyshow kv2 "repr($P['x'])")" "'a:=b'"
for bad in 'a:=01' 'a:=.5' 'a:=tru' 'a:="open' 'a:=1e999' 'a:=' 'a:=NaN'; do
    run tel emit --app kv3 ev "$bad"
    check_eq "tel emit refuses $bad with exit 2" "$RC:$(count kv3)" 2:0
done

# ---------------------------------------- telemetry never fails a script
run env -i PATH="$PATH" tel emit --app nohome ev
check_eq "env -i tel emit exits 0 and says nothing" "$RC:$(cat "$OUT" "$ERR")" "0:"
run env -i PATH="$PATH" sh -ec 'tel emit --app nohome ev; tel metrics --app nohome </dev/null; echo survived'
check_eq "a set -e script survives tel emit and tel metrics without HOME" "$RC:$(cat "$OUT")" "0:survived"
run env -i PATH="$PATH" tel emit --app nohome --strict ev
check_eq "--strict restores exit 1" "$RC" 1
case "$(cat "$ERR")" in "tel: could not queue the event: "*) ok "--strict says why on stderr" ;;
*) fail "--strict says why on stderr" "$(cat "$ERR")" ;; esac
run env -i PATH="$PATH" tel emit --app nohome -v ev
check_eq "-v says why, still exit 0" "$RC:$(grep -c 'could not queue' "$ERR")" 0:1
# A state path that cannot be a directory stands for a read-only or
# broken disk here (the tests may run as root, whom chmod does not stop).
printf x >"$T_TMP/notadir"
export XDG_STATE_HOME="$T_TMP/notadir"
run tel emit --app rostate ev
check_eq "an unusable state directory: exit 0, silent" "$RC:$(cat "$ERR")" "0:"
run env ROSTATE_TELEMETRY_LOGGING=true tel emit --app rostate ev
check_eq "with logging on it says why, exit 0" "$RC:$(grep -c 'could not queue' "$ERR")" 0:1
run tel metrics --app rostate --strict "$T_TMP/ctl.prom"
check_eq "tel metrics --strict with malformed text is still bad usage (2)" "$RC" 2
printf 'up 1\n' >"$T_TMP/up.prom"
run tel metrics --app rostate "$T_TMP/up.prom"
check_eq "tel metrics into an unusable state directory: exit 0, silent" "$RC:$(cat "$ERR")" "0:"
run tel metrics --app rostate --strict "$T_TMP/up.prom"
check_eq "tel metrics --strict: exit 1" "$RC" 1
unset XDG_STATE_HOME
run env -i PATH="$PATH" tel emit --app nohome 'bad name'
check_eq "bad usage still exits 2" "$RC" 2
run tel show --app x --strict
check_eq "--strict with show is bad usage" "$RC" 2

# --------------------------- nothing in a state directory can hang tel
# A FIFO, a socket and a directory planted at every file tel opens in a
# state, queue or config directory: every command returns promptly (each
# runs under `timeout`, and hitting it is the failure) and what was queued
# is still queued or was delivered.
OUTC="$T_TMP/fx.jsonl"
tel-collect -q --port 0 --port-file "$T_TMP/fx.port" --out "$OUTC" 2>/dev/null &
i=0
while [ ! -s "$T_TMP/fx.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
FXURL="http://127.0.0.1:$(cat "$T_TMP/fx.port")/v1/batch"
plant() {
    rm -rf "$1"
    case $2 in
    fifo) mkfifo "$1" ;;
    dir) mkdir "$1" ;;
    socket) $PY -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1" ;;
    esac
    # An old mtime, so that a planted spawn.stamp does not look fresh.
    touch -h -d '2 hours ago' "$1"
}
# prompt NAME CMD...: CMD must end within 10 s.
HUNG=""
prompt() {
    timeout 10 "$@" >/dev/null 2>&1 </dev/null
    [ $? = 124 ] && HUNG="$HUNG '$*'"
}
n=0
for rel in Q/data.mdb Q/lock.mdb Q/spawn.stamp Q/sent.log Q/sync.lock Q/sync.pending S/telemetry-cookie \
    S/telemetry-notice C/telemetry.conf; do
    for kind in fifo socket dir; do
        n=$((n + 1))
        app="fx$n"
        tel emit --app "$app" before >/dev/null 2>&1
        tel emit --app "$app" before >/dev/null 2>&1
        mkdir -p "$CONF/$app"
        case $rel in
        Q/*) path="$STATE/$app/telemetry/${rel#Q/}" ;;
        S/*) path="$STATE/$app/${rel#S/}" ;;
        C/*) path="$CONF/$app/${rel#C/}" ;;
        esac
        plant "$path" "$kind"
        HUNG=""
        prompt tel emit --app "$app" ev
        prompt tel show --app "$app"
        prompt tel status --app "$app"
        prompt env TEL_SYNC_PATH=/bin/true tel emit --app "$app" --spawn-sync ev
        prompt tel-sync --app "$app" --endpoint "$FXURL" --max-time 2
        name="a $kind at ${rel#?/}"
        if [ -z "$HUNG" ]; then ok "$name: emit, show, status, emit --spawn-sync and tel-sync return"
        else fail "$name: emit, show, status, emit --spawn-sync and tel-sync return" "hung:$HUNG"; fi
        want=4
        [ "$rel" = C/telemetry.conf ] && want=2 # unreadable: off for the run, nothing recorded or purged
        if [ "$rel" != Q/data.mdb ] && [ -z "$HUNG" ]; then
            got=$(($(count "$app") + $(grep -c "\"app\":\"$app\"" "$OUTC" 2>/dev/null)))
            check_eq "$name: nothing is lost (queued + delivered)" "$got" "$want"
        fi
        HUNG=""
        prompt tel forget --app "$app"
        if [ -z "$HUNG" ]; then ok "$name: forget returns"; else fail "$name: forget returns" "hung"; fi
        rm -rf "$path"
    done
done

# ------------- nothing planted at a file the user or host names can hang tel
# The inspect file and a declared audit-log file are named by the user or
# the host, but opened like tel's own: a regular file or nothing.  A FIFO
# there (no reader) must not hang the host nor outlast tel-sync's deadline;
# a symlink there must not be followed.
for kind in fifo symlink; do
    app="named$kind"
    victim="$T_TMP/$app.victim"
    echo untouched >"$victim"
    rm -f "$T_TMP/$app.inspect" "$T_TMP/$app.log"
    if [ $kind = fifo ]; then
        mkfifo "$T_TMP/$app.inspect" "$T_TMP/$app.log"
    else
        ln -s "$victim" "$T_TMP/$app.inspect"
        ln -s "$victim" "$T_TMP/$app.log"
    fi
    HUNG=""
    prompt tel emit --app "$app" --inspect "$T_TMP/$app.inspect" ev
    prompt env LOGVAR="$T_TMP/$app.log" tel emit --app "$app" --declare-env LOGVAR=log-file ev
    tel emit --app "$app" ev >/dev/null 2>&1
    up=$(echo "$app" | tr 'a-z' 'A-Z')
    prompt env "${up}_TELEMETRY_INSPECT=$T_TMP/$app.inspect" tel-sync --app "$app" --max-time 3
    prompt env LOGVAR="$T_TMP/$app.log" tel-sync --app "$app" --endpoint "$FXURL" --max-time 3
    if [ -z "$HUNG" ]; then ok "a $kind at the inspect and audit-log files: emit and tel-sync return"
    else fail "a $kind at the inspect and audit-log files: emit and tel-sync return" "hung:$HUNG"; fi
    [ $kind = symlink ] && check_eq "a symlink at the inspect and audit-log files is never followed" \
        "$(cat "$victim")" untouched
done

# --------------------------- emits during concurrent forgets never fail
tel emit --app race ev >/dev/null 2>&1
( i=0; while [ $i -lt 150 ]; do tel forget --app race >/dev/null 2>&1; i=$((i + 1)); done ) &
FPID=$!
fails=0
i=0
while [ $i -lt 150 ]; do
    tel emit --strict --app race ev 2>>"$T_TMP/race.err" >/dev/null || fails=$((fails + 1))
    i=$((i + 1))
done
wait $FPID
check_eq "150 emits while another process forgets 150 times: none fails" "$fails" 0
check_eq "and none says why it failed" "$(head -c 300 "$T_TMP/race.err")" ""

# -------------------- no header injection through a token or endpoint
SINKDIR="$T_TMP/sink"
$PY "$TEL_TOP/tests/rawsink.py" --port-file "$T_TMP/sink.port" --dir "$SINKDIR" 2>/dev/null &
i=0
while [ ! -s "$T_TMP/sink.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
SURL="http://127.0.0.1:$(cat "$T_TMP/sink.port")/v1/batch"
conns() { $PY -c 'import json,sys; print(sum(v["conns"] for v in json.load(open(sys.argv[1])).values()))' "$SINKDIR/counts.json" 2>/dev/null || echo 0; }
CRLF=$(printf 'tok\r\nX-Injected: yes')
tel emit --app inj ev >/dev/null 2>&1
run env INJ_TELEMETRY_TOKEN="$CRLF" tel-sync --app inj --endpoint "$SURL"
check_eq "a CR/LF in <APP>_TELEMETRY_TOKEN: tel-sync exits 3 (bad configuration)" "$RC" 3
case "$(cat "$ERR")" in *"INJ_TELEMETRY_TOKEN has a control character"*) ok "naming the variable" ;;
*) fail "naming the variable" "$(cat "$ERR")" ;; esac
run tel-sync --app inj --endpoint "$SURL" --token "$CRLF"
check_eq "a CR/LF in tel-sync --token: bad usage (2)" "$RC" 2
run tel emit --app inj2 --token "$CRLF" ev
check_eq "a CR/LF in tel emit --token: bad usage (2), nothing stored" "$RC:$(count inj2)" 2:0
run env INJ_TELEMETRY_ENDPOINT="$(printf 'http://127.0.0.1:1/x\r\nHost: evil')" tel-sync --app inj
check_eq "a CR/LF in <APP>_TELEMETRY_ENDPOINT: tel-sync exits 3" "$RC" 3
run env INJ_TELEMETRY_TOKEN="$CRLF" tel status --app inj
check "tel status names the problem" grep -q "^problem: *INJ_TELEMETRY_TOKEN has a control character" "$OUT"
check_eq "the sink never saw a connection" "$(conns)" 0
check_eq "and the events are still queued" "$(count inj)" 1

# ---------------------- credentials and over-long settings, told loudly
run env INJ_TELEMETRY_ENDPOINT="https://zq8alice:hunter2@collector.example/v1/batch" tel status --app inj
check "tel status redacts a password in the endpoint" grep -q '^endpoint: *https://zq8alice:\*\*\*@collector.example/v1/batch' "$OUT"
check_not "and never prints it" grep -q hunter2 "$OUT"
run env INJ_TELEMETRY_ENDPOINT="https://zq8tok@collector.example/v1/batch" tel status --app inj --json
check_eq "a token as the user part is redacted whole (json)" \
    "$($PY -c 'import json,sys; print(json.load(sys.stdin)["endpoint"])' <"$OUT")" "https://***@collector.example/v1/batch"
run env INJ_TELEMETRY_ENDPOINT="https://collector.example/v1/batch?token=zq8qtok&region=eu#top" tel status --app inj
check "a value in the endpoint's query is redacted too" \
    grep -q '^endpoint: *https://collector.example/v1/batch?token=\*\*\*&region=\*\*\*#top' "$OUT"
check_not "and never printed" grep -q zq8qtok "$OUT"
case "$(grep '^state:' "$OUT")" in "state:       ~/.local/state/inj") ok "tel status shows the state under ~, without the user's home path" ;;
*) fail "tel status shows the state under ~, without the user's home path" "$(grep '^state:' "$OUT")" ;; esac
long=$($PY -c 'print("https://c.example/" + "x" * 1100)')
run env INJ_TELEMETRY_ENDPOINT="$long" tel-sync --app inj
check_eq "an over-long <APP>_TELEMETRY_ENDPOINT: tel-sync exits 3, not the built-in endpoint" "$RC" 3
case "$(cat "$ERR")" in *"INJ_TELEMETRY_ENDPOINT is longer than 1023 bytes"*) ok "naming the variable and the limit" ;;
*) fail "naming the variable and the limit" "$(cat "$ERR")" ;; esac
run env INJ_TELEMETRY_TOKEN="$($PY -c 'print("t" * 1100)')" tel-sync --app inj --endpoint "$SURL"
check_eq "an over-long <APP>_TELEMETRY_TOKEN: tel-sync exits 3" "$RC" 3
run env INJ_TELEMETRY_ENDPOINT="$long" tel status --app inj
check "tel status names the over-long endpoint" grep -q "^problem: *INJ_TELEMETRY_ENDPOINT is longer than 1023 bytes" "$OUT"
check_eq "still no connection, nothing lost" "$(conns):$(count inj)" 0:1

# ------------------------- a sync that could not start leaves no stamp
tel emit --app nosync ev >/dev/null 2>&1
run env PATH=/usr/bin:/bin TEL_SYNC_PATH=/nonexistent/tel-sync "$TEL_BUILD/bin/tel" emit --app nosync --spawn-sync ev
check_eq "tel emit --spawn-sync with no tel-sync anywhere exits 0" "$RC" 0
if [ -e "$STATE/nosync/telemetry/spawn.stamp" ]; then
    fail "a spawn that could not start writes no spawn.stamp" "the stamp is there: nothing would be sent for 10 minutes"
else
    ok "a spawn that could not start writes no spawn.stamp"
fi
run env TEL_SYNC_PATH=/bin/true tel emit --app nosync --spawn-sync ev
check "a spawn that starts writes the stamp" test -f "$STATE/nosync/telemetry/spawn.stamp"

# ------------------------------ a loopback endpoint never uses a proxy
PROXYDIR="$T_TMP/proxy"
$PY "$TEL_TOP/tests/rawsink.py" --port-file "$T_TMP/proxy.port" --dir "$PROXYDIR" 2>/dev/null &
i=0
while [ ! -s "$T_TMP/proxy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
PROXY="http://127.0.0.1:$(cat "$T_TMP/proxy.port")"
CPORT=$(cat "$T_TMP/fx.port")
pconns() { $PY -c 'import json,sys; print(sum(v["conns"] for v in json.load(open(sys.argv[1])).values()))' "$PROXYDIR/counts.json" 2>/dev/null || echo 0; }
n=0
for var in http_proxy HTTP_PROXY ALL_PROXY all_proxy; do
    for host in 127.0.0.1 localhost; do
        n=$((n + 1))
        app="px$n"
        tel emit --app "$app" ev >/dev/null 2>&1
        run env "$var=$PROXY" tel-sync --app "$app" --endpoint "http://$host:$CPORT/v1/batch" --token SECRETTOKEN
        check_eq "$var set, endpoint http://$host: tel-sync delivers (exit 0)" "$RC" 0
        check_eq "$var set, endpoint http://$host: the collector got the event, the proxy nothing" \
            "$(grep -c "\"app\":\"$app\"" "$OUTC"):$(pconns)" 1:0
    done
done

before=$(pconns)
tel emit --app pxs ev >/dev/null 2>&1
run env https_proxy="$PROXY" tel-sync --app pxs --endpoint "https://collector.invalid/v1/batch" --max-time 5
check_eq "an https endpoint still goes through https_proxy" "$(($(pconns) - before))" 1

# --------------- nothing queued before a forget leaves the machine after it
# A slow collector (1.5 s per answer) and 3,000 queued events: forget while
# the first batch is on the wire; tel-sync may finish that request, and
# must send nothing after it.
for verb in forget disable; do
    SLOW="$T_TMP/slow-$verb.jsonl"
    rm -f "$T_TMP/slow.port"
    tel-collect -q --port 0 --port-file "$T_TMP/slow.port" --out "$SLOW" --delay 1500 2>/dev/null &
    SPID=$!
    i=0
    while [ ! -s "$T_TMP/slow.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    app="slow$verb"
    $PY -c 'print("".join("m{i=\"%d\"} 1\n" % i for i in range(3000)), end="")' | tel metrics --app "$app" >/dev/null 2>&1
    check_eq "$verb during a sync: 3,000 events queued first" "$(count "$app")" 3000
    tel-sync --app "$app" --endpoint "http://127.0.0.1:$(cat "$T_TMP/slow.port")/v1/batch" --max-time 20 \
        >/dev/null 2>&1 &
    YPID=$!
    i=0
    while [ "$(cat "$SLOW" 2>/dev/null | grep -c .)" -lt 1 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    tel $verb --app "$app" >/dev/null 2>&1
    wait $YPID
    check_eq "tel $verb during a sync: only the batch on the wire arrives, nothing after" \
        "$(grep -c "\"app\":\"$app\"" "$SLOW")" 1000
    kill $SPID 2>/dev/null
    wait $SPID 2>/dev/null
done
[ -f "$CONF/slowdisable/telemetry.conf" ] && tel enable --app slowdisable >/dev/null 2>&1

# ------------------ installed files point at where they were installed
# A plain build for the default prefix, then the same targets for another
# PREFIX, as `make install PREFIX=...` builds them: tel and libtel must
# then start the tel-sync of that prefix.  A build of its own (tel and
# libtel only), so the plain run only.
if [ "${TEL_SANITIZED:-0}" = 1 ]; then
    skip "make with another PREFIX: the plain build checks it"
else
    SRC="$T_TMP/src"
    mkdir -p "$SRC"
    (cd "$TEL_TOP" && tar --exclude='./build*' --exclude=./.git --exclude=./bindings -cf - .) | (cd "$SRC" && tar -xf -)
    if make -s -C "$SRC" -j2 build/bin/tel >"$T_TMP/build.log" 2>&1 &&
        make -s -C "$SRC" -j2 build/bin/tel PREFIX="$T_TMP/opt" >>"$T_TMP/build.log" 2>&1; then
        check "make PREFIX=X after make: tel starts X/bin/tel-sync" grep -qa "$T_TMP/opt/bin/tel-sync" "$SRC/build/bin/tel"
        check_not "and no longer the default prefix's tel-sync" grep -qa "/usr/local/bin/tel-sync" "$SRC/build/bin/tel"
    else
        fail "make PREFIX=X after make" "$(tail -n 5 "$T_TMP/build.log")"
    fi
fi

t_done
