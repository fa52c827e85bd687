variable "name" {
  description = "The service's name: gateway, scheduler or prober."
  type        = string
}

variable "environment" {
  description = "staging or production: part of every name."
  type        = string
}

variable "cluster_arn" {
  description = "The ECS cluster (Container Insights on) the service runs in."
  type        = string
}

variable "image" {
  description = "The service's image without its tag (an ECR repository URL)."
  type        = string
}

variable "image_tag" {
  description = "The release deployed: <service>-v<semver>. A deploy, and a rollback, is a change of this value alone."
  type        = string
}

variable "cpu" {
  description = "Fargate CPU units of one task."
  type        = number
}

variable "memory" {
  description = "Fargate memory of one task in MiB."
  type        = number
}

variable "desired_count" {
  description = "Tasks to run."
  type        = number
}

variable "port" {
  description = "The port the service listens on (HTTP API for the gateway, /metrics and health for the others)."
  type        = number
}

variable "health_path" {
  description = "The liveness path the container health check asks for."
  type        = string
  default     = "/healthz"
}

variable "environment_variables" {
  description = "CODERUN_<SERVICE>__SECTION__KEY settings (not secret)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Variable name to Secrets Manager secret ARN, injected by ECS at start."
  type        = map(string)
  default     = {}
}

variable "task_policy_json" {
  description = "What the service's own code may do in AWS: least privilege, one policy per service."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "The VPC of the service's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "ingress_security_group_ids" {
  description = "Security groups allowed to reach the service's port (the load balancer, Prometheus)."
  type        = list(string)
  default     = []
}

variable "egress_cidr_blocks" {
  description = "Where the tasks may connect: the VPC (NATS, Redis, the gateway) and, for the prober and webhooks, the internet through NAT."
  type        = list(string)
}

variable "target_group_arn" {
  description = "The load balancer's target group, for the gateway; null for the others."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "The key that encrypts the service's log group."
  type        = string
}

variable "log_retention_days" {
  description = "How long the service's logs are kept."
  type        = number
}

variable "sidecars" {
  description = "More containers in each task (ECS container definitions), e.g. the scheduler's CloudWatch agent."
  type        = list(any)
  default     = []
}
