"""promptc on a distributed engine: Ray Data (the optional `ray` extra).

- `PromptcPredictor`: a program or compiled artifact as a `Dataset.map_batches` class,
  one runtime (LM client, cache) per worker; see the README's Ray recipe.
- `run_ray`: `promptc run --engine ray`, the rows of a run mapped over a cluster.

Ray is imported only inside the functions that need it: this package imports without it.
"""

from __future__ import annotations

from promptc.distributed.predictor import PromptcPredictor, total_usage
from promptc.distributed.ray_run import RayEngine, require_ray, run_ray

__all__ = ["PromptcPredictor", "RayEngine", "require_ray", "run_ray", "total_usage"]
