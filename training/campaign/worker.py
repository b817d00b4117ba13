"""One run, in its own process (`campaign PLAN --worker NAME`): resume or warm-start, train to each evaluation
point, measure, keep the best snapshot, stop cleanly at the budget or a signal."""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path

from .evaluation import eval_sample_count, headline, metric_value, quick_eval, recounted, replaces_best, \
    rescore_best, score_text
from .plan import Plan, RunSpec
from .park import unpark_run
from .state import BEST_D_FILE, BEST_FILE, checkpoint_identity, is_finished, lock_run, read_state, same_architecture, \
    save_snapshot, write_state

WARMUP_SAVE_EVERY = 50        # a fresh discriminator's warm-up is saved this often (on a CPU: every few minutes)
BUSY = 3                      # a worker's exit code when another process already trains its run


def _say(run_dir: Path, text: str) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}"
    print(line, flush=True)
    with open(run_dir / "campaign.log", "a") as f:
        f.write(line + "\n")


SHIPPED = "the shipped checkpoint"


def _warm_source(plan: Plan, spec: RunSpec, run_dir: Path):
    """(path, what, skipped) of a generator to warm-start from: the run's own best snapshot, else the shipped
    checkpoint when this plan run made it (or whatever made it, with start_from = "shipped") and the architecture
    matches; path None when there is none. `skipped`: why a candidate was passed over ("" when none was)."""
    from gan_demo.checkpoint import CheckpointError, read_checkpoint
    from gan_demo.generator import weights_dir
    skipped = []
    for path, what in ((run_dir / BEST_FILE, "the run's best snapshot"),
                       (weights_dir() / spec.entry.weights_file, SHIPPED)):
        if not path.is_file():
            continue
        try:
            entry, _, meta = read_checkpoint(path)
        except CheckpointError as e:     # said, and the next candidate tried: never a silent restart from 0
            skipped.append(f"{what} is unreadable ({e})")
            continue
        made_here = (meta.get("training") or {}).get("campaign", {}).get("run") == f"{plan.name}/{spec.name}"
        if what == SHIPPED and not made_here and spec.start_from != "shipped":
            continue                     # shipped by something else: not this run's progress
        if not same_architecture(entry, spec.entry):
            skipped.append(f"{what} has another architecture than the plan's")
            continue
        return path, what, "; ".join(skipped)
    return None, "no snapshot of this run to warm-start from", "; ".join(skipped)


def _load_kept_discriminator(trainer, name: str, path: Path | None = None) -> tuple[int | None, str]:
    """Load a kept discriminator into a warm start's trainer: `path`, else the one beside shipped model `name`
    (training.export.ship_discriminator). (The step it was saved at, "") or, when there is none or it does not
    fit, (None, why)."""
    from gan_demo.checkpoint import CheckpointError, check_state_dict
    from ..export import discriminator_file, read_discriminator
    path = path or discriminator_file(name)
    if not path.is_file():
        return None, ""
    try:
        state, step = read_discriminator(path)
        check_state_dict(path, trainer.D.state_dict(), state)
    except CheckpointError as e:
        return None, f"the kept one is unusable: {e}"
    trainer.D.load_state_dict(state)
    return step, ""


def run_worker(plan: Plan, spec: RunSpec, deadline: float | None) -> int:
    import torch
    from gan_demo.checkpoint import read_checkpoint
    from ..data import load_dataset
    from ..export import save_discriminator
    from ..loop import Trainer, TrainingError

    torch.set_num_threads(spec.threads)
    run_dir = plan.run_dir(spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_run(run_dir)             # held until this process ends
    if lock is None:
        print(f"{spec.name}: another process is training this run ({run_dir}); not started twice", file=sys.stderr)
        return BUSY
    state = read_state(run_dir)
    if is_finished(plan, spec):
        return 0
    data = load_dataset(spec.entry.dataset, plan.data)
    stop = threading.Event()
    if spec.hours:
        deadline = min(deadline or math.inf, time.time() + spec.hours * 3600)
    if deadline is not None:
        timer = threading.Timer(max(deadline - time.time(), 0), stop.set)
        timer.daemon = True
        timer.start()

    def make_trainer(init_from=None):
        return Trainer(spec.entry, data, run_dir, device=spec.device, seed=spec.seed, stop_event=stop,
                       save_every=spec.save_every, init_from=init_from, progress=False)

    warm = None                          # why the run cannot simply resume
    d_warmup = 0                         # steps of a fresh D alone, before G trains again
    restored = unpark_run(plan, spec)    # a lost folder of a parked run: its best snapshot, D and record come back
    if restored:
        state = read_state(run_dir)
    if (run_dir / "resume.pt").is_file():
        trainer = make_trainer()
        try:
            trainer.load_resume()
            _say(run_dir, f"resuming at step {trainer.step}/{spec.steps}")
            d_warmup = int(state.get("d_warmup_left", 0))     # a warm-up that was stopped goes on first
        except TrainingError as e:
            warm = f"resume file unusable ({e})"
    else:
        warm = "no resume file (a new run, or its folder vanished)" if not restored else \
            f"no resume file: its folder vanished, {restored}"
    if warm is not None:
        src, what, skipped = _warm_source(plan, spec, run_dir)
        warm += f"; {skipped}" if skipped else ""
        if src is None:
            _say(run_dir, f"{warm}; {what}: starting from step 0")
            trainer = make_trainer()
            # nothing of an earlier life of the run carries over (a record restored with a snapshot that then
            # could not be used, say): its evaluations, best and warm start describe generators that are gone
            state = {}
        else:
            _, _, meta = read_checkpoint(src)
            trainer = make_trainer(init_from=src)
            trainer.step = int((meta.get("training") or {}).get("steps", 0))
            trainer.elapsed = float((meta.get("training") or {}).get("wall_time_s", 0.0))
            own_d = run_dir / BEST_D_FILE if what != SHIPPED and (run_dir / BEST_D_FILE).is_file() else None
            kept_step, why_fresh = _load_kept_discriminator(trainer, spec.entry.name, own_d)
            if kept_step is not None:
                d = ("its discriminator of that step" if own_d else
                     f"the discriminator kept beside the shipped checkpoint (saved at step {kept_step})")
            else:
                d = (f"a fresh discriminator, trained alone for {spec.d_warmup} steps first" if spec.d_warmup
                     else "a fresh discriminator") + (f" ({why_fresh})" if why_fresh else "")
                d_warmup = spec.d_warmup
            state["d_warmup_left"] = state["d_warmup_total"] = d_warmup   # the plan's figure may change later
            state["warm_start"] = f"from {what} at step {trainer.step} with {d} ({warm})"
            state["warm_start_step"] = trainer.step          # --status's step until the run logs its own
            # the steps after the snapshot are trained again: their evaluations were of generators that are gone
            state["evaluations"] = [e for e in state.get("evaluations", []) if e["step"] <= trainer.step]
            if (state.get("best") or {}).get("step", 0) > trainer.step:
                del state["best"]
            if what == SHIPPED:          # whose discriminator an export may keep (keep_discriminator)
                state["warm_from_shipped"] = checkpoint_identity(meta)
            _say(run_dir, f"warm-starting {state['warm_start']}")
    rescore_best(state, spec)
    state.update(plan=plan.name, run=spec.name, model=spec.entry.name, steps_target=spec.steps,
                 batch=spec.entry.recipe.batch, headline=headline(spec.entry))
    state.setdefault("evaluations", [])
    write_state(run_dir, state)

    def evaluate(path: Path) -> None:
        t0 = time.time()
        m = quick_eval(path, spec, plan.data)
        score = metric_value(m, state["headline"])   # None: not measurable here; the latest snapshot is kept
        rec = {"step": trainer.step, "score": score, "eval_s": round(time.time() - t0, 1), "metrics": m}
        state["evaluations"].append(rec)
        best = state.get("best")
        if recounted(best, rec):
            _say(run_dir, f"evaluations now use {eval_sample_count(rec)} samples, the best so far used "
                          f"{eval_sample_count(best)}: the best restarts from this one")
        if replaces_best(best, rec, spec.targets):
            save_snapshot(path, run_dir / BEST_FILE, plan, spec, state, trainer.step, score, m)
            # its D too: an export ships the discriminator of the shipped step, not the latest (cifar10-dcgan's
            # best was at 20,000, its export at 22,177, when D had won and the samples had collapsed)
            save_discriminator(trainer.D.state_dict(), trainer.step, spec.entry.name, run_dir / BEST_D_FILE)
            state["best"] = {"step": trainer.step, "score": score, "metrics": m}
        write_state(run_dir, state)
        _say(run_dir, f"step {trainer.step}: {state['headline']} {score_text(score)} "
                      f"(best {score_text(state['best']['score'])} at {state['best']['step']}; eval {rec['eval_s']} s)")

    killed, training = threading.Event(), threading.Event()

    def interrupted(signum, frame):
        """SIGTERM from the campaign (or `kill`), Ctrl-C: while training, the trainer stops at the end of the step
        in hand and saves (a step cut in half would break exact resuming); otherwise stop at once."""
        killed.set()
        stop.set()
        if not training.is_set():
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    evaluated = {e["step"] for e in state["evaluations"]}
    if warm is not None:
        evaluated.add(trainer.step)      # the warm-start snapshot was measured when it was made

    def due() -> bool:      # an evaluation point (or the last step within the budget) not yet measured
        at_point = trainer.step % spec.eval_every == 0 or trainer.step >= spec.steps or stop.is_set()
        return trainer.step > 0 and at_point and trainer.step not in evaluated and not killed.is_set()

    path = None
    try:
        while True:
            if due():                    # also after a kill that came between training and evaluating
                evaluate(path or trainer.export_run_checkpoint())
                evaluated.add(trainer.step)
            if trainer.step >= spec.steps or stop.is_set():
                break
            training.set()
            try:
                if d_warmup:             # inside the trainer's stop handling: a kill ends it, and train() saves
                    total = state.get("d_warmup_total", spec.d_warmup)
                    t0, earlier = time.time(), total - d_warmup

                    def warmed(done, d_loss):    # saved with what is left of it, so a kill loses little
                        trainer.save_resume()
                        state["d_warmup_left"] = d_warmup - done
                        write_state(run_dir, state)
                        _say(run_dir, f"the fresh discriminator alone: {earlier + done} of {total} steps "
                                      f"({time.time() - t0:.0f} s; D loss {d_loss:.3f})")
                    done = trainer.warm_up_discriminator(d_warmup, every=WARMUP_SAVE_EVERY, on_progress=warmed)
                    state["d_warmup_left"] = d_warmup - done
                    write_state(run_dir, state)      # train() below saves the resume file that goes with it
                    rest = "; the rest comes first when the run goes on" if done < d_warmup else ""
                    _say(run_dir, f"the fresh discriminator trained alone for {earlier + done} of {total} steps "
                                  f"({time.time() - t0:.0f} s{rest})")
                    d_warmup = 0
                path = trainer.train(until=(trainer.step // spec.eval_every + 1) * spec.eval_every)
            finally:
                training.clear()
    except KeyboardInterrupt:            # killed while evaluating: the best snapshot and state files are whole
        _say(run_dir, f"stopped at step {trainer.step} (state saved)")
        return 130
    if killed.is_set():
        _say(run_dir, f"stopped at step {trainer.step} (state saved)")
        return 130
    if trainer.step >= spec.steps:
        state["finished_at"] = trainer.step
        write_state(run_dir, state)
        _say(run_dir, f"finished: {spec.steps} steps")
    else:
        _say(run_dir, f"stopped at step {trainer.step}/{spec.steps} (budget or signal; state saved)")
    return 0
