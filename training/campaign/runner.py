"""The campaign itself (the parent process): start the plan's unfinished runs as worker processes, `parallel` at a
time, watch them, stop them all cleanly on a signal or at the budget."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .evaluation import score_text
from .plan import Plan, PlanError, RunSpec
from .state import is_finished, last_log, read_state, trained_by
from .status import run_summary
from .worker import BUSY


def run_campaign(plan: Plan, hours: float | None = None, only: list[str] | None = None, out=print) -> int:
    """Run the plan's unfinished runs, `plan.parallel` at a time, each in its own worker process."""
    specs = [s for s in plan.runs if not only or s.name in only]
    pending = [s for s in specs if not is_finished(plan, s)]
    for s in specs:
        if s not in pending:
            out(f"{s.name}: finished earlier, skipped")
        elif (pid := trained_by(plan.run_dir(s))) is not None:
            pending.remove(s)
            out(f"{s.name}: being trained by another process (pid {pid}), skipped")
    deadline = time.time() + hours * 3600 if hours else None
    procs: dict[str, subprocess.Popen] = {}
    failed = []

    def stop_all(signum=None, frame=None):
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, stop_all)
    bars = _Bars(plan, out)
    try:
        while pending or procs:
            while pending and len(procs) < plan.parallel and (deadline is None or time.time() < deadline - 30):
                s = pending.pop(0)
                procs[s.name] = _spawn(plan, s, deadline)
                out(f"{s.name}: started ({s.threads} thread(s) on {s.device}, log {plan.run_dir(s) / 'campaign.log'})")
            if deadline is not None and time.time() >= deadline - 30:
                pending = []
            for name, p in list(procs.items()):
                if p.poll() is not None:
                    del procs[name]
                    if p.returncode in (0, BUSY):
                        out(f"{name}: worker ended (exit {p.returncode}); {run_summary(plan, plan.get(name))}")
                    else:
                        failed.append(name)
                        worker_out = plan.run_dir(plan.get(name)) / "worker.out"
                        out(f"{name}: worker failed (exit {p.returncode}): {_last_line(worker_out)} (all of its "
                            f"output: {worker_out}); {run_summary(plan, plan.get(name))}")
            bars.update(procs)
            time.sleep(2)
    except KeyboardInterrupt:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        out("interrupted: every run saved its state; run the same command to continue")
        return 130
    finally:
        bars.close()
        signal.signal(signal.SIGTERM, old)
    if failed:
        out(f"{len(failed)} run(s) ended with an error: {', '.join(failed)} (see their worker.out)")
        return 1
    return 0


def _last_line(path: Path) -> str:
    """The last non-blank line a worker wrote (a traceback ends with its error), shortened."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace")[-20000:].splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1][:300] if lines else "no output"


def check_devices(plan: Plan, only: list[str] | None = None) -> None:
    """Every device the selected runs name exists here: PlanError before any run starts otherwise."""
    from gan_demo.devices import pick_device
    for s in plan.runs:
        if not only or s.name in only:
            try:
                pick_device(s.device)
            except ValueError as e:
                raise PlanError(f"{plan.path}: run '{s.name}': {e}") from None


def _spawn(plan: Plan, s: RunSpec, deadline: float | None) -> subprocess.Popen:
    run_dir = plan.run_dir(s)
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "training", "campaign", str(plan.path), "--worker", s.name]
    if plan.data is not None:
        cmd += ["--data", str(plan.data)]
    cmd += ["--threads", str(s.threads)]          # the worker re-reads the plan: its threads, or the command's
    if deadline is not None:
        cmd += ["--deadline", f"{deadline:.0f}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(s.threads), "MKL_NUM_THREADS": str(s.threads)}
    log = open(run_dir / "worker.out", "a")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd())


class _Bars:
    """One progress bar per running worker (on a terminal), fed from the runs' logs."""

    def __init__(self, plan: Plan, out):
        self.plan, self.bars = plan, {}
        self.enabled = sys.stderr.isatty()

    def update(self, procs):
        if not self.enabled:
            return
        from tqdm import tqdm
        for name in procs:
            s = self.plan.get(name)
            if name not in self.bars:
                self.bars[name] = tqdm(total=s.steps, desc=name, unit="step", position=len(self.bars),
                                       dynamic_ncols=True)
            rec, best = last_log(self.plan.run_dir(s)), read_state(self.plan.run_dir(s)).get("best")
            bar = self.bars[name]
            bar.n = min(rec.get("step", 0), s.steps)
            bar.set_postfix_str(f"best {score_text(best['score'])}@{best['step']}" if best else "", refresh=False)
            bar.refresh()

    def close(self):
        for b in self.bars.values():
            b.close()
