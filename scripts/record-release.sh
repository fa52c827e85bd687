#!/usr/bin/env bash
# Commits an environment's releases.auto.tfvars, as a deploy left it, to main: the repository
# says what runs. Run by the release workflow right after scripts/deploy.sh; retried when
# another release pushed first, and nothing is committed when nothing changed.
#
#   scripts/record-release.sh staging gateway-v0.2.0
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/record-release.sh <env> <tag>" >&2; exit 2; }
environment="$1" tag="$2"
file="terraform/envs/$environment/releases.auto.tfvars"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deployed="$(mktemp)"
cp "$file" "$deployed"
for attempt in 1 2 3 4 5; do
  # Forced: the deployed file is saved above, and may differ from both sides.
  git fetch -q origin main && git checkout -q -f -B record origin/main
  cp "$deployed" "$file"
  git add "$file"
  if git diff --cached --quiet; then exit 0; fi
  git commit -q -m "$environment runs $tag"
  if git push -q origin HEAD:main; then exit 0; fi
  sleep $((attempt * 5))
done
echo "record-release.sh: could not push the record of $tag to main" >&2
exit 1
