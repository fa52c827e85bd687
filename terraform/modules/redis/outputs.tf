output "url_secret_arn" {
  description = "The secret holding the rediss:// URL with its token: CODERUN_<SERVICE>__STORE__URL."
  value       = aws_secretsmanager_secret.url.arn
}
