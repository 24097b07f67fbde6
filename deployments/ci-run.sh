#!/usr/bin/env bash
# CI step: migrate SOURCE into TARGET through the migrate-database deployment and fail the job if it fails.
# usage: deployments/ci-run.sh sqlite:////path/app.db block:app-db ['{"max_rejects": 0}']
# TARGET is best a Secret block holding the URL (block:NAME): a URL given here is stored by the Prefect API.
set -euo pipefail
source_url=$1 target_url=$2 options=${3:-'{}'}
exec prefect deployment run migrate-database/migrate-database \
  --params "{\"source\": \"${source_url}\", \"target\": \"${target_url}\", \"options\": ${options}}" \
  --watch --watch-timeout "${GOLIVE_WATCH_TIMEOUT:-3600}"
