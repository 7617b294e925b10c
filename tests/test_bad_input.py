"""Bad input, one test per case: the exact one-line error, exit code 2, no traceback, nothing lost.

Every CLI case runs in-process through typer's CliRunner (same app, same error boundary as the
``alertlab`` entry point); the damaged-cache, two-writer and kill -9 cases run real processes
(``PYTHONPATH=<repo>/src``), because a segfault, a lock held by another PID or a SIGKILL cannot be
faked in-process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from alertlab.cli import app
from alertlab.errors import UserError
from alertlab.ingest import ingest_alerts, ingest_candles
from alertlab.store import Home

SRC = Path(__file__).resolve().parents[1] / "src"
T0 = 1_760_000_400  # 2025-10-09T09:00:00Z, a multiple of 3600
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
runner = CliRunner()


def sol(i: int) -> str:
    """A valid Solana address (base58 of 32 bytes)."""
    raw = hashlib.sha256(f"sol{i}".encode()).digest()
    n, out = int.from_bytes(raw, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def evm(i: int) -> str:
    return "0x" + hashlib.sha256(f"evm{i}".encode()).hexdigest()[:40]


def cli(*args: str, env: dict | None = None) -> tuple[int, str]:
    """Exit code and stdout of the CLI; a traceback on either stream fails the test."""
    r = runner.invoke(app, list(args), env=env)
    assert "Traceback" not in r.output and not (r.exception and not isinstance(r.exception, SystemExit)), (
        r.output
    )
    return r.exit_code, r.stdout


def one_line_error(code: int, out: str, expected: str) -> None:
    """Exit 2, exactly one line ``error: <expected>``, no traceback."""
    assert code == 2, out
    assert "Traceback" not in out and out.count("\n") == 1, out
    assert out.strip() == f"error: {expected}", out


def candle_rows(token: str, n: int, chain: str = "solana", t0: int = T0, step: int = 60) -> list[str]:
    out = []
    for k in range(n):
        p = 1.0 + 0.01 * (k % 7)
        out.append(f"{chain},{token},{t0 + step * k},{p},{p * 1.05},{p * 0.95},{p * 1.01},{(k % 5) * 10.0}")
    return out


CANDLE_HEAD = "chain,token,timestamp,open,high,low,close,volume"
ALERT_HEAD = "caller,chain,token,ts"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def catalog(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def store_rows(home: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in (home / "candles").glob("*/b*.parquet"))


# ---------------------------------------------------------------------------------------------
# whole-file problems: one line, exit 2


def test_empty_file(tmp_path):
    f = tmp_path / "alerts.csv"
    f.write_bytes(b"")
    code, out = cli("ingest", "alerts", str(f), "--home", str(tmp_path / "h"))
    one_line_error(code, out, f"{f}: empty file (no header, no rows); remove it or export it again")
    assert not (tmp_path / "h" / "catalog.duckdb").exists()


def test_header_only_file(tmp_path):
    f = write(tmp_path / "alerts.csv", [ALERT_HEAD])
    code, out = cli("ingest", "alerts", str(f), "--home", str(tmp_path / "h"))
    one_line_error(code, out, f"{f}: no data rows (header only); remove it or export it again")


def test_header_only_candle_file(tmp_path):
    f = write(tmp_path / "c.csv", [CANDLE_HEAD])
    code, out = cli("ingest", "candles", str(f), "--home", str(tmp_path / "h"))
    one_line_error(code, out, f"{f}: no data rows (empty file or header only); remove it or export it again")


def test_binary_file(tmp_path):
    f = tmp_path / "c.csv"
    f.write_bytes(bytes(range(256)) * 40)
    code, out = cli("ingest", "candles", str(f), "--home", str(tmp_path / "h"))
    one_line_error(
        code, out, f"{f}: binary file, not CSV text (NUL bytes); give a CSV, Parquet or JSON export"
    )


def test_binary_file_without_nul_bytes(tmp_path):
    f = tmp_path / "a.csv"
    f.write_bytes(bytes(range(0x80, 0x100)) * 40)
    code, out = cli("ingest", "alerts", str(f), "--home", str(tmp_path / "h"))
    assert code == 2 and "Traceback" not in out and out.count("\n") == 1
    assert out.startswith(f"error: {f}: binary file or not UTF-8 text (")


def test_wrong_column_csv(tmp_path):
    f = write(tmp_path / "c.csv", ["chain,token,when,price", f"solana,{sol(1)},{T0},1.0"])
    code, out = cli("ingest", "candles", str(f), "--home", str(tmp_path / "h"))
    one_line_error(
        code,
        out,
        f"{f}: missing required column(s): ts (any of ts, timestamp, unixtime, time); open (any of open, o); "
        "high (any of high, h); low (any of low, l); close (any of close, c); volume (any of volume, v, vol); "
        "the header has chain, token, when, price",
    )


def test_wrong_column_alerts_csv(tmp_path):
    f = write(tmp_path / "a.csv", ["who,chain,ts", f"x,solana,{T0}"])
    code, out = cli("ingest", "alerts", str(f), "--home", str(tmp_path / "h"))
    one_line_error(
        code,
        out,
        f"{f}: missing required column(s): caller (any of caller, caller_name); "
        "token (any of token, mint, token_address); the header has who, chain, ts",
    )


def test_semicolon_delimited_csv_is_read(tmp_path):
    h = tmp_path / "h"
    f = write(
        tmp_path / "c.csv",
        [CANDLE_HEAD.replace(",", ";")] + [r.replace(",", ";") for r in candle_rows(sol(1), 30)],
    )
    a = write(tmp_path / "a.csv", ["caller;chain;token;ts", f"Ann;solana;{sol(1)};{T0 * 1000}"])
    assert cli("ingest", "candles", str(f), "--home", str(h))[0] == 0
    assert cli("ingest", "alerts", str(a), "--home", str(h))[0] == 0
    assert store_rows(h) == 30
    logs = catalog(h, "SELECT kind, rows_new, details->>'delimiter' FROM ingest_log ORDER BY kind")
    assert logs == [("alerts", 1, "semicolon"), ("candles", 30, "semicolon")]


def test_candle_file_named_without_chain(tmp_path):
    h = tmp_path / "h"
    tok = evm(1)
    f = write(
        tmp_path / f"{tok}.csv",
        ["timestamp,open,high,low,close,volume"] + [",".join(r.split(",")[2:]) for r in candle_rows(tok, 20)],
    )
    code, out = cli("ingest", "candles", str(f), "--home", str(h))
    one_line_error(
        code,
        out,
        f"{f}: no chain: no chain column (any of chain, network) and the name is not "
        "<chain>_<token>[_<YYYYMMDD-HHMM>_<YYYYMMDD-HHMM>].<ext> (an EVM address names "
        "no chain); rename the file or pass --chain",
    )
    code, out = cli("ingest", "candles", str(f), "--chain", "BSC", "--home", str(h))
    assert code == 0, out
    assert catalog(h, "SELECT DISTINCT chain, token FROM candle_quality") == [("bsc", tok)]


def test_candle_file_named_chain_token(tmp_path):
    h = tmp_path / "h"
    tok = evm(2)
    f = write(
        tmp_path / f"bsc_{tok}.csv",
        ["timestamp,open,high,low,close,volume"] + [",".join(r.split(",")[2:]) for r in candle_rows(tok, 20)],
    )
    code, out = cli("ingest", "candles", str(f), "--home", str(h))
    assert code == 0, out
    assert catalog(h, "SELECT DISTINCT chain, token, n_bars FROM candle_quality") == [("bsc", tok, 20)]
    # --token belongs to one file
    write(tmp_path / "other.csv", [CANDLE_HEAD, *candle_rows(sol(3), 5)])
    code, out = cli(
        "ingest", "candles", str(f), str(tmp_path / "other.csv"), "--token", tok, "--home", str(h)
    )
    one_line_error(code, out, "--token names the token of one file, but 2 files were given")


def test_alertlab_home_is_a_file(tmp_path):
    f = write(tmp_path / "c.csv", [CANDLE_HEAD, *candle_rows(sol(1), 5)])
    home_file = tmp_path / "home"
    home_file.write_text("not a directory")
    code, out = cli("ingest", "candles", str(f), env={"ALERTLAB_HOME": str(home_file)})
    one_line_error(
        code,
        out,
        f"ALERTLAB_HOME={home_file} is a file, not a directory: pass --home DIR "
        "(or set ALERTLAB_HOME) to a directory",
    )
    code, out = cli("quality", env={"ALERTLAB_HOME": str(home_file)})
    one_line_error(
        code,
        out,
        f"ALERTLAB_HOME={home_file} is a file, not a directory: pass --home DIR "
        "(or set ALERTLAB_HOME) to a workspace directory",
    )


def test_alertlab_home_cannot_be_created(tmp_path):
    f = write(tmp_path / "c.csv", [CANDLE_HEAD, *candle_rows(sol(1), 5)])
    (tmp_path / "file").write_text("x")
    home = tmp_path / "file" / "home"  # under a regular file: mkdir fails with ENOTDIR
    code, out = cli("ingest", "candles", str(f), env={"ALERTLAB_HOME": str(home)})
    one_line_error(
        code,
        out,
        f"cannot create ALERTLAB_HOME={home}: Not a directory; pass --home DIR "
        "(or set ALERTLAB_HOME) to a writable directory",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to a read-only directory")
def test_alertlab_home_unwritable(tmp_path):
    f = write(tmp_path / "c.csv", [CANDLE_HEAD, *candle_rows(sol(1), 5)])
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        code, out = cli("ingest", "candles", str(f), env={"ALERTLAB_HOME": str(home)})
    finally:
        home.chmod(0o700)
    one_line_error(
        code,
        out,
        f"ALERTLAB_HOME={home} is not writable: pass --home DIR (or set ALERTLAB_HOME) "
        "to a writable directory",
    )


def test_empty_candle_directory(tmp_path):
    d = tmp_path / "candles"
    d.mkdir()
    code, out = cli("ingest", "candles", str(d), "--home", str(tmp_path / "h"))
    one_line_error(
        code,
        out,
        f"no candle files (.csv, .csv.gz, .tsv, .parquet, .pq, .json) in {d}: "
        "point at the files or the directory that holds them",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["quality"],
        ["rejects"],
        ["runs"],
        ["cache", "ls"],
        ["cache", "verify"],
        ["cache", "clear"],
        ["baseline"],
        ["bt", "--tp", "3"],
    ],
)
def test_read_commands_on_a_missing_home(tmp_path, command):
    home = tmp_path / "nothing-here"
    code, out = cli(*command, "--home", str(home))
    one_line_error(
        code,
        out,
        f"no workspace at {home} (no catalog.duckdb): ingest data first "
        "(`alertlab ingest candles DIR`, `alertlab ingest alerts FILE`) or pass --home "
        "(or set ALERTLAB_HOME) to an existing workspace",
    )
    assert not home.exists()


def test_cache_clear_unknown_entry(tmp_path):
    h = tmp_path / "h"
    write(tmp_path / "c.csv", [CANDLE_HEAD, *candle_rows(sol(1), 5)])
    assert cli("ingest", "candles", str(tmp_path / "c.csv"), "--home", str(h))[0] == 0
    code, out = cli("cache", "clear", "deadbeef", "--home", str(h))
    one_line_error(code, out, f"no cache entry deadbeef in {h} (`alertlab cache ls` lists 0 entries)")


def test_debug_shows_the_traceback(tmp_path):
    f = tmp_path / "alerts.csv"
    f.write_bytes(b"")
    r = runner.invoke(app, ["--debug", "ingest", "alerts", str(f), "--home", str(tmp_path / "h")])
    assert isinstance(r.exception, UserError) and "empty file" in str(r.exception)


# ---------------------------------------------------------------------------------------------
# malformed rows: quarantined with file, line, reason; everything else kept


def test_extra_comma_in_alerts_is_quarantined(tmp_path):
    h = tmp_path / "h"
    f = write(
        tmp_path / "a.csv",
        [
            ALERT_HEAD,
            f"Ann,solana,{sol(1)},{T0 * 1000}",
            f"Smith, John,bsc,{evm(1)},{T0 * 1000}",  # line 3: 5 fields
            f"Bob,solana,{sol(2)},{T0 * 1000}",
            "",  # line 5: blank, skipped
            f"Cid,solana,{sol(3)},{T0 * 1000}",
        ],
    )
    code, out = cli("ingest", "alerts", str(f), "--home", str(h), "--json")
    assert code == 0, out
    rep = json.loads(out)
    assert (rep["rows_read"], rep["rows_new"], rep["rows_rejected"]) == (4, 3, 1)
    assert rep["rejects_sample"] == [
        {
            "file": str(f),
            "row": 3,
            "reason": "malformed line: 5 field(s) where the header has 4 (an unquoted comma inside a value?)",
        }
    ]
    assert catalog(h, "SELECT caller, source_row FROM alerts ORDER BY source_row") == [
        ("Ann", 2),
        ("Bob", 4),
        ("Cid", 6),
    ]
    raw = catalog(h, "SELECT raw->>'line' FROM rejects")
    assert raw == [(f"Smith, John,bsc,{evm(1)},{T0 * 1000}",)]


def test_junk_lines_anywhere_in_a_large_candle_file(tmp_path):
    h = tmp_path / "h"
    n = 30_000
    rows = candle_rows(sol(1), n)
    junk = {0: "garbage", 12_345: "1,2", 29_999: "solana,x,y,z,1,2,3,4,5,6"}  # before data row k
    lines, expect = [CANDLE_HEAD], {}
    for k, r in enumerate(rows):
        if k in junk:
            lines.append(junk[k])
            expect[len(lines)] = junk[k]
        lines.append(r)
    lines.append("trailing junk")
    expect[len(lines)] = "trailing junk"
    f = write(tmp_path / "c.csv", lines)
    rep = ingest_candles(Home(h), [f])
    assert rep.rows_new == n and rep.rows_rejected == len(expect) and rep.rows_read == n + len(expect)
    got = dict(catalog(h, "SELECT source_row, raw->'values'->>'line' FROM rejects ORDER BY source_row"))
    assert got == expect
    assert store_rows(h) == n


def test_good_files_of_a_directory_are_ingested(tmp_path):
    h = tmp_path / "h"
    d = tmp_path / "candles"
    d.mkdir()
    write(d / "good1.csv", [CANDLE_HEAD, *candle_rows(sol(1), 10)])
    write(d / "good2.csv", [CANDLE_HEAD, *candle_rows(sol(2), 12)])
    (d / "broken.csv").write_bytes(b"\x00\x01" * 500)
    code, out = cli("ingest", "candles", str(d), "--home", str(h), "--json")
    assert code == 0, out
    assert json.loads(out)["files_rejected"] == [
        {
            "file": str(d / "broken.csv"),
            "reason": f"{d / 'broken.csv'}: binary file, not CSV text (NUL bytes); give a CSV, Parquet or JSON export",
        }
    ]
    write(d / "good3.csv", [CANDLE_HEAD, *candle_rows(sol(3), 3)])
    code, out = cli("ingest", "candles", str(d), "--home", str(h))  # the summary says it too
    assert code == 0 and "files_rejected" in out, out
    assert store_rows(h) == 25
    status = dict(catalog(h, "SELECT regexp_extract(source_file, '[^/]+$'), status FROM ingest_log"))
    assert status == {
        "good1.csv": "complete",
        "good2.csv": "complete",
        "good3.csv": "complete",
        "broken.csv": "rejected",
    }
    assert catalog(h, "SELECT source_row, reason FROM rejects") == [  # once, though the file was seen twice
        (None, "file not ingested: binary file, not CSV text (NUL bytes); give a CSV, Parquet or JSON export")
    ]


def test_invalid_utf8_value_quarantines_its_row(tmp_path):
    h = tmp_path / "h"
    f = tmp_path / "a.csv"
    f.write_bytes(
        ("\n".join([ALERT_HEAD, f"Ann,solana,{sol(1)},{T0 * 1000}"]) + "\n").encode()
        + f"Bo\xff\xfeb,solana,{sol(2)},{T0 * 1000}\n".encode("latin-1")
        + f"Cid,solana,{sol(3)},{T0 * 1000}\n".encode()
    )
    rep = ingest_alerts(Home(h), [f])
    assert (rep.rows_read, rep.rows_new, rep.rows_rejected) == (3, 2, 1)
    assert rep.rejects_sample == [{"file": str(f), "row": 3, "reason": "invalid UTF-8 text"}]


def test_reingest_does_not_duplicate_rejects(tmp_path):
    h = Home(tmp_path / "h")
    a = write(
        tmp_path / "a.csv",
        [ALERT_HEAD, f"Ann,solana,{sol(1)},{T0 * 1000}", f",solana,{sol(2)},{T0 * 1000}", "junk"],
    )
    c = write(
        tmp_path / "c.csv",
        [CANDLE_HEAD, *candle_rows(sol(1), 10), f"solana,{sol(1)},{T0 + 600},-1,1,1,1,1", "junk"],
    )
    for _ in range(3):
        ingest_alerts(h, [a])
        ingest_candles(h, [c])
    got = catalog(h.root, "SELECT kind, source_row, reason, count(*) FROM rejects GROUP BY ALL ORDER BY 1, 2")
    assert [(k, r, n) for k, r, _, n in got] == [
        ("alerts", 3, 1),
        ("alerts", 4, 1),
        ("candles", 12, 1),
        ("candles", 13, 1),
    ]
    # the same bytes under another name are the same file: still one copy of each reject
    c2 = tmp_path / "copy.csv"
    c2.write_bytes(Path(c).read_bytes())
    ingest_candles(h, [c2])
    assert catalog(h.root, "SELECT count(*) FROM rejects WHERE kind = 'candles'") == [(2,)]


def test_chain_corrected_when_the_address_settles_it(tmp_path):
    h = Home(tmp_path / "h")
    f = write(
        tmp_path / "a.csv",
        [
            ALERT_HEAD,
            f"Ann,bsc,{sol(1)},{T0 * 1000}",  # a Solana mint labelled bsc → solana
            f"Ann,ethereum,{sol(2)},{T0 * 1000}",  # … labelled ethereum → solana
            f"Ann,solana,{evm(3)},{T0 * 1000}",  # an EVM address labelled solana: which EVM chain? rejected
            f"Ann,bsc,{evm(4)},{T0 * 1000}",  # fine as it is
        ],
    )
    rep = ingest_alerts(h, [f])
    assert (rep.rows_new, rep.rows_rejected, rep.chain_corrected) == (3, 1, 2)
    assert rep.rejects_sample[0]["row"] == 4 and "invalid solana address" in rep.rejects_sample[0]["reason"]
    assert catalog(h.root, "SELECT chain, token FROM alerts ORDER BY source_row") == [
        ("solana", sol(1)),
        ("solana", sol(2)),
        ("bsc", evm(4)),
    ]
    code, out = cli("ingest", "alerts", str(f), "--home", str(h.root))
    assert code == 0 and "chain_corrected" in out


def test_alerts_in_the_future_are_quarantined(tmp_path):
    h = Home(tmp_path / "h")
    future = int(time.time() * 1000) + 3_600_000
    f = write(
        tmp_path / "a.csv",
        [
            ALERT_HEAD,
            f"Ann,solana,{sol(1)},{T0 * 1000}",
            f"Ann,solana,{sol(2)},2099-06-01T00:00:00Z",
            f"Ann,solana,{sol(3)},{future}",
        ],
    )
    rep = ingest_alerts(h, [f])
    assert rep.rows_new == 1 and rep.reject_reasons == {"ts in the future": 2}
    assert [s["row"] for s in rep.rejects_sample] == [3, 4]


# ---------------------------------------------------------------------------------------------
# real processes: damaged cache, two writers, kill -9


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", "from alertlab.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def small_market(tmp_path: Path) -> Path:
    """Six tokens with two days of 1-minute bars, one alert each: enough to cut windows and trade."""
    h = Home(tmp_path / "h")
    rng = np.random.default_rng(5)
    lines = [CANDLE_HEAD]
    for i in range(6):
        p = np.exp(np.cumsum(rng.normal(0, 0.01, 2 * 1440)))
        for k, x in enumerate(p):
            lines.append(f"solana,{sol(i)},{T0 + 60 * k},{x},{x * 1.02},{x * 0.98},{x},{k % 3}")
    write(tmp_path / "c.csv", lines)
    write(
        tmp_path / "a.csv",
        [ALERT_HEAD] + [f"C{i % 2},solana,{sol(i)},{(T0 + 600 + 60 * i) * 1000}" for i in range(6)],
    )
    ingest_candles(h, [tmp_path / "c.csv"])
    ingest_alerts(h, [tmp_path / "a.csv"])
    return h.root


def test_damaged_cache_entry_is_rebuilt_never_a_crash(tmp_path):
    from alertlab.windows.integrity import check_entry

    home = small_market(tmp_path)
    first = runner.invoke(
        app, ["bt", "--tp", "2", "--sl", "0.5", "--horizon-hours", "12", "--home", str(home), "--json"]
    )
    assert first.exit_code == 0, first.output
    (entry,) = [p for p in (home / "cache" / "windows").iterdir() if not p.name.startswith(".")]
    off = entry / "offsets.npy"
    with open(off, "r+b") as fh:  # 4 bytes inside the data: a huge offset
        fh.seek(128 + 8 * 3)
        fh.write(b"\xff\xff\xff\x7f")
    r = run_cli("bt", "--tp", "2", "--sl", "0.5", "--horizon-hours", "12", "--home", str(home), "--json")
    assert r.returncode == 0, r.stderr
    assert (
        f"warning: path-cache entry {entry.name} is damaged (offsets.npy does not match its stored "
        "checksum); rebuilding it"
    ) in r.stderr
    assert json.loads(r.stdout)["summary"] == json.loads(first.stdout)["summary"]
    assert check_entry(entry) is None  # rebuilt sound


def test_integrity_checks_catch_each_kind_of_damage(tmp_path):
    from alertlab.app.baseline import run_baseline
    from alertlab.windows.integrity import check_entry

    home = small_market(tmp_path)
    info = run_baseline(Home(home)).cache
    assert check_entry(info.path) is None
    cases = {
        "ts.npy": lambda p: p.write_bytes(p.read_bytes()[:-8]),  # truncated
        "offsets.npy": lambda p: np.save(p, np.zeros(3, np.int64)),  # wrong length (and checksum)
        "meta.json": lambda p: p.write_text("{"),
        "alerts.parquet": lambda p: p.write_bytes(b"PAR1"),
    }
    for name, damage in cases.items():
        f = info.path / name
        keep = f.read_bytes()
        damage(f)
        assert check_entry(info.path) is not None, name
        f.write_bytes(keep)
        assert check_entry(info.path) is None


HOLD = """
import sys, time
from alertlab.store import resolve_home
from alertlab.store.lock import workspace_lock
with workspace_lock(resolve_home(sys.argv[1]), "ingest candles"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_two_writers_queue_and_readers_keep_working(tmp_path):
    home = tmp_path / "h"
    write(tmp_path / "c.csv", [CANDLE_HEAD, *candle_rows(sol(1), 10)])
    ingest_candles(Home(home), [tmp_path / "c.csv"])
    a = write(tmp_path / "a.csv", [ALERT_HEAD, f"Ann,solana,{sol(1)},{T0 * 1000}"])
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home), "120"], stdout=subprocess.PIPE, text=True, env=env
    )
    waiter = None
    try:
        assert holder.stdout.readline().strip() == "locked"
        # a reader works while the writer lock is held
        q = runner.invoke(app, ["quality", "--home", str(home), "--json"])
        assert q.exit_code == 0 and json.loads(q.stdout)["series"][0]["n_bars"] == 10
        # --no-wait: one line naming the holder
        r = run_cli("ingest", "alerts", str(a), "--home", str(home), "--no-wait")  # the real entry point
        assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr and r.stdout.count("\n") == 1
        assert r.stdout.startswith(
            f"error: workspace {home} is busy: PID {holder.pid} (ingest candles, since "
        )
        assert r.stdout.rstrip().endswith("is writing to it; rerun without --no-wait to queue behind it")
        # without it: says whom it waits for, queues, and ingests once the holder is gone
        waiter = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from alertlab.cli import main; main()",
                "ingest",
                "alerts",
                str(a),
                "--home",
                str(home),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        first = waiter.stderr.readline()
        assert f"waiting for PID {holder.pid} (ingest candles) to finish" in first
        assert waiter.poll() is None  # still queued
        holder.kill()  # SIGKILL: the kernel drops the lock with the process
        out, err = waiter.communicate(timeout=120)
        assert waiter.returncode == 0, err
    finally:
        for p in (holder, waiter):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert catalog(home, "SELECT count(*) FROM alerts") == [(1,)]


HOLD_CATALOG = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1] + "/catalog.duckdb")  # a writer in the middle of its short catalog write
print("open", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_reader_waits_for_a_short_catalog_write(tmp_path):
    home = tmp_path / "h"
    write(tmp_path / "c.csv", [CANDLE_HEAD, *candle_rows(sol(1), 10)])
    ingest_candles(Home(home), [tmp_path / "c.csv"])
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CATALOG, str(home), "2"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        r = runner.invoke(app, ["quality", "--home", str(home), "--json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["series"][0]["n_bars"] == 10, r.output
        assert f"waiting for PID {holder.pid} to release the catalog" in r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_catalog_that_is_not_a_database(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    (home / "catalog.duckdb").write_bytes(b"not a database" * 100)
    code, out = cli("rejects", "--home", str(home))
    one_line_error(
        code,
        out,
        f"{home / 'catalog.duckdb'} is not an alertlab catalog (not a DuckDB database); "
        "move it away or pass --home DIR for a fresh workspace",
    )


KILL_AT = """
import os, signal, sys
import alertlab.ingest.candles as c
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[3] == "commit":  # buckets rewritten, catalog not yet committed
    c._commit = die
else:  # still reading: staging written, store untouched
    c._Stage.flush = die
from alertlab.store import resolve_home
c.ingest_candles(resolve_home(sys.argv[1]), [sys.argv[2]])
"""


@pytest.mark.parametrize("when", ["commit", "read"])
def test_kill_9_during_ingest_is_cleaned_and_reconciled(tmp_path, when):
    home = tmp_path / "h"
    write(tmp_path / "c1.csv", [CANDLE_HEAD, *candle_rows(sol(1), 50)])
    write(
        tmp_path / "c2.csv", [CANDLE_HEAD, *candle_rows(sol(2), 70), *candle_rows(sol(1), 80, t0=T0 + 3000)]
    )
    ingest_candles(Home(home), [tmp_path / "c1.csv"])
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    p = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(home), str(tmp_path / "c2.csv"), when],
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert list(home.glob(".ingest-*")), "the killed ingest left its staging area"
    added = 70 + 80 if when == "commit" else 0  # bucket rewrites the catalog never heard of
    assert store_rows(home) == 50 + added
    assert catalog(home, "SELECT count(*) FROM ingest_log WHERE status = 'running'") == [(1,)]
    # the next writer (any ingest) cleans up and reconciles
    write(tmp_path / "a.csv", [ALERT_HEAD, f"Ann,solana,{sol(1)},{T0 * 1000}"])
    ingest_alerts(Home(home), [tmp_path / "a.csv"])
    assert not list(home.glob(".ingest-*"))
    log = catalog(
        home, "SELECT status, rows_new, details FROM ingest_log WHERE kind = 'candles' ORDER BY ingested_at"
    )
    assert [s for s, _, _ in log] == ["complete", "interrupted"]
    assert json.loads(log[1][2])["reconciled"]["rows_added_to_store"] == added
    assert catalog(home, "SELECT sum(rows_new) FROM ingest_log WHERE kind = 'candles'") == [
        (store_rows(home),)
    ]
    assert dict(catalog(home, "SELECT token, n_bars FROM candle_quality")) == (
        {sol(1): 130, sol(2): 70} if when == "commit" else {sol(1): 50}
    )
    # re-running the interrupted ingest adds nothing twice and the totals still agree
    rep = ingest_candles(Home(home), [tmp_path / "c2.csv"])
    assert rep.rows_new == 150 - added and rep.rows_duplicate == added
    assert catalog(home, "SELECT sum(rows_new) FROM ingest_log WHERE kind = 'candles'") == [
        (store_rows(home),)
    ]
    assert store_rows(home) == 200
