"""Output images: the size each model would produce, and real encoded pictures made with Pillow.

Pictures are drawn from a hash of the prompt, seed and output index, so two prompts (or two outputs of
one prediction) give two different files and the same request gives the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

# Pixel sizes at 1 megapixel, per aspect ratio, as the FLUX Cog predictors define them.
ASPECT_SIZES: Mapping[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "3:4": (896, 1152),
    "4:3": (1152, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
ONE_MP = 1024 * 1024

FORMATS = {"webp": ("WEBP", "image/webp"), "jpg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}

SCHNELL_LIKE = ("black-forest-labs/flux-schnell", "black-forest-labs/flux-dev")
FLUX2 = ("black-forest-labs/flux-2-pro", "black-forest-labs/flux-2-max")
ULTRA = "black-forest-labs/flux-1.1-pro-ultra"


def _round(value: float, multiple: int) -> int:
    return max(multiple, int(value / multiple + 0.5) * multiple)


def fit(ratio: str, pixels: float, multiple: int = 16) -> tuple[int, int]:
    """Width and height for `ratio` at about `pixels` pixels, each a multiple of `multiple`."""
    if ratio in ASPECT_SIZES and pixels == ONE_MP:
        return ASPECT_SIZES[ratio]
    if ratio in ASPECT_SIZES:
        w0, h0 = ASPECT_SIZES[ratio]
        scale = math.sqrt(pixels / ONE_MP)
        return _round(w0 * scale, multiple), _round(h0 * scale, multiple)
    a, b = (float(x) for x in ratio.split(":", 1))
    width = math.sqrt(pixels * a / b)
    return _round(width, multiple), _round(width * b / a, multiple)


def data_url_size(url: object) -> tuple[int, int] | None:
    """The pixel size of a `data:image/...;base64,` URL, read from its header only; None otherwise."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=False)
        with Image.open(io.BytesIO(raw)) as img:
            return int(img.width), int(img.height)
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        return None


def _first_image(inp: Mapping[str, Any]) -> tuple[int, int] | None:
    candidates: list[Any] = [inp.get("input_image"), inp.get("image")]
    images = inp.get("input_images")
    if isinstance(images, list):
        candidates.extend(images)
    for url in candidates:
        size = data_url_size(url)
        if size is not None:
            return size
    return None


def _ratio_of(size: tuple[int, int]) -> str:
    return f"{size[0]}:{size[1]}"


def output_size(model: str, inp: Mapping[str, Any]) -> tuple[int, int]:
    """The (width, height) the model would produce for this input (defaults already applied)."""
    ratio = str(inp.get("aspect_ratio") or "1:1")
    source = _first_image(inp)
    if model in SCHNELL_LIKE:
        pixels = ONE_MP / 4 if str(inp.get("megapixels")) == "0.25" else ONE_MP
        if model.endswith("flux-dev") and source is not None:  # img2img follows the source's shape
            return fit(_ratio_of(source), pixels)
        return fit(ratio, pixels)
    if model in FLUX2:
        resolution = str(inp.get("resolution") or "1 MP")
        if resolution.endswith(" MP"):
            pixels = float(resolution.split()[0]) * ONE_MP
        else:  # match_input_image
            pixels = float(source[0] * source[1]) if source else ONE_MP
        if ratio == "custom":
            return _custom(inp, 16)
        if ratio == "match_input_image":
            return fit(_ratio_of(source), pixels) if source else fit("1:1", pixels)
        return fit(ratio, pixels)
    if ratio == "custom":  # flux-pro and flux-1.1-pro round custom sizes to multiples of 32
        return _custom(inp, 32)
    if ratio == "match_input_image":
        return fit(_ratio_of(source), ONE_MP) if source else ASPECT_SIZES["1:1"]
    if model == ULTRA:  # "raw"/ultra mode renders about 4 megapixels
        return fit(ratio, 4 * ONE_MP, 32)
    return fit(ratio, ONE_MP)


def _custom(inp: Mapping[str, Any], multiple: int) -> tuple[int, int]:
    """Custom sizes, rounded as the models round them; a missing side is taken as 1024."""
    width, height = inp.get("width"), inp.get("height")
    w = float(width) if isinstance(width, int) else 1024.0
    h = float(height) if isinstance(height, int) else 1024.0
    return _round(w, multiple), _round(h, multiple)


@dataclass(frozen=True)
class ImageSpec:
    """Everything that determines one output file's bytes."""

    width: int
    height: int
    fmt: str
    quality: int
    prompt: str
    seed: int
    index: int

    @property
    def media_type(self) -> str:
        return FORMATS[self.fmt][1]


def render(spec: ImageSpec) -> bytes:
    """Draw and encode one picture (tens of milliseconds for 1 MP; call it off the event loop)."""
    digest = hashlib.sha256(f"{spec.prompt}\x00{spec.seed}\x00{spec.index}".encode()).digest()
    colours = [tuple(digest[i : i + 3]) for i in range(0, 30, 3)]
    w, h = spec.width, spec.height
    mask = Image.linear_gradient("L").rotate(digest[30] % 4 * 90).resize((w, h))
    img = Image.composite(Image.new("RGB", (w, h), colours[0]), Image.new("RGB", (w, h), colours[1]), mask)
    draw = ImageDraw.Draw(img)
    for k in range(2, 8):
        x0, y0 = digest[k * 2] * w // 256, digest[k * 2 + 1] * h // 256
        size = (digest[k + 16] % 64 + 16) * min(w, h) // 160
        box = (x0 - size, y0 - size, x0 + size, y0 + size)
        if k % 2:
            draw.ellipse(box, fill=colours[k])
        else:
            draw.rectangle(box, fill=colours[k])
    pil_format = FORMATS[spec.fmt][0]
    buf = io.BytesIO()
    if pil_format == "PNG":
        img.save(buf, "PNG", compress_level=1)
    elif pil_format == "WEBP":
        img.save(buf, "WEBP", quality=spec.quality, method=2)
    else:
        img.save(buf, "JPEG", quality=spec.quality)
    return buf.getvalue()


class ImageCache:
    """Encoded files kept by key up to a byte budget, least recently used first out."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: OrderedDict[Any, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: Any, data: bytes) -> None:
        with self._lock:
            if key in self._items or len(data) > self._max:
                return
            self._items[key] = data
            self._size += len(data)
            while self._size > self._max:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0
