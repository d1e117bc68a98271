"""wirebridge benchmarks: `python bench/run.py [--quick] [--only SECTION ...] [--out PATH]`.

Runs every section in one process against loopback servers of its own, prints Markdown tables
and writes `bench/results.json` (absolute numbers, the ratios between them, the machine). Every
ratio compares figures measured in the same run on the same bytes. `--quick` keeps the run under
two minutes (one repetition, fewer sizes, fewer concurrent streams).

Sections: decode (throughput against the peers), growth (time and memory against size, and
long tool-call arguments), bridge (TTFB added by `wirebridge serve`, relayed events/s),
concurrency (100/500/1,000 streams through one server process). The last two need the server
(`wirebridge serve`); without it they are reported as skipped, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import decode  # noqa: E402
import growth  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402

SECTIONS = ("decode", "growth", "bridge", "concurrency", "stall", "ops", "websocket")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    versions: dict[str, str | None] = {}
    for dist in ("wirebridge", "httpx", "msgspec", "openai", "openai-agents", "uvicorn"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": versions,
        "git_commit": commit,
    }


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def server_available() -> str | None:
    """None if `wirebridge serve` can run, else why not."""
    try:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "wirebridge"), "serve", "--help"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`wirebridge serve --help` failed: {exc}"
    if out.returncode != 0 or "--upstream" not in out.stdout:
        return "`wirebridge serve --upstream URL` is not available yet"
    return None


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    only = set(args.only or SECTIONS)
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    load_start = _load()
    t0 = time.perf_counter()
    with procs.Upstream() as upstream:
        if "decode" in only:
            names = list(decode.CONSUMERS)
            results["decode"] = await decode.run(
                upstream.base_url, args.chunks, 1 if quick else 3, names
            )
            report.progress("decode", results["decode"])
        if "growth" in only:
            sizes = [1_000, 10_000, 100_000] if quick else [1_000, 3_000, 10_000, 30_000, 100_000]
            results["growth"] = await growth.run(upstream.base_url, sizes, 1 if quick else 3)
            results["long_arguments"] = await growth.run_long_arguments(
                upstream.base_url, 1 if quick else 3
            )
            report.progress("growth", results["growth"])
        server_sections = only & {"bridge", "concurrency", "stall", "ops", "websocket"}
        if server_sections:
            why = server_available()
            for name in sorted(server_sections):
                if why is not None:
                    results[name] = {"skipped": why}
                elif name == "stall":
                    import stall

                    results[name] = await stall.run(upstream, quick)
                elif name == "ops":
                    import ops_bench

                    results[name] = await ops_bench.run(upstream, quick)
                elif name == "websocket":
                    import ws_bench

                    results[name] = await ws_bench.run_section(upstream, quick)
                else:
                    import server_bench

                    results[name] = await server_bench.run(name, upstream, quick)
                report.progress(name, results[name])
    results["elapsed_s"] = time.perf_counter() - t0
    # Other work on the machine inflates wall times (not CPU times): say how busy it was.
    results["load_average"] = {"start": load_start, "end": _load()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under two minutes")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section")
    parser.add_argument("--chunks", type=int, default=50_000, help="chunks in the decode body")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(report.markdown(results))
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
