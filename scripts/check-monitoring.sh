#!/usr/bin/env bash
# Checks what is committed under monitoring/:
#   - promtool check rules on every Prometheus rules file;
#   - promtool test rules on every unit test file;
#   - promtool check config on the example Prometheus configuration;
#   - every Grafana dashboard JSON file parses;
#   - every Grafana provisioning YAML file parses (skipped, and said so, when Python has no
#     yaml module).
# Needs promtool (Debian's prometheus package) and python3. Exits non-zero on any failure.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MONITORING="$ROOT_DIR/monitoring"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v promtool >/dev/null 2>&1 \
  || die "promtool not found: install Debian's prometheus package (apt-get install prometheus)"
command -v python3 >/dev/null 2>&1 || die "python3 not found: install Debian's python3 package"

cd "$ROOT_DIR"
failed=0

shopt -s nullglob
rules=("$MONITORING"/prometheus/rules/*.yml)
tests=("$MONITORING"/prometheus/tests/*.yml)
dashboards=("$MONITORING"/grafana/dashboards/*.json "$MONITORING"/grafana/cloudwatch/*.json)
provisioning=("$MONITORING"/grafana/provisioning/*/*.yml "$MONITORING"/grafana/provisioning/*/*.yaml)
shopt -u nullglob

[ "${#rules[@]}" -gt 0 ] || die "no rules files in monitoring/prometheus/rules/"
[ "${#tests[@]}" -gt 0 ] || die "no unit test files in monitoring/prometheus/tests/"
[ "${#dashboards[@]}" -gt 0 ] || die "no dashboards in monitoring/grafana/"

log "$(promtool --version 2>&1 | head -n 1)"

log "promtool check rules (${#rules[@]} files)"
promtool check rules "${rules[@]}" || failed=1

log "promtool test rules (${#tests[@]} files)"
promtool test rules "${tests[@]}" || failed=1

if [ -f "$MONITORING/prometheus/prometheus.yml" ]; then
  log "promtool check config monitoring/prometheus/prometheus.yml"
  promtool check config "$MONITORING/prometheus/prometheus.yml" || failed=1
fi

log "dashboard JSON (${#dashboards[@]} files)"
for file in "${dashboards[@]}"; do
  if python3 -m json.tool "$file" >/dev/null; then
    printf '  ok  %s\n' "${file#"$ROOT_DIR"/}"
  else
    printf '  BAD %s\n' "${file#"$ROOT_DIR"/}"
    failed=1
  fi
done

if [ "${#provisioning[@]}" -eq 0 ]; then
  log "no Grafana provisioning YAML files"
elif python3 -c 'import yaml' 2>/dev/null; then
  log "provisioning YAML (${#provisioning[@]} files)"
  for file in "${provisioning[@]}"; do
    if python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1], encoding="utf-8"))' "$file"; then
      printf '  ok  %s\n' "${file#"$ROOT_DIR"/}"
    else
      printf '  BAD %s\n' "${file#"$ROOT_DIR"/}"
      failed=1
    fi
  done
else
  log "SKIPPED provisioning YAML (${#provisioning[@]} files): python3 has no yaml module (Debian: python3-yaml)"
fi

if [ "$failed" -ne 0 ]; then
  die "monitoring checks failed"
fi
log "monitoring checks passed"
