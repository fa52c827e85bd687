output "url" {
  description = "All three servers, comma-separated: CODERUN_<SERVICE>__BUS__URL."
  value       = join(",", [for address in local.addresses : "nats://${address}:4222"])
}

output "security_group_id" {
  description = "The servers' security group."
  value       = aws_security_group.nats.id
}
