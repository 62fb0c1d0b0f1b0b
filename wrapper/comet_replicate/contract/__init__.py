"""Live contract checking and recording: what `comet-replicate contract-check` and `record` use."""

from __future__ import annotations

from ._check import DEFAULT_CHECK_INPUT, DEFAULT_CHECK_MODEL, ContractReport, check_exchange, contract_check
from ._exchange import Exchange
from ._recorder import Recorder, recording_document

__all__ = [
    "DEFAULT_CHECK_INPUT",
    "DEFAULT_CHECK_MODEL",
    "ContractReport",
    "Exchange",
    "Recorder",
    "check_exchange",
    "contract_check",
    "recording_document",
]
