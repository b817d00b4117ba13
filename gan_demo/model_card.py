"""Model cards: a Markdown page describing one checkpoint (written beside weights/ files and shown in the app)."""
from __future__ import annotations

from .registry import ModelEntry


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def architecture_summary(entry: ModelEntry) -> str:
    c = entry.config
    if entry.is_text:
        return (f"1D-conv residual generator ({c.n_blocks} blocks, width {c.dim}) → softmax over "
                f"{len(c.vocab or ()) or 'the'} characters × {c.seq_len} positions; 1D-conv critic")
    shape = "×".join(map(str, entry.output_shape))
    kind = {"mlp": "MLP", "dcgan": "DCGAN"}.get(entry.arch, entry.arch)
    cond = f", conditioned on {entry.num_classes} classes" if entry.num_classes else ""
    return f"{kind} generator, z ∈ R^{entry.latent_dim} ({entry.latent_dist}) → {shape} image{cond}"


def model_card(entry: ModelEntry, meta: dict | None = None, num_parameters: int | None = None) -> str:
    meta = meta or {}
    train, metrics = meta.get("training", {}), meta.get("metrics", {})
    r = entry.recipe
    lines = [f"# {entry.name}", "", entry.description, "",
             f"- **Architecture**: {architecture_summary(entry)}"]
    if num_parameters:
        lines.append(f"- **Generator parameters**: {num_parameters:,}")
    lines += [f"- **Loss**: {r.loss}; Adam lr G {r.lr_g:g} / D {r.lr_d:g}, betas {tuple(r.betas)}, "
              f"{r.n_critic} D step(s) per G step, batch {r.batch}, EMA {r.ema}",
              f"- **Data**: {entry.dataset}; licence: {entry.license}"]
    if train:
        lines += ["", "## Training", ""]
        for k in ("steps", "batch", "images_seen", "wall_time_s", "hardware", "data", "torch", "finished"):
            if k in train:
                lines.append(f"- {k.replace('_', ' ')}: {_fmt(train[k])}")
    lines += ["", "## Metrics", ""]
    if metrics:
        for k, v in metrics.items():
            lines.append(f"- {k.replace('_', ' ')}: {_fmt(v)}")
    else:
        lines.append("- not measured yet")
    d = meta.get("directions") or {}
    if d.get("labels"):
        lines += ["", "## Latent directions", "", ", ".join(d["labels"])]
    if entry.dataset.startswith("celeba"):
        lines += ["", "**Non-commercial research use only** (derived from CelebA)."]
    return "\n".join(lines) + "\n"
