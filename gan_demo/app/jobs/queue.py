"""The queue: TrainingManager shares the trainer fairly between visitors (slots, a first-come queue, one run in
progress per session, heartbeats, time limits, each session's run folders); manager() is the process-wide one.
The package docstring (gan_demo/app/jobs/__init__.py) describes the rules."""
from __future__ import annotations

import collections
import contextvars
import gc
import math
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

from gan_demo.devices import pick_device, use_process_threads
from gan_demo.generator import resolve_weights
from gan_demo.paths import find_data
from gan_demo.registry import get_entry
from gan_demo.validate import flag, number, whole
from training.loop import TrainingError

from .. import my_runs
from .data import load_data, trainable_models
from .limits import LiveError, Limits, env_number, limits, minutes
from .runner import LiveTrainer, Relay, Run, RunView, one_line, schedule
from .zerogpu import GPU_CHUNK_S, ZERO_GPU, chunk, gpu_chunk

WATCH_S = 0.5               # how often the watchdog checks heartbeats and time limits
KEEP_RUNS = 3               # finished runs a session keeps (older folders are deleted)
SERVER_FILE = ".server"     # in a session folder: the id of the server process that made it
# what a finished run keeps: the generator and what describes it (the resume file, samples, GIF and plot go)
KEEP_FILES = {my_runs.CHECKPOINT, my_runs.INFO_FILE, "config.json", "log.jsonl", SERVER_FILE}


class TrainingManager:
    def __init__(self, *, runs_dir=None, data_root=None, max_runs: int | None = None,
                 max_queued: int | None = None, time_limit_s: float | None = None,
                 heartbeat_s: float | None = None, device=None, chunk_s: float | None = None,
                 keep_runs: int = KEEP_RUNS, keep_s: float | None = None, max_per_client: int | None = None,
                 quota_mb: float | None = None):
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None   # None: my_runs.runs_root() (env)
        self.data_root = Path(data_root) if data_root is not None else None
        self.max_runs = max_runs or env_number("GAN_DEMO_MAX_RUNS", 1, int)
        self.max_queued = max_queued if max_queued is not None else env_number("GAN_DEMO_MAX_QUEUED", 4, int, 0)
        self.time_limit_s = time_limit_s or env_number("GAN_DEMO_RUN_TIME_LIMIT_S", 600.0)
        self.heartbeat_s = heartbeat_s or env_number("GAN_DEMO_HEARTBEAT_S", 30.0)
        self.keep_runs, self.keep_s = keep_runs, keep_s or env_number("GAN_DEMO_RUNS_KEEP_S", 86400.0)
        self.max_per_client = max_per_client or env_number("GAN_DEMO_MAX_RUNS_PER_CLIENT", 2, int)
        self.quota_mb = quota_mb or env_number("GAN_DEMO_RUNS_QUOTA_MB", 2048.0)
        if chunk_s is None and (ZERO_GPU or os.environ.get("GAN_DEMO_GPU_CHUNK_S")):
            chunk_s = GPU_CHUNK_S
        self.chunk_s = chunk_s
        self.device = "cuda" if ZERO_GPU else str(pick_device(device))
        self._lock = threading.Condition()
        self._runs: dict[str, Run] = {}
        self._sessions: dict[str, list[str]] = {}
        self._queue: collections.deque[Run] = collections.deque()
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

    def _latest(self, session) -> Run | None:
        with self._lock:
            ids = self._sessions.get(session) if isinstance(session, str) else None
            return self._runs[ids[-1]] if ids else None

    def _view(self, run: Run) -> RunView:
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
    def start(self, session, model, steps=None, batch=None, lr=None, finetune=False, seed: int = 0,
              client: str | None = None) -> RunView:
        """Queue a run for the session (it starts when a slot is free); LiveError at once if the settings are out
        of bounds, the session already has a run in progress, the client (its address: API callers may open a new
        session for every call) has max_per_client runs in progress or waiting, the queue is full, or the runs'
        disk quota is used up by runs in progress."""
        if not isinstance(session, str) or not session or len(session) > 256:
            raise LiveError("no browser session: reload the page")
        models = self.models()
        if model not in models:
            raise LiveError(f"cannot train {str(model)[:40]!r} here; choose one of: {', '.join(models)}")
        lim = self.limits(model)
        if steps is not None:
            steps = whole(steps, "steps", lim.min_steps, lim.max_steps, LiveError)
        if batch is not None:
            batch = whole(batch, "batch size", lim.min_batch, lim.max_batch, LiveError)
        if lr is not None:
            lr = number(lr, "learning rate", *lim.lr_range, LiveError)
        steps, batch, lr = steps or lim.default_steps, batch or lim.default_batch, lr or lim.default_lr
        flag(finetune, "fine-tune", LiveError)
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
            if client is not None and sum(not r.done and r.client == client for r in self._runs.values()) \
                    >= self.max_per_client:
                raise LiveError(f"your address already has {self.max_per_client} training runs in progress or "
                                f"waiting, the most one visitor gets; try again when one has ended")
            if self._active >= self.max_runs and len(self._queue) >= self.max_queued:
                raise LiveError(f"the trainer is busy: {self._active} run(s) training and {len(self._queue)} "
                                f"waiting, the most this server takes; try again in a few minutes")
            self._closed.discard(session)
            self._prune(session)
            if not self._within_quota():
                raise LiveError("the server's disk space for training runs is used up by runs in progress; try "
                                "again in a few minutes")
            run_id = secrets.token_hex(8)
            folder = my_runs.session_dir(session, self.root()) / run_id
            folder.mkdir(parents=True, exist_ok=False)
            (folder.parent / SERVER_FILE).write_text(str(os.getpid()))
            run = Run(session, run_id, model, folder, steps, batch, lr, init_from, seed, self.device,
                       self.time_limit_s)
            run.client = client
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
    def _acquire(self, run: Run) -> bool:
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
    def _execute(self, run: Run) -> None:
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
            outcome = dict(state="failed", error=one_line(e))
        run.ended = time.monotonic()
        _slim(run.dir)
        run.update(**outcome)
        with self._lock:
            self._within_quota()
            if run.session in self._closed and all(self._runs[i].done for i in self._sessions.get(run.session, [])):
                self._forget(run.session)

    def _train(self, run: Run) -> dict:
        entry = get_entry(run.model)
        use_process_threads()            # not the 1 thread of a projection that was running when this thread began
        run.update(state="loading", message=f"loading the {entry.dataset} data and building {run.model}")
        data_root = find_data(entry.dataset, self.data_root) or self.data_root
        load_data(entry.dataset, data_root)                     # fails here, clearly, when the data is missing
        if run.stop_event.is_set():
            return dict(state="stopped", message="stopped before the first step: nothing to keep")
        run.update(state="training", message="")
        if self.chunk_s:
            done = self._train_chunked(run, data_root)
        else:
            relay = Relay(run.apply, run.stop_event.is_set)
            trainer = LiveTrainer(entry, load_data(entry.dataset, data_root), run.dir, steps=run.total,
                                  batch=run.batch, lr=run.lr, device=run.device, seed=run.seed, callback=relay,
                                  stop_event=run.stop_event, init_from=run.init_from, progress=False,
                                  keep_resume=False, **schedule(run.total))
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

    def _train_chunked(self, run: Run, data_root) -> dict:
        """Calls of `gpu_chunk` until the steps are done or the run is stopped; the state stays on disk."""
        spec = dict(model=run.model, data_root=str(data_root) if data_root is not None else None,
                    run_dir=str(run.dir), steps=run.total, batch=run.batch, lr=run.lr, seed=run.seed,
                    init_from=str(run.init_from) if run.init_from else None, device=run.device)
        # on ZeroGPU the decorated call, whose duration limit allows GPU_CHUNK_S of training; elsewhere a plain call
        call, budget = (gpu_chunk, min(self.chunk_s, GPU_CHUNK_S)) if ZERO_GPU else (chunk, self.chunk_s)
        resume, calls = False, 0
        while True:
            done = None
            for ev in call(spec, resume, budget):
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

    # --- disk -----------------------------------------------------------------------------------------------------
    def disk_mb(self) -> float:
        """What the runs folder holds, in MiB."""
        return _size(self.root()) / 2 ** 20

    def _within_quota(self) -> bool:
        """Delete finished runs, oldest first, until the runs folder is within quota_mb; → whether it is.
        (Called with self._lock held.)"""
        total = _size(self.root())
        if total <= self.quota_mb * 2 ** 20:
            return True
        live = {r.dir for r in self._runs.values() if not r.done}
        try:
            finished = [run for session in self.root().iterdir() if my_runs.RUN_ID.fullmatch(session.name)
                        for run in session.iterdir() if my_runs.RUN_ID.fullmatch(run.name) and run not in live]
            finished.sort(key=lambda p: p.stat().st_mtime)
        except OSError:
            finished = []
        for folder in finished:
            if total <= self.quota_mb * 2 ** 20:
                break
            total -= _size(folder)
            _remove(folder)
            record = self._runs.pop(folder.name, None)
            if record is not None and folder.name in self._sessions.get(record.session, []):
                self._sessions[record.session].remove(folder.name)
        return total <= self.quota_mb * 2 ** 20

    def clean_leftovers(self) -> int:
        """Delete the session folders that no running server owns (a killed server's; every folder from before
        this server started, if only one server uses the folder); → how many. Called when the app starts."""
        removed = 0
        try:
            folders = [p for p in self.root().iterdir() if my_runs.RUN_ID.fullmatch(p.name)]
        except OSError:
            return 0
        for folder in folders:
            try:
                owner = int((folder / SERVER_FILE).read_text())
            except (OSError, ValueError):
                owner = None
            if owner is not None and my_runs.process_alive(owner):
                continue
            _remove(folder)
            removed += 1
        return removed

    def _forget(self, session: str) -> None:
        """Drop a closed session's records and files (called with self._lock held)."""
        for i in self._sessions.pop(session, []):
            self._runs.pop(i, None)
        self._closed.discard(session)
        _remove(my_runs.session_dir(session, self.root()))


def _size(folder: Path) -> int:
    """Bytes in a folder tree (files that vanish meanwhile count 0)."""
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def _slim(folder: Path) -> None:
    """A run that has ended keeps KEEP_FILES only: its resume file, sample grids and animations go."""
    try:
        for p in folder.iterdir():
            if p.name in KEEP_FILES:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    except OSError:
        pass


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
            _manager.clean_leftovers()          # a killed server's runs, which no session can reach any more
        return _manager
