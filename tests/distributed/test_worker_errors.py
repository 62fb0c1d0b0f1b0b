"""A worker that loses its database mid-run, and bad settings refused before any prediction.

The database goes away for real: the cluster is stopped at once (``pg_ctl stop -m immediate``, like
a crash or a network cut) while the worker is creating and waiting for predictions. Bad settings are
the ones users get wrong: an unreachable database, a wrong password, a bucket that does not exist,
an output URL with an unknown scheme — each must be one line naming the problem, exit 2 or 3, and
no prediction created (the emulator's counter does not move).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from comet_replicate._batch.postgres import SCHEMA

from tests.distributed._servers import MotoServer, PostgresServer, ServerUnavailable
from tests.distributed.conftest import need, unavailable
from tests.reliability._support import EmulatorProcess

psycopg = need("psycopg")

MODEL = "black-forest-labs/flux-schnell"
KEY = "sk-distributed"
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    # Predictions take about a second, so a run is mid-flight for a while.
    with EmulatorProcess("--speed", "1", "--seed", "3", "--latency", "0-0.02") as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A cluster of this test's own, since the test stops it."""
    try:
        server = PostgresServer().__enter__()
    except (ServerUnavailable, OSError) as exc:
        unavailable(f"cannot start PostgreSQL: {exc}")
    try:
        yield server
    finally:
        server.__exit__()


def env_for(emulator: EmulatorProcess, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMETAPI", "AWS_"))}
    env.update(extra or {}, COMETAPI_KEY=KEY, COMETAPI_BASE_URL=emulator.cometapi_base_url)
    return env


def write_inputs(path: Path, tag: str, count: int) -> None:
    lines = [{"prompt": f"{tag} line {n}", "megapixels": "0.25"} for n in range(1, count + 1)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def created(emulator: EmulatorProcess) -> int:
    return int(emulator.stats()["predictions_created"])  # type: ignore[call-overload]


def test_a_worker_that_loses_the_database_stops_with_a_clear_error_and_loses_no_prediction(
    emulator: EmulatorProcess, own_postgres: PostgresServer, tmp_path: Path
) -> None:
    tag = "db-loss"
    source = tmp_path / "prompts.jsonl"
    write_inputs(source, tag, 40)
    url = own_postgres.create_database("loss") + "?lease_seconds=30"
    command = [sys.executable, "-m", "comet_replicate._cli", "batch", str(source), "--model", MODEL]
    command += ["--journal", url, "--out", str(tmp_path / "out"), "--concurrency", "4", "--json"]
    before = created(emulator)
    proc = subprocess.Popen(
        command, env=env_for(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + TIMEOUT_S
    while created(emulator) - before < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before the database could be taken away"
    own_postgres.stop()
    stdout, stderr = proc.communicate(timeout=TIMEOUT_S)

    assert proc.returncode == 3, stderr
    assert "lost the connection to the database" in stderr
    assert own_postgres.password not in stderr + stdout
    report = {line["line"]: line for line in json.loads(stdout)["lines"]}
    assert sum(1 for line in report.values() if line["state"] == "succeeded") < 40  # it did stop early

    own_postgres.start()  # what was committed before the loss is all there
    with psycopg.connect(url.split("?")[0]) as conn:
        rows = {
            line: (state, pid)
            for line, state, pid in conn.execute(f"SELECT line_no, state, prediction_id FROM {SCHEMA}.lines")
        }
    # Every prediction the emulator created for this batch is named somewhere: by the journal, or
    # (its id could not be committed any more) in the worker's report, its line left unknown.
    for pid in emulator.stats()["prediction_ids"]:  # type: ignore[union-attr]
        prefix, _, number = emulator.prompt_of(pid).rpartition(" line ")
        if prefix != tag:
            continue
        line = int(number)
        state, recorded = rows[line]
        if recorded == pid:
            continue
        assert state == "creating", f"line {line}: prediction {pid} lost (journal: {state} {recorded})"
        assert report[line]["prediction_id"] == pid, f"line {line}: prediction {pid} named nowhere"


def batch_command(source: str, *, journal: str, out: str) -> list[str]:
    return [
        sys.executable, "-m", "comet_replicate._cli", "batch", source, "--model", MODEL,
        "--journal", journal, "--out", out,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        "unreachable database",
        "wrong password",
        "missing bucket",
        "unknown output scheme",
        "unknown input scheme",
    ],
)
def test_bad_settings_are_one_line_exit_2_or_3_before_any_prediction(
    case: str,
    emulator: EmulatorProcess,
    postgres: PostgresServer,
    pg_url: str,
    moto: MotoServer,
    bucket: str,
    s3_env: dict[str, str],
    tmp_path: Path,
) -> None:
    source = tmp_path / "prompts.jsonl"
    write_inputs(source, f"bad {case}", 3)
    journal, out, src = pg_url, str(tmp_path / "out"), str(source)
    expected = {
        "unreachable database": "cannot connect to journal postgresql://postgres@127.0.0.1:1/",
        "wrong password": 'password authentication failed for user "postgres"',
        "missing bucket": "bucket 'no-such-bucket' does not exist",
        "unknown output scheme": "unknown URL scheme 'nosuch://'",
        "unknown input scheme": "unknown URL scheme 'nosuch://'",
    }[case]
    if case == "unreachable database":
        journal = "postgresql://postgres:pw@127.0.0.1:1/db"
    elif case == "wrong password":
        journal = postgres.url(password="not-the-password")
    elif case == "missing bucket":
        out = "s3://no-such-bucket/run-1/"
    elif case == "unknown output scheme":
        out = "nosuch://bucket/out/"
    else:
        src = "nosuch://bucket/prompts.jsonl"
    before = created(emulator)
    result = subprocess.run(
        batch_command(src, journal=journal, out=out),
        env=env_for(emulator, s3_env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 2, result.stderr  # a usage error: nothing was sent
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "not-the-password" not in result.stderr and postgres.password not in result.stderr
    assert created(emulator) == before
    assert moto.objects(bucket) == {}


def test_a_terminated_worker_hands_its_running_predictions_to_the_next_without_canceling(
    emulator: EmulatorProcess, pg_url: str, tmp_path: Path
) -> None:
    tag = "sigterm"
    source = tmp_path / "prompts.jsonl"
    write_inputs(source, tag, 8)
    journal = pg_url + "?lease_seconds=120"  # a long lease: the heir must not have to wait for it
    command = [sys.executable, "-m", "comet_replicate._cli", "batch", str(source), "--model", MODEL]
    command += ["--journal", journal, "--out", str(tmp_path / "out"), "--concurrency", "4"]
    before = created(emulator)
    proc = subprocess.Popen(
        command, env=env_for(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + TIMEOUT_S
    while created(emulator) - before < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)  # what Kubernetes sends a pod it deletes
    _stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 143, stderr
    assert "back to the" in stderr  # handed back, not canceled

    with psycopg.connect(pg_url) as conn:  # every claim it held ended when it stopped: none left to expire
        open_claims = conn.execute(f"SELECT count(*) FROM {SCHEMA}.claims WHERE ended_at IS NULL").fetchone()
    assert open_claims == (0,)
    heir = subprocess.run(
        [*command, "--json"],
        env=env_for(emulator),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert heir.returncode == 0, heir.stderr
    report = json.loads(heir.stdout)
    assert [line["state"] for line in report["lines"]] == ["succeeded"] * 8
    by_line: dict[int, list[str]] = {}
    for pid in emulator.stats()["prediction_ids"]:  # type: ignore[union-attr]
        prefix, _, number = emulator.prompt_of(pid).rpartition(" line ")
        if prefix == tag:
            by_line.setdefault(int(number), []).append(pid)
    assert {n: len(ids) for n, ids in by_line.items()} == {n: 1 for n in range(1, 9)}  # none paid twice
    assert all(emulator.prediction(ids[0])["status"] == "succeeded" for ids in by_line.values())
