"""Interrupted ingests (``kill -9``, power loss): marked, reconciled with the store, cleaned up.

Every ingest writes one ``ingest_log`` row per file with ``status = 'running'`` (and its PID)
*before* it changes anything in the store, and replaces them by its final rows
(``status = 'complete'``) in the transaction that ends it. Ingests run under the workspace
writer lock (:mod:`alertlab.store.lock`), so when the next ingest takes the lock, any row still
``running`` belongs to a process that died. :func:`reconcile_interrupted` then:

1. marks those rows ``interrupted``;
2. for candles, re-hashes every bucket file of the store against ``candle_files``: a bucket
   rewritten by the dead ingest before its catalog commit gets its row count and hash recorded,
   and the ``candle_quality`` of every series in it is recomputed from the bucket;
3. records what the dead ingest left in the store on its first log row: ``rows_new`` = bars
   added to the store (the row-count growth of the buckets it rewrote; 0 for alerts, whose
   catalog writes are one transaction), and ``details.reconciled`` = buckets, rows, when.

So after any crash, ``sum(rows_new)`` of the candle log equals the bars in the store, and the
log says which ingest did not finish. Staging leftovers (``.ingest-*``) are removed by the lock
itself (:func:`alertlab.store.lock.clean_leftovers`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from alertlab.store import Home


def begin(home: Home, ingest_id: str, kind: str, files: Sequence[Path | str]) -> dict:
    """Reconcile what earlier dead ingests left, then log this one as running.

    Returns the reconcile summary plus ``created`` (this call created the catalog).
    """
    created = not home.exists
    summary = reconcile_interrupted(home) | {"created": created}
    con = home.connect()
    try:
        con.executemany(
            "INSERT INTO ingest_log (ingest_id, kind, source_file, status, pid, details) VALUES (?, ?, ?, 'running', ?, ?)",
            [[ingest_id, kind, str(f), os.getpid(), json.dumps({"started": True})] for f in files],
        )
    finally:
        con.close()
    return summary


def abandon(home: Home, ingest_id: str, begun: dict) -> None:
    """Forget an ingest that stopped before writing anything (e.g. no readable file).

    A catalog that :func:`begin` created for it is removed again, so a failed first ingest leaves
    no workspace that looks populated.
    """
    if begun.get("created"):
        for f in (home.catalog_path, home.catalog_path.with_name(home.catalog_path.name + ".wal")):
            f.unlink(missing_ok=True)
        return
    con = home.connect()
    try:
        con.execute("DELETE FROM ingest_log WHERE ingest_id = ? AND status = 'running'", [ingest_id])
    finally:
        con.close()


def reconcile_interrupted(home: Home) -> dict:
    """Mark ingests that died while running as interrupted and bring the catalog in line with the store.

    Only call under the workspace lock. Returns ``{"interrupted": [ingest ids], "buckets": n, "rows": n}``.
    """
    if not home.exists:
        return {"interrupted": [], "buckets": 0, "rows": 0}
    con = home.connect()
    try:
        dead = con.execute(
            "SELECT ingest_id, kind, min(source_file) FROM ingest_log WHERE status = 'running' GROUP BY ALL "
            "ORDER BY min(ingested_at)"
        ).fetchall()
        if not dead:
            return {"interrupted": [], "buckets": 0, "rows": 0}
        buckets, rows = 0, 0
        if any(k == "candles" for _, k, _ in dead):
            buckets, rows = _reconcile_candles(home, con)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        con.begin()
        for n, (iid, kind, first_file) in enumerate(dead):
            # the store growth is attributed to the last dead candle ingest (normally the only one)
            is_last_candles = kind == "candles" and all(k != "candles" for _, k, _ in dead[n + 1 :])
            added = rows if is_last_candles else 0
            det = {
                "interrupted": True,
                "reconciled": {
                    "at": now,
                    "rows_added_to_store": added,
                    "buckets_recorded": buckets if is_last_candles else 0,
                },
            }
            con.execute(
                "UPDATE ingest_log SET status = 'interrupted', details = ? WHERE ingest_id = ? "
                "AND status = 'running'",
                [json.dumps(det), iid],
            )
            con.execute(
                "UPDATE ingest_log SET rows_new = ? WHERE ingest_id = ? AND source_file = ?",
                [added, iid, first_file],
            )
        con.commit()
        return {"interrupted": [d[0] for d in dead], "buckets": buckets, "rows": rows}
    finally:
        con.close()


def _reconcile_candles(home: Home, con) -> tuple[int, int]:
    """Record buckets whose bytes differ from ``candle_files`` and refresh their quality rows."""
    from alertlab.ingest.candles import upsert_quality
    from alertlab.ingest.quality import file_sha256, series_quality

    known = {
        p: (n, h) for p, n, h in con.execute("SELECT path, n_rows, content_hash FROM candle_files").fetchall()
    }
    changed, grown = [], 0
    for path in sorted(home.candles_dir.glob("*/b*.parquet")) if home.candles_dir.exists() else []:
        rel = str(path.relative_to(home.root))
        digest = file_sha256(path)
        old_n, old_h = known.get(rel, (0, None))
        if digest == old_h:
            continue
        n = pq.ParquetFile(path).metadata.num_rows
        grown += n - int(old_n or 0)
        changed.append(
            {
                "path": rel,
                "chain": path.parent.name,
                "bucket": int(path.stem[1:]),
                "n_rows": n,
                "content_hash": digest,
                "_file": path,
            }
        )
    if not changed:
        return 0, 0
    quality = []
    for c in changed:
        t = pq.read_table(c["_file"], columns=["token", "interval_s", "ts", "volume"])
        df = t.to_pandas().sort_values(["token", "interval_s", "ts"], kind="stable")
        g = (df["token"] != df["token"].shift()) | (df["interval_s"] != df["interval_s"].shift())
        starts = np.flatnonzero(g.to_numpy())
        qs = series_quality(
            df["ts"].to_numpy(np.int64),
            df["volume"].to_numpy(np.float64),
            np.r_[starts, len(df)],
            df["interval_s"].to_numpy(np.int64)[starts],
        )
        quality.append(
            pd.DataFrame(
                {
                    "chain": c["chain"],
                    "token": df["token"].to_numpy()[starts],
                    "interval_s": df["interval_s"].to_numpy(np.int64)[starts],
                    **qs,
                }
            )
        )
    fr = pd.DataFrame([{k: v for k, v in c.items() if k != "_file"} for c in changed])
    con.begin()
    con.register("_fr", fr)
    con.execute("DELETE FROM candle_files WHERE path IN (SELECT path FROM _fr)")
    con.execute(
        "INSERT INTO candle_files (path, chain, bucket, n_rows, content_hash) "
        "SELECT path, chain, bucket, n_rows, content_hash FROM _fr"
    )
    con.unregister("_fr")
    upsert_quality(con, pd.concat(quality, ignore_index=True))
    con.commit()
    return len(changed), grown
