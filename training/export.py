"""Export a run's generator into weights/ (fp16 storage, latent directions, model card) and write metrics back."""
from __future__ import annotations

import shutil
from pathlib import Path

from gan_demo.checkpoint import read_checkpoint, save_checkpoint
from gan_demo.directions import compute_directions
from gan_demo.generator import generator_from_checkpoint, resolve_weights, weights_dir
from gan_demo.model_card import model_card
from gan_demo.models import count_parameters


def export_run(run_dir, to=None, directions: bool = True, source: str = "generator.safetensors") -> Path:
    """RUN_DIR/generator.safetensors (or the run's `source`, e.g. a campaign's best.safetensors) →
    weights/<name>.safetensors (or `to`), plus <name>.md beside it."""
    src = Path(run_dir) / source
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no exported generator in this run folder (train it first)")
    entry, state, meta = read_checkpoint(src)
    dest = Path(to) if to else weights_dir() / entry.weights_file
    dirs = None
    if directions and not entry.is_text:
        g = generator_from_checkpoint(src, device="cpu")
        dirs = compute_directions(g.net, entry.latent_dim, num_classes=entry.num_classes,
                                  dist=entry.latent_dist)
    write(dest, entry, state, meta, directions=dirs)
    for extra in ("losses.png", "progress.gif"):     # shown on the app's Models tab (generated images only)
        if (Path(run_dir) / extra).is_file() and not to:
            shutil.copyfile(Path(run_dir) / extra, dest.with_name(f"{entry.name}-{extra}"))
    return dest


def write(dest, entry, state, meta, directions=None, metrics=None) -> None:
    """Write a shipped checkpoint (fp16) and its model card."""
    d = directions if directions is not None else meta.get("directions")
    d = d if d and "vectors" in d else None
    metrics = metrics if metrics is not None else meta.get("metrics")
    save_checkpoint(dest, entry, state, training=meta.get("training"), metrics=metrics, directions=d, half=True)
    card_meta = {"training": meta.get("training") or {}, "metrics": metrics or {}, "directions": d or {}}
    Path(dest).with_suffix(".md").write_text(model_card(entry, card_meta, count_parameters(state)))


def update_metrics(name_or_path: str, metrics: dict) -> Path:
    """Merge `metrics` into a checkpoint's metadata (and its model card)."""
    path = resolve_weights(name_or_path)
    entry, state, meta = read_checkpoint(path)
    merged = {**meta.get("metrics", {}), **metrics}
    write(path, entry, state, meta, metrics=merged)
    return path
