# What every other part uses: one customer-managed key for logs, secrets, volumes and topics;
# the ECS cluster with Container Insights; one image repository per service; the secrets.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:a key policy's "*" is this key alone, and the account must be able to administer it (AWS's default key policy)
  #checkov:skip=CKV_AWS_111:a key policy's "*" is this key alone; writes are bounded to it
  #checkov:skip=CKV_AWS_356:a key policy's "*" is this key alone
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # In a key policy "*" is this key.
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
  statement {
    sid       = "AutoScalingLaunchesEncryptedVolumes"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"]
    }
  }
  statement {
    sid       = "AlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "coderun" {
  description         = "coderun ${var.environment}: logs, secrets, volumes, topics"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

resource "aws_ecs_cluster" "coderun" {
  name = "coderun-${var.environment}"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecr_repository" "service" {
  for_each             = toset(["gateway", "scheduler", "prober"])
  name                 = "coderun/${each.key}"
  image_tag_mutability = "IMMUTABLE" # a tag is a release: it never points at another image
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.coderun.arn
  }
}

# The gateway's tenants (keys stored hashed) as a TOML file's text: CODERUN_GATEWAY_CONFIG_TOML.
resource "aws_secretsmanager_secret" "gateway_config" {
  #checkov:skip=CKV2_AWS_57:tenant keys are added and revoked by operators (terraform/README.md), not rotated by a function
  name       = "coderun/${var.environment}/gateway-config"
  kms_key_id = aws_kms_key.coderun.arn
}

# The prober's API key (a tenant of its own) and the webhook secret of that tenant.
resource "aws_secretsmanager_secret" "prober_api_key" {
  #checkov:skip=CKV2_AWS_57:rotating the prober's key means changing the gateway's tenants too; a documented operator step
  name       = "coderun/${var.environment}/prober-api-key"
  kms_key_id = aws_kms_key.coderun.arn
}
