"""Construction: key and base URL resolution, refusing plain http off loopback, options, closing."""

from __future__ import annotations

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, Client, CometReplicateError, PollTuning

from .conftest import BASE, KEY, FakeTime, prediction


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    with pytest.raises(CometReplicateError, match="COMETAPI_KEY"):
        Client()
    with pytest.raises(CometReplicateError, match="COMETAPI_KEY"):
        AsyncClient(api_key="  ")


def test_key_and_base_url_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMETAPI_KEY", "sk-env")
    monkeypatch.setenv("COMETAPI_BASE_URL", "http://127.0.0.1:9/replicate/v1/")
    with Client() as c, respx.mock(assert_all_called=True) as router:
        route = router.get("http://127.0.0.1:9/replicate/v1/predictions/p1").respond(200, json=prediction())
        c.predictions.get("p1")
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-env"


def test_default_base_url_is_cometapi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    assert Client(api_key="k").base_url == "https://api.cometapi.com/replicate/v1"


@pytest.mark.parametrize(
    "url", ["http://api.cometapi.com/replicate/v1", "http://10.0.0.5:8000", "http://example.com"]
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(CometReplicateError, match="plain http"):
        Client(api_key=KEY, base_url=url)
    with pytest.raises(CometReplicateError, match="plain http"):
        AsyncClient(api_key=KEY, base_url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:1/replicate/v1", "http://[::1]:8000"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert Client(api_key=KEY, base_url=url).base_url == url.rstrip("/")


def test_bad_base_url_and_bad_options_are_refused() -> None:
    with pytest.raises(CometReplicateError):
        Client(api_key=KEY, base_url="ftp://x")
    with pytest.raises(ValueError):
        Client(api_key=KEY, max_retries=-1)
    with pytest.raises(ValueError):
        Client(api_key=KEY, timeout=0)
    with pytest.raises(ValueError):
        Client(api_key=KEY, timeout=httpx.Timeout(None))


def test_numeric_timeout_bounds_connect_and_read() -> None:
    c = Client(api_key=KEY, timeout=20)
    assert c.timeout.read == 20
    assert c.timeout.connect == 5


def test_with_options_overrides_and_shares_the_connection_pool(client: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction())
    fast = client.with_options(timeout=3, max_retries=0)
    assert fast.max_retries == 0 and fast.timeout.read == 3
    assert client.max_retries == 2
    assert fast._http is client._http
    assert fast.estimator is client.estimator
    fast.predictions.get("p1")
    assert api.calls.last.request.extensions["timeout"]["read"] == 3
    fast.close()
    assert not client._http.is_closed  # the copy does not own the pool


def test_close_closes_our_pool_but_not_a_caller_supplied_one() -> None:
    own = Client(api_key=KEY)
    own.close()
    assert own._http.is_closed
    mine = httpx.Client()
    with Client(api_key=KEY, http_client=mine):
        pass
    assert not mine.is_closed
    mine.close()


async def test_async_client_closes_in_async_with() -> None:
    async with AsyncClient(api_key=KEY) as c:
        pass
    assert c._http.is_closed


def test_caller_supplied_http_client_is_used(api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction())
    mine = httpx.Client(headers={"X-Proxy-Tag": "mine"})
    with Client(api_key=KEY, base_url=BASE, http_client=mine) as c:
        c.predictions.get("p1")
    assert api.calls.last.request.headers["x-proxy-tag"] == "mine"
    assert api.calls.last.request.headers["authorization"] == f"Bearer {KEY}"
    mine.close()


def test_api_key_may_be_a_callable_asked_again_on_each_attempt(api: respx.MockRouter) -> None:
    keys = iter(["sk-a", "sk-b", "sk-c"])
    c = Client(api_key=lambda: next(keys), base_url=BASE)
    c._driver.sleep = lambda s: None
    route = api.get("/predictions/p1").mock(
        side_effect=[httpx.Response(503, text="busy"), httpx.Response(200, json=prediction())]
    )
    c.predictions.get("p1")
    assert [call.request.headers["authorization"] for call in route.calls] == ["Bearer sk-b", "Bearer sk-c"]
    assert "sk-" not in repr(c)
    with pytest.raises(CometReplicateError, match="returned no key"):
        Client(api_key=lambda: "")


def test_with_options_poll_tuning_gives_the_copy_its_own_schedule_only(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    """A batch polls through such a copy (`BATCH_POLL_TUNING`): its waits follow the copy's
    schedule, while the original client's waits keep theirs."""
    bodies = [prediction("starting"), prediction("processing"), prediction("succeeded")]
    api.get("/predictions/p1").mock(side_effect=[httpx.Response(200, json=b) for b in bodies * 2])
    slow = client.with_options(poll_tuning=PollTuning(first=0.7, growth=1.0, cap=0.7, jitter=0.0))
    slow.predictions.wait("p1")
    assert ft.sleeps == [0.7, 0.7]
    ft.sleeps.clear()
    client.predictions.wait("p1")
    assert ft.sleeps and all(s < 0.7 for s in ft.sleeps), "the original's cold schedule starts at 0.1 s"
    assert client.with_options(max_retries=0).rate_limits == client.rate_limits  # one pacer still
