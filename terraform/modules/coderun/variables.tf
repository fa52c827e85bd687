variable "environment" {
  description = "staging or production."
  type        = string
}

variable "availability_zones" {
  description = "Three zones: NATS runs one server in each."
  type        = list(string)
}

variable "vpc_cidr_block" {
  description = "The VPC's address range."
  type        = string
}

variable "nat_gateway_per_zone" {
  description = "One NAT gateway per zone (production) or one shared (staging)."
  type        = bool
}

variable "image_tags" {
  description = "The release of each ECS service: <service>-v<semver>. Releasing or rolling back one service changes its entry alone."
  type = object({
    gateway   = string
    scheduler = string
    prober    = string
  })
}

variable "executor_version" {
  description = "The executor release whose AMI the image pipeline builds (<semver>)."
  type        = string
}

variable "executor_ami_id" {
  description = "The AMI of the executor release deployed (the pipeline's output, tagged coderun:release = executor-v<semver>)."
  type        = string
}

variable "executor_parent_image" {
  description = "The Image Builder parent image: ARM64 Debian 12."
  type        = string
}

variable "executor_instance_type" {
  description = "Graviton instance type of the executors."
  type        = string
}

variable "executor_slots" {
  description = "Runs at once per executor."
  type        = number
}

variable "executor_min" {
  description = "Executors always running."
  type        = number
}

variable "executor_max" {
  description = "The most executors the backlog may scale to."
  type        = number
}

variable "nats_ami_id" {
  description = "ARM64 AMI of the NATS servers."
  type        = string
}

variable "nats_instance_type" {
  description = "Graviton instance type of the NATS servers."
  type        = string
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "gateway_count" {
  description = "Gateway tasks."
  type        = number
}

variable "scheduler_count" {
  description = "Scheduler tasks: two, one active at a time (leader lease), the other ready to take over."
  type        = number
  default     = 2
}

variable "certificate_arn" {
  description = "ACM certificate of the API's host name."
  type        = string
}

variable "artifacts_bucket" {
  description = "The bucket release builds are uploaded to (executor AMI inputs)."
  type        = string
}

variable "access_logs_bucket" {
  description = "The bucket of the load balancer's access logs."
  type        = string
}

variable "log_retention_days" {
  description = "How long every log group is kept: at least a year, so an incident can be traced back."
  type        = number
  validation {
    condition     = var.log_retention_days >= 365
    error_message = "Logs are kept at least 365 days."
  }
}

variable "cloudwatch_agent_image" {
  description = "The CloudWatch agent image beside the scheduler (its backlog metric for scaling)."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300051.0b992"
}
