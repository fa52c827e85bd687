//! A [`RunRequest`] in, a resolved [`Job`] out — or a 413/422 that names every bad field.
//!
//! Pure: the catalog, the tenant's maximum and the size limits come in as arguments.

use coderun_schema::bytes64::{self, Bytes64};
use coderun_schema::catalog::{Catalog, Limits};
use coderun_schema::file_names::{file_name_problem, file_set_problems};
use coderun_schema::messages::{Job, JobFile, JobTest};
use coderun_schema::problem::FieldError;
use coderun_schema::run::{Encoding, RunRequest};

use crate::budget::{over_budget, Asked};
use crate::config::RunsConfig;
use crate::error::ApiError;

/// Longest single argument, in bytes.
const MAX_ARG: usize = 4096;

struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

fn decode(text: &str, encoding: Encoding, field: &str, problems: &mut Problems) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Base64 => bytes64::decode(text).unwrap_or_else(|_| {
            problems.add(field, "is not valid base64");
            Vec::new()
        }),
    }
}

fn check_limits(requested: Limits, max: Limits, problems: &mut Problems) {
    for (stage, requested, max) in [
        ("compile", requested.compile, max.compile),
        ("run", requested.run, max.run),
    ] {
        let fields = requested.fields().into_iter().zip(max.fields());
        for ((name, value), (_, most)) in fields {
            let field = format!("limits.{stage}.{name}");
            if value == 0 {
                problems.add(field, "must be at least 1");
            } else if value > most {
                problems.add(field, format!("must be at most {most} (asked for {value})"));
            }
        }
    }
}

/// Resolves and checks a request. `max` is the tenant's maximum for this language.
pub fn resolve(
    request: &RunRequest,
    catalog: &Catalog,
    tenant_max: impl Fn(Limits) -> Limits,
    settings: &RunsConfig,
) -> Result<Job, ApiError> {
    let mut problems = Problems(Vec::new());
    let Some(language) = catalog.find(&request.language) else {
        let known: Vec<&str> = catalog.languages.iter().map(|l| l.id.as_str()).collect();
        return Err(ApiError::invalid_field(
            "language",
            format!(
                "unknown language `{}`; known: {}",
                request.language,
                known.join(", ")
            ),
        ));
    };
    let encoding = request.encoding;

    let mut files = Vec::new();
    match (&request.source, request.files.is_empty()) {
        (Some(_), false) => problems.add("source", "give either `source` or `files`, not both"),
        (None, true) => problems.add("files", "give `source` or at least one file"),
        (Some(source), true) => files.push(JobFile {
            name: language.source_file.clone(),
            content: Bytes64(decode(source, encoding, "source", &mut problems)),
        }),
        (None, false) => {
            if request.files.len() > settings.max_files {
                problems.add("files", format!("at most {} files", settings.max_files));
            }
            for (index, file) in request.files.iter().enumerate() {
                if let Some(problem) = file_name_problem(&file.name) {
                    problems.add(format!("files[{index}].name"), problem);
                }
                let field = format!("files[{index}].content");
                files.push(JobFile {
                    name: file.name.clone(),
                    content: Bytes64(decode(&file.content, encoding, &field, &mut problems)),
                });
            }
            let names = request.files.iter().map(|file| file.name.as_str());
            for (index, problem) in file_set_problems(names) {
                problems.add(format!("files[{index}].name"), problem);
            }
            // The catalog's commands name the main file: without it nothing would run.
            if !files.iter().any(|file| file.name == language.source_file) {
                problems.add(
                    "files",
                    format!(
                        "must include `{}`, the {} program's main file",
                        language.source_file, language.name
                    ),
                );
            }
        }
    }

    if request.args.len() > settings.max_args {
        problems.add("args", format!("at most {} arguments", settings.max_args));
    }
    for (index, arg) in request.args.iter().enumerate() {
        if arg.len() > MAX_ARG || arg.contains('\0') {
            problems.add(
                format!("args[{index}]"),
                "must be at most 4096 bytes without NUL",
            );
        }
    }

    let explicit_tests = !request.tests.is_empty();
    if request.tests.len() > settings.max_tests {
        problems.add("tests", format!("at most {} tests", settings.max_tests));
    }
    if explicit_tests && !request.stdin.is_empty() {
        problems.add("stdin", "give stdin per test when `tests` is present");
    }
    let tests: Vec<JobTest> = if explicit_tests {
        request
            .tests
            .iter()
            .enumerate()
            .map(|(index, test)| JobTest {
                stdin: Bytes64(decode(
                    &test.stdin,
                    encoding,
                    &format!("tests[{index}].stdin"),
                    &mut problems,
                )),
                expected_stdout: test.expected_stdout.as_ref().map(|expected| {
                    let field = format!("tests[{index}].expected_stdout");
                    Bytes64(decode(expected, encoding, &field, &mut problems))
                }),
            })
            .collect()
    } else {
        vec![JobTest {
            stdin: Bytes64(decode(&request.stdin, encoding, "stdin", &mut problems)),
            expected_stdout: None,
        }]
    };

    let limits = catalog.default_limits(language).overlaid(&request.limits);
    check_limits(
        limits,
        tenant_max(catalog.max_limits(language)),
        &mut problems,
    );
    let asked = Asked {
        limits,
        executions: tests.len() as u64,
        explicit_tests,
        compiles: language.compile.is_some(),
    };
    problems.0.extend(over_budget(asked, settings));

    if let Some(url) = &request.callback_url {
        match url::Url::parse(url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
            _ => problems.add("callback_url", "must be an absolute http or https URL"),
        }
    }

    if !problems.0.is_empty() {
        let detail = problems
            .0
            .iter()
            .map(|problem| format!("{}: {}", problem.field, problem.message))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ApiError::Invalid {
            detail,
            errors: problems.0,
        });
    }

    let source_bytes: usize = files.iter().map(|file| file.content.len()).sum();
    if source_bytes > settings.max_source_bytes {
        return Err(ApiError::TooLarge(format!(
            "the source is {source_bytes} bytes; at most {} are accepted",
            settings.max_source_bytes
        )));
    }
    let stdin_bytes = tests.iter().map(|test| test.stdin.len()).max().unwrap_or(0);
    if stdin_bytes > settings.max_stdin_bytes {
        return Err(ApiError::TooLarge(format!(
            "stdin is {stdin_bytes} bytes; at most {} are accepted",
            settings.max_stdin_bytes
        )));
    }

    Ok(Job {
        language: language.id.clone(),
        files,
        args: request.args.clone(),
        tests,
        explicit_tests,
        limits,
        encoding,
        callback_url: request.callback_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coderun_schema::run::{SourceFile, StageLimitsRequest};

    fn settings() -> RunsConfig {
        crate::config::Config::defaults_for_tests().runs
    }

    fn python(source: &str) -> RunRequest {
        RunRequest {
            language: "python3".to_owned(),
            source: Some(source.to_owned()),
            ..Default::default()
        }
    }

    fn resolve_default(request: &RunRequest) -> Result<Job, ApiError> {
        resolve(request, &Catalog::builtin(), |max| max, &settings())
    }

    fn field_errors(error: ApiError) -> Vec<String> {
        match error {
            ApiError::Invalid { errors, .. } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn source_shorthand_uses_the_catalog_file_name_and_defaults() {
        let job = resolve_default(&python("print(1)")).expect("valid");
        assert_eq!(job.language, "python");
        assert_eq!(job.files[0].name, "main.py");
        assert_eq!(job.tests.len(), 1);
        assert_eq!(job.limits, Catalog::builtin().limits.default);
    }

    #[test]
    fn escaping_file_names_are_refused() {
        for name in [
            "../x",
            "/etc/passwd",
            "a/../../b",
            "",
            "a\nb",
            "dir/",
            ".",
            "-o.c",
            "@options.c",
        ] {
            let request = RunRequest {
                language: "c".to_owned(),
                files: vec![
                    SourceFile {
                        name: name.to_owned(),
                        content: String::new(),
                    },
                    SourceFile {
                        name: "main.c".to_owned(),
                        content: String::new(),
                    },
                ],
                ..Default::default()
            };
            assert_eq!(
                field_errors(resolve_default(&request).expect_err(name)),
                vec!["files[0].name"],
                "{name:?}"
            );
        }
    }

    #[test]
    fn files_without_the_main_file_are_refused() {
        let request = RunRequest {
            language: "c".to_owned(),
            files: vec![SourceFile {
                name: "util.c".to_owned(),
                content: String::new(),
            }],
            ..Default::default()
        };
        assert_eq!(
            field_errors(resolve_default(&request).expect_err("no main.c")),
            vec!["files"]
        );
    }

    #[test]
    fn limits_above_the_tenant_maximum_are_refused_not_lowered() {
        let mut request = python("print(1)");
        request.limits.run = Some(StageLimitsRequest {
            memory_mb: Some(4096),
            ..Default::default()
        });
        let error =
            resolve(&request, &Catalog::builtin(), |max| max, &settings()).expect_err("too much");
        assert_eq!(field_errors(error), vec!["limits.run.memory_mb"]);
    }

    #[test]
    fn oversized_source_is_413() {
        let request = python(&"x".repeat(settings().max_source_bytes + 1));
        assert!(matches!(
            resolve_default(&request),
            Err(ApiError::TooLarge(_))
        ));
    }

    #[test]
    fn unknown_language_is_422_on_language() {
        let mut request = python("");
        request.language = "cobol".to_owned();
        assert_eq!(
            field_errors(resolve_default(&request).expect_err("unknown")),
            vec!["language"]
        );
    }

    #[test]
    fn base64_is_decoded_and_checked() {
        let mut request = python("cHJpbnQoMSk=");
        request.encoding = Encoding::Base64;
        assert_eq!(
            resolve_default(&request).expect("valid").files[0]
                .content
                .as_slice(),
            b"print(1)"
        );
        request.source = Some("not base64!".to_owned());
        assert_eq!(
            field_errors(resolve_default(&request).expect_err("bad")),
            vec!["source"]
        );
    }
}
