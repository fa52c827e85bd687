# Redis holds the run records (with a TTL), the fair queues and the leases. ElastiCache with a
# replica in another zone and automatic failover; TLS and an auth token, encrypted at rest;
# append-only persistence is not offered by ElastiCache, so daily snapshots stand in for it and
# the scheduler's sweeper treats NATS as the other source of truth (see docs/reliability.md).

resource "aws_security_group" "redis" {
  name        = "coderun-${var.environment}-redis"
  description = "coderun Redis: only the services and executors"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "coderun-${var.environment}-redis"
  subnet_ids = var.subnet_ids
}

resource "random_password" "auth" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "url" {
  #checkov:skip=CKV2_AWS_57:ElastiCache cannot rotate its auth token by itself; rotation is an operator step
  name       = "coderun/${var.environment}/redis-url"
  kms_key_id = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "url" {
  secret_id     = aws_secretsmanager_secret.url.id
  secret_string = "rediss://:${random_password.auth.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id       = "coderun-${var.environment}"
  description                = "coderun run records, fair queues and leases"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.redis.name
  security_group_ids         = [aws_security_group.redis.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.auth.result
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  apply_immediately          = false
}
