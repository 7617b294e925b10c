"""Alert ingestion: CSV/Parquet exports → the ``alerts`` catalog table, nothing dropped silently.

Input: ``.csv`` (also ``.csv.gz``, ``.tsv``) or ``.parquet``/``.pq`` files, or directories searched
recursively for them. Header names are matched trimmed and case-insensitively.

Columns and aliases (when several aliases are present, the first non-empty one per row is used,
in this order):

* ``alert_id`` (optional) ← ``alert_id``
* ``caller`` ← ``caller``, ``caller_name``
* ``chain`` (optional) ← ``chain``, ``network``
* ``token`` ← ``token``, ``mint``, ``token_address``
* ``ts`` ← ``ts``, ``alert_ts_ms``, ``alert_ts_utc``, ``timestamp``. Local-time columns such as
  ``alert_datetime`` / ``alert_dt`` of the real export are ignored on purpose (``alert_dt`` is a
  naive local time that would be read as UTC).
* optional ``ticker`` ← ``ticker``, ``symbol``; ``price_at_alert`` ← ``price_at_alert``,
  ``price``; ``mcap_at_alert`` ← ``mcap_at_alert``, ``mcap``, ``market_cap``; ``chat_id``;
  ``message_id``.

Normalisation:

* Times (see :mod:`alertlab.ingest.timeparse`): ISO-8601 with or without offset (naive = UTC) or
  epoch numbers; numbers ``>= 1e11`` are milliseconds, smaller ones seconds (µs/ns above 1e14/1e17).
  Stored as ``ts_ms`` (int64 epoch ms, UTC).
* Chains (see :mod:`alertlab.ingest.chains`): ``Solana/SOL/solana`` → ``solana``, ``BSC/BNB`` →
  ``bsc``, ``eth/ethereum`` → ``ethereum``, ``base``, ``Tron/TRON`` → ``tron``, other spellings
  lower-cased. An empty chain is inferred from the address: Solana base58 (32 bytes) → ``solana``,
  Tron base58check → ``tron``, ``0x`` + 40 hex → the one EVM chain on which the candle store knows
  that token (zero or several → quarantined, the reason says which).
* Tokens: trimmed; EVM addresses lower-cased; Solana/Tron/TON kept case-sensitive. The address
  must be valid for the chain. Callers, tickers, ids: trimmed (inner text untouched).
* ``price_at_alert``: a positive finite number, else stored as NULL (counted in the ingest log
  ``details.nulled_fields``). ``mcap_at_alert``: exports mix dollars (``3600000.0``) and millions
  (``3.29``); the rule is **values below 1000 are millions of dollars** (×1e6), values from 1000 up
  are dollars. Non-positive/unparsable → NULL (counted likewise).
* ``chat_id``/``message_id`` are text; integer-valued numbers lose a trailing ``.0``.
* A chain label the address contradicts is corrected when the address settles it: a Solana
  mint (or Tron address) labelled ``bsc``/``ethereum``/… is on ``solana`` (``tron``); counted as
  ``chain_corrected`` in the report and the ingest log. Ambiguous cases (an EVM address under a
  non-EVM label) are rejected.

Validation → quarantine (``rejects`` table, with file, row and reason; counted in the report):
empty caller, missing/unparsable/out-of-range time (not 2000–2099), a time more than 5 minutes
after the ingest (``ts in the future``), empty or invalid token address for the chain, chain not
inferable, an input ``alert_id`` already used by a different alert, a malformed CSV line (field
count differs from the header's; its text is kept), a row with invalid UTF-8. A row with several
problems gets them all, joined by ``"; "``. Rejects are keyed by (file content hash, row):
re-ingesting a file replaces its earlier rejects instead of adding copies, and a reject already
stored under another hash (same kind, file, row and reason) is not stored again. A file that cannot be
read at all (empty, header only, binary, missing columns) is skipped and reported
(``files_rejected``); only when no file given can be read is that an error.

Row numbers: ``row`` is the physical line number in the CSV (header = line 1, first data row =
2; the CSV delimiter is detected, see :mod:`alertlab.ingest.csvread`); exact unless a quoted
field spans several lines (each extra line shifts later rows by one). Parquet rows are numbered
the same way (first = 2).

Dedup: one alert per ``(caller, chain, token, ts_ms)``. Duplicates (e.g. one row per bot reply)
are merged keeping, per column, the first non-null value in input order (files in the order
given, then rows). ``alert_id`` is the input's (first non-empty) or
``sha1(f"{caller}|{chain}|{token}|{ts_ms}").hexdigest()[:16]``: stable across runs and file
orders. An alert already in the store is a duplicate: its stored values are kept, NULL fields are
filled from the new rows (so re-ingesting a file changes nothing). All catalog writes of one call
(alerts, rejects, one ``ingest_log`` row per file) happen in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alertlab.errors import UserError
from alertlab.ingest import chains as ch
from alertlab.ingest.csvread import BadLine, read_text_table
from alertlab.ingest.files import collect_files
from alertlab.ingest.quality import SAMPLE_SIZE, IngestReport, file_sha256
from alertlab.ingest.timeparse import EMPTY, OK, reason_of, to_epoch_ms
from alertlab.store import Home
from alertlab.store.lock import workspace_lock
from alertlab.util.progress import bar

ALIASES: dict[str, tuple[str, ...]] = {
    "alert_id": ("alert_id",),
    "caller": ("caller", "caller_name"),
    "chain": ("chain", "network"),
    "token": ("token", "mint", "token_address"),
    "ts": ("ts", "alert_ts_ms", "alert_ts_utc", "timestamp"),
    "ticker": ("ticker", "symbol"),
    "price_at_alert": ("price_at_alert", "price"),
    "mcap_at_alert": ("mcap_at_alert", "mcap", "market_cap"),
    "chat_id": ("chat_id",),
    "message_id": ("message_id",),
    "caller_id": ("caller_id", "from_id"),
    "source": ("source",),
    "forwarded": ("forwarded",),
    "pool": ("pool", "pool_address", "pair", "pair_address"),
}
REQUIRED = ("caller", "token", "ts")
KEY = ["caller", "chain", "token", "ts_ms"]
FIELDS = [
    "ticker",
    "price_at_alert",
    "mcap_at_alert",
    "chat_id",
    "message_id",
    "caller_id",
    "source",
    "forwarded",
    "pool",
]
PROVENANCE = ("source_file", "source_row", "raw")  # optional columns of an in-memory table (not data)
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
MCAP_MILLIONS_BELOW = 1000.0
FUTURE_TOLERANCE_MS = 5 * 60 * 1000  # clock skew allowed before an alert time counts as in the future
FUTURE = "ts in the future"
ALERT_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")
ALERT_COLUMNS = [
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


def derive_alert_id(caller: str, chain: str, token: str, ts_ms: int) -> str:
    """Stable id of an alert without one: ``sha1(caller|chain|token|ts_ms)[:16]``."""
    return hashlib.sha1(f"{caller}|{chain}|{token}|{int(ts_ms)}".encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# reading


@dataclass
class _Read:
    """One alert file as read: its rows (text for CSV), their line numbers, malformed lines, details."""

    frame: pd.DataFrame
    lines: np.ndarray
    bad_lines: list = field(default_factory=list)  # csvread.BadLine, plus invalid-UTF-8 rows
    details: dict = field(default_factory=dict)


def _read_table(path: Path) -> _Read:
    """CSV (delimiter detected, malformed lines set aside, see :mod:`alertlab.ingest.csvread`) or Parquet."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            df = pq.read_table(path).to_pandas()
        except (pa.ArrowInvalid, OSError) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
        out = _Read(df, np.arange(len(df), dtype=np.int64) + 2)
    else:
        info, batches = read_text_table(
            path, [a for names in ALIASES.values() for a in names], multiline=True
        )
        frames, lines, bad = [], [], []
        for b in batches:
            keep = np.ones(b.table.num_rows, bool)
            if len(b.bad_utf8):
                keep[b.bad_utf8] = False
                bad += [BadLine(int(b.lines[k]), "invalid UTF-8 text", "") for k in b.bad_utf8]
                frames.append(b.table.take(pa.array(np.flatnonzero(keep))).to_pandas())
            else:
                frames.append(b.table.to_pandas())
            lines.append(b.lines[keep])
        df = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame({h: pd.Series(dtype=object) for h in info.header})
        )
        out = _Read(
            df,
            np.concatenate(lines) if lines else np.empty(0, np.int64),
            sorted(info.bad_lines + bad, key=lambda b: b.line),
            {"delimiter": info.delimiter_name},
        )
        if info.blank_lines:
            out.details["blank_lines"] = info.blank_lines
    out.frame.columns = [str(c).strip().lower() for c in out.frame.columns]
    return out


def _as_text(s: pd.Series) -> pd.Series:
    """Column → trimmed text with NA for empty; integer-valued floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(s.dtype):
        out = pd.Series(pd.NA, index=s.index, dtype="string")
        good = s.notna() & np.isfinite(s.to_numpy(np.float64, na_value=np.nan))
        vals = s[good]
        whole = (vals == np.floor(vals)) & (vals.abs() < 2**53)
        out[good & whole.reindex(s.index, fill_value=False)] = vals[whole].astype(np.int64).astype(str)
        out[good & ~whole.reindex(s.index, fill_value=False)] = vals[~whole].astype(str)
        return out
    t = s.astype("string").str.strip()
    return t.mask(t == "")


def _coalesce(df: pd.DataFrame, names: tuple[str, ...]) -> pd.Series | None:
    present = [n for n in names if n in df.columns]
    if not present:
        return None
    out = _as_text(df[present[0]])
    for n in present[1:]:
        out = out.fillna(_as_text(df[n]))
    return out


def _coalesce_time(df: pd.DataFrame, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """First non-empty alias per row decides the time (an unparsable one is not masked by a later one)."""
    present = [n for n in names if n in df.columns]
    ms, err = to_epoch_ms(df[present[0]].reset_index(drop=True))
    for n in present[1:]:
        m2, e2 = to_epoch_ms(df[n].reset_index(drop=True))
        take = (err == EMPTY) & (e2 != EMPTY)
        ms = np.where(take, m2, ms)
        err = np.where(take, e2, err).astype(np.int8)
    return ms, err


def _canonical_frame(
    raw: pd.DataFrame, file_idx: np.ndarray, rows: np.ndarray, what: str, has: str = "the header has"
) -> tuple[pd.DataFrame, dict]:
    """Raw columns (lower-cased names) → canonical columns + ts_ms/ts_err + file_idx/row/pos, and what was used.

    Missing required columns raise :class:`UserError` naming ``what``.
    """
    missing = [c for c in REQUIRED if not any(a in raw.columns for a in ALIASES[c])]
    if missing:
        need = "; ".join(f"{c} (any of {', '.join(ALIASES[c])})" for c in missing)
        raise UserError(
            f"{what}: missing required column(s): {need}; {has} "
            f"{', '.join(map(str, raw.columns)) or 'nothing'}"
        )
    n = len(raw)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    used = {}
    for canon, names in ALIASES.items():
        if canon == "ts":
            continue
        col = _coalesce(raw, names)
        out[canon] = (
            col.reset_index(drop=True)
            if col is not None
            else pd.Series(pd.NA, index=out.index, dtype="string")
        )
        used[canon] = [a for a in names if a in raw.columns]
    out["ts_ms"], out["ts_err"] = _coalesce_time(raw, ALIASES["ts"])
    used["ts"] = [a for a in ALIASES["ts"] if a in raw.columns]
    out["file_idx"] = np.asarray(file_idx, dtype=np.int64)
    out["row"] = np.asarray(rows, dtype=np.int64)
    out["pos"] = np.arange(n, dtype=np.int64)  # position in the raw frame
    mapped = {a for names in used.values() for a in names} | set(PROVENANCE)
    details = {
        "columns_used": {k: v for k, v in used.items() if v},
        "columns_ignored": [c for c in raw.columns if c not in mapped],
    }
    return out, details


def _read_alert_file(path: Path, file_idx: int) -> tuple[pd.DataFrame, dict, pd.DataFrame, list]:
    """One file → (canonical columns + ts_ms/ts_err + provenance, ingest-log details, the raw frame,
    malformed lines). Whole-file problems raise :class:`UserError`."""
    read = _read_table(path)
    raw = read.frame
    n = len(raw)
    out, details = _canonical_frame(raw, np.full(n, file_idx), read.lines, str(path))
    if not n and not read.bad_lines:
        raise UserError(f"{path}: no data rows (header only); remove it or export it again")
    out["source"] = out["source"].fillna(path.name)
    details.update(read.details)
    return out, details, raw, read.bad_lines


# ---------------------------------------------------------------------------------------------
# normalisation


def _evm_chains_from_store(con, tokens: list[str]) -> dict[str, list[str]]:
    if not tokens:
        return {}
    df = pd.DataFrame({"token": tokens})
    con.register("_evm_tokens", df)
    try:
        rows = con.execute(
            "SELECT q.token, list(DISTINCT q.chain ORDER BY q.chain) FROM candle_quality q "
            "JOIN _evm_tokens t ON q.token = t.token GROUP BY q.token"
        ).fetchall()
    finally:
        con.unregister("_evm_tokens")
    return {t: list(c) for t, c in rows}


def _add_reason(reasons: np.ndarray, mask: np.ndarray, text: str | np.ndarray) -> None:
    """Append ``text`` to ``reasons[mask]`` (object array of ''-or-'a; b')."""
    idx = np.flatnonzero(mask)
    for i in idx:
        t = text if isinstance(text, str) else text[i]
        reasons[i] = t if not reasons[i] else f"{reasons[i]}; {t}"


def _normalise(df: pd.DataFrame, con) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Normalise in place; returns the frame, per-row reasons ('' = ok) and nulled-field counts."""
    n = len(df)
    reasons = np.full(n, "", dtype=object)
    _add_reason(reasons, df["caller"].isna().to_numpy(bool), "empty caller")
    bad_ts = df["ts_err"].to_numpy() != OK
    for code in np.unique(df["ts_err"].to_numpy()[bad_ts]):
        _add_reason(reasons, df["ts_err"].to_numpy() == code, reason_of(code))
    now_ms = int(time.time() * 1000)
    _add_reason(reasons, ~bad_ts & (df["ts_ms"].to_numpy(np.int64) > now_ms + FUTURE_TOLERANCE_MS), FUTURE)

    # chain: canonical spelling, else inferred from the address
    token = df["token"]
    chain_raw = df["chain"]
    uniq_chain = {v: ch.normalize_chain(v) for v in chain_raw.dropna().unique()}
    chain = chain_raw.map(uniq_chain).astype(object)
    chain = chain.where(chain.notna(), None)
    no_token = token.isna().to_numpy(bool)
    _add_reason(reasons, no_token, "empty token address")
    need = chain.isna().to_numpy(bool) & ~no_token
    if need.any():
        _add_reason(reasons, *_infer_chains(con, chain, token, need))
    _normalise_addresses(df, chain, token, ~no_token, reasons)
    nulled = _optional_fields(df)
    return df, reasons, {k: v for k, v in nulled.items() if v}


def _infer_chains(con, chain: pd.Series, token: pd.Series, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``chain`` (in place) from the address where the row's chain is empty; an EVM address
    takes the one chain the candle store knows it on. Returns (rows left without a chain, why)."""
    inferred = {t: ch.infer_chain(t) for t in token[need].unique()}
    evm = sorted({t.lower() for t, c in inferred.items() if c == ch.EVM})
    known = _evm_chains_from_store(con, evm)
    why = np.full(len(chain), "", dtype=object)
    for i in np.flatnonzero(need):
        t = token.iat[i]
        c = inferred[t]
        if c == ch.EVM:
            found = known.get(t.lower(), [])
            if len(found) == 1:
                chain.iat[i] = found[0]
            elif not found:
                why[i] = "chain empty and EVM address unknown to the candle store (cannot tell the chain)"
            else:
                why[i] = (
                    f"chain empty and EVM address on several chains in the candle store ({', '.join(found)})"
                )
        elif c is None:
            why[i] = "chain empty and address not recognisable (not Solana, Tron or EVM)"
        else:
            chain.iat[i] = c
    return why != "", why


def _normalise_addresses(
    df: pd.DataFrame, chain: pd.Series, token: pd.Series, with_token: np.ndarray, reasons: np.ndarray
) -> None:
    """Validate chain names and addresses (once per distinct pair), correct a chain the address
    contradicts, and write ``chain``, ``token`` and ``chain_corrected`` into ``df``."""
    n = len(df)
    has = chain.notna().to_numpy(bool) & with_token
    pairs = pd.DataFrame({"chain": chain[has], "token": token[has]}).drop_duplicates()
    norm, why, fixed = {}, {}, {}
    for c, t in zip(pairs["chain"], pairs["token"], strict=True):
        if not ch.is_valid_chain_name(c):
            norm[(c, t)], why[(c, t)] = t, f"invalid chain name {c[:40]!r}"
            continue
        alt = ch.correct_chain(c, t)  # e.g. a Solana mint labelled bsc: the address settles the chain
        if alt is not None:
            fixed[(c, t)] = alt
        c2 = alt if alt is not None else c
        nt = ch.normalize_token(c2, t)
        norm[(c, t)], why[(c, t)] = nt, ch.validate_address(c2, nt) or ""
    tok_out = token.astype(object).copy()
    addr_reason = np.full(n, "", dtype=object)
    corrected = np.zeros(n, bool)
    for i in np.flatnonzero(has):
        k = (chain.iat[i], token.iat[i])
        tok_out.iat[i] = norm[k]
        addr_reason[i] = why[k]
        if k in fixed:
            chain.iat[i] = fixed[k]
            corrected[i] = True
    _add_reason(reasons, addr_reason != "", addr_reason)
    df["chain"] = chain
    df["token"] = tok_out
    df["chain_corrected"] = corrected


def _optional_fields(df: pd.DataFrame) -> dict[str, int]:
    """Parse price, market cap and the forwarded flag in place; a value that does not parse is
    nulled (the row is kept). Returns the nulled count per field."""
    nulled = {}
    for col in ("price_at_alert", "mcap_at_alert"):
        txt = df[col]
        val = pd.to_numeric(txt, errors="coerce").astype(np.float64)
        bad = txt.notna() & ~(np.isfinite(val) & (val > 0))
        nulled[col] = int(bad.sum())
        val = val.where(~bad)
        if col == "mcap_at_alert":
            val = val.where(~(val < MCAP_MILLIONS_BELOW), val * 1e6)
        df[col] = val
    fw = df["forwarded"].str.lower()
    fw_val = pd.Series(pd.NA, index=df.index, dtype="boolean")
    fw_val[fw.isin(TRUE_WORDS).fillna(False).to_numpy(bool)] = True
    fw_val[fw.isin(FALSE_WORDS).fillna(False).to_numpy(bool)] = False
    bad_fw = int((fw.notna() & fw_val.isna()).sum())
    if bad_fw:
        nulled["forwarded"] = bad_fw
    df["forwarded"] = fw_val
    return nulled


# ---------------------------------------------------------------------------------------------
# ingest


def ingest_alerts(home: Home, paths: Sequence[str | Path], progress: bool = False) -> IngestReport:
    """Ingest alert files into the catalog (see the module docstring for every rule).

    A file that cannot be read at all (empty, header only, binary, missing columns) is skipped
    and reported in ``files_rejected`` while the other files are ingested; if no file can be
    read that is a :class:`UserError`. Runs under the workspace writer lock.
    """
    files = collect_files(paths, ALERT_SUFFIXES, "alert")
    if not files:
        raise UserError(
            f"no alert files ({', '.join(ALERT_SUFFIXES)}) in {', '.join(str(p) for p in paths)}: "
            "point at the files or the directory that holds them"
        )
    with workspace_lock(home, "ingest alerts"):
        return _ingest_alerts(home, files, progress)


def _ingest_alerts(home: Home, files: list[Path], progress: bool) -> IngestReport:
    from alertlab.ingest import recovery

    ingest_id = uuid.uuid4().hex
    begun = recovery.begin(home, ingest_id, "alerts", files)  # logged as running before anything is written
    frames, details, hashes, bad_lines = [], [], [], []
    raws: list[pd.DataFrame | None] = []
    file_errors: dict[int, str] = {}
    with bar("ingest alerts", total=len(files), enabled=progress) as pb:
        for i, f in enumerate(files):
            hashes.append(file_sha256(f))
            try:
                df, det, raw, bad = _read_alert_file(f, i)
            except UserError as exc:
                file_errors[i] = str(exc)
                raws.append(None)
                details.append({"error": str(exc)})
                pb.advance()
                continue
            frames.append(df)
            raws.append(raw)
            details.append(det)
            bad_lines += [(i, b) for b in bad]
            pb.advance()
    if len(file_errors) == len(files):
        recovery.abandon(home, ingest_id, begun)  # nothing was written
        first = next(iter(file_errors.values()))
        raise UserError(
            first
            if len(files) == 1
            else f"none of the {len(files)} alert files could be read; first: {first}"
        )
    df = pd.concat(frames, ignore_index=True) if frames else _empty_frame()

    def raw_json(file_idx: np.ndarray, pos: np.ndarray) -> list[str]:
        return [
            json.dumps({k: (None if pd.isna(v) else v) for k, v in raws[fi].iloc[p].items()}, default=str)
            for fi, p in zip(file_idx, pos, strict=True)
        ]

    # lines that were not records at all (malformed CSV lines, invalid UTF-8): read and rejected
    pre = pd.DataFrame(
        {
            "file_idx": np.asarray([fi for fi, _ in bad_lines], np.int64),
            "source_row": np.asarray([b.line for _, b in bad_lines], np.int64),
            "reason": [b.reason for _, b in bad_lines],
            "raw": [json.dumps({"line": b.text}) for _, b in bad_lines],
        }
    )
    return _commit(
        home,
        ingest_id,
        df,
        [str(f) for f in files],
        hashes,
        details,
        raw_json,
        pre_rejects=pre,
        file_errors=file_errors,
    )


def _empty_frame() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="string") for c in ALIASES if c != "ts"})
    df["ts_ms"], df["ts_err"] = np.zeros(0, np.int64), np.zeros(0, np.int8)
    df["file_idx"], df["row"], df["pos"] = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return df


def _content_key(rows: pd.DataFrame, pre: pd.DataFrame) -> str:
    """SHA-256 of in-memory rows (and producer rejects) of one source: their reject key without a file hash."""
    h = hashlib.sha256()
    h.update(rows.to_json(orient="split", index=False, default_handler=str).encode())
    h.update(pre.to_json(orient="split", index=False, default_handler=str).encode())
    return h.hexdigest()


def ingest_alert_table(
    home: Home,
    table: pd.DataFrame | pa.Table,
    source: str,
    *,
    rejects: pd.DataFrame | None = None,
    files: Sequence[str] | None = None,
    file_hashes: dict[str, str] | None = None,
    file_details: dict[str, dict] | None = None,
    kind: str = "alerts",
) -> IngestReport:
    """Ingest an in-memory alerts table with exactly the rules of :func:`ingest_alerts`.

    ``table`` has the same (alias) columns as an alert file; optional provenance columns:
    ``source_file`` (default ``source``), ``source_row`` (default the 1-based row number) and
    ``raw`` (JSON text kept with a rejected row; default the row itself). ``source`` also fills
    an empty ``source`` column. ``rejects`` holds rows the producer already quarantined
    (``source_file``, ``source_row``, ``reason``, ``raw``): they are written in the same
    transaction and counted as read and rejected. ``file_hashes``/``file_details`` go to the
    ``ingest_log`` rows (one per source file, plus one per name in ``files``); ``kind`` labels
    the ``ingest_log``/``rejects`` rows. Rejects are keyed like a file's: by ``file_hashes[name]``
    (the hash of the file the rows came from), else by the SHA-256 of that source's rows and
    producer rejects, so ingesting the same table again replaces its rejects. Runs under the
    workspace writer lock and is logged as running until it commits (interrupted-ingest recovery).
    """
    from alertlab.ingest import recovery

    raw = table.to_pandas() if isinstance(table, pa.Table) else table.copy()
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    raw = raw.reset_index(drop=True)
    n = len(raw)
    pre = (
        rejects
        if rejects is not None
        else pd.DataFrame(columns=["source_file", "source_row", "reason", "raw"])
    )
    pre = pre.reset_index(drop=True)
    src_col = (
        raw["source_file"].astype(str)
        if "source_file" in raw.columns
        else pd.Series([source] * n, dtype=object)
    )
    pre_src = pre["source_file"].astype(str)
    named = [*(files or []), *src_col.tolist(), *pre_src.tolist()]
    files = list(dict.fromkeys(named)) or [source]
    index = {f: i for i, f in enumerate(files)}
    file_idx = src_col.map(index).to_numpy(np.int64) if n else np.zeros(0, np.int64)
    rows = (
        pd.to_numeric(raw["source_row"]).to_numpy(np.int64)
        if "source_row" in raw.columns
        else np.arange(n, dtype=np.int64) + 1
    )
    if n:
        df, det = _canonical_frame(raw, file_idx, rows, source, has="the table has")
    else:
        df, det = _empty_frame(), {}
    df["source"] = df["source"].fillna(source)
    details = [dict(det, **((file_details or {}).get(f, {}))) for f in files]
    data_cols = [c for c in raw.columns if c != "source_file"]
    hashes = [
        (file_hashes or {}).get(f)
        or _content_key(
            raw.loc[(src_col == f).to_numpy(bool), data_cols], pre.loc[(pre_src == f).to_numpy(bool)]
        )
        for f in files
    ]

    def raw_json(_file_idx: np.ndarray, pos: np.ndarray) -> list[str]:
        if "raw" in raw.columns:
            return [str(v) for v in raw["raw"].to_numpy()[pos]]
        keep = [c for c in raw.columns if c not in PROVENANCE]
        return [
            json.dumps(
                {k: (None if pd.isna(v) else v) for k, v in raw.iloc[int(p)][keep].items()}, default=str
            )
            for p in pos
        ]

    pre_df = pd.DataFrame(
        {
            "file_idx": pre_src.map(index).to_numpy(np.int64),
            "source_row": pd.to_numeric(pre["source_row"]).to_numpy(np.int64),
            "reason": pre["reason"].astype(str).to_numpy(),
            "raw": pre["raw"].astype(str).to_numpy() if "raw" in pre.columns else "{}",
        }
    )
    with workspace_lock(home, f"ingest {kind}"):
        ingest_id = uuid.uuid4().hex
        recovery.begin(home, ingest_id, kind, files)  # logged as running before anything is written
        return _commit(home, ingest_id, df, files, hashes, details, raw_json, pre_rejects=pre_df, kind=kind)


def _commit(
    home: Home,
    ingest_id: str,
    df: pd.DataFrame,
    files: list[str],
    hashes: list[str],
    details: list[dict],
    raw_json: Callable[[np.ndarray, np.ndarray], list[str]],
    pre_rejects: pd.DataFrame | None = None,
    file_errors: dict[int, str] | None = None,
    kind: str = "alerts",
) -> IngestReport:
    """Normalise, validate, dedup and write one ingest (canonical frame + provenance) in one transaction.

    ``raw_json(file_idx, pos)`` gives the raw text of rejected rows; ``pre_rejects`` (file_idx,
    source_row, reason, raw) are rows rejected before normalisation (counted as read and rejected);
    ``file_errors`` are files not ingested at all (file-level rejects, no row, not counted as rows).
    """
    file_errors = file_errors or {}
    if pre_rejects is None:
        pre_rejects = pd.DataFrame({"file_idx": [], "source_row": [], "reason": [], "raw": []})
    con = home.connect()
    try:
        df, reasons, nulled = _normalise(df, con) if len(df) else (df, np.empty(0, object), {})
        ok = reasons == ""
        good = df[ok].copy()
        good["ts_ms"] = good["ts_ms"].astype(np.int64)

        # merge duplicates within this ingest: first non-null per column, in input order
        good["_derived"] = [
            derive_alert_id(a, b, c, d)
            for a, b, c, d in zip(good["caller"], good["chain"], good["token"], good["ts_ms"], strict=True)
        ]
        good["_gid"] = good.groupby(KEY, sort=False).ngroup()
        agg_cols = ["alert_id", *FIELDS, "file_idx", "row", "_derived"]
        merged = good.groupby("_gid", sort=True)[agg_cols].first()
        keys = good.groupby("_gid", sort=True)[KEY].first()
        merged = keys.join(merged)
        merged["alert_id"] = merged["alert_id"].fillna(merged["_derived"]).astype(str)
        field_conflicts = {c: int((good.groupby("_gid")[c].nunique() > 1).sum()) for c in FIELDS if len(good)}

        # an input alert_id may not name two different alerts (here or in the store)
        id_reject_gids: set[int] = set()
        dup_id = merged.duplicated("alert_id", keep="first")
        id_reject_gids |= set(merged.index[dup_id])
        if len(merged):
            con.register("_new", merged.reset_index()[["_gid", "alert_id", *KEY]])
            try:
                store = (
                    con.execute(
                        "SELECT n._gid, a.alert_id AS store_id, "
                        "(SELECT any_value(b.alert_id) FROM alerts b WHERE b.alert_id = n.alert_id AND NOT "
                        " (b.caller = n.caller AND b.chain = n.chain AND b.token = n.token AND b.ts_ms = n.ts_ms)) AS clash "
                        "FROM _new n LEFT JOIN alerts a "
                        "ON a.caller = n.caller AND a.chain = n.chain AND a.token = n.token AND a.ts_ms = n.ts_ms"
                    )
                    .df()
                    .set_index("_gid")
                    .reindex(merged.index)
                )
            finally:
                con.unregister("_new")
            in_store = store["store_id"].notna()
            id_reject_gids |= set(merged.index[~in_store & store["clash"].notna()])
        else:
            in_store = pd.Series(False, index=merged.index)
            store = pd.DataFrame({"store_id": pd.Series(dtype=object)}, index=merged.index)
        if id_reject_gids:
            rej_rows = good.index[good["_gid"].isin(id_reject_gids).to_numpy()]
            pos = df.index.get_indexer(rej_rows)
            reasons[pos] = "alert_id already used by a different alert"
        new = merged[~in_store & ~merged.index.isin(list(id_reject_gids))]
        existing = merged[in_store & ~merged.index.isin(list(id_reject_gids))].copy()
        existing["alert_id"] = store.loc[existing.index, "store_id"].astype(str)

        rej = np.flatnonzero(reasons != "")
        chain_corrected = int(df["chain_corrected"].to_numpy(bool)[reasons == ""].sum()) if len(df) else 0
        rej_df = pd.concat(
            [
                pd.DataFrame(
                    {
                        "file_idx": df["file_idx"].to_numpy(np.int64)[rej],
                        "source_row": df["row"].to_numpy()[rej].astype(np.int64),
                        "reason": reasons[rej].astype(str),
                        "raw": raw_json(
                            df["file_idx"].to_numpy(np.int64)[rej], df["pos"].to_numpy(np.int64)[rej]
                        )
                        if len(rej)
                        else [],
                    }
                ),
                pre_rejects,
            ],
            ignore_index=True,
        )
        rej_df["file_idx"] = rej_df["file_idx"].astype(np.int64)
        rej_df["source_row"] = rej_df["source_row"].astype(np.int64)
        rej_df = rej_df.iloc[np.lexsort((rej_df["source_row"].to_numpy(), rej_df["file_idx"].to_numpy()))]
        rows_rej = rej_df.reset_index(drop=True)  # row-level rejects, in (file, row) order
        n_rej = np.bincount(rows_rej["file_idx"].to_numpy(np.int64), minlength=len(files))
        n_pre = np.bincount(pre_rejects["file_idx"].to_numpy(np.int64), minlength=len(files))
        n_read = np.bincount(df["file_idx"].to_numpy(np.int64), minlength=len(files)) + n_pre
        file_rej = pd.DataFrame(
            {  # files not ingested at all: one reject each, without a row
                "file_idx": np.asarray(sorted(file_errors), np.int64),
                "source_row": pd.array([pd.NA] * len(file_errors), "Int64"),
                "reason": [
                    "file not ingested: " + file_errors[i].removeprefix(f"{files[i]}: ")
                    for i in sorted(file_errors)
                ],
                "raw": [None] * len(file_errors),
            }
        )
        rej_df = pd.concat([rows_rej.astype({"source_row": "Int64"}), file_rej], ignore_index=True)
        rej_df.insert(0, "source_file", [files[i] for i in rej_df["file_idx"]])
        rej_df["file_sha256"] = [hashes[i] for i in rej_df["file_idx"]]
        rows_rej.insert(0, "source_file", [files[i] for i in rows_rej["file_idx"]])
        new_rows = new.assign(
            source_file=[str(files[i]) for i in new["file_idx"]], source_row=new["row"].astype(np.int64)
        )
        n_new = np.bincount(new["file_idx"].to_numpy(np.int64), minlength=len(files))

        con.begin()
        try:
            if len(new_rows):
                con.register("_ins", new_rows[["alert_id", *KEY, *FIELDS, "source_file", "source_row"]])
                con.execute(
                    f"INSERT INTO alerts (alert_id, {', '.join(KEY + FIELDS)}, source_file, source_row) "
                    f"SELECT alert_id, {', '.join(KEY + FIELDS)}, source_file, source_row FROM _ins"
                ).fetchall()
                con.unregister("_ins")
            enriched = 0
            if len(existing):
                con.register("_upd", existing[["alert_id", *FIELDS]])
                enriched = con.execute(
                    "SELECT count(*) FROM alerts a JOIN _upd u USING (alert_id) WHERE "
                    + " OR ".join(f"(a.{c} IS NULL AND u.{c} IS NOT NULL)" for c in FIELDS)
                ).fetchall()[0][0]
                if enriched:
                    con.execute(
                        "UPDATE alerts SET "
                        + ", ".join(f"{c} = coalesce(alerts.{c}, u.{c})" for c in FIELDS)
                        + " FROM _upd u WHERE alerts.alert_id = u.alert_id AND ("
                        + " OR ".join(f"(alerts.{c} IS NULL AND u.{c} IS NOT NULL)" for c in FIELDS)
                        + ")"
                    ).fetchall()
                con.unregister("_upd")
            # rejects are keyed by (file content, row): this ingest's verdict replaces an earlier one
            con.execute(
                "DELETE FROM rejects WHERE kind = ? AND list_contains(?, file_sha256)", [kind, hashes]
            ).fetchall()
            if len(rej_df):
                con.register("_rej", rej_df.drop(columns="file_idx"))
                con.execute(
                    "INSERT INTO rejects (ingest_id, kind, source_file, source_row, reason, raw, file_sha256) "
                    "SELECT ?, ?, r.source_file, r.source_row, r.reason, r.raw::JSON, r.file_sha256 FROM _rej r "
                    "WHERE NOT EXISTS (SELECT 1 FROM rejects q WHERE q.kind = ? AND q.source_file = r.source_file "
                    "AND q.source_row IS NOT DISTINCT FROM r.source_row AND q.reason = r.reason) "
                    "ORDER BY r.source_file, r.source_row",  # a reject stored under another hash is not copied
                    [ingest_id, kind, kind],
                ).fetchall()
                con.unregister("_rej")
            con.execute(
                "DELETE FROM ingest_log WHERE ingest_id = ? AND status = 'running'", [ingest_id]
            ).fetchall()
            for i, f in enumerate(files):
                accepted = int(n_read[i] - n_rej[i])
                det = dict(details[i])
                if i == 0:
                    det.update(
                        nulled_fields=nulled,
                        field_conflicts={k: v for k, v in field_conflicts.items() if v},
                        alerts_enriched=int(enriched),
                        chain_corrected=chain_corrected,
                        files_in_ingest=len(files),
                    )
                con.execute(
                    "INSERT INTO ingest_log (ingest_id, kind, source_file, file_sha256, rows_read, rows_accepted, "
                    "rows_rejected, rows_duplicate, rows_new, details, status, pid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        ingest_id,
                        kind,
                        str(f),
                        hashes[i],
                        int(n_read[i]),
                        accepted,
                        int(n_rej[i]),
                        accepted - int(n_new[i]),
                        int(n_new[i]),
                        json.dumps(det),
                        "rejected" if i in file_errors else "complete",
                        os.getpid(),
                    ],
                ).fetchall()
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.close()

    rows_read = int(n_read.sum())
    rows_rejected = int(n_rej.sum())
    reason_counts = rows_rej["reason"].value_counts() if rows_rejected else pd.Series(dtype=int)
    sample = [
        {"file": f, "row": int(r), "reason": why}
        for f, r, why in rows_rej[["source_file", "source_row", "reason"]]
        .head(SAMPLE_SIZE)
        .itertuples(index=False)
    ]
    return IngestReport(
        kind=kind,
        files=list(files),
        rows_read=rows_read,
        rows_accepted=rows_read - rows_rejected,
        rows_new=int(len(new)),
        rows_duplicate=rows_read - rows_rejected - int(len(new)),
        rows_rejected=rows_rejected,
        reject_reasons={str(k): int(v) for k, v in reason_counts.items()},
        rejects_sample=sample,
        files_rejected=[{"file": str(files[i]), "reason": m} for i, m in sorted(file_errors.items())],
        chain_corrected=chain_corrected,
    )


def load_alerts(home: Home) -> pd.DataFrame:
    """All stored alerts, sorted by (ts_ms, alert_id), with ``is_first_call``.

    ``is_first_call`` marks the earliest alert of each (chain, token) across callers, ties broken
    by ``alert_id``: exactly one per token.
    """
    con = home.connect(read_only=True)
    try:
        df = con.execute(
            "SELECT alert_id, caller, chain, token, ts_ms, ticker, price_at_alert, mcap_at_alert, chat_id, "
            "message_id, row_number() OVER (PARTITION BY chain, token ORDER BY ts_ms, alert_id) = 1 AS is_first_call "
            "FROM alerts ORDER BY ts_ms, alert_id"
        ).df()
    finally:
        con.close()
    df["ts_ms"] = df["ts_ms"].astype(np.int64)
    df["is_first_call"] = df["is_first_call"].astype(bool)
    for c in ("price_at_alert", "mcap_at_alert"):
        df[c] = df[c].astype(np.float64)
    return df[ALERT_COLUMNS]


LIST_COLUMNS = [
    "alert_id",
    "caller",
    "caller_id",
    "chain",
    "token",
    "ts_ms",
    "ticker",
    "price_at_alert",
    "mcap_at_alert",
    "chat_id",
    "message_id",
    "source",
    "forwarded",
    "pool",
    "is_first_call",
    "source_file",
    "source_row",
]


def list_alerts(
    home: Home,
    callers: Sequence[str] | None = None,
    chains: Sequence[str] | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
) -> pd.DataFrame:
    """Stored alerts with every catalog column (:data:`LIST_COLUMNS`), sorted by (ts_ms, alert_id).

    Filters: callers (case-insensitive), chains (any spelling, canonicalised), UTC dates
    ``YYYY-MM-DD`` inclusive. ``is_first_call`` is computed over all stored alerts, not the filtered ones.
    """
    where: list[str] = []
    args: list[list[str] | str] = []
    if callers:
        where.append("lower(caller) IN (SELECT unnest(?))")
        args.append([c.strip().lower() for c in callers])
    if chains:
        where.append("chain IN (SELECT unnest(?))")
        args.append([ch.normalize_chain(c) or c for c in chains])
    if date_from:
        where.append("ts_ms >= epoch_ms(?::DATE::TIMESTAMP)")
        args.append(str(date_from))
    if date_to:
        where.append("ts_ms < epoch_ms(?::DATE::TIMESTAMP + INTERVAL 1 DAY)")
        args.append(str(date_to))
    con = home.connect()
    try:
        df = con.execute(
            "SELECT * FROM (SELECT alert_id, caller, caller_id, chain, token, ts_ms, ticker, price_at_alert, "
            "mcap_at_alert, chat_id, message_id, source, forwarded, pool, row_number() OVER "
            "(PARTITION BY chain, token ORDER BY ts_ms, alert_id) = 1 AS is_first_call, source_file, source_row "
            "FROM alerts) " + (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY ts_ms, alert_id",
            args,
        ).df()
    finally:
        con.close()
    return df[LIST_COLUMNS]


def count_alerts(home: Home) -> int:
    """Number of stored alerts."""
    con = home.connect()
    try:
        row = con.execute("SELECT count(*) FROM alerts").fetchone()
        assert row is not None  # count(*) always returns one row
        return int(row[0])
    finally:
        con.close()
