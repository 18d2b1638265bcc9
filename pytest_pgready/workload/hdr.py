"""Latency histograms in microseconds (HdrHistogram), recorded in the load workers, merged in the plugin.

Locust's own percentiles are rounded to whole milliseconds (and above 100 ms to two significant
digits); a sub-millisecond point lookup would read "p95 = 1 ms" there. HdrHistogram keeps three
significant digits from 1 µs to 60 s, and its encoded form merges exactly across processes and hosts.
This module imports only `hdrh` (no gevent, no locust): the pytest process uses it too.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000  # 60 s: anything slower is clamped there (and counted)
SIGNIFICANT = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)


_T = new_histogram()
_MASK, _UNIT, _HALF_MAG, _HALF = _T.sub_bucket_mask, _T.unit_magnitude, _T.sub_bucket_half_count_magnitude, \
    _T.sub_bucket_half_count
del _T


def record_us(h: HdrHistogram, us: float) -> None:
    """Record one latency; values outside the trackable range are clamped, never dropped.

    The same bucket as `h.record_value()` (HdrHistogram's index arithmetic, with int.bit_length() for its
    count-leading-zeros), at a third of its cost: the load workers call it once per request. `h` must
    come from `new_histogram()` (the constants above are its geometry).
    """
    v = round(us)
    if v < LOWEST_US:
        v = LOWEST_US
    elif v > HIGHEST_US:
        v = HIGHEST_US
    bucket = (v | _MASK).bit_length() - _UNIT - _HALF_MAG - 1
    h.counts[((bucket + 1) << _HALF_MAG) + (v >> (bucket + _UNIT)) - _HALF] += 1
    h.total_count += 1
    if v < h.min_value:
        h.min_value = v
    if v > h.max_value:
        h.max_value = v


def record_seconds(h: HdrHistogram, latencies_s: list[float]) -> None:
    """Record many latencies given in seconds: each lands where `record_us` puts it, but the values are
    rounded and counted in C (Counter over map) first, so the Python arithmetic runs once per distinct
    microsecond rather than once per request. The load workers hand over one second's worth at a time."""
    counts = h.counts
    lo, hi = h.min_value, h.max_value
    total = 0
    for v, n in Counter(map(round, map(_US_PER_S.__mul__, latencies_s))).items():
        if v < LOWEST_US:
            v = LOWEST_US
        elif v > HIGHEST_US:
            v = HIGHEST_US
        bucket = (v | _MASK).bit_length() - _UNIT - _HALF_MAG - 1
        counts[((bucket + 1) << _HALF_MAG) + (v >> (bucket + _UNIT)) - _HALF] += n
        total += n
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    h.total_count += total
    h.min_value, h.max_value = lo, hi


_US_PER_S = 1e6


def encode(h: HdrHistogram) -> str:
    return h.encode().decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram from the encoded histograms of every worker (exact: counts add bucket by bucket)."""
    out = new_histogram()
    for text in encoded:
        if text:
            out.add(decode(text))
    return out


def merge_histograms(parts: Iterable[HdrHistogram]) -> HdrHistogram:
    out = new_histogram()
    for h in parts:
        out.add(h)
    return out


def summary_ms(h: HdrHistogram) -> dict[str, float]:
    """{p50, p90, p95, p99, p99.9, max, min, mean} in milliseconds, 3 decimals (µs resolution)."""
    if h.get_total_count() == 0:
        return {}
    out = {f"p{p:g}": round(h.get_value_at_percentile(p) / 1000.0, 3) for p in PERCENTILES}
    out["max"] = round(h.get_max_value() / 1000.0, 3)
    out["min"] = round(h.get_min_value() / 1000.0, 3)
    out["mean"] = round(h.get_mean_value() / 1000.0, 3)
    return out


def bucket_bounds(per_decade: int = 10) -> list[int]:
    """Upper bounds (µs) spaced evenly on a log scale, 3 significant digits: … 100, 125, 158, 199, 251, 316 …"""
    bounds: list[int] = []
    k = 0
    while True:
        b = max(1, int(float(f"{10 ** (k / per_decade):.3g}")))
        if not bounds or b > bounds[-1]:
            bounds.append(b)
        if b >= HIGHEST_US:
            return bounds
        k += 1


def buckets(h: HdrHistogram, per_decade: int = 10) -> list[list[int]]:
    """[[upper_bound_us, count], …] from the first to the last non-empty bucket (for the report's chart)."""
    bounds = bucket_bounds(per_decade)
    counts = [0] * len(bounds)
    i = 0
    for it in h.get_recorded_iterator():
        v = it.value_iterated_to
        while bounds[i] < v and i < len(bounds) - 1:
            i += 1
        counts[i] += it.count_added_in_this_iter_step
    nz = [j for j, n in enumerate(counts) if n]
    if not nz:
        return []
    return [[bounds[j], counts[j]] for j in range(nz[0], nz[-1] + 1)]
