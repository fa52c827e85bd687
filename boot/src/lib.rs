//! What every coderun service binary does before and around its real work, so each `main.rs`
//! stays a few lines: arguments → telemetry (`coderun_telemetry::logs::init`) → config → build
//! → run until a signal.
//!
//! - [`ConfigArgs`]: the `--config PATH` argument, flattened into each binary's clap parser
//!   (which also gives `--help` and `--version`).
//! - [`config`]: the layered configuration: the service's committed defaults, then an
//!   optional file (`--config PATH` or `CODERUN_<SERVICE>_CONFIG`), then environment variables
//!   `CODERUN_<SERVICE>__SECTION__KEY`. Unknown keys are refused by the services'
//!   `deny_unknown_fields` config types, and unknown `CODERUN_*` variables are warned about, so
//!   a typo is found, not silently ignored.
//! - [`shutdown_on_signal`]: a token cancelled on SIGTERM or SIGINT. Only binaries call it.
//!
//! Architecture invariant: no service logic lives here.

pub mod config;

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use crate::config::{load_config, unknown_variables, EXIT_BAD_CONFIG};

/// The arguments every service takes; binaries flatten it into their own clap parser.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// A TOML file layered over the committed defaults (environment variables still win).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// A token cancelled when the process gets SIGTERM or SIGINT.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        cancel.cancel();
    });
    token
}

/// Loads `C` from the defaults, `args.config` and the process environment, then checks it with
/// `validate`. Unknown `CODERUN_*` variables are logged as warnings (call `coderun_telemetry::logs::init`
/// first). Any error prints one clear line and exits with [`EXIT_BAD_CONFIG`], before the
/// service connects to anything. `list_keys` are keys whose environment value is a comma list.
pub fn load_or_exit<C: DeserializeOwned>(
    service: &str,
    defaults: &str,
    list_keys: &[&str],
    args: &ConfigArgs,
    validate: impl FnOnce(&C) -> Result<(), String>,
) -> C {
    let environment: Vec<(String, String)> = std::env::vars().collect();
    for name in unknown_variables(environment.iter().map(|(name, _)| name.as_str())) {
        tracing::warn!(
            variable = %name,
            "unknown CODERUN_ variable ignored (a typo?)"
        );
    }
    let loaded = load_config::<C>(
        service,
        defaults,
        args.config.clone(),
        list_keys,
        environment,
    )
    .and_then(|config| {
        validate(&config).map_err(|message| format!("invalid configuration: {message}"))?;
        Ok(config)
    });
    match loaded {
        Ok(config) => config,
        Err(message) => {
            eprintln!("coderun-{}: {message}", service.to_ascii_lowercase());
            std::process::exit(EXIT_BAD_CONFIG);
        }
    }
}

/// For the services' tests of their binaries: runs `binary` with `args` and only the given
/// `CODERUN_*` variables (the caller's own are removed), and returns what it did. A binary that
/// does not exit within `limit` is killed, which the caller sees as no exit code.
pub fn run_binary(
    binary: &str,
    args: &[&str],
    variables: &[(&str, &str)],
    limit: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    let mut command = std::process::Command::new(binary);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("CODERUN_") {
            command.env_remove(name);
        }
    }
    command
        .envs(variables.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn()?;
    let started = std::time::Instant::now();
    while child.try_wait()?.is_none() && started.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if child.try_wait()?.is_none() {
        let _ = child.kill();
    }
    child.wait_with_output()
}
