output "security_group_id" {
  description = "The tasks' security group: Redis and NATS admit it by id."
  value       = aws_security_group.this.id
}

output "task_role_arn" {
  description = "The role the service's code runs as."
  value       = aws_iam_role.task.arn
}

output "service_name" {
  description = "The ECS service's name, for alarms on its running task count."
  value       = aws_ecs_service.this.name
}
