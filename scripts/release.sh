#!/usr/bin/env bash
# Releases one service on its own: checks its CHANGELOG has the version, sets the version in its
# Cargo.toml, builds its release binary (and, for the executor, the static agent) on this host,
# and builds and tags its image coderun/<service>:<service>-v<version> from
# images/services/Dockerfile (--target prebuilt). No other service's version, binary or image
# is touched. With --git-tag it also commits the version change and tags it <service>-v<version>.
#
#   scripts/release.sh executor 0.2.0 [--git-tag]
#
# The release workflow (.github/workflows/release.yml) does the same from a pushed tag, for
# linux/amd64 and linux/arm64, then deploys to staging behind the prober; docs/release.md has
# every step, and the rollback.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { die "usage: scripts/release.sh gateway|scheduler|executor|prober <major.minor.patch> [--git-tag]"; }
[ $# -ge 2 ] || usage
service="$1" version="$2" git_tag="${3:-}"
case "$service" in gateway | scheduler | executor | prober) ;; *) usage ;; esac
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || usage
[ -z "$git_tag" ] || [ "$git_tag" = --git-tag ] || usage
tag="$service-v$version"
manifest="$ROOT_DIR/services/$service/Cargo.toml"
changelog="$ROOT_DIR/services/$service/CHANGELOG.md"

grep -q "^## $version\b" "$changelog" \
  || die "services/$service/CHANGELOG.md has no '## $version' section: say what changed first"
if [ -n "$git_tag" ] && git -C "$ROOT_DIR" rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
  die "the tag $tag exists already: a released version is never rebuilt"
fi

current="$(sed -n 's/^version = "\(.*\)"/\1/p' "$manifest" | head -n 1)"
if [ "$current" != "$version" ]; then
  log "coderun-$service: $current -> $version"
  sed -i "0,/^version = \".*\"/s//version = \"$version\"/" "$manifest"
fi

ensure_dockerd
log "building coderun-$service (release)"
# Not --locked: the lock file takes the new version of this one package, nothing else.
(cd "$ROOT_DIR" && cargo build --release -q -p "coderun-$service")
# Laid out as in the image, with the modes it keeps: one COPY, nothing moved after it.
dist="$ROOT_DIR/dist/$service"
rm -rf "$dist"
install -D -m 0555 "$CARGO_TARGET_DIR/release/coderun-$service" "$dist/usr/local/bin/coderun-service"
if [ "$service" = executor ]; then
  install -D -m 0555 "$(build_agent)" "$dist/usr/local/lib/coderun/coderun-agent"
fi
"$dist/usr/local/bin/coderun-service" --version | grep -q "$version" \
  || die "the binary does not report version $version"

bash "$ROOT_DIR/scripts/images.sh" --base-only >&2
log "building the image coderun/$service:$tag"
docker_cli build --network host -q -f "$ROOT_DIR/images/services/Dockerfile" --target prebuilt \
  --build-arg "SERVICE=$service" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.title=coderun-$service" \
  -t "coderun/$service:$tag" "$ROOT_DIR" >&2

if [ -n "$git_tag" ]; then
  git -C "$ROOT_DIR" add "$manifest" "$ROOT_DIR/Cargo.lock"
  git -C "$ROOT_DIR" diff --cached --quiet || git -C "$ROOT_DIR" commit -q -m "coderun-$service $version"
  git -C "$ROOT_DIR" tag -a "$tag" -m "coderun-$service $version"
  log "tagged $tag"
fi
echo "coderun/$service:$tag"
