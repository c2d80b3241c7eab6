# SPDX-License-Identifier: MIT
# tests/pg.sh - a private PostgreSQL for a test, sourced after tests/lib.sh.
#
#   pg_start [postgres -c options...]   initdb + pg_ctl start in a new
#                                       temporary directory, on a free
#                                       loopback port; sets PG_URL (database
#                                       "tel", user "tel", no password) and
#                                       PG_PORT.  Returns 1 (with PG_WHY)
#                                       when PostgreSQL is not installed or
#                                       does not start.
#   pg_stop                             stops it and removes its directory;
#                                       also run on exit, however the test
#                                       ends (SIGTERM from tests/run.sh's
#                                       timeout included).
#   pg_sql SQL                          runs SQL in database tel, prints
#                                       unaligned rows ("a|b").
#   pg_createdb NAME                    one more database; prints its URL.
#   pg_kill / pg_restart                stop it hard (the server vanishes
#                                       under its clients) / start it again
#                                       on the same port and data.
#
# PostgreSQL refuses to run as root, so as root its programs run as the
# user nobody, in a directory outside the test's own temporary directory
# (which only root may enter).
PG_DIR=""
PG_URL=""
PG_PORT=""
PG_WHY=""
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

pg_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

pg_start() {
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        PG_WHY="PostgreSQL is not installed (scripts/deps.sh test)"
        return 1
    fi
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tel-pg.XXXXXX") || return 1
    [ "$(id -u)" = 0 ] && chown nobody "$PG_DIR"
    PG_PORT=$(free_port)
    PG_OPTS="-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR -c max_connections=60 $*"
    if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -E UTF8 --locale=C -A trust -U tel >"$PG_DIR/initdb.log" 2>&1; then
        PG_WHY="initdb failed: $(tail -n 1 "$PG_DIR/initdb.log")"
        return 1
    fi
    if ! pg_restart; then
        PG_WHY="pg_ctl start failed: $(tail -n 1 "$PG_DIR/server.log")"
        return 1
    fi
    pg_as "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U tel tel >/dev/null 2>&1 || {
        PG_WHY="createdb failed"
        return 1
    }
    PG_URL="postgresql://tel@127.0.0.1:$PG_PORT/tel"
}

pg_restart() {
    # shellcheck disable=SC2086
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 -o "$PG_OPTS" start >/dev/null 2>&1
}

pg_kill() {
    [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] &&
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    pg_kill
    rm -rf "$PG_DIR"
    PG_DIR=""
}

pg_sql() {
    pg_as "$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U tel -d tel -c "$1"
}

pg_createdb() {
    pg_as "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U tel "$1" >/dev/null 2>&1 &&
        echo "postgresql://tel@127.0.0.1:$PG_PORT/$1"
}

trap 'pg_stop; t_cleanup' EXIT
trap 'exit 143' TERM INT HUP
