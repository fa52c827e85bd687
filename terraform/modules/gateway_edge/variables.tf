variable "environment" {
  description = "staging or production: part of every name."
  type        = string
}

variable "vpc_id" {
  description = "The VPC of the load balancer."
  type        = string
}

variable "public_subnet_ids" {
  description = "The public subnets the load balancer listens in."
  type        = list(string)
}

variable "certificate_arn" {
  description = "The ACM certificate of the API's host name."
  type        = string
}

variable "gateway_port" {
  description = "The gateway tasks' HTTP port."
  type        = number
  default     = 8080
}

variable "access_logs_bucket" {
  description = "The bucket the load balancer writes its access logs to."
  type        = string
}

variable "kms_key_arn" {
  description = "The key that encrypts the web ACL's log group."
  type        = string
}

variable "log_retention_days" {
  description = "How long the web ACL's logs are kept."
  type        = number
}
