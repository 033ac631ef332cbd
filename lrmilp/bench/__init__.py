"""``lrmilp bench``: batches of runs over models x domains x tasks from a TOML spec.

:func:`load_spec` validates a spec and expands it into runs (:mod:`.spec`); :func:`run_bench`
executes them, each in a killable process with a time limit, appending results as they finish and
skipping runs finished earlier (:mod:`.runner`); task kinds are a registry (:mod:`.tasks`).
"""

from .runner import run_bench, summary_table
from .spec import BenchSpec, Run, load_spec
from .tasks import TASKS, TaskKind

__all__ = ["BenchSpec", "Run", "TASKS", "TaskKind", "load_spec", "run_bench", "summary_table"]
