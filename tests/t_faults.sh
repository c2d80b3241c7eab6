# SPDX-License-Identifier: MIT
# tests/t_faults.sh - storage faults and power cuts, injected with the
# LD_PRELOAD shim tests/faultfs.c into tel emit, tel-sync, tel show and
# tel status.
#
# For every fault class (the call that fails x errno x when x transient or
# persistent) the promise checked is tel's own: the tool exits with a
# clear one-line error or does nothing, never dies of a signal, never
# leaves a queue that fails to open, and never loses an event that was
# acknowledged before the fault.  `tel emit --strict` exits 0 only when
# the event really is in the queue afterwards, and 1 only when it is not
# (without --strict a script is never failed by its telemetry: exit 0).
#
# The power-cut half copies data.mdb at the instant each fdatasync returns
# (what a disk that honours fdatasync holds if the power goes then) and
# checks every copy opens and holds every event acknowledged before.
#
#   TEL_STRESS=1   more points in every matrix
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

if [ "${TEL_SANITIZED:-0}" = 1 ]; then
    # ASan must be the first library of the process and owns malloc; a
    # preloaded shim in front of it is refused at startup.
    skip "storage fault injection under sanitizers (the LD_PRELOAD shim and ASan both claim malloc and the first slot)"
    t_done
fi

PY=/usr/bin/python3
STRESS=${TEL_STRESS:-0}
SHIM="$T_TMP/faultfs.so"
FLOG="$T_TMP/faults.log"
if ! cc -shared -fPIC -O1 -o "$SHIM" "$TEL_TOP/tests/faultfs.c" -ldl 2>"$T_TMP/cc.err"; then
    fail "build the fault shim" "$(head -c 300 "$T_TMP/cc.err")"
    t_done
fi
ok "build the fault shim"

# faulty OP ERRNO AFTER COUNT CMD...: runs CMD with the shim armed on paths
# containing $FSUB (default: the queue directory); RC, $OUT, $ERR as in
# t_tel.
OUT="$T_TMP/out"
ERR="$T_TMP/err"
faulty() {
    op=$1 en=$2 af=$3 ct=$4
    shift 4
    LD_PRELOAD="$SHIM" FAULT_OP="$op" FAULT_ERRNO="$en" FAULT_AFTER="$af" FAULT_COUNT="$ct" \
        FAULT_PATH_SUBSTR="${FSUB:-telemetry/}" FAULT_LOG="$FLOG" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    cat "$ERR" >>"$T_TMP/all-errors"
}
nlines() { wc -l <"$1" | tr -d ' '; }
injected() { cat "$FLOG" 2>/dev/null | grep -c "^$1\$"; }
# props APP: the p= values in APP's queue, one a line, sorted.
props() {
    tel show --app "$1" 2>/dev/null |
        $PY -c 'import sys,json
for l in sys.stdin:
    if l.strip(): print(json.loads(l)["props"].get("p", ""))' | sort
}
# opens_clean APP: mdb_stat reads the queue and tel show walks every record.
opens_clean() {
    mdb_stat -s events "$STATE/$1/telemetry" >/dev/null 2>&1 &&
        tel show --app "$1" >/dev/null 2>"$T_TMP/show.err" && [ ! -s "$T_TMP/show.err" ]
}
# one_line PROG: $ERR is one line "PROG: ...".
one_line() {
    [ "$(nlines "$ERR")" = 1 ] && case "$(cat "$ERR")" in "$1: "?*) true ;; *) false ;; esac
}
# expect NAME WHY CMD...: ok while CMD succeeds, else FAIL with WHY.
expect() {
    n="$1" why="$2"
    shift 2
    if "$@"; then ok "$n"; else fail "$n" "$why"; fi
}

# ----------------------------------------------------------- the shim works
# A control: if the shim failed to catch LMDB's writes, every test below
# would pass while testing nothing.
: >"$FLOG"
tel emit --strict --app ctl ev p=ctl0 >/dev/null 2>&1
faulty pwrite,writev ENOSPC 0 0 tel emit --strict --app ctl ev p=ctl1
check_eq "control: a persistent ENOSPC on LMDB's writes makes emit exit 1" "$RC" 1
case "$(cat "$ERR")" in *"No space left"*) ok "control: and the error names the cause" ;;
    *) fail "control: and the error names the cause" "$(cat "$ERR")" ;; esac
if [ "$(injected pwrite)$(injected writev)" != 00 ]; then ok "control: the shim logged its faults"
else fail "control: the shim logged its faults" "log empty"; fi
check_eq "control: the event before is kept, the failed one is not" "$(props ctl | tr '\n' ' ')" "ctl0 "

# ------------------------------------------------------------------ emit
# ACKED: every p= whose emit exited 0, in order.
ACKED="$T_TMP/acked.fe"
: >"$ACKED"
i=1
while [ $i -le 5 ]; do
    tel emit --strict --app fe ev "p=base$i" >/dev/null 2>&1 && echo "base$i" >>"$ACKED"
    i=$((i + 1))
done
check_eq "emit: five clean events queued" "$(nlines "$ACKED")" 5

afters="0 1 2 4"
errnos="ENOSPC EIO EDQUOT"
[ "$STRESS" = 1 ] && afters="0 1 2 3 4 5 6 8 12" && errnos="ENOSPC EIO EDQUOT EACCES EROFS"
: >"$FLOG"
for op in open write pwrite writev fdatasync fsync mmap ftruncate; do
    runs=0 sig="" badrc="" badmsg="" notclean="" absent_fail=""
    for en in $errnos; do
        for af in $afters; do
            for ct in 1 0; do
                id="$op-$en-$af-$ct"
                faulty "$op" "$en" "$af" "$ct" tel emit --strict --app fe ev "p=$id"
                runs=$((runs + 1))
                if [ "$RC" -gt 128 ]; then sig="$sig $id:$RC($(head -c 200 "$ERR"))"; continue; fi
                case "$RC" in
                0) echo "$id" >>"$ACKED"
                   [ -s "$ERR" ] && badmsg="$badmsg $id(stderr on success)" ;;
                1) one_line tel || badmsg="$badmsg $id($(nlines "$ERR") lines)"
                   echo "$id" >>"$T_TMP/refused.fe" ;;
                *) badrc="$badrc $id:$RC" ;;
                esac
                opens_clean fe || notclean="$notclean $id"
            done
        done
    done
    check_eq "emit under $op faults: $runs runs, none killed by a signal" "$sig" ""
    check_eq "emit under $op faults: exit 0 or 1 only" "$badrc" ""
    check_eq "emit under $op faults: a failure is one 'tel: ' line, a success silent" "$badmsg" ""
    check_eq "emit under $op faults: the queue opens clean after every run" "$notclean" ""
done
props fe >"$T_TMP/have.fe"
lost=$(sort "$ACKED" | comm -23 - "$T_TMP/have.fe")
check_eq "emit: every acknowledged event is in the queue ($(nlines "$ACKED") of them)" "$lost" ""
ghosts=$(sort "$T_TMP/refused.fe" 2>/dev/null | comm -12 - "$T_TMP/have.fe")
check_eq "emit: no event whose emit exited 1 is in the queue" "$ghosts" ""
extra=$(sort "$ACKED" | comm -13 - "$T_TMP/have.fe")
check_eq "emit: nothing in the queue that was not emitted" "$extra" ""
for op in open write pwrite writev fdatasync fsync mmap ftruncate; do
    n=$(injected "$op")
    if [ "$n" -gt 0 ]; then ok "emit: $n $op faults injected"
    else case "$op" in
        # LMDB syncs with fdatasync and maps with mmap; plain write and
        # fsync and ftruncate on an existing queue may have no caller.
        write|fsync|ftruncate) ok "emit: no $op on the queue's paths to fail (nothing calls it there)" ;;
        *) fail "emit: $op faults injected" "the shim never caught one" ;; esac
    fi
done

# ----------------------------------------------------------- out of memory
: >"$FLOG"
ACKED="$T_TMP/acked.fm"
: >"$ACKED"
tel emit --strict --app fm ev p=m-base >/dev/null 2>&1 && echo m-base >>"$ACKED"
# The very first allocation is tel_options_new's; cli/tel.c reports its
# failure as bad usage (exit 2).  Checked apart, below.
ns=$(seq 1 40)
[ "$STRESS" = 1 ] && ns=$(seq 1 150)
sig="" badrc="" badmsg="" notclean="" ok_seen=0
for n in $ns 60 100 200 400; do
    LD_PRELOAD="$SHIM" FAULT_MALLOC_AFTER=$n FAULT_COUNT=0 FAULT_LOG="$FLOG" \
        tel emit --strict --app fm ev "p=m$n" >"$OUT" 2>"$ERR"
    RC=$?
    if [ "$RC" -gt 128 ]; then sig="$sig m$n:$RC"; continue; fi
    case "$RC" in
    0) echo "m$n" >>"$ACKED"; ok_seen=1 ;;
    1) one_line tel || badmsg="$badmsg m$n" ;;
    *) badrc="$badrc m$n:$RC" ;;
    esac
    opens_clean fm || notclean="$notclean m$n"
done
check_eq "emit out of memory at each allocation: no signal" "$sig" ""
check_eq "emit out of memory: exit 0 or 1 only" "$badrc" ""
check_eq "emit out of memory: a failure is one 'tel: ' line" "$badmsg" ""
check_eq "emit out of memory: the queue opens clean" "$notclean" ""
check_eq "emit out of memory: late enough, the emit succeeds (the sweep reached the end)" "$ok_seen" 1
props fm >"$T_TMP/have.fm"
check_eq "emit out of memory: every acknowledged event is queued" "$(sort "$ACKED" | comm -23 - "$T_TMP/have.fm")" ""
ok "emit out of memory: $(grep -c '^malloc$' "$FLOG") allocation failures injected"
oom_first() {
    LD_PRELOAD="$SHIM" FAULT_MALLOC_AFTER=0 tel emit --strict --app fm ev p=m0 >"$OUT" 2>"$ERR"
    [ $? = 1 ] && one_line tel
}
expect "emit out of memory at the first allocation: exit 1, one line" \
    "cli/tel.c cmd_emit reports a failed tel_options_new as bad usage (exit 2, 'Try tel --help')" oom_first

# ----------------------------------------------------------- cookie faults
# The cookie is read, created or replaced before the queue is opened; a
# fault there may cost the lasting id of one event, never the event.
: >"$FLOG"
ACKED="$T_TMP/acked.fc"
: >"$ACKED"
tel emit --strict --app fc ev p=c-base >/dev/null 2>&1 && echo c-base >>"$ACKED"
sig="" badrc="" badmsg=""
for op in open write fsync; do
    for en in ENOSPC EIO; do
        for af in 0 1; do
            for ct in 1 0; do
                id="$op-$en-$af-$ct"
                # Half the runs start without a cookie, so it must be made.
                [ "$ct" = 1 ] && rm -f "$STATE/fc/telemetry-cookie"
                FSUB=telemetry-cookie faulty "$op" "$en" "$af" "$ct" tel emit --strict --app fc ev "p=$id"
                if [ "$RC" -gt 128 ]; then sig="$sig $id:$RC"; continue; fi
                case "$RC" in
                0) echo "$id" >>"$ACKED" ;;
                1) one_line tel || badmsg="$badmsg $id" ;;
                *) badrc="$badrc $id:$RC" ;;
                esac
            done
        done
    done
done
check_eq "emit under cookie faults: no signal" "$sig" ""
check_eq "emit under cookie faults: exit 0 or 1, errors one line" "$badrc$badmsg" ""
props fc >"$T_TMP/have.fc"
check_eq "emit under cookie faults: every acknowledged event is queued" "$(sort "$ACKED" | comm -23 - "$T_TMP/have.fc")" ""
check "emit under cookie faults: the queue opens clean" opens_clean fc
ok "emit under cookie faults: $(wc -l <"$FLOG" | tr -d ' ') faults injected"

# A telemetry.conf that cannot be read for a moment (EIO) says nothing
# about the user's choice; it must not cost the events already queued.
for i in 1 2 3; do tel emit --strict --app fconf ev "p=k$i" >/dev/null 2>&1; done
FSUB=telemetry.conf faulty open EIO 0 0 tel emit --strict --app fconf ev p=k4
conf_keeps_queue() { [ "$(props fconf | head -n 3 | tr '\n' ' ')" = "k1 k2 k3 " ]; }
expect "an unreadable telemetry.conf (EIO) does not purge the queue" \
    "libqueue/tel.c tel_open treats TEL_ERR_CONFIG as an opt-out and purges; tel-sync rightly does not" conf_keeps_queue

# ------------------------------------------------------------- tel-sync
COLL="$T_TMP/collect.jsonl"
tel-collect -q --port 0 --port-file "$T_TMP/port" --out "$COLL" 2>"$T_TMP/collect.err" &
CPID=$!
URL="http://127.0.0.1:$(wait_port "$T_TMP/port")/v1/batch"

ACKED="$T_TMP/acked.fs"
: >"$ACKED"
: >"$FLOG"
k=0
sync_errnos="ENOSPC EIO"
sync_afters="0 2 5"
[ "$STRESS" = 1 ] && sync_errnos="ENOSPC EIO EDQUOT" && sync_afters="0 1 2 3 5 8 13"
for op in open write pwrite writev fdatasync mmap ftruncate; do
    runs=0 sig="" badrc="" badmsg="" notclean=""
    for en in $sync_errnos; do
        for af in $sync_afters; do
            for ct in 1 0; do
                # Fresh events before each faulty run, so every run has
                # something to send and to delete.
                j=0
                while [ $j -lt 3 ]; do
                    k=$((k + 1))
                    tel emit --strict --app fs ev "p=s$k" >/dev/null 2>&1 && echo "s$k" >>"$ACKED"
                    j=$((j + 1))
                done
                id="$op-$en-$af-$ct"
                faulty "$op" "$en" "$af" "$ct" tel-sync --app fs --endpoint "$URL" --token tok-zq9f3 --force --max-time 10
                runs=$((runs + 1))
                if [ "$RC" -gt 128 ]; then sig="$sig $id:$RC($(head -c 200 "$ERR"))"; continue; fi
                case "$RC" in
                0|1) ;;
                *) badrc="$badrc $id:$RC" ;;
                esac
                # Errors are lines of "tel-sync: ..."; a run says at most
                # what failed and, rarely, that it could not record it.
                if [ -s "$ERR" ] && { [ "$(nlines "$ERR")" -gt 2 ] || grep -qv '^tel-sync: ' "$ERR"; }; then
                    badmsg="$badmsg $id($(nlines "$ERR") lines: $(head -c 120 "$ERR"))"
                fi
                [ "$RC" = 1 ] && [ ! -s "$ERR" ] && badmsg="$badmsg $id(exit 1, silent)"
                opens_clean fs || notclean="$notclean $id"
            done
        done
    done
    check_eq "tel-sync under $op faults: $runs runs, none killed by a signal" "$sig" ""
    check_eq "tel-sync under $op faults: exit 0 or 1 only" "$badrc" ""
    check_eq "tel-sync under $op faults: errors are 'tel-sync: ' lines" "$badmsg" ""
    check_eq "tel-sync under $op faults: the queue opens clean after every run" "$notclean" ""
    ok "tel-sync: $(injected "$op") $op faults injected"
done

# Out of memory anywhere in tel-sync, libcurl and zlib included.
ns="0 1 2 3 5 8 13 21 34 55 89 144 233 377 610 987 1597 2584 4181"
[ "$STRESS" = 1 ] && ns="$(seq 0 60) 80 100 150 200 300 500 800 1200 2000 3000 5000 8000"
sig="" badrc="" notclean=""
for n in $ns; do
    k=$((k + 1))
    tel emit --strict --app fs ev "p=s$k" >/dev/null 2>&1 && echo "s$k" >>"$ACKED"
    LD_PRELOAD="$SHIM" FAULT_MALLOC_AFTER=$n FAULT_COUNT=0 FAULT_LOG="$FLOG" \
        tel-sync --app fs --endpoint "$URL" --force --max-time 10 >"$OUT" 2>"$ERR"
    RC=$?
    if [ "$RC" -gt 128 ]; then sig="$sig m$n:$RC"; continue; fi
    case "$RC" in 0|1) ;; *) badrc="$badrc m$n:$RC" ;; esac
    opens_clean fs || notclean="$notclean m$n"
done
check_eq "tel-sync out of memory: no signal" "$sig" ""
check_eq "tel-sync out of memory: exit 0 or 1 only" "$badrc" ""
check_eq "tel-sync out of memory: the queue opens clean" "$notclean" ""
ok "tel-sync out of memory: $(grep -c '^malloc$' "$FLOG") allocation failures injected"

# The fault is gone: drain, and every acknowledged event arrives.
j=0
while [ "$(tel show --app fs 2>/dev/null | wc -l)" -gt 0 ] && [ $j -lt 20 ]; do
    tel-sync --app fs --endpoint "$URL" --force --max-time 10 >/dev/null 2>&1
    j=$((j + 1))
done
check_eq "tel-sync: after the faults, a clean run empties the queue" "$(tel show --app fs 2>/dev/null | wc -l | tr -d ' ')" 0
$PY -c 'import sys,json
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("app", e.get("context", {}).get("app")) in (None, "fs"): print(e["props"].get("p", ""))' "$COLL" 2>/dev/null |
    sort -u >"$T_TMP/got.fs"
lost=$(sort -u "$ACKED" | comm -23 - "$T_TMP/got.fs")
check_eq "tel-sync: every one of $(nlines "$ACKED") acknowledged events reached the collector" "$lost" ""
kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null

# ---------------------------------------------------------- show, status
# Readers under faults: an error line or a correct answer, and the queue
# file never written.
for i in 1 2 3; do tel emit --strict --app fr ev "p=r$i" >/dev/null 2>&1; done
sum_before=$(md5sum <"$STATE/fr/telemetry/data.mdb")
want=$(props fr | tr '\n' ' ')
for cmd in show status; do
    sig="" bad=""
    for op in open mmap; do
        for en in EIO ENOSPC EACCES; do
            for af in 0 1 2; do
                faulty "$op" "$en" "$af" 0 tel "$cmd" --app fr
                id="$op-$en-$af"
                if [ "$RC" -gt 128 ]; then sig="$sig $id:$RC($(head -c 200 "$ERR"))"; continue; fi
                case "$cmd:$RC" in
                show:0) got=$($PY -c 'import sys,json
print(" ".join(sorted(json.loads(l)["props"]["p"] for l in open(sys.argv[1]) if l.strip())) + " ")' "$OUT" 2>/dev/null)
                        [ "$got" = "$want" ] || bad="$bad $id(showed '$got')" ;;
                show:1) one_line tel || bad="$bad $id($(nlines "$ERR") lines)" ;;
                status:0) grep -q '^queue: *3 events' "$OUT" || bad="$bad $id(wrong count)" ;;
                status:1) grep -q '^queue: *unreadable' "$OUT" || bad="$bad $id(exit 1 without saying unreadable)" ;;
                *) bad="$bad $id:exit $RC" ;;
                esac
            done
        done
    done
    check_eq "tel $cmd under open/mmap faults: no signal" "$sig" ""
    check_eq "tel $cmd under open/mmap faults: a right answer or a clear error" "$bad" ""
done
check_eq "show/status under faults never changed data.mdb" "$(md5sum <"$STATE/fr/telemetry/data.mdb")" "$sum_before"
check_eq "and the queue still shows every event" "$(props fr | tr '\n' ' ')" "$want"

# -------------------------------------------------------------- privacy
# The error lines written under every fault above: none may carry a path
# (they would name the user's home), the user name, or the token.
check "privacy: the fault runs wrote error lines (so the search has text)" test -s "$T_TMP/all-errors"
for m in "$HOME" "$T_TMP" "$(id -un)" tok-zq9f3 "/telemetry" ".local/state"; do
    [ "$m" = root ] && m="root/"   # "root" alone is a word an error may use
    found=$(grep -cF -- "$m" "$T_TMP/all-errors")
    check_eq "privacy: '$m' is in no error line under faults" "$found" 0
done

# ------------------------------------------------------------ power cuts
# Every emit and every tel-sync here runs with the shim copying data.mdb
# right after each fdatasync returns.  With MDB_NOMETASYNC a commit writes
# its pages, syncs them, then writes its meta page unsynced; the next
# commit's fdatasync makes that meta durable.  So the instant after a sync
# is the worst moment for the power to go: the disk holds the previous
# commit and nothing of the current one.  Each copy must open, walk, and
# hold every event acknowledged before its emit or sync began, except
# those the collector had received by the time the copy was taken (a
# tel-sync deletes only what was delivered).
SNAP="$T_TMP/snap"
mkdir -p "$SNAP"
COLL="$T_TMP/pc.jsonl"
rm -f "$T_TMP/port"
tel-collect -q --port 0 --port-file "$T_TMP/port" --out "$COLL" 2>/dev/null &
CPID=$!
URL="http://127.0.0.1:$(wait_port "$T_TMP/port")/v1/batch"
npc=40
[ "$STRESS" = 1 ] && npc=300
ACKED="$T_TMP/acked.pc"
: >"$ACKED"
i=1
while [ $i -le $npc ]; do
    cp "$ACKED" "$SNAP/need.e$i"
    LD_PRELOAD="$SHIM" FAULT_SNAPSHOT_DIR="$SNAP" FAULT_SNAPSHOT_TAG="e$i" \
        tel emit --strict --app pc ev "p=pc$i" >/dev/null 2>&1 && echo "pc$i" >>"$ACKED"
    if [ $((i % 7)) = 0 ]; then
        cp "$ACKED" "$SNAP/need.s$i"
        LD_PRELOAD="$SHIM" FAULT_SNAPSHOT_DIR="$SNAP" FAULT_SNAPSHOT_TAG="s$i" \
            tel-sync --app pc --endpoint "$URL" --force >/dev/null 2>&1
    fi
    i=$((i + 1))
done
kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
# Open and walk each copy with LMDB's tool and with tel show; the checks
# on contents are then made in one pass.
: >"$SNAP/opened"
nsnap=0 badopen=""
for f in "$SNAP"/[es]*.*; do
    [ -f "$f" ] || continue
    case "$f" in */need.*|*.have|*.t) continue ;; esac
    nsnap=$((nsnap + 1))
    v="$T_TMP/pcv"
    rm -rf "$v"
    mkdir -p "$v/pcv/telemetry"
    cp "$f" "$v/pcv/telemetry/data.mdb"
    if ! mdb_stat "$v/pcv/telemetry" >/dev/null 2>&1; then badopen="$badopen $(basename "$f")"; continue; fi
    # A copy from the very first commit has no "events" tree yet: it is
    # a valid empty environment, and there is nothing to walk.
    if mdb_stat -s events "$v/pcv/telemetry" >/dev/null 2>&1; then
        XDG_STATE_HOME="$v" tel show --app pcv >"$f.have" 2>"$T_TMP/pcv.err" ||
            badopen="$badopen $(basename "$f")(show: $(head -c 80 "$T_TMP/pcv.err"))"
    else
        : >"$f.have"
    fi
    echo "$f" >>"$SNAP/opened"
done
if [ "$nsnap" -ge "$npc" ]; then ok "power cut: $nsnap copies taken after fdatasync"
else fail "power cut: copies taken after fdatasync" "only $nsnap for $npc emits"; fi
check_eq "power cut: every copy opens (mdb_stat) and walks (tel show)" "$badopen" ""
res=$($PY - "$SNAP" "$COLL" <<'EOF2'
import json, os, sys
snap, coll = sys.argv[1], sys.argv[2]
received = {}
for l in open(coll):
    e = json.loads(l)
    received.setdefault(e["props"]["p"], e["received"])
bad = []
for f in open(os.path.join(snap, "opened")).read().split():
    tag = os.path.basename(f).rsplit(".", 1)[0]
    need = open(os.path.join(snap, "need." + tag)).read().split()
    have = {json.loads(l)["props"]["p"] for l in open(f + ".have") if l.strip()}
    taken = int(open(f + ".t").read())
    for p in need:
        if p not in have and not (p in received and received[p] <= taken):
            bad.append("%s:%s(%s>%s)" % (os.path.basename(f), p, received.get(p), taken))
print(" ".join(bad[:10]))
EOF2
)
check_eq "power cut: every copy holds every acknowledged event not yet delivered" "$res" ""
check_eq "power cut: every emit acknowledged" "$(nlines "$ACKED")" "$npc"

t_done
