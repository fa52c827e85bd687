//! The agent refuses to run anything without exactly its privileges: a container given an
//! extra capability, another user, or a missing one answers an error and runs nothing, in
//! every sandbox mode.

use std::time::Duration;

use coderun_e2e::sandbox_modes;
use coderun_executor::container::{container_key, SandboxSpec};
use coderun_executor::sandbox::Sandbox;
use coderun_schema::agent::{AgentCommand, AgentFile, AgentJob};
use coderun_schema::bytes64::Bytes64;
use coderun_schema::catalog::Catalog;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_to_run_without_exactly_its_privileges() {
    let catalog = Catalog::builtin();
    let bash = catalog.find("bash").expect("bash");
    let limits = catalog.default_limits(bash);
    for mode in sandbox_modes() {
        let runtime = &mode.runtime;
        let mut config: coderun_executor::config::Config =
            toml::from_str(coderun_executor::config::DEFAULTS).expect("defaults");
        config.sandbox.agent_path = coderun_e2e::agent_path();
        config.sandbox.runtime = runtime.clone();
        config.sandbox.isolation = mode.isolation;
        config.sandbox.first_program_uid = coderun_e2e::program_uid_base();
        let prefix = format!(
            "test_{}",
            ulid::Ulid::new().to_string().to_ascii_lowercase()
        );
        let executor = format!("executor-{prefix}");
        let sandbox = Sandbox::connect(config.sandbox, prefix, executor)
            .await
            .expect("docker");
        let spec = SandboxSpec {
            image: &bash.image,
            pool: "bash",
            run_id: "run_privileges",
            limits,
            compiles: false,
            tenant: "a",
            isolation: Some(mode.isolation),
        };
        type Break = fn(&mut bollard::models::ContainerCreateBody);
        let mistakes: [(&str, Break, &str); 3] = [
            (
                "an extra capability",
                |body| {
                    if let Some(host) = body.host_config.as_mut() {
                        host.cap_add
                            .get_or_insert_with(Vec::new)
                            .push("DAC_OVERRIDE".to_owned());
                    }
                },
                "capabilities",
            ),
            (
                "a missing capability",
                |body| {
                    if let Some(host) = body.host_config.as_mut() {
                        host.cap_add = Some(vec!["SETUID".to_owned(), "SETGID".to_owned()]);
                    }
                },
                "capabilities",
            ),
            (
                "not root",
                |body| body.user = Some("65534:65534".to_owned()),
                "not root",
            ),
        ];
        for (mistake, break_body, reason) in mistakes {
            let mut body = sandbox.body_for(&spec);
            let key = container_key(&body);
            break_body(&mut body);
            let ready = sandbox
                .create_ready(body, &sandbox.container_name("privileges"))
                .await
                .expect("created");
            // Taken by the next run with these settings, as a pre-warmed container would be.
            sandbox.warm_store().push(key, ready);
            let job = AgentJob::new(
                vec![AgentFile {
                    path: "main.sh".to_owned(),
                    content: Bytes64(b"echo ran\n".to_vec()),
                }],
                None,
                AgentCommand {
                    argv: vec!["bash".to_owned(), "main.sh".to_owned()],
                    limits: limits.run,
                },
                vec![Bytes64::default()],
            );
            let result = sandbox
                .run(&spec, job, Duration::from_secs(30), Default::default())
                .await
                .expect("an answer");
            let error = result.error.unwrap_or_default();
            assert!(error.contains(reason), "{mode}, {mistake}: {error:?}");
            assert!(result.runs.is_empty(), "{mode}, {mistake}: nothing ran");
        }
        sandbox.finish_removals().await;
    }
}
