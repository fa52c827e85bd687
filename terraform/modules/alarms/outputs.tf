output "topic_arn" {
  description = "Subscribe the on-call's pager here."
  value       = aws_sns_topic.alarms.arn
}
