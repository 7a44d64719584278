#!/usr/bin/env bash
# Starts dockerd for the interop tests unless one already answers, and
# prints the pid it started (empty if it started nothing). `stop PID` stops it.
set -euo pipefail
case "${1:-start}" in
  start)
    if docker info >/dev/null 2>&1; then exit 0; fi
    log=${RBUILD_DOCKERD_LOG:-/tmp/rbuild-dockerd.log}
    setsid dockerd --host unix:///var/run/docker.sock >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then echo "$pid"; exit 0; fi
      sleep 0.5
    done
    echo "dockerd did not start; see $log" >&2
    tail -20 "$log" >&2 || true
    exit 1
    ;;
  stop)
    pid=${2:-}
    [ -n "$pid" ] || exit 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
esac
