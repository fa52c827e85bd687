//! The engine side of sandboxes: creating (attached, then started), naming, inspecting and
//! removing containers, orphans left by an earlier executor, and the images' digests. The
//! run's own path (take a container, exchange with the agent) is in [`crate::sandbox`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    AttachContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use tokio_util::sync::CancellationToken;

use crate::container::{LABEL_EXECUTOR, LABEL_POOL, LABEL_PREFIX};
use crate::sandbox::{Sandbox, SandboxError};
use crate::warm::ReadyContainer;

/// A sandbox container of the deployment, as the engine lists it.
pub(crate) struct DeploymentContainer {
    pub id: String,
    /// The executor its label names (none from a release before the label).
    pub owner: Option<String>,
    /// When it was created (Unix seconds).
    pub created: Option<i64>,
}

/// Tries at removing a container before it is given up (the waits between them: 0.2, 0.6,
/// 1.8, 5 s).
const REMOVE_ATTEMPTS: u32 = 5;
/// How long a removal waits for an engine that does not answer (restarting) before it gives
/// up; the executor's next start removes what is left then.
const REMOVE_UNANSWERED_FOR: Duration = Duration::from_secs(120);
/// The longest pause between two removal attempts.
const REMOVE_LONGEST_PAUSE: Duration = Duration::from_secs(5);

impl Sandbox {
    /// A new container's name: the deployment's prefix, what it is for (a run id, `warm`),
    /// and a unique tail. `docker ps --filter name=<run id>` finds a run's container.
    pub fn container_name(&self, purpose: &str) -> String {
        let unique = ulid::Ulid::new().to_string().to_ascii_lowercase();
        format!("{}-{purpose}-{}", self.prefix, &unique[16..])
    }

    /// Renames a container, logging (not failing) when the engine refuses.
    pub(crate) async fn rename(&self, id: &str, name: &str) {
        let options = bollard::query_parameters::RenameContainerOptionsBuilder::new()
            .name(name)
            .build();
        if let Err(error) = self.docker.rename_container(id, options).await {
            tracing::warn!(container = id, %error, "failed to name a container for its run");
        }
    }

    /// The engine's view of a container's state; `None` if it cannot tell.
    pub(crate) async fn container_state(
        &self,
        id: &str,
    ) -> Option<bollard::models::ContainerState> {
        self.docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok()?
            .state
    }

    /// Whether the engine saw the container's memory cgroup kill it.
    pub(crate) async fn was_oom_killed(&self, id: &str) -> bool {
        self.container_state(id)
            .await
            .and_then(|state| state.oom_killed)
            .unwrap_or(false)
    }

    /// Creates a container, attaches to its stdio and starts it: its agent then waits for a
    /// job. Attaching before the start means nothing the agent writes is missed.
    pub async fn create_ready(
        &self,
        body: ContainerCreateBody,
        name: &str,
    ) -> Result<ReadyContainer, SandboxError> {
        let language = body
            .labels
            .as_ref()
            .and_then(|labels| labels.get(LABEL_POOL))
            .cloned()
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let created = self.create_attached(body, name).await;
        let label = coderun_telemetry::metrics::labels([("language", &language)]);
        match &created {
            Ok(_) => self
                .containers
                .create_seconds
                .get_or_create(&label)
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => {
                self.containers.create_failures.get_or_create(&label).inc();
            }
        }
        created
    }

    /// As [`Sandbox::create_ready`], waiting out an engine that does not answer (restarting)
    /// for up to `sandbox.engine_wait_secs`, with backoff. The program has not been given its
    /// job yet, so a run that waited still runs once. A cancel ends the wait.
    pub async fn create_ready_waiting(
        &self,
        body: ContainerCreateBody,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<ReadyContainer, SandboxError> {
        let give_up = Instant::now() + Duration::from_secs(self.settings.engine_wait_secs);
        let mut waits = crate::persist::waits();
        let mut attempt = 0u32;
        loop {
            // A fresh name after a failed attempt: the engine may have made the container
            // before it stopped answering (it is removed in the background).
            let name = match attempt {
                0 => name.to_owned(),
                _ => format!("{name}-{attempt}"),
            };
            let error = match self.create_ready(body.clone(), &name).await {
                Ok(ready) => {
                    self.engine.mark_back();
                    return Ok(ready);
                }
                Err(error) if error.engine_unreachable() => {
                    self.engine.mark_away();
                    if Instant::now() >= give_up {
                        return Err(error);
                    }
                    error
                }
                Err(error) => return Err(error),
            };
            let wait = waits.next().unwrap_or(crate::persist::LONGEST_WAIT);
            tracing::warn!(%error, wait_ms = wait.as_millis() as u64, "the Docker engine does not answer; the run waits for it");
            tokio::select! {
                _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
            attempt += 1;
        }
    }

    async fn create_attached(
        &self,
        body: ContainerCreateBody,
        name: &str,
    ) -> Result<ReadyContainer, SandboxError> {
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(SandboxError::Create)?;
        let id = created.id;
        let attach = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let attached = match self.docker.attach_container(&id, Some(attach)).await {
            Ok(attached) => attached,
            Err(error) => {
                self.remove_later(id, None);
                return Err(SandboxError::Attach(error));
            }
        };
        let start = self
            .docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await;
        if let Err(error) = start {
            self.remove_later(id, None);
            return Err(SandboxError::Start(error));
        }
        Ok(ReadyContainer {
            id,
            attached,
            lines: Default::default(),
        })
    }

    /// Waits for every container removal in flight (at shutdown, and in tests).
    pub async fn finish_removals(&self) {
        self.removals.close();
        self.removals.wait().await;
        self.removals.reopen();
    }

    /// Removes a container, trying again when the engine refuses (a gVisor sandbox being torn
    /// down can refuse for a while); false, logged, if it still stands after the last try. A
    /// container the engine no longer knows counts as removed.
    pub async fn remove(&self, id: &str) -> bool {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        let mut pause = Duration::from_millis(200);
        let give_up_unanswered = Instant::now() + REMOVE_UNANSWERED_FOR;
        let mut attempt = 0;
        while attempt < REMOVE_ATTEMPTS {
            let removed = self
                .docker
                .remove_container(id, Some(options.clone()))
                .await;
            // An engine that does not answer (restarting) is waited for longer: the
            // attempts count only its answers.
            let unanswered = removed.as_ref().is_err_and(|error| {
                crate::engine::unreachable(error) && Instant::now() < give_up_unanswered
            });
            if !unanswered {
                attempt += 1;
            }
            match removed {
                Ok(())
                | Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return true,
                Err(error) if attempt == REMOVE_ATTEMPTS => {
                    tracing::error!(container = id, %error, "failed to remove a sandbox container");
                }
                Err(error) => {
                    tracing::warn!(container = id, %error, attempt, "removing a sandbox container failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 3).min(REMOVE_LONGEST_PAUSE);
                }
            }
        }
        false
    }

    /// The sandbox containers of this deployment, each with the executor its label names.
    pub(crate) async fn deployment_containers(
        &self,
    ) -> Result<Vec<DeploymentContainer>, SandboxError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                LABEL_POOL.to_owned(),
                format!("{LABEL_PREFIX}={}", self.prefix),
            ],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let listed = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(SandboxError::Engine)?;
        Ok(listed
            .into_iter()
            .filter_map(|container| {
                let owner = container
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(LABEL_EXECUTOR).cloned());
                Some(DeploymentContainer {
                    id: container.id?,
                    owner,
                    created: container.created,
                })
            })
            .collect())
    }

    /// This executor's id, as its containers' labels carry it.
    pub(crate) fn executor_id(&self) -> &str {
        &self.executor_id
    }

    /// Removes the sandbox containers of this deployment left over by an earlier process of
    /// this executor (its id, when configured, survives a restart) or by one that names none.
    /// Other executors' containers are theirs; [`crate::janitor`] removes them once their
    /// executor is gone.
    pub async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let mut removed = 0;
        for container in self.deployment_containers().await? {
            if container
                .owner
                .as_ref()
                .is_none_or(|owner| *owner == self.executor_id)
            {
                self.remove(&container.id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The image's id (its content digest), or an error if the engine does not have it.
    pub async fn image_digest(&self, image: &str) -> Result<String, SandboxError> {
        let inspected = self
            .docker
            .inspect_image(image)
            .await
            .map_err(SandboxError::Engine)?;
        inspected
            .id
            .ok_or_else(|| SandboxError::Protocol(format!("image {image} has no id")))
    }
}
