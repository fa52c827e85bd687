output "api_host" {
  description = "Point the API's host name here."
  value       = module.coderun.api_host
}

output "alarm_topic_arn" {
  description = "Subscribe the on-call here."
  value       = module.coderun.alarm_topic_arn
}

output "grafana_endpoint" {
  description = "The Grafana workspace."
  value       = module.coderun.grafana_endpoint
}

output "executor_image_pipeline_arn" {
  description = "scripts/deploy.sh <env> executor-v<version> --bake starts it."
  value       = module.coderun.executor_image_pipeline_arn
}

output "executor_autoscaling_group_name" {
  description = "scripts/deploy.sh waits for this group's instance refresh."
  value       = module.coderun.executor_autoscaling_group_name
}
