#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/demo.sh BUILD - the whole path on one machine, as `make demo` runs it:
# a tel-collect on loopback, the example CLI emitting events (and starting a
# detached tel-sync as it exits), tel-sync delivering the rest, and what the
# collector received.
set -eu
build=$(cd "${1:-build}" && pwd)
bin="$build/bin"
work=$(mktemp -d "${TMPDIR:-/tmp}/tel-demo.XXXXXX")
collector=""
dashboard=""
cleanup() {
    for p in $collector $dashboard; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# The demo keeps its state and config apart from the user's own.
export XDG_STATE_HOME="$work/state" XDG_CONFIG_HOME="$work/config"
# The tel-sync the CLI starts as it exits runs detached, alongside the
# demo's own steps; through this wrapper (TEL_SYNC_PATH names the tel-sync
# to start) the demo knows when it is done, and waits for it, so that what
# the demo shows is the same every run.
printf '#!/bin/sh\n"%s/tel-sync" "$@"\n: >"%s/spawned.done"\n' "$bin" "$work" >"$work/tel-sync"
chmod +x "$work/tel-sync"
export TEL_SYNC_PATH="$work/tel-sync"
unset DO_NOT_TRACK MYCLI_TELEMETRY_ENABLED MYCLI_TELEMETRY_ENDPOINT MYCLI_TELEMETRY_INSPECT MYCLI_TELEMETRY_DEBUG

# The compiled-in endpoint is tel-collect's default address; when that
# port is taken, the collector takes a free one and the CLI is pointed at it.
# TEL_DEMO_PORT=0 starts on a free port at once (the tests do, so that two
# demos at a time never share a collector).
port=${TEL_DEMO_PORT:-8787}
"$bin/tel-collect" --port "$port" --port-file "$work/port" --db "sqlite:$work/events.db" --out "$work/received.jsonl" -q 2>"$work/collect.err" &
collector=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; kill -0 "$collector" 2>/dev/null || break; sleep 0.1; done
if [ ! -s "$work/port" ]; then
    kill "$collector" 2>/dev/null || true
    "$bin/tel-collect" --port 0 --port-file "$work/port" --db "sqlite:$work/events.db" --out "$work/received.jsonl" -q &
    collector=$!
    for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
fi
port=$(cat "$work/port")
[ "$port" = 8787 ] || export MYCLI_TELEMETRY_ENDPOINT="http://127.0.0.1:$port/v1/batch"
echo "== tel-collect listening on 127.0.0.1:$port"

echo "== running the example CLI (examples/mycli.c)"
"$bin/mycli" --no-telemetry deploy   # records nothing (a per-run off purges nothing either)
"$bin/mycli" --force deploy          # starts a detached tel-sync as it exits
for _ in $(seq 100); do [ -e "$work/spawned.done" ] && break; sleep 0.1; done
[ -e "$work/spawned.done" ] && echo "(the tel-sync it started has delivered its events)"
"$bin/mycli" --output report.txt build
"$bin/mycli" fail || true
echo
echo "== tel status --app mycli"
"$bin/tel" status --app mycli
echo
echo "== tel-sync --app mycli -v"
"$bin/tel-sync" --app mycli -v
want=6
echo
echo "== received by the collector ($(wc -l <"$work/received.jsonl") events)"
/usr/bin/python3 - "$work/received.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    p = e.get("props", {})
    c = e.get("context", {})
    extra = " ".join(f"{k}={v}" for k, v in p.items())
    print(f'{e["time"]}  {e["name"]:<16} {extra}')
    print(f'    id={e["id"]} exec={e["exec"]} anon={e["anon"]}')
    print(f'    app={c.get("app")} {c.get("app_version")} os={c.get("os")} arch={c.get("arch")} ci={c.get("ci")}')
PY
got=$(wc -l <"$work/received.jsonl")
if [ "$got" -ne "$want" ]; then
    echo "demo: expected $want events at the collector, got $got" >&2
    exit 1
fi
echo
echo "demo: ok - $got events recorded, delivered and received"

# A dashboard worth looking at needs more than six events: tools/telgen
# fills a store with two months of generated traffic (the same rows every
# run), and a second tel-collect serves the dashboard of it.
top=$(cd "$(dirname "$0")/.." && pwd)
store="sqlite:$work/dashboard.db"
echo
echo "== generated traffic: tools/telgen --events 20000 --days 60"
: >"$work/dashboard.db"   # report makes the schema in an empty file, never a file
"$bin/tel-collect" report --db "$store" --since 1d >/dev/null
/usr/bin/python3 "$top/tools/telgen" --events 20000 --days 60 --end 2026-12-01 --seed 1 --db "$store" --summary
range="from=2026-11-02&to=2026-11-30"
echo
echo "== tel-collect report --app mycli --from 2026-11-02 --to 2026-11-30 (the commands)"
"$bin/tel-collect" report --db "$store" --app mycli --from 2026-11-02 --to 2026-11-30 |
    sed -n '/^== Commands by use/,/^$/p'
dport=8788
"$bin/tel-collect" --db "$store" --port "$dport" --port-file "$work/dport" -q 2>/dev/null &
dashboard=$!
for _ in $(seq 50); do [ -s "$work/dport" ] && break; kill -0 "$dashboard" 2>/dev/null || break; sleep 0.1; done
if [ ! -s "$work/dport" ]; then
    "$bin/tel-collect" --db "$store" --port 0 --port-file "$work/dport" -q &
    dashboard=$!
    for _ in $(seq 50); do [ -s "$work/dport" ] && break; sleep 0.1; done
fi
dport=$(cat "$work/dport")
echo "== the dashboard: http://127.0.0.1:$dport/?$range"
if [ -t 0 ] && [ -t 1 ]; then
    printf 'Open it in a browser (or: w3m, lynx); press Enter to stop it. '
    read -r _ || true
fi
