"""Files a run writes at once (metrics, figures, checkpoints): whole or not at all, strict JSON,
with the user's usual file mode."""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"  # `.NAME.<random>.tmp` beside NAME while it is written


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed onto `path` only if the writing
    finished, removed otherwise: `path` holds the old file or the whole new one, never a part.

    The temporary file is created with mode 0o666 less the umask, as `open()` would create
    `path` itself (tempfile's 0o600 would make results unreadable to the user's group).
    A run killed while writing leaves the `.tmp` file; `RunFolder` removes those at its next
    start.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)  # atomic: same folder, same file system
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Writes through a temporary file and a rename, so a reader never sees half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def finite_or_none(value: Any) -> Any:
    """`value` with every NaN or infinite float (also inside dicts and lists) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    return value


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Strict JSON (non-finite numbers as null: bare NaN is not JSON), written atomically."""
    write_text(path, json.dumps(finite_or_none(data), indent=2, allow_nan=False) + "\n")
