"""The cost curve as a Markdown table: ``python benchmarks/curve.py results/*.json``.

Reads result files of ``benchmarks/run.py`` (``--out``), merges those of the same alert count (a
prepared home measured in several runs) and prints one row per phase: wall seconds, peak RSS
(``ru_maxrss``: anonymous memory plus touched pages of memory-mapped files) and peak anonymous RSS,
one column group per alert count, then the disk use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROWS = (
    ("generate", "generate market, stream candles to Parquet"),
    ("ingest", "ingest candles + alerts"),
    ("cold", "cold baseline (cut windows, metrics, leaderboard)"),
    ("warm", "warm baseline"),
    ("engine_tpsl", "TP/SL grid, 1,000 combinations (1 thread, then 2)"),
    ("optimize_warm", "study, 1,000 trials (random sampler, 4 folds)"),
    ("kernel", "metrics kernel alone (timing phase)"),
)
DISK = (
    ("input_bytes", "input files (candle Parquet + alerts CSV)"),
    ("store_bytes", "candle store + catalog"),
    ("path_cache_bytes", "path cache (windows + derived)"),
)


def _gb(mb: float) -> str:
    if mb != mb:  # NaN: not measured (older result files)
        return "–"
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def _cell(r: dict | None) -> str:
    if not r:
        return "–"
    return f"{r['wall_s']:.1f} s · {_gb(r['peak_rss_mb'])} · {_gb(r.get('peak_anon_mb', float('nan')))}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    by: dict[int, dict] = {}
    for f in a.files:
        d = json.loads(Path(f).read_text())
        by.setdefault(int(d["alerts"]), {}).update(d["results"])
    counts = sorted(by)
    head = " | ".join(f"{n:,} alerts" for n in counts)
    print(f"| phase (wall · peak RSS · peak anonymous RSS) | {head} |")
    print("|---" * (len(counts) + 1) + "|")
    for key, label in ROWS:
        if any(key in by[n] for n in counts):
            print(f"| {label} | " + " | ".join(_cell(by[n].get(key)) for n in counts) + " |")
    for key, label in DISK:
        vals = [by[n].get("disk", {}).get(key) for n in counts]
        if key == "input_bytes":  # --drop-input deletes them after the ingest: the size generate saw
            vals = [
                v or by[n].get("generate", {}).get("candles_parquet_bytes")
                for v, n in zip(vals, counts, strict=True)
            ]
        if any(v is not None for v in vals):
            print(
                f"| disk: {label} | "
                + " | ".join("–" if v is None else f"{v / 1e9:.2f} GB" for v in vals)
                + " |"
            )


if __name__ == "__main__":
    main()
