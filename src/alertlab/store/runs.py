"""Run records: every command that computes results logs its config, data fingerprint and code version."""

from __future__ import annotations

import datetime as dt
import functools
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alertlab import __version__
from alertlab.store import Home


@functools.cache
def code_version() -> str:
    """``alertlab.__version__``, plus the git commit (and ``.dirty``) when run from a checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return __version__
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"


@dataclass
class Run:
    """A run being recorded: fill ``fingerprint``, ``cache_hit``, ``counts``, time phases with ``phase``."""

    kind: str
    config: dict
    run_id: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    )
    fingerprint: str = ""
    cache_hit: bool | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 6)

    def provenance(self) -> dict:
        """Key/value metadata written into every export of this run."""
        return {
            "alertlab_version": __version__,
            "code_version": code_version(),
            "run_id": self.run_id,
            "kind": self.kind,
            "config": self.config,
            "fingerprint": self.fingerprint,
        }


def _default(o: Any) -> Any:
    if isinstance(o, dt.date | dt.datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=_default, sort_keys=True)


@contextmanager
def recorded(home: Home, kind: str, config: dict) -> Iterator[Run]:
    """Yield a :class:`Run`; on normal exit it is written to the catalog's ``runs`` table."""
    run = Run(kind, json.loads(to_json(config)))
    t0 = time.perf_counter()
    yield run
    run.timings["total"] = round(time.perf_counter() - t0, 6)
    con = home.connect()
    try:
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                kind,
                run.started_at,
                dt.datetime.now(dt.UTC),
                code_version(),
                to_json(run.config),
                run.fingerprint,
                run.cache_hit,
                to_json(run.timings),
                to_json(run.counts),
            ],
        )
    finally:
        con.close()


def record_result(home: Home, run: Run, name: str, path: str, n_rows: int) -> None:
    con = home.connect()
    try:
        con.execute(
            "INSERT INTO results (run_id, name, path, n_rows) VALUES (?, ?, ?, ?)",
            [run.run_id, name, path, n_rows],
        )
    finally:
        con.close()
