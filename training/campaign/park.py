"""`campaign PLAN --park`: a run's best snapshot, its discriminator and its campaign record, copied beside the plan
(parked_dir/<run>/, committed with the repository), so that a run longer than one machine's life survives the loss
of its folder. Run folders live in an ignored folder that a replaced machine loses: without a parked copy such a
run warm-starts from the shipped checkpoint (only if this run made it) or from step 0, and a run that has not yet
beaten the shipped model loses everything (celeba64-dcgan-scratch lost 8,665 steps, ~5 sessions of two cores, on
2026-12-07). A parked run whose folder vanished is restored from its copy and warm-starts from that snapshot with
that step's discriminator, its evaluations up to that step kept.

The generator is parked in fp16, as shipped checkpoints are (a DCGAN-64: 7.2 MB; its discriminator 5.5 MB).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .plan import Plan, RunSpec
from .ship import shipped_by
from .state import BEST_D_FILE, BEST_FILE, STATE_FILE, read_state, same_architecture, write_state

# the campaign record keys that describe the run's progress; the rest (a worker's pid, a lock) belong to a machine
_KEPT_STATE = ("plan", "run", "model", "steps_target", "batch", "headline", "evaluations", "best", "warm_start",
               "warm_from_shipped", "d_warmup_left", "d_warmup_total")


def parked_copy(plan: Plan, spec: RunSpec) -> Path:
    return plan.parked_dir / spec.name


def park_run(plan: Plan, spec: RunSpec, out=print, say_empty: bool = True) -> Path | None:
    """Copy the run's best snapshot (G in fp16), its discriminator and its record to parked_copy(); the folder, or
    None (said in one line; for a run without an evaluated snapshot only with say_empty) when there is nothing
    worth parking. An unreadable snapshot raises CheckpointError."""
    from gan_demo.checkpoint import atomic_write, read_checkpoint, save_checkpoint
    from ..export import read_discriminator
    run_dir, dest = plan.run_dir(spec), parked_copy(plan, spec)
    state = read_state(run_dir)
    best = state.get("best")
    if not best or not (run_dir / BEST_FILE).is_file():
        if say_empty:
            out(f"{spec.name}: no evaluated snapshot in {run_dir}: nothing to park")
        return None
    why_not = ("finished" if state.get("finished_at", 0) >= spec.steps else
               f"its best snapshot (step {best['step']}) is shipped" if _shipped_since(plan, spec, best["step"])
               else None)
    if why_not:                          # a lost folder warm-starts from the shipped checkpoint and its kept D
        stale = dest.is_dir()
        if stale:
            shutil.rmtree(dest)
        out(f"{spec.name}: {why_not}: nothing to park" + (f" (its older parked copy in {dest} removed)" if stale
                                                            else ""))
        return None
    entry, tensors, meta = read_checkpoint(run_dir / BEST_FILE)
    g_step = (meta.get("training") or {}).get("steps")
    d_step = read_discriminator(run_dir / BEST_D_FILE)[1] if (run_dir / BEST_D_FILE).is_file() else g_step
    if not g_step == d_step == best["step"]:     # a worker replacing its best snapshot right now
        out(f"{spec.name}: its best snapshot is being replaced (generator of step {g_step}, discriminator of step "
            f"{d_step}, record {best['step']}): nothing parked; run --park again in a minute")
        return None
    tmp = dest.parent / f".{dest.name}.parking"      # the three files of one step, or none: renamed into place
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(tmp / BEST_FILE, entry, tensors, training=meta.get("training"), metrics=meta.get("metrics"),
                    half=True)
    if (run_dir / BEST_D_FILE).is_file():          # kept discriminators are written in fp16 already
        atomic_write(tmp / BEST_D_FILE, lambda t: shutil.copyfile(run_dir / BEST_D_FILE, t))
    write_state(tmp, {k: state[k] for k in _KEPT_STATE if k in state})
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file()) / 1e6
    out(f"{spec.name}: parked the best snapshot (step {best['step']}, {state.get('headline')} {best['score']}) "
        f"with its discriminator in {dest} ({size:.1f} MB): commit it, and a lost run folder resumes from it")
    return dest


def check_parked(plan: Plan, spec: RunSpec) -> tuple[dict | None, str]:
    """(the parked copy's record, "") when there is one to resume from; (None, why not) when there is a copy that
    cannot be used (unreadable, another architecture than the plan's); (None, "") when there is none, or the run
    has shipped the same or a later snapshot since (then the usual warm start from the shipped file is newer).
    A record that cannot be read costs only the evaluations: the snapshot and its discriminator still serve."""
    from gan_demo.checkpoint import CheckpointError, read_checkpoint
    src = parked_copy(plan, spec)
    if not (src / BEST_FILE).is_file():
        return None, ""
    try:
        entry, _, meta = read_checkpoint(src / BEST_FILE)
    except CheckpointError as e:
        return None, f"its parked copy is unreadable ({e})"
    if not same_architecture(entry, spec.entry):
        return None, f"its parked copy in {src} has another architecture than the plan's"
    step = int((meta.get("training") or {}).get("steps", 0))
    if _shipped_since(plan, spec, step):
        return None, ""
    record = read_state(src)
    best = record.get("best") if isinstance(record, dict) else None
    if not isinstance(best, dict) or best.get("step") != step or not isinstance(record.get("evaluations", []), list):
        record = {"note": f"its parked record ({src / STATE_FILE}) was unreadable or not of the parked snapshot: "
                          f"its evaluations are lost"}
    return {**record, "parked_step": step}, ""


def unpark_run(plan: Plan, spec: RunSpec) -> str | None:
    """Restore a run folder that has neither a resume file nor a best snapshot from its parked copy. What was done,
    or why the copy was not used, in words; None when there is no copy to consider."""
    from gan_demo.checkpoint import atomic_write
    src, run_dir = parked_copy(plan, spec), plan.run_dir(spec)
    if (run_dir / "resume.pt").is_file() or (run_dir / BEST_FILE).is_file():
        return None
    record, why_not = check_parked(plan, spec)
    if record is None:
        return why_not or None
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (BEST_FILE, BEST_D_FILE):
        if (src / name).is_file():
            atomic_write(run_dir / name, lambda tmp, n=name: shutil.copyfile(src / n, tmp))
    note = record.pop("note", "")
    step = record.pop("parked_step")
    write_state(run_dir, record)
    return f"restored from its parked copy in {src} (best snapshot of step {step}{'; ' + note if note else ''})"


def _shipped_since(plan: Plan, spec: RunSpec, step: int) -> bool:
    """The shipped checkpoint is this run's own, of `step` or later."""
    shipped = shipped_by(plan, spec)
    return shipped is not None and shipped.get("steps", 0) >= step
