#!/usr/bin/env bash
# Create golive's work pool and register its deployments (run from anywhere; needs PREFECT_API_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
prefect work-pool inspect golive-process >/dev/null 2>&1 || prefect work-pool create golive-process --type process
prefect --no-prompt deploy --all
echo "Now start a worker where source and target are reachable: prefect worker start --pool golive-process"
