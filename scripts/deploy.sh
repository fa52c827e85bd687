#!/usr/bin/env bash
# Deploys one service's release to one environment: the service's line in
# terraform/envs/<env>/releases.auto.tfvars becomes the new tag, Terraform applies it, and the
# command returns once the release runs (ECS services stable; for the executor, the instance
# refresh finished, each instance drained first). A rollback is the same command with the
# previous tag.
#
#   scripts/deploy.sh staging gateway-v0.2.0
#   scripts/deploy.sh staging executor-v0.2.0              (bake its AMI, then run it)
#   scripts/deploy.sh staging executor-v0.2.0 --bake       (only bake; prints the AMI id)
#   scripts/deploy.sh staging executor-v0.1.0 ami-0abc...  (run that AMI: a rollback)
#   scripts/deploy.sh staging gateway-v0.2.0 --edit-only   (change the file, apply nothing)
#
# The executor ships as an AMI in two steps. --bake sets executor_version (what the
# environment's Image Builder pipeline bakes, from s3://<artifacts>/executor/<version>/),
# applies the pipeline alone (the fleet keeps its AMI), runs it and prints the new AMI's id.
# Deploying that id sets executor_ami_id, which the fleet runs. Each environment bakes its own
# AMI, encrypted with its own key, from the same uploaded build.
# terraform/envs/<env>/site.tfvars (what only the account knows) is passed when it exists.
set -euo pipefail

die() { echo "deploy.sh: $*" >&2; exit 2; }
log() { echo "deploy.sh: $*" >&2; }
[ $# -ge 2 ] || die "usage: scripts/deploy.sh staging|production <service>-v<semver> [ami-id|--bake] [--edit-only]"
environment="$1" tag="$2"
shift 2
ami="" bake="" edit_only=""
for argument in "$@"; do
  case "$argument" in
    --edit-only) edit_only=1 ;;
    --bake) bake=1 ;;
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

set_line() { # name value [comment]: replaces the line `name = ...`, or adds it
  local line="$1 = \"$2\"${3:+ # $3}"
  if grep -qE "^$1 +=" "$releases"; then
    sed -i -E "s/^$1 +=.*/$line/" "$releases"
  else
    echo "$line" >>"$releases"
  fi
}

if [ "$service" = executor ]; then
  if [ -n "$bake" ]; then
    [ -z "$ami" ] || die "--bake makes the AMI: give no AMI id"
    set_line executor_version "$version"
  elif [ -z "$ami" ]; then
    [ -z "$edit_only" ] || die "--edit-only needs the AMI id or --bake"
    ami="$(bash "${BASH_SOURCE[0]}" "$environment" "$tag" --bake)"
    exec bash "${BASH_SOURCE[0]}" "$environment" "$tag" "$ami"
  else
    set_line executor_ami_id "$ami" "$tag"
  fi
else
  [ -z "$bake$ami" ] || die "only the executor is baked into an AMI"
  grep -qE "^  $service +=" "$releases" || die "$releases has no line for $service"
  sed -i -E "s/^(  $service +=) \".*\"/\1 \"$tag\"/" "$releases"
fi
log "$environment: $service is now $tag in $(basename "$releases")"
[ -z "$edit_only" ] || exit 0

cd "$directory"
options=()
[ ! -f site.tfvars ] || options+=(-var-file=site.tfvars)
if [ -n "$bake" ]; then
  # The pipeline alone: the fleet keeps its AMI (and an environment's first bake has none).
  options+=(-target=module.coderun.module.executors.aws_imagebuilder_image_pipeline.executor)
  grep -qE '^executor_ami_id +=' "$releases" || options+=(-var executor_ami_id=none)
fi
terraform init -input=false >&2
# Another deploy to this environment holds the state: wait for it rather than fail.
terraform apply -input=false -auto-approve -lock-timeout=20m "${options[@]}" >&2

export AWS_PAGER=""
# poll DEADLINE_MINUTES COMMAND...: runs COMMAND every 30 s until it prints a final state
# (exit 0 with output), tolerating five failed calls in a row (throttling, a network blip).
poll() {
  local deadline=$((SECONDS + $1 * 60)) failures=0 state
  shift
  while [ "$SECONDS" -lt "$deadline" ]; do
    if state="$("$@")"; then
      failures=0
      [ -z "$state" ] || { echo "$state"; return 0; }
    else
      failures=$((failures + 1))
      [ "$failures" -lt 5 ] || die "five failed calls in a row: $*"
    fi
    sleep 30
  done
  die "no final state within the deadline: $*"
}
image_state() {
  local state
  state="$(aws imagebuilder get-image --image-build-version-arn "$build" \
    --query image.state.status --output text)" || return 1
  if [[ "$state" =~ ^(AVAILABLE|FAILED|CANCELLED|DELETED|DEPRECATED)$ ]]; then echo "$state"; fi
}
refresh_state() {
  local state
  state="$(aws autoscaling describe-instance-refreshes --auto-scaling-group-name "$group" \
    --max-records 1 --query 'InstanceRefreshes[0].Status' --output text)" || return 1
  case "$state" in
    Pending | InProgress | Cancelling | RollbackInProgress | Baking) ;;
    *) echo "$state" ;;
  esac
}

if [ -n "$bake" ]; then
  pipeline="$(terraform output -raw executor_image_pipeline_arn)"
  build="$(aws imagebuilder start-image-pipeline-execution --image-pipeline-arn "$pipeline" \
    --query imageBuildVersionArn --output text)"
  log "baking $tag: $build"
  state="$(poll 150 image_state)"
  [ "$state" = AVAILABLE ] || die "the image build ended $state"
  ami="$(aws imagebuilder get-image --image-build-version-arn "$build" \
    --query 'image.outputResources.amis[0].image' --output text)"
  [[ "$ami" == ami-* ]] || die "the image build made no AMI ($ami)"
  echo "$ami"
elif [ "$service" = executor ]; then
  group="$(terraform output -raw executor_autoscaling_group_name)"
  log "waiting for $group's instance refresh (each instance drains before it goes)"
  state="$(poll 120 refresh_state)"
  case "$state" in
    Successful | None) ;;
    *) die "the instance refresh ended $state" ;;
  esac
else
  aws ecs wait services-stable --cluster "coderun-$environment" --services "$service"
fi
