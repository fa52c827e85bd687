//! The Terraform code has the shape the deployment promises (terraform/README.md), read by
//! python-hcl2: what each environment holds, how each service is deployed, who may do what.

use coderun_infra_tests::{attribute, repository, text, TerraformModule};

#[test]
fn each_environment_keeps_remote_locked_state_tags_and_one_image_tag_per_service() {
    for environment in ["staging", "production"] {
        let module = TerraformModule::load(&format!("envs/{environment}"));
        let backend = module.find("terraform", "backend");
        let s3 = backend
            .iter()
            .find_map(|backend| attribute(backend, &["s3"]))
            .unwrap_or_else(|| panic!("{environment}: no S3 backend"));
        assert_eq!(
            attribute(s3, &["encrypt"]),
            Some(&true.into()),
            "{environment}"
        );
        assert!(
            !text(attribute(s3, &["dynamodb_table"])).is_empty(),
            "{environment}: no lock table"
        );
        assert!(text(attribute(s3, &["key"])).starts_with(environment));
        let provider = module.find("provider", "aws");
        let tags = attribute(provider[0], &["default_tags", "tags"]).expect("default tags");
        assert_eq!(text(tags.get("Environment")), environment);
        let image_tags = module.find("variable", "image_tags");
        let shape = text(attribute(image_tags[0], &["type"]));
        for service in ["gateway", "scheduler", "prober"] {
            assert!(
                shape.contains(service),
                "{environment}: no image tag variable for {service}"
            );
        }
        let coderun = module.find("module", "coderun");
        assert_eq!(text(attribute(coderun[0], &["environment"])), environment);
        assert_eq!(
            text(attribute(coderun[0], &["image_tags"])),
            "${var.image_tags}"
        );
        let releases = std::fs::read_to_string(
            repository().join(format!("terraform/envs/{environment}/releases.auto.tfvars")),
        )
        .expect("releases.auto.tfvars");
        for service in ["gateway", "scheduler", "prober"] {
            assert!(
                releases.contains(&format!("\"{service}-v")),
                "{environment}: {service}"
            );
        }
    }
    let production = TerraformModule::load("envs/production");
    let coderun = production.find("module", "coderun");
    assert_eq!(
        attribute(coderun[0], &["nat_gateway_per_zone"]),
        Some(&true.into())
    );
}

#[test]
fn the_stateless_services_run_on_ecs_arm_with_container_insights_and_their_own_release() {
    let stack = TerraformModule::load("modules/coderun");
    let cluster = stack.resource("aws_ecs_cluster", "coderun");
    assert_eq!(
        text(attribute(cluster, &["setting", "name"])),
        "containerInsights"
    );
    assert_eq!(text(attribute(cluster, &["setting", "value"])), "enabled");
    for service in ["gateway", "scheduler", "prober"] {
        let module = stack.find("module", service);
        let module = module
            .first()
            .unwrap_or_else(|| panic!("no module {service}"));
        assert_eq!(text(attribute(module, &["source"])), "../ecs_service");
        assert_eq!(
            text(attribute(module, &["image_tag"])),
            format!("${{var.image_tags.{service}}}"),
            "{service} is deployed by its own image tag"
        );
    }
    let service = TerraformModule::load("modules/ecs_service");
    let task = service.resource("aws_ecs_task_definition", "this");
    assert_eq!(
        text(attribute(task, &["runtime_platform", "cpu_architecture"])),
        "ARM64"
    );
    assert!(text(attribute(task, &["requires_compatibilities"])).contains("FARGATE"));
    let containers = text(attribute(task, &["container_definitions"]));
    assert!(
        containers.contains("\"readonlyRootFilesystem\": true"),
        "{containers}"
    );
    assert!(containers.contains("\"user\": \"10001:10001\""), "non-root");
    let ecs = service.resource("aws_ecs_service", "this");
    assert_eq!(
        attribute(ecs, &["deployment_circuit_breaker", "rollback"]),
        Some(&true.into()),
        "a deploy that never becomes healthy rolls itself back"
    );
}

#[test]
fn executors_come_from_an_image_pipeline_scale_on_backlog_and_drain_before_termination() {
    let fleet = TerraformModule::load("modules/executor_fleet");
    fleet.resource("aws_imagebuilder_image_pipeline", "executor");
    let component = text(attribute(
        fleet.resource("aws_imagebuilder_component", "executor"),
        &["data"],
    ));
    assert!(
        component.contains("provision.sh") && component.contains("--cloud aws"),
        "the AMI runs the shared provisioning script: {component}"
    );
    let recipe = text(Some(
        fleet.resource("aws_imagebuilder_image_recipe", "executor"),
    ));
    assert!(
        recipe.contains("amazon-cloudwatch-agent-linux"),
        "the CloudWatch agent is baked in"
    );
    let group = fleet.resource("aws_autoscaling_group", "executors");
    let hook = attribute(group, &["initial_lifecycle_hook"]).expect("a lifecycle hook");
    assert_eq!(
        text(attribute(hook, &["lifecycle_transition"])),
        "autoscaling:EC2_INSTANCE_TERMINATING"
    );
    assert_eq!(text(attribute(hook, &["name"])), "drain");
    let drain = std::fs::read_to_string(repository().join("deploy/executor/drain-watch.sh"))
        .expect("the drain watcher");
    assert!(drain.contains("--lifecycle-hook-name drain") && drain.contains("systemctl stop"));
    let policy = fleet.resource("aws_autoscaling_policy", "backlog_per_free_slot");
    assert_eq!(
        text(attribute(policy, &["policy_type"])),
        "TargetTrackingScaling"
    );
    let metric = attribute(
        policy,
        &[
            "target_tracking_configuration",
            "customized_metric_specification",
        ],
    )
    .expect("a custom metric");
    assert_eq!(
        text(attribute(metric, &["metric_name"])),
        "coderun_backlog_per_free_slot"
    );
    let template = fleet.resource("aws_launch_template", "executor");
    assert_eq!(
        text(attribute(template, &["metadata_options", "http_tokens"])),
        "required"
    );
    let user_data = std::fs::read_to_string(
        repository().join("terraform/modules/executor_fleet/executor.env.tftpl"),
    )
    .expect("user data");
    assert!(
        !user_data.contains("WORKER__SLOTS=1\n") && user_data.contains("WORKER__SLOTS=${slots}"),
        "one executor process per instance with its slots"
    );
}

#[test]
fn redis_fails_over_and_nats_is_a_three_server_jetstream_cluster_that_syncs_every_write() {
    let redis = TerraformModule::load("modules/redis");
    let group = redis.resource("aws_elasticache_replication_group", "redis");
    for flag in [
        "automatic_failover_enabled",
        "multi_az_enabled",
        "transit_encryption_enabled",
        "at_rest_encryption_enabled",
    ] {
        assert_eq!(attribute(group, &[flag]), Some(&true.into()), "{flag}");
    }
    let nats = TerraformModule::load("modules/nats");
    let server = nats.resource("aws_instance", "server");
    assert_eq!(attribute(server, &["count"]), Some(&3.into()));
    assert!(text(attribute(server, &["user_data"])).contains("deploy/nats/production.conf"));
    let config = std::fs::read_to_string(repository().join("deploy/nats/production.conf"))
        .expect("the production NATS configuration");
    assert!(config.contains("sync_interval: always"));
}

#[test]
fn alarms_follow_the_prometheus_rules_and_grafana_is_managed() {
    let rules =
        std::fs::read_to_string(repository().join("monitoring/prometheus/rules/coderun.yml"))
            .expect("the Prometheus rules");
    let alarms = TerraformModule::load("modules/alarms");
    let names: Vec<String> = alarms
        .find("resource", "aws_cloudwatch_metric_alarm")
        .iter()
        .flat_map(|alarms| alarms.as_object().into_iter().flat_map(|map| map.values()))
        .map(|alarm| text(attribute(alarm, &["alarm_name"])))
        .collect();
    for alert in [
        "ProbeFailing",
        "ProbeSlow",
        "ProberSilent",
        "NoLiveExecutor",
        "ExecutorDown",
        "GatewayErrors",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}")),
            "{alert} is a Prometheus rule"
        );
        assert!(
            names
                .iter()
                .any(|name| name.ends_with(&format!("-{alert}"))),
            "no CloudWatch alarm for {alert}: {names:?}"
        );
    }
    let probe_failing = alarms.resource("aws_cloudwatch_metric_alarm", "probe_failing");
    assert_eq!(
        attribute(probe_failing, &["evaluation_periods"]),
        Some(&5.into())
    );
    assert_eq!(
        attribute(probe_failing, &["datapoints_to_alarm"]),
        Some(&3.into())
    );
    let query = text(attribute(probe_failing, &["metric_query", "expression"]));
    assert!(
        query.contains("MIN(CheckSuccess)") && query.contains("prober_schema"),
        "{query}"
    );
    let locals = alarms.find("locals", "prober_schema");
    assert!(
        text(locals.first().copied()).contains("Coderun/Prober"),
        "{locals:?}"
    );
    let grafana = TerraformModule::load("modules/grafana");
    grafana.resource("aws_grafana_workspace", "this");
}

#[test]
fn each_service_may_do_only_its_own_work_in_aws() {
    let stack = TerraformModule::load("modules/coderun");
    let prober = stack.find("data", "aws_iam_policy_document");
    let prober = prober
        .iter()
        .find_map(|documents| documents.get("prober"))
        .expect("the prober's policy");
    let statements = attribute(prober, &["statement"]).expect("statements");
    let statements = statements.as_array().map_or(1, Vec::len);
    assert_eq!(statements, 1, "the prober has one permission");
    assert_eq!(
        text(attribute(prober, &["statement", "actions"])),
        "[\"cloudwatch:PutMetricData\"]"
    );
    assert_eq!(
        text(attribute(prober, &["statement", "condition", "values"])),
        "[\"Coderun/Prober\"]",
        "and only in its namespace"
    );
    let gateway = stack.find("module", "gateway");
    assert!(
        attribute(gateway[0], &["task_policy_json"]).is_none(),
        "the gateway's code has no AWS permission at all"
    );
}
