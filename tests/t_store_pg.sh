#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/t_store_pg.sh - the store tests of tests/unit/test_store.c again,
# on a real PostgreSQL started for the purpose (tests/pg.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg.sh"

if ! pg_start -c fsync=off; then
    fail postgresql_starts "$PG_WHY"
    t_done
fi
TEL_TEST_PG_URL="$PG_URL" "$TEL_BUILD/tests/test_store" | sed 's/^\(ok\|FAIL\|skip\) /\1 postgresql /'
# The run ended by marking the schema as version 99: a second one must be
# refused at open with that reason, and not touch the database.
TEL_TEST_PG_URL="$PG_URL" "$TEL_BUILD/tests/test_store" >"$T_TMP/second" 2>&1
check_eq newer_schema_refused_at_open "$(grep -c '^# .*schema version 99' "$T_TMP/second")" 1
check_eq newer_schema_left_alone "$(pg_sql 'SELECT version FROM schema_version')" 99
t_done
