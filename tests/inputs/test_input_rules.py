"""Input preparation's smaller rules: typo distance, hashing, bounded and non-blocking reads,
JSON-only values, the once-only warnings, and what every refusal carries."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import InputValidationError, UnknownInputFieldWarning, UnknownModelWarning, _inputs
from comet_replicate._inputs import input_sha256, prepare_input

PNG = b"\x89PNG\r\n\x1a\n"
UNKNOWN = "someone/some-model"
DEV = "black-forest-labs/flux-dev"
SCHNELL = "black-forest-labs/flux-schnell"


def png(size: int) -> bytes:
    return PNG + b"\0" * (size - len(PNG))


# --------------------------------------------------------------------------- typo distance


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook full table (no early exit)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i, j in itertools.product(range(1, len(a) + 1), range(1, len(b) + 1)):
        cost = 0 if a[i - 1] == b[j - 1] else 1
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
        if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
            d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _pairs() -> list[tuple[str, str]]:
    rng = random.Random(19)
    pairs = [("", ""), ("", "a"), ("ab", "ba"), ("abc", "acb"), ("ba", "abc"), ("ca", "abc"), ("a", "xyz")]
    pairs += [("aaa", "a"), ("abab", "ab"), ("cdc", "c")]  # a swap check must not wrap around to b's end
    for _ in range(600):
        base = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 7)))
        other = list(base)
        for _ in range(rng.randint(0, 5)):
            op = rng.randrange(4)
            k = rng.randrange(len(other) + 1)
            if op == 0:
                other.insert(k, rng.choice("abcd"))
            elif op == 1 and k < len(other):
                del other[k]
            elif op == 2 and k < len(other):
                other[k] = rng.choice("abcd")
            elif op == 3 and k + 1 < len(other):
                other[k], other[k + 1] = other[k + 1], other[k]
        pairs.append((base, "".join(other)))
    return pairs


def test_typo_distance_is_the_exact_osa_distance_up_to_two_and_more_than_two_beyond() -> None:
    near = far = 0
    for a, b in _pairs():
        expected = _osa(a, b)
        found = _inputs._typo_distance(a, b)
        if expected <= 2:
            near += 1
            assert found == expected, (a, b)
        else:
            far += 1
            assert found > 2, (a, b)
    assert near > 200 and far > 50


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("black-forest-labs/flux-schnel", SCHNELL),  # one deleted
        ("black-forest-labs/flux-schnelll", SCHNELL),  # one inserted
        ("black-forest-labs/flux-schnall", SCHNELL),  # one replaced
        ("black-forest-labs/flux-shcnell", SCHNELL),  # two swapped
        ("BLACK-FOREST-LABS/FLUX-SCHNELL", SCHNELL),  # case is ignored
        ("flux-schnel", SCHNELL),  # no owner: the name alone
        ("black-forest-lab/flux-schnel", SCHNELL),  # the owner a typo too
        ("flux-kontext-prx", "black-forest-labs/flux-kontext-pro"),
        ("black-forest-labsflux-schnell", SCHNELL),  # the slash forgotten
    ],
)
def test_a_model_one_typo_away_is_suggested(typo: str, meant: str) -> None:
    assert _inputs.suggest_model(typo) == meant


@pytest.mark.parametrize(
    "model",
    [
        SCHNELL,  # known: nothing to suggest
        "black-forest-labs/flux-schn",  # two deleted
        "someone/flux-schnel",  # another owner's model of a similar name
        "black-forest-labs/flux-2-dev",  # a sibling, not a typo
        "",
    ],
)
def test_no_suggestion_for_known_models_or_more_than_one_typo(model: str) -> None:
    assert _inputs.suggest_model(model) is None


def test_a_malformed_reference_without_a_close_model_gets_an_example() -> None:
    with pytest.raises(InputValidationError) as caught:
        _inputs.split_model("nothing-like-it")
    assert str(caught.value).endswith("), e.g. 'black-forest-labs/flux-schnell'")
    assert "did you mean" not in str(caught.value)
    with pytest.raises(InputValidationError) as caught:
        _inputs.split_model("flux-schnel")
    assert f"did you mean {SCHNELL!r}?" in str(caught.value)


def test_no_suggestion_for_a_reference_that_is_not_a_string() -> None:
    assert _inputs.suggest_model(3) is None  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the input hash


def test_the_input_hash_is_sha256_of_sorted_compact_utf8_json() -> None:
    data = {"prompt": "é boat", "a": [1, 2.5, True, None]}
    canonical = '{"a":[1,2.5,true,null],"prompt":"é boat"}'
    assert input_sha256(data) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert input_sha256({"x": (1, 2)}) == input_sha256({"x": [1, 2]})


# --------------------------------------------------------------------------- reading files


def test_a_path_is_opened_non_blocking_and_close_on_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docstring's promise: a FIFO swapped in after the check cannot block the open, and the
    descriptor never leaks into a child process."""
    path = tmp_path / "a.png"
    path.write_bytes(png(20))
    seen: list[int] = []
    real_open = os.open

    def spy(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(file) == path:
            seen.append(flags)
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    prepare_input(DEV, {"prompt": "x", "image": str(path)})
    assert len(seen) == 1
    flags = seen[0]
    assert flags & os.O_NONBLOCK and flags & os.O_CLOEXEC
    assert flags & os.O_ACCMODE == os.O_RDONLY


def test_a_path_is_read_with_one_bounded_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png(50))
    sizes: list[int | None] = []
    real_fdopen = os.fdopen

    class Spy:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def fileno(self) -> int:
            return int(self.handle.fileno())

        def read(self, size: int | None = -1) -> bytes:
            sizes.append(size)
            return bytes(self.handle.read(size))

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Spy(real_fdopen(fd, *a, **k)))
    url = prepare_input(DEV, {"prompt": "x", "image": str(path)}, max_data_url_bytes=64)["image"]
    assert url.startswith("data:image/png;base64,")
    assert sizes == [65]  # one byte past the limit, never "read everything"


def test_a_file_that_grows_after_its_size_was_checked_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.png"
    path.write_bytes(png(100))
    real_fstat = os.fstat

    def stale(fd: int) -> os.stat_result:  # the size as it was before the file grew
        r = real_fstat(fd)
        return os.stat_result((r.st_mode, r.st_ino, r.st_dev, r.st_nlink, r.st_uid, r.st_gid, 10, 0, 0, 0))

    monkeypatch.setattr(os, "fstat", stale)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(DEV, {"prompt": "x", "image": str(path)}, max_data_url_bytes=50)
    assert caught.value.field == "image"
    assert caught.value.value == "growing.png"
    assert "larger than 50 bytes" in str(caught.value)


def test_a_directory_is_refused_naming_the_field_and_path(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(DEV, {"prompt": "x", "image": str(tmp_path)})
    assert caught.value.field == "image"
    assert caught.value.value == str(tmp_path)
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": tmp_path})
    assert (caught.value.field, caught.value.value) == ("image", str(tmp_path))


def test_a_path_in_an_array_field_is_named_by_its_index(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.png")
    with pytest.raises(InputValidationError) as caught:
        prepare_input("black-forest-labs/flux-2-pro", {"prompt": "x", "input_images": [missing]})
    assert (caught.value.field, caught.value.value) == ("input_images[0]", missing)


def test_an_oversized_named_file_object_is_named_with_its_real_size(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png(5000))
    with open(path, "rb") as handle, pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": handle}, max_data_url_bytes=100)
    assert caught.value.field == "image"
    assert caught.value.value == str(path)
    assert "5,000 bytes" in str(caught.value)
    assert f"the file {str(path)!r}" in str(caught.value)


def test_an_oversized_stream_of_unknown_size_says_more_than_the_limit() -> None:
    read, write = os.pipe()
    os.write(write, png(300))
    os.close(write)
    with os.fdopen(read, "rb") as pipe, pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": pipe}, max_data_url_bytes=100)
    assert caught.value.value == "<more than 100 bytes>"
    assert "the file is larger than 100 bytes" in str(caught.value)


def test_an_oversized_reader_without_a_descriptor_is_refused_too() -> None:
    class Reader:
        def read(self, size: int = -1) -> bytes:
            return png(max(size, 8))

    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"image": Reader()}, max_data_url_bytes=100)
    assert (caught.value.field, caught.value.value) == ("image", "<more than 100 bytes>")


def test_unsniffable_unnamed_file_object_is_refused_naming_the_field() -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"mask": io.BytesIO(b"no magic")})
    assert caught.value.field == "mask"


@pytest.mark.parametrize("mode", ["loose", "OFF", None])
def test_an_unknown_validation_mode_is_refused_with_the_value(mode: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, {"prompt": "x"}, validation=mode)
    assert (caught.value.field, caught.value.value) == ("input_validation", mode)


def test_a_list_in_a_single_file_field_is_not_read_as_files() -> None:
    """Only fields the schema declares as arrays hold several files; a list elsewhere is sent as
    given, so the refusal names what JSON cannot carry inside it."""
    with pytest.raises(InputValidationError) as caught:
        prepare_input(DEV, {"prompt": "x", "image": [png(20)]})
    assert caught.value.field == "image[0]"


def test_a_single_value_in_an_array_file_field_is_converted_whole(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input("black-forest-labs/flux-2-pro", {"prompt": "x", "input_images": "https://x.test/a.png"})
    assert caught.value.field == "input_images"  # the schema wants an array; the URL was not split up


# --------------------------------------------------------------------------- JSON-only values


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"prompt": "a\ud800b"}, "prompt"),
        ({"prompt": "x", "tags": {1, 2}}, "tags"),
        ({"prompt": "x", "extra": {"deep": [object()]}}, "extra.deep[0]"),
        ({"prompt": "x", "seed": float("nan")}, "seed"),
    ],
)
def test_values_json_cannot_carry_are_refused_with_the_value(value: dict[str, Any], field: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(UNKNOWN, value, validation="off")
    assert caught.value.field == field
    bad = value
    for part in field.replace("[", ".").replace("]", "").split("."):
        bad = bad[int(part)] if isinstance(bad, list) else bad[part]
    assert caught.value.value is bad or caught.value.value == bad or bad != bad


@pytest.mark.parametrize("value", [True, False, None, 0, -3, 2.5, "text"])
def test_json_scalars_are_kept_with_their_type(value: object) -> None:
    sent = prepare_input(UNKNOWN, {"v": value, "nested": [value]}, validation="off")
    assert sent == {"v": value, "nested": [value]}
    assert type(sent["v"]) is type(value) and type(sent["nested"][0]) is type(value)


# --------------------------------------------------------------------------- warnings, once


def test_an_unknown_field_without_a_close_known_field_warns_without_a_suggestion() -> None:
    with pytest.warns(UnknownInputFieldWarning) as caught:
        prepare_input(SCHNELL, {"prompt": "x", "zzzzzz": 1})
    message = str(caught[0].message)
    assert "input.zzzzzz: not in the bundled schema; " in message and "did you mean" not in message


def test_each_close_unknown_model_warns_once() -> None:
    for model in ("black-forest-labs/flux-kontext-prx", "black-forest-labs/flux-kontext-mxx"):
        with pytest.warns(UnknownModelWarning):
            prepare_input(model, {"prompt": "x"})
        with warnings_as_errors():
            prepare_input(model, {"prompt": "x"})  # the second time: silent


def warnings_as_errors() -> Any:
    import warnings

    manager = warnings.catch_warnings()
    manager.__enter__()
    warnings.simplefilter("error")

    class _Exit:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            manager.__exit__(*exc)

    return _Exit()
