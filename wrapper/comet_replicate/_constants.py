"""Every default of the library in one place: timeouts, limits, backoff, caps and the User-Agent.

Modules import these names instead of restating numbers, so a default changes here and nowhere else.
"""

from __future__ import annotations

from typing import Final

import httpx

from ._version import __version__

__all__ = [
    "BATCH_POLL_MAX_GAP",
    "BATCH_POLL_SHARE",
    "CANCEL_AFTER_FROM_TIMEOUT",
    "CANCEL_ON_EXIT_TIMEOUT",
    "CANCEL_ON_EXIT_TOTAL",
    "CREATED_MEMORY",
    "CREATE_MIN_TIME_LEFT",
    "CUT_SHARE",
    "DECREASE",
    "DEFAULT_BASE_URL",
    "DEFAULT_HOLD",
    "DEFAULT_INPUT_VALIDATION",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_DATA_URL_BYTES",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RUN_WAIT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "DOWNLOAD_LIMITS",
    "DOWNLOAD_MAX_REDIRECTS",
    "DOWNLOAD_MAX_RETRIES",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_TOTAL_TIMEOUT",
    "ENV_BASE_URL",
    "ENV_KEY",
    "ENV_LOG",
    "HAPPY_EYEBALLS_DELAY",
    "HELD_CREATES_FD_SHARE",
    "INITIAL_BACKOFF",
    "JOURNAL_DEFER_MIN_LINES",
    "JOURNAL_GROUP_MAX",
    "JOURNAL_WAL_CHECKPOINT_PAGES",
    "KEEPALIVE_EXPIRY",
    "MAX_BACKOFF",
    "MAX_HELD_CREATES",
    "MAX_HOLD",
    "MAX_IN_FLIGHT",
    "MAX_RETRY_AFTER",
    "MAX_UNSENT_BYTES",
    "MIN_CANCEL_AFTER",
    "MIN_FRACTION",
    "MIN_POLL_SLEEP",
    "POOL_KEEPALIVE",
    "POOL_SPARE",
    "PROBE_FRACTION",
    "PROBE_STEP",
    "READ_BUFFER_HIGH_WATER",
    "RECONCILE_CLOCK_SKEW",
    "RECONCILE_MAX_PAGES",
    "RECONCILE_MAX_SECONDS",
    "RECONCILE_UNKNOWN_CREATES",
    "REPLICATE_BASE_URL",
    "RETRY_STATUSES",
    "SYNC_MODE_MARGIN",
    "THROTTLE_PATIENCE",
    "USER_AGENT",
    "WINDOW_MARGIN",
]

USER_AGENT = f"comet-replicate/{__version__}"
"""Sent on every request, API and downloads alike."""

ENV_KEY = "COMETAPI_KEY"
ENV_BASE_URL = "COMETAPI_BASE_URL"
ENV_LOG = "COMET_REPLICATE_LOG"

# --------------------------------------------------------------------------- the API client

DEFAULT_BASE_URL = "https://api.cometapi.com/replicate/v1"
REPLICATE_BASE_URL = "https://api.replicate.com/v1"
"""Replicate's own API (named in messages about a base URL that lacks the API's path)."""
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=None)
"""Per HTTP request: connect 5 s, read 60 s (CometAPI polls were seen taking over 45 s), write 30 s.
Waiting for a free pooled connection is unbounded by default: such a request has not reached the
server yet, so many concurrent predictions queue instead of failing (a total deadline still applies)."""
DEFAULT_MAX_RETRIES = 2
DEFAULT_WAIT_TIMEOUT = 300.0
"""The total deadline of `run`, `wait` and `resume` unless the caller gives one."""
CANCEL_AFTER_FROM_TIMEOUT = "timeout"
"""`run(cancel_after="timeout")` (the default): the server-side deadline is run's own `timeout`."""
DEFAULT_RUN_WAIT = 60
"""`run` asks the server to hold the create this long (`Prefer: wait=60`): most images need no poll."""
MAX_IN_FLIGHT = 20
"""Short requests (polls, creates without `Prefer: wait`, cancels) an `AsyncClient` with its own pool
hands to httpx at once; the rest queue in the client. httpcore rescans every waiting request against
every connection on each acquire and release, so 1,000 concurrent `run()`s queued inside its pool
cost 40-80 s of client CPU; queued here, a few seconds (benchmarks/RESULTS.md, sections 3 and 4)."""
MAX_HELD_CREATES = 600
"""Creates `run` may hold open at once in sync mode (`Prefer: wait`), beyond `MAX_IN_FLIGHT`, by
default (the `max_held_creates` client option). A held create answers with the finished prediction:
one request instead of a create and its polls. Beyond it, `run` creates without `Prefer: wait` and
polls, so no prediction waits in the client for a connection. 600 is one minute's worth of creates
at Replicate's documented limit, the burst a client may send at once: in section 4 of the
benchmarks (1,000 predictions, a full window at once) 100 held creates left 4,270 GETs and 15.0 s
of client CPU, 300 left 2,859 and 13.4 s, 600 left 16 and 4.9 s (peak RSS 65 -> 77 MiB). A held
create is a busy connection, cheap in httpcore's per-request pool scan (idle ones are what cost,
see `POOL_KEEPALIVE`). Each is an open socket: the client never holds more than a quarter of the
process's file-descriptor limit (`HELD_CREATES_FD_SHARE`). Whether CometAPI's gateway holds that
many requests open is not documented; a create whose connection cannot be opened falls back to a
create without `Prefer: wait` through the queue."""
HELD_CREATES_FD_SHARE = 4
"""Held creates never take more than 1/4 of the soft RLIMIT_NOFILE (256 of the usual 1,024): the
rest stays for the short requests, downloads, journals and whatever else the process opens."""
POOL_SPARE = 8
"""Connections beyond the short requests and the held creates: the cancels on exit skip the queue."""
POOL_KEEPALIVE = 8
"""Idle connections the pool keeps. On every acquire and release httpcore checks each idle connection
(with httpx's own transport, a socket syscall; `_transport`'s streams answer from the event loop's
state) and counts the whole pool once per idle connection, so 40 idle connections
made that scan 60 % of the client's CPU in section 4 (17.9 s -> 10.6 s with 8 kept, same run); a
new connection to the API is cheaper than carrying dozens idle."""
KEEPALIVE_EXPIRY = 4.0
"""Seconds an idle API connection is kept for reuse: less than the 5 s after which common servers
(uvicorn, Node.js) close an idle one. A create written on a connection the server is closing that
moment is a lost create (the client cannot prove it never arrived), so the client must give a
connection up before the server does, not race it; an idle connection the server already closed is
never reused (httpcore checks it first). The emulator keeps idle connections 30 s, so it never
closes one under the client either; a server with a shorter idle timeout than 4 s can still race."""
DEFAULT_LIMITS = httpx.Limits(
    max_connections=MAX_IN_FLIGHT + MAX_HELD_CREATES + POOL_SPARE,
    max_keepalive_connections=POOL_KEEPALIVE,
    keepalive_expiry=KEEPALIVE_EXPIRY,
)
"""The pool of a client built with the defaults: every short request in flight, every held create,
and `POOL_SPARE` (see `_http.pool_limits` for a client with another `max_held_creates`)."""

SYNC_MODE_MARGIN = 5.0
"""Extra read time beyond `Prefer: wait=N`, so the client never gives up before the server answers."""
CANCEL_ON_EXIT_TIMEOUT = httpx.Timeout(2.0, pool=1.0)
"""Each phase of the best-effort cancel on exit (it is never retried)."""
CANCEL_ON_EXIT_TOTAL = 5.0
"""The whole cancel on exit, connect to last byte, ends by then in both drivers."""
MIN_POLL_SLEEP = 0.01
"""A floor on each poll sleep, so a wait always makes progress against its deadline."""
MIN_CANCEL_AFTER = 5
"""Replicate's minimum `Cancel-After`, in seconds."""
CREATED_MEMORY = 4096
"""How many local creation times a client keeps for the learned poll schedule."""

# --------------------------------------------------------------------------- pacing (core/pacing.py)

DECREASE = 0.7
"""A 429 leaves this fraction of the rate the lane allowed: gentle, since a transient 429 or a
documented limit merely touched at a window's edge should not halve throughput."""
CUT_SHARE = 0.1
"""A 429 cuts the rate only while 429s are at least this share of the lane's answers in the window
(the 429 itself included). A limit the client is over answers 429 to nearly every request beyond
it, so its share climbs at once; 429s scattered through a stream of successes (a saturated gateway,
a proxy's hiccup: ~3 % in the chaos suite) each cost their hold, but do not ratchet the rate down
one cut after another until the client crawls at its floor."""
MIN_FRACTION = 0.05
"""A cut never goes below this fraction of the configured limit (30 creates and 150 other requests a
minute by default): below it, the server's Retry-After holds pace the client."""
PROBE_FRACTION = 1.0 / 6.0
"""Quiet time (as a fraction of the window: 10 s for a one-minute window) before each step back up."""
PROBE_STEP = 0.1
"""Each step back up restores this fraction of the configured limit."""
WINDOW_MARGIN = 0.025
"""Each send is counted for `per × (1 + WINDOW_MARGIN)` seconds (1.5 s extra on a minute): the time
between the grant and the request's arrival at the server, and late wake-ups."""
DEFAULT_HOLD = 1.0
"""Seconds sending stops after a 429 that names no wait (Replicate's body says "available in 1 second")."""
MAX_HOLD = 120.0
"""The longest hold a single 429 can impose; a larger hint is treated as this (a bogus header must not
stall a client for hours; the request loop decides separately whether its caller can wait that long)."""
THROTTLE_PATIENCE = 300.0
"""A request without a deadline gives up on 429s once it has been throttled this long (with a
deadline, it tries again for as long as the deadline allows)."""


# --------------------------------------------------------------------------- batches (_batch/)

BATCH_POLL_SHARE = 0.2
"""A batch polls each prediction every 20 % of the duration its model's history leads it to expect
(a single `run`: 5 %) … — a batch is judged by its makespan, which a late notice delays only for
its last predictions, while every poll costs client CPU and a share of the account's 3,000 other
requests a minute: a thousand predictions polled every 0.45 s would spend all of it."""
BATCH_POLL_MAX_GAP = 2.0
"""… and at least every 2 s (a single `run`: 0.45 s); without history, the backoff also stops at 2 s."""
JOURNAL_GROUP_MAX = 256
"""Journal calls that queued while the journal's thread was busy are committed together, at most this
many at once: one durable commit (an fsync) for the ``creating`` rows of many lines instead of one
each, while the first of them waits for no more than a few hundred rows' worth of work."""
JOURNAL_DEFER_S = 0.1
"""A line's final state waits this long at most for the next journal write, and is committed in one
group with it: on a busy batch most final states then cost the journal's thread no wake-up and no
commit of their own (a lone write after an idle gap costs several times what it does in a group).
The line's result reaches the caller that much later, and its worker takes its next line that much
later: hence only from `JOURNAL_DEFER_MIN_LINES` lines at once."""
JOURNAL_DEFER_MIN_LINES = 64
"""Lines at once (a batch's `concurrency`) from which final states are deferred (`JOURNAL_DEFER_S`).
With c lines of d seconds, the journal sees about 3c/d writes a second, and a final state waits for
the next one: at the default 4 lines of 1-3 s that is most of the 0.1 s, 3-6 % of each line's time
spent idle for a wake-up's worth of CPU (~0.3 ms); from 64 lines the wait is a few ms (under 0.5 %),
and the wake-ups saved add up (1,000 lines: ~1,800 -> ~1,160 commits in benchmark section 4)."""
JOURNAL_WAL_CHECKPOINT_PAGES = 100
"""The SQLite journal's write-ahead log is copied into the database, and then written again from its
start, every this many pages (SQLite's default: 1,000). Each commit's fsync is cheaper when it
overwrites blocks the log already has than when it grows the file (the file system then journals
the new size too): about a fifth less CPU per commit measured on ext4, checkpoints included, with a
log of 400 KiB instead of 4 MiB. Durability is unchanged (SQLite's own checkpoints)."""


# --------------------------------------------------------------------------- reconciling lost creates

RECONCILE_UNKNOWN_CREATES = True
"""By default a create whose answer was lost is looked for in the list route before giving up."""
RECONCILE_CLOCK_SKEW = 30.0
"""The list is asked for predictions created since this long before the create was sent: the
server's clock may run behind the client's by up to this much."""
RECONCILE_MAX_SECONDS = 30.0
"""A reconciliation's own cap (the caller's deadline may end it sooner)."""
RECONCILE_MAX_PAGES = 10
"""Pages of the list read at most (Replicate: 100 predictions a page)."""
CREATE_MIN_TIME_LEFT = 0.25
"""A create is not sent with less of its deadline left (half the deadline, if that is shorter): it
would be answered after the deadline, paid for, with no time left to find it in the list."""

# --------------------------------------------------------------------------- retries

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 524})  # mutation-point: retry-524
"""Answers a GET or cancel tries again (a create only on 429): 524 is Cloudflare's origin timeout."""
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0
"""A Retry-After longer than this gives up instead of waiting."""

# --------------------------------------------------------------------------- files

DEFAULT_MAX_DATA_URL_BYTES = 256 * 1024
"""Replicate advises data URLs only for files up to 256 kB; larger files belong on a URL."""
DEFAULT_INPUT_VALIDATION: Final = "warn"
"""Known input fields are checked, unknown ones sent with a warning (see `_inputs.prepare_input`)."""
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""The largest API response body read (a prediction is a few kB; logs can grow): past it the read
stops with a typed error instead of filling memory."""
DEFAULT_MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DOWNLOAD_TOTAL_TIMEOUT = 300.0
"""A whole download (retries included) ends by then: a server dripping a byte at a time never trips a
per-read timeout, so only a total deadline bounds it."""
DOWNLOAD_MAX_RETRIES = 2
DOWNLOAD_MAX_REDIRECTS = 20
"""Redirects one download follows before it fails (`core.download`): httpx's default `max_redirects`,
which bounded downloads while httpx followed their redirects."""
READ_BUFFER_HIGH_WATER = 256 * 1024
"""Bytes an async connection buffers unread before it stops reading the socket (`_transport`): the
server's further bytes wait in the kernel, so a body cap is never outrun by buffering."""
MAX_UNSENT_BYTES = 64 * 1024
"""Bytes an async connection holds back from a request before it sends them (`_transport`): a request's
head and small body go out in one send at the read of the answer; a larger or streamed body is sent as
it comes, with the socket's back-pressure, so a request is never held whole in memory for one send."""
HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds the async transport waits on one address of a host before also trying the next (RFC 8305;
the delay httpx's default anyio backend uses)."""
DOWNLOAD_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY
)
"""The download clients' connections: the counts httpx gives a client by default (the download
clients have transports of their own, so they state them instead of inheriting; the async one's
`HeldTransport` keeps up to 20 idle, by origin, and makes a download beyond 100 at once wait for a
connection, up to its pool timeout, as httpcore's pool does; it replaced 4 small httpcore pools,
whose walk over their idle connections on every request and release cost ~0.4 M instructions per
saved output); idle connections expire as the API's do (`KEEPALIVE_EXPIRY`: httpx's 5 s is exactly
uvicorn's idle timeout, so a download could be written on a connection the server was closing that
moment)."""
