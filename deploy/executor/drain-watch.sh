#!/usr/bin/env bash
# On AWS: waits for this instance's Auto Scaling termination, then drains the executor (stopping
# the unit sends SIGTERM: the executor stops pulling, finishes its runs, exits) and completes
# the lifecycle hook so the instance may go. IMDSv2 only.
set -euo pipefail
imds() {
  local token
  token="$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    http://169.254.169.254/latest/api/token)"
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"
}
while [ "$(imds meta-data/autoscaling/target-lifecycle-state 2>/dev/null || true)" != Terminated ]; do
  sleep 5
done
echo "termination announced: draining the executor" >&2
systemctl stop coderun-executor
instance="$(imds meta-data/instance-id)"
group="$(imds meta-data/tags/instance/aws:autoscaling:groupName)"
aws autoscaling complete-lifecycle-action --lifecycle-hook-name drain \
  --auto-scaling-group-name "$group" --instance-id "$instance" --lifecycle-action-result CONTINUE
