"""The HTML report's chart: kube-proxy rules a packet crosses, iptables vs nftables, as inline SVG."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

_BAR = 18
_GAP = 10
_LABEL = 300
_WIDTH = 880


def rules_chart(paths: Mapping[str, Any]) -> str:
    """An SVG bar chart of `paths["samples"]`; every label escaped."""
    samples = paths.get("samples") or []
    if not samples:
        return ""
    top = max(max(s["iptables"]["rules"], s["nftables"]["rules"]) for s in samples) or 1
    scale = (_WIDTH - _LABEL - 60) / top
    group = 2 * _BAR + 3 * _GAP
    height = group * len(samples) + 40
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}">',
        '<title id="chart-title">kube-proxy rules a packet crosses: iptables mode vs nftables mode</title>',
    ]
    for i, s in enumerate(samples):
        y = i * group + _GAP
        name = f"{s['service']} ({s['position']} of {s['of']})"
        parts.append(f'<text x="0" y="{y + _BAR + 4}">{escape(_short(name))}<title>{escape(name)}</title></text>')
        for k, (mode, css) in enumerate((("iptables", "bar-iptables"), ("nftables", "bar-nftables"))):
            count = int(s[mode]["rules"])
            predicted = bool(s[mode].get("predicted"))
            css = "bar-predicted" if predicted else css
            by = y + k * (_BAR + 2)
            width = max(2.0, count * scale)
            label = f"{mode}{' (predicted)' if predicted else ''}: {count}"
            parts.append(
                f'<rect class="{css}" x="{_LABEL}" y="{by}" width="{width:.1f}" height="{_BAR}">'
                f"<title>{escape(label)}</title></rect>"
            )
            parts.append(f'<text x="{_LABEL + width + 6:.1f}" y="{by + _BAR - 5}">{escape(label)}</text>')
    axis_y = group * len(samples) + 6
    parts.append(f'<line class="axis" x1="{_LABEL}" y1="{axis_y}" x2="{_WIDTH - 40}" y2="{axis_y}"/>')
    parts.append(f'<text x="{_LABEL}" y="{axis_y + 16}">0</text>')
    parts.append(f'<text x="{_WIDTH - 60}" y="{axis_y + 16}">{top} rules</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int = 44) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["rules_chart"]
