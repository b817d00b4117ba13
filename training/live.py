"""Live training for the app's Train tab: the CLI's `Trainer` in a background thread, shared fairly by visitors.

    from training import live
    m = live.manager()                                  # the process-wide manager, configured from the environment
    view = m.start(session, "mnist-gan", steps=300, batch=64, lr=2e-4)
    while not view.finished:
        view = m.wait(session, view.version)            # returns on news (at the latest after `timeout`)
    m.stop(session)                                     # ends a run cleanly: what was learned is kept

This is the app's one entry point into `training` (imported lazily by gan_demo/ui/train.py); it holds no gradio.

Sharing one server
  * At most GAN_DEMO_MAX_RUNS runs train at once (default 1). Later ones wait in a first-come queue of at most
    GAN_DEMO_MAX_QUEUED (default 4) and see their place in it; beyond that start() refuses: the trainer is busy.
    A session has one run in progress at a time.
  * Every run is bounded: steps and batch size per model and device (`limits`), wall time GAN_DEMO_RUN_TIME_LIMIT_S
    (default 600 s; then it stops cleanly like Stop), memory through those bounds and one shared cache of at most
    two decoded datasets.
  * Heartbeat: the page polls through wait(); a run whose session has not polled for GAN_DEMO_HEARTBEAT_S
    (default 30 s; the tab was closed) is stopped, or leaves the queue; end_session() (Gradio's unload) does it at
    once and deletes the session's runs.
  * A run that crashes (missing data, out of memory, a bug) ends in state "failed" with a one-line message, and its
    slot is free again.
Files: a run writes only to $GAN_DEMO_RUNS_DIR/<session hash>/<run id>/ (see gan_demo.my_runs), never weights/;
when it ends, its generator.safetensors is that session's model "my-run:<run id>". A session keeps its last
KEEP_RUNS runs; folders older than GAN_DEMO_RUNS_KEEP_S (default one day) are deleted.
Data: $GAN_DEMO_DATA, else ./data, else ../shared/data (the offline copies); MNIST and CIFAR-10 are downloaded by
torchvision when absent and the network allows; otherwise the run fails with what to provide.
Hardware: CUDA when present, else the CPU (GAN_DEMO_DEVICE overrides). On Hugging Face ZeroGPU (the `spaces`
package, SPACES_ZERO_GPU set), where CUDA exists only inside @spaces.GPU calls, a run trains in chunks: each GPU
call resumes from the run's resume file, trains for about GAN_DEMO_GPU_CHUNK_S seconds (default 40), saves the
resume file and the generator and returns, so the state lives on the CPU side (on disk) between calls.
TrainingManager(chunk_s=…) or GAN_DEMO_GPU_CHUNK_S selects the same chunked path on any device (the tests run it
on the CPU, where it ends bit for bit where a continuous run does).
"""
from __future__ import annotations

import collections
import contextvars
import gc
import importlib.util
import math
import os
import queue
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_demo import my_runs
from gan_demo.devices import pick_device
from gan_demo.generator import resolve_weights
from gan_demo.registry import REGISTRY, get_entry

from .data import DataError, load_dataset, locate
from .loop import Trainer, TrainingError

REPO = Path(__file__).resolve().parent.parent


def _env_number(name: str, default, kind=float, minimum=1):
    try:
        value = kind(os.environ.get(name) or default)
    except ValueError:
        value = default
    return value if value >= minimum else default


BATCH_RANGE = (8, 256)
LR_RANGE = (1e-5, 1e-2)
MIN_STEPS = 1
HISTORY_POINTS = 200        # about this many loss records per run, whatever its length
SAMPLE_S = 2.0              # a fresh sample grid at most this often (longer when sampling itself is slow)
WATCH_S = 0.5               # how often the watchdog checks heartbeats and time limits
KEEP_RUNS = 3               # finished runs a session keeps (older folders are deleted)
DATA_CACHE = 2              # decoded datasets kept in memory, shared by all runs
STOP_FILE = "STOP"          # its presence stops a chunked run's GPU call (another process)
GPU_MARGIN_S = 30           # a GPU call's duration limit beyond its training budget (set-up, saving)
TERMINAL = ("finished", "stopped", "failed")

# On a CPU: (most steps, default steps, largest batch) per model, sized by the cost of a step so that the
# default run takes well under a minute and the longest one stays near the time limit.
CPU_LIMITS = {
    "mnist-gan": (2000, 300, 256), "mnist-cgan": (2000, 300, 256),
    "mnist-dcgan": (1000, 100, 256), "mnist-lsgan": (1000, 100, 256), "mnist-cdcgan": (1000, 100, 256),
    "mnist-wgangp": (400, 40, 128),
    "cifar10-gan": (1000, 200, 256), "cifar10-dcgan": (500, 50, 128), "cifar10-lsgan": (500, 50, 128),
    "cifar10-wgangp": (200, 20, 64),
    "celeba64-dcgan": (200, 20, 64), "celeba128-dcgan": (100, 10, 32), "celeba128-wgangp": (30, 3, 16),
    "text-wgangp": (20, 2, 16),
}
DEFAULT_CPU_LIMITS = (200, 20, 64)
DATA_HINTS = {"mnist": "mnist/MNIST/raw/*-ubyte (torchvision's MNIST files)",
              "cifar10": "cifar10/cifar10-jpeg.tar.gz (or a folder of images in class folders)",
              "celeba": "celeba/celeba128-webp.tar.gz (or any folder, zip or tar of face images)",
              "text": "text/lines.txt (one sentence per line)"}


class LiveError(ValueError):
    """A request the manager refuses (bad settings, busy trainer); the message is meant for the visitor."""


def _one_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:300]
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return "out of memory: choose a smaller batch size"
    return text or type(e).__name__


def _whole(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise LiveError(f"{what} must be a whole number from {lo:,} to {hi:,}, got {str(value)[:40]!r}")
    return value


def _number(value, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise LiveError(f"{what} must be a number from {lo:g} to {hi:g}, got {str(value)[:40]!r}")
    return float(value)


def minutes(seconds: float) -> str:
    """'45 s', '3 min', '1 h 05 min'."""
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# --- bounds ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    max_steps: int
    default_steps: int
    max_batch: int
    default_batch: int
    default_lr: float
    min_steps: int = MIN_STEPS
    min_batch: int = BATCH_RANGE[0]
    lr_range: tuple = LR_RANGE


def limits(model: str, device="cpu") -> Limits:
    """Steps and batch bounds of a model: the CPU table, or on CUDA ten times the steps (up to the recipe's)."""
    e = get_entry(model)
    most, default, batch = CPU_LIMITS.get(model, DEFAULT_CPU_LIMITS)
    if torch.device(device).type == "cuda":
        most, default, batch = min(e.recipe.steps, 10 * most), min(e.recipe.steps, 5 * default), BATCH_RANGE[1]
    return Limits(most, default, batch, min(e.recipe.batch, batch), e.recipe.lr_g)


# --- data -----------------------------------------------------------------------------------------------------
def data_roots() -> list[Path]:
    """Where datasets are looked for: $GAN_DEMO_DATA alone when set, else ./data, then ../shared/data."""
    if os.environ.get("GAN_DEMO_DATA"):
        return [Path(os.environ["GAN_DEMO_DATA"])]
    return [REPO / "data", REPO.parent / "shared" / "data"]


def _kind(dataset: str) -> str:
    return "celeba" if dataset.startswith("celeba") else dataset


def find_data(dataset: str, root=None) -> Path | None:
    """The first root (`root`, else data_roots()) under which the dataset's files are present."""
    for r in [Path(root)] if root is not None else data_roots():
        try:
            if r.exists() and locate(_kind(dataset), r) is not None:
                return r
        except OSError:
            continue
    return None


def trainable_models(root=None) -> list[str]:
    """The MNIST family and the text GAN always (MNIST downloads; a missing corpus is reported when a run
    starts); CIFAR-10 and faces only when their data is present."""
    return [n for n, e in REGISTRY.items()
            if e.dataset in ("mnist", "text") or find_data(e.dataset, root) is not None]


_data: collections.OrderedDict = collections.OrderedDict()
_data_lock = threading.Lock()


def load_data(dataset: str, root=None):
    """The training split, decoded once and shared by all runs (at most DATA_CACHE datasets in memory).
    DataError says what to provide."""
    found = find_data(dataset, root)
    if found is None and dataset in ("mnist", "cifar10"):        # torchvision may download it here
        found = Path(root) if root is not None else data_roots()[0]
        try:
            found.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"no {dataset} data found and cannot create '{found}' to download it "
                            f"({e.strerror or e}); set GAN_DEMO_DATA to a folder holding "
                            f"{DATA_HINTS[_kind(dataset)]}") from None
    if found is None:
        where = root if root is not None else " or ".join(str(r) for r in data_roots())
        raise DataError(f"no {dataset} training data found under {where}: set GAN_DEMO_DATA to a folder "
                        f"holding {DATA_HINTS[_kind(dataset)]}")
    key = (dataset, str(found.resolve()))
    with _data_lock:                 # one load at a time: two runs of one dataset decode it once
        if key in _data:
            _data.move_to_end(key)
            return _data[key]
        try:
            data = load_dataset(dataset, found)
        except DataError as e:
            raise DataError(f"{_one_line(e).split('; give --data')[0].split(': give --data')[0]}; set "
                            f"GAN_DEMO_DATA to a folder holding {DATA_HINTS[_kind(dataset)]}") from None
        _data[key] = data
        while len(_data) > DATA_CACHE:
            _data.popitem(last=False)
        return data


# --- what the UI sees -----------------------------------------------------------------------------------------
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


class _Run:
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


class _Relay:
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
            self.next_sample = time.monotonic() + max(SAMPLE_S, 10 * cost)
            key = "text" if isinstance(out, list) else "image"
            self.emit({"type": "samples", "step": ev["step"], "total": ev["total"], key: out})
        return self.should_stop()


class _LiveTrainer(Trainer):
    """The CLI's Trainer, except that on a CPU the export re-measures the batch-norm statistics on 1–4 batches of
    256 instead of 20 (the 128-pixel faces would take minutes), so that Stop answers within seconds."""

    def recalibrated_ema(self, batches: int = 20) -> torch.nn.Module:
        if self.device.type != "cuda":
            res = self.entry.config.get("resolution", 0)
            batches = min(batches, 4 if res <= 32 else 2 if res <= 64 else 1)
        return super().recalibrated_ema(batches)


def _schedule(steps: int) -> dict:
    log_every = max(1, math.ceil(steps / HISTORY_POINTS))
    return dict(log_every=log_every, sample_every=max(log_every, math.ceil(steps / 10)))


# --- ZeroGPU: a run as a series of short GPU calls --------------------------------------------------------------
def _chunk(spec: dict, resume: bool, budget_s: float):
    """One GPU call of a chunked run (at module level, so that @spaces.GPU can wrap it): build the trainer on the
    device, resume from the run's resume file, train for about `budget_s` seconds (or until the run's STOP file
    appears or the steps are done), save the resume file and the generator; yields the trainer's events.
    Arguments and events are plain data: on ZeroGPU this runs in a forked process."""
    events: queue.Queue = queue.Queue()
    stop, over = threading.Event(), threading.Event()
    stop_file, deadline = Path(spec["run_dir"]) / STOP_FILE, time.monotonic() + budget_s

    def watch():
        while not over.wait(0.2):
            if stop_file.exists() or time.monotonic() > deadline:
                stop.set()
                return

    def work():
        try:
            entry = get_entry(spec["model"])
            data = load_data(entry.dataset, spec["data_root"])
            relay = _Relay(events.put, stop.is_set)
            trainer = _LiveTrainer(entry, data, spec["run_dir"], steps=spec["steps"], batch=spec["batch"],
                              lr=spec["lr"], device=spec["device"], seed=spec["seed"], callback=relay,
                              stop_event=stop, init_from=spec["init_from"], progress=False,
                              **_schedule(spec["steps"]))
            relay.trainer = trainer
            try:
                if resume:
                    trainer.load_resume()
                trainer.train()
            finally:
                relay.trainer = None      # see _train
        except BaseException as e:        # reported to the caller, which marks the run failed
            events.put({"type": "error", "message": _one_line(e)})
        finally:
            over.set()
            events.put(None)

    threading.Thread(target=watch, name="gan_demo-chunk-watch", daemon=True).start()
    threading.Thread(target=work, name="gan_demo-chunk", daemon=True).start()
    try:
        while (ev := events.get()) is not None:
            if ev["type"] == "error":
                raise TrainingError(ev["message"])
            yield ev
    finally:
        stop.set()


def _zero_gpu():
    """The `spaces` module on Hugging Face ZeroGPU (CUDA only inside @spaces.GPU calls), else None."""
    if importlib.util.find_spec("spaces") is None:
        return None
    import spaces
    config = getattr(getattr(spaces, "config", None), "Config", None)
    return spaces if os.environ.get("SPACES_ZERO_GPU") or getattr(config, "zero_gpu", False) else None


ZERO_GPU = _zero_gpu()
GPU_CHUNK_S = _env_number("GAN_DEMO_GPU_CHUNK_S", 40.0)
# decorated here, at import (before the app launches), as ZeroGPU requires
gpu_chunk = ZERO_GPU.GPU(duration=int(GPU_CHUNK_S + GPU_MARGIN_S))(_chunk) if ZERO_GPU else _chunk


# --- the manager ----------------------------------------------------------------------------------------------
class TrainingManager:
    def __init__(self, *, runs_dir=None, data_root=None, max_runs: int | None = None,
                 max_queued: int | None = None, time_limit_s: float | None = None,
                 heartbeat_s: float | None = None, device=None, chunk_s: float | None = None,
                 keep_runs: int = KEEP_RUNS, keep_s: float | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None   # None: my_runs.runs_root() (env)
        self.data_root = Path(data_root) if data_root is not None else None
        self.max_runs = max_runs or _env_number("GAN_DEMO_MAX_RUNS", 1, int)
        self.max_queued = max_queued if max_queued is not None else _env_number("GAN_DEMO_MAX_QUEUED", 4, int, 0)
        self.time_limit_s = time_limit_s or _env_number("GAN_DEMO_RUN_TIME_LIMIT_S", 600.0)
        self.heartbeat_s = heartbeat_s or _env_number("GAN_DEMO_HEARTBEAT_S", 30.0)
        self.keep_runs, self.keep_s = keep_runs, keep_s or _env_number("GAN_DEMO_RUNS_KEEP_S", 86400.0)
        if chunk_s is None and (ZERO_GPU or os.environ.get("GAN_DEMO_GPU_CHUNK_S")):
            chunk_s = GPU_CHUNK_S
        self.chunk_s = chunk_s
        self.device = "cuda" if ZERO_GPU else str(pick_device(device))
        self._lock = threading.Condition()
        self._runs: dict[str, _Run] = {}
        self._sessions: dict[str, list[str]] = {}
        self._queue: collections.deque[_Run] = collections.deque()
        self._active = 0
        self._closed: set[str] = set()
        self._watchdog: threading.Thread | None = None

    # --- queries ----------------------------------------------------------------------------------------------
    def root(self) -> Path:
        return self.runs_dir or my_runs.runs_root()

    def models(self) -> list[str]:
        return trainable_models(self.data_root)

    def limits(self, model: str) -> Limits:
        return limits(model, self.device)

    def can_finetune(self, model: str) -> bool:
        return self._shipped(model) is not None

    @staticmethod
    def _shipped(model: str) -> Path | None:
        try:
            path = resolve_weights(model)
        except Exception:                  # a Hub download that fails: nothing to fine-tune from
            return None
        return path if path.is_file() else None

    def load(self) -> dict:
        """How busy the trainer is: runs training, runs waiting, and the bounds."""
        with self._lock:
            return {"training": self._active, "queued": len(self._queue), "max_runs": self.max_runs,
                    "max_queued": self.max_queued}

    def view(self, session) -> RunView | None:
        """The session's latest run (None if it has none); counts as a heartbeat."""
        run = self._latest(session)
        if run is None:
            return None
        run.last_seen = time.monotonic()
        return self._view(run)

    def wait(self, session, version: int = -1, timeout: float = 2.0, finished: bool = False) -> RunView:
        """The session's latest run once its version differs from `version` (finished=True: once it has ended),
        or after `timeout` seconds; the call is the session's heartbeat."""
        run = self._latest(session)
        if run is None:
            raise LiveError("no training run in this session")
        run.last_seen = time.monotonic()
        with run.cond:
            run.cond.wait_for(lambda: run.done if finished else run.f["version"] != version, timeout)
        run.last_seen = time.monotonic()
        return self._view(run)

    def _latest(self, session) -> _Run | None:
        with self._lock:
            ids = self._sessions.get(session) if isinstance(session, str) else None
            return self._runs[ids[-1]] if ids else None

    def _view(self, run: _Run) -> RunView:
        with self._lock:
            position = next((i + 1 for i, r in enumerate(self._queue) if r is run), 0)
            free_in = None
            if position:
                now = time.monotonic()
                left = [max(0.0, min(r.time_limit_s - (now - r.started), r.f["eta_s"] or math.inf))
                        for r in self._runs.values() if r.started and not r.done]
                free_in = min(left) if left else None
        return run.view(queue_position=position, slot_free_in_s=free_in)

    # --- actions ----------------------------------------------------------------------------------------------
    def start(self, session, model, steps=None, batch=None, lr=None, finetune=False, seed: int = 0) -> RunView:
        """Queue a run for the session (it starts when a slot is free); LiveError if the settings are out of
        bounds, the session already has a run in progress, or the queue is full."""
        if not isinstance(session, str) or not session or len(session) > 256:
            raise LiveError("no browser session: reload the page")
        models = self.models()
        if model not in models:
            raise LiveError(f"cannot train {str(model)[:40]!r} here; choose one of: {', '.join(models)}")
        lim = self.limits(model)
        steps = lim.default_steps if steps is None else _whole(steps, "steps", lim.min_steps, lim.max_steps)
        batch = lim.default_batch if batch is None else _whole(batch, "batch size", lim.min_batch, lim.max_batch)
        lr = lim.default_lr if lr is None else _number(lr, "learning rate", *lim.lr_range)
        if not isinstance(finetune, bool):
            raise LiveError(f"fine-tune must be true or false, got {str(finetune)[:40]!r}")
        init_from = None
        if finetune:
            init_from = self._shipped(model)
            if init_from is None:
                raise LiveError(f"{model} has no shipped checkpoint to fine-tune (weights/{model}.safetensors is "
                                f"missing): train it from scratch")
        with self._lock:
            mine = [self._runs[i] for i in self._sessions.get(session, [])]
            if any(not r.done for r in mine):
                raise LiveError("you already have a run in progress: stop it first, or wait until it ends")
            if self._active >= self.max_runs and len(self._queue) >= self.max_queued:
                raise LiveError(f"the trainer is busy: {self._active} run(s) training and {len(self._queue)} "
                                f"waiting, the most this server takes; try again in a few minutes")
            self._closed.discard(session)
            self._prune(session)
            run_id = secrets.token_hex(8)
            folder = my_runs.session_dir(session, self.root()) / run_id
            folder.mkdir(parents=True, exist_ok=False)
            run = _Run(session, run_id, model, folder, steps, batch, lr, init_from, seed, self.device,
                       self.time_limit_s)
            self._runs[run_id] = run
            self._sessions.setdefault(session, []).append(run_id)
            if self._active < self.max_runs and not self._queue:      # a free slot: take it now
                self._active += 1
                run.has_slot = True
                run.f["state"] = "loading"
            else:
                self._queue.append(run)
            # the caller's context goes along (on ZeroGPU, `spaces` reads the visitor's request from it)
            context = contextvars.copy_context()
            run.thread = threading.Thread(target=context.run, args=(self._execute, run),
                                          name=f"gan_demo-train-{run_id}", daemon=True)
            run.thread.start()
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="gan_demo-train-watchdog", daemon=True)
                self._watchdog.start()
        return self._view(run)

    def stop(self, session, reason: str = "you pressed Stop") -> RunView | None:
        """Stop the session's run in progress cleanly (within a step); None if it has none."""
        run = self._latest(session)
        if run is None:
            return None
        run.last_seen = time.monotonic()
        if run.request_stop(reason):
            with self._lock:
                self._lock.notify_all()                  # a queued run leaves the queue now
        return self._view(run)

    def end_session(self, session) -> list[str]:
        """The session is over (its tab was closed): stop its run, delete its runs once nothing runs.
        → the names of its runs, for the app to drop from its model cache."""
        with self._lock:
            runs = [self._runs[i] for i in self._sessions.get(session, [])] if isinstance(session, str) else []
            if not runs:
                return []
            self._closed.add(session)
        for run in runs:
            run.request_stop("the page was closed")
        with self._lock:
            self._lock.notify_all()
            if all(r.done for r in runs):
                self._forget(session)
        return [my_runs.name_of(r.id) for r in runs]

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every run and wait for their threads (tests; a server just exits)."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.request_stop("the server is shutting down")
        with self._lock:
            self._lock.notify_all()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout)

    # --- the slot -----------------------------------------------------------------------------------------------
    def _acquire(self, run: _Run) -> bool:
        with self._lock:
            while True:
                if run.stop_event.is_set():
                    self._queue.remove(run)
                    self._queue_moved()
                    return False
                if self._queue[0] is run and self._active < self.max_runs:
                    self._queue.popleft()
                    self._active += 1
                    self._queue_moved()
                    return True
                self._lock.wait(WATCH_S)

    def _release(self) -> None:
        with self._lock:
            self._active -= 1
            self._lock.notify_all()
            self._queue_moved()

    def _queue_moved(self) -> None:
        """Waiting runs' positions changed: wake whoever shows them (called with self._lock held)."""
        for r in self._queue:
            r.update()

    def _watch(self) -> None:
        """Stops runs whose page stopped polling and runs past the time limit; ends when no run is left."""
        while True:
            time.sleep(WATCH_S)
            with self._lock:
                live = [r for r in self._runs.values() if not r.done]
                if not live:
                    self._watchdog = None
                    return
            now = time.monotonic()
            for run in live:
                if now - run.last_seen > self.heartbeat_s:
                    run.request_stop(f"the page stopped asking for updates for {minutes(self.heartbeat_s)} "
                                     f"(tab closed?)")
                elif run.started and now - run.started > run.time_limit_s:
                    run.request_stop(f"the time limit of {minutes(run.time_limit_s)} per run was reached")
            with self._lock:
                self._lock.notify_all()

    # --- one run --------------------------------------------------------------------------------------------------
    def _execute(self, run: _Run) -> None:
        try:
            if run.has_slot or self._acquire(run):
                try:
                    run.started = time.monotonic()
                    outcome = self._train(run)
                finally:
                    self._release()
            else:
                outcome = dict(state="stopped", message="left the queue before starting")
        except Exception as e:
            outcome = dict(state="failed", error=_one_line(e))
        run.ended = time.monotonic()
        try:
            (run.dir / STOP_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        run.update(**outcome)
        with self._lock:
            if run.session in self._closed and all(self._runs[i].done for i in self._sessions.get(run.session, [])):
                self._forget(run.session)

    def _train(self, run: _Run) -> dict:
        entry = get_entry(run.model)
        run.update(state="loading", message=f"loading the {entry.dataset} data and building {run.model}")
        data_root = find_data(entry.dataset, self.data_root) or self.data_root
        load_data(entry.dataset, data_root)                     # fails here, clearly, when the data is missing
        if run.stop_event.is_set():
            return dict(state="stopped", message="stopped before the first step: nothing to keep")
        run.update(state="training", message="")
        if self.chunk_s:
            done = self._train_chunked(run, data_root)
        else:
            relay = _Relay(run.apply, run.stop_event.is_set)
            trainer = _LiveTrainer(entry, load_data(entry.dataset, data_root), run.dir, steps=run.total,
                              batch=run.batch, lr=run.lr, device=run.device, seed=run.seed, callback=relay,
                              stop_event=run.stop_event, init_from=run.init_from, progress=False,
                              **_schedule(run.total))
            relay.trainer = trainer
            try:
                trainer.train()
            finally:
                # trainer → callback → trainer is a cycle: broken here, and any other collected, so that the run's
                # models and optimiser states are freed now rather than at some later garbage collection
                relay.trainer = trainer = None
                gc.collect()
            done = relay.done
        if done is None or not done.get("checkpoint"):
            raise TrainingError("the run ended without exporting its generator")
        step, stopped = int(done["step"]), bool(done.get("stopped")) or int(done["step"]) < run.total
        if step == 0:
            return dict(state="stopped", message="stopped before the first step: nothing to keep")
        my_runs.write_info(run.dir, run.model, step, run.f["stop_reason"] if stopped else None)
        return dict(state="stopped" if stopped else "finished", message="")

    def _train_chunked(self, run: _Run, data_root) -> dict:
        """Calls of `gpu_chunk` until the steps are done or the run is stopped; the state stays on disk."""
        spec = dict(model=run.model, data_root=str(data_root) if data_root is not None else None,
                    run_dir=str(run.dir), steps=run.total, batch=run.batch, lr=run.lr, seed=run.seed,
                    init_from=str(run.init_from) if run.init_from else None, device=run.device)
        # on ZeroGPU the decorated call, whose duration limit allows GPU_CHUNK_S of training; elsewhere a plain call
        chunk, budget = (gpu_chunk, min(self.chunk_s, GPU_CHUNK_S)) if ZERO_GPU else (_chunk, self.chunk_s)
        resume, calls = False, 0
        while True:
            done = None
            for ev in chunk(spec, resume, budget):
                if ev["type"] == "done":
                    done = ev                   # the end of this call; the run's end is decided below
                else:
                    run.apply(ev)
            calls += 1
            if done is None:
                raise TrainingError("a GPU call ended without saving the run")
            resume = True
            if done["step"] >= run.total or run.stop_event.is_set():
                done = {**done, "stopped": done["step"] < run.total}
                run.apply(done)
                return done
            run.update(message=f"GPU call {calls} saved the run at step {done['step']}; continuing")

    def _prune(self, session: str) -> None:
        """Keep a session's last keep_runs runs; delete other sessions' folders older than keep_s.
        (Called with self._lock held.)"""
        ids = self._sessions.get(session, [])
        finished = [i for i in ids if self._runs[i].done]
        for i in finished[:max(0, len(finished) - self.keep_runs + 1)]:
            _remove(self._runs.pop(i).dir)
            ids.remove(i)
        live = {my_runs.session_key(r.session) for r in self._runs.values() if not r.done}
        cutoff = time.time() - self.keep_s
        try:
            folders = [p for p in self.root().iterdir() if my_runs.RUN_ID.fullmatch(p.name)]
        except OSError:
            return
        for p in folders:
            try:
                if p.name not in live and p.is_dir() and not p.is_symlink() and p.stat().st_mtime < cutoff:
                    _remove(p)
            except OSError:
                pass

    def _forget(self, session: str) -> None:
        """Drop a closed session's records and files (called with self._lock held)."""
        for i in self._sessions.pop(session, []):
            self._runs.pop(i, None)
        self._closed.discard(session)
        _remove(my_runs.session_dir(session, self.root()))


def _remove(folder: Path) -> None:
    """Delete a run or session folder (only ones named like ours; never through a link)."""
    if my_runs.RUN_ID.fullmatch(folder.name) and folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


_manager: TrainingManager | None = None
_manager_lock = threading.Lock()


def manager() -> TrainingManager:
    """The process-wide manager (created on first use, configured from the environment)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = TrainingManager()
        return _manager
