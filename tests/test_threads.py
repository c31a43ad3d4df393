"""The default torch threads per task: 1, measured faster than all cores (benchmarks/threads.py)."""

from __future__ import annotations

import pytest
import torch

from seqmodels.training.pipeline import build_run

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("task", ["sine", "memory", "imdb"])
def test_every_task_runs_on_one_thread_by_default(compose_cfg, task):
    assert compose_cfg(f"task={task}").threads == 1
    assert compose_cfg(f"task={task}", "threads=3").threads == 3  # still a plain override
    assert compose_cfg(f"task={task}", "threads=null").threads is None  # one per core


def test_a_run_sets_the_tasks_threads_before_building_anything(compose_cfg):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        build_run(compose_cfg("task=sine"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
