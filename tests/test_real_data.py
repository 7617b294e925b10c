"""The real export (``../shared/data/real``) ingests as-is; skipped when the data is absent."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from alertlab.ingest import candle_bucket_path, ingest_alerts, ingest_candles, load_alerts, quality_table
from test_ingest_candles import ref_detect

pytestmark = pytest.mark.real


def test_real_alerts(home, real_data):
    rep = ingest_alerts(home, [real_data / "alerts.csv"])
    assert rep.rows_read == 7058
    assert abs(rep.rows_new - 3686) <= 15  # 3,686 distinct calls, a handful quarantined (bad addresses)
    assert 0 < rep.rows_rejected <= 20
    assert rep.rows_accepted == rep.rows_new + rep.rows_duplicate == rep.rows_read - rep.rows_rejected
    assert all(isinstance(r, str) and r.strip() for r in rep.reject_reasons)
    assert sum(rep.reject_reasons.values()) == rep.rows_rejected
    con = home.connect()
    try:
        rej = con.execute("SELECT source_file, source_row, reason FROM rejects").df()
    finally:
        con.close()
    assert len(rej) == rep.rows_rejected
    assert rej["source_file"].str.endswith("alerts.csv").all() and (rej["source_row"] >= 2).all()
    assert rej["reason"].str.len().gt(0).all()

    al = load_alerts(home)
    assert len(al) == rep.rows_new and not al.duplicated(["caller", "chain", "token", "ts_ms"]).any()
    assert set(al["chain"]) <= {"solana", "tron", "bsc", "ethereum", "ton"} and "solana" in set(al["chain"])
    assert al.groupby(["chain", "token"])["is_first_call"].sum().eq(1).all()
    # alert_ts_ms is used (UTC), not the local +10/+11 alert_datetime
    raw = pd.read_csv(real_data / "alerts.csv", dtype=str, keep_default_na=False)
    assert set(al["ts_ms"]) <= set(raw["alert_ts_ms"].astype("int64"))
    assert (al["mcap_at_alert"].dropna() >= 1000).all()  # millions normalised to dollars

    again = ingest_alerts(home, [real_data / "alerts.csv"])
    assert again.rows_new == 0 and len(load_alerts(home)) == len(al)


def test_real_candles(home, real_data):
    manifest = pd.read_csv(real_data / "MATCHES.csv")
    files = sorted((real_data / "candles").glob("*.csv"))
    assert sorted(f.name for f in files) == sorted(manifest["file"])
    rep = ingest_candles(home, [real_data / "candles"])
    assert len(rep.files) == len(manifest) and rep.rows_rejected == 0
    total = sum(len(pd.read_csv(f)) for f in files)
    assert total == manifest["rows"].sum()
    assert rep.rows_read == total == rep.rows_new  # distinct tokens: every bar is new
    q = quality_table(home)
    per_token = q.groupby("token")["interval_s"].apply(set)
    assert len(per_token) == manifest["token_address"].str.lower().nunique() and all(
        s == {300, 3600} for s in per_token
    )
    seen = 0
    for f in files:
        token = f.name.split("_")[1].lower()
        path = candle_bucket_path(home, "bsc", token)
        st = pq.read_table(path).to_pandas()
        assert not st.duplicated(["chain", "token", "interval_s", "ts"]).any()
        key = list(zip(st["chain"], st["token"], st["interval_s"], st["ts"], strict=True))
        assert key == sorted(key)
        mine = st[st["token"] == token].sort_values("ts")
        src = pd.read_csv(f)
        assert mine["ts"].tolist() == src["timestamp"].tolist()
        assert mine["interval_s"].tolist() == ref_detect(src["timestamp"].tolist())
        seen += len(mine)
    assert seen == total
    again = ingest_candles(home, [real_data / "candles"])
    assert again.rows_new == 0 and again.conflicts == 0 and again.rows_duplicate == total
