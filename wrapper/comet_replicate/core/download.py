"""Downloading one output file: the flow both drivers run for `FileOutput.read/save`.

Data URLs are decoded here without I/O. Other URLs are fetched with `Fetch` effects: retried on
transport failures and 429/5xx like a GET, refused above the size cap, and bounded as a whole by a
total deadline (a server dripping a byte at a time never trips a per-read timeout).

Redirects are followed here, not by httpx: each hop is one more `Fetch`, its URL checked like the
first (http(s) only, never a link-local host), so every driver path (the library's own transport,
httpx's `send`, a caller's client) follows them the same way, and the drivers can hand downloads
straight to a transport (`_http.ApiClient.direct`, `AsyncDriver._fetch_direct`).
"""

from __future__ import annotations

import base64
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import unquote

import httpx

from .._constants import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DOWNLOAD_MAX_REDIRECTS,
    DOWNLOAD_MAX_RETRIES,
    DOWNLOAD_TIMEOUT,
    DOWNLOAD_TOTAL_TIMEOUT,
)
from .._errors import APIConnectionError, APITimeoutError, CometReplicateError, OutputExpired, status_error
from .effects import Fetch, Fetched, Flow, OverCap, Sleep
from .retry import Failure, OpKind, parse_retry_after, retry_delay

__all__ = ["DownloadPolicy", "decode_data_url", "download", "link_local_refusal", "short_url"]


@dataclass(frozen=True, slots=True)
class DownloadPolicy:
    """The bounds of every download: size cap, per-request timeout, total time, retries."""

    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    timeout: httpx.Timeout = field(default_factory=lambda: DOWNLOAD_TIMEOUT)
    total_timeout: float | None = DOWNLOAD_TOTAL_TIMEOUT
    max_retries: int = DOWNLOAD_MAX_RETRIES
    allow_link_local: bool = False


def short_url(url: str) -> str:
    """A URL cut to 120 characters for messages (data URLs can be megabytes)."""
    return url if len(url) <= 120 else url[:117] + "..."


def _too_big(url: str, limit: int) -> CometReplicateError:
    return CometReplicateError(
        f"download of {short_url(url)} exceeds the {limit:,}-byte limit (max_download_bytes)"
    )


def decode_data_url(url: str, limit: int) -> tuple[bytes, str | None]:
    """The bytes and media type of a `data:` URL, refusing more than `limit` bytes."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise CometReplicateError("malformed data URL in output")
    mime = header[5:].split(";")[0] or None
    try:
        # b64decode skips characters outside the alphabet (validate=False, its default): never stricter.
        data = base64.b64decode(payload) if ";base64" in header else unquote(payload).encode()
    except ValueError as exc:  # binascii.Error: bad padding
        raise CometReplicateError(f"malformed data URL in output: {exc}") from None
    if len(data) > limit:
        raise _too_big("data URL", limit)
    return data, mime


_METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"}
)
"""Names of cloud metadata services (their addresses are link-local and refused as such)."""


def link_local_refusal(url: str | httpx.URL) -> CometReplicateError | None:
    """The error for a URL whose host is a link-local address (169.254.0.0/16, fe80::/10 — where cloud
    metadata services answer) or a metadata service's name; None when it may be fetched.

    An output URL or a redirect pointing there could make a download read a VM's credentials.
    Names are not resolved here: a public name that resolves to a link-local address is not caught.
    A parsed URL (a request's) is not parsed again: each parse costs ~20 µs, on every download.
    """
    try:
        host = (url if isinstance(url, httpx.URL) else httpx.URL(url)).host.lower().rstrip(".")
    except httpx.InvalidURL:
        return None  # refused by the URL check with its own message
    if ":" not in host and not _ADDRESS_CHARS.issuperset(host):  # a name: no address parse (~3 µs)
        link_local = host in _METADATA_HOSTS
    else:
        link_local = _link_local_address(host)
    if not link_local:
        return None
    return CometReplicateError(
        f"refusing to download {short_url(str(url))!r}: {host} is link-local, where cloud metadata services "
        "answer; pass allow_link_local_downloads=True to the client if this output really lives there"
    )


_ADDRESS_CHARS = frozenset("0123456789abcdefx.")
"""Every character of an IPv4 address in any spelling the resolver reads (see `_link_local_address`)."""


def _link_local_address(host: str) -> bool:
    """Whether an address is link-local, in any spelling the C library's resolver reads as one:
    `inet_aton` takes 2852039166, 0xa9fea9fe, 169.254.43518 and (with the trailing dot the caller
    strips) 169.254.169.254., and httpx passes such hosts on as names (only dotted decimal is parsed
    as an address). `host` is httpx's (an IPv6 address without its brackets), lower-cased."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        number = _inet_aton(host)
        if number is None:
            return False  # a name made of hex digits and dots ("cafe.test"); no metadata name is one
        ip = ipaddress.IPv4Address(number)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_link_local or (mapped is not None and mapped.is_link_local)


_DIGITS = {8: frozenset("01234567"), 10: frozenset("0123456789"), 16: frozenset("0123456789abcdef")}


def _inet_aton(text: str) -> int | None:
    """The IPv4 address `inet_aton(3)` reads in lower-cased `text`, or None: one to four dot-separated
    numbers, each decimal, octal (a leading 0) or hex (0x); the last fills the bytes the others leave."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        digits, base = (part[2:], 16) if part[:2] == "0x" else (part, 8 if part[:1] == "0" else 10)
        if not digits or not _DIGITS[base].issuperset(digits):
            return None
        numbers.append(int(digits, base))
    *head, last = numbers
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    address = last
    for index, n in enumerate(head):
        address |= n << (8 * (3 - index))
    return address


def _checked_url(url: str, allow_link_local: bool) -> httpx.URL:
    """The output's URL parsed (once: the driver sends this very object), or the refusal."""
    if not url.startswith(("https://", "http://")):
        raise CometReplicateError(f"refusing to download {short_url(url)!r}: only http(s) and data URLs")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CometReplicateError(f"refusing to download {short_url(url)!r}: {exc}") from None
    return _checked_hop(url, parsed, allow_link_local)


def _checked_hop(url: str, parsed: httpx.URL, allow_link_local: bool) -> httpx.URL:
    if parsed.scheme not in ("http", "https"):  # a redirect's Location may name any scheme
        raise CometReplicateError(f"refusing to download {short_url(url)!r}: only http(s) and data URLs")
    if not parsed.host:
        raise CometReplicateError(f"refusing to download {short_url(url)!r}: no host")
    refusal = None if allow_link_local else link_local_refusal(parsed)
    if refusal is not None:
        raise refusal
    return parsed


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
"""The statuses httpx follows when they carry a Location (`Response.has_redirect_location`)."""


def _resolved(at: httpx.URL, location: str) -> httpx.URL:
    """A Location resolved as httpx resolves it: relative to `at`, an absolute one without a host
    onto `at`'s host, `at`'s fragment kept when it names none. Another scheme is left as it is, for
    the hop check to refuse."""
    url = httpx.URL(location)
    if url.scheme not in ("", "http", "https"):
        return url
    if url.scheme and not url.host:
        url = url.copy_with(host=at.host)
    if url.is_relative_url:
        url = at.join(url)
    if at.fragment and not url.fragment:
        url = url.copy_with(fragment=at.fragment)
    return url


def _took_too_long(url: str, total: float) -> APITimeoutError:
    return APITimeoutError(
        f"download of {short_url(url)} took longer than {total:g} s", method="GET", url=short_url(url)
    )


def _transport_error(url: str, exc: httpx.RequestError) -> APIConnectionError:
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    return cls(f"download of {short_url(url)} failed: {type(exc).__name__}", method="GET", url=short_url(url))


_GONE = frozenset({403, 404, 410})
"""What a delivery host answers for an output it deleted (Replicate: about an hour after completion)."""


def _status_error(url: str, got: Fetched, prediction_id: str | None) -> CometReplicateError:
    if prediction_id is not None and got.status in _GONE:
        return OutputExpired(prediction_id, short_url(url), status=got.status)
    error = status_error(got.status, method="GET", url=short_url(url), headers=got.headers, content=b"")
    error.message = f"download failed with HTTP {got.status}"
    return error


class _Download:
    """One download's retry state."""

    def __init__(
        self,
        url: str,
        policy: DownloadPolicy,
        clock: Callable[[], float],
        rng: random.Random,
        prediction_id: str | None,
    ) -> None:
        self.url = url
        self.prediction_id = prediction_id
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.started = clock()
        self.retry_index = 0
        self.hops = 0

    def remaining(self) -> float | None:
        """Seconds left of the total deadline; raises once it is spent."""
        total = self.policy.total_timeout
        if total is None:
            return None
        left = total - (self.clock() - self.started)
        if left <= 0:
            raise _took_too_long(self.url, total)
        return left

    def redirected(self, at: httpx.URL, location: str) -> httpx.URL:
        """The next hop of a redirect from `at` (`_resolved`), checked like the output's URL; always
        a GET with no body and no credentials. Raises the httpx error httpx's own redirect loop
        raised, so the retry rules treat it the same: a Location that is no URL is a protocol error
        (retried), a chain past `DOWNLOAD_MAX_REDIRECTS` is not."""
        try:
            url = _resolved(at, location)
        except httpx.InvalidURL as exc:
            raise httpx.RemoteProtocolError(f"Invalid URL in location header: {exc}.") from None
        self.hops += 1
        if self.hops > DOWNLOAD_MAX_REDIRECTS:
            raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.")
        return _checked_hop(str(url), url, self.policy.allow_link_local)

    def after_failure(self, exc: httpx.RequestError) -> float:
        """The delay before the next try after a transport failure, or the typed error."""
        self.remaining()  # a failure that spent the total deadline is the deadline's error
        # Redirect loops and bad encodings are no transport errors: retrying cannot help. A GET retries
        # every transport failure alike, however far the request got (`retry.retry_delay`).
        delay = self._delay(Failure.NETWORK) if isinstance(exc, httpx.TransportError) else None
        if delay is None:
            raise _transport_error(self.url, exc) from exc
        return delay

    def after_answer(self, at: httpx.URL, got: Fetched, wall_now: float) -> httpx.URL | float:
        """After a non-2xx answer from `at`: the next hop of a redirect, else the delay before the
        next try; raises the typed error."""
        location = got.headers.get("location") if got.status in _REDIRECTS else None
        if location is None:
            return self.after_status(got, wall_now)
        try:
            return self.redirected(at, location)
        except httpx.RequestError as exc:
            return self.after_failure(exc)

    def after_status(self, got: Fetched, wall_now: float) -> float:
        """The delay before the next try after a non-2xx answer, or the typed error."""
        delay = self._delay(
            Failure.STATUS, status=got.status, retry_after=parse_retry_after(got.headers, now_epoch=wall_now)
        )
        if delay is None:
            raise _status_error(self.url, got, self.prediction_id)
        return delay

    def _delay(
        self, failure: Failure, *, status: int | None = None, retry_after: float | None = None
    ) -> float | None:
        return retry_delay(
            OpKind.GET,
            failure,
            retry_index=self.retry_index,
            max_retries=self.policy.max_retries,
            rng=self.rng,
            status=status,
            retry_after=retry_after,
        )


def download(
    url: str,
    sink: IO[bytes],
    policy: DownloadPolicy,
    *,
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
    rng: random.Random,
    prediction_id: str | None = None,
) -> Flow[str | None]:
    """Write the file at `url` into `sink`; returns its content type (None when not given).

    Redirects are followed (`_Download.redirected`), each hop checked like `url`; a retry starts
    again at `url`. For an output of a known prediction (`prediction_id`), 403, 404 and 410 mean
    the output was deleted: OutputExpired. Other statuses are their typed `APIStatusError`.
    """
    if url.startswith("data:"):
        data, mime = decode_data_url(url, policy.max_bytes)
        sink.write(data)
        return mime
    first = hop = _checked_url(url, policy.allow_link_local)
    state = _Download(url, policy, clock, rng, prediction_id)
    while True:
        try:
            fetch = Fetch(
                url if hop is first else str(hop),
                sink,
                policy.max_bytes,
                policy.timeout,
                state.remaining(),
                policy.allow_link_local,
                hop,
            )
            got: Fetched = yield fetch
        except OverCap:
            raise _too_big(url, policy.max_bytes) from None
        except httpx.RequestError as exc:
            delay = state.after_failure(exc)
        else:
            if 200 <= got.status < 300:
                content_type: str | None = got.headers.get("content-type")
                return content_type
            step = state.after_answer(hop, got, wall_clock())
            if isinstance(step, httpx.URL):
                hop = step
                continue
            delay = step
        state.retry_index += 1
        state.hops, hop = 0, first  # a retry starts over at the output's URL, as httpx's send did
        yield Sleep(delay)
