# The whole of one coderun environment.

module "network" {
  source               = "../network"
  name                 = "coderun-${var.environment}"
  cidr_block           = var.vpc_cidr_block
  availability_zones   = var.availability_zones
  nat_gateway_per_zone = var.nat_gateway_per_zone
  kms_key_arn          = aws_kms_key.coderun.arn
  log_retention_days   = var.log_retention_days
}

module "edge" {
  source             = "../gateway_edge"
  environment        = var.environment
  vpc_id             = module.network.vpc_id
  public_subnet_ids  = module.network.public_subnet_ids
  certificate_arn    = var.certificate_arn
  access_logs_bucket = var.access_logs_bucket
  kms_key_arn        = aws_kms_key.coderun.arn
  log_retention_days = var.log_retention_days
}

module "redis" {
  source      = "../redis"
  environment = var.environment
  vpc_id      = module.network.vpc_id
  subnet_ids  = module.network.private_subnet_ids
  node_type   = var.redis_node_type
  replicas    = 1
  kms_key_arn = aws_kms_key.coderun.arn
  client_security_group_ids = [
    module.gateway.security_group_id,
    module.scheduler.security_group_id,
    module.executors.security_group_id,
  ]
}

module "nats" {
  source        = "../nats"
  environment   = var.environment
  vpc_id        = module.network.vpc_id
  subnet_ids    = slice(module.network.private_subnet_ids, 0, 3)
  ami_id        = var.nats_ami_id
  instance_type = var.nats_instance_type
  kms_key_arn   = aws_kms_key.coderun.arn
  client_security_group_ids = [
    module.gateway.security_group_id,
    module.scheduler.security_group_id,
    module.executors.security_group_id,
  ]
}

locals {
  ecr        = { for name, repository in aws_ecr_repository.service : name => repository.repository_url }
  in_the_vpc = [module.network.vpc_cidr_block]
  # NATS and Redis for every service that holds runs.
  shared_settings = {
    BUS__URL             = module.nats.url
    BUS__STREAM_REPLICAS = "3"
  }
  settings = { for service in ["GATEWAY", "SCHEDULER"] : service => {
    for key, value in local.shared_settings : "CODERUN_${service}__${key}" => value
  } }
}

module "gateway" {
  source                     = "../ecs_service"
  name                       = "gateway"
  environment                = var.environment
  cluster_arn                = aws_ecs_cluster.coderun.arn
  image                      = local.ecr["gateway"]
  image_tag                  = var.image_tags.gateway
  cpu                        = 512
  memory                     = 1024
  desired_count              = var.gateway_count
  port                       = 8080
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  ingress_security_group_ids = [module.edge.security_group_id]
  egress_cidr_blocks         = local.in_the_vpc
  target_group_arn           = module.edge.target_group_arn
  kms_key_arn                = aws_kms_key.coderun.arn
  log_retention_days         = var.log_retention_days
  environment_variables      = merge(local.settings["GATEWAY"], { CODERUN_GATEWAY__HTTP__HOST = "0.0.0.0" })
  secrets = {
    CODERUN_GATEWAY__STORE__URL  = module.redis.url_secret_arn
    CODERUN_GATEWAY_CONFIG_TOML = aws_secretsmanager_secret.gateway_config.arn
  }
}

# The scheduler posts webhooks to clients' URLs: the only service with egress to the internet.
module "scheduler" {
  source             = "../ecs_service"
  name               = "scheduler"
  environment        = var.environment
  cluster_arn        = aws_ecs_cluster.coderun.arn
  image              = local.ecr["scheduler"]
  image_tag          = var.image_tags.scheduler
  cpu                = 512
  memory             = 1024
  desired_count      = var.scheduler_count
  port               = 9101
  vpc_id             = module.network.vpc_id
  subnet_ids         = module.network.private_subnet_ids
  egress_cidr_blocks = ["0.0.0.0/0"]
  kms_key_arn        = aws_kms_key.coderun.arn
  log_retention_days = var.log_retention_days
  environment_variables = merge(local.settings["SCHEDULER"], {
    CODERUN_SCHEDULER__OPS__HOST = "0.0.0.0"
  })
  secrets = {
    CODERUN_SCHEDULER__STORE__URL = module.redis.url_secret_arn
  }
  task_policy_json = data.aws_iam_policy_document.scheduler.json
  sidecars         = [local.cloudwatch_agent]
}

# The scheduler's backlog per free slot reaches CloudWatch (Coderun/Scheduler, dimension
# Environment), where the executors' scaling policy reads it: a CloudWatch agent beside the
# scheduler scrapes its /metrics and writes the gauge as embedded metric format log events.
locals {
  backlog_log_group = "/coderun/${var.environment}/scheduler-backlog"
  cloudwatch_agent = {
    name      = "cloudwatch-agent"
    image     = var.cloudwatch_agent_image
    essential = false
    user      = "10001:10001"
    environment = [
      {
        name = "PROMETHEUS_CONFIG_CONTENT"
        value = yamlencode({
          global = { scrape_interval = "15s" }
          scrape_configs = [{
            job_name        = "coderun-scheduler"
            static_configs  = [{ targets = ["127.0.0.1:9101"], labels = { Environment = var.environment } }]
            metric_relabel_configs = [{ source_labels = ["__name__"], regex = "coderun_backlog_per_free_slot", action = "keep" }]
          }]
        })
      },
      {
        name = "CW_CONFIG_CONTENT"
        value = jsonencode({
          logs = {
            metrics_collected = {
              prometheus = {
                log_group_name          = local.backlog_log_group
                prometheus_config_path  = "env:PROMETHEUS_CONFIG_CONTENT"
                emf_processor = {
                  metric_namespace = "Coderun/Scheduler"
                  metric_declaration = [{
                    source_labels     = ["job"]
                    label_matcher     = "^coderun-scheduler$"
                    dimensions        = [["Environment"]]
                    metric_selectors  = ["^coderun_backlog_per_free_slot$"]
                  }]
                  metric_unit = { coderun_backlog_per_free_slot = "None" }
                }
              }
            }
          }
        })
      },
    ]
  }
}

resource "aws_cloudwatch_log_group" "scheduler_backlog" {
  name              = local.backlog_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.coderun.arn
}

# The agent writes its metric events to its own log group, and nothing else.
data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.scheduler_backlog.arn}:*"]
  }
}

# The prober calls the public API through the load balancer like any client, and may do one
# thing in AWS: put its metrics in its namespace.
module "prober" {
  source             = "../ecs_service"
  name               = "prober"
  environment        = var.environment
  cluster_arn        = aws_ecs_cluster.coderun.arn
  image              = local.ecr["prober"]
  image_tag          = var.image_tags.prober
  cpu                = 256
  memory             = 512
  desired_count      = 1
  port               = 9103
  vpc_id             = module.network.vpc_id
  subnet_ids         = module.network.private_subnet_ids
  egress_cidr_blocks = ["0.0.0.0/0"]
  kms_key_arn        = aws_kms_key.coderun.arn
  log_retention_days = var.log_retention_days
  environment_variables = {
    CODERUN_PROBER__TARGET__BASE_URL       = "https://${module.edge.dns_name}"
    CODERUN_PROBER__OPS__HOST              = "0.0.0.0"
    CODERUN_PROBER__CLOUDWATCH__ENABLED    = "true"
    CODERUN_PROBER__CLOUDWATCH__NAMESPACE  = "Coderun/Prober"
    CODERUN_PROBER__CLOUDWATCH__ENVIRONMENT = var.environment
    CODERUN_PROBER__CLOUDWATCH__REGION     = data.aws_region.current.name
  }
  secrets = {
    CODERUN_PROBER__TARGET__API_KEY = aws_secretsmanager_secret.prober_api_key.arn
  }
  task_policy_json = data.aws_iam_policy_document.prober.json
}

data "aws_iam_policy_document" "prober" {
  statement {
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resources; the namespace condition bounds it.
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Coderun/Prober"]
    }
  }
}

module "executors" {
  source                 = "../executor_fleet"
  environment            = var.environment
  vpc_id                 = module.network.vpc_id
  subnet_ids             = module.network.private_subnet_ids
  executor_ami_id        = var.executor_ami_id
  executor_version       = var.executor_version
  log_retention_days     = var.log_retention_days
  parent_image           = var.executor_parent_image
  instance_type          = var.executor_instance_type
  slots_per_instance     = var.executor_slots
  min_size               = var.executor_min
  max_size               = var.executor_max
  artifacts_bucket       = var.artifacts_bucket
  nats_url               = module.nats.url
  nats_security_group_id = module.nats.security_group_id
  redis_url_secret_arn   = module.redis.url_secret_arn
  kms_key_arn            = aws_kms_key.coderun.arn
}

module "alarms" {
  source                     = "../alarms"
  environment                = var.environment
  kms_key_arn                = aws_kms_key.coderun.arn
  ecs_cluster_name           = aws_ecs_cluster.coderun.name
  ecs_services               = { gateway = var.gateway_count, scheduler = var.scheduler_count, prober = 1 }
  executor_autoscaling_group = module.executors.autoscaling_group_name
  executor_min_instances     = var.executor_min
  load_balancer_arn_suffix   = module.edge.arn_suffix
}

module "grafana" {
  source      = "../grafana"
  environment = var.environment
}
