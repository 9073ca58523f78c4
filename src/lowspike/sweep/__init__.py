"""Run the DVC pipeline's stale stages as Ray tasks, many at once, with DVC as the one record.

``python -m lowspike.sweep`` (``make repro``) plans with DVC's API, runs one Ray task per
stale stage in dependency order on a local Ray instance or an existing cluster, and records
every finished stage in dvc.lock and the DVC cache exactly as ``dvc repro`` would.
``python -m lowspike.sweep plan --params profiles/paper.yaml`` prices a params profile.
"""

from .pipeline import Pipeline, Recorder, StageSpec, SweepError, plan
from .runner import SweepOptions, SweepReport, run_sweep

__all__ = ["Pipeline", "Recorder", "StageSpec", "SweepError", "SweepOptions", "SweepReport", "plan", "run_sweep"]
