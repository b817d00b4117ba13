"""`campaign PLAN --park`: a run's best snapshot, its discriminator and its campaign record, copied beside the plan
(PARKED_DIR/<run>/, committed with the repository), so that a run longer than one machine's life survives the loss
of its folder. Run folders live in an ignored folder that a replaced machine loses: without a parked copy such a
run warm-starts from the shipped checkpoint (only if this run made it) or from step 0, and a run that has not yet
beaten the shipped model loses everything (celeba64-dcgan-scratch lost 8,665 steps, ~5 sessions of two cores, on
2026-12-07). A parked run whose folder vanished is restored from its copy and warm-starts from that snapshot with
that step's discriminator, its evaluations kept.

The generator is parked in fp16, as shipped checkpoints are (a DCGAN-64: 7 MB; its discriminator 5.5 MB).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .plan import Plan, RunSpec
from .ship import shipped_by
from .state import BEST_D_FILE, BEST_FILE, STATE_FILE, read_state, write_state

# the campaign record keys that describe the run's progress; the rest (a worker's pid, a lock) belong to a machine
_KEPT_STATE = ("plan", "run", "model", "steps_target", "batch", "headline", "evaluations", "best", "warm_start",
               "warm_from_shipped", "d_warmup_left", "d_warmup_total")


def parked_copy(plan: Plan, spec: RunSpec) -> Path:
    return plan.parked_dir / spec.name


def park_run(plan: Plan, spec: RunSpec, out=print, say_empty: bool = True) -> Path | None:
    """Copy the run's best snapshot (G in fp16), its discriminator and its record to parked_copy(); the folder, or
    None (said in one line; for a run without an evaluated snapshot only with say_empty) when there is nothing
    worth parking."""
    from gan_demo.checkpoint import atomic_write, read_checkpoint, save_checkpoint
    run_dir = plan.run_dir(spec)
    state = read_state(run_dir)
    if not state.get("best") or not (run_dir / BEST_FILE).is_file():
        if say_empty:
            out(f"{spec.name}: no evaluated snapshot in {run_dir}: nothing to park")
        return None
    if state.get("finished_at", 0) >= spec.steps:
        out(f"{spec.name}: finished: nothing to park (--export ships its best where it beats the shipped one)")
        return None
    if _shipped_since(plan, spec, state["best"]["step"]):
        out(f"{spec.name}: its best snapshot (step {state['best']['step']}) is shipped: nothing to park (a lost "
            f"folder warm-starts from the shipped checkpoint and the discriminator kept beside it)")
        return None
    dest = parked_copy(plan, spec)
    entry, tensors, meta = read_checkpoint(run_dir / BEST_FILE)
    save_checkpoint(dest / BEST_FILE, entry, tensors, training=meta.get("training"), metrics=meta.get("metrics"),
                    half=True)
    if (run_dir / BEST_D_FILE).is_file():          # kept discriminators are written in fp16 already
        atomic_write(dest / BEST_D_FILE, lambda tmp: shutil.copyfile(run_dir / BEST_D_FILE, tmp))
    else:
        (dest / BEST_D_FILE).unlink(missing_ok=True)
    write_state(dest, {k: state[k] for k in _KEPT_STATE if k in state})
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file()) / 2 ** 20
    best = state["best"]
    out(f"{spec.name}: parked the best snapshot (step {best['step']}, {state.get('headline')} {best['score']}) "
        f"with its discriminator in {dest} ({size:.1f} MiB): commit it, and a lost run folder resumes from it")
    return dest


def parked_state(plan: Plan, spec: RunSpec) -> dict | None:
    """The parked copy's record, when there is one to resume from: a best snapshot that the run has not shipped a
    later one of since (then the usual warm start from the shipped file is newer)."""
    parked = read_state(parked_copy(plan, spec))
    if not parked.get("best") or not (parked_copy(plan, spec) / BEST_FILE).is_file():
        return None
    return None if _shipped_since(plan, spec, parked["best"]["step"]) else parked


def unpark_run(plan: Plan, spec: RunSpec) -> str | None:
    """Restore a run folder that has neither a resume file nor a best snapshot from its parked copy, unless the
    shipped checkpoint is this run's own and at least as far on. What was done, in words, or None."""
    from gan_demo.checkpoint import atomic_write
    src, run_dir = parked_copy(plan, spec), plan.run_dir(spec)
    parked = parked_state(plan, spec)
    if parked is None or (run_dir / "resume.pt").is_file() or (run_dir / BEST_FILE).is_file():
        return None
    step = parked["best"]["step"]
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (BEST_FILE, BEST_D_FILE):
        if (src / name).is_file():
            atomic_write(run_dir / name, lambda tmp, n=name: shutil.copyfile(src / n, tmp))
    write_state(run_dir, parked)
    return f"restored from its parked copy in {src} (best snapshot of step {step})"



def _shipped_since(plan: Plan, spec: RunSpec, step: int) -> bool:
    """The shipped checkpoint is this run's own, of `step` or later."""
    shipped = shipped_by(plan, spec)
    return shipped is not None and shipped.get("steps", 0) >= step
