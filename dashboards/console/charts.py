"""Charts: sparklines drawn as SVG on the server (the home page shows dozens; no script
needed), and the data of a signal's time-series chart in the column layout uPlot
draws (`[[times], [values of series 1], ...]`, `null` for no data)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 120, 28, 2


def sparkline(points: Sequence[tuple[float, float | None]], label: str) -> Markup:
    """An inline SVG polyline of (time, value) points, scaled to its own range; a flat
    line through the middle for a constant series, an empty frame for none."""
    pts = [(t, v) for t, v in points if v is not None and math.isfinite(v)]
    title = f"<title>{escape(label)}</title>"
    frame = (
        f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}">{title}'
    )
    if not pts:
        return Markup(frame + "</svg>")
    t0, t1 = pts[0][0], pts[-1][0]
    lo = min(v for _, v in pts)
    hi = max(v for _, v in pts)
    span_t = (t1 - t0) or 1.0

    def y(v: float) -> float:
        if hi == lo:
            return HEIGHT / 2
        return PAD + (HEIGHT - 2 * PAD) * (1 - (v - lo) / (hi - lo))

    coords = " ".join(
        f"{PAD + (WIDTH - 2 * PAD) * (t - t0) / span_t:.1f},{y(v):.1f}" for t, v in pts
    )
    return Markup(f'{frame}<polyline points="{coords}"/></svg>')


def uplot_columns(
    series: dict[str, Sequence[tuple[float, float]]],
) -> tuple[list[str], list[list[float | None]]]:
    """(epoch seconds, value) points per series into uPlot's columns on one shared,
    sorted time axis; a series without a point at a time gets null there."""
    names = sorted(series)
    times = sorted({t for pts in series.values() for t, _ in pts})
    index = {t: i for i, t in enumerate(times)}
    columns: list[list[float | None]] = [list(times)]
    for name in names:
        col: list[float | None] = [None] * len(times)
        for t, v in series[name]:
            col[index[t]] = v if math.isfinite(v) else None
        columns.append(col)
    return names, columns
