"""RESULTS.md and the PNG plots, written from results.json's data only (never from hand-kept figures)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from benchmarks._stats import median

LABELS = {
    "raw": "raw httpx + json",
    "ours": "comet_replicate",
    "replicate": "replicate 1.0.7",
    "ours-sync": "comet_replicate, sync mode (wait=60)",
    "ours-poll": "comet_replicate, polling mode (learned schedule)",
}
COLORS = {
    "raw": "#888888",
    "ours": "#1f77b4",
    "replicate": "#d62728",
    "ours-sync": "#2ca02c",
    "ours-poll": "#1f77b4",
}


def _f(v: float | None, scale: float = 1.0, fmt: str = "{:.1f}", unit: str = "") -> str:
    return "n/a" if v is None else fmt.format(v * scale) + unit


def _result(met: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "not measured"}[met]


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = results["versions"]
    sec = results["sections"]
    lines: list[str] = [
        "# Benchmark results",
        "",
        f"Written by `{results['command'].strip()}` on {results['generated_at']} (run took "
        f"{results['elapsed_s']:.0f} s). The runner rewrites this file, `results.json` and the plots; do not "
        "edit them by hand. The machine is shared and noisy: compare the ratios measured in the same run, "
        "not the absolute times.",
        "",
    ]
    if results["quick"]:
        lines += [
            "> **Quick run** (`--quick`, tiny sizes): the figures below say nothing about the targets.",
            "",
        ]
    lines += [
        "## Machine and versions",
        "",
        "| | |",
        "|---|---|",
        f"| Machine | {m['platform']}; {m['cpu']} × {m['cpus']} cores"
        + (f"; {m['memory_gib']} GiB" if "memory_gib" in m else "")
        + " |",
        f"| Load average at start | {', '.join(f'{x:.2f}' for x in m.get('loadavg_at_start', []))} |",
        f"| Python | {m['implementation']} {m['python']} |",
        f"| Source tree | {results.get('source', 'unknown')} |",
    ]
    for dist, ver in v.items():
        lines.append(f"| {dist} | {ver or 'not installed'} |")
    lines += ["", "## Targets", "", "| Section | Target | Figure | Result |", "|---|---|---|---|"]
    for row in results["targets"]:
        lines.append(f"| {row['section']} | {row['target']} | {row['figure']} | {_result(row['met'])} |")
    if not results["targets"]:
        lines.append("| | no section was run | | |")
    for what, why in results["skipped"].items():
        lines.append(f"\nSkipped {what}: {why}.")
    lines.append("")

    if "cost" in sec:
        lines += _cost_md(sec["cost"], results)
    if "detect" in sec:
        lines += _detect_md(sec["detect"], results)
    if "scale" in sec:
        lines += _scale_md(sec["scale"])
    if "import" in sec:
        lines += _import_md(sec["import"])
    if results["failures"]:
        lines += [
            "## Failures",
            "",
            "Workers that crashed or timed out (their figures are missing above):",
            "",
        ]
        for f in results["failures"]:
            detail = f["detail"].strip().splitlines()
            lines.append(f"- `{f['what']}`: {detail[-1] if detail else ''}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _cost_md(cost: dict[str, Any], results: dict[str, Any]) -> list[str]:
    c = cost["contenders"]
    ours = c.get("ours", {}).get("median_cpu_per_flow_s")
    lines = [
        "## 1. Client cost",
        "",
        f"One flow = create a prediction (no `Prefer: wait`), get it by id, read its parsed output. Each "
        f"contender runs in a fresh interpreter: {results['sizes']['cost_warmup']} warm-up flows, then "
        f"{cost['n_per_rep']} timed flows; {cost['reps']} repetitions, the contender order rotated each "
        "repetition. CPU is the worker process's own `time.process_time()` over the timed flows (the "
        "emulator runs in another process and answers instantly, so its work is not on this clock); the "
        "table shows medians over repetitions.",
        "",
        "| Contender | CPU per flow | wall per flow | CPU vs comet_replicate | CPU per repetition (µs) |",
        "|---|---|---|---|---|",
    ]
    for name, d in c.items():
        cpu = d["median_cpu_per_flow_s"]
        rel = "" if ours is None or cpu is None or name == "ours" else f"{ours / cpu:.2f}× of it"
        reps = ", ".join(f"{x * 1e6:.0f}" for x in d["cpu_per_flow_s"])
        lines.append(
            f"| {LABELS.get(name, name)} | {_f(cpu, 1e6, '{:.0f}', ' µs')} | "
            f"{_f(d['median_wall_per_flow_s'], 1e3, '{:.2f}', ' ms')} | {rel} | {reps} |"
        )
    mixed = cost.get("one_process")
    if mixed:
        m = mixed["median_cpu_per_flow_s"]
        r = mixed["ratios"]
        figures = ", ".join(f"{LABELS.get(k, k)} {v * 1e6:.0f} µs" for k, v in m.items())
        lines += [
            "",
            f"The same flows with all contenders in one process, alternating in {mixed['rounds']} rounds "
            f"of {mixed['n_per_round']} flows (every flow then pays for the same heap and the same "
            f"moment's load, which isolates the per-call code cost from import size and garbage "
            f"collection): {figures}; ours / raw {_f(r['cpu_ours_over_raw'], 1, '{:.2f}')}, ours / "
            f"replicate {_f(r['cpu_ours_over_replicate'], 1, '{:.2f}')}. Informational: the targets "
            "use the fresh-process figures above, where each client carries only its own imports.",
        ]
    statuses = {name: d["statuses"] for name, d in c.items()}
    lines += [
        "",
        f"Statuses seen on the GET of each flow (all contenders must do the same work): `{statuses}`.",
        "",
    ]
    if "client_cost.png" in results["plots"]:
        lines += ["![client cost](client_cost.png)", ""]
    return lines


def _detect_md(det: dict[str, Any], results: dict[str, Any]) -> list[str]:
    models = ", ".join(f"`{x['model'].split('/')[1]}` {x['mean_s']:g} s" for x in det["models"])
    lines = [
        "## 2. Completion detection",
        "",
        f"Per-model mean durations (queue + run): {models}; each prediction's duration is drawn "
        f"lognormally around its model's mean (σ = {det['sigma']}). The emulator runs at speed 1 (real "
        "time), so latencies are real milliseconds; instead of a speed factor the predictions run "
        f"concurrently ({det['per_model']} per model, started over a couple of seconds) so the section "
        "still takes about a minute per contender (the polling mode's unmeasured warm-up overlaps the "
        "sync-mode run, whose client only holds open requests). Every contender meets exactly the same "
        "durations: the emulator's `duration_fn` hook looks each prediction's duration up by its input seed. "
        "Detection latency = the moment `wait()` returns in the client minus the emulator's "
        "`completed_at` (same host, same clock). GETs are counted per prediction at the client's httpx "
        "transport and cross-checked with the emulator's counters. Before the measured batch, the polling "
        f"mode's client completes {det['warmup_per_model']} warm-up predictions per model, so its "
        "schedule has history to learn from (the wrapper learns each model's durations as this client "
        "observed them on its own clock); sync mode and replicate have no history to use and start cold.",
        "",
        "| Mode | succeeded | latency p50 | p90 | max | GETs total | GETs per prediction (mean / median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in det["contenders"].items():
        lat = d["latency_ms"]
        lines.append(
            f"| {LABELS.get(name, name)} | {d['ok']}/{d['n']} | {_f(lat['p50'], 1, '{:.0f}', ' ms')} | "
            f"{_f(lat['p90'], 1, '{:.0f}', ' ms')} | {_f(lat['max'], 1, '{:.0f}', ' ms')} | "
            f"{d['gets_total']} | "
            f"{d['gets_mean']:.2f} / {_f(d['gets_median'], 1, '{:g}')} |"
        )
    lines += _per_model_md(det)
    cc = det.get("gets_cross_check")
    if cc:
        lines += [
            "",
            f"Cross-check: GETs counted by the clients (measured and warm-up) {cc['counted_by_clients']}; "
            f"GETs the emulator answered {cc['seen_by_emulator']}.",
        ]
    lines.append("")
    for name, d in det["contenders"].items():
        if d["errors"]:
            lines.append(f"Errors in {LABELS.get(name, name)}: `{d['errors']}`")
    plots = [p for p in ("detect_latency.png", "detect_gets.png") if p in results["plots"]]
    for p in plots:
        lines += [f"![{p}]({p})", ""]
    return lines


def _per_model_md(det: dict[str, Any]) -> list[str]:
    """Latency p50 and mean GETs per model: where each schedule spends its requests."""
    names = list(det["contenders"])
    header = "| Model (mean) | " + " | ".join(f"{LABELS.get(n, n)}: p50 / GETs" for n in names) + " |"
    lines = ["", "Per model (detection latency p50 / mean GETs per prediction):", "", header]
    lines.append("|---" * (len(names) + 1) + "|")
    for entry in det["models"]:
        model = entry["model"]
        cells = []
        for n in names:
            pts = [p for p in det["contenders"][n]["points"] if p["model"] == model]
            lat = median(p["latency_ms"] for p in pts if p["latency_ms"] is not None)
            gets = (sum(p["gets"] for p in pts) / len(pts)) if pts else None
            cells.append(f"{_f(lat, 1, '{:.0f}', ' ms')} / {_f(gets, 1, '{:.1f}')}")
        lines.append(f"| `{model.split('/')[1]}` ({entry['mean_s']:g} s) | " + " | ".join(cells) + " |")
    return lines


def _scale_md(sc: dict[str, Any]) -> list[str]:
    lines = [
        "## 3. Scale",
        "",
        f"{sc['n']:,} predictions of `{sc['model']}` (about {sc['mean_s']:g} s each) started at once with "
        "`asyncio.gather` in one process: comet_replicate's `AsyncClient.run()` on one client (one "
        "connection pool), replicate 1.0.7's `async_run()` on one `replicate.Client`, both with their "
        "default settings. CPU is the worker's `process_time()` over the batch; peak RSS is the fresh "
        "worker process's `ru_maxrss` (interpreter and imports included).",
        "",
        "| Contender | succeeded | failures | wall | client CPU | peak RSS | requests sent |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in sc["contenders"].items():
        errors = ", ".join(f"{k}: {v}" for k, v in d["errors"].items()) or "none"
        lines.append(
            f"| {LABELS.get(name, name)} | {d['succeeded']:,}/{d['n']:,} | {errors} | {d['wall_s']:.1f} s | "
            f"{d['cpu_s']:.2f} s | {d['maxrss_mib']:.1f} MiB | POST {d['requests']['POST']}, "
            f"GET {d['requests']['GET']} |"
        )
    lines.append("")
    for name, d in sc["contenders"].items():
        for kind, msg in d.get("error_examples", {}).items():
            if msg:
                lines.append(f"- {LABELS.get(name, name)}, `{kind}`: {msg}")
    lines.append("")
    return lines


def _import_md(imp: dict[str, Any]) -> list[str]:
    lines = [
        "## 4. Import time",
        "",
        f"The import statement timed inside a fresh interpreter (`time.perf_counter()` around it), "
        f"{imp['runs']} interpreters per statement, interleaved; medians. Each statement ran once "
        "untimed first with bytecode caching on, so every package is loaded from .pyc files. The last "
        "column is the whole `python -c` process's wall time.",
        "",
        "| Statement | import (median) | vs httpx | process wall (median) |",
        "|---|---|---|---|",
    ]
    for name, d in imp["modules"].items():
        r = imp["ratios"].get(f"{name}_over_httpx")
        lines.append(
            f"| `{d.get('statement', name)}` | {_f(d['median_import_s'], 1e3, '{:.1f}', ' ms')} | "
            f"{'1.00' if name == 'httpx' else _f(r, 1, '{:.2f}')} | "
            f"{_f(d['median_process_s'], 1e3, '{:.0f}', ' ms')} |"
        )
    top = imp.get("comet_replicate_importtime_top") or []
    if top:
        lines += [
            "",
            "Largest self times under `python -X importtime -c 'import comet_replicate'` (one run):",
            "",
            "| Module | self | cumulative |",
            "|---|---|---|",
        ]
        for row in top[:10]:
            lines.append(
                f"| `{row['module'].strip()}` | {row['self_us'] / 1e3:.1f} ms | "
                f"{row['cumulative_us'] / 1e3:.1f} ms |"
            )
    lines.append("")
    return lines


def plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the PNGs that have data; returns their file names (empty without matplotlib)."""
    if importlib.util.find_spec("matplotlib") is None:
        results["skipped"]["plots"] = "matplotlib is not installed"
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []
    sec = results["sections"]
    cost = sec.get("cost")
    if cost and cost["contenders"]:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        names = list(cost["contenders"])
        for ax, key, scale, title in (
            (axes[0], "cpu_per_flow_s", 1e6, "client CPU per create+get flow (µs)"),
            (axes[1], "wall_per_flow_s", 1e3, "wall time per flow (ms)"),
        ):
            meds = [(cost["contenders"][n][f"median_{key}"] or 0) * scale for n in names]
            ax.bar(range(len(names)), meds, color=[COLORS.get(n, "#777") for n in names], alpha=0.8)
            for i, n in enumerate(names):
                pts = [x * scale for x in cost["contenders"][n][key]]
                ax.scatter([i] * len(pts), pts, color="black", s=10, zorder=3)
            ax.set_xticks(range(len(names)), [LABELS.get(n, n) for n in names], fontsize=8)
            ax.set_title(title, fontsize=10)
        fig.suptitle("Client cost (bars: median; dots: repetitions)", fontsize=11)
        fig.tight_layout()
        fig.savefig(out_dir / "client_cost.png", dpi=100)
        plt.close(fig)
        written.append("client_cost.png")
    det = sec.get("detect")
    if det and det["contenders"]:
        for fname, key, ylabel, logy in (
            ("detect_latency.png", "latency_ms", "detection latency (ms, log scale above 100)", True),
            ("detect_gets.png", "gets", "GETs for the prediction", False),
        ):
            fig, ax = plt.subplots(figsize=(8, 4.5))
            for name, d in det["contenders"].items():
                pts = [
                    (p["duration_s"], p[key])
                    for p in d["points"]
                    if p["duration_s"] is not None and p[key] is not None
                ]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.scatter(xs, ys, s=14, alpha=0.75, label=LABELS.get(name, name), color=COLORS.get(name))
            ax.set_xscale("log")
            if logy:
                ax.set_yscale("symlog", linthresh=100)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("prediction duration on the emulator (created → completed, s)")
            ax.set_ylabel(ylabel)
            if key == "latency_ms":
                ax.axhline(
                    100, color="#444", linestyle="--", linewidth=0.8, label="100 ms target (polling p50)"
                )
            ax.legend(fontsize=8)
            ax.grid(True, alpha=0.3)
            fig.tight_layout()
            fig.savefig(out_dir / fname, dpi=100)
            plt.close(fig)
            written.append(fname)
    return written
