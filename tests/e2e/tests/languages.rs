//! Every catalog language, proven through the API: served with a version read from its image,
//! hello-world prints what the catalog says, stdin round-trips, a compiled language's syntax
//! error is a compile error with the compiler's message, and a crash is a runtime error.
//! Multi-file programs compile and run. The same run measures docs/languages.md's table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use coderun_client::Client;
use coderun_e2e::{StackOptions, TestStack};
use coderun_schema::catalog::{Catalog, LanguageSpec};
use coderun_schema::run::{RunRequest, SourceFile, StageLimitsRequest, Verdict};
use futures::StreamExt;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/languages.md");

/// What the table says about one language.
struct Measured {
    version: String,
    image_mb: f64,
    compile_ms: Option<u64>,
    run_ms: u64,
    round_trip_ms: u128,
}

fn request(spec: &LanguageSpec, source: &str, stdin: &str) -> RunRequest {
    RunRequest {
        language: spec.id.clone(),
        source: Some(source.to_owned()),
        stdin: stdin.to_owned(),
        ..Default::default()
    }
}

async fn prove(client: &Client, spec: &LanguageSpec, version: String) -> Measured {
    let id = &spec.id;
    let started = std::time::Instant::now();
    let hello = client
        .run_and_wait(&request(spec, &spec.hello_world, ""))
        .await
        .expect("hello");
    let round_trip_ms = started.elapsed().as_millis();
    assert_eq!(hello.verdict, Some(Verdict::Ok), "{id}: {hello:#?}");
    assert_eq!(hello.stdout(), spec.hello_world_stdout, "{id}");

    let input = "first line\nsecond line, with unicode: ünïcødé\n";
    let echo = client
        .run_and_wait(&request(spec, &spec.echo_stdin, input))
        .await
        .expect("echo");
    assert_eq!(echo.verdict, Some(Verdict::Ok), "{id}: {echo:#?}");
    assert_eq!(echo.stdout(), input, "{id} echoes stdin");

    let crash = client
        .run_and_wait(&request(spec, &spec.runtime_error, ""))
        .await
        .expect("crash");
    assert_eq!(
        crash.verdict,
        Some(Verdict::RuntimeError),
        "{id}: {crash:#?}"
    );
    let stage = crash.run.as_ref().expect("run stage");
    assert!(
        stage.signal.is_some() || (stage.exit_code != Some(0) && !stage.stderr.is_empty()),
        "{id}: a crash says why: {crash:#?}"
    );

    if spec.compile.is_some() {
        let source = format!("{}\n}}}} this is not a program {{{{\n", spec.hello_world);
        let broken = client
            .run_and_wait(&request(spec, &source, ""))
            .await
            .expect("broken");
        assert_eq!(
            broken.verdict,
            Some(Verdict::CompileError),
            "{id}: {broken:#?}"
        );
        // Some compilers (tsc) report on stdout.
        let compile = broken.compile.as_ref().expect("compile stage");
        let message = format!("{}{}", compile.stderr, compile.stdout);
        assert!(
            message.contains(&spec.source_file),
            "{id}: compiler message {message:?}"
        );
    }

    Measured {
        version,
        image_mb: image_size_mb(&spec.image),
        compile_ms: hello.compile.as_ref().map(|stage| stage.wall_ms),
        run_ms: hello.run.as_ref().expect("run stage").wall_ms,
        round_trip_ms,
    }
}

fn image_size_mb(image: &str) -> f64 {
    let output = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}}", image])
        .output()
        .expect("docker image inspect runs");
    let bytes: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("size of {image}"));
    bytes / 1_000_000.0
}

fn table(catalog: &Catalog, measured: &BTreeMap<String, Measured>) -> String {
    let mut doc = String::from(
        "# Languages\n\n\
         Generated from `images/languages.toml` by `tests/e2e/tests/languages.rs` \
         (`CODERUN_UPDATE_DOCS=1 bash scripts/test.sh`); do not edit by hand. Versions are read \
         from the images; wall times are one hello-world run through the whole stack (warm \
         container) on the machine that generated the table: `compile` and `run` are the \
         sandbox's own measurements, `round trip` is the client's `POST /v1/runs?wait=true`.\n\n\
         | language | id | aliases | version | image size | compile | run | round trip |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for spec in &catalog.languages {
        let m = &measured[&spec.id];
        let compile = m
            .compile_ms
            .map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"));
        let aliases = spec
            .aliases
            .iter()
            .map(|alias| format!("`{alias}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            doc,
            "| {} | `{}` | {} | {} | {:.0} MB | {} | {} ms | {} ms |",
            spec.name, spec.id, aliases, m.version, m.image_mb, compile, m.run_ms, m.round_trip_ms
        );
    }
    doc
}

/// The ids in the committed table's rows, in order.
/// The rows of the languages table, each cut to the cells that do not depend on the machine
/// (language, id, aliases, version): sizes and times are measurements, the rest is fact.
fn stable_rows(doc: &str) -> Vec<String> {
    doc.lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| language |"))
        .map(|row| row.split(" | ").take(4).collect::<Vec<_>>().join(" | "))
        .collect()
}

/// Proves every catalog language under one OCI runtime and isolation mode and measures it.
async fn prove_catalog(
    catalog: &Catalog,
    mode: &coderun_e2e::SandboxMode,
) -> BTreeMap<String, Measured> {
    let runtime = mode;
    let stack = TestStack::start_with(StackOptions {
        languages: catalog
            .languages
            .iter()
            .map(|language| language.id.clone())
            .collect(),
        warm_per_language: 1,
        ..mode.options()
    })
    .await;
    let client = stack.client();
    let served = client.languages().await.expect("languages").languages;
    let checks = catalog.languages.iter().map(|spec| {
        let info = served
            .iter()
            .find(|language| language.id == spec.id)
            .unwrap_or_else(|| panic!("{} is served under {runtime}", spec.id));
        assert!(
            info.version
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit()),
            "{}: version {:?} read from the image",
            spec.id,
            info.version
        );
        let client = &client;
        async move {
            let measured = prove(client, spec, info.version.clone()).await;
            (spec.id.clone(), measured)
        }
    });
    // As many at a time as the executor has slots.
    let measured = futures::stream::iter(checks)
        .buffer_unordered(2)
        .collect()
        .await;
    stack.stop().await;
    measured
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalog_language_runs_hello_world_echoes_stdin_and_fails_as_it_should() {
    let catalog = Catalog::builtin();
    let mut documented = None;
    // Every language under every runtime and mode; the table is measured under runc/strict,
    // the default.
    for mode in coderun_e2e::sandbox_modes() {
        eprintln!("--- every language under {mode}");
        let measured = prove_catalog(&catalog, &mode).await;
        documented.get_or_insert(measured);
    }
    let measured = documented.expect("runc/strict is always among the modes");
    let doc = table(&catalog, &measured);
    if std::env::var("CODERUN_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(DOC_PATH, &doc).expect("write docs/languages.md");
    }
    let committed = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    assert_eq!(stable_rows(&doc).len(), catalog.languages.len(), "{doc}");
    assert_eq!(
        stable_rows(&committed),
        stable_rows(&doc),
        "docs/languages.md is stale (a language, alias or version differs): regenerate it with \
         CODERUN_UPDATE_DOCS=1 bash scripts/test.sh\n{doc}"
    );
}

fn file(name: &str, content: &str) -> SourceFile {
    SourceFile {
        name: name.to_owned(),
        content: content.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_file_programs_run_and_a_jvm_fits_a_small_limit() {
    let stack = TestStack::start_with(StackOptions {
        languages: ["java", "c", "python", "go"].map(str::to_owned).to_vec(),
        warm_per_language: 0,
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let programs = [
        (
            "java",
            vec![
                file(
                    "Main.java",
                    "public class Main {\n    public static void main(String[] args) {\n        \
                     System.out.println(new Greeter(\"files\").greet());\n    }\n}\n",
                ),
                file(
                    "Greeter.java",
                    "public class Greeter {\n    private final String name;\n    \
                     public Greeter(String name) { this.name = name; }\n    \
                     public String greet() { return \"Hello, \" + name + \"!\"; }\n}\n",
                ),
            ],
            "Hello, files!\n",
        ),
        (
            "c",
            vec![
                file(
                    "main.c",
                    "#include <stdio.h>\n#include \"lib/square.h\"\n\
                     int main(void) { printf(\"%d %d\\n\", square(7), SQUARE_OF_THREE); return 0; }\n",
                ),
                file(
                    "lib/square.h",
                    "#pragma once\n#define SQUARE_OF_THREE 9\nint square(int x);\n",
                ),
                file(
                    "square.c",
                    "#include \"lib/square.h\"\nint square(int x) { return x * x; }\n",
                ),
            ],
            "49 9\n",
        ),
        (
            "python",
            vec![
                file("main.py", "from helpers.text import shout\nprint(shout('files'))\n"),
                file("helpers/__init__.py", ""),
                file(
                    "helpers/text.py",
                    "def shout(word):\n    return word.upper() + '!'\n",
                ),
            ],
            "FILES!\n",
        ),
        (
            "go",
            vec![
                file(
                    "main.go",
                    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(double(21)) }\n",
                ),
                file(
                    "double.go",
                    "package main\n\nfunc double(x int) int { return 2 * x }\n",
                ),
                // Another package's directory: not part of this one.
                file("tools/gen.go", "package tools\n"),
            ],
            "42\n",
        ),
    ];
    for (language, files, expected) in programs {
        let run = client
            .run_and_wait(&RunRequest {
                language: language.to_owned(),
                files,
                ..Default::default()
            })
            .await
            .expect("run");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{language}: {run:#?}");
        assert_eq!(run.stdout(), expected, "{language}");
    }

    // Memory is limited by the cgroup, not the address space: a JVM reserves gigabytes of it
    // and still runs in 64 MiB, its heap sized from the container's limit.
    let mut small_jvm = RunRequest {
        language: "java".to_owned(),
        source: Some(
            "public class Main {
    public static void main(String[] args) {
                     System.out.println(Runtime.getRuntime().maxMemory() < (64L << 20));
    }
}
"
            .to_owned(),
        ),
        ..Default::default()
    };
    small_jvm.limits.run = Some(StageLimitsRequest {
        memory_mb: Some(64),
        ..Default::default()
    });
    let run = client.run_and_wait(&small_jvm).await.expect("small jvm");
    assert_eq!(run.verdict, Some(Verdict::Ok), "{run:#?}");
    assert_eq!(run.stdout(), "true\n", "the heap fits the limit");
    stack.stop().await;
}
