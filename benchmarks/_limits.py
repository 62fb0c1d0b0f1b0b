"""Section 4, "At the API's limits": 1,000 predictions against an emulator enforcing Replicate's limits.

The emulator enforces 600 creates and 3,000 other requests per minute (sliding one-minute windows,
429 with `Retry-After` and Replicate's problem-details body), on its own clock: with a speed factor
S, a minute of the emulator lasts 60/S s of wall time, and so do the predictions' durations, so the
whole run keeps its shape, S times faster. Each contender gets a fresh emulator (empty windows, zeroed
counters) and runs in its own fresh worker process.

The floor is what the create limit alone allows: the k-th create (from 0) cannot be accepted before
⌊k / 600⌋ minutes have passed in a sliding window, so N creates need ⌊(N-1) / 600⌋ minutes; add the
longest single prediction's duration. No client can finish sooner, whatever its polling.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._emulator import running_emulator
from benchmarks._stats import ratio

if TYPE_CHECKING:
    from benchmarks._runner import Run, Sizes

# Mean durations from 3 s to 30 s (queue + run, emulator seconds), drawn lognormally as in section 2.
# Models whose inputs allow a small custom size: the batch API downloads every image, and rendering
# 1,000 full-size pictures (4 MP for ultra) would make the emulator's CPU, not the limits, the pace.
LIMITS_MODELS: tuple[tuple[str, float], ...] = (
    ("black-forest-labs/flux-1.1-pro", 3.0),
    ("black-forest-labs/flux-pro", 6.0),
    ("black-forest-labs/flux-2-pro", 12.0),
    ("black-forest-labs/flux-2-max", 30.0),
)
SMALL_OUTPUT = {"aspect_ratio": "custom", "width": 256, "height": 256}
LIMITS_CONTENDERS = ("ours-batch", "ours", "replicate")


@dataclass
class LimitsPlan:
    items: list[dict[str, Any]]  # {"model", "input", "planned_s"}
    durations: dict[str, list[float]]  # "model#seed" -> [queue_s, run_s] (emulator seconds)


def make_limits_plan(sizes: Sizes, seed: int = 16) -> LimitsPlan:
    """N predictions, the models in turn, each duration lognormal around its model's mean."""
    from benchmarks._runner import lognormal_around

    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    durations: dict[str, list[float]] = {}
    seeds = rng.sample(range(1, 1 << 31), sizes.limits_n)
    for k, s in enumerate(seeds):
        model, mean = sizes.limits_models[k % len(sizes.limits_models)]
        total = lognormal_around(rng, mean, sizes.limits_sigma)
        queue = min(lognormal_around(rng, 0.4, 0.5), 0.5 * total)
        durations[f"{model}#{s}"] = [round(queue, 4), round(total - queue, 4)]
        inp = {"prompt": f"limits {s}", "seed": s, **SMALL_OUTPUT}
        items.append({"model": model, "input": inp, "planned_s": total})
    return LimitsPlan(items, durations)


def floor_s(n: int, create_rpm: int, longest_s: float, speed: float) -> dict[str, float]:
    """The floor in wall seconds: the create limit's sliding window alone, plus the longest duration."""
    creates = math.floor((n - 1) / create_rpm) * 60.0 if n > 0 else 0.0
    return {
        "creates_s": creates / speed,
        "longest_s": longest_s / speed,
        "floor_s": (creates + longest_s) / speed,
        # For reference: the same N creates spread evenly at the documented rate.
        "even_rate_floor_s": (n / create_rpm * 60.0 + longest_s) / speed,
    }


def section_limits(run: Run, contenders: list[str]) -> dict[str, Any]:
    from benchmarks._runner import REPO, log

    sizes = run.sizes
    plan = make_limits_plan(sizes)
    longest = max(i["planned_s"] for i in plan.items)
    speed = sizes.limits_speed
    floor = floor_s(sizes.limits_n, sizes.limits_create_rpm, longest, speed)
    out: dict[str, Any] = {
        "n": sizes.limits_n,
        "models": [{"model": m, "mean_s": mean} for m, mean in sizes.limits_models],
        "sigma": sizes.limits_sigma,
        "speed": speed,
        "create_rpm": sizes.limits_create_rpm,
        "rpm": sizes.limits_rpm,
        **floor,
        "contenders": {},
    }
    emulator_args = [
        "--speed",
        str(speed),
        "--create-rpm",
        str(sizes.limits_create_rpm),
        "--rpm",
        str(sizes.limits_rpm),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        plan_path = Path(tmp) / "plan.json"
        plan_path.write_text(json.dumps(plan.durations), encoding="utf-8")
        for contender in contenders:
            with running_emulator(["--plan", str(plan_path), *emulator_args], cwd=str(REPO)) as emu:
                emu.warm_up()
                job = {
                    "kind": "limits",
                    "contender": contender,
                    "base_url": emu.base_url,
                    "token": emu.token,
                    "items": [{"model": i["model"], "input": i["input"]} for i in plan.items],
                    "speed": speed,
                    "create_rpm": sizes.limits_create_rpm,
                    "rpm": sizes.limits_rpm,
                    "timeout": 10 * floor["floor_s"] + 120,
                    "work_dir": str(Path(tmp) / contender),
                }
                emu_cpu0 = emu.cpu_seconds()
                res = run.worker(job, timeout=20 * floor["floor_s"] + 600, what=f"limits/{contender}")
                if res is None:
                    continue
                emu_cpu1 = emu.cpu_seconds()
                # The emulator's own CPU over the run: near the wall time, it was the bottleneck.
                res["emulator_cpu_s"] = (
                    None if emu_cpu0 is None or emu_cpu1 is None else round(emu_cpu1 - emu_cpu0, 2)
                )
                try:
                    res["emulator_stats"] = emu.stats()
                except Exception as exc:  # context, not a measurement
                    res["emulator_stats"] = {"error": repr(exc)}
            res["makespan_over_floor"] = ratio(res["makespan_s"], floor["floor_s"])
            out["contenders"][contender] = res
            log(
                f"limits {contender}: {res['succeeded']}/{res['n']} ok, makespan {res['makespan_s']:.1f} s "
                f"(floor {floor['floor_s']:.1f} s, ×{res['makespan_over_floor'] or 0:.2f}), "
                f"429s {res['throttled']}, GETs {res['gets']}, cpu {res['cpu_s']:.2f} s, "
                f"RSS {res['maxrss_mib']:.0f} MiB, errors {res['errors']}"
            )
    c = out["contenders"]
    rep_cpu = c.get("replicate", {}).get("cpu_s")
    out["ratios"] = {f"cpu_{name}_over_replicate": ratio(c[name]["cpu_s"], rep_cpu) for name in c}
    return out


def limits_targets(sec: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """Issue 16's acceptance for both comet contenders: (target, figure, met)."""
    rows: list[tuple[str, str, bool | None]] = []
    n = sec["n"]
    floor = sec["floor_s"]
    for name in ("ours-batch", "ours"):
        d = sec["contenders"].get(name)
        label = "batch API" if name == "ours-batch" else "AsyncClient.run + gather"
        if d is None:
            rows.append((f"{label}: {n:,}/{n:,} succeed at the limits", "not measured", None))
            continue
        rows.append(
            (
                f"{label}: {n:,}/{n:,} succeed, no RateLimitError reaches the caller",
                f"{d['succeeded']:,}/{n:,}; errors {d['errors'] or 'none'}",
                d["succeeded"] == n and not any("RateLimit" in k for k in d["errors"]),
            )
        )
        m = d["makespan_over_floor"]
        rows.append(
            (
                f"{label}: makespan ≤ 1.10 × floor",
                f"{d['makespan_s']:.1f} s vs floor {floor:.1f} s: {m:.2f}×",
                m <= 1.10,
            )
        )
        share = ratio(d["throttled"], d["requests_sent"]) or 0.0
        rows.append(
            (
                f"{label}: 429 responses ≤ 2 % of requests sent",
                f"{d['throttled']} of {d['requests_sent']} ({share * 100:.2f} %)",
                share <= 0.02,
            )
        )
        v = sec["ratios"].get(f"cpu_{name}_over_replicate")
        rep = sec["contenders"].get("replicate")
        rows.append(
            (
                f"{label}: client CPU ≤ 1/10 of replicate 1.0.7's",
                "not measured"
                if v is None or rep is None
                else f"{v:.3f} ({d['cpu_s']:.2f} s vs {rep['cpu_s']:.2f} s)",
                None if v is None else v <= 0.10,
            )
        )
        rows.append((f"{label}: peak RSS ≤ 120 MiB", f"{d['maxrss_mib']:.1f} MiB", d["maxrss_mib"] <= 120))
    return rows
