//! Examples for the spec's schemas, added as it is served (`openapi_extras`): what a request,
//! an answer, an event or a problem looks like, for the reader and for tools that show them.

use serde_json::{json, Map, Value};

const RUN_ID: &str = "run_01JDZ8W8N6P4Q2R3S4T5V6W7X8";

fn stage() -> Value {
    json!({"exit_code": 0, "signal": null, "stdout": "olleh\n", "stderr": "",
           "stdout_truncated": false, "stderr_truncated": false,
           "cpu_ms": 11, "wall_ms": 19, "memory_kb": 8312, "verdict": "ok"})
}

fn run() -> Value {
    json!({
        "id": RUN_ID, "status": "completed", "language": "python", "version": "3.11.2",
        "verdict": "ok", "compile": null, "run": stage(), "tests": [],
        "created_at": "2026-12-01T10:00:00Z", "started_at": "2026-12-01T10:00:00.004Z",
        "finished_at": "2026-12-01T10:00:00.031Z", "queue_ms": 4,
        "webhook": {"attempts": 1, "last_status": 200, "delivered": true}
    })
}

fn request() -> Value {
    json!({
        "language": "python",
        "source": "print(input()[::-1])",
        "stdin": "hello\n",
        "limits": {"run": {"cpu_ms": 2000, "wall_ms": 5000, "memory_mb": 256}}
    })
}

fn problem() -> Value {
    json!({
        "type": "urn:coderun:problem:invalid-request", "title": "Invalid request",
        "status": 422, "detail": "language: unknown language `cobol`",
        "errors": [{"field": "language", "message": "unknown language `cobol`"}]
    })
}

/// Sets each schema's `example`.
pub fn add(components: &mut Map<String, Value>) {
    let Some(schemas) = components.get_mut("schemas").and_then(Value::as_object_mut) else {
        return;
    };
    let examples = [
        ("RunRequest", request()),
        ("Run", run()),
        ("StageResult", stage()),
        ("Problem", problem()),
        (
            "BatchRequest",
            json!({"runs": [request(), {"language": "cobol", "source": ""}]}),
        ),
        (
            "BatchResponse",
            json!({"runs": [{"id": RUN_ID}, {"problem": problem()}]}),
        ),
        ("RunList", json!({"runs": [run()], "next_cursor": RUN_ID})),
        (
            "RunStreamEvent",
            json!({"seq": 3, "run_id": RUN_ID, "event": "test", "at": "2026-12-01T10:00:00.030Z",
                   "test_index": 0, "result": stage()}),
        ),
        (
            "WebhookStatus",
            json!({"attempts": 2, "last_status": 503, "delivered": false,
                   "error": "the receiver answered 503"}),
        ),
        (
            "LanguageList",
            json!({"languages": [{"id": "python", "name": "Python", "aliases": ["python3", "py"],
                                  "version": "3.11.2", "source_file": "main.py", "compiled": false}]}),
        ),
        (
            "Health",
            json!({"status": "ok", "checks": {"nats": "ok", "redis": "ok"}}),
        ),
        (
            "LegacyCreate",
            json!({"source_code": "print(input())", "language": "python3", "input": "hi",
                   "longpoll": "true", "longpoll_timeout": "5", "api_key": "<key>"}),
        ),
        (
            "LegacyStatus",
            json!({"id": RUN_ID, "status": "completed", "error": null}),
        ),
        (
            "LegacyDetails",
            json!({"id": RUN_ID, "language": "python3", "note": null, "status": "completed",
                   "build_stdout": null, "build_stderr": null, "build_exit_code": null,
                   "build_time": null, "build_memory": null, "build_result": null,
                   "stdout": "hi\n", "stderr": "", "exit_code": 0, "time": "0.02",
                   "memory": 8515584, "connections": 0, "result": "success", "error": null}),
        ),
    ];
    for (name, example) in examples {
        if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
            schema.insert("example".to_owned(), example);
        }
    }
}
