#!/usr/bin/env bash
# Runs the whole test suite against real components: installs what is missing, starts dockerd,
# NATS with JetStream and Redis on loopback, builds the language images and the static agent,
# then checks formatting, lints (clippy -D warnings, shellcheck), the alert rules (promtool),
# unused dependencies (cargo-machete), runs every test, then a short bench (every figure
# produced, every run answered; the performance targets are reported, not checked).
# Regenerate the committed OpenAPI document with CODERUN_UPDATE_OPENAPI=1 scripts/test.sh.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ensure_infrastructure
# Only the tests need a browser: the /docs page is loaded in headless Chromium.
ensure_commands chromium:chromium
# compose.yaml is validated by Debian's docker-compose in the infra tests.
ensure_commands docker-compose:docker-compose
# Alert rules are unit-tested by promtool; a test scrapes every service with a real Prometheus.
ensure_monitoring_tools
# The spec is checked by tools nobody here wrote: schemathesis, and a generated Python client.
CODERUN_TEST_PYTHON_TOOLS="$(ensure_python_tools)"
export CODERUN_TEST_PYTHON_TOOLS
# Terraform is checked by checkov and parsed by python-hcl2 (above) in the infra tests.
CODERUN_TEST_INFRA_TOOLS="$(ensure_infra_tools)"
export CODERUN_TEST_INFRA_TOOLS
bash "$ROOT_DIR/scripts/images.sh"
CODERUN_TEST_AGENT="$(build_agent)"
export CODERUN_TEST_AGENT
export CODERUN_TEST_NATS_URL="nats://127.0.0.1:$NATS_PORT"
export CODERUN_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
# The sandbox and attack tests run under runc and under runsc (gVisor); 0 skips runsc.
export CODERUN_TEST_RUNSC="${CODERUN_TEST_RUNSC:-1}"

cd "$ROOT_DIR"
log "cargo fmt --check"
cargo fmt --all --check
log "shellcheck"
shellcheck -x scripts/*.sh scripts/lib/*.sh deploy/executor/*.sh .ci/run
log "monitoring: alert rules, their unit tests, dashboards"
bash "$ROOT_DIR/scripts/check-monitoring.sh"
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo machete (unused dependencies)"
ensure_cargo_tool cargo-machete 0.9.2
cargo machete
log "cargo test"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
cargo test --workspace --all-targets --locked 2>&1 | tee "$results"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i } }
     END { printf "summary: %d passed, %d failed\n", p, f }' "$results"
log "bench (short): scripts/bench.sh --quick --check"
bash "$ROOT_DIR/scripts/bench.sh" --quick --check
