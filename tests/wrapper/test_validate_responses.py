"""validate_responses=True checks every body against openapi.yaml and names the path and the rule."""

from __future__ import annotations

import pytest
import respx
from comet_replicate import Client, ContractViolation, InternalServerError

from .conftest import BASE, KEY, FakeTime, _fake, prediction


@pytest.fixture
def strict(ft: FakeTime) -> Client:
    c = Client(api_key=KEY, base_url=BASE, validate_responses=True)
    _fake(c, ft)
    c._driver.sleep = ft.sleep
    return c


def test_valid_bodies_pass(strict: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction("processing"))
    assert strict.predictions.get("p1").id == "p1"


@pytest.mark.parametrize(
    ("body", "path", "rule"),
    [
        (prediction(created_at="yesterday"), "$.created_at", "format"),
        (prediction(logs=5), "$.logs", "type"),
        ({k: v for k, v in prediction().items() if k != "model"}, "$", "required"),
        (prediction(metrics={"predict_time": "fast"}), "$.metrics.predict_time", "type"),
    ],
)
def test_a_body_that_breaks_the_spec_names_path_and_rule(
    strict: Client, api: respx.MockRouter, body: dict[str, object], path: str, rule: str
) -> None:
    api.get("/predictions/p1").respond(200, json=body)
    with pytest.raises(ContractViolation) as info:
        strict.predictions.get("p1")
    assert info.value.path == path
    assert info.value.rule == rule
    assert path in str(info.value) and rule in str(info.value)
    assert info.value.prediction_id == "p1"


def test_without_validation_the_lenient_parser_accepts_extra_shapes(
    client: Client, api: respx.MockRouter
) -> None:
    api.get("/predictions/p1").respond(200, json=prediction(logs=5))
    assert client.predictions.get("p1").logs == 5


def test_error_bodies_are_checked_too(strict: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(400, json={"unexpected": True})
    with pytest.raises(ContractViolation, match="ErrorBody"):
        strict.predictions.get("p1")
    api.get("/predictions/p2").respond(502, text="<html>bad gateway</html>")
    with pytest.raises(InternalServerError):
        strict.with_options(max_retries=0).predictions.get("p2")
