"""One Train-tab run: its state (Run), the snapshot the page sees (RunView), and the Trainer it drives
(LiveTrainer, with Relay as its callback: events in, extra sample grids, whether to stop)."""
from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_demo.registry import REGISTRY
from training.loop import Trainer

from .. import my_runs

HISTORY_POINTS = 200        # about this many loss records per run, whatever its length
SAMPLE_S = 2.0              # a fresh sample grid at most this often (longer when sampling itself is slow)
STOP_FILE = "STOP"          # its presence stops a chunked run's GPU call (another process)
TERMINAL = ("finished", "stopped", "failed")


# an absolute path in a message (a visitor must not learn the server's folders): its last part is kept
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:])/(?:[^\s'\"():;,/]+/)+(?=[^\s'\"():;,/]+)")


def one_line(e: BaseException) -> str:
    """A failure as the one line a visitor reads: the first line, absolute paths cut to their file names."""
    text = ABSOLUTE_PATH.sub("", (str(e).strip().splitlines() or [""])[0][:300])
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return "out of memory: choose a smaller batch size"
    return text or type(e).__name__


@dataclass(frozen=True)
class RunView:
    """A consistent snapshot of one run."""
    run_id: str
    model: str
    state: str                      # queued, loading, training, stopping, finished, stopped, failed
    step: int
    total: int
    batch: int
    lr: float
    finetune: bool
    device: str
    history: tuple = ()             # loss records {"step", "d_loss", "g_loss"[, "wasserstein"]}
    image: object = None            # uint8 H×W×C grid of the fixed latents (image models)
    text: tuple | None = None       # sample sentences (the text model)
    sample_step: int = -1
    steps_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    time_limit_s: float = 0.0
    queue_position: int = 0         # 1 = next; 0 = not waiting
    slot_free_in_s: float | None = None   # while queued: when the soonest running run must end
    message: str = ""
    error: str | None = None
    stop_reason: str | None = None
    checkpoint: Path | None = None  # the exported generator, once the run has ended with one
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def name(self) -> str:
        """The model name the other tabs know this run by (once it is usable)."""
        return my_runs.name_of(self.run_id)

    @property
    def usable(self) -> bool:
        return self.state in ("finished", "stopped") and self.checkpoint is not None

    @property
    def wasserstein(self) -> bool:
        return REGISTRY[self.model].recipe.loss == "wgangp"


class Run:
    def __init__(self, session: str, run_id: str, model: str, folder: Path, steps: int, batch: int, lr: float,
                 init_from: Path | None, seed: int, device: str, time_limit_s: float):
        self.session, self.id, self.model, self.dir = session, run_id, model, folder
        self.total, self.batch, self.lr, self.init_from, self.seed = steps, batch, lr, init_from, seed
        self.device, self.time_limit_s = device, time_limit_s
        self.cond = threading.Condition()
        self.stop_event = threading.Event()
        self.last_seen = time.monotonic()
        self.started: float | None = None
        self.ended: float | None = None
        self.thread: threading.Thread | None = None
        self.has_slot = False
        self.client: str | None = None          # the caller's address (the per-client bound)
        self.f = dict(state="queued", step=0, history=[], image=None, text=None, sample_step=-1, steps_per_s=None,
                      eta_s=None, message="", error=None, stop_reason=None, checkpoint=None, version=0)

    @property
    def done(self) -> bool:
        return self.f["state"] in TERMINAL

    def update(self, **fields) -> None:
        with self.cond:
            self.f.update(fields)
            self.f["version"] += 1
            self.cond.notify_all()

    def apply(self, ev: dict) -> None:
        """A Trainer event into the run's fields."""
        with self.cond:
            f = self.f
            if ev["type"] == "log":
                rec = {k: float(ev[k]) for k in ("d_loss", "g_loss", "wasserstein") if k in ev}
                f["history"].append({"step": int(ev["step"]), **rec})
                if len(f["history"]) > 4 * HISTORY_POINTS:           # (only after resumes and restarts)
                    f["history"] = f["history"][::2]
                f["steps_per_s"] = float(ev["img_per_s"]) / self.batch
                f["eta_s"] = float(ev["eta_s"])
                if f["state"] == "loading":
                    f["state"] = "training"
            elif ev["type"] == "samples":
                f["image"] = ev.get("image")
                f["text"] = tuple(ev["text"]) if ev.get("text") is not None else None
                f["sample_step"] = int(ev["step"])
            elif ev["type"] == "done":
                f["checkpoint"] = Path(ev["checkpoint"]) if ev.get("checkpoint") else None
            f["step"] = int(ev.get("step", f["step"]))
            f["version"] += 1
            self.cond.notify_all()

    def request_stop(self, reason: str) -> bool:
        """Ask the run to stop (at the next step; a queued run leaves the queue). False if it had ended."""
        with self.cond:
            if self.done or self.stop_event.is_set():
                return False
            self.f["stop_reason"] = reason
            if self.f["state"] in ("loading", "training"):
                self.f["state"] = "stopping"
            self.f["version"] += 1
            self.stop_event.set()
            self.cond.notify_all()
        try:                                 # a chunked run's GPU call (another process) watches for this file
            if self.dir.is_dir():
                (self.dir / STOP_FILE).touch()
        except OSError:
            pass
        return True

    def view(self, **extra) -> RunView:
        with self.cond:
            f = self.f
            now = self.ended or time.monotonic()
            return RunView(self.id, self.model, f["state"], f["step"], self.total, self.batch, self.lr,
                           self.init_from is not None, self.device, tuple(f["history"]), f["image"], f["text"],
                           f["sample_step"], f["steps_per_s"], f["eta_s"],
                           now - self.started if self.started else 0.0, self.time_limit_s,
                           message=f["message"], error=f["error"], stop_reason=f["stop_reason"],
                           checkpoint=f["checkpoint"], version=f["version"], **extra)


class Relay:
    """The Trainer's callback: passes its events on, adds a fresh sample grid every few seconds between the
    trainer's own (sample_fixed, cheap for the models here), and answers whether to stop."""

    def __init__(self, emit, should_stop):
        self.emit, self.should_stop = emit, should_stop
        self.trainer: Trainer | None = None
        self.next_sample = time.monotonic() + SAMPLE_S
        self.done: dict | None = None

    def __call__(self, ev: dict) -> bool:
        self.emit(ev)
        now = time.monotonic()
        if ev["type"] == "samples":
            self.next_sample = now + SAMPLE_S
        elif ev["type"] == "done":
            self.done = ev
        elif ev["type"] == "log" and self.trainer is not None and now >= self.next_sample:
            out = self.trainer.sample_fixed()
            cost = time.monotonic() - now
            self.next_sample = time.monotonic() + max(SAMPLE_S, 25 * cost)     # previews cost ≤ 4% of training
            key = "text" if isinstance(out, list) else "image"
            self.emit({"type": "samples", "step": ev["step"], "total": ev["total"], key: out})
        return self.should_stop()


class LiveTrainer(Trainer):
    """The CLI's Trainer, except that on a CPU the batch-norm statistics are re-measured on fewer batches of 256
    than 20 (the 128-pixel faces would take minutes): 1–4 for the export, so that Stop answers within seconds, and
    1 for the sample grids shown while training, which made the Train tab ~15% slower than the CLI with 4."""

    def __init__(self, *args, keep_resume: bool = True, **kwargs):
        self.keep_resume = keep_resume
        super().__init__(*args, **kwargs)
        if self.device.type != "cuda":
            self.preview_batches = 1

    def save_resume(self) -> None:
        if self.keep_resume:
            super().save_resume()

    def recalibrated_ema(self, batches: int = 20) -> torch.nn.Module:
        if self.device.type != "cuda":
            res = getattr(self.entry.config, "resolution", 0)
            batches = min(batches, 4 if res <= 32 else 2 if res <= 64 else 1)
        return super().recalibrated_ema(batches)


def schedule(steps: int) -> dict:
    log_every = max(1, math.ceil(steps / HISTORY_POINTS))
    return dict(log_every=log_every, sample_every=max(log_every, math.ceil(steps / 10)))
