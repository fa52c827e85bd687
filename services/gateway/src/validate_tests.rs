//! Unit tests of [`super`]: requests resolved against the real catalog and defaults.
use super::*;
use coderun_schema::run::{SourceFile, StageLimitsRequest, TestCase};

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

fn python_with_run_memory(memory_mb: u64) -> RunRequest {
    let mut request = python("print(1)");
    request.limits.run = Some(StageLimitsRequest {
        memory_mb: Some(memory_mb),
        ..Default::default()
    });
    request
}

fn tenant_allowing_run_memory(memory_mb: u64) -> crate::auth::Tenant {
    crate::auth::Tenant {
        id: "acme".to_owned(),
        key_sha256: vec!["0".repeat(64)],
        max_limits: coderun_schema::run::LimitsRequest {
            run: Some(StageLimitsRequest {
                memory_mb: Some(memory_mb),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn resolve_for(tenant: &crate::auth::Tenant, request: &RunRequest) -> Result<Job, ApiError> {
    resolve(
        request,
        &Catalog::builtin(),
        |max| tenant.max_limits(max),
        &settings(),
    )
}

#[test]
fn limits_above_the_tenant_maximum_are_refused_not_lowered() {
    let catalog = Catalog::builtin();
    let language = catalog.find("python").expect("python is in the catalog");
    let catalog_max = catalog.max_limits(language).run.memory_mb;
    let default = catalog.default_limits(language).run.memory_mb;
    let tenant_max = default + 1;
    assert!(
        tenant_max < catalog_max,
        "the tenant's maximum is the lower one"
    );
    let tenant = tenant_allowing_run_memory(tenant_max);

    let at_max = resolve_for(&tenant, &python_with_run_memory(tenant_max)).expect("allowed");
    assert_eq!(at_max.limits.run.memory_mb, tenant_max, "kept as asked");
    let above = resolve_for(&tenant, &python_with_run_memory(tenant_max + 1))
        .expect_err("above the tenant's maximum, though below the catalog's");
    assert_eq!(field_errors(above), vec!["limits.run.memory_mb"]);
    // Without a tenant maximum, the catalog's applies.
    let open = crate::auth::Tenant {
        max_limits: Default::default(),
        ..tenant
    };
    assert!(resolve_for(&open, &python_with_run_memory(tenant_max + 1)).is_ok());
    let beyond = resolve_for(&open, &python_with_run_memory(catalog_max + 1))
        .expect_err("above the catalog's maximum");
    assert_eq!(field_errors(beyond), vec!["limits.run.memory_mb"]);
}

#[test]
fn a_tenant_maximum_above_the_catalogs_does_not_raise_it() {
    let catalog = Catalog::builtin();
    let language = catalog.find("python").expect("python is in the catalog");
    let catalog_max = catalog.max_limits(language).run.memory_mb;
    let generous = tenant_allowing_run_memory(catalog_max * 2);
    let error = resolve_for(&generous, &python_with_run_memory(catalog_max + 1))
        .expect_err("the catalog's maximum still holds");
    assert_eq!(field_errors(error), vec!["limits.run.memory_mb"]);
    assert!(resolve_for(&generous, &python_with_run_memory(catalog_max)).is_ok());
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

fn python_files(count: usize) -> RunRequest {
    let mut files = vec![SourceFile {
        name: "main.py".to_owned(),
        content: "import helper0".to_owned(),
    }];
    files.extend((1..count).map(|index| SourceFile {
        name: format!("helper{index}.py"),
        content: String::new(),
    }));
    RunRequest {
        language: "python".to_owned(),
        files,
        ..Default::default()
    }
}

#[test]
fn counts_may_reach_their_maximum_but_not_pass_it() {
    let settings = settings();
    assert!(resolve_default(&python_files(settings.max_files)).is_ok());
    let refused = resolve_default(&python_files(settings.max_files + 1)).expect_err("too many");
    assert_eq!(field_errors(refused), vec!["files"]);

    let mut request = python("print(1)");
    request.args = vec!["a".to_owned(); settings.max_args];
    assert!(resolve_default(&request).is_ok());
    request.args.push("a".to_owned());
    assert_eq!(
        field_errors(resolve_default(&request).expect_err("too many")),
        vec!["args"]
    );

    let mut request = python("print(1)");
    request.tests = vec![TestCase::default(); settings.max_tests];
    assert!(resolve_default(&request).is_ok());
    request.tests.push(TestCase::default());
    assert_eq!(
        field_errors(resolve_default(&request).expect_err("too many")),
        vec!["tests"]
    );
}

#[test]
fn an_argument_may_be_4096_bytes_without_nul() {
    let mut request = python("print(1)");
    request.args = vec!["x".repeat(MAX_ARG), "ok".to_owned()];
    assert!(resolve_default(&request).is_ok());
    request.args = vec!["ok".to_owned(), "x".repeat(MAX_ARG + 1), "a\0b".to_owned()];
    assert_eq!(
        field_errors(resolve_default(&request).expect_err("refused")),
        vec!["args[1]", "args[2]"]
    );
}

#[test]
fn stdin_goes_in_the_tests_when_there_are_tests() {
    let mut request = python("print(input())");
    request.stdin = "top level\n".to_owned();
    let job = resolve_default(&request).expect("stdin without tests");
    assert_eq!(job.tests.len(), 1);
    assert_eq!(job.tests[0].stdin.as_slice(), b"top level\n");
    request.tests = vec![TestCase::default()];
    assert_eq!(
        field_errors(resolve_default(&request).expect_err("both")),
        vec!["stdin"]
    );
}

#[test]
fn a_callback_is_an_absolute_http_url_to_a_public_or_allowed_target() {
    let mut request = python("print(1)");
    for good in ["https://example.com/hook", "http://93.184.215.14:9000/x"] {
        request.callback_url = Some(good.to_owned());
        assert!(resolve_default(&request).is_ok(), "{good}");
    }
    // An internal target is refused unless the operator allowed exactly it.
    request.callback_url = Some("http://127.0.0.1:9000/x".to_owned());
    assert_eq!(
        field_errors(resolve_default(&request).expect_err("loopback")),
        vec!["callback_url"]
    );
    let mut allowing = settings();
    allowing.callback_allow = vec!["127.0.0.1:9000".to_owned()];
    assert!(resolve(&request, &Catalog::builtin(), |max| max, &allowing).is_ok());
    for bad in [
        "ftp://example.com/hook",
        "mailto:ops@example.com",
        "/relative",
        "not a url",
        "http://user:secret@example.com/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
    ] {
        request.callback_url = Some(bad.to_owned());
        assert_eq!(
            field_errors(resolve_default(&request).expect_err(bad)),
            vec!["callback_url"],
            "{bad}"
        );
    }
}

#[test]
fn sizes_may_reach_their_maximum_but_not_pass_it() {
    let settings = settings();
    assert!(resolve_default(&python(&"x".repeat(settings.max_source_bytes))).is_ok());
    let mut request = python("print(1)");
    request.stdin = "x".repeat(settings.max_stdin_bytes);
    assert!(resolve_default(&request).is_ok());
    request.stdin.push('x');
    assert!(matches!(
        resolve_default(&request),
        Err(ApiError::TooLarge(_))
    ));
}
