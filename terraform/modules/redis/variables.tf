variable "environment" {
  description = "staging or production: part of every name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of Redis's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone: the replica sits in another zone than the primary."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "The security groups of the services and executors: the only clients."
  type        = list(string)
}

variable "node_type" {
  description = "The cache node type (Graviton, e.g. cache.t4g.small)."
  type        = string
}

variable "replicas" {
  description = "Replicas besides the primary: at least one, so a failover has somewhere to go."
  type        = number
  validation {
    condition     = var.replicas >= 1
    error_message = "Failover needs at least one replica."
  }
}

variable "kms_key_arn" {
  description = "The key that encrypts the data at rest, the snapshots and the auth token's secret."
  type        = string
}
