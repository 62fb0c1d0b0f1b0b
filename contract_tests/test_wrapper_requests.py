"""Requests the wrapper sends conform to openapi.yaml; inputs that break a model's schema never leave.

The same method as for the generated client: hypothesis draws from the spec's schemas, respx captures
what `comet_replicate.Client` / `AsyncClient` send, and openapi-core validates each whole request
(method, raw path, Authorization, Content-Type, Prefer, Cancel-After, body; `input` against the
model's x-models schema).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, Client, InputValidationError
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from contract_tests._spec import (
    API_KEY,
    BASE_URL,
    SPEC,
    cancel_after_values,
    component_schema,
    from_schema_strategy,
    known_input_strategy,
    models,
    per_model_examples,
    request_errors,
    schema_errors,
)

EXAMPLES = {k: v["value"] for k, v in SPEC["components"]["examples"].items()}
PREFIX = httpx.URL(BASE_URL).raw_path.decode().rstrip("/")
FILE_PREFIXES = ("http://", "https://", "data:")


@functools.cache
def client() -> Client:
    """One client for the module; respx patches the transport underneath it."""
    c = Client(api_key=API_KEY, base_url=BASE_URL, max_retries=0)
    c._driver.sleep = lambda seconds: None  # polls answer instantly from respx; no wall-clock waits
    return c


def succeeded_for(model: str) -> dict[str, Any]:
    """A finished prediction of `model` whose output has the model's x-models output shape."""
    _, output_schema = models()[model]
    example = EXAMPLES[
        "PredictionSucceededList" if output_schema == "UriListOutput" else "PredictionSucceededString"
    ]
    return {**example, "model": model}


def conforms(request: httpx.Request) -> None:
    assert b"%2F" not in request.url.raw_path.upper(), request.url.raw_path
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    problems = request_errors(request)
    assert not problems, "\n".join(problems)


def wrapper_accepts_file_values(model: str, model_input: dict[str, Any]) -> bool:
    """The wrapper reads a non-URL string in a file field as a local path (documented), so only
    http(s)/data URIs are sent as-is; other URI schemes are out of this test's scope."""
    schema = component_schema(models()[model][0])
    for key, value in model_input.items():
        prop = schema["properties"].get(key, {})
        values = value if isinstance(value, list) else [value]
        is_file = prop.get("format") == "uri" or prop.get("items", {}).get("format") == "uri"
        if is_file and any(isinstance(v, str) and not v.startswith(FILE_PREFIXES) for v in values):
            return False
    return True


@pytest.mark.parametrize("model", sorted(models()))
@settings(max_examples=per_model_examples())
@given(data=st.data())
def test_wrapper_create_for_every_model_input_conforms(model: str, data: st.DataObject) -> None:
    input_schema, _ = models()[model]
    model_input = data.draw(known_input_strategy(input_schema), label="input")
    assume(wrapper_accepts_file_values(model, model_input))
    wait = data.draw(st.none() | st.integers(1, 60), label="wait")
    # Cancel-After strings are drawn by the test below until the wrapper stops reading a pattern.
    _create_conforms(model, model_input, wait, None)


@given(cancel_after=cancel_after_values(), wait=st.none() | st.integers(1, 60))
def test_wrapper_sends_cancel_after_strings_in_the_documented_form(
    cancel_after: str, wait: int | None
) -> None:
    _create_conforms("black-forest-labs/flux-schnell", {"prompt": "A paper boat"}, wait, cancel_after)


def _create_conforms(model: str, model_input: dict[str, Any], wait: int | None, cancel_after: Any) -> None:
    owner, name = model.split("/")
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.post(f"/models/{owner}/{name}/predictions").respond(
            201, json=EXAMPLES["PredictionStarting"]
        )
        prediction = client().predictions.create(model, model_input, wait=wait, cancel_after=cancel_after)
    assert prediction.id == EXAMPLES["PredictionStarting"]["id"]
    sent = route.calls.last.request
    assert sent.url.raw_path == f"{PREFIX}/models/{owner}/{name}/predictions".encode()
    conforms(sent)
    assert json.loads(sent.content) == {"input": model_input}
    assert sent.headers.get("Prefer") == (None if wait is None else f"wait={wait}")
    assert sent.headers.get("Cancel-After") == cancel_after


@given(
    model_input=known_input_strategy("FluxSchnellInput"),
    webhook=st.none() | st.just("https://example.com/hook"),
    events=st.none() | st.lists(from_schema_strategy("WebhookEvent"), max_size=4),
)
def test_wrapper_create_with_webhook_fields_conforms(
    model_input: dict[str, Any], webhook: str | None, events: list[str] | None
) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        route = router.post(path__regex=r"/predictions$").respond(201, json=EXAMPLES["PredictionStarting"])
        client().predictions.create(
            "black-forest-labs/flux-schnell", model_input, webhook=webhook, webhook_events_filter=events
        )
    sent = route.calls.last.request
    conforms(sent)
    body = json.loads(sent.content)
    assert body.get("webhook") == webhook and body.get("webhook_events_filter") == events


@given(prediction_id=from_schema(SPEC["components"]["parameters"]["PredictionId"]["schema"]))
def test_wrapper_get_and_cancel_requests_conform(prediction_id: str) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        get = router.get(f"/predictions/{prediction_id}").respond(200, json=EXAMPLES["PredictionProcessing"])
        cancel = router.post(f"/predictions/{prediction_id}/cancel").respond(
            200, json=EXAMPLES["PredictionCanceled"]
        )
        client().predictions.get(prediction_id)
        client().predictions.cancel(prediction_id)
    assert get.calls.last.request.url.raw_path == f"{PREFIX}/predictions/{prediction_id}".encode()
    assert cancel.calls.last.request.url.raw_path == f"{PREFIX}/predictions/{prediction_id}/cancel".encode()
    conforms(get.calls.last.request)
    conforms(cancel.calls.last.request)


@pytest.mark.parametrize("model", sorted(models()))
def test_every_request_of_a_run_conforms(model: str) -> None:
    """create (sync mode) → polls → succeeded: each request of the whole flow is valid."""
    input_schema, _ = models()[model]
    example_input = component_schema(input_schema)["examples"][0]
    pid = EXAMPLES["PredictionStarting"]["id"]
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.post(path__regex=r"/predictions$").respond(
            201, json={**EXAMPLES["PredictionStarting"], "model": model}
        )
        router.get(f"/predictions/{pid}").mock(
            side_effect=[
                httpx.Response(200, json={**EXAMPLES["PredictionProcessing"], "model": model}),
                httpx.Response(200, json={**succeeded_for(model), "id": pid}),
            ]
        )
        files = client().run(model, example_input, timeout=30)
        sent = [call.request for call in router.calls]
    assert files, "run returned no files"
    assert [r.method for r in sent] == ["POST", "GET", "GET"]
    for request in sent:
        conforms(request)
    assert sent[0].headers["Prefer"].startswith("wait="), "run uses sync mode"


async def test_async_client_sends_the_same_conforming_create() -> None:
    body = {"prompt": "A paper boat", "num_outputs": 2}
    async with AsyncClient(api_key=API_KEY, base_url=BASE_URL, max_retries=0) as aclient:
        with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
            route = router.post(path__regex=r"/predictions$").respond(
                201, json=EXAMPLES["PredictionStarting"]
            )
            await aclient.predictions.create(
                "black-forest-labs/flux-schnell", body, wait=5, cancel_after="5m"
            )
    sent = route.calls.last.request
    conforms(sent)
    assert (sent.headers["Prefer"], sent.headers["Cancel-After"]) == ("wait=5", "5m")


# --- inputs that break the model's schema are refused before any request -----------------------


def invalid_inputs(schema_name: str) -> st.SearchStrategy[dict[str, Any]]:
    """A valid input with one rule of the schema broken: required dropped, an unknown key, an enum
    value outside the list, a number outside its range, or a value of the wrong type."""
    schema = component_schema(schema_name)
    props = schema["properties"]

    def breakers(valid: dict[str, Any]) -> list[st.SearchStrategy[dict[str, Any]]]:
        out: list[st.SearchStrategy[dict[str, Any]]] = [
            st.just({k: v for k, v in valid.items() if k not in schema.get("required", [])}),
            st.text(min_size=1, max_size=8).filter(lambda k: k not in props).map(lambda k: {**valid, k: "x"}),
        ]
        for key, prop in props.items():
            if "enum" in prop:
                out.append(st.just({**valid, key: "not-" + str(prop["enum"][0])}))
            if "maximum" in prop:
                out.append(st.just({**valid, key: prop["maximum"] + 1}))
            if "minimum" in prop:
                out.append(st.just({**valid, key: prop["minimum"] - 1}))
            out.append(st.just({**valid, key: {"wrong": "type"}}))
        return out

    return known_input_strategy(schema_name).flatmap(lambda valid: st.one_of(breakers(valid)))


@pytest.mark.parametrize("model", sorted(models()))
@settings(max_examples=per_model_examples())
@given(data=st.data())
def test_inputs_that_break_the_model_schema_are_refused_before_any_request(
    model: str, data: st.DataObject
) -> None:
    input_schema, _ = models()[model]
    bad = data.draw(invalid_inputs(input_schema), label="invalid input")
    assume(schema_errors(input_schema, bad))  # really invalid per the spec
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        route = router.route().respond(201, json=EXAMPLES["PredictionStarting"])
        with pytest.raises(InputValidationError) as excinfo:
            client().predictions.create(model, bad)
    assert not route.called, "an invalid input reached the network"
    assert excinfo.value.field, "the error must name the field"


async def test_async_run_sends_only_conforming_requests() -> None:
    """AsyncClient's create → poll → cancel-free run: every request valid, same paths as the sync one."""
    model = "black-forest-labs/flux-dev"
    pid = EXAMPLES["PredictionStarting"]["id"]
    async with AsyncClient(api_key=API_KEY, base_url=BASE_URL, max_retries=0) as aclient:
        aclient._driver.sleep = _no_sleep  # polls answer instantly from respx
        with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
            router.post(path__regex=r"/predictions$").respond(
                201, json={**EXAMPLES["PredictionStarting"], "model": model}
            )
            router.get(f"/predictions/{pid}").mock(
                side_effect=[
                    httpx.Response(200, json={**EXAMPLES["PredictionProcessing"], "model": model}),
                    httpx.Response(200, json={**succeeded_for(model), "id": pid}),
                ]
            )
            files = await aclient.run(model, {"prompt": "A lighthouse", "num_outputs": 1}, timeout=30)
            sent = [call.request for call in router.calls]
    assert files and [r.method for r in sent] == ["POST", "GET", "GET"]
    assert [r.url.raw_path for r in sent[1:]] == [f"{PREFIX}/predictions/{pid}".encode()] * 2
    for request in sent:
        conforms(request)


async def _no_sleep(seconds: float) -> None:
    return None
