"""Ingest accounting and candle-series quality.

* :class:`IngestReport`: what one ``ingest alerts`` / ``ingest candles`` call did.
* :func:`series_quality`: per (token, interval) series, the bar count, span, gaps, missing bars and
  zero-volume share (Numba kernel over a sorted flat array with group offsets).
* :func:`quality_table`: the ``candle_quality`` catalog table, optionally filtered.
* :func:`token_quality`: per token over all its intervals at once: intervals present with their
  time ranges, gaps incl. the holes at interval switches, no-trade share, suspect (bad-tick) bars.

Quality definitions (per series of one token at one bar interval ``I``, distinct sorted ``ts``):
``n_gaps`` = number of consecutive bar pairs with ``ts[k+1] - ts[k] > I``; ``missing_bars`` = sum
over those pairs of ``ceil((ts[k+1] - ts[k]) / I) - 1`` (the bar slots strictly between them);
``zero_volume_share`` = share of bars with ``volume == 0``. ``n_conflicts`` = number of distinct
bars (ts) of the series for which a conflicting version was ever superseded; ``n_rejected`` =
number of distinct quarantined source rows (file, row) attributed to the series. Both are computed
from the ``rejects`` table, so re-ingesting the same file does not inflate them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from alertlab.store import Home

SAMPLE_SIZE = 20
SUPERSEDED = "superseded: conflicting version of the bar lost (smaller volume, or earlier ingest/file/row)"


@dataclass
class IngestReport:
    """Outcome of one ingest call. ``rows_accepted = rows_read - rows_rejected = rows_new + rows_duplicate``.

    ``reject_reasons`` counts quarantined rows by reason; ``rejects_sample`` holds up to 20 of them
    as ``{file, row, reason}``. Candles only: ``conflicts`` = bars for which differing versions met
    (the loser is logged in ``rejects`` with reason :data:`SUPERSEDED` but is not counted as
    rejected), ``quality`` = the ``candle_quality`` rows of the series this ingest touched.
    ``files_rejected``: files that could not be read at all (``{file, reason}``; the other files
    were ingested). Alerts only: ``chain_corrected`` = rows whose labelled EVM chain was replaced
    by ``solana`` because the address is unambiguously a Solana mint.
    """

    kind: str
    files: list[str]
    rows_read: int
    rows_accepted: int
    rows_new: int
    rows_duplicate: int
    rows_rejected: int
    reject_reasons: dict[str, int]
    rejects_sample: list[dict]
    conflicts: int = 0
    quality: list[dict] = field(default_factory=list)
    files_rejected: list[dict] = field(default_factory=list)
    chain_corrected: int = 0

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@numba.njit(cache=True, nogil=True)
def _series_quality_kernel(ts, volume, offsets, interval):
    n_groups = offsets.shape[0] - 1
    n_bars = np.zeros(n_groups, np.int64)
    first = np.zeros(n_groups, np.int64)
    last = np.zeros(n_groups, np.int64)
    n_gaps = np.zeros(n_groups, np.int64)
    missing = np.zeros(n_groups, np.int64)
    zero = np.zeros(n_groups, np.int64)
    for g in range(n_groups):
        s, e = offsets[g], offsets[g + 1]
        step = interval[g]
        n_bars[g] = e - s
        if e > s:
            first[g] = ts[s]
            last[g] = ts[e - 1]
        for k in range(s, e):
            if volume[k] == 0.0:
                zero[g] += 1
            if k + 1 < e:
                d = ts[k + 1] - ts[k]
                if d > step:
                    n_gaps[g] += 1
                    missing[g] += (d + step - 1) // step - 1
    return n_bars, first, last, n_gaps, missing, zero


def series_quality(ts: np.ndarray, volume: np.ndarray, offsets: np.ndarray, interval: np.ndarray) -> dict:
    """Quality of each group ``ts[offsets[g]:offsets[g+1]]`` (distinct, sorted) at ``interval[g]``.

    Returns arrays ``n_bars, first_ts, last_ts, n_gaps, missing_bars, zero_volume_share`` (one per group).
    """
    n_bars, first, last, n_gaps, missing, zero = _series_quality_kernel(
        np.ascontiguousarray(ts, np.int64),
        np.ascontiguousarray(volume, np.float64),
        np.ascontiguousarray(offsets, np.int64),
        np.ascontiguousarray(interval, np.int64),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_bars > 0, zero / np.maximum(n_bars, 1), np.nan)
    return {
        "n_bars": n_bars,
        "first_ts": first,
        "last_ts": last,
        "n_gaps": n_gaps,
        "missing_bars": missing,
        "zero_volume_share": share,
    }


QUALITY_COLUMNS = [
    "chain",
    "token",
    "interval_s",
    "n_bars",
    "first_ts",
    "last_ts",
    "n_gaps",
    "missing_bars",
    "zero_volume_share",
    "n_conflicts",
    "n_rejected",
    "updated_at",
]


def quality_table(home: Home, chain: str | None = None, token: str | None = None) -> pd.DataFrame:
    """The ``candle_quality`` table (one row per chain, token, bar interval), optionally filtered.

    ``chain`` accepts any spelling (``SOL``, ``BNB`` …); an EVM ``token`` is matched case-insensitively.
    """
    from alertlab.ingest.chains import is_evm_address, normalize_chain, normalize_token

    where, params = [], []
    c = normalize_chain(chain) if chain is not None else None
    if c is not None:
        where.append("chain = ?")
        params.append(c)
    if token is not None and token.strip():
        t = token.strip()
        t = normalize_token(c, t) if c is not None else (t.lower() if is_evm_address(t) else t)
        where.append("token = ?")
        params.append(t)
    sql = f"SELECT {', '.join(QUALITY_COLUMNS)} FROM candle_quality"
    if where:
        sql += " WHERE " + " AND ".join(where)
    con = home.connect(read_only=True)
    try:
        return con.execute(sql + " ORDER BY chain, token, interval_s", params).df()
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# per-token quality over the merged series (all intervals together)

TOKEN_QUALITY_COLUMNS = [
    "chain",
    "token",
    "intervals",
    "first_ts",
    "data_end_ts",
    "n_bars",
    "n_gaps",
    "n_switch_gaps",
    "gap_s_total",
    "max_gap_s",
    "no_trade_share",
    "n_suspect",
    "suspect_bars",
]
GAP_COLUMNS = [
    "chain",
    "token",
    "from_ts",
    "to_ts",
    "length_s",
    "interval_before_s",
    "interval_after_s",
    "at_switch",
]


def _fmt_ts(t: int) -> str:
    return pd.Timestamp(int(t), unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")


def token_quality(
    home: Home, chain: str | None = None, token: str | None = None, wick_guard: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per token, over its bars of every interval as the windows use them (``alertlab.windows.cut``).

    ``tokens`` (one row per chain, token): ``intervals`` = each bar interval present with its time
    range and bar count; ``n_gaps`` = holes between a bar's end (ts + its duration) and the next
    bar's open, *including* across interval switches (the 5m→1h hole), ``n_switch_gaps`` those at a
    switch, ``gap_s_total``/``max_gap_s`` their lengths; ``no_trade_share`` = share of no-trade bars
    (volume 0 and open = high = low = close); ``n_suspect``/``suspect_bars`` = bars the bad-tick
    guard (factor ``wick_guard``, default the window default) clamps, with their times.
    ``gaps``: one row per hole (from = end of the bar before, to = the next bar's open).
    """
    from alertlab.ingest.chains import is_evm_address, normalize_chain, normalize_token
    from alertlab.windows.cut import load_series
    from alertlab.windows.spec import DEFAULT_WICK_GUARD

    k = DEFAULT_WICK_GUARD if wick_guard is None else wick_guard
    c = normalize_chain(chain) if chain is not None else None
    tok = None
    if token is not None and token.strip():
        tok = token.strip()
        tok = normalize_token(c, tok) if c is not None else (tok.lower() if is_evm_address(tok) else tok)
    rows, gaps = [], []
    root = home.candles_dir
    chains = [c] if c else (sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else [])
    for ch in chains:
        for path in sorted((root / ch).glob("b*.parquet")):
            names = pq.read_table(path, columns=["token"])["token"].unique().to_pylist()
            toks = sorted(t for t in names if tok is None or t == tok)
            if not toks:
                continue
            s = load_series(path, toks, None, k)
            for q, t in enumerate(toks):
                m = s["code"] == q
                ts, dur = s["ts"][m], s["dur"][m]
                if not len(ts):
                    continue
                end = ts + dur
                hole = np.flatnonzero(ts[1:] > end[:-1])
                switch = dur[hole] != dur[hole + 1]
                ivs = []
                for iv in np.unique(dur):
                    sel = dur == iv
                    ivs.append(
                        f"{int(iv)} s: {_fmt_ts(ts[sel][0])} → {_fmt_ts(end[sel][-1])} ({int(sel.sum())} bars)"
                    )
                lengths = ts[hole + 1] - end[hole]
                sus = ts[s["suspect"][m]]
                rows.append(
                    {
                        "chain": ch,
                        "token": t,
                        "intervals": "; ".join(ivs),
                        "first_ts": int(ts[0]),
                        "data_end_ts": int(end.max()),
                        "n_bars": int(len(ts)),
                        "n_gaps": int(len(hole)),
                        "n_switch_gaps": int(switch.sum()),
                        "gap_s_total": int(lengths.sum()),
                        "max_gap_s": int(lengths.max()) if len(lengths) else 0,
                        "no_trade_share": float((~s["traded"][m]).mean()),
                        "n_suspect": int(len(sus)),
                        "suspect_bars": ", ".join(_fmt_ts(x) for x in sus[:5])
                        + (" …" if len(sus) > 5 else ""),
                    }
                )
                for h, sw, ln in zip(hole, switch, lengths, strict=True):
                    gaps.append(
                        {
                            "chain": ch,
                            "token": t,
                            "from_ts": int(end[h]),
                            "to_ts": int(ts[h + 1]),
                            "length_s": int(ln),
                            "interval_before_s": int(dur[h]),
                            "interval_after_s": int(dur[h + 1]),
                            "at_switch": bool(sw),
                        }
                    )
    tq = pd.DataFrame(rows, columns=TOKEN_QUALITY_COLUMNS)
    gq = pd.DataFrame(gaps, columns=GAP_COLUMNS)
    for df, cols in ((tq, ("first_ts", "data_end_ts")), (gq, ("from_ts", "to_ts"))):
        for col in cols:
            df[col] = pd.to_datetime(df[col].astype("int64"), unit="s", utc=True)
    return tq, gq
