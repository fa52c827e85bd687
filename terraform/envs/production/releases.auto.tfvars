# The release of each service deployed here, changed by scripts/deploy.sh: one line per deploy,
# and a rollback puts the previous value back. executor_version is what the image pipeline
# bakes; executor_ami_id (written by the first executor deploy) is the AMI the fleet runs.
image_tags = {
  gateway   = "gateway-v0.1.0"
  scheduler = "scheduler-v0.1.0"
  prober    = "prober-v0.1.0"
}
executor_version = "0.1.0"
