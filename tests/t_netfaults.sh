# SPDX-License-Identifier: MIT
# tests/t_netfaults.sh - the collector faults t_sync.sh leaves out: the
# rest of tel-sync's status table (408, 422, 500, 502, 504), a collector
# behind a self-signed certificate, a dead proxy, and every environment
# knob someone might hope turns TLS verification off.
#
# Each case: tel-sync exits as docs/tel-sync.md says (0 for everything deferred),
# deletes nothing it should keep, and says why with -v.
. "$TEL_TOP/tests/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY

PY=/usr/bin/python3
COLLECTOR="$TEL_TOP/tests/collector.py"

# collector NAME ARGS...: starts collector.py; sets CPID, REC, URL.
collector() {
    n=$1
    shift
    REC="$T_TMP/$n.json"
    $PY "$COLLECTOR" --port-file "$T_TMP/$n.port" --out "$REC" "$@" 2>"$T_TMP/$n.err" &
    CPID=$!
    URL="http://127.0.0.1:$(wait_port "$T_TMP/$n.port")/v1/batch"
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
requests() { $PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["requests"]))' "$REC" 2>/dev/null || echo 0; }
emit_n() {
    i=1
    while [ $i -le "$2" ]; do tel emit --app "$1" ev "p=$1-$i" >/dev/null 2>&1; i=$((i + 1)); done
}
queued() { tel show --app "$1" 2>/dev/null | wc -l | tr -d ' '; }
deferred_s() { echo "$1" | sed -n 's/.*next attempt in \([0-9]*\) s.*/\1/p'; }

# ------------------------------------------------ the rest of the table
# 408 and 5xx: kept, backed off.  422: poison, dropped and counted.
for code in 408 500 502 504; do
    collector "s$code" --mode status --status $code
    emit_n "s$code" 3
    check_rc "$code: exit 0" 0 tel-sync --app "s$code" --endpoint "$URL"
    check_eq "$code: events kept" "$(queued "s$code")" 3
    s=$(deferred_s "$(tel-sync --app "s$code" --endpoint "$URL" -v 2>&1)")
    if [ -n "$s" ] && [ "$s" -ge 1 ] && [ "$s" -le 60 ]; then ok "$code: backs off (first attempt: <= 60 s)"
    else fail "$code: backs off (first attempt: <= 60 s)" "deferred '$s' s"; fi
    check_eq "$code: the deferred run sent nothing" "$(requests)" 1
    stop $CPID
done

collector s422 --mode status --status 422 --first 1
emit_n s422 3
check_rc "422: exit 0" 0 tel-sync --app s422 --endpoint "$URL"
check_eq "422: the batch is poison: dropped" "$(queued s422)" 0
emit_n s422 1
tel-sync --app s422 --endpoint "$URL" >/dev/null 2>&1
check_eq "422: the next accepted batch reports 3 dropped" \
    "$($PY -c 'import json,sys; print([(r["status"], r["dropped"]) for r in json.load(open(sys.argv[1]))["requests"]])' "$REC")" \
    "[(422, 0), (200, 3)]"
stop $CPID

# ------------------------------------------------------------ dead proxy
# A proxy that refuses connections is an offline day: deferred, exit 0,
# nothing lost, and quick.
dead=$(free_port)
emit_n proxy 3
for var in https_proxy HTTPS_PROXY ALL_PROXY; do
    rm -f "$STATE/proxy/telemetry/sent.log"
    t0=$(date +%s)
    out=$(env "$var=http://127.0.0.1:$dead" tel-sync --app proxy --endpoint https://collector.invalid/v1/batch --force -v 2>&1)
    rc=$?
    el=$(( $(date +%s) - t0 ))
    check_eq "dead proxy ($var): exit 0" "$rc" 0
    check_eq "dead proxy ($var): nothing lost" "$(queued proxy)" 3
    case "$out" in *"backing off"*) ok "dead proxy ($var): deferred with a reason" ;;
        *) fail "dead proxy ($var): deferred with a reason" "$out" ;; esac
    if [ "$el" -le 5 ]; then ok "dead proxy ($var): over in ${el} s"; else fail "dead proxy ($var): over quickly" "${el} s"; fi
done
collector proxyhttp
out=$(http_proxy="http://127.0.0.1:$dead" tel-sync --app proxy --endpoint "$URL" --force -v 2>&1)
rc=$?
check_eq "dead http_proxy, loopback http collector: exit 0" "$rc" 0
if [ "$(queued proxy)" = 0 ] || [ "$(queued proxy)" = 3 ]; then ok "dead http_proxy: delivered directly or kept whole ($(queued proxy) left)"
else fail "dead http_proxy: delivered directly or kept whole" "$(queued proxy) left"; fi
stop $CPID

# ------------------------------------------------------ self-signed TLS
if ! command -v openssl >/dev/null 2>&1; then
    skip "TLS: no openssl to make a certificate"
    t_done
fi
cert="$T_TMP/cert.pem"
key="$T_TMP/key.pem"
if ! openssl req -x509 -newkey rsa:2048 -nodes -keyout "$key" -out "$cert" -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" >/dev/null 2>&1; then
    skip "TLS: openssl could not make a certificate"
    t_done
fi
# A one-file HTTPS collector: answers 200 to any POST that completes, and
# counts those in a file, so "nothing was sent" is checked on the server.
cat >"$T_TMP/tls.py" <<'EOF'
import http.server, ssl, sys
cert, key, portfile, count = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(count, "a") as f: f.write("post\n")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
import os; os.replace(portfile + ".tmp", portfile)
s.serve_forever()
EOF
: >"$T_TMP/tls.count"
$PY "$T_TMP/tls.py" "$cert" "$key" "$T_TMP/tls.port" "$T_TMP/tls.count" 2>"$T_TMP/tls.err" &
TPID=$!
TURL="https://127.0.0.1:$(wait_port "$T_TMP/tls.port")/v1/batch"
posts() { wc -l <"$T_TMP/tls.count" | tr -d ' '; }

emit_n tls 3
out=$(tel-sync --app tls --endpoint "$TURL" -v 2>&1)
rc=$?
check_eq "self-signed collector: exit 0 (deferred, like any network error)" "$rc" 0
check_eq "self-signed collector: nothing deleted" "$(queued tls)" 3
check_eq "self-signed collector: no request reached it" "$(posts)" 0
case "$out" in *[Cc]ertificate*|*SSL*|*TLS*|*"peer"*) ok "self-signed collector: -v names the TLS failure" ;;
    *) fail "self-signed collector: -v names the TLS failure" "$out" ;; esac
case "$(tel status --app tls 2>&1)" in *deferred*) ok "self-signed collector: tel status shows the deferral" ;;
    *) fail "self-signed collector: tel status shows the deferral" "$(tel status --app tls 2>&1 | tail -n 2)" ;; esac

# No switch turns verification off: every knob other tools read for
# "insecure" is set at once, with the proxy knobs cleared, and the
# collector must still see nothing.
out=$(env CURL_INSECURE=1 CURLOPT_SSL_VERIFYPEER=0 GIT_SSL_NO_VERIFY=1 NODE_TLS_REJECT_UNAUTHORIZED=0 \
    PYTHONHTTPSVERIFY=0 SSL_NO_VERIFY=1 TEL_INSECURE=1 TLS_TELEMETRY_INSECURE=1 \
    TLS_TELEMETRY_VERIFY=0 TLS_TELEMETRY_TLS_VERIFY=false HOME="$HOME" \
    tel-sync --app tls --endpoint "$TURL" --force 2>&1)
check_eq "insecure knobs: still refused, nothing deleted" "$(queued tls):$(posts)" "3:0"
printf 'insecure\n-k\n' >"$HOME/.curlrc"
mkdir -p "$CONF/tls"
printf 'verify = false\ninsecure = true\ntls_verify = false\n' >"$CONF/tls/telemetry.conf"
tel-sync --app tls --endpoint "$TURL" --force >/dev/null 2>&1
check_eq "a .curlrc or telemetry.conf saying insecure: still nothing sent" "$(queued tls):$(posts)" "3:0"
rm -f "$HOME/.curlrc" "$CONF/tls/telemetry.conf"

# Trusting a CA the user configured is standard and fine; whichever of
# these knobs libcurl honours, the run either delivers (the user trusted
# the certificate) or refuses - it never half-delivers or crashes.
for knob in CURL_CA_BUNDLE SSL_CERT_FILE; do
    before=$(posts)
    env "$knob=$cert" tel-sync --app tls --endpoint "$TURL" --force >/dev/null 2>&1
    rc=$?
    after=$(posts)
    if [ "$after" -gt "$before" ]; then
        check_eq "$knob=<the cert>: trusted as the user asked, delivered, queue emptied" "$rc:$(queued tls)" "0:0"
        emit_n tls 3
    else
        check_eq "$knob=<the cert>: not honoured, refused, nothing deleted" "$rc:$(queued tls)" "0:3"
    fi
done

# The name still has to match: a certificate for another name, trusted or
# not, is refused.
okey="$T_TMP/okey.pem"
ocert="$T_TMP/ocert.pem"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$okey" -out "$ocert" -days 2 \
    -subj "/CN=wrong.example" -addext "subjectAltName=DNS:wrong.example" >/dev/null 2>&1
stop $TPID
: >"$T_TMP/tls.count"
rm -f "$T_TMP/tls.port"
$PY "$T_TMP/tls.py" "$ocert" "$okey" "$T_TMP/tls.port" "$T_TMP/tls.count" 2>>"$T_TMP/tls.err" &
TPID=$!
TURL="https://127.0.0.1:$(wait_port "$T_TMP/tls.port")/v1/batch"
n=$(queued tls)
SSL_CERT_FILE="$ocert" CURL_CA_BUNDLE="$ocert" tel-sync --app tls --endpoint "$TURL" --force >/dev/null 2>&1
check_eq "a certificate for another host name: refused even when its CA is offered" "$(queued tls):$(posts)" "$n:0"
stop $TPID

t_done
