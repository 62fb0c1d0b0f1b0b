"""The bundled openapi.yaml, loaded on first use, and validators compiled from it (cached).

The wheel ships the spec as `comet_replicate/openapi.yaml`; an editable or source tree falls back to
the repository's `openapi.yaml`. Input rules and response shapes come only from this file: nothing
here restates a rule of the spec by hand.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "fast_input_check",
    "image_fields",
    "input_schema",
    "input_validator",
    "known_models",
    "load_spec",
    "model_entry",
    "output_schema",
    "schema_validator",
    "spec_path",
]

_LOCK = threading.Lock()


def spec_path() -> Path:
    """Where the bundled spec lives: inside the installed package, else the source tree's root."""
    from importlib.resources import files

    bundled = files("comet_replicate").joinpath("openapi.yaml")
    if bundled.is_file():
        return Path(str(bundled))
    root = Path(__file__).resolve().parents[2] / "openapi.yaml"
    if root.is_file():
        return root
    raise FileNotFoundError(
        "openapi.yaml is missing from the comet_replicate package and no source-tree copy was found"
    )


@functools.cache
def load_spec() -> Mapping[str, Any]:
    """Parse the spec once (libyaml's CSafeLoader when available)."""
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with _LOCK, spec_path().open("rb") as handle:
        loaded = yaml.load(handle, Loader=loader)  # a safe loader either way
    if not isinstance(loaded, dict):
        raise RuntimeError("openapi.yaml did not parse to a mapping")
    return loaded


def known_models() -> list[str]:
    """The `owner/name` of every model in the spec's `x-models`."""
    return sorted(load_spec().get("x-models", {}))


def model_entry(model: str) -> Mapping[str, str] | None:
    """The `x-models` entry (`input`, `output` JSON pointers) of a model, or None if unknown."""
    entry = load_spec().get("x-models", {}).get(model)
    return entry if isinstance(entry, dict) else None


def _resolve(pointer: str) -> Mapping[str, Any]:
    node: Any = load_spec()
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise RuntimeError(f"{pointer} is not a schema object")
    return node


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource

    return Registry().with_resource("urn:comet-replicate-spec", Resource.opaque(load_spec()))


@functools.cache
def schema_validator(pointer: str) -> Validator:
    """A compiled Draft 2020-12 validator for a JSON pointer into the spec (`#/components/schemas/X`)."""
    import json

    from jsonschema import Draft202012Validator

    node = _resolve(pointer)  # fails early on a bad pointer
    # A schema without references is validated directly: resolving a top-level $ref through the
    # registry on every call costs more than the validation itself (every create validates input).
    schema: Any = node if '"$ref"' not in json.dumps(node) else {"$ref": "urn:comet-replicate-spec" + pointer}
    validator: Validator = Draft202012Validator(
        schema,
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    return validator


@functools.cache
def fast_input_check(model: str) -> Callable[[Any], bool] | None:
    """A compiled (Rust) validity test of a known model's input schema, or None when jsonschema-rs is
    unavailable or cannot compile the schema.

    Every create validates its input; jsonschema walks the schema in Python (~40 µs per input), while
    jsonschema-rs answers in about 1 µs. It is only a fast path for the common, valid case: callers
    still ask jsonschema whenever it says no, so the error messages (and the final word) stay
    jsonschema's.
    """
    entry = model_entry(model)
    if entry is None:
        return None
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a declared dependency; the slow path still validates
        return None
    try:
        compiled = jsonschema_rs.Draft202012Validator(dict(_resolve(entry["input"])), validate_formats=True)
    except Exception:  # pragma: no cover - a schema the Rust validator cannot compile: use jsonschema
        return None
    is_valid: Callable[[Any], bool] = compiled.is_valid
    return is_valid


def input_validator(model: str) -> Validator | None:
    """The validator of a known model's input schema; None for models the spec does not describe."""
    entry = model_entry(model)
    return None if entry is None else schema_validator(entry["input"])


def input_schema(model: str) -> Mapping[str, Any] | None:
    """The resolved input schema of a known model."""
    entry = model_entry(model)
    return None if entry is None else _resolve(entry["input"])


def output_schema(model: str) -> Mapping[str, Any] | None:
    """The resolved output schema of a known model."""
    entry = model_entry(model)
    return None if entry is None else _resolve(entry["output"])


@functools.cache
def image_fields(model: str) -> Mapping[str, bool]:
    """The file-input fields of a known model: name → True for arrays of URIs, False for one URI.

    Derived from the schema (`format: uri` properties and arrays of them), not from a list of names.
    """
    schema = input_schema(model)
    if schema is None:
        return {}
    fields: dict[str, bool] = {}
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        if prop.get("format") == "uri":
            fields[name] = False
        elif isinstance(prop.get("items"), dict) and prop["items"].get("format") == "uri":
            fields[name] = True
    return fields
