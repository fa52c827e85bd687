//! `/docs` works without internet: the page refers to nothing outside the gateway, which serves
//! its script and stylesheet itself, and in a real browser (headless Chromium) it renders the
//! API's operations from `/openapi.json`.

use coderun_e2e::TestStack;
use reqwest::Method;

/// Debian's Chromium; required under CI (`scripts/test.sh` installs it), a printed skip
/// elsewhere.
fn chromium() -> Option<&'static str> {
    let path = "/usr/bin/chromium";
    if std::path::Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {path} is missing: scripts/test.sh installs Debian's chromium"
    );
    eprintln!("SKIPPED rendering /docs in a browser: {path} is missing (runs under CI)");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_every_operation_from_the_gateway_alone() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            client
                .send_raw(Method::GET, path, None, Vec::new(), &[])
                .await
                .expect("an answer")
        }
    };
    let page = get("/docs").await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        html.contains("src=\"/docs/assets/swagger-ui-bundle.js\""),
        "{html}"
    );
    assert!(html.contains("'/openapi.json'"), "{html}");
    for (path, content_type, at_least) in [
        (
            "/docs/assets/swagger-ui-bundle.js",
            "text/javascript",
            1_000_000,
        ),
        ("/docs/assets/swagger-ui.css", "text/css", 100_000),
    ] {
        let asset = get(path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(
            asset
                .content_type
                .as_deref()
                .is_some_and(|ty| ty.starts_with(content_type)),
            "{path}: {:?}",
            asset.content_type
        );
        assert!(
            asset.body.len() > at_least,
            "{path}: {} bytes",
            asset.body.len()
        );
    }

    let Some(chromium) = chromium() else {
        stack.stop().await;
        return;
    };
    let profile = std::env::temp_dir().join(format!("coderun-chromium-{}", std::process::id()));
    let url = format!("{}/docs", stack.base_url);
    // `timeout` bounds the browser; its own virtual-time budget normally ends it first.
    let mut browser = std::process::Command::new("timeout");
    browser
        .args(["120", chromium])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url);
    let output = tokio::task::spawn_blocking(move || browser.output())
        .await
        .expect("joins")
        .expect("Chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("opblock"),
        "no operation rendered; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for path in ["/v1/runs/{id}/cancel", "/v1/runs/batch", "/runners/create"] {
        assert!(dom.contains(path), "{path} is not on the rendered page");
    }
    stack.stop().await;
}
