"""Every Python block of README.md, and the shell blocks marked to run, run as written against the
emulator (no key, no network).

Each block runs in its own process, in an empty folder, with `COMETAPI_KEY` and `COMETAPI_BASE_URL`
pointing at an emulator served on a loopback port: what the README tells a reader to export before
trying the examples. A comment line just above a block says how it runs:

- (none) for a ```python block: run as a script;
- `<!-- readme-test: pytest ... -->`: the block is a test module; it runs under pytest with the
  emulator's plugin loaded from a conftest, as the README says to do;
- `<!-- readme-test: bash ... -->`: a shell block, run with `bash -euo pipefail` (the CLI on PATH);
- `<!-- readme-test: skip REASON -->`: skipped, visibly, with REASON (a block that needs a real API
  key or endpoint, serves forever, or needs a feature another branch is building: REASON says which).

A shell block with no comment is skipped with a reason saying so (the Quick start's are run by
tests/cli/test_quickstart.py in a fresh virtual environment).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from comet_replicate_emulator import EmulatorConfig, RunningEmulator, serve

README = Path(__file__).resolve().parents[2] / "README.md"
#: A user's project configured as the README advises (async mode for pytest-asyncio), warnings as errors.
USER_PYTEST_INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""
_BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<mode>[^>]*?) -->\n)?"
    r"[ \t]*```(?P<language>python|bash)\n(?P<code>.*?)\n[ \t]*```",
    re.S,
)
_UNMARKED_SHELL = "skip shell block not marked `readme-test: bash`"


@dataclass(frozen=True)
class Block:
    """One ```python or ```bash block of the README: where it starts, how to run it, and its code."""

    line: int
    mode: str
    code: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """The README's blocks, each with the mode of the comment right above it (python default: run)."""
    blocks = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code"))  # the 1-based line of the opening fence
        default = "run" if match.group("language") == "python" else _UNMARKED_SHELL
        mode = (match.group("mode") or default).strip()
        blocks.append(Block(line=line, mode=mode, code=match.group("code")))
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_blocks_to_run_and_each_has_a_known_mode() -> None:
    modes = [block.mode.split()[0] for block in BLOCKS]
    assert set(modes) <= {"run", "pytest", "bash", "skip"}
    assert modes.count("run") >= 3 and "pytest" in modes and modes.count("bash") >= 2


def test_readme_blocks_are_found_with_their_modes() -> None:
    text = (
        "x\n```python\nprint(1)\n```\n"
        "<!-- readme-test: skip needs a real key -->\n```python\nimport os\n```\n"
        "```bash\nls\n```\n<!-- readme-test: bash -->\n   ```bash\necho\n   ```\n"
    )
    assert readme_blocks(text) == [
        Block(line=2, mode="run", code="print(1)"),
        Block(line=6, mode="skip needs a real key", code="import os"),
        Block(line=9, mode=_UNMARKED_SHELL, code="ls"),
        Block(line=13, mode="bash", code="echo"),
    ]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with serve(EmulatorConfig(speed=50, seed=None)) as server:
        yield server


def _environment(emulator: RunningEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMETAPI_", "PYTEST_"))}
    env.update(COMETAPI_KEY="sk-readme-example", COMETAPI_BASE_URL=emulator.cometapi_base_url)
    return env


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, emulator: RunningEmulator, tmp_path: Path) -> None:
    mode, _, reason = block.mode.partition(" ")
    if mode == "skip":
        pytest.skip(f"{block.id}: {reason or 'marked skip in the README'}")
    env = _environment(emulator)
    if mode == "pytest":
        (tmp_path / "conftest.py").write_text('pytest_plugins = ["comet_replicate_emulator.pytest_plugin"]\n')
        (tmp_path / "test_readme_example.py").write_text(block.code + "\n", encoding="utf-8")
        (tmp_path / "pytest.ini").write_text(USER_PYTEST_INI)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_example.py"]
    elif mode == "bash":
        (tmp_path / "example.sh").write_text(block.code + "\n", encoding="utf-8")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # comet-replicate
        env["COLUMNS"] = "100"
        command = ["bash", "-euo", "pipefail", "example.sh"]
    else:
        (tmp_path / "example.py").write_text(block.code + "\n", encoding="utf-8")
        command = [sys.executable, "-W", "error", "example.py"]  # warnings are errors, as in our tests
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    if mode == "pytest":
        assert re.search(r"\b[1-9]\d* passed\b", result.stdout) and "failed" not in result.stdout, (
            result.stdout
        )
