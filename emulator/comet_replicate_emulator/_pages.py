"""Everything outside the API: output files, the event stream, the web page and the test endpoints.

Files and streams are what `urls.stream`, `urls.web` and `output` point at; `/_emulator/*` lets a
test read the counters and start over.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from ._dialects import COMET, REPLICATE
from ._handlers import base_url
from ._predictions import Prediction
from ._responses import emulator_of
from ._state import Emulator


def _file_index(prediction: Prediction | None, name: str, now: float) -> int | None:
    """Which output `name` is, if the prediction succeeded and still has its data."""
    if prediction is None or prediction.status_at(now) != "succeeded" or prediction.data_removed_at(now):
        return None
    names = [prediction.file_name(i) for i in range(len(prediction.images))]
    return names.index(name) if name in names else None


async def _file_bytes(emulator: Emulator, prediction: Prediction, index: int) -> bytes:
    key = (prediction.id, index)
    data = emulator.images.get(key)
    if data is None:
        data = await run_in_threadpool(emulator.render, prediction.images[index])
        emulator.images.put(key, data)
    return data


async def files(request: Request) -> Response:
    emulator = emulator_of(request.scope)
    prediction = emulator.predictions.get(request.path_params["prediction_id"])
    name = request.path_params["name"]
    index = _file_index(prediction, name, emulator.clock.now())
    if prediction is None or index is None:
        emulator.stats.request("files", 404)
        return Response("Not found", status_code=404, media_type="text/plain")
    data = await _file_bytes(emulator, prediction, index)
    emulator.stats.request("files", 200)
    return Response(
        data,
        media_type=prediction.images[index].media_type,
        headers={
            "Cache-Control": "public, max-age=3600",
            "Content-Disposition": f'inline; filename="{name}"',
        },
    )


async def _events(emulator: Emulator, prediction: Prediction) -> AsyncIterator[bytes]:
    while True:
        end, _ = prediction.ending()
        if emulator.clock.now() >= end:
            break
        await prediction.wait_until(end, emulator.clock.sleep_until)
    view = prediction.view(emulator.clock.now())
    if view["status"] == "succeeded":
        outputs = view["output"] if isinstance(view["output"], list) else [view["output"]]
        for url in outputs:
            if url is not None:
                yield f"event: output\nid: {prediction.id}\ndata: {url}\n\n".encode()
    elif view["status"] == "failed":
        yield f"event: error\ndata: {json.dumps({'detail': view['error']})}\n\n".encode()
    yield b"event: done\ndata: {}\n\n"


async def stream(request: Request) -> Response:
    emulator = emulator_of(request.scope)
    prediction = emulator.predictions.get(request.path_params["prediction_id"])
    if prediction is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return StreamingResponse(
        _events(emulator, prediction), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def web(request: Request) -> Response:
    emulator = emulator_of(request.scope)
    prediction = emulator.predictions.get(request.path_params["prediction_id"])
    if prediction is None:
        return HTMLResponse("<h1>Not found</h1>", status_code=404)
    view = prediction.view(emulator.clock.now())
    outputs = view["output"] if isinstance(view["output"], list) else [view["output"]]
    images = "".join(f'<img src="{html.escape(u)}" width="256">' for u in outputs if u)
    page = (
        f"<html><head><title>Prediction {html.escape(prediction.id)}</title></head><body>"
        f"<h1>{html.escape(prediction.model)}</h1><p>Status: {html.escape(view['status'])}</p>"
        f"<pre>{html.escape(json.dumps(view, indent=2))}</pre>{images}</body></html>"
    )
    return HTMLResponse(page)


async def stats(request: Request) -> Response:
    return JSONResponse(emulator_of(request.scope).stats.snapshot())


async def reset(request: Request) -> Response:
    emulator_of(request.scope).reset()
    return JSONResponse({"reset": True})


async def openapi(request: Request) -> Response:
    return Response(emulator_of(request.scope).spec.text, media_type="application/yaml")


async def index(request: Request) -> Response:
    return JSONResponse(
        {
            "service": "comet-replicate emulator",
            "cometapi_base_url": base_url(request) + COMET.prefix,
            "replicate_base_url": base_url(request) + REPLICATE.prefix,
            "models": sorted(emulator_of(request.scope).spec.models),
        }
    )


async def http_404(request: Request, exc: Exception) -> Response:
    body, media = REPLICATE.not_found()
    return JSONResponse(body, 404, media_type=media)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return Response(exc.detail, status_code=exc.status_code, headers=exc.headers, media_type="text/plain")
