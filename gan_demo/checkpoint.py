"""Checkpoint = one safetensors file: generator tensors (+ latent directions) and JSON metadata.

Metadata keys (all JSON strings except `format`): `format`, `entry` (the registry entry, architecture config
included, so the file alone rebuilds its model), `training`, `metrics`, `license`, `directions`.
Loading never unpickles; every failure is a one-line `CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .registry import ModelEntry

FORMAT = "gan_demo/1"
G_PREFIX = "generator."


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; the message is one line: '<file>: <problem>'."""


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path), fsync, then rename over `path`, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path, entry: ModelEntry, state_dict: dict, *, training: dict | None = None,
                    metrics: dict | None = None, directions: dict | None = None, half: bool = False) -> None:
    """Write a checkpoint. `directions`: {"vectors": k×z tensor, "labels": [...], "layer": str} or None.
    `half` stores floating tensors as fp16 (load upcasts to fp32)."""
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        tensors[G_PREFIX + k] = v.contiguous()
    meta = {"format": FORMAT, "name": entry.name, "entry": json.dumps(entry.to_dict()),
            "training": json.dumps(training or {}), "metrics": json.dumps(metrics or {}),
            "license": entry.license}
    if directions is not None:
        tensors["directions"] = directions["vectors"].detach().float().cpu().contiguous()
        meta["directions"] = json.dumps({k: v for k, v in directions.items() if k != "vectors"})
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def read_checkpoint(path) -> tuple[ModelEntry, dict, dict]:
    """→ (entry, generator state dict in fp32, metadata with JSON fields decoded). Raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    if path.stat().st_size < 8:
        raise CheckpointError(f"{path}: file is empty or truncated ({path.stat().st_size} bytes)")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None
    if raw_meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gan_demo checkpoint (metadata 'format' is "
                              f"{raw_meta.get('format')!r}, expected {FORMAT!r})")
    try:
        meta = dict(raw_meta)
        for key in ("entry", "training", "metrics", "directions"):
            if key in meta:
                meta[key] = json.loads(meta[key])
        entry = ModelEntry.from_dict(meta["entry"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt metadata ({type(e).__name__}: {e})") from None
    state = {k[len(G_PREFIX):]: v.float() if v.is_floating_point() else v
             for k, v in tensors.items() if k.startswith(G_PREFIX)}
    if "directions" in tensors:
        meta.setdefault("directions", {})["vectors"] = tensors["directions"].float()
    return entry, state, meta


def check_state_dict(path, expected: dict, got: dict) -> None:
    """One-line error when a file's tensors do not fit the architecture it claims."""
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = [k for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected tensors (e.g. {extra[0]})")
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} tensors of the wrong shape (e.g. {k}: file {tuple(got[k].shape)}, "
                        f"model {tuple(expected[k].shape)})")
    if problems:
        raise CheckpointError(f"{path}: weights do not match the architecture: {'; '.join(problems)}")
