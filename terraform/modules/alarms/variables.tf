variable "environment" {
  description = "staging or production: the prober's Environment dimension and part of every name."
  type        = string
}

variable "kms_key_arn" {
  description = "The key that encrypts the alarm topic."
  type        = string
}

variable "ecs_cluster_name" {
  description = "The cluster of the gateway, scheduler and prober services."
  type        = string
}

variable "ecs_services" {
  description = "Service name to the number of tasks it must keep running."
  type        = map(number)
}

variable "executor_autoscaling_group" {
  description = "The executors' Auto Scaling group."
  type        = string
}

variable "executor_min_instances" {
  description = "Fewer executors in service than this is an alarm."
  type        = number
}

variable "load_balancer_arn_suffix" {
  description = "The public load balancer, for the gateway's 5xx answers."
  type        = string
}
