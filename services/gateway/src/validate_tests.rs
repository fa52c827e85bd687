//! Unit tests of [`super`]: requests resolved against the real catalog and defaults.
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
