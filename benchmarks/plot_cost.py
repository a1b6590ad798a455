"""Draw what each freeze saves (peak memory, step time) as an SVG bar chart, without plotting libraries.

Reads ``results/gpu_cost_estimate.json`` (``gpu_cost.py --estimate-only``) and writes
``results/cost_savings.svg``: one pair of bars per model and rule text, the saving in
percent of full fine-tuning (1 - estimated ratio).

    python benchmarks/plot_cost.py
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROW, BAR, LEFT, WIDTH = 34, 12, 330, 420
COLORS = {"peak memory": "#3b6ea8", "step time": "#d08a2c"}


def svg(rows: list[dict]) -> str:
    height = 40 + ROW * len(rows) + 30
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 60}" height="{height}" '
            'font-family="sans-serif" font-size="12">'
        ),
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="18" font-weight="bold">Saved by each freeze vs full fine-tuning (estimate, bf16, AdamW)</text>',
    ]
    for pct in (0, 25, 50, 75, 100):
        x = LEFT + WIDTH * pct / 100
        out.append(f'<line x1="{x}" y1="28" x2="{x}" y2="{height - 28}" stroke="#ddd"/>')
        out.append(
            f'<text x="{x}" y="{height - 14}" text-anchor="middle" fill="#555">{pct}%</text>'
        )
    for i, r in enumerate(rows):
        y = 34 + ROW * i
        out.append(
            f'<text x="{LEFT - 8}" y="{y + 15}" text-anchor="end">{escape(r["model"])}: {escape(r["rules"])}</text>'
        )
        for j, (label, key) in enumerate(
            (("peak memory", "est_peak_ratio"), ("step time", "est_time_ratio"))
        ):
            saving = max(0.0, 1.0 - r[key])
            by = y + j * (BAR + 1)
            out.append(
                f'<rect x="{LEFT}" y="{by}" width="{WIDTH * saving:.1f}" height="{BAR}" fill="{COLORS[label]}"/>'
            )
            out.append(
                f'<text x="{LEFT + WIDTH * saving + 4:.1f}" y="{by + 10}" fill="#333">{100 * saving:.0f}%</text>'
            )
    lx = LEFT
    for label, color in COLORS.items():
        out.append(f'<rect x="{lx}" y="{height - 10}" width="10" height="8" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{height - 2}">{label}</text>')
        lx += 120
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    data = json.loads((RESULTS / "gpu_cost_estimate.json").read_text())
    rows = [r for r in data["rows"] if "est_peak_ratio" in r]
    (RESULTS / "cost_savings.svg").write_text(svg(rows))
    print(f"wrote {RESULTS / 'cost_savings.svg'} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
