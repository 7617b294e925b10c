"""Alert ingestion on messy synthetic exports: aliases, chains, times, quarantine, dedup, stable ids."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alertlab.errors import UserError
from alertlab.ingest import chains as ch
from alertlab.ingest import derive_alert_id, ingest_alerts, ingest_candles, load_alerts
from alertlab.ingest.timeparse import EMPTY, OK, OUT_OF_RANGE, UNPARSABLE, to_epoch_ms

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
TRON = "TNzAJtKNmphXvkComBUazKMvZurEQRt2tn"  # from the real export (valid base58check)
BAD_SOL = "bth6bgdk2awibpsxyv5wbf5kw66zq6xajkhusyf4h8vb"  # lower-cased mint from the real export: 33 bytes
TON = "EQD4FPq-PRDieyQKkizFTRtSDyucUIqrj0v_zXJmqaDp6_0t"  # TON docs example address
T0 = 1_760_000_000  # 2025-10-09T08:53:20Z, epoch seconds


def b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def sol(i: int) -> str:
    """A valid Solana address (base58 of 32 bytes), mixed case."""
    return b58encode(hashlib.sha256(f"sol{i}".encode()).digest())


def evm(i: int) -> str:
    """A valid EVM address, deliberately upper-case hex."""
    return "0x" + hashlib.sha256(f"evm{i}".encode()).hexdigest()[:40].upper()


def ref_sha1_id(caller: str, chain: str, token: str, ts_ms: int) -> str:
    return hashlib.sha1(f"{caller}|{chain}|{token}|{ts_ms}".encode()).hexdigest()[:16]


def write_csv(path, header: list[str], rows: list[list[object]]) -> str:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def stored(home) -> pd.DataFrame:
    con = home.connect()
    try:
        return con.execute("SELECT * EXCLUDE (ingested_at) FROM alerts ORDER BY alert_id").df()
    finally:
        con.close()


def rejects(home) -> pd.DataFrame:
    con = home.connect()
    try:
        return con.execute(
            "SELECT * FROM rejects WHERE kind = 'alerts' ORDER BY source_file, source_row"
        ).df()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# chains and times


def test_chain_spellings_and_addresses():
    for spelled, canon in [
        ("Solana", "solana"),
        ("SOL", "solana"),
        (" solana ", "solana"),
        ("BSC", "bsc"),
        ("BNB", "bsc"),
        ("eth", "ethereum"),
        ("Ethereum", "ethereum"),
        ("Base", "base"),
        ("Tron", "tron"),
        ("TRON", "tron"),
        ("Arbitrum One", "arbitrum"),
        ("Sui", "sui"),
    ]:
        assert ch.normalize_chain(spelled) == canon
    assert (
        ch.normalize_chain("") is None
        and ch.normalize_chain(None) is None
        and ch.normalize_chain(" ") is None
    )
    s = sol(1)
    assert ch.validate_address("solana", s) is None
    assert ch.validate_address("solana", BAD_SOL) is not None
    assert ch.validate_address("solana", "1" * 44) is not None  # base58 but 44 zero bytes
    assert ch.validate_address("solana", evm(1)) is not None
    assert ch.validate_address("bsc", ch.normalize_token("bsc", evm(1))) is None
    assert ch.normalize_token("bsc", evm(1)) == evm(1).lower()
    assert ch.normalize_token("solana", f"  {s} ") == s
    assert ch.validate_address("bsc", s) is not None
    assert ch.validate_address("bsc", "0x1234") is not None
    assert ch.validate_address("tron", TRON) is None
    assert ch.validate_address("tron", TRON[:-1] + ("a" if TRON[-1] != "a" else "b")) is not None  # checksum
    assert ch.validate_address("ton", TON) is None
    assert ch.validate_address("ton", TON[:-1] + "u") is not None
    truncated = "EQDZvDW7Cf33YjMpeVr771PMrYgymGFyibTdcL4y"  # from the real export
    assert ch.validate_address("ton", truncated) is not None
    assert (
        ch.infer_chain(s) == "solana" and ch.infer_chain(TRON) == "tron" and ch.infer_chain(evm(2)) == ch.EVM
    )
    assert ch.infer_chain("not-an-address") is None


def ref_epoch_ms(v: object) -> int | None:
    """Plain reference: numbers by magnitude, ISO via datetime.fromisoformat (naive = UTC)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, int | float):
        x = float(v)
    else:
        try:
            x = float(v)
        except ValueError:
            try:
                d = dt.datetime.fromisoformat(v.strip())
            except ValueError:
                return None
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.UTC)
            return round(d.timestamp() * 1000)
    if abs(x) >= 1e17:
        ms = x / 1e6
    elif abs(x) >= 1e14:
        ms = x / 1e3
    elif abs(x) >= 1e11:
        ms = x
    else:
        ms = x * 1000
    return round(ms)


def test_timeparse_against_reference():
    rng = random.Random(3)
    vals: list[object] = [None, "", "  ", "abc", "2025-13-45", "1969-07-20", "99999999999999999999999"]
    for _ in range(300):
        sec = rng.randint(946_684_800, 4_102_444_799)
        ms = sec * 1000 + rng.randint(0, 999)
        kind = rng.randrange(8)
        if kind == 0:
            vals.append(str(sec))
        elif kind == 1:
            vals.append(str(ms))
        elif kind == 2:
            vals.append(f"{sec}.{rng.randint(0, 999):03d}")
        elif kind == 3:
            vals.append(dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif kind == 4:
            off = rng.choice([10, 11, -3, 5.5])
            tz = dt.timezone(dt.timedelta(hours=off))
            vals.append(dt.datetime.fromtimestamp(sec, tz).isoformat())
        elif kind == 5:
            vals.append(dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"))  # naive = UTC
        elif kind == 6:
            vals.append(str(ms * 1000))  # microseconds
        else:
            vals.append(
                dt.datetime.fromtimestamp(sec, dt.timezone(dt.timedelta(hours=11))).strftime(
                    "%Y-%m-%d %H:%M:%S+11"
                )
            )
    ms, err = to_epoch_ms(vals)
    for v, m, e in zip(vals, ms, err, strict=True):
        ref = ref_epoch_ms(v)
        if ref is None:
            assert e in (EMPTY, UNPARSABLE), v
        elif not (946_684_800_000 <= ref < 4_102_444_800_000):
            assert e == OUT_OF_RANGE, v
        else:
            assert e == OK and m == ref, (v, m, ref)
    # typed inputs: numeric arrays and tz-aware timestamps
    ms, err = to_epoch_ms(np.array([T0, T0 * 1000, T0 * 1_000_000], np.int64))
    assert (err == OK).all() and (ms == T0 * 1000).all()
    ms, err = to_epoch_ms(pa.array([pd.Timestamp(T0, unit="s")]))
    assert err[0] == OK and ms[0] == T0 * 1000


# ---------------------------------------------------------------------------------------------
# ingestion


def messy_files(tmp_path):
    """Four files covering every alias, chain spelling, time format and bad-row kind."""
    ts_ms = T0 * 1000
    iso_plus11 = dt.datetime.fromtimestamp(T0, dt.timezone(dt.timedelta(hours=11))).strftime(
        "%Y-%m-%d %H:%M:%S+11"
    )
    iso_z = dt.datetime.fromtimestamp(T0 + 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    naive = dt.datetime.fromtimestamp(T0 + 120, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    a = write_csv(
        tmp_path / "a.csv",
        [
            "caller_name",
            "mint",
            "chain",
            "alert_ts_ms",
            "alert_dt",
            "ticker",
            "mcap_at_alert",
            "price_at_alert",
        ],
        [
            [" Brook ", sol(1), "Solana", ts_ms, "junk-local-time", "AAA", "3600000.0", "0.0035"],  # row 2
            ["Brook", sol(1), "SOL", ts_ms, "", "", "", ""],  # row 3: duplicate (other bot reply)
            ["Brook", sol(1), "", ts_ms, "", "AAA2", "3.29", ""],  # row 4: duplicate, chain inferred
            ["", sol(2), "solana", ts_ms, "", "", "", ""],  # row 5: empty caller
            ["Croz", sol(3), "solana", "not-a-time", "", "", "", ""],  # row 6: unparsable time
            ["Croz", BAD_SOL, "solana", ts_ms, "", "", "", ""],  # row 7: lower-cased Solana mint = invalid
            ["Croz", evm(1), "BSC", ts_ms, "", "EV", "", ""],  # row 8: EVM lower-cased
            ["Croz", "0x12", "bsc", ts_ms, "", "", "", ""],  # row 9: bad EVM address
            ["Mac", TRON, "Tron", ts_ms, "", "", "", ""],  # row 10
            ["Mac", TRON, "TRON", ts_ms, "", "", "", ""],  # row 11: duplicate via spelling
            ["Mac", TRON, "", ts_ms + 1000, "", "", "", ""],  # row 12: Tron inferred
            ["Mac", evm(9), "", ts_ms, "", "", "", ""],  # row 13: EVM without chain, unknown to the store
            ["Mac", "zz!", "", ts_ms, "", "", "", ""],  # row 14: unrecognisable without chain
            ["", "", "solana", "", "", "", "", ""],  # row 15: everything wrong
        ],
    )
    b = write_csv(
        tmp_path / "b.csv",
        ["caller", "token_address", "chain", "alert_ts_utc", "mcap_at_alert"],
        [
            ["Ann", sol(4), "sol", iso_plus11, "15000"],  # row 2: +11 offset = T0
            ["Ann", sol(5), "Solana", iso_z, ""],  # row 3
            ["Ann", sol(6), "solana", naive, ""],  # row 4: naive = UTC
            ["Ann", evm(2), "eth", str(T0), ""],  # row 5: epoch seconds
            ["Ann", evm(3), "Base", str(T0 * 1000), ""],  # row 6: epoch ms
            ["Ann", evm(4), "BNB", "", ""],  # row 7: missing time
        ],
    )
    c = write_csv(
        tmp_path / "c.csv",
        ["Caller", "TOKEN", "Chain", "timestamp", "chat_id", "message_id"],
        [["Bob", sol(7), "ethereum", str(T0), "100", "7"], ["Bob", sol(8), "solana", "1999-12-31", "", ""]],
    )
    d = tmp_path / "d.parquet"
    pq.write_table(
        pa.table(
            {
                "caller": ["Zed", "Zed"],
                "mint": [sol(9), sol(10)],
                "chain": ["SOL", None],
                "ts": pa.array(
                    [pd.Timestamp(T0 * 10**9), pd.Timestamp((T0 + 5) * 10**9)], pa.timestamp("ns")
                ),
                "chat_id": [123.0, None],
                "message_id": [456, 789],
                "price_at_alert": [1e-9, -1.0],
            }
        ),
        d,
    )
    return a, b, c, str(d)


def test_messy_ingest(home, tmp_path):
    a, b, c, d = messy_files(tmp_path)
    rep = ingest_alerts(home, [a, b, c, d])
    rej = rejects(home)
    got = {(r.source_file.split("/")[-1], int(r.source_row)): r.reason for r in rej.itertuples()}
    expect_rows = {("a.csv", n) for n in (5, 6, 7, 9, 13, 14, 15)} | {
        ("b.csv", 7),
        ("c.csv", 3),
    }
    assert set(got) == expect_rows
    assert got[("a.csv", 5)] == "empty caller"
    assert got[("a.csv", 6)] == "unparsable time"
    assert got[("a.csv", 7)] == "invalid solana address"
    assert "invalid bsc address" in got[("a.csv", 9)]
    assert "unknown to the candle store" in got[("a.csv", 13)]
    assert "not recognisable" in got[("a.csv", 14)]
    assert "empty caller" in got[("a.csv", 15)] and "missing time" in got[("a.csv", 15)]
    assert "empty token" in got[("a.csv", 15)]
    assert got[("b.csv", 7)] == "missing time"
    assert rep.chain_corrected == 1  # c.csv row 2: a Solana mint labelled ethereum is on solana
    assert "out of range" in got[("c.csv", 3)]
    assert all(json.loads(r) for r in rej["raw"])

    assert rep.rows_read == 14 + 6 + 2 + 2
    assert rep.rows_rejected == len(expect_rows)
    assert rep.rows_accepted == rep.rows_read - rep.rows_rejected == rep.rows_new + rep.rows_duplicate
    assert sum(rep.reject_reasons.values()) == rep.rows_rejected
    assert all(isinstance(k, str) and k for k in rep.reject_reasons)
    assert [(s["file"].split("/")[-1], s["row"]) for s in rep.rejects_sample] == sorted(
        expect_rows, key=lambda x: ("abcd".index(x[0][0]), x[1])
    )

    al = load_alerts(home).set_index(["caller", "token", "ts_ms"])
    brook = al.loc[("Brook", sol(1), T0 * 1000)]
    assert brook["chain"] == "solana" and brook["ticker"] == "AAA"
    # first non-null value per column, in input order
    assert brook["mcap_at_alert"] == 3_600_000.0 and brook["price_at_alert"] == 0.0035
    assert brook["alert_id"] == ref_sha1_id("Brook", "solana", sol(1), T0 * 1000)
    assert al.loc[("Croz", evm(1).lower(), T0 * 1000), "chain"] == "bsc"
    assert al.loc[("Mac", TRON, T0 * 1000), "chain"] == "tron"
    assert al.loc[("Mac", TRON, T0 * 1000 + 1000), "chain"] == "tron"
    for tok, ts in [
        (sol(4), T0),
        (sol(5), T0 + 60),
        (sol(6), T0 + 120),
        (evm(2).lower(), T0),
        (evm(3).lower(), T0),
    ]:
        assert ("Ann", tok, ts * 1000) in al.index
    assert al.loc[("Ann", sol(4), T0 * 1000), "mcap_at_alert"] == 15000.0
    assert al.loc[("Ann", evm(2).lower(), T0 * 1000), "chain"] == "ethereum"
    assert al.loc[("Ann", evm(3).lower(), T0 * 1000), "chain"] == "base"
    z = al.loc[("Zed", sol(9), T0 * 1000)]
    assert z["chat_id"] == "123" and z["message_id"] == "456" and z["price_at_alert"] == 1e-9
    z2 = al.loc[("Zed", sol(10), (T0 + 5) * 1000)]
    assert z2["chain"] == "solana" and np.isnan(z2["price_at_alert"])  # -1 price → NULL, chain inferred
    assert al.loc[("Bob", sol(7), T0 * 1000), "chain"] == "solana"
    assert len(al) == rep.rows_new == 1 + 1 + 2 + 5 + 1 + 2
    assert not al.index.duplicated().any()

    con = home.connect()
    log = con.execute(
        "SELECT source_file, rows_read, rows_rejected, rows_new, rows_duplicate, details FROM ingest_log "
        "ORDER BY source_file"
    ).fetchall()
    con.close()
    assert [r[0].split("/")[-1] for r in log] == ["a.csv", "b.csv", "c.csv", "d.parquet"]
    assert [r[1:5] for r in log] == [(14, 7, 4, 3), (6, 1, 5, 0), (2, 1, 1, 0), (2, 0, 2, 0)]
    det = json.loads(log[0][5])
    assert "alert_dt" in det["columns_ignored"] and det["columns_used"]["ts"] == ["alert_ts_ms"]


def test_reingest_idempotent_and_ids_stable(home, tmp_path):
    from alertlab.store import Home

    a, b, c, d = messy_files(tmp_path)
    r1 = ingest_alerts(home, [a, b, c, d])
    before = stored(home)
    r2 = ingest_alerts(home, [a, b, c, d])
    assert r2.rows_new == 0 and r2.rows_duplicate == r1.rows_accepted and r2.rows_rejected == r1.rows_rejected
    pd.testing.assert_frame_equal(before, stored(home))

    other = Home(tmp_path / "other")
    ingest_alerts(other, [d, c])
    ingest_alerts(other, [b, a])
    x = stored(other)
    pd.testing.assert_frame_equal(
        before.drop(columns=["source_file", "source_row"]).reset_index(drop=True),
        x.drop(columns=["source_file", "source_row"]).reset_index(drop=True),
    )
    for r in before.itertuples():
        assert (
            r.alert_id
            == ref_sha1_id(r.caller, r.chain, r.token, r.ts_ms)
            == derive_alert_id(r.caller, r.chain, r.token, r.ts_ms)
        )


def test_null_fields_filled_later_and_input_alert_ids(home, tmp_path):
    ts = T0 * 1000
    f1 = write_csv(
        tmp_path / "1.csv",
        ["caller", "token", "chain", "ts", "price_at_alert"],
        [["A", sol(1), "sol", ts, ""]],
    )
    f2 = write_csv(
        tmp_path / "2.csv",
        ["caller", "token", "chain", "ts", "price_at_alert", "mcap"],
        [["A", sol(1), "solana", ts, "0.5", "2.5"]],
    )
    assert ingest_alerts(home, [f1]).rows_new == 1
    r = ingest_alerts(home, [f2])
    assert r.rows_new == 0 and r.rows_duplicate == 1
    row = load_alerts(home).iloc[0]
    assert row["price_at_alert"] == 0.5 and row["mcap_at_alert"] == 2_500_000.0
    snapshot = stored(home)
    ingest_alerts(home, [f2, f1])
    pd.testing.assert_frame_equal(snapshot, stored(home))

    # input alert ids are kept; one id naming two different alerts is quarantined
    f3 = write_csv(
        tmp_path / "3.csv",
        ["alert_id", "caller", "token", "chain", "ts"],
        [["X1", "B", sol(2), "sol", ts], ["X1", "B", sol(3), "sol", ts], ["", "B", sol(4), "sol", ts]],
    )
    r = ingest_alerts(home, [f3])
    assert r.rows_new == 2 and r.rows_rejected == 1
    assert r.rejects_sample[0]["row"] == 3 and "alert_id" in r.rejects_sample[0]["reason"]
    al = load_alerts(home).set_index("token")
    assert al.loc[sol(2), "alert_id"] == "X1"
    assert al.loc[sol(4), "alert_id"] == ref_sha1_id("B", "solana", sol(4), ts)
    f4 = write_csv(
        tmp_path / "4.csv", ["alert_id", "caller", "token", "chain", "ts"], [["X1", "C", sol(5), "sol", ts]]
    )
    r = ingest_alerts(home, [f4])
    assert r.rows_new == 0 and r.rows_rejected == 1  # X1 is already a different alert in the store


def test_evm_chain_resolved_from_candle_store(home, tmp_path):
    known, twice = evm(20).lower(), evm(21).lower()
    cdir = tmp_path / "candles"
    cdir.mkdir()
    body = "timestamp,open,high,low,close,volume\n" + "".join(
        f"{T0 // 300 * 300 + 300 * k},1,1,1,1,1\n" for k in range(3)
    )
    (cdir / f"bsc_{known}_20251009-0000_20251010-0000.csv").write_text(body)
    (cdir / f"bsc_{twice}_20251009-0000_20251010-0000.csv").write_text(body)
    (cdir / f"base_{twice}_20251009-0000_20251010-0000.csv").write_text(body)
    ingest_candles(home, [cdir])
    f = write_csv(
        tmp_path / "e.csv",
        ["caller", "token", "chain", "ts"],
        [["A", evm(20), "", T0], ["A", evm(21), "", T0], ["A", evm(22), "", T0]],
    )
    r = ingest_alerts(home, [f])
    assert r.rows_new == 1 and r.rows_rejected == 2
    assert load_alerts(home).iloc[0]["chain"] == "bsc"
    reasons = {s["row"]: s["reason"] for s in r.rejects_sample}
    assert "several chains" in reasons[3] and "base, bsc" in reasons[3]
    assert "unknown to the candle store" in reasons[4]


def ref_first_calls(rows: list[tuple[str, str, str, int]]) -> set[str]:
    """Plain reference: per (chain, token) the alert with the smallest (ts_ms, alert_id)."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for alert_id, chain, token, ts in rows:
        k = (chain, token)
        if k not in best or (ts, alert_id) < best[k]:
            best[k] = (ts, alert_id)
    return {v[1] for v in best.values()}


def test_is_first_call_against_reference(home, tmp_path):
    rng = random.Random(11)
    rows = []
    for _ in range(400):
        tok = rng.randrange(25)
        chain, token = ("solana", sol(tok)) if tok % 2 else ("bsc", evm(tok))
        ts = T0 * 1000 + rng.randrange(6) * 60_000  # many ties in time
        rows.append([f"c{rng.randrange(6)}", token, chain, ts])
    f = write_csv(tmp_path / "r.csv", ["caller", "token", "chain", "ts"], rows)
    ingest_alerts(home, [f])
    al = load_alerts(home)
    ref = ref_first_calls(list(zip(al["alert_id"], al["chain"], al["token"], al["ts_ms"], strict=True)))
    assert set(al.loc[al["is_first_call"], "alert_id"]) == ref
    assert al.groupby(["chain", "token"])["is_first_call"].sum().eq(1).all()
    assert list(al.columns) == [
        "alert_id",
        "caller",
        "chain",
        "token",
        "ts_ms",
        "ticker",
        "price_at_alert",
        "mcap_at_alert",
        "chat_id",
        "message_id",
        "is_first_call",
    ]
    assert al["ts_ms"].dtype == np.int64 and al["is_first_call"].dtype == bool
    assert len(al) == len({(r[0], r[2], r[1].lower() if r[2] == "bsc" else r[1], r[3]) for r in rows})


def test_errors_are_clear(home, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", ["caller", "chain", "ts"], [["a", "sol", T0]])
    with pytest.raises(ValueError, match=r"bad\.csv.*token"):
        ingest_alerts(home, [bad])
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"x\.txt"):
        ingest_alerts(home, [tmp_path / "x.txt"])
    with pytest.raises(UserError, match="no such file or directory"):
        ingest_alerts(home, [tmp_path / "missing.csv"])
    con = home.connect()
    assert con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0] == 0
    con.close()
