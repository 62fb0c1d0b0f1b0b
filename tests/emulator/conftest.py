"""Clients for the emulator tests; every API response they receive is checked against openapi.yaml.

The check uses schemathesis's own response validation (status declared, content type declared,
body matches the schema, declared headers), independent of the emulator's self-check.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, ManualClock, create_app
from comet_replicate_emulator._spec import locate_spec

TOKEN = "sk-test-emulator"
BASE = "http://emulator.test"


@functools.cache
def _schema() -> Any:
    import schemathesis

    return schemathesis.openapi.from_path(str(locate_spec()))


def check_against_spec(response: httpx.Response) -> bool:
    """Validate one API response; True when it was an API response (False for files and the like)."""
    path = response.request.url.path
    for prefix in ("/replicate/v1", "/v1"):
        if path.startswith(prefix + "/"):
            break
    else:
        return False
    schema = _schema()
    operation = schema.find_operation_by_path(response.request.method, path[len(prefix) :])
    if operation is None:
        return False  # a method the spec does not have (405), checked by schemathesis itself
    responses = operation.definition.raw["responses"]
    declared = responses.get(str(response.status_code))
    assert declared is not None, f"{operation.label}: undeclared status {response.status_code}"
    if "$ref" in declared:
        name = declared["$ref"].rsplit("/", 1)[1]
        declared = schema.raw_schema["components"]["responses"][name]
    media = response.headers.get("content-type", "").split(";")[0].strip()
    content = declared.get("content") or {}
    assert not content or media in content, f"{operation.label} {response.status_code}: undeclared {media!r}"
    if not hasattr(response, "_elapsed"):
        response.elapsed = timedelta(0)
    operation.validate_response(response)
    return True


class Checked:
    """Counts validated responses so a test can prove the hook ran."""

    def __init__(self) -> None:
        self.count = 0

    def sync_hook(self, response: httpx.Response) -> None:
        response.read()
        self.count += check_against_spec(response)

    async def async_hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.count += check_against_spec(response)


@pytest.fixture
def checked() -> Checked:
    return Checked()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_config(clock: ManualClock) -> Callable[..., EmulatorConfig]:
    """An EmulatorConfig on the manual clock with the test token and the self-check on."""

    def make(**changes: Any) -> EmulatorConfig:
        base: dict[str, Any] = {"token": TOKEN, "seed": 7, "clock": clock, "validate_responses": True}
        base.update(changes)
        return EmulatorConfig(**base)

    return make


@pytest.fixture
async def make_client(checked: Checked) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Build an in-process AsyncClient for a config; every response goes through the spec check."""
    clients: list[httpx.AsyncClient] = []

    def make(config: EmulatorConfig, *, token: str | None = TOKEN) -> httpx.AsyncClient:
        app = create_app(config)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE,
            headers=headers,
            event_hooks={"response": [checked.async_hook]},
        )
        client.emulator_app = app  # type: ignore[attr-defined]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def api(
    make_client: Callable[..., httpx.AsyncClient], make_config: Callable[..., EmulatorConfig]
) -> httpx.AsyncClient:
    """The default in-process client: manual clock, seeded, spec-checked."""
    return make_client(make_config())


@pytest.fixture
def spec_check() -> Callable[[httpx.Response], bool]:
    return check_against_spec
