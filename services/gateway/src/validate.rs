//! A [`RunRequest`] in, a resolved [`Job`] out — or a 413/422 that names every bad field.
//!
//! Pure: the catalog, the tenant's maximum and the size limits come in as arguments.

use coderun_schema::bytes64::{self, Bytes64};
use coderun_schema::callback::CallbackTarget;
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
        let checked = CallbackTarget::parse(url)
            .and_then(|target| target.check_literal(&settings.callback_allow));
        if let Err(why) = checked {
            problems.add("callback_url", why);
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
        isolation: None,
    })
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
