#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_notice.sh - the first-run notice as a user of a host (mycli)
# sees it: on stderr, once per app and HOME, never in CI (where nobody
# reads it, and where a CI run must not use it up), never when telemetry
# is off.  tests/unit/test_api.c checks the same rules through the API,
# with require_notice.
. "$TEL_TOP/tests/lib.sh"

export TEL_SYNC_PATH=/bin/true
NOTICE="collects anonymous usage data"

# run_mycli [ENV=V...]: one `mycli build` with stdout and stderr apart.
run_mycli() { env "$@" mycli build >"$T_TMP/out" 2>"$T_TMP/err"; RC=$?; }
shown() { grep -c "$NOTICE" "$T_TMP/err"; }
nfile() { test -e "$HOME/.local/state/mycli/telemetry-notice"; }

run_mycli
check_eq "first run: exit 0" "$RC" 0
check_eq "first run: the notice is on stderr" "$(shown)" 1
check "first run: it says how to turn telemetry off" grep -q "MYCLI_TELEMETRY_ENABLED=false" "$T_TMP/err"
check_eq "first run: stdout is the command's alone" "$(cat "$T_TMP/out")" built
check "first run: the notice is recorded as shown" nfile
for i in 2 3; do
    run_mycli
    check_eq "run $i: no notice" "$(shown)" 0
done
check_eq "the runs were recorded" "$(tel show --app mycli | wc -l | tr -d ' ')" 6

# CI: never shown, not used up.
for v in CI=true GITHUB_ACTIONS=true GITLAB_CI=true; do
    export HOME="$T_TMP/ci-${v%%=*}"
    mkdir -p "$HOME"
    run_mycli "$v"
    check_eq "$v: no notice" "$(shown)" 0
    check_eq "$v: still recorded (CI is not an opt-out)" "$(tel show --app mycli | wc -l | tr -d ' ')" 2
    check_not "$v: the notice is not marked shown" nfile
    run_mycli
    check_eq "$v, then outside CI: the notice is shown then" "$(shown)" 1
done
export HOME="$T_TMP/ci-false"
mkdir -p "$HOME"
run_mycli CI=false
check_eq "CI=false is not CI: the notice is shown" "$(shown)" 1

# Off: nothing to give notice of, and nothing written.
for how in DO_NOT_TRACK=1 MYCLI_TELEMETRY_ENABLED=false flag disable; do
    export HOME="$T_TMP/off-${how%%=*}"
    mkdir -p "$HOME"
    case "$how" in
    flag) mycli --no-telemetry build >"$T_TMP/out" 2>"$T_TMP/err" ;;
    disable) mycli telemetry disable && run_mycli ;;
    *) run_mycli "$how" ;;
    esac
    check_eq "$how: no notice" "$(shown)" 0
    check_not "$how: no notice file" nfile
    check_not "$how: no state at all" test -e "$HOME/.local/state"
done


# `tel notice`: the same rules for hosts that are shell scripts.
export HOME="$T_TMP/script"
mkdir -p "$HOME"
tel notice --app scr 2>"$T_TMP/n1"; check_eq "tel notice: exit 0" $? 0
case "$(cat "$T_TMP/n1")" in *"tel disable --app scr"*) ok "tel notice: the default text, on stderr, names how to turn it off" ;;
*) fail "tel notice: the default text, on stderr, names how to turn it off" "$(cat "$T_TMP/n1")" ;; esac
check_eq "tel notice: nothing on stdout" "$(tel notice --app scr2 --message hi 2>/dev/null)" ""
tel notice --app scr 2>"$T_TMP/n2"
check_eq "tel notice: shown once, then never" "$(wc -c <"$T_TMP/n2" | tr -d ' ')" 0
CI=true tel notice --app scr3 --message "NOTICE-SCR3" 2>"$T_TMP/n3"
check_eq "tel notice: not in CI" "$(grep -c NOTICE-SCR3 "$T_TMP/n3")" 0
tel notice --app scr3 --message "NOTICE-SCR3" 2>"$T_TMP/n4"
check_eq "tel notice: a CI run does not use it up; --message replaces the text" "$(cat "$T_TMP/n4")" "NOTICE-SCR3"
DO_NOT_TRACK=1 tel notice --app scr4 2>"$T_TMP/n5"
check_eq "tel notice: not when disabled" "$(wc -c <"$T_TMP/n5" | tr -d ' ')" 0
check_not "tel notice: disabled writes nothing" test -e "$HOME/.local/state/scr4"
check_rc "tel notice: stray argument is usage" 2 tel notice --app scr extra
check_rc "--message goes with notice only" 2 tel show --app scr --message x

# `tel emit --spawn-sync`: the exit hook of a script host, under the
# library's rules (on, something queued, once per 10 minutes).
printf '#!/bin/sh\necho "$*" >>"%s/spawned"\n' "$T_TMP" >"$T_TMP/fake-sync"
chmod +x "$T_TMP/fake-sync"
export TEL_SYNC_PATH="$T_TMP/fake-sync"
wait_spawn() { i=0; while [ ! -s "$T_TMP/spawned" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; }
tel emit --app scr ev --spawn-sync; check_eq "emit --spawn-sync: exit 0" $? 0
wait_spawn
check_eq "emit --spawn-sync: tel-sync started for the app" "$(cat "$T_TMP/spawned" 2>/dev/null)" "--app scr --quiet"
tel emit --app scr ev --spawn-sync; sleep 0.3
check_eq "emit --spawn-sync: not again within 10 minutes" "$(wc -l <"$T_TMP/spawned" | tr -d ' ')" 1
rm -f "$T_TMP/spawned"
DO_NOT_TRACK=1 tel emit --app scr5 ev --spawn-sync; sleep 0.3
check_not "emit --spawn-sync: never when disabled" test -e "$T_TMP/spawned"
tel emit --app scr6 ev; sleep 0.3
check_not "emit without --spawn-sync starts nothing" test -e "$T_TMP/spawned"
check_rc "--spawn-sync goes with emit and metrics only" 2 tel show --app scr --spawn-sync
unset TEL_SYNC_PATH

t_done
