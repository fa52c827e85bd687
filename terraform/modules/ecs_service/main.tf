# One of the stateless services (gateway, scheduler, prober) on ECS Fargate, ARM64 (Graviton):
# a read-only, non-root container; a deploy that does not become healthy rolls itself back.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  full_name = "coderun-${var.environment}-${var.name}"
  # The repository's ARN, from its URL (<account>.dkr.ecr.<region>.amazonaws.com/<name>).
  repository_arn = "arn:aws:ecr:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:repository/${join("/", slice(split("/", var.image), 1, length(split("/", var.image))))}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/coderun/${var.environment}/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "this" {
  name        = local.full_name
  description = "coderun ${var.name} tasks"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "port" {
  for_each                     = toset(var.ingress_security_group_ids)
  security_group_id            = aws_security_group.this.id
  description                  = "the ${var.name}'s port, from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
}

# Fargate pulls the image, reads the secrets and writes the logs through the task's own
# interface: HTTPS out (through NAT) for every service.
resource "aws_vpc_security_group_egress_rule" "aws_apis" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to ECR, Secrets Manager and CloudWatch Logs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "out" {
  for_each          = toset(var.egress_cidr_blocks)
  security_group_id = aws_security_group.this.id
  description       = "the ${var.name}'s connections to ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 0
  to_port           = 65535
}

resource "aws_ecs_task_definition" "this" {
  family                   = local.full_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "ARM64"
  }
  container_definitions = jsonencode(concat([{
    name                   = var.name
    image                  = "${var.image}:${var.image_tag}"
    essential              = true
    readonlyRootFilesystem = true
    user                   = "10001:10001"
    portMappings           = [{ containerPort = var.port, protocol = "tcp" }]
    environment = [for key, value in merge(var.environment_variables, {
      CODERUN_LOG_FORMAT = "json"
    }) : { name = key, value = value }]
    secrets = [for key, arn in var.secrets : { name = key, valueFrom = arn }]
    healthCheck = {
      command     = ["CMD", "curl", "--fail", "--silent", "--max-time", "2", "http://127.0.0.1:${var.port}${var.health_path}"]
      interval    = 10
      timeout     = 3
      retries     = 3
      startPeriod = 20
    }
    # Only main listens for signals: SIGTERM drains, and ECS waits this long before SIGKILL.
    stopTimeout = 60
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = var.name
      }
    }
  }], var.sidecars))
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = var.cluster_arn
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = false
  }
  dynamic "load_balancer" {
    for_each = var.target_group_arn == null ? [] : [var.target_group_arn]
    content {
      target_group_arn = load_balancer.value
      container_name   = var.name
      container_port   = var.port
    }
  }
}
