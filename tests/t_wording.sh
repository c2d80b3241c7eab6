#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_wording.sh - what the tools say reads right: plurals, an empty
# queue, waits in hours with the time they end, what enable, disable and
# forget did, no "sent 0 events" after a failure, the collector named by
# host and port only, and the file an error is about.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

# has NAME TEXT WORD: TEXT contains WORD.  lacks NAME TEXT WORD: it does not.
has() { case "$2" in *"$3"*) ok "$1" ;; *) fail "$1" "'$3' not in: $2" ;; esac; }
lacks() { case "$2" in *"$3"*) fail "$1" "'$3' in: $2" ;; *) ok "$1" ;; esac; }

# ---------------------------------------------------------------- status
tel emit --app one run
st=$(tel status --app one)
has "status says 1 event, not 1 events" "$st" "queue:       1 event,"
tel forget --app one 2>/dev/null
st=$(tel status --app one)
lacks "status of an empty queue has no oldest age" "$st" "oldest"
has "status of an empty queue says 0 events" "$st" "queue:       0 events, 0 dropped"

# A 401 defers a day: shown in hours, with the time it ends.
tel emit --app auth run
start_collect auth --status 401
tel-sync --app auth --endpoint "$URL" -q
stop_pid $CPID
st=$(tel status --app auth)
case "$st" in
*"deferred for 24 h (until 20"[0-9][0-9]-[0-9][0-9]-[0-9][0-9]" "[0-9][0-9]:[0-9][0-9]" UTC) after 1 failed attempt "*)
    ok "status says deferred for 24 h and until when, after 1 failed attempt" ;;
*) fail "status says deferred for 24 h and until when, after 1 failed attempt" "$st" ;;
esac
lacks "status does not count a wait in seconds" "$st" "86400"

# ------------------------------------------------------ tel-sync -v lines
start_collect ok
out=$(tel-sync --app one --endpoint "$URL" -v 2>&1)
tel emit --app one run
out=$(tel-sync --app one --endpoint "$URL" -v 2>&1)
stop_pid $CPID
has "tel-sync -v says sent 1 event in 1 batch" "$out" "sent 1 event in 1 batch "
has "status says what the last delivery sent" "$(tel status --app one)" "last delivery: 1 event, accepted at"

# A closed port, a path and a token that must not show.
PORT=$(free_port)
tel emit --app net run
out=$(tel-sync --app net --endpoint "http://127.0.0.1:$PORT/secret/path" --token tok3n -v 2>&1)
lacks "tel-sync -v after a failure does not say sent 0 events" "$out" "sent 0"
has "a network error names the collector's host and port" "$out" "(127.0.0.1:$PORT)"
lacks "a network error does not name the path" "$out" "secret"
lacks "a network error does not show the token" "$out" "tok3n"
has "tel status names the host and port of the last network error" "$(tel status --app net)" "127.0.0.1:$PORT"

# ------------------------------------------- enable, disable, forget
tel emit --app sw a; tel emit --app sw b
err=$(tel disable --app sw 2>&1)
check_eq "disable says what it did, in one line" "$err" "tel: telemetry for sw is now off; 2 queued events deleted"
err=$(tel enable --app sw 2>&1)
check_eq "enable says what it did, in one line" "$err" "tel: telemetry for sw is now on"
tel emit --app sw a
err=$(tel forget --app sw 2>&1)
check_eq "forget says what it did, in one line" "$err" \
    "tel: the anonymous id of sw is forgotten (the next event gets a new one); 1 queued event deleted"

# ------------------------------------------------- errors name the file
err=$(tel metrics --app m "$T_TMP/nonexistent" 2>&1)
has "tel metrics names the file it cannot open" "$err" "$T_TMP/nonexistent"
# Under a regular file, so that not even root can create it.
: >"$T_TMP/plain"
err=$(tel-collect -q --port 0 --out "$T_TMP/plain/x.jsonl" 2>&1)
has "tel-collect names the --out file it cannot open" "$err" "$T_TMP/plain/x.jsonl"
t_done
