#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_identity.sh - the anonymous id and nothing else: a deleted cookie
# or `tel forget` gives a new identity that no uploaded batch mixes with
# the old one and that no other value links to it; a directory in place of
# the cookie gives each execution its own id and is never written to; the
# execution id ties the events of one host run together and no others.
#
# Every batch is read from the raw bytes the collector received
# (tests/rawsink.py keeps them), decoded with Python's msgpack.
. "$TEL_TOP/tests/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
PY=/usr/bin/python3
export TEL_SYNC_PATH=/bin/true

wait_file() {
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
# start_sink NAME [rawsink options]: sets URL and DIR.
# Background servers are stopped however the script ends.
BG=""
trap 'kill $BG 2>/dev/null; t_cleanup' EXIT
start_sink() {
    DIR="$T_TMP/$1"
    n=$1; shift
    $PY "$TEL_TOP/tests/rawsink.py" --port-file "$T_TMP/$n.port" --dir "$DIR" "$@" &
    BG="$BG $!"
    wait_file "$T_TMP/$n.port"
    URL="http://127.0.0.1:$(cat "$T_TMP/$n.port")/v1/batch"
}
nreq() { ls "$1"/req-*.head 2>/dev/null | wc -l | tr -d ' '; }

cat >"$T_TMP/batches.py" <<'EOF'
# batches.py DIR FROM TO MODE: the requests FROM < n <= TO that DIR holds.
#  list    one line per request: key anon nevents seqs (anon "nil" if none)
#  mixed   requests where an event's anonymous id differs from the batch's
#  ids     every 16-byte value anywhere in the bodies outside the context
#  evids   event ids, one per line, counting a retried batch once
import msgpack, os, sys, uuid
d, lo, hi, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def u(b): return "nil" if b is None else str(uuid.UUID(bytes=b))
reqs = []
for n in range(lo + 1, hi + 1):
    raw = open(os.path.join(d, "req-%d.raw" % n), "rb").read()
    reqs.append(msgpack.unpackb(raw, raw=False))
if mode == "list":
    for b in reqs:
        seqs = ",".join(str(e["p"].get("seq", e["n"])) for e in b["e"])
        print(u(b["b"]), u(b["a"]), len(b["e"]), seqs)
elif mode == "mixed":
    for b in reqs:
        for e in b["e"]:
            if e["a"] != b["a"]:
                print("batch %s: anon %s, event %s" % (u(b["b"]), u(b["a"]), u(e["a"])))
elif mode == "ids":
    out = set()
    def walk(v):
        if isinstance(v, bytes) and len(v) == 16: out.add(v.hex())
        elif isinstance(v, dict):
            for k, x in v.items():
                if k != "c": walk(x)
        elif isinstance(v, list):
            for x in v: walk(x)
    for b in reqs: walk(b)
    print("\n".join(sorted(out)))
elif mode == "evids":
    seen = set()
    for b in reqs:
        if b["b"] in seen: continue
        seen.add(b["b"])
        for e in b["e"]: print(u(e["i"]))
EOF
B() { $PY "$T_TMP/batches.py" "$@"; }
cookie() { cat "$STATE/$1/telemetry-cookie" 2>/dev/null; }
emit() { app=$1; shift; for s in "$@"; do tel emit --app "$app" ev "seq=$s" || return 1; done; }

start_sink ok
SINK=$DIR
SINK_URL=$URL

# ------------------------------------ a deleted cookie, again and again
# Four identities queued back to back: old, new, the old one put back,
# another new one.  One sync must make one batch per run of identity.
emit del a1 a2
ida=$(cookie del)
rm -f "$STATE/del/telemetry-cookie"
emit del b1 b2
idb=$(cookie del)
printf '%s\n' "$ida" >"$STATE/del/telemetry-cookie"
emit del a3
rm -f "$STATE/del/telemetry-cookie"
emit del c1 c2
idc=$(cookie del)
if [ -n "$idb" ] && [ "$ida" != "$idb" ] && [ "$idb" != "$idc" ] && [ "$ida" != "$idc" ]; then
    ok "each deletion made a new cookie"
else fail "each deletion made a new cookie" "'$ida' '$idb' '$idc'"; fi
r0=$(nreq "$SINK")
check_rc "deleted cookie: tel-sync exit 0" 0 tel-sync --app del --endpoint "$SINK_URL"
r1=$(nreq "$SINK")
check_eq "deleted cookie: no batch mixes identities" "$(B "$SINK" "$r0" "$r1" mixed)" ""
check_eq "deleted cookie: one batch per identity run, in order" \
    "$(B "$SINK" "$r0" "$r1" list | cut -d' ' -f2-)" \
    "$(printf '%s 2 a1,a2\n%s 2 b1,b2\n%s 1 a3\n%s 2 c1,c2' "$ida" "$idb" "$ida" "$idc")"

# ---------------------- no value links the identity before and after reset
# reset_case NAME HOW: events and a sync, the reset, events and a sync;
# the 16-byte values of the two uploads (ids of batches, events,
# executions, the anonymous id) must not meet.
reset_case() {
    app=id-$1
    emit "$app" p1 p2 p3
    mycli_like=$(cookie "$app")
    r0=$(nreq "$SINK")
    tel-sync --app "$app" --endpoint "$SINK_URL"
    r1=$(nreq "$SINK")
    case "$2" in
    rm) rm -f "$STATE/$app/telemetry-cookie" ;;
    forget) tel forget --app "$app" ;;
    esac
    emit "$app" q1 q2 q3
    tel-sync --app "$app" --endpoint "$SINK_URL"
    r2=$(nreq "$SINK")
    B "$SINK" "$r0" "$r1" ids >"$T_TMP/before"
    B "$SINK" "$r1" "$r2" ids >"$T_TMP/after"
    nb=$(wc -l <"$T_TMP/before" | tr -d ' ')
    na=$(wc -l <"$T_TMP/after" | tr -d ' ')
    # 3 events, 3 executions (the first event's id is its execution's), the
    # batch id and the anonymous id: 5 values each side, at least.
    if [ "$nb" -ge 5 ] && [ "$na" -ge 5 ]; then ok "$1: both uploads were decoded ($nb and $na values)"
    else fail "$1: both uploads were decoded" "$nb and $na values"; fi
    check_eq "$1: no 16-byte value is in both uploads" "$(sort "$T_TMP/before" "$T_TMP/after" | uniq -d)" ""
    old=$(echo "$mycli_like" | tr -d '-')
    check "$1: the old anonymous id was in the first upload" grep -qx "$old" "$T_TMP/before"
    check_eq "$1: every batch after carries the new cookie" \
        "$(B "$SINK" "$r1" "$r2" list | cut -d' ' -f2 | sort -u)" "$(cookie "$app")"
}
reset_case rm rm
reset_case forget forget

# ------------------------------ a reset while a batch waits to be retried
# The collector refused the first attempt, so the batch id and its range
# are remembered for the retry.  A retry after a deleted cookie resends
# exactly the old events under the old id; after `tel forget` the old
# events are gone and the remembered batch with them, so nothing sent
# afterwards reuses its id.
start_sink s503 --status 503 --first 1
for how in rm forget; do
    app=pend-$how
    emit "$app" o1 o2
    old=$(cookie "$app")
    r0=$(nreq "$DIR")
    tel-sync --app "$app" --endpoint "$URL"
    r1=$(nreq "$DIR")
    key1=$(B "$DIR" "$r0" "$r1" list | cut -d' ' -f1)
    [ "$how" = rm ] && rm -f "$STATE/$app/telemetry-cookie"
    [ "$how" = forget ] && tel forget --app "$app"
    emit "$app" n1 n2
    new=$(cookie "$app")
    tel-sync --app "$app" --endpoint "$URL" --force
    r2=$(nreq "$DIR")
    got=$(B "$DIR" "$r1" "$r2" list)
    check_eq "pending, $how: no batch mixes identities" "$(B "$DIR" "$r1" "$r2" mixed)" ""
    if [ "$how" = rm ]; then
        check_eq "pending, rm: the retry resends the old events alone, then the new ones" \
            "$(echo "$got" | cut -d' ' -f2-)" "$(printf '%s 2 o1,o2\n%s 2 n1,n2' "$old" "$new")"
        k=$(echo "$got" | cut -d' ' -f1 | tr '\n' ' ')
        check_eq "pending, rm: the retry keeps the batch id, the new batch has its own" \
            "$k" "$key1 $(echo "$got" | sed -n 2p | cut -d' ' -f1) "
        case "$(echo "$got" | sed -n 2p)" in "$key1 "*) fail "pending, rm: new batch id differs" "$got" ;;
        *) ok "pending, rm: new batch id differs" ;; esac
    else
        check_eq "pending, forget: only the new identity's events are sent" \
            "$(echo "$got" | cut -d' ' -f2-)" "$new 2 n1,n2"
        case "$got" in *"$key1"*) fail "pending, forget: the old batch id is never reused" "$got" ;;
        *) ok "pending, forget: the old batch id is never reused" ;; esac
    fi
done

# ------------------------------------- a directory in place of the cookie
mkdir -p "$STATE/dir/telemetry-cookie"
touch -d '2001-01-01' "$STATE/dir/telemetry-cookie"
before=$(stat -c '%Y %s %a' "$STATE/dir/telemetry-cookie")
emit dir d1
emit dir d2
emit dir d3
tel emit --app dir ev seq=d4 && tel emit --app dir ev seq=d5
r0=$(nreq "$SINK")
check_rc "cookie directory: tel-sync exit 0" 0 tel-sync --app dir --endpoint "$SINK_URL"
r1=$(nreq "$SINK")
got=$(B "$SINK" "$r0" "$r1" list)
check_eq "cookie directory: one batch per execution" "$(echo "$got" | cut -d' ' -f3- | tr '\n' ' ')" "1 d1 1 d2 1 d3 1 d4 1 d5 "
check_eq "cookie directory: five different ids, none nil" \
    "$(echo "$got" | cut -d' ' -f2 | grep -v nil | sort -u | wc -l | tr -d ' ')" 5
check_eq "cookie directory: no batch mixes ids" "$(B "$SINK" "$r0" "$r1" mixed)" ""
check_eq "cookie directory: nothing written inside it" "$(find "$STATE/dir/telemetry-cookie" -mindepth 1 | wc -l | tr -d ' ')" 0
check_eq "cookie directory: left exactly as it was" "$(stat -c '%Y %s %a' "$STATE/dir/telemetry-cookie")" "$before"

# The host's runs under a cookie directory: one id per run, shared by the
# run's events.
mkdir -p "$STATE/mycli/telemetry-cookie"
mycli deploy >/dev/null 2>&1
mycli --force build >/dev/null 2>&1
r0=$(nreq "$SINK")
tel-sync --app mycli --endpoint "$SINK_URL"
r1=$(nreq "$SINK")
check_eq "cookie directory, host: two runs, two batches of two events" \
    "$(B "$SINK" "$r0" "$r1" list | cut -d' ' -f3 | tr '\n' ' ')" "2 2 "
check_eq "cookie directory, host: two different ids" \
    "$(B "$SINK" "$r0" "$r1" list | cut -d' ' -f2 | sort -u | wc -l | tr -d ' ')" 2

# ------------------------------------------------------ the execution id
rm -rf "$STATE/mycli"
mycli deploy >/dev/null 2>&1
mycli --force fail >/dev/null 2>&1
tel show --app mycli >"$T_TMP/show"
runs=$($PY - "$T_TMP/show" <<'EOF'
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = {}
for e in evs: runs.setdefault(e["exec"], []).append(e)
out = [str(len(evs)), str(len(runs))]
for x, es in runs.items():
    out.append("%s:%d:%s:%s" % (",".join(e["name"] for e in es), len(es),
        es[0]["id"] == x, all(e["id"] != x for e in es[1:])))
print(" ".join(out))
EOF
)
check_eq "exec: 4 events from 2 runs, each run's events share one exec" \
    "$(echo "$runs" | cut -d' ' -f1-2)" "4 2"
check_eq "exec: in each run the first event's id is the exec, the next one's is not" \
    "$(echo "$runs" | cut -d' ' -f3-)" \
    "command.started,command.exited:2:True:True command.started,command.exited:2:True:True"
r0=$(nreq "$SINK")
tel-sync --app mycli --endpoint "$SINK_URL"
r1=$(nreq "$SINK")
# Event ids are unique over everything uploaded in this test.
B "$SINK" 0 "$r1" evids >"$T_TMP/evids"
check_eq "every uploaded event id is unique" "$(sort "$T_TMP/evids" | uniq -d | wc -l | tr -d ' '):$(wc -l <"$T_TMP/evids" | tr -d ' ')" \
    "0:$(wc -l <"$T_TMP/evids" | tr -d ' ')"
if [ "$(wc -l <"$T_TMP/evids")" -ge 30 ]; then ok "and there were $(wc -l <"$T_TMP/evids" | tr -d ' ') of them"
else fail "and there were at least 30 of them" "$(wc -l <"$T_TMP/evids")"; fi

# What forget and an opt-out leave on disk: LMDB reuses freed pages without
# clearing them, so a purge alone would leave the old events and the old
# anonymous id readable in data.mdb.  Neither may be found in any file
# under the state directory afterwards.
wipe_case() {  # NAME COMMAND...
    name=$1; shift
    app=wipe-$name
    tel emit --app "$app" ev secret=WIPE-MARKER-$name >/dev/null
    old=$(cookie "$app")
    [ -n "$old" ] || { fail "$name: a cookie was made" "none"; return; }
    "$@" --app "$app" >/dev/null 2>&1
    found=$(grep -rlaF -e "WIPE-MARKER-$name" "$STATE/$app" 2>/dev/null | wc -l | tr -d ' ')
    check_eq "$name: no old event bytes left in any file" "$found" 0
    # The id is stored as 16 raw bytes in records and as text in the cookie.
    hex=$(echo "$old" | tr -d '-')
    raw=$($PY -c 'import sys,os
h=bytes.fromhex(sys.argv[1]); n=0
for d,_,fs in os.walk(sys.argv[2]):
    for f in fs:
        p=os.path.join(d,f)
        if os.path.isfile(p) and not os.path.islink(p):
            b=open(p,"rb").read(); n+=(h in b)+(sys.argv[3].encode() in b)
print(n)' "$hex" "$STATE/$app" "$old")
    check_eq "$name: the old anonymous id is in no file, raw or as text" "$raw" 0
}
wipe_case forget tel forget
wipe_case disable tel disable
tel enable --app wipe-disable >/dev/null 2>&1

t_done
