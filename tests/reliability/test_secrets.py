"""Secrets: a recognisable key run through every flow must appear nowhere.

Not in reprs of clients or errors, not in error text or tracebacks (including tracebacks that capture
local variables, as error trackers do), not in DEBUG logs of `comet_replicate`, `httpx` and
`httpcore`, not in the CLI's `--debug` output. Downloads never carry Authorization, even when the
file lives on the API's own host or behind a redirect, and a plain-http base URL to a non-loopback
host is refused before any request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from comet_replicate import (
    AsyncClient,
    Client,
    CometReplicateError,
    ContractViolation,
    InputValidationError,
    PredictionAborted,
    UnexpectedStatus,
)
from comet_replicate_emulator import DEFAULT_TIMINGS, EmulatorConfig, Faults, ModelTiming, serve

from tests.reliability._support import CANARY_KEY, RawRequest, RawServer, http_head, prediction_body

MODEL = "black-forest-labs/flux-schnell"
SLOW_MODEL = "black-forest-labs/flux-2-max"


def _config(**changes: Any) -> EmulatorConfig:
    """A fast emulator on which SLOW_MODEL takes minutes, so a short deadline always fires first.

    Speed 5, not more: the server's Cancel-After floor (5 s on the emulator clock) must stay later in
    wall time (1 s) than the CLI's 0.5 s local deadline, or the server cancels first and the run ends
    `canceled` (exit 1) instead of timing out (exit 4).
    """
    timings = {**DEFAULT_TIMINGS, SLOW_MODEL: ModelTiming(queue_s=1.0, run_s=3000.0)}
    return EmulatorConfig(speed=5, timings=timings, **changes)


LOGGERS = ("comet_replicate", "httpx", "httpcore")
FAULT_KINDS = ("error_500", "error_502", "error_503", "html_502", "rate_limit", "drop", "truncate")


class Evidence:
    """Every text a user or a tool could see; `leaks()` lists the ones holding the key."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.errors: list[str] = []

    def add(self, where: str, text: object) -> None:
        self.texts.append((where, str(text)))

    def error(self, where: str, exc: BaseException) -> None:
        self.errors.append(f"{where}: {type(exc).__name__}")
        self.add(f"{where} str", str(exc))
        self.add(f"{where} repr", repr(exc))
        self.add(f"{where} traceback", "".join(traceback.format_exception(exc)))
        self.add(f"{where} args", repr(exc.args))
        # What the CLI's --debug and error trackers show: the attributes of the error, too.
        self.add(f"{where} attributes", repr({k: v for k, v in vars(exc).items() if k != "prediction"}))

    def attempt(self, where: str, call: Callable[[], object]) -> object:
        try:
            result = call()
        except CometReplicateError as exc:
            self.error(where, exc)
            return exc
        self.add(f"{where} result", repr(result))
        return result

    def leaks(self) -> list[str]:
        return [where for where, text in self.texts if CANARY_KEY in text]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            texts.append("".join(traceback.format_exception(record.exc_info[1])))
    return texts


def _sync_flows(client: Client, ev: Evidence, tmp: Path) -> None:
    ev.add("client repr", repr(client))
    ev.add("client str", str(client))
    ev.add("with_options repr", repr(client.with_options(timeout=5, max_retries=1)))
    created = ev.attempt("create", lambda: client.predictions.create(MODEL, {"prompt": "secret flows"}))
    pid = getattr(created, "id", "missing")
    ev.attempt("get", lambda: client.predictions.get(pid))
    ev.attempt("wait", lambda: client.predictions.wait(pid, timeout=30))
    files = ev.attempt("run", lambda: client.run(MODEL, {"prompt": "secret run"}, timeout=30))
    if isinstance(files, list):
        ev.add("output read", len(files[0].read()))
        ev.add("output save", files[0].save(tmp))
        ev.add("output repr", repr(files))
    ev.attempt("resume", lambda: client.resume(pid, timeout=30))
    slow = ev.attempt("create slow", lambda: client.predictions.create(SLOW_MODEL, {"prompt": "to cancel"}))
    slow_id = getattr(slow, "id", "missing")
    ev.attempt("cancel", lambda: client.predictions.cancel(slow_id))
    ev.attempt("wait canceled", lambda: client.predictions.wait(slow_id, timeout=30))
    ev.attempt("get unknown", lambda: client.predictions.get("does-not-exist"))
    ev.attempt("unknown model", lambda: client.predictions.create("black-forest-labs/nope", {"prompt": "x"}))
    ev.attempt("bad input", lambda: client.predictions.create(MODEL, {"prompt": "x", "num_outputs": 99}))
    ev.attempt("bad id", lambda: client.predictions.get(""))
    ev.attempt(
        "deadline",
        lambda: client.run(SLOW_MODEL, {"prompt": "too slow"}, timeout=0.3, wait=None, cancel_after=None),
    )


async def _async_flows(client: AsyncClient, ev: Evidence) -> None:
    ev.add("async client repr", repr(client))
    try:
        created = await client.predictions.create(MODEL, {"prompt": "async secret"})
        ev.add("async create", repr(created))
        ev.add("async wait", repr(await client.predictions.wait(created.id, timeout=30)))
        files = await client.run(MODEL, {"prompt": "async run"}, timeout=30)
        ev.add("async read", len(await files[0].aread()))
        await client.predictions.get("does-not-exist")
    except CometReplicateError as exc:
        ev.error("async get unknown", exc)
    try:
        await client.run(SLOW_MODEL, {"prompt": "too slow"}, timeout=0.3, wait=None, cancel_after=None)
    except CometReplicateError as exc:
        ev.error("async deadline", exc)


def test_key_never_appears_in_reprs_errors_or_debug_logs_of_any_flow(
    debug_logs: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    ev = Evidence()
    with serve(_config(token=CANARY_KEY, seed=1)) as emulator:
        with Client(CANARY_KEY, base_url=emulator.cometapi_base_url) as client:
            _sync_flows(client, ev, tmp_path)

        async def main() -> None:
            async with AsyncClient(CANARY_KEY, base_url=emulator.cometapi_base_url) as client:
                await _async_flows(client, ev)

        asyncio.run(main())
        # Through a caller's own httpx client: requests and downloads go through httpx's `send`
        # (and its logger); the library's own clients hand them straight to their transport.
        with (
            httpx.Client() as mine,
            Client(CANARY_KEY, base_url=emulator.cometapi_base_url, http_client=mine) as own,
        ):
            owned = ev.attempt("own client run", lambda: own.run(MODEL, {"prompt": "own client"}, timeout=30))
            if isinstance(owned, list):
                ev.add("own client read", len(owned[0].read()))
        served = emulator.stats()["requests"]
    # Another server that accepts a different token: a 401 must not echo ours.
    with (
        serve(_config(token="sk-someone-else")) as other,
        Client(CANARY_KEY, base_url=other.cometapi_base_url) as client,
    ):
        ev.attempt("401", lambda: client.predictions.create(MODEL, {"prompt": "x"}))
    ev.attempt("no base", lambda: Client(CANARY_KEY, base_url="http://api.example.com/replicate/v1"))
    for text in _log_texts(debug_logs):
        ev.add("log", text)

    assert ev.leaks() == []
    # The flows really ran: requests of every operation, errors of several kinds, DEBUG lines from all.
    assert {"create", "get", "cancel"} <= set(served)
    kinds = " ".join(ev.errors)
    for name in (
        "AuthenticationError",
        "NotFoundError",
        "InputValidationError",
        "PredictionCanceled",
        "PredictionTimeout",
    ):
        assert name in kinds, f"no {name} was exercised: {kinds}"
    assert {r.name.split(".")[0] for r in debug_logs.records} >= set(LOGGERS)
    assert any("<redacted>" in r.getMessage() for r in debug_logs.records if r.name == "comet_replicate")


@pytest.mark.parametrize("kind", [*FAULT_KINDS, "failed"])
def test_key_never_appears_in_errors_from_injected_faults(
    kind: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    faults = Faults(failed=1.0) if kind == "failed" else Faults(**{kind: 1.0}, retry_after=0.0)
    ev = Evidence()
    with (
        # list_404: a lost create stays an error (no reconciliation, issue 18), whose text is checked too.
        serve(_config(token=CANARY_KEY, seed=2, faults=faults, list_404=frozenset({"cometapi"}))) as emulator,
        Client(CANARY_KEY, base_url=emulator.cometapi_base_url, max_retries=1) as client,
    ):
        outcome = ev.attempt(kind, lambda: client.run(MODEL, {"prompt": "faulty"}, timeout=10))
        ev.attempt(f"{kind} get", lambda: client.predictions.get("some-id", max_retries=0))
    for text in _log_texts(debug_logs):
        ev.add("log", text)
    assert isinstance(outcome, CometReplicateError), f"{kind}: no error came out ({outcome!r})"
    assert ev.leaks() == []


def _respx_prediction(router: respx.MockRouter, body: dict[str, Any]) -> None:
    router.post("/models/black-forest-labs/flux-schnell/predictions").respond(201, json=body)
    router.get(f"/predictions/{body['id']}").respond(200, json=body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (prediction_body("aborted"), PredictionAborted),
        (prediction_body("queued"), UnexpectedStatus),
        ({**prediction_body(), "created_at": 12}, ContractViolation),
    ],
    ids=["aborted", "unknown-status", "contract-violation"],
)
def test_key_never_appears_in_prediction_and_contract_errors(
    body: dict[str, Any], expected: type[Exception], debug_logs: pytest.LogCaptureFixture
) -> None:
    base = "https://api.secret.test/replicate/v1"
    ev = Evidence()
    with (
        respx.mock(base_url=base, assert_all_called=False) as router,
        Client(CANARY_KEY, base_url=base, validate_responses=True) as client,
    ):
        _respx_prediction(router, body)
        outcome = ev.attempt("run", lambda: client.run(MODEL, {"prompt": "x"}, timeout=5))
    assert isinstance(outcome, expected)
    for text in _log_texts(debug_logs):
        ev.add("log", text)
    assert ev.leaks() == []


def test_key_never_appears_in_tracebacks_that_capture_local_variables() -> None:
    """Error trackers (Sentry and the like) record each frame's locals by repr: the key must not be there."""
    error: BaseException | None = None
    with (
        serve(_config(token=CANARY_KEY)) as emulator,
        Client(CANARY_KEY, base_url=emulator.cometapi_base_url) as client,
    ):
        try:
            client.predictions.get("does-not-exist")
        except CometReplicateError as exc:
            error = exc
    assert error is not None
    frames = traceback.TracebackException.from_exception(error, capture_locals=True)
    text = "".join(frames.format())
    assert "client" in text  # the locals really were captured
    leaking = [line.strip()[:120] for line in text.splitlines() if CANARY_KEY in line]
    assert leaking == []


# --------------------------------------------------------------------------- the CLI


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start the CLI (they run side by side; `_finish` collects each one's output)."""
    return subprocess.Popen(
        [sys.executable, "-m", "comet_replicate._cli", *args],
        env=dict(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_cli_debug_output_and_recordings_never_show_the_key(tmp_path: Path) -> None:
    """Every command with --debug (tracebacks included), and the recordings `record` writes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMETAPI")}
    env["COMETAPI_KEY"] = CANARY_KEY
    recordings, rejected = tmp_path / "recordings", tmp_path / "rejected"
    # (label, arguments, expected exit code) — the codes prove each command really ran its path.
    ours = [
        ("run", ["run", MODEL, "--prompt", "cli secret", "--out", str(tmp_path), "--json"], 0),
        ("get 404", ["get", "does-not-exist"], 3),
        ("wait 404", ["wait", "does-not-exist"], 3),
        ("cancel 404", ["cancel", "does-not-exist"], 3),
        ("timeout", ["run", SLOW_MODEL, "--prompt", "slow", "--timeout", "0.5", "--wait", "0"], 4),
        ("bad input", ["run", MODEL, "-i", "num_outputs=99"], 2),
        ("record", ["record", MODEL, "--prompt", "recorded", "--out", str(recordings)], 0),
        ("contract-check", ["contract-check", "--json"], 0),
    ]
    theirs = [
        ("401", ["run", MODEL, "--prompt", "x"], 3),
        ("record 401", ["record", MODEL, "-p", "x", "--out", str(rejected)], 3),
    ]
    started: list[tuple[str, int, subprocess.Popen[str]]] = []
    with (
        serve(_config(token=CANARY_KEY)) as emulator,
        serve(_config(token="sk-someone-else")) as other,
    ):
        for base, commands in ((emulator.cometapi_base_url, ours), (other.cometapi_base_url, theirs)):
            env["COMETAPI_BASE_URL"] = base
            for label, args, code in commands:
                started.append((label, code, _cli(["--debug", *args], env, tmp_path)))
        env["COMETAPI_BASE_URL"] = "http://api.example.com/replicate/v1"
        started.append(("plain http", 2, _cli(["--debug", "get", "x"], env, tmp_path)))
        outputs = [(label, code, _finish(proc)) for label, code, proc in started]

    codes = {label: proc.returncode for label, _, proc in outputs}
    assert codes == {label: code for label, code, _ in outputs}, [
        (lb, p.stderr[-300:]) for lb, _, p in outputs
    ]
    assert any("Traceback" in proc.stderr for _, _, proc in outputs)  # --debug really printed tracebacks
    leaks = [label for label, _, proc in outputs if CANARY_KEY in proc.stdout + proc.stderr]
    assert leaks == []
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert list(recordings.glob("*.json"))
    assert [p.name for p in written if CANARY_KEY.encode() in p.read_bytes()] == []
    assert any("<redacted>" in p.read_text() for p in recordings.glob("*.json"))


# --------------------------------------------------------------------------- downloads


async def _file(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(data))}) + data)


def test_downloads_never_carry_authorization_to_any_host(tmp_path: Path) -> None:
    base = "https://api.secret.test/replicate/v1"

    with RawServer({"/out-0.png": _file}) as files:

        async def redirect(request: RawRequest, writer: asyncio.StreamWriter) -> None:
            head = {"Location": f"{files.base_url}/out-0.png", "Content-Length": "0"}
            writer.write(http_head("302 Found", head))

        files.routes["/moved.png"] = redirect
        outputs = [
            f"{files.base_url}/out-0.png",  # another host
            f"{files.base_url}/moved.png",  # another host that redirects
            "https://api.secret.test/replicate/v1/files/out-0.png",  # the API's own host
        ]
        with respx.mock(assert_all_called=False) as router:
            router.route(host="127.0.0.1").pass_through()
            same_host = router.get("https://api.secret.test/replicate/v1/files/out-0.png").respond(
                200, content=b"\x89PNG\r\n\x1a\n", headers={"content-type": "image/png"}
            )
            body = prediction_body(output=outputs)
            router.post(f"{base}/models/black-forest-labs/flux-schnell/predictions").respond(201, json=body)
            router.get(f"{base}/predictions/p1").respond(200, json=body)
            with Client(CANARY_KEY, base_url=base) as client:
                files_out = client.run(MODEL, {"prompt": "x"}, timeout=10)
                for index, output in enumerate(files_out):
                    output.save(tmp_path / f"sync-{index}.png")

            async def amain() -> None:
                async with AsyncClient(CANARY_KEY, base_url=base) as aclient:
                    for output in await aclient.run(MODEL, {"prompt": "x"}, timeout=10):
                        await output.aread()

            asyncio.run(amain())
            api_calls = [call.request for call in router.calls if call.request.url.host == "api.secret.test"]
        raw = list(files.requests)
    assert len(raw) == 6  # 2 direct + 2 redirect hops, once sync and once async
    assert len(same_host.calls) == 2
    assert all("authorization" not in r.headers for r in raw)
    assert all(CANARY_KEY not in repr(r.headers) for r in raw)
    assert all("authorization" not in call.request.headers for call in same_host.calls)
    # ... while the API calls themselves did carry it (the test would be vacuous otherwise).
    api_only = [r for r in api_calls if "/files/" not in r.url.path]
    assert api_only and all(r.headers["authorization"] == f"Bearer {CANARY_KEY}" for r in api_only)


def test_api_redirects_are_not_followed_with_the_key() -> None:
    base = "https://api.secret.test/replicate/v1"
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.get(f"{base}/predictions/p1").respond(307, headers={"Location": "https://evil.test/steal"})
        evil = router.get("https://evil.test/steal").respond(200, json=prediction_body())
        with Client(CANARY_KEY, base_url=base, max_retries=0) as client, pytest.raises(CometReplicateError):
            client.predictions.get("p1")
    assert not evil.called


# --------------------------------------------------------------------------- plain http


@pytest.mark.parametrize(
    "url",
    [
        "http://api.cometapi.com/replicate/v1",
        "HTTP://API.COMETAPI.COM/replicate/v1",
        "http://10.0.0.5:8000/replicate/v1",
        "http://0.0.0.0:8000/replicate/v1",
        "http://127.0.0.1.nip.io/replicate/v1",
        "http://localhost.example.com/replicate/v1",
        "http://[2001:db8::1]/replicate/v1",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_before_any_request(url: str) -> None:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        for make in (Client, AsyncClient):
            with pytest.raises(CometReplicateError, match=r"(?i)http") as caught:
                make(CANARY_KEY, base_url=url)
            assert CANARY_KEY not in str(caught.value)
            assert not isinstance(caught.value, InputValidationError) or "http" in str(caught.value)
        env = {"COMETAPI_BASE_URL": url, "COMETAPI_KEY": CANARY_KEY}
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            with pytest.raises(CometReplicateError, match=r"(?i)http"):
                Client()
        assert not router.calls


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/replicate/v1",
        "http://localhost:{port}/replicate/v1",
        "http://[::1]:{port}/replicate/v1",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    with serve(EmulatorConfig(token=CANARY_KEY, speed=50), host="127.0.0.1") as emulator:
        target = url.format(port=emulator.port)
        with Client(CANARY_KEY, base_url=target, max_retries=0) as client:
            if "[::1]" in target:
                # The emulator listens on IPv4 only; the point is that the URL is accepted, not refused.
                with pytest.raises(CometReplicateError) as caught:
                    client.predictions.get("p")
                assert "refusing" not in str(caught.value)
            else:
                with pytest.raises(CometReplicateError, match=r"404|[Nn]ot found"):
                    client.predictions.get("does-not-exist")
