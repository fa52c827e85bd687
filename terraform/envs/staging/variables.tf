variable "region" {
  description = "The AWS region."
  type        = string
  default     = "eu-west-1"
}

# One variable per service's release. A deploy of one service, and its rollback, changes its
# line in releases.auto.tfvars and nothing else.
variable "image_tags" {
  description = "The image tag of each ECS service: <service>-v<semver>."
  type = object({
    gateway   = string
    scheduler = string
    prober    = string
  })
}

variable "executor_version" {
  description = "The executor release the image pipeline builds (<semver>)."
  type        = string
}

variable "executor_ami_id" {
  description = "The executor AMI deployed (tag coderun:release = executor-v<semver>)."
  type        = string
}

variable "executor_parent_image" {
  description = "ARM64 Debian 12 parent image of the executor AMI."
  type        = string
}

variable "nats_ami_id" {
  description = "ARM64 AMI of the NATS servers."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the API's host name."
  type        = string
}

variable "artifacts_bucket" {
  description = "Where the release workflow uploads executor builds."
  type        = string
}

variable "access_logs_bucket" {
  description = "Where the load balancer writes access logs."
  type        = string
}
