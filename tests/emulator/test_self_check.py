"""The emulator's own self-check, the stream and web URLs it hands out."""

from __future__ import annotations

import copy
from collections.abc import Callable

import httpx
import pytest
from comet_replicate_emulator import EmulatorConfig, ManualClock, create_app
from comet_replicate_emulator._spec import Spec, default_spec

SCHNELL = "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"


async def test_validate_responses_raises_when_an_answer_breaks_the_spec() -> None:
    document = copy.deepcopy(default_spec().document)
    document["components"]["schemas"]["Prediction"]["required"].append("never_sent")
    app = create_app(EmulatorConfig(token="t", validate_responses=True), spec=Spec(document))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e", headers={"Authorization": "Bearer t"}
    ) as client:
        with pytest.raises(AssertionError, match="never_sent"):
            await client.post(SCHNELL, json={"input": {"prompt": "x"}})
    assert app.stats()["response_violations"]


async def test_stream_url_sends_the_outputs_then_done(
    make_client: Callable[..., httpx.AsyncClient],
    make_config: Callable[..., EmulatorConfig],
    clock: ManualClock,
) -> None:
    api = make_client(make_config())
    created = (await api.post(SCHNELL, json={"input": {"prompt": "x", "num_outputs": 2}})).json()
    clock.advance(60)
    stream = await api.get(created["urls"]["stream"])
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.count("event: output") == 2 and stream.text.endswith("event: done\ndata: {}\n\n")
    page = await api.get(created["urls"]["web"])
    assert page.status_code == 200 and created["id"] in page.text and "succeeded" in page.text
