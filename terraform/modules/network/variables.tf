variable "name" {
  description = "Prefix of every resource's Name tag, e.g. coderun-staging."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range."
  type        = string
}

variable "availability_zones" {
  description = "The zones to spread subnets over: three for production, so Redis, NATS and the executors survive the loss of one."
  type        = list(string)
}

variable "nat_gateway_per_zone" {
  description = "One NAT gateway per zone (production: a zone's loss does not cut the others off), or a single shared one (staging: cheaper)."
  type        = bool
}

variable "kms_key_arn" {
  description = "The key that encrypts the flow logs' log group."
  type        = string
}

variable "log_retention_days" {
  description = "How long the flow logs are kept."
  type        = number
}
