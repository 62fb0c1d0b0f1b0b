"""schemathesis hooks for the emulator conformance runs (in process and the CLI via SCHEMATHESIS_HOOKS).

`Cancel-After` is a plain string in the spec: Replicate documents its form (seconds, or h/m/s units,
at least 5 s) in words and no pattern, so the spec sets none. A fuzzer drawing "any string" would then
call a server's 400 for `!1@j` a rejection of valid data. Positive cases therefore carry a value in
the documented form; a value the generator meant to be invalid (empty, not a string) is left alone.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from contract_tests._spec import documented_cancel_after

DOCUMENTED_EXAMPLE = "5m"


@schemathesis.hook
def map_headers(ctx: Any, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    if headers is None:
        return headers
    for name in list(headers):
        value = headers[name]
        fuzzed = isinstance(value, str) and value and not documented_cancel_after(value)
        if name.lower() == "cancel-after" and fuzzed:
            headers[name] = DOCUMENTED_EXAMPLE
    return headers
