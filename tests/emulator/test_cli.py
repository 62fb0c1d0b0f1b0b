"""`python -m comet_replicate_emulator` / `main(argv)`: flags, exit codes, and a real process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from comet_replicate_emulator import main
from comet_replicate_emulator._cli import build_parser, config_from_args


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--error-500-rate" in out and "--rpm-limit" in out and "--drop-rate" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--error-500-rate", "1.5"],
        ["--speed", "0"],
        ["--latency", "0.5-0.1"],
        ["--fault-operations", "list"],
        ["--error-500-rate", "0.6", "--error-503-rate", "0.6"],
    ],
)
def test_bad_flags_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_fault_flags_reach_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--token", "sk-x", "--speed", "20", "--seed", "4", "--durations", "lognormal",
            "--error-502-rate", "0.1", "--html-502-rate", "0.05", "--rate-limit-rate", "0.02",
            "--rpm-limit", "600", "--retry-after", "3", "--drop-rate", "0.01", "--truncate-rate", "0.01",
            "--latency", "0.01-0.2", "--fail-rate", "0.1", "--fail-message", "nope",
            "--fault-operations", "create,get", "--after-create-share", "0.25", "--retention", "60",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    faults = config.faults
    assert (config.token, config.speed, config.seed, config.durations, config.retention_s) == (
        "sk-x", 20.0, 4, "lognormal", 60.0,
    )  # fmt: skip
    assert (faults.error_502, faults.html_502, faults.rate_limit, faults.rpm_limit) == (0.1, 0.05, 0.02, 600)
    assert (faults.retry_after, faults.drop, faults.truncate, faults.latency) == (
        3.0,
        0.01,
        0.01,
        (0.01, 0.2),
    )
    assert (faults.failed, faults.failed_message, faults.after_create) == (0.1, "nope", 0.25)
    assert faults.operations == frozenset({"create", "get"})


def test_module_runs_a_real_server_until_interrupted() -> None:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "comet_replicate_emulator",
            "--port", "0", "--token", "sk-cli", "--log-level", "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = process.stderr.readline().decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+) ", banner)
        assert match, banner
        base = match.group(1)
        report = None
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/_emulator/stats", timeout=2) as response:
                    report = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.05)
        assert report is not None and report["predictions_created"] == 0
        request = urllib.request.Request(
            f"{base}/replicate/v1/models/black-forest-labs/flux-schnell/predictions",
            data=json.dumps({"input": {"prompt": "x"}}).encode(),
            headers={"Authorization": "Bearer sk-cli", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201
            assert json.loads(response.read())["status"] == "starting"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean shutdown and exit code 0
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_emulator_never_imports_the_client_and_its_plugin_stays_light() -> None:
    code = (
        "import sys\n"
        "import comet_replicate_emulator.pytest_plugin\n"
        "assert 'starlette' not in sys.modules and 'PIL' not in sys.modules, 'plugin import is heavy'\n"
        "from comet_replicate_emulator import create_app, serve, main, EmulatorConfig\n"
        "create_app(EmulatorConfig())\n"
        "client = [m for m in sys.modules if m == 'comet_replicate' or m.startswith('comet_replicate.')]\n"
        "assert not client, client\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_limit_list_and_new_fault_flags_reach_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--create-rpm", "600", "--rpm", "3000", "--create-without-output", "--list-404", "cometapi",
            "--list-page-size", "7", "--error-402-rate", "0.1", "--error-524-rate", "0.2",
            "--error-text-rate", "0.05", "--message-text-rate", "0.04", "--text-error-status", "503",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.create_rpm, config.rpm, config.create_without_output) == (600, 3000, True)
    assert (config.list_404, config.list_page_size) == (frozenset({"cometapi"}), 7)
    faults = config.faults
    assert (faults.error_402, faults.error_524, faults.error_text, faults.message_text) == (
        0.1,
        0.2,
        0.05,
        0.04,
    )
    assert faults.text_error_status == 503
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.create_rpm, defaults.rpm, defaults.list_404) == (None, None, frozenset())


@pytest.mark.parametrize(
    "argv",
    [
        ["--create-rpm", "0"],
        ["--rpm", "-1"],
        ["--list-404", "openai"],
        ["--text-error-status", "418"],
        ["--error-524-rate", "0.7", "--error-402-rate", "0.7"],
    ],
)
def test_bad_limit_and_fault_flags_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err


def test_the_package_ships_its_py_typed_marker() -> None:
    """PEP 561: without the marker, users' type checkers treat every emulator name as Any."""
    from importlib.resources import files

    assert (files("comet_replicate_emulator") / "py.typed").is_file()
