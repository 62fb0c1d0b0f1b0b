"""`models` and `models MODEL` show what openapi.yaml says, field by field."""

from __future__ import annotations

import json

from comet_replicate._cli._errors import ExitCode

from tests._spec_helpers import spec

SPEC = spec()


def _schema(ref: str) -> dict:
    return SPEC["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_models_lists_every_model_of_x_models_in_order(cli) -> None:
    result = cli("models", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [m["model"] for m in listed] == list(SPEC["x-models"])
    assert all(m["input_schema"] == SPEC["x-models"][m["model"]]["input"].rsplit("/", 1)[-1] for m in listed)


def test_models_table_names_each_model(cli) -> None:
    result = cli("models")
    assert result.exit_code == 0
    for model in SPEC["x-models"]:
        assert model in result.stdout


def test_models_model_json_carries_every_field_with_its_schema(cli) -> None:
    for model, entry in SPEC["x-models"].items():
        result = cli("models", model, "--json")
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        schema = _schema(entry["input"])
        fields = {f["name"]: f for f in document["fields"]}
        assert list(fields) == list(schema["properties"])
        for name, prop in schema["properties"].items():
            assert fields[name]["required"] == (name in schema.get("required", []))
            for key in ("type", "default", "enum", "minimum", "maximum", "maxItems"):
                assert fields[name].get(key) == prop.get(key), (model, name, key)


def test_models_model_table_shows_type_default_allowed_values_and_range(cli) -> None:
    result = cli("models", "black-forest-labs/flux-schnell")
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "integer" in rows["num_outputs"] and "1 to 4" in rows["num_outputs"]
    assert "webp, jpg, png" in rows["output_format"] and '"webp"' in rows["output_format"]
    assert "0 to 100" in rows["output_quality"]
    assert "boolean" in rows["go_fast"] and "true" in rows["go_fast"]
    assert "yes" in rows["prompt"]


def test_models_model_table_shows_nullable_types_and_item_limits(cli) -> None:
    text = cli("models", "black-forest-labs/flux-2-pro").stdout
    assert "integer | null" in text
    assert "array of string" in text and "at most 8 items" in text


def test_models_unknown_model_is_a_usage_error_naming_the_known_ones(cli) -> None:
    result = cli("models", "someone/unknown-model")
    assert result.exit_code == ExitCode.USAGE
    assert "unknown model 'someone/unknown-model'" in result.stderr
    assert "black-forest-labs/flux-schnell" in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
