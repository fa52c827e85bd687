#!/usr/bin/env bash
# Shared helpers for the project's scripts: installing what is missing and starting the
# local infrastructure (dockerd, nats-server with JetStream, redis-server) on loopback.
# Sourced, not executed. Every helper is idempotent: it reuses what already runs.

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE_DIR="${CODERUN_STATE_DIR:-$HOME/.cache/coderun/state}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coderun/target}"
NATS_PORT="${CODERUN_NATS_PORT:-4222}"
REDIS_PORT="${CODERUN_REDIS_PORT:-6379}"
export BASE_IMAGE="${CODERUN_BASE_IMAGE:-coderun/base:bookworm}"
mkdir -p "$STATE_DIR"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that provide the given commands, when a command is missing.
ensure_commands() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"
    pkg="${pair##*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
}

ensure_system_packages() {
  ensure_commands dockerd:docker.io nats-server:nats-server redis-server:redis-server \
    debootstrap:debootstrap curl:curl shellcheck:shellcheck runsc:runsc
  # debootstrap checks bookworm's signatures with Debian's archive keys (not on Ubuntu by default).
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || ensure_system_package debian-archive-keyring
  ensure_patched_runc
}

# runc before Debian's 1.1.5+ds1-1+deb12u1 lacks the fix for CVE-2024-21626 (a leaked fd lets a
# container reach the host): upgrade it to the distribution's current build.
ensure_patched_runc() {
  local version
  version="$(dpkg-query -W -f '${Version}' runc 2>/dev/null || true)"
  if [ -n "$version" ] && dpkg --compare-versions "$version" lt "1.1.5+ds1-1+deb12u1"; then
    log "upgrading runc $version (no fix for CVE-2024-21626)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --only-upgrade runc
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local what="$1" tries="$2"
  shift 2
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  die "$what did not come up"
}

docker_cli() { /usr/bin/docker "$@"; }
docker_ready() { docker_cli info >/dev/null 2>&1; }

# dockerd's configuration: gVisor registered as the runtime `runsc`, itself without a network
# stack, applying each container's seccomp profile inside the sandbox too.
daemon_config() {
  printf '{"runtimes": {"runsc": {"path": "%s", "runtimeArgs": ["--network=none", "--oci-seccomp"]}}}\n' \
    "$(command -v runsc)"
}

ensure_dockerd() {
  local config="$STATE_DIR/daemon.json"
  if docker_ready; then
    # A dockerd we started with an older configuration reloads it (runtimes reload on SIGHUP).
    if [ -f "$config" ] && [ "$(cat "$config")" != "$(daemon_config)" ] && [ -f "$STATE_DIR/dockerd.pid" ]; then
      log "reloading dockerd's configuration"
      daemon_config >"$config"
      as_root pkill -HUP -F "$STATE_DIR/dockerd.pid" -x dockerd || true
      sleep 1
    fi
    return 0
  fi
  log "starting dockerd (no bridge, no iptables: containers only ever get network none)"
  daemon_config >"$config"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  # Its own session: stopping the script that started it does not stop it.
  setsid nohup "${sudo[@]}" dockerd --bridge=none --iptables=false --ip-masq=false \
    --config-file "$config" >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/dockerd.pid"
  wait_for dockerd 120 docker_ready
}

# NATS's configuration: jobs carry source and stdin, so messages well above the 1 MiB default;
# monitoring on loopback (tools/bench reads the message counters of /varz).
nats_config() {
  printf 'max_payload: 33554432\nmax_pending: 134217728\nhttp: 127.0.0.1:8222\n'
}

nats_stopped() { ! port_open "$NATS_PORT"; }

ensure_nats() {
  local config="$STATE_DIR/nats.conf"
  if port_open "$NATS_PORT"; then
    # A NATS we started with an older configuration is restarted with the current one.
    if [ "$(cat "$config" 2>/dev/null)" = "$(nats_config)" ] \
      || ! pgrep -F "$STATE_DIR/nats.pid" -x nats-server >/dev/null 2>&1; then
      return 0
    fi
    log "restarting nats-server with its current configuration"
    pkill -TERM -F "$STATE_DIR/nats.pid" -x nats-server || true
    wait_for "a stopped nats-server" 40 nats_stopped
  fi
  log "starting nats-server with JetStream on 127.0.0.1:$NATS_PORT"
  mkdir -p "$STATE_DIR/nats"
  nats_config >"$config"
  nohup nats-server -c "$config" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$STATE_DIR/nats" \
    >"$STATE_DIR/nats.log" 2>&1 &
  echo $! >"$STATE_DIR/nats.pid"
  wait_for nats-server 40 port_open "$NATS_PORT"
}

# Redis keeps an append-only file, written to disk every second: a restart of redis-server
# keeps the runs (a crash of the machine can lose up to the last two seconds of writes).
ensure_redis() {
  if port_open "$REDIS_PORT"; then
    if [[ "$(redis-cli -p "$REDIS_PORT" CONFIG GET appendonly | tail -n 1)" == "yes" ]]; then
      return 0
    fi
    # One started by an earlier version of this script ran without the file: turn it on.
    # Another Redis on the port is left as it is.
    if [[ -f "$STATE_DIR/redis.pid" ]] && pgrep -F "$STATE_DIR/redis.pid" -x redis-server >/dev/null; then
      log "turning on redis-server's append-only file"
      redis-cli -p "$REDIS_PORT" CONFIG SET appendonly yes >/dev/null ||
        log "warning: could not turn on the append-only file; runs will not outlive a Redis restart"
    else
      log "warning: the Redis on port $REDIS_PORT was not started here and keeps no append-only file; runs will not outlive its restart"
    fi
    return 0
  fi
  log "starting redis-server on 127.0.0.1:$REDIS_PORT (append-only file, fsync every second)"
  nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly yes \
    --appendfsync everysec --dir "$STATE_DIR" >"$STATE_DIR/redis.log" 2>&1 &
  echo $! >"$STATE_DIR/redis.pid"
  wait_for redis-server 40 port_open "$REDIS_PORT"
}

ensure_infrastructure() {
  ensure_system_packages
  ensure_dockerd
  ensure_nats
  ensure_redis
}

# Builds the in-container agent as a static binary and prints its path.
build_agent() {
  local triple
  triple="$(rustc -vV | sed -n 's/^host: //p')"
  log "building the sandbox agent (static, $triple)"
  (cd "$ROOT_DIR" && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked -q -p coderun-agent --target "$triple") >&2
  echo "$CARGO_TARGET_DIR/$triple/release/coderun-agent"
}

# The Python tools the tests drive (schemathesis, openapi-python-client, moto's server as the
# CloudWatch of the prober's tests, python-hcl2 to read the Terraform code), pinned, in a
# virtual environment of their own under the state directory's parent; prints its path.
PYTHON_TOOLS=(schemathesis==4.32.5 openapi-python-client==0.29.1 'moto[server]==5.2.5' python-hcl2==7.3.1)
ensure_python_tools() {
  local venv="${CODERUN_TOOLS_VENV:-$HOME/.cache/coderun/venv}" stamp
  stamp="$venv/.coderun-tools"
  if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ensure_system_package python3-venv
    /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || ensure_system_package python3-venv
    log "creating the Python tools environment in $venv"
    /usr/bin/python3 -m venv "$venv" >&2
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "${PYTHON_TOOLS[*]}" ]; then
    log "installing ${PYTHON_TOOLS[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_TOOLS[@]}" >&2
    printf '%s' "${PYTHON_TOOLS[*]}" >"$stamp"
  fi
  echo "$venv"
}

# checkov, which scans the Terraform code, in an environment of its own (its pinned
# dependencies would clash with the other tools'); prints its path.
INFRA_TOOLS=(checkov==3.2.495)
ensure_infra_tools() {
  local venv="${CODERUN_INFRA_VENV:-$HOME/.cache/coderun/infra-venv}" stamp
  stamp="$venv/.coderun-tools"
  if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || ensure_system_package python3-venv
    log "creating the infrastructure tools environment in $venv"
    /usr/bin/python3 -m venv "$venv" >&2
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "${INFRA_TOOLS[*]}" ]; then
    log "installing ${INFRA_TOOLS[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${INFRA_TOOLS[@]}" >&2
    printf '%s' "${INFRA_TOOLS[*]}" >"$stamp"
  fi
  echo "$venv"
}

# promtool and prometheus (Debian's prometheus package, without its recommended node exporter)
# check the alert rules and scrape the services in a test; python3-yaml reads Grafana's
# provisioning files.
ensure_monitoring_tools() {
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    log "installing prometheus"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
  fi
  ensure_system_package python3-yaml
}

# Installs one Debian package, whatever commands it has.
ensure_system_package() {
  dpkg -s "$1" >/dev/null 2>&1 && return 0
  log "installing $1"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1"
}

# Installs a cargo subcommand from crates.io at a pinned version, when it is missing or older.
ensure_cargo_tool() {
  local crate="$1" version="$2"
  if ! "$crate" --version 2>/dev/null | grep -qF "$version" \
    && ! cargo "${crate#cargo-}" --version 2>/dev/null | grep -qF "$version"; then
    log "installing $crate $version"
    cargo install --locked --quiet "$crate" --version "$version"
  fi
}
