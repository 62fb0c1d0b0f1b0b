"""Fail when `radon cc -n D` finds a function of cyclomatic complexity D or worse.

`radon cc` itself exits 0 whatever it prints, so this runs it and fails on any output.
Usage: python scripts/complexity.py [PATH ...]  (default: wrapper/)
"""

from __future__ import annotations

import subprocess
import sys


def main(paths: list[str]) -> int:
    result = subprocess.run(
        [sys.executable, "-m", "radon", "cc", "-n", "D", *(paths or ["wrapper/"])],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        return result.returncode
    if result.stdout.strip():
        sys.stdout.write("functions of complexity D or worse (split them by meaning):\n" + result.stdout)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
