"""Errors for bad input, raised before any training starts."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value or input that can't work; the message names it and says how to fix it."""


def check_positive(section: str, **values: int | float) -> None:
    """Raises ConfigError for the first value that is not > 0."""
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{section}.{name}={value} must be > 0")


def rounded_up(value: float, digits: int = 2) -> float:
    """`value` rounded up to `digits` significant digits: a bound to suggest in a message that
    the check it comes from then accepts (0.00173 -> 0.0018, where "0.0017" would fail)."""
    import math

    if value <= 0:
        return value
    scale = 10 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale - 1e-9) / scale


def rounded_down(value: float, digits: int = 2) -> float:
    """`value` rounded down to `digits` significant digits (see `rounded_up`)."""
    import math

    if value <= 0:
        return value
    scale = 10 ** (digits - 1 - math.floor(math.log10(value)))
    return math.floor(value * scale + 1e-9) / scale
