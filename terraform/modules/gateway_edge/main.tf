# The public edge: an application load balancer in the public subnets, HTTPS only (plain HTTP
# is redirected), in front of the gateway tasks; a web ACL with AWS's managed common rules and a
# per-address rate limit. The gateway itself still authenticates and rate-limits per tenant.

resource "aws_security_group" "edge" {
  name        = "coderun-${var.environment}-edge"
  description = "coderun public load balancer"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  #checkov:skip=CKV_AWS_260:the public API is meant to be reached from anywhere; this rule is port 443 only
  security_group_id = aws_security_group.edge.id
  description       = "HTTPS from clients"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "http" {
  #checkov:skip=CKV_AWS_260:port 80 only answers a redirect to HTTPS
  security_group_id = aws_security_group.edge.id
  description       = "HTTP from clients, redirected to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "gateway" {
  security_group_id = aws_security_group.edge.id
  description       = "to the gateway tasks"
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  ip_protocol       = "tcp"
  from_port         = var.gateway_port
  to_port           = var.gateway_port
}

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_lb" "edge" {
  name                       = "coderun-${var.environment}"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.edge.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  # Long polls (wait=true, wait_ms) and event streams stay open up to the gateway's maximum wait.
  idle_timeout = 150
  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "coderun-${var.environment}"
    enabled = true
  }
}

resource "aws_lb_target_group" "gateway" {
  name                 = "coderun-${var.environment}-gateway"
  port                 = var.gateway_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 150
  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.edge.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gateway.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.edge.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_wafv2_web_acl" "edge" {
  name  = "coderun-${var.environment}"
  scope = "REGIONAL"
  default_action {
    allow {}
  }
  rule {
    name     = "aws-common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
        # Source code in a JSON body looks like an attack to these rules; the body is the product.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
        rule_action_override {
          name = "CrossSiteScripting_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "coderun-${var.environment}-aws-common"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "aws-known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "coderun-${var.environment}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }
  # Anonymising services are refused; hosting providers are only counted, because coderun's
  # clients are other companies' servers, which mostly run on such providers.
  rule {
    name     = "aws-anonymous-ip"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "coderun-${var.environment}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "per-address-rate"
    priority = 4
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = 6000
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "coderun-${var.environment}-per-address-rate"
      sampled_requests_enabled   = true
    }
  }
  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "coderun-${var.environment}"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "edge" {
  resource_arn = aws_lb.edge.arn
  web_acl_arn  = aws_wafv2_web_acl.edge.arn
}

# What the web ACL blocked and why, kept like every other log (the name must start
# "aws-waf-logs-").
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-coderun-${var.environment}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "edge" {
  resource_arn            = aws_wafv2_web_acl.edge.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
  # Requests carry API keys; the header is never logged.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
