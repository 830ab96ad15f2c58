"""Server-side SVG line charts (no JavaScript, no build step)."""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 160, 28


def sparkline(points: list[tuple[datetime, float]]) -> Markup:
    """An SVG polyline of ``points`` with min/max labels; empty data says so."""
    if len(points) < 2:
        return Markup('<p class="muted">—</p>')
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span_t = (t1 - t0) or 1.0
    span_v = (high - low) or 1.0
    coords = " ".join(
        f"{PAD + (t.timestamp() - t0) / span_t * (WIDTH - 2 * PAD):.1f},"
        f"{HEIGHT - PAD - (v - low) / span_v * (HEIGHT - 2 * PAD):.1f}"
        for t, v in points
    )
    # Only numbers and a formatted date go into the markup: nothing to escape.
    return Markup(  # noqa: S704
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart">'
        f'<polyline fill="none" stroke="#0031D8" stroke-width="2" points="{coords}"/>'
        f'<text x="2" y="{PAD - 8}">{high:.1f}</text>'
        f'<text x="2" y="{HEIGHT - 6}">{low:.1f}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end">'
        f"{points[-1][0]:%m-%d %H:%M}</text></svg>"
    )
