//! The languages an executor serves: the catalog's, or those `worker.languages` names, whose
//! image the engine has; each with its image's digest and the version its version command
//! prints inside a sandbox (what `GET /v1/languages` reports).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use coderun_schema::agent::{AgentCommand, AgentJob};
use coderun_schema::catalog::{Catalog, Limits, StageLimits};
use coderun_schema::messages::ServedLanguage;

use crate::container::SandboxSpec;
use crate::sandbox::{Sandbox, SandboxError};
use crate::worker::PoolLanguage;

/// Every language to serve, with its image digest and version read from the image.
pub async fn discover(
    sandbox: &Sandbox,
    catalog: &Catalog,
    wanted: &[String],
) -> anyhow::Result<HashMap<String, PoolLanguage>> {
    let mut languages = HashMap::new();
    for spec in &catalog.languages {
        let explicitly_wanted = wanted.iter().any(|id| id == &spec.id);
        if !wanted.is_empty() && !explicitly_wanted {
            continue;
        }
        let digest = match sandbox.image_digest(&spec.image).await {
            Ok(digest) => digest,
            Err(error) if !explicitly_wanted => {
                tracing::info!(language = %spec.id, %error, "image not available; not serving it");
                continue;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("image {} of {}", spec.image, spec.id))
            }
        };
        let version = read_version(sandbox, &spec.image, &spec.id, &spec.version)
            .await
            .with_context(|| format!("failed to read the version of {}", spec.id))?;
        let served = ServedLanguage {
            id: spec.id.clone(),
            version,
            image_digest: digest,
            warm_ready: 0,
        };
        languages.insert(
            coderun_schema::names::Names::pool_of(&spec.id),
            PoolLanguage {
                spec: spec.clone(),
                served,
            },
        );
    }
    Ok(languages)
}

/// Runs `argv` in a sandbox of `image` and returns its trimmed stdout (a language's version).
pub async fn read_version(
    sandbox: &Sandbox,
    image: &str,
    pool: &str,
    argv: &[String],
) -> Result<String, SandboxError> {
    let limits = StageLimits {
        cpu_ms: 10_000,
        wall_ms: 20_000,
        memory_mb: 512,
        pids: 64,
        output_kb: 16,
        file_size_kb: 1024,
    };
    let job = AgentJob::new(
        Vec::new(),
        None,
        AgentCommand {
            argv: argv.to_vec(),
            limits,
        },
        vec![Default::default()],
    );
    let spec = SandboxSpec {
        image,
        pool,
        run_id: "version",
        limits: Limits {
            compile: limits,
            run: limits,
        },
        compiles: false,
        tenant: "",
        isolation: Some(crate::config::Isolation::Strict),
    };
    let result = sandbox
        .run(&spec, job, Duration::from_secs(60), Default::default())
        .await?;
    let stage = result.runs.first().ok_or_else(|| {
        SandboxError::Protocol(result.error.unwrap_or_else(|| "no result".to_owned()))
    })?;
    let text = String::from_utf8_lossy(stage.stdout.as_slice())
        .trim()
        .to_owned();
    if stage.exit_code != Some(0) || text.is_empty() {
        return Err(SandboxError::Protocol(format!(
            "version command {argv:?} failed: {}",
            String::from_utf8_lossy(stage.stderr.as_slice()).trim()
        )));
    }
    Ok(text)
}
