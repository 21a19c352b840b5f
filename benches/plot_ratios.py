#!/usr/bin/env python3
"""Turn criterion's estimates into the ratio table and SVG bar chart in BENCHMARKS.md.

Each benchmark group holds an Usher measurement and a baseline measured in the same run
(see benches/hot_paths.rs). The chart shows mean time per operation for both, side by side.
No third-party packages: the SVG is written by hand.

Usage: cargo bench --bench hot_paths && python3 benches/plot_ratios.py [OUT.svg]
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
PAIRS = [
    ("token", "verify", "hmac_only", "token verify vs bare HMAC"),
    ("rpc_ListRooms", "usher", "baseline", "ListRooms, 100 rooms"),
    ("rpc_ListRooms_names_1", "usher", "baseline", "ListRooms, 1 name"),
    ("rpc_UpdateRoomMetadata", "usher", "baseline", "UpdateRoomMetadata"),
]


def mean_ns(group, bench):
    path = ROOT / group / bench / "new" / "estimates.json"
    return json.loads(path.read_text())["mean"]["point_estimate"]


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "benches/hot_paths.svg")
    rows = []
    for group, ours, base, label in PAIRS:
        try:
            u, b = mean_ns(group, ours), mean_ns(group, base)
        except FileNotFoundError:
            continue
        rows.append((label, u, b))
    print("| operation | Usher | baseline | Usher ÷ baseline |")
    print("| --- | ---: | ---: | ---: |")
    for label, u, b in rows:
        print(f"| {label} | {u / 1000:.2f} µs | {b / 1000:.2f} µs | {u / b:.2f} |")

    width, bar_h, gap, left = 760, 16, 18, 230
    height = 40 + len(rows) * (2 * bar_h + gap)
    top = max(max(u, b) for _, u, b in rows)
    scale = (width - left - 90) / top
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="18" font-weight="bold">Mean time per operation (lower is better)</text>',
        f'<rect x="{width - 190}" y="8" width="12" height="12" fill="#2b6cb0"/><text x="{width - 173}" y="18">Usher</text>',
        f'<rect x="{width - 120}" y="8" width="12" height="12" fill="#a0aec0"/><text x="{width - 103}" y="18">baseline</text>',
    ]
    y = 34
    for label, u, b in rows:
        svg.append(f'<text x="10" y="{y + bar_h + 4}">{label}</text>')
        for value, color in ((u, "#2b6cb0"), (b, "#a0aec0")):
            w = max(1, value * scale)
            svg.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}"/>')
            svg.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 5}">{value / 1000:.2f} µs</text>')
            y += bar_h
        y += gap
    svg.append("</svg>")
    out.write_text("\n".join(svg) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
