"""A run folder's files: config.json, log.jsonl (losses every K steps), samples/, progress.gif, losses.png."""
from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

from gan_demo.checkpoint import atomic_write
from gan_demo.loss_history import write_loss_history
from gan_demo.render import gif_bytes, line_plot


class RunFolder:
    #: what a run writes at the top of its folder (besides samples/step_*.png or .txt)
    FILES = ("config.json", "log.jsonl", "resume.pt", "generator.safetensors", "progress.gif", "losses.png")

    def __init__(self, path):
        self.path = Path(path)
        self.samples = self.path / "samples"
        self.log_file = self.path / "log.jsonl"
        self.resume_file = self.path / "resume.pt"
        self.checkpoint = self.path / "generator.safetensors"

    def holds_run(self) -> bool:
        """Whether a run has already written here (so a new one would mix its logs and samples into it)."""
        return any((self.path / f).exists() for f in self.FILES) or bool(self._sample_files())

    def clear(self) -> None:
        """Delete the run's own files (and nothing else the folder may hold), for a clean restart."""
        for f in self.FILES:
            (self.path / f).unlink(missing_ok=True)
        for p in self._sample_files():
            p.unlink(missing_ok=True)

    def _sample_files(self) -> list[Path]:
        return list(self.samples.glob("step_*.*"))       # grids (.png) and, for text, sentences (.txt)

    def create(self) -> "RunFolder":
        self.samples.mkdir(parents=True, exist_ok=True)
        probe = self.path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        return self

    def write_json(self, name: str, obj) -> None:
        text = json.dumps(obj, indent=2)
        atomic_write(self.path / name, lambda tmp: Path(tmp).write_text(text))

    def read_json(self, name: str):
        return json.loads((self.path / name).read_text())

    def append_log(self, record: dict) -> None:
        with open(self.log_file, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_log(self) -> list[dict]:
        """The logged records in step order, one per step: where a step was logged more than once (two workers
        briefly writing the same run), the record written last counts. Lines cut by a kill are skipped."""
        if not self.log_file.is_file():
            return []
        by_step = {}
        for line in self.log_file.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue               # a line cut by a kill
            if isinstance(r, dict) and isinstance(r.get("step"), int):
                by_step[r["step"]] = r
        return [by_step[s] for s in sorted(by_step)]

    def truncate_log(self, step: int) -> None:
        """After a resume, drop records newer than the resumed step (they were never saved in weights)."""
        text = "".join(json.dumps(r) + "\n" for r in self.read_log() if r.get("step", 0) <= step)
        atomic_write(self.log_file, lambda tmp: Path(tmp).write_text(text))     # a kill here keeps the old log

    def sample_frames(self) -> list[Path]:
        return sorted(self.samples.glob("step_*.png"))

    def finish(self, title: str) -> None:
        """The animation of the fixed-latent grids and the loss-curve PNG."""
        imgs = []
        for p in self.sample_frames():
            try:
                im = Image.open(p)
                im.load()
                imgs.append(im)
            except (OSError, ValueError):     # a frame cut short by a kill in an older run: leave it out
                pass
        if imgs:
            (self.path / "progress.gif").write_bytes(gif_bytes(imgs, duration_ms=250))
        self.loss_plot(title).save(self.path / "losses.png")

    def loss_plot(self, title: str) -> Image.Image:
        """The loss curves of the log (losses.png)."""
        log = self.read_log()
        keys = [k for k in ("d_loss", "g_loss", "wasserstein") if any(k in r for r in log)]
        series = {k: [(r["step"], r[k]) for r in log if k in r] for k in keys}
        return line_plot(series, title=title)

    def write_loss_history(self, path) -> None:
        """The log as the compact loss history shipped beside a checkpoint (gan_demo.loss_history)."""
        write_loss_history(path, self.read_log())
