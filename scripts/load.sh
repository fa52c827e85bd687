#!/usr/bin/env bash
# The load tool (tools/load) against the local stack that scripts/up.sh started: builds
# coderun-load (release) and runs it as the local tenant. For `soak`, it also watches the
# four services' memory (their /metrics), the stack's Redis keys and its sandbox containers.
#
#   scripts/load.sh open --rate 20 --duration 60s      runs arriving at 20 per second
#   scripts/load.sh closed --concurrency 8             8 clients, each waiting for its answer
#   scripts/load.sh step                               the saturation, then 70 % of it for 60 s
#   scripts/load.sh soak --duration 30m                70 % of the saturation for 30 minutes
#   scripts/load.sh --mix python:ok=3,c:compile_error=1 step --levels 1,2,4,8
#
# Options before the mode apply to every mode (coderun-load --help): --mix, --lost-after,
# --json, --check (exit 1 when a run was lost, duplicated, refused or answered wrongly, or a
# soak check failed).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

[ -s "$STATE_DIR/api-key" ] || die "no local stack: start it with scripts/up.sh"
log "building the load tool (release)"
(cd "$ROOT_DIR" && cargo build --release --locked -q -p coderun-load)

gateway="http://127.0.0.1:${CODERUN_GATEWAY_PORT:-8080}"
# The soak's watch, inserted right after the mode's name.
watch=(--metrics "gateway=$gateway/metrics" --metrics "scheduler=http://127.0.0.1:9101/metrics"
  --metrics "executor=http://127.0.0.1:9102/metrics" --metrics "prober=http://127.0.0.1:9103/metrics"
  --redis-url "redis://127.0.0.1:$REDIS_PORT" --docker)
arguments=()
for argument in "$@"; do
  arguments+=("$argument")
  if [ "$argument" = soak ]; then
    arguments+=("${watch[@]}")
  fi
done
CODERUN_API_KEY="$(cat "$STATE_DIR/api-key")" exec "$CARGO_TARGET_DIR/release/coderun-load" \
  --url "$gateway" "${arguments[@]}"
