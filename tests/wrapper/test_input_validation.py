"""Input validation that cannot block a valid request (issue 12 item 1) and inputs JSON cannot carry
(issue 13 items 5 and 8, issue 14 item 7): each refusal names the field and, for a schema rule, the way
around it."""

from __future__ import annotations

import io
import logging
import math
import os
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import InputValidationError, UnknownInputFieldWarning, UnknownModelWarning, _inputs
from comet_replicate._inputs import (
    input_sha256,
    parse_cancel_after,
    prepare_input,
    split_model,
    suggest_model,
    validate_input,
)
from comet_replicate._spec import fast_input_check, input_validator, known_models
from hypothesis import given, settings
from hypothesis import strategies as st

SCHNELL = "black-forest-labs/flux-schnell"
FLUX2 = "black-forest-labs/flux-2-pro"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture(autouse=True)
def fresh_warning_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no (model, field) warned yet: the registry is per process by design."""
    monkeypatch.setattr(_inputs, "_WARNED", set())


def _silently(model: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return prepare_input(model, data, **kwargs)


# --- the acceptance of issue 12 -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["strict", "warn", "off"])
def test_flux_2_pro_with_replicates_own_prompt_upsampling_example_passes_in_every_mode(mode: Any) -> None:
    data = {"prompt": "x", "prompt_upsampling": False}
    assert _silently(FLUX2, data, validation=mode) == data


def test_an_unknown_field_warns_with_the_closest_known_field_and_is_sent_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = {"prompt": "x", "aspect_ration": "16:9"}
    with (
        caplog.at_level(logging.WARNING, logger="comet_replicate"),
        pytest.warns(UnknownInputFieldWarning, match="did you mean 'aspect_ratio'") as caught,
    ):
        sent = prepare_input(SCHNELL, data)
    assert sent == data, "the request goes out with the field as given"
    assert len(caught) == 1 and "aspect_ration" in str(caught[0].message)
    assert [r.getMessage() for r in caplog.records] == [str(caught[0].message)]


def test_the_unknown_field_warning_comes_once_per_model_and_field() -> None:
    with pytest.warns(UnknownInputFieldWarning) as caught:
        for _ in range(3):
            prepare_input(SCHNELL, {"prompt": "x", "aspect_ration": "16:9"})
        prepare_input(SCHNELL, {"prompt": "x", "num_output": 2})
        prepare_input("black-forest-labs/flux-dev", {"prompt": "x", "aspect_ration": "16:9"})
    assert len(caught) == 3
    assert _silently(SCHNELL, {"prompt": "x", "aspect_ration": "16:9"})["aspect_ration"] == "16:9"


def test_strict_refuses_the_unknown_field_naming_it_the_suggestion_and_the_way_around() -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(SCHNELL, {"prompt": "x", "aspect_ration": "16:9"}, validation="strict")
    error = caught.value
    assert error.field == "aspect_ration" and error.value == "16:9"
    assert "did you mean 'aspect_ratio'" in str(error)
    assert "input_validation='warn'" in str(error) and "--validate" in str(error)


def test_off_sends_an_unknown_field_silently_and_skips_the_schema() -> None:
    data = {"prompt": "x", "aspect_ration": "16:9", "num_outputs": 99}
    assert _silently(SCHNELL, data, validation="off") == data


@pytest.mark.parametrize("mode", ["strict", "warn"])
def test_an_out_of_range_known_field_is_refused_and_the_refusal_says_how_to_bypass(mode: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(SCHNELL, {"prompt": "x", "num_outputs": 9}, validation=mode)
    error = caught.value
    assert (error.field, error.value) == ("num_outputs", 9)
    assert (
        "1 to 4" in str(error) and "input_validation='off'" in str(error) and "--validate off" in str(error)
    )


@pytest.mark.parametrize("bad", ["loose", "", None, "OFF"])
def test_an_unknown_validation_mode_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(SCHNELL, {"prompt": "x"}, validation=bad)
    assert caught.value.field == "input_validation"


def test_validate_input_keeps_its_old_call_and_learns_the_modes() -> None:
    validate_input(SCHNELL, {"prompt": "x"})
    with pytest.raises(InputValidationError):
        validate_input(SCHNELL, {"prompt": "x", "aspect_ration": "1:1"}, validation="strict")
    validate_input(SCHNELL, {"prompt": 3}, validation="off")


# --- model names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("typo", ["flux-schnel", "flux-schnell", "FLUX-schnell", "flux_schnell"])
def test_a_malformed_model_name_gets_the_closest_known_model_before_anything_is_sent(typo: str) -> None:
    with pytest.raises(InputValidationError, match="did you mean 'black-forest-labs/flux-schnell'"):
        split_model(typo)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("black-forest-labs/flux-schnel", "black-forest-labs/flux-schnell"),
        ("black-forest-lab/flux-dev", "black-forest-labs/flux-dev"),
        ("black-forest-labs/flux-kontext-por", "black-forest-labs/flux-kontext-pro"),
        ("blackforestlabs/flux-1.1-pro", None),
    ],
)
def test_suggest_model_takes_one_typo_and_no_more(typo: str, meant: str | None) -> None:
    assert suggest_model(typo) == meant


def test_a_close_unknown_model_warns_with_a_suggestion_and_is_still_allowed() -> None:
    with pytest.warns(UnknownModelWarning, match="did you mean 'black-forest-labs/flux-schnell'"):
        sent = prepare_input("black-forest-labs/flux-schnel", {"prompt": "x", "anything": [1, 2]})
    assert sent == {"prompt": "x", "anything": [1, 2]}
    assert split_model("black-forest-labs/flux-schnel") == ("black-forest-labs", "flux-schnel")


@pytest.mark.parametrize(
    "model",
    [
        "black-forest-labs/flux-2-dev",
        "black-forest-labs/flux-2-flex",
        "black-forest-labs/flux-kontext-apps",
        "stability-ai/sdxl",
        "someone/flux-dev-lora",
    ],
)
def test_real_models_the_spec_does_not_describe_get_no_suggestion(model: str) -> None:
    assert suggest_model(model) is None
    assert _silently(model, {"prompt": "x"}) == {"prompt": "x"}


def test_off_gives_no_model_hint_either() -> None:
    assert _silently("black-forest-labs/flux-schnel", {"prompt": "x"}, validation="off") == {"prompt": "x"}


# --- the compiled fast path and jsonschema agree ---------------------------------------------------

JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150)
@given(
    model=st.sampled_from(known_models()),
    extra=st.dictionaries(
        st.sampled_from(
            [
                "prompt",
                "num_outputs",
                "aspect_ratio",
                "input_images",
                "seed",
                "width",
                "output_quality",
                "go_fast",
                "prompt_upsampling",
                "made_up",
            ]
        ),
        JSONISH | st.tuples(JSONISH, JSONISH),
        max_size=4,
    ),
)
def test_the_fast_check_never_accepts_what_jsonschema_refuses(model: str, extra: dict[str, Any]) -> None:
    plain = _inputs._plain({"prompt": "x", **extra})
    fast, slow = fast_input_check(model), input_validator(model)
    assert fast is not None and slow is not None
    try:
        quick = fast(plain)
    except (ValueError, TypeError, OverflowError):
        return  # the fast path falls back to jsonschema
    assert quick == slow.is_valid(plain), plain


def test_a_tuple_in_an_array_field_is_sent_as_a_list_and_both_validators_accept_it() -> None:
    data = _silently(FLUX2, {"prompt": "x", "input_images": ("https://x.test/a.png", "https://x.test/b.png")})
    assert data["input_images"] == ["https://x.test/a.png", "https://x.test/b.png"]
    fast = fast_input_check(FLUX2)
    validator = input_validator(FLUX2)
    assert fast is not None and validator is not None
    assert fast(data) and validator.is_valid(data)


# --- files: special files, bounded reads, real sizes -----------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("as_path", [True, False])
def test_dev_zero_as_an_image_is_refused_by_field_without_reading_it(as_path: bool) -> None:
    value: Any = Path("/dev/zero") if as_path else "/dev/zero"
    with pytest.raises(InputValidationError, match="not a regular file") as caught:
        prepare_input("black-forest-labs/flux-dev", {"prompt": "x", "image": value})
    assert caught.value.field == "image"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_an_image_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            prepare_input(FLUX2, {"prompt": "x", "input_images": [fifo]})
        except BaseException as exc:  # collected for the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], InputValidationError)
    assert outcome[0].field == "input_images[0]" and "not a regular file" in str(outcome[0])


def test_a_directory_as_an_image_is_refused_by_field(tmp_path: Path) -> None:
    with pytest.raises(InputValidationError, match="not a regular file") as caught:
        prepare_input("black-forest-labs/flux-kontext-pro", {"prompt": "x", "input_image": tmp_path})
    assert caught.value.field == "input_image"


def test_the_data_url_size_error_shows_the_files_real_size_not_the_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\0" * (2_258_280 - len(PNG)))
    for value in (big, str(big)):
        with pytest.raises(InputValidationError) as caught:
            prepare_input("black-forest-labs/flux-dev", {"prompt": "x", "image": value})
        assert "2,258,280 bytes" in str(caught.value) and "262,145" not in str(caught.value)
        assert "max_data_url_bytes" in str(caught.value)
    with big.open("rb") as handle, pytest.raises(InputValidationError) as caught:
        prepare_input("black-forest-labs/flux-dev", {"prompt": "x", "image": handle})
    assert "2,258,280 bytes" in str(caught.value)
    with pytest.raises(InputValidationError, match="larger than 262,144 bytes"):
        prepare_input("black-forest-labs/flux-dev", {"prompt": "x", "image": io.BytesIO(big.read_bytes())})


def test_a_regular_image_file_still_becomes_a_data_url(tmp_path: Path) -> None:
    image = tmp_path / "ok.png"
    image.write_bytes(PNG)
    data = _silently("black-forest-labs/flux-dev", {"prompt": "x", "image": image})
    assert data["image"].startswith("data:image/png;base64,")


# --- values JSON cannot carry are refused by field in every mode ------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("model", [SCHNELL, "someone/new-model"])
@pytest.mark.parametrize("mode", ["strict", "warn", "off"])
def test_deeply_nested_input_is_refused_by_field_not_a_recursion_error(model: str, mode: Any) -> None:
    with pytest.raises(InputValidationError, match="nesting deeper") as caught:
        _silently(model, {"prompt": "x", "extra": _nested(sys.getrecursionlimit() * 3)}, validation=mode)
    assert caught.value.field is not None and caught.value.field.startswith("extra.a.a")


def test_a_deep_list_is_refused_too() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(InputValidationError, match="nesting deeper") as caught:
        prepare_input("someone/new-model", {"prompt": value})
    assert caught.value.field is not None and caught.value.field.startswith("prompt[0]")


@pytest.mark.parametrize("model", [SCHNELL, "someone/new-model"])
def test_a_lone_surrogate_in_the_prompt_is_refused_by_field(model: str) -> None:
    with pytest.raises(InputValidationError, match="surrogate") as caught:
        prepare_input(model, {"prompt": "a boat \ud800 at sea"})
    assert caught.value.field == "prompt"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({1, 2}, "set"),
        (object(), "object"),
        (PNG, "data URL"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (10**5000, "integer"),
    ],
    ids=["set", "object", "bytes", "nan", "inf", "huge-int"],
)
def test_values_json_cannot_carry_in_an_unknown_models_input_are_refused_by_field(
    value: Any, fragment: str
) -> None:
    data = {"prompt": "x", "settings": {"values": [1, value]}}
    if isinstance(value, bytes):
        data = {"prompt": "x", "image": value}
        assert prepare_input("someone/new-model", data)["image"].startswith("data:"), fragment
        return
    with pytest.raises(InputValidationError) as caught:
        prepare_input("someone/new-model", data, validation="off")
    assert caught.value.field == "settings.values[1]"


def test_non_string_keys_are_refused_by_field() -> None:
    with pytest.raises(InputValidationError, match="keys must be strings") as caught:
        prepare_input("someone/new-model", {"prompt": "x", "weights": {("a", "b"): 1}})
    assert caught.value.field == "weights"


def test_enum_members_and_other_subclasses_are_sent_as_their_plain_values() -> None:
    from comet_replicate_api.models import FluxSchnellInputAspectRatio

    data = _silently(SCHNELL, {"prompt": "x", "aspect_ratio": FluxSchnellInputAspectRatio("16:9")})
    assert data["aspect_ratio"] == "16:9" and type(data["aspect_ratio"]) is str


# --- helpers for other layers ---------------------------------------------------------------------


def test_input_sha256_is_the_same_for_the_same_input_in_any_key_order() -> None:
    one = input_sha256({"prompt": "x", "seed": 1, "input_images": ("https://x.test/a.png",)})
    two = input_sha256({"input_images": ["https://x.test/a.png"], "seed": 1, "prompt": "x"})
    assert one == two and len(one) == 64
    assert one != input_sha256({"prompt": "x", "seed": 2, "input_images": ["https://x.test/a.png"]})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("2h", 7200.0), ("1h30m45s", 5445.0), ("1m5s", 65.0)],
)
def test_parse_cancel_after_reads_replicates_documented_forms(text: str, seconds: float) -> None:
    assert parse_cancel_after(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "5x", "m", "1.5m", "5s1m", "-5", "٣"])
def test_parse_cancel_after_refuses_anything_else_by_field(text: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        parse_cancel_after(text)
    assert caught.value.field == "cancel_after"


def test_the_client_sends_an_unknown_field_with_a_warning_by_default(client: Any, api: Any) -> None:
    import json

    from tests.wrapper.conftest import CREATE_PATH, prediction

    api.post(CREATE_PATH).respond(201, json=prediction())
    with pytest.warns(UnknownInputFieldWarning, match="did you mean 'num_outputs'"):
        client.predictions.create(SCHNELL, {"prompt": "b", "num_output": 2})
    assert json.loads(api.calls.last.request.content)["input"] == {"prompt": "b", "num_output": 2}
