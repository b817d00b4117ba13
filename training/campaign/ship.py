"""`campaign PLAN --export`: measure a run's best snapshot with the full metric, as the shipped checkpoint was
measured, and ship it to weights/ only if it beats that checkpoint."""
from __future__ import annotations

import shutil
from pathlib import Path

from gan_demo.paths import REPO
from gan_demo.registry import ModelEntry

from .evaluation import headline, headline_value, targets_missed
from .plan import HIGHER_IS_BETTER, LOWER_IS_BETTER, Plan, RunSpec
from .state import BEST_D_FILE, BEST_FILE, checkpoint_identity, read_state, save_snapshot


def shipped_meta(entry: ModelEntry) -> dict | None:
    """The shipped checkpoint's metadata (None when nothing is shipped or it cannot be read)."""
    from gan_demo.checkpoint import CheckpointError, read_checkpoint
    from gan_demo.generator import weights_dir
    try:
        return read_checkpoint(weights_dir() / entry.weights_file)[2]
    except (CheckpointError, FileNotFoundError):
        return None


def shipped_by(plan: Plan, spec: RunSpec) -> dict | None:
    """The shipped checkpoint's training record when this plan run made it (the campaign's note in it), else None."""
    training = (shipped_meta(spec.entry) or {}).get("training") or {}
    return training if (training.get("campaign") or {}).get("run") == f"{plan.name}/{spec.name}" else None


def shipped_metrics(entry: ModelEntry) -> dict | None:
    """The shipped checkpoint's metrics (None when nothing is shipped or it cannot be read)."""
    meta = shipped_meta(entry)
    return None if meta is None else meta.get("metrics") or {}


def shipped_score(entry: ModelEntry) -> float | None:
    """The shipped checkpoint's value of the model's headline metric (None when not shipped or not measured)."""
    metrics = shipped_metrics(entry)
    return None if metrics is None else headline_value(entry, metrics)


def why_not_ship(entry: ModelEntry, new: float | None, old: float | None,
                 targets_missed_new_old: tuple[int, int] | None = None) -> str | None:
    """Why a candidate whose headline metric is `new` may not replace the shipped checkpoint (`old`; None when
    nothing is shipped), or None when it may (lower is better for every headline metric). With the run's targets
    (how many each misses), meeting more of them comes first."""
    if new is None:
        return f"no {headline(entry)} measured (evaluate it, or --force)"
    if old is None:
        return None
    if targets_missed_new_old and targets_missed_new_old[0] != targets_missed_new_old[1]:
        new_missed, old_missed = targets_missed_new_old
        return None if new_missed < old_missed else \
            f"it misses {new_missed} of the run's targets, the shipped checkpoint {old_missed}"
    if new >= old:
        return f"{headline(entry)} {new:.4g} does not beat the shipped {old:.4g}"
    return None


def shipped_note(entry: ModelEntry, new: float | None, old: float | None) -> str:
    """"<metric> <new>, shipped was <old>": what a shipping message says about the two."""
    return f"{headline(entry)} {'-' if new is None else f'{new:.4g}'}{'' if old is None else f', shipped was {old:.4g}'}"


def measured_by_fid(entry: ModelEntry) -> bool:
    """Whether a model's export is measured with FID/KID of Inception features: the colour image models (digits have
    the MNIST classifier, text its n-gram divergences)."""
    return not (entry.dataset == "mnist" or entry.is_text)


def export_protocol(spec: RunSpec, shipped: dict | None) -> tuple[int, int | None]:
    """(samples, reference images) of a run's export measurement: the shipped checkpoint's own counts where its
    metrics record them, so that the two scores compare like with like (FID of 5,000 samples reads higher than of
    10,000, and a 4-gram divergence of 2,000 sentences higher than of 10,000: the shipped text GAN's 0.308 reads
    0.326; a GPU-measured model's reference is the whole training set); else the plan's export_samples and the
    device's default reference (None). The reference count is for image models only."""
    if not shipped:
        return spec.export_samples, None
    if measured_by_fid(spec.entry):
        n, ref = shipped.get("fid_samples"), shipped.get("fid_reference_images")
        if isinstance(n, int) and n > 1 and isinstance(ref, int) and ref > 1:
            return n, ref
        return spec.export_samples, None
    n = shipped.get("text_samples" if spec.entry.is_text else "classifier_fid_samples")
    return (n if isinstance(n, int) and n > 1 else spec.export_samples), None


def measured_text(metrics: dict) -> str:
    """An export's figures that a target may name, in one line (its headline decides; the others are worth seeing
    when it does not ship)."""
    return ", ".join(f"{k} {metrics[k]:.4g}" for k in sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER)
                     if isinstance(metrics.get(k), (int, float))) or "-"


LATEST_FILE = "latest-snapshot.safetensors"     # --export --latest's candidate, written and read by one export


def _latest_snapshot(plan: Plan, spec: RunSpec) -> tuple[Path | None, int]:
    """The run's latest snapshot (the generator it wrote at its last evaluation or stop) as a campaign snapshot
    beside it, recording its step and cheap metric like the best one: (the file, its step), (None, 0) when there is
    none."""
    from gan_demo.checkpoint import read_checkpoint
    from ..runlog import RunFolder
    run_dir = plan.run_dir(spec)
    src = RunFolder(run_dir).checkpoint
    if not src.is_file():
        return None, 0
    step = int((read_checkpoint(src)[2].get("training") or {}).get("steps", 0))   # unreadable: CheckpointError
    state = read_state(run_dir)
    rec = next((e for e in reversed(state.get("evaluations", [])) if e.get("step") == step), {})
    save_snapshot(src, run_dir / LATEST_FILE, plan, spec, state, step, rec.get("score"), rec.get("metrics") or {},
                  kept_as="latest_step")
    return run_dir / LATEST_FILE, step


def export_best(plan: Plan, spec: RunSpec, force: bool = False, out=print, latest: bool = False) -> Path | None:
    """The run's best snapshot (`latest`: its latest one, for when a larger measurement prefers it to the cheap
    metric's best) → weights/ (fp16, directions, card, loss curve, animation), measured with the full metric (10,000
    digits for MNIST; FID/KID for images; n-gram JSD for text) and shipped only if it beats the shipped checkpoint on
    that metric (or `force`). The discriminator of the same step ships beside it."""
    from ..export import export_run
    from ..metrics.evaluate import evaluate
    run_dir = plan.run_dir(spec)
    source, latest_step = _latest_snapshot(plan, spec) if latest else (run_dir / BEST_FILE, None)
    if source is None or not source.is_file():
        out(f"{spec.name}: nothing to export yet (no {'snapshot' if latest else 'evaluated snapshot'})")
        keep_discriminator(plan, spec, out)
        return None
    staged = run_dir / "export-candidate.safetensors"
    export_run(run_dir, to=staged, source=source.name)
    if latest:
        source.unlink()
    shipped = shipped_metrics(spec.entry)
    n, ref_images = export_protocol(spec, shipped)
    if ref_images is not None:
        out(f"{spec.name}: measured as the shipped checkpoint was: {n:,} samples against {ref_images:,} training "
            f"images")
    checked = "memorisation_ratio" in (shipped or {})      # the shipped card has the memorisation check: so will this
    full = evaluate(str(staged), plan.data, n=n, fid=measured_by_fid(spec.entry), write=False, ref_images=ref_images,
                    memorisation=checked)
    out(f"{spec.name}: measured {measured_text(full)}")
    new, old = headline_value(spec.entry, full), None if shipped is None else headline_value(spec.entry, shipped)
    missed = ((targets_missed(full, spec.targets), targets_missed(shipped, spec.targets))
              if spec.targets and shipped is not None else None)
    why = None if force else why_not_ship(spec.entry, new, old, missed)
    if why:
        out(f"{spec.name}: not exported: {why}")
        staged.unlink(missing_ok=True)
        staged.with_suffix(".md").unlink(missing_ok=True)
        keep_discriminator(plan, spec, out)
        return None
    # ship the staged file (its directions measured once), with the full metrics, and the run's curves
    from gan_demo.checkpoint import atomic_write
    from gan_demo.generator import weights_dir
    from ..export import read_discriminator, ship_discriminator, ship_run_files, update_metrics
    update_metrics(str(staged), full)
    dest = weights_dir() / spec.entry.weights_file
    for src, to in ((staged, dest), (staged.with_suffix(".md"), dest.with_suffix(".md"))):
        atomic_write(to, lambda tmp, src=src: shutil.copyfile(src, tmp))
        src.unlink()
    ship_run_files(run_dir, dest.parent, spec.entry.name)
    # so a run that loses its folder keeps its D: the one of the shipped snapshot's step
    kept_d = ship_discriminator(run_dir, spec.entry.name, dest.parent,
                                snapshot=None if latest else run_dir / BEST_D_FILE)
    if latest and kept_d is not None and (d_step := read_discriminator(kept_d)[1]) != latest_step:
        out(f"{spec.name}: note: the discriminator kept beside it is the resume file's, of step {d_step} (the "
            f"generator's: {latest_step})")
    readme_grid(spec.entry, dest)
    met = (f"; targets met {len(spec.targets) - missed[0]}/{len(spec.targets)}, shipped was "
           f"{len(spec.targets) - missed[1]}/{len(spec.targets)}" if missed else "")
    out(f"{spec.name}: exported {dest} ({shipped_note(spec.entry, new, old)}{met})")
    return dest


def keep_discriminator(plan: Plan, spec: RunSpec, out=print) -> Path | None:
    """A run that continues the shipped generator and has not beaten it yet still ships its discriminator beside
    it, trained against that generator: the next warm start (the run folder lost) then skips the fresh D's warm-up
    (500 steps of celeba64-dcgan are 16-108 min of a CPU core). Only once any warm-up is done, and only while the
    shipped checkpoint is the one the run started from. Returns the file written, or None."""
    from ..export import ship_discriminator
    run_dir = plan.run_dir(spec)
    state = read_state(run_dir)
    started = state.get("warm_from_shipped")
    shipped = shipped_meta(spec.entry)
    if not started or state.get("d_warmup_left", 0) or shipped is None or checkpoint_identity(shipped) != started:
        return None
    dest = ship_discriminator(run_dir, spec.entry.name)
    if dest is not None:
        out(f"{spec.name}: kept its discriminator ({dest}), trained beside the shipped generator, for the next warm "
            f"start")
    return dest


def readme_grid(entry: ModelEntry, dest: Path) -> None:
    """The README's sample grid (generated images only, never real ones): docs/images/<model>.png when exporting
    into the repository's weights/, else <model>-samples.png beside the exported file."""
    from gan_demo import load_generator
    from gan_demo.generator import DEFAULT_WEIGHTS_DIR
    from gan_demo.render import make_grid, to_pil
    g = load_generator(str(dest), device="cpu")
    if g.entry.is_text:
        return
    # 128-pixel faces: four rows, so the PNG stays near a megabyte
    n, ncol = (100, 10) if entry.dataset == "mnist" else (32, 8) if entry.output_shape[-1] > 64 else (64, 8)
    labels = [i % 10 for i in range(n)] if g.entry.num_classes else None
    out = (REPO / "docs" / "images" / f"{entry.name}.png" if dest.parent.resolve() == DEFAULT_WEIGHTS_DIR.resolve()
           else dest.with_name(f"{entry.name}-samples.png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    to_pil(make_grid(g.sample(list(range(n)), labels=labels), ncol)).save(out)
