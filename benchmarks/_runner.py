"""The benchmark runner: starts the emulator, runs each contender in fresh subprocesses, interleaved,
and writes results.json, RESULTS.md and the plots."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import _report
from benchmarks._emulator import EmulatorProcess, running_emulator
from benchmarks._limits import LIMITS_CONTENDERS, LIMITS_MODELS, limits_targets, section_limits
from benchmarks._stats import median, percentile, ratio, summary

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SECTIONS = ("cost", "detect", "scale", "limits", "import")

# Per-model mean durations from 0.5 s to 30 s (queue + run, on the emulator's clock), as real FLUX
# predictions spread; each prediction's duration is drawn around its model's mean (lognormal).
DETECT_MODELS: tuple[tuple[str, float], ...] = (
    ("black-forest-labs/flux-schnell", 0.5),
    ("black-forest-labs/flux-dev", 1.5),
    ("black-forest-labs/flux-1.1-pro", 3.0),
    ("black-forest-labs/flux-pro", 6.0),
    ("black-forest-labs/flux-1.1-pro-ultra", 12.0),
    ("black-forest-labs/flux-2-max", 30.0),
)


@dataclass
class Sizes:
    """How much of everything to run; `--quick` shrinks it for the smoke test."""

    cost_n: int = 250
    cost_warmup: int = 30
    cost_reps: int = 7
    detect_models: tuple[tuple[str, float], ...] = DETECT_MODELS
    detect_per_model: int = 8
    detect_warmup_per_model: int = 3
    detect_sigma: float = 0.35
    detect_queue_s: float = 0.4
    detect_start_spread_s: float = 2.0
    sync_wait_s: int = 60
    scale_n: int = 1000
    scale_model: str = "black-forest-labs/flux-schnell"
    scale_mean_s: float = 3.0
    limits_n: int = 1000
    limits_models: tuple[tuple[str, float], ...] = LIMITS_MODELS
    limits_sigma: float = 0.35
    limits_speed: float = 2.0  # the emulator's clock runs this much faster; limits and durations scale
    limits_create_rpm: int = 600
    limits_rpm: int = 3000
    import_runs: int = 15
    import_peers: bool = True  # also time replicate and openai (slow to import; off in --quick)


QUICK = Sizes(
    cost_n=8,
    cost_warmup=2,
    cost_reps=1,
    detect_models=(("black-forest-labs/flux-schnell", 0.3), ("black-forest-labs/flux-dev", 0.8)),
    detect_per_model=2,
    detect_warmup_per_model=1,
    detect_queue_s=0.05,
    detect_start_spread_s=0.2,
    scale_n=20,
    scale_mean_s=0.5,
    limits_n=30,
    limits_models=(("black-forest-labs/flux-1.1-pro", 1.0), ("black-forest-labs/flux-2-max", 3.0)),
    limits_speed=10.0,
    limits_create_rpm=20,
    limits_rpm=100,
    import_runs=2,
    import_peers=False,
)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def rotate(items: Sequence[str], k: int) -> list[str]:
    """The k-th rotation: repetition k starts with a different contender, so drift in the machine's
    load does not always land on the same one."""
    if not items:
        return []
    k %= len(items)
    return [*items[k:], *items[:k]]


@dataclass
class WorkerFailure:
    what: str
    detail: str


@dataclass
class Run:
    """State shared by the sections of one run."""

    sizes: Sizes
    out_dir: Path
    failures: list[WorkerFailure] = field(default_factory=list)

    def start(self, job: dict[str, Any], *, what: str) -> Pending:
        """Start one job in a fresh interpreter (``python -m benchmarks._worker``)."""
        tmp = tempfile.TemporaryDirectory(prefix="bench-job-")
        job_path = Path(tmp.name) / "job.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        result_path = Path(tmp.name) / "result.json"
        stderr_path = Path(tmp.name) / "stderr.txt"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks._worker", str(job_path), str(result_path)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        return Pending(what, proc, tmp, result_path, stderr_path)

    def finish(self, pending: Pending, *, timeout: float) -> dict[str, Any] | None:
        """Wait for a started job; a crash or timeout is recorded, not raised, so one broken
        contender does not hide the others' figures."""
        what = pending.what
        try:
            try:
                pending.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pending.proc.kill()
                pending.proc.wait()
                self.failures.append(WorkerFailure(what, f"timed out after {timeout:.0f} s"))
                log(f"FAILED {what}: timed out")
                return None
            if pending.proc.returncode != 0 or not pending.result_path.exists():
                tail = pending.stderr_path.read_bytes().decode("utf-8", "replace")[-3000:]
                self.failures.append(WorkerFailure(what, f"exit {pending.proc.returncode}: {tail}"))
                log(f"FAILED {what}: exit {pending.proc.returncode}\n{tail}")
                return None
            result: dict[str, Any] = json.loads(pending.result_path.read_text(encoding="utf-8"))
            return result
        finally:
            pending.tmp.cleanup()

    def worker(self, job: dict[str, Any], *, timeout: float, what: str) -> dict[str, Any] | None:
        """Run one job in a fresh interpreter and return its result (None if it failed)."""
        return self.finish(self.start(job, what=what), timeout=timeout)


@dataclass
class Pending:
    """A worker process that was started and not yet collected."""

    what: str
    proc: subprocess.Popen[bytes]
    tmp: tempfile.TemporaryDirectory[str]
    result_path: Path
    stderr_path: Path


# --------------------------------------------------------------------------- plans


def lognormal_around(rng: random.Random, mean: float, sigma: float) -> float:
    """A lognormal draw whose *mean* (not median) is `mean`."""
    return math.exp(rng.gauss(math.log(mean) - sigma * sigma / 2.0, sigma))


@dataclass
class Plan:
    """Predictions to start (model, input, start offset) and the durations the emulator gives them."""

    warmup: list[dict[str, Any]]
    measured: list[dict[str, Any]]
    scale_inputs: list[dict[str, Any]]
    durations: dict[str, list[float]]  # "model#seed" -> [queue_s, run_s]


def make_plan(sizes: Sizes, seed: int = 8) -> Plan:
    rng = random.Random(seed)
    used: set[int] = set()
    durations: dict[str, list[float]] = {}

    def new_seed() -> int:
        while True:
            s = rng.randrange(1, 1 << 31)
            if s not in used:
                used.add(s)
                return s

    def item(model: str, mean: float) -> dict[str, Any]:
        s = new_seed()
        total = lognormal_around(rng, mean, sizes.detect_sigma)
        queue = min(lognormal_around(rng, sizes.detect_queue_s, 0.5), 0.5 * total)
        durations[f"{model}#{s}"] = [round(queue, 4), round(total - queue, 4)]
        return {
            "model": model,
            "input": {"prompt": f"benchmark {s}", "seed": s},
            "start_offset_s": round(rng.uniform(0.0, sizes.detect_start_spread_s), 3),
            "planned_s": round(total, 4),
        }

    warmup = [item(m, mean) for m, mean in sizes.detect_models for _ in range(sizes.detect_warmup_per_model)]
    measured = [item(m, mean) for m, mean in sizes.detect_models for _ in range(sizes.detect_per_model)]
    scale_inputs = []
    for _ in range(sizes.scale_n):
        s = new_seed()
        total = lognormal_around(rng, sizes.scale_mean_s, 0.25)
        durations[f"{sizes.scale_model}#{s}"] = [round(0.1 * total, 4), round(0.9 * total, 4)]
        scale_inputs.append({"prompt": f"scale {s}", "seed": s})
    return Plan(warmup, measured, scale_inputs, durations)


# --------------------------------------------------------------------------- 1. client cost


def section_cost(run: Run, contenders: list[str]) -> dict[str, Any]:
    sizes = run.sizes
    per: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    emu_cpu: dict[str, list[float]] = {c: [] for c in contenders}
    with running_emulator(["--instant"], cwd=str(REPO)) as emu:
        for rep in range(sizes.cost_reps):
            for contender in rotate(contenders, rep):
                emu.reset()
                cpu0 = emu.cpu_seconds()
                job = {
                    "kind": "cost",
                    "contender": contender,
                    "base_url": emu.base_url,
                    "token": emu.token,
                    "model": "black-forest-labs/flux-schnell",
                    "input": {"prompt": "a lighthouse at dusk", "num_outputs": 1},
                    "n": sizes.cost_n,
                    "warmup": sizes.cost_warmup,
                }
                res = run.worker(job, timeout=300, what=f"cost/{contender}/rep{rep}")
                if res is None:
                    continue
                cpu1 = emu.cpu_seconds()
                if cpu0 is not None and cpu1 is not None:
                    emu_cpu[contender].append((cpu1 - cpu0) / (sizes.cost_n + sizes.cost_warmup))
                res["emulator_requests"] = _request_totals(emu)
                res["rep"] = rep
                per[contender].append(res)
                log(
                    f"cost rep {rep} {contender}: cpu/flow {res['cpu_per_flow_s'] * 1e3:.3f} ms, "
                    f"wall/flow {res['wall_per_flow_s'] * 1e3:.3f} ms, statuses {res['statuses']}"
                )
        emu.reset()
        mixed = run.worker(
            {
                "kind": "cost-mixed",
                "contenders": contenders,
                "base_url": emu.base_url,
                "token": emu.token,
                "model": "black-forest-labs/flux-schnell",
                "input": {"prompt": "a lighthouse at dusk", "num_outputs": 1},
                "n": max(1, sizes.cost_n // 5),
                "rounds": sizes.cost_reps * 2,
                "warmup": sizes.cost_warmup,
            },
            timeout=300,
            what="cost/one-process",
        )
    out: dict[str, Any] = {"n_per_rep": sizes.cost_n, "reps": sizes.cost_reps, "contenders": {}}
    if mixed is not None:
        m = mixed["median_cpu_per_flow_s"]
        mixed["ratios"] = {
            "cpu_ours_over_raw": ratio(m.get("ours"), m.get("raw")),
            "cpu_ours_over_replicate": ratio(m.get("ours"), m.get("replicate")),
        }
        mixed["rounds"] = sizes.cost_reps * 2
        mixed["n_per_round"] = max(1, sizes.cost_n // 5)
        shown = {k: f"{v * 1e6:.0f} µs" for k, v in m.items()}
        ratios = {k: None if v is None else round(v, 3) for k, v in mixed["ratios"].items()}
        log(f"cost, one process: medians {shown}, ratios {ratios}")
    out["one_process"] = mixed
    for contender, reps in per.items():
        out["contenders"][contender] = {
            "cpu_per_flow_s": [r["cpu_per_flow_s"] for r in reps],
            "wall_per_flow_s": [r["wall_per_flow_s"] for r in reps],
            "median_cpu_per_flow_s": median(r["cpu_per_flow_s"] for r in reps),
            "median_wall_per_flow_s": median(r["wall_per_flow_s"] for r in reps),
            "statuses": [r["statuses"] for r in reps],
            "emulator_requests": [r["emulator_requests"] for r in reps],
            "emulator_cpu_per_flow_s": median(emu_cpu[contender]),
        }
    med = {c: v["median_cpu_per_flow_s"] for c, v in out["contenders"].items()}
    medw = {c: v["median_wall_per_flow_s"] for c, v in out["contenders"].items()}
    by_rep = {c: {r["rep"]: r["cpu_per_flow_s"] for r in reps} for c, reps in per.items()}

    def paired(num: str, den: str) -> float | None:
        """Median over repetitions of the ratio within each repetition (drift-robust)."""
        if num not in by_rep or den not in by_rep:
            return None
        common = sorted(set(by_rep[num]) & set(by_rep[den]))
        return median(by_rep[num][k] / by_rep[den][k] for k in common)

    out["ratios"] = {
        "cpu_ours_over_raw_paired": paired("ours", "raw"),
        "cpu_ours_over_replicate_paired": paired("ours", "replicate"),
        "cpu_ours_over_raw": ratio(med.get("ours"), med.get("raw")),
        "cpu_ours_over_replicate": ratio(med.get("ours"), med.get("replicate")),
        "wall_ours_over_raw": ratio(medw.get("ours"), medw.get("raw")),
        "wall_ours_over_replicate": ratio(medw.get("ours"), medw.get("replicate")),
    }
    return out


def _request_totals(emu: EmulatorProcess) -> Any:
    try:
        return emu.stats()
    except Exception as exc:  # the stats are context, not a measurement
        return {"error": repr(exc)}


# --------------------------------------------------------------------------- 2. completion detection


def section_detect(run: Run, plan: Plan, emu: EmulatorProcess, contenders: list[str]) -> dict[str, Any]:
    sizes = run.sizes
    out: dict[str, Any] = {
        "models": [{"model": m, "mean_s": mean} for m, mean in sizes.detect_models],
        "per_model": sizes.detect_per_model,
        "warmup_per_model": sizes.detect_warmup_per_model,
        "sigma": sizes.detect_sigma,
        "speed": 1.0,
        "contenders": {},
    }
    longest = max(p["planned_s"] + p["start_offset_s"] for p in plan.warmup + plan.measured)
    emu.reset()

    def job(contender: str) -> dict[str, Any]:
        return {
            "kind": "detect",
            "contender": contender,
            "base_url": emu.base_url,
            "token": emu.token,
            "plan": plan.measured,
            # Only our polling mode learns from history; the others start cold, as they would.
            "warmup_plan": plan.warmup if contender == "ours-poll" else [],
            "sync_wait": sizes.sync_wait_s,
            "timeout": longest + 120,
        }

    timeout = 3 * longest + 300
    # The polling mode's warm-up (nothing measured) overlaps the sync-mode run, whose client only
    # holds open requests, to keep the section short; each measured batch otherwise runs alone.
    pending = {}
    if "ours-poll" in contenders:
        pending["ours-poll"] = (run.start(job("ours-poll"), what="detect/ours-poll"), time.monotonic())
    results: dict[str, dict[str, Any] | None] = {}
    for contender in contenders:
        if contender in pending:
            handle, t0 = pending.pop(contender)
            results[contender] = run.finish(handle, timeout=timeout)
        else:
            t0 = time.monotonic()
            results[contender] = run.worker(job(contender), timeout=timeout, what=f"detect/{contender}")
        res = results[contender]
        if res is None:
            continue
        res["wall_s"] = time.monotonic() - t0
        out["contenders"][contender] = _detect_summary(res, sizes)
        s = out["contenders"][contender]
        log(
            f"detect {contender}: ok {s['ok']}/{s['n']}, latency p50 {_ms(s['latency_ms']['p50'])}, "
            f"p90 {_ms(s['latency_ms']['p90'])}, GETs/prediction {s['gets_mean']:.2f} "
            f"(total {s['gets_total']})"
        )
    stats = _request_totals(emu)
    out["emulator_requests"] = stats.get("requests") if isinstance(stats, dict) else stats
    # Cross-check: every GET the clients counted (measured + warm-up) reached the emulator.
    client_gets = sum(d["all_gets"] + d["warmup_gets"] for d in out["contenders"].values())
    emu_gets = None
    if isinstance(out["emulator_requests"], dict):
        emu_gets = sum(out["emulator_requests"].get("get", {}).values())
    out["gets_cross_check"] = {"counted_by_clients": client_gets, "seen_by_emulator": emu_gets}
    return out


def _ratio_text(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}×"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} ms"


def _detect_summary(res: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    preds = res["predictions"]
    ok = [p for p in preds if p.get("ok")]
    lat = [p["latency_s"] * 1e3 for p in ok if p.get("latency_s") is not None]
    gets = [p["gets"] for p in ok]
    within = [p for p in ok if p.get("duration_s") is not None and p["duration_s"] <= sizes.sync_wait_s]
    return {
        "n": len(preds),
        "ok": len(ok),
        "errors": [p for p in preds if not p.get("ok")][:10],
        "latency_ms": summary(lat),
        "gets_total": sum(gets),
        "gets_mean": (sum(gets) / len(gets)) if gets else 0.0,
        "gets_median": median(gets),
        "gets_within_sync_wait": sum(p["gets"] for p in within),
        "n_within_sync_wait": len(within),
        "cpu_s": res["cpu_s"],
        "wall_s": res["wall_s"],
        "warmup": res["warmup"],
        "other_requests": res["requests"],
        "warmup_gets": res["warmup_gets"],
        "all_gets": res["all_gets"],
        "points": [
            {
                "model": p["model"],
                "duration_s": p["duration_s"],
                "latency_ms": None if p.get("latency_s") is None else p["latency_s"] * 1e3,
                "gets": p["gets"],
                "predict_time": p.get("predict_time"),
            }
            for p in ok
        ],
    }


# --------------------------------------------------------------------------- 3. scale


def section_scale(run: Run, plan: Plan, emu: EmulatorProcess, contenders: list[str]) -> dict[str, Any]:
    sizes = run.sizes
    out: dict[str, Any] = {"n": sizes.scale_n, "model": sizes.scale_model, "mean_s": sizes.scale_mean_s}
    out["longest_s"] = max(
        sum(plan.durations[f"{sizes.scale_model}#{inp['seed']}"]) for inp in plan.scale_inputs
    )
    out["contenders"] = {}
    for contender in contenders:
        emu.reset()
        job = {
            "kind": "scale",
            "contender": contender,
            "base_url": emu.base_url,
            "token": emu.token,
            "model": sizes.scale_model,
            "inputs": plan.scale_inputs,
            "timeout": 600,
        }
        res = run.worker(job, timeout=900, what=f"scale/{contender}")
        if res is None:
            continue
        res["emulator_stats"] = _request_totals(emu)
        out["contenders"][contender] = res
        log(
            f"scale {contender}: {res['succeeded']}/{res['n']} ok, cpu {res['cpu_s']:.2f} s, "
            f"wall {res['wall_s']:.1f} s, peak RSS {res['maxrss_mib']:.1f} MiB, errors {res['errors']}"
        )
    c = out["contenders"]
    out["ratios"] = {
        "cpu_ours_over_replicate": ratio(c.get("ours", {}).get("cpu_s"), c.get("replicate", {}).get("cpu_s")),
    }
    return out


# --------------------------------------------------------------------------- 5. import time

# Each statement is run as a whole process, `python -c STATEMENT`, and timed from outside: what a user
# (or a CLI start) pays, interpreter start-up included. Timing the statement inside the interpreter
# misleads: an earlier import of the same modules (site, encodings) and the order of first imports
# move milliseconds between statements. `python -c pass` is the start-up alone, for reference.
IMPORT_STATEMENTS = {
    "python": "pass",
    "comet_replicate:Client": "from comet_replicate import Client",
    "comet_replicate": "import comet_replicate",
    "comet_replicate:AsyncClient": "from comet_replicate import AsyncClient",
    "httpx": "import httpx",
    "replicate": "import replicate",
    "openai": "import openai",
}
IMPORT_TARGET = 1.10
"""`from comet_replicate import Client` (whole process) ≤ this × `import httpx` (issue 15)."""


def import_env() -> dict[str, str]:
    """The caller's environment, but with bytecode caching on: every module is imported once, untimed,
    so all of them are measured from .pyc files, as users run them."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def section_import(run: Run, modules: list[str]) -> dict[str, Any]:
    sizes = run.sizes
    process: dict[str, list[float]] = {m: [] for m in modules}
    env = import_env()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as cwd:
        for rep in range(-1, sizes.import_runs):  # rep -1 writes the bytecode caches, untimed
            for m in rotate(modules, max(rep, 0)):
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-c", IMPORT_STATEMENTS[m]],
                    cwd=cwd,
                    capture_output=True,
                    check=False,
                    env=env,
                )
                wall = time.perf_counter() - t0
                if proc.returncode != 0:
                    run.failures.append(WorkerFailure(f"import/{m}", proc.stderr.decode()[-2000:]))
                    continue
                if rep >= 0:
                    process[m].append(wall)
        top = (
            _importtime_top(cwd, IMPORT_STATEMENTS["comet_replicate:Client"], env)
            if "comet_replicate:Client" in modules
            else []
        )
    out: dict[str, Any] = {"runs": sizes.import_runs, "modules": {}}
    for m in modules:
        runs = process[m]
        out["modules"][m] = {
            "statement": IMPORT_STATEMENTS[m],
            "process_s": runs,
            "median_process_s": median(runs),
            "min_process_s": min(runs) if runs else None,
            "max_process_s": max(runs) if runs else None,
        }
    med = {m: v["median_process_s"] for m, v in out["modules"].items()}
    out["ratios"] = {
        f"{m}_over_httpx": ratio(med.get(m), med.get("httpx"))
        for m in modules
        if m not in ("httpx", "python")
    }
    out["comet_replicate_importtime_top"] = top
    for m in modules:
        v = out["modules"][m]
        shown = [
            _ms(None if x is None else x * 1e3)
            for x in (v[f"{k}_process_s"] for k in ("median", "min", "max"))
        ]
        log(f"import {m}: median {shown[0]} (min {shown[1]}, max {shown[2]})")
    return out


def _importtime_top(cwd: str, statement: str, env: dict[str, str], limit: int = 15) -> list[dict[str, Any]]:
    """The modules with the largest *self* import time under ``-X importtime`` (where to look when
    the import target is missed)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=cwd,
        capture_output=True,
        check=False,
        env=env,
    )
    rows = []
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        rows.append({"module": parts[2].rstrip(), "self_us": int(parts[0]), "cumulative_us": int(parts[1])})
    rows.sort(key=lambda r: r["self_us"], reverse=True)
    return rows[:limit]


# --------------------------------------------------------------------------- targets


def targets(results: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    """Every target of the issues with its figure; `met` is None when it could not be measured."""
    sec = results["sections"]
    rows: list[dict[str, Any]] = []

    def add(section: str, target: str, figure: str, met: bool | None) -> None:
        rows.append({"section": section, "target": target, "figure": figure, "met": met})

    if sec.get("cost"):
        _cost_targets(sec["cost"], add)
    if sec.get("detect"):
        _detect_targets(sec["detect"], sizes, add)
    if sec.get("scale"):
        _scale_targets(sec["scale"], sec.get("cost"), add)
    if sec.get("limits"):
        for target, figure, met in limits_targets(sec["limits"]):
            add("4. At the API's limits", target, figure, met)
    if sec.get("import"):
        imp = sec["import"]
        v = imp["ratios"].get("comet_replicate:Client_over_httpx")
        mods = imp["modules"]

        def ms(m: str) -> str:
            x = mods.get(m, {}).get("median_process_s")
            return "n/a" if x is None else f"{x * 1e3:.0f} ms"

        add(
            "5. Import time",
            f"`python -c 'from comet_replicate import Client'` ≤ {IMPORT_TARGET:.2f} × "
            "`python -c 'import httpx'` (whole process, medians)",
            "not measured"
            if v is None
            else f"{v:.2f} ({ms('comet_replicate:Client')} vs {ms('httpx')}; "
            f"`python -c pass`: {ms('python')})",
            None if v is None else v <= IMPORT_TARGET,
        )
    return rows


COST_TARGETS = (("raw", "raw httpx + json", 1.05), ("replicate", "replicate 1.0.7", 0.90))
"""Issue 15: client CPU per create + get, same process, interleaved: ours / raw and ours / replicate."""


def _cost_targets(cost: dict[str, Any], add: Callable[[str, str, str, bool | None], None]) -> None:
    mixed = cost.get("one_process") or {}
    m = mixed.get("median_cpu_per_flow_s", {})
    fresh = cost["ratios"]

    def us(name: str) -> str:
        v = m.get(name)
        return "n/a" if v is None else f"{v * 1e6:.0f} µs"

    for other, label, limit in COST_TARGETS:
        v = mixed.get("ratios", {}).get(f"cpu_ours_over_{other}")
        fv = fresh.get(f"cpu_ours_over_{other}")
        add(
            "1. Client cost",
            f"CPU per create + get (one process, interleaved), ours / {label} ≤ {limit:.2f}",
            "not measured"
            if v is None
            else f"{v:.2f} ({us('ours')} vs {us(other)}; fresh processes: {_ratio_text(fv)})",
            None if v is None else v <= limit,
        )


def _detect_targets(
    det: dict[str, Any], sizes: Sizes, add: Callable[[str, str, str, bool | None], None]
) -> None:
    c = det["contenders"]
    sync = c.get("ours-sync")
    if sync:
        add(
            "2. Completion detection",
            f"sync mode (wait={sizes.sync_wait_s}): 0 GETs for predictions ≤ {sizes.sync_wait_s} s",
            f"{sync['gets_within_sync_wait']} GETs over {sync['n_within_sync_wait']} predictions "
            f"({sync['ok']}/{sync['n']} succeeded)",
            sync["gets_within_sync_wait"] == 0 and sync["ok"] == sync["n"],
        )
    else:
        add("2. Completion detection", "sync mode: 0 GETs for predictions ≤ 60 s", "not measured", None)
    poll = c.get("ours-poll")
    rep = c.get("replicate")
    p50 = poll["latency_ms"]["p50"] if poll else None
    add(
        "2. Completion detection",
        "polling mode: detection latency p50 ≤ 100 ms",
        "not measured"
        if p50 is None
        else f"{p50:.0f} ms (replicate: {_ms(rep['latency_ms']['p50']) if rep else 'n/a'})",
        None if p50 is None else p50 <= 100 and poll["ok"] == poll["n"],
    )
    if poll and rep:
        p90, rp90 = poll["latency_ms"]["p90"], rep["latency_ms"]["p90"]
        add(
            "2. Completion detection",
            "polling mode: detection latency p90 ≤ replicate's p90",
            f"{_ms(p90)} vs {_ms(rp90)}",
            None if p90 is None or rp90 is None else p90 <= rp90,
        )
        add(
            "2. Completion detection",
            "polling mode: no more GETs than replicate's 0.5 s poller",
            f"{poll['gets_total']} vs {rep['gets_total']} GETs "
            f"({poll['gets_mean']:.2f} vs {rep['gets_mean']:.2f} per prediction)",
            poll["gets_total"] <= rep["gets_total"],
        )
    else:
        add("2. Completion detection", "polling mode: p90 and GETs against replicate", "not measured", None)


def _scale_targets(
    sc: dict[str, Any], cost: dict[str, Any] | None, add: Callable[[str, str, str, bool | None], None]
) -> None:
    c = sc["contenders"]
    ours = c.get("ours")
    rep = c.get("replicate")
    n = sc["n"]
    if ours:
        add(
            "3. Scale",
            f"{n:,}/{n:,} concurrent predictions succeed on one AsyncClient",
            f"{ours['succeeded']:,}/{n:,} (replicate: "
            + (f"{rep['succeeded']:,}/{n:,}" if rep else "n/a")
            + ")",
            ours["succeeded"] == n,
        )
        # Issue 16: wall ≤ 2 × the longest duration + the time N creates take at the client's own
        # CPU cost (section 1's CPU per create + get when measured, else this run's CPU per prediction).
        per_flow = (cost or {}).get("contenders", {}).get("ours", {}).get("median_cpu_per_flow_s")
        creates_cpu = n * per_flow if per_flow else ours["cpu_s"]
        bound = 2 * sc["longest_s"] + creates_cpu
        add(
            "3. Scale",
            "wall ≤ 2 × the longest duration + N creates at the client's own CPU cost",
            f"{ours['wall_s']:.1f} s vs {bound:.1f} s (longest {sc['longest_s']:.1f} s; "
            f"{n:,} creates {creates_cpu:.1f} s of CPU)",
            ours["wall_s"] <= bound,
        )
        add(
            "3. Scale",
            "client peak RSS ≤ 120 MiB",
            f"{ours['maxrss_mib']:.1f} MiB" + (f" (replicate: {rep['maxrss_mib']:.1f} MiB)" if rep else ""),
            ours["maxrss_mib"] <= 120,
        )
    v = sc["ratios"]["cpu_ours_over_replicate"]
    add(
        "3. Scale",
        "client CPU ≤ 1/10 of replicate's",
        "not measured"
        if v is None or ours is None or rep is None
        else f"{v:.3f} ({ours['cpu_s']:.2f} s vs {rep['cpu_s']:.2f} s)",
        None if v is None else v <= 0.10,
    )


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
    }
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = list(os.getloadavg())
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def source_tree() -> str:
    """The commit measured, and whether the package directories had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "wrapper", "generated", "emulator", "openapi.yaml"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {head}" + (" with uncommitted changes in the packages" if dirty else " (clean packages)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure comet_replicate against raw httpx and replicate 1.0.7 on the local emulator.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list from {SECTIONS}")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where results.json, RESULTS.md, PNGs go (default: benchmarks/ for a full run, else a "
        "temporary folder; see --write)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="write a partial run (--quick, --sections, --only or a size option) over the committed "
        "results in benchmarks/ anyway",
    )
    parser.add_argument("--cost-n", type=int, help="flows per repetition (section 1)")
    parser.add_argument("--reps", type=int, help="repetitions per contender (section 1)")
    parser.add_argument("--detect-per-model", type=int, help="measured predictions per model (section 2)")
    parser.add_argument("--scale-n", type=int, help="concurrent predictions (section 3)")
    parser.add_argument("--limits-n", type=int, help="predictions at the API's limits (section 4)")
    parser.add_argument("--limits-speed", type=float, help="emulator clock speed in section 4")
    parser.add_argument("--import-runs", type=int, help="whole processes per statement (section 5)")
    parser.add_argument(
        "--only",
        help="comma list of contenders to run (raw, ours, replicate, ours-sync, ours-poll, ours-batch); "
        "default all",
    )
    parser.add_argument("--no-plots", action="store_true")
    return parser.parse_args(argv)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def measured(section: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one section and record when, and under what load, it ran (a long run's load drifts)."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    before = loadavg()
    t0 = time.monotonic()
    out = section()
    out["run"] = {
        "started_at": started,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "loadavg_at_start": before,
        "loadavg_at_end": loadavg(),
    }
    return out


def output_dir(requested: Path | None, *, partial: bool, write: bool) -> Path:
    """Where a run writes: `--out` if given; benchmarks/ for a full run (or with --write); else a fresh
    temporary folder, so a quick or partial run never overwrites the committed results."""
    if requested is not None:
        return requested
    if not partial or write:
        return BENCH_DIR
    return Path(tempfile.mkdtemp(prefix="comet-replicate-bench-"))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = dataclasses.replace(QUICK) if args.quick else Sizes()
    partial = args.quick or args.only is not None
    for flag, attr in (
        ("cost_n", "cost_n"),
        ("reps", "cost_reps"),
        ("detect_per_model", "detect_per_model"),
        ("scale_n", "scale_n"),
        ("limits_n", "limits_n"),
        ("limits_speed", "limits_speed"),
        ("import_runs", "import_runs"),
    ):
        value = getattr(args, flag)
        if value is not None:
            setattr(sizes, attr, value)
            partial = True
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        print(f"unknown sections: {sorted(unknown)}", file=sys.stderr)
        return 2
    partial = partial or set(wanted) != set(SECTIONS)
    out_dir = output_dir(args.out, partial=partial, write=args.write)
    out_dir.mkdir(parents=True, exist_ok=True)
    log(
        f"writing to {out_dir}"
        + (
            " (a partial run: the committed results stay as they are)"
            if partial and out_dir != BENCH_DIR
            else ""
        )
    )
    run = Run(sizes, out_dir)

    have_replicate = available("replicate")
    only = {c.strip() for c in args.only.split(",")} if args.only else None

    def pick(names: list[str]) -> list[str]:
        return [n for n in names if only is None or n in only]

    skipped: dict[str, str] = {}
    if not have_replicate:
        skipped["replicate"] = "replicate is not installed (pip install replicate==1.0.7, or tox -e bench)"
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": bool(args.quick),
        "machine": machine(),
        "versions": {
            d: version_of(d)
            for d in ("comet-replicate", "httpx", "replicate", "openai", "pydantic", "uvicorn", "starlette")
        },
        "source": source_tree(),
        "sizes": dataclasses.asdict(sizes),
        "skipped": skipped,
        "sections": {},
    }
    t_start = time.monotonic()

    if "cost" in wanted:
        contenders = pick(["raw", "ours"] + (["replicate"] if have_replicate else []))
        log(f"section 1: client cost ({sizes.cost_reps} reps × {sizes.cost_n} flows × {contenders})")
        results["sections"]["cost"] = measured(lambda: section_cost(run, contenders))

    if "detect" in wanted or "scale" in wanted:
        plan = make_plan(sizes)
        with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
            plan_path = Path(tmp) / "plan.json"
            plan_path.write_text(json.dumps(plan.durations), encoding="utf-8")
            with running_emulator(["--plan", str(plan_path)], cwd=str(REPO)) as emu:
                if "detect" in wanted:
                    contenders = pick(["ours-sync", "ours-poll"] + (["replicate"] if have_replicate else []))
                    log(f"section 2: completion detection ({len(plan.measured)} predictions × {contenders})")
                    detect = measured(lambda: section_detect(run, plan, emu, contenders))
                    results["sections"]["detect"] = detect
                if "scale" in wanted:
                    contenders = pick(["ours"] + (["replicate"] if have_replicate else []))
                    log(f"section 3: scale ({sizes.scale_n} concurrent × {contenders})")
                    results["sections"]["scale"] = measured(lambda: section_scale(run, plan, emu, contenders))

    if "limits" in wanted:
        contenders = pick([c for c in LIMITS_CONTENDERS if c != "replicate" or have_replicate])
        if not available("comet_replicate._batch") and "ours-batch" in contenders:
            contenders.remove("ours-batch")
            skipped["limits ours-batch"] = "comet_replicate has no batch API in this tree"
        log(f"section 4: at the API's limits ({sizes.limits_n} predictions × {contenders})")
        results["sections"]["limits"] = measured(lambda: section_limits(run, contenders))

    if "import" in wanted:
        modules = [
            "python",
            "comet_replicate:Client",
            "comet_replicate",
            "comet_replicate:AsyncClient",
            "httpx",
        ]
        for m in ("replicate", "openai"):
            if not sizes.import_peers:
                skipped[f"import {m}"] = "not timed in a --quick run"
            elif available(m):
                modules.append(m)
            else:
                skipped[f"import {m}"] = f"{m} is not installed"
        log(f"section 5: import time ({sizes.import_runs} runs × {modules})")
        results["sections"]["import"] = measured(lambda: section_import(run, modules))

    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    results["targets"] = targets(results, sizes)
    results["failures"] = [dataclasses.asdict(f) for f in run.failures]
    results["plots"] = [] if args.no_plots else _report.plots(results, out_dir)
    (out_dir / "results.json").write_text(
        json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    (out_dir / "RESULTS.md").write_text(_report.markdown(results), encoding="utf-8")
    log(f"done in {results['elapsed_s']:.0f} s; wrote {out_dir / 'RESULTS.md'}")
    for row in results["targets"]:
        mark = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        log(f"  {mark:>12}  {row['target']}: {row['figure']}")
    return 1 if run.failures else 0


__all__ = ["QUICK", "Sizes", "main", "percentile"]
