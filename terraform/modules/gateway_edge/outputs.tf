output "target_group_arn" {
  description = "The gateway service registers its tasks here."
  value       = aws_lb_target_group.gateway.arn
}

output "security_group_id" {
  description = "The load balancer's group: the gateway admits it."
  value       = aws_security_group.edge.id
}

output "dns_name" {
  description = "Where the API answers (point the host name's record here)."
  value       = aws_lb.edge.dns_name
}

output "arn_suffix" {
  description = "For the load balancer's CloudWatch metrics."
  value       = aws_lb.edge.arn_suffix
}
