"""Interrupts: Ctrl-C (SIGINT) during `run`, `wait` and `batch` in the real CLI process.

Each time: a cancel reaches the emulator for the running prediction (it ends `canceled`), the id is
printed, and the process exits 130. The emulator runs in its own process at real speed, so the
predictions are still running when the signal arrives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability._support import EmulatorProcess

SLOW = "black-forest-labs/flux-2-max"  # about 26 s at speed 1: still running when Ctrl-C comes
KEY = "sk-reliability"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--speed", "1", "--seed", "5") as server:
        yield server


def _env(emulator: EmulatorProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI")}
    env.update(COMETAPI_KEY=KEY, COMETAPI_BASE_URL=emulator.cometapi_base_url)
    return env


def _cli(args: list[str], emulator: EmulatorProcess, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "comet_replicate._cli", *args],
        env=_env(emulator),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _until(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str], limit: float = 30.0
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the CLI exited ({proc.returncode}) before {what}: {out[-300:]} {err[-500:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _count(emulator: EmulatorProcess, operation: str) -> int:
    requests: Any = emulator.stats()["requests"]
    return sum(requests.get(operation, {}).values())


def _new_ids(emulator: EmulatorProcess, before: set[str]) -> list[str]:
    ids: Any = emulator.stats()["prediction_ids"]
    return [i for i in ids if i not in before]


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the CLI did not stop after Ctrl-C: {err[-500:]}")
    return proc.returncode, out, err


def _assert_canceled(emulator: EmulatorProcess, prediction_id: str, cancels_before: int) -> None:
    assert _count(emulator, "cancel") > cancels_before, "no cancel request reached the emulator"
    assert emulator.prediction(prediction_id)["status"] == "canceled"


@pytest.mark.parametrize("wait", ["0", "5"], ids=["polling", "during-sync-create"])
def test_ctrl_c_during_run_cancels_prints_the_id_and_exits_130(
    emulator: EmulatorProcess, tmp_path: Path, wait: str
) -> None:
    known = set(_new_ids(emulator, set()))
    cancels = _count(emulator, "cancel")
    polls = _count(emulator, "get")
    proc = _cli(
        ["run", SLOW, "--prompt", "interrupt me", "--wait", wait, "--out", str(tmp_path)], emulator, tmp_path
    )
    _until(lambda: bool(_new_ids(emulator, known)), "the prediction was created", proc)
    if wait == "0":
        _until(lambda: _count(emulator, "get") > polls, "the first poll", proc)
    # With --wait 5 the create is still held open by the server here: the Ctrl-C must wait for its
    # answer (the id) rather than lose a paid prediction, then cancel it.
    (prediction_id,) = _new_ids(emulator, known)
    code, out, err = _interrupt(proc)
    assert code == 130, (code, out[-300:], err[-800:])
    assert prediction_id in out + err
    _assert_canceled(emulator, prediction_id, cancels)
    assert not list(tmp_path.glob("*.webp"))


def test_ctrl_c_during_wait_cancels_prints_the_id_and_exits_130(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    created = httpx.post(
        f"{emulator.cometapi_base_url}/models/{SLOW}/predictions",
        json={"input": {"prompt": "wait for me"}},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    prediction_id = created.json()["id"]
    cancels = _count(emulator, "cancel")
    polls = _count(emulator, "get")
    proc = _cli(["wait", prediction_id], emulator, tmp_path)
    _until(lambda: _count(emulator, "get") > polls, "the first poll", proc)
    code, out, err = _interrupt(proc)
    assert code == 130, (code, out[-300:], err[-800:])
    assert prediction_id in out + err
    _assert_canceled(emulator, prediction_id, cancels)


def test_ctrl_c_during_batch_cancels_the_running_predictions_prints_their_ids_and_exits_130(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    source = tmp_path / "inputs.jsonl"
    source.write_text("".join(json.dumps({"prompt": f"batch interrupt {n}"}) + "\n" for n in range(6)))
    known = set(_new_ids(emulator, set()))
    cancels = _count(emulator, "cancel")
    args = ["batch", str(source), "--model", SLOW, "--concurrency", "3", "--out", str(tmp_path / "out")]
    proc = _cli(args, emulator, tmp_path)
    _until(lambda: len(_new_ids(emulator, known)) >= 3, "three predictions were created", proc)
    time.sleep(0.3)  # let the batch record the ids (the journal commits each one as it arrives)
    running = _new_ids(emulator, known)
    code, out, err = _interrupt(proc)
    assert code == 130, (code, out[-300:], err[-800:])
    for prediction_id in running:
        assert prediction_id in out + err, f"{prediction_id} not printed: {err[-800:]}"
        _assert_canceled(emulator, prediction_id, cancels)
    assert len(_new_ids(emulator, known)) == 3, "the batch started new predictions after Ctrl-C"
