//! `GET /v1/runs/{id}/events`: a run's Server-Sent Events, in order, as they happen, replayed
//! after the run finished, resumable with `Last-Event-ID`, and private to the run's tenant.

use coderun_client::{Client, SseEvent};
use coderun_e2e::{problem_of, TestStack, TENANT_B_KEY};
use coderun_schema::messages::RunEventKind;
use coderun_schema::run::{RunRequest, TestCase, Verdict};

fn three_tests(language: &str, source: &str) -> RunRequest {
    RunRequest {
        language: language.to_owned(),
        source: Some(source.to_owned()),
        tests: vec![
            TestCase {
                stdin: "1\n".to_owned(),
                expected_stdout: Some("1\n".to_owned()),
            },
            TestCase {
                stdin: "2\n".to_owned(),
                expected_stdout: Some("2\n".to_owned()),
            },
            TestCase {
                stdin: "3\n".to_owned(),
                expected_stdout: Some("4\n".to_owned()),
            },
        ],
        ..Default::default()
    }
}

/// Every event of a run's stream, from just after `last_event_id`, until the stream ends.
async fn all_events(client: &Client, id: &str, last_event_id: Option<&str>) -> Vec<SseEvent> {
    client
        .run_events(id, last_event_id)
        .await
        .expect("stream opens")
        .collect()
        .await
        .expect("stream reads")
}

fn kinds(events: &[SseEvent]) -> Vec<RunEventKind> {
    events.iter().map(|event| event.data.event).collect()
}

/// Every event's `id:` is its `seq`, they count up from `first`, and `event:` names its kind.
fn assert_numbered(events: &[SseEvent], first: u64) {
    for (event, seq) in events.iter().zip(first..) {
        assert_eq!(event.data.seq, seq, "{events:#?}");
        assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()));
        let name = serde_json::to_value(event.data.event).expect("kind");
        assert_eq!(Some(event.event.as_str()), name.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_three_test_run_streams_its_events_in_order_and_replays_them() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let source = "#include <stdio.h>\nint main(void){int n; if(scanf(\"%d\",&n)!=1) return 1; printf(\"%d\\n\", n); return 0;}\n";
    let id = client
        .create_run(&three_tests("c", source), &Default::default())
        .await
        .expect("accepted")
        .body
        .id;

    // Connected while the run is queued or running: the stream shows it live.
    let live = all_events(&client, &id, None).await;
    assert_eq!(
        kinds(&live),
        [
            RunEventKind::Queued,
            RunEventKind::Running,
            RunEventKind::Compiled,
            RunEventKind::Test,
            RunEventKind::Test,
            RunEventKind::Test,
            RunEventKind::Completed,
        ],
        "{live:#?}"
    );
    assert_numbered(&live, 1);
    let compiled = live[2].data.result.as_ref().expect("compile result");
    assert_eq!(compiled.verdict, Some(Verdict::Ok));
    let tests: Vec<_> = live[3..6]
        .iter()
        .map(|event| {
            let result = event.data.result.as_ref().expect("test result");
            (event.data.test_index, result.stdout.clone(), result.verdict)
        })
        .collect();
    assert_eq!(
        tests,
        [
            (Some(0), "1\n".to_owned(), Some(Verdict::Ok)),
            (Some(1), "2\n".to_owned(), Some(Verdict::Ok)),
            (Some(2), "3\n".to_owned(), Some(Verdict::WrongAnswer)),
        ]
    );
    let finished = live[6].data.run.as_ref().expect("the whole run");
    assert_eq!(finished.verdict, Some(Verdict::WrongAnswer));
    assert_eq!(finished.tests.len(), 3);
    assert_eq!(
        live[0].data.run.as_ref().map(|run| run.id.as_str()),
        Some(id.as_str())
    );

    // Connected after the run finished: the same events again.
    let replay = all_events(&client, &id, None).await;
    assert_eq!(kinds(&replay), kinds(&live));
    assert_eq!(
        replay.last().map(|event| &event.data),
        live.last().map(|event| &event.data)
    );

    // Resumed after the third event: only what followed it.
    let resumed = all_events(&client, &id, Some("3")).await;
    assert_eq!(kinds(&resumed), kinds(&live)[3..]);
    assert_numbered(&resumed, 4);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_published_as_it_happens_not_at_the_end() {
    let stack = TestStack::start().await;
    let client = stack.client();
    // The first test ends at once, the second after a second and a half.
    let source = "read n; if [ \"$n\" = 2 ]; then sleep 1.5; fi; echo $n";
    let mut request = three_tests("bash", source);
    request.tests.truncate(2);
    let id = client
        .create_run(&request, &Default::default())
        .await
        .expect("accepted")
        .body
        .id;
    let mut stream = client.run_events(&id, None).await.expect("stream opens");
    let mut first_test = None;
    while let Some(event) = stream.next().await.expect("stream reads") {
        if event.data.event == RunEventKind::Test && first_test.is_none() {
            first_test = Some(event.data.at);
            // The run is still going when its first test is reported.
            let now = client.get_run(&id, None).await.expect("read").body;
            assert!(
                !now.status.is_terminal(),
                "the run ended before its first test was reported"
            );
        }
    }
    let finished = client.get_run(&id, None).await.expect("read").body;
    let gap = finished.finished_at.expect("finished") - first_test.expect("a test event");
    assert!(
        gap.whole_milliseconds() >= 1000,
        "the first test was reported only {gap} before the run ended"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_run_and_a_bad_last_event_id_are_refused() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let run = client
        .run_and_wait(&RunRequest {
            language: "bash".to_owned(),
            source: Some("echo hi".to_owned()),
            ..Default::default()
        })
        .await
        .expect("runs");
    let other = stack.client_with_key(TENANT_B_KEY);
    let refused = other
        .run_events(&run.id, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status(), Some(404));
    let missing = client
        .run_events("run_01JZZZZZZZZZZZZZZZZZZZZZZZ", None)
        .await
        .err();
    assert_eq!(missing.and_then(|error| error.status()), Some(404));

    for bad in ["seven", "-1", "18446744073709551615"] {
        let raw = client
            .send_raw(
                reqwest::Method::GET,
                &format!("/v1/runs/{}/events", run.id),
                None,
                Vec::new(),
                &[("Last-Event-ID", bad)],
            )
            .await
            .expect("answered");
        assert_eq!(raw.status, 400, "{bad}");
        assert!(problem_of(&raw)
            .detail
            .unwrap_or_default()
            .contains("Last-Event-ID"));
    }
    // An id past the end of a finished run's stream: nothing more, the stream ends.
    let past = all_events(&client, &run.id, Some("9223372036854775807")).await;
    assert!(past.is_empty(), "{past:#?}");

    // A run without tests has one `test` event: its one execution.
    let events = all_events(&client, &run.id, None).await;
    assert_eq!(
        kinds(&events),
        [
            RunEventKind::Queued,
            RunEventKind::Running,
            RunEventKind::Test,
            RunEventKind::Completed
        ]
    );
    assert_eq!(
        events[2].data.result.as_ref().map(|r| r.stdout.as_str()),
        Some("hi\n")
    );
    stack.stop().await;
}
