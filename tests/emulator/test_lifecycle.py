"""starting → processing → terminal on the emulator clock, with Prefer: wait, Cancel-After and retention."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from comet_replicate_emulator import EmulatorConfig, ManualClock, ModelTiming

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
PRO = "/replicate/v1/models/black-forest-labs/flux-pro/predictions"
TIMINGS = {
    "black-forest-labs/flux-schnell": ModelTiming(1.0, 2.0),
    "black-forest-labs/flux-pro": ModelTiming(3.0, 10.0),
}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def poll(api: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    response = await api.get(f"/replicate/v1/predictions/{pid}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_prediction_moves_through_its_states_with_timestamps_and_metrics(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
    checked: Any,
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    created = await api.post(SCHNELL, json={"input": {"prompt": "a boat", "seed": 5}})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "starting" and body["output"] is None and body["logs"] == ""
    assert body["version"] == "hidden" and body["source"] == "api" and body["data_removed"] is False
    assert "started_at" not in body and "completed_at" not in body
    pid = body["id"]

    clock.advance(1.5)
    processing = await poll(api, pid)
    assert processing["status"] == "processing"
    assert ts(processing["started_at"]) - ts(processing["created_at"]) == 1.0
    early_logs = processing["logs"]
    assert early_logs.startswith("Using seed: 5\n")

    clock.advance(1.0)
    later = await poll(api, pid)
    assert later["status"] == "processing"
    assert later["logs"].startswith(early_logs) and len(later["logs"]) > len(early_logs)

    clock.advance(1.0)
    done = await poll(api, pid)
    assert done["status"] == "succeeded"
    assert ts(done["completed_at"]) - ts(done["created_at"]) == 3.0
    assert done["metrics"] == {"predict_time": 2.0, "total_time": 3.0, "image_count": 1}
    assert done["urls"]["get"] == f"http://emulator.test/replicate/v1/predictions/{pid}"
    assert done["urls"]["cancel"] == f"http://emulator.test/replicate/v1/predictions/{pid}/cancel"
    assert done["urls"]["web"].startswith("http://emulator.test/") and done["urls"]["stream"].startswith(
        "http://emulator.test/"
    )
    assert checked.count == 4  # every response above went through the spec check


async def test_replicate_prefix_serves_the_same_prediction_with_its_own_urls(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/models/black-forest-labs/flux-schnell/predictions", json={"input": {"prompt": "x"}}
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    assert created.json()["urls"]["get"] == f"http://emulator.test/v1/predictions/{pid}"
    assert (await api.get(f"/replicate/v1/predictions/{pid}")).json()["id"] == pid


async def test_prefer_wait_returns_a_finished_prediction_with_201(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(clock=None, speed=1000.0, timings=TIMINGS))
    created = await api.post(SCHNELL, json={"input": {"prompt": "a boat"}}, headers={"Prefer": "wait=10"})
    assert created.status_code == 201
    assert created.json()["status"] == "succeeded"
    assert created.json()["output"][0].startswith("http://emulator.test/files/")
    assert created.headers["location"] == created.json()["urls"]["get"]


async def test_prefer_wait_shorter_than_the_run_returns_202_unfinished(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(clock=None, speed=100.0, timings=TIMINGS))
    created = await api.post(PRO, json={"input": {"prompt": "a boat"}}, headers={"Prefer": "wait=1"})
    assert created.status_code == 202
    assert created.json()["status"] == "starting"


async def test_prefer_wait_on_the_manual_clock_returns_once_the_clock_passes_the_end(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    request = asyncio.ensure_future(
        api.post(SCHNELL, json={"input": {"prompt": "x"}}, headers={"Prefer": "wait"})
    )
    await asyncio.sleep(0.05)
    assert not request.done()
    clock.advance(3.0)
    created = await asyncio.wait_for(request, 5)
    assert created.status_code == 201 and created.json()["status"] == "succeeded"


async def test_cancel_while_running_ends_canceled_and_a_finished_one_stays_unchanged(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    pid = (await api.post(PRO, json={"input": {"prompt": "x"}})).json()["id"]
    clock.advance(5)
    canceled = await api.post(f"/replicate/v1/predictions/{pid}/cancel")
    assert canceled.status_code == 200
    body = canceled.json()
    assert body["status"] == "canceled" and body["output"] is None
    assert body["metrics"]["predict_time"] == 2.0
    clock.advance(100)
    assert (await poll(api, pid))["status"] == "canceled"

    done_id = (await api.post(SCHNELL, json={"input": {"prompt": "x"}})).json()["id"]
    clock.advance(10)
    again = await api.post(f"/replicate/v1/predictions/{done_id}/cancel")
    assert again.json()["status"] == "succeeded" and again.json()["output"]


async def test_cancel_before_start_ends_canceled_without_started_at(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    pid = (await api.post(PRO, json={"input": {"prompt": "x"}})).json()["id"]
    body = (await api.post(f"/replicate/v1/predictions/{pid}/cancel")).json()
    assert body["status"] == "canceled" and "started_at" not in body


async def test_cancel_after_deadline_before_start_aborts(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    slow_queue = {"black-forest-labs/flux-pro": ModelTiming(30.0, 10.0)}
    api = make_client(make_config(timings=slow_queue))
    created = await api.post(PRO, json={"input": {"prompt": "x"}}, headers={"Cancel-After": "10s"})
    body = created.json()
    assert ts(body["deadline"]) - ts(body["created_at"]) == 10.0
    clock.advance(11)
    aborted = await poll(api, body["id"])
    assert aborted["status"] == "aborted" and "started_at" not in aborted


async def test_cancel_after_deadline_while_running_cancels(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    created = await api.post(PRO, json={"input": {"prompt": "x"}}, headers={"Cancel-After": "10"})
    pid = created.json()["id"]
    clock.advance(8)
    assert (await poll(api, pid))["status"] == "processing"  # started at 3 s, would end at 13 s
    clock.advance(60)
    canceled = await poll(api, pid)
    assert canceled["status"] == "canceled"
    assert ts(canceled["completed_at"]) - ts(canceled["created_at"]) == 10.0


async def test_cancel_after_below_five_seconds_is_raised_to_five(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    body = (await api.post(PRO, json={"input": {"prompt": "x"}}, headers={"Cancel-After": "1"})).json()
    assert ts(body["deadline"]) - ts(body["created_at"]) == 5.0


async def test_after_retention_output_is_removed_and_files_are_gone(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(timings=TIMINGS, retention_s=60))
    pid = (await api.post(SCHNELL, json={"input": {"prompt": "x"}})).json()["id"]
    clock.advance(10)
    done = await poll(api, pid)
    url = done["output"][0]
    assert (await api.get(url)).status_code == 200
    clock.advance(60)
    removed = await poll(api, pid)
    assert removed["status"] == "succeeded"
    assert removed["output"] is None and removed["data_removed"] is True and removed["input"] == {}
    assert (await api.get(url)).status_code == 404


async def test_failed_rate_one_ends_every_prediction_failed_with_a_message(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    from comet_replicate_emulator import Faults

    api = make_client(make_config(timings=TIMINGS, faults=Faults(failed=1.0, failed_message="boom")))
    pid = (await api.post(SCHNELL, json={"input": {"prompt": "x"}})).json()["id"]
    clock.advance(10)
    failed = await poll(api, pid)
    assert failed["status"] == "failed" and failed["error"] == "boom" and failed["output"] is None
    assert api.emulator_app.stats()["faults"]["by_kind"] == {"failed": 1}  # type: ignore[attr-defined]


async def test_same_seed_gives_the_same_ids_and_durations(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    bodies = []
    for _ in range(2):
        api = make_client(make_config(durations="lognormal"))
        created = await api.post(SCHNELL, json={"input": {"prompt": "x"}})
        bodies.append(created.json())
    assert bodies[0]["id"] == bodies[1]["id"]


async def test_lognormal_durations_vary_around_the_model_mean() -> None:
    from comet_replicate_emulator import Emulator, EmulatorConfig

    emulator = Emulator(EmulatorConfig(seed=3, durations="lognormal"))
    runs = [emulator.builder.durations("black-forest-labs/flux-pro", {})[1] for _ in range(400)]
    mean = sum(runs) / len(runs)
    assert len(set(runs)) == len(runs)
    assert 4.0 < mean < 7.0  # the flux-pro typical run is 5.5 s


async def test_duration_fn_overrides_the_timing(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config(duration_fn=lambda model, inp: (0.0, float(len(inp["prompt"])))))
    pid = (await api.post(SCHNELL, json={"input": {"prompt": "abcdefghij"}})).json()["id"]
    clock.advance(9.9)
    assert (await poll(api, pid))["status"] == "processing"
    clock.advance(0.2)
    assert (await poll(api, pid))["status"] == "succeeded"


async def test_speed_factor_runs_the_clock_faster(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(clock=None, speed=1000.0, timings=TIMINGS))
    pid = (await api.post(PRO, json={"input": {"prompt": "x"}})).json()["id"]
    for _ in range(200):
        body = await poll(api, pid)
        if body["status"] == "succeeded":
            break
        await asyncio.sleep(0.005)
    assert body["status"] == "succeeded"
    assert body["metrics"]["predict_time"] == 10.0


async def test_default_retention_is_one_hour_of_wall_time(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    assert EmulatorConfig(speed=100.0).retention() == 360_000.0
    api = make_client(make_config(timings=TIMINGS))  # manual clock: emulator seconds are wall seconds
    pid = (await api.post(SCHNELL, json={"input": {"prompt": "x"}})).json()["id"]
    clock.advance(3.0 + 3599.0)
    assert (await poll(api, pid))["data_removed"] is False
    clock.advance(1.0)
    assert (await poll(api, pid))["data_removed"] is True


async def test_a_huge_cancel_after_is_capped_at_a_century(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> None:
    api = make_client(make_config(timings=TIMINGS))
    headers = {"Cancel-After": "2087638038333003207432055m3s"}  # matches the spec's pattern
    created = await api.post(PRO, json={"input": {"prompt": "x"}}, headers=headers)
    assert created.status_code == 201
    body = created.json()
    assert round((ts(body["deadline"]) - ts(body["created_at"])) / (365.25 * 86400)) == 100
