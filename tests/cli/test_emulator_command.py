"""`emulator` passes every flag through to the emulator's own command line and serves until stopped."""

from __future__ import annotations

import signal
import socket
import subprocess

import httpx
from comet_replicate._cli._errors import ExitCode

from .conftest import SCHNELL, cli_command, cli_env
from .test_run import _wait_for


def test_emulator_help_is_the_emulators_own(cli) -> None:
    result = cli("emulator", "--help")
    assert result.exit_code == 0
    assert "--fail-rate" in result.stdout and "--token" in result.stdout


def test_emulator_rejects_a_bad_flag_with_exit_2(cli) -> None:
    result = cli("emulator", "--fail-rate", "7")
    assert result.exit_code == ExitCode.USAGE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/_emulator/stats", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_emulator_serves_with_its_token_and_faults_until_ctrl_c(cli, tmp_path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        cli_command(
            "emulator", "--port", str(port), "--token", "tok-123456", "--speed", "20", "--fail-rate", "1"
        ),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _up(base))
        env = {"COMETAPI_KEY": "tok-123456", "COMETAPI_BASE_URL": base + "/replicate/v1"}
        failed = cli("run", SCHNELL, "--prompt", "a boat", "--out", str(tmp_path), env=env)
        assert failed.exit_code == ExitCode.PREDICTION  # --fail-rate 1 reached the emulator
        wrong_key = cli("get", "anything", env={**env, "COMETAPI_KEY": "other-token"})
        assert wrong_key.exit_code == ExitCode.API and "401" in wrong_key.stderr  # and --token
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        process.kill()
    assert not _up(base)


def test_emulator_flag_without_its_value_is_a_usage_error(cli) -> None:
    result = cli("emulator", "--port")
    assert result.exit_code == ExitCode.USAGE
    assert "--port" in result.stderr
