"""help() on the public classes reads cleanly: `client.predictions` is described, every public method
has a docstring, and no signature shows a sentinel, `Any` default or private annotation."""

from __future__ import annotations

import inspect
import pydoc

import comet_replicate
import pytest
from comet_replicate._resources import AsyncPredictions, AsyncRawPredictions, Predictions, RawPredictions

PUBLIC_CLASSES = [
    comet_replicate.Client,
    comet_replicate.AsyncClient,
    comet_replicate.FileOutput,
    Predictions,
    AsyncPredictions,
    RawPredictions,
    AsyncRawPredictions,
]
LEAKS = ("DERIVED", "<object object", "__annotations__", "Any'", "_driver", "_secret")


def _help(obj: object) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


@pytest.mark.parametrize(
    "cls", [comet_replicate.Client, comet_replicate.AsyncClient], ids=lambda c: c.__name__
)
def test_help_of_a_client_describes_client_predictions(cls: type) -> None:
    text = _help(cls)
    assert "predictions\n |      `client.predictions`:" in text
    for method in ("create", "get", "cancel", "wait", "with_raw_response"):
        assert f"`{method}`" in text.split("predictions\n |      `client.predictions`:")[1][:300]
    assert "Initialize self" not in text  # __init__ says what it does


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_help_shows_no_sentinel_any_default_or_private_annotation(cls: type) -> None:
    text = _help(cls)
    assert not [leak for leak in LEAKS if leak in text], text


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring_of_its_own(cls: type) -> None:
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
            continue
        doc = inspect.getdoc(member) or ""
        assert doc.strip() and not doc.startswith("Return "), f"{cls.__name__}.{name}"


def test_run_shows_its_real_defaults() -> None:
    signature = inspect.signature(comet_replicate.Client.run)
    assert signature.parameters["cancel_after"].default == "timeout"
    assert signature.parameters["timeout"].default == 300.0
    assert signature.parameters["wait"].default == 60
