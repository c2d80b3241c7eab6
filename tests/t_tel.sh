#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_tel.sh - the `tel` command as a user and a shell script meet it:
# bad input, typing, show/status, the opt-outs, the cookie's odd shapes,
# broken state and queue files, permissions, an independent decoder of
# the stored bytes, and what must never be stored.
. "$TEL_TOP/tests/lib.sh"

PY=/usr/bin/python3
OUT="$T_TMP/out"
ERR="$T_TMP/err"

# run CMD...: runs it with stdout/stderr in $OUT/$ERR, exit status in $RC.
run() { "$@" >"$OUT" 2>"$ERR"; RC=$?; }
# Every file under $HOME with size and mtime, to tell "nothing changed".
snap() { find "$HOME" -printf '%p %y %s %T@\n' 2>/dev/null | sort; }
nlines() { wc -l <"$1" | tr -d ' '; }
# count APP: events `tel show` prints.
count() { tel show --app "$1" 2>/dev/null | wc -l | tr -d ' '; }
# pyshow APP EXPR: evaluates EXPR over evs, the list of `tel show` objects.
pyshow() {
    tel show --app "$1" 2>/dev/null |
        $PY -c "import json,sys; evs=[json.loads(l) for l in sys.stdin if l.strip()]; print($2)"
}
# one_line_error NAME WANT_RC: $RC is WANT_RC and $ERR is one "tel: ..." line.
one_line_error() {
    why=""
    [ "$RC" = "$2" ] || why="exit $RC, want $2"
    [ "$(nlines "$ERR")" = 1 ] || why="$why; $(nlines "$ERR") stderr lines"
    case "$(head -n 1 "$ERR")" in "tel: "?*) ;; *) why="$why; stderr: $(head -c 200 "$ERR")" ;; esac
    if [ -z "$why" ]; then ok "$1"; else fail "$1" "$why"; fi
}

# usage_err NAME CMD...: exit 2, nothing on stdout, one "tel: ..." line on
# stderr naming the problem (the "Try 'tel --help'." hint may follow), and
# not one file under $HOME created or changed.
usage_err() {
    n="$1"
    shift
    before=$(snap)
    run "$@"
    after=$(snap)
    why=""
    [ "$RC" -eq 2 ] || why="exit $RC, want 2"
    [ -s "$OUT" ] && why="$why; wrote to stdout"
    case "$(head -n 1 "$ERR")" in "tel: "??*) ;; *) why="$why; first stderr line: $(head -n 1 "$ERR")" ;; esac
    extra=$(tail -n +2 "$ERR" | grep -cvxF "Try 'tel --help'.")
    [ "$extra" -eq 0 ] || why="$why; $extra more stderr lines: $(tail -n +2 "$ERR" | head -c 200)"
    [ "$before" = "$after" ] || why="$why; files under HOME changed"
    if [ -z "$why" ]; then ok "$n"; else fail "$n" "$why"; fi
}

long65=$(printf '%065d' 0 | tr 0 a)
long64=$(printf '%064d' 0 | tr 0 a)
v1024=$(printf '%01024d' 0 | tr 0 v)
v1025=$(printf '%01025d' 0 | tr 0 v)
props32=""
props33=""
i=0
while [ $i -lt 33 ]; do
    [ $i -lt 32 ] && props32="$props32 k$i=v"
    props33="$props33 k$i=v"
    i=$((i + 1))
done

# ------------------------------------------------------------ bad input
# HOME is empty here, so "nothing stored" is "nothing created at all".
for verb in emit show status enable disable forget; do
    extra=""
    [ "$verb" = emit ] && extra="ev"
    usage_err "$verb without --app" tel $verb $extra
    for bad in ../x a/b .x UPPER "$long65" ""; do
        usage_err "$verb --app '$(printf %.12s "$bad")'" tel $verb --app "$bad" $extra
    done
done
usage_err "no command" tel
usage_err "unknown command" tel frobnicate --app ok
usage_err "unknown option before the command" tel --bogus emit --app ok ev
usage_err "--project-salt and --project-linkable together" tel emit --app ok --project-salt s --project-linkable ev
usage_err "unknown option after the command" tel emit --app ok --bogus ev
usage_err "--app without a value" tel emit --app
usage_err "--json with emit" tel emit --app ok --json ev
usage_err "--endpoint with show" tel show --app ok --endpoint https://example.com/v1
usage_err "show with an operand" tel show --app ok extra
usage_err "emit without an event" tel emit --app ok
for badev in "a b" "" "$long65" "a/b" "a;b" "é" "a=b"; do
    usage_err "event name '$(printf %.12s "$badev")'" tel emit --app ok "$badev"
done
usage_err "KEY without =" tel emit --app ok ev foo
usage_err "=v (empty key)" tel emit --app ok ev =v
usage_err "a 65-byte key" tel emit --app ok ev "$long65=1"
usage_err "a key with a space" tel emit --app ok ev "a b=1"
# shellcheck disable=SC2086
usage_err "33 properties" tel emit --app ok ev $props33
usage_err "a 1025-byte value" tel emit --app ok ev "k=$v1025"
usage_err "http:// endpoint to a non-loopback host" tel emit --app ok --endpoint http://example.com/v1 ev
usage_err "http:// endpoint to a private address" tel emit --app ok --endpoint http://10.0.0.1/v1 ev
usage_err "an ftp:// endpoint" tel emit --app ok --endpoint ftp://127.0.0.1/v1 ev
usage_err "an --app-version with a space" tel emit --app ok --app-version "1 2" ev

# The limits themselves are allowed: the checks above fail for the right reason.
check_rc "an app name of 64 bytes is fine" 0 tel emit --app "$long64" ev
check_rc "an event name of 64 bytes is fine" 0 tel emit --app ok "$long64"
# shellcheck disable=SC2086
check_rc "32 properties are fine" 0 tel emit --app ok ev $props32
check_rc "a 1024-byte value is fine" 0 tel emit --app ok ev "k=$v1024"
check_rc "an http:// loopback endpoint is fine" 0 tel emit --app ok --endpoint http://127.0.0.1:9/v1 ev
check_rc "an https:// endpoint is fine" 0 tel emit --app ok --endpoint https://example.com/v1 ev
check_eq "those five were stored" "$(count ok)" 5

# Bad input against an existing queue stores nothing either.
n0=$(count ok)
tel emit --app ok "a b" >/dev/null 2>&1
tel emit --app ok ev foo >/dev/null 2>&1
tel emit --app ok ev "k=$v1025" >/dev/null 2>&1
check_eq "bad emits leave an existing queue as it was" "$(count ok)" "$n0"

# ------------------------------------------------------ help and version
run tel --help
check_eq "--help exits 0" "$RC" 0
check "--help prints usage on stdout" grep -q "^Usage: tel" "$OUT"
check_eq "--help prints nothing on stderr" "$(nlines "$ERR")" 0
run tel emit --help
check_eq "emit --help exits 0 with usage" "$RC:$(head -c 10 "$OUT")" "0:Usage: tel"
run tel --version
check_eq "--version exits 0" "$RC" 0
check "--version prints 'tel X.Y.Z'" grep -qE '^tel [0-9]+\.[0-9]+\.[0-9]+$' "$OUT"

# ---------------------------------------------------------------- typing
run tel emit --app typing ev int=42 neg=-7 zero=0 dec=1.5 negdec=-0.25 t=true f=false \
    s=hello e=1e3 hex=0x10 empty= word=True nan=nan spaced="a b"
check_eq "emit with typed values exits 0" "$RC" 0
check_eq "emit prints nothing" "$(cat "$OUT" "$ERR")" ""
P='evs[-1]["props"]'
check_eq "42 is an integer" "$(pyshow typing "repr($P['int'])")" 42
check_eq "-7 is a negative integer" "$(pyshow typing "repr($P['neg'])")" -7
check_eq "0 is an integer" "$(pyshow typing "repr($P['zero'])")" 0
check_eq "1.5 is a decimal" "$(pyshow typing "repr($P['dec'])")" 1.5
check_eq "-0.25 is a decimal" "$(pyshow typing "repr($P['negdec'])")" -0.25
check_eq "true is a boolean" "$(pyshow typing "repr($P['t'])")" True
check_eq "false is a boolean" "$(pyshow typing "repr($P['f'])")" False
check_eq "hello is a string" "$(pyshow typing "repr($P['s'])")" "'hello'"
check_eq "1e3 stays a string (it would print back as 1000)" "$(pyshow typing "repr($P['e'])")" "'1e3'"
check_eq "0x10 stays a string" "$(pyshow typing "repr($P['hex'])")" "'0x10'"
check_eq "an empty value is the empty string" "$(pyshow typing "repr($P['empty'])")" "''"
check_eq "True (capitalised) stays a string" "$(pyshow typing "repr($P['word'])")" "'True'"
check_eq "nan stays a string" "$(pyshow typing "repr($P['nan'])")" "'nan'"
check_eq "a value with a space is kept whole" "$(pyshow typing "repr($P['spaced'])")" "'a b'"
check_eq "the event name is kept" "$(pyshow typing "evs[-1]['name']")" ev
check_eq "the context names the app" "$(pyshow typing "evs[-1]['context']['app']")" typing

# ------------------------------------------------------- show and status
for e in first second third; do tel emit --app order "$e" >/dev/null 2>&1; done
check_eq "show prints oldest first" "$(pyshow order "','.join(e['name'] for e in evs)")" "first,second,third"
run tel show --app order
check_eq "show exits 0 and prints one JSON line per event" "$RC:$(nlines "$OUT")" "0:3"
run tel show --app never-used
check_eq "show of an app with no queue prints nothing and exits 0" "$RC:$(nlines "$OUT")" "0:0"

run tel status --app order
check_eq "status exits 0" "$RC" 0
check "status says telemetry is on" grep -q "^telemetry: *on" "$OUT"
check "status gives the queue depth" grep -q "^queue: *3 events" "$OUT"
check "status names the cookie" grep -q "^cookie: *present" "$OUT"
run tel status --app order --json
check_eq "status --json exits 0" "$RC" 0
J() { $PY -c "import json,sys; d=json.load(open('$OUT')); print($1)"; }
check_eq "status --json is one line" "$(nlines "$OUT")" 1
check_eq "status --json: enabled" "$(J 'd["enabled"]')" True
check_eq "status --json: decided_by" "$(J 'd["decided_by"]')" builtin
check_eq "status --json: queue.events" "$(J 'd["queue"]["events"]')" 3
check_eq "status --json: cookie" "$(J 'd["cookie"]')" present
check_eq "status --json: app" "$(J 'd["app"]')" order
tel emit --app order --token s3cr3t-t0ken-zq7 fourth >/dev/null 2>&1
run tel status --app order --json
check_eq "status --json counts the new event" "$(J 'd["queue"]["events"]')" 4
check_not "status never shows a token" grep -q "s3cr3t-t0ken-zq7" "$OUT" "$ERR"
run tel status --app order
check_not "status text never shows a token" grep -q "s3cr3t-t0ken-zq7" "$OUT" "$ERR"
# A state directory whose name is not UTF-8 still gives valid JSON, the
# bad byte shown as U+FFFD, as everywhere tel prints JSON.
odd="$T_TMP/h$(printf '\377')me"
mkdir -p "$odd"
XDG_STATE_HOME="$odd/.local/state" tel emit --app order oddhome >/dev/null 2>&1
XDG_STATE_HOME="$odd/.local/state" tel status --app order --json >"$OUT" 2>"$ERR"
check_eq "status --json with a non-UTF-8 state directory is valid UTF-8 JSON" \
    "$($PY -c "import json; d=json.loads(open('$OUT','rb').read().decode('utf-8')); print(d['state_dir'].endswith('h\ufffdme/.local/state/order'), d['queue']['events'])" 2>&1)" "True 1"

# ------------------------------------------------------ disable / enable
tel emit --app dis a >/dev/null 2>&1
tel emit --app dis b >/dev/null 2>&1
run tel disable --app dis
check_eq "disable exits 0" "$RC" 0
check "disable writes enabled = false to telemetry.conf" \
    grep -qE '^[[:space:]]*enabled[[:space:]]*=[[:space:]]*false' "$CONF/dis/telemetry.conf"
check_eq "disable purges the queue" "$(count dis)" 0
run tel emit --app dis c k=1
check_eq "an emit while disabled exits 0 quietly" "$RC:$(cat "$ERR")" "0:"
check_eq "and stores nothing" "$(count dis)" 0
run tel status --app dis --json
check_eq "status --json: disabled by config" "$(J 'd["enabled"]'):$(J 'd["decided_by"]')" "False:config"
run tel enable --app dis
check_eq "enable exits 0" "$RC" 0
check "enable writes enabled = true" \
    grep -qE '^[[:space:]]*enabled[[:space:]]*=[[:space:]]*true' "$CONF/dis/telemetry.conf"
tel emit --app dis d >/dev/null 2>&1
check_eq "after enable, emits are stored" "$(count dis)" 1

# A user who disables before the first event never gets a cookie.
run tel disable --app fresh
tel emit --app fresh ev >/dev/null 2>&1
check "disabled on a fresh HOME: no cookie is created" test ! -e "$STATE/fresh/telemetry-cookie"
check "disabled on a fresh HOME: no queue is created" test ! -e "$STATE/fresh/telemetry"

# ---------------------------------------------------------------- forget
tel emit --app fg one >/dev/null 2>&1
id1=$(head -c 36 "$STATE/fg/telemetry-cookie" 2>/dev/null)
run tel forget --app fg
check_eq "forget exits 0" "$RC" 0
check "forget deletes the cookie" test ! -e "$STATE/fg/telemetry-cookie"
check_eq "forget empties the queue" "$(count fg)" 0
tel emit --app fg two >/dev/null 2>&1
id2=$(head -c 36 "$STATE/fg/telemetry-cookie" 2>/dev/null)
check "the next emit makes a new cookie" test -n "$id2"
if [ -n "$id1" ] && [ "$id1" != "$id2" ]; then ok "with a different id"; else fail "with a different id" "'$id1' then '$id2'"; fi
check_eq "and the new event carries the new id" "$(pyshow fg "evs[-1]['anon']")" "$id2"
run tel forget --app never-used-2
check_eq "forget of an app with no state exits 0" "$RC" 0

# ------------------------------------------------------- env opt-outs
tel emit --app dnt first >/dev/null 2>&1
for v in 1 true yes anything; do
    run env DO_NOT_TRACK=$v tel emit --app dnt ev
    check_eq "DO_NOT_TRACK=$v: emit exits 0 quietly" "$RC:$(cat "$ERR")" "0:"
done
check "DO_NOT_TRACK created no cookie" test ! -e "$STATE/dnt-never/telemetry-cookie"
# The opt-out also purged what was there: disabled means nothing kept.
check_eq "DO_NOT_TRACK: nothing stored (and the old queue purged)" "$(count dnt)" 0
for v in "" 0 false; do
    run env DO_NOT_TRACK=$v tel emit --app dnt kept
done
check_eq "DO_NOT_TRACK empty, 0 or false does not opt out" "$(count dnt)" 3
run env DO_NOT_TRACK=1 tel emit --app dnt-never ev
check "DO_NOT_TRACK on a fresh app creates no state at all" test ! -e "$STATE/dnt-never"

tel emit --app my-app.x first >/dev/null 2>&1
for v in false 0 no off FALSE; do
    run env MY_APP_X_TELEMETRY_ENABLED=$v tel emit --app my-app.x ev
    check_eq "MY_APP_X_TELEMETRY_ENABLED=$v: exit 0" "$RC" 0
done
check_eq "<APP>_TELEMETRY_ENABLED=false: nothing stored" "$(count my-app.x)" 0
run env MY_APP_X_TELEMETRY_ENABLED=false tel status --app my-app.x --json
check_eq "status names the env as the decider" "$(J 'd["enabled"]'):$(J 'd["decided_by"]')" "False:env"
run env MY_APP_X_TELEMETRY_ENABLED=true tel emit --app my-app.x ev
check_eq "MY_APP_X_TELEMETRY_ENABLED=true stores" "$(count my-app.x)" 1
run env OTHER_TELEMETRY_ENABLED=false tel emit --app my-app.x ev
check_eq "another app's variable does not apply" "$(count my-app.x)" 2

# -------------------------------------------------- the cookie's shapes
mkdir -p "$STATE/cdir/telemetry-cookie"
tel emit --app cdir one >/dev/null 2>&1
run tel emit --app cdir two
check_eq "a directory as the cookie: emits succeed" "$RC" 0
check_eq "and are stored" "$(count cdir)" 2
check "the directory stays a directory" test -d "$STATE/cdir/telemetry-cookie"
check_eq "each execution gets its own anonymous id" \
    "$(pyshow cdir "len(set(e['anon'] for e in evs)) == 2 and None not in [e['anon'] for e in evs]")" True
run tel status --app cdir --json
check_eq "status says there is no lasting id" "$(J 'd["cookie"]')" "no lasting id"
run tel forget --app cdir
check "forget leaves the directory in place" test -d "$STATE/cdir/telemetry-cookie"

mkdir -p "$STATE/cgarb"
printf 'this is not a uuid\n' >"$STATE/cgarb/telemetry-cookie"
run tel emit --app cgarb ev
check_eq "a garbage cookie: emit succeeds" "$RC" 0
check "the garbage is replaced by one UUID line" grep -qxE \
    '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' "$STATE/cgarb/telemetry-cookie"
check_eq "the cookie is that one line" "$(nlines "$STATE/cgarb/telemetry-cookie")" 1
check_eq "the event carries the new cookie" "$(pyshow cgarb "evs[-1]['anon']")" "$(cat "$STATE/cgarb/telemetry-cookie")"
check_eq "the cookie is 0600" "$(stat -c %a "$STATE/cgarb/telemetry-cookie")" 600

mkdir -p "$STATE/clink" "$T_TMP/elsewhere"
printf 'precious\n' >"$T_TMP/elsewhere/file"
ln -s "$T_TMP/elsewhere/file" "$STATE/clink/telemetry-cookie"
run tel emit --app clink ev
check_eq "a symlinked cookie: emit succeeds" "$RC" 0
check_eq "the link target is untouched" "$(cat "$T_TMP/elsewhere/file")" precious
check "the link stays a link" test -L "$STATE/clink/telemetry-cookie"
check_eq "and the event is stored" "$(count clink)" 1
tel forget --app clink >/dev/null 2>&1
check_eq "forget leaves the link's target alone too" "$(cat "$T_TMP/elsewhere/file")" precious

# ------------------------------------------- no usable state directory
printf 'x' >"$T_TMP/statefile"
run env XDG_STATE_HOME="$T_TMP/statefile" tel emit --strict --app ro ev
one_line_error "state path is a regular file: emit --strict exits 1 with one line" 1
check_eq "and the file is untouched" "$(cat "$T_TMP/statefile")" x
mkdir -p "$STATE"
printf 'x' >"$STATE/rofile"
run tel emit --app rofile --strict ev
one_line_error "the app's state dir is a regular file: --strict: exit 1, one line" 1
run env -u HOME -u XDG_STATE_HOME -u XDG_CONFIG_HOME tel emit --app nohome --strict ev
one_line_error "HOME unset and no XDG: --strict: exit 1, one line" 1
run env HOME= tel emit --app nohome ev --strict
one_line_error "HOME empty: --strict: exit 1, one line" 1

mkdir -p "$T_TMP/cwd"
(cd "$T_TMP/cwd" && XDG_STATE_HOME=rel/state tel emit --app relx ev) >/dev/null 2>&1
check "a relative XDG_STATE_HOME is ignored" test ! -e "$T_TMP/cwd/rel"
check "and HOME/.local/state is used instead" test -f "$STATE/relx/telemetry-cookie"
mkdir -p "$T_TMP/xdg"
XDG_STATE_HOME="$T_TMP/xdg" tel emit --app absx ev >/dev/null 2>&1
check "an absolute XDG_STATE_HOME is used" test -f "$T_TMP/xdg/absx/telemetry-cookie"

# --------------------------------------------------------- corrupt queue
# corrupt_case NAME APP EXPECT_ASIDE(yes|no): after damaging APP's queue,
# the next emit succeeds, show works, and a corrupt-* copy is kept iff
# the data file was bad.
corrupt_case() {
    run tel emit --app "$2" after
    check_eq "$1: the next emit succeeds" "$RC:$(cat "$ERR")" "0:"
    run tel show --app "$2"
    check_eq "$1: show works" "$RC" 0
    check_eq "$1: and shows the new event last" "$(pyshow "$2" "evs[-1]['name']")" after
    aside=$(find "$STATE/$2/telemetry" -name 'data.mdb.corrupt-*' | wc -l | tr -d ' ')
    if [ "$3" = yes ]; then
        check_eq "$1: the bad file is kept as data.mdb.corrupt-*" "$aside" 1
    else
        check_eq "$1: nothing is moved aside" "$aside" 0
    fi
}
for app in crand ctrunc czero clock; do
    for e in a b c; do tel emit --app $app "$e" k=$v1024 >/dev/null 2>&1; done
done
q() { echo "$STATE/$1/telemetry"; }
head -c 20000 /dev/urandom >"$(q crand)/data.mdb"
corrupt_case "random bytes in data.mdb" crand yes
size=$(stat -c %s "$(q ctrunc)/data.mdb")
truncate -s $((size / 2)) "$(q ctrunc)/data.mdb"
corrupt_case "data.mdb cut in half" ctrunc yes
: >"$(q czero)/data.mdb"
corrupt_case "zero-length data.mdb" czero no
head -c 8192 /dev/urandom >"$(q clock)/lock.mdb"
corrupt_case "random lock.mdb" clock no
check_eq "random lock.mdb: the events before are kept" "$(count clock)" 4

# ------------------------------------------------------------ umask 000
(umask 000 && tel emit --app um ev >/dev/null 2>&1)
check_eq "umask 000: the state dir is 0700" "$(stat -c %a "$STATE/um")" 700
check_eq "umask 000: the queue dir is 0700" "$(stat -c %a "$STATE/um/telemetry")" 700
check_eq "umask 000: the cookie is 0600" "$(stat -c %a "$STATE/um/telemetry-cookie")" 600
check_eq "umask 000: data.mdb is 0600" "$(stat -c %a "$STATE/um/telemetry/data.mdb")" 600
check_eq "umask 000: lock.mdb is 0600" "$(stat -c %a "$STATE/um/telemetry/lock.mdb")" 600
(umask 000 && tel disable --app um2 >/dev/null 2>&1)
check_eq "umask 000: telemetry.conf is 0600" "$(stat -c %a "$CONF/um2/telemetry.conf" 2>&1)" 600

# -------------------------------------------------- independent decoder
# The stored bytes, read with LMDB's own dump tool and Python's msgpack,
# sharing no code with tel.  mdb_dump's hex form is used because its -p
# form prints a backslash byte unescaped, which makes it ambiguous.
tel emit --app indep --app-version 1.2.3 ev int=42 neg=-7 dec=1.5 t=true s=hello e:=1e3 >/dev/null 2>&1
tel emit --app indep second >/dev/null 2>&1
mkdir -p "$STATE/indep2/telemetry-cookie"
tel emit --app indep2 nolasting >/dev/null 2>&1
if [ -x /usr/bin/mdb_dump ] && $PY -c 'import msgpack' 2>/dev/null; then
    for app in indep indep2; do
        mdb_dump -s events "$STATE/$app/telemetry" >"$T_TMP/dump.$app" 2>"$ERR"
        check_eq "mdb_dump reads $app's queue" "$?" 0
    done
    cat >"$T_TMP/decode.py" <<'EOF'
import sys, msgpack
def records(path):
    vals, body = [], False
    for line in open(path):
        line = line.rstrip("\n")
        if line == "HEADER=END": body = True; continue
        if line == "DATA=END": break
        if body and line.startswith(" "): vals.append(bytes.fromhex(line[1:]))
    return vals[1::2]  # key, value, key, value...
def check(rec, app):
    problems = []
    def need(cond, what):
        if not cond: problems.append(what)
    need(isinstance(rec, dict), "record is a map")
    need(isinstance(rec.get("i"), bytes) and len(rec["i"]) == 16, "i is 16 bytes")
    need(isinstance(rec.get("t"), int) and rec["t"] > 1.6e12, "t is a ms time")
    need(isinstance(rec.get("n"), str), "n is a string")
    need(isinstance(rec.get("p"), dict), "p is a map")
    need(isinstance(rec.get("x"), bytes) and len(rec["x"]) == 16, "x is 16 bytes")
    need("a" in rec and (rec["a"] is None or (isinstance(rec["a"], bytes) and len(rec["a"]) == 16)), "a is 16 bytes or nil")
    need(isinstance(rec.get("c"), dict) and rec["c"].get("app") == app, "c is a map with app")
    return problems
app, mode = sys.argv[2], sys.argv[3]
recs = [msgpack.unpackb(v, raw=False) for v in records(sys.argv[1])]
if mode == "count": print(len(recs))
elif mode == "fields": print(";".join(p for r in recs for p in check(r, app)) or "ok")
elif mode == "types":
    p = recs[0]["p"]
    print(repr((p["int"], p["neg"], p["dec"], p["t"], p["s"], type(p["e"]).__name__, p["e"])))
elif mode == "anon": print(" ".join("nil" if r["a"] is None else r["a"].hex() for r in recs))
elif mode == "cookie":
    print(recs[-1]["a"].hex())
elif mode == "av": print(recs[0]["c"].get("av"))
EOF
    dec() { $PY "$T_TMP/decode.py" "$T_TMP/dump.$1" "$1" "$2" 2>&1; }
    check_eq "python sees every record" "$(dec indep count)" 2
    check_eq "every record has the fields of format/record.h" "$(dec indep fields)" ok
    check_eq "and without a lasting id too" "$(dec indep2 fields)" ok
    check_eq "property types as stored" "$(dec indep types)" "(42, -7, 1.5, True, 'hello', 'float', 1000.0)"
    check_eq "the anonymous id is the cookie's" "$(dec indep cookie)" "$(tr -d '\n-' <"$STATE/indep/telemetry-cookie")"
    check_eq "the app version is in the context" "$(dec indep av)" 1.2.3
    a2=$(dec indep2 anon)
    case "$a2" in nil|????????????????????????????????) ok "no lasting id: a is nil or a per-run id" ;;
    *) fail "no lasting id: a is nil or a per-run id" "$a2" ;; esac
else
    echo "# mdb_dump or python3-msgpack missing: the independent decoder is skipped"
fi

# ---------------------------------------------------------------- privacy
# Markers in every place a careless library might copy from: the home
# path, the user name, the host name and the working directory.
PHOME="$T_TMP/zq7homemark"
PCWD="$T_TMP/zq7cwdmark"
mkdir -p "$PHOME" "$PCWD"
privacy_run() {
    (cd "$PCWD" && HOME="$PHOME" USER=zq7usermark LOGNAME=zq7usermark "$@" \
        tel emit --app priv --app-version 2.0 cmd.run exit_code=0 ok=true dur=1.5 >/dev/null 2>&1)
}
if unshare --uts sh -c 'hostname zq7hostmark' 2>/dev/null; then
    privacy_run unshare --uts sh -c 'hostname zq7hostmark && exec "$@"' sh
    hostmark=zq7hostmark
else
    privacy_run env
    hostmark=$(hostname)
    echo "# cannot set a host name here: looking for the real one, '$hostmark'"
fi
check "the privacy emit was stored" test -s "$PHOME/.local/state/priv/telemetry/data.mdb"
for m in zq7homemark "$PHOME" zq7usermark "$hostmark" zq7cwdmark "$PCWD"; do
    found=$(grep -laF "$m" "$PHOME/.local/state/priv/telemetry/data.mdb" \
        "$PHOME/.local/state/priv/telemetry-cookie" 2>/dev/null)
    check_eq "'$m' is in no stored byte" "$found" ""
done


# Options may come after the command's operands, as GNU tools allow.
export HOME="$T_TMP/order"
mkdir -p "$HOME"
check "options after operands: tel emit EVENT K=V --app APP" tel emit late.event k=v --app order
check_eq "options after operands: the event is queued with its property" \
    "$(tel show --app order | grep -c '"name":"late.event","exec":.*"props":{"k":"v"}')" 1

check "options before the command: tel --json status --app APP" tel --json status --app order
check_eq "options before the command: --json is honoured" \
    "$(tel --app order --json status | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["queue"]["events"])')" 1

# A token the host recorded shows as "token set" in status, never itself.
export HOME="$T_TMP/tokstat"
mkdir -p "$HOME"
tel emit --app tokstat ev --endpoint https://collector.example/v1 --token TOKSTAT-SECRET-1 >/dev/null 2>&1
check_eq "status --json: a host-recorded token counts as set" \
    "$(tel status --app tokstat --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token_set"])')" True
check_eq "status: the host-recorded token itself is never shown" \
    "$( (tel status --app tokstat; tel status --app tokstat --json) | grep -c TOKSTAT-SECRET-1)" 0

# status --all: every app with a queue, one JSON object per line.
export HOME="$T_TMP/stall"
mkdir -p "$HOME"
tel emit --app st-a ev >/dev/null 2>&1
tel emit --app st-b ev >/dev/null 2>&1
tel emit --app st-b ev >/dev/null 2>&1
check_eq "status --all --json: one line per app, in name order, with its queue" \
    "$(tel status --all --json | /usr/bin/python3 -c 'import json,sys; print(" ".join("%s:%d" % (j["app"], j["queue"]["events"]) for j in map(json.loads, sys.stdin)))')" \
    "st-a:1 st-b:2"
check_eq "status --all: one text block per app" "$(tel status --all | grep -c '^app:')" 2
check_rc "status --all with --app is usage" 2 tel status --all --app st-a
check_rc "--all goes with status only" 2 tel show --all


# A script host declares its own variables; tel status and tel-sync read
# them from their own environment.
export HOME="$T_TMP/declare"
mkdir -p "$HOME"
check_rc "emit --declare-env with an unknown meaning is usage" 2 \
    tel emit --app decl ev --declare-env MY_OFF=off-when-true
check_rc "emit --declare-env without a word for debug-if-contains is usage" 2 \
    tel emit --app decl ev --declare-env DEBUG=debug-if-contains
check_rc "--declare-env goes with emit and metrics" 2 tel status --app decl --declare-env A=on-off
check "a refused declaration stores nothing" test ! -e "$HOME/.local/state/decl"
tel emit --app decl ev --declare-env DECL_OFF=off-if-true --declare-env DEBUG=debug-if-contains:decl:telemetry >/dev/null 2>&1
check_eq "status names the declared variable that decided" \
    "$(DECL_OFF=1 tel status --app decl | sed -n 's/^telemetry: *//p')" "off (decided by env: DECL_OFF)"
check_eq "status lists the declarations" \
    "$(tel status --app decl | sed -n 's/^declared: *//p')" "DECL_OFF (off-if-true), DEBUG (debug-if-contains decl:telemetry)"
check_eq "status: DEBUG holding the word is debug, named" \
    "$(DEBUG=x,decl:telemetry tel status --app decl --json | /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["debug"], j["debug_by"])')" "True DEBUG"
check_eq "emit --debug: logged on stderr, nothing queued" \
    "$(tel emit --app decl dbg --debug 2>&1 | grep -c 'debug, not stored'):$(tel show --app decl | grep -c '"dbg"')" "1:0"
tel emit --app decl insp --inspect "$T_TMP/insp.jsonl" >/dev/null 2>&1
check_eq "emit --inspect: the event in the file, not in the queue" \
    "$(grep -c '"name":"insp"' "$T_TMP/insp.jsonl"):$(tel show --app decl | grep -c '"insp"')" "1:0"
DECL_OFF=1 tel-sync --app decl >/dev/null 2>&1
check_eq "tel-sync under the declared opt-out purges" "$(tel show --app decl | wc -l | tr -d ' ')" 0

# An opt-in script host: off by default, kept queue, the user's on.
export HOME="$T_TMP/optin"
mkdir -p "$HOME"
tel emit --app optin ev --default-off >/dev/null 2>&1
check_eq "default off: nothing queued" "$(tel show --app optin | wc -l | tr -d ' ')" 0
OPTIN_TELEMETRY_ENABLED=1 tel emit --app optin ev --default-off >/dev/null 2>&1
check_eq "default off, the user's on: queued" "$(tel show --app optin | wc -l | tr -d ' ')" 1
check_eq "status: off by the host's default, not an opt-out" \
    "$(tel status --app optin --json | /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["enabled"], j["reason"], j["opted_out"], j["host_default"])')" \
    "False default off False off"
tel-sync --app optin --endpoint http://127.0.0.1:9/v1 >/dev/null 2>&1
check_eq "tel-sync off by the host's default keeps the queue" "$(tel show --app optin | wc -l | tr -d ' ')" 1

t_done
