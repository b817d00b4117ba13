"""Where things are: the repository folder, which the default weights, runs, data and cache folders sit in."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
