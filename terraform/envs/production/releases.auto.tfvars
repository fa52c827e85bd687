# The release of each service deployed here. The release workflow changes one line per deploy;
# a rollback puts the previous value back.
image_tags = {
  gateway   = "gateway-v0.1.0"
  scheduler = "scheduler-v0.1.0"
  prober    = "prober-v0.1.0"
}
executor_version = "0.1.0"
