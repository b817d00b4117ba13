"""`python -m training bench [--quick] [--device auto|cpu|cuda] [--compile] [--data ROOT] [--json PATH]`: images/s of
one full GAN training step (ours: training/loop.py) against a naive PyTorch loop on the same models, on the CPU and,
where CUDA is present, on the GPU.

images/s = generator batch × full GAN steps per second; a step is n_critic discriminator updates (each on a fresh
real batch) + one generator update (+ the EMA, ours), with sampling and augmentation of the real images included.
The naive loop is pytorch/examples' dcgan recipe applied to the same step: fp32, a DataLoader (2 worker processes)
over decoded images converted to [-1, 1] item by item on the CPU, `.to(device)` per batch, plain Adam, `.item()`
on the losses every step; same builders, same initial weights, same losses (training/losses.py).
Datasets not found under the data root are replaced by random uint8 images of the right shape (said in the output).
"""
from __future__ import annotations

import dataclasses
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_demo.latents import sample_latents
from gan_demo.models import build_discriminator, build_generator
from gan_demo.paths import data_root, dataset_kind, locate
from gan_demo.registry import REGISTRY, ModelEntry

from .data import DataError, ImageData, load_dataset
from .loop import Trainer, hardware_name
from .losses import d_loss, g_loss, gradient_penalty

NAIVE_WORKERS = 2                   # pytorch/examples' dcgan default (--workers 2)
DEFINITION = " ".join(__doc__.split("\n\n")[1].split())      # the docstring's second paragraph, printed first


@dataclass(frozen=True)
class Case:
    model: str                      # registry name
    batch: int
    compile: bool = False           # CUDA only: Trainer(compile=True)
    target: float | None = None     # GPU target, images/s (H100, end to end)
    ratio_target: float | None = None   # GPU target, ours / naive

    @property
    def label(self) -> str:
        return self.model + (" +compile" if self.compile else "")


CUDA_CASES = (
    Case("mnist-gan", 64), Case("mnist-dcgan", 64), Case("cifar10-dcgan", 128),
    Case("celeba64-dcgan", 128),                            # the recipe's batch, eager: launch-bound
    Case("celeba64-dcgan", 128, compile=True, target=20_000),
    Case("celeba64-dcgan", 512, target=50_000, ratio_target=3.0),
    Case("celeba128-dcgan", 128, target=11_000),
    Case("celeba128-wgangp", 128, target=5_500),
)
CPU_CASES = (Case("mnist-gan", 64), Case("mnist-dcgan", 64), Case("cifar10-dcgan", 128), Case("celeba64-dcgan", 128))
CPU_QUICK = (Case("mnist-gan", 64), Case("mnist-dcgan", 64), Case("cifar10-dcgan", 32), Case("celeba64-dcgan", 16))
# (warm-up steps, timed steps) of ours and of the naive loop; compilation and CUDA-graph capture fall in the warm-up
STEPS = {("cuda", False): ((10, 50), (5, 20)), ("cuda", True): ((5, 20), (3, 10)),
         ("cpu", False): ((3, 20), (3, 15)), ("cpu", True): ((3, 12), (2, 10))}


def select_cases(device: str, quick: bool, models=None, batch: int | None = None, compile_all: bool = False):
    """The cases for a device: the standard ones, or those of `models` (at the recipe batch if not standard);
    `batch` overrides every batch (targets kept only where it is the standard batch)."""
    base = CUDA_CASES if device == "cuda" else CPU_QUICK if quick else CPU_CASES
    if models:
        base = tuple(c for c in base if c.model in models) + tuple(
            Case(m, REGISTRY[m].recipe.batch) for m in models if not any(c.model == m for c in base))
    if device == "cuda" and compile_all:          # a compiled row after each eager one that has none
        have = {(c.model, c.batch) for c in base if c.compile}
        base = tuple(c for e in base for c in ((e,) if e.compile or (e.model, e.batch) in have
                                               else (e, dataclasses.replace(e, compile=True))))
    if batch:
        base = tuple(c if c.batch == batch else dataclasses.replace(c, batch=batch, target=None, ratio_target=None)
                     for c in base)
    out = {}                                         # one case per (model, batch, compile): the first
    for c in base:
        if not (device == "cpu" and c.compile):
            out.setdefault((c.model, c.batch, c.compile), c)
    return list(out.values())


# --- data -------------------------------------------------------------------------------------------------------
def bench_data(entry: ModelEntry, root=None, n: int = 2048) -> ImageData:
    """The entry's real training set under `root` when present (never downloaded), else `n` random uint8 images."""
    root = Path(root) if root is not None else data_root(entry.dataset)
    if locate(dataset_kind(entry.dataset), root) is not None:
        try:
            return load_dataset(entry.dataset, root)
        except DataError:
            pass
    c, h, w = entry.output_shape
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, entry.num_classes, (n,), generator=gen) if entry.num_classes else None
    return ImageData(images, labels, f"synthetic: {n} random uint8 {c}×{h}×{w} images (no usable {entry.dataset} "
                                     f"under '{root}')")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- ours -------------------------------------------------------------------------------------------------------
def time_ours(entry: ModelEntry, data: ImageData, batch: int, device: str, *, warmup: int, steps: int,
              compile: bool = False, seed: int = 0) -> dict:
    """Trainer.train_step timed over `steps` steps after `warmup`; no host sync inside the timed steps."""
    with tempfile.TemporaryDirectory(prefix="gan-bench-") as tmp:
        t = Trainer(entry, data, Path(tmp) / "run", steps=warmup + steps, batch=batch, device=device, seed=seed,
                    log_every=10 ** 9, progress=False, compile=compile)
        t._open_run_folder()                         # (in the temporary folder) _log below appends to its log
        for _ in range(warmup):
            t.train_step()
        if warmup:
            t._log(time.perf_counter(), t.step)      # reads (and resets) the warm-up's losses: one sync
        _sync(t.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            t.train_step()
        _sync(t.device)
        seconds = time.perf_counter() - t0
        rec = t._log(t0, t.step - steps)             # the timed steps' mean losses
        del t
    return {"img_s": steps * batch / seconds, "d_loss": rec["d_loss"], "g_loss": rec["g_loss"]}


def profile_ours(entry: ModelEntry, data: ImageData, batch: int, device: str, *, warmup: int = 3, steps: int = 5,
                 rows: int = 20) -> str:
    """Where Trainer.train_step spends its time: torch.profiler over `steps` steps after `warmup`, the top `rows`
    operators by their own device time (CPU time on the CPU), headed by the wall time per step and, on a GPU, the
    share of it the GPU was busy (far below 100%: the step waits on kernel launches or the host)."""
    from torch.profiler import ProfilerActivity, profile
    with tempfile.TemporaryDirectory(prefix="gan-bench-") as tmp:
        t = Trainer(entry, data, Path(tmp) / "run", steps=warmup + steps, batch=batch, device=device,
                    log_every=10 ** 9, progress=False)
        t._open_run_folder()
        for _ in range(warmup):
            t.train_step()
        _sync(t.device)
        cuda = t.device.type == "cuda"
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            t0 = time.perf_counter()
            for _ in range(steps):
                t.train_step()
            _sync(t.device)
            wall = (time.perf_counter() - t0) / steps
        del t
    events = prof.key_averages()
    head = f"{entry.name}, batch {batch}, {device}: {wall * 1e3:.2f} ms per step (wall, under the profiler)"
    if cuda:
        busy = sum(getattr(e, "self_device_time_total", 0) for e in events) / 1e3 / steps      # µs → ms
        head += f"; GPU busy {busy:.2f} ms of it ({busy / (wall * 1e3):.0%})"
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    return head + "\n" + events.table(sort_by=key, row_limit=rows)


# --- the naive reference loop -----------------------------------------------------------------------------------
class DecodedImages(torch.utils.data.Dataset):
    """Decoded images served one by one, converted on the CPU as ToTensor + Normalize(0.5, 0.5) would
    (+ RandomHorizontalFlip where the recipe flips)."""

    def __init__(self, data: ImageData, flip: bool):
        self.images, self.labels, self.flip = data.images.cpu(), data.labels, flip

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float().div(255).sub(0.5).div(0.5)
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, (int(self.labels[i]) if self.labels is not None else -1)   # collate cannot batch None


def _batches(loader):
    while True:                                      # epoch after epoch
        yield from loader


def time_naive(entry: ModelEntry, data: ImageData, batch: int, device: str, *, warmup: int, steps: int,
               workers: int = NAIVE_WORKERS, seed: int = 0) -> dict:
    """The same GAN step written the textbook way (see the module docstring), timed like time_ours."""
    device = torch.device(device)
    r = entry.recipe
    init = torch.Generator().manual_seed(seed)       # the same initial weights as ours
    G = build_generator(entry.arch, entry.config, generator=init).to(device)
    D = build_discriminator(entry.arch, entry.config, generator=init).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=r.lr_g, betas=r.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=r.lr_d, betas=r.betas)
    # persistent workers: a real epoch is long, so re-forking the workers each (short, synthetic) epoch would be
    # a cost of our benchmark, not of the naive loop
    loader = torch.utils.data.DataLoader(DecodedImages(data, r.flip), batch_size=batch, shuffle=True,
                                         drop_last=True, num_workers=workers, persistent_workers=workers > 0)
    if len(loader) == 0:
        raise ValueError(f"batch {batch} is larger than the {len(data)} images")
    batches = _batches(loader)

    def z():
        return sample_latents(batch, entry.latent_dim, entry.latent_dist, device=device)   # torch's global RNG

    def step():
        for _ in range(r.n_critic):
            x, y = next(batches)
            x = x.to(device)
            y = y.to(device) if entry.num_classes else None
            with torch.no_grad():
                fake = G(z(), y)
            real_s, fake_s = D(x, y), D(fake, y)
            dl = d_loss(r.loss, real_s, fake_s)
            loss = dl
            if r.loss == "wgangp":
                eps = torch.rand(batch, *[1] * (x.ndim - 1), device=device)
                loss = dl + r.gp_weight * gradient_penalty(D, x, fake, y, eps=eps)
            D.zero_grad()
            loss.backward()
            opt_d.step()
            real_s.mean().item()                     # the example's D(x) readout: a host sync, as there
        G.zero_grad()
        gl = g_loss(r.loss, D(G(z(), y), y))
        gl.backward()
        opt_g.step()
        return dl.item(), gl.item()

    for _ in range(warmup):                          # the worker processes stop when the loader is dropped, on return
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        dl, gl = step()
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"img_s": steps * batch / seconds, "d_loss": dl, "g_loss": gl}


# --- the benchmark ----------------------------------------------------------------------------------------------
def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:160]}"


def run_case(case: Case, device: str, data: ImageData, *, warmup: int, steps: int, naive_warmup: int,
             naive_steps: int, naive: dict | None = None, workers: int = NAIVE_WORKERS) -> dict:
    """One row: ours and the naive loop (or the naive figures already measured for this model and batch)."""
    entry = REGISTRY[case.model]
    row = {"case": case.label, "model": case.model, "device": device, "batch": case.batch, "compile": case.compile,
           "steps": steps, "data": data.source, "target_img_s": case.target, "target_ratio": case.ratio_target}
    try:
        ours = time_ours(entry, data, case.batch, device, warmup=warmup, steps=steps, compile=case.compile)
        naive = naive or time_naive(entry, data, case.batch, device, warmup=naive_warmup, steps=naive_steps,
                                    workers=workers)
    except Exception as e:                           # one failing case (no Triton, out of memory) spoils no other
        return {**row, "error": _first_line(e)}
    finally:
        if device == "cuda":
            if case.compile:
                torch.compiler.reset()               # frees the CUDA-graph memory pools
            torch.cuda.empty_cache()
    row.update(ours_img_s=ours["img_s"], naive_img_s=naive["img_s"], ratio=ours["img_s"] / naive["img_s"],
               d_loss=ours["d_loss"], g_loss=ours["g_loss"], naive_d_loss=naive["d_loss"],
               naive_g_loss=naive["g_loss"], naive=naive, error=None)
    row["meets_target"] = None if device != "cuda" or (case.target is None and case.ratio_target is None) else (
        (case.target is None or row["ours_img_s"] >= case.target)
        and (case.ratio_target is None or row["ratio"] >= case.ratio_target))
    return row


HEADER = f"{'case':24s} {'device':6s} {'batch':>5s} {'ours img/s':>11s} {'naive img/s':>12s} {'ratio':>7s}  target"


def format_row(row: dict) -> str:
    head = f"{row['case']:24s} {row['device']:6s} {row['batch']:5d}"
    if row.get("error"):
        return f"{head}  failed: {row['error']}"
    marks = []
    if row["device"] == "cuda" and row["target_img_s"]:
        marks.append(f"≥{row['target_img_s']:,.0f} {'✓' if row['ours_img_s'] >= row['target_img_s'] else '✗'}")
    if row["device"] == "cuda" and row["target_ratio"]:
        marks.append(f"ratio ≥{row['target_ratio']:g}× {'✓' if row['ratio'] >= row['target_ratio'] else '✗'}")
    return (f"{head} {row['ours_img_s']:11,.0f} {row['naive_img_s']:12,.0f} {row['ratio']:6.2f}×  "
            + "  ".join(marks)).rstrip()


def run_bench(devices, cases_by_device: dict, data_root=None, *, quick: bool = False, steps: int | None = None,
              workers: int = NAIVE_WORKERS, out=print, profile_to: Path | None = None) -> dict:
    """Every case on every device, printed row by row through `out`; returns the figures (as --json writes them).
    `profile_to`: also profile our step (profile_ours) for the cases with a target (all of them when none has one,
    compiled ones never) and write the tables to that file."""
    report = {"definition": DEFINITION, "torch": torch.__version__, "quick": quick, "hardware": {}, "data": {},
              "results": []}
    out(textwrap.fill(DEFINITION, 116))
    out(f"torch {torch.__version__}")
    for dev in devices:
        report["hardware"][dev] = hardware_name(torch.device(dev))
        out(f"{dev:6s} {report['hardware'][dev]}")
    datasets = {}
    for dev in devices:
        for case in cases_by_device[dev]:
            ds = REGISTRY[case.model].dataset
            if ds not in datasets:
                t0 = time.perf_counter()
                datasets[ds] = bench_data(REGISTRY[case.model], data_root)
                report["data"][ds] = datasets[ds].source
                out(f"data   {ds}: {datasets[ds].source} [{len(datasets[ds])} images, "
                    f"{time.perf_counter() - t0:.1f} s to load]")
    out("")
    out(HEADER)
    for dev in devices:
        (warmup, timed), (n_warmup, n_timed) = STEPS[(dev, quick)]
        naive_done = {}                              # (model, batch) → naive figures: the compiled row reuses them
        for case in cases_by_device[dev]:
            row = run_case(case, dev, datasets[REGISTRY[case.model].dataset], warmup=warmup, steps=steps or timed,
                           naive_warmup=n_warmup, naive_steps=steps or n_timed,
                           naive=naive_done.get((case.model, case.batch)), workers=workers)
            if not row["error"]:
                naive_done[(case.model, case.batch)] = row.pop("naive")
            report["results"].append(row)
            out(format_row(row))
    if profile_to is not None:
        profiles = []
        for dev in devices:
            cases = [c for c in cases_by_device[dev] if not c.compile]
            for case in [c for c in cases if c.target] or cases:
                try:
                    profiles.append(profile_ours(REGISTRY[case.model], datasets[REGISTRY[case.model].dataset],
                                                 case.batch, dev))
                except Exception as e:               # a profile is a diagnosis: its failure is noted, not fatal
                    profiles.append(f"{case.label}, batch {case.batch}, {dev}: profiling failed: {_first_line(e)}")
                out(profiles[-1].splitlines()[0])
        Path(profile_to).write_text("\n\n".join(profiles) + "\n")
    return report
