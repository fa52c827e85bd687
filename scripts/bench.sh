#!/usr/bin/env bash
# The performance benchmark (tools/bench): starts the infrastructure (dockerd, NATS with its
# monitoring endpoint, Redis), builds the language images, the agent and the release binaries,
# then runs coderun-bench, which starts a coderun stack of its own beside whatever else runs
# here, measures the baselines and coderun side by side, and prints every figure and the
# targets' ratios.
#
#   scripts/bench.sh                                the full table (about ten minutes)
#   scripts/bench.sh --capacity docs/capacity.md    the same, and docs/capacity.md refreshed
#   scripts/bench.sh --quick --check                what CI runs: short phases, and a non-zero
#                                                   exit if any figure is missing or a run failed
#
# Other options (coderun-bench --help): --json, --slots N, --executor-env KEY=VALUE to bench
# another isolation mode through the executor's configuration (with --mode-name NAME), and
# --instance-vcpus / --hourly-price for the capacity report's cost model.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ensure_infrastructure
# The images table goes to stderr: stdout is the bench's answer alone (--json).
bash "$ROOT_DIR/scripts/images.sh" >&2
agent="$(build_agent)"

log "building the services and the bench (release)"
(cd "$ROOT_DIR" && cargo build --release --locked -q -p coderun-gateway -p coderun-scheduler \
  -p coderun-executor -p coderun-prober -p coderun-bench)

cd "$ROOT_DIR"
exec "$CARGO_TARGET_DIR/release/coderun-bench" --agent "$agent" \
  --nats-url "nats://127.0.0.1:$NATS_PORT" --nats-monitor "http://127.0.0.1:8222" \
  --redis-url "redis://127.0.0.1:$REDIS_PORT" "$@"
