"""Local files in image fields: data URLs at the size limit's boundary, type sniffing, pass-through.

Sizes are the documented ones written out (README: "a data URL up to `max_data_url_bytes`, 256 kB";
the limit is 256 × 1024 bytes), never the default constant read back.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from comet_replicate import InputValidationError
from comet_replicate._inputs import data_url, prepare_input, split_model

PNG = b"\x89PNG\r\n\x1a\n"
KIB256 = 256 * 1024
UNKNOWN = "someone/some-model"  # not in the spec: only unambiguous local data is converted
DEV = "black-forest-labs/flux-dev"  # known: `image` is a single file field
PRO2 = "black-forest-labs/flux-2-pro"  # known: `input_images` is an array of file fields


def png(size: int) -> bytes:
    return PNG + b"\0" * (size - len(PNG))


def decoded(url: str) -> tuple[str, bytes]:
    head, _, payload = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], base64.b64decode(payload)


# --------------------------------------------------------------------------- the size limit


@pytest.mark.parametrize("limit", [3, 100, 4096])
def test_a_file_of_exactly_the_limit_is_inlined_and_one_byte_more_is_refused(limit: int) -> None:
    data = b"\xff\xd8\xff" + b"j" * (limit - 3)
    assert decoded(data_url(data, field="image", limit=limit)) == ("image/jpeg", data)
    with pytest.raises(InputValidationError) as caught:
        data_url(data + b"j", field="image", name="big.jpg", limit=limit)
    assert caught.value.field == "image"
    assert caught.value.value == "big.jpg"
    assert f"{limit:,}-byte limit" in str(caught.value)


def test_unnamed_bytes_over_the_limit_are_described_by_their_size() -> None:
    with pytest.raises(InputValidationError) as caught:
        data_url(png(11), field="mask", limit=10)
    assert caught.value.field == "mask"
    assert caught.value.value == "<11 bytes>"


def test_the_default_limit_is_256_kib_for_bytes() -> None:
    body = prepare_input(UNKNOWN, {"image": png(KIB256)})
    assert decoded(body["image"]) == ("image/png", png(KIB256))
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": png(KIB256 + 1)})
    assert caught.value.field == "image"
    assert "262,144-byte limit" in str(caught.value)


def test_the_default_limit_is_256_kib_for_paths(tmp_path: Path) -> None:
    exact, over = tmp_path / "exact.png", tmp_path / "over.png"
    exact.write_bytes(png(KIB256))
    over.write_bytes(png(KIB256 + 1))
    assert decoded(prepare_input(DEV, {"prompt": "x", "image": str(exact)})["image"])[1] == png(KIB256)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(DEV, {"prompt": "x", "image": str(over)})
    assert caught.value.field == "image"
    assert caught.value.value == "over.png"


def test_the_default_limit_is_256_kib_for_file_objects() -> None:
    exact = io.BytesIO(png(KIB256))
    assert decoded(prepare_input(UNKNOWN, {"image": exact})["image"])[1] == png(KIB256)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": io.BytesIO(png(KIB256 + 1))})
    assert caught.value.field == "image"


@pytest.mark.parametrize("size", [10, 11, 12])
def test_a_smaller_limit_applies_to_paths_and_file_objects_alike(tmp_path: Path, size: int) -> None:
    path = tmp_path / "small.png"
    path.write_bytes(png(size))
    ok = size <= 11
    for value in (path, str(path), io.BytesIO(png(size))):
        if ok:
            url = prepare_input(DEV, {"prompt": "x", "image": value}, max_data_url_bytes=11)["image"]
            assert decoded(url) == ("image/png", png(size))  # read whole, not a byte short
        else:
            with pytest.raises(InputValidationError) as caught:
                prepare_input(DEV, {"prompt": "x", "image": value}, max_data_url_bytes=11)
            assert caught.value.field == "image"


def test_an_oversized_file_object_is_refused_after_reading_one_byte_past_the_limit() -> None:
    class Endless(io.RawIOBase):
        """A stream that never ends: only a bounded read can refuse it."""

        name = "endless.png"
        served = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            assert size is not None and 0 <= size <= 1 << 20, f"unbounded read({size})"
            Endless.served += size
            return PNG + b"\0" * (size - len(PNG))

    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": Endless()}, max_data_url_bytes=1000)
    assert caught.value.field == "image"
    assert Endless.served == 1001


# ------------------------------------------------------------ what is converted and what passes through


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,iVBORw0KGgo=",
        "https://example.com/cat.png",
        "http://example.com/cat.png",
    ],
)
def test_urls_in_a_known_file_field_pass_through_untouched(url: str) -> None:
    assert prepare_input(DEV, {"prompt": "x", "image": url})["image"] == url
    assert prepare_input(PRO2, {"prompt": "x", "input_images": [url, url]})["input_images"] == [url, url]


def test_a_string_in_a_known_file_field_that_is_no_url_must_be_an_existing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.png")
    with pytest.raises(InputValidationError) as caught:
        prepare_input(DEV, {"prompt": "x", "image": missing})
    assert caught.value.field == "image"
    assert caught.value.value == missing


def test_files_in_an_array_field_are_each_converted_and_named_by_index(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png(20))
    body = prepare_input(PRO2, {"prompt": "x", "input_images": (str(path), png(30), "https://e.com/x.png")})
    first, second, third = body["input_images"]
    assert decoded(first) == ("image/png", png(20))
    assert decoded(second) == ("image/png", png(30))
    assert third == "https://e.com/x.png"
    with pytest.raises(InputValidationError) as caught:
        prepare_input(PRO2, {"prompt": "x", "input_images": ["https://e.com/x.png", b"not an image"]})
    assert caught.value.field == "input_images[1]"


def test_a_known_models_other_fields_are_never_read_as_files(tmp_path: Path) -> None:
    path = tmp_path / "prompt.png"
    path.write_bytes(png(20))
    assert prepare_input(DEV, {"prompt": str(path)})["prompt"] == str(path)


def test_an_unknown_models_strings_are_never_read_as_files(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(png(20))
    body = prepare_input(UNKNOWN, {"image": str(path), "text": "data"})
    assert body == {"image": str(path), "text": "data"}


def test_an_unknown_models_local_data_is_converted_wherever_it_is(tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(png(20))
    body = prepare_input(
        UNKNOWN,
        {
            "a": path,
            "b": bytearray(png(21)),
            "c": memoryview(png(22)),
            "d": [png(23), "keep", 5],
            "e": (png(24),),
            "n": 3,
        },
    )
    assert decoded(body["a"])[1] == png(20)
    assert decoded(body["b"])[1] == png(21)
    assert decoded(body["c"])[1] == png(22)
    assert decoded(body["d"][0])[1] == png(23) and body["d"][1:] == ["keep", 5]
    assert [decoded(v)[1] for v in body["e"]] == [png(24)]
    assert body["n"] == 3


def test_the_callers_input_is_not_modified() -> None:
    given: dict[str, Any] = {"image": png(20), "items": [png(21)]}
    prepare_input(UNKNOWN, given)
    assert given == {"image": png(20), "items": [png(21)]}


def test_a_mapping_or_a_generated_input_model_is_accepted_and_anything_else_refused() -> None:
    assert prepare_input(UNKNOWN, MappingProxyType({"prompt": "x"})) == {"prompt": "x"}

    class Typed:
        def to_dict(self) -> dict[str, Any]:
            return {"prompt": "y"}

    assert prepare_input(UNKNOWN, Typed()) == {"prompt": "y"}

    class Broken:
        def to_dict(self) -> list[str]:
            return ["prompt"]

    for bad in (Broken(), ["prompt"], "prompt", None):
        with pytest.raises(InputValidationError) as caught:
            prepare_input(UNKNOWN, bad)
        assert caught.value.field == "input"
        assert caught.value.value is bad


def test_a_missing_path_object_names_the_field_and_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": missing})
    assert caught.value.field == "image"
    assert caught.value.value == str(missing)
    assert "gone.png" in str(caught.value)


def test_a_text_mode_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(png(20))
    with open(path, encoding="latin-1") as handle, pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": handle})
    assert caught.value.field == "image"
    assert caught.value.value == str(path)
    assert "'rb'" in str(caught.value)


# --------------------------------------------------------------------------- the type of the bytes


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    ],
)
def test_image_types_are_sniffed_from_the_bytes_whatever_the_name(head: bytes, mime: str) -> None:
    data = head + b"\0" * 16
    assert decoded(data_url(data, field="image", limit=100)) == (mime, data)
    assert decoded(data_url(data, field="image", name="misleading.txt", limit=100))[0] == mime


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x10\x00\x00\x00WAVEfmt ",  # a RIFF file that is not WEBP
        b"WEBPRIFF\x00\x00\x00\x00",
        b"GIF88a\x00\x00",
        b"gif89a\x00\x00",
        b"\x89PNG\r\n\x1a",  # one byte short of the PNG signature
        b"\xff\xd8",
        b"",
    ],
)
def test_other_bytes_without_a_telling_name_are_refused(data: bytes) -> None:
    with pytest.raises(InputValidationError) as caught:
        data_url(data, field="image", limit=100)
    assert caught.value.field == "image"
    assert caught.value.value == f"<{len(data)} bytes>"
    with pytest.raises(InputValidationError) as caught:
        data_url(data, field="image", name="mystery", limit=100)
    assert caught.value.value == "mystery"


def test_unsniffable_bytes_take_their_type_from_the_file_name() -> None:
    riff = b"RIFF\x10\x00\x00\x00WAVEfmt "
    assert decoded(data_url(riff, field="image", name="still.webp", limit=100)) == ("image/webp", riff)
    assert decoded(data_url(b"plain", field="image", name="x.jpg", limit=100))[0] == "image/jpeg"


def test_a_file_objects_name_gives_the_type_of_unsniffable_content(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"no magic here")
    with open(path, "rb") as handle:
        url = prepare_input(UNKNOWN, {"image": handle})["image"]
    assert decoded(url) == ("image/png", b"no magic here")
    named = io.BytesIO(b"no magic here")
    named.name = "photo.gif"  # type: ignore[attr-defined]
    assert decoded(prepare_input(UNKNOWN, {"image": named})["image"])[0] == "image/gif"
    unnamed = io.BytesIO(b"no magic here")
    with pytest.raises(InputValidationError):
        prepare_input(UNKNOWN, {"image": unnamed})
    numbered = io.BytesIO(b"no magic here")
    numbered.name = 3  # type: ignore[attr-defined]  # like a file opened from a descriptor
    with pytest.raises(InputValidationError):
        prepare_input(UNKNOWN, {"image": numbered})


def test_a_paths_name_gives_the_type_of_unsniffable_content(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpeg"
    path.write_bytes(b"no magic here")
    assert decoded(prepare_input(DEV, {"prompt": "x", "image": str(path)})["image"])[0] == "image/jpeg"
    assert decoded(prepare_input(UNKNOWN, {"image": path})["image"])[0] == "image/jpeg"


# --------------------------------------------------------------------------- model references


@pytest.mark.parametrize(
    ("model", "parts"),
    [
        ("black-forest-labs/flux-schnell", ("black-forest-labs", "flux-schnell")),
        ("a/b.c_d-e", ("a", "b.c_d-e")),
    ],
)
def test_a_model_reference_is_split_into_owner_and_name(model: str, parts: tuple[str, str]) -> None:
    assert split_model(model) == parts


@pytest.mark.parametrize("model", ["flux-schnell", "a/b/c", "/flux", "owner/", "-a/b", "a b/c", ""])
def test_a_malformed_model_reference_names_the_model_field(model: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        split_model(model)
    assert caught.value.field == "model"
    assert caught.value.value == model


@pytest.mark.parametrize("model", [None, 3, ("a", "b"), b"a/b"])
def test_a_model_reference_must_be_a_string(model: object) -> None:
    with pytest.raises(InputValidationError) as caught:
        split_model(model)  # type: ignore[arg-type]
    assert caught.value.field == "model"
    assert caught.value.value is model
