//! Fast mode's reused containers: the outer box of many runs of one tenant, each run in a fresh
//! inner sandbox the agent builds (new user, PID, mount, IPC, UTS and network namespaces; see
//! the agent's `inner` module).
//!
//! A fast container is made for a language, not for one run's limits: its seccomp profile also
//! allows `unshare` and `mount` (the agent's programs lose them again), its fsize ulimit and
//! first limits are the catalog's largest, and before each run (and between its stages) the
//! executor writes the run's memory and pids limits into the container's cgroup on the host. A
//! container taken by a tenant serves only that tenant; it is removed after
//! `reuse_max_runs` runs or `reuse_max_secs` (each container between three quarters and all of
//! them, so that containers made together are not all replaced together), and at once after a
//! run the agent could not vouch for. The run's result does not wait for that: the agent answers first, then ends the
//! inner sandbox and says whether it ended whole; meanwhile the container is "settling", and
//! the tenant's next run waits a moment for it rather than take a pre-warmed one.

use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use coderun_schema::agent::{AgentJob, AgentResult, InnerSandbox};
use tokio_util::sync::CancellationToken;

use crate::agent_session::ContainerLimits;
use crate::config::{Isolation, SandboxConfig};
use crate::container::{
    container_body, container_key, host_pids_limit, memory_bytes, SandboxSpec, SECCOMP_PROFILE,
};
pub use crate::reuse_store::{Reusable, ReuseBudget, ReuseStore};
use crate::sandbox::{RunWatch, Sandbox, SandboxError};

/// The processes of a fast container besides a command's own and the agent's tasks counted by
/// `container::AGENT_TASKS`: the waiting agent and the process that left its namespaces.
pub const INNER_SANDBOX_TASKS: i64 = 2;

/// The system calls a fast container's agent needs beyond the strict profile's.
const INNER_SANDBOX_CALLS: [&str; 2] = ["unshare", "mount"];

/// The strict profile with the inner sandbox's calls allowed.
pub fn fast_profile() -> &'static str {
    static PROFILE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut profile: serde_json::Value =
            serde_json::from_str(SECCOMP_PROFILE).unwrap_or_default();
        if let Some(names) = profile["syscalls"][0]["names"].as_array_mut() {
            names.extend(INNER_SANDBOX_CALLS.map(serde_json::Value::from));
        }
        profile.to_string()
    });
    &PROFILE
}

/// The container settings of a fast container for `spec`'s language: the strict settings with
/// the language's largest limits and the fast profile.
pub fn fast_body(
    settings: &SandboxConfig,
    prefix: &str,
    spec: &SandboxSpec<'_>,
    largest: coderun_schema::catalog::Limits,
) -> ContainerCreateBody {
    let widest = SandboxSpec {
        limits: largest,
        ..spec.clone()
    };
    let mut body = container_body(settings, prefix, &widest);
    if let Some(host) = body.host_config.as_mut() {
        host.security_opt = Some(vec![
            "no-new-privileges".to_owned(),
            format!("seccomp={}", fast_profile()),
        ]);
        host.pids_limit = host.pids_limit.map(|pids| pids + INNER_SANDBOX_TASKS);
    }
    body
}

/// The catalog's largest limits of a pool's language: what a fast container is made for.
fn largest_limits(pool: &str) -> Option<coderun_schema::catalog::Limits> {
    static LARGEST: std::sync::LazyLock<
        std::collections::HashMap<String, coderun_schema::catalog::Limits>,
    > = std::sync::LazyLock::new(|| {
        let catalog = coderun_schema::catalog::Catalog::builtin();
        catalog
            .languages
            .iter()
            .map(|language| {
                let pool = coderun_schema::names::Names::pool_of(&language.id);
                (pool, catalog.max_limits(language))
            })
            .collect()
    });
    LARGEST.get(pool).copied()
}

/// How long an agent may take, after its answer, to say that its inner sandbox has ended.
const SETTLE_WITHIN: Duration = Duration::from_secs(10);

/// How long a run waits for its tenant's container that is settling (ending the last run's
/// inner sandbox takes a few milliseconds) before it takes a pre-warmed one.
const SETTLED_SOON: Duration = Duration::from_millis(50);

impl Sandbox {
    /// Off the run's path (the answer is already the host's): waits for the agent to vouch
    /// that the inner sandbox ended whole, then keeps the container for the tenant's next run;
    /// removes it if the agent does not. The run's users stay leased until then.
    fn keep_when_settled(
        &self,
        tenant: &str,
        key: String,
        mut container: Reusable,
        users: crate::users::UserLease,
    ) {
        let sandbox = self.clone();
        let tenant = tenant.to_owned();
        self.reused.settling_started(&tenant, &key);
        let settling = async move {
            let settled = tokio::time::timeout(
                SETTLE_WITHIN,
                crate::agent_session::settled(&mut container.ready),
            )
            .await
            .unwrap_or(false);
            if !settled {
                sandbox.reused.settling_ended(&tenant, &key);
                let id = container.ready.id;
                tracing::warn!(container = %id, "the agent did not vouch for its inner sandbox; removing the container");
                sandbox.remove_later(id, Some(users));
                return;
            }
            drop(users);
            let most = sandbox.settings.reuse_idle_max;
            let evicted = sandbox.reused.put(&tenant, &key, container, most);
            sandbox.reused.settling_ended(&tenant, &key);
            for evicted in evicted {
                sandbox.remove_later(evicted, None);
            }
        };
        self.removals
            .spawn(tracing::Instrument::in_current_span(settling));
    }

    /// The container settings a run of `spec` gets: a fast container's for its language in the
    /// fast mode, exactly its own in the strict mode.
    pub fn body_for(&self, spec: &SandboxSpec<'_>) -> ContainerCreateBody {
        match self.settings.isolation_for(spec.pool, spec.isolation) {
            Isolation::Strict => self.container_body(spec),
            Isolation::Fast => {
                let largest = largest_limits(spec.pool).unwrap_or(spec.limits);
                self.owned(fast_body(&self.settings, &self.prefix, spec, largest))
            }
        }
    }

    /// A fast container for the tenant: its own idle one, else a pre-warmed one, else a new
    /// one. The flag says whether it was waiting.
    async fn take_reusable(
        &self,
        spec: &SandboxSpec<'_>,
        key: &str,
        body: ContainerCreateBody,
        cancel: &CancellationToken,
    ) -> Result<(Reusable, bool), SandboxError> {
        while let Some(idle) = self.reused.take_soon(spec.tenant, key, SETTLED_SOON).await {
            // A container that died while idle (an engine restart, the host's OOM killer) is
            // not reused, nor is its recorded pid trusted once it is another process's.
            if crate::cgroup::is_process_of(idle.host_pid, &idle.ready.id) {
                return Ok((idle, true));
            }
            tracing::warn!(container = %idle.ready.id, "an idle container is gone; removing it");
            self.remove_later(idle.ready.id, None);
        }
        let (ready, host_pid, warm) = match self.take_warm_with_pid(key).await {
            Some((ready, pid)) => (ready, pid, true),
            None => {
                let name = self.container_name(spec.run_id);
                let ready = self.create_ready_waiting(body, &name, cancel).await?;
                match self.running_pid(&ready.id).await {
                    Some(pid) => (ready, pid, false),
                    None => {
                        self.remove(&ready.id).await;
                        return Err(SandboxError::Protocol(
                            "the engine does not say which process the container is".to_owned(),
                        ));
                    }
                }
            }
        };
        self.warm.refill.notify_one();
        let budget = ReuseBudget::for_container(
            &ready.id,
            self.settings.reuse_max_runs,
            self.settings.reuse_max_secs,
        );
        let container = Reusable {
            ready,
            host_pid,
            runs: 0,
            created: Instant::now(),
            budget,
        };
        Ok((container, warm))
    }

    /// The fast mode: the job in a fresh inner sandbox of a container reused for the tenant.
    pub(crate) async fn run_reused(
        &self,
        spec: &SandboxSpec<'_>,
        mut job: AgentJob,
        deadline: Duration,
        watch: RunWatch,
    ) -> Result<AgentResult, SandboxError> {
        let RunWatch { cancel, progress } = watch;
        let body = self.body_for(spec);
        let key = container_key(&body);
        let started = Instant::now();
        let (mut container, waiting) = self.take_reusable(spec, &key, body, &cancel).await?;
        self.count_take(waiting);
        let acquired = started.elapsed();
        let id = container.ready.id.clone();
        let limits_of = |limits: &coderun_schema::catalog::StageLimits| ContainerLimits {
            memory: memory_bytes(limits),
            pids: host_pids_limit("runc", limits.pids) + INNER_SANDBOX_TASKS,
            through_cgroup: true,
            host_pid: Some(container.host_pid),
        };
        let first = limits_of(&spec.first_stage());
        let stage_change = spec.stage_change().map(|limits| limits_of(&limits));
        if let Err(error) = crate::cgroup::apply(container.host_pid, first.memory, first.pids) {
            self.remove_later(id, None);
            return Err(SandboxError::Protocol(format!(
                "failed to give the container the run's limits: {error}"
            )));
        }
        job.pause_after_compile = stage_change.is_some();
        let users = self.lease_users(&mut job);
        job.inner_sandbox = Some(InnerSandbox {
            root_uid: users.inner_root_uid,
            scratch_mb: self.settings.workspace_mb,
        });
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => Ok(Err(SandboxError::Cancelled)),
            outcome = tokio::time::timeout(
                deadline,
                self.exchange(&mut container.ready, &job, stage_change, progress, true),
            ) => outcome,
        };
        let exchanged = started.elapsed();
        let outcome = self.explain_silence(&id, outcome).await;
        container.runs += 1;
        let answered = matches!(&outcome, Ok(Ok(answer)) if answer.error.is_none());
        let fresh = container.budget.allows(container.runs, container.created);
        tracing::info!(
            run_id = spec.run_id,
            container = %id,
            warm = waiting,
            reused = container.runs > 1,
            acquire_ms = acquired.as_millis() as u64,
            exchange_ms = (exchanged - acquired).as_millis() as u64,
            "sandbox finished"
        );
        if answered && fresh {
            self.keep_when_settled(spec.tenant, key, container, users);
        } else {
            self.remove_later(id, Some(users));
        }
        match outcome {
            Ok(result) => result,
            Err(_) => Err(SandboxError::Deadline(deadline)),
        }
    }
}
