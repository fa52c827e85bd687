#!/usr/bin/env bash
# Brings up the whole coderun stack on this machine: installs what is missing (Docker Engine,
# nats-server, redis-server, debootstrap, curl, shellcheck, runsc; an unpatched runc is
# upgraded), starts dockerd, NATS with JetStream and Redis on loopback, builds the language
# images, the agent and the four services, starts them (scheduler, executor, gateway, and the
# prober checking the gateway every minute), and prints how to call the API, where each
# service's metrics are, and how to run the prober's release gate. Safe to run again: it reuses
# what already runs.
# The services are release builds; `scripts/up.sh --debug` (or CODERUN_BUILD=debug) starts
# debug builds instead, for a developer who wants them.
# Stop the services with scripts/down.sh.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

GATEWAY_PORT="${CODERUN_GATEWAY_PORT:-8080}"
BUILD="${CODERUN_BUILD:-release}"
for argument in "$@"; do
  case "$argument" in
    --debug) BUILD=debug ;;
    --release) BUILD=release ;;
    *) die "unknown argument $argument (expected --debug or --release)" ;;
  esac
done
case "$BUILD" in
  release) profile=(--release) ;;
  debug) profile=() ;;
  *) die "CODERUN_BUILD must be release or debug, not $BUILD" ;;
esac

ensure_infrastructure
bash "$ROOT_DIR/scripts/images.sh"

agent="$(build_agent)"
install -D -m 0755 "$agent" "$STATE_DIR/coderun-agent"

log "building the services ($BUILD)"
(cd "$ROOT_DIR" && cargo build "${profile[@]}" --locked -q --bins -p coderun-gateway -p coderun-scheduler -p coderun-executor -p coderun-prober)

# One local tenant; its key is kept in the state folder, only its hash goes to the config.
if [ ! -s "$STATE_DIR/api-key" ]; then
  (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^/cr_local_/' >"$STATE_DIR/api-key")
fi
api_key="$(cat "$STATE_DIR/api-key")"
key_hash="$(printf '%s' "$api_key" | sha256sum | cut -d' ' -f1)"
# The prober's webhook receivers: 9104 for the prober that keeps running, 9105 for --once.
PROBER_WEBHOOK_PORT=9104
GATE_WEBHOOK_PORT=9105
receivers="\"127.0.0.1:$PROBER_WEBHOOK_PORT\", \"127.0.0.1:$GATE_WEBHOOK_PORT\""
cat >"$STATE_DIR/gateway.toml" <<TOML
[http]
port = $GATEWAY_PORT

[runs]
callback_allow = [$receivers]

[[tenants]]
id = "local"
key_sha256 = ["$key_hash"]
TOML
# The local tenant's webhook signing secret, kept beside its key, in the scheduler's file.
if [ ! -s "$STATE_DIR/webhook-secret" ]; then
  (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | sed 's/^/whsec_/' >"$STATE_DIR/webhook-secret")
fi
webhook_secret="$(cat "$STATE_DIR/webhook-secret")"
(umask 077 && cat >"$STATE_DIR/scheduler.toml" <<TOML
[webhooks]
allow = [$receivers]

[webhooks.secrets]
local = "$webhook_secret"
TOML
)
# The prober checks the stack as the local tenant, its webhook check included.
(umask 077 && cat >"$STATE_DIR/prober.toml" <<TOML
[target]
base_url = "http://127.0.0.1:$GATEWAY_PORT"
api_key = "$api_key"

[webhook]
port = $PROBER_WEBHOOK_PORT
public_url = "http://127.0.0.1:$PROBER_WEBHOOK_PORT"
secret = "$webhook_secret"
TOML
)

start_service() {
  local name="$1"
  shift
  local pid_file="$STATE_DIR/$name.pid"
  if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "$name already running (pid $(cat "$pid_file"))"
    return 0
  fi
  log "starting $name (log: $STATE_DIR/$name.log)"
  nohup "$@" >"$STATE_DIR/$name.log" 2>&1 &
  echo $! >"$pid_file"
}

export CODERUN_GATEWAY__BUS__URL="nats://127.0.0.1:$NATS_PORT" CODERUN_SCHEDULER__BUS__URL="nats://127.0.0.1:$NATS_PORT" \
  CODERUN_EXECUTOR__BUS__URL="nats://127.0.0.1:$NATS_PORT" CODERUN_GATEWAY__STORE__URL="redis://127.0.0.1:$REDIS_PORT" \
  CODERUN_EXECUTOR__STORE__URL="redis://127.0.0.1:$REDIS_PORT" CODERUN_SCHEDULER__STORE__URL="redis://127.0.0.1:$REDIS_PORT" \
  CODERUN_EXECUTOR__SANDBOX__AGENT_PATH="$STATE_DIR/coderun-agent"
bin="$CARGO_TARGET_DIR/$BUILD"
start_service scheduler "$bin/coderun-scheduler" --config "$STATE_DIR/scheduler.toml"
start_service executor "$bin/coderun-executor"
start_service gateway "$bin/coderun-gateway" --config "$STATE_DIR/gateway.toml"
start_service prober "$bin/coderun-prober" --config "$STATE_DIR/prober.toml"

base="http://127.0.0.1:$GATEWAY_PORT"
served_languages() { curl -fsS -H "Authorization: Bearer $api_key" "$base/v1/languages" 2>/dev/null | grep -q '"id"'; }
wait_for "the gateway and an executor" 240 served_languages

cat <<TEXT

coderun is up at $base  (logs and pids in $STATE_DIR; stop with scripts/down.sh)
API key: $api_key
Webhook signing secret: $webhook_secret  (callback_url targets must be public addresses;
  127.0.0.1:$PROBER_WEBHOOK_PORT and :$GATE_WEBHOOK_PORT are the prober's. Services that were already running keep
  their old configuration: scripts/down.sh, then this script, applies a new one.)

  curl -s -H "Authorization: Bearer $api_key" $base/v1/languages

  curl -s -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \\
    "$base/v1/runs?wait=true" \\
    -d '{"language": "python", "source": "print(input()[::-1])", "stdin": "hello\\n"}'

OpenAPI: $base/openapi.json   interactive docs: $base/docs

Metrics (Prometheus): $base/metrics (gateway), http://127.0.0.1:9101/metrics (scheduler),
  http://127.0.0.1:9102/metrics (executor), http://127.0.0.1:9103/metrics (prober)
The prober's release gate (every check once; exit 1 naming the failed ones):

  CODERUN_PROBER__WEBHOOK__PORT=$GATE_WEBHOOK_PORT CODERUN_PROBER__WEBHOOK__PUBLIC_URL=http://127.0.0.1:$GATE_WEBHOOK_PORT \\
    $bin/coderun-prober --once --config $STATE_DIR/prober.toml
TEXT
