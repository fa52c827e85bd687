#!/usr/bin/env bash
# Deploys one service's release to one environment: the service's line in
# terraform/envs/<env>/releases.auto.tfvars becomes the new tag (for the executor, its version
# and AMI), then Terraform applies it. A rollback is the same command with the previous tag.
#
#   scripts/deploy.sh staging gateway-v0.2.0
#   scripts/deploy.sh staging executor-v0.2.0 ami-0abc...      (the executor needs its AMI)
#   scripts/deploy.sh staging gateway-v0.2.0 --edit-only       (change the file, apply nothing)
set -euo pipefail

die() { echo "deploy.sh: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: scripts/deploy.sh staging|production <service>-v<semver> [ami-id] [--edit-only]"
environment="$1" tag="$2"
shift 2
ami="" edit_only=""
for argument in "$@"; do
  case "$argument" in
    --edit-only) edit_only=1 ;;
    ami-*) ami="$argument" ;;
    *) die "unknown argument $argument" ;;
  esac
done
case "$environment" in staging | production) ;; *) die "unknown environment $environment" ;; esac
[[ "$tag" =~ ^(gateway|scheduler|executor|prober)-v([0-9]+\.[0-9]+\.[0-9]+)$ ]] \
  || die "not a release tag: $tag"
service="${BASH_REMATCH[1]}" version="${BASH_REMATCH[2]}"
directory="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/terraform/envs/$environment"
releases="$directory/releases.auto.tfvars"

if [ "$service" = executor ]; then
  [ -n "$ami" ] || die "the executor is deployed as an AMI: give its id"
  sed -i -E "s/^executor_version = .*/executor_version = \"$version\"/" "$releases"
  if grep -q '^executor_ami_id' "$releases"; then
    sed -i -E "s/^executor_ami_id = .*/executor_ami_id  = \"$ami\"/" "$releases"
  else
    echo "executor_ami_id  = \"$ami\"" >>"$releases"
  fi
else
  grep -qE "^  $service +=" "$releases" || die "$releases has no line for $service"
  sed -i -E "s/^(  $service +=) \".*\"/\1 \"$tag\"/" "$releases"
fi
echo "$environment: $service is now $tag in $(basename "$releases")" >&2
[ -z "$edit_only" ] || exit 0

cd "$directory"
terraform init -input=false
terraform apply -input=false -auto-approve
if [ "$service" != executor ]; then
  aws ecs wait services-stable --cluster "coderun-$environment" --services "$service"
fi
