# The executors: one executor process per instance, N slots each, in an Auto Scaling group
# scaled on the scheduler's backlog per free slot. An instance to be terminated first waits in
# a lifecycle hook while its drain watcher (deploy/executor/coderun-drain-watch) stops the
# executor, which stops pulling, finishes its runs and exits; then the hook is completed.

# The executors' logs, shipped by the CloudWatch agent on each instance.
resource "aws_cloudwatch_log_group" "executor" {
  name              = "/coderun/${var.environment}/executor"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "executor" {
  name        = "coderun-${var.environment}-executor"
  description = "coderun executors: out to NATS, Redis and AWS APIs; in only for the metrics scrape"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each                     = toset(var.monitor_security_group_ids)
  security_group_id            = aws_security_group.executor.id
  description                  = "executor /metrics from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 9102
  to_port                      = 9102
}

resource "aws_vpc_security_group_egress_rule" "nats" {
  security_group_id            = aws_security_group.executor.id
  description                  = "NATS"
  referenced_security_group_id = var.nats_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 4222
  to_port                      = 4222
}

resource "aws_vpc_security_group_egress_rule" "redis" {
  security_group_id = aws_security_group.executor.id
  description       = "Redis (ElastiCache, inside the VPC)"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
}

resource "aws_vpc_security_group_egress_rule" "aws_apis" {
  security_group_id = aws_security_group.executor.id
  description       = "AWS APIs over HTTPS through NAT: Secrets Manager, CloudWatch, Auto Scaling, SSM"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_launch_template" "executor" {
  name_prefix            = "coderun-${var.environment}-executor-"
  image_id               = var.executor_ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.executor.id]
  ebs_optimized          = true
  update_default_version = true
  iam_instance_profile {
    arn = aws_iam_instance_profile.executor.arn
  }
  metadata_options {
    http_tokens                 = "required"
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1 # containers on the host cannot reach the instance's credentials
    instance_metadata_tags      = "enabled"
  }
  monitoring {
    enabled = true
  }
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      encrypted   = true
      kms_key_id  = var.kms_key_arn
      volume_size = 40
      volume_type = "gp3"
    }
  }
  # What the AMI does not know: where NATS and Redis are and how many slots to run.
  user_data = base64encode(templatefile("${path.module}/executor.env.tftpl", {
    environment          = var.environment
    nats_url             = var.nats_url
    redis_url_secret_arn = var.redis_url_secret_arn
    slots                = var.slots_per_instance
    drain_timeout_secs   = var.drain_timeout_secs
    region               = data.aws_region.current.name
    log_group            = aws_cloudwatch_log_group.executor.name
  }))
  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "coderun-${var.environment}-executor" }
  }
}

resource "aws_autoscaling_group" "executors" {
  name                      = "coderun-${var.environment}-executors"
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.min_size
  max_size                  = var.max_size
  health_check_type         = "EC2"
  health_check_grace_period = 120
  default_instance_warmup   = 120
  launch_template {
    id      = aws_launch_template.executor.id
    version = aws_launch_template.executor.latest_version
  }
  # A new AMI (a release or a rollback) replaces the instances a few at a time, each drained.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 90
      instance_warmup        = 120
    }
  }
  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = var.drain_timeout_secs + 60
    default_result       = "CONTINUE"
  }
  tag {
    key                 = "coderun:service"
    value               = "executor"
    propagate_at_launch = true
  }
}

resource "aws_autoscaling_policy" "backlog_per_free_slot" {
  name                      = "backlog-per-free-slot"
  autoscaling_group_name    = aws_autoscaling_group.executors.name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = 120
  target_tracking_configuration {
    target_value = var.backlog_per_free_slot_target
    customized_metric_specification {
      metric_name = "coderun_backlog_per_free_slot"
      namespace   = "Coderun/Scheduler"
      statistic   = "Maximum"
      metric_dimension {
        name  = "Environment"
        value = var.environment
      }
    }
  }
}
