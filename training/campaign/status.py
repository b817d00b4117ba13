"""`campaign PLAN --status`: one row per run, read from the run folders (never from the workers)."""
from __future__ import annotations

from pathlib import Path

from .evaluation import headline, score_text, targets_measured, targets_missed
from .park import check_parked
from .plan import Plan, RunSpec
from .ship import shipped_by
from .state import is_finished, last_log, read_state, trained_by


def run_summary(plan: Plan, s: RunSpec) -> str:
    st = read_state(plan.run_dir(s))
    best = st.get("best")
    return f"best {st.get('headline', headline(s.entry))} {score_text(best['score'])} at step {best['step']}" if best \
        else "not evaluated yet"


def status_rows(plan: Plan) -> list[dict]:
    rows = []
    for s in plan.runs:
        d = plan.run_dir(s)
        st, rec = read_state(d), last_log(d)
        lost = None if d.exists() else _lost_folder(plan, s)     # (record, step, state) of where it would resume
        if lost and lost[0]:
            st = lost[0]
        if lost and lost[1] is not None:
            rec = {"step": lost[1]}
        step = rec.get("step", st.get("warm_start_step", 0))
        ips = rec.get("img_per_s")
        left = None
        if ips and step < s.steps:          # img_per_s counts the generator's images: batch × steps a second
            left = (s.steps - step) * s.entry.recipe.batch / ips
        best = st.get("best")
        measured = targets_measured(best.get("metrics"), s.targets) if best else {}
        rows.append({"run": s.name, "model": s.entry.name, "step": step, "steps": s.steps,
                     "img_per_s": ips, "metric": st.get("headline", headline(s.entry)),
                     "best": best["score"] if best else None, "best_step": best["step"] if best else None,
                     "targets_met": len(measured) - targets_missed(best["metrics"], measured) if measured else None,
                     "targets": len(measured), "targets_at_export": sorted(set(s.targets) - set(measured)),
                     "time_left_s": left, "state": _run_state(plan, s, d, lost)})
    return rows


def _lost_folder(plan: Plan, s: RunSpec) -> tuple[dict | None, int | None, str]:
    """A run without a folder (lost with a machine, or not started): (the record it would resume with, its step,
    its state in words), from --park's copy, else the checkpoint it shipped."""
    parked, why_not = check_parked(plan, s)
    if parked:
        step = parked["parked_step"]
        return parked, step, f"parked at step {step} (run again to resume from it)"
    if why_not:
        return None, None, f"not started: {why_not}"
    if shipped := shipped_by(plan, s):
        step = int(shipped.get("steps", 0))
        return None, step, (f"finished: shipped at step {step}; its folder is not here" if step >= s.steps else
                            f"shipped at step {step}; its folder is not here (run again to continue from it)")
    return None, None, "not started"


def _run_state(plan: Plan, s: RunSpec, run_dir: Path, lost: tuple | None) -> str:
    if is_finished(plan, s):
        return "finished"
    if lost:
        return lost[2]
    pid = trained_by(run_dir)
    state = read_state(run_dir)
    left, total = state.get("d_warmup_left", 0), state.get("d_warmup_total", s.d_warmup)
    warmup = f"; fresh D alone: {total - left}/{total} steps" if left else ""
    return f"stopped (run again to continue{warmup})" if pid is None else f"training (pid {pid}{warmup})"


def _hms(s) -> str:
    if s is None:
        return "-"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def format_status(plan: Plan) -> str:
    head = f"{'run':22s} {'steps':>13s} {'img/s':>7s} {'best metric':>26s} {'targets':>7s} {'time left':>9s}  state"
    where = plan.runs_dir if plan.runs_dir.is_absolute() else f"{plan.runs_dir} (under {Path.cwd()})"
    if not plan.runs_dir.is_dir():                          # a relative runs_dir read from another folder
        where = f"{where}, which does not exist yet"
    lines = [f"campaign '{plan.name}' ({plan.path}), runs in {where}", head, "-" * len(head)]
    for r in status_rows(plan):
        best = f"{r['metric']} {r['best']:.4g}@{r['best_step']}" if r["best"] is not None else "-"
        ips = f"{r['img_per_s']:.0f}" if r["img_per_s"] else "-"
        met = f"{r['targets_met']}/{r['targets']}" if r["targets_met"] is not None else "-"
        later = f"; target {', '.join(r['targets_at_export'])}: at export" if r["best"] is not None and \
            r["targets_at_export"] else ""
        lines.append(f"{r['run']:22s} {r['step']:>6d}/{r['steps']:<6d} {ips:>7s} {best:>26s} {met:>7s} "
                     f"{_hms(r['time_left_s']):>9s}  {r['state']}{later}")
    return "\n".join(lines)
