output "endpoint" {
  description = "The Grafana workspace's address."
  value       = aws_grafana_workspace.this.endpoint
}
