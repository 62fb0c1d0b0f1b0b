"""One contender, one job, one fresh process: ``python -m benchmarks._worker JOB.json RESULT.json``.

A fresh interpreter per measurement keeps each contender's imports, connection pools and garbage
out of the others' figures, and lets the process's own CPU clock (``time.process_time``) and peak RSS
(``ru_maxrss``) stand for that contender alone. Libraries are imported inside the job functions so
a worker only ever loads the contender it measures.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

# Requests seen by httpx transports in this process, keyed by (method, path), and the statuses they
# got, keyed by (method, path, status). Installed only for jobs that need per-prediction request
# counts; every contender here sends through httpx.
REQUESTS: collections.Counter[tuple[str, str]] = collections.Counter()
STATUSES: collections.Counter[tuple[str, str, int]] = collections.Counter()


def install_request_counter() -> None:
    """Count every request that reaches an httpx transport (retries included), and its status,
    without changing how any contender builds its clients."""
    import httpx

    sync_orig = httpx.HTTPTransport.handle_request
    async_orig = httpx.AsyncHTTPTransport.handle_async_request

    def counted(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        REQUESTS[(request.method, request.url.path)] += 1
        response = sync_orig(self, request)
        STATUSES[(request.method, request.url.path, response.status_code)] += 1
        return response

    async def acounted(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        REQUESTS[(request.method, request.url.path)] += 1
        response = await async_orig(self, request)
        STATUSES[(request.method, request.url.path, response.status_code)] += 1
        return response

    httpx.HTTPTransport.handle_request = counted  # type: ignore[method-assign]
    httpx.AsyncHTTPTransport.handle_async_request = acounted  # type: ignore[method-assign]


def count_comet_transport() -> None:
    """Count the requests of comet_replicate's `AsyncClient` too: it sends through a transport of its
    own (`comet_replicate._transport`). Called where the job imports comet_replicate, so that import
    stays inside the measured window as it would without counting; a checkout without it counts as before."""
    import importlib.util

    if importlib.util.find_spec("comet_replicate._transport") is None:
        return
    from comet_replicate import _transport

    # held creates go through a transport of their own (HeldTransport) where the checkout has one;
    # where it has `HeldTransport.open`, downloads are read from it directly: count there instead
    for name in ("AsyncioTransport", "HeldTransport"):
        cls = getattr(_transport, name, None)
        if cls is not None and hasattr(cls, "open"):
            _count_opened(cls)
        elif cls is not None:
            _count_through(cls)


def _count_opened(cls: Any) -> None:
    """Count `cls.open` (httpcore requests: method and target are bytes)."""
    if getattr(cls.open, "counted", False):
        return
    orig = cls.open

    async def counted(self: Any, request: Any) -> Any:
        method = request.method.decode("ascii")
        path = request.url.target.decode("ascii").partition("?")[0]
        REQUESTS[(method, path)] += 1
        opened = await orig(self, request)
        STATUSES[(method, path, opened[0].status)] += 1
        return opened

    counted.counted = True  # type: ignore[attr-defined]
    cls.open = counted


def _count_through(cls: Any) -> None:
    if getattr(cls.handle_async_request, "counted", False):
        return
    orig = cls.handle_async_request

    async def counted(self: Any, request: Any) -> Any:
        REQUESTS[(request.method, request.url.path)] += 1
        response = await orig(self, request)
        STATUSES[(request.method, request.url.path, response.status_code)] += 1
        return response

    counted.counted = True  # type: ignore[attr-defined]
    cls.handle_async_request = counted


def request_kind(method: str, path: str) -> str:
    """create / get / cancel / download / other, from a request's method and path."""
    if method == "POST" and path.endswith("/predictions") and "/models/" in path:
        return "create"
    if method == "POST" and path.endswith("/cancel"):
        return "cancel"
    if method == "GET" and "/predictions/" in path:
        return "get"
    if method == "GET" and path.startswith("/files/"):
        return "download"
    return "other"


def requests_by() -> dict[str, int]:
    """Requests sent so far, by kind."""
    out: collections.Counter[str] = collections.Counter()
    for (method, path), n in REQUESTS.items():
        out[request_kind(method, path)] += n
    return dict(out)


def statuses_by() -> dict[str, int]:
    """Answers received so far, by "kind status" (e.g. "create 429")."""
    out: collections.Counter[str] = collections.Counter()
    for (method, path, status), n in STATUSES.items():
        out[f"{request_kind(method, path)} {status}"] += n
    return dict(out)


def gets_for(prediction_id: str) -> int:
    return sum(
        n for (method, path), n in REQUESTS.items() if method == "GET" and path.endswith("/" + prediction_id)
    )


def rusage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mib": ru.ru_maxrss / 1024.0}


def to_epoch(value: Any) -> float | None:
    """A prediction timestamp (datetime or ISO string, as each library types it) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value)
    if not text or text == "Unset":
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def field(obj: Any, name: str) -> Any:
    """Read a field of a prediction as any contender types it (dict, attrs model, pydantic model)."""
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    if type(value).__name__ == "Unset":
        return None
    return value


def predict_time(pred: Any) -> float | None:
    metrics = field(pred, "metrics")
    if metrics is None:
        return None
    value = (
        metrics.get("predict_time") if isinstance(metrics, dict) else getattr(metrics, "predict_time", None)
    )
    if value is None or type(value).__name__ == "Unset":
        return None
    return float(value)


def error_name(exc: BaseException) -> str:
    """Exception class, with the underlying cause's class when a library wraps one (A<-B)."""
    name = type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and type(cause).__name__ != name:
        name += f"<-{type(cause).__name__}"
    return name


# --------------------------------------------------------------------------- 1. client cost


def _cost_flow_raw(job: dict[str, Any]) -> tuple[Callable[[], tuple[str, Any]], Callable[[], None]]:
    import json as jsonlib

    import httpx

    owner, name = job["model"].split("/")
    http = httpx.Client(
        base_url=job["base_url"] + "/replicate/v1",
        headers={"Authorization": f"Bearer {job['token']}"},
    )
    create_path = f"/models/{owner}/{name}/predictions"
    inp = job["input"]

    def flow() -> tuple[str, Any]:
        resp = http.post(create_path, json={"input": inp})
        resp.raise_for_status()
        created = jsonlib.loads(resp.content)
        resp = http.get(f"/predictions/{created['id']}")
        resp.raise_for_status()
        body = jsonlib.loads(resp.content)
        return body["status"], body.get("output")

    return flow, http.close


def _cost_flow_ours(job: dict[str, Any]) -> tuple[Callable[[], tuple[str, Any]], Callable[[], None]]:
    from comet_replicate import Client

    client = Client(api_key=job["token"], base_url=job["base_url"] + "/replicate/v1")
    model = job["model"]
    inp = job["input"]

    def flow() -> tuple[str, Any]:
        created = client.predictions.create(model, inp)
        pred = client.predictions.get(created.id)
        return str(pred.status), pred.output

    return flow, client.close


def _cost_flow_replicate(job: dict[str, Any]) -> tuple[Callable[[], tuple[str, Any]], Callable[[], None]]:
    import replicate

    client = replicate.Client(api_token=job["token"], base_url=job["base_url"] + "/replicate")
    model = job["model"]
    inp = job["input"]

    def flow() -> tuple[str, Any]:
        created = client.models.predictions.create(model=model, input=inp)
        pred = client.predictions.get(created.id)
        return str(pred.status), pred.output

    def close() -> None:
        client._client.close()

    return flow, close


COST_FLOWS = {"raw": _cost_flow_raw, "ours": _cost_flow_ours, "replicate": _cost_flow_replicate}


def job_cost(job: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time N create+get+parse flows on the process's CPU clock and the wall clock."""
    flow, close = COST_FLOWS[job["contender"]](job)
    statuses: collections.Counter[str] = collections.Counter()
    try:
        for _ in range(job["warmup"]):
            flow()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(job["n"]):
            status, output = flow()
            statuses[status.rsplit(".", 1)[-1].lower()] += 1
            if output is not None:
                len(output)  # touch the parsed output as a caller would
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
    finally:
        close()
    return {
        "n": job["n"],
        "cpu_per_flow_s": cpu / job["n"],
        "wall_per_flow_s": wall / job["n"],
        "statuses": dict(statuses),
        **rusage(),
    }


def job_cost_mixed(job: dict[str, Any]) -> dict[str, Any]:
    """All contenders in ONE process, alternating in short rounds: every flow pays for the same heap
    (all libraries imported) and the same moment's machine load, so this isolates the per-call
    code cost from import-size and garbage-collection effects the fresh-process figure includes."""
    import statistics

    flows = {c: COST_FLOWS[c](dict(job, contender=c)) for c in job["contenders"]}
    per: dict[str, list[float]] = {c: [] for c in flows}
    try:
        for flow, _ in flows.values():
            for _ in range(job["warmup"]):
                flow()
        for _ in range(job["rounds"]):
            for name, (flow, _) in flows.items():
                cpu0 = time.process_time()
                for _ in range(job["n"]):
                    flow()
                per[name].append((time.process_time() - cpu0) / job["n"])
    finally:
        for _, close in flows.values():
            close()
    return {"cpu_per_flow_s": per, "median_cpu_per_flow_s": {c: statistics.median(v) for c, v in per.items()}}


# --------------------------------------------------------------------------- 2. completion detection


async def _detect_ours(job: dict[str, Any], mode: str) -> Callable[[str, dict[str, Any]], Awaitable[Any]]:
    from comet_replicate import AsyncClient

    count_comet_transport()
    client = AsyncClient(api_key=job["token"], base_url=job["base_url"] + "/replicate/v1")
    job["_close"] = client.close
    timeout = job["timeout"]

    async def one(model: str, inp: dict[str, Any]) -> Any:
        if mode == "sync":
            pred = await client.predictions.create(model, inp, wait=job["sync_wait"])
        else:
            pred = await client.predictions.create(model, inp)
        return await client.predictions.wait(pred, timeout=timeout)

    return one


async def _detect_replicate(job: dict[str, Any]) -> Callable[[str, dict[str, Any]], Awaitable[Any]]:
    import replicate

    client = replicate.Client(api_token=job["token"], base_url=job["base_url"] + "/replicate")

    async def close() -> None:
        await client._async_client.aclose()

    job["_close"] = close

    async def one(model: str, inp: dict[str, Any]) -> Any:
        pred = await client.models.predictions.async_create(model=model, input=inp)
        await pred.async_wait()
        return pred

    return one


async def _run_batch(
    one: Callable[[str, dict[str, Any]], Awaitable[Any]],
    plan: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Start every planned prediction after its start offset, all concurrently; record when each
    wait returned next to the emulator's own timestamps."""

    async def timed(item: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(item["start_offset_s"])
        t_start = time.time()
        try:
            pred = await one(item["model"], item["input"])
        except Exception as exc:
            return {"model": item["model"], "ok": False, "error": error_name(exc), "message": str(exc)[:300]}
        t_done = time.time()
        pid = str(field(pred, "id"))
        created = to_epoch(field(pred, "created_at"))
        started = to_epoch(field(pred, "started_at"))
        completed = to_epoch(field(pred, "completed_at"))
        status = str(field(pred, "status")).rsplit(".", 1)[-1].lower()
        return {
            "model": item["model"],
            "ok": status == "succeeded",
            "status": status,
            "id": pid,
            "t_start": t_start,
            "t_done": t_done,
            "created_at": created,
            "started_at": started,
            "completed_at": completed,
            "predict_time": predict_time(pred),
            "duration_s": None if completed is None or created is None else completed - created,
            "latency_s": None if completed is None else t_done - completed,
            "gets": gets_for(pid),
        }

    return list(await asyncio.gather(*(timed(item) for item in plan)))


async def _job_detect(job: dict[str, Any]) -> dict[str, Any]:
    install_request_counter()
    contender = job["contender"]
    if contender == "ours-sync":
        one = await _detect_ours(job, "sync")
    elif contender == "ours-poll":
        one = await _detect_ours(job, "poll")
    elif contender == "replicate":
        one = await _detect_replicate(job)
    else:
        raise ValueError(contender)
    try:
        warm = await _run_batch(one, job["warmup_plan"]) if job["warmup_plan"] else []
        warmup_gets = sum(n for (m, _), n in REQUESTS.items() if m == "GET")
        REQUESTS.clear()
        cpu0 = time.process_time()
        measured = await _run_batch(one, job["plan"])
        cpu = time.process_time() - cpu0
    finally:
        closer = job.pop("_close")
        result = closer()
        if asyncio.iscoroutine(result):
            await result
    return {
        "warmup": [{k: r.get(k) for k in ("model", "ok", "duration_s", "error")} for r in warm],
        "predictions": measured,
        "cpu_s": cpu,
        "warmup_gets": warmup_gets,
        "all_gets": sum(n for (m, _), n in REQUESTS.items() if m == "GET"),
        "requests": {f"{m} {p}": n for (m, p), n in REQUESTS.items() if m != "GET"},
        **rusage(),
    }


def job_detect(job: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_job_detect(job))


# --------------------------------------------------------------------------- 3. scale


async def _job_scale(job: dict[str, Any]) -> dict[str, Any]:
    install_request_counter()
    inputs = job["inputs"]
    n = len(inputs)
    model = job["model"]
    errors: collections.Counter[str] = collections.Counter()
    messages: dict[str, str] = {}

    if job["contender"] == "ours":
        import comet_replicate
        from comet_replicate import AsyncClient

        count_comet_transport()

        # This emulator enforces no rate limit, and the client is told so: the section measures
        # what the client itself can do (section 4 runs at the API's limits).
        unpaced = {"rate_limits": None} if hasattr(comet_replicate, "RateLimits") else {}
        client = AsyncClient(api_key=job["token"], base_url=job["base_url"] + "/replicate/v1", **unpaced)

        async def one(inp: dict[str, Any]) -> Any:
            return await client.run(model, inp, timeout=job["timeout"])

        async def close() -> None:
            await client.close()

    elif job["contender"] == "replicate":
        import replicate

        rclient = replicate.Client(api_token=job["token"], base_url=job["base_url"] + "/replicate")

        async def one(inp: dict[str, Any]) -> Any:
            return await rclient.async_run(model, input=inp)

        async def close() -> None:
            await rclient._async_client.aclose()

    else:
        raise ValueError(job["contender"])

    async def guarded(inp: dict[str, Any]) -> bool:
        try:
            out = await one(inp)
        except Exception as exc:
            name = error_name(exc)
            errors[name] += 1
            messages.setdefault(name, (str(exc) or repr(exc))[:300])
            return False
        if out is None or (isinstance(out, list) and not out):
            errors["empty output"] += 1
            return False
        return True

    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        results = await asyncio.gather(*(guarded(inp) for inp in inputs))
    finally:
        await close()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {
        "n": n,
        "succeeded": sum(results),
        "errors": dict(errors),
        "error_examples": messages,
        "cpu_s": cpu,
        "wall_s": wall,
        "requests": {
            "POST": sum(v for (m, _), v in REQUESTS.items() if m == "POST"),
            "GET": sum(v for (m, _), v in REQUESTS.items() if m == "GET"),
        },
        **rusage(),
    }


def job_scale(job: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_job_scale(job))


JOBS = {"cost": job_cost, "cost-mixed": job_cost_mixed, "detect": job_detect, "scale": job_scale}


PROFILE_ENV = "COMET_BENCH_PROFILE"
"""A folder: each worker then runs under cProfile and leaves `<kind>-<contender>.prof` there (for
finding where the client's CPU goes; the figures of a profiled run are not comparable)."""


def _profiled(
    runner: Callable[[dict[str, Any]], dict[str, Any]], job: dict[str, Any], folder: Path
) -> dict[str, Any]:
    import cProfile

    folder.mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(runner, job)
    finally:
        profiler.dump_stats(str(folder / f"{job['kind']}-{job.get('contender', 'job')}.prof"))


def main(argv: list[str]) -> int:
    job_path, result_path = argv
    with open(job_path, encoding="utf-8") as fh:
        job = json.load(fh)
    if job["kind"] == "limits":  # its module imports this one
        from benchmarks._limits_worker import job_limits

        runner: Callable[[dict[str, Any]], dict[str, Any]] = job_limits
    else:
        runner = JOBS[job["kind"]]
    profile_dir = os.environ.get(PROFILE_ENV)
    result = _profiled(runner, job, Path(profile_dir)) if profile_dir else runner(job)
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
