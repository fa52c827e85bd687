//! What every coderun service binary does before and around its real work, so each `main.rs`
//! stays a few lines: telemetry → config → build → run until a signal.
//!
//! - [`load_config`]: the layered configuration of STYLE.md: the service's committed defaults,
//!   then an optional file (`--config PATH` or `CODERUN_<SERVICE>_CONFIG`), then environment
//!   variables `CODERUN_<SERVICE>__SECTION__KEY`. Unknown keys are refused by the service's
//!   `deny_unknown_fields` config types, so a typo is an error, not a silently ignored value.
//! - [`init_tracing`]: pretty logs locally, JSON when `CODERUN_LOG_FORMAT=json`.
//! - [`shutdown_on_signal`]: a token cancelled on SIGTERM or SIGINT. Only binaries call it.
//!
//! Architecture invariant: no service logic lives here.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// Exit code for configuration errors.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// Loads `T` from the committed defaults (TOML text), an optional file, and the environment.
///
/// `service` is the upper-case service name used in variable names (`GATEWAY`).
pub fn load_config<T: DeserializeOwned>(
    service: &str,
    defaults: &str,
    file: Option<PathBuf>,
    list_keys: &[&str],
) -> Result<T, String> {
    let prefix = format!("CODERUN_{service}");
    let file = file.or_else(|| std::env::var_os(format!("{prefix}_CONFIG")).map(PathBuf::from));
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = &file {
        builder = builder.add_source(config::File::from(path.as_path()).required(true));
    }
    let mut environment = config::Environment::with_prefix(&prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true);
    if !list_keys.is_empty() {
        environment = environment.list_separator(",");
        for key in list_keys {
            environment = environment.with_list_parse_key(key);
        }
    }
    builder = builder.add_source(environment);
    let built = builder
        .build()
        .map_err(|error| format!("failed to read the configuration: {error}"))?;
    built
        .try_deserialize()
        .map_err(|error| format!("invalid configuration: {error}"))
}

/// The `--config PATH` argument, if given.
pub fn config_path_from_args() -> Result<Option<PathBuf>, String> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                path = Some(PathBuf::from(args.next().ok_or("--config needs a path")?));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(path)
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), JSON when
/// `CODERUN_LOG_FORMAT=json`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("CODERUN_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
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

/// Parses `--config` and loads `C`; a configuration error prints one clear line and exits
/// with [`EXIT_BAD_CONFIG`]. `list_keys` are keys whose environment value is a comma list.
pub fn load_or_exit<C: DeserializeOwned>(service: &str, defaults: &str, list_keys: &[&str]) -> C {
    let loaded = config_path_from_args()
        .and_then(|file| load_config::<C>(service, defaults, file, list_keys));
    match loaded {
        Ok(config) => config,
        Err(message) => {
            eprintln!("coderun-{}: {message}", service.to_ascii_lowercase());
            std::process::exit(EXIT_BAD_CONFIG);
        }
    }
}

/// Exits with [`EXIT_BAD_CONFIG`] and one clear line when a loaded configuration is invalid.
pub fn exit_if_invalid(service: &str, validation: Result<(), String>) {
    if let Err(message) = validation {
        eprintln!("coderun-{service}: invalid configuration: {message}");
        std::process::exit(EXIT_BAD_CONFIG);
    }
}
