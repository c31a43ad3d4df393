"""Errors for bad input, raised before any training starts."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value or input that can't work; the message names it and says how to fix it."""


def check_positive(section: str, **values: int | float) -> None:
    """Raises ConfigError for the first value that is not > 0."""
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{section}.{name}={value} must be > 0")
