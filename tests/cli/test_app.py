"""The app itself: help documents the exit codes, the CLI stays out of `import comet_replicate`,
and a missing `cli` extra gives a clear message instead of a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from comet_replicate._cli import COMMAND_MODULES, main
from comet_replicate._cli._errors import ExitCode


def test_help_documents_every_exit_code(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for fragment in (
        "0 ok",
        "1 a prediction failed, was canceled or aborted",
        "2 usage or input error",
        "3 API or connection error",
        "4 timeout",
        "130 interrupted",
    ):
        assert fragment in text


def test_help_lists_every_command(cli) -> None:
    text = cli("--help").stdout
    for command in ("run", "get", "wait", "cancel", "models", "batch", "emulator"):
        assert f" {command} " in text


def test_exit_code_values_are_the_documented_ones() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 130]


def test_unknown_option_is_a_usage_error(cli) -> None:
    result = cli("run", "black-forest-labs/flux-schnell", "--no-such-option")
    assert result.exit_code == ExitCode.USAGE


def test_main_returns_the_exit_code_instead_of_exiting() -> None:
    assert main(["models", "nobody/nothing"]) == ExitCode.USAGE
    assert main(["--version"]) == ExitCode.OK


def test_import_comet_replicate_loads_neither_the_cli_nor_typer() -> None:
    # (rich and click are not checked: httpx imports them itself when they are installed.)
    code = (
        "import sys, comet_replicate\n"
        "c = comet_replicate.Client(api_key='k', base_url='http://127.0.0.1:9')\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'typer'"
        " or m.split('.')[:2] == ['comet_replicate', '_cli']]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("missing", ["typer", "rich"])
def test_main_without_the_cli_extra_says_what_to_install(
    missing: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` raise ImportError
    assert main(["models"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "pip install 'comet-replicate[cli]'" in err
    assert missing in err
    assert "Traceback" not in err


def test_command_modules_register_the_commands_they_are_named_for() -> None:
    from comet_replicate._cli import build_app

    app = build_app()
    names = {command.name for command in app.registered_commands}
    assert {"run", "get", "wait", "cancel", "models", "batch", "emulator"} <= names
    assert all(name.startswith("_") for name in COMMAND_MODULES)


@pytest.mark.parametrize("command", ["run", "get", "wait", "cancel", "models", "batch"])
def test_each_command_help_documents_the_exit_codes(cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "4 timeout" in " ".join(result.stdout.split())
