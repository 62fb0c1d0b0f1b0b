"""A newcomer's mypy --strict script (tests/typing/user_script.py) type-checks without a single
`# type: ignore`, and runs as written against the in-process emulator."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from comet_replicate import AsyncClient, Client

from .user_script import run_async, run_one, step_by_step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCRIPT = HERE / "user_script.py"


def _mypy_strict(path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        str(path),
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_user_script_has_no_type_ignore() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert not re.search(r"#\s*type:\s*ignore|\bcast\(|\bAny\b", text)


def test_user_script_passes_mypy_strict() -> None:
    result = _mypy_strict(SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_mypy_strict_does_catch_the_raw_output_union(tmp_path: Path) -> None:
    """The check can fail: iterating `prediction.output` directly is a union error the helpers avoid."""
    raw = tmp_path / "raw_output.py"
    raw.write_text(
        "from comet_replicate import Prediction\n\n\n"
        "def urls(p: Prediction) -> list[str]:\n"
        "    return [u.upper() for u in p.output]\n",
        encoding="utf-8",
    )
    result = _mypy_strict(raw)
    assert result.returncode == 1 and "raw_output.py:5: error" in result.stdout, result.stdout


def test_user_script_runs_against_the_emulator(comet_inprocess_client: Client, tmp_path: Path) -> None:
    saved = run_one(comet_inprocess_client, tmp_path)
    assert len(saved) == 2 and all(p.stat().st_size > 0 for p in saved)
    assert len(step_by_step(comet_inprocess_client)) == 1


async def test_user_script_async_part_runs_against_the_emulator(
    comet_inprocess_async_client: AsyncClient,
) -> None:
    assert await run_async(comet_inprocess_async_client) > 0
