"""Small order statistics; the runner reports medians and percentiles, never means of noisy times."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for an empty sample."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    low = math.floor(pos)
    high = math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50.0)


def ratio(num: float | None, den: float | None) -> float | None:
    """num/den, or None when either side is missing or the denominator is zero."""
    if num is None or den is None or den == 0:
        return None
    return num / den


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, min, p10, p50, p90, p99, max of a sample."""
    return {
        "n": len(values),
        "min": min(values) if values else None,
        "p10": percentile(values, 10),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
    }
