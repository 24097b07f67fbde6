#!/usr/bin/env bash
# Self-hosted Prefect for golive without Docker: a Prefect server, golive's work pool and deployments, and a
# process worker, all in the background on this machine (what docker-compose.yml does with containers).
#
#   deployments/selfhost.sh start     # server + work pool + `prefect deploy --all` + worker; prints the URLs
#   deployments/selfhost.sh status    # what runs
#   deployments/selfhost.sh stop      # worker, then server (SIGTERM, then SIGKILL after GOLIVE_STOP_WAIT s)
#
# Settings (environment): GOLIVE_PREFECT_HOST (127.0.0.1), GOLIVE_PREFECT_PORT (4200), PREFECT_HOME
# (~/.prefect: the server's database lives there), GOLIVE_POOL (golive-process), GOLIVE_WORKER_LIMIT (4 flow
# runs at a time), GOLIVE_STOP_WAIT (30: a worker waits for its runs before it exits on SIGTERM), PREFECT
# (the prefect command; default: the one next to golive's python, else on PATH), GOLIVE_SELFHOST_DIR
# (pids and logs; default $PREFECT_HOME/golive-selfhost). Run from anywhere: deployments are registered
# from the repository root, which is where the worker runs the flows.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
host=${GOLIVE_PREFECT_HOST:-127.0.0.1}
port=${GOLIVE_PREFECT_PORT:-4200}
export PREFECT_HOME=${PREFECT_HOME:-$HOME/.prefect}
dir=${GOLIVE_SELFHOST_DIR:-$PREFECT_HOME/golive-selfhost}
pool=${GOLIVE_POOL:-golive-process}
limit=${GOLIVE_WORKER_LIMIT:-4}
stop_wait=${GOLIVE_STOP_WAIT:-30}
if [ -z "${PREFECT:-}" ]; then
  if [ -x "$root/.venv/bin/prefect" ]; then PREFECT=$root/.venv/bin/prefect; else PREFECT=prefect; fi
fi
python=$(dirname "$(command -v "$PREFECT")")/python
[ -x "$python" ] || python=python3
api="http://$host:$port/api"
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_CLI_PROMPT=false

say() { echo "selfhost: $*"; }
running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
healthy() { "$python" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1] + '/health', timeout=2)" "$api" \
              >/dev/null 2>&1; }

spawn() {  # spawn NAME CMD...: CMD in a session of its own, in the background, logging to $dir/NAME.log;
           # its pid (= its process group) in $dir/NAME.pid
  local name=$1; shift
  rm -f "$dir/$name.pid"
  setsid bash -c 'echo $$ >"$0.pid"; exec "$@" >"$0.log" 2>&1 </dev/null' "$dir/$name" "$@" \
    >/dev/null 2>&1 </dev/null &
  for _ in $(seq 1 50); do [ -s "$dir/$name.pid" ] && return 0; sleep 0.1; done
  say "$name did not start"; exit 1
}

stop_one() {  # stop_one NAME: SIGTERM its process group, SIGKILL after $stop_wait s
  running "$1" || { rm -f "$dir/$1.pid"; return 0; }
  local pid; pid=$(cat "$dir/$1.pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 $((stop_wait * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$dir/$1.pid"
  say "$1 stopped (pid $pid)"
}

start() {
  mkdir -p "$dir"
  if running server; then
    say "server already running (pid $(cat "$dir/server.pid"))"
  else
    PREFECT_UI_API_URL=${PREFECT_UI_API_URL:-$api} spawn server "$PREFECT" server start --host "$host" --port "$port"
    for _ in $(seq 1 900); do
      healthy && break
      running server || { say "server exited; see $dir/server.log"; tail -20 "$dir/server.log"; exit 1; }
      sleep 0.2
    done
    healthy || { say "server did not answer within 180 s; see $dir/server.log"; stop_one server; exit 1; }
    say "server up at http://$host:$port (pid $(cat "$dir/server.pid"))"
  fi
  export PREFECT_API_URL=$api
  "$PREFECT" work-pool inspect "$pool" >/dev/null 2>&1 || "$PREFECT" work-pool create "$pool" --type process >/dev/null
  (cd "$root" && "$PREFECT" --no-prompt deploy --all >"$dir/deploy.log" 2>&1) \
    || { say "prefect deploy --all failed; see $dir/deploy.log"; tail -20 "$dir/deploy.log"; exit 1; }
  say "deployments registered: $(grep -c '^  - name:' "$root/prefect.yaml") from prefect.yaml"
  if running worker; then
    say "worker already running (pid $(cat "$dir/worker.pid"))"
  else
    (cd "$root" && spawn worker "$PREFECT" worker start --pool "$pool" --limit "$limit")
    say "worker started on pool $pool (pid $(cat "$dir/worker.pid"), log $dir/worker.log)"
  fi
  echo "PREFECT_API_URL=$api"
  echo "UI: http://$host:$port"
}

status() {
  local rc=0
  for name in server worker; do
    if running "$name"; then say "$name running (pid $(cat "$dir/$name.pid"))"; else say "$name not running"; rc=1; fi
  done
  if healthy; then say "API $api answers"; else say "API $api does not answer"; rc=1; fi
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop_one worker; stop_one server ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
