"""Generators trained in the app's Train tab ("my run"): where they live and who may use them.

A finished run is offered to the other tabs as the model name `my-run:<16 hex digits>` (the run's random id).
Its files live in a folder of the browser session that trained it:

    $GAN_DEMO_RUNS_DIR (default runs/ui/) / <hash of the session> / <run id> / generator.safetensors, run.json, …

A name resolves only together with the session that trained it (`find(name, session)`), so another visitor who
learns the name still cannot use the run; nothing a client sends ever becomes a path (the name must match the
pattern exactly, and the session is hashed). `run.json`, written last by the trainer, marks a run as usable.
Shipped weights (weights/) are never written here. No torch, no gradio: the service and the job manager both use this.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from ..paths import REPO

PREFIX = "my-run:"
NAME = re.compile(r"my-run:([0-9a-f]{16})")
RUN_ID = re.compile(r"[0-9a-f]{16}")
INFO_FILE = "run.json"
CHECKPOINT = "generator.safetensors"


def runs_root() -> Path:
    return Path(os.environ.get("GAN_DEMO_RUNS_DIR") or REPO / "runs" / "ui")


def session_key(session: str) -> str:
    """The folder name of a session: a hash, so a client's session string never reaches the file system."""
    return hashlib.sha256(f"gan_demo-session:{session}".encode()).hexdigest()[:16]


def session_dir(session: str, root: Path | None = None) -> Path:
    return (root or runs_root()) / session_key(session)


def is_name(name) -> bool:
    return isinstance(name, str) and NAME.fullmatch(name) is not None


def name_of(run_id: str) -> str:
    return PREFIX + run_id


@dataclass(frozen=True)
class MyRun:
    name: str               # my-run:<id>
    run_id: str
    model: str              # the registry model it is a run of
    checkpoint: Path
    steps: int
    finished: str           # ISO time
    stop_reason: str | None

    @property
    def label(self) -> str:
        """The menu entry, e.g. 'my mnist-gan · 14:05:09' (short: a longer one was cut off under the menu's arrow;
        the Faces note gives the steps), to the second: two runs ended in the same minute read the same."""
        try:
            at = dt.datetime.fromisoformat(self.finished).astimezone().strftime("%H:%M:%S")
        except ValueError:
            at = "?"
        return f"my {self.model} · {at}"


def _read(folder: Path, run_id: str) -> MyRun | None:
    info, ckpt = folder / INFO_FILE, folder / CHECKPOINT
    try:
        meta = json.loads(info.read_text())
        if not ckpt.is_file():
            return None
        return MyRun(name_of(run_id), run_id, str(meta["model"]), ckpt, int(meta.get("steps", 0)),
                     str(meta.get("finished", "")), meta.get("stop_reason"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_info(folder: Path, model: str, steps: int, stop_reason: str | None = None) -> None:
    """Mark a finished run as usable (called by the trainer once generator.safetensors is written)."""
    from ..checkpoint import atomic_write
    text = json.dumps({"model": model, "steps": steps, "stop_reason": stop_reason,
                       "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    atomic_write(folder / INFO_FILE, lambda tmp: Path(tmp).write_text(text))


def find(name, session) -> MyRun | None:
    """The run called `name` if `session` trained it and it is finished; None otherwise (whoever asks)."""
    m = NAME.fullmatch(name) if isinstance(name, str) else None
    if m is None or not isinstance(session, str) or not session:
        return None
    return _read(session_dir(session) / m.group(1), m.group(1))


def session_runs(session) -> list[MyRun]:
    """The finished runs of a session, newest first."""
    if not isinstance(session, str) or not session:
        return []
    folder = session_dir(session)
    try:
        runs = [_read(p, p.name) for p in folder.iterdir() if RUN_ID.fullmatch(p.name) and p.is_dir()]
    except OSError:
        return []
    return sorted((r for r in runs if r is not None), key=lambda r: r.finished, reverse=True)


_located: dict[str, Path] = {}
_located_lock = threading.Lock()


def locate(name: str) -> MyRun | None:
    """A run by name alone, for the model cache once `find` has checked the session (run ids are unique)."""
    m = NAME.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        return None
    run_id = m.group(1)
    with _located_lock:
        folder = _located.get(run_id)
    run = _read(folder, run_id) if folder is not None else None
    if run is None:
        root = runs_root()
        try:
            folders = [p / run_id for p in root.iterdir() if (p / run_id / INFO_FILE).is_file()]
        except OSError:
            folders = []
        run = _read(folders[0], run_id) if folders else None
        with _located_lock:
            if run is not None:
                _located[run_id] = folders[0]
            else:
                _located.pop(run_id, None)
    return run


def process_alive(pid: int) -> bool:
    """Whether a process runs (a server that owns run folders or private files); leftovers of dead ones go."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:             # another user's process: it runs
        return True
    return True
