"""Prove the contract suite can fail: seed one mutation at a time into a copy of the repo and require
the relevant part of the suite to fail on every one.

    python contract_tests/mutation.py            # all mutations (tox -e mutation)
    python contract_tests/mutation.py --list     # what would be mutated
    python contract_tests/mutation.py -k prefer  # only mutations whose name contains "prefer" (repeatable)

A mutation finds its place by a trailing marker comment, `# mutation-point: NAME`, at the end of
exactly one line anywhere in the tracked tree (so code can move between files without touching this
harness), and makes a line-local change there: delete the statement, or replace one token on that
line. A marker that is missing or not unique stops the run before anything else (exit 2). Data
without comments (recordings, generated code) is changed as a whole file instead.

The repository is copied (`git ls-files`, tracked and untracked-but-not-ignored files) into a
temporary directory. Each run puts the copy's `generated/`, `wrapper/` and `emulator/` first on
PYTHONPATH, so the copy — not an installed wheel or an editable install — is what gets imported;
this is verified before anything else (the imported modules must live in the copy and the mutated
file must be the one imported). The unmutated copy must pass every selected test first. Then each
mutation is applied to a fresh copy and its tests must FAIL. A table is printed; the exit code is 1
if any mutation survives, 2 if the baseline itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "comet_replicate_api": "generated",
    "comet_replicate": "wrapper",
    "comet_replicate_emulator": "emulator",
}


MARKER = re.compile(r"#\s*mutation-point:\s*([A-Za-z0-9_.-]+)\s*$")
MARKED_SUFFIXES = (".py", ".yaml", ".yml")


@dataclass(frozen=True)
class Delete:
    """Delete the statement on the marked line (a Python line that cannot simply go becomes `pass`)."""

    def apply(self, lines: list[str], index: int, path: str) -> list[str]:
        without = lines[:index] + lines[index + 1 :]
        if not path.endswith(".py") or _compiles(without, path):
            return without
        line = lines[index]
        indent = line[: len(line) - len(line.lstrip())]
        with_pass = [*lines[:index], f"{indent}pass  # mutated\n", *lines[index + 1 :]]
        if _compiles(with_pass, path):
            return with_pass
        raise ValueError(f"{path}:{index + 1}: the marked statement spans lines; mark a one-line statement")

    def describe(self) -> str:
        return "delete the statement"


@dataclass(frozen=True)
class Replace:
    """Replace a token that occurs exactly once in the code part of the marked line."""

    old: str
    new: str

    def apply(self, lines: list[str], index: int, path: str) -> list[str]:
        line = lines[index]
        match = MARKER.search(line)
        assert match is not None
        code, comment = line[: match.start()], line[match.start() :]
        count = code.count(self.old)
        if count != 1:
            raise ValueError(f"{path}:{index + 1}: {self.old!r} occurs {count} times on the marked line")
        return [*lines[:index], code.replace(self.old, self.new) + comment, *lines[index + 1 :]]

    def describe(self) -> str:
        return f"replace {self.old!r} by {self.new!r}"


def _compiles(lines: list[str], path: str) -> bool:
    try:
        compile("".join(lines), path, "exec")
    except SyntaxError:
        return False
    return True


@dataclass(frozen=True)
class Mutation:
    """One seeded bug. Either `marker` + `change` (found by a trailing `# mutation-point: NAME` comment
    anywhere in the tracked tree, so code can move between files) or `file` + `apply` (a whole-file
    change for data that carries no comments: recordings, generated code)."""

    name: str
    what: str
    tests: tuple[str, ...]  # pytest arguments (relative to the copy)
    marker: str | None = None
    change: Delete | Replace | None = None
    file: str | None = None  # relative to the repo root
    apply: Callable[[str], str] | None = (
        None  # old file text -> mutated text (raises if the target is missing)
    )


def replace_all(old: str, new: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        if old not in text:
            raise RuntimeError(f"mutation target not found: {old!r}")
        return text.replace(old, new)

    return apply


def drop_json_field(pointer: tuple[str, ...]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        doc = json.loads(text)
        node = doc
        for part in pointer[:-1]:
            node = node[part]
        if pointer[-1] not in node:
            raise RuntimeError(f"mutation target not found: {'/'.join(pointer)}")
        del node[pointer[-1]]
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    return apply


EMULATOR_FILE = "contract_tests/test_emulator_conformance.py"
# The in-process schemathesis tests; the CLI run on a real socket (slow) is left out.
EMULATOR_TESTS = (
    EMULATOR_FILE,
    "--deselect",
    f"{EMULATOR_FILE}::test_schemathesis_cli_against_the_emulator_on_a_real_socket",
)
RECORDINGS = "contract_tests/test_recordings.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "recording-drops-required-field",
        "a required field (created_at) removed from a recorded prediction",
        (RECORDINGS,),
        file="contract_tests/recordings/get-succeeded-list.json",
        apply=drop_json_field(("response", "json", "created_at")),
    ),
    Mutation(
        "emulator-renames-status",
        "the emulator says 'queued' instead of 'starting'",
        EMULATOR_TESTS,
        marker="status-starting",
        change=Replace('"starting"', '"queued"'),
    ),
    Mutation(
        "emulator-drops-required-field",
        "the emulator's predictions lose created_at",
        EMULATOR_TESTS,
        marker="created-at",
        change=Delete(),
    ),
    Mutation(
        "spec-changed-without-regen",
        "openapi.yaml renames FluxSchnellInput.megapixels; generated/ is not regenerated",
        ("contract_tests/test_drift.py",),
        marker="spec-field-name",
        change=Replace("megapixels", "mega_pixels"),
    ),
    Mutation(
        "spec-input-schema-loses-field",
        "a model's input schema loses a field the real API accepts (flux-2 prompt_upsampling)",
        (RECORDINGS, "-k", "schema_lists"),
        marker="input-schema-field",
        change=Delete(),
    ),
    Mutation(
        "wrapper-drops-prefer",
        "the wrapper stops sending Prefer: wait=N",
        ("contract_tests/test_wrapper_requests.py", "-k", "create"),
        marker="send-prefer",
        change=Delete(),
    ),
    Mutation(
        "wrapper-drops-authorization",
        "the wrapper stops sending Authorization",
        ("contract_tests/test_wrapper_requests.py", "-k", "get_and_cancel"),
        marker="send-authorization",
        change=Delete(),
    ),
    Mutation(
        "wrapper-skips-input-validation",
        "the wrapper sends inputs without validating them against the model's schema",
        ("contract_tests/test_wrapper_requests.py", "-k", "refused"),
        marker="validate-input",
        change=Delete(),
    ),
    Mutation(
        "wrapper-status-class-loses-524",
        "a 524 answer is no longer an OriginTimeoutError (just a generic 5xx)",
        (RECORDINGS, "-k", "typed_error"),
        marker="status-524",
        change=Delete(),
    ),
    Mutation(
        "wrapper-stops-retrying-524",
        "a get answered 524 is no longer retried",
        (RECORDINGS, "-k", "get-524"),
        marker="retry-524",
        change=Replace("524", "599"),
    ),
    Mutation(
        "generated-field-renamed",
        "a hand edit in generated/: FluxSchnellInput.num_outputs renamed to num_images",
        ("contract_tests/test_drift.py",),
        file="generated/comet_replicate_api/models/flux_schnell_input.py",
        apply=replace_all("num_outputs", "num_images"),
    ),
)


@dataclass(frozen=True)
class Target:
    """Where a mutation lands in the tree: the file, and the marked line (0-based) for marker ones."""

    file: str
    line: int | None = None

    @property
    def module(self) -> str | None:
        """The module whose imported file must be the mutated one (None for data files)."""
        for package, folder in PACKAGES.items():
            prefix = f"{folder}/{package}/"
            if self.file.startswith(prefix) and self.file.endswith(".py"):
                dotted = self.file[len(folder) + 1 : -3].replace("/", ".")
                return dotted.removesuffix(".__init__")
        return None


def find_markers(files: list[str], root: Path) -> dict[str, list[tuple[str, int]]]:
    """Every `# mutation-point: NAME` at the end of a line in the tracked tree: name -> places."""
    found: dict[str, list[tuple[str, int]]] = {}
    for rel in files:
        if not rel.endswith(MARKED_SUFFIXES):
            continue
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if "mutation-point" not in text:
            continue
        for number, line in enumerate(text.splitlines()):
            match = MARKER.search(line)
            if match:
                found.setdefault(match.group(1), []).append((rel, number))
    return found


def locate(chosen: list[Mutation], files: list[str], root: Path) -> tuple[dict[str, Target], list[str]]:
    """Each mutation's target, and a problem line for every marker that is missing or not unique."""
    markers = find_markers(files, root)
    targets: dict[str, Target] = {}
    problems: list[str] = []
    for m in chosen:
        if m.marker is None:
            assert m.file is not None
            if m.file not in files:
                problems.append(f"{m.name}: {m.file} is not in the tree")
            targets[m.name] = Target(m.file)
            continue
        places = markers.get(m.marker, [])
        if len(places) != 1:
            where = ", ".join(f"{f}:{n + 1}" for f, n in places) or "nowhere"
            problems.append(
                f"{m.name}: marker '# mutation-point: {m.marker}' found {len(places)} times ({where}); "
                "it must end exactly one line of the tracked tree"
            )
            continue
        targets[m.name] = Target(*places[0])
    return targets, problems


def mutate(m: Mutation, target: Target, copy: Path) -> None:
    """Apply the mutation to the copy (raises ValueError/RuntimeError/KeyError when it cannot)."""
    path = copy / target.file
    text = path.read_text(encoding="utf-8")
    if m.apply is not None:
        path.write_text(m.apply(text), encoding="utf-8")
        return
    assert m.change is not None and target.line is not None
    lines = text.splitlines(keepends=True)
    path.write_text("".join(m.change.apply(lines, target.line, target.file)), encoding="utf-8")


def tracked_files() -> list[str]:
    proc = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return sorted({p for p in proc.stdout.decode().split("\0") if p and (ROOT / p).is_file()})


def copy_repo(files: list[str], dest: Path) -> Path:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


def env_for(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(copy / d) for d in ("generated", "wrapper", "emulator")] + [str(copy)]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["HYPOTHESIS_PROFILE"] = "mutation"  # ci without shrinking (contract_tests/conftest.py)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for name in ("COMETAPI_KEY", "COMET_REPLICATE_LIVE", "COMETAPI_BASE_URL"):
        env.pop(name, None)  # never live from here
    return env


def verify_imports(copy: Path, target: Target | None) -> None:
    """The copy's packages are what Python imports (and the mutated module is the mutated file)."""
    module = target.module if target else None
    modules = [*PACKAGES, "contract_tests._spec"] + ([module] if module else [])
    # Also where each layer reads openapi.yaml from: the suite, the wrapper and the emulator must all
    # read the copy's (possibly mutated) spec, not one bundled in an installed wheel.
    code = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "found = {m: importlib.import_module(m).__file__ for m in mods}\n"
        "from comet_replicate._spec import spec_path\n"
        "from comet_replicate_emulator._spec import locate_spec\n"
        "from contract_tests._spec import SPEC_PATH\n"
        "found.update({'spec:wrapper': str(spec_path()), 'spec:emulator': str(locate_spec()),"
        " 'spec:suite': str(SPEC_PATH)})\n"
        "print(json.dumps(found))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=env_for(copy), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"importing from the copy failed:\n{proc.stderr}")
    found: dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in found.items():
        if not Path(path).resolve().is_relative_to(copy.resolve()):
            raise RuntimeError(f"{name} was imported from {path}, not from the copy {copy}: shadowed")
    if target is not None and module:
        imported = Path(found[module]).resolve()
        if imported != (copy / target.file).resolve():
            raise RuntimeError(f"{module} is {imported}, not the mutated {target.file}")


def run_tests(copy: Path, args: tuple[str, ...], *, stop_early: bool) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header", "-rN"]
    if stop_early:
        cmd.append("-x")
    proc = subprocess.run(
        [*cmd, *args], cwd=copy, env=env_for(copy), capture_output=True, text=True, timeout=900
    )
    return proc.returncode, proc.stdout + proc.stderr


def baseline_selection(chosen: list[Mutation]) -> tuple[str, ...]:
    """The union of the files the mutations run, with the emulator file's deselections."""
    files: list[str] = []
    extra: list[str] = []
    for m in chosen:
        if m.tests[0] not in files:
            files.append(m.tests[0])
        if m.tests == EMULATOR_TESTS:
            extra = list(EMULATOR_TESTS[1:])
    return (*files, *extra)


# pytest exit codes: 1 tests failed, 2 collection/import errors (the suite still refused the change);
# 0 passed, 5 nothing ran; 3 and 4 (internal or usage error, e.g. a test path that does not exist) say
# nothing about the mutation.
VERDICTS = {1: "caught", 2: "caught", 0: "SURVIVED", 5: "SURVIVED (no tests ran)"}


def _where(target: Target | None) -> str:
    if target is None:
        return "?"
    return target.file if target.line is None else f"{target.file}:{target.line + 1}"


def last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:90] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-k",
        dest="select",
        action="append",
        default=[],
        help="only mutations whose name contains this (repeatable: any of them)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    options = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not options.select or any(k in m.name for k in options.select)]
    files = tracked_files()
    if options.list or not chosen:
        targets, _ = locate(list(MUTATIONS), files, ROOT)
        for m in MUTATIONS:
            where = _where(targets.get(m.name)) if m.name in targets else f"MISSING marker {m.marker}"
            print(f"{m.name:34} {where}: {m.what}")
        return 0 if chosen or options.list else 2
    # Every marker must be found before anything runs: a marker lost in a refactor is an error of
    # the harness, never a silently skipped mutation.
    targets, problems = locate(chosen, files, ROOT)
    if problems:
        print("MUTATION TARGETS MISSING (add the marker comment, or update contract_tests/mutation.py):")
        for line in problems:
            print(f"  {line}")
        return 2
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="comet-mutation-"))
    try:
        baseline = copy_repo(files, tmp / "baseline")
        verify_imports(baseline, None)
        print(f"copied {len(files)} files to {tmp}; imports come from the copy (verified)")
        # The unmutated copy must pass everything the mutations will run (one pytest run: each
        # mutation's selection is a subset of these files).
        baseline_args = baseline_selection(chosen)
        code, output = run_tests(baseline, baseline_args, stop_early=False)
        if code != 0:
            print(output[-6000:])
            print(f"BASELINE FAILS (exit {code}): fix the suite before mutating")
            return 2
        print(f"baseline ok: {last_line(output)}")
        rows: list[tuple[str, str, str, float]] = []
        for index, m in enumerate(chosen):
            copy = copy_repo(files, tmp / f"m{index}")
            target = targets[m.name]
            t0 = time.monotonic()
            try:
                mutate(m, target, copy)
            except (RuntimeError, KeyError, ValueError) as exc:
                rows.append((m.name, "NOT APPLIED", f"update the mutation: {exc}"[:90], 0.0))
                print(f"  {m.name}: NOT APPLIED ({exc})", flush=True)
                continue
            verify_imports(copy, target)
            code, output = run_tests(copy, m.tests, stop_early=True)
            verdict = VERDICTS.get(code, f"ERROR (pytest exit {code})")
            rows.append((m.name, verdict, last_line(output), time.monotonic() - t0))
            print(f"  {m.name}: {verdict} ({time.monotonic() - t0:.0f} s)", flush=True)
            if not options.keep:
                shutil.rmtree(copy, ignore_errors=True)
    finally:
        if not options.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print()
    print(f"{'mutation':<{width}}  {'verdict':<11} {'secs':>6}  pytest summary")
    print(f"{'-' * width}  {'-' * 11} {'-' * 6}  {'-' * 40}")
    for name, verdict, summary, secs in rows:
        print(f"{name:<{width}}  {verdict:<11} {secs:6.1f}  {summary}")
    caught = sum(1 for r in rows if r[1] == "caught")
    total = time.monotonic() - started
    print(f"\n{caught}/{len(rows)} mutations caught ({100 * caught // len(rows)} %) in {total:.0f} s")
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
