variable "environment" {
  description = "staging or production: part of every name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the executors' security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the executors (and the image builds) run in."
  type        = list(string)
}

variable "executor_ami_id" {
  description = "The AMI the pipeline built for the executor release deployed (tagged coderun:release = executor-v<semver>). A deploy, and a rollback, is a change of this value alone."
  type        = string
}

variable "parent_image" {
  description = "The Image Builder parent: an ARM64 Debian 12 AMI (its SSM parameter or id)."
  type        = string
}

variable "instance_type" {
  description = "The executors' instance type (Graviton, e.g. c7g.xlarge)."
  type        = string
}

variable "slots_per_instance" {
  description = "Runs at once per executor (CODERUN_EXECUTOR__WORKER__SLOTS): about one per vCPU."
  type        = number
}

variable "min_size" {
  description = "Executors always running."
  type        = number
}

variable "max_size" {
  description = "The most executors the backlog may scale to."
  type        = number
}

variable "backlog_per_free_slot_target" {
  description = "The scaling target: runs waiting per free slot (Coderun/Scheduler coderun_backlog_per_free_slot, as the scheduler's CloudWatch agent writes it)."
  type        = number
  default     = 1
}

variable "drain_timeout_secs" {
  description = "How long an executor may finish its runs when its instance is to be terminated (CODERUN_EXECUTOR__WORKER__DRAIN_TIMEOUT_SECS)."
  type        = number
  default     = 60
  validation {
    # systemd kills the unit 120 s after the stop (TimeoutStopSec in
    # deploy/executor/coderun-executor.service): a longer drain would be cut short.
    condition     = var.drain_timeout_secs >= 10 && var.drain_timeout_secs <= 110
    error_message = "The drain must fit in the unit's 120 s stop timeout: 10 to 110 s, or raise both."
  }
}

variable "artifacts_bucket" {
  description = "The bucket the release workflow uploads executor builds to (executor/<version>/: the executor, the agent, the language images)."
  type        = string
}

variable "executor_version" {
  description = "The executor release the pipeline builds an AMI of (<semver>, no prefix)."
  type        = string
}

variable "nats_url" {
  description = "The NATS servers, comma-separated."
  type        = string
}

variable "nats_security_group_id" {
  description = "The NATS servers' security group (the executors connect to it)."
  type        = string
}

variable "redis_url_secret_arn" {
  description = "The secret holding Redis's URL."
  type        = string
}

variable "monitor_security_group_ids" {
  description = "Security groups allowed to scrape the executor's /metrics (9102)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "The key that encrypts the volumes and the lifecycle topic."
  type        = string
}

variable "log_retention_days" {
  description = "How long the executors' logs are kept."
  type        = number
}
