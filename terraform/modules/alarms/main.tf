# CloudWatch alarms: the same conditions as the Prometheus rules (monitoring/prometheus/rules),
# on the prober's metrics (namespace Coderun/Prober, dimensions Check, Language, Environment)
# and on the services' health as AWS sees it. Every alarm notifies one encrypted SNS topic.

resource "aws_sns_topic" "alarms" {
  name              = "coderun-${var.environment}-alarms"
  kms_master_key_id = var.kms_key_arn
}

locals {
  prober_schema = "SCHEMA(\"Coderun/Prober\", \"Check\", \"Environment\", \"Language\")"
  prober_where  = "WHERE \"Environment\" = '${var.environment}'"
}

# ProbeFailing: a check failed in 3 of the last 5 one-minute rounds. Prometheus keeps one alert
# per check and language; here one alarm covers them all (the worst check of each minute), and
# its notification names none: the prober dashboard shows which.
resource "aws_cloudwatch_metric_alarm" "probe_failing" {
  alarm_name          = "coderun-${var.environment}-ProbeFailing"
  alarm_description   = "A prober check failed in 3 of the last 5 rounds. Runbook: monitoring/README.md#probefailing"
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "ignore"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "worst"
    return_data = true
    expression  = "SELECT MIN(CheckSuccess) FROM ${local.prober_schema} ${local.prober_where}"
    period      = 60
  }
}

# ProbeSlow: a passing check over its objective for 5 minutes (CheckWithinObjective is 0 when
# slow or failed, so a failing check also counts here; ProbeFailing pages for it first).
resource "aws_cloudwatch_metric_alarm" "probe_slow" {
  alarm_name          = "coderun-${var.environment}-ProbeSlow"
  alarm_description   = "A prober check has been slower than its objective for 5 minutes. Runbook: monitoring/README.md#probeslow"
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "ignore"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "slowest"
    return_data = true
    expression  = "SELECT MIN(CheckWithinObjective) FROM ${local.prober_schema} ${local.prober_where}"
    period      = 60
  }
}

# ProberSilent: no round published for more than 5 minutes; missing data is the alarm.
resource "aws_cloudwatch_metric_alarm" "prober_silent" {
  alarm_name          = "coderun-${var.environment}-ProberSilent"
  alarm_description   = "The prober has published no round for 7 minutes: nothing checks coderun from the outside. Runbook: monitoring/README.md#probersilent"
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  evaluation_periods  = 7
  datapoints_to_alarm = 7
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "rounds"
    return_data = true
    expression  = "SELECT COUNT(RoundFailures) FROM SCHEMA(\"Coderun/Prober\", \"Environment\") ${local.prober_where}"
    period      = 60
  }
}

# NoLiveExecutor: every hello_world check failing for 2 minutes.
resource "aws_cloudwatch_metric_alarm" "no_live_executor" {
  alarm_name          = "coderun-${var.environment}-NoLiveExecutor"
  alarm_description   = "The prober's hello_world checks have all failed for 2 minutes: no executor seems to serve. Runbook: monitoring/README.md#noliveexecutor"
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  treat_missing_data  = "ignore"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "hello"
    return_data = true
    expression  = "SELECT MAX(CheckSuccess) FROM ${local.prober_schema} ${local.prober_where} AND \"Check\" = 'hello_world'"
    period      = 60
  }
}

# A service running fewer tasks than it should for 3 minutes (Container Insights).
resource "aws_cloudwatch_metric_alarm" "service_tasks" {
  for_each            = var.ecs_services
  alarm_name          = "coderun-${var.environment}-${each.key}-TasksMissing"
  alarm_description   = "The ${each.key} service has run fewer than ${each.value} tasks for 3 minutes."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = var.ecs_cluster_name, ServiceName = each.key }
  statistic           = "Minimum"
  period              = 60
  comparison_operator = "LessThanThreshold"
  threshold           = each.value
  evaluation_periods  = 3
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ExecutorDown: fewer executors in service than the group's minimum for 3 minutes.
resource "aws_cloudwatch_metric_alarm" "executors_in_service" {
  alarm_name          = "coderun-${var.environment}-ExecutorDown"
  alarm_description   = "Fewer than ${var.executor_min_instances} executors in service for 3 minutes. Runbook: monitoring/README.md#executordown"
  namespace           = "AWS/AutoScaling"
  metric_name         = "GroupInServiceInstances"
  dimensions          = { AutoScalingGroupName = var.executor_autoscaling_group }
  statistic           = "Minimum"
  period              = 60
  comparison_operator = "LessThanThreshold"
  threshold           = var.executor_min_instances
  evaluation_periods  = 3
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# GatewayErrors: the gateway answering 5xx to more than 1 % of requests for 5 minutes.
resource "aws_cloudwatch_metric_alarm" "gateway_errors" {
  alarm_name          = "coderun-${var.environment}-GatewayErrors"
  alarm_description   = "More than 1 % of the API's answers were 5xx for 5 minutes. Runbook: monitoring/README.md#gatewayerrors"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  metric_query {
    id          = "share"
    return_data = true
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx %"
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.load_balancer_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }
  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.load_balancer_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }
}
