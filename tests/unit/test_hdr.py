"""HdrHistogram helpers: exact merging across workers, µs precision, report buckets."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings, strategies as st

from pytest_pgready.workload import hdr


def _exact_percentile(values: list[int], p: float) -> int:
    xs = sorted(values)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def test_percentiles_within_three_significant_digits():
    rnd = random.Random(7)
    values = [int(rnd.lognormvariate(6.5, 0.8)) + 1 for _ in range(20_000)]  # ~700 µs median, long tail
    h = hdr.new_histogram()
    for v in values:
        hdr.record_us(h, v)
    for p in (50, 95, 99):
        exact = _exact_percentile(values, p)
        got = h.get_value_at_percentile(p)
        assert abs(got - exact) <= exact * 0.001 + 1, (p, got, exact)


def test_summary_is_milliseconds_with_microsecond_resolution():
    h = hdr.new_histogram()
    for us in (250, 500, 750, 1000):
        hdr.record_us(h, us)
    s = hdr.summary_ms(h)
    assert s["p50"] == 0.5 and s["min"] == 0.25 and s["max"] == 1.0
    assert set(s) >= {"p50", "p90", "p95", "p99", "max", "mean"}


def test_empty_histogram_summarises_to_nothing():
    assert hdr.summary_ms(hdr.new_histogram()) == {}
    assert hdr.buckets(hdr.new_histogram()) == []


def test_out_of_range_values_are_clamped_not_dropped():
    h = hdr.new_histogram()
    hdr.record_us(h, 0)
    hdr.record_us(h, 10 * hdr.HIGHEST_US)
    assert h.get_total_count() == 2
    assert h.get_min_value() == 1
    assert h.get_max_value() >= hdr.HIGHEST_US * 0.999


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=1, max_size=400), st.integers(1, 5))
def test_merge_of_encoded_parts_equals_the_whole(values, parts):
    whole = hdr.new_histogram()
    pieces = [hdr.new_histogram() for _ in range(parts)]
    for i, v in enumerate(values):
        hdr.record_us(whole, v)
        hdr.record_us(pieces[i % parts], v)
    merged = hdr.merge(hdr.encode(p) for p in pieces)
    assert merged.get_total_count() == len(values)
    for p in (50, 90, 99, 100):
        assert merged.get_value_at_percentile(p) == whole.get_value_at_percentile(p)


def test_buckets_cover_every_request_in_increasing_bounds():
    rnd = random.Random(1)
    h = hdr.new_histogram()
    for _ in range(5000):
        hdr.record_us(h, rnd.randint(80, 40_000))
    b = hdr.buckets(h)
    assert sum(n for _, n in b) == 5000
    bounds = [u for u, _ in b]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
    assert b[0][1] > 0 and b[-1][1] > 0  # trimmed to the first and last non-empty bucket
    assert bounds[0] <= 100 and bounds[-1] >= 40_000
    assert len(b) <= 30  # ten per decade: readable in the report


def test_bucket_bounds_ten_per_decade():
    bounds = hdr.bucket_bounds()
    assert bounds[:4] == [1, 2, 3, 4] or bounds[0] == 1
    assert 1000 in bounds and 10_000 in bounds and bounds[-1] >= hdr.HIGHEST_US


def test_fast_record_lands_in_the_same_buckets_as_hdrh():
    """record_us inlines HdrHistogram's index arithmetic (it runs once per request in the load workers):
    every value, clamped the same way, must land where hdrh's own record_value puts it."""
    rnd = random.Random(11)
    values = ([-5, 0, 0.2, 0.5, 1, 1.49, 1.5, 2.5, 59_999_999.6, 60_000_000, 70_000_000] + list(range(0, 5000))
              + [2 ** k for k in range(27)] + [2 ** k - 1 for k in range(1, 27)] + [2 ** k + 1 for k in range(27)]
              + [rnd.lognormvariate(6, 2.5) for _ in range(50_000)])
    fast, ref = hdr.new_histogram(), hdr.new_histogram()
    for v in values:
        hdr.record_us(fast, v)
        ref.record_value(min(hdr.HIGHEST_US, max(hdr.LOWEST_US, int(round(v)))))
    assert hdr.encode(fast) == hdr.encode(ref)
    assert (fast.get_total_count(), fast.get_min_value(), fast.get_max_value()) == \
        (ref.get_total_count(), ref.get_min_value(), ref.get_max_value())
    assert hdr.summary_ms(fast) == hdr.summary_ms(ref)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-10, max_value=1e8, allow_nan=False), min_size=1, max_size=50))
def test_fast_record_matches_hdrh_for_any_values(values):
    fast, ref = hdr.new_histogram(), hdr.new_histogram()
    for v in values:
        hdr.record_us(fast, v)
        ref.record_value(min(hdr.HIGHEST_US, max(hdr.LOWEST_US, int(round(v)))))
    assert hdr.encode(fast) == hdr.encode(ref) and fast.get_min_value() == ref.get_min_value()


def test_bulk_record_of_seconds_matches_one_record_per_value():
    """The load workers record a second's latencies at once (counted in C first): the histogram, its
    count, min and max must be what recording each value alone gives, including clamped ones."""
    rnd = random.Random(5)
    values_s = [rnd.lognormvariate(-8, 1.5) for _ in range(20_000)] + [0.0, 2e-7, 1e-6, 0.5e-6, 61.0, 59.9999996]
    bulk, one = hdr.new_histogram(), hdr.new_histogram()
    hdr.record_seconds(bulk, values_s[:7000])
    hdr.record_seconds(bulk, values_s[7000:])
    hdr.record_seconds(bulk, [])
    for v in values_s:
        hdr.record_us(one, v * 1e6)
    assert hdr.encode(bulk) == hdr.encode(one)
    assert (bulk.get_total_count(), bulk.get_min_value(), bulk.get_max_value()) == \
        (one.get_total_count(), one.get_min_value(), one.get_max_value())
    assert bulk.get_total_count() == len(values_s) and bulk.max_value == hdr.HIGHEST_US
