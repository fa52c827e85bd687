//! The layered configuration of a service, and the names of the variables coderun reads.
//!
//! Layers, each over the one before: the committed defaults (TOML text compiled into the
//! binary), an optional file (`--config PATH`, else `CODERUN_<SERVICE>_CONFIG`), then the text
//! of such a file in `CODERUN_<SERVICE>_CONFIG_TOML` (where a platform hands secrets over as
//! variables, not files: ECS, compose), then the environment, `CODERUN_<SERVICE>__SECTION__KEY` (double underscores between the service,
//! the section and the key; single ones inside names).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

/// Exit code for configuration errors.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// The services whose variables share the environment (a host or compose file may hold all).
pub const SERVICES: [&str; 4] = ["GATEWAY", "SCHEDULER", "EXECUTOR", "PROBER"];

/// Variables that are not a service's configuration but are read by coderun all the same:
/// the log format of every service, and those of the scripts and the test suite.
const OTHER_VARIABLES: [&str; 8] = [
    "CODERUN_LOG_FORMAT",
    "CODERUN_GATEWAY_PORT",
    "CODERUN_STATE_DIR",
    "CODERUN_NATS_PORT",
    "CODERUN_REDIS_PORT",
    "CODERUN_BASE_IMAGE",
    "CODERUN_UPDATE_OPENAPI",
    "CODERUN_UPDATE_DOCS",
];

/// Loads `T` from the committed defaults (TOML text), an optional file, and `environment`
/// (the process's variables, or a test's).
///
/// `service` is the upper-case service name used in variable names (`GATEWAY`); `list_keys`
/// are keys whose environment value is a comma-separated list (`worker.languages`).
pub fn load_config<T: DeserializeOwned>(
    service: &str,
    defaults: &str,
    file: Option<PathBuf>,
    list_keys: &[&str],
    environment: impl IntoIterator<Item = (String, String)>,
) -> Result<T, String> {
    let prefix = format!("CODERUN_{service}");
    let environment: HashMap<String, String> = environment.into_iter().collect();
    let file = file.or_else(|| {
        environment
            .get(&format!("{prefix}_CONFIG"))
            .map(PathBuf::from)
    });
    let environment_text = environment.get(&format!("{prefix}_CONFIG_TOML")).cloned();
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = &file {
        builder = builder.add_source(
            config::File::from(path.as_path())
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    let mut variables = config::Environment::with_prefix(&prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(environment.into_iter().collect()));
    if !list_keys.is_empty() {
        variables = variables.list_separator(",");
        for key in list_keys {
            variables = variables.with_list_parse_key(key);
        }
    }
    if let Some(text) = environment_text {
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    builder = builder.add_source(variables);
    let built = builder
        .build()
        .map_err(|error| format!("failed to read the configuration: {error}"))?;
    built
        .try_deserialize()
        .map_err(|error| format!("invalid configuration: {error}"))
}

/// The `CODERUN_*` names among `names` that no coderun program reads: a misspelt service
/// (`CODERUN_GATEWY__HTTP__PORT`) or a single underscore where two belong
/// (`CODERUN_GATEWAY_HTTP__PORT`). A misspelt key inside a service's own section is refused by
/// its config type instead.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .into_iter()
        .filter(|name| name.starts_with("CODERUN_") && !is_known(name))
        .map(str::to_owned)
        .collect();
    unknown.sort();
    unknown
}

fn is_known(name: &str) -> bool {
    if OTHER_VARIABLES.contains(&name) || name.starts_with("CODERUN_TEST_") {
        return true;
    }
    SERVICES.iter().any(|service| {
        let prefix = format!("CODERUN_{service}");
        name == format!("{prefix}_CONFIG")
            || name == format!("{prefix}_CONFIG_TOML")
            || name
                .strip_prefix(&format!("{prefix}__"))
                .is_some_and(|key| !key.is_empty() && !key.starts_with('_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        http: Http,
        worker: Worker,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Http {
        host: String,
        port: u16,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Worker {
        languages: Vec<String>,
        slots: u32,
    }

    const DEFAULTS: &str = r#"
[http]
host = "127.0.0.1"
port = 8080
[worker]
languages = []
slots = 4
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn load(file: Option<PathBuf>, pairs: &[(&str, &str)]) -> Result<Sample, String> {
        load_config("SAMPLE", DEFAULTS, file, &["worker.languages"], env(pairs))
    }

    fn file_with(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "coderun-boot-{}-{}.toml",
            std::process::id(),
            next_file_number()
        ));
        std::fs::write(&path, text).expect("write a config file");
        path
    }

    fn next_file_number() -> u128 {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    #[test]
    fn the_defaults_alone_load() {
        let sample = load(None, &[]).expect("defaults load");
        assert_eq!(sample.http.port, 8080);
        assert_eq!(sample.worker.slots, 4);
        assert!(sample.worker.languages.is_empty());
    }

    #[test]
    fn a_file_overrides_the_defaults_and_the_environment_overrides_the_file() {
        let file = file_with("[http]\nport = 9000\nhost = \"0.0.0.0\"\n");
        let sample = load(
            Some(file.clone()),
            &[
                ("CODERUN_SAMPLE__HTTP__PORT", "9100"),
                ("CODERUN_SAMPLE__WORKER__LANGUAGES", "python,c"),
                ("CODERUN_OTHER__HTTP__PORT", "1"),
            ],
        )
        .expect("layers load");
        std::fs::remove_file(file).ok();
        assert_eq!(sample.http.host, "0.0.0.0", "from the file");
        assert_eq!(sample.http.port, 9100, "the environment wins over the file");
        assert_eq!(sample.worker.languages, ["python", "c"]);
        assert_eq!(sample.worker.slots, 4, "untouched keys keep their defaults");
    }

    #[test]
    fn the_file_may_be_named_by_a_variable() {
        let file = file_with("[worker]\nslots = 16\n");
        let name = file.to_string_lossy().into_owned();
        let sample = load(None, &[("CODERUN_SAMPLE_CONFIG", &name)]).expect("loads");
        std::fs::remove_file(file).ok();
        assert_eq!(sample.worker.slots, 16);
    }

    #[test]
    fn a_file_may_come_as_a_variable_between_the_file_and_the_keys() {
        let file = file_with("[worker]\nslots = 16\n[http]\nport = 7000\n");
        let sample = load(
            Some(file.clone()),
            &[
                (
                    "CODERUN_SAMPLE_CONFIG_TOML",
                    "[http]\nport = 8000\nhost = \"::\"\n",
                ),
                ("CODERUN_SAMPLE__HTTP__HOST", "0.0.0.0"),
            ],
        )
        .expect("loads");
        std::fs::remove_file(file).ok();
        assert_eq!(sample.worker.slots, 16, "from the file");
        assert_eq!(
            sample.http.port, 8000,
            "the variable's text wins over the file"
        );
        assert_eq!(
            sample.http.host, "0.0.0.0",
            "a key's variable wins over the text"
        );
        let broken = load(None, &[("CODERUN_SAMPLE_CONFIG_TOML", "[http")]).expect_err("refused");
        assert!(broken.contains("configuration"), "{broken}");
    }

    #[test]
    fn a_misspelt_key_a_wrong_type_and_a_missing_file_are_errors() {
        let misspelt = load(None, &[("CODERUN_SAMPLE__HTTP__PROT", "1")]).expect_err("refused");
        assert!(misspelt.contains("prot"), "{misspelt}");
        let wrong = load(None, &[("CODERUN_SAMPLE__WORKER__SLOTS", "many")]).expect_err("type");
        assert!(wrong.contains("slots"), "{wrong}");
        let missing = load(Some(PathBuf::from("/nonexistent/coderun.toml")), &[])
            .expect_err("a named file must exist");
        assert!(missing.contains("coderun.toml"), "{missing}");
    }

    #[test]
    fn unknown_coderun_variables_are_named() {
        let unknown = unknown_variables([
            "PATH",
            "CODERUN_LOG_FORMAT",
            "CODERUN_GATEWAY__HTTP__PORT",
            "CODERUN_EXECUTOR_CONFIG",
            "CODERUN_GATEWAY_CONFIG_TOML",
            "CODERUN_TEST_AGENT",
            "CODERUN_GATEWY__HTTP__PORT",
            "CODERUN_GATEWAY_HTTP__PORT",
            "CODERUN_SCHEDULER__",
            "CODERUN_LOG_FROMAT",
        ]);
        assert_eq!(
            unknown,
            [
                "CODERUN_GATEWAY_HTTP__PORT",
                "CODERUN_GATEWY__HTTP__PORT",
                "CODERUN_LOG_FROMAT",
                "CODERUN_SCHEDULER__",
            ]
        );
    }
}
