"""The workspace writer lock: one multi-step writer at a time, the others queue.

Writers that change several files and the catalog in steps (``ingest alerts``, ``ingest
candles``, building a path-cache entry, ``cache clear``) hold an exclusive lock on
``<home>/.alertlab.lock`` (``filelock``: an ``fcntl``/``flock`` lock the kernel drops when the
process dies, so a killed writer never leaves a stale lock). Beside it,
``<home>/.alertlab.lock.json`` names the holder (PID, what it does, since when), so a second
writer prints ``waiting for PID 1234 (ingest candles) to finish …`` once and queues; with
``wait=False`` (CLI ``--no-wait``) it fails at once with a :class:`~alertlab.errors.WorkspaceBusy`.

Readers take no lock: they open the catalog read-only (see :meth:`alertlab.store.Home.connect`)
and read Parquet/npy files that writers only ever replace atomically.

The lock is re-entrant within a process (an ingest that builds nothing else just nests), and a
lock acquired by a process also runs :func:`clean_leftovers`: while the lock is held no other
writer can be mid-way, so staging areas and half-written temporaries left by a killed writer
(``kill -9``, power loss) are removed here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator

from filelock import FileLock, Timeout

from alertlab.errors import WorkspaceBusy
from alertlab.store.home import Home

LOCK_NAME = ".alertlab.lock"
INFO_NAME = ".alertlab.lock.json"
# default for callers that do not say: queue (the CLI's --no-wait / $ALERTLAB_NO_WAIT=1 flip it)
DEFAULT_WAIT = os.environ.get("ALERTLAB_NO_WAIT", "") not in ("1", "true", "yes")
_held: dict[str, int] = {}
_mutex = threading.Lock()


def set_default_wait(wait: bool) -> None:
    """Process-wide default for :func:`workspace_lock` (the CLI's ``--no-wait``)."""
    global DEFAULT_WAIT
    DEFAULT_WAIT = wait


def holder(home: Home) -> dict | None:
    """Who holds (or last held) the lock: ``{pid, what, since}``, or None if unknown."""
    try:
        return json.loads((home.root / INFO_NAME).read_text())
    except (OSError, ValueError):
        return None


def _describe(info: dict | None) -> str:
    if not info:
        return "another alertlab process"
    return f"PID {info.get('pid', '?')} ({info.get('what', '?')}, since {info.get('since', '?')})"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def workspace_lock(
    home: Home, what: str, wait: bool | None = None, notify: Callable[[str], None] = _stderr
) -> Iterator[None]:
    """Hold the workspace writer lock for ``what`` (e.g. ``"ingest candles"``).

    Waits for the current holder (telling ``notify`` once who it is) unless ``wait`` is False
    (default :data:`DEFAULT_WAIT`), in which case a busy workspace raises :class:`WorkspaceBusy`.
    """
    home.ensure()
    key = str(home.root)
    with _mutex:
        nested = _held.get(key, 0) > 0
        if nested:
            _held[key] += 1
    if nested:
        try:
            yield
        finally:
            with _mutex:
                _held[key] -= 1
        return
    wait = DEFAULT_WAIT if wait is None else wait
    lock = FileLock(str(home.root / LOCK_NAME), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        info = holder(home)
        if not wait:
            raise WorkspaceBusy(
                f"{home.label} is busy: {_describe(info)} is writing to it; "
                "rerun without --no-wait to queue behind it"
            ) from None
        pid = info.get("pid", "?") if info else "?"
        notify(
            f"waiting for PID {pid} ({info.get('what', '?') if info else 'another alertlab command'}) "
            f"to finish … (--no-wait fails instead)"
        )
        lock.acquire()
    try:
        with _mutex:
            _held[key] = 1
        info = {
            "pid": os.getpid(),
            "what": what,
            "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        tmp = home.root / f"{INFO_NAME}.{os.getpid()}"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, home.root / INFO_NAME)
        clean_leftovers(home)
        yield
    finally:
        with _mutex:
            _held.pop(key, None)
        lock.release()


def is_held(home: Home) -> bool:
    """True when this process holds the workspace lock."""
    return _held.get(str(home.root), 0) > 0


def clean_leftovers(home: Home) -> list[str]:
    """Remove what killed writers left behind; only safe (and only called) under the lock.

    * ``<home>/.ingest-*``: candle-ingest staging areas;
    * ``.<name>.<hex>.tmp`` / ``.old`` files and directories of :mod:`alertlab.store.atomic` in
      the candle store and at the top of the path cache (entries being built).

    Returns the removed paths (relative to the home).
    """
    removed: list[str] = []
    candidates = list(home.root.glob(".ingest-*"))
    if home.candles_dir.exists():  # written by ingest only, always under the lock
        candidates += [p for p in home.candles_dir.rglob(".*") if p.name.endswith((".tmp", ".old"))]
    if home.cache_dir.exists():  # entries are built under the lock; derived/ files are not, so stay out
        candidates += [p for p in home.cache_dir.glob(".*") if p.name.endswith((".tmp", ".old"))]
    for p in candidates:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                p.unlink()
        removed.append(str(p.relative_to(home.root)))
    return removed


__all__ = ["workspace_lock", "set_default_wait", "holder", "is_held", "clean_leftovers", "WorkspaceBusy"]
