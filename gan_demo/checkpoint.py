"""Checkpoint = one safetensors file: generator tensors (+ latent directions) and JSON metadata.

Metadata keys (all JSON strings except `format`): `format`, `entry` (the registry entry, architecture config
included, so the file alone rebuilds its model), `training`, `metrics`, `license`, `directions`.
Loading never unpickles; every failure is a one-line `CheckpointError` naming the file and the problem.

Reading is safe against a file rewritten while it is read (`cp` over a checkpoint truncates it and writes it in
place): the file is read into memory and parsed there, never memory-mapped (a mapped file that shrinks kills the
reader with SIGBUS), and a read during which the file changed, or of a file cut short, is a CheckpointError, so the
file is "not available" until it is whole again. Files over MAX_FILE_MB (GAN_DEMO_MAX_CHECKPOINT_MB, default 1024)
and tensors holding NaN or infinities are refused too.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save_file

from .registry import ModelEntry

FORMAT = "gan_demo/1"
G_PREFIX = "generator."
HEADER_LIMIT = 100 * 2 ** 20            # safetensors' own bound on the JSON header


def _env_mb(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name) or default))
    except ValueError:
        return default


MAX_FILE_MB = _env_mb("GAN_DEMO_MAX_CHECKPOINT_MB", 1024)


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


def read_bytes(path) -> bytes:
    """The whole file, read rather than memory-mapped, and checked not to have changed while it was read."""
    path = Path(path)
    limit = MAX_FILE_MB * 2 ** 20
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            if before.st_size > limit:
                raise CheckpointError(f"{path}: file too large ({before.st_size / 2 ** 20:,.0f} MiB; checkpoints "
                                      f"here are at most {MAX_FILE_MB:,} MiB, see GAN_DEMO_MAX_CHECKPOINT_MB)")
            data = f.read(limit + 1)
            after = os.fstat(f.fileno())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror or type(e).__name__})") from None
    if len(data) != before.st_size or (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise CheckpointError(f"{path}: the file changed while it was read (being rewritten?); it is used again "
                              f"once it is whole")
    return data


def read_safetensors(path) -> tuple[dict, dict]:
    """Any safetensors file → (metadata, tensors), read safely (read_bytes); a file cut short or otherwise
    malformed is a CheckpointError."""
    path = Path(path)
    data = read_bytes(path)
    if len(data) < 8:
        raise CheckpointError(f"{path}: file is empty or truncated ({len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n > HEADER_LIMIT or 8 + n > len(data):
        raise CheckpointError(f"{path}: not a readable safetensors file (header of {n:,} bytes in a file of "
                              f"{len(data):,}: truncated or not safetensors)")
    try:
        header = json.loads(data[8:8 + n])
        if not isinstance(header, dict) or not isinstance(header.get("__metadata__") or {}, dict):
            raise ValueError("the header is not a JSON object")
        raw_meta = header.get("__metadata__") or {}
        tensors = load_tensors(data)       # checks every offset against the data: a cut file fails here
    except (SafetensorError, ValueError, RuntimeError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None
    return raw_meta, tensors


def check_finite(path, tensors: dict) -> None:
    """NaN or infinite weights draw nothing but noise or black: such a file is refused, naming a bad tensor."""
    for k, v in tensors.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            what = "NaN" if bool(torch.isnan(v).any()) else "infinite values (inf)"
            raise CheckpointError(f"{path}: the weights contain {what} (e.g. {k})")


# what a checkpoint may set differently from its registry entry: widths (a campaign trains narrower networks on a
# CPU; the file records its own architecture, bounded by check_config), the discriminator's normalisation and
# dropout (D is not shipped), a categorical code read from z (the latent itself is unchanged) and the text
# vocabulary, which travels with it
FREE_CONFIG_KEYS = {"ngf", "ndf", "g_hidden", "d_hidden", "d_dropout", "dim", "d_norm", "latent_code", "vocab"}


def free_setting(key, claimed, real) -> bool:
    """Another width, D normalisation or dropout, or latent code, not another shape of network: a number for a
    number, a list of as many layers, a word for a word. The one rule for loading a checkpoint and for a campaign plan's `arch`."""
    if key == "vocab" or key not in FREE_CONFIG_KEYS:
        return key == "vocab"
    if isinstance(claimed, list | tuple) and isinstance(real, list | tuple):
        return len(claimed) == len(real)
    if isinstance(claimed, str) and isinstance(real, str):
        return True
    if isinstance(real, float):                     # a rate (d_dropout): any number
        return isinstance(claimed, int | float) and not isinstance(claimed, bool)
    return isinstance(claimed, int) and isinstance(real, int)


def _config_defaults(arch: str) -> dict:
    import dataclasses
    from .config import CONFIGS
    return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
            for f in dataclasses.fields(CONFIGS[arch]) if f.default is not dataclasses.MISSING}


def check_claims(path, entry: "ModelEntry | dict", expected: ModelEntry | None) -> None:
    """A file loaded as model `expected` (a registry name, or what a run fine-tunes) must be that model: its name,
    family, dataset, architecture and config, widths aside (FREE_CONFIG_KEYS). Loaded by path (expected None), a
    file stands alone."""
    if expected is None:
        return
    claimed, real = (entry if isinstance(entry, dict) else entry.to_dict()), expected.to_dict()
    if claimed.get("name") != expected.name:
        raise CheckpointError(f"{path}: the file holds model {str(claimed.get('name'))[:40]!r}, "
                              f"not {expected.name!r}")
    fields = {k: (claimed.get(k), real[k]) for k in ("family", "dataset", "arch", "latent_dist")}
    cc, rc = claimed.get("config") or {}, real["config"]
    cc = cc if isinstance(cc, dict) else {}
    defaults = _config_defaults(expected.arch)      # an older file leaves out settings at their defaults
    cc, rc = {**defaults, **cc}, {**defaults, **rc}
    fields.update({f"config {k}": (cc.get(k), rc.get(k)) for k in sorted(set(cc) | set(rc))
                   if not free_setting(k, cc.get(k), rc.get(k))})
    short = lambda v: repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
    for what, (claimed, real) in fields.items():
        if claimed != real:
            raise CheckpointError(f"{path}: its metadata claims model {expected.name!r}, which it is not ({what} is "
                                  f"{short(claimed)}, not {short(real)})")


def read_checkpoint(path, expect: ModelEntry | None = None) -> tuple[ModelEntry, dict, dict]:
    """→ (entry, generator state dict in fp32, metadata with JSON fields decoded). Raises CheckpointError.
    With `expect`, the file must hold that model (check_claims)."""
    path = Path(path)
    raw_meta, tensors = read_safetensors(path)
    if raw_meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gan_demo checkpoint (metadata 'format' is "
                              f"{str(raw_meta.get('format'))[:40]!r}, expected {FORMAT!r})")
    try:
        meta = dict(raw_meta)
        for key in ("entry", "training", "metrics", "directions"):
            if key in meta:
                meta[key] = json.loads(meta[key])
        if expect is not None:
            check_claims(path, meta["entry"], expect)
        entry = ModelEntry.from_dict(meta["entry"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: corrupt metadata ({type(e).__name__}: {str(e)[:200]})") from None
    if meta.get("name", entry.name) != entry.name:
        raise CheckpointError(f"{path}: corrupt metadata (it names the model both {str(meta['name'])[:40]!r} and "
                              f"{entry.name[:40]!r})")
    check_finite(path, tensors)
    state = {k[len(G_PREFIX):]: v.float() if v.is_floating_point() else v
             for k, v in tensors.items() if k.startswith(G_PREFIX)}
    if "directions" in tensors:
        if not isinstance(meta.get("directions", {}), dict):
            raise CheckpointError(f"{path}: corrupt metadata ('directions' is not a JSON object)")
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
