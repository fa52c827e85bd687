output "vpc_id" {
  description = "The VPC every other module places its resources in."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's range: security groups open the services' ports to it alone."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Subnets for the load balancer only."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets for the services, executors, Redis and NATS."
  value       = aws_subnet.private[*].id
}
