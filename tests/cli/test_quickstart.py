"""The README's Quick start, first command, run verbatim in a fresh virtual environment.

It installs the source tree with pip (dependencies come from PyPI, so this test needs the package
index; it skips visibly when the index is unreachable) and checks that the image it leaves decodes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
# What `pip install .` needs from a checkout (the sdist's contents).
SOURCE_PARTS = ("pyproject.toml", "README.md", "openapi.yaml", "generated", "wrapper", "emulator")


def quickstart_first_command() -> str:
    """The first ```bash block of the README's Quick start."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)\n\s*```", section, re.S)
    assert match, "the Quick start has no bash block"
    return " ".join(line.strip() for line in match.group(1).strip().splitlines())


def test_the_quick_start_command_is_the_main_job() -> None:
    command = quickstart_first_command()
    assert command.startswith("pip install '.[cli,emulator]' && comet-replicate run ")
    assert "--emulator" in command and "--out out/" in command


def _index_reachable() -> bool:
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        return httpx.head(url.rstrip("/") + "/pip/", timeout=10, follow_redirects=True).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_quick_start_in_a_fresh_venv_leaves_an_image_that_decodes(tmp_path: Path) -> None:
    if not _index_reachable():
        pytest.skip("the package index is unreachable; the Quick start needs it to install dependencies")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for part in SOURCE_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, checkout / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, checkout / part)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMETAPI_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    result = subprocess.run(
        ["bash", "-c", quickstart_first_command()],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    images = sorted((checkout / "out").iterdir())
    assert len(images) == 1
    printed = result.stdout.strip().splitlines()[-1]
    assert (checkout / printed).resolve() == images[0].resolve()
    with Image.open(images[0]) as image:
        image.load()
        assert image.size == (1024, 1024)
    # The command really ran from the fresh environment, not from this one.
    assert shutil.which("comet-replicate", path=str(bin_dir)) is not None
