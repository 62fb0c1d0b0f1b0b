"""Issue 17's acceptance: many workers, one PostgreSQL journal, one emulator, one S3 endpoint.

Four ``comet-replicate batch`` processes (stand-ins for four machines) run the same 200-line batch:
the input is an S3 object, the journal a PostgreSQL database, the outputs an S3 prefix. Two of them
are killed with SIGKILL at seeded random moments (when the emulator has created a random number of
predictions, plus a random fraction of a second) and a replacement is started for each. Then:

- every line succeeded, and the emulator created exactly one prediction per line (its stats and
  the prompt stored with each prediction), the one the journal names;
- every output object exists exactly once under the prefix, named for its line and prediction;
- the journal's claims log shows no line held by two live workers at once (a claim ends when it is
  finished or released, or — for a killed worker — when its last lease ran out; the next claim of
  the line starts after that);
- ``batch-status`` showed the run from the journal alone while it ran and after it.

A kill that lands between committing ``creating`` and committing the id leaves the line unknown:
the prediction may exist and nobody knows its id, and no worker creates it again. The test then does
what the README tells an operator to do: look the line's prompt up on the server (here the
emulator's record); when no prediction exists, ``--retry-unknown-line N`` creates it; when one does,
its id is written into the journal (the documented SQL) and a worker resumes it. How often each
happened is printed at the end of the module.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from comet_replicate._batch.postgres import SCHEMA

from tests.distributed._servers import MotoServer
from tests.reliability._support import EmulatorProcess

LINES = 200
WORKERS = 4
KILLS = 2
LEASE_S = 6
MODEL = "black-forest-labs/flux-schnell"
KEY = "sk-distributed"
RUN_TIMEOUT_S = 300
SEED = int(os.environ.get("COMET_REPLICATE_DIST_SEED", "17"))

FIGURES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--speed", "10", "--seed", "5", "--latency", "0-0.02") as server:
        yield server
    print("\nmany-workers report:", json.dumps(dict(sorted(FIGURES.items()))))


@dataclass
class Fleet:
    """The worker processes of one batch and how to start another one."""

    command: list[str]
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(self, name: str, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*self.command, "--worker-id", name, *extra],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs[name] = proc
        return proc

    def running(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def finish(self) -> dict[str, tuple[int, str, str]]:
        results = {}
        for name, proc in self.procs.items():
            try:
                out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            results[name] = (proc.returncode, out, err)
        return results


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "comet_replicate._cli", *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )


def created(emulator: EmulatorProcess) -> int:
    return int(emulator.stats()["predictions_created"])  # type: ignore[call-overload]


def predictions_by_line(emulator: EmulatorProcess, tag: str) -> dict[int, list[str]]:
    """The emulator's record: the predictions created for each line of this batch (by prompt)."""
    found: dict[int, list[str]] = defaultdict(list)
    for pid in emulator.stats()["prediction_ids"]:  # type: ignore[union-attr]
        prefix, _, line = emulator.prompt_of(pid).rpartition(" line ")
        if prefix == tag:
            found[int(line)].append(pid)
    return found


def journal_rows(url: str) -> dict[int, dict[str, Any]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT line_no, state, prediction_id, outputs, creates, worker FROM {SCHEMA}.lines"
        ).fetchall()
    return {
        line: {"state": state, "id": pid, "outputs": outputs, "creates": creates, "worker": worker}
        for line, state, pid, outputs, creates, worker in rows
    }


def overlapping_claims(url: str) -> list[tuple[Any, ...]]:
    """Pairs of claims of one line where the later one started before the earlier one ended."""
    with psycopg.connect(url) as conn:
        claims = conn.execute(
            f"SELECT line_no, worker, token, claimed_at, coalesce(ended_at, lease_until) "
            f"FROM {SCHEMA}.claims ORDER BY line_no, claimed_at, token"
        ).fetchall()
    overlaps = []
    for earlier, later in itertools.pairwise(claims):
        if earlier[0] == later[0] and later[3] < earlier[4]:
            overlaps.append((earlier, later))
    return overlaps


def test_four_workers_two_killed_two_replaced_pay_once_per_line_and_write_each_output_once(
    emulator: EmulatorProcess, moto: MotoServer, bucket: str, s3_env: dict[str, str], pg_url: str
) -> None:
    import s3fs

    rng = random.Random(SEED)
    tag = f"fleet {SEED}"
    lines = [
        {"prompt": f"{tag} line {n}", "megapixels": "0.25", "output_format": "jpg"}
        for n in range(1, LINES + 1)
    ]
    source = f"s3://{bucket}/in/prompts.jsonl"
    s3fs.S3FileSystem(skip_instance_cache=True).pipe_file(
        source.removeprefix("s3://"), "".join(json.dumps(line) + "\n" for line in lines).encode()
    )
    out = f"s3://{bucket}/out"
    journal = f"{pg_url}?lease_seconds={LEASE_S}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMETAPI", "AWS_"))}
    env.update(s3_env, COMETAPI_KEY=KEY, COMETAPI_BASE_URL=emulator.cometapi_base_url)
    batch = ["batch", source, "--model", MODEL, "--journal", journal, "--out", out, "--concurrency", "4"]
    fleet = Fleet([sys.executable, "-m", "comet_replicate._cli", *batch, "--json"], env)
    baseline = created(emulator)

    for n in range(1, WORKERS + 1):
        fleet.start(f"worker-{n}")
    seen_running = False
    deadline = time.monotonic() + RUN_TIMEOUT_S
    targets = sorted(rng.sample(range(25, LINES - 40), KILLS))
    for kill_no, target in enumerate(targets, start=1):
        while created(emulator) - baseline < target and fleet.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        if not seen_running:  # batch-status during the run, from the journal alone
            status = cli("batch-status", "--journal", journal, "--json", env=env)
            assert status.returncode == 0, status.stderr
            [during] = json.loads(status.stdout)["batches"]
            assert during["total"]["total"] == LINES
            seen_running = during["total"]["running"] > 0
        victims = [name for name in fleet.running() if not name.startswith("replacement")]
        if victims:
            victim = rng.choice(victims)
            fleet.procs[victim].send_signal(signal.SIGKILL)
            FIGURES["killed"] += 1
        fleet.start(f"replacement-{kill_no}")
    results = fleet.finish()
    assert FIGURES["killed"] >= 1, "every worker finished before the first kill: the test proved nothing"
    for name, (code, _out, err) in results.items():
        if code != -signal.SIGKILL:
            assert code == 0 or "unknown" in _out, f"{name} exited {code}: {err[-2000:]}"

    # The operator's step for unknown lines (see the module docstring).
    rows = journal_rows(pg_url)
    assert len(rows) == LINES
    unknown = sorted(n for n, row in rows.items() if row["state"] == "creating")
    on_server = predictions_by_line(emulator, tag)
    never_created = [n for n in unknown if not on_server.get(n)]
    paid = [n for n in unknown if on_server.get(n)]
    FIGURES["unknown_lines_created_again"] += len(never_created)
    FIGURES["unknown_lines_adopted_by_id"] += len(paid)
    if paid:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for n in paid:
                [pid] = on_server[n]
                conn.execute(
                    f"UPDATE {SCHEMA}.lines SET state = 'created', prediction_id = %s, error = NULL "
                    "WHERE line_no = %s AND state = 'creating'",
                    (pid, n),
                )
    if unknown:
        retry = [flag for n in never_created for flag in ("--retry-unknown-line", str(n))]
        last = cli(*batch, "--worker-id", "operator", *retry, env=env)
        assert last.returncode == 0, last.stderr[-2000:]

    rows = journal_rows(pg_url)
    on_server = predictions_by_line(emulator, tag)
    assert {n: row["state"] for n, row in rows.items() if row["state"] != "succeeded"} == {}
    twice = {n: ids for n, ids in on_server.items() if len(ids) != 1}
    assert twice == {}, f"lines with other than one prediction: {twice}"
    assert sorted(on_server) == list(range(1, LINES + 1))
    assert created(emulator) - baseline == LINES
    assert {n: row["id"] for n, row in rows.items()} == {n: ids[0] for n, ids in on_server.items()}

    objects = moto.objects(bucket)
    outputs = sorted(key for key in objects if key.startswith("out/"))
    assert len(outputs) == LINES, f"{len(outputs)} output objects for {LINES} lines"
    for n, row in rows.items():
        name = f"out/line{n:05d}-{row['id']}-"
        [mine] = [key for key in outputs if key.startswith(name)]
        assert objects[mine] > 0
        assert row["outputs"] == [f"s3://{bucket}/{mine}"]

    assert overlapping_claims(pg_url) == []

    status = cli("batch-status", "--journal", journal, "--json", env=env)
    [after] = json.loads(status.stdout)["batches"]
    everything_done = {"done": LINES, "running": 0, "failed": 0, "unknown": 0, "pending": 0, "total": LINES}
    assert after["total"] == everything_done
    assert sum(worker["done"] for worker in after["workers"]) == LINES
    FIGURES["workers_with_lines"] = len(after["workers"])
    FIGURES["status_seen_running"] = int(seen_running)
