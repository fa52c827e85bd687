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
