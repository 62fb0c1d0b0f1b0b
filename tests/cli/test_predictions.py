"""`get`, `wait` and `cancel` of an existing prediction, by id, against the emulator."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from comet_replicate import Client
from comet_replicate._cli._errors import ExitCode
from comet_replicate_emulator import Faults, RunningEmulator
from PIL import Image

from .conftest import SCHNELL, TOKEN, cli_command, cli_env, point_at, requests_of
from .test_run import _wait_for


def _create(server: RunningEmulator, prompt: str = "a boat") -> str:
    with Client(TOKEN, base_url=server.cometapi_base_url) as client:
        return client.predictions.create(SCHNELL, {"prompt": prompt}).id


def test_get_shows_the_prediction(cli, emulator) -> None:
    prediction_id = _create(emulator)
    result = cli("get", prediction_id)
    assert result.exit_code == 0
    assert prediction_id in result.stdout and SCHNELL in result.stdout
    assert "status" in result.stdout


def test_get_json_is_the_prediction_object(cli, emulator) -> None:
    prediction_id = _create(emulator)
    result = cli("get", prediction_id, "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["id"] == prediction_id
    assert document["input"] == {"prompt": "a boat"}
    assert document["status"] in ("starting", "processing", "succeeded")


def test_get_unknown_id_exits_3(cli, emulator) -> None:
    result = cli("get", "doesnotexist000000000000")
    assert result.exit_code == ExitCode.API
    assert "404" in result.stderr
    assert result.stderr.count("\n") == 1


def test_wait_downloads_the_outputs(cli, emulator, tmp_path: Path) -> None:
    prediction_id = _create(emulator)
    result = cli("wait", prediction_id, "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    [path] = [Path(line) for line in result.stdout.splitlines()]
    assert path.name.startswith(prediction_id)
    with Image.open(path) as image:
        image.load()
    assert requests_of(emulator, "create") == 1  # waiting never creates


def test_wait_json(cli, emulator, tmp_path: Path) -> None:
    prediction_id = _create(emulator)
    result = cli("wait", prediction_id, "--json", "--out", str(tmp_path))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["id"] == prediction_id and document["status"] == "succeeded"
    assert Path(document["outputs"][0]["path"]).is_file()


def test_wait_on_a_failed_prediction_exits_1(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(faults=Faults(failed=1.0))
    point_at(monkeypatch, server)
    prediction_id = _create(server)
    result = cli("wait", prediction_id)
    assert result.exit_code == ExitCode.PREDICTION
    assert prediction_id in result.stderr and "failed" in result.stderr


def test_wait_deadline_exits_4_and_leaves_the_prediction_running(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(speed=0.05)
    point_at(monkeypatch, server)
    prediction_id = _create(server)
    result = cli("wait", prediction_id, "--timeout", "0.5")
    assert result.exit_code == ExitCode.TIMEOUT
    assert prediction_id in result.stderr
    assert requests_of(server, "cancel") == 0
    assert json.loads(cli("get", prediction_id, "--json").stdout)["status"] in ("starting", "processing")


def test_cancel_cancels_and_get_then_shows_canceled(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(speed=0.05)
    point_at(monkeypatch, server)
    prediction_id = _create(server)
    result = cli("cancel", prediction_id)
    assert result.exit_code == 0
    assert "canceled" in result.stdout
    assert json.loads(cli("get", prediction_id, "--json").stdout)["status"] == "canceled"
    waited = cli("wait", prediction_id)
    assert waited.exit_code == ExitCode.PREDICTION  # canceled ends badly
    assert "canceled" in waited.stderr


def test_cancel_json(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(speed=0.05)
    point_at(monkeypatch, server)
    prediction_id = _create(server)
    result = cli("cancel", prediction_id, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["id"] == prediction_id


def test_ctrl_c_during_wait_cancels_and_exits_130(serve_emulator) -> None:
    server = serve_emulator(speed=0.05)
    prediction_id = _create(server)
    process = subprocess.Popen(
        cli_command("wait", prediction_id),
        env=cli_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: requests_of(server, "get") >= 1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == ExitCode.INTERRUPTED
    assert prediction_id in err
    assert requests_of(server, "cancel") == 1
