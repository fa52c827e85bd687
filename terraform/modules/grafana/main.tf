# Amazon Managed Grafana, reading CloudWatch (the prober's metrics, the services' health) with a
# role that may only read metrics and logs. The committed dashboards
# (monitoring/grafana/cloudwatch/prober-cloudwatch.json and the Prometheus ones) are imported
# into it; sign-in is through IAM Identity Center.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["grafana.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "grafana" {
  name               = "coderun-${var.environment}-grafana"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "read_metrics" {
  #checkov:skip=CKV_AWS_356:CloudWatch's read actions (ListMetrics, GetMetricData, DescribeAlarms) have no resource-level permissions
  statement {
    sid = "ReadMetrics"
    actions = [
      "cloudwatch:DescribeAlarmsForMetric",
      "cloudwatch:DescribeAlarmHistory",
      "cloudwatch:DescribeAlarms",
      "cloudwatch:ListMetrics",
      "cloudwatch:GetMetricData",
      "cloudwatch:GetInsightRuleReport",
    ]
    resources = ["*"] # CloudWatch's read actions have no resource-level permissions.
  }
}

resource "aws_iam_role_policy" "grafana" {
  role   = aws_iam_role.grafana.id
  policy = data.aws_iam_policy_document.read_metrics.json
}

resource "aws_grafana_workspace" "this" {
  name                     = "coderun-${var.environment}"
  account_access_type      = "CURRENT_ACCOUNT"
  authentication_providers = ["AWS_SSO"]
  permission_type          = "CUSTOMER_MANAGED"
  role_arn                 = aws_iam_role.grafana.arn
  data_sources             = ["CLOUDWATCH", "PROMETHEUS"]
}
