"""Mutation testing of the pure modules with mutmut 3, and the score that CI checks.

    python scripts/mutation_core.py                # run; print the score and every survivor
    python scripts/mutation_core.py --report-only  # re-read the last run's results, run nothing
    python scripts/mutation_core.py --tests tests  # a wider test selection than the configured fast one

mutmut 3 imports the code under test from `mutants/<source path>` and only knows the `src/` layout,
while this repository keeps the package in `wrapper/`. So the run happens in a staging tree
(`build/mutation/` by default): `src/comet_replicate/` (a copy of `wrapper/comet_replicate` with the
bundled openapi.yaml), a copy of `tests/`, and a pyproject.toml whose `[tool.mutmut]` table is the
repository's (modules, fast test selection, exclusions and their reasons live there) with any
command-line overrides applied. mutmut then copies that tree into `build/mutation/mutants/` and puts
its `src/` first on sys.path, so the tests import the mutated package, never the installed one.

The score per module is killed / (killed + survived + no tests): a mutant no selected test even
reaches counts against the score. A timeout is a kill (the mutant made the tests hang, which a user
would notice). Message-text mutants are not generated at all (`do_not_mutate_patterns` in
pyproject.toml says which lines and why), so every mutant counted changes logic. Exit status: 0 when
every module reaches `--threshold` (default: `tool.mutation-core.threshold` in pyproject.toml),
1 when one does not, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "comet_replicate"
IGNORED = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache", "*.pyc")

KILLED = {
    1: "killed",
    3: "killed",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    36: "timeout",
}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def _without_table(text: str, header: str) -> str:
    """`text` with the TOML table `[header]` (up to the next table header) removed."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped == f"[{header}]"
        if not skipping:
            out.append(line)
    return "".join(out)


def stage(workdir: Path, mutmut_config: dict[str, Any]) -> None:
    """Lay out the staging tree mutmut runs in (see the module docstring)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    package = workdir / "src" / PACKAGE
    shutil.copytree(ROOT / "wrapper" / PACKAGE, package, ignore=IGNORED)
    shutil.copy2(ROOT / "openapi.yaml", package / "openapi.yaml")
    shutil.copy2(ROOT / "openapi.yaml", workdir / "openapi.yaml")  # tests/_spec_helpers reads the root copy
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=IGNORED)
    text = _without_table((ROOT / "pyproject.toml").read_text("utf-8"), "tool.mutmut")
    lines = ["", "[tool.mutmut]"] + [f"{k} = {_toml_value(v)}" for k, v in mutmut_config.items()]
    (workdir / "pyproject.toml").write_text(text.rstrip() + "\n" + "\n".join(lines) + "\n", "utf-8")


@dataclass
class ModuleScore:
    path: str
    statuses: Counter[str] = field(default_factory=Counter)
    survivors: list[str] = field(default_factory=list)

    @property
    def killed(self) -> int:
        return self.statuses["killed"] + self.statuses["timeout"]

    @property
    def counted(self) -> int:
        return self.killed + self.statuses["survived"] + self.statuses["no tests"]

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def read_scores(workdir: Path, modules: list[str]) -> list[ModuleScore]:
    """Per module, the status of every mutant from mutmut's `.meta` files."""
    scores = []
    for module in modules:
        meta = workdir / "mutants" / (module + ".meta")
        if not meta.exists():
            raise SystemExit(f"no mutmut results for {module} ({meta} is missing): run without --report-only")
        data = json.loads(meta.read_text("utf-8"))
        result = ModuleScore(module)
        for name, code in sorted(data["exit_code_by_key"].items(), key=lambda kv: _natural(kv[0])):
            status = (
                KILLED.get(code) or SURVIVED.get(code) or ("not checked" if code is None else f"exit {code}")
            )
            result.statuses[status] += 1
            if status in ("survived", "no tests"):
                result.survivors.append(name)
        scores.append(result)
    return scores


def _natural(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


SPINNER = re.compile(r"[\u2800-\u28ff] ?")  # mutmut redraws a braille spinner in place
COUNTERS = re.compile(r"\d+/\d+\s")  # "412/1346  🎉 380 🫥 0 ...": mutants done/total, then by status


def run_mutmut(workdir: Path, max_children: int, every: float = 30.0) -> int:
    """`mutmut run` in the staging tree. mutmut redraws a spinner and its counters in place, without
    newlines; this prints each finished line once and the latest counters every `every` seconds, so
    a CI log shows progress without megabytes of redraws."""
    exe = Path(sys.executable).with_name("mutmut")
    command = [str(exe) if exe.exists() else "mutmut", "run", "--max-children", str(max_children)]
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HYPOTHESIS_PROFILE": "mutation",  # derandomized: the same examples for every mutant
    }
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    shown_at, last, counters = time.monotonic(), "", ""
    for line in process.stdout:  # text mode turns the spinner's carriage returns into newlines
        frames = [f for f in SPINNER.split(line) if f.strip()]
        text = frames[-1].strip() if frames else ""
        if COUNTERS.match(text):
            counters = text
            if time.monotonic() - shown_at >= every:
                print("   ", counters, flush=True)
                shown_at = time.monotonic()
        elif text and text != last:
            print(text, flush=True)
            last = text
    if counters:
        print("   ", counters, flush=True)
    return process.wait()


class Diffs:
    """Diffs of mutants against the original function, read from mutmut's generated modules.

    mutmut writes every mutant as a function `<name>__mutmut_<n>` beside `<name>__mutmut_orig` in
    `mutants/<module path>`; a plain text diff of the two is what `mutmut show` prints, without
    starting a process per mutant (a report lists hundreds)."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._functions: dict[str, dict[str, list[str]]] = {}

    def _module(self, module_path: str) -> dict[str, list[str]]:
        if module_path not in self._functions:
            text = (self._workdir / "mutants" / module_path).read_text("utf-8")
            lines = text.splitlines()
            found: dict[str, list[str]] = {}
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name:
                    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    body = textwrap.dedent("\n".join(lines[start - 1 : node.end_lineno]))
                    found[node.name] = body.replace(
                        node.name, node.name.partition("__mutmut_")[0][2:], 1
                    ).split("\n")
            self._functions[module_path] = found
        return self._functions[module_path]

    def diff(self, module_path: str, key: str) -> str:
        functions = self._module(module_path)
        name = key.rpartition(".")[2]
        original = functions.get(name.partition("__mutmut_")[0] + "__mutmut_orig")
        mutant = functions.get(name)
        if original is None or mutant is None:
            return "(diff unavailable: run `mutmut show " + key + "` in " + str(self._workdir) + ")"
        diff = difflib.unified_diff(original, mutant, lineterm="", n=1)
        return "\n".join(line for line in diff if not line.startswith(("---", "+++")))


def check_constants(workdir: Path, constants: list[dict[str, str]], tests: list[str]) -> list[str]:
    """Seed each hand-made constant mutation into the staging copy and require the tests to fail.

    mutmut mutates code inside functions only, so module-level defaults (a cap, a limit, a dataclass
    field's default) get these instead. Each is a regular expression that must match exactly one
    line (a stable marker: the constant's own assignment) and its replacement. Returns the names of
    the mutations no test caught."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(workdir / "src"), os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",  # a same-size edit within one second could reuse a stale .pyc
        "PYTHONHASHSEED": "0",
        "HYPOTHESIS_PROFILE": "mutation",  # derandomized: the same examples for every mutant
    }
    survived = []
    for constant in constants:
        path = workdir / constant["file"]
        module = ".".join(Path(constant["file"]).with_suffix("").parts[1:])
        probe = f"import {module} as m; print(m.__file__)"
        where = subprocess.run(
            [sys.executable, "-c", probe], cwd=workdir, env=env, text=True, capture_output=True, check=False
        ).stdout.strip()
        if Path(where).resolve() != path.resolve():
            raise SystemExit(f"{module} is imported from {where or '?'}, not from the staging copy {path}")
        original = path.read_text("utf-8")
        mutated, count = re.subn(constant["find"], constant["replace"], original, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(
                f"constant mutation {constant['name']!r}: {constant['find']!r} matches {count} lines of "
                f"{constant['file']}, not one (update tool.mutation-core.constant in pyproject.toml)"
            )
        path.write_text(mutated, "utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            path.write_text(original, "utf-8")
        if done.returncode not in (0, 1):
            raise SystemExit(f"pytest could not run for {constant['name']!r}:\n{done.stdout}{done.stderr}")
        caught = done.returncode == 1
        print(f"  {'caught  ' if caught else 'SURVIVED'}  {constant['name']}")
        if not caught:
            survived.append(constant["name"])
    return survived


def main(argv: list[str] | None = None) -> int:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    mutmut_config: dict[str, Any] = dict(pyproject["tool"]["mutmut"])
    ours: dict[str, Any] = pyproject["tool"].get("mutation-core", {})

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "mutation")
    parser.add_argument("--threshold", type=float, default=float(ours.get("threshold", 95.0)))
    parser.add_argument("--max-children", type=int, default=int(ours.get("max_children", 2)))
    parser.add_argument("--tests", nargs="+", help="test paths instead of the configured fast selection")
    parser.add_argument(
        "--modules", nargs="+", help="module paths (as in only_mutate) instead of the configured ones"
    )
    parser.add_argument("--report-only", action="store_true", help="only read the results of the last run")
    parser.add_argument("--no-constants", action="store_true", help="skip the hand-made constant mutations")
    parser.add_argument("--constants-only", action="store_true", help="only the hand-made constant mutations")
    parser.add_argument("--no-diffs", action="store_true", help="list surviving mutants without their diffs")
    parser.add_argument(
        "--all-mutants",
        action="store_true",
        help="also generate the message-text mutants the configuration excludes (to see what they are)",
    )
    args = parser.parse_args(argv)

    if args.tests:
        mutmut_config["pytest_add_cli_args_test_selection"] = args.tests
    if args.modules:
        mutmut_config["only_mutate"] = args.modules
    if args.all_mutants:
        mutmut_config.pop("do_not_mutate_patterns", None)
    modules = [m for m in mutmut_config.get("only_mutate", []) if m.endswith(".py")]
    if not modules:
        print("tool.mutmut.only_mutate names no module", file=sys.stderr)
        return 2

    workdir: Path = args.workdir.resolve()
    tests = mutmut_config["pytest_add_cli_args_test_selection"]
    if args.constants_only:
        stage(workdir, mutmut_config)
        print("Hand-made constant mutations (each must make the tests fail):")
        return 1 if check_constants(workdir, ours.get("constant", []), tests) else 0
    if not args.report_only:
        stage(workdir, mutmut_config)
        started = time.monotonic()
        code = run_mutmut(workdir, args.max_children)
        print(f"\nmutmut run: exit {code} after {time.monotonic() - started:.0f} s")
        if code != 0:
            return 2

    scores = read_scores(workdir, modules)
    failed = False
    print(f"\n{'module':<40} {'killed':>7} {'total':>6} {'score':>7}   (threshold {args.threshold:g} %)")
    for s in scores:
        ok = s.score >= args.threshold
        failed |= not ok
        other = ", ".join(
            f"{n} {k}" for k, n in sorted(s.statuses.items()) if k not in ("killed", "survived")
        )
        mark = "" if ok else "   BELOW THRESHOLD"
        print(
            f"{s.path:<40} {s.killed:>7} {s.counted:>6} {s.score:>6.1f}%{mark}"
            + (f"   ({other})" if other else "")
        )
    diffs = Diffs(workdir)
    for s in scores:
        if not s.survivors:
            continue
        print(f"\nSurvivors in {s.path} ({len(s.survivors)}):")
        for name in s.survivors:
            print(f"\n  {name}")
            if not args.no_diffs:
                print(re.sub(r"(?m)^", "      ", diffs.diff(s.path, name)))
    if not args.report_only and not args.no_constants and ours.get("constant"):
        print("\nHand-made constant mutations (each must make the tests fail):")
        survived = check_constants(
            workdir, ours["constant"], mutmut_config["pytest_add_cli_args_test_selection"]
        )
        if survived:
            print(
                f"\n{len(survived)} constant mutation(s) survived: a test must pin each default at its "
                "documented value (written out, not imported)."
            )
        failed |= bool(survived)
    if any(s.score < args.threshold for s in scores):
        print(
            "\nA module is below the threshold: add a test that fails for each surviving mutant above, or, "
            "if one is equivalent (no input can tell it from the original), say why in the README's list."
        )
    print("\nmutation-core:", "FAILED" if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
