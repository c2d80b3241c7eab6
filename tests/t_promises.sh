#!/bin/sh
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

t_done
