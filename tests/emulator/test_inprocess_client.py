"""The in-process fixtures hand out configured comet clients whose every request (creates, polls and
downloads) goes through the emulator's ASGI app: no socket is opened, not even a loopback one."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from comet_replicate import AsyncClient, Client
from comet_replicate_emulator import EmulatorConfig, Faults

# seed 6: the first poll draws a 503, the second does not (the fault dice are seeded)
FLAKY_GETS = Faults(error_503=0.3, retry_after=0.01, operations=frozenset({"get"}))


def _steady(model: str, input: object) -> tuple[float, float]:
    """Queued 1 s and running 5 s on the emulator clock (0.6 s of wall time): several polls."""
    return 1.0, 5.0


@pytest.fixture
def comet_emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        token="sk-inprocess",
        speed=10.0,
        seed=6,
        faults=FLAKY_GETS,
        duration_fn=_steady,
        validate_responses=True,
    )


def _inet_sockets() -> set[tuple[Any, ...]]:
    """This process's IPv4/IPv6 sockets (listening or connected); the event loops' self-pipes are unix."""
    return {(c.fd, c.laddr, c.raddr, c.status) for c in psutil.Process().net_connections(kind="inet")}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[set[tuple[Any, ...]]]]:
    """Fails any connect/bind/listen during the test and samples the process's inet sockets."""

    def refuse(self: socket.socket, *args: object) -> None:
        raise AssertionError(f"a socket was used: {self!r} {args!r}")

    before = _inet_sockets()
    for name in ("connect", "connect_ex", "bind", "listen"):
        monkeypatch.setattr(socket.socket, name, refuse)
    samples: list[set[tuple[Any, ...]]] = []
    yield samples
    monkeypatch.undo()
    samples.append(_inet_sockets())
    assert all(sample <= before for sample in samples), (before, samples)


def _sample(samples: list[set[tuple[Any, ...]]]) -> Any:
    return lambda prediction: samples.append(_inet_sockets())


def test_inprocess_client_creates_polls_through_503s_and_downloads_without_a_socket(
    no_network: list[set[tuple[Any, ...]]],
    comet_inprocess_client: Client,
    comet_emulator_app: Any,
    tmp_path: Path,
) -> None:
    files = comet_inprocess_client.run(
        "black-forest-labs/flux-schnell",
        {"prompt": "a paper boat", "num_outputs": 2},
        wait=None,  # poll from the start, so the injected 503s on GET strike
        on_update=_sample(no_network),
    )
    saved = [f.save(tmp_path) for f in files]
    assert [p.read_bytes()[:4] for p in saved] == [b"RIFF", b"RIFF"]  # WEBP, fetched in process
    stats = comet_emulator_app.stats()
    assert stats["predictions_created"] == 1
    assert stats["requests"]["get"].get("503", 0) >= 1, stats["requests"]
    assert stats["faults"]["by_kind"]["error_503"] >= 1
    assert stats["requests"]["files"]["200"] == 2, stats["requests"]
    assert no_network  # sampled while the prediction ran


async def test_inprocess_async_client_creates_polls_and_downloads_without_a_socket(
    no_network: list[set[tuple[Any, ...]]],
    comet_inprocess_async_client: AsyncClient,
    comet_emulator_app: Any,
) -> None:
    files = await comet_inprocess_async_client.run(
        "black-forest-labs/flux-kontext-pro",
        {"prompt": "a paper boat"},
        wait=None,
        on_update=_sample(no_network),
    )
    assert (await files[0].aread())[:8] == b"\x89PNG\r\n\x1a\n"
    stats = comet_emulator_app.stats()
    assert stats["predictions_created"] == 1
    assert stats["requests"]["get"].get("503", 0) >= 1, stats["requests"]


def test_inprocess_clients_of_one_app_share_it(comet_emulator_app: Any) -> None:
    first = comet_emulator_app.comet_client()
    second = comet_emulator_app.comet_client(max_retries=5)
    created = first.predictions.create("black-forest-labs/flux-schnell", {"prompt": "x"})
    assert second.predictions.get(created.id).id == created.id
    assert second.max_retries == 5 and first.base_url == comet_emulator_app.cometapi_base_url
    assert comet_emulator_app.stats()["predictions_created"] == 1


async def test_more_async_clients_on_one_app_share_it_and_close_with_aclose(comet_emulator_app: Any) -> None:
    first = comet_emulator_app.comet_async_client()
    second = comet_emulator_app.comet_async_client(max_retries=1)
    created = await first.predictions.create("black-forest-labs/flux-schnell", {"prompt": "x"})
    assert (await second.predictions.get(created.id)).id == created.id
    await comet_emulator_app.aclose()
    assert comet_emulator_app.stats()["predictions_created"] == 1
