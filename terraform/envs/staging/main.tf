# The staging environment. Every resource carries the tags below; what differs from the other
# environment is sizes and redundancy, never shape.

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "coderun"
      Environment = "staging"
      ManagedBy   = "terraform"
    }
  }
}

module "coderun" {
  source                 = "../../modules/coderun"
  environment            = "staging"
  availability_zones     = ["${var.region}a", "${var.region}b", "${var.region}c"]
  vpc_cidr_block         = "10.20.0.0/16"
  nat_gateway_per_zone   = false
  image_tags             = var.image_tags
  executor_version       = var.executor_version
  executor_ami_id        = var.executor_ami_id
  executor_parent_image  = var.executor_parent_image
  executor_instance_type = "c7g.large"
  executor_slots         = 2
  executor_min           = 1
  executor_max           = 4
  nats_ami_id            = var.nats_ami_id
  nats_instance_type     = "t4g.small"
  redis_node_type        = "cache.t4g.small"
  gateway_count          = 2
  certificate_arn        = var.certificate_arn
  artifacts_bucket       = var.artifacts_bucket
  access_logs_bucket     = var.access_logs_bucket
  log_retention_days     = 365
}
