"""Turn `results.json`'s dict into the Markdown tables that `run.py` prints and the docs show."""

from __future__ import annotations

import sys
from typing import Any


def progress(section: str, data: dict[str, Any]) -> None:
    note = "skipped" if "skipped" in data else "done"
    print(f"[bench] {section}: {note}", file=sys.stderr, flush=True)


def _n(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def machine(m: dict[str, Any]) -> str:
    p = m["packages"]
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; "
        f"{m['implementation']} {m['python']}; wirebridge {p.get('wirebridge')} "
        f"(commit {m['git_commit']}), httpx {p.get('httpx')}, msgspec {p.get('msgspec')}, "
        f"openai {p.get('openai')}, openai-agents {p.get('openai-agents')}"
    )


def decode_section(d: dict[str, Any]) -> list[str]:
    body = d["body"]
    lines = [
        f"### Decode throughput ({_n(body['chunks'])} chunks, {body['bytes'] / 1e6:.1f} MB, "
        f"best of {d['repeats']})",
        "",
    ]
    wb = d["consumers"].get("wirebridge")
    rows = []
    for name, row in d["consumers"].items():
        ratio = ""
        if wb:
            ratio = (
                f"{wb['chunks_per_s'] / row['chunks_per_s']:.2f}x / "
                f"{row['cpu_s'] / wb['cpu_s']:.2f}x"
            )
        rows.append(
            [
                name,
                _n(row["chunks_per_s"]),
                _n(row["chunks_per_cpu_s"]),
                _n(row["events"]),
                _n(row["events_per_s"]),
                f"{row['wall_s']:.3f}",
                f"{row['cpu_s']:.3f}",
                ratio,
            ]
        )
    lines += _table(
        [
            "consumer",
            "chunks/s",
            "chunks/CPU s",
            "events",
            "events/s",
            "wall s",
            "CPU s",
            "wirebridge speed ÷ it (wall / CPU)",
        ],
        rows,
    )
    if d.get("met") is not None:
        r = d["ratios"]["wirebridge/floor"]
        lines += [
            "",
            f"Target: wirebridge ≥ 0.5x the floor: **{r:.2f}x, "
            f"{'met' if d['met'] else 'MISSED'}**.",
        ]
    return lines


def growth_section(g: dict[str, Any], la: dict[str, Any] | None) -> list[str]:
    lines = ["### Growth (wirebridge `Client.stream`, mixed body)", ""]
    rows = [
        [
            _n(p["chunks"]),
            f"{p['bytes'] / 1e6:.2f}",
            f"{p['wall_s'] * 1e3:.1f}",
            f"{p['us_per_chunk']:.2f}",
            f"{p['cpu_s'] * 1e3:.1f}",
            f"{p['cpu_us_per_chunk']:.2f}",
            f"{p['peak_bytes'] / 1e6:.2f}",
            _n(p["peak_bytes_per_chunk"]),
            f"{p['peak_per_body_byte']:.2f}",
        ]
        for p in g["points"]
    ]
    lines += _table(
        [
            "chunks",
            "body MB",
            "wall ms",
            "µs/chunk",
            "CPU ms",
            "CPU µs/chunk",
            "peak MB (tracemalloc)",
            "peak B/chunk",
            "peak ÷ body",
        ],
        rows,
    )
    tf, mf = g["time_fit"], g["memory_fit"]
    lines += [
        "",
        f"Time: slope **{tf['us_per_chunk']:.2f} µs/chunk** "
        f"(intercept {tf['intercept_ms']:.1f} ms, R² {tf['r2']:.4f}); "
        f"cost per chunk at {_n(g['points'][-1]['chunks'])} ÷ at "
        f"{_n(g['ref_chunks'])}: {g['per_chunk_time_largest_vs_ref']:.2f}x. CPU: slope "
        f"**{g['cpu_fit']['us_per_chunk']:.2f} µs/chunk** (R² {g['cpu_fit']['r2']:.4f}); per "
        f"chunk at the largest ÷ at {_n(g['ref_chunks'])}: "
        f"{g['per_chunk_cpu_largest_vs_ref']:.2f}x.",
        f"Memory: slope **{_n(mf['bytes_per_chunk'])} B/chunk** (R² {mf['r2']:.4f}); peak per "
        f"chunk at {_n(g['points'][-1]['chunks'])} ÷ at {_n(g['ref_chunks'])}: "
        f"{g['per_chunk_memory_largest_vs_ref']:.2f}x. The finished items hold the whole output, "
        "so memory grows with it; what stays bounded is the cost per chunk.",
    ]
    if la is not None:
        s, big = la["small"], la["large"]
        lines += [
            "",
            "Long arguments, one tool call's: "
            f"1 MB in 10,000 fragments {s['wall_s'] * 1e3:.0f} ms "
            f"(peak {s['peak_bytes'] / 1e6:.1f} MB), "
            f"10 MB in 100,000 fragments {big['wall_s'] * 1e3:.0f} ms "
            f"(peak {big['peak_bytes'] / 1e6:.1f} MB): wall ratio **{la['time_ratio']:.2f}x**, "
            f"CPU ratio **{la['cpu_ratio']:.2f}x**, memory ratio {la['memory_ratio']:.2f}x "
            "for 10x the size (linear: ~10x).",
        ]
    return lines


def skipped(name: str, data: dict[str, Any]) -> list[str]:
    return [f"### {name.capitalize()}", "", f"Skipped: {data['skipped']}."]


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Machine: {machine(results['machine'])}.", ""]
    load = results.get("load_average")
    lines.append(
        f"Mode: {results['mode']}, run {results['started']}, {results['elapsed_s']:.0f} s"
        + (f"; load average {load['start']} at start, {load['end']} at end." if load else ".")
    )
    if "decode" in results:
        lines += ["", *decode_section(results["decode"])]
    if "growth" in results:
        lines += ["", *growth_section(results["growth"], results.get("long_arguments"))]
    for name in ("bridge", "concurrency", "stall", "ops", "websocket"):
        data = results.get(name)
        if data is None:
            continue
        if "skipped" in data:
            lines += ["", *skipped(name, data)]
        elif name == "stall":
            import stall

            lines += ["", *stall.markdown(data)]
        elif name == "ops":
            import ops_bench

            lines += ["", *ops_bench.markdown(data)]
        elif name == "websocket":
            import ws_bench

            lines += ["", *ws_bench.markdown(data)]
        else:
            import server_bench

            lines += ["", *server_bench.markdown(name, data)]
    return "\n".join(lines)
