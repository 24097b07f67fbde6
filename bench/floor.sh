#!/bin/bash
# Vendored copy of the team's shared bench kit (../shared/bench/floor.sh): our own code, same MIT licence as golive.
# migrate_bench.py prefers the shared copy when present; keep the two identical below this header.
# The floor for a SQLite -> PostgreSQL copy: the C sqlite3 CLI piped into psql COPY, two tables at a
# time, into the same schema as a finished copy (its pre-data), then that copy's constraints and indexes
# (its post-data). Whatever tool made TEMPLATE, this is the time that plain C tools need for the same end state.
# usage: floor.sh SQLITE_DB TEMPLATE_PG_URL EMPTY_TARGET_PG_URL
# needs: sqlite3, psql, pg_dump (Debian: sqlite3, postgresql-client)
set -euo pipefail
src=$1 tmpl=$2 dst=$3
pg_dump --section=pre-data "$tmpl" | psql -q "$dst" >/dev/null
tables=$(psql -Atq "$tmpl" -c "select quote_ident(table_schema)||'.'||quote_ident(table_name)||' '||table_name from information_schema.tables where table_type='BASE TABLE' and table_schema not in ('pg_catalog','information_schema')")
SECONDS=0
while read -r qualified name; do
  printf '%s\t%s\n' "$qualified" "$name"
done <<<"$tables" | xargs -P2 -d '\n' -I{} bash -c '
  IFS=$'"'"'\t'"'"' read -r q n <<<"{}"
  sqlite3 -csv "'"$src"'" "select * from \"$n\"" | psql -q "'"$dst"'" -c "\\copy $q from stdin csv"'
t_copy=$SECONDS
pg_dump --section=post-data "$tmpl" | psql -q "$dst" >/dev/null
echo "floor: copy ${t_copy}s, total ${SECONDS}s"
