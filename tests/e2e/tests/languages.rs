//! Every catalog language, proven through the API: served with a version read from its image,
//! hello-world prints what the catalog says, stdin round-trips, and a compiled language's
//! syntax error is a compile error with the compiler's message.

use coderun_e2e::{StackOptions, TestStack};
use coderun_schema::catalog::Catalog;
use coderun_schema::run::{RunRequest, Verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalog_language_runs_hello_world_and_echoes_stdin() {
    let catalog = Catalog::builtin();
    let stack = TestStack::start_with(StackOptions {
        languages: catalog
            .languages
            .iter()
            .map(|language| language.id.clone())
            .collect(),
        warm_per_language: 1,
        ..Default::default()
    })
    .await;
    let client = stack.client();
    let served = client.languages().await.expect("languages").languages;
    for spec in &catalog.languages {
        let info = served
            .iter()
            .find(|language| language.id == spec.id)
            .unwrap_or_else(|| panic!("{} is served", spec.id));
        assert!(
            info.version
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit()),
            "{}: version {:?} read from the image",
            spec.id,
            info.version
        );

        let hello = RunRequest {
            language: spec.id.clone(),
            source: Some(spec.hello_world.clone()),
            ..Default::default()
        };
        let run = client.run_and_wait(&hello).await.expect("hello");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{}: {run:#?}", spec.id);
        assert_eq!(
            run.run.as_ref().expect("stage").stdout,
            spec.hello_world_stdout,
            "{}",
            spec.id
        );

        let input = "first line\nsecond line, with unicode: ünïcødé\n";
        let echo = RunRequest {
            language: spec.id.clone(),
            source: Some(spec.echo_stdin.clone()),
            stdin: input.to_owned(),
            ..Default::default()
        };
        let run = client.run_and_wait(&echo).await.expect("echo");
        assert_eq!(run.verdict, Some(Verdict::Ok), "{}: {run:#?}", spec.id);
        assert_eq!(
            run.run.as_ref().expect("stage").stdout,
            input,
            "{} echoes stdin",
            spec.id
        );

        if spec.compile.is_some() {
            let broken = RunRequest {
                language: spec.id.clone(),
                source: Some(format!(
                    "{}\n}}}} this is not a program {{{{\n",
                    spec.hello_world
                )),
                ..Default::default()
            };
            let run = client.run_and_wait(&broken).await.expect("broken");
            assert_eq!(
                run.verdict,
                Some(Verdict::CompileError),
                "{}: {run:#?}",
                spec.id
            );
            let stderr = &run.compile.as_ref().expect("compile stage").stderr;
            assert!(
                stderr.contains(&spec.source_file),
                "{}: compiler message {stderr:?}",
                spec.id
            );
        }
    }
    stack.stop().await;
}
