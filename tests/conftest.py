"""Shared fixtures: a fresh workspace (``home``) and the real data set (``real_data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertlab.store import Home

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """An empty workspace in a temporary directory."""
    return Home(tmp_path / "home")


@pytest.fixture
def real_data() -> Path:
    """``../shared/data/real`` beside the repository; the test is skipped when it is absent."""
    if not (REAL_DATA / "alerts.csv").exists():
        pytest.skip(f"real data not found at {REAL_DATA}: clone alertlab next to shared/ to run these tests")
    return REAL_DATA


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server (Debian's package) in a temp dir on a random port, stopped by PID."""
    from services import PostgresServer, pg_bindir

    bindir = pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin: "
            "apt-get install postgresql to run the PostgreSQL storage tests"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg (3) not installed: pip install -e '.[test]' to run the PostgreSQL storage tests")
    srv = PostgresServer(bindir).start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def dask_cluster():
    """A real dask scheduler and two dask worker processes on 127.0.0.1, stopped by PID."""
    from services import DaskCluster, have_dask

    if not have_dask():
        pytest.skip("dask.distributed not installed: pip install -e '.[test]' to run the cluster tests")
    c = DaskCluster(n_workers=2).start()
    try:
        yield c
    finally:
        c.close()
