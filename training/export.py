"""Export a run's generator into weights/ (fp16 storage, latent directions, model card) and write metrics back."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

from safetensors.torch import save_file

from gan_demo.checkpoint import (G_PREFIX, CheckpointError, atomic_write, read_checkpoint, read_safetensors,
                                 save_checkpoint)
from gan_demo.directions import check_name, compute_directions, name_directions, names_still_apply
from gan_demo.generator import generator_from_checkpoint, resolve_weights, weights_dir
from gan_demo.paths import beside_files
from gan_demo.model_card import model_card
from gan_demo.models import count_parameters

from .runlog import RunFolder


def export_run(run_dir, to=None, directions: bool = True, source: str = "generator.safetensors",
               device: str = "cpu", direction_samples: int = 4000) -> Path:
    """RUN_DIR/generator.safetensors (or the run's `source`, e.g. a campaign's best.safetensors) →
    weights/<name>.safetensors (or `to`), plus <name>.md beside it and, unless `to`, the run's loss history, loss
    curve and animation (ship_run_files). The directions come from `direction_samples` samples drawn on `device`
    (the GPU plan: "cuda"; its CPU rehearsal: a few hundred)."""
    src = Path(run_dir) / source
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no exported generator in this run folder (train it first)")
    entry, state, meta = read_checkpoint(src)
    dest = Path(to) if to else weights_dir() / entry.weights_file
    dirs = None
    if directions and not entry.is_text:
        dirs = measure_directions(generator_from_checkpoint(src, device=device), direction_samples)
    write(dest, entry, state, meta, directions=dirs)
    if not to:
        ship_run_files(run_dir, dest.parent, entry.name)
        ship_discriminator(run_dir, entry.name)
    return dest


def measure_directions(g, samples: int = 4000) -> dict:
    """GANSpace directions of generator `g` from `samples` samples, each named after what it measurably does to
    the pictures (gan_demo.directions.name_directions; the MNIST classifier adds the digit shift)."""
    entry = g.entry
    dirs = compute_directions(g.net, entry.latent_dim, num_classes=entry.num_classes, dist=entry.latent_dist,
                              n=samples, device=g.device)
    dirs["labels"], dirs["effects"] = name_directions(
        g.forward, dirs["vectors"], entry.latent_dim, num_classes=entry.num_classes, dist=entry.latent_dist,
        classify=digit_probabilities() if entry.dataset == "mnist" else None, n=min(200, samples))
    return dirs


def digit_probabilities():
    """The project's MNIST classifier as pictures in [-1, 1] → class probabilities; None if it is not there."""
    from .metrics.classifier import load_classifier, probabilities
    try:
        model, _ = load_classifier()
    except (FileNotFoundError, OSError):
        return None
    return lambda x: probabilities(model, ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))


def rename_directions(name_or_path: str, samples: int = 4000) -> Path:
    """Measure a checkpoint's latent directions and their names again, in place (weights and metrics unchanged).
    Names a person gave stay where their direction did not change (the same weights measure the same)."""
    path = resolve_weights(name_or_path)
    entry, state, meta = read_checkpoint(path)
    if entry.is_text:
        raise ValueError(f"{entry.name} is a text model: it has no picture directions")
    dirs = measure_directions(generator_from_checkpoint(path), samples)
    looked = names_still_apply(meta.get("directions") or {}, dirs)
    if looked:
        dirs["looked_at"] = looked
    write(path, entry, state, meta, directions=dirs, half=_is_half(path))
    return path


def label_directions(name_or_path: str, names: dict[int, str]) -> Path:
    """Give directions the names a person chose after looking at them ({3: "man ↔ woman"}, by slider number; ""
    takes a name back), in place; the measured names stay beside them (gan_demo.directions.shown_labels)."""
    path = resolve_weights(name_or_path)
    entry, state, meta = read_checkpoint(path)
    d = meta.get("directions") or {}
    if "vectors" not in d:
        raise ValueError(f"{path}: no latent directions to name (run `python -m training directions` first)")
    k = len(d["vectors"])
    old = d.get("looked_at") if isinstance(d.get("looked_at"), dict) else {}
    looked = {str(n): text for n, text in old.items() if str(n).isdigit()}
    for number, text in names.items():
        if not 1 <= number <= k:
            raise ValueError(f"direction {number}: {entry.name} has directions 1 to {k}")
        text = check_name(text)
        if text:
            looked[str(number)] = text
        else:
            looked.pop(str(number), None)
    d = {key: v for key, v in d.items() if key != "looked_at"}
    if looked:
        d["looked_at"] = dict(sorted(looked.items(), key=lambda kv: int(kv[0])))
    write(path, entry, state, meta, directions=d, half=_is_half(path))
    return path


def direction_sheet(g, seeds=(0, 1, 2, 3), amounts=(-3, -2, -1, 0, 1, 2, 3)):
    """What each of generator `g`'s directions does, to look at before naming it: per direction a block of one
    row per seed, that seed's picture moved by each amount along it (slider's low end on the left), the blocks
    one under the other with a wider gap between them → PIL image."""
    import numpy as np
    from gan_demo.latents import walk
    from gan_demo.render import make_grid, to_pil
    dirs = torch.as_tensor(g.directions, dtype=torch.float32)
    start = g.latents(list(seeds))
    n = g.entry.num_classes                     # a conditional model draws class seed % n, as in the app
    labels = [s % n for s in seeds for _ in amounts] if n else None
    blocks = []
    for k in range(len(dirs)):
        z = torch.stack([walk(start[j], dirs, [0.0] * k + [a]) for j in range(len(seeds)) for a in amounts])
        block = make_grid(g.sample(latents=z, labels=labels), len(amounts))
        blocks += [block, np.full((12, *block.shape[1:]), 255, np.uint8)]
    return to_pil(np.concatenate(blocks[:-1]))


def ship_run_files(run_dir, folder, name: str) -> list[Path]:
    """What the app's Models tab shows beside a checkpoint, from its run folder into `folder`: the loss history
    <name>-losses.json and the loss curve <name>-losses.png (both drawn from log.jsonl; without a log, the run's
    losses.png is copied) and the training animation <name>-progress.gif, each where the run has it.
    → the files written."""
    run, files, written = RunFolder(run_dir), beside_files(folder, name), []

    def put(path: Path, write) -> None:
        write(path)
        written.append(path)

    if run.read_log():
        put(files.loss_history, run.write_loss_history)
        put(files.loss_curve, lambda p: run.loss_plot(f"{name}: losses").save(p))
    elif (run.path / "losses.png").is_file():
        put(files.loss_curve, lambda p: shutil.copyfile(run.path / "losses.png", p))
    if (run.path / "progress.gif").is_file():
        put(files.progress, lambda p: shutil.copyfile(run.path / "progress.gif", p))
    return written


# --- the discriminator kept beside a shipped generator ---------------------------------------------------------
# A run whose folder vanished (another machine), or a CPU run continuing a GPU one, starts again from the shipped
# generator. With a fresh discriminator it got worse and stayed so (docs/recipes-by-measurement.md: a fresh WGAN-GP
# critic's Wasserstein estimate stayed ~0.05 against 0.70, and 500 critic-only steps did not bring it back), so the
# run's trained discriminator ships too. The app never reads it.
DISCRIMINATOR_FORMAT = "gan_demo.discriminator/1"


def discriminator_file(name: str, folder=None) -> Path:
    """Where the discriminator beside shipped model `name` lives: weights/discriminators/<name>.safetensors."""
    return Path(folder or weights_dir()) / "discriminators" / f"{name}.safetensors"


def save_discriminator(state_dict: dict, step: int, name: str, dest) -> Path:
    """A discriminator's state dict → `dest` as a kept discriminator of model `name` (floats in fp16, the step)."""
    tensors = {k: (v.detach().half() if v.is_floating_point() else v).cpu().contiguous().clone()
               for k, v in state_dict.items()}
    meta = {"format": DISCRIMINATOR_FORMAT, "model": name, "step": str(int(step))}
    atomic_write(Path(dest), lambda tmp: save_file(tensors, tmp, metadata=meta))
    return Path(dest)


def ship_discriminator(run_dir, name: str, folder=None, snapshot=None) -> Path | None:
    """The run's discriminator → discriminator_file(name): `snapshot` (a file save_discriminator wrote beside the
    generator being shipped, e.g. a campaign's best snapshot) when there is one, else the latest from the resume
    file. None when the run has no resume file, or one that cannot be read (said in one line on stderr: the
    generator is shipped by then, and the kept D is a convenience, so the export goes on)."""
    dest = discriminator_file(name, folder)
    if snapshot is not None and Path(snapshot).is_file():
        atomic_write(dest, lambda tmp: shutil.copyfile(snapshot, tmp))
        return dest
    resume = RunFolder(run_dir).resume_file
    if not resume.is_file():
        return None
    try:
        state = torch.load(resume, map_location="cpu", weights_only=True)
        d_state, step = state["D"], int(state["step"])
    except Exception as e:   # a truncated or foreign file: torch raises several kinds
        print(f"{resume}: unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
              f"the discriminator of {name} is not kept", file=sys.stderr)
        return None
    return save_discriminator(d_state, step, name, dest)


def read_discriminator(path) -> tuple[dict, int]:
    """A kept discriminator → (state dict in fp32, the training step it was saved at); CheckpointError if the
    file is unreadable or not one."""
    meta, tensors = read_safetensors(path)
    if meta.get("format") != DISCRIMINATOR_FORMAT:
        raise CheckpointError(f"{path}: not a kept discriminator (format {meta.get('format')!r})")
    return ({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
            int(meta.get("step", 0)))


def write(dest, entry, state, meta, directions=None, metrics=None, half: bool = True) -> None:
    """Write a checkpoint (shipped ones in fp16) and its model card."""
    d = directions if directions is not None else meta.get("directions")
    d = d if d and "vectors" in d else None
    metrics = metrics if metrics is not None else meta.get("metrics")
    save_checkpoint(dest, entry, state, training=meta.get("training"), metrics=metrics, directions=d, half=half)
    card_meta = {"training": meta.get("training") or {}, "metrics": metrics or {}, "directions": d or {}}
    Path(dest).with_suffix(".md").write_text(model_card(entry, card_meta, count_parameters(state)))


def update_metrics(name_or_path: str, metrics: dict) -> Path:
    """Merge `metrics` into a checkpoint's metadata (and its model card)."""
    path = resolve_weights(name_or_path)
    entry, state, meta = read_checkpoint(path)
    merged = {**meta.get("metrics", {}), **metrics}
    write(path, entry, state, meta, metrics=merged, half=_is_half(path))
    return path


def _is_half(path) -> bool:
    """Whether a checkpoint's weights are stored in fp16 (shipped) rather than fp32 (a run's): rewritten in place,
    they stay as they were (read_checkpoint hands out fp32 either way)."""
    _, tensors = read_safetensors(path)
    return any(k.startswith(G_PREFIX) and v.dtype == torch.float16 for k, v in tensors.items())
