"""Prove the contract suite can fail: seed one mutation at a time into a copy of the repo and require
the relevant part of the suite to fail on every one.

    python contract_tests/mutation.py            # all mutations (tox -e mutation)
    python contract_tests/mutation.py --list     # what would be mutated
    python contract_tests/mutation.py -k prefer  # only mutations whose name contains "prefer"

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


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    file: str  # relative to the repo root
    apply: Callable[[str], str]  # old file text -> mutated text (raises if the target is missing)
    tests: tuple[str, ...]  # pytest arguments (relative to the copy)
    module: str | None = None  # module whose imported file must be the mutated one


def replace_once(old: str, new: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        count = text.count(old)
        if count != 1:
            raise RuntimeError(f"mutation target found {count} times (expected once): {old!r}")
        return text.replace(old, new)

    return apply


def replace_regex(pattern: str, new: str) -> Callable[[str], str]:
    """For code that others keep editing: match the line by its meaning, not its exact text."""

    def apply(text: str) -> str:
        mutated, count = re.subn(pattern, new, text, flags=re.MULTILINE)
        if count != 1:
            raise RuntimeError(f"mutation target found {count} times (expected once): /{pattern}/")
        return mutated

    return apply


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

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "recording-drops-required-field",
        "a required field (created_at) removed from a recorded prediction",
        "contract_tests/recordings/get-succeeded-list.json",
        drop_json_field(("response", "json", "created_at")),
        ("contract_tests/test_recordings.py",),
    ),
    Mutation(
        "emulator-renames-status",
        "the emulator says 'queued' instead of 'starting'",
        "emulator/comet_replicate_emulator/_predictions.py",
        replace_once(
            '"processing" if now >= self.started else "starting"',
            '"processing" if now >= self.started else "queued"',
        ),
        EMULATOR_TESTS,
        "comet_replicate_emulator._predictions",
    ),
    Mutation(
        "emulator-drops-required-field",
        "the emulator's predictions lose created_at",
        "emulator/comet_replicate_emulator/_predictions.py",
        replace_once('"created_at": iso(self.created_at),', ""),
        EMULATOR_TESTS,
        "comet_replicate_emulator._predictions",
    ),
    Mutation(
        "spec-changed-without-regen",
        "openapi.yaml renames FluxSchnellInput.megapixels; generated/ is not regenerated",
        "openapi.yaml",
        replace_once(
            "not deterministic even with a seed.\n        megapixels:",
            "not deterministic even with a seed.\n        mega_pixels:",
        ),
        ("contract_tests/test_drift.py",),
    ),
    Mutation(
        "wrapper-drops-prefer",
        "the wrapper stops sending Prefer: wait=N",
        "wrapper/comet_replicate/_flow.py",
        replace_once("prefer=UNSET if prefer is None else prefer,", "prefer=UNSET,"),
        ("contract_tests/test_wrapper_requests.py", "-k", "create"),
        "comet_replicate._flow",
    ),
    Mutation(
        "wrapper-drops-authorization",
        "the wrapper stops sending Authorization",
        "wrapper/comet_replicate/_client.py",
        replace_regex(r"^(\s*)auth_headers=.*\"Authorization\".*,$", r"\1auth_headers=httpx.Headers(),"),
        ("contract_tests/test_wrapper_requests.py", "-k", "get_and_cancel"),
        "comet_replicate._client",
    ),
    Mutation(
        "wrapper-skips-input-validation",
        "the wrapper sends inputs without validating them against the model's schema",
        "wrapper/comet_replicate/_inputs.py",
        replace_once(
            "    if known:\n        validate_input(model, data)\n",
            "    if False:\n        validate_input(model, data)\n",
        ),
        ("contract_tests/test_wrapper_requests.py", "-k", "refused"),
        "comet_replicate._inputs",
    ),
    Mutation(
        "generated-field-renamed",
        "a hand edit in generated/: FluxSchnellInput.num_outputs renamed to num_images",
        "generated/comet_replicate_api/models/flux_schnell_input.py",
        replace_all("num_outputs", "num_images"),
        ("contract_tests/test_drift.py",),
        "comet_replicate_api.models.flux_schnell_input",
    ),
)


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


def verify_imports(copy: Path, mutation: Mutation | None) -> None:
    """The copy's packages are what Python imports (and the mutated module is the mutated file)."""
    modules = [*PACKAGES, "contract_tests._spec"] + (
        [mutation.module] if mutation and mutation.module else []
    )
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
    for module, path in found.items():
        if not Path(path).resolve().is_relative_to(copy.resolve()):
            raise RuntimeError(f"{module} was imported from {path}, not from the copy {copy}: shadowed")
    if mutation and mutation.module:
        imported = Path(found[mutation.module]).resolve()
        if imported != (copy / mutation.file).resolve():
            raise RuntimeError(f"{mutation.module} is {imported}, not the mutated {mutation.file}")


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


def last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:90] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", default="", help="only mutations whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    options = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if options.select in m.name]
    if options.list or not chosen:
        for m in MUTATIONS:
            print(f"{m.name:34} {m.file}: {m.what}")
        return 0 if chosen or options.list else 2
    files = tracked_files()
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
            target = copy / m.file
            t0 = time.monotonic()
            try:
                target.write_text(m.apply(target.read_text(encoding="utf-8")), encoding="utf-8")
            except (RuntimeError, KeyError, ValueError) as exc:
                rows.append((m.name, "NOT APPLIED", f"update the mutation: {exc}"[:90], 0.0))
                print(f"  {m.name}: NOT APPLIED ({exc})", flush=True)
                continue
            verify_imports(copy, m)
            code, output = run_tests(copy, m.tests, stop_early=True)
            verdict = "caught" if code not in (0, 5) else "SURVIVED"
            if code == 5:
                verdict = "SURVIVED (no tests ran)"
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
