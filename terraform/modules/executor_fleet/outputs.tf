output "security_group_id" {
  description = "The executors' security group: NATS and Redis admit it."
  value       = aws_security_group.executor.id
}

output "autoscaling_group_name" {
  description = "The executors' group, for alarms on in-service instances."
  value       = aws_autoscaling_group.executors.name
}

output "image_pipeline_arn" {
  description = "The pipeline that builds an executor release's AMI."
  value       = aws_imagebuilder_image_pipeline.executor.arn
}
