#!/usr/bin/env bash
# Builds the sandbox images offline: a Debian base from debootstrap (docker import), then one
# image per language on top of it (docker build --network host). Images whose inputs did not
# change are skipped. Usage: scripts/images.sh [language ...]   (default: every language)
#                          scripts/images.sh --base-only        (the base image alone)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# The Debian mirror this machine's apt already uses, so no mirror is named here.
debian_mirror() {
  if [ -n "${CODERUN_DEBIAN_MIRROR:-}" ]; then echo "$CODERUN_DEBIAN_MIRROR"; return; fi
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri="$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  # An Ubuntu machine's apt names Ubuntu's archive, which has no bookworm.
  if [ -z "$uri" ] || [[ "$uri" == *ubuntu* ]]; then
    die "no Debian mirror in the apt configuration: set CODERUN_DEBIAN_MIRROR to one"
  fi
  echo "$uri"
}

image_exists() { docker_cli image inspect "$1" >/dev/null 2>&1; }

build_base() {
  if image_exists "$BASE_IMAGE"; then return 0; fi
  local mirror rootfs
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d)"
  log "debootstrap bookworm (minbase) for $BASE_IMAGE"
  as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $STATE_DIR/debootstrap.log"
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  as_root tar -C "$rootfs" -c . | docker_cli import - "$BASE_IMAGE" >/dev/null
  as_root rm -rf "$rootfs"
}

# The catalog names each language's image; the Dockerfile lives in images/<id>/.
catalog_languages() {
  sed -n 's/^id = "\(.*\)"/\1/p' "$ROOT_DIR/images/languages.toml"
}

catalog_image() {
  awk -v id="$1" '
    /^\[\[language\]\]/ { current = "" }
    $1 == "id" { gsub(/"/, "", $3); current = $3 }
    $1 == "image" && current == id { gsub(/"/, "", $3); print $3; exit }
  ' "$ROOT_DIR/images/languages.toml"
}

build_language() {
  local id="$1" image dir hash current
  image="$(catalog_image "$id")"
  [ -n "$image" ] || die "language $id is not in images/languages.toml"
  dir="$ROOT_DIR/images/$id"
  [ -f "$dir/Dockerfile" ] || die "missing $dir/Dockerfile"
  hash="$( (docker_cli image inspect --format '{{.Id}}' "$BASE_IMAGE"; cat "$dir"/*) | sha256sum | cut -c1-16)"
  current="$(docker_cli image inspect --format '{{index .Config.Labels "coderun.inputs"}}' "$image" 2>/dev/null || true)"
  if [ "$current" = "$hash" ]; then
    log "$image is up to date"
  else
    log "building $image"
    # The context also carries the CA certificates this machine trusts, for build stages that
    # fetch from a package registry through a TLS-inspecting proxy (the images keep none).
    local context status=0
    context="$(mktemp -d)"
    cp -R "$dir"/. "$context"/
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca-certificates.crt"
    else
      : >"$context/host-ca-certificates.crt"
    fi
    docker_cli build --network host --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      --label "coderun.inputs=$hash" -t "$image" "$context" >/dev/null || status=$?
    rm -rf "$context"
    [ "$status" -eq 0 ] || die "building $image failed"
  fi
  printf '%-12s %-34s %s\n' "$id" "$image" \
    "$(docker_cli image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1000000}')"
}

main() {
  ensure_system_packages
  ensure_dockerd
  build_base
  # The service images (scripts/release.sh) need the base alone.
  if [ "${1:-}" = --base-only ]; then return 0; fi
  local languages=("$@")
  if [ "${#languages[@]}" -eq 0 ]; then mapfile -t languages < <(catalog_languages); fi
  local id
  for id in "${languages[@]}"; do build_language "$id"; done
}

main "$@"
