//! The language catalog, `images/languages.toml`: which languages exist, how each one is
//! compiled and run, and the limits that apply when a request leaves them out.
//!
//! The gateway validates requests against it; the executor takes images and commands from it.
//! The file is compiled in ([`Catalog::builtin`]) so every service agrees on it by version.

use serde::{Deserialize, Serialize};

use crate::run::{LimitsRequest, StageLimitsRequest};

/// The catalog as committed in `images/languages.toml`.
pub const BUILTIN_CATALOG: &str = include_str!("../../images/languages.toml");

/// Fully resolved limits for one stage: every field set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageLimits {
    pub cpu_ms: u64,
    pub wall_ms: u64,
    pub memory_mb: u64,
    pub pids: u64,
    pub output_kb: u64,
    pub file_size_kb: u64,
}

impl StageLimits {
    /// These limits with every field the request sets taken from the request.
    pub fn overlaid(self, request: Option<&StageLimitsRequest>) -> Self {
        let Some(request) = request else { return self };
        Self {
            cpu_ms: request.cpu_ms.unwrap_or(self.cpu_ms),
            wall_ms: request.wall_ms.unwrap_or(self.wall_ms),
            memory_mb: request.memory_mb.unwrap_or(self.memory_mb),
            pids: request.pids.unwrap_or(self.pids),
            output_kb: request.output_kb.unwrap_or(self.output_kb),
            file_size_kb: request.file_size_kb.unwrap_or(self.file_size_kb),
        }
    }

    /// Each field, named as in the API, with its value.
    pub fn fields(&self) -> [(&'static str, u64); 6] {
        [
            ("cpu_ms", self.cpu_ms),
            ("wall_ms", self.wall_ms),
            ("memory_mb", self.memory_mb),
            ("pids", self.pids),
            ("output_kb", self.output_kb),
            ("file_size_kb", self.file_size_kb),
        ]
    }

    /// The field-wise minimum of two sets of limits.
    pub fn min(self, other: Self) -> Self {
        Self {
            cpu_ms: self.cpu_ms.min(other.cpu_ms),
            wall_ms: self.wall_ms.min(other.wall_ms),
            memory_mb: self.memory_mb.min(other.memory_mb),
            pids: self.pids.min(other.pids),
            output_kb: self.output_kb.min(other.output_kb),
            file_size_kb: self.file_size_kb.min(other.file_size_kb),
        }
    }
}

/// Resolved limits for compiling and for each run of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub compile: StageLimits,
    pub run: StageLimits,
}

impl Limits {
    pub fn overlaid(self, request: &LimitsRequest) -> Self {
        Self {
            compile: self.compile.overlaid(request.compile.as_ref()),
            run: self.run.overlaid(request.run.as_ref()),
        }
    }

    pub fn min(self, other: Self) -> Self {
        Self {
            compile: self.compile.min(other.compile),
            run: self.run.min(other.run),
        }
    }
}

/// Defaults and maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitBounds {
    /// What applies when a request leaves a field out.
    pub default: Limits,
    /// The most any request may ask for.
    pub max: Limits,
}

/// One language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageSpec {
    /// The canonical id, used in pool names and answers.
    pub id: String,
    /// Other names accepted in requests, including the legacy runner API's.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Display name.
    pub name: String,
    /// The sandbox image.
    pub image: String,
    /// argv that prints the language's version on stdout.
    pub version: Vec<String>,
    /// The file name given to `source`.
    pub source_file: String,
    /// argv of the compile step; absent for interpreted languages.
    #[serde(default)]
    pub compile: Option<Vec<String>>,
    /// argv that runs the program; the request's `args` are appended.
    pub run: Vec<String>,
    /// Overrides of the catalog-wide default limits.
    #[serde(default)]
    pub default_limits: LimitsRequest,
    /// Overrides of the catalog-wide maximum limits.
    #[serde(default)]
    pub max_limits: LimitsRequest,
    /// A program that prints [`LanguageSpec::hello_world_stdout`].
    pub hello_world: String,
    pub hello_world_stdout: String,
    /// A program that copies stdin to stdout.
    pub echo_stdin: String,
    /// A program that fails at run time (an uncaught error or a crash): `runtime_error`.
    pub runtime_error: String,
}

/// An element of a compile argv that stands for every submitted source file with the main
/// file's extension (the main file first): `gcc -o main {sources}` compiles `main.c` and
/// `util.c` of a multi-file program.
pub const SOURCES_PLACEHOLDER: &str = "{sources}";

/// The whole catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub limits: LimitBounds,
    #[serde(rename = "language")]
    pub languages: Vec<LanguageSpec>,
}

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog is not valid TOML for a catalog: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("the catalog names `{0}` twice (as an id or alias)")]
    DuplicateName(String),
    #[error("language `{0}` has an empty run command")]
    EmptyRun(String),
}

impl Catalog {
    /// The catalog compiled into this binary.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_CATALOG).expect("the committed catalog is valid: a unit test proves it")
    }

    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = toml::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for language in &catalog.languages {
            if language.run.is_empty() {
                return Err(CatalogError::EmptyRun(language.id.clone()));
            }
            for name in std::iter::once(&language.id).chain(&language.aliases) {
                if !seen.insert(name.to_ascii_lowercase()) {
                    return Err(CatalogError::DuplicateName(name.clone()));
                }
            }
        }
        Ok(catalog)
    }

    /// The language with this id or alias, ignoring ASCII case.
    pub fn find(&self, name: &str) -> Option<&LanguageSpec> {
        self.languages.iter().find(|language| {
            language.id.eq_ignore_ascii_case(name)
                || language
                    .aliases
                    .iter()
                    .any(|alias| alias.eq_ignore_ascii_case(name))
        })
    }

    /// The limits a request gets when it leaves every field out.
    pub fn default_limits(&self, language: &LanguageSpec) -> Limits {
        self.limits.default.overlaid(&language.default_limits)
    }

    /// The most a request may ask for in this language, before the tenant's own maximum.
    pub fn max_limits(&self, language: &LanguageSpec) -> Limits {
        self.limits.max.overlaid(&language.max_limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_resolves_aliases() {
        let catalog = Catalog::parse(BUILTIN_CATALOG).expect("catalog parses");
        let python = catalog.find("PYTHON3").expect("alias resolves");
        assert_eq!(python.id, "python");
        assert!(catalog.find("cobol").is_none());
        for language in &catalog.languages {
            let default = catalog.default_limits(language);
            let max = catalog.max_limits(language);
            assert_eq!(
                default.min(max),
                default,
                "{}: defaults above maxima",
                language.id
            );
        }
    }

    #[test]
    fn duplicate_names_are_refused() {
        let doubled =
            BUILTIN_CATALOG.replace("aliases = [\"sh\", \"shell\"]", "aliases = [\"python3\"]");
        assert!(
            matches!(Catalog::parse(&doubled), Err(CatalogError::DuplicateName(name)) if name == "python3")
        );
    }
}
