"""SIGTERM (how schedulers, `timeout` and `docker stop` end a job) during `run` and `wait` in the real
CLI process: handled like Ctrl-C (the running prediction is canceled, its id printed), exit 143.
And an interrupt during a sync-mode create that finishes the prediction says what really happened:
nothing was canceled.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability._support import EmulatorProcess
from tests.reliability.test_interrupts import KEY, SLOW, _cli, _count, _new_ids, _until

FAST = "black-forest-labs/flux-schnell"  # about 1.5 s at speed 1: finishes inside a 5 s sync-mode hold
TERMINATED = 143


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--speed", "1", "--seed", "6") as server:
        yield server


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the CLI did not stop after signal {signum}: {err[-500:]}")
    return proc.returncode, out, err


@pytest.mark.parametrize("wait", ["0", "5"], ids=["polling", "during-sync-create"])
def test_sigterm_during_run_cancels_prints_the_id_and_exits_143(
    emulator: EmulatorProcess, tmp_path: Path, wait: str
) -> None:
    known = set(_new_ids(emulator, set()))
    cancels, polls = _count(emulator, "cancel"), _count(emulator, "get")
    proc = _cli(
        ["run", SLOW, "--prompt", "terminate me", "--wait", wait, "--out", str(tmp_path)], emulator, tmp_path
    )
    _until(lambda: bool(_new_ids(emulator, known)), "the prediction was created", proc)
    if wait == "0":
        _until(lambda: _count(emulator, "get") > polls, "the first poll", proc)
    (prediction_id,) = _new_ids(emulator, known)
    code, out, err = _stop(proc, signal.SIGTERM)
    assert code == TERMINATED, (code, out[-300:], err[-800:])
    assert f"prediction id: {prediction_id}" in err
    assert "SIGTERM" in err
    assert _count(emulator, "cancel") > cancels
    assert emulator.prediction(prediction_id)["status"] == "canceled"
    assert f"Prediction {prediction_id} is canceled." in err


def test_sigterm_during_wait_json_prints_one_document_naming_the_outcome(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    created = httpx.post(
        f"{emulator.cometapi_base_url}/models/{SLOW}/predictions",
        json={"input": {"prompt": "wait as json, then terminate"}},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    prediction_id = created.json()["id"]
    polls = _count(emulator, "get")
    proc = _cli(["wait", prediction_id, "--json", "--out", str(tmp_path)], emulator, tmp_path)
    _until(lambda: _count(emulator, "get") > polls, "the first poll", proc)
    code, out, err = _stop(proc, signal.SIGTERM)
    assert code == TERMINATED, (code, out[-300:], err[-800:])
    document = json.loads(out)
    assert document == {
        "id": prediction_id,
        "status": "canceled",
        "error": "stopped by SIGTERM",
        "exit_code": TERMINATED,
    }


def test_sigterm_during_wait_cancels_prints_the_id_and_exits_143(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    created = httpx.post(
        f"{emulator.cometapi_base_url}/models/{SLOW}/predictions",
        json={"input": {"prompt": "wait, then terminate"}},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    prediction_id = created.json()["id"]
    cancels, polls = _count(emulator, "cancel"), _count(emulator, "get")
    proc = _cli(["wait", prediction_id, "--out", str(tmp_path)], emulator, tmp_path)
    _until(lambda: _count(emulator, "get") > polls, "the first poll", proc)
    code, out, err = _stop(proc, signal.SIGTERM)
    assert code == TERMINATED, (code, out[-300:], err[-800:])
    assert f"prediction id: {prediction_id}" in err
    assert _count(emulator, "cancel") > cancels
    assert emulator.prediction(prediction_id)["status"] == "canceled"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, TERMINATED)])
def test_interrupt_during_a_sync_create_that_finishes_says_nothing_was_canceled(
    emulator: EmulatorProcess, tmp_path: Path, signum: int, code: int
) -> None:
    known = set(_new_ids(emulator, set()))
    cancels = _count(emulator, "cancel")
    proc = _cli(
        ["run", FAST, "--prompt", "done before the answer", "--wait", "5", "--out", str(tmp_path)],
        emulator,
        tmp_path,
    )
    _until(lambda: bool(_new_ids(emulator, known)), "the prediction was created", proc)
    (prediction_id,) = _new_ids(emulator, known)
    # The create is held open by the server until the prediction succeeds (~1.5 s): the interrupt
    # waits for that answer, which says `succeeded` -- so there is nothing to cancel.
    returned, out, err = _stop(proc, signum)
    assert returned == code, (returned, out[-300:], err[-800:])
    assert emulator.prediction(prediction_id)["status"] == "succeeded"
    assert f"Prediction {prediction_id} had already succeeded; there was nothing to cancel." in err
    assert "canceled prediction" not in err
    assert f"comet-replicate wait {prediction_id}" in err  # how to get the outputs it paid for
    assert _count(emulator, "cancel") == cancels  # no pointless cancel was sent
    assert f"prediction id: {prediction_id}" in err
