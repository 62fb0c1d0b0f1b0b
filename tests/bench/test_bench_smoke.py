"""The benchmark runner keeps working: a `--quick` run of every section exits 0 and writes its files.

Benchmarks are not tests, so nothing here looks at a time or a ratio; it checks that each section ran
every contender that is installed, that the contenders did the same work, and that RESULTS.md shows
every target the run produced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--import-runs", "1", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return out, results, proc.stderr


pytestmark = pytest.mark.slow


def test_quick_run_measures_every_section_without_worker_failures(quick_run: tuple[Path, dict, str]) -> None:
    _, results, _ = quick_run
    assert set(results["sections"]) == {"cost", "detect", "scale", "limits", "import"}
    assert results["failures"] == []


def test_client_cost_contenders_all_see_finished_predictions(quick_run: tuple[Path, dict, str]) -> None:
    _, results, _ = quick_run
    cost = results["sections"]["cost"]["contenders"]
    expected = {"raw", "ours"} | ({"replicate"} if "replicate" not in results["skipped"] else set())
    assert set(cost) == expected
    n = results["sizes"]["cost_n"]
    for name, data in cost.items():
        assert data["statuses"] == [{"succeeded": n}] * results["sizes"]["cost_reps"], name
        assert data["median_cpu_per_flow_s"] > 0, name


def test_detection_waits_end_on_completed_predictions_with_counted_gets(
    quick_run: tuple[Path, dict, str],
) -> None:
    _, results, _ = quick_run
    detect = results["sections"]["detect"]["contenders"]
    assert {"ours-sync", "ours-poll"} <= set(detect)
    for name, data in detect.items():
        assert data["ok"] == data["n"] > 0, (name, data["errors"])
        assert all(p["latency_ms"] is not None and p["duration_s"] > 0 for p in data["points"]), name
    # A poller must have asked at least once per prediction; the counter is what the target reads.
    assert detect["ours-poll"]["gets_total"] >= detect["ours-poll"]["n"]


def test_scale_runs_every_prediction_of_our_async_client(quick_run: tuple[Path, dict, str]) -> None:
    _, results, _ = quick_run
    ours = results["sections"]["scale"]["contenders"]["ours"]
    assert ours["succeeded"] == ours["n"] == results["sizes"]["scale_n"]
    assert ours["errors"] == {}
    assert ours["requests"]["POST"] == ours["n"]


def test_results_markdown_lists_every_target_with_its_figure(quick_run: tuple[Path, dict, str]) -> None:
    out, results, _ = quick_run
    markdown = (out / "RESULTS.md").read_text(encoding="utf-8")
    assert "Quick run" in markdown
    sections = {row["section"] for row in results["targets"]}
    assert sections == {
        "1. Client cost",
        "2. Completion detection",
        "3. Scale",
        "4. At the API's limits",
        "5. Import time",
    }
    for row in results["targets"]:
        assert f"| {row['target']} | {row['figure']} |" in markdown
    for plot in results["plots"]:
        assert (out / plot).stat().st_size > 0


def test_limits_section_runs_every_comet_contender_to_the_end_without_rate_limit_errors(
    quick_run: tuple[Path, dict, str],
) -> None:
    _, results, _ = quick_run
    limits = results["sections"]["limits"]
    ours = limits["contenders"]["ours"]
    assert ours["succeeded"] == ours["n"] == results["sizes"]["limits_n"], ours["errors"]
    assert not any("RateLimit" in kind for kind in ours["errors"])
    assert len(ours["completions_s"]) == ours["succeeded"]
    assert ours["creates"] >= ours["n"]  # every prediction was created (429s retried on top)
    if "ours-batch" in limits["contenders"]:
        batch = limits["contenders"]["ours-batch"]
        assert batch["succeeded"] == batch["n"], batch["errors"]
    assert limits["floor_s"] > limits["creates_s"] > 0
    if "plots" not in results["skipped"]:  # matplotlib is in the bench group, not in every test env
        assert "limits_completions.png" in results["plots"]


def test_import_figures_are_whole_processes_with_their_spread(quick_run: tuple[Path, dict, str]) -> None:
    _, results, _ = quick_run
    modules = results["sections"]["import"]["modules"]
    assert {"python", "httpx", "comet_replicate:Client"} <= set(modules)
    for name, data in modules.items():
        assert len(data["process_s"]) == results["sizes"]["import_runs"], name
        assert data["min_process_s"] <= data["median_process_s"] <= data["max_process_s"], name


def test_every_run_records_commit_environment_and_load(quick_run: tuple[Path, dict, str]) -> None:
    out, results, _ = quick_run
    assert results["source"].startswith(("commit ", "not a git checkout"))
    assert "loadavg_at_start" in results["machine"]
    assert results["versions"]["httpx"]
    markdown = (out / "RESULTS.md").read_text(encoding="utf-8")
    assert "Load average at start" in markdown and "Source tree" in markdown
    for name, section in results["sections"].items():  # each section: when, how long, what load
        assert section["run"]["elapsed_s"] >= 0 and section["run"]["started_at"], name
    assert markdown.count("*Ran ") == len(results["sections"])


def test_a_partial_run_never_writes_over_the_committed_results(tmp_path: Path) -> None:
    from benchmarks._runner import BENCH_DIR, output_dir

    elsewhere = output_dir(None, partial=True, write=False)
    assert elsewhere.resolve() != BENCH_DIR.resolve()
    assert not elsewhere.resolve().is_relative_to(REPO.resolve())
    elsewhere.rmdir()  # a fresh, empty temporary folder
    assert output_dir(None, partial=True, write=True) == BENCH_DIR
    assert output_dir(None, partial=False, write=False) == BENCH_DIR
    assert output_dir(tmp_path, partial=True, write=False) == tmp_path
