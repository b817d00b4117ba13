"""The GPU plan's Python part (run by scripts/gpu_plan.sh): on a bare GPU machine, within one time budget,

  1. check the machine (CUDA, free disk, the data) — a problem is one line, and the manifest and log still follow;
  2. decode the CelebA archive once, in parallel over the cores, into the data cache (128 and 64 pixels), and
     read the text corpus;
  3. load the FID Inception file (the fp16 copy put in place by an earlier call, read back as float32) and compute
     the training faces' reference statistics on the GPU; without the file everything else still runs and the
     manifest says that FID must be computed afterwards on the CPU;
  4. run training/plans/gpu.toml with `python -m training campaign` (all runs at once on the one GPU), cut at the
     training deadline: each run keeps its best snapshot (KID / n-gram JSD), a run cut short is still exported;
  5. export each run's best snapshot (fp16 checkpoint, GANSpace directions, card, loss curve, animation) and
     measure it: FID/KID of 10,000 samples against the training faces, the memorisation check (nearest training
     face in Inception space for 1,000 samples vs for 1,000 held-out real faces), n-gram JSD 1–4 and word validity
     for text; sample grids and direction edits;
  6. sample every shipped model through load_generator(name, device="cuda") and record how far its pictures are
     from the CPU's for the same seeds;
  7. `python -m training bench --device cuda --json … --profile …` with the time left;
  8. pack OUT_DIR as at most 8 files of at most 16 MiB (64 MiB in all): the checkpoints, results.tar.gz (split if
     needed; with the runs' discriminators of up to 8 MiB, for a CPU continuation), manifest.json (what each file
     holds, every step's outcome, every problem) and log.txt.

Back on the development machine, `python -m training adopt OUT_DIR` ships what beats the shipped checkpoints
(`adopt` below).

`--rehearse` runs the same steps on the CPU at toy sizes (few steps, tiny widths, few samples, a stand-in
TorchScript Inception unless --inception names a file) so the first run on a GPU is not the script's first run.
This module imports neither gradio nor the app: the GPU machine has PyTorch and no gradio.
"""
from __future__ import annotations

import argparse
import datetime as dt
import errno
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import traceback
from pathlib import Path

from gan_demo.paths import REPO
from gan_demo.registry import REGISTRY

PLAN = REPO / "training" / "plans" / "gpu.toml"
DEFAULT_INCEPTION = Path("/root/cache/inception-fp16.pt")     # put there by the first device call (README)
SPARE_WEIGHTS = Path("/root/cache/weights")                   # the shipped weights, when they travelled that way
MIB = 1 << 20
MAX_FILES, MAX_FILE, MAX_TOTAL = 8, 16 * MIB, 64 * MIB        # what comes back from the device machine
KEEP_D_MAX = 8 * MIB          # a run's discriminator comes back (in the bundle) when its fp16 file is this small
# seconds kept after training for export + evaluation, the bench and packing (GPU / rehearsal)
# (GPU: FID/KID of 10,000 samples + the memorisation check ≈ 15 s per face model, text ≈ 5 s; the bench's eight
# CUDA cases, one compiled, ≈ 100 s. Rehearsal: measured on the busy 2-core CPU, 17 s and 20 s.)
AFTER_TRAINING = {"gpu": {"evaluate": 75, "bench": 120, "pack": 15},
                  "rehearsal": {"evaluate": 25, "bench": 25, "pack": 5}}
CAMPAIGN_GRACE = {"gpu": 40, "rehearsal": 15}   # after the training deadline: the runs' last evaluation and export
SIZES = {  # samples per measurement (the memorisation check searches the FID reference's training faces)
    "gpu": {"fid": 10000, "memorisation": 1000, "text": 10000, "compare_seeds": 16, "directions": 4000},
    "rehearsal": {"fid": 60, "memorisation": 40, "text": 100, "compare_seeds": 4, "directions": 200},
}
DISK_NEEDED = {"gpu": 4 << 30, "rehearsal": 300 * MIB}
# the rehearsal's toy sizes, applied to every run of the GPU plan
# (no EMA: its batch-norm recalibration, 5,120 samples per snapshot, is what a 128-pixel toy run would spend its
# minutes on here; on the GPU it takes well under a second)
REHEARSAL_RUN = {"steps": 2, "batch": 8, "eval_every": 2, "eval_samples": 24, "sample_every": 1, "save_every": 1,
                 "log_every": 1, "hours": 0.03, "ema": 0.0, "d_warmup": 2}
REHEARSAL_ARCH = {"ngf": 8, "ndf": 8, "dim": 16}


class Fatal(Exception):
    """A problem that stops the plan (no CUDA, no data at all, a full disk); its message is the one line."""


class OutOfTime(Exception):
    """SIGTERM from the shell's hard timeout: stop children, pack what exists."""


def _human(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n < 1 << 30 else f"{n / (1 << 30):.1f} GiB"


# --- the plan actually run ----------------------------------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)                         # a TOML basic string is a JSON string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def write_plan(raw: dict, path: Path) -> Path:
    lines = []
    for section in ("campaign", "defaults"):
        lines += [f"[{section}]"] + [f"{k} = {_toml_value(v)}" for k, v in raw.get(section, {}).items()] + [""]
    for run in raw["run"]:
        lines += ["[[run]]"] + [f"{k} = {_toml_value(v)}" for k, v in run.items()] + [""]
    path.write_text("\n".join(lines))
    return path


def effective_plan(work: Path, rehearse: bool, models: list[str]) -> Path:
    """gpu.toml with its runs folder in the work folder, only the runs in `models` (those whose data is here) and,
    for a rehearsal, the CPU and toy sizes."""
    raw = tomllib.loads(PLAN.read_text())
    raw["campaign"]["runs_dir"] = str(work / "runs")
    raw["run"] = [r for r in raw["run"] if r["model"] in models]
    if rehearse:
        raw["campaign"].update(device="cpu", threads=1)
        raw["defaults"] = {**raw.get("defaults", {}), **REHEARSAL_RUN}
        for r in raw["run"]:
            r.update(REHEARSAL_RUN)
            r["arch"] = {k: REHEARSAL_ARCH[k] for k in r.get("arch", {}) if k in REHEARSAL_ARCH} or \
                {k: v for k, v in REHEARSAL_ARCH.items() if k in REGISTRY[r["model"]].config}
    return write_plan(raw, work / "plan.toml")


def plan_models() -> list[str]:
    return [r["model"] for r in tomllib.loads(PLAN.read_text())["run"]]


# --- the stand-in Inception (rehearsal) ------------------------------------------------------------------------
def make_stand_in_inception(path: Path) -> Path:
    """A small TorchScript network with the Inception file's interface (N×3×299×299 in the (x − 128) / 128
    range → N×D features): 8×8 mean colours through a fixed random projection to D = 256 (not 2,048: FID's 2,048²
    eigendecompositions alone took 43 s on the busy 2-core CPU). For rehearsals only: its FID means nothing."""
    import torch

    class StandIn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(192, 256)
            torch.nn.init.normal_(self.proj.weight, std=0.2, generator=torch.Generator().manual_seed(0))
            torch.nn.init.zeros_(self.proj.bias)

        def forward(self, x):
            return torch.relu(self.proj(torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)))

    torch.jit.save(torch.jit.script(StandIn().eval()), str(path))
    return path


# --- the job ------------------------------------------------------------------------------------------------------
class Job:
    def __init__(self, a):
        self.started = a.started or time.time()
        self.mode = "rehearsal" if a.rehearse else "gpu"
        self.deadline = self.started + a.budget
        self.data, self.out = Path(a.data).absolute(), Path(a.out).absolute()
        self.work = Path(a.work).absolute() if a.work else Path("/tmp/gan-demo-gpu-plan" if not a.rehearse else
                                                                self.out.with_name(self.out.name + "-work"))
        self.stage = self.work / "stage"
        self.inception_arg = a.inception
        self.sizes = SIZES[self.mode]
        self.device = "cpu"
        self.problems, self.steps, self.runs = [], {}, {}
        self.inception_path: Path | None = None
        self.manifest = {"plan": str(PLAN.relative_to(REPO)), "mode": self.mode, "budget_s": a.budget,
                         "started": dt.datetime.fromtimestamp(self.started, dt.timezone.utc).isoformat(
                             timespec="seconds")}
        self.log_file = None
        self.models: list[str] = []

    # --- logging ---------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        line = f"[{time.time() - self.started:6.1f}s] {text}"
        print(line, flush=True)
        if self.log_file is not None:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def problem(self, text: str) -> None:
        """A one-line problem: on stderr, in the log and in the manifest."""
        self.problems.append(text)
        print(f"error: {text}", file=sys.stderr, flush=True)
        self.say(f"PROBLEM: {text}")

    def left(self) -> float:
        return self.deadline - time.time()

    def step(self, name: str, fn, *args) -> bool:
        """Run one step; its failure is recorded (one line) and the plan goes on."""
        t0 = time.time()
        self.say(f"--- {name}")
        ok, note = True, None
        try:
            note = fn(*args)
        except (Fatal, OutOfTime):
            self.steps[name] = {"ok": False, "seconds": round(time.time() - t0, 1)}
            raise
        except OSError as e:
            ok, note = False, self._os_error(e)
            self.problem(f"{name}: {note}")
        except Exception as e:                               # noqa: BLE001 — a failed step must not stop the rest
            ok, note = False, f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
            self.problem(f"{name} failed: {note}")
            self.say(traceback.format_exc())
        self.steps[name] = {"ok": ok, "seconds": round(time.time() - t0, 1), **({"note": note} if note else {})}
        self.say(f"{name}: {'done' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
        return ok

    def _os_error(self, e: OSError) -> str:
        if e.errno == errno.ENOSPC:
            return f"disk full ({e.filename or 'writing'}): free space first"
        return f"{e.strerror or e} ({e.filename})" if e.filename else str(e)

    # --- 1. the machine -------------------------------------------------------------------------------------
    def preflight(self):
        if not self.data.exists():               # before torch's import, which takes a while on a busy machine
            raise Fatal(f"missing data: '{self.data}' does not exist (give the folder holding "
                        f"celeba/celeba128-webp.tar.gz and text/lines.txt)")
        import torch
        self.manifest.update(torch=torch.__version__, python=sys.version.split()[0], cpus=os.cpu_count())
        if self.mode == "gpu":
            if not torch.cuda.is_available():
                raise Fatal(f"no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}): nothing "
                            f"trained; `bash scripts/gpu_plan.sh --rehearse …` is the CPU rehearsal")
            self.device = "cuda"
            self.manifest["hardware"] = torch.cuda.get_device_name(0)
        else:
            torch.set_num_threads(min(2, torch.get_num_threads()))
            self.manifest["hardware"] = "CPU (rehearsal)"
        from gan_demo.generator import weights_dir
        if not any(weights_dir().glob("*.safetensors")) and SPARE_WEIGHTS.is_dir():
            # weights/ stayed home (the data needed the room) and came ahead to /root/cache: the campaign warm-starts
            # its runs from the checkpoints the last GPU plan shipped, and step 6 compares them
            os.environ["GAN_DEMO_WEIGHTS_DIR"] = str(SPARE_WEIGHTS)
        self.manifest["weights_dir"] = str(weights_dir())
        self.work.mkdir(parents=True, exist_ok=True)
        for path, need in ((self.work, DISK_NEEDED[self.mode]), (self.out, MAX_TOTAL + MIB)):
            free = shutil.disk_usage(path).free
            if free < need:
                raise Fatal(f"disk full: {_human(free)} free at {path}, the plan needs {_human(need)}")
        from gan_demo.paths import STANDARD_PATHS
        missing, models = [], []
        for model in plan_models():              # the standard layout only: any other folder is not the data
            kind = "text" if REGISTRY[model].is_text else "celeba"
            found = any((self.data / sub).is_file() for sub in STANDARD_PATHS[kind])
            (models if found else missing).append(model)
        if missing:
            what = sorted({"text corpus (text/lines.txt)" if REGISTRY[m].is_text else
                           "CelebA archive (celeba/celeba128-webp.tar.gz)" for m in missing})
            msg = f"missing data: no {' and no '.join(what)} under '{self.data}'"
            if not models:
                raise Fatal(msg + ": nothing to train")
            self.problem(msg + f": skipping {', '.join(missing)}")
        self.models = models
        return f"{self.manifest['hardware']}; runs: {', '.join(models)}"

    # --- 2. data --------------------------------------------------------------------------------------------
    def prepare_data(self):
        from .data import decode_workers, load_dataset
        notes = []
        for ds in sorted({REGISTRY[m].dataset for m in self.models}, reverse=True):
            t0 = time.time()
            d = load_dataset(ds, self.data)
            notes.append(f"{ds}: {len(d):,} training items in {time.time() - t0:.1f} s")
            self.say(notes[-1] + (f" ({decode_workers()} decoding processes)" if ds.startswith("celeba") else ""))
        return "; ".join(notes)

    # --- 3. Inception ---------------------------------------------------------------------------------------
    def inception(self):
        path = Path(self.inception_arg) if self.inception_arg else None
        if self.mode == "rehearsal" and path is None:    # (a path that is not there rehearses its absence)
            path = make_stand_in_inception(self.work / "inception-stand-in.pt")
            self.manifest["inception"] = "stand-in (rehearsal): FID/KID figures are meaningless"
        path = path or DEFAULT_INCEPTION
        os.environ["GAN_DEMO_INCEPTION"] = str(path)      # the campaign's workers read it (quick KID)
        if not path.is_file():
            self.manifest["fid_note"] = ("FID/KID and the memorisation check were not measured here: compute "
                                         "them afterwards on the CPU (python -m training evaluate NAME --fid)")
            self.problem(f"missing Inception file {path}: {self.manifest['fid_note']}")
            return "missing"
        from .metrics.evaluate import reference_stats
        from .metrics.inception import InceptionFeatures
        self.inception_path = path
        self.manifest.setdefault("inception", f"{path.name} ({_human(path.stat().st_size)})")
        inc = InceptionFeatures(path, self.device)
        for ds in sorted({REGISTRY[m].dataset for m in self.models if not REGISTRY[m].is_text}):
            t0 = time.time()
            # cached with every row's features: the final FID and memorisation check read it as it is, and the
            # workers' quick KID takes its first rows (the KID rows) from it
            reference_stats(ds, self.data, inc, keep_features=True)
            self.say(f"{ds}: reference statistics in {time.time() - t0:.1f} s")
        del inc
        if self.device == "cuda":                        # the GPU memory goes to the training runs
            import torch
            torch.cuda.empty_cache()
        return str(path)

    # --- 4. training ------------------------------------------------------------------------------------------
    def train(self):
        budget = AFTER_TRAINING[self.mode]
        train_end = self.deadline - sum(budget.values())
        hours = (train_end - time.time()) / 3600
        if hours * 3600 < 30:
            raise RuntimeError(f"only {hours * 3600:.0f} s left for training")
        plan = effective_plan(self.work, self.mode == "rehearsal", self.models)
        shutil.copyfile(plan, self.stage / "plan.toml")
        cmd = [sys.executable, "-m", "training", "campaign", str(plan), "--data", str(self.data),
               "--hours", f"{hours:.5f}"]
        self.say(f"campaign: {' '.join(cmd[1:])} (training ends in {hours * 3600:.0f} s)")
        rc = self._run(cmd, self.work / "campaign.out", timeout=train_end - time.time() + CAMPAIGN_GRACE[self.mode])
        self.manifest["campaign_exit"] = rc
        for name in ("campaign.out",):
            self.say((self.work / name).read_text()[-4000:])
        return f"campaign exit {rc}"

    def _run(self, cmd, log: Path, timeout: float) -> int | None:
        """A child in its own process group, cut (group-wide: a campaign's workers too) at `timeout` seconds."""
        with open(log, "w") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
            try:
                return p.wait(timeout=max(timeout, 1))
            except subprocess.TimeoutExpired:
                self.say(f"{cmd[3]}: still running at its cut: stopping it")
                self._stop(p)
                return None
            except BaseException:                    # the hard time limit: the child's whole group goes too
                self._stop(p, grace=3)
                raise

    @staticmethod
    def _stop(p: subprocess.Popen, grace: float = 15) -> None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    # --- 5. export and evaluate ------------------------------------------------------------------------------
    def export(self):
        from .campaign import BEST_FILE, read_state
        from .export import export_run, ship_run_files
        done = []
        for model in self.models:
            run_dir = self.work / "runs" / model
            source = BEST_FILE if (run_dir / BEST_FILE).is_file() else "generator.safetensors"
            if not (run_dir / source).is_file():
                self.problem(f"{model}: the run left no generator (see its campaign.log in results.tar.gz)")
                continue
            dest = export_run(run_dir, to=self.stage / f"{model}.safetensors", source=source, device=self.device,
                              direction_samples=self.sizes["directions"])
            ship_run_files(run_dir, self.stage, model)
            self._keep_discriminator(run_dir, model)
            st = read_state(run_dir)
            best = st.get("best") or {}
            self.runs[model] = {"file": dest.name, "snapshot": "last (never evaluated)" if source != BEST_FILE else
                                "best" if best.get("score") is not None else "latest (no metric to choose by)",
                                "best": best.get("step"),
                                "evaluations": len(st.get("evaluations", []))}
            done.append(model)
        return f"exported {', '.join(done) or 'nothing'}"

    def _keep_discriminator(self, run_dir: Path, model: str) -> None:
        """The run's discriminator comes back too (stage/discriminators/, in the results bundle), so that the CPU
        campaign can continue the generator without a fresh D (which set every such continuation back: docs/
        recipes-by-measurement.md). Not one over KEEP_D_MAX: the 128-px ones (21 MiB in fp16) would crowd out the
        generators, and the CPU cannot continue those models anyway."""
        from .campaign import BEST_D_FILE
        from .export import ship_discriminator
        # the best snapshot's D where it was exported (the file exists only beside a best snapshot), else the latest
        kept = ship_discriminator(run_dir, model, self.stage, snapshot=run_dir / BEST_D_FILE)
        if kept is not None and kept.stat().st_size > KEEP_D_MAX:
            self.say(f"{model}: its discriminator ({_human(kept.stat().st_size)}) stays here (over "
                     f"{_human(KEEP_D_MAX)})")
            kept.unlink()

    def evaluate(self):
        from gan_demo import load_generator
        from .export import update_metrics
        for model, info in self.runs.items():
            if self.left() < AFTER_TRAINING[self.mode]["pack"] + AFTER_TRAINING[self.mode]["bench"] / 2:
                self.problem(f"{model}: not evaluated (out of time)")
                continue
            path = self.stage / info["file"]
            g = load_generator(str(path), device=self.device)
            t0 = time.time()
            m = self._text_metrics(g) if g.entry.is_text else self._image_metrics(g, model)
            update_metrics(str(path), m)
            info["metrics"] = m
            info["training"] = {k: g.training_info.get(k) for k in ("steps", "batch", "images_seen",
                                                                    "wall_time_s", "hardware")}
            self.say(f"{model}: {json.dumps(m)[:600]} ({time.time() - t0:.1f} s)")
        (self.stage / "metrics.json").write_text(json.dumps(self.runs, indent=1))
        return f"measured {len(self.runs)} model(s)"

    def _text_metrics(self, g) -> dict:
        from .metrics.text_metrics import evaluate_text
        m = evaluate_text(g, self.data, self.sizes["text"])
        (self.stage / f"{g.name}-samples.txt").write_text("\n".join(g.sample_text(list(range(64)))) + "\n")
        return m

    def _image_metrics(self, g, model) -> dict:
        from gan_demo.render import make_grid, to_pil
        from .export import direction_sheet
        to_pil(make_grid(g.sample(list(range(64))), 8)).save(self.stage / f"{model}-grid.png")
        if g.directions is not None:                  # rows: seeds 0 and 1 along direction 1, …; −3 … +3
            direction_sheet(g, seeds=(0, 1)).save(self.stage / f"{model}-directions.png")
        if self.inception_path is None:
            return {}
        from .metrics.evaluate import evaluate_fid
        # one Inception pass over the training faces: its features are also the ones the memorisation check searches
        return evaluate_fid(g, self.data, self.sizes["fid"], str(self.inception_path), self.device, memorisation=True,
                            memorisation_samples=self.sizes["memorisation"])

    # --- 6. the app's GPU path against the CPU ------------------------------------------------------------------
    def compare_devices(self):
        """Every shipped model and every new one: the same seeds on the CPU and on this device."""
        import numpy as np
        from gan_demo import load_generator
        from gan_demo.generator import weights_dir
        names = [n for n in REGISTRY if (weights_dir() / REGISTRY[n].weights_file).is_file()]
        targets = [(n, n) for n in names] + [(f"new {m}", str(self.stage / i["file"])) for m, i in self.runs.items()]
        seeds = list(range(self.sizes["compare_seeds"]))
        rows = {}
        for label, ref in targets:
            cpu, dev = load_generator(ref, device="cpu"), load_generator(ref, device=self.device)
            if cpu.entry.is_text:
                a, b = cpu.sample_tokens(seeds), dev.sample_tokens(seeds)
                rows[label] = {"tokens_equal": round(float((a == b).float().mean()), 4)}
            else:
                a, b = cpu.sample(seeds).astype(np.float64), dev.sample(seeds).astype(np.float64)
                mse = float(((a - b) ** 2).mean())
                rows[label] = {"max_abs": float(np.abs(a - b).max()), "mean_abs": round(float(np.abs(a - b).mean()), 3),
                               "psnr_db": round(10 * math.log10(255 ** 2 / mse), 2) if mse else None}
            self.say(f"{label}: {rows[label]}")
        out = {"device": self.device, "seeds": seeds, "weights_dir": str(weights_dir()), "models": rows,
               "note": "uint8 pixels of load_generator(name, device) against device='cpu' for the same seeds"
                       + ("; a rehearsal compares the CPU with itself" if self.device == "cpu" else "")}
        (self.stage / "devices.json").write_text(json.dumps(out, indent=1))
        return f"{len(rows)} model(s) compared"

    # --- 7. the bench -----------------------------------------------------------------------------------------
    def bench(self):
        left = self.left() - AFTER_TRAINING[self.mode]["pack"]
        if left < 20:
            raise RuntimeError(f"skipped: {left:.0f} s left")
        cmd = [sys.executable, "-m", "training", "bench", "--json", str(self.stage / "bench.json"),
               "--profile", str(self.stage / "bench-profile.txt"), "--data", str(self.data)]
        cmd += ["--device", "cuda"] if self.device == "cuda" else ["--device", "cpu", "--model", "mnist-gan",
                                                                   "--batch", "8", "--steps", "2"]
        rc = self._run(cmd, self.stage / "bench.txt", timeout=left)
        self.say((self.stage / "bench.txt").read_text()[-6000:])
        if rc != 0:
            raise RuntimeError(f"bench {'cut at its time limit' if rc is None else f'exit {rc}'} "
                               f"(rows so far in bench.txt)")
        return "bench.json written"

    # --- 8. packing ------------------------------------------------------------------------------------------
    def collect_run_files(self) -> None:
        """The runs' small files (logs, campaign state, last sample text, cards) go in the results bundle."""
        runs = self.work / "runs"
        for run_dir in sorted(runs.iterdir()) if runs.is_dir() else []:
            dest = self.stage / "runs" / run_dir.name
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("campaign.json", "campaign.log", "worker.out", "log.jsonl", "config.json"):
                if (run_dir / name).is_file():
                    shutil.copyfile(run_dir / name, dest / name)
            texts = sorted((run_dir / "samples").glob("*.txt"))
            if texts:
                shutil.copyfile(texts[-1], dest / texts[-1].name)
        for name in ("campaign.out",):
            if (self.work / name).is_file():
                shutil.copyfile(self.work / name, self.stage / name)

    def pack(self) -> None:
        """OUT: the checkpoints, results.tar.gz (in parts when over 16 MiB), manifest.json, log.txt — at most 8
        files, 16 MiB each, 64 MiB in all. What cannot fit is left out and named in the manifest."""
        files, left_out = {}, []
        try:
            self.collect_run_files()
        except OSError as e:
            self.problem(f"collecting the run files: {self._os_error(e)}")
        ckpts = sorted(self.stage.glob("*.safetensors"))
        slots = MAX_FILES - 2
        room = MAX_TOTAL - 2 * MIB                     # kept for the manifest and the log
        for p in ckpts:
            size = p.stat().st_size
            if size > MAX_FILE or size > room or slots <= 1:      # one slot is kept for the results bundle
                why = "over 16 MiB" if size > MAX_FILE else "no room left" if size > room else "no file slot left"
                left_out.append(f"{p.name} ({_human(size)}: {why})")
                continue
            shutil.copyfile(p, self.out / p.name)
            files[p.name] = {"bytes": size, "sha256": _sha256(p), "holds": "fp16 generator checkpoint with its "
                             "metadata (training, metrics, directions); card in results.tar.gz"}
            slots, room = slots - 1, room - size
        members = sorted(p for p in self.stage.rglob("*") if p.is_file() and p not in ckpts)
        # GIF animations and direction sheets go first when the bundle does not fit, then the discriminators
        optional = sorted((p for p in members if p.suffix == ".gif" or p.name.endswith("-directions.png")),
                          key=lambda p: -p.stat().st_size) + \
            sorted((p for p in members if p.parent.name == "discriminators"), key=lambda p: -p.stat().st_size)
        while True:
            bundle = self.work / "results.tar.gz"
            with tarfile.open(bundle, "w:gz") as tar:
                for p in members:
                    tar.add(p, arcname=str(p.relative_to(self.stage)))
            size = bundle.stat().st_size
            if size <= min(room, slots * MAX_FILE) or not optional:
                break
            drop = optional.pop(0)
            members.remove(drop)
            left_out.append(f"{drop.name} (results bundle over the size limits)")
        parts = [bundle] if size <= MAX_FILE else _split(bundle, MAX_FILE)
        if len(parts) > slots:
            left_out.append(f"results.tar.gz parts {slots}…{len(parts) - 1} (more files than the limit)")
        holds = [str(p.relative_to(self.stage)) for p in members]
        for i, part in enumerate(parts[:slots]):
            shutil.copyfile(part, self.out / part.name)
            files[part.name] = {"bytes": part.stat().st_size, "sha256": _sha256(part), "holds": holds if i == 0
                                else f"part {i} of results.tar.gz (join: cat results.tar.gz.part* > results.tar.gz)"}
        self.manifest.update(
            complete=not self.problems, problems=self.problems, steps=self.steps, runs=self.runs, files=files,
            left_out=left_out, wall_s=round(time.time() - self.started, 1),
            log="log.txt: every step's output, the campaign's and the bench's included")
        text = json.dumps(self.manifest, indent=1)
        (self.out / "manifest.json").write_text(text)
        self.say(f"packed {len(files)} file(s) + manifest.json + log.txt into {self.out} in "
                 f"{time.time() - self.started:.0f} s of {self.deadline - self.started:.0f}")

    # --- all of it ---------------------------------------------------------------------------------------------
    def run(self) -> int:
        self.out.mkdir(parents=True, exist_ok=True)
        for p in self.out.iterdir():                # an earlier run's results (never other files)
            if p.is_file() and (p.suffix == ".safetensors" or p.name.startswith("results.tar.gz") or
                                p.name in ("manifest.json", "log.txt")):
                p.unlink()
        self.log_file = open(self.out / "log.txt", "w")
        shutil.rmtree(self.stage, ignore_errors=True)
        self.stage.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("GAN_DEMO_CACHE", str(self.work / "cache"))
        old = signal.signal(signal.SIGTERM, _out_of_time)
        self.say(f"GPU plan ({self.mode}) from {REPO}: data {self.data}, out {self.out}, work {self.work}, "
                 f"budget {self.deadline - self.started:.0f} s")
        try:
            self.step("preflight", self.preflight)
            self.step("data", self.prepare_data)
            self.step("inception", self.inception)
            if self.step("train", self.train):
                self.step("export", self.export)
                self.step("evaluate", self.evaluate)
            self.step("compare devices", self.compare_devices)
            self.step("bench", self.bench)
        except Fatal as e:
            self.problem(str(e))
        except OutOfTime:
            self.problem("the hard time limit came first: stopped and packed what exists")
        finally:
            signal.signal(signal.SIGTERM, old)
            try:
                self.pack()
            except OSError as e:
                self.problem(f"packing: {self._os_error(e)}")
                raise
            finally:
                self.log_file.close()
        return 0 if not self.problems else 1


# --- back home: the results into weights/ ------------------------------------------------------------------------
class AdoptError(Exception):
    """The folder is not a GPU plan's results (no manifest, no bundle)."""


def adopt(results, force: bool = False, out=print) -> list[str]:
    """The GPU plan's OUT folder (as the device returned it) → weights/: each checkpoint that beats the shipped one
    on its headline metric (KID, n-gram JSD; or `force`) goes there with its card, loss history and curve and
    animation, and the README's sample grid is drawn. → the models shipped."""
    import tempfile
    from gan_demo.checkpoint import CheckpointError, atomic_write, read_checkpoint
    from gan_demo.generator import weights_dir
    from gan_demo.paths import beside_files
    from .campaign import headline_value, readme_grid, shipped_note, shipped_score, why_not_ship
    from .export import discriminator_file
    results = Path(results)
    if not results.is_dir():
        raise AdoptError(f"{results}: no such folder")
    if not (results / "manifest.json").is_file():
        raise AdoptError(f"{results}: no manifest.json here (not the folder a GPU plan packed)")
    try:
        manifest = json.loads((results / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise AdoptError(f"{results / 'manifest.json'}: unreadable ({e})") from None
    runs = manifest.get("runs", {}) if isinstance(manifest, dict) else None
    if not isinstance(runs, dict) or not all(isinstance(v, dict) for v in runs.values()):
        raise AdoptError(f"{results / 'manifest.json'}: not a GPU plan's manifest (its 'runs' is no table of runs)")
    if not runs:
        raise AdoptError(f"{results / 'manifest.json'}: lists no runs (the plan trained nothing; see its log.txt)")
    numbered = [(p, p.suffix[len(".part"):]) for p in results.glob("results.tar.gz.part*")]
    if any(not n.isdigit() for _, n in numbered):
        raise AdoptError(f"{results}: '{next(p.name for p, n in numbered if not n.isdigit())}' is no numbered part "
                         f"of results.tar.gz (.part1, .part2, …)")
    parts = [p for p, n in sorted(numbered, key=lambda pn: int(pn[1]))] or \
        [p for p in [results / "results.tar.gz"] if p.is_file()]
    if not parts:
        raise AdoptError(f"{results}: no results.tar.gz (the cards and curves travel in it)")
    shipped = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open(tmp / "results.tar.gz", "wb") as f:
            for part in parts:
                f.write(part.read_bytes())
        try:
            with tarfile.open(tmp / "results.tar.gz") as tar:
                tar.extractall(tmp / "bundle", filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise AdoptError(f"{results}: results.tar.gz is damaged ({e}); nothing adopted") from None
        bundle = tmp / "bundle"
        for model, info in runs.items():
            ckpt = results / str(info.get("file", ""))
            if model not in REGISTRY or not ckpt.is_file():
                why = ("not a registry model" if model not in REGISTRY else
                       "its checkpoint did not come back (see the manifest: left_out)")
                out(f"{model}: not adopted: {why}")
                continue
            entry = REGISTRY[model]
            try:
                _, _, meta = read_checkpoint(ckpt)
            except CheckpointError as e:
                out(f"{model}: not adopted: {e}")
                continue
            new, old = headline_value(entry, meta.get("metrics") or {}), shipped_score(entry)
            why = None if force else why_not_ship(entry, new, old)
            if why:
                out(f"{model}: not adopted: {why}")
                continue
            folder = weights_dir()
            dest = folder / entry.weights_file
            beside = [(ckpt, dest), (bundle / f"{model}.md", dest.with_suffix(".md")),
                      *zip(beside_files(bundle, model), beside_files(folder, model)),
                      (discriminator_file(model, bundle), discriminator_file(model, folder))]
            for src, to in beside:
                if src.is_file():
                    to.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(to, lambda tmp_path, src=src: shutil.copyfile(src, tmp_path))
                elif to.suffix != ".md":
                    to.unlink(missing_ok=True)            # the old run's curve, animation or D would mislead
            readme_grid(entry, dest)
            shipped.append(model)
            out(f"{model}: adopted into {dest} ({shipped_note(entry, new, old)})")
    return shipped


def _out_of_time(signum, frame):
    raise OutOfTime


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _split(path: Path, size: int) -> list[Path]:
    parts = []
    with open(path, "rb") as f:
        while chunk := f.read(size):
            part = path.with_name(f"{path.name}.part{len(parts)}")
            part.write_bytes(chunk)
            parts.append(part)
    return parts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.gpu_plan", description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="folder holding celeba/celeba128-webp.tar.gz and text/lines.txt")
    p.add_argument("out", help="folder for the ≤ 8 result files (emptied first)")
    p.add_argument("--rehearse", action="store_true", help="the CPU rehearsal at toy sizes")
    p.add_argument("--budget", type=float, default=525, help="seconds from --started to the packed results")
    p.add_argument("--started", type=float, help="the job's start (epoch seconds; default now)")
    p.add_argument("--inception", help=f"TorchScript Inception file (default {DEFAULT_INCEPTION}; a rehearsal "
                                       f"without one makes a stand-in, with a missing one goes without)")
    p.add_argument("--work", help="work folder (data cache, runs; default /tmp/gan-demo-gpu-plan, or OUT-work "
                                  "beside OUT for a rehearsal)")
    a = p.parse_args(argv)
    try:
        return Job(a).run()
    except OSError as e:
        print(f"error: cannot write the results ({e.strerror or e}: {e.filename or a.out})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
