//! The committed OpenAPI document is what the code generates. Regenerate it with
//! `CODERUN_UPDATE_OPENAPI=1 scripts/test.sh` (or the same variable on this test alone).

use coderun_e2e::TestStack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_openapi_document_is_current() {
    let stack = TestStack::start().await;
    let generated = stack.client().openapi().await.expect("the spec is served");
    stack.stop().await;

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json");
    let pretty = serde_json::to_string_pretty(&generated).expect("serialisable") + "\n";
    if std::env::var("CODERUN_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(&path, &pretty).expect("write openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "openapi.json is stale: run CODERUN_UPDATE_OPENAPI=1 scripts/test.sh and commit the result"
    );

    for path in [
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/languages",
        "/healthz",
        "/readyz",
    ] {
        assert!(generated["paths"][path].is_object(), "{path} is documented");
    }
    for schema in ["RunRequest", "Run", "StageResult", "Verdict", "Problem"] {
        assert!(
            generated["components"]["schemas"][schema].is_object(),
            "{schema} is documented"
        );
    }
    let text = generated.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        let schema = name.trim_start_matches("#/components/schemas/");
        assert!(
            generated["components"]["schemas"][schema].is_object(),
            "{name} resolves"
        );
    }
    let responses = &generated["paths"]["/v1/runs"]["post"]["responses"];
    for status in ["200", "202", "400", "401", "413", "415", "422", "503"] {
        assert!(
            responses[status].is_object(),
            "POST /v1/runs documents {status}"
        );
    }
}
