#!/bin/bash
# The floor for a PostgreSQL -> MySQL/MariaDB copy: psql COPY TO STDOUT (CSV) piped into the C mariadb client's
# LOAD DATA LOCAL INFILE, two tables at a time, into the same schema as a finished copy (TEMPLATE, e.g. the database
# golive just filled: its tables with their keys, as appdb_mysql.sh loads), foreign_key_checks and unique_checks off.
# Values are read as PostgreSQL prints them (booleans as t/f are cast to integers, timestamps to UTC text): what
# plain C tools need for the bench app database; no rejects, no checks.
# usage: floor_pg_mysql.sh PG_URL TEMPLATE_MYSQL_DB EMPTY_TARGET_MYSQL_DB [mariadb client args...]
set -euo pipefail
pg=$1 tmpl=$2 dst=$3; shift 3
my=(mariadb --local-infile=1 "$@"); [[ $# -eq 0 ]] && my=(mariadb --local-infile=1 -h127.0.0.1 -uroot)
mariadb-dump --no-data --skip-add-drop-table "${my[@]:2}" "$tmpl" | "${my[@]}" "$dst"
"${my[@]}" "$dst" -e "DROP TABLE IF EXISTS _golive_runs, _golive_chunks, _golive_source_orphans"
tables=$(psql -Atq "$pg" -c "select table_name from information_schema.tables where table_type='BASE TABLE' and table_schema='public'")
SECONDS=0
export pg dst
export MYCMD="${my[*]}"
printf '%s\n' $tables | xargs -P2 -I{} bash -c '
  cols=$(psql -Atq "$pg" -c "select string_agg(case when data_type = '"'"'boolean'"'"' then format('"'"'%I::int'"'"', column_name)
      when data_type = '"'"'timestamp with time zone'"'"' then format('"'"'(%I at time zone '"'"''"'"'UTC'"'"''"'"')'"'"', column_name)
      else format('"'"'%I'"'"', column_name) end, '"'"', '"'"' order by ordinal_position)
      from information_schema.columns where table_schema = '"'"'public'"'"' and table_name = '"'"'{}'"'"'")
  psql -q "$pg" -c "\\copy (select $cols from \"{}\") to stdout with (format csv, null '"'"'\\N'"'"')" |
    $MYCMD "$dst" -e "set foreign_key_checks=0, unique_checks=0; load data local infile '"'"'/dev/stdin'"'"' into table \`{}\`
      character set utf8mb4 fields terminated by '"'"','"'"' optionally enclosed by '"'"'\"'"'"' escaped by '"'"'\\\\'"'"'
      lines terminated by '"'"'\n'"'"'"'
echo "floor: copy ${SECONDS}s, total ${SECONDS}s"
