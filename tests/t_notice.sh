#!/bin/sh
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

t_done
