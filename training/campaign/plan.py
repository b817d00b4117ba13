"""A campaign plan: the TOML file read and checked completely, every error (one line naming the file) before any
run starts."""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path

from gan_demo.checkpoint import FREE_CONFIG_KEYS, free_setting
from gan_demo.models import check_config
from gan_demo.registry import REGISTRY, ModelEntry

RECIPE_KEYS = {"steps", "batch", "lr_g", "lr_d", "betas", "n_critic", "gp_weight", "gp_every", "r1_gamma", "ema",
               "flip", "diffaug", "label_smoothing", "code_weight", "lr_decay_from", "top_k", "top_k_decay",
               "log_every", "sample_every"}
RUN_KEYS = RECIPE_KEYS | {"model", "name", "arch", "eval_every", "eval_samples", "export_samples", "hours",
                          "threads", "device", "seed", "save_every", "targets", "start_from", "d_warmup"}
START_FROM = ("own", "shipped")   # a run without state of its own: from its own snapshots only, or also from the
                                  # model's shipped checkpoint whatever made it
# metrics a run's `targets` may name: met at or below the target (LOWER_IS_BETTER), else at or above it
LOWER_IS_BETTER = {"classifier_fid", "fid", "kid", "js_4gram", "conditional_error", "verbatim_training_lines"}
HIGHER_IS_BETTER = {"confidently_classified", "class_entropy_ratio", "conditional_accuracy", "word_validity"}
CAMPAIGN_KEYS = {"name", "runs_dir", "parked_dir", "parallel", "device", "threads", "data"}


class PlanError(Exception):
    """A plan that cannot run; the message names the file and the problem."""


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
    parked_dir: Path                      # --park's copies of unfinished runs (committed; see park.py)

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


def load_plan(path, data: str | None = None, check_data: bool = True, threads: int | None = None) -> Plan:
    """Read and check a plan completely (every error before any run starts). `data` and `threads` override the
    plan's (threads: for every run); `check_data=False` (for --status) skips looking for the datasets."""
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
    for key in ("name", "runs_dir", "parked_dir", "device", "data"):     # in this order: one error, always the same
        if key in camp:
            _text(f"{path} [campaign]", key, camp[key])
    name = camp.get("name", path.stem)
    runs_dir = Path(camp.get("runs_dir", f"runs/campaign-{name}"))
    parked_dir = Path(camp.get("parked_dir", path.parent / "parked" / name))    # beside the plan, committed with it
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
        if threads is not None:
            spec = dataclasses.replace(spec, threads=threads)
        if spec.name in seen:
            raise PlanError(f"{where}: two runs are named '{spec.name}' (give one a name = …)")
        seen.add(spec.name)
        specs.append(spec)
    if check_data:
        _check_data(path, specs, data)
    return Plan(path, name, runs_dir, parallel, data, specs, parked_dir)


def _spec(where: str, run: dict, entry: ModelEntry, camp: dict) -> RunSpec:
    recipe = {k: _typed(where, k, run[k], getattr(entry.recipe, k)) for k in RECIPE_KEYS if k in run}
    for k in ("gp_weight", "code_weight", "r1_gamma"):
        if k in recipe and recipe[k] < 0:
            raise PlanError(f"{where}: '{k}' must be ≥ 0, got {recipe[k]!r}")
    if recipe.get("r1_gamma") and entry.recipe.loss == "wgangp":
        raise PlanError(f"{where}: r1_gamma is for the bce and lsgan losses; {entry.name} has WGAN-GP's own penalty "
                        f"(gp_weight)")
    for k in ("ema", "label_smoothing"):
        if k in recipe and not 0 <= recipe[k] < 1:
            raise PlanError(f"{where}: '{k}' must be from 0 up to (not including) 1, got {recipe[k]!r}")
    for k in ("top_k", "top_k_decay"):
        if k in recipe and not 0 < recipe[k] <= 1:
            raise PlanError(f"{where}: '{k}' must be above 0 and at most 1, got {recipe[k]!r}")
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
        from ..augment import check_policy
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
