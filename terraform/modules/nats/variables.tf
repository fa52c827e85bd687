variable "environment" {
  description = "staging or production: part of every name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the NATS servers' security group."
  type        = string
}

variable "subnet_ids" {
  description = "Three private subnets in three zones: one server in each."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "A JetStream cluster here is three servers, one per zone."
  }
}

variable "client_security_group_ids" {
  description = "The security groups of the services and executors: the only clients."
  type        = list(string)
}

variable "monitor_security_group_ids" {
  description = "Security groups allowed to read the monitoring port (8222): Prometheus."
  type        = list(string)
  default     = []
}

variable "instance_type" {
  description = "The servers' instance type (Graviton, e.g. t4g.medium)."
  type        = string
}

variable "ami_id" {
  description = "An ARM64 AMI with Docker (Amazon Linux 2023 or Debian 12)."
  type        = string
}

variable "nats_image" {
  description = "The nats-server image: 2.10.23 or later (earlier 2.10 releases could lose whole streams after a crash)."
  type        = string
  default     = "nats:2.10.29"
}

variable "data_volume_gb" {
  description = "The JetStream store's volume per server."
  type        = number
  default     = 50
}

variable "kms_key_arn" {
  description = "The key that encrypts the servers' volumes."
  type        = string
}
