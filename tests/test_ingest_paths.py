"""Candle ingest's fast paths agree with the plain ones, and the memory budget reaches the ingest.

* CSV: large plain files are parsed in line-aligned blocks on two threads; a ``.csv.gz`` of the
  same bytes goes through Arrow's single streaming reader. Rows, line numbers, malformed lines,
  invalid UTF-8 and blank lines must come out identical.
* Staging: rows stay in memory up to the budget and spill to disk beyond it; both must give the
  same store, rejects and quality.
* Memory budget: DuckDB's ``memory_limit`` of the ingest connection and the batch sizes follow
  ``alertlab --memory-gb`` / ``$ALERTLAB_MEMORY_GB``.
"""

from __future__ import annotations

import gzip
import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from alertlab.ingest import candles as cmod
from alertlab.ingest import ingest_candles
from alertlab.ingest.csvread import read_text_table
from alertlab.store import Home
from alertlab.util.memory import set_memory_budget_gb

T0 = 1_760_000_400
HEAD = "chain,token,ts,open,high,low,close,volume"


def evm(i: int) -> str:
    return "0x" + f"{i:040x}"


def nasty_lines(n: int, seed: int) -> list[bytes]:
    """Candle lines with blank, whitespace-only, short, long, all-empty and non-UTF-8 lines mixed in."""
    rng = np.random.default_rng(seed)
    out = [HEAD.encode()]
    for i in range(n):
        r = rng.random()
        tok = evm(int(rng.integers(0, 7)))
        ts = T0 + 60 * int(rng.integers(0, 400))
        good = f"bsc,{tok},{ts},1,1.5,0.5,1.2,{i % 5}".encode()
        if r < 0.02:
            out.append(b"")
        elif r < 0.03:
            out.append(b"   \t")
        elif r < 0.05:
            out.append(f"bsc,{tok},{ts},1,2".encode())
        elif r < 0.06:
            out.append(good + b",extra")
        elif r < 0.07:
            out.append(b",,,,,,,")
        elif r < 0.08:
            out.append(b"bsc,\xff\xfe" + tok.encode() + f",{ts},1,1,1,1,1".encode())
        elif r < 0.10:
            out.append(f"bsc,{tok},{ts},NaN,null,1,1,N/A".encode())
        elif r < 0.12:
            out.append(f"bsc,{tok},{ts},1,1.5,0.5,1.2,{i % 5}".encode() + b"\r")  # CRLF line
        else:
            out.append(good)
    return out


def read_all(path, block: int):
    info, it = read_text_table(path, ["chain", "token", "ts"], block_rows_hint=block)
    batches = list(it)
    assert len(batches) > 1  # several blocks, so block boundaries are exercised
    table = pa.concat_tables([b.table for b in batches])
    lines = np.concatenate([b.lines for b in batches])
    offs = np.cumsum([0] + [b.table.num_rows for b in batches])
    bad_utf8 = np.concatenate([b.bad_utf8 + o for b, o in zip(batches, offs, strict=False)])
    bad = [(b.line, b.reason, b.text) for b in info.bad_lines]
    return table, lines, bad_utf8, bad, info.blank_lines


@pytest.mark.parametrize("seed", [1, 2])
def test_parallel_csv_blocks_match_the_streaming_reader(tmp_path, seed):
    data = b"\n".join(nasty_lines(3000, seed)) + b"\n"
    plain, packed = tmp_path / "c.csv", tmp_path / "c.csv.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    block = 4096
    assert plain.stat().st_size > 2 * block  # takes the parallel path
    got, ref = read_all(plain, block), read_all(packed, block)
    assert got[0].equals(ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[2], ref[2])
    assert got[3] == ref[3] and got[4] == ref[4]
    assert len(got[3]) > 10 and got[4] > 10 and len(got[2]) > 5  # the nasty lines are there
    # line numbers are physical: every kept row's line holds its values
    phys = data.split(b"\n")
    tok = got[0]["token"].to_pylist()
    for k in range(0, len(tok), 97):
        if tok[k] is not None:
            assert tok[k].encode() in phys[got[1][k] - 1]
    for line, _, text in got[3]:
        assert phys[line - 1].decode("utf-8", "replace").rstrip("\r") == text.rstrip("\r")


def _rejects(home: Home) -> pd.DataFrame:
    con = home.connect(read_only=True)
    try:
        return con.execute("SELECT source_row, reason, raw FROM rejects ORDER BY source_row, reason").df()
    finally:
        con.close()


def _store(home: Home) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted(home.candles_dir.rglob("*.parquet"))]
    return pd.concat(frames, ignore_index=True).sort_values(
        ["chain", "token", "interval_s", "ts"], ignore_index=True
    )


def test_csv_ingest_same_through_blocks_and_spills(tmp_path, monkeypatch):
    f = tmp_path / "candles.csv"
    f.write_bytes(b"\n".join(nasty_lines(4000, 3)) + b"\n")
    ref_home = Home(tmp_path / "ref")
    ref = ingest_candles(ref_home, [f])  # one block, everything staged in memory
    monkeypatch.setattr(cmod, "csv_block_bytes", lambda: 4096)
    monkeypatch.setattr(cmod, "FLUSH_ROWS", 333)  # spills to disk several times
    monkeypatch.setattr(cmod, "READ_BATCH_ROWS", 100)
    other = Home(tmp_path / "other")
    got = ingest_candles(other, [f])
    for k in (
        "rows_read",
        "rows_new",
        "rows_rejected",
        "rows_duplicate",
        "conflicts",
        "reject_reasons",
        "quality",
    ):
        assert getattr(got, k) == getattr(ref, k), k
    assert ref.rows_rejected > 50 and ref.conflicts > 0
    pd.testing.assert_frame_equal(_store(ref_home), _store(other))
    pd.testing.assert_frame_equal(_rejects(ref_home), _rejects(other))


def test_memory_budget_reaches_the_ingest(tmp_path):
    f = tmp_path / "candles.csv"
    f.write_bytes(b"\n".join(nasty_lines(500, 4)) + b"\n")
    small, large = {}, {}
    try:
        for gb, out in ((0.25, small), (3.0, large)):
            set_memory_budget_gb(gb)
            home = Home(tmp_path / f"h{gb}")
            rep = ingest_candles(home, [f])
            assert rep.rows_new > 0
            con = home.connect(read_only=True)
            det = json.loads(
                con.execute("SELECT details FROM ingest_log ORDER BY ingested_at LIMIT 1").fetchone()[0]
            )
            con.close()
            out.update(det["memory"], rows=cmod.batch_rows(), block=cmod.csv_block_bytes())
    finally:
        set_memory_budget_gb(None)
    # DuckDB's own rendering of the limit the budget asks for (60% of it), not of its default
    for gb, out in ((0.25, small), (3.0, large)):
        ref = duckdb.connect()
        ref.execute(f"SET memory_limit = '{int(gb * 0.6 * 1024)}MB'")
        assert (
            out["duckdb_memory_limit"] == ref.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        )
        assert out["budget_gb"] == gb
    assert small["duckdb_memory_limit"] != large["duckdb_memory_limit"]
    # Python-side batches scale with the budget
    assert large["rows"][0] == 12 * small["rows"][0] and large["rows"][1] == 12 * small["rows"][1]
    assert large["block"] == 12 * small["block"]
