#!/usr/bin/env bash
# CI step: migrate SOURCE into TARGET through the migrate-database deployment and fail the job if it fails.
# usage: deployments/ci-run.sh sqlite:////path/app.db postgresql://app@db/app ['{"max_rejects": 0}']
# Keep passwords out of the URL: give the worker PGPASSWORD (or ~/.pgpass).
set -euo pipefail
source_url=$1 target_url=$2 options=${3:-'{}'}
exec prefect deployment run migrate-database/migrate-database \
  --params "{\"source\": \"${source_url}\", \"target\": \"${target_url}\", \"options\": ${options}}" \
  --watch --watch-timeout "${GOLIVE_WATCH_TIMEOUT:-3600}"
