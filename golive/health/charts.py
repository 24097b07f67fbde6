"""Charts as inline SVG, drawn in Python: the report page needs no script and nothing from the network.

``line_chart`` plots sizes over time (one line per series, a point per report, the value in each point's
tooltip); ``bar_chart`` shows current sizes split into parts (table, indexes, TOAST).
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape

from golive.units import human_bytes

PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569",
           "#ea580c"]
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def _nice_step(span: float, ticks: int = 5) -> float:
    if span <= 0:
        return 1.0
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _time_label(t: float, span: float) -> str:
    d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    if span < 3600:
        return d.strftime("%H:%M:%S")
    if span < 2 * 86400:
        return d.strftime("%m-%d %H:%M")
    return d.strftime("%Y-%m-%d")


def _epoch(iso: str) -> float:
    d = dt.datetime.fromisoformat(iso)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def line_chart(series: dict[str, list[tuple[str, int]]], *, title: str, width: int = 980, height: int = 280,
               chart_id: str = "") -> str:
    """An SVG line chart of byte sizes over time; ``series`` maps a name to ``(iso time, bytes)`` points."""
    series = {k: v for k, v in series.items() if v}
    left, right, top, bottom = 78, 250, 16, 36
    pw, ph = width - left - right, height - top - bottom
    out = [f'<svg class="chart line-chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
           f'style="{FONT};font-size:11px">', f"<title>{escape(title)}</title>",
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#f8fafc" stroke="#cbd5e1"/>']
    if not series:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" fill="#64748b">no data yet</text>')
        return "".join(out) + "</svg>"
    times = [_epoch(t) for pts in series.values() for t, _ in pts]
    values = [v for pts in series.values() for _, v in pts]
    t0, t1 = min(times), max(times)
    if t1 - t0 < 1:
        t0, t1 = t0 - 1800, t1 + 1800  # one snapshot: centre it
    step = _nice_step(max(values) or 1)
    vmax = step * math.ceil((max(values) or 1) / step)

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def y(v: float) -> float:
        return top + ph - v / vmax * ph

    out.append('<g class="axis y-axis">')
    v = 0.0
    while v <= vmax + step / 2:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e2e8f0"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#334155">{human_bytes(v)}</text>')
        v += step
    out.append('</g><g class="axis x-axis">')
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#64748b"/>'
                   f'<text x="{x(t):.1f}" y="{top + ph + 18}" text-anchor="middle" fill="#334155">'
                   f'{_time_label(t, t1 - t0)}</text>')
    out.append("</g>")
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = [(x(_epoch(t)), y(v), t, v) for t, v in sorted(pts, key=lambda p: _epoch(p[0]))]
        out.append(f'<g class="series" data-name="{escape(name)}">')
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)
            out.append(f'<polyline class="line" points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for cx, cy, t, v in coords:
            out.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{color}">'
                       f"<title>{escape(name)}: {human_bytes(v)} at {escape(t)}</title></circle>")
        ly = top + 8 + i * 18
        label = name if len(name) <= 28 else name[:27] + "…"
        out.append(f'<rect x="{left + pw + 14}" y="{ly - 8}" width="12" height="12" fill="{color}"/>'
                   f'<text x="{left + pw + 32}" y="{ly + 2}" fill="#0f172a">{escape(label)} '
                   f'({human_bytes(coords[-1][3])})<title>{escape(name)}</title></text></g>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(items: list[tuple[str, list[tuple[str, int]]]], *, title: str, width: int = 980,
              chart_id: str = "") -> str:
    """A horizontal stacked bar chart: ``items`` is ``[(name, [(part, bytes), ...]), ...]``."""
    left, right, row, top = 200, 90, 22, 24
    height = top + row * max(len(items), 1) + 30
    pw = width - left - right
    total = max((sum(b for _, b in parts) for _, parts in items), default=0) or 1
    parts_names: list[str] = []
    for _, parts in items:
        for p, _ in parts:
            if p not in parts_names:
                parts_names.append(p)
    colors = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(parts_names)}
    out = [f'<svg class="chart bar-chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
           f'style="{FONT};font-size:11px">', f"<title>{escape(title)}</title>"]
    for i, p in enumerate(parts_names):  # legend
        out.append(f'<rect x="{left + i * 110}" y="4" width="12" height="12" fill="{colors[p]}"/>'
                   f'<text x="{left + i * 110 + 16}" y="14" fill="#0f172a">{escape(p)}</text>')
    if not items:
        out.append(f'<text x="{left}" y="{top + 14}" fill="#64748b">no tables</text>')
    for i, (name, parts) in enumerate(items):
        yy = top + i * row
        label = name if len(name) <= 30 else name[:29] + "…"
        out.append(f'<g class="bar" data-name="{escape(name)}"><text x="{left - 6}" y="{yy + 14}" text-anchor="end" '
                   f'fill="#0f172a">{escape(label)}<title>{escape(name)}</title></text>')
        xx = float(left)
        for p, b in parts:
            w = b / total * pw
            if w > 0:
                out.append(f'<rect class="segment" x="{xx:.1f}" y="{yy + 3}" width="{max(w, 0.5):.1f}" height="{row - 6}" '
                           f'fill="{colors[p]}"><title>{escape(name)} {escape(p)}: {human_bytes(b)}</title></rect>')
            xx += w
        out.append(f'<text x="{xx + 6:.1f}" y="{yy + 14}" fill="#334155">{human_bytes(sum(b for _, b in parts))}</text></g>')
    out.append("</svg>")
    return "".join(out)
