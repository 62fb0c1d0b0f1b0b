"""Command line: `python -m comet_replicate_emulator`; `comet-replicate emulator` delegates here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._config import APIS, OPERATIONS, TEXT_ERROR_STATUSES, EmulatorConfig, Faults


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _latency(text: str) -> tuple[float, float]:
    """`0.2` (fixed) or `0.05-0.5` (uniform range), in wall seconds."""
    low, sep, high = text.partition("-")
    try:
        pair = (float(low), float(high)) if sep else (float(low), float(low))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text} is not SECONDS or LOW-HIGH") from exc
    if pair[0] < 0 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError(f"{text} is not SECONDS or LOW-HIGH with 0 <= LOW <= HIGH")
    return pair


def _operations(text: str) -> frozenset[str]:
    ops = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = ops - set(OPERATIONS)
    if unknown or not ops:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(OPERATIONS)}")
    return ops


def _apis(text: str) -> frozenset[str]:
    apis = frozenset(p.strip() for p in text.split(",") if p.strip())
    if not apis or apis - set(APIS):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(APIS)}")
    return apis


def _limit(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    api = parser.add_argument_group("API behaviour")
    api.add_argument(
        "--create-rpm",
        type=_limit,
        default=None,
        metavar="N",
        help="429 above N creates a minute (sliding window; Replicate documents 600)",
    )
    api.add_argument(
        "--rpm",
        type=_limit,
        default=None,
        metavar="N",
        help="429 above N other API requests a minute (Replicate documents 3000)",
    )
    api.add_argument(
        "--create-without-output",
        action="store_true",
        help="leave `output` out of create answers, as older Replicate examples do",
    )
    api.add_argument(
        "--list-404",
        type=_apis,
        default=frozenset(),
        metavar="cometapi,replicate",
        help="answer 404 on GET .../predictions for these APIs (CometAPI documents no list route)",
    )
    api.add_argument("--list-page-size", type=_limit, default=100, metavar="N", help="list page size")


def _add_new_faults(faults: argparse._ArgumentGroup) -> None:
    faults.add_argument(
        "--error-402-rate", type=_rate, default=0.0, metavar="RATE", help="402 Insufficient credit"
    )
    faults.add_argument(
        "--error-524-rate", type=_rate, default=0.0, metavar="RATE", help="524 Cloudflare HTML page"
    )
    faults.add_argument(
        "--error-text-rate", type=_rate, default=0.0, metavar="RATE", help='a bare {"error": "text"} body'
    )
    faults.add_argument(
        "--message-text-rate",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help='a bare {"message": "text"} body',
    )
    faults.add_argument(
        "--text-error-status",
        type=int,
        choices=TEXT_ERROR_STATUSES,
        default=500,
        metavar="STATUS",
        help="status of the bare text bodies (default 500)",
    )


def build_parser(prog: str = "comet_replicate_emulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A local, spec-conformant CometAPI/Replicate prediction server for FLUX models.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--token", default=None, help="the only accepted Bearer token (default: any)")
    parser.add_argument("--speed", type=_positive, default=1.0, help="run the clock N times faster")
    parser.add_argument("--seed", type=int, default=None, help="make ids, durations and faults repeatable")
    parser.add_argument(
        "--durations",
        choices=("fixed", "lognormal"),
        default="fixed",
        help="fixed per-model times, or lognormal variation around them",
    )
    parser.add_argument(
        "--retention",
        type=_non_negative,
        default=None,
        help="emulator seconds from completion to data removal (default: one wall-clock hour)",
    )
    parser.add_argument("--accept-unknown-models", action="store_true", help="accept any owner/name")
    parser.add_argument("--public-base-url", default=None, help="base URL to put in urls and outputs")
    parser.add_argument(
        "--validate-responses", action="store_true", help="check every answer against the spec"
    )
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    _add_api_options(parser)
    faults = parser.add_argument_group("fault injection (rates are probabilities per request)")
    faults.add_argument("--error-500-rate", type=_rate, default=0.0, metavar="RATE")
    faults.add_argument("--error-502-rate", type=_rate, default=0.0, metavar="RATE")
    faults.add_argument("--error-503-rate", type=_rate, default=0.0, metavar="RATE")
    faults.add_argument(
        "--html-502-rate", type=_rate, default=0.0, metavar="RATE", help="502 with an HTML page"
    )
    faults.add_argument("--rate-limit-rate", type=_rate, default=0.0, metavar="RATE", help="429 at random")
    faults.add_argument(
        "--rpm-limit",
        type=_limit,
        default=None,
        metavar="N",
        help="429 above N requests/minute per operation (counted as a fault)",
    )
    faults.add_argument("--retry-after", type=_non_negative, default=1.0, metavar="SECONDS")
    faults.add_argument(
        "--drop-rate", type=_rate, default=0.0, metavar="RATE", help="close without answering"
    )
    faults.add_argument("--truncate-rate", type=_rate, default=0.0, metavar="RATE", help="cut the JSON body")
    faults.add_argument("--latency", type=_latency, default=(0.0, 0.0), metavar="S|LOW-HIGH")
    faults.add_argument("--fail-rate", type=_rate, default=0.0, metavar="RATE", help="predictions end failed")
    faults.add_argument("--fail-message", default=None, metavar="TEXT")
    faults.add_argument(
        "--fault-operations", type=_operations, default=frozenset(OPERATIONS), metavar="create,get,cancel"
    )
    faults.add_argument(
        "--after-create-share",
        type=_rate,
        default=0.5,
        metavar="RATE",
        help="share of create faults that strike after the prediction was created",
    )
    _add_new_faults(faults)
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    fault_kwargs = {
        "error_500": args.error_500_rate,
        "error_502": args.error_502_rate,
        "error_503": args.error_503_rate,
        "html_502": args.html_502_rate,
        "rate_limit": args.rate_limit_rate,
        "rpm_limit": args.rpm_limit,
        "retry_after": args.retry_after,
        "drop": args.drop_rate,
        "truncate": args.truncate_rate,
        "latency": args.latency,
        "failed": args.fail_rate,
        "operations": args.fault_operations,
        "after_create": args.after_create_share,
        "error_402": args.error_402_rate,
        "error_524": args.error_524_rate,
        "error_text": args.error_text_rate,
        "message_text": args.message_text_rate,
        "text_error_status": args.text_error_status,
    }
    if args.fail_message:
        fault_kwargs["failed_message"] = args.fail_message
    return EmulatorConfig(
        token=args.token,
        speed=args.speed,
        seed=args.seed,
        durations=args.durations,
        retention_s=args.retention,
        accept_unknown_models=args.accept_unknown_models,
        public_base_url=args.public_base_url,
        validate_responses=args.validate_responses,
        faults=Faults(**fault_kwargs),
        create_rpm=args.create_rpm,
        rpm=args.rpm,
        create_without_output=args.create_without_output,
        list_404=args.list_404,
        list_page_size=args.list_page_size,
    )


def main(argv: Sequence[str] | None = None, prog: str = "comet_replicate_emulator") -> int:
    """Parse flags and serve until interrupted; returns a process exit code (2 for bad flags).

    `prog` is the name shown in usage and errors (`comet-replicate emulator` when run from the CLI).
    """
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on bad flags (2)
        return int(exc.code or 0)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    from ._server import run_forever

    def announce(base_url: str) -> None:
        print(
            f"comet-replicate emulator on {base_url} (CometAPI base URL {base_url}/replicate/v1)",
            file=sys.stderr,
            flush=True,
        )

    try:
        run_forever(config, args.host, args.port, args.log_level, announce)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
