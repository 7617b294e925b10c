"""Studies on a real PostgreSQL server (fixture ``pg_server``): the documented ``postgresql://`` URL,
the advisory ask lock across "machines", and a 2-process study that loses one process to SIGKILL
mid-run, resumes, and ends exactly like an uninterrupted journal-file study."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from alertlab.optimize.evaluate import EngineSettings
from alertlab.optimize.space import SearchSpace
from alertlab.optimize.storage import RETRIED_ATTR, RETRY_ATTR, AskLock, database_url, open_storage
from alertlab.optimize.study import OptimizeOptions, run_study

from windowgen import random_windows

optuna.logging.set_verbosity(optuna.logging.WARNING)

# irregular grid values: no two neighbourhoods tie on distance, so the recommendation does not
# depend on the order trials were run in
SPACE = SearchSpace.from_dict(
    {
        "tp": {"choices": [1.35, 2.05, 2.9, 5.3, 11.0]},
        "sl": {"choices": [0.32, 0.55, 0.62, 0.86]},
    }
)
N = 20  # grid points
OPTS = dict(
    space=SPACE,
    sampler="grid",
    seed=3,
    trials=N,
    batch_size=3,
    folds=2,
    min_trades=0,
    settings=EngineSettings(fee_bps=10, slippage_bps=20),
)


def test_url_is_bound_to_an_installed_driver():
    assert database_url("postgresql://u:pw@h:5/db") == "postgresql+psycopg://u:pw@h:5/db"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(ValueError, match="not installed"):
        database_url("postgresql+pg8000://u:secret@h/db")
    try:
        database_url("postgresql+pg8000://u:secret@h/db")
    except ValueError as exc:
        assert "secret" not in str(exc)


def test_advisory_lock_serialises_two_machines(pg_server, tmp_path):
    """Two ask locks with different lock directories (as on two machines) exclude each other
    through ``pg_advisory_lock`` alone."""
    url = pg_server.create_database("locks")
    a, b = AskLock(tmp_path / "m1", "s", url), AskLock(tmp_path / "m2", "s", url)
    got = threading.Event()
    try:
        with a:
            t = threading.Thread(target=lambda: (b.__enter__(), got.set(), b.__exit__(None, None, None)))
            t.start()
            assert not got.wait(1.0)  # blocked by the first machine's advisory lock
        assert got.wait(10.0)
        t.join(10)
    finally:
        a.close()
        b.close()


def _victim_with_running_trial(url: str, name: str, deadline: float) -> int:
    """Stop worker processes one at a time (SIGSTOP) until one is caught holding a RUNNING trial,
    SIGKILL it there and return its PID."""
    st = open_storage(url)
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=name, storage=st)
        except KeyError:
            time.sleep(0.05)
            continue
        pids = {t.user_attrs.get("owner", {}).get("pid") for t in study.get_trials(deepcopy=False)} - {None}
        for pid in pids - {os.getpid()}:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            running = [
                t
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if t.user_attrs.get("owner", {}).get("pid") == pid and t.params
            ]
            if running:
                os.kill(pid, signal.SIGKILL)
                return pid
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("never caught a worker with a running trial")


def test_two_workers_killed_mid_run_resume_and_match_a_journal_study(pg_server, tmp_path):
    rng = np.random.default_rng(5)
    w = random_windows(rng, 300, horizon_s=6 * 3600)
    url = pg_server.create_database("study")
    opts = OptimizeOptions(**OPTS, workers=2)
    out: dict = {}

    def run():
        try:
            out["res"] = run_study(w, opts, tmp_path / "pg", study="s", storage=url)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            out["err"] = exc

    th = threading.Thread(target=run)
    th.start()
    victim = _victim_with_running_trial(url, "s", time.monotonic() + 60)
    th.join(120)
    assert not th.is_alive(), "study did not finish"
    if "err" in out:
        raise out["err"]
    res = out["res"]
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert lost and all(t.user_attrs[RETRIED_ATTR] and t.user_attrs["owner"]["pid"] == victim for t in lost)
    assert any("exited without reporting" in n for n in res.notes)
    # exact total: the 20 grid points once each, plus the lost trials that were run again
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == N and len(trials) == N + len(lost) == res.counts["n_trials"]
    points = [(t.params["tp"], t.params["sl"]) for t in done]
    assert len(set(points)) == N
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    retries = {t.user_attrs[RETRY_ATTR] for t in done if RETRY_ATTR in t.user_attrs}
    assert retries == {t.number for t in lost}

    # resume (one process is enough: the process count is not part of the study): nothing left to do
    again = run_study(w, OptimizeOptions(**OPTS), tmp_path / "pg", study="s", storage=url)
    assert again.counts["new_trials"] == 0 and again.counts["n_trials"] == res.counts["n_trials"]

    ref = run_study(w, OptimizeOptions(**OPTS), tmp_path / "journal", study="s")
    assert ref.counts["n_trials"] == N and ref.storage.endswith("journal.log")

    def rec(r):
        d = dict(r.recommended)
        d.pop("trial")
        d["best_train_trial"] = {k: v for k, v in d["best_train_trial"].items() if k != "trial"}
        return d

    assert rec(ref) == rec(res) == rec(again)
    assert ref.dsr is not None and ref.pbo is not None and ref.pbo == res.pbo
