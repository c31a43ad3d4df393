"""`hydra/launcher=gpu_per_job` (conf/hydra/launcher/gpu_per_job.yaml): Hydra's joblib launcher
with seqmodels' `jobs_per_gpu`. Each job claims its worker's GPU in
seqmodels/training/jobs.py; the counts are checked by seqmodels.sweeps.multirun.check_launcher
before Hydra writes the sweep folder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher


class GpuPerJobLauncher(JoblibLauncher):
    """joblib's parallel workers, `jobs_per_gpu` of them on each GPU (`n_jobs: null` starts one
    worker per slot: GPUs x jobs_per_gpu)."""

    def __init__(self, jobs_per_gpu: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # joblib.Parallel's arguments
        self.jobs_per_gpu = jobs_per_gpu

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        if self.joblib.get("n_jobs") is None:
            import torch

            self.joblib["n_jobs"] = torch.cuda.device_count() * self.jobs_per_gpu
        return super().launch(job_overrides, initial_job_idx)
