"""Use cases: each command of the CLI as one importable call (baseline, backtest, demo), recorded as a run."""
