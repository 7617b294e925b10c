"""In-memory alert tables go through exactly the file ingest rules (one implementation)."""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa

from alertlab.ingest import ingest_alert_table, ingest_alerts, list_alerts
from alertlab.store import Home

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def sol(i: int) -> str:
    n = int.from_bytes(hashlib.sha256(f"tbl{i}".encode()).digest(), "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return out


ROWS = pd.DataFrame(
    {
        "caller_name": ["ann", "bob", "ann", "", "cy"],
        "mint": [sol(1), sol(2), sol(1), sol(3), "not-an-address"],
        "chain": ["SOL", "solana", "sol", "solana", "solana"],
        "alert_ts_ms": ["1760000000000", "1760000060000", "1760000000000", "1760000120000", "1760000180000"],
        "mcap": ["3.2", "", "", "1000", "5"],
    }
)


def test_table_and_file_ingest_agree(tmp_path):
    csv = tmp_path / "a.csv"
    ROWS.to_csv(csv, index=False)
    hf, ht, ha = Home(tmp_path / "f"), Home(tmp_path / "t"), Home(tmp_path / "a")
    rf = ingest_alerts(hf, [csv])
    rt = ingest_alert_table(ht, ROWS, "memory")
    ra = ingest_alert_table(ha, pa.Table.from_pandas(ROWS), "memory")
    keys = ["alert_id", "caller", "chain", "token", "ts_ms", "mcap_at_alert", "is_first_call"]
    for other in (ht, ha):
        pd.testing.assert_frame_equal(list_alerts(hf)[keys], list_alerts(other)[keys])
    for r in (rt, ra):
        assert (
            (r.rows_read, r.rows_new, r.rows_duplicate, r.rows_rejected)
            == (rf.rows_read, rf.rows_new, rf.rows_duplicate, rf.rows_rejected)
            == (5, 2, 1, 2)
        )
        assert r.reject_reasons == rf.reject_reasons
    assert set(list_alerts(ht)["source"]) == {"memory"} and set(list_alerts(hf)["source"]) == {"a.csv"}
    # rows numbered from 1 in a table (2 in a CSV, whose header is line 1)
    assert [s["row"] for s in rt.rejects_sample] == [4, 5] and [s["row"] for s in rf.rejects_sample] == [5, 6]


def test_table_provenance_and_producer_rejects(tmp_path):
    h = Home(tmp_path / "h")
    t = ROWS.iloc[:2].assign(
        source_file=["x.json", "y.json"], source_row=[17, 18], raw=['{"m": 17}', '{"m": 18}']
    )
    pre = pd.DataFrame(
        {"source_file": ["x.json"], "source_row": [3], "reason": ["lower-cased"], "raw": ['{"m": 3}']}
    )
    r = ingest_alert_table(h, t, "export", rejects=pre, files=["x.json", "y.json", "z.json"], kind="test")
    assert (r.rows_read, r.rows_new, r.rows_rejected) == (3, 2, 1)
    al = list_alerts(h)
    assert sorted(zip(al["source_file"], al["source_row"], strict=True)) == [("x.json", 17), ("y.json", 18)]
    con = h.connect()
    assert con.execute("SELECT source_file, source_row, reason, raw->>'m' FROM rejects").fetchall() == [
        ("x.json", 3, "lower-cased", "3")
    ]
    assert con.execute(
        "SELECT source_file, rows_read FROM ingest_log WHERE kind = 'test' ORDER BY 1"
    ).fetchall() == [("x.json", 2), ("y.json", 1), ("z.json", 0)]
    con.close()
    again = ingest_alert_table(h, t, "export", rejects=pre, kind="test")
    assert again.rows_new == 0
    con = h.connect()
    assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == 1
    con.close()
