"""`comet-replicate contract-check` passes against the emulator and fails against a broken server;
`comet-replicate record` writes valid recordings with the key redacted."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from comet_replicate._cli import main
from comet_replicate_emulator import EmulatorConfig, RunningEmulator, serve
from jsonschema import Draft202012Validator

from contract_tests._spec import SPEC, request_errors, response_errors
from contract_tests.test_recordings import FORMAT, http_request, http_response

TOKEN = "sk-contract-check-token-0123456789"
EXAMPLE = SPEC["components"]["examples"]["PredictionStarting"]["value"]
BROKEN = "https://broken.example/replicate/v1"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with serve(EmulatorConfig(token=TOKEN, speed=200.0, seed=7)) as server:
        yield server


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COMETAPI_KEY", TOKEN)
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    return TOKEN


def test_contract_check_passes_against_the_emulator(
    emulator: RunningEmulator, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["contract-check", "--base-url", emulator.cometapi_base_url, "--json"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured
    report = json.loads(out)
    assert report["ok"] and report["violations"] == []
    methods = [line.split()[0] for line in report["exchanges"]]
    assert "POST" in methods and methods.count("GET") >= 3, report["exchanges"]
    assert any(line.endswith("-> 401") for line in report["exchanges"]), "the invalid key probe got a 401"
    assert key not in out


def _prediction(**changes: Any) -> dict[str, Any]:
    body = {**EXAMPLE, **changes}
    return {k: v for k, v in body.items() if v is not _DROP}


_DROP = object()
# Each broken server answers every request the same wrong way; the check must name the problem.
BROKEN_SERVERS: dict[str, tuple[Callable[[httpx.Request], httpx.Response], str]] = {
    "undocumented-status-code": (lambda r: httpx.Response(418, json={"detail": "teapot"}), "418"),
    "renamed-prediction-status": (
        lambda r: httpx.Response(201 if r.method == "POST" else 200, json=_prediction(status="queued")),
        "queued",
    ),
    "missing-required-field": (
        lambda r: httpx.Response(201 if r.method == "POST" else 200, json=_prediction(created_at=_DROP)),
        "created_at",
    ),
    "undocumented-content-type": (
        lambda r: httpx.Response(404, text="nope", headers={"Content-Type": "text/plain"}),
        "text/plain",
    ),
    "error-body-of-another-shape": (lambda r: httpx.Response(404, json={"oops": "not found"}), "404"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_SERVERS))
def test_contract_check_fails_against_a_broken_server(
    broken: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    responder, expected = BROKEN_SERVERS[broken]
    with respx.mock(assert_all_called=False) as router:
        router.route(host="broken.example").mock(side_effect=responder)
        code = main(["contract-check", "--base-url", BROKEN, "--timeout", "5"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 3, captured
    assert "violation" in out and expected in out, captured
    assert key not in out


def test_contract_check_without_create_makes_no_prediction(
    emulator: RunningEmulator, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = emulator.stats()["predictions_created"]
    assert main(["contract-check", "--base-url", emulator.cometapi_base_url, "--no-create"]) == 0
    assert emulator.stats()["predictions_created"] == before
    assert "no violation" in capsys.readouterr().out


def test_record_writes_valid_recordings_with_the_key_redacted(
    emulator: RunningEmulator, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recordings"
    code = main(
        [
            "record",
            "black-forest-labs/flux-schnell",
            "-p",
            "A paper boat",
            "-i",
            "num_outputs=2",
            "--base-url",
            emulator.cometapi_base_url,
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr()
    files = sorted(out.glob("*.json"))
    assert files, "no recording written"
    methods = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert key not in text, f"the key leaked into {path.name}"
        rec = json.loads(text)
        assert not list(Draft202012Validator(FORMAT).iter_errors(rec)), path.name
        assert rec["name"] == path.stem
        assert rec["request"]["headers"]["Authorization"] == "Bearer <redacted>"
        request = http_request(rec)
        problems = request_errors(request) + response_errors(request, http_response(rec, request))
        assert not problems, (path.name, problems)
        methods.append(rec["request"]["method"])
    assert methods[0] == "POST"
    first = json.loads(files[0].read_text(encoding="utf-8"))
    assert first["request"]["json"] == {"input": {"prompt": "A paper boat", "num_outputs": 2}}


def test_contract_check_refuses_a_malformed_model_before_any_request(
    key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.route().respond(500)
        code = main(["contract-check", "--base-url", BROKEN, "--model", "flux-schnell"])
    assert code == 2
    assert not route.called
    assert "owner/name" in capsys.readouterr().err


async def test_recorder_as_an_async_client_option_writes_valid_recordings(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    from comet_replicate import AsyncClient
    from comet_replicate.contract import Recorder

    recorder = Recorder(tmp_path, emulator.cometapi_base_url, TOKEN, prefix="async-")
    async with (
        httpx.AsyncClient(event_hooks={"response": [recorder.async_hook]}) as http,
        AsyncClient(TOKEN, base_url=emulator.cometapi_base_url, http_client=http) as client,
    ):
        prediction = await client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "A boat"})
        await client.predictions.get(prediction.id)
    assert [p.name for p in recorder.paths] == ["async-001-post-201.json", "async-002-get-200.json"]
    for path in recorder.paths:
        text = path.read_text(encoding="utf-8")
        assert TOKEN not in text
        rec = json.loads(text)
        assert not list(Draft202012Validator(FORMAT).iter_errors(rec)), path.name
        request = http_request(rec)
        assert not request_errors(request) + response_errors(request, http_response(rec, request))
