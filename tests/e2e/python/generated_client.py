"""Drives coderun through a client generated from the committed openapi.json by
openapi-python-client: creates a run and waits, reads it, lists it, cancels another.

Usage: python generated_client.py PACKAGE_PARENT_DIR BASE_URL API_KEY
Prints one line per step and exits non-zero (an AssertionError) on the first surprise.
"""
import sys
import time

sys.path.insert(0, sys.argv[1])

from coderun_api import AuthenticatedClient  # noqa: E402
from coderun_api.api.runs import cancel_run, create_run, get_run, list_runs  # noqa: E402
from coderun_api.models import Run, RunRequest, RunStatus, TestCase, Verdict  # noqa: E402

client = AuthenticatedClient(base_url=sys.argv[2], token=sys.argv[3], timeout=120.0)

request = RunRequest(
    language="python",
    source="print(sum(map(int, input().split())))",
    tests=[TestCase(stdin="1 2\n", expected_stdout="3\n"), TestCase(stdin="40 2\n", expected_stdout="42\n")],
)
created = create_run.sync_detailed(client=client, body=request, wait=True, timeout_ms=60000)
assert created.status_code == 200, (created.status_code, created.content)
run = created.parsed
assert isinstance(run, Run), run
assert run.status == RunStatus.COMPLETED and run.verdict == Verdict.OK, run.to_dict()
assert [test.stdout for test in run.tests] == ["3\n", "42\n"], run.to_dict()
print("created and waited:", run.id, run.verdict.value)

read = get_run.sync_detailed(run.id, client=client)
assert read.status_code == 200 and read.parsed.id == run.id, read.content
assert read.parsed.run.stdout == "3\n", read.parsed.to_dict()
print("read:", read.parsed.status.value)

listed = list_runs.sync(client=client, limit=5)
assert run.id in [item.id for item in listed.runs], listed.to_dict()
print("listed")

sleeper = create_run.sync_detailed(
    client=client,
    body=RunRequest(language="bash", source="sleep 60"),
    idempotency_key=f"generated-client-{time.time_ns()}",
)
assert sleeper.status_code == 202, (sleeper.status_code, sleeper.content)
assert sleeper.headers["location"] == f"/v1/runs/{sleeper.parsed.id}"
cancelled = cancel_run.sync_detailed(sleeper.parsed.id, client=client)
assert cancelled.status_code == 200, (cancelled.status_code, cancelled.content)
assert cancelled.parsed.status == RunStatus.CANCELLED, cancelled.parsed.to_dict()
assert cancelled.parsed.verdict == Verdict.CANCELLED
print("cancelled:", cancelled.parsed.id)

missing = get_run.sync_detailed("run_01JZZZZZZZZZZZZZZZZZZZZZZZ", client=client)
assert missing.status_code == 404 and missing.parsed.status == 404, missing.content
print("a missing run is a problem:", missing.parsed.type_)
