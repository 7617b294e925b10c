"""The path cache: alert windows cut once from the candle store, content-addressed on disk.

A cache entry lives in ``<home>/cache/windows/<fingerprint>/``:

* ``alerts.parquet``: one row per alert (storage order), ids, status, entry bar;
* ``offsets.npy``, ``ts.npy``, ``dur.npy``, ``open.npy`` … ``volume.npy``, ``high_raw.npy``,
  ``low_raw.npy``: the ragged bar arrays (``high``/``low`` guarded, see ``alertlab.windows.cut``),
  opened memory-mapped so a run pages in only the bars it touches;
* ``meta.json``: the fingerprint's inputs, counts and a BLAKE2 digest of every file (``verify``);
* ``derived/``: results computed purely from the windows (e.g. baseline metrics), keyed by
  their own code version, so a warm rerun recomputes nothing.

The fingerprint covers the selected alerts, the content hashes of the candle buckets they
read, the fetched ranges of their tokens (``fetch_ranges``, when the catalog has that table), the
window rules (interval or native, H, max entry lag, wick guard) and :data:`WINDOWS_FORMAT_VERSION`,
an explicit constant bumped whenever the cut or the cached format changes (not the git commit, so
an unrelated commit does not invalidate the cache; runs still record the commit). Any change gives
a new entry; an unchanged request is a cache hit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import DTypeLike

from alertlab.store import Home, atomic_dir
from alertlab.store.candles import bucket_file as bucket_path
from alertlab.store.candles import bucket_of
from alertlab.store.lock import workspace_lock
from alertlab.store.runs import code_version
from alertlab.util.memory import memory_budget_bytes
from alertlab.windows.cut import cut_windows, load_series
from alertlab.windows.integrity import entry_ok
from alertlab.windows.model import BAR_ARRAYS, STATUS_NAMES, Windows
from alertlab.windows.spec import WindowSpec

WINDOWS_FORMAT_VERSION = 2  # bump on any change of the cut rules, the guard or the cached files
# Window cutting under the memory budget: peak bytes one stored candle row costs a cut step (the
# Arrow read, its numpy copies, the overlap resolution and sort, the guarded arrays), and the share
# of the budget a cut step may use (the rest: per-alert arrays, the alert frame, Python).
CUT_BYTES_PER_ROW = 640  # load_series peaks at ≈ 410 B a row (measured), the cut and gather add ≈ 100
CUT_SHARE = 0.5
BAR_FIELDS = BAR_ARRAYS
ALERT_FIELDS = ("entry_lag_s", "resolution_s", "coverage", "gap_share", "data_end_ts", "n_suspect")
_NPY_HEADER = 128


@dataclass(frozen=True)
class CacheInfo:
    """How a :class:`Windows` was obtained: ``hit`` is True when served from disk."""

    fingerprint: str
    path: Path
    hit: bool
    seconds: float
    n_alerts: int
    n_bars: int


# ---------------------------------------------------------------------------------------------
# fingerprint


def _alerts_digest(alerts: pd.DataFrame) -> str:
    h = hashlib.blake2b(digest_size=16)
    for col in ("alert_id", "caller", "chain", "token"):
        h.update("\x1f".join(alerts[col].astype(str)).encode())
    h.update(np.ascontiguousarray(alerts["ts_ms"].to_numpy(np.int64)).tobytes())
    h.update(np.ascontiguousarray(alerts["is_first_call"].to_numpy(bool)).tobytes())
    return h.hexdigest()


def _candle_digest(home: Home, groups: list[tuple[str, int]]) -> str:
    """Content hashes of exactly the candle buckets the selected alerts read."""
    con = home.connect()
    try:
        rows = dict(con.execute("SELECT path, content_hash FROM candle_files").fetchall())
    finally:
        con.close()
    h = hashlib.blake2b(digest_size=16)
    for chain, b in groups:
        p = bucket_path(home, chain, b)
        rel = str(p.relative_to(home.root))
        # size and mtime too: a bucket rewritten by an ingest that crashed before its catalog
        # commit must not be mistaken for the recorded content
        st = p.stat() if p.exists() else None
        stamp = f"{st.st_size}:{st.st_mtime_ns}" if st else "absent"
        h.update(f"{rel}={rows.get(rel, 'unrecorded')}@{stamp};".encode())
    return h.hexdigest()


def fetch_ends(home: Home, chains: list[str] | None = None) -> dict[tuple[str, str], int]:
    """``(chain, token) -> max(end_ts)`` of the catalog's ``fetch_ranges`` (empty without that table).

    Tokens are matched like the store keys them (EVM addresses lower-cased by the fetcher).
    """
    con = home.connect()
    try:
        row = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'fetch_ranges'"
        ).fetchone()
        assert row is not None  # count(*) always yields one row
        has = row[0]
        if not has:
            return {}
        rows = con.execute(
            "SELECT chain, token, max(end_ts) FROM fetch_ranges WHERE end_ts IS NOT NULL "
            "GROUP BY chain, token"
        ).fetchall()
    finally:
        con.close()
    return {(str(c), str(t)): int(e) for c, t, e in rows if chains is None or c in chains}


def _fetch_digest(home: Home, alerts: pd.DataFrame) -> str:
    ends = fetch_ends(home)
    if not ends:
        return "none"
    keys = sorted({(c, t) for c, t in zip(alerts["chain"], alerts["token"], strict=True)})
    h = hashlib.blake2b(digest_size=16)
    for k in keys:
        if k in ends:
            h.update(f"{k[0]}/{k[1]}={ends[k]};".encode())
    return h.hexdigest()


def fingerprint(home: Home, alerts: pd.DataFrame, spec: WindowSpec) -> tuple[str, dict]:
    """Fingerprint of a window request and the inputs it was made from."""
    groups = sorted({(c, bucket_of(t)) for c, t in zip(alerts["chain"], alerts["token"], strict=True)})
    inputs = {
        "alerts": _alerts_digest(alerts),
        "n_alerts": int(len(alerts)),
        "candles": _candle_digest(home, groups),
        "fetch_ranges": _fetch_digest(home, alerts),
        "interval_s": spec.interval_s,
        "horizon_s": spec.horizon_s,
        "max_entry_lag_s": spec.entry_lag_s,
        "wick_guard": spec.wick_guard,
        "windows_format": WINDOWS_FORMAT_VERSION,
    }
    fp = hashlib.blake2b(json.dumps(inputs, sort_keys=True).encode(), digest_size=12).hexdigest()
    return fp, inputs


# ---------------------------------------------------------------------------------------------
# cutting (rules in alertlab.windows.cut)


def gather(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Flat indices of the concatenated ranges ``[start[i], start[i]+count[i])``."""
    total = int(count.sum())
    if total == 0:
        return np.empty(0, np.int64)
    nz = count > 0
    s, c = start[nz], count[nz]
    ends = np.cumsum(c)
    idx = np.ones(total, np.int64)
    idx[0] = s[0]
    idx[ends[:-1]] = s[1:] - (s[:-1] + c[:-1] - 1)
    return np.cumsum(idx)


# ---------------------------------------------------------------------------------------------
# .npy appender (header reserved up front, patched with the final length)


class _NpyAppender:
    def __init__(self, path: Path, dtype: DTypeLike) -> None:
        self.path, self.dtype, self.n = path, np.dtype(dtype), 0
        self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.digest = hashlib.blake2b(digest_size=16)
        self._header(0)

    def _header(self, n: int) -> None:
        self.fh.seek(0)
        np.lib.format.write_array_header_1_0(
            self.fh,
            {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (n,)},
        )
        if self.fh.tell() != _NPY_HEADER:
            raise RuntimeError(f"unexpected .npy header size {self.fh.tell()} for {self.path}")

    def append(self, arr: np.ndarray) -> None:
        b = np.ascontiguousarray(arr, dtype=self.dtype).tobytes()
        self.fh.seek(0, 2)
        self.fh.write(b)
        self.digest.update(b)
        self.n += len(arr)

    def close(self) -> str:
        self._header(self.n)
        self.fh.close()
        return self.digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# build / load


def _build(
    home: Home, alerts: pd.DataFrame, spec: WindowSpec, out: Path, on_group: Callable[[int], None] | None
) -> dict:
    """Cut every alert's window, one run of a bucket's tokens at a time (runs sized from the memory
    budget, see :func:`token_chunks`), appending the bars to the .npy files as it goes."""
    a = alerts.reset_index(drop=True)
    a = a.assign(_bucket=[bucket_of(t) for t in a["token"]])
    a = a.sort_values(["chain", "_bucket", "token", "ts_ms", "alert_id"], kind="stable").reset_index(
        drop=True
    )
    dtypes = {k: (np.int64 if k in ("ts", "dur") else np.float64) for k in BAR_FIELDS}
    apps = {k: _NpyAppender(out / f"{k}.npy", dt) for k, dt in dtypes.items()}
    n = len(a)
    per: dict[str, np.ndarray] = {
        "status": np.zeros(n, np.int8),
        "entry_ts": np.zeros(n, np.int64),
        "entry_price": np.full(n, np.nan),
        "entry_lag_s": np.full(n, -1, np.int64),
        "resolution_s": np.zeros(n, np.int64),
        "coverage": np.zeros(n),
        "gap_share": np.full(n, np.nan),
        "data_end_ts": np.zeros(n, np.int64),
        "n_suspect": np.zeros(n, np.int64),
    }
    counts = np.zeros(n, np.int64)
    ends = fetch_ends(home)
    finest = 0
    n_chunks = 0
    max_rows = cut_rows_per_chunk()
    for (chain, b), bucket_grp in a.groupby(["chain", "_bucket"], sort=True):
        path = bucket_path(home, chain, int(b))
        chunks = token_chunks(path, sorted(set(bucket_grp["token"])), max_rows)
        for tokens in chunks:
            # consecutive tokens of the sorted group: their alerts are a consecutive slice of it, so
            # the bars are appended in the same order whatever the chunking
            grp = bucket_grp if len(chunks) == 1 else bucket_grp[bucket_grp["token"].isin(tokens)]
            finest = _cut_chunk(home, spec, chain, path, tokens, grp, ends, per, counts, apps, finest)
            n_chunks += 1
        if on_group:
            on_group(len(bucket_grp))
    digests = {f"{k}.npy": app.close() for k, app in apps.items()}
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    np.save(out / "offsets.npy", offsets)
    table = pa.table(
        {
            "alert_id": a["alert_id"].astype(str).to_numpy(object),
            "caller": a["caller"].astype(str).to_numpy(object),
            "chain": a["chain"].astype(str).to_numpy(object),
            "token": a["token"].astype(str).to_numpy(object),
            "alert_ts_ms": a["ts_ms"].to_numpy(np.int64),
            "is_first_call": a["is_first_call"].to_numpy(bool),
            **per,
        }
    )
    pq.write_table(table, out / "alerts.parquet")
    digests["offsets.npy"] = _file_digest(out / "offsets.npy")
    digests["alerts.parquet"] = _file_digest(out / "alerts.parquet")
    status = per["status"]
    interval = spec.interval_s or finest or 60
    return {
        "digests": digests,
        "digest_skip": {f"{k}.npy": _NPY_HEADER for k in apps},
        "n_alerts": n,
        "n_bars": int(offsets[-1]),
        "cut_chunks": n_chunks,
        "interval_s": int(interval),
        "code_version": code_version(),
        "status_counts": {name: int((status == c).sum()) for c, name in enumerate(STATUS_NAMES)},
    }


def _cut_chunk(
    home: Home,
    spec: WindowSpec,
    chain: str,
    path: Path,
    tokens: list[str],
    grp: pd.DataFrame,
    ends: dict[tuple[str, str], int],
    per: dict[str, np.ndarray],
    counts: np.ndarray,
    apps: dict[str, _NpyAppender],
    finest: int,
) -> int:
    """Cut the windows of the alerts ``grp`` (all on ``tokens`` of one bucket) and append their bars;
    returns the finest bar duration seen so far."""
    idx = grp.index.to_numpy()
    series = load_series(path, tokens, spec.interval_s, spec.wick_guard)
    data_end = series["token_end"].copy()
    for q, tok in enumerate(tokens):
        data_end[q] = max(int(data_end[q]), ends.get((chain, tok), 0))
    codes = np.searchsorted(np.asarray(tokens, dtype=object), grp["token"].to_numpy(object))
    cut = cut_windows(
        codes, grp["ts_ms"].to_numpy(np.int64), series, data_end, spec.horizon_s, spec.entry_lag_s
    )
    for k in per:
        per[k][idx] = cut[k]
    counts[idx] = cut["count"]
    flat = gather(cut["start"], cut["count"])
    for k, app in apps.items():
        app.append(series[k][flat])
    if len(flat):
        d = int(series["dur"][flat].min())
        finest = d if finest == 0 else min(finest, d)
    return finest


def cut_rows_per_chunk() -> int:
    """Stored candle rows one cut step may load: :data:`CUT_SHARE` of the memory budget over
    :data:`CUT_BYTES_PER_ROW`."""
    return max(1, int(memory_budget_bytes() * CUT_SHARE) // CUT_BYTES_PER_ROW)


def token_chunks(path: Path, tokens: list[str], max_rows: int) -> list[list[str]]:
    """Split the sorted ``tokens`` of one bucket file into consecutive runs of at most ``max_rows``
    stored rows (a token with more rows than that gets a run of its own: one token's series is
    the unit the guard and the overlap rules work on). A bucket that fits is one run, unread."""
    if len(tokens) <= 1 or not path.exists():
        return [tokens]
    if pq.ParquetFile(path).metadata.num_rows <= max_rows:
        return [tokens]
    rows = dict.fromkeys(tokens, 0)
    col = pq.read_table(path, columns=["token"], read_dictionary=["token"]).column("token")
    for chunk in col.chunks:
        if not len(chunk):
            continue
        names = chunk.dictionary.to_pylist()
        n = np.bincount(chunk.indices.fill_null(0).to_numpy(zero_copy_only=False), minlength=len(names))
        for name, k in zip(names, n.tolist(), strict=True):
            if name in rows:
                rows[name] += k
    del col
    out: list[list[str]] = [[]]
    held = 0
    for tok in tokens:
        k = rows[tok]
        if out[-1] and held + k > max_rows:
            out.append([])
            held = 0
        out[-1].append(tok)
        held += k
    return out


def _file_digest(path: Path, skip: int = 0) -> str:
    """BLAKE2 of a file's bytes after the first ``skip`` (the appended arrays hash their data only)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        fh.seek(skip)
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def load_entry(path: Path, fp: str = "") -> Windows:
    """Open a cache entry memory-mapped."""
    meta = json.loads((path / "meta.json").read_text())
    t = pq.read_table(path / "alerts.parquet")
    # entries of an older format (no dur/raw arrays, fewer alert columns) still open; the missing
    # fields are derived by Windows (uniform bars of interval_s, unguarded)
    arr = {k: np.load(path / f"{k}.npy", mmap_mode="r") for k in BAR_FIELDS if (path / f"{k}.npy").exists()}
    offsets = np.load(path / "offsets.npy")
    inputs = meta["inputs"]
    extra = {k: t[k].to_numpy() for k in ALERT_FIELDS if k in t.column_names}
    return Windows(
        interval_s=int(meta.get("interval_s") or inputs["interval_s"]),
        horizon_s=int(inputs["horizon_s"]),
        alert_id=t["alert_id"].to_numpy(zero_copy_only=False).astype(object),
        caller=t["caller"].to_numpy(zero_copy_only=False).astype(object),
        chain=t["chain"].to_numpy(zero_copy_only=False).astype(object),
        token=t["token"].to_numpy(zero_copy_only=False).astype(object),
        alert_ts_ms=t["alert_ts_ms"].to_numpy(),
        is_first_call=t["is_first_call"].to_numpy(zero_copy_only=False),
        status=t["status"].to_numpy().astype(np.int8),
        entry_ts=t["entry_ts"].to_numpy(),
        entry_price=t["entry_price"].to_numpy(),
        offsets=offsets,
        fingerprint=fp or path.name,
        meta=meta,
        **arr,
        **extra,
    )


# Counters for tests and reports: how often windows were built vs served from disk.
COUNTERS = {"builds": 0, "hits": 0}


def get_windows(
    home: Home,
    alerts: pd.DataFrame,
    spec: WindowSpec,
    force: bool = False,
    progress: bool = False,
) -> tuple[Windows, CacheInfo]:
    """Windows for ``alerts`` (columns alert_id, caller, chain, token, ts_ms, is_first_call).

    Served from the path cache when an entry with the same fingerprint exists (``hit``),
    otherwise cut from the candle store and written atomically. ``force`` rebuilds.
    """
    from alertlab.util.progress import bar

    t0 = time.perf_counter()
    fp, inputs = fingerprint(home, alerts, spec)
    path = home.cache_dir / fp
    hit = (path / "meta.json").exists() and not force and entry_ok(path)  # a damaged entry is rebuilt
    if hit:
        COUNTERS["hits"] += 1
    else:
        COUNTERS["builds"] += 1
        with (
            workspace_lock(home, "path cache build"),
            atomic_dir(path) as tmp,
            bar("cutting windows", len(alerts), progress) as pb,
        ):
            built = _build(home, alerts, spec, tmp, pb.advance)
            meta = {
                "fingerprint": fp,
                "inputs": inputs,
                "created_at": time.time(),
                "build_seconds": time.perf_counter() - t0,
                **built,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    w = load_entry(path, fp)
    info = CacheInfo(fp, path, hit, time.perf_counter() - t0, w.n, int(w.offsets[-1]))
    return w, info


# ---------------------------------------------------------------------------------------------
# derived results and maintenance


def derived_path(info_or_path: CacheInfo | Path, name: str) -> Path:
    """Where a result derived purely from a cache entry is kept (``derived/<name>``)."""
    base = info_or_path.path if isinstance(info_or_path, CacheInfo) else info_or_path
    return base / "derived" / name


def list_entries(home: Home) -> list[dict]:
    """One dict per cache entry: fingerprint, rules, counts, size, creation time."""
    out: list[dict] = []
    if not home.cache_dir.exists():
        return out
    for p in sorted(home.cache_dir.iterdir()):
        if p.name.startswith(".") or not (p / "meta.json").exists():
            continue
        m = json.loads((p / "meta.json").read_text())
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        out.append(
            {
                "fingerprint": p.name,
                "interval_s": m["inputs"]["interval_s"] or "native",
                "horizon_h": m["inputs"]["horizon_s"] / 3600,
                "n_alerts": m["n_alerts"],
                "n_bars": m["n_bars"],
                "size_mb": round(size / 1e6, 2),
                "created_at": m["created_at"],
                "windows_format": m["inputs"].get("windows_format"),
                "code_version": m.get("code_version", m["inputs"].get("code_version")),
                **{f"n_{k}": v for k, v in m["status_counts"].items()},
            }
        )
    return out


def verify_entries(home: Home) -> list[dict]:
    """Re-hash every file of every entry against its meta.json; report mismatches."""
    out = []
    for e in list_entries(home):
        p = home.cache_dir / e["fingerprint"]
        meta = json.loads((p / "meta.json").read_text())
        skips = meta.get("digest_skip", {})
        bad = [
            name
            for name, dig in meta["digests"].items()
            if not (p / name).exists() or _file_digest(p / name, skips.get(name, 0)) != dig
        ]
        try:
            w = load_entry(p)
            if int(w.offsets[-1]) != len(w.ts) or len(w.offsets) != w.n + 1:
                bad.append("offsets")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a verify failure
            bad.append(f"load: {exc}")
        out.append({"fingerprint": e["fingerprint"], "ok": not bad, "problems": bad})
    return out


def clear_entries(home: Home, fingerprints: list[str] | None = None) -> int:
    """Delete all cache entries (or the given ones, by prefix); returns how many."""
    n = 0
    for e in list_entries(home):
        if fingerprints and not any(e["fingerprint"].startswith(f) for f in fingerprints):
            continue
        shutil.rmtree(home.cache_dir / e["fingerprint"])
        n += 1
    if not fingerprints and home.cache_dir.exists():
        for p in home.cache_dir.glob(".*.tmp"):
            shutil.rmtree(p, ignore_errors=True)
    return n
