"""The dashboard's bar chart, drawn as inline SVG on the server (no JavaScript, no library)."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 1140, 230
LEFT, RIGHT, TOP, BOTTOM = 38, 8, 12, 26


def _nice_max(value: int) -> int:
    if value <= 4:
        return 4
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * ((value + step - 1) // step)
    return value


def hourly_bars(hourly: list[dict]) -> Markup:
    """Stacked bars per hour: processed (succeeded) below, failed on top."""
    top = _nice_max(max((h["succeeded"] + h["failed"] for h in hourly), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(hourly), 1)
    bar = max(slot * 0.7, 1)
    processed = sum(h["succeeded"] for h in hourly)
    failed = sum(h["failed"] for h in hourly)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Events processed and failed per hour, last 24 hours</title>',
        f'<desc id="chart-desc">{processed} processed and {failed} failed in the last 24 hours.</desc>',
    ]
    for i in range(5):
        value = top * i // 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    for i, h in enumerate(hourly):
        hour = datetime.fromisoformat(h["hour"])
        x = LEFT + i * slot + (slot - bar) / 2
        ok_h = plot_h * h["succeeded"] / top
        bad_h = plot_h * h["failed"] / top
        label = escape(
            f"{hour:%H}:00–{(hour.hour + 1) % 24:02d}:00 UTC: {h['succeeded']} processed, {h['failed']} failed"
        )
        parts.append(f"<g><title>{label}</title>")
        base = TOP + plot_h
        parts.append(f'<rect class="hit" x="{LEFT + i * slot:.1f}" y="{TOP}" width="{slot:.1f}" height="{plot_h}"/>')
        if ok_h:
            parts.append(f'<rect class="ok" x="{x:.1f}" y="{base - ok_h:.1f}" width="{bar:.1f}" height="{ok_h:.1f}"/>')
        if bad_h:
            parts.append(
                f'<rect class="bad" x="{x:.1f}" y="{base - ok_h - bad_h:.1f}" width="{bar:.1f}" height="{bad_h:.1f}"/>'
            )
        parts.append("</g>")
        if i % 3 == 0 or i == len(hourly) - 1:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{hour:%H}:00</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
