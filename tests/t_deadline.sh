#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_deadline.sh - a run that reaches its own --max-time has not
# failed: the next run resumes at once, with no backoff, and `tel status`
# does not call the queue deferred.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

qcount() { tel show --app "$1" 2>/dev/null | grep -c '^{'; }

for i in 1 2 3; do tel emit --app dl test.event "n=$i"; done

# The collector answers after 3 s; the run has 1 s.
start_collect slow --delay 3000
err=$(tel-sync --app dl --endpoint "$URL" --max-time 1 -v 2>&1); rc=$?
stop_pid $CPID
check_eq "a run cut short by --max-time exits 0" $rc 0
check_eq "a run cut short by --max-time keeps the events" "$(qcount dl)" 3
case "$err" in
*"backing off"*) fail "a run cut short by --max-time does not back off" "$err" ;;
*"out of time"*) ok "a run cut short by --max-time does not back off" ;;
*) fail "a run cut short by --max-time does not back off" "$err" ;;
esac
st=$(tel status --app dl)
case "$st" in
*deferred*) fail "tel status does not say deferred after a run ran out of time" "$st" ;;
*) ok "tel status does not say deferred after a run ran out of time" ;;
esac
case "$(tel status --app dl --json)" in
*'"deferred":false'*) ok "tel status --json says not deferred after a run ran out of time" ;;
*) fail "tel status --json says not deferred after a run ran out of time" "$(tel status --app dl --json)" ;;
esac

# The next run (no --force) sends at once.
start_collect fast
err=$(tel-sync --app dl --endpoint "$URL" -v 2>&1); rc=$?
stop_pid $CPID
check_eq "the next run after a --max-time stop exits 0" $rc 0
check_eq "the next run after a --max-time stop sends the events" "$(qcount dl)" 0
t_done
