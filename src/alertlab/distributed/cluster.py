"""Connecting to a Dask cluster: ``tcp://host:port`` (an existing scheduler) or ``local:N``.

``local:N`` starts a ``LocalCluster`` of N worker processes on this machine (one thread each
unless the CPU count allows more) and shuts it down at the end of the run. A remote scheduler is
only connected to (never shut down). Every failure is a :class:`ClusterError` (a ``ValueError``)
with a one-line message: the extra is missing, the address is malformed, the scheduler is
unreachable, the cluster has no workers, or its workers cannot import alertlab.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

ENV_SCHEDULER = "ALERTLAB_DASK_SCHEDULER"
ENV_TIMEOUT = "ALERTLAB_DASK_TIMEOUT"
"""Seconds to wait for the scheduler and its first worker (default 20)."""
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[^\s:/]+(:\d+)?/?$")
_LOCAL = re.compile(r"^local:(\d+)$")


class ClusterError(ValueError):
    """A cluster that cannot be used (bad address, unreachable, extra missing): one-line message."""


def check_address(address: str) -> str:
    """``address`` if it is ``local:N`` (N >= 1) or ``scheme://host[:port]``; else :class:`ClusterError`."""
    a = address.strip()
    m = _LOCAL.match(a)
    if m:
        if int(m.group(1)) < 1:
            raise ClusterError(f"--cluster {address}: local:N needs N >= 1 workers")
        return a
    if _ADDRESS.match(a):
        return a.rstrip("/")
    raise ClusterError(
        f"--cluster {address!r}: expected tcp://HOST:PORT (a running dask scheduler) or local:N "
        f"(N worker processes on this machine)"
    )


def _import_distributed():
    try:
        import distributed  # noqa: F401
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("--cluster needs Dask distributed: pip install 'alertlab[distributed]'") from None
    return Client, LocalCluster


def _worker_info() -> dict[str, Any]:
    """Runs on every worker: can it import this alertlab, and which version?"""
    import alertlab

    return {"version": alertlab.__version__, "pid": os.getpid()}


@contextlib.contextmanager
def connect(
    address: str, *, timeout: float | None = None, echo: Callable[[str], None] | None = None
) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (see :func:`check_address`), closed on exit.

    ``echo`` receives one line naming the cluster, its workers and threads and the dashboard link.
    """
    address = check_address(address)
    Client, LocalCluster = _import_distributed()
    if timeout is None:
        timeout = float(os.environ.get(ENV_TIMEOUT) or 20.0)
    cluster = None
    m = _LOCAL.match(address)
    try:
        if m:
            n = int(m.group(1))
            threads = max(1, (os.cpu_count() or 1) // n)
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=threads,
                processes=True,
                dashboard_address=":0",
                silence_logs=40,
            )
            client = Client(cluster, timeout=timeout)
        else:
            client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {msg}") from None
    try:
        if not m:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError):
                raise ClusterError(
                    f"the Dask scheduler at {address} has no workers (waited {timeout:g} s)"
                ) from None
        try:
            infos = client.run(_worker_info)
        except Exception as exc:  # noqa: BLE001 - deserialisation errors on workers come back as anything
            raise ClusterError(
                f"the workers of {address} cannot run alertlab ({type(exc).__name__}: {exc}); install the "
                f"same alertlab on every worker (or put its src/ on their PYTHONPATH)"
            ) from None
        import alertlab

        other = sorted({i["version"] for i in infos.values()} - {alertlab.__version__})
        if other:
            raise ClusterError(
                f"the workers of {address} run alertlab {', '.join(other)}, this driver "
                f"{alertlab.__version__}: install the same version everywhere"
            )
        if echo is not None:
            threads = sum(client.nthreads().values())
            link = client.dashboard_link if _has_dashboard() else "unavailable (pip install bokeh)"
            echo(f"dask cluster {address}: {len(infos)} workers, {threads} threads · dashboard {link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _has_dashboard() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def session(
    address: str, data: str = "auto", *, echo: Callable[[str], None] | None = None, **chunking: Any
) -> Iterator[Any]:
    """A :class:`alertlab.distributed.tasks.Session` on a fresh connection to ``address``."""
    from alertlab.distributed.tasks import DATA_MODES, Session

    if data not in DATA_MODES:  # before connecting: a typo should not start a cluster
        raise ClusterError(f"--cluster-data must be one of {', '.join(DATA_MODES)}, got {data!r}")
    with connect(address, echo=echo) as client:
        yield Session(client, data, echo=echo, **chunking)


def preflight(address: str, data: str = "auto") -> None:
    """Fail fast, before any windows are cut: a malformed address, an unknown ``--cluster-data``
    or a missing extra (reachability is checked when the run connects)."""
    from alertlab.distributed.tasks import DATA_MODES

    check_address(address)
    if data not in DATA_MODES:
        raise ClusterError(f"--cluster-data must be one of {', '.join(DATA_MODES)}, got {data!r}")
    _import_distributed()
