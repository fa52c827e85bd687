#!/usr/bin/env bash
# Makes a machine an executor host, the same way everywhere: the EC2 Image Builder recipe of the
# executor AMI runs it (--cloud aws), and so does the Lima VM (--cloud lima). Steps:
#   packages   Docker Engine, gVisor (runsc), and on AWS the CLI the drain watcher uses
#   docker     the daemon's configuration: runsc registered, no log driver, live restore
#   release    the executor and the agent from the release's artifacts directory
#   images     the language images (images.tar in the artifacts, from scripts/images.sh)
#   logs       (aws) the units log to /var/log/coderun for the CloudWatch agent, rotated
#   units      coderun-executor.service and, on AWS, the drain watcher, enabled
#
#   provision.sh --artifacts DIR --cloud aws|lima [--root DIR] [--only STEP,STEP]
#
# --root writes every file under another root and skips what needs the running system
# (packages, the daemon, image loading, systemctl): the tests render a host that way.
set -euo pipefail

artifacts="" cloud="" root="" only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --artifacts) artifacts="$2"; shift 2 ;;
    --cloud) cloud="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "provision.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$cloud" in aws | lima) ;; *) echo "provision.sh: --cloud must be aws or lima" >&2; exit 2 ;; esac
[ -d "$artifacts" ] || { echo "provision.sh: --artifacts must name a directory" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "==> $*" >&2; }
wanted() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
live() { [ -z "$root" ]; }

step_packages() {
  live || { log "packages: skipped under --root"; return; }
  local packages=(docker.io runsc ca-certificates curl logrotate)
  [ "$cloud" = aws ] && packages+=(awscli)
  log "packages: ${packages[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
}

step_docker() {
  log "docker: runsc registered (no network stack, seccomp applied inside), no log driver, live restore"
  install -d "$root/etc/docker"
  # The same registration as the local stack's (scripts/lib/common.sh): a pool set to runsc
  # (CODERUN_EXECUTOR__SANDBOX__RUNTIMES__<pool>) gets gVisor without any network stack.
  cat >"$root/etc/docker/daemon.json" <<'JSON'
{
  "runtimes": { "runsc": { "path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--oci-seccomp"] } },
  "log-driver": "none",
  "live-restore": true,
  "userland-proxy": false
}
JSON
  if live; then systemctl restart docker; fi
}

# artifact NAME...: the first of these paths that is a file in the artifacts directory.
artifact() {
  local name
  for name in "$@"; do
    if [ -f "$artifacts/$name" ]; then echo "$name"; return; fi
  done
  echo "provision.sh: none of $* in $artifacts" >&2
  exit 2
}

step_release() {
  log "release: the executor and the agent"
  install -d "$root/usr/local/bin" "$root/usr/local/lib/coderun"
  # The release's artifacts are flat (coderun-service, coderun-agent: the Dockerfile's
  # `artifacts` target) or laid out as in the image (dist/executor from scripts/release.sh).
  local binary agent
  binary="$(artifact coderun-executor coderun-service usr/local/bin/coderun-service)"
  agent="$(artifact coderun-agent usr/local/lib/coderun/coderun-agent)"
  install -m 0755 "$artifacts/$binary" "$root/usr/local/bin/coderun-executor"
  # The agent is bind-mounted read-only into every sandbox: root-owned, not writable by anyone.
  install -m 0555 "$artifacts/$agent" "$root/usr/local/lib/coderun/coderun-agent"
  install -m 0755 "$here/executor-start.sh" "$root/usr/local/lib/coderun/executor-start"
  install -m 0755 "$here/drain-watch.sh" "$root/usr/local/lib/coderun/drain-watch"
}

step_images() {
  if ! live; then log "images: skipped under --root"; return; fi
  if [ -f "$artifacts/images.tar" ]; then
    log "images: loading the language images"
    docker load -i "$artifacts/images.tar"
  else
    log "images: none in the artifacts (the executor serves only images already here)"
  fi
}

step_units() {
  log "units: coderun-executor$([ "$cloud" = aws ] && echo ", coderun-drain-watch")"
  install -d "$root/etc/systemd/system" "$root/etc/coderun"
  install -m 0644 "$here/coderun-executor.service" "$root/etc/systemd/system/"
  [ -f "$root/etc/coderun/executor.env" ] || install -m 0640 /dev/null "$root/etc/coderun/executor.env"
  if [ "$cloud" = aws ]; then
    install -m 0644 "$here/coderun-drain-watch.service" "$root/etc/systemd/system/"
  fi
  if live; then
    systemctl daemon-reload
    systemctl enable coderun-executor
    if [ "$cloud" = aws ]; then systemctl enable coderun-drain-watch; fi
  fi
}

step_logs() {
  if [ "$cloud" != aws ]; then log "logs: journald only ($cloud)"; return; fi
  log "logs: the units write to /var/log/coderun, which the CloudWatch agent ships"
  install -d -m 0750 "$root/var/log/coderun"
  local unit
  for unit in coderun-executor coderun-drain-watch; do
    install -d "$root/etc/systemd/system/$unit.service.d"
    printf '[Service]\nStandardOutput=append:/var/log/coderun/%s.log\nStandardError=inherit\n' \
      "${unit#coderun-}" >"$root/etc/systemd/system/$unit.service.d/log-file.conf"
  done
  install -d "$root/etc/logrotate.d"
  cat >"$root/etc/logrotate.d/coderun" <<'ROTATE'
/var/log/coderun/*.log {
  hourly
  maxsize 100M
  rotate 4
  compress
  missingok
  notifempty
  copytruncate
}
ROTATE
  # Debian runs logrotate daily; the executor's JSON logs are rotated every hour.
  install -d "$root/etc/systemd/system/logrotate.timer.d"
  printf '[Timer]\nOnCalendar=\nOnCalendar=hourly\n' >"$root/etc/systemd/system/logrotate.timer.d/hourly.conf"
  if live; then systemctl daemon-reload; fi
}

for step in packages docker release images units logs; do
  if wanted "$step"; then "step_$step"; fi
done
log "provisioned ($cloud${root:+, under $root})"
