"""Section 4's job, run in a fresh worker process: N predictions at once against the limited emulator.

Contenders: comet_replicate's batch API (`AsyncBatch`, journal and output folder included, as a user
runs it), comet_replicate's `AsyncClient.run` under `asyncio.gather`, and replicate 1.0.7's
`async_run`, each with its defaults except where the emulator's speed factor must be told (our
client's rate limits are the documented per-minute figures on the emulator's faster clock).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks._worker import (
    count_comet_transport,
    error_name,
    install_request_counter,
    requests_by,
    rusage,
    statuses_by,
)


def _our_client(job: dict[str, Any]) -> Any:
    """An AsyncClient whose pacing knows the emulator's clock (60 s of the emulator = 60/speed s here)."""
    import comet_replicate

    count_comet_transport()
    kwargs: dict[str, Any] = {"api_key": job["token"], "base_url": job["base_url"] + "/replicate/v1"}
    per = 60.0 / job["speed"]
    rate_limit = getattr(comet_replicate, "RateLimit", None)
    if rate_limit is not None:  # pacing is wired in: tell it the emulator's window
        kwargs["rate_limits"] = comet_replicate.RateLimits(
            create=rate_limit(job["create_rpm"], per), other=rate_limit(job["rpm"], per)
        )
    return comet_replicate.AsyncClient(**kwargs)


async def _run_ours(job: dict[str, Any], done: Callable[[bool, str | None], None]) -> None:
    client = _our_client(job)
    timeout = job["timeout"]

    async def one(item: dict[str, Any]) -> None:
        try:
            files = await client.run(item["model"], item["input"], timeout=timeout)
        except Exception as exc:
            done(False, error_name(exc))
            return
        done(bool(files), None if files else "empty output")

    try:
        await asyncio.gather(*(one(item) for item in job["items"]))
    finally:
        await client.close()


async def _run_batch(job: dict[str, Any], done: Callable[[bool, str | None], None]) -> None:
    from comet_replicate import AsyncBatch

    work = Path(job["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    client = _our_client(job)
    try:
        batch = AsyncBatch(
            client,
            [(item["model"], item["input"]) for item in job["items"]],
            journal=str(work / "limits.journal.sqlite"),
            out=str(work / "out"),
            concurrency=len(job["items"]),
            timeout=job["timeout"],
        )
        async for result in batch:
            ok = str(result.state) == "succeeded"
            done(ok, None if ok else (error_name(result.error) if result.error else str(result.state)))
    finally:
        await client.close()


async def _run_replicate(job: dict[str, Any], done: Callable[[bool, str | None], None]) -> None:
    import replicate

    client = replicate.Client(api_token=job["token"], base_url=job["base_url"] + "/replicate")

    async def one(item: dict[str, Any]) -> None:
        try:
            out = await client.async_run(item["model"], input=item["input"])
        except Exception as exc:
            done(False, error_name(exc))
            return
        ok = out is not None and not (isinstance(out, list) and not out)
        done(ok, None if ok else "empty output")

    try:
        await asyncio.gather(*(one(item) for item in job["items"]))
    finally:
        await client._async_client.aclose()


RUNNERS: dict[str, Callable[[dict[str, Any], Callable[[bool, str | None], None]], Awaitable[None]]] = {
    "ours": _run_ours,
    "ours-batch": _run_batch,
    "replicate": _run_replicate,
}


async def _job_limits(job: dict[str, Any]) -> dict[str, Any]:
    install_request_counter()
    errors: collections.Counter[str] = collections.Counter()
    completions: list[float] = []
    finished: list[float] = []
    t0 = time.perf_counter()

    def done(ok: bool, error: str | None) -> None:
        at = time.perf_counter() - t0
        finished.append(at)
        if ok:
            completions.append(at)
        else:
            errors[error or "unknown"] += 1

    cpu0 = time.process_time()
    await RUNNERS[job["contender"]](job, done)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - t0
    by_kind = requests_by()
    status = statuses_by()
    return {
        "n": len(job["items"]),
        "succeeded": len(completions),
        "errors": dict(errors),
        "makespan_s": max(finished) if finished else wall,
        "wall_s": wall,
        "completions_s": sorted(completions),
        "cpu_s": cpu,
        "requests": by_kind,
        "requests_sent": sum(by_kind.values()),
        "gets": by_kind.get("get", 0),
        "creates": by_kind.get("create", 0),
        "statuses": status,
        "throttled": sum(v for k, v in status.items() if k.endswith(" 429")),
        **rusage(),
    }


def job_limits(job: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_job_limits(job))
