#!/usr/bin/env bash
# CI step: migrate SOURCE into TARGET through the migrate-database deployment and fail the job if it fails.
# usage: deployments/ci-run.sh sqlite:////path/app.db postgresql://app@db/app [options-json]
set -euo pipefail
source_url=$1 target_url=$2 options=${3:-'{}'}
exec prefect deployment run migrate-database/migrate-database \
  --param "source=${source_url}" --param "target=${target_url}" \
  --params "{\"options\": ${options}}" --watch --watch-timeout "${GOLIVE_WATCH_TIMEOUT:-3600}"
