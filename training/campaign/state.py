"""A run folder's campaign files: its state (campaign.json: evaluations, best, warm start) and the lock that keeps
two processes from training one run."""
from __future__ import annotations

import json
import os
import time
import weakref
from pathlib import Path

from .plan import Plan, RunSpec

STATE_FILE, BEST_FILE = "campaign.json", "best.safetensors"
BEST_D_FILE = "best-discriminator.safetensors"   # the discriminator at the best snapshot's step: exported with it


def read_state(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_state(run_dir: Path, state: dict) -> None:
    from gan_demo.checkpoint import atomic_write
    text = json.dumps(state, indent=1)
    atomic_write(run_dir / STATE_FILE, lambda tmp: Path(tmp).write_text(text))


def is_finished(plan: "Plan", spec: RunSpec) -> bool:
    """Trained to the plan's step count (a plan that asks for more steps later reopens the run)."""
    return read_state(plan.run_dir(spec)).get("finished_at", 0) >= spec.steps


def last_log(run_dir: Path) -> dict:
    from ..runlog import RunFolder
    log = RunFolder(run_dir).read_log()
    return log[-1] if log else {}


def save_snapshot(src: Path, dest: Path, plan: "Plan", spec: RunSpec, state: dict, step: int, score, metrics: dict,
                  kept_as: str = "best_step") -> None:
    """A run checkpoint `src` → `dest` with what the campaign knows of it in its training record (plan, run, the
    step it was kept at — `kept_as` says why: "best_step", or "latest_step" for `--export --latest` — and its cheap
    metric; the warm start, if any), so that the exported card says where it came from."""
    from gan_demo.checkpoint import read_checkpoint, save_checkpoint
    entry, tensors, meta = read_checkpoint(src)
    training = {**(meta.get("training") or {}),
                "campaign": {"plan": plan.name, "run": f"{plan.name}/{spec.name}", kept_as: step,
                             "headline": state.get("headline"), "score": score, "eval_samples": spec.eval_samples}}
    if state.get("warm_start"):
        training["warm_start"] = state["warm_start"]
    save_checkpoint(dest, entry, tensors, training=training, metrics=metrics)


def same_architecture(saved, planned) -> bool:
    """A snapshot's config against the plan's. A text model takes its vocabulary from the data when it trains (the
    plan's entry leaves it unset), so that is not compared."""
    ignore = {"vocab"} if planned.is_text else set()
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in ignore}    # noqa: E731
    return strip(saved.config) == strip(planned.config)


def checkpoint_identity(meta: dict) -> dict:
    """Which checkpoint this is, from its metadata: its step count and when its training finished."""
    training = meta.get("training") or {}
    return {"steps": training.get("steps"), "finished": training.get("finished")}


LOCK_FILE = "worker.lock"


def lock_run(run_dir: Path, wait: float = 2.0):
    """Hold the run folder for this process: an exclusive lock the OS releases when the process ends, however it
    ends (so a killed worker never leaves a stale one), with the holder's pid in the file. Returns the open lock
    file, or None when another process holds it for `wait` seconds (a `--status` probe holds it for microseconds):
    two workers on one run would overwrite each other's state."""
    t0 = time.time()
    while (f := _try_lock(run_dir / LOCK_FILE, "a+")) is None and time.time() - t0 < wait:
        time.sleep(0.05)
    if f is not None and f is not NO_LOCK:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        _HELD.add(f)
    return f


# Lock files this process holds. A forked child (CelebA's decoder pool) inherits them, and a flock lasts while any
# copy is open: so a child closes its copies at once, and a killed worker's children never keep its run locked.
_HELD: "weakref.WeakSet" = weakref.WeakSet()


def _close_inherited_locks() -> None:
    for f in list(_HELD):
        f.close()                        # only this child's copy: the parent keeps its lock
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def trained_by(run_dir: Path) -> int | None:
    """The pid of the process training this run now, or None (the lock is free, or was never taken)."""
    lock = run_dir / LOCK_FILE
    if not lock.is_file():
        return None
    probe = _try_lock(lock, "r")         # read-only: --status works on folders it may not write
    if probe is not None:
        probe.close()                    # closing releases it
        return None
    try:
        return int(lock.read_text().split()[0])
    except (ValueError, IndexError, OSError):
        return -1                        # held, by a process that has not written its pid yet


class _NoLock:
    """Stands in for a lock where the OS or the file system has none (no fcntl, or flock unsupported): one
    campaign per plan is then the user's to keep."""
    def close(self):
        pass


NO_LOCK = _NoLock()


def _try_lock(path: Path, mode: str):
    try:
        import fcntl
    except ImportError:
        return NO_LOCK
    f = open(path, mode)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:              # held by another open file: another process, or another probe
        f.close()
        return None
    except OSError:                      # a file system without flock (some network mounts)
        f.close()
        return NO_LOCK
    return f
