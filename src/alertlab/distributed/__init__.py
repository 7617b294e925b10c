"""Scale-out on a Dask distributed cluster (extra ``alertlab[distributed]``).

``--cluster ADDRESS`` (or ``$ALERTLAB_DASK_SCHEDULER``) on ``baseline``, ``backtest`` and
``optimize`` runs the heavy kernel passes on Dask workers: ``tcp://host:8786`` for an existing
scheduler, ``local:N`` for a ``LocalCluster`` of N worker processes on this machine.

* :mod:`alertlab.distributed.cluster`: connecting (clear one-line errors, dashboard link);
* :mod:`alertlab.distributed.tasks`: the work units (alert chunks of the windows for baseline
  metrics; alert chunks × parameter chunks for grids, backtests and optimizer trial batches), how
  windows reach the workers once (a path-cache directory every worker can read, or
  ``client.scatter``), and the driver-side assembly into the exact arrays the local code combines.

Nothing here is imported on the default (local) path; importing this package does not import Dask.
"""

from __future__ import annotations

__all__ = ["cluster", "tasks"]
