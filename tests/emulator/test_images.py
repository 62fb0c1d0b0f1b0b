"""Outputs are real, decodable images at the size and format each model would produce."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from comet_replicate_emulator import ManualClock
from PIL import Image

SCHNELL = "black-forest-labs/flux-schnell"


async def finished(
    api: httpx.AsyncClient, clock: ManualClock, model: str, inp: dict[str, Any]
) -> dict[str, Any]:
    created = await api.post(f"/replicate/v1/models/{model}/predictions", json={"input": inp})
    assert created.status_code == 201, created.text
    clock.advance(120)
    got = await api.get(f"/replicate/v1/predictions/{created.json()['id']}")
    body: dict[str, Any] = got.json()
    assert body["status"] == "succeeded"
    return body


async def download(api: httpx.AsyncClient, url: str) -> tuple[httpx.Response, Image.Image]:
    response = await api.get(url)
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return response, image


async def test_schnell_square_webp_is_a_decodable_1024_square_webp(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    body = await finished(
        api, clock, SCHNELL, {"prompt": "a boat", "aspect_ratio": "1:1", "output_format": "webp"}
    )
    assert isinstance(body["output"], list) and len(body["output"]) == 1
    response, image = await download(api, body["output"][0])
    assert response.headers["content-type"] == "image/webp"
    assert image.format == "WEBP"
    assert image.size == (1024, 1024)


async def test_schnell_16_9_is_1344_by_768(api: httpx.AsyncClient, clock: ManualClock) -> None:
    body = await finished(api, clock, SCHNELL, {"prompt": "a boat", "aspect_ratio": "16:9"})
    _, image = await download(api, body["output"][0])
    assert image.size == (1344, 768)


async def test_kontext_pro_png_is_one_png_url(api: httpx.AsyncClient, clock: ManualClock) -> None:
    body = await finished(
        api, clock, "black-forest-labs/flux-kontext-pro", {"prompt": "a boat", "output_format": "png"}
    )
    assert isinstance(body["output"], str)
    response, image = await download(api, body["output"])
    assert response.headers["content-type"] == "image/png"
    assert image.format == "PNG"
    assert image.size == (1024, 1024)  # match_input_image without an input image


async def test_num_outputs_three_gives_three_different_files(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    body = await finished(api, clock, SCHNELL, {"prompt": "a boat", "num_outputs": 3})
    assert len(body["output"]) == 3 and len(set(body["output"])) == 3
    contents = [(await api.get(url)).content for url in body["output"]]
    assert len(set(contents)) == 3
    assert body["metrics"]["image_count"] == 3


async def test_two_prompts_give_two_different_images(api: httpx.AsyncClient, clock: ManualClock) -> None:
    first = await finished(api, clock, SCHNELL, {"prompt": "a boat", "seed": 1})
    second = await finished(api, clock, SCHNELL, {"prompt": "a lighthouse", "seed": 1})
    one = (await api.get(first["output"][0])).content
    two = (await api.get(second["output"][0])).content
    assert one != two


async def test_same_prompt_and_seed_give_the_same_bytes(api: httpx.AsyncClient, clock: ManualClock) -> None:
    first = await finished(api, clock, SCHNELL, {"prompt": "a boat", "seed": 42})
    second = await finished(api, clock, SCHNELL, {"prompt": "a boat", "seed": 42})
    assert first["output"] != second["output"]
    assert (await api.get(first["output"][0])).content == (await api.get(second["output"][0])).content


@pytest.mark.parametrize(
    ("model", "inp", "fmt", "size"),
    [
        (SCHNELL, {"megapixels": "0.25"}, "WEBP", (512, 512)),
        (SCHNELL, {"aspect_ratio": "9:21", "output_format": "jpg"}, "JPEG", (640, 1536)),
        ("black-forest-labs/flux-dev", {"aspect_ratio": "4:5", "megapixels": "0.25"}, "WEBP", (448, 544)),
        (
            "black-forest-labs/flux-pro",
            {"aspect_ratio": "custom", "width": 1000, "height": 500},
            "WEBP",
            (992, 512),
        ),
        (
            "black-forest-labs/flux-1.1-pro",
            {"aspect_ratio": "3:2", "output_format": "png"},
            "PNG",
            (1216, 832),
        ),
        ("black-forest-labs/flux-1.1-pro-ultra", {}, "JPEG", (2048, 2048)),
        ("black-forest-labs/flux-kontext-max", {"aspect_ratio": "2:1"}, "PNG", (1456, 720)),
        ("black-forest-labs/flux-2-pro", {"resolution": "0.5 MP"}, "WEBP", (720, 720)),
        (
            "black-forest-labs/flux-2-max",
            {"aspect_ratio": "custom", "width": 1000, "height": 1000},
            "WEBP",
            (1008, 1008),
        ),
    ],
)
async def test_each_model_uses_its_default_format_and_size(
    api: httpx.AsyncClient,
    clock: ManualClock,
    model: str,
    inp: dict[str, Any],
    fmt: str,
    size: tuple[int, int],
) -> None:
    body = await finished(api, clock, model, {"prompt": "a boat", **inp})
    url = body["output"][0] if isinstance(body["output"], list) else body["output"]
    _, image = await download(api, url)
    assert (image.format, image.size) == (fmt, size)


async def test_match_input_image_follows_a_data_url_input(api: httpx.AsyncClient, clock: ManualClock) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (600, 300), (1, 2, 3)).save(buf, "PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    body = await finished(
        api, clock, "black-forest-labs/flux-kontext-pro", {"prompt": "edit", "input_image": data_url}
    )
    _, image = await download(api, body["output"])
    width, height = image.size
    assert width == 2 * height or abs(width / height - 2) < 0.05
    assert 0.9e6 < width * height < 1.2e6


async def test_output_quality_changes_the_encoded_file(api: httpx.AsyncClient, clock: ManualClock) -> None:
    low = await finished(
        api, clock, SCHNELL, {"prompt": "q", "seed": 3, "output_format": "jpg", "output_quality": 5}
    )
    high = await finished(
        api, clock, SCHNELL, {"prompt": "q", "seed": 3, "output_format": "jpg", "output_quality": 95}
    )
    assert len((await api.get(low["output"][0])).content) < len((await api.get(high["output"][0])).content)


async def test_files_are_served_without_auth_and_unknown_files_are_404(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    body = await finished(api, clock, SCHNELL, {"prompt": "a boat"})
    anonymous = await api.get(body["output"][0], headers={"Authorization": ""})
    assert anonymous.status_code == 200
    missing = await api.get(body["output"][0].replace("out-0", "out-9"))
    assert missing.status_code == 404
