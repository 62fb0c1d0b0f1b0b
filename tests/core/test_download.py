"""The download flow (`core.download.download`) over `Fetch` effects, with scripted answers."""

from __future__ import annotations

import base64
import io
import ipaddress
import random
import socket

import httpx
import pytest
from comet_replicate import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    CometReplicateError,
    NotFoundError,
    OutputExpired,
)
from comet_replicate._generated import prediction_from_dict
from comet_replicate.core.download import DownloadPolicy, download, link_local_refusal, short_url
from comet_replicate.core.effects import Fetched, OverCap
from comet_replicate.core.parse import file_urls

from ._script import FakeClock, Script, prediction

URL = "https://delivery.test/p1/out-0.webp"


def _ok(content_type: str = "image/webp") -> Fetched:
    return Fetched(200, httpx.Headers({"content-type": content_type}))


def _status(code: int, **headers: str) -> Fetched:
    return Fetched(code, httpx.Headers(headers))


def _download(
    script: Script,
    url: str = URL,
    *,
    sink: io.BytesIO | None = None,
    prediction_id: str | None = None,
    **policy: object,
) -> tuple[str | None, bytes]:
    """Run the flow against the script: the content type it returns and what reached the sink."""
    sink = sink if sink is not None else io.BytesIO()
    flow = download(
        url,
        sink,
        DownloadPolicy(**policy),  # type: ignore[arg-type]
        clock=script.clock.monotonic,
        wall_clock=script.clock.wall,
        rng=random.Random(0),
        prediction_id=prediction_id,
    )
    return script.run(flow), sink.getvalue()


def test_a_2xx_returns_the_content_type_and_the_effect_carries_the_bounds() -> None:
    script = Script.of(_ok())
    content_type, _ = _download(script, max_bytes=1234, total_timeout=30.0)
    assert content_type == "image/webp"
    (fetch,) = script.fetches
    assert fetch.url == URL and fetch.max_bytes == 1234 and fetch.total == 30.0
    assert fetch.allow_link_local is False


def test_a_body_over_the_cap_ends_in_an_error_naming_the_limit() -> None:
    script = Script.of(OverCap(1234))
    with pytest.raises(CometReplicateError, match="1,234-byte limit"):
        _download(script, max_bytes=1234)
    assert len(script.fetches) == 1


def test_transient_failures_are_retried_within_the_budget() -> None:
    script = Script.of(httpx.ConnectError("refused"), _status(503), _ok())
    assert _download(script)[0] == "image/webp"
    assert len(script.fetches) == 3 and len(script.sleeps) == 2


def test_a_retry_after_on_a_download_is_honoured() -> None:
    script = Script.of(_status(429, **{"retry-after": "2"}), _ok())
    _download(script)
    assert script.sleeps == [2.0]


def test_a_missing_file_is_a_typed_status_error() -> None:
    script = Script.of(_status(404))
    with pytest.raises(NotFoundError, match="download failed with HTTP 404"):
        _download(script)
    assert len(script.fetches) == 1


@pytest.mark.parametrize(
    ("error", "typed"),
    [
        (httpx.ReadTimeout("slow"), APITimeoutError),
        (httpx.ConnectTimeout("slow"), APITimeoutError),
        (httpx.RemoteProtocolError("cut"), APIConnectionError),
        (httpx.ConnectError("refused"), APIConnectionError),
    ],
)
def test_failures_that_outlive_the_retries_are_typed(error: httpx.TransportError, typed: type) -> None:
    """Exactly: a timeout is an APIConnectionError too, and the others are no timeouts. The error
    names the GET and the output's URL, and its cause is the transport's own error."""
    script = Script.of(error, error)
    with pytest.raises(typed) as info:
        _download(script, max_retries=1)
    assert type(info.value) is typed
    assert (info.value.method, info.value.url) == ("GET", URL)
    assert info.value.__cause__ is error


def test_a_redirect_loop_is_not_retried() -> None:
    script = Script.of(httpx.TooManyRedirects("loop"))
    with pytest.raises(APIConnectionError):
        _download(script)
    assert len(script.fetches) == 1


def test_the_total_deadline_spans_retries_and_each_fetch_gets_what_is_left() -> None:
    clock = FakeClock()

    def slow_failure(effect: object) -> object:
        clock.now += 4.0
        return httpx.ReadTimeout("slow")

    script = Script.of(slow_failure, slow_failure, clock=clock)
    with pytest.raises(APITimeoutError, match="took longer than 5 s"):
        _download(script, total_timeout=5.0, max_retries=5)
    assert script.fetches[0].total == 5.0
    assert script.fetches[1].total is not None and script.fetches[1].total < 1.0


def test_data_urls_are_decoded_without_any_request() -> None:
    script = Script.of()
    url = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    assert _download(script, url) == ("image/png", b"\x89PNG")
    assert script.fetches == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:image/png;base64,abc", "malformed"),
        ("data:image/png;base64", "malformed"),
        ("data:text/plain," + "x" * 20, "limit"),
        ("ftp://files.test/a.png", "only http"),
        ("https://", "refusing"),
        ("http://[::1/out.png", "refusing"),
    ],
)
def test_bad_urls_are_refused_before_any_request(url: str, message: str) -> None:
    script = Script.of()
    with pytest.raises(CometReplicateError, match=message):
        _download(script, url, max_bytes=10)
    assert script.fetches == []


@pytest.mark.parametrize("status", [403, 404, 410])
def test_a_deleted_output_of_a_known_prediction_is_output_expired(status: int) -> None:
    script = Script.of(_status(status))
    with pytest.raises(OutputExpired) as info:
        _download(script, prediction_id="p1")
    assert (info.value.prediction_id, info.value.url, info.value.status) == ("p1", URL, status)
    assert "about an hour" in str(info.value)
    assert len(script.fetches) == 1


def test_data_removed_on_a_finished_prediction_is_output_expired() -> None:
    removed = prediction_from_dict(prediction("succeeded", output=None, data_removed=True))
    with pytest.raises(OutputExpired) as info:
        file_urls(removed)
    assert info.value.prediction_id == "p1" and info.value.url is None


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[fe80::1]/x.png",
        "http://[::ffff:169.254.169.254]/x.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata.google.internal./computeMetadata/v1/",  # the same name, fully qualified
    ],
)
def test_link_local_outputs_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(CometReplicateError, match="allow_link_local_downloads"):
        _download(Script.of(), url)
    script = Script.of(_ok())
    _download(script, url, allow_link_local=True)
    assert script.fetches[0].allow_link_local is True


@pytest.mark.parametrize(
    "host",
    ["metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal", "Metadata"],
)
def test_every_cloud_metadata_service_name_is_refused(host: str) -> None:
    """Google's and EC2's names for their metadata services (which answer at a link-local address)."""
    refusal = link_local_refusal(f"http://{host}/latest/meta-data/")
    assert refusal is not None and "link-local" in str(refusal)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5/x.png", "http://127.0.0.1:9/x.png", "https://delivery.test/x"]
)
def test_other_hosts_are_not_link_local(url: str) -> None:
    assert link_local_refusal(url) is None


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x.png"])
def test_a_parsed_url_is_judged_as_its_text_is(url: str) -> None:
    """A request's URL (already parsed) gets the same refusal, with the same message, as its text."""
    by_text, by_url = link_local_refusal(url), link_local_refusal(httpx.URL(url))
    assert by_text is not None and by_url is not None and str(by_url) == str(by_text)
    assert link_local_refusal(httpx.URL("http://10.0.0.5/x.png")) is None


# --------------------------------------------------------------------------- redirects, followed by the flow


def _redirect(location: str, status: int = 302) -> Fetched:
    return _status(status, location=location)


@pytest.mark.parametrize(
    ("location", "followed"),
    [
        ("https://cdn.test/x/out-0.webp", "https://cdn.test/x/out-0.webp"),  # absolute
        ("/moved/out-0.webp", "https://delivery.test/moved/out-0.webp"),  # relative to the host
        ("other.webp", "https://delivery.test/p1/other.webp"),  # relative to the path
        ("https:///moved/out-0.webp", "https://delivery.test/moved/out-0.webp"),  # absolute without a host
        ("http://cdn.test/out-0.webp", "http://cdn.test/out-0.webp"),  # https -> http, as httpx allows
    ],
)
def test_a_redirect_is_one_more_fetch_of_the_location_resolved_as_httpx_resolves_it(
    location: str, followed: str
) -> None:
    script = Script.of(_redirect(location), _ok())
    assert _download(script)[0] == "image/webp"
    first, second = script.fetches
    assert first.url == URL and first.parsed == httpx.URL(URL)
    assert second.url == followed and second.parsed == httpx.URL(followed)
    assert script.sleeps == []  # a hop is not a retry


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_redirect_status_httpx_follows_is_followed(status: int) -> None:
    script = Script.of(_redirect("https://cdn.test/a.webp", status), _ok())
    _download(script)
    assert [fetch.url for fetch in script.fetches] == [URL, "https://cdn.test/a.webp"]


@pytest.mark.parametrize("status", [300, 304, 302])
def test_a_3xx_that_httpx_would_not_follow_is_a_status_error(status: int) -> None:
    answer = _status(status) if status == 302 else _redirect("https://cdn.test/a.webp", status)
    script = Script.of(answer)  # a 302 without a Location, or a status httpx never follows
    with pytest.raises(CometReplicateError, match=f"HTTP {status}"):
        _download(script)
    assert len(script.fetches) == 1


def test_a_fragment_is_kept_across_a_redirect_that_names_none() -> None:
    script = Script.of(_redirect("https://cdn.test/a.webp"), _ok())
    _download(script, URL + "#frag")
    assert script.fetches[1].url == "https://cdn.test/a.webp#frag"


def test_twenty_redirects_are_followed_and_the_twenty_first_fails_without_a_retry() -> None:
    hops = [_redirect(f"https://cdn.test/{n}.webp") for n in range(20)]
    script = Script.of(*hops, _ok())
    _download(script)
    assert len(script.fetches) == 21
    script = Script.of(*hops, _redirect("https://cdn.test/21.webp"))
    with pytest.raises(APIConnectionError, match="TooManyRedirects"):
        _download(script)
    assert len(script.fetches) == 21 and script.sleeps == []


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x", "http://metadata.google.internal/"],
)
def test_a_redirect_to_a_link_local_host_is_refused_before_it_is_fetched(location: str) -> None:
    script = Script.of(_redirect(location))
    with pytest.raises(CometReplicateError, match="link-local"):
        _download(script)
    assert [fetch.url for fetch in script.fetches] == [URL]
    allowed = Script.of(_redirect(location), _ok())
    _download(allowed, allow_link_local=True)
    assert allowed.fetches[1].parsed == httpx.URL(location)


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://files.test/a.png", "data:,x"])
def test_a_redirect_to_another_scheme_is_refused_without_a_retry(location: str) -> None:
    script = Script.of(_redirect(location))
    with pytest.raises(CometReplicateError, match="only http"):
        _download(script)
    assert len(script.fetches) == 1 and script.sleeps == []


def test_a_location_that_is_no_url_is_a_protocol_error_retried_like_one() -> None:
    bad = _redirect("http://[::1/x")
    script = Script.of(bad, bad, bad)
    with pytest.raises(APIConnectionError, match="RemoteProtocolError"):
        _download(script, max_retries=2)
    assert len(script.fetches) == 3 and len(script.sleeps) == 2


def test_a_retry_after_a_redirect_starts_over_at_the_outputs_url_with_a_fresh_hop_count() -> None:
    hops = [_redirect(f"https://cdn.test/{n}.webp") for n in range(20)]
    script = Script.of(*hops, _status(503), *hops, _ok())
    _download(script)
    assert script.fetches[21].url == URL and len(script.fetches) == 42 and len(script.sleeps) == 1


def test_a_deleted_output_behind_a_redirect_is_output_expired_naming_the_outputs_url() -> None:
    script = Script.of(_redirect("https://cdn.test/gone.webp"), _status(404))
    with pytest.raises(OutputExpired) as info:
        _download(script, prediction_id="p1")
    assert info.value.url == URL


def test_every_hop_gets_what_is_left_of_the_total_deadline() -> None:
    clock = FakeClock()

    def slow_redirect(effect: object) -> Fetched:
        clock.now += 3.0
        return _redirect("https://cdn.test/a.webp")

    script = Script.of(slow_redirect, slow_redirect, clock=clock)
    with pytest.raises(APITimeoutError, match="took longer than 5 s"):
        _download(script, total_timeout=5.0)
    assert script.fetches[0].total == 5.0
    assert script.fetches[1].total is not None and script.fetches[1].total <= 2.0


@pytest.mark.parametrize(
    "url",
    [
        "http://2852039166/latest/meta-data/",  # one 32-bit number
        "http://0xA9FEA9FE/latest/meta-data/",  # in hex
        "http://0xa9.0xfe.0xa9.0xfe/",  # each part in hex
        "http://169.254.43518/",  # the last two parts as one
        "http://169.254.169.254./",  # a trailing dot
    ],
)
def test_a_link_local_address_in_any_spelling_the_resolver_reads_is_refused(url: str) -> None:
    """httpx parses only dotted decimal as an address and passes these on as names, which the
    C library's resolver then reads as 169.254.169.254."""
    refusal = link_local_refusal(url)
    assert refusal is not None and "link-local" in str(refusal)
    with pytest.raises(CometReplicateError, match="allow_link_local_downloads"):
        _download(Script.of(), url)


@pytest.mark.parametrize("host", ["cafe.test", "deadbeef", "0xdead.example", "1.2.3.4", "a.b"])
def test_names_and_other_addresses_made_of_hex_characters_are_not_link_local(host: str) -> None:
    assert link_local_refusal(f"http://{host}/x.png") is None


# ---------------------------------------------------------------------- what the effects and errors carry


def test_every_fetch_writes_into_the_callers_sink_within_the_policys_per_request_timeout() -> None:
    script = Script.of(_status(503), _ok())
    sink, timeout = io.BytesIO(), httpx.Timeout(7.0, connect=2.0)
    _download(script, sink=sink, timeout=timeout)
    assert len(script.fetches) == 2
    assert all(fetch.sink is sink and fetch.timeout == timeout for fetch in script.fetches)


def test_a_status_error_names_the_get_and_the_outputs_url_with_the_hosts_headers_and_no_body() -> None:
    """The body of a non-2xx answer is never read (`Fetch`), so the error has none to show."""
    script = Script.of(_redirect("https://cdn.test/a.webp"), _status(400, **{"x-request-id": "req-7"}))
    with pytest.raises(APIStatusError) as info:
        _download(script)
    error = info.value
    assert (error.status, error.method, error.url) == (400, "GET", URL)
    assert error.request_id == "req-7" and error.headers["x-request-id"] == "req-7"
    assert (error.body, error.text) == (None, "")


def test_a_url_in_a_message_is_cut_to_120_characters() -> None:
    fits = "https://delivery.test/" + "a" * 98
    assert len(fits) == 120 and short_url(fits) == fits
    assert short_url(fits + "b") == fits[:117] + "..."


def test_a_retry_after_date_is_read_against_the_flows_wall_clock() -> None:
    """FakeClock's wall clock reads 2026-03-12T11:27:18.258Z: the date asks for 2.742 s more."""
    script = Script.of(_status(503, **{"retry-after": "Thu, 12 Mar 2026 11:27:21 GMT"}), _ok())
    _download(script)
    assert script.sleeps == [pytest.approx(2.742)]


def test_a_deadline_spent_to_the_last_instant_ends_the_download_without_another_try() -> None:
    clock = FakeClock()

    def spends_it_all(effect: object) -> BaseException:
        clock.now += 5.0
        return httpx.ReadTimeout("slow")

    script = Script.of(spends_it_all, clock=clock)
    with pytest.raises(APITimeoutError, match="took longer than 5 s"):
        _download(script, total_timeout=5.0)
    assert len(script.fetches) == 1 and script.sleeps == []


# --------------------------------------------------------------------------- data URLs


def test_a_plain_data_url_is_percent_decoded_and_its_data_may_hold_commas() -> None:
    assert _download(Script.of(), "data:text/plain;charset=utf-8,a%20b,c") == ("text/plain", b"a b,c")


def test_a_base64_data_url_may_carry_line_breaks_as_mime_base64_does() -> None:
    data = b"\x89PNG\r\n\x1a\n" * 20
    encoded = base64.encodebytes(data).decode()
    assert "\n" in encoded.rstrip()
    assert _download(Script.of(), "data:image/png;base64," + encoded) == ("image/png", data)


def test_a_data_url_of_exactly_the_cap_is_decoded_and_one_byte_more_is_refused_naming_it() -> None:
    assert _download(Script.of(), "data:,0123456789", max_bytes=10) == (None, b"0123456789")
    with pytest.raises(CometReplicateError, match=r"\bdata URL\b.*\b10-byte limit"):
        _download(Script.of(), "data:,0123456789a", max_bytes=10)


@pytest.mark.parametrize("url", ["data:image/png;base64", "data:image/png;base64,abc"])
def test_a_malformed_data_url_is_named_as_one(url: str) -> None:
    with pytest.raises(CometReplicateError, match=r"\bmalformed data URL\b"):
        _download(Script.of(), url)


# --------------------------------------------------------------------------- redirects, as httpx follows them


def _httpx_follows(url: str, location: str) -> str:
    """The URL httpx's own redirect loop requests after `url` answers a 302 to `location` (over a
    mock transport: no socket)."""
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(302, headers={"location": location}) if len(seen) == 1 else httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=True) as client:
        client.get(url)
    return str(seen[1])


def _httpx_redirect_error(location: str) -> httpx.HTTPError:
    """The error httpx's own redirect loop raises when every answer is a 302 to `location`."""
    redirect = httpx.Response(302, headers={"location": location})
    client = httpx.Client(transport=httpx.MockTransport(lambda _: redirect), follow_redirects=True)
    with client, pytest.raises(httpx.HTTPError) as info:
        client.get(URL)
    return info.value


@pytest.mark.parametrize(
    ("url", "location"),
    [
        (URL, "http://cdn.test/out-0.webp"),
        (URL, "http:///moved/out-0.webp"),  # another scheme, no host
        ("https://delivery.test:8443/p1/out-0.webp", "https:///moved/out-0.webp"),  # no host: no port
        ("https://delivery.test:8443/p1/out-0.webp", "/moved/out-0.webp"),
        (URL, "//cdn.test/a.webp"),
        (URL, "../up.webp?v=2"),
        (URL + "#frag", "/moved"),
        (URL + "#frag", "https://cdn.test/a.webp#own"),
        ("http://delivery.test/p1/out-0.webp", "https://cdn.test/a.webp"),
    ],
)
def test_each_hop_is_the_url_httpx_itself_would_request_next(url: str, location: str) -> None:
    script = Script.of(_redirect(location), _ok())
    _download(script, url)
    assert script.fetches[1].url == _httpx_follows(url, location)


def test_a_chain_too_long_fails_with_httpx_own_error_as_its_cause() -> None:
    script = Script.of(*[_redirect(f"https://cdn.test/{n}.webp") for n in range(21)])
    with pytest.raises(APIConnectionError) as info:
        _download(script)
    expected = _httpx_redirect_error("https://cdn.test/loop.webp")
    assert type(info.value.__cause__) is type(expected) is httpx.TooManyRedirects
    assert str(info.value.__cause__) == str(expected)


def test_a_location_that_is_no_url_fails_with_httpx_own_error_as_its_cause() -> None:
    bad = _redirect("http://[::1/x")
    with pytest.raises(APIConnectionError) as info:
        _download(Script.of(bad, bad, bad))
    expected = _httpx_redirect_error("http://[::1/x")
    assert type(info.value.__cause__) is type(expected) is httpx.RemoteProtocolError
    assert str(info.value.__cause__) == str(expected)


def test_a_refused_redirect_names_the_hop_it_refused() -> None:
    with pytest.raises(CometReplicateError) as info:
        _download(Script.of(_redirect("ftp://files.test/a.png")))
    assert "ftp://files.test/a.png" in str(info.value)


# ---------------------------------------------------------------------- addresses, as inet_aton reads them


@pytest.mark.parametrize(
    "host",
    [
        "169.254.1.1",
        "2852039166",  # one number
        "025177524776",  # one number, in octal
        "0251.0xfe.0251.0376",  # octal and hex parts
        "0x0a9fea9fe",  # hex with a leading zero
        "169.254.255.0x01",  # 255 in a leading part
        "0x1a9.254.169.254",  # a leading part over 255
        "256.254.169.0x01",  # a leading part one over 255
        "168.0x1fea9fe",  # the last part over the 24 bits it may fill (ORed in: 169.254.169.254)
        "4294967296",  # one over 32 bits
        "169.254.169.254.0",  # five parts
        "0x",
        "169..1",
        "10.0.0.5",
    ],
)
def test_a_host_is_refused_as_link_local_exactly_when_inet_aton_reads_a_link_local_address(host: str) -> None:
    """The C library's own reading (`socket.inet_aton`) is the oracle: a host it refuses is a name
    for the resolver, not an address, and is fetched (a metadata service's name is refused by name)."""
    try:
        link_local = ipaddress.IPv4Address(socket.inet_aton(host)).is_link_local
    except OSError:
        link_local = False
    assert (link_local_refusal(f"http://{host}/x.png") is not None) is link_local
