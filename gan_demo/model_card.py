"""Model cards: a Markdown page describing one checkpoint (written beside weights/ files and shown in the app)."""
from __future__ import annotations

import dataclasses
import re
from pathlib import PurePosixPath

from .directions import shown_labels
from .registry import REGISTRY, ModelEntry


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


# What each stored metric means, for people: (name, meaning, how to show the value). Keys not listed are shown
# under their own name; the per-class lists stay in the checkpoint but are summarised, not printed raw.
_pct = lambda v: f"{100 * v:.1f}%"
METRICS = {
    "fid": ("FID (Inception)", "Fréchet distance between Inception features of generated and real images; "
                               "lower is better, 0 = same statistics", lambda v: f"{v:.1f}"),
    "kid": ("KID (Inception)", "kernel inception distance; lower is better, unbiased for small samples",
            lambda v: f"{v:.4f}"),
    "classifier_fid": ("classifier-FID", "Fréchet distance in the features of the project's MNIST classifier; "
                                         "lower is better", lambda v: f"{v:.1f}"),
    "classifier_fid_floor": ("classifier-FID of real digits", "the same distance for held-out real test digits: "
                                                              "the best a model can hope for", lambda v: f"{v:.1f}"),
    "conditional_accuracy": ("conditional accuracy", "how often the classifier reads the digit that was asked "
                                                     "for", _pct),
    "class_entropy_ratio": ("digit variety", "entropy of the classifier's digit histogram over log 10: "
                                             "100% = all ten digits equally often", _pct),
    "confidently_classified": ("confidently classified", "share of generated digits the classifier reads as one "
                                                         "digit with probability ≥ 0.9 (well-formed digits)", _pct),
    "code_purity": ("code purity", "share of digits of the latent code's most common digit, code by code: how "
                                   "cleanly the unsupervised code separates the digits", _pct),
    "confidently_classified_real": ("confidently classified, real digits", "the same for real training digits: "
                                                                           "the ceiling", _pct),
    "fid_protocol": ("FID protocol", "what the FID was measured on; compare only figures of the same counts", str),
    "kid_protocol": ("KID protocol", "what the KID was measured on", str),
    "classifier_test_accuracy": ("judge's accuracy", "the MNIST classifier's own accuracy on real test digits",
                                 _pct),
    "js_4gram": ("4-gram divergence", "Jensen–Shannon divergence of character 4-gram counts from held-out "
                                      "sentences; lower is better", lambda v: f"{v:.3f}"),
    "js_4gram_floor": ("4-gram divergence of real text", "the same for real sentences: the floor",
                       lambda v: f"{v:.3f}"),
    "word_validity": ("valid words", "share of generated words found in the training vocabulary", _pct),
    "verbatim_training_lines": ("copied sentences", "share of samples that are verbatim training sentences", _pct),
    "distinct": ("distinct samples", "share of samples that differ from every other sample", _pct),
    "mean_length": ("mean length", "characters per generated sentence", lambda v: f"{v:.1f}"),
    # the memorisation check (GPU plan): nearest training face of each sample against that of held-out real faces
    "memorisation_ratio": ("memorisation ratio", "median distance (Inception features) from a sample to its nearest "
                                                 "training face, over the same for held-out real faces: about 1 or "
                                                 "more = no sign of copying, far below 1 = copies",
                           lambda v: f"{v:.2f}"),
    "memorisation_below_holdout_p1": ("samples nearer than real faces", "share of samples nearer to a training face "
                                                                        "than 99% of the held-out real faces are "
                                                                        "(copies would raise it)", _pct),
    "memorisation_nn_gen_median": ("nearest training face, samples", "median distance from a sample to its "
                                                                     "nearest training face", lambda v: f"{v:.2f}"),
    "memorisation_nn_holdout_median": ("nearest training face, real faces", "the same for real faces never "
                                                                            "trained on", lambda v: f"{v:.2f}"),
    "memorisation_samples": ("memorisation: samples", "generated faces checked", "{:,}".format),
    "memorisation_holdout": ("memorisation: held-out faces", "real faces kept out of training, checked the same "
                                                             "way", "{:,}".format),
    "memorisation_train_faces": ("memorisation: training faces", "the faces searched for the nearest one",
                                 "{:,}".format),
}
_HIDDEN = {"class_histogram", "class_entropy", "conditional_accuracy_per_class", "classifier_fid_samples",
           "fid_samples", "kid_std", "text_samples", "fid_reference", "corpus_mean_length", "js_1gram", "js_2gram",
           "js_3gram", "js_1gram_floor", "js_2gram_floor", "js_3gram_floor", "fid_reference_images",
           "fid_reference_total", "kid_reference_images", "fid_inception", "kid_inception", "kid_samples",
           "conditional_error", "code_digits", "code_confident",
           "memorisation_closest"}     # seed, training row and distance triples: for a person's look, not a table


def headline_metric(metrics: dict) -> str:
    """The one figure that best says how good a checkpoint is, with its reference; '' when none was measured."""
    m = metrics or {}
    if "fid" in m:
        return f"FID {m['fid']:.1f}"
    if "conditional_accuracy" in m:
        return f"conditional accuracy {_pct(m['conditional_accuracy'])}"
    if "classifier_fid" in m:
        floor = f" (real digits {m['classifier_fid_floor']:.1f})" if "classifier_fid_floor" in m else ""
        return f"classifier-FID {m['classifier_fid']:.1f}{floor}"
    if "js_4gram" in m:
        floor = f" (real text {m['js_4gram_floor']:.3f})" if "js_4gram_floor" in m else ""
        return f"4-gram divergence {m['js_4gram']:.3f}{floor}"
    return ""


def quality_summary(metrics: dict) -> str:
    """One short line for a table of models: the headline figure and what the reader most wants beside it (how
    many samples an FID used; well-formed digits; valid words). '' when nothing was measured."""
    m = metrics or {}
    if "fid" in m:
        n = m.get("fid_samples")
        return f"FID {m['fid']:.1f}" + (f" ({int(n):,} samples)" if n else "")
    if "conditional_accuracy" in m:
        return f"{_pct(m['conditional_accuracy'])} the digit asked for"
    if "classifier_fid" in m:
        well = f", {_pct(m['confidently_classified'])} well-formed" if "confidently_classified" in m else ""
        return f"classifier-FID {m['classifier_fid']:.1f}{well}"
    if "js_4gram" in m:
        valid = f", {_pct(m['word_validity'])} valid words" if "word_validity" in m else ""
        return f"4-gram divergence {m['js_4gram']:.3f}{valid}"
    return ""


def training_summary(training: dict) -> str:
    """'43,000 steps, CPU (AMD EPYC, 1 thread), 5.9 h': how much training, on what. '' when not recorded."""
    t = training or {}
    parts = [f"{t['steps']:,} steps" if isinstance(t.get("steps"), int) else "",
             hardware_text(t["hardware"]) if t.get("hardware") else ""]
    wall = t.get("wall_time_s")
    if isinstance(wall, (int, float)) and wall > 0:
        parts.append(f"{wall / 60:.0f} min" if wall < 5400 else f"{wall / 3600:.1f} h")
    return ", ".join(p for p in parts if p)


def _lowest(values: list) -> int | None:
    """The index of the lowest value (the first of equals), None entries skipped; None when nothing is left."""
    present = [i for i, v in enumerate(values) if v is not None]
    return min(present, key=values.__getitem__) if present else None


def metrics_table(metrics: dict) -> list[str]:
    """Markdown table rows: metric, value, what it means."""
    rows = ["| metric | value | what it means |", "|---|---|---|"]
    for k, v in metrics.items():
        if k in _HIDDEN:
            continue
        name, meaning, show = METRICS.get(k, (k.replace("_", " "), "", _fmt))
        try:
            value = show(v)
        except (TypeError, ValueError):
            value = _fmt(v)
        rows.append(f"| {name} | {value} | {meaning} |")
    per_class = metrics.get("conditional_accuracy_per_class") or []
    worst = _lowest(per_class)
    if worst is not None:
        rows.append(f"| worst digit | {worst}: {_pct(per_class[worst])} | the digit the model draws least reliably |")
    per_code = metrics.get("code_confident") or []
    worst = _lowest(per_code)
    if worst is not None:
        digits = metrics.get("code_digits") or []
        mostly = f" (mostly {digits[worst]}s)" if worst < len(digits) else ""
        rows.append(f"| least clean code | {worst}{mostly}: {_pct(per_code[worst])} confidently classified | the "
                    "latent code whose digits are least often well formed: where a code draws two digits, it morphs "
                    "between them |")
    return rows


RECIPE_BOOKKEEPING = {"steps", "log_every", "sample_every"}     # how long and how often: not how it trains
NOTE_KEYS = ("architecture_note", "recipe_note")
# the notes' words for config and recipe fields (a field not here is shown by its name)
SETTING_WORDS = {
    "lr_g": "G learning rate", "lr_d": "D learning rate", "betas": "Adam betas", "n_critic": "D steps per G step",
    "gp_weight": "gradient-penalty weight", "gp_every": "gradient penalty every k-th D step, k× weighted; k =",
    "r1_gamma": "R1 penalty on real images, γ =",
    "batch": "batch", "ema": "G weight averaging (EMA)", "flip": "horizontal flips", "label_smoothing":
    "label smoothing", "diffaug": "DiffAugment", "code_weight": "weight of reading the code back",
    "lr_decay_from": "learning-rate decay (planned) from step",
    "top_k": "G's loss on the best-scored share of each batch (top-k), down to", "top_k_decay":
    "top-k share's factor per epoch", "z_dim": "latent size", "g_hidden": "G widths",
    "d_hidden": "D widths", "d_dropout": "D dropout", "latent_code": "categorical code size", "ngf": "G width (ngf)",
    "ndf": "D width (ndf)", "d_norm": "D normalisation", "seq_len": "characters per sequence", "dim": "width",
    "n_blocks": "residual blocks"}


def registry_notes(entry: ModelEntry) -> dict:
    """What a checkpoint's architecture and recipe change from its registry entry, whose description states the
    defaults: {"architecture_note": …, "recipe_note": …}, each only when something differs. Read from the
    checkpoint's own entry, so every card says it, whichever run or plan made the checkpoint."""
    default = REGISTRY.get(entry.name)
    if default is None or type(entry.config) is not type(default.config):
        return {}

    def changed(mine, theirs, skip):
        same = lambda a, b: (tuple(a) if isinstance(a, list) else a) == (tuple(b) if isinstance(b, list) else b)
        return [(f.name, getattr(mine, f.name), getattr(theirs, f.name)) for f in dataclasses.fields(mine)
                if f.name not in skip and not same(getattr(mine, f.name), getattr(theirs, f.name))]

    arch = changed(entry.config, default.config, {"vocab"})          # a text model's vocabulary comes from its data
    recipe = changed(entry.recipe, default.recipe, RECIPE_BOOKKEEPING)
    notes = {}
    if arch:
        notes["architecture_note"] = "architecture differs from the registry defaults: " + ", ".join(
            f"{SETTING_WORDS.get(k, k)} {_plain(v)}" for k, v, _ in arch)
    if recipe:
        notes["recipe_note"] = "recipe differs from the registry's: " + ", ".join(
            f"{SETTING_WORDS.get(k, k)} {_plain(v)} (registry {_plain(d)})" for k, v, d in recipe)
    return notes


def _plain(v):
    return list(v) if isinstance(v, tuple) else "none" if v == "" else v


def hardware_text(text: str) -> str:
    """'CPU (…, 1 threads)' as written by older runs → '1 thread'."""
    return str(text).replace(" 1 threads", " 1 thread")


def architecture_summary(entry: ModelEntry) -> str:
    c = entry.config
    if entry.is_text:
        return (f"1D-conv residual generator ({c.n_blocks} blocks, width {c.dim}) → softmax over "
                f"{len(c.vocab or ()) or 'the'} characters × {c.seq_len} positions; 1D-conv critic")
    shape = "×".join(map(str, entry.output_shape))
    kind = {"mlp": "MLP", "dcgan": "DCGAN"}.get(entry.arch, entry.arch)
    cond = f", conditioned on {entry.num_classes} classes" if entry.num_classes else ""
    k = getattr(c, "latent_code", 0)
    code = (f"; a {k}-way categorical code read from z (the largest of its first {k} entries) joins z, and D "
            f"learns to read it back (InfoGAN's term, weight {entry.recipe.code_weight:g}; no labels)" if k else "")
    return f"{kind} generator, z ∈ R^{entry.latent_dim} ({entry.latent_dist}) → {shape} image{cond}{code}"


def data_text(data) -> str:
    """The training data's description without the training machine's absolute path (its file name stays):
    'text train (/work/main/device_data/text/lines.txt)' → 'text train (lines.txt)'."""
    return re.sub(r"\((/[^()]*)\)", lambda m: f"({PurePosixPath(m.group(1)).name})", str(data))


def decay_text(r, step=None) -> str:
    """The learning-rate decay as this checkpoint saw it: a snapshot kept before the plan's decay began (the best of
    a run often is) trained at constant rates, so the card says the decay was planned, not that it happened."""
    if not r.lr_decay_from:
        return ""
    planned = f"linear decay to 0 from step {r.lr_decay_from:,} to {r.steps:,}"
    if not isinstance(step, int) or step >= r.steps:
        return f"; both learning rates decayed linearly to 0 from step {r.lr_decay_from:,} to {r.steps:,}"
    if step <= r.lr_decay_from:
        return f"; constant rates up to this snapshot's step {step:,} (the run's plan: {planned}, not reached)"
    return (f"; both learning rates decayed linearly from step {r.lr_decay_from:,}, to {r.lr_scale(step):.0%} of "
            f"their value at this snapshot's step {step:,} (the plan: {planned})")


def model_card(entry: ModelEntry, meta: dict | None = None, num_parameters: int | None = None) -> str:
    meta = meta or {}
    train, metrics = meta.get("training", {}), meta.get("metrics", {})
    r = entry.recipe
    lines = [f"# {entry.name}", "", entry.description, "",
             f"- **Architecture**: {architecture_summary(entry)}"]
    if num_parameters:
        lines.append(f"- **Generator parameters**: {num_parameters:,}")
    lines += [f"- **Loss**: {r.loss}; Adam lr G {r.lr_g:g} / D {r.lr_d:g}, betas {tuple(r.betas)}, "
              f"{r.n_critic} D step(s) per G step, batch {r.batch}, EMA {r.ema}"
              + decay_text(r, train.get("steps")),
              f"- **Data**: {entry.dataset}; licence: {entry.license}"]
    if train:
        # computed from the checkpoint's own entry; notes older exports stored (some listed settings at their
        # defaults) are replaced
        train = {**{k: v for k, v in train.items() if k not in NOTE_KEYS}, **registry_notes(entry)}
        lines += ["", "## Training", ""]
        shown = {"wall_time_s": ("wall time", lambda v: f"{v / 60:.0f} min"),
                 "images_seen": ("sentences seen" if entry.is_text else "images seen", "{:,}".format),
                 "hardware": ("hardware", hardware_text), "data": ("data", data_text)}
        for k in ("steps", "batch", "images_seen", "wall_time_s", "hardware", "data", "torch", "finished",
                  "architecture_note", "recipe_note", "warm_start", "campaign"):
            if k in train:
                label, show = shown.get(k, (k.replace("_", " "), _fmt))
                try:
                    value = show(train[k])
                except (TypeError, ValueError):
                    value = _fmt(train[k])
                lines.append(f"- {label}: {value}")
    lines += ["", "## Metrics", ""]
    lines += metrics_table(metrics) if metrics else ["- not measured yet"]
    d = meta.get("directions") or {}
    looked = d.get("looked_at") if isinstance(d.get("looked_at"), dict) else {}
    if d.get("labels"):
        lines += ["", "## Latent directions", "",
                  "Directions of change in latent space (GANSpace: principal components of an early layer, carried "
                  "back to z); the first eight are the Explore tab's sliders. "
                  "Each is named after what it measurably does when 200 samples move ±2.5 along it (stroke or "
                  "colour attributes; for unconditional digits, the MNIST classifier's class shift); slider's low "
                  "end ↔ high end. Unnamed ones change nothing measured strongly."
                  + (" Names marked *looked at* were given by a person who looked at the direction sheet "
                     "(`python -m training directions NAME --sheet FILE`); the measured name follows."
                     if looked else ""), "",
                  "| slider | effect |", "| --- | --- |"]
        lines += [f"| {i + 1} | {shown} (*looked at*; measured: {measured}) |" if str(i + 1) in looked
                  else f"| {i + 1} | {measured} |"
                  for i, (shown, measured) in enumerate(zip(shown_labels(d), d["labels"]))]
    if entry.dataset.startswith("celeba"):
        lines += ["", "**Non-commercial research use only** (derived from CelebA)."]
    return "\n".join(lines) + "\n"
