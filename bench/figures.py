"""The one shape every benchmark reports in, and the table it is printed as.

A figure is {name, value, unit, baseline, ratio}: `baseline` names the figure measured in the same run that
this one is compared with, `ratio` is value / that figure's value (None when there is no baseline).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Figure = dict[str, Any]


def figure(
    name: str, value: float, unit: str, baseline: str | None = None, base: float | None = None
) -> Figure:
    ratio = None if baseline is None or not base else round(value / base, 3)
    return {"name": name, "value": round(value, 4), "unit": unit, "baseline": baseline, "ratio": ratio}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_figures(prefix: str, latencies: list[float], unit: str) -> list[Figure]:
    """p50, p99 and max of one set of round trips."""
    return [
        figure(f"{prefix}.p50", statistics.median(latencies), unit),
        figure(f"{prefix}.p99", percentile(latencies, 0.99), unit),
        figure(f"{prefix}.max", max(latencies), unit),
    ]


def compared(
    figures: list[Figure], against: dict[str, Figure], baseline_of: Callable[[str], str | None]
) -> list[Figure]:
    """The same figures with `baseline`/`ratio` filled from `against` (name -> figure of the same run)."""
    result = []
    for item in figures:
        base_name = baseline_of(item["name"])
        base = against.get(base_name) if base_name else None
        if base is None:
            result.append(item)
        else:
            result.append(figure(item["name"], item["value"], item["unit"], base_name, base["value"]))
    return result


def format_value(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def print_table(figures: list[Figure]) -> None:
    width = max([len(f["name"]) for f in figures] + [6])
    base_width = max([len(f["baseline"] or "") for f in figures] + [2])
    print(f"{'figure':{width}} {'value':>12} {'unit':10} {'vs':{base_width}} {'ratio':>8}")
    for f in figures:
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        value = format_value(f["value"])
        print(f"{f['name']:{width}} {value:>12} {f['unit']:10} {f['baseline'] or '':{base_width}} {ratio:>8}")


def markdown_table(figures: list[Figure]) -> str:
    lines = ["| figure | value | unit | compared with | ratio |", "|---|---:|---|---|---:|"]
    for f in figures:
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        lines.append(
            f"| {f['name']} | {format_value(f['value'])} | {f['unit']} | {f['baseline'] or ''} | {ratio} |"
        )
    return "\n".join(lines)
