"""What a sweep prints besides its jobs' own lines (each job: one labelled line when it ends,
seqmodels/training/console.py): Hydra's lines, without one line per job launched."""

from __future__ import annotations

import logging
import re

# Hydra's launchers log "\t#3 : model=lstm seed=1" for every job they start, and the search
# "Launching 1 jobs locally" for every trial; each job's own line names it when it ends.
LAUNCH_LINES = re.compile(r"\s*#\d+ : |Launching 1 jobs locally$")


class LaunchLines(logging.Filter):
    """Drops Hydra's line per launched job (conf/hydra/hydra_logging/seqmodels.yaml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not LAUNCH_LINES.match(record.getMessage())
