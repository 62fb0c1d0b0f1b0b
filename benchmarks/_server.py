"""The emulator app under uvicorn with the benchmark's duration plan: ``python -m benchmarks._server``.

The emulator's CLI has no flag for a per-prediction duration, and the fair comparison needs every
contender to meet *the same* durations: the plan file maps ``(model, input seed)`` to the queue and
run seconds the emulator's ``duration_fn`` hook returns, so prediction k of contender A lasts exactly
as long as prediction k of contender B. Seeds not in the plan fall back to the emulator's own timing
for the model; ``--instant`` makes every prediction finish the moment it is created.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Mapping
from typing import Any


def build_duration_fn(plan: Mapping[str, list[float]], instant: bool, fallback: Any) -> Any:
    def duration_fn(model: str, inp: Mapping[str, Any]) -> tuple[float, float]:
        if instant:
            return (0.0, 0.0)
        seed = inp.get("seed")
        hit = plan.get(f"{model}#{seed}")
        if hit is not None:
            return (float(hit[0]), float(hit[1]))
        timing = fallback(model)
        return (timing.queue_s, timing.run_s)

    return duration_fn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--plan", default=None, help="JSON file: {'model#seed': [queue_s, run_s]}")
    parser.add_argument("--instant", action="store_true")
    parser.add_argument("--create-rpm", type=int, default=None, help="creates per emulator minute")
    parser.add_argument("--rpm", type=int, default=None, help="other requests per emulator minute")
    args = parser.parse_args(argv)

    from comet_replicate_emulator import EmulatorConfig, serve

    plan: dict[str, list[float]] = {}
    if args.plan:
        with open(args.plan, encoding="utf-8") as fh:
            plan = json.load(fh)
    base = EmulatorConfig(token=args.token, speed=args.speed, seed=0)
    config = base.replace(duration_fn=build_duration_fn(plan, args.instant, base.timing))
    # Replicate's two account-wide limits, sliding one-minute windows on the emulator's clock.
    config = config.replace(create_rpm=args.create_rpm, rpm=args.rpm)
    # serve() is the emulator's own uvicorn setup (deep backlog, no concurrency limit); it runs in a
    # thread, and this process only waits to be terminated by the runner.
    with serve(config, host=args.host, port=args.port):
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
