//! `POST /v1/runs/batch`: each run of a batch is accepted or refused on its own, the accepted
//! ones run, and the same batch sent again with its `Idempotency-Key` answers the same runs.

use coderun_e2e::TestStack;
use coderun_schema::batch::MAX_BATCH_RUNS;
use coderun_schema::run::{RunStatus, Verdict};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_of_a_batch_is_answered_on_its_own_and_once() {
    let stack = TestStack::start().await;
    let client = stack.client();
    let runs = [
        json!({"language": "python", "source": "print(6 * 7)"}),
        json!({"language": "cobol", "source": "DISPLAY 'HI'."}),
        json!({"language": "bash", "sorce": "echo typo"}),
        json!({"language": "bash", "source": "echo ok", "limits": {"run": {"memory_mb": coderun_e2e::max_limits("bash").run.memory_mb + 1}}}),
        json!({"language": "bash", "source": "echo fine"}),
    ];
    let answer = client
        .create_batch(&runs, Some("batch-1"))
        .await
        .expect("answered");
    assert_eq!(answer.runs.len(), runs.len());
    let accepted: Vec<Option<&str>> = answer.runs.iter().map(|item| item.id.as_deref()).collect();
    assert!(
        accepted[0].is_some() && accepted[4].is_some(),
        "{answer:#?}"
    );
    let refused = |index: usize| {
        let problem = answer.runs[index].problem.as_ref().expect("a problem");
        assert!(answer.runs[index].id.is_none());
        (
            problem.status,
            problem.errors.first().map(|error| error.field.clone()),
        )
    };
    assert_eq!(refused(1), (422, Some("language".to_owned())));
    assert_eq!(refused(2), (422, Some("runs[2]".to_owned())));
    assert_eq!(refused(3), (422, Some("limits.run.memory_mb".to_owned())));

    for (index, expected) in [(0, "42\n"), (4, "fine\n")] {
        let id = accepted[index].expect("accepted");
        let run = client.get_run(id, Some(30_000)).await.expect("read").body;
        assert_eq!(
            (run.status, run.verdict),
            (RunStatus::Completed, Some(Verdict::Ok))
        );
        assert_eq!(run.stdout(), expected);
    }

    // The same batch again, with its key: the same runs, no new ones.
    let again = client
        .create_batch(&runs, Some("batch-1"))
        .await
        .expect("answered");
    let again_ids: Vec<Option<&str>> = again.runs.iter().map(|item| item.id.as_deref()).collect();
    assert_eq!(again_ids, accepted);
    assert_eq!(
        client.list_runs(None, None).await.expect("list").runs.len(),
        2
    );

    for bad in [
        Vec::new(),
        vec![json!({"language": "bash", "source": "true"}); MAX_BATCH_RUNS + 1],
    ] {
        let error = client.create_batch(&bad, None).await.expect_err("refused");
        assert_eq!(error.status(), Some(422));
        assert_eq!(error.problem().expect("problem").errors[0].field, "runs");
    }
    stack.stop().await;
}
