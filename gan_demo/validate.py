"""Checks of values that come from people (the app's forms and API, the Train tab's settings, the CLI's seeds):
one place, one wording. Each returns the value in its clean type or raises `error` (ValueError by default, or a
subclass such as the job manager's LiveError) with a one-line message meant for whoever typed it."""
from __future__ import annotations

import math

import numpy as np

MAX_SEED = 2 ** 32 - 1


def quoted(value) -> str:
    """A bad value as the message quotes it, cut short so a huge input cannot flood the reply; None (an emptied
    box in the app) reads "nothing", not "None"."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def whole(value, what: str, lo: int, hi: int, error=ValueError) -> int:
    """A whole number in [lo, hi]; 3.0 passes, NaN, 3.5, True, '3' and None do not."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise error(f"{what} must be a whole number from {lo} to {hi}, got {quoted(value)}")
    if not lo <= value <= hi:
        raise error(f"{what} must be from {lo} to {hi}, got {quoted(int(value))}")
    return int(value)


def number(value, what: str, lo: float, hi: float, error=ValueError) -> float:
    """A finite number in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise error(f"{what} must be a number from {lo:g} to {hi:g}, got {quoted(value)}")
    if not lo <= value <= hi:
        raise error(f"{what} must be from {lo:g} to {hi:g}, got {value:g}")
    return float(value)


def seed(value, what: str = "seed", error=ValueError) -> int:
    """A seed: a whole number in [0, 2**32 - 1], the range of torch.Generator.manual_seed on every machine."""
    return whole(value, what, 0, MAX_SEED, error)


def flag(value, what: str, error=ValueError) -> bool:
    """A true/false setting; 1, 'yes' and None are not booleans."""
    if not isinstance(value, bool):
        raise error(f"{what} must be true or false, got {quoted(value)}")
    return value
