"""Candle ingestion: CSV / Parquet / Birdeye JSON → the bucketed Parquet candle store.

Inputs: files or directories (searched recursively, hidden entries skipped) of ``.csv``
(``.csv.gz``, ``.tsv``), ``.parquet``/``.pq`` and ``.json``. JSON is Birdeye-style
``{"data": {"items": [{"unixTime", "o", "h", "l", "c", "v"}, ...]}}`` (also ``{"items": [...]}`` or
a bare list); its ``type`` field is ignored, the interval is detected like for any other file.

Columns (headers matched trimmed and case-insensitively; the first alias present is used):
``chain`` ← chain, network; ``token`` ← token, mint, token_address, address; ``ts`` ← ts, timestamp,
unixtime, time; ``open`` ← open, o; ``high`` ← high, h; ``low`` ← low, l; ``close`` ← close, c;
``volume`` ← volume, v, vol. ``ts``, prices and volume are required. Chain and token come from
``--chain``/``--token`` when given (they override columns and names), else from columns, else from
the file name (:func:`name_chain_token`): ``<chain>_<token>_<YYYYMMDD-HHMM>_<YYYYMMDD-HHMM>.<ext>``
(the real export's naming), ``<chain>_<token>.<ext>``, or ``<address>.<ext>`` for a Solana/Tron
address. A file that gives no chain or no token is not ingested (its error names it).

Reading (see :mod:`alertlab.ingest.csvread`): the CSV delimiter is detected; a malformed line (a
field count that differs from the header's) is quarantined with its physical line number and
text, a row with invalid UTF-8 likewise, blank lines are skipped; every other line is read.
A file that cannot be read at all (empty, header only, binary, missing columns, no chain/token)
is skipped and reported (``files_rejected``, ``ingest_log.status = 'rejected'``, a ``rejects``
row without line number); only when no file given can be read is that an error.

Normalisation and validation (rows failing are quarantined in ``rejects`` with file, row, reason):

* ``ts``: bar open, epoch seconds (UTC). Epoch numbers by magnitude (``>= 1e11`` ms, else seconds,
  µs/ns above 1e14/1e17) or ISO-8601 (naive = UTC), see :mod:`alertlab.ingest.timeparse`. Missing,
  unparsable, out of 2000–2099, or not a whole second → rejected.
* chain spellings and token addresses as in :mod:`alertlab.ingest.chains` (EVM lower-cased, Solana
  case-sensitive, address validated for its chain); an empty chain is inferred from a Solana/Tron
  address, an EVM address without chain is rejected (it names no chain).
* prices missing/NaN/inf or <= 0, ``high < max(open, close)``, ``low > min(open, close)``, volume
  missing/NaN or negative → rejected (all failing checks listed, joined by ``"; "``).
* Row numbers: the CSV line number (header = line 1; exact unless a quoted value spans lines);
  Parquet rows and JSON items are numbered the same way (first = 2).
* Rejects are keyed by (file content hash, row): re-ingesting a file replaces its earlier rejects.

Bar interval (``interval_s``), detected per series = the distinct ``ts`` of one token in one file
(sorted), standard intervals S = 60, 300, 900, 1800, 3600, 14400, 86400 s:

1. the gap ``ts[k+1] - ts[k]`` is *regular* when it equals some ``I`` in S and ``ts[k] % I == 0``
   (so both bars are aligned to ``I``); it is *in a run* when a neighbouring gap is regular with
   the same ``I``;
2. a bar next to at least one regular gap takes the smallest of its adjacent regular gaps that
   are in a run, or, when none is, the smallest adjacent regular gap. So at a switch 5m → 1h the
   last 5-minute bar stays 300 (a bar followed ``I`` seconds later by the next cannot span more
   than ``I``), and a lone transition gap (e.g. 30 min from the last 5m bar at :30 to the first
   1h bar at :00) does not invent a 1800 series;
3. a bar with no adjacent regular gap (missing bars on both sides, or the transition bar) keeps
   the interval of the nearest earlier bar set by rule 2 if its ``ts`` is aligned to it ("a bar
   after a gap keeps the interval of its run"), else that of the nearest later such bar if aligned;
3b. sparse is not coarse: APIs skip minutes without swaps, so a fine series can show spacings
   that equal a coarser standard interval. Over the bars labelled so far (unlabelled bars are
   transparent), a maximal run of bars labelled ``J`` next to a run with a *finer* label is a
   stretch of the fine series, not a coarse source, and takes the finer neighbour's interval
   (the smaller of the two neighbours' when both are finer), unless it holds a streak of
   consecutive gaps of exactly ``J`` long enough to be a coarse source: at least
   :data:`COARSE_STREAK_EDGE` (3) such gaps for a run at the start or end of the series (a
   source switching resolution, e.g. 5-minute bars then hourly ones), at least
   :data:`COARSE_STREAK_INSIDE` (12) for a run between finer bars. A declared timeframe
   (``declared`` argument of :func:`detect_intervals`, e.g. from an API request) overrides the
   detection for the whole series: aligned bars take it, misaligned ones are left to rule 4;
4. a bar still without interval (e.g. a one-bar file) takes, among the token's bars already in the
   store or set in this ingest, the interval whose nearest bar is closest in time and to which its
   ``ts`` is aligned (ties → the smaller interval);
5. otherwise it is rejected ("bar interval undetectable").

Known limit: a sparse fine series whose *start or end* happens to show three or more consecutive
aligned gaps of a coarser standard interval is taken as a switch to that interval there (rare: on a
1-minute series with 40% of minutes missing, three back-to-back 5-minute holes aligned to :00/:05).
A file may also declare the interval: an optional column named exactly ``interval_s`` (seconds; empty = not declared) gives a
bar's interval and wins over rules 1–5 (fetched API data declares its timeframe this way, so a
sparse 1-minute series stays 1-minute). A declared value that is not a standard interval or to
which ``ts`` is not aligned is rejected.

Duplicates: bars are keyed by ``(chain, token, interval_s, ts)``. Identical versions collapse
(counted as duplicates). Differing versions are a *conflict*, resolved deterministically: keep the
larger volume, then the more recent ingest (this one over the store), then the later file (in the
given order), then the later row. Each losing version is logged in ``rejects`` with reason
:data:`alertlab.ingest.quality.SUPERSEDED` (reported as ``conflicts``, not as rejected rows).

Store (DEVELOPERS.md): ``<home>/candles/<chain>/b<NN>.parquet``, ``NN = crc32(token) % 64``, columns
``chain, token, interval_s (int32), ts (int64), open, high, low, close, volume (float64)``, sorted by
``(chain, token, interval_s, ts)``. Only buckets receiving new rows are read; only buckets whose
content changes are rewritten (atomically); ``candle_files`` keeps ``path`` (relative to the home),
row count and the SHA-256 of the file bytes. Re-ingesting or overlapping data adds no bar twice.

Memory: input files are read in record batches and spilled to a per-ingest staging area split by
(chain, bucket); buckets are then merged one at a time, so memory is bounded by the batch size
plus the largest bucket (about 1/64 of a chain's bars). Catalog writes (rejects, ``ingest_log``,
``candle_files``, ``candle_quality``) happen in one transaction at the end; a crash between a
bucket rewrite and that commit leaves the bucket correct but its ``candle_files`` row stale; the
next ingest finds the run's ``ingest_log`` rows still ``running`` and reconciles the catalog with
the store (:mod:`alertlab.ingest.recovery`). Ingests hold the workspace writer lock
(:mod:`alertlab.store.lock`), which also removes a killed run's staging area.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alertlab.errors import UserError
from alertlab.ingest import chains as ch
from alertlab.ingest.csvread import read_text_table
from alertlab.ingest.files import collect_files
from alertlab.ingest.quality import SAMPLE_SIZE, SUPERSEDED, IngestReport, file_sha256, series_quality
from alertlab.ingest.timeparse import EMPTY, OK, OUT_OF_RANGE, to_epoch_ms
from alertlab.store import Home, atomic_file
from alertlab.store.candles import (
    KEY_SHIFT as _SHIFT,
)
from alertlab.store.candles import (
    N_BUCKETS,
    STORE_SCHEMA,
    VALUES,
    bucket_of,
)
from alertlab.store.candles import (
    bucket_file as _bucket_file,
)
from alertlab.store.lock import workspace_lock
from alertlab.util.memory import duckdb_memory_limit, memory_budget_bytes, memory_budget_gb
from alertlab.util.progress import bar

STANDARD_INTERVALS = (60, 300, 900, 1800, 3600, 14400, 86400)
CANDLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq", ".json")
FILENAME_RE = re.compile(
    r"^(?P<chain>[A-Za-z][A-Za-z0-9-]*)_(?P<token>[A-Za-z0-9]+)(_(?P<start>\d{8}-\d{4})_(?P<end>\d{8}-\d{4}))?"
    r"\.(csv|csv\.gz|tsv|parquet|pq|json)$",
    re.IGNORECASE,
)
NAME_HELP = "<chain>_<token>[_<YYYYMMDD-HHMM>_<YYYYMMDD-HHMM>].<ext>"
ALIASES: dict[str, tuple[str, ...]] = {
    "chain": ("chain", "network"),
    "token": ("token", "mint", "token_address", "address"),
    "ts": ("ts", "timestamp", "unixtime", "time"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "v", "vol"),
}
#: rows per Parquet/JSON read batch and per staging flush; ``None`` = sized from the memory budget
#: (:func:`batch_rows`); tests pin them to tiny values to exercise the batching.
READ_BATCH_ROWS: int | None = None
FLUSH_ROWS: int | None = None
#: bytes of one staged row (series id, ts, five values, file, row, declared interval, null
#: reason/raw: ~90) with headroom; a quarter of the budget holds the staged rows in memory
STAGED_ROW_BYTES = 128
#: budget bytes per read-batch row: the batch as read, its converted copy and the per-batch gather
READ_BYTES_PER_ROW = 2048
_NULLS = ["", "NaN", "nan", "NULL", "null", "None", "none", "N/A", "NA", "#N/A", "-nan"]
_NULL_SET = pa.array(_NULLS, pa.string())
_NULL_TEXT = frozenset(_NULLS)
_TS_REASON = {EMPTY: "missing ts", 2: "unparsable ts", OUT_OF_RANGE: "ts out of range (not 2000-2099)"}
UNDETECTABLE = "bar interval undetectable (no neighbour bar at a standard aligned spacing)"

_DICT = pa.dictionary(pa.int32(), pa.string())
_STAGE_SCHEMA = pa.schema(
    [("chain", _DICT), ("token", _DICT), ("ts", pa.int64())]
    + [(c, pa.float64()) for c in VALUES]
    + [("file_idx", pa.int32()), ("row", pa.int64()), ("reason", pa.string()), ("raw", pa.string())]
    + [("declared_iv", pa.int32())]  # the file's own ``interval_s`` (0 = not declared)
)
DECLARED_IV_COLUMN = "interval_s"
#: CSV columns the reader's threads parse directly (a cast that must succeed for every value of
#: the block, exactly the first step of :func:`_to_ts` / :func:`_to_float`; else the text is used)
_PARSE_AS: dict[str, pa.DataType] = (
    {a: pa.int64() for a in ALIASES["ts"]}
    | {a: pa.float64() for c in VALUES for a in ALIASES[c]}
    | {DECLARED_IV_COLUMN: pa.float64()}
)
_REJECT_SCHEMA = pa.schema(
    [
        ("file_idx", pa.int32()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("chain", pa.string()),
        ("token", pa.string()),
        ("ts", pa.int64()),
        ("interval_s", pa.int32()),
    ]
    + [(c, pa.float64()) for c in VALUES]
)


# ---------------------------------------------------------------------------------------------
# interval detection


@numba.njit(cache=True, nogil=True)
def _regular(t0, gap, std):
    for k in range(std.shape[0]):
        if gap == std[k]:
            return gap if t0 % gap == 0 else 0
    return 0


COARSE_STREAK_EDGE = 3
COARSE_STREAK_INSIDE = 12


@numba.njit(cache=True, nogil=True)
def _streak(ts, i0, i1, iv):
    """Longest streak of consecutive gaps of exactly ``iv`` among bars ``i0..i1`` (inclusive)."""
    best, cur = 0, 0
    for i in range(i0, i1):
        if ts[i + 1] - ts[i] == iv:
            cur += 1
            if cur > best:
                best = cur
        else:
            cur = 0
    return best


@numba.njit(cache=True, nogil=True)
def _sparse_not_coarse(ts, out, s, e):  # noqa: C901 (Numba kernel: rule 3b over one series in one pass)
    """Rule 3b over one series (labels in ``out[s:e]``, 0 = unlabelled and transparent)."""
    idx = np.empty(e - s, np.int64)
    m = 0
    for i in range(s, e):
        if out[i] > 0:
            idx[m] = i
            m += 1
    if m == 0:
        return
    # runs of equal labels over the labelled bars
    rs = np.empty(m, np.int64)
    re = np.empty(m, np.int64)
    rl = np.empty(m, np.int64)
    nr = 0
    for q in range(m):
        if q == 0 or out[idx[q]] != out[idx[q - 1]]:
            rs[nr] = q
            rl[nr] = out[idx[q]]
            nr += 1
        re[nr - 1] = q
    new = rl.copy()
    for r in range(nr):
        left = rl[r - 1] if r > 0 else 0
        right = rl[r + 1] if r + 1 < nr else 0
        finer = 0
        if 0 < left < rl[r]:
            finer = left
        if 0 < right < rl[r] and (finer == 0 or right < finer):
            finer = right
        if finer == 0:
            continue
        both = 0 < left < rl[r] and 0 < right < rl[r]
        need = COARSE_STREAK_INSIDE if both else COARSE_STREAK_EDGE
        if _streak(ts, idx[rs[r]], idx[re[r]], rl[r]) < need:
            new[r] = finer
    for r in range(nr):
        if new[r] != rl[r]:
            for q in range(rs[r], re[r] + 1):
                out[idx[q]] = new[r]


@numba.njit(cache=True, nogil=True)
def _detect_kernel(ts, offsets, std, declared):  # noqa: C901 (Numba kernel: interval detection in one pass per series)
    n = ts.shape[0]
    out = np.zeros(n, np.int64)
    for g in range(offsets.shape[0] - 1):
        s, e = offsets[g], offsets[g + 1]
        if declared[g] > 0:
            for i in range(s, e):
                out[i] = declared[g] if ts[i] % declared[g] == 0 else 0
            continue
        m = e - s - 1  # gaps of this series; gap j lies between bars s+j and s+j+1
        if m < 1:
            continue
        reg = np.zeros(m, np.int64)
        for j in range(m):
            reg[j] = _regular(ts[s + j], ts[s + j + 1] - ts[s + j], std)
        strong = np.zeros(m, np.bool_)  # a regular gap in a run of >= 2 equal regular gaps
        for j in range(m):
            if reg[j] > 0 and ((j > 0 and reg[j - 1] == reg[j]) or (j + 1 < m and reg[j + 1] == reg[j])):
                strong[j] = True
        for i in range(s, e):  # rule 2
            best_strong, best_any = 0, 0
            for j in (i - s - 1, i - s):
                if 0 <= j < m and reg[j] > 0:
                    if best_any == 0 or reg[j] < best_any:
                        best_any = reg[j]
                    if strong[j] and (best_strong == 0 or reg[j] < best_strong):
                        best_strong = reg[j]
            out[i] = best_strong if best_strong > 0 else best_any
        prev = np.zeros(e - s, np.int64)  # rule 3: nearest rule-2 interval before / after
        last = 0
        for i in range(s, e):
            prev[i - s] = last
            if out[i] > 0:
                last = out[i]
        nxt = 0
        for i in range(e - 1, s - 1, -1):
            if out[i] > 0:
                nxt = out[i]
                continue
            p = prev[i - s]
            if p > 0 and ts[i] % p == 0:
                out[i] = -p  # negative marks rule-3 results so they do not feed later bars
            elif nxt > 0 and ts[i] % nxt == 0:
                out[i] = -nxt
        for i in range(s, e):
            out[i] = abs(out[i])
        _sparse_not_coarse(ts, out, s, e)
    return out


def detect_intervals(ts: np.ndarray, offsets: np.ndarray, declared: np.ndarray | None = None) -> np.ndarray:
    """Bar interval (rules 1–3b of the module docstring) of every bar; 0 = undetermined.

    ``ts[offsets[g]:offsets[g+1]]`` is one series: distinct, strictly increasing epoch seconds.
    ``declared[g]`` (optional, 0 = unknown) is the series' timeframe as declared by its source.
    """
    ts = np.ascontiguousarray(ts, np.int64)
    offsets = np.ascontiguousarray(offsets, np.int64)
    n_groups = max(len(offsets) - 1, 0)
    dec = np.zeros(n_groups, np.int64) if declared is None else np.ascontiguousarray(declared, np.int64)
    if dec.shape[0] != n_groups:
        raise ValueError(f"declared has {dec.shape[0]} entries for {n_groups} series")
    return _detect_kernel(ts, offsets, np.asarray(STANDARD_INTERVALS, np.int64), dec).astype(np.int32)


def resolve_from_known(
    code: np.ndarray, ts: np.ndarray, known_code: np.ndarray, known_iv: np.ndarray, known_ts: np.ndarray
) -> np.ndarray:
    """Rule 4: interval for bars ``(code, ts)`` from known bars of the same token code; 0 = none.

    Among the token's known intervals ``I`` with ``ts % I == 0``, the one whose nearest known bar
    is closest in time wins, ties → the smaller ``I``.
    """
    best_iv = np.zeros(len(code), np.int32)
    best_d = np.full(len(code), np.iinfo(np.int64).max, np.int64)
    if not len(code) or not len(known_code):
        return best_iv
    for iv in np.unique(known_iv):
        keys = np.unique(known_code[known_iv == iv].astype(np.int64) * _SHIFT + known_ts[known_iv == iv])
        cand = np.flatnonzero(ts % iv == 0)
        if not len(cand):
            continue
        q = code[cand].astype(np.int64) * _SHIFT + ts[cand]
        pos = np.searchsorted(keys, q)
        d = np.full(len(cand), np.iinfo(np.int64).max, np.int64)
        left = pos > 0
        lk = keys[np.maximum(pos - 1, 0)]
        ok = left & (lk // _SHIFT == code[cand])
        d = np.where(ok, q - lk, d)
        right = pos < len(keys)
        rk = keys[np.minimum(pos, len(keys) - 1)]
        ok = right & (rk // _SHIFT == code[cand])
        d = np.where(ok, np.minimum(d, rk - q), d)
        better = d < best_d[cand]
        best_d[cand[better]] = d[better]
        best_iv[cand[better]] = iv
    return best_iv


# ---------------------------------------------------------------------------------------------
# reading


def _json_items(path: Path) -> list:
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: binary file or not UTF-8 JSON; give a Birdeye-style JSON, CSV or Parquet file"
        ) from exc
    except json.JSONDecodeError as exc:
        what = (
            "empty file"
            if exc.pos == 0 and not exc.doc.strip()
            else f"not valid JSON ({exc.msg} at line {exc.lineno})"
        )
        raise UserError(f"{path}: {what}; give a Birdeye-style JSON, CSV or Parquet file") from exc
    if isinstance(doc, dict):
        data = doc.get("data", doc)
        items = data.get("items") if isinstance(data, dict) else data
    else:
        items = doc
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise UserError(
            f"{path}: JSON must be {{'data': {{'items': [...]}}}}, {{'items': [...]}} or a list of objects"
        )
    return items


@dataclass
class _FileRead:
    """Per-file reading outcome: malformed lines (quarantined), delimiter, blank lines skipped."""

    bad_lines: list = field(default_factory=list)
    details: dict = field(default_factory=dict)
    null_text: bool = False  # text cells: the null spellings (``_NULLS``) still to be read as null
    parsed: dict = field(default_factory=dict)  # the current batch's columns parsed by the reader


def batch_rows() -> tuple[int, int]:
    """``(rows per read batch, staged rows kept in memory before a spill)`` from the memory budget.

    A 2 GB budget gives 1M-row reads and up to 4.2M staged rows (~0.4 GB) in memory; past that the
    staging spills to disk, so the ingest's memory follows the budget, not the input size.
    Pinned values (``READ_BATCH_ROWS``, ``FLUSH_ROWS``) win.
    """
    budget = memory_budget_bytes()
    flush = FLUSH_ROWS or max(10_000, budget // 4 // STAGED_ROW_BYTES)
    read = READ_BATCH_ROWS or max(5_000, budget // READ_BYTES_PER_ROW)
    return read, flush


def csv_block_bytes() -> int:
    """Bytes per CSV read block from the memory budget (64 MiB at 2 GB; text is ~4x its Arrow size)."""
    return max(1 << 20, memory_budget_bytes() // 32)


def _key_columns(names: list[str]) -> list[str]:
    """The header names that can carry chain or token (read as dictionaries: few distinct values)."""
    keys = {a for c in ("chain", "token") for a in ALIASES[c]}
    return [n for n in names if n.strip().lower() in keys]


def _read_batches(
    path: Path, fr: _FileRead | None = None
) -> Iterator[tuple[pa.Table, np.ndarray, np.ndarray]]:
    """The file as ``(table of its original columns, line/row numbers, rows with invalid UTF-8)``.

    Tables are bounded in size (:func:`batch_rows`, :func:`csv_block_bytes`) and in file order;
    the first one may be empty (it carries the header, so a header-only file is still checked for
    its columns). CSV cells are text; CSV malformed lines are collected in ``fr.bad_lines`` (see
    :mod:`alertlab.ingest.csvread`). Parquet rows and JSON items are numbered like CSV records
    (first = 2). Parquet chain/token columns are read dictionary-encoded (decoding millions of
    repeated strings was the slowest part of reading).
    """
    fr = fr if fr is not None else _FileRead()
    name = path.name.lower()
    none = np.empty(0, np.int64)
    if name.endswith((".parquet", ".pq")):
        try:
            pf = pq.ParquetFile(path)
            strings = [
                f.name
                for f in pf.schema_arrow
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            ]
            dict_cols = [c for c in _key_columns(pf.schema_arrow.names) if c in strings]
            if dict_cols:
                pf = pq.ParquetFile(path, read_dictionary=dict_cols)
        except (pa.ArrowInvalid, OSError) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
        yield pf.schema_arrow.empty_table(), none, none
        first = 0
        for rb in pf.iter_batches(batch_size=batch_rows()[0]):
            yield pa.Table.from_batches([rb]), np.arange(first, first + rb.num_rows, dtype=np.int64) + 2, none
            first += rb.num_rows
    elif name.endswith(".json"):
        items = _json_items(path)
        if not items:
            return
        try:
            t = pa.Table.from_pylist(items)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            keys = list(dict.fromkeys(k for it in items for k in it))
            t = pa.table(
                {
                    k: pa.array([None if it.get(k) is None else str(it.get(k)) for it in items], pa.string())
                    for k in keys
                }
            )
        yield t, np.arange(t.num_rows, dtype=np.int64) + 2, none
    else:
        info, batches = read_text_table(
            path,
            [a for names in ALIASES.values() for a in names],
            block_rows_hint=csv_block_bytes(),
            parse_as=_PARSE_AS,
        )
        fr.details["delimiter"] = info.delimiter_name
        fr.null_text = True  # "NaN", "null", "N/A" … are nulls: applied where a value is parsed (_Normaliser)
        yield pa.schema([(h, pa.string()) for h in info.header]).empty_table(), none, none
        for b in batches:
            fr.parsed = b.parsed
            yield b.table, b.lines, b.bad_utf8
        fr.bad_lines = info.bad_lines
        if info.blank_lines:
            fr.details["blank_lines"] = info.blank_lines


def _pick(names: list[str], canon: str) -> str | None:
    low = {n.strip().lower(): n for n in reversed(names)}
    for a in ALIASES[canon]:
        if a in low:
            return low[a]
    return None


def _plain(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One chunk, dictionary-decoded (numbers and times are parsed from the values)."""
    if isinstance(col, pa.ChunkedArray):
        arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()  # one chunk: no copy
    else:
        arr = col
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _nullify(col: pa.Array) -> pa.Array:
    """Text null spellings (``_NULLS``: "", "NaN", "null", "N/A" …) → null."""
    return pc.if_else(pc.is_in(col, value_set=_NULL_SET), None, col)


def _to_float(col: pa.ChunkedArray, null_text: bool = False) -> np.ndarray:
    """Numbers of a column (NaN where missing or not a number).

    With ``null_text`` the null spellings are nulls; they are only looked for when the direct
    parse fails (the spellings that parse, "NaN"/"nan", give NaN either way).
    """
    col = _plain(col)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            col = _nullify(col) if null_text else col
            try:
                col = pc.cast(col, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return pd.to_numeric(col.to_pandas(), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    elif not (
        pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_decimal(col.type)
    ):
        return pd.to_numeric(col.cast(pa.string()).to_pandas(), errors="coerce").to_numpy(
            np.float64, na_value=np.nan
        )
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


_Check = tuple[np.ndarray, str | Callable[[np.ndarray], np.ndarray]]


def _to_ts(col: pa.ChunkedArray, null_text: bool = False) -> tuple[np.ndarray, list[_Check]]:
    """→ (epoch seconds, the failed ts checks as ``(row mask, reason)``; at most one per row).

    With ``null_text`` the null spellings are nulls (looked for only when the column is not all integers).
    """
    col = _plain(col)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            col = pc.cast(col, pa.int64())  # no null spelling parses as an integer
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            col = _nullify(col) if null_text else col
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        for t in (pa.int64(), pa.float64()):
            try:
                col = pc.cast(col, t)
                break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
    if pa.types.is_integer(col.type) and not col.null_count and len(col):
        # fast path, same result: integers all inside 2000-2099 as epoch seconds (< 1e11, so read as s)
        x = col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        if int(x.min()) >= TS_MIN_S and int(x.max()) < TS_MAX_S:
            return x, []
    ms, err = to_epoch_ms(col)
    checks: list[_Check] = [(err == code, text) for code, text in _TS_REASON.items()]
    checks.append(((err == OK) & (ms % 1000 != 0), "ts not a whole second"))
    return ms // 1000, checks


def _reasons(n: int, checks: list[_Check]) -> tuple[np.ndarray, np.ndarray]:
    """``(failing row positions, their reasons)``: every failed check of a row, ``"; "``-joined in order.

    A check's reason is a text or a function of the failing positions (per-row texts). Strings are
    built for failing rows only, so a clean batch costs one boolean OR per check.
    """
    fail = np.zeros(n, bool)
    for m, _ in checks:
        fail |= m
    idx = np.flatnonzero(fail)
    out = np.full(len(idx), "", dtype=object)
    for m, text in checks:
        sub = m[idx]
        if not sub.any():
            continue
        add = text if isinstance(text, str) else text(idx[sub])
        cur = out[sub]
        out[sub] = np.where(cur == "", add, cur + "; " + add)
    return idx, out


def _codes(col: pa.ChunkedArray | pa.Array, null_text: bool = False) -> tuple[np.ndarray, list]:
    """A key column as ``(int64 code per row, the distinct values as text, None for null)``.

    Values may repeat in the list (a dictionary read from Parquet is not deduplicated); callers
    normalise per entry, so a repeat costs one more normalisation and nothing else.
    """
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_dictionary(arr.type) and pa.types.is_string(arr.type.value_type)):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        arr = pc.dictionary_encode(arr, null_encoding="encode")
    values = arr.dictionary.to_pylist()
    if null_text:
        values = [None if v in _NULL_TEXT else v for v in values]
    idx = arr.indices
    if idx.null_count:
        idx = idx.fill_null(len(values))
        values.append(None)
    return idx.to_numpy(zero_copy_only=False).astype(np.int64), values


def _factorize_pairs(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(a, b)`` code pairs: ``(pair key per distinct pair, inverse per row)``."""
    key = a * nb + b
    size = na * nb
    if size <= 1 << 22:  # small code space: a lookup table instead of a sort
        present = np.bincount(key, minlength=size) > 0
        uniq = np.flatnonzero(present)
        lut = np.zeros(size, np.int64)
        lut[uniq] = np.arange(len(uniq))
        return uniq, lut[key]
    uniq, inv = np.unique(key, return_inverse=True)
    return uniq, inv.astype(np.int64)


class _Normaliser:
    """Per-file constant context: where chain/token come from, column mapping, raw-JSON helper."""

    def __init__(
        self,
        path: Path,
        file_idx: int,
        names: list[str],
        duck: duckdb.DuckDBPyConnection,
        chain: str | None = None,
        token: str | None = None,
        null_text: bool = False,
    ) -> None:
        self.path, self.file_idx, self.duck, self.null_text = path, file_idx, duck, null_text
        self.cols = {c: _pick(names, c) for c in ALIASES}
        missing = [c for c in ("ts", *VALUES) if self.cols[c] is None]
        if missing:
            need = "; ".join(f"{c} (any of {', '.join(ALIASES[c])})" for c in missing)
            raise UserError(
                f"{path}: missing required column(s): {need}; the header has {', '.join(names) or 'nothing'}"
            )
        self.name_chain, self.name_token = name_chain_token(path.name)
        self.chain_from = "column" if self.cols["chain"] else "file name"
        self.token_from = "column" if self.cols["token"] else "file name"
        if chain is not None:  # --chain / --token: every row of the file, whatever it says
            self.cols["chain"], self.name_chain, self.chain_from = None, chain, "--chain"
        if token is not None:
            self.cols["token"], self.name_token, self.token_from = None, token, "--token"
        if self.cols["token"] is None and self.name_token is None:
            raise UserError(
                f"{path}: no token: no token column (any of {', '.join(ALIASES['token'])}) and the name is not "
                f"{NAME_HELP} or <address>.<ext>; rename the file or pass --token"
            )
        if self.cols["chain"] is None and self.name_chain is None:
            raise UserError(
                f"{path}: no chain: no chain column (any of {', '.join(ALIASES['chain'])}) and the name is not "
                f"{NAME_HELP} (an EVM address names no chain); rename the file or pass --chain"
            )
        self.iv_col = next((n for n in names if n.strip().lower() == DECLARED_IV_COLUMN), None)
        self.columns_used = {k: v for k, v in self.cols.items() if v is not None}
        if self.iv_col is not None:
            self.columns_used["interval_s"] = self.iv_col
        self.columns_ignored = [n for n in names if n not in self.columns_used.values()]
        self._pairs: dict[tuple, tuple[str | None, str | None, str]] = {}  # normalised once per file

    def details(self) -> dict:
        """What the ingest log records about this file."""
        return {
            "columns_used": self.columns_used,
            "columns_ignored": self.columns_ignored,
            "chain_from": self.chain_from,
            "token_from": self.token_from,
        }

    def _chain_token(self, t: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(pair code per row, canonical chain, normalised token, reason)``; the last three per pair.

        Chain and token are normalised once per distinct (chain, token) pair of the file, never per row.
        """
        n = t.num_rows
        if self.cols["chain"] is not None:
            ccode, cvals = _codes(t[self.cols["chain"]], self.null_text)
        else:
            ccode, cvals = np.zeros(n, np.int64), [self.name_chain]
        if self.cols["token"] is not None:
            tcode, tvals = _codes(t[self.cols["token"]], self.null_text)
        else:
            tcode, tvals = np.zeros(n, np.int64), [self.name_token]
        uniq, inv = _factorize_pairs(ccode, len(cvals), tcode, max(len(tvals), 1))
        nt = max(len(tvals), 1)
        out_c = np.empty(len(uniq), object)
        out_t = np.empty(len(uniq), object)
        out_r = np.empty(len(uniq), object)
        for k, p in enumerate(uniq.tolist()):
            raw = (cvals[p // nt], tvals[p % nt])
            got = self._pairs.get(raw)
            if got is None:
                got = self._pairs[raw] = _norm_pair(*raw)
            out_c[k], out_t[k], out_r[k] = got
        return inv, out_c, out_t, out_r

    def convert(
        self,
        t: pa.Table,
        rows: np.ndarray,
        bad_utf8: np.ndarray | None = None,
        parsed: dict[str, pa.Array] | None = None,
    ) -> tuple[pa.Table, pa.Table]:
        """Original batch → (rows to stage, rows rejected outright). Both carry file_idx and row.

        ``rows``: the line (record) number of each row; ``bad_utf8``: positions of rows with a
        value that was not UTF-8 text (rejected outright); ``parsed``: columns the CSV reader
        already parsed (:data:`_PARSE_AS`), used instead of their text. Rows whose key (ts, chain, token) or
        text is bad are rejected here; rows with bad values are staged with their reason, so that
        their series still gets an interval (the quality table counts them per series).
        """
        n = t.num_rows
        rows = np.asarray(rows, np.int64)
        parsed = parsed or {}
        col = lambda name: parsed.get(name, t[name])  # noqa: E731 - the reader's parse, else the text
        ts, checks = _to_ts(col(self.cols["ts"]), self.null_text)
        key_bad = np.zeros(n, bool)
        for m, _ in checks:
            key_bad |= m
        inv, pc_chain, pc_token, pc_reason = self._chain_token(t)
        pair_bad = pc_reason != ""
        if pair_bad.any():
            row_pair_bad = pair_bad[inv]
            checks.append((row_pair_bad, lambda i: pc_reason[inv[i]]))
            key_bad |= row_pair_bad
        if bad_utf8 is not None and len(bad_utf8):
            enc = np.zeros(n, bool)
            enc[bad_utf8] = True
            checks.append((enc, "invalid UTF-8 text"))
            key_bad |= enc
        vals = {c: _to_float(col(self.cols[c]), self.null_text) for c in VALUES}
        o, h, lo, c, v = (vals[k] for k in VALUES)
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
            checks.append((~finite, "price missing, NaN or infinite"))
            checks.append(((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "non-positive price"))
            checks.append((h < np.maximum(o, c), "high < max(open, close)"))
            checks.append((lo > np.minimum(o, c), "low > min(open, close)"))
            checks.append((~np.isfinite(v), "volume missing, NaN or infinite"))
            checks.append((v < 0, "negative volume"))
        declared = np.zeros(n, np.int64)
        if self.iv_col is not None:
            d = _to_float(col(self.iv_col), self.null_text)
            given = np.isfinite(d)
            ok = given & np.isin(d, STANDARD_INTERVALS)
            declared[ok] = d[ok].astype(np.int64)
            ok &= ts % np.maximum(declared, 1) == 0
            checks.append((given & ~ok, "declared interval_s is not a standard interval aligned with ts"))
            declared[~ok] = 0
        fail_idx, fail_reason = _reasons(n, checks)
        reason_col: pa.Array = pa.nulls(n, pa.string())
        raw_col: pa.Array = pa.nulls(n, pa.string())
        if len(fail_idx):
            full = np.full(n, None, dtype=object)
            full[fail_idx] = fail_reason
            reason_col = pa.array(full, pa.string())
            full = np.full(n, None, dtype=object)
            full[fail_idx] = self._raw_json(t, fail_idx)
            raw_col = pa.array(full, pa.string())
        src = str(self.path)
        keep = None if not key_bad.any() else pa.array(np.flatnonzero(~key_bad))
        pair_ok = ~pair_bad
        cdict = pa.array([x if ok else "" for x, ok in zip(pc_chain, pair_ok, strict=True)], pa.string())
        tdict = pa.array([x if ok else "" for x, ok in zip(pc_token, pair_ok, strict=True)], pa.string())
        pair_idx = pa.array(inv.astype(np.int32))
        stage = pa.table(
            {
                "chain": pa.DictionaryArray.from_arrays(pair_idx, cdict),
                "token": pa.DictionaryArray.from_arrays(pair_idx, tdict),
                "ts": pa.array(ts, pa.int64()),
                **{k: pa.array(vals[k], pa.float64()) for k in VALUES},
                "file_idx": pa.array(np.full(n, self.file_idx, np.int32)),
                "row": pa.array(rows),
                "reason": reason_col,
                "raw": raw_col,
                "declared_iv": pa.array(declared, pa.int32()),
            },
            schema=_STAGE_SCHEMA,
        )
        if keep is not None:
            stage = stage.take(keep)
        rb = np.flatnonzero(key_bad)
        rej_reason = np.full(n, None, dtype=object)
        rej_reason[fail_idx] = fail_reason
        rej = pa.table(
            {
                "file_idx": pa.array(np.full(len(rb), self.file_idx, np.int32)),
                "source_file": pa.array([src] * len(rb), pa.string()),
                "source_row": pa.array(rows[rb]),
                "reason": pa.array(rej_reason[rb], pa.string()),
                "raw": raw_col.take(pa.array(rb, pa.int64())),
                "chain": pa.array(pc_chain[inv[rb]], pa.string()),
                "token": pa.array(pc_token[inv[rb]], pa.string()),
                "ts": pa.array(ts[rb], pa.int64(), mask=~_ts_in_range(ts[rb])),
                "interval_s": pa.nulls(len(rb), pa.int32()),
                **{k: pa.array(vals[k][rb], pa.float64()) for k in VALUES},
            },
            schema=_REJECT_SCHEMA,
        )
        return stage, rej

    def _raw_json(self, t: pa.Table, idx: np.ndarray) -> list[str]:
        sub = t.take(pa.array(idx, pa.int64()))
        if self.null_text:
            sub = pa.table({c: _nullify(sub[c].combine_chunks()) for c in sub.column_names})
        self.duck.register("_raw_rows", sub)
        try:
            return [r[0] for r in self.duck.execute("SELECT to_json(s) FROM _raw_rows s").fetchall()]
        finally:
            self.duck.unregister("_raw_rows")


def name_chain_token(name: str) -> tuple[str | None, str | None]:
    """(chain, token) a candle file's name gives, each None when it gives none.

    ``<chain>_<token>_<YYYYMMDD-HHMM>_<YYYYMMDD-HHMM>.<ext>`` (the real export; any chain name),
    ``<chain>_<token>.<ext>`` (a known chain spelling and a valid address for it), or
    ``<address>.<ext>`` (token only; the chain follows from a Solana/Tron address, an EVM one
    names none).
    """
    m = FILENAME_RE.match(name)
    if m and m.group("start"):
        return m.group("chain"), m.group("token")
    if m:
        c = ch.normalize_chain(m.group("chain"))
        if (
            c is not None
            and c in ch.CHAIN_ALIASES.values()
            and ch.validate_address(c, ch.normalize_token(c, m.group("token"))) is None
        ):
            return m.group("chain"), m.group("token")
    stem = re.sub(r"\.(csv|csv\.gz|tsv|parquet|pq|json)$", "", name, flags=re.IGNORECASE)
    inferred = ch.infer_chain(stem)
    if inferred is None:
        return None, None
    return (None if inferred == ch.EVM else inferred), stem


TS_MIN_S, TS_MAX_S = 946_684_800, 4_102_444_800  # 2000-01-01 and 2100-01-01, epoch seconds


def _ts_in_range(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds inside the accepted range (parsed ts kept in reject records, else NULL)."""
    return (ts >= TS_MIN_S) & (ts < TS_MAX_S)


def _norm_pair(craw: object, traw: object) -> tuple[str | None, str | None, str]:
    """(chain, token) as given → (canonical chain, normalised token, reason-or-'')."""
    token = None if traw is None or (isinstance(traw, float) and traw != traw) else str(traw).strip()
    if not token:
        return ch.normalize_chain(craw), None, "missing token"
    chain = ch.normalize_chain(craw)
    if chain is None:
        inferred = ch.infer_chain(token)
        if inferred == ch.EVM:
            return None, token.lower(), "chain missing and EVM address names no chain"
        if inferred is None:
            return None, token, "chain missing and address not recognisable (not Solana, Tron or EVM)"
        chain = inferred
    if not ch.is_valid_chain_name(chain):
        return chain, token, f"invalid chain name {chain[:40]!r}"
    nt = ch.normalize_token(chain, token)
    return chain, nt, ch.validate_address(chain, nt) or ""


# ---------------------------------------------------------------------------------------------
# staging


_Rows = tuple[pa.Table, np.ndarray]  # staged rows held in memory: a converted batch and row positions


class _Stage:
    """Staging of one ingest: normalised rows split by (chain, bucket), and reject records.

    Each converted batch is split at once into per-bucket slices (one gather of the batch, keyed
    by an ingest-wide series id instead of chain/token text). The slices stay in memory while the
    staged rows fit the memory budget (:func:`batch_rows`); beyond it, :meth:`flush` spills every
    bucket's slices to one uncompressed Arrow IPC part under the scratch folder and starts over.
    A bucket's rows, in memory and on disk, stay in (file, row) order.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seq = 0
        self.n_memory = 0
        self.memory: dict[tuple[str, int], list[_Rows]] = {}
        self.buckets: dict[tuple[str, int], list[Path | _Rows]] = {}
        self.reject_parts: list[Path] = []
        self.series: dict[tuple[str, str], int] = {}  # (chain, token) → series id
        self.chains: list[str] = []
        self.tokens: list[str] = []
        self.key: list[int] = []  # series id → chain index * N_BUCKETS + bucket
        self._chain_idx: dict[str, int] = {}

    def _ids(self, chain: pa.DictionaryArray, token: pa.DictionaryArray) -> np.ndarray:
        """Series id of each dictionary entry (chain and token share their indices: one entry per pair)."""
        out = np.empty(len(chain.dictionary), np.int64)
        for k, pair in enumerate(
            zip(chain.dictionary.to_pylist(), token.dictionary.to_pylist(), strict=True)
        ):
            sid = self.series.get(pair)
            if sid is None:
                sid = self.series[pair] = len(self.tokens)
                ci = self._chain_idx.setdefault(pair[0], len(self._chain_idx))
                self.chains.append(pair[0])
                self.tokens.append(pair[1])
                self.key.append(ci * N_BUCKETS + bucket_of(pair[1]))
            out[k] = sid
        return out

    def add(self, table: pa.Table) -> None:
        """Stage one converted batch (schema ``_STAGE_SCHEMA``)."""
        if not table.num_rows:
            return
        chain, token = table["chain"].combine_chunks(), table["token"].combine_chunks()
        idx = token.indices.to_numpy(zero_copy_only=False)
        sid = self._ids(chain, token)[idx]
        key = np.asarray(self.key, np.int64)[sid]
        order = np.argsort(key, kind="stable")  # stable: rows stay in (file, row) order inside a bucket
        ks = key[order]
        t = table.drop_columns(["chain", "token"])
        t = t.add_column(0, "sid", pa.array(sid.astype(np.int32)))
        cuts = np.flatnonzero(np.diff(ks)) + 1
        names = list(self._chain_idx)
        for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(ks)], strict=True):
            k = int(ks[s])
            # the batch and the bucket's row positions (ascending): the gather happens in the
            # bucket's merge, on the merge threads, not here on the reading thread
            self.memory.setdefault((names[k // N_BUCKETS], k % N_BUCKETS), []).append((t, order[s:e]))
        self.n_memory += table.num_rows
        if self.n_memory >= batch_rows()[1]:
            self.flush(spill=True)

    def add_rejects(self, table: pa.Table) -> None:
        if table.num_rows:
            self.seq += 1
            path = self.root / "rejects" / f"part-{self.seq:06d}.parquet"  # read by DuckDB at commit
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.cast(_REJECT_SCHEMA), path, compression="lz4")
            self.reject_parts.append(path)

    def flush(self, spill: bool = False) -> None:
        """End of a staging round: the in-memory slices become bucket parts, written to disk if ``spill``.

        Spilled parts are uncompressed Arrow IPC files (no encode/decode cost, memory-mapped when
        merged, no fsync: the scratch folder is thrown away whole if the ingest dies).
        """
        for bk, held in self.memory.items():
            if spill:
                slices = [t.take(pa.array(idx)) for t, idx in held]
                self.seq += 1
                chain, b = bk
                path = self.root / "stage" / chain / f"b{b:02d}" / f"part-{self.seq:06d}.arrow"
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, slices[0].schema) as writer:
                    for s in slices:
                        writer.write_table(s)
                os.replace(tmp, path)
                self.buckets.setdefault(bk, []).append(path)
            else:
                self.buckets.setdefault(bk, []).extend(held)
        self.memory, self.n_memory = {}, 0


# ---------------------------------------------------------------------------------------------
# merging one bucket


@dataclass
class _BucketOut:
    rejects: pa.Table
    new_per_file: np.ndarray
    conflicts: int
    quality: dict[str, np.ndarray]
    file_row: dict | None


def _arr(x: object, typ: pa.DataType) -> pa.Array:
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    return x.cast(typ) if isinstance(x, pa.Array) else pa.array(x, typ)


def _reject_table(
    source_file: list[str],
    source_row: object,
    reason: object,
    raw: object,
    chain: str,
    token: np.ndarray,
    ts: np.ndarray,
    interval: np.ndarray,
    vals: dict[str, np.ndarray],
    file_idx: np.ndarray,
) -> pa.Table:
    """Reject records of one bucket (quarantined rows or superseded versions), in staging schema."""
    n = len(source_file)
    interval = np.asarray(interval, np.int64)
    return pa.table(
        {
            "file_idx": pa.array(np.asarray(file_idx, np.int32)),
            "source_file": pa.array(source_file, pa.string()),
            "source_row": _arr(source_row, pa.int64()),
            "reason": _arr(reason, pa.string()),
            "raw": _arr(raw, pa.string()),
            "chain": pa.array([chain] * n, pa.string()),
            "token": pa.array(token, pa.string()),
            "ts": pa.array(ts, pa.int64()),
            "interval_s": pa.array(np.where(interval > 0, interval, 0), pa.int32(), mask=interval <= 0),
            **{k: pa.array(vals[k], pa.float64()) for k in VALUES},
        },
        schema=_REJECT_SCHEMA,
    )


def _read_part(path: Path) -> pa.Table:
    """A staged part (Arrow IPC), memory-mapped."""
    with pa.memory_map(str(path)) as src:
        return pa.ipc.open_file(src).read_all()


_IVS = np.asarray(STANDARD_INTERVALS, np.int64)
_TS_BITS = 34  # bar ts < 2**34 s (see KEY_SHIFT)


def _series_order(code: np.ndarray, file_idx: np.ndarray, ts: np.ndarray, n_files: int) -> np.ndarray:
    """Order by (code, file, ts): one int64 key sort when the codes fit, else a lexsort."""
    g = code * n_files + file_idx
    if (
        len(g)
        and int(g.max()) < 1 << (63 - _TS_BITS)
        and int(ts.min()) >= 0
        and int(ts.max()) < 1 << _TS_BITS
    ):
        return np.argsort((g << _TS_BITS) | ts, kind="stable")
    return np.lexsort((ts, file_idx, code))


def _version_order(
    code: np.ndarray,
    iv: np.ndarray,
    ts: np.ndarray,
    volume: np.ndarray,
    src: np.ndarray,
    fidx: np.ndarray,
    row: np.ndarray,
) -> np.ndarray:
    """Order by (code, interval, ts, volume, src, file, row): the winner of a key is the last of its group.

    The inputs come in (src, file, row) order (the store's rows, then the new rows in file and row
    order, which :func:`_merge_bucket` guarantees), so a stable sort on the bar key alone leaves the
    versions of a key in that order; only keys with several versions are re-sorted by volume.
    """
    rank = np.searchsorted(_IVS, iv)
    fits = (
        len(code)
        and int(code.max()) < 1 << (60 - _TS_BITS)
        and bool((_IVS[np.minimum(rank, len(_IVS) - 1)] == iv).all())
        and int(ts.min()) >= 0
        and int(ts.max()) < 1 << _TS_BITS
    )
    if not fits:
        return np.lexsort((row, fidx, src, volume, ts, iv, code))
    key = (code << (_TS_BITS + 3)) | (rank.astype(np.int64) << _TS_BITS) | ts
    o = np.argsort(key, kind="stable")
    k = key[o]
    start = np.ones(len(k), bool)
    start[1:] = k[1:] != k[:-1]
    starts = np.flatnonzero(start)
    sizes = np.diff(np.r_[starts, len(k)])
    multi = sizes > 1
    if multi.any():
        m = np.flatnonzero(np.repeat(multi, sizes))
        gid = np.repeat(np.arange(len(starts)), sizes)[m]
        sub = np.lexsort((volume[o[m]], gid))  # stable: equal volumes keep (src, file, row) order
        o[m] = o[m][sub]
    return o


def _merge_bucket(  # noqa: C901 (TODO: split; rewritten for speed in issue 13, not yet cut into one-job helpers)
    home: Home, chain: str, b: int, parts: list[Path | _Rows], files: list[Path], tokens: list[str]
) -> _BucketOut:
    """Intervals, quarantine, conflicts and quality of one (chain, bucket); rewrites its file if it changes.

    ``parts``: the bucket's staged rows (in memory or spilled), in (file, row) order; ``tokens``:
    the token of each series id of the ingest.
    """
    new = pa.concat_tables(
        [p[0].take(pa.array(p[1])) if isinstance(p, tuple) else _read_part(p) for p in parts]
    ).combine_chunks()
    nfile = new["file_idx"].to_numpy().astype(np.int64)
    nrow = new["row"].to_numpy()
    pos = nfile * (1 << 40) + nrow
    if len(pos) > 1 and bool((np.diff(pos) < 0).any()):  # never expected; the conflict rule relies on it
        new = new.take(pa.array(np.argsort(pos, kind="stable")))
        nfile = new["file_idx"].to_numpy().astype(np.int64)
        nrow = new["row"].to_numpy()
    path = _bucket_file(home, chain, b)
    rel = str(path.relative_to(home.root))
    old = None
    if path.exists():
        old = pq.read_table(path, read_dictionary=["token"]).unify_dictionaries().combine_chunks()
        if not old.num_rows:
            old = None
    n_old = old.num_rows if old is not None else 0

    sid = new["sid"].to_numpy()
    sids = np.unique(sid)
    dicts = [np.asarray([tokens[i] for i in sids.tolist()], object)]
    nd = len(sids)
    if old is not None:
        old_tok = old["token"].chunk(0)
        if not pa.types.is_dictionary(old_tok.type):
            old_tok = old_tok.cast(pa.string()).dictionary_encode()
        dicts.append(np.asarray(old_tok.dictionary.cast(pa.string()).to_pylist(), object))
    names, inv = np.unique(np.concatenate(dicts), return_inverse=True)  # code point = UTF-8 byte order
    ncode = inv[:nd][np.searchsorted(sids, sid)].astype(np.int64)
    ocode = (
        inv[nd:][old_tok.indices.to_numpy(zero_copy_only=False)].astype(np.int64)
        if old is not None
        else np.empty(0, np.int64)
    )
    oiv = old["interval_s"].to_numpy().astype(np.int32) if old is not None else np.empty(0, np.int32)
    ots = old["ts"].to_numpy().astype(np.int64) if old is not None else np.empty(0, np.int64)
    oval = {
        k: (old[k].to_numpy().astype(np.float64) if old is not None else np.empty(0, np.float64))
        for k in VALUES
    }

    nts = new["ts"].to_numpy()
    nval = {k: new[k].to_numpy() for k in VALUES}
    has_reason = new["reason"].is_valid().to_numpy(zero_copy_only=False)

    # rules 1-3, per (token, file) series of distinct ts
    order = _series_order(ncode, nfile, nts, len(files))
    sc, sf, st = ncode[order], nfile[order], nts[order]
    first = np.ones(len(order), bool)
    first[1:] = (sc[1:] != sc[:-1]) | (sf[1:] != sf[:-1]) | (st[1:] != st[:-1])
    dpos = np.flatnonzero(first)
    newgrp = np.ones(len(dpos), bool)
    newgrp[1:] = (sc[dpos][1:] != sc[dpos][:-1]) | (sf[dpos][1:] != sf[dpos][:-1])
    offsets = np.r_[np.flatnonzero(newgrp), len(dpos)]
    iv_d = detect_intervals(st[dpos], offsets)
    niv = np.empty(len(order), np.int32)
    niv[order] = iv_d[np.cumsum(first) - 1]
    declared = new["declared_iv"].to_numpy(zero_copy_only=False)
    niv = np.where(declared > 0, declared, niv).astype(np.int32)  # a declared interval wins

    # rule 4 against the store and this ingest's resolved bars
    unres = niv == 0
    if unres.any():
        kc = np.concatenate([ocode, ncode[~unres]])
        kiv = np.concatenate([oiv, niv[~unres]])
        kts = np.concatenate([ots, nts[~unres]])
        niv[unres] = resolve_from_known(ncode[unres], nts[unres], kc, kiv, kts)

    # quarantined rows (reason from the conversion, or no interval)
    bad = has_reason | (niv == 0)
    bi = np.flatnonzero(bad)
    rej = _reject_table(
        [],
        [],
        [],
        [],
        chain,
        np.empty(0, object),
        np.empty(0, np.int64),
        np.empty(0),
        {k: np.empty(0) for k in VALUES},
        np.empty(0, np.int32),
    )
    if len(bi):
        reason = np.asarray(new["reason"].take(pa.array(bi)).to_pylist(), dtype=object)
        und, had = niv[bi] == 0, has_reason[bi]
        reason[und & ~had] = UNDETECTABLE
        if (und & had).any():
            reason[und & had] = reason[und & had] + "; " + UNDETECTABLE
        fnames = np.asarray([str(f) for f in files], object)
        rej = _reject_table(
            list(fnames[nfile[bi]]),
            nrow[bi],
            reason.astype(str),
            new["raw"].take(pa.array(bi, pa.int64())),
            chain,
            names[ncode[bi]],
            nts[bi],
            niv[bi],
            {k: nval[k][bi] for k in VALUES},
            nfile[bi],
        )

    # merge valid new rows with the store: winner = last version of each (token, interval, ts)
    gi = np.flatnonzero(~bad) if len(bi) else None
    pick = (lambda a: a[gi]) if gi is not None else (lambda a: a)
    code = np.concatenate([ocode, pick(ncode)])
    iv = np.concatenate([oiv, pick(niv)])
    ts = np.concatenate([ots, pick(nts)])
    vals = {k: np.concatenate([oval[k], pick(nval[k])]) for k in VALUES}
    n_new = len(code) - n_old
    src = np.concatenate([np.zeros(n_old, np.int8), np.ones(n_new, np.int8)])
    fidx = np.concatenate([np.full(n_old, -1, np.int64), pick(nfile)])
    row = np.concatenate([np.full(n_old, -1, np.int64), pick(nrow)])
    o = _version_order(code, iv, ts, vals["volume"], src, fidx, row)
    code, iv, ts, src, fidx, row = code[o], iv[o], ts[o], src[o], fidx[o], row[o]
    vals = {k: a[o] for k, a in vals.items()}
    n = len(o)
    start = np.ones(n, bool)
    if n:
        start[1:] = (code[1:] != code[:-1]) | (iv[1:] != iv[:-1]) | (ts[1:] != ts[:-1])
    starts = np.flatnonzero(start)
    ng = len(starts)
    win = np.r_[starts[1:] - 1, n - 1] if n else np.empty(0, np.int64)
    if ng == n:  # no key has two versions (the common case): nothing to compare
        same = np.ones(n, bool)
        has_old = src == 0
        conflict_g = np.zeros(ng, bool)
    else:
        gid = np.cumsum(start) - 1
        same = np.ones(n, bool)
        for k in VALUES:
            same &= vals[k] == vals[k][win][gid]
        has_old = np.logical_or.reduceat(src == 0, starts)
        conflict_g = np.logical_or.reduceat(~same, starts)
    new_g = ~has_old
    changed = bool(new_g.any() or (~same & (src == 0)).any())
    new_per_file = (
        np.bincount(fidx[win][new_g], minlength=len(files)) if ng else np.zeros(len(files), np.int64)
    )

    lost = np.flatnonzero(~same)
    if len(lost):
        lost_old = src[lost] == 0
        sup = _reject_table(
            [rel if lo else str(files[f]) for lo, f in zip(lost_old, fidx[lost], strict=True)],
            pa.array(row[lost], pa.int64(), mask=lost_old),
            [SUPERSEDED] * len(lost),
            pa.nulls(len(lost), pa.string()),
            chain,
            names[code[lost]],
            ts[lost],
            iv[lost].astype(np.int64),
            {k: vals[k][lost] for k in VALUES},
            np.where(lost_old, -1, fidx[lost]),
        )
        rej = pa.concat_tables([rej, sup])

    if ng == n:
        w_code, w_iv, w_ts, w_vals = code, iv, ts, vals
    else:
        w_code, w_iv, w_ts = code[win], iv[win], ts[win]
        w_vals = {k: vals[k][win] for k in VALUES}
    file_row = None
    if changed:
        table = pa.table(
            {
                "chain": pa.repeat(pa.scalar(chain, pa.string()), ng),
                "token": pa.array(names, pa.string()).take(pa.array(w_code)),
                "interval_s": pa.array(w_iv, pa.int32()),
                "ts": pa.array(w_ts, pa.int64()),
                **{k: pa.array(w_vals[k], pa.float64()) for k in VALUES},
            },
            schema=STORE_SCHEMA,
        )
        digest = _write_bucket(table, path)
        file_row = {"path": rel, "chain": chain, "bucket": b, "n_rows": ng, "content_hash": digest}
    elif path.exists():
        file_row = {
            "path": rel,
            "chain": chain,
            "bucket": b,
            "n_rows": n_old,
            "content_hash": file_sha256(path),
        }

    # quality of every series of the touched tokens (stored bars, plus series seen only in rejects)
    sel = np.isin(w_code, np.unique(ncode))
    qc, qi, qt, qv = w_code[sel], w_iv[sel], w_ts[sel], w_vals["volume"][sel]
    gstart = np.ones(len(qc), bool)
    gstart[1:] = (qc[1:] != qc[:-1]) | (qi[1:] != qi[:-1])
    qs = series_quality(qt, qv, np.r_[np.flatnonzero(gstart), len(qc)], qi[gstart])
    q_code, q_iv = qc[gstart].astype(np.int64), qi[gstart].astype(np.int64)
    rj = bi[niv[bi] > 0]
    if len(rj):  # series of rejected rows that have no stored bar: a quality row with zero bars
        rkey = np.unique((ncode[rj] << 20) | niv[rj].astype(np.int64))
        extra = rkey[~np.isin(rkey, (q_code << 20) | q_iv)]
        if len(extra):
            q_code = np.r_[q_code, extra >> 20]
            q_iv = np.r_[q_iv, extra & ((1 << 20) - 1)]
            z = np.zeros(len(extra), np.int64)
            qs = {
                k: np.r_[a, np.full(len(extra), np.nan) if k == "zero_volume_share" else z]
                for k, a in qs.items()
            }
    quality = {"chain": np.full(len(q_code), chain, object), "token": names[q_code], "interval_s": q_iv, **qs}
    return _BucketOut(rej, new_per_file, int(conflict_g.sum()), quality, file_row)


def _write_bucket(table: pa.Table, path: Path) -> str:
    """Write one bucket file atomically; returns the SHA-256 of its bytes (hashed in memory, not re-read).

    Only chain and token are dictionary-encoded: prices and volumes rarely repeat, and encoding
    them costs time and bytes for nothing.
    """
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd", use_dictionary=["chain", "token"])
    data = buf.getvalue()
    digest = hashlib.sha256(memoryview(data)).hexdigest()
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        fh.write(memoryview(data))
    return digest


def _quality_frame(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One frame of the per-bucket quality rows (``first_ts``/``last_ts`` null for a series without bars)."""
    if not parts:
        return pd.DataFrame()
    q = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    for c in ("first_ts", "last_ts"):
        q[c] = pd.array(q[c].to_numpy(np.int64), "Int64")
        q.loc[q["n_bars"] == 0, c] = pd.NA
    return q


# ---------------------------------------------------------------------------------------------
# ingest


def ingest_candles(
    home: Home,
    paths: Sequence[str | Path],
    progress: bool = False,
    chain: str | None = None,
    token: str | None = None,
) -> IngestReport:
    """Ingest candle files into the bucketed store (see the module docstring for every rule).

    ``chain`` / ``token`` override what the files' columns or names say (``--chain/--token``);
    ``token`` needs exactly one file. A file that cannot be read at all (empty, header only,
    binary, missing columns, no chain/token) is skipped and reported in ``files_rejected`` while
    the other files are ingested; if no file can be read, that is a :class:`UserError`.
    Runs under the workspace writer lock (another writer waits or, with ``--no-wait``, fails).
    """
    files = collect_files(paths, CANDLE_SUFFIXES, "candle")
    if not files:
        raise UserError(
            f"no candle files ({', '.join(CANDLE_SUFFIXES)}) in {', '.join(str(p) for p in paths)}: "
            "point at the files or the directory that holds them"
        )
    if token is not None and len(files) > 1:
        raise UserError(f"--token names the token of one file, but {len(files)} files were given")
    if chain is not None:
        c = ch.normalize_chain(chain)
        if c is None or not ch.is_valid_chain_name(c):
            raise UserError(f"--chain {chain!r} is not a chain name (e.g. solana, bsc, ethereum, base)")
    with workspace_lock(home, "ingest candles"):
        return _ingest_candles(home, files, progress, chain, token)


def _ingest_candles(
    home: Home, files: list[Path], progress: bool, chain: str | None, token: str | None
) -> IngestReport:
    from alertlab.ingest import recovery

    ingest_id = uuid.uuid4().hex
    begun = recovery.begin(home, ingest_id, "candles", files)  # logged as running before anything is written
    scratch = Path(tempfile.mkdtemp(prefix=".ingest-", dir=home.root))
    duck = ingest_connection(scratch)
    try:
        stage = _Stage(scratch)
        n_read = np.zeros(len(files), np.int64)
        infos: list[dict] = []
        file_errors: dict[int, str] = {}
        with (
            bar("ingest candles: read", total=len(files), enabled=progress) as pb,
            ThreadPoolExecutor(max_workers=1) as hasher,
        ):
            hasher.submit(_warm_kernels)  # numba loads its cached kernels while the files are read
            digests = [hasher.submit(file_sha256, f) for f in files]  # hashed while the files are read
            for i, f in enumerate(files):
                norm, n_rows, fr = None, 0, _FileRead()
                try:
                    for t, rows, bad_utf8 in _read_batches(f, fr):
                        if norm is None:  # the header alone decides columns, chain and token
                            norm = _Normaliser(
                                f, i, t.schema.names, duck, chain=chain, token=token, null_text=fr.null_text
                            )
                        if not t.num_rows:
                            continue
                        staged, rejected = norm.convert(t, rows, bad_utf8, fr.parsed)
                        n_rows += t.num_rows
                        stage.add(staged)
                        stage.add_rejects(rejected)
                    if norm is None or n_rows + len(fr.bad_lines) == 0:
                        raise UserError(
                            f"{f}: no data rows (empty file or header only); remove it or export it again"
                            if norm is not None
                            else f"{f}: empty file (no rows); remove it or export it again"
                        )
                except UserError as exc:
                    if n_rows:  # cannot happen today (all whole-file checks precede the rows); keep it honest
                        raise
                    file_errors[i] = str(exc)
                    infos.append({"sha256": digests[i].result(), "error": str(exc)})
                    pb.advance()
                    continue
                if fr.bad_lines:
                    stage.add_rejects(_bad_line_table(f, i, fr.bad_lines))
                n_read[i] = n_rows + len(fr.bad_lines)
                infos.append(norm.details() | fr.details | {"sha256": digests[i].result()})
                pb.advance()
        if len(file_errors) == len(files):
            recovery.abandon(home, ingest_id, begun)  # nothing was written
            first = next(iter(file_errors.values()))
            raise UserError(
                first
                if len(files) == 1
                else f"none of the {len(files)} candle files could be read; first: {first}"
            )
        stage.flush()

        new_per_file = np.zeros(len(files), np.int64)
        conflicts = 0
        qualities, file_rows = [], []
        keys = sorted(stage.buckets)
        with (
            bar("ingest candles: merge buckets", total=len(keys), enabled=progress) as pb,
            ThreadPoolExecutor(max_workers=merge_workers()) as pool,
        ):
            # buckets are independent (own file, own rows): merged concurrently, collected in order
            outs = pool.map(
                lambda k: _merge_bucket(home, k[0], k[1], stage.buckets.pop(k), files, stage.tokens), keys
            )
            for out in outs:
                stage.add_rejects(out.rejects)
                new_per_file += out.new_per_file
                conflicts += out.conflicts
                qualities.append(out.quality)
                if out.file_row:
                    file_rows.append(out.file_row)
                pb.advance()
        quality = _quality_frame(qualities)
        return _commit(
            home,
            ingest_id,
            files,
            infos,
            n_read,
            new_per_file,
            conflicts,
            quality,
            file_rows,
            stage.reject_parts,
            duck,
            file_errors,
            scratch,
        )
    finally:
        duck.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _warm_kernels() -> None:
    """Load the merge's numba kernels (from numba's cache, ~0.5 s of LLVM set-up) on a side thread."""
    one = np.array([0, 1], np.int64)
    detect_intervals(np.array([T_WARM], np.int64), one)
    series_quality(np.array([T_WARM], np.int64), np.zeros(1), one, np.array([60], np.int64))


T_WARM = 1_700_000_040


def merge_workers() -> int:
    """Buckets merged at once: the cores, at most 4 (each holds one bucket, ~1/64 of a chain's bars)."""
    return max(1, min(4, os.cpu_count() or 1))


def ingest_connection(scratch: Path) -> duckdb.DuckDBPyConnection:
    """The ingest's in-memory DuckDB: ``memory_limit`` from the memory budget, spilling under ``scratch``."""
    con = duckdb.connect()
    limit_connection(con, scratch / "duckdb-tmp")
    return con


def limit_connection(con: duckdb.DuckDBPyConnection, temp_dir: Path | None) -> None:
    """Bound a DuckDB connection by the memory budget (:func:`alertlab.util.memory.duckdb_memory_limit`).

    ``temp_dir`` (inside the ingest's scratch area, removed with it) is where DuckDB spills what
    does not fit.
    """
    con.execute(f"SET memory_limit = '{duckdb_memory_limit()}'")
    if temp_dir is not None:
        con.execute(f"SET temp_directory = '{temp_dir.as_posix()}'")


def _bad_line_table(path: Path, file_idx: int, bad: list) -> pa.Table:
    """Reject records of the lines that could not be read as records (malformed CSV lines)."""
    n = len(bad)
    return pa.table(
        {
            "file_idx": pa.array(np.full(n, file_idx, np.int32)),
            "source_file": pa.array([str(path)] * n, pa.string()),
            "source_row": pa.array([b.line for b in bad], pa.int64()),
            "reason": pa.array([b.reason for b in bad], pa.string()),
            "raw": pa.array([json.dumps({"line": b.text}) for b in bad], pa.string()),
            "chain": pa.nulls(n, pa.string()),
            "token": pa.nulls(n, pa.string()),
            "ts": pa.nulls(n, pa.int64()),
            "interval_s": pa.nulls(n, pa.int32()),
            **{k: pa.nulls(n, pa.float64()) for k in VALUES},
        },
        schema=_REJECT_SCHEMA,
    )


def upsert_quality(con: duckdb.DuckDBPyConnection, quality: pd.DataFrame) -> pd.DataFrame:
    """Replace the ``candle_quality`` rows of ``quality``'s series (conflict/reject counts from ``rejects``)."""
    con.register("_q", quality)
    try:
        con.execute(
            "DELETE FROM candle_quality c USING _q q WHERE c.chain = q.chain AND c.token = q.token "
            "AND c.interval_s = q.interval_s"
        ).fetchall()
        con.execute(
            """INSERT INTO candle_quality (chain, token, interval_s, n_bars, first_ts, last_ts, n_gaps,
                missing_bars, zero_volume_share, n_conflicts, n_rejected)
            WITH r AS (
                SELECT raw->>'chain' AS chain, raw->>'token' AS token,
                       TRY_CAST(raw->>'interval_s' AS INTEGER) AS interval_s,
                       count(DISTINCT CASE WHEN reason = $1 THEN raw->>'ts' END) AS n_conflicts,
                       count(DISTINCT CASE WHEN reason <> $1 THEN source_file || '#' || source_row END)
                           AS n_rejected
                FROM rejects WHERE kind = 'candles' AND TRY_CAST(raw->>'interval_s' AS INTEGER) IS NOT NULL
                GROUP BY ALL)
            SELECT q.chain, q.token, q.interval_s, q.n_bars, q.first_ts, q.last_ts, q.n_gaps,
                   q.missing_bars, q.zero_volume_share, coalesce(r.n_conflicts, 0), coalesce(r.n_rejected, 0)
            FROM _q q LEFT JOIN r ON r.chain = q.chain AND r.token = q.token AND r.interval_s = q.interval_s""",
            [SUPERSEDED],
        ).fetchall()
        return con.execute(
            "SELECT c.* EXCLUDE (updated_at) FROM candle_quality c JOIN _q q ON c.chain = q.chain "
            "AND c.token = q.token AND c.interval_s = q.interval_s ORDER BY c.chain, c.token, c.interval_s"
        ).df()
    finally:
        con.unregister("_q")


def _commit(
    home,
    ingest_id,
    files,
    infos,
    n_read,
    new_per_file,
    conflicts,
    quality,
    file_rows,
    reject_parts,
    duck,
    file_errors=None,
    scratch=None,
):
    """One transaction: rejects, ingest_log, candle_files, candle_quality; returns the report.

    Rejects are keyed by (file content hash, row): the rejects an earlier ingest recorded for a
    file with the same bytes are replaced by this ingest's, so re-ingesting never duplicates them.
    """
    file_errors = file_errors or {}
    parts = [p.as_posix() for p in reject_parts]
    memory = {  # what the run was bounded by, as the ingest's DuckDB reports it
        "budget_gb": memory_budget_gb(),
        "duckdb_memory_limit": duck.execute("SELECT current_setting('memory_limit')").fetchone()[0],
    }
    rej_by_file = np.zeros(len(files), np.int64)
    reasons: dict[str, int] = {}
    sample: list[dict] = []
    if parts:
        q = "SELECT * FROM read_parquet($1) WHERE reason <> $2"
        for fi, nrej in duck.execute(
            f"SELECT file_idx, count(*) FROM ({q}) GROUP BY ALL", [parts, SUPERSEDED]
        ).fetchall():
            rej_by_file[fi] = nrej
        reasons = dict(
            duck.execute(
                f"SELECT reason, count(*) FROM ({q}) GROUP BY ALL ORDER BY 2 DESC, 1", [parts, SUPERSEDED]
            ).fetchall()
        )
        sample = [
            {"file": f, "row": int(r), "reason": s}
            for f, r, s in duck.execute(
                f"SELECT source_file, source_row, reason FROM ({q}) ORDER BY file_idx, source_row LIMIT {SAMPLE_SIZE}",
                [parts, SUPERSEDED],
            ).fetchall()
        ]
    hashes = pd.DataFrame(
        {
            "file_idx": np.arange(len(files), dtype=np.int32),
            "file_sha256": [infos[i]["sha256"] for i in range(len(files))],
        }
    )
    con = home.connect()
    limit_connection(con, scratch / "duckdb-tmp" if scratch is not None else None)
    try:
        con.begin()
        try:
            con.register("_hashes", hashes)
            con.execute(
                "DELETE FROM rejects WHERE kind = 'candles' AND file_sha256 IN "
                "(SELECT file_sha256 FROM _hashes)"
            ).fetchall()
            if parts:
                con.execute(
                    "INSERT INTO rejects (ingest_id, kind, source_file, source_row, reason, raw, file_sha256) "
                    "SELECT $1, 'candles', source_file, source_row, reason, json_object("
                    "'values', coalesce(raw::JSON, json_object('open', open, 'high', high, 'low', low, "
                    "'close', close, 'volume', volume)), 'chain', chain, 'token', token, 'ts', ts, "
                    "'interval_s', interval_s), h.file_sha256 FROM read_parquet($2) r "
                    "LEFT JOIN _hashes h ON h.file_idx = r.file_idx ORDER BY r.file_idx, source_row",
                    [ingest_id, parts],
                ).fetchall()
            for i, msg in file_errors.items():
                con.execute(
                    "INSERT INTO rejects (ingest_id, kind, source_file, source_row, reason, raw, file_sha256) "
                    "VALUES (?, 'candles', ?, NULL, ?, NULL, ?)",
                    [
                        ingest_id,
                        str(files[i]),
                        "file not ingested: " + msg.removeprefix(f"{files[i]}: "),
                        infos[i]["sha256"],
                    ],
                ).fetchall()
            con.unregister("_hashes")
            con.execute(
                "DELETE FROM ingest_log WHERE ingest_id = ? AND status = 'running'", [ingest_id]
            ).fetchall()
            for i, f in enumerate(files):
                acc = int(n_read[i] - rej_by_file[i])
                con.execute(
                    "INSERT INTO ingest_log (ingest_id, kind, source_file, file_sha256, rows_read, rows_accepted, "
                    "rows_rejected, rows_duplicate, rows_new, details, status, pid) "
                    "VALUES (?, 'candles', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        ingest_id,
                        str(f),
                        infos[i]["sha256"],
                        int(n_read[i]),
                        acc,
                        int(rej_by_file[i]),
                        acc - int(new_per_file[i]),
                        int(new_per_file[i]),
                        json.dumps(
                            {k: v for k, v in infos[i].items() if k != "sha256"}
                            | ({"conflicts_in_ingest": conflicts, "memory": memory} if i == 0 else {})
                        ),
                        "rejected" if i in file_errors else "complete",
                        os.getpid(),
                    ],
                ).fetchall()
            if file_rows:
                fr = pd.DataFrame(file_rows)
                con.register("_fr", fr)
                con.execute("DELETE FROM candle_files WHERE path IN (SELECT path FROM _fr)").fetchall()
                con.execute(
                    "INSERT INTO candle_files (path, chain, bucket, n_rows, content_hash) "
                    "SELECT path, chain, bucket, n_rows, content_hash FROM _fr"
                ).fetchall()
                con.unregister("_fr")
            qrows: list[dict] = []
            if len(quality):
                qdf = upsert_quality(con, quality)
                qrows = [
                    {
                        k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v))
                        for k, v in r.items()
                    }
                    for r in qdf.to_dict("records")
                ]
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.close()
    rows_read = int(n_read.sum())
    rows_rejected = int(rej_by_file.sum())
    return IngestReport(
        kind="candles",
        files=[str(f) for f in files],
        rows_read=rows_read,
        rows_accepted=rows_read - rows_rejected,
        rows_new=int(new_per_file.sum()),
        rows_duplicate=rows_read - rows_rejected - int(new_per_file.sum()),
        rows_rejected=rows_rejected,
        reject_reasons={str(k): int(v) for k, v in reasons.items()},
        rejects_sample=sample,
        conflicts=int(conflicts),
        quality=qrows,
        files_rejected=[{"file": str(files[i]), "reason": m} for i, m in sorted(file_errors.items())],
    )
