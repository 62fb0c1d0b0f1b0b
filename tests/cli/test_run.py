"""`run` against the emulator: outputs land in --out, paths or JSON on stdout, documented exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from comet_replicate._cli._errors import ExitCode
from comet_replicate_emulator import Faults
from PIL import Image

from .conftest import SCHNELL, TOKEN, cli_command, cli_env, point_at, requests_of


def _decodes(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_run_downloads_the_outputs_and_prints_their_paths(cli, emulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("run", SCHNELL, "--prompt", "a paper boat", "-i", "num_outputs=2", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == 2
    assert all(path.parent == out and path.is_file() for path in paths)
    assert all(_decodes(path)[0] > 0 for path in paths)
    assert emulator.stats()["predictions_created"] == 1


def test_run_shows_the_progress_display_on_stderr(cli, emulator, tmp_path: Path) -> None:
    result = cli("run", SCHNELL, "--prompt", "a boat", "--wait", "0", "--out", str(tmp_path))
    assert result.exit_code == 0
    prediction_id = emulator.stats()["prediction_ids"][0]
    assert "succeeded" in result.stderr
    assert prediction_id in result.stderr
    polls = requests_of(emulator, "get")
    assert polls > 0 and f"{polls} poll" in result.stderr
    assert "log:" in result.stderr


def test_run_json_prints_one_document(cli, emulator, tmp_path: Path) -> None:
    result = cli("run", SCHNELL, "--prompt", "a boat", "--json", "--out", str(tmp_path))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["id"] == emulator.stats()["prediction_ids"][0]
    assert document["status"] == "succeeded"
    assert document["model"] == SCHNELL
    [output] = document["outputs"]
    assert output["url"].startswith(emulator.base_url)
    assert _decodes(Path(output["path"]))


def test_two_runs_into_one_folder_keep_both_images(cli, emulator, tmp_path: Path) -> None:
    for _ in range(2):
        assert cli("run", SCHNELL, "--prompt", "a boat", "--out", str(tmp_path)).exit_code == 0
    assert len(list(tmp_path.iterdir())) == 2


def test_run_emulator_needs_no_key(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    result = cli("run", SCHNELL, "--prompt", "a boat", "--emulator", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.stderr
    [path] = [Path(p) for p in result.stdout.splitlines()]
    assert _decodes(path) == (1024, 1024)


def test_run_without_a_key_exits_2_and_suggests_the_emulator(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    result = cli("run", SCHNELL, "--prompt", "a boat")
    assert result.exit_code == ExitCode.USAGE
    assert "COMETAPI_KEY" in result.stderr and "--emulator" in result.stderr


def test_failed_prediction_exits_1_with_its_id(cli, serve_emulator, monkeypatch, tmp_path: Path) -> None:
    server = serve_emulator(faults=Faults(failed=1.0, failed_message="NSFW content detected."))
    point_at(monkeypatch, server)
    result = cli("run", SCHNELL, "--prompt", "a boat", "--out", str(tmp_path))
    assert result.exit_code == ExitCode.PREDICTION
    [prediction_id] = server.stats()["prediction_ids"]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert prediction_id in error_lines[0] and "NSFW" in error_lines[0]
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_failed_prediction_with_json_still_prints_one_document(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(faults=Faults(failed=1.0))
    point_at(monkeypatch, server)
    result = cli("run", SCHNELL, "--prompt", "a boat", "--json")
    assert result.exit_code == ExitCode.PREDICTION
    document = json.loads(result.stdout)
    assert document["status"] == "failed" and document["exit_code"] == 1
    assert document["id"] == server.stats()["prediction_ids"][0]


def test_deadline_exits_4_with_the_id(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(speed=0.02)  # schnell takes ~75 s here
    point_at(monkeypatch, server)
    # 8 s: room for the create's answer on a heavily loaded machine (3 s was seen to run out before
    # the create was answered, so no prediction existed), far short of the ~75 s prediction.
    result = cli("run", SCHNELL, "--prompt", "a boat", "--wait", "0", "--timeout", "8")
    assert result.exit_code == ExitCode.TIMEOUT
    [prediction_id] = server.stats()["prediction_ids"]
    assert prediction_id in result.stderr
    assert requests_of(server, "cancel") == 1  # run cancels what it stops waiting for


def test_unreachable_api_exits_3(cli, monkeypatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", TOKEN)
    result = cli("run", SCHNELL, "--prompt", "a boat", "--base-url", "http://127.0.0.1:9/replicate/v1")
    assert result.exit_code == ExitCode.API
    assert result.stderr.startswith("error:") or "\nerror:" in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_http_to_another_host_is_a_usage_error_before_any_request(cli, monkeypatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", TOKEN)
    result = cli("run", SCHNELL, "--prompt", "a boat", "--base-url", "http://api.example.com/replicate/v1")
    assert result.exit_code == ExitCode.USAGE
    assert "plain http" in result.stderr and "Traceback" not in result.stderr


def test_rejected_key_exits_3_and_debug_never_prints_it(cli, emulator, monkeypatch) -> None:
    wrong = "sk-wrong-key-987654321"
    monkeypatch.setenv("COMETAPI_KEY", wrong)
    plain = cli("run", SCHNELL, "--prompt", "a boat")
    assert plain.exit_code == ExitCode.API
    assert "401" in plain.stderr and "Traceback" not in plain.stderr
    debug = cli("--debug", "run", SCHNELL, "--prompt", "a boat")
    assert debug.exit_code == ExitCode.API
    assert "Traceback" in debug.stderr
    assert wrong not in debug.stderr + debug.stdout + plain.stderr + plain.stdout


def test_ctrl_c_cancels_the_running_prediction_prints_its_id_and_exits_130(serve_emulator, tmp_path) -> None:
    server = serve_emulator(speed=0.05)
    process = subprocess.Popen(
        cli_command("run", SCHNELL, "--prompt", "a boat", "--wait", "0", "--out", str(tmp_path)),
        env=cli_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: requests_of(server, "get") >= 1)  # created and being polled
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == ExitCode.INTERRUPTED
    [prediction_id] = server.stats()["prediction_ids"]
    assert prediction_id in err
    assert requests_of(server, "cancel") >= 1
    assert "Traceback" not in err


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
