# SPDX-License-Identifier: MIT
# tests/t_state.sh - broken and hostile state the other tests leave out:
# a data.mdb of another LMDB format version, the queue path taken by a
# file, no HOME for tel-sync and the readers, symlinks planted for the
# state directory and for tel-sync's sync.lock and sent.log, a state
# directory owned by someone else, loose modes, umask 000 for tel-sync's
# files, and app names with path tricks given to the library itself.
#
# t_tel.sh covers the emits' side of most of these (state path a file,
# HOME unset, umask 000, corrupt files); test_queue covers a full map.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
OUT="$T_TMP/out"
ERR="$T_TMP/err"
run() { "$@" >"$OUT" 2>"$ERR"; RC=$?; }
nlines() { wc -l <"$1" | tr -d ' '; }
# err_line NAME PROG WANT_RC: $RC is WANT_RC, stderr is one "PROG: ..." line.
err_line() {
    why=""
    [ "$RC" = "$3" ] || why="exit $RC, want $3"
    [ "$(nlines "$ERR")" = 1 ] || why="$why; $(nlines "$ERR") stderr lines: $(head -c 200 "$ERR")"
    case "$(head -n 1 "$ERR")" in "$2: "?*) ;; *) why="$why; stderr: $(head -c 200 "$ERR")" ;; esac
    if [ -z "$why" ]; then ok "$1"; else fail "$1" "$why"; fi
}
# tree DIR: every path under DIR with type, mode, size and content hash.
tree() { find "$1" -printf '%p %y %m %s\n' 2>/dev/null | sort; find "$1" -type f -exec md5sum {} + 2>/dev/null | sort; }
tel-collect -q --port 0 --port-file "$T_TMP/port" --out "$T_TMP/coll.jsonl" 2>/dev/null &
CPID=$!
URL="http://127.0.0.1:$(wait_port "$T_TMP/port")/v1/batch"
q() { echo "$STATE/$1/telemetry"; }

# ------------------------------------------------- another format version
# A valid LMDB file whose two meta pages say version 2: not ours to read.
# The next emit starts a fresh queue and keeps the file, byte for byte,
# beside it; a reader changes nothing.
for i in 1 2 3; do tel emit --app ver ev "p=v$i" >/dev/null 2>&1; done
$PY - "$(q ver)/data.mdb" <<'EOF'
import struct, sys
f = open(sys.argv[1], "r+b")
for page in (0, 4096):
    f.seek(page + 20)
    assert struct.unpack("<I", f.read(4))[0] == 1
    f.seek(page + 20)
    f.write(struct.pack("<I", 2))
EOF
md5=$(md5sum <"$(q ver)/data.mdb")
run tel show --app ver
err_line "version-2 data.mdb: show refuses with one line" tel 1
check_eq "version-2 data.mdb: show leaves it as it was" "$(md5sum <"$(q ver)/data.mdb")" "$md5"
run tel emit --app ver ev p=v4
check_eq "version-2 data.mdb: the next emit succeeds" "$RC:$(cat "$ERR")" "0:"
aside=$(ls "$(q ver)"/data.mdb.corrupt-* 2>/dev/null | head -n 1)
check_eq "version-2 data.mdb: kept aside unchanged" "$(md5sum <"${aside:-/dev/null}")" "$md5"
check_eq "version-2 data.mdb: the fresh queue holds the new event" \
    "$(tel show --app ver 2>/dev/null | wc -l | tr -d ' ')" 1
check "version-2 data.mdb: the fresh queue opens clean" mdb_stat -s events "$(q ver)"

# ------------------------------------------------- the queue path is a file
mkdir -p "$STATE/qfile"
printf 'mine' >"$STATE/qfile/telemetry"
run tel emit --strict --app qfile ev
err_line "telemetry/ is a file: emit --strict exits 1, one line" tel 1
run tel-sync --app qfile --endpoint "$URL"
err_line "telemetry/ is a file: tel-sync exits 1, one line" tel-sync 1
run tel show --app qfile
err_line "telemetry/ is a file: show exits 1, one line" tel 1
check_eq "telemetry/ is a file: the file is untouched" "$(cat "$STATE/qfile/telemetry")" mine

# ------------------------------------------------------------- no HOME
for cmd in "tel-sync --app nohome" "tel-sync --all" "tel show --app nohome" "tel status --app nohome" \
    "tel forget --app nohome" "tel disable --app nohome"; do
    # shellcheck disable=SC2086
    run env -u HOME -u XDG_STATE_HOME -u XDG_CONFIG_HOME $cmd
    prog=${cmd%% *}
    if [ "$RC" -gt 128 ]; then fail "HOME unset: $cmd" "signal $RC"
    elif [ "$RC" = 0 ] && [ ! -s "$ERR" ]; then ok "HOME unset: $cmd does nothing, quietly"
    elif [ "$RC" = 1 ] && [ "$cmd" = "tel status --app nohome" ]; then
        # status reports on stdout, exit 1 meaning "the queue is unreadable".
        check "HOME unset: status exits 1 and says there is no home directory" grep -q 'no home directory' "$OUT"
    elif [ "$RC" = 1 ]; then err_line "HOME unset: $cmd exits 1 with one line" "$prog" 1
    else fail "HOME unset: $cmd" "exit $RC: $(head -c 200 "$ERR")"; fi
done

# ------------------------------------------------------ planted symlinks
# The app's state directory itself is a link to someone's directory that
# holds a queue: nothing may read, lock, log or delete there.
mkdir -p "$T_TMP/victim"
for i in 1 2; do tel emit --app donor ev "p=d$i" >/dev/null 2>&1; done
cp -r "$STATE/donor/telemetry" "$T_TMP/victim/"
ln -s "$T_TMP/victim" "$STATE/linked"
before=$(tree "$T_TMP/victim")
run tel emit --strict --app linked ev
err_line "state dir is a symlink: emit --strict exits 1, one line" tel 1
run tel-sync --app linked --endpoint "$URL"
err_line "state dir is a symlink: tel-sync exits 1, one line" tel-sync 1
tel show --app linked >/dev/null 2>&1
tel status --app linked >/dev/null 2>&1
tel forget --app linked >/dev/null 2>&1
tel-sync --all --endpoint "$URL" >/dev/null 2>&1
check_eq "state dir is a symlink: emit, sync, --all, show, status, forget left the target untouched" \
    "$(tree "$T_TMP/victim")" "$before"
check "and the link is still a link" test -L "$STATE/linked"

# sync.lock and sent.log planted as links to files elsewhere.
printf 'precious lock\n' >"$T_TMP/lock.target"
printf 'precious log\n' >"$T_TMP/log.target"
for i in 1 2; do tel emit --app sl ev "p=l$i" >/dev/null 2>&1; done
ln -s "$T_TMP/lock.target" "$(q sl)/sync.lock"
run tel-sync --app sl --endpoint "$URL"
err_line "sync.lock is a symlink: tel-sync exits 1, one line" tel-sync 1
check_eq "sync.lock is a symlink: nothing sent or deleted" "$(tel show --app sl | wc -l | tr -d ' ')" 2
check_eq "sync.lock is a symlink: the target is untouched" "$(cat "$T_TMP/lock.target")" "precious lock"
rm -f "$(q sl)/sync.lock"
ln -s "$T_TMP/log.target" "$(q sl)/sent.log"
run tel-sync --app sl --endpoint "$URL"
check_eq "sent.log is a symlink: tel-sync still delivers" "$RC:$(tel show --app sl | wc -l | tr -d ' ')" "0:0"
check_eq "sent.log is a symlink: the target is untouched" "$(cat "$T_TMP/log.target")" "precious log"
check "sent.log is a symlink: the link stays a link" test -L "$(q sl)/sent.log"
# A big sent.log link must not be rotated onto sent.log.1 either.
head -c 70000 /dev/zero | tr '\0' x >"$T_TMP/big.target"
rm -f "$(q sl)/sent.log"
ln -s "$T_TMP/big.target" "$(q sl)/sent.log"
tel emit --app sl ev p=l3 >/dev/null 2>&1
tel-sync --app sl --endpoint "$URL" >/dev/null 2>&1
check_eq "a sent.log link to a big file: neither rotated nor written" \
    "$(test -L "$(q sl)/sent.log" && echo link):$(wc -c <"$T_TMP/big.target" | tr -d ' ')" "link:70000"

# ------------------------------------------------- someone else's directory
if [ "$(id -u)" = 0 ]; then
    for i in 1 2; do tel emit --app other ev "p=o$i" >/dev/null 2>&1; done
    chown -R 65534 "$(q other)"
    before=$(tree "$(q other)")
    run tel emit --strict --app other ev p=o3
    err_line "queue dir owned by another user: emit --strict exits 1, one line" tel 1
    run tel-sync --app other --endpoint "$URL"
    err_line "queue dir owned by another user: tel-sync exits 1, one line" tel-sync 1
    check_eq "queue dir owned by another user: nothing in it changed" "$(tree "$(q other)")" "$before"
    chown -R 0 "$(q other)"
    check_eq "given back, its events are all there" "$(tel show --app other | wc -l | tr -d ' ')" 2
else
    skip "queue dir owned by another user: chown needs root"
fi

# ------------------------------------------------------------ loose modes
tel emit --app loose ev >/dev/null 2>&1
chmod 0777 "$STATE/loose" "$(q loose)"
tel emit --app loose ev >/dev/null 2>&1
check_eq "mode 0777: an emit tightens the state dir and queue dir to 0700" \
    "$(stat -c %a "$STATE/loose"):$(stat -c %a "$(q loose)")" "700:700"
chmod 0777 "$(q loose)"
tel-sync --app loose --endpoint "$URL" >/dev/null 2>&1
check_eq "mode 0777: tel-sync tightens the queue dir too" "$(stat -c %a "$(q loose)")" 700

# --------------------------------------------------------- umask 000
(umask 000 && tel emit --app um ev >/dev/null 2>&1 && tel-sync --app um --endpoint "$URL" >/dev/null 2>&1)
check_eq "umask 000: sync.lock is 0600" "$(stat -c %a "$(q um)/sync.lock" 2>&1)" 600
check_eq "umask 000: sent.log is 0600" "$(stat -c %a "$(q um)/sent.log" 2>&1)" 600

# --------------------------------------------- app names in the library
# tel and tel-sync refuse them on the command line (t_tel, t_sync); the
# library's own entry points must too, before touching the disk.
cat >"$T_TMP/appnames.c" <<'EOF'
#include <stdio.h>
#include "tel.h"
int main(void)
{
    static const char *const bad[] = { "../x", "a/b", ".x", "..", ".", "", "UP", "a b", "a\nb",
        "/abs", "x/../y", "0123456789012345678901234567890123456789012345678901234567890123456789" };
    int wrong = 0;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tel_options *o = tel_options_new(bad[i]);
        if (o) { printf("options_new accepted '%s'\n", bad[i]); tel_options_free(o); wrong++; }
        if (tel_emit(bad[i], "ev", NULL, 0) >= 0) { printf("tel_emit accepted '%s'\n", bad[i]); wrong++; }
        if (tel_set_enabled(bad[i], 0) >= 0) { printf("set_enabled accepted '%s'\n", bad[i]); wrong++; }
        if (tel_forget(bad[i]) >= 0) { printf("forget accepted '%s'\n", bad[i]); wrong++; }
        char line[256];
        if (tel_status_line(bad[i], line, sizeof line) >= 0) { printf("status_line accepted '%s'\n", bad[i]); wrong++; }
    }
    return wrong != 0;
}
EOF
san=""
[ "${TEL_SANITIZED:-0}" = 1 ] && san="-fsanitize=address,undefined"
if cc $san -I"$TEL_TOP/include" -o "$T_TMP/appnames" "$T_TMP/appnames.c" "$TEL_BUILD/libtel.a" \
    -llmdb -lmsgpackc 2>"$T_TMP/cc.err"; then
    # The collector's own store (its background refresh writes its WAL at
    # any moment) is not the library's doing.
    before=$(find "$T_TMP" -newer "$T_TMP/appnames.c" 2>/dev/null | grep -v "appnames\|cc.err\|/tel-collect/" | sort)
    run "$T_TMP/appnames"
    check_eq "library: every entry point refuses names with path tricks" "$RC:$(head -c 300 "$OUT")" "0:"
    check_eq "library: and touches nothing on disk for them" \
        "$(find "$T_TMP" -newer "$T_TMP/appnames.c" 2>/dev/null | grep -v "appnames\|cc.err\|/tel-collect/\|/out\$\|/err\$" | sort)" \
        "$(echo "$before" | grep -v "/out\$\|/err\$")"
else
    fail "library: app-name check builds" "$(head -c 300 "$T_TMP/cc.err")"
fi

# A data.mdb whose first commit never completed holds no trees yet (as
# after a power cut during the very first emit): readers see an empty
# queue, and the next emit works.
if command -v mdb_load >/dev/null 2>&1; then
    fresh="$STATE/firstcut/telemetry"
    mkdir -p "$fresh" && chmod 700 "$STATE/firstcut" "$fresh"
    printf 'VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\nDATA=END\n' | mdb_load "$fresh" 2>/dev/null
    out=$(tel show --app firstcut 2>&1); rc=$?
    check_eq "no trees yet: tel show exits 0" "$rc" 0
    check_eq "no trees yet: tel show prints nothing" "$out" ""
    check "no trees yet: the next emit works" tel emit --app firstcut ev
    check_eq "no trees yet: then one event" "$(tel show --app firstcut | grep -c '^{')" 1
else
    skip "no trees yet: mdb_load missing"
fi

# A damaged queue is kept aside with a log line: on stderr from tel-sync
# (a cron mail is right for lost events), and through the library's log
# only when logging was asked for.
tel emit --app dmg ev >/dev/null 2>&1
head -c 8192 /dev/urandom >"$STATE/dmg/telemetry/data.mdb"
err=$(tel emit --app dmg ev2 2>&1)
check_eq "damaged queue, no logging: the library stays quiet" "$err" ""
head -c 8192 /dev/urandom >"$STATE/dmg/telemetry/data.mdb"
err=$(DMG_TELEMETRY_LOGGING=true tel emit --app dmg ev3 2>&1)
case "$err" in *"queue was damaged; kept aside as data.mdb.corrupt-"*) ok "damaged queue, logging on: one line names the kept file" ;;
*) fail "damaged queue, logging on: one line names the kept file" "$err" ;; esac
head -c 8192 /dev/urandom >"$STATE/dmg/telemetry/data.mdb"
err=$(tel-sync --app dmg --endpoint http://127.0.0.1:9/x 2>&1)
case "$err" in "tel-sync: dmg: the queue was damaged; kept aside as data.mdb.corrupt-"*) ok "damaged queue: tel-sync says so in one line" ;;
*) fail "damaged queue: tel-sync says so in one line" "$err" ;; esac
case "$err" in *"$HOME"*) fail "damaged queue: the line holds no path" "$err" ;; *) ok "damaged queue: the line holds no path" ;; esac
check_eq "damaged queue: every damaged file is kept" "$(ls "$STATE/dmg/telemetry" | grep -c '^data.mdb.corrupt-')" 3

kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
t_done
