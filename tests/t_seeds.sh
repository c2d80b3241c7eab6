#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_seeds.sh - every knob of the telemetry pages of Atmos, Astro,
# CloudQuery, werf and Cozystack, driven through the example hosts of
# examples/<product>/
# against tel-collect.  For each knob: what is recorded (tel show), what
# arrives at the collector, what tel status says, and what a tel-sync run
# the way cron runs it (env -i, HOME and nothing else unless the crontab
# sets it) does.  Checks are named after the pages' own words.
. "$TEL_TOP/tests/lib.sh"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
unset DEBUG ASTRO_TELEMETRY_DISABLED CQ_NO_TELEMETRY CQ_DEBUG_TELEMETRY WERF_TELEMETRY \
    WERF_TELEMETRY_LOG_FILE WERF_REPO WERF_ENV ATMOS_TELEMETRY_ENABLED ATMOS_TELEMETRY_ENDPOINT \
    ATMOS_TELEMETRY_TOKEN ATMOS_TELEMETRY_LOGGING TELEMETRY_TOKEN
PY=/usr/bin/python3
SYNC=$(command -v tel-sync)
# Delivery happens only where a check asks for it: the detached tel-sync a
# host starts as it exits is a no-op here.
export TEL_SYNC_PATH=/bin/true

OUT="$T_TMP/collected.jsonl"
tel-collect -q --port 0 --port-file "$T_TMP/tc.port" --out "$OUT" 2>"$T_TMP/tc.err" &
TC_PID=$!
URL="http://127.0.0.1:$(wait_port "$T_TMP/tc.port")/v1/batch"
[ "$URL" != "http://127.0.0.1:/v1/batch" ] || { fail "tel-collect" "did not start"; t_done; }

# home NAME APP: a fresh user whose telemetry.conf sends APP to tel-collect,
# working in a project directory of its own.
home() {
    export HOME="$T_TMP/$1"
    mkdir -p "$HOME/.config/$2" "$HOME/project"
    printf 'endpoint = %s\n' "$URL" >"$HOME/.config/$2/telemetry.conf"
    cd "$HOME/project" || exit 1
}
# queued APP [NAME]: events queued (named NAME).
queued() { tel show --app "$1" 2>/dev/null | grep -c "\"name\":\"${2:-}" ; }
# shown APP EXPR: a Python expression over E, the queued events (dicts);
# H is HOME.
shown() { tel show --app "$1" 2>/dev/null | $PY -c 'import json,sys; H=sys.argv[2]; E=[json.loads(l) for l in sys.stdin]; print(eval(sys.argv[1]))' "$2" "$HOME" 2>&1; }
cookie() { cat "$HOME/.local/state/$1/telemetry-cookie" 2>/dev/null; }
# arrived APP EXPR [ANON]: a Python expression over E, what tel-collect
# stored for this user (the events carrying this HOME's anonymous id, or
# ANON, an id the user had before an opt-out deleted it); H is HOME.
arrived() {
    $PY -c 'import json,sys
H=sys.argv[4]
E=[e for e in map(json.loads, open(sys.argv[1])) if e.get("anon") == sys.argv[3]]
print(eval(sys.argv[2]))' "$OUT" "$2" "${3:-$(cookie "$1")}" "$HOME" 2>&1
}
# decided APP [VAR=VALUE...]: the "telemetry:" line of tel status.
decided() { app=$1; shift; env "$@" tel status --app "$app" | sed -n 's/^telemetry: *//p'; }
# cron APP [VAR=VALUE...]: tel-sync as cron starts it.
cron() { app=$1; shift; env -i HOME="$HOME" "$@" "$SYNC" --app "$app" >"$T_TMP/cron.out" 2>&1; }

# ================================================================= Astro
home astro astro
astro build >/dev/null 2>&1
check_eq "astro: the command invoked (astro build) is recorded" \
    "$(shown astro '[e["props"].get("command") for e in E if e["name"]=="command.started"]')" "['build']"
check_eq "astro: the Astro version is in every event" \
    "$(shown astro 'sorted({e["context"]["app_version"] for e in E})')" "['4.16.0']"
check_eq "astro: general machine information (CPUs, OS, CI environment) is in every event" \
    "$(shown astro 'all("cpus" in e["context"] and e["context"]["os"]=="linux" and "ci" in e["context"] for e in E)')" True
check_eq "astro: general configuration information (integrations, adapter, markdown options)" \
    "$(shown astro '[e["props"]["config"] for e in E if e["name"]=="config"]')" \
    "[{'markdownPlugins': [], 'adapter': '@astrojs/vercel', 'integrations': ['@astrojs/mdx', '@astrojs/rss'], 'markdown': {'syntaxHighlight': 'shiki'}}]"
astro fail >/dev/null 2>&1
cron astro
check_eq "astro: sanitized error information arrives, without the user's file path" \
    "$(arrived astro '[(e["props"]["error_class"], "Cannot read" in e["props"]["error"], H in json.dumps(e)) for e in E if e["name"]=="command.exited" and not e["props"]["success"]]')" \
    "[('ConfigNotFound', True, False)]"
if grep -q "$HOME" "$OUT"; then fail "astro: no file path reaches the collector" "found $HOME"; else ok "astro: no file path reaches the collector"; fi
check_eq "astro: what the cron tel-sync sent left the queue" "$(queued astro)" 0

before=$(queued astro)
DEBUG=vite:*,astro:telemetry astro dev >/dev/null 2>"$T_TMP/debug.err"
check_eq "astro: DEBUG=astro:telemetry: telemetry events are only logged to the console" \
    "$(grep -c 'debug, not stored: {.*"name":"command.started"' "$T_TMP/debug.err"):$(queued astro)" "1:$before"
check_eq "astro: tel status says DEBUG turned debug on" \
    "$(DEBUG=astro:telemetry tel status --app astro | sed -n 's/^debug: *//p' | cut -d';' -f1)" "on (decided by env: DEBUG"

astro telemetry disable >/dev/null 2>&1
mkdir -p "$HOME/other-project" && cd "$HOME/other-project" || exit 1
astro build >/dev/null 2>&1
check_eq "astro: astro telemetry disable disables telemetry across the entire machine" \
    "$(queued astro):$(decided astro)" "0:off (decided by config: telemetry.conf line 2)"
astro telemetry enable >/dev/null 2>&1
astro build >/dev/null 2>&1
check_eq "astro: astro telemetry enable re-enables it" "$(queued astro command.started):$(decided astro)" \
    "1:on (decided by config: telemetry.conf line 2)"

ASTRO_TELEMETRY_DISABLED=1 astro build >/dev/null 2>&1
check_eq "astro: ASTRO_TELEMETRY_DISABLED=1 disables all telemetry (and deletes what was queued)" \
    "$(queued astro)" 0
check_eq "astro: tel status names ASTRO_TELEMETRY_DISABLED as the decider" \
    "$(decided astro ASTRO_TELEMETRY_DISABLED=1)" "off (decided by env: ASTRO_TELEMETRY_DISABLED)"
astro build >/dev/null 2>&1
id=$(cookie astro)
cron astro ASTRO_TELEMETRY_DISABLED=1
check_eq "astro: a cron tel-sync with ASTRO_TELEMETRY_DISABLED=1 sends nothing and purges" \
    "$(arrived astro 'len(E)' "$id"):$(queued astro):$(cookie astro)" "0:0:"

# ============================================================ CloudQuery
home cq cloudquery
CI=true GITHUB_ACTIONS=true cloudquery fetch >/dev/null 2>&1
check_eq "cloudquery: which operation (fetch) was executed" \
    "$(shown cloudquery '[e["props"]["command"] for e in E if e["name"]=="command.started"]')" "['fetch']"
check_eq "cloudquery: how long the operation took and whether it succeeded" \
    "$(shown cloudquery '[(type(p["duration_ms"]).__name__, p["success"]) for p in (e["props"] for e in E if e["name"]=="command.exited")]')" \
    "[('int', True)]"
check_eq "cloudquery: whether you're running CloudQuery in a CI environment" \
    "$(shown cloudquery 'sorted({(e["context"]["ci"], e["context"].get("ci_vendor")) for e in E})')" \
    "[(True, 'github_actions')]"
check_eq "cloudquery: installed providers along with their versions" \
    "$(shown cloudquery '[(p["provider.aws"], p["provider.gcp"]) for p in (e["props"] for e in E if e["name"]=="installation")]')" \
    "[('v0.12.3', 'v0.9.1')]"
check_eq "cloudquery: version and build date of the binary" \
    "$(shown cloudquery '[(e["context"]["app_version"], e["props"]["build_date"]) for e in E if e["name"]=="installation"]')" \
    "[('0.32.1', '2022-07-21')]"
check_eq "cloudquery: basic trace data about which part of the operation took how long" \
    "$(shown cloudquery '[(p["name"], p.get("parent"), type(p["duration_ms"]).__name__) for p in (e["props"] for e in E if e["name"]=="span")]')" \
    "[('providers.load', 'operation', 'int'), ('resources.sync', 'operation', 'int'), ('operation', None, 'int')]"
cron cloudquery
check_eq "cloudquery: a unique user cookie, a random UUID, identifies the requests" \
    "$(arrived cloudquery 'sorted({e["anon"] for e in E})')" "['$(cookie cloudquery)']"
check_eq "cloudquery: no IP address, its hash or a location is stored" \
    "$(arrived cloudquery 'any(k for e in E for k in e if "ip" in k.lower() or "geo" in k.lower()) or "127.0.0.1" in open(sys.argv[1]).read()')" False
old=$(cookie cloudquery)
rm "$HOME/.local/state/cloudquery/telemetry-cookie"
cloudquery fetch >/dev/null 2>&1
new=$(cookie cloudquery)
check_eq "cloudquery: removing the cookie file before an invocation gives a new id" \
    "$([ -n "$new" ] && [ "$new" != "$old" ] && echo new):$(shown cloudquery 'sorted({e["anon"] for e in E})')" "new:['$new']"
rm "$HOME/.local/state/cloudquery/telemetry-cookie"
mkdir "$HOME/.local/state/cloudquery/telemetry-cookie"
cloudquery fetch >/dev/null 2>&1
cloudquery fetch >/dev/null 2>&1
check_eq "cloudquery: a directory with the cookie's name stops the cookie from being created" \
    "$(shown cloudquery 'len({e["anon"] for e in E})'):$([ -d "$HOME/.local/state/cloudquery/telemetry-cookie" ] && echo dir)" "3:dir"
rmdir "$HOME/.local/state/cloudquery/telemetry-cookie"
tel forget --app cloudquery

cloudquery fetch --region eu-zq8secret >/dev/null 2>&1
check_eq "cloudquery: no command arguments or options are stored" "$(tel show --app cloudquery | grep -c zq8secret)" 0
cloudquery fail >/dev/null 2>&1
check_eq "cloudquery: the contents of error messages are not stored" \
    "$(shown cloudquery '[("error" in e["props"], e["props"].get("error_class")) for e in E if e["name"]=="command.exited" and not e["props"]["success"]]')" \
    "[(False, 'CredentialsError')]"

before=$(queued cloudquery)
cloudquery --inspect-telemetry policy >/dev/null 2>&1
check_eq "cloudquery: --inspect-telemetry writes this run's telemetry to cq-telemetry.txt in the current directory" \
    "$($PY -c 'import json,sys; print([json.loads(l)["name"] for l in open(sys.argv[1])])' cq-telemetry.txt 2>&1)" \
    "['command.started', 'installation', 'span', 'span', 'span', 'command.exited']"
check_eq "cloudquery: --inspect-telemetry stops sending: nothing queued for that run" "$(queued cloudquery)" "$before"

cloudquery --no-telemetry drift >/dev/null 2>&1
check_eq "cloudquery: --no-telemetry: nothing for that run, other runs' events kept" \
    "$(queued cloudquery):$(queued cloudquery '"command":"drift"')" "$before:0"
check_eq "cloudquery: after a --no-telemetry run telemetry is still on" "$(decided cloudquery)" "on (decided by builtin)"

CQ_DEBUG_TELEMETRY=1 cloudquery fail >/dev/null 2>&1
cloudquery --debug-telemetry fail >/dev/null 2>&1
check_eq "cloudquery: --debug-telemetry and CQ_DEBUG_TELEMETRY send the contents of the error messages (sanitised)" \
    "$(shown cloudquery '[("failed to load credentials" in e["props"]["error"], H in e["props"]["error"]) for e in E if e["name"]=="command.exited" and "error" in e["props"]]')" \
    "[(True, False), (True, False)]"
check_eq "cloudquery: tel status says CQ_DEBUG_TELEMETRY asks for error contents" \
    "$(CQ_DEBUG_TELEMETRY=1 tel status --app cloudquery | sed -n 's/^errors: *//p')" \
    "sanitised messages are sent (decided by env: CQ_DEBUG_TELEMETRY)"
cron cloudquery
check_eq "cloudquery: the error contents arrive at the collector, sanitised" \
    "$(arrived cloudquery 'sum(1 for e in E if "error" in e["props"] and H not in e["props"]["error"])')" 2

cloudquery fetch >/dev/null 2>&1
id=$(cookie cloudquery)
n=$(arrived cloudquery 'len(E)')
cron cloudquery CQ_NO_TELEMETRY=1
check_eq "cloudquery: CQ_NO_TELEMETRY set for a cron tel-sync: nothing sent, queue purged" \
    "$(arrived cloudquery 'len(E)' "$id"):$(queued cloudquery)" "$n:0"
CQ_NO_TELEMETRY=1 cloudquery fetch >/dev/null 2>&1
check_eq "cloudquery: CQ_NO_TELEMETRY opts out; tel status names it" \
    "$(queued cloudquery):$(decided cloudquery CQ_NO_TELEMETRY=)" "0:off (decided by env: CQ_NO_TELEMETRY)"

# ================================================================== werf
home werf werf
git init -q . && git remote add origin https://github.com/example-org/example-app.git
werf converge >/dev/null 2>&1
check_eq "werf: telemetry is off until it is enabled: nothing recorded, no state created" \
    "$(queued werf):$([ -e "$HOME/.local/state/werf" ] && echo state)" "0:"
WERF_TELEMETRY=1 WERF_ENV=production werf --repo registry.zq8secret.example converge >/dev/null 2>&1
check_eq "werf: WERF_TELEMETRY=1 turns it on: CommandStarted and CommandExited" \
    "$(shown werf '[e["name"] for e in E if e["name"] in ("command.started", "command.exited")]')" "['command.started', 'command.exited']"
check_eq "werf: ts and one executionID (a UUID) for the command's events" \
    "$(shown werf 'len({e["exec"] for e in E}) == 1 and all(len(e["exec"]) == 36 and e["ts"] > 0 for e in E)')" True
check_eq "werf: projectID, the SHA-256 checksum of the git origin URL" \
    "$(shown werf '{e["context"].get("project") for e in E}')" \
    "{'$(printf '%s' github.com/example-org/example-app | sha256sum | cut -d' ' -f1)'}"
check_eq "werf: command: the name of the werf command" \
    "$(shown werf '[e["props"]["command"] for e in E if e["name"]=="command.started"]')" "['werf converge']"
check_eq "werf: attributes: os, arch, werf version, ci, ciName, trdl group-channel" \
    "$(shown werf '[(c["os"], bool(c["arch"]), c["app_version"], c["ci"], p["trdl_group_channel"]) for c, p in ((e["context"], e["props"]) for e in E if e["name"]=="attributes")]')" \
    "[('linux', True, 'dev', False, '2 stable')]"
check_eq "werf: eventData: the names of the options used, as CLI or as env, never their values" \
    "$(shown werf '[(p.get("options"), p.get("env_options")) for p in (e["props"] for e in E if e["name"]=="command.started")]'):$(tel show --app werf | grep -c -e zq8secret -e production)" \
    "[('repo', 'env')]:0"
check_eq "werf: eventData: commandOptions with name, asCli, asEnv and count" \
    "$(shown werf '[e["props"]["commandOptions"] for e in E if e["name"]=="command.options"]')" \
    "[[{'name': 'repo', 'asCli': True, 'asEnv': False, 'count': 1}, {'name': 'env', 'asCli': False, 'asEnv': True, 'count': 1}]]"
check_eq "werf: eventData: exit code and command running time" \
    "$(shown werf '[(p["exit_code"], type(p["duration_ms"]).__name__) for p in (e["props"] for e in E if e["name"]=="command.exited")]')" "[(0, 'int')]"
check_eq "werf: tel status without WERF_TELEMETRY: off by werf's default, not an opt-out" \
    "$(decided werf)" "off (decided by host: default off)"
cron werf
check_eq "werf: a cron tel-sync without WERF_TELEMETRY keeps the events, sends nothing" \
    "$(queued werf):$(arrived werf 'len(E)')" "4:0"
cron werf WERF_TELEMETRY=1
check_eq "werf: a cron tel-sync with WERF_TELEMETRY=1 sends them" "$(queued werf):$(arrived werf 'len(E)')" "0:4"

LOG="$T_TMP/werf-telemetry.log"
WERF_TELEMETRY=1 WERF_TELEMETRY_LOG_FILE="$LOG" werf build >/dev/null 2>&1
check_eq "werf: WERF_TELEMETRY_LOG_FILE: the telemetry data is written to the log file" \
    "$(grep -c '^recorded: {' "$LOG")" 4
cron werf WERF_TELEMETRY=1 WERF_TELEMETRY_LOG_FILE="$LOG"
check_eq "werf: WERF_TELEMETRY_LOG_FILE: the cron tel-sync logs what it sent there too" \
    "$(grep -c '^sent: {' "$LOG")" 4
check_eq "werf: tel status names the log file's variable, never the path" \
    "$(WERF_TELEMETRY_LOG_FILE="$LOG" tel status --app werf | grep -c "$LOG"):$(WERF_TELEMETRY_LOG_FILE="$LOG" tel status --app werf | sed -n 's/^audit log: *//p')" \
    "0:on (the file named by env WERF_TELEMETRY_LOG_FILE)"

WERF_TELEMETRY=1 werf build >/dev/null 2>&1
WERF_TELEMETRY=0 werf build >/dev/null 2>&1
check_eq "werf: WERF_TELEMETRY=0 disables telemetry (and deletes what was queued)" "$(queued werf)" 0
check_eq "werf: tel status names WERF_TELEMETRY" "$(decided werf WERF_TELEMETRY=0)" "off (decided by env: WERF_TELEMETRY)"

# ================================================================= Atmos
home atmos atmos
rm "$HOME/.config/atmos/telemetry.conf"
cat >atmos.yaml <<EOF
settings:
  telemetry:
    enabled: true
    endpoint: "$URL"
    token: "\${TELEMETRY_TOKEN}"
    logging: false
EOF
TELEMETRY_TOKEN=zq8-org-token atmos terraform plan vpc-zq8secret -s prod-zq8secret >/dev/null 2>"$T_TMP/atmos.err"
check_eq "atmos: the Atmos command that was run (terraform plan)" \
    "$(shown atmos '[e["props"]["command"] for e in E if e["name"]=="command.started"]')" "['terraform plan']"
check_eq "atmos: whether the command succeeded or failed" \
    "$(shown atmos '[e["props"]["success"] for e in E if e["name"]=="command.exited"]')" "[True]"
check_eq "atmos: Atmos version, OS, and architecture" \
    "$(shown atmos 'sorted({(e["context"]["app_version"], e["context"]["os"], bool(e["context"]["arch"])) for e in E})')" \
    "[('1.160.0', 'linux', True)]"
check_eq "atmos: an anonymous, randomly generated machine identifier" \
    "$(shown atmos 'sorted({e["anon"] for e in E})')" "['$(cookie atmos)']"
check_eq "atmos: never component names, stack names or token values" \
    "$(tel show --app atmos | grep -c -e zq8secret -e zq8-org-token)" 0
check_eq "atmos: logging defaults to false: the telemetry client runs silently" "$(grep -c telemetry "$T_TMP/atmos.err")" 0
check_eq "atmos: settings.telemetry.endpoint routes to your own collector (tel status)" \
    "$(tel status --app atmos | sed -n 's/^endpoint: *//p')" "$URL (host), token set"
kill $TC_PID 2>/dev/null
wait $TC_PID 2>/dev/null
tel-collect -q --port 0 --port-file "$T_TMP/tc2.port" --out "$OUT" --token zq8-org-token 2>>"$T_TMP/tc.err" &
TC_PID=$!
URL2="http://127.0.0.1:$(wait_port "$T_TMP/tc2.port")/v1/batch"
sed -i "s|$URL|$URL2|" atmos.yaml
TELEMETRY_TOKEN=zq8-org-token atmos list components >/dev/null 2>&1
cron atmos
check_eq "atmos: settings.telemetry.endpoint and token: a cron tel-sync delivers with the token" \
    "$(queued atmos):$(arrived atmos 'len(E)')" "0:4"
if grep -q zq8-org-token "$OUT"; then fail "atmos: the token is never stored by the collector" "found"
else ok "atmos: the token is never stored by the collector"; fi
URL=$URL2

sed -i "s|$URL|http://127.0.0.1:9/v1/batch|" atmos.yaml
TELEMETRY_TOKEN=zq8-org-token atmos list components >/dev/null 2>&1
check_eq "atmos: an unreachable endpoint never fails the command; the events wait (tel keeps them)" \
    "$?:$(queued atmos command.started)" "0:1"
check_eq "atmos: ATMOS_TELEMETRY_ENDPOINT takes precedence over atmos.yaml (tel status)" \
    "$(ATMOS_TELEMETRY_ENDPOINT="$URL" tel status --app atmos | sed -n 's/^endpoint: *//p')" "$URL (env), token set"
cron atmos ATMOS_TELEMETRY_ENDPOINT="$URL"
check_eq "atmos: ATMOS_TELEMETRY_ENDPOINT for a cron tel-sync routes there" "$(queued atmos)" 0

sed -i 's/logging: false/logging: true/' atmos.yaml
atmos list components >/dev/null 2>"$T_TMP/atmos.err"
check_eq "atmos: settings.telemetry.logging: true logs every event through Atmos' logger" \
    "$(grep -c '^INFO  telemetry recorded: {' "$T_TMP/atmos.err")" 2
sed -i 's/logging: true/logging: false/' atmos.yaml
ATMOS_TELEMETRY_LOGGING=true atmos list components >/dev/null 2>"$T_TMP/atmos.err"
check_eq "atmos: ATMOS_TELEMETRY_LOGGING=true enables it over atmos.yaml" \
    "$(grep -c '^INFO  telemetry recorded: {' "$T_TMP/atmos.err")" 2

before=$(queued atmos)
sed -i 's/enabled: true/enabled: false/' atmos.yaml
ATMOS_TELEMETRY_ENABLED=true atmos terraform plan vpc -s prod >/dev/null 2>&1
check_eq "atmos: enabled: false in atmos.yaml: no telemetry for the project, regardless of any other setting" \
    "$(queued atmos)" "$before"
check_eq "atmos: enabled: false is the project's setting: the user's other events and id stay" \
    "$(queued atmos):$([ -n "$(cookie atmos)" ] && echo id)" "$before:id"
sed -i 's/enabled: false/enabled: true/' atmos.yaml
ATMOS_TELEMETRY_ENABLED=false atmos list components >/dev/null 2>&1
check_eq "atmos: ATMOS_TELEMETRY_ENABLED=false disables telemetry (and deletes what was queued)" "$(queued atmos)" 0
check_eq "atmos: tel status names ATMOS_TELEMETRY_ENABLED" \
    "$(decided atmos ATMOS_TELEMETRY_ENABLED=false)" "off (decided by env: ATMOS_TELEMETRY_ENABLED)"
atmos list components >/dev/null 2>&1
id=$(cookie atmos)
cron atmos ATMOS_TELEMETRY_ENABLED=false ATMOS_TELEMETRY_ENDPOINT="$URL"
check_eq "atmos: ATMOS_TELEMETRY_ENABLED=false in CI (a tel-sync run that way): nothing sent, purged" \
    "$(arrived atmos 'len(E)' "$id"):$(queued atmos)" "0:0"

# ============================================================= Cozystack
# The operator and the controller are daemons in pods: no HOME, the state
# directory the component was given, an identity derived from the
# cluster's UID.  "As in the pod" means env -i with PATH and that
# directory's variable, which is also how a cron-style tel-sync finds it.
COZY="$TEL_BUILD/bin/cozystack"
CLUSTER=5b8f2a9e-3c1d-4e7f-9a0b-1c2d3e4f5a6b
# pod COMPONENT STATE CMD...: CMD run as in the component's pod.
pod() {
    _c=$1 _s=$2; shift 2
    env -i PATH="$PATH" TEL_SYNC_PATH=/bin/true "COZYSTACK_$(echo "$_c" | tr a-z A-Z)_TELEMETRY_STATE_DIR=$_s" "$@"
}
cozy() { _c=$1 _s=$2; shift 2; pod "$_c" "$_s" "$COZY" --component "$_c" --state-dir "$_s" --cluster-uid "$CLUSTER" "$@"; }
pod_queued() { pod "$1" "$2" tel show --app "cozystack-$1" | wc -l; }
pod_sync() { pod "$1" "$2" "$SYNC" --app "cozystack-$1" >"$T_TMP/cron.out" 2>&1; }
# got COMPONENT EXPR: a Python expression over E, what tel-collect stored
# of the component.
got() {
    $PY -c 'import json,sys
E=[e for e in map(json.loads, open(sys.argv[1])) if e["context"]["app"] == "cozystack-" + sys.argv[2]]
print(eval(sys.argv[3]))' "$TC_OUT" "$1" "$2" 2>&1
}
# The components' own collector: the one above now asks for Atmos' token.
ATMOS_TC=$TC_PID
tc_start cozystack

P1="$T_TMP/pod-operator" P2="$T_TMP/pod-controller" P3="$T_TMP/pod-operator-restarted"
printf 'data:\n  telemetry-enabled: "true"\n' >"$T_TMP/cm.yaml"
# Started without a shell function between, so that $! is the daemon
# itself, whose children are watched.
env -i PATH="$PATH" TEL_SYNC_PATH=/bin/true COZYSTACK_OPERATOR_TELEMETRY_STATE_DIR="$P1" "$COZY" --component operator --state-dir "$P1" --cluster-uid "$CLUSTER" \
    --config-map "$T_TMP/cm.yaml" --interval 1 --iterations 3 --endpoint "$TC_URL" &
dpid=$!
maxz=0 i=0
while kill -0 $dpid 2>/dev/null && [ $i -lt 300 ]; do
    z=$(ps --ppid $dpid -o stat= 2>/dev/null | grep -c '^Z')
    [ "$z" -gt "$maxz" ] && maxz=$z
    sleep 0.1; i=$((i + 1))
done
wait $dpid
rc=$?
cozy controller "$P2" --iterations 1 --endpoint "$TC_URL"
check_eq "cozystack: telemetry is collected by two components, cozystack-operator and cozystack-controller (a queue each)" \
    "$rc:$(pod_queued operator "$P1"):$(pod_queued controller "$P2")" "0:33:5"
check_eq "cozystack: components periodically gather usage statistics, leaving no zombie between rounds" \
    "$([ "$maxz" -le 1 ] && echo yes)" yes
pod operator "$P1" tel status --app cozystack-operator >"$T_TMP/cozy.status"
check "cozystack: tel status, run in the pod, finds the component's queue and says telemetry is on" \
    grep -q '^telemetry: *on' "$T_TMP/cozy.status"
pod_sync operator "$P1" && pod_sync controller "$P2"
check_eq "cozystack: ... and transmit them (a cron-style tel-sync in the pod empties both queues)" \
    "$(pod_queued operator "$P1"):$(pod_queued controller "$P2")" "0:0"
check_eq "cozystack-operator collects cluster-level metrics (nodes, storage, packages)" \
    "$(got operator 'sorted(set(e["props"]["name"] for e in E))')" \
    "['cozy_cluster_capacity', 'cozy_cluster_info', 'cozy_loadbalancers_count', 'cozy_nodes_count', 'cozy_package_info', 'cozy_pvs_count']"
check_eq "cozystack: every sample of the operator's three rounds arrives, with its labels" \
    "$(got operator 'len(E)'):$(got operator 'sorted(set(e["props"].get("label.resource", "") for e in E))')" \
    "33:['', 'cpu', 'memory', 'nvidia.com/TU104GL_TESLA_T4']"
check_eq "cozystack-controller collects application-level metrics (deployed application instances)" \
    "$(got controller 'sorted((e["props"]["label.kind"], e["props"]["value"]) for e in E)')" \
    "[('Kubernetes', 2), ('Postgres', 5), ('Redis', 3), ('Tenant', 2), ('VirtualMachine', 0)]"
cozy operator "$P3" --iterations 1 --endpoint "$TC_URL"
pod_sync operator "$P3"
check_eq "cozystack: data is anonymized: a restarted pod keeps the operator's one identity" \
    "$(got operator 'len(set(e["anon"] for e in E))')" 1
check_eq "cozystack: ... and the controller of the same cluster has another" \
    "$(got operator 'E[0]["anon"]' | grep -c "$(got controller 'E[0]["anon"]')")" 0
check_eq "cozystack: the cluster's UID is stored and sent nowhere, and the pod holds no cookie file" \
    "$(cat "$TC_OUT" "$OUT" | grep -c "$CLUSTER"):$(ls "$P1" "$P3" | grep -c cookie)" "0:0"

# kubectl patch ... '{"data":{"telemetry-enabled": "false"}}' while the
# operator runs; nothing leaves this one on its own (TEL_SYNC_PATH).
P4="$T_TMP/pod-operator-patched"
env -i PATH="$PATH" TEL_SYNC_PATH=/bin/true COZYSTACK_OPERATOR_TELEMETRY_STATE_DIR="$P4" "$COZY" --component operator --state-dir "$P4" --cluster-uid "$CLUSTER" \
    --config-map "$T_TMP/cm.yaml" --interval 1 --iterations 60 --endpoint "$TC_URL" &
dpid=$!
wait_until() { i=0; while ! eval "$1" && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done; }
wait_until '[ "$(pod_queued operator "$P4")" -ge 11 ]'
sent_before=$(got operator 'len(E)')
printf 'data:\n  telemetry-enabled: "false"\n' >"$T_TMP/cm.yaml"
wait_until '[ "$(pod_queued operator "$P4")" -eq 0 ]'
sleep 2.5
check_eq "cozystack: telemetry-enabled: \"false\" disables telemetry reporting: the queue is purged, nothing more recorded" \
    "$(pod_queued operator "$P4")" 0
pod_sync operator "$P4"
check_eq "cozystack: ... and a cron-style tel-sync in the pod sends nothing" "$(got operator 'len(E)')" "$sent_before"
printf 'data:\n  telemetry-enabled: "true"\n' >"$T_TMP/cm.yaml"
wait_until '[ "$(pod_queued operator "$P4")" -ge 11 ]'
check_eq "cozystack: setting telemetry-enabled back to true re-enables it" \
    "$([ "$(pod_queued operator "$P4")" -ge 11 ] && echo yes)" yes
kill -TERM $dpid 2>/dev/null
wait $dpid
check_eq "cozystack: the operator stops cleanly on SIGTERM" "$?" 0

tc_stop
kill $ATMOS_TC 2>/dev/null
t_done
