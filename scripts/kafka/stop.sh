#!/usr/bin/env bash
# Stops the broker start.sh started (by its pid file): SIGTERM, then SIGKILL after 20 s.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pidfile="$root/.cache/kafka/kafka.pid"
[[ -f "$pidfile" ]] || { echo "stop.sh: no broker running" >&2; exit 0; }
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop.sh: broker $pid still running after 20 s; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
  fi
fi
rm -f "$pidfile" "$root/.cache/kafka/kafka.port"
echo "stop.sh: broker stopped" >&2
