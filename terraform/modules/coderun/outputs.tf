output "api_host" {
  description = "The load balancer's DNS name: point the API's host name here."
  value       = module.edge.dns_name
}

output "alarm_topic_arn" {
  description = "The topic every alarm notifies."
  value       = module.alarms.topic_arn
}

output "grafana_endpoint" {
  description = "The Grafana workspace."
  value       = module.grafana.endpoint
}

output "executor_image_pipeline_arn" {
  description = "Start it to build an executor release's AMI."
  value       = module.executors.image_pipeline_arn
}

output "image_repositories" {
  description = "Where each ECS service's release images are pushed."
  value       = local.ecr
}

output "executor_autoscaling_group_name" {
  description = "The executors' group: an executor deploy waits for its instance refresh."
  value       = module.executors.autoscaling_group_name
}
