"""Where studies live and how several processes share one: storages, locks, stale trials.

Storage (``--storage``):

* default: an Optuna ``JournalStorage`` with a file backend at ``<home>/studies/<study>/journal.log``
  (append-only operation log; safe for several local processes);
* a path without ``://``: a journal file at that path;
* a SQLAlchemy URL (``sqlite:///f.db``, ``postgresql://user@host/db`` …): Optuna's ``RDBStorage``;
  with a server database, workers on several machines share one study.

Exact trial totals: a worker creates trials only while holding the study's **ask lock** — an
file lock (``filelock``) on ``<study dir>/locks/<name>.lock`` (all processes of one machine) and, for
PostgreSQL, also ``pg_advisory_lock`` on a key derived from the study name (all machines). Under
the lock it fails stale trials, counts every trial of the study and asks at most ``target -
count`` new ones, so ``--trials N`` is never overshot.

Stale trials (a worker killed while its trials were RUNNING). Each trial carries a user attribute
``owner = {host, pid, lock, hb}``: ``lock`` is a file the worker holds an exclusive file lock (``filelock``) on
for its whole life (the kernel drops it when the process dies), ``hb`` a heartbeat timestamp the
worker refreshes while it evaluates. A RUNNING trial is stale, and is marked FAIL (it still counts
as a trial), when

1. its owner ran on this machine and its lock file is missing or no longer locked; or
2. its owner ran on another machine (or there is no owner) and the last heartbeat (else the
   trial's start) is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
from filelock import FileLock, Timeout
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

OWNER_ATTR = "owner"
FAIL_ATTR = "fail_reason"
RETRY_ATTR = "retry_of"
RETRIED_ATTR = "retried_as_new_trial"


def safe_name(name: str) -> str:
    """A file-system-safe rendering of a study name (a short hash keeps distinct names distinct)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "study"
    if s != name:
        s = f"{s}-{zlib.crc32(name.encode()):08x}"
    return s


def is_url(storage: str) -> bool:
    return "://" in storage


_PG_DRIVERS = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "pg8000": "pg8000",
    "psycopg2cffi": "psycopg2cffi",
}


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def database_url(storage: str) -> str:
    """A PostgreSQL URL bound to a driver that is installed; other URLs unchanged.

    ``postgresql://`` (and ``postgres://``) without a driver means SQLAlchemy's default driver —
    psycopg 3 since SQLAlchemy 2.1, psycopg2 before — which may not be the one installed: the URL
    gets the default driver when it is importable, else psycopg 3, else psycopg2. An explicit
    ``postgresql+DRIVER://`` is kept (and must be importable). ``ValueError`` when no driver is.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    s = str(storage)
    scheme, sep, rest = s.partition("://")
    if scheme == "postgres" or scheme.startswith("postgres+"):  # the libpq spelling
        scheme = "postgresql" + scheme[len("postgres") :]
    if not (scheme == "postgresql" or scheme.startswith("postgresql+")):
        return s
    install = "pip install 'alertlab[postgres]' (psycopg 3)"
    if "+" in scheme:
        driver = scheme.split("+", 1)[1]
        if driver in _PG_DRIVERS and not _importable(_PG_DRIVERS[driver]):
            raise ValueError(
                f"--storage {describe_storage(s)}: the {driver} driver is not installed; {install}, "
                f"or use postgresql:// to pick an installed driver"
            )
        return scheme + sep + rest
    try:
        default = make_url("postgresql://" + rest).get_dialect().driver
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ValueError(f"--storage {describe_storage(s)}: not a valid database URL ({exc})") from None
    for driver in (default, "psycopg", "psycopg2"):
        if driver in _PG_DRIVERS and _importable(_PG_DRIVERS[driver]):
            return f"postgresql+{driver}://{rest}"
    raise ValueError(f"--storage {describe_storage(s)}: no PostgreSQL driver is installed; {install}")


def _rdb_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage; a lost race with another process creating the schema of a fresh
    database at the same moment (duplicate type/table) is retried once the winner is done."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for k in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError):
            if k == attempts - 1:
                raise
            time.sleep(0.2 * (k + 1))
    raise AssertionError("unreachable")


def open_storage(storage: str | Path) -> optuna.storages.BaseStorage:
    """An Optuna storage for a SQLAlchemy URL (RDB) or a journal file path."""
    s = str(storage)
    if is_url(s):
        return _rdb_storage(database_url(s))
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(s).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def describe_storage(storage: str | Path) -> str:
    """The storage as shown to users (a URL's password masked)."""
    s = str(storage)
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", s) if is_url(s) else s


# ---------------------------------------------------------------------------------------------
# JSON values with NaN / inf (kept portable: NaN -> null, ±inf -> "inf" / "-inf")


def to_jsonable(x: Any) -> Any:
    """Floats for storage: NaN becomes None, ±inf the strings ``"inf"``/``"-inf"`` (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, str):  # numpy scalar
        x = x.item()
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def float_of(x: Any) -> float:
    """Inverse of :func:`to_jsonable` for one number: None -> NaN, "inf"/"-inf" -> ±inf."""
    return float("nan") if x is None else float(x)


# ---------------------------------------------------------------------------------------------
# locks


def lock_held(path: str | Path) -> bool:
    """True when some process holds the lock on ``path`` (False if the file is missing)."""
    if not Path(path).exists():
        return False
    probe = FileLock(path)
    try:
        probe.acquire(blocking=False)
    except Timeout:
        return True
    probe.release()
    return False


class _PgAdvisoryLock:
    """``pg_advisory_lock`` on one dedicated connection: serialises ask across machines."""

    def __init__(self, url: str, name: str) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        self._sa = sa
        self._engine = sa.create_engine(database_url(url), poolclass=NullPool)
        self._key = int.from_bytes(
            zlib.crc32(f"alertlab:{name}".encode()).to_bytes(4, "big"), "big", signed=True
        )
        self._conn: Any = None

    def acquire(self) -> None:
        self._conn = self._engine.connect()
        self._conn.execute(self._sa.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(self._sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            finally:
                self._conn.close()
                self._conn = None

    def close(self) -> None:
        self.release()
        self._engine.dispose()


class AskLock:
    """The study-wide lock around counting and creating trials (see the module docstring)."""

    def __init__(self, lock_dir: Path, study_name: str, storage: str | Path) -> None:
        self._file = FileLock(Path(lock_dir) / f"{safe_name(study_name)}.lock")
        s = str(storage)
        self._db = _PgAdvisoryLock(s, study_name) if s.startswith(("postgresql", "postgres")) else None

    def __enter__(self) -> AskLock:
        self._file.acquire()
        if self._db is not None:
            try:
                self._db.acquire()
            except BaseException:
                self._file.release()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._db is not None:
                self._db.release()
        finally:
            self._file.release()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def host_key() -> str:
    """This machine: host name plus boot id (containers on different machines differ)."""
    boot = ""
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


class WorkerIdentity:
    """A worker's liveness lock (held for its lifetime) and the ``owner`` attribute of its trials."""

    def __init__(self, workers_dir: Path) -> None:
        self.token = uuid.uuid4().hex[:12]
        self.lock_path = Path(workers_dir) / f"{self.token}.lock"
        self._lock = FileLock(self.lock_path)
        self.host = host_key()

    def __enter__(self) -> WorkerIdentity:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        with contextlib.suppress(OSError):
            self.lock_path.unlink()

    def owner(self) -> dict[str, Any]:
        return {"host": self.host, "pid": os.getpid(), "lock": str(self.lock_path), "hb": time.time()}


def is_stale(
    trial: optuna.trial.FrozenTrial, stale_after: float, now: float | None = None, host: str | None = None
) -> str | None:
    """Why a RUNNING trial is stale, or None when its worker may still be alive (rules above)."""
    now = time.time() if now is None else now
    owner = trial.user_attrs.get(OWNER_ATTR)
    if isinstance(owner, dict) and owner.get("host") == (host or host_key()):
        if not lock_held(owner.get("lock", "")):
            return f"stale: worker pid {owner.get('pid')} on this machine is gone"
        return None
    if isinstance(owner, dict) and "hb" in owner:
        last = float(owner["hb"])
    elif trial.datetime_start is not None:
        last = trial.datetime_start.timestamp()
    else:
        return None
    if now - last > stale_after:
        return f"stale: no heartbeat for {now - last:.0f} s (> {stale_after:g} s)"
    return None


def fail_stale_trials(
    study: optuna.Study, storage: optuna.storages.BaseStorage, stale_after: float
) -> list[int]:
    """Mark the study's stale RUNNING trials FAIL (with ``fail_reason``); returns their numbers.

    A stale trial whose parameters were (being) sampled is queued again (a WAITING trial with the
    same parameters — for the grid sampler the same grid point — and user attribute ``retry_of``;
    the failed one is marked ``retried_as_new_trial``):
    the work lost with a killed worker is redone, so the study evaluates the same parameter sets
    as an uninterrupted one. Call it under the ask lock (see :func:`trials_used`).
    """
    out = []
    host = host_key()
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = is_stale(t, stale_after, now, host)
        if why is None:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, FAIL_ATTR, why)
            grid = "grid_id" in t.system_attrs
            if grid or t.params:  # (attributes only while RUNNING: before the state)
                storage.set_trial_user_attr(t._trial_id, RETRIED_ATTR, True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            out.append(t.number)
        except UpdateFinishedTrialError:  # finished meanwhile (another machine)
            continue
        if grid:  # the same grid point (every worker walks the same seeded grid order)
            attrs: dict[str, Any] = {
                k: t.system_attrs[k] for k in ("grid_id", "search_space") if k in t.system_attrs
            }
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING, system_attrs=attrs, user_attrs={RETRY_ATTR: t.number}
                )
            )
        elif t.params:  # what was sampled is kept, the rest (if any) sampled again
            study.enqueue_trial(t.params, user_attrs={RETRY_ATTR: t.number}, skip_if_exists=False)
    return out


def trials_used(study: optuna.Study) -> tuple[int, int]:
    """``(used, waiting)``: trials that count towards ``--trials`` (all but the stale ones that were
    queued again: their retry counts instead) and WAITING (queued) trials, which are asked first."""
    trials = study.get_trials(deepcopy=False)
    retried = sum(1 for t in trials if t.state == TrialState.FAIL and t.user_attrs.get(RETRIED_ATTR))
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    return len(trials) - retried, waiting


class Heartbeat:
    """Refreshes ``owner.hb`` of RUNNING trials every ``interval`` seconds from a daemon thread."""

    def __init__(
        self,
        storage: optuna.storages.BaseStorage,
        identity: WorkerIdentity,
        trial_ids: Sequence[int],
        interval: float,
    ) -> None:
        self._storage, self._identity, self._ids = storage, identity, list(trial_ids)
        self._interval = max(0.05, float(interval))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="alertlab-heartbeat")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            owner = self._identity.owner()
            for tid in self._ids:
                with contextlib.suppress(UpdateFinishedTrialError):
                    self._storage.set_trial_user_attr(tid, OWNER_ATTR, owner)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial logging and experimental-feature warnings inside the block."""
    import warnings

    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(old)


def canonical_json(x: Any) -> str:
    return json.dumps(to_jsonable(x), sort_keys=True, separators=(",", ":"))
