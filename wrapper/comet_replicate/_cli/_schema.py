"""What the CLI reads from the bundled ``openapi.yaml``: the known models and their input fields.

``models`` and ``-i key=value`` typing need each field's type, default, allowed values and range; they
are read from the contract (through the wrapper's loader ``comet_replicate._spec``), never restated
here. Validation itself stays with the wrapper.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from .. import _spec

__all__ = ["FieldInfo", "ModelInfo", "known_models", "model_info"]


@dataclass(frozen=True)
class FieldInfo:
    """One input field of a model, as ``models MODEL`` shows it."""

    name: str
    schema: dict[str, Any]
    required: bool

    @property
    def types(self) -> list[str]:
        """JSON types allowed (``["integer", "null"]`` for a nullable integer)."""
        raw = self.schema.get("type")
        if raw is None:
            return [str(option.get("type")) for option in self.schema.get("anyOf", []) if "type" in option]
        return [str(t) for t in raw] if isinstance(raw, list) else [str(raw)]

    @property
    def type_text(self) -> str:
        parts = []
        for name in self.types:
            if name == "array":
                item = self.schema.get("items", {}).get("type", "any")
                name = f"array of {item}"
            parts.append(name)
        text = " | ".join(parts) or "any"
        fmt = self.schema.get("format")
        return f"{text} ({fmt})" if fmt else text

    @property
    def default_text(self) -> str:
        return json.dumps(self.schema["default"]) if "default" in self.schema else ""

    @property
    def allowed_text(self) -> str:
        enum = self.schema.get("enum")
        return ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in enum) if enum else ""

    @property
    def range_text(self) -> str:
        s = self.schema
        parts = []
        if "minimum" in s and "maximum" in s:
            parts.append(f"{s['minimum']} to {s['maximum']}")
        elif "minimum" in s:
            parts.append(f">= {s['minimum']}")
        elif "maximum" in s:
            parts.append(f"<= {s['maximum']}")
        if "exclusiveMinimum" in s:
            parts.append(f"> {s['exclusiveMinimum']}")
        if "exclusiveMaximum" in s:
            parts.append(f"< {s['exclusiveMaximum']}")
        for kind, low_key, high_key in (
            ("items", "minItems", "maxItems"),
            ("characters", "minLength", "maxLength"),
        ):
            if low_key in s and high_key in s:
                parts.append(f"{s[low_key]} to {s[high_key]} {kind}")
            elif high_key in s:
                parts.append(f"at most {s[high_key]} {kind}")
            elif low_key in s:
                parts.append(f"at least {s[low_key]} {kind}")
        return "; ".join(parts)

    @property
    def description(self) -> str:
        text = " ".join(str(self.schema.get("description", "")).split())
        if self.schema.get("deprecated"):
            text = f"(deprecated) {text}".strip()
        return text


@dataclass(frozen=True)
class ModelInfo:
    """A model of the contract's ``x-models``: its input schema and output kind."""

    name: str
    input_schema_name: str
    output_schema_name: str
    input_schema: dict[str, Any] = field(repr=False)
    output_schema: dict[str, Any] = field(repr=False)

    @property
    def fields(self) -> list[FieldInfo]:
        required = set(self.input_schema.get("required", []))
        return [
            FieldInfo(name, dict(schema), name in required)
            for name, schema in self.input_schema.get("properties", {}).items()
        ]

    def field(self, name: str) -> FieldInfo | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def output_text(self) -> str:
        return "list of URLs" if self.output_schema.get("type") == "array" else "one URL"

    @property
    def description(self) -> str:
        return " ".join(str(self.input_schema.get("description", "")).split())


@functools.cache
def known_models() -> dict[str, ModelInfo]:
    """Every model of ``x-models``, in the contract's order (read through the wrapper's spec loader)."""
    models: dict[str, ModelInfo] = {}
    for name in _spec.load_spec().get("x-models", {}):
        entry = _spec.model_entry(name)
        input_schema, output_schema = _spec.input_schema(name), _spec.output_schema(name)
        if entry is None or input_schema is None or output_schema is None:
            continue
        models[name] = ModelInfo(
            name=name,
            input_schema_name=str(entry["input"]).rsplit("/", 1)[-1],
            output_schema_name=str(entry["output"]).rsplit("/", 1)[-1],
            input_schema=dict(input_schema),
            output_schema=dict(output_schema),
        )
    return models


def model_info(model: str) -> ModelInfo | None:
    """The contract's description of ``model`` (``owner/name``), or None for a model it does not list."""
    return known_models().get(model)
