//! B1 and B2: what a runner that makes one container per run pays. Each cycle creates a
//! container with coderun's own sandbox settings (`coderun_executor::container::container_body`,
//! the executor's default `[sandbox]` section, the catalog's default limits) and python
//! image, only its entrypoint and command changed to run the hello world directly (no agent),
//! attaches, starts, reads and checks the output, waits for the exit, and removes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use bollard::container::LogOutput;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptionsBuilder, RemoveContainerOptions,
    StartContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use coderun_executor::config::{Isolation, SandboxConfig};
use coderun_executor::container::{container_body, SandboxSpec};
use coderun_schema::catalog::Catalog;
use futures::StreamExt as _;

use crate::load::{Operation, Outcome};

/// One container per run, over and over.
pub struct ContainerCycle {
    docker: Docker,
    body: ContainerCreateBody,
    prefix: String,
    expected_stdout: String,
    cycles: AtomicU64,
}

/// The executor's committed `[sandbox]` defaults with `agent` as the agent's path.
pub fn default_sandbox(agent: &std::path::Path) -> anyhow::Result<SandboxConfig> {
    let defaults: toml::Table = toml::from_str(coderun_executor::config::DEFAULTS)?;
    let section = defaults
        .get("sandbox")
        .cloned()
        .context("the executor's defaults have no [sandbox]")?;
    let mut sandbox: SandboxConfig = section.try_into()?;
    sandbox.agent_path = agent.to_owned();
    Ok(sandbox)
}

impl ContainerCycle {
    /// The python hello world's cycle; containers are named and labelled with `prefix`, so the
    /// stack's clean-up finds any left behind.
    pub fn python(docker: Docker, prefix: &str, agent: &std::path::Path) -> anyhow::Result<Self> {
        let catalog = Catalog::builtin();
        let python = catalog.find("python").context("no python in the catalog")?;
        let spec = SandboxSpec {
            image: &python.image,
            pool: &python.id,
            run_id: "churn",
            limits: catalog.default_limits(python),
            compiles: python.compile.is_some(),
            tenant: "",
            // A runner that makes one container per run is what strict mode is.
            isolation: Some(Isolation::Strict),
        };
        let mut body = container_body(&default_sandbox(agent)?, prefix, &spec);
        body.entrypoint = Some(vec!["python3".to_owned()]);
        body.cmd = Some(vec!["-c".to_owned(), python.hello_world.clone()]);
        Ok(Self {
            docker,
            body,
            prefix: prefix.to_owned(),
            expected_stdout: python.hello_world_stdout.clone(),
            cycles: AtomicU64::new(0),
        })
    }

    /// The cycle as an operation the load drivers can repeat.
    pub fn operation(self: Arc<Self>) -> Operation {
        Arc::new(move || {
            let cycle = self.clone();
            Box::pin(async move { cycle.once().await })
        })
    }

    /// One cycle: create → attach → start → output → exit → remove.
    pub async fn once(&self) -> Outcome {
        let number = self.cycles.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-churn-{number}", self.prefix);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let id = match self
            .docker
            .create_container(Some(options), self.body.clone())
            .await
        {
            Ok(created) => created.id,
            Err(error) => return Outcome::Failed(format!("create: {error}")),
        };
        let outcome = self.attach_start_and_read(&id).await;
        let remove = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match (
            outcome,
            self.docker.remove_container(&id, Some(remove)).await,
        ) {
            (Ok(stdout), Ok(())) if stdout == self.expected_stdout => Outcome::Succeeded {
                program_cpu_ms: 0,
                queue_ms: None,
            },
            (Ok(stdout), Ok(())) => Outcome::Failed(format!("stdout {stdout:?}")),
            (Err(error), _) => Outcome::Failed(error),
            (Ok(_), Err(error)) => Outcome::Failed(format!("remove: {error}")),
        }
    }

    async fn attach_start_and_read(&self, id: &str) -> Result<String, String> {
        let attach = AttachContainerOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let mut attached = self
            .docker
            .attach_container(id, Some(attach))
            .await
            .map_err(|error| format!("attach: {error}"))?;
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(|error| format!("start: {error}"))?;
        let mut stdout = Vec::new();
        while let Some(frame) = attached.output.next().await {
            match frame.map_err(|error| format!("read: {error}"))? {
                LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
                LogOutput::StdErr { message } => {
                    return Err(format!("stderr {:?}", String::from_utf8_lossy(&message)))
                }
                _ => {}
            }
        }
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(exit)) if exit.status_code == 0 => {}
            Some(Ok(exit)) => return Err(format!("exit status {}", exit.status_code)),
            Some(Err(error)) => return Err(format!("wait: {error}")),
            None => return Err("wait: no answer".to_owned()),
        }
        String::from_utf8(stdout).map_err(|_| "stdout is not UTF-8".to_owned())
    }
}
