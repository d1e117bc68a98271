"""Growth: wirebridge's time and memory against stream size, and the long-arguments figure.

Time must grow linearly with the number of chunks (a least-squares line through the points, its
slope in microseconds per chunk and its R²), and the cost per chunk must not rise with size.
Memory cannot be constant, since the finished items carry the whole text (DESIGN D4), but it must
stay bounded per chunk: the tracemalloc peak of one stream, divided by its chunks and by its
bytes, must not rise with size. Memory is measured in runs of its own, since tracing slows
allocation ~2x and would spoil the timings.

Long arguments: a 10 MB tool-call argument in 100,000 fragments must cost ~10x a 1 MB one in 10,000
(arguments gathered in a list and joined once, not concatenated: that would be quadratic).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import workload
from decode import Clients, consume_wirebridge


async def _timed(clients: Clients, spec: str, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time (this process) of `repeats` runs."""
    _, expect = workload.body(spec)
    wall = cpu = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        await consume_wirebridge(clients, spec, expect)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


async def _peak(clients: Clients, spec: str) -> int:
    _, expect = workload.body(spec)
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        await consume_wirebridge(clients, spec, expect)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


def fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """Least squares y = a + b x: slope b, intercept a, and R²."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return {"slope": slope, "intercept": intercept, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


async def run(base_url: str, sizes: list[int], repeats: int) -> dict[str, Any]:
    points = []
    async with Clients(base_url) as clients:
        await _peak(clients, "mix-1000")  # warm up: connect, imports
        for n in sizes:
            spec = f"mix-{n}"
            peak = await _peak(clients, spec)  # first: it also makes the upstream build the body
            wall, cpu = await _timed(clients, spec, repeats)
            points.append(_point(n, len(workload.body(spec)[0]), wall, cpu, peak))
    return _fits(points)


def _point(n: int, size: int, wall: float, cpu: float, peak: int) -> dict[str, Any]:
    return {
        "chunks": n,
        "bytes": size,
        "wall_s": wall,
        "cpu_s": cpu,
        "us_per_chunk": wall / n * 1e6,
        "cpu_us_per_chunk": cpu / n * 1e6,
        "peak_bytes": peak,
        "peak_bytes_per_chunk": peak / n,
        "peak_per_body_byte": peak / size,
    }


def _fits(points: list[dict[str, Any]]) -> dict[str, Any]:
    xs = [float(p["chunks"]) for p in points]
    time_fit = fit(xs, [p["wall_s"] for p in points])
    cpu_fit = fit(xs, [p["cpu_s"] for p in points])
    mem_fit = fit(xs, [float(p["peak_bytes"]) for p in points])
    # Per-chunk cost of the largest size against the second-smallest (the smallest is dominated
    # by the fixed cost of a connection, which the fit's intercept absorbs).
    ref = points[1] if len(points) > 2 else points[0]
    last = points[-1]
    return {
        "points": points,
        "time_fit": {
            "us_per_chunk": time_fit["slope"] * 1e6,
            "intercept_ms": time_fit["intercept"] * 1e3,
            "r2": time_fit["r2"],
        },
        "cpu_fit": {
            "us_per_chunk": cpu_fit["slope"] * 1e6,
            "intercept_ms": cpu_fit["intercept"] * 1e3,
            "r2": cpu_fit["r2"],
        },
        "memory_fit": {
            "bytes_per_chunk": mem_fit["slope"],
            "intercept_bytes": mem_fit["intercept"],
            "r2": mem_fit["r2"],
        },
        "per_chunk_time_largest_vs_ref": last["us_per_chunk"] / ref["us_per_chunk"],
        "per_chunk_cpu_largest_vs_ref": last["cpu_us_per_chunk"] / ref["cpu_us_per_chunk"],
        "per_chunk_memory_largest_vs_ref": last["peak_bytes_per_chunk"]
        / ref["peak_bytes_per_chunk"],
        "ref_chunks": ref["chunks"],
    }


async def run_long_arguments(base_url: str, repeats: int) -> dict[str, Any]:
    """Long arguments: 1 MB / 10k fragments against 10 MB / 100k fragments."""
    small, large = "args-1000000-10000", "args-10000000-100000"
    async with Clients(base_url) as clients:
        await _peak(clients, "mix-1000")  # warm up: connect, imports
        m_small = await _peak(clients, small)  # first: the upstream builds the bodies
        m_large = await _peak(clients, large)
        t_small, c_small = await _timed(clients, small, repeats)
        t_large, c_large = await _timed(clients, large, repeats)
    return {
        "small": {
            "arg_bytes": 1_000_000,
            "chunks": 10_000,
            "wall_s": t_small,
            "cpu_s": c_small,
            "peak_bytes": m_small,
        },
        "large": {
            "arg_bytes": 10_000_000,
            "chunks": 100_000,
            "wall_s": t_large,
            "cpu_s": c_large,
            "peak_bytes": m_large,
        },
        "time_ratio": t_large / t_small,
        "cpu_ratio": c_large / c_small,
        "memory_ratio": m_large / m_small,
        "linear_if_near": 10.0,
        "arg_mb_per_s": 10.0 / t_large,
    }
