"""Parallel one-tree enumeration: subtree tasks on local processes or a Dask cluster, with checkpoints.

* :mod:`lrmilp.parallel.tasks` — a task: a node of the search tree named by its prefix, rebuilt and
  searched on a worker for a time budget, handing out the rest of its subtree as new tasks.
* :mod:`lrmilp.parallel.workers` — where tasks run: :class:`Workers` over an executor (local fork
  workers that die with their parent, a Dask cluster, or this process); the only module that imports
  Dask.
* :mod:`lrmilp.parallel.journal` — checkpoints: finished tasks journalled, resumed by a rerun.
* :mod:`lrmilp.parallel.count` — the coordinator, :func:`count_parallel`.
"""

from .count import DEFAULT_BUDGET, DRAIN_POLL_SECONDS, DRAIN_SECONDS, count_parallel
from .journal import Journal, fingerprint
from .tasks import TaskContext, run_task, task_key
from .workers import Workers, connect_dask, default_jobs

__all__ = ["DEFAULT_BUDGET", "DRAIN_POLL_SECONDS", "DRAIN_SECONDS", "Journal", "TaskContext", "Workers", "connect_dask",
           "count_parallel", "default_jobs", "fingerprint", "run_task", "task_key"]
