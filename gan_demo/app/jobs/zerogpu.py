"""Hugging Face ZeroGPU, where CUDA exists only inside @spaces.GPU calls: a run trains as a series of short GPU
calls (`chunk`), each resuming from the run's resume file and saving it again, so the state lives on disk between
calls. Any device can run the same path (TrainingManager(chunk_s=…)); on a CPU it ends bit for bit where a
continuous run does."""
from __future__ import annotations

import importlib.util
import os
import queue
import threading
import time
from pathlib import Path

from gan_demo.registry import get_entry
from training.loop import TrainingError

from .data import load_data
from .limits import env_number
from .runner import STOP_FILE, LiveTrainer, Relay, one_line, schedule

GPU_MARGIN_S = 30           # a GPU call's duration limit beyond its training budget (set-up, saving)


def chunk(spec: dict, resume: bool, budget_s: float):
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
            relay = Relay(events.put, stop.is_set)
            trainer = LiveTrainer(entry, data, spec["run_dir"], steps=spec["steps"], batch=spec["batch"],
                              lr=spec["lr"], device=spec["device"], seed=spec["seed"], callback=relay,
                              stop_event=stop, init_from=spec["init_from"], progress=False,
                              **schedule(spec["steps"]))
            relay.trainer = trainer
            try:
                if resume:
                    trainer.load_resume()
                trainer.train()
            finally:
                relay.trainer = None      # see _train
        except BaseException as e:        # reported to the caller, which marks the run failed
            events.put({"type": "error", "message": one_line(e)})
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
GPU_CHUNK_S = env_number("GAN_DEMO_GPU_CHUNK_S", 40.0)
# decorated here, at import (before the app launches), as ZeroGPU requires
gpu_chunk = ZERO_GPU.GPU(duration=int(GPU_CHUNK_S + GPU_MARGIN_S))(chunk) if ZERO_GPU else chunk
