"""A model's loss history, shipped beside its checkpoint as weights/<name>-losses.json: what the app's Models tab
charts. Written by training's export from the run's log.jsonl, read by the app; the format is defined here only.

    {"format": "gan_demo.loss-history", "version": 1,
     "records": 240,            # log records it was made from
     "bucket_steps": 1,         # 1: one point per record; N: each point is the mean of the records in N steps
     "step": [50, 100, …],      # one per point (a bucket's: the mean step of its records)
     "series": {"d_loss": [...], "g_loss": [...], ...}}     # one value per point, null where none was logged

The series keep the log's names (d_loss, g_loss; WGAN-GP's wasserstein and gp; r1 with an R1 penalty); throughput
and time (img_per_s, elapsed_s) are left out. A long log is cut to at most MAX_POINTS points by averaging equal step
windows, so a spike widens into its window's mean instead of vanishing or standing for its neighbours.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import atomic_write
from .paths import beside_files

FORMAT = "gan_demo.loss-history"
VERSION = 1
MAX_POINTS = 1000
NOT_LOSSES = frozenset({"step", "img_per_s", "elapsed_s", "eta_s"})   # logged beside the losses, not charted


def history_file(folder, name: str) -> Path:
    """Where a model's loss history lies in a weights folder: <folder>/<name>-losses.json."""
    return beside_files(folder, name).loss_history


@dataclass(frozen=True)
class LossHistory:
    step: list[float]
    series: dict[str, list[float | None]]
    records: int = 0
    bucket_steps: int = 1

    def rows(self) -> list[dict]:
        """One {"step", <series>: value, …} dict per point (values that are null left out): the records a loss
        chart draws."""
        return [{"step": s, **{k: v[i] for k, v in self.series.items() if v[i] is not None}}
                for i, s in enumerate(self.step)]

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "records": self.records, "bucket_steps": self.bucket_steps,
                "step": self.step, "series": self.series}


def _number(v) -> float | None:
    """A finite number, or None (a diverged run logs NaN/inf: a gap in the chart, and valid JSON)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _short(v: float | None) -> float | None:
    return None if v is None else float(f"{v:.5g}")          # 5 significant digits: a third of the file size


def downsample(records: list[dict], max_points: int = MAX_POINTS) -> LossHistory:
    """Log records ({"step", "d_loss", …}) → at most max_points points per series: every record where there are
    few enough, else the mean of each window of bucket_steps steps (windows without records are left out)."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    recs = sorted((r for r in records if isinstance(r, dict) and _number(r.get("step")) is not None),
                  key=lambda r: r["step"])
    names = list(dict.fromkeys(k for r in recs for k in r if k not in NOT_LOSSES and _number(r[k]) is not None))
    if not recs:
        return LossHistory([], {k: [] for k in names}, 0, 1)
    first, last = recs[0]["step"], recs[-1]["step"]
    width = 1 if len(recs) <= max_points else max(1, math.ceil((last - first + 1) / max_points))
    buckets: dict[int, list[dict]] = {}
    for i, r in enumerate(recs):
        buckets.setdefault(i if width == 1 else int((r["step"] - first) // width), []).append(r)
    step, series = [], {k: [] for k in names}
    for group in buckets.values():
        s = sum(r["step"] for r in group) / len(group)
        step.append(int(s) if float(s).is_integer() else round(s, 1))
        for k in names:
            vals = [x for x in (_number(r.get(k)) for r in group) if x is not None]
            series[k].append(_short(sum(vals) / len(vals)) if vals else None)
    return LossHistory(step, series, len(recs), int(width))


def write_loss_history(path, records: list[dict], max_points: int = MAX_POINTS) -> LossHistory:
    """Downsample log records and write them as a loss-history file (atomically: never a half-written file)."""
    h = downsample(records, max_points)
    text = json.dumps(h.to_json(), separators=(",", ":"), allow_nan=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return h


def read_loss_history(path) -> LossHistory:
    """A loss-history file → LossHistory; ValueError (one line, naming the file) if it is not one."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path.name}: not a readable loss history ({e.__class__.__name__})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"{path.name}: not a loss history (format is not {FORMAT!r})")
    if not isinstance(d.get("version"), int) or d["version"] > VERSION:
        raise ValueError(f"{path.name}: loss-history version {d.get('version')!r} is newer than this reader's "
                         f"({VERSION})")
    step, series = d.get("step"), d.get("series")
    if not isinstance(step, list) or not all(_number(s) is not None for s in step):
        raise ValueError(f"{path.name}: 'step' must be a list of numbers")
    if not isinstance(series, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and len(v) == len(step)
            and all(x is None or _number(x) is not None for x in v) for k, v in series.items()):
        raise ValueError(f"{path.name}: 'series' must map names to lists of numbers (or null), one per step")
    return LossHistory(step, series, int(_number(d.get("records")) or 0), int(_number(d.get("bucket_steps")) or 1))
