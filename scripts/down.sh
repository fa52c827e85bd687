#!/usr/bin/env bash
# Stops the four services scripts/up.sh started (by their pid files). NATS, Redis and dockerd
# are left running; they are shared with the test suite.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

for name in prober gateway executor scheduler; do
  pid_file="$STATE_DIR/$name.pid"
  [ -s "$pid_file" ] || continue
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$pid_file"
done
