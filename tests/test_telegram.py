"""Telegram Desktop exports → alerts: exact alerts and rejects on written fixtures (JSON and HTML of
a channel and a group), idempotent re-ingest, overlapping exports, account exports, options,
streaming of a large generated export, the `alerts` listing and the schema migration."""

from __future__ import annotations

import importlib.util
import json
import tracemalloc
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from alertlab.cli import app
from alertlab.cli.render import frame_table
from alertlab.cli.telegram import alerts_view
from alertlab.ingest import ingest_alerts
from alertlab.ingest.alerts import derive_alert_id, list_alerts
from alertlab.ingest.telegram import json_export
from alertlab.ingest.telegram.addresses import classify_run, scan_message
from alertlab.ingest.telegram.botreply import bot_set, is_bot, parse_bot_reply, parse_number
from alertlab.ingest.telegram.calls import ingest_telegram
from alertlab.store import Home

FIX = Path(__file__).resolve().parent / "fixtures" / "telegram"
_spec = importlib.util.spec_from_file_location("tg_fixtures", FIX / "make_fixtures.py")
F = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(F)
runner = CliRunner()
CH_ID = "channel1234567890"


def ts(minute: int) -> int:
    return (F.T0 + 60 * minute) * 1000


# (caller, caller_id, chain, token, ts_ms, ticker, price, mcap, message_id, forwarded, pool)
CHANNEL_ALERTS = {
    ("Bob", CH_ID, "solana", F.S[1], ts(1), None, None, None, "2", False, None),
    ("Alpha Calls", CH_ID, "solana", F.P[1], ts(2), None, None, None, "3", False, F.PAIR),
    ("Alpha Calls", CH_ID, "base", F.E[1].lower(), ts(3), None, None, None, "4", False, None),
    ("Alpha Calls", CH_ID, "solana", F.S[3], ts(5), None, None, None, "6", False, None),
    ("Alpha Calls", CH_ID, "solana", F.S[4], ts(8), None, None, None, "9", False, None),
    ("Alpha Calls", CH_ID, "solana", F.S[5], ts(8), None, None, None, "9", False, None),
    ("Whale Guy", None, "solana", F.P[2], ts(9), None, None, None, "10", True, None),
    ("Alpha Calls", CH_ID, "ethereum", F.E[3].lower(), ts(12), None, None, None, "13", False, None),
}
GROUP_ALERTS = {
    ("Alice", "user111", "solana", F.S[6], ts(1), "SIX", 0.0001554, 155_000.0, "100", False, F.PAIR2),
    (
        "Bob",
        "user222",
        "base",
        F.E[4].lower(),
        ts(3),
        "FOUR",
        0.0012,
        1_200_000.0,
        "102",
        False,
        F.POOL_EVM2.lower(),
    ),
    ("Carol", "user333", "solana", F.S[7], ts(5), "DOGGO", 0.00001443, 144_400.0, "104", False, None),
    (
        "Alice",
        "user111",
        "ethereum",
        F.E[5].lower(),
        ts(7),
        None,
        None,
        None,
        "106",
        False,
        F.POOL_EVM.lower(),
    ),
    ("Dave", "user444", "solana", F.S[9], ts(9), "MOON", 0.0025, 2_500_000.0, "108", False, F.PAIR2),
    ("Bob", "user222", "ethereum", F.E[6].lower(), ts(10), None, None, None, "109", False, None),
    ("Alpha Calls", None, "solana", F.S[1], ts(12), None, None, None, "111", True, None),
}
CHANNEL_REJECTS = {
    (5, "evm address without chain hint"),
    (8, "lower-cased Solana address (base58 is case-sensitive; not repaired)"),
    (12, "only a pair-or-token link (dexscreener/photon): cannot tell the token"),
}
GROUP_REJECTS = {
    (107, "bot post that is not a reply (caller unknown)"),
    (110, "evm address with several chain hints"),
}


def alert_set(df: pd.DataFrame, with_ids: bool = True) -> set[tuple]:
    out = set()
    for r in df.itertuples(index=False):

        def val(v):
            return None if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA else v

        price = val(r.price_at_alert)
        out.add(
            (
                r.caller,
                val(r.caller_id) if with_ids else None,
                r.chain,
                r.token,
                int(r.ts_ms),
                val(r.ticker),
                None if price is None else round(float(price), 12),
                val(r.mcap_at_alert),
                r.message_id,
                bool(r.forwarded),
                val(r.pool),
            )
        )
    return out


def rounded(s: set[tuple], with_ids: bool = True) -> set[tuple]:
    return {
        (t[0], t[1] if with_ids else None, *t[2:6], None if t[6] is None else round(t[6], 12), *t[7:])
        for t in s
    }


def rejects_of(home: Home) -> set[tuple]:
    con = home.connect()
    try:
        rows = con.execute(
            "SELECT source_file, source_row, reason FROM rejects WHERE kind = 'telegram'"
        ).fetchall()
    finally:
        con.close()
    return {(Path(f).parent.name, int(r), why) for f, r, why in rows}


def test_fixtures_match_their_generator(tmp_path):
    F.main(tmp_path)
    for f in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        assert f.read_bytes() == (FIX / f.relative_to(tmp_path)).read_bytes(), (
            f"regenerate fixtures: {f.name}"
        )


def test_json_exports_give_the_exact_alerts_and_rejects(home):
    rep = ingest_telegram(home, [FIX / "channel_json", FIX / "group_json" / "result.json"])
    al = list_alerts(home)
    assert alert_set(al) == rounded(CHANNEL_ALERTS | GROUP_ALERTS)
    assert rejects_of(home) == {("channel_json", r, w) for r, w in CHANNEL_REJECTS} | {
        ("group_json", r, w) for r, w in GROUP_REJECTS
    }
    assert rep.ingest.rows_new == 15 and rep.ingest.rows_rejected == 5 and rep.ingest.rows_duplicate == 0
    assert rep.messages == 28 and rep.chats == 2
    assert rep.skipped == {"no address": 3, "bot reply (enrichment)": 4, "service message": 2}
    assert rep.tx_signatures_ignored == 2
    # stable ids: the foundation rule, provenance kept
    for r in al.itertuples():
        assert r.alert_id == derive_alert_id(r.caller, r.chain, r.token, r.ts_ms)
    assert set(al["chat_id"]) == {"1234567890", "987654321"}
    assert set(al["source"]) == {"telegram:Alpha Calls", "telegram:Degen Lounge"}
    assert al["source_file"].str.endswith("result.json").all()
    assert (al["source_row"].astype(str) == al["message_id"]).all()
    # S1 called by Bob (channel) and forwarded into the group: one first call
    s1 = al[al["token"] == F.S[1]].sort_values("ts_ms")
    assert s1["is_first_call"].tolist() == [True, False]


def test_reingest_adds_nothing_and_later_export_adds_only_new_calls(home):
    ingest_telegram(home, [FIX / "channel_json", FIX / "group_json"])
    before = list_alerts(home)
    n_rej = len(rejects_of(home))
    again = ingest_telegram(home, [FIX / "channel_json", FIX / "group_json"])
    assert again.ingest.rows_new == 0 and again.ingest.rows_duplicate == 15
    pd.testing.assert_frame_equal(list_alerts(home), before)
    con = home.connect()
    assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == n_rej
    con.close()
    later = ingest_telegram(home, [FIX / "channel_later_json"])
    assert later.ingest.rows_new == 2
    new = list_alerts(home).merge(before[["alert_id"]], how="left", indicator=True)
    new = new[new["_merge"] == "left_only"]
    assert set(zip(new["message_id"], new["chain"], new["token"], strict=True)) == {
        ("14", "solana", F.S[10]),
        ("15", "bsc", F.E[10].lower()),
    }


def test_html_exports_give_the_same_alerts_and_rejects_as_json(tmp_path):
    hj, hh = Home(tmp_path / "j"), Home(tmp_path / "h")
    rj = ingest_telegram(hj, [FIX / "channel_json", FIX / "group_json"])
    rh = ingest_telegram(hh, [FIX / "group_html", FIX / "channel_html" / "messages.html"])
    aj, ah = list_alerts(hj), list_alerts(hh)
    assert alert_set(ah, with_ids=False) == alert_set(aj, with_ids=False)
    assert set(ah["alert_id"]) == set(aj["alert_id"])
    assert ah["chat_id"].isna().all() and ah["caller_id"].isna().all()  # HTML exports carry no ids
    assert {(r, w) for _, r, w in rejects_of(hh)} == {(r, w) for _, r, w in rejects_of(hj)}
    assert rh.skipped == rj.skipped and rh.messages == rj.messages
    # the JSON export ingested after the HTML one adds nothing but fills the ids
    again = ingest_telegram(hh, [FIX / "channel_json", FIX / "group_json"])
    assert again.ingest.rows_new == 0
    assert list_alerts(hh)["chat_id"].notna().all()


def test_account_export_reads_every_chat(home):
    rep = ingest_telegram(home, [FIX / "account_json" / "result.json"])
    assert rep.chats == 2 and rep.ingest.rows_new == 15
    assert alert_set(list_alerts(home)) == rounded(CHANNEL_ALERTS | GROUP_ALERTS)
    assert {(r, w) for _, r, w in rejects_of(home)} == CHANNEL_REJECTS | GROUP_REJECTS


def test_folder_walk_dedups_the_same_calls_and_ignores_other_json(tmp_path):
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    home = Home(tmp_path / "home")
    rep = ingest_telegram(home, [FIX])
    # channel (json, html, later, account), group (json, html, account): one alert per call
    assert rep.ingest.rows_new == 17
    assert len(list_alerts(home)) == 17
    with pytest.raises(ValueError, match="not a Telegram Desktop JSON export"):
        ingest_telegram(home, [tmp_path / "notes.json"])
    with pytest.raises(ValueError, match="no Telegram exports"):
        ingest_telegram(home, [tmp_path / "home"])


def test_evm_chain_forwarded_and_bots_options(tmp_path):
    h = Home(tmp_path / "a")
    rep = ingest_telegram(h, [FIX / "channel_json"], evm_chain="BSC")
    al = list_alerts(h)
    assert ("5", "bsc", F.E[2].lower()) in set(zip(al["message_id"], al["chain"], al["token"], strict=True))
    assert "evm address without chain hint" not in rep.ingest.reject_reasons
    # a hinted address keeps its hint
    assert al.loc[al["message_id"] == "4", "chain"].tolist() == ["base"]
    with pytest.raises(ValueError, match="not an EVM chain"):
        ingest_telegram(h, [FIX / "channel_json"], evm_chain="solana")
    with pytest.raises(ValueError, match="--forwarded"):
        ingest_telegram(h, [FIX / "channel_json"], forwarded="both")

    h2 = Home(tmp_path / "b")
    ingest_telegram(h2, [FIX / "channel_json", FIX / "group_json"], forwarded="sender")
    al = list_alerts(h2)
    fw = al[al["forwarded"].fillna(False).astype(bool)]
    assert set(zip(fw["message_id"], fw["caller"], strict=True)) == {("10", "Alpha Calls"), ("111", "Alice")}

    h3 = Home(tmp_path / "c")
    rep = ingest_telegram(h3, [FIX / "channel_json", FIX / "group_json"], forwarded="skip")
    assert not list_alerts(h3)["forwarded"].fillna(False).astype(bool).any()
    assert rep.skipped["forwarded (skipped: --forwarded skip)"] == 2

    # only Rick is a bot: Phanes' posts become calls of "Phanes", Carol's cashtag message is no call
    h4 = Home(tmp_path / "d")
    rep = ingest_telegram(h4, [FIX / "group_json"], bots="rick")
    al = list_alerts(h4)
    assert "Carol" not in set(al["caller"])
    assert al.loc[al["caller"] == "Phanes", "token"].tolist() == [F.S[7]]
    assert al.loc[al["message_id"] == "102", "price_at_alert"].isna().all()  # Phanes no longer enriches
    assert is_bot("@PhanesGreenBot", bot_set("default,mybot")) and is_bot("My Bot", bot_set("default,mybot"))
    assert not is_bot("Rick Astley", bot_set(None))


# ------------------------------------------------------------------------------------------ units


def test_numbers_and_bot_reply_parsing():
    assert parse_number("155", "K") == 155_000 and parse_number("1.2", "M") == 1_200_000
    assert parse_number("3", "B") == 3e9 and parse_number("1,234.5") == 1234.5
    assert parse_number("0.0₄1443") == pytest.approx(0.00001443)
    info = parse_bot_reply(
        f"🟢 Pepe [$155K/6%] $PEPE\n🌐 Base @ Uniswap V2\n💰 USD: $0.0001554\n💎 MC: **$144.4K**\n{F.E[1]}",
        [],
    )
    assert (info.ticker, info.price, info.mcap, info.chain) == ("PEPE", 0.0001554, 144_400.0, "base")
    assert [t.address for t in info.tokens] == [F.E[1].lower()]
    head = parse_bot_reply("💊 Six [$1.5M/4%] $SIX\n🌐 Solana @ Raydium", [])
    assert head.mcap == 1_500_000 and head.chain is None  # solana is no EVM hint
    fdv = parse_bot_reply("$X\nFDV: $2B\nMC: —", [])
    assert fdv.mcap == 2e9


def test_address_rules():
    assert classify_run(F.S[1]) == ("solana", None)
    assert classify_run(F.TX)[0] == "tx"
    assert classify_run(F.LOWER)[0] == "invalid" and "lower-cased" in classify_run(F.LOWER)[1]
    assert classify_run(F.S[2].upper())[0] == "invalid"
    assert classify_run("a" * 40)[0] == "ignore"  # a hex hash, not an address
    zw = scan_message(f"CA {F.S[2][:5]}\u200b{F.S[2][5:]}\u2060", [])
    assert [t.address for t in zw.tokens] == [F.S[2]]
    links = {
        f"https://dexscreener.com/solana/{F.PAIR}": ("either", "solana"),
        f"https://www.geckoterminal.com/base/pools/{F.E[1]}": ("pool", "base"),
        f"https://www.geckoterminal.com/solana/tokens/{F.S[3]}": ("token", "solana"),
        f"https://birdeye.so/token/{F.S[3]}?chain=solana": ("token", "solana"),
        f"https://gmgn.ai/sol/token/abc_{F.S[3]}": ("token", "solana"),
        f"https://photon-sol.tinyastro.io/en/lp/{F.PAIR}?handle=x": ("either", "solana"),
        f"https://pump.fun/{F.P[1]}": ("token", "solana"),
        f"https://solscan.io/token/{F.S[3]}": ("token", "solana"),
        f"https://bscscan.com/token/{F.E[2]}": ("token", "bsc"),
        f"https://basescan.org/address/{F.E[2]}": ("token", "base"),
        f"https://etherscan.io/token/{F.E[2]}": ("token", "ethereum"),
    }
    for url, (kind, chain) in links.items():
        s = scan_message("", [url])
        found = {"token": s.tokens, "pool": s.pools, "either": s.either}[kind]
        assert len(found) == 1 and found[0].chain == chain, url
    assert not scan_message(f"https://solscan.io/tx/{F.TX}", []).has_address
    assert scan_message(f"https://etherscan.io/tx/0x{'ab' * 32}", []).tx_signatures == 1
    # a token named beside a pair link: the link is the pool
    s = scan_message(f"{F.S[4]} https://dexscreener.com/solana/{F.PAIR}", [])
    assert [t.address for t in s.tokens] == [F.S[4]] and [p.address for p in s.either] == [F.PAIR]
    # chain words
    assert scan_message(f"{F.E[1]} #bsc", []).chain_hints == ["bsc"]
    assert scan_message(f"{F.E[1]} on Base", []).chain_hints == ["base"]
    assert scan_message(f"{F.E[1]} ETH", []).chain_hints == ["ethereum"]
    assert scan_message(f"{F.E[1]} buy $ETH and base camp", []).chain_hints == []


# ------------------------------------------------------------------------------------------ streaming


def _big_export(path: Path, n: int) -> int:
    """A single-chat JSON export of ``n`` messages (every 10th a call), written incrementally."""
    calls = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{\n "name": "Big",\n "type": "public_channel",\n "id": 42,\n "messages": [\n')
        for i in range(1, n + 1):
            if i % 10 == 0:
                text = [f"call #{i} ", {"type": "code", "text": F.sol(1000 + i)}]
                calls += 1
            else:
                text = f"chatter {i} " + "lorem ipsum dolor sit amet " * 20
            m = {
                "id": i,
                "type": "message",
                "date": "2025-10-09T11:53:20",
                "date_unixtime": str(F.T0 + i),
                "from": "Big",
                "from_id": "channel42",
                "text": text,
                "text_entities": F._runs(text),
            }
            fh.write(("  " if i == 1 else ",\n  ") + json.dumps(m, ensure_ascii=False))
        fh.write("\n ]\n}\n")
    return calls


def test_large_export_streams_in_bounded_memory(tmp_path, home, monkeypatch):
    path = tmp_path / "big" / "result.json"
    path.parent.mkdir()
    calls = _big_export(path, 5_000)
    size = path.stat().st_size
    assert size > 3_000_000
    tracemalloc.start()
    n = sum(1 for _ in json_export.read_json_export(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 5_000
    assert peak < size / 10, f"reader: peak {peak} bytes for a {size}-byte export"
    # the whole extraction keeps only the calls (they become rows) and a bounded window of recent messages
    from alertlab.ingest.telegram import calls as calls_mod

    monkeypatch.setattr(calls_mod, "RECENT_MESSAGES", 300)
    tracemalloc.start()
    rows = calls_mod.extract_calls([path])[0]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(rows) == calls and peak < size / 3, f"extract: peak {peak} bytes for a {size}-byte export"
    seen = []
    monkeypatch.setattr(
        json_export.ijson, "parse", lambda *a, _p=json_export.ijson.parse, **k: seen.append(1) or _p(*a, **k)
    )
    rep = ingest_telegram(home, [path])
    assert seen and rep.ingest.rows_new == calls and rep.skipped["no address"] == 5_000 - calls


# ------------------------------------------------------------------------------------------ store & CLI


def test_old_home_is_migrated_and_csv_ingest_fills_new_columns(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    con = duckdb.connect(str(root / "catalog.duckdb"))
    con.execute("""CREATE TABLE alerts (alert_id VARCHAR PRIMARY KEY, caller VARCHAR NOT NULL, chain VARCHAR NOT NULL,
        token VARCHAR NOT NULL, ts_ms BIGINT NOT NULL, ticker VARCHAR, price_at_alert DOUBLE, mcap_at_alert DOUBLE,
        chat_id VARCHAR, message_id VARCHAR, source_file VARCHAR, source_row BIGINT,
        ingested_at TIMESTAMPTZ DEFAULT now())""")
    con.execute(
        "INSERT INTO alerts (alert_id, caller, chain, token, ts_ms) VALUES ('a1', 'x', 'solana', ?, 1)",
        [F.S[1]],
    )
    con.close()
    h = Home(root)
    al = list_alerts(h)
    assert al["alert_id"].tolist() == ["a1"] and al["caller_id"].isna().all() and al["source"].isna().all()
    csv = tmp_path / "calls.csv"
    csv.write_text(
        f"caller,caller_id,chain,token,ts,forwarded,pair\nann,u1,sol,{F.S[2]},{F.T0},yes,{F.PAIR}\n"
    )
    rep = ingest_alerts(h, [csv])
    assert rep.rows_new == 1
    row = list_alerts(h).set_index("alert_id").drop("a1").iloc[0]
    assert (row["caller_id"], row["source"], bool(row["forwarded"]), row["pool"]) == (
        "u1",
        "calls.csv",
        True,
        F.PAIR,
    )


@pytest.fixture
def filled(home):
    ingest_telegram(home, [FIX / "channel_json", FIX / "group_json"])
    return home


def test_cli_ingest_and_alerts(filled, tmp_path):
    home = str(filled.root)
    r = runner.invoke(app, ["ingest", "telegram", str(FIX / "channel_later_json"), "--home", home, "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["ingest"]["rows_new"] == 2 and d["ingest"]["rows_duplicate"] == 5
    r = runner.invoke(app, ["ingest", "telegram", str(FIX / "group_html"), "--home", home])
    assert (
        r.exit_code == 0 and "messages not taken" in r.output and "bot post that is not a reply" in r.output
    )

    r = runner.invoke(app, ["alerts", "--home", home, "--json"])
    rows = json.loads(r.output)
    assert len(rows) == 17 and {
        "alert_id",
        "caller",
        "caller_id",
        "chain",
        "token",
        "ts",
        "ticker",
        "price_at_alert",
        "mcap_at_alert",
        "chat_id",
        "message_id",
        "source",
        "forwarded",
        "pool",
        "is_first_call",
    } <= set(rows[0])
    r = runner.invoke(app, ["alerts", "--home", home, "--json", "--caller", "alice", "--chain", "SOL"])
    assert [x["message_id"] for x in json.loads(r.output)] == ["100"]
    r = runner.invoke(app, ["alerts", "--home", home, "--json", "--from", "2025-10-09", "--to", "2025-10-09"])
    assert len(json.loads(r.output)) == 17
    r = runner.invoke(app, ["alerts", "--home", home, "--from", "2025-10-10"])
    assert r.exit_code == 2 and "no alerts match" in r.output
    out = tmp_path / "x" / "alerts.parquet"
    r = runner.invoke(app, ["alerts", "--home", home, "--chain", "base", "--export-parquet", str(out)])
    assert r.exit_code == 0 and "wrote 2 alerts" in r.output
    assert set(pd.read_parquet(out)["token"]) == {F.E[1].lower(), F.E[4].lower()}

    r = runner.invoke(app, ["alerts", "--home", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "no alerts in" in r.output
    r = runner.invoke(app, ["ingest", "telegram", str(tmp_path / "nope"), "--home", home])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(
        app, ["ingest", "telegram", str(FIX / "group_json"), "--home", home, "--evm-chain", "tron"]
    )
    assert r.exit_code == 2 and "not an EVM chain" in r.output


@pytest.mark.parametrize("width", [80, 120])
def test_alerts_table_fits_the_terminal(filled, width):
    df = list_alerts(filled)
    df.loc[0, "caller"] = "A very long caller name that goes on"
    df.loc[0, "ticker"] = "LONGTICKER"
    df.loc[0, "source"] = "telegram:Some very long chat title"
    df.loc[0, "mcap_at_alert"] = 123_456_789_012.0
    con = Console(width=width, record=True)
    con.print(frame_table(alerts_view(df, width), "alerts"))
    lines = con.export_text().splitlines()
    assert max(len(x) for x in lines) <= width
    header = next(x for x in lines if "caller" in x)
    assert ("source" in header) == (width >= 120)
    # no row was wrapped onto a second line: one line per alert
    assert len([x for x in lines if x.startswith("│")]) == len(df)


def test_unknown_callers_and_dates_are_quarantined(tmp_path, home):
    msgs = [
        {
            "id": 1,
            "type": "message",
            "date_unixtime": str(F.T0),
            "from": None,
            "from_id": "user5",
            "text": F.S[11],
        },
        {
            "id": 2,
            "type": "message",
            "date": "2025-10-09T11:53:20",
            "from": "Ann",
            "from_id": "user6",
            "text": F.S[12],
        },
        {
            "id": 3,
            "type": "message",
            "date_unixtime": str(F.T0 + 5),
            "from": "Ann",
            "from_id": "user6",
            "forwarded_from": None,
            "text": F.S[13],
        },
        {
            "id": 4,
            "type": "message",
            "date_unixtime": str(F.T0 + 9),
            "from": "Rick",
            "from_id": "user9",
            "reply_to_message_id": 999,
            "text": f"💊 X [$1M/2%] $X\n{F.S[14]}",
        },
        {
            "id": 5,
            "type": "message",
            "date_unixtime": str(F.T0 + 12),
            "from": "Ann",
            "from_id": "user6",
            "reply_to_message_id": 1,
            "reply_to_peer_id": "channel77",
            "text": "elsewhere",
        },
    ]
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"name": "Misc", "type": "private_group", "id": 5, "messages": msgs}))
    rep = ingest_telegram(home, [path])
    al = list_alerts(home)
    assert al[["caller", "token", "message_id"]].values.tolist() == [["Deleted Account", F.S[11], "1"]]
    assert {(r, w) for _, r, w in rejects_of(home)} == {
        (2, "missing or unparsable message date"),
        (3, "forwarded from a hidden account (caller unknown)"),
        (4, "bot reply to a message not in the export (caller unknown)"),
    }
    assert rep.skipped == {"no address": 1}
